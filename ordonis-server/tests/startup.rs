//! Start-up refusals: a database URL that names no supported store, a SQLite file in a
//! directory that does not exist, and a secret key that is not the store's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ordonis_server::{Config, Server};

/// `mysql://…` and `postgress://…` were taken for SQLite file names (`./mysql:/…`), with a
/// fresh token and key beside them. They are refused, naming the flag, and nothing is created.
#[tokio::test]
async fn unknown_database_schemes_are_refused_at_start() {
    for url in [
        "mysql://root@localhost/ordonis",
        "postgress://postgres@127.0.0.1/x",
    ] {
        let err = Server::start(&Config::for_tests(url))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--database-url") && err.contains("ORDONIS_DATABASE_URL"),
            "{err}"
        );
        assert!(err.contains("unsupported scheme"), "{err}");
        let scheme = url.split_once("//").unwrap().0;
        assert!(
            !std::path::Path::new(scheme).exists(),
            "{scheme} was created"
        );
    }
}

/// A SQLite database in a directory that does not exist is refused; the directory is not
/// created unasked (nor its token and key files).
#[tokio::test]
async fn a_missing_database_directory_is_not_created() {
    let dir = std::env::temp_dir().join(format!("ordonis-no-such-dir-{}", uuid::Uuid::now_v7()));
    let mut config = Config::for_tests(dir.join("ordonis.db").to_string_lossy().into_owned());
    config.admin_token = None;
    config.secret_key = None;
    let err = Server::start(&config).await.unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("--database-url"), "{err}");
    assert!(!dir.exists(), "the directory was created");
}

/// A server (or worker) started with another secret key than the store's used to start and
/// then fail every job. The key is checked against the store's key-check record at start.
#[tokio::test]
async fn a_wrong_secret_key_refuses_to_start() {
    let path = common::sqlite_path();
    let config = Config::for_tests(path.to_string_lossy().into_owned());
    let server = Server::start(&config).await.unwrap();
    server.shutdown().await;
    // The same key starts again.
    let server = Server::start(&config).await.unwrap();
    server.shutdown().await;
    let mut wrong = config.clone();
    wrong.secret_key = Some(hex::encode([8u8; 32]));
    let err = Server::start(&wrong).await.unwrap_err().to_string();
    assert!(
        err.contains("secret key")
            && err.contains("ORDONIS_SECRET_KEY")
            && err.contains("refusing"),
        "{err}"
    );
    // Any store: the check is through the `Store` contract.
    let store = std::sync::Arc::new(ordonis_store_memory::MemoryStore::new());
    let server = Server::start_on(&config, store.clone()).await.unwrap();
    server.shutdown().await;
    let err = Server::start_on(&wrong, store)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing to start"), "{err}");
}
