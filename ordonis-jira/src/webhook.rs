//! Inbound webhooks: verification (HMAC for admin webhooks, JWT for app webhooks) and parsing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use ordonis_core::{
    ChangeHint, FieldChange, HintKind, ObjectKey, ProviderError, RemoteActor, RemoteTask,
    WebhookAuth,
};
use serde_json::Value;
use sha2::Sha256;

use crate::normalize::{field_for, fields_patch, parse_jira_time};

type HmacSha256 = Hmac<Sha256>;

/// The object type of Jira issues.
pub const ISSUE: &str = "issue";

/// Header carrying the admin-webhook signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature";
/// Header carrying the delivery id (same across retries).
pub const DELIVERY_HEADER: &str = "x-atlassian-webhook-identifier";
/// Header carrying the retry count (absent on the first attempt).
pub const RETRY_HEADER: &str = "x-atlassian-webhook-retry";
/// Header carrying `Primary` or `Secondary`.
pub const FLOW_HEADER: &str = "x-atlassian-webhook-flow";

fn unauth(msg: impl Into<String>) -> ProviderError {
    ProviderError::Unauthenticated(msg.into())
}

/// Computes `sha256=<hex>` for a body, as Jira signs admin webhooks.
///
/// ```
/// let sig = ordonis_jira::webhook::sign("It's a Secret to Everybody", b"Hello World!");
/// assert_eq!(sig, "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9");
/// ```
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        ordonis_core::provider_http::hmac_sha256_hex(secret, body)
    )
}

/// Checks `X-Hub-Signature: sha256=<hex>` against every current secret in constant time.
pub fn verify_signature(
    header: &str,
    secrets: &[String],
    body: &[u8],
) -> Result<WebhookAuth, ProviderError> {
    let header = header.trim();
    let (method, hex_sig) = header
        .split_once('=')
        .ok_or_else(|| unauth("X-Hub-Signature is not of the form sha256=<hex>"))?;
    if !method.eq_ignore_ascii_case("sha256") {
        return Err(unauth(format!(
            "X-Hub-Signature uses unsupported method {:?} (only sha256)",
            ordonis_core::provider_http::bounded(method)
        )));
    }
    let sig =
        hex::decode(hex_sig.trim()).map_err(|_| unauth("X-Hub-Signature is not valid hex"))?;
    if secrets.is_empty() {
        return Err(unauth(
            "the webhook is signed but the integration has no webhook secret configured",
        ));
    }
    if ordonis_core::provider_http::hmac_sha256_matches(&sig, secrets, body) {
        return Ok(WebhookAuth::Verified {
            method: "hmac-sha256",
        });
    }
    Err(unauth(
        "X-Hub-Signature does not match the body under any current webhook secret",
    ))
}

/// The query string hash (`qsh`) of a request, as Atlassian Connect computes it: SHA-256 (hex)
/// of `METHOD&path&query`, the path without a trailing slash (and `&` in it encoded), the
/// query's parameters sorted by name, `jwt` left out, names and values percent-encoded
/// (RFC 3986), several values of one name joined by `,`.
///
/// ```
/// let qsh = ordonis_jira::webhook::query_string_hash("post", "/hooks/jira/?b=2&a=1&jwt=x");
/// assert_eq!(qsh, ordonis_jira::webhook::query_string_hash("POST", "/hooks/jira?a=1&b=2"));
/// ```
pub fn query_string_hash(method: &str, path_and_query: &str) -> String {
    // RFC 3986: everything but the unreserved characters is escaped.
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut path = path.trim_end_matches('/').replace('&', "%26");
    if path.is_empty() {
        path.push('/');
    }
    let mut params: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "jwt" {
            continue;
        }
        params.entry(enc(k)).or_default().push(enc(v));
    }
    let query: Vec<String> = params
        .into_iter()
        .map(|(k, mut vs)| {
            vs.sort();
            format!("{k}={}", vs.join(","))
        })
        .collect();
    let canonical = format!("{}&{path}&{}", method.to_ascii_uppercase(), query.join("&"));
    hex::encode(<Sha256 as sha2::Digest>::digest(canonical.as_bytes()))
}

