//! The binaries as a user runs them: `ordonis-server --demo` on the embedded default serves
//! the demo, and both binaries stop cleanly on SIGTERM within 10 s.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::eventually;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The demo workspace's tasks, or `None` while the server cannot answer.
async fn demo_tasks(http: &reqwest::Client, url: &str, token: &str) -> Option<Vec<Value>> {
    let v: Value = http
        .get(format!("{url}/api/tasks?workspace_id=demo"))
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["tasks"].as_array().cloned()
}

async fn sigterm_and_wait(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("did not exit within 10 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn demo_server_serves_and_stops_on_sigterm_then_worker_runs() {
    let db = common::sqlite_path();
    let dir = db.parent().unwrap().to_owned();
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ordonis-server"))
        .arg("--demo")
        .current_dir(&dir)
        .env("ORDONIS_LISTEN", "127.0.0.1:0")
        .env("ORDONIS_LOG", "debug")
        .env_remove("ORDONIS_DATABASE_URL")
        .env_remove("ORDONIS_ADMIN_TOKEN")
        .env_remove("ORDONIS_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut token) = (None, None);
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Ordonis is listening on ") {
                url = rest.split_whitespace().next().map(str::to_owned);
            }
            if line.starts_with("Admin token (generated") {
                token = line.rsplit(' ').next().map(str::to_owned);
            }
            if line.starts_with("Open ") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the demo did not start");
    let (url, token) = (url.expect("url"), token.expect("token"));
    // The embedded default, in the demo's own file, with the token and key beside it.
    assert!(dir.join("ordonis-demo.db").exists());
    assert!(dir.join("ordonis-demo.db.admin-token").exists());
    let http = reqwest::Client::new();
    let tasks = eventually("the demo tasks", || async {
        demo_tasks(&http, &url, &token)
            .await
            .filter(|t| t.len() == 3)
    })
    .await;
    let id = tasks[0]["id"].as_str().unwrap();
    let v: Value = http
        .get(format!("{url}/api/tasks/{id}/ledger"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!v["entries"].as_array().unwrap().is_empty());
    // A delivery with a wrong signature: refused, and logged at WARN with its integration,
    // never its body.
    let v: Value = http
        .get(format!("{url}/api/integrations?workspace_id=demo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jira = v["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["provider"] == "jira")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    let jira_id = jira["integration_id"].as_str().unwrap();
    let r = http
        .post(format!("{url}/integrations/jira/{jira_id}/webhook"))
        .header("x-hub-signature", format!("sha256={}", "0".repeat(64)))
        .body(r#"{"webhookEvent":"jira:issue_updated","marker":"BODY-MARKER-7f3a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    sigterm_and_wait(child).await;
    assert!(
        http.get(format!("{url}/healthz")).send().await.is_err(),
        "still serving after SIGTERM"
    );
    // Debug logs hold no secret: not the admin token, the key, or the demo's API tokens.
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("ordonis-server started"), "{logs}");
    // Written to a file: no colour codes.
    assert!(!logs.contains('\u{1b}'), "ANSI colour codes in a log file");
    let rejected = logs
        .lines()
        .find(|l| l.contains("webhook rejected"))
        .unwrap_or_else(|| panic!("no rejection logged: {logs}"));
    assert!(
        rejected.contains("WARN") && rejected.contains(jira_id),
        "{rejected}"
    );
    assert!(
        !logs.contains("BODY-MARKER-7f3a"),
        "a webhook body is in the logs"
    );
    let key = std::fs::read_to_string(dir.join("ordonis-demo.db.secret-key")).unwrap();
    for secret in [token.as_str(), key.trim(), "demo-token", "demo-asana-token"] {
        assert!(!logs.contains(secret), "a secret is in the logs");
    }

    // A second demo run starts afresh (same token, the same three tasks, not six).
    let mut again = Command::new(env!("CARGO_BIN_EXE_ordonis-server"))
        .arg("--demo")
        .current_dir(&dir)
        .env("ORDONIS_LISTEN", "127.0.0.1:0")
        .env_remove("ORDONIS_DATABASE_URL")
        .env_remove("ORDONIS_ADMIN_TOKEN")
        .env_remove("ORDONIS_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(again.stdout.take().unwrap()).lines();
    let mut url2 = None;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Ordonis is listening on ") {
                url2 = rest.split_whitespace().next().map(str::to_owned);
            }
            if line.contains(&token) && line.starts_with("Admin token (from") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the second demo run did not print the same token");
    let url2 = url2.expect("url");
    eventually("the second demo's tasks", || async {
        demo_tasks(&http, &url2, &token)
            .await
            .filter(|t| t.len() == 3)
            .map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: Value = http
        .get(format!("{url2}/api/tasks?workspace_id=demo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tasks"].as_array().unwrap().len(), 3);
    sigterm_and_wait(again).await;

    // The standalone worker on the same database (it reads the key file beside it).
    let mut worker = Command::new(env!("CARGO_BIN_EXE_ordonis-worker"))
        .current_dir(&dir)
        .env("ORDONIS_DATABASE_URL", "./ordonis-demo.db")
        .env("ORDONIS_LOG", "info")
        .env_remove("ORDONIS_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Waits for the worker to say it runs (its SIGTERM handler is installed by then), not
    // for a guessed while; the rest of its log is drained so it never blocks on the pipe.
    let mut lines = BufReader::new(worker.stderr.take().unwrap()).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("ordonis-worker running") {
                return;
            }
        }
        panic!("the worker's log ended before it ran");
    };
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("the worker did not start within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    sigterm_and_wait(worker).await;
}

#[tokio::test]
async fn worker_refuses_to_run_without_the_servers_key() {
    let db = common::sqlite_path();
    let out = Command::new(env!("CARGO_BIN_EXE_ordonis-worker"))
        .env("ORDONIS_DATABASE_URL", &db)
        .env_remove("ORDONIS_SECRET_KEY")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ORDONIS_SECRET_KEY"));
    // It did not leave a fresh key behind that would differ from the server's.
    assert!(!db.with_file_name("ordonis.db.secret-key").exists());
}

#[tokio::test]
async fn help_names_the_log_setting_and_the_retry_schedule() {
    for bin in [
        env!("CARGO_BIN_EXE_ordonis-server"),
        env!("CARGO_BIN_EXE_ordonis-worker"),
    ] {
        let out = Command::new(bin).arg("--help").output().await.unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("ORDONIS_LOG"), "{help}");
        assert!(help.contains("--retry-for"), "{help}");
    }
}
