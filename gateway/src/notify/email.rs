//! E-mail to the team, through the configured SMTP relay (`smtp.url`), on handoff (once per
//! wait, queued in the handoff's transaction) and when a contact writes to a snoozed
//! conversation (queued with their message): to the conversation's assignee when they take
//! e-mail, else to every owner and admin who does (`PUT /v1/me/notifications`). The message is
//! read when the e-mail is sent, so an erased conversation is never mailed. A failing channel
//! (see [`health`](super::health)) is mailed to the owners and admins who take e-mail.

use std::time::Duration;

use coach_connector_api::ConversationId;

use crate::jobs::{ClaimOrder, Handler, JobKind, Outcome, Policy, Retry};
use crate::notify::Notice;
use crate::state::AppState;
use crate::store::{QueueItem, StoreError};
use crate::tenancy::SystemScope;

/// Sends handoff e-mail (`email` jobs).
pub struct Mailer;

#[async_trait::async_trait]
impl Handler for Mailer {
    type Job = Notice;
    type Batch = ();
    const KIND: JobKind = JobKind::Email;

    fn policy(&self, _state: &AppState) -> Policy {
        Policy {
            batch: 8,
            concurrency: 4,
            lease: Duration::from_secs(60),
            idle: Duration::from_secs(1),
            order: ClaimOrder::Fair,
            retry: Retry {
                max_attempts: Some(8),
                base: Duration::from_secs(30),
                max: Duration::from_secs(3600),
            },
        }
    }

    async fn run(&self, state: &AppState, (): &(), item: &QueueItem, notice: Notice) -> Outcome {
        match send(state, item, &notice.0).await {
            Ok(()) => Outcome::Done,
            Err(error) if self.policy(state).last_attempt(item) => {
                tracing::warn!(job = %item.id, %error, "handoff e-mail given up");
                Outcome::dead("email", error)
            }
            Err(error) => Outcome::Failed(error),
        }
    }
}

/// Claims and sends due handoff e-mail; returns how many ran.
pub async fn poll_once(state: &AppState) -> Result<usize, StoreError> {
    crate::jobs::run_once(Mailer, state).await
}

