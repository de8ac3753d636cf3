//! The connector contract, shared by the gateway and every channel connector.
//!
//! Connectors are *sans-IO*: they turn provider bytes into normalized [`InboundEvent`]s and
//! [`OutboundMessage`]s into [`HttpCall`]s; the gateway does every network, storage and timing
//! concern. This crate holds only that contract and depends on nothing of ours, so a third party
//! can write a connector against it alone.
//!
//! Layout:
//! - [`ids`]: typed identifiers (`TenantId`, `ChannelId`, ...) and [`ChannelKind`].
//! - [`inbound`]: what arrives from a channel (messages, delivery statuses, unknown events).
//! - [`outbound`]: what the gateway asks a channel to send.
//! - [`connector`]: the [`Connector`] trait, HTTP request/call types, limits and errors.
//! - [`plugin`]: the C ABI of connectors loaded at run time, and [`export_connector!`].

pub mod connector;
pub mod ids;
pub mod inbound;
pub mod outbound;
pub mod plugin;

pub use connector::{
    ChannelConfig, ChannelLimits, Connector, ConnectorError, FormPart, HttpCall, HttpMethod,
    HttpRequest, HttpResponse, Inbound, SendOutcome,
};
pub use ids::{ChannelId, ChannelKind, ContactId, ConversationId, MessageId, TenantId};
pub use inbound::{
    ChannelIdentity, ContactCard, Content, DedupKey, DeliveryStatus, InboundEvent, InboundMessage,
    MediaKind, ProviderError, StatusUpdate, UnknownEvent,
};
pub use outbound::{
    Choice, Interactive, OutboundBody, OutboundMessage, SendContext, match_menu_reply,
    numbered_menu, split_text,
};
