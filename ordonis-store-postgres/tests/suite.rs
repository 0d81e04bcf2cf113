//! The testkit's store conformance suite against a real PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fresh_store;

ordonis_testkit::store_suite!(fresh_store);
