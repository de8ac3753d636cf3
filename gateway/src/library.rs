//! The tenant's file library on disk: `<data_dir>/media/<tenant>/library/<file id>`, private
//! files like every kept media file, erased with the tenant's media folder and skipped by
//! message retention (see [`crate::store::files`]). Also the streaming of an uploaded form
//! field to a staging file, shared by the library and the widget's uploads.

use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, MultipartError};
use coach_connector_api::{MediaKind, TenantId};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use crate::connectors::media::tenant_dir;

/// The folder under a tenant's media folder that holds the library (never a contact's id).
pub const FOLDER: &str = "library";

/// Bytes of a file's start kept to read its type.
pub const HEAD: usize = 8 * 1024;

/// Where a library file's bytes are.
pub fn path(data_dir: &Path, tenant: TenantId, id: Uuid) -> PathBuf {
    tenant_dir(data_dir, tenant)
        .join(FOLDER)
        .join(id.to_string())
}

/// Where uploads are written until they are kept.
pub fn staging(data_dir: &Path, tenant: TenantId) -> PathBuf {
    tenant_dir(data_dir, tenant).join(".uploads")
}

/// The largest image sent as an image (WhatsApp's limit; Telegram's is 10 MB): a larger one
/// goes as a document.
pub const MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// What the library takes, from a file's first bytes (never its name or declared type): the
/// type providers are told and how channels show it, for a file of `bytes`. PNG and JPEG as
/// images (up to [`MAX_IMAGE_BYTES`]); PDF and Office documents as documents; MP3, Ogg, M4A and
/// AAC as audio; MP4 as video: what WhatsApp and Telegram both take.
pub fn accepted(head: &[u8], bytes: u64) -> Option<(&'static str, MediaKind)> {
    let mime = infer::get(head)?.mime_type();
    let kind = match mime {
        "image/png" | "image/jpeg" if bytes <= MAX_IMAGE_BYTES => MediaKind::Image,
        "image/png" | "image/jpeg" | "application/pdf" => MediaKind::Document,
        m if m.starts_with("application/vnd.openxmlformats-officedocument.") => MediaKind::Document,
        "audio/mpeg" | "audio/ogg" | "audio/aac" => MediaKind::Audio,
        "audio/m4a" => return Some(("audio/mp4", MediaKind::Audio)),
        "video/mp4" => MediaKind::Video,
        _ => return None,
    };
    Some((mime, kind))
}

/// A form field streamed to a staging file.
pub struct Staged {
    /// The staging file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, in hex.
    pub sha256: String,
    /// Its first [`HEAD`] bytes (to read its type).
    pub head: Vec<u8>,
}

/// Why a field could not be staged.
pub enum StageError {
    /// Over `max` bytes.
    TooLarge,
    /// The form broke off or was malformed.
    Form(MultipartError),
    /// The disk refused.
    Io(std::io::Error),
}

/// Stream `field` to a new private file in `dir`, at most `max` bytes; on an error the
/// staging file is gone.
pub async fn stage(field: &mut Field<'_>, dir: &Path, max: u64) -> Result<Staged, StageError> {
    crate::files::private_dir_async(dir)
        .await
        .map_err(StageError::Io)?;
    let path = dir.join(format!("{}.part", Uuid::now_v7()));
    let written = async {
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .await
            .map_err(StageError::Io)?;
        let (mut bytes, mut hash, mut head) = (0u64, Sha256::new(), Vec::new());
        while let Some(chunk) = field.chunk().await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                StageError::TooLarge
            } else {
                StageError::Form(e)
            }
        })? {
            bytes += chunk.len() as u64;
            if bytes > max {
                return Err(StageError::TooLarge);
            }
            if head.len() < HEAD {
                head.extend_from_slice(&chunk[..chunk.len().min(HEAD - head.len())]);
            }
            hash.update(&chunk);
            out.write_all(&chunk).await.map_err(StageError::Io)?;
        }
        out.flush().await.map_err(StageError::Io)?;
        Ok((bytes, hex::encode(hash.finalize()), head))
    }
    .await;
    match written {
        Ok((bytes, sha256, head)) => Ok(Staged {
            path,
            bytes,
            sha256,
            head,
        }),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            Err(e)
        }
    }
}

/// Move a staged file into the library as `id`.
pub async fn keep(
    data_dir: &Path,
    tenant: TenantId,
    id: Uuid,
    staged: &Path,
) -> std::io::Result<()> {
    let target = path(data_dir, tenant, id);
    if let Some(dir) = target.parent() {
        crate::files::private_dir_async(dir).await?;
    }
    tokio::fs::rename(staged, &target).await
}

/// A library file's bytes (`None` when it is not there).
pub async fn read(data_dir: &Path, tenant: TenantId, id: Uuid) -> Option<Vec<u8>> {
    tokio::fs::read(path(data_dir, tenant, id)).await.ok()
}

/// Remove a library file's bytes; a missing file is not an error.
pub async fn remove(data_dir: &Path, tenant: TenantId, id: Uuid) -> std::io::Result<()> {
    match tokio::fs::remove_file(path(data_dir, tenant, id)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The file a message carries, with its declared type: an inbound message's kept media, or
/// the library file a sent message named (`None` before a download, or once removed).
pub async fn message_file(
    data_dir: &Path,
    message: &crate::store::StoredMessage,
) -> Option<(Vec<u8>, String)> {
    if message.content.get("kind").and_then(|k| k.as_str()) == Some("file")
        && message.direction == crate::store::Direction::Outbound
    {
        let id = message.content.get("file_id")?.as_str()?.parse().ok()?;
        let mime = message.content.get("mime")?.as_str()?.to_owned();
        return Some((read(data_dir, message.tenant_id, id).await?, mime));
    }
    let path = crate::connectors::media::stored_path(data_dir, message)?;
    let mime = message.content["file"]["mime"]
        .as_str()
        .unwrap_or("application/octet-stream")
        .to_owned();
    Some((tokio::fs::read(&path).await.ok()?, mime))
}

/// The message body that sends a library file, with an optional caption (as stored: the
/// bytes or the provider's id are added at send time).
pub fn body(
    file: crate::store::files::LibraryFile,
    caption: Option<String>,
) -> coach_connector_api::OutboundBody {
    coach_connector_api::OutboundBody::File {
        media: file.kind,
        file_id: file.id.to_string(),
        mime: file.mime,
        filename: file.name,
        bytes: file.bytes,
        caption: caption.filter(|c| !c.trim().is_empty()),
        uploaded: None,
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_takes_documents_images_and_media_by_their_bytes_only() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
        ];
        assert_eq!(accepted(&png, 12), Some(("image/png", MediaKind::Image)));
        assert_eq!(
            accepted(&png, MAX_IMAGE_BYTES + 1),
            Some(("image/png", MediaKind::Document)),
            "too large to go as an image"
        );
        assert_eq!(
            accepted(b"%PDF-1.7\n", 9),
            Some(("application/pdf", MediaKind::Document))
        );
        assert!(accepted(b"GIF89a\x01\x00\x01\x00", 10).is_none());
        assert!(accepted(b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", 40).is_none());
        assert!(accepted(b"<html><script>alert(1)</script></html>", 40).is_none());
        assert!(accepted(b"MZ\x90\x00", 4).is_none(), "an executable");
        assert!(accepted(b"plain words", 11).is_none());
    }
}
