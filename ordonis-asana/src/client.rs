//! A thin typed client for the Asana REST API (`https://app.asana.com/api/1.0`): the few
//! operations sync needs, with Asana's `{"data": …}` envelope, offset pagination, and the
//! per-token concurrency caps.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ordonis_core::ApiAuth;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use ordonis_core::provider_http::{self, Failure};

use crate::error::AsanaError;

/// Asana's API base URL.
pub const DEFAULT_BASE_URL: &str = "https://app.asana.com/api/1.0";

/// Default wait when a 429 carries no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Asana's cap on concurrent read requests (GET) per token.
pub const MAX_CONCURRENT_READS: usize = 50;

/// Asana's cap on concurrent write requests (POST, PUT, PATCH, DELETE) per token.
pub const MAX_CONCURRENT_WRITES: usize = 15;

/// Page size used when listing (Asana allows 1–100).
pub const PAGE_LIMIT: u32 = 100;

/// Upper bound on pages followed by one listing call.
pub const MAX_PAGES: usize = 1000;

/// The task fields a fetch asks for (`opt_fields`): `external` names our create's marker
/// (see `create`), so a task's first webhook joins the task it was created for.
pub const TASK_OPT_FIELDS: &str = "name,notes,html_notes,completed,assignee,assignee.name,\
external,\
due_on,due_at,start_on,custom_fields,custom_fields.name,custom_fields.resource_subtype,\
custom_fields.enum_value,custom_fields.enum_value.name,memberships,memberships.project,\
memberships.project.name,memberships.section,memberships.section.name,modified_at,\
permalink_url,parent";

/// The custom field fields read to resolve enum options by name.
pub const CUSTOM_FIELD_OPT_FIELDS: &str =
    "name,resource_subtype,enum_options,enum_options.name,enum_options.enabled";

/// Builds the shared HTTP client (rustls, 30 s request timeout, 10 s connect timeout, no
/// redirects: a 3xx answer is [`AsanaError::Redirected`], never re-sent elsewhere with the
/// token and body).
pub fn http_client() -> Result<reqwest::Client, AsanaError> {
    provider_http::client(concat!("ordonis-asana/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| AsanaError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Concurrent-request caps for one token: reads and writes are counted independently, as
/// Asana does. Share one value between every client of the same token.
#[derive(Debug)]
pub struct ConcurrencyLimits {
    reads: Semaphore,
    writes: Semaphore,
}

impl ConcurrencyLimits {
    /// Caps of `reads` concurrent reads and `writes` concurrent writes (each at least 1).
    pub fn new(reads: usize, writes: usize) -> Self {
        Self {
            reads: Semaphore::new(reads.max(1)),
            writes: Semaphore::new(writes.max(1)),
        }
    }

    /// Asana's documented caps: 50 reads and 15 writes.
    pub fn asana() -> Self {
        Self::new(MAX_CONCURRENT_READS, MAX_CONCURRENT_WRITES)
    }

    /// Read slots free now.
    pub fn available_reads(&self) -> usize {
        self.reads.available_permits()
    }

    /// Write slots free now.
    pub fn available_writes(&self) -> usize {
        self.writes.available_permits()
    }
}

impl Default for ConcurrencyLimits {
    fn default() -> Self {
        Self::asana()
    }
}

/// A compact reference (`{gid, name}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    /// The gid.
    #[serde(default)]
    pub gid: String,
    /// Its name, when Asana sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A webhook filter: an event is delivered when it passes any filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFilter {
    /// `task`, `story`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// `default_task`, `milestone`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_subtype: Option<String>,
    /// `changed`, `added`, `removed`, `deleted`, `undeleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// For `changed`: only these fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

impl WebhookFilter {
    /// The filters Ordonis uses for a project's tasks: every task action, changes to the
    /// synced task fields, and comment stories (added, changed, removed; Asana's webhooks
    /// guide lists those actions for comments).
    pub fn task_sync() -> Vec<WebhookFilter> {
        let comment = |a: &str| WebhookFilter {
            resource_type: Some("story".to_owned()),
            resource_subtype: Some("comment_added".to_owned()),
            action: Some(a.to_owned()),
            ..WebhookFilter::default()
        };
        let action = |a: &str| WebhookFilter {
            resource_type: Some("task".to_owned()),
            action: Some(a.to_owned()),
            ..WebhookFilter::default()
        };
        vec![
            WebhookFilter {
                fields: [
                    "name",
                    "notes",
                    "html_notes",
                    "completed",
                    "assignee",
                    "due_on",
                    "due_at",
                    "custom_fields",
                ]
                .map(str::to_owned)
                .to_vec(),
                ..action("changed")
            },
            action("added"),
            action("removed"),
            action("deleted"),
            action("undeleted"),
            comment("added"),
            comment("changed"),
            comment("removed"),
        ]
    }
}

/// A webhook as Asana describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// The webhook's gid.
    pub gid: String,
    /// The watched resource.
    #[serde(default)]
    pub resource: Option<ResourceRef>,
    /// Where deliveries go.
    #[serde(default)]
    pub target: String,
    /// Whether Asana considers it healthy.
    #[serde(default)]
    pub active: Option<bool>,
    /// Its filters.
    #[serde(default)]
    pub filters: Vec<WebhookFilter>,
}

/// What `POST /webhooks` answers after a successful handshake.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(rename = "data")]
    pub webhook: Webhook,
    /// The secret, as Asana echoes it in the body (the handshake already delivered it).
    #[serde(rename = "X-Hook-Secret", default)]
    pub secret: Option<String>,
}

impl fmt::Debug for CreatedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedWebhook")
            .field("webhook", &self.webhook)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// One answer of `GET /events`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct EventsPage {
    /// The events (same schema as webhook events; parse with
    /// [`crate::webhook::hints_from_events`]).
    #[serde(rename = "data", default)]
    pub events: Vec<Value>,
    /// The token for the next call.
    #[serde(default)]
    pub sync: String,
    /// More events are waiting: call again at once with `sync`.
    #[serde(default)]
    pub has_more: bool,
}

