//! `register_webhooks` through the engine's own handshake route, over real HTTP: each
//! project's webhook brings its own `X-Hook-Secret`, and the engine accepts one handshake
//! per expectation (it clears the flag when it adopts a secret). So with two projects one
//! call creates the first webhook and reports the second `Missing`; after the engine
//! expects a handshake again, the next call creates the second alone, and deliveries of
//! both webhooks verify (the integration keeps both secrets).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use ordonis_asana::AsanaProvider;
use ordonis_core::RepairProvider;
use ordonis_core::{
    ApiAuth, Engine, IntegrationConfig, IntegrationSecrets, Keyring, NewIntegration, ProviderKind,
    SecretKey, WebhookCheck, WebhookState, WorkspaceId,
};
use ordonis_fakes::asana::FakeAsana;
use ordonis_store_memory::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projects_need_two_handshake_expectations() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let (a, b) = (fake.add_project("A"), fake.add_project("B"));
    let (ta, tb) = (fake.seed_task_in(&a, "in A"), fake.seed_task_in(&b, "in B"));
    let scope = json!({"projects": [a, b]});

    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(AsanaProvider::new().unwrap());
    let engine = Engine::builder(store, Keyring::new(SecretKey::generate(1)))
        .provider(provider.clone())
        .build();
    let mut config = IntegrationConfig::new(fake.base_url());
    config.scope = scope.clone();
    // Created without a webhook secret: the engine expects one handshake.
    let id = engine
        .create_integration(NewIntegration {
            workspace_id: WorkspaceId::new("ws-register").unwrap(),
            provider: ProviderKind::new("asana"),
            config,
            secrets: IntegrationSecrets {
                api_auth: Some(ApiAuth::Bearer {
                    token: common::TOKEN.into(),
                }),
                webhook_secrets: Vec::new(),
                app_secret: None,
            },
        })
        .await
        .unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(common::receive))
        .with_state((engine.clone(), id));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let ctx = common::ctx(&fake.base_url(), Value::Null);
    let register = |known: Vec<String>| {
        let (provider, ctx, scope, target) =
            (provider.clone(), ctx.clone(), scope.clone(), target.clone());
        async move {
            let check = WebhookCheck {
                scope: &scope,
                target_url: Some(&target),
                known: &known,
                last_delivery_at: None,
                now: OffsetDateTime::now_utc(),
            };
            provider.register_webhooks(&ctx, &check).await.unwrap()
        }
    };

    let first = register(Vec::new()).await;
    assert_eq!(first.state, WebhookState::Missing, "{first:?}");
    assert_eq!(first.external_ids.len(), 1);
    let detail = first.detail.clone().unwrap();
    assert!(detail.contains(&format!("project {b}")), "{detail}");
    assert_eq!(fake.webhooks().len(), 1);
    assert_eq!(fake.webhooks()[0].resource, a);

    engine.expect_handshake(id).await.unwrap();
    let second = register(first.external_ids.clone()).await;
    assert_eq!(second.state, WebhookState::Healthy, "{second:?}");
    assert_eq!(second.external_ids.len(), 2);
    assert_eq!(
        fake.webhooks().len(),
        2,
        "A's webhook was kept, B's created"
    );

    // Both webhooks deliver, signed under their own secrets, and the route accepts both.
    assert_eq!(fake.change_task(&ta, json!({"name": "A2"})).await, Some(1));
    assert_eq!(fake.change_task(&tb, json!({"name": "B2"})).await, Some(1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    for gid in &second.external_ids {
        let w = fake.webhook_state(gid).unwrap();
        assert!(w["last_failure_at"].is_null(), "{w}");
    }
}

/// Three projects, three webhooks, three handshakes: every project's secret stays valid (the
/// oldest used to be rotated out when the third webhook was made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_projects_secret_stays_valid_with_three_projects() {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let projects: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|n| fake.add_project(n))
        .collect();
    let tasks: Vec<String> = projects
        .iter()
        .map(|p| fake.seed_task_in(p, &format!("in {p}")))
        .collect();
    let scope = json!({"projects": projects});
    let store = Arc::new(MemoryStore::new());
    let provider = Arc::new(AsanaProvider::new().unwrap());
    let engine = Engine::builder(store, Keyring::new(SecretKey::generate(1)))
        .provider(provider.clone())
        .build();
    let mut config = IntegrationConfig::new(fake.base_url());
    config.scope = scope.clone();
    let id = engine
        .create_integration(NewIntegration {
            workspace_id: WorkspaceId::new("ws-register-3").unwrap(),
            provider: ProviderKind::new("asana"),
            config,
            secrets: IntegrationSecrets {
                api_auth: Some(ApiAuth::Bearer {
                    token: common::TOKEN.into(),
                }),
                webhook_secrets: Vec::new(),
                app_secret: None,
            },
        })
        .await
        .unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(common::receive))
        .with_state((engine.clone(), id));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let ctx = common::ctx(&fake.base_url(), Value::Null);
    let mut known: Vec<String> = Vec::new();
    for round in 0..3 {
        if round > 0 {
            engine.expect_handshake(id).await.unwrap();
        }
        let check = WebhookCheck {
            scope: &scope,
            target_url: Some(&target),
            known: &known,
            last_delivery_at: None,
            now: OffsetDateTime::now_utc(),
        };
        let r = provider.register_webhooks(&ctx, &check).await.unwrap();
        known = r.external_ids.clone();
    }
    assert_eq!(fake.webhooks().len(), 3);
    for (n, t) in tasks.iter().enumerate() {
        assert_eq!(
            fake.change_task(t, json!({"name": format!("renamed {n}")}))
                .await,
            Some(1)
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for gid in &known {
        let w = fake.webhook_state(gid).unwrap();
        assert!(
            w["last_failure_at"].is_null(),
            "a webhook's deliveries fail: {w}"
        );
    }
}
