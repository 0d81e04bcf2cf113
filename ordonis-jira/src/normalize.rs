//! Mapping a Jira issue (REST v2 webhook shape or REST v3 response) into Ordonis fields.
//!
//! Everything here works on `serde_json::Value` and ignores what it does not know, so an
//! unexpected field or a missing one never makes parsing fail.

use ordonis_core::{
    Assignee, Field, FieldPatch, FieldValue, Priority, PriorityLevel, Status, StatusCategory,
};
use serde_json::Value;
#[cfg(test)]
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// The issue fields the adapter reads (the `fields=` list of a fetch).
pub const MAPPED_FIELDS: &str =
    "summary,description,status,assignee,priority,duedate,updated,project,issuetype";

/// Maps a Jira field id (or, for old payloads, its display name) to an Ordonis field.
///
/// ```
/// use ordonis_core::Field;
/// assert_eq!(ordonis_jira::normalize::field_for("duedate"), Some(Field::DueDate));
/// assert_eq!(ordonis_jira::normalize::field_for("Status"), Some(Field::Status));
/// assert_eq!(ordonis_jira::normalize::field_for("labels"), None);
/// ```
pub fn field_for(jira_field: &str) -> Option<Field> {
    let norm: String = jira_field
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    match norm.as_str() {
        "summary" => Some(Field::Title),
        "description" => Some(Field::Description),
        "status" => Some(Field::Status),
        "assignee" => Some(Field::Assignee),
        "priority" => Some(Field::Priority),
        "duedate" => Some(Field::DueDate),
        _ => None,
    }
}

/// Maps Jira's `statusCategory.key` to a category (`new`, `indeterminate`, `done`; anything
/// else, such as `undefined`, is treated as not started).
pub fn status_category(key: &str) -> StatusCategory {
    match key {
        "indeterminate" => StatusCategory::InProgress,
        "done" => StatusCategory::Done,
        _ => StatusCategory::Todo,
    }
}

/// Maps a priority name to a level: Jira's default scheme (Highest, High, Medium, Low, Lowest)
/// plus a few common aliases; unknown names are `Medium`.
pub fn priority_level(name: &str) -> PriorityLevel {
    match name.trim().to_ascii_lowercase().as_str() {
        "highest" | "blocker" | "critical" | "p0" | "p1" => PriorityLevel::Highest,
        "high" | "major" | "p2" => PriorityLevel::High,
        "low" | "minor" | "p4" => PriorityLevel::Low,
        "lowest" | "trivial" | "p5" => PriorityLevel::Lowest,
        _ => PriorityLevel::Medium,
    }
}

