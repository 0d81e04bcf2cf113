//! A workspace's task list: search, filters, sort and paging.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use ordonis_core::{FieldValue, StoreExt, Task, WorkspaceId};
use serde::Deserialize;

use super::layout::{page, when};
use super::sync_view::{
    Failures, SyncState, confirmation_source, provider_key, sync_state, title_of,
};
use super::{safe_href, ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::json::{date, value_text};
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

pub(super) fn nonempty(v: &Option<String>) -> Option<&str> {
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
pub(super) struct Row<'a> {
    task: &'a Task,
    state: SyncState,
}

pub(super) fn status_text(t: &Task) -> String {
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

pub(super) async fn list_page(
    s: &AppState,
    ws: String,
    q: ListQuery,
) -> Result<Response, ApiError> {
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
