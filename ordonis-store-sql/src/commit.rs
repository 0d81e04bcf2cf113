//! The unit of work: one transaction that completes the leased row, writes the task, maps
//! the external object, coalesces the push and appends the ledger entries, or writes nothing.

use ordonis_core::store::rules;
use ordonis_core::{
    CommitReceipt, Completion, ConflictDelta, LedgerDraft, LedgerEntry, OutboxId, StatusCategory,
    StoreError, SyncState, TaskId, TaskWrite, UnitOfWork, WorkspaceId,
};

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::{params, sql, sql_on, sql_with};
use crate::tables::{backend, i64_of, table, to_json};

const COMPLETE: &str = "UPDATE {p}{table}
    SET state = 'done', last_error = $5, error_kind = NULL, lease_owner = NULL, lease_expires_at = NULL
  WHERE id = $1 AND workspace_id = $2 AND state = 'processing'
    AND lease_owner = $3 AND attempts = $4";

// The list's columns ride along with the document (issue 29): title, status, assignee,
// the task's own part of its sync state, and the conflict mask the unit's ledger drafts
// leave ($13 the bits set; on an update, $14 the stored bits kept).
const INSERT_TASK: &str = "INSERT INTO {p}tasks (id, workspace_id, revision, deleted, updated_at,
    doc, title, status, status_category, assignee, assignee_name, sync_base, conflicts)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
  ON CONFLICT (id) DO NOTHING";

const UPDATE_TASK: &str = "UPDATE {p}tasks
    SET revision = $3, deleted = $4, updated_at = $5, doc = $6, title = $7, status = $8,
        status_category = $9, assignee = $10, assignee_name = $11, sync_base = $12,
        conflicts = (conflicts & $14) | $13
  WHERE id = $1 AND workspace_id = $2 AND revision = $15";

// The conflict mask of a task the unit's drafts decide on but whose row it does not write.
const UPDATE_CONFLICTS: &str = "UPDATE {p}tasks SET conflicts = (conflicts & $3) | $4
  WHERE id = $1 AND workspace_id = $2";

const INSERT_COMMENT: &str = "INSERT INTO {p}task_comments
    (id, workspace_id, task_id, integration_id, external_id, revision, created_at, doc)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";

const UPDATE_COMMENT: &str = "UPDATE {p}task_comments
    SET integration_id = $4, external_id = $5, revision = $6, created_at = $7, doc = $8
  WHERE id = $1 AND workspace_id = $2 AND task_id = $3 AND revision = $9
    AND NOT EXISTS (SELECT 1 FROM {p}task_comments o
      WHERE o.task_id = $3 AND o.integration_id = $4 AND o.external_id = $5 AND o.id <> $1)";

const INSERT_SESSION: &str = "INSERT INTO {p}agent_sessions
    (id, workspace_id, task_id, revision, state, created_at, last_activity_at, doc)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";

const UPDATE_SESSION: &str = "UPDATE {p}agent_sessions
    SET revision = $4, state = $5, created_at = $6, last_activity_at = $7, doc = $8
  WHERE id = $1 AND workspace_id = $2 AND task_id = $3 AND revision = $9";

const INSERT_MAPPING: &str = "INSERT INTO {p}external_objects
    (integration_id, provider, external_id, object_type, workspace_id, task_id, url)
  VALUES ($1, $2, $3, $4, $5, $6, $7)
  ON CONFLICT (integration_id, provider, external_id, object_type) DO NOTHING";

const DELETE_MAPPING: &str = "DELETE FROM {p}external_objects
  WHERE integration_id = $1 AND provider = $2 AND external_id = $3 AND object_type = $4
    AND task_id = $5 AND workspace_id = $6";

const MAPPED_TASK: &str = "SELECT task_id FROM {p}external_objects
  WHERE integration_id = $1 AND provider = $2 AND external_id = $3 AND object_type = $4";

const PENDING_PUSH: &str = "SELECT id FROM {p}outbox
  WHERE task_id = $1 AND integration_id = $2 AND state = 'pending'
  ORDER BY created_at LIMIT 1";

const INSERT_PUSH: &str = "INSERT INTO {p}outbox
    (id, workspace_id, task_id, integration_id, state, attempts, next_attempt_at, created_at)
  VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)";

const ADVANCE_HEAD: &str = "INSERT INTO {p}ledger_heads AS h (workspace_id, size) VALUES ($1, $2)
  ON CONFLICT (workspace_id) DO UPDATE SET size = h.size + excluded.size
  RETURNING size - $2 AS start";

