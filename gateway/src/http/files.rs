//! `/v1/files`: the tenant's file library. A creator uploads a worksheet or an image once
//! (`POST`, `multipart/form-data` with one `file`), then sends it from the console
//! (`POST /v1/conversations/{id}/messages` with `file_id`) as often as needed. The type is read
//! from the file's bytes (PDF, Office documents, PNG/JPEG, MP3/Ogg/M4A/AAC, MP4),
//! never from its name; the size is capped by `providers.media_max_bytes`.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Editor, Member, Viewer};
use crate::error::{ApiError, ApiMultipart};
use crate::http::kit::{self, Id, resource};
use crate::http::limits::ClientIp;
use crate::library::{self, StageError};
use crate::state::AppState;
use crate::store::files::LibraryFile;

pub(super) fn router(max_bytes: u64) -> OpenApiRouter<AppState> {
    let limit = usize::try_from(max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    OpenApiRouter::new()
        .routes(routes!(add_file, list_files))
        .routes(routes!(download, delete_file))
        .layer(DefaultBodyLimit::max(limit))
}

/// The upload form (`multipart/form-data`): one `file`; its name is the one sent with it.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct FileForm {
    /// The file.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

/// A file name as kept: no path, no control characters, at most 200 characters.
fn clean_name(raw: Option<&str>) -> String {
    let name = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect::<String>();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".into()
    } else {
        name.to_owned()
    }
}

/// Add a file to the library.
#[utoipa::path(post, path = "/v1/files", tag = "files",
    request_body(content = FileForm, content_type = "multipart/form-data"),
    responses((status = 201, body = LibraryFile), (status = 413, body = crate::error::Problem),
        (status = 415, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn add_file(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    ApiMultipart(mut form): ApiMultipart,
) -> Result<(StatusCode, Json<LibraryFile>), ApiError> {
    let max = state.config.providers.media_max_bytes;
    let tenant = member.scope.tenant_id();
    let staging = library::staging(&state.config.data_dir, tenant);
    let bad_form = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "file: larger than {max} bytes (providers.media_max_bytes)"
            ))
        } else {
            ApiError::BadRequest(format!("multipart: {}", e.body_text()))
        }
    };
    let mut staged = None;
    let read = async {
        while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
            if field.name() != Some("file") || staged.is_some() {
                return Err(ApiError::Unprocessable(format!(
                    "unexpected form field {:?}: send one field named file",
                    field.name().unwrap_or("")
                )));
            }
            let name = clean_name(field.file_name());
            let file = library::stage(&mut field, &staging, max)
                .await
                .map_err(|e| match e {
                    StageError::TooLarge => ApiError::PayloadTooLarge(format!(
                        "file: larger than {max} bytes (providers.media_max_bytes)"
                    )),
                    StageError::Form(e) => bad_form(e),
                    StageError::Io(e) => ApiError::Internal(anyhow::anyhow!("staging a file: {e}")),
                })?;
            staged = Some((name, file));
        }
        Ok(())
    }
    .await;
    let (name, file) = match (read, staged) {
        (Ok(()), Some((name, file))) if file.bytes > 0 => (name, file),
        (outcome, staged) => {
            if let Some((_, file)) = staged {
                let _ = tokio::fs::remove_file(&file.path).await;
            }
            outcome?;
            return Err(ApiError::Unprocessable(
                "file: required and not empty".into(),
            ));
        }
    };
    let Some((mime, kind)) = library::accepted(&file.head, file.bytes) else {
        let _ = tokio::fs::remove_file(&file.path).await;
        return Err(ApiError::UnsupportedMediaType(
            "file: send a PDF or Office document, an image (PNG, JPEG), audio (MP3, Ogg, M4A, \
             AAC) or an MP4 video"
                .into(),
        ));
    };
    let record = LibraryFile {
        id: Uuid::now_v7(),
        name,
        mime: mime.to_owned(),
        kind,
        bytes: file.bytes,
        sha256: file.sha256.clone(),
        created_at: Utc::now(),
    };
    // The bytes first: a stored row always has its file.
    if let Err(e) = library::keep(&state.config.data_dir, tenant, record.id, &file.path).await {
        let _ = tokio::fs::remove_file(&file.path).await;
        return Err(ApiError::Internal(anyhow::anyhow!("keeping a file: {e}")));
    }
    if let Err(e) = state.store.add_file(&member.scope, record.clone()).await {
        let _ = library::remove(&state.config.data_dir, tenant, record.id).await;
        return Err(e.into());
    }
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "file.create", "file", record.id),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// The library, newest first.
#[utoipa::path(get, path = "/v1/files", tag = "files",
    responses((status = 200, body = Vec<LibraryFile>)))]
async fn list_files(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<LibraryFile>>, ApiError> {
    Ok(Json(state.store.files(&member.scope).await?))
}

/// A library file's bytes, as a download (never shown in place).
#[utoipa::path(get, path = "/v1/files/{id}", tag = "files",
    params(("id" = String, Path, description = "file id")),
    responses((status = 200, description = "the file, with the type read from its bytes when it was added", content_type = "application/octet-stream"),
        (status = 404, body = crate::error::Problem)))]
async fn download(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::File>,
) -> Result<Response, ApiError> {
    let file = state.store.file(&member.scope, id).await?;
    let bytes = library::read(&state.config.data_dir, member.scope.tenant_id(), id)
        .await
        .ok_or(ApiError::NotFound("file"))?;
    Ok(served(&file.mime, &file.name, bytes))
}

/// A kept file as a download: its type, `nosniff`, a sandbox, and its name.
pub fn served(mime: &str, name: &str, bytes: Vec<u8>) -> Response {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\""),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

/// Remove a file from the library. Messages that sent it keep their text; their file is gone.
#[utoipa::path(delete, path = "/v1/files/{id}", tag = "files",
    params(("id" = String, Path, description = "file id")),
    responses((status = 204), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem)))]
async fn delete_file(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::File>,
) -> Result<StatusCode, ApiError> {
    state.store.file(&member.scope, id).await?;
    if let Some(program) = crate::programs::files::used_by(&state, &member.scope, id).await? {
        return Err(ApiError::Conflict(format!(
            "the program {program:?} sends this file: remove it from its steps first"
        )));
    }
    state.store.delete_file(&member.scope, id).await?;
    // Gone from the library either way; bytes left behind go with the tenant's media folder.
    if let Err(error) = library::remove(&state.config.data_dir, member.scope.tenant_id(), id).await
    {
        tracing::error!(file = %id, %error, "a removed library file's bytes remain");
    }
    state
        .store
        .audit(
            &member.scope,
            kit::audit_entry(&member, ip, "file.delete", "file", id),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
