//! One field's part of an Asana update ([`Plan`]): the name, the rich-text description
//! merged into what the task holds, the due date, the assignee, the completed flag or the
//! in-progress rule, and the priority enum option.

use ordonis_core::{
    Field, FieldValue, PriorityLevel, ProviderContext, ProviderError, StatusCategory,
};
use serde_json::{Map, Value};

use super::Pusher;
use crate::client::AsanaClient;
use crate::config::{AsanaOptions, InProgressRule};
use crate::error::AsanaError;
use crate::normalize::format_date;
use crate::rich_text::Merge;

fn same_name(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// What one push wants to write, before option gids are resolved.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) data: Map<String, Value>,
    pub(super) custom: Map<String, Value>,
    pub(super) fields: Vec<Field>,
    pub(super) refused: Vec<(Field, String)>,
    /// Fields Asana already holds as asked (nothing is written for them).
    pub(super) settled: Vec<Field>,
    /// The task as it is now, read once for the fields that need it.
    current: Option<Value>,
}

impl Plan {
    async fn current(&mut self, client: &AsanaClient, gid: &str) -> Result<&Value, AsanaError> {
        if self.current.is_none() {
            self.current = Some(client.get_task(gid).await?);
        }
        Ok(self.current.get_or_insert(Value::Null))
    }
}

/// Why Asana can never hold a status: it has `completed` and, where the integration maps
/// one, an in-progress rule.
pub(crate) fn status_refusal(ctx: &ProviderContext, s: &ordonis_core::Status) -> Option<String> {
    let opts = AsanaOptions::from_json(&ctx.options).ok()?;
    let name = s.name.trim();
    let generic: &[&str] = match s.category {
        StatusCategory::Todo => &["", "to do", "todo", "not started", "incomplete"],
        StatusCategory::InProgress => &["", "in progress"],
        StatusCategory::Done => &["", "done", "completed", "complete"],
    };
    if generic.iter().any(|g| same_name(g, name)) {
        return None;
    }
    match (s.category, &opts.in_progress) {
        (StatusCategory::InProgress, Some(InProgressRule::EnumField { options, .. }))
            if options.iter().any(|o| same_name(o, name)) =>
        {
            None
        }
        (StatusCategory::InProgress, Some(InProgressRule::EnumField { options, .. })) => {
            Some(format!(
                "Asana's in-progress field has no option {name:?} (it maps: {})",
                options.join(", ")
            ))
        }
        _ => Some(format!(
            "Asana has no status {name:?}: a task is completed or not{}",
            match &opts.in_progress {
                Some(InProgressRule::Section { names }) => {
                    format!(" (in progress: the sections {})", names.join(", "))
                }
                _ => String::new(),
            }
        )),
    }
}

