//! The batch-path property every store can run: a plan of units of work (some with stale
//! revisions, some whose lease was taken over, some queuing pushes), committed once in random
//! batches through [`Store::commit_batch`] and once unit by unit through [`Store::commit`],
//! must give every unit the same outcome and leave the same state: tasks, ledger, rows,
//! outbox.
//!
//! The units are built before anything is committed, as a worker builds a batch from one
//! read of the store, so a unit that follows another on the same task is stale in both runs.

use std::sync::Arc;

use ordonis_core::{
    Completion, EventId, FieldValue, Job, JobFilter, Lease, Queue, Store, StoreError, StoreExt,
    Task, TaskId, TaskWrite, UnitOfWork,
};

use proptest::prelude::*;

use crate::store_suite::{claim, draft, event, integration, ws};

/// One planned unit of work.
#[derive(Clone, Debug)]
pub struct PlannedUnit {
    /// Which of the plan's tasks it writes (`None`: it only completes its row).
    pub task: Option<usize>,
    /// The revision it expects (the task starts at 1; any other value is stale in both runs
    /// unless an earlier unit moved the task there).
    pub expected_revision: u64,
    /// Ledger entries it appends.
    pub entries: usize,
    /// Whether its lease was taken over before the commit.
    pub lease_lost: bool,
    /// Whether it queues a push of its task.
    pub push: bool,
}

/// A plan: the tasks, the units, and how the batched run splits them.
#[derive(Clone, Debug)]
pub struct BatchPlan {
    /// Tasks created (at revision 1) before the units.
    pub tasks: usize,
    /// The units, in order.
    pub units: Vec<PlannedUnit>,
    /// Sizes of the consecutive batches of the batched run (the rest goes in a last batch).
    pub batch_sizes: Vec<usize>,
}

/// What a run leaves: each unit's outcome (`Ok` with its entry indexes, or the error's
/// kind), the tasks' titles and revisions, the ledger's titles, the rows' states and the
/// outbox's tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunState {
    /// Per unit: its entry indexes, or the error kind.
    pub outcomes: Vec<Result<Vec<u64>, &'static str>>,
    /// Per task: (revision, title).
    pub tasks: Vec<(u64, String)>,
    /// The ledger, as (index, task number, title) in order.
    pub ledger: Vec<(u64, usize, String)>,
    /// Per unit: its row's state.
    pub rows: Vec<String>,
    /// The tasks with a pending push, by number, sorted.
    pub pushes: Vec<usize>,
}

fn kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::Conflict(_) => "conflict",
        StoreError::LeaseLost(_) => "lease lost",
        StoreError::NotFound(_) => "not found",
        StoreError::Invalid(_) => "invalid",
        StoreError::Unavailable { .. } => "unavailable",
        StoreError::Backend { .. } => "backend",
        _ => "other",
    }
}

