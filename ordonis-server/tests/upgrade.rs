//! Upgrades lose nothing. A database written by the previous release's own server (the
//! committed fixtures in `tests/fixtures/upgrade/`, made by `scripts/make-upgrade-fixture.sh`:
//! see the README there) opens under today's server: the migrations run; the tasks, mappings,
//! comments, sessions, people, queue rows and ledger read as the old server read them; the
//! pending rows are processed and the dead one replays; a new webhook and a new push go
//! through; and the old checkpoint is a prefix of the new one (a consistency proof). A
//! database written by a newer release is refused by the binary, untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Api, TOKEN, eventually};
use ordonis_core::vera::{
    Checkpoint, ExportCheck, TrustedKeys, check_consistency, export::parse_proof, verify_export,
};
use ordonis_core::{IntegrationUpdate, StoreExt as _, WorkspaceId};
use ordonis_fakes::asana::FakeAsana;
use ordonis_fakes::jira::FakeJira;
use ordonis_server::{Config, Server};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection as _, Row as _};

/// The release the fixtures come from.
const RELEASE: &str = "v0.1.0";

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upgrade")
        .join(name)
}

/// What the old server said it held (the fixture's manifest).
fn manifest(store: &str) -> Value {
    let path = fixture_path(&format!("{RELEASE}.{store}.json"));
    let m: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // The fixture covers what it must: a regenerated one that lost a kind of row fails here.
    let states = |key: &str| -> Vec<String> {
        m[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(states("events").contains(&"pending".to_owned()), "{path:?}");
    assert!(states("events").contains(&"done".to_owned()), "{path:?}");
    assert!(states("pushes").contains(&"pending".to_owned()), "{path:?}");
    assert!(states("pushes").contains(&"dead".to_owned()), "{path:?}");
    let count = |key: &str| {
        m[key]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_array().unwrap().len())
            .sum::<usize>()
    };
    assert!(count("comments") >= 2 && count("sessions") >= 1, "{path:?}");
    assert!(!m["people"].as_array().unwrap().is_empty(), "{path:?}");
    assert_eq!(m["admin_token"], TOKEN, "the tests' admin token");
    m
}

/// `old` is kept in `new`: every field of an object with an equal value, arrays of the same
/// length, element by element. A newer release may add fields; it may not lose or change one.
fn assert_kept(old: &Value, new: &Value, at: &str) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, v) in o {
                let now = n
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} is gone: {new}"));
                assert_kept(v, now, &format!("{at}.{k}"));
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            assert_eq!(o.len(), n.len(), "{at}: {} then, {} now", o.len(), n.len());
            for (i, (a, b)) in o.iter().zip(n).enumerate() {
                assert_kept(a, b, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(old, new, "{at}"),
    }
}

fn config(database_url: &str, m: &Value, workers: usize) -> Config {
    let mut c = Config::for_tests(database_url);
    c.secret_key = Some(m["secret_key"].as_str().unwrap().to_owned());
    c.workers = workers;
    c
}

fn ws(m: &Value) -> String {
    m["workspace_id"].as_str().unwrap().to_owned()
}

