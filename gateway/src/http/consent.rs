//! `/v1/contacts/{id}/opt-out` and `/opt-in`: a contact's consent to proactive messages
//! (programs' check-ins), recorded by a member on the contact's behalf.

use axum::Json;
use axum::extract::State;
use coach_connector_api::ContactId;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::programs::audit;
use crate::auth::extract::{Editor, Member};
use crate::error::ApiError;
use crate::http::kit::{Id, resource};
use crate::http::limits::ClientIp;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(opt_out))
        .routes(routes!(opt_in))
}

/// A contact's consent to proactive messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Consent {
    /// The contact.
    #[schema(value_type = String, format = Uuid)]
    pub contact_id: Uuid,
    /// Whether proactive messages are stopped.
    pub opted_out: bool,
    /// Enrollments this request ended.
    pub enrollments_ended: u64,
}

/// Stop every proactive message to a contact (as if they had written STOP), ending their
/// enrollments and withdrawing check-ins not yet sent.
#[utoipa::path(post, path = "/v1/contacts/{id}/opt-out", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, body = Consent), (status = 404, body = crate::error::Problem)))]
async fn opt_out(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(ContactId(contact)): Id<resource::Contact>,
) -> Result<Json<Consent>, ApiError> {
    contact_exists(&state, &member, contact).await?;
    let ended = state
        .store
        .opt_out(&member.scope, ContactId(contact), "api", state.clock.now())
        .await?;
    if let Some(n) = ended {
        audit(
            &state,
            &member,
            ip,
            "contact.opt_out",
            "contact",
            contact.to_string(),
            serde_json::json!({ "source": "api", "enrollments_ended": n }),
        )
        .await?;
    }
    Ok(Json(Consent {
        contact_id: contact,
        opted_out: true,
        enrollments_ended: ended.unwrap_or(0),
    }))
}

/// Allow proactive messages to a contact again (their explicit request, recorded by a
/// member). Ended enrollments stay ended.
#[utoipa::path(post, path = "/v1/contacts/{id}/opt-in", tag = "contacts",
    params(("id" = String, Path, description = "contact id")),
    responses((status = 200, body = Consent), (status = 404, body = crate::error::Problem)))]
async fn opt_in(
    State(state): State<AppState>,
    member: Member<Editor>,
    ip: ClientIp,
    Id(ContactId(contact)): Id<resource::Contact>,
) -> Result<Json<Consent>, ApiError> {
    contact_exists(&state, &member, contact).await?;
    if state
        .store
        .opt_in(&member.scope, ContactId(contact))
        .await?
    {
        audit(
            &state,
            &member,
            ip,
            "contact.opt_in",
            "contact",
            contact.to_string(),
            serde_json::json!({ "source": "api" }),
        )
        .await?;
    }
    Ok(Json(Consent {
        contact_id: contact,
        opted_out: false,
        enrollments_ended: 0,
    }))
}

async fn contact_exists(
    state: &AppState,
    member: &Member<Editor>,
    contact: Uuid,
) -> Result<(), ApiError> {
    // Imported contacts who never wrote have no conversation, and may opt out all the same.
    state
        .store
        .contact(&member.scope, ContactId(contact))
        .await
        .map(|_| ())
        .map_err(ApiError::from)
}