/// One page of a project's tasks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskPage {
    /// The tasks (`data`), with [`TASK_OPT_FIELDS`].
    pub tasks: Vec<Value>,
    /// The offset of the next page, `None` after the last.
    pub next_offset: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct NextPage {
    #[serde(default)]
    offset: Option<String>,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    next_page: Option<NextPage>,
}

/// Checks a gid before it goes into a URL path or query.
pub fn check_gid(gid: &str) -> Result<&str, AsanaError> {
    if !gid.is_empty()
        && gid.len() <= 64
        && gid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(gid)
    } else {
        Err(AsanaError::Config(format!("invalid Asana gid {gid:?}")))
    }
}

/// An Asana REST client for one token.
#[derive(Clone)]
pub struct AsanaClient {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    limits: Arc<ConcurrencyLimits>,
    max_response: usize,
}

impl fmt::Debug for AsanaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsanaClient")
            .field("base", &self.base)
            .field("auth", &"[REDACTED]")
            .field("limits", &self.limits)
            .finish()
    }
}

impl AsanaClient {
    /// A client for `base_url` ([`DEFAULT_BASE_URL`], or a fake) with a personal access
    /// token or OAuth access token (`ApiAuth::Bearer`), and its own concurrency caps.
    pub fn new(http: reqwest::Client, base_url: &str, auth: &ApiAuth) -> Result<Self, AsanaError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(AsanaError::Config(format!(
                "base URL must start with https:// (got {base:?})"
            )));
        }
        let token = match auth {
            ApiAuth::Bearer { token } => token,
            ApiAuth::Basic { .. } => {
                return Err(AsanaError::Config(
                    "Asana takes a bearer token (personal access token or OAuth), not basic auth"
                        .to_owned(),
                ));
            }
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| AsanaError::Config("the token contains invalid characters".to_owned()))?;
        auth.set_sensitive(true);
        Ok(Self {
            http,
            base,
            auth,
            limits: Arc::new(ConcurrencyLimits::asana()),
            max_response: provider_http::DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Caps the body of each answer read (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`](provider_http::DEFAULT_MAX_RESPONSE_BYTES)); a larger
    /// one is [`AsanaError::TooLarge`].
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response = limit;
        self
    }

    /// Shares concurrency caps with other clients of the same token.
    pub fn with_limits(mut self, limits: Arc<ConcurrencyLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The caps this client observes.
    pub fn limits(&self) -> &Arc<ConcurrencyLimits> {
        &self.limits
    }

    /// Sends under the read or write cap and classifies the answer.
    async fn send(
        &self,
        method: Method,
        rb: RequestBuilder,
        what: &str,
    ) -> Result<Response, AsanaError> {
        let sem = if method == Method::GET {
            &self.limits.reads
        } else {
            &self.limits.writes
        };
        let _permit = sem.acquire().await.map_err(|_| AsanaError::Transport {
            message: "the client is shutting down".to_owned(),
            source: None,
        })?;
        let resp = rb.send().await?;
        check(resp, what).await
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Response, AsanaError> {
        self.call_with(method, path, query, body, &[], what).await
    }

    /// Like `call`, with extra request headers (an `Asana-Enable` opt-in).
    pub(crate) async fn call_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<Response, AsanaError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| AsanaError::Config(format!("bad URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut rb = self
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json");
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(method, rb, what).await
    }

    /// Like `call`, with a `multipart/form-data` body (the form's own `Content-Type`, with
    /// its boundary): what `POST /attachments` takes.
    pub(crate) async fn call_form(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        form: reqwest::multipart::Form,
        what: &str,
    ) -> Result<Response, AsanaError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| AsanaError::Config(format!("bad URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let rb = self
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json")
            .multipart(form);
        self.send(method, rb, what).await
    }

    pub(crate) async fn json<T: DeserializeOwned>(&self, resp: Response) -> Result<T, AsanaError> {
        let bytes = provider_http::read_capped(resp, self.max_response).await?;
        serde_json::from_slice(&bytes).map_err(|e| AsanaError::Decode(e.to_string()))
    }

    pub(crate) async fn data<T: DeserializeOwned>(&self, resp: Response) -> Result<T, AsanaError> {
        Ok(self.json::<Envelope<T>>(resp).await?.data)
    }

    /// `GET /tasks/{gid}` with [`TASK_OPT_FIELDS`]: the task object (`data`).
    pub async fn get_task(&self, gid: &str) -> Result<Value, AsanaError> {
        let gid = check_gid(gid)?;
        let what = format!("task {gid}");
        let resp = self
            .call(
                Method::GET,
                &format!("/tasks/{gid}"),
                &[("opt_fields", TASK_OPT_FIELDS)],
                None,
                &what,
            )
            .await?;
        let v: Value = self.data(resp).await?;
        if !v.is_object() {
            return Err(AsanaError::Decode(format!(
                "{what}: `data` is not an object"
            )));
        }
        Ok(v)
    }

    /// `PUT /tasks/{gid}` with `{"data": fields}`; only the given fields change. Returns the
    /// updated task (`data`).
    pub async fn update_task(
        &self,
        gid: &str,
        fields: &Map<String, Value>,
    ) -> Result<Value, AsanaError> {
        let gid = check_gid(gid)?;
        let body = json!({ "data": fields });
        // An assignee may be an agent (an AI teammate), which Asana takes only under its
        // early-access opt-in.
        let headers: &[(&str, &str)] = if fields.contains_key("assignee") {
            &[("Asana-Enable", crate::create::AI_TEAMMATES)]
        } else {
            &[]
        };
        let resp = self
            .call_with(
                Method::PUT,
                &format!("/tasks/{gid}"),
                &[("opt_fields", TASK_OPT_FIELDS)],
                Some(&body),
                headers,
                &format!("task {gid}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `GET /custom_fields/{gid}` with its enum options.
    pub async fn get_custom_field(&self, gid: &str) -> Result<Value, AsanaError> {
        let gid = check_gid(gid)?;
        let resp = self
            .call(
                Method::GET,
                &format!("/custom_fields/{gid}"),
                &[("opt_fields", CUSTOM_FIELD_OPT_FIELDS)],
                None,
                &format!("custom field {gid}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `POST /webhooks`: creates a webhook on `resource` delivering to `target`. Asana
    /// performs the `X-Hook-Secret` handshake with `target` before this returns, so the
    /// receiver must already be expecting it.
    pub async fn create_webhook(
        &self,
        resource: &str,
        target: &str,
        filters: &[WebhookFilter],
    ) -> Result<CreatedWebhook, AsanaError> {
        let resource = check_gid(resource)?;
        let mut data = json!({ "resource": resource, "target": target });
        if !filters.is_empty() {
            data["filters"] = serde_json::to_value(filters)
                .map_err(|e| AsanaError::Config(format!("filters: {e}")))?;
        }
        let resp = self
            .call(
                Method::POST,
                "/webhooks",
                &[],
                Some(&json!({ "data": data })),
                "webhook creation",
            )
            .await?;
        self.json(resp).await
    }

    /// `GET /webhooks?workspace=…[&resource=…]`, every page.
    pub async fn list_webhooks(
        &self,
        workspace: &str,
        resource: Option<&str>,
    ) -> Result<Vec<Webhook>, AsanaError> {
        let workspace = check_gid(workspace)?;
        let mut query = vec![("workspace", workspace)];
        if let Some(r) = resource {
            query.push(("resource", check_gid(r)?));
        }
        query.push((
            "opt_fields",
            "resource,resource.name,target,active,filters,\
filters.resource_subtype,filters.action,filters.fields",
        ));
        self.list_all("/webhooks", &query, "webhooks").await
    }

    /// `DELETE /webhooks/{gid}`.
    pub async fn delete_webhook(&self, gid: &str) -> Result<(), AsanaError> {
        let gid = check_gid(gid)?;
        self.call(
            Method::DELETE,
            &format!("/webhooks/{gid}"),
            &[],
            None,
            &format!("webhook {gid}"),
        )
        .await
        .map(drop)
    }

    /// `GET /events?resource=…[&sync=…]`: the events since `sync`. The first call (without a
    /// token) answers 412 with a fresh token, which is returned here as an empty page holding
    /// it; a later 412 (token too old) is [`AsanaError::SyncTokenExpired`]: re-crawl, then
    /// continue with its token.
    pub async fn events(
        &self,
        resource: &str,
        sync: Option<&str>,
    ) -> Result<EventsPage, AsanaError> {
        let resource = check_gid(resource)?;
        let mut query = vec![("resource", resource)];
        if let Some(s) = sync {
            query.push(("sync", s));
        }
        match self
            .call(Method::GET, "/events", &query, None, "events")
            .await
        {
            Ok(resp) => self.json(resp).await,
            Err(AsanaError::SyncTokenExpired { sync: Some(token) }) if sync.is_none() => {
                Ok(EventsPage {
                    events: Vec::new(),
                    sync: token,
                    has_more: false,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// One page of `GET /tasks?project=…` with [`TASK_OPT_FIELDS`], `limit` (1–100) and the
    /// `offset` of the previous page; with `modified_since` (RFC 3339), only the tasks
    /// modified since then. (`GET /projects/{gid}/tasks` has no `modified_since`.)
    pub async fn project_tasks_page(
        &self,
        project: &str,
        modified_since: Option<&str>,
        limit: u32,
        offset: Option<&str>,
    ) -> Result<TaskPage, AsanaError> {
        let project = check_gid(project)?;
        let limit = limit.clamp(1, PAGE_LIMIT).to_string();
        let mut query = vec![
            ("project", project),
            ("opt_fields", TASK_OPT_FIELDS),
            ("limit", limit.as_str()),
        ];
        if let Some(m) = modified_since {
            query.push(("modified_since", m));
        }
        if let Some(o) = offset {
            query.push(("offset", o));
        }
        let what = format!("project {project}");
        let resp = self
            .call(Method::GET, "/tasks", &query, None, &what)
            .await?;
        let page: Page<Value> = self.json(resp).await?;
        Ok(TaskPage {
            tasks: page.data,
            next_offset: page
                .next_page
                .and_then(|n| n.offset)
                .filter(|o| !o.is_empty() && Some(o.as_str()) != offset),
        })
    }

    /// `GET /webhooks/{gid}`: the webhook with its health fields (`active`,
    /// `last_success_at`, `last_failure_at`, `last_failure_content`,
    /// `failure_deletion_timestamp`); [`AsanaError::NotFound`] once Asana deleted it.
    pub async fn get_webhook(&self, gid: &str) -> Result<Value, AsanaError> {
        let gid = check_gid(gid)?;
        let resp = self
            .call(
                Method::GET,
                &format!("/webhooks/{gid}"),
                &[(
                    "opt_fields",
                    "resource,target,active,created_at,last_success_at,last_failure_at,\
last_failure_content,failure_deletion_timestamp",
                )],
                None,
                &format!("webhook {gid}"),
            )
            .await?;
        self.data(resp).await
    }

    /// Follows `next_page.offset` to the end (at most [`MAX_PAGES`] pages of
    /// [`PAGE_LIMIT`]), collecting `data`.
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &str,
    ) -> Result<Vec<T>, AsanaError> {
        let limit = PAGE_LIMIT.to_string();
        let mut out = Vec::new();
        let mut offset: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", &limit));
            if let Some(o) = &offset {
                q.push(("offset", o));
            }
            let resp = self.call(Method::GET, path, &q, None, what).await?;
            let page: Page<T> = self.json(resp).await?;
            out.extend(page.data);
            match page.next_page.and_then(|n| n.offset) {
                Some(o) if !o.is_empty() && Some(&o) != offset.as_ref() => offset = Some(o),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// `Retry-After` (seconds or an HTTP date), defaulting to [`DEFAULT_RETRY_AFTER`].
pub fn retry_after(h: &HeaderMap) -> Duration {
    provider_http::retry_after(h, DEFAULT_RETRY_AFTER)
}

/// Asana's error body (`errors[].message`) as one line, or the raw text, capped.
fn error_message(body: &[u8]) -> String {
    let parts: Vec<String> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(|e| e.get("message").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
        })
        .unwrap_or_default();
    provider_http::error_text(parts, body)
}

async fn check(resp: Response, what: &str) -> Result<Response, AsanaError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    let failure = Failure::of(status, &headers, DEFAULT_RETRY_AFTER);
    let code = status.as_u16();
    if let Failure::Redirected { location } = failure {
        return Err(AsanaError::Redirected {
            status: code,
            location,
        });
    }
    let body = provider_http::read_capped(resp, provider_http::MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    // Asana's own meaning: an `/events` sync token too old to continue from.
    if status == StatusCode::PRECONDITION_FAILED {
        return Err(AsanaError::SyncTokenExpired {
            sync: serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("sync").and_then(Value::as_str).map(str::to_owned))
                .filter(|s| !s.is_empty()),
        });
    }
    let message = error_message(&body);
    Err(match failure {
        Failure::RateLimited { retry_after } | Failure::Unavailable { retry_after } => {
            AsanaError::RateLimited { retry_after }
        }
        Failure::Unauthenticated => AsanaError::Unauthorized { message },
        Failure::Forbidden => AsanaError::Forbidden {
            what: what.to_owned(),
            message,
        },
        Failure::NotFound => AsanaError::NotFound {
            what: what.to_owned(),
            message,
        },
        Failure::Temporary => AsanaError::Server {
            status: code,
            message,
        },
        // Asana's 409 is a refused change (a duplicate, a conflicting membership), not a
        // race to retry.
        Failure::Conflict | Failure::TooLarge | Failure::Redirected { .. } | Failure::Rejected => {
            AsanaError::Rejected {
                status: code,
                message,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_and_retry_after() {
        assert!(check_gid("1154849068499809").is_ok());
        assert!(check_gid("").is_err());
        assert!(check_gid("../users/me").is_err());
        assert!(check_gid("1?x=1").is_err());
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), DEFAULT_RETRY_AFTER);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Duration::from_secs(7));
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            error_message(br#"{"errors":[{"message":"a"},{"message":"b"}]}"#),
            "a; b"
        );
        assert_eq!(error_message(b""), "no details");
        assert_eq!(error_message(b"oops"), "oops");
    }

    #[test]
    fn created_webhook_hides_secret_in_debug() {
        let w: CreatedWebhook =
            serde_json::from_str(r#"{"data":{"gid":"1"},"X-Hook-Secret":"s3cr3t"}"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.secret.as_deref(), Some("s3cr3t"));
        assert!(!format!("{w:?}").contains("s3cr3t"));
    }
}
