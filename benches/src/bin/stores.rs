//! Store benchmarks: the two hot paths of each SQL store at 1, 4 and 16 concurrent writers,
//! beside the raw-SQL baseline (pgbench, same server, same run), and VERA ledger appends on
//! PostgreSQL into one log and across 16 logs.
//!
//! ```text
//! cargo run --release -p ordonis-benches --bin stores            # ~4 minutes
//! cargo run --release -p ordonis-benches --bin stores -- --secs 2 --writers 1,4
//! ```
//!
//! - **ingest**: `insert_events` of one ~2 KB event per call, dedupe on (new keys), like the
//!   webhook handler; baseline `ingest_dedupe.sql`.
//! - **process**: what a worker does per event at store level: `claim_events` (batches of 8,
//!   under a lease), read the mapping and the task, then `commit` one unit of work (task
//!   update with its revision check, two ledger entries, the row's completion); baseline
//!   `claim_one.sql` (claim + task upsert + ledger row + done). Both over 10,000 seeded tasks.
//!
//! PostgreSQL comes from `ORDONIS_BENCH_DATABASE_URL` (else `ORDONIS_TEST_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`); each run creates and drops its own databases.
//! The table is printed and written to the `stores` section of `BENCHMARKS.md`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ordonis_benches::fresh::Fresh;
use ordonis_benches::payload::{JIRA_BODY, sha256_hex};
use ordonis_benches::pgbench::{BETWEEN_RUNS, Baseline, BenchError, backlog_for};
use ordonis_benches::report::{Table, machine, rate, ratio, write_section};
use ordonis_core::StoreExt;
use ordonis_core::store::{
    ClaimRequest, Completion, IntegrationRecord, NewInboxEvent, Store, TaskWrite, UnitOfWork,
};
use ordonis_core::{EventId, ExternalRef, JobState, Task, WorkspaceId};
use ordonis_testkit::store_suite::{draft, integration};
use sqlx::postgres::PgConnectOptions;

/// The same pooled allocator as the server's binaries, so that the benchmark's own client
/// work does not take the machine's cores from the server in glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tasks the process runs spread their events over (as `prefill.sql` does).
const OBJECTS: usize = 10_000;

