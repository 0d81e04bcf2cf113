//! The JSON shapes of the HTTP contract: Task, ledger entries, inbox events.

use ordonis_core::store::InboxEvent;
use ordonis_core::{FieldValue, LedgerEntry, Task, TaskComment};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// RFC 3339 time.
pub fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `YYYY-MM-DD`.
pub fn date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn snake<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A field value in the Task JSON's shape of that field.
pub fn value(v: &FieldValue) -> Value {
    match v {
        FieldValue::Title(s) | FieldValue::Description(s) => Value::String(s.clone()),
        FieldValue::Status(s) => json!({"category": snake(&s.category), "name": s.name}),
        FieldValue::Assignee(a) => a.as_ref().map_or(Value::Null, |a| {
            json!({"account_id": a.account_id, "display_name": a.display_name, "email": a.email})
        }),
        FieldValue::Priority(p) => p.as_ref().map_or(Value::Null, |p| {
            json!({"level": snake(&p.level), "name": p.name})
        }),
        FieldValue::DueDate(d) => d.map_or(Value::Null, |d| Value::String(date(d))),
    }
}

/// A one-line human rendering of a field value (for the UI).
pub fn value_text(v: &FieldValue) -> String {
    match v {
        FieldValue::Title(s) | FieldValue::Description(s) => s.clone(),
        FieldValue::Status(s) if s.name.is_empty() => match s.category {
            ordonis_core::StatusCategory::Todo => "To Do".to_owned(),
            ordonis_core::StatusCategory::InProgress => "In Progress".to_owned(),
            ordonis_core::StatusCategory::Done => "Done".to_owned(),
        },
        FieldValue::Status(s) => s.name.clone(),
        FieldValue::Assignee(a) => a.as_ref().map_or_else(
            || "unassigned".to_owned(),
            |a| {
                a.display_name
                    .clone()
                    .unwrap_or_else(|| a.account_id.clone())
            },
        ),
        FieldValue::Priority(p) => p.as_ref().map_or_else(
            || "none".to_owned(),
            |p| {
                if p.name.is_empty() {
                    snake(&p.level).as_str().unwrap_or_default().to_owned()
                } else {
                    p.name.clone()
                }
            },
        ),
        FieldValue::DueDate(d) => d.map_or_else(|| "none".to_owned(), date),
    }
}

/// The Task JSON.
pub fn task(t: &Task) -> Value {
    let f = &t.fields;
    json!({
        "id": t.id.to_string(),
        "workspace_id": t.workspace_id.as_str(),
        "title": f.title,
        "description": f.description,
        "status": value(&FieldValue::Status(f.status.clone())),
        "assignee": value(&FieldValue::Assignee(f.assignee.clone())),
        "priority": value(&FieldValue::Priority(f.priority.clone())),
        "due_date": value(&FieldValue::DueDate(f.due_date)),
        "external": t.external.iter().map(|e| json!({
            "provider": e.provider.as_str(),
            "integration_id": e.integration_id.to_string(),
            "external_id": e.key.external_id,
            "url": e.url,
        })).collect::<Vec<_>>(),
        "deleted": t.deleted,
        "out_of_scope": t.out_of_scope,
        "create": t.create.as_ref().map(|c| json!({
            "state": c.state.as_str(),
            "error": c.error,
            "integration_id": c.link.integration_id.to_string(),
        })),
        "updated_at": ts(t.updated_at),
    })
}

/// A ledger entry: its position, hash and the record's fields.
pub fn entry(e: &LedgerEntry) -> Value {
    let r = &e.record;
    json!({
        "index": e.idx,
        "leaf_hash": hex::encode(e.leaf_hash),
        "logged_at": ts(e.logged_at),
        "task_id": r.task_id.to_string(),
        "integration_id": r.integration_id.map(|i| i.to_string()),
        "op": snake(&r.op),
        "field": r.field.map(|f| f.as_str()),
        "before": r.before.as_ref().map(value),
        "after": r.after.as_ref().map(value),
        "outcome": snake(&r.outcome),
        "rule": r.rule,
        "actor": snake(&r.actor),
        "cause": snake(&r.cause),
        "occurred_at": r.occurred_at.map(ts),
        "observed_at": ts(r.observed_at),
        "session": r.session.as_ref().map(snake),
        "comment": r.comment.as_ref().map(|c| json!({
            "id": c.id.to_string(),
            "external_id": c.external_id,
            "body": c.body,
        })),
    })
}

/// A comment on a task (the HTTP contract's Comment).
pub fn comment(c: &TaskComment) -> Value {
    let a = &c.author;
    json!({
        "id": c.id.to_string(),
        "task_id": c.task_id.to_string(),
        "body": c.body,
        "author": {"kind": snake(&a.kind), "id": a.id, "display_name": a.display_name},
        "on_behalf_of": (!a.on_behalf_of.is_empty()).then(|| snake(&a.on_behalf_of)),
        "source": c.source,
        "external_id": c.external_id,
        "created_at": ts(c.created_at),
        "edited_at": c.edited_at.map(ts),
        "deleted": c.deleted,
        "sync": c.sync.as_ref().map(|s| json!({
            "state": s.state.as_str(),
            "error": s.error,
        })),
    })
}

/// An inbox row (without its body).
pub fn event(e: &InboxEvent) -> Value {
    json!({
        "id": e.id.to_string(),
        "workspace_id": e.workspace_id.as_str(),
        "integration_id": e.integration_id.to_string(),
        "delivery_id": e.delivery_id,
        "object_key": e.object_key,
        "state": e.state.as_str(),
        "attempts": e.attempts,
        "last_error": e.last_error,
        "received_at": ts(e.received_at),
        "next_attempt_at": ts(e.next_attempt_at),
        "body_sha256": e.body_sha256,
        "body_bytes": e.body.len(),
        "auth": e.auth,
    })
}
