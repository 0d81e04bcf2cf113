//! [`JiraProvider`]: the `ordonis_core::Provider` implementation.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ordonis_core::{
    Capabilities, ChangeHint, ConfigToCheck, Field, FieldPatch, FieldValue, IntegrationId,
    InvalidInput, ObjectKey, Provider, ProviderContext, ProviderError, ProviderKind, PushOutcome,
    PushPlan, RemoteTask, RepairProvider, Status, StatusCategory, ValueCheck, WebhookAuth,
    WebhookRequest,
};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::adf::{Merge, merge_markdown, normalize_markdown};
use crate::client::{JiraClient, Transition, http_client};
pub use crate::config::JiraOptions;
use crate::error::JiraError;
use crate::normalize::{format_date, priority_level, priority_name, status_category, status_from};
use crate::webhook::{
    self, DELIVERY_HEADER, FLOW_HEADER, ParseContext, RETRY_HEADER, SIGNATURE_HEADER, remote_task,
    verify_jwt, verify_signature,
};
use crate::workflow::{Hop, WorkflowGraph};

/// Default spacing between two writes to the same issue (Jira allows 20 writes per 2 s and
/// 100 per 30 s on one issue).
pub const DEFAULT_WRITE_SPACING: Duration = Duration::from_millis(100);

/// Default bound on transition hops when a status has no direct transition.
pub const DEFAULT_MAX_HOPS: usize = 4;

/// Spaces writes to the same (integration, issue) at least `interval` apart.
#[derive(Debug, Default)]
struct WriteSpacer {
    interval: Duration,
    next_slot: Mutex<HashMap<(IntegrationId, String), Instant>>,
}

impl WriteSpacer {
    async fn wait(&self, integration: IntegrationId, issue: &str) {
        if self.interval.is_zero() {
            return;
        }
        let now = Instant::now();
        let at = {
            let Ok(mut slots) = self.next_slot.lock() else {
                return;
            };
            if slots.len() > 10_000 {
                slots.retain(|_, t| *t > now);
            }
            let slot = slots.entry((integration, issue.to_owned())).or_insert(now);
            let at = (*slot).max(now);
            *slot = at + self.interval;
            at
        };
        if at > now {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// The Jira Cloud provider. One value serves every Jira integration.
///
/// Non-secret options read from [`ProviderContext::options`]:
/// - `jwt_issuer` (string): the `iss` a JWT-signed (app) webhook must carry. Without it any
///   non-empty `iss` is accepted once the signature and expiry check out.
pub struct JiraProvider {
    http: reqwest::Client,
    spacer: Arc<WriteSpacer>,
    max_hops: usize,
    /// Edit-screen field ids per (integration, project id, issue type id).
    edit_meta: Mutex<HashMap<EditScreenKey, (Instant, BTreeSet<String>)>>,
    /// The site's priorities `(id, name)` per integration.
    priorities: Mutex<HashMap<IntegrationId, (Instant, SitePriorities)>>,
    /// Workflows per (integration, project id, issue type id); `None`: Jira would not show it.
    workflows: Mutex<HashMap<EditScreenKey, CachedWorkflow>>,
}

/// (integration, project id, issue type id): edit screens are per project and issue type.
type EditScreenKey = (IntegrationId, String, String);

/// When a workflow was read, and the workflow (`None`: Jira would not show it).
type CachedWorkflow = (Instant, Option<Arc<WorkflowGraph>>);

/// A site's priorities, `(id, name)`.
type SitePriorities = Vec<(String, String)>;

/// How long edit screens, priorities and workflows are cached.
const META_TTL: Duration = Duration::from_secs(600);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl fmt::Debug for JiraProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraProvider")
            .field("write_spacing", &self.spacer.interval)
            .field("max_hops", &self.max_hops)
            .finish()
    }
}

impl JiraProvider {
    /// A provider with the default HTTP client, write spacing and hop bound.
    pub fn new() -> Result<Self, JiraError> {
        Ok(Self::with_http(http_client()?))
    }

    /// A provider over a caller-supplied `reqwest` client. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`, as [`crate::client::http_client`] does:
    /// a client that follows redirects re-sends requests, credentials and bodies wherever a
    /// `Location` points; with redirects off a 3xx is [`JiraError::Redirected`] (terminal).
    pub fn with_http(http: reqwest::Client) -> Self {
        Self {
            http,
            spacer: Arc::new(WriteSpacer {
                interval: DEFAULT_WRITE_SPACING,
                next_slot: Mutex::default(),
            }),
            max_hops: DEFAULT_MAX_HOPS,
            edit_meta: Mutex::default(),
            priorities: Mutex::default(),
            workflows: Mutex::default(),
        }
    }

