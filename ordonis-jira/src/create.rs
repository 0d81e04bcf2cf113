//! Creating issues (REST v3), the [`CreateProvider`] of [`JiraProvider`].
//!
//! A create reads the project's create metadata first
//! (`GET /rest/api/3/issue/createmeta/{project}/issuetypes`, then
//! `…/issuetypes/{issueTypeId}` for the screen's fields): the issue type is found by name,
//! the task's fields are sent only where the create screen has them (what it lacks is left to
//! the push that follows the create), and a required field without a default that the task
//! does not set is filled from the integration's `create_fields` option, as required
//! transition-screen fields are from `transition_fields`. A required field nothing fills
//! refuses the create before anything is written, naming the field.
//!
//! The issue is created with our task's id in the issue property [`MARKER_PROPERTY`]
//! (`{"task_id": …}`), set in the create call itself. Jira's `POST /issue` takes no
//! idempotency key, so when a create's answer is lost, [`CreateProvider::find_created`]
//! looks for the property among the integration's own recent creations before anything is
//! created again.

use async_trait::async_trait;
use ordonis_core::{
    CreateDraft, CreateProvider, FieldValue, ObjectKey, Provider, ProviderContext, ProviderError,
    RemoteTask,
};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{JiraClient, SearchRequest, field_label, required_without_default};
use crate::config::{JiraOptions, time_zone};
use crate::error::JiraError;
use crate::normalize::format_date;
use crate::provider::JiraProvider;
use crate::repair::jql_date;
use crate::rich_text::markdown_to_adf;
use crate::webhook::{ISSUE, remote_task};

/// The default of the `create_lookup_delay_s` option: a search within this many seconds of
/// a lost create may not see the issue yet (Jira's search is eventually consistent).
pub const DEFAULT_CREATE_LOOKUP_DELAY_S: u64 = 10;

/// The issue property that holds our task's id (`{"task_id": …}`).
pub const MARKER_PROPERTY: &str = "ordonis";

/// The issue type a create uses when the draft names none.
pub const DEFAULT_ISSUE_TYPE: &str = "Task";

/// How far before the lost create's start [`CreateProvider::find_created`] searches: JQL
/// dates have minute granularity, and our clock and Jira's may disagree.
pub const FIND_MARGIN_MS: i64 = 5 * 60 * 1000;

/// At most this many search pages are read looking for a lost create.
pub const FIND_MAX_PAGES: usize = 20;

/// At most this many pages of create metadata are read (200 entries each).
const META_MAX_PAGES: usize = 10;

/// Create metadata page size (Jira's maximum).
const META_PAGE_SIZE: usize = 200;

/// A project key or id before it goes into a URL path or a JQL string.
fn check_project(project: &str) -> Result<&str, ProviderError> {
    let p = project.trim();
    if !p.is_empty() && p.len() <= 255 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(p)
    } else {
        Err(ProviderError::Terminal(format!(
            "invalid Jira project key {project:?}"
        )))
    }
}

/// The draft's project, or why there is none.
fn project_of<'a>(draft: &CreateDraft<'a>) -> Result<&'a str, ProviderError> {
    match draft.project.map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => check_project(p),
        None => Err(ProviderError::Terminal(
            "no project to create in: give one in the call or the integration's create defaults"
                .to_owned(),
        )),
    }
}

/// A page's entries under any of `keys` (Jira's answers name the list differently across
/// versions: `issueTypes` or `createMetaIssueType`, `fields` or `results`).
fn page_entries(v: &Value, keys: &[&str]) -> Vec<Value> {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_array))
        .cloned()
        .unwrap_or_default()
}

impl JiraClient {
    /// Every entry of a paged create-metadata list (`startAt`/`maxResults`/`total`).
    async fn create_meta_pages(
        &self,
        path: &str,
        keys: &[&str],
        what: &str,
    ) -> Result<Vec<Value>, JiraError> {
        let mut out = Vec::new();
        let mut start = 0usize;
        for _ in 0..META_MAX_PAGES {
            let rb = self.request(
                Method::GET,
                &format!("{path}?startAt={start}&maxResults={META_PAGE_SIZE}"),
            );
            let v: Value = self.json(self.send(rb, what).await?).await?;
            let entries = page_entries(&v, keys);
            let n = entries.len();
            out.extend(entries);
            let total = v
                .get("total")
                .and_then(Value::as_u64)
                .and_then(|t| usize::try_from(t).ok());
            start += n;
            if n == 0 || total.is_none_or(|t| start >= t) {
                break;
            }
        }
        Ok(out)
    }

