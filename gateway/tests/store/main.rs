//! The store, its queues, the outbox worker, PostgreSQL's row-level security and the bus,
//! each compliance suite run against every backend: one test binary.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

#[path = "../common/mod.rs"]
mod common;

mod bus_compliance;
mod compliance;
mod deletions;
mod erasure;
mod event_log;
mod outbox_worker;
mod postgres_rls;
mod queues;
