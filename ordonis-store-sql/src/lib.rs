//! The one SQL implementation of Ordonis's [`Store`] and VERA [`Ledger`], over a small
//! per-dialect layer ([`Dialect`]). `ordonis-store-postgres` and `ordonis-store-sqlite` are
//! that layer for their databases; everything else (the statements, the queue life cycle,
//! the unit of work, the row decoding, group commit) is here, once.
//!
//! Both stores share one schema shape: `integrations`, `webhook_events` (the inbox),
//! `outbox`, `tasks`, `external_objects`, `ledger_heads`, `vera_ledger`, `vera_checkpoints`
//! (with `vera_cosignatures` and the tile cache `vera_tile_hashes`),
//! each behind the dialect's [`Dialect::PREFIX`]. Statements use `$n` parameters, which both
//! PostgreSQL and SQLite read.

mod batch;
mod commit;
mod console_sessions;
mod dialect;
mod glue;
mod ingest;
mod key_check;
mod people;
mod render;
pub mod schema;
mod sync_jobs;
mod tables;
mod task_query;
mod vera;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ordonis_core::store::rules;
use ordonis_core::{
    ClaimRequest, CommitReceipt, InsertOutcome, IntegrationId, IntegrationRecord,
    IntegrationUpdate, Job, JobFailure, JobFilter, JobId, JobState, Lease, Ledger, LedgerEntry,
    NewInboxEvent, ObjectKey, Queue, Retry, Store, StoreError, StoredCheckpoint, SyncJob,
    SyncLease, SyncSave, SyncSchedule, Task, TaskId, TaskPage, UnitOfWork, WorkspaceId,
};

pub use dialect::{Arg, Dialect, Exec, QueueTable, Sql, SqlRow};

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
}
pub use tables::{INBOX, OUTBOX};
pub use task_query::like_pattern;

use render::{sql, sql_on};
use tables::{backend, i64_of, limit_of, table, to_json};

/// A [`Store`] and [`Ledger`] on any [`Dialect`].
#[derive(Debug)]
pub struct SqlStore<D> {
    dialect: D,
    group_commit: Arc<ingest::GroupCommit>,
}

impl<D: Clone> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            dialect: self.dialect.clone(),
            group_commit: self.group_commit.clone(),
        }
    }
}

impl<D: Dialect> SqlStore<D> {
    /// A store over a connected dialect.
    pub fn new(dialect: D) -> Self {
        Self {
            dialect,
            group_commit: Arc::default(),
        }
    }

    /// Opens the database a URL names through the dialect (migrating it).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(D::connect(url).await?))
    }

    /// The dialect (its connection pools and database-specific calls).
    pub fn dialect(&self) -> &D {
        &self.dialect
    }

    async fn read(
        &self,
        template: &'static str,
        args: Vec<Arg>,
    ) -> Result<Vec<D::Row>, StoreError> {
        self.dialect.read(sql::<D>(template), args).await
    }
}

/// The statement applying an [`IntegrationUpdate`] (`None` when it changes nothing), only in
/// workspace `ws` when given.
pub(crate) fn update_integration_sql<D: Dialect>(
    id: IntegrationId,
    update: &IntegrationUpdate,
    ws: Option<&WorkspaceId>,
) -> Result<Option<(Sql, Vec<Arg>)>, StoreError> {
    let mut sets = Vec::new();
    let mut args = vec![Arg::Uuid(id.0)];
    if let Some(c) = &update.config {
        args.push(Arg::Json(Some(to_json(c)?)));
        sets.push(format!("config = ${}", args.len()));
    }
    if let Some(s) = &update.secrets {
        args.push(Arg::Bytes(s.0.clone()));
        sets.push(format!("secrets = ${}", args.len()));
    }
    if let Some(p) = update.paused_until {
        args.push(Arg::Time(p));
        sets.push(format!("paused_until = ${}", args.len()));
    }
    if let Some(s) = update.state {
        args.push(Arg::text(s.as_str()));
        sets.push(format!("state = ${}", args.len()));
    }
    if sets.is_empty() {
        return Ok(None);
    }
    let mut stmt = format!(
        "UPDATE {}integrations SET {} WHERE id = $1",
        D::PREFIX,
        sets.join(", ")
    );
    if let Some(ws) = ws {
        args.push(Arg::text(ws.as_str()));
        stmt.push_str(&format!(" AND workspace_id = ${}", args.len()));
    }
    Ok(Some((stmt.into(), args)))
}