/// The Jira name Ordonis writes for a level when the priority carries no name of its own.
pub fn priority_name(level: PriorityLevel) -> &'static str {
    match level {
        PriorityLevel::Highest => "Highest",
        PriorityLevel::High => "High",
        PriorityLevel::Medium => "Medium",
        PriorityLevel::Low => "Low",
        PriorityLevel::Lowest => "Lowest",
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Reads a Jira status object (`{name, statusCategory: {key}}`).
pub fn status_from(v: &Value) -> Option<Status> {
    let name = str_of(v, "name")?;
    let category = v
        .get("statusCategory")
        .and_then(|c| str_of(c, "key"))
        .map(status_category)
        .unwrap_or_default();
    Some(Status::new(category, name))
}

/// A Jira account's kind: `accountType: "app"` is an app (an agent, a bot), anything else
/// (`atlassian`, `customer`, none) a person.
pub(crate) fn account_kind(user: &Value) -> ordonis_core::PersonKind {
    match str_of(user, "accountType") {
        Some("app") => ordonis_core::PersonKind::Agent,
        _ => ordonis_core::PersonKind::Human,
    }
}

/// Reads a Jira user object (`accountId`, `displayName`, `emailAddress`); `null` or a user
/// without an account id is `None`.
pub fn assignee_from(v: &Value) -> Option<Assignee> {
    let account_id = str_of(v, "accountId")?;
    Some(Assignee {
        account_id: account_id.to_owned(),
        display_name: str_of(v, "displayName").map(str::to_owned),
        email: str_of(v, "emailAddress").map(str::to_owned),
    })
}

/// Reads a Jira priority object (`{name}`).
pub fn priority_from(v: &Value) -> Option<Priority> {
    let name = str_of(v, "name")?;
    Some(Priority {
        level: priority_level(name),
        name: name.to_owned(),
    })
}

/// A description as Markdown: an ADF document (REST v3) is converted ([`crate::rich_text`]); `null`
/// is empty. A string is REST v2 wiki markup (webhooks), which is never taken as the value:
/// `None`, and the caller reads the description from REST v3 instead.
pub fn description_markdown(v: &Value) -> Option<String> {
    match v {
        Value::Object(_) => Some(crate::rich_text::adf_to_markdown(v)),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Parses Jira's timestamps (`2024-12-29T08:41:23.303+0530`, or RFC 3339) to epoch ms.
///
/// ```
/// let ms = ordonis_jira::normalize::parse_jira_time("2024-12-29T08:41:23.303+0530");
/// assert_eq!(ms, Some(1_735_441_883_303));
/// ```
pub fn parse_jira_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(to_ms(t));
    }
    // Jira: `[datetime].[millis][+-]HHMM`
    let (dt, off) = match s.len().checked_sub(5) {
        Some(i) if s.is_char_boundary(i) => s.split_at(i),
        _ => return None,
    };
    let sign = match off.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return None,
    };
    let hours: i8 = off.get(1..3)?.parse().ok()?;
    let minutes: i8 = off.get(3..5)?.parse().ok()?;
    let offset = UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?;
    let with_frac =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let without = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let local = PrimitiveDateTime::parse(dt, &with_frac)
        .or_else(|_| PrimitiveDateTime::parse(dt, &without))
        .ok()?;
    Some(to_ms(local.assume_offset(offset)))
}

fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Parses a `YYYY-MM-DD` due date.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// Formats a due date as `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    // `time`'s ISO 8601 calendar date.
    d.to_string()
}

/// Maps an issue's `fields` object into a patch. A field absent from the object is absent from
/// the patch; a field present as `null` is set to its empty value.
pub fn fields_patch(fields: &Value) -> FieldPatch {
    let mut patch = FieldPatch::new();
    let Some(obj) = fields.as_object() else {
        return patch;
    };
    if let Some(s) = obj.get("summary").and_then(Value::as_str) {
        patch.set(FieldValue::Title(s.to_owned()));
    }
    if let Some(d) = obj.get("description").and_then(description_markdown) {
        patch.set(FieldValue::Description(d));
    }
    if let Some(st) = obj.get("status").and_then(status_from) {
        patch.set(FieldValue::Status(st));
    }
    if let Some(a) = obj.get("assignee") {
        patch.set(FieldValue::Assignee(assignee_from(a)));
    }
    if let Some(p) = obj.get("priority") {
        patch.set(FieldValue::Priority(priority_from(p)));
    }
    if let Some(d) = obj.get("duedate") {
        patch.set(FieldValue::DueDate(d.as_str().and_then(parse_date)));
    }
    patch
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wiki_markup_is_never_the_description() {
        let v2 = json!({"summary": "s", "description": "h2. Title\n* item"});
        assert_eq!(fields_patch(&v2).get(Field::Description), None);
        let v3 = json!({"description": {"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Title"}]}]}});
        assert_eq!(
            fields_patch(&v3).get(Field::Description),
            Some(&FieldValue::Description("## Title".into()))
        );
        assert_eq!(
            fields_patch(&json!({"description": null})).get(Field::Description),
            Some(&FieldValue::Description(String::new()))
        );
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_jira_time("2017-01-30T18:32:14.716+0100"),
            Some(1_485_797_534_716)
        );
        assert_eq!(
            parse_jira_time("2024-01-01T00:00:00Z"),
            Some(1_704_067_200_000)
        );
        assert_eq!(parse_jira_time("6/13/2019, 12:51:58 PM,687"), None);
        assert_eq!(parse_jira_time("é"), None);
        assert_eq!(parse_jira_time(""), None);
        assert_eq!(format_date(parse_date("2026-03-04").unwrap()), "2026-03-04");
    }
}
