//! Every real fixture parses; the normalized hints are snapshot-tested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ctx, fixture, fixture_names};
use http::{HeaderMap, HeaderValue, Method};
use ordonis_core::{
    Field, FieldValue, HintKind, PriorityLevel, Provider, ProviderError, StatusCategory,
    WebhookRequest,
};
use ordonis_jira::JiraProvider;

fn parse(body: &[u8]) -> Result<Vec<ordonis_core::ChangeHint>, ProviderError> {
    let p = JiraProvider::new().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-atlassian-webhook-identifier",
        HeaderValue::from_static("delivery-1"),
    );
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &headers,
        body,
    };
    p.parse_webhook(&ctx("https://example.atlassian.net"), &req)
}

#[test]
fn every_fixture_parses_and_matches_snapshot() {
    for name in fixture_names() {
        let hints = parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(hints.len(), 1, "{name}");
        assert_eq!(hints[0].delivery_id.as_deref(), Some("delivery-1"));
        insta::assert_json_snapshot!(name.trim_end_matches(".json"), hints);
    }
}

#[test]
fn issue_created_kan22_normalized() {
    let hints = parse(&fixture("cloud_issue_created_kan22.json")).unwrap();
    let h = &hints[0];
    assert_eq!(h.kind, HintKind::Changed);
    assert_eq!(h.key.external_id, "10021");
    assert_eq!(h.key.object_type, "issue");
    assert_eq!(h.source_time_ms, Some(1_735_441_883_659));
    // The new issue has a (wiki-markup) description: no snapshot, the engine reads REST v3.
    assert!(h.snapshot.is_none());
    assert!(
        h.changes
            .iter()
            .any(|c| c.field == Some(Field::Description))
    );

    // The same delivery without a description is applied from its snapshot.
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("cloud_issue_created_kan22.json")).unwrap();
    body["issue"]["fields"]["description"] = serde_json::Value::Null;
    body["changelog"]["items"]
        .as_array_mut()
        .unwrap()
        .retain(|i| i["field"] != "description");
    let hints = parse(body.to_string().as_bytes()).unwrap();
    let h = &hints[0];
    let snap = h.snapshot.as_ref().unwrap();
    assert_eq!(
        snap.fields.get(Field::Description),
        Some(&FieldValue::Description(String::new()))
    );
    assert_eq!(
        snap.url.as_deref(),
        Some("https://example.atlassian.net/browse/KAN-22")
    );
    assert_eq!(
        snap.fields.get(Field::Title),
        Some(&FieldValue::Title("Add back button to pages".into()))
    );
    let Some(FieldValue::Status(s)) = snap.fields.get(Field::Status) else {
        panic!("no status")
    };
    assert_eq!(s.category, StatusCategory::Todo);
    assert_eq!(s.name, "To Do");
    let Some(FieldValue::Priority(Some(p))) = snap.fields.get(Field::Priority) else {
        panic!("no priority")
    };
    assert_eq!(p.level, PriorityLevel::Medium);
    let Some(FieldValue::Assignee(Some(a))) = snap.fields.get(Field::Assignee) else {
        panic!("no assignee")
    };
    assert_eq!(a.account_id, "712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4");
    assert_eq!(
        snap.fields.get(Field::DueDate),
        Some(&FieldValue::DueDate(None))
    );
    assert!(h.changes.iter().any(|c| c.field == Some(Field::Assignee)));
}

#[test]
fn status_change_without_field_id_uses_field() {
    let hints = parse(&fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    let c = &hints[0].changes[0];
    assert_eq!(c.field, Some(Field::Status));
    assert_eq!(c.provider_field, "status");
    assert_eq!(c.from.as_deref(), Some("To Do"));
    assert_eq!(c.to.as_deref(), Some("In Progress"));
    let Some(FieldValue::Status(s)) = hints[0]
        .snapshot
        .as_ref()
        .unwrap()
        .fields
        .get(Field::Status)
    else {
        panic!()
    };
    assert_eq!(s.category, StatusCategory::InProgress);
}

#[test]
fn string_timestamp_falls_back_to_updated() {
    let hints = parse(&fixture("cloud_issue_updated_assigned_mobitel.json")).unwrap();
    // fields.updated = 2019-06-13T12:51:58.248+0300
    assert_eq!(hints[0].source_time_ms, Some(1_560_419_518_248));
    let hints = parse(&fixture("cloud_comment_updated_mobitel.json")).unwrap();
    assert!(
        matches!(&hints[0].kind, HintKind::Comment { deleted: false, comment_id } if !comment_id.is_empty())
    );
    // comment.updated = 2018-12-20T15:41:13.803+0300
    assert_eq!(hints[0].source_time_ms, Some(1_545_309_673_803));
    assert_eq!(
        hints[0].actor.as_ref().unwrap().account_id,
        "5b912e21fa38ae2c896099ae"
    );
}

#[test]
fn a_comment_event_names_its_issue_and_comment_and_carries_no_snapshot() {
    let hints = parse(&fixture("cloud_comment_created_zulip.json")).unwrap();
    assert_eq!(hints[0].key.external_id, "10000");
    assert_eq!(
        hints[0].kind,
        HintKind::Comment {
            comment_id: "10000".into(),
            deleted: false
        }
    );
    // The wiki-markup body is never read: the engine fetches the comment from REST v3.
    assert!(hints[0].snapshot.is_none());
    let mut deleted: serde_json::Value =
        serde_json::from_slice(&fixture("cloud_comment_created_zulip.json")).unwrap();
    deleted["webhookEvent"] = "comment_deleted".into();
    let hints = parse(deleted.to_string().as_bytes()).unwrap();
    assert!(matches!(
        &hints[0].kind,
        HintKind::Comment { deleted: true, .. }
    ));
    // A comment event that names no comment is bad input, kept with its error.
    deleted["comment"] = serde_json::json!({});
    assert!(parse(deleted.to_string().as_bytes()).is_err());
}

#[test]
fn deleted_is_a_tombstone_hint() {
    let body = br#"{"timestamp":1700000000000,"webhookEvent":"jira:issue_deleted",
        "user":{"accountId":"u1"},"issue":{"id":"42","key":"X-1","fields":{"summary":"s"}}}"#;
    let hints = parse(body).unwrap();
    assert_eq!(hints[0].kind, HintKind::Deleted);
    assert_eq!(hints[0].key.external_id, "42");
    assert_eq!(hints[0].actor.as_ref().unwrap().account_id, "u1");
}

