//! The demo: on first start, a "Demo coach" tenant with a widget channel whose knowledge is this
//! gateway's own documentation, and `/demo`, a page that embeds its widget. A newcomer chats
//! with a coach that explains the gateway a minute after `make run`. Off with
//! `widget.demo = false`.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use coach_connector_api::{ChannelId, ChannelKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::not_found;
use crate::state::AppState;
use crate::store::documents::NewDocument;
use crate::store::{NewChannel, Role};
use crate::tenancy::SystemScope;

/// The documentation the demo coach knows (compiled in: the binary needs no checkout).
const DOCS: &[(&str, &str)] = &[
    ("README.md", include_str!("../../../../README.md")),
    (
        "ARCHITECTURE.md",
        include_str!("../../../../docs/ARCHITECTURE.md"),
    ),
    // "How do I add a new channel?" is answered here.
    (
        "CONNECTORS.md",
        include_str!("../../../../docs/CONNECTORS.md"),
    ),
];

/// The demo tenant's owner, who logs in to `/console`.
pub const DEMO_EMAIL: &str = "demo@coach.example";

/// What was created, kept in `data_dir/demo.json` so a restart reuses it.
#[derive(Serialize, Deserialize)]
struct Marker {
    tenant_id: uuid::Uuid,
    channel_id: uuid::Uuid,
    /// The console login of the demo tenant's owner ([`DEMO_EMAIL`]).
    #[serde(default)]
    console_password: Option<String>,
}

/// Makes the demo tenant's owner with a random password (kept in the marker, printed at
/// start), so the console can be tried at once.
async fn demo_login(
    state: &AppState,
    tenant: coach_connector_api::TenantId,
) -> anyhow::Result<String> {
    let scope = SystemScope::new("demo").for_tenant(tenant);
    let (_, token) = state
        .auth
        .invite(&scope, None, Role::Owner, DEMO_EMAIL, Role::Owner)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)?;
    let password = format!("demo-{}", hex::encode(bytes));
    state
        .auth
        .accept_invite_confirmed(&token, &password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(password)
}

/// Says where the console is and where its password is (never the password: logs travel).
fn announce_login(state: &AppState, path: &std::path::Path) {
    tracing::info!(
        "console: {}/console, log in as {DEMO_EMAIL}; the password is `console_password` in {}",
        state.config.public_url.trim_end_matches('/'),
        path.display()
    );
}

/// Creates the demo tenant on first start (or finds it again), then serves it on `/demo`.
pub async fn ensure(state: &AppState) -> anyhow::Result<ChannelId> {
    let sys = SystemScope::new("demo");
    let path = state.config.data_dir.join("demo.json");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(mut marker) = serde_json::from_str::<Marker>(&text)
        && state
            .store
            .channel_for_webhook(&sys, ChannelId(marker.channel_id))
            .await
            .is_ok()
    {
        let channel = ChannelId(marker.channel_id);
        // A demo made before the console had no login: add it once.
        if marker.console_password.is_none() {
            let tenant = coach_connector_api::TenantId(marker.tenant_id);
            match demo_login(state, tenant).await {
                Ok(password) => {
                    marker.console_password = Some(password);
                    write_private(&path, &serde_json::to_string_pretty(&marker)?)?;
                }
                Err(error) => tracing::warn!(%error, "the demo login could not be made"),
            }
        }
        if marker.console_password.is_some() {
            announce_login(state, &path);
        }
        let _ = state.widget.demo_channel.set(channel);
        return Ok(channel);
    }
    let tenant = state.store.create_tenant(&sys, "Demo coach").await?;
    let scope = sys.for_tenant(tenant.id);
    let channel = state
        .store
        .create_channel(
            &scope,
            NewChannel {
                kind: ChannelKind::WebWidget,
                name: "Demo widget".into(),
                config: serde_json::json!({
                    "title": "Gateway guide",
                    "greeting": "Hi! I know this gateway's documentation. Ask me how to run it, \
                                 connect a channel or teach a coach.",
                    "starters": [
                        "How do I connect WhatsApp?",
                        "Can I run it on a GPU?",
                        "How do I add a new channel?",
                    ],
                }),
            },
        )
        .await?;
    for (name, text) in DOCS {
        state
            .store
            .create_document(
                &scope,
                NewDocument {
                    title: (*name).into(),
                    filename: Some((*name).into()),
                    source_url: None,
                    kind: "markdown".into(),
                    content: text.as_bytes().to_vec(),
                    sha256: hex::encode(Sha256::digest(text.as_bytes())),
                },
            )
            .await?;
    }
    let password = match demo_login(state, tenant.id).await {
        Ok(password) => Some(password),
        Err(error) => {
            tracing::warn!(%error, "the demo login could not be made");
            None
        }
    };
    let marker = Marker {
        tenant_id: tenant.id.0,
        channel_id: channel.id.0,
        console_password: password,
    };
    crate::files::private_dir(&state.config.data_dir)?;
    write_private(&path, &serde_json::to_string_pretty(&marker)?)?;
    tracing::info!(channel = %channel.id, "demo coach created: open /demo");
    if marker.console_password.is_some() {
        announce_login(state, &path);
    }
    let _ = state.widget.demo_channel.set(channel.id);
    Ok(channel.id)
}

/// `GET /demo`: the widget of the demo coach on a plain page.
pub(super) async fn page(State(state): State<AppState>) -> Response {
    if !state.config.demo() {
        return not_found();
    }
    let Some(channel) = state.widget.demo_channel.get() else {
        return Html(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=3>\
             <title>Demo coach</title><p>The demo coach is being set up; this page reloads by itself.",
        )
        .into_response();
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Coaching gateway demo</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #222; }}
  code {{ background: #f3f3f3; padding: .1rem .3rem; border-radius: 4px; }}
</style>
</head>
<body>
<h1>Coaching gateway demo</h1>
<p>The bubble in the corner is the web widget of a demo coach that has read this gateway's
documentation. Ask it how to run the gateway, connect WhatsApp or upload a PDF.</p>
<p>The creator behind this coach sees every conversation live in the
<a href="/console">console</a>, where they can take over and reply.</p>
<p>Creators embed the same widget on their own pages with one tag:</p>
<pre><code>&lt;script src="{public}/widget.js" data-channel="{channel}" async&gt;&lt;/script&gt;</code></pre>
<script src="/widget.js" data-channel="{channel}" async></script>
</body>
</html>
"#,
        public = html_escape(&state.config.public_url),
        channel = channel.0,
    ))
    .into_response()
}

/// Writes a file only its owner may read (it holds a password), also over an older file that
/// others could read: a new file made private, then renamed over it.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let temp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

pub(super) fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
