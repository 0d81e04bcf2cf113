//! Ordonis's in-memory store: [`MemoryStore`], a complete [`Store`] + [`Ledger`] held in
//! the process, beside the SQL stores (`ordonis-store-postgres`, `ordonis-store-sqlite`) as
//! `object_store::memory` is beside its cloud stores.
//!
//! It has the same semantics as the SQL stores: it runs the same conformance suite
//! (`ordonis_testkit::store_suite!`, in this crate's `tests/suite.rs`), and both apply
//! [`ordonis_core::store::rules`]. Nothing survives the process: it is for tests (the engine's,
//! the adapters', a host's own) and for demos.
//!
//! ```
//! use std::sync::Arc;
//! use ordonis_core::Store;
//! use ordonis_store_memory::MemoryStore;
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! # let _ = store;
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use ordonis_core::store::rules;
use ordonis_core::{
    ClaimRequest, CommitReceipt, Completion, EventId, FailureKind, InboxEvent, InsertOutcome,
    IntegrationId, IntegrationRecord, IntegrationState, IntegrationUpdate, Job, JobFailure,
    JobFilter, JobId, JobState, Lease, Ledger, LedgerEntry, NewInboxEvent, ObjectKey, OutboxId,
    OutboxJob, Queue, Retry, SealedSecrets, Store, StoreError, StoredCheckpoint, SyncJob,
    SyncLease, SyncSave, SyncSchedule, Task, TaskId, TaskPage, UnitOfWork, WorkspaceId,
};
use time::OffsetDateTime;
use uuid::Uuid;

mod people;
mod repair_jobs;

type MappingKey = (IntegrationId, String, String);

/// The life-cycle fields both queues' rows share, borrowed mutably.
struct Life<'a> {
    state: &'a mut JobState,
    attempts: &'a mut u32,
    next_attempt_at: &'a mut OffsetDateTime,
    last_error: &'a mut Option<String>,
    error_kind: &'a mut Option<FailureKind>,
    lease: &'a mut Option<Lease>,
}

/// A row of one of the queues.
trait QueueRow: Clone {
    const QUEUE: Queue;
    fn life(&mut self) -> Life<'_>;
    fn workspace(&self) -> &WorkspaceId;
    fn state(&self) -> JobState;
    fn integration(&self) -> IntegrationId;
    /// Rows with the same key are never in flight together (object, or task).
    fn serial_key(&self) -> Option<String>;
    fn into_job(self) -> Job;
}

impl QueueRow for InboxEvent {
    const QUEUE: Queue = Queue::Inbox;
    fn life(&mut self) -> Life<'_> {
        Life {
            state: &mut self.state,
            attempts: &mut self.attempts,
            next_attempt_at: &mut self.next_attempt_at,
            last_error: &mut self.last_error,
            error_kind: &mut self.error_kind,
            lease: &mut self.lease,
        }
    }
    fn workspace(&self) -> &WorkspaceId {
        &self.workspace_id
    }
    fn state(&self) -> JobState {
        self.state
    }
    fn integration(&self) -> IntegrationId {
        self.integration_id
    }
    fn serial_key(&self) -> Option<String> {
        self.object_key
            .as_ref()
            .map(|o| format!("{}/{o}", self.integration_id))
    }
    fn into_job(self) -> Job {
        Job::Event(self)
    }
}

impl QueueRow for OutboxJob {
    const QUEUE: Queue = Queue::Outbox;
    fn life(&mut self) -> Life<'_> {
        Life {
            state: &mut self.state,
            attempts: &mut self.attempts,
            next_attempt_at: &mut self.next_attempt_at,
            last_error: &mut self.last_error,
            error_kind: &mut self.error_kind,
            lease: &mut self.lease,
        }
    }
    fn workspace(&self) -> &WorkspaceId {
        &self.workspace_id
    }
    fn state(&self) -> JobState {
        self.state
    }
    fn integration(&self) -> IntegrationId {
        self.integration_id
    }
    fn serial_key(&self) -> Option<String> {
        Some(self.task_id.to_string())
    }
    fn into_job(self) -> Job {
        Job::Push(self)
    }
}

/// One queue: rows by id (UUID v7, so in creation order).
#[derive(Debug)]
struct QueueRows<R> {
    rows: BTreeMap<Uuid, R>,
}

impl<R> Default for QueueRows<R> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
        }
    }
}

