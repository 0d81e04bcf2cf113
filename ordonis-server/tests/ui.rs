//! The UI over plain HTTP: sign-in and its cookie, protected pages, escaping, the edit form
//! and the inbox's replay button.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, TOKEN, eventually, sign, start_sqlite};
use ordonis_fakes::jira::FakeJira;
use serde_json::json;

fn form(pairs: &[(&str, &str)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn sign_in_pages_escaping_edit_and_replay() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (_, url) = api.jira_integration("ui-ws", &jira).await;
    let http = &api.http; // no redirects followed

    // Not signed in: GET pages redirect to the sign-in page, POSTs are refused.
    for path in ["/ui", "/ui/events", "/ui/workspaces/ui-ws"] {
        let r = http.get(api.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/ui/login");
    }
    let r = http
        .post(api.url(&format!("/ui/events/{}/replay", uuid::Uuid::now_v7())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A session cookie that is the token itself, or anything else, is not a session.
    for bad in [TOKEN, "00", ""] {
        let r = http
            .get(api.url("/ui"))
            .header("cookie", format!("ordonis_session={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{bad:?}");
    }
    // Wrong token: 401, no cookie.
    let r = http
        .post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", "nope")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    // Right token: the cookie, HttpOnly and SameSite=Strict, not holding the token.
    let r = http
        .post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(TOKEN));
    let cookie = set.split(';').next().unwrap().to_owned();
    let get = |path: String| {
        let c = cookie.clone();
        let http = http.clone();
        let url = api.url(&path);
        async move {
            let r = http.get(url).header("cookie", c).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // A task whose title is markup, from Jira: shown escaped.
    let mut issue: serde_json::Value =
        serde_json::from_slice(&common::fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    issue["issue"]["fields"]["summary"] = json!("<script>alert(1)</script>");
    assert_eq!(
        jira.deliver(issue.to_string().as_bytes()).await.unwrap(),
        200
    );
    let task = eventually("the task", || async {
        api.tasks("ui-ws").await.into_iter().next()
    })
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let (s, list) = get("/ui/workspaces/ui-ws".to_owned()).await;
    assert_eq!(s, 200);
    assert!(
        !list.contains("<script>alert(1)</script>"),
        "unescaped: {list}"
    );
    assert!(list.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let (s, page) = get(format!("/ui/tasks/{id}")).await;
    assert_eq!(s, 200);
    assert!(
        page.contains("VERA timeline") && page.contains("✓ verified"),
        "{page}"
    );
    let (s, _) = get(format!("/ui/tasks/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(s, 404);

    // The edit form changes the task as the UI admin and pushes it.
    let r = http
        .post(api.url(&format!("/ui/tasks/{id}")))
        .header("cookie", cookie.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("title", "Safe title"),
            ("status", "Done"),
            ("due_date", "2027-01-15"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["title"], "Safe title");
    assert_eq!(t["due_date"], "2027-01-15");
    eventually("the push", || async {
        (jira.issue("10000")?["fields"]["status"]["name"] == "Done").then_some(())
    })
    .await;
    let r = http
        .post(api.url(&format!("/ui/tasks/{id}")))
        .header("cookie", cookie.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("title", "A title I typed with <care>"),
            ("was_title", "Safe title"),
            ("due_date", "someday"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The error page says what was wrong, keeps what was typed (escaped) and links back.
    let page = r.text().await.unwrap();
    assert!(page.contains("due date must be YYYY-MM-DD"), "{page}");
    assert!(page.contains("A title I typed with &lt;care&gt;"), "{page}");
    assert!(page.contains("someday"), "{page}");
    assert!(page.contains(&format!("href=\"/ui/tasks/{id}\"")), "{page}");
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["title"], "Safe title", "nothing was saved");

    // The inbox shows a failed event with a replay button that works.
    let body = b"not json at all".to_vec();
    let r = http
        .post(&url)
        .header("x-hub-signature", sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let failed = api.events("?status=failed").await;
    let ev = failed[0]["id"].as_str().unwrap().to_owned();
    let (s, inbox) = get("/ui/events".to_owned()).await;
    assert_eq!(s, 200);
    assert!(
        inbox.contains(&format!("/ui/events/{ev}/replay")),
        "{inbox}"
    );
    let r = http
        .post(api.url(&format!("/ui/events/{ev}/replay")))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    eventually("the replay to be processed", || async {
        api.events("?status=failed")
            .await
            .into_iter()
            .find(|e| e["id"] == ev.as_str() && e["attempts"] == 1)
    })
    .await;
    // Sign out clears the cookie.
    let r = http
        .post(api.url("/ui/logout"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    server.shutdown().await;
}

/// Signs in through the form; returns the `name=value` cookie.
async fn sign_in(api: &Api) -> String {
    let r = api
        .http
        .post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

/// A provider-supplied permalink is rendered as a link only when it is http(s): a
/// `javascript:` one from the provider's API is shown as text.
#[tokio::test]
async fn provider_links_are_rendered_only_when_http_s() {
    use ordonis_fakes::asana::FakeAsana;
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let asana = FakeAsana::start("asana-pat").await.unwrap();
    let (s, v) = api
        .post(
            "/api/integrations",
            &json!({"workspace_id": "links", "provider": "asana", "base_url": asana.base_url(),
                    "auth": {"type": "bearer", "token": "asana-pat"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let hook = v["webhook_url"].as_str().unwrap().to_owned();
    asana.register_webhook("project-1", &hook).await.unwrap();
    let evil = asana.create_task("Evil link");
    assert!(asana.set_permalink(&evil, "javascript:alert(1)"));
    let good = asana.create_task("Good link");
    for gid in [&evil, &good] {
        assert_eq!(
            asana
                .change_task(gid, json!({"notes": "changed"}))
                .await
                .unwrap(),
            1
        );
    }
    let tasks = eventually("both tasks", || async {
        let t = api.tasks("links").await;
        (t.len() == 2).then_some(t)
    })
    .await;
    let cookie = sign_in(&api).await;
    let get = |path: String| {
        let api = api.clone();
        let cookie = cookie.clone();
        async move {
            let r = api
                .http
                .get(api.url(&path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        }
    };
    let mut pages = vec![get("/ui/workspaces/links".to_owned()).await];
    for t in &tasks {
        pages.push(get(format!("/ui/tasks/{}", t["id"].as_str().unwrap())).await);
    }
    let good_href = format!("href=\"https://app.asana.com/0/0/{good}\"");
    assert!(pages[0].contains(&good_href), "{}", pages[0]);
    assert!(pages[1..].iter().any(|p| p.contains(&good_href)));
    assert!(
        pages[1..].iter().any(|p| p.contains("javascript:alert(1)")),
        "the link is still shown as text"
    );
    for p in &pages {
        assert!(!p.to_lowercase().contains("href=\"javascript:"), "{p}");
    }
    server.shutdown().await;
}

/// Whether a cookie opens `/ui` (200 or a redirect into the UI, not to the sign-in page).
async fn cookie_works(api: &Api, cookie: &str) -> bool {
    let r = api
        .http
        .get(api.url("/ui"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    match r.status().as_u16() {
        200 => true,
        303 => r.headers()["location"] != "/ui/login",
        s => panic!("unexpected {s}"),
    }
}

/// Each sign-in gets its own random session; sign-out revokes it on the server; sessions
/// expire; and a session is only good on the server (and token) that created it.
#[tokio::test]
async fn sessions_are_random_revocable_expiring_and_per_token() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let a = sign_in(&api).await;
    let b = sign_in(&api).await;
    assert_ne!(a, b, "two sign-ins, one cookie");
    assert!(cookie_works(&api, &a).await && cookie_works(&api, &b).await);
    // Sign-out with `a`: `a` is refused from now on (even replayed), `b` still works.
    let r = api
        .http
        .post(api.url("/ui/logout"))
        .header("cookie", a.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        !cookie_works(&api, &a).await,
        "a signed-out cookie still works"
    );
    assert!(cookie_works(&api, &b).await);
    let r = api
        .http
        .post(api.url("/ui/logout"))
        .header("cookie", a.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Another server with another token refuses this server's session.
    let mut other =
        ordonis_server::Config::for_tests(common::sqlite_path().to_string_lossy().into_owned());
    other.admin_token = Some("another-admin-token-0123".to_owned());
    let other = common::start_with(other).await;
    let other_api = Api::new(&other);
    assert!(!cookie_works(&other_api, &b).await);
    other.shutdown().await;
    server.shutdown().await;

    // An expired session is refused.
    let mut short =
        ordonis_server::Config::for_tests(common::sqlite_path().to_string_lossy().into_owned());
    short.session_ttl_secs = 1;
    let short = common::start_with(short).await;
    let api = Api::new(&short);
    let c = sign_in(&api).await;
    assert!(cookie_works(&api, &c).await);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(
        !cookie_works(&api, &c).await,
        "an expired session still works"
    );
    short.shutdown().await;
}

async fn try_sign_in(http: &reqwest::Client, api: &Api, token: &str) -> reqwest::Response {
    http.post(api.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("token", token)]))
        .send()
        .await
        .unwrap()
}

/// Failed sign-ins are throttled per client: past the burst, 429 with `Retry-After`, even
/// for the right token (it is not checked); another client still signs in.
#[tokio::test]
async fn failed_sign_ins_are_throttled_per_client() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let http = &api.http;
    for i in 0..ordonis_server::throttle::FAILURE_BURST {
        let r = try_sign_in(http, &api, "wrong-token").await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    let r = try_sign_in(http, &api, "wrong-token").await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
    // Over the limit, the right token is not even looked at.
    let r = try_sign_in(http, &api, TOKEN).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("set-cookie").is_none());
    // Another client (another loopback address) is not affected.
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = try_sign_in(&other, &api, TOKEN).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_some());
    server.shutdown().await;
}

/// An admin token shorter than 16 characters is refused at start, naming its settings.
#[tokio::test]
async fn short_admin_tokens_are_refused_at_start() {
    assert_eq!(TOKEN.len(), ordonis_server::app::MIN_ADMIN_TOKEN_LEN);
    let mut config =
        ordonis_server::Config::for_tests(common::sqlite_path().to_string_lossy().into_owned());
    config.admin_token = Some("fifteen-chars-x".to_owned());
    let err = ordonis_server::Server::start(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ORDONIS_ADMIN_TOKEN") && err.contains("--admin-token") && err.contains("16"),
        "{err}"
    );
    let store = std::sync::Arc::new(ordonis_store_memory::MemoryStore::new());
    let err = ordonis_server::Server::start_on(&config, store)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ORDONIS_ADMIN_TOKEN"), "{err}");
}
#[tokio::test]
async fn security_headers_on_api_and_ui_responses() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let answers = [
        api.http.get(api.url("/healthz")).send().await.unwrap(),
        api.http
            .get(api.url("/api/events"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
        api.http.get(api.url("/api/nope")).send().await.unwrap(),
        api.http.get(api.url("/ui/login")).send().await.unwrap(),
        api.http.get(api.url("/ui")).send().await.unwrap(),
    ];
    for r in answers {
        let h = r.headers();
        let what = r.url().path().to_owned();
        let csp = h["content-security-policy"].to_str().unwrap();
        for d in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(d), "{what}: {csp}");
        }
        // Inline styles only: no inline or external script.
        assert!(!csp.contains("script-src"), "{what}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn cross_origin_ui_posts_are_refused() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let port = server.addr.port();
    let login = |origin: Option<String>| {
        let http = api.http.clone();
        let url = api.url("/ui/login");
        async move {
            let mut rb = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("token", TOKEN)]));
            if let Some(o) = origin {
                rb = rb.header("origin", o);
            }
            rb.send().await.unwrap()
        }
    };
    for bad in [
        "http://evil.example".to_owned(),
        format!("http://evil.example:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_owned(),
        "not a url".to_owned(),
    ] {
        let r = login(Some(bad.clone())).await;
        assert_eq!(r.status(), 403, "{bad}");
        assert!(r.headers().get("set-cookie").is_none(), "{bad}");
    }
    // Same origin (the server's own, or https through a proxy keeping Host), or no Origin.
    let mut cookie = String::new();
    for good in [
        Some(api.base.clone()),
        Some(format!("https://127.0.0.1:{port}")),
        None,
    ] {
        let r = login(good.clone()).await;
        assert_eq!(r.status(), 303, "{good:?}");
        let set = r.headers()["set-cookie"].to_str().unwrap();
        cookie = set.split(';').next().unwrap().to_owned();
    }
    // A signed-in post from elsewhere is refused too; from here it goes through.
    let replay = format!("/ui/events/{}/replay", uuid::Uuid::now_v7());
    let r = api
        .http
        .post(api.url(&replay))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = api
        .http
        .post(api.url(&replay))
        .header("cookie", &cookie)
        .header("origin", &api.base)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 403);
    server.shutdown().await;
}

/// A title both sides changed: "Push ours" from the conflicts view sends CollabHub's value to
/// Jira again, recorded in the ledger as the UI admin's; a field not in conflict is refused.
#[tokio::test]
async fn a_conflict_is_settled_by_pushing_ours() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    api.jira_integration("conflicts", &jira).await;
    assert_eq!(
        jira.deliver(&common::fixture("cloud_issue_created_kan22.json"))
            .await
            .unwrap(),
        200
    );
    let task = eventually("the task", || async {
        api.tasks("conflicts").await.into_iter().next()
    })
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    jira.set_echo(false);
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{id}"),
            &json!({"actor": {"kind": "human", "id": "ana"}, "fields": {"title": "Ours"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("our push", || async {
        (jira.issue("KAN-22")?["fields"]["summary"] == "Ours").then_some(())
    })
    .await;
    jira.update_issue("KAN-22", &json!({"summary": "Theirs"}), "someone")
        .await
        .unwrap();
    let ledger = |api: Api, id: String| async move {
        let (_, l) = api.get(&format!("/api/tasks/{id}/ledger")).await;
        l["entries"].as_array().unwrap().clone()
    };
    eventually("the conflict", || async {
        ledger(api.clone(), id.clone())
            .await
            .iter()
            .any(|e| e["outcome"] == "conflict")
            .then_some(())
    })
    .await;
    // Jira holds theirs again only if our re-push has not landed yet: make it theirs.
    jira.update_issue("KAN-22", &json!({"summary": "Theirs"}), "someone")
        .await
        .unwrap();
    let cookie = sign_in(&api).await;
    let post = |path: String| {
        let api = api.clone();
        let cookie = cookie.clone();
        async move {
            api.http
                .post(api.url(&path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let page = api
        .http
        .get(api.url("/ui/workspaces/conflicts/conflicts"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/ui/tasks/{id}/conflicts/title/ours")),
        "{page}"
    );
    let r = post(format!("/ui/tasks/{id}/conflicts/description/ours")).await;
    assert_eq!(r.status(), 409, "a field not in conflict");
    let r = post(format!("/ui/tasks/{id}/conflicts/title/ours")).await;
    assert_eq!(r.status(), 303);
    eventually("ours in Jira", || async {
        (jira.issue("KAN-22")?["fields"]["summary"] == "Ours").then_some(())
    })
    .await;
    let entries = ledger(api.clone(), id.clone()).await;
    let last = entries
        .iter()
        .rev()
        .find(|e| e["field"] == "title")
        .unwrap();
    assert_eq!(last["actor"]["id"], "ui-admin", "{last}");
    assert!(
        last["rule"]
            .as_str()
            .unwrap()
            .contains("conflict resolved: push ours"),
        "{last}"
    );
    let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(t["title"], "Ours");
    server.shutdown().await;
}

/// The task page shows the conversation (a person's reply "via Jira", our comment with its
/// sync state, markup escaped) and its form comments as the operator, through the engine.
#[tokio::test]
async fn the_task_page_shows_the_conversation_and_comments_as_the_operator() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    api.jira_integration("ui-talk", &jira).await;
    let issue: serde_json::Value =
        serde_json::from_slice(&common::fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    jira.insert_issue(issue["issue"].clone());
    assert_eq!(
        jira.deliver(issue.to_string().as_bytes()).await.unwrap(),
        200
    );
    let task = eventually("the task", || async {
        api.tasks("ui-talk").await.into_iter().next()
    })
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    jira.comment_as("10000", "acc-bob", "Bob Jones", "Works <b>now</b>?")
        .await;
    eventually("the reply", || async {
        let (_, v) = api.get(&format!("/api/tasks/{id}/comments")).await;
        (v["comments"].as_array()?.len() == 1).then_some(())
    })
    .await;
    let cookie = sign_in(&api).await;
    let r = api
        .http
        .post(api.url(&format!("/ui/tasks/{id}/comments")))
        .header("cookie", cookie.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("body", "Checked on\r\nSafari")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = eventually("our comment confirmed", || async {
        let r = api
            .http
            .get(api.url(&format!("/ui/tasks/{id}")))
            .header("cookie", cookie.clone())
            .send()
            .await
            .unwrap();
        let page = r.text().await.unwrap();
        page.contains("sync-confirmed").then_some(page)
    })
    .await;
    assert!(page.contains("Conversation"), "{page}");
    assert!(
        page.contains("Bob Jones") && page.contains("via Jira"),
        "{page}"
    );
    // The Markdown body (Jira's text, markup escaped as Markdown), escaped again as HTML.
    assert!(
        page.contains("Works \\&lt;b\\&gt;now") && !page.contains("<b>now"),
        "{page}"
    );
    assert!(
        page.contains("Admin (UI)") && page.contains("Checked on\nSafari"),
        "{page}"
    );
    let texts: Vec<String> = jira
        .comments("10000")
        .iter()
        .map(|c| c["body"].to_string())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[1].contains("Admin (UI) via CollabHub"), "{texts:?}");
    // An empty comment is refused with the error page, keeping nothing silently.
    let r = api
        .http
        .post(api.url(&format!("/ui/tasks/{id}/comments")))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("body", "   ")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("must not be empty"));
    server.shutdown().await;
}

/// The task page lists its agent sessions; a session's page shows its activity timeline
/// (each entry checked against the signed checkpoint, markup escaped), its artifact, and
/// where it shows in Jira.
#[tokio::test]
async fn session_pages_show_the_timeline_verified_and_the_projection() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    api.jira_integration("ui-sessions", &jira).await;
    let issue: serde_json::Value =
        serde_json::from_slice(&common::fixture("cloud_issue_updated_status_zulip.json")).unwrap();
    jira.insert_issue(issue["issue"].clone());
    assert_eq!(
        jira.deliver(issue.to_string().as_bytes()).await.unwrap(),
        200
    );
    let task = eventually("the task", || async {
        api.tasks("ui-sessions").await.into_iter().next()
    })
    .await;
    let id = task["id"].as_str().unwrap().to_owned();
    let agent = json!({"kind": "agent", "id": "agt_triage", "display_name": "Triage bot",
        "on_behalf_of": {"kind": "human", "id": "usr_alice", "display_name": "Alice Smith"}});
    let (s, v) = api
        .post(
            &format!("/api/tasks/{id}/sessions"),
            &json!({"actor": agent}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_owned();
    let acts = format!("/api/sessions/{sid}/activities");
    for body in [
        json!({"type": "thought", "body": "The <form> posts twice"}),
        json!({"type": "action", "action": "search", "parameter": "submit handler", "result": "2 hits"}),
        json!({"type": "elicitation", "body": "Which browser?"}),
    ] {
        let (s, v) = api.post(&acts, &body).await;
        assert_eq!(s, 202, "{v}");
    }
    let (s, v) = api
        .post(
            &format!("/api/sessions/{sid}/artifacts"),
            &json!({"title": "Fix double submit", "url": "https://git.example.com/pr/412"}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let cookie = sign_in(&api).await;
    let get = |path: String| {
        let c = cookie.clone();
        let http = api.http.clone();
        let url = api.url(&path);
        async move {
            let r = http.get(url).header("cookie", c).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, page) = get(format!("/ui/tasks/{id}")).await;
    assert_eq!(s, 200);
    assert!(page.contains("Agent sessions"), "{page}");
    assert!(page.contains(&format!("/ui/sessions/{sid}")), "{page}");
    assert!(page.contains("Triage bot for Alice Smith"), "{page}");
    let (s, page) = eventually("the question confirmed", || {
        let sid = sid.clone();
        async move {
            let (s, page) = get(format!("/ui/sessions/{sid}")).await;
            page.contains("sync-confirmed").then_some((s, page))
        }
    })
    .await;
    assert_eq!(s, 200);
    assert!(page.contains("awaiting_input"), "{page}");
    assert!(page.contains("The &lt;form&gt; posts twice"), "{page}");
    assert!(
        page.contains("submit handler") && page.contains("2 hits"),
        "{page}"
    );
    assert!(
        page.contains("href=\"https://git.example.com/pr/412\""),
        "{page}"
    );
    assert!(page.contains("comment for the elicitation"), "{page}");
    // Every step verifies against the signed checkpoint: start, 3 activities, the artifact.
    assert_eq!(page.matches("✓ verified").count(), 5, "{page}");
    let (s, _) = get(format!("/ui/sessions/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(s, 404);
    server.shutdown().await;
}

/// The people page: principals with their accounts and how each was matched (by hand, by
/// e-mail), the accounts matched to no one with the reason (an e-mail two principals share),
/// the form that maps one by hand, and the task's timeline naming the principal behind an
/// account ("Bob Jones via jira").
#[tokio::test]
async fn the_people_page_maps_accounts_and_names_them_everywhere() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    let (integration, _) = api.jira_integration("people-ws", &jira).await;
    jira.insert_issue(json!({
        "id": "40001", "key": "HO-1",
        "fields": {"summary": "Directory", "description": null,
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"}, "assignee": null, "duedate": null,
            "project": {"id": "10000", "key": "HO"}, "issuetype": {"id": "10001", "name": "Task"}}
    }));
    jira.add_user("acc-bob", "Bob Jones", None, false);
    jira.add_user("acc-carol", "Carol Diaz", Some("carol@example.com"), false);
    jira.add_user("acc-shared", "Team Inbox", Some("team@example.com"), false);
    jira.add_user("acc-bot", "Deploy Bot", None, true);
    for p in [
        ("usr_bob", json!({"display_name": "Bob Jones"})),
        (
            "usr_carol",
            json!({"display_name": "Carol Diaz", "emails": ["carol@example.com"]}),
        ),
        (
            "usr_p1",
            json!({"display_name": "Pat One", "emails": ["team@example.com"]}),
        ),
        (
            "usr_p2",
            json!({"display_name": "Pat Two", "emails": ["team@example.com"]}),
        ),
    ] {
        let (s, v) = api
            .put(&format!("/api/workspaces/people-ws/people/{}", p.0), &p.1)
            .await;
        assert_eq!(s, 200, "{v}");
    }
    // Each account edits the issue in Jira: seen, read (name, e-mail, app or not), matched.
    for (n, account) in ["acc-bob", "acc-carol", "acc-shared", "acc-bot"]
        .iter()
        .enumerate()
    {
        jira.update_issue(
            "HO-1",
            &json!({"summary": format!("Directory {n}")}),
            account,
        )
        .await
        .unwrap();
    }
    let (s, v) = eventually("four accounts seen", || async {
        let (s, v) = api.get("/api/workspaces/people-ws/people").await;
        let seen = v["people"]
            .as_array()?
            .iter()
            .map(|p| p["accounts"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
            + v["unmatched"].as_array()?.len();
        (seen == 4).then_some((s, v))
    })
    .await;
    assert_eq!(s, 200);
    let unmatched = v["unmatched"].as_array().unwrap();
    let shared = unmatched
        .iter()
        .find(|a| a["account_id"] == "acc-shared")
        .expect("the shared e-mail matches no one");
    assert!(
        shared["reason"]
            .as_str()
            .unwrap()
            .contains("usr_p1 and usr_p2"),
        "{shared}"
    );
    let bot = unmatched
        .iter()
        .find(|a| a["account_id"] == "acc-bot")
        .unwrap();
    assert_eq!(bot["kind"], "agent", "an app account is an agent");

    // Bob's e-mail is hidden: mapped by hand from the page's form.
    let cookie = api.sign_in().await;
    let r = api
        .http
        .post(api.url("/ui/workspaces/people-ws/people"))
        .header("cookie", &cookie)
        .header("origin", &api.base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("integration_id", &integration),
            ("account_id", "acc-bob"),
            ("principal", "usr_bob"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = api
        .ui_page(&cookie, "/ui/workspaces/people-ws/people")
        .await;
    assert!(
        page.contains("Bob Jones") && page.contains("mapped by hand"),
        "{page}"
    );
    assert!(
        page.contains("Carol Diaz") && page.contains("matched by e-mail"),
        "{page}"
    );
    assert!(page.contains("Team Inbox") && page.contains("shared by usr_p1 and usr_p2"));

    // Bob's next edit is his in the timeline, by name.
    jira.update_issue("HO-1", &json!({"summary": "Directory by Bob"}), "acc-bob")
        .await
        .unwrap();
    let task = eventually("Bob's edit", || async {
        api.tasks("people-ws")
            .await
            .into_iter()
            .find(|t| t["title"] == "Directory by Bob")
    })
    .await;
    let page = api
        .ui_page(
            &cookie,
            &format!("/ui/tasks/{}", task["id"].as_str().unwrap()),
        )
        .await;
    assert!(page.contains("Bob Jones via jira"), "{page}");

    // A create Jira refuses (no such project) shows on the task's page with the reason.
    let (s, v) = api
        .post(
            "/api/tasks",
            &json!({"workspace_id": "people-ws",
                    "actor": {"kind": "human", "id": "usr_bob"},
                    "fields": {"title": "Nowhere to go"},
                    "link": {"integration_id": integration, "project": "NOPE"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let id = v["task_id"].as_str().unwrap().to_owned();
    eventually("the refusal", || async {
        let (_, t) = api.get(&format!("/api/tasks/{id}")).await;
        (t["create"]["state"] == "refused").then_some(())
    })
    .await;
    let page = api.ui_page(&cookie, &format!("/ui/tasks/{id}")).await;
    assert!(page.contains("id=\"create-state\""), "{page}");
    assert!(page.contains("refused") && page.contains("NOPE"), "{page}");
    server.shutdown().await;
}

/// The integration page and the API show the Jira budget the answers last carried: near the
/// limit, the share left and the reset, from FakeJira's `Beta-RateLimit*` headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integration_page_shows_the_jira_budget() {
    let server = start_sqlite().await;
    let api = Api::new(&server);
    let jira = FakeJira::start().await.unwrap();
    for i in 1..=3 {
        jira.insert_issue(json!({
            "id": format!("4000{i}"), "key": format!("HO-{i}"),
            "fields": {
                "summary": format!("Budget issue {i}"), "description": null,
                "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
                "priority": {"id": "3", "name": "Medium"}, "assignee": null, "duedate": null,
                "project": {"id": "10000", "key": "HO"},
                "issuetype": {"id": "10001", "name": "Task"}
            }
        }));
    }
    // 100 points an hour, 80 spent by others: the backfill's page (1 + 3 issues) and the
    // reads around it leave under 20.
    jira.set_quota(100, std::time::Duration::from_secs(3600));
    jira.spend_quota(80);
    let (s, v) = api
        .post(
            "/api/integrations",
            &json!({
                "workspace_id": "budget-ws", "provider": "jira", "base_url": jira.base_url(),
                "auth": {"type": "basic", "email": "bot@example.com", "api_token": "t"},
                "webhook_secrets": [common::SECRET],
                "scope": {"jql": "project = HO"},
                "reconcile_every_s": 3600,
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["integration_id"].as_str().unwrap().to_owned();
    let v = eventually("the budget", || async {
        let (_, v) = api.get(&format!("/api/integrations/{id}")).await;
        (v["sync"]["backfill"]["state"] == "done" && v["budget"]["near_limit"] == true).then_some(v)
    })
    .await;
    assert!(
        v["budget"]["remaining"].as_u64().is_some_and(|r| r < 20),
        "{v}"
    );
    assert_eq!(v["budget"]["limit"], 100, "{v}");
    let cookie = sign_in(&api).await;
    let page = api
        .ui_page(&cookie, &format!("/ui/integrations/{id}"))
        .await;
    let line = page
        .split("id=\"budget\"")
        .nth(1)
        .and_then(|rest| rest.split("</dd>").next())
        .unwrap_or_else(|| panic!("no budget line: {page}"));
    assert!(line.contains("near limit"), "{line}");
    assert!(line.contains("% left"), "{line}");
    assert!(line.contains(", resets <time"), "{line}");
    server.shutdown().await;
}
