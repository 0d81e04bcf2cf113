//! Deleting the webhooks Ordonis registered once they are no longer wanted: their project
//! left the scope (found by a reconcile's webhook check), or the integration was disabled.
//! Only webhooks Ordonis registered are ever deleted (their ids are kept on the sync job).
//! Until the provider confirms a deletion, the ids stay in the integration's
//! [`retired_webhooks`](crate::IntegrationConfig::retired_webhooks): a failed deletion is
//! retried by the next reconcile run or, for a disabled integration (whose sync job no longer
//! runs), by the workers' periodic sweep ([`Engine::delete_retired_webhooks`]).

use super::{Engine, Loaded};
use crate::error::Error;
use crate::store::{IntegrationState, IntegrationUpdate};

impl Engine {
    /// Deletes `more` and the integration's earlier retired webhooks; those whose deletion
    /// failed are kept for the next attempt. What happened, for the webhook report (`None`
    /// when there was nothing to delete).
    pub(super) async fn retire_webhooks(&self, loaded: &Loaded, more: &[String]) -> Option<String> {
        let mut pending = loaded.config.retired_webhooks.clone();
        for id in more {
            if !pending.contains(id) {
                pending.push(id.clone());
            }
        }
        if pending.is_empty() {
            return None;
        }
        let outcome = match loaded.provider.repair() {
            Some(r) => r.delete_webhooks(&loaded.ctx, &pending).await,
            None => Ok(()),
        };
        let (left, detail) = match outcome {
            Ok(()) => (
                Vec::new(),
                format!(
                    "deleted webhook {} (no longer in the scope)",
                    pending.join(", ")
                ),
            ),
            Err(e) => {
                let d = format!(
                    "could not delete webhook {}: {e} (retried at the next reconcile)",
                    pending.join(", ")
                );
                (pending, d)
            }
        };
        if left != loaded.config.retired_webhooks
            && let Err(e) = self.keep_retired(loaded, left).await
        {
            tracing::warn!(integration = %loaded.record.id, error = %e, "could not record the webhooks to delete");
        }
        Some(detail)
    }

    /// Records the retired webhooks left to delete on the integration (as it is now in the
    /// store, disabled or not).
    async fn keep_retired(&self, loaded: &Loaded, left: Vec<String>) -> Result<(), Error> {
        let Some(record) = self.inner.store.integration(loaded.record.id).await? else {
            return Ok(());
        };
        let mut config = self.open(record)?.config;
        config.retired_webhooks = left;
        let config = serde_json::to_value(&config)
            .map_err(|e| crate::error::InvalidInput::new("config", e.to_string()))?;
        self.inner
            .store
            .update_integration(
                loaded.record.id,
                &IntegrationUpdate {
                    config: Some(config),
                    ..IntegrationUpdate::default()
                },
            )
            .await?;
        self.forget_loaded(loaded.record.id);
        Ok(())
    }

    /// Deletes the retired webhooks of disabled integrations (whose repair loop no longer
    /// runs): the workers call it now and then. The number of integrations whose webhooks
    /// are now all deleted.
    pub async fn delete_retired_webhooks(&self) -> Result<usize, Error> {
        let mut done = 0;
        for ws in self.inner.store.workspaces().await? {
            for record in self.inner.store.integrations(&ws).await? {
                if record.state != IntegrationState::Disabled
                    || record
                        .config
                        .get("retired_webhooks")
                        .and_then(serde_json::Value::as_array)
                        .is_none_or(Vec::is_empty)
                {
                    continue;
                }
                let id = record.id;
                let loaded = match self.open(record) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(integration = %id, error = %e, "cannot open a disabled integration to delete its webhooks");
                        continue;
                    }
                };
                self.retire_webhooks(&loaded, &[]).await;
                if let Some(r) = self.inner.store.integration(id).await?
                    && r.config
                        .get("retired_webhooks")
                        .and_then(serde_json::Value::as_array)
                        .is_none_or(Vec::is_empty)
                {
                    done += 1;
                }
            }
        }
        Ok(done)
    }
}
