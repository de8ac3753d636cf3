//! The conversation stream's fan-out: whoever watches (widget sockets, creators' live views, the
//! responder) subscribes here. In-process broadcast by default; Redis pub/sub across replicas.
//! Both pass one compliance suite (`gateway/tests/bus_compliance.rs`).

pub mod appender;
pub mod log;
mod memory;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use coach_connector_api::{ChannelId, ConversationId, DeliveryStatus, MessageId, TenantId};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use memory::MemoryBus;
pub use redis::RedisBus;

use crate::store::{Conversation, StoredMessage};

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Redis could not be reached.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The event could not be encoded.
    #[error("bus encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

/// One event on the conversation stream, always tagged with its tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    /// Its id: time-ordered, assigned once when published, the same in every process.
    #[serde(default = "uuid::Uuid::now_v7")]
    pub id: uuid::Uuid,
    /// Its place in the event log (assigned when it is logged, before it is published; the
    /// `id` of `GET /v1/events`, which a client hands back as `Last-Event-ID` to resume on any
    /// process). `None` for an answer's pieces, which are not logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The tenant it belongs to; subscribers filter on it.
    pub tenant_id: TenantId,
    /// What happened.
    #[serde(flatten)]
    pub payload: StreamPayload,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamPayload {
    /// A message was stored (inbound, or outbound queued).
    Message {
        /// The stored message.
        message: StoredMessage,
    },
    /// An outbound message's delivery status moved forward.
    Status {
        /// Our message.
        message_id: MessageId,
        /// Its conversation.
        conversation_id: ConversationId,
        /// The new status.
        status: DeliveryStatus,
    },
    /// An event no connector understood was kept.
    Unknown {
        /// The channel it came from.
        channel_id: ChannelId,
        /// The provider's kind name.
        kind: String,
    },
    /// A conversation changed hands: the coach asked for a human (`waiting`), a member took
    /// over (`human`) or handed back (`open`).
    Conversation {
        /// The conversation as it is now.
        conversation: Conversation,
    },
    /// A person should look at a conversation: the contact asked for a human, or the coach was
    /// not confident in its answer.
    Handoff {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message that caused it.
        message_id: MessageId,
        /// `asked_for_human` or `low_confidence`.
        reason: String,
        /// The contact's words.
        question: String,
    },
    /// A document's ingestion moved on.
    Document {
        /// The document.
        document_id: uuid::Uuid,
        /// `queued`, `processing`, `ready` or `failed`.
        status: String,
        /// From 0 to 1.
        progress: f64,
        /// Chunks indexed so far.
        chunks: i64,
    },
    /// The tenant was suspended: every process closes its open widget chats.
    Suspended {},
    /// A voice note was heard (`transcript`, `language`) or will not be (`error`).
    Transcript {
        /// Its conversation.
        conversation_id: ConversationId,
        /// The voice note.
        message_id: MessageId,
        /// What was said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transcript: Option<String>,
        /// The language it was said in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        /// Why it was not heard (`too_long`, `unreadable`, `silent`, `unavailable`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// An answer as it is generated. Not stored: live views (the widget) show it while it
    /// streams; the stored answer follows as a `message`.
    Answer {
        /// The conversation.
        conversation_id: ConversationId,
        /// The message being answered (identifies the stream).
        reply_to: MessageId,
        /// Where the answer is.
        phase: AnswerPhase,
    },
}

/// The progress of a streamed answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum AnswerPhase {
    /// Generation began.
    Start,
    /// More text.
    Delta {
        /// Text to append.
        text: String,
    },
    /// The answer is stored as `message_id`.
    End {
        /// The stored answer.
        message_id: MessageId,
    },
    /// Generation stopped without an answer (it will be retried).
    Abort,
}

/// A subscription: a bounded receiver; a subscriber that falls behind gets `Lagged` and must
/// resynchronize from the store (nothing is lost: the store is the source of truth).
pub type Subscription = broadcast::Receiver<Arc<StreamEvent>>;

/// The fan-out bus.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// `"memory"` or `"redis"`.
    fn backend(&self) -> &'static str;
    /// Publish to every subscriber of every gateway process sharing this bus.
    async fn publish(&self, event: StreamEvent) -> Result<(), BusError>;
    /// Subscribe to every event published from now on (filter by tenant on receipt).
    fn subscribe(&self) -> Subscription;
    /// Whether the bus works now.
    async fn ping(&self) -> Result<(), BusError>;
}
