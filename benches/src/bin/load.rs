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
use ordonis_benches::reads::{Budget, Samples, enc};
use ordonis_benches::report::{Table, machine, rate, ratio, write_section};
use sqlx::postgres::PgConnectOptions;

/// The same pooled allocator as the server's binaries, so that the benchmark's own client
/// work does not take the machine's cores from the server in glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Read mode: seed a workspace of `--tasks` tasks by backfill (beside the webhook path's
    /// rate) and time the console's and the API's read paths over it.
    #[arg(long)]
    reads: bool,
    /// Tasks in the read mode's workspace.
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Read mode at 5,000 tasks (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Issues per fake Jira site in read mode (one integration each).
    #[arg(long, default_value_t = 10_000)]
    site_size: u64,
    /// Created webhooks of the read mode's webhook-path baseline (0: a tenth of the tasks,
    /// at least 500).
    #[arg(long, default_value_t = 0)]
    webhook_n: u64,
    /// Seconds after which a read measure starts no new sample (it takes at least 3).
    #[arg(long, default_value_t = 15)]
    read_secs: u64,
    /// Live mode: a second server binary (e.g. built with `--no-default-features
    /// --features demo`, the system allocator) run at each level beside the default one;
    /// the table (section `load-alloc`) gives the ratio of the two.
    #[arg(long)]
    compare_server: Option<PathBuf>,
    /// Names of the default server binary and of `--compare-server`, for the table.
    #[arg(long, value_delimiter = ',', default_values_t = ["mimalloc".to_owned(), "system allocator".to_owned()])]
    builds: Vec<String>,
    /// Live mode: also count each level's ledger entries by what they record, and write
    /// section `ledger-census` instead of `load-live`.
    #[arg(long)]
    census: bool,
    /// A line put at the top of the written section (e.g. which build was measured).
    #[arg(long)]
    label: Option<String>,
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
        ordonis_benches::reads::peak_rss_kib(self.0.id())
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
    send_prepared(http, url, prepare(n, issues, seq), concurrency).await
}

