//! Processing one claimed inbox event: parse, fetch when needed, apply by field policy, and
//! commit the task, mapping, ledger entries and the event's completion together.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use time::OffsetDateTime;

use super::comment_sync::{Conversation, InboundComments, apply_inbound_comments};
use super::repair::ListedEvent;
use super::{Engine, Loaded};
use crate::actor::Actor;
use crate::error::{Error, ProviderError, StoreError};
use crate::field_merge::{Decision, apply_remote};
use crate::ids::{EventId, IntegrationId, WorkspaceId};
use crate::ledger::{Cause, CauseKind, Evidence, LedgerDraft, Op, Outcome};
use crate::listing::ListMode;
use crate::model::ProviderKind;
use crate::model::{ExternalRef, ObjectKey};
use crate::policy::FieldPolicy;
use crate::provider::{ChangeHint, HintKind, RemoteTask, WebhookRequest, ms_to_datetime};
use crate::store::{Completion, InboxEvent, Lease, StoreExt, TaskWrite, UnitOfWork};
use crate::sync_state::SourceVersion;
use crate::task::Task;

/// What the provider told us about the event's object.
enum Remote {
    /// The object's state and the provider time it is from (ms).
    State(RemoteTask, i64),
    Deleted,
    /// The object exists outside the integration's scope: why.
    OutOfScope(String),
    Ignored(String),
    /// The event is about the object's comments only.
    CommentsOnly,
}

/// Context for the ledger entries of one event.
pub(crate) struct EntryContext {
    pub(crate) actor: Actor,
    pub(crate) cause: Cause,
    pub(crate) occurred_at: Option<OffsetDateTime>,
    pub(crate) observed_at: OffsetDateTime,
}

pub(crate) fn drafts(
    task: &Task,
    decisions: &[Decision],
    ctx: &EntryContext,
    integration: Option<crate::ids::IntegrationId>,
) -> Vec<LedgerDraft> {
    decisions
        .iter()
        .map(|d| {
            let mut cause = ctx.cause.clone();
            if let Some(parent) = d.echo_of {
                if d.outcome == Outcome::Confirmed {
                    cause.kind = CauseKind::SyncEcho;
                }
                cause.parent_action = Some(parent.to_string());
            }
            LedgerDraft {
                workspace_id: task.workspace_id.clone(),
                integration_id: integration,
                task_id: task.id,
                external: task.link().cloned(),
                op: Op::Set,
                field: Some(d.field),
                before: Some(d.before.clone()),
                after: Some(d.after.clone()),
                outcome: d.outcome,
                rule: d.rule_text(),
                actor: ctx.actor.clone(),
                cause,
                occurred_at: ctx.occurred_at,
                observed_at: ctx.observed_at,
                comment: None,
                session: None,
            }
        })
        .collect()
}

fn lifecycle_draft(
    task: &Task,
    op: Op,
    ctx: &EntryContext,
    integration: crate::ids::IntegrationId,
) -> LedgerDraft {
    let rule = match op {
        Op::Create => "first seen in the provider",
        Op::Restore => "readable in the provider again: restored",
        Op::EnterScope => "back in the integration's scope: syncing again",
        Op::LeaveScope => "out of the integration's scope",
        _ => "deleted in the provider: tombstoned",
    };
    super::comments::task_draft(
        task,
        Some(integration),
        op,
        Outcome::Applied,
        rule.to_owned(),
        ctx,
    )
}

/// An event parsed and resolved against its provider (any fetch done), ready to become a
/// unit of work: everything `build_event_unit` needs, and nothing that can go stale but the
/// task and mapping it reads again on every attempt.
pub(crate) struct PreparedEvent {
    workspace_id: WorkspaceId,
    lease: Lease,
    work: EventWork,
    /// For an event a reconcile run stored: the integration and the run, whose repair count
    /// the fields this event changes are added to.
    reconcile_run: Option<(IntegrationId, u64)>,
}