    /// The issue types a project's issues can be created with
    /// (`GET /rest/api/3/issue/createmeta/{project}/issuetypes`, every page).
    pub async fn create_issue_types(&self, project: &str) -> Result<Vec<Value>, JiraError> {
        self.create_meta_pages(
            &format!("/rest/api/3/issue/createmeta/{project}/issuetypes"),
            &["issueTypes", "createMetaIssueType", "values"],
            &format!("project {project}"),
        )
        .await
    }

    /// The create screen's fields for a project and issue type
    /// (`GET /rest/api/3/issue/createmeta/{project}/issuetypes/{issueTypeId}`, every page):
    /// `FieldCreateMetadata` objects (`fieldId`, `name`, `required`, `hasDefaultValue`, …).
    pub async fn create_fields(
        &self,
        project: &str,
        issue_type_id: &str,
    ) -> Result<Vec<Value>, JiraError> {
        let type_id = crate::client::check_issue_ref(issue_type_id)?;
        self.create_meta_pages(
            &format!("/rest/api/3/issue/createmeta/{project}/issuetypes/{type_id}"),
            &["fields", "results", "values"],
            &format!("project {project}"),
        )
        .await
    }

    /// `POST /rest/api/3/issue` with an `IssueUpdateDetails` body; answers `{id, key, self}`.
    pub async fn create_issue(&self, body: &Value) -> Result<Value, JiraError> {
        let rb = self.request(Method::POST, "/rest/api/3/issue").json(body);
        self.json(self.send(rb, "creating an issue").await?).await
    }
}

/// A failure reading the create metadata of `project`, for the engine.
fn meta_error(e: JiraError, project: &str) -> ProviderError {
    match e {
        JiraError::NotFound { .. } => ProviderError::Terminal(format!(
            "Jira has no project {project} (or the API account cannot see it)"
        )),
        JiraError::Unauthorized {
            status: 403,
            message,
        } => ProviderError::Forbidden(format!(
            "the API account may not read the create screen of project {project}: {message}"
        )),
        e => e.into(),
    }
}

/// A failure of the create call itself. Anything temporary (5xx, a timeout, a dropped
/// connection) stays retryable: the issue may exist even though its answer was lost.
fn create_error(e: JiraError, project: &str) -> ProviderError {
    match e {
        JiraError::Rejected {
            status, message, ..
        } => ProviderError::Terminal(format!(
            "Jira refused to create the issue in project {project} ({status}): {message}"
        )),
        JiraError::Unauthorized {
            status: 403,
            message,
        } => ProviderError::Forbidden(format!(
            "the API account cannot create issues in project {project}: {message}"
        )),
        JiraError::NotFound { .. } => ProviderError::Terminal(format!(
            "Jira answered 404 to a create in project {project}"
        )),
        e => e.into(),
    }
}

/// The create screen's fields by id (from a list of `FieldCreateMetadata`).
fn screen_by_id(meta: &[Value]) -> Vec<(String, &Value)> {
    meta.iter()
        .filter_map(|f| {
            let id = f
                .get("fieldId")
                .or_else(|| f.get("key"))
                .and_then(Value::as_str)?;
            Some((id.to_owned(), f))
        })
        .collect()
}

