//! [`DocumentStore`] on PostgreSQL: each call one transaction under the tenant's row-level security.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::Utc;
use uuid::Uuid;

use super::PostgresStore;
use crate::store::documents::{Document, DocumentStore, IngestUpdate, NewDocument};
use crate::store::{Page, StoreError};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::documents_sql::document_ops!(sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
}

#[async_trait]
impl DocumentStore for PostgresStore {
    async fn create_document(
        &self,
        scope: &TenantScope,
        document: NewDocument,
    ) -> Result<Document, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let out = sql::create_document(&mut tx, scope.tenant_id(), &document, Utc::now()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn documents(
        &self,
        scope: &TenantScope,
        page: Page,
    ) -> Result<Vec<Document>, StoreError> {
        sql::documents(&mut *self.tenant_tx(scope).await?, scope.tenant_id(), page).await
    }

    async fn document(&self, scope: &TenantScope, id: Uuid) -> Result<Document, StoreError> {
        sql::document(&mut *self.tenant_tx(scope).await?, scope.tenant_id(), id).await
    }

    async fn document_content(&self, scope: &TenantScope, id: Uuid) -> Result<Vec<u8>, StoreError> {
        sql::document_content(&mut *self.tenant_tx(scope).await?, scope.tenant_id(), id).await
    }

    async fn reindex_document(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> Result<Document, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let out = sql::reindex_document(&mut tx, scope.tenant_id(), id, Utc::now()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn update_ingest(
        &self,
        scope: &TenantScope,
        id: Uuid,
        update: IngestUpdate,
    ) -> Result<bool, StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let out = sql::update_ingest(&mut tx, scope.tenant_id(), id, &update, Utc::now()).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn delete_document(&self, scope: &TenantScope, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.tenant_tx(scope).await?;
        let out = sql::delete_document(&mut tx, scope.tenant_id(), id).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn live_versions(
        &self,
        scope: &TenantScope,
        ids: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, i64>, StoreError> {
        sql::live_versions(&mut *self.tenant_tx(scope).await?, scope.tenant_id(), &ids).await
    }
}
