//! Sessions ended before their access tokens expire, in this process (kept in the database
//! too, so a restart does not forget them) or shared through Redis.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::{Store, StoreError};
use crate::tenancy::SystemScope;

/// Sessions ended before their access tokens expire (logout, password change, reuse
/// detection), kept until those tokens would have expired anyway. Without Redis, this process
/// checks them in memory and writes them to the database, from which a restart reloads them
/// ([`Revocations::load`]); with Redis, every gateway process sees every revocation.
#[derive(Clone)]
pub enum Revocations {
    /// This process, written through to `store` when there is one.
    Memory {
        /// Session id to the unix second its tokens expire.
        cache: Arc<Mutex<HashMap<Uuid, i64>>>,
        /// Where they survive a restart.
        store: Option<Arc<dyn Store>>,
    },
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
        Self::Memory {
            cache: Arc::default(),
            store: None,
        }
    }
}

impl Revocations {
    /// In memory, kept in `store`.
    pub fn stored(store: Arc<dyn Store>) -> Self {
        Self::Memory {
            cache: Arc::default(),
            store: Some(store),
        }
    }

    /// Read the revocations that have not expired from the database (at start). Returns how
    /// many; nothing to do with Redis, which keeps its own.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let Self::Memory {
            cache,
            store: Some(store),
        } = self
        else {
            return Ok(0);
        };
        let now = Utc::now().timestamp();
        let stored = store
            .revoked_sessions(&SystemScope::new("load revocations"), now)
            .await?;
        let n = stored.len();
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(stored);
        Ok(n)
    }

    fn key(prefix: &str, session: Uuid) -> String {
        format!("{prefix}coach:revoked:{session}")
    }

    /// Refuse the session's access tokens until `until` (unix seconds).
    pub async fn revoke(&self, session: Uuid, until: i64) -> Result<(), ApiError> {
        match self {
            Self::Memory { cache, store } => {
                let now = Utc::now().timestamp();
                if let Some(store) = store {
                    store
                        .remember_revocation(
                            &SystemScope::new("revoke session"),
                            session,
                            until,
                            now,
                        )
                        .await?;
                }
                let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
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
            Self::Memory { cache, .. } => {
                let map = cache.lock().unwrap_or_else(|p| p.into_inner());
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
