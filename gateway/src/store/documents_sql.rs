//! Document SQL shared by both backends (see `ops.rs` for the conventions).

macro_rules! document_ops {
    ($conn:ty, $row:ty) => {
        use std::collections::HashMap;

        use chrono::{DateTime, Utc};
        use coach_connector_api::TenantId;
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::documents::{
            Document, DocumentStatus, IngestUpdate, JOB_INGEST, NewDocument,
        };
        use crate::store::{Page, StoreError};

        const COLUMNS: &str = "id, title, filename, source_url, kind, size_bytes, sha256, status, error, \
            progress, chunks, version, live_version, created_at, updated_at";

        fn document_row(row: &$row) -> Result<Document, StoreError> {
            let status: String = row.try_get("status")?;
            Ok(Document {
                id: row.try_get("id")?,
                title: row.try_get("title")?,
                filename: row.try_get("filename")?,
                source_url: row.try_get("source_url")?,
                kind: row.try_get("kind")?,
                size_bytes: row.try_get("size_bytes")?,
                sha256: row.try_get("sha256")?,
                status: DocumentStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("document status {status}")))?,
                error: row.try_get("error")?,
                progress: row.try_get("progress")?,
                chunks: i64::from(row.try_get::<i32, _>("chunks")?),
                version: row.try_get("version")?,
                live_version: row.try_get("live_version")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        async fn queue_ingest(
            conn: &mut $conn,
            tenant: TenantId,
            id: Uuid,
            version: i64,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let payload = crate::store::documents::IngestJob { document_id: id, version };
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, payload, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(JOB_INGEST)
            .bind(sqlx::types::Json(payload))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(super) async fn create_document(
            conn: &mut $conn,
            tenant: TenantId,
            document: &NewDocument,
            now: DateTime<Utc>,
        ) -> Result<Document, StoreError> {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO documents (id, tenant_id, title, filename, source_url, kind, size_bytes, sha256, \
                 status, progress, chunks, version, created_at, updated_at) \
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
            self::document(conn, tenant, id).await
        }

        pub(super) async fn documents(
            conn: &mut $conn,
            tenant: TenantId,
            page: Page,
        ) -> Result<Vec<Document>, StoreError> {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM documents WHERE tenant_id = $1 AND ($2 IS NULL OR created_at < $2) \
                 ORDER BY created_at DESC, id DESC LIMIT $3"
            ))
            .bind(tenant.0)
            .bind(page.before)
            .bind(i64::from(page.limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(document_row).collect()
        }

        pub(super) async fn document(
            conn: &mut $conn,
            tenant: TenantId,
            id: Uuid,
        ) -> Result<Document, StoreError> {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM documents WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("document"))?;
            document_row(&row)
        }

        pub(super) async fn document_content(
            conn: &mut $conn,
            tenant: TenantId,
            id: Uuid,
        ) -> Result<Vec<u8>, StoreError> {
            sqlx::query_scalar("SELECT content FROM document_blobs WHERE tenant_id = $1 AND document_id = $2")
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("document"))
        }

        pub(super) async fn reindex_document(
            conn: &mut $conn,
            tenant: TenantId,
            id: Uuid,
            now: DateTime<Utc>,
        ) -> Result<Document, StoreError> {
            let version: i64 = sqlx::query_scalar(
                "UPDATE documents SET version = version + 1, status = 'queued', progress = 0, error = NULL, \
                 updated_at = $3 WHERE tenant_id = $1 AND id = $2 RETURNING version",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("document"))?;
            queue_ingest(conn, tenant, id, version, now).await?;
            document(conn, tenant, id).await
        }

        pub(super) async fn update_ingest(
            conn: &mut $conn,
            tenant: TenantId,
            id: Uuid,
            update: &IngestUpdate,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let ready = update.status == DocumentStatus::Ready;
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
            .bind(now)
            .bind(ready)
            .bind(i32::try_from(update.chunks).unwrap_or(i32::MAX))
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        pub(super) async fn delete_document(
            conn: &mut $conn,
            tenant: TenantId,
            id: Uuid,
        ) -> Result<(), StoreError> {
            let done = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("document"));
            }
            Ok(())
        }

        pub(super) async fn live_versions(
            conn: &mut $conn,
            tenant: TenantId,
            ids: &[Uuid],
        ) -> Result<HashMap<Uuid, i64>, StoreError> {
            let mut out = HashMap::new();
            // A handful of ids per search: one indexed lookup each keeps the SQL portable.
            for id in ids {
                let live: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT live_version FROM documents WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(Some(v)) = live {
                    out.insert(*id, v);
                }
            }
            Ok(out)
        }
    };
}

pub(crate) use document_ops;
