//! The repair loop's sync jobs (`sync_jobs`, one row per integration), written once for
//! every dialect. A claim is a compare-and-set on the row's attempt count rather than a
//! locking read, so the same two statements serve PostgreSQL's many writers and SQLite's
//! one: of two workers racing for a job, the second matches nothing.

use ordonis_core::{
    ClaimRequest, IntegrationId, JobState, ListMode, StoreError, SyncJob, SyncLease, SyncSave,
    SyncSchedule, WorkspaceId,
};
use time::OffsetDateTime;

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::sql;
use crate::tables::{backend, i64_of, limit_of, to_json};

const GET: &str = "SELECT integration_id, workspace_id, mode, state, attempts, next_run_at, \
                   lease_owner, lease_expires_at, cursor, status, run, repaired, repaired_total \
                   FROM {p}sync_jobs WHERE integration_id = $1";
const INTEGRATION_EXISTS: &str = "SELECT id FROM {p}integrations WHERE id = $1";
const INSERT: &str = "INSERT INTO {p}sync_jobs (integration_id, workspace_id, mode, state, \
                      attempts, next_run_at, status) VALUES ($1, $2, $3, 'pending', 0, $4, $5)";
const REARM: &str = "UPDATE {p}sync_jobs SET mode = $2, next_run_at = $3, state = 'pending', \
                     attempts = 0 WHERE integration_id = $1 AND state <> 'processing'";
const DUE: &str = "SELECT s.integration_id, s.attempts FROM {p}sync_jobs s \
                   WHERE ((s.state = 'pending' AND s.next_run_at <= $1) \
                       OR (s.state = 'processing' AND s.lease_expires_at <= $1)) \
                     AND NOT EXISTS (SELECT 1 FROM {p}integrations i WHERE i.id = s.integration_id \
                                     AND (i.paused_until > $1 OR i.state <> 'active')) \
                   ORDER BY s.next_run_at, s.integration_id LIMIT $2";
const CLAIM: &str = "UPDATE {p}sync_jobs SET state = 'processing', attempts = attempts + 1, \
                     lease_owner = $3, lease_expires_at = $4 \
                     WHERE integration_id = $1 AND attempts = $2 \
                       AND ((state = 'pending' AND next_run_at <= $5) \
                         OR (state = 'processing' AND lease_expires_at <= $5)) \
                     RETURNING integration_id, workspace_id, mode, state, attempts, next_run_at, \
                     lease_owner, lease_expires_at, cursor, status, run, repaired, repaired_total";
const SAVE: &str = "UPDATE {p}sync_jobs SET cursor = $4, status = $5, run = run + $6, \
                    repaired = CASE WHEN $6 = 1 THEN 0 ELSE repaired END, lease_expires_at = $7 \
                    WHERE integration_id = $1 AND state = 'processing' AND lease_owner = $2 \
                      AND attempts = $3";
const FINISH: &str = "UPDATE {p}sync_jobs SET cursor = $4, status = $5, run = run + $6, \
                      repaired = CASE WHEN $6 = 1 THEN 0 ELSE repaired END, \
                      lease_owner = NULL, lease_expires_at = NULL, mode = $7, next_run_at = $8, \
                      state = $9, attempts = CASE WHEN $10 = 1 THEN attempts - 1 ELSE 0 END \
                      WHERE integration_id = $1 AND state = 'processing' AND lease_owner = $2 \
                        AND attempts = $3";
const ADD_REPAIRED: &str = "UPDATE {p}sync_jobs SET repaired_total = repaired_total + $3, \
                            repaired = repaired + CASE WHEN run = $2 THEN $3 ELSE 0 END \
                            WHERE integration_id = $1";

fn decode(row: &impl SqlRow) -> Result<SyncJob, StoreError> {
    let integration_id = IntegrationId(row.uuid("integration_id")?);
    let state_s = row.text("state")?;
    let state = JobState::parse(&state_s).ok_or_else(|| backend("sync job state", &state_s))?;
    let mode_s = row.text("mode")?;
    let mode = ListMode::parse(&mode_s).ok_or_else(|| backend("sync job mode", &mode_s))?;
    let attempts = u32::try_from(row.int("attempts")?).unwrap_or(0);
    let cursor: serde_json::Value =
        serde_json::from_str(row.json("cursor")?.get()).map_err(|e| backend("cursor", e))?;
    let lease = match (
        state,
        row.opt_text("lease_owner")?,
        row.opt_time("lease_expires_at")?,
    ) {
        (JobState::Processing, Some(owner), Some(expires_at)) => Some(SyncLease {
            integration_id,
            owner,
            attempt: attempts,
            expires_at,
        }),
        _ => None,
    };
    let count =
        |col: &str| -> Result<u64, StoreError> { Ok(u64::try_from(row.int(col)?).unwrap_or(0)) };
    Ok(SyncJob {
        integration_id,
        workspace_id: WorkspaceId::new(row.text("workspace_id")?)
            .map_err(|e| backend("workspace id", e))?,
        mode,
        state,
        attempts,
        next_run_at: row.time("next_run_at")?,
        cursor: (!cursor.is_null()).then_some(cursor),
        status: serde_json::from_str(row.json("status")?.get())
            .map_err(|e| backend("status", e))?,
        run: count("run")?,
        repaired: count("repaired")?,
        repaired_total: count("repaired_total")?,
        lease,
    })
}

