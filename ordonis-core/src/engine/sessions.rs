//! The agent-session API: open a session for a person, append activities (idempotent by the
//! client's id), add artifacts, change its state; the stale sweep; and the ledger read as a
//! change feed. Every step is a ledger entry attributed to the agent acting for its principal,
//! committed with the session and, where it shows in the provider, the task's push.

use time::OffsetDateTime;

use super::Engine;
use super::comments::{comment_draft, task_draft};
use super::inbound::EntryContext;
use super::tasks::internal_action;
use crate::actor::Actor;
use crate::error::{Error, InvalidInput, StoreError};
use crate::ids::{ActionId, CommentId, SessionId, TaskId, WorkspaceId};
use crate::ledger::{LedgerDraft, LedgerEntry, Op, Outcome, SessionRecord};
use crate::session::{
    ActivityContent, ActivityKind, ActivityRef, AgentSession, Artifact, SessionLink, SessionState,
    SessionWrite, check_session_actor,
};
use crate::store::{StoreExt, UnitOfWork};
use crate::task::Task;
use crate::task_comment::{
    COLLABHUB_SOURCE, CommentOp, CommentSync, CommentWrite, TaskComment, check_comment_body,
};

/// An activity to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewActivity {
    /// The client's id: appending the same id again is answered with the first append
    /// (and refused when the content differs). `None`: the engine makes one.
    pub id: Option<String>,
    /// What it says.
    pub content: ActivityContent,
}

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityReceipt {
    /// The activity's id.
    pub activity_id: String,
    /// Its ledger entry's index.
    pub ledger_index: u64,
    /// It was appended before (same id, same content): nothing was written now.
    pub repeated: bool,
    /// The session's state after it.
    pub state: SessionState,
    /// The comment it was posted as, for the kinds the integration posts.
    pub comment_id: Option<CommentId>,
}

/// One activity of a session, read back from its ledger entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionActivity {
    /// Its id.
    pub id: String,
    /// What it says.
    pub content: ActivityContent,
    /// Who (the agent for its principal, or the person replying).
    pub actor: Actor,
    /// Its ledger entry.
    pub ledger_index: u64,
    /// When it was logged.
    pub at: OffsetDateTime,
}

/// Longest client activity id.
pub const MAX_ACTIVITY_ID: usize = 128;

impl Engine {
    /// Opens a session for an agent acting for a person (`Invalid` for an actor that is not
    /// an agent saying whom it acts for; `Conflict` for a deleted or out-of-scope task).
    pub async fn open_session(
        &self,
        ws: &WorkspaceId,
        task_id: TaskId,
        agent: &Actor,
    ) -> Result<AgentSession, Error> {
        check_session_actor(agent)?;
        let task = self.session_task(ws, task_id).await?;
        let now = OffsetDateTime::now_utc();
        let mut session = AgentSession {
            id: SessionId::new(),
            workspace_id: ws.clone(),
            task_id,
            revision: 1,
            agent: agent.clone(),
            state: SessionState::Active,
            integration_id: task.link().map(|l| l.integration_id),
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            activities: Vec::new(),
            artifacts: Vec::new(),
            links: Vec::new(),
        };
        self.refresh_session_link(&task, &mut session).await;
        let ctx = internal_action(agent, ActionId::new());
        let mut uow = UnitOfWork::new(ws.clone());
        uow.ledger.push(session_draft(
            &task,
            &session,
            Op::SessionStart,
            SessionRecord {
                id: session.id,
                state: Some(session.state),
                activity: None,
                artifact: None,
            },
            &ctx,
        ));
        if let (true, Some(i)) = (session.has_pending_links(), session.integration_id) {
            uow.enqueue_push = Some((task_id, i));
        }
        uow.sessions.push(SessionWrite {
            session: session.clone(),
            expected_revision: None,
        });
        self.inner.store.commit(uow).await?;
        Ok(session)
    }

    /// One session of the workspace.
    pub async fn session(&self, ws: &WorkspaceId, id: SessionId) -> Result<AgentSession, Error> {
        self.inner
            .store
            .session(id)
            .await?
            .filter(|s| &s.workspace_id == ws)
            .ok_or_else(|| Error::NotFound(format!("session {id}")))
    }

