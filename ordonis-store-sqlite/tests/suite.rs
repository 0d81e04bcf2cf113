//! The testkit's store conformance suite, on a real SQLite file (WAL) and on `sqlite::memory:`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ordonis_core::Store;
use ordonis_store_sqlite::SqliteStore;

/// A fresh database file in the temp directory (left behind; named `ordonis-test-*.db`).
async fn fresh_file() -> Option<Arc<dyn Store>> {
    let path = std::env::temp_dir().join(format!("ordonis-test-{}.db", uuid::Uuid::now_v7()));
    let store = SqliteStore::connect(path.to_str().expect("utf-8 temp path"))
        .await
        .expect("open sqlite file");
    Some(Arc::new(store))
}

async fn fresh_memory() -> Option<Arc<dyn Store>> {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("open sqlite memory");
    Some(Arc::new(store))
}

mod file {
    ordonis_testkit::store_suite!(super::fresh_file);
}

mod memory {
    ordonis_testkit::store_suite!(super::fresh_memory);
}

/// Random batches with stale units and lost leases end as serial commits do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_equal_serial_commits() {
    let Some(store) = fresh_file().await else {
        return;
    };
    ordonis_testkit::batch_property::batches_equal_serial_commits(store, 32).await;
}
