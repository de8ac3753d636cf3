//! Both ends of one widget connection as state machines: frames and clock ticks in, frames and
//! actions out. The gateway plays the server's IO (socket, store, bus); the browser widget
//! implements the same client rules in JavaScript, and [`ClientSession`] is their reference
//! (property tests, the load client).
//!
//! Delivery rules: the store numbers each conversation's messages (1, 2, 3...). The server sends
//! a stored message only if its number is above the last one sent on this connection, always
//! reading from the store after that number, so events go out once and in order. A client keeps
//! the highest number it received and resumes from it on reconnect; the server replays what came
//! after. A client keeps each message it typed until the server says `accepted`, and sends it
//! again (same client id) after every reconnect; the store ignores a client id it already has.

use std::time::{Duration, Instant};

use crate::frames::{
    ClientFrame, ErrorCode, Identity, MAX_CLIENT_ID, MAX_TEXT_CHARS, ServerFrame, VERSION,
    WireMessage,
};

/// The longest reaction, in characters (an emoji with its modifiers).
const MAX_EMOJI_CHARS: usize = 16;

fn valid_client_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_CLIENT_ID && !id.chars().any(char::is_control)
}

/// Timers of a connection.
#[derive(Clone, Copy, Debug)]
pub struct SessionConfig {
    /// The server pings after this long without sending anything.
    pub heartbeat: Duration,
    /// The server closes a connection it has not heard from for this long.
    pub idle_timeout: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(70),
        }
    }
}

/// What the server's IO layer must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this frame.
    Send(ServerFrame),
    /// Check the visitor token or identity of a `hello`, then call
    /// [`ServerSession::welcome`] (or close with `unauthorized`).
    Authenticate {
        /// The token the widget kept, if any.
        token: Option<String>,
        /// A signed identity from the creator's site, if any.
        identity: Option<Identity>,
    },
    /// Store the visitor's message (idempotent by client id), then call
    /// [`ServerSession::accepted`] and deliver what the store holds after
    /// [`ServerSession::sent_seq`].
    Store {
        /// The widget's id for it.
        client_id: String,
        /// The text.
        text: String,
        /// The id of the tapped choice, if the visitor tapped one.
        choice: Option<String>,
    },
    /// Store the visitor's reaction to a message (idempotent by client id), then as
    /// [`Action::Store`].
    React {
        /// The widget's id for it.
        client_id: String,
        /// The message reacted to.
        message_id: String,
        /// The reaction; `None` takes it back.
        emoji: Option<String>,
    },
    /// The visitor typing, for the creator's live view.
    VisitorTyping(bool),
    /// Find the visitor's conversation if it is not known yet (it may have been started
    /// outside the connection), then deliver what the store holds after
    /// [`ServerSession::sent_seq`].
    Sync,
    /// Close the connection.
    Close(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    AwaitingHello,
    Authenticating,
    Live,
    Closed,
}

/// The server's side of one connection.
#[derive(Debug)]
pub struct ServerSession {
    phase: Phase,
    config: SessionConfig,
    resume_after: i64,
    sent_seq: i64,
    acked_seq: i64,
    last_heard: Instant,
    last_sent: Instant,
}

impl ServerSession {
    /// A connection opened at `now`, waiting for `hello`.
    pub fn new(now: Instant, config: SessionConfig) -> Self {
        Self {
            phase: Phase::AwaitingHello,
            config,
            resume_after: 0,
            sent_seq: 0,
            acked_seq: 0,
            last_heard: now,
            last_sent: now,
        }
    }

    /// The highest sequence number sent on this connection (or resumed from): deliver what
    /// the store holds after it.
    pub fn sent_seq(&self) -> i64 {
        self.sent_seq
    }

    /// The highest sequence number the client acknowledged.
    pub fn acked_seq(&self) -> i64 {
        self.acked_seq
    }

    /// Whether `hello` was answered.
    pub fn is_live(&self) -> bool {
        self.phase == Phase::Live
    }

    fn send(&mut self, frame: ServerFrame, now: Instant) -> Action {
        self.last_sent = now;
        Action::Send(frame)
    }

    fn refuse(&mut self, code: ErrorCode, why: String, now: Instant) -> Vec<Action> {
        self.phase = Phase::Closed;
        vec![
            self.send(ServerFrame::error(code, why.clone()), now),
            Action::Close(why),
        ]
    }

