//! The batch path against serial commits on the memory store (the SQL stores run the same
//! property from their own tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ordonis_store_memory::MemoryStore;
use ordonis_testkit::batch_property::batches_equal_serial_commits;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_batches_equal_serial_commits() {
    batches_equal_serial_commits(Arc::new(MemoryStore::new()), 64).await;
}
