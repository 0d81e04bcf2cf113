//! PostgreSQL implementation of Ordonis's [`Store`] and VERA [`Ledger`].
//!
//! * Everything lives in the `ordonis` schema; the embedded migrations record themselves in
//!   `ordonis._migrations`, so they never collide with the host application's own sqlx
//!   migrations. [`migrate`] is idempotent and safe to run from several processes at once
//!   (sqlx takes an advisory lock while it migrates).
//! * Queries are built at run time (no `query!` macros), so a host's `DATABASE_URL` never
//!   affects how this crate compiles. No TLS feature is forced: enable `sqlx/tls-*` in the host.
//! * The inbox (`ordonis.webhook_events`) is the job queue: claims use
//!   `FOR UPDATE SKIP LOCKED` inside a materialized CTE, one row per object per batch, skip
//!   objects with a row in flight and paused integrations, and lease the rows; completions and
//!   failures are fenced on the lease owner and attempt number.
//! * A [`UnitOfWork`] is one transaction. The ledger tables reject `UPDATE`, `DELETE` and
//!   `TRUNCATE` with triggers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ordonis_core::StoreError> {
//! let store = ordonis_store_postgres::PostgresStore::connect("postgres://postgres@localhost/app").await?;
//! # let _ = store; Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ordonis_core::ledger::{Ledger, LedgerDraft, LedgerEntry, StoredCheckpoint};
use ordonis_core::store::{
    ClaimRequest, CommitReceipt, Completion, EventFilter, Inbox, InboxEvent, InsertOutcome,
    IntegrationRecord, Integrations, JobState, Lease, NewInboxEvent, Outbox, OutboxJob, Retry,
    Store, Tasks, UnitOfWork,
};
use ordonis_core::{
    EventId, IntegrationId, InvalidInput, OutboxId, ProviderKind, SealedSecrets, StoreError, Task,
    TaskId, WorkspaceId,
};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

pub use sqlx;

mod ingest_batch;

/// Name of Ordonis's own migrations table.
pub const MIGRATIONS_TABLE: &str = "ordonis._migrations";

/// Advisory-lock class for Ordonis (`'ordo'` as an int4).
const LOCK_CLASS: i32 = 0x6f72_646f;
/// Advisory-lock key serializing inbox claims.
const LOCK_CLAIM_INBOX: i32 = 1;
/// Advisory-lock key serializing outbox claims.
const LOCK_CLAIM_OUTBOX: i32 = 2;
/// Advisory-lock class for per-task outbox coalescing.
const LOCK_CLASS_TASK: i32 = 0x6f72_6474;

/// The embedded migrations, configured with Ordonis's own migrations table and schema.
pub fn migrator() -> Migrator {
    let mut m = sqlx::migrate!();
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m.create_schema("ordonis");
    m
}

/// Applies Ordonis's migrations to a database (idempotent; safe to run concurrently).
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    migrator()
        .run(pool)
        .await
        .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
}

/// A [`Store`] and [`Ledger`] on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    batcher: Arc<ingest_batch::IngestBatcher>,
}

impl PostgresStore {
    /// Connects to `url` with a default pool ([`PostgresStore::pool_options`], 10
    /// connections) and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = Self::pool_options()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(map_err)?;
        let store = Self::from_pool(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// The pool settings Ordonis recommends: a 10 s acquire timeout, and no test query before
    /// each acquire (a dead connection fails its statement with a retryable
    /// [`StoreError::Unavailable`] instead, and the pool replaces it): on the hot path the
    /// test query is one more round trip per unit of work.
    pub fn pool_options() -> PgPoolOptions {
        PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
    }

    /// Wraps an existing pool. Does not migrate: call [`PostgresStore::migrate`] (or the
    /// free function [`migrate`]) once at start-up.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            batcher: Arc::default(),
        }
    }

    /// Applies the embedded migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool).await
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(map_err)
    }
}

// ---------------------------------------------------------------------------------------------
// errors and conversions

/// Maps a sqlx error onto the store's error classes.
fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = db.message().to_owned();
            match code.as_str() {
                // serialization failure, deadlock, unique violation, exclusion violation
                "40001" | "40P01" | "23505" | "23P01" => StoreError::Conflict(msg),
                c if c.starts_with("23") || c.starts_with("22") => {
                    StoreError::Invalid(InvalidInput::new("row", msg))
                }
                // connection exceptions, insufficient resources, operator intervention
                c if c.starts_with("08") || c.starts_with("53") || c.starts_with("57") => {
                    StoreError::Unavailable(msg)
                }
                _ => StoreError::Backend(format!("{code}: {msg}")),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

fn backend(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

fn parse_state(s: &str) -> Result<JobState, StoreError> {
    JobState::parse(s).ok_or_else(|| backend("unknown job state", s))
}

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| InvalidInput::new("number", "exceeds i64").into())
}

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Now, truncated to the microsecond (what PostgreSQL and the VERA encoding keep).
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// The body as JSON, when it is JSON that PostgreSQL's `jsonb` accepts.
fn body_json(body: &[u8]) -> Option<serde_json::Value> {
    if body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    serde_json::from_slice(body).ok()
}

