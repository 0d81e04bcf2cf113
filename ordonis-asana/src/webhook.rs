//! Inbound webhooks: the `X-Hook-Secret` handshake, `X-Hook-Signature` verification, and
//! parsing compact event batches into hints.

use ordonis_core::{
    ChangeHint, FieldChange, HintKind, ObjectKey, ProviderError, RemoteActor, WebhookAuth,
};
use serde_json::Value;

use crate::normalize::parse_time;

/// The object type of Asana tasks.
pub const TASK: &str = "task";

/// Header carrying the handshake secret (request and echoed answer).
pub const HOOK_SECRET_HEADER: &str = "x-hook-secret";
/// Header carrying the delivery signature.
pub const SIGNATURE_HEADER: &str = "x-hook-signature";
/// The longest handshake secret accepted (Asana's are 64 hex characters).
pub const MAX_SECRET_LEN: usize = 1024;

fn unauth(msg: impl Into<String>) -> ProviderError {
    ProviderError::Unauthenticated(msg.into())
}

/// Computes the `X-Hook-Signature` value for a body: lowercase hex HMAC-SHA256.
///
/// ```
/// let sig = ordonis_asana::webhook::sign("secret", br#"{"events":[]}"#);
/// assert_eq!(sig.len(), 64);
/// assert!(ordonis_asana::webhook::verify_signature(&sig, &["secret".into()], br#"{"events":[]}"#).is_ok());
/// ```
pub fn sign(secret: &str, body: &[u8]) -> String {
    ordonis_core::provider_http::hmac_sha256_hex(secret, body)
}

/// Checks `X-Hook-Signature: <hex>` against every current secret, in constant time.
pub fn verify_signature(
    header: &str,
    secrets: &[String],
    body: &[u8],
) -> Result<WebhookAuth, ProviderError> {
    let sig = hex::decode(header.trim()).map_err(|_| unauth("X-Hook-Signature is not hex"))?;
    if sig.len() != 32 {
        return Err(unauth("X-Hook-Signature is not a SHA-256 HMAC"));
    }
    if secrets.is_empty() {
        return Err(unauth(
            "the webhook is signed but the integration has no webhook secret yet (no handshake)",
        ));
    }
    if ordonis_core::provider_http::hmac_sha256_matches(&sig, secrets, body) {
        return Ok(WebhookAuth::Verified {
            method: "hmac-sha256",
        });
    }
    Err(unauth(
        "X-Hook-Signature does not match the body under any current webhook secret",
    ))
}

/// A handshake answer for an `X-Hook-Secret` value: echo it and adopt it. Whether a
/// handshake is expected at all is the engine's decision (only while the integration is
/// creating its webhook).
pub fn handshake(secret: &str) -> Result<WebhookAuth, ProviderError> {
    let secret = secret.trim();
    if secret.is_empty()
        || secret.len() > MAX_SECRET_LEN
        || !secret.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(unauth(
            "X-Hook-Secret is empty, too long or not printable ASCII",
        ));
    }
    Ok(WebhookAuth::Handshake {
        reply_headers: vec![("X-Hook-Secret".to_owned(), secret.to_owned())],
        secret: secret.to_owned(),
    })
}

/// True when the body is a heartbeat: a JSON object whose `events` is an empty list.
pub fn is_heartbeat(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v.get("events")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    })
}

/// The longest body accepted as an unsigned heartbeat.
pub const MAX_UNSIGNED_HEARTBEAT_BYTES: usize = 64;