enum EventWork {
    /// Complete the event with this note, writing nothing else.
    Finish(Option<String>),
    Apply(Box<Application>),
}

struct Application {
    key: ObjectKey,
    remote: Remote,
    comments: InboundComments,
    ctx: EntryContext,
    policy: FieldPolicy,
    integration: IntegrationId,
    provider_kind: ProviderKind,
    event_id: EventId,
}

impl Engine {
    /// Processes one claimed inbox event to completion (or returns the error to retry on).
    pub async fn process_event(&self, event: &InboxEvent) -> Result<(), Error> {
        let loaded = self.load(event.integration_id).await?;
        let prepared = self.prepare_event(&loaded, event).await?;
        self.commit_event(&prepared).await
    }

    /// Processes claimed inbox events together, one outcome per event, in order:
    /// - each integration is loaded once;
    /// - provider fetches run (up to `concurrency` at once) before any transaction opens;
    /// - the tasks the events map to are read in one query per integration
    ///   ([`Store::mapped_tasks`](crate::Store::mapped_tasks));
    /// - the events of a workspace are committed as one batch
    ///   ([`Store::commit_batch`](crate::Store::commit_batch)).
    ///
    /// A unit the batch refuses for a concurrent write (or whose batch failed as a whole) is
    /// recomputed and committed alone, as [`process_event`](Self::process_event) would.
    pub async fn process_events(
        &self,
        events: &[InboxEvent],
        concurrency: usize,
    ) -> Vec<Result<(), Error>> {
        let mut loaded: HashMap<IntegrationId, Arc<Loaded>> = HashMap::new();
        for e in events {
            if !loaded.contains_key(&e.integration_id)
                && let Ok(l) = self.load(e.integration_id).await
            {
                loaded.insert(e.integration_id, Arc::new(l));
            }
        }
        // Boxed futures rather than closures over references: a `map` closure borrowing the
        // batch is not general enough over lifetimes for a `Send` worker future.
        let preparing: Vec<BoxFuture<'_, Result<PreparedEvent, Error>>> = events
            .iter()
            .map(|e| self.prepare_with(&loaded, e).boxed())
            .collect();
        let prepared: Vec<Result<PreparedEvent, Error>> = futures::stream::iter(preparing)
            .buffered(concurrency.max(1))
            .collect()
            .await;
        let mut out: Vec<Option<Result<(), Error>>> = Vec::with_capacity(events.len());
        let mut ready: Vec<Option<PreparedEvent>> = Vec::with_capacity(events.len());
        for p in prepared {
            match p {
                Ok(p) => {
                    out.push(None);
                    ready.push(Some(p));
                }
                Err(e) => {
                    out.push(Some(Err(e)));
                    ready.push(None);
                }
            }
        }
        let built = self.build_event_units(&ready).await;
        let mut by_workspace: HashMap<WorkspaceId, Vec<(usize, UnitOfWork)>> = HashMap::new();
        for (i, b) in built.into_iter().enumerate() {
            match b {
                None => {}
                Some(Ok(uow)) => by_workspace
                    .entry(uow.workspace_id.clone())
                    .or_default()
                    .push((i, uow)),
                Some(Err(e)) => out[i] = Some(Err(e)),
            }
        }
        // Committed alone: units refused for a concurrent write, or whose batch failed.
        let mut again: Vec<usize> = Vec::new();
        for (_, batch) in by_workspace {
            let (idx, units): (Vec<usize>, Vec<UnitOfWork>) = batch.into_iter().unzip();
            match self.inner.store.commit_batch(units).await {
                Ok(results) => {
                    for (i, r) in idx.into_iter().zip(results) {
                        match r {
                            Ok(receipt) => {
                                if let Some(Some(p)) = ready.get(i) {
                                    let drafts: Vec<_> =
                                        receipt.entries.into_iter().map(|e| e.record).collect();
                                    self.count_repairs(p, &drafts).await;
                                }
                                out[i] = Some(Ok(()));
                            }
                            Err(StoreError::Conflict(_)) => again.push(i),
                            Err(e) => out[i] = Some(Err(e.into())),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "batch commit failed: committing its units alone");
                    again.extend(idx);
                }
            }
        }
        again.sort_unstable();
        for i in again {
            if let Some(Some(p)) = ready.get(i) {
                out[i] = Some(self.commit_event(p).await);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::NotFound("event outcome".to_owned()))))
            .collect()
    }

