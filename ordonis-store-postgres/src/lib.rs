//! Ordonis's [`Store`](ordonis_core::Store) and VERA [`Ledger`](ordonis_core::Ledger) on
//! PostgreSQL: the production store, for any number of servers and workers on one database.
//!
//! The statements, the queue life cycle and the unit of work are `ordonis-store-sql`'s; this
//! crate is its PostgreSQL dialect ([`Pg`]): encodings (`uuid`, `timestamptz`, `jsonb`),
//! error classes, the advisory locks, and the claim statement.
//!
//! * Everything lives in the `ordonis` schema; the embedded migrations record themselves in
//!   `ordonis._migrations`, so they never collide with the host application's own sqlx
//!   migrations. [`migrate`] is idempotent and safe to run from several processes at once
//!   (sqlx takes an advisory lock while it migrates).
//! * Queries are built at run time (no `query!` macros), so a host's `DATABASE_URL` never
//!   affects how this crate compiles. No TLS feature is forced: enable `sqlx/tls-*` in the host.
//! * The inbox (`ordonis.webhook_events`) is the job queue: claims use
//!   `FOR UPDATE SKIP LOCKED` inside a materialized CTE, one row per object per batch, skip
//!   objects with a row in flight and paused integrations, and lease the rows against the
//!   database's clock; completions and failures are fenced on the lease owner and attempt.
//! * A unit of work is one transaction. The ledger tables reject `UPDATE`, `DELETE` and
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
use ordonis_core::{ClaimRequest, InvalidInput, Queue, StoreError, TaskId};
use ordonis_store_sql::{Dialect, QueueTable, SqlStore};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Postgres, Row, TypeInfo, ValueRef};
use time::OffsetDateTime;

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Pg>;

/// Name of Ordonis's own migrations table.
pub const MIGRATIONS_TABLE: &str = "ordonis._migrations";

/// Advisory-lock class for Ordonis (`'ordo'` as an int4).
const LOCK_CLASS: i32 = 0x6f72_646f;
/// Advisory-lock class for per-task outbox coalescing.
const LOCK_CLASS_TASK: i32 = 0x6f72_6474;

/// The embedded migrations, configured with Ordonis's own migrations table and schema.
pub fn migrator() -> Migrator {
    let mut m = sqlx::migrate!();
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m.create_schema("ordonis");
    m
}

/// Applies Ordonis's migrations to a database (idempotent; safe to run concurrently). A
/// database written by a newer Ordonis (a migration this build does not know) is refused with
/// [`StoreError::NewerSchema`], one whose migration differs from this build's with
/// [`StoreError::MigrationChanged`], both before anything is written.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let m = migrator();
    let known = known(&m);
    ordonis_store_sql::schema::check(&known, &applied_migrations(pool).await?)?;
    m.run(pool).await.map_err(|e| match e {
        // Another process migrated between the check and the run.
        MigrateError::VersionMissing(applied) => StoreError::NewerSchema {
            applied,
            known: ordonis_store_sql::schema::newest_known(&known),
        },
        MigrateError::VersionMismatch(version) => StoreError::MigrationChanged { version },
        e => StoreError::backend(format!("migration failed: {e}")).with_source(e),
    })
}

/// `(version, checksum)` of the migrations a migrator embeds.
fn known(m: &Migrator) -> Vec<(i64, &[u8])> {
    m.iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, &*m.checksum))
        .collect()
}

/// The `(version, checksum)` of every migration the database has applied (none before the
/// first start: the table does not exist yet).
async fn applied_migrations(pool: &PgPool) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(MIGRATIONS_TABLE)
        .fetch_one(pool)
        .await
        .map_err(map_err)?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query(AssertSqlSafe(format!(
        "SELECT version, checksum FROM {MIGRATIONS_TABLE}"
    )))
    .fetch_all(pool)
    .await
    .and_then(|rows| {
        rows.iter()
            .map(|r| Ok((r.try_get("version")?, r.try_get("checksum")?)))
            .collect()
    })
    .map_err(map_err)
}

