//! The testkit's provider conformance suite against a wiremock fake Asana.
//!
//! Every case runs except `forbidden_terminal`: issue 5 makes a 403 on `GET /tasks/{gid}` a
//! tombstone (the task is no longer visible), so a fetch answers `NotFound` there. The
//! Asana-specific replacement below checks both halves: a 403 on a fetch is `NotFound`, and
//! a 403 on any other call (a push) is terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{SECRET, WEBHOOK_FIXTURES, fixture, task_json};
use http::HeaderMap;
use ordonis_asana::AsanaProvider;
use ordonis_asana::normalize::{AsanaOptions, fields_patch};
use ordonis_core::{
    Field, FieldPatch, FieldValue, ObjectKey, Provider, ProviderContext, ProviderError,
};
use ordonis_testkit::ProviderHarness;
use ordonis_testkit::provider_suite::HttpFault;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

#[derive(Default)]
struct FakeState {
    tasks: Mutex<HashMap<String, Value>>,
    fault: Mutex<Option<HttpFault>>,
}

struct FakeAsana(Arc<FakeState>);

impl Respond for FakeAsana {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {}", common::TOKEN))
        {
            return ResponseTemplate::new(401);
        }
        if let Some(fault) = self.0.fault.lock().unwrap().take() {
            let err = |m: &str| json!({"errors": [{"message": m}]});
            return match fault {
                HttpFault::RateLimited { retry_after_secs } => ResponseTemplate::new(429)
                    .insert_header("Retry-After", retry_after_secs.to_string().as_str())
                    .set_body_json(err("You've made too many requests and hit a rate limit.")),
                HttpFault::ServerError => {
                    ResponseTemplate::new(500).set_body_json(err("Server Error"))
                }
                HttpFault::Timeout => ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {}}))
                    .set_delay(Duration::from_secs(10)),
                HttpFault::Unauthorized => {
                    ResponseTemplate::new(401).set_body_json(err("Not Authorized"))
                }
                HttpFault::Forbidden => ResponseTemplate::new(403).set_body_json(err("Forbidden")),
                HttpFault::NotFound => {
                    ResponseTemplate::new(404).set_body_json(err("Unknown object"))
                }
            };
        }
        let Some(gid) = req.url.path().strip_prefix("/tasks/") else {
            return ResponseTemplate::new(404);
        };
        let mut tasks = self.0.tasks.lock().unwrap();
        let Some(task) = tasks.get_mut(gid) else {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"errors": [{"message": "Unknown object"}]}));
        };
        match req.method.as_str() {
            "GET" => ResponseTemplate::new(200).set_body_json(json!({"data": task})),
            "PUT" => {
                let body: Value = serde_json::from_slice(&req.body).unwrap();
                for (k, v) in body["data"].as_object().unwrap() {
                    task[k] = v.clone();
                }
                ResponseTemplate::new(200).set_body_json(json!({"data": task}))
            }
            _ => ResponseTemplate::new(405),
        }
    }
}

struct AsanaHarness {
    _server: MockServer,
    state: Arc<FakeState>,
    provider: Arc<AsanaProvider>,
    ctx: ProviderContext,
    next_gid: AtomicU64,
}

async fn harness_impl() -> Arc<AsanaHarness> {
    let server = MockServer::start().await;
    let state = Arc::new(FakeState::default());
    Mock::given(wiremock::matchers::any())
        .respond_with(FakeAsana(state.clone()))
        .mount(&server)
        .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let provider = Arc::new(AsanaProvider::with_http(http));
    let ctx = common::ctx(&server.uri(), Value::Null);
    Arc::new(AsanaHarness {
        _server: server,
        state,
        provider,
        ctx,
        next_gid: AtomicU64::new(1_200_000_000_000_001),
    })
}

async fn harness() -> Arc<dyn ProviderHarness> {
    harness_impl().await
}

