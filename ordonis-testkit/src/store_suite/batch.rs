//! Store-suite cases for [`Store::commit_batch`]: a failing unit in the middle, a lease lost
//! mid-batch, batches racing for one workspace, and the refusals of the batch as a whole.

use std::sync::Arc;

use ordonis_core::{
    Completion, FieldValue, IntegrationRecord, JobState, Lease, LedgerEntry, Store, StoreError,
    StoreExt, Task, TaskWrite, UnitOfWork, WorkspaceId,
};

use super::fixtures::claim_when_free;
use super::{claim, draft, event, insert_task, integration, ws};

/// Inserts `n` events on distinct objects and claims them, returning their leases in claim
/// order.
async fn leased(store: &dyn Store, rec: &IntegrationRecord, tag: &str, n: usize) -> Vec<Lease> {
    let events: Vec<_> = (0..n)
        .map(|i| event(rec, &format!("{tag}-{i}"), Some(&format!("{tag}-obj-{i}"))))
        .collect();
    store
        .insert_events(&events)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let got = store
        .claim_events(&claim("batcher", n, 60_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.len(), n);
    got.into_iter()
        .map(|e| e.lease.unwrap_or_else(|| panic!("claimed without a lease")))
        .collect()
}

/// A unit that creates a task, with `entries` ledger entries titled `{tag} {k}`, completing
/// `lease`.
fn creating(
    ws: &WorkspaceId,
    tag: usize,
    entries: usize,
    lease: Option<Lease>,
) -> (Task, UnitOfWork) {
    let mut task = Task::new(ws.clone());
    task.revision = 1;
    let mut uow = UnitOfWork::new(ws.clone());
    uow.task = Some(TaskWrite {
        task: task.clone(),
        expected_revision: None,
    });
    uow.ledger = (0..entries).map(|k| draft(&task, tag * 100 + k)).collect();
    if let Some(lease) = lease {
        uow.completion = Completion::Done {
            lease,
            note: Some(format!("unit {tag}")),
        };
    }
    task.fields.title.clear();
    (task, uow)
}

fn title(e: &LedgerEntry) -> String {
    match &e.record.after {
        Some(FieldValue::Title(t)) => t.clone(),
        other => format!("{other:?}"),
    }
}

/// A unit that fails in the middle of a batch (its task moved on) writes nothing and is
/// reported alone; the units around it commit, their entries gapless and in unit order, and
/// their rows are done with their notes.
pub async fn batch_with_failing_unit_in_the_middle(store: Arc<dyn Store>) {
    let w = ws("batch-fail");
    let rec = integration(&*store, &w).await;
    let leases = leased(&*store, &rec, "bf", 3).await;
    let stale = insert_task(&*store, &w).await;
    let (a, ua) = creating(&w, 1, 2, Some(leases[0].clone()));
    let (c, uc) = creating(&w, 3, 3, Some(leases[2].clone()));
    let mut ub = UnitOfWork::new(w.clone());
    let mut moved = stale.clone();
    moved.fields.title = "never".into();
    moved.revision = 9;
    ub.task = Some(TaskWrite {
        task: moved,
        expected_revision: Some(8),
    });
    ub.enqueue_push = Some((stale.id, rec.id));
    ub.ledger.push(draft(&stale, 200));
    ub.completion = Completion::Done {
        lease: leases[1].clone(),
        note: None,
    };

    let results = store
        .commit_batch(vec![ua, ub, uc])
        .await
        .unwrap_or_else(|e| panic!("batch: {e}"));
    assert_eq!(results.len(), 3);
    let idx = |r: &Result<ordonis_core::CommitReceipt, StoreError>| -> Vec<u64> {
        r.as_ref()
            .map(|r| r.entries.iter().map(|e| e.idx).collect())
            .unwrap_or_default()
    };
    assert_eq!(idx(&results[0]), vec![0, 1]);
    assert!(
        matches!(results[1], Err(StoreError::Conflict(_))),
        "{:?}",
        results[1]
    );
    assert_eq!(
        idx(&results[2]),
        vec![2, 3, 4],
        "gapless across the failed unit"
    );

    assert!(store.task(a.id).await.unwrap_or_default().is_some());
    assert!(store.task(c.id).await.unwrap_or_default().is_some());
    let kept = store.task(stale.id).await.unwrap_or_default();
    assert_eq!(kept.map(|t| t.fields.title), Some("first".to_owned()));
    assert!(
        store.pushes(&w).await.unwrap_or_default().is_empty(),
        "the failed unit's push was rolled back"
    );
    let entries = store.ledger_entries(&w, 0, 100).await.unwrap_or_default();
    let titles: Vec<String> = entries.iter().map(title).collect();
    assert_eq!(
        titles,
        [
            "title 100",
            "title 101",
            "title 300",
            "title 301",
            "title 302"
        ]
    );
    for (lease, (state, note)) in leases.iter().zip([
        (JobState::Done, Some("unit 1")),
        (JobState::Processing, None),
        (JobState::Done, Some("unit 3")),
    ]) {
        let row = store
            .event(&w, ordonis_core::EventId(lease.row))
            .await
            .unwrap_or_default()
            .unwrap_or_else(|| panic!("row gone"));
        assert_eq!(row.state, state, "{}", lease.row);
        if state == JobState::Done {
            assert_eq!(row.last_error.as_deref(), note);
        }
    }
    assert_eq!(store.ledger_size(&w).await.unwrap_or(0), 5);
}

/// A lease taken over mid-batch refuses its unit (`LeaseLost`, nothing of it written) and
/// leaves the row to its new owner; the rest of the batch commits.
pub async fn batch_with_lease_lost_mid_batch(store: Arc<dyn Store>) {
    let w = ws("batch-lease");
    let rec = integration(&*store, &w).await;
    let leases = leased(&*store, &rec, "bl", 3).await;
    // Another worker holds the middle row now (its lease expired and was taken over).
    let mut lost = leases[1].clone();
    lost.owner = "a-worker-that-lost-it".into();
    let (a, ua) = creating(&w, 1, 1, Some(leases[0].clone()));
    let (b, ub) = creating(&w, 2, 1, Some(lost));
    let (c, uc) = creating(&w, 3, 1, Some(leases[2].clone()));
    let results = store
        .commit_batch(vec![ua, ub, uc])
        .await
        .unwrap_or_else(|e| panic!("batch: {e}"));
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(StoreError::LeaseLost(_))),
        "{:?}",
        results[1]
    );
    assert!(store.task(a.id).await.unwrap_or_default().is_some());
    assert!(store.task(b.id).await.unwrap_or_default().is_none());
    assert!(store.task(c.id).await.unwrap_or_default().is_some());
    let row = store
        .event(&w, ordonis_core::EventId(leases[1].row))
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("row gone"));
    assert_eq!(row.state, JobState::Processing);
    assert_eq!(
        row.lease.map(|l| l.owner),
        Some(leases[1].owner.clone()),
        "still the real owner's"
    );
    let entries = store.ledger_entries(&w, 0, 100).await.unwrap_or_default();
    assert_eq!(
        entries.iter().map(title).collect::<Vec<_>>(),
        ["title 100", "title 300"]
    );
}

