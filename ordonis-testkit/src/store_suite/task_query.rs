//! Task lists as pages ([`Store::query_tasks`]): stable keyset order, walks that neither
//! miss nor repeat a task while tasks change, each filter, the stored sync state's
//! transitions, the title search, and a bad cursor as a typed error.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ordonis_core::store::{Completion, JobState, Retry, Store, TaskWrite, UnitOfWork};
use ordonis_core::{
    ActionId, Assignee, AssigneeFilter, ExternalRef, FailureKind, Field, FieldSync, FieldValue,
    IntegrationRecord, Intent, JobFailure, ObjectKey, Outcome, ProviderKind, Status,
    StatusCategory, StoreError, StoreExt, SyncState, Task, TaskCursor, TaskId, TaskList, TaskQuery,
    TaskSort, WorkspaceId,
};
use time::OffsetDateTime;

use super::{claim, draft, event, integration, ws};

/// A fixed base time, whole seconds (every store keeps at least microseconds).
fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap_or_else(|e| panic!("{e}"))
}

async fn put(store: &dyn Store, t: &Task, expected: Option<u64>) {
    let mut uow = UnitOfWork::new(t.workspace_id.clone());
    uow.task = Some(TaskWrite {
        task: t.clone(),
        expected_revision: expected,
    });
    store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
}

async fn new_task(store: &dyn Store, w: &WorkspaceId, title: &str, secs: i64) -> Task {
    let mut t = Task::new(w.clone());
    t.fields.title = title.to_owned();
    t.revision = 1;
    t.updated_at = at(secs);
    put(store, &t, None).await;
    t
}

/// Changes a task (title and time) at the next revision.
async fn touch(store: &dyn Store, t: &mut Task, title: &str, secs: i64) {
    let expected = t.revision;
    t.revision += 1;
    t.fields.title = title.to_owned();
    t.updated_at = at(secs);
    put(store, t, Some(expected)).await;
}

/// Links a new task to object `key` of `rec` (external ref and mapping, one unit).
async fn linked_task(store: &dyn Store, rec: &IntegrationRecord, key: &str, secs: i64) -> Task {
    let mut t = Task::new(rec.workspace_id.clone());
    t.fields.title = format!("linked {key}");
    t.revision = 1;
    t.updated_at = at(secs);
    let ext = ExternalRef {
        integration_id: rec.id,
        provider: ProviderKind::new("fake"),
        key: ObjectKey::new(key, "issue"),
        url: None,
    };
    t.external.push(ext.clone());
    let mut uow = UnitOfWork::new(t.workspace_id.clone());
    uow.task = Some(TaskWrite {
        task: t.clone(),
        expected_revision: None,
    });
    uow.mapping = Some((ext, t.id));
    store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    t
}

async fn page(store: &dyn Store, q: &TaskQuery) -> TaskList {
    store
        .query_tasks(q)
        .await
        .unwrap_or_else(|e| panic!("query_tasks: {e}"))
}

