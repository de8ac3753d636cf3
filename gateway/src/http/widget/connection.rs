//! One widget connection: the IO around `coach_web_widget::session::ServerSession`. Messages
//! the visitor sends go through the conversation stream (stored before they are acknowledged);
//! what the visitor sees is always read from the store after the last sequence number sent, so
//! the bus only rings the doorbell and nothing is lost or repeated when it lags.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::Utc;
use coach_connector_api::{
    ChannelIdentity, Content, ConversationId, DedupKey, InboundEvent, InboundMessage,
};
use coach_web_widget::frames::{ErrorCode, Identity, ServerFrame};
use coach_web_widget::identity::{verify_identity, verify_visitor_token, visitor_token};
use coach_web_widget::session::{Action, ServerSession, SessionConfig};

use super::WidgetSettings;
use super::hub::Subscription;
use crate::bus::{AnswerPhase, StreamEvent, StreamPayload};
use crate::state::AppState;
use crate::store::conversations::Sequenced;
use crate::store::{Channel, Direction};
use crate::tenancy::{SystemScope, TenantScope};
use crate::widget::SocketPermit;

/// Messages read from the store per delivery round.
const PAGE: u32 = 200;

struct Connection {
    state: AppState,
    channel: Channel,
    /// The client's address (messages are also limited per address).
    address: IpAddr,
    /// Its place in the open-connection counts.
    _permit: SocketPermit,
    settings: WidgetSettings,
    scope: TenantScope,
    session: ServerSession,
    socket: WebSocket,
    visitor: Option<String>,
    display_name: Option<String>,
    /// The pre-chat form's consent is given (or not asked for): checked once per connection.
    consented: bool,
    conversation: Option<ConversationId>,
    subscription: Option<Subscription>,
}

/// The next event of the visitor's conversation (never, before there is one).
async fn next_event(subscription: &mut Option<Subscription>) -> Option<Arc<StreamEvent>> {
    match subscription {
        Some(s) => s.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Closes a connection over a cap at once, with code 1013 (try again later) and the reason.
pub(super) async fn refuse(mut socket: WebSocket, reason: &str) {
    metrics::counter!("widget_connections_refused").increment(1);
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1013,
            reason: reason.into(),
        })))
        .await;
}

