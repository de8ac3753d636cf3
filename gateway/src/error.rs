//! The API's one error type: every failure becomes an `application/problem+json` body
//! (RFC 9457) with a status; server errors are logged with their cause and shown without it.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 403: the account has not confirmed its e-mail address yet (`auth.verify_email`).
    #[error("{0}")]
    EmailUnconfirmed(String),
    /// 404: no such resource (for this tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: conflicts with existing state.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body is too large.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed, but the values are not acceptable.
    #[error("{0}")]
    Unprocessable(String),
    /// 429: too many requests; retry after the given time.
    #[error("too many requests: retry in {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a request would be accepted.
        retry_after_secs: u64,
        /// Requests allowed in a burst.
        limit: u32,
    },
    /// 502: a provider refused or failed a call made for this request.
    #[error("{0}")]
    BadGateway(String),
    /// 503: a backend is unavailable; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; details are logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// A problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short, human-readable summary.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request, and how to fix it.
    pub detail: String,
}

impl ApiError {
    fn status(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::EmailUnconfirmed(_) => (
                StatusCode::FORBIDDEN,
                "email-unconfirmed",
                "E-mail address not confirmed",
            ),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Unprocessable(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "Unprocessable content",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            Self::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway"),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = ?cause, "internal error");
        }
        let problem = Problem {
            kind: format!("https://coach-gateway.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
        };
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            Json(problem),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Self::TooManyRequests {
            retry_after_secs,
            limit,
        } = &self
        {
            let secs = header::HeaderValue::from(*retry_after_secs);
            headers.insert(header::RETRY_AFTER, secs.clone());
            headers.insert("ratelimit-limit", header::HeaderValue::from(*limit));
            headers.insert("ratelimit-remaining", header::HeaderValue::from(0));
            headers.insert("ratelimit-reset", secs);
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Unavailable(why) => Self::Unavailable(why),
            e @ (StoreError::Database(_) | StoreError::Migrate(_) | StoreError::Corrupt(_)) => {
                Self::Internal(e.into())
            }
        }
    }
}

/// `Json<T>` whose rejections are problem documents: malformed JSON is 400, a wrong content type
/// 415, a too-large body 413, and JSON of the wrong shape 422, each saying what was wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            )),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::PayloadTooLarge(format!(
                    "{} (the limit is http.body_limit_bytes)",
                    e.body_text()
                )))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// `Multipart` whose rejection is a problem document: a body that is not `multipart/form-data`
/// with a boundary is 415.
pub struct ApiMultipart(pub axum::extract::Multipart);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| {
                ApiError::UnsupportedMediaType(format!(
                    "{}: send the form as `multipart/form-data`",
                    e.body_text()
                ))
            })
    }
}

/// `Form<T>` (`application/x-www-form-urlencoded`) whose rejections are problem documents: a
/// body of another type is 415, fields of the wrong shape 422, each saying what was wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::FormRejection;
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(Self(value)),
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "send the form as `application/x-www-form-urlencoded`".into(),
            )),
            Err(FormRejection::FailedToDeserializeFormBody(e)) => {
                Err(ApiError::Unprocessable(e.body_text()))
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(e.body_text()))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// `Query<T>` whose rejection is a 400 problem document naming the parameter that is wrong.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
