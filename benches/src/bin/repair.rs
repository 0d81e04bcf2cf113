//! Repair-loop benchmark: backfill throughput from a fake Jira beside the webhook path, and
//! the time to repair a dropped delivery, on PostgreSQL and SQLite.
//!
//! ```text
//! cargo run --release -p ordonis-benches --bin repair -- backfill           # N = 10,000
//! cargo run --release -p ordonis-benches --bin repair -- repair --interval-s 2
//! ```
//!
//! - **backfill**: a FakeJira (real HTTP, in this process) holds N issues in project HO; an
//!   engine (JiraProvider, the store under test) gets a Jira integration with scope
//!   `{"jql": "project = HO"}`, backfill on, and W workers run until the backfill is done and
//!   the inbox is drained. issues/s = tasks committed (task + mapping + ledger) / wall time.
//!   Baseline, same run, same store kind, fresh database: the same N issues delivered as
//!   `jira:issue_created` webhooks through `Engine::ingest` by S concurrent senders while the
//!   same W workers run, timed from the first delivery to the drained inbox.
//! - **repair**: after the backfill, webhooks off, K times: wait a random fraction of the
//!   interval, edit a random issue's summary silently, and time until the store's task shows
//!   it. Measured at a short interval; the default interval (300 s) is modeled from it.
//!
//! PostgreSQL comes from `--database-url` (else `ORDONIS_BENCH_DATABASE_URL`, else
//! `ORDONIS_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/postgres`); each run
//! creates and drops its own databases. Tables go to the `repair-backfill` and
//! `repair-latency` sections of `BENCHMARKS.md`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordonis_benches::pgbench::BenchError;
use ordonis_benches::repair_site::{
    Fresh, Site, Workers, created_webhooks, edit_silently, edited_title, seeded_jira, title_of,
};
use ordonis_benches::report::{Table, machine, rate, ratio, write_section};
use sqlx::postgres::PgConnectOptions;

/// The same pooled allocator as the server's binaries, so that the benchmark's own client
/// work does not take the machine's cores from the server in glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Repair-loop benchmarks.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Args {
    /// `backfill` or `repair`; without one (as `cargo bench` runs binaries) nothing runs.
    #[command(subcommand)]
    what: Option<What>,
    /// PostgreSQL server URL (a fresh database is created per run).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Skip PostgreSQL.
    #[arg(long, global = true)]
    no_pg: bool,
    /// Skip SQLite.
    #[arg(long, global = true)]
    no_sqlite: bool,
    /// Issues in the fake Jira.
    #[arg(long, global = true, default_value_t = 10_000)]
    n: u64,
    /// The Markdown file whose sections are rewritten.
    #[arg(long, global = true, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    out: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Backfill of N issues beside the same N as webhooks.
    Backfill {
        /// Worker counts, one row each.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
        workers: Vec<usize>,
        /// Concurrent webhook senders of the baseline.
        #[arg(long, default_value_t = 4)]
        senders: usize,
    },
    /// Time to repair a dropped delivery.
    Repair {
        /// Samples.
        #[arg(long, default_value_t = 50)]
        k: usize,
        /// The reconcile interval measured at, seconds.
        #[arg(long, default_value_t = 2)]
        interval_s: u64,
        /// The interval the model projects to, seconds (the default `reconcile_every_s`).
        #[arg(long, default_value_t = 300)]
        model_interval_s: u64,
        /// The fake's search-index lag, milliseconds.
        #[arg(long, default_value_t = 0)]
        index_lag_ms: u64,
        /// Workers.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Seed of the random issues and moments.
        #[arg(long, default_value_t = 14)]
        seed: u64,
    },
}

/// A small deterministic generator (xorshift64*): the benchmark needs repeatable random
/// issues and moments, not cryptographic quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn server_url(a: &Args) -> String {
    a.database_url.clone().unwrap_or_else(|| {
        std::env::var("ORDONIS_BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("ORDONIS_TEST_DATABASE_URL"))
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    })
}

async fn pg_version(server: &PgConnectOptions) -> Option<String> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect_with(server).await.ok()?;
    let v: (String,) = sqlx::query_as("SHOW server_version")
        .fetch_one(&mut c)
        .await
        .ok()?;
    let _ = c.close().await;
    Some(format!("PostgreSQL {}", v.0))
}

fn kinds(a: &Args) -> Vec<&'static str> {
    let mut k = Vec::new();
    if !a.no_pg {
        k.push("PostgreSQL");
    }
    if !a.no_sqlite {
        k.push("SQLite");
    }
    k
}

