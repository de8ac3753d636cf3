//! Files in the widget, on SQLite and PostgreSQL: a file the team sends from the library, and
//! one the visitor sent, reach the visitor's socket with a link signed for that message; the
//! link serves the bytes (an image as an image, a PDF as a download with `nosniff`) and
//! nothing else: a changed signature, a later expiry, an expired link, another channel or a
//! file removed from the library are all 404.

use axum::http::StatusCode;
use coach_gateway::config::Config;
use serde_json::{Value, json};

use crate::against_every_backend;
use crate::api_support::*;
use crate::common::Backend;
use crate::widget::{ORIGIN, connect, hello, next, send, serve};
use crate::widget_upload::{PNG, file, upload, with};

against_every_backend!(the_widget_shows_a_file_behind_a_signed_link,);

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

/// The next `event` frame whose message carries a file.
async fn next_file(ws: &mut crate::widget::Socket) -> Value {
    loop {
        let frame = next(ws).await.expect("the socket closed");
        if frame["type"] == "event" && frame["message"].get("file").is_some() {
            return frame["message"].clone();
        }
    }
}

async fn the_widget_shows_a_file_behind_a_signed_link(b: &Backend) {
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        public_url: "https://coach.example".into(),
        data_dir: data.path().to_path_buf(),
        ..Config::default()
    };
    let app = app_with(b, config);
    let owner = app.register("widget-files@example.com").await;
    let t = token(&owner);
    let channel = |name: &str| json!({ "kind": "web_widget", "name": name, "config": { "allowed_origins": [ORIGIN] } });
    let (_, site) = app
        .call("POST", "/v1/channels", Some(t), Some(channel("Site")))
        .await;
    let (_, other) = app
        .call("POST", "/v1/channels", Some(t), Some(channel("Other")))
        .await;
    let id = site["id"].as_str().unwrap().to_owned();
    let base = serve(&app).await;
    let http = base.replacen("ws://", "http://", 1);

    let mut ws = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    let welcome = hello(&mut ws, json!({})).await;
    let visitor = welcome["visitor_token"].as_str().unwrap().to_owned();
    send(
        &mut ws,
        json!({ "type": "message", "client_id": "c1", "text": "hi" }),
    )
    .await;
    let (_, convs) = app.call("GET", "/v1/conversations", Some(t), None).await;
    let mut conv = convs["items"][0]["id"].as_str().map(str::to_owned);
    for _ in 0..50 {
        if conv.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, convs) = app.call("GET", "/v1/conversations", Some(t), None).await;
        conv = convs["items"][0]["id"].as_str().map(str::to_owned);
    }
    let conv = conv.expect("the visitor's conversation");

    let (status, pdf) = app
        .upload_to("/v1/files", t, "plan.pdf", "application/pdf", PDF)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{pdf}");
    let (_, png) = app
        .upload_to("/v1/files", t, "chart.png", "image/png", PNG)
        .await;
    for (file, caption) in [(&pdf, ""), (&png, "Your chart")] {
        let (status, body) = app
            .call(
                "POST",
                &format!("/v1/conversations/{conv}/messages"),
                Some(t),
                Some(json!({ "text": caption, "file_id": file["id"] })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let shown_pdf = next_file(&mut ws).await;
    assert_eq!(shown_pdf["direction"], "out");
    assert_eq!(shown_pdf["text"], "\u{1f4ce} plan.pdf");
    assert_eq!(shown_pdf["file"]["kind"], "file");
    assert_eq!(shown_pdf["file"]["name"], "plan.pdf");
    let shown_png = next_file(&mut ws).await;
    assert_eq!(shown_png["text"], "Your chart");
    assert_eq!(shown_png["file"]["kind"], "image");

    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let url = shown_pdf["file"]["url"].as_str().unwrap().to_owned();
    let resp = get(format!("{http}{url}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    assert_eq!(&resp.bytes().await.unwrap()[..], PDF);
    let image = get(format!(
        "{http}{}",
        shown_png["file"]["url"].as_str().unwrap()
    ))
    .await;
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(&image.bytes().await.unwrap()[..], PNG);

    // Only that link opens it.
    let parsed = url::Url::parse(&format!("{http}{url}")).unwrap();
    let query: std::collections::HashMap<String, String> =
        parsed.query_pairs().into_owned().collect();
    let message = parsed.path().rsplit('/').next().unwrap().to_owned();
    let exp: i64 = query["exp"].parse().unwrap();
    let sig = query["sig"].clone();
    let key = app.state.secrets.signing_key().to_vec();
    let link = |channel: &str, exp: i64, sig: &str| {
        format!("{http}/widget/file/{message}?channel={channel}&exp={exp}&sig={sig}")
    };
    let mut flipped = sig.clone();
    let last = if flipped.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(flipped.len() - 1.., last);
    let other_id = other["id"].as_str().unwrap();
    let past = chrono::Utc::now().timestamp() - 60;
    let signed = |channel: &str, exp: i64| {
        coach_web_widget::identity::file_signature(&key, channel, &message, exp).unwrap()
    };
    for bad in [
        link(&id, exp, &flipped),
        link(&id, exp + 1, &sig),
        link(&id, past, &signed(&id, past)),
        link(other_id, exp, &signed(other_id, exp)),
        link(&id, exp, "not-hex"),
    ] {
        assert_eq!(get(bad.clone()).await.status(), 404, "{bad}");
    }

    // The visitor's own upload comes back with its link too.
    let (status, _, body) = upload(
        &app,
        &id,
        ORIGIN,
        &with(&visitor, "c9", file("me.png", PNG)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Live it was shown from the widget's own preview; its history carries the link.
    let mut again = connect(&base, &id, Some(ORIGIN)).await.unwrap();
    hello(&mut again, json!({ "token": visitor, "resume_after": 3 })).await;
    let mine = next_file(&mut again).await;
    assert_eq!(mine["direction"], "in");
    assert_eq!(mine["file"]["kind"], "image");
    let image = get(format!("{http}{}", mine["file"]["url"].as_str().unwrap())).await;
    assert_eq!(&image.bytes().await.unwrap()[..], PNG);

    // Removed from the library: the link is dead.
    let (status, _) = app
        .call(
            "DELETE",
            &format!("/v1/files/{}", pdf["id"].as_str().unwrap()),
            Some(t),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get(format!("{http}{url}")).await.status(), 404);
}
