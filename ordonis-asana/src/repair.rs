//! The repair loop's Asana half: backfill and reconciliation over a scope of projects, and
//! the health of the integration's webhooks.
//!
//! **Scope:** `{"projects": ["<gid>", …], "subtasks": false}` (at least one project; `null`
//! means webhook-only, with nothing to list); see [`crate::scope`].
//!
//! **Cursor** ([`ListCursor`]): per project, the `GET /events` sync token, the time the
//! project was last known in sync, and a crawl in progress (its `offset` and
//! `modified_since`).
//!
//! - *Backfill* without a cursor first takes a sync token for every project (a `GET /events`
//!   without one answers 412 with a token), so nothing changed during the crawl is lost;
//!   then crawls each project's tasks (`GET /tasks?project=…`, offset paging, one page per
//!   call) into hints that carry the task's state. Done after the last page of the last
//!   project.
//! - *Reconcile* reads each project's events since its token (following `has_more`) into
//!   hints without state (the engine fetches the task): `deleted` is `Deleted`, every other
//!   task action `Changed` — `removed` included, since only a fetch tells whether the task
//!   is still reachable. A 412 (the token expired) re-crawls that project with
//!   `modified_since` = the last time it was in sync, then continues from the new token.
//!   Without a cursor it takes the tokens and reports nothing.
//!
//! A re-crawl cannot see deletions (absence is never deletion): a task deleted while a token
//! was expired stays until a fetch answers 404.

use std::collections::BTreeMap;
use std::time::Duration;

use ordonis_core::{
    ChangeHint, HintKind, ListMode, ListPage, ListRequest, ObjectKey, ProviderContext,
    ProviderError, RemoteTask, WebhookCheck, WebhookReport, WebhookState,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{AsanaClient, PAGE_LIMIT, WebhookFilter};
use crate::config::AsanaOptions;
use crate::error::AsanaError;
use crate::normalize::{fields_patch, modified_at_ms, parse_time};
use crate::webhook::{TASK, hints_from_events};

/// Asana sends a heartbeat every 8 hours; a webhook silent for longer than this (8 h plus an
/// hour of grace) is reported `Failing` even when Asana says it is active.
pub const HEARTBEAT_SILENCE: Duration = Duration::from_secs(9 * 3600);

/// How far before a project's last known in-sync time a re-crawl starts (`modified_since`),
/// so that clock skew between us and Asana loses nothing.
pub const SYNC_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A listing cursor: per project in scope.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor {
    /// Project gid → its state.
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectCursor>,
}

/// One project's listing state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectCursor {
    /// The `GET /events` sync token to continue from.
    #[serde(default)]
    pub sync: Option<String>,
    /// When (RFC 3339, our clock minus [`SYNC_MARGIN`]) the project was last in sync: what a
    /// re-crawl after an expired token asks for as `modified_since`.
    #[serde(default)]
    pub in_sync_at: Option<String>,
    /// A crawl of the project's tasks in progress.
    #[serde(default)]
    pub crawl: Option<Crawl>,
}

/// A crawl in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crawl {
    /// The next page's offset (`None`: the first page).
    #[serde(default)]
    pub offset: Option<String>,
    /// Only tasks modified since (`None`: every task, a backfill).
    #[serde(default)]
    pub modified_since: Option<String>,
}

/// The projects of a scope ([`crate::scope::AsanaScope`]): `null` is none.
pub fn scope_projects(scope: &Value) -> Result<Vec<String>, ordonis_core::InvalidInput> {
    crate::scope::AsanaScope::parse(scope).map(|s| s.projects)
}

fn stamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn margin() -> time::Duration {
    time::Duration::try_from(SYNC_MARGIN).unwrap_or_default()
}

fn cursor_json(c: &ListCursor) -> Result<Value, ProviderError> {
    serde_json::to_value(c).map_err(|e| ProviderError::Terminal(format!("cursor: {e}")))
}