/// Fills the create screen's fields the task does not set from `create_fields` (by field id,
/// else by name, case-insensitive). `Err` names the required fields without a default that
/// nothing fills.
fn fill_screen(
    screen: &[(String, &Value)],
    opts: &JiraOptions,
    fields: &mut Map<String, Value>,
) -> Result<(), Vec<String>> {
    let mut missing = Vec::new();
    for (id, meta) in screen {
        if fields.contains_key(id) {
            continue;
        }
        let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
        let given = opts.create_fields.get(id).or_else(|| {
            opts.create_fields
                .iter()
                .find(|(k, _)| !name.is_empty() && k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        match given {
            Some(v) => {
                fields.insert(id.clone(), v.clone());
            }
            None if required_without_default(meta) => missing.push(field_label(id, meta)),
            None => {}
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        missing.sort();
        Err(missing)
    }
}

/// A parent reference: `{"id"}` for a numeric id, else `{"key"}`.
fn parent_ref(parent: &str) -> Result<Value, ProviderError> {
    let p = crate::client::check_issue_ref(parent.trim())?;
    Ok(if p.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "id": p })
    } else {
        json!({ "key": p })
    })
}

impl JiraProvider {
    /// The `fields` of the create call for what the draft sets, where the create screen has
    /// the field (`summary` always: Jira requires it).
    async fn draft_fields(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        draft: &CreateDraft<'_>,
        screen: &[(String, &Value)],
    ) -> Result<Map<String, Value>, ProviderError> {
        let on_screen = |id: &str| screen.iter().any(|(f, _)| f == id);
        let mut fields = Map::new();
        for v in draft.fields.values() {
            let (id, value) = match v {
                FieldValue::Title(t) => ("summary", Value::String(t.clone())),
                FieldValue::Description(md) if !md.trim().is_empty() => {
                    ("description", markdown_to_adf(md))
                }
                FieldValue::Priority(Some(p)) => {
                    match self.push.priority_id(ctx, client, p).await? {
                        Ok(pid) => ("priority", json!({ "id": pid })),
                        // Left out: the push after the create refuses it with this reason.
                        Err(reason) => {
                            tracing::warn!(%reason, "create: priority left out");
                            continue;
                        }
                    }
                }
                FieldValue::DueDate(Some(d)) => ("duedate", Value::String(format_date(*d))),
                FieldValue::Assignee(Some(a)) => ("assignee", json!({ "accountId": a.account_id })),
                // Empty values are the create's default; a status other than the workflow's
                // first is reached by the push that follows.
                _ => continue,
            };
            if id == "summary" || on_screen(id) {
                fields.insert(id.to_owned(), value);
            }
        }
        Ok(fields)
    }

    async fn create(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
    ) -> Result<RemoteTask, ProviderError> {
        let project = project_of(draft)?;
        let type_name = draft
            .issue_type
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_ISSUE_TYPE);
        let opts = JiraOptions::from_json(&ctx.options)?;
        let client = self.client(ctx)?;

        let types = client
            .create_issue_types(project)
            .await
            .map_err(|e| meta_error(e, project))?;
        let Some(type_id) = types
            .iter()
            .find(|t| {
                t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(type_name))
            })
            .and_then(|t| t.get("id").and_then(Value::as_str))
        else {
            let names: Vec<&str> = types
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect();
            return Err(ProviderError::Terminal(format!(
                "issue type {type_name} does not exist in project {project} (it has: {})",
                names.join(", ")
            )));
        };
        let meta = client
            .create_fields(project, type_id)
            .await
            .map_err(|e| meta_error(e, project))?;
        let screen = screen_by_id(&meta);

        let mut fields = self.draft_fields(ctx, &client, draft, &screen).await?;
        fields.insert("project".into(), json!({ "key": project }));
        fields.insert("issuetype".into(), json!({ "id": type_id }));
        if let Some(parent) = draft.parent.filter(|p| !p.trim().is_empty()) {
            fields.insert("parent".into(), parent_ref(parent)?);
        }
        if let Err(missing) = fill_screen(&screen, &opts, &mut fields) {
            let them = if missing.len() == 1 { "it" } else { "them" };
            return Err(ProviderError::Terminal(format!(
                "the create screen of {type_name} in project {project} requires {}; set {them} \
                 in options.create_fields",
                missing.join(", ")
            )));
        }

        let body = json!({
            "fields": fields,
            "properties": [{"key": MARKER_PROPERTY, "value": {"task_id": draft.marker}}],
        });
        let created = client
            .create_issue(&body)
            .await
            .map_err(|e| create_error(e, project))?;
        let id = match created.get("id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            // Made, but we cannot tell which: the retry finds it by its marker.
            _ => {
                return Err(ProviderError::retryable(format!(
                    "Jira created an issue in {project} but its answer has no id: {created}"
                )));
            }
        };
        // The issue exists: whatever reading it back fails with, the create is in doubt
        // rather than refused, and the retry adopts the issue through `find_created`.
        let key = ObjectKey::new(id.clone(), ISSUE);
        self.fetch_task(ctx, &key).await.map_err(|e| {
            ProviderError::retryable(format!(
                "created issue {id} in {project}, but reading it back failed: {e}"
            ))
        })
    }

    /// Looks for the issue carrying `draft.marker` among the API account's issues created
    /// in the project since `since_ms` (minus [`FIND_MARGIN_MS`]).
    ///
    /// Why a search and not a lookup: Jira's `POST /issue` takes no idempotency key, and an
    /// issue property is searchable with JQL only when an app declares an index for it
    /// (`jira:entityProperty`), which an API-token integration cannot. So the search narrows
    /// to what the integration itself could have created (its project, `reporter =
    /// currentUser()`, created since the lost call) and reads each hit's `ordonis` property
    /// (`properties=ordonis`) to find ours. The search index lags writes by seconds: the
    /// engine's retry backoff is what gives a just-created issue time to show up.
    async fn find(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
        since_ms: i64,
    ) -> Result<Option<RemoteTask>, ProviderError> {
        let project = project_of(draft)?;
        let opts = JiraOptions::from_json(&ctx.options)?;
        let tz = match &opts.jql_time_zone {
            Some(name) => time_zone(name)?,
            None => jiff::tz::TimeZone::UTC,
        };
        let from = jql_date(since_ms.saturating_sub(FIND_MARGIN_MS), &tz);
        let mut req = SearchRequest::new(format!(
            "project = \"{project}\" AND reporter = currentUser() AND created >= \"{from}\" \
             ORDER BY created DESC"
        ));
        req.properties = vec![MARKER_PROPERTY.to_owned()];
        req.max_results = Some(100);
        let client = self.client(ctx)?;
        let issues = client.search_jql_all(req, FIND_MAX_PAGES).await?;
        let ours = issues.iter().find(|i| {
            i.get("properties")
                .and_then(|p| p.get(MARKER_PROPERTY))
                .and_then(|m| m.get("task_id"))
                .and_then(Value::as_str)
                == Some(draft.marker)
        });
        ours.map(|i| remote_task(i, &ctx.base_url, None))
            .transpose()
    }
}

