//! Links through the Asana adapter's `LinkProvider`, against the fake Asana over real HTTP:
//! external attachments made as `multipart/form-data`, replaced (Asana cannot edit them) when
//! the link changes, found again after a lost answer, listed with a person's, deleted, and
//! Asana's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TOKEN, ctx};
use ordonis_asana::AsanaProvider;
use ordonis_core::{LinkDraft, ObjectKey, Provider, ProviderContext, ProviderError, RemoteLink};
use ordonis_fakes::asana::FakeAsana;
use serde_json::json;

const SESSION: &str = "ordonis:session:0193ab7f-0000-7000-8000-000000000001";
const SESSION_URL: &str = "https://ordonis.example.com/sessions/0193ab7f";

async fn site() -> (FakeAsana, AsanaProvider, ProviderContext, ObjectKey) {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let gid = fake.create_task("Login fails");
    let p = AsanaProvider::new().unwrap();
    let c = ctx(&fake.base_url(), json!({}));
    (fake, p, c, ObjectKey::new(gid, "task"))
}

fn session(title: &str) -> LinkDraft<'_> {
    LinkDraft {
        global_id: SESSION,
        title,
        url: SESSION_URL,
        summary: Some("reading the logs"),
    }
}

#[tokio::test]
async fn a_link_is_an_external_attachment_replaced_when_it_changes() {
    let (fake, p, c, task) = site().await;
    let links = p.links().unwrap();
    let made = links
        .upsert_link(
            &c,
            &task,
            &session("Triage bot for Alice Smith · running"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        made,
        RemoteLink {
            external_id: made.external_id.clone(),
            global_id: None,
            title: "Triage bot for Alice Smith · running".into(),
            url: SESSION_URL.into(),
        }
    );
    let stored = fake.attachments(&task.external_id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["gid"], made.external_id.as_str());
    assert_eq!(stored[0]["resource_subtype"], "external");
    assert_eq!(stored[0]["view_url"], SESSION_URL);
    assert_eq!(stored[0]["parent"]["gid"], task.external_id.as_str());

    // The same link again: nothing to do, the same attachment.
    let same = links
        .upsert_link(
            &c,
            &task,
            &session("Triage bot for Alice Smith · running"),
            Some(&made.external_id),
        )
        .await
        .unwrap();
    assert_eq!(same, made);
    assert_eq!(fake.attachments(&task.external_id).len(), 1);

    // The session's state changed: a new attachment replaces the old one.
    let done = links
        .upsert_link(
            &c,
            &task,
            &session("Triage bot for Alice Smith · done"),
            Some(&made.external_id),
        )
        .await
        .unwrap();
    assert_ne!(done.external_id, made.external_id);
    let stored = fake.attachments(&task.external_id);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["gid"], done.external_id.as_str());
    assert_eq!(stored[0]["name"], "Triage bot for Alice Smith · done");
    assert_eq!(links.list_links(&c, &task).await.unwrap(), [done]);
}

#[tokio::test]
async fn a_lost_answer_then_a_retry_leaves_exactly_one_link() {
    let (fake, p, c, task) = site().await;
    let links = p.links().unwrap();
    let first = links
        .upsert_link(&c, &task, &session("Bot for Alice · running"), None)
        .await
        .unwrap();

    // The replacement is made, its answer lost: the old one is still there.
    fake.lose_next_attachment_answer(1);
    let e = links
        .upsert_link(
            &c,
            &task,
            &session("Bot for Alice · done"),
            Some(&first.external_id),
        )
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(fake.attachments(&task.external_id).len(), 2);

    // The retry finds the replacement, makes none, and removes the old one.
    let again = links
        .upsert_link(
            &c,
            &task,
            &session("Bot for Alice · done"),
            Some(&first.external_id),
        )
        .await
        .unwrap();
    let stored = fake.attachments(&task.external_id);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["gid"], again.external_id.as_str());
    assert_eq!(stored[0]["name"], "Bot for Alice · done");

    // A first post whose answer is lost, retried without a previous: one link too.
    let (fake, p, c, task) = site().await;
    let links = p.links().unwrap();
    fake.lose_next_attachment_answer(1);
    let draft = session("Bot for Alice · running");
    assert!(links.upsert_link(&c, &task, &draft, None).await.is_err());
    let found = links.upsert_link(&c, &task, &draft, None).await.unwrap();
    let stored = fake.attachments(&task.external_id);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["gid"], found.external_id.as_str());
}

