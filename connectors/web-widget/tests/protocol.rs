//! Property test of the protocol: a client and a server session joined by a lossy link (frames in
//! flight are lost on disconnect, client frames may be duplicated, acks arrive late), with an
//! in-memory store playing the gateway's IO. Whatever the interleaving, once the link settles
//! every stored message is shown exactly once and in order, and every typed message is stored
//! exactly once.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use coach_web_widget::frames::{ClientFrame, ErrorCode, ServerFrame, WireMessage};
use coach_web_widget::session::{Action, ClientSession, ServerSession, SessionConfig};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Type,
    CoachReply,
    ToServer,
    ToClient,
    DuplicateToServer,
    DelayAck,
    Disconnect,
    Connect,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Type),
        2 => Just(Op::CoachReply),
        6 => Just(Op::ToServer),
        6 => Just(Op::ToClient),
        1 => Just(Op::DuplicateToServer),
        1 => Just(Op::DelayAck),
        1 => Just(Op::Disconnect),
        2 => Just(Op::Connect),
    ]
}

/// The gateway's store: messages numbered per conversation, client ids deduplicated.
#[derive(Default)]
struct Store {
    log: Vec<WireMessage>,
    by_client_id: HashMap<String, usize>,
}

impl Store {
    fn store(&mut self, message: WireMessage) {
        if let Some(id) = &message.client_id {
            if self.by_client_id.contains_key(id) {
                return;
            }
            self.by_client_id.insert(id.clone(), self.log.len());
        }
        self.log.push(message);
    }

    fn after(&self, seq: i64) -> Vec<(i64, WireMessage)> {
        self.log
            .iter()
            .enumerate()
            .map(|(i, m)| (i as i64 + 1, m.clone()))
            .filter(|(s, _)| *s > seq)
            .collect()
    }
}

struct World {
    now: Instant,
    store: Store,
    client: ClientSession,
    server: Option<ServerSession>,
    to_server: VecDeque<ClientFrame>,
    to_client: VecDeque<ServerFrame>,
    delayed_acks: Vec<ClientFrame>,
    typed: Vec<String>,
}

impl World {
    fn new() -> Self {
        Self {
            now: Instant::now(),
            store: Store::default(),
            client: ClientSession::new(),
            server: None,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            delayed_acks: Vec::new(),
            typed: Vec::new(),
        }
    }

    /// The gateway's IO: runs the server's actions, then delivers what the store holds.
    fn run(&mut self, actions: Vec<Action>) {
        let Some(server) = self.server.as_mut() else {
            return;
        };
        let mut doorbell = false;
        for action in actions {
            match action {
                Action::Send(frame) => self.to_client.push_back(frame),
                Action::Authenticate { .. } => {
                    let last = self.store.log.len() as i64;
                    let sent = server.welcome("token".into(), last, self.now);
                    self.to_client
                        .extend(sent.into_iter().filter_map(|a| match a {
                            Action::Send(f) => Some(f),
                            _ => None,
                        }));
                    doorbell = true;
                }
                Action::Store {
                    client_id, text, ..
                } => {
                    self.store.store(WireMessage {
                        id: format!("m-{client_id}"),
                        direction: "in".into(),
                        text,
                        client_id: Some(client_id.clone()),
                        choices: Vec::new(),
                        created_at: String::new(),
                        rating: None,
                        reacts_to: None,
                        file: None,
                    });
                    if let Action::Send(f) = server.accepted(client_id, self.now) {
                        self.to_client.push_back(f);
                    }
                    doorbell = true;
                }
                Action::VisitorTyping(_) | Action::React { .. } | Action::Sync => {}
                Action::Close(_) => {
                    self.disconnect();
                    return;
                }
            }
        }
        if doorbell {
            self.doorbell();
        }
    }

    fn doorbell(&mut self) {
        let Some(server) = self.server.as_mut() else {
            return;
        };
        for (seq, message) in self.store.after(server.sent_seq()) {
            if let Some(Action::Send(frame)) = server.deliver(seq, message, self.now) {
                self.to_client.push_back(frame);
            }
        }
    }

