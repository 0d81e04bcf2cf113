//! SQLite-specific tests beyond the conformance suite: a writer process killed mid-batch,
//! several workers draining one file, the append-only ledger, re-opening and re-migrating.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ordonis_core::store::{
    ClaimRequest, Completion, InsertOutcome, JobState, NewInboxEvent, Store, StoreExt, TaskWrite,
    UnitOfWork,
};
use ordonis_core::{ExternalRef, Ledger, ProviderKind, StoreError, Task, WorkspaceId};
use ordonis_store_sqlite::SqliteStore;
use ordonis_testkit::store_suite::{draft, event, integration};

const CHILD_ENV: &str = "ORDONIS_SQLITE_KILL_CHILD_DB";
const CHILD_WS_ENV: &str = "ORDONIS_SQLITE_KILL_CHILD_WS";

fn temp_db(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ordonis-{name}-{}.db", uuid::Uuid::now_v7()))
}

/// A plain pool on the test's database file, for checks below the `Store` API.
async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

fn claim(worker: &str, limit: usize, lease: Duration) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_owned(),
        limit,
        lease,
    }
}

/// One event's unit of work: a new task, its mapping, two ledger entries, the completion.
fn unit_for(ws: &WorkspaceId, ev: &ordonis_core::InboxEvent) -> UnitOfWork {
    let mut task = Task::new(ws.clone());
    task.revision = 1;
    task.fields.title = format!("from {}", ev.id);
    let ext = ExternalRef {
        integration_id: ev.integration_id,
        provider: ProviderKind::new("fake"),
        key: ordonis_core::ObjectKey::new(ev.object_key.clone().unwrap_or_default(), "issue"),
        url: None,
    };
    let mut uow = UnitOfWork::new(ws.clone());
    uow.task = Some(TaskWrite {
        task: task.clone(),
        expected_revision: None,
    });
    uow.mapping = Some((ext, task.id));
    let mut a = draft(&task, 1);
    a.cause.id = ev.id.to_string();
    let mut b = draft(&task, 2);
    b.cause.id = ev.id.to_string();
    uow.ledger = vec![a, b];
    uow.completion = Completion::Done {
        lease: ev.lease.clone().unwrap(),
        note: None,
    };
    uow
}

