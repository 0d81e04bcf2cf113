//! The store conformance suite: one `pub async fn` per case over a fresh store, and the
//! [`store_suite!`](macro@crate::store_suite) macro that expands to one `#[tokio::test]` per case.
//!
//! ```text
//! // in a store crate's tests/suite.rs
//! async fn fresh() -> Option<std::sync::Arc<dyn ordonis_core::Store>> { /* ... */ }
//! ordonis_testkit::store_suite!(fresh);
//! ```

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ordonis_core::StoreExt;
use ordonis_core::store::{
    ClaimRequest, Completion, EventFilter, FailureKind, InsertOutcome, IntegrationRecord,
    JobFailure, JobState, NewInboxEvent, Retry, Store, TaskWrite, UnitOfWork,
};
use ordonis_core::{
    Actor, ApiAuth, Cause, CauseKind, EventId, ExternalRef, Field, FieldValue, IntegrationId,
    IntegrationSecrets, Keyring, LedgerDraft, Op, Outcome, ProviderKind, SecretKey, StoreError,
    Task, WorkspaceId,
};
use time::OffsetDateTime;

/// Expands to one `#[tokio::test]` per suite case. `$factory` is an async fn returning
/// `Option<Arc<dyn Store>>` (a fresh, empty store; `None` skips, e.g. no database configured).
#[macro_export]
macro_rules! store_suite {
    ($factory:path) => {
        $crate::store_suite!(@cases $factory;
            dedupe_on_delivery_id, dedupe_on_body_hash, initial_states_kept,
            no_row_claimed_twice_by_8_claimers, lease_expiry_makes_row_claimable,
            expired_lease_cannot_complete, dead_letter_and_replay, deferred_retry_does_not_count,
            per_object_serialization, failed_unit_of_work_leaves_nothing,
            mapping_points_to_one_task, outbox_coalescing, workspaces_are_isolated,
            secrets_stored_as_ciphertext, ledger_indexes_gapless_under_concurrency,
            paused_integration_is_skipped, checkpoints_saved_and_latest,
            engine_changes_verify_offline,
            completion_from_another_workspace_is_lease_lost, replay_and_give_up_refusals,
            outbox_coalesces_per_integration, id_lookups_name_their_workspace,
            tasks_are_paged_in_id_order, jobs_list_across_workspaces,
            integration_update_is_partial, deliveries_with_nul_are_stored,
            integration_state_and_change_commit, a_unit_with_many_entries_appends_them_all_in_order,
            batch_with_failing_unit_in_the_middle, batch_with_lease_lost_mid_batch,
            batches_racing_for_one_workspace, batch_of_two_workspaces_is_refused,
            batch_refuses_an_earlier_attempt_of_the_same_owner, mapped_tasks_answer_per_key,
            key_check_first_writer_wins,
            sync_job_is_one_per_integration, sync_job_claimed_once_by_8_claimers,
            sync_job_resumes_from_saved_cursor, sync_job_finish_rearms_and_counts_repairs,
            sync_job_failed_and_paused_wait
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $factory().await else {
                    eprintln!("skipped {}: no store available", stringify!($case));
                    return;
                };
                $crate::store_suite::$case(store).await;
            }
        )*
    };
}

pub use crate::ledger_e2e::engine_changes_verify_offline;
pub use crate::store_api_suite::*;
pub use crate::store_batch_suite::*;
pub use crate::store_sync_suite::*;

/// The key-check record: stored once, by the first of concurrent callers; later calls
/// return it unchanged. (A store shared by several suite runs may hold one already.)
pub async fn key_check_first_writer_wins(store: std::sync::Arc<dyn Store>) {
    let tries: Vec<_> = (0u8..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.init_key_check(&[i; 40]).await })
        })
        .collect();
    let mut stored = Vec::new();
    for t in tries {
        match t.await {
            Ok(Ok(r)) => stored.push(r),
            other => panic!("init_key_check: {other:?}"),
        }
    }
    let first = stored[0].clone();
    assert!(stored.iter().all(|r| *r == first), "two records stored");
    assert!(!first.is_empty());
    match store.key_check().await {
        Ok(Some(r)) => assert_eq!(r, first),
        other => panic!("key_check: {other:?}"),
    }
    match store.init_key_check(b"another").await {
        Ok(r) => assert_eq!(r, first, "a later call replaced the record"),
        Err(e) => panic!("init_key_check: {e}"),
    }
}

pub(crate) fn ws(name: &str) -> WorkspaceId {
    WorkspaceId::new(format!("{name}-{}", uuid::Uuid::now_v7())).unwrap_or_else(|_| unreachable!())
}

