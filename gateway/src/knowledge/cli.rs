//! `gateway ingest PATH... --tenant T`: adds files to a tenant's knowledge base and indexes them
//! in this process, with a progress bar per file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use coach_brain::extract::DocumentKind;
use coach_connector_api::TenantId;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::Knowledge;
use super::ingest::{kind_name, poll_once};
use crate::config::Config;
use crate::state::{AppState, Startup};
use crate::store::documents::{DocumentStatus, NewDocument};
use crate::tenancy::SystemScope;

/// The state a command runs workers with in its own process: the opened store, the loaded
/// brain, an in-process bus (`gateway ingest`, `reembed`, `eval answers`).
pub(crate) fn offline_state(
    config: Config,
    store: std::sync::Arc<dyn crate::store::Store>,
    knowledge: Knowledge,
) -> anyhow::Result<AppState> {
    let secrets = crate::secrets::SecretBox::load(&config.secrets.master_key, &config.data_dir)?;
    Ok(AppState::new(
        config,
        store,
        std::sync::Arc::new(crate::bus::MemoryBus::new(16)),
        crate::telemetry::metrics_handle(),
        Startup::default(),
        secrets,
    )
    .with_knowledge(knowledge))
}

/// Runs the command.
pub async fn ingest(config: Config, paths: &[PathBuf], tenant: uuid::Uuid) -> anyhow::Result<()> {
    crate::telemetry::init_tracing(&config.log);
    let shutdown = CancellationToken::new();
    let store = crate::cli::open_ready_store(&config, &shutdown).await?;
    let scope = SystemScope::new("gateway ingest").for_tenant(TenantId(tenant));
    store
        .tenant_profile(&scope)
        .await
        .with_context(|| format!("tenant {tenant}: no such tenant (see GET /v1/me for yours)"))?;
    let knowledge = Knowledge::load(&config).await;
    knowledge.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut documents = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let filename = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let kind = DocumentKind::detect(filename.as_deref(), None, &bytes)
            .with_context(|| format!("{}", path.display()))?;
        let document = store
            .create_document(
                &scope,
                NewDocument {
                    title: filename
                        .clone()
                        .unwrap_or_else(|| path.display().to_string()),
                    filename,
                    source_url: None,
                    kind: kind_name(kind).into(),
                    sha256: hex::encode(Sha256::digest(&bytes)),
                    content: bytes,
                },
            )
            .await?;
        documents.push((path.display().to_string(), document.id));
    }
    let state = offline_state(config, store.clone(), knowledge)?;
    let worker = tokio::spawn({
        let state = state.clone();
        async move {
            while poll_once(&state).await? > 0 {}
            Ok::<_, crate::store::StoreError>(())
        }
    });
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{msg:40!} [{bar:30}] {percent:>3}%")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let shown: Vec<ProgressBar> = documents
        .iter()
        .map(|(name, _)| {
            let bar = bars.add(ProgressBar::new(100).with_style(style.clone()));
            bar.set_message(name.clone());
            bar
        })
        .collect();
    let mut failed = 0;
    loop {
        let mut pending = false;
        for ((name, id), bar) in documents.iter().zip(&shown) {
            if bar.is_finished() {
                continue;
            }
            let d = store.document(&scope, *id).await?;
            bar.set_position((d.progress * 100.0) as u64);
            match d.status {
                DocumentStatus::Ready => {
                    bar.finish_with_message(format!("{name}: {} chunks", d.chunks));
                }
                DocumentStatus::Failed => {
                    failed += 1;
                    bar.abandon_with_message(format!("{name}: {}", d.error.unwrap_or_default()));
                }
                _ => pending = true,
            }
        }
        if !pending {
            break;
        }
        if worker.is_finished() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // The worker stopped with documents still pending: report instead of waiting.
            let d = documents.iter().zip(&shown).find(|(_, b)| !b.is_finished());
            if let Some(((name, _), _)) = d {
                anyhow::bail!("{name}: indexing stopped before it finished; see the log");
            }
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    worker.abort();
    store.close().await;
    shutdown.cancel();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} file(s) could not be indexed",
        documents.len()
    );
    Ok(())
}

/// `gateway reembed`: after the embedding model changed, empties the vector store, records the
/// new model, and indexes every tenant's documents again in this process (a new version each,
/// so the old chunks could never mix with the new ones), with a progress bar. Run it with the
/// gateway stopped.
pub async fn reembed(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init_tracing(&config.log);
    let shutdown = CancellationToken::new();
    let store = crate::cli::open_ready_store(&config, &shutdown).await?;
    let result = reembed_with(config, store.clone(), true).await;
    store.close().await;
    shutdown.cancel();
    let (done, failed, pending) = result?;
    println!("re-embedded {done} document(s)");
    if pending > 0 {
        println!("{pending} document(s) wait for a retry: the gateway indexes them when it runs");
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} document(s) could not be indexed (see their error with GET /v1/documents)"
    );
    Ok(())
}

/// [`reembed`] over an open store; returns how many documents became ready, how many failed,
/// and how many still wait (a backend failed and their job is due later).
pub async fn reembed_with(
    config: Config,
    store: std::sync::Arc<dyn crate::store::Store>,
    show_progress: bool,
) -> anyhow::Result<(usize, usize, usize)> {
    let brain = super::open(&config).await.map_err(anyhow::Error::msg)?;
    brain
        .vectors
        .reset(
            &coach_brain::keyword::index_id(brain.embedder.model_id()),
            brain.embedder.dimension(),
        )
        .await
        .context("resetting the vector store")?;
    let sys = SystemScope::new("gateway reembed");
    let mut queued = Vec::new();
    for tenant in store.all_tenants(&sys).await? {
        let scope = sys.for_tenant(tenant.id);
        let mut before = None;
        loop {
            let page = crate::store::Page { before, limit: 200 };
            let documents = store.documents(&scope, page).await?;
            let Some(last) = documents.last() else { break };
            before = Some((last.created_at, last.id));
            for d in &documents {
                store.reindex_document(&scope, d.id).await?;
                queued.push((scope.clone(), d.id));
            }
        }
    }
    let state = offline_state(config, store.clone(), Knowledge::ready(brain))?;
    let bar = if show_progress {
        ProgressBar::new(queued.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("re-embedding [{bar:30}] {pos}/{len} documents")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    while poll_once(&state).await? > 0 {
        bar.set_position(finished(&*store, &queued).await?.0 as u64);
    }
    bar.finish();
    let (ready, failed) = finished(&*store, &queued).await?;
    Ok((ready, failed, queued.len() - ready - failed))
}

/// How many of `documents` are ready, and how many failed.
async fn finished(
    store: &dyn crate::store::Store,
    documents: &[(crate::tenancy::TenantScope, uuid::Uuid)],
) -> anyhow::Result<(usize, usize)> {
    let (mut ready, mut failed) = (0, 0);
    for (scope, id) in documents {
        match store.document(scope, *id).await?.status {
            DocumentStatus::Ready => ready += 1,
            DocumentStatus::Failed => failed += 1,
            _ => {}
        }
    }
    Ok((ready, failed))
}
