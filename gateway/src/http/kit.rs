//! What every handler shares: the path id extractor ([`Id`]; a malformed id is a 404 like an
//! id of another tenant: anything that is not an id cannot name a record of the caller's) and
//! the audit entry of a member's action ([`audit_entry`]), and cursor paging ([`PageQuery`],
//! [`Paged`]).

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
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
    #[param(pattern = r"^[0-9a-f]{48}$")]
    pub cursor: Option<String>,
    /// Items per page (1-200, default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The page size asked for (default 50), or a 400 outside 1-200.
pub fn limit(q: &PageQuery) -> Result<u32, ApiError> {
    page_size(q.limit)
}

/// `asked` (default 50), or a 400 outside 1-200.
pub fn page_size(asked: Option<u32>) -> Result<u32, ApiError> {
    match asked {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!("limit: {n} is outside 1-200"))),
    }
}

/// Where the next page starts: a time and an id, 48 lowercase hex digits (the time's
/// microseconds since 1970 as 16, the id as 32). Lists ordered by one of them leave the other
/// zero. Any string of that form is a position, so every cursor the schema allows is answered
/// (with the page after that position, maybe empty); anything else is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The time of the last item of the previous page.
    pub at: DateTime<Utc>,
    /// The id of the last item of the previous page.
    pub id: Uuid,
}

impl Cursor {
    /// The cursor after an item at `at`.
    pub fn at(at: DateTime<Utc>) -> String {
        Cursor {
            at,
            id: Uuid::nil(),
        }
        .to_string()
    }

    /// The cursor after the item `id`.
    pub fn id(id: Uuid) -> String {
        Cursor {
            at: DateTime::UNIX_EPOCH,
            id,
        }
        .to_string()
    }

    /// The cursor a request carries, or a 400 when it is not one.
    pub fn parse(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
        raw.map(|c| {
            c.parse()
                .map_err(|()| ApiError::BadRequest("cursor: not a cursor this API returned".into()))
        })
        .transpose()
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:016x}{}",
            self.at.timestamp_micros() as u64,
            self.id.simple()
        )
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if s.len() != 48 || !hex(s) {
            return Err(());
        }
        let micros = u64::from_str_radix(&s[..16], 16).map_err(|_| ())? as i64;
        // A position outside the times chrono can hold is before (or after) every item.
        let at = DateTime::from_timestamp_micros(micros).unwrap_or(if micros < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        });
        let id = Uuid::parse_str(&s[16..]).map_err(|_| ())?;
        Ok(Cursor { at, id })
    }
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
    CannedReply: uuid::Uuid = "canned reply";
    File: uuid::Uuid = "file";
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

    #[test]
    fn a_cursor_reads_back_and_every_string_of_its_form_is_a_position() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        for c in [
            Cursor { at, id },
            Cursor {
                at,
                id: Uuid::nil(),
            },
        ] {
            assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        }
        assert_eq!(Cursor::id(id).parse::<Cursor>().unwrap().id, id);
        assert_eq!(Cursor::at(at).parse::<Cursor>().unwrap().at, at);
        assert!("f".repeat(48).parse::<Cursor>().is_ok());
        assert!("7".repeat(48).parse::<Cursor>().is_ok());
        for bad in [
            "",
            "0",
            &"F".repeat(48),
            &"0".repeat(47),
            &"0".repeat(49),
            "MjAyNi0xMi0wMw",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }
}
