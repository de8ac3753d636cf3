//! Delivery through connectors: the outbox's [`Sender`]. Each row's message is rendered by
//! its channel's connector at send time (credentials are opened then, never stored in rows),
//! paced per channel account and per recipient, and executed in order; the connector judges
//! each answer. Signals (typing, read receipts) take the same path without a row.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use coach_connector_api::{
    ChannelId, ChannelKind, ConnectorError, ConversationId, OutboundBody, OutboundMessage,
    ProviderError, SendContext, SendOutcome,
};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Connectors;
use crate::clock::Clock;
use crate::limits::SharedPace;
use crate::outbox::{Delivery, Sender};
use crate::secrets::SecretBox;
use crate::store::{Channel, QueueItem, Store, StoreError};
use crate::tenancy::{SystemScope, TenantScope};
use sha2::{Digest as _, Sha256};

/// Rate limits of one channel account.
struct Pace {
    account: DefaultDirectRateLimiter,
    recipients: DefaultKeyedRateLimiter<String>,
}

/// The longest a send waits for its channel's pace before it is retried later instead.
const MAX_PACING_WAIT: Duration = Duration::from_secs(10);

fn quota(per_second: f64) -> Quota {
    let per_second = per_second.clamp(0.2, 10_000.0);
    if per_second >= 1.0 {
        let n = NonZeroU32::new(per_second.round() as u32).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(n)
    } else {
        Quota::with_period(Duration::from_secs_f64(1.0 / per_second))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
    }
}

/// The turn to upload one file to one channel.
type UploadTurn = Arc<tokio::sync::Mutex<()>>;

/// Sends outbox rows and signals through the registered connectors.
pub struct ConnectorSender {
    store: Arc<dyn Store>,
    secrets: SecretBox,
    connectors: Arc<Connectors>,
    pacing: Mutex<HashMap<ChannelId, Arc<Pace>>>,
    /// One upload at a time per file and channel: the rows of a program step wait for the
    /// first upload and send by its id.
    uploads: Mutex<HashMap<(uuid::Uuid, ChannelId), UploadTurn>>,
    /// With Redis, every process paces a channel against the same budget; the in-process
    /// limiters are the fallback when Redis cannot be reached.
    shared: Option<SharedPace>,
    clock: Clock,
}

impl ConnectorSender {
    /// A sender over these parts; window rules are judged on `clock`, pacing shared through
    /// `shared` when given.
    pub fn new(
        store: Arc<dyn Store>,
        secrets: SecretBox,
        connectors: Arc<Connectors>,
        clock: Clock,
        shared: Option<SharedPace>,
    ) -> Self {
        Self {
            store,
            secrets,
            connectors,
            pacing: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            shared,
            clock,
        }
    }