/// Run as a child process by `killed_writer_leaves_no_half_applied_unit_of_work`: processes
/// events forever until it is killed. A no-op when run normally.
#[tokio::test]
async fn child_writer() {
    let (Ok(path), Ok(ws)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_WS_ENV)) else {
        return;
    };
    let ws = WorkspaceId::new(ws).unwrap();
    let store = SqliteStore::connect(&path).await.unwrap();
    loop {
        let batch = store
            .claim_events(&claim("child", 10, Duration::from_secs(1)))
            .await
            .unwrap();
        for ev in &batch {
            store.commit(unit_for(&ws, ev)).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_leaves_no_half_applied_unit_of_work() {
    let path = temp_db("kill");
    let w = WorkspaceId::new(format!("kill-{}", uuid::Uuid::now_v7())).unwrap();
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    let rec = integration(&store, &w).await;
    let events: Vec<NewInboxEvent> = (0..3_000)
        .map(|i| event(&rec, &format!("k{i}"), Some(&format!("OBJ-{i}"))))
        .collect();
    for chunk in events.chunks(1000) {
        store.insert_events(chunk).await.unwrap();
    }
    store.dialect().close().await;

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_writer", "--exact", "--nocapture"])
        .env(CHILD_ENV, &path)
        .env(CHILD_WS_ENV, w.as_str())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it get going, then kill it (SIGKILL) in the middle of its work.
    let reader = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    let start = Instant::now();
    while reader.ledger_size(&w).await.unwrap_or(0) < 200 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(137)).await;
    child.kill().unwrap();
    let _ = child.wait();
    reader.dialect().close().await;

    // The file opens, is intact, and every unit of work is all there or not at all.
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&raw(&path).await)
        .await
        .unwrap();
    assert_eq!(ok, "ok");
    let done = store
        .events(
            &w,
            &ordonis_core::store::EventFilter {
                state: Some(JobState::Done),
                limit: 100_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!done.is_empty());
    assert!(done.len() < 3_000, "killed before it finished");
    let tasks = store.all_tasks(&w).await.unwrap();
    let size = store.ledger_size(&w).await.unwrap();
    assert_eq!(
        tasks.len(),
        done.len(),
        "a task for each completed event, no more"
    );
    assert_eq!(
        size,
        2 * done.len() as u64,
        "two entries per completed event"
    );
    let entries = store.ledger_entries(&w, 0, usize::MAX).await.unwrap();
    assert_eq!(entries.len() as u64, size);
    let done_ids: HashSet<String> = done.iter().map(|e| e.id.to_string()).collect();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.idx, i as u64);
        assert!(done_ids.contains(&e.record.cause.id));
    }

    // The killed writer's in-flight rows are processed again after their lease.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    loop {
        let batch = store
            .claim_events(&claim("after", 500, Duration::from_secs(60)))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        for ev in &batch {
            store.commit(unit_for(&w, ev)).await.unwrap();
        }
    }
    assert_eq!(
        store.event_counts().await.unwrap(),
        vec![(JobState::Done, 3_000)]
    );
    assert_eq!(store.ledger_size(&w).await.unwrap(), 6_000);
    store.dialect().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_workers_drain_a_file_exactly_once() {
    let path = temp_db("drain");
    let store = Arc::new(SqliteStore::connect(path.to_str().unwrap()).await.unwrap());
    let w = WorkspaceId::new(format!("drain-{}", uuid::Uuid::now_v7())).unwrap();
    let rec = integration(&*store, &w).await;
    let mut all: Vec<NewInboxEvent> = (0..2_000)
        .map(|i| event(&rec, &format!("d{i}"), Some(&format!("OBJ-{}", i % 50))))
        .collect();
    all.extend((0..500).map(|i| event(&rec, &format!("d{}", i * 3), None)));
    let mut dups = 0;
    for chunk in all.chunks(250) {
        dups += store
            .insert_events(chunk)
            .await
            .unwrap()
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Duplicate(_)))
            .count();
    }
    assert_eq!(dups, 500);
    let mut handles = Vec::new();
    for n in 0..4 {
        // separate stores: separate connections to the same file
        let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
        let w = w.clone();
        handles.push(tokio::spawn(async move {
            let me = format!("w{n}");
            let mut done = 0;
            loop {
                let batch = match store
                    .claim_events(&claim(&me, 16, Duration::from_secs(60)))
                    .await
                {
                    Ok(b) => b,
                    Err(StoreError::Unavailable { .. }) => continue,
                    Err(e) => panic!("claim: {e}"),
                };
                if batch.is_empty() {
                    return done;
                }
                for ev in &batch {
                    let task = Task::new(w.clone());
                    let mut d = draft(&task, 0);
                    d.cause.id = ev.id.to_string();
                    let mut uow = UnitOfWork::new(w.clone());
                    uow.ledger.push(d);
                    uow.completion = Completion::Done {
                        lease: ev.lease.clone().unwrap(),
                        note: None,
                    };
                    store.commit(uow).await.unwrap();
                    done += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    assert_eq!(total, 2_000);
    assert_eq!(
        store.event_counts().await.unwrap(),
        vec![(JobState::Done, 2_000)]
    );
    let entries = store.ledger_entries(&w, 0, 10_000).await.unwrap();
    let causes: HashSet<_> = entries.iter().map(|e| e.record.cause.id.clone()).collect();
    assert_eq!((entries.len(), causes.len()), (2_000, 2_000));
    assert!(store.pushes(&w).await.unwrap().is_empty());
}

#[tokio::test]
async fn ledger_is_append_only_and_reopen_is_idempotent() {
    let path = temp_db("append");
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    let w = WorkspaceId::new("append").unwrap();
    let task = Task::new(w.clone());
    let mut uow = UnitOfWork::new(w.clone());
    uow.ledger = vec![draft(&task, 1), draft(&task, 2)];
    let receipt = store.commit(uow).await.unwrap();
    assert_eq!(
        store.ledger_entries(&w, 0, 10).await.unwrap(),
        receipt.entries
    );
    for sql in [
        "UPDATE ordonis_vera_ledger SET idx = idx + 10",
        "DELETE FROM ordonis_vera_ledger",
    ] {
        assert!(
            sqlx::query(sql).execute(&raw(&path).await).await.is_err(),
            "{sql}"
        );
    }
    store.dialect().migrate().await.unwrap();
    store.dialect().close().await;
    let again = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(again.ledger_size(&w).await.unwrap(), 2);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&raw(&path).await)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name LIKE '%migrations'")
            .fetch_all(&raw(&path).await)
            .await
            .unwrap();
    assert_eq!(tables, vec!["_ordonis_migrations".to_owned()]);
}

/// A fresh database file, its WAL and its shared-memory file are 0600 whatever the umask
/// (the test process's is the usual 022), given as a path and as a URL.
#[cfg(unix)]
#[tokio::test]
async fn a_fresh_database_and_its_side_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    for url in [false, true] {
        let path = temp_db("modes");
        let arg = if url {
            format!("sqlite://{}", path.display())
        } else {
            path.display().to_string()
        };
        let store = SqliteStore::connect(&arg).await.unwrap();
        let ws = WorkspaceId::new("modes").unwrap();
        assert!(store.all_tasks(&ws).await.unwrap().is_empty());
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let f = PathBuf::from(name);
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} (from {arg})", f.display());
        }
        drop(store);
    }
}
