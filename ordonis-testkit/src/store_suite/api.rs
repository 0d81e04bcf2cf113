//! Store-suite cases for the re-cut `Store` seam: the behaviours the three stores used to
//! disagree on (completions across workspaces, replay refusals, outbox coalescing per
//! integration), and the new calls (id-addressed look-ups, workspace listing, paged tasks,
//! queue listing across workspaces, partial integration updates).

use std::collections::HashSet;
use std::sync::Arc;

use ordonis_core::{
    Completion, FailureKind, IntegrationUpdate, Job, JobFailure, JobFilter, JobId, JobState,
    ObjectKey, Queue, Retry, Store, StoreError, StoreExt, Task, TaskPage, TaskWrite, UnitOfWork,
};
use time::OffsetDateTime;

use super::{claim, draft, event, insert_task, integration, ws};

/// A completion is fenced on the unit's workspace too: a lease of one workspace's row does
/// not complete it from another workspace's unit of work (`LeaseLost`, nothing written), on
/// both queues, alone and in a batch.
pub async fn completion_from_another_workspace_is_lease_lost(store: Arc<dyn Store>) {
    let a = ws("fence-a");
    let b = ws("fence-b");
    let rec = integration(&*store, &a).await;
    store
        .insert_events(&[event(&rec, "x1", Some("X"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let task = insert_task(&*store, &a).await;
    let mut push = UnitOfWork::new(a.clone());
    push.enqueue_push = Some((task.id, rec.id));
    store.commit(push).await.unwrap_or_else(|e| panic!("{e}"));
    let mut leases = Vec::new();
    for q in [Queue::Inbox, Queue::Outbox] {
        let got = store
            .claim(q, &claim("w", 1, 60_000))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), 1, "{q:?}");
        leases.push(
            got[0]
                .lease()
                .cloned()
                .unwrap_or_else(|| panic!("no lease")),
        );
    }
    for lease in leases {
        let other = Task::new(b.clone());
        let mut uow = UnitOfWork::new(b.clone());
        uow.task = Some(TaskWrite {
            task: other.clone(),
            expected_revision: None,
        });
        uow.ledger.push(draft(&other, 1));
        uow.completion = Completion::Done {
            lease: lease.clone(),
            note: None,
        };
        // Alone and in a batch (the batch path has its own fence).
        let batched = store
            .commit_batch(vec![uow.clone()])
            .await
            .unwrap_or_else(|e| panic!("batch: {e}"));
        assert!(
            matches!(batched[0], Err(StoreError::LeaseLost(_))),
            "{:?} in a batch: {:?}",
            lease.queue,
            batched[0].as_ref().map(|_| "committed")
        );
        let err = store.commit(uow).await.err();
        assert!(
            matches!(err, Some(StoreError::LeaseLost(_))),
            "{:?}: {err:?}",
            lease.queue
        );
        assert!(store.task(other.id).await.unwrap_or_default().is_none());
        assert_eq!(store.ledger_size(&b).await.unwrap_or(99), 0);
        let row = store
            .job(lease.job())
            .await
            .unwrap_or_default()
            .unwrap_or_else(|| panic!("row gone"));
        assert_eq!(row.state(), JobState::Processing, "still leased");
        // The right workspace completes it.
        let mut ok = UnitOfWork::new(a.clone());
        ok.completion = Completion::Done { lease, note: None };
        store.commit(ok).await.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// A replay names what was wrong: `NotFound` for a row the workspace does not have (including
/// another workspace's), `Invalid` for a row in a state that cannot be replayed. A give-up
/// into a non-final state is bad input.
pub async fn replay_and_give_up_refusals(store: Arc<dyn Store>) {
    let a = ws("replay-a");
    let b = ws("replay-b");
    let rec = integration(&*store, &a).await;
    let id = store
        .insert_events(&[event(&rec, "r1", None)])
        .await
        .unwrap_or_else(|e| panic!("{e}"))[0]
        .id();
    let job = JobId::Event(id);
    let err = store.replay(&a, job).await;
    assert!(
        matches!(err, Err(StoreError::Invalid(_))),
        "pending: {err:?}"
    );
    let err = store.replay(&b, job).await;
    assert!(
        matches!(err, Err(StoreError::NotFound(_))),
        "other workspace: {err:?}"
    );
    let err = store
        .replay(&a, JobId::Push(ordonis_core::OutboxId::new()))
        .await;
    assert!(
        matches!(err, Err(StoreError::NotFound(_))),
        "unknown: {err:?}"
    );

    let claimed = store
        .claim(Queue::Inbox, &claim("w", 1, 60_000))
        .await
        .unwrap_or_default();
    let lease = claimed[0]
        .lease()
        .cloned()
        .unwrap_or_else(|| panic!("no lease"));
    for bad in [JobState::Done, JobState::Pending, JobState::Processing] {
        let err = store
            .fail(
                &lease,
                &JobFailure::new(FailureKind::Other, "x"),
                Retry::Never(bad),
            )
            .await;
        assert!(
            matches!(err, Err(StoreError::Invalid(_))),
            "{bad:?}: {err:?}"
        );
    }
    store
        .fail(
            &lease,
            &JobFailure::new(FailureKind::BadInput, "bad input"),
            Retry::Never(JobState::Failed),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .replay(&a, job)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let row = store
        .job(job)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!((row.state(), row.attempts()), (JobState::Pending, 0));
}

/// Pushes coalesce per task *and integration*: one task synced to two integrations gets one
/// pending push for each.
pub async fn outbox_coalesces_per_integration(store: Arc<dyn Store>) {
    let w = ws("coalesce");
    let jira = integration(&*store, &w).await;
    let asana = integration(&*store, &w).await;
    let task = insert_task(&*store, &w).await;
    let mut ids = Vec::new();
    for rec in [&jira, &asana, &jira, &asana] {
        let mut uow = UnitOfWork::new(w.clone());
        uow.enqueue_push = Some((task.id, rec.id));
        ids.push(
            store
                .commit(uow)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
                .outbox,
        );
    }
    assert_eq!(ids[0], ids[2]);
    assert_eq!(ids[1], ids[3]);
    assert_ne!(ids[0], ids[1]);
    let pushes = store.pushes(&w).await.unwrap_or_default();
    assert_eq!(pushes.len(), 2);
    let integrations: HashSet<_> = pushes.iter().map(|p| p.integration_id).collect();
    assert_eq!(integrations, HashSet::from([jira.id, asana.id]));
}

/// Look-ups by id alone return the row with the workspace it belongs to; `workspaces` lists
/// every workspace with an integration or a task; a mapping is found by its object key.
pub async fn id_lookups_name_their_workspace(store: Arc<dyn Store>) {
    let a = ws("ids-a");
    let b = ws("ids-b");
    let rec = integration(&*store, &a).await;
    let task = insert_task(&*store, &b).await;
    let ev = store
        .insert_events(&[event(&rec, "i1", Some("OBJ"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"))[0]
        .id();
    let got = store
        .task(task.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("task by id"));
    assert_eq!(got.workspace_id, b);
    assert!(
        store
            .workspace_task(&a, task.id)
            .await
            .unwrap_or_default()
            .is_none()
    );
    let job = store
        .job(JobId::Event(ev))
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("event by id"));
    assert_eq!(job.workspace_id(), &a);
    assert!(matches!(job, Job::Event(ref e) if e.object_key.as_deref() == Some("OBJ")));
    assert!(store.event(&b, ev).await.unwrap_or_default().is_none());
    assert!(
        store
            .job(JobId::Push(ordonis_core::OutboxId(ev.0)))
            .await
            .unwrap_or_default()
            .is_none(),
        "ids are per queue"
    );

    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(store.workspaces().await.unwrap_or_default(), expected);

    let ext = ordonis_core::ExternalRef {
        integration_id: rec.id,
        provider: rec.provider.clone(),
        key: ordonis_core::ObjectKey::new("10001", "issue"),
        url: None,
    };
    let mapped = insert_task(&*store, &a).await;
    let mut uow = UnitOfWork::new(a.clone());
    uow.mapping = Some((ext, mapped.id));
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    let key = ObjectKey::new("10001", "issue");
    assert_eq!(
        store.find_mapping(rec.id, &key).await.unwrap_or_default(),
        Some(mapped.id)
    );
    let other = ObjectKey::new("10001", "epic");
    assert_eq!(
        store.find_mapping(rec.id, &other).await.unwrap_or_default(),
        None
    );
}

/// Tasks come in id order, a page at a time: keyset pages neither skip nor repeat a task,
/// and `all_tasks` reads them all.
pub async fn tasks_are_paged_in_id_order(store: Arc<dyn Store>) {
    let w = ws("pages");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(insert_task(&*store, &w).await.id);
    }
    insert_task(&*store, &ws("pages-other")).await;
    ids.sort();
    let mut seen = Vec::new();
    let mut page = TaskPage::first(2);
    loop {
        let got = store
            .tasks(&w, &page)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(got.len() <= 2);
        let Some(last) = got.last() else { break };
        page.after = Some(last.id);
        seen.extend(got.iter().map(|t| t.id));
    }
    assert_eq!(seen, ids);
    let all: Vec<_> = store
        .all_tasks(&w)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(all, ids);
}

/// A queue lists newest first, across workspaces when none is named, and filters by
/// workspace, integration and state.
pub async fn jobs_list_across_workspaces(store: Arc<dyn Store>) {
    let a = ws("list-a");
    let b = ws("list-b");
    let ra = integration(&*store, &a).await;
    let rb = integration(&*store, &b).await;
    for (rec, key) in [(&ra, "a1"), (&rb, "b1"), (&ra, "a2")] {
        store
            .insert_events(&[event(rec, key, None)])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let keys = |jobs: Vec<Job>| -> Vec<String> {
        jobs.into_iter()
            .filter_map(Job::into_event)
            .map(|e| e.dedupe_key)
            .collect()
    };
    let all = store
        .jobs(&JobFilter::new(Queue::Inbox))
        .await
        .unwrap_or_default();
    assert_eq!(
        keys(all),
        vec!["a2", "b1", "a1"],
        "newest first, every workspace"
    );
    let only_b = JobFilter {
        workspace_id: Some(b.clone()),
        ..JobFilter::new(Queue::Inbox)
    };
    assert_eq!(
        keys(store.jobs(&only_b).await.unwrap_or_default()),
        vec!["b1"]
    );
    let by_integration = JobFilter {
        integration_id: Some(ra.id),
        limit: 1,
        ..JobFilter::new(Queue::Inbox)
    };
    assert_eq!(
        keys(store.jobs(&by_integration).await.unwrap_or_default()),
        vec!["a2"]
    );
    let done = JobFilter {
        state: Some(JobState::Done),
        ..JobFilter::new(Queue::Inbox)
    };
    assert!(store.jobs(&done).await.unwrap_or_default().is_empty());
    assert!(
        store
            .jobs(&JobFilter::new(Queue::Outbox))
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// An update changes only the fields it names; an unknown integration is `NotFound`.
pub async fn integration_update_is_partial(store: Arc<dyn Store>) {
    let w = ws("update");
    let rec = integration(&*store, &w).await;
    let until = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let pause = IntegrationUpdate {
        paused_until: Some(Some(until)),
        ..IntegrationUpdate::default()
    };
    store
        .update_integration(rec.id, &pause)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let config = IntegrationUpdate {
        config: Some(serde_json::json!({"base_url": "http://127.0.0.1:10"})),
        ..IntegrationUpdate::default()
    };
    store
        .update_integration(rec.id, &config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = store
        .integration(rec.id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(got.config["base_url"], "http://127.0.0.1:10");
    assert_eq!(got.secrets, rec.secrets, "secrets untouched");
    let kept = got
        .paused_until
        .map(|p| (p - until).whole_milliseconds().abs() < 1);
    assert_eq!(kept, Some(true), "pause untouched");
    store
        .set_paused_until(rec.id, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = store.integration(rec.id).await.unwrap_or_default();
    assert_eq!(got.and_then(|g| g.paused_until), None);
    let err = store
        .update_integration(ordonis_core::IntegrationId::new(), &pause)
        .await;
    assert!(matches!(err, Err(StoreError::NotFound(_))), "{err:?}");
    let err = store
        .update_integration(
            ordonis_core::IntegrationId::new(),
            &IntegrationUpdate::default(),
        )
        .await;
    assert!(matches!(err, Err(StoreError::NotFound(_))), "{err:?}");
}

/// A verified delivery is stored on every store, NUL characters and all (PostgreSQL's `text`
/// and `jsonb` cannot hold NUL): the exact body is kept, a repeat is a duplicate, and the
/// event it makes is processed or failed at once: never retried, never lost.
pub async fn deliveries_with_nul_are_stored(store: Arc<dyn Store>) {
    let fake = Arc::new(crate::fake::FakeProvider::new(crate::harness::SECRET));
    let (engine, integration, ws) = crate::harness::engine_with_integration(
        store.clone(),
        &ordonis_core::FieldPolicy::default(),
        fake.clone(),
    )
    .await;
    let title = ordonis_core::FieldPatch::new().with(ordonis_core::FieldValue::Title(
        "nul \u{0} inside".to_owned(),
    ));
    fake.remote_create("OBJ\u{0}1", &title, "alice");
    let deliveries = fake.take_deliveries();
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert!(
        d.body.windows(6).any(|w| w == b"\\u0000"),
        "the body carries an escaped NUL"
    );
    for expected in [200, 200] {
        let r = engine
            .ingest(integration, &http::Method::POST, &d.headers, d.body.clone())
            .await;
        assert_eq!(r.status, expected, "{r:?}");
    }
    let events = store
        .events(&ws, &ordonis_core::EventFilter::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(events.len(), 1, "stored once");
    assert_eq!(events[0].body, d.body, "the exact bytes");
    assert!(events[0].object_key.is_some());
    let worker = ordonis_core::Worker::new(engine.clone(), ordonis_core::WorkerConfig::default());
    worker.drain().await.unwrap_or_else(|e| panic!("{e}"));
    let event = store
        .event(&ws, events[0].id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("gone"));
    assert!(
        matches!(event.state, JobState::Done | JobState::Failed) && event.attempts == 1,
        "processed or failed at once, not retried: {:?} after {} attempts ({:?})",
        event.state,
        event.attempts,
        event.last_error
    );
}

/// A paused or disabled integration's rows are not claimed; an integration change commits
/// with its ledger entry, only in the integration's own workspace.
pub async fn integration_state_and_change_commit(store: Arc<dyn Store>) {
    let w = ws("state");
    let rec = integration(&*store, &w).await;
    store
        .insert_events(&[event(&rec, "s1", Some("S"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for state in [
        ordonis_core::IntegrationState::Paused,
        ordonis_core::IntegrationState::Disabled,
    ] {
        let mut uow = UnitOfWork::new(w.clone());
        uow.integration = Some((
            rec.id,
            IntegrationUpdate {
                state: Some(state),
                ..IntegrationUpdate::default()
            },
        ));
        store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
        let got = store.integration(rec.id).await.unwrap_or_default();
        assert_eq!(got.map(|r| r.state), Some(state));
        assert!(
            store
                .claim(Queue::Inbox, &claim("w", 10, 60_000))
                .await
                .unwrap_or_default()
                .is_empty(),
            "{state:?}: not claimed"
        );
    }
    // From another workspace: refused, and its ledger entry is not written either.
    let other = ws("state-other");
    let task = Task::new(other.clone());
    let mut uow = UnitOfWork::new(other.clone());
    uow.ledger.push(draft(&task, 1));
    uow.integration = Some((
        rec.id,
        IntegrationUpdate {
            state: Some(ordonis_core::IntegrationState::Active),
            ..IntegrationUpdate::default()
        },
    ));
    let err = store.commit(uow).await;
    assert!(matches!(err, Err(StoreError::NotFound(_))), "{err:?}");
    assert_eq!(store.ledger_size(&other).await.unwrap_or(99), 0);
    let mut uow = UnitOfWork::new(w.clone());
    uow.integration = Some((
        rec.id,
        IntegrationUpdate {
            state: Some(ordonis_core::IntegrationState::Active),
            ..IntegrationUpdate::default()
        },
    ));
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .claim(Queue::Inbox, &claim("w", 10, 60_000))
            .await
            .unwrap_or_default()
            .len(),
        1,
        "active again: claimed"
    );
}

/// A unit of work with more ledger entries than one SQL statement holds (the SQL stores
/// insert them 512 at a time) appends every one, gapless and in order, alone and in a batch.
pub async fn a_unit_with_many_entries_appends_them_all_in_order(store: Arc<dyn Store>) {
    const N: usize = 1_100;
    let w = ws("many-entries");
    let title = |e: &ordonis_core::LedgerEntry| match &e.record.after {
        Some(ordonis_core::FieldValue::Title(t)) => t.clone(),
        other => format!("{other:?}"),
    };
    for (round, batched) in [(0usize, false), (1, true)] {
        let task = Task::new(w.clone());
        let mut uow = UnitOfWork::new(w.clone());
        uow.task = Some(TaskWrite {
            task: task.clone(),
            expected_revision: None,
        });
        uow.ledger = (0..N).map(|k| draft(&task, round * N + k)).collect();
        let receipt = if batched {
            let mut results = store
                .commit_batch(vec![uow])
                .await
                .unwrap_or_else(|e| panic!("batch: {e}"));
            results.remove(0).unwrap_or_else(|e| panic!("unit: {e}"))
        } else {
            store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"))
        };
        let first = (round * N) as u64;
        let idx: Vec<u64> = receipt.entries.iter().map(|e| e.idx).collect();
        assert_eq!(idx, (first..first + N as u64).collect::<Vec<_>>());
    }
    assert_eq!(store.ledger_size(&w).await.unwrap_or(0), 2 * N as u64);
    let stored = store
        .ledger_entries(&w, 0, 2 * N)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.len(), 2 * N);
    for (k, e) in stored.iter().enumerate() {
        assert_eq!(e.idx, k as u64);
        assert_eq!(title(e), format!("title {k}"), "entry {k}");
    }
}
