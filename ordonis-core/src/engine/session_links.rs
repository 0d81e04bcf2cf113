//! Showing agent sessions in the provider: the push makes or updates each session's link
//! (its title names the agent, the person and the state) and each artifact's, through the
//! provider's [`LinkProvider`](crate::LinkProvider) (Jira remote links upserted by
//! `globalId`, Asana external attachments), exactly once under retries.

use super::{Engine, Loaded};
use crate::error::Error;
use crate::links::LinkDraft;
use crate::model::ObjectKey;
use crate::session::{AgentSession, SessionWrite};
use crate::store::{OutboxJob, StoreExt, UnitOfWork};

impl Engine {
    /// Pushes the task's sessions' pending links through the job's integration; a failure
    /// that is the job's (an outage, a rate limit) is returned and retried with the job.
    pub(crate) async fn push_session_links(
        &self,
        job: &OutboxJob,
        loaded: &Loaded,
    ) -> Result<(), Error> {
        let Some(lp) = loaded.provider.links() else {
            return Ok(());
        };
        let store = &self.inner.store;
        let ws = &job.workspace_id;
        let sessions: Vec<AgentSession> = store
            .task_sessions(ws, job.task_id)
            .await?
            .into_iter()
            .filter(|s| s.integration_id == Some(job.integration_id) && s.has_pending_links())
            .collect();
        if sessions.is_empty() {
            return Ok(());
        }
        let Some(task) = store.workspace_task(ws, job.task_id).await? else {
            return Ok(());
        };
        let Some(link) = task
            .external
            .iter()
            .find(|l| l.integration_id == job.integration_id)
            .filter(|_| !task.deleted && !task.out_of_scope)
        else {
            return Ok(());
        };
        let key = ObjectKey::new(&link.key.external_id, &link.key.object_type);
        for s in sessions {
            for l in s.links.iter().filter(|l| l.pending) {
                let summary = format!("Ordonis · agent session {}", s.state.as_str());
                let draft = LinkDraft {
                    global_id: &l.global_id,
                    title: &l.title,
                    url: &l.url,
                    summary: Some(&summary),
                };
                let started = std::time::Instant::now();
                let made = lp
                    .upsert_link(&loaded.ctx, &key, &draft, l.external_id.as_deref())
                    .await;
                crate::metrics::push(started.elapsed(), made.is_err());
                let outcome = match made {
                    Ok(remote) => Ok(remote.external_id),
                    Err(e) if e.refuses_the_object() => Err(e.to_string()),
                    Err(e) => return Err(e.into()),
                };
                self.settle_link(&s, &l.global_id, &l.title, &l.url, outcome)
                    .await?;
            }
        }
        Ok(())
    }

    /// Records a link's push on the session as it is now: done when it still shows what was
    /// pushed (a state change meanwhile leaves it pending for the next push).
    async fn settle_link(
        &self,
        s: &AgentSession,
        global_id: &str,
        title: &str,
        url: &str,
        outcome: Result<String, String>,
    ) -> Result<(), Error> {
        let store = self.inner.store.clone();
        let outcome = &outcome;
        self.commit_with_retry(|| {
            let store = store.clone();
            async move {
                let Some(current) = store
                    .session(s.id)
                    .await?
                    .filter(|c| c.workspace_id == s.workspace_id)
                else {
                    return Ok(None);
                };
                let mut next = current.clone();
                let Some(l) = next.links.iter_mut().find(|l| l.global_id == global_id) else {
                    return Ok(None);
                };
                match outcome {
                    Ok(external_id) => {
                        l.external_id = Some(external_id.clone());
                        l.error = None;
                    }
                    Err(why) => l.error = Some(why.clone()),
                }
                if l.title == title && l.url == url {
                    l.pending = false;
                }
                let mut uow = UnitOfWork::new(current.workspace_id.clone());
                if let (true, Some(i)) = (next.has_pending_links(), next.integration_id) {
                    uow.enqueue_push = Some((next.task_id, i));
                }
                next.revision += 1;
                uow.sessions.push(SessionWrite {
                    session: next,
                    expected_revision: Some(current.revision),
                });
                Ok(Some(uow))
            }
        })
        .await?;
        Ok(())
    }
}
