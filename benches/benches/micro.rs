//! Criterion micro-benchmarks of the per-event work: payload verification, parsing and
//! normalization, the diff against a stored task under a field policy, VERA encoding, hashing,
//! roots and proofs, and the engine end to end on the in-memory store.
//!
//! `cargo bench -p ordonis-benches --bench micro` (CI compiles it with `cargo bench --no-run`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ordonis_benches::payload::JIRA_BODY;
use ordonis_core::field_merge::apply_remote;
use ordonis_core::ledger::LedgerEntry;
use ordonis_core::vera::{MerkleTree, encode_entry, leaf_hash, verify_inclusion};
use ordonis_core::{FieldPatch, FieldPolicy, FieldValue, SourceVersion, Task, WorkspaceId};
use ordonis_jira::webhook::{ParseContext, parse, sign, verify_signature};
use ordonis_testkit::harness::Setup;
use ordonis_testkit::store_suite::draft;

const SECRET: &str = "bench-webhook-secret";

fn payload(c: &mut Criterion) {
    let body = JIRA_BODY.as_bytes();
    let header = sign(SECRET, body);
    let secrets = vec!["old-secret".to_owned(), SECRET.to_owned()];
    let cx = || ParseContext {
        base_url: "https://example.atlassian.net",
        delivery_id: Some("dlv-1"),
    };
    let mut g = c.benchmark_group("jira_payload");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("verify_hmac_2_secrets", |b| {
        b.iter(|| verify_signature(black_box(&header), &secrets, black_box(body)).unwrap());
    });
    g.bench_function("parse_and_normalize", |b| {
        b.iter(|| parse(black_box(body), cx()).unwrap());
    });
    // Baselines in the same run: the floor under each step above.
    g.bench_function("baseline_serde_json_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap());
    });
    g.bench_function("baseline_hmac_sha256_once", |b| {
        b.iter(|| sign(SECRET, black_box(body)));
    });
    g.finish();

    // The diff: a snapshot applied to a stored task under the default policy.
    let hints = parse(body, cx()).unwrap();
    let remote = hints[0].snapshot.clone().unwrap().fields;
    let ws = WorkspaceId::new("bench").unwrap();
    let mut stored = Task::new(ws);
    stored.fields.title = "an older title".into();
    let policy = FieldPolicy::default();
    let mut g = c.benchmark_group("sync");
    g.bench_function("apply_remote_snapshot", |b| {
        b.iter_batched(
            || stored.clone(),
            |mut t| {
                apply_remote(
                    &mut t,
                    black_box(&remote),
                    &SourceVersion::new(1, "e"),
                    &policy,
                )
            },
            BatchSize::SmallInput,
        );
    });
    let one = FieldPatch::new().with(FieldValue::Title("new".into()));
    g.bench_function("apply_remote_one_field", |b| {
        b.iter_batched(
            || stored.clone(),
            |mut t| {
                apply_remote(
                    &mut t,
                    black_box(&one),
                    &SourceVersion::new(2, "e2"),
                    &policy,
                )
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn vera(c: &mut Criterion) {
    let ws = WorkspaceId::new("bench").unwrap();
    let task = Task::new(ws);
    let d = draft(&task, 1);
    let now = time::OffsetDateTime::now_utc();
    let bytes = encode_entry(&d, 42, now);
    let mut g = c.benchmark_group("vera");
    g.bench_function("encode_entry", |b| {
        b.iter(|| encode_entry(black_box(&d), 42, now));
    });
    g.bench_function("seal_entry (encode + leaf hash)", |b| {
        b.iter_batched(
            || d.clone(),
            |d| LedgerEntry::seal(d, 42, now),
            BatchSize::SmallInput,
        );
    });
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("leaf_hash", |b| b.iter(|| leaf_hash(black_box(&bytes))));
    g.finish();

    let leaves: Vec<_> = (0..100_000u32)
        .map(|i| leaf_hash(&i.to_be_bytes()))
        .collect();
    let tree = MerkleTree::from_leaves(leaves.iter().copied());
    let root = tree.root();
    let mut g = c.benchmark_group("vera_tree_100k");
    g.throughput(Throughput::Elements(leaves.len() as u64));
    g.sample_size(10);
    g.bench_function("build_and_root", |b| {
        b.iter(|| MerkleTree::from_leaves(leaves.iter().copied()).root());
    });
    g.finish();
    let mut g = c.benchmark_group("vera_proofs_100k");
    g.bench_function("inclusion_proof", |b| {
        b.iter(|| tree.inclusion_proof(black_box(77_777), 100_000).unwrap());
    });
    let proof = tree.inclusion_proof(77_777, 100_000).unwrap();
    g.bench_function("verify_inclusion", |b| {
        b.iter(|| verify_inclusion(&leaves[77_777], 77_777, 100_000, &proof, &root).unwrap());
    });
    g.bench_function("consistency_proof", |b| {
        b.iter(|| tree.consistency_proof(black_box(50_000), 100_000).unwrap());
    });
    g.finish();
}

/// Events per second through ingest → worker → task + ledger on the memory store.
fn engine(c: &mut Criterion) {
    const EVENTS: usize = 200;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("engine_memory_store");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    g.bench_function("ingest_process_200_events", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let s = Setup::new(&FieldPolicy::default()).await;
                for i in 0..EVENTS {
                    let obj = format!("OBJ-{}", i % 50);
                    if i < 50 {
                        let p = FieldPatch::new().with(FieldValue::Title(format!("t{i}")));
                        s.fake.remote_create(&obj, &p, "alice");
                    } else {
                        s.fake
                            .remote_edit(&obj, FieldValue::Title(format!("t{i}")), "alice");
                    }
                }
                let deliveries = s.fake.take_deliveries();
                let t = Instant::now();
                s.deliver(deliveries).await;
                s.worker(0).drain().await.unwrap();
                total += t.elapsed();
            }
            total
        });
    });
    g.finish();
}

criterion_group!(benches, payload, vera, engine);
criterion_main!(benches);
