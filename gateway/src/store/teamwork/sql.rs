//! Teamwork SQL and the [`TeamworkStore`](super::TeamworkStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::teamwork::{CannedReply, Note, TeamworkStore};
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use coach_connector_api::{ConversationId, TenantId};
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::StoreError;

        /// `NotFound` unless the conversation is the tenant's.
        async fn own_conversation(conn: &mut Conn, tenant: TenantId, conversation: ConversationId) -> Result<(), StoreError> {
            sqlx::query("SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2")
                .bind(conversation.0)
                .bind(tenant.0)
                .fetch_optional(&mut *conn)
                .await?
                .map(|_| ())
                .ok_or(StoreError::NotFound("conversation"))
        }

        async fn labels(conn: &mut Conn, tenant: TenantId, conversation: ConversationId) -> Result<Vec<String>, StoreError> {
            own_conversation(conn, tenant, conversation).await?;
            Ok(sqlx::query_scalar(
                "SELECT label FROM conversation_labels WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY label",
            )
            .bind(tenant.0)
            .bind(conversation.0)
            .fetch_all(&mut *conn)
            .await?)
        }

        async fn set_labels(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            labels: &[String],
        ) -> Result<Vec<String>, StoreError> {
            own_conversation(conn, tenant, conversation).await?;
            sqlx::query("DELETE FROM conversation_labels WHERE tenant_id = $1 AND conversation_id = $2")
                .bind(tenant.0)
                .bind(conversation.0)
                .execute(&mut *conn)
                .await?;
            for label in labels {
                sqlx::query(
                    "INSERT INTO conversation_labels (tenant_id, conversation_id, label) VALUES ($1, $2, $3) \
                     ON CONFLICT (conversation_id, label) DO NOTHING",
                )
                .bind(tenant.0)
                .bind(conversation.0)
                .bind(label)
                .execute(&mut *conn)
                .await?;
            }
            self::labels(conn, tenant, conversation).await
        }

        fn note_from_row(row: &crate::store::backend::Row<$store>) -> Result<Note, StoreError> {
            Ok(Note {
                id: row.try_get("id")?,
                conversation_id: ConversationId(row.try_get("conversation_id")?),
                author: row.try_get("author")?,
                text: row.try_get("text")?,
                created_at: row.try_get("created_at")?,
            })
        }

        async fn add_note(conn: &mut Conn, tenant: TenantId, note: &Note) -> Result<Note, StoreError> {
            own_conversation(conn, tenant, note.conversation_id).await?;
            sqlx::query(
                "INSERT INTO conversation_notes (id, tenant_id, conversation_id, author, text, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(note.id)
            .bind(tenant.0)
            .bind(note.conversation_id.0)
            .bind(note.author)
            .bind(&note.text)
            .bind(note.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(note.clone())
        }

        async fn notes(conn: &mut Conn, tenant: TenantId, conversation: ConversationId) -> Result<Vec<Note>, StoreError> {
            own_conversation(conn, tenant, conversation).await?;
            let rows = sqlx::query(
                "SELECT id, conversation_id, author, text, created_at FROM conversation_notes \
                 WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY id",
            )
            .bind(tenant.0)
            .bind(conversation.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(note_from_row).collect()
        }

        async fn add_canned_reply(conn: &mut Conn, tenant: TenantId, reply: &CannedReply) -> Result<CannedReply, StoreError> {
            let added = sqlx::query(
                "INSERT INTO canned_replies (id, tenant_id, shortcut, text, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, shortcut) DO NOTHING",
            )
            .bind(reply.id)
            .bind(tenant.0)
            .bind(&reply.shortcut)
            .bind(&reply.text)
            .bind(reply.created_at)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if added == 0 {
                return Err(StoreError::Conflict(format!(
                    "shortcut: /{} is taken; delete that canned reply first or choose another",
                    reply.shortcut
                )));
            }
            Ok(reply.clone())
        }

        async fn canned_replies(conn: &mut Conn, tenant: TenantId) -> Result<Vec<CannedReply>, StoreError> {
            let rows = sqlx::query(
                "SELECT id, shortcut, text, created_at FROM canned_replies WHERE tenant_id = $1 ORDER BY shortcut",
            )
            .bind(tenant.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(CannedReply {
                        id: r.try_get("id")?,
                        shortcut: r.try_get("shortcut")?,
                        text: r.try_get("text")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .collect()
        }

        async fn delete_canned_reply(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
            let n = sqlx::query("DELETE FROM canned_replies WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("canned reply"));
            }
            Ok(())
        }

        crate::store::backend::store_impl! { TeamworkStore for $store;
            read labels(scope: &TenantScope, conversation: ConversationId) -> Vec<String>
                = |c, t| labels(c, t, conversation);
            write set_labels(scope: &TenantScope, conversation: ConversationId, labels: Vec<String>)
                -> Vec<String> = |c, t| async move { set_labels(c, t, conversation, &labels).await };
            write add_note(scope: &TenantScope, note: Note) -> Note
                = |c, t| async move { add_note(c, t, &note).await };
            read notes(scope: &TenantScope, conversation: ConversationId) -> Vec<Note>
                = |c, t| notes(c, t, conversation);
            write add_canned_reply(scope: &TenantScope, reply: CannedReply) -> CannedReply
                = |c, t| async move { add_canned_reply(c, t, &reply).await };
            read canned_replies(scope: &TenantScope) -> Vec<CannedReply> = |c, t| canned_replies(c, t);
            write delete_canned_reply(scope: &TenantScope, id: Uuid) -> ()
                = |c, t| delete_canned_reply(c, t, id);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