impl<R: QueueRow> QueueRows<R> {
    fn claim(
        &mut self,
        req: &ClaimRequest,
        paused: &HashSet<IntegrationId>,
        at: OffsetDateTime,
    ) -> Vec<Job> {
        let mut busy: HashSet<String> = self
            .rows
            .values_mut()
            .filter_map(|r| {
                let key = r.serial_key();
                let life = r.life();
                let live = *life.state == JobState::Processing
                    && life.lease.as_ref().is_some_and(|l| l.expires_at > at);
                key.filter(|_| live)
            })
            .collect();
        let mut picked = Vec::new();
        for (id, r) in &mut self.rows {
            if picked.len() >= req.limit {
                break;
            }
            let key = r.serial_key();
            let integration = r.integration();
            let life = r.life();
            let due = match *life.state {
                JobState::Pending => *life.next_attempt_at <= at,
                JobState::Processing => life.lease.as_ref().is_none_or(|l| l.expires_at <= at),
                _ => false,
            };
            if !due || paused.contains(&integration) {
                continue;
            }
            if let Some(k) = key
                && !busy.insert(k)
            {
                continue;
            }
            picked.push(*id);
        }
        let mut out = Vec::with_capacity(picked.len());
        for id in picked {
            if let Some(r) = self.rows.get_mut(&id) {
                let life = r.life();
                *life.state = JobState::Processing;
                *life.attempts += 1;
                *life.lease = Some(Lease {
                    queue: R::QUEUE,
                    row: id,
                    owner: req.worker.clone(),
                    attempt: *life.attempts,
                    expires_at: at + req.lease,
                });
                out.push(r.clone().into_job());
            }
        }
        out
    }

    /// The row the lease still holds, in the workspace (when given).
    fn leased(&mut self, lease: &Lease, ws: Option<&WorkspaceId>) -> Result<&mut R, StoreError> {
        let row = self
            .rows
            .get_mut(&lease.row)
            .filter(|r| ws.is_none_or(|w| r.workspace() == w))
            .ok_or_else(|| rules::lease_lost(lease))?;
        let held = {
            let life = row.life();
            *life.state == JobState::Processing
                && life
                    .lease
                    .as_ref()
                    .is_some_and(|c| c.owner == lease.owner && c.attempt == lease.attempt)
        };
        if held {
            Ok(row)
        } else {
            Err(rules::lease_lost(lease))
        }
    }

    fn fail(&mut self, lease: &Lease, error: &JobFailure, retry: Retry) -> Result<(), StoreError> {
        let effect = rules::failure_effect(retry)?;
        let life = self.leased(lease, None)?.life();
        *life.state = effect.state;
        if let Some(t) = effect.next_attempt_at {
            *life.next_attempt_at = t;
        }
        *life.attempts = life.attempts.saturating_sub(effect.attempts_refund());
        *life.last_error = Some(error.message.clone());
        *life.error_kind = Some(error.kind);
        *life.lease = None;
        Ok(())
    }

    fn replay(
        &mut self,
        ws: &WorkspaceId,
        id: JobId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(row) = self
            .rows
            .get_mut(&id.uuid())
            .filter(|r| r.workspace() == ws)
        else {
            return Err(rules::replay_refused(id, None));
        };
        let life = row.life();
        if !rules::replayable(*life.state) {
            return Err(rules::replay_refused(id, Some(*life.state)));
        }
        *life.state = JobState::Pending;
        *life.attempts = 0;
        *life.next_attempt_at = at;
        *life.lease = None;
        Ok(())
    }

    fn list(&self, f: &JobFilter) -> Vec<Job> {
        // Newest first by the listing key `(time, id)`, as the SQL stores list, so that a
        // keyset cursor means the same row order in every store.
        let mut v: Vec<Job> = self
            .rows
            .values()
            .filter(|r| f.workspace_id.as_ref().is_none_or(|w| r.workspace() == w))
            .filter(|r| f.integration_id.is_none_or(|i| i == r.integration()))
            .filter(|r| f.state.is_none_or(|s| s == r.state()))
            .map(|r| r.clone().into_job())
            .filter(|j| f.after.is_none_or(|a| j.cursor() < a))
            .collect();
        v.sort_by_key(|j| std::cmp::Reverse(j.cursor()));
        v.truncate(f.effective_limit());
        v
    }

    fn counts(&self) -> Vec<(JobState, u64)> {
        let mut counts: BTreeMap<&'static str, (JobState, u64)> = BTreeMap::new();
        for r in self.rows.values() {
            let s = r.state();
            counts.entry(s.as_str()).or_insert((s, 0)).1 += 1;
        }
        counts.into_values().collect()
    }
}

