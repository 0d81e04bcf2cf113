//! Test databases: one fresh database per test on the server named by
//! `ORDONIS_TEST_DATABASE_URL`. Unset: tests are skipped, unless `ORDONIS_REQUIRE_PG=1`.
#![allow(dead_code, unreachable_pub)]

use std::str::FromStr;
use std::sync::Arc;

use ordonis_core::Store;
use ordonis_store_postgres::PostgresStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

/// The server URL, `None` to skip. Panics when `ORDONIS_REQUIRE_PG=1` and it is unset.
pub fn server_url() -> Option<String> {
    match std::env::var("ORDONIS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("ORDONIS_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("ORDONIS_REQUIRE_PG=1 but ORDONIS_TEST_DATABASE_URL is not set");
            }
            eprintln!("skipped: ORDONIS_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// A fresh, migrated database.
#[derive(Debug)]
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Options to connect to it.
    pub options: PgConnectOptions,
    server: PgConnectOptions,
}

impl TestDb {
    /// Creates a database with a random name; `None` when tests are skipped.
    pub async fn create() -> Option<Self> {
        let url = server_url()?;
        let server = PgConnectOptions::from_str(&url)
            .unwrap_or_else(|e| panic!("bad ORDONIS_TEST_DATABASE_URL {url:?}: {e}"));
        let mut admin = PgConnection::connect_with(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {url:?}: {e}"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Suite cases cannot drop their database (the factory hands out only the store), so
        // each run reaps the test databases of runs more than an hour old.
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'ordonis\\_test\\_%'",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
        for db in old {
            let born = db
                .split('_')
                .nth(2)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            if born + 3600 < now {
                let _ = sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            }
        }
        let name = format!("ordonis_test_{now}_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = admin.close().await;
        let options = server.clone().database(&name);
        Some(Self {
            name,
            options,
            server,
        })
    }

    /// A migrated store on the database with a pool of `max` connections.
    pub async fn store(&self, max: u32) -> PostgresStore {
        self.store_and_pool(max).await.0
    }

    /// A migrated store, and the pool it runs on (for tests that reach below the `Store`).
    pub async fn store_and_pool(&self, max: u32) -> (PostgresStore, PgPool) {
        let pool = ordonis_store_postgres::pool_options()
            .max_connections(max)
            .connect_with(self.options.clone())
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.name));
        ordonis_store_postgres::migrate(&pool)
            .await
            .unwrap_or_else(|e| panic!("migrate: {e}"));
        (ordonis_store_postgres::from_pool(pool.clone()), pool)
    }

    /// A plain pool on the database, for checks below the `Store` API.
    pub async fn raw(&self) -> PgPool {
        PgPool::connect_with(self.options.clone())
            .await
            .unwrap_or_else(|e| panic!("connect {}: {e}", self.name))
    }

    /// Drops the database (closing its connections).
    pub async fn drop_db(self) {
        if let Ok(mut admin) = PgConnection::connect_with(&self.server).await {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await;
            let _ = admin.close().await;
        }
    }
}

/// The suite's factory: a fresh database per case (left behind, reaped by a later run after
/// an hour; named `ordonis_test_<unix secs>_<uuid>`).
pub async fn fresh_store() -> Option<Arc<dyn Store>> {
    let db = TestDb::create().await?;
    Some(Arc::new(db.store(10).await))
}
