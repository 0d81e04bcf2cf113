//! The store conformance suite against `MemoryStore`.

use std::sync::Arc;

use ordonis_core::Store;
use ordonis_store_memory::MemoryStore;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(MemoryStore::new()))
}

ordonis_testkit::store_suite!(fresh);
