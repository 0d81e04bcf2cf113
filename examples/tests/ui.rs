//! The UI over plain HTTP: sign-in and its cookie, protected pages, escaping, the edit form
//! and the inbox's replay button.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, TOKEN, eventually, sign, start_sqlite};
use ordonis_testkit::fake_jira::FakeJira;
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
        .body(form(&[("due_date", "someday")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

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