fn check_retry(retry: Retry) -> Result<(), StoreError> {
    match retry {
        Retry::Never(JobState::Failed | JobState::Dead) | Retry::At(_) | Retry::Deferred(_) => {
            Ok(())
        }
        Retry::Never(other) => Err(InvalidInput::new(
            "retry",
            format!("a row cannot give up into state {}", other.as_str()),
        )
        .into()),
    }
}

/// `(state, next_attempt_at, attempts decrement)` for a failure.
fn retry_parts(retry: Retry) -> (&'static str, Option<OffsetDateTime>, i32) {
    match retry {
        Retry::At(t) => ("pending", Some(t), 0),
        Retry::Deferred(t) => ("pending", Some(t), 1),
        Retry::Never(s) => (s.as_str(), None, 0),
    }
}

// ---------------------------------------------------------------------------------------------
// row decoding

macro_rules! event_cols {
    () => {
        "id, workspace_id, integration_id, dedupe_key, delivery_id, object_key, headers, body, \
         body_sha256, auth, received_at, state, attempts, next_attempt_at, lease_owner, \
         lease_expires_at, last_error"
    };
}

macro_rules! outbox_cols {
    () => {
        "id, workspace_id, task_id, integration_id, state, attempts, next_attempt_at, \
         lease_owner, lease_expires_at, last_error"
    };
}

fn lease_of(
    row: &PgRow,
    id: Uuid,
    state: JobState,
    attempts: u32,
) -> Result<Option<Lease>, StoreError> {
    if state != JobState::Processing {
        return Ok(None);
    }
    let owner: Option<String> = row.try_get("lease_owner").map_err(map_err)?;
    let exp: Option<OffsetDateTime> = row.try_get("lease_expires_at").map_err(map_err)?;
    Ok(match (owner, exp) {
        (Some(owner), Some(expires_at)) => Some(Lease {
            row: id,
            owner,
            attempt: attempts,
            expires_at,
        }),
        _ => None,
    })
}

fn event_of(row: &PgRow) -> Result<InboxEvent, StoreError> {
    let id: Uuid = row.try_get("id").map_err(map_err)?;
    let ws: String = row.try_get("workspace_id").map_err(map_err)?;
    let state = parse_state(row.try_get::<&str, _>("state").map_err(map_err)?)?;
    let attempts = u32_of(row.try_get("attempts").map_err(map_err)?);
    let Json(headers): Json<Vec<(String, String)>> = row.try_get("headers").map_err(map_err)?;
    let body: Vec<u8> = row.try_get("body").map_err(map_err)?;
    Ok(InboxEvent {
        id: EventId(id),
        workspace_id: WorkspaceId::new(ws).map_err(|e| backend("workspace id", e))?,
        integration_id: IntegrationId(row.try_get("integration_id").map_err(map_err)?),
        dedupe_key: row.try_get("dedupe_key").map_err(map_err)?,
        delivery_id: row.try_get("delivery_id").map_err(map_err)?,
        object_key: row.try_get("object_key").map_err(map_err)?,
        headers,
        body: Bytes::from(body),
        body_sha256: row.try_get("body_sha256").map_err(map_err)?,
        auth: row.try_get("auth").map_err(map_err)?,
        received_at: row.try_get("received_at").map_err(map_err)?,
        state,
        attempts,
        next_attempt_at: row.try_get("next_attempt_at").map_err(map_err)?,
        last_error: row.try_get("last_error").map_err(map_err)?,
        lease: lease_of(row, id, state, attempts)?,
    })
}

fn outbox_of(row: &PgRow) -> Result<OutboxJob, StoreError> {
    let id: Uuid = row.try_get("id").map_err(map_err)?;
    let ws: String = row.try_get("workspace_id").map_err(map_err)?;
    let state = parse_state(row.try_get::<&str, _>("state").map_err(map_err)?)?;
    let attempts = u32_of(row.try_get("attempts").map_err(map_err)?);
    Ok(OutboxJob {
        id: OutboxId(id),
        workspace_id: WorkspaceId::new(ws).map_err(|e| backend("workspace id", e))?,
        task_id: TaskId(row.try_get("task_id").map_err(map_err)?),
        integration_id: IntegrationId(row.try_get("integration_id").map_err(map_err)?),
        state,
        attempts,
        next_attempt_at: row.try_get("next_attempt_at").map_err(map_err)?,
        last_error: row.try_get("last_error").map_err(map_err)?,
        lease: lease_of(row, id, state, attempts)?,
    })
}