/// Today's server reads what the old one held, field for field, and signs with the same key.
async fn reads_as_before(database_url: &str, m: &Value) {
    let server = Server::start(&config(database_url, m, 0)).await.unwrap();
    let api = Api::new(&server);
    let ws = ws(m);
    let tasks = Value::Array(api.tasks(&ws).await);
    assert_kept(&m["tasks"], &tasks, "tasks");
    // The migration backfilled each task's stored sync state: each has one, and the
    // indexed filter finds exactly the tasks in it.
    for state in [
        "in_sync",
        "push_pending",
        "conflict",
        "error",
        "out_of_scope",
    ] {
        let listed = tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["sync_state"] == state)
            .count();
        let filtered = api.tasks_where(&ws, &format!("&sync_state={state}")).await;
        assert_eq!(filtered.len(), listed, "sync_state={state}");
    }
    assert!(
        tasks
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["sync_state"].is_string()),
        "{tasks}"
    );
    for (task, comments) in m["comments"].as_object().unwrap() {
        let (_, v) = api.get(&format!("/api/tasks/{task}/comments")).await;
        assert_kept(comments, &v["comments"], &format!("comments of {task}"));
    }
    for (task, sessions) in m["sessions"].as_object().unwrap() {
        let (_, v) = api.get(&format!("/api/tasks/{task}/sessions")).await;
        let ids: Vec<&Value> = v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["id"])
            .collect();
        let old: Vec<&Value> = sessions
            .as_array()
            .unwrap()
            .iter()
            .map(|s| &s["id"])
            .collect();
        assert_eq!(ids, old, "sessions of {task}");
        for s in sessions.as_array().unwrap() {
            let (_, now) = api
                .get(&format!("/api/sessions/{}", s["id"].as_str().unwrap()))
                .await;
            assert_kept(s, &now, "session");
        }
    }
    let (_, people) = api.get(&format!("/api/workspaces/{ws}/people")).await;
    assert_kept(&m["people"], &people["people"], "people");
    let (_, events) = api
        .get(&format!("/api/events?workspace_id={ws}&limit=1000"))
        .await;
    assert_kept(&m["events"], &events["events"], "events");
    let (_, pushes) = api
        .get(&format!("/api/pushes?workspace_id={ws}&limit=1000"))
        .await;
    assert_kept(&m["pushes"], &pushes["pushes"], "pushes");
    let (_, ledger) = api
        .get(&format!("/api/ledger/{ws}/entries?limit=1000"))
        .await;
    assert_kept(&m["ledger"], &ledger, "ledger");
    // The same checkpoint key: what a witness pinned still verifies what we sign.
    let (_, keys) = api.get_text(&format!("/api/ledger/{ws}/keys")).await;
    assert_eq!(keys, m["verifier_keys"].as_str().unwrap());
    server.shutdown().await;
}

/// The new fakes the upgraded integrations talk to (the old ones lived only as long as the
/// process that made the fixture), holding the issues and tasks the old ones held.
async fn fakes(m: &Value) -> (FakeJira, FakeAsana) {
    let jira = FakeJira::start().await.unwrap();
    for issue in m["jira_issues"].as_array().unwrap() {
        // The fixture's issues are real webhook bodies from other sites' projects, delivered
        // to an integration scoped `project = HO`. Today's id sweep (#30) would take them out
        // of scope, as it should for such issues; here they are in the scope's project, so
        // that the sweep the upgraded server runs finds every one of them.
        let mut issue = issue.clone();
        issue["fields"]["project"] = json!({"id": "10000", "key": "HO", "name": "HO"});
        jira.insert_issue(issue);
    }
    let asana = FakeAsana::start(m["asana_token"].as_str().unwrap())
        .await
        .unwrap();
    for t in m["asana_tasks"].as_array().unwrap() {
        asana.insert_task(t["gid"].as_str().unwrap(), t["name"].as_str().unwrap());
    }
    (jira, asana)
}

/// Points the fixture's integrations at the new fakes, through today's store.
async fn repoint(store: &dyn ordonis_core::Store, m: &Value, jira: &FakeJira, asana: &FakeAsana) {
    for (key, base) in [
        ("jira_integration", jira.base_url()),
        ("asana_integration", asana.base_url()),
    ] {
        let id = m[key].as_str().unwrap().parse().unwrap();
        let mut config = store.integration(id).await.unwrap().unwrap().config;
        config["base_url"] = json!(base);
        let update = IntegrationUpdate {
            config: Some(config),
            ..IntegrationUpdate::default()
        };
        store.update_integration(id, &update).await.unwrap();
    }
}

fn task_of<'a>(tasks: &'a [Value], external_id: &str) -> &'a Value {
    tasks
        .iter()
        .find(|t| t["external"][0]["external_id"] == external_id)
        .unwrap_or_else(|| panic!("no task for {external_id}: {tasks:?}"))
}

