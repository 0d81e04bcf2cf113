//! Store-suite cases for the two queues: deduplication, initial states, claims and leases,
//! dead letters and replays, deferred retries, per-object serialization, paused integrations.

use ordonis_core::StoreExt;
use ordonis_core::store::{
    Completion, EventFilter, FailureKind, InsertOutcome, JobFailure, JobState, NewInboxEvent,
    Retry, Store, TaskWrite, UnitOfWork,
};
use ordonis_core::{EventId, StoreError, Task};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

use super::fixtures::*;

/// The same delivery id twice is stored once; the second insert names the first row.
pub async fn dedupe_on_delivery_id(store: Arc<dyn Store>) {
    let w = ws("dedupe");
    let rec = integration(&*store, &w).await;
    let first = insert_one(&*store, event(&rec, "dlv-1", Some("OBJ-1"))).await;
    let InsertOutcome::Inserted(id) = first else {
        panic!("first insert was {first:?}")
    };
    let again = insert_one(&*store, event(&rec, "dlv-1", Some("OBJ-1"))).await;
    assert_eq!(again, InsertOutcome::Duplicate(id));
    let other = insert_one(&*store, event(&rec, "dlv-2", Some("OBJ-1"))).await;
    assert!(matches!(other, InsertOutcome::Inserted(_)));
    let all = store
        .events(&w, &EventFilter::default())
        .await
        .unwrap_or_default();
    assert_eq!(all.len(), 2);
    // The same key under another integration is a different delivery.
    let rec2 = integration(&*store, &w).await;
    assert!(matches!(
        insert_one(&*store, event(&rec2, "dlv-1", None)).await,
        InsertOutcome::Inserted(_)
    ));
}

/// Without a delivery id the body hash is the key: byte-identical bodies are stored once,
/// and a batch holding a duplicate of itself stores it once.
pub async fn dedupe_on_body_hash(store: Arc<dyn Store>) {
    let w = ws("hash");
    let rec = integration(&*store, &w).await;
    let mut a = event(&rec, "x", Some("T1"));
    a.delivery_id = None;
    a.dedupe_key = a.body_sha256.clone();
    let mut b = a.clone();
    b.id = EventId::new();
    let out = store
        .insert_events(&[a.clone(), b])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.len(), 2);
    assert!(matches!(out[0], InsertOutcome::Inserted(id) if id == a.id));
    assert_eq!(out[1], InsertOutcome::Duplicate(a.id));
    let stored = store
        .event(&w, a.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(stored.body, a.body, "the exact body bytes are kept");
    assert_eq!(stored.dedupe_key, a.body_sha256);
}

/// A heartbeat stored done and an unparseable body stored failed keep their notes, and
/// neither is ever claimed.
pub async fn initial_states_kept(store: Arc<dyn Store>) {
    let w = ws("states");
    let rec = integration(&*store, &w).await;
    let mut hb = event(&rec, "hb", None);
    hb.state = JobState::Done;
    hb.note = Some("heartbeat".into());
    let mut bad = event(&rec, "bad", None);
    bad.state = JobState::Failed;
    bad.note = Some("bad input: not JSON".into());
    store
        .insert_events(&[hb.clone(), bad.clone()])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        store
            .claim_events(&claim("w", 10, 10_000))
            .await
            .unwrap_or_default()
            .is_empty()
    );
    let got = store
        .event(&w, bad.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(got.state, JobState::Failed);
    assert_eq!(got.last_error.as_deref(), Some("bad input: not JSON"));
    let failed = store
        .events(
            &w,
            &EventFilter {
                state: Some(JobState::Failed),
                ..EventFilter::default()
            },
        )
        .await
        .unwrap_or_default();
    assert_eq!(
        failed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![bad.id]
    );
}

/// Eight workers claiming concurrently never get the same row; together they get them all.
pub async fn no_row_claimed_twice_by_8_claimers(store: Arc<dyn Store>) {
    let w = ws("claim8");
    let rec = integration(&*store, &w).await;
    let events: Vec<NewInboxEvent> = (0..200)
        .map(|i| event(&rec, &format!("d{i}"), Some(&format!("OBJ-{i}"))))
        .collect();
    store
        .insert_events(&events)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut handles = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_events(&claim(&format!("w{n}"), 7, 60_000))
                    .await
                    .unwrap_or_else(|e| panic!("claim: {e}"));
                if batch.is_empty() {
                    break;
                }
                got.extend(batch.into_iter().map(|e| e.id));
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap_or_else(|e| panic!("{e}")));
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a row was claimed twice");
    assert_eq!(all.len(), 200, "every row is claimed once");
}

