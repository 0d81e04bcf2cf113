//! An engine over the memory store with one Jira integration on a FakeJira site holding
//! issue 10001 (`KAN-1`), synced as a task: the end-to-end tests' site.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use ordonis_core::{
    Actor, ActorKind, ApiAuth, Backoff, Engine, EngineConfig, IntegrationConfig, IntegrationId,
    IntegrationSecrets, Keyring, Ledger, NewIntegration, Principal, ProviderKind, SecretKey, Store,
    StoreExt, Task, TaskComment, Worker, WorkerConfig, WorkspaceId,
};
use ordonis_fakes::jira::{FakeJira, sign};
use ordonis_jira::JiraProvider;
use ordonis_store_memory::MemoryStore;
use serde_json::{Value, json};

const SECRET: &str = "jira-e2e-secret";

pub struct Site {
    pub jira: FakeJira,
    pub store: Arc<MemoryStore>,
    pub engine: Engine,
    pub integration: IntegrationId,
    pub ws: WorkspaceId,
    /// Every webhook body handed to the engine, for replays.
    pub seen: std::sync::Mutex<Vec<Vec<u8>>>,
}

pub async fn site() -> Site {
    site_with(|_| {}).await
}

pub async fn site_with(configure: impl FnOnce(&mut IntegrationConfig)) -> Site {
    let jira = FakeJira::start().await.unwrap();
    jira.capture_webhooks();
    jira.insert_issue(json!({
        "id": "10001", "key": "KAN-1",
        "fields": {
            "summary": "Login fails",
            "description": null,
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"},
            "assignee": null,
            "duedate": null,
            "project": {"id": "10000", "key": "KAN"},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    }));
    let store = Arc::new(MemoryStore::new());
    let provider = JiraProvider::new()
        .unwrap()
        .with_write_spacing(Duration::from_millis(1));
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(Arc::new(provider))
        .config(EngineConfig {
            backoff: Backoff {
                min: Duration::from_millis(5),
                max: Duration::from_millis(20),
            },
            receipt_url: Some(
                "https://sync.example.com/api/ledger/{workspace}/proof/{index}".into(),
            ),
            ..EngineConfig::default()
        })
        .build();
    let ws = WorkspaceId::new("ws-jira-e2e").unwrap();
    let integration = engine
        .create_integration(NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new("jira"),
            config: {
                let mut c = IntegrationConfig::new(jira.base_url());
                configure(&mut c);
                c
            },
            secrets: IntegrationSecrets {
                api_auth: Some(ApiAuth::Basic {
                    email: "bot@example.com".into(),
                    api_token: "tok".into(),
                }),
                webhook_secrets: vec![SECRET.into()],
                app_secret: None,
            },
        })
        .await
        .unwrap();
    let s = Site {
        jira,
        store,
        engine,
        integration,
        ws,
        seen: std::sync::Mutex::new(Vec::new()),
    };
    s.jira.announce_created("10001", "acc-ann").await.unwrap();
    s.settle().await;
    s
}

pub fn agent() -> Actor {
    Actor::agent(
        "agt_triage",
        vec![Principal {
            kind: ActorKind::Human,
            id: "usr_alice".into(),
            grant: None,
            display_name: Some("Alice Smith".into()),
        }],
    )
    .named("Triage bot")
}

impl Site {
    pub async fn ingest(&self, body: &[u8]) {
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature",
            HeaderValue::from_str(&sign(SECRET, body)).unwrap(),
        );
        let resp = self
            .engine
            .ingest(
                self.integration,
                &Method::POST,
                &h,
                Bytes::from(body.to_vec()),
            )
            .await;
        assert_eq!(resp.status, 200, "{resp:?}");
    }

    /// Runs workers (retries included) and hands every webhook the fake sent to the engine,
    /// until nothing is left to do.
    pub async fn settle(&self) {
        for _ in 0..40 {
            Worker::new(
                self.engine.clone(),
                WorkerConfig {
                    id: "w".into(),
                    batch_size: 8,
                    concurrency: 1,
                    lease: Duration::from_secs(30),
                    idle_poll: Duration::from_millis(5),
                },
            )
            .drain()
            .await
            .unwrap();
            assert!(self.jira.echoes_sent(Duration::from_secs(10)).await);
            let hooks = self.jira.take_webhooks();
            for body in &hooks {
                self.ingest(body).await;
                self.seen.lock().unwrap().push(body.clone());
            }
            let waiting = self
                .store
                .jobs(&ordonis_core::JobFilter::new(ordonis_core::Queue::Outbox))
                .await
                .unwrap()
                .iter()
                .any(|j| matches!(j.state(), ordonis_core::JobState::Pending));
            if hooks.is_empty() && !waiting {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("never settled");
    }

    pub async fn task(&self) -> Task {
        self.store.all_tasks(&self.ws).await.unwrap().remove(0)
    }

    pub async fn comments(&self) -> Vec<TaskComment> {
        let t = self.task().await;
        self.engine.comments(&self.ws, t.id).await.unwrap()
    }

    /// The plain text of each comment Jira holds on the issue.
    pub fn jira_texts(&self) -> Vec<String> {
        self.jira
            .comments("10001")
            .iter()
            .map(|c| text_of(&c["body"]))
            .collect()
    }

    pub async fn comment_entries(&self) -> Vec<ordonis_core::LedgerEntry> {
        self.store
            .ledger_entries(&self.ws, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.record.op.is_comment())
            .collect()
    }
}

pub fn text_of(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let own = o.get("text").and_then(Value::as_str).unwrap_or_default();
            let inner: String = o
                .get("content")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(text_of).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            format!("{own}{inner}")
        }
        _ => String::new(),
    }
}
