//! The admin API, the console's API and the widget against real backends (SQLite and
//! PostgreSQL, Redis where configured): one test binary, so a change links once.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

#[path = "../api_support/mod.rs"]
mod api_support;
#[path = "../common/mod.rs"]
mod common;

mod console;
mod email;
mod event_resume;
mod import;
mod keys;
mod knowledge;
mod lifecycle;
mod members;
mod memory;
mod messages;
mod notify;
mod profile_saves;
mod program_versions;
mod rate_limits;
mod readiness;
mod resources;
mod search;
mod sessions;
mod teamwork;
mod tenancy;
mod widget;
mod widget_files;
mod widget_upload;
mod widget_visitor;
