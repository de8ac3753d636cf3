//! The web widget: `GET /widget.js` (the script creators embed), `GET /widget/ws` (its
//! WebSocket, protocol in `coach-web-widget`), `GET /v1/widget/config/{channel_id}` (public
//! theme and texts), `POST /widget/upload` (a visitor's image or PDF, [`upload`]),
//! `GET /widget/file/{message}` (a message's file behind a signed link, `file`),
//! `POST /widget/profile` and `POST /widget/rating` (the pre-chat form and the rating of a
//! resolved conversation, [`visitor`]), the `/demo` page and the coachee app (`/c/{channel}/`,
//! [`app`]).

pub mod app;
mod connection;
pub mod demo;
mod file;
pub mod upload;
pub mod visitor;
mod wire;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use coach_connector_api::{ChannelId, ChannelKind};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::Channel;
use crate::tenancy::SystemScope;

/// The widget script: its visitor forms (`forms.js`, the pre-chat form and the rating) and its
/// voice recorder (`voice.js`) in front of the widget itself, served as one file (no build step:
/// what is in the repository is what runs).
pub const WIDGET_JS: &str = concat!(
    include_str!("../../../../widget-js/forms.js"),
    include_str!("../../../../widget-js/voice.js"),
    include_str!("../../../../widget-js/widget.js")
);

pub use crate::widget::{WidgetRuntime, hub};

/// A widget channel's configuration (`config` of a `web_widget` channel).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WidgetSettings {
    /// Pages allowed to open the widget (`https://example.com`); empty: any page.
    pub allowed_origins: Vec<String>,
    /// Secret for signed user identities from the creator's site.
    pub identity_secret: Option<String>,
    /// Shown to visitors.
    #[serde(flatten)]
    pub public: PublicWidgetConfig,
}

/// What the widget shows: safe to publish.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct PublicWidgetConfig {
    /// Panel title.
    pub title: Option<String>,
    /// First message shown to a new visitor.
    pub greeting: Option<String>,
    /// Accent colour (`#rrggbb`).
    pub color: Option<String>,
    /// `right` (default) or `left`.
    pub position: Option<String>,
    /// Avatar image URL.
    pub avatar_url: Option<String>,
    /// Language of the widget's own texts (`en`, `es`); default: the browser's.
    pub language: Option<String>,
    /// Questions a new visitor can send with one tap (up to 4, 1-80 characters each).
    pub starters: Vec<String>,
    /// Whether visitors may attach an image or a PDF, or record a voice note
    /// (`POST /widget/upload`); on by default.
    #[serde(default = "yes")]
    pub uploads: bool,
    /// A form a new visitor fills in before their first message ([`visitor`]); absent: none.
    pub prechat: Option<PrechatForm>,
    /// Whether a conversation the team resolves gets a rating question (CSAT, 1 to 5, with an
    /// optional comment); off by default.
    pub csat: bool,
    /// Whether the tenant runs coaching programs: the widget then offers a control to stop
    /// check-ins (set by the gateway, not configured).
    #[serde(skip_deserializing)]
    pub check_ins: bool,
    /// Whether the team is in now, by the tenant's business hours (absent when it keeps
    /// none; set by the gateway, not configured).
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamHours>,
    /// The longest voice note the coach listens to, in seconds: the widget stops recording
    /// there (`providers.voice_max_secs`; set by the gateway, not configured).
    #[serde(skip_deserializing)]
    pub voice_max_secs: u32,
}

/// Whether a pre-chat field is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldUse {
    /// Asked for, and needed to start.
    #[default]
    Required,
    /// Asked for; may be left empty.
    Optional,
    /// Not asked for.
    Off,
}

/// The pre-chat form: a name, an e-mail address and a consent checkbox, each optional. What a
/// visitor gives goes onto their contact (the name, `attributes.email`; a ticked consent the
/// time and the text agreed to, `attributes.chat_consent_at` and `chat_consent_text`: not the
/// consent to proactive messages). Visitors signed in by the creator's site skip it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrechatForm {
    /// Shown above the fields (at most 300 characters).
    #[serde(default)]
    pub message: Option<String>,
    /// The name field (default `required`).
    #[serde(default)]
    pub name: FieldUse,
    /// The e-mail field (default `required`).
    #[serde(default)]
    pub email: FieldUse,
    /// The text of a checkbox the visitor must tick before writing (1-500 characters; a
    /// markdown link to the privacy policy shows as a link). While it is set, the gateway
    /// stores no message from a visitor who has not ticked it.
    #[serde(default)]
    pub consent: Option<String>,
}