fn integration_of(row: &PgRow) -> Result<IntegrationRecord, StoreError> {
    let ws: String = row.try_get("workspace_id").map_err(map_err)?;
    Ok(IntegrationRecord {
        id: IntegrationId(row.try_get("id").map_err(map_err)?),
        workspace_id: WorkspaceId::new(ws).map_err(|e| backend("workspace id", e))?,
        provider: ProviderKind::new(row.try_get::<String, _>("provider").map_err(map_err)?),
        config: row.try_get("config").map_err(map_err)?,
        secrets: SealedSecrets(row.try_get("secrets").map_err(map_err)?),
        paused_until: row.try_get("paused_until").map_err(map_err)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    })
}

fn entry_of(row: &PgRow) -> Result<LedgerEntry, StoreError> {
    let idx: i64 = row.try_get("idx").map_err(map_err)?;
    let record: String = row.try_get("record").map_err(map_err)?;
    let record: LedgerDraft =
        serde_json::from_str(&record).map_err(|e| backend("ledger record", e))?;
    let leaf: Vec<u8> = row.try_get("leaf_hash").map_err(map_err)?;
    let leaf_hash: [u8; 32] = leaf
        .as_slice()
        .try_into()
        .map_err(|_| backend("ledger leaf hash", "not 32 bytes"))?;
    Ok(LedgerEntry {
        idx: u64::try_from(idx).map_err(|e| backend("ledger index", e))?,
        logged_at: row.try_get("logged_at").map_err(map_err)?,
        record,
        bytes: row.try_get("bytes").map_err(map_err)?,
        leaf_hash,
    })
}

// ---------------------------------------------------------------------------------------------
// Integrations

#[async_trait]
impl Integrations for PostgresStore {
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ordonis.integrations \
             (id, workspace_id, provider, config, secrets, paused_until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(rec.id.0)
        .bind(rec.workspace_id.as_str())
        .bind(rec.provider.as_str())
        .bind(&rec.config)
        .bind(&rec.secrets.0)
        .bind(rec.paused_until)
        .bind(rec.created_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        sqlx::query("SELECT * FROM ordonis.integrations WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(integration_of)
            .transpose()
    }

    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM ordonis.integrations WHERE workspace_id = $1 ORDER BY created_at, id",
        )
        .bind(ws.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(integration_of)
        .collect()
    }

    async fn update_integration(
        &self,
        id: IntegrationId,
        config: &serde_json::Value,
        secrets: &SealedSecrets,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE ordonis.integrations SET config = $2, secrets = $3 WHERE id = $1")
                .bind(id.0)
                .bind(config)
                .bind(&secrets.0)
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("integration {id}")));
        }
        Ok(())
    }

    async fn set_paused_until(
        &self,
        id: IntegrationId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE ordonis.integrations SET paused_until = $2 WHERE id = $1")
            .bind(id.0)
            .bind(until)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("integration {id}")));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Inbox

const CLAIM_EVENTS: &str = concat!(
    "WITH cand AS MATERIALIZED (
        SELECT e.id, e.integration_id, e.object_key, e.received_at
          FROM ordonis.webhook_events e
         WHERE ((e.state = 'pending' AND e.next_attempt_at <= statement_timestamp())
             OR (e.state = 'processing' AND e.lease_expires_at <= statement_timestamp()))
           AND NOT EXISTS (SELECT 1 FROM ordonis.integrations i
                            WHERE i.id = e.integration_id
                              AND i.paused_until > statement_timestamp())
           AND (e.object_key IS NULL OR NOT EXISTS (
                SELECT 1 FROM ordonis.webhook_events f
                 WHERE f.integration_id = e.integration_id
                   AND f.object_key = e.object_key
                   AND f.state = 'processing'
                   AND f.lease_expires_at > statement_timestamp()
                   AND f.id <> e.id))
         ORDER BY e.received_at, e.id
         LIMIT $2
         FOR UPDATE OF e SKIP LOCKED
     ), one AS (
        SELECT DISTINCT ON (integration_id, COALESCE(object_key, id::text)) id, received_at
          FROM cand
         ORDER BY integration_id, COALESCE(object_key, id::text), received_at, id
     ), pick AS (
        SELECT id FROM one ORDER BY received_at, id LIMIT $1
     )
     UPDATE ordonis.webhook_events w
        SET state = 'processing',
            attempts = w.attempts + 1,
            lease_owner = $3,
            lease_expires_at = statement_timestamp() + $4::bigint * interval '1 microsecond'
       FROM pick
      WHERE w.id = pick.id
     RETURNING ",
    "w.id, w.workspace_id, w.integration_id, w.dedupe_key, w.delivery_id, w.object_key, \
     w.headers, w.body, w.body_sha256, w.auth, w.received_at, w.state, w.attempts, \
     w.next_attempt_at, w.lease_owner, w.lease_expires_at, w.last_error"
);