#[derive(Debug, Default)]
struct State {
    integrations: BTreeMap<IntegrationId, IntegrationRecord>,
    inbox: QueueRows<InboxEvent>,
    dedupe: HashMap<(IntegrationId, String), EventId>,
    outbox: QueueRows<OutboxJob>,
    tasks: HashMap<TaskId, Task>,
    comments: HashMap<ordonis_core::CommentId, ordonis_core::TaskComment>,
    sessions: HashMap<ordonis_core::SessionId, ordonis_core::AgentSession>,
    mappings: HashMap<MappingKey, TaskId>,
    ledger: HashMap<WorkspaceId, Vec<LedgerEntry>>,
    checkpoints: HashMap<WorkspaceId, Vec<StoredCheckpoint>>,
    /// Full-subtree roots cached for tiles, by workspace, level and position.
    tile_hashes: HashMap<(WorkspaceId, u8), std::collections::BTreeMap<u64, [u8; 32]>>,
    /// Witness cosignature lines by workspace, checkpoint size and witness key.
    cosignatures: HashMap<(WorkspaceId, u64), std::collections::BTreeMap<String, String>>,
    key_check: Option<Vec<u8>>,
    console_sessions: HashMap<[u8; 32], ordonis_core::ConsoleSession>,
    sync: crate::repair_jobs::SyncJobs,
    people: crate::people::People,
}

impl State {
    fn paused(&self, at: OffsetDateTime) -> HashSet<IntegrationId> {
        self.integrations
            .values()
            .filter(|i| {
                i.paused_until.is_some_and(|p| p > at) || i.state != IntegrationState::Active
            })
            .map(|i| i.id)
            .collect()
    }

    /// Checks a completion's lease (and its workspace) without changing anything.
    fn check_completion(&mut self, ws: &WorkspaceId, c: &Completion) -> Result<(), StoreError> {
        match c {
            Completion::None => Ok(()),
            Completion::Done { lease, .. } => match lease.queue {
                Queue::Inbox => self.inbox.leased(lease, Some(ws)).map(|_| ()),
                Queue::Outbox => self.outbox.leased(lease, Some(ws)).map(|_| ()),
            },
        }
    }

    fn complete(&mut self, c: Completion) {
        let Completion::Done { lease, note } = c else {
            return;
        };
        let finish = |life: Life<'_>| {
            *life.state = JobState::Done;
            *life.lease = None;
            *life.last_error = note;
            *life.error_kind = None;
        };
        match lease.queue {
            Queue::Inbox => {
                if let Some(r) = self.inbox.rows.get_mut(&lease.row) {
                    finish(r.life());
                }
            }
            Queue::Outbox => {
                if let Some(r) = self.outbox.rows.get_mut(&lease.row) {
                    finish(r.life());
                }
            }
        }
    }
}

/// An in-memory store. Cheap to create; every method is atomic under one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every stored byte of sealed secrets (for the "ciphertext only" suite case).
    pub fn raw_secrets(&self) -> Vec<SealedSecrets> {
        self.lock()
            .integrations
            .values()
            .map(|i| i.secrets.clone())
            .collect()
    }
}

