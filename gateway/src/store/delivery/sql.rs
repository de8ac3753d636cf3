//! Delivery SQL shared by both backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        type Conn = crate::store::backend::Conn<$store>;
        type Row = crate::store::backend::Row<$store>;
        use crate::store::backend::Backend as _;
        use futures::FutureExt as _;
        use crate::store::delivery::DeliveryStore;
        use crate::tenancy::TenantScope;
        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ConversationId, DeliveryStatus, MessageId, TenantId};
        use sqlx::Row as _;

        use crate::store::StoreError;
        use crate::store::delivery::{ChannelFailures, OutboxEntry};

        const COLUMNS: &str = "id, message_id, conversation_id, channel_id, kind, state, attempts, \
                               last_error, next_attempt_at, updated_at";

        fn entry(row: &Row) -> Result<OutboxEntry, StoreError> {
            Ok(OutboxEntry {
                id: row.try_get("id")?,
                message_id: MessageId(row.try_get("message_id")?),
                conversation_id: ConversationId(row.try_get("conversation_id")?),
                channel_id: ChannelId(row.try_get("channel_id")?),
                kind: row.try_get("kind")?,
                state: row.try_get("state")?,
                attempts: i64::from(row.try_get::<i32, _>("attempts")?),
                last_error: row.try_get("last_error")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        async fn last_inbound_at(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
        ) -> Result<Option<DateTime<Utc>>, StoreError> {
            // Ids are time-ordered: the newest inbound row through the conversation index. Its
            // time is when we stored it, or the provider's time of writing when that is later
            // (a provider clock ahead of ours, or a simulated clock in tests).
            let row = sqlx::query(
                "SELECT created_at, provider_ts FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND direction = 'in' ORDER BY id DESC LIMIT 1",
            )
            .bind(tenant.0)
            .bind(conversation.0)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let stored: DateTime<Utc> = row.try_get("created_at")?;
            let written: Option<DateTime<Utc>> = row.try_get("provider_ts")?;
            Ok(Some(written.map_or(stored, |w| w.max(stored))))
        }

        async fn reply_target(
            conn: &mut Conn,
            tenant: TenantId,
            message: MessageId,
        ) -> Result<Option<String>, StoreError> {
            let row = sqlx::query(
                "SELECT r.provider_message_id FROM messages m JOIN messages r ON r.id = m.reply_to \
                 WHERE m.tenant_id = $1 AND m.id = $2 AND r.tenant_id = $1",
            )
            .bind(tenant.0)
            .bind(message.0)
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row
                .map(|r| r.try_get::<Option<String>, _>("provider_message_id"))
                .transpose()?
                .flatten())
        }

        /// Add `fields` to a message's content (the kept file, a transcript), keeping what else
        /// it holds; the row is locked while it is read and written back.
        async fn merge_content(
            conn: &mut Conn,
            tenant: TenantId,
            message: MessageId,
            fields: serde_json::Map<String, serde_json::Value>,
        ) -> Result<(), StoreError> {
            let sql = format!(
                "SELECT content FROM messages WHERE tenant_id = $1 AND id = $2 {}",
                <$store as crate::store::backend::Backend>::ROW_LOCK
            );
            let row = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(message.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("message"))?;
            let sqlx::types::Json(mut content): sqlx::types::Json<serde_json::Value> =
                row.try_get("content")?;
            if let serde_json::Value::Object(map) = &mut content {
                map.extend(fields);
            }
            sqlx::query("UPDATE messages SET content = $1 WHERE tenant_id = $2 AND id = $3")
                .bind(sqlx::types::Json(&content))
                .bind(tenant.0)
                .bind(message.0)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        async fn outbox_entries(
            conn: &mut Conn,
            tenant: TenantId,
            state: Option<&str>,
            limit: u32,
        ) -> Result<Vec<OutboxEntry>, StoreError> {
            let sql = format!(
                "SELECT {COLUMNS} FROM outbox WHERE tenant_id = $1 AND ($2 IS NULL OR state = $2) \
                 ORDER BY updated_at DESC, id DESC LIMIT $3"
            );
            let rows = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(state)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(entry).collect()
        }

        async fn channel_failures(
            conn: &mut Conn,
            tenant: TenantId,
            since: DateTime<Utc>,
        ) -> Result<Vec<ChannelFailures>, StoreError> {
            // Messages that could never go say nothing about the channel.
            let rows = sqlx::query(
                "SELECT channel_id, state, COUNT(*) AS n, MAX(updated_at) AS last_at FROM outbox \
                 WHERE tenant_id = $1 AND state IN ('dead', 'done') AND updated_at >= $2 \
                 AND (state = 'done' OR last_error IS NULL OR (last_error NOT LIKE 'opted_out:%' \
                 AND last_error NOT LIKE 'message_removed:%' AND last_error NOT LIKE 'channel_removed:%')) \
                 GROUP BY channel_id, state",
            )
            .bind(tenant.0)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
            let mut out: Vec<ChannelFailures> = Vec::new();
            for row in &rows {
                let channel_id = ChannelId(row.try_get("channel_id")?);
                let at = out.iter().position(|f| f.channel_id == channel_id).unwrap_or_else(|| {
                    out.push(ChannelFailures {
                        channel_id,
                        dead: 0,
                        last_dead_at: None,
                        last_error: None,
                        last_sent_at: None,
                    });
                    out.len() - 1
                });
                let n: i64 = row.try_get("n")?;
                let last: Option<DateTime<Utc>> = row.try_get("last_at")?;
                let f = &mut out[at];
                if row.try_get::<String, _>("state")? == "dead" {
                    f.dead = n;
                    f.last_dead_at = last;
                } else {
                    f.last_sent_at = last;
                }
            }
            for f in out.iter_mut().filter(|f| f.dead > 0) {
                f.last_error = sqlx::query_scalar(
                    "SELECT last_error FROM outbox WHERE tenant_id = $1 AND channel_id = $2 \
                     AND state = 'dead' AND updated_at >= $3 AND (last_error IS NULL OR \
                     (last_error NOT LIKE 'opted_out:%' AND last_error NOT LIKE 'message_removed:%' \
                     AND last_error NOT LIKE 'channel_removed:%')) ORDER BY updated_at DESC, id DESC LIMIT 1",
                )
                .bind(tenant.0)
                .bind(f.channel_id.0)
                .bind(since)
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
            }
            Ok(out)
        }

        async fn retry_outbox(
            conn: &mut Conn,
            tenant: TenantId,
            id: uuid::Uuid,
            now: DateTime<Utc>,
        ) -> Result<OutboxEntry, StoreError> {
            let sql = format!(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, \
                 locked_until = NULL, updated_at = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND state = 'dead' RETURNING {COLUMNS}"
            );
            let Some(row) = sqlx::query(&sql)
                .bind(now)
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
            else {
                let exists =
                    sqlx::query("SELECT state FROM outbox WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.0)
                        .bind(id)
                        .fetch_optional(&mut *conn)
                        .await?;
                return Err(match exists {
                    Some(row) => StoreError::Conflict(format!(
                        "only dead letters are resent; this one is {}",
                        row.try_get::<String, _>("state")?
                    )),
                    None => StoreError::NotFound("outbox entry"),
                });
            };
            let entry = entry(&row)?;
            sqlx::query(
                "UPDATE messages SET status_rank = $1, error_code = NULL, error_title = NULL \
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind(DeliveryStatus::Pending.rank())
            .bind(tenant.0)
            .bind(entry.message_id.0)
            .execute(&mut *conn)
            .await?;
            Ok(entry)
        }
        crate::store::backend::store_impl! { DeliveryStore for $store;
            read last_inbound_at(scope: &TenantScope, conversation: ConversationId)
                -> Option<DateTime<Utc>> = |c, t| last_inbound_at(c, t, conversation);
            read reply_target(scope: &TenantScope, message: MessageId) -> Option<String>
                = |c, t| reply_target(c, t, message);
            write attach_media(scope: &TenantScope, message: MessageId, file: serde_json::Value)
                -> () = |c, tenant| merge_content(c, tenant, message, [("file".to_owned(), file)].into_iter().collect());
            write annotate_message(scope: &TenantScope, message: MessageId, fields: serde_json::Map<String, serde_json::Value>)
                -> () = |c, tenant| merge_content(c, tenant, message, fields);
            read channel_failures(scope: &TenantScope, since: DateTime<Utc>) -> Vec<ChannelFailures>
                = |c, t| channel_failures(c, t, since);
            write retry_outbox(scope: &TenantScope, id: uuid::Uuid) -> OutboxEntry
                = |c, tenant| retry_outbox(c, tenant, id, Utc::now());
            {
                async fn outbox_entries(
                    &self,
                    scope: &TenantScope,
                    state: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<OutboxEntry>, StoreError> {
                    let state = state.map(str::to_owned);
                    self.read(scope, move |c, t| {
                        async move { outbox_entries(c, t, state.as_deref(), limit).await }.boxed()
                    })
                    .await
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
