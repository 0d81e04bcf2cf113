//! An issue's workflow as a graph (`POST /rest/api/3/workflows/preview`), and the shortest
//! transition path through it, planned before anything moves.
//!
//! The preview names statuses by a `statusReference` that is only stable within one
//! response: the graph keys them by status id, which `GET /issue` and `GET …/transitions`
//! carry too. What it does not tell is which fields a transition's screen requires, or
//! whether a condition holds: those are only known from `GET …/transitions` at the status
//! itself, so the provider checks each hop as it reaches it.

use std::collections::{HashMap, HashSet, VecDeque};

use ordonis_core::{Status, StatusCategory};
use serde_json::Value;

use crate::client::Transition;
use crate::error::JiraError;

/// A status of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WfStatus {
    pub id: String,
    pub name: String,
    pub category: StatusCategory,
}

impl WfStatus {
    pub(crate) fn status(&self) -> Status {
        Status::new(self.category, self.name.clone())
    }
}

/// A transition of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edge {
    pub id: String,
    pub name: String,
    /// The status ids it starts from; `None` for a global transition (from any status).
    pub from: Option<Vec<String>>,
    pub to: String,
}

/// The statuses and transitions of one workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct WorkflowGraph {
    pub statuses: Vec<WfStatus>,
    pub edges: Vec<Edge>,
}

/// One planned transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    pub transition_id: String,
    pub name: String,
    pub to: WfStatus,
}

