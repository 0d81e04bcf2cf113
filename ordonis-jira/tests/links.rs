//! Links through the Jira adapter's `LinkProvider`, against the fake Jira site over real
//! HTTP: remote links upserted by `globalId` (created, then updated in place), a post whose
//! answer is lost, listing with other apps' links, deletion, and Jira's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::ctx;
use ordonis_core::{LinkDraft, ObjectKey, Provider, ProviderContext, ProviderError, RemoteLink};
use ordonis_fakes::jira::FakeJira;
use ordonis_jira::JiraProvider;
use serde_json::json;

const SESSION: &str = "ordonis:session:0193ab7f-0000-7000-8000-000000000001";
const ARTIFACT: &str = "ordonis:artifact:0193ab7f-0000-7000-8000-000000000002";

async fn site() -> (FakeJira, JiraProvider, ProviderContext, ObjectKey) {
    let jira = FakeJira::start().await.unwrap();
    jira.insert_issue(json!({
        "id": "10001", "key": "KAN-1",
        "fields": {"summary": "Login fails", "updated": "2026-12-07T10:00:00.000+0000",
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}}}
    }));
    let p = JiraProvider::new()
        .unwrap()
        .with_write_spacing(Duration::ZERO);
    let c = ctx(&jira.base_url());
    (jira, p, c, ObjectKey::new("10001", "issue"))
}

fn session<'a>(title: &'a str, summary: Option<&'a str>) -> LinkDraft<'a> {
    LinkDraft {
        global_id: SESSION,
        title,
        url: "https://ordonis.example.com/sessions/0193ab7f",
        summary,
    }
}

#[tokio::test]
async fn a_link_is_created_then_updated_in_place_by_its_global_id() {
    let (jira, p, c, task) = site().await;
    let links = p.links().unwrap();
    let made = links
        .upsert_link(
            &c,
            &task,
            &session("Triage bot for Alice Smith · running", Some("reading logs")),
            None,
        )
        .await
        .unwrap();
    assert_eq!(made.global_id.as_deref(), Some(SESSION));
    let stored = jira.remote_links("10001");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"].to_string(), made.external_id);
    assert_eq!(
        stored[0]["application"],
        json!({"type": "com.collabhub.ordonis", "name": "Ordonis"})
    );
    assert_eq!(stored[0]["relationship"], "agent session");
    assert_eq!(
        stored[0]["object"],
        json!({"url": "https://ordonis.example.com/sessions/0193ab7f",
               "title": "Triage bot for Alice Smith · running", "summary": "reading logs"})
    );

    // The session's state changed: the same link, its title new and its summary gone.
    let updated = links
        .upsert_link(
            &c,
            &task,
            &session("Triage bot for Alice Smith · done", None),
            Some(&made.external_id),
        )
        .await
        .unwrap();
    assert_eq!(updated.external_id, made.external_id, "updated in place");
    let stored = jira.remote_links("KAN-1");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0]["object"],
        json!({"url": "https://ordonis.example.com/sessions/0193ab7f",
               "title": "Triage bot for Alice Smith · done"})
    );
    assert_eq!(
        links.list_links(&c, &task).await.unwrap(),
        [RemoteLink {
            external_id: made.external_id.clone(),
            global_id: Some(SESSION.into()),
            title: "Triage bot for Alice Smith · done".into(),
            url: "https://ordonis.example.com/sessions/0193ab7f".into(),
        }]
    );
}

#[tokio::test]
async fn a_lost_answer_then_a_retry_leaves_exactly_one_link() {
    let (jira, p, c, task) = site().await;
    let links = p.links().unwrap();
    jira.lose_next_link_answer(1);
    let draft = session("Triage bot for Alice Smith · running", None);
    let e = links
        .upsert_link(&c, &task, &draft, None)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(jira.remote_links("10001").len(), 1, "the link was made");
    let again = links.upsert_link(&c, &task, &draft, None).await.unwrap();
    let stored = jira.remote_links("10001");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["id"].to_string(), again.external_id);
}

