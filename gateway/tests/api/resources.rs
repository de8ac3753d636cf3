//! Admin API resources on SQLite and PostgreSQL: persona and retention, contacts export and
//! erasure, tenant erasure, API keys, operators (members and invitations: `members.rs`).

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::json;

against_every_backend!(
    the_persona_is_kept_and_validated,
    a_contact_is_exported_then_erased_with_everything_derived,
    erasing_a_tenant_removes_its_data_and_sessions,
    api_keys_act_for_their_tenant_within_their_role,
    operators_list_suspend_and_resume_tenants,
);

async fn the_persona_is_kept_and_validated(b: &Backend) {
    let app = app(b);
    let pair = app.register("ana@example.com").await;
    let t = Some(token(&pair));
    let (status, tenant) = app.call("GET", "/v1/tenant", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tenant["persona"]["coach_name"], "");
    let persona = json!({ "coach_name": "Maya", "tone": "warm", "language": "es", "greeting": "¡Hola!",
        "coaching_style": "questions first", "boundaries": "no medical advice",
        "help_resources": "Llama al 024" });
    let (status, updated) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "name": "Ana & Co", "persona": persona })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Ana & Co");
    let (_, again) = app.call("GET", "/v1/tenant", t, None).await;
    assert_eq!(again["persona"], persona);
    let bad = json!({ "persona": { "language": "english please" } });
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PATCH",
        "/v1/tenant",
        t,
        Some(bad),
    )
    .await;
    let unknown = json!({ "persona": { "mood": "x" } });
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PATCH",
        "/v1/tenant",
        t,
        Some(unknown),
    )
    .await;
    assert_eq!(
        app.call("GET", "/v1/tenant", t, None).await.1["persona"],
        persona,
        "a refused change changes nothing"
    );
    let (_, kept) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 30 })),
        )
        .await;
    assert_eq!(
        (kept["retention_days"].as_u64(), &kept["persona"]),
        (Some(30), &persona),
        "fields not sent stay"
    );
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PATCH",
        "/v1/tenant",
        t,
        Some(json!({ "retention_days": 5000 })),
    )
    .await;
    let (_, forever) = app
        .call(
            "PATCH",
            "/v1/tenant",
            t,
            Some(json!({ "retention_days": 0 })),
        )
        .await;
    assert!(forever["retention_days"].is_null());
}

