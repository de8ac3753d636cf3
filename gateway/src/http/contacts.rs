//! `/v1/contacts`: the people a tenant talks to, brought in from a CSV file, and their
//! data-protection rights: export everything about one person as JSON, or erase them with
//! everything derived from them.
//! Audit records of both keep the contact id only, no personal data.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use coach_connector_api::{ChannelId, ChannelKind, ContactId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Admin, Editor, Member, Viewer};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::http::kit::{self, Id, PageQuery, Paged, resource};
use crate::http::limits::ClientIp;
use crate::import::{Addressing, FileError, RowError};
use crate::state::AppState;
use crate::store::ContactRecord;
use crate::store::contacts::ImportCounts;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts))
        .routes(routes!(export_contact))
        .routes(routes!(get_contact, erase_contact, update_contact))
        .routes(routes!(import_contacts))
        .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
}

/// The largest CSV file an import takes (about 100,000 rows).
const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// Where imported contacts are reached and how the file is read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The channel the contacts are reached on (WhatsApp: by phone number).
    pub channel_id: Uuid,
    /// Check the file and report, storing nothing.
    pub dry_run: Option<bool>,
    /// The country (ISO 3166 alpha-2, e.g. `DE`) of phone numbers written without a country
    /// code.
    #[param(pattern = r"^[A-Za-z]{2}$")]
    pub default_country: Option<String>,
}

/// What an import did (or, with `dry_run`, would do).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    /// Nothing was stored.
    pub dry_run: bool,
    /// Data rows in the file (blank lines aside).
    pub rows: u64,
    /// Rows that were good.
    pub valid: u64,
    /// Good rows folded into an earlier row for the same address.
    pub merged: u64,
    /// New, updated and unchanged contacts.
    #[serde(flatten)]
    pub counts: ImportCounts,
    /// Bad rows.
    pub invalid: u64,
    /// The bad rows (the first 1,000), with their line (the header is line 1) and why.
    pub errors: Vec<RowError>,
}

/// Import contacts from a CSV file (`text/csv`) whose header names the columns: `name`,
/// `phone` (or `external_id`), `time_zone`, optionally `language`, `consent` (yes/no) and any
/// custom fields. Phone numbers are stored in E.164; rows for the same address are merged, known
/// contacts updated (an empty cell keeps what is stored), so running the same file again
/// changes nothing. Good rows are imported in one transaction; bad ones are listed.
#[utoipa::path(post, path = "/v1/contacts/import", tag = "contacts", params(ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 404, body = crate::error::Problem),
        (status = 413, body = crate::error::Problem), (status = 415, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn import_contacts(
    State(state): State<AppState>,
    member: Member<Admin>,
    ip: ClientIp,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let csv_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(csv_type.as_deref(), Some("text/csv" | "application/csv")) {
        return Err(ApiError::UnsupportedMediaType(
            "send the file as text/csv".into(),
        ));
    }
    let channel = state
        .store
        .channel(&member.scope, ChannelId(q.channel_id))
        .await?;
    let addressing = match channel.kind {
        ChannelKind::WhatsApp => Addressing::Phone,
        _ => Addressing::ChannelId,
    };
    let country = match q.default_country.as_deref() {
        None => None,
        Some(code) => Some(
            code.to_uppercase()
                .parse::<phonenumber::country::Id>()
                .map_err(|_| {
                    ApiError::Unprocessable(format!(
                        "default_country: {code:?} is not an ISO 3166 country code"
                    ))
                })?,
        ),
    };
    let parsed =
        tokio::task::spawn_blocking(move || crate::import::parse(&body, addressing, country))
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the file: {e}")))?
            .map_err(|e| match e {
                FileError::TooMany => ApiError::PayloadTooLarge(e.to_string()),
                FileError::Header(m) => ApiError::Unprocessable(m),
            })?;
    let dry_run = q.dry_run.unwrap_or(false);
    let valid = parsed.rows - parsed.errors.len() as u64;
    let counts = if dry_run {
        state
            .store
            .preview_import(&member.scope, channel.id, parsed.contacts)
            .await?
    } else {
        state
            .store
            .import_contacts(&member.scope, channel.id, parsed.contacts)
            .await?
    };
    let invalid = parsed.errors.len() as u64;
    let mut errors = parsed.errors;
    errors.truncate(crate::import::MAX_LISTED_ERRORS);
    if !dry_run {
        let mut entry = kit::audit_entry(&member, ip, "contacts.import", "channel", channel.id);
        entry.details = serde_json::json!({
            "rows": parsed.rows, "created": counts.created, "updated": counts.updated,
            "unchanged": counts.unchanged, "invalid": invalid,
        });
        state.store.audit(&member.scope, entry).await?;
    }
    Ok(Json(ImportReport {
        dry_run,
        rows: parsed.rows,
        valid,
        merged: parsed.merged,
        counts,
        invalid,
        errors,
    }))
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

/// One contact: identities, the details an import gave, their languages.
#[utoipa::path(get, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, body = ContactRecord), (status = 404, body = crate::error::Problem)))]
async fn get_contact(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Contact>,
) -> Result<Json<ContactRecord>, ApiError> {
    Ok(Json(state.store.contact(&member.scope, id).await?))
}

/// A change to a contact.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUpdate {
    /// The language the coach answers them in (BCP 47, e.g. `pt-BR`); `null` returns to the one
    /// detected in their messages.
    pub language: Option<String>,
}

/// A contact's language.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactLanguageView {
    /// The contact.
    #[schema(value_type = String, format = Uuid)]
    pub id: ContactId,
    /// As the team set it: the coach answers in it.
    pub language: Option<String>,
    /// As detected in their messages (used while `language` is not set).
    pub detected_language: Option<String>,
}

/// Choose the language the coach answers a contact in (over the one detected in their
/// messages), or clear it with `null`.
#[utoipa::path(patch, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "contact id")), request_body = ContactUpdate,
    responses((status = 200, body = ContactLanguageView), (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)))]
async fn update_contact(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Contact>,
    ApiJson(update): ApiJson<ContactUpdate>,
) -> Result<Json<ContactLanguageView>, ApiError> {
    let language = update.language.map(|l| l.trim().to_ascii_lowercase());
    if let Some(tag) = &language
        && !crate::language::valid_tag(tag)
    {
        return Err(ApiError::Unprocessable(format!(
            "language: {tag:?} is not a language tag such as en or pt-br"
        )));
    }
    state
        .store
        .set_contact_language(&member.scope, id, language)
        .await?;
    let now = state.store.contact_language(&member.scope, id).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "contact.update", "contact", id),
        )
        .await?;
    Ok(Json(ContactLanguageView {
        id,
        language: now.chosen,
        detected_language: now.detected,
    }))
}