    fn disconnect(&mut self) {
        self.server = None;
        self.to_server.clear();
        self.to_client.clear();
        self.delayed_acks.clear();
        self.client.disconnected();
    }

    fn connect(&mut self) {
        if self.server.is_some() {
            return;
        }
        self.server = Some(ServerSession::new(self.now, SessionConfig::default()));
        self.to_server.extend(self.client.connected());
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Type => {
                let text = format!("typed {}", self.typed.len());
                self.typed.push(text.clone());
                if let Some(frame) = self.client.type_message(&text)
                    && self.server.is_some()
                {
                    self.to_server.push_back(frame);
                }
            }
            Op::CoachReply => {
                let n = self.store.log.len();
                self.store.store(WireMessage {
                    id: format!("reply-{n}"),
                    direction: "out".into(),
                    text: format!("reply {n}"),
                    client_id: None,
                    choices: Vec::new(),
                    created_at: String::new(),
                    rating: None,
                    reacts_to: None,
                    file: None,
                });
                self.doorbell();
            }
            Op::ToServer => {
                if let Some(frame) = self.to_server.pop_front() {
                    let text = serde_json::to_string(&frame).unwrap();
                    let actions = match self.server.as_mut() {
                        Some(server) => server.on_text(&text, self.now),
                        None => Vec::new(),
                    };
                    self.run(actions);
                }
            }
            Op::ToClient => {
                if let Some(frame) = self.to_client.pop_front() {
                    // Frames travel as JSON text.
                    let frame: ServerFrame =
                        serde_json::from_str(&serde_json::to_string(&frame).unwrap()).unwrap();
                    for reply in self.client.on_frame(frame) {
                        self.to_server.push_back(reply);
                    }
                }
            }
            Op::DuplicateToServer => {
                if let Some(frame) = self.to_server.front().cloned() {
                    self.to_server.push_back(frame);
                }
            }
            Op::DelayAck => {
                if let Some(pos) = self
                    .to_server
                    .iter()
                    .position(|f| matches!(f, ClientFrame::Ack { .. }))
                {
                    let ack = self.to_server.remove(pos).unwrap();
                    self.delayed_acks.push(ack);
                }
            }
            Op::Disconnect => self.disconnect(),
            Op::Connect => {
                self.connect();
                // Late acks arrive after newer ones.
                let late: Vec<_> = self.delayed_acks.drain(..).collect();
                self.to_server.extend(late);
            }
        }
    }

    /// Lets every frame through until nothing moves, reconnecting (as the widget does) when
    /// the server closed the connection (a duplicated `hello` is a protocol error).
    fn settle(&mut self) {
        for _ in 0..100 {
            self.connect();
            for _ in 0..10_000 {
                if self.to_server.is_empty() && self.to_client.is_empty() {
                    break;
                }
                self.step(&Op::ToServer);
                self.step(&Op::ToClient);
            }
            if self.server.is_some() {
                return;
            }
        }
        panic!("the link never settled");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_is_shown_once_and_in_order(ops in proptest::collection::vec(op(), 0..120)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op);
        }
        world.settle();

        // Every typed message was stored exactly once.
        let mut stored: Vec<&str> = world
            .store
            .log
            .iter()
            .filter(|m| m.direction == "in")
            .map(|m| m.text.as_str())
            .collect();
        stored.sort_unstable();
        let mut typed: Vec<&str> = world.typed.iter().map(String::as_str).collect();
        typed.sort_unstable();
        prop_assert_eq!(stored, typed);
        prop_assert_eq!(world.client.pending(), 0);

        // The client shows the store's log: each message once, in order.
        let shown: Vec<(i64, WireMessage)> = world.client.shown().to_vec();
        prop_assert_eq!(shown, world.store.after(0));
    }
}