/// Runs `plan` on `store` (in a workspace of its own), batched or serially, and returns what it left, in terms
/// that do not depend on generated ids (task numbers, unit numbers), so two runs compare.
pub async fn run_plan(store: Arc<dyn Store>, plan: &BatchPlan, batched: bool) -> RunState {
    let ws = ws("batch-property");
    let rec = integration(&*store, &ws).await;
    let mut tasks: Vec<Task> = Vec::new();
    for _ in 0..plan.tasks {
        let mut t = Task::new(ws.clone());
        t.fields.title = "start".into();
        t.revision = 1;
        let mut uow = UnitOfWork::new(ws.clone());
        uow.task = Some(TaskWrite {
            task: t.clone(),
            expected_revision: None,
        });
        store.commit(uow).await.unwrap_or_else(|e| panic!("{e}"));
        tasks.push(t);
    }
    let task_no = |id: TaskId| tasks.iter().position(|t| t.id == id).unwrap_or(usize::MAX);
    let events: Vec<_> = (0..plan.units.len())
        .map(|i| event(&rec, &format!("u{i}"), Some(&format!("obj-{i}"))))
        .collect();
    let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
    store
        .insert_events(&events)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let claimed = store
        .claim_events(&claim("prop", plan.units.len().max(1), 60_000))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let lease_of = |id: EventId| -> Lease {
        claimed
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.lease.clone())
            .unwrap_or_else(|| panic!("event {id} not claimed"))
    };

    let units: Vec<UnitOfWork> = plan
        .units
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut uow = UnitOfWork::new(ws.clone());
            let mut lease = lease_of(ids[i]);
            if p.lease_lost {
                lease.owner = "someone-else".into();
            }
            if let Some(t) = p.task.and_then(|t| tasks.get(t)) {
                let mut next = t.clone();
                next.fields.title = format!("unit {i}");
                next.revision = p.expected_revision + 1;
                uow.ledger = (0..p.entries).map(|k| draft(&next, i * 10 + k)).collect();
                uow.task = Some(TaskWrite {
                    task: next,
                    expected_revision: Some(p.expected_revision),
                });
                if p.push {
                    uow.enqueue_push = Some((t.id, rec.id));
                }
            }
            uow.completion = Completion::Done {
                lease,
                note: Some(format!("unit {i}")),
            };
            uow
        })
        .collect();

    let mut outcomes = Vec::new();
    if batched {
        let mut rest = units;
        for size in plan.batch_sizes.iter().copied().chain([usize::MAX]) {
            if rest.is_empty() {
                break;
            }
            let tail = rest.split_off(size.clamp(1, rest.len()));
            let results = store
                .commit_batch(rest)
                .await
                .unwrap_or_else(|e| panic!("batch: {e}"));
            outcomes.extend(results);
            rest = tail;
        }
    } else {
        for uow in units {
            outcomes.push(store.commit(uow).await);
        }
    }
    let outcomes = outcomes
        .iter()
        .map(|r| match r {
            Ok(r) => Ok(r.entries.iter().map(|e| e.idx).collect()),
            Err(e) => Err(kind(e)),
        })
        .collect();

    let mut task_state = Vec::new();
    for t in &tasks {
        let now = store
            .task(t.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("task gone"));
        task_state.push((now.revision, now.fields.title));
    }
    let size = store
        .ledger_size(&ws)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ledger = store
        .ledger_entries(&ws, 0, usize::try_from(size).unwrap_or(usize::MAX).max(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|e| {
            let title = match &e.record.after {
                Some(FieldValue::Title(t)) => t.clone(),
                other => format!("{other:?}"),
            };
            (e.idx, task_no(e.record.task_id), title)
        })
        .collect();
    let mut rows = Vec::new();
    for id in &ids {
        let row = store
            .event(&ws, *id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("row gone"));
        rows.push(format!("{:?} {:?}", row.state, row.last_error));
    }
    let mut pushes: Vec<usize> = store
        .jobs(&JobFilter {
            workspace_id: Some(ws.clone()),
            ..JobFilter::new(Queue::Outbox)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter_map(|j| match j {
            Job::Push(p) => Some(task_no(p.task_id)),
            Job::Event(_) => None,
        })
        .collect();
    pushes.sort_unstable();
    RunState {
        outcomes,
        tasks: task_state,
        ledger,
        rows,
        pushes,
    }
}

/// Plans over four tasks: up to 24 units (most write a task, a few stale, some with a lost
/// lease or a push), in batches of 1–8.
pub fn plan_strategy() -> impl Strategy<Value = BatchPlan> {
    let unit = (
        prop::option::weighted(0.85, 0usize..4),
        prop_oneof![4 => Just(1u64), 1 => 2u64..4],
        0usize..4,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(task, expected_revision, entries, lease_lost, push)| PlannedUnit {
                task,
                expected_revision,
                entries,
                lease_lost,
                push,
            },
        );
    (
        prop::collection::vec(unit, 0..24),
        prop::collection::vec(1usize..9, 0..6),
    )
        .prop_map(|(units, batch_sizes)| BatchPlan {
            tasks: 4,
            units,
            batch_sizes,
        })
}

/// Checks `cases` random plans on `store`: batched and serial runs (each in its own
/// workspace) must agree. Call it from a multi-threaded tokio test; a failure panics with
/// the smallest failing plan (proptest's shrinking) and the seed to replay it.
pub async fn batches_equal_serial_commits(store: Arc<dyn Store>, cases: u32) {
    let handle = tokio::runtime::Handle::current();
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    });
    let result = tokio::task::block_in_place(|| {
        runner.run(&plan_strategy(), |plan| {
            let (batched, serial) = handle.block_on(async {
                (
                    run_plan(store.clone(), &plan, true).await,
                    run_plan(store.clone(), &plan, false).await,
                )
            });
            prop_assert_eq!(batched, serial);
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("batched commits differ from serial ones: {e}");
    }
}
