//! Shared test support: a server on a fresh SQLite file or PostgreSQL database, an admin
//! client, the fake Jira site wired to an integration, and polling.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use ordonis_fakes::jira::FakeJira;
use ordonis_server::{Config, Server};
use serde_json::{Value, json};

pub const TOKEN: &str = "test-admin-token";
pub const SECRET: &str = "jira-webhook-secret";

/// A fresh SQLite database file path (in its own directory).
pub fn sqlite_path() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ordonis-server-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ordonis.db")
}

pub async fn start_sqlite() -> Server {
    let path = sqlite_path();
    Server::start(&Config::for_tests(path.to_string_lossy().into_owned()))
        .await
        .unwrap()
}

/// A server for a test module: on `MemoryStore` when the module path ends in `memory`, else
/// on a fresh SQLite file; `tweak` adjusts the test configuration first.
pub async fn start_on(module: &str, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::for_tests(sqlite_path().to_string_lossy().into_owned());
    tweak(&mut config);
    if module.ends_with("memory") {
        let store = std::sync::Arc::new(ordonis_store_memory::MemoryStore::new());
        Server::start_on(&config, store).await.unwrap()
    } else {
        Server::start(&config).await.unwrap()
    }
}

pub async fn start_with(config: Config) -> Server {
    Server::start(&config).await.unwrap()
}

/// A fresh PostgreSQL database URL; `None` (skip) when the server is unreachable, unless
/// `ORDONIS_REQUIRE_PG=1`, which makes an unreachable server fail the test.
pub async fn pg_database() -> Option<(String, String)> {
    let url = std::env::var("ORDONIS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let require = std::env::var("ORDONIS_REQUIRE_PG").as_deref() == Ok("1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!("ordonis_test_{now}_{}", uuid::Uuid::now_v7().simple());
    match ordonis_store_postgres::create_database(&url, &name).await {
        Ok(()) => {}
        Err(e) if require => {
            panic!("ORDONIS_REQUIRE_PG=1 but PostgreSQL at {url} is unreachable: {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL at {url} is unreachable: {e}");
            return None;
        }
    }
    let mut u = reqwest::Url::parse(&url).unwrap();
    u.set_path(&format!("/{name}"));
    Some((u.to_string(), name))
}

pub async fn drop_pg(name: &str) {
    let url = std::env::var("ORDONIS_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let _ = ordonis_store_postgres::drop_database(&url, name).await;
}

/// A client for one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Self {
            base: server.url(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.get_text("/metrics").await.1
    }

    /// The value of one series (`name{labels}` as exported) in `/metrics`, or 0 when absent.
    /// The process's counters are shared by every server a test binary starts: compare a
    /// value before and after, never with a constant.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::PATCH, path, body).await
    }

    pub async fn delete(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_json(reqwest::Method::DELETE, path, body).await
    }

    async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a Jira integration in `ws` against the fake site; returns (id, webhook_url).
    pub async fn jira_integration(&self, ws: &str, jira: &FakeJira) -> (String, String) {
        let (s, v) = self
            .post(
                "/api/integrations",
                &json!({
                    "workspace_id": ws,
                    "provider": "jira",
                    "base_url": jira.base_url(),
                    "auth": {"type": "basic", "email": "bot@example.com", "api_token": "very-secret-api-token"},
                    "webhook_secrets": [SECRET],
                    "scope": {"jql": "project = HO"},
                    "backfill": false,
                }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["integration_id"].as_str().unwrap().to_owned();
        let url = v["webhook_url"].as_str().unwrap().to_owned();
        jira.set_webhook(url.clone(), SECRET);
        (id, url)
    }

    /// Every task of a workspace, in id order: follows `next_cursor` page by page (the API
    /// answers at most `limit` tasks at a time).
    pub async fn tasks(&self, ws: &str) -> Vec<Value> {
        self.tasks_where(ws, "").await
    }

    /// Every task of a workspace under extra query parameters (`&status=Done`), following
    /// `next_cursor` with them repeated.
    pub async fn tasks_where(&self, ws: &str, filters: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/tasks?workspace_id={ws}{filters}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (s, v) = self.get(&path).await;
            assert_eq!(s, 200, "{v}");
            out.extend(v["tasks"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    pub async fn events(&self, query: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/api/events{query}")).await;
        assert_eq!(s, 200, "{v}");
        v["events"].as_array().unwrap().clone()
    }
}

/// Polls `f` until it returns `Some`, for up to 20 s.
impl Api {
    /// Signs in to the console with the admin token; the `name=value` session cookie.
    pub async fn sign_in(&self) -> String {
        let r = self
            .http
            .post(self.url("/ui/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        set.split(';').next().unwrap().to_owned()
    }

    /// A console page as the signed-in `cookie` sees it (asserting `200`).
    pub async fn ui_page(&self, cookie: &str, path: &str) -> String {
        let r = self
            .http
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.text().await.unwrap()
    }
}

pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real Jira webhook body (`ordonis-fakes/fixtures/jira/`).
pub fn fixture(name: &str) -> Vec<u8> {
    ordonis_fakes::fixtures::jira(name).to_vec()
}

/// Signs a body as Jira does.
pub fn sign(body: &[u8]) -> String {
    ordonis_fakes::jira::sign(SECRET, body)
}
