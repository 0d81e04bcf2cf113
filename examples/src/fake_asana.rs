//! A small fake Asana API over real HTTP, for the demo and the tests: `GET`/`PUT
//! /api/1.0/tasks/{gid}`, the `X-Hook-Secret` handshake, signed compact events, and the echo
//! of a change made through the API (as Asana's webhook would send it).
//!
//! The testkit has a fake Jira site (`ordonis_testkit::fake_jira`); when it gains a fake
//! Asana server, the demo should switch to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Debug, Default)]
struct Inner {
    tasks: Mutex<HashMap<String, Value>>,
    hook: Mutex<Option<(String, String)>>,
    puts: AtomicU64,
    deliveries: AtomicU64,
}

/// A running fake Asana API.
#[derive(Debug)]
pub struct FakeAsana {
    inner: Arc<Inner>,
    /// Its base URL (`http://127.0.0.1:<port>/api/1.0`).
    pub base_url: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `X-Hook-Signature`: lowercase hex HMAC-SHA256 of the body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl FakeAsana {
    /// Starts on `127.0.0.1:0`.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/api/1.0/tasks/{gid}", get(get_task).put(put_task))
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            inner,
            base_url: format!("http://{addr}/api/1.0"),
        })
    }

    /// Adds a task.
    pub fn insert_task(&self, gid: &str, name: &str) {
        lock(&self.inner.tasks).insert(
            gid.to_owned(),
            json!({
                "gid": gid, "resource_type": "task", "name": name, "notes": "From Asana",
                "completed": false, "assignee": null, "due_on": null, "due_at": null,
                "custom_fields": [], "memberships": [], "parent": null,
                "modified_at": now(),
                "permalink_url": format!("https://app.asana.com/0/0/{gid}"),
            }),
        );
    }

    /// A task.
    pub fn task(&self, gid: &str) -> Option<Value> {
        lock(&self.inner.tasks).get(gid).cloned()
    }

    /// `PUT`s served.
    pub fn puts(&self) -> u64 {
        self.inner.puts.load(Ordering::SeqCst)
    }

    /// Webhooks sent.
    pub fn deliveries(&self) -> u64 {
        self.inner.deliveries.load(Ordering::SeqCst)
    }

    /// Asana's handshake: POST with `X-Hook-Secret`; the receiver must echo it.
    /// Changes a task as a person in Asana (`changes` as `PUT` takes them) and sends the
    /// compact event. Returns the receiver's status (0 when there is no webhook or task).
    pub async fn change_task(&self, gid: &str, changes: &Value) -> u16 {
        {
            let mut tasks = lock(&self.inner.tasks);
            let Some(t) = tasks.get_mut(gid).and_then(Value::as_object_mut) else {
                return 0;
            };
            if let Some(c) = changes.as_object() {
                for (k, v) in c {
                    t.insert(k.clone(), v.clone());
                }
            }
            t.insert("modified_at".into(), Value::String(now()));
        }
        deliver(
            &self.inner,
            event(gid, "human-user").to_string().into_bytes(),
        )
        .await
    }

    /// Returns the status and the echoed header.
    pub async fn handshake(
        &self,
        url: &str,
        secret: &str,
    ) -> Result<(u16, Option<String>), String> {
        let r = reqwest::Client::new()
            .post(url)
            .header("x-hook-secret", secret)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let echoed = r
            .headers()
            .get("x-hook-secret")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if r.status() == 200 && echoed.as_deref() == Some(secret) {
            *lock(&self.inner.hook) = Some((url.to_owned(), secret.to_owned()));
        }
        Ok((r.status().as_u16(), echoed))
    }

    /// Sends a body signed with the handshake's secret.
    pub async fn deliver(&self, body: &[u8]) -> u16 {
        deliver(&self.inner, body.to_vec()).await
    }
}

async fn deliver(inner: &Inner, body: Vec<u8>) -> u16 {
    let Some((url, secret)) = lock(&inner.hook).clone() else {
        return 0;
    };
    inner.deliveries.fetch_add(1, Ordering::SeqCst);
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-hook-signature", sign(&secret, &body))
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn event(gid: &str, user: &str) -> Value {
    json!({"events": [{
        "action": "changed", "created_at": now(), "parent": null,
        "resource": {"gid": gid, "resource_type": "task", "resource_subtype": "default_task"},
        "user": {"gid": user, "resource_type": "user"},
        "change": {"action": "changed", "field": "name"}
    }]})
}

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
}

async fn get_task(State(s): State<Arc<Inner>>, Path(gid): Path<String>, h: HeaderMap) -> Response {
    if !authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let task = lock(&s.tasks).get(&gid).cloned();
    match task {
        Some(t) => Json(json!({"data": t})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"errors": [{"message": "Not found"}]})),
        )
            .into_response(),
    }
}

async fn put_task(
    State(s): State<Arc<Inner>>,
    Path(gid): Path<String>,
    h: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    s.puts.fetch_add(1, Ordering::SeqCst);
    let updated = {
        let mut tasks = lock(&s.tasks);
        let Some(t) = tasks.get_mut(&gid) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if let (Some(t), Some(data)) = (t.as_object_mut(), body["data"].as_object()) {
            for (k, v) in data {
                t.insert(k.clone(), v.clone());
            }
            t.insert("modified_at".into(), Value::String(now()));
        }
        t.clone()
    };
    let echo = event(&gid, "api-user");
    let inner = s.clone();
    tokio::spawn(async move {
        deliver(&inner, echo.to_string().into_bytes()).await;
    });
    Json(json!({"data": updated})).into_response()
}
