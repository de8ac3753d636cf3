//! Notification SQL and the [`NoticeStore`](super::NoticeStore) impl, written once for both
//! backends (see `store/backend.rs`); [`queue_event`] is called by the statements that store
//! what an event reports, in their transaction.

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::notices::{Delivery, FeedbackEvent, NoticeStore};
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{ConversationId, TenantId};
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::StoreError;

        /// Queue `event` for the tenant's webhook, if it takes that event: an `event` job keyed
        /// by `key` (the message for `message.created`, else a fresh id), carrying `payload`
        /// (`type`, and what to read when it is delivered).
        pub(in crate::store) async fn queue_event(
            conn: &mut Conn,
            tenant: TenantId,
            event: &str,
            key: Uuid,
            payload: serde_json::Value,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, message_id, payload, next_attempt_at, created_at, updated_at) \
                 SELECT $1, id, $3, $4, $5, $6, $6, $6 FROM tenants WHERE id = $2 AND webhook_events LIKE $7 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(crate::jobs::JobKind::Event.as_str())
            .bind(key)
            .bind(Json(payload))
            .bind(now)
            .bind(format!("%,{event},%"))
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        /// `message.created` for the tenant's webhook, when it takes it (read when delivered).
        pub(in crate::store) async fn message_created(
            conn: &mut Conn,
            tenant: TenantId,
            message: coach_connector_api::MessageId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            use crate::store::notices::MESSAGE_CREATED;
            let payload = serde_json::json!({ "type": MESSAGE_CREATED });
            queue_event(conn, tenant, MESSAGE_CREATED, message.0, payload, now).await
        }

        /// Whether the contact's conversation on the channel is snoozed (before their message
        /// wakes it).
        pub(in crate::store) async fn snoozed(
            conn: &mut Conn,
            tenant: TenantId,
            channel: coach_connector_api::ChannelId,
            contact: coach_connector_api::ContactId,
        ) -> Result<bool, StoreError> {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM conversations WHERE tenant_id = $1 AND channel_id = $2 \
                 AND contact_id = $3 AND status = 'snoozed'",
            )
            .bind(tenant.0)
            .bind(channel.0)
            .bind(contact.0)
            .fetch_one(&mut *conn)
            .await?;
            Ok(n > 0)
        }

        /// The team's e-mail that a contact wrote to a snoozed conversation: an `email` job
        /// keyed by the message (erased with it); sent only where a relay is configured.
        pub(in crate::store) async fn woken_email(
            conn: &mut Conn,
            tenant: TenantId,
            conversation: ConversationId,
            message: coach_connector_api::MessageId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, message_id, payload, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(crate::jobs::JobKind::Email.as_str())
            .bind(message.0)
            .bind(Json(serde_json::json!({
                "type": crate::store::notices::CONVERSATION_WOKEN,
                "conversation_id": conversation,
            })))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn record_delivery(conn: &mut Conn, tenant: TenantId, d: Delivery) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, event_id, event_type, attempt, status, error, \
                 duration_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(d.id)
            .bind(tenant.0)
            .bind(&d.event_id)
            .bind(&d.event_type)
            .bind(d.attempt)
            .bind(d.status)
            .bind(&d.error)
            .bind(d.duration_ms)
            .bind(d.created_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn deliveries(conn: &mut Conn, tenant: TenantId, limit: u32) -> Result<Vec<Delivery>, StoreError> {
            let rows = sqlx::query(
                "SELECT id, event_id, event_type, attempt, status, error, duration_ms, created_at \
                 FROM webhook_deliveries WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            )
            .bind(tenant.0)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(Delivery {
                        id: row.try_get("id")?,
                        event_id: row.try_get("event_id")?,
                        event_type: row.try_get("event_type")?,
                        attempt: row.try_get("attempt")?,
                        status: row.try_get("status")?,
                        error: row.try_get("error")?,
                        duration_ms: row.try_get("duration_ms")?,
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect()
        }

        async fn feedback_event(conn: &mut Conn, tenant: TenantId, id: Uuid) -> Result<Option<FeedbackEvent>, StoreError> {
            let row = sqlx::query(
                "SELECT conversation_id, contact_id, answer_id, emoji, rating, updated_at FROM answer_feedback \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.0)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
            row.map(|row| {
                Ok(FeedbackEvent {
                    conversation_id: row.try_get("conversation_id")?,
                    contact_id: row.try_get("contact_id")?,
                    message_id: row.try_get("answer_id")?,
                    emoji: row.try_get("emoji")?,
                    rating: row.try_get("rating")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .transpose()
        }

        async fn email_recipients(conn: &mut Conn, tenant: TenantId, conversation: ConversationId) -> Result<Vec<String>, StoreError> {
            let assignee: Vec<String> = sqlx::query_scalar(
                "SELECT u.email FROM conversations c JOIN memberships m ON m.tenant_id = c.tenant_id \
                 AND m.user_id = c.assignee JOIN users u ON u.id = m.user_id \
                 WHERE c.tenant_id = $1 AND c.id = $2 AND m.email_notifications = $3",
            )
            .bind(tenant.0)
            .bind(conversation.0)
            .bind(true)
            .fetch_all(&mut *conn)
            .await?;
            if !assignee.is_empty() {
                return Ok(assignee);
            }
            team_recipients(conn, tenant).await
        }

        async fn email_notifications(conn: &mut Conn, tenant: TenantId, user: Uuid) -> Result<bool, StoreError> {
            sqlx::query_scalar("SELECT email_notifications FROM memberships WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.0)
                .bind(user)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NotFound("member"))
        }

        async fn set_email_notifications(conn: &mut Conn, tenant: TenantId, user: Uuid, on: bool) -> Result<(), StoreError> {
            let done = sqlx::query("UPDATE memberships SET email_notifications = $3 WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant.0)
                .bind(user)
                .bind(on)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound("member"));
            }
            Ok(())
        }

        async fn team_recipients(conn: &mut Conn, tenant: TenantId) -> Result<Vec<String>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.tenant_id = $1 AND m.role IN ('owner', 'admin') AND m.email_notifications = $2 \
                 ORDER BY u.email",
            )
            .bind(tenant.0)
            .bind(true)
            .fetch_all(&mut *conn)
            .await?)
        }

        async fn queue_channel_alert(
            conn: &mut Conn,
            tenant: TenantId,
            channel: coach_connector_api::ChannelId,
            problem: &str,
            day: chrono::NaiveDate,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "INSERT INTO jobs (id, tenant_id, kind, payload, next_attempt_at, created_at, updated_at, dedup_key) \
                 VALUES ($1, $2, $3, $4, $5, $5, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(crate::jobs::JobKind::Email.as_str())
            .bind(Json(serde_json::json!({
                "type": crate::store::notices::CHANNEL_ALERT,
                "channel_id": channel,
                "problem": problem,
            })))
            .bind(now)
            .bind(format!("channel:{channel}:{problem}:{day}"))
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() > 0)
        }

        crate::store::backend::store_impl! { NoticeStore for $store;
            write queue_channel_alert(scope: &TenantScope, channel: coach_connector_api::ChannelId, problem: &str, day: chrono::NaiveDate) -> bool
                = own(problem) |c, t| async move { queue_channel_alert(c, t, channel, &problem, day, Utc::now()).await };
            write record_delivery(scope: &TenantScope, delivery: Delivery) -> ()
                = |c, t| record_delivery(c, t, delivery);
            read deliveries(scope: &TenantScope, limit: u32) -> Vec<Delivery>
                = |c, t| deliveries(c, t, limit);
            read feedback_event(scope: &TenantScope, id: Uuid) -> Option<FeedbackEvent>
                = |c, t| feedback_event(c, t, id);
            read email_notifications(scope: &TenantScope, user: Uuid) -> bool
                = |c, t| email_notifications(c, t, user);
            write set_email_notifications(scope: &TenantScope, user: Uuid, on: bool) -> ()
                = |c, t| set_email_notifications(c, t, user, on);
            {
                async fn email_recipients(
                    &self,
                    scope: &TenantScope,
                    conversation: ConversationId,
                ) -> Result<Vec<String>, StoreError> {
                    // Addresses live in the global users table, which only the worker role reads.
                    let tenant = scope.tenant_id();
                    crate::store::backend::Backend::read(
                        self,
                        &crate::tenancy::SystemScope::new("handoff e-mail"),
                        move |c, ()| futures::FutureExt::boxed(email_recipients(c, tenant, conversation)),
                    )
                    .await
                }

                async fn team_recipients(&self, scope: &TenantScope) -> Result<Vec<String>, StoreError> {
                    let tenant = scope.tenant_id();
                    crate::store::backend::Backend::read(
                        self,
                        &crate::tenancy::SystemScope::new("team e-mail"),
                        move |c, ()| futures::FutureExt::boxed(team_recipients(c, tenant)),
                    )
                    .await
                }
            }
        }
    };
}

crate::store::backend::for_each_backend!(ops);