/// Sends prepared webhooks at `concurrency`, each until its 2xx.
async fn send_prepared(
    http: &reqwest::Client,
    url: &str,
    requests: Vec<Prepared>,
    concurrency: usize,
) -> Result<Ingest, BenchError> {
    let n = requests.len();
    let requests = Arc::new(requests);
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
    let mut all = Vec::with_capacity(n);
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
    census: Vec<(String, u64)>,
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
    let census = if a.census {
        let store: Arc<dyn ordonis_core::Store> = match db {
            Db::Pg { url, .. } => {
                Arc::new(ordonis_store_postgres::PostgresStore::connect(url).await?)
            }
            Db::Sqlite { .. } => {
                Arc::new(ordonis_store_sqlite::SqliteStore::connect(&db.url()).await?)
            }
        };
        let ws = ordonis_core::WorkspaceId::new("load")?;
        ordonis_benches::reads::ledger_census(&*store, &ws).await?
    } else {
        Vec::new()
    };
    Ok(Live {
        events: sent - first,
        took,
        ingest_per_sec: r.per_sec,
        peak_rss_kib,
        state,
        census,
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
    let mut census = Vec::new();
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
            if a.census {
                census.push(census_table(kind, c, r.events, &r.census));
            }
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
    // A census run is usually a level or two: it leaves the full table alone.
    if !a.census {
        write_section(&a.out, "load-live", &body)?;
    } else {
        let body = format!(
            "## Ledger entries per routine event\n\n\
             Measured {date} with the live run above (`--live --census`): after each level, \
             the workspace's ledger counted by what each entry records. A routine event here \
             is a signed `jira:issue_updated` webhook about one of {issues} issues (the first \
             event of an issue creates its task); \"unchanged\" marks a field entry whose \
             value after is its value before, an entry that records no decision about the \
             field.\n\n{}",
            census.join("\n"),
            date = time::OffsetDateTime::now_utc().date(),
            issues = a.issues,
        );
        println!("{body}");
        write_section(&a.out, "ledger-census", &body)?;
    }
    eprintln!("written to {}", a.out.display());
    Ok(())
}

/// One level's ledger census as a markdown table, with entries per event.
fn census_table(kind: &str, c: usize, events: u64, census: &[(String, u64)]) -> String {
    let total: u64 = census.iter().map(|(_, n)| n).sum();
    let mut t = Table::new(&["entry (op field → outcome, cause)", "entries", "per event"]);
    for (what, n) in census {
        t.row(vec![
            what.clone(),
            n.to_string(),
            format!("{:.3}", *n as f64 / events.max(1) as f64),
        ]);
    }
    t.row(vec![
        "**all**".to_owned(),
        total.to_string(),
        format!("{:.3}", total as f64 / events.max(1) as f64),
    ]);
    format!(
        "{kind}, {c} connections, {events} events:\n\n{}",
        t.markdown()
    )
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
    if a.reads {
        return run_reads(&a, &server_bin, &server, &server_url, &http).await;
    }
    if let Some(other) = a.compare_server.as_deref().filter(|_| a.live) {
        return run_compare(&a, &server_bin, other, &server, &server_url, &http).await;
    }
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

/// How a read request authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    /// None (`/healthz`).
    None,
    /// The admin token (the API).
    Bearer,
    /// A console session cookie (`ordonis_session=…`).
    Cookie(&'a str),
}

/// One GET, checked for a 2xx; the body's size.
async fn get_once(http: &reqwest::Client, url: &str, auth: Auth<'_>) -> Result<usize, BenchError> {
    let req = match auth {
        Auth::None => http.get(url),
        Auth::Bearer => http.get(url).bearer_auth(TOKEN),
        Auth::Cookie(c) => http.get(url).header("cookie", c),
    };
    let r = req.send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}").into());
    }
    Ok(body.len())
}

/// Times a GET (after one warm-up request) within `budget`; the samples and the last body's
/// size.
async fn time_get(
    http: &reqwest::Client,
    url: &str,
    auth: Auth<'_>,
    budget: Budget,
) -> Result<(Samples, usize), BenchError> {
    get_once(http, url, auth).await?;
    let mut s = Samples::default();
    let mut bytes = 0;
    let start = Instant::now();
    while budget.more(s.len(), start) {
        let t = Instant::now();
        bytes = get_once(http, url, auth).await?;
        s.push(t.elapsed());
    }
    Ok((s, bytes))
}

/// Times a walk of up to `pages` API pages, following `next_cursor` (a server without
/// paging answers everything on the first page, and the walk ends there); the samples, the
/// pages the last walk read and its bytes.
async fn time_walk(
    http: &reqwest::Client,
    first: &str,
    pages: usize,
    budget: Budget,
) -> Result<(Samples, usize, usize), BenchError> {
    let walk = || async {
        let (mut read, mut bytes, mut url) = (0, 0, first.to_owned());
        while read < pages {
            let r = http.get(&url).bearer_auth(TOKEN).send().await?;
            let status = r.status();
            let body = r.bytes().await?;
            if !status.is_success() {
                return Err::<_, BenchError>(format!("GET {url} answered {status}").into());
            }
            read += 1;
            bytes += body.len();
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            match v.get("next_cursor").and_then(serde_json::Value::as_str) {
                Some(c) => url = format!("{first}&cursor={}", enc(c)),
                None => break,
            }
        }
        Ok((read, bytes))
    };
    walk().await?;
    let mut s = Samples::default();
    let (mut read, mut bytes) = (0, 0);
    let start = Instant::now();
    while budget.more(s.len(), start) {
        let t = Instant::now();
        (read, bytes) = walk().await?;
        s.push(t.elapsed());
    }
    Ok((s, read, bytes))
}

/// Signs in to the console with the admin token; the session cookie (`name=value`).
async fn sign_in(base: &str) -> Result<String, BenchError> {
    // Without redirects: the cookie comes on the 303 that leads to /ui.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = http
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", enc(TOKEN)))
        .send()
        .await?;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ordonis_session="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| format!("sign-in answered {} without a session cookie", r.status()))?
        .to_owned();
    Ok(cookie)
}

/// Creates a Jira integration on `site` in `ws`; its id and webhook URL.
async fn create_jira(
    http: &reqwest::Client,
    base: &str,
    ws: &str,
    site: &str,
    backfill: bool,
) -> Result<(String, String), BenchError> {
    let created: serde_json::Value = http
        .post(format!("{base}/api/integrations"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "workspace_id": ws,
            "provider": "jira",
            "base_url": site,
            "auth": {"type": "basic", "email": "load@example.com", "api_token": "unused"},
            "webhook_secrets": [SECRET],
            "scope": {"jql": "project = HO"},
            "backfill": backfill,
            // No reconcile during the run: it would list the site again.
            "reconcile_every_s": 86_400,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["integration_id"]
        .as_str()
        .ok_or("no integration_id in the answer")?;
    let hook = created["webhook_url"]
        .as_str()
        .ok_or("no webhook_url in the answer")?;
    Ok((id.to_owned(), hook.to_owned()))
}

/// A server with `workers` in-process workers and no integration.
async fn start_bare(
    bin: &Path,
    db: &str,
    http: &reqwest::Client,
    workers: usize,
) -> Result<(Proc, String), BenchError> {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let proc = spawn(
        bin,
        db,
        &[
            "--listen",
            &listen,
            "--workers",
            &workers.to_string(),
            "--allow-any-provider-url",
        ],
    )?;
    let base = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return Ok((proc, base));
        }
        if Instant::now() > deadline {
            return Err("the server did not become healthy in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether every integration's backfill is done (an error when one failed).
async fn backfills_done(
    http: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> Result<bool, BenchError> {
    for id in ids {
        let v: serde_json::Value = http
            .get(format!("{base}/api/integrations/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match v["sync"]["backfill"]["state"].as_str() {
            Some("done") => {}
            Some("failed") => {
                return Err(format!("backfill of {id} failed: {}", v["sync"]["backfill"]).into());
            }
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The number of tasks and ledger entries in workspace `ws`, read from the store (the
/// server stopped).
async fn count(db: &Db, ws: &str) -> Result<(u64, u64), BenchError> {
    use ordonis_core::{Store, StoreExt};
    let store: Arc<dyn Store> = match db {
        Db::Pg { url, .. } => Arc::new(ordonis_store_postgres::PostgresStore::connect(url).await?),
        Db::Sqlite { .. } => Arc::new(ordonis_store_sqlite::SqliteStore::connect(&db.url()).await?),
    };
    let ws = ordonis_core::WorkspaceId::new(ws)?;
    let tasks = store.all_tasks(&ws).await?.len() as u64;
    let size = ordonis_benches::fresh::check_ledger(&*store, &ws).await?;
    Ok((tasks, size))
}

/// What seeding a workspace measured.
struct Seeded {
    issues: u64,
    took: Duration,
    entries: u64,
    peak_rss_kib: u64,
}

/// The webhook path, the baseline of the backfill: `n` `jira:issue_created` webhooks of a
/// fake site, signed, sent over HTTP at 16 connections to a fresh server whose workers run,
/// timed from the first request until no event is pending or in flight.
async fn seed_by_webhooks(
    server_bin: &Path,
    db: &Db,
    http: &reqwest::Client,
    n: u64,
    workers: usize,
) -> Result<Seeded, BenchError> {
    let site = ordonis_benches::reads::seeded_site(0, n).await?;
    let bodies = ordonis_benches::repair_site::created_webhooks(&site, n).await?;
    let (proc, base) = start_bare(server_bin, &db.url(), http, workers).await?;
    let (_, hook) = create_jira(http, &base, "reads", &site.base_url(), false).await?;
    let requests: Vec<Prepared> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let sig = ordonis_jira::webhook::sign(SECRET, &body);
            (format!("created-{i}"), body, sig)
        })
        .collect();
    let start = Instant::now();
    send_prepared(http, &hook, requests, 16).await?;
    let deadline = start + Duration::from_secs(3600);
    while outstanding(http, &base).await? > 0 {
        if Instant::now() > deadline {
            return Err("the webhooks were not processed in an hour".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    let peak_rss_kib = proc.peak_rss_kib().unwrap_or(0);
    drop(proc);
    let (tasks, entries) = count(db, "reads").await?;
    if tasks != n {
        return Err(format!("{tasks} tasks after {n} created webhooks").into());
    }
    Ok(Seeded {
        issues: n,
        took,
        entries,
        peak_rss_kib,
    })
}

/// Seeds workspace `reads` with `n` tasks through the real backfill: fake Jira sites of
/// `site_size` issues each (one integration each), listed over HTTP by the server's own
/// workers, timed from the first integration's creation until every backfill is done and no
/// event is pending or in flight.
async fn seed_by_backfill(
    server_bin: &Path,
    db: &Db,
    http: &reqwest::Client,
    n: u64,
    site_size: u64,
    workers: usize,
) -> Result<Seeded, BenchError> {
    let mut sites = Vec::new();
    let mut first = 0;
    while first < n {
        let k = site_size.max(1).min(n - first);
        sites.push(ordonis_benches::reads::seeded_site(first, k).await?);
        first += k;
    }
    let (proc, base) = start_bare(server_bin, &db.url(), http, workers).await?;
    let start = Instant::now();
    let mut ids = Vec::new();
    for site in &sites {
        ids.push(
            create_jira(http, &base, "reads", &site.base_url(), true)
                .await?
                .0,
        );
    }
    let deadline = start + Duration::from_secs(3 * 3600);
    let mut last_report = Instant::now();
    loop {
        let open = outstanding(http, &base).await?;
        if open == 0 && backfills_done(http, &base, &ids).await? {
            break;
        }
        if Instant::now() > deadline {
            return Err("the backfill did not finish in 3 hours".into());
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "  backfill: {:.0} s, {open} events open",
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = start.elapsed();
    let peak_rss_kib = proc.peak_rss_kib().unwrap_or(0);
    drop(proc);
    drop(sites);
    let (tasks, entries) = count(db, "reads").await?;
    if tasks != n {
        return Err(format!("{tasks} tasks after a backfill of {n} issues").into());
    }
    Ok(Seeded {
        issues: n,
        took,
        entries,
        peak_rss_kib,
    })
}

/// A read's goal: median at most this many ms.
fn verdict(median_ms: f64, goal_ms: Option<f64>) -> String {
    match goal_ms {
        Some(g) if median_ms <= g => format!("≤ {g:.0} ms ✔"),
        Some(g) => format!("≤ {g:.0} ms ✘"),
        None => "—".to_owned(),
    }
}

/// `--reads`: per store, a workspace of N tasks seeded by a backfill (beside the webhook
/// path's rate), then the console's and the API's read paths timed over HTTP against a
/// single-task GET, with the server's peak RSS.
async fn run_reads(
    a: &Args,
    server_bin: &Path,
    server: &PgConnectOptions,
    server_url: &str,
    http: &reqwest::Client,
) -> Result<(), BenchError> {
    use ordonis_benches::reads::NEEDLE;
    let n = if a.quick { 5_000 } else { a.tasks };
    let webhook_n = if a.webhook_n > 0 {
        a.webhook_n
    } else {
        (n / 10).max(500)
    };
    let budget = Budget {
        min: 3,
        max: 30,
        time: Duration::from_secs(a.read_secs),
    };
    let version = {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect_with(server).await?;
        let v: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        v.split(" on ").next().unwrap_or(&v).to_owned()
    };
    let mut seed_table = Table::new(&[
        "store",
        "backfill issues",
        "backfill s",
        "backfill issues/s",
        "webhook events",
        "webhooks s",
        "webhook events/s",
        "backfill ÷ webhooks",
        "ledger entries per issue (backfill / webhooks)",
        "peak RSS MiB (backfill / webhooks)",
    ]);
    let mut reads_table = Table::new(&[
        "store",
        "request",
        "samples",
        "median ms",
        "p95 ms",
        "÷ single-task GET",
        "bytes",
        "goal (median)",
    ]);
    let mut rss_lines = Vec::new();
    for (kind, pg) in [("SQLite", false), ("PostgreSQL", true)] {
        if (pg && a.no_pg) || (!pg && a.no_sqlite) {
            continue;
        }
        let fresh = || async {
            if pg {
                Db::pg(server, server_url).await
            } else {
                Db::sqlite()
            }
        };
        // The webhook path, on a database of its own.
        let db = fresh().await?;
        let hooks = seed_by_webhooks(server_bin, &db, http, webhook_n, a.live_workers).await;
        db.discard(server).await?;
        let hooks = hooks?;
        let hook_rate = hooks.issues as f64 / hooks.took.as_secs_f64();
        eprintln!(
            "{kind:<10} webhooks: {} in {:?} ({hook_rate:.0}/s)",
            hooks.issues, hooks.took
        );

        let db = fresh().await?;
        let r = reads_on(a, server_bin, &db, http, n, budget, kind).await;
        db.discard(server).await?;
        let (fill, rows, read_rss) = r?;
        let fill_rate = fill.issues as f64 / fill.took.as_secs_f64();
        seed_table.row(vec![
            kind.to_owned(),
            fill.issues.to_string(),
            format!("{:.1}", fill.took.as_secs_f64()),
            rate(fill_rate),
            hooks.issues.to_string(),
            format!("{:.1}", hooks.took.as_secs_f64()),
            rate(hook_rate),
            ratio(fill_rate, Some(hook_rate)),
            format!(
                "{:.2} / {:.2}",
                fill.entries as f64 / fill.issues as f64,
                hooks.entries as f64 / hooks.issues as f64
            ),
            format!(
                "{:.1} / {:.1}",
                fill.peak_rss_kib as f64 / 1024.0,
                hooks.peak_rss_kib as f64 / 1024.0
            ),
        ]);
        for row in rows {
            reads_table.row(row);
        }
        let mib = read_rss as f64 / 1024.0;
        rss_lines.push(format!(
            "- {kind}: the read server's peak RSS over all the requests above {mib:.1} MiB \
             (goal ≤ 64 MiB {}); the seeding server's {:.1} MiB.",
            if mib <= 64.0 { "✔" } else { "✘" },
            fill.peak_rss_kib as f64 / 1024.0
        ));
    }
    let body = format!(
        "## Load, reads at {n} tasks: the console and the API over a large workspace\n\n\
         {before}Measured {date} on {machine}.\n\n\
         Command: `cargo run --release -p ordonis-benches --bin load -- --reads --tasks {n}` \
         (`--quick`: 5,000 tasks).\n\n\
         **Seeding.** Per store, a fresh database and server (with {w} in-process workers). \
         The workspace's {n} tasks come from the real backfill: {sites} fake Jira site(s) (real \
         HTTP on loopback, in the benchmark's process) of up to {site} issues each, one \
         integration each, listed by the server's workers; timed from the first integration's \
         creation until every backfill is `done` and no event is pending or in flight. The \
         baseline is the webhook path in the same run: {webhook_n} `jira:issue_created` \
         webhooks from such a site, signed, sent over HTTP at 16 connections to a fresh \
         database and server, timed until processed. After each, the store holds one task per \
         issue and a gapless ledger. (One site of 100,000 would make the fake the bound: it \
         copies and sorts its whole issue map for every search page.)\n\n{}\n\
         **Reads.** The seeded database under a fresh server without workers. Each request \
         once to warm up, then repeated: at least 3 times, at most 30, none started after \
         {secs} s. Titles cycle through three statuses; one in {every} carries the word \
         `{NEEDLE}`. The console is signed in as a browser would be (the session cookie of \
         `POST /ui/login`). The ratio column divides each median by the same run's \
         `GET /api/tasks/{{id}}`. Requests the server does not support yet (`limit`, filters \
         and the cursor on `/api/tasks`) are measured all the same: such a server answers \
         the whole workspace, which is what they cost there. The cursor walk follows \
         `next_cursor` for up to 3 pages (the pages column says how many it read) and \
         includes parsing each page.\n\n{}\n{}\n",
        seed_table.markdown(),
        reads_table.markdown(),
        rss_lines.join("\n"),
        before = a
            .label
            .as_deref()
            .map(|l| format!("{l}\n\n"))
            .unwrap_or_default(),
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(Some(&version)),
        w = a.live_workers,
        sites = n.div_ceil(a.site_size.max(1)),
        site = a.site_size,
        secs = a.read_secs,
        every = ordonis_benches::reads::NEEDLE_EVERY,
    );
    println!("{body}");
    write_section(&a.out, "load-reads", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}

/// Seeds a workspace of `n` tasks on `db` by backfill, then times the read paths under a
/// fresh server; the seeding figures, the table's rows and the read server's peak RSS.
async fn reads_on(
    a: &Args,
    server_bin: &Path,
    db: &Db,
    http: &reqwest::Client,
    n: u64,
    budget: Budget,
    kind: &str,
) -> Result<(Seeded, Vec<Vec<String>>, u64), BenchError> {
    use ordonis_benches::reads::{FILTER_STATUS, NEEDLE};
    let fill = seed_by_backfill(server_bin, db, http, n, a.site_size, a.live_workers).await?;
    eprintln!(
        "{kind:<10} backfill: {} in {:?} ({:.0}/s), {} ledger entries",
        fill.issues,
        fill.took,
        fill.issues as f64 / fill.took.as_secs_f64(),
        fill.entries
    );
    let (proc, base) = start_bare(server_bin, &db.url(), http, 0).await?;
    let cookie = sign_in(&base).await?;
    let api = format!("{base}/api/tasks?workspace_id=reads&limit=100");
    // One task to read: the middle of the first page.
    let first: serde_json::Value = http
        .get(&api)
        .bearer_auth(TOKEN)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tasks = first["tasks"].as_array().ok_or("no tasks in the answer")?;
    let task = tasks
        .get(tasks.len() / 2)
        .and_then(|t| t["id"].as_str())
        .ok_or("no task in the first page")?
        .to_owned();
    let ui = format!("{base}/ui/workspaces/reads");
    let status = enc(FILTER_STATUS);
    let checks: Vec<(String, String, Auth<'_>, Option<f64>)> = vec![
        (
            "`GET /healthz`".into(),
            format!("{base}/healthz"),
            Auth::None,
            None,
        ),
        (
            "`GET /api/tasks/{id}` (baseline)".into(),
            format!("{base}/api/tasks/{task}"),
            Auth::Bearer,
            None,
        ),
        (
            "console: task list".into(),
            ui.clone(),
            Auth::Cookie(&cookie),
            Some(150.0),
        ),
        (
            format!("console: filtered by status (`?status={FILTER_STATUS}`)"),
            format!("{ui}?status={status}"),
            Auth::Cookie(&cookie),
            Some(150.0),
        ),
        (
            "console: filtered by sync state (`?sync=conflict`)".into(),
            format!("{ui}?sync=conflict"),
            Auth::Cookie(&cookie),
            Some(150.0),
        ),
        (
            format!("console: title search (`?q={NEEDLE}`)"),
            format!("{ui}?q={NEEDLE}"),
            Auth::Cookie(&cookie),
            Some(150.0),
        ),
        (
            "console: one task's page".into(),
            format!("{base}/ui/tasks/{task}"),
            Auth::Cookie(&cookie),
            Some(150.0),
        ),
        (
            "API: one page (`limit=100`)".into(),
            api.clone(),
            Auth::Bearer,
            Some(50.0),
        ),
        (
            format!("API: a page filtered by status (`status={FILTER_STATUS}`)"),
            format!("{api}&status={status}"),
            Auth::Bearer,
            Some(50.0),
        ),
        (
            "API: a page filtered by sync state (`sync_state=conflict`)".into(),
            format!("{api}&sync_state=conflict"),
            Auth::Bearer,
            Some(50.0),
        ),
        (
            format!("API: a title search (`q={NEEDLE}`)"),
            format!("{api}&q={NEEDLE}"),
            Auth::Bearer,
            Some(50.0),
        ),
    ];
    let mut rows = Vec::new();
    let mut baseline = None;
    for (what, url, auth, goal) in checks {
        let (s, bytes) = time_get(http, &url, auth, budget).await?;
        let median = s.median_ms();
        if url.ends_with(&format!("/api/tasks/{task}")) {
            baseline = Some(median);
        }
        eprintln!(
            "{kind:<10} {what}: median {median:.2} ms, p95 {:.2} ms, {bytes} B",
            s.p95_ms()
        );
        rows.push(vec![
            kind.to_owned(),
            what,
            s.len().to_string(),
            format!("{median:.2}"),
            format!("{:.2}", s.p95_ms()),
            ratio(median, baseline),
            bytes.to_string(),
            verdict(median, goal),
        ]);
    }
    let (s, pages, bytes) = time_walk(http, &api, 3, budget).await?;
    let median = s.median_ms();
    eprintln!("{kind:<10} API walk: median {median:.2} ms over {pages} pages");
    rows.push(vec![
        kind.to_owned(),
        format!("API: a cursor walk of 3 pages ({pages} read)"),
        s.len().to_string(),
        format!("{median:.2}"),
        format!("{:.2}", s.p95_ms()),
        ratio(median, baseline),
        bytes.to_string(),
        verdict(median, Some(150.0)),
    ]);
    let rss = proc.peak_rss_kib().unwrap_or(0);
    drop(proc);
    Ok((fill, rows, rss))
}

/// `--live --compare-server B`: the live run at each level on each store with the default
/// server binary and with B, alternating which goes first, and the ratio of their events/s.
async fn run_compare(
    a: &Args,
    server_bin: &Path,
    other: &Path,
    server: &PgConnectOptions,
    server_url: &str,
    http: &reqwest::Client,
) -> Result<(), BenchError> {
    let name = |i: usize| {
        a.builds
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("build {i}"))
    };
    let mut table = Table::new(&[
        "store",
        "connections",
        "server build",
        "events",
        "end to end s",
        "events/s",
        "ingest/s",
        "peak RSS MiB",
        "final state",
    ]);
    let mut ratios = Table::new(&[
        "store",
        "connections",
        &format!("{} events/s", name(0)),
        &format!("{} events/s", name(1)),
        "ratio",
    ]);
    let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (kind, pg) in [("PostgreSQL", true), ("SQLite", false)] {
        if (pg && a.no_pg) || (!pg && a.no_sqlite) {
            continue;
        }
        for (level, &c) in a.concurrency.iter().enumerate() {
            let mut per_sec = [0.0f64; 2];
            // Alternate which build goes first, so drift on a shared machine is not
            // charged to one of them.
            let order = if level % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let bin = if i == 0 { server_bin } else { other };
                let db = if pg {
                    Db::pg(server, server_url).await?
                } else {
                    Db::sqlite()?
                };
                let r = live_level(bin, &db, http, a, c, &seq).await;
                db.discard(server).await?;
                let r = r?;
                per_sec[i] = r.events as f64 / r.took.as_secs_f64();
                eprintln!(
                    "{kind:<10} live c={c:<3} {}: {} events in {:?} ({:.0}/s)",
                    name(i),
                    r.events,
                    r.took,
                    per_sec[i]
                );
                table.row(vec![
                    kind.to_owned(),
                    c.to_string(),
                    name(i),
                    r.events.to_string(),
                    format!("{:.2}", r.took.as_secs_f64()),
                    rate(per_sec[i]),
                    rate(r.ingest_per_sec),
                    format!("{:.1}", r.peak_rss_kib as f64 / 1024.0),
                    r.state,
                ]);
            }
            ratios.row(vec![
                kind.to_owned(),
                c.to_string(),
                rate(per_sec[0]),
                rate(per_sec[1]),
                ratio(per_sec[0], Some(per_sec[1])),
            ]);
        }
    }
    let body = format!(
        "## Load, live: the server's allocator\n\n\
         Measured {date} on {machine}. The live run (see \"Load, live\": a fresh database and \
         server with {w} in-process workers per level, N = {n} signed webhooks over {issues} \
         issues, timed until every event is processed, then the final state checked) with two \
         builds of `ordonis-server` in the same run: {a0} (the default build) and {a1} \
         (`--no-default-features --features demo`), alternating which runs first.\n\n\
         Command: `cargo run --release -p ordonis-benches --bin load -- --live --n {n} \
         --concurrency {levels} --compare-server <the other build>`\n\n{}\n{}\n",
        ratios.markdown(),
        table.markdown(),
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(None),
        w = a.live_workers,
        n = a.n,
        issues = a.issues,
        a0 = name(0),
        a1 = name(1),
        levels = a
            .concurrency
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    println!("{body}");
    write_section(&a.out, "load-alloc", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}
