//! Widget connections against the real gateway binary (SQLite, the Redis bus, no models):
//! - idle sockets: N visitors connected and welcomed; the server's memory per connection;
//! - fan-out: visitors receiving streamed answers published on the Redis bus (as another
//!   gateway replica would): frames per second and latency from the bus to the socket;
//! - disconnect torture: replies stored through the admin API while visitors' sockets are cut
//!   and resumed: lost and duplicated messages, time to resume.
//!
//! Sizes: `BENCH_WIDGET_SOCKETS` (default 10000), `BENCH_WIDGET_STREAMING` (default 1000).
//! Client sockets spread over 127.0.0.2-127.0.0.9 to stay clear of one address's port range.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use coach_connector_api::{ConversationId, MessageId, TenantId};
use coach_gateway::bus::{AnswerPhase, Bus, RedisBus, StreamEvent, StreamPayload};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{machine, register, write_section};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

const PASSWORD: &str = "violet-quarry-Tundra-88";
const REDIS: &str = "redis://127.0.0.1:6379";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

async fn open(addr: &str, channel: &str, n: usize) -> Socket {
    let source: std::net::SocketAddr = format!("127.0.0.{}:0", 2 + n % 8).parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(source).unwrap();
    let stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    let req = format!("ws://{addr}/widget/ws?channel={channel}")
        .into_client_request()
        .unwrap();
    tokio_tungstenite::client_async(req, stream)
        .await
        .unwrap()
        .0
}

