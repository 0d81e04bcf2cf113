//! Ordonis's [`Store`](ordonis_core::Store) and VERA [`Ledger`](ordonis_core::Ledger) on
//! SQLite: the embedded default, for one machine.
//!
//! The statements, the queue life cycle and the unit of work are `ordonis-store-sql`'s; this
//! crate is its SQLite dialect ([`Sqlite`]): encodings, error classes, the single writer and
//! the claim statement.
//!
//! * One database file in WAL mode with a busy timeout and `synchronous = FULL`; every write
//!   goes through a single writer connection (transactions start with `BEGIN IMMEDIATE`), so
//!   writers never deadlock on lock upgrades, while readers use a separate pool.
//!   `sqlite::memory:` works too (one connection for everything).
//! * Embedded migrations recorded in `_ordonis_migrations` (never the host's
//!   `_sqlx_migrations`), applied by [`SqliteStore::connect`].
//! * Times are stored as integer nanoseconds (UTC), so they round-trip exactly; ids are
//!   16-byte UUID blobs; JSON is text. The ledger tables reject `UPDATE` and `DELETE` with
//!   triggers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ordonis_core::StoreError> {
//! use ordonis_store_sqlite::SqliteStore;
//! let store = SqliteStore::connect("ordonis.db").await?;
//! let mem = SqliteStore::connect("sqlite::memory:").await?;
//! # let _ = (store, mem); Ok(()) }
//! ```

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use ordonis_core::{ClaimRequest, InvalidInput, StoreError};
use ordonis_store_sql::{Arg, Dialect, QueueTable, SqlStore};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

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

/// `(version, checksum)` of the migrations a migrator embeds.
fn known(m: &Migrator) -> Vec<(i64, &[u8])> {
    m.iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, &*m.checksum))
        .collect()
}

/// A store on a writer pool (best with one connection) and a reader pool of the same
/// database (the same pool twice for `sqlite::memory:`). Does not migrate: call
/// [`Sqlite::migrate`].
pub fn from_pools(writer: SqlitePool, reader: SqlitePool) -> SqliteStore {
    SqlStore::new(Sqlite::new(writer, reader))
}

/// The SQLite dialect: one writer, a pool of readers, and the claim statements.
#[derive(Clone, Debug)]
pub struct Sqlite {
    writer: SqlitePool,
    reader: SqlitePool,
    claims: std::sync::Arc<[String; 2]>,
}

impl Sqlite {
    /// The dialect over a writer pool and a reader pool.
    pub fn new(writer: SqlitePool, reader: SqlitePool) -> Self {
        let claims = std::sync::Arc::new([
            claim_sql(&ordonis_store_sql::INBOX),
            claim_sql(&ordonis_store_sql::OUTBOX),
        ]);
        Self {
            writer,
            reader,
            claims,
        }
    }

    /// Applies the embedded migrations (idempotent). A database written by a newer Ordonis
    /// (a migration this build does not know) is refused with [`StoreError::NewerSchema`],
    /// one whose migration differs from this build's with [`StoreError::MigrationChanged`],
    /// both before anything is written.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let m = migrator();
        let known = known(&m);
        ordonis_store_sql::schema::check(&known, &self.applied_migrations().await?)?;
        m.run(&self.writer).await.map_err(|e| match e {
            // Another process migrated between the check and the run.
            MigrateError::VersionMissing(applied) => StoreError::NewerSchema {
                applied,
                known: ordonis_store_sql::schema::newest_known(&known),
            },
            MigrateError::VersionMismatch(version) => StoreError::MigrationChanged { version },
            e => StoreError::backend(format!("migration failed: {e}")).with_source(e),
        })
    }

    /// The `(version, checksum)` of every migration the database has applied (none before
    /// the first start: the table does not exist yet).
    async fn applied_migrations(&self) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let exists = sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1")
            .bind(MIGRATIONS_TABLE)
            .fetch_optional(&self.writer)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        sqlx::query(AssertSqlSafe(format!(
            "SELECT version, checksum FROM {MIGRATIONS_TABLE}"
        )))
        .fetch_all(&self.writer)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|r| Ok((r.try_get("version")?, r.try_get("checksum")?)))
                .collect()
        })
        .map_err(map_err)
    }

    /// Closes both pools (checkpointing the WAL).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The claim: a bounded window of due rows in order, one per serial key (a window
/// function), leased in the same statement. The single writer is the lock.
fn claim_sql(t: &QueueTable) -> String {
    let serial_c: Vec<String> = t.serial.iter().map(|c| format!("c.{c}")).collect();
    let serial_e: Vec<String> = t.serial.iter().map(|c| format!("e.{c}")).collect();
    let last = t.serial.last().copied().unwrap_or("id");
    format!(
        "UPDATE ordonis_{table}
            SET state = 'processing', attempts = attempts + 1, lease_owner = $3,
                lease_expires_at = $4
          WHERE id IN (
            SELECT id FROM (
              SELECT c.id, c.at,
                     row_number() OVER (
                       PARTITION BY {serial_c}, CASE WHEN c.{last} IS NULL THEN c.id END
                       ORDER BY c.at, c.id) AS rn
                FROM (
                  SELECT e.id, {serial_e}, e.{order} AS at
                    FROM ordonis_{table} e
                   WHERE e.state IN ('pending', 'processing')
                     AND ((e.state = 'pending' AND e.next_attempt_at <= $1)
                       OR (e.state = 'processing' AND e.lease_expires_at <= $1))
                     AND NOT EXISTS (SELECT 1 FROM ordonis_integrations i
                                      WHERE i.id = e.integration_id AND (i.paused_until > $1 OR i.state <> 'active'))
                     AND {guard}
                   ORDER BY e.{order}, e.id
                   LIMIT $5) c)
             WHERE rn = 1
             ORDER BY at, id
             LIMIT $2)
         RETURNING {columns}",
        table = t.table,
        serial_c = serial_c.join(", "),
        serial_e = serial_e.join(", "),
        order = t.order_by,
        guard = ordonis_store_sql::in_flight_guard(t, "ordonis_", "$1"),
        columns = t.columns,
    )
}

