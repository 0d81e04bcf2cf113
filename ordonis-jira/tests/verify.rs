//! Webhook verification: HMAC (published vector, tampering, rotation) and JWT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{SECRET, ctx};
use http::{HeaderMap, HeaderValue, Method};
use ordonis_core::WebhookRequest;
use ordonis_core::{Provider, ProviderContext, ProviderError, WebhookAuth};
use ordonis_jira::JiraProvider;
use ordonis_jira::webhook::{sign, sign_jwt};
use serde_json::json;

const VECTOR: &str = "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9";

fn verify(
    c: &ProviderContext,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<WebhookAuth, ProviderError> {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &h,
        body,
    };
    JiraProvider::new().unwrap().verify_webhook(c, &req)
}

fn unauth_msg(r: Result<WebhookAuth, ProviderError>) -> String {
    match r {
        Err(ProviderError::Unauthenticated(m)) => m,
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

#[test]
fn atlassian_published_vector() {
    assert_eq!(sign(SECRET, b"Hello World!"), VECTOR);
    let c = ctx("https://x.atlassian.net");
    let ok = verify(&c, &[("X-Hub-Signature", VECTOR)], b"Hello World!").unwrap();
    assert_eq!(
        ok,
        WebhookAuth::Verified {
            method: "hmac-sha256"
        }
    );
}

#[test]
fn tampered_body_wrong_secret_missing_header() {
    let c = ctx("https://x.atlassian.net");
    let m = unauth_msg(verify(&c, &[("X-Hub-Signature", VECTOR)], b"Hello World?"));
    assert!(m.contains("does not match"), "{m}");

    let mut wrong = c.clone();
    wrong.secrets.webhook_secrets = vec!["another secret".into()];
    unauth_msg(verify(
        &wrong,
        &[("X-Hub-Signature", VECTOR)],
        b"Hello World!",
    ));

    let m = unauth_msg(verify(&c, &[], b"Hello World!"));
    assert!(m.contains("missing X-Hub-Signature"), "{m}");

    let m = unauth_msg(verify(
        &c,
        &[("X-Hub-Signature", "sha1=abcd")],
        b"Hello World!",
    ));
    assert!(m.contains("sha1"), "{m}");
    unauth_msg(verify(
        &c,
        &[("X-Hub-Signature", "sha256=zz")],
        b"Hello World!",
    ));
    unauth_msg(verify(
        &c,
        &[("X-Hub-Signature", "garbage")],
        b"Hello World!",
    ));

    let mut none = c.clone();
    none.secrets.webhook_secrets.clear();
    let m = unauth_msg(verify(
        &none,
        &[("X-Hub-Signature", VECTOR)],
        b"Hello World!",
    ));
    assert!(m.contains("no webhook secret"), "{m}");
}

#[test]
fn rotation_accepts_any_current_secret() {
    let mut c = ctx("https://x.atlassian.net");
    c.secrets.webhook_secrets = vec!["new secret".into(), SECRET.into()];
    verify(&c, &[("X-Hub-Signature", VECTOR)], b"Hello World!").unwrap();
    let new_sig = sign("new secret", b"body");
    verify(&c, &[("X-Hub-Signature", &new_sig)], b"body").unwrap();
    c.secrets.webhook_secrets = vec!["new secret".into()];
    unauth_msg(verify(&c, &[("X-Hub-Signature", VECTOR)], b"Hello World!"));
}

#[test]
fn jwt_checks_signature_expiry_issuer() {
    let mut c = ctx("https://x.atlassian.net");
    c.secrets.webhook_secrets.clear();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let good = sign_jwt(
        &json!({"iss": "app-1", "exp": now + 300}),
        "app-shared-secret",
    );
    let ok = verify(&c, &[("Authorization", &format!("JWT {good}"))], b"{}").unwrap();
    assert_eq!(ok, WebhookAuth::Verified { method: "jwt" });
    verify(&c, &[("Authorization", &format!("Bearer {good}"))], b"{}").unwrap();

    let wrong = sign_jwt(&json!({"iss": "app-1", "exp": now + 300}), "not the secret");
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {wrong}"))],
        b"{}",
    ));
    assert!(m.contains("signature"), "{m}");

    let expired = sign_jwt(
        &json!({"iss": "app-1", "exp": now - 3600}),
        "app-shared-secret",
    );
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {expired}"))],
        b"{}",
    ));
    assert!(m.contains("expired"), "{m}");

    let no_iss = sign_jwt(&json!({"exp": now + 300}), "app-shared-secret");
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {no_iss}"))],
        b"{}",
    ));
    assert!(m.contains("iss"), "{m}");

    c.options = json!({"jwt_issuer": "app-2"});
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {good}"))],
        b"{}",
    ));
    assert!(m.contains("issuer"), "{m}");

    let m = unauth_msg(verify(&c, &[("Authorization", "JWT a.b")], b"{}"));
    assert!(m.contains("three parts"), "{m}");
    let m = unauth_msg(verify(&c, &[("Authorization", "Basic abc")], b"{}"));
    assert!(m.contains("Authorization"), "{m}");

    c.secrets.app_secret = None;
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {good}"))],
        b"{}",
    ));
    assert!(m.contains("no app secret"), "{m}");
}

