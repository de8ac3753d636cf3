//! Records the store reads and writes.

use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelId, ChannelKind, ContactId, ConversationId, DeliveryStatus, MessageId, ProviderError,
    TenantId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant (a creator's account).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its display name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A channel to create.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewChannel {
    /// The connector kind.
    pub kind: ChannelKind,
    /// A name for creators.
    pub name: String,
    /// Per-kind configuration (secrets are encrypted by the caller before they get here).
    pub config: serde_json::Value,
}

/// A configured channel account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Its id (part of its webhook URL).
    pub id: ChannelId,
    /// The owning tenant.
    pub tenant_id: TenantId,
    /// The connector kind.
    pub kind: ChannelKind,
    /// A name for creators.
    pub name: String,
    /// Per-kind configuration.
    pub config: serde_json::Value,
    /// Whether it accepts and sends messages.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Changes to a channel; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelPatch {
    /// A new name.
    pub name: Option<String>,
    /// A new configuration.
    pub config: Option<serde_json::Value>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// One way to reach a contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactIdentity {
    /// The channel.
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    /// The person's id there.
    pub external_id: String,
    /// Their handle there, if any.
    pub username: Option<String>,
}

/// A contact with their identities.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ContactRecord {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: ContactId,
    /// The name they show.
    pub display_name: Option<String>,
    /// First contact.
    pub created_at: DateTime<Utc>,
    /// Where they can be reached.
    pub identities: Vec<ContactIdentity>,
    /// Their IANA time zone, when known (import).
    pub time_zone: Option<String>,
    /// Their language (BCP 47) as the team set it (import, `PATCH /v1/contacts/{id}`): the
    /// coach answers in it.
    pub language: Option<String>,
    /// The language detected in their messages (used when `language` is not set).
    pub detected_language: Option<String>,
    /// When their consent to proactive messages was recorded (import); absent: none recorded.
    pub consent_at: Option<DateTime<Utc>>,
    /// Custom fields (import).
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From a person to the coach.
    Inbound,
    /// From the coach (or a creator) to a person.
    Outbound,
}

impl Direction {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "in",
            Self::Outbound => "out",
        }
    }

    /// Parse a column value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in" => Some(Self::Inbound),
            "out" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// A stored message, inbound or outbound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredMessage {
    /// Its id (time-ordered).
    #[schema(value_type = String, format = Uuid)]
    pub id: MessageId,
    /// The owning tenant.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// The channel it came or goes through.
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    /// Its conversation.
    #[schema(value_type = String, format = Uuid)]
    pub conversation_id: ConversationId,
    /// The person on the other side.
    #[schema(value_type = String, format = Uuid)]
    pub contact_id: ContactId,
    /// Which way it went.
    pub direction: Direction,
    /// The normalized content: `connectors::api::Content` inbound, `OutboundBody` outbound.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    /// The provider's id, once known.
    pub provider_message_id: Option<String>,
    /// Delivery status (outbound only).
    #[schema(value_type = Option<String>)]
    pub status: Option<DeliveryStatus>,
    /// The provider's error, for failed deliveries.
    #[schema(value_type = Option<Object>)]
    pub error: Option<ProviderError>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A conversation: one contact on one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema, sqlx::FromRow)]
pub struct Conversation {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "Uuid")]
    pub id: ConversationId,
    /// The owning tenant.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "Uuid")]
    pub tenant_id: TenantId,
    /// The channel.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "Uuid")]
    pub channel_id: ChannelId,
    /// The person.
    #[schema(value_type = String, format = Uuid)]
    #[sqlx(try_from = "Uuid")]
    pub contact_id: ContactId,
    /// The person's id on the channel.
    pub external_id: String,
    /// When the last message arrived or left.
    pub last_message_at: DateTime<Utc>,
    /// Who answers: the coach, a human being waited for, or a human.
    #[sqlx(try_from = "String")]
    pub status: ConversationStatus,
    /// The member who took the conversation over.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub assignee: Option<uuid::Uuid>,
    /// When a snoozed conversation comes back by itself (a message from the contact brings it
    /// back sooner).
    #[sqlx(default)]
    pub snoozed_until: Option<DateTime<Utc>>,
}

/// Who answers a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// The coach answers.
    Open,
    /// The coach asked for a human; nobody has taken over yet.
    Waiting,
    /// A member took over; the coach stays silent until handed back.
    Human,
    /// Done: nobody answers until the contact writes again (then `open`).
    Resolved,
    /// Set aside until a time or the contact's next message, then back to the status it had.
    Snoozed,
}