fn apply_update(rec: &mut IntegrationRecord, update: &IntegrationUpdate) {
    if let Some(c) = &update.config {
        rec.config = c.clone();
    }
    if let Some(s) = &update.secrets {
        rec.secrets = s.clone();
    }
    if let Some(p) = update.paused_until {
        rec.paused_until = p;
    }
    if let Some(s) = update.state {
        rec.state = s;
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError> {
        let mut st = self.lock();
        if st.integrations.contains_key(&rec.id) {
            return Err(StoreError::Conflict(format!(
                "integration {} exists",
                rec.id
            )));
        }
        st.integrations.insert(rec.id, rec.clone());
        Ok(())
    }

    async fn integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        Ok(self.lock().integrations.get(&id).cloned())
    }

    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError> {
        let mut v: Vec<IntegrationRecord> = self
            .lock()
            .integrations
            .values()
            .filter(|i| &i.workspace_id == ws)
            .cloned()
            .collect();
        v.sort_by_key(|i| (i.created_at, i.id));
        Ok(v)
    }

    async fn update_integration(
        &self,
        id: IntegrationId,
        update: &IntegrationUpdate,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let rec = st
            .integrations
            .get_mut(&id)
            .ok_or_else(|| StoreError::NotFound(format!("integration {id}")))?;
        apply_update(rec, update);
        Ok(())
    }

    async fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let st = self.lock();
        let set: BTreeSet<&WorkspaceId> = st
            .integrations
            .values()
            .map(|i| &i.workspace_id)
            .chain(st.tasks.values().map(|t| &t.workspace_id))
            .collect();
        Ok(set.into_iter().cloned().collect())
    }

    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        rules::validate_new_events(events)?;
        let mut st = self.lock();
        let at = now();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let key = (e.integration_id, e.dedupe_key.clone());
            if let Some(id) = st.dedupe.get(&key) {
                out.push(InsertOutcome::Duplicate(*id));
                continue;
            }
            st.dedupe.insert(key, e.id);
            st.inbox.rows.insert(
                e.id.0,
                InboxEvent {
                    id: e.id,
                    workspace_id: e.workspace_id.clone(),
                    integration_id: e.integration_id,
                    dedupe_key: e.dedupe_key.clone(),
                    delivery_id: e.delivery_id.clone(),
                    object_key: e.object_key.clone(),
                    headers: e.headers.clone(),
                    body: e.body.clone(),
                    body_sha256: e.body_sha256.clone(),
                    auth: e.auth.clone(),
                    received_at: at,
                    state: e.state,
                    attempts: 0,
                    next_attempt_at: at,
                    last_error: e.note.clone(),
                    error_kind: None,
                    lease: None,
                },
            );
            out.push(InsertOutcome::Inserted(e.id));
        }
        Ok(out)
    }

    async fn claim(&self, queue: Queue, req: &ClaimRequest) -> Result<Vec<Job>, StoreError> {
        let mut st = self.lock();
        let at = now();
        let paused = st.paused(at);
        Ok(match queue {
            Queue::Inbox => st.inbox.claim(req, &paused, at),
            Queue::Outbox => st.outbox.claim(req, &paused, at),
        })
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &JobFailure,
        retry: Retry,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        match lease.queue {
            Queue::Inbox => st.inbox.fail(lease, error, retry),
            Queue::Outbox => st.outbox.fail(lease, error, retry),
        }
    }

    async fn replay(&self, ws: &WorkspaceId, id: JobId) -> Result<(), StoreError> {
        let mut st = self.lock();
        match id.queue() {
            Queue::Inbox => st.inbox.replay(ws, id, now()),
            Queue::Outbox => st.outbox.replay(ws, id, now()),
        }
    }

    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let st = self.lock();
        Ok(match id {
            JobId::Event(e) => st.inbox.rows.get(&e.0).cloned().map(Job::Event),
            JobId::Push(p) => st.outbox.rows.get(&p.0).cloned().map(Job::Push),
        })
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let st = self.lock();
        Ok(match filter.queue {
            Queue::Inbox => st.inbox.list(filter),
            Queue::Outbox => st.outbox.list(filter),
        })
    }

    async fn job_counts(&self, queue: Queue) -> Result<Vec<(JobState, u64)>, StoreError> {
        let st = self.lock();
        Ok(match queue {
            Queue::Inbox => st.inbox.counts(),
            Queue::Outbox => st.outbox.counts(),
        })
    }

    async fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        Ok(self.lock().tasks.get(&id).cloned())
    }

    async fn tasks(&self, ws: &WorkspaceId, page: &TaskPage) -> Result<Vec<Task>, StoreError> {
        let mut v: Vec<Task> = self
            .lock()
            .tasks
            .values()
            .filter(|t| &t.workspace_id == ws && page.after.is_none_or(|a| t.id > a))
            .cloned()
            .collect();
        v.sort_by_key(|t| t.id);
        v.truncate(page.effective_limit());
        Ok(v)
    }

    async fn query_tasks(
        &self,
        q: &ordonis_core::TaskQuery,
    ) -> Result<ordonis_core::TaskList, StoreError> {
        use ordonis_core::{ConflictDelta, ConflictMask, ListedTask, SyncState, TaskSort};
        let (limit, after) = q.checked()?;
        let st = self.lock();
        let ws = &q.workspace_id;
        // The test store derives the stored inputs on each query, through the same core
        // function the SQL stores' columns follow.
        let mut conflicts: HashMap<TaskId, ConflictMask> = HashMap::new();
        for e in st.ledger.get(ws).map(Vec::as_slice).unwrap_or_default() {
            let m = conflicts.entry(e.record.task_id).or_default();
            *m = m.apply(ConflictDelta::of([&e.record], None));
        }
        let mut failures: HashMap<TaskId, u64> = HashMap::new();
        let failed = |s: JobState| matches!(s, JobState::Failed | JobState::Dead);
        for p in st.outbox.rows.values() {
            if &p.workspace_id == ws && failed(p.state) {
                *failures.entry(p.task_id).or_default() += 1;
            }
        }
        for e in st.inbox.rows.values() {
            let (true, Some(key)) = (&e.workspace_id == ws && failed(e.state), &e.object_key)
            else {
                continue;
            };
            for ((i, ext, _), task) in &st.mappings {
                if *i == e.integration_id && ext == key {
                    *failures.entry(*task).or_default() += 1;
                }
            }
        }
        let mut rows: Vec<ListedTask> = st
            .tasks
            .values()
            .filter(|t| &t.workspace_id == ws && ordonis_core::task_query::matches_fields(q, t))
            .filter(|t| {
                q.integration
                    .is_none_or(|i| t.external.iter().any(|e| e.integration_id == i))
            })
            .map(|t| ListedTask {
                sync_state: SyncState::derive(
                    SyncState::of_task(t),
                    failures.get(&t.id).copied().unwrap_or(0),
                    conflicts.get(&t.id).copied().unwrap_or_default(),
                ),
                task: t.clone(),
            })
            .filter(|r| q.sync_state.is_none_or(|s| r.sync_state == s))
            .collect();
        drop(st);
        match q.sort {
            TaskSort::Updated => {
                if let Some(c) = after {
                    let key = (c.updated_at()?, c.id());
                    rows.retain(|r| (r.task.updated_at, r.task.id) < key);
                }
                rows.sort_by(|a, b| {
                    (b.task.updated_at, b.task.id).cmp(&(a.task.updated_at, a.task.id))
                });
            }
            TaskSort::Id => {
                if let Some(c) = after {
                    rows.retain(|r| r.task.id > c.id());
                }
                rows.sort_by_key(|r| r.task.id);
            }
        }
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|r| q.cursor_after(r.task.updated_at, r.task.id))
        } else {
            None
        };
        Ok(ordonis_core::TaskList {
            tasks: rows,
            next_cursor,
        })
    }

    async fn task_statuses(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Vec<ordonis_core::Status>, StoreError> {
        let set: BTreeSet<(ordonis_core::StatusCategory, String)> = self
            .lock()
            .tasks
            .values()
            .filter(|t| &t.workspace_id == ws)
            .map(|t| ordonis_core::task_query::status_key(&t.fields.status))
            .collect();
        Ok(set
            .into_iter()
            .take(ordonis_core::task_query::MAX_STATUS_CHOICES)
            .map(|(c, n)| ordonis_core::Status::new(c, n))
            .collect())
    }

    async fn task_assignees(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Vec<ordonis_core::Assignee>, StoreError> {
        let mut by_id: BTreeMap<String, ordonis_core::Assignee> = BTreeMap::new();
        for t in self.lock().tasks.values() {
            if &t.workspace_id == ws
                && let Some(a) = &t.fields.assignee
            {
                by_id
                    .entry(a.account_id.clone())
                    .or_insert_with(|| a.clone());
            }
        }
        Ok(by_id
            .into_values()
            .take(ordonis_core::task_query::MAX_ASSIGNEE_CHOICES)
            .collect())
    }

    async fn task_comments(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<ordonis_core::TaskComment>, StoreError> {
        let mut v: Vec<ordonis_core::TaskComment> = self
            .lock()
            .comments
            .values()
            .filter(|c| &c.workspace_id == ws && c.task_id == task)
            .cloned()
            .collect();
        v.sort_by_key(|c| (c.created_at, c.id));
        Ok(v)
    }

    async fn comment(
        &self,
        id: ordonis_core::CommentId,
    ) -> Result<Option<ordonis_core::TaskComment>, StoreError> {
        Ok(self.lock().comments.get(&id).cloned())
    }

    async fn task_sessions(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<ordonis_core::AgentSession>, StoreError> {
        let mut v: Vec<ordonis_core::AgentSession> = self
            .lock()
            .sessions
            .values()
            .filter(|s| &s.workspace_id == ws && s.task_id == task)
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.created_at, s.id));
        Ok(v)
    }

    async fn session(
        &self,
        id: ordonis_core::SessionId,
    ) -> Result<Option<ordonis_core::AgentSession>, StoreError> {
        Ok(self.lock().sessions.get(&id).cloned())
    }

    async fn idle_sessions(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ordonis_core::AgentSession>, StoreError> {
        let mut v: Vec<ordonis_core::AgentSession> = self
            .lock()
            .sessions
            .values()
            .filter(|s| rules::session_idle(s, before))
            .cloned()
            .collect();
        v.sort_by_key(|s| (s.last_activity_at, s.id));
        v.truncate(limit);
        Ok(v)
    }

    async fn find_mapping(
        &self,
        integration: IntegrationId,
        key: &ObjectKey,
    ) -> Result<Option<TaskId>, StoreError> {
        let k = (
            integration,
            key.external_id.clone(),
            key.object_type.clone(),
        );
        Ok(self.lock().mappings.get(&k).copied())
    }

    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
        rules::validate_unit(&uow)?;
        let mut st = self.lock();
        commit_unit(&mut st, uow)
    }

    async fn commit_batch(
        &self,
        units: Vec<UnitOfWork>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        rules::validate_batch(&units)?;
        // One lock for the batch: its entries are contiguous in the log, as in the SQL stores.
        let mut st = self.lock();
        Ok(units
            .into_iter()
            .map(|uow| {
                rules::validate_unit(&uow)?;
                commit_unit(&mut st, uow)
            })
            .collect())
    }

    async fn schedule_sync(&self, schedule: &SyncSchedule) -> Result<(), StoreError> {
        let mut st = self.lock();
        if !st.integrations.contains_key(&schedule.integration_id) {
            return Err(StoreError::NotFound(format!(
                "integration {}",
                schedule.integration_id
            )));
        }
        st.sync.schedule(schedule);
        Ok(())
    }

    async fn claim_sync(&self, req: &ClaimRequest) -> Result<Vec<SyncJob>, StoreError> {
        let mut st = self.lock();
        let at = now();
        let paused = st.paused(at);
        Ok(st.sync.claim(req, &paused, at))
    }

    async fn save_sync(&self, lease: &SyncLease, save: &SyncSave) -> Result<SyncLease, StoreError> {
        self.lock().sync.save(lease, save)
    }

    async fn sync_job(&self, integration: IntegrationId) -> Result<Option<SyncJob>, StoreError> {
        Ok(self.lock().sync.get(integration))
    }

    async fn add_sync_repaired(
        &self,
        integration: IntegrationId,
        run: u64,
        fields: u64,
    ) -> Result<(), StoreError> {
        self.lock().sync.add_repaired(integration, run, fields);
        Ok(())
    }

    async fn people(&self, ws: &WorkspaceId) -> Result<Vec<ordonis_core::Person>, StoreError> {
        Ok(self.lock().people.people(ws))
    }

    async fn person(
        &self,
        ws: &WorkspaceId,
        principal: &str,
    ) -> Result<Option<ordonis_core::Person>, StoreError> {
        Ok(self.lock().people.person(ws, principal))
    }

    async fn put_person(&self, person: &ordonis_core::Person) -> Result<(), StoreError> {
        self.lock().people.put(person)
    }

    async fn person_with_account(
        &self,
        ws: &WorkspaceId,
        account: &ordonis_core::AccountRef,
    ) -> Result<Option<ordonis_core::Person>, StoreError> {
        Ok(self.lock().people.with_account(ws, account))
    }

    async fn people_with_email(
        &self,
        ws: &WorkspaceId,
        email: &str,
    ) -> Result<Vec<ordonis_core::Person>, StoreError> {
        Ok(self.lock().people.with_email(ws, email))
    }

    async fn record_accounts(
        &self,
        ws: &WorkspaceId,
        accounts: &[ordonis_core::SeenAccount],
    ) -> Result<(), StoreError> {
        self.lock().people.record(ws, accounts);
        Ok(())
    }

    async fn seen_accounts(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Vec<ordonis_core::SeenAccount>, StoreError> {
        Ok(self.lock().people.seen(ws))
    }

    async fn seen_account(
        &self,
        ws: &WorkspaceId,
        account: &ordonis_core::AccountRef,
    ) -> Result<Option<ordonis_core::SeenAccount>, StoreError> {
        Ok(self.lock().people.seen_one(ws, account))
    }

    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().key_check.clone())
    }

    async fn init_key_check(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .lock()
            .key_check
            .get_or_insert_with(|| sealed.to_vec())
            .clone())
    }

    async fn put_console_session(
        &self,
        session: &ordonis_core::ConsoleSession,
        now: OffsetDateTime,
        max_live: u64,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let live = &mut st.console_sessions;
        live.retain(|_, s| s.expires_at > now);
        live.insert(session.id_digest, session.clone());
        let cap = usize::try_from(max_live).unwrap_or(usize::MAX);
        if live.len() > cap {
            let mut by_expiry: Vec<_> =
                live.values().map(|s| (s.expires_at, s.id_digest)).collect();
            by_expiry.sort();
            for (_, id) in by_expiry.into_iter().take(live.len() - cap) {
                live.remove(&id);
            }
        }
        Ok(())
    }

    async fn console_session(
        &self,
        id_digest: &[u8; 32],
    ) -> Result<Option<ordonis_core::ConsoleSession>, StoreError> {
        Ok(self.lock().console_sessions.get(id_digest).cloned())
    }

    async fn delete_console_session(&self, id_digest: &[u8; 32]) -> Result<(), StoreError> {
        self.lock().console_sessions.remove(id_digest);
        Ok(())
    }
}

