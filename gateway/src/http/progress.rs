//! `/v1/contacts/{id}/progress`: a contact's answers to progress questions, per program and
//! key, with their streaks and the milestones they reached.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::extract::{Member, Viewer};
use crate::error::ApiError;
use crate::http::kit::{Id, resource};
use crate::programs::tracking::{self, KeyProgress};
use crate::state::AppState;
use crate::store::progress::MilestoneReached;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_progress))
}

/// A contact's progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactProgress {
    /// Per program and key, in the order first answered.
    pub items: Vec<KeyProgress>,
    /// Milestones reached, oldest first.
    pub milestones: Vec<MilestoneReached>,
}

/// A contact's answers to progress questions, per program and key, with their streaks and the
/// milestones they reached (empty for a contact who answered none).
#[utoipa::path(get, path = "/v1/contacts/{id}/progress", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, body = ContactProgress), (status = 404, body = crate::error::Problem)))]
async fn get_progress(
    State(state): State<AppState>,
    member: Member<Viewer>,
    Id(id): Id<resource::Contact>,
) -> Result<Json<ContactProgress>, ApiError> {
    let log = state.store.contact_progress(&member.scope, id).await?;
    let items = tracking::by_key(&state, &member.scope, &log.entries).await?;
    Ok(Json(ContactProgress {
        items,
        milestones: log.milestones,
    }))
}
