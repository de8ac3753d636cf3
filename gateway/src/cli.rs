//! The command line: `gateway serve`, `gateway migrate`, `gateway config`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DatabaseBackend};
use crate::server;
use crate::state::{AppState, Startup};
use crate::telemetry;

/// The coaching gateway.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// A TOML configuration file (default: ./gateway.toml when it exists). Environment
    /// variables `GATEWAY__SECTION__KEY` override it.
    #[arg(long, global = true, env = "GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the gateway (HTTP server and workers).
    Serve,
    /// Apply database migrations and exit (PostgreSQL: as `database.migrate_url`, the owner).
    Migrate,
    /// Print the effective configuration with secrets masked.
    Config,
    /// Operator accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Add documents to a tenant's knowledge base and index them, showing progress.
    Ingest {
        /// Files (PDF, DOCX, Markdown, HTML, text).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The tenant's id.
        #[arg(long)]
        tenant: uuid::Uuid,
    },
    /// After changing the embedding model: empty the vector store and index every tenant's
    /// documents again with the new model (stop the gateway first).
    Reembed,
    /// Copy the embedded deployment (SQLite database and media) into one file while the
    /// gateway runs; the master key is not in it.
    Backup {
        /// The file to write (`.tar.gz`, created `0600`; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Bring a backup back into an empty data directory (with the source's master key), then
    /// index its documents again.
    Restore {
        /// A file written by `gateway backup`.
        file: PathBuf,
    },
    /// Measure quality.
    #[command(subcommand)]
    Eval(EvalCommand),
}

/// `gateway eval ...`
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Retrieval quality on a BEIR-format benchmark: prints nDCG@10 and recall@100.
    Retrieval {
        /// `corpus.jsonl` or `corpus.jsonl.gz` (`{"_id", "title", "text"}` per line).
        #[arg(long)]
        corpus: PathBuf,
        /// `queries.jsonl` (`{"_id", "text"}` per line).
        #[arg(long)]
        queries: PathBuf,
        /// `qrels.tsv` (query-id, corpus-id, score).
        #[arg(long)]
        qrels: PathBuf,
        /// `dense`, `keyword`, `hybrid`, or `all` (the default: all three on one index).
        #[arg(long, default_value = "all")]
        mode: String,
        /// Folder keeping the corpus' embeddings between runs (by model and text): a second
        /// run only embeds what changed. Default: `eval-cache` under the data directory.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Embed everything again instead of using the cache.
        #[arg(long)]
        no_cache: bool,
        /// Reciprocal rank fusion constants to compare in hybrid mode (comma-separated;
        /// default: brain.fusion_k).
        #[arg(long, value_delimiter = ',')]
        fusion_k: Vec<f32>,
        /// Keyword weights to compare in hybrid mode (comma-separated; default:
        /// brain.keyword_weight).
        #[arg(long, value_delimiter = ',')]
        keyword_weight: Vec<f32>,
    },
    /// Answer quality on a SQuAD 2.0 file: each article is indexed into a fresh tenant (erased
    /// afterwards) and each question asked as a chat question; prints the share of answerable
    /// questions answered with a gold answer, of unanswerable ones declined, and latency.
    Answers {
        /// The SQuAD 2.0 JSON file (`evals/readme.json` and `evals/coaching.json` are the
        /// project's own sets).
        #[arg(long)]
        squad: PathBuf,
        /// Article indexes to use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        articles: Vec<usize>,
        /// Ask a balanced sample of this many questions (half answerable) instead of all.
        #[arg(long)]
        sample: Option<usize>,
        /// The sample's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print every question with the reply and its verdict.
        #[arg(long)]
        verbose: bool,
        /// Answer every question (relevance floor 0, no decline by probability), then print
        /// the scores each brain.relevance_floor, coverage_floor and abstain_threshold would have given.
        /// Run it on a dev split, never on the split you report.
        #[arg(long)]
        calibrate: bool,
        /// Write each question's signals (relevance, coverage, decline probability) and outcome
        /// to this file, one JSON object a line.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
}