/// Commits one unit into the state: everything is checked first, so a refusal writes nothing.
fn commit_unit(st: &mut State, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
    let at = rules::now_micros();
    // Check everything first, so a refusal writes nothing.
    st.check_completion(&uow.workspace_id, &uow.completion)?;
    if let Some(w) = &uow.task {
        match (st.tasks.get(&w.task.id), w.expected_revision) {
            (None, None) => {}
            (Some(cur), Some(rev))
                if cur.revision == rev && cur.workspace_id == uow.workspace_id => {}
            (Some(_), None) => {
                return Err(StoreError::Conflict(format!(
                    "task {} exists already",
                    w.task.id
                )));
            }
            _ => {
                return Err(StoreError::Conflict(format!(
                    "task {} is no longer at revision {}",
                    w.task.id,
                    w.expected_revision.unwrap_or_default()
                )));
            }
        }
    }
    for w in &uow.comments {
        let fresh = match (st.comments.get(&w.comment.id), w.expected_revision) {
            (None, None) => true,
            (Some(cur), Some(rev)) => cur.revision == rev && cur.workspace_id == uow.workspace_id,
            _ => false,
        };
        // As the SQL stores' unique (task, integration, external id): one row per provider
        // comment.
        let taken = w.comment.external_id.is_some()
            && st.comments.values().any(|c| {
                c.id != w.comment.id
                    && c.task_id == w.comment.task_id
                    && c.integration_id == w.comment.integration_id
                    && c.external_id == w.comment.external_id
            });
        if !fresh || taken {
            return Err(rules::stale_comment(w));
        }
    }
    for w in &uow.sessions {
        let fresh = match (st.sessions.get(&w.session.id), w.expected_revision) {
            (None, None) => true,
            (Some(cur), Some(rev)) => cur.revision == rev && cur.workspace_id == uow.workspace_id,
            _ => false,
        };
        if !fresh {
            return Err(rules::stale_session(w));
        }
    }
    if let Some((id, _)) = &uow.integration
        && st
            .integrations
            .get(id)
            .is_none_or(|i| i.workspace_id != uow.workspace_id)
    {
        return Err(StoreError::NotFound(format!("integration {id}")));
    }
    let mapping = uow.mapping.as_ref().map(|(r, t)| {
        (
            (
                r.integration_id,
                r.key.external_id.clone(),
                r.key.object_type.clone(),
            ),
            *t,
        )
    });
    // The unmapping goes first (as in the SQL stores): a unit may unlink an object from one
    // task and link it to another.
    let unmapping = uow.unmapping.as_ref().and_then(|(r, task)| {
        let key = (
            r.integration_id,
            r.key.external_id.clone(),
            r.key.object_type.clone(),
        );
        // Only the named task's mapping, and only in the unit's workspace.
        let ours = st.mappings.get(&key) == Some(task)
            && st
                .tasks
                .get(task)
                .is_none_or(|t| t.workspace_id == uow.workspace_id);
        ours.then_some(key)
    });
    if let Some((key, task)) = &mapping
        && unmapping.as_ref() != Some(key)
        && st.mappings.get(key).is_some_and(|t| t != task)
    {
        return Err(StoreError::Conflict(format!(
            "{} {} is mapped to another task",
            key.2, key.1
        )));
    }

    // Apply.
    if let Some((id, update)) = &uow.integration
        && let Some(rec) = st.integrations.get_mut(id)
    {
        apply_update(rec, update);
    }
    if let Some(w) = uow.task {
        st.tasks.insert(w.task.id, w.task);
    }
    for w in uow.comments {
        st.comments.insert(w.comment.id, w.comment);
    }
    for w in uow.sessions {
        st.sessions.insert(w.session.id, w.session);
    }
    if let Some(key) = unmapping {
        st.mappings.remove(&key);
    }
    if let Some((key, task)) = mapping {
        st.mappings.entry(key).or_insert(task);
    }
    let mut outbox = None;
    if let Some((task_id, integration_id)) = uow.enqueue_push {
        let pending = st
            .outbox
            .rows
            .values()
            .find(|j| {
                j.task_id == task_id
                    && j.integration_id == integration_id
                    && j.state == JobState::Pending
            })
            .map(|j| j.id);
        let id = pending.unwrap_or_else(|| {
            let id = OutboxId::new();
            st.outbox.rows.insert(
                id.0,
                OutboxJob {
                    id,
                    workspace_id: uow.workspace_id.clone(),
                    task_id,
                    integration_id,
                    state: JobState::Pending,
                    attempts: 0,
                    next_attempt_at: at,
                    last_error: None,
                    error_kind: None,
                    lease: None,
                    created_at: at,
                },
            );
            id
        });
        outbox = Some(id);
    }
    let log = st.ledger.entry(uow.workspace_id.clone()).or_default();
    let mut entries = Vec::with_capacity(uow.ledger.len());
    for draft in uow.ledger {
        let entry = LedgerEntry::seal(draft, log.len() as u64, at);
        log.push(entry.clone());
        entries.push(entry);
    }
    st.complete(uow.completion);
    Ok(CommitReceipt { entries, outbox })
}

