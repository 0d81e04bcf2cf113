//! Many units of work of one workspace in one transaction (see
//! [`ordonis_core::Store::commit_batch`]).
//!
//! The order inside the transaction:
//! 1. the fence: one statement per queue reads (and on PostgreSQL row-locks) every leased row
//!    of the batch; a unit whose lease is stale is refused before it writes anything;
//! 2. each remaining unit's own writes (task, integration, mapping, push) inside a savepoint,
//!    so a unit that fails rolls back alone; a unit that only completes its row needs none,
//!    and neither does one whose only write is a task update guarded by its revision (it
//!    writes or matches nothing);
//! 3. one multi-row completion per queue for the units that got through;
//! 4. one ledger-head update and multi-row inserts for all their entries, in unit order;
//! 5. one commit, so one log flush for the batch.

use std::collections::HashMap;

use ordonis_core::store::rules;
use ordonis_core::{
    CommitReceipt, Completion, Lease, OutboxId, Queue, StoreError, TaskWrite, UnitOfWork,
    WorkspaceId,
};
use uuid::Uuid;

use crate::commit::{append_entries, stale_task, task_written, write_unit};
use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::{params, sql, sql_on};
use crate::tables::table;

const SAVEPOINT: &str = "SAVEPOINT ordonis_unit";
const RELEASE: &str = "RELEASE SAVEPOINT ordonis_unit";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT ordonis_unit";

/// Commits `units` (one workspace) in one transaction of `d`.
pub(crate) async fn commit_batch<D: Dialect>(
    d: &D,
    units: Vec<UnitOfWork>,
) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
    rules::validate_batch(&units)?;
    let Some(ws) = units.first().map(|u| u.workspace_id.clone()) else {
        return Ok(Vec::new());
    };
    // `None` while a unit is still going through.
    let mut refused: Vec<Option<StoreError>> = units
        .iter()
        .map(|u| rules::validate_unit(u).err())
        .collect();
    let mut tx = d.begin().await?;

    for queue in [Queue::Inbox, Queue::Outbox] {
        fence(d, &mut tx, &ws, queue, &units, &mut refused).await?;
    }

    let mut outboxes: Vec<Option<OutboxId>> = vec![None; units.len()];
    for (i, uow) in units.iter().enumerate() {
        if refused[i].is_some() {
            continue;
        }
        match Writes::of(uow) {
            Writes::None => continue,
            // One statement that either writes or matches nothing needs no savepoint; an
            // error from it (which aborts a PostgreSQL transaction) fails the batch instead,
            // and the engine commits its units alone.
            Writes::TaskOnly(tw) => {
                if !task_written(d, &mut tx, &ws, tw, &uow.ledger).await? {
                    refused[i] = Some(stale_task(tw));
                }
                continue;
            }
            Writes::Many => {}
        }
        d.execute(&mut tx, sql::<D>(SAVEPOINT), Vec::new()).await?;
        match write_unit(d, &mut tx, uow).await {
            Ok(outbox) => outboxes[i] = outbox,
            Err(e) if rules::batch_wide(&e) => return Err(e),
            Err(e) => {
                d.execute(&mut tx, sql::<D>(ROLLBACK_TO), Vec::new())
                    .await?;
                refused[i] = Some(e);
            }
        }
        d.execute(&mut tx, sql::<D>(RELEASE), Vec::new()).await?;
    }

    for queue in [Queue::Inbox, Queue::Outbox] {
        let done: Vec<(&Lease, &Option<String>)> = units
            .iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_none())
            .filter_map(|(u, _)| match &u.completion {
                Completion::Done { lease, note } if lease.queue == queue => Some((lease, note)),
                _ => None,
            })
            .collect();
        complete(d, &mut tx, queue, &done).await?;
    }

    let drafts = units
        .iter()
        .zip(&refused)
        .filter(|(_, r)| r.is_none())
        .flat_map(|(u, _)| u.ledger.iter());
    let drafts: Vec<_> = drafts.collect();
    let mut entries = append_entries(d, &mut tx, &ws, drafts.into_iter())
        .await?
        .into_iter();
    d.commit(tx).await?;

    Ok(units
        .iter()
        .zip(refused)
        .zip(outboxes)
        .map(|((uow, refused), outbox)| match refused {
            Some(e) => Err(e),
            None => Ok(CommitReceipt {
                entries: entries.by_ref().take(uow.ledger.len()).collect(),
                outbox,
            }),
        })
        .collect())
}

