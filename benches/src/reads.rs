//! The pieces of the load benchmark's read mode (`load --reads`): fake Jira sites whose
//! issues vary the way filters and searches need, latency samples summarised as median and
//! p95, and the peak RSS of a process.

use std::time::{Duration, Instant};

use ordonis_fakes::jira::{FakeJira, jira_time};
use serde_json::json;

use crate::pgbench::BenchError;

/// The word every [`NEEDLE_EVERY`]th seeded title carries: the title search looks for it, so
/// it matches 0.1% of the tasks (100 at N = 100,000).
pub const NEEDLE: &str = "needle";

/// One seeded issue in this many carries [`NEEDLE`] in its title.
pub const NEEDLE_EVERY: u64 = 1_000;

/// The statuses seeded issues cycle through (name, id, category key), so a status filter
/// selects a third of the tasks.
const STATUSES: [(&str, &str, &str); 3] = [
    ("To Do", "10000", "new"),
    ("In Progress", "3", "indeterminate"),
    ("Done", "10001", "done"),
];

/// The status name the filtered list asks for.
pub const FILTER_STATUS: &str = "In Progress";

/// The title of seeded issue `i` (numbered across all sites).
pub fn title(i: u64) -> String {
    if i % NEEDLE_EVERY == 7 {
        format!("Seeded issue {i} with a {NEEDLE} in it")
    } else {
        format!("Seeded issue {i}")
    }
}

/// A fake Jira site (real HTTP) holding issues `first..first + n` of project HO, last
/// updated a week ago. Several sites, each one integration, share a workspace's N tasks:
/// the fake copies and sorts its whole issue map for every search page, so one site of
/// 100,000 issues would make the listing, not Ordonis, the bound.
pub async fn seeded_site(first: u64, n: u64) -> Result<FakeJira, BenchError> {
    let jira = FakeJira::start().await?;
    let now_ms = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)?;
    let base = now_ms - 7 * 24 * 3600 * 1000;
    for i in first..first + n {
        let (name, id, category) = STATUSES[(i % 3) as usize];
        jira.insert_issue(json!({
            "id": (10_000 + i).to_string(),
            "key": format!("HO-{}", i + 1),
            "fields": {
                "summary": title(i),
                "status": {"id": id, "name": name, "statusCategory": {"key": category}},
                "priority": {"id": "3", "name": "Medium"},
                "assignee": null,
                "duedate": null,
                "project": {"id": "10000", "key": "HO"},
                "issuetype": {"id": "10001", "name": "Task"},
                "updated": jira_time(base + i64::try_from(i)?),
            }
        }));
    }
    Ok(jira)
}

/// Latency samples of one request kind.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Adds a sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p` quantile in ms (nearest rank), NaN without samples.
    pub fn quantile_ms(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return f64::NAN;
        }
        // Nearest rank: the smallest sample with at least p of the samples at or below it.
        let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1].as_secs_f64() * 1e3
    }

    /// The median in ms.
    pub fn median_ms(&self) -> f64 {
        self.quantile_ms(0.5)
    }

    /// The 95th percentile in ms.
    pub fn p95_ms(&self) -> f64 {
        self.quantile_ms(0.95)
    }
}

/// How many times to repeat a request: at least `min` samples, at most `max`, and no new
/// sample started after `budget` (so a request that takes seconds on a slow build is still
/// measured, only fewer times).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// At least this many samples.
    pub min: usize,
    /// At most this many.
    pub max: usize,
    /// No sample begun after this long, once `min` are taken.
    pub time: Duration,
}

impl Budget {
    /// Whether another sample is due, `taken` so far since `start`.
    pub fn more(&self, taken: usize, start: Instant) -> bool {
        taken < self.min || (taken < self.max && start.elapsed() < self.time)
    }
}

/// The peak resident set (`VmHWM`) of process `pid` in KiB, if it can be read.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A percent-encoded query value (the benchmark's own values: letters, digits, spaces).
pub fn enc(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A snake_case name of a serde unit variant (`set`, `inbound_event`), or `-`.
fn name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) | Err(_) => "-".to_owned(),
        Ok(other) => other.to_string(),
    }
}

/// The ledger of a workspace counted by what each entry records: op, field, outcome, cause,
/// and for a field entry whether its value changed (`unchanged`: the value after is the
/// value before, so the entry records no decision about the field). Most frequent first.
pub async fn ledger_census(
    store: &dyn ordonis_core::Store,
    ws: &ordonis_core::WorkspaceId,
) -> Result<Vec<(String, u64)>, BenchError> {
    let size = store.ledger_size(ws).await?;
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    let mut at = 0;
    while at < size {
        let page = store.ledger_entries(ws, at, 1_000).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            let r = &e.record;
            let change = match (&r.field, &r.before, &r.after) {
                (None, ..) => "",
                (Some(_), b, a) if b == a => ", unchanged",
                (Some(_), _, _) => ", changed",
            };
            let key = format!(
                "{} {} → {} (cause {}{change})",
                name(&r.op),
                r.field.as_ref().map_or_else(|| "-".to_owned(), name),
                name(&r.outcome),
                name(&r.cause.kind),
            );
            *counts.entry(key).or_default() += 1;
            at = e.idx + 1;
        }
    }
    let mut out: Vec<(String, u64)> = counts.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut s = Samples::default();
        for ms in [5u64, 1, 4, 2, 3] {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.median_ms(), 3.0);
        assert_eq!(s.p95_ms(), 5.0);
        assert!(Samples::default().median_ms().is_nan());
    }

    #[test]
    fn a_budget_takes_the_minimum_even_when_slow() {
        let b = Budget {
            min: 3,
            max: 10,
            time: Duration::ZERO,
        };
        let start = Instant::now();
        assert!(b.more(2, start));
        assert!(!b.more(3, start));
    }

    #[test]
    fn needles_are_rare_and_values_encoded() {
        let hits = (0..100_000).filter(|i| title(*i).contains(NEEDLE)).count();
        assert_eq!(hits, 100);
        assert_eq!(enc("In Progress"), "In%20Progress");
    }
}
