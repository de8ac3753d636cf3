//! Program scheduler benchmark: 100,000 contacts enrolled in one program
//! (`PROGRAMS_BENCH_CONTACTS` changes the count). Measured: how late due steps are dispatched
//! (run, recorded and queued in the outbox) after their due time, for a burst (every contact's
//! step due at the same instant, as a "day 2 at 09:00" step is) and for a steady stream of
//! 1,000 due steps a second; how fast the burst drains; and the CPU the scheduler spends per
//! 1,000 steps. On SQLite the embedded scheduler runs in this process; on PostgreSQL one and
//! then two real gateway processes share the database. Writes its section of
//! docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, missing_docs)]

mod support;
use support::{machine, write_section};

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use coach_connector_api::{
    ChannelIdentity, ChannelKind, ContactId, Content, ConversationId, DedupKey, InboundEvent,
    InboundMessage,
};
use coach_gateway::programs::definition::Definition;
use coach_gateway::store::programs::NewEnrollment;
use coach_gateway::store::{
    NewChannel, PostgresStore, PostgresStoreOptions, Store, migrate_postgres,
};
use coach_gateway::tenancy::{SystemScope, TenantScope};
use sqlx::Row as _;

/// Steps a second in the steady-stream run, and how many it sends.
const STREAM_RATE: usize = 1000;
const STREAM_STEPS: usize = 20_000;

/// Seconds of CPU (user + system) process `pid` has used so far.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name (in parentheses): utime and stime are the 12th and 13th fields.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

struct Row {
    setup: String,
    shape: String,
    steps: usize,
    drain_secs: f64,
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    cpu_per_1000: Option<f64>,
}

fn program() -> Definition {
    serde_json::from_value(serde_json::json!({
        "name": "Bench", "catch_up": { "tolerance_minutes": 600 },
        "steps": [
            { "id": "hello", "message": "Hi {first_name}, day {day}!",
              "template": { "name": "hello", "language": "en" } },
            { "id": "tomorrow", "message": "Day {day}", "timing": { "after_minutes": 1440 },
              "template": { "name": "day", "language": "en" } },
        ]
    }))
    .unwrap()
}

type Targets = Vec<(ContactId, ConversationId)>;

/// A tenant with a web widget channel and `n` contacts (each reacted once, which starts a
/// conversation without a job for the coach), with no quiet hours and no mid-conversation pause.
async fn setup(store: &dyn Store, db: &Db, n: usize) -> (TenantScope, Targets) {
    let sys = SystemScope::new("bench");
    let tenant = store.create_tenant(&sys, "bench").await.unwrap();
    let scope = sys.for_tenant(tenant.id);
    let outreach = serde_json::json!({ "outreach": {
        "quiet_hours": { "start": "00:00", "end": "00:00" }, "pause_minutes": 0 } });
    store
        .update_tenant_profile(
            &scope,
            None,
            Some(Box::new(
                move |p: &mut coach_gateway::tenant::TenantProfile| {
                    *p = coach_gateway::tenant::TenantProfile::from_stored(outreach);
                },
            )),
        )
        .await
        .unwrap();
    let channel = store
        .create_channel(
            &scope,
            NewChannel {
                kind: ChannelKind::WebWidget,
                name: "site".into(),
                config: serde_json::json!({}),
            },
        )
        .await
        .unwrap();
    let started = Instant::now();
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(1000) {
        let events = chunk
            .iter()
            .map(|i| {
                InboundEvent::Message(InboundMessage {
                    dedup_key: DedupKey(format!("r{i}")),
                    provider_message_id: format!("r{i}"),
                    from: ChannelIdentity {
                        id: format!("visitor-{i}"),
                        display_name: Some(format!("Person {i}")),
                        username: None,
                    },
                    timestamp: Utc::now(),
                    content: Content::Reaction {
                        to_message: "x".into(),
                        emoji: Some("+1".into()),
                    },
                    reply_to: None,
                })
            })
            .collect();
        store.ingest(&scope, channel.id, events).await.unwrap();
        // Statistics as autovacuum keeps them: plans made for the empty tables would scan.
        if chunk[0] % 20_000 == 1000 {
            db.analyze().await;
        }
    }
    let limit = u32::try_from(n).unwrap() + 10;
    let targets = store.segment(&scope, None, None, limit).await.unwrap();
    assert_eq!(targets.len(), n);
    eprintln!("{n} contacts in {:.1} s", started.elapsed().as_secs_f64());
    (scope, targets)
}