/// The columns the queue list and look-up queries read.
fn queue_columns(queue: Queue) -> &'static str {
    table(queue).columns
}

fn jobs_of<R: SqlRow>(queue: Queue, rows: &[R]) -> Result<Vec<Job>, StoreError> {
    rows.iter()
        .map(|r| tables::job(queue, r).map(|(_, j)| j))
        .collect()
}

const INSERT_INTEGRATION: &str = "INSERT INTO {p}integrations
    (id, workspace_id, provider, config, secrets, paused_until, created_at, state)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INTEGRATION: &str =
    "SELECT id, workspace_id, provider, config, secrets, paused_until, created_at, state
       FROM {p}integrations WHERE id = $1";
const INTEGRATIONS: &str =
    "SELECT id, workspace_id, provider, config, secrets, paused_until, created_at, state
       FROM {p}integrations WHERE workspace_id = $1 ORDER BY created_at, id";
const WORKSPACES: &str = "SELECT workspace_id FROM {p}integrations
  UNION SELECT workspace_id FROM {p}tasks ORDER BY 1";
const FAIL: &str = "UPDATE {p}{table}
    SET state = $4, next_attempt_at = COALESCE($5, next_attempt_at),
        attempts = CASE WHEN attempts > $6 THEN attempts - $6 ELSE 0 END, last_error = $7,
        error_kind = $8,
        lease_owner = NULL, lease_expires_at = NULL
  WHERE id = $1 AND state = 'processing' AND lease_owner = $2 AND attempts = $3";
const REPLAY: &str = "UPDATE {p}{table}
    SET state = 'pending', attempts = 0, next_attempt_at = $3,
        lease_owner = NULL, lease_expires_at = NULL
  WHERE id = $1 AND workspace_id = $2 AND state IN ('failed', 'dead')";
const STATE: &str = "SELECT state FROM {p}{table} WHERE id = $1 AND workspace_id = $2";
const COUNTS: &str = "SELECT state, count(*) AS n FROM {p}{table} GROUP BY state";
const TASK: &str = "SELECT doc FROM {p}tasks WHERE id = $1";
const TASKS: &str = "SELECT doc FROM {p}tasks WHERE workspace_id = $1 ORDER BY id LIMIT $2";
const TASKS_AFTER: &str =
    "SELECT doc FROM {p}tasks WHERE workspace_id = $1 AND id > $3 ORDER BY id LIMIT $2";
const TASK_COMMENTS: &str = "SELECT doc FROM {p}task_comments
  WHERE workspace_id = $1 AND task_id = $2 ORDER BY created_at, id";
const COMMENT: &str = "SELECT doc FROM {p}task_comments WHERE id = $1";
const TASK_SESSIONS: &str = "SELECT doc FROM {p}agent_sessions
  WHERE workspace_id = $1 AND task_id = $2 ORDER BY created_at, id";
const SESSION: &str = "SELECT doc FROM {p}agent_sessions WHERE id = $1";
const IDLE_SESSIONS: &str = "SELECT doc FROM {p}agent_sessions
  WHERE state IN ('active', 'awaiting_input') AND last_activity_at < $1
  ORDER BY last_activity_at, id LIMIT $2";
const MAPPING: &str = "SELECT task_id FROM {p}external_objects
  WHERE integration_id = $1 AND external_id = $2 AND object_type = $3 LIMIT 1";
