//! Comments on the wire: pushing CollabHub's comments (post, edit, delete, exactly once
//! under retries) and applying the provider's (created, edited, deleted; our own echoes
//! confirm ours and never make a second comment).

use std::collections::BTreeMap;

use super::comments::{attribution, comment_draft, receipt_url};
use super::inbound::EntryContext;
use super::{Engine, Loaded};
use crate::actor::Actor;
use crate::comments::{CommentDraft, CommentProvider, MAX_MARKER_PAGES, RemoteComment};
use crate::error::{Error, ProviderError, StoreError};
use crate::ids::{CommentId, IntegrationId};
use crate::ledger::{CauseKind, Op, Outcome, SessionRecord};
use crate::model::ObjectKey;
use crate::provider::{ChangeHint, HintKind, RemoteActor, ms_to_datetime};
use crate::session::{
    ActivityContent, ActivityKind, ActivityRef, AgentSession, SessionState, SessionWrite,
};
use crate::store::{OutboxJob, StoreExt, UnitOfWork};
use crate::task::Task;
use crate::task_comment::{
    CommentOp, CommentSettings, CommentSyncState, CommentWrite, TaskComment,
};

/// A provider comment as the engine resolved it before its unit of work.
#[derive(Clone, Debug)]
pub(crate) enum FetchedComment {
    /// It exists, in this state.
    Present(RemoteComment),
    /// It is gone (deleted, or the event said so); who deleted it, when known.
    Gone {
        external_id: String,
        actor: Option<RemoteActor>,
    },
}

/// The comments an inbox event brings, resolved against the provider.
#[derive(Clone, Debug, Default)]
pub(crate) struct InboundComments {
    /// The comments, in event order.
    pub(crate) items: Vec<FetchedComment>,
    /// Why they were not read (a setting, a provider without comments), for the row's note.
    pub(crate) skipped: Option<String>,
    pub(crate) settings: CommentSettings,
    /// For a full read of the conversation (a reconcile): every provider id listed; a
    /// stored comment not among them is gone.
    pub(crate) listed: Option<Vec<String>>,
    /// The ledger's actor for each author's account, where the people directory names the
    /// principal behind it (filled after the read; an author missing here is its account).
    pub(crate) authors: std::collections::HashMap<String, Actor>,
}

impl InboundComments {
    /// The accounts of the comments' authors (and of who deleted one, when known).
    pub(crate) fn accounts(&self) -> Vec<RemoteActor> {
        self.items
            .iter()
            .filter_map(|c| match c {
                FetchedComment::Present(rc) => rc.author.clone(),
                FetchedComment::Gone { actor, .. } => actor.clone(),
            })
            .collect()
    }
}

impl InboundComments {
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() && self.skipped.is_none()
    }
}

/// How a push of one comment ended.
enum Settle {
    /// Posted (or found posted by an earlier attempt), with the body that was sent.
    Posted { external_id: String, body: String },
    /// The edit went through with this body.
    Edited { body: String },
    /// Deleted in the provider (or found gone).
    Deleted,
    /// Refused by the provider, or not pushable: the state to record and why.
    Refused {
        op: CommentOp,
        state: CommentSyncState,
        reason: String,
    },
}

