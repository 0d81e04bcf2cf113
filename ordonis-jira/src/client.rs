//! A thin typed client for the Jira Cloud REST API v3: the few operations sync needs.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ordonis_core::ApiAuth;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use ordonis_core::provider_http::{self, Failure};

use crate::error::JiraError;
use crate::normalize::MAPPED_FIELDS;

/// Default wait when a 429 carries no `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Builds the shared HTTP client (rustls, 30 s request timeout, 10 s connect timeout, no
/// redirects: a 3xx answer is [`JiraError::Redirected`], never re-sent elsewhere with the
/// credentials and body).
pub fn http_client() -> Result<reqwest::Client, JiraError> {
    provider_http::client(concat!("ordonis-jira/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| JiraError::Config(format!("cannot build the HTTP client: {e}")))
}

/// A Jira Cloud REST v3 client for one site and one set of credentials.
#[derive(Clone)]
pub struct JiraClient {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    max_response: usize,
    /// Where the answers' quota headers and the limits met are recorded (the provider's
    /// clients); `None` for a client on its own.
    budget: Option<crate::budget::BudgetHandle>,
}

impl fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JiraClient")
            .field("base", &self.base)
            .field("auth", &"[REDACTED]")
            .finish()
    }
}

/// A workflow transition available on an issue (`GET …/transitions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    /// Transition id (a string in Jira's API).
    pub id: String,
    /// Transition name ("Start progress").
    #[serde(default)]
    pub name: String,
    /// The status the transition leads to.
    pub to: TransitionTarget,
    /// Whether a screen is shown.
    #[serde(default)]
    pub has_screen: bool,
    /// Whether the caller may perform it now (absent means yes).
    #[serde(default = "yes")]
    pub is_available: bool,
    /// Fields on the transition screen (with `expand=transitions.fields`).
    #[serde(default)]
    pub fields: serde_json::Map<String, Value>,
}

fn yes() -> bool {
    true
}

impl Transition {
    /// Required screen fields Ordonis cannot fill (required and without a default value).
    pub fn unfillable_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .fields
            .iter()
            .filter(|(_, f)| required_without_default(f))
            .map(|(id, f)| field_label(id, f))
            .collect();
        out.sort();
        out
    }
}

/// Whether a screen field's metadata (a transition's or the create screen's) says it must be
/// given: `required` and no `hasDefaultValue`.
pub(crate) fn required_without_default(meta: &Value) -> bool {
    meta.get("required").and_then(Value::as_bool) == Some(true)
        && meta.get("hasDefaultValue").and_then(Value::as_bool) != Some(true)
}

/// A screen field as a refusal names it: `Name (id)`, or the id alone.
pub(crate) fn field_label(id: &str, meta: &Value) -> String {
    meta.get("name")
        .and_then(Value::as_str)
        .map_or_else(|| id.to_owned(), |n| format!("{n} ({id})"))
}

/// A transition's target status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionTarget {
    /// Status id.
    #[serde(default)]
    pub id: String,
    /// Status name.
    #[serde(default)]
    pub name: String,
    /// Its category.
    #[serde(default)]
    pub status_category: Option<StatusCategoryRef>,
}

/// A status category reference (`{key: "new" | "indeterminate" | "done"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCategoryRef {
    /// Category key.
    #[serde(default)]
    pub key: String,
}

#[derive(Deserialize)]
struct TransitionsResponse {
    #[serde(default)]
    transitions: Vec<Transition>,
}

/// A JQL search request (`POST /rest/api/3/search/jql`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    /// A bounded JQL query.
    pub jql: String,
    /// Fields to return (Jira returns only `id` by default).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Page size (default 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_results: Option<u32>,
    /// The token of the page to read; `None` for the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    /// Issue ids (at most 50) the search reads fresh rather than from its lagging index:
    /// read-after-write consistency for the issues we wrote recently.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reconcile_issues: Vec<i64>,
    /// Issue property keys to return with each issue (`properties: {key: value}`), at most
    /// five.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
}

impl SearchRequest {
    /// A search for `jql` returning the fields the adapter maps.
    pub fn new(jql: impl Into<String>) -> Self {
        Self {
            jql: jql.into(),
            fields: MAPPED_FIELDS.split(',').map(str::to_owned).collect(),
            max_results: None,
            next_page_token: None,
            reconcile_issues: Vec::new(),
            properties: Vec::new(),
        }
    }
}

/// One page of search results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    /// The issues (raw JSON; map them with [`crate::normalize::fields_patch`]).
    #[serde(default)]
    pub issues: Vec<Value>,
    /// The next page's token; `None` on the last page.
    #[serde(default)]
    pub next_page_token: Option<String>,
    /// True on the last page (when Jira says so).
    #[serde(default)]
    pub is_last: Option<bool>,
}

