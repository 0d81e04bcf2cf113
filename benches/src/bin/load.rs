//! End-to-end load benchmark: the reference server (a child process) on PostgreSQL and on
//! SQLite, fed signed Jira webhooks over loopback, beside pgbench's raw-SQL baseline of the
//! same work measured in the same run.
//!
//! ```text
//! cargo run --release -p ordonis-benches --bin load                  # N = 50,000 per level
//! cargo run --release -p ordonis-benches --bin load -- --n 5000 --concurrency 1,16
//! ```
//!
//! Per store: the server runs without workers while N webhooks (~2 KB, 10% redeliveries of
//! an earlier delivery id) are sent at each concurrency level: ingest throughput and latency
//! until the 2xx. Then for each worker count, a backlog of N is drained by an `ordonis-worker`
//! process with that many workers, timed until no row is pending or in flight (tasks and
//! ledger entries written). The server's peak RSS is read from `/proc`. The table is printed
//! and written to the `load` section of `BENCHMARKS.md`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordonis_benches::payload::jira_body_for;
use ordonis_benches::pgbench::{
    BETWEEN_RUNS, Baseline, BenchError, backlog_for, create_database, db_url, drop_database,
};
use ordonis_benches::report::{Table, machine, rate, ratio, write_section};
use sqlx::postgres::PgConnectOptions;

const TOKEN: &str = "load-admin-token";
const SECRET: &str = "load-webhook-secret";

/// End-to-end load benchmark of the reference server against a same-run raw-SQL baseline.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Args {
    /// Webhooks per level.
    #[arg(long, default_value_t = 50_000)]
    n: u64,
    /// Client connections, one level each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    concurrency: Vec<usize>,
    /// Worker counts for the backlog drains.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    drain_workers: Vec<usize>,
    /// Issues the events spread over (each issue's events are processed in order).
    #[arg(long, default_value_t = 1_000)]
    issues: u64,
    /// Live mode: ingest while the server's workers run, the way a deployment runs, and time
    /// each level from the first request until every event is processed.
    #[arg(long)]
    live: bool,
    /// Workers inside the server in live mode.
    #[arg(long, default_value_t = 2)]
    live_workers: usize,
    /// Skip PostgreSQL.
    #[arg(long)]
    no_pg: bool,
    /// Skip SQLite.
    #[arg(long)]
    no_sqlite: bool,
    /// Seconds per baseline level.
    #[arg(long, default_value_t = 5)]
    baseline_secs: u64,
    /// The Markdown file whose `load` (or `load-live`) section is rewritten.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    out: PathBuf,
}

/// The server and worker binaries, built (release) when missing.
fn binaries() -> Result<(PathBuf, PathBuf), BenchError> {
    let dir = std::env::current_exe()?
        .parent()
        .ok_or("no executable directory")?
        .to_path_buf();
    let (server, worker) = (dir.join("ordonis-server"), dir.join("ordonis-worker"));
    if !server.exists() || !worker.exists() {
        eprintln!("building ordonis-server and ordonis-worker (release)…");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "ordonis-server", "--bins"])
            .status()?;
        if !status.success() {
            return Err("cargo build -p ordonis-server failed".into());
        }
    }
    Ok((server, worker))
}

fn free_port() -> Result<u16, BenchError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A child process killed on drop.
struct Proc(Child);

