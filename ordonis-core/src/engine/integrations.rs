//! The integration life cycle: checking settings when an integration is created or changed,
//! changing them (with a ledger entry that says who changed what, never a secret), pausing,
//! and disabling.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{Engine, Loaded};
use crate::actor::Actor;
use crate::config::IntegrationConfig;
use crate::error::{Error, InvalidInput};
use crate::ids::{ActionId, IntegrationId, TaskId};
use crate::ledger::{LedgerDraft, Op, Outcome};
use crate::listing::ListMode;
use crate::model::Field;
use crate::policy::FieldRule;
use crate::provider::{ConfigToCheck, Provider};
use crate::secrets::{ApiAuth, IntegrationSecrets};
use crate::store::{
    IntegrationRecord, IntegrationState, IntegrationUpdate, SyncSchedule, SyncStatus, UnitOfWork,
};
use time::OffsetDateTime;

/// A change to an integration's settings; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default)]
pub struct IntegrationChange {
    /// New API credentials.
    pub auth: Option<ApiAuth>,
    /// The full list of valid webhook secrets, newest first. Rotation: send the old and the
    /// new secret, then later the new one alone; both are valid in between.
    pub webhook_secrets: Option<Vec<String>>,
    /// The per-field policy overrides (replacing the current ones).
    pub field_policy: Option<BTreeMap<Field, FieldRule>>,
    /// The provider options (checked by the provider).
    pub options: Option<serde_json::Value>,
    /// Pause (`true`) or resume (`false`) syncing.
    pub paused: Option<bool>,
    /// A new scope (checked by the provider, as at creation). A changed scope re-runs the
    /// backfill over it (importing what is new), then an id sweep takes what left it out of
    /// scope, and the next webhook check deletes the webhooks of what left.
    pub scope: Option<serde_json::Value>,
    /// A new reconcile interval, seconds (at least 1).
    pub reconcile_every_s: Option<u64>,
    /// Whether the engine registers (and re-creates) the provider's webhooks itself. Turned
    /// off, the webhooks registered so far stay.
    pub register_webhook: Option<bool>,
    /// A new id-sweep interval, seconds (`0`: only when the scope changes).
    pub sweep_every_s: Option<u64>,
    /// Re-run the backfill now (over the scope, the new one when it changes too).
    pub backfill: bool,
}