impl Engine {
    /// Pushes the task's comments that wait for it through the job's integration; called by
    /// the push job before its fields. A provider failure that is the job's (an outage, a
    /// rate limit) is returned, and the comment is retried with the job.
    pub(crate) async fn push_comments(
        &self,
        job: &OutboxJob,
        loaded: &Loaded,
    ) -> Result<(), Error> {
        let store = &self.inner.store;
        let ws = &job.workspace_id;
        let pending: Vec<TaskComment> = store
            .task_comments(ws, job.task_id)
            .await?
            .into_iter()
            .filter(|c| c.integration_id == Some(job.integration_id) && c.has_pending_push())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let Some(task) = store.workspace_task(ws, job.task_id).await? else {
            return Ok(());
        };
        let link = task
            .external
            .iter()
            .find(|l| l.integration_id == job.integration_id);
        let blocked = match (link, loaded.provider.comments()) {
            (None, _) => Some("the task is not linked to this integration"),
            (_, None) => Some("this provider has no comments"),
            _ if task.deleted => Some("the task was deleted in the provider"),
            _ if task.out_of_scope => Some("the task is out of its integration's scope"),
            _ if !loaded.config.comments.direction.outbound() => {
                Some("comments do not sync outbound in this integration")
            }
            _ => None,
        };
        for c in pending {
            let op = c
                .sync
                .as_ref()
                .and_then(|s| s.pending)
                .unwrap_or(CommentOp::Post);
            match (blocked, link, loaded.provider.comments()) {
                (None, Some(link), Some(cp)) => {
                    let key = ObjectKey::new(&link.key.external_id, &link.key.object_type);
                    self.push_comment(job, loaded, cp, &task, &key, c).await?;
                }
                (why, _, _) => {
                    let reason = why.unwrap_or("not pushable").to_owned();
                    let state = CommentSyncState::Failed;
                    self.settle_comment(
                        job,
                        loaded,
                        &task,
                        c.id,
                        Settle::Refused { op, state, reason },
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn push_comment(
        &self,
        job: &OutboxJob,
        loaded: &Loaded,
        cp: &dyn CommentProvider,
        task: &Task,
        key: &ObjectKey,
        c: TaskComment,
    ) -> Result<(), Error> {
        let Some(sync) = c.sync.clone() else {
            return Ok(());
        };
        let Some(op) = sync.pending else {
            return Ok(());
        };
        let ctx = &loaded.ctx;
        let marker = c.id.to_string();
        let (line, receipt) = self.attribution_of(task, &c).await?;
        let draft = CommentDraft {
            marker: &marker,
            body: &c.body,
            attribution: &line,
            receipt_url: receipt.as_deref(),
        };
        let refused = |op, e: &ProviderError| Settle::Refused {
            op,
            state: CommentSyncState::Refused,
            reason: e.to_string(),
        };
        let settle = match op {
            CommentOp::Post => {
                // Committed before the call: if its answer is lost, the next attempt looks
                // for the comment before posting again.
                if !sync.post_in_doubt && !self.mark_post_in_doubt(&c).await? {
                    return Ok(()); // changed meanwhile; the next push sees it as it is now
                }
                let found = if sync.post_in_doubt {
                    cp.find_comment(ctx, key, &marker).await?
                } else {
                    None
                };
                let posted = match found {
                    Some(rc) => Ok(rc),
                    None => timed(cp.post_comment(ctx, key, &draft)).await,
                };
                match posted {
                    Ok(rc) => Settle::Posted {
                        external_id: rc.external_id,
                        body: c.body.clone(),
                    },
                    Err(e) if e.refuses_the_object() => refused(op, &e),
                    Err(e) => return Err(e.into()),
                }
            }
            CommentOp::Edit => match &c.external_id {
                None => Settle::Refused {
                    op,
                    state: CommentSyncState::Failed,
                    reason: "no provider id to edit".to_owned(),
                },
                Some(ext) => match timed(cp.edit_comment(ctx, key, ext, &draft)).await {
                    Ok(_) => Settle::Edited {
                        body: c.body.clone(),
                    },
                    Err(e) if e.refuses_the_object() => refused(op, &e),
                    Err(e) => return Err(e.into()),
                },
            },
            CommentOp::Delete => {
                let target = match &c.external_id {
                    Some(ext) => Some(ext.clone()),
                    None if sync.post_in_doubt => cp
                        .find_comment(ctx, key, &marker)
                        .await?
                        .map(|rc| rc.external_id),
                    None => None,
                };
                match target {
                    None => Settle::Deleted,
                    Some(ext) => match timed(cp.delete_comment(ctx, key, &ext)).await {
                        Ok(()) => Settle::Deleted,
                        Err(e) if e.refuses_the_object() => refused(op, &e),
                        Err(e) => return Err(e.into()),
                    },
                }
            }
        };
        self.settle_comment(job, loaded, task, c.id, settle).await
    }

    /// Records that a post is about to be made (`false` when the comment changed meanwhile
    /// so that no post is due).
    async fn mark_post_in_doubt(&self, c: &TaskComment) -> Result<bool, Error> {
        let mut next = c.clone();
        let Some(s) = &mut next.sync else {
            return Ok(false);
        };
        s.post_in_doubt = true;
        next.revision += 1;
        let mut uow = UnitOfWork::new(c.workspace_id.clone());
        uow.comments.push(CommentWrite {
            comment: next,
            expected_revision: Some(c.revision),
        });
        match self.inner.store.commit(uow).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records how a comment's push ended, on the comment as it is now: an edit or deletion
    /// made while the push ran is queued next.
    async fn settle_comment(
        &self,
        job: &OutboxJob,
        loaded: &Loaded,
        task: &Task,
        id: CommentId,
        settle: Settle,
    ) -> Result<(), Error> {
        let store = self.inner.store.clone();
        let ws = job.workspace_id.clone();
        let ctx = super::outbound::push_context(job);
        let rule = loaded.config.comments.rule_text();
        let settle = &settle;
        self.commit_with_retry(|| {
            let store = store.clone();
            let ws = ws.clone();
            let ctx = &ctx;
            let rule = &rule;
            async move {
                let Some(current) = store.comment(id).await?.filter(|c| c.workspace_id == ws)
                else {
                    return Ok(None);
                };
                let mut next = current.clone();
                let Some(s) = &mut next.sync else {
                    return Ok(None);
                };
                let mut uow = UnitOfWork::new(ws.clone());
                // What is still to do after `pushed` went through.
                let follow_up = |c: &TaskComment, pushed: &str| {
                    if c.deleted {
                        Some(CommentOp::Delete)
                    } else if c.body != pushed {
                        Some(CommentOp::Edit)
                    } else {
                        None
                    }
                };
                match settle {
                    Settle::Posted { external_id, body } => {
                        next.external_id.get_or_insert_with(|| external_id.clone());
                        let s = next
                            .sync
                            .get_or_insert_with(|| crate::CommentSync::pending(CommentOp::Post));
                        s.post_in_doubt = false;
                        s.error = None;
                        s.pending = follow_up(&current, body);
                        if s.state != CommentSyncState::Confirmed {
                            s.state = CommentSyncState::Sent;
                        }
                    }
                    Settle::Edited { body } => {
                        s.error = None;
                        s.pending = follow_up(&current, body);
                        s.state = CommentSyncState::Sent;
                    }
                    Settle::Deleted => {
                        s.pending = None;
                        s.post_in_doubt = false;
                        s.error = None;
                        s.state = CommentSyncState::Confirmed;
                    }
                    Settle::Refused { op, state, reason } => {
                        s.pending = None;
                        s.post_in_doubt = false;
                        s.error = Some(reason.clone());
                        s.state = *state;
                        let entry_op = match op {
                            CommentOp::Post => Op::CommentAdd,
                            CommentOp::Edit => Op::CommentEdit,
                            CommentOp::Delete => Op::CommentDelete,
                        };
                        let mut d = comment_draft(
                            task,
                            &next,
                            entry_op,
                            Outcome::Rejected,
                            format!("{rule}; not in the provider: {reason}"),
                            ctx,
                        );
                        d.integration_id = Some(job.integration_id);
                        uow.ledger.push(d);
                    }
                }
                if next.has_pending_push() {
                    uow.enqueue_push = Some((task.id, job.integration_id));
                }
                next.revision += 1;
                uow.comments.push(CommentWrite {
                    comment: next,
                    expected_revision: Some(current.revision),
                });
                Ok(Some(uow))
            }
        })
        .await?;
        Ok(())
    }

    /// The attribution line of one of CollabHub's comments and its receipt link, from its
    /// latest entry (the add, or the edit being pushed).
    async fn attribution_of(
        &self,
        task: &Task,
        c: &TaskComment,
    ) -> Result<(String, Option<String>), Error> {
        let entries = self
            .inner
            .store
            .task_ledger(&task.workspace_id, task.id)
            .await?;
        let idx = entries
            .iter()
            .rev()
            .find(|e| {
                e.record.outcome == Outcome::Applied
                    && matches!(e.record.op, Op::CommentAdd | Op::CommentEdit)
                    && e.record.comment.as_ref().is_some_and(|r| r.id == c.id)
            })
            .map(|e| e.idx);
        let receipt = idx.and_then(|i| {
            receipt_url(
                self.inner.config.receipt_url.as_deref(),
                &task.workspace_id,
                i,
            )
        });
        Ok((attribution(&c.author, idx), receipt))
    }

    /// Resolves the comment hints of an event against the provider (before any
    /// transaction): each comment read once, a deletion taken as it is. With `full`, the
    /// task's whole conversation is read (a reconcile), and comments no longer listed are
    /// gone.
    pub(crate) async fn resolve_comments(
        &self,
        loaded: &Loaded,
        key: &ObjectKey,
        hints: &[ChangeHint],
        full: bool,
    ) -> Result<InboundComments, Error> {
        let settings = loaded.config.comments;
        let mut out = InboundComments {
            settings,
            ..InboundComments::default()
        };
        // The last word per comment; a deletion wins.
        let mut asked: BTreeMap<&str, (bool, Option<&RemoteActor>)> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for h in hints {
            if let HintKind::Comment {
                comment_id,
                deleted,
            } = &h.kind
            {
                let e = asked.entry(comment_id.as_str()).or_insert_with(|| {
                    order.push(comment_id.as_str());
                    (false, None)
                });
                e.0 |= *deleted;
                e.1 = h.actor.as_ref().or(e.1);
            }
        }
        if order.is_empty() && !full {
            return Ok(out);
        }
        // Outbound only: the provider's comments are still read, to confirm ours (their
        // people's comments are left out when applied).
        if settings.direction == crate::policy::Direction::Off {
            if !order.is_empty() {
                out.skipped = Some("comments do not sync in this integration".to_owned());
            }
            return Ok(out);
        }
        let Some(cp) = loaded.provider.comments() else {
            if !order.is_empty() {
                out.skipped = Some("this provider has no comments".to_owned());
            }
            return Ok(out);
        };
        for id in order {
            let (deleted, actor) = asked.get(id).copied().unwrap_or((false, None));
            let gone = || FetchedComment::Gone {
                external_id: id.to_owned(),
                actor: actor.cloned(),
            };
            if deleted {
                out.items.push(gone());
                continue;
            }
            match cp.fetch_comment(&loaded.ctx, key, id).await {
                Ok(rc) => out.items.push(FetchedComment::Present(rc)),
                Err(ProviderError::NotFound(_)) => out.items.push(gone()),
                Err(e) => return Err(e.into()),
            }
        }
        if full {
            let mut cursor: Option<String> = None;
            let mut listed: Vec<RemoteComment> = Vec::new();
            let mut complete = false;
            for _ in 0..MAX_MARKER_PAGES {
                let page = cp
                    .list_comments(&loaded.ctx, key, cursor.as_deref())
                    .await?;
                listed.extend(page.comments);
                match page.next {
                    Some(n) => cursor = Some(n),
                    None => {
                        complete = true;
                        break;
                    }
                }
            }
            let listed_ids: Vec<String> = listed.iter().map(|c| c.external_id.clone()).collect();
            out.items
                .extend(listed.into_iter().map(FetchedComment::Present));
            // Stored comments a complete listing no longer has are gone (checked in the
            // unit, against the comments as they are then).
            if complete {
                out.listed = Some(listed_ids);
            }
        }
        Ok(out)
    }
}

/// Times a provider call into the push metrics.
async fn timed<T>(
    call: impl Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    let started = std::time::Instant::now();
    let out = call.await;
    crate::metrics::push(started.elapsed(), out.is_err());
    out
}

/// A task's conversation as stored now: what an event's comments are applied to.
pub(crate) struct Conversation<'a> {
    pub(crate) task: &'a Task,
    pub(crate) comments: Vec<TaskComment>,
    pub(crate) sessions: Vec<AgentSession>,
}

/// Adds the writes and entries of an event's comments to its unit, over the task's comments
/// as stored now. Returns a note for the row when nothing could be applied.
pub(crate) fn apply_inbound_comments(
    uow: &mut UnitOfWork,
    on: Conversation<'_>,
    inbound: &InboundComments,
    ctx: &EntryContext,
    integration: IntegrationId,
    provider: &str,
) -> Option<String> {
    let Conversation {
        task,
        comments: stored,
        sessions,
    } = on;
    if let Some(why) = &inbound.skipped {
        return Some(format!("comments not applied: {why}"));
    }
    let rule = inbound.settings.rule_text();
    // Each comment's revision as read, and its state as this event leaves it.
    let mut base: BTreeMap<CommentId, Option<u64>> = BTreeMap::new();
    let mut now: BTreeMap<CommentId, TaskComment> = stored.into_iter().map(|c| (c.id, c)).collect();
    for c in now.values() {
        base.insert(c.id, Some(c.revision));
    }
    let mut changed: Vec<CommentId> = Vec::new();
    let author_actor = |a: Option<&RemoteActor>| match a {
        Some(a) => inbound
            .authors
            .get(&a.account_id)
            .cloned()
            .unwrap_or_else(|| {
                let mut actor = Actor::provider_account(provider, &a.account_id);
                actor.display_name = a.display_name.clone();
                actor
            }),
        None => ctx.actor.clone(),
    };
    let find_external = |now: &BTreeMap<CommentId, TaskComment>, ext: &str| {
        now.values()
            .find(|c| {
                c.integration_id == Some(integration) && c.external_id.as_deref() == Some(ext)
            })
            .map(|c| c.id)
    };
    let mut entries = Vec::new();
    let mut gone: Vec<(String, Option<RemoteActor>)> = Vec::new();
    let mut not_inbound = 0usize;
    // People's new comments: a reply to a session waiting for input.
    let mut replies: Vec<(TaskComment, EntryContext)> = Vec::new();
    for item in &inbound.items {
        match item {
            FetchedComment::Present(rc) => {
                let ours = rc
                    .marker
                    .as_deref()
                    .and_then(|m| m.parse::<CommentId>().ok())
                    .filter(|id| now.get(id).is_some_and(TaskComment::is_ours))
                    .or_else(|| {
                        find_external(&now, &rc.external_id)
                            .filter(|id| now.get(id).is_some_and(TaskComment::is_ours))
                    });
                if let Some(id) = ours {
                    let Some(c) = now.get_mut(&id) else { continue };
                    // Our own comment's echo: it confirms ours, never makes another.
                    let mut touched = false;
                    if c.external_id.is_none() {
                        c.external_id = Some(rc.external_id.clone());
                        c.integration_id.get_or_insert(integration);
                        touched = true;
                    }
                    if let Some(s) = &mut c.sync {
                        if s.pending == Some(CommentOp::Post) {
                            s.pending = None;
                            touched = true;
                        }
                        if s.post_in_doubt {
                            s.post_in_doubt = false;
                            touched = true;
                        }
                        if s.pending.is_none()
                            && matches!(s.state, CommentSyncState::Pending | CommentSyncState::Sent)
                        {
                            s.state = CommentSyncState::Confirmed;
                            touched = true;
                            let op = if rc.edited_at_ms.is_some() {
                                Op::CommentEdit
                            } else {
                                Op::CommentAdd
                            };
                            let mut echo = EntryContext {
                                actor: author_actor(rc.author.as_ref()),
                                cause: ctx.cause.clone(),
                                occurred_at: ms_to_datetime(
                                    rc.edited_at_ms.unwrap_or(rc.created_at_ms),
                                ),
                                observed_at: ctx.observed_at,
                            };
                            echo.cause.kind = CauseKind::SyncEcho;
                            entries.push(comment_draft(
                                task,
                                c,
                                op,
                                Outcome::Confirmed,
                                rule.clone(),
                                &echo,
                            ));
                        }
                    }
                    if touched {
                        changed.push(id);
                    }
                    continue;
                }
                if !inbound.settings.direction.inbound() {
                    not_inbound += 1;
                    continue;
                }
                let version = rc.edited_at_ms.unwrap_or(rc.created_at_ms);
                let entry_ctx = EntryContext {
                    actor: author_actor(rc.author.as_ref()),
                    cause: ctx.cause.clone(),
                    occurred_at: ms_to_datetime(version),
                    observed_at: ctx.observed_at,
                };
                match find_external(&now, &rc.external_id) {
                    None => {
                        let created = ms_to_datetime(rc.created_at_ms).unwrap_or(ctx.observed_at);
                        let c = TaskComment {
                            id: CommentId::new(),
                            workspace_id: task.workspace_id.clone(),
                            task_id: task.id,
                            revision: 1,
                            author: entry_ctx.actor.clone(),
                            source: provider.to_owned(),
                            body: rc.body.clone(),
                            integration_id: Some(integration),
                            external_id: Some(rc.external_id.clone()),
                            created_at: created,
                            edited_at: rc.edited_at_ms.and_then(ms_to_datetime),
                            deleted: false,
                            remote_version_ms: Some(version),
                            sync: None,
                        };
                        entries.push(comment_draft(
                            task,
                            &c,
                            Op::CommentAdd,
                            Outcome::Applied,
                            rule.clone(),
                            &entry_ctx,
                        ));
                        replies.push((c.clone(), entry_ctx));
                        base.insert(c.id, None);
                        changed.push(c.id);
                        now.insert(c.id, c);
                    }
                    Some(id) => {
                        let Some(c) = now.get_mut(&id) else { continue };
                        // A deletion wins; a state older than the one held is a no-op. (The
                        // state is read when the event is processed, so a replay reads the
                        // current one; a provider without edit times, Asana, reports the
                        // creation time for every state, and a changed body then applies.)
                        if c.deleted || c.remote_version_ms.is_some_and(|v| v > version) {
                            continue;
                        }
                        if c.body == rc.body {
                            continue;
                        }
                        c.remote_version_ms = Some(version);
                        {
                            c.body = rc.body.clone();
                            c.edited_at = Some(
                                rc.edited_at_ms
                                    .and_then(ms_to_datetime)
                                    .unwrap_or(ctx.observed_at),
                            );
                            entries.push(comment_draft(
                                task,
                                c,
                                Op::CommentEdit,
                                Outcome::Applied,
                                rule.clone(),
                                &entry_ctx,
                            ));
                        }
                        changed.push(id);
                    }
                }
            }
            FetchedComment::Gone { external_id, actor } => {
                gone.push((external_id.clone(), actor.clone()));
            }
        }
    }
    if let Some(listed) = &inbound.listed {
        for c in now.values() {
            if !c.deleted
                && c.integration_id == Some(integration)
                && c.external_id.as_ref().is_some_and(|e| !listed.contains(e))
                && let Some(e) = &c.external_id
            {
                gone.push((e.clone(), None));
            }
        }
    }
    for (ext, actor) in gone {
        let Some(id) = find_external(&now, &ext) else {
            continue;
        };
        let Some(c) = now.get_mut(&id) else { continue };
        if !c.is_ours() && !inbound.settings.direction.inbound() {
            continue;
        }
        if c.deleted {
            // Ours, deleted here first: the provider's deletion confirms it.
            if let Some(s) = &mut c.sync
                && s.pending == Some(CommentOp::Delete)
            {
                s.pending = None;
                s.state = CommentSyncState::Confirmed;
                changed.push(id);
            }
            continue;
        }
        c.deleted = true;
        if let Some(s) = &mut c.sync {
            s.pending = None;
            s.post_in_doubt = false;
            s.state = CommentSyncState::Confirmed;
        }
        let entry_ctx = EntryContext {
            actor: author_actor(actor.as_ref()),
            cause: ctx.cause.clone(),
            occurred_at: ctx.occurred_at,
            observed_at: ctx.observed_at,
        };
        entries.push(comment_draft(
            task,
            c,
            Op::CommentDelete,
            Outcome::Applied,
            rule.clone(),
            &entry_ctx,
        ));
        changed.push(id);
    }
    changed.sort_unstable();
    changed.dedup();
    for id in changed {
        if let Some(mut c) = now.remove(&id) {
            let expected = base.get(&id).copied().flatten();
            if expected.is_some() {
                c.revision += 1;
            }
            uow.comments.push(CommentWrite {
                comment: c,
                expected_revision: expected,
            });
        }
    }
    uow.ledger.extend(entries);
    answer_waiting_sessions(uow, task, sessions, replies);
    (not_inbound > 0).then(|| {
        format!(
            "{not_inbound} comment(s) not applied: comments do not sync inbound in this \
             integration"
        )
    })
}

/// A person's comment on a task whose agent session waits for input is their reply: a
/// `prompt` activity of the session that waited last (its id names the comment, so a
/// replayed comment is no second prompt), which makes the session active again; one ledger
/// entry each, attributed to the person's account.
fn answer_waiting_sessions(
    uow: &mut UnitOfWork,
    task: &Task,
    sessions: Vec<AgentSession>,
    replies: Vec<(TaskComment, EntryContext)>,
) {
    let Some(mut waiting) = sessions
        .into_iter()
        .filter(|s| s.state == SessionState::AwaitingInput)
        .max_by_key(|s| s.last_activity_at)
    else {
        return;
    };
    let current = waiting.revision;
    let mut answered = false;
    for (c, ctx) in replies {
        let id = format!(
            "comment:{}:{}",
            c.source,
            c.external_id.as_deref().unwrap_or_default()
        );
        if waiting.activities.iter().any(|a| a.id == id) {
            continue;
        }
        let content = ActivityContent {
            kind: ActivityKind::Prompt,
            body: Some(c.body.clone()),
            action: None,
            parameter: None,
            result: None,
        };
        waiting.activities.push(ActivityRef {
            id: id.clone(),
            kind: ActivityKind::Prompt,
            digest: content.digest(),
            comment_id: Some(c.id),
            at: ctx.observed_at,
        });
        let before = waiting.state;
        waiting.state = SessionState::Active;
        waiting.last_activity_at = ctx.observed_at;
        waiting.updated_at = ctx.observed_at;
        let title = super::sessions::session_title(&waiting);
        let own = format!("ordonis:session:{}", waiting.id);
        if let Some(l) = waiting.links.iter_mut().find(|l| l.global_id == own)
            && l.title != title
        {
            l.title = title;
            l.pending = true;
        }
        uow.ledger.push(super::sessions::session_draft(
            task,
            &waiting,
            Op::SessionActivity,
            SessionRecord {
                id: waiting.id,
                state: (waiting.state != before).then_some(waiting.state),
                activity: Some((id, content)),
                artifact: None,
            },
            &ctx,
        ));
        answered = true;
    }
    if answered {
        if let (true, Some(i)) = (waiting.has_pending_links(), waiting.integration_id) {
            uow.enqueue_push = Some((task.id, i));
        }
        waiting.revision += 1;
        uow.sessions.push(SessionWrite {
            session: waiting,
            expected_revision: Some(current),
        });
    }
}
