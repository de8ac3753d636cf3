//! Contacts and their rights: the contact list, the GDPR export and erasure of one contact,
//! the erasure of a whole tenant, and every tenant's retention period.

mod sql;

use async_trait::async_trait;

use crate::store::*;
use crate::tenancy::{SystemScope, TenantScope};

/// Privacy.
#[async_trait]
pub trait PrivacyStore: Send + Sync {
    /// Contacts, newest first, before the cursor.
    async fn contacts(
        &self,
        scope: &TenantScope,
        before: Option<coach_connector_api::ContactId>,
        limit: u32,
    ) -> Result<Vec<ContactRecord>, StoreError>;

    /// One contact with their identities (`NotFound` for another tenant's).
    async fn contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<ContactRecord, StoreError>;
    /// Everything stored about one contact, as one JSON document.
    async fn export_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<serde_json::Value, StoreError>;

    /// Erase a contact and everything derived from them, in one transaction.
    async fn erase_contact(
        &self,
        scope: &TenantScope,
        contact: coach_connector_api::ContactId,
    ) -> Result<(), StoreError>;

    /// Erase the tenant with all its data; returns its sessions.
    async fn erase_tenant(&self, scope: &TenantScope) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Enforce every tenant's retention period; returns how many rows were deleted.
    async fn apply_retention(
        &self,
        sys: &SystemScope,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}