/// A row whose lease expired is claimable again, by another worker, as a new attempt.
pub async fn lease_expiry_makes_row_claimable(store: Arc<dyn Store>) {
    let w = ws("lease");
    let rec = integration(&*store, &w).await;
    let e = event(&rec, "d1", Some("A"));
    store
        .insert_events(std::slice::from_ref(&e))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A lease long enough that the second claim surely happens while it is live, and no
    // sleep: the re-claim below waits for the expiry itself.
    let lease_ms = 1_000;
    let started = std::time::Instant::now();
    let first = store
        .claim_events(&claim("w1", 10, lease_ms))
        .await
        .unwrap_or_default();
    assert_eq!(first.len(), 1);
    let during = store
        .claim_events(&claim("w2", 10, 150))
        .await
        .unwrap_or_default();
    if started.elapsed() < Duration::from_millis(lease_ms) {
        assert!(during.is_empty(), "claimed under a live lease: {during:?}");
    }
    let second =
        super::fixtures::claim_when_free(&*store, "w2", 60_000, Duration::from_secs(10)).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, e.id);
    assert_eq!(second[0].attempts, 2);
    let lease = second[0]
        .lease
        .clone()
        .unwrap_or_else(|| panic!("no lease"));
    assert_eq!(lease.owner, "w2");
}

