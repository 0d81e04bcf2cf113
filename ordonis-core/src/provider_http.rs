//! What every HTTP provider adapter does the same way: HMAC-SHA256 webhook signatures (Jira's
//! `X-Hub-Signature`, Asana's `X-Hook-Signature`), what an error answer of a REST API means
//! ([`Failure`], with `Retry-After` and redirects), and the HTTP client itself ([`client`],
//! with the `http-client` feature).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The most characters of one request-derived value (a header, an id, a path, an error text
/// quoting them) that [`bounded`] keeps for a log line or an error answer.
pub const LOGGED_VALUE_MAX_CHARS: usize = 160;

/// A value taken from a request, bounded for a log line or an error answer: at most
/// [`LOGGED_VALUE_MAX_CHARS`] characters, and when it was longer, an ellipsis and its full
/// length in bytes, so that a client sending a huge header cannot write a huge log line.
///
/// ```
/// use ordonis_core::provider_http::{bounded, LOGGED_VALUE_MAX_CHARS};
/// assert_eq!(bounded("sha256=abc"), "sha256=abc");
/// let huge = "x".repeat(350_000);
/// let b = bounded(&huge);
/// assert!(b.starts_with(&"x".repeat(LOGGED_VALUE_MAX_CHARS)));
/// assert!(b.ends_with("… (350000 bytes)"));
/// assert!(b.len() < 200);
/// ```
pub fn bounded(value: &str) -> String {
    bounded_to(value, LOGGED_VALUE_MAX_CHARS)
}

/// The most characters of an error text (which may quote bounded values) kept for a log
/// line or an error answer by [`bounded_error`].
pub const LOGGED_ERROR_MAX_CHARS: usize = 640;

/// An error text that may quote a request, bounded as [`bounded`] does, to
/// [`LOGGED_ERROR_MAX_CHARS`] characters (room for a message quoting bounded values).
pub fn bounded_error(text: &str) -> String {
    bounded_to(text, LOGGED_ERROR_MAX_CHARS)
}

/// `value` cut to at most `max` characters (at a character boundary), with an ellipsis and
/// its full length in bytes when it was longer.
///
/// ```
/// use ordonis_core::provider_http::bounded_to;
/// assert_eq!(bounded_to("héllo wörld", 4), "héll… (13 bytes)");
/// assert_eq!(bounded_to("four", 4), "four");
/// ```
pub fn bounded_to(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], value.len()),
    }
}

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
///
/// ```
/// let sig = ordonis_core::provider_http::hmac_sha256_hex("It's a Secret to Everybody", b"Hello World!");
/// assert_eq!(sig, "a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9");
/// ```
pub fn hmac_sha256_hex(secret: &str, body: &[u8]) -> String {
    match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => String::new(),
    }
}

/// True when `signature` (raw bytes) is the HMAC-SHA256 of `body` under one of `secrets`;
/// each comparison is constant-time.
///
/// ```
/// use ordonis_core::provider_http::{hmac_sha256_hex, hmac_sha256_matches};
/// let sig = hex::decode(hmac_sha256_hex("new", b"body")).unwrap();
/// assert!(hmac_sha256_matches(&sig, &["old".into(), "new".into()], b"body"));
/// assert!(!hmac_sha256_matches(&sig, &["old".into()], b"body"));
/// ```
pub fn hmac_sha256_matches(signature: &[u8], secrets: &[String], body: &[u8]) -> bool {
    secrets.iter().any(|secret| {
        HmacSha256::new_from_slice(secret.as_bytes()).is_ok_and(|mut mac| {
            mac.update(body);
            mac.verify_slice(signature).is_ok()
        })
    })
}

/// How long `Retry-After` says to wait: delta-seconds (capped at a day) or an HTTP date;
/// `default` when the header is absent or unreadable.
///
/// ```
/// use std::time::Duration;
/// let mut h = http::HeaderMap::new();
/// let d = Duration::from_secs(60);
/// assert_eq!(ordonis_core::provider_http::retry_after(&h, d), d);
/// h.insert("retry-after", http::HeaderValue::from_static("7"));
/// assert_eq!(ordonis_core::provider_http::retry_after(&h, d), Duration::from_secs(7));
/// ```
pub fn retry_after(headers: &http::HeaderMap, default: Duration) -> Duration {
    let Some(v) = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    else {
        return default;
    };
    if let Ok(secs) = v.parse::<u64>() {
        return Duration::from_secs(secs.min(24 * 3600));
    }
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822) {
        return Duration::try_from(t - time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
    }
    default
}