/// Checks a JWT (HS256) signed with the app's shared secret: signature, `exp` (and `nbf`),
/// `iss` (present; equal to `expected_issuer` when one is configured) and, when the token
/// carries one, `qsh` against `expected_qsh` (the hash of `POST&<webhook path>&`; see
/// [`query_string_hash`]). A `context-qsh` token is refused: it authenticates no request.
pub fn verify_jwt(
    token: &str,
    secret: &str,
    expected_issuer: Option<&str>,
    expected_qsh: Option<&str>,
    now_secs: i64,
) -> Result<WebhookAuth, ProviderError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(unauth("the JWT does not have three parts"));
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| unauth("the JWT header is not base64url JSON"))?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(unauth("the JWT must be signed with HS256"));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| unauth("the JWT signature is not base64url"))?;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .map_err(|_| unauth("the app secret cannot key HMAC"))?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&sig)
        .map_err(|_| unauth("the JWT signature does not match the app secret"))?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| unauth("the JWT claims are not base64url JSON"))?;
    const LEEWAY: i64 = 30;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| unauth("the JWT has no exp claim"))?;
    if exp.saturating_add(LEEWAY) < now_secs {
        return Err(unauth("the JWT has expired"));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf.saturating_sub(LEEWAY) > now_secs
    {
        return Err(unauth("the JWT is not valid yet (nbf)"));
    }
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
        .ok_or_else(|| unauth("the JWT has no iss claim"))?;
    if let Some(want) = expected_issuer
        && iss != want
    {
        return Err(unauth(format!(
            "the JWT issuer {:?} is not the configured issuer",
            ordonis_core::provider_http::bounded(iss)
        )));
    }
    if let Some(qsh) = claims.get("qsh").and_then(Value::as_str) {
        if qsh == "context-qsh" {
            return Err(unauth(
                "the JWT is a context token (qsh = context-qsh), which cannot sign a webhook",
            ));
        }
        let want = expected_qsh.ok_or_else(|| {
            unauth(
                "the JWT carries a qsh but the integration has no `jwt_webhook_path` option to \
                 check it against",
            )
        })?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            qsh.as_bytes(),
            want.as_bytes(),
        )) {
            return Err(unauth(
                "the JWT's qsh does not match this webhook's method and path (jwt_webhook_path)",
            ));
        }
    }
    Ok(WebhookAuth::Verified { method: "jwt" })
}

/// Signs claims as an HS256 JWT (for tests and fakes).
pub fn sign_jwt(claims: &Value, secret: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{s}")
}

/// What parsing needs besides the body.
#[derive(Clone, Copy, Debug)]
pub struct ParseContext<'a> {
    /// Site base URL for browse links.
    pub base_url: &'a str,
    /// `X-Atlassian-Webhook-Identifier`, when present.
    pub delivery_id: Option<&'a str>,
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The event's time in ms.
///
/// `timestamp` is epoch ms (a number, or a string of digits). **Fallback**: when it is some
/// other string (two public fixtures had it rewritten as `"6/13/2019, 12:51:58 PM,687"`), the
/// issue's `fields.updated` is used instead; when that is missing too, `None`.
fn source_time(body: &Value) -> Option<i64> {
    match body.get("timestamp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok().or_else(|| updated_ms(body)),
        _ => updated_ms(body),
    }
}

fn updated_ms(body: &Value) -> Option<i64> {
    body.get("issue")
        .and_then(|i| i.get("fields"))
        .and_then(|f| str_of(f, "updated"))
        .or_else(|| body.get("comment").and_then(|c| str_of(c, "updated")))
        .and_then(parse_jira_time)
}

fn issue_key(issue: &Value) -> Result<ObjectKey, ProviderError> {
    let id = match issue.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ProviderError::BadInput("the issue has no id".to_owned()));
        }
    };
    Ok(ObjectKey::new(id, ISSUE))
}

