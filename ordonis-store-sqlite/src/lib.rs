//! SQLite implementation of Ordonis's [`Store`] and VERA [`Ledger`]: the embedded default.
//!
//! * One database file in WAL mode with a busy timeout and `synchronous = FULL`; every write
//!   transaction starts with `BEGIN IMMEDIATE` on a single writer connection, so writers never
//!   deadlock on lock upgrades, while readers use a separate pool. `sqlite::memory:` works too
//!   (one connection for everything).
//! * Embedded migrations recorded in `_ordonis_migrations` (never the host's `_sqlx_migrations`);
//!   [`SqliteStore::migrate`] is idempotent.
//! * Same semantics as the PostgreSQL store (the testkit's store suite proves both): dedupe on
//!   `(integration, dedupe_key)`, leased claims with per-object serialization, fenced
//!   completion, and one transaction per [`UnitOfWork`]. The ledger tables reject `UPDATE`
//!   and `DELETE` with triggers.
//! * Times are stored as integer nanoseconds (UTC), so they round-trip exactly.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ordonis_core::StoreError> {
//! let store = ordonis_store_sqlite::SqliteStore::open("ordonis.db").await?;
//! let mem = ordonis_store_sqlite::SqliteStore::open("sqlite::memory:").await?;
//! # let _ = (store, mem); Ok(()) }
//! ```

use std::str::FromStr;
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
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Row, Sqlite, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

pub use sqlx;

/// Name of Ordonis's own migrations table.
pub const MIGRATIONS_TABLE: &str = "_ordonis_migrations";

/// How long a writer waits for the database lock before failing with `Unavailable`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The embedded migrations, configured with Ordonis's own migrations table.
pub fn migrator() -> Migrator {
    let mut m = sqlx::migrate!();
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// A [`Store`] and [`Ledger`] in one SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// One connection: all writes go through it, each in `BEGIN IMMEDIATE`.
    writer: SqlitePool,
    /// Readers (the same pool as `writer` for an in-memory database).
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) a database from a path (`ordonis.db`) or a URL
    /// (`sqlite://ordonis.db`, `sqlite::memory:`), and applies the migrations.
    pub async fn open(path_or_url: &str) -> Result<Self, StoreError> {
        let memory = path_or_url.contains(":memory:") || path_or_url.contains("mode=memory");
        let options = if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url).map_err(map_err)?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        let options = options
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let store = if memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(map_err)?;
            Self::from_pools(pool.clone(), pool)
        } else {
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full);
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(map_err)?;
            let reader = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(map_err)?;
            Self::from_pools(writer, reader)
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Wraps one pool (used for reads and writes; give it one connection for `sqlite::memory:`).
    /// Does not migrate: call [`SqliteStore::migrate`].
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self::from_pools(pool.clone(), pool)
    }

    /// Wraps a writer pool (best with one connection) and a reader pool on the same database.
    /// Does not migrate: call [`SqliteStore::migrate`].
    pub fn from_pools(writer: SqlitePool, reader: SqlitePool) -> Self {
        Self { writer, reader }
    }

    /// Applies the embedded migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator()
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    /// The writer pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// Closes both pools (checkpointing the WAL).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
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
                // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
                "2067" | "1555" => StoreError::Conflict(msg),
                // SQLITE_BUSY*, SQLITE_LOCKED*
                "5" | "6" | "261" | "517" | "773" | "262" => StoreError::Unavailable(msg),
                "19" | "275" | "787" | "1299" | "1811" => {
                    StoreError::Invalid(InvalidInput::new("row", msg))
                }
                _ => StoreError::Backend(format!("{code}: {msg}")),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
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

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn i64_of(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| InvalidInput::new("number", "exceeds i64").into())
}

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A time as integer nanoseconds since the epoch (clamped to what an i64 holds).
fn ts(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

fn from_ts(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).map_err(|e| backend("time", e))
}

