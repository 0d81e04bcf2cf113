//! The task pages: a workspace's task list (search, filters, sort, paging) and a task's page
//! (per-field sync state, the edit form, the VERA timeline).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::REFRESH;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use ordonis_core::vera::{Notary, TrustedKeys, leaf_hash, log_name, verify_inclusion};
use ordonis_core::{
    Actor, CauseKind, Field, FieldPatch, FieldValue, LedgerEntry, Op, Outcome, StoreExt, Task,
    WorkspaceId,
};
use serde::Deserialize;

use super::layout::{Kept, error_page, page, when};
use super::sync_view::{
    Failures, SyncState, assignee_choices, known_names, open_conflicts, parse_priority,
    parse_status, priority_choices, priority_value, provider_key, status_choices, status_value,
    sync_state,
};
use super::{safe_href, ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::json::{date, value_text};
use crate::routes::tasks::{find, parse_date};
use crate::state::AppState;

/// Tasks per page of the list.
pub(crate) const PAGE_SIZE: usize = 25;

/// The task list's query: search, filters, sort and page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// Words the title contains (case-insensitive).
    #[serde(default)]
    q: Option<String>,
    /// A status as shown.
    #[serde(default)]
    status: Option<String>,
    /// An assignee's account id (`none`: unassigned).
    #[serde(default)]
    assignee: Option<String>,
    /// An integration id.
    #[serde(default)]
    integration: Option<String>,
    /// A sync state ([`SyncState::as_str`]).
    #[serde(default)]
    sync: Option<String>,
    /// `title`, `status`, `assignee`, `due` or `updated` (default).
    #[serde(default)]
    sort: Option<String>,
    /// `asc` or `desc`.
    #[serde(default)]
    dir: Option<String>,
    /// 1-based page.
    #[serde(default)]
    page: Option<usize>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ListQuery {
    /// The query string of this query with one parameter replaced.
    fn with(&self, key: &str, value: &str) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("integration", &self.integration),
            ("sync", &self.sync),
            ("sort", &self.sort),
            ("dir", &self.dir),
        ] {
            if k != key
                && let Some(v) = nonempty(v)
            {
                pairs.push((k, v.to_owned()));
            }
        }
        if key != "page"
            && let Some(p) = self.page
        {
            if key == "sort" || key == "dir" {
                // A new order starts at the first page.
            } else {
                pairs.push(("page", p.to_string()));
            }
        }
        if !value.is_empty() {
            pairs.push((key, value.to_owned()));
        }
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", url_seg(v)))
            .collect();
        format!("?{}", q.join("&"))
    }
}

/// One row of the list, with what the filters look at.
struct Row<'a> {
    task: &'a Task,
    state: SyncState,
}

fn title_of(t: &Task) -> &str {
    if t.fields.title.is_empty() {
        "(untitled)"
    } else {
        &t.fields.title
    }
}

fn status_text(t: &Task) -> String {
    value_text(&FieldValue::Status(t.fields.status.clone()))
}

/// `GET /ui/workspaces/{ws}`: the task list.
pub(crate) async fn list(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    match list_page(&s, ws, q).await {
        Ok(r) => r,
        Err(e) => ui_error(e),
    }
}

