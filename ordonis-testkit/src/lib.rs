//! Ordonis testkit: the conformance suites every store and provider adapter runs, an
//! in-memory store, and a scripted fake provider.
//!
//! - [`MemoryStore`]: a complete in-memory `Store` + `Ledger`.
//! - [`store_suite!`]: one `#[tokio::test]` per store conformance case.
//! - [`provider_suite`] with [`ProviderHarness`]: the provider conformance cases.
//! - [`FakeProvider`]: in-memory remote state that emits the webhooks a real provider would,
//!   with fault injection.
//! - [`prism::Prism`]: a Prism mock server for OpenAPI contract tests.

pub mod batch_property;
pub mod chaos;
pub mod fake;
pub mod fake_asana;
pub mod fake_jira;
pub mod fake_jira_search;
mod fake_jira_sync;
mod fake_jira_workflow;
pub mod harness;
mod in_flight;
pub mod jira_wiki;
pub mod ledger_e2e;
pub mod markdown_gen;
pub mod memory;
mod memory_sync;
pub mod prism;
pub mod provider_suite;
mod store_api_suite;
mod store_batch_suite;
pub mod store_suite;
mod store_sync_suite;

pub use fake::{FakeOptions, FakeProvider, Faults};
pub use memory::MemoryStore;
pub use provider_suite::ProviderHarness;
