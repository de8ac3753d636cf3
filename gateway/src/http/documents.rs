//! `/v1/documents`: the tenant's knowledge base. Uploads (multipart: a `file`, or a web page
//! `url`) are stored with their bytes and an ingestion job in one transaction and answered
//! 202; ingestion runs in the background with status and progress.

use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;

use coach_brain::extract::DocumentKind;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Editor, Member, Viewer};
use crate::error::{ApiError, ApiMultipart, ApiQuery};
use crate::http::kit::{self, Cursor, Id, PageQuery, Paged, limit, resource};
use crate::http::limits::ClientIp;
use crate::knowledge::ingest::kind_name;
use crate::state::AppState;
use crate::store::Page;
use crate::store::documents::{Document, NewDocument};

pub(super) fn router(max_upload: u64) -> OpenApiRouter<AppState> {
    // Multipart framing adds a little to the file itself.
    let limit = usize::try_from(max_upload)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    OpenApiRouter::new()
        .routes(routes!(upload, list_documents))
        .routes(routes!(get_document, delete_document))
        .routes(routes!(reindex))
        .layer(DefaultBodyLimit::max(limit))
}

/// The upload form (`multipart/form-data`): `file`, or `url`; `title` is optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// A PDF, DOCX, Markdown, HTML or text file.
    #[schema(format = Binary, value_type = Option<String>)]
    file: Option<Vec<u8>>,
    /// A public web page to import instead of a file.
    #[schema(max_length = 2048)]
    url: Option<String>,
    /// Title for citations (default: the document's own title, else the file name).
    #[schema(max_length = 2048)]
    title: Option<String>,
}

struct Upload {
    bytes: Vec<u8>,
    filename: Option<String>,
    content_type: Option<String>,
    url: Option<String>,
    title: Option<String>,
}

async fn read_form(mut form: Multipart, max: u64) -> Result<Upload, ApiError> {
    let mut upload = Upload {
        bytes: Vec::new(),
        filename: None,
        content_type: None,
        url: None,
        title: None,
    };
    let mut has_file = false;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "file: larger than {max} bytes (brain.max_upload_bytes)"
        ))
    };
    // A body over the route's limit fails whichever read comes first.
    let failed = |e: axum::extract::multipart::MultipartError, what: &str| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::BadRequest(format!("{what}: {}", e.body_text()))
        }
    };
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| failed(e, "multipart"))?
    {
        match field.name() {
            Some("file") => {
                upload.filename = field.file_name().map(str::to_string);
                upload.content_type = field.content_type().map(str::to_string);
                while let Some(chunk) = field.chunk().await.map_err(|e| failed(e, "file"))? {
                    upload.bytes.extend_from_slice(&chunk);
                    if upload.bytes.len() as u64 > max {
                        return Err(too_large());
                    }
                }
                has_file = true;
            }
            Some(name @ ("url" | "title")) => {
                let name = name.to_string();
                let text = field
                    .text()
                    .await
                    .map_err(|e| ApiError::BadRequest(format!("{name}: {}", e.body_text())))?;
                if text.chars().count() > 2048 {
                    return Err(ApiError::Unprocessable(format!(
                        "{name}: at most 2048 characters"
                    )));
                }
                let text = text.trim().to_string();
                if name == "url" {
                    upload.url = Some(text);
                } else if !text.is_empty() {
                    upload.title = Some(text);
                }
            }
            Some(other) => {
                return Err(ApiError::Unprocessable(format!(
                    "unknown form field {other:?}: send file (or url) and optionally title"
                )));
            }
            None => {
                return Err(ApiError::BadRequest(
                    "multipart: a field without a name".into(),
                ));
            }
        }
    }
    match (has_file, &upload.url) {
        (true, Some(_)) => Err(ApiError::Unprocessable(
            "send a file or a url, not both".into(),
        )),
        (false, None) => Err(ApiError::Unprocessable(
            "send a file (PDF, DOCX, Markdown, HTML or text) or a url".into(),
        )),
        (true, None) if upload.bytes.is_empty() => {
            Err(ApiError::Unprocessable("file: the file is empty".into()))
        }
        _ => Ok(upload),
    }
}

