//! Resolving a field in conflict by hand: accept the provider's value, or push CollabHub's.
//! Either way the resolution is one ledger entry naming it, by the actor who chose.

use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

use super::Engine;
use super::inbound::drafts;
use super::tasks::{ChangeReceipt, internal_action};
use crate::actor::Actor;
use crate::error::{Error, InvalidInput};
use crate::field_merge::Decision;
use crate::ids::{ActionId, TaskId, WorkspaceId};
use crate::ledger::Outcome;
use crate::model::{Field, FieldValue};
use crate::policy::{FieldPolicy, Owner};
use crate::store::{StoreExt, TaskWrite, UnitOfWork};
use crate::sync_state::Intent;

/// How a conflict is settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Keep the provider's value (the last one it sent): it becomes the task's value, a
    /// pending push of ours is dropped, and where ours already reached the provider, theirs
    /// is pushed back.
    AcceptTheirs,
    /// Push this CollabHub value to the provider (for a provider-owned field, as a request
    /// the provider confirms).
    PushOurs(FieldValue),
}

impl Resolution {
    fn reason(&self) -> &'static str {
        match self {
            Resolution::AcceptTheirs => "conflict resolved: accept theirs",
            Resolution::PushOurs(_) => "conflict resolved: push ours",
        }
    }
}

impl Engine {
    /// Settles a field in conflict as an actor. The task change, one ledger entry for the
    /// resolution and (for [`Resolution::PushOurs`]) the outbox row commit together.
    pub async fn resolve_conflict(
        &self,
        ws: &WorkspaceId,
        task_id: TaskId,
        field: Field,
        resolution: &Resolution,
        actor: &Actor,
    ) -> Result<ChangeReceipt, Error> {
        actor.validate()?;
        if let Resolution::PushOurs(v) = resolution
            && v.field() != field
        {
            return Err(InvalidInput::new("value", "is not a value of the field").into());
        }
        let action = ActionId::new();
        let ctx = internal_action(actor, action);
        let push_queued = AtomicBool::new(false);
        let store = self.inner.store.clone();
        let entries = self
            .commit_with_retry(|| {
                let store = store.clone();
                let ctx = &ctx;
                let push_queued = &push_queued;
                async move {
                    let mut task = store
                        .workspace_task(ws, task_id)
                        .await?
                        .ok_or_else(|| Error::NotFound(format!("task {task_id}")))?;
                    let integration = task.link().map(|l| l.integration_id);
                    let policy = match integration {
                        Some(id) => self.load(id).await?.config.policy(),
                        None => FieldPolicy::default(),
                    };
                    let rule = policy.rule(field);
                    let current = task.fields.get(field);
                    let st = task.sync.entry(field).or_default();
                    let (after, outcome, push) = match resolution {
                        Resolution::AcceptTheirs => {
                            let theirs = st.base.clone().unwrap_or_else(|| current.clone());
                            // Ours may have gone out already (the owner's value is pushed
                            // again after a conflict): then theirs is pushed back.
                            let ours_sent = st.sent.iter().any(|i| !i.value.same_as(&theirs));
                            let push = ours_sent && rule.direction.outbound();
                            st.want = push.then(|| Intent::new(theirs.clone(), action));
                            (theirs, Outcome::Applied, push)
                        }
                        Resolution::PushOurs(ours) => {
                            st.want = Some(Intent::new(ours.clone(), action));
                            let outcome = match rule.owner {
                                Owner::Provider => Outcome::Requested,
                                Owner::Host => Outcome::Applied,
                            };
                            (ours.clone(), outcome, rule.direction.outbound())
                        }
                    };
                    if !push {
                        task.sync.entry(field).or_default().want = None;
                    }
                    if outcome == Outcome::Applied {
                        task.fields.set(after.clone());
                    }
                    let decision = Decision {
                        field,
                        before: current,
                        after,
                        outcome,
                        rule,
                        reason: resolution.reason().to_owned(),
                        echo_of: None,
                    };
                    let mut uow = UnitOfWork::new(ws.clone());
                    uow.ledger = drafts(&task, &[decision], ctx, integration);
                    if let (true, Some(id)) = (push, integration) {
                        uow.enqueue_push = Some((task.id, id));
                        push_queued.store(true, Ordering::Relaxed);
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
            refused: Vec::new(),
        })
    }
}
