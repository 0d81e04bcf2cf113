//! Creating Asana tasks from CollabHub, exactly once: the [`CreateProvider`] of
//! [`AsanaProvider`].
//!
//! **Where.** `draft.parent` (a task gid) makes a subtask, `POST /tasks/{parent}/subtasks`
//! (the spec's `createSubtaskForTask`, which documents the parent as the path and needs no
//! workspace); when the scope does not sync subtasks (`"subtasks": false`) the subtask is
//! also added to the project, so that the task it belongs to stays in scope. Otherwise
//! `POST /tasks` with `projects: [project]` (the workspace is the project's). The project is
//! `draft.project`, else the scope's first project; with neither the create is refused
//! ([`ProviderError::Terminal`]).
//!
//! **What.** `name` (the title), `html_notes` (the Markdown description as Asana rich text,
//! [`crate::rich_text::markdown_to_html`]), `assignee` (an Asana user or agent gid, else an
//! e-mail), `due_on`, and `completed` when the status is done. Priority, an in-progress
//! state and other statuses are left to the push that follows the create. The request
//! carries `Asana-Enable: ai_teammate_actors` when it names an assignee: Asana accepts an AI
//! teammate's gid as an assignee only under that opt-in (its early access).
//!
//! **The marker** ([`CreateMarker`], the option `create_marker`):
//!
//! - `"external"` (default): `external: {"gid": "ordonis:<marker>"}`, Asana's custom
//!   external data, which only OAuth apps can set (and see). [`CreateProvider::find_created`]
//!   asks `GET /tasks/external:ordonis:<marker>` (a `404`: none). Exact, unique (Asana keeps
//!   an app's external gids unique) and one request, whatever the project's size.
//! - `"name"`: for a personal access token, which cannot set external data. Nothing is
//!   stored; a task is ours when its name is the draft's title, its `created_by` is the
//!   token's user (`GET /users/me`) and its `created_at` is at or after the lost call's start
//!   (minus [`CLOCK_MARGIN_MS`] for clock skew). The candidates are the project's tasks
//!   modified since then (`GET /tasks?project=…&modified_since=…`: a new task's `modified_at`
//!   is at least its `created_at`, so nothing ours is missed) or, for a subtask, the parent's
//!   subtasks (`GET /tasks/{parent}/subtasks`, which has no `modified_since`). **Weakness:**
//!   two tasks with the same title created by the token in that window (two CollabHub tasks
//!   of one title filed together, or a person using the integration's token) cannot be told
//!   apart: then none is adopted and the lookup fails with [`ProviderError::Terminal`]
//!   naming them, rather than guessing or creating a third.
//!
//! **Errors.** A `403` (the token may not add tasks to the project or see the parent) is
//! [`ProviderError::Forbidden`]; a `400` or `404` (an unknown project, parent or assignee,
//! external data refused to a personal access token) is [`ProviderError::Terminal`], both
//! with Asana's `errors[].message`; a `429` is [`ProviderError::RateLimited`]; a `5xx` or a
//! timeout is [`ProviderError::Retryable`]: the task may exist although its answer was lost,
//! which is what `find_created` is for.

use async_trait::async_trait;
use ordonis_core::{
    CreateDraft, CreateProvider, Field, FieldValue, ObjectKey, ProviderContext, ProviderError,
    RemoteTask, StatusCategory,
};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{AsanaClient, TASK_OPT_FIELDS, check_gid};
use crate::config::{AsanaOptions, CreateMarker};
use crate::error::AsanaError;
use crate::normalize::{fields_patch, format_date, modified_at_ms, parse_time};
use crate::provider::AsanaProvider;
use crate::scope::AsanaScope;
use crate::webhook::TASK;

/// What prefixes our marker in a task's external gid (`ordonis:<marker>`).
pub const EXTERNAL_PREFIX: &str = "ordonis:";

/// The `Asana-Enable` feature under which agents are read and assigned.
pub const AI_TEAMMATES: &str = "ai_teammate_actors";

/// The skew allowed between our clock and Asana's when the `name` marker looks for a lost
/// create (5 minutes).
pub const CLOCK_MARGIN_MS: i64 = 5 * 60 * 1000;

/// The task fields a create answer and a lookup are read with: a fetch's, and the marker's.
pub fn create_opt_fields() -> String {
    format!("{TASK_OPT_FIELDS},external,created_by,created_at")
}