/// Batches racing for one workspace (some with failing units) leave one gapless log in which
/// each batch's entries are contiguous and in unit order.
pub async fn batches_racing_for_one_workspace(store: Arc<dyn Store>) {
    let w = ws("batch-race");
    let mut handles = Vec::new();
    for b in 0..6usize {
        let store = store.clone();
        let w = w.clone();
        handles.push(tokio::spawn(async move {
            let stale = insert_task(&*store, &w).await;
            let mut units = Vec::new();
            for u in 0..8usize {
                if u % 4 == 3 {
                    let mut uow = UnitOfWork::new(w.clone());
                    let mut t = stale.clone();
                    t.revision = 40;
                    uow.task = Some(TaskWrite {
                        task: t,
                        expected_revision: Some(39),
                    });
                    uow.ledger.push(draft(&stale, 9_999));
                    units.push(uow);
                } else {
                    units.push(creating(&w, b * 10 + u, 2, None).1);
                }
            }
            let results = store
                .commit_batch(units)
                .await
                .unwrap_or_else(|e| panic!("batch {b}: {e}"));
            let idx: Vec<u64> = results
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .flat_map(|r| r.entries.iter().map(|e| e.idx))
                .collect();
            assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
            idx
        }));
    }
    let mut total = 0;
    for h in handles {
        let idx = h.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(idx.len(), 12);
        assert!(
            idx.windows(2).all(|p| p[1] == p[0] + 1),
            "a batch's entries are contiguous: {idx:?}"
        );
        total += idx.len();
    }
    let entries = store.ledger_entries(&w, 0, 1_000).await.unwrap_or_default();
    assert_eq!(entries.len(), total);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.idx, i as u64, "gap or reorder at {i}");
        assert_eq!(e.leaf_hash, ordonis_core::vera::leaf_hash(&e.bytes));
        assert_ne!(title(e), "title 9999", "a failed unit's entry was appended");
    }
    assert_eq!(store.ledger_size(&w).await.unwrap_or(0), total as u64);
}

/// A batch naming two workspaces is refused whole (`Invalid`, nothing written); an empty
/// batch is nothing.
pub async fn batch_of_two_workspaces_is_refused(store: Arc<dyn Store>) {
    let a = ws("batch-two-a");
    let b = ws("batch-two-b");
    let (ta, ua) = creating(&a, 1, 1, None);
    let (_, ub) = creating(&b, 2, 1, None);
    let err = store.commit_batch(vec![ua, ub]).await.err();
    assert!(matches!(err, Some(StoreError::Invalid(_))), "{err:?}");
    assert!(store.task(ta.id).await.unwrap_or_default().is_none());
    assert_eq!(store.ledger_size(&a).await.unwrap_or(99), 0);
    let none = store
        .commit_batch(Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty());
}

