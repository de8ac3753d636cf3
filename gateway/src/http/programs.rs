//! `/v1/programs`: coaching programs (versioned steps), enrollments (one contact, a list, or
//! a segment), analytics; and a contact's consent to proactive messages
//! (`/v1/contacts/{id}/opt-out`, `/opt-in`). Changes are recorded in the audit log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::extract::{Editor, Member, Need, Viewer};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::http::kit::{self, Id, resource};
use crate::http::limits::ClientIp;

use crate::programs::analytics::{self, Analytics};
use crate::programs::definition::Definition;
use crate::programs::enroll::{EnrollReport, EnrollRequest};
use crate::state::AppState;
use crate::store::AuditEntry;
use crate::store::programs::{Enrollment, ProgramRecord};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_program, list_programs))
        .routes(routes!(get_program, update_program, archive_program))
        .routes(routes!(enroll, list_enrollments))
        .routes(routes!(cancel_enrollment))
        .routes(routes!(program_analytics))
        .routes(routes!(program_version))
}

/// A JSON body as `T`, or a 422 naming what does not fit.
fn body_as<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::Unprocessable(format!("body: {e}")))
}

async fn check(
    state: &AppState,
    scope: &crate::tenancy::TenantScope,
    definition: &Definition,
) -> Result<(), ApiError> {
    let mut problems = definition.problems();
    problems.extend(crate::programs::files::missing(state, scope, definition).await?);
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
                details,
                ..kit::audit_entry(member, ip, action, resource_type, id)
            },
        )
        .await?;
    Ok(())
}

/// Create a program (version 1). Every problem with it is reported at once.
#[utoipa::path(post, path = "/v1/programs", tag = "programs", request_body = Definition,
    responses((status = 201, body = ProgramRecord), (status = 422, body = crate::error::Problem)))]
async fn create_program(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    ApiJson(definition): ApiJson<Definition>,
) -> Result<(StatusCode, Json<ProgramRecord>), ApiError> {
    check(&state, &member.scope, &definition).await?;
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
#[utoipa::path(get, path = "/v1/programs", tag = "programs",
    responses((status = 200, body = Vec<ProgramRecord>)))]
async fn list_programs(
    State(state): State<AppState>,
    member: Member<Viewer>,
) -> Result<Json<Vec<ProgramRecord>>, ApiError> {
    Ok(Json(state.store.programs(&member.scope).await?))
}

/// One program (its newest version).
#[utoipa::path(get, path = "/v1/programs/{id}", tag = "programs",
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = ProgramRecord), (status = 404, body = crate::error::Problem)))]
async fn get_program(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Program>,
) -> Result<Json<ProgramRecord>, ApiError> {
    Ok(Json(state.store.program(&member.scope, id).await?))
}

/// Replace a program's steps: a new version. Running enrollments finish on the version they
/// started; new enrollments get this one.
#[utoipa::path(put, path = "/v1/programs/{id}", tag = "programs", request_body = Definition,
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = ProgramRecord), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_program(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Program>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<ProgramRecord>, ApiError> {
    // Another tenant's program is not found, whatever the body.
    state.store.program(&member.scope, id).await?;
    let definition: Definition = body_as(body)?;
    check(&state, &member.scope, &definition).await?;
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
#[utoipa::path(delete, path = "/v1/programs/{id}", tag = "programs",
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = Archived), (status = 404, body = crate::error::Problem)))]
async fn archive_program(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Program>,
) -> Result<Json<Archived>, ApiError> {
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

/// Enroll contacts. Each gets the first step at its timing (from `start_at`, in their time
/// zone, outside quiet hours); opted-out contacts are never enrolled.
#[utoipa::path(post, path = "/v1/programs/{id}/enrollments", tag = "programs", request_body = EnrollRequest,
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = EnrollReport), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn enroll(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(id): Id<resource::Program>,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<EnrollReport>, ApiError> {
    let (report, source) = crate::programs::enroll::enroll(&state, &member.scope, id, body).await?;
    audit(
        &state,
        &member,
        ip,
        "program.enroll",
        "program",
        id.to_string(),
        serde_json::json!({
            "enrolled": report.enrolled, "already": report.already, "opted_out": report.opted_out,
            "unreachable": report.unreachable.len(), "no_consent": report.no_consent.len(),
            "source": source,
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
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// A program's enrollments, oldest first.
#[utoipa::path(get, path = "/v1/programs/{id}/enrollments", tag = "programs",
    params(("id" = String, Path, description = "program id"), EnrollmentsQuery),
    responses((status = 200, body = Vec<Enrollment>), (status = 404, body = crate::error::Problem)))]
async fn list_enrollments(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Program>,
    ApiQuery(q): ApiQuery<EnrollmentsQuery>,
) -> Result<Json<Vec<Enrollment>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: {limit} is outside 1-500"
        )));
    }
    state.store.program(&member.scope, id).await?;
    Ok(Json(
        state
            .store
            .enrollments(&member.scope, id, q.after, limit)
            .await?,
    ))
}

/// One earlier (or the current) version of a program's definition, to compare versions.
#[utoipa::path(get, path = "/v1/programs/{id}/versions/{version}", tag = "programs",
    params(("id" = String, Path, description = "program id"), ("version" = i32, Path, description = "1 to the program's current version")),
    responses((status = 200, body = Definition), (status = 404, body = crate::error::Problem)))]
async fn program_version(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Definition>, ApiError> {
    let id = kit::parse::<resource::Program>(&id)?;
    let version: i32 = version
        .parse()
        .map_err(|_| ApiError::NotFound("program version"))?;
    Ok(Json(
        state
            .store
            .program_version(&member.scope, id, version)
            .await?,
    ))
}

/// End one enrollment now.
#[utoipa::path(delete, path = "/v1/programs/{id}/enrollments/{enrollment_id}", tag = "programs",
    params(("id" = String, Path, description = "program id"), ("enrollment_id" = String, Path, description = "enrollment id")),
    responses((status = 200, body = Enrollment), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)))]
async fn cancel_enrollment(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Path((id, enrollment_id)): Path<(String, String)>,
) -> Result<Json<Enrollment>, ApiError> {
    let id = kit::parse::<resource::Program>(&id)?;
    let enrollment_id = kit::parse::<resource::Enrollment>(&enrollment_id)?;
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
/// read and replied to; the completion funnel; per progress key, answers, streaks and
/// milestones.
#[utoipa::path(get, path = "/v1/programs/{id}/analytics", tag = "programs",
    params(("id" = String, Path, description = "program id")),
    responses((status = 200, body = Analytics), (status = 404, body = crate::error::Problem)))]
async fn program_analytics(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Program>,
) -> Result<Json<Analytics>, ApiError> {
    let program = state.store.program(&member.scope, id).await?;
    let counts = state.store.enrollment_counts(&member.scope, id).await?;
    let facts = state.store.run_facts(&member.scope, id).await?;
    let progress = state.store.program_progress(&member.scope, id).await?;
    let today = state.clock.now().date_naive();
    Ok(Json(analytics::compute(
        &program, &counts, &facts, &progress, today,
    )))
}
