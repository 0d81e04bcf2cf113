//! The per-dialect layer: everything the SQL stores do differently, and nothing else.
//!
//! A [`Dialect`] binds [`Arg`]s in its own encodings (PostgreSQL `timestamptz`/`uuid`/`jsonb`;
//! SQLite integer nanoseconds, UUID blobs, JSON text), decodes its rows through [`SqlRow`],
//! classifies its errors, opens its transactions (PostgreSQL `BEGIN`; SQLite's single writer
//! with `BEGIN IMMEDIATE`), names its tables ([`Dialect::PREFIX`]), and claims queue rows
//! with its own lock primitive (PostgreSQL `FOR UPDATE SKIP LOCKED` under an advisory lock;
//! SQLite's one writer). The statements, the commit, the queue life cycle and the row
//! decoding are written once, in this crate, over it.
//!
//! Why a value enum rather than sqlx's generic `Database` bounds: written generically, every
//! function carries a dozen higher-ranked `Encode`/`Decode`/`Executor` bounds, and each new
//! column type adds one to all of them. Here a dialect matches on eight variants once.

use std::borrow::Cow;
use std::fmt;

use async_trait::async_trait;
use ordonis_core::{ClaimRequest, Queue, StoreError, TaskId};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use uuid::Uuid;

/// A bound parameter, in the crate's neutral types; each dialect encodes it its own way.
#[derive(Clone, Debug)]
pub enum Arg {
    /// A UUID (PostgreSQL `uuid`, SQLite 16-byte blob).
    Uuid(Uuid),
    /// Text, possibly NULL.
    Text(Option<String>),
    /// A 64-bit integer.
    Int(i64),
    /// A boolean (SQLite: 0/1).
    Bool(bool),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A time, possibly NULL (PostgreSQL `timestamptz`, SQLite integer nanoseconds, UTC).
    Time(Option<OffsetDateTime>),
    /// A JSON document, possibly NULL (PostgreSQL `jsonb`, SQLite text).
    Json(Option<Box<RawValue>>),
}

impl Arg {
    /// Non-null text.
    pub fn text(s: impl Into<String>) -> Self {
        Arg::Text(Some(s.into()))
    }

    /// A non-null time.
    pub fn time(t: OffsetDateTime) -> Self {
        Arg::Time(Some(t))
    }
}

/// Typed column access on one result row, by column name.
pub trait SqlRow: Send {
    /// A UUID column.
    fn uuid(&self, col: &str) -> Result<Uuid, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// An integer column (any width).
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    /// A byte column.
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
    /// A nullable time column.
    fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>, StoreError>;
    /// A JSON column, as its text.
    fn json(&self, col: &str) -> Result<Box<RawValue>, StoreError>;

    /// A non-null text column.
    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.opt_text(col)?
            .ok_or_else(|| StoreError::backend(format!("column {col} is NULL")))
    }

    /// A non-null time column.
    fn time(&self, col: &str) -> Result<OffsetDateTime, StoreError> {
        self.opt_time(col)?
            .ok_or_else(|| StoreError::backend(format!("column {col} is NULL")))
    }
}

/// How a queue's table is laid out, for the claim statement each dialect renders once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueTable {
    /// The queue.
    pub queue: Queue,
    /// Table name without the dialect's prefix.
    pub table: &'static str,
    /// The column rows are claimed in order of (ties broken by `id`).
    pub order_by: &'static str,
    /// Rows equal on these columns are never in flight together (a NULL never matches, so
    /// an event without an object key is serialized with nothing).
    pub serial: &'static [&'static str],
    /// The columns the row decoder reads.
    pub columns: &'static str,
}

/// SQL text handed to a dialect: a rendered template, or a statement built for one call
/// (multi-row inserts).
pub type Sql = Cow<'static, str>;

/// Running statements: the part of a dialect that is the same for every sqlx driver but for
/// its types. The dialect crates get it from [`sqlx_dialect_glue!`](crate::sqlx_dialect_glue)
/// rather than writing it out twice.
#[async_trait]
pub trait Exec: Send + Sync + fmt::Debug + 'static {
    /// A result row.
    type Row: SqlRow;
    /// An open transaction.
    type Tx: Send;

    /// Commits a transaction.
    async fn commit(&self, tx: Self::Tx) -> Result<(), StoreError>;
    /// Runs a statement in a transaction; the number of rows it changed.
    async fn execute(&self, tx: &mut Self::Tx, sql: Sql, args: Vec<Arg>)
    -> Result<u64, StoreError>;
    /// Runs a query in a transaction.
    async fn fetch(
        &self,
        tx: &mut Self::Tx,
        sql: Sql,
        args: Vec<Arg>,
    ) -> Result<Vec<Self::Row>, StoreError>;
    /// Runs a read-only query outside any transaction.
    async fn read(&self, sql: Sql, args: Vec<Arg>) -> Result<Vec<Self::Row>, StoreError>;
    /// Runs one writing statement on its own (autocommit), returning its rows.
    async fn write(&self, sql: Sql, args: Vec<Arg>) -> Result<Vec<Self::Row>, StoreError>;
    /// Runs one writing statement on its own (autocommit); the number of rows it changed.
    async fn write_count(&self, sql: Sql, args: Vec<Arg>) -> Result<u64, StoreError>;
}

/// What a SQL store needs from its database beyond running statements. See the module
/// documentation.
#[async_trait]
pub trait Dialect: Exec {
    /// Prefix of every table name: `ordonis.` (a schema) or `ordonis_`.
    const PREFIX: &'static str;

    /// What ends a `SELECT` that must hold its rows until the commit (PostgreSQL
    /// ` FOR UPDATE`; a dialect with a single writer needs nothing).
    const ROW_LOCK: &'static str = "";

    /// Opens the database a URL names, ready for use (migrated).
    async fn connect(url: &str) -> Result<Self, StoreError>
    where
        Self: Sized;

    /// Opens a write transaction.
    async fn begin(&self) -> Result<Self::Tx, StoreError>;

    /// Claims due rows of a queue (see [`ordonis_core::Store::claim`]), returning
    /// `table.columns` of each claimed row. The dialect's lock primitive lives here.
    async fn claim(
        &self,
        table: &QueueTable,
        req: &ClaimRequest,
    ) -> Result<Vec<Self::Row>, StoreError>;

    /// Serializes the transactions that coalesce pushes of one task (PostgreSQL: an advisory
    /// lock). A dialect with a single writer needs nothing.
    async fn lock_task(&self, _tx: &mut Self::Tx, _task: TaskId) -> Result<(), StoreError> {
        Ok(())
    }

    /// The condition of a case-insensitive title search for `text` on the tasks aliased `t`,
    /// and its argument, bound as `$param`. The default is `t.title ILIKE '%text%'`
    /// (PostgreSQL, where a trigram index answers it).
    fn title_search(&self, param: usize, text: &str) -> (String, Arg) {
        (
            format!("t.title ILIKE ${param} ESCAPE '\\'"),
            Arg::text(crate::task_query::like_pattern(text)),
        )
    }

    /// Whether the dialect keeps a queryable JSON copy of each webhook body (`body_json`).
    fn keeps_body_json(&self) -> bool {
        false
    }
}