fn from_opt_ts(n: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    n.map(from_ts).transpose()
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn now() -> i64 {
    ts(OffsetDateTime::now_utc())
}

/// Now, truncated to the microsecond (what the VERA encoding keeps).
fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
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
fn retry_parts(retry: Retry) -> (&'static str, Option<i64>, i64) {
    match retry {
        Retry::At(t) => ("pending", Some(ts(t)), 0),
        Retry::Deferred(t) => ("pending", Some(ts(t)), 1),
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
         lease_owner, lease_expires_at, last_error, created_at"
    };
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col).map_err(map_err)
}

fn ws_of(row: &SqliteRow) -> Result<WorkspaceId, StoreError> {
    WorkspaceId::new(get::<String>(row, "workspace_id")?).map_err(|e| backend("workspace id", e))
}

fn lease_of(
    row: &SqliteRow,
    id: Uuid,
    state: JobState,
    attempts: u32,
) -> Result<Option<Lease>, StoreError> {
    if state != JobState::Processing {
        return Ok(None);
    }
    let owner: Option<String> = get(row, "lease_owner")?;
    let exp: Option<i64> = get(row, "lease_expires_at")?;
    Ok(match (owner, exp) {
        (Some(owner), Some(exp)) => Some(Lease {
            row: id,
            owner,
            attempt: attempts,
            expires_at: from_ts(exp)?,
        }),
        _ => None,
    })
}

fn event_of(row: &SqliteRow) -> Result<InboxEvent, StoreError> {
    let id: Uuid = get(row, "id")?;
    let state = parse_state(&get::<String>(row, "state")?)?;
    let attempts = u32_of(get(row, "attempts")?);
    let Json(headers): Json<Vec<(String, String)>> = get(row, "headers")?;
    let body: Vec<u8> = get(row, "body")?;
    Ok(InboxEvent {
        id: EventId(id),
        workspace_id: ws_of(row)?,
        integration_id: IntegrationId(get(row, "integration_id")?),
        dedupe_key: get(row, "dedupe_key")?,
        delivery_id: get(row, "delivery_id")?,
        object_key: get(row, "object_key")?,
        headers,
        body: Bytes::from(body),
        body_sha256: get(row, "body_sha256")?,
        auth: get(row, "auth")?,
        received_at: from_ts(get(row, "received_at")?)?,
        state,
        attempts,
        next_attempt_at: from_ts(get(row, "next_attempt_at")?)?,
        last_error: get(row, "last_error")?,
        lease: lease_of(row, id, state, attempts)?,
    })
}

fn outbox_of(row: &SqliteRow) -> Result<OutboxJob, StoreError> {
    let id: Uuid = get(row, "id")?;
    let state = parse_state(&get::<String>(row, "state")?)?;
    let attempts = u32_of(get(row, "attempts")?);
    Ok(OutboxJob {
        id: OutboxId(id),
        workspace_id: ws_of(row)?,
        task_id: TaskId(get(row, "task_id")?),
        integration_id: IntegrationId(get(row, "integration_id")?),
        state,
        attempts,
        next_attempt_at: from_ts(get(row, "next_attempt_at")?)?,
        last_error: get(row, "last_error")?,
        lease: lease_of(row, id, state, attempts)?,
    })
}

fn integration_of(row: &SqliteRow) -> Result<IntegrationRecord, StoreError> {
    let Json(config): Json<serde_json::Value> = get(row, "config")?;
    Ok(IntegrationRecord {
        id: IntegrationId(get(row, "id")?),
        workspace_id: ws_of(row)?,
        provider: ProviderKind::new(get::<String>(row, "provider")?),
        config,
        secrets: SealedSecrets(get(row, "secrets")?),
        paused_until: from_opt_ts(get(row, "paused_until")?)?,
        created_at: from_ts(get(row, "created_at")?)?,
    })
}

fn entry_of(row: &SqliteRow) -> Result<LedgerEntry, StoreError> {
    let idx: i64 = get(row, "idx")?;
    let record: String = get(row, "record")?;
    let record: LedgerDraft =
        serde_json::from_str(&record).map_err(|e| backend("ledger record", e))?;
    let leaf: Vec<u8> = get(row, "leaf_hash")?;
    let leaf_hash: [u8; 32] = leaf
        .as_slice()
        .try_into()
        .map_err(|_| backend("ledger leaf hash", "not 32 bytes"))?;
    Ok(LedgerEntry {
        idx: u64::try_from(idx).map_err(|e| backend("ledger index", e))?,
        logged_at: from_ts(get(row, "logged_at")?)?,
        record,
        bytes: get(row, "bytes")?,
        leaf_hash,
    })
}