/// Maps a Jira issue JSON (webhook or REST) into a [`RemoteTask`]. `fallback_ms` is used when
/// the issue has no parseable `fields.updated`.
pub fn remote_task(
    issue: &Value,
    base_url: &str,
    fallback_ms: Option<i64>,
) -> Result<RemoteTask, ProviderError> {
    let key = issue_key(issue)?;
    let fields = issue.get("fields").unwrap_or(&Value::Null);
    let url = str_of(issue, "key")
        .filter(|k| !k.is_empty())
        .map(|k| format!("{}/browse/{k}", base_url.trim_end_matches('/')));
    let modified_at_ms = str_of(fields, "updated")
        .and_then(parse_jira_time)
        .or(fallback_ms)
        .unwrap_or(0);
    Ok(RemoteTask {
        key,
        fields: fields_patch(fields),
        modified_at_ms,
        url,
        // Our create's marker, where the read asked for the issue property.
        marker: issue
            .get("properties")
            .and_then(|p| p.get("ordonis"))
            .and_then(|m| m.get("task_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn change_text(item: &Value, text_key: &str, raw_key: &str) -> Option<String> {
    match item.get(text_key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => match item.get(raw_key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
    }
}

fn changes(body: &Value) -> Vec<FieldChange> {
    let Some(items) = body
        .get("changelog")
        .and_then(|c| c.get("items"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let provider_field = str_of(item, "fieldId")
                .filter(|f| !f.is_empty())
                .or_else(|| str_of(item, "field"))?
                .to_owned();
            Some(FieldChange {
                field: field_for(&provider_field),
                from: change_text(item, "fromString", "from"),
                to: change_text(item, "toString", "to"),
                provider_field,
            })
        })
        .collect()
}

/// The acting account: `user`, or for comment events without one, the comment's
/// `updateAuthor` (then `author`).
fn actor(body: &Value) -> Option<RemoteActor> {
    let comment = body.get("comment");
    let user = body
        .get("user")
        .filter(|u| u.get("accountId").is_some())
        .or_else(|| comment.and_then(|c| c.get("updateAuthor")))
        .or_else(|| comment.and_then(|c| c.get("author")))?;
    Some(RemoteActor {
        account_id: str_of(user, "accountId")?.to_owned(),
        display_name: str_of(user, "displayName").map(str::to_owned),
        email: str_of(user, "emailAddress").map(str::to_owned),
        kind: crate::normalize::account_kind(user),
    })
}

/// Parses a webhook body into hints.
///
/// - `jira:issue_created` / `jira:issue_updated` → one `Changed` hint with the snapshot (without
///   the description, which is wiki markup in this payload); when the description changed, no
///   snapshot, so that the engine reads the issue from REST v3;
/// - `jira:issue_deleted` → one `Deleted` hint (no snapshot: the task becomes a tombstone);
/// - `comment_created` / `comment_updated` / `comment_deleted` → one `Comment` hint for the
///   issue, naming the comment (a comment event without an issue or a comment id is
///   `BadInput`);
/// - any other event that names an issue (comments, worklogs, links, ...) → one `Ignored`
///   hint for that issue; events naming no issue → `[]`.
///
/// A body that is not a JSON object, has no `webhookEvent`, or whose issue has no id is
/// `BadInput`.
pub fn parse(body: &[u8], cx: ParseContext<'_>) -> Result<Vec<ChangeHint>, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::BadInput(format!("webhook body is not JSON: {e}")))?;
    if !v.is_object() {
        return Err(ProviderError::BadInput(
            "webhook body is not a JSON object".to_owned(),
        ));
    }
    let event = str_of(&v, "webhookEvent")
        .ok_or_else(|| ProviderError::BadInput("webhook body has no webhookEvent".to_owned()))?;
    let delivery_id = cx.delivery_id.map(str::to_owned);
    let source_time_ms = source_time(&v);
    let issue = v.get("issue").filter(|i| i.is_object());
    let kind = match event {
        "jira:issue_created" | "jira:issue_updated" => HintKind::Changed,
        "jira:issue_deleted" => HintKind::Deleted,
        // The payload's comment body is v2 wiki markup: the engine reads the comment from
        // REST v3 (ADF), which also holds our marker property.
        "comment_created" | "comment_updated" | "comment_deleted" => {
            let issue = issue.ok_or_else(|| {
                ProviderError::BadInput(format!("{event} without an issue object"))
            })?;
            let comment_id = v
                .get("comment")
                .and_then(|c| str_of(c, "id"))
                .ok_or_else(|| ProviderError::BadInput(format!("{event} without a comment id")))?;
            return Ok(vec![ChangeHint {
                key: issue_key(issue)?,
                delivery_id,
                kind: HintKind::Comment {
                    comment_id: comment_id.to_owned(),
                    deleted: event == "comment_deleted",
                },
                source_time_ms,
                actor: actor(&v),
                snapshot: None,
                changes: Vec::new(),
            }]);
        }
        other => {
            let Some(issue) = issue else {
                return Ok(Vec::new());
            };
            return Ok(vec![ChangeHint {
                key: issue_key(issue)?,
                delivery_id,
                kind: HintKind::Ignored {
                    reason: format!("{other} events do not change synced fields"),
                },
                source_time_ms,
                actor: actor(&v),
                snapshot: None,
                changes: Vec::new(),
            }]);
        }
    };
    let issue =
        issue.ok_or_else(|| ProviderError::BadInput(format!("{event} without an issue object")))?;
    let changes = changes(&v);
    // The payload's description is REST v2 wiki markup. When it is what changed (or a new
    // issue has one) there is no snapshot: the engine fetches the issue from REST v3 (ADF).
    // Otherwise the snapshot leaves the description out (`fields_patch` skips wiki strings).
    let description_changed = changes
        .iter()
        .any(|c| c.field == Some(ordonis_core::Field::Description))
        || (event == "jira:issue_created"
            && issue
                .get("fields")
                .and_then(|f| f.get("description"))
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty()));
    let snapshot = match kind {
        HintKind::Changed if !description_changed => {
            Some(remote_task(issue, cx.base_url, source_time_ms)?)
        }
        _ => None,
    };
    Ok(vec![ChangeHint {
        key: issue_key(issue)?,
        delivery_id,
        kind,
        source_time_ms,
        actor: actor(&v),
        snapshot,
        changes,
    }])
}