const INSERT_ENTRIES: &str = "INSERT INTO {p}vera_ledger
    (workspace_id, idx, logged_at, task_id, record, bytes, leaf_hash) VALUES ";

/// Commits a unit of work in one transaction of `d`.
pub(crate) async fn commit<D: Dialect>(
    d: &D,
    uow: UnitOfWork,
) -> Result<CommitReceipt, StoreError> {
    rules::validate_unit(&uow)?;
    let ws = &uow.workspace_id;
    let mut tx = d.begin().await?;

    // The fence first: a stale lease writes nothing and holds no lock for long.
    if let Completion::Done { lease, note } = &uow.completion {
        let n = d
            .execute(
                &mut tx,
                sql_on::<D>(COMPLETE, table(lease.queue).table),
                vec![
                    Arg::Uuid(lease.row),
                    Arg::text(ws.as_str()),
                    Arg::text(&lease.owner),
                    Arg::Int(i64::from(lease.attempt)),
                    Arg::Text(note.clone()),
                ],
            )
            .await?;
        if n == 0 {
            return Err(rules::lease_lost(lease));
        }
    }

    let outbox = write_unit(d, &mut tx, &uow).await?;

    // The ledger last: the log head's row lock serializes a workspace's writers, so it is
    // taken as late as possible and held for two statements and the commit.
    let entries = append_entries(d, &mut tx, ws, uow.ledger.iter()).await?;

    d.commit(tx).await?;
    Ok(CommitReceipt { entries, outbox })
}

/// The unit's writes between its fence and its ledger entries: task, integration, unmapping,
/// mapping and push. Returns the outbox row the push went into.
pub(crate) async fn write_unit<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    uow: &UnitOfWork,
) -> Result<Option<OutboxId>, StoreError> {
    let ws = &uow.workspace_id;
    if let Some(tw) = &uow.task {
        write_task(d, tx, ws, tw, &uow.ledger).await?;
    }
    for (task, delta) in foreign_conflicts(uow) {
        let args = vec![
            Arg::Uuid(task.0),
            Arg::text(ws.as_str()),
            Arg::Int(delta.keep as i64),
            Arg::Int(delta.set as i64),
        ];
        d.execute(tx, sql::<D>(UPDATE_CONFLICTS), args).await?;
    }

    for w in &uow.comments {
        if !comment_written(d, tx, ws, w).await? {
            return Err(rules::stale_comment(w));
        }
    }
    for w in &uow.sessions {
        if !session_written(d, tx, ws, w).await? {
            return Err(rules::stale_session(w));
        }
    }

    if let Some((id, update)) = &uow.integration {
        let found = match crate::update_integration_sql::<D>(*id, update, Some(ws))? {
            Some((stmt, args)) => d.execute(tx, stmt, args).await? == 1,
            None => true,
        };
        if !found {
            return Err(StoreError::NotFound(format!("integration {id}")));
        }
    }

    // Before the mapping: a unit may unlink an object from one task and link it to another.
    if let Some((ext, task_id)) = &uow.unmapping {
        let args = vec![
            Arg::Uuid(ext.integration_id.0),
            Arg::text(ext.provider.as_str()),
            Arg::text(&ext.key.external_id),
            Arg::text(&ext.key.object_type),
            Arg::Uuid(task_id.0),
            Arg::text(ws.as_str()),
        ];
        // Zero rows is fine: the ref was unmapped already, or mapped to another task.
        d.execute(tx, sql::<D>(DELETE_MAPPING), args).await?;
    }

    if let Some((ext, task_id)) = &uow.mapping {
        let key = vec![
            Arg::Uuid(ext.integration_id.0),
            Arg::text(ext.provider.as_str()),
            Arg::text(&ext.key.external_id),
            Arg::text(&ext.key.object_type),
        ];
        let mut args = key.clone();
        args.extend([
            Arg::text(ws.as_str()),
            Arg::Uuid(task_id.0),
            Arg::Text(ext.url.clone()),
        ]);
        d.execute(tx, sql::<D>(INSERT_MAPPING), args).await?;
        // A new statement: it sees a mapping another transaction committed meanwhile.
        let rows = d.fetch(tx, sql::<D>(MAPPED_TASK), key).await?;
        let mapped = rows.first().map(|r| r.uuid("task_id")).transpose()?;
        if mapped != Some(task_id.0) {
            return Err(StoreError::Conflict(format!(
                "{} {} is mapped to another task",
                ext.key.object_type, ext.key.external_id
            )));
        }
    }

    let mut outbox = None;
    if let Some((task_id, integration_id)) = &uow.enqueue_push {
        d.lock_task(tx, *task_id).await?;
        let pending = d
            .fetch(
                tx,
                sql::<D>(PENDING_PUSH),
                vec![Arg::Uuid(task_id.0), Arg::Uuid(integration_id.0)],
            )
            .await?;
        let id = match pending.first() {
            Some(r) => OutboxId(r.uuid("id")?),
            None => {
                let id = OutboxId::new();
                let args = vec![
                    Arg::Uuid(id.0),
                    Arg::text(ws.as_str()),
                    Arg::Uuid(task_id.0),
                    Arg::Uuid(integration_id.0),
                    Arg::time(time::OffsetDateTime::now_utc()),
                ];
                d.execute(tx, sql::<D>(INSERT_PUSH), args).await?;
                id
            }
        };
        outbox = Some(id);
    }

    Ok(outbox)
}

