//! PostgreSQL stopped and started while workers run: they reconnect and finish, every event's
//! effect lands exactly once, nothing is left behind.
//!
//! The shared server is not ours to stop, so this test runs a private cluster (`initdb` into a
//! temporary directory, its own port) with the server binaries of the installed PostgreSQL.
//! Without those binaries it is skipped, unless `ORDONIS_REQUIRE_PG=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordonis_core::store::StoreExt;
use ordonis_core::{FieldPatch, FieldPolicy, FieldValue, JobState, Ledger, Worker, WorkerConfig};
use ordonis_store_postgres::PostgresStore;
use ordonis_testkit::fake::FakeProvider;
use ordonis_testkit::harness::{SECRET, engine_with_integration};
use sqlx::postgres::PgConnectOptions;
use tokio_util::sync::CancellationToken;

/// How to run a private cluster's server binaries.
#[derive(Clone)]
struct Ctl {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// A throwaway PostgreSQL cluster, stopped and removed on drop.
struct Cluster(Ctl);

impl Cluster {
    fn start() -> Option<Self> {
        let required = std::env::var("ORDONIS_REQUIRE_PG").as_deref() == Ok("1");
        let Some(bin) = server_bin_dir() else {
            assert!(
                !required,
                "ORDONIS_REQUIRE_PG=1 but no PostgreSQL server binaries (initdb, pg_ctl) were found under /usr/lib/postgresql"
            );
            eprintln!("skipped: no PostgreSQL server binaries for a private cluster");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("ordonis-pg-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Ctl { bin, dir, port };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(&cluster.dir));
        }
        let data = cluster.dir.join("data");
        run(cluster
            .pg("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data));
        cluster.ctl("start");
        Some(Self(cluster))
    }
}

impl Ctl {
    /// A command running one of the server binaries (as postgres when we are root).
    fn pg(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "-l"])
            .arg(self.dir.join("log"))
            .args(["-o", &opts, action]));
    }

    fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username("postgres")
            .database("postgres")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .0
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.0.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn server_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("pg_ctl").exists() && d.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|d| version_of(d));
    dirs.pop()
}

fn version_of(bin: &Path) -> u32 {
    bin.parent()
        .and_then(|v| v.file_name())
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn store(options: &PgConnectOptions, max: u32) -> PostgresStore {
    let pool = ordonis_store_postgres::pool_options()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options.clone())
        .await
        .unwrap();
    ordonis_store_postgres::from_pool(pool)
}

async fn settled(store: &PostgresStore) -> Result<bool, ordonis_core::StoreError> {
    let counts = store.event_counts().await?;
    Ok(counts
        .iter()
        .all(|(s, n)| *n == 0 || !matches!(s, JobState::Pending | JobState::Processing)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_reconnect_after_a_server_restart_and_finish() {
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::start).await.unwrap() else {
        return;
    };
    let options = cluster.0.options();
    // `setup` observes; the workers share the engine's own pool, as in one worker process.
    let setup = store(&options, 2).await;
    setup.dialect().migrate().await.unwrap();
    let fake = Arc::new(FakeProvider::new(SECRET));
    let (engine, integration, ws) = engine_with_integration(
        Arc::new(store(&options, 8).await),
        &FieldPolicy::default(),
        fake.clone(),
    )
    .await;

    // 1,500 webhooks over 300 objects: each created, then retitled twice.
    for round in 0..3 {
        for i in 0..300 {
            let object = format!("OBJ-{i}");
            let title = FieldValue::Title(format!("{object} v{round}"));
            if round == 0 {
                fake.remote_create(&object, &FieldPatch::new().with(title), "alice");
            } else {
                fake.remote_edit(&object, title, "alice");
            }
        }
    }
    let deliveries = fake.take_deliveries();
    let sent = deliveries.len();
    for d in deliveries {
        let resp = engine
            .ingest(integration, &http::Method::POST, &d.headers, d.body)
            .await;
        assert_eq!(resp.status, 200, "{resp:?}");
    }

    // Four workers with short leases, so rows cut off by the restart are rescued quickly.
    let shutdown = CancellationToken::new();
    let mut workers = Vec::new();
    for n in 0..4 {
        let worker = Worker::new(
            engine.clone(),
            WorkerConfig {
                id: format!("restart-w{n}"),
                batch_size: 16,
                concurrency: 4,
                lease: Duration::from_secs(2),
                idle_poll: Duration::from_millis(20),
            },
        );
        let token = shutdown.clone();
        workers.push(tokio::spawn(async move { worker.run(token).await }));
    }

    // Stop the server once the workers are well under way, keep it down a moment, restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = setup
            .event_counts()
            .await
            .unwrap()
            .into_iter()
            .find(|(s, _)| *s == JobState::Done)
            .map_or(0, |(_, n)| n);
        if done >= 100 {
            break;
        }
        assert!(Instant::now() < deadline, "workers made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !settled(&setup).await.unwrap(),
        "the workers finished before the restart: the test proves nothing"
    );
    let ctl = cluster.0.clone();
    tokio::task::spawn_blocking(move || {
        ctl.ctl("stop");
        std::thread::sleep(Duration::from_secs(2));
        ctl.ctl("start");
    })
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        // The setup pool reconnects too; errors just mean "not yet".
        if matches!(settled(&setup).await, Ok(true)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workers did not finish after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    for w in workers {
        w.await.unwrap();
    }

    let counts = setup.event_counts().await.unwrap();
    assert_eq!(
        counts,
        vec![(JobState::Done, sent as u64)],
        "all done, none dead"
    );
    let tasks = setup.all_tasks(&ws).await.unwrap();
    assert_eq!(tasks.len(), 300, "one task per object");
    for t in &tasks {
        let object = t
            .external
            .first()
            .map(|r| r.key.external_id.clone())
            .unwrap_or_default();
        assert_eq!(
            t.fields.title,
            format!("{object} v2"),
            "last write wins for {object}"
        );
    }
    // one ledger entry per applied change, gapless
    let size = setup.ledger_size(&ws).await.unwrap();
    let entries = setup
        .ledger_entries(&ws, 0, size as usize + 1)
        .await
        .unwrap();
    assert_eq!(entries.len() as u64, size);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.idx, i as u64, "gapless");
    }
    setup.dialect().close().await;
    drop(cluster);
}
