//! Ordonis testkit.
