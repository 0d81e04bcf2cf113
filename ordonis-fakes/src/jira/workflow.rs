//! FakeJira's workflow: statuses and transitions (directed or global, with screen fields
//! and conditions), served the three ways Jira serves one — `GET …/transitions` at the
//! issue's status, `POST …/transitions` (refused unless the transition is offered there and
//! its required screen fields are given), and `POST /rest/api/3/workflows/preview` (the
//! whole graph, in the `WorkflowPreviewResponse` shape of the v3 spec) — and `GET
//! /project/{key}/statuses`.
//!
//! This module is the workflow alone (no HTTP): the handlers are in `transitions`.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// The workflow's statuses: (id, name, category key).
pub const STATUSES: [(&str, &str, &str); 3] = [
    ("10000", "To Do", "new"),
    ("3", "In Progress", "indeterminate"),
    ("10001", "Done", "done"),
];

/// The "Won't Do" status of [`FakeJira::require_resolution`](super::FakeJira::require_resolution)'s workflow (done category).
pub const WONT_DO: (&str, &str, &str) = ("10100", "Won't Do", "done");

/// The resolutions a done transition offers in [`FakeJira::require_resolution`](super::FakeJira::require_resolution)'s workflow.
pub const RESOLUTIONS: [(&str, &str); 3] = [
    ("10002", "Won't Do"),
    ("10000", "Done"),
    ("10003", "Duplicate"),
];

/// A transition of a [`FakeWorkflow`].
#[derive(Clone, Debug, PartialEq)]
pub struct FakeTransition {
    /// Transition id.
    pub id: String,
    /// Transition name.
    pub name: String,
    /// The status names it starts from; empty for a global transition (from any status
    /// but its target).
    pub from: Vec<String>,
    /// The status name it leads to.
    pub to: String,
    /// Its screen's fields, as `GET …/transitions?expand=transitions.fields` lists them.
    pub fields: serde_json::Map<String, Value>,
    /// A condition that never holds: never offered, and a `POST` of it is refused. The
    /// workflow preview still shows it, as Jira's does.
    pub condition_fails: bool,
}

/// A workflow: statuses `(id, name, category key)` and transitions. Every issue type of the
/// site uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeWorkflow {
    /// `(id, name, category key: new | indeterminate | done)`.
    pub statuses: Vec<(String, String, String)>,
    /// Transitions, in the order `GET …/transitions` lists them.
    pub transitions: Vec<FakeTransition>,
}

fn resolution_screen() -> serde_json::Map<String, Value> {
    let allowed: Vec<Value> = RESOLUTIONS
        .iter()
        .map(|(id, n)| json!({"id": id, "name": n}))
        .collect();
    let mut m = serde_json::Map::new();
    m.insert(
        "resolution".into(),
        json!({"required": true, "name": "Resolution", "key": "resolution",
               "hasDefaultValue": false, "allowedValues": allowed}),
    );
    m
}

impl FakeWorkflow {
    /// A workflow of these statuses `(id, name, category key)` and no transitions yet.
    pub fn new(statuses: &[(&str, &str, &str)]) -> Self {
        Self {
            statuses: statuses
                .iter()
                .map(|(i, n, c)| ((*i).to_owned(), (*n).to_owned(), (*c).to_owned()))
                .collect(),
            transitions: Vec::new(),
        }
    }

    /// Adds a transition from the statuses named `from` to the one named `to`.
    pub fn directed(mut self, id: &str, name: &str, from: &[&str], to: &str) -> Self {
        self.transitions.push(FakeTransition {
            id: id.to_owned(),
            name: name.to_owned(),
            from: from.iter().map(|f| (*f).to_owned()).collect(),
            to: to.to_owned(),
            fields: serde_json::Map::new(),
            condition_fails: false,
        });
        self
    }

    /// Adds a global transition (from every status but `to`).
    pub fn global(self, id: &str, name: &str, to: &str) -> Self {
        self.directed(id, name, &[], to)
    }

    /// Gives transition `id` a screen with these fields (`{"customfield_1": {"required":
    /// true, "name": …, "hasDefaultValue": false}}`).
    pub fn with_screen(mut self, id: &str, fields: Value) -> Self {
        for t in self.transitions.iter_mut().filter(|t| t.id == id) {
            t.fields = fields.as_object().cloned().unwrap_or_default();
        }
        self
    }