/// The external gid of a marker (`ordonis:<marker>`), checked so that it can stand in a URL
/// path as `external:<gid>`: 1 to 200 ASCII letters, digits, `-`, `_`, `.` or `~`.
pub fn external_gid(marker: &str) -> Result<String, ProviderError> {
    let ok = !marker.is_empty()
        && marker.len() <= 200
        && marker
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
    if ok {
        Ok(format!("{EXTERNAL_PREFIX}{marker}"))
    } else {
        Err(ProviderError::Terminal(format!(
            "the marker {marker:?} cannot be an Asana external gid (1 to 200 of A-Z a-z 0-9 - _ . ~)"
        )))
    }
}

/// A task (as Asana answers it with [`create_opt_fields`]) as a [`RemoteTask`].
pub fn remote_task(task: &Value, opts: &AsanaOptions) -> Result<RemoteTask, AsanaError> {
    let gid = task
        .get("gid")
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| AsanaError::Decode("a task without a gid".to_owned()))?;
    Ok(RemoteTask {
        key: ObjectKey::new(gid, TASK),
        fields: fields_patch(task, opts),
        modified_at_ms: modified_at_ms(task).unwrap_or(0),
        url: task
            .get("permalink_url")
            .and_then(Value::as_str)
            .map(str::to_owned),
        marker: marker_of(task),
    })
}

/// Our create's marker in a task's external gid (`ordonis:<marker>`), if it carries one.
pub fn marker_of(task: &Value) -> Option<String> {
    task.get("external")
        .and_then(|e| e.get("gid"))
        .and_then(Value::as_str)
        .and_then(|g| g.strip_prefix(EXTERNAL_PREFIX))
        .map(str::to_owned)
}

/// The task fields a draft is created with (see the module docs).
pub fn create_data(draft: &CreateDraft<'_>) -> Map<String, Value> {
    let mut data = Map::new();
    for v in draft.fields.values() {
        match v {
            FieldValue::Title(t) => {
                data.insert("name".into(), Value::String(t.clone()));
            }
            FieldValue::Description(md) if !md.trim().is_empty() => {
                data.insert(
                    "html_notes".into(),
                    Value::String(crate::rich_text::markdown_to_html(md)),
                );
            }
            FieldValue::Assignee(Some(a)) => {
                let id = Some(a.account_id.trim())
                    .filter(|s| !s.is_empty())
                    .or_else(|| a.email.as_deref().map(str::trim).filter(|s| !s.is_empty()));
                if let Some(id) = id {
                    data.insert("assignee".into(), Value::String(id.to_owned()));
                }
            }
            FieldValue::DueDate(Some(d)) => {
                data.insert("due_on".into(), Value::String(format_date(*d)));
            }
            FieldValue::Status(s) if s.category == StatusCategory::Done => {
                data.insert("completed".into(), Value::Bool(true));
            }
            _ => {}
        }
    }
    data
}

/// Where a draft is created: `(project, parent)`, checked.
fn place<'a>(
    ctx: &ProviderContext,
    draft: &'a CreateDraft<'_>,
    scope: &'a AsanaScope,
) -> Result<(Option<&'a str>, Option<&'a str>), ProviderError> {
    let project = draft.project.or(scope.projects.first().map(String::as_str));
    let project = project.map(check_gid).transpose()?;
    let parent = draft.parent.map(check_gid).transpose()?;
    if project.is_none() && parent.is_none() {
        return Err(ProviderError::Terminal(format!(
            "no Asana project to create the task in: the create names none and integration {}'s \
             scope lists no project",
            ctx.integration_id
        )));
    }
    Ok((project, parent))
}

/// A create's error for the engine (see the module docs).
fn create_error(e: AsanaError, marker: CreateMarker) -> ProviderError {
    match e {
        AsanaError::Forbidden { what, message } => ProviderError::Forbidden(format!(
            "Asana refused to create the task in {what} (403): {message}"
        )),
        AsanaError::NotFound { what, message } => ProviderError::Terminal(format!(
            "Asana has no {what} to create the task in (404): {message}"
        )),
        AsanaError::Rejected { status, message } => {
            let hint = if marker == CreateMarker::External && message.contains("external") {
                " (custom external data needs an OAuth token; with a personal access token set \
                 the option create_marker to \"name\")"
            } else {
                ""
            };
            ProviderError::Terminal(format!(
                "Asana refused to create the task ({status}): {message}{hint}"
            ))
        }
        other => other.into(),
    }
}

