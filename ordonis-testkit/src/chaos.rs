//! The repair loop's proof: a seeded chaos run over the fake Jira and Asana on real HTTP.
//!
//! One run, on any store, with the real Jira and Asana adapters the caller passes in:
//! - both sites are seeded and each integration is created with a scope: the backfill imports
//!   them (a worker is killed mid-backfill, its successor resumes from the saved page);
//! - webhooks reach the engine through a receiver that drops 10% of deliveries, duplicates
//!   and delays (so reorders) others; some edits send no webhook at all;
//! - 429 storms with `Retry-After` hit both sites' reads;
//! - the Asana webhook is deleted by "Asana" mid-run (the reconcile re-creates it);
//! - people edit titles in both sites while CollabHub (an agent) edits them through the task
//!   API, so pushes and echoes cross the lost and reordered deliveries;
//! - people comment in both sites (some Jira comments send no webhook at all) while the
//!   agent comments through the engine, some of its posts losing their answer;
//! - the agent files new tasks for both sites from CollabHub, some creates losing their
//!   answer (and webhooks being dropped): each must end as exactly one object, adopted.
//!
//! It passes when, two reconcile intervals after the last edit, every object in each site
//! equals its task (every field the adapter reads), every conversation is the same on both
//! sides (each provider comment once in the store, each of ours once in the provider and
//! confirmed), no task is duplicated, every push carried a value CollabHub asked for, and the
//! ledger is gapless and verifies offline. A failing run's error names its seed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use ordonis_core::vera::{CheckpointSigner, ExportCheck, Notary, verify_export_dir};
use ordonis_core::{
    Actor, ApiAuth, BackfillState, Backoff, Engine, EngineConfig, FieldPatch, FieldValue,
    IntegrationConfig, IntegrationId, IntegrationSecrets, Keyring, NewIntegration, ObjectKey,
    Provider, ProviderContext, ProviderKind, SecretKey, Store, StoreExt, Worker, WorkerConfig,
    WorkspaceId,
};
use ordonis_fakes::asana::FakeAsana;
use ordonis_fakes::jira::FakeJira;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Expands to one `#[tokio::test]` per CI seed (20) of the chaos run on a store:
/// `$store` is an async fn returning `Option<Arc<dyn Store>>` (a fresh store per call),
/// `$providers` a fn returning the [`ChaosProviders`]. `ORDONIS_CHAOS_SEED=<n>` runs seed
/// `n` in every one of them (to rerun a failing seed).
#[macro_export]
macro_rules! chaos_suite {
    ($store:path, $providers:path) => {
        $crate::chaos_suite!(@seeds $store, $providers;
            seed_01 1, seed_02 2, seed_03 3, seed_04 4, seed_05 5, seed_06 6, seed_07 7,
            seed_08 8, seed_09 9, seed_10 10, seed_11 11, seed_12 12, seed_13 13, seed_14 14,
            seed_15 15, seed_16 16, seed_17 17, seed_18 18, seed_19 19, seed_20 20);
    };
    (@seeds $store:path, $providers:path; $($name:ident $seed:literal),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(store) = $store().await else {
                    eprintln!("skipped {}: no store available", stringify!($name));
                    return;
                };
                let seed = $crate::chaos::seed_override().unwrap_or($seed);
                let cfg = $crate::chaos::ChaosConfig::ci(seed);
                match $crate::chaos::run(cfg, store, $providers()).await {
                    Ok(report) => eprintln!("chaos seed {seed}: {report:?}"),
                    Err(e) => panic!("{e}"),
                }
            }
        )*
    };
}

/// The seed `ORDONIS_CHAOS_SEED` names, if any.
pub fn seed_override() -> Option<u64> {
    std::env::var("ORDONIS_CHAOS_SEED").ok()?.parse().ok()
}

/// The shape of one run.
#[derive(Clone, Copy, Debug)]
pub struct ChaosConfig {
    /// The seed every random choice comes from.
    pub seed: u64,
    /// Issues seeded in the Jira project.
    pub jira_issues: usize,
    /// Tasks seeded in the Asana project.
    pub asana_tasks: usize,
    /// Edits made during the run (both sites and CollabHub).
    pub edits: usize,
    /// The integrations' reconcile interval, in seconds.
    pub reconcile_every_s: u64,
}

