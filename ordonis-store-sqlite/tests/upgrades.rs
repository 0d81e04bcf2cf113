//! A database written by a newer Ordonis, or migrated by a diverging build, is refused at
//! connect with the versions and what to do, and is left as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use ordonis_core::StoreError;
use ordonis_store_sqlite::{MIGRATIONS_TABLE, SqliteStore};
use sqlx::{AssertSqlSafe, Row};

fn temp_db(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ordonis-{name}-{}.db", uuid::Uuid::now_v7()))
}

async fn raw(path: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

/// A database the store created and migrated, closed.
async fn migrated(name: &str) -> PathBuf {
    let path = temp_db(name);
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    store.dialect().close().await;
    path
}

/// What a refused connect must not change: the schema and the applied migrations.
async fn snapshot(path: &Path) -> Vec<String> {
    let pool = raw(path).await;
    let mut out: Vec<String> =
        sqlx::query("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.get::<String, _>(0),
                    r.get::<String, _>(1),
                    r.get::<String, _>(2)
                )
            })
            .collect();
    out.extend(
        sqlx::query(AssertSqlSafe(format!(
            "SELECT version, hex(checksum), success FROM {MIGRATIONS_TABLE} ORDER BY version"
        )))
        .fetch_all(&pool)
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
    pool.close().await;
    out
}

fn newest_known() -> i64 {
    ordonis_store_sqlite::migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap()
}

#[tokio::test]
async fn a_database_of_a_newer_release_is_refused_with_both_versions_and_left_unchanged() {
    let path = migrated("newer").await;
    // What newer releases leave: their migrations recorded, and what they created. Two: the
    // refusal names the newest (sqlx alone names the first it does not know).
    let pool = raw(&path).await;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {MIGRATIONS_TABLE} (version, description, success, checksum, execution_time)
         VALUES (9998, 'from a newer release', 1, x'00ff', 0),
                (9999, 'from a newer release', 1, x'00ff', 0)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE ordonis_from_the_future (x INTEGER)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let before = snapshot(&path).await;

    let err = SqliteStore::connect(path.to_str().unwrap())
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
        "Run the Ordonis release that wrote it",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg:?}");
    }
    assert_eq!(snapshot(&path).await, before);
}

#[tokio::test]
async fn a_migration_changed_since_it_was_applied_is_refused_and_left_unchanged() {
    let path = migrated("changed").await;
    let pool = raw(&path).await;
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE {MIGRATIONS_TABLE} SET checksum = x'00ff' WHERE version = 2"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let before = snapshot(&path).await;

    let err = SqliteStore::connect(path.to_str().unwrap())
        .await
        .expect_err("a changed migration must be refused");
    assert_eq!(err, StoreError::MigrationChanged { version: 2 });
    let msg = err.to_string();
    assert!(
        msg.contains("migration 2 is not this binary's migration 2"),
        "{msg}"
    );
    assert!(msg.contains("Nothing was changed"), "{msg}");
    assert_eq!(snapshot(&path).await, before);
}

#[tokio::test]
async fn a_database_of_this_release_or_an_empty_file_opens() {
    let path = migrated("same").await;
    let store = SqliteStore::connect(path.to_str().unwrap()).await.unwrap();
    store.dialect().close().await;
    // A file with no migrations table at all (a new database) is migrated.
    let empty = temp_db("empty");
    std::fs::File::create(&empty).unwrap();
    let store = SqliteStore::connect(empty.to_str().unwrap()).await.unwrap();
    store.dialect().close().await;
    let last = snapshot(&empty).await.pop().unwrap();
    assert!(
        last.starts_with(&format!("migration {} ", newest_known())),
        "{last}"
    );
}
