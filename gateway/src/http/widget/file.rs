//! Files in the widget: a message that carries a file (the visitor's upload, or one the coach
//! sent from the library) is shown with a link signed for that message and valid for
//! [`FILE_LINK_MAX_AGE_SECS`](coach_web_widget::identity::FILE_LINK_MAX_AGE_SECS),
//! `GET /widget/file/{message}?channel=&exp=&sig=`: the link is the capability, so no visitor
//! token travels in a URL, and a link stops working when the message or the file is erased.
//! Images the widget shows in place are served as images only when their bytes say so;
//! everything else is a download with `nosniff`.

use axum::extract::{Path, State};
use axum::response::Response;
use coach_web_widget::identity::verify_file_signature;
use serde::Deserialize;

use crate::error::{ApiError, ApiQuery};
use crate::state::AppState;
use crate::tenancy::SystemScope;

#[derive(Deserialize)]
pub(super) struct FileQuery {
    channel: String,
    exp: i64,
    sig: String,
}

/// `GET /widget/file/{message}`: the file behind a signed link.
pub(super) async fn download(
    State(state): State<AppState>,
    Path(message): Path<String>,
    ApiQuery(query): ApiQuery<FileQuery>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("file");
    let key = state.secrets.signing_key().to_vec();
    let now = chrono::Utc::now().timestamp();
    if !verify_file_signature(&key, &query.channel, &message, query.exp, &query.sig, now) {
        return Err(not_found());
    }
    let (channel, _) = super::widget_channel(&state, &query.channel).await?;
    let id = uuid::Uuid::parse_str(&message).map_err(|_| not_found())?;
    let scope = SystemScope::new("widget file").for_tenant(channel.tenant_id);
    let message = match state
        .store
        .message(&scope, coach_connector_api::MessageId(id))
        .await
    {
        Ok(m) if m.channel_id == channel.id => m,
        Ok(_) | Err(crate::store::StoreError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let (bytes, declared) = crate::library::message_file(&state.config.data_dir, &message)
        .await
        .ok_or_else(not_found)?;
    let name = message
        .content
        .get("filename")
        .and_then(|n| n.as_str())
        .unwrap_or("file")
        .to_owned();
    // An image only when its bytes are one; anything else as declared, never sniffed.
    let mime = match crate::connectors::media::shown_as(&bytes) {
        Some((mime, "image")) => mime.to_owned(),
        _ if declared.starts_with("image/") => "application/octet-stream".to_owned(),
        _ => declared,
    };
    Ok(crate::http::files::served(&mime, &name, bytes))
}
