//! Privacy SQL and the [`PrivacyStore`](super::PrivacyStore) impl, written once for both backends
//! (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use futures::FutureExt as _;

        use crate::store::backend::Backend as _;
        use crate::store::privacy::PrivacyStore;
        use crate::tenancy::{SystemScope, TenantScope};

        type Conn = crate::store::backend::Conn<$store>;
        type Row = crate::store::backend::Row<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{ChannelId, ContactId, TenantId};
        use serde_json::{Value, json};
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::types::{ContactIdentity, ContactRecord};
        use crate::store::StoreError;

        async fn identities(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<Vec<ContactIdentity>, StoreError> {
            let rows = sqlx::query(
                "SELECT channel_id, external_id, username FROM contact_identities \
                 WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ContactIdentity {
                        channel_id: ChannelId(r.try_get("channel_id")?),
                        external_id: r.try_get("external_id")?,
                        username: r.try_get("username")?,
                    })
                })
                .collect()
        }

        /// The columns [`contact_from_row`] reads.
        const CONTACT_COLUMNS: &str =
            "id, display_name, created_at, time_zone, language, detected_language, consent_at, attributes";

        /// A contact without their identities.
        fn contact_from_row(row: &Row) -> Result<ContactRecord, StoreError> {
            Ok(ContactRecord {
                id: ContactId(row.try_get("id")?),
                display_name: row.try_get("display_name")?,
                created_at: row.try_get("created_at")?,
                identities: Vec::new(),
                time_zone: row.try_get("time_zone")?,
                language: row.try_get("language")?,
                detected_language: row.try_get("detected_language")?,
                consent_at: row.try_get("consent_at")?,
                attributes: row.try_get::<Json<serde_json::Map<String, Value>>, _>("attributes")?.0,
            })
        }

        /// Contacts, newest first, before the cursor.
        async fn contacts(
            conn: &mut Conn,
            tenant: TenantId,
            before: Option<ContactId>,
            limit: u32,
        ) -> Result<Vec<ContactRecord>, StoreError> {
            let rows = sqlx::query(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 \
                 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            ))
            .bind(tenant.0)
            .bind(before.map(|c| c.0))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut contact = contact_from_row(row)?;
                contact.identities = identities(conn, tenant, contact.id).await?;
                out.push(contact);
            }
            Ok(out)
        }

        /// One contact with their identities.
        async fn contact(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<ContactRecord, StoreError> {
            let row = sqlx::query(&format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant.0)
                .bind(contact.0)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("contact"))?;
            let mut record = contact_from_row(&row)?;
            record.identities = identities(conn, tenant, record.id).await?;
            Ok(record)
        }

        /// Everything stored about one contact, as one JSON document.
        async fn export_contact(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<Value, StoreError> {
            let record = self::contact(conn, tenant, contact).await?;
            let conversations = sqlx::query(
                "SELECT id, channel_id, status, created_at, last_message_at FROM conversations \
                 WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            let mut exported = Vec::new();
            for c in &conversations {
                let conversation: Uuid = c.try_get("id")?;
                let messages = sqlx::query(
                    "SELECT id, direction, content, provider_message_id, status_rank, created_at FROM messages \
                     WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY id",
                )
                .bind(tenant.0)
                .bind(conversation)
                .fetch_all(&mut *conn)
                .await?;
                let messages = messages
                    .iter()
                    .map(|m| {
                        let status = crate::store::types::status_from_rank(m.try_get("status_rank")?)?;
                        Ok(json!({
                            "id": m.try_get::<Uuid, _>("id")?,
                            "direction": m.try_get::<String, _>("direction")?,
                            "content": m.try_get::<Json<Value>, _>("content")?.0,
                            "provider_message_id": m.try_get::<Option<String>, _>("provider_message_id")?,
                            "status": status,
                            "created_at": m.try_get::<DateTime<Utc>, _>("created_at")?,
                        }))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                let notes = sqlx::query(
                    "SELECT id, author, text, created_at FROM conversation_notes \
                     WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY id",
                )
                .bind(tenant.0)
                .bind(conversation)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|n| {
                    Ok(json!({
                        "id": n.try_get::<Uuid, _>("id")?,
                        "author": n.try_get::<Option<Uuid>, _>("author")?,
                        "text": n.try_get::<String, _>("text")?,
                        "created_at": n.try_get::<DateTime<Utc>, _>("created_at")?,
                    }))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                let labels: Vec<String> = sqlx::query_scalar(
                    "SELECT label FROM conversation_labels WHERE tenant_id = $1 AND conversation_id = $2 ORDER BY label",
                )
                .bind(tenant.0)
                .bind(conversation)
                .fetch_all(&mut *conn)
                .await?;
                exported.push(json!({
                    "id": conversation,
                    "notes": notes,
                    "labels": labels,
                    "channel_id": c.try_get::<Uuid, _>("channel_id")?,
                    "status": c.try_get::<String, _>("status")?,
                    "created_at": c.try_get::<DateTime<Utc>, _>("created_at")?,
                    "last_message_at": c.try_get::<DateTime<Utc>, _>("last_message_at")?,
                    "messages": messages,
                }));
            }
            let handoffs = sqlx::query(
                "SELECT h.message_id, h.conversation_id, h.reason, h.question, h.created_at FROM handoffs h \
                 JOIN conversations c ON c.id = h.conversation_id \
                 WHERE h.tenant_id = $1 AND c.tenant_id = $1 AND c.contact_id = $2 ORDER BY h.created_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|h| {
                Ok(json!({
                    "message_id": h.try_get::<Uuid, _>("message_id")?,
                    "conversation_id": h.try_get::<Uuid, _>("conversation_id")?,
                    "reason": h.try_get::<String, _>("reason")?,
                    "question": h.try_get::<String, _>("question")?,
                    "created_at": h.try_get::<DateTime<Utc>, _>("created_at")?,
                }))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let enrollments = sqlx::query(
                "SELECT e.id, e.program_id, p.name, e.state, e.step_id, e.variables, e.source, e.enrolled_at, e.ended_at \
                 FROM enrollments e JOIN programs p ON p.id = e.program_id \
                 WHERE e.tenant_id = $1 AND p.tenant_id = $1 AND e.contact_id = $2 ORDER BY e.enrolled_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            let mut programs = Vec::with_capacity(enrollments.len());
            for e in &enrollments {
                let enrollment: Uuid = e.try_get("id")?;
                let sends = sqlx::query(
                    "SELECT step_id, day, mode, reason, message_id, due_at, sent_at, replied_at FROM program_sends \
                     WHERE tenant_id = $1 AND enrollment_id = $2 ORDER BY seq",
                )
                .bind(tenant.0)
                .bind(enrollment)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|s| {
                    Ok(json!({
                        "step_id": s.try_get::<String, _>("step_id")?,
                        "day": s.try_get::<i32, _>("day")?,
                        "mode": s.try_get::<String, _>("mode")?,
                        "reason": s.try_get::<Option<String>, _>("reason")?,
                        "message_id": s.try_get::<Option<Uuid>, _>("message_id")?,
                        "due_at": s.try_get::<DateTime<Utc>, _>("due_at")?,
                        "sent_at": s.try_get::<DateTime<Utc>, _>("sent_at")?,
                        "replied_at": s.try_get::<Option<DateTime<Utc>>, _>("replied_at")?,
                    }))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                programs.push(json!({
                    "enrollment_id": enrollment,
                    "program_id": e.try_get::<Uuid, _>("program_id")?,
                    "program": e.try_get::<String, _>("name")?,
                    "state": e.try_get::<String, _>("state")?,
                    "step_id": e.try_get::<Option<String>, _>("step_id")?,
                    "variables": e.try_get::<Json<Value>, _>("variables")?.0,
                    "source": e.try_get::<String, _>("source")?,
                    "enrolled_at": e.try_get::<DateTime<Utc>, _>("enrolled_at")?,
                    "ended_at": e.try_get::<Option<DateTime<Utc>>, _>("ended_at")?,
                    "sends": sends,
                }));
            }
            let opt_out = sqlx::query("SELECT source, created_at FROM opt_outs WHERE tenant_id = $1 AND contact_id = $2")
                .bind(tenant.0)
                .bind(contact.0)
                .fetch_optional(&mut *conn)
                .await?
                .map(|o| {
                    Ok::<_, StoreError>(json!({
                        "source": o.try_get::<String, _>("source")?,
                        "created_at": o.try_get::<DateTime<Utc>, _>("created_at")?,
                    }))
                })
                .transpose()?;
            let unknown = sqlx::query(
                "SELECT channel_id, kind, raw, created_at FROM unknown_events WHERE tenant_id = $1 AND sender IN \
                 (SELECT external_id FROM contact_identities WHERE tenant_id = $1 AND contact_id = $2) \
                 ORDER BY created_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|u| {
                Ok(json!({
                    "channel_id": u.try_get::<Uuid, _>("channel_id")?,
                    "kind": u.try_get::<String, _>("kind")?,
                    "raw": u.try_get::<Json<Value>, _>("raw")?.0,
                    "created_at": u.try_get::<DateTime<Utc>, _>("created_at")?,
                }))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let memory = sqlx::query(
                "SELECT id, kind, text, source, message_id, created_at, updated_at FROM contact_memory \
                 WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at, id",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|m| {
                Ok(json!({
                    "id": m.try_get::<Uuid, _>("id")?,
                    "kind": m.try_get::<String, _>("kind")?,
                    "text": m.try_get::<String, _>("text")?,
                    "source": m.try_get::<String, _>("source")?,
                    "message_id": m.try_get::<Option<Uuid>, _>("message_id")?,
                    "created_at": m.try_get::<DateTime<Utc>, _>("created_at")?,
                    "updated_at": m.try_get::<DateTime<Utc>, _>("updated_at")?,
                }))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let progress = crate::store::progress::sql::$backend::contact_log(&mut *conn, tenant, contact).await?;
            let feedback = sqlx::query(
                "SELECT conversation_id, answer_id, question_id, emoji, rating, created_at, updated_at \
                 FROM answer_feedback WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|f| {
                Ok(json!({
                    "conversation_id": f.try_get::<Uuid, _>("conversation_id")?,
                    "answer_id": f.try_get::<Uuid, _>("answer_id")?,
                    "question_id": f.try_get::<Option<Uuid>, _>("question_id")?,
                    "emoji": f.try_get::<String, _>("emoji")?,
                    "rating": f.try_get::<i16, _>("rating")?,
                    "created_at": f.try_get::<DateTime<Utc>, _>("created_at")?,
                    "updated_at": f.try_get::<DateTime<Utc>, _>("updated_at")?,
                }))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
            let ratings = crate::store::ratings::sql::$backend::contact_ratings(&mut *conn, tenant, contact).await?;
            let events = crate::store::events::sql::$backend::contact_events(&mut *conn, tenant, contact).await?;
            Ok(json!({
                "contact": record,
                "memory": memory,
                "progress": progress,
                "feedback": feedback,
                "ratings": ratings,
                "conversations": exported,
                "handoffs": handoffs,
                "programs": programs,
                "opt_out": opt_out,
                "unknown_events": unknown,
                "live_events": events,
            }))
        }

        /// Erase a contact and everything derived from them: identities, conversations,
        /// messages, their statuses, jobs and outbox rows, and unknown events they sent.
        async fn erase_contact(conn: &mut Conn, tenant: TenantId, contact: ContactId) -> Result<(), StoreError> {
            let found = sqlx::query("SELECT 1 FROM contacts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(contact.0)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound("contact"));
            }
            let statements = [
                "DELETE FROM message_status WHERE tenant_id = $1 AND provider_message_id IN \
                 (SELECT provider_message_id FROM messages WHERE tenant_id = $1 AND contact_id = $2 \
                  AND provider_message_id IS NOT NULL)",
                "DELETE FROM jobs WHERE tenant_id = $1 AND message_id IN \
                 (SELECT id FROM messages WHERE tenant_id = $1 AND contact_id = $2)",
                "DELETE FROM unknown_events WHERE tenant_id = $1 AND sender IN \
                 (SELECT external_id FROM contact_identities WHERE tenant_id = $1 AND contact_id = $2)",
                // Identities, conversations, messages and outbox rows go with the contact.
                "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2",
            ];
            for sql in statements {
                sqlx::query(sql).bind(tenant.0).bind(contact.0).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Erase a tenant with all its data; returns its sessions so they can be refused.
        async fn erase_tenant(conn: &mut Conn, tenant: TenantId) -> Result<Vec<Uuid>, StoreError> {
            let sessions: Vec<Uuid> = sqlx::query_scalar("SELECT DISTINCT family_id FROM refresh_tokens WHERE tenant_id = $1")
                .bind(tenant.0)
                .fetch_all(&mut *conn)
                .await?;
            // Jobs reference messages without a foreign key: remove them first.
            sqlx::query("DELETE FROM jobs WHERE tenant_id = $1").bind(tenant.0).execute(&mut *conn).await?;
            let n = sqlx::query("DELETE FROM tenants WHERE id = $1").bind(tenant.0).execute(&mut *conn).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound("tenant"));
            }
            crate::store::documents::sql::$backend::forget_vectors(conn, tenant, None).await?;
            Ok(sessions)
        }

        /// Delete, for every tenant with a retention period, the messages (with their statuses,
        /// jobs and outbox rows), unknown events, private notes, memory items, progress answers,
        /// milestones, feedback and ratings older than that period.
        /// Returns rows deleted.
        async fn apply_retention(conn: &mut Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
            let tenants = sqlx::query(
                "SELECT id, CAST(profile ->> 'retention_days' AS BIGINT) AS days FROM tenants \
                 WHERE profile ->> 'retention_days' IS NOT NULL",
            )
            .fetch_all(&mut *conn)
            .await?;
            let mut deleted = 0;
            for row in &tenants {
                let tenant: Uuid = row.try_get("id")?;
                let days: Option<i64> = row.try_get("days")?;
                let Some(days) = days.filter(|d| *d > 0) else { continue };
                let cutoff = now - chrono::Duration::days(days);
                let statements = [
                    "DELETE FROM message_status WHERE tenant_id = $1 AND created_at < $2",
                    "DELETE FROM jobs WHERE tenant_id = $1 AND message_id IN \
                     (SELECT id FROM messages WHERE tenant_id = $1 AND created_at < $2)",
                    "DELETE FROM outbox WHERE tenant_id = $1 AND message_id IN \
                     (SELECT id FROM messages WHERE tenant_id = $1 AND created_at < $2)",
                    "DELETE FROM messages WHERE tenant_id = $1 AND created_at < $2",
                    "DELETE FROM unknown_events WHERE tenant_id = $1 AND created_at < $2",
                    "DELETE FROM conversation_notes WHERE tenant_id = $1 AND created_at < $2",
                    "DELETE FROM contact_memory WHERE tenant_id = $1 AND updated_at < $2",
                    "DELETE FROM progress_entries WHERE tenant_id = $1 AND recorded_at < $2",
                    "DELETE FROM progress_milestones WHERE tenant_id = $1 AND reached_at < $2",
                    "DELETE FROM answer_feedback WHERE tenant_id = $1 AND updated_at < $2",
                    "DELETE FROM conversation_ratings WHERE tenant_id = $1 AND updated_at < $2",
                    "DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND created_at < $2",
                ];
                for sql in statements {
                    deleted += sqlx::query(sql).bind(tenant).bind(cutoff).execute(&mut *conn).await?.rows_affected();
                }
            }
            Ok(deleted)
        }
        crate::store::backend::store_impl! { PrivacyStore for $store;
            read contacts(
                scope: &TenantScope,
                before: Option<coach_connector_api::ContactId>,
                limit: u32,
            ) -> Vec<ContactRecord> = |c, t| contacts(c, t, before, limit);
            read contact(scope: &TenantScope, contact: coach_connector_api::ContactId) -> ContactRecord
                = |c, t| self::contact(c, t, contact);
            read export_contact(scope: &TenantScope, contact: coach_connector_api::ContactId)
                -> serde_json::Value = |c, t| export_contact(c, t, contact);
            write apply_retention(sys: &SystemScope, now: DateTime<Utc>) -> u64
                = |c, ()| apply_retention(c, now);
            {
                async fn erase_contact(
                    &self,
                    scope: &TenantScope,
                    contact: coach_connector_api::ContactId,
                ) -> Result<(), StoreError> {
                    self.write(scope, move |c, tenant| erase_contact(c, tenant, contact).boxed())
                        .await?;
                    self.after_erasure().await;
                    Ok(())
                }
                async fn erase_tenant(&self, scope: &TenantScope) -> Result<Vec<uuid::Uuid>, StoreError> {
                    let tenant = scope.tenant_id();
                    let sessions = self
                        .write(&SystemScope::new("erase tenant"), move |c, ()| erase_tenant(c, tenant).boxed())
                        .await?;
                    self.after_erasure().await;
                    Ok(sessions)
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