// ---------------------------------------------------------------------------------------------
// Integrations

#[async_trait]
impl Integrations for SqliteStore {
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO ordonis_integrations
               (id, workspace_id, provider, config, secrets, paused_until, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(rec.id.0)
        .bind(rec.workspace_id.as_str())
        .bind(rec.provider.as_str())
        .bind(Json(&rec.config))
        .bind(&rec.secrets.0)
        .bind(rec.paused_until.map(ts))
        .bind(ts(rec.created_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        sqlx::query("SELECT * FROM ordonis_integrations WHERE id = ?1")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(integration_of)
            .transpose()
    }

    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM ordonis_integrations WHERE workspace_id = ?1 ORDER BY created_at, id",
        )
        .bind(ws.as_str())
        .fetch_all(&self.reader)
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
        let mut tx = self.begin().await?;
        let done =
            sqlx::query("UPDATE ordonis_integrations SET config = ?2, secrets = ?3 WHERE id = ?1")
                .bind(id.0)
                .bind(Json(config))
                .bind(&secrets.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("integration {id}")));
        }
        tx.commit().await.map_err(map_err)
    }

    async fn set_paused_until(
        &self,
        id: IntegrationId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE ordonis_integrations SET paused_until = ?2 WHERE id = ?1")
            .bind(id.0)
            .bind(until.map(ts))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("integration {id}")));
        }
        tx.commit().await.map_err(map_err)
    }
}

// ---------------------------------------------------------------------------------------------
// Inbox

// The candidates are a bounded window (?5 rows) of the due-index, in order, so a claim costs
// the same with 10 or 100,000 rows waiting; one row per object is then picked from the window.
// `state IN (...)` repeats the partial index's own condition so SQLite can use it.
const CLAIM_EVENTS: &str = concat!(
    "UPDATE ordonis_webhook_events
        SET state = 'processing', attempts = attempts + 1, lease_owner = ?3,
            lease_expires_at = ?4
      WHERE id IN (
        SELECT id FROM (
          SELECT c.id, c.received_at,
                 row_number() OVER (
                   PARTITION BY c.integration_id, COALESCE(c.object_key, hex(c.id))
                   ORDER BY c.received_at, c.id) AS rn
            FROM (
              SELECT e.id, e.integration_id, e.object_key, e.received_at
                FROM ordonis_webhook_events e
               WHERE e.state IN ('pending', 'processing')
                 AND ((e.state = 'pending' AND e.next_attempt_at <= ?1)
                   OR (e.state = 'processing' AND e.lease_expires_at <= ?1))
                 AND NOT EXISTS (SELECT 1 FROM ordonis_integrations i
                                  WHERE i.id = e.integration_id AND i.paused_until > ?1)
                 AND (e.object_key IS NULL OR NOT EXISTS (
                      SELECT 1 FROM ordonis_webhook_events f
                       WHERE f.integration_id = e.integration_id
                         AND f.object_key = e.object_key
                         AND f.state = 'processing'
                         AND f.lease_expires_at > ?1
                         AND f.id <> e.id))
               ORDER BY e.received_at, e.id
               LIMIT ?5) c)
         WHERE rn = 1
         ORDER BY received_at, id
         LIMIT ?2)
     RETURNING ",
    event_cols!()
);

