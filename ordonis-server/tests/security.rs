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
    // Per client: another address is not held back.
    let other = reqwest::Client::builder()
        .local_address(Some(std::net::IpAddr::from([127, 0, 0, 2])))
        .build()
        .unwrap();
    let r = other
        .get(api.url("/api/events"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

/// Point 7: deduplication is on what is signed. The same signed Jira body replayed under a
/// new (unsigned) `X-Atlassian-Webhook-Identifier` is a duplicate: one inbox row.
#[tokio::test]
async fn a_signed_body_replayed_under_a_new_delivery_id_is_a_duplicate() {
    let server = common::start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (id, url) = api.jira_integration("acme", &jira).await;
    let body = common::fixture("cloud_issue_updated_status_zulip.json");
    let mut answers = Vec::new();
    for delivery in ["d-1", "d-2"] {
        let r = api
            .http
            .post(&url)
            .header("x-hub-signature", common::sign(&body))
            .header("x-atlassian-webhook-identifier", delivery)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{delivery}");
        answers.push(r.json::<serde_json::Value>().await.unwrap());
    }
    assert_eq!(answers[0]["status"], "stored", "{answers:?}");
    assert_eq!(answers[1]["status"], "duplicate", "{answers:?}");
    assert_eq!(answers[0]["events"], answers[1]["events"]);
    let events = api.events(&format!("?integration_id={id}")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["delivery_id"], "d-1");
    // Another body under the first delivery id is not a duplicate of it.
    let mut other: serde_json::Value = serde_json::from_slice(&body).unwrap();
    other["timestamp"] = serde_json::json!(other["timestamp"].as_i64().unwrap() + 1);
    let other = serde_json::to_vec(&other).unwrap();
    let r = api
        .http
        .post(&url)
        .header("x-hub-signature", common::sign(&other))
        .header("x-atlassian-webhook-identifier", "d-1")
        .body(other)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "stored", "{v}");
    server.shutdown().await;
}

/// The size of a SQLite database with its WAL.
fn db_bytes(path: &std::path::Path) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum()
}

