//! Queue SQL and the [`QueueStore`](super::QueueStore) impl, written once for both backends
//! (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use futures::FutureExt as _;

        use crate::store::backend::Backend as _;
        use crate::store::queue::QueueStore;
        use std::time::Duration;

        use crate::tenancy::SystemScope;

        type Conn = crate::store::backend::Conn<$store>;
        type Row = crate::store::backend::Row<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ConversationId, DeliveryStatus, MessageId, TenantId};
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::{
            Queue, QueueItem, QueueOutcome, StoreError, StoreStats,
        };

        async fn claim(
            conn: &mut Conn,
            queue: Queue,
            kind: Option<&str>,
            now: DateTime<Utc>,
            limit: u32,
            lease_until: DateTime<Utc>,
        ) -> Result<Vec<QueueItem>, StoreError> {
            // A suspended tenant's work waits in its queue until the tenant is resumed.
            const DUE: &str = "((q.state = 'pending' AND q.next_attempt_at <= $3) \
                OR (q.state = 'inflight' AND q.locked_until <= $3)) \
                AND q.tenant_id IN (SELECT id FROM tenants WHERE status = 'active')";
            let sql = match queue {
                // Only the oldest undelivered row of a conversation is due: order is kept.
                Queue::Outbox => format!(
                    "UPDATE outbox SET state = 'inflight', attempts = attempts + 1, locked_until = $1, updated_at = $2 \
                     WHERE id IN (SELECT q.id FROM outbox q WHERE {DUE} \
                       AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.conversation_id = q.conversation_id \
                         AND p.state IN ('pending', 'inflight') AND p.id < q.id) \
                       AND ($4 IS NULL OR q.kind = $4) ORDER BY q.id LIMIT $5 {lock}) \
                     RETURNING id, tenant_id, kind, channel_id, conversation_id, message_id, attempts, \
                       next_attempt_at, CAST(NULL AS jsonb) AS payload",
                    lock = <$store as crate::store::backend::Backend>::CLAIM_LOCK
                ),
                Queue::Jobs => format!(
                    "UPDATE jobs SET state = 'inflight', attempts = attempts + 1, locked_until = $1, updated_at = $2 \
                     WHERE id IN (SELECT q.id FROM jobs q WHERE {DUE} \
                       AND ($4 IS NULL OR q.kind = $4) ORDER BY q.id LIMIT $5 {lock}) \
                     RETURNING id, tenant_id, kind, CAST(NULL AS uuid) AS channel_id, CAST(NULL AS uuid) AS conversation_id, message_id, \
                       attempts, next_attempt_at, payload",
                    lock = <$store as crate::store::backend::Backend>::CLAIM_LOCK
                ),
            };
            claimed(conn, &sql, lease_until, now, kind, limit).await
        }

        /// Jobs of one kind, fairly across tenants. Each tenant's live jobs are numbered, those
        /// in flight (under a lease) first, then the due ones oldest first; the claim takes the
        /// lowest numbers. No row lock is skipped here (window functions and `FOR UPDATE` do not
        /// mix): the outer `UPDATE` checks again that each row is still due, so on PostgreSQL
        /// a row another process claimed meanwhile is passed over once its claim commits.
        async fn claim_fair(
            conn: &mut Conn,
            kind: &str,
            now: DateTime<Utc>,
            limit: u32,
            lease_until: DateTime<Utc>,
        ) -> Result<Vec<QueueItem>, StoreError> {
            const DUE: &str = "((state = 'pending' AND next_attempt_at <= $3) \
                OR (state = 'inflight' AND locked_until <= $3))";
            let sql = format!(
                "UPDATE jobs SET state = 'inflight', attempts = attempts + 1, locked_until = $1, updated_at = $2 \
                 WHERE id IN (SELECT r.id FROM ( \
                     SELECT id, state, locked_until, ROW_NUMBER() OVER (PARTITION BY tenant_id \
                       ORDER BY CASE WHEN state = 'inflight' AND locked_until > $3 THEN 0 ELSE 1 END, id) AS rank \
                     FROM jobs WHERE kind = $4 AND (state = 'inflight' OR (state = 'pending' AND next_attempt_at <= $3)) \
                       AND tenant_id IN (SELECT id FROM tenants WHERE status = 'active') \
                   ) r WHERE NOT (r.state = 'inflight' AND r.locked_until > $3) ORDER BY r.rank, r.id LIMIT $5) \
                 AND {DUE} \
                 RETURNING id, tenant_id, kind, CAST(NULL AS uuid) AS channel_id, CAST(NULL AS uuid) AS conversation_id, message_id, \
                   attempts, next_attempt_at, payload"
            );
            claimed(conn, &sql, lease_until, now, Some(kind), limit).await
        }

        /// Run a claim statement (`$1` lease end, `$2`/`$3` now, `$4` kind, `$5` limit).
        async fn claimed(
            conn: &mut Conn,
            sql: &str,
            lease_until: DateTime<Utc>,
            now: DateTime<Utc>,
            kind: Option<&str>,
            limit: u32,
        ) -> Result<Vec<QueueItem>, StoreError> {
            let rows = sqlx::query(sql)
                .bind(lease_until)
                .bind(now)
                .bind(now)
                .bind(kind)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            items(&rows)
        }

        fn items(
            rows: &[Row],
        ) -> Result<Vec<QueueItem>, StoreError> {
            let mut items: Vec<QueueItem> = rows
                .iter()
                .map(|row| {
                    let attempts: i32 = row.try_get("attempts")?;
                    Ok(QueueItem {
                        id: row.try_get("id")?,
                        tenant_id: TenantId(row.try_get("tenant_id")?),
                        kind: row.try_get("kind")?,
                        channel_id: row.try_get::<Option<Uuid>, _>("channel_id")?.map(ChannelId),
                        conversation_id: row
                            .try_get::<Option<Uuid>, _>("conversation_id")?
                            .map(ConversationId),
                        message_id: row.try_get::<Option<Uuid>, _>("message_id")?.map(MessageId),
                        payload: row
                            .try_get::<Option<Json<serde_json::Value>>, _>("payload")?
                            .map_or(serde_json::Value::Null, |j| j.0),
                        attempts: u32::try_from(attempts).unwrap_or(0),
                        due_at: row.try_get("next_attempt_at")?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            items.sort_by_key(|i| i.id);
            Ok(items)
        }

        async fn finish(
            conn: &mut Conn,
            queue: Queue,
            item: &QueueItem,
            outcome: QueueOutcome,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let table = queue.table();
            let (state, next_at, error) = match &outcome {
                QueueOutcome::Done { .. } => ("done", None, None),
                QueueOutcome::Retry { at, error } => ("pending", Some(*at), Some(error.clone())),
                QueueOutcome::Wait { at, why } => ("pending", Some(*at), Some(why.clone())),
                QueueOutcome::Dead { error } => ("dead", None, Some(format!("{}: {}", error.code, error.title))),
            };
            let sql = format!(
                "UPDATE {table} SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
                 last_error = COALESCE($3, last_error), locked_until = NULL, updated_at = $4, \
                 attempts = attempts - $6 WHERE id = $5 AND state = 'inflight'"
            );
            // A wait gives back the attempt its claim counted.
            let given_back: i32 = i32::from(matches!(outcome, QueueOutcome::Wait { .. }));
            sqlx::query(&sql)
                .bind(state)
                .bind(next_at)
                .bind(error)
                .bind(now)
                .bind(item.id)
                .bind(given_back)
                .execute(&mut *conn)
                .await?;
            let (Queue::Outbox, Some(message)) = (queue, item.message_id) else { return Ok(()) };
            match outcome {
                QueueOutcome::Done { provider_message_id } => {
                    // A status report may have arrived before we recorded the provider id.
                    let sql = format!(
                        "UPDATE messages SET provider_message_id = $1, status_rank = {greatest}(status_rank, $2, COALESCE((SELECT MAX(s.status_rank) FROM message_status s \
                         WHERE s.tenant_id = messages.tenant_id AND s.channel_id = messages.channel_id \
                         AND s.provider_message_id = $1), 0)) WHERE id = $3 AND status_rank <> $4",
                        greatest = <$store as crate::store::backend::Backend>::GREATEST
                    );
                    sqlx::query(&sql)
                        .bind(provider_message_id)
                        .bind(DeliveryStatus::Sent.rank())
                        .bind(message.0)
                        .bind(DeliveryStatus::Failed.rank())
                        .execute(&mut *conn)
                        .await?;
                }
                QueueOutcome::Dead { error } => {
                    sqlx::query("UPDATE messages SET status_rank = $1, error_code = $2, error_title = $3 WHERE id = $4")
                        .bind(DeliveryStatus::Failed.rank())
                        .bind(error.code)
                        .bind(error.title)
                        .bind(message.0)
                        .execute(&mut *conn)
                        .await?;
                }
                QueueOutcome::Retry { .. } | QueueOutcome::Wait { .. } => {}
            }
            Ok(())
        }

        async fn stats(conn: &mut Conn) -> Result<StoreStats, StoreError> {
            let row = sqlx::query(
                "SELECT \
                 (SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'inflight')) AS outbox_depth, \
                 (SELECT COUNT(*) FROM outbox WHERE state = 'dead') AS outbox_dead, \
                 (SELECT COUNT(*) FROM jobs WHERE state IN ('pending', 'inflight')) AS jobs_depth",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok(StoreStats {
                outbox_depth: row.try_get("outbox_depth")?,
                outbox_dead: row.try_get("outbox_dead")?,
                jobs_depth: row.try_get("jobs_depth")?,
            })
        }
        async fn take_lease(
            conn: &mut Conn,
            name: &str,
            holder: Uuid,
            now: DateTime<Utc>,
            until: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let n = sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
            )
            .bind(name)
            .bind(holder)
            .bind(until)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Ok(n > 0)
        }

        async fn release_lease(conn: &mut Conn, name: &str, holder: Uuid) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        crate::store::backend::store_impl! { QueueStore for $store;
            write take_lease(sys: &SystemScope, name: &str, holder: Uuid, now: DateTime<Utc>, ttl: Duration)
                -> bool = own(name) |c, ()| async move { take_lease(c, &name, holder, now, now + ttl).await };
            write release_lease(sys: &SystemScope, name: &str, holder: Uuid) -> ()
                = own(name) |c, ()| async move { release_lease(c, &name, holder).await };
            read stats(sys: &SystemScope) -> StoreStats = |c, ()| stats(c);
            write claim_fair(sys: &SystemScope, kind: &str, now: DateTime<Utc>, limit: u32, lease: Duration)
                -> Vec<QueueItem> = own(kind) |c, ()| async move {
                    claim_fair(c, &kind, now, limit, now + lease).await
                };
            write finish(sys: &SystemScope, queue: Queue, item: &QueueItem, outcome: QueueOutcome) -> ()
                = own(item) |c, ()| async move { finish(c, queue, &item, outcome, Utc::now()).await };
            {
                async fn claim(
                    &self,
                    sys: &SystemScope,
                    queue: Queue,
                    kind: Option<&str>,
                    now: DateTime<Utc>,
                    limit: u32,
                    lease: Duration,
                ) -> Result<Vec<QueueItem>, StoreError> {
                    let kind = kind.map(str::to_owned);
                    let until = now + lease;
                    self.write(sys, move |c, ()| {
                            async move { claim(c, queue, kind.as_deref(), now, limit, until).await }
                                .boxed()
                        })
                        .await
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
