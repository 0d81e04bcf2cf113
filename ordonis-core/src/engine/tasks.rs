//! The task API CollabHub calls: change a task's fields as an actor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

use super::Engine;
use super::inbound::{EntryContext, drafts};
use crate::actor::Actor;
use crate::error::Error;
use crate::field_merge::{Decision, apply_local};
use crate::ids::{ActionId, TaskId, WorkspaceId};
use crate::ledger::Outcome;
use crate::ledger::{Cause, CauseKind, LedgerDraft};
use crate::model::FieldPatch;
use crate::policy::FieldPolicy;
use crate::provider::ValueCheck;
use crate::store::{StoreExt, TaskWrite, UnitOfWork};

/// What a task change did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeReceipt {
    /// The action's id (the ledger entries' cause).
    pub action: ActionId,
    /// The ledger entries written.
    pub entries: Vec<LedgerDraft>,
    /// A push to the provider was queued (or coalesced into one already queued).
    pub push_queued: bool,
    /// Fields refused at once because the provider can never hold the value asked for, with
    /// the reason (also in the ledger, as `rejected`).
    pub refused: Vec<(crate::model::Field, String)>,
}

impl Engine {
    /// Changes fields of a task as an actor. The change, its ledger entries and the outbox row
    /// commit together; several quick changes to one task coalesce into one push.
    ///
    /// Fields go through the task's integration's field policy: a change to a provider-owned
    /// field is sent as a request and becomes the value when the provider confirms it.
    pub async fn change_task(
        &self,
        ws: &WorkspaceId,
        task_id: TaskId,
        actor: &Actor,
        patch: &FieldPatch,
    ) -> Result<ChangeReceipt, Error> {
        actor.validate()?;
        let action = ActionId::new();
        let ctx = internal_action(actor, action);
        let push_queued = AtomicBool::new(false);
        let refused: Mutex<Vec<(crate::model::Field, String)>> = Mutex::new(Vec::new());
        let store = self.inner.store.clone();
        let entries = self
            .commit_with_retry(|| {
                let store = store.clone();
                let ctx = &ctx;
                let push_queued = &push_queued;
                let refused = &refused;
                async move {
                    let mut task = store
                        .workspace_task(ws, task_id)
                        .await?
                        .ok_or_else(|| Error::NotFound(format!("task {task_id}")))?;
                    if task.deleted {
                        return Err(Error::Invalid(crate::InvalidInput::new(
                            "task",
                            "deleted in the provider",
                        )));
                    }
                    // Not synced while out of scope: an edit here would never reach the
                    // provider, and the provider's state wins when the task is back.
                    if task.out_of_scope {
                        return Err(Error::Invalid(crate::InvalidInput::new(
                            "task",
                            "out of its integration's scope (see its ledger): it syncs, and \
                             can be edited, again once it is back in scope",
                        )));
                    }
                    let integration = task.link().map(|l| l.integration_id);
                    let loaded = match integration {
                        Some(id) => Some(self.load(id).await?),
                        None => None,
                    };
                    let policy = loaded
                        .as_ref()
                        .map_or_else(FieldPolicy::default, |l| l.config.policy());
                    // Values the provider can never hold are refused now, not coerced later.
                    let mut accepted = patch.clone();
                    let mut refusals = Vec::new();
                    if let Some(l) = &loaded {
                        for v in patch.values() {
                            if let ValueCheck::Refuse(reason) = l.provider.check_value(&l.ctx, v) {
                                accepted.remove(v.field());
                                refusals.push(Decision {
                                    field: v.field(),
                                    before: task.fields.get(v.field()),
                                    after: v.clone(),
                                    outcome: Outcome::Rejected,
                                    rule: policy.rule(v.field()),
                                    reason: format!(
                                        "the provider cannot hold this value: {reason}"
                                    ),
                                    echo_of: None,
                                });
                            }
                        }
                    }
                    *lock(refused) = refusals
                        .iter()
                        .map(|d| (d.field, d.reason.clone()))
                        .collect();
                    let mut applied = apply_local(&mut task, &accepted, &policy, action);
                    applied.decisions.extend(refusals);
                    let mut uow = UnitOfWork::new(ws.clone());
                    uow.ledger = drafts(&task, &applied.decisions, ctx, integration);
                    push_queued.store(applied.push && integration.is_some(), Ordering::Relaxed);
                    if let (true, Some(id)) = (applied.push, integration) {
                        uow.enqueue_push = Some((task.id, id));
                    }
                    if !applied.dirty && uow.ledger.is_empty() {
                        return Ok(None);
                    }
                    let expected = task.revision;
                    task.revision += 1;
                    task.updated_at = OffsetDateTime::now_utc();
                    uow.task = Some(TaskWrite {
                        task,
                        expected_revision: Some(expected),
                    });
                    Ok(Some(uow))
                }
            })
            .await?;
        Ok(ChangeReceipt {
            action,
            entries,
            push_queued: push_queued.into_inner(),
            refused: std::mem::take(&mut *lock(&refused)),
        })
    }
}

/// Locks a mutex that no code path can poison while holding (no panics under the lock).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The ledger context of a change made through the task API.
pub(super) fn internal_action(actor: &Actor, action: ActionId) -> EntryContext {
    EntryContext {
        actor: actor.clone(),
        cause: Cause {
            kind: CauseKind::InternalAction,
            id: action.to_string(),
            delivery_id: None,
            parent_action: None,
            evidence: None,
        },
        occurred_at: None,
        observed_at: OffsetDateTime::now_utc(),
    }
}
