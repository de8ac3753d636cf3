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
    ("POST", "/v1/auth/verify-email"),
    ("POST", "/v1/auth/verify-email/resend"),
    // The widget reads its channel's public settings before a visitor is anyone.
    ("GET", "/v1/widget/config/{channel_id}"),
];

#[derive(OpenApi)]
#[openapi(
    info(title = "Coaching gateway admin API", description = "Manage a creator's coach: channels, conversations, members and more. Errors are application/problem+json."),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags((name = "auth"), (name = "channels"), (name = "conversations"), (name = "audit"), (name = "tenant"), (name = "members"), (name = "contacts"), (name = "api-keys"), (name = "platform"), (name = "outbox"), (name = "programs"), (name = "events"), (name = "analytics"), (name = "files"))
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

/// The errors any operation may answer, each an `application/problem+json` [`crate::error::Problem`].
const ERRORS: &[(&str, &str, Applies)] = &[
    (
        "400",
        "The request is malformed (a query, header or path value).",
        Applies::Always,
    ),
    ("401", "No valid credentials.", Applies::Authenticated),
    (
        "403",
        "The credentials do not allow this.",
        Applies::Authenticated,
    ),
    (
        "404",
        "Nothing with this id in the caller's tenant.",
        Applies::WithPathParameters,
    ),
    ("409", "It conflicts with what exists.", Applies::WithBody),
    (
        "413",
        "The body is over http.body_limit_bytes (uploads: brain.max_upload_bytes).",
        Applies::WithBody,
    ),
    (
        "415",
        "The body is not of a documented content type.",
        Applies::WithBody,
    ),
    (
        "422",
        "The body is well-formed but not valid.",
        Applies::WithBody,
    ),
    (
        "429",
        "Too many requests: wait for Retry-After.",
        Applies::Always,
    ),
    (
        "503",
        "A dependency (the database, the models) is not available.",
        Applies::Always,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    Always,
    Authenticated,
    WithPathParameters,
    WithBody,
}

/// Completes the generated document: the bearer scheme is the default security (declared once;
/// the routes of [`UNAUTHENTICATED_API`] say they need none), and every operation documents the
/// errors it can give as `application/problem+json` with the problem schema, so generated
/// clients and schema-driven fuzzers know every answer. A channel's `kind` lists the
/// connectors this gateway runs (`channel_kinds`: built-in and plugins).
pub fn finish(doc: &utoipa::openapi::OpenApi, channel_kinds: &[String]) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).unwrap_or_default();
    complete(&mut value);
    if let Some(kind) = value
        .pointer_mut("/components/schemas/CreateChannel/properties/kind")
        .and_then(serde_json::Value::as_object_mut)
    {
        kind.insert("enum".into(), channel_kinds.into());
    }
    value
}

fn complete(doc: &mut serde_json::Value) {
    use serde_json::{Value, json};
    doc["security"] = json!([{ "bearer": [] }]);
    let problem = json!({ "$ref": "#/components/schemas/Problem" });
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let open = UNAUTHENTICATED_API
                .iter()
                .any(|(m, p)| m.eq_ignore_ascii_case(method) && p == path);
            if open {
                operation.insert("security".into(), json!([]));
            } else {
                operation.remove("security");
            }
            let has_body = operation.contains_key("requestBody");
            let responses = operation
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            let Some(responses) = responses else { continue };
            // Problems the handlers declared are problem+json, not plain JSON.
            for response in responses.values_mut() {
                let Some(content) = response.get_mut("content").and_then(Value::as_object_mut)
                else {
                    continue;
                };
                if content
                    .get("application/json")
                    .is_some_and(|c| c["schema"] == problem)
                    && let Some(c) = content.remove("application/json")
                {
                    content.insert("application/problem+json".into(), c);
                }
            }
            for (status, description, applies) in ERRORS {
                let wanted = match applies {
                    Applies::Always => true,
                    Applies::Authenticated => !open || *status == "401",
                    Applies::WithPathParameters => path.contains('{'),
                    Applies::WithBody => has_body,
                };
                if wanted && !responses.contains_key(*status) {
                    responses.insert(
                        (*status).into(),
                        json!({ "description": description,
                                "content": { "application/problem+json": { "schema": problem } } }),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn security_is_declared_once_and_errors_are_problems() {
        let mut doc = json!({ "paths": {
            "/v1/things/{id}": { "get": { "security": [{ "bearer": [] }], "responses": {
                "200": { "description": "ok" },
                "404": { "description": "gone", "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Problem" } } } } } } },
            "/v1/auth/login": { "post": { "requestBody": {}, "responses": {} } }
        } });
        super::complete(&mut doc);
        assert_eq!(doc["security"], json!([{ "bearer": [] }]));
        let get = &doc["paths"]["/v1/things/{id}"]["get"];
        assert!(
            get.get("security").is_none(),
            "inherited, not repeated: {get}"
        );
        for status in ["400", "401", "403", "404", "429", "503"] {
            assert!(
                get["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"]
                    .as_str()
                    .is_some_and(|r| r.ends_with("/Problem")),
                "{status}: {get}"
            );
        }
        assert!(get["responses"].get("413").is_none(), "no body, no 413");
        assert_eq!(
            get["responses"]["404"]["description"], "gone",
            "declared ones are kept"
        );
        let login = &doc["paths"]["/v1/auth/login"]["post"];
        assert_eq!(login["security"], json!([]));
        assert!(login["responses"].get("403").is_none());
        for status in ["401", "413", "415", "422"] {
            assert!(
                login["responses"].get(status).is_some(),
                "{status}: {login}"
            );
        }
    }
}
