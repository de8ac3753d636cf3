//! Conversation and message reads shared by both backends (see `store/backend.rs`),
//! including the widget's: messages by their per-conversation sequence number.

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        type Conn = crate::store::backend::Conn<$store>;
        type Row = crate::store::backend::Row<$store>;
        use crate::store::conversations::{ConversationStore, Sequenced};
        use crate::tenancy::TenantScope;
        use coach_connector_api::{
            ChannelId, ContactId, ConversationId, MessageId, ProviderError, TenantId,
        };
        use chrono::{DateTime, Utc};
        use sqlx::{FromRow as _, Row as _};
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::types::status_from_rank;
        use crate::store::{
            Conversation, ConversationFilter, ConversationStatus, Direction, Page, StoreError,
            StoredMessage,
        };

        const MESSAGE_COLUMNS: &str = "id, tenant_id, channel_id, conversation_id, contact_id, \
            direction, content, provider_message_id, status_rank, error_code, error_title, created_at";

        fn message_from_row(row: &Row) -> Result<StoredMessage, StoreError> {
            let direction: String = row.try_get("direction")?;
            let error_code: Option<String> = row.try_get("error_code")?;
            let error_title: Option<String> = row.try_get("error_title")?;
            Ok(StoredMessage {
                id: MessageId(row.try_get("id")?),
                tenant_id: TenantId(row.try_get("tenant_id")?),
                channel_id: ChannelId(row.try_get("channel_id")?),
                conversation_id: ConversationId(row.try_get("conversation_id")?),
                contact_id: ContactId(row.try_get("contact_id")?),
                direction: Direction::parse(&direction)
                    .ok_or_else(|| StoreError::Corrupt(format!("direction {direction:?}")))?,
                content: row.try_get::<Json<serde_json::Value>, _>("content")?.0,
                provider_message_id: row.try_get("provider_message_id")?,
                status: status_from_rank(row.try_get("status_rank")?)?,
                error: error_code.map(|code| ProviderError {
                    code,
                    title: error_title.unwrap_or_default(),
                }),
                created_at: row.try_get("created_at")?,
            })
        }

        async fn conversations(
            conn: &mut Conn,
            tenant: TenantId,
            page: Page,
            filter: ConversationFilter,
        ) -> Result<Vec<Conversation>, StoreError> {
            type B = $store;
            // Only the conditions that apply are written (see `ConversationFilter::sql`).
            let (after, at) = if page.before.is_some() {
                ("AND (last_message_at < $3 OR (last_message_at = $3 AND id < $4))", 5)
            } else {
                ("", 3)
            };
            let (filter, values) = filter.sql(
                <B as crate::store::backend::Backend>::MESSAGE_SEARCH,
                <B as crate::store::backend::Backend>::search_query,
                1,
                at,
            );
            let sql = format!(
                "SELECT id, tenant_id, channel_id, contact_id, external_id, last_message_at, status, assignee \
                 FROM conversations c WHERE tenant_id = $1 {after} \
                 {filter} ORDER BY last_message_at DESC, id DESC LIMIT $2",
            );
            let mut query = sqlx::query(&sql).bind(tenant.0).bind(i64::from(page.limit));
            if let Some((at, id)) = page.before {
                query = query.bind(at).bind(id);
            }
            let rows = crate::store::bind_filter!(query, values)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| Ok(Conversation::from_row(row)?)).collect()
        }

        /// One conversation of the tenant.
        async fn conversation(
            conn: &mut Conn,
            tenant: TenantId,
            id: ConversationId,
        ) -> Result<Conversation, StoreError> {
            let row = sqlx::query(
                "SELECT id, tenant_id, channel_id, contact_id, external_id, last_message_at, status, assignee, \
                 snoozed_until FROM conversations WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
            Ok(Conversation::from_row(&row)?)
        }

        /// Sets who answers a conversation.
        async fn set_conversation_status(
            conn: &mut Conn,
            tenant: TenantId,
            id: ConversationId,
            status: ConversationStatus,
            assignee: Option<Uuid>,
        ) -> Result<Conversation, StoreError> {
            let done = sqlx::query(
                "UPDATE conversations SET status = $3, assignee = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(status.as_str())
            .bind(assignee)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("conversation"));
            }
            conversation(conn, tenant, id).await
        }

        async fn set_lifecycle(
            conn: &mut Conn,
            tenant: TenantId,
            id: ConversationId,
            change: crate::store::conversations::Lifecycle,
        ) -> Result<(Conversation, ConversationStatus), StoreError> {
            use crate::store::conversations::Lifecycle;
            let (sql, until) = match change {
                Lifecycle::Resolve => (
                    "UPDATE conversations SET status = 'resolved', snoozed_until = NULL, resume_status = NULL \
                     WHERE tenant_id = $1 AND id = $2",
                    None,
                ),
                Lifecycle::Reopen => (
                    "UPDATE conversations SET status = 'open', snoozed_until = NULL, resume_status = NULL \
                     WHERE tenant_id = $1 AND id = $2",
                    None,
                ),
                // A resolved (or already snoozed) conversation comes back open, or as before.
                Lifecycle::Snooze(until) => (
                    "UPDATE conversations SET resume_status = CASE WHEN status = 'resolved' THEN 'open' \
                     WHEN status = 'snoozed' THEN COALESCE(resume_status, 'open') ELSE status END, \
                     status = 'snoozed', snoozed_until = $3 WHERE tenant_id = $1 AND id = $2",
                    Some(until),
                ),
            };
            // Resolving an already resolved conversation tells the webhook nothing new; the row is
            // locked, so of two resolves at once only the first sees it open.
            let was: Option<String> = sqlx::query_scalar(&format!(
                "SELECT status FROM conversations WHERE tenant_id = $1 AND id = $2 {}",
                <$store as crate::store::backend::Backend>::ROW_LOCK
            ))
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(was) = was else { return Err(StoreError::NotFound("conversation")) };
            let mut query = sqlx::query(sql).bind(tenant.0).bind(id.0);
            if let Some(until) = until {
                query = query.bind(until);
            }
            let done = query.execute(&mut *conn).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("conversation"));
            }
            if matches!(change, Lifecycle::Resolve) && was != "resolved" {
                use crate::store::notices::CONVERSATION_RESOLVED;
                crate::store::notices::sql::$backend::queue_event(
                    &mut *conn,
                    tenant,
                    CONVERSATION_RESOLVED,
                    Uuid::now_v7(),
                    serde_json::json!({ "type": CONVERSATION_RESOLVED, "conversation_id": id }),
                    Utc::now(),
                )
                .await?;
            }
            let was = ConversationStatus::try_from(was)?;
            Ok((conversation(conn, tenant, id).await?, was))
        }

        async fn wake_snoozed(conn: &mut Conn, now: DateTime<Utc>) -> Result<Vec<Conversation>, StoreError> {
            let rows = sqlx::query(
                "UPDATE conversations SET status = COALESCE(resume_status, 'open'), snoozed_until = NULL, \
                 resume_status = NULL WHERE status = 'snoozed' AND snoozed_until <= $1 \
                 RETURNING id, tenant_id, channel_id, contact_id, external_id, last_message_at, status, assignee",
            )
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|r| Ok(Conversation::from_row(r)?)).collect()
        }

        async fn messages(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            cursor: Option<MessageId>,
            limit: u32,
            newest_first: bool,
        ) -> Result<Vec<StoredMessage>, StoreError> {
            let found = sqlx::query("SELECT 1 FROM conversations WHERE id = $1 AND tenant_id = $2")
                .bind(conversation.0)
                .bind(tenant.0)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound("conversation"));
            }
            // Ids are UUIDv7: their order is the order messages were stored in.
            let (before, order) = if newest_first { ("<", "DESC") } else { (">", "") };
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND ($3 IS NULL OR id {before} $3) ORDER BY id {order} LIMIT $4"
            );
            let rows = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(conversation.0)
                .bind(cursor.map(|m| m.0))
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(message_from_row).collect()
        }

        /// One message of the tenant.
        async fn message(
            conn: &mut Conn,
            tenant: TenantId,
            id: MessageId,
        ) -> Result<StoredMessage, StoreError> {
            let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id = $2");
            let row = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("message"))?;
            message_from_row(&row)
        }

        /// The `limit` messages of a conversation just before `before`, oldest first.
        async fn messages_before(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            before: MessageId,
            limit: u32,
        ) -> Result<Vec<StoredMessage>, StoreError> {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND id < $3 ORDER BY id DESC LIMIT $4"
            );
            let rows = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(conversation.0)
                .bind(before.0)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            let mut out = rows.iter().map(message_from_row).collect::<Result<Vec<_>, _>>()?;
            out.reverse();
            Ok(out)
        }

        /// The outbound message that answers `message`, if one was stored.
        async fn reply_to(
            conn: &mut Conn,
            tenant: TenantId,
            message: MessageId,
        ) -> Result<Option<MessageId>, StoreError> {
            let id: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM messages WHERE tenant_id = $1 AND reply_to = $2 AND direction = 'out' LIMIT 1",
            )
            .bind(tenant.0)
            .bind(message.0)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(id.map(MessageId))
        }

        /// The conversation of the channel's contact known there as `external_id`, if any.
        async fn conversation_by_contact(
            conn: &mut Conn,
            tenant: TenantId,
            channel: ChannelId,
            external_id: &str,
        ) -> Result<Option<(ConversationId, i64)>, StoreError> {
            let row = sqlx::query(
                "SELECT id, last_seq FROM conversations WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3",
            )
            .bind(tenant.0)
            .bind(channel.0)
            .bind(external_id)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|row| Ok((ConversationId(row.try_get("id")?), row.try_get("last_seq")?)))
                .transpose()
        }

        /// Messages of a conversation numbered above `after`, in sequence order.
        async fn messages_after_seq(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            after: i64,
            limit: u32,
        ) -> Result<Vec<crate::store::conversations::Sequenced>, StoreError> {
            let sql = format!(
                "SELECT seq, {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND seq > $3 ORDER BY seq LIMIT $4"
            );
            let rows = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(conversation.0)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(crate::store::conversations::Sequenced {
                        seq: row.try_get("seq")?,
                        message: message_from_row(row)?,
                    })
                })
                .collect()
        }
        async fn ai_disclosed(conn: &mut Conn, tenant: TenantId, id: ConversationId) -> Result<bool, StoreError> {
            let at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
                "SELECT ai_disclosed_at FROM conversations WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(at.ok_or(StoreError::NotFound("conversation"))?.is_some())
        }

        async fn mark_ai_disclosed(conn: &mut Conn, tenant: TenantId, id: ConversationId, at: DateTime<Utc>) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE conversations SET ai_disclosed_at = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND ai_disclosed_at IS NULL",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        crate::store::backend::store_impl! { ConversationStore for $store;
            read ai_disclosed(scope: &TenantScope, id: ConversationId) -> bool
                = |c, t| ai_disclosed(c, t, id);
            write mark_ai_disclosed(scope: &TenantScope, id: ConversationId, at: DateTime<Utc>) -> ()
                = |c, t| mark_ai_disclosed(c, t, id, at);
            read conversations(scope: &TenantScope, page: Page, filter: ConversationFilter)
                -> Vec<Conversation> = |c, t| conversations(c, t, page, filter);
            read conversation(scope: &TenantScope, id: ConversationId) -> Conversation
                = |c, t| conversation(c, t, id);
            write set_conversation_status(
                scope: &TenantScope,
                id: ConversationId,
                status: ConversationStatus,
                assignee: Option<uuid::Uuid>,
            ) -> Conversation
                = |c, tenant| set_conversation_status(c, tenant, id, status, assignee);
            write set_lifecycle(
                scope: &TenantScope,
                id: ConversationId,
                change: crate::store::conversations::Lifecycle,
            ) -> (Conversation, ConversationStatus) = |c, tenant| set_lifecycle(c, tenant, id, change);
            write wake_snoozed(sys: &crate::tenancy::SystemScope, now: DateTime<Utc>) -> Vec<Conversation>
                = |c, ()| wake_snoozed(c, now);
            read messages(
                scope: &TenantScope,
                conversation: ConversationId,
                cursor: Option<MessageId>,
                limit: u32,
                newest_first: bool,
            ) -> Vec<StoredMessage> = |c, t| messages(c, t, conversation, cursor, limit, newest_first);
            read message(scope: &TenantScope, id: MessageId) -> StoredMessage
                = |c, t| message(c, t, id);
            read messages_before(
                scope: &TenantScope,
                conversation: ConversationId,
                before: MessageId,
                limit: u32,
            ) -> Vec<StoredMessage> = |c, t| messages_before(c, t, conversation, before, limit);
            read reply_to(scope: &TenantScope, message: MessageId) -> Option<MessageId>
                = |c, t| reply_to(c, t, message);
            read conversation_by_contact(scope: &TenantScope, channel: ChannelId, external_id: &str)
                -> Option<(ConversationId, i64)> = own(external_id) |c, t| async move {
                    conversation_by_contact(c, t, channel, &external_id).await
                };
            read messages_after_seq(
                scope: &TenantScope,
                conversation: ConversationId,
                after: i64,
                limit: u32,
            ) -> Vec<Sequenced> = |c, t| messages_after_seq(c, t, conversation, after, limit);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
