//! Document SQL and the [`DocumentStore`](super::DocumentStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use std::collections::HashMap;

        use chrono::{DateTime, Utc};
        use coach_connector_api::TenantId;
        use uuid::Uuid;

        use crate::store::documents::{
            Document, DocumentStore, IngestJob, IngestUpdate, JOB_INGEST, NewDocument, VectorErasure,
        };
        use crate::store::{Page, StoreError};
        use crate::tenancy::{SystemScope, TenantScope};

        type Conn = crate::store::backend::Conn<$store>;

        const COLUMNS: &str = "id, title, filename, source_url, kind, size_bytes, sha256, status, error, \
            progress, chunks, version, live_version, created_at, updated_at";

        async fn queue_ingest(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
            version: i64,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, payload, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(JOB_INGEST)
            .bind(sqlx::types::Json(IngestJob { document_id: id, version }))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn fetch(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<Document, StoreError> {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM documents WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("document"))
        }
        async fn documents(conn: &mut Conn, tenant: TenantId, page: Page) -> Result<Vec<Document>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM documents WHERE tenant_id = $1 \
                 AND ($2 IS NULL OR created_at < $2 OR (created_at = $2 AND id < $4)) ORDER BY created_at DESC, id DESC LIMIT $3"
            ))
            .bind(tenant.0)
            .bind(page.before.map(|(at, _)| at))
            .bind(i64::from(page.limit))
            .bind(page.before.map(|(_, id)| id))
            .fetch_all(conn)
            .await?)
        }

        async fn document_content(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<Vec<u8>, StoreError> {
            sqlx::query_scalar("SELECT content FROM document_blobs WHERE tenant_id = $1 AND document_id = $2")
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("document"))
        }

        async fn create_document(
            conn: &mut Conn,
            tenant: TenantId,
            document: NewDocument,
        ) -> Result<Document, StoreError> {
            let id = Uuid::now_v7();
            let now = Utc::now();
            sqlx::query(
                "INSERT INTO documents (id, tenant_id, title, filename, source_url, kind, size_bytes, \
                 sha256, status, progress, chunks, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, 0, 1, $9, $9)",
            )
            .bind(id)
            .bind(tenant.0)
            .bind(&document.title)
            .bind(&document.filename)
            .bind(&document.source_url)
            .bind(&document.kind)
            .bind(i64::try_from(document.content.len()).unwrap_or(i64::MAX))
            .bind(&document.sha256)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query("INSERT INTO document_blobs (document_id, tenant_id, content) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(tenant.0)
                .bind(&document.content)
                .execute(&mut *conn)
                .await?;
            queue_ingest(conn, tenant, id, 1, now).await?;
            fetch(conn, tenant, id).await
        }

        async fn reindex_document(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<Document, StoreError> {
            let now = Utc::now();
            let version: i64 = sqlx::query_scalar(
                "UPDATE documents SET version = version + 1, status = 'queued', progress = 0, \
                 error = NULL, updated_at = $3 WHERE tenant_id = $1 AND id = $2 RETURNING version",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("document"))?;
            queue_ingest(conn, tenant, id, version, now).await?;
            fetch(conn, tenant, id).await
        }

        async fn update_ingest(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
            update: IngestUpdate,
        ) -> Result<bool, StoreError> {
            let ready = update.status == crate::store::documents::DocumentStatus::Ready;
            let done = sqlx::query(
                "UPDATE documents SET status = $4, progress = $5, error = $6, updated_at = $7, \
                 chunks = CASE WHEN $8 THEN $9 ELSE chunks END, \
                 live_version = CASE WHEN $8 THEN version ELSE live_version END \
                 WHERE tenant_id = $1 AND id = $2 AND version = $3",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(update.version)
            .bind(update.status.as_str())
            .bind(update.progress)
            .bind(&update.error)
            .bind(Utc::now())
            .bind(ready)
            .bind(i32::try_from(update.chunks).unwrap_or(i32::MAX))
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn delete_document(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
            let done = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("document"));
            }
            forget_vectors(conn, tenant, Some(id)).await
        }

        /// Record that the vector store must forget a document's chunks (or the tenant's).
        pub(in crate::store) async fn forget_vectors(
            conn: &mut Conn,
            tenant: TenantId,
            document: Option<Uuid>,
        ) -> Result<(), StoreError> {
            sqlx::query("INSERT INTO vector_erasures (id, tenant_id, document_id, created_at) VALUES ($1, $2, $3, $4)")
                .bind(Uuid::now_v7())
                .bind(tenant.0)
                .bind(document)
                .bind(Utc::now())
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn vector_erasures(conn: &mut Conn, limit: u32) -> Result<Vec<VectorErasure>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT id, tenant_id, document_id FROM vector_erasures ORDER BY created_at, id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?)
        }

        async fn vector_erasure_done(conn: &mut Conn, id: Uuid) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM vector_erasures WHERE id = $1").bind(id).execute(conn).await?;
            Ok(())
        }

        async fn live_versions(
            conn: &mut Conn,
            tenant: TenantId,
            ids: Vec<Uuid>,
        ) -> Result<HashMap<Uuid, i64>, StoreError> {
            let mut out = HashMap::new();
            // A handful of ids per search: one indexed lookup each keeps the SQL portable.
            for id in ids {
                let live: Option<Option<i64>> =
                    sqlx::query_scalar("SELECT live_version FROM documents WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some(Some(v)) = live {
                    out.insert(id, v);
                }
            }
            Ok(out)
        }

        crate::store::backend::store_impl! { DocumentStore for $store;
            write create_document(scope: &TenantScope, document: NewDocument) -> Document
                = |c, t| create_document(c, t, document);
            read documents(
                scope: &TenantScope,
                page: Page,
            ) -> Vec<Document> = |c, t| documents(c, t, page);
            read document(scope: &TenantScope, id: Uuid) -> Document = |c, t| fetch(c, t, id);
            read document_content(scope: &TenantScope, id: Uuid) -> Vec<u8>
                = |c, t| document_content(c, t, id);
            write reindex_document(scope: &TenantScope, id: Uuid) -> Document
                = |c, t| reindex_document(c, t, id);
            write update_ingest(scope: &TenantScope, id: Uuid, update: IngestUpdate) -> bool
                = |c, t| update_ingest(c, t, id, update);
            write delete_document(
                scope: &TenantScope,
                id: Uuid,
            ) -> () = |c, t| delete_document(c, t, id);
            read live_versions(scope: &TenantScope, ids: Vec<Uuid>) -> HashMap<Uuid, i64>
                = |c, t| live_versions(c, t, ids);
            read vector_erasures(sys: &SystemScope, limit: u32) -> Vec<VectorErasure>
                = |c, ()| vector_erasures(c, limit);
            write vector_erasure_done(sys: &SystemScope, id: Uuid) -> ()
                = |c, ()| vector_erasure_done(c, id);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