async fn write_task<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    ws: &WorkspaceId,
    tw: &TaskWrite,
    ledger: &[LedgerDraft],
) -> Result<(), StoreError> {
    if task_written(d, tx, ws, tw, ledger).await? {
        Ok(())
    } else {
        Err(stale_task(tw))
    }
}

/// The refusal of a task write whose revision (or absence) no longer holds.
pub(crate) fn stale_task(tw: &TaskWrite) -> StoreError {
    StoreError::Conflict(match tw.expected_revision {
        None => format!("task {} exists already", tw.task.id),
        Some(r) => format!("task {} is no longer at revision {r}", tw.task.id),
    })
}

/// Writes the task; `false` when its revision (or absence) no longer holds, in which case the
/// statement wrote nothing (and, unlike an error, left a PostgreSQL transaction usable).
pub(crate) async fn task_written<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    ws: &WorkspaceId,
    tw: &TaskWrite,
    ledger: &[LedgerDraft],
) -> Result<bool, StoreError> {
    let t = &tw.task;
    let delta = ConflictDelta::of(ledger, Some(t.id));
    let assignee = t.fields.assignee.as_ref();
    let mut args = vec![
        Arg::Uuid(t.id.0),
        Arg::text(ws.as_str()),
        Arg::Int(i64_of(t.revision)?),
        Arg::Bool(t.deleted),
        Arg::time(t.updated_at),
        Arg::Json(Some(to_json(t)?)),
        Arg::text(&t.fields.title),
        Arg::text(&t.fields.status.name),
        Arg::text(category_str(t.fields.status.category)),
        Arg::Text(assignee.map(|a| a.account_id.clone())),
        Arg::Text(assignee.and_then(|a| a.display_name.clone())),
        Arg::text(SyncState::of_task(t).as_str()),
        // The mask's bits as stored: a signed 64-bit integer of the same bits.
        Arg::Int(delta.set as i64),
    ];
    let n = match tw.expected_revision {
        None => d.execute(tx, sql::<D>(INSERT_TASK), args).await?,
        Some(expected) => {
            args.push(Arg::Int(delta.keep as i64));
            args.push(Arg::Int(i64_of(expected)?));
            d.execute(tx, sql::<D>(UPDATE_TASK), args).await?
        }
    };
    Ok(n > 0)
}

/// Writes a comment; `false` when its revision (or absence) no longer holds, or its provider
/// id is another row's already (the statement then wrote nothing).
async fn comment_written<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    ws: &WorkspaceId,
    w: &ordonis_core::CommentWrite,
) -> Result<bool, StoreError> {
    let c = &w.comment;
    let mut args = vec![
        Arg::Uuid(c.id.0),
        Arg::text(ws.as_str()),
        Arg::Uuid(c.task_id.0),
        Arg::Uuid(c.integration_id.map_or(uuid::Uuid::nil(), |i| i.0)),
        Arg::Text(c.external_id.clone()),
        Arg::Int(i64_of(c.revision)?),
        Arg::time(c.created_at),
        Arg::Json(Some(to_json(c)?)),
    ];
    let n = match w.expected_revision {
        None => d.execute(tx, sql::<D>(INSERT_COMMENT), args).await?,
        Some(expected) => {
            args.push(Arg::Int(i64_of(expected)?));
            d.execute(tx, sql::<D>(UPDATE_COMMENT), args).await?
        }
    };
    Ok(n > 0)
}

