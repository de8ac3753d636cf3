//! File library SQL and the [`FileStore`](super::FileStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::files::{FileStore, LibraryFile};
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, TenantId};
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::StoreError;

        const COLUMNS: &str = "id, name, mime, kind, bytes, sha256, created_at";

        fn file_from_row(row: &crate::store::backend::Row<$store>) -> Result<LibraryFile, StoreError> {
            let bytes: i64 = row.try_get("bytes")?;
            Ok(LibraryFile {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                mime: row.try_get("mime")?,
                kind: crate::store::stored_enum(row.try_get("kind")?)?,
                bytes: u64::try_from(bytes).unwrap_or(0),
                sha256: row.try_get("sha256")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn kind_str(file: &LibraryFile) -> Result<String, StoreError> {
            Ok(serde_json::to_value(file.kind)?.as_str().unwrap_or("document").to_owned())
        }

        async fn add_file(conn: &mut Conn, tenant: TenantId, file: &LibraryFile) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO files (id, tenant_id, name, mime, kind, bytes, sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(file.id)
            .bind(tenant.0)
            .bind(&file.name)
            .bind(&file.mime)
            .bind(kind_str(file)?)
            .bind(i64::try_from(file.bytes).unwrap_or(i64::MAX))
            .bind(&file.sha256)
            .bind(file.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn file(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<LibraryFile, StoreError> {
            let row = sqlx::query(&format!("SELECT {COLUMNS} FROM files WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("file"))?;
            file_from_row(&row)
        }

        async fn files(conn: &mut Conn, tenant: TenantId) -> Result<Vec<LibraryFile>, StoreError> {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM files WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(tenant.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(file_from_row).collect()
        }

        async fn delete_file(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
            let n = sqlx::query("DELETE FROM files WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("file"));
            }
            Ok(())
        }

        async fn file_upload(
            conn: &mut Conn,
            tenant: TenantId,
            file: Uuid,
            channel: ChannelId,
        ) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
            let row = sqlx::query(
                "SELECT provider_ref, uploaded_at FROM file_uploads \
                 WHERE tenant_id = $1 AND file_id = $2 AND channel_id = $3",
            )
            .bind(tenant.0)
            .bind(file)
            .bind(channel.0)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|r| Ok((r.try_get("provider_ref")?, r.try_get("uploaded_at")?))).transpose()
        }

        async fn forget_file_upload(conn: &mut Conn, tenant: TenantId, file: Uuid, channel: ChannelId) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM file_uploads WHERE tenant_id = $1 AND file_id = $2 AND channel_id = $3")
                .bind(tenant.0)
                .bind(file)
                .bind(channel.0)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn set_file_upload(
            conn: &mut Conn,
            tenant: TenantId,
            file: Uuid,
            channel: ChannelId,
            provider_ref: &str,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            // The file or the channel may be gone meanwhile: then there is nothing to remember.
            sqlx::query(
                "INSERT INTO file_uploads (file_id, channel_id, tenant_id, provider_ref, uploaded_at) \
                 SELECT f.id, c.id, f.tenant_id, $4, $5 FROM files f JOIN channels c ON c.tenant_id = f.tenant_id \
                 WHERE f.tenant_id = $1 AND f.id = $2 AND c.id = $3 \
                 ON CONFLICT (file_id, channel_id) DO UPDATE SET provider_ref = excluded.provider_ref, \
                 uploaded_at = excluded.uploaded_at",
            )
            .bind(tenant.0)
            .bind(file)
            .bind(channel.0)
            .bind(provider_ref)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        crate::store::backend::store_impl! { FileStore for $store;
            write add_file(scope: &TenantScope, file: LibraryFile) -> ()
                = |c, t| async move { add_file(c, t, &file).await };
            read file(scope: &TenantScope, id: Uuid) -> LibraryFile = |c, t| file(c, t, id);
            read files(scope: &TenantScope) -> Vec<LibraryFile> = |c, t| files(c, t);
            write delete_file(scope: &TenantScope, id: Uuid) -> () = |c, t| delete_file(c, t, id);
            read file_upload(scope: &TenantScope, file: Uuid, channel: ChannelId)
                -> Option<(String, DateTime<Utc>)> = |c, t| file_upload(c, t, file, channel);
            write forget_file_upload(scope: &TenantScope, file: Uuid, channel: ChannelId) -> ()
                = |c, t| forget_file_upload(c, t, file, channel);
            write set_file_upload(scope: &TenantScope, file: Uuid, channel: ChannelId,
                provider_ref: String, at: DateTime<Utc>) -> ()
                = |c, t| async move { set_file_upload(c, t, file, channel, &provider_ref, at).await };
        }
    };
}

crate::store::backend::for_each_backend!(ops);