/// Store hot paths and VERA appends beside a same-run raw-SQL baseline.
#[derive(clap::Parser, Debug)]
#[command(version)]
struct Args {
    /// Seconds per cell.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Writer counts, one row each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16])]
    writers: Vec<usize>,
    /// Units per batch in the batched process and append runs.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Skip PostgreSQL.
    #[arg(long)]
    no_pg: bool,
    /// Skip SQLite.
    #[arg(long)]
    no_sqlite: bool,
    /// The Markdown file whose `stores` section is rewritten.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    out: PathBuf,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn server_url() -> String {
    std::env::var("ORDONIS_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("ORDONIS_TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn ws(name: &str) -> Result<WorkspaceId, BenchError> {
    Ok(WorkspaceId::new(format!(
        "bench-{name}-{}",
        uuid::Uuid::now_v7()
    ))?)
}

fn inbox_event(
    rec: &IntegrationRecord,
    body: &Bytes,
    sha: &str,
    delivery: String,
) -> NewInboxEvent {
    let n = delivery
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    NewInboxEvent {
        id: EventId::new(),
        workspace_id: rec.workspace_id.clone(),
        integration_id: rec.id,
        dedupe_key: delivery.clone(),
        object_key: Some(format!("PROJ-{}", 1 + n % OBJECTS)),
        delivery_id: Some(delivery),
        headers: vec![("x-atlassian-webhook-identifier".into(), "bench".into())],
        body: body.clone(),
        body_sha256: sha.to_owned(),
        auth: "hmac-sha256".into(),
        state: JobState::Pending,
        note: None,
    }
}

/// Events per second of `writers` tasks each inserting one event per call for `secs`.
async fn ingest(store: Arc<dyn Store>, writers: usize, secs: u64) -> Result<f64, BenchError> {
    let rec = integration(&*store, &ws("ingest")?).await;
    let body = Bytes::from_static(JIRA_BODY.as_bytes());
    let sha = sha256_hex(&body);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for w in 0..writers {
        let (store, rec, body, sha) = (store.clone(), rec.clone(), body.clone(), sha.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let ev = inbox_event(&rec, &body, &sha, format!("d-{w}-{n}"));
                store.insert_events(std::slice::from_ref(&ev)).await?;
                n += 1;
            }
            Ok::<u64, ordonis_core::StoreError>(n)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Seeds the 10,000 tasks (with their mappings) the process runs update.
async fn seed_tasks(store: &Arc<dyn Store>, rec: &IntegrationRecord) -> Result<(), BenchError> {
    let mut handles = Vec::new();
    for part in 0..8usize {
        let (store, rec) = (store.clone(), rec.clone());
        handles.push(tokio::spawn(async move {
            for i in (1 + part..=OBJECTS).step_by(8) {
                let mut task = Task::new(rec.workspace_id.clone());
                task.fields.title = "seed".into();
                task.revision = 1;
                let mut uow = UnitOfWork::new(rec.workspace_id.clone());
                uow.mapping = Some((external(&rec, &format!("PROJ-{i}")), task.id));
                uow.task = Some(TaskWrite {
                    task,
                    expected_revision: None,
                });
                store.commit(uow).await?;
            }
            Ok::<(), ordonis_core::StoreError>(())
        }));
    }
    for h in handles {
        h.await??;
    }
    Ok(())
}

fn external(rec: &IntegrationRecord, key: &str) -> ExternalRef {
    ExternalRef {
        integration_id: rec.id,
        provider: rec.provider.clone(),
        key: ordonis_core::ObjectKey::new(key, "issue"),
        url: None,
    }
}

/// Fills the inbox with `n` pending events spread over the seeded tasks.
async fn backlog(
    store: &Arc<dyn Store>,
    rec: &IntegrationRecord,
    n: u64,
) -> Result<(), BenchError> {
    let body = Bytes::from_static(JIRA_BODY.as_bytes());
    let sha = sha256_hex(&body);
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut i = 0;
    while i < n {
        let chunk: Vec<NewInboxEvent> = (i..n.min(i + 500))
            .map(|k| inbox_event(rec, &body, &sha, format!("pre-{run}-{k}")))
            .collect();
        store.insert_events(&chunk).await?;
        i += 500;
    }
    Ok(())
}

/// Events per second of `writers` workers processing the backlog for `secs`.
async fn process(
    store: Arc<dyn Store>,
    rec: &IntegrationRecord,
    writers: usize,
    secs: u64,
    batch: Option<usize>,
) -> Result<f64, BenchError> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for w in 0..writers {
        let (store, rec) = (store.clone(), rec.clone());
        handles.push(tokio::spawn(async move {
            let req = ClaimRequest {
                worker: format!("bench-{w}"),
                limit: batch.unwrap_or(8),
                lease: Duration::from_secs(60),
            };
            let mut done = 0u64;
            while Instant::now() < deadline {
                let claimed = store.claim_events(&req).await?;
                if claimed.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let mut units = Vec::with_capacity(claimed.len());
                for ev in claimed {
                    let (Some(key), Some(lease)) = (ev.object_key.as_deref(), ev.lease.clone())
                    else {
                        continue;
                    };
                    let id = store
                        .find_mapping(rec.id, &ordonis_core::ObjectKey::new(key, "issue"))
                        .await?
                        .ok_or("unmapped object")?;
                    let current = store
                        .workspace_task(&rec.workspace_id, id)
                        .await?
                        .ok_or("missing task")?;
                    let mut next = current.clone();
                    next.revision += 1;
                    next.fields.title = format!("{key} after {}", ev.id);
                    next.updated_at = time::OffsetDateTime::now_utc();
                    let mut uow = UnitOfWork::new(rec.workspace_id.clone());
                    for n in 0..2 {
                        let mut d = draft(&next, n);
                        d.cause.id = ev.id.to_string();
                        uow.ledger.push(d);
                    }
                    uow.task = Some(TaskWrite {
                        task: next,
                        expected_revision: Some(current.revision),
                    });
                    uow.completion = Completion::Done { lease, note: None };
                    if batch.is_some() {
                        units.push(uow);
                    } else {
                        store.commit(uow).await?;
                        done += 1;
                    }
                }
                if !units.is_empty() {
                    for r in store.commit_batch(units).await? {
                        r?;
                        done += 1;
                    }
                }
            }
            Ok::<u64, BenchError>(done)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// VERA entries per second on PostgreSQL: 16 writers appending one entry per unit of work,
/// into one workspace's log or each into its own.
async fn ledger_appends(
    server: &PgConnectOptions,
    logs: usize,
    secs: u64,
    batch: Option<usize>,
) -> Result<f64, BenchError> {
    const WRITERS: usize = 16;
    let fresh = Fresh::pg(server, Some(WRITERS as u32 + 2)).await?;
    let store = fresh.store();
    let mut tasks = Vec::new();
    for l in 0..logs {
        let w = ws(&format!("log{l}"))?;
        let mut t = Task::new(w.clone());
        t.revision = 1;
        tasks.push(t);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let (store, task) = (store.clone(), tasks[w % logs].clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let units: Vec<UnitOfWork> = (0..batch.unwrap_or(1))
                    .map(|k| {
                        let mut uow = UnitOfWork::new(task.workspace_id.clone());
                        uow.ledger.push(draft(&task, n as usize + k));
                        uow
                    })
                    .collect();
                if batch.is_some() {
                    for r in store.commit_batch(units).await? {
                        r?;
                        n += 1;
                    }
                } else {
                    for uow in units {
                        store.commit(uow).await?;
                        n += 1;
                    }
                }
            }
            Ok::<u64, ordonis_core::StoreError>(n)
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await??;
    }
    let per_sec = total as f64 / start.elapsed().as_secs_f64();
    // gapless under concurrency, or the figure means nothing
    let mut sum = 0;
    for t in &tasks {
        sum += store.ledger_size(&t.workspace_id).await?;
    }
    if sum != total {
        return Err(format!("ledger holds {sum} entries, {total} were appended").into());
    }
    fresh.discard(server).await?;
    Ok(per_sec)
}

/// One process cell on a fresh store: seeded tasks, a backlog sized for the expected rate
/// (batches drain faster), then [`process`].
async fn process_cell(
    kind: &str,
    server: &PgConnectOptions,
    writers: usize,
    secs: u64,
    batch: Option<usize>,
) -> Result<f64, BenchError> {
    let fresh = match kind {
        "PostgreSQL" => Fresh::pg(server, Some(writers as u32 + 2)).await?,
        _ => Fresh::sqlite().await?,
    };
    let store = fresh.store();
    let rec = integration(&*store, &ws("process")?).await;
    seed_tasks(&store, &rec).await?;
    let expected_rate = if batch.is_some() { 20_000.0 } else { 5_000.0 };
    backlog(&store, &rec, backlog_for(secs, expected_rate)).await?;
    let per_sec = process(store, &rec, writers, secs, batch).await?;
    fresh.discard(server).await?;
    Ok(per_sec)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), BenchError> {
    let a = <Args as clap::Parser>::parse();
    let url = server_url();
    let server = PgConnectOptions::from_str(&url)?;
    let secs = a.secs;
    let mut stores = Vec::new();
    if !a.no_pg {
        stores.push("PostgreSQL");
    }
    if !a.no_sqlite {
        stores.push("SQLite");
    }

    let baseline = Baseline::create(&url).await?;
    let version = baseline.server_version().await.ok();
    let mut raw_ingest = Vec::new();
    let mut raw_process = Vec::new();
    for &w in &a.writers {
        let r = baseline.ingest(w, secs).await?;
        eprintln!("raw ingest   c={w:<2} {:>8.0}/s", r.tps);
        raw_ingest.push(r.tps);
        tokio::time::sleep(BETWEEN_RUNS).await;
        let r = baseline
            .process(w, secs, backlog_for(secs, 7_000.0))
            .await?;
        eprintln!("raw process  c={w:<2} {:>8.0}/s", r.tps);
        raw_process.push(r.tps);
        tokio::time::sleep(BETWEEN_RUNS).await;
    }
    baseline.drop_db().await?;

    let mut table = Table::new(&[
        "store",
        "writers",
        "ingest/s",
        "raw ingest/s",
        "ingest ratio",
        "process/s",
        "batched process/s",
        "raw process/s",
        "process ratio",
        "batched ratio",
    ]);
    for kind in stores {
        for (i, &w) in a.writers.iter().enumerate() {
            let fresh = match kind {
                "PostgreSQL" => Fresh::pg(&server, Some(w as u32 + 2)).await?,
                _ => Fresh::sqlite().await?,
            };
            let ing = ingest(fresh.store(), w, secs).await?;
            fresh.discard(&server).await?;
            eprintln!("{kind:<10} ingest  w={w:<2} {ing:>8.0}/s");
            tokio::time::sleep(BETWEEN_RUNS).await;

            let pro = process_cell(kind, &server, w, secs, None).await?;
            eprintln!("{kind:<10} process w={w:<2} {pro:>8.0}/s");
            tokio::time::sleep(BETWEEN_RUNS).await;

            let bat = process_cell(kind, &server, w, secs, Some(a.batch)).await?;
            eprintln!("{kind:<10} batched w={w:<2} {bat:>8.0}/s");
            tokio::time::sleep(BETWEEN_RUNS).await;

            // The raw baseline is PostgreSQL's; for SQLite it says how far the embedded store
            // is from a server database doing the same work.
            table.row(vec![
                kind.to_owned(),
                w.to_string(),
                rate(ing),
                rate(raw_ingest[i]),
                ratio(ing, Some(raw_ingest[i])),
                rate(pro),
                rate(bat),
                rate(raw_process[i]),
                ratio(pro, Some(raw_process[i])),
                ratio(bat, Some(raw_process[i])),
            ]);
        }
    }

    let mut ledger = Table::new(&[
        "VERA appends on PostgreSQL (16 writers)",
        "entries/s",
        "goal",
    ]);
    if !a.no_pg {
        let one = ledger_appends(&server, 1, secs, None).await?;
        eprintln!("ledger appends, one log   {one:>8.0}/s");
        let one_b = ledger_appends(&server, 1, secs, Some(a.batch)).await?;
        eprintln!(
            "ledger appends, one log, batches of {}   {one_b:>8.0}/s",
            a.batch
        );
        let many = ledger_appends(&server, 16, secs, None).await?;
        eprintln!("ledger appends, 16 logs   {many:>8.0}/s");
        ledger.row(vec![
            "one log, a commit per entry (baseline)".into(),
            rate(one),
            "—".into(),
        ]);
        ledger.row(vec![
            format!(
                "one log, `commit_batch` of {} ({})",
                a.batch,
                ratio(one_b, Some(one))
            ),
            rate(one_b),
            "≥ 5,000/s".into(),
        ]);
        ledger.row(vec![
            "16 logs, a commit per entry".into(),
            rate(many),
            "≥ 5,000/s".into(),
        ]);
    }

    let body = format!(
        "## Stores: ingest and process beside raw SQL\n\n\
         Measured {date} on {machine}; {secs} s per cell; synchronous_commit on (defaults).\n\n\
         Command: `cargo run --release -p ordonis-benches --bin stores` (PostgreSQL from \
         `ORDONIS_BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`).\n\n\
         - **ingest**: one ~2 KB event per `insert_events` call, dedupe on; raw = pgbench \
         `ingest_dedupe.sql` at the same number of clients. Goal ≥ 0.9×.\n\
         - **process**: claim (batches of 8, leased), read mapping and task, commit task update \
         + 2 ledger entries + completion; raw = pgbench `claim_one.sql` (claim + upsert + 1 \
         ledger row + done). Goal ≥ 0.7×.\n\
         - **batched process**: the same work, claimed {batch} at a time and committed with \
         one `commit_batch` per claim (one transaction, a savepoint per unit, one ledger-head \
         update).\n\
         - The raw column is always PostgreSQL's, so the SQLite rows compare the embedded \
         store with a server database doing the same work.\n\n{}\n{}",
        table.markdown(),
        ledger.markdown(),
        batch = a.batch,
        date = time::OffsetDateTime::now_utc().date(),
        machine = machine(version.as_deref()),
    );
    println!("{body}");
    write_section(&a.out, "stores", &body)?;
    eprintln!("written to {}", a.out.display());
    Ok(())
}
