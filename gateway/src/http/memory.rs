//! `/v1/contacts/{id}/memory`: what the coach remembers of a contact (goals and facts in their
//! own words, the team's notes), read and edited by members. PUT replaces the whole memory:
//! items sent back unchanged keep their origin, an edited or new item becomes the team's.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Editor, Member, Viewer};
use crate::error::{ApiError, ApiJson};
use crate::http::kit::{self, Id, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;
use crate::store::memory::{MAX_ITEMS, MemoryItem, MemoryKind, MemorySource};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_memory, put_memory))
}

/// A contact's memory.
#[derive(Debug, Serialize, ToSchema)]
pub struct Memory {
    /// Oldest first.
    pub items: Vec<MemoryItem>,
}

/// One item of an edited memory.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryEdit {
    /// The item's id, to keep an existing item (absent for a new one).
    pub id: Option<Uuid>,
    /// Goal, fact or note.
    pub kind: MemoryKind,
    /// What is remembered (1-300 characters).
    #[schema(min_length = 1, max_length = 300)]
    pub text: String,
}

/// The whole edited memory.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryEdits {
    /// Every item to keep, in any order; items left out are forgotten.
    pub items: Vec<MemoryEdit>,
}

/// What the coach remembers of a contact, oldest first (empty for a new contact).
#[utoipa::path(get, path = "/v1/contacts/{id}/memory", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, body = Memory), (status = 404, body = crate::error::Problem)))]
async fn get_memory(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Contact>,
) -> Result<Json<Memory>, ApiError> {
    let items = state.store.memory(&member.scope, id).await?;
    Ok(Json(Memory { items }))
}

/// Replace what the coach remembers of a contact (at most 50 items of 1-300 characters). An
/// item sent back with its id and unchanged keeps its origin; an edited or new one is the
/// team's. Items left out are forgotten.
#[utoipa::path(put, path = "/v1/contacts/{id}/memory", tag = "contacts",
    params(("id" = String, Path, description = "contact id")), request_body = MemoryEdits,
    responses((status = 200, body = Memory), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn put_memory(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Contact>,
    ApiJson(edits): ApiJson<MemoryEdits>,
) -> Result<Json<Memory>, ApiError> {
    if edits.items.len() > MAX_ITEMS {
        return Err(ApiError::Unprocessable(format!(
            "items: at most {MAX_ITEMS} per contact"
        )));
    }
    let known = state.store.memory(&member.scope, id).await?;
    let now = Utc::now();
    let mut items: Vec<MemoryItem> = Vec::with_capacity(edits.items.len());
    for (i, edit) in edits.items.into_iter().enumerate() {
        let text = edit.text.trim().to_string();
        let n = text.chars().count();
        if n == 0 || n > crate::memory::MAX_TEXT || text.chars().any(|c| c.is_control()) {
            return Err(ApiError::Unprocessable(format!(
                "items[{i}].text: 1 to {} characters without control characters",
                crate::memory::MAX_TEXT
            )));
        }
        let before = edit
            .id
            .and_then(|wanted| known.iter().find(|k| k.id == wanted));
        if edit.id.is_some() && items.iter().any(|k| Some(k.id) == edit.id) {
            return Err(ApiError::Unprocessable(format!(
                "items[{i}].id: listed twice"
            )));
        }
        items.push(match before {
            Some(k) if k.text == text && k.kind == edit.kind => k.clone(),
            Some(k) => MemoryItem {
                kind: edit.kind,
                text,
                source: MemorySource::Team,
                message_id: None,
                updated_at: now,
                ..k.clone()
            },
            None => MemoryItem {
                id: Uuid::now_v7(),
                kind: edit.kind,
                text,
                source: MemorySource::Team,
                message_id: None,
                created_at: now,
                updated_at: now,
            },
        });
    }
    let changed = items.iter().filter(|i| !known.contains(i)).count()
        + known
            .iter()
            .filter(|k| !items.iter().any(|i| i.id == k.id))
            .count();
    let items = state.store.set_memory(&member.scope, id, items).await?;
    let mut entry = kit::audit_entry(&member, ip, "contact.memory", "contact", id);
    entry.details = serde_json::json!({ "items": items.len(), "changed": changed });
    state.store.audit(&member.scope, entry).await?;
    Ok(Json(Memory { items }))
}
