//! `/v1/programs`: coaching programs (versioned steps), enrollments (one contact, a list, or
//! a segment), analytics; and a contact's consent to proactive messages
//! (`/v1/contacts/{id}/opt-out`, `/opt-in`). Changes are recorded in the audit log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use coach_connector_api::{ChannelId, ContactId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Editor, Member, Need, Viewer};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::http::limits::ClientIp;

use crate::programs::analytics::{self, Analytics};
use crate::programs::definition::Definition;
use crate::programs::schedule::{due_at, parse_tz};
use crate::state::AppState;
use crate::store::programs::{
    EnrollOutcome, Enrollment, NewEnrollment, ProgramRecord, ProgramStatus,
};
use crate::store::{AuditEntry, StoreError};

/// Contacts one enrollment request may name.
const MAX_BULK: usize = 10_000;
/// Contacts one segment may hold.
const MAX_SEGMENT: u32 = 100_000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_program, list_programs))
        .routes(routes!(get_program, update_program, archive_program))
        .routes(routes!(enroll, list_enrollments))
        .routes(routes!(cancel_enrollment))
        .routes(routes!(program_analytics))
}

pub(super) fn parse(id: &str, what: &'static str) -> Result<Uuid, ApiError> {
    id.parse::<Uuid>().map_err(|_| ApiError::NotFound(what))
}

/// A JSON body as `T`, or a 422 naming what does not fit.
fn body_as<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::Unprocessable(format!("body: {e}")))
}

fn check(definition: &Definition) -> Result<(), ApiError> {
    let problems = definition.problems();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(problems.join("; ")))
    }
}

pub(super) async fn audit<R: Need>(
    state: &AppState,
    member: &Member<R>,
    ip: ClientIp,
    action: &str,
    resource_type: &str,
    id: String,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .store
        .audit(
            &member.scope,
            AuditEntry {
                actor: member.actor(),
                action: action.into(),
                resource_type: resource_type.into(),
                resource_id: Some(id),
                ip: Some(ip.0.to_string()),
                details,
            },
        )
        .await?;
    Ok(())
}

/// Create a program (version 1). Every problem with it is reported at once.
#[utoipa::path(post, path = "/v1/programs", tag = "programs", request_body = Definition, security(("bearer" = [])),
    responses((status = 201, body = ProgramRecord), (status = 422, body = crate::error::Problem)))]
async fn create_program(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    ApiJson(definition): ApiJson<Definition>,
) -> Result<(StatusCode, Json<ProgramRecord>), ApiError> {
    check(&definition)?;
    let program = state
        .store
        .create_program(&member.scope, definition)
        .await?;
    audit(
        &state,
        &member,
        ip,
        "program.create",
        "program",
        program.id.to_string(),
        serde_json::json!({ "version": 1 }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(program)))
}

/// The tenant's programs.
#[utoipa::path(get, path = "/v1/programs", tag = "programs", security(("bearer" = [])),
    responses((status = 200, body = Vec<ProgramRecord>)))]
async fn list_programs(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<ProgramRecord>>, ApiError> {
    Ok(Json(state.store.programs(&member.scope).await?))
}

/// One program (its newest version).
#[utoipa::path(get, path = "/v1/programs/{id}", tag = "programs", security(("bearer" = [])),
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = ProgramRecord), (status = 404, body = crate::error::Problem)))]
async fn get_program(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Path(id): Path<String>,
) -> Result<Json<ProgramRecord>, ApiError> {
    let id = parse(&id, "program")?;
    Ok(Json(state.store.program(&member.scope, id).await?))
}

/// Replace a program's steps: a new version. Running enrollments finish on the version they
/// started; new enrollments get this one.
#[utoipa::path(put, path = "/v1/programs/{id}", tag = "programs", request_body = Definition, security(("bearer" = [])),
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = ProgramRecord), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_program(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<ProgramRecord>, ApiError> {
    let id = parse(&id, "program")?;
    // Another tenant's program is not found, whatever the body.
    state.store.program(&member.scope, id).await?;
    let definition: Definition = body_as(body)?;
    check(&definition)?;
    let program = state
        .store
        .update_program(&member.scope, id, definition)
        .await?;
    audit(
        &state,
        &member,
        ip,
        "program.update",
        "program",
        id.to_string(),
        serde_json::json!({ "version": program.version }),
    )
    .await?;
    Ok(Json(program))
}

/// What archiving did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Archived {
    /// Enrollments that were running and are now cancelled.
    pub cancelled: u64,
}

