//! Comments through the Jira adapter's `CommentProvider`, against the fake Jira site over
//! real HTTP: ADF bodies with the attribution line, the marker property, a person's reply,
//! paging, a post whose answer is lost, and Jira's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::ctx;
use ordonis_core::{CommentDraft, ObjectKey, Provider, ProviderError};
use ordonis_fakes::jira::{API_ACCOUNT, FakeJira, MAX_COMMENT_CHARS};
use ordonis_jira::JiraProvider;
use ordonis_jira::comments::MARKER_PROPERTY;
use serde_json::{Value, json};

async fn site() -> (
    FakeJira,
    JiraProvider,
    ordonis_core::ProviderContext,
    ObjectKey,
) {
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

fn draft<'a>(marker: &'a str, body: &'a str) -> CommentDraft<'a> {
    CommentDraft {
        marker,
        body,
        attribution: "Triage bot (agent) for Alice Smith",
        receipt_url: None,
    }
}

/// The text of an ADF document's paragraphs, one per line.
fn paragraphs(doc: &Value) -> Vec<String> {
    doc["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["content"]
                .as_array()
                .map(|c| c.iter().filter_map(|t| t["text"].as_str()).collect())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn a_posted_comment_carries_its_attribution_and_marker() {
    let (jira, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    let posted = comments
        .post_comment(&c, &task, &draft("cmt-1", "Fixed in **main**."))
        .await
        .unwrap();
    assert_eq!(posted.marker.as_deref(), Some("cmt-1"));
    assert_eq!(
        posted.body,
        "Fixed in **main**.\n\n*— Triage bot (agent) for Alice Smith*"
    );
    assert_eq!(posted.author.as_ref().unwrap().account_id, API_ACCOUNT);
    // In Jira: one comment, an ADF body whose last paragraph is the attribution, and the
    // marker as a comment property a person does not see.
    let stored = jira.comments("10001");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        paragraphs(&stored[0]["body"]),
        ["Fixed in main.", "— Triage bot (agent) for Alice Smith"]
    );
    assert_eq!(
        stored[0]["properties"],
        json!([{"key": MARKER_PROPERTY, "value": {"comment_id": "cmt-1"}}])
    );
    // Fetched again, it reads the same.
    let fetched = comments
        .fetch_comment(&c, &task, &posted.external_id)
        .await
        .unwrap();
    assert_eq!(fetched, posted);
}

#[tokio::test]
async fn a_persons_reply_is_listed_after_ours_without_a_marker() {
    let (jira, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    let ours = comments
        .post_comment(&c, &task, &draft("cmt-1", "Can you try again?"))
        .await
        .unwrap();
    let reply = jira.add_comment_as("10001", "acc-ann", "Ann", "Works now, thanks <3 & more");
    let page = comments.list_comments(&c, &task, None).await.unwrap();
    assert_eq!(page.next, None);
    let ids: Vec<&str> = page
        .comments
        .iter()
        .map(|x| x.external_id.as_str())
        .collect();
    assert_eq!(ids, [ours.external_id.as_str(), reply.as_str()]);
    let r = &page.comments[1];
    assert_eq!(r.marker, None);
    // Canonical Markdown: `<` and `&` escaped, so the text reads back as typed.
    assert_eq!(r.body, "Works now, thanks \\<3 \\& more");
    assert_eq!(
        r.author.as_ref().unwrap().display_name.as_deref(),
        Some("Ann")
    );
}

#[tokio::test]
async fn comments_page_oldest_first_and_a_marker_is_found_on_a_later_page() {
    let (jira, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    for i in 0..230 {
        jira.add_comment_as("10001", "acc-ann", "Ann", &format!("note {i}"));
    }
    let ours = comments
        .post_comment(&c, &task, &draft("cmt-late", "the last word"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = comments
            .list_comments(&c, &task, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.comments.len() <= 100);
        seen.extend(page.comments.into_iter().map(|x| x.body));
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 231);
    assert_eq!(seen[0], "note 0");
    assert_eq!(seen[229], "note 229");
    let found = comments.find_comment(&c, &task, "cmt-late").await.unwrap();
    assert_eq!(found.map(|f| f.external_id), Some(ours.external_id));
    assert_eq!(
        comments.find_comment(&c, &task, "cmt-none").await.unwrap(),
        None
    );
    assert!(
        comments
            .list_comments(&c, &task, Some("not-a-number"))
            .await
            .is_err()
    );
}

/// The post's answer is lost after Jira made the comment: the post fails as retryable, and
/// the comment is found by its marker, so a retry does not make a second one.
#[tokio::test]
async fn a_lost_answer_is_retryable_and_the_comment_is_found_by_its_marker() {
    let (jira, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    jira.lose_next_comment_answer(1);
    let e = comments
        .post_comment(&c, &task, &draft("cmt-9", "Deploying now."))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(jira.comments("10001").len(), 1, "Jira made it anyway");
    let found = comments.find_comment(&c, &task, "cmt-9").await.unwrap();
    assert!(found.is_some_and(|f| f.body.starts_with("Deploying now.")));
    assert_eq!(jira.comments("10001").len(), 1);
}

#[tokio::test]
async fn our_comments_are_edited_and_deleted_a_persons_are_refused() {
    let (jira, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    let ours = comments
        .post_comment(&c, &task, &draft("cmt-1", "first"))
        .await
        .unwrap();
    let edited = comments
        .edit_comment(&c, &task, &ours.external_id, &draft("cmt-1", "second"))
        .await
        .unwrap();
    assert!(edited.body.starts_with("second"), "{}", edited.body);
    assert!(
        edited
            .edited_at_ms
            .is_some_and(|t| t >= edited.created_at_ms)
    );
    assert_eq!(paragraphs(&jira.comments("10001")[0]["body"])[0], "second");

    let theirs = jira.add_comment_as("10001", "acc-ann", "Ann", "mine");
    let e = comments
        .edit_comment(&c, &task, &theirs, &draft("cmt-x", "hijack"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Terminal(m) if m.contains("permission")),
        "{e:?}"
    );
    assert!(comments.delete_comment(&c, &task, &theirs).await.is_err());

    comments
        .delete_comment(&c, &task, &ours.external_id)
        .await
        .unwrap();
    // Deleting what is already gone is done, not an error.
    comments
        .delete_comment(&c, &task, &ours.external_id)
        .await
        .unwrap();
    assert!(matches!(
        comments.fetch_comment(&c, &task, &ours.external_id).await,
        Err(ProviderError::NotFound(_))
    ));
    assert_eq!(
        jira.comments("10001").len(),
        1,
        "the person's comment stays"
    );
}

#[tokio::test]
async fn jiras_limits_are_refusals_and_bad_ids_never_reach_the_network() {
    let (jira, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    let long = "x".repeat(MAX_COMMENT_CHARS + 1);
    let e = comments
        .post_comment(&c, &task, &draft("cmt-long", &long))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Terminal(m) if m.contains("32,767")),
        "{e:?}"
    );
    assert!(jira.comments("10001").is_empty());
    let before = jira.requests().len();
    for bad in ["../10001", "1?x=1", ""] {
        assert!(
            comments.fetch_comment(&c, &task, bad).await.is_err(),
            "{bad}"
        );
    }
    assert_eq!(jira.requests().len(), before);
    let gone = ObjectKey::new("99999", "issue");
    assert!(matches!(
        comments.post_comment(&c, &gone, &draft("c", "x")).await,
        Err(ProviderError::NotFound(_))
    ));
}
