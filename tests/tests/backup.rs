//! `gateway backup` and `gateway restore` as an operator runs them: a backup taken while the
//! gateway serves, refused restores (no master key, another key, a data directory in use), and a
//! restore on "another machine" that serves the same accounts, conversations, media and search.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coach_e2e::{Gateway, gateway_bin};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

const ENV: [(&str, &str); 3] = [
    (
        "GATEWAY__BRAIN__GENERATION_MODEL",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    ("GATEWAY__WIDGET__DEMO", "false"),
    ("GATEWAY__LOG__FILTER", "warn"),
];

/// Run `gateway ARGS` on `data_dir`: (exit code, stdout, stderr).
async fn gateway(data_dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(gateway_bin())
        .args(args)
        .env("GATEWAY__DATA_DIR", data_dir)
        .env("GATEWAY__BRAIN__MODELS_DIR", models())
        .envs(ENV)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn start(data_dir: PathBuf) -> Gateway {
    let models = models();
    let mut env: Vec<(&str, &str)> = ENV.to_vec();
    env.push(("GATEWAY__BRAIN__MODELS_DIR", models.to_str().unwrap()));
    Gateway::start(data_dir, &env).await.unwrap()
}

async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The top passage's (document id, text) for a question.
async fn top_passage(base: &str, token: &str) -> (String, String) {
    let (status, found) = call(
        base,
        "POST",
        "/v1/search",
        Some(token),
        Some(json!({ "query": "How long do I hold my breath in box breathing?" })),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let top = &found["passages"][0];
    (
        top["document_id"].as_str().unwrap().to_owned(),
        top["text"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_on_another_machine() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    let source = start(a.clone()).await;
    let base = source.base_url.clone();
    let (status, pair) = call(
        &base,
        "POST",
        "/v1/auth/register",
        None,
        Some(
            json!({ "email": "keeper@example.com", "password": "violet-quarry-Tundra-88",
                      "tenant_name": "Keeper" }),
        ),
    )
    .await;
    assert_eq!(status, 201, "{pair}");
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let tenant = pair["tenant_id"].as_str().unwrap().to_owned();

    // A document, indexed.
    let text = "# Box breathing\n\nBreathe in for four counts, hold your breath for four counts, \
                breathe out for four counts and hold again for four counts.\n\n# Sleep\n\n\
                Keep the same wake-up time every day, weekends included.\n";
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(text.as_bytes().to_vec())
            .file_name("breathing.md")
            .mime_str("text/markdown")
            .unwrap(),
    );
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/documents"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let document: Value = resp.json().await.unwrap();
    let document_id = document["id"].as_str().unwrap().to_owned();
    let mut ready = false;
    for _ in 0..300 {
        let (_, d) = call(
            &base,
            "GET",
            &format!("/v1/documents/{document_id}"),
            Some(&token),
            None,
        )
        .await;
        if d["status"] == "ready" {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "the document was not indexed");
    let before = top_passage(&base, &token).await;
    assert_eq!(before.0, document_id);

    // A conversation, from a signed WhatsApp webhook.
    let secret = "keeper-app-secret";
    let (status, channel) = call(
        &base,
        "POST",
        "/v1/channels",
        Some(&token),
        Some(json!({ "kind": "whatsapp", "name": "wa", "config": {
            "phone_number_id": "106540352242977", "access_token": "EAAG-keeper",
            "app_secret": secret, "verify_token": "verify-keeper" } })),
    )
    .await;
    assert_eq!(status, 201, "{channel}");
    let raw =
        json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{
        "field": "messages", "value": { "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550001111", "phone_number_id": "106540352242977" },
        "contacts": [{ "profile": { "name": "Rui" }, "wa_id": "351910000001" }],
        "messages": [{ "from": "351910000001", "id": "wamid.keep.1", "timestamp": "1700000000",
                       "type": "text", "text": { "body": "I keep waking up at 4am" } }] } }] }] })
        .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(raw.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let resp = reqwest::Client::new()
        .post(format!(
            "{base}/webhooks/whatsapp/{}",
            channel["id"].as_str().unwrap()
        ))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A media file as the media job stores it.
    let media = a.join("media").join(&tenant);
    std::fs::create_dir_all(&media).unwrap();
    std::fs::write(media.join("voice.ogg"), b"OggS-not-really-audio").unwrap();

    // The backup, taken while the source serves.
    let out = root.path().join("keeper.tar.gz");
    let (code, stdout, stderr) = gateway(&a, &["backup", "--out", out.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("1 tenants") && stdout.contains("1 documents"),
        "{stdout}"
    );
    assert!(stdout.contains("1 media file(s)"), "{stdout}");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // It never overwrites a file.
    let (code, _, stderr) = gateway(&a, &["backup", "--out", out.to_str().unwrap()]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("never overwrites"), "{stderr}");
    assert!(source.terminate().await.unwrap() == Some(0));

    // Another machine: without the master key, the restore refuses and writes nothing.
    let (code, _, stderr) = gateway(&b, &["restore", out.to_str().unwrap()]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("master.key"), "{stderr}");
    assert!(!b.join("gateway.db").exists());
    // With another key, too.
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(
        b.join("master.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    .unwrap();
    let (code, _, stderr) = gateway(&b, &["restore", out.to_str().unwrap()]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("this deployment's key is"), "{stderr}");
    assert!(!b.join("gateway.db").exists());
    // With the source's key it comes back, documents indexed again.
    std::fs::copy(a.join("master.key"), b.join("master.key")).unwrap();
    let (code, stdout, stderr) = gateway(&b, &["restore", out.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("indexed 1 document(s) again"), "{stdout}");
    // Never over a deployment.
    let (code, _, stderr) = gateway(&b, &["restore", out.to_str().unwrap()]).await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("empty data directory"), "{stderr}");

    let restored = start(b.clone()).await;
    let base = restored.base_url.clone();
    let (status, pair) = call(
        &base,
        "POST",
        "/v1/auth/login",
        None,
        Some(json!({ "email": "keeper@example.com", "password": "violet-quarry-Tundra-88" })),
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let (_, convs) = call(&base, "GET", "/v1/conversations", Some(&token), None).await;
    assert_eq!(convs["items"].as_array().unwrap().len(), 1, "{convs}");
    let (_, found) = call(
        &base,
        "GET",
        "/v1/conversations?q=waking%204am",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(top_passage(&base, &token).await, before);
    assert_eq!(
        std::fs::read(b.join("media").join(&tenant).join("voice.ogg")).unwrap(),
        b"OggS-not-really-audio"
    );
    let (status, channels) = call(&base, "GET", "/v1/channels", Some(&token), None).await;
    assert_eq!(status, 200, "{channels}");
    assert_eq!(channels.as_array().map_or(0, Vec::len), 1, "{channels}");
    assert_eq!(restored.terminate().await.unwrap(), Some(0));
}