/// Archive a program: nobody new is enrolled and running enrollments end now.
#[utoipa::path(delete, path = "/v1/programs/{id}", tag = "programs", security(("bearer" = [])),
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = Archived), (status = 404, body = crate::error::Problem)))]
async fn archive_program(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Path(id): Path<String>,
) -> Result<Json<Archived>, ApiError> {
    let id = parse(&id, "program")?;
    let cancelled = state.store.archive_program(&member.scope, id).await?;
    audit(
        &state,
        &member,
        ip,
        "program.archive",
        "program",
        id.to_string(),
        serde_json::json!({ "cancelled": cancelled }),
    )
    .await?;
    Ok(Json(Archived { cancelled }))
}

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
    /// Contacts with no conversation to reach them in (not enrolled).
    #[schema(value_type = Vec<String>)]
    pub unreachable: Vec<Uuid>,
    /// The enrollments made or found (for requests of at most 100 contacts).
    pub enrollments: Vec<Enrollment>,
}

/// Enroll contacts. Each gets the first step at its timing (from `start_at`, in their time
/// zone, outside quiet hours); opted-out contacts are never enrolled.
#[utoipa::path(post, path = "/v1/programs/{id}/enrollments", tag = "programs", request_body = EnrollRequest, security(("bearer" = [])),
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = EnrollReport), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn enroll(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<EnrollReport>, ApiError> {
    let id = parse(&id, "program")?;
    let scope = &member.scope;
    let store = state.store.as_ref();
    // The program first: another tenant's id is not found, whatever the body.
    let program = store.program(scope, id).await?;
    let req: EnrollRequest = body_as(body)?;
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
                match store.reach(scope, ContactId(contact), channel).await? {
                    Some(conversation) => targets.push((ContactId(contact), conversation)),
                    None => report.unreachable.push(contact),
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
    audit(
        &state,
        &member,
        ip,
        "program.enroll",
        "program",
        id.to_string(),
        serde_json::json!({
            "enrolled": report.enrolled, "already": report.already, "opted_out": report.opted_out,
            "unreachable": report.unreachable.len(), "source": source,
        }),
    )
    .await?;
    Ok(Json(report))
}

/// Paging of enrollments.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrollmentsQuery {
    /// The last enrollment id of the previous page.
    pub after: Option<Uuid>,
    /// At most this many (1 to 500, default 100).
    pub limit: Option<u32>,
}

/// A program's enrollments, oldest first.
#[utoipa::path(get, path = "/v1/programs/{id}/enrollments", tag = "programs", security(("bearer" = [])),
    params(("id" = String, Path, description = "program id"), EnrollmentsQuery),
    responses((status = 200, body = Vec<Enrollment>), (status = 404, body = crate::error::Problem)))]
async fn list_enrollments(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EnrollmentsQuery>,
) -> Result<Json<Vec<Enrollment>>, ApiError> {
    let id = parse(&id, "program")?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Unprocessable("limit: 1 to 500".into()));
    }
    state.store.program(&member.scope, id).await?;
    Ok(Json(
        state
            .store
            .enrollments(&member.scope, id, q.after, limit)
            .await?,
    ))
}

/// End one enrollment now.
#[utoipa::path(delete, path = "/v1/programs/{id}/enrollments/{enrollment_id}", tag = "programs", security(("bearer" = [])),
    params(("id" = String, Path, description = "program id"), ("enrollment_id" = String, Path, description = "enrollment id")),
    responses((status = 200, body = Enrollment), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn cancel_enrollment(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Path((id, enrollment_id)): Path<(String, String)>,
) -> Result<Json<Enrollment>, ApiError> {
    let id = parse(&id, "program")?;
    let enrollment_id = parse(&enrollment_id, "enrollment")?;
    let current = state.store.enrollment(&member.scope, enrollment_id).await?;
    if current.program_id != id {
        return Err(ApiError::NotFound("enrollment"));
    }
    let e = state
        .store
        .cancel_enrollment(&member.scope, enrollment_id)
        .await?;
    audit(
        &state,
        &member,
        ip,
        "program.unenroll",
        "enrollment",
        enrollment_id.to_string(),
        serde_json::json!({ "program_id": id }),
    )
    .await?;
    Ok(Json(e))
}

/// A program's numbers: enrollments by state; per step and channel, what was sent, delivered,
/// read and replied to.
#[utoipa::path(get, path = "/v1/programs/{id}/analytics", tag = "programs", security(("bearer" = [])),
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = Analytics), (status = 404, body = crate::error::Problem)))]
async fn program_analytics(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Path(id): Path<String>,
) -> Result<Json<Analytics>, ApiError> {
    let id = parse(&id, "program")?;
    let program = state.store.program(&member.scope, id).await?;
    let counts = state.store.enrollment_counts(&member.scope, id).await?;
    let facts = state.store.run_facts(&member.scope, id).await?;
    Ok(Json(analytics::compute(&program, &counts, &facts)))
}