/// The pool settings Ordonis recommends: a 10 s acquire timeout, and no test query before
/// each acquire (a dead connection fails its statement with a retryable
/// [`StoreError::Unavailable`] instead, and the pool replaces it): on the hot path the test
/// query is one more round trip per unit of work.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
}

/// Creates a database on the server `admin_url` names (for throwaway test and benchmark
/// databases). The name must be lowercase ASCII letters, digits and `_`.
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    admin_statement(admin_url, name, "CREATE DATABASE").await
}

/// Drops a database (closing its connections) on the server `admin_url` names, if it exists.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    admin_statement(admin_url, name, "DROP DATABASE IF EXISTS").await?;
    Ok(())
}

async fn admin_statement(admin_url: &str, name: &str, verb: &str) -> Result<(), StoreError> {
    use sqlx::Connection as _;
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain {
        return Err(InvalidInput::new("database name", "use a-z, 0-9 and _ only").into());
    }
    let mut admin = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(map_err)?;
    let force = if verb.starts_with("DROP") {
        " WITH (FORCE)"
    } else {
        ""
    };
    // The name is checked above: identifiers cannot be bound as parameters.
    sqlx::query(AssertSqlSafe(format!("{verb} {name}{force}")))
        .execute(&mut admin)
        .await
        .map_err(map_err)?;
    let _ = admin.close().await;
    Ok(())
}

/// A store on an existing pool. Does not migrate: call [`migrate`] once at start-up.
pub fn from_pool(pool: PgPool) -> PostgresStore {
    SqlStore::new(Pg::new(pool))
}

/// The PostgreSQL dialect: a pool, and the claim statements rendered for it.
#[derive(Clone, Debug)]
pub struct Pg {
    pool: PgPool,
    claims: Arc<[String; 2]>,
}

impl Pg {
    /// The dialect over a pool.
    pub fn new(pool: PgPool) -> Self {
        let claims = Arc::new([
            claim_sql(&ordonis_store_sql::INBOX),
            claim_sql(&ordonis_store_sql::OUTBOX),
        ]);
        Self { pool, claims }
    }

    /// Applies the embedded migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool).await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The claim: a materialized, `SKIP LOCKED` window of due rows in order; one per serial key
/// (`DISTINCT ON`); leased with the database's clock.
fn claim_sql(t: &QueueTable) -> String {
    let now = "statement_timestamp()";
    let serial = t.serial.join(", ");
    let returning: Vec<String> = t.columns.split(", ").map(|c| format!("w.{c}")).collect();
    format!(
        "WITH cand AS MATERIALIZED (
            SELECT e.id, {serial_e}, e.{order} AS at
              FROM ordonis.{table} e
             WHERE ((e.state = 'pending' AND e.next_attempt_at <= {now})
                 OR (e.state = 'processing' AND e.lease_expires_at <= {now}))
               AND NOT EXISTS (SELECT 1 FROM ordonis.integrations i
                                WHERE i.id = e.integration_id AND (i.paused_until > {now} OR i.state <> 'active'))
               AND {guard}
             ORDER BY e.{order}, e.id
             LIMIT $2
             FOR UPDATE OF e SKIP LOCKED
         ), one AS (
            SELECT DISTINCT ON ({serial}, CASE WHEN {last} IS NULL THEN id END) id, at
              FROM cand
             ORDER BY {serial}, CASE WHEN {last} IS NULL THEN id END, at, id
         ), pick AS (
            SELECT id FROM one ORDER BY at, id LIMIT $1
         )
         UPDATE ordonis.{table} w
            SET state = 'processing', attempts = w.attempts + 1, lease_owner = $3,
                lease_expires_at = {now} + $4::bigint * interval '1 microsecond'
           FROM pick
          WHERE w.id = pick.id
         RETURNING {returning}",
        serial_e = t
            .serial
            .iter()
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
        order = t.order_by,
        table = t.table,
        guard = ordonis_store_sql::in_flight_guard(t, "ordonis.", now),
        last = t.serial.last().copied().unwrap_or("id"),
        returning = returning.join(", "),
    )
}

