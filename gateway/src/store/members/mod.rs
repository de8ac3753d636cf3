//! Members of a tenant and invitations to join it. A supertrait of [`Store`](super::Store).

mod sql;

use async_trait::async_trait;

use crate::store::{ApiKeyRecord, Invite, MemberRecord, Role, StoreError, UserId};
use crate::tenancy::{SystemScope, TenantScope};

/// Members and invitations.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// The tenant's members, oldest first.
    async fn members(&self, scope: &TenantScope) -> Result<Vec<MemberRecord>, StoreError>;

    /// Change a member's role; returns the member's ended sessions in this tenant.
    async fn set_role(
        &self,
        scope: &TenantScope,
        user: UserId,
        role: Role,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Remove a member; returns the member's ended sessions in this tenant.
    async fn remove_member(
        &self,
        scope: &TenantScope,
        user: UserId,
    ) -> Result<Vec<uuid::Uuid>, StoreError>;

    /// Store an invitation (its token only as a hash).
    async fn create_invite(
        &self,
        scope: &TenantScope,
        invite: Invite,
        token_hash: Vec<u8>,
    ) -> Result<(), StoreError>;

    /// A pending, unexpired invitation by token hash.
    async fn invite(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
    ) -> Result<Option<Invite>, StoreError>;

    /// Use an invitation once (see `members_sql::accept_invite`).
    async fn accept_invite(
        &self,
        sys: &SystemScope,
        invite: Invite,
        user: Option<UserId>,
        new_password_hash: Option<String>,
        verification: Option<crate::store::PendingVerification>,
    ) -> Result<UserId, StoreError>;

    /// The tenant's pending, unexpired invitations, newest first.
    async fn invites(&self, scope: &TenantScope) -> Result<Vec<Invite>, StoreError>;

    /// Revoke a pending invitation: its token stops working. `NotFound` when it was used,
    /// revoked or belongs to another tenant.
    async fn revoke_invite(&self, scope: &TenantScope, id: uuid::Uuid) -> Result<(), StoreError>;

    /// Store a new API key (its secret only as a hash).
    async fn create_api_key(
        &self,
        scope: &TenantScope,
        key: ApiKeyRecord,
        key_hash: Vec<u8>,
        created_by: Option<UserId>,
    ) -> Result<(), StoreError>;

    /// The tenant's API keys, revoked ones included.
    async fn api_keys(&self, scope: &TenantScope) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// A live key by the hash of its secret (authentication, before the tenant is known).
    async fn api_key_by_hash(
        &self,
        sys: &SystemScope,
        key_hash: Vec<u8>,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Revoke a key.
    async fn revoke_api_key(&self, scope: &TenantScope, id: uuid::Uuid) -> Result<(), StoreError>;
}