/// True when an unsigned body may pass as a heartbeat: exactly `{"events":[]}` (JSON
/// whitespace allowed between its tokens) and at most [`MAX_UNSIGNED_HEARTBEAT_BYTES`]
/// long. Anything else unsigned (another key, padding, a non-empty list) is refused.
///
/// ```
/// use ordonis_asana::webhook::is_unsigned_heartbeat;
/// assert!(is_unsigned_heartbeat(br#"{"events":[]}"#));
/// assert!(is_unsigned_heartbeat(b"{ \"events\": [ ] }\n"));
/// assert!(!is_unsigned_heartbeat(br#"{"events":[],"pad":"x"}"#));
/// assert!(!is_unsigned_heartbeat(br#"{"events":[{}]}"#));
/// assert!(!is_unsigned_heartbeat(format!("{{\"events\":[]{}}}", " ".repeat(100)).as_bytes()));
/// ```
pub fn is_unsigned_heartbeat(body: &[u8]) -> bool {
    if body.len() > MAX_UNSIGNED_HEARTBEAT_BYTES {
        return false;
    }
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v.as_object().is_some_and(|o| {
            o.len() == 1
                && o.get("events")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
        })
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn gid_of(v: &Value) -> Option<&str> {
    str_of(v, "gid").filter(|g| !g.is_empty())
}

/// Maps an Asana task field name to an Ordonis field (`completed` is status; custom fields
/// may be priority or status, depending on configuration, so they map to none here).
pub fn field_for(asana_field: &str) -> Option<ordonis_core::Field> {
    use ordonis_core::Field;
    match asana_field {
        "name" => Some(Field::Title),
        "notes" | "html_notes" => Some(Field::Description),
        "completed" => Some(Field::Status),
        "assignee" => Some(Field::Assignee),
        "due_on" | "due_at" => Some(Field::DueDate),
        _ => None,
    }
}

fn value_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        o @ Value::Object(_) => gid_of(o)
            .map(str::to_owned)
            .or_else(|| str_of(o, "name").map(str::to_owned)),
        _ => None,
    }
}

fn change_of(event: &Value) -> Vec<FieldChange> {
    let Some(change) = event.get("change").filter(|c| c.is_object()) else {
        return Vec::new();
    };
    let Some(field) = str_of(change, "field") else {
        return Vec::new();
    };
    let to = value_text(change.get("new_value")).or_else(|| value_text(change.get("added_value")));
    vec![FieldChange {
        field: field_for(field),
        provider_field: field.to_owned(),
        from: value_text(change.get("removed_value")),
        to,
    }]
}

/// The `resource_subtype` of a comment story.
const COMMENT_SUBTYPE: &str = "comment_added";

/// One event as a hint, or `None` for an event naming no object.
///
/// - a task event keys the task; `deleted` is `Deleted`, every other action `Changed` (the
///   task is fetched; moving between sections can change the in-progress status). A task
///   `removed` from or `added` to a project is `Changed` too: the fetch reads where the task
///   belongs now and answers `OutOfScope` when the scope no longer covers it
///   ([`crate::scope`]), so the two events converge in either order;
/// - a task added to or removed from a *task* is a subtask event: it keys the parent task and
///   is `Ignored` (a subtask does not change its parent's synced fields);
/// - a comment story event (`resource_subtype: comment_added`) keys its parent task and is a
///   `Comment` hint (`removed`/`deleted`: a deletion); any other story (activity) is
///   `Ignored`;
/// - any other resource (project, section, …) keys itself and is `Ignored`.
fn hint_of(event: &Value) -> Option<ChangeHint> {
    let resource = event.get("resource")?;
    let gid = gid_of(resource)?;
    let rtype = str_of(resource, "resource_type").unwrap_or("");
    let action = str_of(event, "action").unwrap_or("");
    let parent = event.get("parent").filter(|p| p.is_object());
    let parent_task = parent
        .filter(|p| str_of(p, "resource_type") == Some(TASK))
        .and_then(gid_of);
    let (key, kind) = match (rtype, parent_task) {
        (TASK, Some(parent)) if matches!(action, "added" | "removed") => (
            ObjectKey::new(parent, TASK),
            HintKind::Ignored {
                reason: format!("subtask {action}"),
            },
        ),
        (TASK, _) if action == "deleted" => (ObjectKey::new(gid, TASK), HintKind::Deleted),
        (TASK, _) => (ObjectKey::new(gid, TASK), HintKind::Changed),
        ("story", Some(parent))
            if str_of(resource, "resource_subtype") == Some(COMMENT_SUBTYPE) =>
        {
            (
                ObjectKey::new(parent, TASK),
                HintKind::Comment {
                    comment_id: gid.to_owned(),
                    deleted: matches!(action, "removed" | "deleted"),
                },
            )
        }
        // An edit's event names no parent: keyed by the story, whose task the engine asks
        // for (`CommentProvider::comment_parent`).
        ("story", None) if str_of(resource, "resource_subtype") == Some(COMMENT_SUBTYPE) => (
            ObjectKey::new(gid, crate::comments::STORY),
            HintKind::Comment {
                comment_id: gid.to_owned(),
                deleted: matches!(action, "removed" | "deleted"),
            },
        ),
        ("story", Some(parent)) => (
            ObjectKey::new(parent, TASK),
            HintKind::Ignored {
                reason: "activity stories do not change synced fields".to_owned(),
            },
        ),
        (other, _) => (
            ObjectKey::new(gid, if other.is_empty() { "unknown" } else { other }),
            HintKind::Ignored {
                reason: format!(
                    "{} events are not synced",
                    if other.is_empty() { "untyped" } else { other }
                ),
            },
        ),
    };
    let actor = event.get("user").and_then(gid_of).map(|g| RemoteActor {
        account_id: g.to_owned(),
        display_name: event
            .get("user")
            .and_then(|u| str_of(u, "name"))
            .map(str::to_owned),
        email: None,
        // Asana's AI teammates act as `resource_type: "agent"` (early access).
        kind: match event.get("user").and_then(|u| str_of(u, "resource_type")) {
            Some("agent") => ordonis_core::PersonKind::Agent,
            _ => ordonis_core::PersonKind::Human,
        },
    });
    Some(ChangeHint {
        key,
        delivery_id: None,
        kind,
        source_time_ms: str_of(event, "created_at").and_then(parse_time),
        actor,
        snapshot: None,
        changes: change_of(event),
    })
}

