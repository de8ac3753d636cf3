//! Conversation ratings (CSAT): a visitor's answer to the survey a widget conversation gets
//! when the team resolves it. Stored beside the conversation, never as a message, so rating
//! does not reopen it; one per survey (a new answer replaces the old one). Erased with the
//! contact, the conversation or the survey (cascade), in the contact's export (`ratings`),
//! pruned by retention by when it was last given. A supertrait of [`Store`](super::Store).

pub(in crate::store) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, Choice, Interactive, MessageId, OutboundBody};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// The choice ids of a survey: `csat:1` (worst) to `csat:5` (best).
pub const CHOICE_PREFIX: &str = "csat:";

/// The longest comment kept, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// The survey message: `question` with five buttons, `csat:1` to `csat:5`.
pub fn survey(question: String) -> OutboundBody {
    OutboundBody::Interactive {
        text: question,
        interactive: Interactive::Buttons {
            choices: (1..=5)
                .map(|n| Choice {
                    id: format!("{CHOICE_PREFIX}{n}"),
                    title: n.to_string(),
                    description: None,
                })
                .collect(),
        },
    }
}

/// Whether a stored outbound body is a survey.
pub fn is_survey(body: &serde_json::Value) -> bool {
    match serde_json::from_value::<OutboundBody>(body.clone()) {
        Ok(OutboundBody::Interactive {
            interactive: Interactive::Buttons { choices },
            ..
        }) => choices.len() == 5 && choices.iter().all(|c| c.id.starts_with(CHOICE_PREFIX)),
        _ => false,
    }
}

/// A visitor's answer to a survey.
#[derive(Clone, Debug)]
pub struct NewRating {
    /// The channel the visitor writes on.
    pub channel: ChannelId,
    /// The visitor's address on it.
    pub external_id: String,
    /// The survey message.
    pub survey: MessageId,
    /// 1 (worst) to 5 (best).
    pub rating: i16,
    /// What they added, if anything (at most [`MAX_COMMENT_CHARS`]).
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// One rating as the team reads it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Rating {
    /// The conversation rated.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: Uuid,
    /// 1 (worst) to 5 (best).
    pub rating: i16,
    /// What the visitor added.
    pub comment: Option<String>,
    /// When it was last given.
    pub updated_at: DateTime<Utc>,
}

/// Ratings over a period.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct RatingSummary {
    /// How many conversations were rated.
    pub responses: i64,
    /// Their mean rating (absent without any).
    pub average: Option<f64>,
    /// The share rated 4 or 5, in percent (absent without any): the usual CSAT score.
    pub satisfied_pct: Option<f64>,
    /// How many gave 1, 2, 3, 4 and 5 (five counts).
    pub scores: Vec<i64>,
    /// The most recent ratings, newest first (at most 50).
    pub recent: Vec<Rating>,
}

/// Ratings of one tenant.
#[async_trait]
pub trait RatingStore: Send + Sync {
    /// Record (or replace) the visitor's answer to a survey of their own conversation:
    /// `NotFound("survey")` when the message is not a survey sent to them.
    async fn record_rating(
        &self,
        scope: &TenantScope,
        rating: NewRating,
    ) -> Result<Rating, StoreError>;
    /// The rating given to a survey, if any.
    async fn survey_rating(
        &self,
        scope: &TenantScope,
        survey: MessageId,
    ) -> Result<Option<i16>, StoreError>;
    /// Counts since `since`, with the most recent ratings.
    async fn rating_summary(
        &self,
        scope: &TenantScope,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<RatingSummary, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_survey_is_five_csat_buttons_and_nothing_else_is() {
        let body = serde_json::to_value(survey("How was it?".into())).unwrap();
        assert!(is_survey(&body));
        let text = serde_json::to_value(OutboundBody::Text {
            text: "How was it?".into(),
        })
        .unwrap();
        assert!(!is_survey(&text));
        let mut other = body.clone();
        other["interactive"]["choices"][4]["id"] = "yes".into();
        assert!(!is_survey(&other), "{other}");
    }
}
