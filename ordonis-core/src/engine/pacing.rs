//! The repair loop's pace under the provider's API budget: the newest budget seen (this
//! process's provider or the copy saved on the sync job by any process), when a step holds
//! off, how long it waits after a page, and the budget as the API and console show it.

use time::OffsetDateTime;

use super::{Engine, Loaded};
use crate::budget::ApiBudget;
use crate::error::Error;
use crate::ids::IntegrationId;
use crate::store::{SyncJob, SyncStatus};

impl Engine {
    /// The newest budget known for an integration: what the provider's answers showed in
    /// this process, or the copy a repair step saved (perhaps in another process).
    pub(super) fn budget_seen(&self, loaded: &Loaded, status: &SyncStatus) -> Option<ApiBudget> {
        ApiBudget::newest(
            status.budget.clone(),
            loaded.provider.budget(loaded.record.id),
        )
    }

    /// When the next step of a run that goes on is due after a page listed at `now`: at
    /// once, or later while the budget is near its limit (see [`ApiBudget::repair_gap`] and
    /// [`ApiBudget::repair_hold`]).
    pub(super) fn next_page_at(
        &self,
        budget: Option<&ApiBudget>,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        let Some(b) = budget else {
            return now;
        };
        if let Some(hold) = b.repair_hold(now) {
            return hold;
        }
        now + b.repair_gap(now, self.inner.config.near_limit_gap)
    }

    /// The API budget of an integration as the API and console show it: the newest seen,
    /// with the integration's own pause (set by any worker that met a quota limit) when it
    /// is later than the one recorded. `None` when nothing is known.
    pub async fn api_budget(&self, id: IntegrationId) -> Result<Option<ApiBudget>, Error> {
        // A disabled integration still shows what was last known (no secrets are opened).
        let record = self
            .inner
            .store
            .integration(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("integration {id}")))?;
        let live = self
            .inner
            .providers
            .get(&record.provider)
            .and_then(|p| p.budget(id));
        let saved = self
            .inner
            .store
            .sync_job(id)
            .await?
            .and_then(|j: SyncJob| j.status.budget);
        let mut budget = ApiBudget::newest(saved, live);
        let now = OffsetDateTime::now_utc();
        if let Some(p) = record.paused_until.filter(|p| *p > now) {
            let b = budget.get_or_insert_with(ApiBudget::default);
            if b.paused_until.is_none_or(|q| q < p) {
                b.paused_until = Some(p);
            }
        }
        Ok(budget)
    }
}

impl Engine {
    /// Releases a sync job without listing: the budget says the repair loop holds off until
    /// `until` (the attempt is given back; the run resumes at its page).
    pub(super) async fn hold_step(
        &self,
        job: &SyncJob,
        lease: crate::store::SyncLease,
        status: SyncStatus,
        until: OffsetDateTime,
    ) -> Result<super::SyncStep, Error> {
        let save = crate::store::SyncSave {
            cursor: job.cursor.clone(),
            status,
            start_run: false,
            lease_until: OffsetDateTime::now_utc(),
            finish: Some(crate::store::SyncFinish {
                mode: job.mode,
                at: until,
                failed: false,
                refund_attempt: true,
            }),
        };
        self.inner.store.save_sync(&lease, &save).await?;
        Ok(super::SyncStep::default())
    }
}
