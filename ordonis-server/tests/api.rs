//! HTTP tests of every endpoint and every bad input, run twice: on the embedded SQLite store
//! and on `MemoryStore` (`ordonis-store-memory`; the server speaks only the `Store` contract,
//! so any store works). Plus what only a SQLite file has: generated token and key files.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The same cases, on purpose, once per store: each module picks its store from its path.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "api/cases.rs"]
mod sqlite;

#[path = "api/cases.rs"]
mod memory;

#[tokio::test]
async fn generated_token_and_key_files_are_private_and_reused() {
    let path = common::sqlite_path();
    let mut config = ordonis_server::Config::for_tests(path.to_string_lossy().into_owned());
    config.admin_token = None;
    config.secret_key = None;
    let server = common::start_with(config.clone()).await;
    let token = server.admin_token.value.clone();
    assert!(matches!(
        server.admin_token.origin,
        ordonis_server::config::Origin::Generated(_)
    ));
    server.shutdown().await;
    for suffix in ["admin-token", "secret-key"] {
        let f = path.with_file_name(format!("ordonis.db.{suffix}"));
        let meta = std::fs::metadata(&f).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
        let _ = meta;
    }
    let again = common::start_with(config).await;
    assert_eq!(again.admin_token.value, token);
    assert!(matches!(
        again.admin_token.origin,
        ordonis_server::config::Origin::File(_)
    ));
    let r = reqwest::Client::new()
        .get(format!("{}/api/events", again.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    again.shutdown().await;
    // PostgreSQL never gets generated secrets.
    let mut pg = ordonis_server::Config::for_tests("postgres://postgres@127.0.0.1:1/x");
    pg.admin_token = None;
    let err = ordonis_server::Server::start(&pg)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ORDONIS_ADMIN_TOKEN"), "{err}");
}
