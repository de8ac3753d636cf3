//! Enrolling contacts in a program: one contact, a list, or a segment of existing contacts,
//! each reached on a conversation of theirs and scheduled for the first step at its timing (in
//! their time zone, outside quiet hours). Opted-out contacts are never enrolled. A contact who
//! never wrote (imported) is enrolled only with recorded consent, on a conversation opened for
//! them; on WhatsApp its first steps go out as templates until they answer (the 24-hour rule).

use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ContactId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::programs::schedule::{due_at, parse_tz};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::programs::{EnrollOutcome, Enrollment, NewEnrollment, ProgramStatus, Reach};
use crate::tenancy::TenantScope;

/// Contacts one enrollment request may name.
const MAX_BULK: usize = 10_000;
/// Contacts one segment may hold.
const MAX_SEGMENT: u32 = 100_000;

/// Whom to enroll: one contact, a list, or a segment of existing contacts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// One contact.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub contact_id: Option<Uuid>,
    /// Several contacts (at most 10,000).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub contact_ids: Vec<Uuid>,
    /// Every contact matching this.
    pub segment: Option<Segment>,
    /// Reach them on this channel (default: each one's most recently active conversation).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub channel_id: Option<Uuid>,
    /// Their IANA time zone (default: the tenant's `outreach.time_zone`).
    pub time_zone: Option<String>,
    /// Values for the program's custom variables.
    #[serde(default)]
    pub variables: serde_json::Map<String, serde_json::Value>,
    /// When day 1 starts (default: now); the first step is due by its timing from then.
    pub start_at: Option<DateTime<Utc>>,
}

/// A segment of existing contacts.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Only contacts who wrote within this many days.
    pub active_within_days: Option<u32>,
    /// Only contacts of this channel.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub channel_id: Option<Uuid>,
}

/// What an enrollment request came to.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct EnrollReport {
    /// Contacts enrolled now.
    pub enrolled: u64,
    /// Contacts already in the program (unchanged).
    pub already: u64,
    /// Contacts who opted out of proactive messages (not enrolled).
    pub opted_out: u64,
    /// Contacts with no conversation to reach them in and no address on the channel (not
    /// enrolled).
    #[schema(value_type = Vec<String>)]
    pub unreachable: Vec<Uuid>,
    /// Contacts who never wrote and whose consent to proactive messages is not recorded (not
    /// enrolled; an import records it with `consent`).
    #[schema(value_type = Vec<String>)]
    pub no_consent: Vec<Uuid>,
    /// The enrollments made or found (for requests of at most 100 contacts).
    pub enrollments: Vec<Enrollment>,
}

/// Enrolls the contacts `body` (an [`EnrollRequest`]) names in program `id`; returns the report
/// and how they came (`api` for one contact, `bulk` for more or a segment). The program is
/// looked up first: another tenant's id is not found, whatever the body.
pub async fn enroll(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
    body: serde_json::Value,
) -> Result<(EnrollReport, &'static str), ApiError> {
    let store = state.store.as_ref();
    // The program first: another tenant's id is not found, whatever the body.
    let program = store.program(scope, id).await?;
    let req: EnrollRequest =
        serde_json::from_value(body).map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
    if program.status != ProgramStatus::Active {
        return Err(ApiError::Conflict("the program is archived".into()));
    }
    let (_, profile) = store.tenant_profile(scope).await?;
    let outreach = profile.outreach();
    let time_zone = req
        .time_zone
        .clone()
        .unwrap_or_else(|| outreach.time_zone.clone());
    let tz =
        parse_tz(&time_zone).map_err(|e| ApiError::Unprocessable(format!("time_zone: {e}")))?;
    for key in req.variables.keys() {
        if !program.definition.variables.contains_key(key) {
            return Err(ApiError::Unprocessable(format!(
                "variables.{key}: the program declares no such variable (declared: {})",
                program
                    .definition
                    .variables
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    if req
        .segment
        .as_ref()
        .and_then(|s| s.active_within_days)
        .is_some_and(|d| d > 3650)
    {
        return Err(ApiError::Unprocessable(
            "segment.active_within_days: at most 3650".into(),
        ));
    }
    let now = state.clock.now();
    if req
        .start_at
        .is_some_and(|s| s > now + chrono::Duration::days(366))
    {
        return Err(ApiError::Unprocessable(
            "start_at: at most a year ahead".into(),
        ));
    }
    let channel = req.channel_id.map(ChannelId);
    if let Some(c) = channel {
        store.channel(scope, c).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ApiError::Unprocessable("channel_id: no such channel".into())
            }
            other => other.into(),
        })?;
    }
    // Who, and where to reach each of them.
    let mut targets = Vec::new();
    let mut report = EnrollReport::default();
    let named: Vec<Uuid> = req
        .contact_id
        .into_iter()
        .chain(req.contact_ids.iter().copied())
        .collect();
    match (&req.segment, named.is_empty()) {
        (Some(_), false) | (None, true) => {
            return Err(ApiError::Unprocessable(
                "give contact_id, contact_ids, or a segment (one of them)".into(),
            ));
        }
        (Some(segment), true) => {
            let since = segment
                .active_within_days
                .map(|d| state.clock.now() - chrono::Duration::days(i64::from(d)));
            let channel = segment.channel_id.map(ChannelId).or(channel);
            targets = store
                .segment(scope, channel, since, MAX_SEGMENT + 1)
                .await?;
            if targets.len() > MAX_SEGMENT as usize {
                return Err(ApiError::Unprocessable(format!(
                    "segment: more than {MAX_SEGMENT} contacts; narrow it with channel_id or active_within_days"
                )));
            }
        }
        (None, false) => {
            if named.len() > MAX_BULK {
                return Err(ApiError::Unprocessable(format!(
                    "contact_ids: at most {MAX_BULK} per request (use a segment for more)"
                )));
            }
            for contact in named {
                match store
                    .open_reach(scope, ContactId(contact), channel, now)
                    .await?
                {
                    Reach::Conversation(c) => targets.push((ContactId(contact), c)),
                    Reach::NoConsent => report.no_consent.push(contact),
                    Reach::Unreachable => report.unreachable.push(contact),
                }
            }
        }
    }
    let Some(first) = program.definition.steps.first() else {
        return Err(ApiError::Unprocessable("the program has no steps".into()));
    };
    let start = req.start_at.unwrap_or(now).max(now);
    let due = first
        .timing
        .when()
        .map(|w| due_at(w, tz, start, start, false))
        .unwrap_or(start);
    let due = outreach.quiet().after(tz, due);
    let source = if req.segment.is_some() || targets.len() > 1 {
        "bulk"
    } else {
        "api"
    };
    let show = targets.len() <= 100;
    for chunk in targets.chunks(500) {
        let new = chunk
            .iter()
            .map(|(contact, conversation)| NewEnrollment {
                program_id: program.id,
                version: program.version,
                contact_id: *contact,
                conversation_id: *conversation,
                time_zone: time_zone.clone(),
                variables: req.variables.clone(),
                source: source.into(),
                first_step: first.id.clone(),
                due_at: due,
                answers: false,
            })
            .collect();
        for outcome in store.enroll(scope, new, start).await? {
            match outcome {
                EnrollOutcome::Enrolled(e) => {
                    report.enrolled += 1;
                    if show {
                        report.enrollments.push(e);
                    }
                }
                EnrollOutcome::Already(e) => {
                    report.already += 1;
                    if show {
                        report.enrollments.push(e);
                    }
                }
                EnrollOutcome::OptedOut => report.opted_out += 1,
            }
        }
    }
    Ok((report, source))
}
