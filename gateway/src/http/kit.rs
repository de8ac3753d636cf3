//! What every handler shares: the path id extractor ([`Id`]; a malformed id is a 404 like an
//! id of another tenant: anything that is not an id cannot name a record of the caller's) and
//! the audit entry of a member's action ([`audit_entry`]), and cursor paging ([`PageQuery`],
//! [`Paged`]).

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::extract::{Member, Need};
use crate::error::ApiError;
use crate::http::limits::ClientIp;
use crate::store::AuditEntry;

/// The audit entry of `member` doing `action` to the `resource_type` record `id`, from `ip`.
pub fn audit_entry<R: Need>(
    member: &Member<R>,
    ip: ClientIp,
    action: &str,
    resource_type: &str,
    id: impl ToString,
) -> AuditEntry {
    AuditEntry {
        actor: member.actor(),
        action: action.into(),
        resource_type: resource_type.into(),
        resource_id: Some(id.to_string()),
        ip: Some(ip.0.to_string()),
        details: serde_json::json!({}),
    }
}

/// A kind of record named by a path id: its id type and the word a 404 uses.
pub trait Resource {
    /// The id type.
    type Key: From<Uuid> + Send;
    /// What a 404 says was not found.
    const NAME: &'static str;
}

/// The `{id}` of a route's path, parsed as `R`'s id (malformed: 404).
pub struct Id<R: Resource>(pub R::Key);

impl<S: Send + Sync, R: Resource> FromRequestParts<S> for Id<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound(R::NAME))?;
        parse::<R>(&raw).map(Id)
    }
}

/// `raw` as `R`'s id, or a 404 naming `R`.
pub fn parse<R: Resource>(raw: &str) -> Result<R::Key, ApiError> {
    raw.parse::<Uuid>()
        .map(R::Key::from)
        .map_err(|_| ApiError::NotFound(R::NAME))
}

/// A page of items and the cursor of the next page (absent on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
    pub next_cursor: Option<String>,
}

/// Paging parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The page size asked for (default 50), or a 400 outside 1-200.
pub fn limit(q: &PageQuery) -> Result<u32, ApiError> {
    match q.limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!("limit: {n} is outside 1-200"))),
    }
}

/// An opaque cursor for `s` (where the next page starts).
pub fn encode_cursor(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// What [`encode_cursor`] made, or a 400.
pub fn decode_cursor(c: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::BadRequest("cursor: not a cursor this API returned".into()))
}

macro_rules! resources {
    ($($name:ident: $key:ty = $word:literal;)*) => {
        /// The records routes name by id.
        pub mod resource {
            $(
                #[doc = concat!("A ", $word, ".")]
                pub enum $name {}
                impl super::Resource for $name {
                    type Key = $key;
                    const NAME: &'static str = $word;
                }
            )*
        }
    };
}

resources! {
    Channel: coach_connector_api::ChannelId = "channel";
    Conversation: coach_connector_api::ConversationId = "conversation";
    Contact: coach_connector_api::ContactId = "contact";
    Message: coach_connector_api::MessageId = "message";
    Tenant: coach_connector_api::TenantId = "tenant";
    Member: crate::store::UserId = "member";
    Document: uuid::Uuid = "document";
    Program: uuid::Uuid = "program";
    Enrollment: uuid::Uuid = "enrollment";
    ApiKey: uuid::Uuid = "API key";
    Invite: uuid::Uuid = "invitation";
    OutboxEntry: uuid::Uuid = "outbox entry";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_id_is_not_found_with_its_resource() {
        let id = Uuid::now_v7();
        assert_eq!(
            parse::<resource::Channel>(&id.to_string()).unwrap(),
            coach_connector_api::ChannelId(id)
        );
        match parse::<resource::Document>("not-an-id") {
            Err(ApiError::NotFound(what)) => assert_eq!(what, "document"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
