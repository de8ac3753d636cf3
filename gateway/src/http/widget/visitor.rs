//! What a widget visitor tells us outside the conversation: the pre-chat form
//! (`POST /widget/profile?channel={id}`) and the rating of a resolved conversation
//! (`POST /widget/rating?channel={id}`). Both take an `application/x-www-form-urlencoded` form
//! with the visitor's `token` (from the socket's `welcome`): a simple request, so no CORS
//! preflight, and every answer, refusals included, is readable by the widget on any page.
//! Neither is a message: filling the form or rating never reopens a conversation nor makes the
//! coach answer.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use coach_connector_api::MessageId;
use coach_web_widget::identity::verify_visitor_token;
use serde::Deserialize;

use super::{FieldUse, PrechatForm, WidgetSettings, check_origin, widget_channel};
use crate::error::{ApiError, ApiForm, ApiQuery};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::contacts::{CHAT_CONSENT_AT, CHAT_CONSENT_TEXT, ImportedContact};
use crate::store::ratings::{MAX_COMMENT_CHARS, NewRating};
use crate::store::{Channel, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

/// The two routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widget/profile", post(profile))
        .route("/widget/rating", post(rating))
}

#[derive(Deserialize)]
struct ChannelQuery {
    channel: String,
}

/// The pre-chat form as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileForm {
    token: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// `yes` (or `on`, `true`) when the box was ticked.
    #[serde(default)]
    consent: Option<String>,
}

/// A rating as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RatingForm {
    token: String,
    /// The survey message's id.
    survey: String,
    /// 1 to 5.
    rating: String,
    #[serde(default)]
    comment: Option<String>,
}

/// The answer is read by the widget on the creator's pages, whatever their origin.
fn cors() -> [(header::HeaderName, &'static str); 1] {
    [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")]
}

/// Every answer with the CORS header, refusals as problem documents.
fn answer(result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(done) => done,
        Err(e) => (cors(), e).into_response(),
    }
}

/// The channel, its settings, the visitor (their token checked and their pace counted) and the
/// tenant scope.
async fn visitor(
    state: &AppState,
    channel: &str,
    headers: &HeaderMap,
    address: IpAddr,
    token: &str,
) -> Result<(Channel, WidgetSettings, String, TenantScope), ApiError> {
    let (channel, settings) = widget_channel(state, channel).await?;
    check_origin(&settings, headers)?;
    let key = state.secrets.signing_key().to_vec();
    let visitor =
        verify_visitor_token(&key, &channel.id.0.to_string(), token).ok_or_else(|| {
            ApiError::Unauthorized("the visitor token is not valid for this channel".into())
        })?;
    if let Err(why) = state.widget.allow_message(&visitor, address, channel.id) {
        tracing::debug!(%why, "widget form refused");
        return Err(ApiError::TooManyRequests {
            retry_after_secs: 60,
            limit: state.config.widget.messages_per_minute,
        });
    }
    let scope = SystemScope::new("widget visitor").for_tenant(channel.tenant_id);
    Ok((channel, settings, visitor, scope))
}

/// A field's value as the form allows it: trimmed, `None` when empty; an error when required
/// and empty, or sent while off.
fn field(
    name: &str,
    value: Option<String>,
    usage: FieldUse,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    match (usage, &value) {
        (FieldUse::Off, Some(_)) => Err(ApiError::Unprocessable(format!(
            "{name}: this form does not ask for it"
        ))),
        (FieldUse::Required, None) => Err(ApiError::Unprocessable(format!("{name}: required"))),
        (_, Some(v)) if v.chars().count() > max || v.chars().any(char::is_control) => Err(
            ApiError::Unprocessable(format!("{name}: at most {max} printable characters")),
        ),
        _ => Ok(value),
    }
}

/// The contact row the form makes of what the visitor gave.
fn profile_row(
    form: &PrechatForm,
    visitor: String,
    sent: ProfileForm,
    now: chrono::DateTime<Utc>,
) -> Result<ImportedContact, ApiError> {
    let name = field("name", sent.name, form.name, 100)?;
    let email = field("email", sent.email, form.email, 254)?
        .map(|e| crate::http::auth::valid_email(&e))
        .transpose()?;
    let ticked = matches!(
        sent.consent.as_deref().map(str::trim),
        Some("yes" | "on" | "true")
    );
    let mut attributes = serde_json::Map::new();
    if let Some(email) = email {
        attributes.insert("email".into(), email.into());
    }
    // The time and the text agreed to, written together (a new text gets a new time).
    match &form.consent {
        Some(text) if ticked => {
            attributes.insert(CHAT_CONSENT_AT.into(), now.to_rfc3339().into());
            attributes.insert(CHAT_CONSENT_TEXT.into(), text.clone().into());
        }
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "consent: tick the box to start the conversation".into(),
            ));
        }
        None if sent.consent.is_some() => {
            return Err(ApiError::Unprocessable(
                "consent: this form does not ask for it".into(),
            ));
        }
        None => {}
    }
    Ok(ImportedContact {
        external_id: visitor,
        name,
        attributes,
        ..ImportedContact::default()
    })
}

