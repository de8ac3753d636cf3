//! Feedback on answers: a contact's reaction to one of our messages (WhatsApp and Telegram
//! reactions, the widget's thumbs) is stored as a message like any other, with a `feedback`
//! job in the same transaction; the job records it against the answer and its question (one
//! per answer and contact: a new reaction replaces the old, a removed one withdraws it). The
//! console lists unhelpful answers beside unanswered questions (`GET /v1/analytics`).

use std::time::Duration;

use coach_connector_api::{Content, MessageId, TenantId};

use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::state::AppState;
use crate::store::feedback::{NewFeedback, Recorded};
use crate::store::{QueueItem, StoreError};
use crate::tenancy::SystemScope;

/// Reactions that say an answer helped.
const HELPFUL: &[&str] = &[
    "👍", "❤️", "❤", "🙏", "😍", "🥰", "😊", "🙂", "👏", "🔥", "💯", "✅", "🎉", "🤩", "😀", "😃",
    "😄", "💪", "⭐", "🌟", "👌",
];
/// Reactions that say it did not.
const UNHELPFUL: &[&str] = &[
    "👎", "😕", "🙁", "☹️", "😞", "😟", "😠", "😡", "🤔", "❌", "😢", "😭", "🤨", "😒", "💩",
];

/// How a reaction rates an answer: 1 helpful, -1 unhelpful, 0 neither (skin tones ignored).
pub fn rating(emoji: &str) -> i16 {
    let base: String = emoji
        .chars()
        .filter(|c| !('\u{1F3FB}'..='\u{1F3FF}').contains(c))
        .collect();
    let base = base.trim();
    if HELPFUL.contains(&base) {
        1
    } else if UNHELPFUL.contains(&base) {
        -1
    } else {
        0
    }
}

/// Records reactions (`feedback` jobs), fairly across tenants.
pub struct Recorder;

#[async_trait::async_trait]
impl Handler for Recorder {
    type Job = MessageId;
    type Batch = ();
    const KIND: JobKind = JobKind::Feedback;

    fn policy(&self, _state: &AppState) -> Policy {
        Policy {
            batch: 32,
            concurrency: 4,
            lease: Duration::from_secs(60),
            idle: Duration::from_millis(500),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(8),
                base: Duration::from_millis(500),
                max: Duration::from_secs(60),
            },
        }
    }

    async fn run(
        &self,
        state: &AppState,
        (): &(),
        item: &QueueItem,
        message: MessageId,
    ) -> Outcome {
        match record(state, item.tenant_id, message).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// Claims and records due reactions; returns how many jobs ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Recorder, state).await
}

async fn record(state: &AppState, tenant: TenantId, id: MessageId) -> Result<(), StoreError> {
    let scope = SystemScope::new("feedback").for_tenant(tenant);
    let message = match state.store.message(&scope, id).await {
        Ok(m) => m,
        // Erased meanwhile: nothing to record.
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let Ok(Content::Reaction { to_message, emoji }) = serde_json::from_value(message.content)
    else {
        return Ok(());
    };
    let rating = emoji.as_deref().map_or(0, rating);
    let recorded = state
        .store
        .record_feedback(
            &scope,
            NewFeedback {
                contact_id: message.contact_id,
                conversation_id: message.conversation_id,
                to_message,
                emoji,
                rating,
                at: message.created_at,
            },
        )
        .await?;
    if let Recorded::Given(answer) = recorded {
        metrics::counter!("answer_feedback_total", "rating" => rating.to_string()).increment(1);
        tracing::info!(message = %id.0, answer = %answer.0, rating, "feedback on an answer");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_rate_answers() {
        assert_eq!(rating("👍"), 1);
        assert_eq!(rating("👍🏽"), 1);
        assert_eq!(rating("❤️"), 1);
        assert_eq!(rating("👎🏻"), -1);
        assert_eq!(rating("😡"), -1);
        assert_eq!(rating("🐶"), 0);
    }
}