const CLAIM_PUSHES: &str = concat!(
    "UPDATE ordonis_outbox
        SET state = 'processing', attempts = attempts + 1, lease_owner = ?3,
            lease_expires_at = ?4
      WHERE id IN (
        SELECT id FROM (
          SELECT c.id, c.created_at,
                 row_number() OVER (PARTITION BY c.task_id ORDER BY c.created_at, c.id) AS rn
            FROM (
              SELECT o.id, o.task_id, o.created_at
                FROM ordonis_outbox o
               WHERE o.state IN ('pending', 'processing')
                 AND ((o.state = 'pending' AND o.next_attempt_at <= ?1)
                   OR (o.state = 'processing' AND o.lease_expires_at <= ?1))
                 AND NOT EXISTS (SELECT 1 FROM ordonis_integrations i
                                  WHERE i.id = o.integration_id AND i.paused_until > ?1)
                 AND NOT EXISTS (
                      SELECT 1 FROM ordonis_outbox f
                       WHERE f.task_id = o.task_id
                         AND f.state = 'processing'
                         AND f.lease_expires_at > ?1
                         AND f.id <> o.id)
               ORDER BY o.created_at, o.id
               LIMIT ?5) c)
         WHERE rn = 1
         ORDER BY created_at, id
         LIMIT ?2)
     RETURNING ",
    outbox_cols!()
);

#[async_trait]
impl Inbox for SqliteStore {
    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        for ev in events {
            if ev.state == JobState::Processing {
                return Err(InvalidInput::new("state", "a new event cannot be processing").into());
            }
        }
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            let at = now();
            let inserted: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO ordonis_webhook_events
                   (id, workspace_id, integration_id, dedupe_key, delivery_id, object_key,
                    headers, body, body_sha256, auth, received_at, state, attempts,
                    next_attempt_at, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, ?11, ?13)
                 ON CONFLICT (integration_id, dedupe_key) DO NOTHING
                 RETURNING id",
            )
            .bind(ev.id.0)
            .bind(ev.workspace_id.as_str())
            .bind(ev.integration_id.0)
            .bind(&ev.dedupe_key)
            .bind(&ev.delivery_id)
            .bind(&ev.object_key)
            .bind(Json(&ev.headers))
            .bind(ev.body.as_ref())
            .bind(&ev.body_sha256)
            .bind(&ev.auth)
            .bind(at)
            .bind(ev.state.as_str())
            .bind(&ev.note)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            match inserted {
                Some(id) => out.push(InsertOutcome::Inserted(EventId(id))),
                None => {
                    let id: Uuid = sqlx::query_scalar(
                        "SELECT id FROM ordonis_webhook_events
                          WHERE integration_id = ?1 AND dedupe_key = ?2",
                    )
                    .bind(ev.integration_id.0)
                    .bind(&ev.dedupe_key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    out.push(InsertOutcome::Duplicate(EventId(id)));
                }
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn claim_events(&self, req: &ClaimRequest) -> Result<Vec<InboxEvent>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let at = now();
        let rows = sqlx::query(CLAIM_EVENTS)
            .bind(at)
            .bind(limit_of(req.limit))
            .bind(&req.worker)
            .bind(at.saturating_add(nanos(req.lease)))
            .bind(limit_of(req.limit.saturating_mul(4).max(16)))
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
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE ordonis_webhook_events
                SET state = ?4, next_attempt_at = COALESCE(?5, next_attempt_at),
                    attempts = MAX(attempts - ?6, 0), last_error = ?7,
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = ?1 AND state = 'processing' AND lease_owner = ?2 AND attempts = ?3",
        )
        .bind(lease.row)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .bind(state)
        .bind(at)
        .bind(dec)
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(format!("event {}", lease.row)));
        }
        tx.commit().await.map_err(map_err)
    }

    async fn event(&self, ws: &WorkspaceId, id: EventId) -> Result<Option<InboxEvent>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            event_cols!(),
            " FROM ordonis_webhook_events WHERE id = ?1 AND workspace_id = ?2"
        ))
        .bind(id.0)
        .bind(ws.as_str())
        .fetch_optional(&self.reader)
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
            " FROM ordonis_webhook_events
              WHERE workspace_id = ?1
                AND (?2 IS NULL OR integration_id = ?2)
                AND (?3 IS NULL OR state = ?3)
              ORDER BY received_at DESC, id DESC
              LIMIT ?4"
        ))
        .bind(ws.as_str())
        .bind(filter.integration_id.map(|i| i.0))
        .bind(filter.state.map(JobState::as_str))
        .bind(limit_of(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(event_of)
        .collect()
    }

    async fn replay_event(&self, ws: &WorkspaceId, id: EventId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE ordonis_webhook_events
                SET state = 'pending', attempts = 0, next_attempt_at = ?3,
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = ?1 AND workspace_id = ?2 AND state IN ('failed', 'dead')",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return tx.commit().await.map_err(map_err);
        }
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM ordonis_webhook_events WHERE id = ?1 AND workspace_id = ?2",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .fetch_optional(&mut *tx)
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
            &self.reader,
            "SELECT state, count(*) FROM ordonis_webhook_events GROUP BY state",
        )
        .await
    }
}

