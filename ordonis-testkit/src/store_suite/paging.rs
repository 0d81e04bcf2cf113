//! Keyset paging (issue #29): the queues page by `(time, id)` newest first through
//! [`JobFilter::after`], a task's ledger by index through [`Ledger::task_ledger_page`]. A
//! caller paging through while rows are appended and change state misses none of the rows
//! that were there when it started, and sees none twice.

use std::collections::HashSet;
use std::sync::Arc;

use ordonis_core::StoreExt;
use ordonis_core::store::{Job, JobFilter, JobState, Queue, Store, UnitOfWork};
use uuid::Uuid;

use super::fixtures::{draft, event, insert_task, integration, ws};

/// Reads every page of `filter` (`limit` per page), calling `between` after each page; the
/// rows in the order the pages gave them.
async fn page_through<F, Fut>(store: &dyn Store, filter: JobFilter, mut between: F) -> Vec<Job>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut out: Vec<Job> = Vec::new();
    let mut f = filter;
    for page in 0.. {
        let got = store.jobs(&f).await.unwrap_or_else(|e| panic!("jobs: {e}"));
        assert!(
            got.len() <= f.effective_limit(),
            "a page holds at most its limit"
        );
        let Some(last) = got.last() else {
            return out;
        };
        f.after = Some(last.cursor());
        let full = got.len() == f.effective_limit();
        out.extend(got);
        if !full {
            return out;
        }
        between(page).await;
        assert!(page < 1000, "paging does not end");
    }
    out
}

/// Inbox pages: every row present at the start comes exactly once, in the order of one full
/// listing, while newer rows are appended and older ones are claimed between pages; rows of
/// one batch (one insert, often one timestamp) are split across pages by id.
pub async fn inbox_pages_miss_nothing_while_rows_are_appended(store: Arc<dyn Store>) {
    let w = ws("paging-inbox");
    let rec = integration(&*store, &w).await;
    // Three batches; rows of a batch may share their received time.
    for b in 0..3 {
        let batch: Vec<_> = (0..9)
            .map(|i| {
                event(
                    &rec,
                    &format!("start-{b}-{i}"),
                    Some(&format!("OBJ-{b}-{i}")),
                )
            })
            .collect();
        store
            .insert_events(&batch)
            .await
            .unwrap_or_else(|e| panic!("insert_events: {e}"));
    }
    let all = JobFilter {
        workspace_id: Some(w.clone()),
        limit: 1000,
        ..JobFilter::new(Queue::Inbox)
    };
    let before: Vec<Uuid> = store
        .jobs(&all)
        .await
        .unwrap_or_else(|e| panic!("jobs: {e}"))
        .iter()
        .map(|j| j.id().uuid())
        .collect();
    assert_eq!(before.len(), 27);
    let paged = page_through(
        &*store,
        JobFilter {
            workspace_id: Some(w.clone()),
            limit: 4,
            ..JobFilter::new(Queue::Inbox)
        },
        |page| {
            let store = store.clone();
            let rec = rec.clone();
            async move {
                store
                    .insert_events(&[event(&rec, &format!("during-{page}"), Some("NEW"))])
                    .await
                    .unwrap_or_else(|e| panic!("insert_events: {e}"));
                // Rows change state under the reader: a claim moves one to processing.
                store
                    .claim_events(&super::claim("pager", 1, 60_000))
                    .await
                    .unwrap_or_else(|e| panic!("claim: {e}"));
            }
        },
    )
    .await;
    let ids: Vec<Uuid> = paged.iter().map(|j| j.id().uuid()).collect();
    let unique: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no row is listed twice");
    let started: Vec<Uuid> = ids.iter().copied().filter(|i| before.contains(i)).collect();
    assert_eq!(
        started, before,
        "every row there at the start, once, in listing order"
    );
    // Pages are newest first by (time, id), strictly.
    for pair in paged.windows(2) {
        assert!(
            pair[0].cursor() > pair[1].cursor(),
            "listing order is strictly descending"
        );
    }
}