async fn send(
    state: &AppState,
    item: &QueueItem,
    payload: &serde_json::Value,
) -> Result<(), String> {
    // The relay was removed from the configuration meanwhile: nothing to send.
    let Some(mailer) = state.auth.mailer() else {
        return Ok(());
    };
    if payload.get("type").and_then(|v| v.as_str()) == Some(crate::store::notices::CHANNEL_ALERT) {
        return channel_alert(state, mailer, item, payload).await;
    }
    let scope = SystemScope::new("mailer").for_tenant(item.tenant_id);
    let (Some(message_id), Some(conversation)) = (
        item.message_id,
        payload
            .get("conversation_id")
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse().ok())
            .map(ConversationId),
    ) else {
        return Err("a handoff e-mail without its message".into());
    };
    let message = match state.store.message(&scope, message_id).await {
        Ok(message) => message,
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let recipients = state
        .store
        .email_recipients(&scope, conversation)
        .await
        .map_err(|e| e.to_string())?;
    if recipients.is_empty() {
        return Ok(());
    }
    let who = match state.store.contact(&scope, message.contact_id).await {
        Ok(contact) => contact.display_name.filter(|n| !n.trim().is_empty()),
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    .unwrap_or_else(|| "A coachee".into());
    let question = crate::voice::inbound_text(&message.content).unwrap_or_default();
    let woken = payload.get("type").and_then(|v| v.as_str())
        == Some(crate::store::notices::CONVERSATION_WOKEN);
    let reason = payload.get("reason").and_then(|v| v.as_str()).unwrap_or("");
    let (subject, why) = match reason {
        _ if woken => (
            format!("{who} wrote again"),
            "They wrote to a conversation you had snoozed.",
        ),
        "crisis" => (
            format!("Urgent: {who} may need help now"),
            "Their message may signal a crisis. The coach did not answer it.",
        ),
        "low_confidence" => (
            format!("{who} asked something the coach could not answer"),
            "The coach's knowledge did not cover the question.",
        ),
        "quota_reached" => (
            format!("{who} is waiting for the team"),
            "The coach had given all the answers its daily quota allows.",
        ),
        _ => (
            format!("{who} asked for a person"),
            "They asked to talk to someone from the team.",
        ),
    };
    let link = format!(
        "{}/console#/inbox/{}",
        state.config.public_url.trim_end_matches('/'),
        conversation
    );
    let body = format!(
        "{who} is waiting for a reply. {why}\n\n> {}\n\nOpen the conversation: {link}\n\n\
         You get this e-mail because notifications are on for you; turn them off in the \
         console under Settings.\n",
        question
            .chars()
            .take(1000)
            .collect::<String>()
            .replace('\n', "\n> "),
    );
    mail_all(mailer, item, &recipients, &subject, &body).await
}

/// Mail everyone in `recipients`. Once someone got it, a failure for another is logged rather
/// than retried (a retry would mail again everyone who has it); nobody reached is retried.
async fn mail_all(
    mailer: &crate::auth::mail::Mailer,
    item: &QueueItem,
    recipients: &[String],
    subject: &str,
    body: &str,
) -> Result<(), String> {
    let mut sent = 0;
    let mut last_error = None;
    for to in recipients {
        match mailer.send(to, subject, body.to_owned()).await {
            Ok(()) => sent += 1,
            Err(error) => {
                tracing::warn!(job = %item.id, %error, "a team e-mail was not sent");
                last_error = Some(error);
            }
        }
    }
    match last_error {
        Some(error) if sent == 0 => Err(error),
        _ => Ok(()),
    }
}

/// The team's e-mail that a channel is failing: to every owner and admin who takes e-mail,
/// judged again when it is sent (a channel fixed or removed meanwhile is not mailed about).
async fn channel_alert(
    state: &AppState,
    mailer: &crate::auth::mail::Mailer,
    item: &QueueItem,
    payload: &serde_json::Value,
) -> Result<(), String> {
    let scope = SystemScope::new("mailer").for_tenant(item.tenant_id);
    let channel = payload
        .get("channel_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok())
        .map(coach_connector_api::ChannelId);
    let problem = payload.get("problem").and_then(|v| v.as_str());
    let (Some(channel), Some(problem)) = (channel, problem) else {
        return Err("a channel alert without its channel or problem".into());
    };
    let all =
        crate::notify::health::check(&*state.store, &state.connectors, &scope, chrono::Utc::now())
            .await
            .map_err(|e| e.to_string())?;
    let Some(health) = all.iter().find(|h| h.channel_id == channel) else {
        return Ok(());
    };
    let Some(found) = health.problems.iter().find(|p| p.code == problem) else {
        return Ok(());
    };
    let recipients = state
        .store
        .team_recipients(&scope)
        .await
        .map_err(|e| e.to_string())?;
    if recipients.is_empty() {
        return Ok(());
    }
    let name = &health.name;
    let (subject, what) = if found.code == "token" {
        (
            format!("Your channel \"{name}\" stopped sending: its access token no longer works"),
            "The provider refused the channel's credentials, so no message can go out on it \
             until a new token is saved. Open the channel in the console, paste a new token, \
             then resend the failed messages from Activity.",
        )
    } else {
        (
            format!("Messages keep failing on your channel \"{name}\""),
            "Several messages could not be delivered in the last 24 hours. The console's \
             Activity screen lists them with the provider's reasons and can send them again.",
        )
    };
    let link = format!(
        "{}/console#/channels",
        state.config.public_url.trim_end_matches('/')
    );
    let body = format!(
        "{what}\n\nChannel: {name} ({kind})\nFailed messages in the last 24 hours: {dead}\n\
         Latest error: {detail}\n\nOpen the channel: {link}\n\n\
         You get this e-mail because you are an owner or admin with notifications on; turn them \
         off in the console under Settings.\n",
        kind = health.kind,
        dead = health.dead_letters,
        detail = found.detail.as_deref().unwrap_or("none recorded"),
    );
    mail_all(mailer, item, &recipients, &subject, &body).await
}