async fn list_page(s: &AppState, ws: String, q: ListQuery) -> Result<Response, ApiError> {
    let ws = WorkspaceId::new(ws)?;
    let tasks = s.store.all_tasks(&ws).await?;
    let failures = Failures::load(s, &ws).await?;
    let integrations = s.store.integrations(&ws).await?;
    let mut rows = Vec::with_capacity(tasks.len());
    for t in &tasks {
        let entries = s.store.task_ledger(&ws, t.id).await?;
        rows.push(Row {
            task: t,
            state: sync_state(t, &entries, &failures),
        });
    }
    // The filters' choices come from all tasks, before filtering.
    let mut statuses: Vec<String> = tasks.iter().map(status_text).collect();
    statuses.sort();
    statuses.dedup();
    let mut assignees: Vec<(String, String)> = tasks
        .iter()
        .filter_map(|t| t.fields.assignee.as_ref())
        .map(|a| {
            (
                a.account_id.clone(),
                a.display_name
                    .clone()
                    .unwrap_or_else(|| a.account_id.clone()),
            )
        })
        .collect();
    assignees.sort_by(|a, b| a.1.cmp(&b.1));
    assignees.dedup();

    let search = nonempty(&q.q).map(str::to_lowercase);
    let sync = nonempty(&q.sync).and_then(SyncState::parse);
    rows.retain(|r| {
        let t = r.task;
        search
            .as_deref()
            .is_none_or(|w| t.fields.title.to_lowercase().contains(w))
            && nonempty(&q.status).is_none_or(|st| status_text(t).eq_ignore_ascii_case(st))
            && nonempty(&q.assignee).is_none_or(|a| match &t.fields.assignee {
                None => a == "none",
                Some(x) => x.account_id == a,
            })
            && nonempty(&q.integration)
                .is_none_or(|i| t.external.iter().any(|e| e.integration_id.to_string() == i))
            && sync.is_none_or(|st| r.state == st)
    });
    let sort = nonempty(&q.sort).unwrap_or("updated");
    let desc = match nonempty(&q.dir) {
        Some(d) => d == "desc",
        None => sort == "updated",
    };
    rows.sort_by(|a, b| {
        let (x, y) = (&a.task.fields, &b.task.fields);
        let o = match sort {
            "title" => x.title.to_lowercase().cmp(&y.title.to_lowercase()),
            "status" => (x.status.category, status_text(a.task))
                .cmp(&(y.status.category, status_text(b.task))),
            "assignee" => value_text(&FieldValue::Assignee(x.assignee.clone()))
                .cmp(&value_text(&FieldValue::Assignee(y.assignee.clone()))),
            "due" => x.due_date.cmp(&y.due_date),
            _ => a.task.updated_at.cmp(&b.task.updated_at),
        };
        if desc { o.reverse() } else { o }
    });
    let total = rows.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = q.page.unwrap_or(1).clamp(1, pages);
    let shown: Vec<&Row<'_>> = rows
        .iter()
        .skip((page_no - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let mut confirmed_from: Vec<&'static str> = Vec::with_capacity(shown.len());
    for r in &shown {
        confirmed_from.push(confirmation_source(s, r.task).await);
    }
    let sort_link = |key: &str, label: &str| {
        let next_desc = if sort == key { !desc } else { key == "updated" };
        let mut href = q.with("sort", key);
        href.push_str(if next_desc { "&dir=desc" } else { "&dir=asc" });
        let mark = if sort == key {
            if desc { " ↓" } else { " ↑" }
        } else {
            ""
        };
        html! { a.sort href=(href) { (label) (mark) } }
    };
    let selected = |v: &Option<String>, x: &str| nonempty(v) == Some(x);
    let body = html! {
        form.filters #filters method="get" {
            label { "Search " input type="search" name="q" id="q" placeholder="title contains…" value=[nonempty(&q.q)]; }
            label { "Status "
                select name="status" id="filter-status" {
                    option value="" { "any" }
                    @for st in &statuses { option value=(st) selected[selected(&q.status, st)] { (st) } }
                }
            }
            label { "Assignee "
                select name="assignee" id="filter-assignee" {
                    option value="" { "anyone" }
                    option value="none" selected[selected(&q.assignee, "none")] { "unassigned" }
                    @for (id, name) in &assignees { option value=(id) selected[selected(&q.assignee, id)] { (name) } }
                }
            }
            label { "Integration "
                select name="integration" id="filter-integration" {
                    option value="" { "any" }
                    @for r in &integrations {
                        @let id = r.id.to_string();
                        option value=(id) selected[selected(&q.integration, &id)] {
                            (r.provider.as_str()) " · " (r.config["base_url"].as_str().unwrap_or(""))
                        }
                    }
                }
            }
            label { "Sync "
                select name="sync" id="filter-sync" {
                    option value="" { "any" }
                    @for st in SyncState::ALL { option value=(st.as_str()) selected[sync == Some(st)] { (st.label()) } }
                }
            }
            button.primary type="submit" id="apply-filters" { "Apply" }
            a href=(format!("/ui/workspaces/{}", url_seg(ws.as_str()))) { "Clear" }
        }
        p.muted #count { (total) " of " (tasks.len()) " tasks" }
        div.scroll {
            table #tasks {
                thead { tr {
                    th { (sort_link("title", "Title")) }
                    th { (sort_link("status", "Status")) }
                    th { (sort_link("assignee", "Assignee")) }
                    th { "Priority" }
                    th { (sort_link("due", "Due")) }
                    th { "In provider" }
                    th { "Sync" }
                    th { "Confirmed from" }
                    th { (sort_link("updated", "Last changed")) }
                } }
                tbody {
                    @for (r, from) in shown.iter().zip(&confirmed_from) {
                        @let t = r.task;
                        tr.task data-sync=(r.state.as_str()) {
                            td {
                                a.task-link href=(format!("/ui/tasks/{}", t.id)) { (title_of(t)) }
                                @if t.deleted { " " span.bad { "deleted" } }
                                @if t.out_of_scope { " " span.muted { "out of scope" } }
                            }
                            td { (status_text(t)) }
                            td { (value_text(&FieldValue::Assignee(t.fields.assignee.clone()))) }
                            td { (value_text(&FieldValue::Priority(t.fields.priority.clone()))) }
                            td { (t.fields.due_date.map(date).unwrap_or_default()) }
                            td {
                                @for (i, e) in t.external.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    @let text = format!("{} {}", e.provider.as_str(), provider_key(e));
                                    @match e.url.as_deref().and_then(|u| safe_href(u, s.allow_any_provider_url)) {
                                        Some(href) => a.provider-link href=(href) { (text) },
                                        None => span { (text) },
                                    }
                                }
                            }
                            td { span class=(format!("badge {}", r.state.class())) { (r.state.label()) } }
                            td.confirmed-from { (from) }
                            td { (when(t.updated_at)) }
                        }
                    }
                }
            }
        }
        @if tasks.is_empty() {
            p.muted { "No tasks yet: they appear when webhooks arrive." }
        } @else if shown.is_empty() {
            p.muted #no-match { "No task matches these filters." }
        }
        @if pages > 1 {
            nav.pager #pager {
                @if page_no > 1 { a rel="prev" href=(q.with("page", &(page_no - 1).to_string())) { "← Previous" } }
                span { "Page " (page_no) " of " (pages) }
                @if page_no < pages { a rel="next" href=(q.with("page", &(page_no + 1).to_string())) { "Next →" } }
            }
        }
        (crate::ui::integrations::list(s, &integrations))
    };
    Ok(page(
        &format!("Tasks of {}", ws.as_str()),
        Some(ws.as_str()),
        body,
    )
    .into_response())
}

