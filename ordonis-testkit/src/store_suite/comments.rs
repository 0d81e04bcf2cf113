//! Store-suite cases for task comments: written with their unit of work or not at all, fenced
//! by their revision, one row per provider comment, listed oldest first, per workspace.

use std::sync::Arc;

use ordonis_core::store::{Store, UnitOfWork};
use ordonis_core::{
    Actor, CommentId, CommentOp, CommentRecord, CommentSync, CommentWrite, LedgerDraft, Op,
    StoreError, Task, TaskComment,
};
use time::OffsetDateTime;

use super::fixtures::*;

/// A comment on `task` written at `at_s` seconds past an epoch, from a provider when
/// `external` is given.
fn comment(task: &Task, at_s: i64, external: Option<&str>) -> TaskComment {
    TaskComment {
        id: CommentId::new(),
        workspace_id: task.workspace_id.clone(),
        task_id: task.id,
        revision: 1,
        author: Actor::human("usr_1").named("Alice Smith"),
        source: if external.is_some() {
            "jira"
        } else {
            "collabhub"
        }
        .to_owned(),
        body: format!("comment at {at_s}"),
        integration_id: None,
        external_id: external.map(str::to_owned),
        created_at: OffsetDateTime::from_unix_timestamp(1_800_000_000 + at_s)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        edited_at: None,
        deleted: false,
        remote_version_ms: None,
        sync: external
            .is_none()
            .then(|| CommentSync::pending(CommentOp::Post)),
    }
}

fn entry_for(task: &Task, c: &TaskComment) -> LedgerDraft {
    let mut d = draft(task, 0);
    d.op = Op::CommentAdd;
    d.field = None;
    d.before = None;
    d.after = None;
    d.comment = Some(CommentRecord {
        id: c.id,
        external_id: c.external_id.clone(),
        body: Some(c.body.clone()),
    });
    d
}

async fn insert(store: &dyn Store, c: &TaskComment) -> Result<(), StoreError> {
    let task = Task {
        id: c.task_id,
        ..Task::new(c.workspace_id.clone())
    };
    let mut uow = UnitOfWork::new(c.workspace_id.clone());
    uow.comments.push(CommentWrite {
        comment: c.clone(),
        expected_revision: None,
    });
    uow.ledger.push(entry_for(&task, c));
    store.commit(uow).await.map(|_| ())
}

/// Comments round-trip whole, list oldest first (by creation time, not insertion order) with
/// tombstones, and carry their ledger entry in the same commit.
pub async fn comments_round_trip_oldest_first(store: Arc<dyn Store>) {
    let w = ws("comments");
    let task = insert_task(&*store, &w).await;
    let later = comment(&task, 20, None);
    let mut earlier = comment(&task, 10, Some("10001"));
    earlier.deleted = true;
    earlier.edited_at = Some(earlier.created_at);
    earlier.remote_version_ms = Some(1_800_000_010_000);
    for c in [&later, &earlier] {
        insert(&*store, c).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let listed = store
        .task_comments(&w, task.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed, vec![earlier.clone(), later.clone()]);
    assert_eq!(
        store.comment(later.id).await.unwrap_or_default(),
        Some(later.clone())
    );
    // The entries went in with them, naming the comments.
    let entries = store
        .task_ledger(&w, task.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let named: Vec<_> = entries
        .iter()
        .filter_map(|e| e.record.comment.as_ref().map(|c| c.id))
        .collect();
    assert_eq!(named, vec![later.id, earlier.id]);
    // Another workspace sees none of them.
    assert!(
        store
            .task_comments(&ws("other"), task.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
}

/// An update is fenced by the comment's revision: a stale one is `Conflict` and writes
/// nothing of its unit (no ledger entry), a second insert of one id is `Conflict` too.
pub async fn comment_updates_are_fenced_by_revision(store: Arc<dyn Store>) {
    let w = ws("comment-rev");
    let task = insert_task(&*store, &w).await;
    let c = comment(&task, 1, None);
    insert(&*store, &c).await.unwrap_or_else(|e| panic!("{e}"));
    let size = store.ledger_size(&w).await.unwrap_or_default();

    let mut edited = c.clone();
    edited.body = "edited".into();
    edited.revision = 2;
    let mut stale = UnitOfWork::new(w.clone());
    stale.comments.push(CommentWrite {
        comment: edited.clone(),
        expected_revision: Some(7),
    });
    stale.ledger.push(entry_for(&task, &edited));
    let err = store.commit(stale).await.err();
    assert!(matches!(err, Some(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.ledger_size(&w).await.unwrap_or_default(), size);
    assert_eq!(
        store
            .comment(c.id)
            .await
            .unwrap_or_default()
            .map(|c| c.body),
        Some(c.body.clone())
    );

    let mut fresh = UnitOfWork::new(w.clone());
    fresh.comments.push(CommentWrite {
        comment: edited.clone(),
        expected_revision: Some(1),
    });
    store.commit(fresh).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.comment(c.id).await.unwrap_or_default(), Some(edited));

    let again = insert(&*store, &c).await.err();
    assert!(matches!(again, Some(StoreError::Conflict(_))), "{again:?}");
}

/// One row per provider comment: a second row of the same task, integration and provider id
/// is `Conflict`, whether inserted or given that id by an update, while comments with no
/// provider id never collide and the same provider id on another task is another comment.
pub async fn one_row_per_provider_comment(store: Arc<dyn Store>) {
    let w = ws("comment-unique");
    let rec = integration(&*store, &w).await;
    let task = insert_task(&*store, &w).await;
    let other_task = insert_task(&*store, &w).await;
    let mut first = comment(&task, 1, Some("555"));
    first.integration_id = Some(rec.id);
    insert(&*store, &first)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut twin = comment(&task, 2, Some("555"));
    twin.integration_id = Some(rec.id);
    let err = insert(&*store, &twin).await.err();
    assert!(matches!(err, Some(StoreError::Conflict(_))), "{err:?}");

    let mut elsewhere = comment(&other_task, 2, Some("555"));
    elsewhere.integration_id = Some(rec.id);
    insert(&*store, &elsewhere)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Ours, posted twice in the provider's eyes: two unposted comments never collide, and
    // giving the second the first's provider id is refused.
    let mut ours = comment(&task, 3, None);
    ours.integration_id = Some(rec.id);
    let mut ours2 = comment(&task, 4, None);
    ours2.integration_id = Some(rec.id);
    for c in [&ours, &ours2] {
        insert(&*store, c).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut posted = ours2.clone();
    posted.external_id = Some("555".into());
    posted.revision = 2;
    let mut uow = UnitOfWork::new(w.clone());
    uow.comments.push(CommentWrite {
        comment: posted,
        expected_revision: Some(1),
    });
    let err = store.commit(uow).await.err();
    assert!(matches!(err, Some(StoreError::Conflict(_))), "{err:?}");
    let listed = store.task_comments(&w, task.id).await.unwrap_or_default();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(
        listed
            .iter()
            .filter(|c| c.external_id.as_deref() == Some("555"))
            .count(),
        1
    );
}