/// Writes a session; `false` when its revision (or absence) no longer holds.
async fn session_written<D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    ws: &WorkspaceId,
    w: &ordonis_core::SessionWrite,
) -> Result<bool, StoreError> {
    let s = &w.session;
    let mut args = vec![
        Arg::Uuid(s.id.0),
        Arg::text(ws.as_str()),
        Arg::Uuid(s.task_id.0),
        Arg::Int(i64_of(s.revision)?),
        Arg::text(s.state.as_str()),
        Arg::time(s.created_at),
        Arg::time(s.last_activity_at),
        Arg::Json(Some(to_json(s)?)),
    ];
    let n = match w.expected_revision {
        None => d.execute(tx, sql::<D>(INSERT_SESSION), args).await?,
        Some(expected) => {
            args.push(Arg::Int(i64_of(expected)?));
            d.execute(tx, sql::<D>(UPDATE_SESSION), args).await?
        }
    };
    Ok(n > 0)
}

/// Entries per multi-row ledger insert (7 parameters each, under both databases' limits).
const ENTRIES_PER_STATEMENT: usize = 512;

/// Appends drafts to the workspace's log: one head update for all of them, then multi-row
/// inserts. The head's row lock serializes a workspace's writers until the commit.
pub(crate) async fn append_entries<'a, D: Dialect>(
    d: &D,
    tx: &mut D::Tx,
    ws: &WorkspaceId,
    drafts: impl ExactSizeIterator<Item = &'a LedgerDraft>,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let count = drafts.len();
    if count == 0 {
        return Ok(Vec::new());
    }
    let n = i64::try_from(count).unwrap_or(i64::MAX);
    let head = d
        .fetch(
            tx,
            sql::<D>(ADVANCE_HEAD),
            vec![Arg::text(ws.as_str()), Arg::Int(n)],
        )
        .await?;
    let start = head
        .first()
        .ok_or_else(|| backend("ledger head", "no row"))?
        .int("start")?;
    let start = u64::try_from(start).map_err(|e| backend("ledger head", e))?;
    let logged_at = rules::now_micros();
    let mut entries = Vec::with_capacity(count);
    let mut rest = String::new();
    let mut args = Vec::with_capacity(count.min(ENTRIES_PER_STATEMENT) * 7);
    for (i, draft) in drafts.enumerate() {
        let idx = start + i as u64;
        let entry = LedgerEntry::seal(draft.clone(), idx, logged_at);
        let k = i % ENTRIES_PER_STATEMENT;
        let (list, _) = params(7 * k + 1, 7);
        if k > 0 {
            rest.push_str(", ");
        }
        rest.push_str(&list);
        args.extend([
            Arg::text(ws.as_str()),
            Arg::Int(i64_of(idx)?),
            Arg::time(logged_at),
            Arg::Uuid(draft.task_id.0),
            Arg::text(serde_json::to_string(draft).map_err(|e| backend("ledger record", e))?),
            Arg::Bytes(entry.bytes.clone()),
            Arg::Bytes(entry.leaf_hash.to_vec()),
        ]);
        entries.push(entry);
        if k + 1 == ENTRIES_PER_STATEMENT || i + 1 == count {
            let stmt = sql_with::<D>(INSERT_ENTRIES, &std::mem::take(&mut rest));
            d.execute(tx, stmt, std::mem::take(&mut args)).await?;
        }
    }
    Ok(entries)
}

/// The stored name of a status category (the document's own encoding).
pub(crate) fn category_str(c: StatusCategory) -> &'static str {
    match c {
        StatusCategory::Todo => "todo",
        StatusCategory::InProgress => "in_progress",
        StatusCategory::Done => "done",
    }
}

/// The conflict-mask changes a unit's drafts make to tasks other than the one it writes
/// (rare: a unit's drafts are about its own task), in first-mention order.
pub(crate) fn foreign_conflicts(uow: &UnitOfWork) -> Vec<(TaskId, ConflictDelta)> {
    let own = uow.task.as_ref().map(|tw| tw.task.id);
    let mut out: Vec<(TaskId, ConflictDelta)> = Vec::new();
    for d in &uow.ledger {
        if Some(d.task_id) == own
            || d.field.is_none()
            || d.op != ordonis_core::Op::Set
            || out.iter().any(|(t, _)| *t == d.task_id)
        {
            continue;
        }
        let delta = ConflictDelta::of(&uow.ledger, Some(d.task_id));
        if !delta.is_noop() {
            out.push((d.task_id, delta));
        }
    }
    out
}
