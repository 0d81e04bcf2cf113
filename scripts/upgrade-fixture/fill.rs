//! Fills a database with a previous release's own `ordonis-server`, for the upgrade fixtures
//! (`ordonis-server/tests/fixtures/upgrade/`). `scripts/make-upgrade-fixture.sh` copies this
//! file into a worktree of the release as an example of `ordonis-server` and runs it there:
//! it is compiled against that release's fakes, and drives that release's binary over HTTP.
//!
//! Usage: fill <server binary> <database URL> <manifest.json>
//!
//! The manifest records what the old server said it holds (through its own API), which the
//! upgrade test compares with what today's server says about the same database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::time::Duration;

use ordonis_fakes::asana::FakeAsana;
use ordonis_fakes::fixtures;
use ordonis_fakes::jira::FakeJira;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const TOKEN: &str = "test-admin-token";
const WS: &str = "acme";
const JIRA_SECRET: &str = "jira-webhook-secret";
const ASANA_TOKEN: &str = "asana-token";
const ASANA_GID: &str = "1154849068499809";

struct Old {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Old {
    async fn start(bin: &str, db: &str, workers: u32) -> Old {
        let mut child = Command::new(bin)
            .env("ORDONIS_DATABASE_URL", db)
            .env("ORDONIS_LISTEN", "127.0.0.1:0")
            .env("ORDONIS_ADMIN_TOKEN", TOKEN)
            .env("ORDONIS_SECRET_KEY", hex(7))
            .env("ORDONIS_ALLOW_ANY_PROVIDER_URL", "true")
            .env("ORDONIS_WORKERS", workers.to_string())
            // A failing push is dead after two attempts a second apart.
            .env("ORDONIS_RETRY_FOR_HOURS", "0.0001")
            .env("ORDONIS_RETRY_MAX_DELAY", "1")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the old ordonis-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut url = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Ordonis is listening on ") {
                url = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Old {
            child,
            url: url.expect("the server's URL"),
            http: reqwest::Client::new(),
        }
    }

    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        let text = r.text().await.unwrap();
        (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str) -> Value {
        let (s, v) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(s, 200, "{path}: {v}");
        v
    }

