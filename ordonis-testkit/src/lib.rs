//! Ordonis testkit: the conformance suites every store and provider adapter runs, a
//! scripted in-process fake provider, and the repair loop's chaos run.
//!
//! The in-memory store is its own crate, `ordonis-store-memory` (re-exported here as
//! [`MemoryStore`] for existing callers); the fake Jira and Asana HTTP servers and the real
//! webhook fixtures are `ordonis-fakes`.
//!
//! - [`store_suite!`]: one `#[tokio::test]` per store conformance case.
//! - [`provider_suite`](mod@provider_suite) with [`ProviderHarness`]: the provider conformance cases.
//! - [`FakeProvider`]: in-memory remote state that emits the webhooks a real provider would,
//!   with fault injection.
//! - [`prism::Prism`]: a Prism mock server for OpenAPI contract tests.

pub mod batch_property;
pub mod chaos;
pub mod fake;
pub mod harness;
pub mod ledger_e2e;
pub mod markdown_gen;
pub mod prism;
pub mod provider_suite;
pub mod store_suite;

pub use fake::{FakeOptions, FakeProvider, Faults};
pub use ordonis_store_memory::MemoryStore;
pub use provider_suite::ProviderHarness;
