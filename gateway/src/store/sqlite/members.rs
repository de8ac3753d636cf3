//! [`MemberStore`] on SQLite: reads from the pool, writes through the single writer.

use async_trait::async_trait;
use chrono::Utc;
use futures::FutureExt;

use super::{SqliteStore, members_sql};
use crate::store::members::MemberStore;
use crate::store::{Invite, MemberRecord, Role, StoreError, UserId};
use crate::tenancy::{SystemScope, TenantScope};

#[async_trait]
impl MemberStore for SqliteStore {
    async fn members(&self, scope: &TenantScope) -> Result<Vec<MemberRecord>, StoreError> {
        members_sql::members(&mut *self.reader().await?, scope.tenant_id()).await
    }

    async fn set_role(
        &self,
        scope: &TenantScope,
        user: UserId,
        role: Role,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| members_sql::set_role(c, tenant, user, role, Utc::now()).boxed())
            .await
    }

    async fn remove_member(
        &self,
        scope: &TenantScope,
        user: UserId,
    ) -> Result<Vec<uuid::Uuid>, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| members_sql::remove_member(c, tenant, user, Utc::now()).boxed())
            .await
    }

    async fn create_invite(
        &self,
        _scope: &TenantScope,
        invite: Invite,
        token_hash: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.writer
            .write(move |c| {
                async move { members_sql::create_invite(c, &invite, &token_hash).await }.boxed()
            })
            .await
    }

    async fn invite(
        &self,
        _sys: &SystemScope,
        token_hash: Vec<u8>,
    ) -> Result<Option<Invite>, StoreError> {
        members_sql::invite(&mut *self.reader().await?, &token_hash, Utc::now()).await
    }

    async fn accept_invite(
        &self,
        _sys: &SystemScope,
        invite: Invite,
        user: Option<UserId>,
        new_password_hash: Option<String>,
    ) -> Result<UserId, StoreError> {
        self.writer
            .write(move |c| {
                async move {
                    members_sql::accept_invite(
                        c,
                        &invite,
                        user,
                        new_password_hash.as_deref(),
                        Utc::now(),
                    )
                    .await
                }
                .boxed()
            })
            .await
    }
}
