//! The edit: title, description, priority and due date in one `PUT /issue`, checked against
//! the issue's edit screen first; and the assignee, through `PUT …/assignee`.

use std::collections::BTreeSet;

use ordonis_core::{Field, FieldPatch, FieldValue, ProviderContext, PushOutcome};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::{META_TTL, Pusher, lock};
use crate::client::JiraClient;
use crate::error::JiraError;
use crate::normalize::{format_date, priority_level, priority_name};
use crate::rich_text::{Merge, merge_markdown};

impl Pusher {
    /// The edit-screen field ids for an issue's project and issue type, cached.
    async fn edit_screen(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        issue: &Value,
    ) -> Result<Option<BTreeSet<String>>, JiraError> {
        let fields = issue.get("fields");
        let of = |k: &str| {
            fields
                .and_then(|f| f.get(k))
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let cache_key = match (of("project"), of("issuetype")) {
            (Some(p), Some(t)) => Some((ctx.integration_id, p, t)),
            _ => None,
        };
        if let Some(k) = &cache_key
            && let Some((at, set)) = lock(&self.edit_meta).get(k)
            && at.elapsed() < META_TTL
        {
            return Ok(Some(set.clone()));
        }
        match client.edit_fields(id).await {
            Ok(set) => {
                if let Some(k) = cache_key {
                    let mut cache = lock(&self.edit_meta);
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(k, (Instant::now(), set.clone()));
                }
                Ok(Some(set))
            }
            // Without edit metadata, the edit's own 400 names the refused fields.
            Err(JiraError::NotFound { .. } | JiraError::Rejected { .. } | JiraError::Decode(_)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The site's priority id for a priority: by name when it has one, else the site's
    /// priority of that level (`/priority/search`, cached per integration).
    pub(crate) async fn priority_id(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        p: &ordonis_core::Priority,
    ) -> Result<Result<String, String>, JiraError> {
        let cached = lock(&self.priorities)
            .get(&ctx.integration_id)
            .filter(|(at, _)| at.elapsed() < META_TTL)
            .map(|(_, list)| list.clone());
        let list = match cached {
            Some(l) => l,
            None => {
                let l = client.priorities(10).await?;
                lock(&self.priorities).insert(ctx.integration_id, (Instant::now(), l.clone()));
                l
            }
        };
        let name = p.name.trim();
        let found = if name.is_empty() {
            list.iter()
                .find(|(_, n)| n.eq_ignore_ascii_case(priority_name(p.level)))
                .or_else(|| list.iter().find(|(_, n)| priority_level(n) == p.level))
        } else {
            list.iter()
                .find(|(_, n)| n.trim().eq_ignore_ascii_case(name))
        };
        Ok(match found {
            Some((id, _)) => Ok(id.clone()),
            None => Err(format!(
                "Jira has no priority {:?} (the site has: {})",
                if name.is_empty() {
                    priority_name(p.level)
                } else {
                    name
                },
                list.iter()
                    .map(|(_, n)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
    }

    /// Title, description, priority and due date in one edit. Fields not on the edit screen,
    /// and fields Jira's 400 names in `errors`, are refused one by one; the rest is sent.
    pub(crate) async fn edit(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        patch: &FieldPatch,
        out: &mut PushOutcome,
    ) -> Result<(), JiraError> {
        let wanted: Vec<&FieldValue> = patch
            .values()
            .filter(|v| {
                matches!(
                    v,
                    FieldValue::Title(_)
                        | FieldValue::Description(_)
                        | FieldValue::Priority(_)
                        | FieldValue::DueDate(_)
                )
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let issue = client.get_issue(id).await?;
        let screen = self.edit_screen(ctx, client, id, &issue).await?;
        // (Ordonis field, Jira field id, value)
        let mut fields: Vec<(Field, &'static str, Value)> = Vec::new();
        for v in wanted {
            let (jira_field, value) = match v {
                FieldValue::Title(t) => ("summary", Value::String(t.clone())),
                FieldValue::Description(md) => {
                    let current = issue
                        .get("fields")
                        .and_then(|f| f.get("description"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    match merge_markdown(&current, md) {
                        Merge::Write(doc) => {
                            let empty = doc
                                .get("content")
                                .and_then(Value::as_array)
                                .is_none_or(Vec::is_empty);
                            ("description", if empty { Value::Null } else { doc })
                        }
                        Merge::Unchanged => {
                            out.settled.push(Field::Description);
                            continue;
                        }
                        Merge::Refused(reason) => {
                            out.refused.push((Field::Description, reason));
                            continue;
                        }
                    }
                }
                FieldValue::Priority(p) => match p {
                    None => ("priority", Value::Null),
                    Some(p) => match self.priority_id(ctx, client, p).await? {
                        Ok(pid) => ("priority", serde_json::json!({ "id": pid })),
                        Err(reason) => {
                            out.refused.push((Field::Priority, reason));
                            continue;
                        }
                    },
                },
                FieldValue::DueDate(d) => (
                    "duedate",
                    d.map_or(Value::Null, |d| Value::String(format_date(d))),
                ),
                FieldValue::Status(_) | FieldValue::Assignee(_) => continue,
            };
            if let Some(screen) = &screen
                && !screen.contains(jira_field)
            {
                out.refused.push((
                    v.field(),
                    format!("{jira_field} is not on the issue's edit screen in Jira"),
                ));
                continue;
            }
            fields.push((v.field(), jira_field, value));
        }
        // Each round either succeeds or takes at least one named field out.
        while !fields.is_empty() {
            let body = Value::Object(
                fields
                    .iter()
                    .map(|(_, k, v)| ((*k).to_owned(), v.clone()))
                    .collect::<Map<String, Value>>(),
            );
            match self.write(ctx, id, || client.edit_issue(id, &body)).await {
                Ok(()) => {
                    out.applied.extend(fields.iter().map(|(f, _, _)| *f));
                    return Ok(());
                }
                Err(JiraError::Rejected {
                    status,
                    message,
                    field_errors,
                }) => {
                    let named: Vec<usize> = (0..fields.len())
                        .filter(|i| field_errors.contains_key(fields[*i].1))
                        .collect();
                    if named.is_empty() {
                        let reason = format!("Jira rejected the edit ({status}): {message}");
                        out.refused
                            .extend(fields.iter().map(|(f, _, _)| (*f, reason.clone())));
                        return Ok(());
                    }
                    for i in named.into_iter().rev() {
                        let (f, k, _) = fields.remove(i);
                        let why = field_errors.get(k).map_or("refused", String::as_str);
                        out.refused
                            .push((f, format!("Jira refused {k} ({status}): {why}")));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The assignee (`None` unassigns); a 4xx is a refusal of this field alone.
    pub(crate) async fn assign(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        patch: &FieldPatch,
        out: &mut PushOutcome,
    ) -> Result<(), JiraError> {
        let Some(FieldValue::Assignee(a)) = patch.get(Field::Assignee) else {
            return Ok(());
        };
        let account = a.as_ref().map(|a| a.account_id.as_str());
        match self.write(ctx, id, || client.assign(id, account)).await {
            Ok(()) => out.applied.push(Field::Assignee),
            Err(JiraError::Rejected {
                status, message, ..
            }) => out.refused.push((
                Field::Assignee,
                format!("Jira rejected the assignee ({status}): {message}"),
            )),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}