fn enrollments(
    program: uuid::Uuid,
    targets: &[(ContactId, ConversationId)],
    due: DateTime<Utc>,
) -> Vec<NewEnrollment> {
    targets
        .iter()
        .map(|(contact, conversation)| NewEnrollment {
            program_id: program,
            version: 1,
            contact_id: *contact,
            conversation_id: *conversation,
            time_zone: "UTC".into(),
            variables: serde_json::Map::new(),
            source: "bench".into(),
            first_step: "hello".into(),
            due_at: due,
            answers: false,
        })
        .collect()
}

/// Enroll everyone in a new program with first steps due in a day (moved by [`due_all`]).
async fn enroll_all(store: &dyn Store, scope: &TenantScope, targets: &Targets) -> uuid::Uuid {
    let program = store.create_program(scope, program()).await.unwrap();
    let later = Utc::now() + chrono::Duration::days(1);
    let started = Instant::now();
    for chunk in targets.chunks(1000) {
        store
            .enroll(scope, enrollments(program.id, chunk, later), Utc::now())
            .await
            .unwrap();
    }
    eprintln!(
        "{} enrolled in {:.1} s",
        targets.len(),
        started.elapsed().as_secs_f64()
    );
    program.id
}

/// Where the bench reads and moves rows behind the store (the same SQL on both backends).
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Make every pending first step due at `at`.
    async fn due_all(&self, at: DateTime<Utc>) {
        let sql = "UPDATE jobs SET next_attempt_at = $1 WHERE kind = 'program_step' AND state = 'pending' \
                   AND dedup_key LIKE '%:1'";
        match self {
            Self::Sqlite(p) => sqlx::query(sql).bind(at).execute(p).await.map(|_| ()),
            Self::Postgres(p) => sqlx::query(sql).bind(at).execute(p).await.map(|_| ()),
        }
        .unwrap();
    }

    /// (recorded at, due at) of every run of `program`.
    async fn runs(&self, program: uuid::Uuid) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let sql = "SELECT sent_at, due_at FROM program_sends WHERE program_id = $1";
        let pair = |r: &dyn Fn(usize) -> DateTime<Utc>| (r(0), r(1));
        match self {
            Self::Sqlite(p) => sqlx::query(sql)
                .bind(program)
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| pair(&|i| r.get(i)))
                .collect(),
            Self::Postgres(p) => sqlx::query(sql)
                .bind(program)
                .fetch_all(p)
                .await
                .unwrap()
                .iter()
                .map(|r| pair(&|i| r.get(i)))
                .collect(),
        }
    }

    /// Refresh the planner's statistics after the bulk setup, as autovacuum would (a table
    /// filled seconds ago has none, and the planner then picks slow plans).
    async fn analyze(&self) {
        match self {
            Self::Sqlite(p) => sqlx::query("ANALYZE").execute(p).await.map(|_| ()),
            Self::Postgres(p) => sqlx::query("ANALYZE").execute(p).await.map(|_| ()),
        }
        .unwrap();
    }

    async fn count(&self, program: uuid::Uuid) -> usize {
        let sql = "SELECT COUNT(*) FROM program_sends WHERE program_id = $1";
        let n: i64 = match self {
            Self::Sqlite(p) => sqlx::query(sql)
                .bind(program)
                .fetch_one(p)
                .await
                .unwrap()
                .get(0),
            Self::Postgres(p) => sqlx::query(sql)
                .bind(program)
                .fetch_one(p)
                .await
                .unwrap()
                .get(0),
        };
        usize::try_from(n).unwrap()
    }
}