    /// Sets the minimum spacing between writes to one issue (zero disables spacing).
    pub fn with_write_spacing(mut self, interval: Duration) -> Self {
        self.spacer = Arc::new(WriteSpacer {
            interval,
            next_slot: Mutex::default(),
        });
        self
    }

    /// Sets the maximum number of transitions one status change may take.
    pub fn with_max_hops(mut self, hops: usize) -> Self {
        self.max_hops = hops.max(1);
        self
    }

    /// A REST client for an integration.
    pub fn client(&self, ctx: &ProviderContext) -> Result<JiraClient, JiraError> {
        let auth = ctx.secrets.api_auth.as_ref().ok_or_else(|| {
            JiraError::Config("the integration has no Jira API credentials".to_owned())
        })?;
        JiraClient::new(self.http.clone(), &ctx.base_url, auth)
    }

    async fn write<F, Fut>(&self, ctx: &ProviderContext, issue: &str, f: F) -> Result<(), JiraError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), JiraError>>,
    {
        self.spacer.wait(ctx.integration_id, issue).await;
        f().await
    }

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
    async fn priority_id(
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
    async fn edit(
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
    async fn plan(
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
    async fn transition_to(
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
}

/// A status push, planned.
#[derive(Debug)]
enum Planned {
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
fn hop_status(hop: &Hop, t: &Transition) -> Status {
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
enum Moved {
    /// The issue is at `reached`, having passed through `passed` on the way.
    There {
        reached: Status,
        passed: Vec<Status>,
    },
    /// No usable path: a refusal, never retried.
    Refused(String),
}

/// The statuses CollabHub's generic names stand for: any status of their category may
/// satisfy them; any other name must exist in Jira's workflow.
fn is_generic(name: &str, category: StatusCategory) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n.is_empty()
        || match category {
            StatusCategory::Todo => matches!(n.as_str(), "to do" | "todo" | "open" | "new"),
            StatusCategory::InProgress => matches!(n.as_str(), "in progress" | "doing" | "started"),
            StatusCategory::Done => {
                matches!(n.as_str(), "done" | "completed" | "complete" | "closed")
            }
        }
}

/// Done-category statuses that mean "not done": never chosen for a generic "Done".
fn is_negative(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase().replace(['\'', '’'], "");
    [
        "wont do",
        "wont fix",
        "cancelled",
        "canceled",
        "rejected",
        "declined",
        "duplicate",
        "invalid",
        "abandoned",
        "obsolete",
        "cannot reproduce",
    ]
    .iter()
    .any(|bad| n == *bad || n.starts_with(bad))
}

/// Where a status push should end.
#[derive(Debug)]
struct Goal {
    /// A Jira status name that must be reached (mapped, or a non-generic name).
    name: Option<String>,
    /// The category a generic target accepts when no status has its name.
    category: StatusCategory,
    /// The name asked for, tried first even when generic ("Done" when Jira has "Done").
    asked: String,
}

impl Goal {
    fn new(target: &Status, opts: &JiraOptions) -> Self {
        let mapped = opts
            .status_map
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(target.name.trim()))
            .map(|(_, v)| v.clone());
        let name = mapped.or_else(|| {
            (!is_generic(&target.name, target.category)).then(|| target.name.trim().to_owned())
        });
        Self {
            name,
            category: target.category,
            asked: target.name.trim().to_owned(),
        }
    }

    fn reached_by(&self, name: &str, category: StatusCategory) -> bool {
        match &self.name {
            Some(n) => name.trim().eq_ignore_ascii_case(n),
            None => {
                (!self.asked.is_empty() && name.trim().eq_ignore_ascii_case(&self.asked))
                    || (category == self.category && !is_negative(name))
            }
        }
    }

    fn describe_quoted(&self) -> String {
        match &self.name {
            Some(n) => format!("{n:?}"),
            None => format!("a {:?} status", self.category),
        }
    }

    fn describe(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("a {:?} status", self.category))
    }
}

fn reachable(graph: &HashMap<String, Vec<Transition>>) -> String {
    let mut names: Vec<&str> = graph
        .values()
        .flatten()
        .map(|t| t.to.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

pub(crate) fn target_category(t: &Transition) -> StatusCategory {
    t.to.status_category
        .as_ref()
        .map(|c| status_category(&c.key))
        .unwrap_or_default()
}

fn cat_rank(c: StatusCategory) -> i32 {
    match c {
        StatusCategory::Todo => 0,
        StatusCategory::InProgress => 1,
        StatusCategory::Done => 2,
    }
}

enum Choice {
    Direct(Transition, Option<Map<String, Value>>),
    Hop(Transition, Option<Map<String, Value>>),
    Blocked(Transition, Vec<String>),
    None(Vec<String>),
}

/// Resolutions a generic "Done" may be given when none is configured, best first.
const GOOD_RESOLUTIONS: [&str; 5] = ["done", "fixed", "resolved", "complete", "completed"];

/// The `fields` a transition's screen requires, from the integration's options and the
/// field's `allowedValues`; `Err` names the required fields that cannot be filled.
fn transition_fields(
    t: &Transition,
    opts: &JiraOptions,
) -> Result<Option<Map<String, Value>>, Vec<String>> {
    let mut out = Map::new();
    let mut missing = Vec::new();
    for (fid, meta) in &t.fields {
        let required = meta.get("required").and_then(Value::as_bool) == Some(true)
            && meta.get("hasDefaultValue").and_then(Value::as_bool) != Some(true);
        if !required {
            continue;
        }
        if let Some(v) = opts.transition_fields.get(fid) {
            out.insert(fid.clone(), v.clone());
            continue;
        }
        let allowed: Vec<(&str, &str)> = meta
            .get("allowedValues")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| Some((v.get("id")?.as_str()?, v.get("name")?.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        if fid == "resolution" {
            let pick = match &opts.resolution {
                Some(want) => allowed
                    .iter()
                    .find(|(_, n)| n.trim().eq_ignore_ascii_case(want.trim())),
                None => GOOD_RESOLUTIONS.iter().find_map(|good| {
                    allowed
                        .iter()
                        .find(|(_, n)| n.trim().eq_ignore_ascii_case(good))
                }),
            };
            if let Some((rid, _)) = pick {
                out.insert(fid.clone(), serde_json::json!({ "id": rid }));
                continue;
            }
        }
        missing.push(
            meta.get("name")
                .and_then(Value::as_str)
                .map_or_else(|| fid.clone(), |n| format!("{n} ({fid})")),
        );
    }
    if missing.is_empty() {
        Ok((!out.is_empty()).then_some(out))
    } else {
        missing.sort();
        Err(missing)
    }
}

/// Picks the next transition: a direct one to the goal (by name; for a generic goal, any
/// status of its category that does not mean "not done"); else the first hop of a path
/// through statuses seen so far; else an unexplored status, nearest in category first.
fn choose(
    transitions: &[Transition],
    goal: &Goal,
    opts: &JiraOptions,
    graph: &HashMap<String, Vec<Transition>>,
    here: &str,
    visited: &HashSet<String>,
) -> Choice {
    let fill = |t: &Transition| transition_fields(t, opts);
    // Direct: by name first, then (generic goals) by category, fillable ones first.
    let direct: Vec<&Transition> = transitions
        .iter()
        .filter(|t| goal.reached_by(&t.to.name, target_category(t)))
        .collect();
    let by_name = direct.iter().find(|t| {
        let n = goal.name.as_deref().unwrap_or(&goal.asked);
        !n.is_empty() && t.to.name.trim().eq_ignore_ascii_case(n)
    });
    let first = by_name
        .or_else(|| direct.iter().find(|t| fill(t).is_ok()))
        .or_else(|| direct.first());
    if let Some(t) = first {
        return match fill(t) {
            Ok(f) => Choice::Direct((*t).clone(), f),
            Err(missing) => Choice::Blocked((*t).clone(), missing),
        };
    }
    let usable = |t: &&Transition| fill(t).is_ok();
    // A path through statuses already seen (BFS over the learned graph).
    if let Some(first) = bfs_first_hop(graph, here, goal, opts)
        && let Some(t) = transitions.iter().filter(usable).find(|t| t.id == first.id)
    {
        return Choice::Hop(t.clone(), fill(t).ok().flatten());
    }
    let mut candidates: Vec<&Transition> = transitions
        .iter()
        .filter(usable)
        .filter(|t| !visited.contains(&t.to.name.to_lowercase()))
        .filter(|t| !is_negative(&t.to.name))
        .collect();
    let want = cat_rank(goal.category);
    candidates.sort_by_key(|t| (cat_rank(target_category(t)) - want).abs());
    match candidates.first() {
        Some(t) => Choice::Hop((*t).clone(), fill(t).ok().flatten()),
        None => Choice::None(
            transitions
                .iter()
                .filter(|t| fill(t).is_err())
                .map(|t| t.name.clone())
                .collect(),
        ),
    }
}

fn bfs_first_hop(
    graph: &HashMap<String, Vec<Transition>>,
    from: &str,
    goal: &Goal,
    opts: &JiraOptions,
) -> Option<Transition> {
    let mut queue: VecDeque<(String, Option<Transition>)> = VecDeque::new();
    let mut seen: HashSet<String> = HashSet::new();
    queue.push_back((from.to_owned(), None));
    seen.insert(from.to_owned());
    while let Some((node, first)) = queue.pop_front() {
        for t in graph.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
            if transition_fields(t, opts).is_err() {
                continue;
            }
            let next = t.to.name.to_lowercase();
            let first = first.clone().unwrap_or_else(|| t.clone());
            if goal.reached_by(&t.to.name, target_category(t)) {
                return Some(first);
            }
            if seen.insert(next.clone()) {
                queue.push_back((next, Some(first)));
            }
        }
    }
    None
}

fn header<'a>(req: &'a WebhookRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[async_trait]
impl Provider for JiraProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::new("jira")
    }

    /// Kept with each delivery: the delivery id (the same across retries), the retry
    /// count, the flow (`Primary` or `Secondary`) and the admin-webhook signature.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            webhook_handshake: false,
            kept_headers: &[DELIVERY_HEADER, RETRY_HEADER, FLOW_HEADER, SIGNATURE_HEADER],
        }
    }

    /// The options parse as [`JiraOptions`]; the scope is `null` (webhook-only) or
    /// `{"jql": "…"}`.
    fn check_config(&self, config: &ConfigToCheck<'_>) -> Result<(), InvalidInput> {
        JiraOptions::from_json(config.options).map_err(|e| InvalidInput::new("options", e))?;
        if !config.scope.is_null() {
            crate::repair::scope_jql(config.scope).map_err(|e| InvalidInput::new("scope", e))?;
        }
        Ok(())
    }

    fn verify_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookAuth, ProviderError> {
        if let Some(sig) = header(req, SIGNATURE_HEADER) {
            return verify_signature(sig, &ctx.secrets.webhook_secrets, req.body);
        }
        if let Some(auth) = header(req, "authorization") {
            let token = auth
                .strip_prefix("JWT ")
                .or_else(|| auth.strip_prefix("Bearer "))
                .or_else(|| auth.strip_prefix("bearer "))
                .ok_or_else(|| {
                    ProviderError::Unauthenticated(
                        "the Authorization header is neither `JWT <token>` nor `Bearer <token>`"
                            .to_owned(),
                    )
                })?;
            let secret = ctx.secrets.app_secret.as_deref().ok_or_else(|| {
                ProviderError::Unauthenticated(
                    "the webhook carries a JWT but the integration has no app secret".to_owned(),
                )
            })?;
            let issuer = ctx.options.get("jwt_issuer").and_then(Value::as_str);
            let qsh = ctx
                .options
                .get("jwt_webhook_path")
                .and_then(Value::as_str)
                .map(|path| crate::webhook::query_string_hash("POST", path));
            return verify_jwt(token, secret, issuer, qsh.as_deref(), now_secs());
        }
        Err(ProviderError::Unauthenticated(
            "missing X-Hub-Signature header (admin webhook) or Authorization JWT (app webhook)"
                .to_owned(),
        ))
    }

    fn parse_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<Vec<ChangeHint>, ProviderError> {
        webhook::parse(
            req.body,
            ParseContext {
                base_url: &ctx.base_url,
                delivery_id: header(req, DELIVERY_HEADER),
            },
        )
    }

    async fn fetch_task(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError> {
        let client = self.client(ctx)?;
        let issue = client.get_issue(&key.external_id).await?;
        let mut task = remote_task(&issue, &ctx.base_url, None)?;
        // Keep the key the caller asked with (an id, even when Jira answered a moved issue).
        task.key = key.clone();
        Ok(task)
    }

    /// A description comes back from Jira in the converter's canonical Markdown.
    fn check_value(&self, _ctx: &ProviderContext, value: &FieldValue) -> ValueCheck {
        match value {
            // Markdown that does not convert has no echo form: its push refuses (the merge
            // says why), so no echo of it will come back.
            FieldValue::Description(md) => match normalize_markdown(md) {
                Ok(form) => ValueCheck::AcceptAs(FieldValue::Description(form)),
                Err(_) => ValueCheck::Accept,
            },
            _ => ValueCheck::Accept,
        }
    }

    fn repair(&self) -> Option<&dyn RepairProvider> {
        Some(self)
    }

    /// A status push's intermediate statuses, from the path planned over the issue's
    /// workflow (none when the workflow cannot be read: the hops are then reported with the
    /// push's outcome only).
    async fn plan_push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushPlan, ProviderError> {
        let Some(FieldValue::Status(target)) = patch.get(Field::Status) else {
            return Ok(PushPlan::default());
        };
        let client = self.client(ctx)?;
        let id = crate::client::check_issue_ref(&key.external_id)?;
        let passes = match self.plan(ctx, &client, id, target).await {
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
            Err(e) => return Err(e.into()),
        };
        Ok(PushPlan { passes })
    }

    async fn push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError> {
        let client = self.client(ctx)?;
        let id = crate::client::check_issue_ref(&key.external_id)?;
        let mut out = PushOutcome::default();

        // 1. Edit: title, description, priority, due date in one PUT (fields Jira refuses
        //    are taken out and the rest sent again).
        self.edit(ctx, &client, id, patch, &mut out).await?;

        // 2. Assignee.
        if let Some(FieldValue::Assignee(a)) = patch.get(Field::Assignee) {
            let account = a.as_ref().map(|a| a.account_id.as_str());
            match self.write(ctx, id, || client.assign(id, account)).await {
                Ok(()) => out.applied.push(Field::Assignee),
                Err(JiraError::Rejected {
                    status, message, ..
                }) => out.refused.push((
                    Field::Assignee,
                    format!("Jira rejected the assignee ({status}): {message}"),
                )),
                Err(e) => return Err(e.into()),
            }
        }

        // 3. Status, through transitions.
        if let Some(FieldValue::Status(target)) = patch.get(Field::Status) {
            match self.transition_to(ctx, &client, id, target).await {
                Ok(Moved::There { reached, passed }) => {
                    out.applied.push(Field::Status);
                    // Jira will report the status by its own name ("Done" may be "Closed"),
                    // and each hop on the way in a webhook of its own: all ours.
                    out.echo_as.push(FieldValue::Status(reached));
                    out.passed_through
                        .extend(passed.into_iter().map(FieldValue::Status));
                }
                Ok(Moved::Refused(reason)) => out.refused.push((Field::Status, reason)),
                Err(JiraError::Rejected {
                    status, message, ..
                }) => out.refused.push((
                    Field::Status,
                    format!("Jira rejected the transition ({status}): {message}"),
                )),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl RepairProvider for JiraProvider {
    async fn list_changes(
        &self,
        ctx: &ProviderContext,
        req: &ordonis_core::ListRequest<'_>,
    ) -> Result<ordonis_core::ListPage, ProviderError> {
        crate::repair::list_changes(&self.client(ctx)?, ctx, req).await
    }

    async fn check_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &ordonis_core::WebhookCheck<'_>,
    ) -> Result<ordonis_core::WebhookReport, ProviderError> {
        crate::repair::check_webhooks(self, ctx, check).await
    }

    async fn register_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &ordonis_core::WebhookCheck<'_>,
    ) -> Result<ordonis_core::WebhookReport, ProviderError> {
        crate::repair::register_webhooks(self, ctx, check).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_delivery_retry_flow_and_signature_headers() -> Result<(), JiraError> {
        let p = JiraProvider::new()?;
        assert_eq!(
            p.capabilities().kept_headers,
            [
                "x-atlassian-webhook-identifier",
                "x-atlassian-webhook-retry",
                "x-atlassian-webhook-flow",
                "x-hub-signature",
            ]
        );
        Ok(())
    }
}