#[async_trait]
impl Ledger for MemoryStore {
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError> {
        Ok(self.lock().ledger.get(ws).map_or(0, |l| l.len() as u64))
    }

    async fn ledger_entries(
        &self,
        ws: &WorkspaceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let st = self.lock();
        let Some(log) = st.ledger.get(ws) else {
            return Ok(Vec::new());
        };
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(log.len());
        Ok(log[from..].iter().take(limit).cloned().collect())
    }

    async fn task_ledger_page(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let st = self.lock();
        Ok(st.ledger.get(ws).map_or_else(Vec::new, |l| {
            l.iter()
                .filter(|e| e.record.task_id == task && after.is_none_or(|a| e.idx > a))
                .take(limit)
                .cloned()
                .collect()
        }))
    }

    async fn task_ledger(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let st = self.lock();
        Ok(st
            .ledger
            .get(ws)
            .map(|l| {
                l.iter()
                    .filter(|e| e.record.task_id == task)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn save_checkpoint(
        &self,
        ws: &WorkspaceId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let list = st.checkpoints.entry(ws.clone()).or_default();
        if let Some(existing) = list.iter().find(|c| c.size == checkpoint.size) {
            if existing.note != checkpoint.note {
                return Err(StoreError::Conflict(format!(
                    "a different checkpoint of size {} is stored already",
                    checkpoint.size
                )));
            }
            return Ok(());
        }
        list.push(checkpoint.clone());
        Ok(())
    }

    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        Ok(self
            .lock()
            .checkpoints
            .get(ws)
            .and_then(|l| l.iter().max_by_key(|c| c.size).cloned()))
    }

    async fn tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        let st = self.lock();
        let Some(level) = st.tile_hashes.get(&(ws.clone(), level)) else {
            return Ok(Vec::new());
        };
        let end = from.saturating_add(limit as u64);
        Ok(level.range(from..end).map(|(i, h)| (*i, *h)).collect())
    }

    async fn save_tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        hashes: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let stored = st.tile_hashes.entry((ws.clone(), level)).or_default();
        for (i, h) in (from..).zip(hashes) {
            stored.entry(i).or_insert(*h);
        }
        Ok(())
    }

    async fn add_cosignature(
        &self,
        ws: &WorkspaceId,
        size: u64,
        witness: &str,
        line: &str,
    ) -> Result<(), StoreError> {
        self.lock()
            .cosignatures
            .entry((ws.clone(), size))
            .or_default()
            .entry(witness.to_owned())
            .or_insert_with(|| line.to_owned());
        Ok(())
    }

    async fn cosignatures(&self, ws: &WorkspaceId, size: u64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .cosignatures
            .get(&(ws.clone(), size))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }
}