/// `gateway keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key shared by every gateway process. New access tokens are signed
    /// with it; tokens signed with older keys stay valid until they expire (15 minutes), so
    /// nobody is logged out. Processes pick the new key up when they first see it.
    Rotate,
}

/// `gateway admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make a platform administrator (creating the account and an operators' tenant if the
    /// e-mail is new). The password is read from standard input.
    Create {
        /// The operator's login e-mail.
        #[arg(long)]
        email: String,
        /// The name of the tenant created for a new operator.
        #[arg(long, default_value = "Operators")]
        tenant_name: String,
    },
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage.
pub const EXIT_CONFIG: i32 = 2;

/// Load the configuration or explain what is wrong with it.
pub fn load_config(cli: &Cli) -> Result<Config, String> {
    let config =
        Config::load(cli.config.as_deref()).map_err(|e| format!("configuration error: {e}"))?;
    if matches!(cli.command, Command::Serve)
        && let Some(problem) = config.cluster_problem()
    {
        return Err(format!("configuration error: {problem}"));
    }
    Ok(config)
}

/// Run a parsed command with a loaded configuration.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command {
        Command::Config => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Migrate => migrate(&config).await,
        Command::Serve => serve(config).await,
        Command::Admin(AdminCommand::Create { email, tenant_name }) => {
            admin_create(&config, &email, &tenant_name).await
        }
        Command::Keys(KeysCommand::Rotate) => rotate_keys(&config).await,
        Command::Ingest { paths, tenant } => {
            crate::knowledge::cli::ingest(config, &paths, tenant).await
        }
        Command::Reembed => crate::knowledge::cli::reembed(config).await,
        Command::Backup { out } => crate::backup::backup_command(config, out).await,
        Command::Restore { file } => crate::backup::restore_command(config, file).await,
        Command::Eval(EvalCommand::Retrieval {
            corpus,
            queries,
            qrels,
            mode,
            cache,
            no_cache,
            fusion_k,
            keyword_weight,
        }) => {
            let modes = match mode.as_str() {
                "all" => vec![
                    coach_brain::retrieve::Mode::Keyword,
                    coach_brain::retrieve::Mode::Dense,
                    coach_brain::retrieve::Mode::Hybrid,
                ],
                other => vec![other.parse().map_err(anyhow::Error::msg)?],
            };
            anyhow::ensure!(
                fusion_k.iter().all(|k| k.is_finite() && *k >= 1.0),
                "--fusion-k: numbers >= 1, such as 60"
            );
            anyhow::ensure!(
                keyword_weight.iter().all(|w| w.is_finite() && *w >= 0.0),
                "--keyword-weight: numbers >= 0, such as 1"
            );
            let cache = if no_cache {
                None
            } else {
                Some(cache.unwrap_or_else(|| config.data_dir.join("eval-cache")))
            };
            let options = crate::eval::Options {
                modes,
                cache,
                fusion_k,
                keyword_weight,
            };
            crate::eval::retrieval(&config, &corpus, &queries, &qrels, &options).await
        }
        Command::Eval(EvalCommand::Answers {
            squad,
            articles,
            sample,
            seed,
            verbose,
            calibrate,
            trace,
        }) => {
            anyhow::ensure!(sample != Some(0), "--sample: at least 1 question");
            let options = crate::eval::answers::AnswerOptions {
                articles,
                sample,
                seed,
                verbose,
                calibrate,
                trace,
            };
            crate::eval::answers::answers(config, &squad, &options)
                .await
                .map(|_| ())
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    telemetry::init_tracing(&config.log);
    match config.database_backend()? {
        DatabaseBackend::Sqlite(path) => {
            let startup = Startup::default();
            let store = server::open_store(config, &startup, &CancellationToken::new()).await?;
            store.close().await;
            println!("SQLite database {} is up to date", path.display());
        }
        DatabaseBackend::Postgres(url) => {
            let owner = if config.database.migrate_url.is_empty() {
                url
            } else {
                config.database.migrate_url.clone()
            };
            let opts = PgConnectOptions::from_str(&owner).context("database.migrate_url")?;
            crate::store::migrate_postgres(opts).await?;
            println!("PostgreSQL schema is up to date");
        }
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init_tracing(&config.log);
    let metrics = telemetry::metrics_handle();
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    crate::files::private_dir(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    let startup = Startup::default();
    let store = server::open_store(&config, &startup, &shutdown).await?;
    let bus = server::open_bus(&config, &shutdown).await?;
    let listener = tokio::net::TcpListener::bind(config.http.addr)
        .await
        .with_context(|| format!("binding http.addr {}", config.http.addr))?;
    let addr = listener.local_addr()?;
    let secrets = crate::secrets::SecretBox::load(&config.secrets.master_key, &config.data_dir)?;
    let connectors = crate::connectors::Connectors::load(Arc::new(config.clone()))
        .context("loading connector plugins (providers.plugin_dir)")?;
    let knowledge = crate::knowledge::Knowledge::load(&config).await;
    let state = AppState::new(config, store, bus, metrics, startup, secrets)
        .with_knowledge(knowledge)
        .with_connectors(connectors);
    tracing::info!(%addr, database = state.store.backend(), bus = state.bus.backend(), "gateway started");
    println!("listening on http://{addr}");
    server::run(listener, state, shutdown).await
}

async fn watch_signals(shutdown: CancellationToken) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown requested; finishing in-flight work");
    shutdown.cancel();
}

/// Opens the store for a one-shot command and waits until it is ready.
pub(crate) async fn open_ready_store(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    let startup = Startup::default();
    let store = server::open_store(config, &startup, shutdown).await?;
    // PostgreSQL is prepared in the background: wait for it, but not forever.
    tokio::time::timeout(std::time::Duration::from_secs(30), startup.ready())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the database is not ready: {}",
                startup.problem().unwrap_or_default()
            )
        })?;
    Ok(store)
}