/// Where a task's newest provider value was last confirmed from: the source of the inbox
/// event that carried it (`webhook`, `backfill` or `reconcile`), or `—` when no provider
/// value has arrived yet (a task known only from CollabHub).
async fn confirmation_source(s: &AppState, t: &Task) -> &'static str {
    let Some(v) = t
        .sync
        .values()
        .filter_map(|f| f.version.as_ref())
        .max_by_key(|v| v.at_ms)
    else {
        return "—";
    };
    let Ok(id) = v.event.parse::<ordonis_core::EventId>() else {
        return "fetch";
    };
    match s.store.event(&t.workspace_id, id).await {
        Ok(Some(e)) => match ordonis_core::ListMode::parse(&e.auth) {
            Some(ordonis_core::ListMode::Backfill) => "backfill",
            Some(ordonis_core::ListMode::Reconcile) => "reconcile",
            None => "webhook",
        },
        _ => "—",
    }
}

/// An actor as text: a name where one is known (the actor's own, or an account's).
pub(crate) fn actor_text(e: &LedgerEntry, names: &HashMap<String, String>) -> String {
    let a = &e.record.actor;
    let kind = serde_json::to_value(a.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let name = a
        .display_name
        .clone()
        .or_else(|| names.get(&a.id).cloned())
        .unwrap_or_else(|| a.id.clone());
    let mut s = format!(
        "{name} ({kind}{})",
        if a.provider == "internal" {
            String::new()
        } else {
            format!(", {}", a.provider)
        }
    );
    if !a.on_behalf_of.is_empty() {
        let chain: Vec<String> = a
            .on_behalf_of
            .iter()
            .map(|p| names.get(&p.id).cloned().unwrap_or_else(|| p.id.clone()))
            .collect();
        s.push_str(&format!(" for {}", chain.join(" → ")));
    }
    s
}

/// Whether each entry verifies against the current signed checkpoint.
async fn verification(
    s: &AppState,
    ws: &WorkspaceId,
    entries: &[LedgerEntry],
) -> Result<Vec<Result<(), String>>, String> {
    let notary = Notary::new(s.store.as_ref(), &s.signer);
    let cp = notary.checkpoint(ws).await.map_err(|e| e.to_string())?;
    let trusted: TrustedKeys = s
        .signer
        .trusted_keys(&log_name(ws))
        .map_err(|e| e.to_string())?;
    let cp = trusted.verify(&cp.note).map_err(|e| e.to_string())?;
    let snap = notary.snapshot(ws).await.map_err(|e| e.to_string())?;
    Ok(entries
        .iter()
        .map(|e| {
            if e.idx >= cp.size {
                return Err("not yet in a signed checkpoint".to_owned());
            }
            let proof = snap
                .tree
                .inclusion_proof(e.idx, cp.size)
                .map_err(|x| x.to_string())?;
            verify_inclusion(&leaf_hash(&e.bytes), e.idx, cp.size, &proof, &cp.root)
                .map_err(|x| x.to_string())
        })
        .collect())
}

fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn opt_text(v: Option<&FieldValue>) -> String {
    v.map(value_text).unwrap_or_else(|| "∅".to_owned())
}

/// A ledger entry with its position in the task's list (where its verification result is).
type Numbered<'a> = (usize, &'a LedgerEntry);

