//! Mapping an Asana task (`GET /tasks/{gid}` `data`) into Ordonis fields, and the
//! integration options that say how status and priority are represented.
//!
//! Everything here works on `serde_json::Value` and ignores what it does not know.

use ordonis_core::{Assignee, FieldPatch, FieldValue, Priority, Status, StatusCategory};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// The status name Ordonis reports for a completed task.
pub const COMPLETED: &str = "Completed";

pub use crate::config::priority_level;
use crate::config::{AsanaOptions, InProgressRule};

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Parses Asana's timestamps (RFC 3339, `2019-12-21T03:33:19.007Z`) to epoch ms.
///
/// ```
/// assert_eq!(
///     ordonis_asana::normalize::parse_time("2019-12-21T03:33:19.007Z"),
///     Some(1_576_899_199_007)
/// );
/// ```
pub fn parse_time(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    // `time`'s ISO 8601 calendar date.
    d.to_string()
}

/// The custom field with `gid` on a task, when present.
pub fn custom_field<'a>(task: &'a Value, gid: &str) -> Option<&'a Value> {
    task.get("custom_fields")?
        .as_array()?
        .iter()
        .find(|f| str_of(f, "gid") == Some(gid))
}

/// The name of an enum custom field's current option (`None` when unset or absent).
pub fn enum_option_name<'a>(task: &'a Value, gid: &str) -> Option<&'a str> {
    custom_field(task, gid)
        .and_then(|f| f.get("enum_value"))
        .and_then(|e| str_of(e, "name"))
}

/// The names of the sections the task is in (across its projects).
pub fn section_names(task: &Value) -> Vec<&str> {
    task.get("memberships")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|m| m.get("section").and_then(|s| str_of(s, "name")))
                .collect()
        })
        .unwrap_or_default()
}

/// The task's status: completed → done; else in progress when the rule matches (named by
/// the section or option); else to do. A to-do or done status carries only its category's
/// name (`""` for to do, [`COMPLETED`] for done), since Asana has no status names.
pub fn status_of(task: &Value, opts: &AsanaOptions) -> Option<Status> {
    let completed = task.get("completed")?.as_bool()?;
    if completed {
        return Some(Status::new(StatusCategory::Done, COMPLETED));
    }
    let matched = match &opts.in_progress {
        Some(InProgressRule::Section { names }) => section_names(task)
            .into_iter()
            .find(|s| {
                names
                    .iter()
                    .any(|n| n.trim().eq_ignore_ascii_case(s.trim()))
            })
            .map(str::to_owned),
        Some(InProgressRule::EnumField { field_gid, options }) => enum_option_name(task, field_gid)
            .filter(|o| {
                options
                    .iter()
                    .any(|n| n.trim().eq_ignore_ascii_case(o.trim()))
            })
            .map(str::to_owned),
        None => None,
    };
    Some(match matched {
        Some(name) => Status::new(StatusCategory::InProgress, name),
        None => Status::new(StatusCategory::Todo, ""),
    })
}

/// Reads an Asana user (`{gid, name, email}`); `null` is `None`.
pub fn assignee_from(v: &Value) -> Option<Assignee> {
    let gid = str_of(v, "gid").filter(|g| !g.is_empty())?;
    Some(Assignee {
        account_id: gid.to_owned(),
        display_name: str_of(v, "name").map(str::to_owned),
        email: str_of(v, "email").map(str::to_owned),
    })
}

/// The due date: `due_on`, else the date of `due_at` in `zone` (the workspace's time zone:
/// 23:30 UTC on the 15th is the 16th in Berlin).
pub fn due_date(task: &Value, zone: &jiff::tz::TimeZone) -> Option<Date> {
    str_of(task, "due_on").and_then(parse_date).or_else(|| {
        let t =
            str_of(task, "due_at").and_then(|s| OffsetDateTime::parse(s.trim(), &Rfc3339).ok())?;
        let ts = jiff::Timestamp::from_second(t.unix_timestamp()).ok()?;
        let local = ts.to_zoned(zone.clone()).date();
        let month = time::Month::try_from(u8::try_from(local.month()).ok()?).ok()?;
        Date::from_calendar_date(
            i32::from(local.year()),
            month,
            u8::try_from(local.day()).ok()?,
        )
        .ok()
    })
}

