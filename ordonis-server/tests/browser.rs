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

impl Driver {
    /// Starts chromedriver and a headless Chromium session; `None` (skip) when either is
    /// missing, unless `require`.
    async fn start(require: bool) -> Option<(Driver, tokio::process::Child)> {
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
            return None;
        };
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(&chromedriver)
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

        Some((d, child))
    }

    async fn quit(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

#[tokio::test]
async fn sign_in_list_task_and_ledger_in_chromium() {
    let require = std::env::var("ORDONIS_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    // The demo: a workspace fed the real fixtures through a fake Jira and a fake Asana.
    let server = common::start_sqlite().await;
    let demo = ordonis_server::demo::setup(&server).await.unwrap();
    let api = Api::new(&server);
    eventually("the demo tasks", || async {
        (api.tasks("demo").await.len() == 3).then_some(())
    })
    .await;

    let Some((d, mut child)) = Driver::start(require).await else {
        return;
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

    // Open a task (the Jira one, found by its title): its fields and its VERA timeline,
    // each entry verified.
    d.goto(&format!(
        "{}/ui/workspaces/demo?q=back%20button",
        server.url()
    ))
    .await;
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

    d.quit().await;
    let _ = child.kill().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown().await;
}

impl Driver {
    /// Signs in with the admin token and waits for the UI to land.
    async fn sign_in(&self, server: &str) {
        self.goto(&format!("{server}/ui/login")).await;
        let field = self.find("#token").await;
        self.type_into(&field, TOKEN).await;
        let button = self.find("#signin").await;
        self.click(&button).await;
        eventually("signed in", || async {
            (!self.url().await.ends_with("/ui/login")).then_some(())
        })
        .await;
    }

    async fn set_width(&self, width: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": 1000})),
        )
        .await;
    }

    /// Saves a screenshot of the current page as `<target>/ui-screenshots/<name>.png` (a
    /// test artifact for reviewers) and prints its path.
    async fn screenshot(&self, name: &str) -> PathBuf {
        use base64::Engine as _;
        let png = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    async fn wait_for(&self, what: &str, needle: &str) -> String {
        eventually(what, || async {
            let p = self.source().await;
            p.contains(needle).then_some(p)
        })
        .await
    }
}

/// `$CARGO_TARGET_DIR/ui-screenshots`, else `target/ui-screenshots` of the workspace.
fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("ui-screenshots")
}

/// The demo with its three tasks synced.
async fn demo_server() -> (ordonis_server::Server, ordonis_server::demo::Demo, Api) {
    let server = common::start_sqlite().await;
    let demo = ordonis_server::demo::setup(&server).await.unwrap();
    let api = Api::new(&server);
    eventually("the demo tasks", || async {
        (api.tasks("demo").await.len() == 3).then_some(())
    })
    .await;
    (server, demo, api)
}

async fn task_by_title(api: &Api, needle: &str) -> Value {
    api.tasks("demo")
        .await
        .into_iter()
        .find(|t| t["title"].as_str().unwrap_or("").contains(needle))
        .unwrap_or_else(|| panic!("no task titled {needle:?}"))
}

/// Bug: the edit form offered only To Do / In Progress / Done, so a completed Asana task
/// showed as "To Do" and a title-only save reopened it. The form now sends only what changed
/// and offers the task's own status.
#[tokio::test]
async fn a_title_only_edit_of_a_completed_asana_task_leaves_it_completed() {
    let require = std::env::var("ORDONIS_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    let Some((d, mut child)) = Driver::start(require).await else {
        return;
    };
    let (server, demo, api) = demo_server().await;
    let gid = ordonis_server::demo::ASANA_TASK_GID;
    demo.asana
        .change_task(gid, json!({"completed": true}))
        .await
        .unwrap();
    let task = eventually("the completion to sync", || async {
        let t = task_by_title(&api, "launch announcement").await;
        (t["status"]["name"] == "Completed").then_some(t)
    })
    .await;
    let id = task["id"].as_str().unwrap().to_owned();

    d.sign_in(&server.url()).await;
    d.goto(&format!("{}/ui/tasks/{id}", server.url())).await;
    let page = d.wait_for("the task page", "VERA timeline").await;
    // The status shown selected is the task's own.
    let selected = d.find("#edit-status option[selected]").await;
    let text = d
        .cmd(
            reqwest::Method::GET,
            &format!("/element/{selected}/text"),
            None,
        )
        .await;
    assert_eq!(text, "Completed", "{page}");
    let title = d.find("#edit input[name=title]").await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{title}/clear"),
        Some(json!({})),
    )
    .await;
    d.type_into(&title, "Launch announcement, final").await;
    let save = d.find("#edit button[type=submit]").await;
    d.click(&save).await;
    let page = d.wait_for("the save notice", "id=\"saved\"").await;
    assert!(page.contains("title"), "{page}");
    d.screenshot("task-after-save").await;
    eventually("the title to reach Asana", || async {
        (demo.asana.task(gid)?["name"] == "Launch announcement, final").then_some(())
    })
    .await;
    // The page refreshes itself until the echo settles, then says so.
    d.wait_for("the echo to settle on the page", "id=\"settled\"")
        .await;
    // Only the title was sent: Asana still has the task completed, and so do we.
    for (_, body) in demo.asana.puts() {
        assert!(body["data"].get("completed").is_none(), "{body}");
    }
    assert_eq!(demo.asana.task(gid).unwrap()["completed"], true);
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["status"]["name"], "Completed", "{t}");
    assert_eq!(t["status"]["category"], "done", "{t}");
    let (_, ledger) = api.get(&format!("/api/tasks/{id}/ledger")).await;
    assert!(
        !ledger["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "status" && e["actor"]["id"] == "ui-admin"),
        "the UI requested a status change: {ledger}"
    );

    d.quit().await;
    let _ = child.kill().await;
    server.shutdown().await;
}

/// The task list's search and filters narrow the list; screenshots of each console page (at
/// desktop width, and the list at 400 px).
#[tokio::test]
async fn the_task_list_filters_and_searches_and_every_page_renders() {
    let require = std::env::var("ORDONIS_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    let Some((d, mut child)) = Driver::start(require).await else {
        return;
    };
    let (server, demo, api) = demo_server().await;
    let base = server.url();
    d.set_width(1280).await;
    d.goto(&format!("{base}/ui/login")).await;
    d.screenshot("login").await;
    d.sign_in(&base).await;
    d.goto(&format!("{base}/ui/workspaces/demo")).await;
    let list = d.wait_for("the task list", "id=\"tasks\"").await;
    // The provider's own key, linking to the issue.
    assert!(list.contains(">jira KAN-22<"), "{list}");
    d.screenshot("task-list").await;
    let rows = |p: &str| p.matches("class=\"task\"").count();
    assert_eq!(rows(&list), 3);

    // Search by title.
    let q = d.find("#q").await;
    d.type_into(&q, "launch").await;
    let apply = d.find("#apply-filters").await;
    d.click(&apply).await;
    let found = d.wait_for("the search", ">1 shown<").await;
    assert!(found.contains("Draft the launch announcement"), "{found}");
    assert!(!found.contains("Fix That"), "{found}");

    // Filter by integration (the Jira one): the two Jira tasks.
    d.goto(&format!(
        "{base}/ui/workspaces/demo?integration={}",
        demo.jira_integration
    ))
    .await;
    let jira = d.wait_for("the integration filter", ">2 shown<").await;
    assert!(!jira.contains("Draft the launch announcement"), "{jira}");
    // Filter by sync state: all three are in sync, none in conflict.
    d.goto(&format!("{base}/ui/workspaces/demo?sync=conflict"))
        .await;
    d.wait_for("the sync filter", ">0 shown<").await;
    // Filter by status through the form's select.
    d.goto(&format!("{base}/ui/workspaces/demo")).await;
    d.wait_for("the list again", ">3 shown<").await;
    let option = d.find("#filter-status option[value='In Progress']").await;
    d.click(&option).await;
    let apply = d.find("#apply-filters").await;
    d.click(&apply).await;
    // The pager has no sort links to carry the filter any more: wait for the filtered URL,
    // then for the filtered count (the API's own answer for that status).
    eventually("the status filter", || async {
        d.url().await.contains("status=In").then_some(())
    })
    .await;
    let want = api.tasks_where("demo", "&status=In%20Progress").await.len();
    assert_eq!(
        want,
        api.tasks("demo")
            .await
            .iter()
            .filter(|t| t["status"]["name"] == "In Progress")
            .count()
    );
    let by_status = d
        .wait_for("the status filter", &format!(">{want} shown<"))
        .await;
    assert!(by_status.contains("In Progress"), "{by_status}");

    // Each page renders; a screenshot of each.
    let t = task_by_title(&api, "back button").await;
    for (name, path, needle) in [
        (
            "task-page",
            format!("/ui/tasks/{}", t["id"].as_str().unwrap()),
            "VERA timeline",
        ),
        (
            "conflicts",
            "/ui/workspaces/demo/conflicts".to_owned(),
            "No field is in conflict",
        ),
        (
            "outbox",
            "/ui/pushes?workspace_id=demo".to_owned(),
            "id=\"pushes\"",
        ),
        (
            "inbox",
            "/ui/events?workspace_id=demo".to_owned(),
            "id=\"events\"",
        ),
        (
            "integration",
            format!("/ui/integrations/{}", demo.jira_integration),
            "Backlog",
        ),
        (
            "error",
            format!("/ui/tasks/{}", uuid::Uuid::now_v7()),
            "Something went wrong",
        ),
    ] {
        d.goto(&format!("{base}{path}")).await;
        d.wait_for(name, needle).await;
        d.screenshot(name).await;
    }
    // Dark theme from `prefers-color-scheme` (emulated through the DevTools protocol).
    d.cmd(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
    )
    .await;
    d.goto(&format!("{base}/ui/workspaces/demo")).await;
    d.wait_for("the dark list", "id=\"tasks\"").await;
    let bg = d
        .cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return getComputedStyle(document.body).backgroundColor;", "args": []})),
        )
        .await;
    assert_eq!(bg, "rgb(20, 23, 28)", "not the dark theme");
    d.screenshot("task-list-dark").await;
    d.cmd(
        reqwest::Method::POST,
        "/goog/cdp/execute",
        Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "light"}]}})),
    )
    .await;
    d.set_width(400).await;
    d.goto(&format!("{base}/ui/workspaces/demo")).await;
    d.wait_for("the narrow list", "id=\"tasks\"").await;
    let overflow = d
        .cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return document.documentElement.scrollWidth <= window.innerWidth + 1;", "args": []})),
        )
        .await;
    assert_eq!(overflow, true, "the page scrolls sideways at 400 px");
    d.screenshot("task-list-400px").await;

    d.quit().await;
    let _ = child.kill().await;
    server.shutdown().await;
}