    /// Wait for a turn on `key` in the shared pace; `false` when there is none or Redis cannot
    /// be reached (then the process's own limiter paces).
    async fn shared_turn(&self, key: &str, per_second: f64) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        loop {
            match shared.take(key, per_second).await {
                Ok(None) => return true,
                Ok(Some(wait)) => tokio::time::sleep(wait).await,
                Err(e) => {
                    tracing::warn!(error = %e, "shared pacing unavailable; pacing in this process");
                    return false;
                }
            }
        }
    }

    fn pace(&self, channel: &Channel, per_second: f64, per_recipient: f64) -> Arc<Pace> {
        let mut pacing = self
            .pacing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pacing.len() > 10_000 {
            pacing.clear();
        }
        let pace = pacing
            .entry(channel.id)
            .or_insert_with(|| {
                Arc::new(Pace {
                    account: RateLimiter::direct(quota(per_second)),
                    recipients: RateLimiter::keyed(quota(per_recipient)),
                })
            })
            .clone();
        // Recipients seen long enough ago are forgotten, so the map stays bounded.
        if pace.recipients.len() > 10_000 {
            pace.recipients.retain_recent();
        }
        pace
    }

    /// Deliver one message (or signal) of a conversation through its channel now.
    async fn deliver(
        &self,
        scope: &TenantScope,
        channel_id: ChannelId,
        conversation_id: ConversationId,
        message: OutboundMessage,
    ) -> Delivery {
        let channel = match self.store.channel(scope, channel_id).await {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => {
                return failed("channel_removed", "the channel was removed");
            }
            Err(e) => return retry(format!("store: {e}")),
        };
        if channel.kind == ChannelKind::WebWidget {
            // Visitors read stored messages through the conversation stream.
            return Delivery::Sent {
                provider_message_id: None,
            };
        }
        if !channel.enabled {
            return retry("the channel is disabled".into());
        }
        let Some(connector) = self.connectors.get(&channel.kind) else {
            return retry(format!(
                "no connector registered for channel kind {}",
                channel.kind
            ));
        };
        let config = match self.connectors.channel_config(&channel, &self.secrets) {
            Ok(c) => c,
            Err(e) => return failed("channel_config", &e.to_string()),
        };
        let (message, cached) = match self
            .with_file(connector.as_ref(), scope, &channel, &config, message, true)
            .await
        {
            Ok(ready) => ready,
            Err(delivery) => return delivery,
        };
        let mut delivery = self
            .attempt(connector.as_ref(), &channel, &config, &message)
            .await;
        // A file sent by an id kept from an earlier upload that the provider refuses for good
        // (it dropped the file, or the channel's account changed): upload it again, once.
        if let (Delivery::Failed(e), Some(file)) = (&delivery, cached)
            && e.code != "held"
            && !connector.closes_window(&e.code)
        {
            tracing::info!(%file, code = %e.code, "a kept upload id failed; uploading again");
            if let Err(error) = self.store.forget_file_upload(scope, file, channel.id).await {
                return retry(format!("store: {error}"));
            }
            delivery = match self
                .with_file(
                    connector.as_ref(),
                    scope,
                    &channel,
                    &config,
                    message.clone(),
                    false,
                )
                .await
            {
                Ok((message, _)) => {
                    self.attempt(connector.as_ref(), &channel, &config, &message)
                        .await
                }
                Err(delivery) => delivery,
            };
        }
        match delivery {
            // The provider says the customer-service window is closed (its clock, or a window
            // we could not see): send it as outside the window, a template or held.
            Delivery::Failed(e)
                if connector.closes_window(&e.code)
                    && message.context.last_inbound_at.is_some() =>
            {
                tracing::info!(conversation = %conversation_id, code = %e.code, "provider reports the window closed");
                let mut closed = message;
                closed.context.last_inbound_at = None;
                self.attempt(connector.as_ref(), &channel, &config, &closed)
                    .await
            }
            other => other,
        }
    }

    /// A library file's message made ready for its channel: the provider's id from an earlier
    /// upload to this channel while it lasts (with `Some(file)` when it was that one, and only
    /// when `reuse`), else the file's bytes, uploaded first where the channel uploads ahead
    /// (WhatsApp's `/media`), and the id kept for the next sends.
    async fn with_file(
        &self,
        connector: &dyn coach_connector_api::Connector,
        scope: &TenantScope,
        channel: &Channel,
        config: &coach_connector_api::ChannelConfig,
        mut message: OutboundMessage,
        reuse: bool,
    ) -> Result<(OutboundMessage, Option<uuid::Uuid>), Delivery> {
        let OutboundBody::File { file_id, .. } = &message.body else {
            return Ok((message, None));
        };
        let Ok(id) = uuid::Uuid::parse_str(file_id) else {
            return Err(failed("file", "the message names no library file"));
        };
        let set = |message: &mut OutboundMessage, id: Option<String>, bytes: Option<Vec<u8>>| {
            if let OutboundBody::File { uploaded, data, .. } = &mut message.body {
                *uploaded = id;
                *data = bytes;
            }
        };
        let lifetime = connector.upload_lifetime_secs();
        // Where an upload's id is kept, one row uploads and the others wait for its id; where
        // every send carries the bytes (Telegram), the rows go side by side.
        let lock = (lifetime > 0).then(|| {
            let mut uploads = self
                .uploads
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if uploads.len() > 10_000 {
                uploads.retain(|_, l| Arc::strong_count(l) > 1);
            }
            uploads.entry((id, channel.id)).or_default().clone()
        });
        // Held until this upload's id is kept, so the next row finds it.
        let _turn = match &lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        if lifetime > 0 && reuse {
            match self.store.file_upload(scope, id, channel.id).await {
                Ok(Some((provider_ref, at)))
                    if (self.clock.now() - at).num_seconds()
                        < i64::try_from(lifetime).unwrap_or(i64::MAX) =>
                {
                    set(&mut message, Some(provider_ref), None);
                    return Ok((message, Some(id)));
                }
                Ok(_) => {}
                Err(e) => return Err(retry(format!("store: {e}"))),
            }
        }
        let Some(bytes) =
            crate::library::read(self.connectors.data_dir(), scope.tenant_id(), id).await
        else {
            return Err(failed(
                "file_removed",
                "the file was removed from the library",
            ));
        };
        set(&mut message, None, Some(bytes));
        let call = match connector.upload(config, &message) {
            Ok(Some(call)) => call,
            Ok(None) => return Ok((message, None)),
            Err(e) => return Err(failed("upload", &e.to_string())),
        };
        let response = self
            .connectors
            .execute_with_timeout(&call, self.connectors.file_call_timeout())
            .await
            .map_err(|e| retry(format!("{} upload failed: {e}", channel.kind)))?;
        match connector.uploaded(&call, &response) {
            Ok(provider_ref) => {
                if let Err(error) = self
                    .store
                    .set_file_upload(
                        scope,
                        id,
                        channel.id,
                        provider_ref.clone(),
                        self.clock.now(),
                    )
                    .await
                {
                    tracing::warn!(%error, file = %id, "an upload's id was not kept; the next send uploads again");
                }
                set(&mut message, Some(provider_ref), None);
                Ok((message, None))
            }
            Err(SendOutcome::Retry { after, reason }) => Err(Delivery::Retry { after, reason }),
            Err(SendOutcome::Failed { code, message }) => Err(failed(&code, &message)),
            Err(SendOutcome::Sent { .. }) => Err(failed("upload", "the upload named no file")),
        }
    }

    /// Render one message and execute its calls in order, paced.
    async fn attempt(
        &self,
        connector: &dyn coach_connector_api::Connector,
        channel: &Channel,
        config: &coach_connector_api::ChannelConfig,
        message: &OutboundMessage,
    ) -> Delivery {
        let calls = match connector.render(config, message) {
            Ok(calls) => calls,
            Err(ConnectorError::Held(why)) => return failed("held", &why),
            Err(e) => return failed("render", &e.to_string()),
        };
        let limits = connector.limits();
        let per_second = config
            .settings
            .get("messages_per_second")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(limits.messages_per_second);
        let pace = self.pace(channel, per_second, limits.per_recipient_per_second);
        let mut provider_message_id = None;
        for call in &calls {
            // Waits are bounded: a row that would wait longer is retried later, so no channel's
            // pace holds a batch (or a lease) for long.
            let paced = async {
                if !self.shared_turn(&channel.id.to_string(), per_second).await {
                    pace.account.until_ready().await;
                }
                if !message.body.is_signal() {
                    // The recipient's address stays out of Redis's keys: a hash of it.
                    let recipient = Sha256::digest(format!("{}:{}", channel.id, message.to));
                    let key = format!("{}:{}", channel.id, hex::encode(&recipient[..12]));
                    if !self
                        .shared_turn(&key, limits.per_recipient_per_second)
                        .await
                    {
                        pace.recipients.until_key_ready(&message.to).await;
                    }
                }
            };
            if tokio::time::timeout(MAX_PACING_WAIT, paced).await.is_err() {
                return Delivery::Retry {
                    after: Some(MAX_PACING_WAIT),
                    reason: format!("{} pacing: over {MAX_PACING_WAIT:?} to wait", channel.kind),
                };
            }
            // A call that carries a file may take longer than a text.
            let sent = if call.form.is_empty() {
                self.connectors.execute(call).await
            } else {
                self.connectors
                    .execute_with_timeout(call, self.connectors.file_call_timeout())
                    .await
            };
            let response = match sent {
                Ok(r) => r,
                Err(e) => return retry(format!("{} call failed: {e}", channel.kind)),
            };
            match connector.outcome(call, &response) {
                SendOutcome::Sent {
                    provider_message_id: id,
                } => provider_message_id = id.or(provider_message_id),
                SendOutcome::Retry { after, reason } => {
                    return Delivery::Retry { after, reason };
                }
                SendOutcome::Failed { code, message } => {
                    return failed(&code, &message);
                }
            }
        }
        Delivery::Sent {
            provider_message_id,
        }
    }

    /// Send a signal (typing, read receipt) to a conversation's contact at once; failures are
    /// logged, never retried (a late "typing..." is worse than none).
    pub async fn signal(
        &self,
        scope: &TenantScope,
        channel_id: ChannelId,
        conversation_id: ConversationId,
        to: String,
        body: OutboundBody,
        about: Option<String>,
    ) {
        let message = OutboundMessage {
            to,
            reply_to: about,
            body,
            context: SendContext {
                now: Some(self.clock.now()),
                last_inbound_at: None,
                fallback: None,
            },
        };
        match self
            .deliver(scope, channel_id, conversation_id, message)
            .await
        {
            Delivery::Sent { .. } => {}
            other => {
                tracing::debug!(conversation = %conversation_id, ?other, "signal not delivered")
            }
        }
    }
}