const CLAIM_PUSHES: &str = "WITH cand AS MATERIALIZED (
        SELECT o.id, o.task_id, o.created_at
          FROM ordonis.outbox o
         WHERE ((o.state = 'pending' AND o.next_attempt_at <= statement_timestamp())
             OR (o.state = 'processing' AND o.lease_expires_at <= statement_timestamp()))
           AND NOT EXISTS (SELECT 1 FROM ordonis.integrations i
                            WHERE i.id = o.integration_id
                              AND i.paused_until > statement_timestamp())
           AND NOT EXISTS (
                SELECT 1 FROM ordonis.outbox f
                 WHERE f.task_id = o.task_id
                   AND f.state = 'processing'
                   AND f.lease_expires_at > statement_timestamp()
                   AND f.id <> o.id)
         ORDER BY o.created_at, o.id
         LIMIT $2
         FOR UPDATE OF o SKIP LOCKED
     ), one AS (
        SELECT DISTINCT ON (task_id) id, created_at
          FROM cand
         ORDER BY task_id, created_at, id
     ), pick AS (
        SELECT id FROM one ORDER BY created_at, id LIMIT $1
     )
     UPDATE ordonis.outbox w
        SET state = 'processing',
            attempts = w.attempts + 1,
            lease_owner = $3,
            lease_expires_at = statement_timestamp() + $4::bigint * interval '1 microsecond'
       FROM pick
      WHERE w.id = pick.id
     RETURNING w.id, w.workspace_id, w.task_id, w.integration_id, w.state, w.attempts,
               w.next_attempt_at, w.lease_owner, w.lease_expires_at, w.last_error, w.created_at";

/// Appends one event, or finds the row holding its dedupe key: one statement.
async fn insert_event(
    conn: &mut sqlx::PgConnection,
    ev: &NewInboxEvent,
) -> Result<InsertOutcome, StoreError> {
    let row: Option<(Uuid, bool)> = sqlx::query_as(
        "WITH ins AS (
            INSERT INTO ordonis.webhook_events
              (id, workspace_id, integration_id, dedupe_key, delivery_id, object_key,
               headers, body, body_json, body_sha256, auth, received_at, state, attempts,
               next_attempt_at, last_error)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, clock_timestamp(), $12, 0,
                    clock_timestamp(), $13)
            ON CONFLICT (integration_id, dedupe_key) DO NOTHING
            RETURNING id)
         SELECT id, true FROM ins
         UNION ALL
         SELECT id, false FROM ordonis.webhook_events
          WHERE integration_id = $3 AND dedupe_key = $4 AND NOT EXISTS (SELECT 1 FROM ins)",
    )
    .bind(ev.id.0)
    .bind(ev.workspace_id.as_str())
    .bind(ev.integration_id.0)
    .bind(&ev.dedupe_key)
    .bind(&ev.delivery_id)
    .bind(&ev.object_key)
    .bind(Json(&ev.headers))
    .bind(ev.body.as_ref())
    .bind(body_json(&ev.body))
    .bind(&ev.body_sha256)
    .bind(&ev.auth)
    .bind(ev.state.as_str())
    .bind(&ev.note)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?;
    match row {
        Some((id, true)) => Ok(InsertOutcome::Inserted(EventId(id))),
        Some((id, false)) => Ok(InsertOutcome::Duplicate(EventId(id))),
        // The conflicting row was committed by another transaction after this statement's
        // snapshot: it is visible to a new statement.
        None => {
            let id: Uuid = sqlx::query_scalar(
                "SELECT id FROM ordonis.webhook_events WHERE integration_id = $1 AND dedupe_key = $2",
            )
            .bind(ev.integration_id.0)
            .bind(&ev.dedupe_key)
            .fetch_one(&mut *conn)
            .await
            .map_err(map_err)?;
            Ok(InsertOutcome::Duplicate(EventId(id)))
        }
    }
}

