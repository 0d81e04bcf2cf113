//! The real and documented Asana fixtures parse to what they say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixture;
use ordonis_asana::webhook::{hints_from_events, parse};
use ordonis_asana::{CreatedWebhook, EventsPage};
use ordonis_core::{Field, HintKind, ObjectKey};

#[test]
fn captured_2019_event_without_change() {
    let hints = parse(&fixture("captured_task_changed_2019_gelisam.json")).unwrap();
    assert_eq!(hints.len(), 1);
    let h = &hints[0];
    assert_eq!(h.key, ObjectKey::new("1154849068499809", "task"));
    assert_eq!(h.kind, HintKind::Changed);
    assert_eq!(h.delivery_id, None);
    assert!(h.snapshot.is_none(), "compact events carry no snapshot");
    assert!(h.changes.is_empty(), "the 2019 capture has no `change`");
    assert_eq!(h.actor.as_ref().unwrap().account_id, "55010250146157");
    // 2019-12-21T03:33:19.007Z
    assert_eq!(h.source_time_ms, Some(1_576_899_199_007));
}

#[test]
fn heartbeat_is_empty() {
    assert_eq!(
        parse(&fixture("heartbeat_empty_events.json")).unwrap(),
        vec![]
    );
}

#[test]
fn events_endpoint_example() {
    let page: EventsPage =
        serde_json::from_slice(&fixture("docs_get_events_response_example.json")).unwrap();
    assert_eq!(page.sync, "de4774f6915eae04714ca93bb2f5ee81");
    assert!(page.has_more);
    let hints = hints_from_events(&page.events);
    assert_eq!(hints.len(), 1);
    // A task event whose parent is a task, but `changed` (not added/removed): the task itself.
    assert_eq!(hints[0].key, ObjectKey::new("12345", "task"));
    assert_eq!(hints[0].kind, HintKind::Changed);
    let c = &hints[0].changes[0];
    assert_eq!(c.field, Some(Field::Assignee));
    assert_eq!(c.to.as_deref(), Some("12345"));
    assert_eq!(
        hints[0].actor.as_ref().unwrap().display_name.as_deref(),
        Some("Greg Sanchez")
    );
}

#[test]
fn create_webhook_response() {
    let w: CreatedWebhook =
        serde_json::from_slice(&fixture("docs_create_webhook_201_response.json")).unwrap();
    assert_eq!(w.webhook.gid, "43214");
    assert_eq!(w.webhook.resource.as_ref().unwrap().gid, "8675309");
    assert_eq!(w.webhook.target, "https://example.com/receive-webhook/7654");
    assert_eq!(w.webhook.active, Some(false));
    assert_eq!(
        w.secret.as_deref(),
        Some("b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81")
    );
}
