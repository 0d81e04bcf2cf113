//! The points of security issue #31, each as an attacker would try it against a server on
//! its defaults (SQLite, real HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use common::{Api, eventually};
use ordonis_fakes::jira::FakeJira;

/// Log lines written to memory, for one test's thread-local subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Point 3: a rejected signature is logged with what was presented, bounded: a 200 KB
/// `X-Hub-Signature` makes a short WARN line (and a short 401 answer), its length noted.
#[tokio::test]
async fn a_huge_rejected_signature_makes_a_bounded_log_line() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // The test's runtime is single-threaded: the server's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = common::start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (_, url) = api.jira_integration("acme", &jira).await;
    let huge = format!("{}=00", "m".repeat(200_000));
    let r = api
        .http
        .post(&url)
        .header("x-hub-signature", &huge)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let answer = r.text().await.unwrap();
    assert!(answer.len() < 1024, "{} bytes answered", answer.len());
    assert!(answer.contains("(200000 bytes)"), "{answer}");
    let logs = eventually("the rejection's WARN line", || async {
        let text = captured.text();
        text.contains("ingest: webhook rejected").then_some(text)
    })
    .await;
    let line = logs
        .lines()
        .find(|l| l.contains("ingest: webhook rejected"))
        .unwrap();
    assert!(line.len() < 1024, "a {}-byte log line", line.len());
    assert!(line.contains("(200000 bytes)"), "{line}");
    for l in logs.lines() {
        assert!(l.len() < 1024, "a {}-byte log line", l.len());
    }
    server.shutdown().await;
}

/// Point 4: `/metrics` names integration ids (the unguessable part of webhook URLs), so it
/// answers only the admin token or the `--metrics-token`; the metrics token opens nothing
/// else.
#[tokio::test]
async fn metrics_need_the_admin_or_the_metrics_token() {
    const METRICS_TOKEN: &str = "prometheus-scrape-token";
    let server = common::start_on("sqlite", |c| {
        c.metrics_token = Some(METRICS_TOKEN.to_owned());
    })
    .await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (id, _) = api.jira_integration("acme", &jira).await;
    let get = |token: Option<&'static str>| {
        let mut rb = api.http.get(api.url("/metrics"));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    for token in [None, Some("not-the-metrics-token")] {
        let r = get(token).await.unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        let text = r.text().await.unwrap();
        assert!(!text.contains(&id), "{text}");
        assert!(!text.contains("ordonis_"), "{text}");
    }
    for token in [METRICS_TOKEN, common::TOKEN] {
        let r = get(Some(token)).await.unwrap();
        assert_eq!(r.status(), 200, "{token}");
        assert!(r.text().await.unwrap().contains("ordonis_inbox_rows"));
    }
    let r = api
        .http
        .get(api.url("/api/events"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the metrics token opened /api");
    server.shutdown().await;
    // A short metrics token is refused at start, as a short admin token is.
    let mut config =
        ordonis_server::Config::for_tests(common::sqlite_path().to_string_lossy().into_owned());
    config.metrics_token = Some("short".to_owned());
    let err = ordonis_server::Server::start(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ORDONIS_METRICS_TOKEN"), "{err}");
}

/// Point 5: wrong bearer tokens are throttled per client as UI sign-ins are: past the burst
/// `/api` (and `/metrics`) answer `429` with `Retry-After`, without checking the token, so
/// even the right one waits. A request without a token guesses nothing and is not counted.
#[tokio::test]
async fn wrong_bearer_tokens_are_throttled() {
    let server = common::start_sqlite().await;
    let api = Api::new(&server);
    for _ in 0..20 {
        let r = api.http.get(api.url("/api/events")).send().await.unwrap();
        assert_eq!(r.status(), 401, "no token");
    }
    let burst = ordonis_server::throttle::BEARER_FAILURE_BURST;
    for i in 0..burst {
        // Known routes, unknown ones and /metrics count together.
        let path = ["/api/events", "/api/nope", "/metrics"][i as usize % 3];
        let r = api
            .http
            .get(api.url(path))
            .bearer_auth(format!("guess-{i:04}-xxxxxxxxxx"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "guess {i} on {path}");
    }
    let r = api
        .http
        .get(api.url("/api/events"))
        .bearer_auth("one-guess-too-many")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After: {retry}");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_requests");
    // Blocked: even the right token waits, on /api and /metrics.
    for path in ["/api/events", "/metrics"] {
        let r = api
            .http
            .get(api.url(path))
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{path}");
        assert!(r.headers().contains_key("retry-after"));
    }
    server.shutdown().await;
}