/// A listed task as a hint carrying its state, as [`AsanaProvider`]'s `fetch_task` maps it.
fn task_hint(task: &Value, opts: &AsanaOptions) -> Option<ChangeHint> {
    let gid = task.get("gid").and_then(Value::as_str)?;
    let key = ObjectKey::new(gid, TASK);
    let modified = modified_at_ms(task);
    Some(ChangeHint {
        key: key.clone(),
        delivery_id: None,
        kind: HintKind::Changed,
        source_time_ms: modified,
        actor: None,
        snapshot: Some(RemoteTask {
            key,
            fields: fields_patch(task, opts),
            modified_at_ms: modified.unwrap_or(0),
            url: task
                .get("permalink_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
            marker: None,
        }),
        changes: Vec::new(),
    })
}

/// The task hints of events, one per task (its newest event), in event order: a task's own
/// changes, and its comments (a comment edit's event is keyed by the story, whose task the
/// engine asks for). A field event is never replaced by a comment event (processing the task
/// reads its fields and, in a reconcile, its whole conversation). Other events (activity
/// stories, subtasks, projects) are dropped.
fn event_hints(events: &[Value], into: &mut Vec<ChangeHint>) {
    let is_comment = |h: &ChangeHint| matches!(h.kind, HintKind::Comment { .. });
    for h in hints_from_events(events) {
        let wanted = match h.key.object_type.as_str() {
            TASK => !matches!(h.kind, HintKind::Ignored { .. }),
            crate::comments::STORY => is_comment(&h),
            _ => false,
        };
        if !wanted {
            continue;
        }
        match into.iter_mut().find(|x| x.key == h.key) {
            Some(x) if is_comment(&h) && !is_comment(x) => {}
            Some(x) if x.source_time_ms <= h.source_time_ms || is_comment(x) => *x = h,
            Some(_) => {}
            None => into.push(h),
        }
    }
}

/// [`ordonis_core::RepairProvider::list_changes`] for Asana (see the module docs).
pub(crate) async fn list_changes(
    client: &AsanaClient,
    ctx: &ProviderContext,
    req: &ListRequest<'_>,
) -> Result<ListPage, ProviderError> {
    let projects = scope_projects(req.scope)?;
    let mut cur: ListCursor = match req.cursor {
        None | Some(Value::Null) => ListCursor::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ProviderError::Terminal(format!("not an Asana listing cursor: {e}")))?,
    };
    // A project taken out of the scope is forgotten.
    cur.projects.retain(|p, _| projects.contains(p));
    let opts = AsanaOptions::from_json(&ctx.options)?;

    // Tokens first, for every project that has none yet: a backfill (or a project newly
    // added to a reconciled scope) then crawls from scratch; a reconcile without a
    // cursor starts at the present.
    let fresh = req.mode == ListMode::Reconcile && req.cursor.is_none();
    let mut took = false;
    for p in &projects {
        let entry = cur.projects.entry(p.clone()).or_default();
        if entry.sync.is_some() {
            continue;
        }
        let before = OffsetDateTime::now_utc() - margin();
        let page = client.events(p, None).await?;
        entry.sync = Some(page.sync);
        if entry.crawl.is_none() && entry.in_sync_at.is_none() && !fresh {
            entry.crawl = Some(Crawl::default());
        }
        entry.in_sync_at.get_or_insert_with(|| stamp(before));
        took = true;
    }
    if fresh && took {
        return Ok(ListPage {
            changes: Vec::new(),
            cursor: cursor_json(&cur)?,
            done: true,
        });
    }

    // One page of the first crawl in progress.
    if let Some(p) = projects
        .iter()
        .find(|p| cur.projects.get(*p).is_some_and(|c| c.crawl.is_some()))
    {
        let entry = cur.projects.entry(p.clone()).or_default();
        let crawl = entry.crawl.clone().unwrap_or_default();
        let limit = u32::try_from(req.page_size)
            .unwrap_or(PAGE_LIMIT)
            .clamp(1, PAGE_LIMIT);
        let page = client
            .project_tasks_page(
                p,
                crawl.modified_since.as_deref(),
                limit,
                crawl.offset.as_deref(),
            )
            .await?;
        let changes: Vec<ChangeHint> = page
            .tasks
            .iter()
            .filter_map(|t| task_hint(t, &opts))
            .collect();
        entry.crawl = page.next_offset.map(|o| Crawl {
            offset: Some(o),
            ..crawl
        });
        let crawling = cur.projects.values().any(|c| c.crawl.is_some());
        return Ok(ListPage {
            changes,
            cursor: cursor_json(&cur)?,
            // A reconcile continues with the events after its re-crawl.
            done: !crawling && req.mode == ListMode::Backfill,
        });
    }
    if req.mode == ListMode::Backfill {
        return Ok(ListPage {
            changes: Vec::new(),
            cursor: cursor_json(&cur)?,
            done: true,
        });
    }

    // Reconcile: one events page per project.
    let mut changes = Vec::new();
    let mut more = false;
    for p in &projects {
        let entry = cur.projects.entry(p.clone()).or_default();
        let before = OffsetDateTime::now_utc() - margin();
        match client.events(p, entry.sync.as_deref()).await {
            Ok(page) => {
                event_hints(&page.events, &mut changes);
                entry.sync = Some(page.sync)
                    .filter(|s| !s.is_empty())
                    .or(entry.sync.take());
                if page.has_more {
                    more = true;
                } else {
                    entry.in_sync_at = Some(stamp(before));
                }
            }
            Err(AsanaError::SyncTokenExpired { sync }) => {
                tracing::info!(
                    integration_id = %ctx.integration_id,
                    project = %p,
                    since = ?entry.in_sync_at,
                    "Asana sync token expired: re-crawling the project's tasks modified since it was last in sync"
                );
                entry.sync = sync;
                entry.crawl = Some(Crawl {
                    offset: None,
                    modified_since: entry.in_sync_at.clone(),
                });
                more = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ListPage {
        changes,
        cursor: cursor_json(&cur)?,
        done: !more,
    })
}

/// [`ordonis_core::RepairProvider::check_webhooks`] for Asana: `GET /webhooks/{gid}` for each
/// known webhook (404: deleted by Asana), its health fields, and heartbeat silence.
pub(crate) async fn check_webhooks(
    client: &AsanaClient,
    check: &WebhookCheck<'_>,
) -> Result<WebhookReport, ProviderError> {
    let projects = scope_projects(check.scope).unwrap_or_default();
    if check.known.is_empty() {
        return Ok(report(
            WebhookState::Missing,
            Vec::new(),
            "no webhook registered",
        ));
    }
    let mut live = live_webhooks(client, check.known).await?;
    // A webhook on a project that left the scope is stale: the engine deletes it.
    let stale: Vec<String> = if projects.is_empty() {
        Vec::new()
    } else {
        let (fit, old): (Vec<_>, Vec<_>) = live
            .into_iter()
            .partition(|(_, w)| resource_of(w).is_none_or(|r| projects.iter().any(|p| p == r)));
        live = fit;
        old.into_iter().map(|(g, _)| g).collect()
    };
    let deleted: Vec<&String> = check
        .known
        .iter()
        .filter(|g| !live.iter().any(|(l, _)| l == *g) && !stale.contains(g))
        .collect();
    let ids: Vec<String> = live.iter().map(|(g, _)| g.clone()).collect();
    let uncovered: Vec<&String> = projects
        .iter()
        .filter(|p| !live.iter().any(|(_, w)| resource_of(w) == Some(p.as_str())))
        .collect();
    if !deleted.is_empty() || !uncovered.is_empty() {
        let mut parts = Vec::new();
        if !deleted.is_empty() {
            parts.push(format!("webhook {} deleted by Asana", join(&deleted)));
        }
        if !uncovered.is_empty() {
            parts.push(format!("no webhook on project {}", join(&uncovered)));
        }
        let mut r = report(WebhookState::Missing, ids, &parts.join("; "));
        r.stale = stale;
        return Ok(r);
    }
    let mut failing = Vec::new();
    for (gid, w) in &live {
        if let Some(why) = failing_reason(w) {
            failing.push(format!("webhook {gid}: {why}"));
        }
    }
    // Silence counts from the last delivery, but not before every webhook has existed
    // that long: one just (re-)created has had no chance to send a heartbeat yet.
    let oldest = live
        .iter()
        .filter_map(|(_, w)| time_of(w, "created_at"))
        .min();
    let reference = check.last_delivery_at.max(oldest);
    if let Some(last) = reference {
        let silence = check.now - last;
        if silence > time::Duration::try_from(HEARTBEAT_SILENCE).unwrap_or_default() {
            failing.push(format!(
                "no delivery for {} h (Asana sends a heartbeat every 8 h)",
                silence.whole_hours()
            ));
        }
    }
    let mut r = if failing.is_empty() {
        WebhookReport {
            state: WebhookState::Healthy,
            external_ids: ids,
            ..WebhookReport::default()
        }
    } else {
        report(WebhookState::Failing, ids, &failing.join("; "))
    };
    r.stale = stale;
    Ok(r)
}

/// [`ordonis_core::Provider::register_webhooks`] for Asana: `POST /webhooks` (task
/// filters, target = the integration's webhook URL) for each project in scope that has
/// no live webhook yet. Each creation runs its own handshake during the call.
pub(crate) async fn register_webhooks(
    client: &AsanaClient,
    check: &WebhookCheck<'_>,
) -> Result<WebhookReport, ProviderError> {
    let target = check.target_url.ok_or_else(|| {
        ProviderError::Terminal("no webhook URL to register Asana webhooks for".to_owned())
    })?;
    let projects = scope_projects(check.scope)?;
    if projects.is_empty() {
        return Err(ProviderError::Terminal(
            "the scope names no project to register an Asana webhook on".to_owned(),
        ));
    }
    let live = live_webhooks(client, check.known).await?;
    let mut ids: Vec<String> = live.iter().map(|(g, _)| g.clone()).collect();
    let mut created = Vec::new();
    let mut failed: Vec<(String, AsanaError)> = Vec::new();
    let filters = WebhookFilter::task_sync();
    for p in &projects {
        if live.iter().any(|(_, w)| resource_of(w) == Some(p.as_str())) {
            continue;
        }
        match client.create_webhook(p, target, &filters).await {
            Ok(c) => {
                created.push(p.clone());
                ids.push(c.webhook.gid);
            }
            Err(e) => failed.push((p.clone(), e)),
        }
    }
    if created.is_empty()
        && let Some((_, e)) = failed.first()
    {
        return Err(e.clone().into());
    }
    if failed.is_empty() {
        Ok(WebhookReport {
            state: WebhookState::Healthy,
            external_ids: ids,
            expires_at: None,
            stale: Vec::new(),
            detail: Some(format!(
                "created the webhook of project {}",
                join(&created.iter().collect::<Vec<_>>())
            )),
        })
    } else {
        let why: Vec<String> = failed
            .iter()
            .map(|(p, e)| format!("project {p}: {e}"))
            .collect();
        Ok(report(
            WebhookState::Missing,
            ids,
            &format!(
                "created the webhook of project {}; not created: {}",
                join(&created.iter().collect::<Vec<_>>()),
                why.join("; ")
            ),
        ))
    }
}

/// The known webhooks that still exist, with their JSON (a 404 is a webhook Asana deleted).
async fn live_webhooks(
    client: &AsanaClient,
    known: &[String],
) -> Result<Vec<(String, Value)>, ProviderError> {
    let mut live = Vec::new();
    for gid in known {
        match client.get_webhook(gid).await {
            Ok(w) => live.push((gid.clone(), w)),
            Err(AsanaError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(live)
}

fn report(state: WebhookState, ids: Vec<String>, detail: &str) -> WebhookReport {
    WebhookReport {
        state,
        external_ids: ids,
        expires_at: None,
        detail: Some(detail.to_owned()),
        stale: Vec::new(),
    }
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn resource_of(w: &Value) -> Option<&str> {
    w.get("resource")?.get("gid")?.as_str()
}

fn time_of(w: &Value, key: &str) -> Option<OffsetDateTime> {
    let ms = parse_time(w.get(key)?.as_str()?)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Why Asana's own health fields say a webhook is failing, if they do.
fn failing_reason(w: &Value) -> Option<String> {
    let content = w
        .get("last_failure_content")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .unwrap_or("no details");
    if w.get("active").and_then(Value::as_bool) == Some(false) {
        return Some(format!("inactive (last failure: {content})"));
    }
    let deletion = w
        .get("failure_deletion_timestamp")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty());
    let failure = time_of(w, "last_failure_at");
    let success = time_of(w, "last_success_at");
    let failing_now = match (failure, success) {
        (Some(f), Some(s)) => f > s,
        (Some(_), None) => true,
        _ => false,
    };
    if !failing_now && deletion.is_none() {
        return None;
    }
    Some(match deletion {
        Some(d) => format!("deliveries failing ({content}); Asana deletes it at {d}"),
        None => format!("deliveries failing ({content})"),
    })
}
