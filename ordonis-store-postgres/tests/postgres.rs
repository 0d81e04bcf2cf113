//! PostgreSQL-specific tests beyond the conformance suite: many workers on separate
//! connections, a worker whose connection is killed, no plaintext secret in any table, the
//! append-only ledger, concurrent migrations.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestDb;
use ordonis_core::store::{
    ClaimRequest, Completion, InsertOutcome, JobState, Lease, NewInboxEvent, Store, StoreExt,
    UnitOfWork,
};
use ordonis_core::{Ledger, StoreError, Task, WorkspaceId};
use ordonis_store_postgres::PostgresStore;
use ordonis_testkit::store_suite::{draft, event, integration};
use sqlx::{AssertSqlSafe, Row};

fn ws(name: &str) -> WorkspaceId {
    WorkspaceId::new(format!("{name}-{}", uuid::Uuid::now_v7())).unwrap()
}

fn claim(worker: &str, limit: usize, lease: Duration) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_owned(),
        limit,
        lease,
    }
}

/// The unit of work a worker commits for one event: one ledger entry caused by it.
fn effect(task: &Task, ev_id: uuid::Uuid, lease: Lease) -> UnitOfWork {
    let mut d = draft(task, 0);
    d.cause.id = ev_id.to_string();
    let mut uow = UnitOfWork::new(task.workspace_id.clone());
    uow.ledger.push(d);
    uow.completion = Completion::Done { lease, note: None };
    uow
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_workers_drain_10k_events_with_duplicates_exactly_once() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let setup = db.store(4).await;
    let w = ws("drain");
    let rec = integration(&setup, &w).await;
    let task = Task::new(w.clone());

    // 10,000 distinct deliveries over 400 objects, plus 2,000 redeliveries.
    let mut all: Vec<NewInboxEvent> = (0..10_000)
        .map(|i| event(&rec, &format!("dlv-{i}"), Some(&format!("OBJ-{}", i % 400))))
        .collect();
    all.extend((0..2_000).map(|i| event(&rec, &format!("dlv-{}", i * 5), Some("OBJ-dup"))));
    let (mut inserted, mut dups) = (0, 0);
    for chunk in all.chunks(500) {
        for o in setup.insert_events(chunk).await.unwrap() {
            match o {
                InsertOutcome::Inserted(_) => inserted += 1,
                InsertOutcome::Duplicate(_) => dups += 1,
            }
        }
    }
    assert_eq!((inserted, dups), (10_000, 2_000));

    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let started = Instant::now();
    let mut handles = Vec::new();
    for n in 0..8 {
        // each worker has its own pool, so its own connections
        let store = db.store(2).await;
        let task = task.clone();
        let in_flight = in_flight.clone();
        handles.push(tokio::spawn(async move {
            let me = format!("worker-{n}");
            let mut done = 0usize;
            loop {
                let batch = match store
                    .claim_events(&claim(&me, 20, Duration::from_secs(60)))
                    .await
                {
                    Ok(b) => b,
                    Err(StoreError::Conflict(_)) => continue,
                    Err(e) => panic!("claim: {e}"),
                };
                if batch.is_empty() {
                    let counts = store.event_counts().await.unwrap();
                    if counts.iter().all(|(s, n)| {
                        *n == 0 || !matches!(s, JobState::Pending | JobState::Processing)
                    }) {
                        return done;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for ev in &batch {
                    let key = ev.object_key.clone().unwrap();
                    assert!(
                        in_flight.lock().unwrap().insert(key.clone()),
                        "object {key} claimed by two workers at once"
                    );
                }
                for ev in batch {
                    let key = ev.object_key.clone().unwrap();
                    let lease = ev.lease.clone().unwrap();
                    in_flight.lock().unwrap().remove(&key);
                    store.commit(effect(&task, ev.id.0, lease)).await.unwrap();
                    done += 1;
                }
            }
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    eprintln!("8 workers drained 10,000 events in {:?}", started.elapsed());
    assert_eq!(total, 10_000, "every event processed once");
    assert_eq!(
        setup.event_counts().await.unwrap(),
        vec![(JobState::Done, 10_000)],
        "no row left behind"
    );
    assert_eq!(setup.ledger_size(&w).await.unwrap(), 10_000);
    let mut causes = HashSet::new();
    let mut from = 0;
    loop {
        let page = setup.ledger_entries(&w, from, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        for (i, e) in page.iter().enumerate() {
            assert_eq!(e.idx, from + i as u64, "gapless");
            assert!(
                causes.insert(e.record.cause.id.clone()),
                "an event's effect twice"
            );
        }
        from += page.len() as u64;
    }
    assert_eq!(causes.len(), 10_000);
    setup.dialect().close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_rows_are_reprocessed_after_the_lease() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let admin = db.store(2).await;
    let w = ws("kill");
    let rec = integration(&admin, &w).await;
    let task = Task::new(w.clone());
    let events: Vec<NewInboxEvent> = (0..20)
        .map(|i| event(&rec, &format!("k{i}"), Some(&format!("OBJ-{i}"))))
        .collect();
    admin.insert_events(&events).await.unwrap();

    // Worker A (one connection) claims half, starts completing the first one inside a
    // transaction, and has its connection killed mid-batch.
    let (a, a_pool) = db.store_and_pool(1).await;
    let lease = Duration::from_secs(2);
    let a_batch = a.claim_events(&claim("A", 10, lease)).await.unwrap();
    assert_eq!(a_batch.len(), 10);
    let mut conn = a_pool.acquire().await.unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE ordonis.webhook_events SET state = 'done' WHERE id = $1")
        .bind(a_batch[0].id.0)
        .execute(&mut *conn)
        .await
        .unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&db.raw().await)
        .await
        .unwrap();
    assert!(killed);
    assert!(
        sqlx::query("COMMIT").execute(&mut *conn).await.is_err(),
        "A is gone"
    );
    drop(conn);

    // Worker B takes the other half at once, but not A's rows while their lease holds.
    let b = db.store(2).await;
    let first = b
        .claim_events(&claim("B", 100, Duration::from_secs(60)))
        .await
        .unwrap();
    let a_ids: HashSet<_> = a_batch.iter().map(|e| e.id).collect();
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|e| !a_ids.contains(&e.id)));
    for ev in first {
        b.commit(effect(&task, ev.id.0, ev.lease.unwrap()))
            .await
            .unwrap();
    }
    let row = admin.event(&w, a_batch[0].id).await.unwrap().unwrap();
    assert_eq!(
        row.state,
        JobState::Processing,
        "A's half-done work was rolled back"
    );

    // After the lease, B reprocesses A's rows as second attempts.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let second = b
        .claim_events(&claim("B", 100, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(second.iter().map(|e| e.id).collect::<HashSet<_>>(), a_ids);
    assert!(second.iter().all(|e| e.attempts == 2));
    for ev in second {
        b.commit(effect(&task, ev.id.0, ev.lease.unwrap()))
            .await
            .unwrap();
    }

    // A comes back (its pool reconnects) with its stale leases: nothing is written.
    let stale = a_batch[1].lease.clone().unwrap();
    let err = a.commit(effect(&task, a_batch[1].id.0, stale)).await;
    assert!(matches!(err, Err(StoreError::LeaseLost(_))), "{err:?}");
    assert_eq!(
        admin.event_counts().await.unwrap(),
        vec![(JobState::Done, 20)]
    );
    assert_eq!(admin.ledger_size(&w).await.unwrap(), 20);
    a.dialect().close().await;
    b.dialect().close().await;
    admin.dialect().close().await;
    db.drop_db().await;
}

/// Every table's rows, rendered as text the way a dump would (bytea as hex), hold no plaintext
/// secret, and the raw secrets bytes hold none either.
#[tokio::test]
async fn no_plaintext_secret_in_any_table() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(2).await;
    let w = ws("dump");
    let rec = integration(&store, &w).await;
    store
        .insert_events(&[event(&rec, "d1", Some("A"))])
        .await
        .unwrap();
    let needles = ["PLAINTEXT-API-TOKEN", "PLAINTEXT-WEBHOOK-SECRET"];
    let raw: Vec<Vec<u8>> = sqlx::query_scalar("SELECT secrets FROM ordonis.integrations")
        .fetch_all(&db.raw().await)
        .await
        .unwrap();
    assert_eq!(raw.len(), 1);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'ordonis'",
    )
    .fetch_all(&db.raw().await)
    .await
    .unwrap();
    assert!(tables.len() >= 9, "{tables:?}");
    for needle in needles {
        assert!(!raw[0].windows(needle.len()).any(|x| x == needle.as_bytes()));
        let hex_needle = needle
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        for table in &tables {
            let rows: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT t::text FROM ordonis.\"{table}\" t"
            )))
            .fetch_all(&db.raw().await)
            .await
            .unwrap();
            for row in rows {
                assert!(!row.contains(needle), "plaintext secret in {table}");
                assert!(
                    !row.contains(&hex_needle),
                    "hex plaintext secret in {table}"
                );
            }
        }
    }
    // And what an operator's backup holds: a real pg_dump of the whole database.
    let server = common::server_url().unwrap();
    let (base, query) = server.split_once('?').unwrap_or((&server, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let url = if query.is_empty() {
        format!("{base}/{}", db.name)
    } else {
        format!("{base}/{}?{query}", db.name)
    };
    let out = std::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("pg_dump could not start (install postgresql-client): {e}"));
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("dedupe"),
        "the dump holds the rows (the event body)"
    );
    for needle in needles {
        let hex_needle: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(needle), "plaintext secret in pg_dump");
        assert!(
            !dump.contains(&hex_needle),
            "hex plaintext secret in pg_dump"
        );
    }
    store.dialect().close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn ledger_tables_are_append_only() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(2).await;
    let w = ws("append");
    let task = Task::new(w.clone());
    let mut uow = UnitOfWork::new(w.clone());
    uow.ledger = vec![draft(&task, 1), draft(&task, 2)];
    let receipt = store.commit(uow).await.unwrap();
    assert_eq!(
        receipt.entries.iter().map(|e| e.idx).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(
        store.ledger_entries(&w, 0, 10).await.unwrap(),
        receipt.entries
    );
    assert_eq!(
        store.task_ledger(&w, task.id).await.unwrap(),
        receipt.entries
    );
    for sql in [
        "UPDATE ordonis.vera_ledger SET idx = idx + 10",
        "DELETE FROM ordonis.vera_ledger",
        "TRUNCATE ordonis.vera_ledger",
    ] {
        let err = sqlx::query(sql).execute(&db.raw().await).await;
        assert!(err.is_err(), "{sql} was allowed");
    }
    store
        .save_checkpoint(
            &w,
            &ordonis_core::StoredCheckpoint {
                size: 2,
                note: "n".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        sqlx::query("DELETE FROM ordonis.vera_checkpoints")
            .execute(&db.raw().await)
            .await
            .is_err()
    );
    assert_eq!(store.ledger_size(&w).await.unwrap(), 2);
    store.dialect().close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_are_idempotent_and_concurrent_safe() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect_with(db.options.clone())
        .await
        .unwrap();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            ordonis_store_postgres::migrate(&pool).await
        }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    ordonis_store_postgres::migrate(&pool).await.unwrap();
    let tables: HashMap<String, String> = sqlx::query(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables
          WHERE table_name LIKE '%migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get::<String, _>(1), r.get::<String, _>(0)))
    .collect();
    assert_eq!(
        tables.get("_migrations").map(String::as_str),
        Some("ordonis")
    );
    assert!(
        !tables.contains_key("_sqlx_migrations"),
        "the host's table is untouched"
    );
    let store = ordonis_store_postgres::from_pool(pool.clone());
    assert_eq!(store.event_counts().await.unwrap(), vec![]);
    pool.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn connect_migrates_and_maps_unreachable_to_unavailable() {
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/none").await;
    assert!(
        matches!(err, Err(StoreError::Unavailable { .. })),
        "{err:?}"
    );
    // sqlx's error is kept as the source, to walk or downcast.
    let source = err
        .as_ref()
        .err()
        .and_then(std::error::Error::source)
        .and_then(|s| s.downcast_ref::<ordonis_core::ErrorSource>())
        .and_then(|s| s.get().downcast_ref::<sqlx::Error>());
    assert!(
        matches!(source, Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)),
        "{source:?}"
    );
    let Some(db) = TestDb::create().await else {
        return;
    };
    let url = std::env::var("ORDONIS_TEST_DATABASE_URL").unwrap();
    // connect() to the server database would migrate it; use the test database instead.
    let url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{}", db.name),
        None => url,
    };
    let store = PostgresStore::connect(&url).await.unwrap();
    assert!(store.ledger_size(&ws("x")).await.unwrap() == 0);
    store.dialect().close().await;
    db.drop_db().await;
}

/// Single-event inserts from many callers at once go through group commit: events of one
/// batch may repeat a key (of each other or of an earlier row). Every key is stored once,
/// every caller gets the id of the row holding its key, exactly one caller per key "inserted".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_committed_ingest_dedupes_within_and_across_batches() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(8).await;
    let w = ws("group");
    let rec = integration(&store, &w).await;
    let mut handles = Vec::new();
    for caller in 0..16 {
        let (store, rec) = (store.clone(), rec.clone());
        handles.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..100 {
                // callers c and c+8 send the same 100 keys, in different orders
                let k = if caller < 8 { i } else { 99 - i };
                let key = format!("dlv-{}-{k}", caller % 8);
                let o = store
                    .insert_events(&[event(&rec, &key, Some("OBJ"))])
                    .await
                    .unwrap();
                out.push((key, o[0]));
            }
            out
        }));
    }
    let mut by_key: HashMap<String, Vec<InsertOutcome>> = HashMap::new();
    for h in handles {
        for (key, o) in h.await.unwrap() {
            by_key.entry(key).or_default().push(o);
        }
    }
    assert_eq!(by_key.len(), 800);
    for (key, outcomes) in &by_key {
        let inserted = outcomes
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Inserted(_)))
            .count();
        assert_eq!(inserted, 1, "{key}: {outcomes:?}");
        assert_eq!(outcomes[0].id(), outcomes[1].id(), "{key}: one row");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM ordonis.webhook_events")
        .fetch_one(&db.raw().await)
        .await
        .unwrap();
    assert_eq!(rows, 800);
    store.dialect().close().await;
    db.drop_db().await;
}