async fn counts(pool: &SqlitePool, sql: &'static str) -> Result<Vec<(JobState, u64)>, StoreError> {
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
impl Outbox for SqliteStore {
    async fn claim_pushes(&self, req: &ClaimRequest) -> Result<Vec<OutboxJob>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let at = now();
        let rows = sqlx::query(CLAIM_PUSHES)
            .bind(at)
            .bind(limit_of(req.limit))
            .bind(&req.worker)
            .bind(at.saturating_add(nanos(req.lease)))
            .bind(limit_of(req.limit.saturating_mul(4).max(16)))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let created: i64 = get(row, "created_at")?;
            jobs.push((created, outbox_of(row)?));
        }
        jobs.sort_by_key(|(created, j)| (*created, j.id));
        Ok(jobs.into_iter().map(|(_, j)| j).collect())
    }

    async fn fail_push(&self, lease: &Lease, error: &str, retry: Retry) -> Result<(), StoreError> {
        check_retry(retry)?;
        let (state, at, dec) = retry_parts(retry);
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE ordonis_outbox
                SET state = ?4, next_attempt_at = COALESCE(?5, next_attempt_at),
                    attempts = MAX(attempts - ?6, 0), last_error = ?7,
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = ?1 AND state = 'processing' AND lease_owner = ?2 AND attempts = ?3",
        )
        .bind(lease.row)
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
        .bind(state)
        .bind(at)
        .bind(dec)
        .bind(error)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(format!("push {}", lease.row)));
        }
        tx.commit().await.map_err(map_err)
    }

    async fn pushes(&self, ws: &WorkspaceId) -> Result<Vec<OutboxJob>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM ordonis_outbox WHERE workspace_id = ?1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(ws.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?
        .iter()
        .map(outbox_of)
        .collect()
    }

    async fn replay_push(&self, ws: &WorkspaceId, id: OutboxId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE ordonis_outbox
                SET state = 'pending', attempts = 0, next_attempt_at = ?3,
                    lease_owner = NULL, lease_expires_at = NULL
              WHERE id = ?1 AND workspace_id = ?2 AND state IN ('failed', 'dead')",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return tx.commit().await.map_err(map_err);
        }
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM ordonis_outbox WHERE id = ?1 AND workspace_id = ?2",
        )
        .bind(id.0)
        .bind(ws.as_str())
        .fetch_optional(&mut *tx)
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
            &self.reader,
            "SELECT state, count(*) FROM ordonis_outbox GROUP BY state",
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[async_trait]
impl Tasks for SqliteStore {
    async fn task(&self, ws: &WorkspaceId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let doc: Option<Json<Task>> =
            sqlx::query_scalar("SELECT doc FROM ordonis_tasks WHERE id = ?1 AND workspace_id = ?2")
                .bind(id.0)
                .bind(ws.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(map_err)?;
        Ok(doc.map(|Json(t)| t))
    }

    async fn tasks(&self, ws: &WorkspaceId) -> Result<Vec<Task>, StoreError> {
        let docs: Vec<Json<Task>> =
            sqlx::query_scalar("SELECT doc FROM ordonis_tasks WHERE workspace_id = ?1 ORDER BY id")
                .bind(ws.as_str())
                .fetch_all(&self.reader)
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
            "SELECT task_id FROM ordonis_external_objects
              WHERE integration_id = ?1 AND external_id = ?2 AND object_type = ?3
              ORDER BY rowid LIMIT 1",
        )
        .bind(integration.0)
        .bind(external_id)
        .bind(object_type)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(id.map(TaskId))
    }
}

