//! The pieces of the `repair` benchmark: a fake Jira site seeded with issues, a fresh store
//! of each kind, an engine with a Jira integration over them, a pool of workers, and the
//! check of what a run left in the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ordonis_core::{
    ApiAuth, Engine, IntegrationConfig, IntegrationId, IntegrationSecrets, JobState, Keyring,
    NewIntegration, ProviderKind, Queue, SecretKey, Store, StoreExt, TaskId, Worker, WorkerConfig,
    WorkspaceId,
};
use ordonis_fakes::jira::{FakeJira, jira_time};
use ordonis_jira::JiraProvider;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::pgbench::BenchError;

pub use crate::fresh::Fresh;

/// The webhook secret of the benchmark's integrations.
pub const SECRET: &str = "repair-bench-secret";

/// How long the seeded issues were last updated before the run: older than a reconcile's
/// overlap, so a reconcile lists only what the run edits (as on a real site, where most
/// issues were last touched long ago).
const SEEDED_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// The fake Jira id of seeded issue `i` (its key is `HO-<i+1>`).
pub fn issue_id(i: u64) -> String {
    (10_000 + i).to_string()
}

/// The summary of seeded issue `i`.
pub fn seeded_title(i: u64) -> String {
    format!("Seeded issue {i}")
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// A fake Jira (real HTTP) with `n` issues in project HO, last updated a week ago, one
/// millisecond apart. Summary, status, priority and issue type; no description, because a
/// webhook that carries one makes the engine fetch the issue (REST v3 ADF), which would
/// charge the webhook baseline a GET per issue that the backfill's search page saves.
pub async fn seeded_jira(n: u64) -> Result<FakeJira, BenchError> {
    let jira = FakeJira::start().await?;
    let base = now_ms() - SEEDED_AGE_MS;
    for i in 0..n {
        jira.insert_issue(json!({
            "id": issue_id(i),
            "key": format!("HO-{}", i + 1),
            "fields": {
                "summary": seeded_title(i),
                "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
                "priority": {"id": "3", "name": "Medium"},
                "assignee": null,
                "duedate": null,
                "project": {"id": "10000", "key": "HO"},
                "issuetype": {"id": "10001", "name": "Task"},
                "updated": jira_time(base + i64::try_from(i).unwrap_or(0)),
            }
        }));
    }
    Ok(jira)
}

/// An engine with one Jira integration on a fake site.
#[allow(missing_debug_implementations)] // an engine and a store handle
pub struct Site {
    /// The engine (JiraProvider over the store under test).
    pub engine: Engine,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The integration.
    pub integration: IntegrationId,
    /// Its workspace.
    pub ws: WorkspaceId,
}

impl Site {
    /// Creates the engine and the integration: with `scope` `{"jql": "project = HO"}` (and
    /// backfill on) when `scoped`, else webhooks only.
    pub async fn new(
        store: Arc<dyn Store>,
        jira: &FakeJira,
        scoped: bool,
        reconcile_every_s: u64,
    ) -> Result<Self, BenchError> {
        let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
            .provider(Arc::new(JiraProvider::new()?))
            .build();
        let ws = WorkspaceId::new(format!("repair-bench-{}", uuid::Uuid::now_v7().simple()))?;
        let mut config = IntegrationConfig::new(jira.base_url());
        if scoped {
            config.scope = json!({"jql": "project = HO"});
            config.sync.backfill = true;
        }
        config.sync.reconcile_every_s = reconcile_every_s;
        let integration = engine
            .create_integration(NewIntegration {
                workspace_id: ws.clone(),
                provider: ProviderKind::new("jira"),
                config,
                secrets: IntegrationSecrets {
                    api_auth: Some(ApiAuth::Basic {
                        email: "bench@example.com".into(),
                        api_token: "unused".into(),
                    }),
                    webhook_secrets: vec![SECRET.into()],
                    app_secret: None,
                },
            })
            .await?;
        Ok(Self {
            engine,
            store,
            integration,
            ws,
        })
    }

    /// Inbox rows pending or in flight, and rows failed.
    pub async fn inbox_outstanding(&self) -> Result<(u64, u64), BenchError> {
        let mut open = 0;
        let mut failed = 0;
        for (state, n) in self.store.job_counts(Queue::Inbox).await? {
            match state {
                JobState::Pending | JobState::Processing => open += n,
                JobState::Failed => failed += n,
                _ => {}
            }
        }
        Ok((open, failed))
    }

    /// Whether the backfill is done.
    pub async fn backfill_done(&self) -> Result<bool, BenchError> {
        Ok(self
            .store
            .sync_job(self.integration)
            .await?
            .is_some_and(|j| j.status.backfill.state == ordonis_core::BackfillState::Done))
    }

    /// Waits until the backfill is done (when `backfill`) and the inbox has nothing pending
    /// or in flight, polling every 10 ms; fails after `limit` or on a failed inbox row.
    pub async fn settle(&self, backfill: bool, limit: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + limit;
        loop {
            let (open, failed) = self.inbox_outstanding().await?;
            if failed > 0 {
                return Err(format!("{failed} inbox rows failed").into());
            }
            if open == 0 && (!backfill || self.backfill_done().await?) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("not settled in {limit:?} ({open} inbox rows open)").into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The task of each seeded issue, by issue id.
    pub async fn task_ids(&self) -> Result<std::collections::HashMap<String, TaskId>, BenchError> {
        let mut out = std::collections::HashMap::new();
        for t in self.store.all_tasks(&self.ws).await? {
            let link = t.external.first().ok_or("a task without a mapping")?;
            out.insert(link.key.external_id.clone(), t.id);
        }
        Ok(out)
    }

    /// Checks what a run of `n` seeded issues left: `n` tasks with the seeded titles, each
    /// mapping leading back to its task, a gapless ledger of at least one entry per task
    /// whose leaves hash to their bytes. A one-line summary, or the first difference.
    pub async fn check(&self, n: u64) -> Result<String, BenchError> {
        let tasks = self.store.all_tasks(&self.ws).await?;
        if tasks.len() as u64 != n {
            return Err(format!("{} tasks for {n} issues", tasks.len()).into());
        }
        for t in &tasks {
            let link = t.external.first().ok_or("a task without a mapping")?;
            if self.store.find_mapping(self.integration, &link.key).await? != Some(t.id) {
                return Err(
                    format!("{} does not map back to its task", link.key.external_id).into(),
                );
            }
            let i = link.key.external_id.parse::<u64>()? - 10_000;
            if t.fields.title != seeded_title(i) {
                return Err(format!("issue {i}: title {:?}", t.fields.title).into());
            }
        }
        let size = self.store.ledger_size(&self.ws).await?;
        if size < n {
            return Err(format!("{size} ledger entries for {n} tasks").into());
        }
        crate::fresh::check_ledger(&*self.store, &self.ws).await?;
        Ok(format!(
            "{n} tasks, mapped, seeded titles; {size} ledger entries gapless"
        ))
    }

    /// Hands a webhook body to the engine as the webhook route would (signed, with a
    /// delivery id).
    pub async fn ingest(&self, delivery: &str, body: Bytes) -> Result<(), BenchError> {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-hub-signature",
            http::HeaderValue::from_str(&ordonis_jira::webhook::sign(SECRET, &body))?,
        );
        h.insert(
            "x-atlassian-webhook-identifier",
            http::HeaderValue::from_str(delivery)?,
        );
        let r = self
            .engine
            .ingest(self.integration, &http::Method::POST, &h, body)
            .await;
        if r.status != 200 {
            return Err(format!("ingest answered {}", r.status).into());
        }
        Ok(())
    }
}

/// Worker loops over an engine, stopped on drop.
#[allow(missing_debug_implementations)] // task handles
pub struct Workers {
    stop: CancellationToken,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` workers as the reference server configures them (batch 32, concurrency 8,
    /// 200 ms idle poll).
    pub fn start(engine: &Engine, n: usize) -> Self {
        let stop = CancellationToken::new();
        let handles = (0..n)
            .map(|i| {
                let w = Worker::new(
                    engine.clone(),
                    WorkerConfig {
                        id: format!("bench-{i}-{}", uuid::Uuid::now_v7().simple()),
                        idle_poll: Duration::from_millis(200),
                        ..WorkerConfig::default()
                    },
                );
                let token = stop.clone();
                tokio::spawn(async move { w.run(token).await })
            })
            .collect();
        Self { stop, handles }
    }

    /// Stops the workers and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for h in std::mem::take(&mut self.handles) {
            let _ = h.await;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The `jira:issue_created` webhooks of seeded issues `0..n`, as the site sends them
/// (captured, not sent).
pub async fn created_webhooks(jira: &FakeJira, n: u64) -> Result<Vec<Bytes>, BenchError> {
    jira.capture_webhooks();
    for i in 0..n {
        jira.announce_created(&issue_id(i), "bench-user").await?;
    }
    let bodies: Vec<Bytes> = jira.take_webhooks().into_iter().map(Bytes::from).collect();
    if bodies.len() as u64 != n {
        return Err(format!("{} webhooks captured for {n} issues", bodies.len()).into());
    }
    Ok(bodies)
}

/// The summary a benchmark edit `k` gives an issue.
pub fn edited_title(k: usize) -> String {
    format!("Edited silently #{k}")
}

/// An edit of an issue's summary without a webhook (`updated` moves to now).
pub fn edit_silently(jira: &FakeJira, i: u64, k: usize) -> Result<(), BenchError> {
    if jira.edit_silently(&issue_id(i), &json!({"summary": edited_title(k)})) {
        Ok(())
    } else {
        Err(format!("no issue {}", issue_id(i)).into())
    }
}

/// The title of a task, or an error when it is gone.
pub async fn title_of(store: &Arc<dyn Store>, id: TaskId) -> Result<String, BenchError> {
    Ok(store
        .task(id)
        .await?
        .ok_or("a task disappeared")?
        .fields
        .title)
}
