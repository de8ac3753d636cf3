//! Two members saving different settings of the tenant at the same moment both keep theirs
//! (`PATCH /v1/tenant` changes the stored profile inside its write), on SQLite and PostgreSQL.

use serde_json::json;

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;

against_every_backend!(concurrent_saves_of_different_settings_are_all_kept,);

async fn concurrent_saves_of_different_settings_are_all_kept(b: &Backend) {
    let app = app(b);
    let owner = app.register("profile-saves@example.com").await;
    let t = token(&owner).to_owned();
    for round in 1..=25u32 {
        let text = format!("Round {round}: someone from the team will answer.");
        let (hours, words) = tokio::join!(
            app.call(
                "PATCH",
                "/v1/tenant",
                Some(&t),
                Some(json!({ "retention_days": round })),
            ),
            app.call(
                "PATCH",
                "/v1/tenant",
                Some(&t),
                Some(json!({ "strings": { "en": { "handoff": text } } })),
            ),
        );
        assert_eq!(hours.0, 200, "{}", hours.1);
        assert_eq!(words.0, 200, "{}", words.1);
        let (_, tenant) = app.call("GET", "/v1/tenant", Some(&t), None).await;
        assert_eq!(tenant["retention_days"], round, "round {round}: {tenant}");
        assert_eq!(
            tenant["strings"]["en"]["handoff"], text,
            "round {round}: {tenant}"
        );
    }
}