/// Maps a sqlx error onto the store's error classes.
fn map_err(e: sqlx::Error) -> StoreError {
    let classified = match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let msg = db.message().to_owned();
            match code.as_str() {
                // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
                "2067" | "1555" => StoreError::Conflict(msg),
                // SQLITE_BUSY*, SQLITE_LOCKED*
                "5" | "6" | "261" | "517" | "773" | "262" => StoreError::unavailable(msg),
                "19" | "275" | "787" | "1299" | "1811" => {
                    StoreError::Invalid(InvalidInput::new("row", msg))
                }
                _ => StoreError::backend(format!("{code}: {msg}")),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::unavailable(e.to_string()),
        _ => StoreError::backend(e.to_string()),
    };
    classified.with_source(e)
}

/// A time as integer nanoseconds since the epoch (clamped to what an i64 holds).
fn ts(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

fn from_ts(n: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|e| StoreError::backend(format!("time: {e}")))
}

fn decode_int(row: &SqliteRow, col: &str) -> Result<i64, sqlx::Error> {
    row.try_get(col)
}

fn decode_time(row: &SqliteRow, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    row.try_get::<Option<i64>, _>(col)
        .map_err(map_err)?
        .map(from_ts)
        .transpose()
}

ordonis_store_sql::sqlx_dialect_glue! {
    dialect: Sqlite,
    db: sqlx::Sqlite,
    row: SqliteSqlRow,
    reader: reader,
    writer: writer,
    encode_text: |t: String| t,
    encode_time: ts,
    decode_time: decode_time,
    decode_int: decode_int,
}

/// Creates a missing database file empty with mode 0600 (SQLite takes an empty file for a
/// new database), so that its secrets-adjacent contents are not readable by others whatever
/// the umask. SQLite gives the `-wal` and `-shm` files it creates the database file's
/// permissions (it `fchmod`s them to match), so they are 0600 too. An existing file is left
/// as it is.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if path.as_os_str().is_empty() || path.exists() {
            return Ok(());
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::backend(format!(
                "cannot create {}: {e}",
                path.display()
            ))),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[async_trait]
impl Dialect for Sqlite {
    const PREFIX: &'static str = "ordonis_";

    /// Three characters or more: the trigram FTS5 index (case-insensitive substring, the
    /// text quoted as one phrase). Shorter: `LIKE` on the title (SQLite's `LIKE` folds
    /// ASCII case only), since a trigram index cannot answer fewer than three characters.
    fn title_search(&self, param: usize, text: &str) -> (String, Arg) {
        if text.chars().count() >= 3 {
            (
                format!(
                    "t.rowid IN (SELECT rowid FROM ordonis_tasks_fts \
                     WHERE ordonis_tasks_fts MATCH ${param})"
                ),
                Arg::text(format!("\"{}\"", text.replace('"', "\"\""))),
            )
        } else {
            (
                format!("t.title LIKE ${param} ESCAPE '\\'"),
                Arg::text(ordonis_store_sql::like_pattern(text)),
            )
        }
    }

    /// Opens (creating if missing) a database from a path (`ordonis.db`) or a URL
    /// (`sqlite://ordonis.db`, `sqlite::memory:`), and applies the migrations.
    async fn connect(path_or_url: &str) -> Result<Self, StoreError> {
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
        let dialect = if memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(map_err)?;
            Sqlite::new(pool.clone(), pool)
        } else {
            create_private(options.get_filename())?;
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
            Sqlite::new(writer, reader)
        };
        dialect.migrate().await?;
        Ok(dialect)
    }

    async fn begin(&self) -> Result<Self::Tx, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }

    async fn claim(
        &self,
        t: &QueueTable,
        req: &ClaimRequest,
    ) -> Result<Vec<SqliteSqlRow>, StoreError> {
        let sql = match t.queue {
            ordonis_core::Queue::Inbox => &self.claims[0],
            ordonis_core::Queue::Outbox => &self.claims[1],
        };
        let now = ts(OffsetDateTime::now_utc());
        let lease = i64::try_from(req.lease.as_nanos()).unwrap_or(i64::MAX);
        let got = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(now)
            .bind(i64::try_from(req.limit).unwrap_or(i64::MAX))
            .bind(&req.worker)
            .bind(now.saturating_add(lease))
            .bind(ordonis_store_sql::claim_window(req.limit))
            .fetch_all(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(rows(got))
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
    fn claim_statements_partition_by_serial_key() {
        let inbox = claim_sql(&ordonis_store_sql::INBOX);
        assert!(
            inbox.contains("PARTITION BY c.integration_id, c.object_key"),
            "{inbox}"
        );
        let outbox = claim_sql(&ordonis_store_sql::OUTBOX);
        assert!(outbox.contains("UPDATE ordonis_outbox"), "{outbox}");
    }
}
