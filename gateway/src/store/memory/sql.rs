//! Contact memory SQL and the [`MemoryStore`](super::MemoryStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::memory::{MAX_ITEMS, MemoryItem, MemoryStore};
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use coach_connector_api::{ContactId, TenantId};
        use sqlx::Row as _;

        use crate::store::StoreError;

        /// `NotFound` unless the contact is the tenant's.
        async fn own_contact(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<(), StoreError> {
            sqlx::query("SELECT 1 FROM contacts WHERE id = $1 AND tenant_id = $2")
                .bind(contact.0)
                .bind(tenant.0)
                .fetch_optional(&mut *conn)
                .await?
                .map(|_| ())
                .ok_or(StoreError::NotFound("contact"))
        }

        fn item_from_row(row: &crate::store::backend::Row<$store>) -> Result<MemoryItem, StoreError> {
            Ok(MemoryItem {
                id: row.try_get("id")?,
                kind: crate::store::stored_enum(row.try_get("kind")?)?,
                text: row.try_get("text")?,
                source: crate::store::stored_enum(row.try_get("source")?)?,
                message_id: row.try_get("message_id")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        async fn memory(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<Vec<MemoryItem>, StoreError> {
            own_contact(conn, tenant, contact).await?;
            let rows = sqlx::query(
                "SELECT id, kind, text, source, message_id, created_at, updated_at FROM contact_memory \
                 WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(item_from_row).collect()
        }

        async fn insert(conn: &mut Conn, tenant: TenantId, contact: ContactId, item: &MemoryItem) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO contact_memory (id, tenant_id, contact_id, kind, text, source, message_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(item.id)
            .bind(tenant.0)
            .bind(contact.0)
            .bind(item.kind.as_str())
            .bind(&item.text)
            .bind(item.source.as_str())
            .bind(item.message_id)
            .bind(item.created_at)
            .bind(item.updated_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn set_memory(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
            items: &[MemoryItem],
        ) -> Result<Vec<MemoryItem>, StoreError> {
            own_contact(conn, tenant, contact).await?;
            sqlx::query("DELETE FROM contact_memory WHERE tenant_id = $1 AND contact_id = $2")
                .bind(tenant.0)
                .bind(contact.0)
                .execute(&mut *conn)
                .await?;
            for item in items {
                insert(conn, tenant, contact, item).await?;
            }
            memory(conn, tenant, contact).await
        }

        async fn remember(conn: &mut Conn, tenant: TenantId, contact: ContactId, item: &MemoryItem) -> Result<bool, StoreError> {
            let known = memory(conn, tenant, contact).await?;
            let text = item.text.to_lowercase();
            if known.iter().any(|k| k.kind == item.kind && k.text.to_lowercase() == text) {
                return Ok(false);
            }
            if known.len() >= MAX_ITEMS {
                // The contact's oldest own item makes room; the team's notes are never dropped.
                let oldest = known.iter().find(|k| k.source == crate::store::memory::MemorySource::Coachee);
                let Some(oldest) = oldest else { return Ok(false) };
                sqlx::query("DELETE FROM contact_memory WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.0)
                    .bind(oldest.id)
                    .execute(&mut *conn)
                    .await?;
            }
            insert(conn, tenant, contact, item).await?;
            Ok(true)
        }

        crate::store::backend::store_impl! { MemoryStore for $store;
            read memory(scope: &TenantScope, contact: ContactId) -> Vec<MemoryItem>
                = |c, t| memory(c, t, contact);
            write set_memory(scope: &TenantScope, contact: ContactId, items: Vec<MemoryItem>)
                -> Vec<MemoryItem> = |c, t| async move { set_memory(c, t, contact, &items).await };
            write remember(scope: &TenantScope, contact: ContactId, item: MemoryItem) -> bool
                = |c, t| async move { remember(c, t, contact, &item).await };
        }
    };
}

crate::store::backend::for_each_backend!(ops);
