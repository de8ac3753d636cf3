//! A loopback stand-in for the providers we cannot run here (WhatsApp's Graph API, Telegram's
//! Bot API, Twilio's Messages API): it answers in their documented formats, records every
//! request, and can be told to fail the next calls (429 with `Retry-After`, 5xx, error codes,
//! slow answers). Telegram's `getUpdates` serves updates queued with [`FakeProvider::push_update`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The path (with the bot token, for Telegram).
    pub path: String,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as form fields.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded_pairs(&self.body)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Clone, Debug)]
pub struct Part {
    /// The field's name.
    pub name: String,
    /// The file name, for a file.
    pub filename: Option<String>,
    /// The part's type, for a file.
    pub content_type: Option<String>,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Recorded {
    /// The body's parts when it is `multipart/form-data` (read by axum's parser, as a
    /// provider's server reads it), else none.
    pub async fn parts(&self) -> Vec<Part> {
        multipart_parts(self.header("content-type").unwrap_or(""), &self.body).await
    }
}

async fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Part> {
    use axum::extract::FromRequest as _;
    let Ok(request) = axum::http::Request::builder()
        .header(axum::http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body.to_vec()))
    else {
        return Vec::new();
    };
    let Ok(mut form) = axum::extract::Multipart::from_request(request, &()).await else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let Ok(bytes) = field.bytes().await else {
            break;
        };
        parts.push(Part {
            name,
            filename,
            content_type,
            bytes: bytes.to_vec(),
        });
    }
    parts
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// A scripted answer for the next request whose path contains `path`.
#[derive(Clone, Debug)]
struct Scripted {
    path: String,
    status: u16,
    body: Value,
    headers: Vec<(String, String)>,
    delay: Duration,
}

/// The clock the WhatsApp window rule is judged on: unix seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// WhatsApp's customer-service window, enforced as the Graph API does: a free-form message to
/// someone who has not written in the last 24 hours fails with error 131047.
struct WindowRule {
    clock: Clock,
    last_wrote: std::collections::HashMap<String, i64>,
    violations: Vec<Value>,
}

#[derive(Default)]
struct Inner {
    window: Option<WindowRule>,
    files: std::collections::HashMap<String, (String, Vec<u8>)>,
    requests: Vec<Recorded>,
    script: VecDeque<Scripted>,
    updates: Vec<Value>,
    next_id: u64,
    /// `getUpdates` calls being answered now, and how many arrived while another was: the
    /// real Bot API answers those 409 Conflict (one poller per bot).
    polls_in_flight: u32,
    overlapping_polls: u32,
}

/// The running fake; it stops with the test's runtime.
#[derive(Clone)]
pub struct FakeProvider {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeProvider {
    /// Start on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        Self {
            base_url: crate::serve_loopback(app).await,
            inner,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answer the next request whose path contains `path` with this status, body and headers.
    pub fn fail_next(&self, path: &str, status: u16, body: Value, headers: &[(&str, &str)]) {
        self.lock().script.push_back(Scripted {
            path: path.into(),
            status,
            body,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            delay: Duration::ZERO,
        });
    }

    /// Answer the next request whose path contains `path` normally, but only after `delay`.
    pub fn delay_next(&self, path: &str, delay: Duration) {
        self.lock().script.push_back(Scripted {
            path: path.into(),
            status: 0,
            body: Value::Null,
            headers: Vec::new(),
            delay,
        });
    }

    /// Answer every request to exactly `path` with 200, this content type and these bytes
    /// (media metadata and downloads).
    pub fn serve(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) {
        self.lock()
            .files
            .insert(path.into(), (content_type.into(), body.into()));
    }

    /// Enforce WhatsApp's 24-hour window on `clock` from now on: free-form messages to a
    /// recipient whose last message ([`FakeProvider::customer_wrote`]) is 24 hours old or
    /// more are refused with 131047 and counted.
    pub fn enforce_whatsapp_window(&self, clock: Clock) {
        self.lock().window = Some(WindowRule {
            clock,
            last_wrote: std::collections::HashMap::new(),
            violations: Vec::new(),
        });
    }

    /// Tell the window rule that `wa_id` wrote at `unix_secs`.
    pub fn customer_wrote(&self, wa_id: &str, unix_secs: i64) {
        if let Some(w) = &mut self.lock().window {
            w.last_wrote.insert(wa_id.to_owned(), unix_secs);
        }
    }

    /// The free-form messages refused for the window so far.
    pub fn window_violations(&self) -> Vec<Value> {
        self.lock()
            .window
            .as_ref()
            .map_or_else(Vec::new, |w| w.violations.clone())
    }

    /// Queue a Telegram update for `getUpdates`.
    pub fn push_update(&self, update: Value) {
        self.lock().updates.push(update);
    }

