//! A task's page: per-field sync state, the edit form, and the VERA timeline with each
//! entry's inclusion checked against the signed checkpoint.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::header::REFRESH;
use axum::response::{IntoResponse, Response};
use maud::html;
use ordonis_core::vera::{Notary, TrustedKeys, leaf_hash, log_name, verify_inclusion};
use ordonis_core::{CauseKind, Field, FieldValue, LedgerEntry, Op, Outcome, WorkspaceId};
use serde::Deserialize;

use super::layout::{page, when};
use super::sync_view::{
    known_names, open_conflicts, priority_choices, priority_value, provider_key, status_value,
    title_of,
};
use super::{safe_href, ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::json::{date, value_text};
use crate::routes::tasks::find;
use crate::state::AppState;

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
    // A principal acting through a mapped provider account: "Alice Smith via jira".
    let mut s = match &a.account {
        Some(_) => format!("{name} via {} ({kind})", a.provider),
        None => format!(
            "{name} ({kind}{})",
            if a.provider == "internal" {
                String::new()
            } else {
                format!(", {}", a.provider)
            }
        ),
    };
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
pub(super) async fn verification(
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

pub(super) fn snake<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn opt_text(v: Option<&FieldValue>) -> String {
    v.map(value_text).unwrap_or_else(|| "∅".to_owned())
}

/// A ledger entry with its position in the task's list (where its verification result is).
type Numbered<'a> = (usize, &'a LedgerEntry);

/// A no-op entry ("To Do → To Do"): folded in the timeline.
pub(super) fn is_noop(e: &LedgerEntry) -> bool {
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

pub(super) async fn render_task(
    s: &AppState,
    id: &str,
    q: &TaskQuery,
) -> Result<Response, ApiError> {
    let t = find(s, id).await?;
    let ws = t.workspace_id.clone();
    let entries = s.store.task_ledger(&ws, t.id).await?;
    // Names come from the task itself and the people directory, never from the
    // workspace's other tasks: the page reads this task's data.
    let mut names = known_names(std::slice::from_ref(&t));
    // The people directory names the accounts it has seen, and its principals.
    for a in s.store.seen_accounts(&ws).await? {
        if let Some(n) = a.display_name {
            names.entry(a.account_id).or_insert(n);
        }
    }
    for p in s.store.people(&ws).await? {
        names.entry(p.principal).or_insert(p.display_name);
    }
    // Provider accounts named in any of the task's entries name that account everywhere.
    for e in &entries {
        if let Some(n) = &e.record.actor.display_name {
            names
                .entry(e.record.actor.id.clone())
                .or_insert_with(|| n.clone());
        }
    }
    let checks = verification(s, &ws, &entries).await;
    let comments = s.store.task_comments(&ws, t.id).await?;
    let sessions = s.store.task_sessions(&ws, t.id).await?;
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
    let statuses = super::task_edit::status_options(&t, &entries);
    let accounts = super::task_edit::picker_accounts(s, &t).await?;
    // The current priority, or every level when it has none.
    let priorities = priority_choices(&t, &[]);
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
            @if let Some(c) = &t.create {
                @if c.state != ordonis_core::CreateState::Created {
                    dt { "Create" }
                    dd #create-state .bad[matches!(c.state, ordonis_core::CreateState::Refused | ordonis_core::CreateState::Failed)] {
                        (c.state.as_str())
                        @if let Some(e) = &c.error { ": " (e) }
                        @if c.state == ordonis_core::CreateState::Pending { " (a worker creates it in the provider, exactly once)" }
                    }
                }
            }
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
        @if !sessions.is_empty() {
            h2 #sessions { "Agent sessions" }
            ul.sessions {
                @for se in &sessions {
                    li {
                        a href=(super::session_page::session_href(se)) { (super::session_page::session_heading(se)) }
                        " · " span class=(format!("state state-{}", se.state.as_str())) { (se.state.as_str()) }
                        " · " span.muted { (se.activities.len()) " activities · last " (when(se.last_activity_at)) }
                    }
                }
            }
        }
        h2 #conversation { "Conversation" }
        @if comments.is_empty() { p.muted { "No comments yet." } }
        ol.conversation {
            @for c in &comments {
                li.comment id=(format!("comment-{}", c.id)) {
                    p.meta {
                        strong { (c.author.display_name.clone().unwrap_or_else(|| c.author.id.clone())) }
                        " " span.muted { (comment_label(c, &names)) }
                        " · " (when(c.created_at))
                        @if c.edited_at.is_some() { " · edited" }
                        @if c.deleted { " · " span.bad { "deleted" } }
                        @if let Some(sync) = &c.sync {
                            " · " span class=(format!("sync sync-{}", sync.state.as_str())) { (sync.state.as_str()) }
                            @if let Some(err) = &sync.error { " " span.bad { "(" (err) ")" } }
                        }
                    }
                    @if !c.deleted { div.body style="white-space: pre-wrap" { (c.body) } }
                }
            }
        }
        @if !t.deleted && !t.out_of_scope {
            form #comment method="post" action=(format!("/ui/tasks/{}/comments", t.id)) {
                label for="comment-body" { "Comment as the operator" }
                textarea #comment-body name="body" rows="3" required {}
                button.primary type="submit" { "Comment" }
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
pub(super) fn rule_text(r: ordonis_core::FieldRule) -> String {
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

pub(super) fn policy_owned(p: &ordonis_core::FieldPolicy) -> String {
    Field::ALL
        .into_iter()
        .filter(|f| p.rule(*f).owner == ordonis_core::Owner::Provider)
        .map(Field::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who a comment is from, beyond its author's name: "via Jira", "agent for Alice Smith",
/// "in CollabHub".
pub(super) fn comment_label(
    c: &ordonis_core::TaskComment,
    names: &HashMap<String, String>,
) -> String {
    if !c.is_ours() {
        let mut p = c.source.clone();
        if let Some(first) = p.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        return format!("via {p}");
    }
    match (c.author.kind, c.author.on_behalf_of.last()) {
        (ordonis_core::ActorKind::Agent, Some(p)) => {
            let who = p
                .display_name
                .clone()
                .or_else(|| names.get(&p.id).cloned())
                .unwrap_or_else(|| p.id.clone());
            format!("agent for {who}")
        }
        _ => "in CollabHub".to_owned(),
    }
}
