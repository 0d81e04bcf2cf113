//! The raw-SQL baseline: the research scripts in `pgbench/` run by `pgbench` against a database
//! of their own on the same server, at the same concurrency as the Ordonis run beside them.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::payload::JIRA_BODY;

/// Errors of a benchmark run.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// One pgbench run's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PgbenchRun {
    /// Transactions (= events or jobs) per second, without connection time.
    pub tps: f64,
    /// Average latency, milliseconds.
    pub latency_ms: f64,
}

/// A baseline database with the raw model's schema.
#[derive(Debug)]
pub struct Baseline {
    server: PgConnectOptions,
    server_url: String,
    db: String,
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("pgbench")
        .join(name)
}

impl Baseline {
    /// Creates `ordonis_bench_raw_<pid>` on the server at `server_url` with the raw schema.
    pub async fn create(server_url: &str) -> Result<Self, BenchError> {
        let server = PgConnectOptions::from_str(server_url)?;
        let db = format!("ordonis_bench_raw_{}", std::process::id());
        create_database(&server, &db).await?;
        let me = Self {
            server,
            server_url: server_url.to_owned(),
            db,
        };
        let schema = std::fs::read_to_string(script("schema.sql"))?;
        let mut conn = me.connect().await?;
        sqlx::raw_sql(AssertSqlSafe(schema))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(me)
    }

    async fn connect(&self) -> Result<PgConnection, BenchError> {
        Ok(PgConnection::connect_with(&self.server.clone().database(&self.db)).await?)
    }

    /// The server's version string.
    pub async fn server_version(&self) -> Result<String, BenchError> {
        let mut conn = self.connect().await?;
        let v: String = sqlx::query_scalar("SELECT version()")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(v.split(" on ").next().unwrap_or(&v).to_owned())
    }

    /// Single-row ingest with dedupe (`ingest_dedupe.sql`) for `secs` at `clients`.
    pub async fn ingest(&self, clients: usize, secs: u64) -> Result<PgbenchRun, BenchError> {
        let mut conn = self.connect().await?;
        sqlx::query("TRUNCATE inbox, ledger, tasks RESTART IDENTITY")
            .execute(&mut conn)
            .await?;
        self.settle(&mut conn).await?;
        conn.close().await?;
        self.pgbench("ingest_dedupe.sql", clients, secs).await
    }

    /// One job per transaction (`claim_one.sql`: claim + task upsert + ledger row + done) over
    /// a backlog of `backlog` rows spread over 10,000 seeded tasks (`prefill.sql`).
    pub async fn process(
        &self,
        clients: usize,
        secs: u64,
        backlog: u64,
    ) -> Result<PgbenchRun, BenchError> {
        let mut conn = self.connect().await?;
        sqlx::query("TRUNCATE inbox, ledger, tasks RESTART IDENTITY")
            .execute(&mut conn)
            .await?;
        sqlx::query(
            "INSERT INTO tasks (task_key, provider, summary, status, remote_updated, last_inbox_id) \
             SELECT 'PROJ-' || g, 'jira', 'seed', 'To Do', '2024-01-01', 0 \
             FROM generate_series(1, 10000) g",
        )
        .execute(&mut conn)
        .await?;
        sqlx::query(
            "INSERT INTO inbox (provider, delivery_id, payload, status) \
             SELECT 'jira', 'pre-' || g, \
                    jsonb_set($1::jsonb, '{issue,key}', to_jsonb('PROJ-' || (1 + (hashint4(g) & 2147483647) % 10000))), 0 \
             FROM generate_series(1, $2::int) g",
        )
        .bind(JIRA_BODY)
        .bind(i32::try_from(backlog)?)
        .execute(&mut conn)
        .await?;
        self.settle(&mut conn).await?;
        conn.close().await?;
        self.pgbench("claim_one.sql", clients, secs).await
    }

    /// Vacuum and checkpoint so each run starts alike (as `run_all.sh` does).
    async fn settle(&self, conn: &mut PgConnection) -> Result<(), BenchError> {
        for q in [
            "VACUUM ANALYZE inbox",
            "VACUUM ANALYZE tasks",
            "VACUUM ANALYZE ledger",
            "CHECKPOINT",
        ] {
            sqlx::query(q).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn pgbench(
        &self,
        file: &str,
        clients: usize,
        secs: u64,
    ) -> Result<PgbenchRun, BenchError> {
        let url = db_url(&self.server_url, &self.db);
        let out = tokio::process::Command::new("pgbench")
            .args(["-n", "-M", "prepared"])
            .args(["-c", &clients.to_string()])
            .args(["-j", &clients.min(2).to_string()])
            .args(["-T", &secs.to_string()])
            .arg("-D")
            .arg(format!("payload={JIRA_BODY}"))
            .args(["-D", "loaded=0", "-f"])
            .arg(script(file))
            .arg(url)
            .output()
            .await
            .map_err(|e| format!("pgbench could not start ({e}); install postgresql-client"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "pgbench {file} failed: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        parse_pgbench(&text).ok_or_else(|| format!("unexpected pgbench output: {text}").into())
    }

    /// Drops the baseline database.
    pub async fn drop_db(self) -> Result<(), BenchError> {
        drop_database(&self.server, &self.db).await
    }
}

/// Creates database `name` on `server` (dropping any left over by an interrupted run).
pub async fn create_database(server: &PgConnectOptions, name: &str) -> Result<(), BenchError> {
    let mut admin = PgConnection::connect_with(server).await?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(AssertSqlSafe(sql)).execute(&mut admin).await?;
    }
    admin.close().await?;
    Ok(())
}

/// Drops database `name` on `server`, closing its connections.
pub async fn drop_database(server: &PgConnectOptions, name: &str) -> Result<(), BenchError> {
    let mut admin = PgConnection::connect_with(server).await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

/// `server_url` with its database replaced by `db` (libpq takes the URI as its dbname).
pub fn db_url(server_url: &str, db: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server_url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..path_start])
}

fn parse_pgbench(text: &str) -> Option<PgbenchRun> {
    let number_after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    Some(PgbenchRun {
        tps: number_after("tps = ")?,
        latency_ms: number_after("latency average = ").unwrap_or(f64::NAN),
    })
}

/// How long to let a backlog be: enough for `secs` at `rate_guess` jobs/s, with margin.
pub fn backlog_for(secs: u64, rate_guess: f64) -> u64 {
    ((secs as f64) * rate_guess * 1.6) as u64 + 1_000
}

/// A pause between runs so one run's background writes (checkpoint, autovacuum) settle.
pub const BETWEEN_RUNS: Duration = Duration::from_millis(500);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_pgbench_summary() {
        let out = "transaction type: ingest_dedupe.sql\nlatency average = 0.236 ms\n\
                   initial connection time = 3.1 ms\ntps = 4245.123456 (without initial connection time)\n";
        let r = parse_pgbench(out).unwrap();
        assert!((r.tps - 4245.123456).abs() < 1e-9);
        assert!((r.latency_ms - 0.236).abs() < 1e-9);
        assert!(parse_pgbench("no numbers here").is_none());
    }

    #[test]
    fn swaps_the_database_of_a_url() {
        assert_eq!(
            db_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            db_url("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(db_url("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
