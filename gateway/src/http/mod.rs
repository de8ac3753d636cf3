//! The HTTP surface: one router per feature module, merged here, under one stack of
//! middleware (request ids, tracing, timeout, body limit, compression, CORS, metrics).

mod analytics;
mod api_keys;
mod auth;
mod channels;
mod consent;
mod console;
mod contacts;
mod conversations;
mod documents;
pub mod events;
pub mod files;
mod health;
mod inbox;
pub mod kit;
mod knowledge;
pub mod limits;
mod members;
mod memory;
mod notify;
pub mod openapi;
mod outbox;
mod platform;
mod programs;
mod progress;
mod teamwork;
pub mod tenant;
mod webhooks;
pub mod widget;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let cors = CorsLayer::new().allow_origin(AllowOrigin::list(
        http.cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok()),
    ));
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CompressionLayer::new())
        .layer(middleware::map_response(problem_for_413))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_secs),
        ))
        // Innermost: CORS and the timeout answer with empty bodies of the router's body type.
        .layer(cors);
    let (api, doc) = utoipa_axum::router::OpenApiRouter::with_openapi(
        <openapi::ApiDoc as utoipa::OpenApi>::openapi(),
    )
    .merge(auth::router())
    .merge(channels::router())
    .merge(conversations::router())
    .merge(teamwork::router())
    .merge(memory::router())
    .merge(progress::router())
    .merge(tenant::router())
    .merge(members::router())
    .merge(api_keys::router())
    .merge(platform::router())
    .merge(knowledge::router())
    .merge(outbox::router())
    .merge(events::router())
    .merge(analytics::router())
    .merge(notify::router())
    .merge(inbox::router())
    .merge(programs::router())
    .merge(consent::router())
    .merge(widget::api_router())
    .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
    // Uploads have their own limit, `brain.max_upload_bytes` (merged after the layer above).
    .merge(documents::router(state.config.brain.max_upload_bytes))
    // Contact imports (CSV) take up to 16 MiB.
    .merge(contacts::router())
    // Library files, up to `providers.media_max_bytes`.
    .merge(files::router(state.config.providers.media_max_bytes))
    .split_for_parts();
    let rest = Router::new()
        .merge(
            utoipa_swagger_ui::SwaggerUi::new("/docs").external_url_unchecked(
                "/openapi.json",
                openapi::finish(&doc, &state.connectors.kinds()),
            ),
        )
        .merge(health::router())
        .merge(widget::router())
        .merge(widget::visitor::router())
        .merge(console::router())
        .merge(webhooks::router())
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
        // A visitor's file, up to `providers.media_max_bytes` (merged after the layer above).
        .merge(widget::upload::router(
            state.config.providers.media_max_bytes,
        ));
    Router::new()
        .merge(api)
        .merge(rest)
        .layer(middleware::from_fn(track_metrics))
        .layer(layers)
        .with_state(state)
}

/// Every 413 is a problem document, the body limit's own plain-text answer included, and says
/// which setting raises the limit.
async fn problem_for_413(response: Response) -> Response {
    let problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || problem {
        return response;
    }
    axum::response::IntoResponse::into_response(crate::error::ApiError::PayloadTooLarge(
        "the request body is too large: document uploads accept up to brain.max_upload_bytes, \
         contact imports 16 MiB, other requests up to http.body_limit_bytes"
            .into(),
    ))
}

/// Count requests and record their latency by route template (never by raw path, which would
/// put ids into label values).
async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}
