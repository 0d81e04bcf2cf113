//! The provider half of the repair loop: listing what changed in an integration's scope
//! (backfill and reconciliation), and keeping its webhooks alive.
//!
//! A listing is paged by an opaque cursor the adapter owns (a JSON value the store keeps on
//! the integration's sync job): the engine stores it after every page, so a crashed run
//! resumes from the page it was on. What a page finds enters the inbox like a webhook, as a
//! [`ChangeHint`] per object, and goes through the same version guard and field policy.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::model::ObjectKey;
use crate::provider::ChangeHint;

/// Why the engine lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListMode {
    /// Import everything in scope. Without a cursor, the adapter first takes the cursor
    /// reconciliation will continue from (so nothing changed during the crawl is lost at the
    /// handover), then crawls.
    Backfill,
    /// What changed since the cursor. Without a cursor (an integration created with
    /// `backfill: false`) the adapter returns no changes and a cursor at the present.
    Reconcile,
}

impl ListMode {
    /// The lowercase name, also the inbox `auth` of the events a listing stores.
    pub fn as_str(self) -> &'static str {
        match self {
            ListMode::Backfill => "backfill",
            ListMode::Reconcile => "reconcile",
        }
    }

    /// Parses the lowercase name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "backfill" => Some(ListMode::Backfill),
            "reconcile" => Some(ListMode::Reconcile),
            _ => None,
        }
    }
}

/// One page request.
#[derive(Clone, Copy, Debug)]
pub struct ListRequest<'a> {
    /// Backfill or reconcile.
    pub mode: ListMode,
    /// The integration's scope as configured (`{"jql": "project = HO"}`,
    /// `{"projects": ["123"]}`), checked by [`Provider::check_config`](crate::Provider::check_config).
    pub scope: &'a serde_json::Value,
    /// Where to continue: the cursor the previous page returned, `None` at the very start.
    pub cursor: Option<&'a serde_json::Value>,
    /// Objects Ordonis wrote recently (Jira's `reconcileIssues`: the search index may not
    /// show our own writes yet).
    pub recent: &'a [ObjectKey],
    /// Objects per page the engine asks for (an adapter may cap it at the provider's limit).
    pub page_size: usize,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// What the page found, one hint per object: with a snapshot when the listing carried
    /// the object's state (a Jira search), without when it must be fetched (an Asana event);
    /// `Deleted` when the provider said so (never because an object is absent).
    pub changes: Vec<ChangeHint>,
    /// Where the next page starts; when `done`, where the next run starts.
    pub cursor: serde_json::Value,
    /// This run has reached the present.
    pub done: bool,
}

/// The object's version a listed change is deduplicated on: the provider time of the state
/// it carries (or of the event that named it), else 0.
pub fn listed_version(hint: &ChangeHint) -> i64 {
    hint.snapshot
        .as_ref()
        .map(|s| s.modified_at_ms)
        .or(hint.source_time_ms)
        .unwrap_or(0)
}

/// How a provider's webhooks are doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Not known (never checked, or the provider cannot say).
    #[default]
    Unknown,
    /// Registered, active, delivering.
    Healthy,
    /// Registered but failing deliveries (or changes arrive only by reconcile).
    Failing,
    /// Not registered (never, or the provider deleted it).
    Missing,
}

impl WebhookState {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Unknown => "unknown",
            WebhookState::Healthy => "healthy",
            WebhookState::Failing => "failing",
            WebhookState::Missing => "missing",
        }
    }

    /// Every state, for metrics.
    pub const ALL: [WebhookState; 4] = [
        WebhookState::Unknown,
        WebhookState::Healthy,
        WebhookState::Failing,
        WebhookState::Missing,
    ];
}

/// What the engine asks of [`RepairProvider::check_webhooks`](crate::RepairProvider::check_webhooks) and
/// [`RepairProvider::register_webhooks`](crate::RepairProvider::register_webhooks).
#[derive(Clone, Copy, Debug)]
pub struct WebhookCheck<'a> {
    /// The integration's scope.
    pub scope: &'a serde_json::Value,
    /// Where deliveries go (the integration's webhook URL on this server), when known.
    pub target_url: Option<&'a str>,
    /// The provider's ids of the webhooks registered so far (kept by the engine).
    pub known: &'a [String],
    /// The time of the last delivery Ordonis received for the integration.
    pub last_delivery_at: Option<OffsetDateTime>,
    /// Now.
    pub now: OffsetDateTime,
}

/// What a provider found about its webhooks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookReport {
    /// The overall state.
    pub state: WebhookState,
    /// The provider's ids of the webhooks that exist now (after any renewal or creation).
    pub external_ids: Vec<String>,
    /// When the earliest of them expires (Jira dynamic webhooks), if they do.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// What is wrong, or what was done ("renewed until …", "re-created").
    pub detail: Option<String>,
    /// Known webhooks that exist but no longer fit the scope (their project left it, or
    /// their filter is an earlier scope's): not in `external_ids`; the engine deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<String>,
}

/// One page request of a scope's ids ([`RepairProvider::list_ids`](crate::RepairProvider::list_ids)):
/// the id sweep lists every object in scope, ids only, to find the mapped objects that left it.
#[derive(Clone, Copy, Debug)]
pub struct IdsRequest<'a> {
    /// The integration's scope.
    pub scope: &'a serde_json::Value,
    /// Where to continue: the cursor the previous page returned, `None` for the first page.
    pub cursor: Option<&'a serde_json::Value>,
    /// Ids per page the engine asks for (an adapter caps it at the provider's limit).
    pub page_size: usize,
}

/// One page of a scope's ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdsPage {
    /// The external ids of the objects on the page.
    pub ids: Vec<String>,
    /// Where the next page starts; `None` after the last page.
    pub cursor: Option<serde_json::Value>,
}