fn category(v: &str) -> StatusCategory {
    match v {
        "DONE" => StatusCategory::Done,
        "IN_PROGRESS" => StatusCategory::InProgress,
        _ => StatusCategory::Todo,
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

impl WorkflowGraph {
    /// Reads a `WorkflowPreviewResponse` for one issue type: its first workflow (the one
    /// whose `queryContext` names the issue type, when several came back).
    pub(crate) fn from_preview(v: &Value, issue_type: &str) -> Result<Self, JiraError> {
        let bad = |what: &str| JiraError::Decode(format!("workflow preview: {what}"));
        let refs: HashMap<&str, WfStatus> = v
            .get("statuses")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `statuses`"))?
            .iter()
            .filter_map(|s| {
                Some((
                    str_of(s, "statusReference")?,
                    WfStatus {
                        id: str_of(s, "id")?.to_owned(),
                        name: str_of(s, "name")?.to_owned(),
                        category: category(str_of(s, "statusCategory").unwrap_or_default()),
                    },
                ))
            })
            .collect();
        let workflows = v
            .get("workflows")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `workflows`"))?;
        let for_type = |w: &&Value| {
            w.get("queryContext")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter().any(|q| {
                        q.get("issueTypes")
                            .and_then(Value::as_array)
                            .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(issue_type)))
                    })
                })
        };
        let wf = workflows
            .iter()
            .find(for_type)
            .or_else(|| workflows.first())
            .ok_or_else(|| bad("no workflow for the issue type"))?;
        let resolve = |r: &str| refs.get(r).cloned();
        let mut statuses: Vec<WfStatus> = wf
            .get("statuses")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| resolve(str_of(s, "statusReference")?))
                    .collect()
            })
            .unwrap_or_default();
        if statuses.is_empty() {
            statuses = refs.values().cloned().collect();
            statuses.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let mut edges = Vec::new();
        for t in wf
            .get("transitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let kind = str_of(t, "type").unwrap_or("DIRECTED");
            let (Some(id), Some(to)) = (
                str_of(t, "id"),
                str_of(t, "toStatusReference").and_then(resolve),
            ) else {
                continue;
            };
            let from = match kind {
                // The issue's creation, not a move.
                "INITIAL" => continue,
                "GLOBAL" => None,
                _ => Some(
                    t.get("links")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|l| resolve(str_of(l, "fromStatusReference")?))
                        .map(|s| s.id)
                        .collect(),
                ),
            };
            edges.push(Edge {
                id: id.to_owned(),
                name: str_of(t, "name").unwrap_or_default().to_owned(),
                from,
                to: to.id,
            });
        }
        Ok(Self { statuses, edges })
    }

    fn status(&self, id: &str) -> Option<&WfStatus> {
        self.statuses.iter().find(|s| s.id == id)
    }

    /// Whether a status of this name is in the workflow.
    pub(crate) fn has_status_named(&self, name: &str) -> bool {
        self.statuses
            .iter()
            .any(|s| s.name.trim().eq_ignore_ascii_case(name.trim()))
    }

    /// The names of the workflow's statuses.
    pub(crate) fn status_names(&self) -> String {
        self.statuses
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The transitions out of a status.
    fn out_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Edge> + 'a {
        self.edges.iter().filter(move |e| {
            e.to != id && e.from.as_ref().is_none_or(|f| f.iter().any(|f| f == id))
        })
    }

    /// The shortest path from status `from` to a status `goal` accepts, breadth first.
    ///
    /// The first hop is one of `offered` (the usable transitions `GET …/transitions` lists
    /// at `from`: conditions and screen fields already checked), later hops come from the
    /// graph. `avoid` statuses (ones meaning "not done") are never passed through, only
    /// reached. Among the goal statuses nearest, one named `prefer` wins.
    pub(crate) fn plan(
        &self,
        from: &str,
        offered: &[Transition],
        goal: impl Fn(&WfStatus) -> bool,
        avoid: impl Fn(&WfStatus) -> bool,
        prefer: Option<&str>,
    ) -> Option<Vec<Hop>> {
        // Status id → the hop that first reached it (and the status it came from).
        let mut came: HashMap<String, (String, Hop)> = HashMap::new();
        let mut seen: HashSet<String> = HashSet::from([from.to_owned()]);
        let mut level: VecDeque<String> = VecDeque::from([from.to_owned()]);
        while !level.is_empty() {
            let mut next = VecDeque::new();
            let mut reached: Vec<String> = Vec::new();
            for node in level {
                let hops: Vec<Hop> = if node == from {
                    offered
                        .iter()
                        .map(|t| Hop {
                            transition_id: t.id.clone(),
                            name: t.name.clone(),
                            to: self.status(&t.to.id).cloned().unwrap_or_else(|| WfStatus {
                                id: t.to.id.clone(),
                                name: t.to.name.clone(),
                                category: super::goal::target_category(t),
                            }),
                        })
                        .collect()
                } else {
                    self.out_of(&node)
                        .filter_map(|e| {
                            Some(Hop {
                                transition_id: e.id.clone(),
                                name: e.name.clone(),
                                to: self.status(&e.to)?.clone(),
                            })
                        })
                        .collect()
                };
                for hop in hops {
                    if !seen.insert(hop.to.id.clone()) {
                        continue;
                    }
                    let id = hop.to.id.clone();
                    let is_goal = goal(&hop.to);
                    let pass = !is_goal && !avoid(&hop.to);
                    came.insert(id.clone(), (node.clone(), hop));
                    if is_goal {
                        reached.push(id);
                    } else if pass {
                        next.push_back(id);
                    }
                }
            }
            let best = reached
                .iter()
                .find(|id| {
                    prefer.is_some_and(|p| {
                        came.get(*id)
                            .is_some_and(|(_, h)| h.to.name.trim().eq_ignore_ascii_case(p))
                    })
                })
                .or_else(|| reached.first());
            if let Some(end) = best {
                let mut path = Vec::new();
                let mut at = end.clone();
                while let Some((prev, hop)) = came.get(&at) {
                    path.push(hop.clone());
                    if *prev == from {
                        break;
                    }
                    at = prev.clone();
                }
                path.reverse();
                return Some(path);
            }
            level = next;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_spec_example_and_plans_over_directed_transitions() {
        // The shape of the spec's example (localized names, references, an INITIAL
        // transition, DIRECTED ones with links).
        let v = json!({"statuses": [
            {"id": "1", "name": "Zrobic", "statusCategory": "TODO", "statusReference": "a"},
            {"id": "2", "name": "W toku", "statusCategory": "IN_PROGRESS", "statusReference": "b"},
            {"id": "3", "name": "Zrobione", "statusCategory": "DONE", "statusReference": "c"}],
            "workflows": [{"id": "w", "name": "Sample", "queryContext": [{"issueTypes": ["10001"], "project": "10000"}],
              "statuses": [{"statusReference": "a"}, {"statusReference": "b"}, {"statusReference": "c"}],
              "transitions": [
                {"id": "1", "name": "Create", "toStatusReference": "a", "type": "INITIAL", "links": []},
                {"id": "21", "name": "Start", "toStatusReference": "b", "type": "DIRECTED",
                 "links": [{"fromPort": 0, "fromStatusReference": "a", "toPort": 0}]},
                {"id": "31", "name": "Done", "toStatusReference": "c", "type": "DIRECTED",
                 "links": [{"fromStatusReference": "b"}]},
                {"id": "41", "name": "Reopen", "toStatusReference": "a", "type": "GLOBAL", "links": []}]}]});
        let g = WorkflowGraph::from_preview(&v, "10001").unwrap();
        assert_eq!(g.statuses.len(), 3);
        assert_eq!(g.edges.len(), 3, "the INITIAL transition is not a move");
        let offered: Vec<Transition> = serde_json::from_value(json!([
            {"id": "21", "name": "Start", "to": {"id": "2", "name": "W toku",
             "statusCategory": {"key": "indeterminate"}}}]))
        .unwrap();
        let path = g
            .plan(
                "1",
                &offered,
                |s| s.category == StatusCategory::Done,
                |_| false,
                None,
            )
            .unwrap();
        let ids: Vec<&str> = path.iter().map(|h| h.transition_id.as_str()).collect();
        assert_eq!(ids, ["21", "31"]);
        assert_eq!(path[1].to.name, "Zrobione");
        // The first hop is only ever one `GET …/transitions` offered at the status.
        assert!(g.plan("1", &[], |_| true, |_| false, None).is_none());
        // A global transition leads out of every status but its own.
        let out: Vec<&str> = g.out_of("3").map(|e| e.id.as_str()).collect();
        assert_eq!(out, ["41"]);
        assert!(g.out_of("1").all(|e| e.id != "41"));
    }
}
