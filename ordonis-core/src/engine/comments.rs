//! The conversation API CollabHub calls: list a task's comments, and add, edit or delete
//! CollabHub's own. Each write is the comment, its ledger entry and the task's queued push,
//! committed together.

use time::OffsetDateTime;

use super::Engine;
use super::inbound::EntryContext;
use super::tasks::internal_action;
use crate::actor::{Actor, ActorKind};
use crate::error::{Error, StoreError};
use crate::ids::{ActionId, CommentId, TaskId, WorkspaceId};
use crate::ledger::{CommentRecord, LedgerDraft, LedgerEntry, Op, Outcome};
use crate::store::{StoreExt, UnitOfWork};
use crate::task::Task;
use crate::task_comment::{
    COLLABHUB_SOURCE, CommentOp, CommentSettings, CommentSync, CommentSyncState, CommentWrite,
    TaskComment, check_comment_body,
};

/// What a comment write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentReceipt {
    /// The comment.
    pub comment_id: CommentId,
    /// The ledger entries written, sealed (with their indexes).
    pub entries: Vec<LedgerEntry>,
    /// A push to the provider was queued (or coalesced into one already queued).
    pub push_queued: bool,
}

impl Engine {
    /// A task's comments, oldest first, tombstones included (`NotFound` for a task of
    /// another workspace).
    pub async fn comments(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<TaskComment>, Error> {
        self.inner
            .store
            .workspace_task(ws, task)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task {task}")))?;
        Ok(self.inner.store.task_comments(ws, task).await?)
    }

    /// Comments on a task as an actor (a person, or an agent for its principals). The
    /// comment, its `comment_add` ledger entry and the task's push commit together; the push
    /// posts it to the provider with an attribution line naming who wrote it for whom.
    ///
    /// `Invalid` for an empty body or control characters, `Conflict` for a task deleted in
    /// the provider or out of its integration's scope, `NotFound` for an unknown task.
    pub async fn add_comment(
        &self,
        ws: &WorkspaceId,
        task_id: TaskId,
        actor: &Actor,
        body: &str,
    ) -> Result<CommentReceipt, Error> {
        actor.validate()?;
        check_comment_body(body)?;
        let task = self.live_task(ws, task_id).await?;
        let (integration, settings, pushes) = self.comment_route(&task).await?;
        let now = OffsetDateTime::now_utc();
        let comment = TaskComment {
            id: CommentId::new(),
            workspace_id: ws.clone(),
            task_id,
            revision: 1,
            author: actor.clone(),
            source: COLLABHUB_SOURCE.to_owned(),
            body: body.to_owned(),
            integration_id: integration,
            external_id: None,
            created_at: now,
            edited_at: None,
            deleted: false,
            remote_version_ms: None,
            sync: pushes.then(|| CommentSync::pending(CommentOp::Post)),
        };
        let ctx = internal_action(actor, ActionId::new());
        let mut uow = UnitOfWork::new(ws.clone());
        uow.ledger.push(comment_draft(
            &task,
            &comment,
            Op::CommentAdd,
            Outcome::Applied,
            settings.rule_text(),
            &ctx,
        ));
        if let (true, Some(i)) = (pushes, integration) {
            uow.enqueue_push = Some((task_id, i));
        }
        uow.comments.push(CommentWrite {
            comment,
            expected_revision: None,
        });
        let id = uow.comments[0].comment.id;
        let receipt = self.inner.store.commit(uow).await?;
        Ok(CommentReceipt {
            comment_id: id,
            entries: receipt.entries,
            push_queued: receipt.outbox.is_some(),
        })
    }

    /// Replaces the body of a comment CollabHub wrote (`Conflict` for a comment written in
    /// the provider, or deleted). An unchanged body writes nothing.
    pub async fn edit_comment(
        &self,
        ws: &WorkspaceId,
        comment_id: CommentId,
        actor: &Actor,
        body: &str,
    ) -> Result<CommentReceipt, Error> {
        actor.validate()?;
        check_comment_body(body)?;
        self.change_own_comment(ws, comment_id, actor, |c| {
            if c.body == body {
                return None;
            }
            c.body = body.to_owned();
            c.edited_at = Some(OffsetDateTime::now_utc());
            if let Some(s) = &mut c.sync {
                // Not in the provider yet (or refused there): the post carries the new body.
                let op = if c.external_id.is_none() {
                    CommentOp::Post
                } else {
                    CommentOp::Edit
                };
                *s = CommentSync::pending(op).keeping_doubt(s.post_in_doubt);
            }
            Some(Op::CommentEdit)
        })
        .await
    }

    /// Deletes a comment CollabHub wrote, keeping it as a tombstone (`Conflict` for a
    /// comment written in the provider, or deleted already).
    pub async fn delete_comment(
        &self,
        ws: &WorkspaceId,
        comment_id: CommentId,
        actor: &Actor,
    ) -> Result<CommentReceipt, Error> {
        actor.validate()?;
        self.change_own_comment(ws, comment_id, actor, |c| {
            c.deleted = true;
            if let Some(s) = &mut c.sync {
                // Never reached the provider: there is nothing to delete there.
                let maybe_there = c.external_id.is_some() || s.post_in_doubt;
                *s = if maybe_there {
                    CommentSync::pending(CommentOp::Delete).keeping_doubt(s.post_in_doubt)
                } else {
                    CommentSync {
                        state: CommentSyncState::Confirmed,
                        pending: None,
                        post_in_doubt: false,
                        error: None,
                    }
                };
            }
            Some(Op::CommentDelete)
        })
        .await
    }

    /// Applies `change` to one of CollabHub's comments (recomputed while concurrent writers
    /// interfere) with its ledger entry and push; `change` says which op it made, or `None`
    /// for nothing to write.
    async fn change_own_comment(
        &self,
        ws: &WorkspaceId,
        comment_id: CommentId,
        actor: &Actor,
        change: impl Fn(&mut TaskComment) -> Option<Op>,
    ) -> Result<CommentReceipt, Error> {
        let ctx = internal_action(actor, ActionId::new());
        let store = &self.inner.store;
        let mut tries = self.inner.config.conflict_retries.max(1);
        loop {
            let current = store
                .comment(comment_id)
                .await?
                .filter(|c| &c.workspace_id == ws)
                .ok_or_else(|| Error::NotFound(format!("comment {comment_id}")))?;
            if !current.is_ours() {
                return Err(Error::Conflict(format!(
                    "comment {comment_id} was written in {}: only its author can change it \
                     there",
                    current.source
                )));
            }
            if current.deleted {
                return Err(Error::Conflict(format!("comment {comment_id} is deleted")));
            }
            let task = self.live_task(ws, current.task_id).await?;
            let (_, settings, _) = self.comment_route(&task).await?;
            let mut next = current.clone();
            let Some(op) = change(&mut next) else {
                return Ok(CommentReceipt {
                    comment_id,
                    entries: Vec::new(),
                    push_queued: false,
                });
            };
            next.revision += 1;
            let mut uow = UnitOfWork::new(ws.clone());
            uow.ledger.push(comment_draft(
                &task,
                &next,
                op,
                Outcome::Applied,
                settings.rule_text(),
                &ctx,
            ));
            if let (true, Some(i)) = (next.has_pending_push(), next.integration_id) {
                uow.enqueue_push = Some((task.id, i));
            }
            uow.comments.push(CommentWrite {
                comment: next,
                expected_revision: Some(current.revision),
            });
            match store.commit(uow).await {
                Ok(receipt) => {
                    return Ok(CommentReceipt {
                        comment_id,
                        entries: receipt.entries,
                        push_queued: receipt.outbox.is_some(),
                    });
                }
                Err(StoreError::Conflict(_)) if tries > 1 => tries -= 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The task, when it may take comments: `NotFound` when unknown, `Conflict` when deleted
    /// in the provider or out of scope.
    async fn live_task(&self, ws: &WorkspaceId, task_id: TaskId) -> Result<Task, Error> {
        let task = self
            .inner
            .store
            .workspace_task(ws, task_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task {task_id}")))?;
        if task.deleted {
            return Err(Error::Conflict(format!(
                "task {task_id} was deleted in the provider: its conversation is closed"
            )));
        }
        if task.out_of_scope {
            return Err(Error::Conflict(format!(
                "task {task_id} is out of its integration's scope: it takes comments again \
                 once it is back in scope"
            )));
        }
        Ok(task)
    }

    /// Where a new comment on `task` goes: the integration it syncs through, the comment
    /// settings, and whether it is pushed (linked, outbound allowed, a provider with
    /// comments).
    async fn comment_route(
        &self,
        task: &Task,
    ) -> Result<(Option<crate::ids::IntegrationId>, CommentSettings, bool), Error> {
        let Some(link) = task.link() else {
            return Ok((None, CommentSettings::default(), false));
        };
        let loaded = match self.load(link.integration_id).await {
            Ok(l) => l,
            // A disabled integration syncs nothing: the comment stays in CollabHub.
            Err(Error::NotFound(_)) => {
                return Ok((Some(link.integration_id), CommentSettings::default(), false));
            }
            Err(e) => return Err(e),
        };
        let settings = loaded.config.comments;
        let pushes = settings.direction.outbound() && loaded.provider.comments().is_some();
        Ok((Some(link.integration_id), settings, pushes))
    }
}

impl CommentSync {
    /// The same, keeping a post's doubt (a post whose answer was lost stays looked for).
    pub(crate) fn keeping_doubt(mut self, in_doubt: bool) -> Self {
        self.post_in_doubt = in_doubt;
        self
    }
}

/// The ledger entry of a comment decision.
pub(crate) fn comment_draft(
    task: &Task,
    c: &TaskComment,
    op: Op,
    outcome: Outcome,
    rule: String,
    ctx: &EntryContext,
) -> LedgerDraft {
    let mut d = task_draft(task, c.integration_id, op, outcome, rule, ctx);
    d.comment = Some(CommentRecord {
        id: c.id,
        external_id: c.external_id.clone(),
        body: (op != Op::CommentDelete).then(|| c.body.clone()),
    });
    d
}

/// An entry about `task` with no field change: the comment and session ops fill in theirs.
pub(crate) fn task_draft(
    task: &Task,
    integration: Option<crate::ids::IntegrationId>,
    op: Op,
    outcome: Outcome,
    rule: String,
    ctx: &EntryContext,
) -> LedgerDraft {
    LedgerDraft {
        workspace_id: task.workspace_id.clone(),
        integration_id: integration,
        task_id: task.id,
        external: task.link().cloned(),
        op,
        field: None,
        before: None,
        after: None,
        outcome,
        rule,
        actor: ctx.actor.clone(),
        cause: ctx.cause.clone(),
        occurred_at: ctx.occurred_at,
        observed_at: ctx.observed_at,
        comment: None,
        session: None,
    }
}

/// The attribution line of a comment CollabHub posts: who wrote it, for whom, and its
/// ledger entry ("Triage bot (agent) for Alice Smith · ledger entry 42").
pub(crate) fn attribution(author: &Actor, entry: Option<u64>) -> String {
    let name =
        |display: &Option<String>, id: &str| display.clone().unwrap_or_else(|| id.to_owned());
    let who = name(&author.display_name, &author.id);
    let mut line = match author.kind {
        ActorKind::Agent => match author.on_behalf_of.last() {
            // The person accountable: the end of the delegation chain.
            Some(p) => format!("{who} (agent) for {}", name(&p.display_name, &p.id)),
            None => format!("{who} (agent)"),
        },
        ActorKind::Human => format!("{who} via CollabHub"),
        ActorKind::Service | ActorKind::System => format!("{who} (automation)"),
    };
    if let Some(idx) = entry {
        line.push_str(&format!(" · ledger entry {idx}"));
    }
    line
}

/// The receipt link of a ledger entry, from the engine's template.
pub(crate) fn receipt_url(template: Option<&str>, ws: &WorkspaceId, idx: u64) -> Option<String> {
    // Encoded as in the workspace's log name (RFC 3986's unreserved characters stay).
    let log = crate::vera::log_name(ws);
    let ws = log.strip_prefix(crate::vera::LOG_PREFIX).unwrap_or(&log);
    template.map(|t| {
        t.replace("{workspace}", ws)
            .replace("{index}", &idx.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::Principal;

    #[test]
    fn the_attribution_names_the_agent_and_the_person_at_the_end_of_its_chain() {
        let agent = Actor::agent(
            "agt_7",
            vec![
                Principal {
                    kind: ActorKind::Agent,
                    id: "agt_planner".into(),
                    grant: None,
                    display_name: None,
                },
                Principal {
                    kind: ActorKind::Human,
                    id: "usr_1".into(),
                    grant: None,
                    display_name: Some("Alice Smith".into()),
                },
            ],
        )
        .named("Triage bot");
        assert_eq!(
            attribution(&agent, Some(42)),
            "Triage bot (agent) for Alice Smith · ledger entry 42"
        );
        assert_eq!(
            attribution(&Actor::human("usr_2"), None),
            "usr_2 via CollabHub"
        );
        assert_eq!(
            receipt_url(
                Some("https://h/api/ledger/{workspace}/proof/{index}"),
                &WorkspaceId::new("a b").unwrap_or_else(|e| panic!("{e}")),
                7
            )
            .as_deref(),
            Some("https://h/api/ledger/a%20b/proof/7")
        );
    }
}
