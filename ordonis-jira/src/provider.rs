//! [`JiraProvider`]: the `ordonis_core::Provider` implementation.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ordonis_core::{
    Capabilities, ChangeHint, Field, FieldPatch, FieldValue, IntegrationId, ObjectKey, Provider,
    ProviderContext, ProviderError, ProviderKind, PushOutcome, RemoteTask, Status, StatusCategory,
    WebhookAuth, WebhookRequest,
};
use serde_json::{Map, Value};
use tokio::time::Instant;

use crate::adf::{Merge, merge_markdown, normalize_markdown};
use crate::client::{JiraClient, Transition, http_client};
use crate::error::JiraError;
use crate::normalize::{format_date, priority_level, priority_name, status_category, status_from};
use crate::webhook::{
    self, DELIVERY_HEADER, FLOW_HEADER, ParseContext, RETRY_HEADER, SIGNATURE_HEADER, remote_task,
    verify_jwt, verify_signature,
};

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

/// Non-secret Jira options (an integration's `options`); unknown keys are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraOptions {
    /// The `iss` a JWT-signed (app) webhook must carry.
    #[serde(default)]
    pub jwt_issuer: Option<String>,
}

impl JiraOptions {
    /// Reads options from an integration's JSON; `null` is the default.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        if v.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(v.clone()).map_err(|e| format!("invalid Jira options: {e}"))
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
    edit_meta: Mutex<HashMap<(IntegrationId, String, String), (Instant, BTreeSet<String>)>>,
    /// The site's priorities `(id, name)` per integration.
    priorities: Mutex<HashMap<IntegrationId, (Instant, Vec<(String, String)>)>>,
}

/// How long edit screens and priorities are cached.
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

    /// Moves an issue to `target` through transitions. `Ok(None)` when the issue is there,
    /// `Ok(Some(reason))` when no usable path exists (a refusal, never retried).
    async fn transition_to(
        &self,
        ctx: &ProviderContext,
        client: &JiraClient,
        id: &str,
        target: &Status,
    ) -> Result<Option<String>, JiraError> {
        let issue = client.get_issue(id).await?;
        let mut current = issue
            .get("fields")
            .and_then(|f| f.get("status"))
            .and_then(status_from)
            .ok_or_else(|| JiraError::Decode(format!("issue {id} has no status")))?;
        if status_matches(&current, target) {
            return Ok(None);
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
            let step = choose(&transitions, target, &graph, &here, &visited);
            let (t, direct) = match step {
                Choice::Direct(t) => (t, true),
                Choice::Hop(t) => (t, false),
                Choice::Blocked(t, fields) => {
                    let reason = format!(
                        "transition {:?} to {:?} requires fields Ordonis cannot fill: {}",
                        t.name,
                        t.to.name,
                        fields.join(", ")
                    );
                    return Ok(Some(reason));
                }
                Choice::None(blocked) => {
                    blocked_seen.extend(blocked);
                    let mut reason = format!(
                        "no transition path from {:?} to {:?}",
                        current.name, target.name
                    );
                    if !blocked_seen.is_empty() {
                        reason.push_str(&format!(
                            " (blocked by required fields on: {})",
                            blocked_seen.join(", ")
                        ));
                    }
                    return Ok(Some(reason));
                }
            };
            self.write(ctx, id, || client.do_transition(id, &t.id))
                .await?;
            current = Status::new(
                t.to.status_category
                    .as_ref()
                    .map(|c| status_category(&c.key))
                    .unwrap_or_default(),
                t.to.name.clone(),
            );
            // A direct move reaches the target's name or, failing that, its category.
            if direct || status_matches(&current, target) {
                return Ok(None);
            }
        }
        Ok(Some(format!(
            "no transition path to {:?} within {} hops (stopped at {:?})",
            target.name, self.max_hops, current.name
        )))
    }
}

fn status_matches(s: &Status, target: &Status) -> bool {
    if target.name.trim().is_empty() {
        s.category == target.category
    } else {
        s.name.trim().eq_ignore_ascii_case(target.name.trim())
    }
}

