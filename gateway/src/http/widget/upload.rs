//! `POST /widget/upload?channel={id}`: a visitor attaches an image (PNG, JPEG, WebP, GIF) or a
//! PDF in the widget, or sends a voice note recorded there (Ogg or WebM). A `multipart/form-data` form (a simple request: no CORS preflight) with
//! the visitor's `token` (from the socket's `welcome`), the widget's `client_id` (retries store
//! it once), an optional `caption` and the `file`. The type is read from the file's bytes,
//! never from what the browser declared; the size is capped by `providers.media_max_bytes`.
//! The file is written first (a staging name under the tenant's media folder), then the message
//! is stored through the conversation stream like any inbound media, then the file takes the
//! message's place in the media store (`<tenant>/<contact>/<message>`): the same storage,
//! export, retention and erasure as media from WhatsApp or Telegram. Answered 201 only once
//! both are kept.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use coach_connector_api::{
    ChannelIdentity, Content, DedupKey, InboundEvent, InboundMessage, MediaKind,
};
use coach_web_widget::identity::verify_visitor_token;
use serde::Deserialize;

use super::{check_origin, widget_channel};
use crate::connectors::media::{contact_dir, tenant_dir};
use crate::error::{ApiError, ApiMultipart, ApiQuery};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::{Channel, StoredEvent};
use crate::tenancy::SystemScope;

/// The upload route, with its own body limit (the file, plus the form's framing).
pub fn router(max_bytes: u64) -> Router<AppState> {
    let limit = usize::try_from(max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    Router::new()
        .route("/widget/upload", post(upload))
        .layer(DefaultBodyLimit::max(limit))
}

#[derive(Deserialize)]
struct UploadQuery {
    channel: String,
}

/// What the widget may attach, from the file's first bytes: `(mime, kind)`.
pub fn accepted(bytes: &[u8]) -> Option<(&'static str, MediaKind)> {
    let mime = infer::get(bytes)?.mime_type();
    match mime {
        "image/png" | "image/jpeg" | "image/webp" | "image/gif" => Some((mime, MediaKind::Image)),
        "application/pdf" => Some((mime, MediaKind::Document)),
        // A recording made in the widget (Opus in Ogg, or in WebM, which reads as video/webm
        // from its bytes): a voice note, transcribed like one from WhatsApp.
        "audio/ogg" | "audio/webm" | "video/webm" => Some((mime, MediaKind::Voice)),
        _ => None,
    }
}

/// A form as read: the visitor (their token checked and their pace counted when the file
/// starts, so no unauthenticated file is ever read) and the file, streamed to `staged`.
struct Form {
    visitor: String,
    client_id: String,
    caption: Option<String>,
    filename: Option<String>,
    staged: PathBuf,
    bytes: u64,
    sha256: String,
    head: Vec<u8>,
}

/// Who may send: the channel, where the request came from.
struct Gate<'a> {
    state: &'a AppState,
    channel: &'a Channel,
    address: IpAddr,
}

impl Gate<'_> {
    fn visitor(&self, token: Option<&str>) -> Result<String, ApiError> {
        let token = token.ok_or_else(|| {
            ApiError::Unauthorized("token: the visitor token comes before the file".into())
        })?;
        let key = self.state.secrets.signing_key().to_vec();
        let visitor = verify_visitor_token(&key, &self.channel.id.0.to_string(), token)
            .ok_or_else(|| {
                ApiError::Unauthorized("the visitor token is not valid for this channel".into())
            })?;
        if let Err(why) = self
            .state
            .widget
            .allow_message(&visitor, self.address, self.channel.id)
        {
            tracing::debug!(%why, "widget upload refused");
            return Err(ApiError::TooManyRequests {
                retry_after_secs: 60,
                limit: self.state.config.widget.messages_per_minute,
            });
        }
        Ok(visitor)
    }
}