/// A stored integration in a fresh workspace.
pub async fn integration(store: &dyn Store, workspace: &WorkspaceId) -> IntegrationRecord {
    let id = IntegrationId::new();
    let ring = Keyring::new(SecretKey::from_bytes(1, [7; 32]));
    let secrets = IntegrationSecrets {
        api_auth: Some(ApiAuth::Basic {
            email: "bot@example.com".into(),
            api_token: "PLAINTEXT-API-TOKEN".into(),
        }),
        webhook_secrets: vec!["PLAINTEXT-WEBHOOK-SECRET".into()],
        app_secret: None,
    };
    let rec = IntegrationRecord {
        id,
        workspace_id: workspace.clone(),
        provider: ProviderKind::new("fake"),
        config: serde_json::json!({"base_url": "http://127.0.0.1:9"}),
        secrets: ring
            .seal(id, &secrets)
            .unwrap_or_else(|e| panic!("seal: {e}")),
        paused_until: None,
        state: ordonis_core::IntegrationState::Active,
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .create_integration(&rec)
        .await
        .unwrap_or_else(|e| panic!("create_integration: {e}"));
    rec
}

/// A pending inbox event.
pub fn event(rec: &IntegrationRecord, dedupe: &str, object: Option<&str>) -> NewInboxEvent {
    let body = Bytes::from(format!("{{\"dedupe\":\"{dedupe}\"}}"));
    NewInboxEvent {
        id: EventId::new(),
        workspace_id: rec.workspace_id.clone(),
        integration_id: rec.id,
        dedupe_key: dedupe.to_owned(),
        delivery_id: Some(dedupe.to_owned()),
        object_key: object.map(str::to_owned),
        headers: vec![("x-test".into(), "1".into())],
        body_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
        body,
        auth: "test".into(),
        state: JobState::Pending,
        note: None,
    }
}

pub(crate) fn claim(worker: &str, limit: usize, lease_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_owned(),
        limit,
        lease: Duration::from_millis(lease_ms),
    }
}

/// A ledger draft about a task.
pub fn draft(task: &Task, n: usize) -> LedgerDraft {
    LedgerDraft {
        workspace_id: task.workspace_id.clone(),
        integration_id: None,
        task_id: task.id,
        external: None,
        op: Op::Set,
        field: Some(Field::Title),
        before: Some(FieldValue::Title(String::new())),
        after: Some(FieldValue::Title(format!("title {n}"))),
        outcome: Outcome::Applied,
        rule: "owner=collabhub;direction=both;test".into(),
        actor: Actor::human("usr_1"),
        cause: Cause {
            kind: CauseKind::InternalAction,
            id: format!("act_{n}"),
            delivery_id: None,
            parent_action: None,
            evidence: None,
        },
        occurred_at: None,
        observed_at: OffsetDateTime::now_utc(),
    }
}

pub(crate) async fn insert_task(store: &dyn Store, workspace: &WorkspaceId) -> Task {
    let mut task = Task::new(workspace.clone());
    task.fields.title = "first".into();
    task.revision = 1;
    let mut uow = UnitOfWork::new(workspace.clone());
    uow.task = Some(TaskWrite {
        task: task.clone(),
        expected_revision: None,
    });
    store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    task
}

async fn insert_one(store: &dyn Store, e: NewInboxEvent) -> InsertOutcome {
    let mut v = store
        .insert_events(&[e])
        .await
        .unwrap_or_else(|e| panic!("insert_events: {e}"));
    v.remove(0)
}

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
        crate::store_batch_suite::claim_when_free(&*store, "w2", 60_000, Duration::from_secs(10))
            .await;
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
        crate::store_batch_suite::claim_when_free(&*store, "w2", 60_000, Duration::from_secs(10))
            .await;
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

