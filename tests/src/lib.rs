//! Helpers for the end-to-end tests: start a real `gateway` process on port 0 with its own data
//! directory and environment, wait until it listens, and stop it.

pub mod fake_ollama;
pub mod fake_provider;
pub mod speech;

/// Serve `app` on a free loopback port in the background; returns `http://127.0.0.1:PORT`.
pub async fn serve_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `gateway` binary cargo built beside this test executable.
pub fn gateway_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/gateway
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = profile_dir.join(format!("gateway{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `make test` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// A running gateway process; killed when dropped.
pub struct Gateway {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
}

impl Gateway {
    /// Start `gateway serve` on 127.0.0.1:0 with `data_dir` and extra `GATEWAY__*` variables.
    pub async fn start(data_dir: PathBuf, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_bin(&gateway_bin(), data_dir, env).await
    }

    /// [`Gateway::start`] with another copy of the binary (a release tarball's).
    pub async fn start_bin(
        bin: &std::path::Path,
        data_dir: PathBuf,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GATEWAY__HTTP__ADDR", "127.0.0.1:0")
            .env("GATEWAY__DATA_DIR", &data_dir)
            .env("GATEWAY__LOG__FORMAT", "text")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning gateway")?;
        let stdout = child.stdout.take().context("gateway stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    return Ok::<_, anyhow::Error>(addr);
                }
            }
            bail!("gateway exited before listening")
        })
        .await
        .context("gateway did not start listening within 60 s")??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            base_url: format!("http://{addr}"),
            data_dir,
        })
    }

    /// Send SIGTERM and wait for the process to exit; returns its exit code.
    pub async fn terminate(mut self) -> anyhow::Result<Option<i32>> {
        let pid = self.child.id().context("gateway already exited")?;
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .context("gateway did not exit within 30 s of SIGTERM")??;
        Ok(status.code())
    }
}

/// Throwaway PostgreSQL schemas for tests: each call makes a new schema, migrated by the owner,
/// and the serving login role (`coach_gateway`: not owner, not superuser, NOINHERIT member of
/// `coach_app` and `coach_worker`), exactly as README's PostgreSQL section sets up production.
pub mod pg {
    use sqlx::Executor;
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use tokio::sync::OnceCell;

    /// The owner URL: `TEST_DATABASE_URL` or the local default.
    pub fn owner_url() -> String {
        std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    /// A fresh schema, dropped by nobody (names are unique; `make test` runs in a throwaway
    /// database or a shared one where leftovers are harmless).
    pub struct TestSchema {
        /// The schema name.
        pub schema: String,
        /// Owner connection options with `search_path` set (for migrations).
        pub owner: PgConnectOptions,
        /// Serving-role connection options with `search_path` set.
        pub app: PgConnectOptions,
        /// The same as URLs, for gateway processes.
        pub owner_url: String,
        /// Serving-role URL.
        pub app_url: String,
    }

    static ROLE: OnceCell<()> = OnceCell::const_new();

    /// Create a new empty schema and make sure the serving role exists. Migrations are not run:
    /// the code under test runs them as the owner.
    pub async fn fresh_schema() -> anyhow::Result<TestSchema> {
        let base = owner_url();
        let owner_base: PgConnectOptions = base.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(owner_base.clone())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "PostgreSQL is not reachable at {base} ({e}); run the tests with `make test`, \
                     which starts a local server, or set TEST_DATABASE_URL"
                )
            })?;
        ROLE.get_or_try_init(|| async {
            pool.execute(
                "DO $$ BEGIN CREATE ROLE coach_app NOLOGIN; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
                 DO $$ BEGIN CREATE ROLE coach_worker NOLOGIN; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
                 DO $$ BEGIN CREATE ROLE coach_gateway LOGIN NOINHERIT IN ROLE coach_app, coach_worker; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;",
            )
            .await
            .map(|_| ())
        })
        .await?;
        let schema = format!("t_{}", uuid_like());
        pool.execute(format!("CREATE SCHEMA {schema}").as_str())
            .await?;
        pool.close().await;
        let app_base = owner_base.clone().username("coach_gateway");
        let options = [("search_path", schema.as_str())];
        let sep = if base.contains('?') { '&' } else { '?' };
        let owner_url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        let app_url = owner_url.replacen("://postgres@", "://coach_gateway@", 1);
        Ok(TestSchema {
            owner: owner_base.options(options),
            app: app_base.options(options),
            owner_url,
            app_url,
            schema,
        })
    }

    fn uuid_like() -> String {
        use std::time::{SystemTime, UNIX_EPOCH};
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{:x}{:04x}", nanos, std::process::id() & 0xffff) + &format!("{:04x}", rand_u16())
    }

    fn rand_u16() -> u16 {
        use std::sync::atomic::{AtomicU16, Ordering};
        static N: AtomicU16 = AtomicU16::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}

/// The Redis URL for tests: `TEST_REDIS_URL` or the local default.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A local SMTP sink speaking just enough of RFC 5321 for a client to deliver plain messages
/// (no TLS, no AUTH); every DATA body is kept for the test to read.
pub mod smtp {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A running sink.
    pub struct Sink {
        /// `smtp://127.0.0.1:PORT`.
        pub url: String,
        /// Message bodies received so far.
        pub messages: Arc<Mutex<Vec<String>>>,
    }

    /// Start a sink on a free loopback port.
    pub async fn start() -> anyhow::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("smtp://{}", listener.local_addr()?);
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 sink ready\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "DATA" => {
                                let _ = write.write_all(b"354 end with .\r\n").await;
                                let mut body = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    body.push_str(&l);
                                    body.push('\n');
                                }
                                if let Ok(mut m) = store.lock() {
                                    m.push(body);
                                }
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            _ => b"250 ok\r\n",
                        };
                        if write.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Ok(Sink { url, messages })
    }
}
