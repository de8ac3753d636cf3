//! Inbound media: provider URLs expire (WhatsApp's after about five minutes), so each media
//! message's `fetch_media` job downloads the file at once through its connector's two-step
//! media calls, checks its size and type, and keeps it in the media store
//! (`<data_dir>/media/<tenant>/<contact>/<message>`), recorded as `content.file` on the message.
//! Erasing a contact or a tenant removes their folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use coach_connector_api::{ConnectorError, ContactId, Content, MediaKind, MessageId, TenantId};
use sha2::{Digest, Sha256};

use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::{QueueItem, StoreError};
use crate::tenancy::{SystemScope, TenantScope};

const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Downloads inbound media (`fetch_media` jobs), four at a time, fairly across tenants.
pub struct Fetcher;

#[async_trait::async_trait]
impl Handler for Fetcher {
    type Job = MessageId;
    type Batch = ();
    const KIND: JobKind = JobKind::FetchMedia;

    fn policy(&self, _state: &AppState) -> Policy {
        Policy {
            batch: 4,
            concurrency: 4,
            lease: Duration::from_secs(300),
            idle: Duration::from_millis(300),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(5),
                base: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
        }
    }

    async fn run(
        &self,
        state: &AppState,
        (): &(),
        item: &QueueItem,
        message: MessageId,
    ) -> Outcome {
        match fetch(state, item.tenant_id, message).await {
            Ok(()) => Outcome::Done,
            Err(Failure::Permanent(code, title)) => {
                tracing::warn!(job = %item.id, %code, %title, "media not kept");
                crate::voice::not_kept(state, item.tenant_id, message, &code).await;
                Outcome::Dead { code, title }
            }
            Err(Failure::Transient(error)) if self.policy(state).last_attempt(item) => {
                crate::voice::not_kept(state, item.tenant_id, message, "media_unavailable").await;
                Outcome::dead("media_unavailable", error)
            }
            Err(Failure::Transient(error)) => Outcome::Failed(error),
        }
    }
}

/// Claims and fetches up to four due media files; returns how many jobs ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Fetcher, state).await
}

enum Failure {
    /// Worth another attempt (network, provider trouble).
    Transient(String),
    /// Will never work (too large, wrong type, gone).
    Permanent(String, String),
}

fn transient(e: impl std::fmt::Display) -> Failure {
    Failure::Transient(e.to_string())
}

fn permanent(code: &str, title: impl Into<String>) -> Failure {
    Failure::Permanent(code.into(), title.into())
}

/// The folder of one contact's media.
pub fn contact_dir(data_dir: &Path, tenant: TenantId, contact: ContactId) -> PathBuf {
    tenant_dir(data_dir, tenant).join(contact.0.to_string())
}

/// The folder of one tenant's media.
pub fn tenant_dir(data_dir: &Path, tenant: TenantId) -> PathBuf {
    data_dir.join("media").join(tenant.0.to_string())
}

/// Remove a folder of media if it exists (erasure); failures are logged.
pub async fn remove_dir(path: PathBuf) {
    match tokio::fs::remove_dir_all(&path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::error!(path = %path.display(), error = %e, "erasing media failed"),
    }
}

/// Remove what a deleted channel left under the tenant's media folder: its messages' files and
/// the folders of the contacts deleted with it.
pub async fn remove_after_channel(
    data_dir: &Path,
    tenant: TenantId,
    removed: crate::store::channels::ChannelRemoval,
) {
    for (contact, message) in removed.media {
        let file = contact_dir(data_dir, tenant, contact).join(message.0.to_string());
        if let Err(error) = tokio::fs::remove_file(&file).await
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), %error, "a deleted channel's media file remains");
        }
    }
    for contact in removed.orphans {
        remove_dir(contact_dir(data_dir, tenant, contact)).await;
    }
}

/// Remove a tenant's media files older than its retention period (the messages they belong
/// to are deleted by the store's retention at the same age); returns how many went.
pub async fn apply_retention(data_dir: &Path, tenant: TenantId, days: u64) -> usize {
    let root = tenant_dir(data_dir, tenant);
    let max_age = Duration::from_secs(days.saturating_mul(86_400));
    tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        let Ok(contacts) = std::fs::read_dir(&root) else {
            return 0;
        };
        for contact in contacts.flatten() {
            // The library is the creator's material, not a contact's messages.
            if contact.file_name() == crate::library::FOLDER {
                continue;
            }
            let Ok(files) = std::fs::read_dir(contact.path()) else {
                continue;
            };
            for file in files.flatten() {
                let old = file
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > max_age);
                if old && std::fs::remove_file(file.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    })
    .await
    .unwrap_or(0)
}

/// How the console may show a kept file, read from its first bytes (never from what the
/// provider or the contact declared): a raster image, audio or video that browsers play, with
/// its type and `image`, `audio` or `video`. Anything else (SVG, HTML, PDF...) is `None`: a
/// download.
pub fn shown_as(bytes: &[u8]) -> Option<(&'static str, &'static str)> {
    let mime = infer::get(bytes)?.mime_type();
    let shown = match mime {
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" => "image",
        "audio/ogg" | "audio/opus" | "audio/mpeg" | "audio/m4a" | "audio/aac" | "audio/x-wav"
        | "audio/x-flac" | "audio/amr" => "audio",
        "video/mp4" | "video/webm" | "video/quicktime" | "video/x-m4v" | "video/3gpp" => "video",
        _ => return None,
    };
    Some((mime, shown))
}