/// A unit of work refused for a stale task revision writes nothing at all: no task change, no
/// mapping, no ledger entry, no outbox row, no completion.
pub async fn failed_unit_of_work_leaves_nothing(store: Arc<dyn Store>) {
    let w = ws("atomic");
    let rec = integration(&*store, &w).await;
    let task = insert_task(&*store, &w).await;
    store
        .insert_events(&[event(&rec, "d1", Some("A"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let c = store
        .claim_events(&claim("w", 1, 60_000))
        .await
        .unwrap_or_default();
    let lease = c[0].lease.clone().unwrap_or_else(|| panic!("no lease"));
    let mut changed = task.clone();
    changed.fields.title = "second".into();
    changed.revision = 3;
    let link = ExternalRef {
        integration_id: rec.id,
        provider: rec.provider.clone(),
        key: ordonis_core::ObjectKey::new("A", "issue"),
        url: None,
    };
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: changed,
        expected_revision: Some(2),
    }); // stored is 1
    uow.mapping = Some((link, task.id));
    uow.ledger = vec![draft(&task, 1), draft(&task, 2)];
    uow.enqueue_push = Some((task.id, rec.id));
    uow.completion = Completion::Done {
        lease: lease.clone(),
        note: None,
    };
    let err = store.commit(uow).await.err();
    assert!(matches!(err, Some(StoreError::Conflict(_))), "{err:?}");
    let stored = store
        .workspace_task(&w, task.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(
        (stored.fields.title.as_str(), stored.revision),
        ("first", 1)
    );
    assert_eq!(
        store
            .find_mapping(rec.id, &ordonis_core::ObjectKey::new("A", "issue"))
            .await
            .unwrap_or_default(),
        None
    );
    assert_eq!(store.ledger_size(&w).await.unwrap_or(99), 0);
    assert!(store.pushes(&w).await.unwrap_or_default().is_empty());
    let row = store
        .event(&w, c[0].id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(row.state, JobState::Processing, "the row was not completed");
    // The same work at the right revision commits whole.
    let mut changed = task.clone();
    changed.fields.title = "second".into();
    changed.revision = 2;
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: changed,
        expected_revision: Some(1),
    });
    uow.ledger = vec![draft(&task, 1), draft(&task, 2)];
    uow.enqueue_push = Some((task.id, rec.id));
    uow.completion = Completion::Done { lease, note: None };
    let receipt = store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        receipt.entries.iter().map(|e| e.idx).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(receipt.outbox.is_some());
    assert_eq!(
        store
            .workspace_task(&w, task.id)
            .await
            .unwrap_or_default()
            .map(|t| t.revision),
        Some(2)
    );
}

/// One external object maps to one task: mapping it to a second task is a conflict.
pub async fn mapping_points_to_one_task(store: Arc<dyn Store>) {
    let w = ws("map");
    let rec = integration(&*store, &w).await;
    let link = ExternalRef {
        integration_id: rec.id,
        provider: rec.provider.clone(),
        key: ordonis_core::ObjectKey::new("10001", "issue"),
        url: None,
    };
    let t1 = Task::new(w.clone());
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: t1.clone(),
        expected_revision: None,
    });
    uow.mapping = Some((link.clone(), t1.id));
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .find_mapping(rec.id, &ordonis_core::ObjectKey::new("10001", "issue"))
            .await
            .unwrap_or_default(),
        Some(t1.id)
    );
    let t2 = Task::new(w.clone());
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: t2.clone(),
        expected_revision: None,
    });
    uow.mapping = Some((link, t2.id));
    assert!(matches!(
        store.commit(uow).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store
            .workspace_task(&w, t2.id)
            .await
            .unwrap_or_default()
            .is_none(),
        "the losing task was not written"
    );
}

/// Several pushes queued for one task coalesce into one pending row; a push queued while one is
/// in flight waits for it.
pub async fn outbox_coalescing(store: Arc<dyn Store>) {
    let w = ws("outbox");
    let rec = integration(&*store, &w).await;
    let task = insert_task(&*store, &w).await;
    let enqueue = || {
        let mut uow = UnitOfWork::new(w.clone());
        uow.enqueue_push = Some((task.id, rec.id));
        uow
    };
    let a = store
        .commit(enqueue())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .outbox;
    let b = store
        .commit(enqueue())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .outbox;
    assert!(a.is_some());
    assert_eq!(a, b, "coalesced into one pending push");
    let claimed = store
        .claim_pushes(&claim("w", 10, 60_000))
        .await
        .unwrap_or_default();
    assert_eq!(claimed.len(), 1);
    let c = store
        .commit(enqueue())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .outbox;
    assert_ne!(c, a, "a new pending push while the first is in flight");
    assert!(
        store
            .claim_pushes(&claim("w", 10, 60_000))
            .await
            .unwrap_or_default()
            .is_empty(),
        "one push per task in flight"
    );
    let mut done = UnitOfWork::new(w.clone());
    done.completion = Completion::Done {
        lease: claimed[0]
            .lease
            .clone()
            .unwrap_or_else(|| panic!("no lease")),
        note: None,
    };
    store.commit(done).await.unwrap_or_else(|e| panic!("{e}"));
    let next = store
        .claim_pushes(&claim("w", 10, 60_000))
        .await
        .unwrap_or_default();
    assert_eq!(next.iter().map(|j| Some(j.id)).collect::<Vec<_>>(), vec![c]);
    assert_eq!(store.pushes(&w).await.unwrap_or_default().len(), 2);
}