impl AsanaClient {
    /// `POST /tasks` (no `parent`) or `POST /tasks/{parent}/subtasks` with `{"data": data}`
    /// and `headers`; the task made, with [`create_opt_fields`].
    pub async fn create_task(
        &self,
        parent: Option<&str>,
        data: &Map<String, Value>,
        headers: &[(&str, &str)],
    ) -> Result<Value, AsanaError> {
        let projects = data
            .get("projects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|p| !p.is_empty());
        let (path, what) = match (parent, projects) {
            (Some(p), projects) => {
                let p = check_gid(p)?;
                let also = projects
                    .map(|ps| format!(" (and project {ps})"))
                    .unwrap_or_default();
                (
                    format!("/tasks/{p}/subtasks"),
                    format!("parent task {p}{also}"),
                )
            }
            (None, projects) => (
                "/tasks".to_owned(),
                format!("project {}", projects.unwrap_or_default()),
            ),
        };
        let fields = create_opt_fields();
        let resp = self
            .call_with(
                Method::POST,
                &path,
                &[("opt_fields", fields.as_str())],
                Some(&json!({ "data": data })),
                headers,
                &what,
            )
            .await?;
        self.data(resp).await
    }

    /// `GET /tasks/external:<external gid>`: the task carrying it, `None` when none does.
    pub async fn task_by_external(&self, external: &str) -> Result<Option<Value>, AsanaError> {
        let ok = !external.is_empty()
            && external.len() <= 1024
            && external.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':')
            });
        if !ok {
            return Err(AsanaError::Config(format!(
                "external gid {external:?} cannot stand in a URL path"
            )));
        }
        let fields = create_opt_fields();
        match self
            .call(
                Method::GET,
                &format!("/tasks/external:{external}"),
                &[("opt_fields", fields.as_str())],
                None,
                &format!("task external:{external}"),
            )
            .await
        {
            Ok(resp) => Ok(Some(self.data(resp).await?)),
            Err(AsanaError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /tasks/{parent}/subtasks`, every page, with [`create_opt_fields`].
    pub async fn subtasks(&self, parent: &str) -> Result<Vec<Value>, AsanaError> {
        let parent = check_gid(parent)?;
        let fields = create_opt_fields();
        self.list_all(
            &format!("/tasks/{parent}/subtasks"),
            &[("opt_fields", fields.as_str())],
            &format!("the subtasks of {parent}"),
        )
        .await
    }

    /// `GET /tasks?project=…&modified_since=…`, every page, with [`create_opt_fields`].
    pub async fn project_tasks_since(
        &self,
        project: &str,
        modified_since: &str,
    ) -> Result<Vec<Value>, AsanaError> {
        let project = check_gid(project)?;
        let fields = create_opt_fields();
        self.list_all(
            "/tasks",
            &[
                ("project", project),
                ("modified_since", modified_since),
                ("opt_fields", fields.as_str()),
            ],
            &format!("project {project}"),
        )
        .await
    }
}

/// The candidates of a `name`-marker lookup that are ours: named `title`, created by `me`, at
/// or after `since_ms`.
pub fn created_by_us<'a>(
    tasks: &'a [Value],
    title: &str,
    me: &str,
    since_ms: i64,
) -> Vec<&'a Value> {
    tasks
        .iter()
        .filter(|t| t.get("name").and_then(Value::as_str) == Some(title))
        .filter(|t| {
            t.get("created_by")
                .and_then(|c| c.get("gid"))
                .and_then(Value::as_str)
                == Some(me)
        })
        .filter(|t| {
            t.get("created_at")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .is_some_and(|at| at >= since_ms)
        })
        .collect()
}

fn rfc3339_ms(ms: i64) -> Result<String, ProviderError> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| ProviderError::BadInput(format!("time {ms} ms: {e}")))?;
    t.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| ProviderError::BadInput(format!("time {ms} ms: {e}")))
}

#[async_trait]
impl CreateProvider for AsanaProvider {
    async fn create_task(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
    ) -> Result<RemoteTask, ProviderError> {
        let opts = Self::options(ctx)?;
        let scope = AsanaScope::parse(&ctx.scope)?;
        let (project, parent) = place(ctx, draft, &scope)?;
        let client = self.client(ctx)?;
        let mut data = create_data(draft);
        if let Some(p) = project
            && (parent.is_none() || !scope.subtasks)
        {
            data.insert("projects".into(), json!([p]));
        }
        if opts.create_marker == CreateMarker::External {
            data.insert(
                "external".into(),
                json!({ "gid": external_gid(draft.marker)? }),
            );
        }
        let headers: &[(&str, &str)] = if data.contains_key("assignee") {
            &[("Asana-Enable", AI_TEAMMATES)]
        } else {
            &[]
        };
        let task = client
            .create_task(parent, &data, headers)
            .await
            .map_err(|e| create_error(e, opts.create_marker))?;
        Ok(remote_task(&task, &opts)?)
    }

    async fn find_created(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
        since_ms: i64,
    ) -> Result<Option<RemoteTask>, ProviderError> {
        let opts = Self::options(ctx)?;
        let client = self.client(ctx)?;
        let read_error = |e: AsanaError| match e {
            AsanaError::Forbidden { what, message } => {
                ProviderError::Forbidden(format!("Asana refused to show {what} (403): {message}"))
            }
            other => other.into(),
        };
        if opts.create_marker == CreateMarker::External {
            let ext = external_gid(draft.marker)?;
            let found = client.task_by_external(&ext).await.map_err(read_error)?;
            return found
                .map(|t| remote_task(&t, &opts))
                .transpose()
                .map_err(Into::into);
        }
        let Some(FieldValue::Title(title)) = draft.fields.get(Field::Title) else {
            return Err(ProviderError::Terminal(
                "the `name` create marker needs a title to find a create whose answer was lost"
                    .to_owned(),
            ));
        };
        let scope = AsanaScope::parse(&ctx.scope)?;
        let (project, parent) = place(ctx, draft, &scope)?;
        let me = client.me().await.map_err(read_error)?;
        let me = me
            .get("gid")
            .and_then(Value::as_str)
            .ok_or_else(|| ProviderError::BadInput("GET /users/me without a gid".to_owned()))?;
        let from = since_ms.saturating_sub(CLOCK_MARGIN_MS);
        let tasks = match (parent, project) {
            (Some(p), _) => client.subtasks(p).await,
            (None, Some(p)) => client.project_tasks_since(p, &rfc3339_ms(from)?).await,
            (None, None) => return Ok(None),
        }
        .map_err(read_error)?;
        match created_by_us(&tasks, title, me, from).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(remote_task(one, &opts)?)),
            many => {
                let gids: Vec<&str> = many
                    .iter()
                    .filter_map(|t| t.get("gid").and_then(Value::as_str))
                    .collect();
                Err(ProviderError::Terminal(format!(
                    "{} Asana tasks named {title:?} were created by this integration's token \
                     since the lost create ({}): the `name` create marker cannot tell which is \
                     this task's, so none is adopted; link the right one by hand (or use the \
                     `external` marker with an OAuth token)",
                    gids.len(),
                    gids.join(", ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordonis_core::{Assignee, FieldPatch, Status};

    #[test]
    fn markers_are_path_safe() {
        assert_eq!(
            external_gid("tsk_0193ab-7f").ok().as_deref(),
            Some("ordonis:tsk_0193ab-7f")
        );
        assert!(external_gid("").is_err());
        assert!(external_gid("a/../b").is_err());
        assert!(external_gid("a?b").is_err());
    }

    #[test]
    fn the_data_holds_what_a_create_can_set() {
        let fields = FieldPatch::new()
            .with(FieldValue::Title("Fix login".into()))
            .with(FieldValue::Description("**now**".into()))
            .with(FieldValue::Assignee(Some(Assignee {
                account_id: String::new(),
                display_name: None,
                email: Some("ann@example.com".into()),
            })))
            .with(FieldValue::Status(Status::new(
                StatusCategory::Done,
                "Done",
            )));
        let draft = CreateDraft {
            marker: "m",
            fields: &fields,
            project: None,
            issue_type: None,
            parent: None,
        };
        let d = create_data(&draft);
        assert_eq!(d["name"], "Fix login");
        assert_eq!(d["html_notes"], "<body><strong>now</strong></body>");
        assert_eq!(d["assignee"], "ann@example.com");
        assert_eq!(d["completed"], true);
        let todo = FieldPatch::new().with(FieldValue::Status(Status::new(
            StatusCategory::InProgress,
            "Doing",
        )));
        let d = create_data(&CreateDraft {
            fields: &todo,
            ..draft
        });
        assert!(!d.contains_key("completed"), "{d:?}");
    }

    #[test]
    fn only_our_recent_creation_of_that_name_matches() {
        let t = |gid: &str, name: &str, by: &str, at: &str| json!({"gid": gid, "name": name, "created_by": {"gid": by}, "created_at": at});
        let since = parse_time("2026-12-07T10:00:00Z").unwrap_or_default();
        let tasks = vec![
            t("1", "Fix", "me", "2026-12-07T10:00:01Z"),
            t("2", "Fix", "other", "2026-12-07T10:00:01Z"),
            t("3", "Fix", "me", "2026-12-07T09:59:59Z"),
            t("4", "Fix it", "me", "2026-12-07T10:00:01Z"),
        ];
        let found: Vec<&str> = created_by_us(&tasks, "Fix", "me", since)
            .iter()
            .filter_map(|t| t["gid"].as_str())
            .collect();
        assert_eq!(found, ["1"]);
    }
}