async fn fresh(kind: &str, server: &PgConnectOptions) -> Result<Fresh, BenchError> {
    match kind {
        "PostgreSQL" => Fresh::pg(server, None).await,
        _ => Fresh::sqlite().await,
    }
}

/// What one timed import did.
struct Import {
    took: Duration,
    state: String,
}

const SETTLE_LIMIT: Duration = Duration::from_secs(1800);

/// The backfill of `n` issues with `workers` workers on a fresh store.
async fn backfill_once(
    kind: &str,
    server: &PgConnectOptions,
    n: u64,
    workers: usize,
) -> Result<Import, BenchError> {
    let jira = seeded_jira(n).await?;
    let db = fresh(kind, server).await?;
    let r = async {
        let start = Instant::now();
        // Creating the integration schedules the backfill (due now).
        let site = Site::new(db.store(), &jira, true, 300).await?;
        let pool = Workers::start(&site.engine, workers);
        site.settle(true, SETTLE_LIMIT).await?;
        let took = start.elapsed();
        pool.stop().await;
        let webhooks = jira.deliveries();
        if webhooks != 0 {
            return Err(format!("{webhooks} webhooks were sent during the backfill").into());
        }
        let state = site.check(n).await?;
        Ok::<_, BenchError>(Import { took, state })
    }
    .await;
    db.discard(server).await?;
    r
}

/// The same `n` issues as `jira:issue_created` webhooks through `Engine::ingest`.
async fn webhooks_once(
    kind: &str,
    server: &PgConnectOptions,
    n: u64,
    workers: usize,
    senders: usize,
) -> Result<Import, BenchError> {
    let jira = seeded_jira(n).await?;
    // Built before the clock starts, as a site would have them ready to send.
    let bodies = Arc::new(created_webhooks(&jira, n).await?);
    let db = fresh(kind, server).await?;
    let r = async {
        let site = Arc::new(Site::new(db.store(), &jira, false, 300).await?);
        let start = Instant::now();
        let pool = Workers::start(&site.engine, workers);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut handles = Vec::new();
        for _ in 0..senders.max(1) {
            let (site, bodies, next) = (site.clone(), bodies.clone(), next.clone());
            handles.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<_, BenchError>(());
                    };
                    site.ingest(&format!("bench-created-{i}"), body.clone())
                        .await?;
                }
            }));
        }
        for h in handles {
            h.await??;
        }
        site.settle(false, SETTLE_LIMIT).await?;
        let took = start.elapsed();
        pool.stop().await;
        let state = site.check(n).await?;
        Ok::<_, BenchError>(Import { took, state })
    }
    .await;
    db.discard(server).await?;
    r
}

/// The listing alone: every search page of the backfill's query, through the Jira client,
/// nothing stored (what the fake and HTTP cost per run).
async fn listing_only(n: u64) -> Result<Duration, BenchError> {
    let jira = seeded_jira(n).await?;
    let client = ordonis_jira::JiraClient::new(
        reqwest::Client::new(),
        &jira.base_url(),
        &ordonis_core::ApiAuth::Basic {
            email: "bench@example.com".into(),
            api_token: "unused".into(),
        },
    )?;
    let start = Instant::now();
    let mut req = ordonis_jira::SearchRequest::new("(project = HO) ORDER BY updated ASC");
    req.max_results = Some(100);
    let mut seen = 0;
    loop {
        let page = client.search_jql(&req).await?;
        seen += page.issues.len();
        match page.next_page_token {
            Some(t) if page.is_last != Some(true) => req.next_page_token = Some(t),
            _ => break,
        }
    }
    if seen as u64 != n {
        return Err(format!("the listing saw {seen} of {n} issues").into());
    }
    Ok(start.elapsed())
}

