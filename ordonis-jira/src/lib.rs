//! Ordonis Jira Cloud adapter.
//!
//! - [`JiraProvider`] implements [`ordonis_core::Provider`]: webhook verification
//!   (`X-Hub-Signature: sha256=…` HMAC for admin webhooks, an HS256 JWT for app webhooks),
//!   payload normalization into [`ordonis_core::ChangeHint`]s, fetch, and push (edit, assign,
//!   status through transitions: the whole path is planned over the issue's workflow
//!   (`POST /rest/api/3/workflows/preview`) before anything moves).
//! - [`JiraClient`] is a thin typed client over `reqwest` for the REST v3 operations sync uses,
//!   including JQL search with `nextPageToken` paging.
//! - [`repair`] is the repair loop's side: backfill and reconciliation through
//!   `POST /rest/api/3/search/jql` (scope `{"jql": …}`, an overlap against the index lag,
//!   `reconcileIssues`), and dynamic webhooks registered and renewed through
//!   `/rest/api/3/webhook`.
//! - [`comments`] and [`links`] are the optional abilities: the conversation on an issue
//!   (ADF bodies, our marker as a comment property) and remote links (agent sessions and
//!   their artifacts, upserted by `globalId`).
//! - [`create`] creates issues exactly once (the create screen's required fields filled from
//!   the `create_fields` option, our task id in an issue property, a lost answer found again
//!   by a search of the account's recent creations); [`accounts`] reads an account's name,
//!   e-mail and kind (`accountType: "app"` is an agent).
//! - [`normalize`] maps Jira's issue JSON into Ordonis fields; [`rich_text`] converts descriptions
//!   between ADF (REST v3) and Markdown, the internal form.
//!
//! **Descriptions.** Webhooks carry the issue in the REST v2 shape, whose description is wiki
//! markup. It is never parsed as the value: a webhook that says the description changed (or
//! creates an issue with one) makes the engine fetch the issue from REST v3 (ADF), and other
//! webhooks leave the description out. A pushed description is merged into the issue's ADF
//! block by block (see [`rich_text::merge_markdown`]), so media, mentions and tables survive an edit
//! elsewhere in the text, and an edit that would lose them is refused with the reason.
//!
//! **Timestamps.** A webhook's `timestamp` is epoch milliseconds. When a payload carries
//! some other string there (seen in public fixtures that were rewritten by hand), the hint's
//! `source_time_ms` falls back to the issue's `fields.updated` (a comment's `updated` for
//! comment events), and is `None` when that is
//! missing too; parsing never fails on it.
//!
//! ```
//! use ordonis_core::Provider;
//! let p = ordonis_jira::JiraProvider::new().unwrap();
//! assert_eq!(p.kind().as_str(), "jira");
//! ```

pub mod accounts;
pub mod budget;
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
pub mod sweep;
pub mod webhook;

pub use client::{JiraClient, SearchPage, SearchRequest, Transition, TransitionTarget};
pub use config::JiraOptions;
pub use config::WebhookMode;
pub use error::JiraError;
pub use provider::JiraProvider;