pub(crate) async fn get<D: Dialect>(
    d: &D,
    id: IntegrationId,
) -> Result<Option<SyncJob>, StoreError> {
    d.read(sql::<D>(GET), vec![Arg::Uuid(id.0)])
        .await?
        .first()
        .map(decode)
        .transpose()
}

pub(crate) async fn schedule<D: Dialect>(d: &D, s: &SyncSchedule) -> Result<(), StoreError> {
    let mut tx = d.begin().await?;
    let locked = format!("{GET}{}", D::ROW_LOCK);
    let existing = d
        .fetch(
            &mut tx,
            std::borrow::Cow::Owned(locked.replace("{p}", D::PREFIX)),
            vec![Arg::Uuid(s.integration_id.0)],
        )
        .await?;
    match existing.first().map(decode).transpose()? {
        Some(job) => {
            if job.state != JobState::Processing {
                let at = if job.state == JobState::Pending {
                    job.next_run_at.min(s.at)
                } else {
                    s.at
                };
                d.execute(
                    &mut tx,
                    sql::<D>(REARM),
                    vec![
                        Arg::Uuid(s.integration_id.0),
                        Arg::text(s.mode.unwrap_or(job.mode).as_str()),
                        Arg::time(at),
                    ],
                )
                .await?;
            }
        }
        None => {
            let found = d
                .fetch(
                    &mut tx,
                    sql::<D>(INTEGRATION_EXISTS),
                    vec![Arg::Uuid(s.integration_id.0)],
                )
                .await?;
            if found.is_empty() {
                return Err(StoreError::NotFound(format!(
                    "integration {}",
                    s.integration_id
                )));
            }
            d.execute(
                &mut tx,
                sql::<D>(INSERT),
                vec![
                    Arg::Uuid(s.integration_id.0),
                    Arg::text(s.workspace_id.as_str()),
                    Arg::text(s.mode.unwrap_or(ListMode::Reconcile).as_str()),
                    Arg::time(s.at),
                    Arg::Json(Some(to_json(&s.status)?)),
                ],
            )
            .await?;
        }
    }
    d.commit(tx).await
}

pub(crate) async fn claim<D: Dialect>(
    d: &D,
    req: &ClaimRequest,
) -> Result<Vec<SyncJob>, StoreError> {
    let at = OffsetDateTime::now_utc();
    let expires_at = at + req.lease;
    let due = d
        .read(
            sql::<D>(DUE),
            vec![Arg::time(at), Arg::Int(limit_of(req.limit))],
        )
        .await?;
    // Decoded before any await: a driver's row is not `Sync`.
    let candidates = due
        .iter()
        .map(|row| Ok((row.uuid("integration_id")?, row.int("attempts")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    drop(due);
    let mut out = Vec::new();
    for (id, attempts) in candidates {
        let rows = d
            .write(
                sql::<D>(CLAIM),
                vec![
                    Arg::Uuid(id),
                    Arg::Int(attempts),
                    Arg::text(req.worker.as_str()),
                    Arg::time(expires_at),
                    Arg::time(at),
                ],
            )
            .await?;
        for r in &rows {
            out.push(decode(r)?);
        }
    }
    Ok(out)
}

pub(crate) async fn save<D: Dialect>(
    d: &D,
    lease: &SyncLease,
    save: &SyncSave,
) -> Result<SyncLease, StoreError> {
    let mut args = vec![
        Arg::Uuid(lease.integration_id.0),
        Arg::text(lease.owner.as_str()),
        Arg::Int(i64::from(lease.attempt)),
        Arg::Json(Some(to_json(&save.cursor)?)),
        Arg::Json(Some(to_json(&save.status)?)),
        Arg::Int(i64::from(save.start_run)),
    ];
    let template = match &save.finish {
        None => {
            args.push(Arg::time(save.lease_until));
            SAVE
        }
        Some(f) => {
            args.push(Arg::text(f.mode.as_str()));
            args.push(Arg::time(f.at));
            args.push(Arg::text(if f.failed { "failed" } else { "pending" }));
            args.push(Arg::Int(i64::from(f.refund_attempt)));
            FINISH
        }
    };
    if d.write_count(sql::<D>(template), args).await? == 0 {
        return Err(StoreError::LeaseLost(format!(
            "sync job of integration {} is no longer leased to {} (attempt {})",
            lease.integration_id, lease.owner, lease.attempt
        )));
    }
    Ok(SyncLease {
        expires_at: save.lease_until,
        ..lease.clone()
    })
}

pub(crate) async fn add_repaired<D: Dialect>(
    d: &D,
    id: IntegrationId,
    run: u64,
    fields: u64,
) -> Result<(), StoreError> {
    d.write_count(
        sql::<D>(ADD_REPAIRED),
        vec![
            Arg::Uuid(id.0),
            Arg::Int(i64_of(run)?),
            Arg::Int(i64_of(fields)?),
        ],
    )
    .await?;
    Ok(())
}