impl ConversationStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Waiting => "waiting",
            Self::Human => "human",
            Self::Resolved => "resolved",
            Self::Snoozed => "snoozed",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "waiting" => Some(Self::Waiting),
            "human" => Some(Self::Human),
            "resolved" => Some(Self::Resolved),
            "snoozed" => Some(Self::Snoozed),
            _ => None,
        }
    }
}

impl TryFrom<String> for ConversationStatus {
    type Error = crate::store::StoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
            .ok_or_else(|| crate::store::StoreError::Corrupt(format!("conversation status {s}")))
    }
}

/// Narrows a conversation listing; absent fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    /// Only this channel.
    pub channel: Option<ChannelId>,
    /// Only this contact.
    pub contact: Option<ContactId>,
    /// Only this status.
    pub status: Option<ConversationStatus>,
    /// Only conversations with a message holding every word of this search, or whose contact's
    /// name or channel address contains it (see [`SearchText`]).
    pub search: Option<SearchText>,
    /// Only conversations carrying this label.
    pub label: Option<String>,
    /// Only conversations assigned to this member, or with `Unassigned` to nobody.
    pub assignee: Option<AssigneeFilter>,
}

impl ConversationFilter {
    /// The filter as SQL on conversations aliased `c` (`AND ...`), for tenant `$tenant`, with
    /// its values in placeholders `$at` on, bound in order by [`bind_filter!`]. Only the fields
    /// set are written: with `($n IS NULL OR ...)` for every field, PostgreSQL's generic plan for
    /// a prepared statement cannot tell which apply, and sorted every conversation of the tenant
    /// before taking a page. `search` is the backend's
    /// [`MESSAGE_SEARCH`](super::backend::Backend::MESSAGE_SEARCH), `query` its syntax.
    pub(crate) fn sql(
        &self,
        search: &str,
        query: impl Fn(&SearchText) -> String,
        tenant: usize,
        at: usize,
    ) -> (String, Vec<FilterValue>) {
        let mut values = Vec::new();
        let mut slot = |v: FilterValue| {
            values.push(v);
            format!("${}", at + values.len() - 1)
        };
        let mut sql = String::new();
        if let Some(channel) = self.channel {
            sql += &format!(" AND c.channel_id = {}", slot(FilterValue::Id(channel.0)));
        }
        if let Some(contact) = self.contact {
            sql += &format!(" AND c.contact_id = {}", slot(FilterValue::Id(contact.0)));
        }
        if let Some(status) = self.status {
            sql += &format!(
                " AND c.status = {}",
                slot(FilterValue::Text(status.as_str().into()))
            );
        }
        if let Some(text) = &self.search {
            let words = slot(FilterValue::Text(query(text)));
            let like = slot(FilterValue::Text(text.like()));
            let found = search
                .replace("$tenant", &format!("${tenant}"))
                .replace("$query", &words);
            sql += &format!(
                " AND (c.id IN ({found}) OR lower(c.external_id) LIKE {like} ESCAPE '\\' \
                 OR c.contact_id IN (SELECT k.id FROM contacts k WHERE k.tenant_id = ${tenant} \
                 AND lower(k.display_name) LIKE {like} ESCAPE '\\'))"
            );
        }
        if let Some(label) = &self.label {
            sql += &format!(
                " AND EXISTS (SELECT 1 FROM conversation_labels l WHERE l.conversation_id = c.id \
                 AND l.tenant_id = ${tenant} AND l.label = {})",
                slot(FilterValue::Text(label.clone()))
            );
        }
        match self.assignee {
            Some(AssigneeFilter::Member(id)) => {
                sql += &format!(" AND c.assignee = {}", slot(FilterValue::Id(id)));
            }
            Some(AssigneeFilter::Unassigned) => sql += " AND c.assignee IS NULL",
            None => {}
        }
        (sql, values)
    }
}

/// A value of a [`ConversationFilter`]'s SQL.
#[derive(Clone, Debug)]
pub(crate) enum FilterValue {
    /// An id.
    Id(uuid::Uuid),
    /// A text.
    Text(String),
}

/// Binds a [`ConversationFilter::sql`]'s values to a query, in placeholder order.
macro_rules! bind_filter {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                $crate::store::FilterValue::Id(id) => query.bind(id),
                $crate::store::FilterValue::Text(text) => query.bind(text),
            };
        }
        query
    }};
}
pub(crate) use bind_filter;

/// Whose conversations a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Those assigned to this member.
    Member(uuid::Uuid),
    /// Those assigned to nobody.
    Unassigned,
}

