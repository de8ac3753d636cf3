//! A widget visitor's file (`POST /widget/upload`), on SQLite and PostgreSQL: refused without a
//! valid visitor token, from a page outside the allow-list, when not an image or a PDF by its
//! bytes, over `providers.media_max_bytes` or with uploads off; otherwise stored once as an
//! inbound media message with its file kept in the media store, served to the tenant's members
//! only, and erased with the contact. The widget's public settings say whether the team is in.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use coach_gateway::config::Config;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;

against_every_backend!(a_visitor_sends_an_image_kept_like_inbound_media,);

const ORIGIN: &str = "https://site.example";

/// A real 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

pub(crate) struct Part<'a> {
    name: &'a str,
    filename: Option<&'a str>,
    bytes: &'a [u8],
}

fn text<'a>(name: &'a str, value: &'a str) -> Part<'a> {
    Part {
        name,
        filename: None,
        bytes: value.as_bytes(),
    }
}

pub(crate) fn file<'a>(filename: &'a str, bytes: &'a [u8]) -> Part<'a> {
    Part {
        name: "file",
        filename: Some(filename),
        bytes,
    }
}

/// The token and client id, then `f`.
pub(crate) fn with<'a>(visitor: &'a str, client: &'a str, f: Part<'a>) -> Vec<Part<'a>> {
    vec![text("token", visitor), text("client_id", client), f]
}

pub(crate) async fn upload(
    app: &App,
    channel: &str,
    origin: &str,
    parts: &[Part<'_>],
) -> (StatusCode, Option<String>, Value) {
    let boundary = "coach-upload-boundary-51c2";
    let mut body = Vec::new();
    for p in parts {
        let disposition = match p.filename {
            Some(f) => format!("form-data; name=\"{}\"; filename=\"{f}\"", p.name),
            None => format!("form-data; name=\"{}\"", p.name),
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(p.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method("POST")
        .uri(format!("/widget/upload?channel={channel}"))
        .header("origin", origin)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    widget_answer(app, req).await
}

/// A widget route's answer to `req`: its status, its CORS header and its JSON body.
pub(crate) async fn widget_answer(
    app: &App,
    req: Request<Body>,
) -> (StatusCode, Option<String>, Value) {
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let cors = resp
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        cors,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn a_visitor_sends_an_image_kept_like_inbound_media(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        public_url: "https://coach.example".into(),
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    };
    config.providers.media_max_bytes = 4096;
    let app = app_with(b, config);
    let owner = app.register("upload-owner@example.com").await;
    let t = Some(token(&owner));
    let channel = app
        .expect(
            StatusCode::CREATED,
            "POST",
            "/v1/channels",
            t,
            Some(json!({ "kind": "web_widget", "name": "Site",
                "config": { "allowed_origins": [ORIGIN] } })),
        )
        .await;
    let id = channel["id"].as_str().unwrap().to_owned();
    let key = app.state.secrets.signing_key().to_vec();
    let visitor = coach_web_widget::identity::visitor_token(&key, &id, "anon-uploader").unwrap();

    // Refusals store nothing.
    let v = visitor.as_str();
    let (status, cors, body) = upload(
        &app,
        &id,
        "https://evil.example",
        &with(v, "c1", file("a.png", PNG)),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        cors.as_deref(),
        Some("*"),
        "a refusal is readable by the widget"
    );
    let forged = [
        text("token", "v1.forged"),
        text("client_id", "c1"),
        file("a.png", PNG),
    ];
    assert_eq!(
        upload(&app, &id, ORIGIN, &forged).await.0,
        StatusCode::UNAUTHORIZED
    );
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>";
    let (status, _, body) = upload(&app, &id, ORIGIN, &with(v, "c1", file("cat.png", svg))).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("PNG"), "{body}");
    let big = [PNG, &[0u8; 5000][..]].concat();
    let (status, _, body) = upload(&app, &id, ORIGIN, &with(v, "c1", file("big.png", &big))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 0, "{convs}");

    // Stored once, with its file.
    let mut parts = with(v, "c2", file("breakfast.png", PNG));
    parts.push(text("caption", "My breakfast today"));
    let (status, cors, stored) = upload(&app, &id, ORIGIN, &parts).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(cors.as_deref(), Some("*"));
    let (status, _, again) = upload(&app, &id, ORIGIN, &parts).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "duplicate");
    let (_, convs) = app.call("GET", "/v1/conversations", t, None).await;
    let items = convs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{convs}");
    let conversation = items[0]["id"].as_str().unwrap();
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conversation}/messages"),
            t,
            None,
        )
        .await;
    let msgs = msgs["items"].as_array().unwrap();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(m["id"], stored["id"]);
    assert_eq!(m["content"]["kind"], "media", "{m}");
    assert_eq!(m["content"]["media"], "image");
    assert_eq!(m["content"]["caption"], "My breakfast today");
    assert_eq!(m["content"]["file"]["mime"], "image/png");
    assert_eq!(m["content"]["file"]["bytes"], PNG.len());

    let media = |who: Option<&str>| {
        let req = Request::builder()
            .uri(format!("/v1/messages/{}/media", m["id"].as_str().unwrap()))
            .header("authorization", format!("Bearer {}", who.unwrap()))
            .body(Body::empty())
            .unwrap();
        app.router.clone().oneshot(req)
    };
    let resp = media(t).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-media-kind"], "image");
    let served = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(&served[..], PNG);
    let other = app.register("upload-other@example.com").await;
    assert_eq!(
        media(Some(token(&other))).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Uploads turned off in the widget's settings: refused.
    app.expect(
        StatusCode::OK,
        "PATCH",
        &format!("/v1/channels/{id}"),
        t,
        Some(json!({ "config": { "allowed_origins": [ORIGIN], "uploads": false } })),
    )
    .await;
    let (status, _, body) = upload(&app, &id, ORIGIN, &with(v, "c3", file("b.png", PNG))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    app.expect(
        StatusCode::UNPROCESSABLE_ENTITY,
        "PATCH",
        &format!("/v1/channels/{id}"),
        t,
        Some(json!({ "config": { "uploads": "sometimes" } })),
    )
    .await;

    // The widget's public settings say whether the team is in (business hours).
    let config = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/widget/config/{id}"),
            None,
            None,
        )
        .await;
    assert!(config.get("team").is_none(), "no business hours: {config}");
    assert_eq!(config["uploads"], false);
    app.expect(
        StatusCode::OK,
        "PATCH",
        "/v1/tenant",
        t,
        Some(json!({ "business_hours": { "time_zone": "Europe/Madrid", "open": {} } })),
    )
    .await;
    let config = app
        .expect(
            StatusCode::OK,
            "GET",
            &format!("/v1/widget/config/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        config["team"],
        json!({ "away": true, "back_at": null }),
        "{config}"
    );

    // Erasing the contact removes the file; nothing is left staged.
    let contact = m["contact_id"].as_str().unwrap();
    let tenant_dir = std::fs::read_dir(data.path().join("media"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let kept = tenant_dir.join(contact).join(m["id"].as_str().unwrap());
    assert_eq!(std::fs::read(&kept).unwrap(), PNG);
    app.expect(
        StatusCode::NO_CONTENT,
        "DELETE",
        &format!("/v1/contacts/{contact}"),
        t,
        None,
    )
    .await;
    assert!(!kept.exists(), "the file is erased with the contact");
    let staged: Vec<_> = std::fs::read_dir(tenant_dir.join(".uploads"))
        .unwrap()
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}
