//! `GET /v1/analytics`: what the console charts. Messages per day and channel, how long answers
//! took, the questions the coach could not answer (handoffs), and model tokens per day. Program funnels are
//! `GET /v1/programs/{id}/analytics`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Member, Viewer};
use crate::error::{ApiError, ApiQuery};
use crate::state::AppState;
use crate::store::console::{DayCount, Handoff, HandoffReason, UsageDay};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(analytics))
}

/// The period.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// Days back from today, today included (1-365, default 30).
    #[param(minimum = 1, maximum = 365)]
    pub days: Option<u32>,
}

/// One channel, for labels.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelLabel {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: coach_connector_api::ChannelId,
    /// Its name.
    pub name: String,
    /// Its kind (`whatsapp`, `telegram`, `web_widget`...).
    pub kind: String,
}

/// Answer times of one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayLatency {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// Answers that day.
    pub answers: usize,
    /// Median time from question to stored answer, in milliseconds.
    pub p50_ms: i64,
    /// 95th percentile, in milliseconds.
    pub p95_ms: i64,
}

/// Questions the coach handed to a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unanswered {
    /// The contact asked for a person.
    pub asked_for_human: i64,
    /// The coach's knowledge did not cover the question.
    pub low_confidence: i64,
    /// The tenant's daily answer quota was spent (`brain.answers_per_day`).
    pub quota_reached: i64,
    /// The message may have signalled a crisis (answered with help resources, never coached).
    pub crisis: i64,
    /// The most recent, newest first (at most 50).
    pub recent: Vec<Handoff>,
}

/// The tenant's analytics over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    /// Every day of the period, oldest first (`YYYY-MM-DD`, UTC).
    pub days: Vec<String>,
    /// The tenant's channels.
    pub channels: Vec<ChannelLabel>,
    /// Messages per day, channel and direction (days without messages are absent).
    pub messages: Vec<DayCount>,
    /// Answer times per day (of the most recent 10,000 answers).
    pub latency: Vec<DayLatency>,
    /// Handoffs.
    pub unanswered: Unanswered,
    /// Reactions to answers, with the most recent unhelpful ones and their questions.
    pub feedback: crate::store::feedback::FeedbackSummary,
    /// Ratings of resolved widget conversations (CSAT), with the most recent ones.
    pub ratings: crate::store::ratings::RatingSummary,
    /// Model tokens per day (days without answers are absent).
    pub usage: Vec<UsageDay>,
}

/// The tenant's analytics: messages per day per channel, answer latency, unanswered questions,
/// feedback on answers.
#[utoipa::path(get, path = "/v1/analytics", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = Analytics), (status = 400, body = crate::error::Problem)))]
async fn analytics(
    State(state): State<AppState>,
    member: Member<Viewer>,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Result<Json<Analytics>, ApiError> {
    let days = match q.days {
        None => 30,
        Some(n @ 1..=365) => n,
        Some(n) => return Err(ApiError::BadRequest(format!("days: {n} is outside 1-365"))),
    };
    let scope = &member.scope;
    let today = Utc::now().date_naive();
    let first = today - Duration::days(i64::from(days) - 1);
    let since = first.and_time(chrono::NaiveTime::MIN).and_utc();
    let channels = state
        .store
        .channels(scope)
        .await?
        .into_iter()
        .map(|c| ChannelLabel {
            id: c.id,
            name: c.name,
            kind: serde_json::to_value(&c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        })
        .collect();
    let messages = state.store.message_counts(scope, since).await?;
    let times = state.store.answer_times(scope, since, 10_000).await?;
    let handoffs = state.store.handoffs(scope, since, 50).await?;
    let counts = state.store.handoff_counts(scope, since).await?;
    let feedback = state.store.feedback_summary(scope, since, 50).await?;
    let ratings = state.store.rating_summary(scope, since, 50).await?;
    let usage = state
        .store
        .usage(scope, &first.format("%Y-%m-%d").to_string())
        .await?;
    let mut by_day: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (asked, answered) in times {
        by_day
            .entry(answered.format("%Y-%m-%d").to_string())
            .or_default()
            .push((answered - asked).num_milliseconds().max(0));
    }
    let latency = by_day
        .into_iter()
        .map(|(day, mut ms)| {
            ms.sort_unstable();
            DayLatency {
                day,
                answers: ms.len(),
                p50_ms: percentile(&ms, 0.50),
                p95_ms: percentile(&ms, 0.95),
            }
        })
        .collect();
    let count = |reason| {
        counts
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    };
    let unanswered = Unanswered {
        asked_for_human: count(HandoffReason::AskedForHuman),
        low_confidence: count(HandoffReason::LowConfidence),
        quota_reached: count(HandoffReason::QuotaReached),
        crisis: count(HandoffReason::Crisis),
        recent: handoffs,
    };
    Ok(Json(Analytics {
        days: first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .collect(),
        channels,
        messages,
        latency,
        unanswered,
        feedback,
        ratings,
        usage,
    }))
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.5), 0);
        assert_eq!(percentile(&[7], 0.95), 7);
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50);
        assert_eq!(percentile(&v, 0.95), 95);
    }
}