/// Outbox pages follow the listing order `(created_at, id)` newest first, with the same
/// guarantees, and filters (state) still apply with a cursor.
pub async fn outbox_pages_follow_listing_order(store: Arc<dyn Store>) {
    let w = ws("paging-outbox");
    let rec = integration(&*store, &w).await;
    let mut pushes = Vec::new();
    for _ in 0..7 {
        let task = insert_task(&*store, &w).await;
        let mut uow = UnitOfWork::new(w.clone());
        uow.enqueue_push = Some((task.id, rec.id));
        let receipt = store
            .commit(uow)
            .await
            .unwrap_or_else(|e| panic!("commit: {e}"));
        pushes.extend(receipt.outbox);
    }
    let full: Vec<Job> = store
        .jobs(&JobFilter {
            workspace_id: Some(w.clone()),
            ..JobFilter::new(Queue::Outbox)
        })
        .await
        .unwrap_or_else(|e| panic!("jobs: {e}"));
    assert_eq!(full.len(), 7);
    for j in &full {
        let p = j.clone().into_push().unwrap_or_else(|| panic!("a push"));
        assert_eq!(
            j.cursor().at,
            p.created_at,
            "the outbox lists by created_at"
        );
    }
    let paged = page_through(
        &*store,
        JobFilter {
            workspace_id: Some(w.clone()),
            state: Some(JobState::Pending),
            limit: 2,
            ..JobFilter::new(Queue::Outbox)
        },
        |_| async {},
    )
    .await;
    let a: Vec<Uuid> = full.iter().map(|j| j.id().uuid()).collect();
    let b: Vec<Uuid> = paged.iter().map(|j| j.id().uuid()).collect();
    assert_eq!(a, b, "pages of 2 give the full listing, in order");
    let mut queued: Vec<Uuid> = pushes.iter().map(|p| p.0).collect();
    let mut listed = b.clone();
    queued.sort();
    listed.sort();
    assert_eq!(queued, listed, "every queued push is listed");
}

/// A task's ledger pages by index, oldest first: pages of 3 give exactly the task's entries
/// (not the other task's), and entries appended while paging come at the end, once.
pub async fn task_ledger_pages_by_index(store: Arc<dyn Store>) {
    let w = ws("paging-ledger");
    let task = insert_task(&*store, &w).await;
    let other = insert_task(&*store, &w).await;
    let append = |n: usize| {
        let store = store.clone();
        let (task, other, w) = (task.clone(), other.clone(), w.clone());
        async move {
            let mut uow = UnitOfWork::new(w);
            uow.ledger = vec![draft(&task, n), draft(&other, n), draft(&task, n + 1)];
            store
                .commit(uow)
                .await
                .unwrap_or_else(|e| panic!("commit: {e}"));
        }
    };
    for n in 0..4 {
        append(n * 10).await;
    }
    let at_start = store
        .task_ledger(&w, task.id)
        .await
        .unwrap_or_else(|e| panic!("task_ledger: {e}"));
    assert_eq!(at_start.len(), 8);
    let mut seen = Vec::new();
    let mut after = None;
    let mut appended = 0;
    loop {
        let page = store
            .task_ledger_page(&w, task.id, after, 3)
            .await
            .unwrap_or_else(|e| panic!("task_ledger_page: {e}"));
        assert!(page.len() <= 3);
        for e in &page {
            assert_eq!(e.record.task_id, task.id, "only the task's entries");
        }
        let Some(last) = page.last() else { break };
        after = Some(last.idx);
        let full = page.len() == 3;
        seen.extend(page);
        if !full {
            break;
        }
        if appended < 2 {
            append(100 + appended * 10).await;
            appended += 1;
        }
    }
    let idx: Vec<u64> = seen.iter().map(|e| e.idx).collect();
    let mut sorted = idx.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(idx, sorted, "oldest first, none twice");
    assert_eq!(
        &seen[..at_start.len()],
        &at_start[..],
        "the entries there at the start come first, unchanged"
    );
    assert_eq!(
        seen.len(),
        8 + 2 * appended,
        "the appended ones come at the end"
    );
    // Past the end: an empty page; a zero limit: an empty page.
    let end = store
        .task_ledger_page(&w, task.id, after, 3)
        .await
        .unwrap_or_else(|e| panic!("task_ledger_page: {e}"));
    assert!(end.is_empty());
    assert!(
        store
            .task_ledger_page(&w, task.id, None, 0)
            .await
            .unwrap_or_else(|e| panic!("task_ledger_page: {e}"))
            .is_empty()
    );
}
