//! [`AsanaProvider`]: the `ordonis_core::Provider` implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ordonis_core::{
    ApiAuth, Capabilities, ChangeHint, ConfigToCheck, Field, FieldPatch, FieldValue, IntegrationId,
    InvalidInput, ListPage, ListRequest, ObjectKey, PriorityLevel, Provider, ProviderContext,
    ProviderError, ProviderKind, PushOutcome, RemoteTask, RepairProvider, StatusCategory,
    ValueCheck, WebhookAuth, WebhookCheck, WebhookReport, WebhookRequest,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::client::{AsanaClient, ConcurrencyLimits, DEFAULT_BASE_URL, http_client};
use crate::error::AsanaError;
use crate::normalize::{AsanaOptions, InProgressRule, fields_patch, format_date, modified_at_ms};
use crate::rich_text::Merge;
use crate::webhook::{
    self, HOOK_SECRET_HEADER, SIGNATURE_HEADER, TASK, handshake, is_heartbeat, verify_signature,
};

/// An enum custom field's enabled options: (name, option gid).
type EnumOptions = Vec<(String, String)>;

/// The Asana provider. One value serves every Asana integration.
///
/// Options are read from [`ProviderContext::options`] as [`AsanaOptions`]; the API token is
/// `secrets.api_auth` (`ApiAuth::Bearer`: a personal access token or an OAuth access token);
/// the base URL is the context's (empty means [`DEFAULT_BASE_URL`]).
///
/// Concurrency caps are shared by every call made with the same token; enum options of the
/// priority and status fields are resolved by name once and cached per integration (and
/// refreshed when a name is not found).
pub struct AsanaProvider {
    http: reqwest::Client,
    caps: (usize, usize),
    limits: Mutex<HashMap<String, Arc<ConcurrencyLimits>>>,
    enum_cache: Mutex<HashMap<(IntegrationId, String), EnumOptions>>,
    unsigned_heartbeats: bool,
}

impl fmt::Debug for AsanaProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsanaProvider")
            .field("caps", &self.caps)
            .field("unsigned_heartbeats", &self.unsigned_heartbeats)
            .finish_non_exhaustive()
    }
}

impl AsanaProvider {
    /// A provider with the default HTTP client and Asana's concurrency caps.
    pub fn new() -> Result<Self, AsanaError> {
        Ok(Self::with_http(http_client()?))
    }

    /// A provider over a caller-supplied `reqwest` client. Build it with
    /// `redirect(reqwest::redirect::Policy::none())`, as [`crate::client::http_client`] does:
    /// a client that follows redirects re-sends requests, credentials and bodies wherever a
    /// `Location` points; with redirects off a 3xx is [`AsanaError::Redirected`] (terminal).
    pub fn with_http(http: reqwest::Client) -> Self {
        Self {
            http,
            caps: (
                crate::client::MAX_CONCURRENT_READS,
                crate::client::MAX_CONCURRENT_WRITES,
            ),
            limits: Mutex::default(),
            enum_cache: Mutex::default(),
            unsigned_heartbeats: true,
        }
    }

    /// Sets the concurrent read and write caps per token (Asana's are 50 and 15).
    pub fn with_concurrency(mut self, reads: usize, writes: usize) -> Self {
        self.caps = (reads.max(1), writes.max(1));
        self
    }

    /// Whether an unsigned `{"events":[]}` heartbeat is accepted (default: yes; Asana does
    /// not document whether heartbeats are signed, and one that is signed is always checked).
    pub fn accept_unsigned_heartbeats(mut self, yes: bool) -> Self {
        self.unsigned_heartbeats = yes;
        self
    }

    fn limits_for(&self, token: &str) -> Arc<ConcurrencyLimits> {
        let id = hex::encode(Sha256::digest(token.as_bytes()));
        let Ok(mut map) = self.limits.lock() else {
            return Arc::new(ConcurrencyLimits::new(self.caps.0, self.caps.1));
        };
        map.entry(id)
            .or_insert_with(|| Arc::new(ConcurrencyLimits::new(self.caps.0, self.caps.1)))
            .clone()
    }

