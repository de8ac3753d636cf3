//! Progress SQL and the [`ProgressStore`](super::ProgressStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::progress::{
            MilestoneReached, NewEntry, NewMilestone, ProgressEntry, ProgressLog, ProgressStore,
        };
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::NaiveDate;
        use coach_connector_api::{ContactId, TenantId};
        use sqlx::Row as _;
        use uuid::Uuid;

        use crate::store::{StoreError, StoredMessage};

        const ENTRY: &str = "SELECT contact_id, enrollment_id, program_id, step_id, key, kind, value, counts, \
            local_date, answer, recorded_at FROM progress_entries";
        const MILESTONE: &str = "SELECT contact_id, enrollment_id, program_id, milestone, message_id, reached_at \
            FROM progress_milestones";

        fn entry(row: &crate::store::backend::Row<$store>) -> Result<ProgressEntry, StoreError> {
            Ok(ProgressEntry {
                contact_id: row.try_get("contact_id")?,
                enrollment_id: row.try_get("enrollment_id")?,
                program_id: row.try_get("program_id")?,
                step_id: row.try_get("step_id")?,
                key: row.try_get("key")?,
                kind: row.try_get("kind")?,
                value: row.try_get("value")?,
                counts: row.try_get("counts")?,
                local_date: row.try_get("local_date")?,
                answer: row.try_get("answer")?,
                recorded_at: row.try_get("recorded_at")?,
            })
        }

        fn milestone(row: &crate::store::backend::Row<$store>) -> Result<MilestoneReached, StoreError> {
            Ok(MilestoneReached {
                contact_id: row.try_get("contact_id")?,
                enrollment_id: row.try_get("enrollment_id")?,
                program_id: row.try_get("program_id")?,
                milestone: row.try_get("milestone")?,
                message_id: row.try_get("message_id")?,
                reached_at: row.try_get("reached_at")?,
            })
        }

        async fn record_progress(conn: &mut Conn, tenant: TenantId, e: &NewEntry) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "INSERT INTO progress_entries (id, tenant_id, contact_id, enrollment_id, program_id, seq, step_id, \
                 key, kind, value, counts, local_date, answer, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(e.contact_id.0)
            .bind(e.enrollment_id)
            .bind(e.program_id)
            .bind(e.seq)
            .bind(&e.step_id)
            .bind(&e.key)
            .bind(e.kind)
            .bind(e.value)
            .bind(e.counts)
            .bind(e.local_date)
            .bind(&e.answer)
            .bind(e.at)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        }

        async fn progress_days(
            conn: &mut Conn,
            tenant: TenantId,
            enrollment: Uuid,
            key: &str,
        ) -> Result<Vec<NaiveDate>, StoreError> {
            let rows = sqlx::query(
                "SELECT local_date FROM progress_entries WHERE tenant_id = $1 AND enrollment_id = $2 \
                 AND key = $3 AND counts ORDER BY local_date",
            )
            .bind(tenant.0)
            .bind(enrollment)
            .bind(key)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|r| Ok(r.try_get("local_date")?)).collect()
        }

        async fn reach_milestone(
            conn: &mut Conn,
            tenant: TenantId,
            m: NewMilestone,
        ) -> Result<Option<StoredMessage>, StoreError> {
            let inserted = sqlx::query(
                "INSERT INTO progress_milestones (tenant_id, contact_id, enrollment_id, program_id, milestone, reached_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(m.contact_id.0)
            .bind(m.enrollment_id)
            .bind(m.program_id)
            .bind(&m.milestone)
            .bind(m.at)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 0 {
                return Ok(None);
            }
            let message = crate::store::channels::sql::$backend::enqueue_content(
                &mut *conn,
                tenant,
                m.conversation_id,
                m.content,
                None,
                chrono::Utc::now(),
            )
            .await?;
            sqlx::query(
                "UPDATE progress_milestones SET message_id = $1 WHERE enrollment_id = $2 AND milestone = $3",
            )
            .bind(message.id.0)
            .bind(m.enrollment_id)
            .bind(&m.milestone)
            .execute(&mut *conn)
            .await?;
            Ok(Some(message))
        }

        async fn log(conn: &mut Conn, tenant: TenantId, column: &str, id: Uuid) -> Result<ProgressLog, StoreError> {
            let entries = sqlx::query(&format!(
                "{ENTRY} WHERE tenant_id = $1 AND {column} = $2 ORDER BY recorded_at, id"
            ))
            .bind(tenant.0)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            let milestones = sqlx::query(&format!(
                "{MILESTONE} WHERE tenant_id = $1 AND {column} = $2 ORDER BY reached_at"
            ))
            .bind(tenant.0)
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
            Ok(ProgressLog {
                entries: entries.iter().map(entry).collect::<Result<_, _>>()?,
                milestones: milestones.iter().map(milestone).collect::<Result<_, _>>()?,
            })
        }

        /// A contact's answers and milestones (the GDPR export reads them too).
        pub(in crate::store) async fn contact_log(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<ProgressLog, StoreError> {
            log(conn, tenant, "contact_id", contact.0).await
        }

        async fn contact_progress(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<ProgressLog, StoreError> {
            sqlx::query("SELECT 1 FROM contacts WHERE id = $1 AND tenant_id = $2")
                .bind(contact.0)
                .bind(tenant.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("contact"))?;
            contact_log(conn, tenant, contact).await
        }

        async fn program_progress(conn: &mut Conn, tenant: TenantId, program: Uuid) -> Result<ProgressLog, StoreError> {
            log(conn, tenant, "program_id", program).await
        }

        crate::store::backend::store_impl! { ProgressStore for $store;
            write record_progress(scope: &TenantScope, entry: NewEntry) -> bool
                = |c, t| async move { record_progress(c, t, &entry).await };
            read progress_days(scope: &TenantScope, enrollment: Uuid, key: &str) -> Vec<NaiveDate>
                = own(key) |c, t| async move { progress_days(c, t, enrollment, &key).await };
            write reach_milestone(scope: &TenantScope, milestone: NewMilestone) -> Option<StoredMessage>
                = |c, t| reach_milestone(c, t, milestone);
            read contact_progress(scope: &TenantScope, contact: ContactId) -> ProgressLog
                = |c, t| contact_progress(c, t, contact);
            read program_progress(scope: &TenantScope, program: Uuid) -> ProgressLog
                = |c, t| program_progress(c, t, program);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