/// The pre-chat form: the visitor's name, e-mail address and consent go onto their contact
/// (made now if they have not written yet). Sending it again updates what changed.
async fn profile(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    query: Result<ApiQuery<ChannelQuery>, ApiError>,
    headers: HeaderMap,
    form: Result<ApiForm<ProfileForm>, ApiError>,
) -> Response {
    answer(
        async {
            let ApiQuery(query) = query?;
            let ApiForm(sent) = form?;
            let (channel, settings, visitor, scope) =
                self::visitor(&state, &query.channel, &headers, address, &sent.token).await?;
            let Some(form) = settings.public.prechat else {
                return Err(ApiError::Forbidden(
                    "this widget has no pre-chat form (prechat is not in its settings)".into(),
                ));
            };
            let row = profile_row(&form, visitor, sent, state.clock.now())?;
            state
                .store
                .import_contacts(&scope, channel.id, vec![row])
                .await?;
            Ok((
                StatusCode::OK,
                cors(),
                Json(serde_json::json!({ "status": "saved" })),
            )
                .into_response())
        }
        .await,
    )
}

/// The visitor's rating of a resolved conversation: 1 to 5 and an optional comment, for the
/// survey message they were sent. Rating again replaces it.
async fn rating(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    query: Result<ApiQuery<ChannelQuery>, ApiError>,
    headers: HeaderMap,
    form: Result<ApiForm<RatingForm>, ApiError>,
) -> Response {
    answer(
        async {
            let ApiQuery(query) = query?;
            let ApiForm(sent) = form?;
            let (channel, _, visitor, scope) =
                self::visitor(&state, &query.channel, &headers, address, &sent.token).await?;
            let rating = match sent.rating.trim().parse::<i16>() {
                Ok(n @ 1..=5) => n,
                _ => return Err(ApiError::Unprocessable("rating: 1 to 5".into())),
            };
            let comment = sent
                .comment
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty());
            if comment
                .as_ref()
                .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
            {
                return Err(ApiError::Unprocessable(format!(
                    "comment: at most {MAX_COMMENT_CHARS} characters"
                )));
            }
            let survey = uuid::Uuid::parse_str(sent.survey.trim())
                .map_err(|_| ApiError::NotFound("survey"))?;
            let stored = state
                .store
                .record_rating(
                    &scope,
                    NewRating {
                        channel: channel.id,
                        external_id: visitor,
                        survey: MessageId(survey),
                        rating,
                        comment,
                        at: Utc::now(),
                    },
                )
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => ApiError::NotFound("survey"),
                    e => e.into(),
                })?;
            metrics::counter!("widget_ratings_total").increment(1);
            Ok((StatusCode::OK, cors(), Json(stored)).into_response())
        }
        .await,
    )
}

/// Whether the visitor must fill in the pre-chat form before a message of theirs is stored:
/// the form asks for consent and they have not given it. Visitors signed in by the creator's
/// site (`user-…`) never fill it in.
pub(super) async fn needs_consent(
    state: &AppState,
    scope: &TenantScope,
    channel: &Channel,
    settings: &WidgetSettings,
    visitor: &str,
) -> Result<bool, StoreError> {
    let asks = settings
        .public
        .prechat
        .as_ref()
        .is_some_and(|f| f.consent.is_some());
    if !asks || visitor.starts_with("user-") {
        return Ok(false);
    }
    Ok(!state
        .store
        .chat_consented(scope, channel.id, visitor)
        .await?)
}

/// When the team resolves a widget conversation whose channel asks for ratings (`csat`), the
/// visitor gets the rating question: a message with five buttons (`csat:1` to `csat:5`) in
/// their language (the tenant's own `strings.csat` first). Resolving again sends none while the
/// last question is unanswered.
pub async fn ask_rating(
    state: &AppState,
    scope: &TenantScope,
    conversation: &crate::store::Conversation,
) -> Result<(), ApiError> {
    let channel = state.store.channel(scope, conversation.channel_id).await?;
    if channel.kind != coach_connector_api::ChannelKind::WebWidget {
        return Ok(());
    }
    // Read alone: the stored configuration holds sealed secrets (`identity_secret`).
    let asks = channel
        .config
        .get("csat")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if !asks {
        return Ok(());
    }
    // One question at a time: the newest message is an unanswered question, nothing to add.
    let latest = state
        .store
        .messages(scope, conversation.id, None, 1, true)
        .await?;
    if let Some(last) = latest.first()
        && crate::store::ratings::is_survey(&last.content)
        && state.store.survey_rating(scope, last.id).await?.is_none()
    {
        return Ok(());
    }
    let (_, profile) = state.store.tenant_profile(scope).await?;
    let persona = profile.persona.unwrap_or_default();
    let lang = state
        .store
        .contact_language(scope, conversation.contact_id)
        .await?;
    let question = crate::language::text(
        &profile.strings.unwrap_or_default(),
        lang.effective(&persona.language),
        crate::language::Text::Csat,
    );
    state
        .stream
        .send(
            scope,
            conversation.id,
            crate::store::ratings::survey(question),
            None,
        )
        .await?;
    Ok(())
}
