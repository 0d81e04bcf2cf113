//! What the store benchmarks share: a fresh store of each kind (and its removal), and the
//! check that a run left a gapless, unaltered ledger.

use std::path::PathBuf;
use std::sync::Arc;

use ordonis_core::{Store, WorkspaceId};
use ordonis_store_postgres::PostgresStore;
use ordonis_store_sqlite::SqliteStore;
use sqlx::postgres::PgConnectOptions;

use crate::pgbench::{BenchError, create_database, drop_database};

/// A fresh store of one kind, and how to get rid of it.
#[allow(missing_debug_implementations)] // store handles: nothing worth printing
pub enum Fresh {
    /// A database of its own on the PostgreSQL server.
    Pg {
        /// The store.
        store: PostgresStore,
        /// The database's name.
        db: String,
    },
    /// A file in a temporary directory.
    Sqlite {
        /// The store.
        store: SqliteStore,
        /// The directory.
        dir: PathBuf,
    },
}

impl Fresh {
    /// A fresh PostgreSQL database on `server`, migrated, with a pool of `max_connections`
    /// (`None`: the store's default).
    pub async fn pg(
        server: &PgConnectOptions,
        max_connections: Option<u32>,
    ) -> Result<Self, BenchError> {
        let db = format!(
            "ordonis_bench_{}_{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        );
        create_database(server, &db).await?;
        let mut options = ordonis_store_postgres::pool_options();
        if let Some(n) = max_connections {
            options = options.max_connections(n);
        }
        let pool = options.connect_with(server.clone().database(&db)).await?;
        ordonis_store_postgres::migrate(&pool).await?;
        Ok(Fresh::Pg {
            store: ordonis_store_postgres::from_pool(pool),
            db,
        })
    }

    /// A fresh SQLite file in a temporary directory.
    pub async fn sqlite() -> Result<Self, BenchError> {
        let dir = std::env::temp_dir().join(format!(
            "ordonis-bench-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let store = SqliteStore::connect(&dir.join("bench.db").display().to_string()).await?;
        Ok(Fresh::Sqlite { store, dir })
    }

    /// The store.
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Fresh::Pg { store, .. } => Arc::new(store.clone()),
            Fresh::Sqlite { store, .. } => Arc::new(store.clone()),
        }
    }

    /// Closes the store and removes its database or file.
    pub async fn discard(self, server: &PgConnectOptions) -> Result<(), BenchError> {
        match self {
            Fresh::Pg { store, db } => {
                store.dialect().close().await;
                drop_database(server, &db).await?;
            }
            Fresh::Sqlite { store, dir } => {
                store.dialect().close().await;
                std::fs::remove_dir_all(dir)?;
            }
        }
        Ok(())
    }
}

/// Checks that a workspace's ledger is gapless and every entry's leaf hash matches its bytes;
/// returns its size.
pub async fn check_ledger(store: &dyn Store, ws: &WorkspaceId) -> Result<u64, BenchError> {
    let size = store.ledger_size(ws).await?;
    let mut at = 0;
    while at < size {
        let page = store.ledger_entries(ws, at, 1_000).await?;
        if page.is_empty() {
            return Err(format!("ledger ends at {at} of {size}").into());
        }
        for e in &page {
            if e.idx != at || e.leaf_hash != ordonis_core::vera::leaf_hash(&e.bytes) {
                return Err(format!("ledger entry {at} is out of place or altered").into());
            }
            at += 1;
        }
    }
    Ok(size)
}