impl Proc {
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const KEY_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";

fn spawn(bin: &Path, db: &str, extra: &[&str]) -> Result<Proc, BenchError> {
    Ok(Proc(
        Command::new(bin)
            .env("ORDONIS_DATABASE_URL", db)
            .env("ORDONIS_ADMIN_TOKEN", TOKEN)
            .env("ORDONIS_SECRET_KEY", KEY_HEX)
            .env("ORDONIS_LOG", "error")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?,
    ))
}

/// A running server with one Jira integration.
struct Server {
    proc: Proc,
    base: String,
    webhook_url: String,
    integration: String,
}

/// Starts a server with `workers` in-process workers (0: ingest only).
async fn start_server(
    bin: &Path,
    db: &str,
    http: &reqwest::Client,
    workers: usize,
) -> Result<Server, BenchError> {
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let workers = workers.to_string();
    let proc = spawn(
        bin,
        db,
        &[
            "--listen",
            &listen,
            "--workers",
            &workers,
            "--allow-any-provider-url",
        ],
    )?;
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err("the server did not become healthy in 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created: serde_json::Value = http
        .post(format!("{base}/api/integrations"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "workspace_id": "load",
            "provider": "jira",
            "base_url": "https://load.atlassian.net",
            "auth": {"type": "basic", "email": "load@example.com", "api_token": "unused"},
            "webhook_secrets": [SECRET],
            "scope": {"jql": "project = LOAD"},
            "backfill": false,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let webhook_url = created["webhook_url"]
        .as_str()
        .ok_or("no webhook_url in the answer")?
        .to_owned();
    let integration = created["integration_id"]
        .as_str()
        .ok_or("no integration_id in the answer")?
        .to_owned();
    Ok(Server {
        proc,
        base,
        webhook_url,
        integration,
    })
}

/// One ingest level's figures.
struct Ingest {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// One prepared request: delivery id, body, signature.
type Prepared = (String, bytes::Bytes, String);

/// `n` signed requests, built before the clock starts (the body varies per event, which costs
/// a JSON round trip the server should not be charged for); every 10th repeats the delivery
/// before it.
fn prepare(n: u64, issues: u64, seq: &std::sync::atomic::AtomicU64) -> Vec<Prepared> {
    let mut out: Vec<Prepared> = Vec::with_capacity(n as usize);
    for i in 0..n {
        if i % 10 == 9
            && let Some(prev) = out.last().cloned()
        {
            out.push(prev);
            continue;
        }
        let k = seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = jira_body_for(k % issues.max(1), 1_790_000_000_000 + k as i64);
        let sig = ordonis_jira::webhook::sign(SECRET, body.as_bytes());
        out.push((format!("load-{k}"), bytes::Bytes::from(body), sig));
    }
    out
}

/// Sends `n` prepared webhooks at `concurrency`.
async fn ingest(
    http: &reqwest::Client,
    url: &str,
    n: u64,
    concurrency: usize,
    issues: u64,
    seq: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<Ingest, BenchError> {
    let requests = Arc::new(prepare(n, issues, seq));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency {
        let (http, url, next, requests) =
            (http.clone(), url.to_owned(), next.clone(), requests.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((delivery, body, sig)) = requests.get(i) else {
                    return Ok::<_, BenchError>(lat);
                };
                let t = Instant::now();
                let r = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature", sig)
                    .header("x-atlassian-webhook-identifier", delivery)
                    .body(body.clone())
                    .send()
                    .await?;
                let status = r.status();
                let _ = r.bytes().await?;
                if !status.is_success() {
                    return Err(format!("webhook answered {status}").into());
                }
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(n as usize);
    for h in handles {
        all.extend(h.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Ok(Ingest {
        per_sec: all.len() as f64 / secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
    })
}

/// Inbox rows pending or in flight, from `/metrics`.
async fn outstanding(http: &reqwest::Client, base: &str) -> Result<u64, BenchError> {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let mut n = 0;
    for line in text.lines() {
        if line.starts_with("ordonis_inbox_rows{")
            && (line.contains("\"pending\"") || line.contains("\"processing\""))
        {
            n += line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
        }
    }
    Ok(n)
}

/// The time `workers` workers in an `ordonis-worker` process take to drain the backlog.
async fn drain(
    worker_bin: &Path,
    db: &str,
    workers: usize,
    http: &reqwest::Client,
    base: &str,
) -> Result<(u64, Duration), BenchError> {
    let backlog = outstanding(http, base).await?;
    let start = Instant::now();
    let _w = spawn(worker_bin, db, &["--workers", &workers.to_string()])?;
    let deadline = start + Duration::from_secs(1800);
    while outstanding(http, base).await? > 0 {
        if Instant::now() > deadline {
            return Err("drain did not finish in 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((backlog, start.elapsed()))
}

/// A database for one run, and how to remove it.
enum Db {
    Pg { url: String, name: String },
    Sqlite { dir: PathBuf },
}

impl Db {
    async fn pg(server: &PgConnectOptions, server_url: &str) -> Result<Self, BenchError> {
        let name = format!(
            "ordonis_load_{}_{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        create_database(server, &name).await?;
        Ok(Db::Pg {
            url: db_url(server_url, &name),
            name,
        })
    }

    fn sqlite() -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!(
            "ordonis-load-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Db::Sqlite { dir })
    }

    fn url(&self) -> String {
        match self {
            Db::Pg { url, .. } => url.clone(),
            Db::Sqlite { dir } => dir.join("load.db").display().to_string(),
        }
    }

    async fn discard(self, server: &PgConnectOptions) -> Result<(), BenchError> {
        match self {
            Db::Pg { name, .. } => drop_database(server, &name).await?,
            Db::Sqlite { dir } => std::fs::remove_dir_all(dir)?,
        }
        Ok(())
    }
}

/// One live level's figures.
struct Live {
    events: u64,
    took: Duration,
    ingest_per_sec: f64,
    peak_rss_kib: u64,
    state: String,
}

/// Ingests `n` webhooks at `concurrency` into a fresh server whose workers run meanwhile,
/// timed from the first request until no event is pending or in flight; then checks the
/// final state in the database.
async fn live_level(
    server_bin: &Path,
    db: &Db,
    http: &reqwest::Client,
    a: &Args,
    concurrency: usize,
    seq: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<Live, BenchError> {
    let s = start_server(server_bin, &db.url(), http, a.live_workers).await?;
    let first = seq.load(std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let r = ingest(http, &s.webhook_url, a.n, concurrency, a.issues, seq).await?;
    let sent = seq.load(std::sync::atomic::Ordering::Relaxed);
    let deadline = start + Duration::from_secs(1800);
    while outstanding(http, &s.base).await? > 0 {
        if Instant::now() > deadline {
            return Err("live run did not settle in 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took = start.elapsed();
    let peak_rss_kib = s.proc.peak_rss_kib().unwrap_or(0);
    let integration = s.integration.clone();
    drop(s);
    let state = check_final_state(db, &integration, first..sent, a.issues).await?;
    Ok(Live {
        events: sent - first,
        took,
        ingest_per_sec: r.per_sec,
        peak_rss_kib,
        state,
    })
}

/// Checks what a run left in the database: one task per issue sent, each with the title of
/// that issue's newest event and a mapping that leads back to it, and a gapless ledger whose
/// leaves hash to their bytes. Returns a one-line summary, or the first difference.
async fn check_final_state(
    db: &Db,
    integration: &str,
    sent: std::ops::Range<u64>,
    issues: u64,
) -> Result<String, BenchError> {
    use ordonis_core::{Store, StoreExt};
    let store: Arc<dyn Store> = match db {
        Db::Pg { url, .. } => Arc::new(ordonis_store_postgres::PostgresStore::connect(url).await?),
        Db::Sqlite { .. } => Arc::new(ordonis_store_sqlite::SqliteStore::connect(&db.url()).await?),
    };
    let ws = ordonis_core::WorkspaceId::new("load")?;
    let integration: ordonis_core::IntegrationId = integration.parse()?;
    // Issue number → the title of its newest event.
    let mut want = std::collections::HashMap::new();
    for k in sent {
        let at = 1_790_000_000_000 + k as i64;
        want.insert(
            k % issues.max(1),
            format!("Load test issue {} at {at}", k % issues.max(1)),
        );
    }
    let tasks = store.all_tasks(&ws).await?;
    if tasks.len() != want.len() {
        return Err(format!("{} tasks for {} issues", tasks.len(), want.len()).into());
    }
    for t in &tasks {
        let link = t.external.first().ok_or("a task without a mapping")?;
        if store.find_mapping(integration, &link.key).await? != Some(t.id) {
            return Err(format!("{} does not map back to its task", link.key.external_id).into());
        }
        let n: u64 = link.key.external_id.parse::<u64>()? - 100_000;
        if want.get(&n) != Some(&t.fields.title) {
            return Err(format!(
                "issue {n}: title {:?}, want {:?}",
                t.fields.title,
                want.get(&n)
            )
            .into());
        }
    }
    let size = ordonis_benches::fresh::check_ledger(&*store, &ws).await?;
    Ok(format!(
        "{} tasks = issues, mapped and newest; {size} ledger entries gapless",
        tasks.len()
    ))
}

/// `--live`: end to end while ingesting, at each concurrency level, on each store.
async fn run_live(
    a: &Args,
    server_bin: &Path,
    server: &PgConnectOptions,
    server_url: &str,
    http: &reqwest::Client,
) -> Result<(), BenchError> {
    let baseline = Baseline::create(server_url).await?;
    let version = baseline.server_version().await.ok();
    let mut raw_ingest = Vec::new();
    for &c in &a.concurrency {
        raw_ingest.push(baseline.ingest(c, a.baseline_secs).await?.tps);
        tokio::time::sleep(BETWEEN_RUNS).await;
    }
    let raw_process = baseline
        .process(
            a.live_workers,
            a.baseline_secs,
            backlog_for(a.baseline_secs, 7_000.0),
        )
        .await?
        .tps;
    baseline.drop_db().await?;

    let mut table = Table::new(&[
        "store",
        "connections",
        "events",
        "end to end s",
        "events/s",
        "ingest/s",
        "raw INSERT/s",
        "raw claim_one/s",
        "e2e ÷ raw claim",
        "peak RSS MiB",
        "final state",
    ]);
    let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (kind, pg) in [("PostgreSQL", true), ("SQLite", false)] {
        if (pg && a.no_pg) || (!pg && a.no_sqlite) {
            continue;
        }
        for (i, &c) in a.concurrency.iter().enumerate() {
            let db = if pg {
                Db::pg(server, server_url).await?
            } else {
                Db::sqlite()?
            };
            let r = live_level(server_bin, &db, http, a, c, &seq).await;
            db.discard(server).await?;
            let r = r?;
            let per_sec = r.events as f64 / r.took.as_secs_f64();
            eprintln!(
                "{kind:<10} live c={c:<3} {} events in {:?} ({per_sec:.0}/s): {}",
                r.events, r.took, r.state
            );
            table.row(vec![
                kind.to_owned(),
                c.to_string(),
                r.events.to_string(),
                format!("{:.2}", r.took.as_secs_f64()),
                rate(per_sec),
                rate(r.ingest_per_sec),
                rate(raw_ingest[i]),
                rate(raw_process),
                ratio(per_sec, Some(raw_process)),
                format!("{:.1}", r.peak_rss_kib as f64 / 1024.0),
                r.state,
            ]);
        }
    }
    let body = format!(
        "## Load, live: ingest while the workers run\n\n\
         Measured {date} on {machine}. Per level, a fresh database and server with {w} \
         in-process workers; N = {n} signed ~2 KB Jira webhooks over {issues} issues (every \
         10th a redelivery, so the events column counts distinct events), timed from the \
         first request until no event is pending or in flight. After each level the \
         database is checked: one task per issue with its newest title, every mapping \
         leading back to its task, a gapless ledger whose leaves hash to their bytes. The \
         raw columns are pgbench's `ingest_dedupe.sql` at the same connection count and \
         `claim_one.sql` with {w} clients, measured at the start of the same run.\n\n\
         Command: `cargo run --release -p ordonis-benches --bin load -- --live --n {n}`\n\n{}\n",
        table.markdown(),
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(version.as_deref()),
        n = a.n,
        w = a.live_workers,
        issues = a.issues,
    );
    println!("{body}");
    write_section(&a.out, "load-live", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), BenchError> {
    let a = <Args as clap::Parser>::parse();
    let (server_bin, worker_bin) = binaries()?;
    let server_url = std::env::var("ORDONIS_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("ORDONIS_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let server = PgConnectOptions::from_str(&server_url)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    if a.live {
        return run_live(&a, &server_bin, &server, &server_url, &http).await;
    }

    // The baseline first, at the same concurrency levels and worker counts.
    let baseline = Baseline::create(&server_url).await?;
    let version = baseline.server_version().await.ok();
    let mut raw_ingest = Vec::new();
    for &c in &a.concurrency {
        raw_ingest.push(baseline.ingest(c, a.baseline_secs).await?.tps);
        tokio::time::sleep(BETWEEN_RUNS).await;
    }
    let mut raw_process = Vec::new();
    for &w in &a.drain_workers {
        let r = baseline
            .process(w, a.baseline_secs, backlog_for(a.baseline_secs, 7_000.0))
            .await?;
        raw_process.push(r.tps);
        tokio::time::sleep(BETWEEN_RUNS).await;
    }
    baseline.drop_db().await?;

    let mut ingest_table = Table::new(&[
        "store",
        "concurrency",
        "webhooks/s",
        "raw INSERT/s",
        "ratio",
        "p50 ms",
        "p99 ms",
        "max ms",
    ]);
    let mut drain_table = Table::new(&[
        "store",
        "workers",
        "backlog",
        "drain s",
        "events/s",
        "raw claim_one/s",
        "ratio",
    ]);
    let mut rss_lines = Vec::new();
    let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut kinds = Vec::new();
    if !a.no_pg {
        kinds.push("PostgreSQL");
    }
    if !a.no_sqlite {
        kinds.push("SQLite");
    }
    for kind in kinds {
        let fresh = || async {
            match kind {
                "PostgreSQL" => Db::pg(&server, &server_url).await,
                _ => Db::sqlite(),
            }
        };
        // Ingest at each concurrency level into one database.
        let db = fresh().await?;
        let s = start_server(&server_bin, &db.url(), &http, 0).await?;
        for (i, &c) in a.concurrency.iter().enumerate() {
            let r = ingest(&http, &s.webhook_url, a.n, c, a.issues, &seq).await?;
            eprintln!(
                "{kind:<10} ingest c={c:<3} {:>8.0}/s p99 {:.2} ms",
                r.per_sec, r.p99_ms
            );
            ingest_table.row(vec![
                kind.to_owned(),
                c.to_string(),
                rate(r.per_sec),
                rate(raw_ingest[i]),
                ratio(r.per_sec, Some(raw_ingest[i])),
                format!("{:.2}", r.p50_ms),
                format!("{:.2}", r.p99_ms),
                format!("{:.1}", r.max_ms),
            ]);
        }
        let mut peak = s.proc.peak_rss_kib().unwrap_or(0);
        drop(s);
        db.discard(&server).await?;

        // Drain a backlog of N with each worker count.
        for (i, &w) in a.drain_workers.iter().enumerate() {
            let db = fresh().await?;
            let s = start_server(&server_bin, &db.url(), &http, 0).await?;
            ingest(&http, &s.webhook_url, a.n, 16, a.issues, &seq).await?;
            let (backlog, took) = drain(&worker_bin, &db.url(), w, &http, &s.base).await?;
            let per_sec = backlog as f64 / took.as_secs_f64();
            eprintln!("{kind:<10} drain w={w} {backlog} in {took:?} ({per_sec:.0}/s)");
            drain_table.row(vec![
                kind.to_owned(),
                w.to_string(),
                backlog.to_string(),
                format!("{:.1}", took.as_secs_f64()),
                rate(per_sec),
                rate(raw_process[i]),
                ratio(per_sec, Some(raw_process[i])),
            ]);
            peak = peak.max(s.proc.peak_rss_kib().unwrap_or(0));
            drop(s);
            db.discard(&server).await?;
        }
        rss_lines.push(format!(
            "- {kind}: server peak RSS {:.1} MiB (goal ≤ 64 MiB)",
            peak as f64 / 1024.0
        ));
    }

    let body = format!(
        "## Load: the reference server end to end\n\n\
         Measured {date} on {machine}. N = {n} webhooks per level (~2 KB Jira bodies, 10% \
         redeliveries), over loopback with the benchmark's own HTTP client; the server runs \
         without workers while ingesting; drains use an `ordonis-worker` process.\n\n\
         Command: `cargo run --release -p ordonis-benches --bin load -- --n {n}`\n\n\
         Ingest (2xx after the event is durably stored) beside pgbench `ingest_dedupe.sql` at \
         the same concurrency (goal ≥ 1.0×; p99 ≤ 20 ms at 1,000 requests/s):\n\n{}\n\
         Drain of a backlog of N (tasks and ledger entries written) beside pgbench \
         `claim_one.sql` with as many clients as workers (goal ≥ 0.8×):\n\n{}\n{}\n",
        ingest_table.markdown(),
        drain_table.markdown(),
        rss_lines.join("\n"),
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(version.as_deref()),
        n = a.n,
    );
    println!("{body}");
    write_section(&a.out, "load", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}
