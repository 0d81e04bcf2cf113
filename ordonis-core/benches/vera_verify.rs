//! Verification speed on a generated 1,000,000-entry export (hash only and strict).
//!
//! Run with `cargo bench -p ordonis-core --bench vera_verify` (writes ~700 MB to the temp
//! directory; `VERA_BENCH_N` changes the size). Run in test mode (without `--bench`) it checks
//! a 1,000-entry export only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/data/vera/support.rs"]
mod support;

use std::io::BufWriter;
use std::process::Command;
use std::time::Instant;

use ordonis_core::ledger::LedgerEntry;
use ordonis_core::vera::{Checkpoint, CheckpointSigner, ExportWriter, RootBuilder, log_name};
use support::{Rng, at, draft, ws};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("VERA_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 1_000_000 } else { 1_000 });
    let w = ws("bench");
    let dir = std::env::temp_dir().join(format!("vera-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    let file = std::fs::File::create(dir.join("entries")).unwrap();
    let mut out = ExportWriter::new(BufWriter::with_capacity(1 << 20, file)).unwrap();
    let mut rng = Rng(7);
    let mut root = RootBuilder::new();
    let mut bytes = 0u64;
    for i in 0..n {
        let e = LedgerEntry::seal(draft(&mut rng, &w), i, at(1_790_000_000_000_000 + i as i64));
        out.push_with_leaf(&e.bytes, &e.leaf_hash).unwrap();
        root.push(&e.leaf_hash);
        bytes += e.bytes.len() as u64;
    }
    out.finish().unwrap();
    eprintln!(
        "generated {n} entries ({} MB, {:.0} B/entry) in {:?}",
        bytes / 1_000_000,
        bytes as f64 / n as f64,
        t.elapsed()
    );
    let signer = CheckpointSigner::from_seed(&[1; 32]);
    let cp = Checkpoint {
        origin: log_name(&w),
        size: n,
        root: root.root(),
    };
    std::fs::write(dir.join("checkpoint"), signer.sign(&cp).unwrap()).unwrap();
    let trust = dir.join("keys");
    std::fs::write(
        &trust,
        signer.verifier_keys(&cp.origin).unwrap()[0].to_string(),
    )
    .unwrap();
    for strict in [false, true] {
        let t = Instant::now();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vera"));
        cmd.arg("verify").arg(&dir).arg("--trust").arg(&trust);
        if strict {
            cmd.arg("--strict");
        }
        let out = cmd.output().unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "vera verify{} of {n} entries: {took:?} ({:.2} µs/entry)",
            if strict { " --strict" } else { "" },
            took.as_secs_f64() * 1e6 / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