async fn a_contact_is_exported_then_erased_with_everything_derived(b: &Backend) {
    let app = app(b);
    let (pair, scope, channel_id) = tenant_with_channel(&app, "ana@example.com").await;
    let t = Some(token(&pair));
    let events = vec![
        crate::common::text("m1", "alice", "my private goal"),
        crate::common::text("m2", "alice", "second"),
        crate::common::text("m3", "bob", "bob's"),
    ];
    b.store.ingest(&scope, channel_id, events).await.unwrap();
    let (status, contacts) = app.call("GET", "/v1/contacts", t, None).await;
    assert_eq!(status, StatusCode::OK);
    let alice = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["identities"][0]["external_id"] == "alice")
        .unwrap()
        .clone();
    let alice_id = alice["id"].as_str().unwrap();
    // What else the gateway keeps about her: a handoff, an opt-out, an event it could not read.
    let contact: coach_connector_api::ContactId = alice_id.parse().unwrap();
    let (_, convs) = app
        .call(
            "GET",
            &format!("/v1/conversations?contact_id={alice_id}"),
            t,
            None,
        )
        .await;
    let conversation_id = convs["items"][0]["id"].as_str().unwrap().parse().unwrap();
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conversation_id}/messages"),
            t,
            None,
        )
        .await;
    let first_message = msgs["items"][0]["id"].as_str().unwrap().parse().unwrap();
    b.store
        .record_handoff(
            &scope,
            coach_gateway::store::console::Handoff {
                conversation_id,
                message_id: first_message,
                reason: coach_gateway::store::console::HandoffReason::AskedForHuman,
                question: "can a person call me about my private goal".into(),
                created_at: chrono::Utc::now(),
            },
            None,
            None,
        )
        .await
        .unwrap();
    b.store
        .opt_out(&scope, contact, "keyword:STOP", chrono::Utc::now())
        .await
        .unwrap();
    let unknown = coach_connector_api::InboundEvent::Unknown(coach_connector_api::UnknownEvent {
        dedup_key: coach_connector_api::DedupKey("u1".into()),
        kind: "reaction".into(),
        from: Some(coach_connector_api::ChannelIdentity {
            id: "alice".into(),
            display_name: None,
            username: None,
        }),
        raw: json!({ "emoji": "thumbs-up-from-alice" }),
    });
    b.store
        .ingest(&scope, channel_id, vec![unknown])
        .await
        .unwrap();
    let (status, archive) = app
        .call("GET", &format!("/v1/contacts/{alice_id}/export"), t, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(archive["contact"]["id"], alice["id"]);
    let messages = &archive["conversations"][0]["messages"];
    assert_eq!(messages.as_array().unwrap().len(), 2);
    assert_eq!(messages[0]["content"]["body"], "my private goal");
    assert_eq!(
        archive["handoffs"][0]["question"],
        "can a person call me about my private goal"
    );
    assert_eq!(archive["opt_out"]["source"], "keyword:STOP");
    assert_eq!(
        archive["unknown_events"][0]["raw"]["emoji"],
        "thumbs-up-from-alice"
    );
    assert!(archive["programs"].as_array().unwrap().is_empty());
    assert!(
        !archive.to_string().contains("bob's"),
        "only this contact's data"
    );

    let sys = SystemScope::new("test");
    assert_eq!(b.store.stats(&sys).await.unwrap().jobs_depth, 3);
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{alice_id}"),
        t,
        None,
    )
    .await;
    app.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &format!("/v1/contacts/{alice_id}/export"),
        t,
        None,
    )
    .await;
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    assert_eq!(
        convs["items"].as_array().unwrap().len(),
        1,
        "bob's conversation remains"
    );
    assert_eq!(
        b.store.stats(&sys).await.unwrap().jobs_depth,
        1,
        "alice's jobs went with her"
    );
    let (_, log) = app.call("GET", "/v1/audit-log", t, None).await;
    assert_eq!(log[0]["action"], "contact.erase");
    assert!(
        !log.to_string().contains("private goal") && !log.to_string().contains("alice"),
        "no personal data in the audit log"
    );
    app.expect(
        StatusCode::NOT_FOUND,
        "DELETE",
        &format!("/v1/contacts/{alice_id}"),
        t,
        None,
    )
    .await;
}

