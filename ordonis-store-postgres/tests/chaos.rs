//! The repair loop's chaos run (`ordonis_testkit::chaos`) on a fresh PostgreSQL database per
//! seed: 20 seeds over the fake Jira and Asana on real HTTP, with the real adapters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::fresh_store;
use ordonis_testkit::chaos::ChaosProviders;

fn providers() -> ChaosProviders {
    ChaosProviders {
        jira: Arc::new(ordonis_jira::JiraProvider::new().expect("jira provider")),
        asana: Arc::new(ordonis_asana::AsanaProvider::new().expect("asana provider")),
    }
}

ordonis_testkit::chaos_suite!(fresh_store, providers);
