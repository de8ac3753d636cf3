//! The SMS plugin loaded from its cdylib, and libraries that are not plugins.

use std::sync::Arc;

use axum::http::StatusCode;
use coach_gateway::tenancy::SystemScope;
use serde_json::json;

use crate::api_support::*;
use crate::common::Backend;
use crate::support::*;

crate::against_every_backend!(the_sms_plugin_carries_a_conversation,);

/// The SMS plugin: the cdylib loads through the C ABI, a Twilio-signed webhook is stored, and
/// a reply goes out through the Messages API.
pub(crate) async fn the_sms_plugin_carries_a_conversation(b: &Backend) {
    let w = world(b, false).await;
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        plugin_library(),
        plugins.path().join("libcoach_sms_twilio.so"),
    )
    .unwrap();
    let mut config = (*w.app.state.config).clone();
    config.providers.plugin_dir = plugins.path().display().to_string();
    let defaults = coach_gateway::connectors::Connectors::load(Arc::new(config.clone())).unwrap();
    assert_eq!(
        defaults.api_base_url(&"sms".parse().unwrap()),
        "https://api.twilio.com",
        "the plugin's own default, unless the operator sets one"
    );
    config.providers.plugins.insert(
        "sms".into(),
        coach_gateway::config::ProviderConfig {
            api_base_url: w.fake.base_url.clone(),
        },
    );
    let connectors = coach_gateway::connectors::Connectors::load(Arc::new(config)).unwrap();
    assert!(connectors.kinds().contains(&"sms".to_owned()));
    let mut app = App {
        state: w.app.state.clone().with_connectors(connectors),
        router: w.app.router.clone(),
    };
    app.router = coach_gateway::http::router(app.state.clone());
    let owner = app.register("sms@example.com").await;
    let t = token(&owner).to_owned();
    let sid = "AC0123456789abcdef0123456789abcdef";
    let (status, channel) = app
        .call("POST", "/v1/channels", Some(&t), Some(json!({ "kind": "sms", "name": "SMS", "config": { "account_sid": sid, "auth_token": "twilio-token", "from_number": "+15550001111" } })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let (status, bad) = app
        .call(
            "POST",
            "/v1/channels",
            Some(&t),
            Some(json!({ "kind": "sms", "name": "SMS", "config": { "account_sid": "nope" } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let url = channel["webhook_url"].as_str().unwrap().to_owned();
    let path = url
        .trim_start_matches(&*app.state.config.public_url)
        .to_owned();
    let pairs = [
        ("AccountSid", sid),
        ("MessageSid", "SM1"),
        ("From", "+4915100"),
        ("To", "+15550001111"),
        ("Body", "Hello coach"),
        ("NumMedia", "0"),
        ("SmsStatus", "received"),
    ];
    let params: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let signature = coach_sms_twilio::signature("twilio-token", &url, &params);
    let send = |sig: String| {
        let req = axum::http::Request::post(&path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let router = app.router.clone();
        async move {
            use tower::ServiceExt;
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, twiml) = send(signature.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(twiml.contains("<Response>"), "{twiml}");
    assert_eq!(send(signature).await.0, StatusCode::OK, "a redelivery");
    assert_eq!(send("forged".into()).await.0, StatusCode::UNAUTHORIZED);
    let (_, convs) = app.call("GET", "/v1/conversations", Some(&t), None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 1);
    let conv = convs["items"][0]["id"].as_str().unwrap().to_owned();
    app.call(
        "POST",
        &format!("/v1/conversations/{conv}/messages"),
        Some(&t),
        Some(json!({ "text": "Hi! How can I help?" })),
    )
    .await;
    // SMS carries no library files: refused up front, nothing queued.
    let (_, file) = app
        .upload_to(
            "/v1/files",
            &t,
            "plan.pdf",
            "application/pdf",
            crate::files::PDF,
        )
        .await;
    let (status, body) = app
        .call(
            "POST",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&t),
            Some(json!({ "file_id": file["id"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("cannot carry files"),
        "{body}"
    );
    let sys = SystemScope::new("test");
    coach_gateway::outbox::poll_once(
        &*app.state.store,
        &*app.state.sender,
        &app.state.config.outbox,
        &sys,
    )
    .await
    .unwrap();
    let sent = w
        .fake
        .requests_to(&format!("/2010-04-01/Accounts/{sid}/Messages.json"));
    assert_eq!(sent.len(), 1);
    let form = sent[0].form();
    assert!(form.contains(&("To".into(), "+4915100".into())), "{form:?}");
    assert!(form.contains(&("Body".into(), "Hi! How can I help?".into())));
    assert!(
        sent[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
    let (_, msgs) = app
        .call(
            "GET",
            &format!("/v1/conversations/{conv}/messages"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(msgs["items"][1]["status"], "sent");
    assert!(
        msgs["items"][1]["provider_message_id"]
            .as_str()
            .unwrap()
            .starts_with("SM")
    );
}

/// The built example plugin (cargo builds the cdylib with the workspace).
fn plugin_library() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = format!(
        "{}coach_sms_twilio{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    [deps.join(&name), deps.parent().unwrap().join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{name} is missing: build with `cargo test --workspace`"))
}

#[tokio::test]
pub(crate) async fn a_library_that_is_not_a_plugin_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libnot_a_plugin.so");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    let err = coach_gateway::connectors::plugins::load_dir(dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("libnot_a_plugin.so") && err.contains("cannot load"),
        "{err}"
    );
    assert!(
        coach_gateway::connectors::plugins::load_dir(&dir.path().join("absent"))
            .unwrap()
            .is_empty()
    );
}