/// Point 1: nothing unauthenticated is stored. Both providers' webhook paths flooded with
/// unsigned bodies (Asana's padded "heartbeats" among them) store nothing: no inbox row, and
/// the database and its WAL do not grow. Only an exact heartbeat is answered `200`.
#[tokio::test]
async fn unsigned_floods_store_nothing() {
    let path = common::sqlite_path();
    let server = common::start_with(ordonis_server::Config::for_tests(
        path.to_string_lossy().into_owned(),
    ))
    .await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (_, jira_url) = api.jira_integration("acme", &jira).await;
    let (s, v) = api
        .post(
            "/api/integrations",
            &serde_json::json!({
                "workspace_id": "acme", "provider": "asana",
                "base_url": "http://127.0.0.1:9",
                "auth": {"type": "bearer", "token": "asana-token"},
                "webhook_secrets": ["asana-webhook-secret"],
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let asana_url = v["webhook_url"].as_str().unwrap().to_owned();
    let before = db_bytes(&path);
    let pad = "x".repeat(256 * 1024);
    let bodies = [
        format!(r#"{{"events":[],"pad":"{pad}"}}"#),
        format!(r#"{{"events":[]{}}}"#, " ".repeat(256 * 1024)),
        format!(r#"{{"events":[{{"pad":"{pad}"}}]}}"#),
        format!(r#"{{"webhookEvent":"jira:issue_updated","pad":"{pad}"}}"#),
    ];
    for _ in 0..5 {
        for url in [&asana_url, &jira_url] {
            for body in &bodies {
                let r = api.http.post(url).body(body.clone()).send().await.unwrap();
                assert_eq!(r.status(), 401, "{url} {body:.40}");
            }
            // An exact heartbeat: answered on Asana's path, still not stored.
            let r = api
                .http
                .post(url)
                .body(r#"{"events":[]}"#)
                .send()
                .await
                .unwrap();
            let expected = if url == &asana_url { 200 } else { 401 };
            assert_eq!(r.status(), expected, "{url}");
        }
    }
    assert_eq!(
        api.events("?workspace_id=acme").await,
        Vec::<serde_json::Value>::new()
    );
    let after = db_bytes(&path);
    assert!(
        after <= before + 64 * 1024,
        "the database grew from {before} to {after} bytes"
    );
    server.shutdown().await;
}

/// Point 10: look-alike workspace ids are refused at creation (400, naming `workspace_id`):
/// zero-width and bidi controls, Cyrillic look-alikes, a decomposed (non-NFC) accent; only
/// the documented character set is taken.
#[tokio::test]
async fn look_alike_workspace_ids_are_refused_at_creation() {
    let server = common::start_sqlite().await;
    let api = Api::new(&server);
    let create = |ws: &'static str| {
        let api = api.clone();
        async move {
            api.post(
                "/api/integrations",
                &serde_json::json!({
                    "workspace_id": ws, "provider": "asana",
                    "base_url": "http://127.0.0.1:9",
                    "auth": {"type": "bearer", "token": "asana-token"},
                    "webhook_secrets": ["asana-webhook-secret"],
                }),
            )
            .await
        }
    };
    for ws in [
        "acme\u{200b}", // zero-width space
        "\u{202e}emca", // right-to-left override
        "ac\u{2066}me", // left-to-right isolate
        "\u{0430}cme",  // Cyrillic а
        "acm\u{0435}",  // Cyrillic е
        "cafe\u{0301}", // e + combining acute (not NFC)
        "caf\u{00e9}",  // é, NFC but outside the set
        "ac me",
        "acme\u{feff}", // zero-width no-break space
    ] {
        let (s, v) = create(ws).await;
        assert_eq!(s, 400, "{ws:?}: {v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("workspace_id"), "{ws:?}: {message}");
    }
    let (s, v) = create("acme-corp_2.eu:prod@1").await;
    assert_eq!(s, 201, "{v}");
    let (_, v) = api
        .get("/api/integrations?workspace_id=acme-corp_2.eu:prod@1")
        .await;
    assert_eq!(v["integrations"].as_array().unwrap().len(), 1);
    server.shutdown().await;
}

/// Point 2: the handshake is armed, never open. An Asana integration created without a
/// webhook secret accepts a handshake only within the handshake window (shown in the API
/// and on its page); after it, an `X-Hook-Secret` from anyone is refused until the
/// integration is re-armed.
#[tokio::test]
async fn a_handshake_is_accepted_only_within_its_armed_window() {
    let server = common::start_on("sqlite", |c| {
        c.handshake_window = std::time::Duration::from_millis(500);
    })
    .await;
    let api = Api::new(&server);
    let (s, v) = api
        .post(
            "/api/integrations",
            &serde_json::json!({
                "workspace_id": "acme", "provider": "asana",
                "base_url": "http://127.0.0.1:9",
                "auth": {"type": "bearer", "token": "asana-token"},
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["integration_id"].as_str().unwrap().to_owned();
    let url = v["webhook_url"].as_str().unwrap().to_owned();
    let (_, v) = api.get(&format!("/api/integrations/{id}")).await;
    let until = time::OffsetDateTime::parse(
        v["handshake_until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    eventually("the handshake window to pass", || async {
        (time::OffsetDateTime::now_utc() > until).then_some(())
    })
    .await;
    let handshake = |secret: &'static str| {
        api.http
            .post(&url)
            .header("x-hook-secret", secret)
            .body("")
            .send()
    };
    let r = handshake("attacker-secret").await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("x-hook-secret").is_none());
    let (_, v) = api.get(&format!("/api/integrations/{id}")).await;
    assert_eq!(v["handshake_until"], serde_json::Value::Null);
    let cookie = api.sign_in().await;
    let page = api
        .ui_page(&cookie, &format!("/ui/integrations/{id}"))
        .await;
    assert!(page.contains("not accepted"), "{page}");
    // Re-armed: accepted within the new window, once; the page says until when.
    let (s, v) = api
        .post(
            &format!("/api/integrations/{id}/handshake"),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert!(v["handshake_until"].is_string(), "{v}");
    let page = api
        .ui_page(&cookie, &format!("/ui/integrations/{id}"))
        .await;
    assert!(page.contains("accepted until"), "{page}");
    let r = handshake("asana-issued-secret").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hook-secret"], "asana-issued-secret");
    let r = handshake("second-secret").await.unwrap();
    assert_eq!(r.status(), 401, "a second handshake");
    server.shutdown().await;
}