const MAPPED_TASKS: &str = "SELECT m.external_id, m.object_type, t.doc
  FROM {p}external_objects m JOIN {p}tasks t ON t.id = m.task_id
  WHERE m.integration_id = $1 AND t.workspace_id = $2
    AND (m.external_id, m.object_type) IN (VALUES ";
const LEDGER_SIZE: &str = "SELECT size FROM {p}ledger_heads WHERE workspace_id = $1";
const LEDGER_FROM: &str = "SELECT idx, logged_at, record, bytes, leaf_hash FROM {p}vera_ledger
  WHERE workspace_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3";
const TASK_LEDGER: &str = "SELECT idx, logged_at, record, bytes, leaf_hash FROM {p}vera_ledger
  WHERE workspace_id = $1 AND task_id = $2 ORDER BY idx";
const TASK_LEDGER_PAGE: &str = "SELECT idx, logged_at, record, bytes, leaf_hash FROM {p}vera_ledger
  WHERE workspace_id = $1 AND task_id = $2 AND idx > $3 ORDER BY idx LIMIT $4";
const SAVE_CHECKPOINT: &str = "INSERT INTO {p}vera_checkpoints (workspace_id, size, note)
  VALUES ($1, $2, $3) ON CONFLICT (workspace_id, size) DO NOTHING";
const CHECKPOINT_AT: &str =
    "SELECT note FROM {p}vera_checkpoints WHERE workspace_id = $1 AND size = $2";
const LATEST_CHECKPOINT: &str = "SELECT size, note FROM {p}vera_checkpoints
  WHERE workspace_id = $1 ORDER BY size DESC LIMIT 1";

#[async_trait]
impl<D: Dialect> Store for SqlStore<D> {
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError> {
        let args = vec![
            Arg::Uuid(rec.id.0),
            Arg::text(rec.workspace_id.as_str()),
            Arg::text(rec.provider.as_str()),
            Arg::Json(Some(to_json(&rec.config)?)),
            Arg::Bytes(rec.secrets.0.clone()),
            Arg::Time(rec.paused_until),
            Arg::time(rec.created_at),
            Arg::text(rec.state.as_str()),
        ];
        self.dialect
            .write_count(sql::<D>(INSERT_INTEGRATION), args)
            .await?;
        Ok(())
    }

    async fn integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        self.read(INTEGRATION, vec![Arg::Uuid(id.0)])
            .await?
            .first()
            .map(tables::integration)
            .transpose()
    }

    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError> {
        self.read(INTEGRATIONS, vec![Arg::text(ws.as_str())])
            .await?
            .iter()
            .map(tables::integration)
            .collect()
    }

    async fn update_integration(
        &self,
        id: IntegrationId,
        update: &IntegrationUpdate,
    ) -> Result<(), StoreError> {
        let n = match update_integration_sql::<D>(id, update, None)? {
            Some((stmt, args)) => self.dialect.write_count(stmt, args).await?,
            // Nothing to change: only the existence check.
            None => self.read(INTEGRATION, vec![Arg::Uuid(id.0)]).await?.len() as u64,
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!("integration {id}")));
        }
        Ok(())
    }

    async fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        self.read(WORKSPACES, Vec::new())
            .await?
            .iter()
            .map(|r| {
                WorkspaceId::new(r.text("workspace_id")?).map_err(|e| backend("workspace id", e))
            })
            .collect()
    }

    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        rules::validate_new_events(events)?;
        match events {
            [] => Ok(Vec::new()),
            // One event (the webhook handler's case) goes through group commit: concurrent
            // callers share one multi-row statement and one commit.
            [ev] => Ok(vec![
                self.group_commit.insert(&self.dialect, ev.clone()).await?,
            ]),
            _ => ingest::insert_many(&self.dialect, events).await,
        }
    }

    async fn claim(&self, queue: Queue, req: &ClaimRequest) -> Result<Vec<Job>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self.dialect.claim(table(queue), req).await?;
        let mut jobs = rows
            .iter()
            .map(|r| tables::job(queue, r))
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|(at, j)| (*at, j.id().uuid()));
        Ok(jobs.into_iter().map(|(_, j)| j).collect())
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &JobFailure,
        retry: Retry,
    ) -> Result<(), StoreError> {
        let effect = rules::failure_effect(retry)?;
        let args = vec![
            Arg::Uuid(lease.row),
            Arg::text(&lease.owner),
            Arg::Int(i64::from(lease.attempt)),
            Arg::text(effect.state.as_str()),
            Arg::Time(effect.next_attempt_at),
            Arg::Int(i64::from(effect.attempts_refund())),
            Arg::text(&error.message),
            Arg::text(error.kind.as_str()),
        ];
        let stmt = sql_on::<D>(FAIL, table(lease.queue).table);
        if !matches!(effect.state, JobState::Failed | JobState::Dead) {
            let n = self.dialect.write_count(stmt, args).await?;
            if n == 0 {
                return Err(rules::lease_lost(lease));
            }
            return Ok(());
        }
        // Into failed or dead: the task's stored sync state turns to error in the same
        // transaction.
        let d = &self.dialect;
        let mut tx = d.begin().await?;
        if d.execute(&mut tx, stmt, args).await? == 0 {
            return Err(rules::lease_lost(lease));
        }
        let (refresh, args) = task_query::refresh_failures::<D>(lease.job());
        d.execute(&mut tx, refresh.into(), args).await?;
        d.commit(tx).await
    }

    async fn replay(&self, ws: &WorkspaceId, id: JobId) -> Result<(), StoreError> {
        let t = table(id.queue()).table;
        let args = vec![
            Arg::Uuid(id.uuid()),
            Arg::text(ws.as_str()),
            Arg::time(time::OffsetDateTime::now_utc()),
        ];
        // Out of failed or dead: the task's failure count follows in the same transaction.
        let d = &self.dialect;
        let mut tx = d.begin().await?;
        if d.execute(&mut tx, sql_on::<D>(REPLAY, t), args).await? == 1 {
            let (refresh, args) = task_query::refresh_failures::<D>(id);
            d.execute(&mut tx, refresh.into(), args).await?;
            return d.commit(tx).await;
        }
        drop(tx);
        let rows = self
            .dialect
            .read(
                sql_on::<D>(STATE, t),
                vec![Arg::Uuid(id.uuid()), Arg::text(ws.as_str())],
            )
            .await?;
        let state = rows
            .first()
            .map(|r| r.text("state"))
            .transpose()?
            .and_then(|s| JobState::parse(&s));
        Err(rules::replay_refused(id, state))
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let q = id.queue();
        let stmt = format!(
            "SELECT {} FROM {}{} WHERE id = $1",
            queue_columns(q),
            D::PREFIX,
            table(q).table
        );
        let rows = self
            .dialect
            .read(stmt.into(), vec![Arg::Uuid(id.uuid())])
            .await?;
        Ok(jobs_of(q, &rows)?.into_iter().next())
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let q = filter.queue;
        let t = table(q);
        let mut conds = Vec::new();
        let mut args = Vec::new();
        if let Some(ws) = &filter.workspace_id {
            args.push(Arg::text(ws.as_str()));
            conds.push(format!("workspace_id = ${}", args.len()));
        }
        if let Some(i) = filter.integration_id {
            args.push(Arg::Uuid(i.0));
            conds.push(format!("integration_id = ${}", args.len()));
        }
        if let Some(s) = filter.state {
            args.push(Arg::text(s.as_str()));
            conds.push(format!("state = ${}", args.len()));
        }
        // Keyset paging in the listing's own order: the rows strictly after the cursor's.
        if let Some(c) = filter.after {
            args.push(Arg::Time(Some(c.at)));
            let at = args.len();
            args.push(Arg::Uuid(c.id));
            conds.push(format!(
                "({o} < ${at} OR ({o} = ${at} AND id < ${id}))",
                o = t.order_by,
                id = args.len()
            ));
        }
        args.push(Arg::Int(limit_of(filter.effective_limit())));
        let stmt = format!(
            "SELECT {cols} FROM {p}{table}{where_} ORDER BY {order} DESC, id DESC LIMIT ${n}",
            cols = t.columns,
            p = D::PREFIX,
            table = t.table,
            where_ = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            },
            order = t.order_by,
            n = args.len(),
        );
        let rows = self.dialect.read(stmt.into(), args).await?;
        jobs_of(q, &rows)
    }

    async fn job_counts(&self, queue: Queue) -> Result<Vec<(JobState, u64)>, StoreError> {
        let rows = self
            .dialect
            .read(sql_on::<D>(COUNTS, table(queue).table), Vec::new())
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let s = r.text("state")?;
                let state = JobState::parse(&s).ok_or_else(|| backend("unknown job state", s))?;
                Ok((state, u64::try_from(r.int("n")?).unwrap_or(0)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|(s, _)| s.as_str());
        Ok(out)
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.read(TASK, vec![Arg::Uuid(id.0)])
            .await?
            .first()
            .map(tables::task)
            .transpose()
    }

    async fn tasks(&self, ws: &WorkspaceId, page: &TaskPage) -> Result<Vec<Task>, StoreError> {
        let mut args = vec![
            Arg::text(ws.as_str()),
            Arg::Int(limit_of(page.effective_limit())),
        ];
        let template = match page.after {
            Some(after) => {
                args.push(Arg::Uuid(after.0));
                TASKS_AFTER
            }
            None => TASKS,
        };
        self.read(template, args)
            .await?
            .iter()
            .map(tables::task)
            .collect()
    }

    async fn query_tasks(
        &self,
        query: &ordonis_core::TaskQuery,
    ) -> Result<ordonis_core::TaskList, StoreError> {
        task_query::query_tasks(&self.dialect, query).await
    }

    async fn task_statuses(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Vec<ordonis_core::Status>, StoreError> {
        task_query::task_statuses(&self.dialect, ws).await
    }

    async fn task_assignees(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Vec<ordonis_core::Assignee>, StoreError> {
        task_query::task_assignees(&self.dialect, ws).await
    }

    async fn task_comments(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<ordonis_core::TaskComment>, StoreError> {
        self.read(
            TASK_COMMENTS,
            vec![Arg::text(ws.as_str()), Arg::Uuid(task.0)],
        )
        .await?
        .iter()
        .map(|r| tables::json(r, "doc"))
        .collect()
    }

    async fn comment(
        &self,
        id: ordonis_core::CommentId,
    ) -> Result<Option<ordonis_core::TaskComment>, StoreError> {
        self.read(COMMENT, vec![Arg::Uuid(id.0)])
            .await?
            .first()
            .map(|r| tables::json(r, "doc"))
            .transpose()
    }

    async fn task_sessions(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<ordonis_core::AgentSession>, StoreError> {
        self.read(
            TASK_SESSIONS,
            vec![Arg::text(ws.as_str()), Arg::Uuid(task.0)],
        )
        .await?
        .iter()
        .map(|r| tables::json(r, "doc"))
        .collect()
    }

    async fn session(
        &self,
        id: ordonis_core::SessionId,
    ) -> Result<Option<ordonis_core::AgentSession>, StoreError> {
        self.read(SESSION, vec![Arg::Uuid(id.0)])
            .await?
            .first()
            .map(|r| tables::json(r, "doc"))
            .transpose()
    }

    async fn idle_sessions(
        &self,
        before: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ordonis_core::AgentSession>, StoreError> {
        self.read(
            IDLE_SESSIONS,
            vec![Arg::time(before), Arg::Int(limit_of(limit))],
        )
        .await?
        .iter()
        .map(|r| tables::json(r, "doc"))
        .collect()
    }

    async fn find_mapping(
        &self,
        integration: IntegrationId,
        key: &ObjectKey,
    ) -> Result<Option<TaskId>, StoreError> {
        let args = vec![
            Arg::Uuid(integration.0),
            Arg::text(&key.external_id),
            Arg::text(&key.object_type),
        ];
        self.read(MAPPING, args)
            .await?
            .first()
            .map(|r| r.uuid("task_id").map(TaskId))
            .transpose()
    }

    async fn mapped_tasks(
        &self,
        ws: &WorkspaceId,
        integration: IntegrationId,
        keys: &[ObjectKey],
    ) -> Result<Vec<Option<Task>>, StoreError> {
        let mut found: HashMap<(&str, &str), Task> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(256) {
            let mut rest = String::new();
            let mut args = vec![Arg::Uuid(integration.0), Arg::text(ws.as_str())];
            for (i, key) in chunk.iter().enumerate() {
                let (list, _) = render::params(3 + 2 * i, 2);
                if i > 0 {
                    rest.push_str(", ");
                }
                rest.push_str(&list);
                args.push(Arg::text(&key.external_id));
                args.push(Arg::text(&key.object_type));
            }
            rest.push(')');
            let rows = self
                .dialect
                .read(render::sql_with::<D>(MAPPED_TASKS, &rest), args)
                .await?;
            for r in &rows {
                let (id, kind) = (r.text("external_id")?, r.text("object_type")?);
                if let Some(key) = chunk
                    .iter()
                    .find(|k| k.external_id == id && k.object_type == kind)
                {
                    found.insert((&key.external_id, &key.object_type), tables::task(r)?);
                }
            }
        }
        Ok(keys
            .iter()
            .map(|k| {
                found
                    .get(&(k.external_id.as_str(), k.object_type.as_str()))
                    .cloned()
            })
            .collect())
    }

    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
        commit::commit(&self.dialect, uow).await
    }

    async fn commit_batch(
        &self,
        units: Vec<UnitOfWork>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        batch::commit_batch(&self.dialect, units).await
    }

    async fn schedule_sync(&self, schedule: &SyncSchedule) -> Result<(), StoreError> {
        sync_jobs::schedule(&self.dialect, schedule).await
    }

    async fn claim_sync(&self, req: &ClaimRequest) -> Result<Vec<SyncJob>, StoreError> {
        sync_jobs::claim(&self.dialect, req).await
    }

    async fn save_sync(&self, lease: &SyncLease, save: &SyncSave) -> Result<SyncLease, StoreError> {
        sync_jobs::save(&self.dialect, lease, save).await
    }

    async fn sync_job(&self, integration: IntegrationId) -> Result<Option<SyncJob>, StoreError> {
        sync_jobs::get(&self.dialect, integration).await
    }

    async fn add_sync_repaired(
        &self,
        integration: IntegrationId,
        run: u64,
        fields: u64,
    ) -> Result<(), StoreError> {
        sync_jobs::add_repaired(&self.dialect, integration, run, fields).await
    }

    async fn people(&self, ws: &WorkspaceId) -> Result<Vec<ordonis_core::Person>, StoreError> {
        people::people(&self.dialect, ws).await
    }

    async fn person(
        &self,
        ws: &WorkspaceId,
        principal: &str,
    ) -> Result<Option<ordonis_core::Person>, StoreError> {
        people::person(&self.dialect, ws, principal).await
    }

    async fn put_person(&self, person: &ordonis_core::Person) -> Result<(), StoreError> {
        people::put_person(&self.dialect, person).await
    }

    async fn person_with_account(
        &self,
        ws: &WorkspaceId,
        account: &ordonis_core::AccountRef,
    ) -> Result<Option<ordonis_core::Person>, StoreError> {
        people::person_with_account(&self.dialect, ws, account).await
    }

    async fn people_with_email(
        &self,
        ws: &WorkspaceId,
        email: &str,
    ) -> Result<Vec<ordonis_core::Person>, StoreError> {
        people::people_with_email(&self.dialect, ws, email).await
    }

    async fn record_accounts(
        &self,
        ws: &WorkspaceId,
        accounts: &[ordonis_core::SeenAccount],
    ) -> Result<(), StoreError> {
        people::record_accounts(&self.dialect, ws, accounts).await
    }

    async fn seen_accounts(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Vec<ordonis_core::SeenAccount>, StoreError> {
        people::seen_accounts(&self.dialect, ws).await
    }

    async fn seen_account(
        &self,
        ws: &WorkspaceId,
        account: &ordonis_core::AccountRef,
    ) -> Result<Option<ordonis_core::SeenAccount>, StoreError> {
        people::seen_account(&self.dialect, ws, account).await
    }

    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        key_check::get(&self.dialect).await
    }

    async fn init_key_check(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        key_check::init(&self.dialect, sealed).await
    }

    async fn put_console_session(
        &self,
        session: &ordonis_core::ConsoleSession,
        now: time::OffsetDateTime,
        max_live: u64,
    ) -> Result<(), StoreError> {
        console_sessions::put(&self.dialect, session, now, max_live).await
    }

    async fn console_session(
        &self,
        id_digest: &[u8; 32],
    ) -> Result<Option<ordonis_core::ConsoleSession>, StoreError> {
        console_sessions::get(&self.dialect, id_digest).await
    }

    async fn delete_console_session(&self, id_digest: &[u8; 32]) -> Result<(), StoreError> {
        console_sessions::delete(&self.dialect, id_digest).await
    }
}

#[async_trait]
impl<D: Dialect> Ledger for SqlStore<D> {
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError> {
        let rows = self.read(LEDGER_SIZE, vec![Arg::text(ws.as_str())]).await?;
        Ok(match rows.first() {
            Some(r) => u64::try_from(r.int("size")?).unwrap_or(0),
            None => 0,
        })
    }

    async fn ledger_entries(
        &self,
        ws: &WorkspaceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let args = vec![
            Arg::text(ws.as_str()),
            Arg::Int(i64_of(from)?),
            Arg::Int(limit_of(limit)),
        ];
        self.read(LEDGER_FROM, args)
            .await?
            .iter()
            .map(tables::entry)
            .collect()
    }

    async fn task_ledger(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(TASK_LEDGER, vec![Arg::text(ws.as_str()), Arg::Uuid(task.0)])
            .await?
            .iter()
            .map(tables::entry)
            .collect()
    }

    async fn task_ledger_page(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // -1 is below every index: the first page.
        let after = match after {
            Some(a) => i64_of(a)?,
            None => -1,
        };
        let args = vec![
            Arg::text(ws.as_str()),
            Arg::Uuid(task.0),
            Arg::Int(after),
            Arg::Int(limit_of(limit)),
        ];
        self.read(TASK_LEDGER_PAGE, args)
            .await?
            .iter()
            .map(tables::entry)
            .collect()
    }

    async fn save_checkpoint(
        &self,
        ws: &WorkspaceId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let size = i64_of(checkpoint.size)?;
        let args = vec![
            Arg::text(ws.as_str()),
            Arg::Int(size),
            Arg::text(&checkpoint.note),
        ];
        if self
            .dialect
            .write_count(sql::<D>(SAVE_CHECKPOINT), args)
            .await?
            == 1
        {
            return Ok(());
        }
        let rows = self
            .read(CHECKPOINT_AT, vec![Arg::text(ws.as_str()), Arg::Int(size)])
            .await?;
        match rows.first().map(|r| r.text("note")).transpose()? {
            Some(n) if n == checkpoint.note => Ok(()),
            _ => Err(StoreError::Conflict(format!(
                "a different checkpoint of size {} is stored already",
                checkpoint.size
            ))),
        }
    }

    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let rows = self
            .read(LATEST_CHECKPOINT, vec![Arg::text(ws.as_str())])
            .await?;
        rows.first()
            .map(|r| {
                Ok(StoredCheckpoint {
                    size: u64::try_from(r.int("size")?).unwrap_or(0),
                    note: r.text("note")?,
                })
            })
            .transpose()
    }

    async fn tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        vera::tile_hashes(&self.dialect, ws, level, from, limit).await
    }

    async fn save_tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        hashes: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        vera::save_tile_hashes(&self.dialect, ws, level, from, hashes).await
    }

    async fn add_cosignature(
        &self,
        ws: &WorkspaceId,
        size: u64,
        witness: &str,
        line: &str,
    ) -> Result<(), StoreError> {
        vera::add_cosignature(&self.dialect, ws, size, witness, line).await
    }

    async fn cosignatures(&self, ws: &WorkspaceId, size: u64) -> Result<Vec<String>, StoreError> {
        vera::cosignatures(&self.dialect, ws, size).await
    }
}

/// Renders a queue table's claim statement pieces for a dialect: the due-row condition's
/// in-flight test (`NOT EXISTS` a live lease on a row with the same serial key) over the
/// candidate alias `e`, with `now` the dialect's expression for the current time.
pub fn in_flight_guard(t: &QueueTable, prefix: &str, now: &str) -> String {
    let same: Vec<String> = t.serial.iter().map(|c| format!("f.{c} = e.{c}")).collect();
    format!(
        "NOT EXISTS (SELECT 1 FROM {prefix}{table} f WHERE {same} AND f.state = 'processing' \
         AND f.lease_expires_at > {now} AND f.id <> e.id)",
        table = t.table,
        same = same.join(" AND "),
    )
}

/// How many due rows a claim of `limit` looks at (see [`rules::claim_window`]).
pub fn claim_window(limit: usize) -> i64 {
    limit_of(rules::claim_window(limit))
}
