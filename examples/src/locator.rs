//! Lookups the `Store` contract does not offer, because it is workspace-scoped everywhere:
//! which workspace a task or an event belongs to, and which workspaces exist. The API's paths
//! (`/api/tasks/{id}`, `/api/events/{id}/replay`) carry no workspace, so the server reads the
//! two stores' tables directly (read-only, by primary key).

use ordonis_core::{EventId, StoreError, TaskId, WorkspaceId};
use sqlx::{PgPool, SqlitePool};

/// The backend's pool.
#[derive(Clone, Debug)]
pub enum Locator {
    /// SQLite (`ordonis_*` tables).
    Sqlite(SqlitePool),
    /// PostgreSQL (`ordonis.*` tables).
    Postgres(PgPool),
}

fn map(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn ws(s: Option<String>) -> Option<WorkspaceId> {
    s.and_then(|s| WorkspaceId::new(s).ok())
}

impl Locator {
    async fn workspace_of(
        &self,
        sqlite: &'static str,
        pg: &'static str,
        id: uuid::Uuid,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let s: Option<String> = match self {
            Locator::Sqlite(p) => sqlx::query_scalar(sqlite)
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(map)?,
            Locator::Postgres(p) => sqlx::query_scalar(pg)
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(map)?,
        };
        Ok(ws(s))
    }

    /// The workspace of a task.
    pub async fn task_workspace(&self, id: TaskId) -> Result<Option<WorkspaceId>, StoreError> {
        self.workspace_of(
            "SELECT workspace_id FROM ordonis_tasks WHERE id = ?1",
            "SELECT workspace_id FROM ordonis.tasks WHERE id = $1",
            id.0,
        )
        .await
    }

    /// The workspace of an inbox event.
    pub async fn event_workspace(&self, id: EventId) -> Result<Option<WorkspaceId>, StoreError> {
        self.workspace_of(
            "SELECT workspace_id FROM ordonis_webhook_events WHERE id = ?1",
            "SELECT workspace_id FROM ordonis.webhook_events WHERE id = $1",
            id.0,
        )
        .await
    }

    /// Every workspace with an integration or a task, sorted.
    pub async fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        let v: Vec<String> = match self {
            Locator::Sqlite(p) => sqlx::query_scalar(
                "SELECT workspace_id FROM ordonis_integrations
                 UNION SELECT workspace_id FROM ordonis_tasks ORDER BY 1",
            )
            .fetch_all(p)
            .await
            .map_err(map)?,
            Locator::Postgres(p) => sqlx::query_scalar(
                "SELECT workspace_id FROM ordonis.integrations
                 UNION SELECT workspace_id FROM ordonis.tasks ORDER BY 1",
            )
            .fetch_all(p)
            .await
            .map_err(map)?,
        };
        Ok(v.into_iter()
            .filter_map(|s| WorkspaceId::new(s).ok())
            .collect())
    }
}
