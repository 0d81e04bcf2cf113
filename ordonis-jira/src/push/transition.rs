//! A status push: the whole transition path is planned over the issue's workflow before
//! anything moves ([`super::workflow`]); each hop is checked again at the status it starts
//! from, where Jira tells its screen's required fields and conditions. Without permission
//! to read the workflow, the path is explored hop by hop instead.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ordonis_core::{FieldValue, ProviderContext, Status};
use serde_json::Value;
use tokio::time::Instant;

use super::goal::{
    Choice, Goal, choose, is_negative, reachable, target_category, transition_fields,
};
use super::workflow::{Hop, WorkflowGraph};
use super::{META_TTL, Pusher, lock};
use crate::client::{JiraClient, Transition};
use crate::config::JiraOptions;
use crate::error::JiraError;
use crate::normalize::status_from;

impl Pusher {
    /// The status names of the issue's workflow (its project and issue type), when Jira
    /// tells; `None` when it cannot be asked.
    async fn workflow_statuses(
        &self,
        client: &JiraClient,
        issue: &Value,
    ) -> Result<Option<Vec<String>>, JiraError> {
        let fields = issue.get("fields");
        let of = |k: &str, sub: &str| {
            fields
                .and_then(|f| f.get(k))
                .and_then(|v| v.get(sub))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let (Some(project), Some(issue_type)) = (of("project", "id"), of("issuetype", "id")) else {
            return Ok(None);
        };
        match client.project_statuses(&project).await {
            Ok(types) => Ok(types
                .into_iter()
                .find(|(t, _)| *t == issue_type)
                .map(|(_, names)| names)),
            Err(JiraError::NotFound { .. } | JiraError::Rejected { .. } | JiraError::Decode(_)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The issue's workflow (its project and issue type), cached; `None` when the account
    /// may not read it (the preview needs the *View (read-only) workflow* or *Administer
    /// projects* permission) or the answer cannot be read.
    async fn workflow(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        issue: &Value,
    ) -> Result<Option<Arc<WorkflowGraph>>, JiraError> {
        let of = |k: &str| {
            issue
                .get("fields")
                .and_then(|f| f.get(k))
                .and_then(|v| v.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let (Some(project), Some(issue_type)) = (of("project"), of("issuetype")) else {
            return Ok(None);
        };
        let key = (ctx.integration_id, project.clone(), issue_type.clone());
        if let Some((at, graph)) = lock(&self.workflows).get(&key)
            && at.elapsed() < META_TTL
        {
            return Ok(graph.clone());
        }
        let graph = match client.workflow_preview(&project, &issue_type).await {
            Ok(v) => WorkflowGraph::from_preview(&v, &issue_type)
                .ok()
                .filter(|g| !g.statuses.is_empty())
                .map(Arc::new),
            Err(
                JiraError::Unauthorized { .. }
                | JiraError::NotFound { .. }
                | JiraError::Rejected { .. }
                | JiraError::Decode(_),
            ) => None,
            Err(e) => return Err(e),
        };
        let mut cache = lock(&self.workflows);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), graph.clone()));
        Ok(graph)
    }

    /// Plans a status push: where the issue is, and the whole transition path to `target`
    /// over its workflow, before anything moves.
    pub(super) async fn plan(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        target: &Status,
    ) -> Result<Planned, JiraError> {
        let opts = JiraOptions::from_json(&ctx.options).unwrap_or_default();
        let goal = Goal::new(target, &opts);
        let issue = client.get_issue(id).await?;
        let status = issue.get("fields").and_then(|f| f.get("status"));
        let current = status
            .and_then(status_from)
            .ok_or_else(|| JiraError::Decode(format!("issue {id} has no status")))?;
        if goal.reached_by(&current.name, current.category) {
            return Ok(Planned::There(current));
        }
        let current_id = status
            .and_then(|s| s.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        // Without the workflow (no permission to read it), explore it hop by hop instead.
        let (Some(graph), Some(current_id)) =
            (self.workflow(ctx, client, &issue).await?, current_id)
        else {
            return Ok(Planned::Explore { issue, current });
        };
        if let Some(name) = &goal.name
            && !graph.has_status_named(name)
        {
            return Ok(Planned::Refused(format!(
                "Jira has no status {name:?} in this issue's workflow (it has: {})",
                graph.status_names()
            )));
        }
        let offered: Vec<Transition> = client
            .transitions(id)
            .await?
            .into_iter()
            .filter(|t| t.is_available)
            .collect();
        let usable: Vec<Transition> = offered
            .iter()
            .filter(|t| transition_fields(t, &opts).is_ok())
            .cloned()
            .collect();
        let prefer = goal.name.as_deref().unwrap_or(&goal.asked);
        let path = graph.plan(
            &current_id,
            &usable,
            |s| goal.reached_by(&s.name, s.category),
            |s| is_negative(&s.name),
            (!prefer.is_empty()).then_some(prefer),
        );
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            // A transition to the goal that only its screen's required fields hold back.
            if let Some(t) = offered
                .iter()
                .find(|t| goal.reached_by(&t.to.name, target_category(t)))
                && let Err(missing) = transition_fields(t, &opts)
            {
                return Ok(Planned::Refused(blocked_reason(t, &missing)));
            }
            let blocked: Vec<&str> = offered
                .iter()
                .filter(|t| transition_fields(t, &opts).is_err())
                .map(|t| t.name.as_str())
                .collect();
            let mut reason = format!(
                "no transition path from {:?} to {} in this issue's workflow",
                current.name,
                goal.describe_quoted()
            );
            if !blocked.is_empty() {
                reason.push_str(&format!(
                    " (blocked by required fields on: {})",
                    blocked.join(", ")
                ));
            }
            return Ok(Planned::Refused(reason));
        };
        if path.len() > self.max_hops {
            return Ok(Planned::Refused(format!(
                "the shortest transition path from {:?} to {} takes {} hops, more than the {} allowed",
                current.name,
                goal.describe_quoted(),
                path.len(),
                self.max_hops
            )));
        }
        let first = usable
            .into_iter()
            .find(|t| t.id == path[0].transition_id)
            .ok_or_else(|| JiraError::Decode("the planned first transition vanished".into()))?;
        Ok(Planned::Path {
            from: current,
            first,
            hops: path,
        })
    }

    /// Moves an issue to `target` along the planned path, filling required transition fields
    /// (a resolution) from the integration's defaults and the transition's `allowedValues`.
    /// A later hop's screen and conditions are only known once the issue is there: a hop
    /// Jira does not offer then, or whose fields cannot be filled, stops the push with a
    /// refusal that names where the issue was left.
    pub(crate) async fn transition_to(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        target: &Status,
    ) -> Result<Moved, JiraError> {
        let opts = JiraOptions::from_json(&ctx.options).unwrap_or_default();
        let (mut current, first, hops) = match self.plan(ctx, client, id, target).await? {
            Planned::There(reached) => {
                return Ok(Moved::There {
                    reached,
                    passed: Vec::new(),
                });
            }
            Planned::Refused(reason) => return Ok(Moved::Refused(reason)),
            Planned::Explore { issue, current } => {
                return self.explore(ctx, client, id, target, &issue, current).await;
            }
            Planned::Path { from, first, hops } => (from, first, hops),
        };
        let mut passed: Vec<Status> = Vec::new();
        let last = hops.len() - 1;
        for (i, hop) in hops.iter().enumerate() {
            let t = if i == 0 {
                first.clone()
            } else {
                let offered = client.transitions(id).await?;
                let Some(t) = offered
                    .into_iter()
                    .find(|t| t.is_available && t.id == hop.transition_id && t.to.id == hop.to.id)
                else {
                    return Ok(Moved::Refused(format!(
                        "Jira does not offer the planned transition {:?} to {:?} from {:?} (a \
                         workflow condition); the issue was left at {:?}",
                        hop.name, hop.to.name, current.name, current.name
                    )));
                };
                t
            };
            let fields = match transition_fields(&t, &opts) {
                Ok(f) => f,
                Err(missing) => {
                    return Ok(Moved::Refused(format!(
                        "{}; the issue was left at {:?}",
                        blocked_reason(&t, &missing),
                        current.name
                    )));
                }
            };
            self.write(ctx, id, || client.do_transition(id, &t.id, fields.as_ref()))
                .await?;
            let next = hop_status(hop, &t);
            if i == last {
                return Ok(Moved::There {
                    reached: next,
                    passed,
                });
            }
            passed.push(next.clone());
            current = next;
        }
        Ok(Moved::Refused("the planned path is empty".to_owned()))
    }

    /// Moves an issue to `target` without its workflow (the account may not read it),
    /// learning the workflow as it goes: a direct transition, else a path through the
    /// statuses seen so far, else an unexplored status nearest in category.
    async fn explore(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        target: &Status,
        issue: &Value,
        mut current: Status,
    ) -> Result<Moved, JiraError> {
        let opts = JiraOptions::from_json(&ctx.options).unwrap_or_default();
        let goal = Goal::new(target, &opts);
        let mut passed: Vec<Status> = Vec::new();
        // A named status must exist in the issue's workflow before anything moves.
        if let Some(name) = &goal.name
            && let Some(known) = self.workflow_statuses(client, issue).await?
            && !known.iter().any(|k| k.trim().eq_ignore_ascii_case(name))
        {
            return Ok(Moved::Refused(format!(
                "Jira has no status {name:?} in this issue's workflow (it has: {})",
                known.join(", ")
            )));
        }
        // What we have learned of the workflow: status name (lowercase) → its transitions.
        let mut graph: HashMap<String, Vec<Transition>> = HashMap::new();
        let mut visited: HashSet<String> = HashSet::new();
        let mut blocked_seen: Vec<String> = Vec::new();
        for _hop in 0..self.max_hops {
            let here = current.name.to_lowercase();
            visited.insert(here.clone());
            let transitions: Vec<Transition> = client
                .transitions(id)
                .await?
                .into_iter()
                .filter(|t| t.is_available)
                .collect();
            graph.insert(here.clone(), transitions.clone());
            let (t, fields, direct) =
                match choose(&transitions, &goal, &opts, &graph, &here, &visited) {
                    Choice::Direct(t, f) => (t, f, true),
                    Choice::Hop(t, f) => (t, f, false),
                    Choice::Blocked(t, fields) => {
                        return Ok(Moved::Refused(blocked_reason(&t, &fields)));
                    }
                    Choice::None(blocked) => {
                        blocked_seen.extend(blocked);
                        let mut reason = match &goal.name {
                            Some(n) => format!(
                                "Jira has no status {n:?} reachable from {:?} (reachable: {})",
                                current.name,
                                reachable(&graph)
                            ),
                            None => format!(
                                "no transition path from {:?} to a {:?} status",
                                current.name, goal.category
                            ),
                        };
                        if !blocked_seen.is_empty() {
                            reason.push_str(&format!(
                                " (blocked by required fields on: {})",
                                blocked_seen.join(", ")
                            ));
                        }
                        return Ok(Moved::Refused(reason));
                    }
                };
            self.write(ctx, id, || client.do_transition(id, &t.id, fields.as_ref()))
                .await?;
            let next = Status::new(target_category(&t), t.to.name.clone());
            if direct || goal.reached_by(&next.name, next.category) {
                return Ok(Moved::There {
                    reached: next,
                    passed,
                });
            }
            passed.push(next.clone());
            current = next;
        }
        Ok(Moved::Refused(format!(
            "no transition path to {:?} within {} hops (stopped at {:?})",
            goal.describe(),
            self.max_hops,
            current.name
        )))
    }

    /// The intermediate statuses a status push will pass through, from the path planned
    /// over the issue's workflow (none when the workflow cannot be read: the hops are then
    /// reported with the push's outcome only).
    pub(crate) async fn planned_passes(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        target: &Status,
    ) -> Result<Vec<FieldValue>, JiraError> {
        Ok(match self.plan(ctx, client, id, target).await {
            Ok(Planned::Path { first, hops, .. }) => hops
                .iter()
                .take(hops.len().saturating_sub(1))
                .enumerate()
                .map(|(i, h)| {
                    FieldValue::Status(if i == 0 {
                        hop_status(h, &first)
                    } else {
                        h.to.status()
                    })
                })
                .collect(),
            Ok(_) => Vec::new(),
            // The push itself meets (and reports) whatever refused the plan.
            Err(JiraError::Rejected { .. } | JiraError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        })
    }
}

/// A status push, planned.
#[derive(Debug)]
pub(crate) enum Planned {
    /// The issue is at the goal already.
    There(Status),
    /// No usable path: a refusal before anything moves.
    Refused(String),
    /// The workflow cannot be read: explore it hop by hop.
    Explore { issue: Value, current: Status },
    /// The issue is at `from`; `first` (as `GET …/transitions` offers it) starts `hops`.
    Path {
        from: Status,
        first: Transition,
        hops: Vec<Hop>,
    },
}

/// The status a hop reaches, by the name and category Jira's transition gives it (the
/// name the hop's webhook will carry).
pub(crate) fn hop_status(hop: &Hop, t: &Transition) -> Status {
    if t.to.name.is_empty() {
        hop.to.status()
    } else {
        Status::new(target_category(t), t.to.name.clone())
    }
}

/// Why a transition whose screen requires fields Ordonis cannot fill was not made.
fn blocked_reason(t: &Transition, missing: &[String]) -> String {
    format!(
        "transition {:?} to {:?} requires fields Ordonis cannot fill: {} (set \
         `transition_fields` or `resolution` in the integration's options)",
        t.name,
        t.to.name,
        missing.join(", ")
    )
}

/// What a status push did.
#[derive(Debug)]
pub(crate) enum Moved {
    /// The issue is at `reached`, having passed through `passed` on the way.
    There {
        reached: Status,
        passed: Vec<Status>,
    },
    /// No usable path: a refusal, never retried.
    Refused(String),
}