/// One workspace never reads another's tasks, events or ledger.
pub async fn workspaces_are_isolated(store: Arc<dyn Store>) {
    let a = ws("tenant-a");
    let b = ws("tenant-b");
    let rec_a = integration(&*store, &a).await;
    let task = insert_task(&*store, &a).await;
    let mut uow = UnitOfWork::new(a.clone());
    uow.ledger.push(draft(&task, 1));
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    let e = event(&rec_a, "d1", Some("A"));
    store
        .insert_events(std::slice::from_ref(&e))
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert!(
        store
            .workspace_task(&b, task.id)
            .await
            .unwrap_or_default()
            .is_none()
    );
    assert!(store.all_tasks(&b).await.unwrap_or_default().is_empty());
    assert!(store.event(&b, e.id).await.unwrap_or_default().is_none());
    assert!(
        store
            .events(&b, &EventFilter::default())
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(store.ledger_size(&b).await.unwrap_or(99), 0);
    assert!(
        store
            .ledger_entries(&b, 0, 100)
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert!(
        store
            .task_ledger(&b, task.id)
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert!(store.integrations(&b).await.unwrap_or_default().is_empty());
    assert_eq!(store.all_tasks(&a).await.unwrap_or_default().len(), 1);
    assert_eq!(store.ledger_size(&a).await.unwrap_or(0), 1);
    // A task of one workspace cannot be written under another's unit of work.
    let mut foreign = UnitOfWork::new(b.clone());
    let mut t = task.clone();
    t.revision = 2;
    foreign.task = Some(TaskWrite {
        task: t,
        expected_revision: Some(1),
    });
    assert!(store.commit(foreign).await.is_err());
}

/// What the store keeps of secrets is the ciphertext it was given: no plaintext.
pub async fn secrets_stored_as_ciphertext(store: Arc<dyn Store>) {
    let w = ws("secrets");
    let rec = integration(&*store, &w).await;
    let back = store
        .integration(rec.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("missing"));
    assert_eq!(back.secrets, rec.secrets);
    for needle in [&b"PLAINTEXT-API-TOKEN"[..], b"PLAINTEXT-WEBHOOK-SECRET"] {
        assert!(!back.secrets.0.windows(needle.len()).any(|x| x == needle));
    }
    let ring = Keyring::new(SecretKey::from_bytes(1, [7; 32]));
    let opened = ring
        .open(rec.id, &back.secrets)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        opened.webhook_secrets,
        vec!["PLAINTEXT-WEBHOOK-SECRET".to_owned()]
    );
}

/// Concurrent writers, some of whose units of work fail on purpose, leave ledger indexes
/// 0..n-1 with no gap, no duplicate, and no entry of a failed unit of work.
pub async fn ledger_indexes_gapless_under_concurrency(store: Arc<dyn Store>) {
    let w = ws("gapless");
    let mut handles = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        let w = w.clone();
        handles.push(tokio::spawn(async move {
            let task = insert_task(&*store, &w).await;
            let mut committed = 0usize;
            for i in 0..10 {
                let mut uow = UnitOfWork::new(w.clone());
                uow.ledger = vec![draft(&task, n * 100 + i), draft(&task, n * 100 + i)];
                if i % 3 == 0 {
                    // Fails on purpose: stale revision.
                    let mut t = task.clone();
                    t.revision = 50;
                    uow.task = Some(TaskWrite {
                        task: t,
                        expected_revision: Some(49),
                    });
                    assert!(store.commit(uow).await.is_err());
                } else {
                    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
                    committed += 2;
                }
            }
            committed
        }));
    }
    let mut expected = 0;
    for h in handles {
        expected += h.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let entries = store
        .ledger_entries(&w, 0, 10_000)
        .await
        .unwrap_or_default();
    assert_eq!(entries.len(), expected);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.idx, i as u64, "gap or reorder at {i}");
        assert_eq!(e.leaf_hash, ordonis_core::vera::leaf_hash(&e.bytes));
    }
    assert!(
        entries
            .iter()
            .all(|e| e.record.cause.id.starts_with("act_"))
    );
    assert_eq!(store.ledger_size(&w).await.unwrap_or(0), expected as u64);
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

/// Checkpoints are stored per size; the latest is the largest.
pub async fn checkpoints_saved_and_latest(store: Arc<dyn Store>) {
    let w = ws("cp");
    assert!(
        store
            .latest_checkpoint(&w)
            .await
            .unwrap_or_default()
            .is_none()
    );
    for size in [1u64, 5, 3] {
        let cp = ordonis_core::StoredCheckpoint {
            size,
            note: format!("note {size}\n"),
        };
        store
            .save_checkpoint(&w, &cp)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let latest = store
        .latest_checkpoint(&w)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("none"));
    assert_eq!(latest.size, 5);
    assert!(
        store
            .latest_checkpoint(&ws("other"))
            .await
            .unwrap_or_default()
            .is_none()
    );
}