async fn rotate_keys(config: &Config) -> anyhow::Result<()> {
    telemetry::init_tracing(&config.log);
    let shutdown = CancellationToken::new();
    let store = open_ready_store(config, &shutdown).await?;
    let secrets = crate::secrets::SecretBox::load(&config.secrets.master_key, &config.data_dir)?;
    let tokens = crate::auth::tokens::Tokens::new(store.clone(), secrets, String::new(), 900);
    tokens.seal_stored_keys().await?;
    tokens.rotate().await?;
    let keys = store
        .signing_keys(&crate::tenancy::SystemScope::new("gateway keys rotate"))
        .await?;
    store.close().await;
    shutdown.cancel();
    let kid = keys.first().map(|k| k.kid.clone()).unwrap_or_default();
    println!(
        "new signing key {kid} is in use; {} older key(s) still verify tokens they signed",
        keys.len().saturating_sub(1)
    );
    Ok(())
}

async fn admin_create(config: &Config, email: &str, tenant_name: &str) -> anyhow::Result<()> {
    telemetry::init_tracing(&config.log);
    let mut password = String::new();
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("password for {email}: ");
    }
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    let shutdown = CancellationToken::new();
    let store = open_ready_store(config, &shutdown).await?;
    let sys = crate::tenancy::SystemScope::new("gateway admin create");
    let user = match store.credentials(&sys, email).await? {
        Some(existing) => existing.user,
        None => {
            if let Some(why) = crate::auth::password::weakness(password, email) {
                anyhow::bail!("password refused: {why}");
            }
            let hasher = crate::auth::password::Hasher::new(1);
            let hash = hasher
                .hash(password.to_owned())
                .await
                .map_err(anyhow::Error::msg)?;
            store
                .register(&sys, email, &hash, tenant_name, None)
                .await?
                .1
        }
    };
    store.set_platform_admin(&sys, user.id, true).await?;
    store.close().await;
    shutdown.cancel();
    println!("{email} is a platform administrator (user {})", user.id);
    Ok(())
}
