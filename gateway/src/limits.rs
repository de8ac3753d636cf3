//! Rate limits: per client address on the authentication endpoints, per tenant on the rest of
//! the admin API. Beyond them: 429 with `Retry-After` and `RateLimit-*` headers.
//!
//! In one process the limiters are governor's. With Redis configured, every gateway process
//! counts against the same budget: the same algorithm (GCRA) runs as a Redis script on Redis's
//! clock, and governor takes over again if Redis cannot be reached (a limit must not become an
//! outage).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::RateLimitConfig;
use crate::error::ApiError;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// The gateway's rate limiters.
#[derive(Clone)]
pub struct Limits {
    auth: Arc<Keyed<IpAddr>>,
    tenant: Arc<Keyed<Uuid>>,
    shared: Option<Shared>,
}

/// Limits shared by every process through Redis.
#[derive(Clone)]
struct Shared {
    pool: deadpool_redis::Pool,
    prefix: String,
    auth: Gcra,
    tenant: Gcra,
}

/// A quota as GCRA parameters: one request per `interval_us`, up to `burst` at once.
#[derive(Clone, Copy, Debug)]
struct Gcra {
    interval_us: u64,
    burst: u32,
}

/// GCRA on Redis's clock, in microseconds (fine enough for 80 messages a second). The key holds
/// the theoretical arrival time of the next request; a request is allowed when that time is
/// less than `burst` intervals (`ARGV[2]`, `ARGV[1]`) ahead of now. Returns `{allowed,
/// wait_us}`. The time is written with `%d`: Lua's default number format keeps 14 digits, a
/// microsecond clock has 16.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - (burst - 1) * interval
if now < allow_at then return {0, allow_at - now} end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return {1, 0}
";

/// One request against `quota` on `key`: `None` when allowed now, else how long to wait. An
/// error when Redis cannot be reached.
async fn take(
    pool: &deadpool_redis::Pool,
    key: String,
    quota: Gcra,
) -> Result<Option<Duration>, String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let (allowed, wait_us): (u64, u64) = deadpool_redis::redis::Script::new(GCRA)
        .key(key)
        .arg(quota.interval_us)
        .arg(quota.burst)
        .invoke_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok((allowed != 1).then(|| Duration::from_micros(wait_us.max(1))))
}

impl Shared {
    async fn check(&self, quota: Gcra, key: String) -> Result<(), ApiError> {
        // `rl:`: the budgets in microseconds (the `ratelimit:` keys of earlier versions held
        // milliseconds and run out by themselves).
        match take(&self.pool, format!("{}rl:{key}", self.prefix), quota).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                limit: quota.burst,
            }),
            Err(e) => Err(ApiError::Unavailable(format!("redis: {e}"))),
        }
    }
}

/// Provider pacing shared by every gateway process on one Redis: N processes together send at
/// a channel's rate, not N times it.
#[derive(Clone)]
pub struct SharedPace {
    pool: deadpool_redis::Pool,
    prefix: String,
}

impl SharedPace {
    /// Take a turn on `key` at `per_second` (a burst of the rate rounded, at least 1, like the
    /// in-process limiter): `None` when it is taken now, else how long to wait before asking
    /// again. An error when Redis cannot be reached (the caller paces in its process).
    pub async fn take(&self, key: &str, per_second: f64) -> Result<Option<Duration>, String> {
        let per_second = per_second.clamp(0.2, 1_000_000.0);
        let quota = Gcra {
            interval_us: (1_000_000.0 / per_second).round().max(1.0) as u64,
            burst: per_second.round().max(1.0) as u32,
        };
        take(&self.pool, format!("{}pace:{key}", self.prefix), quota).await
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn verdict<K: std::hash::Hash + Eq + Clone>(limiter: &Keyed<K>, key: &K) -> Result<(), ApiError> {
    match limiter.check_key(key) {
        Ok(_) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Err(ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                limit: not_until.quota().burst_size().get(),
            })
        }
    }
}

impl Limits {
    /// Limiters with the configured quotas, kept in this process.
    pub fn new(config: &RateLimitConfig) -> Self {
        let auth = Quota::per_minute(nonzero(config.auth_per_minute));
        let tenant = Quota::per_second(nonzero(config.tenant_per_second))
            .allow_burst(nonzero(config.tenant_burst));
        Self {
            auth: Arc::new(RateLimiter::keyed(auth).with_middleware()),
            tenant: Arc::new(RateLimiter::keyed(tenant).with_middleware()),
            shared: None,
        }
    }

    /// Limiters whose budgets every gateway process sharing this Redis (and `prefix`) draws from.
    pub fn shared(config: &RateLimitConfig, pool: deadpool_redis::Pool, prefix: String) -> Self {
        let per = |n: u32, period_us: u64| period_us / u64::from(n.max(1));
        Self {
            shared: Some(Shared {
                pool,
                prefix,
                auth: Gcra {
                    interval_us: per(config.auth_per_minute, 60_000_000),
                    burst: config.auth_per_minute.max(1),
                },
                tenant: Gcra {
                    interval_us: per(config.tenant_per_second, 1_000_000),
                    burst: config.tenant_burst.max(1),
                },
            }),
            ..Self::new(config)
        }
    }

    /// Provider pacing shared through the same Redis, when there is one.
    pub fn shared_pace(&self) -> Option<SharedPace> {
        self.shared.as_ref().map(|s| SharedPace {
            pool: s.pool.clone(),
            prefix: s.prefix.clone(),
        })
    }

    /// One authentication attempt from `ip`.
    pub async fn auth_attempt(&self, ip: IpAddr) -> Result<(), ApiError> {
        if let Some(shared) = &self.shared {
            match shared.check(shared.auth, format!("auth:{ip}")).await {
                Err(ApiError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "shared rate limit unavailable; limiting in this process");
                }
                verdict => return verdict,
            }
        }
        verdict(&self.auth, &ip)
    }

    /// One admin API request of `tenant`.
    pub async fn tenant_request(&self, tenant: Uuid) -> Result<(), ApiError> {
        if let Some(shared) = &self.shared {
            match shared
                .check(shared.tenant, format!("tenant:{tenant}"))
                .await
            {
                Err(ApiError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "shared rate limit unavailable; limiting in this process");
                }
                verdict => return verdict,
            }
        }
        verdict(&self.tenant, &tenant)
    }

    /// Forget keys that are back to full capacity (called periodically).
    pub fn prune(&self) {
        self.auth.retain_recent();
        self.tenant.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[tokio::test]
    async fn beyond_the_quota_comes_a_429_with_retry_after() {
        let limits = Limits::new(&RateLimitConfig {
            auth_per_minute: 2,
            tenant_per_second: 1,
            tenant_burst: 1,
        });
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(limits.auth_attempt(ip).await.is_ok());
        assert!(limits.auth_attempt(ip).await.is_ok());
        match limits.auth_attempt(ip).await {
            Err(ApiError::TooManyRequests {
                retry_after_secs,
                limit,
            }) => {
                assert!((1..=60).contains(&retry_after_secs));
                assert_eq!(limit, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            limits
                .auth_attempt("192.0.2.1".parse().unwrap())
                .await
                .is_ok(),
            "other clients are unaffected"
        );
    }
}
