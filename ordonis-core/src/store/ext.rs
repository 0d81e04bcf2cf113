//! [`StoreExt`]: the typed and convenience calls every [`Store`] gets for free, written once
//! over the store's required methods (as `object_store` does with its extension trait).

use async_trait::async_trait;

use super::{
    ClaimRequest, EventFilter, InboxEvent, IntegrationUpdate, Job, JobFilter, JobId, JobState,
    OutboxJob, Queue, Store, TaskPage,
};
use crate::error::StoreError;
use crate::ids::{EventId, IntegrationId, OutboxId, TaskId, WorkspaceId};
use crate::task::Task;
use time::OffsetDateTime;

/// Typed and workspace-scoped calls over any [`Store`]. Import it with the store
/// (`use ordonis_core::{Store, StoreExt}`).
#[async_trait]
pub trait StoreExt: Store {
    /// Claims due inbox events.
    async fn claim_events(&self, req: &ClaimRequest) -> Result<Vec<InboxEvent>, StoreError> {
        Ok(self
            .claim(Queue::Inbox, req)
            .await?
            .into_iter()
            .filter_map(Job::into_event)
            .collect())
    }

    /// Claims due outbox pushes.
    async fn claim_pushes(&self, req: &ClaimRequest) -> Result<Vec<OutboxJob>, StoreError> {
        Ok(self
            .claim(Queue::Outbox, req)
            .await?
            .into_iter()
            .filter_map(Job::into_push)
            .collect())
    }

    /// One row of a workspace: `None` when it does not exist or belongs to another workspace.
    async fn workspace_job(&self, ws: &WorkspaceId, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.job(id).await?.filter(|j| j.workspace_id() == ws))
    }

    /// One inbox event of a workspace.
    async fn event(&self, ws: &WorkspaceId, id: EventId) -> Result<Option<InboxEvent>, StoreError> {
        Ok(self
            .workspace_job(ws, JobId::Event(id))
            .await?
            .and_then(Job::into_event))
    }

    /// One outbox push of a workspace.
    async fn push(&self, ws: &WorkspaceId, id: OutboxId) -> Result<Option<OutboxJob>, StoreError> {
        Ok(self
            .workspace_job(ws, JobId::Push(id))
            .await?
            .and_then(Job::into_push))
    }

    /// A workspace's inbox events, newest first.
    async fn events(
        &self,
        ws: &WorkspaceId,
        filter: &EventFilter,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let filter = JobFilter {
            queue: Queue::Inbox,
            workspace_id: Some(ws.clone()),
            integration_id: filter.integration_id,
            state: filter.state,
            limit: filter.limit,
            after: None,
        };
        Ok(self
            .jobs(&filter)
            .await?
            .into_iter()
            .filter_map(Job::into_event)
            .collect())
    }

    /// A workspace's outbox pushes, newest first (up to the default limit).
    async fn pushes(&self, ws: &WorkspaceId) -> Result<Vec<OutboxJob>, StoreError> {
        let filter = JobFilter {
            workspace_id: Some(ws.clone()),
            ..JobFilter::new(Queue::Outbox)
        };
        Ok(self
            .jobs(&filter)
            .await?
            .into_iter()
            .filter_map(Job::into_push)
            .collect())
    }

    /// Replays a failed or dead inbox event.
    async fn replay_event(&self, ws: &WorkspaceId, id: EventId) -> Result<(), StoreError> {
        self.replay(ws, JobId::Event(id)).await
    }

    /// Replays a failed or dead push.
    async fn replay_push(&self, ws: &WorkspaceId, id: OutboxId) -> Result<(), StoreError> {
        self.replay(ws, JobId::Push(id)).await
    }

    /// The inbox's row counts by state.
    async fn event_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        self.job_counts(Queue::Inbox).await
    }

    /// The outbox's row counts by state.
    async fn push_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        self.job_counts(Queue::Outbox).await
    }

    /// One task of a workspace: `None` when it does not exist or belongs to another workspace.
    async fn workspace_task(
        &self,
        ws: &WorkspaceId,
        id: TaskId,
    ) -> Result<Option<Task>, StoreError> {
        Ok(self.task(id).await?.filter(|t| &t.workspace_id == ws))
    }

    /// Every task of a workspace, in id order, read page by page.
    async fn all_tasks(&self, ws: &WorkspaceId) -> Result<Vec<Task>, StoreError> {
        let mut out: Vec<Task> = Vec::new();
        let mut page = TaskPage::first(TaskPage::DEFAULT_LIMIT);
        loop {
            let batch = self.tasks(ws, &page).await?;
            let full = batch.len() >= page.effective_limit();
            out.extend(batch);
            match out.last() {
                Some(last) if full => page.after = Some(last.id),
                _ => return Ok(out),
            }
        }
    }

    /// Pauses (or, with `None`, resumes) every worker's use of an integration.
    async fn set_paused_until(
        &self,
        id: IntegrationId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let update = IntegrationUpdate {
            paused_until: Some(until),
            ..IntegrationUpdate::default()
        };
        self.update_integration(id, &update).await
    }
}

impl<S: Store + ?Sized> StoreExt for S {}
