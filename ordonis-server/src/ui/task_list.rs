//! A workspace's task list: search, filters and keyset paging, one store query per page
//! (`Store::query_tasks`) plus the bounded choice queries of the filters.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use ordonis_core::{
    AssigneeFilter, FieldValue, IntegrationId, SyncState, Task, TaskCursor, TaskQuery, TaskSort,
    WorkspaceId,
};
use serde::Deserialize;

use super::layout::{page, when};
use super::sync_view::{confirmation_source, provider_key, sync_class, title_of};
use super::{safe_href, ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::json::{date, value_text};
use crate::state::AppState;

/// Tasks per page of the list.
pub(crate) const PAGE_SIZE: usize = 25;

/// The task list's query: search, filters and where the page starts.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    /// Words the title contains (case-insensitive).
    #[serde(default)]
    q: Option<String>,
    /// A status name.
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
    /// Where the page starts: the previous page's `next_cursor`.
    #[serde(default)]
    cursor: Option<String>,
}

pub(super) fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl ListQuery {
    /// The query string of this query's filters, with a cursor or without one.
    fn href(&self, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("integration", &self.integration),
            ("sync", &self.sync),
        ] {
            if let Some(v) = nonempty(v) {
                pairs.push((k, v));
            }
        }
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", url_seg(v)))
            .collect();
        format!("?{}", q.join("&"))
    }

    /// The store query of one page, most recently changed first. A filter value that is
    /// not one (an unknown sync state, an integration that is not an id) matches nothing
    /// rather than everything, as the in-memory filter did.
    fn to_query(&self, ws: WorkspaceId) -> Result<(TaskQuery, bool), ApiError> {
        let mut q = TaskQuery::new(ws);
        q.sort = TaskSort::Updated;
        q.limit = PAGE_SIZE;
        q.search = nonempty(&self.q).map(str::to_owned);
        q.status = nonempty(&self.status).map(str::to_owned);
        q.assignee = nonempty(&self.assignee).map(AssigneeFilter::parse);
        let mut matches_nothing = false;
        if let Some(i) = nonempty(&self.integration) {
            match i.parse::<IntegrationId>() {
                Ok(id) => q.integration = Some(id),
                Err(_) => matches_nothing = true,
            }
        }
        if let Some(st) = nonempty(&self.sync) {
            match SyncState::parse(st) {
                Some(st) => q.sync_state = Some(st),
                None => matches_nothing = true,
            }
        }
        if let Some(c) = nonempty(&self.cursor) {
            q.cursor = Some(TaskCursor::parse(c)?);
        }
        Ok((q, matches_nothing))
    }

    fn filtered(&self) -> bool {
        [
            &self.q,
            &self.status,
            &self.assignee,
            &self.integration,
            &self.sync,
        ]
        .into_iter()
        .any(|v| nonempty(v).is_some())
    }
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
    let (query, matches_nothing) = q.to_query(ws.clone())?;
    let list = if matches_nothing {
        ordonis_core::TaskList::default()
    } else {
        s.store.query_tasks(&query).await?
    };
    let integrations = s.store.integrations(&ws).await?;
    // The filters' choices: bounded distinct queries, not the tasks.
    let statuses: Vec<String> = s
        .store
        .task_statuses(&ws)
        .await?
        .into_iter()
        .map(|st| st.name)
        .filter(|n| !n.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut assignees: Vec<(String, String)> = s
        .store
        .task_assignees(&ws)
        .await?
        .into_iter()
        .map(|a| {
            let name = a.display_name.unwrap_or_else(|| a.account_id.clone());
            (a.account_id, name)
        })
        .collect();
    assignees.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    let sync = nonempty(&q.sync).and_then(SyncState::parse);
    let mut confirmed_from: Vec<&'static str> = Vec::with_capacity(list.tasks.len());
    for r in &list.tasks {
        confirmed_from.push(confirmation_source(s, &r.task).await);
    }
    let next = list.next_cursor.as_ref().map(ToString::to_string);
    let on_first_page = nonempty(&q.cursor).is_none();
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
        p.muted #count {
            (list.tasks.len()) " shown"
            @if next.is_some() { ", more on the next page" }
        }
        div.scroll {
            table #tasks {
                thead { tr {
                    th { "Title" }
                    th { "Status" }
                    th { "Assignee" }
                    th { "Priority" }
                    th { "Due" }
                    th { "In provider" }
                    th { "Sync" }
                    th { "Confirmed from" }
                    th { "Last changed ↓" }
                } }
                tbody {
                    @for (r, from) in list.tasks.iter().zip(&confirmed_from) {
                        @let t = &r.task;
                        tr.task data-sync=(r.sync_state.as_str()) {
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
                            td { span class=(format!("badge {}", sync_class(r.sync_state))) { (r.sync_state.label()) } }
                            td.confirmed-from { (from) }
                            td { (when(t.updated_at)) }
                        }
                    }
                }
            }
        }
        @if list.tasks.is_empty() && on_first_page {
            @if q.filtered() {
                p.muted #no-match { "No task matches these filters." }
            } @else {
                p.muted { "No tasks yet: they appear when webhooks arrive." }
            }
        }
        @if next.is_some() || !on_first_page {
            nav.pager #pager {
                @if !on_first_page { a rel="first" href=(q.href(None)) { "← First page" } }
                @if let Some(c) = &next { a rel="next" href=(q.href(Some(c))) { "Next page →" } }
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
