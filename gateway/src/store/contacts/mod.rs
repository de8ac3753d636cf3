//! What a creator knows of their contacts beyond a channel's identity (time zone, language,
//! recorded consent, custom fields), and contacts brought in bulk from a CSV file. Columns of the
//! contact's own row: exported with the contact, erased with them. A supertrait of
//! [`Store`](super::Store).

mod sql;

use async_trait::async_trait;
use coach_connector_api::{ChannelId, ContactId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;
use crate::tenancy::TenantScope;

/// The attribute recording when a widget visitor ticked the pre-chat form's consent box
/// (RFC 3339), beside [`CHAT_CONSENT_TEXT`], the text they agreed to. Not the consent to
/// proactive messages (`consent_at`), which programs need.
pub const CHAT_CONSENT_AT: &str = "chat_consent_at";

/// The attribute holding the consent text a widget visitor agreed to.
pub const CHAT_CONSENT_TEXT: &str = "chat_consent_text";

/// One contact as an import gives it, checked and cleaned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportedContact {
    /// Their address on the channel (a WhatsApp number as its digits, a Telegram chat id...).
    pub external_id: String,
    /// Their name.
    pub name: Option<String>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Language (BCP 47, lower-case).
    pub language: Option<String>,
    /// Consent to proactive messages: `Some(true)` recorded, `Some(false)` withdrawn, `None`
    /// not stated (kept as it was).
    pub consent: Option<bool>,
    /// Custom fields (merged into what is stored; a field is replaced, never removed).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// What an import did, or with a dry run would do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportCounts {
    /// New contacts.
    pub created: u64,
    /// Known contacts whose details changed.
    pub updated: u64,
    /// Known contacts already as the file says.
    pub unchanged: u64,
}

/// A contact's language.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactLanguage {
    /// Chosen by the team or an import: it wins.
    pub chosen: Option<String>,
    /// Detected in their messages.
    pub detected: Option<String>,
}

impl ContactLanguage {
    /// The language to answer in: the chosen one, else the detected one, else `default`.
    pub fn effective<'a>(&'a self, default: &'a str) -> &'a str {
        self.chosen
            .as_deref()
            .or(self.detected.as_deref())
            .unwrap_or(default)
    }
}

/// Contacts in bulk.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Create or update the contacts reached at `rows`' addresses on `channel`, in one
    /// transaction. Updating keeps what a row leaves empty; the same rows again change nothing.
    async fn import_contacts(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        rows: Vec<ImportedContact>,
    ) -> Result<ImportCounts, StoreError>;
    /// The contact's language as the team set it and as detected (`NotFound` for another
    /// tenant's contact).
    async fn contact_language(
        &self,
        scope: &TenantScope,
        contact: ContactId,
    ) -> Result<ContactLanguage, StoreError>;
    /// Record the language detected in the contact's latest message.
    async fn set_detected_language(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        language: String,
    ) -> Result<(), StoreError>;
    /// Set (or with `None` clear) the language the team chose for the contact.
    async fn set_contact_language(
        &self,
        scope: &TenantScope,
        contact: ContactId,
        language: Option<String>,
    ) -> Result<(), StoreError>;
    /// Whether the channel's contact known there as `external_id` agreed to the chat's terms
    /// (a widget's pre-chat form: [`CHAT_CONSENT_AT`] among their attributes); `false` for
    /// someone not known yet.
    async fn chat_consented(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        external_id: &str,
    ) -> Result<bool, StoreError>;
    /// What [`ContactStore::import_contacts`] would do, writing nothing (a dry run).
    async fn preview_import(
        &self,
        scope: &TenantScope,
        channel: ChannelId,
        rows: Vec<ImportedContact>,
    ) -> Result<ImportCounts, StoreError>;
}