/// The task's rich text: `html_notes`, else its plain `notes` as rich text (escaped); `None`
/// when the task object has neither.
pub fn rich_text(task: &Value) -> Option<String> {
    match str_of(task, "html_notes") {
        Some(html) => Some(html.to_owned()),
        None => task
            .get("notes")
            .map(|n| crate::rich_text::notes_to_html(n.as_str().unwrap_or_default())),
    }
}

/// The description as Markdown, from [`rich_text`]. Rich text that cannot be read falls
/// back to the plain `notes`, with a warning.
pub fn description(task: &Value) -> Option<String> {
    let html = rich_text(task)?;
    match crate::rich_text::html_to_markdown(&html) {
        Ok(md) => Some(md),
        Err(e) => {
            tracing::warn!(
                task = str_of(task, "gid").unwrap_or_default(),
                error = %ordonis_core::provider_http::bounded_error(&e.to_string()),
                "Asana's html_notes could not be read: the plain notes are used"
            );
            let notes = task
                .get("notes")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Some(crate::rich_text::notes_to_markdown(notes))
        }
    }
}

/// Maps a task object into a patch. A field absent from the object is absent from the
/// patch; a field present as `null` is set to its empty value. Priority is read only when
/// a priority field is configured and present on the task.
pub fn fields_patch(task: &Value, opts: &AsanaOptions) -> FieldPatch {
    let mut patch = FieldPatch::new();
    if !task.is_object() {
        return patch;
    }
    if let Some(n) = str_of(task, "name") {
        patch.set(FieldValue::Title(n.to_owned()));
    }
    if let Some(d) = description(task) {
        patch.set(FieldValue::Description(d));
    }
    if let Some(s) = status_of(task, opts) {
        patch.set(FieldValue::Status(s));
    }
    if let Some(a) = task.get("assignee") {
        patch.set(FieldValue::Assignee(assignee_from(a)));
    }
    if task.get("due_on").is_some() || task.get("due_at").is_some() {
        patch.set(FieldValue::DueDate(due_date(task, &opts.zone())));
    }
    if let Some(gid) = &opts.priority_field_gid
        && let Some(f) = custom_field(task, gid)
    {
        let p = f
            .get("enum_value")
            .and_then(|e| str_of(e, "name"))
            .map(|name| Priority {
                level: opts.level_of(name),
                name: name.to_owned(),
            });
        patch.set(FieldValue::Priority(p));
    }
    patch
}

