//! Notifications: the events the creator's webhook can receive, the log of webhook deliveries
//! and each member's choice of e-mail on handoff. Events are queued as `event` jobs in the
//! transaction of what they report (a stored message, a resolve, a reaction), only for tenants
//! whose webhook takes that event (`tenants.webhook_events`); what they carry is read when they
//! are delivered, so an erased message or reaction is never sent. The delivery log holds no
//! message text and no contact: an event id and type, the attempt, the status or error, the
//! duration; pruned by retention. A supertrait of [`Store`](super::Store).

pub(in crate::store) mod sql;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use coach_connector_api::ConversationId;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// A handoff: a conversation waits for a person.
pub const HANDOFF_REQUESTED: &str = "handoff.requested";
/// A message was stored, from the contact or to them (the coach's, the team's, a program's).
pub const MESSAGE_CREATED: &str = "message.created";
/// A member resolved a conversation.
pub const CONVERSATION_RESOLVED: &str = "conversation.resolved";
/// A contact reacted to one of our messages (a reaction or the widget's thumbs).
pub const FEEDBACK_CREATED: &str = "feedback.created";

/// A contact wrote to a snoozed conversation (an e-mail to the team, not a webhook event).
pub const CONVERSATION_WOKEN: &str = "conversation.woken";

/// Every event a webhook can subscribe to.
pub const EVENT_TYPES: [&str; 4] = [
    HANDOFF_REQUESTED,
    MESSAGE_CREATED,
    CONVERSATION_RESOLVED,
    FEEDBACK_CREATED,
];

/// The stored form of a subscription: each event framed by commas (`,a,b,`), so one `LIKE`
/// tells whether a tenant takes an event on both backends.
pub fn events_column(events: &[String]) -> String {
    if events.is_empty() {
        String::new()
    } else {
        format!(",{},", events.join(","))
    }
}

/// One attempt to deliver an event to the creator's webhook.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    /// The attempt's id.
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// The event's id (`webhook-id`; the same on every attempt of one event).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Which attempt (1 for the first).
    pub attempt: i32,
    /// The HTTP status the webhook answered, if it answered.
    pub status: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long the call took.
    pub duration_ms: i64,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A feedback row as an event reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeedbackEvent {
    /// The conversation.
    pub conversation_id: Uuid,
    /// The contact who reacted.
    pub contact_id: Uuid,
    /// Our message they reacted to.
    pub message_id: Uuid,
    /// The reaction.
    pub emoji: String,
    /// 1 helpful, -1 unhelpful, 0 neither.
    pub rating: i16,
    /// When it was last given.
    pub updated_at: DateTime<Utc>,
}

/// Notifications of one tenant.
#[async_trait]
pub trait NoticeStore: Send + Sync {
    /// Log one delivery attempt.
    async fn record_delivery(
        &self,
        scope: &TenantScope,
        delivery: Delivery,
    ) -> Result<(), StoreError>;
    /// The latest delivery attempts, newest first.
    async fn deliveries(
        &self,
        scope: &TenantScope,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// The feedback row an event reports (`None` once withdrawn or erased).
    async fn feedback_event(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> Result<Option<FeedbackEvent>, StoreError>;
    /// Who gets the e-mail about a conversation: its assignee when they take e-mail, else
    /// every owner and admin who does.
    async fn email_recipients(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Vec<String>, StoreError>;
    /// Whether a member takes e-mail notifications (`NotFound` for a non-member).
    async fn email_notifications(
        &self,
        scope: &TenantScope,
        user: Uuid,
    ) -> Result<bool, StoreError>;
    /// Set whether a member takes e-mail notifications.
    async fn set_email_notifications(
        &self,
        scope: &TenantScope,
        user: Uuid,
        on: bool,
    ) -> Result<(), StoreError>;
    /// Who gets the team's e-mail about the tenant as a whole (a failing channel): every owner
    /// and admin who takes e-mail.
    async fn team_recipients(&self, scope: &TenantScope) -> Result<Vec<String>, StoreError>;
    /// Queue the team's e-mail that a channel is failing (`problem`: `token` or
    /// `dead_letters`), at most once per channel, problem and `day`: an `email` job keyed by
    /// all three. Returns whether it was queued (false: already sent or queued that day).
    async fn queue_channel_alert(
        &self,
        scope: &TenantScope,
        channel: coach_connector_api::ChannelId,
        problem: &str,
        day: chrono::NaiveDate,
    ) -> Result<bool, StoreError>;
}

/// An `email` job's `type` for a failing channel.
pub const CHANNEL_ALERT: &str = "channel.alert";
