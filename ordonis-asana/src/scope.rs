//! What an Asana integration syncs: its scope, and whether a fetched task is inside it.
//!
//! **Shape:** `{"projects": ["<gid>", …], "subtasks": false}`; `null` means webhook-only
//! (whatever the webhooks send, with nothing to list).
//!
//! **Membership** is read from the task itself (`memberships.project`, `parent`), never from
//! the event that named it: a `removed` and an `added` event may arrive in either order, and
//! only the task as it is now says where it belongs, so any order converges.
//!
//! - A task in a project of the scope is in scope (a subtask too, when it was also added to
//!   such a project: then it is one of that project's tasks).
//! - A subtask (a task with a `parent`) in no project of the scope is in scope only when the
//!   scope says `"subtasks": true`. Asana's project webhooks do send their tasks' subtask
//!   events ("events propagate up"), so without this rule every subtask would become a
//!   top-level task.
//! - Any other task (removed from the scope's projects) is out of scope.
//! - With a `null` scope only the subtask rule applies: a subtask in no project is out.

use ordonis_core::InvalidInput;
use serde_json::Value;

use crate::client::check_gid;

/// An Asana integration's scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AsanaScope {
    /// The projects synced (empty for a `null` scope).
    pub projects: Vec<String>,
    /// Subtasks of the projects' tasks are synced as tasks of their own.
    pub subtasks: bool,
}

const SHAPE: &str = "an Asana scope is {\"projects\": [\"<project gid>\", …], \"subtasks\": false}";

impl AsanaScope {
    /// Parses a scope: `null`, or an object with at least one valid project gid, no
    /// duplicates, an optional boolean `subtasks` and no other key.
    ///
    /// ```
    /// use ordonis_asana::scope::AsanaScope;
    /// let s = AsanaScope::parse(&serde_json::json!({"projects": ["1201"], "subtasks": true})).unwrap();
    /// assert_eq!(s.projects, ["1201"]);
    /// assert!(s.subtasks);
    /// assert!(AsanaScope::parse(&serde_json::json!({"projects": []})).is_err());
    /// ```
    pub fn parse(scope: &Value) -> Result<Self, InvalidInput> {
        Self::read(scope).map_err(|why| InvalidInput::new("scope", why))
    }

    fn read(scope: &Value) -> Result<Self, String> {
        if scope.is_null() {
            return Ok(Self::default());
        }
        let Some(obj) = scope.as_object() else {
            return Err(format!("scope must be an object: {SHAPE}"));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "projects" | "subtasks"))
        {
            return Err(format!("unknown scope key {k:?}: {SHAPE}"));
        }
        let subtasks = match obj.get("subtasks") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!("scope.subtasks must be true or false, not {other}"));
            }
        };
        let list = obj
            .get("projects")
            .and_then(Value::as_array)
            .ok_or_else(|| "scope.projects must be a list of project gids".to_owned())?;
        if list.is_empty() {
            return Err("scope.projects names no project".to_owned());
        }
        let mut projects: Vec<String> = Vec::with_capacity(list.len());
        for p in list {
            let gid = p
                .as_str()
                .ok_or_else(|| format!("scope.projects: {p} is not a gid string"))?;
            check_gid(gid).map_err(|e| format!("scope.projects: {e}"))?;
            if projects.iter().any(|g| g == gid) {
                return Err(format!("scope.projects names {gid} twice"));
            }
            projects.push(gid.to_owned());
        }
        Ok(Self { projects, subtasks })
    }

    /// Why a task (as `GET /tasks/{gid}` returns it, with `memberships.project` and
    /// `parent`) is outside the scope, or `None` when it is inside.
    ///
    /// ```
    /// use ordonis_asana::scope::AsanaScope;
    /// use serde_json::json;
    /// let s = AsanaScope::parse(&json!({"projects": ["1201"]})).unwrap();
    /// let member = json!({"memberships": [{"project": {"gid": "1201"}}], "parent": null});
    /// assert_eq!(s.outside(&member), None);
    /// let removed = json!({"memberships": [{"project": {"gid": "77", "name": "Other"}}], "parent": null});
    /// assert!(s.outside(&removed).unwrap().contains("Other"));
    /// let subtask = json!({"memberships": [], "parent": {"gid": "42"}});
    /// assert!(s.outside(&subtask).unwrap().contains("subtask"));
    /// ```
    pub fn outside(&self, task: &Value) -> Option<String> {
        let memberships: Vec<(&str, Option<&str>)> = task
            .get("memberships")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let p = m.get("project")?;
                        Some((
                            p.get("gid")?.as_str()?,
                            p.get("name").and_then(Value::as_str),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let parent = task
            .get("parent")
            .and_then(|p| p.get("gid"))
            .and_then(Value::as_str);
        let in_a_project = if self.projects.is_empty() {
            !memberships.is_empty()
        } else {
            memberships
                .iter()
                .any(|(g, _)| self.projects.iter().any(|p| p == g))
        };
        if in_a_project {
            return None;
        }
        if let Some(parent) = parent {
            return (!self.subtasks).then(|| {
                format!(
                    "a subtask of task {parent}, in no project of the scope (a scope syncs \
                     subtasks only with \"subtasks\": true)"
                )
            });
        }
        if self.projects.is_empty() {
            return None;
        }
        let now_in: Vec<String> = memberships
            .iter()
            .map(|(g, n)| n.map_or_else(|| (*g).to_owned(), |n| format!("{n} ({g})")))
            .collect();
        Some(format!(
            "removed from the scope's projects ({}); it is now in {}",
            self.projects.join(", "),
            if now_in.is_empty() {
                "no project".to_owned()
            } else {
                now_in.join(", ")
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_refuses_what_is_not_a_scope() {
        for bad in [
            json!([]),
            json!({}),
            json!({"projects": []}),
            json!({"projects": ["1", "1"]}),
            json!({"projects": ["1"], "subtasks": "yes"}),
            json!({"projects": ["1"], "sections": []}),
        ] {
            assert!(AsanaScope::parse(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            AsanaScope::parse(&Value::Null).unwrap(),
            AsanaScope::default()
        );
        assert!(
            !AsanaScope::parse(&json!({"projects": ["1"]}))
                .unwrap()
                .subtasks
        );
    }

    #[test]
    fn membership_rules() {
        let scoped = AsanaScope::parse(&json!({"projects": ["1"]})).unwrap();
        let with_subtasks =
            AsanaScope::parse(&json!({"projects": ["1"], "subtasks": true})).unwrap();
        let none = AsanaScope::default();
        let in_p = |p: &str| json!({"memberships": [{"project": {"gid": p}}], "parent": null});
        let sub = json!({"memberships": [], "parent": {"gid": "9", "resource_type": "task"}});
        let sub_in_1 = json!({"memberships": [{"project": {"gid": "1"}}], "parent": {"gid": "9"}});
        let orphan = json!({"memberships": [], "parent": null});

        assert_eq!(scoped.outside(&in_p("1")), None);
        assert!(scoped.outside(&in_p("2")).is_some());
        assert!(scoped.outside(&orphan).unwrap().contains("no project"));
        assert!(scoped.outside(&sub).is_some());
        assert_eq!(scoped.outside(&sub_in_1), None);
        assert_eq!(with_subtasks.outside(&sub), None);
        // `null`: only the subtask rule.
        assert_eq!(none.outside(&in_p("2")), None);
        assert_eq!(none.outside(&orphan), None);
        assert!(none.outside(&sub).is_some());
    }
}