#[async_trait]
impl Inbox for PostgresStore {
    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        for ev in events {
            if ev.state == JobState::Processing {
                return Err(InvalidInput::new("state", "a new event cannot be processing").into());
            }
        }
        // One event (the webhook handler's case) goes through group commit: concurrent
        // callers share one multi-row statement. Several events share a transaction.
        if let [ev] = events {
            return Ok(vec![self.batcher.insert(&self.pool, ev.clone()).await?]);
        }
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            out.push(insert_event(&mut tx, ev).await?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn claim_events(&self, req: &ClaimRequest) -> Result<Vec<InboxEvent>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // Claims are serialized (they are short): two concurrent claimers could otherwise each
        // take a different row of the same object, neither seeing the other's uncommitted claim.
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(LOCK_CLAIM_INBOX)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(CLAIM_EVENTS)
            .bind(limit_of(req.limit))
            .bind(limit_of(req.limit.saturating_mul(4).max(16)))
            .bind(&req.worker)
            .bind(micros(req.lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut events = rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        events.sort_by_key(|e| (e.received_at, e.id));
        Ok(events)
    }

    async fn fail_event(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError> {
        check_retry(retry)?;
        let (state, at, dec) = retry_parts(retry);
        let done = sqlx::query(
            "UPDATE ordonis.webhook_events
                SET state = $4, next_attempt_at = COALESCE($5, next_attempt_at),
                    attempts = GREATEST(attempts - $6, 0), last_error = $7,
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND state = 'processing' AND lease_owner = $2 AND attempts = $3",
        )
        .bind(lease.row)
        .bind(&lease.owner)
        .bind(i32::try_from(lease.attempt).unwrap_or(i32::MAX))
        .bind(state)
        .bind(at)
        .bind(dec)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(format!("event {}", lease.row)));
        }
        Ok(())
    }

    async fn event(&self, ws: &WorkspaceId, id: EventId) -> Result<Option<InboxEvent>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            event_cols!(),
            " FROM ordonis.webhook_events WHERE id = $1 AND workspace_id = $2"
        ))
        .bind(id.0)
        .bind(ws.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .as_ref()
        .map(event_of)
        .transpose()
    }

    async fn events(
        &self,
        ws: &WorkspaceId,
        filter: &EventFilter,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        sqlx::query(concat!(
            "SELECT ",
            event_cols!(),
            " FROM ordonis.webhook_events
              WHERE workspace_id = $1
                AND ($2::uuid IS NULL OR integration_id = $2)
                AND ($3::text IS NULL OR state = $3)
              ORDER BY received_at DESC, id DESC
              LIMIT $4"
        ))
        .bind(ws.as_str())
        .bind(filter.integration_id.map(|i| i.0))
        .bind(filter.state.map(JobState::as_str))
        .bind(limit_of(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(event_of)
        .collect()
    }

    async fn replay_event(&self, ws: &WorkspaceId, id: EventId) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE ordonis.webhook_events
                SET state = 'pending', attempts = 0, next_attempt_at = statement_timestamp(),
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND workspace_id = $2 AND state IN ('failed', 'dead')",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM ordonis.webhook_events WHERE id = $1 AND workspace_id = $2",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match state {
            None => Err(StoreError::NotFound(format!("event {id}"))),
            Some(s) => Err(InvalidInput::new(
                "event",
                format!("only failed or dead events can be replayed (this one is {s})"),
            )
            .into()),
        }
    }

    async fn event_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        counts(
            &self.pool,
            "SELECT state, count(*) FROM ordonis.webhook_events GROUP BY state",
        )
        .await
    }
}

