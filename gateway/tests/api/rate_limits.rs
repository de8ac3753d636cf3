#![allow(clippy::unwrap_used, missing_docs)]
//! Rate limits shared through Redis: every gateway process draws from the same budget.

use std::net::IpAddr;

use coach_gateway::config::RateLimitConfig;
use coach_gateway::error::ApiError;
use coach_gateway::http::limits::Limits;

fn pool(url: &str) -> deadpool_redis::Pool {
    deadpool_redis::Config::from_url(url)
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .unwrap()
}

fn config() -> RateLimitConfig {
    RateLimitConfig {
        auth_per_minute: 3,
        tenant_per_second: 1,
        tenant_burst: 2,
    }
}

#[tokio::test]
async fn two_processes_share_one_budget() {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4());
    let url = coach_e2e::redis_url();
    let a = Limits::shared(&config(), pool(&url), prefix.clone());
    let b = Limits::shared(&config(), pool(&url), prefix.clone());
    let ip: IpAddr = "198.51.100.7".parse().unwrap();
    a.auth_attempt(ip).await.unwrap();
    a.auth_attempt(ip).await.unwrap();
    b.auth_attempt(ip).await.unwrap();
    for limits in [&a, &b] {
        match limits.auth_attempt(ip).await {
            Err(ApiError::TooManyRequests {
                retry_after_secs,
                limit,
            }) => {
                assert!((1..=20).contains(&retry_after_secs), "{retry_after_secs}");
                assert_eq!(limit, 3);
            }
            other => panic!("the fourth attempt across two processes passed: {other:?}"),
        }
    }
    let other: IpAddr = "198.51.100.8".parse().unwrap();
    b.auth_attempt(other).await.unwrap();

    let tenant = uuid::Uuid::new_v4();
    a.tenant_request(tenant).await.unwrap();
    b.tenant_request(tenant).await.unwrap();
    assert!(matches!(
        a.tenant_request(tenant).await,
        Err(ApiError::TooManyRequests { .. })
    ));
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_this_process() {
    let limits = Limits::shared(&config(), pool("redis://127.0.0.1:1"), "x:".into());
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    for _ in 0..3 {
        limits.auth_attempt(ip).await.unwrap();
    }
    assert!(matches!(
        limits.auth_attempt(ip).await,
        Err(ApiError::TooManyRequests { .. })
    ));
}