/// The upgraded server keeps working: pending rows are processed, the dead push replays, a
/// new webhook and a new push go through, and the ledger extends the old checkpoint.
async fn keeps_working(database_url: &str, m: &Value, jira: &FakeJira) {
    let server = Server::start(&config(database_url, m, 1)).await.unwrap();
    let api = Api::new(&server);
    let ws = ws(m);
    let jira_id = m["jira_integration"].as_str().unwrap();
    let (_, integration) = api.get(&format!("/api/integrations/{jira_id}")).await;
    jira.set_webhook(
        integration["webhook_url"].as_str().unwrap(),
        m["jira_webhook_secret"].as_str().unwrap(),
    );
    let old_tasks = m["tasks"].as_array().unwrap();
    let summary = |id: &str| jira.issue(id).unwrap()["fields"]["summary"].clone();

    // The pending delivery is processed; the pending push is sent.
    let pushes = m["pushes"].as_array().unwrap();
    let pending = pushes.iter().find(|p| p["state"] == "pending").unwrap();
    let dead = pushes.iter().find(|p| p["state"] == "dead").unwrap();
    let issue_of = |push: &Value| {
        let task = old_tasks
            .iter()
            .find(|t| t["id"] == push["task_id"])
            .unwrap();
        task["external"][0]["external_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (pending_issue, dead_issue) = (issue_of(pending), issue_of(dead));
    let pending_title = pending["task"]["title"].clone();
    eventually("the pending push sent", || async {
        (summary(&pending_issue) == pending_title).then_some(())
    })
    .await;
    eventually("the pending delivery processed", || async {
        let now = api.events(&format!("?workspace_id={ws}&limit=1000")).await;
        m["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|old| {
                now.iter()
                    .any(|e| e["id"] == old["id"] && e["state"] == "done")
            })
            .then_some(())
    })
    .await;
    let tasks = api.tasks(&ws).await;
    assert_eq!(
        task_of(&tasks, &dead_issue)["priority"]["name"],
        "Highest",
        "the pending delivery's change"
    );

    // The dead push replays.
    let (s, v) = api
        .post(
            &format!("/api/pushes/{}/replay", dead["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let dead_title = dead["task"]["title"].clone();
    eventually("the replayed push sent", || async {
        (summary(&dead_issue) == dead_title).then_some(())
    })
    .await;

    // A new webhook, and a new push.
    let status = jira
        .update_issue(&dead_issue, &json!({"duedate": "2027-03-01"}), "acc-bob")
        .await
        .unwrap();
    assert_eq!(status, 200);
    let task_id = task_of(&tasks, &dead_issue)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually("the new delivery processed", || async {
        let (_, t) = api.get(&format!("/api/tasks/{task_id}")).await;
        (t["due_date"] == "2027-03-01").then_some(())
    })
    .await;
    let (s, v) = api
        .patch(
            &format!("/api/tasks/{task_id}"),
            &json!({"actor": {"kind": "human", "id": "usr_bob"},
                    "fields": {"title": "Renamed after the upgrade"}}),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    eventually("the new push sent", || async {
        (summary(&dead_issue) == "Renamed after the upgrade").then_some(())
    })
    .await;
    assert!(jira.echoes_sent(Duration::from_secs(10)).await);
    eventually("every push done", || async {
        let (_, v) = api
            .get(&format!("/api/pushes?workspace_id={ws}&limit=1000"))
            .await;
        v["pushes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "done")
            .then_some(())
    })
    .await;

    // The ledger: the old checkpoint, signed by the old server, is a prefix of the new one.
    let trusted = TrustedKeys::parse(m["verifier_keys"].as_str().unwrap()).unwrap();
    let old: Checkpoint = trusted.verify(m["checkpoint"].as_str().unwrap()).unwrap();
    let (_, note) = api.get_text(&format!("/api/ledger/{ws}/checkpoint")).await;
    let new = trusted.verify(&note).unwrap();
    assert!(new.size > old.size, "{old:?} then, {new:?} now");
    let (s, proof) = api
        .get_text(&format!(
            "/api/ledger/{ws}/consistency?from={}&to={}",
            old.size, new.size
        ))
        .await;
    assert_eq!(s, 200, "{proof}");
    check_consistency(&old, &new, &parse_proof(&proof).unwrap()).unwrap();
    let (_, ex) = api.get(&format!("/api/ledger/{ws}/export")).await;
    let excp = trusted.verify(ex["checkpoint"].as_str().unwrap()).unwrap();
    let report = verify_export(
        std::io::Cursor::new(ex["entries"].as_str().unwrap().as_bytes()),
        &excp,
        &ExportCheck::default(),
    )
    .unwrap();
    assert_eq!(report.size, excp.size);
    server.shutdown().await;
}

#[tokio::test]
async fn upgrades_a_sqlite_database_of_the_previous_release() {
    let m = manifest("sqlite");
    let path = common::sqlite_path();
    std::fs::copy(fixture_path(&format!("{RELEASE}.sqlite")), &path).unwrap();
    let url = format!("sqlite://{}", path.display());
    let applied = || async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let v: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT version FROM {} WHERE success ORDER BY version",
            ordonis_store_sqlite::MIGRATIONS_TABLE
        )))
        .fetch_all(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        v
    };
    let before = applied().await;
    reads_as_before(path.to_str().unwrap(), &m).await;
    // Every migration this build knows has run, after the release's own.
    let known: Vec<i64> = ordonis_store_sqlite::migrator()
        .iter()
        .map(|m| m.version)
        .collect();
    let after = applied().await;
    assert_eq!(after, known);
    assert!(after.starts_with(&before), "{before:?} then, {after:?} now");

    let (jira, asana) = fakes(&m).await;
    let store = ordonis_store_sqlite::SqliteStore::connect(path.to_str().unwrap())
        .await
        .unwrap();
    repoint(&store, &m, &jira, &asana).await;
    store.dialect().close().await;
    keeps_working(path.to_str().unwrap(), &m, &jira).await;
}

/// The dump restored by executing its statements (it holds `INSERT`s, not `COPY`), so CI
/// needs no `psql`; only psql's own meta-commands (`\restrict`, which pg_dump writes since
/// 15.14) are left out.
async fn restore(url: &str, dump: &str) {
    let sql: String = dump
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n");
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

#[tokio::test]
async fn upgrades_a_postgres_database_of_the_previous_release() {
    let m = manifest("pg");
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let dump = std::fs::read_to_string(fixture_path(&format!("{RELEASE}.pg.sql"))).unwrap();
    restore(&url, &dump).await;
    let applied = || async {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        let v: Vec<i64> = sqlx::query(AssertSqlSafe(format!(
            "SELECT version FROM {} WHERE success ORDER BY version",
            ordonis_store_postgres::MIGRATIONS_TABLE
        )))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
        c.close().await.unwrap();
        v
    };
    let before = applied().await;
    assert!(!before.is_empty(), "the dump restored no migrations");
    reads_as_before(&url, &m).await;
    let known: Vec<i64> = ordonis_store_postgres::migrator()
        .iter()
        .map(|m| m.version)
        .collect();
    let after = applied().await;
    assert_eq!(after, known);
    assert!(after.starts_with(&before), "{before:?} then, {after:?} now");

    let (jira, asana) = fakes(&m).await;
    let store = ordonis_store_postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    repoint(&store, &m, &jira, &asana).await;
    store.dialect().close().await;
    keeps_working(&url, &m, &jira).await;
    common::drop_pg(&name).await;
}

/// `ordonis-server` and `ordonis-worker` on a database a newer release migrated: each says
/// which migrations and what to do, exits non-zero, and leaves the database as it was.
#[tokio::test]
async fn the_binaries_refuse_a_database_of_a_newer_release_and_exit() {
    let path = common::sqlite_path();
    let store = ordonis_store_sqlite::SqliteStore::connect(path.to_str().unwrap())
        .await
        .unwrap();
    let ws = WorkspaceId::new("acme").unwrap();
    assert_eq!(store.all_tasks(&ws).await.unwrap().len(), 0);
    store.dialect().close().await;
    let url = format!("sqlite://{}", path.display());
    let rows = || async {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let v: Vec<String> = sqlx::query(AssertSqlSafe(format!(
            "SELECT version || ' ' || hex(checksum) FROM {} ORDER BY version",
            ordonis_store_sqlite::MIGRATIONS_TABLE
        )))
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
        c.close().await.unwrap();
        v
    };
    {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (version, description, success, checksum, execution_time)
             VALUES (9998, 'from a newer release', 1, x'00ff', 0),
                (9999, 'from a newer release', 1, x'00ff', 0)",
            ordonis_store_sqlite::MIGRATIONS_TABLE
        )))
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let before = rows().await;
    let known = ordonis_store_sqlite::migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    for (bin, exe) in [
        ("ordonis-server", env!("CARGO_BIN_EXE_ordonis-server")),
        ("ordonis-worker", env!("CARGO_BIN_EXE_ordonis-worker")),
    ] {
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new(exe)
                .env("ORDONIS_DATABASE_URL", &path)
                .env("ORDONIS_LISTEN", "127.0.0.1:0")
                .env("ORDONIS_ADMIN_TOKEN", TOKEN)
                .env("ORDONIS_SECRET_KEY", hex_key())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{bin} did not exit"))
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bin}: {stderr}");
        let parts = [
            format!("{bin}: SQLite: the database was written by a newer Ordonis"),
            "migration 9999 applied".to_owned(),
            format!("migrations up to {known}"),
            "Run the Ordonis release that wrote it".to_owned(),
        ];
        for part in parts {
            assert!(stderr.contains(&part), "{part:?} not in {stderr:?}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains("listening") && !stdout.contains("running"),
            "{bin} started: {stdout}"
        );
    }
    assert_eq!(rows().await, before);
}

fn hex_key() -> String {
    "07".repeat(32)
}