#[test]
fn adf_description_and_unknown_values() {
    let body = br#"{"timestamp":1700000000000,"webhookEvent":"jira:issue_updated","extra":{"x":1},
        "issue":{"id":7,"key":"X-7","fields":{"summary":"s","updated":"2024-01-01T00:00:00.000+0000",
        "description":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"hi"}]}]},
        "priority":{"name":"Blocker-ish"},"status":{"name":"Weird","statusCategory":{"key":"undefined"}},
        "duedate":"2026-02-03","customfield_1":[1,2]}}}"#;
    let hints = parse(body).unwrap();
    let snap = hints[0].snapshot.as_ref().unwrap();
    assert_eq!(snap.key.external_id, "7");
    assert_eq!(snap.modified_at_ms, 1_704_067_200_000);
    assert_eq!(
        snap.fields.get(Field::Description),
        Some(&FieldValue::Description("hi".into()))
    );
    let Some(FieldValue::Priority(Some(p))) = snap.fields.get(Field::Priority) else {
        panic!()
    };
    assert_eq!(p.level, PriorityLevel::Medium);
    assert!(snap.fields.get(Field::DueDate).is_some());
}

#[test]
fn garbage_is_bad_input_never_panic() {
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        b"{\"webhookEvent\":\"jira:issue_updated\"}",
        b"{\"webhookEvent\":\"jira:issue_updated\",\"issue\":{\"fields\":{}}}",
    ] {
        assert!(
            matches!(parse(body), Err(ProviderError::BadInput(_))),
            "{body:?}"
        );
    }
    // Other events without an issue: a heartbeat.
    assert!(
        parse(br#"{"webhookEvent":"project_created"}"#)
            .unwrap()
            .is_empty()
    );
}

/// A `timestamp` sent as a string of digits is the event's time (before any fallback).
#[test]
fn a_timestamp_string_of_digits_is_the_time() {
    let body = br#"{"timestamp":" 1700000000123 ","webhookEvent":"jira:issue_deleted",
        "issue":{"id":"42","fields":{"updated":"2024-01-01T00:00:00.000+0000"}}}"#;
    assert_eq!(
        parse(body).unwrap()[0].source_time_ms,
        Some(1_700_000_000_123)
    );
}

/// An issue whose id is an empty string has no key: bad input, as a missing id is.
#[test]
fn an_empty_issue_id_is_bad_input() {
    for id in [r#""""#, "null", "true"] {
        let body = format!(
            r#"{{"timestamp":1,"webhookEvent":"jira:issue_deleted","issue":{{"id":{id}}}}}"#
        );
        assert!(
            matches!(parse(body.as_bytes()), Err(ProviderError::BadInput(_))),
            "{id}"
        );
    }
    // A numeric id is a key.
    let body = br#"{"timestamp":1,"webhookEvent":"jira:issue_deleted","issue":{"id":42}}"#;
    assert_eq!(parse(body).unwrap()[0].key.external_id, "42");
}

/// A changelog item without `fromString`/`toString` keeps its raw `from`/`to`, whether Jira
/// sends them as strings or numbers (custom fields, story points).
#[test]
fn changelog_values_fall_back_to_their_raw_form() {
    let body = br#"{"timestamp":1,"webhookEvent":"jira:issue_updated",
        "issue":{"id":"42","fields":{"summary":"s"}},
        "changelog":{"items":[
            {"field":"Story Points","fieldId":"customfield_10016","from":3,"to":5.5},
            {"field":"Sprint","fieldId":"customfield_10020","from":"7","to":"8","toString":"Sprint 8"},
            {"field":"Rank","fieldId":"customfield_10019","from":null,"to":true}
        ]}}"#;
    let changes = &parse(body).unwrap()[0].changes;
    let of = |f: &str| {
        let c = changes.iter().find(|c| c.provider_field == f).unwrap();
        (c.from.clone(), c.to.clone())
    };
    assert_eq!(
        of("customfield_10016"),
        (Some("3".into()), Some("5.5".into()))
    );
    assert_eq!(
        of("customfield_10020"),
        (Some("7".into()), Some("Sprint 8".into()))
    );
    assert_eq!(of("customfield_10019"), (None, None));
}

/// A new issue carries its description as wiki markup: with a non-empty one there is no
/// snapshot (the engine reads the issue from REST v3); with an empty one the snapshot stands.
#[test]
fn a_created_issue_is_fetched_only_when_it_has_a_description() {
    let created = |description: &str| {
        format!(
            r#"{{"timestamp":1,"webhookEvent":"jira:issue_created",
            "issue":{{"id":"42","fields":{{"summary":"s","description":{description}}}}}}}"#
        )
    };
    let hint = |d: &str| parse(created(d).as_bytes()).unwrap().remove(0);
    assert!(hint(r#""h1. Plan""#).snapshot.is_none());
    assert!(hint(r#""""#).snapshot.is_some());
    assert!(hint("null").snapshot.is_some());
}