impl PrechatForm {
    /// Says what is wrong with the form's settings.
    pub fn check(&self) -> Result<(), String> {
        if self
            .message
            .as_ref()
            .is_some_and(|m| m.chars().count() > 300)
        {
            return Err("config.prechat.message: at most 300 characters".into());
        }
        if let Some(consent) = &self.consent
            && (consent.trim().is_empty() || consent.chars().count() > 500)
        {
            return Err("config.prechat.consent: 1 to 500 characters".into());
        }
        if self.name == FieldUse::Off && self.email == FieldUse::Off && self.consent.is_none() {
            return Err(
                "config.prechat: asks for nothing; ask for a name, an e-mail or consent, or remove it"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The team's hours as the widget shows them.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct TeamHours {
    /// Outside the business hours.
    pub away: bool,
    /// When the team is next in (with the hours' UTC offset); absent while in, or when no day
    /// is open.
    pub back_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

fn yes() -> bool {
    true
}

/// Routes outside the OpenAPI document (a script, a socket and a page).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(script))
        .route("/widget/ws", get(socket))
        .route("/widget/file/{message}", get(file::download))
        .route("/demo", get(demo::page))
        .merge(app::router())
}

/// The public configuration route.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(public_config))
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

/// The enabled widget channel `id`, and its settings with secrets opened.
async fn widget_channel(state: &AppState, id: &str) -> Result<(Channel, WidgetSettings), ApiError> {
    let id = uuid::Uuid::parse_str(id).map_err(|_| ApiError::NotFound("channel"))?;
    let channel = state
        .store
        .channel_for_webhook(&SystemScope::new("widget"), ChannelId(id))
        .await?;
    if channel.kind != ChannelKind::WebWidget || !channel.enabled {
        return Err(ApiError::NotFound("channel"));
    }
    // A suspended tenant's widget neither connects nor shows its settings.
    let status = state
        .store
        .tenant_status(&SystemScope::new("widget"), channel.tenant_id)
        .await?;
    if status == crate::store::TenantStatus::Suspended {
        return Err(ApiError::Unavailable(
            "this chat is paused; try again later".into(),
        ));
    }
    let mut config = channel.config.clone();
    state
        .secrets
        .open(&mut config)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let settings = serde_json::from_value(config).unwrap_or_default();
    Ok((channel, settings))
}

/// A widget channel's theme and texts (public: the widget reads it before it connects).
#[utoipa::path(get, path = "/v1/widget/config/{channel_id}", tag = "widget",
    params(("channel_id" = String, Path, description = "a web_widget channel")),
    responses((status = 200, body = PublicWidgetConfig), (status = 404, body = crate::error::Problem)))]
async fn public_config(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (channel, settings) = widget_channel(&state, &channel_id).await?;
    let mut public = settings.public;
    public.voice_max_secs = state.config.providers.voice_max_secs;
    let scope = SystemScope::new("widget").for_tenant(channel.tenant_id);
    public.check_ins = state
        .store
        .programs(&scope)
        .await?
        .iter()
        .any(|p| p.status == crate::store::programs::ProgramStatus::Active);
    let (_, profile) = state.store.tenant_profile(&scope).await?;
    public.team = profile
        .business_hours
        .map(|hours| match hours.away(state.clock.now()) {
            None => TeamHours::default(),
            Some(back) => TeamHours {
                away: true,
                back_at: back.map(|at| at.fixed_offset()),
            },
        });
    // Read by the widget on the creator's pages, whatever their origin.
    Ok(([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(public)))
}

#[derive(Deserialize)]
struct SocketQuery {
    channel: String,
}

/// Refuses a page whose origin is not in the channel's `allowed_origins` (when it has any).
fn check_origin(settings: &WidgetSettings, headers: &HeaderMap) -> Result<(), ApiError> {
    if settings.allowed_origins.is_empty() {
        return Ok(());
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("");
    let allowed = settings
        .allowed_origins
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "origin {origin:?} is not in this channel's allowed_origins"
        )))
    }
}

/// Opens a widget connection after checking the channel and the page's origin.
async fn socket(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    Query(query): Query<SocketQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (channel, settings) = widget_channel(&state, &query.channel).await?;
    check_origin(&settings, &headers)?;
    let config = state.config.widget.clone();
    let admitted = state.widget.admit(address, channel.id);
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(config.max_frame_bytes)
        .max_frame_size(config.max_frame_bytes)
        .on_upgrade(move |socket| async move {
            match admitted {
                Ok(permit) => {
                    connection::run(state, channel, settings, address, socket, permit).await
                }
                // After the upgrade, so the page's widget can read why (1013: try again later).
                Err(reason) => connection::refuse(socket, &reason).await,
            }
        }))
}

/// 404 as a page, for `/demo` when it is off.
fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html("<h1>Not found</h1>")).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    /// The widget's size budget: 12 KB gzipped (printed, so the figure shows in test logs).
    #[test]
    fn the_widget_stays_within_its_size_budget() -> std::io::Result<()> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(super::WIDGET_JS.as_bytes())?;
        let size = gz.finish()?.len();
        println!(
            "widget.js: {} bytes, {size} bytes gzipped (budget 12,288)",
            super::WIDGET_JS.len()
        );
        assert!(size <= 12 * 1024, "widget.js is {size} bytes gzipped");
        Ok(())
    }
}