/// Serves one connection until either side closes it.
pub(super) async fn run(
    state: AppState,
    channel: Channel,
    settings: WidgetSettings,
    address: IpAddr,
    socket: WebSocket,
    permit: SocketPermit,
) {
    let config = SessionConfig {
        heartbeat: Duration::from_secs(25),
        idle_timeout: Duration::from_secs(state.config.widget.idle_timeout_secs.max(5)),
    };
    let scope = SystemScope::new("widget").for_tenant(channel.tenant_id);
    let mut conn = Connection {
        session: ServerSession::new(Instant::now(), config),
        state,
        channel,
        address,
        _permit: permit,
        settings,
        scope,
        socket,
        visitor: None,
        display_name: None,
        consented: false,
        conversation: None,
        subscription: None,
    };
    metrics::gauge!("widget_connections").increment(1.0);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let suspended = conn
        .state
        .widget
        .suspension(&conn.state.bus, conn.channel.tenant_id);
    loop {
        let (actions, doorbell) = tokio::select! {
            frame = conn.socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => (conn.session.on_text(text.as_str(), Instant::now()), false),
                Some(Ok(Message::Binary(_))) => (vec![Action::Send(ServerFrame::error(
                    ErrorCode::BadFrame, "frames are JSON text"))], false),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => (Vec::new(), false),
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
            Some(event) = next_event(&mut conn.subscription) => {
                (conn.on_bus(&event).await, conn.rings(&event))
            }
            _ = tick.tick() => (conn.session.on_tick(Instant::now()), false),
            () = suspended.cancelled() => {
                // 1013 (try again later), as for a refused connection: the chat is paused.
                let _ = conn.socket.send(Message::Close(Some(CloseFrame {
                    code: 1013,
                    reason: "this chat is paused; try again later".into(),
                }))).await;
                break;
            }
            () = conn.state.shutdown.cancelled() => {
                // 1012 (service restart): the widget reconnects and resumes elsewhere.
                let _ = conn.socket.send(Message::Close(Some(CloseFrame {
                    code: 1012,
                    reason: "the gateway is restarting".into(),
                }))).await;
                break;
            }
        };
        // Events were dropped for this connection: the store has everything; read from it.
        let doorbell = doorbell || conn.subscription.as_ref().is_some_and(|s| s.take_resync());
        match conn.act(actions).await {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
        if doorbell && conn.deliver().await.is_err() {
            break;
        }
    }
    metrics::gauge!("widget_connections").decrement(1.0);
}

impl Connection {
    /// The visitor's conversation is known: receive its events.
    fn follow(&mut self, conversation: ConversationId) {
        self.conversation = Some(conversation);
        self.subscription = Some(
            self.state
                .widget
                .hub
                .subscribe(&self.state.bus, conversation),
        );
    }

    /// Whether a bus event may have added messages to this visitor's conversation.
    fn rings(&self, event: &crate::bus::StreamEvent) -> bool {
        event.tenant_id == self.channel.tenant_id
            && matches!(&event.payload, StreamPayload::Message { message }
                if Some(message.conversation_id) == self.conversation)
    }

    /// Streaming answers for this conversation become transient frames.
    async fn on_bus(&mut self, event: &crate::bus::StreamEvent) -> Vec<Action> {
        if event.tenant_id != self.channel.tenant_id {
            return Vec::new();
        }
        let StreamPayload::Answer {
            conversation_id,
            reply_to,
            phase,
        } = &event.payload
        else {
            return Vec::new();
        };
        if Some(*conversation_id) != self.conversation {
            return Vec::new();
        }
        let stream_id = reply_to.0.to_string();
        let frame = match phase {
            AnswerPhase::Start => ServerFrame::StreamStart { stream_id },
            AnswerPhase::Delta { text } => ServerFrame::StreamDelta {
                stream_id,
                text: text.clone(),
            },
            AnswerPhase::End { message_id } => ServerFrame::StreamEnd {
                stream_id,
                message_id: message_id.0.to_string(),
            },
            AnswerPhase::Abort => ServerFrame::StreamEnd {
                stream_id,
                message_id: String::new(),
            },
        };
        self.session
            .transient(frame, Instant::now())
            .into_iter()
            .collect()
    }

    /// Runs the session's actions; `Ok(false)` when the connection should close.
    async fn act(&mut self, actions: Vec<Action>) -> Result<bool, axum::Error> {
        for action in actions {
            match action {
                Action::Send(frame) => self.send(&frame).await?,
                Action::Authenticate { token, identity } => {
                    // The session answers with `welcome`, or an error and a close.
                    for reply in self.authenticate(token, identity).await {
                        match reply {
                            Action::Send(frame) => self.send(&frame).await?,
                            Action::Close(reason) => return self.close(reason).await,
                            _ => {}
                        }
                    }
                    self.deliver().await?;
                }
                Action::Store {
                    client_id,
                    text,
                    choice,
                } => {
                    // A tapped button answers like a button on WhatsApp or Telegram.
                    let content = match choice {
                        Some(id) => Content::InteractiveReply { id, title: text },
                        None => Content::Text { body: text },
                    };
                    let reply = self.store(client_id, content).await;
                    self.send_action(reply).await?;
                    self.deliver().await?;
                }
                Action::React {
                    client_id,
                    message_id,
                    emoji,
                } => {
                    let content = Content::Reaction {
                        to_message: message_id,
                        emoji,
                    };
                    let reply = self.store(client_id, content).await;
                    self.send_action(reply).await?;
                    self.deliver().await?;
                }
                Action::VisitorTyping(_) => {}
                Action::Sync => {
                    self.find_conversation().await;
                    self.deliver().await?;
                }
                Action::Close(reason) => return self.close(reason).await,
            }
        }
        Ok(true)
    }

    /// Closes with a policy-violation code and the reason; the connection ends.
    async fn close(&mut self, reason: String) -> Result<bool, axum::Error> {
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code: 1008,
                reason: reason.into(),
            })))
            .await;
        Ok(false)
    }

    async fn send_action(&mut self, action: Action) -> Result<(), axum::Error> {
        if let Action::Send(frame) = action {
            self.send(&frame).await?;
        }
        Ok(())
    }

    async fn send(&mut self, frame: &ServerFrame) -> Result<(), axum::Error> {
        self.socket
            .send(Message::Text(frame.to_text().into()))
            .await
    }

    /// Resolves the visitor from a token or a site's signed identity (a new anonymous visitor
    /// otherwise), finds their conversation and welcomes them.
    async fn authenticate(
        &mut self,
        token: Option<String>,
        identity: Option<Identity>,
    ) -> Vec<Action> {
        let now = Instant::now();
        let channel = self.channel.id.0.to_string();
        let key = self.state.secrets.signing_key().to_vec();
        let visitor = if let Some(identity) = identity {
            let Some(secret) = self.settings.identity_secret.clone() else {
                return self.session.unauthorized(
                    "this channel has no identity_secret: signed identities are off",
                    now,
                );
            };
            match verify_identity(&secret, &identity, Utc::now().timestamp()) {
                Ok(user) => {
                    self.display_name = identity.name;
                    format!("user-{user}")
                }
                Err(why) => return self.session.unauthorized(&why, now),
            }
        } else if let Some(token) = token {
            match verify_visitor_token(&key, &channel, &token) {
                Some(visitor) => visitor,
                None => {
                    return self
                        .session
                        .unauthorized("the visitor token is not valid for this channel", now);
                }
            }
        } else {
            format!("anon-{}", uuid::Uuid::new_v4().simple())
        };
        let found = self
            .state
            .store
            .conversation_by_contact(&self.scope, self.channel.id, &visitor)
            .await;
        let last_seq = match found {
            Ok(Some((conversation, last_seq))) => {
                self.follow(conversation);
                last_seq
            }
            Ok(None) => 0,
            Err(e) => {
                tracing::warn!(error = %e, "widget: looking up the conversation failed");
                return vec![
                    Action::Send(ServerFrame::error(
                        ErrorCode::Unavailable,
                        "try again in a moment",
                    )),
                    Action::Close("store unavailable".into()),
                ];
            }
        };
        let Ok(token) = visitor_token(&key, &channel, &visitor) else {
            return vec![
                Action::Send(ServerFrame::error(
                    ErrorCode::Unavailable,
                    "try again later",
                )),
                Action::Close("signing failed".into()),
            ];
        };
        self.visitor = Some(visitor);
        self.session.welcome(token, last_seq, now)
    }

    /// Follows the visitor's conversation when it was started outside this connection (their
    /// first message was a file, `POST /widget/upload`).
    async fn find_conversation(&mut self) {
        let (Some(visitor), None) = (self.visitor.clone(), self.conversation) else {
            return;
        };
        match self
            .state
            .store
            .conversation_by_contact(&self.scope, self.channel.id, &visitor)
            .await
        {
            Ok(Some((conversation, _))) => self.follow(conversation),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "widget: looking up the conversation failed"),
        }
    }

    /// Stores the visitor's message through the conversation stream (idempotent by client id).
    async fn store(&mut self, client_id: String, content: Content) -> Action {
        let now = Instant::now();
        let Some(visitor) = self.visitor.clone() else {
            return Action::Close("no visitor".into());
        };
        let allowed = self
            .state
            .widget
            .allow_message(&visitor, self.address, self.channel.id);
        if let Err(why) = allowed {
            return self
                .session
                .not_stored(client_id, ErrorCode::RateLimited, why, now);
        }
        if !self.consented {
            match super::visitor::needs_consent(
                &self.state,
                &self.scope,
                &self.channel,
                &self.settings,
                &visitor,
            )
            .await
            {
                Ok(false) => self.consented = true,
                Ok(true) => {
                    return self.session.not_stored(
                        client_id,
                        ErrorCode::ConsentRequired,
                        "fill in the form first: this chat asks for your consent",
                        now,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "widget: reading the visitor's consent failed");
                    return self.session.not_stored(
                        client_id,
                        ErrorCode::Unavailable,
                        "the message was not stored; it will be sent again",
                        now,
                    );
                }
            }
        }
        let event = InboundEvent::Message(InboundMessage {
            dedup_key: DedupKey(format!("{visitor}:{client_id}")),
            provider_message_id: client_id.clone(),
            from: ChannelIdentity {
                id: visitor.clone(),
                display_name: self.display_name.clone(),
                username: None,
            },
            timestamp: Utc::now(),
            content,
            reply_to: None,
        });
        match self
            .state
            .stream
            .ingest(&self.scope, self.channel.id, vec![event])
            .await
        {
            Ok(_) => {
                if self.conversation.is_none()
                    && let Ok(Some((conversation, _))) = self
                        .state
                        .store
                        .conversation_by_contact(&self.scope, self.channel.id, &visitor)
                        .await
                {
                    self.follow(conversation);
                }
                self.session.accepted(client_id, now)
            }
            Err(e) => {
                tracing::warn!(error = %e, "widget: storing a message failed");
                self.session.not_stored(
                    client_id,
                    ErrorCode::Unavailable,
                    "the message was not stored; it will be sent again",
                    now,
                )
            }
        }
    }

    /// Sends what the store holds after the last sequence number sent.
    async fn deliver(&mut self) -> Result<(), axum::Error> {
        let Some(conversation) = self.conversation else {
            return Ok(());
        };
        if !self.session.is_live() {
            return Ok(());
        }
        loop {
            let page = match self
                .state
                .store
                .messages_after_seq(&self.scope, conversation, self.session.sent_seq(), PAGE)
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    // The next doorbell (or reconnect) catches up.
                    tracing::warn!(error = %e, "widget: reading messages failed");
                    return Ok(());
                }
            };
            let full = page.len() == PAGE as usize;
            let links = super::wire::FileLinks {
                key: self.state.secrets.signing_key().to_vec(),
                channel: self.channel.id,
            };
            let now = chrono::Utc::now().timestamp();
            for Sequenced { seq, message } in page {
                let mut shown = super::wire::wire(&message);
                shown.file = links.file(&message, now).map(Box::new);
                // A rating question says whether (and how) the visitor answered it.
                if message.direction == Direction::Outbound
                    && crate::store::ratings::is_survey(&message.content)
                {
                    shown.rating = match self
                        .state
                        .store
                        .survey_rating(&self.scope, message.id)
                        .await
                    {
                        Ok(rating) => rating,
                        Err(e) => {
                            // Shown unanswered: the visitor may rate it (again).
                            tracing::warn!(error = %e, "widget: reading a rating failed");
                            None
                        }
                    };
                }
                if let Some(Action::Send(frame)) = self.session.deliver(seq, shown, Instant::now())
                {
                    self.send(&frame).await?;
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}
