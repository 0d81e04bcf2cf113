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

/// Witness cosignatures are kept per workspace, checkpoint size and witness key, the first
/// line a witness gives kept, listed by witness key; the tile cache keeps hashes by level and
/// position, the first one saved kept, and reads back only the stored ones of a range.
pub async fn cosignatures_and_tile_hashes_per_workspace(store: Arc<dyn Store>) {
    let w = ws("witnessed");
    let ok = |r: Result<(), ordonis_core::StoreError>| r.unwrap_or_else(|e| panic!("{e}"));
    ok(store
        .add_cosignature(&w, 5, "w1+0000000b", "b first\n")
        .await);
    ok(store
        .add_cosignature(&w, 5, "w1+0000000b", "b again\n")
        .await);
    ok(store.add_cosignature(&w, 5, "w0+0000000a", "a\n").await);
    ok(store
        .add_cosignature(&w, 6, "w1+0000000b", "b at 6\n")
        .await);
    let at = |size| {
        let store = store.clone();
        let w = w.clone();
        async move {
            store
                .cosignatures(&w, size)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(at(5).await, ["a\n", "b first\n"]);
    assert_eq!(at(6).await, ["b at 6\n"]);
    assert!(at(4).await.is_empty());
    let other = store
        .cosignatures(&ws("other"), 5)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(other.is_empty());

    let h = |i: u64| {
        let mut x = [0u8; 32];
        x[..8].copy_from_slice(&i.to_be_bytes());
        x
    };
    // 300 hashes: more than one statement's worth.
    let run: Vec<[u8; 32]> = (10..310).map(h).collect();
    ok(store.save_tile_hashes(&w, 1, 10, &run).await);
    ok(store.save_tile_hashes(&w, 1, 309, &[[9; 32], h(310)]).await);
    let read = |level, from, limit| {
        let store = store.clone();
        let w = w.clone();
        async move {
            store
                .tile_hashes(&w, level, from, limit)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let all = read(1, 0, 1000).await;
    assert_eq!(all.len(), 301);
    assert!(all.iter().all(|(i, x)| *x == h(*i)), "a stored hash moved");
    assert_eq!(
        read(1, 300, 5).await,
        (300..305).map(|i| (i, h(i))).collect::<Vec<_>>()
    );
    assert!(read(1, 0, 10).await.is_empty());
    assert!(read(2, 0, 1000).await.is_empty());
    let other = store
        .tile_hashes(&ws("other"), 1, 0, 1000)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(other.is_empty());
}