#[tokio::test]
async fn the_list_holds_a_persons_links_and_a_deletion_is_done_once_gone() {
    let (fake, p, c, task) = site().await;
    let links = p.links().unwrap();
    let theirs = fake.add_attachment_as(&task.external_id, "Runbook", "https://wiki.example/rb");
    let ours = links
        .upsert_link(
            &c,
            &task,
            &LinkDraft {
                global_id: "ordonis:artifact:1",
                title: "PR #42: fix the login",
                url: "https://github.com/acme/app/pull/42",
                summary: None,
            },
            // A previous id the task does not hold is never deleted.
            Some(&theirs.replace('0', "9")),
        )
        .await
        .unwrap();
    let listed = links.list_links(&c, &task).await.unwrap();
    assert_eq!(
        listed,
        [
            RemoteLink {
                external_id: theirs.clone(),
                global_id: None,
                title: "Runbook".into(),
                url: "https://wiki.example/rb".into(),
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
    let left = fake.attachments(&task.external_id);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["gid"], theirs.as_str());
}

#[tokio::test]
async fn asanas_refusals_are_typed() {
    let (fake, p, c, task) = site().await;
    let links = p.links().unwrap();

    // No name: Asana's 400 names the field; a refusal, never retried.
    let e = links
        .upsert_link(&c, &task, &session(""), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Terminal(m) if m.contains("name: Missing input")),
        "{e:?}"
    );
    let e = links
        .upsert_link(
            &c,
            &task,
            &LinkDraft {
                url: "not a url",
                ..session("t")
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(&e, ProviderError::Terminal(_)), "{e:?}");
    assert!(fake.attachments(&task.external_id).is_empty());

    // A token that may not see the task.
    fake.hide_task(&task.external_id).await;
    let e = links
        .upsert_link(&c, &task, &session("t"), None)
        .await
        .unwrap_err();
    assert!(matches!(&e, ProviderError::Forbidden(_)), "{e:?}");
    fake.show_task(&task.external_id).await;
    fake.fail_next_requests(1, 403, &[]);
    let e = links.delete_link(&c, &task, "1200").await.unwrap_err();
    assert!(matches!(&e, ProviderError::Forbidden(_)), "{e:?}");

    // A rate limit waits; a server error is retried.
    fake.fail_next_requests(1, 429, &[("Retry-After", "3")]);
    let e = links.list_links(&c, &task).await.unwrap_err();
    assert!(matches!(&e, ProviderError::RateLimited { .. }), "{e:?}");
    fake.fail_next_requests(1, 500, &[]);
    assert!(
        links
            .upsert_link(&c, &task, &session("t"), None)
            .await
            .unwrap_err()
            .is_retryable()
    );

    // An unknown task, and gids that are not gids (nothing sent for those).
    let gone = ObjectKey::new("1299999999999999", "task");
    assert!(matches!(
        links.upsert_link(&c, &gone, &session("t"), None).await,
        Err(ProviderError::NotFound(_))
    ));
    for bad in ["../users/me", "1?x=1", ""] {
        assert!(links.delete_link(&c, &task, bad).await.is_err(), "{bad}");
        assert!(
            links
                .list_links(&c, &ObjectKey::new(bad, "task"))
                .await
                .is_err(),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn the_fake_takes_only_multipart_as_asana_does() {
    let (fake, _p, _c, task) = site().await;
    let http = reqwest::Client::new();
    let url = format!("{}/attachments", fake.base_url());
    // A JSON body is refused, as Asana refuses it.
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(
            &json!({"data": {"resource_subtype": "external", "parent": task.external_id,
            "name": "x", "url": "https://x.example"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["errors"][0]["message"].is_string(), "{body}");

    let form = |fields: &[(&'static str, &str)]| {
        fields
            .iter()
            .fold(reqwest::multipart::Form::new(), |f, (k, v)| {
                f.text(*k, (*v).to_owned())
            })
    };
    let post = |fields: reqwest::multipart::Form| {
        http.post(&url).bearer_auth(TOKEN).multipart(fields).send()
    };
    let gid = task.external_id.as_str();
    // `external` needs a parent, a name and a URL; no subtype is a file upload, which needs
    // a file.
    for (fields, why) in [
        (
            form(&[
                ("resource_subtype", "external"),
                ("name", "x"),
                ("url", "https://x.example"),
            ]),
            "parent: Missing input",
        ),
        (
            form(&[
                ("resource_subtype", "external"),
                ("parent", gid),
                ("url", "https://x.example"),
            ]),
            "name: Missing input",
        ),
        (
            form(&[
                ("resource_subtype", "external"),
                ("parent", gid),
                ("name", "x"),
            ]),
            "url: Missing input",
        ),
        (form(&[("parent", gid)]), "file: Missing input"),
    ] {
        let r = post(fields).await.unwrap();
        assert_eq!(r.status(), 400, "{why}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body, json!({"errors": [{"message": why}]}));
    }
    let r = post(form(&[
        ("resource_subtype", "external"),
        ("parent", "1299999999999999"),
        ("name", "x"),
        ("url", "https://x.example"),
    ]))
    .await
    .unwrap();
    assert_eq!(r.status(), 404);

    // Made: the compact record, and the URL where the spec puts it when asked for.
    let r = http
        .post(format!("{url}?opt_fields=view_url,host"))
        .bearer_auth(TOKEN)
        .multipart(form(&[
            ("resource_subtype", "external"),
            ("parent", gid),
            ("name", "PR #42"),
            ("url", "https://github.com/acme/app/pull/42"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let made: serde_json::Value = r.json().await.unwrap();
    let a = &made["data"];
    assert_eq!(a["resource_type"], "attachment");
    assert_eq!(a["resource_subtype"], "external");
    assert_eq!(a["name"], "PR #42");
    assert_eq!(a["view_url"], "https://github.com/acme/app/pull/42");
    assert_eq!(a["host"], "external");
    assert!(a.get("permanent_url").is_none(), "only what is asked: {a}");

    let listed: serde_json::Value = http
        .get(format!("{url}?parent={gid}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["data"],
        json!([{"gid": a["gid"], "resource_type": "attachment", "name": "PR #42",
                "resource_subtype": "external"}])
    );
    let anon = http
        .get(format!("{url}?parent={gid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}