    /// A task's sessions, oldest first.
    pub async fn sessions(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<AgentSession>, Error> {
        Ok(self.inner.store.task_sessions(ws, task).await?)
    }

    /// A session's activities, oldest first, as its ledger entries hold them.
    pub async fn session_activities(
        &self,
        ws: &WorkspaceId,
        id: SessionId,
    ) -> Result<Vec<SessionActivity>, Error> {
        let s = self.session(ws, id).await?;
        let entries = self.inner.store.task_ledger(ws, s.task_id).await?;
        Ok(entries
            .into_iter()
            .filter(|e| e.record.op == Op::SessionActivity)
            .filter_map(|e| {
                let r = e.record.session.as_ref().filter(|r| r.id == id)?;
                let (aid, content) = r.activity.clone()?;
                Some(SessionActivity {
                    id: aid,
                    content,
                    actor: e.record.actor.clone(),
                    ledger_index: e.idx,
                    at: e.logged_at,
                })
            })
            .collect())
    }

    /// Appends an activity as the session's agent (or, for a `prompt`, as `actor`, the person
    /// replying). The session's state follows it: an `elicitation` waits for input, an
    /// `error` is an error, anything else makes it active again. The kinds the integration
    /// posts (`response`, `elicitation`, `error` by default) become a comment on the task,
    /// pushed with the agent's attribution line, in the same unit of work.
    ///
    /// `Conflict` for an activity on a `complete` session that is not a `prompt`, and for a
    /// repeated id whose content differs.
    pub async fn append_activity(
        &self,
        ws: &WorkspaceId,
        id: SessionId,
        actor: Option<&Actor>,
        new: NewActivity,
    ) -> Result<ActivityReceipt, Error> {
        new.content.check()?;
        if let Some(aid) = &new.id
            && (aid.trim().is_empty()
                || aid.len() > MAX_ACTIVITY_ID
                || aid.chars().any(char::is_control))
        {
            return Err(InvalidInput::new(
                "id",
                format!("1..={MAX_ACTIVITY_ID} bytes without control characters"),
            )
            .into());
        }
        if let Some(a) = actor {
            a.validate()?;
        }
        let digest = new.content.digest();
        let activity_id = new
            .id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let mut tries = self.inner.config.conflict_retries.max(1);
        loop {
            let current = self.session(ws, id).await?;
            if let Some(seen) = current.activities.iter().find(|a| a.id == activity_id) {
                if seen.digest != digest {
                    return Err(Error::Conflict(format!(
                        "activity {activity_id} was appended with another content"
                    )));
                }
                let index = self
                    .session_activities(ws, id)
                    .await?
                    .into_iter()
                    .find(|a| a.id == activity_id)
                    .map(|a| a.ledger_index)
                    .ok_or_else(|| Error::NotFound(format!("activity {activity_id}")))?;
                return Ok(ActivityReceipt {
                    activity_id,
                    ledger_index: index,
                    repeated: true,
                    state: current.state,
                    comment_id: seen.comment_id,
                });
            }
            if current.state == SessionState::Complete && new.content.kind != ActivityKind::Prompt {
                return Err(Error::Conflict(format!(
                    "session {id} is complete: only a person's prompt reopens it"
                )));
            }
            let task = self.session_task(ws, current.task_id).await?;
            let who = match (new.content.kind, actor) {
                (ActivityKind::Prompt, Some(a)) => a.clone(),
                (ActivityKind::Prompt, None) => principal_actor(&current),
                (_, _) => current.agent.clone(),
            };
            let ctx = internal_action(&who, ActionId::new());
            let mut uow = UnitOfWork::new(ws.clone());
            let mut next = current.clone();
            let comment_id = self
                .post_activity(&task, &current, &new.content, &ctx, &mut uow)
                .await?;
            next.activities.push(ActivityRef {
                id: activity_id.clone(),
                kind: new.content.kind,
                digest: digest.clone(),
                comment_id,
                at: ctx.observed_at,
            });
            let before = next.state;
            next.state = state_after(new.content.kind);
            next.last_activity_at = ctx.observed_at;
            next.updated_at = ctx.observed_at;
            uow.ledger.push(session_draft(
                &task,
                &next,
                Op::SessionActivity,
                SessionRecord {
                    id,
                    state: (next.state != before).then_some(next.state),
                    activity: Some((activity_id.clone(), new.content.clone())),
                    artifact: None,
                },
                &ctx,
            ));
            if next.state != before {
                self.refresh_session_link(&task, &mut next).await;
            }
            if let (true, Some(i)) = (next.has_pending_links(), next.integration_id) {
                uow.enqueue_push = Some((task.id, i));
            }
            let state = next.state;
            next.revision += 1;
            uow.sessions.push(SessionWrite {
                session: next,
                expected_revision: Some(current.revision),
            });
            match self.inner.store.commit(uow).await {
                Ok(receipt) => {
                    let ledger_index = receipt
                        .entries
                        .iter()
                        .find(|e| e.record.op == Op::SessionActivity)
                        .map(|e| e.idx)
                        .unwrap_or_default();
                    return Ok(ActivityReceipt {
                        activity_id,
                        ledger_index,
                        repeated: false,
                        state,
                        comment_id,
                    });
                }
                Err(StoreError::Conflict(_)) if tries > 1 => tries -= 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Adds an artifact (`https`, or `http` where the engine allows it); it is shown as a
    /// link on the provider's task. Returns it with its ledger entry's index.
    pub async fn add_artifact(
        &self,
        ws: &WorkspaceId,
        id: SessionId,
        title: &str,
        url: &str,
        kind: Option<&str>,
    ) -> Result<(Artifact, u64), Error> {
        if title.trim().is_empty() || title.len() > 255 || title.chars().any(char::is_control) {
            return Err(
                InvalidInput::new("title", "1..=255 bytes without control characters").into(),
            );
        }
        let parsed: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| InvalidInput::new("url", e.to_string()))?;
        let scheme_ok = parsed.scheme_str() == Some("https")
            || (parsed.scheme_str() == Some("http") && self.inner.config.allow_http_links);
        if !scheme_ok || parsed.host().is_none_or(str::is_empty) || url.len() > 2048 {
            return Err(InvalidInput::new(
                "url",
                if self.inner.config.allow_http_links {
                    "must be an http(s) URL with a host"
                } else {
                    "must be an https URL with a host"
                },
            )
            .into());
        }
        let artifact = Artifact {
            id: uuid::Uuid::now_v7(),
            title: title.trim().to_owned(),
            url: url.to_owned(),
            kind: kind.map(str::to_owned).filter(|k| !k.trim().is_empty()),
        };
        let a = artifact.clone();
        let (index, _) = self
            .change_session(ws, id, move |task, s| {
                s.artifacts.push(a.clone());
                s.links.push(SessionLink {
                    global_id: format!("ordonis:artifact:{}", a.id),
                    external_id: None,
                    title: a.title.clone(),
                    url: a.url.clone(),
                    pending: task.link().is_some(),
                    error: None,
                });
                Some((
                    Op::SessionArtifact,
                    SessionRecord {
                        id: s.id,
                        state: None,
                        activity: None,
                        artifact: Some(a.clone()),
                    },
                ))
            })
            .await?;
        Ok((artifact, index.unwrap_or_default()))
    }

    /// Sets a session's state as its agent (`complete` when done). Returns the session.
    pub async fn set_session_state(
        &self,
        ws: &WorkspaceId,
        id: SessionId,
        state: SessionState,
    ) -> Result<AgentSession, Error> {
        let (_, s) = self
            .change_session(ws, id, move |_, s| {
                if s.state == state {
                    return None;
                }
                s.state = state;
                Some((
                    Op::SessionState,
                    SessionRecord {
                        id: s.id,
                        state: Some(state),
                        activity: None,
                        artifact: None,
                    },
                ))
            })
            .await?;
        Ok(s)
    }

    /// Marks the sessions idle for longer than
    /// [`session_stale_after`](crate::EngineConfig::session_stale_after) `stale`, each with
    /// its ledger entry (the actor is Ordonis itself). Returns how many it marked; workers
    /// call it as they run.
    pub async fn mark_stale_sessions(&self) -> Result<usize, Error> {
        let before = OffsetDateTime::now_utc() - self.inner.config.session_stale_after;
        let idle = self.inner.store.idle_sessions(before, 100).await?;
        let mut n = 0;
        for s in idle {
            let marked = self
                .change_session_as(&s.workspace_id, s.id, Some(Actor::system()), move |_, s| {
                    if !crate::store::rules::session_idle(s, before) {
                        return None;
                    }
                    s.state = SessionState::Stale;
                    Some((
                        Op::SessionState,
                        SessionRecord {
                            id: s.id,
                            state: Some(SessionState::Stale),
                            activity: None,
                            artifact: None,
                        },
                    ))
                })
                .await;
            match marked {
                Ok((Some(_), _)) => n += 1,
                Ok((None, _)) | Err(Error::NotFound(_) | Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// The workspace's ledger as a change feed: the entries after index `after` (all of them
    /// for `None`), at most `limit`, in order. A host that stores the last index it handled
    /// never misses an entry and never sees one twice.
    pub async fn feed(
        &self,
        ws: &WorkspaceId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, Error> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        Ok(self
            .inner
            .store
            .ledger_entries(ws, from, limit.clamp(1, 1000))
            .await?)
    }

    async fn change_session(
        &self,
        ws: &WorkspaceId,
        id: SessionId,
        change: impl Fn(&Task, &mut AgentSession) -> Option<(Op, SessionRecord)>,
    ) -> Result<(Option<u64>, AgentSession), Error> {
        self.change_session_as(ws, id, None, change).await
    }

    /// Applies `change` to a session as its agent (or `actor`), with its ledger entry, the
    /// session's refreshed link and the push; recomputed while concurrent writers interfere.
    /// Returns the entry's index (`None` when `change` had nothing to do) and the session.
    async fn change_session_as(
        &self,
        ws: &WorkspaceId,
        id: SessionId,
        actor: Option<Actor>,
        change: impl Fn(&Task, &mut AgentSession) -> Option<(Op, SessionRecord)>,
    ) -> Result<(Option<u64>, AgentSession), Error> {
        let mut tries = self.inner.config.conflict_retries.max(1);
        loop {
            let current = self.session(ws, id).await?;
            let task = self.session_task(ws, current.task_id).await?;
            let mut next = current.clone();
            let Some((op, record)) = change(&task, &mut next) else {
                return Ok((None, current));
            };
            let who = actor.clone().unwrap_or_else(|| current.agent.clone());
            let ctx = internal_action(&who, ActionId::new());
            next.updated_at = ctx.observed_at;
            if next.state != current.state {
                self.refresh_session_link(&task, &mut next).await;
            }
            let mut uow = UnitOfWork::new(ws.clone());
            uow.ledger
                .push(session_draft(&task, &next, op, record, &ctx));
            if let (true, Some(i)) = (next.has_pending_links(), next.integration_id) {
                uow.enqueue_push = Some((task.id, i));
            }
            next.revision += 1;
            uow.sessions.push(SessionWrite {
                session: next.clone(),
                expected_revision: Some(current.revision),
            });
            match self.inner.store.commit(uow).await {
                Ok(receipt) => return Ok((receipt.entries.first().map(|e| e.idx), next)),
                Err(StoreError::Conflict(_)) if tries > 1 => tries -= 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The task a session works on, while it can be worked on.
    async fn session_task(&self, ws: &WorkspaceId, task_id: TaskId) -> Result<Task, Error> {
        let task = self
            .inner
            .store
            .workspace_task(ws, task_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task {task_id}")))?;
        if task.deleted || task.out_of_scope {
            return Err(Error::Conflict(format!(
                "task {task_id} was deleted in the provider or is out of its integration's \
                 scope"
            )));
        }
        Ok(task)
    }

    /// Sets the session's own link (title with its state, URL from the integration's
    /// template) and marks it for the next push when it changed.
    async fn refresh_session_link(&self, task: &Task, s: &mut AgentSession) {
        let Some(link) = task.link() else { return };
        let Ok(loaded) = self.load(link.integration_id).await else {
            return;
        };
        let Some(template) = loaded.config.sessions.url_template.as_deref() else {
            return;
        };
        let url = template
            .replace("{session}", &s.id.to_string())
            .replace("{task}", &task.id.to_string());
        let title = session_title(s);
        let global_id = format!("ordonis:session:{}", s.id);
        match s.links.iter_mut().find(|l| l.global_id == global_id) {
            Some(l) if l.title == title && l.url == url => {}
            Some(l) => {
                l.title = title;
                l.url = url;
                l.pending = true;
                l.error = None;
            }
            None => s.links.insert(
                0,
                SessionLink {
                    global_id,
                    external_id: None,
                    title,
                    url,
                    pending: true,
                    error: None,
                },
            ),
        }
    }

    /// Posts an activity as a comment when the task's integration posts its kind; the
    /// comment's id.
    async fn post_activity(
        &self,
        task: &Task,
        s: &AgentSession,
        content: &ActivityContent,
        ctx: &EntryContext,
        uow: &mut UnitOfWork,
    ) -> Result<Option<CommentId>, Error> {
        // A person's reply is their comment already.
        if content.kind == ActivityKind::Prompt {
            return Ok(None);
        }
        let Some(link) = task.link() else {
            return Ok(None);
        };
        let loaded = match self.load(link.integration_id).await {
            Ok(l) => l,
            Err(Error::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if !loaded.config.sessions.post_kinds.contains(&content.kind) {
            return Ok(None);
        }
        let text = content.body.clone().unwrap_or_default();
        let body = match content.kind {
            ActivityKind::Elicitation => format!("**Question:** {text}"),
            ActivityKind::Error => format!("**Error:** {text}"),
            _ => text,
        };
        check_comment_body(&body)?;
        let settings = loaded.config.comments;
        let pushes = settings.direction.outbound() && loaded.provider.comments().is_some();
        let comment = TaskComment {
            id: CommentId::new(),
            workspace_id: task.workspace_id.clone(),
            task_id: task.id,
            revision: 1,
            author: s.agent.clone(),
            source: COLLABHUB_SOURCE.to_owned(),
            body,
            integration_id: Some(link.integration_id),
            external_id: None,
            created_at: ctx.observed_at,
            edited_at: None,
            deleted: false,
            remote_version_ms: None,
            sync: pushes.then(|| CommentSync::pending(CommentOp::Post)),
        };
        uow.ledger.push(comment_draft(
            task,
            &comment,
            Op::CommentAdd,
            Outcome::Applied,
            settings.rule_text(),
            ctx,
        ));
        if pushes {
            uow.enqueue_push = Some((task.id, link.integration_id));
        }
        let id = comment.id;
        uow.comments.push(CommentWrite {
            comment,
            expected_revision: None,
        });
        Ok(Some(id))
    }
}

/// The state a session is in after an activity of `kind`.
pub(crate) fn state_after(kind: ActivityKind) -> SessionState {
    match kind {
        ActivityKind::Elicitation => SessionState::AwaitingInput,
        ActivityKind::Error => SessionState::Error,
        ActivityKind::Thought
        | ActivityKind::Action
        | ActivityKind::Response
        | ActivityKind::Prompt => SessionState::Active,
    }
}

/// The person a session works for, as an actor (a prompt through the API names no one).
fn principal_actor(s: &AgentSession) -> Actor {
    match s.principal() {
        Some(p) => Actor {
            kind: p.kind,
            id: p.id.clone(),
            display_name: p.display_name.clone(),
            provider: "internal".to_owned(),
            account: None,
            on_behalf_of: Vec::new(),
        },
        None => s.agent.clone(),
    }
}

/// A session's link title: "Triage bot (agent) for Alice Smith — awaiting input".
pub(crate) fn session_title(s: &AgentSession) -> String {
    // The agent named as its comments' attribution line names it.
    format!(
        "{} — {}",
        super::comments::attribution(&s.agent, None),
        s.state.label()
    )
}

/// The ledger entry of a session step.
pub(crate) fn session_draft(
    task: &Task,
    s: &AgentSession,
    op: Op,
    record: SessionRecord,
    ctx: &EntryContext,
) -> LedgerDraft {
    let mut d = task_draft(
        task,
        s.integration_id,
        op,
        Outcome::Applied,
        "agent session".to_owned(),
        ctx,
    );
    d.session = Some(record);
    d
}
