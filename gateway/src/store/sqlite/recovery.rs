//! Start-up recovery of the embedded database: it belongs to one gateway process, so whatever
//! is marked in flight when that process starts was left by an earlier run that crashed.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use crate::store::StoreError;

/// Makes every job and outbox row left in flight due now; returns how many.
pub(super) async fn release_in_flight(
    conn: &mut SqliteConnection,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut released = 0;
    for table in ["jobs", "outbox"] {
        released += sqlx::query(&format!(
            "UPDATE {table} SET locked_until = $1, updated_at = $1 \
             WHERE state = 'inflight' AND locked_until > $1"
        ))
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    Ok(released)
}