/// Add a document (a file, or a public web page by URL); it is indexed in the background.
#[utoipa::path(post, path = "/v1/documents", tag = "documents",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = Document), (status = 413, body = crate::error::Problem),
        (status = 415, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn upload(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    ApiMultipart(form): ApiMultipart,
) -> Result<(StatusCode, Json<Document>), ApiError> {
    let max = state.config.brain.max_upload_bytes;
    let mut upload = read_form(form, max).await?;
    if let Some(url) = upload.url.clone() {
        let page = state.fetcher.fetch(&url).await.map_err(|e| match e {
            crate::fetch::FetchError::TooLarge(_) => ApiError::PayloadTooLarge(e.to_string()),
            other => ApiError::Unprocessable(other.to_string()),
        })?;
        upload.bytes = page.body;
        upload.content_type = page.content_type;
        upload.url = Some(page.url);
    }
    let kind = DocumentKind::detect(
        upload.filename.as_deref(),
        upload.content_type.as_deref(),
        &upload.bytes,
    )
    .map_err(|e| ApiError::UnsupportedMediaType(e.to_string()))?;
    let title = upload
        .title
        .or_else(|| upload.filename.clone())
        .or_else(|| upload.url.clone())
        .unwrap_or_else(|| "Untitled".into());
    let sha256 = hex::encode(Sha256::digest(&upload.bytes));
    let document = state
        .store
        .create_document(
            &member.scope,
            NewDocument {
                title,
                filename: upload.filename,
                source_url: upload.url,
                kind: kind_name(kind).into(),
                content: upload.bytes,
                sha256,
            },
        )
        .await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "document.create", "document", document.id),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(document)))
}

/// The tenant's documents, newest first, with their ingestion status.
#[utoipa::path(get, path = "/v1/documents", tag = "documents", params(PageQuery),
    responses((status = 200, body = Paged<Document>)))]
async fn list_documents(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Paged<Document>>, ApiError> {
    let limit = limit(&q)?;
    let before = Cursor::parse(q.cursor.as_deref())?.map(|c| (c.at, c.id));
    let items = state
        .store
        .documents(&member.scope, Page { before, limit })
        .await?;
    let next_cursor = (items.len() == limit as usize)
        .then(|| {
            items.last().map(|d| {
                Cursor {
                    at: d.created_at,
                    id: d.id,
                }
                .to_string()
            })
        })
        .flatten();
    Ok(Json(Paged { items, next_cursor }))
}

/// One document: status, progress and chunk count.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents", params(("id" = String, Path, description = "document id")),
    responses((status = 200, body = Document), (status = 404, body = crate::error::Problem)))]
async fn get_document(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Document>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(state.store.document(&member.scope, id).await?))
}

/// Delete a document and every chunk of it.
#[utoipa::path(delete, path = "/v1/documents/{id}", tag = "documents", params(("id" = String, Path, description = "document id")),
    responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_document(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Document>,
) -> Result<StatusCode, ApiError> {
    // The deletion records that its chunks must go; search already ignores them. They go now
    // when the vector store answers, else later (an ingestion still running removes its own
    // when it notices).
    state.store.delete_document(&member.scope, id).await?;
    crate::knowledge::forget_erased(state.store.as_ref(), &state.knowledge).await;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "document.delete", "document", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Index the document again (e.g. after changing the embedding model or chunk size). Search
/// keeps using the current version until the new one is ready.
#[utoipa::path(post, path = "/v1/documents/{id}/reindex", tag = "documents", params(("id" = String, Path, description = "document id")),
    responses((status = 202, body = Document), (status = 404, body = crate::error::Problem)))]
async fn reindex(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Document>,
) -> Result<(StatusCode, Json<Document>), ApiError> {
    let document = state.store.reindex_document(&member.scope, id).await?;
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "document.reindex", "document", id),
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(document)))
}
