//! `MemoryStore`: a complete in-memory [`Store`] + [`Ledger`], with the same semantics as the
//! SQL stores (the store suite proves it). For tests, and for hosts' own tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use ordonis_core::store::{
    ClaimRequest, CommitReceipt, Completion, EventFilter, Inbox, InboxEvent, InsertOutcome,
    IntegrationRecord, Integrations, JobState, Lease, NewInboxEvent, Outbox, OutboxJob, Retry,
    Store, Tasks, UnitOfWork,
};
use ordonis_core::{
    EventId, IntegrationId, Ledger, LedgerEntry, OutboxId, SealedSecrets, StoreError,
    StoredCheckpoint, Task, TaskId, WorkspaceId,
};
use time::OffsetDateTime;

type MappingKey = (IntegrationId, String, String, String);

#[derive(Debug, Default)]
struct State {
    integrations: BTreeMap<IntegrationId, IntegrationRecord>,
    events: BTreeMap<EventId, InboxEvent>,
    dedupe: HashMap<(IntegrationId, String), EventId>,
    outbox: BTreeMap<OutboxId, OutboxJob>,
    tasks: HashMap<TaskId, Task>,
    mappings: HashMap<MappingKey, TaskId>,
    ledger: HashMap<WorkspaceId, Vec<LedgerEntry>>,
    checkpoints: HashMap<WorkspaceId, Vec<StoredCheckpoint>>,
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

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn lease_live(lease: Option<&Lease>, at: OffsetDateTime) -> bool {
    lease.is_some_and(|l| l.expires_at > at)
}

fn claimable(
    state: JobState,
    next: OffsetDateTime,
    lease: Option<&Lease>,
    at: OffsetDateTime,
) -> bool {
    match state {
        JobState::Pending => next <= at,
        JobState::Processing => !lease_live(lease, at),
        _ => false,
    }
}

fn count_states(states: impl Iterator<Item = JobState>) -> Vec<(JobState, u64)> {
    let mut counts: BTreeMap<&'static str, (JobState, u64)> = BTreeMap::new();
    for s in states {
        counts.entry(s.as_str()).or_insert((s, 0)).1 += 1;
    }
    counts.into_values().collect()
}

fn paused(st: &State, integration: IntegrationId, at: OffsetDateTime) -> bool {
    st.integrations
        .get(&integration)
        .and_then(|i| i.paused_until)
        .is_some_and(|p| p > at)
}

fn check_lease(state: JobState, current: Option<&Lease>, lease: &Lease) -> Result<(), StoreError> {
    match current {
        Some(c)
            if state == JobState::Processing
                && c.owner == lease.owner
                && c.attempt == lease.attempt =>
        {
            Ok(())
        }
        _ => Err(StoreError::LeaseLost(format!(
            "row {} is no longer leased to {} (attempt {})",
            lease.row, lease.owner, lease.attempt
        ))),
    }
}

fn apply_retry(
    state: &mut JobState,
    attempts: &mut u32,
    next: &mut OffsetDateTime,
    lease: &mut Option<Lease>,
    last_error: &mut Option<String>,
    error: &str,
    retry: Retry,
) {
    *lease = None;
    *last_error = Some(error.to_owned());
    match retry {
        Retry::At(t) => {
            *state = JobState::Pending;
            *next = t;
        }
        Retry::Deferred(t) => {
            *state = JobState::Pending;
            *next = t;
            *attempts = attempts.saturating_sub(1);
        }
        Retry::Never(s) => *state = s,
    }
}

#[async_trait]
impl Integrations for MemoryStore {
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
        Ok(self
            .lock()
            .integrations
            .values()
            .filter(|i| &i.workspace_id == ws)
            .cloned()
            .collect())
    }

    async fn update_integration(
        &self,
        id: IntegrationId,
        config: &serde_json::Value,
        secrets: &SealedSecrets,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let rec = st
            .integrations
            .get_mut(&id)
            .ok_or_else(|| StoreError::NotFound(format!("integration {id}")))?;
        rec.config = config.clone();
        rec.secrets = secrets.clone();
        Ok(())
    }

    async fn set_paused_until(
        &self,
        id: IntegrationId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        let rec = st
            .integrations
            .get_mut(&id)
            .ok_or_else(|| StoreError::NotFound(format!("integration {id}")))?;
        rec.paused_until = until;
        Ok(())
    }
}

