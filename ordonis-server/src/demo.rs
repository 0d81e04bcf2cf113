//! `--demo` (cargo feature `demo`): a demo workspace whose Jira and Asana integrations talk
//! to in-process fake servers (`ordonis-fakes`' [`FakeJira`] and [`FakeAsana`]), fed the real
//! fixture payloads through the real signed webhook path (Asana after its handshake).
//!
//! Edits made in the UI or with `PATCH /api/tasks/{id}` are pushed to the fake site, which
//! echoes them back as Jira and Asana do; the echo confirms the change and starts no new push.

use ordonis_fakes::asana::FakeAsana;
use ordonis_fakes::fixtures;
use ordonis_fakes::jira::FakeJira;
use serde_json::{Value, json};

use crate::app::Server;

/// The demo workspace's id.
pub const WORKSPACE: &str = "demo";

/// The database `--demo` uses when `ORDONIS_DATABASE_URL` is not set: its own file, reset at
/// each start (the fakes live only as long as the process), beside which the admin token and
/// secret key are kept across runs.
pub const DATABASE: &str = "./ordonis-demo.db";

/// Removes a demo database file and its WAL and shared-memory files (not the token and key
/// files beside it).
pub fn reset_database(path: &std::path::Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(std::path::PathBuf::from(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The Jira fixtures sent at start-up, by name: real Jira Cloud deliveries, from
/// `ordonis-fakes/fixtures/jira/` (see its `SOURCES.md`) through [`ordonis_fakes::fixtures`].
pub const JIRA_FIXTURES: [&str; 3] = [
    "cloud_issue_created_kan22.json",
    "cloud_issue_updated_description_kan22.json",
    "cloud_issue_updated_status_zulip.json",
];

/// The Asana fixture sent at start-up: a real compact event, from
/// `ordonis-fakes/fixtures/asana/` (see its `SOURCES.md`).
pub const ASANA_FIXTURE: &str = "captured_task_changed_2019_gelisam.json";
/// The task the Asana fixture is about.
pub const ASANA_TASK_GID: &str = "1154849068499809";

/// The e-mail the demo's Jira integration signs in to the fake Jira with.
pub const JIRA_EMAIL: &str = "demo@example.com";

/// The API token the demo's Jira integration uses with the fake Jira.
pub const JIRA_TOKEN: &str = "demo-token";

/// The bearer token the demo's Asana integration uses with the fake Asana.
pub const ASANA_TOKEN: &str = "demo-asana-token";

/// The running demo: keep it alive as long as the server.
#[derive(Debug)]
pub struct Demo {
    /// The fake Jira site.
    pub jira: FakeJira,
    /// The Jira integration's id.
    pub jira_integration: String,
    /// The fake Asana API.
    pub asana: FakeAsana,
    /// The Asana integration's id.
    pub asana_integration: String,
    /// The webhook secret the fake Jira signs its deliveries with (random per run).
    pub jira_webhook_secret: String,
    /// What could not be set up (e.g. an adapter missing from this build).
    pub notes: Vec<String>,
}

impl Demo {
    /// What the demo prints: where each fake is and the fake credentials the integrations
    /// use with them (nothing real: the fakes accept only these).
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "Fake Jira:  {}  (integration {}; basic auth {JIRA_EMAIL} / {JIRA_TOKEN}; \
                 webhook secret {})",
                self.jira.base_url(),
                self.jira_integration,
                self.jira_webhook_secret
            ),
            format!(
                "Fake Asana: {}  (integration {}; bearer token {ASANA_TOKEN})",
                self.asana.base_url(),
                self.asana_integration
            ),
        ]
    }
}

/// Creates an integration through the API; returns its `(integration_id, webhook_url)`.
async fn create_integration(
    http: &reqwest::Client,
    server: &Server,
    body: &Value,
) -> Result<(String, String), String> {
    let resp = http
        .post(format!("{}/api/integrations", server.url()))
        .bearer_auth(&server.admin_token.value)
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    if status.as_u16() != 201 {
        return Err(format!("creating the integration answered {status}: {v}"));
    }
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(format!("no {name} in {v}"))
    };
    Ok((field("integration_id")?, field("webhook_url")?))
}

/// Sets the demo up against a started server (which must allow any provider URL).
pub async fn setup(server: &Server) -> Result<Demo, String> {
    let http = reqwest::Client::new();
    let jira = FakeJira::start().await.map_err(|e| e.to_string())?;
    let secret = hex::encode(rand::random::<[u8; 16]>());
    let (id, url) = create_integration(
        &http,
        server,
        &json!({
            "workspace_id": WORKSPACE,
            "provider": "jira",
            "base_url": jira.base_url(),
            "auth": {"type": "basic", "email": JIRA_EMAIL, "api_token": JIRA_TOKEN},
            "webhook_secrets": [secret],
            "scope": {"jql": "project = HO"},
            "backfill": false,
        }),
    )
    .await?;
    jira.set_webhook(url, secret.clone());
    for name in JIRA_FIXTURES {
        let status = jira.deliver(fixtures::jira(name)).await?;
        if status != 200 {
            return Err(format!("fixture {name} answered {status}"));
        }
    }
    // Asana: the integration starts out expecting its handshake; then a real compact event.
    let asana = FakeAsana::start(ASANA_TOKEN)
        .await
        .map_err(|e| e.to_string())?;
    asana.insert_task(ASANA_TASK_GID, "Draft the launch announcement");
    // Its link leads to the fake, which serves it (not to app.asana.com).
    asana.set_permalink(ASANA_TASK_GID, &asana.permalink(ASANA_TASK_GID));
    let (asana_id, url) = create_integration(
        &http,
        server,
        &json!({
            "workspace_id": WORKSPACE,
            "provider": "asana",
            "base_url": asana.base_url(),
            "auth": {"type": "bearer", "token": ASANA_TOKEN},
        }),
    )
    .await?;
    asana
        .register_webhook(ASANA_TASK_GID, &url)
        .await
        .map_err(|e| format!("the Asana webhook: {e}"))?;
    if asana.deliver_raw(fixtures::asana(ASANA_FIXTURE)).await != 1 {
        return Err("the Asana fixture was not accepted".to_owned());
    }
    Ok(Demo {
        jira,
        jira_integration: id,
        jira_webhook_secret: secret,
        asana,
        asana_integration: asana_id,
        notes: Vec::new(),
    })
}
