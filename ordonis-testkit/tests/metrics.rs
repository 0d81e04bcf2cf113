//! The engine and its workers record their metrics themselves, through the `metrics` facade:
//! an embedder that installs any recorder gets them, with no wrapper around its providers.
//! One test in its own binary, as the recorder is the process's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use ordonis_core::metrics::{JOBS, PUSH_DURATION, PUSH_ERRORS, RATE_LIMIT_PAUSES, WEBHOOKS};
use ordonis_core::{Actor, FieldPatch, FieldPolicy, FieldValue, ProviderError, StoreExt, TaskId};
use ordonis_testkit::harness::Setup;

/// Running totals: a debugging snapshot drains what it reports, so every read adds the
/// deltas up.
#[derive(Default)]
struct Totals {
    counters: HashMap<(String, Vec<(String, String)>), u64>,
    timed: HashMap<String, usize>,
}

impl Totals {
    fn read(&mut self, s: &Snapshotter) {
        for (key, _, _, value) in s.snapshot().into_vec() {
            let k = key.key();
            let mut labels: Vec<(String, String)> = k
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            match value {
                DebugValue::Counter(n) if key.kind() == MetricKind::Counter => {
                    *self
                        .counters
                        .entry((k.name().to_owned(), labels))
                        .or_default() += n;
                }
                DebugValue::Histogram(v) => {
                    *self.timed.entry(k.name().to_owned()).or_default() += v.len();
                }
                _ => {}
            }
        }
    }

    fn counter(&mut self, s: &Snapshotter, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.read(s);
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.counters
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0)
    }

    fn timed_pushes(&mut self, s: &Snapshotter) -> usize {
        self.read(s);
        self.timed.get(PUSH_DURATION).copied().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_counts_deliveries_jobs_pushes_and_rate_limits() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder.install().unwrap();
    let mut t = Totals::default();

    let s = Setup::new(&FieldPolicy::default()).await;
    s.fake.remote_create(
        "OBJ-1",
        &FieldPatch::new().with(FieldValue::Title("first".into())),
        "alice",
    );
    let deliveries = s.fake.take_deliveries();
    let again = deliveries.clone();
    s.deliver(deliveries).await;
    s.deliver(again).await;
    assert_eq!(t.counter(&snap, WEBHOOKS, &[("outcome", "stored")]), 1);
    assert_eq!(t.counter(&snap, WEBHOOKS, &[("outcome", "duplicate")]), 1);
    // A delivery that fails its signature is counted as rejected.
    let resp = s
        .engine
        .ingest(
            s.integration,
            &http::Method::POST,
            &http::HeaderMap::new(),
            bytes::Bytes::from_static(b"{}"),
        )
        .await;
    assert_eq!(resp.status, 401);
    assert_eq!(t.counter(&snap, WEBHOOKS, &[("outcome", "rejected")]), 1);

    s.worker(0).drain().await.unwrap();
    assert_eq!(t.counter(&snap, JOBS, &[("result", "completed")]), 1);

    // A push, timed; then a push that fails for good, counted as an error.
    let task: TaskId = s.store.all_tasks(&s.workspace).await.unwrap()[0].id;
    let title = |t: &str| FieldPatch::new().with(FieldValue::Title(t.into()));
    s.engine
        .change_task(&s.workspace, task, &Actor::human("u"), &title("second"))
        .await
        .unwrap();
    s.worker(0).drain().await.unwrap();
    assert_eq!(t.timed_pushes(&snap), 1);
    assert_eq!(t.counter(&snap, PUSH_ERRORS, &[]), 0);
    s.fake.inject(|f| {
        f.next_calls
            .push_back(ProviderError::Terminal("gone for good".into()));
    });
    s.engine
        .change_task(&s.workspace, task, &Actor::human("u"), &title("third"))
        .await
        .unwrap();
    s.worker(0).drain().await.unwrap();
    assert_eq!(t.timed_pushes(&snap), 2);
    assert_eq!(t.counter(&snap, PUSH_ERRORS, &[]), 1);
    assert_eq!(t.counter(&snap, JOBS, &[("result", "failed")]), 1);

    // A rate limit pauses the integration, and is counted.
    s.fake.inject(|f| {
        f.next_calls.push_back(ProviderError::RateLimited {
            until: time::OffsetDateTime::now_utc() + Duration::from_secs(60),
            reason: "test".into(),
        });
    });
    s.engine
        .change_task(&s.workspace, task, &Actor::human("u"), &title("fourth"))
        .await
        .unwrap();
    s.worker(0).drain().await.unwrap();
    assert_eq!(t.counter(&snap, RATE_LIMIT_PAUSES, &[]), 1);
    assert_eq!(t.counter(&snap, JOBS, &[("result", "retried")]), 1);
}
