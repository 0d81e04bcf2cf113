//! The operator's console, server-rendered with maud (compile-time checked templates that
//! escape by default): sign-in with the admin token (an HttpOnly, SameSite=Strict session
//! cookie), a workspace's task list (search, filters, sort, paging), a task's page (per-field
//! sync state, the edit form, the VERA timeline with each entry checked against the current
//! signed checkpoint), the fields in conflict with their resolution, the inbox and outbox with
//! replay, and the integration pages. Every page works without script; `/ui/assets/ui.js`
//! only improves it.

mod conflicts;
mod integrations;
mod layout;
mod people;
mod queues;
mod session_page;
mod sync_view;
mod task_edit;
mod task_list;
mod task_page;

use std::fmt::Write as _;

use axum::Form;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use crate::errors::ApiError;
use crate::state::AppState;
use crate::throttle::{ClientKey, retry_after_secs};

pub(crate) use layout::{page, when};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "ordonis_session";

/// The UI routes.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/ui", get(home))
        .route("/ui/workspaces/{ws}", get(task_list::list))
        .route("/ui/workspaces/{ws}/conflicts", get(conflicts::page))
        .route(
            "/ui/workspaces/{ws}/people",
            get(people::page).post(people::map),
        )
        .route(
            "/ui/tasks/{id}",
            get(task_page::task_page).post(task_edit::task_edit),
        )
        .route("/ui/tasks/{id}/comments", post(task_edit::task_comment))
        .route("/ui/sessions/{id}", get(session_page::session_page))
        .route(
            "/ui/tasks/{id}/conflicts/{field}/{choice}",
            post(conflicts::resolve),
        )
        .route("/ui/events", get(queues::events_page))
        .route("/ui/events/{id}/replay", post(queues::events_replay))
        .route("/ui/pushes", get(queues::pushes_page))
        .route("/ui/pushes/{id}/replay", post(queues::pushes_replay))
        .route("/ui/logout", post(logout))
        .merge(crate::ui::integrations::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/assets/ui.js", get(layout::script))
        .merge(protected)
        .with_state(state)
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
    if let Some(v) = cookie_value(&req) {
        match s.session_ok(&v).await {
            Ok(true) => return next.run(req).await,
            Ok(false) => {}
            // The sessions are in the store: without it no sign-in can be checked.
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    if req.method() == Method::GET {
        Redirect::to("/ui/login").into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "sign in first").into_response()
    }
}

/// The sign-in page, with an error when the last attempt failed.
fn login_html(error: Option<&str>) -> Html<String> {
    let body = html! {
        div.card.login {
            p.muted { "Sign in with the admin token: the one printed at start-up, or "
                code { "ORDONIS_ADMIN_TOKEN" } "." }
            @if let Some(e) = error {
                div.notice.bad #error role="alert" { (e) }
            }
            form method="post" action="/ui/login" {
                label { "Admin token "
                    input type="password" name="token" id="token" autocomplete="current-password" required autofocus;
                }
                button.primary type="submit" id="signin" { "Sign in" }
            }
        }
    };
    Html(layout::shell("Sign in to Ordonis", false, &[], body).into_string())
}

async fn login_form() -> Html<String> {
    login_html(None)
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
        login_html(Some(&format!(
            "Too many failed sign-ins from your address: try again in {secs} s."
        ))),
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
            login_html(Some("That token is not right.")),
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
    let id = match s.new_session().await {
        Ok(id) => id,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let cookie = format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
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
    if let Some(v) = cookie_value(&req)
        && let Err(e) = s.end_session(&v).await
    {
        // Not revoked: say so rather than pretend the cookie is dead.
        return ApiError::from(e).into_response();
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

/// An error as the error page (with a link back, no kept input).
pub(crate) fn ui_error(e: ApiError) -> Response {
    layout::error_page(&e, &layout::Kept::default())
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
    let body = html! {
        ul #workspaces {
            @for ws in &wss {
                li { a href=(format!("/ui/workspaces/{}", url_seg(ws.as_str()))) { (ws.as_str()) } }
            }
        }
        @if wss.is_empty() {
            p.muted { "No workspaces yet: create an integration with " code { "POST /api/integrations" } "." }
        }
    };
    page("Workspaces", None, body).into_response()
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