// ---------------------------------------------------------------------------------------------
// Ledger

#[async_trait]
impl Ledger for SqliteStore {
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT size FROM ordonis_ledger_heads WHERE workspace_id = ?1")
                .bind(ws.as_str())
                .fetch_optional(&self.reader)
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
            "SELECT idx, logged_at, record, bytes, leaf_hash FROM ordonis_vera_ledger
              WHERE workspace_id = ?1 AND idx >= ?2 ORDER BY idx LIMIT ?3",
        )
        .bind(ws.as_str())
        .bind(i64_of(from)?)
        .bind(limit_of(limit))
        .fetch_all(&self.reader)
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
            "SELECT idx, logged_at, record, bytes, leaf_hash FROM ordonis_vera_ledger
              WHERE workspace_id = ?1 AND task_id = ?2 ORDER BY idx",
        )
        .bind(ws.as_str())
        .bind(task.0)
        .fetch_all(&self.reader)
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
        let mut tx = self.begin().await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT note FROM ordonis_vera_checkpoints WHERE workspace_id = ?1 AND size = ?2",
        )
        .bind(ws.as_str())
        .bind(size)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        match existing {
            Some(n) if n == checkpoint.note => Ok(()),
            Some(_) => Err(StoreError::Conflict(format!(
                "a different checkpoint of size {} is stored already",
                checkpoint.size
            ))),
            None => {
                sqlx::query(
                    "INSERT INTO ordonis_vera_checkpoints (workspace_id, size, note)
                     VALUES (?1, ?2, ?3)",
                )
                .bind(ws.as_str())
                .bind(size)
                .bind(&checkpoint.note)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }
        }
    }

    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(
            "SELECT size, note FROM ordonis_vera_checkpoints
              WHERE workspace_id = ?1 ORDER BY size DESC LIMIT 1",
        )
        .bind(ws.as_str())
        .fetch_optional(&self.reader)
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
    tx: &mut Transaction<'static, Sqlite>,
    ws: &WorkspaceId,
    completion: &Completion,
) -> Result<(), StoreError> {
    let (sql, lease, note, what): (&'static str, &Lease, Option<&str>, &str) = match completion {
        Completion::None => return Ok(()),
        Completion::Inbox { lease, note } => (
            "UPDATE ordonis_webhook_events
                SET state = 'done', last_error = ?5, lease_owner = NULL, lease_expires_at = NULL
              WHERE id = ?1 AND workspace_id = ?2 AND state = 'processing'
                AND lease_owner = ?3 AND attempts = ?4",
            lease,
            note.as_deref(),
            "event",
        ),
        Completion::Outbox { lease } => (
            "UPDATE ordonis_outbox
                SET state = 'done', last_error = ?5, lease_owner = NULL, lease_expires_at = NULL
              WHERE id = ?1 AND workspace_id = ?2 AND state = 'processing'
                AND lease_owner = ?3 AND attempts = ?4",
            lease,
            None,
            "push",
        ),
    };
    let done = sqlx::query(sql)
        .bind(lease.row)
        .bind(ws.as_str())
        .bind(&lease.owner)
        .bind(i64::from(lease.attempt))
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
impl Store for SqliteStore {
    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
        validate(&uow)?;
        let ws = uow.workspace_id.clone();
        let mut tx = self.begin().await?;

        complete(&mut tx, &ws, &uow.completion).await?;

        if let Some(tw) = &uow.task {
            let t = &tw.task;
            let n = match tw.expected_revision {
                None => sqlx::query(
                    "INSERT INTO ordonis_tasks (id, workspace_id, revision, deleted, updated_at, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                )
                .bind(t.id.0)
                .bind(ws.as_str())
                .bind(i64_of(t.revision)?)
                .bind(t.deleted)
                .bind(ts(t.updated_at))
                .bind(Json(t))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected(),
                Some(expected) => sqlx::query(
                    "UPDATE ordonis_tasks
                        SET revision = ?3, deleted = ?4, updated_at = ?5, doc = ?6
                      WHERE id = ?1 AND workspace_id = ?2 AND revision = ?7",
                )
                .bind(t.id.0)
                .bind(ws.as_str())
                .bind(i64_of(t.revision)?)
                .bind(t.deleted)
                .bind(ts(t.updated_at))
                .bind(Json(t))
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
            sqlx::query(
                "INSERT INTO ordonis_external_objects
                   (integration_id, provider, external_id, object_type, workspace_id, task_id, url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (integration_id, provider, external_id, object_type) DO NOTHING",
            )
            .bind(ext.integration_id.0)
            .bind(ext.provider.as_str())
            .bind(&ext.external_id)
            .bind(&ext.object_type)
            .bind(ws.as_str())
            .bind(task_id.0)
            .bind(&ext.url)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            let existing: Uuid = sqlx::query_scalar(
                "SELECT task_id FROM ordonis_external_objects
                  WHERE integration_id = ?1 AND provider = ?2 AND external_id = ?3
                    AND object_type = ?4",
            )
            .bind(ext.integration_id.0)
            .bind(ext.provider.as_str())
            .bind(&ext.external_id)
            .bind(&ext.object_type)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            if existing != task_id.0 {
                return Err(StoreError::Conflict(format!(
                    "{} {} is mapped to another task",
                    ext.object_type, ext.external_id
                )));
            }
        }

        let mut entries = Vec::with_capacity(uow.ledger.len());
        if !uow.ledger.is_empty() {
            let n = i64::try_from(uow.ledger.len()).unwrap_or(i64::MAX);
            let start: i64 = sqlx::query_scalar(
                "INSERT INTO ordonis_ledger_heads (workspace_id, size) VALUES (?1, ?2)
                 ON CONFLICT (workspace_id) DO UPDATE SET size = size + excluded.size
                 RETURNING size - ?2",
            )
            .bind(ws.as_str())
            .bind(n)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            let start = u64::try_from(start).map_err(|e| backend("ledger head", e))?;
            let logged_at = now_micros();
            for (i, draft) in uow.ledger.iter().enumerate() {
                let idx = start + i as u64;
                let record =
                    serde_json::to_string(draft).map_err(|e| backend("ledger record", e))?;
                let entry = LedgerEntry::seal(draft.clone(), idx, logged_at);
                sqlx::query(
                    "INSERT INTO ordonis_vera_ledger
                       (workspace_id, idx, logged_at, task_id, record, bytes, leaf_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .bind(ws.as_str())
                .bind(i64_of(idx)?)
                .bind(ts(logged_at))
                .bind(draft.task_id.0)
                .bind(record)
                .bind(&entry.bytes)
                .bind(entry.leaf_hash.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                entries.push(entry);
            }
        }

        let mut outbox = None;
        if let Some((task_id, integration_id)) = &uow.enqueue_push {
            let pending: Option<Uuid> = sqlx::query_scalar(
                "SELECT id FROM ordonis_outbox
                  WHERE task_id = ?1 AND integration_id = ?2 AND state = 'pending'
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
                    let at = now();
                    sqlx::query(
                        "INSERT INTO ordonis_outbox
                           (id, workspace_id, task_id, integration_id, state, attempts,
                            next_attempt_at, created_at)
                         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
                    )
                    .bind(id)
                    .bind(ws.as_str())
                    .bind(task_id.0)
                    .bind(integration_id.0)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    id
                }
            };
            outbox = Some(OutboxId(id));
        }

        tx.commit().await.map_err(map_err)?;
        Ok(CommitReceipt { entries, outbox })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_exactly() {
        let t = OffsetDateTime::now_utc();
        assert_eq!(from_ts(ts(t)).ok(), Some(t));
    }

    #[test]
    fn retry_parts_decrement_only_when_deferred() {
        let t = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(retry_parts(Retry::At(t)), ("pending", Some(0), 0));
        assert_eq!(retry_parts(Retry::Deferred(t)), ("pending", Some(0), 1));
        assert_eq!(retry_parts(Retry::Never(JobState::Dead)), ("dead", None, 0));
        assert!(check_retry(Retry::Never(JobState::Pending)).is_err());
    }
}
