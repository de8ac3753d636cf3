//! The tenant's profile: the coach persona, outreach rules, chunking, retention and the
//! creator's webhook, stored as one JSON document per tenant (`tenants.profile`) and read
//! through one typed struct. Keys this version does not know are kept on a rewrite.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::programs::Outreach;
use crate::store::{Store, Tenant};
use crate::tenancy::TenantScope;

/// A tenant's settings. Each field is absent until set; a stored value this version cannot read
/// counts as unset (logged) rather than breaking every read of the profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantProfile {
    /// The coach persona (absent: the defaults).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub persona: Option<Persona>,
    /// Rules for proactive messages (absent: the defaults).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub outreach: Option<Outreach>,
    /// The tenant's own chunking (absent: the operator's).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub chunking: Option<Chunking>,
    /// Messages older than this many days are deleted (absent: kept until erased).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention_days: Option<u32>,
    /// The tenant's own fixed texts per language (absent: the built-in ones).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub strings: Option<crate::language::Strings>,
    /// When the team answers (absent: any time).
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub business_hours: Option<crate::hours::BusinessHours>,
    /// The creator's webhook `{url, secret, events}`, its secret sealed by the master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<serde_json::Value>,
    /// Keys this version does not know, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TenantProfile {
    /// The profile in a stored document (anything but an object reads as empty).
    pub fn from_stored(value: serde_json::Value) -> Self {
        if value.is_null() {
            return Self::default();
        }
        serde_json::from_value(value).unwrap_or_else(|error| {
            tracing::warn!(%error, "a stored tenant profile is not an object; read as empty");
            Self::default()
        })
    }

    /// The document to store.
    pub fn to_stored(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// Outreach rules, the defaults where unset.
    pub fn outreach(&self) -> Outreach {
        self.outreach.clone().unwrap_or_default()
    }

    /// The events the webhook takes: those chosen, else (a webhook set before events could be
    /// chosen) handoffs only; none without a webhook.
    pub fn webhook_events(&self) -> Vec<String> {
        if self.notify_url().is_none() {
            return Vec::new();
        }
        match self.notify.as_ref().and_then(|n| n.get("events")) {
            Some(serde_json::Value::Array(events)) => events
                .iter()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect(),
            _ => vec![crate::store::notices::HANDOFF_REQUESTED.to_owned()],
        }
    }

    /// The handoff webhook's address, when one is set.
    pub fn notify_url(&self) -> Option<&str> {
        self.notify
            .as_ref()?
            .get("url")?
            .as_str()
            .filter(|u| !u.is_empty())
    }
}

/// A field that reads as `None` when its stored value is `null` or not readable.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(d)?;
    if value.is_null() {
        return Ok(None);
    }
    Ok(serde_json::from_value(value)
        .inspect_err(|error| tracing::warn!(%error, "a tenant profile field is not readable; using the default"))
        .ok())
}

/// How the coach presents itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Persona {
    /// The coach's name, e.g. "Maya".
    pub coach_name: String,
    /// Tone of voice, e.g. "warm, direct, no jargon".
    pub tone: String,
    /// The default answer language as a BCP 47 tag (`en`, `es`, `pt-BR`): used until a
    /// person's language is known (detected in their messages or set on the contact).
    pub language: String,
    /// The first message a new person receives.
    pub greeting: String,
    /// How the coach works with people (questions first, small steps...).
    pub coaching_style: String,
    /// What the coach never does (medical advice, prices...).
    pub boundaries: String,
    /// Where a coachee whose message signals a crisis is pointed (a hotline, a local
    /// service), instead of coaching; empty: built-in text naming emergency numbers.
    pub help_resources: String,
}

impl Persona {
    /// What is wrong with it, as a 422.
    pub fn validate(&self) -> Result<(), ApiError> {
        let fields = [
            ("coach_name", &self.coach_name, 100),
            ("tone", &self.tone, 500),
            ("greeting", &self.greeting, 2000),
            ("coaching_style", &self.coaching_style, 2000),
            ("boundaries", &self.boundaries, 2000),
            ("help_resources", &self.help_resources, 2000),
        ];
        for (name, value, max) in fields {
            if value.chars().count() > max {
                return Err(ApiError::Unprocessable(format!(
                    "persona.{name}: at most {max} characters"
                )));
            }
        }
        let lang = &self.language;
        if !lang.is_empty() && !crate::language::valid_tag(lang) {
            return Err(ApiError::Unprocessable(format!(
                "persona.language: {lang:?} is not a language tag such as en or pt-BR"
            )));
        }
        Ok(())
    }
}

/// How the tenant's documents are cut into chunks (absent: the operator's `brain.chunk_tokens`
/// and `brain.chunk_overlap`). Applies to documents indexed from then on: re-index the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Chunking {
    /// Chunk size in embedding tokens (16 to 512; the embedding model reads at most 512).
    pub chunk_tokens: u32,
    /// Tokens repeated between consecutive chunks (under half of `chunk_tokens`).
    pub chunk_overlap: u32,
}

impl Chunking {
    /// What is wrong with it, as a 422.
    pub fn validate(self) -> Result<(), ApiError> {
        if !(16..=512).contains(&self.chunk_tokens) || self.chunk_overlap * 2 >= self.chunk_tokens {
            return Err(ApiError::Unprocessable(format!(
                "chunking: {} tokens with {} overlap; use 16 to 512 tokens and an overlap under half of them",
                self.chunk_tokens, self.chunk_overlap
            )));
        }
        Ok(())
    }
}