/// Checks an issue id or key before it goes into a URL path.
pub fn check_issue_ref(id: &str) -> Result<&str, JiraError> {
    if !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(JiraError::Config(format!("invalid Jira issue id {id:?}")))
    }
}

impl JiraClient {
    /// A client for `base_url` (`https://acme.atlassian.net`) with the given credentials.
    pub fn new(http: reqwest::Client, base_url: &str, auth: &ApiAuth) -> Result<Self, JiraError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(JiraError::Config(format!(
                "base URL must start with https:// (got {base:?})"
            )));
        }
        let raw = match auth {
            ApiAuth::Basic { email, api_token } => {
                format!("Basic {}", STANDARD.encode(format!("{email}:{api_token}")))
            }
            ApiAuth::Bearer { token } => format!("Bearer {token}"),
        };
        let mut auth = HeaderValue::from_str(&raw)
            .map_err(|_| JiraError::Config("credentials contain invalid characters".to_owned()))?;
        auth.set_sensitive(true);
        Ok(Self {
            http,
            base,
            auth,
            max_response: provider_http::DEFAULT_MAX_RESPONSE_BYTES,
            budget: None,
        })
    }

    /// Caps the body of each answer read (default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`](provider_http::DEFAULT_MAX_RESPONSE_BYTES)); a larger
    /// one is [`JiraError::TooLarge`].
    pub fn with_max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response = limit;
        self
    }

    /// Records the answers' quota headers and the limits met into an integration's budget.
    pub(crate) fn with_budget(mut self, budget: crate::budget::BudgetHandle) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The site's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json")
    }

    pub(crate) async fn send(&self, rb: RequestBuilder, what: &str) -> Result<Response, JiraError> {
        let req = rb.build()?;
        let kind = crate::budget::call_kind(req.method().as_str(), req.url().path());
        if let Some(b) = &self.budget {
            b.check(&kind)?;
        }
        let resp = self.http.execute(req).await?;
        if let Some(b) = &self.budget {
            b.observe(resp.headers());
        }
        let checked = check(resp, what, &kind).await;
        if let (
            Some(b),
            Err(JiraError::RateLimited {
                retry_after,
                reason,
                ..
            }),
        ) = (&self.budget, &checked)
        {
            b.limited(&kind, *retry_after, reason);
        }
        checked
    }

    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        resp: Response,
    ) -> Result<T, JiraError> {
        let bytes = provider_http::read_capped(resp, self.max_response).await?;
        serde_json::from_slice(&bytes).map_err(|e| JiraError::Decode(e.to_string()))
    }

    /// `GET /rest/api/3/issue/{id}` with the mapped fields.
    pub async fn get_issue(&self, id: &str) -> Result<Value, JiraError> {
        let id = check_issue_ref(id)?;
        let rb = self.request(
            Method::GET,
            // With our create's marker property: an issue's first webhook (which carries no
            // properties) is read this way and joins the task it was created for.
            &format!("/rest/api/3/issue/{id}?fields={MAPPED_FIELDS}&properties=ordonis"),
        );
        let v: Value = self
            .json(self.send(rb, &format!("issue {id}")).await?)
            .await?;
        if !v.is_object() || v.get("fields").is_none_or(|f| !f.is_object()) {
            return Err(JiraError::Decode(format!(
                "issue {id}: the response has no `fields` object"
            )));
        }
        Ok(v)
    }

    /// The ids of the fields on the issue's edit screen (`GET /rest/api/3/issue/{id}/editmeta`).
    pub async fn edit_fields(
        &self,
        id: &str,
    ) -> Result<std::collections::BTreeSet<String>, JiraError> {
        let id = check_issue_ref(id)?;
        let rb = self.request(Method::GET, &format!("/rest/api/3/issue/{id}/editmeta"));
        let v: Value = self
            .json(self.send(rb, &format!("issue {id} edit screen")).await?)
            .await?;
        let fields = v
            .get("fields")
            .and_then(Value::as_object)
            .ok_or_else(|| JiraError::Decode(format!("issue {id}: editmeta has no `fields`")))?;
        Ok(fields.keys().cloned().collect())
    }

    /// Every priority of the site, `(id, name)`, from `GET /rest/api/3/priority/search`
    /// (paged by `startAt`, at most `max_pages` pages).
    pub async fn priorities(&self, max_pages: usize) -> Result<Vec<(String, String)>, JiraError> {
        let mut out = Vec::new();
        let mut start = 0usize;
        for _ in 0..max_pages {
            let rb = self.request(
                Method::GET,
                &format!("/rest/api/3/priority/search?startAt={start}&maxResults=100"),
            );
            let v: Value = self.json(self.send(rb, "priorities").await?).await?;
            let values = v
                .get("values")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = values.len();
            for p in values {
                if let (Some(id), Some(name)) = (
                    p.get("id").and_then(Value::as_str),
                    p.get("name").and_then(Value::as_str),
                ) {
                    out.push((id.to_owned(), name.to_owned()));
                }
            }
            if n == 0 || v.get("isLast").and_then(Value::as_bool) != Some(false) {
                break;
            }
            start += n;
        }
        Ok(out)
    }

    /// The status names of a project's workflows, per issue type id
    /// (`GET /rest/api/3/project/{project}/statuses`).
    pub async fn project_statuses(
        &self,
        project: &str,
    ) -> Result<Vec<(String, Vec<String>)>, JiraError> {
        let project = check_issue_ref(project)?;
        let rb = self.request(
            Method::GET,
            &format!("/rest/api/3/project/{project}/statuses"),
        );
        let v: Value = self
            .json(
                self.send(rb, &format!("project {project} statuses"))
                    .await?,
            )
            .await?;
        let types = v
            .as_array()
            .ok_or_else(|| JiraError::Decode("project statuses: not a list".to_owned()))?;
        Ok(types
            .iter()
            .map(|t| {
                let id = t.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                let names = t
                    .get("statuses")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.get("name").and_then(Value::as_str))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                (id, names)
            })
            .collect())
    }

    /// The workflow of a project's issue type, statuses and transitions
    /// (`POST /rest/api/3/workflows/preview`: needs the *View (read-only) workflow* or
    /// *Administer projects* project permission; without it Jira answers 401, 403 or 404).
    pub async fn workflow_preview(
        &self,
        project_id: &str,
        issue_type_id: &str,
    ) -> Result<Value, JiraError> {
        let rb = self
            .request(Method::POST, "/rest/api/3/workflows/preview")
            .json(&json!({ "projectId": project_id, "issueTypeIds": [issue_type_id] }));
        let v: Value = self
            .json(
                self.send(rb, &format!("workflow of project {project_id}"))
                    .await?,
            )
            .await?;
        if !v.is_object() {
            return Err(JiraError::Decode(
                "workflow preview: not an object".to_owned(),
            ));
        }
        Ok(v)
    }

    /// `PUT /rest/api/3/issue/{id}` with `{"fields": fields}`.
    pub async fn edit_issue(&self, id: &str, fields: &Value) -> Result<(), JiraError> {
        let id = check_issue_ref(id)?;
        let rb = self
            .request(Method::PUT, &format!("/rest/api/3/issue/{id}"))
            .json(&json!({ "fields": fields }));
        self.send(rb, &format!("issue {id}")).await.map(drop)
    }

    /// `PUT /rest/api/3/issue/{id}/assignee`; `None` unassigns.
    pub async fn assign(&self, id: &str, account_id: Option<&str>) -> Result<(), JiraError> {
        let id = check_issue_ref(id)?;
        let rb = self
            .request(Method::PUT, &format!("/rest/api/3/issue/{id}/assignee"))
            .json(&json!({ "accountId": account_id }));
        self.send(rb, &format!("issue {id}")).await.map(drop)
    }

    /// `GET /rest/api/3/issue/{id}/transitions?expand=transitions.fields`.
    pub async fn transitions(&self, id: &str) -> Result<Vec<Transition>, JiraError> {
        let id = check_issue_ref(id)?;
        let rb = self.request(
            Method::GET,
            &format!("/rest/api/3/issue/{id}/transitions?expand=transitions.fields"),
        );
        let r: TransitionsResponse = self
            .json(self.send(rb, &format!("issue {id}")).await?)
            .await?;
        Ok(r.transitions)
    }

    /// `POST /rest/api/3/issue/{id}/transitions` with `{"transition": {"id": …}}` and the
    /// transition screen's `fields` when it needs some (a resolution).
    pub async fn do_transition(
        &self,
        id: &str,
        transition_id: &str,
        fields: Option<&serde_json::Map<String, Value>>,
    ) -> Result<(), JiraError> {
        let id = check_issue_ref(id)?;
        let mut body = json!({ "transition": { "id": transition_id } });
        if let Some(f) = fields {
            body["fields"] = Value::Object(f.clone());
        }
        let rb = self
            .request(Method::POST, &format!("/rest/api/3/issue/{id}/transitions"))
            .json(&body);
        self.send(rb, &format!("issue {id}")).await.map(drop)
    }

    /// One page of `POST /rest/api/3/search/jql`. Follow [`SearchPage::next_page_token`] by
    /// setting it on the request until it is `None`.
    pub async fn search_jql(&self, req: &SearchRequest) -> Result<SearchPage, JiraError> {
        let rb = self
            .request(Method::POST, "/rest/api/3/search/jql")
            .json(req);
        self.json(self.send(rb, "search").await?).await
    }

    /// Every page of a JQL search, up to `max_pages` pages.
    pub async fn search_jql_all(
        &self,
        mut req: SearchRequest,
        max_pages: usize,
    ) -> Result<Vec<Value>, JiraError> {
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let page = self.search_jql(&req).await?;
            out.extend(page.issues);
            match page.next_page_token {
                Some(t)
                    if page.is_last != Some(true) && Some(&t) != req.next_page_token.as_ref() =>
                {
                    req.next_page_token = Some(t);
                }
                _ => break,
            }
        }
        Ok(out)
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Why Jira limited a call: `RateLimit-Reason`, else the points-based limits' beta headers
/// (`X-Beta-RateLimit-Reason`, e.g. `jira-quota-tenant-based`), else `retry-after`.
fn rate_limit_reason(h: &HeaderMap) -> String {
    [
        "ratelimit-reason",
        "x-beta-ratelimit-reason",
        "beta-ratelimit-reason",
    ]
    .iter()
    .find_map(|name| header_str(h, name).filter(|r| !r.is_empty()))
    .map_or_else(|| "retry-after".to_owned(), str::to_owned)
}

