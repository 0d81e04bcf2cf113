//! Store-suite cases for units of work: all or nothing, one mapping per object, outbox
//! coalescing, workspace isolation, sealed secrets.

use ordonis_core::StoreExt;
use ordonis_core::store::{Completion, EventFilter, JobState, Store, TaskWrite, UnitOfWork};
use ordonis_core::{ExternalRef, Keyring, SecretKey, StoreError, Task};
use std::sync::Arc;

use super::fixtures::*;

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