async fn counts(pool: &PgPool, sql: &'static str) -> Result<Vec<(JobState, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(pool).await.map_err(map_err)?;
    let mut out = rows
        .into_iter()
        .map(|(s, n)| Ok((parse_state(&s)?, u64::try_from(n).unwrap_or(0))))
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by_key(|(s, _)| s.as_str());
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Outbox

#[async_trait]
impl Outbox for PostgresStore {
    async fn claim_pushes(&self, req: &ClaimRequest) -> Result<Vec<OutboxJob>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(LOCK_CLAIM_OUTBOX)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let rows = sqlx::query(CLAIM_PUSHES)
            .bind(limit_of(req.limit))
            .bind(limit_of(req.limit.saturating_mul(4).max(16)))
            .bind(&req.worker)
            .bind(micros(req.lease))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let created: OffsetDateTime = row.try_get("created_at").map_err(map_err)?;
            jobs.push((created, outbox_of(row)?));
        }
        jobs.sort_by_key(|(created, j)| (*created, j.id));
        Ok(jobs.into_iter().map(|(_, j)| j).collect())
    }

    async fn fail_push(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError> {
        check_retry(retry)?;
        let (state, at, dec) = retry_parts(retry);
        let done = sqlx::query(
            "UPDATE ordonis.outbox
                SET state = $4, next_attempt_at = COALESCE($5, next_attempt_at),
                    attempts = GREATEST(attempts - $6, 0), last_error = $7,
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND state = 'processing' AND lease_owner = $2 AND attempts = $3",
        )
        .bind(lease.row)
        .bind(&lease.owner)
        .bind(i32::try_from(lease.attempt).unwrap_or(i32::MAX))
        .bind(state)
        .bind(at)
        .bind(dec)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(format!("push {}", lease.row)));
        }
        Ok(())
    }

    async fn pushes(&self, ws: &WorkspaceId) -> Result<Vec<OutboxJob>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM ordonis.outbox WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(ws.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(outbox_of)
        .collect()
    }

    async fn replay_push(&self, ws: &WorkspaceId, id: OutboxId) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE ordonis.outbox
                SET state = 'pending', attempts = 0, next_attempt_at = statement_timestamp(),
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND workspace_id = $2 AND state IN ('failed', 'dead')",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM ordonis.outbox WHERE id = $1 AND workspace_id = $2",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match state {
            None => Err(StoreError::NotFound(format!("push {id}"))),
            Some(s) => Err(InvalidInput::new(
                "push",
                format!("only failed or dead pushes can be replayed (this one is {s})"),
            )
            .into()),
        }
    }

    async fn push_counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        counts(
            &self.pool,
            "SELECT state, count(*) FROM ordonis.outbox GROUP BY state",
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[async_trait]
impl Tasks for PostgresStore {
    async fn task(&self, ws: &WorkspaceId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let doc: Option<Json<Task>> =
            sqlx::query_scalar("SELECT doc FROM ordonis.tasks WHERE id = $1 AND workspace_id = $2")
                .bind(id.0)
                .bind(ws.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(doc.map(|Json(t)| t))
    }

    async fn tasks(&self, ws: &WorkspaceId) -> Result<Vec<Task>, StoreError> {
        let docs: Vec<Json<Task>> =
            sqlx::query_scalar("SELECT doc FROM ordonis.tasks WHERE workspace_id = $1 ORDER BY id")
                .bind(ws.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(docs.into_iter().map(|Json(t)| t).collect())
    }

    async fn find_mapping(
        &self,
        integration: IntegrationId,
        external_id: &str,
        object_type: &str,
    ) -> Result<Option<TaskId>, StoreError> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT task_id FROM ordonis.external_objects
              WHERE integration_id = $1 AND external_id = $2 AND object_type = $3
              ORDER BY created_at LIMIT 1",
        )
        .bind(integration.0)
        .bind(external_id)
        .bind(object_type)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(id.map(TaskId))
    }
}

// ---------------------------------------------------------------------------------------------
// Ledger

#[async_trait]
impl Ledger for PostgresStore {
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT size FROM ordonis.ledger_heads WHERE workspace_id = $1")
                .bind(ws.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
    }

    async fn ledger_entries(
        &self,
        ws: &WorkspaceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        sqlx::query(
            "SELECT idx, logged_at, record, bytes, leaf_hash FROM ordonis.vera_ledger
              WHERE workspace_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3",
        )
        .bind(ws.as_str())
        .bind(i64_of(from)?)
        .bind(limit_of(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(entry_of)
        .collect()
    }

    async fn task_ledger(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        sqlx::query(
            "SELECT idx, logged_at, record, bytes, leaf_hash FROM ordonis.vera_ledger
              WHERE workspace_id = $1 AND task_id = $2 ORDER BY idx",
        )
        .bind(ws.as_str())
        .bind(task.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?
        .iter()
        .map(entry_of)
        .collect()
    }

    async fn save_checkpoint(
        &self,
        ws: &WorkspaceId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let size = i64_of(checkpoint.size)?;
        let inserted = sqlx::query(
            "INSERT INTO ordonis.vera_checkpoints (workspace_id, size, note) VALUES ($1, $2, $3)
             ON CONFLICT (workspace_id, size) DO NOTHING",
        )
        .bind(ws.as_str())
        .bind(size)
        .bind(&checkpoint.note)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if inserted.rows_affected() == 1 {
            return Ok(());
        }
        let note: Option<String> = sqlx::query_scalar(
            "SELECT note FROM ordonis.vera_checkpoints WHERE workspace_id = $1 AND size = $2",
        )
        .bind(ws.as_str())
        .bind(size)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        match note {
            Some(n) if n == checkpoint.note => Ok(()),
            _ => Err(StoreError::Conflict(format!(
                "a different checkpoint of size {} is stored already",
                checkpoint.size
            ))),
        }
    }

    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT size, note FROM ordonis.vera_checkpoints
              WHERE workspace_id = $1 ORDER BY size DESC LIMIT 1",
        )
        .bind(ws.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(|(size, note)| StoredCheckpoint {
            size: u64::try_from(size).unwrap_or(0),
            note,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Unit of work

fn validate(uow: &UnitOfWork) -> Result<(), StoreError> {
    if let Some(tw) = &uow.task
        && tw.task.workspace_id != uow.workspace_id
    {
        return Err(InvalidInput::new("task", "belongs to another workspace").into());
    }
    if uow
        .ledger
        .iter()
        .any(|d| d.workspace_id != uow.workspace_id)
    {
        return Err(InvalidInput::new("ledger", "entry for another workspace").into());
    }
    Ok(())
}

async fn complete(
    tx: &mut Transaction<'static, Postgres>,
    ws: &WorkspaceId,
    completion: &Completion,
) -> Result<(), StoreError> {
    let (sql, lease, note, what): (&'static str, &Lease, Option<&str>, &str) = match completion {
        Completion::None => return Ok(()),
        Completion::Inbox { lease, note } => (
            "UPDATE ordonis.webhook_events
                SET state = 'done', last_error = $5, lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND workspace_id = $2 AND state = 'processing'
                AND lease_owner = $3 AND attempts = $4",
            lease,
            note.as_deref(),
            "event",
        ),
        Completion::Outbox { lease } => (
            "UPDATE ordonis.outbox
                SET state = 'done', last_error = $5, lease_owner = NULL, lease_expires_at = NULL
              WHERE id = $1 AND workspace_id = $2 AND state = 'processing'
                AND lease_owner = $3 AND attempts = $4",
            lease,
            None,
            "push",
        ),
    };
    let done = sqlx::query(sql)
        .bind(lease.row)
        .bind(ws.as_str())
        .bind(&lease.owner)
        .bind(i32::try_from(lease.attempt).unwrap_or(i32::MAX))
        .bind(note)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::LeaseLost(format!("{what} {}", lease.row)));
    }
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
        validate(&uow)?;
        let ws = uow.workspace_id.clone();
        let mut tx = self.begin().await?;

        // The fence first: a stale lease writes nothing and holds no lock for long.
        complete(&mut tx, &ws, &uow.completion).await?;

        if let Some(tw) = &uow.task {
            let t = &tw.task;
            let doc = Json(t);
            let n = match tw.expected_revision {
                None => sqlx::query(
                    "INSERT INTO ordonis.tasks (id, workspace_id, revision, deleted, updated_at, doc)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(t.id.0)
                .bind(ws.as_str())
                .bind(i64_of(t.revision)?)
                .bind(t.deleted)
                .bind(t.updated_at)
                .bind(doc)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected(),
                Some(expected) => sqlx::query(
                    "UPDATE ordonis.tasks
                        SET revision = $3, deleted = $4, updated_at = $5, doc = $6
                      WHERE id = $1 AND workspace_id = $2 AND revision = $7",
                )
                .bind(t.id.0)
                .bind(ws.as_str())
                .bind(i64_of(t.revision)?)
                .bind(t.deleted)
                .bind(t.updated_at)
                .bind(doc)
                .bind(i64_of(expected)?)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected(),
            };
            if n == 0 {
                return Err(StoreError::Conflict(match tw.expected_revision {
                    None => format!("task {} exists already", t.id),
                    Some(r) => format!("task {} is no longer at revision {r}", t.id),
                }));
            }
        }

        if let Some((ext, task_id)) = &uow.mapping {
            let existing: Option<Uuid> = sqlx::query_scalar(
                "WITH ins AS (
                    INSERT INTO ordonis.external_objects
                      (integration_id, provider, external_id, object_type, workspace_id, task_id, url)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (integration_id, provider, external_id, object_type) DO NOTHING
                    RETURNING task_id)
                 SELECT task_id FROM ins
                 UNION ALL
                 SELECT task_id FROM ordonis.external_objects
                  WHERE integration_id = $1 AND provider = $2 AND external_id = $3
                    AND object_type = $4
                 LIMIT 1",
            )
            .bind(ext.integration_id.0)
            .bind(ext.provider.as_str())
            .bind(&ext.external_id)
            .bind(&ext.object_type)
            .bind(ws.as_str())
            .bind(task_id.0)
            .bind(&ext.url)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            let Some(existing) = existing else {
                return Err(StoreError::Conflict(format!(
                    "{} {} is being mapped concurrently",
                    ext.object_type, ext.external_id
                )));
            };
            if existing != task_id.0 {
                return Err(StoreError::Conflict(format!(
                    "{} {} is mapped to another task",
                    ext.object_type, ext.external_id
                )));
            }
        }

        let mut outbox = None;
        if let Some((task_id, integration_id)) = &uow.enqueue_push {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
                .bind(LOCK_CLASS_TASK)
                .bind(task_id.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let pending: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM ordonis.outbox
                  WHERE task_id = $1 AND integration_id = $2 AND state = 'pending'
                  ORDER BY created_at LIMIT 1",
            )
            .bind(task_id.0)
            .bind(integration_id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            let id = match pending {
                Some(id) => id,
                None => {
                    let id = OutboxId::new().0;
                    sqlx::query(
                        "INSERT INTO ordonis.outbox
                           (id, workspace_id, task_id, integration_id, state, attempts,
                            next_attempt_at, created_at)
                         VALUES ($1, $2, $3, $4, 'pending', 0, clock_timestamp(), clock_timestamp())",
                    )
                    .bind(id)
                    .bind(ws.as_str())
                    .bind(task_id.0)
                    .bind(integration_id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    id
                }
            };
            outbox = Some(OutboxId(id));
        }

        // The ledger last: the log head's row lock serializes a workspace's writers, so it is
        // taken as late as possible and held for two statements and the commit.
        let mut entries = Vec::with_capacity(uow.ledger.len());
        if !uow.ledger.is_empty() {
            let n = i64::try_from(uow.ledger.len()).unwrap_or(i64::MAX);
            let start: i64 = sqlx::query_scalar(
                "INSERT INTO ordonis.ledger_heads AS h (workspace_id, size) VALUES ($1, $2)
                 ON CONFLICT (workspace_id) DO UPDATE SET size = h.size + EXCLUDED.size
                 RETURNING size - $2",
            )
            .bind(ws.as_str())
            .bind(n)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            let start = u64::try_from(start).map_err(|e| backend("ledger head", e))?;
            let logged_at = now_micros();
            let (mut idxs, mut tasks, mut records, mut bytes, mut leaves) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (i, draft) in uow.ledger.iter().enumerate() {
                let idx = start + i as u64;
                let entry = LedgerEntry::seal(draft.clone(), idx, logged_at);
                idxs.push(i64_of(idx)?);
                tasks.push(draft.task_id.0);
                records
                    .push(serde_json::to_string(draft).map_err(|e| backend("ledger record", e))?);
                bytes.push(entry.bytes.clone());
                leaves.push(entry.leaf_hash.to_vec());
                entries.push(entry);
            }
            // All of the unit's entries in one statement.
            sqlx::query(
                "INSERT INTO ordonis.vera_ledger
                   (workspace_id, idx, logged_at, task_id, record, bytes, leaf_hash)
                 SELECT $1, e.idx, $2, e.task_id, e.record, e.bytes, e.leaf_hash
                   FROM UNNEST($3::bigint[], $4::uuid[], $5::text[], $6::bytea[], $7::bytea[])
                        AS e(idx, task_id, record, bytes, leaf_hash)",
            )
            .bind(ws.as_str())
            .bind(logged_at)
            .bind(&idxs)
            .bind(&tasks)
            .bind(&records)
            .bind(&bytes)
            .bind(&leaves)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }

        tx.commit().await.map_err(map_err)?;
        Ok(CommitReceipt { entries, outbox })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_json_only_for_jsonb_safe_json() {
        assert!(body_json(br#"{"a":1}"#).is_some());
        assert!(body_json(b"not json").is_none());
        assert!(body_json(br#"{"a":"\u0000"}"#).is_none());
    }

    #[test]
    fn retry_parts_decrement_only_when_deferred() {
        let t = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(retry_parts(Retry::At(t)), ("pending", Some(t), 0));
        assert_eq!(retry_parts(Retry::Deferred(t)), ("pending", Some(t), 1));
        assert_eq!(retry_parts(Retry::Never(JobState::Dead)), ("dead", None, 0));
        assert!(check_retry(Retry::Never(JobState::Done)).is_err());
    }

    #[test]
    fn migrator_uses_own_table() {
        let m = migrator();
        assert!(m.iter().count() >= 1);
    }
}