#[async_trait]
impl Inbox for MemoryStore {
    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
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
            st.events.insert(
                e.id,
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
                    lease: None,
                },
            );
            out.push(InsertOutcome::Inserted(e.id));
        }
        Ok(out)
    }

    async fn claim_events(&self, req: &ClaimRequest) -> Result<Vec<InboxEvent>, StoreError> {
        let mut st = self.lock();
        let at = now();
        let mut busy: HashSet<(IntegrationId, String)> = st
            .events
            .values()
            .filter(|e| e.state == JobState::Processing && lease_live(e.lease.as_ref(), at))
            .filter_map(|e| Some((e.integration_id, e.object_key.clone()?)))
            .collect();
        // Oldest first: ids are UUID v7 and received in order.
        let mut candidates: Vec<EventId> = Vec::new();
        for e in st.events.values() {
            if candidates.len() >= req.limit {
                break;
            }
            if !claimable(e.state, e.next_attempt_at, e.lease.as_ref(), at)
                || paused(&st, e.integration_id, at)
            {
                continue;
            }
            if let Some(obj) = &e.object_key
                && !busy.insert((e.integration_id, obj.clone()))
            {
                continue;
            }
            candidates.push(e.id);
        }
        let mut out = Vec::with_capacity(candidates.len());
        for id in candidates {
            if let Some(e) = st.events.get_mut(&id) {
                e.state = JobState::Processing;
                e.attempts += 1;
                e.lease = Some(Lease {
                    row: id.0,
                    owner: req.worker.clone(),
                    attempt: e.attempts,
                    expires_at: at + req.lease,
                });
                out.push(e.clone());
            }
        }
        Ok(out)
    }

    async fn fail_event(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError> {
        let mut st = self.lock();
        let e = st
            .events
            .get_mut(&EventId(lease.row))
            .ok_or_else(|| StoreError::NotFound(format!("event {}", lease.row)))?;
        check_lease(e.state, e.lease.as_ref(), lease)?;
        apply_retry(
            &mut e.state,
            &mut e.attempts,
            &mut e.next_attempt_at,
            &mut e.lease,
            &mut e.last_error,
            error,
            retry,
        );
        Ok(())
    }

    async fn event(&self, ws: &WorkspaceId, id: EventId) -> Result<Option<InboxEvent>, StoreError> {
        Ok(self
            .lock()
            .events
            .get(&id)
            .filter(|e| &e.workspace_id == ws)
            .cloned())
    }

    async fn events(
        &self,
        ws: &WorkspaceId,
        filter: &EventFilter,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        Ok(self
            .lock()
            .events
            .values()
            .rev()
            .filter(|e| &e.workspace_id == ws)
            .filter(|e| filter.integration_id.is_none_or(|i| i == e.integration_id))
            .filter(|e| filter.state.is_none_or(|s| s == e.state))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn replay_event(&self, ws: &WorkspaceId, id: EventId) -> Result<(), StoreError> {
        let mut st = self.lock();
        let e = st
            .events
            .get_mut(&id)
            .filter(|e| &e.workspace_id == ws)
            .ok_or_else(|| StoreError::NotFound(format!("event {id}")))?;
        if !matches!(e.state, JobState::Failed | JobState::Dead) {
            return Err(StoreError::Conflict(format!(
                "event {id} is {}; only failed or dead events are replayed",
                e.state.as_str()
            )));
        }
        e.state = JobState::Pending;
        e.attempts = 0;
        e.next_attempt_at = now();
        Ok(())
    }

    async fn event_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        Ok(count_states(self.lock().events.values().map(|e| e.state)))
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn claim_pushes(&self, req: &ClaimRequest) -> Result<Vec<OutboxJob>, StoreError> {
        let mut st = self.lock();
        let at = now();
        let mut busy: HashSet<TaskId> = st
            .outbox
            .values()
            .filter(|j| j.state == JobState::Processing && lease_live(j.lease.as_ref(), at))
            .map(|j| j.task_id)
            .collect();
        let mut candidates = Vec::new();
        for j in st.outbox.values() {
            if candidates.len() >= req.limit {
                break;
            }
            if claimable(j.state, j.next_attempt_at, j.lease.as_ref(), at)
                && !paused(&st, j.integration_id, at)
                && busy.insert(j.task_id)
            {
                candidates.push(j.id);
            }
        }
        let mut out = Vec::new();
        for id in candidates {
            if let Some(j) = st.outbox.get_mut(&id) {
                j.state = JobState::Processing;
                j.attempts += 1;
                j.lease = Some(Lease {
                    row: id.0,
                    owner: req.worker.clone(),
                    attempt: j.attempts,
                    expires_at: at + req.lease,
                });
                out.push(j.clone());
            }
        }
        Ok(out)
    }

    async fn fail_push(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError> {
        let mut st = self.lock();
        let j = st
            .outbox
            .get_mut(&OutboxId(lease.row))
            .ok_or_else(|| StoreError::NotFound(format!("push {}", lease.row)))?;
        check_lease(j.state, j.lease.as_ref(), lease)?;
        apply_retry(
            &mut j.state,
            &mut j.attempts,
            &mut j.next_attempt_at,
            &mut j.lease,
            &mut j.last_error,
            error,
            retry,
        );
        Ok(())
    }

    async fn pushes(&self, ws: &WorkspaceId) -> Result<Vec<OutboxJob>, StoreError> {
        Ok(self
            .lock()
            .outbox
            .values()
            .rev()
            .filter(|j| &j.workspace_id == ws)
            .cloned()
            .collect())
    }

    async fn replay_push(&self, ws: &WorkspaceId, id: OutboxId) -> Result<(), StoreError> {
        let mut st = self.lock();
        let j = st
            .outbox
            .get_mut(&id)
            .filter(|j| &j.workspace_id == ws)
            .ok_or_else(|| StoreError::NotFound(format!("push {id}")))?;
        if !matches!(j.state, JobState::Failed | JobState::Dead) {
            return Err(StoreError::Conflict(format!(
                "push {id} is not failed or dead"
            )));
        }
        j.state = JobState::Pending;
        j.attempts = 0;
        j.next_attempt_at = now();
        Ok(())
    }

    async fn push_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        Ok(count_states(self.lock().outbox.values().map(|j| j.state)))
    }
}

#[async_trait]
impl Tasks for MemoryStore {
    async fn task(&self, ws: &WorkspaceId, id: TaskId) -> Result<Option<Task>, StoreError> {
        Ok(self
            .lock()
            .tasks
            .get(&id)
            .filter(|t| &t.workspace_id == ws)
            .cloned())
    }

    async fn tasks(&self, ws: &WorkspaceId) -> Result<Vec<Task>, StoreError> {
        let mut v: Vec<Task> = self
            .lock()
            .tasks
            .values()
            .filter(|t| &t.workspace_id == ws)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.id);
        Ok(v)
    }

    async fn find_mapping(
        &self,
        integration: IntegrationId,
        external_id: &str,
        object_type: &str,
    ) -> Result<Option<TaskId>, StoreError> {
        let st = self.lock();
        Ok(st
            .mappings
            .iter()
            .find(|((i, _, e, o), _)| *i == integration && e == external_id && o == object_type)
            .map(|(_, t)| *t))
    }
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
                    "a different checkpoint of size {} exists",
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
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
        let mut st = self.lock();
        let at = now();
        // Validate everything first, so a refusal writes nothing.
        match &uow.completion {
            Completion::None => {}
            Completion::Inbox { lease, .. } => {
                let e = st
                    .events
                    .get(&EventId(lease.row))
                    .ok_or_else(|| StoreError::NotFound(format!("event {}", lease.row)))?;
                check_lease(e.state, e.lease.as_ref(), lease)?;
                if e.workspace_id != uow.workspace_id {
                    return Err(StoreError::NotFound(format!("event {}", lease.row)));
                }
            }
            Completion::Outbox { lease } => {
                let j = st
                    .outbox
                    .get(&OutboxId(lease.row))
                    .ok_or_else(|| StoreError::NotFound(format!("push {}", lease.row)))?;
                check_lease(j.state, j.lease.as_ref(), lease)?;
            }
        }
        if let Some(w) = &uow.task {
            if w.task.workspace_id != uow.workspace_id {
                return Err(StoreError::Invalid(ordonis_core::InvalidInput::new(
                    "task",
                    "belongs to another workspace",
                )));
            }
            match (st.tasks.get(&w.task.id), w.expected_revision) {
                (None, None) => {}
                (Some(cur), Some(rev))
                    if cur.revision == rev && cur.workspace_id == uow.workspace_id => {}
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "task {} changed concurrently",
                        w.task.id
                    )));
                }
            }
        }
        let mapping_key = uow.mapping.as_ref().map(|(r, t)| {
            (
                (
                    r.integration_id,
                    r.provider.0.clone(),
                    r.external_id.clone(),
                    r.object_type.clone(),
                ),
                *t,
            )
        });
        if let Some((key, task)) = &mapping_key
            && st.mappings.get(key).is_some_and(|t| t != task)
        {
            return Err(StoreError::Conflict(
                "external object already mapped".to_owned(),
            ));
        }

        // Apply.
        if let Some(w) = uow.task {
            st.tasks.insert(w.task.id, w.task);
        }
        if let Some((key, task)) = mapping_key {
            st.mappings.insert(key, task);
        }
        let log = st.ledger.entry(uow.workspace_id.clone()).or_default();
        let mut entries = Vec::with_capacity(uow.ledger.len());
        for draft in uow.ledger {
            let entry = LedgerEntry::seal(draft, log.len() as u64, at);
            log.push(entry.clone());
            entries.push(entry);
        }
        let mut outbox = None;
        if let Some((task_id, integration_id)) = uow.enqueue_push {
            let pending = st
                .outbox
                .values()
                .find(|j| j.task_id == task_id && j.state == JobState::Pending)
                .map(|j| j.id);
            let id = match pending {
                Some(id) => id,
                None => {
                    let id = OutboxId::new();
                    st.outbox.insert(
                        id,
                        OutboxJob {
                            id,
                            workspace_id: uow.workspace_id.clone(),
                            task_id,
                            integration_id,
                            state: JobState::Pending,
                            attempts: 0,
                            next_attempt_at: at,
                            last_error: None,
                            lease: None,
                        },
                    );
                    id
                }
            };
            outbox = Some(id);
        }
        match uow.completion {
            Completion::None => {}
            Completion::Inbox { lease, note } => {
                if let Some(e) = st.events.get_mut(&EventId(lease.row)) {
                    e.state = JobState::Done;
                    e.lease = None;
                    e.last_error = note;
                }
            }
            Completion::Outbox { lease } => {
                if let Some(j) = st.outbox.get_mut(&OutboxId(lease.row)) {
                    j.state = JobState::Done;
                    j.lease = None;
                }
            }
        }
        Ok(CommitReceipt { entries, outbox })
    }
}
