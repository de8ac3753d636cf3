//! The single SQLite writer: requests queue on a channel; the task takes as many as are waiting
//! (up to the batch limit), runs each inside a savepoint of one `BEGIN IMMEDIATE` transaction,
//! commits once, and only then answers each caller. A caller's `Ok` therefore always means
//! "durably committed".

use std::any::Any;

use futures::future::BoxFuture;
use sqlx::Executor;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

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
        self.tx
            .send(Request::Write { run, reply })
            .await
            .map_err(|_| StoreError::Unavailable("store is closed".into()))?;
        let out = rx
            .await
            .map_err(|_| StoreError::Unavailable("store writer stopped".into()))??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Corrupt("writer returned an unexpected type".into()))
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
    let mut batch = Vec::with_capacity(max_batch);
    let mut closing = None;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write { run, reply } => batch.push((run, reply)),
                Request::Close { done } => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, &mut batch).await;
        }
        if let Some(done) = closing.take() {
            rx.close();
            while let Ok(request) = rx.try_recv() {
                match request {
                    Request::Write { reply, .. } => {
                        let _ = reply.send(Err(StoreError::Unavailable("store is closed".into())));
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

type Pending = (WriteFn, oneshot::Sender<Result<Output, StoreError>>);

async fn commit_batch(conn: &mut SqliteConnection, batch: &mut Vec<Pending>) {
    metrics::histogram!("store_write_batch_size").record(batch.len() as f64);
    if let Err(e) = conn.execute("BEGIN IMMEDIATE").await {
        for (_, reply) in batch.drain(..) {
            let _ = reply.send(Err(StoreError::Unavailable(format!("begin: {e}"))));
        }
        return;
    }
    // Each write runs inside its own savepoint; releasing one and opening the next is a single
    // round trip to the SQLite thread.
    let mut results = Vec::with_capacity(batch.len());
    let mut open = conn
        .execute("SAVEPOINT w")
        .await
        .map(|_| ())
        .map_err(StoreError::from);
    for (run, reply) in batch.drain(..) {
        let result = match open {
            Ok(()) => run(conn).await,
            Err(ref e) => Err(StoreError::Unavailable(format!("savepoint: {e}"))),
        };
        let next = if result.is_ok() {
            "RELEASE w; SAVEPOINT w"
        } else {
            "ROLLBACK TO w; RELEASE w; SAVEPOINT w"
        };
        open = conn
            .execute(next)
            .await
            .map(|_| ())
            .map_err(StoreError::from);
        if let Err(e) = &open {
            tracing::error!(error = %e, "sqlite savepoint cleanup failed");
        }
        results.push((reply, result));
    }
    if let Err(e) = conn.execute("RELEASE w").await {
        tracing::error!(error = %e, "sqlite savepoint release failed");
    }
    match conn.execute("COMMIT").await {
        Ok(_) => {
            for (reply, result) in results {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "sqlite commit failed; the batch was rolled back");
            let _ = conn.execute("ROLLBACK").await;
            for (reply, result) in results {
                let _ =
                    reply.send(result.and(Err(StoreError::Unavailable(format!("commit: {e}")))));
            }
        }
    }
}