#[async_trait]
impl CreateProvider for JiraProvider {
    fn lookup_delay(&self, ctx: &ProviderContext) -> std::time::Duration {
        let s = crate::config::JiraOptions::from_json(&ctx.options)
            .ok()
            .and_then(|o| o.create_lookup_delay_s)
            .unwrap_or(DEFAULT_CREATE_LOOKUP_DELAY_S);
        std::time::Duration::from_secs(s)
    }

    async fn create_task(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
    ) -> Result<RemoteTask, ProviderError> {
        self.create(ctx, draft).await
    }

    async fn find_created(
        &self,
        ctx: &ProviderContext,
        draft: &CreateDraft<'_>,
        since_ms: i64,
    ) -> Result<Option<RemoteTask>, ProviderError> {
        self.find(ctx, draft, since_ms).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn required_fields_are_filled_by_id_or_name_else_named() {
        let team = json!({"fieldId": "customfield_10050", "name": "Team", "required": true});
        let rep = json!({"fieldId": "reporter", "name": "Reporter", "required": true,
                         "hasDefaultValue": true});
        let labels = json!({"fieldId": "labels", "name": "Labels", "required": false});
        let meta = [team, rep, labels];
        let screen = screen_by_id(&meta);
        let mut fields = Map::new();
        let err = fill_screen(&screen, &JiraOptions::default(), &mut fields).unwrap_err();
        assert_eq!(err, ["Team (customfield_10050)"]);

        let opts = JiraOptions {
            create_fields: BTreeMap::from([
                ("team".to_owned(), json!({"id": "42"})),
                ("labels".to_owned(), json!(["ordonis"])),
                ("customfield_1".to_owned(), json!("not on this screen")),
            ]),
            ..JiraOptions::default()
        };
        let mut fields = Map::new();
        fill_screen(&screen, &opts, &mut fields).unwrap();
        assert_eq!(fields["customfield_10050"], json!({"id": "42"}));
        assert_eq!(fields["labels"], json!(["ordonis"]));
        assert!(!fields.contains_key("customfield_1"));
        assert!(!fields.contains_key("reporter"));
    }

    #[test]
    fn parents_by_id_or_key_and_projects_are_checked() {
        assert_eq!(parent_ref("10001").unwrap(), json!({"id": "10001"}));
        assert_eq!(parent_ref("KAN-7").unwrap(), json!({"key": "KAN-7"}));
        assert!(parent_ref("KAN 7\"").is_err());
        assert!(check_project("KAN\" OR project = X").is_err());
        assert_eq!(check_project(" KAN ").unwrap(), "KAN");
    }
}
