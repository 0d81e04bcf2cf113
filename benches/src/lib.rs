//! Ordonis benchmarks: the shared pieces of the `stores`, `load` and `repair` binaries (raw-SQL baselines
//! through pgbench, the report written to `BENCHMARKS.md`) and the criterion micro-benchmarks in
//! `benches/`.
//!
//! Every figure is reported beside a baseline measured in the same run on the same machine, as
//! a ratio: absolute numbers on a shared 2-core machine mean little on their own.

pub mod fresh;
pub mod payload;
pub mod pgbench;
pub mod reads;
pub mod repair_site;
pub mod report;