    /// The units of a batch's prepared events (`None` where preparing failed), over the
    /// tasks read with one [`mapped_tasks`](crate::Store::mapped_tasks) call per workspace
    /// and integration.
    async fn build_event_units(
        &self,
        ready: &[Option<PreparedEvent>],
    ) -> Vec<Option<Result<UnitOfWork, Error>>> {
        let mut groups: HashMap<(WorkspaceId, IntegrationId), Vec<(usize, ObjectKey)>> =
            HashMap::new();
        for (i, p) in ready.iter().enumerate() {
            if let Some(p) = p
                && let EventWork::Apply(a) = &p.work
            {
                groups
                    .entry((p.workspace_id.clone(), a.integration))
                    .or_default()
                    .push((i, a.key.clone()));
            }
        }
        let mut existing: Vec<Option<Task>> = vec![None; ready.len()];
        let mut failed: HashMap<usize, StoreError> = HashMap::new();
        for ((ws, integration), members) in groups {
            let (idx, keys): (Vec<usize>, Vec<ObjectKey>) = members.into_iter().unzip();
            match self.inner.store.mapped_tasks(&ws, integration, &keys).await {
                Ok(tasks) => {
                    for (i, t) in idx.into_iter().zip(tasks) {
                        existing[i] = t;
                    }
                }
                Err(e) => failed.extend(idx.into_iter().map(|i| (i, e.clone()))),
            }
        }
        let mut out = Vec::with_capacity(ready.len());
        for (i, (p, task)) in ready.iter().zip(existing).enumerate() {
            out.push(match (p, failed.remove(&i)) {
                (None, _) => None,
                (Some(_), Some(e)) => Some(Err(e.into())),
                (Some(p), None) => Some(self.unit_with_comments(p, task).await),
            });
        }
        out
    }

    /// The unit of a prepared event over `existing`, with the writes of its comments (read
    /// from the store as they are now).
    async fn unit_with_comments(
        &self,
        prepared: &PreparedEvent,
        existing: Option<Task>,
    ) -> Result<UnitOfWork, Error> {
        let EventWork::Apply(a) = &prepared.work else {
            return Ok(event_unit(prepared, existing));
        };
        let existing = match existing {
            Some(t) => Some(t),
            None => self.marked_task(prepared).await?,
        };
        // Unlinked: the mapping stays, so the object's events reach the task and stop there
        // (not imported again as a new task while it is in scope).
        if let Some(t) = &existing
            && !t.external.iter().any(|l| l.integration_id == a.integration)
            && !super::create::awaits_object(t, a.integration)
        {
            let mut uow = UnitOfWork::new(prepared.workspace_id.clone());
            uow.completion = Completion::Done {
                lease: prepared.lease.clone(),
                note: Some(format!("unlinked from task {}: not synced", t.id)),
            };
            return Ok(uow);
        }
        if a.comments.is_empty() {
            return Ok(event_unit(prepared, existing));
        }
        let mut uow = event_unit(prepared, existing.clone());
        let task = uow.task.as_ref().map(|w| w.task.clone()).or(existing);
        let note = match task {
            None => Some("comments on an object with no task: not stored".to_owned()),
            Some(t) => {
                let stored = self
                    .inner
                    .store
                    .task_comments(&prepared.workspace_id, t.id)
                    .await?;
                let sessions = self
                    .inner
                    .store
                    .task_sessions(&prepared.workspace_id, t.id)
                    .await?;
                apply_inbound_comments(
                    &mut uow,
                    Conversation {
                        task: &t,
                        comments: stored,
                        sessions,
                    },
                    &a.comments,
                    &a.ctx,
                    a.integration,
                    a.provider_kind.as_str(),
                )
            }
        };
        if let (Some(n), Completion::Done { note, .. }) = (note, &mut uow.completion) {
            *note = Some(match note.take() {
                Some(before) => format!("{before}; {n}"),
                None => n,
            });
        }
        Ok(uow)
    }