fn target_category(t: &Transition) -> StatusCategory {
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
    Direct(Transition),
    Hop(Transition),
    Blocked(Transition, Vec<String>),
    None(Vec<String>),
}

/// Picks the next transition: a direct one to the target's name, else one to its category;
/// else the first hop of a path through statuses seen so far; else an unexplored status,
/// nearest in category to the target first.
fn choose(
    transitions: &[Transition],
    target: &Status,
    graph: &HashMap<String, Vec<Transition>>,
    here: &str,
    visited: &HashSet<String>,
) -> Choice {
    let name = target.name.trim();
    let by_name = transitions
        .iter()
        .find(|t| !name.is_empty() && t.to.name.trim().eq_ignore_ascii_case(name));
    let by_cat = || {
        transitions
            .iter()
            .filter(|t| target_category(t) == target.category)
            .find(|t| t.unfillable_fields().is_empty())
            .or_else(|| {
                transitions
                    .iter()
                    .find(|t| target_category(t) == target.category)
            })
    };
    if let Some(t) = by_name.or_else(by_cat) {
        let missing = t.unfillable_fields();
        return if missing.is_empty() {
            Choice::Direct(t.clone())
        } else {
            Choice::Blocked(t.clone(), missing)
        };
    }
    let usable = |t: &&Transition| t.unfillable_fields().is_empty();
    // A path through statuses already seen (BFS over the learned graph).
    if let Some(first) = bfs_first_hop(graph, here, target)
        && let Some(t) = transitions.iter().filter(usable).find(|t| t.id == first.id)
    {
        return Choice::Hop(t.clone());
    }
    let mut candidates: Vec<&Transition> = transitions
        .iter()
        .filter(usable)
        .filter(|t| !visited.contains(&t.to.name.to_lowercase()))
        .collect();
    let goal = cat_rank(target.category);
    candidates.sort_by_key(|t| (cat_rank(target_category(t)) - goal).abs());
    match candidates.first() {
        Some(t) => Choice::Hop((*t).clone()),
        None => Choice::None(
            transitions
                .iter()
                .filter(|t| !t.unfillable_fields().is_empty())
                .map(|t| t.name.clone())
                .collect(),
        ),
    }
}

fn bfs_first_hop(
    graph: &HashMap<String, Vec<Transition>>,
    from: &str,
    target: &Status,
) -> Option<Transition> {
    let mut queue: VecDeque<(String, Option<Transition>)> = VecDeque::new();
    let mut seen: HashSet<String> = HashSet::new();
    queue.push_back((from.to_owned(), None));
    seen.insert(from.to_owned());
    while let Some((node, first)) = queue.pop_front() {
        for t in graph.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
            if !t.unfillable_fields().is_empty() {
                continue;
            }
            let next = t.to.name.to_lowercase();
            let first = first.clone().unwrap_or_else(|| t.clone());
            if status_matches(&Status::new(target_category(t), t.to.name.clone()), target) {
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

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            webhook_snapshots: true,
            webhook_handshake: false,
            delivery_ids: true,
            push: true,
        }
    }

    /// The delivery id (the same across retries), the retry count, the flow (`Primary` or
    /// `Secondary`) and the admin-webhook signature.
    fn check_options(&self, options: &Value) -> Result<(), String> {
        JiraOptions::from_json(options).map(|_| ())
    }

    fn kept_headers(&self) -> &[&str] {
        &[DELIVERY_HEADER, RETRY_HEADER, FLOW_HEADER, SIGNATURE_HEADER]
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
            return verify_jwt(token, secret, issuer, now_secs());
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
    fn echo_form(&self, _ctx: &ProviderContext, value: &FieldValue) -> Option<FieldValue> {
        match value {
            FieldValue::Description(md) => Some(FieldValue::Description(normalize_markdown(md))),
            _ => None,
        }
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
                Ok(None) => out.applied.push(Field::Status),
                Ok(Some(reason)) => out.refused.push((Field::Status, reason)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_delivery_retry_flow_and_signature_headers() -> Result<(), JiraError> {
        let p = JiraProvider::new()?;
        assert_eq!(
            p.kept_headers(),
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
