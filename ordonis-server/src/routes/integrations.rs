//! `POST /api/integrations`, `GET /api/integrations?workspace_id=`, and one integration's life
//! cycle: `GET`, `PATCH` and `DELETE /api/integrations/{id}`, `POST …/{id}/handshake`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ordonis_core::{
    Actor, ApiAuth, Field, FieldRule, IntegrationChange, IntegrationConfig, IntegrationId,
    IntegrationRecord, IntegrationSecrets, NewIntegration, ProviderKind, WorkspaceId,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiJson, ApiQuery};
use crate::providers::{PUBLIC_HOSTS, check_base_url};
use crate::state::AppState;

/// The request body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    workspace_id: String,
    provider: String,
    base_url: String,
    auth: ApiAuth,
    #[serde(default)]
    webhook_secrets: Vec<String>,
    #[serde(default)]
    field_policy: BTreeMap<Field, FieldRule>,
    #[serde(default)]
    options: Option<Value>,
    /// What backfill imports and reconcile watches: Jira `{"jql": …}` (required), Asana
    /// `{"projects": [gid, …]}`.
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    backfill: Option<bool>,
    #[serde(default)]
    reconcile_every_s: Option<u64>,
    #[serde(default)]
    register_webhook: Option<bool>,
    #[serde(default)]
    sweep_every_s: Option<u64>,
    /// Where a task created from CollabHub goes when the call does not say.
    #[serde(default)]
    create: Option<ordonis_core::CreateDefaults>,
}

impl std::fmt::Debug for CreateIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateIntegration")
            .field("workspace_id", &self.workspace_id)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The URL a provider's webhook must be pointed at.
pub fn webhook_url(s: &AppState, provider: &str, id: &str) -> String {
    format!("{}/integrations/{provider}/{id}/webhook", s.public_url)
}

/// Creates an integration; 201 `{integration_id, webhook_url}`.
pub async fn create(
    State(s): State<AppState>,
    ApiJson(body): ApiJson<CreateIntegration>,
) -> Result<Response, ApiError> {
    let ws = WorkspaceId::new(body.workspace_id.clone())?;
    if !PUBLIC_HOSTS.iter().any(|(p, _)| *p == body.provider) {
        return Err(ApiError::bad_request(format!(
            "provider must be one of: {}",
            PUBLIC_HOSTS
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut base_url = check_base_url(&body.provider, &body.base_url, s.allow_any_provider_url)
        .map_err(|e| ApiError::bad_request(e.why))?;
    // Asana's API lives under /api/1.0 of its public host.
    if body.provider == "asana" && base_url.eq_ignore_ascii_case("https://app.asana.com") {
        base_url.push_str("/api/1.0");
    }
    let secrets: Vec<String> = body
        .webhook_secrets
        .iter()
        .map(|x| x.trim().to_owned())
        .collect();
    if secrets.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(
            "webhook_secrets must not hold empty strings",
        ));
    }
    if body.provider == "jira" && secrets.is_empty() {
        return Err(ApiError::bad_request(
            "webhook_secrets: Jira webhooks are verified with a secret; give at least one",
        ));
    }
    if let Some(o) = &body.options
        && !o.is_object()
    {
        return Err(ApiError::bad_request("options must be an object"));
    }
    let scope = body.scope.clone().unwrap_or(Value::Null);
    check_sync_settings(&body.provider, Some(&scope), body.reconcile_every_s)?;
    let mut config = IntegrationConfig::new(base_url);
    config.field_policy = body.field_policy.clone();
    config.options = body.options.clone().unwrap_or(Value::Null);
    config.scope = scope;
    if let Some(b) = body.backfill {
        config.sync.backfill = b;
    }
    if let Some(n) = body.reconcile_every_s {
        config.sync.reconcile_every_s = n;
    }
    if let Some(r) = body.register_webhook {
        config.sync.register_webhook = r;
    }
    if let Some(n) = body.sweep_every_s {
        config.sync.sweep_every_s = n;
    }
    if let Some(c) = body.create.clone() {
        config.create = c;
    }
    let new = NewIntegration {
        workspace_id: ws,
        provider: ProviderKind::new(body.provider.clone()),
        config,
        secrets: IntegrationSecrets {
            api_auth: Some(body.auth.clone()),
            webhook_secrets: secrets,
            app_secret: None,
        },
    };
    let id = s
        .engine
        .create_integration(new)
        .await
        .map_err(|e| match e {
            ordonis_core::Error::UnknownProvider(p) => {
                ApiError::bad_request(format!("the {p} adapter is not available in this build"))
            }
            other => other.into(),
        })?;
    // The backfill is due now: wake the workers.
    s.wake.notify_waiters();
    let id = id.to_string();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "integration_id": id,
            "webhook_url": webhook_url(&s, &body.provider, &id),
        })),
    )
        .into_response())
}