/// A no-op entry ("To Do → To Do"): folded in the timeline.
fn is_noop(e: &LedgerEntry) -> bool {
    let r = &e.record;
    r.op == Op::Set
        && r.outcome != Outcome::Conflict
        && match (&r.before, &r.after) {
            (Some(b), Some(a)) => b.same_as(a),
            _ => false,
        }
}

/// The link to an inbox event in the inbox view.
pub(crate) fn event_link(ws: &WorkspaceId, id: &str) -> String {
    format!(
        "/ui/events?workspace_id={}#event-{}",
        url_seg(ws.as_str()),
        url_seg(id)
    )
}

/// The query of a task page: what the last save did.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TaskQuery {
    /// `field:outcome,…` of the last save.
    #[serde(default)]
    saved: Option<String>,
    /// Whether the save queued a push.
    #[serde(default)]
    queued: Option<u8>,
}

/// `GET /ui/tasks/{id}`.
pub(crate) async fn task_page(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> Response {
    match render_task(&s, &id, &q).await {
        Ok(r) => r,
        Err(e) => ui_error(e),
    }
}

async fn render_task(s: &AppState, id: &str, q: &TaskQuery) -> Result<Response, ApiError> {
    let t = find(s, id).await?;
    let ws = t.workspace_id.clone();
    let entries = s.store.task_ledger(&ws, t.id).await?;
    let all = s.store.all_tasks(&ws).await?;
    let mut names = known_names(&all);
    // Provider accounts named in any of the task's entries name that account everywhere.
    for e in &entries {
        if let Some(n) = &e.record.actor.display_name {
            names
                .entry(e.record.actor.id.clone())
                .or_insert_with(|| n.clone());
        }
    }
    let checks = verification(s, &ws, &entries).await;
    let policy = super::sync_view::task_policy(s, &t).await?;
    let conflicts = open_conflicts(&entries);
    // A push of this task that has failed at least once: the page stops refreshing and says so.
    let failing_push = s
        .store
        .jobs(&ordonis_core::JobFilter {
            workspace_id: Some(ws.clone()),
            limit: 1000,
            ..ordonis_core::JobFilter::new(ordonis_core::Queue::Outbox)
        })
        .await?
        .into_iter()
        .filter_map(ordonis_core::Job::into_push)
        .find(|p| {
            // `attempts` counts claims; a recorded error is what says an attempt failed.
            p.task_id == t.id && p.last_error.is_some() && p.state != ordonis_core::JobState::Done
        });
    let f = &t.fields;
    let pending = t
        .sync
        .values()
        .any(ordonis_core::FieldSync::locally_pending);
    let statuses = status_choices(&t, &all, &entries);
    let accounts = assignee_choices(&t, &all);
    let priorities = priority_choices(&t, &all);
    let due = f.due_date.map(date).unwrap_or_default();
    let assignee_now = f
        .assignee
        .as_ref()
        .map(|a| a.account_id.clone())
        .unwrap_or_default();
    let priority_now = priority_value(f.priority.as_ref());
    let status_now = status_value(&f.status);
    let (noops, shown): (Vec<Numbered<'_>>, Vec<Numbered<'_>>) =
        entries.iter().enumerate().partition(|(_, e)| is_noop(e));
    let timeline_row = |i: usize, e: &LedgerEntry| {
        let r = &e.record;
        let what = match r.field {
            Some(fd) => format!(
                "{fd}: {} → {}",
                opt_text(r.before.as_ref()),
                opt_text(r.after.as_ref())
            ),
            None => snake(&r.op),
        };
        let verifies = match checks.as_ref().map(|c| c.get(i)) {
            Ok(Some(Ok(()))) => html! { span.ok.verified { "✓ verified" } },
            Ok(Some(Err(why))) => html! { span.bad { "✗ " (why) } },
            _ => html! { span.bad { "✗" } },
        };
        html! {
            tr.entry {
                td { (e.idx) }
                td { (when(r.occurred_at.unwrap_or(r.observed_at))) }
                td { (actor_text(e, &names)) }
                td { (what) }
                td { span class=(format!("outcome-{}", snake(&r.outcome))) { (snake(&r.outcome)) } }
                td {
                    (snake(&r.cause.kind)) " "
                    @if r.cause.kind == CauseKind::InboundEvent {
                        a href=(event_link(&ws, &r.cause.id)) { (r.cause.id) }
                    } @else { (r.cause.id) }
                    @if let Some(d) = &r.cause.delivery_id { " (delivery " (d) ")" }
                }
                td { (verifies) }
            }
        }
    };
    let saved: Vec<&str> = q
        .saved
        .as_deref()
        .map(|x| x.split(',').filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let body = html! {
        p { a href=(format!("/ui/workspaces/{}", url_seg(ws.as_str()))) { "← tasks of " (ws.as_str()) } }
        @if q.saved.is_some() {
            div.notice #saved role="status" {
                @if saved.is_empty() {
                    p { "Nothing changed: no field differed from what the page showed." }
                } @else {
                    p { "Saved: "
                        @for (i, p) in saved.iter().enumerate() {
                            @if i > 0 { ", " }
                            @let (field, outcome) = p.split_once(':').unwrap_or((p, ""));
                            strong { (field) } " " span.muted { (outcome) }
                        }
                        "."
                    }
                    @if q.queued == Some(1) {
                        @if let Some(p) = &failing_push {
                            p #push-failing.bad {
                                "The push is failing (" (p.attempts) " attempts: "
                                (p.last_error.as_deref().unwrap_or("no error recorded")) "). "
                                a href=(format!("/ui/pushes?workspace_id={}#push-{}", url_seg(ws.as_str()), p.id)) { "See it in the outbox" }
                                "."
                            }
                        } @else if pending {
                            p #settling { "A push is queued; this page refreshes until the provider's echo confirms it." }
                        } @else {
                            p #settled.ok { "The provider confirmed the change." }
                        }
                    }
                }
            }
        }
        @if !conflicts.is_empty() {
            div.notice.bad #conflicts {
                p { "Fields in conflict: "
                    @for (i, (fd, _)) in conflicts.iter().enumerate() { @if i > 0 { ", " } (fd.as_str()) }
                    ". " a href=(format!("/ui/workspaces/{}/conflicts", url_seg(ws.as_str()))) { "Resolve them" }
                }
            }
        }
        dl #links {
            dt { "Last changed" } dd { (when(t.updated_at)) }
            @for e in &t.external {
                dt { "In " (e.provider.as_str()) }
                dd {
                    @match e.url.as_deref() {
                        Some(u) => @match safe_href(u, s.allow_any_provider_url) {
                            Some(href) => a.provider-link href=(href) { (provider_key(e)) " — " (u) },
                            // Not a link the UI may render (`javascript:`, `data:`…): text.
                            None => span.muted { (u) },
                        },
                        None => (e.key.external_id),
                    }
                }
            }
            @if t.deleted { dt { "Deleted" } dd.bad { "deleted in the provider: kept as a tombstone" } }
            @if t.out_of_scope { dt { "Scope" } dd #out-of-scope { "out of the integration's scope: not synced until it is back (the timeline says why)" } }
        }
        h2 { "Fields" }
        div.scroll {
            table #fields {
                thead { tr { th { "Field" } th { "Value" } th { "Owner" } th { "Last confirmed" } th { "Pending" } } }
                tbody {
                    @for field in Field::ALL {
                        @let st = t.sync_state(field);
                        @let rule = policy.rule(field);
                        @let conflict = conflicts.iter().find(|(fd, _)| *fd == field);
                        tr.field data-field=(field.as_str()) {
                            th { (field.as_str()) }
                            td { (value_text(&f.get(field))) }
                            td { (rule_text(rule)) }
                            td {
                                @match &st.version {
                                    Some(v) => {
                                        @if let Some(at) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(v.at_ms) * 1_000_000).ok() { (when(at)) " " }
                                        span.muted { "from " a href=(event_link(&ws, &v.event)) { (v.event) } }
                                    },
                                    None => span.muted { "never synced" },
                                }
                            }
                            td {
                                @if let Some(w) = &st.want { span.warn { "to push: " (value_text(&w.value)) } br; }
                                @for sent in &st.sent {
                                    span.warn { (if sent.acked { "awaiting echo: " } else { "pushing: " }) (value_text(&sent.value)) } br;
                                }
                                @if let Some((_, e)) = conflict {
                                    span.bad { "conflict: " (opt_text(e.record.before.as_ref())) " vs " (opt_text(e.record.after.as_ref())) }
                                }
                                @if !st.locally_pending() && conflict.is_none() { span.ok { "in sync" } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Edit" }
        @if t.deleted {
            p.muted { "A task deleted in the provider cannot be changed." }
        } @else if t.out_of_scope {
            p.muted { "A task out of its integration's scope cannot be changed until it is back in scope." }
        } @else {
            form.card #edit method="post" action=(format!("/ui/tasks/{}", t.id)) data-only-changed {
                p.muted { "Only the fields you change are sent. Provider-owned fields (" (policy_owned(&policy)) ") become requests the provider confirms." }
                label { "Title " input type="text" name="title" value=(f.title) data-was=(f.title) required; }
                input type="hidden" name="was_title" value=(f.title);
                label { "Description " textarea name="description" data-was=(f.description) { (f.description) } }
                input type="hidden" name="was_description" value=(f.description);
                div.grid {
                    label { "Status "
                        select name="status" id="edit-status" data-was=(status_now) {
                            @for st in &statuses {
                                @let v = status_value(st);
                                option value=(v) selected[v == status_now] { (value_text(&FieldValue::Status(st.clone()))) }
                            }
                        }
                    }
                    label { "Assignee "
                        select name="assignee" data-was=(assignee_now) {
                            option value="" selected[assignee_now.is_empty()] { "unassigned" }
                            @for a in &accounts {
                                option value=(a.account_id) selected[a.account_id == assignee_now] { (a.display_name.as_deref().unwrap_or(&a.account_id)) }
                            }
                        }
                    }
                    label { "Priority "
                        select name="priority" data-was=(priority_now) {
                            option value="" selected[priority_now.is_empty()] { "none" }
                            @for p in &priorities {
                                @let v = priority_value(Some(p));
                                option value=(v) selected[v == priority_now] { (value_text(&FieldValue::Priority(Some(p.clone())))) }
                            }
                        }
                    }
                    label { "Due date " input type="date" name="due_date" value=(due) data-was=(due); }
                }
                input type="hidden" name="was_status" value=(status_now);
                input type="hidden" name="was_assignee" value=(assignee_now);
                input type="hidden" name="was_priority" value=(priority_now);
                input type="hidden" name="was_due_date" value=(due);
                button.primary type="submit" { "Save as admin" }
            }
        }
        h2 { "VERA timeline" }
        @if let Err(e) = &checks { p.bad { "The log does not verify: " (e) } }
        div.scroll {
            table #ledger {
                thead { tr { th { "#" } th { "When" } th { "Who" } th { "What" } th { "Outcome" } th { "Cause" } th { "Verifies" } } }
                tbody { @for (i, e) in &shown { (timeline_row(*i, e)) } }
            }
        }
        @if !noops.is_empty() {
            details.folded #noops {
                summary { (noops.len()) " entries that changed nothing (same value before and after)" }
                div.scroll { table { tbody { @for (i, e) in &noops { (timeline_row(*i, e)) } } } }
            }
        }
    };
    let mut resp = page(title_of(&t), Some(ws.as_str()), body).into_response();
    if q.queued == Some(1) && pending && failing_push.is_none() {
        // Live state while the echo settles, without script: the browser reloads the page.
        resp.headers_mut()
            .insert(REFRESH, axum::http::HeaderValue::from_static("2"));
    }
    Ok(resp)
}

/// A field rule as the task page shows it: "provider, both ways".
fn rule_text(r: ordonis_core::FieldRule) -> String {
    let owner = match r.owner {
        ordonis_core::Owner::Provider => "provider",
        ordonis_core::Owner::Host => "CollabHub",
    };
    let direction = match r.direction {
        ordonis_core::Direction::Both => "both ways",
        ordonis_core::Direction::InboundOnly => "inbound only",
        ordonis_core::Direction::OutboundOnly => "outbound only",
        ordonis_core::Direction::Off => "not synced",
    };
    format!("{owner}, {direction}")
}

fn policy_owned(p: &ordonis_core::FieldPolicy) -> String {
    Field::ALL
        .into_iter()
        .filter(|f| p.rule(*f).owner == ordonis_core::Owner::Provider)
        .map(Field::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The task edit form. Each field comes with the value the page showed (`was_*`): a field is
/// changed only when the submitted value differs from it, so a title-only edit never sends a
/// status. A post without `was_*` (an older page, a script) compares with the task's current
/// value instead.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EditForm {
    title: Option<String>,
    was_title: Option<String>,
    description: Option<String>,
    was_description: Option<String>,
    status: Option<String>,
    was_status: Option<String>,
    assignee: Option<String>,
    was_assignee: Option<String>,
    priority: Option<String>,
    was_priority: Option<String>,
    due_date: Option<String>,
    was_due_date: Option<String>,
}

impl EditForm {
    /// What the user typed, for the error page.
    fn kept(&self) -> Vec<(String, String)> {
        [
            ("title", &self.title),
            ("description", &self.description),
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("priority", &self.priority),
            ("due_date", &self.due_date),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v.clone()?)))
        .collect()
    }
}