fn no_control_chars(what: &str, value: &str) -> Result<(), InvalidInput> {
    if value.chars().any(char::is_control) {
        return Err(InvalidInput::new(
            what,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks credentials and options against the provider, and the field policy.
pub(crate) fn check_settings(
    provider: &dyn Provider,
    config: &IntegrationConfig,
    secrets: &IntegrationSecrets,
) -> Result<(), InvalidInput> {
    if let Some(auth) = &secrets.api_auth {
        match auth {
            ApiAuth::Basic { email, api_token } => {
                no_control_chars("auth.email", email)?;
                no_control_chars("auth.api_token", api_token)?;
            }
            ApiAuth::Bearer { token } => no_control_chars("auth.token", token)?,
        }
    }
    for s in &secrets.webhook_secrets {
        no_control_chars("webhook_secrets", s)?;
        if s.trim().is_empty() {
            return Err(InvalidInput::new(
                "webhook_secrets",
                "must not hold empty strings",
            ));
        }
    }
    provider.check_config(&ConfigToCheck {
        options: &config.options,
        scope: &config.scope,
        auth: secrets.api_auth.as_ref(),
    })?;
    if config.sync.reconcile_every_s == 0 {
        return Err(InvalidInput::new(
            "reconcile_every_s",
            "must be at least 1 (seconds)",
        ));
    }
    config.policy().validate()?;
    Ok(())
}

impl Engine {
    /// Changes an integration's settings, checked as at creation, and records the change in
    /// the workspace's ledger in the same commit: who, and which settings (never a secret).
    /// A disabled integration is `NotFound`.
    pub async fn change_integration(
        &self,
        id: IntegrationId,
        change: IntegrationChange,
        actor: &Actor,
    ) -> Result<IntegrationRecord, Error> {
        actor.validate()?;
        let loaded = self.load(id).await?;
        let mut config = loaded.config.clone();
        let mut secrets = loaded.ctx.secrets.clone();
        let mut what = Vec::new();
        if let Some(auth) = change.auth {
            secrets.api_auth = Some(auth);
            what.push("auth".to_owned());
        }
        if let Some(list) = change.webhook_secrets {
            what.push(format!("webhook_secrets ({} valid)", list.len()));
            secrets.webhook_secrets = list.into_iter().map(|s| s.trim().to_owned()).collect();
        }
        if let Some(policy) = change.field_policy {
            config.field_policy = policy;
            what.push("field_policy".to_owned());
        }
        if let Some(options) = change.options {
            config.options = options;
            what.push("options".to_owned());
        }
        let scope_changed = change.scope.as_ref().is_some_and(|s| s != &config.scope);
        if let Some(scope) = change.scope
            && scope_changed
        {
            what.push(format!("scope {} → {scope}", config.scope));
            config.scope = scope;
        }
        let interval_changed = change
            .reconcile_every_s
            .is_some_and(|n| n != config.sync.reconcile_every_s);
        if let Some(n) = change.reconcile_every_s {
            what.push(format!("reconcile_every_s={n}"));
            config.sync.reconcile_every_s = n;
        }
        if let Some(r) = change.register_webhook {
            what.push(format!("register_webhook={r}"));
            config.sync.register_webhook = r;
        }
        if let Some(n) = change.sweep_every_s {
            what.push(format!("sweep_every_s={n}"));
            config.sync.sweep_every_s = n;
        }
        let backfill = (change.backfill || scope_changed) && !config.scope.is_null();
        if backfill {
            what.push("backfill re-run".to_owned());
        }
        check_settings(&*loaded.provider, &config, &secrets)?;
        let state = change.paused.map(|p| {
            what.push(format!("paused={p}"));
            if p {
                IntegrationState::Paused
            } else {
                IntegrationState::Active
            }
        });
        let update = IntegrationUpdate {
            config: Some(
                serde_json::to_value(&config)
                    .map_err(|e| InvalidInput::new("config", e.to_string()))?,
            ),
            secrets: Some(self.inner.keyring.seal(id, &secrets)?),
            paused_until: None,
            state,
        };
        let rec = self
            .commit_integration_change(&loaded, update, actor, &what.join(", "))
            .await?;
        if backfill {
            self.rerun_backfill(&rec).await?;
        } else if interval_changed && !config.scope.is_null() {
            // A shorter interval takes effect now (the earlier due time wins).
            self.inner
                .store
                .schedule_sync(&SyncSchedule {
                    integration_id: rec.id,
                    workspace_id: rec.workspace_id.clone(),
                    mode: None,
                    at: OffsetDateTime::now_utc() + config.sync.reconcile_every(),
                    status: SyncStatus::default(),
                })
                .await?;
        }
        Ok(rec)
    }

    /// Makes the integration's next run a backfill, due now (a first sync job for an
    /// integration that had no scope; an existing job keeps its status). A run underway
    /// finishes first.
    async fn rerun_backfill(&self, rec: &IntegrationRecord) -> Result<(), Error> {
        // A first sync job: its backfill is followed by a sweep, which takes the tasks its
        // webhooks brought from outside the new scope out of it.
        let mut status = SyncStatus::default();
        status.sweep.last_at = Some(OffsetDateTime::now_utc());
        self.inner
            .store
            .schedule_sync(&SyncSchedule {
                integration_id: rec.id,
                workspace_id: rec.workspace_id.clone(),
                mode: Some(ListMode::Backfill),
                at: OffsetDateTime::now_utc(),
                status,
            })
            .await?;
        Ok(())
    }

    /// Disables an integration: its webhook answers as unknown, its jobs stop, its tasks and
    /// its ledger stay. Recorded in the workspace's ledger. The webhooks Ordonis registered
    /// for it are deleted after the commit; one whose deletion fails does not keep it
    /// enabled: it is retried by the workers ([`Engine::delete_retired_webhooks`]).
    pub async fn disable_integration(
        &self,
        id: IntegrationId,
        actor: &Actor,
    ) -> Result<IntegrationRecord, Error> {
        actor.validate()?;
        let loaded = self.load(id).await?;
        let mut config = loaded.config.clone();
        if let Some(job) = self.inner.store.sync_job(id).await? {
            for hook in job.status.webhook.external_ids {
                if !config.retired_webhooks.contains(&hook) {
                    config.retired_webhooks.push(hook);
                }
            }
        }
        let what = if config.retired_webhooks.is_empty() {
            "disabled".to_owned()
        } else {
            format!(
                "disabled; the webhooks it registered are deleted ({})",
                config.retired_webhooks.join(", ")
            )
        };
        let update = IntegrationUpdate {
            state: Some(IntegrationState::Disabled),
            config: Some(
                serde_json::to_value(&config)
                    .map_err(|e| InvalidInput::new("config", e.to_string()))?,
            ),
            ..IntegrationUpdate::default()
        };
        let rec = self
            .commit_integration_change(&loaded, update, actor, &what)
            .await?;
        if !config.retired_webhooks.is_empty() {
            let disabled = Loaded { config, ..loaded };
            if let Some(d) = self.retire_webhooks(&disabled, &[]).await {
                tracing::info!(integration = %id, "{d}");
            }
        }
        Ok(rec)
    }

    async fn commit_integration_change(
        &self,
        loaded: &Loaded,
        update: IntegrationUpdate,
        actor: &Actor,
        what: &str,
    ) -> Result<IntegrationRecord, Error> {
        let rec = &loaded.record;
        let ctx = super::tasks::internal_action(actor, ActionId::new());
        let mut uow = UnitOfWork::new(rec.workspace_id.clone());
        uow.integration = Some((rec.id, update));
        uow.ledger.push(LedgerDraft {
            workspace_id: rec.workspace_id.clone(),
            integration_id: Some(rec.id),
            // An integration entry is about no task.
            task_id: TaskId(Uuid::nil()),
            external: None,
            op: Op::Configure,
            field: None,
            before: None,
            after: None,
            outcome: Outcome::Applied,
            rule: format!("integration {}: {what}", rec.id),
            actor: ctx.actor,
            cause: ctx.cause,
            occurred_at: ctx.occurred_at,
            observed_at: ctx.observed_at,
            comment: None,
            session: None,
        });
        self.inner.store.commit(uow).await?;
        self.forget_loaded(rec.id);
        self.inner
            .store
            .integration(rec.id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("integration {}", rec.id)))
    }
}