/// How long a 429 says to wait: `Retry-After` (already in `retry_after`), or, for the
/// points-based quota (enforced since March 2026), `Beta-Retry-After` when it says longer.
/// At quota exhaustion Jira's headers are inconsistent, so the longer of the two wins: the
/// whole integration pauses until the quota's reset rather than hammering it.
fn quota_wait(h: &HeaderMap, retry_after: Duration) -> Duration {
    let beta = header_str(h, "beta-retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(24 * 3600)));
    match beta {
        Some(b) if b > retry_after || h.get("retry-after").is_none() => b,
        _ => retry_after,
    }
}

/// `Retry-After` (seconds or an HTTP date), defaulting to [`DEFAULT_RETRY_AFTER`].
pub fn retry_after(h: &HeaderMap) -> Duration {
    provider_http::retry_after(h, DEFAULT_RETRY_AFTER)
}

/// Jira's `errors` object (field id → reason) from an error body.
fn field_errors(body: &[u8]) -> std::collections::BTreeMap<String, String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_object).cloned())
        .map(|errs| {
            errs.into_iter()
                .map(|(k, e)| (k, e.as_str().unwrap_or("invalid").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Jira's error body (`errorMessages`, `errors`) as one line, or the raw text, capped.
fn error_message(body: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(a) = v.get("errorMessages").and_then(Value::as_array) {
            parts.extend(a.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if let Some(errs) = v.get("errors").and_then(Value::as_object) {
            for (k, e) in errs {
                parts.push(format!("{k}: {}", e.as_str().unwrap_or("invalid")));
            }
        }
    }
    provider_http::error_text(parts, body)
}

async fn check(resp: Response, what: &str, kind: &str) -> Result<Response, JiraError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    let failure = Failure::of(status, &headers, DEFAULT_RETRY_AFTER);
    let code = status.as_u16();
    if let Failure::Redirected { location } = failure {
        return Err(JiraError::Redirected {
            status: code,
            location,
        });
    }
    let body = provider_http::read_capped(resp, provider_http::MAX_ERROR_BODY_BYTES)
        .await
        .unwrap_or_default();
    let message = error_message(&body);
    Err(match failure {
        Failure::RateLimited { retry_after } => JiraError::RateLimited {
            retry_after: quota_wait(&headers, retry_after),
            reason: rate_limit_reason(&headers),
            call: kind.to_owned(),
        },
        // Unavailable, saying for how long: every call waits.
        Failure::Unavailable { retry_after } => JiraError::RateLimited {
            retry_after,
            reason: "service-unavailable".to_owned(),
            call: kind.to_owned(),
        },
        // An issue's data limit (too many comments, links, a field too large): this change
        // cannot be made, whenever it is retried.
        Failure::TooLarge => JiraError::Rejected {
            status: code,
            message: format!("the issue is over a Jira data limit: {message}"),
            field_errors: field_errors(&body),
        },
        Failure::Unauthenticated => JiraError::Unauthorized {
            status: code,
            message: format!(
                "the API credentials were not accepted (check the e-mail and API token or the OAuth token): {message}"
            ),
        },
        Failure::Forbidden => JiraError::Unauthorized {
            status: code,
            message: format!("the account lacks permission for {what}: {message}"),
        },
        Failure::NotFound => JiraError::NotFound {
            what: what.to_owned(),
        },
        // Jira answers 409 to concurrent edits of one issue: try again.
        Failure::Conflict | Failure::Temporary => JiraError::Server {
            status: code,
            message,
        },
        Failure::Redirected { .. } | Failure::Rejected => JiraError::Rejected {
            status: code,
            message,
            field_errors: field_errors(&body),
        },
    })
}