    /// Makes transition `id` conditional on something that never holds.
    pub fn with_failing_condition(mut self, id: &str) -> Self {
        for t in self.transitions.iter_mut().filter(|t| t.id == id) {
            t.condition_fails = true;
        }
        self
    }

    /// The default: To Do, In Progress and Done, every move allowed (global transitions
    /// `11`, `21`, `31`). `strict` ([`crate::jira::FakeJira::require_resolution`]) adds
    /// "Won't Do" (transition `91`, offered first) and a required resolution on every
    /// transition into the done category.
    pub fn default_for(strict: bool) -> Self {
        let mut statuses: Vec<(&str, &str, &str)> = STATUSES.to_vec();
        if strict {
            statuses.push(WONT_DO);
        }
        let mut wf = Self::new(&statuses);
        if strict {
            wf = wf
                .global("91", "Won't do", WONT_DO.1)
                .with_screen("91", Value::Object(resolution_screen()));
        }
        for (i, (_, name, cat)) in STATUSES.iter().enumerate() {
            let id = format!("{}1", i + 1);
            wf = wf.global(&id, &format!("Move to {name}"), name);
            if strict && *cat == "done" {
                wf = wf.with_screen(&id, Value::Object(resolution_screen()));
            }
        }
        wf
    }

    /// The status `(id, name, category)` of this name.
    pub fn status_named(&self, name: &str) -> Option<(String, String, String)> {
        self.statuses
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// The transitions Jira offers at status `current`.
    pub fn offered<'a>(&'a self, current: &'a str) -> impl Iterator<Item = &'a FakeTransition> {
        self.transitions.iter().filter(move |t| {
            !t.condition_fails
                && if t.from.is_empty() {
                    !t.to.eq_ignore_ascii_case(current)
                } else {
                    t.from.iter().any(|f| f.eq_ignore_ascii_case(current))
                }
        })
    }

    fn status_json(&self, name: &str) -> Value {
        match self.status_named(name) {
            Some((id, name, cat)) => {
                json!({"id": id, "name": name, "statusCategory": {"key": cat}})
            }
            None => json!({"name": name}),
        }
    }

    /// `GET /rest/api/3/issue/{id}/transitions?expand=transitions.fields` at `current`.
    pub(super) fn transitions_json(&self, current: &str) -> Value {
        let list: Vec<Value> = self
            .offered(current)
            .map(|t| {
                json!({
                    "id": t.id, "name": t.name, "to": self.status_json(&t.to),
                    "hasScreen": !t.fields.is_empty(), "isGlobal": t.from.is_empty(),
                    "isInitial": false, "isAvailable": true, "isConditional": false,
                    "fields": t.fields,
                })
            })
            .collect();
        json!({ "transitions": list })
    }

    /// A `POST …/transitions` body at `current`: the change it makes (`status`, and
    /// `resolution` when the screen has one), or Jira's 400 and its error body.
    pub(super) fn perform(
        &self,
        current: &str,
        body: &Value,
    ) -> Result<Value, (StatusCode, Value)> {
        let tid = body
            .get("transition")
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(t) = self.offered(current).find(|t| t.id == tid) else {
            return Err((
                StatusCode::BAD_REQUEST,
                json!({"errorMessages": [format!("Transition id '{tid}' is not valid for this issue.")],
                       "errors": {}}),
            ));
        };
        let given = body.get("fields");
        let mut change = json!({"status": self.status_json(&t.to)});
        let mut errors = serde_json::Map::new();
        for (fid, meta) in &t.fields {
            let required = meta.get("required").and_then(Value::as_bool) == Some(true)
                && meta.get("hasDefaultValue").and_then(Value::as_bool) != Some(true);
            let value = given.and_then(|f| f.get(fid)).filter(|v| !v.is_null());
            let allowed = meta.get("allowedValues").and_then(Value::as_array);
            let picked = match (value, allowed) {
                (Some(v), Some(allowed)) => {
                    let id = v.get("id").and_then(Value::as_str);
                    let name = v.get("name").and_then(Value::as_str);
                    allowed
                        .iter()
                        .find(|a| {
                            let aid = a.get("id").and_then(Value::as_str);
                            let an = a.get("name").and_then(Value::as_str);
                            (id.is_some() && aid == id) || (name.is_some() && an == name)
                        })
                        .cloned()
                }
                (v, _) => v.cloned(),
            };
            let label = meta.get("name").and_then(Value::as_str).unwrap_or(fid);
            match picked {
                Some(v) => change[fid.as_str()] = v,
                None if required || value.is_some() => {
                    errors.insert(fid.clone(), Value::String(format!("{label} is required.")));
                }
                None => {}
            }
        }
        if !errors.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                json!({"errorMessages": [], "errors": errors}),
            ));
        }
        Ok(change)
    }

    /// `POST /rest/api/3/workflows/preview` for a project and issue types: the statuses
    /// (with a `statusReference`, not stable across requests, and the `TODO`/`IN_PROGRESS`/
    /// `DONE` category), and the workflow with `INITIAL`, `GLOBAL` and `DIRECTED`
    /// transitions linked by status references.
    pub(super) fn preview_json(&self, project: &str, issue_types: &[String]) -> Value {
        let reference = |name: &str| {
            self.statuses
                .iter()
                .position(|(_, n, _)| n.eq_ignore_ascii_case(name))
                .map(|i| format!("ref-{i}"))
        };
        let statuses: Vec<Value> = self
            .statuses
            .iter()
            .enumerate()
            .map(|(i, (id, name, cat))| {
                let category = match cat.as_str() {
                    "done" => "DONE",
                    "indeterminate" => "IN_PROGRESS",
                    _ => "TODO",
                };
                json!({"id": id, "name": name, "rawName": name, "description": "",
                       "scope": {"type": "GLOBAL"}, "statusCategory": category,
                       "statusReference": format!("ref-{i}")})
            })
            .collect();
        let mut transitions = vec![json!({
            "id": "1", "name": "Create", "description": "", "type": "INITIAL", "links": [],
            "toStatusReference": "ref-0", "actions": [], "triggers": [], "validators": []
        })];
        transitions.extend(self.transitions.iter().map(|t| {
            let links: Vec<Value> = t
                .from
                .iter()
                .filter_map(|f| reference(f))
                .map(|r| json!({"fromPort": 0, "fromStatusReference": r, "toPort": 0}))
                .collect();
            let mut v = json!({
                "id": t.id, "name": t.name, "description": "",
                "type": if t.from.is_empty() { "GLOBAL" } else { "DIRECTED" },
                "links": links, "toStatusReference": reference(&t.to),
                "actions": [], "triggers": [], "validators": [],
            });
            if !t.fields.is_empty() {
                v["transitionScreen"] = json!({"id": format!("screen-{}", t.id),
                    "ruleKey": "system:transition-screen", "parameters": {"screenId": "10000"}});
            }
            if t.condition_fails {
                v["conditions"] = json!({"operation": "ALL", "conditionGroups": [],
                    "conditions": [{"id": format!("cond-{}", t.id),
                        "ruleKey": "system:restrict-issue-transition", "parameters": {}}]});
            }
            v
        }));
        let refs: Vec<Value> = (0..self.statuses.len())
            .map(|i| json!({"statusReference": format!("ref-{i}"), "deprecated": false}))
            .collect();
        json!({
            "statuses": statuses,
            "workflows": [{
                "id": "b9ff2384-d3b6-4d4e-9509-3ee19f607168", "name": "Fake Workflow",
                "description": "", "scope": {"type": "GLOBAL"},
                "queryContext": [{"project": project, "issueTypes": issue_types}],
                "statuses": refs, "transitions": transitions,
                "version": {"id": "f010ac1b-3dd3-43a3-aa66-0ee8a447f76e", "versionNumber": 1}
            }]
        })
    }
}

/// A status as Jira serializes it (`id`, `name`, `statusCategory.key`).
pub(super) fn status_value(id: &str, name: &str, cat: &str) -> Value {
    json!({"id": id, "name": name, "statusCategory": {"key": cat}})
}