/// Whether a file of `mime` may be kept as `kind`.
fn acceptable(kind: MediaKind, mime: &str) -> bool {
    match kind {
        MediaKind::Image | MediaKind::Sticker => {
            matches!(
                mime,
                "image/jpeg" | "image/png" | "image/webp" | "image/gif"
            )
        }
        MediaKind::Audio | MediaKind::Voice => mime.starts_with("audio/"),
        MediaKind::Video => mime.starts_with("video/"),
        MediaKind::Document => {
            matches!(
                mime,
                "application/pdf"
                    | "text/plain"
                    | "text/csv"
                    | "application/msword"
                    | "application/vnd.ms-excel"
                    | "application/vnd.ms-powerpoint"
            ) || mime.starts_with("application/vnd.openxmlformats-officedocument.")
                || mime.starts_with("image/")
                || mime.starts_with("audio/")
                || mime.starts_with("video/")
        }
    }
}

async fn fetch(state: &AppState, tenant: TenantId, message_id: MessageId) -> Result<(), Failure> {
    let scope: TenantScope = SystemScope::new("media").for_tenant(tenant);
    let message = match state.store.message(&scope, message_id).await {
        Ok(m) => m,
        // Erased meanwhile: nothing to keep.
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(transient(e)),
    };
    let Ok(Content::Media {
        media,
        media_ref,
        mime: declared,
        size,
        ..
    }) = serde_json::from_value::<Content>(message.content.clone())
    else {
        return Ok(());
    };
    let max = state.config.providers.media_max_bytes;
    if size.is_some_and(|s| s > max) {
        return Err(permanent(
            "too_large",
            format!(
                "{} bytes declared; providers.media_max_bytes is {max}",
                size.unwrap_or(0)
            ),
        ));
    }
    let channel = state
        .store
        .channel(&scope, message.channel_id)
        .await
        .map_err(transient)?;
    // A widget visitor's file was kept by its upload: nothing to download.
    if channel.kind == coach_connector_api::ChannelKind::WebWidget {
        return Ok(());
    }
    let Some(connector) = state.connectors.get(&channel.kind) else {
        return Err(transient(format!("no connector for {}", channel.kind)));
    };
    let config = state
        .connectors
        .channel_config(&channel, &state.secrets)
        .map_err(transient)?;
    let first_call = match connector.media_request(&config, &media_ref) {
        Ok(call) => call,
        Err(ConnectorError::Unsupported(_)) => return Ok(()),
        Err(e) => return Err(permanent("media_request", e.to_string())),
    };
    let first = state
        .connectors
        .execute_limited(&first_call, DOWNLOAD_TIMEOUT, max)
        .await
        .map_err(transient)?;
    check_status(first.status)?;
    let file = match connector
        .media_next(&config, &first)
        .map_err(|e| permanent("media_next", e.to_string()))?
    {
        Some(call) => {
            let file = state
                .connectors
                .execute_limited(&call, DOWNLOAD_TIMEOUT, max)
                .await
                .map_err(transient)?;
            if !(200..300).contains(&file.status) {
                check_status(file.status)?;
                return Err(permanent(
                    "media_refused",
                    format!("the download answered {}", file.status),
                ));
            }
            file
        }
        None => first,
    };
    let served = file
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|m| !m.is_empty() && m != "application/octet-stream");
    let mime = served
        .or_else(|| {
            declared.as_deref().map(|d| {
                d.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
        })
        .unwrap_or_default();
    if !acceptable(media, &mime) {
        return Err(permanent(
            "media_type",
            format!("{mime:?} is not kept as {media:?}"),
        ));
    }
    let dir = contact_dir(&state.config.data_dir, tenant, message.contact_id);
    let path = dir.join(message.id.0.to_string());
    let temp = dir.join(format!(".{}.part", message.id.0));
    let sha256 = hex::encode(Sha256::digest(&file.body));
    let bytes = file.body.len();
    async {
        crate::files::private_dir_async(&dir).await?;
        crate::files::write_private(&temp, &file.body).await?;
        tokio::fs::rename(&temp, &path).await
    }
    .await
    .map_err(|e| transient(format!("writing {}: {e}", path.display())))?;
    let record = serde_json::json!({ "bytes": bytes, "mime": mime, "sha256": sha256 });
    match state.store.attach_media(&scope, message.id, record).await {
        Ok(()) => {}
        // Erased while it was downloading: the file goes too.
        Err(StoreError::NotFound(_)) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Ok(());
        }
        Err(e) => return Err(transient(e)),
    }
    metrics::counter!("media_fetched_total").increment(1);
    Ok(())
}

fn check_status(status: u16) -> Result<(), Failure> {
    match status {
        200..=399 => Ok(()),
        404 | 410 => Err(permanent(
            "media_gone",
            format!("the provider answered {status}: the file expired or was removed"),
        )),
        s if s == 429 || s >= 500 => Err(transient(format!("the provider answered {s}"))),
        s => Err(permanent(
            "media_refused",
            format!("the provider answered {s}"),
        )),
    }
}

/// The stored file of a message, if it was fetched.
pub fn stored_path(data_dir: &Path, message: &crate::store::StoredMessage) -> Option<PathBuf> {
    message.content.get("file")?;
    Some(
        contact_dir(data_dir, message.tenant_id, message.contact_id).join(message.id.0.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_audio_and_video_are_shown_in_place() {
        let png = [
            &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A][..],
            &[0u8; 32][..],
        ]
        .concat();
        assert_eq!(shown_as(&png), Some(("image/png", "image")));
        assert_eq!(
            shown_as(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(("image/jpeg", "image"))
        );
        let ogg = [&b"OggS"[..], &[0u8; 32][..]].concat();
        assert_eq!(shown_as(&ogg).map(|(_, k)| k), Some("audio"));
        assert_eq!(
            shown_as(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>"),
            None
        );
        assert_eq!(shown_as(b"<html><script>alert(1)</script></html>"), None);
        assert_eq!(shown_as(b"%PDF-1.4\n"), None);
    }
}