    /// How many `getUpdates` calls arrived while another was being answered (the real Bot
    /// API refuses those with 409 Conflict).
    pub fn overlapping_polls(&self) -> u32 {
        self.lock().overlapping_polls
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The requests whose path contains `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(path))
            .collect()
    }
}

/// One `getUpdates` being answered.
struct InFlight(Arc<Mutex<Inner>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut inner = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.polls_in_flight = inner.polls_in_flight.saturating_sub(1);
    }
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (scripted, id, updates) = {
        let mut inner = inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.requests.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: body.to_vec(),
        });
        if let Some((content_type, bytes)) = inner.files.get(&path).cloned() {
            return ([(axum::http::header::CONTENT_TYPE, content_type)], bytes).into_response();
        }
        let scripted = inner
            .script
            .iter()
            .position(|s| path.contains(&s.path))
            .and_then(|i| inner.script.remove(i));
        inner.next_id += 1;
        let id = inner.next_id;
        let updates = if path.ends_with("/getUpdates") {
            let offset = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| b.get("offset").and_then(Value::as_i64))
                .unwrap_or(0);
            inner
                .updates
                .retain(|u| u.get("update_id").and_then(Value::as_i64).unwrap_or(0) >= offset);
            if inner.polls_in_flight > 0 {
                inner.overlapping_polls += 1;
            }
            inner.polls_in_flight += 1;
            Some(inner.updates.clone())
        } else {
            None
        };
        (scripted, id, updates)
    };
    // Counted out when this answer is done or dropped (a client that hung up).
    let _poll = updates.is_some().then(|| InFlight(inner.clone()));
    if let Some(s) = &scripted {
        tokio::time::sleep(s.delay).await;
        if s.status != 0 {
            let mut response = (
                StatusCode::from_u16(s.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(s.body.clone()),
            )
                .into_response();
            for (k, v) in &s.headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::try_from(k.as_str()),
                    axum::http::HeaderValue::try_from(v.as_str()),
                ) {
                    response.headers_mut().insert(k, v);
                }
            }
            return response;
        }
    }
    if let Some(updates) = updates {
        if updates.is_empty() {
            // A short long-poll: enough for the loop not to spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return axum::Json(json!({ "ok": true, "result": updates })).into_response();
    }
    if path.contains("/bot") {
        let result = if path.ends_with("/sendMessage") || path.contains("/send") {
            json!({ "message_id": id, "date": 1_700_000_000, "chat": { "id": 0, "type": "private" } })
        } else {
            json!(true)
        };
        return axum::Json(json!({ "ok": true, "result": result })).into_response();
    }
    // Graph's media upload: a multipart form with the file, its type and the product.
    if path.ends_with("/media") && method == Method::POST {
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let parts = multipart_parts(content_type, &body).await;
        let field = |n: &str| parts.iter().find(|p| p.name == n);
        let complete = field("messaging_product").is_some_and(|p| p.bytes == b"whatsapp")
            && field("type").is_some()
            && field("file").is_some_and(|p| !p.bytes.is_empty() && p.filename.is_some());
        if !complete {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": { "message": "(#100) Param file must be a file with one of the supported types", "type": "OAuthException", "code": 100 } })),
            )
                .into_response();
        }
        return axum::Json(json!({ "id": format!("{}", 4_490_000_000_000_000u64 + id) }))
            .into_response();
    }
    if path.ends_with("/Messages.json") {
        return (
            StatusCode::CREATED,
            axum::Json(json!({ "sid": format!("SM{id:032}"), "status": "queued" })),
        )
            .into_response();
    }
    if path.ends_with("/messages") {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if body.get("status").and_then(Value::as_str) == Some("read") {
            return axum::Json(json!({ "success": true })).into_response();
        }
        if outside_window(&inner, &body) {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": {
                    "message": "(#131047) Re-engagement message", "type": "OAuthException",
                    "code": 131_047, "error_data": { "messaging_product": "whatsapp",
                    "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
                    "fbtrace_id": "AbCdEf" } })),
            )
                .into_response();
        }
        return axum::Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": body.get("to"), "wa_id": body.get("to") }],
            "messages": [{ "id": format!("wamid.out.{id}") }],
        }))
        .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": "no such fake endpoint" })),
    )
        .into_response()
}

/// Whether a Graph API message breaks the window rule (and record it if so).
fn outside_window(inner: &Mutex<Inner>, body: &Value) -> bool {
    let mut inner = inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(rule) = &mut inner.window else {
        return false;
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or_default();
    if kind == "template" || kind.is_empty() {
        return false;
    }
    let to = body.get("to").and_then(Value::as_str).unwrap_or_default();
    let now = (rule.clock)();
    let open = rule
        .last_wrote
        .get(to)
        .is_some_and(|wrote| now - wrote < 24 * 3600);
    if !open {
        rule.violations.push(body.clone());
    }
    !open
}
