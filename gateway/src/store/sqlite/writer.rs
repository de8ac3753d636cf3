//! The single SQLite writer: requests queue on a channel; the task takes as many as are waiting
//! (up to the batch limit), runs them inside one `BEGIN IMMEDIATE` transaction, commits once, and
//! only then answers each caller. A caller's `Ok` therefore always means "durably committed".
//!
//! Each write runs in its own savepoint, so one failure never affects another. Ingest requests
//! of a batch are first tried together, set-based (`bulk.rs`); if that fails they are rolled back
//! and retried one savepoint each, which gives every request its own answer.

use futures::future::BoxFuture;
use sqlx::Executor;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::bulk::{self, IngestRequest};
use crate::store::{IngestReport, StoreError};

/// A write of any result type: it runs inside the batch's transaction and holds its result
/// until the batch commits.
trait Pending: Send {
    /// Run the write; true when it succeeded (its savepoint is kept).
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool>;
    /// Replace the held result with a failure (the savepoint could not be ended).
    fn fail(&mut self, e: StoreError);
    /// Answer the caller: the held result, or `commit_error` if the batch was lost.
    fn answer(self: Box<Self>, commit_error: Option<&str>);
}

/// A caller's write and its typed answer.
struct Write<T, F> {
    work: Option<F>,
    result: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Pending for Write<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut SqliteConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            if let Some(work) = self.work.take() {
                self.result = work(conn).await;
            }
            self.result.is_ok()
        })
    }

    fn fail(&mut self, e: StoreError) {
        self.result = Err(e);
    }

    fn answer(self: Box<Self>, commit_error: Option<&str>) {
        let _ = self.reply.send(match commit_error {
            Some(e) if self.result.is_ok() => Err(lost(e)),
            _ => self.result,
        });
    }
}

/// The error of a write whose batch failed to commit.
fn lost(e: &str) -> StoreError {
    StoreError::Unavailable(format!("commit: {e}"))
}

enum Request {
    Write(Box<dyn Pending>),
    Ingest(IngestRequest),
    Checkpoint { done: oneshot::Sender<()> },
    Close { done: oneshot::Sender<()> },
}

/// Handle to the writer task.
pub(super) struct Writer {
    tx: mpsc::Sender<Request>,
}

impl Writer {
    /// Start the writer task on `conn`.
    pub(super) fn spawn(conn: SqliteConnection, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(max_batch.max(64) * 4);
        tokio::spawn(run(conn, rx, max_batch));
        Self { tx }
    }

    async fn submit(&self, request: Request) -> Result<(), StoreError> {
        self.tx
            .send(request)
            .await
            .map_err(|_| StoreError::Unavailable("store is closed".into()))
    }