/// The task's `modified_at` in ms.
pub fn modified_at_ms(task: &Value) -> Option<i64> {
    str_of(task, "modified_at").and_then(parse_time)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ordonis_core::PriorityLevel;

    #[test]
    fn due_at_is_a_date_in_the_workspace_time_zone() {
        let task = serde_json::json!({"due_on": null, "due_at": "2019-09-15T23:30:00.000Z"});
        let utc = AsanaOptions::default();
        assert_eq!(
            due_date(&task, &utc.zone()),
            Some(time::macros::date!(2019 - 09 - 15))
        );
        let berlin = AsanaOptions::from_json(&serde_json::json!({"time_zone": "Europe/Berlin"}))
            .unwrap_or_default();
        assert_eq!(
            due_date(&task, &berlin.zone()),
            Some(time::macros::date!(2019 - 09 - 16))
        );
        let la = AsanaOptions::from_json(&serde_json::json!({"time_zone": "America/Los_Angeles"}))
            .unwrap_or_default();
        assert_eq!(
            due_date(&task, &la.zone()),
            Some(time::macros::date!(2019 - 09 - 15))
        );
        assert!(
            AsanaOptions::from_json(&serde_json::json!({"time_zone": "Mars/Olympus"})).is_err()
        );
    }

    use ordonis_core::Field;
    use serde_json::json;

    fn task() -> Value {
        json!({
            "gid": "1", "name": "Buy catnip", "notes": "Mittens", "completed": false,
            "assignee": {"gid": "12345", "name": "Greg"},
            "due_on": null, "due_at": "2019-09-15T23:30:00.000Z",
            "custom_fields": [
                {"gid": "77", "enum_value": {"gid": "771", "name": "High"}},
                {"gid": "88", "enum_value": {"gid": "881", "name": "Doing"}}
            ],
            "memberships": [{"project": {"gid": "p"}, "section": {"gid": "s", "name": "In Progress"}}],
            "modified_at": "2012-02-22T02:06:58.147Z"
        })
    }

    #[test]
    fn maps_fields() {
        let opts = AsanaOptions {
            priority_field_gid: Some("77".into()),
            ..AsanaOptions::default()
        };
        let p = fields_patch(&task(), &opts);
        assert_eq!(
            p.get(Field::Title),
            Some(&FieldValue::Title("Buy catnip".into()))
        );
        assert_eq!(
            p.get(Field::Status),
            Some(&FieldValue::Status(Status::new(StatusCategory::Todo, "")))
        );
        assert_eq!(
            p.get(Field::DueDate),
            Some(&FieldValue::DueDate(parse_date("2019-09-15")))
        );
        assert_eq!(
            p.get(Field::Priority),
            Some(&FieldValue::Priority(Some(Priority {
                level: PriorityLevel::High,
                name: "High".into()
            })))
        );
        let FieldValue::Assignee(Some(a)) = p.get(Field::Assignee).unwrap() else {
            panic!()
        };
        assert_eq!(a.account_id, "12345");
        assert_eq!(modified_at_ms(&task()), Some(1_329_876_418_147));
        // No priority field configured: no priority.
        assert!(
            fields_patch(&task(), &AsanaOptions::default())
                .get(Field::Priority)
                .is_none()
        );
        assert!(fields_patch(&json!("x"), &opts).is_empty());
    }

    #[test]
    fn status_rules() {
        let mut t = task();
        let section = AsanaOptions {
            in_progress: Some(InProgressRule::Section {
                names: vec!["in progress".into()],
            }),
            ..AsanaOptions::default()
        };
        assert_eq!(
            status_of(&t, &section),
            Some(Status::new(StatusCategory::InProgress, "In Progress"))
        );
        let field = AsanaOptions {
            in_progress: Some(InProgressRule::EnumField {
                field_gid: "88".into(),
                options: vec!["Doing".into()],
            }),
            ..AsanaOptions::default()
        };
        assert_eq!(
            status_of(&t, &field),
            Some(Status::new(StatusCategory::InProgress, "Doing"))
        );
        t["custom_fields"][1]["enum_value"] = Value::Null;
        assert_eq!(
            status_of(&t, &field).unwrap().category,
            StatusCategory::Todo
        );
        t["completed"] = json!(true);
        assert_eq!(
            status_of(&t, &section),
            Some(Status::new(StatusCategory::Done, COMPLETED))
        );
    }

    #[test]
    fn levels_and_options() {
        let o = AsanaOptions::from_json(&json!({"priority_levels": {"Sev 1": "highest"}})).unwrap();
        assert_eq!(o.level_of("sev 1"), PriorityLevel::Highest);
        assert_eq!(o.level_of("Low"), PriorityLevel::Low);
        assert_eq!(o.level_of("whatever"), PriorityLevel::Medium);
        assert!(AsanaOptions::from_json(&json!({"in_progress": {"kind": "nope"}})).is_err());
        assert_eq!(
            AsanaOptions::from_json(&Value::Null).unwrap(),
            AsanaOptions::default()
        );
    }
}
