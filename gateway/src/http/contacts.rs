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
use uuid::Uuid;

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
    let before = q.cursor.as_deref().map(|c| {
        kit::decode_cursor(c)?
            .parse::<Uuid>()
            .map(ContactId)
            .map_err(|_| ApiError::BadRequest("cursor: not a cursor this API returned".into()))
    });
    let items = state
        .store
        .contacts(&member.scope, before.transpose()?, limit)
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(|c| kit::encode_cursor(&c.id.to_string())))
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// Everything stored about one contact (identities, conversations, messages), as a JSON
/// download.
#[utoipa::path(get, path = "/v1/contacts/{id}/export", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, description = "the archive", body = Object), (status = 404, body = crate::error::Problem)))]
async fn export_contact(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    Id(id): Id<resource::Contact>,
) -> Result<impl IntoResponse, ApiError> {
    let archive = state.store.export_contact(&member.scope, id).await?;
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
    state.store.erase_contact(&member.scope, id).await?;
    crate::connectors::media::remove_dir(crate::connectors::media::contact_dir(
        &state.config.data_dir,
        member.scope.tenant_id(),
        id,
    ))
    .await;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "contact.erase", "contact", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
