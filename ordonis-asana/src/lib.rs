//! Ordonis Asana adapter.
//!
//! - [`AsanaProvider`] implements [`ordonis_core::Provider`]: the `X-Hook-Secret` handshake
//!   (answered by the engine only while the integration is creating its webhook),
//!   `X-Hook-Signature` verification (lowercase hex HMAC-SHA256 of the raw body, constant
//!   time, every current secret), compact event batches parsed into
//!   [`ordonis_core::ChangeHint`]s (an empty batch is a heartbeat), a fetch of the task for
//!   every change (`modified_at` is the source time; 404 or a `deleted` event is a tombstone, 403 an error on the event that leaves the task alive), and pushes
//!   as one `PUT /tasks/{gid}` (field by field when Asana refuses it whole).
//! - [`AsanaClient`] is a thin typed client over `reqwest`: tasks, custom fields, webhook
//!   create/list/delete, the events endpoint with sync tokens, offset pagination, and
//!   Asana's per-token concurrency caps (50 reads, 15 writes).
//! - [`normalize`] maps a task into Ordonis fields under the integration's [`AsanaOptions`]
//!   (how "in progress" and priority are represented).
//! - [`rich_text`] converts the description between Asana's rich text (`html_notes`) and
//!   Markdown, and merges a Markdown edit into the task's rich text by block (a push never
//!   writes plain `notes`, which would wipe formatting, @-mentions and images).
//! - [`repair`] is the repair loop's half: backfill and reconciliation over a scope of
//!   projects (`GET /events` sync tokens taken before the crawl, `GET /tasks?project=…`
//!   offset paging, a re-crawl with `modified_since` when a token expires), and webhook
//!   health (`GET /webhooks/{gid}`, heartbeat silence) and registration.
//! - [`comments`] and [`links`] are the optional abilities: comment stories (the marker as
//!   a visible footer) and links as external attachments (found by title and URL, replaced
//!   since Asana cannot edit them).
//! - [`create`] and [`accounts`]: tasks created from CollabHub exactly once (the marker in
//!   `external.gid`, or by name for a personal access token), and users and AI teammates
//!   (agents) read for the people directory.
//! - [`scope`]: which tasks an integration syncs; a fetched task outside it (removed from
//!   the scope's projects, a subtask the scope does not take) stops syncing.
//!
//! Asana sends no delivery id: the engine deduplicates deliveries by body hash. Delivery is
//! at most once; the events endpoint ([`AsanaClient::events`]) is the polling fallback.
//!
//! ```
//! use ordonis_core::Provider;
//! let p = ordonis_asana::AsanaProvider::new().unwrap();
//! assert_eq!(p.kind().as_str(), "asana");
//! assert!(p.capabilities().webhook_handshake);
//! ```

pub mod accounts;
pub mod client;
pub mod comments;
pub mod config;
pub mod create;
pub mod error;
pub mod links;
pub mod normalize;
pub mod provider;
mod push;
pub mod repair;
pub mod rich_text;
pub mod scope;
mod sweep;
pub mod webhook;

pub use client::{
    AsanaClient, ConcurrencyLimits, CreatedWebhook, EventsPage, ResourceRef, TaskPage, Webhook,
    WebhookFilter,
};
pub use config::{AsanaOptions, CreateMarker, InProgressRule};
pub use error::AsanaError;
pub use provider::AsanaProvider;
