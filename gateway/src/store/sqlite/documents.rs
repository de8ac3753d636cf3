//! [`DocumentStore`] on SQLite: reads from the pool, writes through the single writer.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::Utc;
use futures::FutureExt;
use uuid::Uuid;

use super::SqliteStore;
use crate::store::documents::{Document, DocumentStore, IngestUpdate, NewDocument};
use crate::store::{Page, StoreError};
use crate::tenancy::TenantScope;

mod sql {
    crate::store::documents_sql::document_ops!(
        sqlx::sqlite::SqliteConnection,
        sqlx::sqlite::SqliteRow
    );
}

#[async_trait]
impl DocumentStore for SqliteStore {
    async fn create_document(
        &self,
        scope: &TenantScope,
        document: NewDocument,
    ) -> Result<Document, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| {
                async move { sql::create_document(c, tenant, &document, Utc::now()).await }.boxed()
            })
            .await
    }

    async fn documents(
        &self,
        scope: &TenantScope,
        page: Page,
    ) -> Result<Vec<Document>, StoreError> {
        sql::documents(&mut *self.reader().await?, scope.tenant_id(), page).await
    }

    async fn document(&self, scope: &TenantScope, id: Uuid) -> Result<Document, StoreError> {
        sql::document(&mut *self.reader().await?, scope.tenant_id(), id).await
    }

    async fn document_content(&self, scope: &TenantScope, id: Uuid) -> Result<Vec<u8>, StoreError> {
        sql::document_content(&mut *self.reader().await?, scope.tenant_id(), id).await
    }

    async fn reindex_document(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> Result<Document, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::reindex_document(c, tenant, id, Utc::now()).boxed())
            .await
    }

    async fn update_ingest(
        &self,
        scope: &TenantScope,
        id: Uuid,
        update: IngestUpdate,
    ) -> Result<bool, StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| {
                async move { sql::update_ingest(c, tenant, id, &update, Utc::now()).await }.boxed()
            })
            .await
    }

    async fn delete_document(&self, scope: &TenantScope, id: Uuid) -> Result<(), StoreError> {
        let tenant = scope.tenant_id();
        self.writer
            .write(move |c| sql::delete_document(c, tenant, id).boxed())
            .await
    }

    async fn live_versions(
        &self,
        scope: &TenantScope,
        ids: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, i64>, StoreError> {
        sql::live_versions(&mut *self.reader().await?, scope.tenant_id(), &ids).await
    }
}