    /// A text frame arrived.
    pub fn on_text(&mut self, text: &str, now: Instant) -> Vec<Action> {
        self.last_heard = now;
        if self.phase == Phase::Closed {
            return Vec::new();
        }
        let frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(why) => return vec![self.send(ServerFrame::error(ErrorCode::BadFrame, why), now)],
        };
        match (self.phase, frame) {
            (
                Phase::AwaitingHello,
                ClientFrame::Hello {
                    v,
                    token,
                    identity,
                    resume_after,
                },
            ) => {
                if v != VERSION {
                    return self.refuse(
                        ErrorCode::UnsupportedVersion,
                        format!("protocol {v} is not supported; this server speaks {VERSION}"),
                        now,
                    );
                }
                self.phase = Phase::Authenticating;
                self.resume_after = resume_after.max(0);
                vec![Action::Authenticate { token, identity }]
            }
            (Phase::AwaitingHello | Phase::Authenticating, _) => self.refuse(
                ErrorCode::BadSequence,
                "the first frame must be hello".into(),
                now,
            ),
            (_, ClientFrame::Hello { .. }) => {
                self.refuse(ErrorCode::BadSequence, "hello was already sent".into(), now)
            }
            (
                _,
                ClientFrame::Message {
                    client_id,
                    text,
                    choice,
                },
            ) => {
                let chars = text.trim().chars().count();
                if !valid_client_id(&client_id) {
                    vec![self.send(
                        ServerFrame::Error {
                            code: ErrorCode::InvalidMessage,
                            message: format!("client_id: 1-{MAX_CLIENT_ID} printable bytes"),
                            client_id: None,
                        },
                        now,
                    )]
                } else if chars == 0 || text.chars().count() > MAX_TEXT_CHARS {
                    vec![self.send(
                        ServerFrame::Error {
                            code: ErrorCode::InvalidMessage,
                            message: format!("text: 1-{MAX_TEXT_CHARS} characters"),
                            client_id: Some(client_id),
                        },
                        now,
                    )]
                } else if choice
                    .as_ref()
                    .is_some_and(|c| c.is_empty() || c.len() > 256)
                {
                    vec![self.send(
                        ServerFrame::Error {
                            code: ErrorCode::InvalidMessage,
                            message: "choice: 1-256 bytes".into(),
                            client_id: Some(client_id),
                        },
                        now,
                    )]
                } else if choice.as_ref().is_some_and(|c| c.starts_with("csat:")) {
                    // A rating question is answered outside the conversation, so rating never
                    // reopens it.
                    vec![self.send(
                        ServerFrame::Error {
                            code: ErrorCode::InvalidMessage,
                            message: "choice: a rating is sent with POST /widget/rating".into(),
                            client_id: Some(client_id),
                        },
                        now,
                    )]
                } else {
                    vec![Action::Store {
                        client_id,
                        text,
                        choice,
                    }]
                }
            }
            (
                _,
                ClientFrame::React {
                    client_id,
                    message_id,
                    emoji,
                },
            ) => {
                let why = if !valid_client_id(&client_id) {
                    Some(format!("client_id: 1-{MAX_CLIENT_ID} printable bytes"))
                } else if message_id.is_empty() || message_id.len() > MAX_CLIENT_ID {
                    Some(format!("message_id: 1-{MAX_CLIENT_ID} bytes"))
                } else if emoji
                    .as_ref()
                    .is_some_and(|e| e.trim().is_empty() || e.chars().count() > MAX_EMOJI_CHARS)
                {
                    Some(format!("emoji: 1-{MAX_EMOJI_CHARS} characters"))
                } else {
                    None
                };
                match why {
                    Some(message) => vec![self.send(
                        ServerFrame::Error {
                            code: ErrorCode::InvalidMessage,
                            message,
                            client_id: Some(client_id),
                        },
                        now,
                    )],
                    None => vec![Action::React {
                        client_id,
                        message_id,
                        emoji,
                    }],
                }
            }
            (_, ClientFrame::Ack { seq }) => {
                // Acks may arrive late or out of order: only ever move forward, and never past
                // what was sent.
                self.acked_seq = self.acked_seq.max(seq.min(self.sent_seq));
                Vec::new()
            }
            (_, ClientFrame::Read { .. }) => Vec::new(),
            (_, ClientFrame::Typing { on }) => vec![Action::VisitorTyping(on)],
            (Phase::Live, ClientFrame::Sync) => vec![Action::Sync],
            (_, ClientFrame::Sync) => Vec::new(),
            (_, ClientFrame::Ping) => vec![self.send(ServerFrame::Pong, now)],
            (_, ClientFrame::Pong) => Vec::new(),
        }
    }

    /// The visitor is known: send `welcome`. Then deliver what the store holds after
    /// [`ServerSession::sent_seq`] (the replay), and go on delivering as messages arrive.
    pub fn welcome(&mut self, visitor_token: String, last_seq: i64, now: Instant) -> Vec<Action> {
        if self.phase != Phase::Authenticating {
            return Vec::new();
        }
        self.phase = Phase::Live;
        // A client claiming more than exists (another conversation's number) starts over.
        self.sent_seq = if self.resume_after > last_seq {
            0
        } else {
            self.resume_after
        };
        self.acked_seq = self.sent_seq;
        vec![self.send(
            ServerFrame::Welcome {
                v: VERSION,
                visitor_token,
                last_seq,
            },
            now,
        )]
    }

    /// The token or identity was refused.
    pub fn unauthorized(&mut self, why: &str, now: Instant) -> Vec<Action> {
        self.refuse(ErrorCode::Unauthorized, why.to_string(), now)
    }

    /// The store has the visitor's message.
    pub fn accepted(&mut self, client_id: String, now: Instant) -> Action {
        self.send(ServerFrame::Accepted { client_id }, now)
    }

    /// The store could not take the message; the widget will send it again.
    pub fn not_stored(
        &mut self,
        client_id: String,
        code: ErrorCode,
        why: &str,
        now: Instant,
    ) -> Action {
        self.send(
            ServerFrame::Error {
                code,
                message: why.to_string(),
                client_id: Some(client_id),
            },
            now,
        )
    }

    /// A stored message read from the store after [`ServerSession::sent_seq`]; sent unless it
    /// was sent already (reads may overlap).
    pub fn deliver(&mut self, seq: i64, message: WireMessage, now: Instant) -> Option<Action> {
        if self.phase != Phase::Live || seq <= self.sent_seq {
            return None;
        }
        self.sent_seq = seq;
        Some(self.send(ServerFrame::Event { seq, message }, now))
    }

    /// A frame that is not stored (streaming, typing): sent only once live.
    pub fn transient(&mut self, frame: ServerFrame, now: Instant) -> Option<Action> {
        (self.phase == Phase::Live).then(|| self.send(frame, now))
    }

    /// Time passed: ping when quiet, close when the client went silent.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        if self.phase == Phase::Closed {
            return Vec::new();
        }
        if now.duration_since(self.last_heard) >= self.config.idle_timeout {
            self.phase = Phase::Closed;
            return vec![Action::Close("idle".into())];
        }
        if self.phase == Phase::AwaitingHello
            && now.duration_since(self.last_heard) >= self.config.heartbeat
        {
            self.phase = Phase::Closed;
            return vec![Action::Close("no hello".into())];
        }
        if now.duration_since(self.last_sent) >= self.config.heartbeat {
            return vec![self.send(ServerFrame::Ping, now)];
        }
        Vec::new()
    }
}

