//! The OpenAPI 3.1 document (`/openapi.json`, generated from the handlers' annotations) and the
//! browsable UI at `/docs`. Routes outside the document are listed in [`PUBLIC_ROUTES`].

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Routes served without tenant authentication and outside the admin API document. The
/// cross-tenant tests walk every route of the document and these; a route in neither fails.
pub const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
];

/// Routes for the gateway's operators only: every tenant member gets 403 there.
pub const OPERATOR_PREFIX: &str = "/v1/platform/";

/// Document routes that need no bearer token.
pub const UNAUTHENTICATED_API: &[(&str, &str)] = &[
    ("POST", "/v1/auth/register"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/accept-invite"),
    ("POST", "/v1/auth/password-reset"),
    ("POST", "/v1/auth/password-reset/confirm"),
];

#[derive(OpenApi)]
#[openapi(
    info(title = "Coaching gateway admin API", description = "Manage a creator's coach: channels, conversations, members and more. Errors are application/problem+json."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags((name = "auth"), (name = "channels"), (name = "conversations"), (name = "audit"), (name = "tenant"), (name = "members"), (name = "contacts"), (name = "api-keys"), (name = "platform"), (name = "outbox"), (name = "programs"), (name = "events"), (name = "analytics"))
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