/// What a unit writes besides its completion and ledger entries.
enum Writes<'a> {
    None,
    TaskOnly(&'a TaskWrite),
    Many,
}

impl<'a> Writes<'a> {
    fn of(uow: &'a UnitOfWork) -> Self {
        let others = uow.mapping.is_some()
            || uow.enqueue_push.is_some()
            || uow.integration.is_some()
            || !uow.comments.is_empty()
            || !uow.sessions.is_empty()
            || !crate::commit::foreign_conflicts(uow).is_empty();
        match (&uow.task, others) {
            (None, false) => Writes::None,
            (Some(tw), false) => Writes::TaskOnly(tw),
            _ => Writes::Many,
        }
    }
}

/// Refuses (`LeaseLost`) every still-live unit whose leased row of `queue` is no longer
/// processing under its lease in this workspace; the rows that are, stay locked (PostgreSQL)
/// until the commit, so no lease moves under the batch.
async fn fence<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    ws: &WorkspaceId,
    queue: Queue,
    units: &[UnitOfWork],
    refused: &mut [Option<StoreError>],
) -> Result<(), StoreError> {
    let leased: Vec<(usize, &Lease)> = units
        .iter()
        .enumerate()
        .filter(|(i, _)| refused[*i].is_none())
        .filter_map(|(i, u)| match &u.completion {
            Completion::Done { lease, .. } if lease.queue == queue => Some((i, lease)),
            _ => None,
        })
        .collect();
    if leased.is_empty() {
        return Ok(());
    }
    // Only the primary key in the condition (the rest is checked here): with more, SQLite's
    // planner, which keeps no statistics, may walk the workspace's index instead.
    let (list, _) = params(1, leased.len());
    let stmt = format!(
        "SELECT id, workspace_id, state, lease_owner, attempts FROM {p}{t} \
         WHERE id IN {list}{lock}",
        p = D::PREFIX,
        t = table(queue).table,
        lock = D::ROW_LOCK,
    );
    let args = leased.iter().map(|(_, l)| Arg::Uuid(l.row)).collect();
    let rows = d.fetch(tx, stmt.into(), args).await?;
    let mut held: HashMap<Uuid, (Option<String>, i64)> = HashMap::with_capacity(rows.len());
    for r in &rows {
        if r.text("workspace_id")? == ws.as_str() && r.text("state")? == "processing" {
            held.insert(
                r.uuid("id")?,
                (r.opt_text("lease_owner")?, r.int("attempts")?),
            );
        }
    }
    for (i, lease) in leased {
        let ours = held.get(&lease.row).is_some_and(|(owner, attempts)| {
            owner.as_deref() == Some(lease.owner.as_str()) && *attempts == i64::from(lease.attempt)
        });
        if !ours {
            refused[i] = Some(rules::lease_lost(lease));
        }
    }
    Ok(())
}

const COMPLETE_MANY: &str = "UPDATE {p}{table}
    SET state = 'done', lease_owner = NULL, lease_expires_at = NULL, error_kind = NULL, last_error = CASE id ";

/// Completes the fenced rows of `queue` in one statement, each with its note (the fence
/// checked their workspace and lease, and holds them).
async fn complete<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    queue: Queue,
    done: &[(&Lease, &Option<String>)],
) -> Result<(), StoreError> {
    if done.is_empty() {
        return Ok(());
    }
    let mut args = Vec::with_capacity(2 * done.len());
    let mut cases = String::new();
    let mut ids = Vec::with_capacity(done.len());
    for (k, (lease, note)) in done.iter().enumerate() {
        let (id, text) = (2 * k + 1, 2 * k + 2);
        cases.push_str(&format!("WHEN ${id} THEN ${text} "));
        ids.push(format!("${id}"));
        args.push(Arg::Uuid(lease.row));
        args.push(Arg::Text((*note).clone()));
    }
    let rest = format!("{cases}END WHERE id IN ({})", ids.join(", "));
    let mut stmt = sql_on::<D>(COMPLETE_MANY, table(queue).table).into_owned();
    stmt.push_str(&rest);
    let n = d.execute(tx, stmt.into(), args).await?;
    if n != done.len() as u64 {
        // The fence holds these rows; anything else is a broken invariant, not a lost lease.
        return Err(StoreError::backend(format!(
            "batch completion changed {n} of {} rows",
            done.len()
        )));
    }
    Ok(())
}
