//! The repair loop's chaos run (`ordonis_testkit::chaos`) on a SQLite file per seed: 20 seeds
//! over the fake Jira and Asana on real HTTP, with the real adapters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ordonis_core::Store;
use ordonis_store_sqlite::SqliteStore;
use ordonis_testkit::chaos::ChaosProviders;

async fn fresh() -> Option<Arc<dyn Store>> {
    let path = std::env::temp_dir().join(format!("ordonis-chaos-{}.db", uuid::Uuid::now_v7()));
    let store = SqliteStore::connect(path.to_str().expect("utf-8 temp path"))
        .await
        .expect("open sqlite file");
    Some(Arc::new(store))
}

fn providers() -> ChaosProviders {
    ChaosProviders {
        jira: Arc::new(ordonis_jira::JiraProvider::new().expect("jira provider")),
        asana: Arc::new(ordonis_asana::AsanaProvider::new().expect("asana provider")),
    }
}

ordonis_testkit::chaos_suite!(fresh, providers);