/// Hints for a list of events (webhook `events[]` or `GET /events` `data[]`), in order.
/// Events that name no resource gid are skipped.
pub fn hints_from_events(events: &[Value]) -> Vec<ChangeHint> {
    events.iter().filter_map(hint_of).collect()
}

/// Parses a webhook body `{"events": [...]}` into hints; an empty list (a heartbeat) is
/// `[]`. A body that is not a JSON object with an `events` list, or whose events all fail
/// to name an object, is `BadInput`.
pub fn parse(body: &[u8]) -> Result<Vec<ChangeHint>, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ProviderError::BadInput(format!("webhook body is not JSON: {e}")))?;
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::BadInput("webhook body has no `events` list".to_owned()))?;
    let hints = hints_from_events(events);
    if hints.is_empty() && !events.is_empty() {
        return Err(ProviderError::BadInput(
            "no event in the batch names a resource gid".to_owned(),
        ));
    }
    Ok(hints)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn one(ev: Value) -> ChangeHint {
        let body = json!({"events": [ev]}).to_string();
        let mut h = parse(body.as_bytes()).unwrap();
        assert_eq!(h.len(), 1);
        h.remove(0)
    }

    #[test]
    fn signature_vector_and_checks() {
        // Computed independently: printf '{"events":[]}' | openssl dgst -sha256 -hmac secret
        let sig = sign("secret", br#"{"events":[]}"#);
        assert_eq!(
            sig,
            "a642b59553c93e227ec0f2f38910fbf71231a2197c00899833c00478cec86f34"
        );
        assert!(
            verify_signature(
                &sig,
                &["other".into(), "secret".into()],
                br#"{"events":[]}"#
            )
            .is_ok()
        );
        assert!(
            verify_signature(&sig.to_uppercase(), &["secret".into()], br#"{"events":[]}"#).is_ok()
        );
        assert!(verify_signature(&sig, &["secret".into()], br#"{"events":[ ]}"#).is_err());
        assert!(verify_signature(&format!("sha256={sig}"), &["secret".into()], b"").is_err());
        assert!(verify_signature("abcd", &["secret".into()], b"").is_err());
        assert!(verify_signature(&sig, &[], br#"{"events":[]}"#).is_err());
    }

    #[test]
    fn handshake_answers_and_refuses_junk() {
        let WebhookAuth::Handshake {
            reply_headers,
            secret,
        } = handshake(" abc123 ").unwrap()
        else {
            panic!()
        };
        assert_eq!(secret, "abc123");
        assert_eq!(
            reply_headers,
            vec![("X-Hook-Secret".to_owned(), "abc123".to_owned())]
        );
        assert!(handshake("").is_err());
        assert!(handshake("a b").is_err());
        assert!(handshake(&"a".repeat(MAX_SECRET_LEN + 1)).is_err());
    }

    #[test]
    fn event_kinds() {
        let h = one(
            json!({"action": "deleted", "resource": {"gid": "5", "resource_type": "task"}, "user": null}),
        );
        assert_eq!(h.kind, HintKind::Deleted);
        assert!(h.actor.is_none());
        let h = one(
            json!({"action": "added", "resource": {"gid": "6", "resource_type": "task"},
            "parent": {"gid": "5", "resource_type": "task"}}),
        );
        assert_eq!(h.key, ObjectKey::new("5", TASK));
        assert!(matches!(h.kind, HintKind::Ignored { .. }));
        let h = one(
            json!({"action": "added", "resource": {"gid": "6", "resource_type": "task"},
            "parent": {"gid": "77", "resource_type": "section"}}),
        );
        assert_eq!(h.key, ObjectKey::new("6", TASK));
        assert_eq!(h.kind, HintKind::Changed);
        let h = one(
            json!({"action": "added", "resource": {"gid": "9", "resource_type": "story", "resource_subtype": "comment_added"},
            "parent": {"gid": "5", "resource_type": "task"}, "user": {"gid": "u1", "resource_type": "user"}}),
        );
        assert_eq!(h.key, ObjectKey::new("5", TASK));
        assert_eq!(
            h.kind,
            HintKind::Comment {
                comment_id: "9".into(),
                deleted: false
            }
        );
        assert_eq!(h.actor.unwrap().account_id, "u1");
        let h = one(
            json!({"action": "removed", "resource": {"gid": "9", "resource_type": "story", "resource_subtype": "comment_added"},
            "parent": {"gid": "5", "resource_type": "task"}}),
        );
        assert!(matches!(h.kind, HintKind::Comment { deleted: true, .. }));
        // Activity stories stay out of the conversation.
        let h = one(
            json!({"action": "added", "resource": {"gid": "8", "resource_type": "story", "resource_subtype": "assigned"},
            "parent": {"gid": "5", "resource_type": "task"}}),
        );
        assert!(matches!(h.kind, HintKind::Ignored { .. }));
        let h =
            one(json!({"action": "changed", "resource": {"gid": "3", "resource_type": "project"}}));
        assert_eq!(h.key, ObjectKey::new("3", "project"));
        let h = one(
            json!({"action": "changed", "created_at": "2019-12-21T03:33:19.007Z",
            "resource": {"gid": "3", "resource_type": "task"},
            "change": {"field": "assignee", "action": "changed", "new_value": {"gid": "u2", "resource_type": "user"}}}),
        );
        assert_eq!(h.source_time_ms, Some(1_576_899_199_007));
        assert_eq!(h.changes[0].field, Some(ordonis_core::Field::Assignee));
        assert_eq!(h.changes[0].to.as_deref(), Some("u2"));
    }

    #[test]
    fn an_agent_actor_is_an_agent_and_a_user_a_human() {
        // Asana's AI teammates act as `{"resource_type": "agent"}` in `user` (the rollout's
        // next phase); a comment an agent adds is still a comment hint.
        let h = one(json!({"action": "added",
            "resource": {"gid": "9", "resource_type": "story", "resource_subtype": "comment_added"},
            "parent": {"gid": "5", "resource_type": "task"},
            "user": {"gid": "a1", "resource_type": "agent", "name": "Triage bot"}}));
        assert!(matches!(h.kind, HintKind::Comment { .. }));
        let actor = h.actor.unwrap_or_else(|| panic!("no actor"));
        assert_eq!(actor.account_id, "a1");
        assert_eq!(actor.display_name.as_deref(), Some("Triage bot"));
        assert_eq!(actor.kind, ordonis_core::PersonKind::Agent);
        let h = one(
            json!({"action": "changed", "resource": {"gid": "3", "resource_type": "task"},
            "user": {"gid": "u1", "resource_type": "user"}}),
        );
        let actor = h.actor.unwrap_or_else(|| panic!("no actor"));
        assert_eq!(actor.kind, ordonis_core::PersonKind::Human);
    }

    #[test]
    fn bad_bodies() {
        for body in [
            &b"nope"[..],
            b"[]",
            b"{}",
            br#"{"events": {}}"#,
            br#"{"events": [{"action": "changed"}]}"#,
        ] {
            assert!(
                matches!(parse(body), Err(ProviderError::BadInput(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(parse(br#"{"events":[]}"#).unwrap(), vec![]);
        assert!(is_heartbeat(br#"{"events":[]}"#));
        assert!(!is_heartbeat(br#"{"events":[1]}"#));
    }

    #[test]
    fn only_an_exact_small_heartbeat_passes_unsigned() {
        assert!(is_unsigned_heartbeat(br#"{"events":[]}"#));
        assert!(is_unsigned_heartbeat(b" {\"events\" : []}\r\n"));
        let padded = format!(r#"{{"events":[],"pad":"{}"}}"#, "x".repeat(1 << 20));
        for body in [
            padded.as_bytes(),
            br#"{"events":[],"x":1}"#,
            br#"{"events":[null]}"#,
            br#"{"events":{}}"#,
            br#"[]"#,
            b"",
        ] {
            assert!(
                !is_unsigned_heartbeat(body),
                "{:.40}",
                String::from_utf8_lossy(body)
            );
        }
        let spaced = format!(
            "{{\"events\":[]{}}}",
            " ".repeat(MAX_UNSIGNED_HEARTBEAT_BYTES)
        );
        assert!(is_heartbeat(spaced.as_bytes()));
        assert!(!is_unsigned_heartbeat(spaced.as_bytes()));
    }

    #[test]
    fn a_secret_of_the_largest_length_is_taken_and_one_more_is_refused() {
        assert!(handshake(&"s".repeat(MAX_SECRET_LEN)).is_ok());
        assert!(handshake(&"s".repeat(MAX_SECRET_LEN + 1)).is_err());
    }

    #[test]
    fn asana_fields_map_to_ordonis_fields() {
        use ordonis_core::Field;
        for (name, field) in [
            ("name", Some(Field::Title)),
            ("notes", Some(Field::Description)),
            ("html_notes", Some(Field::Description)),
            ("completed", Some(Field::Status)),
            ("assignee", Some(Field::Assignee)),
            ("due_on", Some(Field::DueDate)),
            ("due_at", Some(Field::DueDate)),
            ("custom_fields", None),
            ("memberships", None),
        ] {
            assert_eq!(field_for(name), field, "{name}");
        }
    }

    #[test]
    fn change_values_of_every_kind_are_read_as_text() {
        let event = |field: &str, new: Value| {
            serde_json::json!({
                "action": "changed",
                "resource": {"gid": "1", "resource_type": "task"},
                "change": {"field": field, "action": "changed", "new_value": new,
                           "removed_value": {"name": "Old"}}
            })
        };
        let to = |field: &str, new: Value| {
            let hints = hints_from_events(&[event(field, new)]);
            let c = &hints[0].changes[0];
            (c.field, c.to.clone(), c.from.clone())
        };
        use ordonis_core::Field;
        let old = Some("Old".to_owned());
        assert_eq!(
            to("name", "New".into()),
            (Some(Field::Title), Some("New".into()), old.clone())
        );
        assert_eq!(
            to("completed", true.into()),
            (Some(Field::Status), Some("true".into()), old.clone())
        );
        assert_eq!(
            to("custom", 3.into()),
            (None, Some("3".into()), old.clone())
        );
        assert_eq!(
            to("assignee", serde_json::json!({"gid": "42", "name": "Ada"})),
            (Some(Field::Assignee), Some("42".into()), old)
        );
    }

    #[test]
    fn a_subtask_changed_is_its_own_change_and_only_adding_or_removing_one_keys_the_parent() {
        let event = |action: &str| {
            serde_json::json!({
                "action": action,
                "resource": {"gid": "S", "resource_type": "task"},
                "parent": {"gid": "P", "resource_type": "task"}
            })
        };
        let changed = hints_from_events(&[event("changed")]);
        assert_eq!(changed[0].key, ObjectKey::new("S", TASK));
        assert_eq!(changed[0].kind, HintKind::Changed);
        for action in ["added", "removed"] {
            let h = hints_from_events(&[event(action)]);
            assert_eq!(h[0].key, ObjectKey::new("P", TASK), "{action}");
            assert!(matches!(h[0].kind, HintKind::Ignored { .. }), "{action}");
        }
    }
}