/// A store call dropped at any point (a client that disconnects, an aborted task, a timeout)
/// never hands its connection back to the pool inside a transaction. sqlx 0.9.0's `begin` is
/// not cancel-safe on PostgreSQL (transact-rs/sqlx#4393): dropped during the `BEGIN` round
/// trip, the connection went back with an open transaction that later statements ran in and
/// whose row locks stalled every claim (the chaos soak's stalled seeds). On a one-connection
/// pool, each time the pool has its connection back, that session is outside any transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_store_call_never_returns_its_connection_inside_a_transaction() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (store, pool) = db.store_and_pool(1).await;
    let watcher = db.raw().await;
    let store = Arc::new(store);
    let ws = ws("cancel");
    let rec = integration(store.as_ref(), &ws).await;
    let schedule = ordonis_core::SyncSchedule {
        integration_id: rec.id,
        workspace_id: ws.clone(),
        mode: None,
        at: time::OffsetDateTime::now_utc(),
        status: ordonis_core::SyncStatus::default(),
    };
    store.schedule_sync(&schedule).await.unwrap();
    let mut stale = Vec::new();
    for i in 0..600u64 {
        let (s, sc) = (store.clone(), schedule.clone());
        let call = tokio::spawn(async move { s.schedule_sync(&sc).await });
        // Abort points spread over the call's round trips (a BEGIN is tens of microseconds).
        tokio::time::sleep(Duration::from_micros((i * 37) % 900)).await;
        call.abort();
        let _ = call.await;
        // Once the pool has the connection back, its session must not be in a transaction.
        let held = tokio::time::timeout(Duration::from_secs(10), pool.acquire())
            .await
            .expect("the pool's connection stalled")
            .unwrap();
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state LIKE 'idle in transaction%'",
        )
        .fetch_one(&watcher)
        .await
        .unwrap();
        drop(held);
        if open > 0 {
            stale.push(i);
            // End it, as the next borrower's COMMIT would, so later iterations count anew.
            let _ = sqlx::query("COMMIT").execute(&pool).await;
        }
    }
    assert!(
        stale.is_empty(),
        "after {} of 600 aborted calls the connection was back in the pool inside a \
         transaction (iterations {stale:?})",
        stale.len()
    );
    db.drop_db().await;
}