/// Every page of a query, following `next_cursor`.
async fn walk(store: &dyn Store, mut q: TaskQuery) -> Vec<TaskId> {
    let mut out = Vec::new();
    loop {
        let p = page(store, &q).await;
        assert!(p.tasks.len() <= q.effective_limit().unwrap_or(0));
        out.extend(p.tasks.iter().map(|t| t.task.id));
        match p.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

async fn state_of(store: &dyn Store, t: &Task) -> SyncState {
    let mut q = TaskQuery::new(t.workspace_id.clone());
    q.limit = 1000;
    let all = page(store, &q).await;
    all.tasks
        .into_iter()
        .find(|x| x.task.id == t.id)
        .map(|x| x.sync_state)
        .unwrap_or_else(|| panic!("task {} not listed", t.id))
}

/// Both orders are stable keysets: `updated` newest first (ties by id, descending), `id`
/// ascending; pages are bounded, the last page has no cursor, and a workspace lists only
/// its own tasks.
pub async fn task_query_pages_in_stable_order(store: Arc<dyn Store>) {
    let w = ws("tq-order");
    let mut tasks = Vec::new();
    for i in 0..7 {
        // Two tasks share each time: the id breaks the tie.
        tasks.push(new_task(&*store, &w, &format!("t{i}"), i / 2).await);
    }
    new_task(&*store, &ws("tq-order-other"), "elsewhere", 0).await;

    let mut by_updated = tasks.clone();
    by_updated.sort_by_key(|t| std::cmp::Reverse((t.updated_at, t.id)));
    let mut q = TaskQuery::new(w.clone());
    q.sort = TaskSort::Updated;
    q.limit = 2;
    let want: Vec<TaskId> = by_updated.iter().map(|t| t.id).collect();
    assert_eq!(
        walk(&*store, q.clone()).await,
        want,
        "updated, newest first"
    );
    assert_eq!(walk(&*store, q.clone()).await, want, "the same twice");

    let mut ids: Vec<TaskId> = tasks.iter().map(|t| t.id).collect();
    ids.sort();
    let mut q = TaskQuery::new(w.clone());
    q.limit = 3;
    assert_eq!(walk(&*store, q.clone()).await, ids, "id order");

    q.limit = 7;
    let one = page(&*store, &q).await;
    assert_eq!(one.tasks.len(), 7);
    assert!(
        one.next_cursor.is_none(),
        "an exact last page has no cursor"
    );
}

/// Walking every page while tasks are inserted and changed between pages: in id order, no
/// task that existed throughout is missed and none is repeated; newest first, none is
/// repeated and every task left alone is listed.
pub async fn task_query_walk_survives_changes(store: Arc<dyn Store>) {
    let w = ws("tq-walk");
    let mut tasks = Vec::new();
    for i in 0..10 {
        tasks.push(new_task(&*store, &w, &format!("t{i}"), i).await);
    }
    for sort in [TaskSort::Id, TaskSort::Updated] {
        let mut q = TaskQuery::new(w.clone());
        q.sort = sort;
        q.limit = 3;
        let mut seen: Vec<TaskId> = Vec::new();
        let mut touched: HashSet<TaskId> = HashSet::new();
        let mut round = 0i64;
        loop {
            let p = page(&*store, &q).await;
            seen.extend(p.tasks.iter().map(|t| t.task.id));
            // Between pages: a new task, and a change to one listed and one not yet listed.
            round += 1;
            new_task(&*store, &w, &format!("new {round}"), 100 + round).await;
            for idx in [(round as usize * 3) % 10, (round as usize * 7) % 10] {
                let t = &mut tasks[idx];
                touch(&*store, t, &format!("changed {round}"), 200 + round * 10).await;
                touched.insert(t.id);
            }
            match p.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let unique: HashSet<TaskId> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{sort:?}: a task was repeated");
        for t in &tasks {
            if sort == TaskSort::Id || !touched.contains(&t.id) {
                assert!(unique.contains(&t.id), "{sort:?}: task {} was missed", t.id);
            }
        }
    }
}

/// Each filter selects what it names, alone and combined, and the filters' choices are
/// the distinct statuses and assignees.
pub async fn task_query_filters(store: Arc<dyn Store>) {
    let w = ws("tq-filter");
    let rec = integration(&*store, &w).await;
    let mut a = linked_task(&*store, &rec, "A-1", 1).await;
    let expected = a.revision;
    a.revision += 1;
    a.fields.title = "Fix the Login page".into();
    a.fields.status = Status::new(StatusCategory::InProgress, "In Review");
    a.fields.assignee = Some(Assignee {
        account_id: "acc-ada".into(),
        display_name: Some("Ada".into()),
        email: None,
    });
    put(&*store, &a, Some(expected)).await;
    let mut b = new_task(&*store, &w, "Write 100% of the docs_now", 2).await;
    let expected = b.revision;
    b.revision += 1;
    b.fields.status = Status::new(StatusCategory::Done, "Done");
    put(&*store, &b, Some(expected)).await;
    let c = new_task(&*store, &w, "login audit", 3).await;

    let ids = |l: &TaskList| {
        let mut v: Vec<TaskId> = l.tasks.iter().map(|t| t.task.id).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<TaskId>| {
        v.sort();
        v
    };
    let base = TaskQuery::new(w.clone());

    let mut q = base.clone();
    q.status = Some("In Review".into());
    assert_eq!(ids(&page(&*store, &q).await), vec![a.id], "status");
    let mut q = base.clone();
    q.assignee = Some(AssigneeFilter::Account("acc-ada".into()));
    assert_eq!(ids(&page(&*store, &q).await), vec![a.id], "assignee");
    let mut q = base.clone();
    q.assignee = Some(AssigneeFilter::Unassigned);
    assert_eq!(
        ids(&page(&*store, &q).await),
        sorted(vec![b.id, c.id]),
        "none"
    );
    let mut q = base.clone();
    q.integration = Some(rec.id);
    assert_eq!(ids(&page(&*store, &q).await), vec![a.id], "integration");
    let mut q = base.clone();
    q.updated_since = Some(at(2));
    assert_eq!(
        ids(&page(&*store, &q).await),
        sorted(vec![b.id, c.id]),
        "updated since (inclusive)"
    );
    let mut q = base.clone();
    q.sync_state = Some(SyncState::OutOfScope);
    assert_eq!(
        ids(&page(&*store, &q).await),
        sorted(vec![b.id, c.id]),
        "unlinked tasks are out of scope"
    );
    q.sync_state = Some(SyncState::InSync);
    assert_eq!(ids(&page(&*store, &q).await), vec![a.id], "in sync");

    // Search: a case-insensitive substring, long or short, wildcards taken literally.
    for (text, want) in [
        ("LOGIN", sorted(vec![a.id, c.id])),
        ("ogin pa", vec![a.id]),
        ("in", sorted(vec![a.id, c.id])),
        ("0%", vec![b.id]),
        ("s_n", vec![b.id]),
        ("%", vec![b.id]),
        ("nowhere", vec![]),
    ] {
        let mut q = base.clone();
        q.search = Some(text.into());
        assert_eq!(ids(&page(&*store, &q).await), want, "search {text:?}");
    }
    let mut q = base.clone();
    q.search = Some("login".into());
    q.assignee = Some(AssigneeFilter::Unassigned);
    assert_eq!(ids(&page(&*store, &q).await), vec![c.id], "combined");

    // A renamed task is found under its new title only.
    let mut c = c;
    touch(&*store, &mut c, "quarterly report", 4).await;
    let mut q = base.clone();
    q.search = Some("audit".into());
    assert!(page(&*store, &q).await.tasks.is_empty(), "old title gone");
    q.search = Some("QUARTERLY".into());
    assert_eq!(ids(&page(&*store, &q).await), vec![c.id], "new title found");

    let statuses = store
        .task_statuses(&w)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        statuses,
        vec![
            Status::new(StatusCategory::Todo, ""),
            Status::new(StatusCategory::InProgress, "In Review"),
            Status::new(StatusCategory::Done, "Done"),
        ]
    );
    let assignees = store
        .task_assignees(&w)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(assignees.len(), 1);
    assert_eq!(assignees[0].account_id, "acc-ada");
    assert_eq!(assignees[0].display_name.as_deref(), Some("Ada"));
}

/// A cursor that is not one, a cursor used under other filters or another order, and a
/// limit above the maximum are `Invalid`.
pub async fn task_query_bad_cursor_is_invalid(store: Arc<dyn Store>) {
    let w = ws("tq-cursor");
    for i in 0..3 {
        new_task(&*store, &w, &format!("t{i}"), i).await;
    }
    assert!(matches!(
        TaskCursor::parse("bm90IGEgY3Vyc29y"),
        Err(StoreError::Invalid(_))
    ));
    let mut q = TaskQuery::new(w.clone());
    q.limit = 1;
    let next = page(&*store, &q)
        .await
        .next_cursor
        .unwrap_or_else(|| panic!("a next page"));
    let reparsed = TaskCursor::parse(&next.to_string()).unwrap_or_else(|e| panic!("{e}"));
    q.cursor = Some(reparsed);
    assert_eq!(
        page(&*store, &q).await.tasks.len(),
        1,
        "its own cursor works"
    );
    let mut other = q.clone();
    other.search = Some("t1".into());
    assert!(matches!(
        store.query_tasks(&other).await,
        Err(StoreError::Invalid(_))
    ));
    let mut other = q.clone();
    other.sort = TaskSort::Updated;
    assert!(matches!(
        store.query_tasks(&other).await,
        Err(StoreError::Invalid(_))
    ));
    let mut other = q.clone();
    other.workspace_id = ws("tq-cursor-other");
    assert!(matches!(
        store.query_tasks(&other).await,
        Err(StoreError::Invalid(_))
    ));
    let mut big = TaskQuery::new(w);
    big.limit = TaskQuery::MAX_LIMIT + 1;
    assert!(matches!(
        store.query_tasks(&big).await,
        Err(StoreError::Invalid(_))
    ));
}

/// The stored sync state follows its inputs: a pending change, a conflict decision and a
/// later non-conflict one on that field, a dead push and its replay, a failed inbound event
/// and its replay; and the filter finds the task in each state.
pub async fn task_query_sync_state_transitions(store: Arc<dyn Store>) {
    let w = ws("tq-sync");
    let rec = integration(&*store, &w).await;
    let mut t = linked_task(&*store, &rec, "S-1", 1).await;
    assert_eq!(state_of(&*store, &t).await, SyncState::InSync);

    // A CollabHub change waiting for its push.
    let expected = t.revision;
    t.revision += 1;
    t.sync.insert(
        Field::Title,
        FieldSync {
            want: Some(Intent::new(
                FieldValue::Title("wanted".into()),
                ActionId::new(),
            )),
            ..FieldSync::default()
        },
    );
    put(&*store, &t, Some(expected)).await;
    assert_eq!(state_of(&*store, &t).await, SyncState::PushPending);

    // A conflict decision on the title (in the unit that writes the task).
    let mut conflict = draft(&t, 1);
    conflict.outcome = Outcome::Conflict;
    let expected = t.revision;
    t.revision += 1;
    let mut uow = UnitOfWork::new(w.clone());
    uow.task = Some(TaskWrite {
        task: t.clone(),
        expected_revision: Some(expected),
    });
    uow.ledger.push(conflict.clone());
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::Conflict);
    let mut q = TaskQuery::new(w.clone());
    q.sync_state = Some(SyncState::Conflict);
    assert_eq!(
        page(&*store, &q).await.tasks.len(),
        1,
        "the filter finds it"
    );

    // A conflict on another field, recorded by a unit that does not write the task.
    let mut other = draft(&t, 2);
    other.field = Some(Field::Status);
    other.outcome = Outcome::Conflict;
    let mut uow = UnitOfWork::new(w.clone());
    uow.ledger.push(other);
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    // A later applied decision on the title clears the title only.
    let mut uow = UnitOfWork::new(w.clone());
    uow.ledger.push(draft(&t, 3));
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::Conflict);
    let mut status_ok = draft(&t, 4);
    status_ok.field = Some(Field::Status);
    let mut uow = UnitOfWork::new(w.clone());
    uow.ledger.push(status_ok);
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        state_of(&*store, &t).await,
        SyncState::PushPending,
        "no field is left in conflict"
    );

    // A push that goes dead: error; replayed: back; and done: still back.
    let mut uow = UnitOfWork::new(w.clone());
    uow.enqueue_push = Some((t.id, rec.id));
    let push = store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .outbox
        .unwrap_or_else(|| panic!("a push"));
    let lease = store
        .claim_pushes(&claim("w", 1, 60_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .and_then(|p| p.lease)
        .unwrap_or_else(|| panic!("claimed"));
    store
        .fail(
            &lease,
            &JobFailure::new(FailureKind::Refused, "HTTP 400"),
            Retry::Never(JobState::Dead),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::Error);
    let mut q = TaskQuery::new(w.clone());
    q.sync_state = Some(SyncState::Error);
    assert_eq!(
        page(&*store, &q).await.tasks.len(),
        1,
        "the filter finds it"
    );
    store
        .replay_push(&w, push)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::PushPending);
    let lease = store
        .claim_pushes(&claim("w", 1, 60_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .and_then(|p| p.lease)
        .unwrap_or_else(|| panic!("claimed again"));
    let mut uow = UnitOfWork::new(w.clone());
    uow.completion = Completion::Done { lease, note: None };
    store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::PushPending);

    // An inbound event about the task's object that fails for good: error, then replayed.
    let e = event(&rec, "tq-sync-1", Some("S-1"));
    store
        .insert_events(std::slice::from_ref(&e))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let lease = store
        .claim_events(&claim("w", 1, 60_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .and_then(|e| e.lease)
        .unwrap_or_else(|| panic!("claimed"));
    store
        .fail(
            &lease,
            &JobFailure::new(FailureKind::BadInput, "unreadable"),
            Retry::Never(JobState::Failed),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::Error);
    store
        .replay_event(&w, e.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state_of(&*store, &t).await, SyncState::PushPending);

    // Deleted in the provider: out of scope, whatever else holds.
    let expected = t.revision;
    t.revision += 1;
    t.deleted = true;
    t.updated_at += Duration::from_secs(1);
    put(&*store, &t, Some(expected)).await;
    assert_eq!(state_of(&*store, &t).await, SyncState::OutOfScope);
}
