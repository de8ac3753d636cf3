//! `/v1/contacts`: the people a tenant talks to, and their data-protection rights: export
//! everything about one person as JSON, or erase them with everything derived from them.
//! Audit records of both keep the contact id only, no personal data.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use coach_connector_api::ContactId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Admin, Member, Viewer};
use crate::error::{ApiError, ApiQuery};
use crate::http::kit::{self, Id, PageQuery, Paged, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::ContactRecord;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts))
        .routes(routes!(export_contact))
        .routes(routes!(erase_contact))
}

/// Contacts, newest first.
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", params(PageQuery),
    responses((status = 200, body = Paged<ContactRecord>)))]
async fn list_contacts(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<ContactRecord>>, ApiError> {
    let limit = kit::limit(&q)?;
    let before = kit::Cursor::parse(q.cursor.as_deref())?.map(|c| ContactId(c.id));
    let items = state.store.contacts(&member.scope, before, limit).await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|c| kit::Cursor::id(c.id.0)))
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// Everything stored about one contact, as a JSON download: identities, conversations and
/// messages (the media files they sent inline, base64), handoff requests, program enrollments
/// with what was sent and replied, the opt-out, and events from them the gateway could not read.
#[utoipa::path(get, path = "/v1/contacts/{id}/export", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, description = "the archive", body = Object), (status = 404, body = crate::error::Problem)))]
async fn export_contact(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Contact>,
) -> Result<impl IntoResponse, ApiError> {
    let mut archive = state.store.export_contact(&member.scope, id).await?;
    attach_media(&state, &member.scope, id, &mut archive).await;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "contact.export", "contact", id),
        )
        .await?;
    let disposition = format!("attachment; filename=\"contact-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(archive)))
}

/// The most media bytes inlined in one export; beyond it, files are linked
/// (`media_url`, `GET /v1/messages/{id}/media`) instead.
const EXPORT_INLINE_MEDIA: u64 = 64 * 1024 * 1024;

/// Puts the files a contact sent into their export (`media` on each message that has one).
async fn attach_media(
    state: &AppState,
    scope: &crate::tenancy::TenantScope,
    contact: ContactId,
    archive: &mut serde_json::Value,
) {
    use base64::Engine as _;
    let dir =
        crate::connectors::media::contact_dir(&state.config.data_dir, scope.tenant_id(), contact);
    let mut inlined = 0u64;
    let Some(conversations) = archive["conversations"].as_array_mut() else {
        return;
    };
    for conversation in conversations {
        let Some(messages) = conversation["messages"].as_array_mut() else {
            continue;
        };
        for message in messages {
            let Some(file) = message["content"].get("file").cloned() else {
                continue;
            };
            let Some(id) = message["id"].as_str().map(str::to_owned) else {
                continue;
            };
            let path = dir.join(&id);
            let size = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
            let media = match size {
                None => serde_json::json!({ "missing": true }),
                Some(size) if inlined + size > EXPORT_INLINE_MEDIA => {
                    serde_json::json!({ "media_url": format!("/v1/messages/{id}/media"), "size": size })
                }
                Some(size) => match tokio::fs::read(&path).await {
                    Ok(bytes) => {
                        inlined += size;
                        serde_json::json!({
                            "mime": file["mime"],
                            "size": size,
                            "base64": base64::engine::general_purpose::STANDARD.encode(bytes),
                        })
                    }
                    Err(_) => serde_json::json!({ "missing": true }),
                },
            };
            message["media"] = media;
        }
    }
}

/// Erase a contact with their conversations, messages and everything derived from them.
#[utoipa::path(delete, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn erase_contact(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Contact>,
) -> Result<StatusCode, ApiError> {
    crate::safety::erase_contact(&state, &member.scope, id).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "contact.erase", "contact", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