/// Wait until `expected` runs of `program` are recorded; returns when the last one was.
async fn drained(db: &Db, program: uuid::Uuid, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while db.count(program).await < expected {
        assert!(Instant::now() < deadline, "the scheduler did not drain");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn row(
    setup: &str,
    shape: &str,
    runs: &[(DateTime<Utc>, DateTime<Utc>)],
    due: Option<DateTime<Utc>>,
    cpu: Option<f64>,
) -> Row {
    let mut lags: Vec<f64> = runs
        .iter()
        .map(|(sent, planned)| {
            let due = due.unwrap_or(*planned);
            (*sent - due).num_microseconds().unwrap_or(0) as f64 / 1000.0
        })
        .collect();
    lags.sort_by(f64::total_cmp);
    let q = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    let first = runs.iter().map(|r| r.0).min().unwrap();
    let last = runs.iter().map(|r| r.0).max().unwrap();
    let start = due.unwrap_or(first).min(first);
    let drain = (last - start).num_milliseconds().max(1) as f64 / 1000.0;
    Row {
        setup: setup.into(),
        shape: shape.into(),
        steps: runs.len(),
        drain_secs: drain,
        per_sec: runs.len() as f64 / drain,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
        cpu_per_1000: cpu.map(|c| c / (runs.len() as f64 / 1000.0)),
    }
}

/// Enroll `STREAM_STEPS` contacts at `STREAM_RATE` a second, each first step due a second
/// after its enrollment, while the scheduler runs.
async fn stream(store: &dyn Store, scope: &TenantScope, targets: &Targets) -> uuid::Uuid {
    let program = store.create_program(scope, program()).await.unwrap();
    let batch = STREAM_RATE / 10;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for chunk in targets[..STREAM_STEPS.min(targets.len())].chunks(batch) {
        tick.tick().await;
        let due = Utc::now() + chrono::Duration::seconds(1);
        store
            .enroll(scope, enrollments(program.id, chunk, due), Utc::now())
            .await
            .unwrap();
    }
    program.id
}

async fn sqlite(n: usize) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap();
    let state = support::sqlite_state(dir.path(), coach_gateway::config::Config::default()).await;
    let store = state.store.clone();
    let db = Db::Sqlite(
        sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.path().join("bench.db").display()
        ))
        .await
        .unwrap(),
    );
    let (scope, targets) = setup(&*store, &db, n).await;
    let burst = enroll_all(&*store, &scope, &targets).await;
    db.analyze().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(coach_gateway::jobs::run(
        coach_gateway::programs::worker::Scheduler,
        state.clone(),
        shutdown.clone(),
    ));
    let due = Utc::now() + chrono::Duration::seconds(3);
    db.due_all(due).await;
    let cpu0 = cpu_secs("self");
    drained(&db, burst, n).await;
    let cpu = cpu_secs("self") - cpu0;
    let mut rows = vec![row(
        "SQLite, embedded scheduler",
        "burst: all due at once",
        &db.runs(burst).await,
        Some(due),
        Some(cpu),
    )];
    let steady = stream(&*store, &scope, &targets).await;
    drained(&db, steady, STREAM_STEPS.min(n)).await;
    rows.push(row(
        "SQLite, embedded scheduler",
        "stream: 1,000 due/s",
        &db.runs(steady).await,
        None,
        None,
    ));
    shutdown.cancel();
    let _ = worker.await;
    store.close().await;
    rows
}