async fn erasing_a_tenant_removes_its_data_and_sessions(b: &Backend) {
    let app = app(b);
    let doomed = app.register("ana@example.com").await;
    let kept = app.register("bob@example.com").await;
    let t = Some(token(&doomed));
    app.call("POST", "/v1/channels", t, Some(whatsapp_channel("bot")))
        .await;
    app.call(
        "POST",
        "/v1/channels",
        Some(token(&kept)),
        Some(whatsapp_channel("bot")),
    )
    .await;
    app.expect(StatusCode::NO_CONTENT, "DELETE", "/v1/tenant", t, None)
        .await;
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/channels",
        t,
        None,
        "its sessions ended",
    )
    .await;
    let (status, _) = app
        .call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({ "refresh_token": doomed["refresh_token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, channels) = app
        .call("GET", "/v1/channels", Some(token(&kept)), None)
        .await;
    assert_eq!(
        channels.as_array().unwrap().len(),
        1,
        "other tenants keep their data"
    );
}

async fn api_keys_act_for_their_tenant_within_their_role(b: &Backend) {
    let app = app(b);
    let owner = app.register("ana@example.com").await;
    let t = Some(token(&owner));
    let (status, created) = app
        .call(
            "POST",
            "/v1/api-keys",
            t,
            Some(json!({ "name": "crm sync", "role": "editor" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cgk_") && key.starts_with(created["prefix"].as_str().unwrap()));
    app.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/api-keys",
        t,
        Some(json!({ "name": "x", "role": "owner" })),
    )
    .await;
    // The key reads within its tenant, is bounded by its role, and has no user.
    app.expect(StatusCode::OK, "GET", "/v1/channels", Some(&key), None)
        .await;
    assert_eq!(
        app.call("GET", "/v1/tenant", Some(&key), None).await.1["id"],
        owner["tenant_id"]
    );
    let create = whatsapp_channel("bot");
    app.expect_because(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/channels",
        Some(&key),
        Some(create),
        "editors cannot add channels",
    )
    .await;
    app.expect(StatusCode::FORBIDDEN, "GET", "/v1/me", Some(&key), None)
        .await;
    let (_, keys) = app.call("GET", "/v1/api-keys", t, None).await;
    assert!(!keys.to_string().contains(&key), "secrets are never listed");
    let id = created["id"].as_str().unwrap();
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/api-keys/{id}"),
        t,
        None,
    )
    .await;
    app.expect_because(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/channels",
        Some(&key),
        None,
        "revoked at once",
    )
    .await;
    app.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/channels",
        Some("cgk_forged"),
        None,
    )
    .await;
}

async fn operators_list_suspend_and_resume_tenants(b: &Backend) {
    let app = app(b);
    let op = app.register("op@example.com").await;
    let sys = SystemScope::new("test");
    let op_id = coach_gateway::store::UserId(op["user_id"].as_str().unwrap().parse().unwrap());
    b.store.set_platform_admin(&sys, op_id, true).await.unwrap();
    let customer = app.register("ana@example.com").await;
    let (_, key) = app
        .call(
            "POST",
            "/v1/api-keys",
            Some(token(&customer)),
            Some(json!({ "name": "k", "role": "viewer" })),
        )
        .await;
    let key = key["key"].as_str().unwrap().to_owned();
    // The operator flag is read when a token is issued.
    app.expect(
        StatusCode::FORBIDDEN,
        "GET",
        "/v1/platform/tenants",
        Some(token(&op)),
        None,
    )
    .await;
    let login = |email: &str| json!({ "email": email, "password": "violet-quarry-Tundra-88" });
    let op = app
        .call(
            "POST",
            "/v1/auth/login",
            None,
            Some(login("op@example.com")),
        )
        .await
        .1;
    let (status, tenants) = app
        .call("GET", "/v1/platform/tenants", Some(token(&op)), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{tenants}");
    assert_eq!(tenants.as_array().unwrap().len(), 2);
    app.expect(
        StatusCode::FORBIDDEN,
        "GET",
        "/v1/platform/tenants",
        Some(token(&customer)),
        None,
    )
    .await;
    app.expect(
        StatusCode::FORBIDDEN,
        "GET",
        "/v1/platform/tenants",
        Some(&key),
        None,
    )
    .await;

    let tid = customer["tenant_id"].as_str().unwrap();
    let suspend = format!("/v1/platform/tenants/{tid}/suspend");
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        &suspend,
        Some(token(&op)),
        None,
    )
    .await;
    app.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/me",
        Some(token(&customer)),
        None,
    )
    .await;
    app.expect(
        StatusCode::FORBIDDEN,
        "POST",
        "/v1/auth/login",
        None,
        Some(login("ana@example.com")),
    )
    .await;
    app.expect(
        StatusCode::UNAUTHORIZED,
        "GET",
        "/v1/channels",
        Some(&key),
        None,
    )
    .await;
    // A restart without Redis refuses them too.
    let restarted = app_on(b.store.clone(), app.state.config.as_ref().clone());
    restarted.state.auth.revoked.load().await.unwrap();
    restarted
        .expect_because(
            StatusCode::UNAUTHORIZED,
            "GET",
            "/v1/me",
            Some(token(&customer)),
            None,
            "a suspended tenant's session stays ended after a restart",
        )
        .await;
    restarted
        .expect(
            StatusCode::UNAUTHORIZED,
            "GET",
            "/v1/channels",
            Some(&key),
            None,
        )
        .await;
    let (_, tenants) = app
        .call("GET", "/v1/platform/tenants", Some(token(&op)), None)
        .await;
    assert!(
        tenants
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == tid && t["status"] == "suspended")
    );

    let resume = format!("/v1/platform/tenants/{tid}/resume");
    app.expect(
        StatusCode::NO_CONTENT,
        "POST",
        &resume,
        Some(token(&op)),
        None,
    )
    .await;
    app.expect(
        StatusCode::OK,
        "POST",
        "/v1/auth/login",
        None,
        Some(login("ana@example.com")),
    )
    .await;
    app.expect(StatusCode::OK, "GET", "/v1/channels", Some(&key), None)
        .await;
    let missing = format!("/v1/platform/tenants/{}/suspend", uuid::Uuid::now_v7());
    app.expect(
        StatusCode::NOT_FOUND,
        "POST",
        &missing,
        Some(token(&op)),
        None,
    )
    .await;
}