/// A Connect app's webhook JWT carries `qsh`, the hash of `POST&<path>&<query>`: it is checked
/// against the integration's `jwt_webhook_path`; a mismatch, a context token, or a qsh with no
/// path to check it against is refused.
#[test]
fn jwt_qsh_is_checked_when_present() {
    let mut c = ctx("https://x.atlassian.net");
    c.secrets.webhook_secrets.clear();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let path = "/integrations/jira/abc/webhook";
    let qsh = ordonis_jira::webhook::query_string_hash("POST", path);
    let token = |qsh: &str| {
        sign_jwt(
            &json!({"iss": "app-1", "exp": now + 300, "qsh": qsh}),
            "app-shared-secret",
        )
    };
    let good = token(&qsh);
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {good}"))],
        b"{}",
    ));
    assert!(m.contains("jwt_webhook_path"), "{m}");

    c.options = json!({"jwt_webhook_path": path});
    verify(&c, &[("Authorization", &format!("JWT {good}"))], b"{}").unwrap();
    let other = token(&ordonis_jira::webhook::query_string_hash(
        "POST",
        "/elsewhere",
    ));
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {other}"))],
        b"{}",
    ));
    assert!(m.contains("does not match"), "{m}");
    let context = token("context-qsh");
    let m = unauth_msg(verify(
        &c,
        &[("Authorization", &format!("JWT {context}"))],
        b"{}",
    ));
    assert!(m.contains("context"), "{m}");
    // A token without qsh (an OAuth 2.0 app's dynamic webhook) is checked as before.
    let plain = sign_jwt(
        &json!({"iss": "app-1", "exp": now + 300}),
        "app-shared-secret",
    );
    verify(&c, &[("Authorization", &format!("JWT {plain}"))], b"{}").unwrap();
}

/// The JWT's time claims at their boundaries: 30 s of leeway on `exp` and `nbf`, and not a
/// second more.
#[test]
fn jwt_time_claims_have_thirty_seconds_of_leeway() {
    use ordonis_jira::webhook::verify_jwt;
    let secret = "app-shared-secret";
    let now = 1_800_000_000;
    let check =
        |claims: serde_json::Value| verify_jwt(&sign_jwt(&claims, secret), secret, None, None, now);
    assert!(check(json!({"iss": "a", "exp": now - 30})).is_ok());
    assert!(check(json!({"iss": "a", "exp": now - 31})).is_err());
    assert!(check(json!({"iss": "a", "exp": now + 60, "nbf": now + 30})).is_ok());
    assert!(check(json!({"iss": "a", "exp": now + 60, "nbf": now + 31})).is_err());
    assert!(check(json!({"iss": "a", "exp": now + 60, "nbf": now - 600})).is_ok());
}

/// The query string hash covers the query, sorted, without the `jwt` parameter.
#[test]
fn qsh_covers_the_sorted_query_without_the_token() {
    use ordonis_jira::webhook::query_string_hash as qsh;
    assert_ne!(qsh("POST", "/p?a=1"), qsh("POST", "/p"));
    assert_ne!(qsh("POST", "/p?a=1"), qsh("POST", "/p?a=2"));
    assert_eq!(qsh("POST", "/p?b=2&a=1"), qsh("POST", "/p?a=1&b=2"));
    assert_eq!(qsh("POST", "/p?a=1&jwt=x.y.z"), qsh("POST", "/p?a=1"));
    assert_ne!(qsh("POST", "/p?a=1&jwx=1"), qsh("POST", "/p?a=1"));
}
