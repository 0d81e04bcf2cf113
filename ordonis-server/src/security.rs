//! Response headers every answer carries, and the `Origin` check on UI form posts.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, HOST, ORIGIN, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::errors::ApiError;
use crate::state::AppState;

/// The UI runs no script at all; its styles are one `<style>` block and `style` attributes,
/// hence `'unsafe-inline'` for styles only. No framing, no `<base>`, forms post here only.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on
/// same-origin form posts too, which the `Origin` check would refuse.
pub const REFERRER_POLICY_VALUE: &str = "same-origin";

/// Adds `Content-Security-Policy`, `X-Content-Type-Options: nosniff` and `Referrer-Policy`
/// to every response that does not set them itself.
pub fn with_headers(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            REFERRER_POLICY,
            HeaderValue::from_static(REFERRER_POLICY_VALUE),
        ))
}

/// Middleware for the UI: a request other than `GET`/`HEAD` whose `Origin` header is present
/// and is not this server's origin is refused with 403 (defence in depth beside the
/// SameSite=Strict cookie, and it covers the sign-in form, which has no session yet).
pub async fn same_origin_posts(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !origin_allowed(req.headers(), &s.public_url) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "cross-origin form posts are refused",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a request's `Origin` (if any) is this server's: the origin of `public_url`, or
/// `http`/`https` with the request's own `Host` (behind a TLS-terminating proxy that keeps
/// `Host`). No `Origin` header (older browsers, non-browser clients) is allowed; anything
/// unparsable, including `null`, is not.
pub fn origin_allowed(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Some(origin) = origin
        .to_str()
        .ok()
        .and_then(|o| reqwest::Url::parse(o).ok())
        .map(|u| u.origin())
        .filter(|o| o.is_tuple())
    else {
        return false;
    };
    let same = |url: &str| reqwest::Url::parse(url).is_ok_and(|u| u.origin() == origin);
    if same(public_url) {
        return true;
    }
    headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', '@', '?', '#']))
        .is_some_and(|host| {
            ["http", "https"]
                .iter()
                .any(|s| same(&format!("{s}://{host}")))
        })
}
