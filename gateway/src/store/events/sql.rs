//! Event log SQL and the [`EventLogStore`](super::EventLogStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::events::{EventLogStore, LoggedEvent, NewLogEvent};
        use crate::tenancy::{SystemScope, TenantScope};

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{ContactId, TenantId};
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::StoreError;

        fn logged_from_row(row: &crate::store::backend::Row<$store>) -> Result<LoggedEvent, StoreError> {
            Ok(LoggedEvent {
                seq: row.try_get("seq")?,
                tenant_id: TenantId(row.try_get::<Uuid, _>("tenant_id")?),
                event: row.try_get("event")?,
            })
        }

        async fn append_events(conn: &mut Conn, events: &[NewLogEvent]) -> Result<Vec<Option<i64>>, StoreError> {
            let turn = <$store as crate::store::backend::Backend>::EVENT_LOG_TURN;
            if !turn.is_empty() {
                sqlx::query(turn).execute(&mut *conn).await?;
            }
            let mut seqs = Vec::with_capacity(events.len());
            // An event of a tenant or a conversation erased since it was published is not
            // logged (one being erased now is waited for, then not found).
            let share = <$store as crate::store::backend::Backend>::KEY_SHARE;
            let sql = format!(
                "INSERT INTO event_log (tenant_id, conversation_id, event, created_at) \
                 SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1 {share}) \
                 AND ($2 IS NULL OR EXISTS \
                 (SELECT 1 FROM conversations WHERE tenant_id = $1 AND id = $2 {share})) \
                 RETURNING seq"
            );
            for e in events {
                let seq: Option<i64> = sqlx::query_scalar(&sql)
                .bind(e.tenant_id.0)
                .bind(e.conversation_id.map(|c| c.0))
                .bind(&e.event)
                .bind(e.at)
                .fetch_optional(&mut *conn)
                .await?;
                seqs.push(seq);
            }
            Ok(seqs)
        }

        async fn logged_after(conn: &mut Conn, after: i64, limit: u32) -> Result<Vec<LoggedEvent>, StoreError> {
            let rows = sqlx::query("SELECT seq, tenant_id, event FROM event_log WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(logged_from_row).collect()
        }

        async fn tenant_events_after(
            conn: &mut Conn,
            tenant: TenantId,
            after: i64,
            upto: i64,
            limit: u32,
        ) -> Result<Vec<LoggedEvent>, StoreError> {
            let rows = sqlx::query(
                "SELECT seq, tenant_id, event FROM event_log \
                 WHERE tenant_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            )
            .bind(tenant.0)
            .bind(after)
            .bind(upto)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(logged_from_row).collect()
        }

        async fn event_log_bounds(conn: &mut Conn) -> Result<Option<(i64, i64)>, StoreError> {
            let row = sqlx::query("SELECT MIN(seq) AS low, MAX(seq) AS high FROM event_log")
                .fetch_one(&mut *conn)
                .await?;
            let low: Option<i64> = row.try_get("low")?;
            let high: Option<i64> = row.try_get("high")?;
            Ok(low.zip(high))
        }

        /// At most `limit` of the oldest rows up to the last one logged before `before`: a busy
        /// hour is pruned in several short writes, not one that holds SQLite's writer.
        async fn prune_event_log(conn: &mut Conn, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
            // A prefix in `seq` order, so a cursor at or above the lowest kept number has lost
            // nothing (the processes' clocks need not agree on `created_at`); the newest row
            // stays, so a quiet deployment's cursors stay known.
            Ok(sqlx::query(
                "DELETE FROM event_log WHERE seq IN (SELECT seq FROM event_log WHERE seq <= \
                 (SELECT MAX(seq) FROM event_log WHERE created_at < $1) \
                 AND seq < (SELECT MAX(seq) FROM event_log) ORDER BY seq LIMIT $2)",
            )
            .bind(before)
            .bind(i64::from(limit))
            .execute(&mut *conn)
            .await?
            .rows_affected())
        }

        /// The logged events about a contact's conversations, for their export.
        pub(crate) async fn contact_events(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
        ) -> Result<Vec<serde_json::Value>, StoreError> {
            let rows = sqlx::query(
                "SELECT seq, event, created_at FROM event_log WHERE tenant_id = $1 AND conversation_id IN \
                 (SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2) ORDER BY seq",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    let event: String = r.try_get("event")?;
                    Ok(serde_json::json!({
                        "seq": r.try_get::<i64, _>("seq")?,
                        "event": serde_json::from_str::<serde_json::Value>(&event)?,
                        "created_at": r.try_get::<DateTime<Utc>, _>("created_at")?,
                    }))
                })
                .collect()
        }

        crate::store::backend::store_impl! { EventLogStore for $store;
            write append_events(sys: &SystemScope, events: Vec<NewLogEvent>) -> Vec<Option<i64>>
                = |c, ()| async move { append_events(c, &events).await };
            read logged_after(sys: &SystemScope, after: i64, limit: u32) -> Vec<LoggedEvent>
                = |c, ()| logged_after(c, after, limit);
            read tenant_events_after(scope: &TenantScope, after: i64, upto: i64, limit: u32)
                -> Vec<LoggedEvent> = |c, t| tenant_events_after(c, t, after, upto, limit);
            read event_log_bounds(sys: &SystemScope) -> Option<(i64, i64)>
                = |c, ()| event_log_bounds(c);
            write prune_event_log(sys: &SystemScope, before: DateTime<Utc>, limit: u32) -> u64
                = |c, ()| prune_event_log(c, before, limit);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
