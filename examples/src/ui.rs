//! The server-rendered UI (no JavaScript): sign-in with the admin token (an HttpOnly,
//! SameSite=Strict session cookie), task lists per workspace, a task page with its fields,
//! an edit form and its VERA timeline (each entry checked against the current signed
//! checkpoint), and the inbox with replay buttons.

use std::fmt::Write as _;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ordonis_core::StoreExt;
use ordonis_core::vera::{Notary, TrustedKeys, leaf_hash, log_name, verify_inclusion};
use ordonis_core::{Actor, FieldValue, LedgerEntry, Task, WorkspaceId};
use serde::Deserialize;

use crate::app::AppState;
use crate::errors::ApiError;
use crate::routes::events::{EventsQuery, query, replay_event};
use crate::routes::json::{date, ts, value_text};
use crate::routes::tasks::{apply, find, parse_date};
use crate::throttle::{ClientKey, retry_after_secs};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "ordonis_session";

/// The UI routes.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/ui", get(home))
        .route("/ui/workspaces/{ws}", get(workspace))
        .route("/ui/tasks/{id}", get(task_page).post(task_edit))
        .route("/ui/events", get(events_page))
        .route("/ui/events/{id}/replay", post(events_replay))
        .route("/ui/logout", post(logout))
        .merge(crate::ui_integrations::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(login_form).post(login))
        .merge(protected)
        .with_state(state)
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

pub(crate) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · Ordonis</title><style>\
body{{font-family:system-ui,sans-serif;margin:0;color:#1d2330}}\
header{{background:#1d2330;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}}\
header a{{color:#fff}} main{{padding:1rem 1.2rem;max-width:72rem}}\
table{{border-collapse:collapse;width:100%}} th,td{{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #dde}}\
.ok{{color:#17803d}} .bad{{color:#b42318}} .muted{{color:#667}} form.inline{{display:inline}}\
label{{display:block;margin:.3rem 0}} input,select,textarea{{font:inherit}}\
</style></head><body><header><strong>Ordonis</strong><a href=\"/ui\">Workspaces</a>\
<a href=\"/ui/events\">Inbox</a><form class=\"inline\" method=\"post\" action=\"/ui/logout\">\
<button>Sign out</button></form></header><main><h1>{t}</h1>{body}</main></body></html>",
        t = esc(title),
    ))
}

fn cookie_value(req: &Request) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_owned())
}

async fn require_session(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if cookie_value(&req).is_some_and(|v| s.session_ok(&v)) {
        return next.run(req).await;
    }
    if req.method() == Method::GET {
        Redirect::to("/ui/login").into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "sign in first").into_response()
    }
}

fn login_html(error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"bad\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in · Ordonis</title></head>\
<body style=\"font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto\"><h1>Sign in to Ordonis</h1>{err}\
<form method=\"post\" action=\"/ui/login\"><label>Admin token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"current-password\" required></label>\
<button type=\"submit\" id=\"signin\">Sign in</button></form></body></html>"
    )
}

async fn login_form() -> Html<String> {
    Html(login_html(None))
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginForm { token: [REDACTED] }")
    }
}

fn too_many(wait: std::time::Duration) -> Response {
    let secs = retry_after_secs(wait);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(RETRY_AFTER, secs.to_string())],
        Html(login_html(Some(&format!(
            "Too many failed sign-ins from your address: try again in {secs} s."
        )))),
    )
        .into_response()
}

async fn login(State(s): State<AppState>, client: ClientKey, Form(f): Form<LoginForm>) -> Response {
    // Over the limit: refused before the token is even checked.
    if let Some(wait) = s.sign_ins().blocked(client) {
        return too_many(wait);
    }
    if !s.token_ok(f.token.trim()) {
        if let Some(wait) = s.sign_ins().failed(client) {
            return too_many(wait);
        }
        return (
            StatusCode::UNAUTHORIZED,
            Html(login_html(Some("That token is not right."))),
        )
            .into_response();
    }
    // `Secure` when the server is published over HTTPS (it cannot be set on plain-HTTP
    // localhost, where the browser would drop the cookie).
    let secure = if s.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        s.new_session(),
        s.sessions().ttl().as_secs()
    );
    (
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, "/ui".to_owned())],
    )
        .into_response()
}

async fn logout(State(s): State<AppState>, req: Request) -> Response {
    // Revoked on the server too: a copied cookie stops working now, not at its expiry.
    if let Some(v) = cookie_value(&req) {
        s.end_session(&v);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                SET_COOKIE,
                format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            ),
            (LOCATION, "/ui/login".to_owned()),
        ],
    )
        .into_response()
}

