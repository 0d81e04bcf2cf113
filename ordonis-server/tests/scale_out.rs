//! Scale-out, proven (#30): two `ordonis-server --workers 0` processes and two
//! `ordonis-worker` processes on one PostgreSQL, as the README's "Scaling out" runs them.
//!
//! A signed Jira webhook load is spread over both servers (some bodies delivered to both),
//! and CollabHub edits go through both APIs. Mid-run one worker is killed with SIGKILL and
//! started again, and one server is restarted. At the end:
//! - every acknowledged delivery is one inbox event, processed (done), and no event's
//!   decisions were recorded twice;
//! - every task equals its issue;
//! - every push was sent once: one `PUT` per edited issue, a second only for a push whose row
//!   was claimed again after the killed worker's lease ran out (its `attempts` say so);
//! - the ledger is gapless and verifies against the signed checkpoint;
//! - a console sign-in made on one server is accepted by the other, and a sign-out on one
//!   ends it on both.
//!
//! Needs PostgreSQL (skipped without it, failed under `ORDONIS_REQUIRE_PG=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{Api, SECRET, TOKEN};
use futures::StreamExt;
use ordonis_core::vera::{ExportCheck, TrustedKeys, verify_export};
use ordonis_fakes::jira::FakeJira;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const KEY: &str = "5c0a1e7d9b3f4a6c8e2d0b4f6a8c1e3d5b7f9a2c4e6d8b0f1a3c5e7d9b2f4a6c";
const ISSUES: usize = 200;
/// Issues 0..PERSON_EDITED are edited by people in Jira; the rest through the API.
const PERSON_EDITED: usize = 100;
const ROUNDS: usize = 3;

/// One of the four processes.
struct Proc {
    child: Child,
    url: Option<String>,
}

fn issue(i: usize) -> Value {
    json!({
        "id": format!("{}", 50_000 + i), "key": format!("HO-{}", i + 1),
        "fields": {
            "summary": format!("Issue {i}"),
            "description": null,
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"},
            "assignee": null, "duedate": null,
            "project": {"id": "10000", "key": "HO"},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    })
}

async fn start_server(dir: &Path, name: &str, db: &str) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ordonis-server"))
        .args(["--workers", "0"])
        .env("ORDONIS_DATABASE_URL", db)
        .env("ORDONIS_LISTEN", "127.0.0.1:0")
        .env("ORDONIS_ADMIN_TOKEN", TOKEN)
        .env("ORDONIS_SECRET_KEY", KEY)
        .env("ORDONIS_ALLOW_ANY_PROVIDER_URL", "true")
        .env("ORDONIS_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Ordonis is listening on ") {
                return rest.split_whitespace().next().map(str::to_owned);
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("{name} did not start; see {}", dir.display()))
    .unwrap_or_else(|| panic!("{name} exited; see {}", dir.display()));
    // Keep reading its stdout so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Proc {
        child,
        url: Some(url),
    }
}

fn start_worker(dir: &Path, name: &str, db: &str) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_ordonis-worker"))
        .args(["--workers", "2", "--lease", "5"])
        // Its workers' lease owner ids start with this.
        .env("HOSTNAME", name)
        .env("ORDONIS_DATABASE_URL", db)
        .env("ORDONIS_SECRET_KEY", KEY)
        .env("ORDONIS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Proc { child, url: None }
}

