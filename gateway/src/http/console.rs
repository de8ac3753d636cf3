//! `/console`: the creator console, a single-page app of plain ES modules and CSS (no build
//! step, nothing to install), compiled into the binary. It talks to the admin API like any
//! client, with the member's bearer token, and follows `GET /v1/events`.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::AppState;

/// The console's files: name, type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../../console/index.html"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("../../../console/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/api.js"),
    ),
    (
        "channels.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/channels.js"),
    ),
    (
        "builder.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/builder.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/i18n.js"),
    ),
    (
        "ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/ui.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/charts.js"),
    ),
    (
        "inbox.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/inbox.js"),
    ),
    (
        "knowledge.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/knowledge.js"),
    ),
    (
        "settings.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/settings.js"),
    ),
    (
        "programs.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/programs.js"),
    ),
    (
        "analytics.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/analytics.js"),
    ),
    (
        "contacts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/contacts.js"),
    ),
    (
        "progress.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/progress.js"),
    ),
    (
        "coach.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/coach.js"),
    ),
    (
        "activity.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../console/activity.js"),
    ),
];

/// Scripts, styles and API calls only to this gateway (the bearer token cannot be sent
/// anywhere else even by injected script).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { file("index.html") }))
        .route(
            "/console/",
            get(|| async { Redirect::permanent("/console") }),
        )
        .route(
            "/console/{name}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}

fn file(name: &str) -> Response {
    let Some((_, kind, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, *kind),
            // Short: a new gateway version is picked up within a minute.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        *body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// Every module the console imports is served (a missing one breaks the page).
    #[test]
    fn every_imported_module_is_served() {
        for (name, _, body) in FILES {
            for line in body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap_or_default();
                assert!(
                    FILES.iter().any(|(n, _, _)| *n == imported),
                    "{name} imports {imported}, which is not served"
                );
            }
        }
    }

    /// The console's first load stays under 100 KB of JavaScript gzipped (each module compressed
    /// on its own, as it is served; printed, so the figure shows in test logs).
    #[test]
    fn the_console_stays_within_its_javascript_budget() -> std::io::Result<()> {
        use std::io::Write as _;
        let mut total = 0;
        for (name, kind, body) in FILES {
            if !kind.starts_with("text/javascript") {
                continue;
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body.as_bytes())?;
            let size = gz.finish()?.len();
            println!("{name}: {size} bytes gzipped");
            total += size;
        }
        println!("console JavaScript: {total} bytes gzipped (budget 102,400)");
        assert!(
            total <= 100 * 1024,
            "the console's JavaScript is {total} bytes gzipped"
        );
        Ok(())
    }
}