fn retry(reason: String) -> Delivery {
    Delivery::Retry {
        after: None,
        reason,
    }
}

fn failed(code: &str, title: &str) -> Delivery {
    Delivery::Failed(ProviderError {
        code: code.to_owned(),
        title: title.to_owned(),
    })
}

#[async_trait]
impl Sender for ConnectorSender {
    async fn dead_lettered(&self, item: &QueueItem) {
        let Some(channel) = item.channel_id else {
            return;
        };
        let scope = SystemScope::new("channel health").for_tenant(item.tenant_id);
        // Outbox rows are stamped with the wall clock, so health is judged on it too.
        let now = chrono::Utc::now();
        if let Err(error) =
            crate::notify::health::alert(&*self.store, &self.connectors, &scope, channel, now).await
        {
            tracing::warn!(%channel, %error, "the channel's health could not be checked");
        }
    }

    async fn send(&self, item: &QueueItem) -> Delivery {
        let scope = SystemScope::new("outbox sender").for_tenant(item.tenant_id);
        let Some(message_id) = item.message_id else {
            return failed("no_message", "outbox row without a message");
        };
        let message = match self.store.message(&scope, message_id).await {
            Ok(m) => m,
            Err(StoreError::NotFound(_)) => {
                return failed("message_removed", "the message was erased");
            }
            Err(e) => return retry(format!("store: {e}")),
        };
        let body: OutboundBody = match serde_json::from_value(message.content.clone()) {
            Ok(b) => b,
            Err(e) => return failed("corrupt", &format!("stored message is not a body: {e}")),
        };
        // A program step carries the template to send if the window has closed meanwhile.
        let fallback = message
            .content
            .get("fallback_template")
            .and_then(|t| serde_json::from_value::<OutboundBody>(t.clone()).ok())
            .filter(|t| matches!(t, OutboundBody::Template { .. }))
            .map(Box::new);
        let conversation = match self
            .store
            .conversation(&scope, message.conversation_id)
            .await
        {
            Ok(c) => c,
            Err(e) => return retry(format!("store: {e}")),
        };
        // One after the other: a batch of sends each holding one pooled connection while
        // waiting for a second would exhaust the pool.
        let facts = async {
            let last_inbound_at = self.store.last_inbound_at(&scope, conversation.id).await?;
            let reply_to = self.store.reply_target(&scope, message_id).await?;
            Ok::<_, StoreError>((last_inbound_at, reply_to))
        };
        let (last_inbound_at, reply_to) = match facts.await {
            Ok(facts) => facts,
            Err(e) => return retry(format!("store: {e}")),
        };
        let outbound = OutboundMessage {
            to: conversation.external_id.clone(),
            reply_to,
            body,
            context: SendContext {
                now: Some(self.clock.now()),
                last_inbound_at,
                fallback,
            },
        };
        self.deliver(&scope, message.channel_id, conversation.id, outbound)
            .await
    }
}