async fn run_backfill(
    a: &Args,
    server: &PgConnectOptions,
    workers: &[usize],
    senders: usize,
) -> Result<(), BenchError> {
    let mut table = Table::new(&[
        "store",
        "workers",
        "issues",
        "backfill s",
        "backfill issues/s",
        "webhooks s",
        "webhook issues/s",
        "backfill ÷ webhooks",
        "final state (backfill)",
    ]);
    let listing = listing_only(a.n).await?;
    eprintln!("listing alone: {} issues in {listing:?}", a.n);
    for kind in kinds(a) {
        for &w in workers {
            // The baseline first, then the backfill, each on a fresh database.
            let hook = webhooks_once(kind, server, a.n, w, senders).await?;
            let hook_rate = a.n as f64 / hook.took.as_secs_f64();
            eprintln!(
                "{kind:<10} w={w} webhooks {:?} ({hook_rate:.0}/s): {}",
                hook.took, hook.state
            );
            let back = backfill_once(kind, server, a.n, w).await?;
            let back_rate = a.n as f64 / back.took.as_secs_f64();
            eprintln!(
                "{kind:<10} w={w} backfill {:?} ({back_rate:.0}/s): {}",
                back.took, back.state
            );
            table.row(vec![
                kind.to_owned(),
                w.to_string(),
                a.n.to_string(),
                format!("{:.1}", back.took.as_secs_f64()),
                rate(back_rate),
                format!("{:.1}", hook.took.as_secs_f64()),
                rate(hook_rate),
                ratio(back_rate, Some(hook_rate)),
                back.state,
            ]);
        }
    }
    let body = format!(
        "## Repair loop: backfill\n\n\
         Measured {date} on {machine}; the machine was shared with other sessions compiling, \
         so absolute numbers are noisy — each row carries its own same-run baseline.\n\n\
         Command: `cargo run --release -p ordonis-benches --bin repair -- backfill --n {n}`\n\n\
         A FakeJira (real HTTP on loopback, in the benchmark's process) holds N issues in \
         project HO (summary, status, priority; no description), last updated a week ago. \
         **Backfill**: an engine (JiraProvider, the store under test, fresh database) gets a \
         Jira integration with scope `{{\"jql\": \"project = HO\"}}`; its workers (batch 32, \
         concurrency 8, one listing page of 100 per batch beside the inbox) run until the \
         sync job's backfill is `done` and no inbox row is pending or in flight. \
         **Webhooks** (baseline, same run, fresh database): the same N issues as the \
         `jira:issue_created` webhooks the fake sends, signed and handed to `Engine::ingest` \
         by {senders} concurrent senders while the same workers run, timed from the first \
         delivery to the drained inbox. issues/s = N ÷ wall time; after each run the store \
         holds N tasks with their titles, each mapping leads back to its task, and the \
         ledger is gapless with at least one entry per task. The listing alone (all \
         {pages} search pages through `JiraClient`, nothing stored) took {listing:.2} s.\n\n{}\n",
        table.markdown(),
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(pg_version(server).await.as_deref()),
        n = a.n,
        pages = a.n.div_ceil(100),
        listing = listing.as_secs_f64(),
    );
    println!("{body}");
    write_section(&a.out, "repair-backfill", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}

/// One repair sample.
struct Sample {
    /// Edit → the store's task shows it.
    repair: Duration,
    /// Edit → the start of the run that found it (0 when the edit landed inside that run
    /// before its search).
    wait: Duration,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The repair figures of one store.
struct RepairRun {
    samples: Vec<Sample>,
    /// Mean of (gap between consecutive run starts − interval): the idle poll and the
    /// step's own time, which stretch each cycle.
    cycle_overhead: Duration,
    /// Mean backfill wall time of the setup.
    backfill: Duration,
}

#[allow(clippy::too_many_arguments)]
async fn repair_once(
    kind: &str,
    server: &PgConnectOptions,
    n: u64,
    k: usize,
    interval_s: u64,
    lag_ms: u64,
    workers: usize,
    rng: &mut Rng,
) -> Result<RepairRun, BenchError> {
    let jira = seeded_jira(n).await?;
    jira.set_index_lag(Duration::from_millis(lag_ms));
    let db = fresh(kind, server).await?;
    let r = async {
        let start = Instant::now();
        let site = Arc::new(Site::new(db.store(), &jira, true, interval_s).await?);
        let pool = Workers::start(&site.engine, workers);
        site.settle(true, SETTLE_LIMIT).await?;
        let backfill = start.elapsed();
        jira.set_webhooks_enabled(false);
        let tasks = site.task_ids().await?;
        // The run starts, recorded by a poller of the sync job (the job keeps only the last).
        let starts = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        let stop = tokio_util::sync::CancellationToken::new();
        let poller = {
            let (site, starts, stop) = (site.clone(), starts.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    if let Ok(Some(j)) = site.store.sync_job(site.integration).await
                        && let Some(t) = j.status.reconcile.last_run_at
                    {
                        starts
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(t);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let interval = Duration::from_secs(interval_s);
        let mut samples = Vec::with_capacity(k);
        for s in 0..k {
            tokio::time::sleep(interval.mul_f64(rng.unit())).await;
            let i = rng.next() % n;
            let task = *tasks
                .get(&ordonis_benches::repair_site::issue_id(i))
                .ok_or("a seeded issue without a task")?;
            let edited_at = time::OffsetDateTime::now_utc();
            let t0 = Instant::now();
            edit_silently(&jira, i, s)?;
            let want = edited_title(s);
            let deadline = t0 + interval * 3 + Duration::from_secs(30);
            while title_of(&site.store, task).await? != want {
                if Instant::now() > deadline {
                    return Err(format!("sample {s}: not repaired in {:?}", t0.elapsed()).into());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let repair = t0.elapsed();
            let run_start = site
                .store
                .sync_job(site.integration)
                .await?
                .and_then(|j| j.status.reconcile.last_run_at)
                .ok_or("no reconcile run recorded")?;
            let wait = (run_start - edited_at).max(time::Duration::ZERO);
            samples.push(Sample {
                repair,
                wait: Duration::try_from(wait).unwrap_or_default(),
            });
            eprintln!(
                "{kind:<10} sample {s:>3}: issue {i:>5} repaired in {repair:?} (wait {:?})",
                samples[s].wait
            );
        }
        stop.cancel();
        let _ = poller.await;
        pool.stop().await;
        let starts: Vec<time::OffsetDateTime> = starts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .copied()
            .collect();
        // Gaps between run starts the poller saw in a row (one it missed makes a gap of
        // two intervals: skipped).
        let gaps: Vec<f64> = starts
            .windows(2)
            .map(|w| (w[1] - w[0]).as_seconds_f64() - interval.as_secs_f64())
            .filter(|o| *o >= 0.0 && *o < interval.as_secs_f64() / 2.0)
            .collect();
        let cycle_overhead = Duration::from_secs_f64(if gaps.is_empty() {
            0.0
        } else {
            gaps.iter().sum::<f64>() / gaps.len() as f64
        });
        Ok::<_, BenchError>(RepairRun {
            samples,
            cycle_overhead,
            backfill,
        })
    }
    .await;
    db.discard(server).await?;
    r
}

/// Repair time at interval `t`, by simulation from the measurement: the edit lands at a
/// uniform moment of a cycle of `t + overhead`, waits for the next run's start, then takes
/// one of the measured after-start times (repair − wait). Returns (p50, p99, max) seconds.
fn model(run: &RepairRun, t: f64, rng: &mut Rng) -> (f64, f64, f64) {
    let after: Vec<f64> = run
        .samples
        .iter()
        .map(|s| (s.repair.as_secs_f64() - s.wait.as_secs_f64()).max(0.0))
        .collect();
    let cycle = t + run.cycle_overhead.as_secs_f64();
    let mut draws: Vec<f64> = (0..200_000)
        .map(|_| {
            let pick = after[(rng.next() % after.len() as u64) as usize];
            rng.unit() * cycle + pick
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let worst = cycle + after.iter().copied().fold(0.0, f64::max);
    (percentile(&draws, 0.5), percentile(&draws, 0.99), worst)
}

#[allow(clippy::too_many_arguments)]
async fn run_repair(
    a: &Args,
    server: &PgConnectOptions,
    k: usize,
    interval_s: u64,
    model_interval_s: u64,
    lag_ms: u64,
    workers: usize,
    seed: u64,
) -> Result<(), BenchError> {
    if k == 0 || a.n == 0 {
        return Err("--k and --n must be at least 1".into());
    }
    let mut rng = Rng(seed.max(1));
    let mut measured = Table::new(&[
        "store",
        "interval s",
        "samples",
        "repair p50 s",
        "repair p99 s",
        "repair max s",
        "wait p50 s",
        "run start → stored p50 ms",
        "run start → stored p99 ms",
        "cycle overhead ms",
        "model at this interval p50 / p99 s",
    ]);
    let mut modeled = Table::new(&[
        "store",
        "interval s",
        "repair p50 s (model)",
        "repair p99 s (model)",
        "worst case s (model)",
        "bound (2 intervals) s",
    ]);
    for kind in kinds(a) {
        let run = repair_once(kind, server, a.n, k, interval_s, lag_ms, workers, &mut rng).await?;
        let mut repair: Vec<f64> = run.samples.iter().map(|s| s.repair.as_secs_f64()).collect();
        repair.sort_by(f64::total_cmp);
        let mut wait: Vec<f64> = run.samples.iter().map(|s| s.wait.as_secs_f64()).collect();
        wait.sort_by(f64::total_cmp);
        let mut after: Vec<f64> = run
            .samples
            .iter()
            .map(|s| (s.repair.as_secs_f64() - s.wait.as_secs_f64()).max(0.0) * 1e3)
            .collect();
        after.sort_by(f64::total_cmp);
        let (self_p50, self_p99, _) = model(&run, interval_s as f64, &mut rng);
        eprintln!(
            "{kind:<10} backfill setup {:?}; repair p50 {:.2} s p99 {:.2} s",
            run.backfill,
            percentile(&repair, 0.5),
            percentile(&repair, 0.99)
        );
        measured.row(vec![
            kind.to_owned(),
            interval_s.to_string(),
            run.samples.len().to_string(),
            format!("{:.2}", percentile(&repair, 0.5)),
            format!("{:.2}", percentile(&repair, 0.99)),
            format!("{:.2}", percentile(&repair, 1.0)),
            format!("{:.2}", percentile(&wait, 0.5)),
            format!("{:.0}", percentile(&after, 0.5)),
            format!("{:.0}", percentile(&after, 0.99)),
            format!("{:.0}", run.cycle_overhead.as_secs_f64() * 1e3),
            format!("{self_p50:.2} / {self_p99:.2}"),
        ]);
        let (p50, p99, worst) = model(&run, model_interval_s as f64, &mut rng);
        modeled.row(vec![
            kind.to_owned(),
            model_interval_s.to_string(),
            format!("{p50:.1}"),
            format!("{p99:.1}"),
            format!("{worst:.1}"),
            (2 * model_interval_s).to_string(),
        ]);
    }
    let body = format!(
        "## Repair loop: time to repair a dropped delivery\n\n\
         Measured {date} on {machine}; the machine was shared with other sessions compiling.\n\n\
         Command: `cargo run --release -p ordonis-benches --bin repair -- repair --k {k} \
         --interval-s {interval_s} --index-lag-ms {lag_ms}`\n\n\
         Per store: a fresh database, a FakeJira with N = {n} issues, a Jira integration \
         (scope `project = HO`, `reconcile_every_s` = {interval_s}) backfilled by {workers} \
         workers (200 ms idle poll, as the server runs them), then webhooks switched off. \
         {k} times: sleep a uniform fraction of the interval, edit a random issue's summary \
         silently (no webhook; `updated` = now), and poll the store's task every 5 ms until \
         it shows the new title. Search-index lag of the fake: {lag_ms} ms; the Jira \
         listing's overlap is its default 120 s (the runs re-read the issues edited in the \
         last 2–3 minutes, which the (object, version) dedupe makes no-ops). *wait* = edit → \
         the start of the run that found it; *run start → stored* = the rest (search, inbox \
         insert, processing, commit, 5 ms poll).\n\n\
         **Measured** at a {interval_s} s interval:\n\n{}\n\
         **Modeled** at the default interval (not measured: waiting {model_interval_s} s per \
         sample is impractical): an edit lands at a uniform moment of a cycle of \
         interval + the measured cycle overhead, waits for the next run's start, then takes \
         a measured *run start → stored* time (200,000 draws). The last column of the \
         measured table applies the same model at the measured interval, as a check of the \
         model against the measurement. With an index lag L > 0, an edit made less than L \
         before a run's search is found one run later (probability ≈ L ÷ interval).\n\n{}\n",
        measured.markdown(),
        modeled.markdown(),
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(pg_version(server).await.as_deref()),
        n = a.n,
    );
    println!("{body}");
    write_section(&a.out, "repair-latency", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), BenchError> {
    let a = <Args as clap::Parser>::parse();
    let server = PgConnectOptions::from_str(&server_url(&a))?;
    match &a.what {
        None => {
            eprintln!("repair: give `backfill` or `repair` (see --help); nothing run");
            Ok(())
        }
        Some(What::Backfill { workers, senders }) => {
            run_backfill(&a, &server, workers, *senders).await
        }
        Some(What::Repair {
            k,
            interval_s,
            model_interval_s,
            index_lag_ms,
            workers,
            seed,
        }) => {
            run_repair(
                &a,
                &server,
                *k,
                (*interval_s).max(1),
                *model_interval_s,
                *index_lag_ms,
                *workers,
                *seed,
            )
            .await
        }
    }
}