#[tokio::test]
async fn the_list_holds_others_links_and_a_deletion_is_done_once_gone() {
    let (jira, p, c, task) = site().await;
    let links = p.links().unwrap();
    let theirs = jira
        .add_remote_link(
            "KAN-1",
            &json!({"object": {"url": "https://wiki.example.com/runbook", "title": "Runbook"}}),
        )
        .unwrap();
    let ours = links
        .upsert_link(
            &c,
            &task,
            &LinkDraft {
                global_id: ARTIFACT,
                title: "PR #42: fix the login",
                url: "https://github.com/acme/app/pull/42",
                summary: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(jira.remote_links("10001")[1]["relationship"], "artifact");
    let listed = links.list_links(&c, &task).await.unwrap();
    assert_eq!(
        listed,
        [
            RemoteLink {
                external_id: theirs.to_string(),
                global_id: None,
                title: "Runbook".into(),
                url: "https://wiki.example.com/runbook".into(),
            },
            ours.clone(),
        ]
    );

    links
        .delete_link(&c, &task, &ours.external_id)
        .await
        .unwrap();
    links
        .delete_link(&c, &task, &ours.external_id)
        .await
        .expect("deleting a link already gone is done");
    let left = links.list_links(&c, &task).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].external_id, theirs.to_string());
    assert!(
        jira.requests().iter().any(|r| r
            == &format!(
                "DELETE /rest/api/3/issue/10001/remotelink/{}",
                ours.external_id
            )),
        "{:?}",
        jira.requests()
    );
}

#[tokio::test]
async fn jiras_refusals_are_typed() {
    let (jira, p, c, task) = site().await;
    let links = p.links().unwrap();

    // No title: Jira's 400 names the field; a refusal, never retried.
    let e = links
        .upsert_link(&c, &task, &session("", None), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Terminal(m) if m.contains("'title' is required")),
        "{e:?}"
    );
    assert!(jira.remote_links("10001").is_empty());

    // No permission to link issues (or linking switched off).
    jira.fail_next_write(403, &[]);
    let e = links
        .upsert_link(&c, &task, &session("t", None), None)
        .await
        .unwrap_err();
    assert!(matches!(&e, ProviderError::Forbidden(_)), "{e:?}");
    jira.fail_next_write(403, &[]);
    let e = links.delete_link(&c, &task, "10000").await.unwrap_err();
    assert!(matches!(&e, ProviderError::Forbidden(_)), "{e:?}");

    // Jira's per-issue write limit holds back this issue only.
    jira.fail_next_write(
        429,
        &[
            ("Retry-After", "2"),
            ("RateLimit-Reason", "jira-per-issue-on-write"),
        ],
    );
    let e = links
        .upsert_link(&c, &task, &session("t", None), None)
        .await
        .unwrap_err();
    assert!(matches!(&e, ProviderError::ObjectBusy { .. }), "{e:?}");

    // An unknown issue, a global id Jira would not keep, an id that is not one.
    let gone = ObjectKey::new("99999", "issue");
    assert!(matches!(
        links
            .upsert_link(&c, &gone, &session("t", None), None)
            .await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(matches!(
        links.list_links(&c, &gone).await,
        Err(ProviderError::NotFound(_))
    ));
    let before = jira.requests().len();
    let no_id = LinkDraft {
        global_id: "",
        ..session("t", None)
    };
    assert!(matches!(
        links.upsert_link(&c, &task, &no_id, None).await,
        Err(ProviderError::BadInput(_))
    ));
    for bad in ["../10001", "1?x=1", ""] {
        assert!(links.delete_link(&c, &task, bad).await.is_err(), "{bad}");
    }
    assert_eq!(jira.requests().len(), before, "nothing was sent");
    assert!(jira.remote_links("10001").is_empty());
}

#[tokio::test]
async fn the_fake_answers_as_jira_does() {
    let (jira, _p, _c, _task) = site().await;
    let http = reqwest::Client::new();
    let url = format!("{}/rest/api/3/issue/KAN-1/remotelink", jira.base_url());
    let post = |body: serde_json::Value| {
        http.post(&url)
            .basic_auth("bot@example.com", Some("tok"))
            .json(&body)
            .send()
    };
    let link = json!({"globalId": "g-1", "object": {"url": "https://x.example", "title": "X"}});
    let r = post(link.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let made: serde_json::Value = r.json().await.unwrap();
    assert!(made["id"].is_u64(), "{made}");
    assert_eq!(
        made["self"],
        format!(
            "{}/rest/api/3/issue/10001/remotelink/{}",
            jira.base_url(),
            made["id"]
        )
    );
    let r = post(link).await.unwrap();
    assert_eq!(r.status(), 200, "the same globalId updates");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), made);

    let r = post(json!({"object": {"title": "no url"}})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"errorMessages": [], "errors": {"url": "'url' is required."}})
    );

    // One link by its global id, as an object; a global id the issue lacks is a 404.
    let one: serde_json::Value = http
        .get(format!("{url}?globalId=g-1"))
        .basic_auth("bot@example.com", Some("tok"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["globalId"], "g-1");
    let none = http
        .get(format!("{url}?globalId=g-2"))
        .basic_auth("bot@example.com", Some("tok"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    // Without credentials, nothing.
    let anon = http.get(&url).send().await.unwrap();
    assert_eq!(anon.status(), 401);
}