/// Where a redirect (3xx) pointed: its `Location`, capped at 300 characters, for an error
/// message (the clients never follow redirects).
pub fn redirect_target(headers: &http::HeaderMap) -> String {
    match headers.get(http::header::LOCATION) {
        Some(v) => String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(300)
            .collect(),
        None => "no Location header".to_owned(),
    }
}

/// What an HTTP error answer of a provider's REST API means, the same for every provider;
/// each adapter turns it into its own error with the provider's message, after reading what
/// only it gives a meaning (Asana's 412 for an expired sync token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 3xx: never followed (the request, its credentials and body would go elsewhere).
    Redirected {
        /// Where it pointed ([`redirect_target`]).
        location: String,
    },
    /// 429: wait this long (`Retry-After`, or the adapter's default).
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// 503 with `Retry-After`: the service is down, saying for how long; every call waits.
    Unavailable {
        /// How long to wait.
        retry_after: Duration,
    },
    /// 401: the credentials were not accepted.
    Unauthenticated,
    /// 403: the account may not do this.
    Forbidden,
    /// 404: no such object, or the account cannot see it.
    NotFound,
    /// 409: a conflicting change (some APIs mean "try again", others "refused").
    Conflict,
    /// 413: the object is over a data limit; no retry will succeed.
    TooLarge,
    /// 5xx, 408 or 425: temporary.
    Temporary,
    /// Any other 4xx: the request was refused.
    Rejected,
}

impl Failure {
    /// What `status` (an error: not 1xx or 2xx) means, reading `Retry-After` and `Location`
    /// from `headers`; `default_retry_after` when a 429 does not say.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ordonis_core::provider_http::Failure;
    /// let mut h = http::HeaderMap::new();
    /// let minute = Duration::from_secs(60);
    /// assert_eq!(
    ///     Failure::of(http::StatusCode::TOO_MANY_REQUESTS, &h, minute),
    ///     Failure::RateLimited { retry_after: minute }
    /// );
    /// assert_eq!(Failure::of(http::StatusCode::SERVICE_UNAVAILABLE, &h, minute), Failure::Temporary);
    /// h.insert("retry-after", http::HeaderValue::from_static("5"));
    /// assert_eq!(
    ///     Failure::of(http::StatusCode::SERVICE_UNAVAILABLE, &h, minute),
    ///     Failure::Unavailable { retry_after: Duration::from_secs(5) }
    /// );
    /// ```
    pub fn of(
        status: http::StatusCode,
        headers: &http::HeaderMap,
        default_retry_after: Duration,
    ) -> Self {
        use http::StatusCode as S;
        match status {
            s if s.is_redirection() => Failure::Redirected {
                location: redirect_target(headers),
            },
            S::TOO_MANY_REQUESTS => Failure::RateLimited {
                retry_after: retry_after(headers, default_retry_after),
            },
            S::SERVICE_UNAVAILABLE if headers.contains_key(http::header::RETRY_AFTER) => {
                Failure::Unavailable {
                    retry_after: retry_after(headers, default_retry_after),
                }
            }
            S::UNAUTHORIZED => Failure::Unauthenticated,
            S::FORBIDDEN => Failure::Forbidden,
            S::NOT_FOUND => Failure::NotFound,
            S::CONFLICT => Failure::Conflict,
            S::PAYLOAD_TOO_LARGE => Failure::TooLarge,
            S::REQUEST_TIMEOUT | S::TOO_EARLY => Failure::Temporary,
            s if s.is_server_error() => Failure::Temporary,
            _ => Failure::Rejected,
        }
    }
}

/// An error body as one line for a message: `parts` (the API's error fields the adapter
/// found in it) joined and capped at 500 characters, else the raw text, trimmed and capped
/// at 300 ("no details" when empty).
pub fn error_text(parts: Vec<String>, body: &[u8]) -> String {
    if !parts.is_empty() {
        return parts.join("; ").chars().take(500).collect();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no details".to_owned()
    } else {
        text.chars().take(300).collect()
    }
}

/// The HTTP client every adapter uses: rustls, a 30 s request and 10 s connect timeout, and
/// no redirects (a 3xx is [`Failure::Redirected`], never re-sent elsewhere with the
/// credentials and body). `user_agent` names the adapter (`ordonis-jira/0.1.0`).
#[cfg(feature = "http-client")]
pub fn client(user_agent: &str) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(user_agent)
        .build()
}

