//! Shared test helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use ordonis_asana::{AsanaClient, AsanaProvider, WebhookFilter};
use ordonis_core::{
    ApiAuth, Engine, EventFilter, IntegrationConfig, IntegrationId, IntegrationSecrets, JobState,
    Keyring, Ledger, NewIntegration, Op, ProviderContext, ProviderKind, SecretKey, StoreExt,
    SyncSettings, Task, Worker, WorkerConfig, WorkspaceId,
};
use ordonis_fakes::asana::FakeAsana;
use ordonis_store_memory::MemoryStore;
use serde_json::Value;

pub const SECRET: &str = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
pub const TOKEN: &str = "2/1234/5678:pat-test";

pub fn ctx(base_url: &str, options: serde_json::Value) -> ProviderContext {
    ProviderContext {
        integration_id: IntegrationId::new(),
        workspace_id: WorkspaceId::new("ws-test").unwrap(),
        base_url: base_url.to_owned(),
        secrets: IntegrationSecrets {
            api_auth: Some(ApiAuth::Bearer {
                token: TOKEN.into(),
            }),
            webhook_secrets: vec![SECRET.to_owned()],
            app_secret: None,
        },
        options,
        scope: serde_json::Value::Null,
    }
}

pub fn signed(body: &[u8], secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-hook-signature",
        HeaderValue::from_str(&ordonis_asana::webhook::sign(secret, body)).unwrap(),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

/// An Asana fixture (`ordonis-fakes/fixtures/asana/`, shared with the server).
pub fn fixture(name: &str) -> Vec<u8> {
    ordonis_fakes::fixtures::asana(name).to_vec()
}

/// The webhook bodies among the fixtures.
pub const WEBHOOK_FIXTURES: [&str; 2] = ordonis_fakes::fixtures::ASANA_WEBHOOKS;

/// A task as `GET /tasks/{gid}` returns it (`data`).
pub fn task_json(gid: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "gid": gid, "resource_type": "task", "name": name, "notes": "Some text",
        "completed": false, "assignee": null, "due_on": null, "due_at": null,
        "custom_fields": [], "memberships": [],
        "modified_at": "2026-01-01T00:00:00.000Z",
        "permalink_url": format!("https://app.asana.com/0/0/{gid}")
    })
}

/// A host's webhook route: hands the request to `Engine::ingest` and answers as it says.
pub async fn receive(
    axum::extract::State((engine, id)): axum::extract::State<(ordonis_core::Engine, IntegrationId)>,
    method: http::Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let r = engine.ingest(id, &method, &headers, body).await;
    let mut resp = (http::StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

/// One Asana integration (token [`TOKEN`]) with `scope` on a memory store, and its webhook on
/// `project` made through the engine's route.
pub struct Site {
    pub store: Arc<MemoryStore>,
    pub engine: Engine,
    pub ws: WorkspaceId,
    pub integration: IntegrationId,
}

impl Site {
    pub async fn start(fake: &FakeAsana, project: &str, scope: Value, ws: &str) -> Self {
        Self::start_with(
            fake,
            project,
            scope,
            ws,
            ordonis_core::EngineConfig::default(),
        )
        .await
    }

    /// [`Site::start`] with the engine's settings.
    pub async fn start_with(
        fake: &FakeAsana,
        project: &str,
        scope: Value,
        ws: &str,
        settings: ordonis_core::EngineConfig,
    ) -> Self {
        let store = Arc::new(MemoryStore::new());
        let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
            .provider(Arc::new(AsanaProvider::new().unwrap()))
            .config(settings)
            .build();
        let ws = WorkspaceId::new(ws).unwrap();
        let mut config = IntegrationConfig::new(fake.base_url());
        config.scope = scope;
        config.sync = SyncSettings {
            backfill: false,
            ..SyncSettings::default()
        };
        let id = engine
            .create_integration(NewIntegration {
                workspace_id: ws.clone(),
                provider: ProviderKind::new("asana"),
                config,
                secrets: IntegrationSecrets {
                    api_auth: Some(ApiAuth::Bearer {
                        token: TOKEN.into(),
                    }),
                    webhook_secrets: Vec::new(),
                    app_secret: None,
                },
            })
            .await
            .unwrap();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state((engine.clone(), id));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let auth = ApiAuth::Bearer {
            token: TOKEN.into(),
        };
        AsanaClient::new(reqwest::Client::new(), &fake.base_url(), &auth)
            .unwrap()
            .create_webhook(project, &target, &WebhookFilter::task_sync())
            .await
            .unwrap();
        Self {
            store,
            engine,
            ws,
            integration: id,
        }
    }

    pub async fn drain(&self) {
        Worker::new(
            self.engine.clone(),
            WorkerConfig {
                id: "w1".into(),
                batch_size: 8,
                concurrency: 2,
                lease: Duration::from_secs(30),
                idle_poll: Duration::from_millis(5),
            },
        )
        .drain()
        .await
        .unwrap();
    }

    /// Runs workers until the fake has nothing more to deliver: its echoes of our pushes are
    /// sent after the `PUT` is answered, so one drain can end before they arrive.
    pub async fn settle(&self, fake: &FakeAsana) {
        for _ in 0..50 {
            let before = fake.deliveries();
            self.drain().await;
            assert!(
                fake.echoes_sent(Duration::from_secs(10)).await,
                "the fake's echoes were not delivered within 10 s"
            );
            if fake.deliveries() == before {
                return;
            }
        }
        panic!("still echoing after 50 rounds: an echo loop");
    }

    pub async fn task(&self, gid: &str) -> Option<Task> {
        self.store
            .all_tasks(&self.ws)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.external.iter().any(|e| e.key.external_id == gid))
    }

    pub async fn ops(&self, task: &Task) -> Vec<(Op, String)> {
        self.store
            .task_ledger(&self.ws, task.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.record.op, e.record.rule))
            .collect()
    }

    /// Every inbox row's note or error, newest first; none failed.
    pub async fn notes(&self) -> Vec<String> {
        let events = self
            .store
            .events(&self.ws, &EventFilter::default())
            .await
            .unwrap();
        for e in &events {
            assert_eq!(e.state, JobState::Done, "{:?}", e.last_error);
        }
        events.into_iter().filter_map(|e| e.last_error).collect()
    }
}
