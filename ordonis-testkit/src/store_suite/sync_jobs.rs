//! Store-suite cases for the repair loop's sync jobs: one per integration, leased by one
//! claimer at a time, resumed from the saved cursor after a lost lease, re-armed by a
//! finished run, held back by a paused integration.

use std::sync::Arc;
use std::time::Duration;

use ordonis_core::{
    BackfillState, JobState, ListMode, Store, StoreError, StoreExt, SyncFinish, SyncJob, SyncLease,
    SyncSave, SyncSchedule, SyncStatus,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{claim, integration, ws};

fn schedule(
    rec: &ordonis_core::IntegrationRecord,
    mode: ListMode,
    at: OffsetDateTime,
) -> SyncSchedule {
    SyncSchedule {
        integration_id: rec.id,
        workspace_id: rec.workspace_id.clone(),
        mode: Some(mode),
        at,
        status: SyncStatus::default(),
    }
}

async fn claim_one(store: &dyn Store, worker: &str, lease_ms: u64) -> Option<SyncJob> {
    let mut got = store
        .claim_sync(&claim(worker, 10, lease_ms))
        .await
        .unwrap_or_else(|e| panic!("claim_sync: {e}"));
    assert!(got.len() <= 1, "one job per integration: {got:?}");
    got.pop()
}

fn lease_of(job: &SyncJob) -> SyncLease {
    job.lease
        .clone()
        .unwrap_or_else(|| panic!("claimed without a lease: {job:?}"))
}

fn page(cursor: serde_json::Value, start_run: bool, until: OffsetDateTime) -> SyncSave {
    let mut status = SyncStatus::default();
    status.backfill.state = BackfillState::Running;
    SyncSave {
        cursor: Some(cursor),
        status,
        start_run,
        lease_until: until,
        finish: None,
    }
}

/// Scheduling twice keeps one job, due at the earlier time; an unknown integration is
/// `NotFound`.
pub async fn sync_job_is_one_per_integration(store: Arc<dyn Store>) {
    let rec = integration(&*store, &ws("sync-one")).await;
    let now = OffsetDateTime::now_utc();
    let soon = now - Duration::from_secs(1);
    store
        .schedule_sync(&schedule(&rec, ListMode::Backfill, soon))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .schedule_sync(&schedule(
            &rec,
            ListMode::Backfill,
            now + Duration::from_secs(3600),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = store
        .sync_job(rec.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no sync job"));
    assert_eq!(job.mode, ListMode::Backfill);
    assert_eq!(job.state, JobState::Pending);
    assert!(job.next_run_at <= now, "kept the earlier time: {job:?}");
    assert_eq!(job.cursor, None);
    let mut unknown = schedule(&rec, ListMode::Reconcile, now);
    unknown.integration_id = ordonis_core::IntegrationId::new();
    assert!(matches!(
        store.schedule_sync(&unknown).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Of eight concurrent claimers, exactly one leases a due job.
pub async fn sync_job_claimed_once_by_8_claimers(store: Arc<dyn Store>) {
    let rec = integration(&*store, &ws("sync-race")).await;
    store
        .schedule_sync(&schedule(
            &rec,
            ListMode::Reconcile,
            OffsetDateTime::now_utc(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let claims = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { claim_one(&*store, &format!("w{i}"), 60_000).await })
    });
    let mut won = 0;
    for c in claims {
        if c.await.unwrap_or_else(|e| panic!("{e}")).is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

/// A run that lost its lease (a killed worker) is resumed by the next claimer from the cursor
/// its last page saved; the old lease then saves nothing.
pub async fn sync_job_resumes_from_saved_cursor(store: Arc<dyn Store>) {
    let rec = integration(&*store, &ws("sync-resume")).await;
    store
        .schedule_sync(&schedule(
            &rec,
            ListMode::Backfill,
            OffsetDateTime::now_utc(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = claim_one(&*store, "killed", 60_000)
        .await
        .unwrap_or_else(|| panic!("not claimed"));
    assert!(
        claim_one(&*store, "other", 60_000).await.is_none(),
        "leased"
    );
    let old = lease_of(&first);
    // The page is saved with a lease that has already run out: the worker then dies.
    let expired = OffsetDateTime::now_utc() - Duration::from_millis(1);
    store
        .save_sync(&old, &page(json!({"page": 2}), true, expired))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = claim_one(&*store, "successor", 60_000)
        .await
        .unwrap_or_else(|| panic!("the expired lease was not claimable"));
    assert_eq!(second.cursor, Some(json!({"page": 2})));
    assert_eq!(second.mode, ListMode::Backfill);
    assert_eq!(second.run, 1);
    assert_eq!(second.attempts, 2);
    assert_eq!(second.status.backfill.state, BackfillState::Running);
    let later = OffsetDateTime::now_utc() + Duration::from_secs(60);
    assert!(matches!(
        store
            .save_sync(&old, &page(json!({"page": 3}), false, later))
            .await,
        Err(StoreError::LeaseLost(_))
    ));
    let extended = store
        .save_sync(&lease_of(&second), &page(json!({"page": 3}), false, later))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(extended.expires_at, later);
}

/// A finished run re-arms the job for its next run (not due before its time), counts the
/// repairs of the current run only, and a schedule brings the next run forward.
pub async fn sync_job_finish_rearms_and_counts_repairs(store: Arc<dyn Store>) {
    let rec = integration(&*store, &ws("sync-finish")).await;
    store
        .schedule_sync(&schedule(
            &rec,
            ListMode::Backfill,
            OffsetDateTime::now_utc(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = claim_one(&*store, "w", 60_000)
        .await
        .unwrap_or_else(|| panic!("not claimed"));
    let until = OffsetDateTime::now_utc() + Duration::from_secs(60);
    let lease = store
        .save_sync(&lease_of(&job), &page(json!({"since": 1}), true, until))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .add_sync_repaired(rec.id, 1, 3)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut done = page(json!({"since": 2}), false, until);
    done.finish = Some(SyncFinish {
        mode: ListMode::Reconcile,
        at: OffsetDateTime::now_utc() + Duration::from_secs(3600),
        failed: false,
        refund_attempt: false,
    });
    store
        .save_sync(&lease, &done)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A late event of an older run counts in the total only.
    store
        .add_sync_repaired(rec.id, 0, 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = store
        .sync_job(rec.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("gone"));
    assert_eq!(
        (
            job.state,
            job.mode,
            job.run,
            job.repaired,
            job.repaired_total,
            job.attempts
        ),
        (JobState::Pending, ListMode::Reconcile, 1, 3, 5, 0)
    );
    assert_eq!(job.cursor, Some(json!({"since": 2})));
    assert!(job.lease.is_none());
    assert!(
        claim_one(&*store, "w", 60_000).await.is_none(),
        "not due yet"
    );
    store
        .schedule_sync(&SyncSchedule {
            mode: None,
            ..schedule(&rec, ListMode::Backfill, OffsetDateTime::now_utc())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let again = claim_one(&*store, "w", 60_000)
        .await
        .unwrap_or_else(|| panic!("scheduled now but not claimed"));
    assert_eq!(again.mode, ListMode::Reconcile, "mode kept");
}

/// A failed run stops the job until it is scheduled again; a paused integration's job waits.
pub async fn sync_job_failed_and_paused_wait(store: Arc<dyn Store>) {
    let rec = integration(&*store, &ws("sync-failed")).await;
    store
        .schedule_sync(&schedule(
            &rec,
            ListMode::Backfill,
            OffsetDateTime::now_utc(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let job = claim_one(&*store, "w", 60_000)
        .await
        .unwrap_or_else(|| panic!("not claimed"));
    let mut failed = page(json!(null), false, OffsetDateTime::now_utc());
    failed.cursor = None;
    failed.finish = Some(SyncFinish {
        mode: ListMode::Backfill,
        at: OffsetDateTime::now_utc(),
        failed: true,
        refund_attempt: false,
    });
    store
        .save_sync(&lease_of(&job), &failed)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        claim_one(&*store, "w", 60_000).await.is_none(),
        "a failed job waits"
    );
    assert_eq!(
        store
            .sync_job(rec.id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|j| (j.state, j.cursor)),
        Some((JobState::Failed, None))
    );
    store
        .set_paused_until(
            rec.id,
            Some(OffsetDateTime::now_utc() + Duration::from_secs(3600)),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .schedule_sync(&schedule(
            &rec,
            ListMode::Backfill,
            OffsetDateTime::now_utc(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(claim_one(&*store, "w", 60_000).await.is_none(), "paused");
    store
        .set_paused_until(rec.id, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(claim_one(&*store, "w", 60_000).await.is_some(), "resumed");
}
