//! Ratings SQL and the [`RatingStore`](super::RatingStore) impl, written once for both
//! backends (see `store/backend.rs`).

macro_rules! ops {
    ($store:ty, $backend:ident) => {
        use crate::store::ratings::{NewRating, Rating, RatingStore, RatingSummary, is_survey};
        use crate::tenancy::TenantScope;

        type Conn = crate::store::backend::Conn<$store>;

        use chrono::{DateTime, Utc};
        use coach_connector_api::{ContactId, MessageId, TenantId};
        use sqlx::Row as _;
        use sqlx::types::Json;
        use uuid::Uuid;

        use crate::store::StoreError;

        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        fn ratio(part: i64, whole: i64) -> f64 {
            part as f64 / whole as f64
        }

        fn rating(row: &crate::store::backend::Row<$store>) -> Result<Rating, StoreError> {
            Ok(Rating {
                conversation_id: row.try_get("conversation_id")?,
                rating: row.try_get("rating")?,
                comment: row.try_get("comment")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        async fn record_rating(conn: &mut Conn, tenant: TenantId, r: NewRating) -> Result<Rating, StoreError> {
            // The survey must be ours, in a conversation of this visitor on this channel.
            let survey = sqlx::query(
                "SELECT m.conversation_id, m.contact_id, m.content FROM messages m \
                 JOIN contact_identities i ON i.tenant_id = m.tenant_id AND i.contact_id = m.contact_id \
                 WHERE m.tenant_id = $1 AND m.id = $2 AND m.direction = 'out' AND m.channel_id = $3 \
                 AND i.channel_id = $3 AND i.external_id = $4",
            )
            .bind(tenant.0)
            .bind(r.survey.0)
            .bind(r.channel.0)
            .bind(&r.external_id)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(survey) = survey else { return Err(StoreError::NotFound("survey")) };
            if !is_survey(&survey.try_get::<Json<serde_json::Value>, _>("content")?.0) {
                return Err(StoreError::NotFound("survey"));
            }
            let conversation: Uuid = survey.try_get("conversation_id")?;
            let contact: Uuid = survey.try_get("contact_id")?;
            let row = sqlx::query(
                "INSERT INTO conversation_ratings (id, tenant_id, contact_id, conversation_id, survey_id, rating, \
                 comment, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (survey_id) DO UPDATE SET rating = $6, comment = $7, updated_at = $8 \
                 RETURNING conversation_id, rating, comment, updated_at",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.0)
            .bind(contact)
            .bind(conversation)
            .bind(r.survey.0)
            .bind(r.rating)
            .bind(&r.comment)
            .bind(r.at)
            .fetch_one(&mut *conn)
            .await?;
            rating(&row)
        }

        async fn survey_rating(conn: &mut Conn, tenant: TenantId, survey: MessageId) -> Result<Option<i16>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT rating FROM conversation_ratings WHERE tenant_id = $1 AND survey_id = $2",
            )
            .bind(tenant.0)
            .bind(survey.0)
            .fetch_optional(&mut *conn)
            .await?)
        }

        async fn rating_summary(
            conn: &mut Conn,
            tenant: TenantId,
            since: DateTime<Utc>,
            limit: u32,
        ) -> Result<RatingSummary, StoreError> {
            let counts = sqlx::query(
                "SELECT rating, COUNT(*) AS n FROM conversation_ratings \
                 WHERE tenant_id = $1 AND updated_at >= $2 GROUP BY rating",
            )
            .bind(tenant.0)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
            let mut summary = RatingSummary {
                responses: 0,
                average: None,
                satisfied_pct: None,
                scores: vec![0; 5],
                recent: Vec::new(),
            };
            for row in &counts {
                let score: i16 = row.try_get("rating")?;
                if let Some(slot) = usize::try_from(score - 1).ok().and_then(|i| summary.scores.get_mut(i)) {
                    *slot = row.try_get("n")?;
                }
            }
            summary.responses = summary.scores.iter().sum();
            if summary.responses > 0 {
                let total: i64 = summary.scores.iter().zip(1..).map(|(n, s)| n * s).sum();
                let satisfied: i64 = summary.scores.iter().skip(3).sum();
                summary.average = Some((ratio(total, summary.responses) * 100.0).round() / 100.0);
                summary.satisfied_pct = Some((ratio(satisfied, summary.responses) * 1000.0).round() / 10.0);
            }
            let rows = sqlx::query(
                "SELECT conversation_id, rating, comment, updated_at FROM conversation_ratings \
                 WHERE tenant_id = $1 AND updated_at >= $2 ORDER BY updated_at DESC LIMIT $3",
            )
            .bind(tenant.0)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            summary.recent = rows.iter().map(rating).collect::<Result<_, _>>()?;
            Ok(summary)
        }

        /// A contact's ratings (the GDPR export reads them).
        pub(in crate::store) async fn contact_ratings(
            conn: &mut Conn,
            tenant: TenantId,
            contact: ContactId,
        ) -> Result<Vec<serde_json::Value>, StoreError> {
            let rows = sqlx::query(
                "SELECT conversation_id, survey_id, rating, comment, created_at, updated_at \
                 FROM conversation_ratings WHERE tenant_id = $1 AND contact_id = $2 ORDER BY created_at",
            )
            .bind(tenant.0)
            .bind(contact.0)
            .fetch_all(&mut *conn)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(serde_json::json!({
                        "conversation_id": r.try_get::<Uuid, _>("conversation_id")?,
                        "survey_id": r.try_get::<Uuid, _>("survey_id")?,
                        "rating": r.try_get::<i16, _>("rating")?,
                        "comment": r.try_get::<Option<String>, _>("comment")?,
                        "created_at": r.try_get::<DateTime<Utc>, _>("created_at")?,
                        "updated_at": r.try_get::<DateTime<Utc>, _>("updated_at")?,
                    }))
                })
                .collect()
        }

        crate::store::backend::store_impl! { RatingStore for $store;
            write record_rating(scope: &TenantScope, rating: NewRating) -> Rating
                = |c, t| record_rating(c, t, rating);
            read survey_rating(scope: &TenantScope, survey: MessageId) -> Option<i16>
                = |c, t| survey_rating(c, t, survey);
            read rating_summary(scope: &TenantScope, since: DateTime<Utc>, limit: u32) -> RatingSummary
                = |c, t| rating_summary(c, t, since, limit);
        }
    };
}

crate::store::backend::for_each_backend!(ops);
