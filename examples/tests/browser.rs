//! One browser test in headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! over the W3C WebDriver protocol with plain HTTP: sign in, open the task list, open a task,
//! see its ledger timeline. Without Chromium it is skipped, unless
//! `ORDONIS_REQUIRE_CHROMIUM=1` (CI), which makes a missing browser fail the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Api, TOKEN, eventually};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file())
}

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Driver {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut rb = self.http.request(method, url);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v["value"].clone()
    }
    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }
    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }
    async fn click(&self, el: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }
    async fn type_into(&self, el: &str, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }
    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn sign_in_list_task_and_ledger_in_chromium() {
    let require = std::env::var("ORDONIS_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    let (Some(chromium), Some(chromedriver)) = (
        find_binary(&["chromium", "chromium-browser"]),
        find_binary(&["chromedriver"]),
    ) else {
        assert!(
            !require,
            "ORDONIS_REQUIRE_CHROMIUM=1 but chromium or chromedriver is not installed \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: chromium or chromedriver is not installed");
        return;
    };

    // The demo: a workspace fed the real fixtures through a fake Jira and a fake Asana.
    let server = common::start_sqlite().await;
    let demo = ordonis_server::demo::setup(&server).await.unwrap();
    let api = Api::new(&server);
    eventually("the demo tasks", || async {
        (api.tasks("demo").await.len() == 3).then_some(())
    })
    .await;

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually("chromedriver", || async {
        http.get(format!("{base}/status"))
            .send()
            .await
            .ok()
            .map(drop)
    })
    .await;
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        }
    }}});
    let r = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let session = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {v}"))
        .to_owned();
    let d = Driver {
        http: http.clone(),
        base: base.clone(),
        session,
    };

    // Not signed in: the UI sends us to the sign-in page.
    d.goto(&format!("{}/ui", server.url())).await;
    assert!(d.url().await.ends_with("/ui/login"));
    // A wrong token is refused.
    let field = d.find("#token").await;
    d.type_into(&field, "wrong").await;
    let button = d.find("#signin").await;
    d.click(&button).await;
    eventually("the refusal", || async {
        d.source()
            .await
            .contains("That token is not right")
            .then_some(())
    })
    .await;
    // The right one signs in (HttpOnly, SameSite=Strict cookie) and lands on the task list.
    let field = d.find("#token").await;
    d.type_into(&field, TOKEN).await;
    let button = d.find("#signin").await;
    d.click(&button).await;
    eventually("the task list", || async {
        d.url().await.ends_with("/ui/workspaces/demo").then_some(())
    })
    .await;
    let cookies = d.cmd(reqwest::Method::GET, "/cookie", None).await;
    let c = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ordonis_session")
        .unwrap_or_else(|| panic!("no session cookie: {cookies}"));
    assert_eq!(c["httpOnly"], true);
    assert_eq!(c["sameSite"], "Strict");
    assert_ne!(c["value"], TOKEN, "the cookie must not hold the token");
    assert!(
        d.url().await.ends_with("/ui/workspaces/demo"),
        "{}",
        d.url().await
    );
    let list = d.source().await;
    assert!(list.contains("Add back button to pages"), "{list}");
    assert!(list.contains("Fix That"));
    assert!(
        list.contains("Draft the launch announcement"),
        "the Asana task: {list}"
    );
    assert!(list.contains("In Progress"));
    assert!(list.contains(&format!("{}/browse/KAN-22", demo.jira.base_url())));

    // Open a task: its fields and its VERA timeline, each entry verified.
    let link = d.find("a.task-link").await;
    d.click(&link).await;
    let page = eventually("the task page", || async {
        let p = d.source().await;
        (d.url().await.contains("/ui/tasks/") && p.contains("VERA timeline")).then_some(p)
    })
    .await;
    assert!(page.contains("VERA timeline"), "{page}");
    let _ = d.find("#ledger tr.entry").await;
    assert!(page.contains("✓ verified"), "{page}");
    assert!(page.contains("inbound_event"));
    assert!(!page.contains("✗"), "an entry did not verify: {page}");

    // Edit the title in the UI: it is pushed to the fake Jira.
    let task_url = d.url().await;
    let title = d.find("#edit input[name=title]").await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{title}/clear"),
        Some(json!({})),
    )
    .await;
    d.type_into(&title, "Edited in the browser").await;
    let save = d.find("#edit button").await;
    d.click(&save).await;
    eventually("the UI edit to reach Jira", || async {
        demo.jira
            .requests()
            .iter()
            .any(|r| r.starts_with("PUT /rest/api/3/issue/"))
            .then_some(())
    })
    .await;
    d.goto(&task_url).await;
    let page = eventually("the edited task page", || async {
        let p = d.source().await;
        p.contains("Edited in the browser").then_some(p)
    })
    .await;
    assert!(page.contains("Admin (UI)"));

    let _ = http
        .delete(format!("{base}/session/{}", d.session))
        .send()
        .await;
    let _ = child.kill().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown().await;
}