    /// A REST client for an integration, sharing the caps of its token.
    pub fn client(&self, ctx: &ProviderContext) -> Result<AsanaClient, AsanaError> {
        let auth = ctx.secrets.api_auth.as_ref().ok_or_else(|| {
            AsanaError::Config("the integration has no Asana API token".to_owned())
        })?;
        let base = if ctx.base_url.trim().is_empty() {
            DEFAULT_BASE_URL
        } else {
            &ctx.base_url
        };
        let client = AsanaClient::new(self.http.clone(), base, auth)?;
        let limits = match auth {
            ApiAuth::Bearer { token } => self.limits_for(token),
            ApiAuth::Basic { .. } => return Ok(client),
        };
        Ok(client.with_limits(limits))
    }

    /// The integration's options.
    pub fn options(ctx: &ProviderContext) -> Result<AsanaOptions, AsanaError> {
        AsanaOptions::from_json(&ctx.options).map_err(|e| AsanaError::Config(e.to_string()))
    }

    fn cached(&self, key: &(IntegrationId, String)) -> Option<EnumOptions> {
        self.enum_cache.lock().ok()?.get(key).cloned()
    }

    /// The gid of the first enabled option of enum field `field_gid` that `pick` accepts,
    /// from the cache, else after (re)loading the field's options.
    async fn option_gid(
        &self,
        ctx: &ProviderContext,
        client: &AsanaClient,
        field_gid: &str,
        pick: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, AsanaError> {
        let key = (ctx.integration_id, field_gid.to_owned());
        let find = |opts: &EnumOptions| {
            opts.iter()
                .find(|(name, _)| pick(name))
                .map(|(_, gid)| gid.clone())
        };
        if let Some(found) = self.cached(&key).as_ref().and_then(find) {
            return Ok(Some(found));
        }
        let field = client.get_custom_field(field_gid).await?;
        let opts: EnumOptions = field
            .get("enum_options")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|o| o.get("enabled").and_then(Value::as_bool) != Some(false))
                    .filter_map(|o| {
                        Some((
                            o.get("name")?.as_str()?.to_owned(),
                            o.get("gid")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let found = find(&opts);
        if let Ok(mut cache) = self.enum_cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, opts);
        }
        Ok(found)
    }
}

fn header<'a>(req: &'a WebhookRequest<'_>, name: &str) -> Option<&'a str> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// What one push wants to write, before option gids are resolved.
#[derive(Default)]
struct Plan {
    data: Map<String, Value>,
    custom: Map<String, Value>,
    fields: Vec<Field>,
    refused: Vec<(Field, String)>,
    /// Fields Asana already holds as asked (nothing is written for them).
    settled: Vec<Field>,
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

#[async_trait]
impl Provider for AsanaProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::new("asana")
    }

    /// Asana's webhooks start with an `X-Hook-Secret` handshake; the delivery signature is
    /// kept (Asana sends no delivery id or retry count).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            webhook_handshake: true,
            kept_headers: &[SIGNATURE_HEADER],
        }
    }

    /// The options parse as [`AsanaOptions`]; the scope is `null` (webhook-only) or
    /// `{"projects": ["<gid>", …]}` with at least one project; the credentials are a bearer
    /// token (a personal access token or an OAuth access token).
    fn check_config(&self, config: &ConfigToCheck<'_>) -> Result<(), InvalidInput> {
        if let Some(auth) = config.auth
            && !matches!(auth, ApiAuth::Bearer { .. })
        {
            return Err(InvalidInput::new(
                "auth",
                "asana does not take this kind of credentials: it takes a bearer token",
            ));
        }
        AsanaOptions::from_json(config.options)?;
        if !config.scope.is_null() {
            crate::repair::scope_projects(config.scope)?;
        }
        Ok(())
    }

    /// Asana has `completed` and, where the integration maps one, an in-progress rule: a
    /// status name outside those is refused at once rather than coerced ("Blocked" would
    /// become a plain incomplete task). A description comes back from Asana in the
    /// converter's canonical Markdown.
    fn check_value(&self, ctx: &ProviderContext, value: &FieldValue) -> ValueCheck {
        match value {
            FieldValue::Status(s) => match status_refusal(ctx, s) {
                Some(reason) => ValueCheck::Refuse(reason),
                None => ValueCheck::Accept,
            },
            // Markdown that does not convert has no echo form: its push refuses (the merge
            // says why), so no echo of it will come back.
            FieldValue::Description(md) => match crate::rich_text::normalize_markdown(md) {
                Ok(form) => ValueCheck::AcceptAs(FieldValue::Description(form)),
                Err(_) => ValueCheck::Accept,
            },
            _ => ValueCheck::Accept,
        }
    }

    fn repair(&self) -> Option<&dyn RepairProvider> {
        Some(self)
    }

    fn verify_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookAuth, ProviderError> {
        if let Some(secret) = req
            .headers
            .get(HOOK_SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
        {
            return handshake(secret);
        }
        if let Some(sig) = header(req, SIGNATURE_HEADER) {
            return verify_signature(sig, &ctx.secrets.webhook_secrets, req.body);
        }
        if self.unsigned_heartbeats && is_heartbeat(req.body) {
            return Ok(WebhookAuth::Verified {
                method: "unsigned-heartbeat",
            });
        }
        Err(ProviderError::Unauthenticated(
            "missing X-Hook-Signature (or X-Hook-Secret for a handshake)".to_owned(),
        ))
    }

    fn parse_webhook(
        &self,
        _ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<Vec<ChangeHint>, ProviderError> {
        webhook::parse(req.body)
    }

    async fn fetch_task(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError> {
        if key.object_type != TASK {
            return Err(ProviderError::BadInput(format!(
                "Asana objects of type {:?} are not synced",
                key.object_type
            )));
        }
        let opts = Self::options(ctx)?;
        let client = self.client(ctx)?;
        let task = match client.get_task(&key.external_id).await {
            Ok(t) => t,
            // 403 is not deletion: the token cannot read the task (a narrow token scope, the
            // account removed from a private project). The task stays; this event fails
            // with the reason, and a later event whose fetch works syncs it again.
            Err(AsanaError::Forbidden { message, .. }) => {
                tracing::warn!(
                    integration_id = %ctx.integration_id,
                    task = %key.external_id,
                    "Asana answered 403 for the task: kept, not synced until readable again"
                );
                return Err(ProviderError::Forbidden(format!(
                    "Asana refused to show task {} to this integration's token (403: {message}): the \
                     token's scope or the account's project membership no longer covers it; the \
                     task is kept and syncs again once it is readable",
                    key.external_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // Where the task belongs now decides, never the event that named it.
        let scope = crate::scope::AsanaScope::parse(&ctx.scope)?;
        if let Some(why) = scope.outside(&task) {
            return Err(ProviderError::OutOfScope(format!(
                "task {}: {why}",
                key.external_id
            )));
        }
        Ok(RemoteTask {
            key: key.clone(),
            fields: fields_patch(&task, &opts),
            modified_at_ms: modified_at_ms(&task).unwrap_or(0),
            url: task
                .get("permalink_url")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    async fn push(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError> {
        let opts = Self::options(ctx)?;
        let client = self.client(ctx)?;
        let gid = crate::client::check_gid(&key.external_id)?;
        let mut plan = Plan::default();
        // Which request keys each field wrote, for a field-by-field retry.
        let mut keys_of: Vec<(Field, Vec<String>, Vec<String>)> = Vec::new();
        for v in patch.values() {
            let data_before: Vec<String> = plan.data.keys().cloned().collect();
            let custom_before: Vec<String> = plan.custom.keys().cloned().collect();
            self.plan_field(ctx, &client, &opts, gid, v, &mut plan)
                .await?;
            let new_data: Vec<String> = plan
                .data
                .keys()
                .filter(|k| !data_before.contains(k))
                .cloned()
                .collect();
            let new_custom: Vec<String> = plan
                .custom
                .keys()
                .filter(|k| !custom_before.contains(k))
                .cloned()
                .collect();
            if plan.fields.last() == Some(&v.field()) {
                keys_of.push((v.field(), new_data, new_custom));
            }
        }
        let mut out = PushOutcome {
            refused: plan.refused,
            settled: plan.settled,
            ..PushOutcome::default()
        };
        if plan.data.is_empty() && plan.custom.is_empty() {
            return Ok(out);
        }
        let mut data = plan.data.clone();
        if !plan.custom.is_empty() {
            data.insert("custom_fields".into(), Value::Object(plan.custom.clone()));
        }
        match client.update_task(gid, &data).await {
            Ok(_) => out.applied.extend(plan.fields),
            // One refused field refuses the whole PUT: send the fields one by one, so only
            // the refused ones are refused (a priority field not on the task's project).
            Err(AsanaError::Rejected { status, message }) if keys_of.len() > 1 => {
                tracing::info!(task = %gid, %status, %message, "Asana refused the update: retrying field by field");
                for (field, data_keys, custom_keys) in keys_of {
                    let mut one: Map<String, Value> = data_keys
                        .iter()
                        .filter_map(|k| plan.data.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    let custom: Map<String, Value> = custom_keys
                        .iter()
                        .filter_map(|k| plan.custom.get(k).map(|v| (k.clone(), v.clone())))
                        .collect();
                    if !custom.is_empty() {
                        one.insert("custom_fields".into(), Value::Object(custom));
                    }
                    match client.update_task(gid, &one).await {
                        Ok(_) => out.applied.push(field),
                        Err(AsanaError::Rejected { status, message }) => out.refused.push((
                            field,
                            format!("Asana rejected the update ({status}): {message}"),
                        )),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(AsanaError::Rejected { status, message }) => {
                let reason = format!("Asana rejected the update ({status}): {message}");
                out.refused
                    .extend(plan.fields.into_iter().map(|f| (f, reason.clone())));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(out)
    }
}

#[async_trait]
impl RepairProvider for AsanaProvider {
    async fn list_changes(
        &self,
        ctx: &ProviderContext,
        req: &ListRequest<'_>,
    ) -> Result<ListPage, ProviderError> {
        self.list_changes_impl(ctx, req).await
    }

    async fn check_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        self.check_webhooks_impl(ctx, check).await
    }

    async fn register_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &WebhookCheck<'_>,
    ) -> Result<WebhookReport, ProviderError> {
        self.register_webhooks_impl(ctx, check).await
    }
}

/// Why Asana can never hold a status: it has `completed` and, where the integration maps
/// one, an in-progress rule.
fn status_refusal(ctx: &ProviderContext, s: &ordonis_core::Status) -> Option<String> {
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

impl AsanaProvider {
    /// Adds one field's part of the PUT to `plan` (or its refusal).
    async fn plan_field(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_signature_header_and_takes_a_handshake() -> Result<(), AsanaError> {
        let p = AsanaProvider::new()?;
        assert_eq!(p.capabilities().kept_headers, ["x-hook-signature"]);
        assert!(p.capabilities().webhook_handshake);
        assert!(p.repair().is_some());
        Ok(())
    }

    #[test]
    fn config_checks_name_the_part() -> Result<(), AsanaError> {
        let p = AsanaProvider::new()?;
        let null = Value::Null;
        let basic = ApiAuth::Basic {
            email: "a@b.c".into(),
            api_token: "t".into(),
        };
        let bearer = ApiAuth::Bearer { token: "t".into() };
        let check = |options: &Value, scope: &Value, auth| {
            p.check_config(&ConfigToCheck {
                options,
                scope,
                auth,
            })
            .map_err(|e| e.what)
        };
        assert_eq!(check(&null, &null, Some(&bearer)), Ok(()));
        assert_eq!(check(&null, &null, Some(&basic)), Err("auth".to_owned()));
        let bad_options = serde_json::json!({"no_such_option": 1});
        assert_eq!(check(&bad_options, &null, None), Err("options".to_owned()));
        let no_projects = serde_json::json!({"projects": []});
        assert_eq!(check(&null, &no_projects, None), Err("scope".to_owned()));
        let scope = serde_json::json!({"projects": ["1"]});
        assert_eq!(check(&null, &scope, None), Ok(()));
        Ok(())
    }
}