impl ChaosConfig {
    /// The CI shape of a run with this seed.
    pub fn ci(seed: u64) -> Self {
        Self {
            seed,
            jira_issues: 12,
            asana_tasks: 8,
            edits: 24,
            reconcile_every_s: 1,
        }
    }
}

/// The adapters under test.
#[derive(Clone, Debug)]
pub struct ChaosProviders {
    /// The Jira adapter.
    pub jira: Arc<dyn Provider>,
    /// The Asana adapter.
    pub asana: Arc<dyn Provider>,
}

/// What a passing run measured.
#[derive(Clone, Debug, Default)]
pub struct ChaosReport {
    /// Deliveries the receiver dropped.
    pub dropped: usize,
    /// Deliveries it duplicated.
    pub duplicated: usize,
    /// Deliveries it delayed.
    pub delayed: usize,
    /// Pushes the sites received.
    pub pushes: usize,
    /// Comments people wrote in the sites (those sent with no webhook at all included).
    pub site_comments: usize,
    /// Comments the agent wrote through the engine (those whose post lost its answer
    /// included).
    pub agent_comments: usize,
    /// Tasks the agent filed from CollabHub (each checked to be exactly one object).
    pub filed: usize,
    /// Ledger entries at the end.
    pub entries: u64,
    /// From the last edit to a state equal to the sites'.
    pub converged_after: Duration,
}

const JIRA_SECRET: &str = "chaos-jira-secret";
const ASANA_TOKEN: &str = "chaos-asana-token";

/// The webhook receiver: the engine's ingest behind a lossy network.
struct Receiver {
    engine: Engine,
    rng: Mutex<StdRng>,
    counts: Mutex<ChaosReport>,
}

enum Fate {
    Deliver,
    Drop,
    Duplicate,
    Delay(Duration),
}

impl Receiver {
    fn fate(&self, handshake: bool) -> Fate {
        if handshake {
            return Fate::Deliver;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let roll: f64 = rng.random();
        let fate = if roll < 0.10 {
            Fate::Drop
        } else if roll < 0.20 {
            Fate::Duplicate
        } else if roll < 0.35 {
            Fate::Delay(Duration::from_millis(rng.random_range(20..400)))
        } else {
            Fate::Deliver
        };
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match fate {
            Fate::Drop => c.dropped += 1,
            Fate::Duplicate => c.duplicated += 1,
            Fate::Delay(_) => c.delayed += 1,
            Fate::Deliver => {}
        }
        fate
    }
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path((_provider, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<IntegrationId>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ingest = move |r: Arc<Receiver>, headers: HeaderMap, body: Bytes| async move {
        r.engine
            .ingest(id, &http::Method::POST, &headers, body)
            .await
    };
    let handshake = headers.contains_key("x-hook-secret");
    match r.fate(handshake) {
        Fate::Drop => StatusCode::OK.into_response(),
        Fate::Delay(d) => {
            let r = r.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                ingest(r, headers, body).await;
            });
            StatusCode::OK.into_response()
        }
        fate => {
            if matches!(fate, Fate::Duplicate) {
                ingest(r.clone(), headers.clone(), body.clone()).await;
            }
            let resp = ingest(r, headers, body).await;
            let mut out = (
                StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                resp.body,
            )
                .into_response();
            for (k, v) in resp.headers {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&v),
                ) {
                    out.headers_mut().insert(k, v);
                }
            }
            out
        }
    }
}

fn fail(seed: u64, what: impl std::fmt::Display) -> String {
    format!("chaos seed {seed}: {what} (rerun: ORDONIS_CHAOS_SEED={seed})")
}

struct Run {
    cfg: ChaosConfig,
    store: Arc<dyn Store>,
    engine: Engine,
    jira: FakeJira,
    asana: FakeAsana,
    ws: WorkspaceId,
    jira_id: IntegrationId,
    asana_id: IntegrationId,
    jira_issues: Vec<String>,
    asana_tasks: Vec<String>,
    asked: Mutex<BTreeSet<String>>,
    providers: ChaosProviders,
    /// Whether the Asana webhook was deleted.
    deleted: AtomicBool,
    /// Comments written in the sites, and by the agent.
    comments: Mutex<(usize, usize)>,
    /// Tasks the agent filed from CollabHub, and whether for Jira.
    created: Mutex<Vec<(ordonis_core::TaskId, bool)>>,
}

