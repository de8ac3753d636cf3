//! The single SQLite writer: requests queue on a channel; the task takes as many as are waiting
//! (up to the batch limit), runs them inside one `BEGIN IMMEDIATE` transaction, commits once, and
//! only then answers each caller. A caller's `Ok` therefore always means "durably committed".
//!
//! Each write runs in its own savepoint, so one failure never affects another. Ingest requests
//! of a batch are first tried together, set-based (`bulk.rs`); if that fails they are rolled back
//! and retried one savepoint each, which gives every request its own answer.

use std::any::Any;

use futures::future::BoxFuture;
use sqlx::Executor;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::bulk::{self, IngestRequest};
use super::ops;
use crate::store::{IngestReport, StoreError};

type Output = Box<dyn Any + Send>;
type WriteFn = Box<
    dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<Output, StoreError>>
        + Send,
>;

enum Request {
    Write {
        run: WriteFn,
        reply: oneshot::Sender<Result<Output, StoreError>>,
    },
    Ingest(IngestRequest),
    Close {
        done: oneshot::Sender<()>,
    },
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
        let run: WriteFn = Box::new(move |conn| {
            Box::pin(async move { f(conn).await.map(|t| Box::new(t) as Output) })
        });
        self.submit(Request::Write { run, reply }).await?;
        let out = rx
            .await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Corrupt("writer returned an unexpected type".into()))
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
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write { run, reply } => writes.push((run, reply)),
                Request::Ingest(request) => ingests.push(request),
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
        if let Some(done) = closing.take() {
            rx.close();
            while let Ok(request) = rx.try_recv() {
                let closed = || StoreError::Unavailable("store is closed".into());
                match request {
                    Request::Write { reply, .. } => {
                        let _ = reply.send(Err(closed()));
                    }
                    Request::Ingest(r) => {
                        let _ = r.reply.send(Err(closed()));
                    }
                    Request::Close { done } => {
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

/// An answer held back until the transaction commits.
enum Reply {
    Write(
        oneshot::Sender<Result<Output, StoreError>>,
        Result<Output, StoreError>,
    ),
    Ingest(
        oneshot::Sender<Result<IngestReport, StoreError>>,
        Result<IngestReport, StoreError>,
    ),
}

impl Reply {
    fn ok(&self) -> bool {
        match self {
            Self::Write(_, r) => r.is_ok(),
            Self::Ingest(_, r) => r.is_ok(),
        }
    }

    /// Deliver the result, or `commit_error` to a caller whose write was lost with the batch.
    fn send(self, commit_error: Option<&str>) {
        let lost = |e: &str| StoreError::Unavailable(format!("commit: {e}"));
        match self {
            Self::Write(tx, r) => {
                let _ = tx.send(match commit_error {
                    Some(e) if r.is_ok() => Err(lost(e)),
                    _ => r,
                });
            }
            Self::Ingest(tx, r) => {
                let _ = tx.send(match commit_error {
                    Some(e) if r.is_ok() => Err(lost(e)),
                    _ => r,
                });
            }
        }
    }
}

/// Run `f` in savepoint `w`: released when it succeeds, rolled back when it fails.
async fn in_savepoint<T>(
    conn: &mut SqliteConnection,
    f: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute("SAVEPOINT w").await?;
    let result = f(&mut *conn).await;
    let end = if result.is_ok() {
        "RELEASE w"
    } else {
        "ROLLBACK TO w; RELEASE w"
    };
    if let Err(e) = conn.execute(end).await {
        tracing::error!(error = %e, "sqlite savepoint cleanup failed");
        return Err(e.into());
    }
    result
}

async fn commit_batch(
    conn: &mut SqliteConnection,
    writes: &mut Vec<(WriteFn, oneshot::Sender<Result<Output, StoreError>>)>,
    ingests: &mut Vec<IngestRequest>,
) {
    metrics::histogram!("store_write_batch_size").record((writes.len() + ingests.len()) as f64);
    let mut replies = Vec::with_capacity(writes.len() + ingests.len());
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        let e = e.to_string();
        for (_, reply) in writes.drain(..) {
            Reply::Write(reply, Err(StoreError::Unavailable(format!("begin: {e}")))).send(None);
        }
        for r in ingests.drain(..) {
            Reply::Ingest(r.reply, Err(StoreError::Unavailable(format!("begin: {e}")))).send(None);
        }
        return;
    }
    for (run, reply) in writes.drain(..) {
        let result = in_savepoint(conn, async |c| run(c).await).await;
        replies.push(Reply::Write(reply, result));
    }

    let (bulk_ready, single): (Vec<_>, Vec<_>) =
        ingests.drain(..).partition(IngestRequest::bulk_ready);
    let mut single = single;
    if !bulk_ready.is_empty() {
        match in_savepoint(conn, async |c| bulk::ingest(c, &bulk_ready).await).await {
            Ok(results) => {
                for (request, result) in bulk_ready.into_iter().zip(results) {
                    replies.push(Reply::Ingest(request.reply, result));
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
            ops::ingest(c, tenant, channel, events, now).await
        })
        .await;
        replies.push(Reply::Ingest(reply, result));
    }

    match conn.execute("COMMIT").await {
        Ok(_) => replies.into_iter().for_each(|r| r.send(None)),
        Err(e) => {
            tracing::error!(error = %e, "sqlite commit failed; the batch was rolled back");
            let _ = conn.execute("ROLLBACK").await;
            let e = e.to_string();
            let failed = replies.iter().filter(|r| r.ok()).count();
            tracing::error!(
                failed,
                "writes lost with the rolled-back batch were answered with errors"
            );
            replies.into_iter().for_each(|r| r.send(Some(&e)));
        }
    }
}