    /// Prepares an event with its integration as loaded for the batch (or loads it again, to
    /// report why it could not be).
    async fn prepare_with(
        &self,
        loaded: &HashMap<IntegrationId, Arc<Loaded>>,
        event: &InboxEvent,
    ) -> Result<PreparedEvent, Error> {
        match loaded.get(&event.integration_id) {
            Some(l) => self.prepare_event(l, event).await,
            None => {
                let l = self.load(event.integration_id).await?;
                self.prepare_event(&l, event).await
            }
        }
    }

    /// Commits a prepared event, recomputing its unit while concurrent writers interfere.
    async fn commit_event(&self, prepared: &PreparedEvent) -> Result<(), Error> {
        let drafts = self
            .commit_with_retry(|| async { self.build_event_unit(prepared).await.map(Some) })
            .await?;
        self.count_repairs(prepared, &drafts).await;
        Ok(())
    }

    /// Adds the fields a committed reconcile event changed to its run's repair count. Best
    /// effort: the count is a report, and the change itself is committed already.
    async fn count_repairs(&self, prepared: &PreparedEvent, drafts: &[LedgerDraft]) {
        let Some((integration, run)) = prepared.reconcile_run else {
            return;
        };
        let n = super::repair::repaired_fields(drafts);
        if n > 0
            && let Err(e) = self
                .inner
                .store
                .add_sync_repaired(integration, run, n)
                .await
        {
            tracing::warn!(error = %e, %integration, "could not count a reconcile repair");
        }
    }

    /// Parses an event and resolves its object's state (a provider fetch when the payload
    /// carries no snapshot).
    async fn prepare_event(
        &self,
        loaded: &Loaded,
        event: &InboxEvent,
    ) -> Result<PreparedEvent, Error> {
        let Some(lease) = event.lease.clone() else {
            return Err(Error::NotFound(format!("event {} is not leased", event.id)));
        };
        let listed = match ListMode::parse(&event.auth) {
            Some(mode) => Some((mode, ListedEvent::from_body(&event.body)?)),
            None => None,
        };
        let reconcile_run = match &listed {
            Some((ListMode::Reconcile, l)) => Some((event.integration_id, l.run)),
            _ => None,
        };
        let prepared = |work| PreparedEvent {
            workspace_id: event.workspace_id.clone(),
            lease: lease.clone(),
            work,
            reconcile_run,
        };
        let hints = match listed {
            Some((mode, l)) => {
                let hints: Vec<ChangeHint> = std::iter::once(l.hint)
                    .filter(|h| Some(&h.key.external_id) == event.object_key.as_ref())
                    .collect();
                return self
                    .prepare_hints(loaded, event, hints, Some(mode))
                    .await
                    .map(prepared);
            }
            None => self.webhook_hints(loaded, event)?,
        };
        self.prepare_hints(loaded, event, hints, None)
            .await
            .map(prepared)
    }

