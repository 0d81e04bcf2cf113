//! The provider conformance suite against `FakeProvider` (which keeps the suite itself honest).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use ordonis_core::{
    FieldPatch, IntegrationId, IntegrationSecrets, ObjectKey, Provider, ProviderContext,
    ProviderError, WorkspaceId,
};
use ordonis_testkit::FakeProvider;
use ordonis_testkit::fake::SIGNATURE_HEADER;
use ordonis_testkit::provider_suite::{HttpFault, ProviderHarness};

struct FakeHarness {
    fake: Arc<FakeProvider>,
}

#[async_trait]
impl ProviderHarness for FakeHarness {
    fn provider(&self) -> Arc<dyn Provider> {
        self.fake.clone()
    }
    fn context(&self) -> ProviderContext {
        ProviderContext {
            integration_id: IntegrationId::new(),
            workspace_id: WorkspaceId::new("suite").unwrap(),
            base_url: "http://fake.invalid".into(),
            secrets: IntegrationSecrets {
                api_auth: None,
                webhook_secrets: vec!["old".into(), self.secret()],
                app_secret: None,
            },
            options: serde_json::Value::Null,
            scope: serde_json::Value::Null,
        }
    }
    fn secret(&self) -> String {
        "suite-secret".into()
    }
    fn sign_webhook(&self, body: &[u8], secret: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            FakeProvider::sign(secret, body).parse().unwrap(),
        );
        h
    }
    fn signature_header(&self) -> &'static str {
        SIGNATURE_HEADER
    }
    fn sample_webhook(&self, key: &ObjectKey) -> Vec<u8> {
        format!(r#"{{"delivery_id":"d1","event":"changed","object":"{}","time_ms":1,"actor":"a","fields":{{}}}}"#, key.external_id).into_bytes()
    }
    fn fixtures(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (
                "changed".into(),
                self.sample_webhook(&ObjectKey::new("1", "item")),
            ),
            ("garbage".into(), b"{]".to_vec()),
        ]
    }
    async fn seed_remote(&self, fields: &FieldPatch) -> ObjectKey {
        let id = format!("obj-{}", uuid::Uuid::now_v7());
        self.fake.seed(&id, fields);
        ObjectKey::new(id, "item")
    }
    async fn remote_state(&self, key: &ObjectKey) -> Option<FieldPatch> {
        self.fake.remote(&key.external_id)
    }
    async fn fail_next(&self, fault: HttpFault) {
        let e = match fault {
            HttpFault::RateLimited { retry_after_secs } => ProviderError::rate_limited_for(
                std::time::Duration::from_secs(retry_after_secs),
                "retry-after",
            ),
            HttpFault::ServerError => ProviderError::retryable("HTTP 503"),
            HttpFault::Timeout => ProviderError::retryable("timed out"),
            HttpFault::Unauthorized => ProviderError::Terminal("HTTP 401".into()),
            HttpFault::Forbidden => ProviderError::Terminal("HTTP 403".into()),
            HttpFault::NotFound => ProviderError::NotFound("HTTP 404".into()),
        };
        self.fake.inject(|f| f.next_calls.push_back(e));
    }
    fn scope(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    async fn edit_remote_silently(&self, key: &ObjectKey, title: &str) {
        self.fake.remote_edit_silently(
            &key.external_id,
            ordonis_core::FieldValue::Title(title.to_owned()),
        );
    }
}

async fn harness() -> Arc<dyn ProviderHarness> {
    Arc::new(FakeHarness {
        fake: Arc::new(FakeProvider::new("unused")),
    })
}

ordonis_testkit::provider_suite!(harness);
