//! `MemoryStore`'s sync jobs: one per integration, leased like a queue row (the SQL stores
//! run the same transitions as statements; the store suite holds both to them).

use std::collections::{BTreeMap, HashSet};

use ordonis_core::{
    ClaimRequest, IntegrationId, JobState, ListMode, StoreError, SyncJob, SyncLease, SyncSave,
    SyncSchedule,
};
use time::OffsetDateTime;

/// The sync jobs, by integration.
#[derive(Debug, Default)]
pub(crate) struct SyncJobs {
    jobs: BTreeMap<IntegrationId, SyncJob>,
}

impl SyncJobs {
    pub(crate) fn schedule(&mut self, s: &SyncSchedule) {
        match self.jobs.get_mut(&s.integration_id) {
            None => {
                self.jobs.insert(
                    s.integration_id,
                    SyncJob {
                        integration_id: s.integration_id,
                        workspace_id: s.workspace_id.clone(),
                        mode: s.mode.unwrap_or(ListMode::Reconcile),
                        state: JobState::Pending,
                        attempts: 0,
                        next_run_at: s.at,
                        cursor: None,
                        status: s.status.clone(),
                        run: 0,
                        repaired: 0,
                        repaired_total: 0,
                        lease: None,
                    },
                );
            }
            Some(job) => {
                if let Some(m) = s.mode
                    && job.state != JobState::Processing
                {
                    job.mode = m;
                }
                match job.state {
                    JobState::Processing => {}
                    JobState::Pending => {
                        job.next_run_at = job.next_run_at.min(s.at);
                        job.attempts = 0;
                    }
                    _ => {
                        job.state = JobState::Pending;
                        job.next_run_at = s.at;
                        job.attempts = 0;
                    }
                }
            }
        }
    }

    pub(crate) fn claim(
        &mut self,
        req: &ClaimRequest,
        paused: &HashSet<IntegrationId>,
        at: OffsetDateTime,
    ) -> Vec<SyncJob> {
        let mut due: Vec<&mut SyncJob> = self
            .jobs
            .values_mut()
            .filter(|j| !paused.contains(&j.integration_id))
            .filter(|j| match (&j.state, &j.lease) {
                (JobState::Pending, _) => j.next_run_at <= at,
                (JobState::Processing, Some(l)) => l.expires_at <= at,
                _ => false,
            })
            .collect();
        due.sort_by_key(|j| (j.next_run_at, j.integration_id.0));
        let expires_at = at + req.lease;
        due.into_iter()
            .take(req.limit)
            .map(|j| {
                j.attempts += 1;
                j.state = JobState::Processing;
                j.lease = Some(SyncLease {
                    integration_id: j.integration_id,
                    owner: req.worker.clone(),
                    attempt: j.attempts,
                    expires_at,
                });
                j.clone()
            })
            .collect()
    }

    pub(crate) fn save(
        &mut self,
        lease: &SyncLease,
        save: &SyncSave,
    ) -> Result<SyncLease, StoreError> {
        let job = self
            .jobs
            .get_mut(&lease.integration_id)
            .filter(|j| j.state == JobState::Processing && j.lease.as_ref() == Some(lease))
            .ok_or_else(|| lease_lost(lease))?;
        job.cursor = save.cursor.clone();
        job.status = save.status.clone();
        if save.start_run {
            job.run += 1;
            job.repaired = 0;
        }
        let extended = SyncLease {
            expires_at: save.lease_until,
            ..lease.clone()
        };
        match &save.finish {
            None => job.lease = Some(extended.clone()),
            Some(f) => {
                job.lease = None;
                job.mode = f.mode;
                job.next_run_at = f.at;
                job.state = if f.failed {
                    JobState::Failed
                } else {
                    JobState::Pending
                };
                job.attempts = if f.refund_attempt {
                    job.attempts.saturating_sub(1)
                } else {
                    0
                };
            }
        }
        Ok(extended)
    }

    pub(crate) fn get(&self, id: IntegrationId) -> Option<SyncJob> {
        self.jobs.get(&id).cloned()
    }

    pub(crate) fn add_repaired(&mut self, id: IntegrationId, run: u64, fields: u64) {
        if let Some(j) = self.jobs.get_mut(&id) {
            j.repaired_total += fields;
            if j.run == run {
                j.repaired += fields;
            }
        }
    }
}

/// The refusal of a stale sync lease.
pub(crate) fn lease_lost(lease: &SyncLease) -> StoreError {
    StoreError::LeaseLost(format!(
        "sync job of integration {} is no longer leased to {} (attempt {})",
        lease.integration_id, lease.owner, lease.attempt
    ))
}
