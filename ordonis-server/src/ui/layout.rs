//! The page shell every UI page shares: the header and navigation, the stylesheet (light and
//! dark from `prefers-color-scheme`, usable at 400 px), the small progressive script, and the
//! shared bits of markup (times, notices).

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::OffsetDateTime;

use crate::errors::ApiError;
use crate::routes::json::ts;

/// The stylesheet (inline: the CSP allows inline styles, not inline scripts).
const CSS: &str = include_str!("../../assets/ui.css");

/// The progressive script, served from `/ui/assets/ui.js` (same origin, so the CSP's
/// `default-src 'self'` allows it): local times and a confirmation on destructive buttons.
/// Every page works without it.
pub(crate) const SCRIPT: &str = include_str!("../../assets/ui.js");

/// `GET /ui/assets/ui.js`.
pub(crate) async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// A navigation entry: label and link.
pub(crate) type NavLink = (&'static str, String);

/// The navigation of the signed-in pages (the workspace's pages when one is known).
pub(crate) fn nav(ws: Option<&str>) -> Vec<NavLink> {
    let mut links = vec![("Workspaces", "/ui".to_owned())];
    if let Some(ws) = ws {
        let seg = crate::ui::url_seg(ws);
        links.push(("Tasks", format!("/ui/workspaces/{seg}")));
        links.push(("Conflicts", format!("/ui/workspaces/{seg}/conflicts")));
        links.push(("People", format!("/ui/workspaces/{seg}/people")));
        links.push(("Outbox", format!("/ui/pushes?workspace_id={seg}")));
        links.push(("Inbox", format!("/ui/events?workspace_id={seg}")));
    } else {
        links.push(("Outbox", "/ui/pushes".to_owned()));
        links.push(("Inbox", "/ui/events".to_owned()));
    }
    links
}

/// A whole signed-in page.
pub(crate) fn page(title: &str, ws: Option<&str>, body: Markup) -> Html<String> {
    Html(shell(title, true, &nav(ws), body).into_string())
}

/// The document around a page's body; `signed_in` adds the navigation and sign-out.
pub(crate) fn shell(title: &str, signed_in: bool, nav: &[NavLink], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · Ordonis" }
                style { (PreEscaped(CSS)) }
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header.top {
                    strong.brand { "Ordonis" }
                    @if signed_in {
                        nav {
                            @for (label, href) in nav {
                                a href=(href) { (label) }
                            }
                        }
                        form.inline method="post" action="/ui/logout" {
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A time as `<time>`: UTC text ("2 Dec 2026, 05:43 UTC") that the script turns into the
/// browser's local time; the exact RFC 3339 value in `datetime` and the tooltip.
pub(crate) fn when(t: OffsetDateTime) -> Markup {
    let exact = ts(t);
    html! { time datetime=(exact) title=(exact) { (readable(t)) } }
}

/// "2 Dec 2026, 05:43 UTC".
pub(crate) fn readable(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let month = match t.month() {
        time::Month::January => "Jan",
        time::Month::February => "Feb",
        time::Month::March => "Mar",
        time::Month::April => "Apr",
        time::Month::May => "May",
        time::Month::June => "Jun",
        time::Month::July => "Jul",
        time::Month::August => "Aug",
        time::Month::September => "Sep",
        time::Month::October => "Oct",
        time::Month::November => "Nov",
        time::Month::December => "Dec",
    };
    format!(
        "{} {month} {}, {:02}:{:02} UTC",
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// What the user typed, kept so the error page can offer it back.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// Where to go back to (a `/ui` path).
    pub back: Option<String>,
    /// The submitted fields, name and value.
    pub fields: Vec<(String, String)>,
}

/// The error page: the message, what the user submitted (so nothing typed is lost) and a
/// link back.
pub(crate) fn error_page(e: &ApiError, kept: &Kept) -> Response {
    let back = kept
        .back
        .as_deref()
        .filter(|b| b.starts_with("/ui"))
        .unwrap_or("/ui");
    let body = html! {
        div.notice.bad #error role="alert" {
            p { (e.message) }
        }
        @if !kept.fields.is_empty() {
            h2 { "What you entered" }
            p.muted { "Nothing was saved. Copy what you need, then go back." }
            dl #kept {
                @for (name, value) in &kept.fields {
                    dt { (name) }
                    dd { code { (value) } }
                }
            }
        }
        p { a.button href=(back) { "← Back" } }
    };
    let status = if e.status.is_client_error() || e.status.is_server_error() {
        e.status
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, page("Something went wrong", None, body)).into_response()
}