/// Runs one seeded chaos scenario on `store`; `Err` says what diverged, with the seed.
pub async fn run(
    cfg: ChaosConfig,
    store: Arc<dyn Store>,
    providers: ChaosProviders,
) -> Result<ChaosReport, String> {
    let seed = cfg.seed;
    let mut rng = StdRng::seed_from_u64(seed);
    let jira = FakeJira::start().await.map_err(|e| fail(seed, e))?;
    let asana = FakeAsana::start(ASANA_TOKEN)
        .await
        .map_err(|e| fail(seed, e))?;
    asana.set_webhook_failure_limit(0);

    // The receiver, so that the engine's webhook URLs exist before the engine does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(seed, e))?;
    let addr = listener.local_addr().map_err(|e| fail(seed, e))?;
    let engine = Engine::builder(store.clone(), Keyring::new(SecretKey::generate(1)))
        .provider(providers.jira.clone())
        .provider(providers.asana.clone())
        .config(EngineConfig {
            backoff: Backoff {
                min: Duration::from_millis(5),
                max: Duration::from_millis(200),
            },
            webhook_url: Some(format!(
                "http://{addr}/integrations/{{provider}}/{{id}}/webhook"
            )),
            list_page_size: 5,
            ..EngineConfig::default()
        })
        .build();
    let receiver = Arc::new(Receiver {
        engine: engine.clone(),
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        counts: Mutex::new(ChaosReport::default()),
    });
    let app = Router::new()
        .route("/integrations/{provider}/{id}/webhook", post(receive))
        .with_state(receiver.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    // The sites' existing objects.
    let mut jira_issues = Vec::new();
    for i in 0..cfg.jira_issues {
        let id = format!("{}", 20_000 + i);
        jira.insert_issue(json!({
            "id": id, "key": format!("HO-{}", i + 1),
            "fields": {
                "summary": format!("Jira issue {i}"),
                "description": null,
                "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
                "priority": {"id": "3", "name": "Medium"},
                "assignee": null,
                "duedate": null,
                "project": {"id": "10000", "key": "HO"},
                "issuetype": {"id": "10001", "name": "Task"}
            }
        }));
        jira_issues.push(id);
    }
    let project = asana.add_project("Chaos");
    jira.add_project("HO", "10000");
    let asana_tasks: Vec<String> = (0..cfg.asana_tasks)
        .map(|i| asana.seed_task_in(&project, &format!("Asana task {i}")))
        .collect();

    // A conversation that exists before the integrations do: the backfill imports it.
    if let (Some(issue), Some(task)) = (jira_issues.first(), asana_tasks.first()) {
        jira.add_comment_as(issue, "acc-seed", "Sam Seed", "Written before the sync");
        asana.add_comment_as(task, "u-seed", "Sam Seed", "Written before the sync");
    }

    let ws = WorkspaceId::new(format!("chaos-{seed}-{}", uuid::Uuid::now_v7()))
        .map_err(|e| fail(seed, e))?;
    let integration = |provider: &str, base: String, scope: Value, auth: ApiAuth, secrets| {
        let mut config = IntegrationConfig::new(base);
        config.scope = scope;
        config.sync.reconcile_every_s = cfg.reconcile_every_s;
        config.sync.register_webhook = provider == "asana";
        if provider == "jira" {
            config.create.project = Some("HO".into());
            // The fake's search has no index lag: a lost create is looked for at once.
            config.options = json!({"create_lookup_delay_s": 0});
        }
        NewIntegration {
            workspace_id: ws.clone(),
            provider: ProviderKind::new(provider),
            config,
            secrets: IntegrationSecrets {
                api_auth: Some(auth),
                webhook_secrets: secrets,
                app_secret: None,
            },
        }
    };

    // One worker alone first: it is killed mid-backfill.
    let token = CancellationToken::new();
    let victim = spawn_worker(&engine, "victim", &token);
    let jira_id = engine
        .create_integration(integration(
            "jira",
            jira.base_url(),
            json!({"jql": "project = HO"}),
            ApiAuth::Basic {
                email: "bot@example.com".into(),
                api_token: "chaos".into(),
            },
            vec![JIRA_SECRET.to_owned()],
        ))
        .await
        .map_err(|e| fail(seed, format!("create jira: {e}")))?;
    jira.set_webhook(
        format!("http://{addr}/integrations/jira/{jira_id}/webhook"),
        JIRA_SECRET,
    );
    let asana_id = engine
        .create_integration(integration(
            "asana",
            asana.base_url(),
            json!({"projects": [project.clone()]}),
            ApiAuth::Bearer {
                token: ASANA_TOKEN.into(),
            },
            Vec::new(),
        ))
        .await
        .map_err(|e| fail(seed, format!("create asana: {e}")))?;
    let started = Instant::now();
    loop {
        let job = store.sync_job(jira_id).await.map_err(|e| fail(seed, e))?;
        if job.as_ref().is_some_and(|j| j.status.backfill.imported > 0)
            || started.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    victim.abort();
    let mut workers: Vec<JoinHandle<()>> = (0..2)
        .map(|n| spawn_worker(&engine, &format!("w{n}"), &token))
        .collect();

    let run = Run {
        cfg,
        store: store.clone(),
        engine: engine.clone(),
        jira,
        asana,
        ws: ws.clone(),
        jira_id,
        asana_id,
        jira_issues,
        asana_tasks,
        asked: Mutex::new(BTreeSet::new()),
        providers,
        deleted: AtomicBool::new(false),
        comments: Mutex::new((2, 0)),
        created: Mutex::new(Vec::new()),
    };
    run.wait_backfills(&workers).await?;

    // Edits on both sides, with storms and a deleted webhook along the way.
    for i in 0..cfg.edits {
        if i == cfg.edits / 3 {
            run.delete_asana_webhook().await?;
        }
        if rng.random_bool(0.1) {
            run.jira.fail_next_reads(3, 429, &[("Retry-After", "1")]);
        }
        if rng.random_bool(0.1) {
            run.asana.fail_next_reads(3, 429, &[("Retry-After", "1")]);
        }
        run.edit(&mut rng, i).await?;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..60))).await;
    }
    let last_edit = Instant::now();

    // Two reconcile intervals after the last edit, then as long as the tail needs.
    let interval = Duration::from_secs(cfg.reconcile_every_s);
    tokio::time::sleep(2 * interval).await;
    let deadline = last_edit + 2 * interval + Duration::from_secs(15);
    let diff = loop {
        let diff = run.diff().await?;
        if diff.is_empty() || Instant::now() > deadline {
            break diff;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let converged_after = last_edit.elapsed();
    let recreated = if diff.is_empty() {
        run.check_webhook_recreated().await
    } else {
        Ok(())
    };
    token.cancel();
    for w in workers.drain(..) {
        let _ = w.await;
    }
    server.abort();
    if !diff.is_empty() {
        return Err(fail(
            seed,
            format!(
                "{} differences {:.1?} after the last edit: {}",
                diff.len(),
                converged_after,
                diff.join("; ")
            ),
        ));
    }
    let mut report = receiver
        .counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    report.converged_after = converged_after;
    (report.site_comments, report.agent_comments) =
        *run.comments.lock().unwrap_or_else(|e| e.into_inner());
    report.filed = run.created.lock().unwrap_or_else(|e| e.into_inner()).len();
    report.pushes = run.check_pushes()?;
    report.entries = run.check_ledger().await?;
    recreated?;
    Ok(report)
}

/// CollabHub's editor: an agent acting for a person.
fn agent() -> Actor {
    Actor::agent(
        "chaos-agent",
        vec![ordonis_core::Principal {
            kind: ordonis_core::ActorKind::Human,
            id: "usr_chaos".into(),
            grant: None,
            display_name: None,
        }],
    )
}

fn spawn_worker(engine: &Engine, id: &str, token: &CancellationToken) -> JoinHandle<()> {
    let w = Worker::new(
        engine.clone(),
        WorkerConfig {
            id: format!("chaos-{id}-{}", uuid::Uuid::now_v7()),
            batch_size: 16,
            concurrency: 4,
            lease: Duration::from_secs(2),
            idle_poll: Duration::from_millis(20),
        },
    );
    let token = token.clone();
    tokio::spawn(async move { w.run(token).await })
}

impl Run {
    fn fail(&self, what: impl std::fmt::Display) -> String {
        fail(self.cfg.seed, what)
    }

    fn count_comment(&self, in_site: bool) {
        let mut c = self.comments.lock().unwrap_or_else(|e| e.into_inner());
        if in_site {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }

    async fn wait_backfills(&self, workers: &[JoinHandle<()>]) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let mut done = true;
            for id in [self.jira_id, self.asana_id] {
                let job = self.store.sync_job(id).await.map_err(|e| self.fail(e))?;
                done &= job.is_some_and(|j| j.status.backfill.state == BackfillState::Done);
            }
            if done {
                return Ok(());
            }
            // A liveness bound, not a timing claim: CI runs many seeds at once on two cores.
            if started.elapsed() > Duration::from_secs(90) {
                return Err(self.fail(format!(
                    "the backfills did not finish in 90 s; {}",
                    self.stall_report(workers).await
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What a stalled run looks like: the sync jobs, their integrations' pauses, whether the
    /// workers still run, and whether a claim of the jobs succeeds, fails or blocks (a lock
    /// held by a transaction that never ended).
    async fn stall_report(&self, workers: &[JoinHandle<()>]) -> String {
        let mut out = Vec::new();
        for id in [self.jira_id, self.asana_id] {
            out.push(format!("job {:?}", self.store.sync_job(id).await));
            out.push(match self.store.integration(id).await {
                Ok(Some(i)) => format!("paused_until {:?} state {:?}", i.paused_until, i.state),
                other => format!("integration {other:?}"),
            });
        }
        let finished = workers.iter().filter(|w| w.is_finished()).count();
        out.push(format!("workers finished: {finished} of {}", workers.len()));
        let probe = ordonis_core::ClaimRequest {
            worker: "chaos-probe".into(),
            limit: 2,
            lease: Duration::from_secs(1),
        };
        out.push(
            match tokio::time::timeout(Duration::from_secs(5), self.store.claim_sync(&probe)).await
            {
                Ok(Ok(jobs)) => format!("a probe claimed {} job(s)", jobs.len()),
                Ok(Err(e)) => format!("a probe claim failed: {e}"),
                Err(_) => "a probe claim blocked for 5 s".into(),
            },
        );
        out.join("; ")
    }

    async fn edit(&self, rng: &mut StdRng, i: usize) -> Result<(), String> {
        let title = format!("edit {i} of seed {}", self.cfg.seed);
        match rng.random_range(0..9) {
            8 => {
                // The agent files a task; some creates lose their answer.
                let for_jira = rng.random_bool(0.5);
                if rng.random_bool(0.4) {
                    if for_jira {
                        self.jira.lose_next_create_answer(1);
                    } else {
                        self.asana.lose_next_create_answer(1);
                    }
                }
                let link = ordonis_core::NewLink {
                    integration_id: if for_jira {
                        self.jira_id
                    } else {
                        self.asana_id
                    },
                    project: None,
                    issue_type: None,
                    parent: None,
                };
                let fields = FieldPatch::new().with(FieldValue::Title(format!(
                    "Filed {i} of seed {}",
                    self.cfg.seed
                )));
                let r = self
                    .engine
                    .create_task(&self.ws, &agent(), &fields, Some(link))
                    .await
                    .map_err(|e| self.fail(format!("create_task: {e}")))?;
                self.created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((r.task_id, for_jira));
            }
            5 => {
                self.count_comment(true);
                let id = &self.jira_issues[rng.random_range(0..self.jira_issues.len())];
                let text = format!("Jira comment {i} of seed {}", self.cfg.seed);
                if rng.random_bool(0.3) {
                    // No webhook at all: only a reconcile finds it.
                    self.jira
                        .add_comment_as(id, "acc-person", "Pat Person", &text);
                } else {
                    self.jira
                        .comment_as(id, "acc-person", "Pat Person", &text)
                        .await;
                }
            }
            6 => {
                self.count_comment(true);
                let gid = &self.asana_tasks[rng.random_range(0..self.asana_tasks.len())];
                let text = format!("Asana comment {i} of seed {}", self.cfg.seed);
                self.asana
                    .comment_as(gid, "u-person", "Pat Person", &text)
                    .await;
            }
            7 => {
                let tasks = self
                    .store
                    .all_tasks(&self.ws)
                    .await
                    .map_err(|e| self.fail(e))?;
                if tasks.is_empty() {
                    return Ok(());
                }
                let task = &tasks[rng.random_range(0..tasks.len())];
                if rng.random_bool(0.3) {
                    // The post is made and its answer lost: the retry must find it.
                    match task.link().map(|l| l.provider.as_str()) {
                        Some("jira") => self.jira.lose_next_comment_answer(1),
                        _ => self.asana.lose_next_story_answer(1),
                    }
                }
                self.count_comment(false);
                let body = format!("Agent comment {i} of seed {}", self.cfg.seed);
                self.engine
                    .add_comment(&self.ws, task.id, &agent(), &body)
                    .await
                    .map_err(|e| self.fail(format!("add_comment: {e}")))?;
            }
            0 | 1 => {
                let id = &self.jira_issues[rng.random_range(0..self.jira_issues.len())];
                let fields = json!({"summary": format!("Jira {title}")});
                if rng.random_bool(0.3) {
                    self.jira.edit_silently(id, &fields);
                } else {
                    // The receiver's answer does not matter: a lost delivery is the point.
                    let _ = self.jira.update_issue(id, &fields, "acc-person").await;
                }
            }
            2 | 3 => {
                let gid = &self.asana_tasks[rng.random_range(0..self.asana_tasks.len())];
                let changes = json!({"name": format!("Asana {title}")});
                if rng.random_bool(0.3) {
                    self.asana.change_task_silently(gid, changes).await;
                } else {
                    self.asana.change_task(gid, changes).await;
                }
            }
            _ => {
                let tasks = self
                    .store
                    .all_tasks(&self.ws)
                    .await
                    .map_err(|e| self.fail(e))?;
                if tasks.is_empty() {
                    return Ok(());
                }
                let task = &tasks[rng.random_range(0..tasks.len())];
                let title = format!("CollabHub {title}");
                self.asked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(title.clone());
                let patch = FieldPatch::new().with(FieldValue::Title(title));
                self.engine
                    .change_task(&self.ws, task.id, &agent(), &patch)
                    .await
                    .map_err(|e| self.fail(format!("change_task: {e}")))?;
            }
        }
        Ok(())
    }

    fn context(&self, id: IntegrationId, base_url: String, auth: ApiAuth) -> ProviderContext {
        ProviderContext {
            integration_id: id,
            workspace_id: self.ws.clone(),
            base_url,
            secrets: IntegrationSecrets {
                api_auth: Some(auth),
                webhook_secrets: Vec::new(),
                app_secret: None,
            },
            options: Value::Null,
            scope: Value::Null,
        }
    }

    /// The differences between the sites (read through the adapters) and the store.
    async fn diff(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let tasks = self
            .store
            .all_tasks(&self.ws)
            .await
            .map_err(|e| self.fail(e))?;
        let created = self
            .created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let expected = self.jira_issues.len() + self.asana_tasks.len() + created.len();
        if tasks.len() != expected {
            out.push(format!("{} tasks for {expected} objects", tasks.len()));
        }
        // Each filed task: created, exactly one object with its marker, compared below.
        let mut jira_ids = self.jira_issues.clone();
        let mut asana_ids = self.asana_tasks.clone();
        for (id, for_jira) in &created {
            let Some(t) = tasks.iter().find(|t| t.id == *id) else {
                out.push(format!("filed task {id} is gone"));
                continue;
            };
            let state = t.create.as_ref().map(|c| (c.state, c.error.clone()));
            if state.as_ref().map(|s| s.0) != Some(ordonis_core::CreateState::Created) {
                out.push(format!("filed task {id} is not created: {state:?}"));
                continue;
            }
            let copies = if *for_jira {
                self.jira
                    .issues_with_property("ordonis", &json!({"task_id": id.to_string()}))
                    .len()
            } else {
                self.asana.tasks_with_external(&format!("ordonis:{id}"))
            };
            if copies != 1 {
                out.push(format!("filed task {id} has {copies} objects in its site"));
            }
            if let Some(l) = t.link() {
                if *for_jira {
                    jira_ids.push(l.key.external_id.clone());
                } else {
                    asana_ids.push(l.key.external_id.clone());
                }
            }
        }
        let sides = [
            (
                self.jira_id,
                &self.providers.jira,
                self.context(
                    self.jira_id,
                    self.jira.base_url(),
                    ApiAuth::Basic {
                        email: "oracle@example.com".into(),
                        api_token: "oracle".into(),
                    },
                ),
                "issue",
                &jira_ids,
            ),
            (
                self.asana_id,
                &self.providers.asana,
                self.context(
                    self.asana_id,
                    self.asana.base_url(),
                    ApiAuth::Bearer {
                        token: ASANA_TOKEN.into(),
                    },
                ),
                "task",
                &asana_ids,
            ),
        ];
        let by_id: HashMap<_, _> = tasks.iter().map(|t| (t.id, t)).collect();
        for (integration, provider, ctx, kind, ids) in sides {
            for id in ids {
                let key = ObjectKey::new(id.as_str(), kind);
                let Some(task_id) = self
                    .store
                    .find_mapping(integration, &key)
                    .await
                    .map_err(|e| self.fail(e))?
                else {
                    out.push(format!("{kind} {id} has no task"));
                    continue;
                };
                let Some(task) = by_id.get(&task_id) else {
                    out.push(format!(
                        "{kind} {id}'s task {task_id} is not in the workspace"
                    ));
                    continue;
                };
                // A read refused by a storm is simply read again on the next pass.
                let Ok(remote) = provider.fetch_task(&ctx, &key).await else {
                    out.push(format!("{kind} {id} could not be read"));
                    continue;
                };
                for value in remote.fields.values() {
                    let ours = task.fields.get(value.field());
                    if !ours.same_as(value) {
                        out.push(format!(
                            "{kind} {id} {:?}: site {value:?}, store {ours:?}",
                            value.field()
                        ));
                    }
                }
                self.diff_comments(provider, &ctx, &key, task, integration, &mut out)
                    .await?;
            }
        }
        Ok(out)
    }

    /// The differences between an object's conversation in its site and in the store: each
    /// provider comment once in the store (a person's with its body), each of ours once in
    /// the provider, confirmed.
    async fn diff_comments(
        &self,
        provider: &Arc<dyn Provider>,
        ctx: &ProviderContext,
        key: &ObjectKey,
        task: &ordonis_core::Task,
        integration: IntegrationId,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        let Some(cp) = provider.comments() else {
            return Ok(());
        };
        let mut remote = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let Ok(page) = cp.list_comments(ctx, key, cursor.as_deref()).await else {
                out.push(format!(
                    "{} {}: comments could not be read",
                    key.object_type, key.external_id
                ));
                return Ok(());
            };
            remote.extend(page.comments);
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let stored: Vec<ordonis_core::TaskComment> = self
            .store
            .task_comments(&self.ws, task.id)
            .await
            .map_err(|e| self.fail(e))?
            .into_iter()
            .filter(|c| !c.deleted)
            .collect();
        let what = format!("{} {}", key.object_type, key.external_id);
        for rc in &remote {
            match &rc.marker {
                Some(m) => {
                    let posts = remote
                        .iter()
                        .filter(|o| o.marker.as_ref() == Some(m))
                        .count();
                    if posts > 1 {
                        out.push(format!("{what}: our comment {m} was posted {posts} times"));
                    }
                }
                None => {
                    let copies: Vec<_> = stored
                        .iter()
                        .filter(|c| c.external_id.as_deref() == Some(rc.external_id.as_str()))
                        .collect();
                    match copies.as_slice() {
                        [one] if one.body == rc.body => {}
                        [one] => out.push(format!(
                            "{what}: comment {} reads {:?} in the store, {:?} in the site",
                            rc.external_id, one.body, rc.body
                        )),
                        many => out.push(format!(
                            "{what}: comment {} is in the store {} times",
                            rc.external_id,
                            many.len()
                        )),
                    }
                }
            }
        }
        for c in stored
            .iter()
            .filter(|c| c.integration_id == Some(integration))
        {
            let found = remote.iter().any(|rc| {
                Some(rc.external_id.as_str()) == c.external_id.as_deref()
                    || rc.marker.as_deref() == Some(c.id.to_string().as_str())
            });
            if !found {
                out.push(format!("{what}: comment {} is not in the site", c.id));
            }
            if let Some(s) = &c.sync
                && s.state != ordonis_core::CommentSyncState::Confirmed
            {
                out.push(format!("{what}: our comment {} is {:?}", c.id, s));
            }
        }
        Ok(())
    }

    /// Every push carried a title CollabHub asked for; the number of pushes.
    fn check_pushes(&self) -> Result<usize, String> {
        let asked = self.asked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut n = 0;
        for (_, body) in self.asana.puts() {
            n += 1;
            if let Some(name) = body.pointer("/data/name").and_then(Value::as_str)
                && !asked.contains(name)
            {
                return Err(self.fail(format!("Asana was sent a title nobody asked for: {name}")));
            }
        }
        for line in self.jira.requests() {
            if line.starts_with("PUT ") {
                n += 1;
            }
        }
        for issue in &self.jira_issues {
            if let Some(summary) = self.jira.issue(issue).and_then(|v| {
                v.pointer("/fields/summary")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }) && summary.starts_with("CollabHub")
                && !asked.contains(&summary)
            {
                return Err(self.fail(format!("Jira holds a title nobody asked for: {summary}")));
            }
        }
        Ok(n)
    }

    /// The workspace's log is gapless, and its signed export verifies offline.
    async fn check_ledger(&self) -> Result<u64, String> {
        let size = self
            .store
            .ledger_size(&self.ws)
            .await
            .map_err(|e| self.fail(e))?;
        let entries = self
            .store
            .ledger_entries(&self.ws, 0, usize::try_from(size).unwrap_or(usize::MAX))
            .await
            .map_err(|e| self.fail(e))?;
        for (i, e) in entries.iter().enumerate() {
            if e.idx != i as u64 {
                return Err(self.fail(format!("ledger gap: entry {i} has index {}", e.idx)));
            }
        }
        let signer = CheckpointSigner::from_seed(&[9; 32]);
        let export = Notary::new(&*self.store, &signer)
            .export(&self.ws)
            .await
            .map_err(|e| self.fail(format!("export: {e}")))?;
        let dir = std::env::temp_dir().join(format!("ordonis-chaos-{}", uuid::Uuid::now_v7()));
        export
            .write_dir(&dir)
            .map_err(|e| self.fail(format!("write export: {e}")))?;
        let trusted = signer
            .trusted_keys(&export.checkpoint.checkpoint.origin)
            .map_err(|e| self.fail(format!("trusted keys: {e}")))?;
        let checked = verify_export_dir(
            &dir,
            &trusted,
            &ExportCheck {
                strict: true,
                ..ExportCheck::default()
            },
        );
        let _ = std::fs::remove_dir_all(&dir);
        let (_, report) = checked.map_err(|e| self.fail(format!("vera verify: {e}")))?;
        if report.size != size {
            return Err(self.fail(format!("verified {} of {size} entries", report.size)));
        }
        Ok(size)
    }

    /// The gids of the Asana webhooks that exist now.
    fn live_asana_webhooks(&self) -> Vec<String> {
        self.asana
            .webhooks()
            .into_iter()
            .filter(|w| !self.asana.webhook_deleted(&w.gid))
            .map(|w| w.gid)
            .collect()
    }

    /// "Asana" deletes the integration's webhook, once the first reconcile has registered
    /// it (the engine registers it a reconcile interval after the backfill).
    async fn delete_asana_webhook(&self) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let live = self.live_asana_webhooks();
            if !live.is_empty() {
                for gid in live {
                    self.asana.delete_webhook_silently(&gid);
                }
                self.deleted.store(true, Ordering::Relaxed);
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(20) {
                return Err(self.fail("the Asana webhook was never registered"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The Asana webhook "Asana" deleted was re-created, and the integration says so
    /// (within the next reconcile runs).
    async fn check_webhook_recreated(&self) -> Result<(), String> {
        if !self.deleted.load(Ordering::Relaxed) {
            return Err(self.fail("no Asana webhook was deleted"));
        }
        let started = Instant::now();
        loop {
            let live = self.live_asana_webhooks();
            let job = self
                .store
                .sync_job(self.asana_id)
                .await
                .map_err(|e| self.fail(e))?
                .ok_or_else(|| self.fail("the Asana integration has no sync job"))?;
            if live
                .iter()
                .any(|gid| job.status.webhook.external_ids.contains(gid))
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(15) {
                return Err(self.fail(format!(
                    "the deleted Asana webhook was not re-created and reported: live {live:?}, \
                     webhook {:?}, reconcile {:?}",
                    job.status.webhook, job.status.reconcile
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