/// Changes to the tenant; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// A new display name.
    pub name: Option<String>,
    /// A new persona (replaces the old one whole).
    pub persona: Option<Persona>,
    /// Delete messages older than this many days (1-3650); `0` keeps them until erased.
    #[schema(maximum = 3650)]
    pub retention_days: Option<u32>,
    /// Rules for proactive messages (replaces the old ones whole).
    pub outreach: Option<Outreach>,
    /// The tenant's own fixed texts: language tag -> text (`decline`, `handoff`, `quota`,
    /// `sources`, `ai_notice` with `{coach}`, `remembered`, `opt_out` with `{keyword}`, `opt_in`, `away` with `{back}`)
    /// -> what to send (`outreach`'s opt-out and opt-in replies, when set, win); replaces the old
    /// ones whole (`{}`: the built-in texts).
    #[schema(value_type = Option<Object>)]
    pub strings: Option<crate::language::Strings>,
    /// How documents are chunked from now on; `null` returns to the gateway's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Chunking>)]
    pub chunking: Option<Option<Chunking>>,
    /// When the team answers (replaces the old hours whole); `null`: any time.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<crate::hours::BusinessHours>)]
    pub business_hours: Option<Option<crate::hours::BusinessHours>>,
}

/// A field that may be absent (unchanged), `null` (cleared) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Applies `req` to the tenant: every field is checked first (422 naming the first that does
/// not fit), then the changed ones are written in one store call.
pub async fn update(
    store: &dyn Store,
    scope: &TenantScope,
    mut req: UpdateTenant,
) -> Result<(Tenant, TenantProfile), ApiError> {
    let name = req
        .name
        .take()
        .map(|n| {
            let n = n.trim().to_owned();
            if n.is_empty() || n.chars().count() > 100 {
                Err(ApiError::Unprocessable("name: 1 to 100 characters".into()))
            } else {
                Ok(n)
            }
        })
        .transpose()?;
    if let Some(persona) = &req.persona {
        persona.validate()?;
    }
    if req.retention_days.is_some_and(|d| d > 3650) {
        return Err(ApiError::Unprocessable(
            "retention_days: 1 to 3650, or 0 to keep messages until erased".into(),
        ));
    }
    if let Some(outreach) = &req.outreach {
        outreach.validate().map_err(ApiError::Unprocessable)?;
    }
    if let Some(Some(chunking)) = req.chunking {
        chunking.validate()?;
    }
    if let Some(strings) = &req.strings {
        crate::language::validate(strings).map_err(ApiError::Unprocessable)?;
    }
    if let Some(Some(hours)) = &req.business_hours {
        hours.validate()?;
    }
    let change: Option<crate::store::accounts::ProfileChange> = if req.persona.is_some()
        || req.strings.is_some()
        || req.retention_days.is_some()
        || req.outreach.is_some()
        || req.chunking.is_some()
        || req.business_hours.is_some()
    {
        // Applied to the stored profile inside the write: a concurrent save of other settings
        // is kept.
        Some(Box::new(move |profile: &mut TenantProfile| {
            apply(profile, req)
        }))
    } else {
        None
    };
    Ok(store.update_tenant_profile(scope, name, change).await?)
}

/// What a `PATCH /v1/tenant` sets, on `profile`.
fn apply(profile: &mut TenantProfile, req: UpdateTenant) {
    if let Some(persona) = req.persona {
        profile.persona = Some(persona);
    }
    if let Some(outreach) = req.outreach {
        profile.outreach = Some(outreach);
    }
    if let Some(chunking) = req.chunking {
        profile.chunking = chunking;
    }
    if let Some(hours) = req.business_hours {
        profile.business_hours = hours;
    }
    if let Some(strings) = req.strings {
        profile.strings = Some(strings).filter(|s| !s.is_empty());
    }
    match req.retention_days {
        Some(0) => profile.retention_days = None,
        Some(days) => profile.retention_days = Some(days),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_unset_fields_survive_a_rewrite() {
        let stored = serde_json::json!({
            "persona": { "coach_name": "Maya" },
            "retention_days": 30,
            "chunking": null,
            "future_setting": { "x": 1 }
        });
        let profile = TenantProfile::from_stored(stored);
        assert_eq!(profile.persona.as_ref().unwrap().coach_name, "Maya");
        assert_eq!(profile.retention_days, Some(30));
        assert_eq!(profile.chunking, None);
        assert_eq!(profile.outreach, None);
        let again = profile.to_stored();
        assert_eq!(again["future_setting"], serde_json::json!({ "x": 1 }));
        assert!(
            again.get("outreach").is_none(),
            "unset stays unset: {again}"
        );
        assert_eq!(TenantProfile::from_stored(again), profile);
    }

    #[test]
    fn an_unreadable_field_reads_as_unset_without_losing_the_rest() {
        let profile = TenantProfile::from_stored(serde_json::json!({
            "persona": "not an object",
            "retention_days": -4,
            "notify": { "url": "https://example.com/hook", "secret": "sealed" }
        }));
        assert_eq!(profile.persona, None);
        assert_eq!(profile.retention_days, None);
        assert_eq!(profile.notify_url(), Some("https://example.com/hook"));
        assert_eq!(
            TenantProfile::from_stored(serde_json::json!([1, 2])),
            TenantProfile::default()
        );
    }
}
