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