    /// The hints of a webhook event's object.
    fn webhook_hints(&self, loaded: &Loaded, event: &InboxEvent) -> Result<Vec<ChangeHint>, Error> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in &event.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        let req = WebhookRequest {
            method: &http::Method::POST,
            headers: &headers,
            body: &event.body,
        };
        let hints: Vec<ChangeHint> = loaded
            .provider
            .parse_webhook(&loaded.ctx, &req)?
            .into_iter()
            .filter(|h| Some(&h.key.external_id) == event.object_key.as_ref())
            .collect();
        Ok(hints)
    }

    /// Resolves the hints about an event's object into the work to commit; `listed` names
    /// the run (backfill, reconcile) that stored the event, `None` for a webhook.
    async fn prepare_hints(
        &self,
        loaded: &Loaded,
        event: &InboxEvent,
        hints: Vec<ChangeHint>,
        listed: Option<ListMode>,
    ) -> Result<EventWork, Error> {
        let Some(mut key) = hints.first().map(|h| h.key.clone()) else {
            return Ok(EventWork::Finish(Some(
                "nothing for this object".to_owned(),
            )));
        };
        // An event keyed by a comment itself (no parent named): its task, from the provider.
        if hints
            .iter()
            .all(|h| matches!(h.kind, HintKind::Comment { .. }))
            && let Some(cp) = loaded.provider.comments()
            && let Some(parent) = cp.comment_parent(&loaded.ctx, &key).await?
        {
            key = parent;
        }
        let (comment_hints, field_hints): (Vec<ChangeHint>, Vec<ChangeHint>) = hints
            .iter()
            .cloned()
            .partition(|h| matches!(h.kind, HintKind::Comment { .. }));
        let remote = if field_hints.is_empty() {
            Remote::CommentsOnly
        } else {
            self.resolve_remote(loaded, &key, &field_hints, listed)
                .await?
        };
        // A backfill imports each task's conversation, and a reconcile reads the whole
        // conversation of each task it finds changed (comments whose webhooks were dropped
        // come back this way): one comment listing per task listed.
        let full = listed.is_some() && matches!(remote, Remote::State(..) | Remote::CommentsOnly);
        let mut comments = self
            .resolve_comments(loaded, &key, &comment_hints, full)
            .await?;
        // The accounts the event shows go in the people directory; the author is the
        // principal behind their account when the directory knows one.
        let mut shown: Vec<crate::provider::RemoteActor> =
            hints.iter().filter_map(|h| h.actor.clone()).collect();
        shown.extend(comments.accounts());
        if let Remote::State(state, _) = &remote
            && let Some(crate::model::FieldValue::Assignee(Some(a))) =
                state.fields.get(crate::model::Field::Assignee)
        {
            shown.push(crate::provider::RemoteActor {
                account_id: a.account_id.clone(),
                display_name: a.display_name.clone(),
                email: a.email.clone(),
                kind: crate::people::PersonKind::Human,
            });
        }
        self.note_accounts(loaded, shown).await;
        // Comment authors mapped to a principal are that principal in the ledger.
        for a in comments.accounts() {
            if !comments.authors.contains_key(&a.account_id) {
                let actor = self.account_actor(loaded, &a).await?;
                if actor.account.is_some() {
                    comments.authors.insert(a.account_id.clone(), actor);
                }
            }
        }
        let actor = match hints.iter().rev().find_map(|h| h.actor.as_ref()) {
            Some(a) => self.account_actor(loaded, a).await?,
            None => Actor::service(format!("{}-webhook", loaded.record.provider)),
        };
        // A listed change names no author (a search result, an event without a user): the
        // run that found it is the actor, so the ledger never invents one.
        let actor = match (listed, hints.iter().any(|h| h.actor.is_some())) {
            (Some(mode), false) => {
                Actor::service(format!("{}-{}", loaded.record.provider, mode.as_str()))
            }
            _ => actor,
        };
        let source_time = hints.iter().filter_map(|h| h.source_time_ms).max();
        let ctx = EntryContext {
            actor,
            cause: Cause {
                kind: match listed {
                    None => CauseKind::InboundEvent,
                    Some(ListMode::Backfill) => CauseKind::Backfill,
                    Some(ListMode::Reconcile) => CauseKind::Reconcile,
                },
                id: event.id.to_string(),
                delivery_id: event.delivery_id.clone(),
                parent_action: None,
                evidence: Some(Evidence {
                    auth: event.auth.clone(),
                    body_sha256: event.body_sha256.clone(),
                }),
            },
            occurred_at: source_time.and_then(ms_to_datetime),
            observed_at: event.received_at,
        };
        Ok(EventWork::Apply(Box::new(Application {
            key,
            remote,
            comments,
            ctx,
            policy: loaded.config.policy(),
            integration: loaded.record.id,
            provider_kind: loaded.record.provider.clone(),
            event_id: event.id,
        })))
    }

    /// Whether an object's payload snapshot may be one of our creates whose marker it does
    /// not show (a Jira webhook carries no issue properties): an unmapped object of a provider
    /// that creates, seen by a webhook or a reconcile (a backfill imports what existed
    /// before), while the integration has creates recent enough
    /// ([`IntegrationConfig::creating_until`](crate::IntegrationConfig::creating_until)).
    /// Such an object is fetched instead, and the read names the marker.
    async fn may_be_ours(
        &self,
        loaded: &Loaded,
        key: &ObjectKey,
        snapshot: &RemoteTask,
        listed: Option<ListMode>,
    ) -> Result<bool, Error> {
        let creating = loaded
            .config
            .creating_until
            .is_some_and(|t| t > time::OffsetDateTime::now_utc());
        if !creating
            || snapshot.marker.is_some()
            || loaded.provider.creates().is_none()
            || listed == Some(ListMode::Backfill)
        {
            return Ok(false);
        }
        Ok(self
            .inner
            .store
            .find_mapping(loaded.record.id, key)
            .await?
            .is_none())
    }

    /// The task a created object's marker names, when the object is not mapped yet and the
    /// task waits for it (its create through this integration has no link yet).
    async fn marked_task(&self, prepared: &PreparedEvent) -> Result<Option<Task>, Error> {
        let EventWork::Apply(a) = &prepared.work else {
            return Ok(None);
        };
        let Remote::State(state, _) = &a.remote else {
            return Ok(None);
        };
        let Some(id) = state
            .marker
            .as_deref()
            .and_then(|m| m.parse::<crate::ids::TaskId>().ok())
        else {
            return Ok(None);
        };
        let task = self
            .inner
            .store
            .workspace_task(&prepared.workspace_id, id)
            .await?;
        Ok(task.filter(|t| super::create::awaits_object(t, a.integration)))
    }

    /// The unit of work of a prepared event, over the task and mapping as they are now.
    async fn build_event_unit(&self, prepared: &PreparedEvent) -> Result<UnitOfWork, Error> {
        let existing = match &prepared.work {
            EventWork::Apply(a) => {
                let store = &self.inner.store;
                match store.find_mapping(a.integration, &a.key).await? {
                    Some(id) => store.workspace_task(&prepared.workspace_id, id).await?,
                    None => None,
                }
            }
            EventWork::Finish(_) => None,
        };
        self.unit_with_comments(prepared, existing).await
    }
}

