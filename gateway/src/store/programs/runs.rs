//! What a step run reads, for both backends: the context a step is sent in and the last step
//! run in a conversation (what a reply answers); and the end of a program whose last step
//! waited for a reply that came. Called by the `ProgramStore` impl in `sql.rs`.

macro_rules! runs {
    ($store:ty, $backend:ident) => {
        type Conn = crate::store::backend::Conn<$store>;
        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ConversationId, TenantId};
        use sqlx::{FromRow as _, Row as _};
        use uuid::Uuid;

        use crate::store::StoreError;
        use crate::store::programs::{
            ENROLLMENT, Enrollment, JOB_PROGRAM_STEP, LastRun, StepContext,
        };

        pub(in crate::store) async fn step_context(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
        ) -> Result<Option<StepContext>, StoreError> {
            let sql = format!(
                "SELECT {ENROLLMENT}, c.status AS conversation_status, c.channel_id AS context_channel, \
                 k.kind AS channel_kind, li.created_at AS last_stored, li.provider_ts AS last_written \
                 FROM enrollments e JOIN conversations c ON c.id = e.conversation_id \
                 JOIN channels k ON k.id = c.channel_id \
                 LEFT JOIN messages li ON li.id = (SELECT m.id FROM messages m WHERE m.conversation_id = e.conversation_id \
                   AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1) \
                 WHERE e.tenant_id = $1 AND e.id = $2"
            );
            let Some(row) = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
            else {
                return Ok(None);
            };
            let kind: String = row.try_get("channel_kind")?;
            let stored: Option<DateTime<Utc>> = row.try_get("last_stored")?;
            let written: Option<DateTime<Utc>> = row.try_get("last_written")?;
            Ok(Some(StepContext {
                enrollment: Enrollment::from_row(&row)?,
                conversation_status: row.try_get::<String, _>("conversation_status")?.try_into()?,
                channel_id: ChannelId(row.try_get("context_channel")?),
                channel_kind: kind.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                // As `last_inbound_at` (delivery/sql.rs): the later of the two times.
                last_inbound_at: stored.map(|s| written.map_or(s, |w| w.max(s))),
            }))
        }

        /// A reply came to run `seq`, the last step, which waited for it: its follow-up is
        /// dropped and the enrollment completes (nothing happens if the follow-up already ran).
        pub(in crate::store) async fn end_waiting(
            conn: &mut Conn,
            tenant: TenantId,
            enrollment: Uuid,
            seq: i32,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let dropped = sqlx::query(
                "UPDATE jobs SET state = 'done', locked_until = NULL, updated_at = $1 \
                 WHERE tenant_id = $2 AND kind = $3 AND dedup_key = $4 AND state = 'pending'",
            )
            .bind(at)
            .bind(tenant.0)
            .bind(JOB_PROGRAM_STEP)
            .bind(format!("{enrollment}:{}", seq + 1))
            .execute(&mut *conn)
            .await?;
            if dropped.rows_affected() == 1 {
                sqlx::query(
                    "UPDATE enrollments SET state = 'completed', ended_at = $1, updated_at = $1 \
                     WHERE id = $2 AND tenant_id = $3 AND state = 'active' AND seq = $4",
                )
                .bind(at)
                .bind(enrollment)
                .bind(tenant.0)
                .bind(seq)
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }

        pub(in crate::store) async fn last_run(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
        ) -> Result<Option<LastRun>, StoreError> {
            let sql = format!(
                "SELECT {ENROLLMENT}, s.seq AS run_seq, s.step_id AS run_step, s.day, s.sent_at, s.replied_at \
                 FROM enrollments e JOIN program_sends s ON s.enrollment_id = e.id AND s.seq = e.seq \
                 WHERE e.tenant_id = $1 AND e.conversation_id = $2 AND e.state IN ('active', 'completed') \
                 AND s.mode <> 'skipped' ORDER BY s.sent_at DESC LIMIT 1"
            );
            let Some(row) = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(conversation.0)
                .fetch_optional(&mut *conn)
                .await?
            else {
                return Ok(None);
            };
            Ok(Some(LastRun {
                enrollment: Enrollment::from_row(&row)?,
                seq: row.try_get("run_seq")?,
                step_id: row.try_get("run_step")?,
                day: row.try_get("day")?,
                sent_at: row.try_get("sent_at")?,
                replied: row.try_get::<Option<DateTime<Utc>>, _>("replied_at")?.is_some(),
            }))
        }
    };
}

crate::store::backend::for_each_backend!(runs);