impl Pusher {
    /// Adds one field's part of the PUT to `plan` (or its refusal).
    pub(super) async fn plan_field(
        &self,
        ctx: &ProviderContext,
        client: &AsanaClient,
        opts: &AsanaOptions,
        gid: &str,
        v: &FieldValue,
        plan: &mut Plan,
    ) -> Result<(), ProviderError> {
        {
            match v {
                FieldValue::Title(t) => {
                    plan.data.insert("name".into(), Value::String(t.clone()));
                }
                FieldValue::Description(md) => {
                    // Written as rich text, merged into what the task holds: writing `notes`
                    // would wipe its formatting, mentions and images.
                    let current = crate::normalize::rich_text(plan.current(client, gid).await?);
                    match crate::rich_text::merge_markdown(current.as_deref(), md) {
                        Merge::Write(html) => {
                            plan.data.insert("html_notes".into(), Value::String(html));
                        }
                        Merge::Unchanged => {
                            plan.settled.push(Field::Description);
                            return Ok(());
                        }
                        Merge::Refused(reason) => {
                            plan.refused.push((Field::Description, reason));
                            return Ok(());
                        }
                    }
                }
                FieldValue::Assignee(a) => {
                    let v = match a {
                        Some(a) if !a.account_id.trim().is_empty() => {
                            Value::String(a.account_id.trim().to_owned())
                        }
                        Some(a) => match a.email.as_deref().map(str::trim) {
                            Some(e) if !e.is_empty() => Value::String(e.to_owned()),
                            _ => {
                                plan.refused.push((
                                    Field::Assignee,
                                    "the assignee has neither an Asana user gid nor an e-mail"
                                        .to_owned(),
                                ));
                                return Ok(());
                            }
                        },
                        None => Value::Null,
                    };
                    plan.data.insert("assignee".into(), v);
                }
                FieldValue::DueDate(d) => match d {
                    Some(d) => {
                        plan.data
                            .insert("due_on".into(), Value::String(format_date(*d)));
                    }
                    None => {
                        plan.data.insert("due_on".into(), Value::Null);
                        plan.data.insert("due_at".into(), Value::Null);
                        // Asana refuses to clear the due date of a task with a start date
                        // (400 for the whole PUT): clear the start date with it.
                        let has_start = plan
                            .current(client, gid)
                            .await?
                            .get("start_on")
                            .is_some_and(|s| !s.is_null());
                        if has_start {
                            plan.data.insert("start_on".into(), Value::Null);
                        }
                    }
                },
                FieldValue::Status(s) => match (s.category, &opts.in_progress) {
                    (StatusCategory::Done, _) => {
                        plan.data.insert("completed".into(), Value::Bool(true));
                    }
                    (StatusCategory::Todo, Some(InProgressRule::EnumField { field_gid, .. })) => {
                        plan.data.insert("completed".into(), Value::Bool(false));
                        plan.custom.insert(field_gid.clone(), Value::Null);
                    }
                    (StatusCategory::Todo, _) => {
                        plan.data.insert("completed".into(), Value::Bool(false));
                    }
                    (
                        StatusCategory::InProgress,
                        Some(InProgressRule::EnumField { field_gid, options }),
                    ) => {
                        let wanted = options
                            .iter()
                            .find(|o| same_name(o, &s.name))
                            .or_else(|| options.first())
                            .cloned();
                        let Some(wanted) = wanted else {
                            plan.refused.push((
                                Field::Status,
                                "the in-progress rule lists no option".to_owned(),
                            ));
                            return Ok(());
                        };
                        match self
                            .option_gid(ctx, client, field_gid, |n| same_name(n, &wanted))
                            .await
                        {
                            Ok(Some(option)) => {
                                plan.data.insert("completed".into(), Value::Bool(false));
                                plan.custom.insert(field_gid.clone(), Value::String(option));
                            }
                            Ok(None) => {
                                plan.refused.push((
                                    Field::Status,
                                    format!("the status field has no enabled option {wanted:?}"),
                                ));
                                return Ok(());
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    (StatusCategory::InProgress, Some(InProgressRule::Section { .. })) => {
                        plan.refused.push((
                            Field::Status,
                            "in progress is a board section in this integration; Ordonis \
                                 does not move tasks between sections"
                                .to_owned(),
                        ));
                        return Ok(());
                    }
                    (StatusCategory::InProgress, None) => {
                        plan.refused.push((
                            Field::Status,
                            "Asana has no in-progress state unless the integration maps \
                                 one (options.in_progress)"
                                .to_owned(),
                        ));
                        return Ok(());
                    }
                },
                FieldValue::Priority(p) => {
                    let Some(field_gid) = opts.priority_field_gid.clone() else {
                        plan.refused.push((
                            Field::Priority,
                            "no priority custom field configured (options.priority_field_gid)"
                                .to_owned(),
                        ));
                        return Ok(());
                    };
                    let value = match p {
                        None => Value::Null,
                        Some(p) => {
                            let by_name = !p.name.trim().is_empty();
                            let level: PriorityLevel = p.level;
                            let found = self
                                .option_gid(ctx, client, &field_gid, |n| {
                                    if by_name {
                                        same_name(n, &p.name)
                                    } else {
                                        opts.level_of(n) == level
                                    }
                                })
                                .await?;
                            match found {
                                Some(option) => Value::String(option),
                                None => {
                                    plan.refused.push((
                                        Field::Priority,
                                        format!(
                                            "the priority field has no enabled option for {:?}",
                                            if by_name {
                                                p.name.clone()
                                            } else {
                                                format!("{level:?}")
                                            }
                                        ),
                                    ));
                                    return Ok(());
                                }
                            }
                        }
                    };
                    plan.custom.insert(field_gid, value);
                }
            }
            plan.fields.push(v.field());
        }
        Ok(())
    }
}