/// Fencing: once a lease expired and the row was claimed again, the first worker can neither
/// complete nor fail it, and its unit of work writes nothing.
pub async fn expired_lease_cannot_complete(store: Arc<dyn Store>) {
    let w = ws("fence");
    let rec = integration(&*store, &w).await;
    store
        .insert_events(&[event(&rec, "d1", Some("A"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let old = store
        .claim_events(&claim("w1", 1, 100))
        .await
        .unwrap_or_default();
    let old_lease = old[0].lease.clone().unwrap_or_else(|| panic!("no lease"));
    let new =
        super::fixtures::claim_when_free(&*store, "w2", 60_000, Duration::from_secs(10)).await;
    let new_lease = new[0].lease.clone().unwrap_or_else(|| panic!("no lease"));

    let task = Task::new(w.clone());
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: task.clone(),
        expected_revision: None,
    });
    uow.ledger.push(draft(&task, 1));
    uow.completion = Completion::Done {
        lease: old_lease.clone(),
        note: None,
    };
    let err = store.commit(uow).await.err();
    assert!(
        matches!(err, Some(StoreError::LeaseLost(_))),
        "stale completion: {err:?}"
    );
    assert!(
        store
            .workspace_task(&w, task.id)
            .await
            .unwrap_or_default()
            .is_none(),
        "nothing written"
    );
    assert_eq!(store.ledger_size(&w).await.unwrap_or(99), 0);
    let err = store
        .fail(
            &old_lease,
            &JobFailure::new(FailureKind::Other, "late"),
            Retry::At(OffsetDateTime::now_utc()),
        )
        .await;
    assert!(matches!(err, Err(StoreError::LeaseLost(_))));

    let mut ok = UnitOfWork::new(w.clone());
    ok.completion = Completion::Done {
        lease: new_lease,
        note: Some("done by w2".into()),
    };
    store
        .commit(ok)
        .await
        .unwrap_or_else(|e| panic!("current lease: {e}"));
    let row = store
        .event(&w, new[0].id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(row.state, JobState::Done);
}

/// After its last attempt a row is dead: kept with its error, never claimed; a replay makes it
/// pending again with its attempts reset. A retry in the future waits for its time.
pub async fn dead_letter_and_replay(store: Arc<dyn Store>) {
    let w = ws("dead");
    let rec = integration(&*store, &w).await;
    let e = event(&rec, "d1", Some("A"));
    store
        .insert_events(std::slice::from_ref(&e))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = store
        .claim_events(&claim("w", 1, 60_000))
        .await
        .unwrap_or_default();
    let lease = c[0].lease.clone().unwrap_or_else(|| panic!("no lease"));
    let later = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    store
        .fail(
            &lease,
            &JobFailure::new(FailureKind::Temporary, "HTTP 503"),
            Retry::At(later),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        store
            .claim_events(&claim("w", 1, 60_000))
            .await
            .unwrap_or_default()
            .is_empty(),
        "not before its time"
    );
    let row = store
        .event(&w, e.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!((row.state, row.attempts), (JobState::Pending, 1));
    assert_eq!(row.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(
        row.error_kind,
        Some(FailureKind::Temporary),
        "the kind is kept"
    );

    // Replaying is only for failed or dead rows.
    assert!(store.replay_event(&w, e.id).await.is_err());
    let w2 = ws("dead2");
    let rec2 = integration(&*store, &w2).await;
    let e2 = event(&rec2, "d2", Some("B"));
    store
        .insert_events(std::slice::from_ref(&e2))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = store
        .claim_events(&claim("w", 10, 60_000))
        .await
        .unwrap_or_default();
    let mine = c
        .iter()
        .find(|x| x.id == e2.id)
        .unwrap_or_else(|| panic!("not claimed"));
    let lease = mine.lease.clone().unwrap_or_else(|| panic!("no lease"));
    store
        .fail(
            &lease,
            &JobFailure::new(FailureKind::Temporary, "gave up after 8 attempts"),
            Retry::Never(JobState::Dead),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        store
            .claim_events(&claim("w", 10, 60_000))
            .await
            .unwrap_or_default()
            .iter()
            .all(|x| x.id != e2.id)
    );
    let dead = store
        .event(&w2, e2.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("gave up after 8 attempts"));
    assert!(
        store.replay_event(&ws("other"), e2.id).await.is_err(),
        "replay is tenant-scoped"
    );
    store
        .replay_event(&w2, e2.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let again = store
        .claim_events(&claim("w", 10, 60_000))
        .await
        .unwrap_or_default();
    let back = again
        .iter()
        .find(|x| x.id == e2.id)
        .unwrap_or_else(|| panic!("replayed row not claimable"));
    assert_eq!(back.attempts, 1, "attempts reset by replay");
    // Done at last: the failure's kind goes with the failure (a view by kind drops the row).
    let lease = back.lease.clone().unwrap_or_else(|| panic!("no lease"));
    let mut uow = UnitOfWork::new(w2.clone());
    uow.completion = Completion::Done { lease, note: None };
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    let done = store
        .event(&w2, e2.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!((done.state, done.error_kind), (JobState::Done, None));
}

/// A deferred retry (rate limit, shutdown) does not count as an attempt.
pub async fn deferred_retry_does_not_count(store: Arc<dyn Store>) {
    let w = ws("defer");
    let rec = integration(&*store, &w).await;
    store
        .insert_events(&[event(&rec, "d1", Some("A"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = store
        .claim_events(&claim("w", 1, 60_000))
        .await
        .unwrap_or_default();
    let lease = c[0].lease.clone().unwrap_or_else(|| panic!("no lease"));
    store
        .fail(
            &lease,
            &JobFailure::new(FailureKind::RateLimited, "rate limited"),
            Retry::Deferred(OffsetDateTime::now_utc()),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = store
        .claim_events(&claim("w", 1, 60_000))
        .await
        .unwrap_or_default();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].attempts, 1, "the deferred attempt did not count");
}

/// Never two rows of one object in flight: one per object per batch, none while another is
/// leased, the next once it completes.
pub async fn per_object_serialization(store: Arc<dyn Store>) {
    let w = ws("serial");
    let rec = integration(&*store, &w).await;
    let a1 = event(&rec, "a1", Some("A"));
    let a2 = event(&rec, "a2", Some("A"));
    let b1 = event(&rec, "b1", Some("B"));
    store
        .insert_events(&[a1.clone(), a2.clone(), b1.clone()])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = store
        .claim_events(&claim("w1", 10, 60_000))
        .await
        .unwrap_or_default();
    let ids: HashSet<EventId> = first.iter().map(|e| e.id).collect();
    assert_eq!(ids, HashSet::from([a1.id, b1.id]), "oldest of each object");
    assert!(
        store
            .claim_events(&claim("w2", 10, 60_000))
            .await
            .unwrap_or_default()
            .is_empty(),
        "A is in flight"
    );
    let lease = first
        .iter()
        .find(|e| e.id == a1.id)
        .and_then(|e| e.lease.clone())
        .unwrap_or_else(|| panic!("no lease"));
    let mut uow = UnitOfWork::new(w.clone());
    uow.completion = Completion::Done { lease, note: None };
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    let next = store
        .claim_events(&claim("w2", 10, 60_000))
        .await
        .unwrap_or_default();
    assert_eq!(next.iter().map(|e| e.id).collect::<Vec<_>>(), vec![a2.id]);
}

/// Rows of a paused integration wait until the pause ends.
pub async fn paused_integration_is_skipped(store: Arc<dyn Store>) {
    let w = ws("paused");
    let rec = integration(&*store, &w).await;
    store
        .insert_events(&[event(&rec, "d1", Some("A"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .set_paused_until(
            rec.id,
            Some(OffsetDateTime::now_utc() + Duration::from_secs(3600)),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        store
            .claim_events(&claim("w", 10, 60_000))
            .await
            .unwrap_or_default()
            .is_empty()
    );
    store
        .set_paused_until(rec.id, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .claim_events(&claim("w", 10, 60_000))
            .await
            .unwrap_or_default()
            .len(),
        1
    );
}