/// The unit of work of a prepared event over `existing`, the task its object is mapped to
/// now (no store access: a batch reads all its tasks first).
fn event_unit(prepared: &PreparedEvent, existing: Option<Task>) -> UnitOfWork {
    let ws = &prepared.workspace_id;
    let mut uow = UnitOfWork::new(ws.clone());
    let a = match &prepared.work {
        EventWork::Finish(note) => {
            uow.completion = Completion::Done {
                lease: prepared.lease.clone(),
                note: note.clone(),
            };
            return uow;
        }
        EventWork::Apply(a) => a,
    };
    let (ctx, integration) = (&a.ctx, a.integration);
    let mut note = None;
    match &a.remote {
        Remote::Ignored(reason) => note = Some(format!("not applied: {reason}")),
        Remote::CommentsOnly => {}
        Remote::Deleted => match existing {
            Some(mut task) if !task.deleted => {
                let expected = task.revision;
                task.deleted = true;
                task.revision += 1;
                task.updated_at = OffsetDateTime::now_utc();
                uow.ledger
                    .push(lifecycle_draft(&task, Op::Delete, ctx, integration));
                uow.task = Some(TaskWrite {
                    task,
                    expected_revision: Some(expected),
                });
            }
            _ => note = Some("deleted object with no live task".to_owned()),
        },
        // Out of scope: a task that synced stops (recorded once); an object never synced
        // is not imported.
        Remote::OutOfScope(why) => match existing {
            Some(mut task) if !task.deleted && !task.out_of_scope => {
                let expected = task.revision;
                task.out_of_scope = true;
                task.revision += 1;
                task.updated_at = OffsetDateTime::now_utc();
                let mut draft = lifecycle_draft(&task, Op::LeaveScope, ctx, integration);
                draft.rule = format!("out of the integration's scope: {why}");
                uow.ledger.push(draft);
                uow.task = Some(TaskWrite {
                    task,
                    expected_revision: Some(expected),
                });
            }
            Some(_) => note = Some(format!("out of scope (already recorded): {why}")),
            None => note = Some(format!("not imported, out of scope: {why}")),
        },
        // Our create's object, whose webhook came before the create was adopted: it joins
        // the task it was created for.
        Remote::State(state, _)
            if existing
                .as_ref()
                .is_some_and(|t| super::create::awaits_object(t, integration)) =>
        {
            if let Some(mut task) = existing {
                let expected = task.revision;
                let decisions = super::create::adopt(
                    &mut task,
                    integration,
                    &a.provider_kind,
                    state,
                    &a.policy,
                    &a.event_id.to_string(),
                );
                uow.mapping = task.link().map(|l| (l.clone(), task.id));
                uow.ledger
                    .push(super::create::created_draft(&task, integration, ctx));
                uow.ledger
                    .extend(drafts(&task, &decisions, ctx, Some(integration)));
                if task.has_unpushed_changes() {
                    uow.enqueue_push = Some((task.id, integration));
                }
                task.revision = expected + 1;
                task.updated_at = OffsetDateTime::now_utc();
                uow.task = Some(TaskWrite {
                    task,
                    expected_revision: Some(expected),
                });
            }
        }
        Remote::State(state, at) => {
            let mut revived = false;
            let (mut task, expected) = match existing {
                // Tombstoned, and the provider has the object again (`undeleted`, or a fetch
                // that works once more): the task is back.
                Some(mut t) if t.deleted => {
                    let rev = t.revision;
                    t.deleted = false;
                    t.out_of_scope = false;
                    revived = true;
                    uow.ledger
                        .push(lifecycle_draft(&t, Op::Restore, ctx, integration));
                    (t, Some(rev))
                }
                // Back in scope (added to a project in scope again): it syncs again, from
                // the state fetched now.
                Some(mut t) if t.out_of_scope => {
                    let rev = t.revision;
                    t.out_of_scope = false;
                    revived = true;
                    uow.ledger
                        .push(lifecycle_draft(&t, Op::EnterScope, ctx, integration));
                    (t, Some(rev))
                }
                Some(t) => {
                    let rev = t.revision;
                    (t, Some(rev))
                }
                None => {
                    let mut t = Task::new(ws.clone());
                    t.external.push(ExternalRef {
                        integration_id: integration,
                        provider: a.provider_kind.clone(),
                        key: a.key.clone(),
                        url: state.url.clone(),
                    });
                    uow.mapping = Some((t.external[0].clone(), t.id));
                    uow.ledger
                        .push(lifecycle_draft(&t, Op::Create, ctx, integration));
                    (t, None)
                }
            };
            let version = SourceVersion::new(*at, a.event_id.to_string());
            let applied = apply_remote(&mut task, &state.fields, &version, &a.policy);
            if task.deleted {
                note = Some("task is a tombstone".to_owned());
            }
            if applied.push {
                uow.enqueue_push = Some((task.id, integration));
            }
            uow.ledger
                .extend(drafts(&task, &applied.decisions, ctx, Some(integration)));
            if applied.dirty || expected.is_none() || revived {
                if let (Some(url), Some(link)) = (&state.url, task.external.first_mut()) {
                    link.url.get_or_insert_with(|| url.clone());
                }
                task.revision += 1;
                if !applied.decisions.is_empty() {
                    task.updated_at = OffsetDateTime::now_utc();
                }
                uow.task = Some(TaskWrite {
                    task,
                    expected_revision: expected,
                });
            } else {
                note = Some("no change".to_owned());
            }
        }
    }
    uow.completion = Completion::Done {
        lease: prepared.lease.clone(),
        note,
    };
    uow
}

