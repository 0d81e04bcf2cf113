//! Store-suite cases for the ledger: gapless indexes under concurrency, checkpoints, and the
//! secret-key check record.

use ordonis_core::store::{Store, TaskWrite, UnitOfWork};
use std::sync::Arc;

use super::fixtures::*;

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
