//! Sessions ended before their access tokens expire, in this process or shared through Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use uuid::Uuid;

use crate::error::ApiError;

/// Sessions ended before their access tokens expire (logout, password change, reuse
/// detection), kept until those tokens would have expired anyway. In-process by default; with
/// Redis configured, every gateway process sees every revocation.
#[derive(Clone)]
pub enum Revocations {
    /// This process only.
    Memory(Arc<Mutex<HashMap<Uuid, i64>>>),
    /// Shared through Redis keys that expire with the tokens.
    Redis {
        /// The connection pool.
        pool: deadpool_redis::Pool,
        /// Key prefix (`redis.prefix`).
        prefix: String,
    },
}

impl Default for Revocations {
    fn default() -> Self {
        Self::Memory(Arc::default())
    }
}

impl Revocations {
    fn key(prefix: &str, session: Uuid) -> String {
        format!("{prefix}coach:revoked:{session}")
    }

    /// Refuse the session's access tokens until `until` (unix seconds).
    pub async fn revoke(&self, session: Uuid, until: i64) -> Result<(), ApiError> {
        match self {
            Self::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let now = Utc::now().timestamp();
                map.retain(|_, exp| *exp > now);
                map.insert(session, until);
                Ok(())
            }
            Self::Redis { pool, prefix } => {
                let ttl = u64::try_from(until - Utc::now().timestamp())
                    .unwrap_or(0)
                    .max(1);
                let mut conn = pool
                    .get()
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
                deadpool_redis::redis::cmd("SET")
                    .arg(Self::key(prefix, session))
                    .arg(1)
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))
            }
        }
    }

    /// Whether the session was revoked. With Redis unreachable the answer is an error, not
    /// "no": a revoked session must not slip through.
    pub async fn is_revoked(&self, session: Uuid) -> Result<bool, ApiError> {
        match self {
            Self::Memory(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                Ok(map
                    .get(&session)
                    .is_some_and(|exp| *exp > Utc::now().timestamp()))
            }
            Self::Redis { pool, prefix } => {
                let mut conn = pool
                    .get()
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))?;
                deadpool_redis::redis::cmd("EXISTS")
                    .arg(Self::key(prefix, session))
                    .query_async::<bool>(&mut conn)
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("redis: {e}")))
            }
        }
    }
}