/// A search typed by a creator, split the way both backends' full-text indexes split text:
/// runs of letters and digits, lower-cased. A message matches when it holds every word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchText {
    /// The words (at most [`SearchText::MAX_WORDS`]).
    pub words: Vec<String>,
    /// The whole search, lower-cased, for substring matches on names and addresses.
    pub phrase: String,
}

impl SearchText {
    /// Words beyond this many are ignored.
    pub const MAX_WORDS: usize = 16;

    /// The search in `text`; `None` when it has no letter or digit (it matches nothing).
    pub fn parse(text: &str) -> Option<Self> {
        let words: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(Self::MAX_WORDS)
            .map(str::to_lowercase)
            .collect();
        (!words.is_empty()).then(|| Self {
            words,
            phrase: text.trim().to_lowercase(),
        })
    }

    /// SQLite FTS5's query: each word a quoted string, all required.
    pub fn fts5(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("\"{w}\"")) // words hold letters and digits only
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// PostgreSQL's `plainto_tsquery` input: the words, all required.
    pub fn tsquery(&self) -> String {
        self.words.join(" ")
    }

    /// A `LIKE` pattern for the phrase anywhere in a name (`%`, `_` and the escape, a
    /// backslash, escaped).
    pub fn like(&self) -> String {
        let mut pattern = String::with_capacity(self.phrase.len() + 2);
        pattern.push('%');
        for c in self.phrase.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

/// What an ingest stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Newly stored events, in input order.
    pub stored: Vec<StoredEvent>,
    /// Events already stored before (provider retries): nothing changed for them.
    pub duplicates: usize,
}

/// One newly stored event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoredEvent {
    /// A new inbound message.
    Message(StoredMessage),
    /// A status report; `applied` names our message when it moved forward.
    Status {
        /// The provider's id of our message.
        provider_message_id: String,
        /// The reported status.
        status: DeliveryStatus,
        /// Our message and its conversation, when the report moved it forward.
        applied: Option<(MessageId, ConversationId)>,
    },
    /// An event no connector understood, kept whole.
    Unknown {
        /// Its stored id.
        id: Uuid,
        /// The provider's kind name.
        kind: String,
    },
}

/// A page request for newest-first listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// Return the items after this one (its time and id) in newest-first order.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// At most this many.
    pub limit: u32,
}

/// An audit entry to append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Who: `user:<id>`, `api_key:<id>`, `system:<reason>` or `contact:<id>` (a contact who
    /// asked for their erasure).
    pub actor: String,
    /// What, as `resource.verb` (e.g. `channel.create`).
    pub action: String,
    /// Which resource kind.
    pub resource_type: String,
    /// Which resource.
    pub resource_id: Option<String>,
    /// From which client address.
    pub ip: Option<String>,
    /// Extra details without personal data.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A stored audit record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Its id.
    pub id: Uuid,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Counts for metrics and health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Outbox rows not yet delivered (pending or in flight).
    pub outbox_depth: i64,
    /// Outbox rows dead-lettered.
    pub outbox_dead: i64,
    /// Jobs not yet done.
    pub jobs_depth: i64,
}

/// Decode a delivery status rank read from a row.
pub(crate) fn status_from_rank(
    rank: Option<i16>,
) -> Result<Option<DeliveryStatus>, super::StoreError> {
    rank.map(|r| {
        DeliveryStatus::from_rank(r)
            .ok_or_else(|| super::StoreError::Corrupt(format!("status rank {r}")))
    })
    .transpose()
}

/// Jobs an inbound message causes, written in the same transaction as the message.
pub(crate) fn jobs_for(content: &coach_connector_api::Content) -> &'static [&'static str] {
    match content {
        coach_connector_api::Content::Media {
            media: coach_connector_api::MediaKind::Voice,
            ..
        } => &[JOB_FETCH_MEDIA, JOB_TRANSCRIBE, JOB_ANSWER],
        coach_connector_api::Content::Media { .. } => &[JOB_FETCH_MEDIA, JOB_ANSWER],
        coach_connector_api::Content::Reaction { .. } => &[JOB_FEEDBACK],
        _ => &[JOB_ANSWER],
    }
}

/// Job kind: answer this inbound message (the responder).
pub const JOB_ANSWER: &str = crate::jobs::JobKind::Answer.as_str();
/// Job kind: record this reaction as feedback on the message it reacts to.
pub const JOB_FEEDBACK: &str = crate::jobs::JobKind::Feedback.as_str();
/// Job kind: turn this voice note into text.
pub const JOB_TRANSCRIBE: &str = crate::jobs::JobKind::Transcribe.as_str();
/// Job kind: fetch this message's media before the provider URL expires.
pub const JOB_FETCH_MEDIA: &str = crate::jobs::JobKind::FetchMedia.as_str();
