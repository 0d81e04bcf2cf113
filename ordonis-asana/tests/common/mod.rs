//! Shared test helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use http::{HeaderMap, HeaderValue};
use ordonis_core::{ApiAuth, IntegrationId, IntegrationSecrets, ProviderContext, WorkspaceId};

pub const SECRET: &str = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
pub const TOKEN: &str = "2/1234/5678:pat-test";

pub fn ctx(base_url: &str, options: serde_json::Value) -> ProviderContext {
    ProviderContext {
        integration_id: IntegrationId::new(),
        workspace_id: WorkspaceId::new("ws-test").unwrap(),
        base_url: base_url.to_owned(),
        secrets: IntegrationSecrets {
            api_auth: Some(ApiAuth::Bearer {
                token: TOKEN.into(),
            }),
            webhook_secrets: vec![SECRET.to_owned()],
            app_secret: None,
        },
        options,
        scope: serde_json::Value::Null,
    }
}

pub fn signed(body: &[u8], secret: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-hook-signature",
        HeaderValue::from_str(&ordonis_asana::webhook::sign(secret, body)).unwrap(),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The webhook bodies among the fixtures.
pub const WEBHOOK_FIXTURES: [&str; 2] = [
    "captured_task_changed_2019_gelisam.json",
    "heartbeat_empty_events.json",
];

/// A task as `GET /tasks/{gid}` returns it (`data`).
pub fn task_json(gid: &str, name: &str) -> serde_json::Value {
    serde_json::json!({
        "gid": gid, "resource_type": "task", "name": name, "notes": "Some text",
        "completed": false, "assignee": null, "due_on": null, "due_at": null,
        "custom_fields": [], "memberships": [],
        "modified_at": "2026-01-01T00:00:00.000Z",
        "permalink_url": format!("https://app.asana.com/0/0/{gid}")
    })
}

/// A host's webhook route: hands the request to `Engine::ingest` and answers as it says.
pub async fn receive(
    axum::extract::State((engine, id)): axum::extract::State<(ordonis_core::Engine, IntegrationId)>,
    method: http::Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let r = engine.ingest(id, &method, &headers, body).await;
    let mut resp = (http::StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}