/// Browsers send a textarea's line breaks as CRLF.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// The submitted value of a field when the user changed it: `was` given and different, or
/// (no `was`) different from `current` by `same`.
fn changed<'a>(
    value: &'a Option<String>,
    was: &Option<String>,
    current: impl FnOnce(&str) -> bool,
) -> Option<&'a str> {
    let v = value.as_deref()?;
    let unchanged = match was {
        Some(w) => lf(w) == lf(v),
        None => current(v),
    };
    (!unchanged).then_some(v)
}

/// The patch an edit form asks for; `accounts` are those the assignee picker offered (their
/// names are kept with the account id).
pub(crate) fn edit_patch(
    t: &Task,
    form: &EditForm,
    accounts: &[ordonis_core::Assignee],
) -> Result<FieldPatch, ApiError> {
    let f = &t.fields;
    let mut patch = FieldPatch::new();
    if let Some(title) = changed(&form.title, &form.was_title, |v| v == f.title) {
        if title.trim().is_empty() {
            return Err(ApiError::bad_request("the title must not be empty"));
        }
        patch.set(FieldValue::Title(title.to_owned()));
    }
    if let Some(d) = changed(&form.description, &form.was_description, |v| {
        lf(v) == lf(&f.description)
    }) {
        patch.set(FieldValue::Description(lf(d)));
    }
    if let Some(st) = changed(&form.status, &form.was_status, |v| {
        v.trim().is_empty()
            || v == status_value(&f.status)
            || v.eq_ignore_ascii_case(&value_text(&FieldValue::Status(f.status.clone())))
    }) {
        patch.set(FieldValue::Status(parse_status(st)));
    }
    if let Some(a) = changed(&form.assignee, &form.was_assignee, |v| {
        f.assignee
            .as_ref()
            .map_or(v.is_empty(), |a| a.account_id == v)
    }) {
        let a = a.trim();
        patch.set(FieldValue::Assignee(if a.is_empty() {
            None
        } else {
            // The picker offers known accounts: keep the name they are known by.
            Some(
                accounts
                    .iter()
                    .find(|x| x.account_id == a)
                    .cloned()
                    .unwrap_or_else(|| ordonis_core::Assignee {
                        account_id: a.to_owned(),
                        display_name: None,
                        email: None,
                    }),
            )
        }));
    }
    if let Some(p) = changed(&form.priority, &form.was_priority, |v| {
        v == priority_value(f.priority.as_ref())
    }) {
        patch.set(FieldValue::Priority(
            parse_priority(p).map_err(|e| ApiError::bad_request(e.why))?,
        ));
    }
    if let Some(d) = changed(&form.due_date, &form.was_due_date, |v| {
        v.trim() == f.due_date.map(date).unwrap_or_default()
    }) {
        let new = if d.trim().is_empty() {
            None
        } else {
            Some(
                parse_date(d)
                    .ok_or_else(|| ApiError::bad_request("due date must be YYYY-MM-DD"))?,
            )
        };
        patch.set(FieldValue::DueDate(new));
    }
    Ok(patch)
}

