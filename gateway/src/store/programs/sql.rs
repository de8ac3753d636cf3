//! Program SQL shared by both backends (see `store/backend.rs`). Each function runs
//! inside the caller's transaction; `record_step` relies on the enrollment row's guarded
//! update (`state = 'active' AND seq = run - 1`), which on PostgreSQL also locks the row, so
//! concurrent runs of one enrollment are serialized and only the first writes anything.

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        type Conn = crate::store::backend::Conn<$store>;
        use crate::store::programs::{ProgramStore, RunFact};
        use crate::tenancy::TenantScope;
        use crate::store::programs::audience::$backend::{
            enrollment_counts, open_reach, opt_in, opt_out, opted_out, reach, run_facts, segment,
        };
        use crate::store::programs::runs::$backend::{end_waiting, last_run, step_context};
        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ContactId, ConversationId, TenantId};
        use sqlx::{FromRow as _, Row as _};
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::programs::definition::Definition;
        use crate::store::StoreError;
        use crate::store::programs::{
            EnrollOutcome, Enrollment, EnrollmentState, JOB_PROGRAM_STEP, LastRun, NewEnrollment,
            ProgramRecord, Route, StepContext, StepOutcome, StepRun,
        };

        const PROGRAM: &str = "SELECT p.id, p.version, p.status, p.created_at, p.updated_at, v.definition \
            FROM programs p JOIN program_versions v ON v.program_id = p.id AND v.version = p.version";
        use crate::store::programs::ENROLLMENT;

        async fn create_program(
            conn: &mut Conn,
            tenant: TenantId,
            definition: Definition,
            now: DateTime<Utc>,
        ) -> Result<ProgramRecord, StoreError> {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO programs (id, tenant_id, name, version, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, 1, 'active', $4, $4)",
            )
            .bind(id)
            .bind(tenant.0)
            .bind(&definition.name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO program_versions (program_id, tenant_id, version, definition, created_at) \
                 VALUES ($1, $2, 1, $3, $4)",
            )
            .bind(id)
            .bind(tenant.0)
            .bind(Json(&definition))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(ProgramRecord {
                id,
                version: 1,
                status: crate::store::programs::ProgramStatus::Active,
                definition,
                created_at: now,
                updated_at: now,
            })
        }

        async fn update_program(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
            definition: Definition,
            now: DateTime<Utc>,
        ) -> Result<ProgramRecord, StoreError> {
            let row = sqlx::query(
                "UPDATE programs SET version = version + 1, name = $1, updated_at = $2 \
                 WHERE id = $3 AND tenant_id = $4 AND status = 'active' RETURNING version",
            )
            .bind(&definition.name)
            .bind(now)
            .bind(id)
            .bind(tenant.0)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(row) = row else {
                program(&mut *conn, tenant, id).await?;
                return Err(StoreError::Conflict("the program is archived".into()));
            };
            let version: i32 = row.try_get("version")?;
            sqlx::query(
                "INSERT INTO program_versions (program_id, tenant_id, version, definition, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(tenant.0)
            .bind(version)
            .bind(Json(&definition))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            program(&mut *conn, tenant, id).await
        }

        async fn programs(
            conn: &mut Conn,
            tenant: TenantId,
        ) -> Result<Vec<ProgramRecord>, StoreError> {
            let sql = format!("{PROGRAM} WHERE p.tenant_id = $1 ORDER BY p.id");
            let rows = sqlx::query(&sql).bind(tenant.0).fetch_all(&mut *conn).await?;
            rows.iter().map(|row| Ok(ProgramRecord::from_row(row)?)).collect()
        }

        async fn program(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
        ) -> Result<ProgramRecord, StoreError> {
            let sql = format!("{PROGRAM} WHERE p.tenant_id = $1 AND p.id = $2");
            let row = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("program"))?;
            Ok(ProgramRecord::from_row(&row)?)
        }

        async fn program_version(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
            version: i32,
        ) -> Result<Definition, StoreError> {
            let row = sqlx::query(
                "SELECT definition FROM program_versions WHERE tenant_id = $1 AND program_id = $2 AND version = $3",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound("program version"))?;
            Ok(row.try_get::<Json<Definition>, _>("definition")?.0)
        }

        async fn archive_program(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            let done = sqlx::query(
                "UPDATE programs SET status = 'archived', updated_at = $1 WHERE id = $2 AND tenant_id = $3",
            )
            .bind(now)
            .bind(id)
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("program"));
            }
            let ended = sqlx::query(
                "UPDATE enrollments SET state = 'cancelled', ended_at = $1, updated_at = $1 \
                 WHERE tenant_id = $2 AND program_id = $3 AND state = 'active'",
            )
            .bind(now)
            .bind(tenant.0)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(ended.rows_affected())
        }

        /// Queue the job that runs an enrollment's `seq`-th step (once: its key is unique).
        /// A step run to schedule.
        struct Run<'a> {
            seq: i32,
            step_id: &'a str,
            due_at: DateTime<Utc>,
            answers: bool,
        }

        async fn schedule(
            conn: &mut Conn,
            tenant: TenantId,
            enrollment: Uuid,
            run: Run<'_>,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let Run { seq, step_id, due_at, answers } = run;
            // `answers`: the step answers the contact's own message (an enrollment keyword, a
            // branch), so it does not wait for them to finish writing.
            let payload = crate::store::programs::StepJob {
                enrollment_id: enrollment,
                seq,
                step_id: step_id.to_owned(),
                due_at,
                answers,
            };
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, payload, next_attempt_at, created_at, updated_at, dedup_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(JOB_PROGRAM_STEP)
            .bind(Json(&payload))
            .bind(due_at)
            .bind(now)
            .bind(format!("{enrollment}:{seq}"))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn enroll(
            conn: &mut Conn,
            tenant: TenantId,
            new: NewEnrollment,
            now: DateTime<Utc>,
        ) -> Result<EnrollOutcome, StoreError> {
            if opted_out(&mut *conn, tenant, new.contact_id).await?.is_some() {
                return Ok(EnrollOutcome::OptedOut);
            }
            let id = Uuid::now_v7();
            let inserted = sqlx::query(
                "INSERT INTO enrollments (id, tenant_id, program_id, version, contact_id, conversation_id, state, \
                 seq, time_zone, variables, source, enrolled_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active', 0, $7, $8, $9, $10, $10) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(tenant.0)
            .bind(new.program_id)
            .bind(new.version)
            .bind(new.contact_id.0)
            .bind(new.conversation_id.0)
            .bind(&new.time_zone)
            .bind(Json(&new.variables))
            .bind(&new.source)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            let existing = if inserted.rows_affected() == 1 {
                None
            } else {
                let sql = format!(
                    "SELECT {ENROLLMENT} FROM enrollments e WHERE e.tenant_id = $1 AND e.program_id = $2 AND e.contact_id = $3"
                );
                let row = sqlx::query(&sql)
                    .bind(tenant.0)
                    .bind(new.program_id)
                    .bind(new.contact_id.0)
                    .fetch_one(&mut *conn)
                    .await?;
                let existing = Enrollment::from_row(&row)?;
                if existing.state == EnrollmentState::Active {
                    return Ok(EnrollOutcome::Already(existing));
                }
                // An ended enrollment starts over. Its run count skips one number, so the new
                // first step's job key is one no earlier job has (an old job still pending finds
                // the count moved on and does nothing), and no old run counts as the last one.
                sqlx::query(
                    "UPDATE enrollments SET state = 'active', version = $1, conversation_id = $2, time_zone = $3, \
                     variables = $4, source = $5, enrolled_at = $6, ended_at = NULL, step_id = NULL, updated_at = $6, \
                     seq = seq + 1 WHERE id = $7",
                )
                .bind(new.version)
                .bind(new.conversation_id.0)
                .bind(&new.time_zone)
                .bind(Json(&new.variables))
                .bind(&new.source)
                .bind(now)
                .bind(existing.id)
                .execute(&mut *conn)
                .await?;
                Some(existing)
            };
            let (id, seq) = existing.as_ref().map_or((id, 0), |e| (e.id, e.seq + 1));
            schedule(&mut *conn, tenant, id, Run {
                seq: seq + 1,
                step_id: &new.first_step,
                due_at: new.due_at,
                answers: new.answers,
            }, now).await?;
            Ok(EnrollOutcome::Enrolled(enrollment(&mut *conn, tenant, id).await?))
        }

        async fn enrollment(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
        ) -> Result<Enrollment, StoreError> {
            let sql = format!("SELECT {ENROLLMENT} FROM enrollments e WHERE e.tenant_id = $1 AND e.id = $2");
            let row = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("enrollment"))?;
            Ok(Enrollment::from_row(&row)?)
        }

        async fn enrollments(
            conn: &mut Conn,
            tenant: TenantId,
            program: Uuid,
            after: Option<Uuid>,
            limit: u32,
        ) -> Result<Vec<Enrollment>, StoreError> {
            let sql = format!(
                "SELECT {ENROLLMENT} FROM enrollments e WHERE e.tenant_id = $1 AND e.program_id = $2 \
                 AND ($3 IS NULL OR e.id > $3) ORDER BY e.id LIMIT $4"
            );
            let rows = sqlx::query(&sql)
                .bind(tenant.0)
                .bind(program)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(|row| Ok(Enrollment::from_row(row)?)).collect()
        }

        async fn cancel_enrollment(
            conn: &mut Conn,
            tenant: TenantId,
            id: Uuid,
            now: DateTime<Utc>,
        ) -> Result<Enrollment, StoreError> {
            let current = enrollment(&mut *conn, tenant, id).await?;
            if current.state != EnrollmentState::Active {
                return Err(StoreError::Conflict(format!(
                    "the enrollment is {} already",
                    current.state.as_str()
                )));
            }
            let ended = sqlx::query(
                "UPDATE enrollments SET state = 'cancelled', ended_at = $1, updated_at = $1 \
                 WHERE id = $2 AND tenant_id = $3 AND state = 'active'",
            )
            .bind(now)
            .bind(id)
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
            if ended.rows_affected() == 0 {
                return Err(StoreError::Conflict("the enrollment ended meanwhile".into()));
            }
            enrollment(&mut *conn, tenant, id).await
        }

        async fn record_step(
            conn: &mut Conn,
            tenant: TenantId,
            run: StepRun,
            now: DateTime<Utc>,
        ) -> Result<StepOutcome, StoreError> {
            let (state, ended_at) = match run.next {
                Some(_) => ("active", None),
                None => ("completed", Some(now)),
            };
            let claimed = sqlx::query(
                "UPDATE enrollments SET seq = $1, step_id = $2, state = $3, ended_at = $4, updated_at = $5 \
                 WHERE id = $6 AND tenant_id = $7 AND state = 'active' AND seq = $8 \
                 AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.tenant_id = $7 AND o.contact_id = enrollments.contact_id)",
            )
            .bind(run.seq)
            .bind(&run.step_id)
            .bind(state)
            .bind(ended_at)
            .bind(now)
            .bind(run.enrollment_id)
            .bind(tenant.0)
            .bind(run.seq - 1)
            .execute(&mut *conn)
            .await?;
            if claimed.rows_affected() == 0 {
                return Ok(StepOutcome::AlreadyRan);
            }
            let send_id = Uuid::now_v7();
            let recorded = sqlx::query(
                "INSERT INTO program_sends (id, tenant_id, enrollment_id, program_id, seq, step_id, day, channel_id, \
                 mode, reason, due_at, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(send_id)
            .bind(tenant.0)
            .bind(run.enrollment_id)
            .bind(run.program_id)
            .bind(run.seq)
            .bind(&run.step_id)
            .bind(run.day)
            .bind(run.channel_id.0)
            .bind(run.mode.as_str())
            .bind(run.reason.as_deref())
            .bind(run.due_at)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if recorded.rows_affected() == 0 {
                // The guarded update above makes this unreachable unless rows were edited by
                // hand; failing rolls the enrollment update back.
                return Err(StoreError::Conflict(format!(
                    "step run {}:{} exists but the enrollment did not show it",
                    run.enrollment_id, run.seq
                )));
            }
            let mut stored = None;
            if let Some(content) = run.content {
                // The message is stored (and due in the outbox) on the store's clock, like every
                // other message; `now` is program time, kept on the run.
                let message = crate::store::channels::sql::$backend::enqueue_content(
                    &mut *conn,
                    tenant,
                    run.conversation_id,
                    content,
                    None,
                    Utc::now(),
                )
                .await?;
                sqlx::query("UPDATE program_sends SET message_id = $1 WHERE id = $2")
                    .bind(message.id.0)
                    .bind(send_id)
                    .execute(&mut *conn)
                    .await?;
                stored = Some(Box::new(message));
            }
            if let Some((step, due_at)) = &run.next {
                schedule(&mut *conn, tenant, run.enrollment_id, Run { seq: run.seq + 1, step_id: step, due_at: *due_at, answers: false }, now).await?;
            }
            // The job is done with the run it recorded: one commit for both.
            sqlx::query(
                "UPDATE jobs SET state = 'done', locked_until = NULL, updated_at = $1 \
                 WHERE id = $2 AND tenant_id = $3 AND state = 'inflight'",
            )
            .bind(now)
            .bind(run.job_id)
            .bind(tenant.0)
            .execute(&mut *conn)
            .await?;
            Ok(StepOutcome::Recorded(stored))
        }

        async fn record_reply(
            conn: &mut Conn,
            tenant: TenantId,
            enrollment_id: Uuid,
            seq: i32,
            reply: String,
            at: DateTime<Utc>,
            route: Route,
        ) -> Result<bool, StoreError> {
            let first = sqlx::query(
                "UPDATE program_sends SET replied_at = $1, reply = $2 \
                 WHERE tenant_id = $3 AND enrollment_id = $4 AND seq = $5 AND replied_at IS NULL",
            )
            .bind(at)
            .bind(reply)
            .bind(tenant.0)
            .bind(enrollment_id)
            .bind(seq)
            .execute(&mut *conn)
            .await?;
            let (step, due_at) = match route {
                Route::Stay => return Ok(first.rows_affected() == 1),
                Route::Goto(step, due_at) => (step, due_at),
                Route::End => {
                    end_waiting(&mut *conn, tenant, enrollment_id, seq, at).await?;
                    return Ok(first.rows_affected() == 1);
                }
            };
            let current = enrollment(&mut *conn, tenant, enrollment_id).await?;
            if current.seq != seq {
                return Ok(first.rows_affected() == 1);
            }
            let payload = serde_json::json!({
                "enrollment_id": enrollment_id, "seq": seq + 1, "step_id": step, "due_at": due_at,
                "answers": due_at <= at + chrono::Duration::minutes(5),
            });
            let moved = sqlx::query(
                "UPDATE jobs SET payload = $1, next_attempt_at = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND kind = $5 AND dedup_key = $6 AND state = 'pending'",
            )
            .bind(Json(&payload))
            .bind(due_at)
            .bind(at)
            .bind(tenant.0)
            .bind(JOB_PROGRAM_STEP)
            .bind(format!("{enrollment_id}:{}", seq + 1))
            .execute(&mut *conn)
            .await?;
            if moved.rows_affected() == 0 && current.state == EnrollmentState::Completed {
                // A branch from the last step carries the program on, unless they opted out.
                let revived = sqlx::query(
                    "UPDATE enrollments SET state = 'active', ended_at = NULL, updated_at = $1 WHERE id = $2 \
                     AND state = 'completed' AND NOT EXISTS (SELECT 1 FROM opt_outs o \
                     WHERE o.tenant_id = enrollments.tenant_id AND o.contact_id = enrollments.contact_id)",
                )
                .bind(at)
                .bind(enrollment_id)
                .execute(&mut *conn)
                .await?;
                if revived.rows_affected() == 1 {
                    let answers = due_at <= at + chrono::Duration::minutes(5);
                    schedule(&mut *conn, tenant, enrollment_id, Run { seq: seq + 1, step_id: &step, due_at, answers }, at).await?;
                }
            }
            Ok(first.rows_affected() == 1)
        }
        crate::store::backend::store_impl! { ProgramStore for $store;
            write enroll(scope: &TenantScope, new: Vec<NewEnrollment>, now: DateTime<Utc>)
                -> Vec<EnrollOutcome> = |c, tenant| async move {
                    let mut out = Vec::with_capacity(new.len());
                    for n in new {
                        out.push(enroll(&mut *c, tenant, n, now).await?);
                    }
                    Ok(out)
                };
            write create_program(scope: &TenantScope, definition: Definition) -> ProgramRecord
                = |c, tenant| create_program(c, tenant, definition, Utc::now());
            write update_program(scope: &TenantScope, id: uuid::Uuid, definition: Definition)
                -> ProgramRecord = |c, tenant| update_program(c, tenant, id, definition, Utc::now());
            read programs(scope: &TenantScope) -> Vec<ProgramRecord> = |c, t| programs(c, t);
            read program(scope: &TenantScope, id: uuid::Uuid) -> ProgramRecord
                = |c, t| program(c, t, id);
            read program_version(scope: &TenantScope, id: uuid::Uuid, version: i32) -> Definition
                = |c, t| program_version(c, t, id, version);
            write archive_program(scope: &TenantScope, id: uuid::Uuid) -> u64
                = |c, tenant| archive_program(c, tenant, id, Utc::now());
            read enrollment(scope: &TenantScope, id: uuid::Uuid) -> Enrollment
                = |c, t| enrollment(c, t, id);
            read enrollments(
                scope: &TenantScope,
                program: uuid::Uuid,
                after: Option<uuid::Uuid>,
                limit: u32,
            ) -> Vec<Enrollment> = |c, t| enrollments(c, t, program, after, limit);
            read step_context(scope: &TenantScope, enrollment: uuid::Uuid) -> Option<StepContext>
                = |c, t| step_context(c, t, enrollment);
            write cancel_enrollment(scope: &TenantScope, id: uuid::Uuid) -> Enrollment
                = |c, tenant| cancel_enrollment(c, tenant, id, Utc::now());
            write record_step(scope: &TenantScope, run: StepRun, now: DateTime<Utc>) -> StepOutcome
                = |c, tenant| record_step(c, tenant, run, now);
            read last_run(scope: &TenantScope, conversation: ConversationId) -> Option<LastRun>
                = |c, t| last_run(c, t, conversation);
            write record_reply(
                scope: &TenantScope,
                enrollment: uuid::Uuid,
                seq: i32,
                reply: String,
                at: DateTime<Utc>,
                route: Route,
            ) -> bool = |c, tenant| record_reply(c, tenant, enrollment, seq, reply, at, route);
            write opt_out(scope: &TenantScope, contact: ContactId, source: &str, at: DateTime<Utc>)
                -> Option<u64> = own(source) |c, tenant| async move {
                    opt_out(c, tenant, contact, &source, at).await
                };
            write opt_in(scope: &TenantScope, contact: ContactId) -> bool
                = |c, tenant| opt_in(c, tenant, contact);
            read opted_out(scope: &TenantScope, contact: ContactId) -> Option<DateTime<Utc>>
                = |c, t| opted_out(c, t, contact);
            read reach(scope: &TenantScope, contact: ContactId, channel: Option<ChannelId>)
                -> Option<ConversationId> = |c, t| reach(c, t, contact, channel);
            write open_reach(scope: &TenantScope, contact: ContactId, channel: Option<ChannelId>, now: DateTime<Utc>)
                -> crate::store::programs::Reach = |c, t| open_reach(c, t, contact, channel, now);
            read segment(
                scope: &TenantScope,
                channel: Option<ChannelId>,
                since: Option<DateTime<Utc>>,
                limit: u32,
            ) -> Vec<(ContactId, ConversationId)> = |c, t| segment(c, t, channel, since, limit);
            read enrollment_counts(scope: &TenantScope, program: uuid::Uuid)
                -> Vec<(String, String, i64)> = |c, t| enrollment_counts(c, t, program);
            read run_facts(scope: &TenantScope, program: uuid::Uuid) -> Vec<RunFact>
                = |c, t| run_facts(c, t, program);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
