//! Comments through the Asana adapter's `CommentProvider`, against the fake Asana over real
//! HTTP: comment stories in `html_text` with the attribution and marker footer, a person's
//! reply among system stories, paging, a post whose answer is lost, creator-only edits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TOKEN, ctx};
use ordonis_asana::AsanaProvider;
use ordonis_core::{CommentDraft, ObjectKey, Provider, ProviderContext, ProviderError};
use ordonis_fakes::asana::{API_USER, FakeAsana, HUMAN_USER};
use serde_json::json;

async fn site() -> (FakeAsana, AsanaProvider, ProviderContext, ObjectKey) {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let gid = fake.create_task("Login fails");
    let p = AsanaProvider::new().unwrap();
    let c = ctx(&fake.base_url(), json!({}));
    (fake, p, c, ObjectKey::new(gid, "task"))
}

fn draft<'a>(marker: &'a str, body: &'a str) -> CommentDraft<'a> {
    CommentDraft {
        marker,
        body,
        attribution: "Triage bot (agent) for Alice Smith",
        receipt_url: None,
    }
}

#[tokio::test]
async fn a_posted_comment_is_rich_text_ending_with_attribution_and_marker() {
    let (fake, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    let posted = comments
        .post_comment(
            &c,
            &task,
            &draft("cmt-1", "Fixed in **main** & <deployed>."),
        )
        .await
        .unwrap();
    assert_eq!(posted.marker.as_deref(), Some("cmt-1"));
    assert_eq!(posted.author.as_ref().unwrap().account_id, API_USER);
    let stories = fake.stories(&task.external_id);
    assert_eq!(stories.len(), 1);
    let html = stories[0]["html_text"].as_str().unwrap();
    assert!(html.starts_with("<body>"), "{html}");
    assert!(
        html.contains("<strong>main</strong> &amp; &lt;deployed&gt;."),
        "{html}"
    );
    assert!(
        html.contains("<em>— Triage bot (agent) for Alice Smith · ref cmt-1</em>"),
        "{html}"
    );
    let text = stories[0]["text"].as_str().unwrap();
    assert!(text.ends_with("· ref cmt-1"), "{text}");
    let fetched = comments
        .fetch_comment(&c, &task, &posted.external_id)
        .await
        .unwrap();
    assert_eq!(fetched, posted);
}

#[tokio::test]
async fn a_persons_reply_is_listed_and_system_stories_are_not() {
    let (fake, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    let ours = comments
        .post_comment(&c, &task, &draft("cmt-1", "Can you try again?"))
        .await
        .unwrap();
    fake.add_system_story(
        &task.external_id,
        "due_date_changed",
        "Greg changed the due date",
    );
    let reply = fake.add_comment_as(&task.external_id, HUMAN_USER, "Greg", "Works now");
    let page = comments.list_comments(&c, &task, None).await.unwrap();
    let ids: Vec<&str> = page
        .comments
        .iter()
        .map(|x| x.external_id.as_str())
        .collect();
    assert_eq!(ids, [ours.external_id.as_str(), reply.as_str()]);
    assert_eq!(page.comments[1].marker, None);
    assert_eq!(page.comments[1].body, "Works now");
    assert_eq!(
        page.comments[1]
            .author
            .as_ref()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Greg")
    );
    // A system story is not a comment.
    let system = fake.stories(&task.external_id)[1]["gid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(matches!(
        comments.fetch_comment(&c, &task, &system).await,
        Err(ProviderError::BadInput(_))
    ));
}

#[tokio::test]
async fn stories_page_and_a_marker_is_found_on_a_later_page() {
    let (fake, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    for i in 0..150 {
        fake.add_comment_as(&task.external_id, HUMAN_USER, "Greg", &format!("note {i}"));
    }
    let ours = comments
        .post_comment(&c, &task, &draft("cmt-late", "the last word"))
        .await
        .unwrap();
    let first = comments.list_comments(&c, &task, None).await.unwrap();
    assert_eq!(first.comments.len(), 100);
    let second = comments
        .list_comments(&c, &task, first.next.as_deref())
        .await
        .unwrap();
    assert_eq!(second.comments.len(), 51);
    assert_eq!(second.next, None);
    let found = comments.find_comment(&c, &task, "cmt-late").await.unwrap();
    assert_eq!(found.map(|f| f.external_id), Some(ours.external_id));
    assert_eq!(
        comments.find_comment(&c, &task, "nope").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_lost_answer_is_retryable_and_the_story_is_found_by_its_marker() {
    let (fake, p, c, task) = site().await;
    let comments = p.comments().unwrap();
    fake.lose_next_story_answer(1);
    let e = comments
        .post_comment(&c, &task, &draft("cmt-9", "Deploying now."))
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(
        fake.stories(&task.external_id).len(),
        1,
        "Asana made it anyway"
    );
    let found = comments.find_comment(&c, &task, "cmt-9").await.unwrap();
    assert!(found.is_some_and(|f| f.body.starts_with("Deploying now.")));
}

#[tokio::test]
async fn only_our_own_stories_are_edited_or_deleted() {
    let (fake, p, c, task) = site().await;
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
    assert_eq!(edited.marker.as_deref(), Some("cmt-1"));
    assert_eq!(fake.stories(&task.external_id)[0]["is_edited"], true);

    let theirs = fake.add_comment_as(&task.external_id, HUMAN_USER, "Greg", "mine");
    let e = comments
        .edit_comment(&c, &task, &theirs, &draft("cmt-x", "hijack"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Terminal(m) if m.contains("creator")),
        "{e:?}"
    );
    assert!(comments.delete_comment(&c, &task, &theirs).await.is_err());

    comments
        .delete_comment(&c, &task, &ours.external_id)
        .await
        .unwrap();
    comments
        .delete_comment(&c, &task, &ours.external_id)
        .await
        .unwrap();
    assert_eq!(fake.stories(&task.external_id).len(), 1);
    assert!(matches!(
        comments.fetch_comment(&c, &task, &ours.external_id).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(
        comments
            .fetch_comment(&c, &task, "../users/me")
            .await
            .is_err()
    );
}