/// `POST /ui/tasks/{id}`.
pub(crate) async fn task_edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let kept = |e: ApiError| {
        error_page(
            &e,
            &Kept {
                back: Some(format!("/ui/tasks/{}", url_seg(&id))),
                fields: form.kept(),
            },
        )
    };
    let t = match find(&s, &id).await {
        Ok(t) => t,
        Err(e) => return ui_error(e),
    };
    let accounts = match s.store.all_tasks(&t.workspace_id).await {
        Ok(all) => assignee_choices(&t, &all),
        Err(e) => return kept(e.into()),
    };
    let patch = match edit_patch(&t, &form, &accounts) {
        Ok(p) => p,
        Err(e) => return kept(e),
    };
    let mut saved: Vec<String> = Vec::new();
    let mut queued = false;
    if !patch.is_empty() {
        let actor = Actor::human("ui-admin").named("Admin (UI)");
        match s
            .engine
            .change_task(&t.workspace_id, t.id, &actor, &patch)
            .await
        {
            Ok(receipt) => {
                queued = receipt.push_queued;
                if queued {
                    s.wake.notify_waiters();
                }
                for d in &receipt.entries {
                    if let Some(fd) = d.field {
                        saved.push(format!("{}:{}", fd.as_str(), snake(&d.outcome)));
                    }
                }
            }
            Err(e) => return kept(e.into()),
        }
    }
    Redirect::to(&format!(
        "/ui/tasks/{}?saved={}&queued={}",
        t.id,
        url_seg(&saved.join(",")),
        u8::from(queued)
    ))
    .into_response()
}