    /// Run `f` in the next transaction; resolves once that transaction committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (reply, rx) = oneshot::channel();
        self.submit(Request::Write(Box::new(Write {
            work: Some(f),
            result: Err(StoreError::Unavailable("write not run".into())),
            reply,
        })))
        .await?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }

    /// Ingest events in the next transaction (set-based with the other ingests of the batch).
    pub(super) async fn ingest(
        &self,
        tenant: coach_connector_api::TenantId,
        channel: coach_connector_api::ChannelId,
        events: Vec<coach_connector_api::InboundEvent>,
    ) -> Result<IngestReport, StoreError> {
        let (reply, rx) = oneshot::channel();
        let now = chrono::Utc::now();
        self.submit(Request::Ingest(IngestRequest {
            tenant,
            channel,
            events,
            now,
            reply,
        }))
        .await?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))?
    }

    /// A no-op write: proves the writer task is alive and the file writable.
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.write(|_| Box::pin(async { Ok(()) })).await
    }

    /// Commit everything queued so far, then copy the WAL into the database file and truncate
    /// it (after an erasure: the WAL still holds the erased rows' old pages).
    pub(super) async fn checkpoint(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Request::Checkpoint { done }).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Commit everything queued so far, then stop accepting writes.
    pub(super) async fn close(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Request::Close { done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Request>, max_batch: usize) {
    let mut writes = Vec::new();
    let mut ingests = Vec::new();
    let mut closing = None;
    let mut checkpoint = None;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write(write) => writes.push(write),
                Request::Ingest(request) => ingests.push(request),
                Request::Checkpoint { done } => {
                    checkpoint = Some(done);
                    break;
                }
                Request::Close { done } => {
                    closing = Some(done);
                    break;
                }
            }
            if writes.len() + ingests.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() || !ingests.is_empty() {
            commit_batch(&mut conn, &mut writes, &mut ingests).await;
        }
        if let Some(done) = checkpoint.take() {
            // Outside any transaction. Readers holding an old snapshot can make it partial
            // (busy); the next checkpoint, or closing the store, finishes it.
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut conn)
                .await
            {
                Ok((0, _, _)) => {}
                Ok(_) => tracing::warn!("sqlite checkpoint after an erasure was partial (busy)"),
                Err(error) => tracing::warn!(%error, "sqlite checkpoint after an erasure failed"),
            }
            let _ = done.send(());
        }
        if let Some(done) = closing.take() {
            rx.close();
            while let Ok(request) = rx.try_recv() {
                let closed = || StoreError::Unavailable("store is closed".into());
                match request {
                    Request::Write(mut write) => {
                        write.fail(closed());
                        write.answer(None);
                    }
                    Request::Ingest(r) => {
                        let _ = r.reply.send(Err(closed()));
                    }
                    Request::Checkpoint { done } | Request::Close { done } => {
                        let _ = done.send(());
                    }
                }
            }
            let _ = done.send(());
            break;
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// An ingest answer held back until the transaction commits.
struct Held(
    oneshot::Sender<Result<IngestReport, StoreError>>,
    Result<IngestReport, StoreError>,
);

impl Held {
    fn answer(self, commit_error: Option<&str>) {
        let _ = self.0.send(match commit_error {
            Some(e) if self.1.is_ok() => Err(lost(e)),
            _ => self.1,
        });
    }
}

/// Run `f` in savepoint `w`: released when it succeeds, rolled back when it fails.
async fn in_savepoint<T>(
    conn: &mut SqliteConnection,
    f: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute("SAVEPOINT w").await?;
    let result = f(&mut *conn).await;
    end_savepoint(conn, result.is_ok()).await?;
    result
}

async fn end_savepoint(conn: &mut SqliteConnection, keep: bool) -> Result<(), StoreError> {
    let end = if keep {
        "RELEASE w"
    } else {
        "ROLLBACK TO w; RELEASE w"
    };
    if let Err(e) = conn.execute(end).await {
        tracing::error!(error = %e, "sqlite savepoint cleanup failed");
        return Err(e.into());
    }
    Ok(())
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    writes: &mut Vec<Box<dyn Pending>>,
    ingests: &mut Vec<IngestRequest>,
) {
    metrics::histogram!("store_write_batch_size").record((writes.len() + ingests.len()) as f64);
    let mut replies = Vec::with_capacity(ingests.len());
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        let e = e.to_string();
        for mut write in writes.drain(..) {
            write.fail(StoreError::Unavailable(format!("begin: {e}")));
            write.answer(None);
        }
        for r in ingests.drain(..) {
            Held(r.reply, Err(StoreError::Unavailable(format!("begin: {e}")))).answer(None);
        }
        return;
    }
    let mut done: Vec<(Box<dyn Pending>, bool)> = Vec::with_capacity(writes.len());
    for mut write in writes.drain(..) {
        let ok = match conn.execute("SAVEPOINT w").await {
            Ok(_) => {
                let ok = write.run(conn).await;
                match end_savepoint(conn, ok).await {
                    Ok(()) => ok,
                    Err(e) => {
                        write.fail(e);
                        false
                    }
                }
            }
            Err(e) => {
                write.fail(e.into());
                false
            }
        };
        done.push((write, ok));
    }

    let (bulk_ready, single): (Vec<_>, Vec<_>) =
        ingests.drain(..).partition(IngestRequest::bulk_ready);
    let mut single = single;
    if !bulk_ready.is_empty() {
        match in_savepoint(conn, async |c| bulk::ingest(c, &bulk_ready).await).await {
            Ok(results) => {
                for (request, result) in bulk_ready.into_iter().zip(results) {
                    replies.push(Held(request.reply, result));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "set-based ingest failed; retrying request by request");
                single.extend(bulk_ready);
            }
        }
    }
    for r in single {
        let IngestRequest {
            tenant,
            channel,
            events,
            now,
            reply,
        } = r;
        let result = in_savepoint(conn, async |c| {
            crate::store::channels::sql::sqlite::ingest(c, tenant, channel, events, now).await
        })
        .await;
        replies.push(Held(reply, result));
    }

    match conn.execute("COMMIT").await {
        Ok(_) => {
            done.into_iter().for_each(|(w, _)| w.answer(None));
            replies.into_iter().for_each(|r| r.answer(None));
        }
        Err(e) => {
            tracing::error!(error = %e, "sqlite commit failed; the batch was rolled back");
            let _ = conn.execute("ROLLBACK").await;
            let e = e.to_string();
            let failed = done.iter().filter(|(_, ok)| *ok).count()
                + replies.iter().filter(|r| r.1.is_ok()).count();
            tracing::error!(
                failed,
                "writes lost with the rolled-back batch were answered with errors"
            );
            done.into_iter().for_each(|(w, _)| w.answer(Some(&e)));
            replies.into_iter().for_each(|r| r.answer(Some(&e)));
        }
    }
}
