//! The tenant's file library: what a creator sends from the console or a program step (a
//! worksheet, an image). The bytes are kept by [`crate::library`]; a row holds what was read
//! from them, and the ids providers gave the file per channel (uploaded once, sent many times).
//! The creator's material, no contact data: erased with the tenant, never pruned by message
//! retention. A supertrait of [`Store`](super::Store).

mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, MediaKind};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// A file in the library.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct LibraryFile {
    /// Its id (`file_id` in a message or a program step).
    pub id: Uuid,
    /// The name it was uploaded with (documents are sent with it).
    pub name: String,
    /// Its type, read from its bytes.
    pub mime: String,
    /// How channels show it.
    #[schema(value_type = String, example = "document")]
    pub kind: MediaKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// The file library.
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Add a file (its bytes already kept).
    async fn add_file(&self, scope: &TenantScope, file: LibraryFile) -> Result<(), StoreError>;
    /// One file (`NotFound` for another tenant's).
    async fn file(&self, scope: &TenantScope, id: Uuid) -> Result<LibraryFile, StoreError>;
    /// The library, newest first.
    async fn files(&self, scope: &TenantScope) -> Result<Vec<LibraryFile>, StoreError>;
    /// Remove a file's row and its upload ids.
    async fn delete_file(&self, scope: &TenantScope, id: Uuid) -> Result<(), StoreError>;
    /// The provider's id for the file on a channel, with when it was uploaded.
    async fn file_upload(
        &self,
        scope: &TenantScope,
        file: Uuid,
        channel: ChannelId,
    ) -> Result<Option<(String, DateTime<Utc>)>, StoreError>;
    /// Forget the provider's id for the file on a channel (it stopped working).
    async fn forget_file_upload(
        &self,
        scope: &TenantScope,
        file: Uuid,
        channel: ChannelId,
    ) -> Result<(), StoreError>;
    /// Remember the provider's id for the file on a channel (replacing an older one).
    async fn set_file_upload(
        &self,
        scope: &TenantScope,
        file: Uuid,
        channel: ChannelId,
        provider_ref: String,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}