fn valid_client_id(c: &str) -> bool {
    (1..=64).contains(&c.len())
        && c.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads the form: `token` and `client_id` first, then `file` (streamed to a staging file
/// under `staging`), `caption` anywhere. On an error the staging file is gone.
async fn read_form(
    mut form: Multipart,
    gate: &Gate<'_>,
    staging: &Path,
    max: u64,
) -> Result<Form, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "file: larger than {max} bytes (providers.media_max_bytes)"
        ))
    };
    let failed = |e: axum::extract::multipart::MultipartError, what: &str| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::BadRequest(format!("{what}: {}", e.body_text()))
        }
    };
    let internal =
        |e: std::io::Error| ApiError::Internal(anyhow::anyhow!("staging an upload: {e}"));
    let (mut token, mut client_id, mut caption) = (None::<String>, None::<String>, None);
    let mut file: Option<Form> = None;
    let outcome = async {
        while let Some(mut field) = form
            .next_field()
            .await
            .map_err(|e| failed(e, "multipart"))?
        {
            match field.name() {
                Some("file") if file.is_none() => {
                    let visitor = gate.visitor(token.as_deref())?;
                    if !client_id.as_deref().is_some_and(valid_client_id) {
                        return Err(ApiError::Unprocessable(
                            "client_id: required before the file, 1-64 letters, digits, - or _"
                                .into(),
                        ));
                    }
                    let name = field
                        .file_name()
                        .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
                        .filter(|n| !n.trim().is_empty());
                    let staged = crate::library::stage(&mut field, staging, max)
                        .await
                        .map_err(|e| match e {
                            crate::library::StageError::TooLarge => too_large(),
                            crate::library::StageError::Form(e) => failed(e, "file"),
                            crate::library::StageError::Io(e) => internal(e),
                        })?;
                    file = Some(Form {
                        visitor,
                        client_id: client_id.clone().unwrap_or_default(),
                        caption: None,
                        filename: name,
                        staged: staged.path,
                        bytes: staged.bytes,
                        sha256: staged.sha256,
                        head: staged.head,
                    });
                }
                Some(name @ ("token" | "client_id" | "caption")) => {
                    let name = name.to_string();
                    let text = field
                        .text()
                        .await
                        .map_err(|e| ApiError::BadRequest(format!("{name}: {}", e.body_text())))?;
                    if text.chars().count() > 1024 {
                        return Err(ApiError::Unprocessable(format!(
                            "{name}: at most 1024 characters"
                        )));
                    }
                    match name.as_str() {
                        "token" => token = Some(text),
                        "client_id" => client_id = Some(text),
                        _ => caption = Some(text.trim().to_owned()).filter(|c| !c.is_empty()),
                    }
                }
                other => {
                    return Err(ApiError::Unprocessable(format!(
                        "unexpected form field {other:?}: send token, client_id, then one file, and optionally caption"
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    let done = match (outcome, &file) {
        (Ok(()), Some(form)) if form.bytes > 0 => Ok(()),
        (Ok(()), _) => Err(ApiError::Unprocessable(
            "file: required and not empty".into(),
        )),
        (Err(e), _) => Err(e),
    };
    match (done, file) {
        (Ok(()), Some(form)) => Ok(Form { caption, ..form }),
        (Ok(()), None) => Err(ApiError::Unprocessable("file: required".into())),
        (Err(e), file) => {
            if let Some(form) = file {
                let _ = tokio::fs::remove_file(&form.staged).await;
            }
            Err(e)
        }
    }
}

async fn upload(
    state: State<AppState>,
    address: ClientIp,
    query: Result<ApiQuery<UploadQuery>, ApiError>,
    headers: HeaderMap,
    form: Result<ApiMultipart, ApiError>,
) -> Response {
    // Every answer, refusals included, is readable by the widget (it shows why).
    let answer = match (query, form) {
        (Ok(ApiQuery(query)), Ok(ApiMultipart(form))) => {
            store_upload(state, address, query, headers, form).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match answer {
        Ok(done) => done,
        Err(e) => (cors(), e).into_response(),
    }
}

async fn store_upload(
    State(state): State<AppState>,
    ClientIp(address): ClientIp,
    query: UploadQuery,
    headers: HeaderMap,
    form: Multipart,
) -> Result<Response, ApiError> {
    let (channel, settings) = widget_channel(&state, &query.channel).await?;
    check_origin(&settings, &headers)?;
    if !settings.public.uploads {
        return Err(ApiError::Forbidden(
            "this widget does not take files (uploads is off in its settings)".into(),
        ));
    }
    let tenant = channel.tenant_id;
    let gate = Gate {
        state: &state,
        channel: &channel,
        address,
    };
    // Written before the message is stored, so a stored upload always has its file.
    let staging = tenant_dir(&state.config.data_dir, tenant).join(".uploads");
    let form = read_form(
        form,
        &gate,
        &staging,
        state.config.providers.media_max_bytes,
    )
    .await?;
    let scope = SystemScope::new("widget upload").for_tenant(tenant);
    match super::visitor::needs_consent(&state, &scope, &channel, &settings, &form.visitor).await {
        Ok(false) => {}
        refused => {
            let _ = tokio::fs::remove_file(&form.staged).await;
            return Err(match refused {
                Err(e) => e.into(),
                _ => ApiError::Forbidden(
                    "consent: fill in the chat's form first (POST /widget/profile)".into(),
                ),
            });
        }
    }
    let Some((mime, media)) = accepted(&form.head) else {
        let _ = tokio::fs::remove_file(&form.staged).await;
        return Err(ApiError::UnsupportedMediaType(
            "file: only images (PNG, JPEG, WebP, GIF), PDF documents and voice recordings (Ogg, WebM) can be sent here".into(),
        ));
    };
    let event = InboundEvent::Message(InboundMessage {
        dedup_key: DedupKey(format!("{}:{}", form.visitor, form.client_id)),
        provider_message_id: form.client_id.clone(),
        from: ChannelIdentity {
            id: form.visitor.clone(),
            display_name: None,
            username: None,
        },
        timestamp: Utc::now(),
        content: Content::Media {
            media,
            media_ref: format!("upload:{}", form.client_id),
            mime: Some(mime.into()),
            size: Some(form.bytes),
            caption: form.caption.clone(),
            filename: form.filename.clone(),
        },
        reply_to: None,
    });
    let report = match state.stream.ingest(&scope, channel.id, vec![event]).await {
        Ok(report) => report,
        Err(e) => {
            let _ = tokio::fs::remove_file(&form.staged).await;
            return Err(e.into());
        }
    };
    let (message, status) = match report.stored.into_iter().next() {
        Some(StoredEvent::Message(message)) => (message, StatusCode::CREATED),
        // Sent before (a retry after a lost answer): that message keeps its file, or gets this
        // one if it was stored without it.
        _ => match sent_before(&state, &scope, &channel, &form).await? {
            Some(message) if message.content.get("file").is_none() => (message, StatusCode::OK),
            found => {
                let _ = tokio::fs::remove_file(&form.staged).await;
                let id = found.map(|m| m.id);
                return Ok((
                    StatusCode::OK,
                    cors(),
                    Json(serde_json::json!({ "id": id, "status": "duplicate" })),
                )
                    .into_response());
            }
        },
    };
    keep(&state, &scope, &message, &form, mime).await?;
    metrics::counter!("widget_uploads_total").increment(1);
    Ok((
        status,
        cors(),
        Json(serde_json::json!({ "id": message.id, "status": "stored" })),
    )
        .into_response())
}

/// The message an earlier try of this upload stored (its client id, among the conversation's
/// latest messages).
async fn sent_before(
    state: &AppState,
    scope: &crate::tenancy::TenantScope,
    channel: &Channel,
    form: &Form,
) -> Result<Option<crate::store::StoredMessage>, ApiError> {
    let Some((conversation, _)) = state
        .store
        .conversation_by_contact(scope, channel.id, &form.visitor)
        .await?
    else {
        return Ok(None);
    };
    let latest = state
        .store
        .messages(scope, conversation, None, 200, true)
        .await?;
    Ok(latest
        .into_iter()
        .find(|m| m.provider_message_id.as_deref() == Some(form.client_id.as_str())))
}

/// Moves the staged file to the message's place in the media store and records it there.
async fn keep(
    state: &AppState,
    scope: &crate::tenancy::TenantScope,
    message: &crate::store::StoredMessage,
    form: &Form,
    mime: &str,
) -> Result<(), ApiError> {
    let dir = contact_dir(
        &state.config.data_dir,
        scope.tenant_id(),
        message.contact_id,
    );
    let path = dir.join(message.id.0.to_string());
    let moved = async {
        crate::files::private_dir_async(&dir).await?;
        tokio::fs::rename(&form.staged, &path).await
    }
    .await;
    if let Err(e) = moved {
        let _ = tokio::fs::remove_file(&form.staged).await;
        return Err(ApiError::Internal(anyhow::anyhow!(
            "keeping an upload: {e}"
        )));
    }
    let record = serde_json::json!({ "bytes": form.bytes, "mime": mime, "sha256": form.sha256 });
    match state.store.attach_media(scope, message.id, record).await {
        Ok(()) => Ok(()),
        // Erased meanwhile: the file goes too (its folder with it, if it was made for it).
        Err(crate::store::StoreError::NotFound(_)) => {
            let _ = tokio::fs::remove_file(&path).await;
            let _ = tokio::fs::remove_dir(&dir).await;
            Err(ApiError::NotFound("conversation"))
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(e.into())
        }
    }
}

/// The answer is read by the widget on the creator's pages, whatever their origin (the form
/// carries the visitor's token; no cookie is involved).
fn cors() -> [(header::HeaderName, &'static str); 1] {
    [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_and_pdf_are_taken_whatever_their_name() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
        ];
        assert_eq!(accepted(&png).map(|a| a.0), Some("image/png"));
        assert_eq!(
            accepted(b"%PDF-1.7\n").map(|a| a.0),
            Some("application/pdf")
        );
        assert!(accepted(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>").is_none());
        assert!(accepted(b"<html><script>alert(1)</script></html>").is_none());
        assert!(accepted(b"MZ\x90\x00").is_none(), "an executable");
    }
}
