//! The testkit's store conformance suite against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fresh_store;

ordonis_testkit::store_suite!(fresh_store);

/// Random batches with stale units and lost leases end as serial commits do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_equal_serial_commits() {
    let Some(store) = fresh_store().await else {
        return;
    };
    ordonis_testkit::batch_property::batches_equal_serial_commits(store, 32).await;
}
