//! The JWT a Connect app receives with each webhook delivery (developer.atlassian.com,
//! *Understanding JWT for Connect apps*, *Query string hash*): HS256 under the app's shared
//! secret, with `iss`, `iat`, `exp` and `qsh`.
//!
//! Written here on its own, not borrowed from `ordonis-jira` (which verifies these tokens),
//! so that a mistake in one is not repeated in the other: the fake computes the canonical
//! request from the spec's rules.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

/// How long a delivery's token is valid (Connect's tokens live three minutes).
const LIFETIME_S: i64 = 180;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The canonical request of a URL's path and query: `METHOD&path&query`, the path without a
/// trailing slash (`/` when empty, `&` in it encoded), the query's parameters sorted and
/// encoded, `jwt` left out, several values of one name joined by `,`.
pub(super) fn canonical_request(method: &str, url: &reqwest::Url) -> String {
    let mut path = url.path().trim_end_matches('/').replace('&', "%26");
    if path.is_empty() {
        path.push('/');
    }
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in url.query_pairs() {
        if k == "jwt" {
            continue;
        }
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, ENCODE).to_string();
        params.entry(enc(&k)).or_default().push(enc(&v));
    }
    let query: Vec<String> = params
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            format!("{k}={}", v.join(","))
        })
        .collect();
    format!("{}&{path}&{}", method.to_ascii_uppercase(), query.join("&"))
}

/// `JWT <token>` for a `POST` to `url`, issued by `issuer` at `now_s` under `secret`.
pub(super) fn authorization(url: &str, issuer: &str, secret: &str, now_s: i64) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let qsh = hex::encode(Sha256::digest(canonical_request("POST", &url).as_bytes()));
    let claims = json!({"iss": issuer, "iat": now_s, "exp": now_s + LIFETIME_S, "qsh": qsh});
    let signing = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(signing.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Some(format!("JWT {signing}.{sig}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_request_follows_the_spec_examples() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert_eq!(
            canonical_request("get", &u("https://app.example/?param=foo")),
            "GET&/&param=foo"
        );
        assert_eq!(
            canonical_request("POST", &u("https://app.example/user/")),
            "POST&/user&"
        );
        assert_eq!(
            canonical_request("POST", &u("https://a.example/h?b=2&a=x%20y&jwt=t&a=1")),
            "POST&/h&a=1,x%20y&b=2"
        );
    }
}
