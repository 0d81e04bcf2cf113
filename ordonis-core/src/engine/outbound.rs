//! Processing one claimed outbox job: mark the task's wanted values as sent, check
//! provider-owned fields for a concurrent provider change, push, and record the outcome.

use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

use super::Engine;
use super::inbound::{EntryContext, drafts};
use crate::actor::Actor;
use crate::error::Error;
use crate::field_merge::{begin_push, expect_passes, finish_push};
use crate::ledger::{Cause, CauseKind};
use crate::model::{Field, FieldPatch, ObjectKey};
use crate::policy::Owner;
use crate::store::{Completion, OutboxJob, StoreExt, TaskWrite, UnitOfWork};
use crate::sync_state::Intent;

impl Engine {
    /// Processes one claimed push to completion (or returns the error to retry on).
    pub async fn process_push(&self, job: &OutboxJob) -> Result<(), Error> {
        let Some(lease) = job.lease.clone() else {
            return Err(Error::NotFound(format!("push {} is not leased", job.id)));
        };
        let loaded = self.load(job.integration_id).await?;
        // A task created from CollabHub gets its issue first: everything else needs it.
        self.run_pending_create(job, &loaded).await?;
        // The conversation first: each comment's push is recorded on its own, and a failure
        // that is the job's (an outage, a rate limit) retries the whole job.
        self.push_comments(job, &loaded).await?;
        // Then the agent sessions' links (the session's own, its artifacts').
        self.push_session_links(job, &loaded).await?;
        let policy = loaded.config.policy();
        let store = self.inner.store.clone();
        let ws = job.workspace_id.clone();

        // 1. Move wanted values to `sent` (committed before the HTTP call, so an echo that
        //    overtakes this push is still recognised as ours).
        // The intents, the object, and the base of each field as the push was planned.
        let plan: Mutex<Plan> = Mutex::new(Plan::default());
        let loaded_ref = &loaded;
        self.commit_with_retry(|| {
            let loaded = loaded_ref;
            let store = store.clone();
            let ws = ws.clone();
            let policy = &policy;
            let plan = &plan;
            let lease = lease.clone();
            async move {
                *lock(plan) = Plan::default();
                let Some(mut task) = store.workspace_task(&ws, job.task_id).await? else {
                    let mut uow = UnitOfWork::new(ws);
                    uow.completion = Completion::Done { lease, note: None };
                    return Ok(Some(uow));
                };
                let link = task
                    .external
                    .iter()
                    .find(|l| l.integration_id == job.integration_id)
                    .cloned();
                // A tombstone, or a task out of scope, is pushed nowhere.
                let intents = match (&link, task.deleted || task.out_of_scope) {
                    (Some(_), false) => begin_push(&mut task, policy, |v| {
                        loaded.provider.check_value(&loaded.ctx, v).echo_form()
                    }),
                    _ => Vec::new(),
                };
                let mut uow = UnitOfWork::new(ws);
                if intents.is_empty() {
                    uow.completion = Completion::Done { lease, note: None };
                    return Ok(Some(uow));
                }
                let bases = intents
                    .iter()
                    .map(|i| {
                        let f = i.value.field();
                        (f, task.sync.get(&f).and_then(|s| s.base.clone()))
                    })
                    .collect();
                *lock(plan) = Plan {
                    intents,
                    key: link.map(|l| ObjectKey::new(l.key.external_id, l.key.object_type)),
                    bases,
                };
                let expected = task.revision;
                task.revision += 1;
                uow.task = Some(TaskWrite {
                    task,
                    expected_revision: Some(expected),
                });
                Ok(Some(uow))
            }
        })
        .await?;
        let Plan {
            intents: pushed,
            key: target,
            bases,
        } = std::mem::take(&mut *lock(&plan));
        let Some(key) = target.filter(|_| !pushed.is_empty()) else {
            return Ok(()); // nothing to push; the job was completed above
        };

        // 2. A CollabHub request to a provider-owned field must not overwrite a change the
        //    provider made meanwhile: compare the provider's value with the last in-sync one.
        let mut conflicts: Vec<Field> = Vec::new();
        let provider_owned: Vec<&Intent> = pushed
            .iter()
            .filter(|i| policy.rule(i.value.field()).owner == Owner::Provider)
            .collect();
        if !provider_owned.is_empty() {
            let remote = loaded.provider.fetch_task(&loaded.ctx, &key).await?;
            // Against the base as planned, not as the task holds it now: a provider edit
            // processed meanwhile moved the task's base to the provider's value, and our
            // request must not overwrite the edit that beat it.
            for intent in provider_owned {
                let f = intent.value.field();
                let base = bases
                    .iter()
                    .find(|(g, _)| *g == f)
                    .and_then(|(_, b)| b.as_ref());
                if let (Some(now), Some(base)) = (remote.fields.get(f), base)
                    && !now.same_as(base)
                    && !now.same_as(&intent.value)
                {
                    conflicts.push(f);
                }
            }
        }

        // 3. Push the rest.
        let patch: FieldPatch = pushed
            .iter()
            .filter(|i| !conflicts.contains(&i.value.field()))
            .map(|i| i.value.clone())
            .collect();
        // 3a. Record the values the push will pass through before it moves anything: a
        //     worker may process a hop's webhook while the push still runs.
        let passes = if patch.is_empty() {
            Vec::new()
        } else {
            loaded
                .provider
                .plan_push(&loaded.ctx, &key, &patch)
                .await?
                .passes
        };
        if !passes.is_empty() {
            self.commit_with_retry(|| {
                let store = store.clone();
                let ws = ws.clone();
                let pushed = &pushed;
                let passes = &passes;
                async move {
                    let Some(mut task) = store.workspace_task(&ws, job.task_id).await? else {
                        return Ok(None);
                    };
                    if !expect_passes(&mut task, pushed, passes) {
                        return Ok(None);
                    }
                    let mut uow = UnitOfWork::new(ws);
                    let expected = task.revision;
                    task.revision += 1;
                    uow.task = Some(TaskWrite {
                        task,
                        expected_revision: Some(expected),
                    });
                    Ok(Some(uow))
                }
            })
            .await?;
        }
        let outcome = if patch.is_empty() {
            crate::provider::PushOutcome::default()
        } else {
            let started = std::time::Instant::now();
            let outcome = loaded.provider.push(&loaded.ctx, &key, &patch).await;
            crate::metrics::push(started.elapsed(), outcome.is_err());
            let outcome = outcome?;
            tracing::debug!(push = %job.id, elapsed_ms = started.elapsed().as_millis() as u64, "pushed");
            outcome
        };

        // 4. Record the outcome and complete the job.
        let ctx = push_context(job);
        let integration = job.integration_id;
        self.commit_with_retry(|| {
            let store = store.clone();
            let ws = ws.clone();
            let policy = &policy;
            let pushed = &pushed;
            let outcome = &outcome;
            let conflicts = &conflicts;
            let ctx = &ctx;
            let lease = lease.clone();
            async move {
                let mut uow = UnitOfWork::new(ws.clone());
                uow.completion = Completion::Done { lease, note: None };
                if let Some(mut task) = store.workspace_task(&ws, job.task_id).await? {
                    let applied = finish_push(&mut task, pushed, outcome, conflicts, policy);
                    uow.ledger = drafts(&task, &applied.decisions, ctx, Some(integration));
                    if task.has_unpushed_changes() {
                        uow.enqueue_push = Some((task.id, integration));
                    }
                    let expected = task.revision;
                    task.revision += 1;
                    uow.task = Some(TaskWrite {
                        task,
                        expected_revision: Some(expected),
                    });
                }
                Ok(Some(uow))
            }
        })
        .await?;
        Ok(())
    }
}

/// The ledger context of what a push records: the sync service, caused by the push job.
pub(super) fn push_context(job: &OutboxJob) -> EntryContext {
    EntryContext {
        actor: Actor::service("ordonis-sync"),
        cause: Cause {
            kind: CauseKind::Push,
            id: job.id.to_string(),
            delivery_id: None,
            parent_action: None,
            evidence: None,
        },
        occurred_at: None,
        observed_at: OffsetDateTime::now_utc(),
    }
}

/// Locks a mutex that no code path can poison while holding (no panics under the lock).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A push as planned: the intents, the provider object, and each field's base then.
#[derive(Default)]
struct Plan {
    intents: Vec<Intent>,
    key: Option<ObjectKey>,
    bases: Vec<(Field, Option<crate::model::FieldValue>)>,
}
