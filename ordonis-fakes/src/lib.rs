//! Ordonis fakes: a fake Jira Cloud site and a fake Asana, real HTTP servers (axum on
//! `127.0.0.1:0`) over in-memory issues and tasks, as strict as the providers where sync
//! depends on it, and the real webhook fixtures of both.
//!
//! - [`jira`]: [`jira::FakeJira`] — REST v3 issues, comments and remote links, workflows and
//!   transitions, the JQL search with a lagging index, dynamic webhooks, signed admin webhooks
//!   and echoes (comment webhooks included).
//! - [`asana`]: [`asana::FakeAsana`] — tasks, comment stories, external attachments (links,
//!   `multipart/form-data` only), custom fields, rich text, the webhook handshake, events with
//!   sync tokens (story events included), webhook health and faults.
//! - [`fixtures`]: the real webhook bodies (one folder per provider, `fixtures/jira/` and
//!   `fixtures/asana/`, with their `SOURCES.md`).
//!
//! The adapters' end-to-end tests, the store and chaos suites of `ordonis-testkit`, and the
//! reference server's demo (`ordonis-server --demo`) run on them. This crate holds no test
//! framework (no `proptest`, no conformance suites), so a binary can carry it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use ordonis_fakes::jira::{FakeJira, sign};
//!
//! let jira = FakeJira::start().await?;
//! jira.set_webhook("http://127.0.0.1:8080/integrations/jira/…/webhook", "secret");
//! let body = ordonis_fakes::fixtures::jira("cloud_issue_created_kan22.json");
//! let status = jira.deliver(body).await; // signed with `sign("secret", body)`
//! # let _ = (status, sign("s", b"")); Ok(()) }
//! ```

pub mod asana;
pub mod fixtures;
mod in_flight;
pub mod jira;