async fn postgres(n: usize) -> Vec<Row> {
    let schema = coach_e2e::pg::fresh_schema().await.unwrap();
    migrate_postgres(schema.owner.clone()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(PostgresStore::connect_lazy(PostgresStoreOptions {
        connect: schema.app.clone(),
        max_connections: 8,
    }));
    let db = Db::Postgres(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(schema.owner.clone())
            .await
            .unwrap(),
    );
    let (scope, targets) = setup(&*store, &db, n).await;
    let mut rows = Vec::new();
    for processes in [1usize, 2] {
        let program = enroll_all(&*store, &scope, &targets).await;
        db.analyze().await;
        let mut gateways = Vec::new();
        for _ in 0..processes {
            let data = tempfile::tempdir().unwrap().keep();
            let env = [
                ("GATEWAY__DATABASE__URL", schema.app_url.as_str()),
                ("GATEWAY__DATABASE__MIGRATE_URL", schema.owner_url.as_str()),
                ("GATEWAY__WIDGET__DEMO", "false"),
                ("GATEWAY__BRAIN__MODELS_DIR", "/nonexistent-models"),
                ("RUST_LOG", "warn"),
            ];
            gateways.push(coach_e2e::Gateway::start(data, &env).await.unwrap());
        }
        let pids: Vec<String> = gateways
            .iter()
            .map(|g| g.child.id().unwrap().to_string())
            .collect();
        let setup = format!(
            "PostgreSQL, {processes} gateway process{}",
            if processes == 1 { "" } else { "es" }
        );
        let due = Utc::now() + chrono::Duration::seconds(3);
        db.due_all(due).await;
        let cpu0: f64 = pids.iter().map(|p| cpu_secs(p)).sum();
        drained(&db, program, n).await;
        let cpu = pids.iter().map(|p| cpu_secs(p)).sum::<f64>() - cpu0;
        let runs = db.runs(program).await;
        assert_eq!(runs.len(), n, "every step ran exactly once");
        rows.push(row(
            &setup,
            "burst: all due at once",
            &runs,
            Some(due),
            Some(cpu),
        ));
        if processes == 2 {
            let steady = stream(&*store, &scope, &targets).await;
            drained(&db, steady, STREAM_STEPS.min(n)).await;
            rows.push(row(
                &setup,
                "stream: 1,000 due/s",
                &db.runs(steady).await,
                None,
                None,
            ));
        }
        for g in gateways {
            g.terminate().await.unwrap();
        }
        // The next run starts from the same contacts, enrolled in a new program.
    }
    rows
}

fn main() {
    let n: usize = std::env::var("PROGRAMS_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = rt.block_on(sqlite(n));
    // Written as soon as there are numbers, then again with PostgreSQL's.
    write_section("programs", &report(n, &rows));
    rows.extend(rt.block_on(postgres(n)));
    let md = report(n, &rows);
    print!("{md}");
    write_section("programs", &md);
}

fn report(n: usize, rows: &[Row]) -> String {
    let mut md = format!(
        "## Programs: the scheduler (`make bench`)\n\n{} contacts enrolled in one program, measured {} on {}. \
         A step is dispatched when its run is recorded and its message queued in the outbox (channel \
         pacing aside). Lateness is that time minus the step's due time. The scheduler polls every \
         500 ms when idle, so lateness starts there. CPU is the scheduler's process (SQLite: this \
         process, whose only worker is the scheduler; PostgreSQL: the gateway processes, whose \
         outbox also delivers the queued messages).\n\n\
         | setup | load | steps | drained in (s) | steps/s | late p50 (ms) | late p99 (ms) | late max (ms) | CPU s per 1,000 steps |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        n,
        Utc::now().format("%Y-%m-%d"),
        machine()
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {} |\n",
            r.setup,
            r.shape,
            r.steps,
            r.drain_secs,
            r.per_sec,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.cpu_per_1000.map_or("-".into(), |c| format!("{c:.3}"))
        ));
    }
    md.push_str(
        "\nA burst is as many steps due in the same instant as there are contacts (a \"day 2 at \
         09:00\" step), so its lateness is the time to work through the queue: it is bounded by \
         throughput, not by the poll. The stream is the everyday shape: steps falling due \
         continuously.\n\n",
    );
    md
}
