//! The audience of programs, for both backends (see `store/backend.rs`): opt-outs, who a
//! program can reach (contacts and their latest conversation per channel), and the facts a
//! step branches on. Called by the [`ProgramStore`](super::ProgramStore) impl in `sql.rs`.

macro_rules! audience {
    ($store:ty, $backend:ident) => {
        type Conn = crate::store::backend::Conn<$store>;
        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ContactId, ConversationId, DeliveryStatus, TenantId};
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::StoreError;
        use crate::store::programs::RunFact;

        pub(in crate::store) async fn opted_out(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
        ) -> Result<Option<DateTime<Utc>>, StoreError> {
            let row = sqlx::query("SELECT created_at FROM opt_outs WHERE tenant_id = $1 AND contact_id = $2")
                .bind(tenant.0)
                .bind(contact.0)
                .fetch_optional(&mut *conn)
                .await?;
            Ok(row.map(|r| r.try_get("created_at")).transpose()?)
        }

        pub(in crate::store) async fn opt_out(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
            source: &str,
            at: DateTime<Utc>,
        ) -> Result<Option<u64>, StoreError> {
            let inserted = sqlx::query(
                "INSERT INTO opt_outs (tenant_id, contact_id, source, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .bind(source)
            .bind(at)
            .execute(&mut *conn)
            .await?;
            // Even when already recorded (a second STOP), end and withdraw again: that repairs
            // an enrollment written concurrently with the first opt-out.
            let ended = sqlx::query(
                "UPDATE enrollments SET state = 'opted_out', ended_at = $1, updated_at = $1 \
                 WHERE tenant_id = $2 AND contact_id = $3 AND state = 'active'",
            )
            .bind(at)
            .bind(tenant.0)
            .bind(contact.0)
            .execute(&mut *conn)
            .await?;
            // Check-ins queued but not yet sent are withdrawn; one already being sent is not,
            // and its message keeps its true status.
            let withdrawn = sqlx::query(
                "UPDATE outbox SET state = 'dead', last_error = 'opted_out: the contact opted out', \
                 locked_until = NULL, updated_at = $1 WHERE tenant_id = $2 AND state = 'pending' \
                 AND message_id IN (SELECT s.message_id FROM program_sends s JOIN enrollments e ON e.id = s.enrollment_id \
                   WHERE e.tenant_id = $2 AND e.contact_id = $3 AND s.message_id IS NOT NULL) \
                 RETURNING message_id",
            )
            .bind(at)
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            for row in &withdrawn {
                let message: Uuid = row.try_get("message_id")?;
                sqlx::query(
                    "UPDATE messages SET status_rank = $1, error_code = 'opted_out', \
                     error_title = 'withdrawn: the contact opted out' WHERE tenant_id = $2 AND id = $3",
                )
                .bind(DeliveryStatus::Failed.rank())
                .bind(tenant.0)
                .bind(message)
                .execute(&mut *conn)
                .await?;
            }
            if inserted.rows_affected() == 0 {
                return Ok(None);
            }
            Ok(Some(ended.rows_affected()))
        }

        pub(in crate::store) async fn opt_in(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
        ) -> Result<bool, StoreError> {
            let deleted = sqlx::query("DELETE FROM opt_outs WHERE tenant_id = $1 AND contact_id = $2")
                .bind(tenant.0)
                .bind(contact.0)
                .execute(&mut *conn)
                .await?;
            Ok(deleted.rows_affected() > 0)
        }

        pub(in crate::store) async fn reach(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
            channel: Option<ChannelId>,
        ) -> Result<Option<ConversationId>, StoreError> {
            let row = sqlx::query(
                "SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2 \
                 AND ($3 IS NULL OR channel_id = $3) ORDER BY last_message_at DESC, id DESC LIMIT 1",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .bind(channel.map(|c| c.0))
            .fetch_optional(&mut *conn)
            .await?;
            Ok(row.map(|r| r.try_get("id").map(ConversationId)).transpose()?)
        }

        pub(in crate::store) async fn open_reach(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
            channel: Option<ChannelId>,
            now: DateTime<Utc>,
        ) -> Result<crate::store::programs::Reach, StoreError> {
            use crate::store::programs::Reach;
            if let Some(found) = reach(conn, tenant, contact, channel).await? {
                return Ok(Reach::Conversation(found));
            }
            // Never wrote: an address from an import, and their recorded consent.
            let row = sqlx::query(
                "SELECT c.consent_at, i.channel_id, i.external_id FROM contacts c \
                 LEFT JOIN contact_identities i ON i.tenant_id = c.tenant_id AND i.contact_id = c.id \
                   AND ($3 IS NULL OR i.channel_id = $3) \
                 WHERE c.tenant_id = $1 AND c.id = $2 ORDER BY i.created_at LIMIT 1",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .bind(channel.map(|c| c.0))
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else { return Ok(Reach::Unreachable) };
            let (Some(on), Some(address)) = (
                row.try_get::<Option<Uuid>, _>("channel_id")?,
                row.try_get::<Option<String>, _>("external_id")?,
            ) else {
                return Ok(Reach::Unreachable);
            };
            if row.try_get::<Option<DateTime<Utc>>, _>("consent_at")?.is_none() {
                return Ok(Reach::NoConsent);
            }
            sqlx::query(
                "INSERT INTO conversations (id, tenant_id, channel_id, contact_id, external_id, last_message_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (tenant_id, channel_id, contact_id) DO NOTHING",
            )
            .bind(ConversationId::new().0)
            .bind(tenant.0)
            .bind(on)
            .bind(contact.0)
            .bind(address)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(reach(conn, tenant, contact, Some(ChannelId(on)))
                .await?
                .map_or(Reach::Unreachable, Reach::Conversation))
        }

        pub(in crate::store) async fn segment(
            conn: &mut Conn,
            tenant: TenantId,
            channel: Option<ChannelId>,
            since: Option<DateTime<Utc>>,
            limit: u32,
        ) -> Result<Vec<(ContactId, ConversationId)>, StoreError> {
            // Each contact's most recent matching conversation, in one pass (window function).
            let rows = sqlx::query(
                "SELECT contact_id, id FROM (SELECT c.contact_id, c.id, ROW_NUMBER() OVER \
                   (PARTITION BY c.contact_id ORDER BY c.last_message_at DESC, c.id DESC) AS n \
                   FROM conversations c WHERE c.tenant_id = $1 AND ($2 IS NULL OR c.channel_id = $2) \
                   AND ($3 IS NULL OR c.last_message_at >= $3)) ranked \
                 WHERE n = 1 ORDER BY id LIMIT $4",
            )
            .bind(tenant.0)
            .bind(channel.map(|c| c.0))
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        ContactId(r.try_get("contact_id")?),
                        ConversationId(r.try_get("id")?),
                    ))
                })
                .collect()
        }

        pub(in crate::store) async fn enrollment_counts(
            conn: &mut Conn,
            tenant: TenantId,
            program: Uuid,
        ) -> Result<Vec<(String, String, i64)>, StoreError> {
            let rows = sqlx::query(
                "SELECT e.state, k.kind, COUNT(*) AS n FROM enrollments e \
                 JOIN conversations c ON c.id = e.conversation_id JOIN channels k ON k.id = c.channel_id \
                 WHERE e.tenant_id = $1 AND e.program_id = $2 GROUP BY e.state, k.kind",
            )
            .bind(tenant.0)
            .bind(program)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("state")?, r.try_get("kind")?, r.try_get("n")?)))
                .collect()
        }

        pub(in crate::store) async fn run_facts(
            conn: &mut Conn,
            tenant: TenantId,
            program: Uuid,
        ) -> Result<Vec<RunFact>, StoreError> {
            let rows = sqlx::query(
                "SELECT s.enrollment_id, s.step_id, s.mode, k.kind, m.status_rank, s.sent_at, s.replied_at FROM program_sends s \
                 JOIN channels k ON k.id = s.channel_id LEFT JOIN messages m ON m.id = s.message_id \
                 WHERE s.tenant_id = $1 AND s.program_id = $2 ORDER BY s.id",
            )
            .bind(tenant.0)
            .bind(program)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(RunFact {
                        enrollment_id: r.try_get("enrollment_id")?,
                        step_id: r.try_get("step_id")?,
                        mode: r.try_get("mode")?,
                        channel_kind: r.try_get("kind")?,
                        status_rank: r.try_get("status_rank")?,
                        sent_at: r.try_get("sent_at")?,
                        replied_at: r.try_get("replied_at")?,
                    })
                })
                .collect()
        }
    };
}

crate::store::backend::for_each_backend!(audience);
