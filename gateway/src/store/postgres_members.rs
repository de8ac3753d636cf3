//! [`MemberStore`] on PostgreSQL: members and invitations.

use async_trait::async_trait;
use chrono::Utc;

use super::{PostgresStore, members_sql};
use crate::store::members::MemberStore;
use crate::store::{Invite, MemberRecord, Role, StoreError, UserId};
use crate::tenancy::{SystemScope, TenantScope};

#[async_trait]
impl MemberStore for PostgresStore {
    async fn members(&self, scope: &TenantScope) -> Result<Vec<MemberRecord>, StoreError> {
        // E-mails live in `users`, which only the worker role reads; the query filters by tenant.
        let sys = SystemScope::new("list members");
        members_sql::members(&mut *self.system_tx(&sys).await?, scope.tenant_id()).await
    }

    async fn set_role(
        &self,
        scope: &TenantScope,
        user: UserId,
        role: Role,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let sys = SystemScope::new("change member role");
        let mut tx = self.system_tx(&sys).await?;
        let ended =
            members_sql::set_role(&mut tx, scope.tenant_id(), user, role, Utc::now()).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn remove_member(
        &self,
        scope: &TenantScope,
        user: UserId,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let sys = SystemScope::new("remove member");
        let mut tx = self.system_tx(&sys).await?;
        let ended =
            members_sql::remove_member(&mut tx, scope.tenant_id(), user, Utc::now()).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn create_invite(
        &self,
        scope: &TenantScope,
        invite: Invite,
        token_hash: Vec<u8>,
    ) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        members_sql::create_invite(&mut tx, &invite, &token_hash).await?;
        Ok(tx.commit().await?)
    }

    async fn invite(
        &self,
        sys: &SystemScope,
        token_hash: Vec<u8>,
    ) -> Result<Option<Invite>, StoreError> {
        members_sql::invite(&mut *self.system_tx(sys).await?, &token_hash, Utc::now()).await
    }

    async fn accept_invite(
        &self,
        sys: &SystemScope,
        invite: Invite,
        user: Option<UserId>,
        new_password_hash: Option<String>,
    ) -> Result<UserId, StoreError> {
        let mut tx = self.system_tx(sys).await?;
        let id = members_sql::accept_invite(
            &mut tx,
            &invite,
            user,
            new_password_hash.as_deref(),
            Utc::now(),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}
