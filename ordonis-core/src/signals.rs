//! What every HTTP provider adapter reads the same way: HMAC-SHA256 webhook signatures (Jira's
//! `X-Hub-Signature`, Asana's `X-Hook-Signature`) and the `Retry-After` header.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lowercase hex HMAC-SHA256 of `body` under `secret`.
///
/// ```
/// let sig = ordonis_core::signals::hmac_sha256_hex("It's a Secret to Everybody", b"Hello World!");
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
/// use ordonis_core::signals::{hmac_sha256_hex, hmac_sha256_matches};
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
/// assert_eq!(ordonis_core::signals::retry_after(&h, d), d);
/// h.insert("retry-after", http::HeaderValue::from_static("7"));
/// assert_eq!(ordonis_core::signals::retry_after(&h, d), Duration::from_secs(7));
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