/// `mapped_tasks` answers per key, in order, as `find_mapping` + `task` would: the mapped
/// task, `None` for an unmapped key, a key of another integration, or a task of another
/// workspace.
pub async fn mapped_tasks_answer_per_key(store: Arc<dyn Store>) {
    let w = ws("mapped");
    let other_ws = ws("mapped-other");
    let rec = integration(&*store, &w).await;
    let other_rec = integration(&*store, &other_ws).await;
    let mut mapped = Vec::new();
    for (n, (r, space)) in [(&rec, &w), (&rec, &w), (&other_rec, &other_ws)]
        .into_iter()
        .enumerate()
    {
        let mut t = Task::new(space.clone());
        t.fields.title = format!("mapped {n}");
        t.revision = 1;
        let link = ordonis_core::ExternalRef {
            integration_id: r.id,
            provider: r.provider.clone(),
            key: ordonis_core::ObjectKey::new(format!("K-{n}"), "issue"),
            url: None,
        };
        t.external.push(link.clone());
        let mut uow = UnitOfWork::new(space.clone());
        uow.task = Some(TaskWrite {
            task: t.clone(),
            expected_revision: None,
        });
        uow.mapping = Some((link, t.id));
        store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
        mapped.push(t);
    }
    let key = |k: &str| ordonis_core::ObjectKey::new(k, "issue");
    let got = store
        .mapped_tasks(
            &w,
            rec.id,
            &[
                key("K-1"),
                key("nope"),
                key("K-0"),
                key("K-2"),
                ordonis_core::ObjectKey::new("K-0", "story"),
            ],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let titles: Vec<Option<String>> = got.into_iter().map(|t| t.map(|t| t.fields.title)).collect();
    assert_eq!(
        titles,
        [
            Some("mapped 1".to_owned()),
            None,
            Some("mapped 0".to_owned()),
            None,
            None
        ]
    );
    // Another workspace's task is not answered even under its own integration's key.
    let cross = store
        .mapped_tasks(&w, other_rec.id, &[key("K-2")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cross.len(), 1);
    assert!(cross[0].is_none());
    assert!(
        store
            .mapped_tasks(&w, rec.id, &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
}

/// The batch fence checks the attempt, not only the owner: a worker that re-claimed its own
/// expired row (attempt 2) cannot complete it with the lease of attempt 1, in a batch or
/// alone, so the row is completed once, by the live lease.
pub async fn batch_refuses_an_earlier_attempt_of_the_same_owner(store: Arc<dyn Store>) {
    let w = ws("batch-attempt");
    let rec = integration(&*store, &w).await;
    store
        .insert_events(&[event(&rec, "ba-1", Some("ba-obj"))])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = claim_when_free(&*store, "same", 50, std::time::Duration::from_secs(10)).await;
    let old = first[0].lease.clone().unwrap_or_else(|| panic!("no lease"));
    // The same worker claims the row again once its lease has expired.
    let again = claim_when_free(&*store, "same", 60_000, std::time::Duration::from_secs(10)).await;
    assert_eq!(again[0].id, first[0].id);
    let new = again[0].lease.clone().unwrap_or_else(|| panic!("no lease"));
    assert_eq!(new.owner, old.owner);
    assert_eq!(new.attempt, old.attempt + 1);

    let (stale, ustale) = creating(&w, 1, 1, Some(old.clone()));
    let results = store
        .commit_batch(vec![ustale])
        .await
        .unwrap_or_else(|e| panic!("batch: {e}"));
    assert!(
        matches!(results[0], Err(StoreError::LeaseLost(_))),
        "attempt {} completed a row now at attempt {}: {:?}",
        old.attempt,
        new.attempt,
        results[0].as_ref().map(|_| "committed")
    );
    let (_, alone) = creating(&w, 2, 1, Some(old));
    let err = store.commit(alone).await.err();
    assert!(matches!(err, Some(StoreError::LeaseLost(_))), "{err:?}");
    assert!(store.task(stale.id).await.unwrap_or_default().is_none());
    assert_eq!(store.ledger_size(&w).await.unwrap_or(0), 0);

    let (live, ulive) = creating(&w, 3, 1, Some(new));
    let results = store
        .commit_batch(vec![ulive])
        .await
        .unwrap_or_else(|e| panic!("batch: {e}"));
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(store.task(live.id).await.unwrap_or_default().is_some());
    let row = store
        .event(&w, first[0].id)
        .await
        .unwrap_or_default()
        .unwrap_or_else(|| panic!("row gone"));
    assert_eq!(row.state, JobState::Done);
    assert_eq!(row.last_error.as_deref(), Some("unit 3"));
    assert_eq!(store.ledger_size(&w).await.unwrap_or(0), 1);
}
