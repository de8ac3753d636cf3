#![allow(clippy::unwrap_used, missing_docs)]
//! WhatsApp, Telegram and the SMS plugin end to end against loopback fakes of their provider
//! APIs, on SQLite and PostgreSQL: signed webhooks in, brain answers out through the outbox,
//! redeliveries and out-of-order statuses, failures with retries, dead letters and their resend.

#[path = "../api_support/mod.rs"]
mod api_support;
#[path = "../common/mod.rs"]
mod common;
mod delivery;
mod feedback;
mod files;
mod health;
mod pacing;
mod plugin;
mod polling;
mod program_progress;
mod program_scheduler;
mod program_window;
mod programs;
mod prompt;
mod safety;
mod support;
mod telegram;
mod voice;
mod whatsapp;
