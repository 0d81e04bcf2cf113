//! A database written by a newer Ordonis, or migrated by a diverging build, is refused at
//! connect with the versions and what to do, and is left as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestDb;
use ordonis_core::StoreError;
use ordonis_store_postgres::{MIGRATIONS_TABLE, PostgresStore};
use sqlx::{AssertSqlSafe, PgPool, Row};

/// The test database's URL (connect() is what a server calls).
fn url(db: &TestDb) -> String {
    let server = std::env::var("ORDONIS_TEST_DATABASE_URL").unwrap();
    match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{}", db.name),
        None => server,
    }
}

/// What a refused connect must not change: the tables, functions and applied migrations.
async fn snapshot(pool: &PgPool) -> Vec<String> {
    let mut out: Vec<String> = sqlx::query(
        "SELECT table_schema::text || '.' || table_name::text FROM information_schema.tables
          WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    out.extend(
        sqlx::query(AssertSqlSafe(format!(
            "SELECT version, encode(checksum, 'hex'), success FROM {MIGRATIONS_TABLE} ORDER BY version"
        )))
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "migration {} {} {}",
                r.get::<i64, _>(0),
                r.get::<String, _>(1),
                r.get::<bool, _>(2)
            )
        }),
    );
    out
}

fn newest_known() -> i64 {
    ordonis_store_postgres::migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap()
}

#[tokio::test]
async fn a_database_of_a_newer_release_is_refused_with_both_versions_and_left_unchanged() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (store, pool) = db.store_and_pool(2).await;
    drop(store);
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {MIGRATIONS_TABLE} (version, description, success, checksum, execution_time)
         VALUES (9998, 'from a newer release', true, '\\x00ff', 0),
                (9999, 'from a newer release', true, '\\x00ff', 0)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE ordonis.from_the_future (x int)")
        .execute(&pool)
        .await
        .unwrap();
    let before = snapshot(&pool).await;

    let err = PostgresStore::connect(&url(&db))
        .await
        .expect_err("a newer database must be refused");
    let known = newest_known();
    assert_eq!(
        err,
        StoreError::NewerSchema {
            applied: 9999,
            known
        }
    );
    let msg = err.to_string();
    for part in [
        "written by a newer Ordonis",
        "migration 9999 applied",
        &format!("migrations up to {known}"),
        "Nothing was changed",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg:?}");
    }
    // `migrate` on a host's own pool refuses the same way.
    assert_eq!(
        ordonis_store_postgres::migrate(&pool).await.err(),
        Some(err)
    );
    assert_eq!(snapshot(&pool).await, before);
    pool.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_migration_changed_since_it_was_applied_is_refused_and_left_unchanged() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let (store, pool) = db.store_and_pool(2).await;
    drop(store);
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {MIGRATIONS_TABLE} SET checksum = '\\x00ff' WHERE version = 3"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let before = snapshot(&pool).await;

    let err = PostgresStore::connect(&url(&db))
        .await
        .expect_err("a changed migration must be refused");
    assert_eq!(err, StoreError::MigrationChanged { version: 3 });
    let msg = err.to_string();
    assert!(
        msg.contains("migration 3 is not this binary's migration 3"),
        "{msg}"
    );
    assert_eq!(snapshot(&pool).await, before);
    pool.close().await;
    db.drop_db().await;
}