/// The repair-loop settings the API checks before the provider does, at creation and on a
/// change: a Jira integration needs a scope, and the reconcile interval is at least 1 s.
fn check_sync_settings(
    provider: &str,
    scope: Option<&Value>,
    reconcile_every_s: Option<u64>,
) -> Result<(), ApiError> {
    if provider == "jira" && scope.is_some_and(Value::is_null) {
        return Err(ApiError::bad_request(
            "scope: a Jira integration needs a scope, {\"jql\": \"project = KEY\"}: the issues \
             its backfill imports and its reconciliation watches",
        ));
    }
    if reconcile_every_s == Some(0) {
        return Err(ApiError::bad_request(
            "reconcile_every_s must be an integer of at least 1 (seconds)",
        ));
    }
    Ok(())
}

/// `?workspace_id=`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    workspace_id: Option<String>,
}

/// Lists a workspace's integrations (no secrets).
pub async fn list(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<WsQuery>,
) -> Result<Json<Value>, ApiError> {
    let ws = q
        .workspace_id
        .ok_or_else(|| ApiError::bad_request("workspace_id is required"))?;
    let ws = WorkspaceId::new(ws)?;
    let list = s.store.integrations(&ws).await?;
    let out: Vec<Value> = list.iter().map(|r| integration_json(&s, r)).collect();
    Ok(Json(json!({ "integrations": out })))
}

/// Until when the integration accepts a webhook handshake, if it does now (armed and within
/// the window).
pub fn handshake_until(r: &IntegrationRecord) -> Option<time::OffsetDateTime> {
    let config: ordonis_core::IntegrationConfig = serde_json::from_value(r.config.clone()).ok()?;
    let now = time::OffsetDateTime::now_utc();
    config
        .handshake_open(now)
        .then_some(config.handshake_until)
        .flatten()
}

/// An integration as the API shows it: settings, never secrets.
fn integration_json(s: &AppState, r: &IntegrationRecord) -> Value {
    let id = r.id.to_string();
    let config = |k: &str| r.config.get(k).cloned().unwrap_or(Value::Null);
    let sync = |k: &str| r.config.get("sync").and_then(|v| v.get(k)).cloned();
    json!({
        "integration_id": id,
        "workspace_id": r.workspace_id.as_str(),
        "provider": r.provider.as_str(),
        "base_url": config("base_url"),
        "field_policy": config("field_policy"),
        "options": config("options"),
        "state": r.state.as_str(),
        "webhook_url": webhook_url(s, r.provider.as_str(), &id),
        "created_at": super::json::ts(r.created_at),
        "scope": config("scope"),
        "backfill": sync("backfill").unwrap_or(Value::Bool(true)),
        "reconcile_every_s": sync("reconcile_every_s")
            .unwrap_or(json!(ordonis_core::SyncSettings::DEFAULT_RECONCILE_EVERY_S)),
        "register_webhook": sync("register_webhook").unwrap_or(Value::Bool(false)),
        "sweep_every_s": sync("sweep_every_s")
            .unwrap_or(json!(ordonis_core::SyncSettings::DEFAULT_SWEEP_EVERY_S)),
        "handshake_until": handshake_until(r).map(super::json::ts),
    })
}

/// Who changes integrations through the admin API (the ledger's actor).
fn admin() -> Actor {
    Actor::service("admin-api")
}

async fn find(s: &AppState, id: &str) -> Result<IntegrationRecord, ApiError> {
    let not_found = || ApiError::not_found(format!("integration {id}"));
    let iid: IntegrationId = id.parse().map_err(|_| not_found())?;
    s.store.integration(iid).await?.ok_or_else(not_found)
}

/// `GET /api/integrations/{id}`: the integration, its repair state, `sync` (`null` for
/// an integration without a scope), `access_denied`: the objects its credentials may
/// no longer read (a 403), each until a later event about it works, and `budget`: the API
/// budget the provider's answers last showed (`null` when none was seen; see
/// [`ordonis_core::ApiBudget`]).
pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = find(&s, &id).await?;
    let mut out = integration_json(&s, &rec);
    let sync = s.engine.sync_report(rec.id).await?;
    out["sync"] = serde_json::to_value(sync).map_err(|e| ApiError::internal(e.to_string()))?;
    let denied = access_page(&s, rec.id, &AccessQuery::default()).await?;
    out["access_denied"] =
        serde_json::to_value(denied.items).map_err(|e| ApiError::internal(e.to_string()))?;
    out["access_denied_next_cursor"] = json!(denied.next_cursor);
    let budget = s.engine.api_budget(rec.id).await?;
    out["budget"] = serde_json::to_value(budget).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(out))
}