pub(crate) fn ui_error(e: ApiError) -> Response {
    (
        e.status,
        page(
            "Error",
            &format!("<p class=\"bad\">{}</p>", esc(&e.message)),
        ),
    )
        .into_response()
}

async fn home(State(s): State<AppState>) -> Response {
    let wss = match s.store.workspaces().await {
        Ok(w) => w,
        Err(e) => return ui_error(e.into()),
    };
    if wss.len() == 1
        && let Some(ws) = wss.first()
    {
        return Redirect::to(&format!("/ui/workspaces/{}", url_seg(ws.as_str()))).into_response();
    }
    let mut b = String::from("<ul id=\"workspaces\">");
    for ws in &wss {
        let _ = write!(
            b,
            "<li><a href=\"/ui/workspaces/{}\">{}</a></li>",
            esc(&url_seg(ws.as_str())),
            esc(ws.as_str())
        );
    }
    b.push_str("</ul>");
    if wss.is_empty() {
        b.push_str("<p class=\"muted\">No workspaces yet: create an integration with <code>POST /api/integrations</code>.</p>");
    }
    page("Workspaces", &b).into_response()
}

/// A provider-supplied link, if the UI may render it as one: an absolute `https:` URL, or
/// `http:` when the server accepts any provider URL (`--allow-any-provider-url`, where the
/// providers themselves may be on plain HTTP). Anything else (`javascript:`, `data:`, a
/// relative or unparsable URL) is `None`, to be shown as text. Returns the parsed URL's
/// serialization, so what is rendered is what was checked.
pub fn safe_href(url: &str, allow_http: bool) -> Option<String> {
    let u = reqwest::Url::parse(url.trim()).ok()?;
    let ok = match u.scheme() {
        "https" => true,
        "http" => allow_http,
        _ => false,
    };
    (ok && u.host_str().is_some_and(|h| !h.is_empty())).then(|| u.to_string())
}