#[async_trait]
impl ProviderHarness for AsanaHarness {
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
        common::signed(body, secret)
    }
    fn signature_header(&self) -> &'static str {
        "x-hook-signature"
    }
    fn sample_webhook(&self, key: &ObjectKey) -> Vec<u8> {
        json!({"events": [{
            "user": {"gid": "55010250146157", "resource_type": "user"},
            "created_at": "2026-01-02T03:04:05.678Z",
            "action": "changed",
            "resource": {"gid": key.external_id, "resource_type": "task", "resource_subtype": "default_task"},
            "parent": null,
            "change": {"field": "name", "action": "changed"}
        }]})
        .to_string()
        .into_bytes()
    }
    fn fixtures(&self) -> Vec<(String, Vec<u8>)> {
        WEBHOOK_FIXTURES
            .iter()
            .map(|n| ((*n).to_owned(), fixture(n)))
            .collect()
    }
    async fn seed_remote(&self, fields: &FieldPatch) -> ObjectKey {
        let gid = self.next_gid.fetch_add(1, Ordering::SeqCst).to_string();
        let mut t = task_json(&gid, "");
        for v in fields.values() {
            match v {
                FieldValue::Title(s) => t["name"] = json!(s),
                FieldValue::Description(d) => t["notes"] = json!(d),
                _ => {}
            }
        }
        self.state.tasks.lock().unwrap().insert(gid.clone(), t);
        ObjectKey::new(gid, "task")
    }
    async fn remote_state(&self, key: &ObjectKey) -> Option<FieldPatch> {
        let tasks = self.state.tasks.lock().unwrap();
        tasks
            .get(&key.external_id)
            .map(|t| fields_patch(t, &AsanaOptions::default()))
    }
    async fn fail_next(&self, fault: HttpFault) {
        *self.state.fault.lock().unwrap() = Some(fault);
    }
}

ordonis_testkit::provider_suite!(@cases harness;
    signature_accepted, tampered_body_rejected, wrong_secret_rejected,
    missing_signature_rejected, fixtures_parse_deterministically, fetch_returns_remote_state,
    push_updates_remote, rate_limit_classified, server_error_retryable, timeout_retryable,
    unauthorized_terminal, forbidden_terminal, not_found_classified,
    echo_form_is_a_fixed_point
);

/// A 403 on the fetch is not a deletion (`NotFound` would tombstone the task): it is
/// terminal for that event, naming why; a 403 on a push is terminal too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_fetch_is_not_a_deletion_forbidden_push_terminal() {
    let h = harness_impl().await;
    let key = h
        .seed_remote(&FieldPatch::new().with(FieldValue::Title("x".into())))
        .await;
    h.fail_next(HttpFault::Forbidden).await;
    let e = h.provider.fetch_task(&h.ctx, &key).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Terminal(m) if m.contains("403") && m.contains("kept")),
        "{e:?}"
    );
    h.fail_next(HttpFault::Forbidden).await;
    let patch = FieldPatch::new().with(FieldValue::Title("y".into()));
    let e = h.provider.push(&h.ctx, &key, &patch).await.unwrap_err();
    assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
    // The fetch after the fault sees the remote again, with its modified_at as source time.
    let got = h.provider.fetch_task(&h.ctx, &key).await.unwrap();
    assert_eq!(got.modified_at_ms, 1_767_225_600_000);
    assert_eq!(
        got.fields.get(Field::Title),
        Some(&FieldValue::Title("x".into()))
    );
    assert_eq!(
        got.url.as_deref(),
        Some(format!("https://app.asana.com/0/0/{}", key.external_id).as_str())
    );
}

/// A delivery without a signature is refused, except a heartbeat (its signing is
/// undocumented); a handshake header is answered with the echo.
#[tokio::test]
async fn unsigned_heartbeat_and_handshake() {
    let h = harness_impl().await;
    let verify = |headers: &HeaderMap, body: &[u8]| {
        h.provider.verify_webhook(
            &h.ctx,
            &ordonis_core::WebhookRequest {
                method: &http::Method::POST,
                headers,
                body,
            },
        )
    };
    let empty = HeaderMap::new();
    assert!(verify(&empty, br#"{"events":[]}"#).is_ok());
    assert!(verify(&empty, br#"{"events":[{}]}"#).is_err());
    let strict = AsanaProvider::new()
        .unwrap()
        .accept_unsigned_heartbeats(false);
    assert!(
        strict
            .verify_webhook(
                &h.ctx,
                &ordonis_core::WebhookRequest {
                    method: &http::Method::POST,
                    headers: &empty,
                    body: br#"{"events":[]}"#,
                },
            )
            .is_err()
    );
    let mut hs = HeaderMap::new();
    hs.insert("x-hook-secret", "newsecret".parse().unwrap());
    let ordonis_core::WebhookAuth::Handshake {
        reply_headers,
        secret,
    } = verify(&hs, b"").unwrap()
    else {
        panic!("not a handshake")
    };
    assert_eq!(secret, "newsecret");
    assert_eq!(
        reply_headers,
        vec![("X-Hook-Secret".to_owned(), "newsecret".to_owned())]
    );
}
