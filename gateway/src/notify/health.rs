//! Channel health: whether each channel's messages are getting out, read from the outbox of the
//! last 24 hours. A channel is `failing` when its latest dead letter says its credentials
//! stopped working (the connector's [`auth_failed`](coach_connector_api::Connector::auth_failed):
//! WhatsApp 190, Telegram 401) and nothing was sent since, and `warning` when
//! [`DEAD_LETTER_ALERT`] or more messages died in the window. Shown by
//! `GET /v1/channels/health` and the console's Channels screen; each problem is mailed to the
//! owners and admins once per channel and day (`email` jobs keyed by channel, problem and day),
//! queued when a message dies.

use chrono::{DateTime, Duration, Utc};
use coach_connector_api::ChannelId;
use serde::Serialize;

use crate::connectors::Connectors;
use crate::store::delivery::ChannelFailures;
use crate::store::{Channel, Store, StoreError};
use crate::tenancy::TenantScope;

/// The window health is judged on.
pub const WINDOW_HOURS: i64 = 24;
/// Dead letters in the window that make a channel's health a warning.
pub const DEAD_LETTER_ALERT: i64 = 5;

/// What is wrong with a channel.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChannelProblem {
    /// `token` (its credentials stopped working) or `dead_letters` (messages keep failing).
    pub code: &'static str,
    /// The provider's latest error (`code: message`).
    pub detail: Option<String>,
    /// When it was last seen.
    pub at: Option<DateTime<Utc>>,
}

/// One channel's health.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChannelHealth {
    /// The channel.
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// `ok`, `warning` (messages keep dying) or `failing` (nothing can be sent until a
    /// creator fixes the channel).
    pub status: &'static str,
    /// What is wrong, worst first.
    pub problems: Vec<ChannelProblem>,
    /// Dead letters in the last 24 hours.
    pub dead_letters: i64,
    /// When a message last went out (within the window).
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// Judge one channel from its recent sends; `auth_failed` tells a credentials error by code.
pub fn assess(
    channel: &Channel,
    failures: Option<&ChannelFailures>,
    auth_failed: impl Fn(&str) -> bool,
) -> ChannelHealth {
    let mut problems = Vec::new();
    let (dead, last_sent_at) = failures.map_or((0, None), |f| (f.dead, f.last_sent_at));
    if let Some(f) = failures {
        let code = f
            .last_error
            .as_deref()
            .and_then(|e| e.split(':').next())
            .unwrap_or("");
        let sent_since = matches!((f.last_sent_at, f.last_dead_at), (Some(s), Some(d)) if s > d);
        if f.dead > 0 && auth_failed(code) && !sent_since {
            problems.push(ChannelProblem {
                code: "token",
                detail: f.last_error.clone(),
                at: f.last_dead_at,
            });
        }
        if f.dead >= DEAD_LETTER_ALERT {
            problems.push(ChannelProblem {
                code: "dead_letters",
                detail: f.last_error.clone(),
                at: f.last_dead_at,
            });
        }
    }
    let status = match problems.first().map(|p| p.code) {
        Some("token") => "failing",
        Some(_) => "warning",
        None => "ok",
    };
    ChannelHealth {
        channel_id: channel.id,
        kind: channel.kind.to_string(),
        name: channel.name.clone(),
        status,
        problems,
        dead_letters: dead,
        last_sent_at,
    }
}

/// The health of every channel of the scope's tenant.
pub async fn check(
    store: &dyn Store,
    connectors: &Connectors,
    scope: &TenantScope,
    now: DateTime<Utc>,
) -> Result<Vec<ChannelHealth>, StoreError> {
    let channels = store.channels(scope).await?;
    let failures = store
        .channel_failures(scope, now - Duration::hours(WINDOW_HOURS))
        .await?;
    Ok(channels
        .iter()
        .map(|c| {
            let f = failures.iter().find(|f| f.channel_id == c.id);
            let connector = connectors.get(&c.kind);
            assess(c, f, |code| connector.is_some_and(|k| k.auth_failed(code)))
        })
        .collect())
}

/// After a message of `channel` died: queue the team's e-mail for each problem the channel
/// now has, once per channel, problem and day.
pub async fn alert(
    store: &dyn Store,
    connectors: &Connectors,
    scope: &TenantScope,
    channel: ChannelId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let all = check(store, connectors, scope, now).await?;
    let Some(health) = all.iter().find(|h| h.channel_id == channel) else {
        return Ok(());
    };
    for problem in &health.problems {
        if store
            .queue_channel_alert(scope, channel, problem.code, now.date_naive())
            .await?
        {
            tracing::warn!(%channel, problem = problem.code, "channel alert queued for the team");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use coach_connector_api::{ChannelKind, TenantId};

    fn channel() -> Channel {
        Channel {
            id: ChannelId(uuid::Uuid::now_v7()),
            tenant_id: TenantId(uuid::Uuid::now_v7()),
            kind: ChannelKind::WhatsApp,
            name: "Main".into(),
            config: serde_json::json!({}),
            enabled: true,
            created_at: Utc::now(),
        }
    }

    fn failures(c: &Channel, dead: i64, error: &str, sent_after: bool) -> ChannelFailures {
        let died = Utc::now() - Duration::minutes(5);
        ChannelFailures {
            channel_id: c.id,
            dead,
            last_dead_at: Some(died),
            last_error: Some(error.into()),
            last_sent_at: Some(died + Duration::minutes(if sent_after { 1 } else { -1 })),
        }
    }

    #[test]
    fn a_credentials_error_fails_the_channel_until_a_message_goes_out() {
        let c = channel();
        let auth = |code: &str| code == "190";
        let h = assess(
            &c,
            Some(&failures(&c, 1, "190: token expired", false)),
            auth,
        );
        assert_eq!(h.status, "failing");
        assert_eq!(h.problems[0].code, "token");
        assert_eq!(h.problems[0].detail.as_deref(), Some("190: token expired"));
        let fixed = assess(&c, Some(&failures(&c, 1, "190: token expired", true)), auth);
        assert_eq!(fixed.status, "ok", "{fixed:?}");
        let other = assess(
            &c,
            Some(&failures(&c, 1, "131026: undeliverable", false)),
            auth,
        );
        assert_eq!(other.status, "ok", "one undeliverable message is no alert");
        assert_eq!(assess(&c, None, auth).status, "ok");
    }

    #[test]
    fn dead_letters_rising_warn() {
        let c = channel();
        let auth = |_: &str| false;
        let below = assess(
            &c,
            Some(&failures(&c, DEAD_LETTER_ALERT - 1, "131026: x", false)),
            auth,
        );
        assert_eq!(below.status, "ok");
        let at = assess(
            &c,
            Some(&failures(&c, DEAD_LETTER_ALERT, "131026: x", true)),
            auth,
        );
        assert_eq!(at.status, "warning");
        assert_eq!(at.problems[0].code, "dead_letters");
        assert_eq!(at.dead_letters, DEAD_LETTER_ALERT);
    }
}
