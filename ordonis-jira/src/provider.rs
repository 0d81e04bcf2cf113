//! [`JiraProvider`]: the `ordonis_core::Provider` implementation. What a push does is in
//! `push/`; the repair loop's side in [`crate::repair`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ordonis_core::{
    Capabilities, ChangeHint, ConfigToCheck, Field, FieldPatch, FieldValue, InvalidInput,
    ObjectKey, Provider, ProviderContext, ProviderError, ProviderKind, PushOutcome, PushPlan,
    RemoteTask, RepairProvider, ValueCheck, WebhookAuth, WebhookRequest,
};
use serde_json::Value;

use crate::client::{JiraClient, http_client};
use crate::config::JiraOptions;
use crate::error::JiraError;
use crate::push::{Moved, Pusher, WriteLimiter};
use crate::rich_text::normalize_markdown;
use crate::webhook::{
    self, DELIVERY_HEADER, FLOW_HEADER, ParseContext, RETRY_HEADER, SIGNATURE_HEADER, remote_task,
    verify_jwt, verify_signature,
};

/// Default spacing between two writes to the same issue (Jira allows 20 writes per 2 s and
/// 100 per 30 s on one issue).
pub const DEFAULT_WRITE_SPACING: Duration = Duration::from_millis(100);

/// Default bound on transition hops when a status has no direct transition.
pub const DEFAULT_MAX_HOPS: usize = 4;

/// The Jira Cloud provider. One value serves every Jira integration.
///
/// Non-secret options read from [`ProviderContext::options`]:
/// - `jwt_issuer` (string): the `iss` a JWT-signed (app) webhook must carry. Without it any
///   non-empty `iss` is accepted once the signature and expiry check out.
pub struct JiraProvider {
    http: reqwest::Client,
    pub(crate) push: Pusher,
    max_response: usize,
    /// What each integration's answers said of its API budget, and the burst holds.
    budgets: std::sync::Arc<crate::budget::Budgets>,
}

impl fmt::Debug for JiraProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraProvider")
            .field("write_spacing", &self.push.writes.interval)
            .field("max_hops", &self.push.max_hops)
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
            push: Pusher::new(DEFAULT_WRITE_SPACING, DEFAULT_MAX_HOPS),
            max_response: ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES,
            budgets: std::sync::Arc::default(),
        }
    }

    /// Caps the body of each answer its clients read (default 8 MiB,
    /// [`DEFAULT_MAX_RESPONSE_BYTES`](ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES));
    /// a larger answer fails the call with [`JiraError::TooLarge`].
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response = limit;
        self
    }

    /// Sets the minimum spacing between writes to one issue (zero disables spacing).
    pub fn with_write_spacing(mut self, interval: Duration) -> Self {
        self.push.writes = WriteLimiter::new(interval);
        self
    }
    /// Sets the maximum number of transitions one status change may take.
    pub fn with_max_hops(mut self, hops: usize) -> Self {
        self.push.max_hops = hops.max(1);
        self
    }

    /// A REST client for an integration.
    pub fn client(&self, ctx: &ProviderContext) -> Result<JiraClient, JiraError> {
        let auth = ctx.secrets.api_auth.as_ref().ok_or_else(|| {
            JiraError::Config("the integration has no Jira API credentials".to_owned())
        })?;
        Ok(JiraClient::new(self.http.clone(), &ctx.base_url, auth)?
            .with_max_response_bytes(self.max_response)
            .with_budget(crate::budget::BudgetHandle {
                budgets: self.budgets.clone(),
                integration: ctx.integration_id,
            }))
    }
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
            object_type: crate::webhook::ISSUE,
        }
    }

    /// The options parse as [`JiraOptions`]; the scope is `null` (webhook-only) or
    /// `{"jql": "…"}`.
    fn check_config(&self, config: &ConfigToCheck<'_>) -> Result<(), InvalidInput> {
        JiraOptions::from_json(config.options)?;
        if !config.scope.is_null() {
            crate::config::scope_jql(config.scope)?;
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

    fn comments(&self) -> Option<&dyn ordonis_core::CommentProvider> {
        Some(self)
    }

    fn links(&self) -> Option<&dyn ordonis_core::LinkProvider> {
        Some(self)
    }

    fn creates(&self) -> Option<&dyn ordonis_core::CreateProvider> {
        Some(self)
    }

    fn accounts(&self) -> Option<&dyn ordonis_core::AccountProvider> {
        Some(self)
    }

    /// What this integration's answers said of Jira's points quota (`Beta-RateLimit`,
    /// `Beta-RateLimit-Policy`, `X-(Beta-)RateLimit-NearLimit`) and the limits it met.
    fn budget(&self, integration: ordonis_core::IntegrationId) -> Option<ordonis_core::ApiBudget> {
        self.budgets.get(integration)
    }

    /// A status push's intermediate statuses, from the path planned over the issue's
    /// workflow.
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
        let passes = self.push.planned_passes(ctx, &client, id, target).await?;
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
        self.push.edit(ctx, &client, id, patch, &mut out).await?;

        // 2. Assignee.
        self.push.assign(ctx, &client, id, patch, &mut out).await?;

        // 3. Status, through transitions.
        if let Some(FieldValue::Status(target)) = patch.get(Field::Status) {
            match self.push.transition_to(ctx, &client, id, target).await {
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
    /// An issue is in scope when the scope's JQL finds it: one search, `(<scope>) AND id = N`,
    /// reading the issue fresh (`reconcileIssues`) rather than from the lagging index.
    async fn scope_check(
        &self,
        ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<Option<String>, ProviderError> {
        let jql = crate::repair::strip_order_by(crate::config::scope_jql(&ctx.scope)?);
        let Ok(id) = key.external_id.parse::<i64>() else {
            return Err(ProviderError::BadInput(format!(
                "issue id {:?} is not numeric",
                key.external_id
            )));
        };
        let mut req = crate::client::SearchRequest::new(format!("({jql}) AND id = {id}"));
        req.fields = vec!["id".to_owned()];
        req.max_results = Some(1);
        req.reconcile_issues = vec![id];
        let page = self.client(ctx)?.search_jql(&req).await?;
        Ok(page.issues.is_empty().then(|| {
            format!(
                "issue {} does not match the scope's JQL ({jql})",
                key.external_id
            )
        }))
    }

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
        crate::repair::check_webhooks(&self.client(ctx)?, ctx, check).await
    }

    async fn register_webhooks(
        &self,
        ctx: &ProviderContext,
        check: &ordonis_core::WebhookCheck<'_>,
    ) -> Result<ordonis_core::WebhookReport, ProviderError> {
        crate::repair::register_webhooks(&self.client(ctx)?, ctx, check).await
    }

    async fn list_ids(
        &self,
        ctx: &ProviderContext,
        req: &ordonis_core::IdsRequest<'_>,
    ) -> Result<Option<ordonis_core::IdsPage>, ProviderError> {
        crate::sweep::list_ids(&self.client(ctx)?, req)
            .await
            .map(Some)
    }

    async fn delete_webhooks(
        &self,
        ctx: &ProviderContext,
        ids: &[String],
    ) -> Result<(), ProviderError> {
        crate::sweep::delete_webhooks(&self.client(ctx)?, ids).await
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