/// Both sides change a title before they sync: the conflicts view lists it, and "Accept
/// theirs" settles it, recorded in the ledger as the UI admin's.
#[tokio::test]
async fn a_conflict_is_resolved_from_the_ui() {
    let require = std::env::var("ORDONIS_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    let Some((d, mut child)) = Driver::start(require).await else {
        return;
    };
    let (server, demo, api) = demo_server().await;
    let base = server.url();
    let t = task_by_title(&api, "back button").await;
    let id = t["id"].as_str().unwrap().to_owned();
    // Our change is pushed but its echo never comes (echo off), then someone in Jira renames
    // the issue: both sides changed the title.
    demo.jira.set_echo(false);
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "ana"}, "fields": {"title": "Ours"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("our push", || async {
        (demo.jira.issue("KAN-22")?["fields"]["summary"] == "Ours").then_some(())
    })
    .await;
    let status = demo
        .jira
        .update_issue(
            "KAN-22",
            &json!({"summary": "Theirs"}),
            "5b10ac8d82e05b22cc7d4ef5",
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    eventually("the conflict", || async {
        let (_, l) = api.get(&format!("/api/tasks/{id}/ledger")).await;
        l["entries"]
            .as_array()?
            .iter()
            .any(|e| e["outcome"] == "conflict" && e["field"] == "title")
            .then_some(())
    })
    .await;

    d.set_width(1280).await;
    d.sign_in(&base).await;
    d.goto(&format!("{base}/ui/workspaces/demo?sync=conflict"))
        .await;
    d.wait_for("the conflict in the list", ">1 shown<").await;
    d.goto(&format!("{base}/ui/workspaces/demo/conflicts"))
        .await;
    let page = d.wait_for("the conflicts view", "class=\"conflict\"").await;
    assert!(
        page.contains(">Ours<") && page.contains(">Theirs<"),
        "{page}"
    );
    d.screenshot("conflicts-open").await;
    let accept = d.find("tr.conflict button.accept-theirs").await;
    d.click(&accept).await;
    d.wait_for("the conflict to be settled", "No field is in conflict")
        .await;
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["title"], "Theirs", "{t}");
    let (_, l) = api.get(&format!("/api/tasks/{id}/ledger")).await;
    let last = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["field"] == "title")
        .unwrap()
        .clone();
    assert_eq!(last["actor"]["id"], "ui-admin", "{last}");
    assert!(
        last["rule"]
            .as_str()
            .unwrap()
            .contains("conflict resolved: accept theirs"),
        "{last}"
    );
    // Ours had reached Jira; theirs is pushed back.
    eventually("theirs back in Jira", || async {
        (demo.jira.issue("KAN-22")?["fields"]["summary"] == "Theirs").then_some(())
    })
    .await;

    d.quit().await;
    let _ = child.kill().await;
    server.shutdown().await;
}