fn signal(p: &Proc, sig: &str) {
    let pid = p.child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn api(url: &str) -> Api {
    Api {
        base: url.to_owned(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    }
}

/// What the test delivered, and what the servers acknowledged.
#[derive(Default)]
struct Deliveries {
    /// Distinct bodies some server answered 2xx.
    acked: HashSet<Vec<u8>>,
    /// 2xx answers in all (bodies sent twice count twice).
    answers: usize,
    /// Sends a server did not answer (it was restarting); each was sent again elsewhere.
    unanswered: usize,
}

/// Delivers `bodies` signed, spread over `servers` (body `i` to server `i % n`), eight at a
/// time; a body whose server does not answer goes to the next one, as Jira retries. Every
/// fifth body is also delivered to the other server (a duplicate delivery).
async fn deliver(servers: &[String], bodies: Vec<Vec<u8>>, log: &mut Deliveries) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut sends = Vec::new();
    for (i, b) in bodies.into_iter().enumerate() {
        sends.push((i % servers.len(), b.clone()));
        if i % 5 == 0 {
            sends.push(((i + 1) % servers.len(), b));
        }
    }
    for chunk in sends.chunks(8) {
        let results = futures::future::join_all(chunk.iter().map(|(first, body)| {
            let http = http.clone();
            async move {
                let mut missed = 0;
                for k in 0..servers.len() * 20 {
                    let url = format!(
                        "{}{}",
                        servers[(first + k) % servers.len()],
                        WEBHOOK_PATH.get().unwrap()
                    );
                    let r = http
                        .post(url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature", common::sign(body))
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => return (body.clone(), missed),
                        Ok(r) => panic!("a delivery was refused: {}", r.status()),
                        Err(_) => {
                            missed += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                panic!("no server answered a delivery");
            }
        }))
        .await;
        for (body, missed) in results {
            log.acked.insert(body);
            log.answers += 1;
            log.unanswered += missed;
        }
    }
}

/// The integration's webhook path (the same on every server).
impl Deliveries {
    fn merge(&mut self, other: Deliveries) {
        self.acked.extend(other.acked);
        self.answers += other.answers;
        self.unanswered += other.unanswered;
    }
}

/// The rows (inbox and outbox ids) leased by the workers of the process started as `name`.
async fn leased_by(db: &sqlx::PgPool, name: &str) -> Vec<uuid::Uuid> {
    sqlx::query_scalar(
        "SELECT id FROM ordonis.webhook_events WHERE state = 'processing' AND lease_owner LIKE $1
         UNION ALL
         SELECT id FROM ordonis.outbox WHERE state = 'processing' AND lease_owner LIKE $1",
    )
    .bind(format!("{name}-%"))
    .fetch_all(db)
    .await
    .unwrap()
}

/// Freezes the worker (SIGSTOP) until it is caught holding leased rows, then kills it with
/// SIGKILL. Returns the rows it held (empty: the load ended before it was caught).
async fn kill_holding_leases(
    w: &mut Proc,
    name: &str,
    db: &sqlx::PgPool,
    load_done: &std::sync::atomic::AtomicBool,
) -> Vec<uuid::Uuid> {
    let mut after_load = 0;
    loop {
        signal(w, "-STOP");
        let held = leased_by(db, name).await;
        if !held.is_empty() || after_load > 5 {
            signal(w, "-KILL");
            w.child.wait().await.unwrap();
            return held;
        }
        if load_done.load(std::sync::atomic::Ordering::SeqCst) {
            after_load += 1;
        }
        signal(w, "-CONT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

static WEBHOOK_PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn until<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn events(api: &Api, integration: &str) -> Vec<Value> {
    let (s, v) = api
        .get(&format!(
            "/api/events?integration_id={integration}&limit=1000"
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    v["events"].as_array().unwrap().clone()
}

async fn pushes(api: &Api, integration: &str) -> Vec<Value> {
    let (s, v) = api
        .get(&format!(
            "/api/pushes?integration_id={integration}&limit=1000"
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    v["pushes"].as_array().unwrap().clone()
}

/// Console sign-ins are in the store: one made on `a` works on `b`; a sign-out on `b` ends it
/// on `a`.
async fn console_sign_in_is_shared(a: &Api, b: &Api) {
    let cookie = a.sign_in().await;
    let page = b.ui_page(&cookie, "/ui/events").await;
    assert!(page.contains("Ordonis"), "{page}");
    let r = b
        .http
        .post(b.url("/ui/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = a
        .http
        .get(a.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "signed out on one server, still in on the other"
    );
    assert_eq!(r.headers()["location"], "/ui/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_and_two_workers_on_one_postgres_survive_kills_and_restarts() {
    let Some((db, name)) = common::pg_database().await else {
        return;
    };
    let dir = common::sqlite_path().parent().unwrap().to_owned();
    let jira = FakeJira::start().await.unwrap();
    jira.capture_webhooks();
    for i in 0..ISSUES {
        jira.insert_issue(issue(i));
    }

    let mut s1 = start_server(&dir, "server-1", &db).await;
    let mut s2 = start_server(&dir, "server-2", &db).await;
    let mut w1 = start_worker(&dir, "worker-1", &db);
    let mut w2 = start_worker(&dir, "worker-2", &db);
    let a1 = api(s1.url.as_deref().unwrap());
    let mut a2 = api(s2.url.as_deref().unwrap());

    let ws = "scale";
    let (st, v) = a1
        .post(
            "/api/integrations",
            &json!({
                "workspace_id": ws, "provider": "jira", "base_url": jira.base_url(),
                "auth": {"type": "basic", "email": "bot@example.com", "api_token": "t"},
                "webhook_secrets": [SECRET],
                "scope": {"jql": "project = HO"},
                "backfill": false,
                "reconcile_every_s": 3600,
            }),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let integration = v["integration_id"].as_str().unwrap().to_owned();
    let hook = reqwest::Url::parse(v["webhook_url"].as_str().unwrap()).unwrap();
    WEBHOOK_PATH.set(hook.path().to_owned()).unwrap();
    let mut log = Deliveries::default();

    // The issues are created in Jira: their webhooks arrive over both servers.
    for i in 0..ISSUES {
        jira.announce_created(&format!("HO-{}", i + 1), "acc-person")
            .await
            .unwrap();
    }
    let servers = vec![a1.base.clone(), a2.base.clone()];
    deliver(&servers, jira.take_webhooks(), &mut log).await;
    let tasks = until("every issue is a task", 120, || async {
        let t = a2.tasks(ws).await;
        (t.len() == ISSUES).then_some(t)
    })
    .await;
    let task_of: HashMap<String, String> = tasks
        .iter()
        .map(|t| {
            (
                t["external"][0]["external_id"].as_str().unwrap().to_owned(),
                t["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();

    let mut killed_holding = Vec::new();
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    let mut restarted = false;
    for round in 0..ROUNDS {
        // People edit their issues in Jira.
        for i in 0..PERSON_EDITED {
            jira.update_issue(
                &format!("HO-{}", i + 1),
                &json!({"summary": format!("Issue {i}, person edit {round}")}),
                "acc-person",
            )
            .await
            .unwrap();
        }
        if round == 0 {
            // CollabHub edits the others, once each, through both APIs, while the people's
            // edits arrive; mid-run, a worker dies without a word, holding leased rows.
            let bodies = jira.take_webhooks();
            let load_done = std::sync::atomic::AtomicBool::new(false);
            let load = async {
                let patches = (PERSON_EDITED..ISSUES).map(|i| {
                    let api = if i % 2 == 0 { &a1 } else { &a2 };
                    let id = task_of[&format!("{}", 50_000 + i)].clone();
                    async move {
                        let (st, v) = api
                            .patch(
                                &format!("/api/tasks/{id}"),
                                &json!({"actor": {"kind": "human", "id": format!("usr_{i}"), "display_name": "Ada"},
                                        "fields": {"title": format!("Issue {i}, edited in CollabHub")}}),
                            )
                            .await;
                        assert_eq!(st, 202, "{v}");
                    }
                });
                let patches = futures::stream::iter(patches)
                    .buffer_unordered(8)
                    .collect::<Vec<()>>();
                let servers = vec![a1.base.clone(), a2.base.clone()];
                let mut round_log = Deliveries::default();
                tokio::join!(patches, deliver(&servers, bodies, &mut round_log));
                load_done.store(true, std::sync::atomic::Ordering::SeqCst);
                round_log
            };
            let (held, round_log) = tokio::join!(
                kill_holding_leases(&mut w1, "worker-1", &pool, &load_done),
                load
            );
            log.merge(round_log);
            killed_holding = held;
            w1 = start_worker(&dir, "worker-1b", &db);
            continue;
        }
        let bodies = jira.take_webhooks();
        if round == 1 {
            // One server restarts while deliveries are in flight.
            let half = bodies.len() / 2;
            let (first, rest) = bodies.split_at(half);
            let deliveries = deliver(&servers, first.to_vec(), &mut log);
            let restart = async {
                signal(&s2, "-TERM");
                s2.child.wait().await.unwrap();
            };
            tokio::join!(deliveries, restart);
            s2 = start_server(&dir, "server-2b", &db).await;
            a2 = api(s2.url.as_deref().unwrap());
            restarted = true;
            let servers = vec![a1.base.clone(), a2.base.clone()];
            deliver(&servers, rest.to_vec(), &mut log).await;
        } else {
            let servers = vec![a1.base.clone(), a2.base.clone()];
            deliver(&servers, bodies, &mut log).await;
        }
    }
    assert!(restarted);
    assert!(
        !killed_holding.is_empty(),
        "the worker was killed holding no row: the test proved nothing about leases"
    );

    // The pushes' echoes come back through the servers too, until all is quiet.
    let servers = vec![a1.base.clone(), a2.base.clone()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        assert!(jira.echoes_sent(Duration::from_secs(5)).await);
        let more = jira.take_webhooks();
        if !more.is_empty() {
            deliver(&servers, more, &mut log).await;
            continue;
        }
        let ev = events(&a1, &integration).await;
        let pu = pushes(&a2, &integration).await;
        if ev.iter().all(|e| e["state"] == "done") && pu.iter().all(|p| p["state"] == "done") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for every event and push to be done"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The killed worker's rows were taken up by another worker once its lease ran out: each
    // is done, on a later attempt.
    let taken_over: Vec<(String, i32)> = sqlx::query_as(
        "SELECT state, attempts FROM ordonis.webhook_events WHERE id = ANY($1)
         UNION ALL
         SELECT state, attempts FROM ordonis.outbox WHERE id = ANY($1)",
    )
    .bind(&killed_holding)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(taken_over.len(), killed_holding.len());
    assert!(
        taken_over
            .iter()
            .all(|(state, attempts)| state == "done" && *attempts >= 2),
        "{taken_over:?}"
    );

    // Every acknowledged delivery is one event, processed.
    let ev = events(&a1, &integration).await;
    assert_eq!(
        ev.len(),
        log.acked.len(),
        "one event per distinct acknowledged body"
    );
    assert!(log.answers > log.acked.len(), "duplicates were delivered");

    // Every task equals its issue.
    let tasks = a2.tasks(ws).await;
    assert_eq!(tasks.len(), ISSUES);
    for t in &tasks {
        let ext = t["external"][0]["external_id"].as_str().unwrap();
        let issue = jira.issue(ext).unwrap();
        assert_eq!(t["title"], issue["fields"]["summary"], "{t}");
        let i: usize = ext.parse::<usize>().unwrap() - 50_000;
        let want = if i < PERSON_EDITED {
            format!("Issue {i}, person edit {}", ROUNDS - 1)
        } else {
            format!("Issue {i}, edited in CollabHub")
        };
        assert_eq!(t["title"], want.as_str(), "{t}");
    }

    // Every push was sent once (a second time only after the killed worker's lease).
    let puts: BTreeMap<String, usize> = jira
        .requests()
        .iter()
        .filter_map(|r| r.strip_prefix("PUT /rest/api/3/issue/"))
        .fold(BTreeMap::new(), |mut m, id| {
            *m.entry(id.to_owned()).or_default() += 1;
            m
        });
    let jobs = pushes(&a1, &integration).await;
    let mut attempts: HashMap<String, u64> = HashMap::new();
    for p in &jobs {
        *attempts
            .entry(p["task_id"].as_str().unwrap().to_owned())
            .or_default() += p["attempts"].as_u64().unwrap();
    }
    let mut resent = 0;
    for i in PERSON_EDITED..ISSUES {
        let ext = format!("{}", 50_000 + i);
        let sent = puts.get(&ext).copied().unwrap_or(0);
        let tries = attempts[&task_of[&ext]];
        assert!(sent >= 1, "issue {ext} was never pushed");
        assert!(
            sent as u64 <= tries.max(1),
            "issue {ext}: {sent} PUTs for {tries} attempts"
        );
        resent += sent - 1;
    }
    for i in 0..PERSON_EDITED {
        assert!(
            !puts.contains_key(&format!("{}", 50_000 + i)),
            "a person's edit was pushed back to Jira: {puts:?}"
        );
    }

    // No event's decisions were recorded twice, and the ledger is gapless and verifies.
    let (_, ex) = a1.get(&format!("/api/ledger/{ws}/export")).await;
    let trusted = TrustedKeys::parse(ex["verifier_keys"].as_str().unwrap()).unwrap();
    let cp = trusted.verify(ex["checkpoint"].as_str().unwrap()).unwrap();
    let entries = ex["entries"].as_str().unwrap();
    let report = verify_export(
        std::io::Cursor::new(entries.as_bytes().to_vec()),
        &cp,
        &ExportCheck::default(),
    )
    .unwrap();
    assert_eq!(report.size, cp.size);
    let lines: Vec<&str> = entries.lines().skip(1).collect();
    assert_eq!(
        lines.len() as u64,
        cp.size,
        "every entry up to the checkpoint, no gap"
    );
    let mut seen = HashSet::new();
    let mut decided = 0;
    for line in &lines {
        let (_, entry) = line.split_once(' ').unwrap();
        let e: Value = serde_json::from_str(entry).unwrap();
        if e["cause"]["kind"] == "inbound_event" {
            let key = (
                e["cause"]["id"].to_string(),
                e["task_id"].to_string(),
                e["field"].to_string(),
                e["outcome"].to_string(),
            );
            assert!(seen.insert(key.clone()), "an event decided twice: {key:?}");
            decided += 1;
        }
    }
    assert!(decided > 0, "no inbound entries: {}", lines[0]);

    // The console on many servers.
    console_sign_in_is_shared(&a1, &a2).await;

    eprintln!(
        "scale-out: {} distinct deliveries acknowledged ({} answers, {} sends to a restarting \
         server retried), {} events, {} tasks, {} pushes ({} re-sent after the kill), {} \
         ledger entries; 1 worker SIGKILLed holding {} leased rows and restarted, 1 server \
         restarted",
        log.acked.len(),
        log.answers,
        log.unanswered,
        ev.len(),
        tasks.len(),
        jobs.len(),
        resent,
        report.size,
        killed_holding.len()
    );
    for p in [&mut s1, &mut s2, &mut w1, &mut w2] {
        let _ = p.child.start_kill();
    }
    pool.close().await;
    common::drop_pg(&name).await;
}