/// Percent-encodes a path segment.
pub fn url_seg(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(char::from(b));
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

fn field_text(t: &Task, v: FieldValue) -> String {
    let _ = t;
    value_text(&v)
}

async fn workspace(State(s): State<AppState>, Path(ws): Path<String>) -> Response {
    let ws = match WorkspaceId::new(ws) {
        Ok(w) => w,
        Err(e) => return ui_error(e.into()),
    };
    let tasks = match s.store.all_tasks(&ws).await {
        Ok(t) => t,
        Err(e) => return ui_error(e.into()),
    };
    let mut b = String::from(
        "<table id=\"tasks\"><thead><tr><th>Title</th><th>Status</th><th>Assignee</th>\
<th>Priority</th><th>Due</th><th>In provider</th><th>Last changed</th></tr></thead><tbody>",
    );
    for t in &tasks {
        let f = &t.fields;
        let link = t
            .external
            .iter()
            .map(|e| {
                let text = format!("{} {}", e.provider.as_str(), e.key.external_id);
                match e
                    .url
                    .as_deref()
                    .and_then(|u| safe_href(u, s.allow_any_provider_url))
                {
                    Some(u) => format!("<a href=\"{}\">{}</a>", esc(&u), esc(&text)),
                    None => esc(&text),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            b,
            "<tr class=\"task\"><td><a class=\"task-link\" href=\"/ui/tasks/{id}\">{title}</a>{del}</td><td>{st}</td><td>{asg}</td>\
<td>{pr}</td><td>{due}</td><td>{link}</td><td>{upd}</td></tr>",
            id = t.id,
            title = esc(if f.title.is_empty() {
                "(untitled)"
            } else {
                &f.title
            }),
            del = if t.deleted {
                " <span class=\"bad\">deleted</span>"
            } else {
                ""
            },
            st = esc(&field_text(t, FieldValue::Status(f.status.clone()))),
            asg = esc(&field_text(t, FieldValue::Assignee(f.assignee.clone()))),
            pr = esc(&field_text(t, FieldValue::Priority(f.priority.clone()))),
            due = esc(&f.due_date.map(date).unwrap_or_default()),
            upd = esc(&ts(t.updated_at)),
        );
    }
    b.push_str("</tbody></table>");
    if tasks.is_empty() {
        b.push_str("<p class=\"muted\">No tasks yet: they appear when webhooks arrive.</p>");
    }
    match crate::ui_integrations::list(&s, &ws).await {
        Ok(list) => b.push_str(&list),
        Err(e) => return ui_error(e),
    }
    page(&format!("Tasks of {}", ws.as_str()), &b).into_response()
}

fn actor_text(e: &LedgerEntry) -> String {
    let a = &e.record.actor;
    let kind = serde_json::to_value(a.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut s = format!(
        "{} ({kind}{})",
        a.display_name.clone().unwrap_or_else(|| a.id.clone()),
        if a.provider == "internal" {
            String::new()
        } else {
            format!(", {}", a.provider)
        }
    );
    if !a.on_behalf_of.is_empty() {
        let chain: Vec<&str> = a.on_behalf_of.iter().map(|p| p.id.as_str()).collect();
        let _ = write!(s, " for {}", chain.join(" → "));
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

async fn task_page(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let t = match find(&s, &id).await {
        Ok(t) => t,
        Err(e) => return ui_error(e),
    };
    let entries = match s.store.task_ledger(&t.workspace_id, t.id).await {
        Ok(e) => e,
        Err(e) => return ui_error(e.into()),
    };
    let checks = verification(&s, &t.workspace_id, &entries).await;
    let f = &t.fields;
    let mut b = String::new();
    let _ = write!(
        b,
        "<p><a href=\"/ui/workspaces/{}\">← tasks of {}</a></p><dl id=\"fields\">",
        esc(&url_seg(t.workspace_id.as_str())),
        esc(t.workspace_id.as_str())
    );
    for (k, v) in [
        ("Title", f.title.clone()),
        ("Description", f.description.clone()),
        ("Status", value_text(&FieldValue::Status(f.status.clone()))),
        (
            "Assignee",
            value_text(&FieldValue::Assignee(f.assignee.clone())),
        ),
        (
            "Priority",
            value_text(&FieldValue::Priority(f.priority.clone())),
        ),
        ("Due date", value_text(&FieldValue::DueDate(f.due_date))),
        ("Last changed", ts(t.updated_at)),
    ] {
        let _ = write!(b, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    for e in &t.external {
        let _ = write!(
            b,
            "<dt>In {}</dt><dd>{}</dd>",
            esc(e.provider.as_str()),
            match e.url.as_deref() {
                Some(u) => match safe_href(u, s.allow_any_provider_url) {
                    Some(href) => format!("<a href=\"{}\">{}</a>", esc(&href), esc(u)),
                    // Not a link the UI may render (`javascript:`, `data:`…): shown as text.
                    None => format!("<span class=\"muted\">{}</span>", esc(u)),
                },
                None => esc(&e.key.external_id),
            }
        );
    }
    b.push_str("</dl>");
    let status_opts: String = ["To Do", "In Progress", "Done"]
        .iter()
        .map(|n| {
            let sel = if f.status.name.eq_ignore_ascii_case(n) {
                " selected"
            } else {
                ""
            };
            format!("<option{sel}>{n}</option>")
        })
        .collect();
    let _ = write!(
        b,
        "<h2>Edit</h2><form method=\"post\" action=\"/ui/tasks/{id}\" id=\"edit\">\
<label>Title <input name=\"title\" value=\"{title}\" size=\"60\"></label>\
<label>Status <select name=\"status\">{status_opts}</select></label>\
<label>Due date <input name=\"due_date\" value=\"{due}\" placeholder=\"YYYY-MM-DD\"></label>\
<button type=\"submit\">Save as admin</button></form>",
        id = t.id,
        title = esc(&f.title),
        due = esc(&f.due_date.map(date).unwrap_or_default()),
    );
    b.push_str("<h2>VERA timeline</h2>");
    if let Err(e) = &checks {
        let _ = write!(
            b,
            "<p class=\"bad\">The log does not verify: {}</p>",
            esc(e)
        );
    }
    b.push_str(
        "<table id=\"ledger\"><thead><tr><th>#</th><th>When</th><th>Who</th><th>What</th>\
<th>Outcome</th><th>Cause</th><th>Verifies</th></tr></thead><tbody>",
    );
    for (i, e) in entries.iter().enumerate() {
        let r = &e.record;
        let what = match (r.field, &r.before, &r.after) {
            (Some(fd), before, after) => format!(
                "{fd}: {} → {}",
                before
                    .as_ref()
                    .map(value_text)
                    .unwrap_or_else(|| "∅".to_owned()),
                after
                    .as_ref()
                    .map(value_text)
                    .unwrap_or_else(|| "∅".to_owned()),
            ),
            (None, _, _) => serde_json::to_value(r.op)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        };
        let cause_kind = serde_json::to_value(r.cause.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let outcome = serde_json::to_value(r.outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let verifies = match checks.as_ref().map(|c| c.get(i)) {
            Ok(Some(Ok(()))) => "<span class=\"ok verified\">✓ verified</span>".to_owned(),
            Ok(Some(Err(why))) => format!("<span class=\"bad\">✗ {}</span>", esc(why)),
            _ => "<span class=\"bad\">✗</span>".to_owned(),
        };
        let _ = write!(
            b,
            "<tr class=\"entry\"><td>{idx}</td><td>{when}</td><td>{who}</td><td>{what}</td><td>{outcome}</td>\
<td>{ck} {cid}{dlv}</td><td>{verifies}</td></tr>",
            idx = e.idx,
            when = esc(&ts(r.occurred_at.unwrap_or(r.observed_at))),
            who = esc(&actor_text(e)),
            what = esc(&what),
            outcome = esc(&outcome),
            ck = esc(&cause_kind),
            cid = esc(&r.cause.id),
            dlv = r
                .cause
                .delivery_id
                .as_ref()
                .map(|d| format!(" (delivery {})", esc(d)))
                .unwrap_or_default(),
        );
    }
    b.push_str("</tbody></table>");
    let title = if f.title.is_empty() {
        "(untitled)"
    } else {
        &f.title
    };
    page(title, &b).into_response()
}

/// The task edit form.
#[derive(Debug, Deserialize)]
pub struct EditForm {
    title: Option<String>,
    status: Option<String>,
    due_date: Option<String>,
}

async fn task_edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let t = match find(&s, &id).await {
        Ok(t) => t,
        Err(e) => return ui_error(e),
    };
    let mut patch = ordonis_core::FieldPatch::new();
    if let Some(title) = form
        .title
        .filter(|x| !x.trim().is_empty() && *x != t.fields.title)
    {
        patch.set(FieldValue::Title(title));
    }
    let current_status = value_text(&FieldValue::Status(t.fields.status.clone()));
    if let Some(st) = form
        .status
        .filter(|x| !x.trim().is_empty() && !x.eq_ignore_ascii_case(&current_status))
    {
        let cat = match st.to_ascii_lowercase().as_str() {
            "done" => ordonis_core::StatusCategory::Done,
            "in progress" => ordonis_core::StatusCategory::InProgress,
            _ => ordonis_core::StatusCategory::Todo,
        };
        patch.set(FieldValue::Status(ordonis_core::Status::new(cat, st)));
    }
    if let Some(d) = form.due_date {
        let new = if d.trim().is_empty() {
            None
        } else {
            match parse_date(&d) {
                Some(d) => Some(d),
                None => return ui_error(ApiError::bad_request("due date must be YYYY-MM-DD")),
            }
        };
        if new != t.fields.due_date {
            patch.set(FieldValue::DueDate(new));
        }
    }
    if !patch.is_empty() {
        let actor = Actor::human("ui-admin").named("Admin (UI)");
        if let Err(e) = apply(&s, &t, &actor, &patch).await {
            return ui_error(e);
        }
    }
    Redirect::to(&format!("/ui/tasks/{}", t.id)).into_response()
}

async fn events_page(State(s): State<AppState>, Query(q): Query<EventsQuery>) -> Response {
    let events = match query(&s, &q).await {
        Ok(e) => e,
        Err(e) => return ui_error(e),
    };
    let mut b = String::from(
        "<table id=\"events\"><thead><tr><th>Received</th><th>Workspace</th><th>Object</th><th>State</th>\
<th>Attempts</th><th>Error / note</th><th></th></tr></thead><tbody>",
    );
    for e in &events {
        let replay = if matches!(
            e.state,
            ordonis_core::JobState::Failed | ordonis_core::JobState::Dead
        ) {
            format!(
                "<form class=\"inline\" method=\"post\" action=\"/ui/events/{}/replay\"><button>Replay</button></form>",
                e.id
            )
        } else {
            String::new()
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{replay}</td></tr>",
            esc(&ts(e.received_at)),
            esc(e.workspace_id.as_str()),
            esc(e.object_key.as_deref().unwrap_or("")),
            esc(e.state.as_str()),
            e.attempts,
            esc(e.last_error.as_deref().unwrap_or("")),
        );
    }
    b.push_str("</tbody></table>");
    page("Inbox", &b).into_response()
}

async fn events_replay(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match replay_event(&s, &id).await {
        Ok(_) => Redirect::to("/ui/events").into_response(),
        Err(e) => ui_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_href;

    #[test]
    fn only_http_s_links_are_rendered() {
        assert_eq!(
            safe_href("https://app.asana.com/0/0/1", false).as_deref(),
            Some("https://app.asana.com/0/0/1")
        );
        assert!(safe_href("http://127.0.0.1:9/browse/K-1", true).is_some());
        assert!(safe_href("http://127.0.0.1:9/browse/K-1", false).is_none());
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:x",
            "//evil.example/x",
            "/ui/logout",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(safe_href(bad, true).is_none(), "{bad:?}");
        }
    }
}