    async fn text(&self, path: &str) -> String {
        match self.get(path).await {
            Value::String(s) => s,
            v => panic!("{path}: not text: {v}"),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: &Value, want: u16) -> Value {
        let (s, v) = self.send(method, path, Some(body)).await;
        assert_eq!(s, want, "{path}: {v}");
        v
    }

    async fn until(&self, what: &str, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..600 {
            let v = self.get(path).await;
            if ok(&v) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(32)
}

fn all_in(v: &Value, key: &str, state: &str) -> bool {
    v[key]
        .as_array()
        .is_some_and(|a| a.iter().all(|r| r["state"] == state))
}

fn task_by_external<'a>(tasks: &'a [Value], external_id: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["external"][0]["external_id"] == external_id)
        .unwrap_or_else(|| panic!("no task for {external_id}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, bin, db, out] = &args[..] else {
        panic!("usage: fill <server binary> <database URL> <manifest.json>");
    };
    let jira = FakeJira::start().await.unwrap();
    let asana = FakeAsana::start(ASANA_TOKEN).await.unwrap();
    asana.insert_task(ASANA_GID, "Draft the launch announcement");

    // First run, with a worker: everything is processed, one push dies.
    let old = Old::start(bin, db, 1).await;
    let post = reqwest::Method::POST;
    let v = old
        .call(post.clone(), "/api/integrations", &json!({
            "workspace_id": WS, "provider": "jira", "base_url": jira.base_url(),
            "auth": {"type": "basic", "email": "bot@example.com", "api_token": "very-secret-api-token"},
            "webhook_secrets": [JIRA_SECRET], "scope": {"jql": "project = HO"}, "backfill": false,
        }), 201)
        .await;
    let jira_id = v["integration_id"].as_str().unwrap().to_owned();
    jira.set_webhook(v["webhook_url"].as_str().unwrap(), JIRA_SECRET);
    for name in [
        "cloud_issue_created_kan22.json",
        "cloud_issue_updated_description_kan22.json",
        "cloud_issue_updated_status_zulip.json",
    ] {
        assert_eq!(jira.deliver(fixtures::jira(name)).await.unwrap(), 200, "{name}");
    }
    let v = old
        .call(post.clone(), "/api/integrations", &json!({
            "workspace_id": WS, "provider": "asana", "base_url": asana.base_url(),
            "auth": {"type": "bearer", "token": ASANA_TOKEN},
        }), 201)
        .await;
    let asana_id = v["integration_id"].as_str().unwrap().to_owned();
    asana
        .register_webhook(ASANA_GID, v["webhook_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(asana.deliver_raw(fixtures::asana("captured_task_changed_2019_gelisam.json")).await, 1);
    let events = format!("/api/events?workspace_id={WS}&limit=1000");
    let pushes = format!("/api/pushes?workspace_id={WS}&limit=1000");
    old.until("the deliveries processed", &events, |v| all_in(v, "events", "done")).await;
    let tasks = old
        .until("three tasks", &format!("/api/tasks?workspace_id={WS}"), |v| {
            v["tasks"].as_array().is_some_and(|t| t.len() == 3)
        })
        .await["tasks"]
        .as_array()
        .unwrap()
        .clone();
    let jira_ids: Vec<String> = tasks
        .iter()
        .filter(|t| t["external"][0]["provider"] == "jira")
        .map(|t| t["external"][0]["external_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jira_ids.len(), 2, "{tasks:?}");
    let (first, second) = (&jira_ids[0], &jira_ids[1]);
    let first_task = task_by_external(&tasks, first)["id"].as_str().unwrap().to_owned();
    let second_task = task_by_external(&tasks, second)["id"].as_str().unwrap().to_owned();

    // People: one principal with a Jira account.
    old.call(reqwest::Method::PUT, &format!("/api/workspaces/{WS}/people/usr_bob"), &json!({
        "kind": "human", "display_name": "Bob Jones", "emails": ["bob@example.com"],
        "accounts": [{"integration_id": jira_id, "account_id": "acc-bob"}]}), 200)
        .await;
    // Comments: an agent's, pushed and confirmed; a person's, from Jira's webhook.
    let agent = json!({"kind": "agent", "id": "agt_triage", "display_name": "Triage bot",
        "on_behalf_of": {"kind": "human", "id": "usr_bob", "display_name": "Bob Jones"}});
    old.call(post.clone(), &format!("/api/tasks/{first_task}/comments"),
        &json!({"actor": agent, "body": "I can reproduce this."}), 202)
        .await;
    jira.comment_as(first, "acc-bob", "Bob Jones", "Thanks, looking.").await;
    // An agent session: a thought, an artifact (a remote link in Jira).
    let v = old
        .call(post.clone(), &format!("/api/tasks/{first_task}/sessions"), &json!({"actor": agent}), 201)
        .await;
    let sid = v["session_id"].as_str().unwrap().to_owned();
    old.call(post.clone(), &format!("/api/sessions/{sid}/activities"),
        &json!({"id": "t1", "type": "thought", "body": "Reading the form code"}), 202)
        .await;
    old.call(post.clone(), &format!("/api/sessions/{sid}/artifacts"),
        &json!({"title": "Fix double submit", "url": "https://git.example.com/pr/412", "kind": "pull_request"}), 202)
        .await;
    old.until("the pushes sent", &pushes, |v| all_in(v, "pushes", "done")).await;
    assert!(jira.echoes_sent(Duration::from_secs(10)).await);
    old.until("the echoes processed", &events, |v| all_in(v, "events", "done")).await;
    // A push that dies: Jira answers 503 to both attempts.
    jira.fail_next_write(503, &[]);
    jira.fail_next_write(503, &[]);
    old.call(reqwest::Method::PATCH, &format!("/api/tasks/{second_task}"), &json!({
        "actor": {"kind": "human", "id": "usr_bob"}, "fields": {"title": "A push that died"}}), 202)
        .await;
    old.until("the push dead", &pushes, |v| {
        v["pushes"].as_array().is_some_and(|p| p.iter().any(|p| p["state"] == "dead"))
    })
    .await;
    old.stop().await;

    // Second run, without workers: a delivery and a push stay pending.
    let old = Old::start(bin, db, 0).await;
    let v = old.get(&format!("/api/integrations/{jira_id}")).await;
    jira.set_webhook(v["webhook_url"].as_str().unwrap(), JIRA_SECRET);
    old.call(reqwest::Method::PATCH, &format!("/api/tasks/{first_task}"), &json!({
        "actor": {"kind": "human", "id": "usr_bob"}, "fields": {"title": "A push still pending"}}), 202)
        .await;
    assert_eq!(
        jira.update_issue(second, &json!({"priority": {"name": "Highest"}}), "acc-bob")
            .await
            .unwrap(),
        200
    );

    // What the old server says it holds.
    let tasks = old.get(&format!("/api/tasks?workspace_id={WS}")).await["tasks"].clone();
    let mut comments = json!({});
    let mut sessions = json!({});
    for t in tasks.as_array().unwrap() {
        let id = t["id"].as_str().unwrap();
        comments[id] = old.get(&format!("/api/tasks/{id}/comments")).await["comments"].clone();
        let mut list = Vec::new();
        for s in old.get(&format!("/api/tasks/{id}/sessions")).await["sessions"].as_array().unwrap() {
            let sid = s["id"].as_str().unwrap();
            list.push(old.get(&format!("/api/sessions/{sid}")).await);
        }
        sessions[id] = Value::Array(list);
    }
    let keys = old.text(&format!("/api/ledger/{WS}/keys")).await;
    let checkpoint = old.text(&format!("/api/ledger/{WS}/checkpoint")).await;
    let manifest = json!({
        "workspace_id": WS,
        "admin_token": TOKEN,
        "secret_key": hex(7),
        "jira_integration": jira_id,
        "jira_webhook_secret": JIRA_SECRET,
        "asana_integration": asana_id,
        "asana_token": ASANA_TOKEN,
        "tasks": tasks,
        "comments": comments,
        "sessions": sessions,
        "people": old.get(&format!("/api/workspaces/{WS}/people")).await["people"],
        "events": old.get(&events).await["events"],
        "pushes": old.get(&pushes).await["pushes"],
        "ledger": old.get(&format!("/api/ledger/{WS}/entries?limit=1000")).await,
        "verifier_keys": keys,
        "checkpoint": checkpoint,
        "jira_issues": jira_ids.iter().map(|i| jira.issue(i).unwrap()).collect::<Vec<_>>(),
        "asana_tasks": [asana.task(ASANA_GID).unwrap()],
    });
    old.stop().await;
    std::fs::write(out, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    println!("wrote {out}");
}
