//! The repair loop's chaos run (`ordonis_testkit::chaos`) on the memory store: 20 seeds over
//! the fake Jira and Asana on real HTTP, with the real adapters. The SQL stores run the same
//! seeds from their own crates.

use std::sync::Arc;

use ordonis_core::Store;
use ordonis_store_memory::MemoryStore;
use ordonis_testkit::chaos::ChaosProviders;

async fn fresh() -> Option<Arc<dyn Store>> {
    Some(Arc::new(MemoryStore::new()))
}

fn providers() -> ChaosProviders {
    ChaosProviders {
        jira: Arc::new(
            ordonis_jira::JiraProvider::new().unwrap_or_else(|e| panic!("jira provider: {e}")),
        ),
        asana: Arc::new(
            ordonis_asana::AsanaProvider::new().unwrap_or_else(|e| panic!("asana provider: {e}")),
        ),
    }
}

ordonis_testkit::chaos_suite!(fresh, providers);
