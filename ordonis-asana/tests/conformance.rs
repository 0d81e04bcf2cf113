//! The testkit's provider conformance suite against the testkit's [`FakeAsana`] (real
//! HTTP), whose project listing, events stream and faults are as strict as Asana's.
//!
//! Every case runs, and one Asana case is added: a 403 on `GET /tasks/{gid}` is
//! `Forbidden` (not a deletion: the task is kept and the integration lists the object), and a
//! 403 on any other call (a push) is terminal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{SECRET, WEBHOOK_FIXTURES, fixture};
use http::HeaderMap;
use ordonis_asana::AsanaProvider;
use ordonis_asana::config::AsanaOptions;
use ordonis_asana::normalize::fields_patch;
use ordonis_core::{
    Field, FieldPatch, FieldValue, ObjectKey, Provider, ProviderContext, ProviderError,
};
use ordonis_fakes::asana::FakeAsana;
use ordonis_testkit::ProviderHarness;
use ordonis_testkit::provider_suite::HttpFault;
use serde_json::{Value, json};

struct AsanaHarness {
    fake: FakeAsana,
    project: String,
    provider: Arc<AsanaProvider>,
    ctx: ProviderContext,
}

async fn harness_impl() -> Arc<AsanaHarness> {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let project = fake.add_project("Conformance");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let provider = Arc::new(AsanaProvider::with_http(http));
    let ctx = common::ctx(&fake.base_url(), Value::Null);
    Arc::new(AsanaHarness {
        fake,
        project,
        provider,
        ctx,
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
        let gid = self.fake.seed_task_in(&self.project, "");
        let mut changes = serde_json::Map::new();
        for v in fields.values() {
            match v {
                FieldValue::Title(s) => changes.insert("name".into(), json!(s)),
                FieldValue::Description(d) => changes.insert("notes".into(), json!(d)),
                _ => None,
            };
        }
        // Seeded before anyone listens: the change is not delivered (no webhook here).
        self.fake
            .change_task_silently(&gid, Value::Object(changes))
            .await;
        ObjectKey::new(gid, "task")
    }
    async fn remote_state(&self, key: &ObjectKey) -> Option<FieldPatch> {
        self.fake
            .task(&key.external_id)
            .map(|t| fields_patch(&t, &AsanaOptions::default()))
    }
    async fn fail_next(&self, fault: HttpFault) {
        match fault {
            HttpFault::RateLimited { retry_after_secs } => self.fake.fail_next_requests(
                1,
                429,
                &[("Retry-After", retry_after_secs.to_string().as_str())],
            ),
            HttpFault::ServerError => self.fake.fail_next_requests(1, 500, &[]),
            HttpFault::Timeout => self.fake.stall_next_reads(1, Duration::from_secs(10)),
            HttpFault::Unauthorized => self.fake.fail_next_requests(1, 401, &[]),
            HttpFault::Forbidden => self.fake.fail_next_requests(1, 403, &[]),
            HttpFault::NotFound => self.fake.fail_next_requests(1, 404, &[]),
        }
    }
    fn scope(&self) -> Value {
        json!({"projects": [self.project]})
    }
    async fn edit_remote_silently(&self, key: &ObjectKey, title: &str) {
        assert!(
            self.fake
                .change_task_silently(&key.external_id, json!({"name": title}))
                .await
        );
    }
}

ordonis_testkit::provider_suite!(@cases harness;
    signature_accepted, tampered_body_rejected, wrong_secret_rejected,
    missing_signature_rejected, fixtures_parse_deterministically, fetch_returns_remote_state,
    push_updates_remote, rate_limit_classified, server_error_retryable, timeout_retryable,
    unauthorized_terminal, forbidden_terminal, not_found_classified,
    echo_form_is_a_fixed_point, scope_checked, backfill_lists_seeded_objects,
    reconcile_finds_a_silent_edit, reconcile_without_cursor_starts_at_present
);

/// A 403 on the fetch is not a deletion (`NotFound` would tombstone the task): it is
/// `Forbidden` for that event, naming why; a 403 on a push is terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_fetch_is_not_a_deletion_forbidden_push_terminal() {
    let h = harness_impl().await;
    let key = h
        .seed_remote(&FieldPatch::new().with(FieldValue::Title("x".into())))
        .await;
    h.fail_next(HttpFault::Forbidden).await;
    let e = h.provider.fetch_task(&h.ctx, &key).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Forbidden(m) if m.contains("403") && m.contains("kept")),
        "{e:?}"
    );
    h.fail_next(HttpFault::Forbidden).await;
    let patch = FieldPatch::new().with(FieldValue::Title("y".into()));
    let e = h.provider.push(&h.ctx, &key, &patch).await.unwrap_err();
    assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
    // The fetch after the fault sees the remote again, with its modified_at as source time.
    let got = h.provider.fetch_task(&h.ctx, &key).await.unwrap();
    let modified = h.fake.task(&key.external_id).unwrap()["modified_at"].clone();
    assert_eq!(
        Some(got.modified_at_ms),
        ordonis_asana::normalize::parse_time(modified.as_str().unwrap())
    );
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
