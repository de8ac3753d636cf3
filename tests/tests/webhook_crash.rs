//! kill -9 of the gateway during a burst of signed WhatsApp webhooks: every webhook it
//! acknowledged is stored after the restart, and every stored message has exactly one answer
//! job; the provider's redelivery of the whole burst adds nothing twice.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coach_e2e::Gateway;
use hmac::Mac;
use serde_json::{Value, json};

const SECRET: &str = "crash-app-secret";
const PHONE_ID: &str = "106540352242922";
const BURST: usize = 300;

fn body(i: usize) -> (Vec<u8>, String) {
    let from = format!("4915100{:04}", i % 37);
    let body = serde_json::to_vec(&json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "1", "phone_number_id": PHONE_ID },
        "contacts": [{ "profile": { "name": "P" }, "wa_id": from }],
        "messages": [{ "from": from, "id": format!("wamid.crash.{i}"), "timestamp": "1700000000", "type": "text", "text": { "body": format!("message {i}") } }] } }] }] }))
    .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    (
        body,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
    )
}

const ENV: &[(&str, &str)] = &[("GATEWAY__WIDGET__DEMO", "false")];

#[tokio::test]
async fn acknowledged_webhooks_survive_kill_9_and_get_one_answer_job_each() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::start(data.clone(), ENV).await.unwrap();
    let http = reqwest::Client::new();
    let pair: Value = http
        .post(format!("{}/v1/auth/register", gw.base_url))
        .json(&json!({ "email": "crash@example.com", "password": "violet-quarry-Tundra-88", "tenant_name": "Crash" }))
        .send().await.unwrap().json().await.unwrap();
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let channel: Value = http
        .post(format!("{}/v1/channels", gw.base_url))
        .bearer_auth(&token)
        .json(&json!({ "kind": "whatsapp", "name": "WA", "config": { "phone_number_id": PHONE_ID, "access_token": "EAAG", "app_secret": SECRET, "verify_token": "v" } }))
        .send().await.unwrap().json().await.unwrap();
    let path = format!("/webhooks/whatsapp/{}", channel["id"].as_str().unwrap());

    // The burst, 16 at a time; the process is killed once a third has been acknowledged.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let url = format!("{}{path}", gw.base_url);
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (http, url, acknowledged, next) = (
            http.clone(),
            url.clone(),
            acknowledged.clone(),
            next.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= BURST {
                    break;
                }
                let (b, sig) = body(i);
                match http
                    .post(&url)
                    .header("x-hub-signature-256", sig)
                    .body(b)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        acknowledged
                            .lock()
                            .unwrap()
                            .insert(format!("wamid.crash.{i}"));
                    }
                    Ok(_) => {}
                    Err(_) => break, // the process is gone
                }
            }
        }));
    }
    let mut gw = gw;
    loop {
        if acknowledged.lock().unwrap().len() >= BURST / 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    gw.child.start_kill().unwrap();
    gw.child.wait().await.unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() >= BURST / 3 && acked.len() < BURST,
        "killed mid-burst: {} acknowledged",
        acked.len()
    );

    let restarted = Gateway::start(data.clone(), ENV).await.unwrap();
    let (stored, jobs) = inbound_and_jobs(&data).await;
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert_eq!(jobs, stored.len(), "one answer job per stored message");
    eprintln!(
        "kill -9 after {} acknowledged: {} stored (the rest were in flight, not acknowledged)",
        acked.len(),
        stored.len()
    );

    // The provider redelivers the whole burst: everything is stored once.
    let url = format!("{}{path}", restarted.base_url);
    for i in 0..BURST {
        let (b, sig) = body(i);
        let status = http
            .post(&url)
            .header("x-hub-signature-256", sig)
            .body(b)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let (stored, jobs) = inbound_and_jobs(&data).await;
    assert_eq!((stored.len(), jobs), (BURST, BURST));
    assert_eq!(restarted.terminate().await.unwrap(), Some(0));
}

/// Dedup keys of stored inbound messages and the number of answer jobs, read from the SQLite
/// file beside the running gateway (WAL: readers do not block it).
async fn inbound_and_jobs(data: &std::path::Path) -> (BTreeSet<String>, usize) {
    use sqlx::ConnectOptions;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("gateway.db"))
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let keys: Vec<(String,)> =
        sqlx::query_as("SELECT dedup_key FROM messages WHERE direction = 'in'")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let (jobs,): (i64,) =
        sqlx::query_as("SELECT COUNT(DISTINCT message_id) FROM jobs WHERE kind = 'answer'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    (keys.into_iter().map(|(k,)| k).collect(), jobs as usize)
}