/// The default cap on one provider answer's body (8 MiB): a page of a listing or one
/// object is far smaller; a hostile or broken provider cannot make a read hold more.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// The cap on an error answer's body, which only feeds an error message.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// Why [`read_capped`] failed.
#[cfg(feature = "http-client")]
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The body is longer than the cap: reading stopped there (what was read is dropped).
    #[error("the answer is larger than the {limit}-byte limit on provider answers")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The connection failed while reading.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads an answer's body, at most `limit` bytes: a `Content-Length` over it is refused
/// before reading, and a body without one is read chunk by chunk and refused as soon as it
/// passes the limit, so memory stays bounded whatever the provider sends.
#[cfg(feature = "http-client")]
pub async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, ReadError> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ReadError::TooLarge { limit });
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len().saturating_add(chunk.len()) > limit {
            return Err(ReadError::TooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_names_its_location_capped() {
        let mut h = http::HeaderMap::new();
        assert_eq!(redirect_target(&h), "no Location header");
        h.insert(
            http::header::LOCATION,
            http::HeaderValue::from_static("https://elsewhere.example/x"),
        );
        assert_eq!(redirect_target(&h), "https://elsewhere.example/x");
        let long = format!("https://e.example/{}", "a".repeat(400));
        h.insert(
            http::header::LOCATION,
            http::HeaderValue::from_str(&long).unwrap(),
        );
        assert_eq!(redirect_target(&h).chars().count(), 300);
    }

    #[test]
    fn failures_by_status() {
        use http::StatusCode as S;
        let d = Duration::from_secs(60);
        let none = http::HeaderMap::new();
        let of = |s: u16| Failure::of(S::from_u16(s).unwrap(), &none, d);
        assert_eq!(
            of(307),
            Failure::Redirected {
                location: "no Location header".into()
            }
        );
        assert_eq!(of(401), Failure::Unauthenticated);
        assert_eq!(of(403), Failure::Forbidden);
        assert_eq!(of(404), Failure::NotFound);
        assert_eq!(of(409), Failure::Conflict);
        assert_eq!(of(413), Failure::TooLarge);
        for s in [408, 425, 500, 502, 503, 504] {
            assert_eq!(of(s), Failure::Temporary, "{s}");
        }
        for s in [400, 405, 412, 422] {
            assert_eq!(of(s), Failure::Rejected, "{s}");
        }
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", http::HeaderValue::from_static("3"));
        let three = Duration::from_secs(3);
        assert_eq!(
            Failure::of(S::TOO_MANY_REQUESTS, &h, d),
            Failure::RateLimited { retry_after: three }
        );
        assert_eq!(
            Failure::of(S::SERVICE_UNAVAILABLE, &h, d),
            Failure::Unavailable { retry_after: three }
        );
        assert_eq!(Failure::of(S::BAD_GATEWAY, &h, d), Failure::Temporary);
    }

    #[test]
    fn error_text_prefers_the_parts_then_caps_the_body() {
        assert_eq!(error_text(vec!["a".into(), "b".into()], b"raw"), "a; b");
        assert_eq!(error_text(Vec::new(), b"  "), "no details");
        assert_eq!(error_text(Vec::new(), b" oops "), "oops");
        assert_eq!(
            error_text(Vec::new(), "é".repeat(400).as_bytes())
                .chars()
                .count(),
            300
        );
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_falls_back() {
        let d = Duration::from_secs(60);
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", http::HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, d), d);
        h.insert("retry-after", http::HeaderValue::from_static("999999999"));
        assert_eq!(retry_after(&h, d), Duration::from_secs(24 * 3600));
        h.insert(
            "retry-after",
            http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, d), Duration::ZERO, "a date in the past");
    }

    #[test]
    fn any_secret_of_the_overlap_matches_and_nothing_else() {
        let sig = hex::decode(hmac_sha256_hex("b", b"x")).unwrap_or_default();
        assert!(hmac_sha256_matches(&sig, &["a".into(), "b".into()], b"x"));
        assert!(!hmac_sha256_matches(&sig, &["a".into(), "b".into()], b"y"));
        assert!(!hmac_sha256_matches(&sig, &[], b"x"));
        assert!(!hmac_sha256_matches(&sig[..31], &["b".into()], b"x"));
    }
}
