//! The testkit's provider conformance suite against a wiremock fake Jira.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{SECRET, fixture, fixture_names};
use http::{HeaderMap, HeaderValue};
use ordonis_core::{FieldPatch, FieldValue, ObjectKey, Provider, ProviderContext};
use ordonis_fakes::jira::{jira_time, search_page};
use ordonis_jira::JiraProvider;
use ordonis_jira::normalize::fields_patch;
use ordonis_jira::rich_text::markdown_to_adf as text_to_adf;
use ordonis_testkit::ProviderHarness;
use ordonis_testkit::provider_suite::HttpFault;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct FakeState {
    issues: Mutex<HashMap<String, Value>>,
    fault: Mutex<Option<HttpFault>>,
}

struct FakeJira(Arc<FakeState>);

impl Respond for FakeJira {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if let Some(fault) = self.0.fault.lock().unwrap().take() {
            return match fault {
                HttpFault::RateLimited { retry_after_secs } => ResponseTemplate::new(429)
                    .insert_header("Retry-After", retry_after_secs.to_string().as_str())
                    .insert_header("RateLimit-Reason", "jira-burst-based"),
                HttpFault::ServerError => ResponseTemplate::new(503),
                HttpFault::Timeout => ResponseTemplate::new(200)
                    .set_body_json(json!({}))
                    .set_delay(Duration::from_secs(10)),
                HttpFault::Unauthorized => ResponseTemplate::new(401),
                HttpFault::Forbidden => ResponseTemplate::new(403),
                HttpFault::NotFound => ResponseTemplate::new(404)
                    .set_body_json(json!({"errorMessages": ["Issue does not exist"]})),
            };
        }
        if req.method.as_str() == "POST" && req.url.path() == "/rest/api/3/search/jql" {
            // The testkit's search: the JQL subset, field selection and token paging.
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let issues = self.0.issues.lock().unwrap();
            let base = format!("{}://{}", req.url.scheme(), req.url.authority());
            return match search_page(issues.values(), &body, &base) {
                Ok(v) => ResponseTemplate::new(200).set_body_json(v),
                Err(e) => ResponseTemplate::new(400).set_body_json(json!({"errorMessages": [e]})),
            };
        }
        let Some(id) = req.url.path().strip_prefix("/rest/api/3/issue/") else {
            return ResponseTemplate::new(404);
        };
        let mut issues = self.0.issues.lock().unwrap();
        let Some(issue) = issues.get_mut(id) else {
            return ResponseTemplate::new(404);
        };
        match req.method.as_str() {
            "GET" => ResponseTemplate::new(200).set_body_json(issue.clone()),
            "PUT" => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                for (k, v) in body["fields"].as_object().unwrap() {
                    issue["fields"][k] = v.clone();
                }
                ResponseTemplate::new(204)
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

struct JiraHarness {
    server: MockServer,
    state: Arc<FakeState>,
    provider: Arc<JiraProvider>,
    ctx: ProviderContext,
    next_id: AtomicU64,
}

async fn harness() -> Arc<dyn ProviderHarness> {
    let server = MockServer::start().await;
    let state = Arc::new(FakeState::default());
    Mock::given(wiremock::matchers::any())
        .respond_with(FakeJira(state.clone()))
        .mount(&server)
        .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let provider =
        Arc::new(JiraProvider::with_http(http).with_write_spacing(Duration::from_millis(1)));
    let ctx = common::ctx(&server.uri());
    Arc::new(JiraHarness {
        server,
        state,
        provider,
        ctx,
        next_id: AtomicU64::new(10001),
    })
}

#[async_trait]
impl ProviderHarness for JiraHarness {
    fn provider(&self) -> Arc<dyn Provider> {
        self.provider.clone()
    }
    fn context(&self) -> ProviderContext {
        self.ctx.clone()
    }
    fn secret(&self) -> String {
        SECRET.to_owned()
    }
    fn sign_webhook(&self, body: &[u8], secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature",
            HeaderValue::from_str(&ordonis_jira::webhook::sign(secret, body)).unwrap(),
        );
        h.insert(
            "x-atlassian-webhook-identifier",
            HeaderValue::from_static("conformance-1"),
        );
        h
    }
    fn signature_header(&self) -> &'static str {
        "x-hub-signature"
    }
    fn sample_webhook(&self, key: &ObjectKey) -> Vec<u8> {
        json!({
            "timestamp": 1_735_441_883_659_i64,
            "webhookEvent": "jira:issue_updated",
            "user": {"accountId": "acc-1", "displayName": "Ann"},
            "issue": {"id": key.external_id, "key": "PROJ-1", "fields": {
                "summary": "Sample", "description": null,
                "status": {"name": "To Do", "statusCategory": {"key": "new"}},
                "updated": "2024-12-29T08:41:23.303+0530"}},
            "changelog": {"items": [{"fieldId": "summary", "field": "summary",
                "fromString": "Old", "toString": "Sample"}]}
        })
        .to_string()
        .into_bytes()
    }
    fn fixtures(&self) -> Vec<(String, Vec<u8>)> {
        fixture_names()
            .map(|n| (n.to_owned(), fixture(n)))
            .collect()
    }
    async fn seed_remote(&self, fields: &FieldPatch) -> ObjectKey {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst).to_string();
        let mut f = json!({
            "status": {"name": "To Do", "statusCategory": {"key": "new"}},
            "updated": "2026-01-01T00:00:00.000+0000"
        });
        for v in fields.values() {
            match v {
                FieldValue::Title(t) => f["summary"] = json!(t),
                FieldValue::Description(d) => f["description"] = text_to_adf(d),
                _ => {}
            }
        }
        let issue = json!({"id": id, "key": format!("PROJ-{id}"), "fields": f});
        self.state.issues.lock().unwrap().insert(id.clone(), issue);
        ObjectKey::new(id, "issue")
    }
    async fn remote_state(&self, key: &ObjectKey) -> Option<FieldPatch> {
        let issues = self.state.issues.lock().unwrap();
        issues
            .get(&key.external_id)
            .map(|i| fields_patch(&i["fields"]))
    }
    fn scope(&self) -> Value {
        json!({"jql": "project = PROJ"})
    }
    async fn edit_remote_silently(&self, key: &ObjectKey, title: &str) {
        let mut issues = self.state.issues.lock().unwrap();
        let issue = issues.get_mut(&key.external_id).unwrap();
        issue["fields"]["summary"] = json!(title);
        // The wiremock fake has no index lag: the edit is searchable at once.
        issue["fields"]["updated"] = json!(jira_time(
            i64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
            )
            .unwrap()
        ));
    }
    async fn fail_next(&self, fault: HttpFault) {
        let _ = &self.server;
        *self.state.fault.lock().unwrap() = Some(fault);
    }
}

ordonis_testkit::provider_suite!(harness);
