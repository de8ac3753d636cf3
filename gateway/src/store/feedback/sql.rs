//! Feedback SQL and the [`FeedbackStore`](super::FeedbackStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::feedback::{FeedbackStore, FeedbackSummary, NewFeedback, Recorded, Unhelpful};
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{Content, MessageId, OutboundBody, TenantId};
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::StoreError;

        async fn record_feedback(conn: &mut Conn, tenant: TenantId, f: NewFeedback) -> Result<Recorded, StoreError> {
            // Our message in this conversation: by the provider's id, or (the widget) by ours.
            let ours = Uuid::parse_str(&f.to_message).ok();
            let answer = sqlx::query(
                "SELECT id, reply_to FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
                 AND direction = 'out' AND (provider_message_id = $3 OR id = $4) LIMIT 1",
            )
            .bind(tenant.0)
            .bind(f.conversation_id.0)
            .bind(&f.to_message)
            .bind(ours)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(answer) = answer else { return Ok(Recorded::NotOurs) };
            let answer_id: Uuid = answer.try_get("id")?;
            let question: Option<Uuid> = answer.try_get("reply_to")?;
            let Some(emoji) = f.emoji else {
                sqlx::query("DELETE FROM answer_feedback WHERE tenant_id = $1 AND answer_id = $2 AND contact_id = $3")
                    .bind(tenant.0)
                    .bind(answer_id)
                    .bind(f.contact_id.0)
                    .execute(&mut *conn)
                    .await?;
                return Ok(Recorded::Withdrawn);
            };
            let id: Uuid = sqlx::query_scalar(
                "INSERT INTO answer_feedback (id, tenant_id, contact_id, conversation_id, answer_id, question_id, \
                 emoji, rating, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
                 ON CONFLICT (answer_id, contact_id) DO UPDATE SET emoji = $7, rating = $8, updated_at = $9 \
                 RETURNING id",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(f.contact_id.0)
            .bind(f.conversation_id.0)
            .bind(answer_id)
            .bind(question)
            .bind(&emoji)
            .bind(f.rating)
            .bind(f.at)
            .fetch_one(&mut *conn)
            .await?;
            use crate::store::notices::FEEDBACK_CREATED;
            crate::store::notices::sql::$backend::queue_event(
                &mut *conn,
                tenant,
                FEEDBACK_CREATED,
                Uuid::now_v7(),
                serde_json::json!({ "type": FEEDBACK_CREATED, "feedback_id": id }),
                f.at,
            )
            .await?;
            Ok(Recorded::Given(MessageId(answer_id)))
        }

        async fn feedback_summary(
            conn: &mut Conn,
            tenant: TenantId,
            since: DateTime<Utc>,
            limit: u32,
        ) -> Result<FeedbackSummary, StoreError> {
            let counts = sqlx::query(
                "SELECT rating, COUNT(*) AS n FROM answer_feedback WHERE tenant_id = $1 AND updated_at >= $2 GROUP BY rating",
            )
            .bind(tenant.0)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
            let mut summary = FeedbackSummary::default();
            for row in &counts {
                let n: i64 = row.try_get("n")?;
                match row.try_get::<i16, _>("rating")? {
                    1 => summary.helpful = n,
                    -1 => summary.unhelpful = n,
                    _ => summary.other += n,
                }
            }
            let rows = sqlx::query(
                "SELECT f.conversation_id, f.answer_id, f.emoji, f.updated_at, a.content AS answer, q.content AS question \
                 FROM answer_feedback f JOIN messages a ON a.id = f.answer_id \
                 LEFT JOIN messages q ON q.id = f.question_id \
                 WHERE f.tenant_id = $1 AND f.rating = -1 AND f.updated_at >= $2 \
                 ORDER BY f.updated_at DESC LIMIT $3",
            )
            .bind(tenant.0)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            for row in &rows {
                let answer = row.try_get::<Json<serde_json::Value>, _>("answer")?.0;
                let question = row.try_get::<Option<Json<serde_json::Value>>, _>("question")?;
                summary.recent.push(Unhelpful {
                    conversation_id: row.try_get("conversation_id")?,
                    answer_id: row.try_get("answer_id")?,
                    question: question
                        .and_then(|q| serde_json::from_value::<Content>(q.0).ok())
                        .and_then(|c| c.text().map(str::to_owned))
                        .unwrap_or_default(),
                    answer: match serde_json::from_value::<OutboundBody>(answer) {
                        Ok(OutboundBody::Text { text } | OutboundBody::Interactive { text, .. }) => text,
                        _ => String::new(),
                    },
                    emoji: row.try_get("emoji")?,
                    created_at: row.try_get("updated_at")?,
                });
            }
            Ok(summary)
        }

        crate::store::backend::store_impl! { FeedbackStore for $store;
            write record_feedback(scope: &TenantScope, feedback: NewFeedback) -> Recorded
                = |c, t| record_feedback(c, t, feedback);
            read feedback_summary(scope: &TenantScope, since: DateTime<Utc>, limit: u32) -> FeedbackSummary
                = |c, t| feedback_summary(c, t, since, limit);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