/// `?limit=&cursor=` of the access problems (see [`super::paging`]).
#[derive(Debug, Default, Deserialize)]
pub struct AccessQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// A page of an integration's access problems, newest failed event first: keyset paging on
/// `(latest, event_id)`, the list's own order.
async fn access_page(
    s: &AppState,
    id: IntegrationId,
    q: &AccessQuery,
) -> Result<super::paging::Page<ordonis_core::AccessProblem>, ApiError> {
    use super::paging;
    const KIND: &str = "access";
    let after = paging::parse_job_cursor(KIND, q.cursor.as_deref())?;
    let limit = paging::limit(q.limit);
    let key = |p: &ordonis_core::AccessProblem| ordonis_core::JobCursor {
        at: p.latest,
        id: p.event_id.0,
    };
    // The view reads a bounded number of inbox rows (see `Engine::access_problems`); a page
    // is cut from it.
    let rows: Vec<_> = s
        .engine
        .access_problems(id)
        .await?
        .into_iter()
        .filter(|p| after.is_none_or(|a| key(p) < a))
        .take(limit + 1)
        .collect();
    Ok(paging::Page::of(rows, limit, |p| {
        paging::job_cursor(KIND, key(p))
    }))
}

/// `GET /api/integrations/{id}/access_problems?limit=&cursor=`: `{access_denied,
/// next_cursor}`, a page of the objects the integration's credentials may not read.
pub async fn access_problems(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AccessQuery>,
) -> Result<Json<Value>, ApiError> {
    let rec = find(&s, &id).await?;
    let page = access_page(&s, rec.id, &q).await?;
    Ok(Json(json!({
        "access_denied": serde_json::to_value(page.items)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        "next_cursor": page.next_cursor,
    })))
}

/// `POST /api/integrations/{id}/reconcile` → 202: a reconcile runs now (400 for an
/// integration without a scope).
pub async fn reconcile(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rec = find(&s, &id).await?;
    s.engine.reconcile_now(&rec.workspace_id, rec.id).await?;
    s.wake.notify_waiters();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"integration_id": rec.id.to_string(), "reconcile": "scheduled"})),
    )
        .into_response())
}

/// The `PATCH` body: any of the creation settings, `paused`, and `backfill: true` to re-run
/// the backfill.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchIntegration {
    /// A new scope (`null` only for Asana: webhooks only).
    #[serde(default, deserialize_with = "present")]
    scope: Option<Value>,
    #[serde(default)]
    reconcile_every_s: Option<u64>,
    #[serde(default)]
    register_webhook: Option<bool>,
    #[serde(default)]
    sweep_every_s: Option<u64>,
    /// `true` re-runs the backfill now.
    #[serde(default)]
    backfill: Option<bool>,
    #[serde(default)]
    auth: Option<ApiAuth>,
    #[serde(default)]
    webhook_secrets: Option<Vec<String>>,
    #[serde(default)]
    field_policy: Option<BTreeMap<Field, FieldRule>>,
    #[serde(default)]
    options: Option<Value>,
    #[serde(default)]
    paused: Option<bool>,
}

impl std::fmt::Debug for PatchIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatchIntegration")
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

/// `PATCH /api/integrations/{id}` → 200 with the integration (never its secrets). The
/// change is recorded in the workspace's ledger.
pub async fn patch(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchIntegration>,
) -> Result<Json<Value>, ApiError> {
    let rec = find(&s, &id).await?;
    if rec.provider.as_str() == "jira" && body.webhook_secrets.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::bad_request(
            "webhook_secrets: Jira webhooks are verified with a secret; give at least one",
        ));
    }
    check_sync_settings(
        rec.provider.as_str(),
        body.scope.as_ref(),
        body.reconcile_every_s,
    )?;
    let change = IntegrationChange {
        auth: body.auth,
        webhook_secrets: body.webhook_secrets,
        field_policy: body.field_policy,
        options: body.options,
        paused: body.paused,
        scope: body.scope,
        reconcile_every_s: body.reconcile_every_s,
        register_webhook: body.register_webhook,
        sweep_every_s: body.sweep_every_s,
        backfill: body.backfill == Some(true),
    };
    let rec = s
        .engine
        .change_integration(rec.id, change, &admin())
        .await?;
    s.wake.notify_waiters();
    Ok(Json(integration_json(&s, &rec)))
}

/// A field that is present, `null` included (`Some(Value::Null)`), as opposed to absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `DELETE /api/integrations/{id}` → 200: disabled. Its webhook answers 404, its jobs stop,
/// its tasks and ledger stay; the webhooks Ordonis registered for it are deleted.
pub async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rec = find(&s, &id).await?;
    let rec = s.engine.disable_integration(rec.id, &admin()).await?;
    Ok(Json(integration_json(&s, &rec)))
}

/// `POST /api/integrations/{id}/handshake` → 202: the integration accepts one webhook
/// handshake (Asana, for a new webhook) within the handshake window; 400 for a provider
/// without one.
pub async fn handshake(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let rec = find(&s, &id).await?;
    s.engine.expect_handshake(rec.id).await?;
    let until = match s.store.integration(rec.id).await? {
        Some(fresh) => handshake_until(&fresh),
        None => None,
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "integration_id": rec.id.to_string(),
            "expecting_handshake": true,
            "handshake_until": until.map(super::json::ts),
        })),
    )
        .into_response())
}