/// Maps a sqlx error onto the store's error classes.
fn map_err(e: sqlx::Error) -> StoreError {
    let classified = match &e {
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
                    StoreError::unavailable(msg)
                }
                _ => StoreError::backend(format!("{code}: {msg}")),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed => StoreError::unavailable(e.to_string()),
        _ => StoreError::backend(e.to_string()),
    };
    classified.with_source(e)
}

/// PostgreSQL `text` cannot hold NUL, and a verified delivery must still be stored: a NUL in
/// a key taken from a payload (an issue id, a delivery id) is kept as U+FFFD. Every read and
/// write of a key goes through here, so look-ups stay consistent. (The exact body is kept as
/// `bytea`; its `jsonb` copy is left NULL when it holds `\u0000`.)
fn text_without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

/// `int4` columns (attempts) widen to `i64`; everything else is read as `int8`.
fn decode_int(row: &PgRow, col: &str) -> Result<i64, sqlx::Error> {
    let raw = row.try_get_raw(col)?;
    if !raw.is_null() && raw.type_info().name() == "INT4" {
        return row.try_get::<i32, _>(col).map(i64::from);
    }
    row.try_get(col)
}

fn decode_time(row: &PgRow, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.try_get(col).map_err(map_err)
}

ordonis_store_sql::sqlx_dialect_glue! {
    dialect: Pg,
    db: Postgres,
    row: PgSqlRow,
    reader: pool,
    writer: pool,
    encode_text: text_without_nul,
    encode_time: |t: OffsetDateTime| t,
    decode_time: decode_time,
    decode_int: decode_int,
}

#[async_trait]
impl Dialect for Pg {
    const PREFIX: &'static str = "ordonis.";
    const ROW_LOCK: &'static str = " FOR UPDATE";

    /// Connects with [`pool_options`] and 10 connections, and applies the migrations.
    async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = pool_options()
            .max_connections(10)
            .connect(url)
            .await
            .map_err(map_err)?;
        migrate(&pool).await?;
        Ok(Pg::new(pool))
    }

    async fn begin(&self) -> Result<Self::Tx, StoreError> {
        // sqlx 0.9.0's `begin` is not cancel-safe on PostgreSQL (transact-rs/sqlx#4393): a
        // caller dropped during the `BEGIN` round trip (a client that disconnects, an aborted
        // task) hands the connection back to the pool inside a transaction nothing ends; later
        // statements run in it and its row locks stall every claim. In a task of its own the
        // `BEGIN` always completes, and a caller gone by then only drops a finished
        // transaction, which rolls back.
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|e| StoreError::unavailable("the BEGIN task ended early").with_source(e))?
            .map_err(map_err)
    }

    async fn claim(&self, t: &QueueTable, req: &ClaimRequest) -> Result<Vec<PgSqlRow>, StoreError> {
        let (key, sql) = match t.queue {
            Queue::Inbox => (1, &self.claims[0]),
            Queue::Outbox => (2, &self.claims[1]),
        };
        let mut tx = self.begin().await?;
        // Claims of a queue are serialized (they are short): two concurrent claimers could
        // otherwise each take a different row of the same object, neither seeing the other's
        // uncommitted claim.
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(LOCK_CLASS)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let lease = i64::try_from(req.lease.as_micros()).unwrap_or(i64::MAX);
        let got = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
            .bind(ordonis_store_sql::claim_window(req.limit))
            .bind(&req.worker)
            .bind(lease)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows(got))
    }

    async fn lock_task(&self, tx: &mut Self::Tx, task: TaskId) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
            .bind(LOCK_CLASS_TASK)
            .bind(task.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    fn keeps_body_json(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrator_uses_own_table() {
        let m = migrator();
        assert!(m.iter().count() >= 1);
    }

    #[test]
    fn claim_statements_name_their_tables() {
        let inbox = claim_sql(&ordonis_store_sql::INBOX);
        assert!(inbox.contains("ordonis.webhook_events w"), "{inbox}");
        assert!(inbox.contains("f.object_key = e.object_key"), "{inbox}");
        let outbox = claim_sql(&ordonis_store_sql::OUTBOX);
        assert!(outbox.contains("DISTINCT ON (task_id"), "{outbox}");
    }
}