async fn next(ws: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] != "ping" {
                    return frame;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

async fn hello(ws: &mut Socket, token: Option<&str>, resume_after: i64) -> Value {
    let frame = json!({ "type": "hello", "v": 1, "token": token, "resume_after": resume_after });
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let welcome = next(ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    welcome
}

struct Gateway {
    child: std::process::Child,
    addr: String,
    data: tempfile::TempDir,
}

fn start_gateway() -> Gateway {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let prefix = format!("bench{}:", std::process::id());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("serve")
        .env("GATEWAY__HTTP__ADDR", &addr)
        .env("GATEWAY__DATA_DIR", data.path())
        // No models: the responder stays idle; the bench plays the coach.
        .env("GATEWAY__BRAIN__MODELS_DIR", data.path().join("no-models"))
        .env("GATEWAY__WIDGET__DEMO", "false")
        .env("GATEWAY__WIDGET__MESSAGES_PER_MINUTE", "100000")
        .env("GATEWAY__RATE_LIMITS__TENANT_PER_SECOND", "100000")
        .env("GATEWAY__RATE_LIMITS__TENANT_BURST", "100000")
        .env("GATEWAY__REDIS__URL", REDIS)
        .env("GATEWAY__REDIS__PREFIX", &prefix)
        .env("GATEWAY__LOG__FILTER", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Gateway { child, addr, data }
}

#[tokio::main]
async fn main() {
    let sockets = env_usize("BENCH_WIDGET_SOCKETS", 10_000);
    let streaming = env_usize("BENCH_WIDGET_STREAMING", 1_000).min(sockets);
    let mut gateway = start_gateway();
    let base = format!("http://{}", gateway.addr);
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = register(&client, &base, "widget-bench@example.com", PASSWORD).await;
    let channel: Value = client
        .post(format!("{base}/v1/channels"))
        .bearer_auth(&token)
        .json(&json!({ "kind": "web_widget", "name": "Bench", "config": {} }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let pid = gateway.child.id();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. Idle sockets.
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut visitors: Vec<(Socket, String)> = Vec::with_capacity(sockets);
    for n in 0..sockets {
        let mut ws = open(&gateway.addr, &channel_id, n).await;
        let welcome = hello(&mut ws, None, 0).await;
        visitors.push((ws, welcome["visitor_token"].as_str().unwrap().to_string()));
        if n % 2000 == 1999 {
            eprintln!("{} sockets open", n + 1);
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per_socket = (after.saturating_sub(before)) as f64 * 1024.0 / sockets as f64;
    eprintln!("{sockets} idle sockets: {per_socket:.0} bytes each");

    // 2. Fan-out: `streaming` visitors write once (a conversation each), then receive streamed
    // answers published on the Redis bus by this process, as another replica would.
    let tenant = {
        let me: Value = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        TenantId(uuid::Uuid::parse_str(me["tenant_id"].as_str().unwrap()).unwrap())
    };
    let mut streams = visitors.split_off(sockets - streaming);
    for (i, (ws, _)) in streams.iter_mut().enumerate() {
        let frame =
            json!({ "type": "message", "client_id": format!("q{i}"), "text": "Hello coach" });
        ws.send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
    }
    for (ws, _) in streams.iter_mut() {
        // accepted + the stored message's event, in either order.
        next(ws).await;
        next(ws).await;
    }
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        gateway.data.path().join("gateway.db").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, external_id FROM conversations")
            .fetch_all(&db)
            .await
            .unwrap();
    let by_visitor: HashMap<String, ConversationId> = rows
        .into_iter()
        .map(|(id, visitor)| (visitor, ConversationId(id)))
        .collect();
    let conversations: Vec<ConversationId> = streams
        .iter()
        .map(|(_, token)| {
            let visitor = token.trim_start_matches("v1.").rsplit_once('.').unwrap().0;
            by_visitor[visitor]
        })
        .collect();
    let bus = RedisBus::start(
        REDIS,
        &format!("bench{}:", std::process::id()),
        1024,
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    const DELTAS: usize = 20;
    let received = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = streams
        .into_iter()
        .map(|(mut ws, token)| {
            let received = received.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(DELTAS);
                while latencies.len() < DELTAS {
                    let frame = next(&mut ws).await;
                    if frame["type"] == "stream_delta" {
                        let sent: u64 = frame["text"].as_str().unwrap().parse().unwrap();
                        latencies.push((now_micros().saturating_sub(sent)) as f64 / 1000.0);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                (ws, token, latencies)
            })
        })
        .collect();
    let published = Instant::now();
    // Every streaming conversation gets a token every 50 ms (20 tokens/s), all at once.
    for _ in 0..DELTAS {
        let tick = Instant::now();
        for conversation in &conversations {
            let event = StreamEvent {
                seq: None,
                id: uuid::Uuid::now_v7(),
                tenant_id: tenant,
                payload: StreamPayload::Answer {
                    conversation_id: *conversation,
                    reply_to: MessageId(uuid::Uuid::nil()),
                    phase: AnswerPhase::Delta {
                        text: now_micros().to_string(),
                    },
                },
            };
            bus.publish(event).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50).saturating_sub(tick.elapsed())).await;
    }
    let mut latencies = Vec::new();
    let mut streams = Vec::new();
    for reader in readers {
        let (ws, token, l) = reader.await.unwrap();
        latencies.extend(l);
        streams.push((ws, token));
    }
    let fanout_secs = published.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let frames_per_sec = received.load(Ordering::Relaxed) as f64 / fanout_secs;
    eprintln!(
        "fan-out: {frames_per_sec:.0} frames/s, p50 {:.1} ms p99 {:.1} ms",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99)
    );

    // 3. Disconnect torture: replies stored through the admin API while sockets are cut.
    const REPLIES: usize = 5;
    let cuts = Arc::new(AtomicU64::new(0));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let addr = gateway.addr.clone();
    let torture: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, (ws, token))| {
            let (addr, channel_id, cuts, mut done) = (
                addr.clone(),
                channel_id.clone(),
                cuts.clone(),
                done_rx.clone(),
            );
            tokio::spawn(async move {
                let mut ws = Some(ws);
                let mut last_seq = 1i64; // the visitor's own message
                let mut seen: Vec<i64> = Vec::new();
                let mut resumes = Vec::new();
                let mut rng = fastrand::Rng::with_seed(i as u64);
                loop {
                    let socket = ws.as_mut().unwrap();
                    tokio::select! {
                        frame = socket.next() => match frame {
                            Some(Ok(Message::Text(text))) => {
                                let frame: Value = serde_json::from_str(&text).unwrap();
                                if frame["type"] == "event" {
                                    let seq = frame["seq"].as_i64().unwrap();
                                    seen.push(seq);
                                    last_seq = last_seq.max(seq);
                                    // Cut the connection after some events, mid-stream.
                                    if rng.u8(..3) == 0 {
                                        drop(ws.take());
                                        cuts.fetch_add(1, Ordering::Relaxed);
                                        let start = Instant::now();
                                        let mut fresh = open(&addr, &channel_id, i).await;
                                        hello(&mut fresh, Some(&token), last_seq).await;
                                        resumes.push(start.elapsed().as_secs_f64() * 1000.0);
                                        ws = Some(fresh);
                                    }
                                }
                            }
                            Some(Ok(_)) => {}
                            other => panic!("socket ended: {other:?}"),
                        },
                        _ = done.changed() => break,
                    }
                }
                (seen, resumes)
            })
        })
        .collect();
    let convs = conversations.clone();
    for round in 0..REPLIES {
        for conversation in &convs {
            let resp = client
                .post(format!(
                    "{base}/v1/conversations/{}/messages",
                    conversation.0
                ))
                .bearer_auth(&token)
                .json(&json!({ "text": format!("reply {round}") }))
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "{}", resp.status());
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    done_tx.send(true).unwrap();
    let (mut lost, mut duplicated, mut resumes) = (0usize, 0usize, Vec::new());
    for task in torture {
        let (seen, r) = task.await.unwrap();
        resumes.extend(r);
        let expected: Vec<i64> = (2..=(1 + REPLIES as i64)).collect();
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        duplicated += seen.len() - unique.len();
        lost += expected.iter().filter(|s| !unique.contains(s)).count();
    }
    resumes.sort_by(f64::total_cmp);
    let cut_count = cuts.load(Ordering::Relaxed);
    eprintln!(
        "torture: {cut_count} cuts, {lost} lost, {duplicated} duplicated, resume p95 {:.1} ms",
        pct(&resumes, 0.95)
    );
    let _ = gateway.child.kill();
    let _ = gateway.child.wait();
    drop(visitors);

    let md = format!(
        "## Web widget (`make bench`)\n\n{date} on {machine}; release build; the gateway binary on SQLite with the \
         Redis bus and no models, the load client in another process on the same two cores; client sockets spread \
         over 127.0.0.2-9.\n\n\
         | measurement | result |\n|---|---|\n\
         | idle sockets connected and welcomed | {sockets} in {connect_secs:.1} s |\n\
         | server memory per idle socket (RSS growth / sockets) | **{per_socket:.0} bytes** (target ≤ 10 KB) |\n\
         | fan-out: {streaming} visitors streaming at once (20 tokens/s each offered, {sockets} connected) | {frames_per_sec:.0} frames/s delivered (bound by this client's sequential Redis `PUBLISH`es) |\n\
         | latency from the Redis bus to the visitor's socket | p50 {l50:.1} ms, p99 **{l99:.1} ms** (target ≤ 50 ms) |\n\
         | disconnect torture: {streaming} visitors, {REPLIES} replies each, sockets cut at random | {cut_count} cuts, **{lost} lost, {duplicated} duplicated** |\n\
         | time to resume (new socket, `hello`, `welcome`) | p50 {r50:.1} ms, p95 **{r95:.1} ms** (target ≤ 1 s) |\n\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        machine = machine(),
        l50 = pct(&latencies, 0.5),
        l99 = pct(&latencies, 0.99),
        r50 = pct(&resumes, 0.5),
        r95 = pct(&resumes, 0.95),
    );
    print!("{md}");
    write_section("widget", &md);
}