/// The client's side, as the browser widget implements it.
#[derive(Debug, Default)]
pub struct ClientSession {
    token: Option<String>,
    last_seq: i64,
    next_id: u64,
    /// Typed but not yet accepted: sent again after every reconnect.
    pending: Vec<(String, String)>,
    /// Messages shown, in order.
    shown: Vec<(i64, WireMessage)>,
    connected: bool,
}

impl ClientSession {
    /// A fresh visitor.
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest sequence number received.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Messages shown, in order, with their sequence numbers.
    pub fn shown(&self) -> &[(i64, WireMessage)] {
        &self.shown
    }

    /// Typed messages not accepted yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The socket opened: `hello`, then every pending message again.
    pub fn connected(&mut self) -> Vec<ClientFrame> {
        self.connected = true;
        let mut frames = vec![ClientFrame::Hello {
            v: VERSION,
            token: self.token.clone(),
            identity: None,
            resume_after: self.last_seq,
        }];
        frames.extend(
            self.pending
                .iter()
                .map(|(client_id, text)| ClientFrame::Message {
                    client_id: client_id.clone(),
                    text: text.clone(),
                    choice: None,
                }),
        );
        frames
    }

    /// The socket closed.
    pub fn disconnected(&mut self) {
        self.connected = false;
    }

    /// The visitor typed `text`: kept until accepted; sent now if connected.
    pub fn type_message(&mut self, text: &str) -> Option<ClientFrame> {
        self.next_id += 1;
        let client_id = format!("c{}", self.next_id);
        self.pending.push((client_id.clone(), text.to_string()));
        self.connected.then(|| ClientFrame::Message {
            client_id,
            text: text.to_string(),
            choice: None,
        })
    }

    /// A frame from the server; returns frames to send back.
    pub fn on_frame(&mut self, frame: ServerFrame) -> Vec<ClientFrame> {
        match frame {
            ServerFrame::Welcome { visitor_token, .. } => {
                self.token = Some(visitor_token);
                Vec::new()
            }
            ServerFrame::Event { seq, message } => {
                if seq <= self.last_seq {
                    return Vec::new();
                }
                self.last_seq = seq;
                if let Some(id) = &message.client_id {
                    self.pending.retain(|(c, _)| c != id);
                }
                self.shown.push((seq, message));
                vec![ClientFrame::Ack { seq }]
            }
            ServerFrame::Accepted { client_id } => {
                self.pending.retain(|(c, _)| *c != client_id);
                Vec::new()
            }
            ServerFrame::Ping => vec![ClientFrame::Pong],
            _ => Vec::new(),
        }
    }
}