#[test]
fn a_server_refuses_frames_before_hello_and_other_versions() {
    let now = Instant::now();
    let mut server = ServerSession::new(now, SessionConfig::default());
    let actions = server.on_text(r#"{"type":"message","client_id":"a","text":"hi"}"#, now);
    assert!(matches!(actions.last(), Some(Action::Close(_))));

    let mut server = ServerSession::new(now, SessionConfig::default());
    let actions = server.on_text(r#"{"type":"hello","v":2}"#, now);
    assert!(matches!(
        &actions[0],
        Action::Send(ServerFrame::Error { message, .. }) if message.contains("protocol 2")
    ));

    let mut server = ServerSession::new(now, SessionConfig::default());
    let actions = server.on_text("not json", now);
    assert!(matches!(
        &actions[0],
        Action::Send(ServerFrame::Error { .. })
    ));
}

#[test]
fn a_quiet_connection_is_pinged_then_closed() {
    let start = Instant::now();
    let config = SessionConfig::default();
    let mut server = ServerSession::new(start, config);
    server.on_text(r#"{"type":"hello","v":1}"#, start);
    server.welcome("t".into(), 0, start);
    assert_eq!(
        server.on_tick(start + config.heartbeat),
        vec![Action::Send(ServerFrame::Ping)]
    );
    assert!(matches!(
        server.on_tick(start + config.idle_timeout).as_slice(),
        [Action::Close(_)]
    ));
}

#[test]
fn a_resume_beyond_the_conversation_starts_over() {
    let now = Instant::now();
    let mut server = ServerSession::new(now, SessionConfig::default());
    server.on_text(r#"{"type":"hello","v":1,"resume_after":99}"#, now);
    server.welcome("t".into(), 3, now);
    assert_eq!(server.sent_seq(), 0);
}

#[test]
fn reactions_are_checked_then_stored() {
    let now = Instant::now();
    let mut server = ServerSession::new(now, SessionConfig::default());
    server.on_text(r#"{"type":"hello","v":1}"#, now);
    server.welcome("t".into(), 0, now);
    assert_eq!(
        server.on_text(
            r#"{"type":"react","client_id":"r1","message_id":"0192","emoji":"👎"}"#,
            now
        ),
        vec![Action::React {
            client_id: "r1".into(),
            message_id: "0192".into(),
            emoji: Some("👎".into())
        }]
    );
    assert_eq!(
        server.on_text(
            r#"{"type":"react","client_id":"r2","message_id":"0192"}"#,
            now
        ),
        vec![Action::React {
            client_id: "r2".into(),
            message_id: "0192".into(),
            emoji: None
        }]
    );
    for bad in [
        r#"{"type":"react","client_id":"","message_id":"0192","emoji":"👍"}"#,
        r#"{"type":"react","client_id":"r3","message_id":"","emoji":"👍"}"#,
        r#"{"type":"react","client_id":"r4","message_id":"0192","emoji":"  "}"#,
    ] {
        assert!(
            matches!(
                server.on_text(bad, now).as_slice(),
                [Action::Send(ServerFrame::Error {
                    code: ErrorCode::InvalidMessage,
                    ..
                })]
            ),
            "{bad}"
        );
    }
}

#[test]
fn a_sync_after_welcome_asks_for_the_conversation() {
    let now = Instant::now();
    let mut server = ServerSession::new(now, SessionConfig::default());
    server.on_text(r#"{"type":"hello","v":1}"#, now);
    server.welcome("t".into(), 0, now);
    assert_eq!(
        server.on_text(r#"{"type":"sync"}"#, now),
        vec![Action::Sync]
    );
    // Before the welcome it is refused, as any frame but hello is.
    let mut early = ServerSession::new(now, SessionConfig::default());
    early.on_text(r#"{"type":"hello","v":1}"#, now);
    assert!(matches!(
        early.on_text(r#"{"type":"sync"}"#, now).last(),
        Some(Action::Close(_))
    ));
}
