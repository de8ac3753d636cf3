//! The coaching gateway: turns every channel into one conversation stream, stores it durably per
//! tenant, answers from the tenant's knowledge and delivers replies through an outbox.
//!
//! Layout (domain modules never import [`http`]; handlers call into them):
//! - [`config`]: layered configuration (defaults, `gateway.toml`, `GATEWAY__*`), validated.
//! - [`cli`]: the `gateway` command (`serve`, `migrate`, `ingest`, `eval`...); `main.rs` only
//!   calls it.
//! - [`auth`]: accounts, JWT sessions, and the `Member<Role>` extractor yielding a tenant scope.
//! - [`tenancy`]: [`tenancy::TenantScope`] and [`tenancy::SystemScope`], required by the store;
//!   [`tenant`]: the tenant's typed profile (persona, outreach, chunking, retention, webhook).
//! - [`store`]: the relational store, one folder per aggregate (types, trait, SQL written once)
//!   on two backends, embedded SQLite and PostgreSQL with row-level security.
//! - [`bus`]: fan-out of stored events, in-process or through Redis, and the event log that
//!   console clients resume from.
//! - [`stream`]: store-then-publish, the one entry point for every channel's events.
//! - [`outbox`]: the delivery worker with backoff and dead letters.
//! - [`jobs`]: background work (answers, media, ingestion, handoff notices, program steps,
//!   feedback on answers: [`feedback`]): one
//!   job kind enum, one handler per kind, one runner with a fair claim across tenants.
//! - [`connectors`]: the connector registry (built in and plugins) and the channel facts it
//!   answers for (service windows, typing), delivery through connectors, media downloads and
//!   Telegram's polling loop.
//! - [`knowledge`]: the brain's models and vector store, ingestion, answers and the responder;
//!   [`eval`]: retrieval and answer benchmarks.
//! - [`programs`]: coaching programs, their scheduler, opt-outs and analytics; [`clock`]: the
//!   time they run on (with progress questions, streaks and milestones). [`handoff`]: asking
//!   for a person and the creator's webhook.
//! - [`limits`]: rate limits (governor, or Redis across processes); [`caps`]: caps on open
//!   connections (widget sockets, event streams); [`widget`]: what the web widget's
//!   connections share.
//! - [`files`]: what is written under `data_dir` is private (`0700` directories, `0600` files).
//! - [`library`]: the tenant's file library on disk (files creators send), and upload staging.
//! - [`http`]: the axum router, middleware and handlers; [`server`]: assembling and running it
//!   all.
//!
//! See `docs/ARCHITECTURE.md` for the picture and `README.md` for configuration.

#![forbid(unsafe_code)]

pub mod auth;
pub mod backup;
pub mod bus;
pub mod caps;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod error;
pub mod eval;
pub mod feedback;
pub mod fetch;
pub mod files;
pub mod handoff;
pub mod hours;
pub mod http;
pub mod import;
pub mod jobs;
pub mod knowledge;
pub mod language;
pub mod library;
pub mod limits;
pub mod memory;
pub mod notify;
pub mod outbox;
pub mod programs;
pub mod safety;
pub mod secrets;
pub mod server;
pub mod state;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod tenancy;
pub mod tenant;
pub mod voice;
pub mod widget;