impl Engine {
    async fn resolve_remote(
        &self,
        loaded: &Loaded,
        key: &ObjectKey,
        hints: &[ChangeHint],
        listed: Option<ListMode>,
    ) -> Result<Remote, Error> {
        if hints.iter().any(|h| h.kind == HintKind::Deleted) {
            return Ok(Remote::Deleted);
        }
        if hints.iter().any(|h| h.kind == HintKind::Missing) {
            return self.resolve_missing(loaded, key).await;
        }
        if !hints.iter().any(|h| h.kind == HintKind::Changed) {
            let reasons: Vec<String> = hints
                .iter()
                .filter_map(|h| match &h.kind {
                    HintKind::Ignored { reason } => Some(reason.clone()),
                    _ => None,
                })
                .collect();
            return Ok(Remote::Ignored(reasons.join(", ")));
        }
        // A payload snapshot is as of its event; a fetched one as of its own modification time.
        if let Some((snapshot, time)) = hints
            .iter()
            .rev()
            .find_map(|h| Some((h.snapshot.clone()?, h.source_time_ms)))
        {
            let at = time.unwrap_or(snapshot.modified_at_ms);
            if !self.may_be_ours(loaded, key, &snapshot, listed).await? {
                return Ok(Remote::State(snapshot, at));
            }
            // Read it for the marker. A read that may work later (an outage, a rate limit)
            // retries the event: importing it now could duplicate our create's task. One
            // that never will (gone, forbidden) leaves the payload's state standing.
            return match loaded.provider.fetch_task(&loaded.ctx, key).await {
                Ok(state) if state.marker.is_some() => {
                    let at = state.modified_at_ms;
                    Ok(Remote::State(state, at))
                }
                Err(
                    e @ (ProviderError::Retryable { .. }
                    | ProviderError::RateLimited { .. }
                    | ProviderError::ObjectBusy { .. }
                    | ProviderError::KindLimited { .. }),
                ) => Err(e.into()),
                Ok(_) | Err(_) => Ok(Remote::State(snapshot, at)),
            };
        }
        match loaded.provider.fetch_task(&loaded.ctx, key).await {
            Ok(state) => {
                let at = state.modified_at_ms;
                Ok(Remote::State(state, at))
            }
            Err(ProviderError::NotFound(_)) => Ok(Remote::Deleted),
            Err(ProviderError::OutOfScope(why)) => Ok(Remote::OutOfScope(why)),
            Err(e) => Err(e.into()),
        }
    }

    /// An object the id sweep did not find in its scope: gone (404), outside the scope (the
    /// fetch says so, or the provider's scope check, which reads it fresh), or still inside
    /// (a lagging listing): then its state is applied like any fetch.
    async fn resolve_missing(&self, loaded: &Loaded, key: &ObjectKey) -> Result<Remote, Error> {
        let state = match loaded.provider.fetch_task(&loaded.ctx, key).await {
            Ok(state) => state,
            Err(ProviderError::NotFound(_)) => return Ok(Remote::Deleted),
            Err(ProviderError::OutOfScope(why)) => return Ok(Remote::OutOfScope(why)),
            Err(e) => return Err(e.into()),
        };
        if let Some(repair) = loaded.provider.repair()
            && let Some(why) = repair.scope_check(&loaded.ctx, key).await?
        {
            return Ok(Remote::OutOfScope(why));
        }
        let at = state.modified_at_ms;
        Ok(Remote::State(state, at))
    }
}
