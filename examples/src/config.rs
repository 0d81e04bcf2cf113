//! Configuration by flags and environment, and the embedded default's generated secrets.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;

/// `ordonis-server` settings. Every flag also reads its environment variable.
#[derive(Clone, Parser)]
#[command(
    name = "ordonis-server",
    version,
    about = "Ordonis reference server: webhooks, admin API, task UI and workers"
)]
pub struct Config {
    /// Database: a SQLite file path or URL (the embedded default) or `postgres://…`.
    #[arg(long, env = "ORDONIS_DATABASE_URL", default_value = "./ordonis.db")]
    pub database_url: String,
    /// Address to listen on.
    #[arg(long, env = "ORDONIS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token for `/api` and the UI. Unset on SQLite: generated and kept beside the
    /// database (0600). Required on PostgreSQL.
    #[arg(long, env = "ORDONIS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Key that seals integration secrets at rest (64 hex characters). Unset on SQLite:
    /// generated and kept beside the database (0600). Required on PostgreSQL.
    #[arg(long, env = "ORDONIS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// In-process workers (0: none; run `ordonis-worker` instead).
    #[arg(long, env = "ORDONIS_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// The URL providers reach this server at (for `webhook_url`); default `http://<listen>`.
    #[arg(long, env = "ORDONIS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Accept any provider `base_url` (tests and the demo); otherwise only
    /// `https://*.atlassian.net` and `https://app.asana.com`.
    #[arg(long, env = "ORDONIS_ALLOW_ANY_PROVIDER_URL")]
    pub allow_any_provider_url: bool,
    /// How long a UI session lasts, in seconds (default 12 h). Sessions are kept in the
    /// server process: several servers need sticky sessions for the UI.
    #[arg(long, env = "ORDONIS_SESSION_TTL_SECS", default_value_t = 43_200)]
    pub session_ttl_secs: u64,
    /// Demo mode: a demo workspace with Jira and Asana integrations on in-process fake
    /// providers, fed the real fixture payloads. Needs the `demo` cargo feature (on by
    /// default); a build without it refuses the flag.
    #[arg(long, hide = cfg!(not(feature = "demo")))]
    pub demo: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("workers", &self.workers)
            .field("public_url", &self.public_url)
            .field("allow_any_provider_url", &self.allow_any_provider_url)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("demo", &self.demo)
            .finish()
    }
}

impl Config {
    /// Settings for tests: an in-memory-free SQLite URL, listen on `127.0.0.1:0`, fixed
    /// token and key, one worker, any provider URL.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_token: Some("test-admin-token".to_owned()),
            secret_key: Some(hex::encode([7u8; 32])),
            workers: 1,
            public_url: None,
            allow_any_provider_url: true,
            session_ttl_secs: 43_200,
            demo: false,
        }
    }
}

/// `ordonis-worker` settings.
#[derive(Clone, Parser)]
#[command(
    name = "ordonis-worker",
    version,
    about = "Ordonis workers only, for scaling out against one PostgreSQL"
)]
pub struct WorkerArgs {
    /// Database URL (normally `postgres://…`).
    #[arg(long, env = "ORDONIS_DATABASE_URL", default_value = "./ordonis.db")]
    pub database_url: String,
    /// Key that seals integration secrets (the server's).
    #[arg(long, env = "ORDONIS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Workers in this process.
    #[arg(long, env = "ORDONIS_WORKERS", default_value_t = 4)]
    pub workers: usize,
}

impl fmt::Debug for WorkerArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerArgs")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("workers", &self.workers)
            .finish()
    }
}

/// Which store a database URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL.
    Postgres(String),
    /// SQLite: a file (`Some(path)`) or in memory (`None`).
    Sqlite {
        /// What to hand `SqliteStore::open`.
        url: String,
        /// The database file, when there is one.
        file: Option<PathBuf>,
    },
}

impl Backend {
    /// Classifies a database URL.
    pub fn parse(url: &str) -> Self {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Backend::Postgres(url.to_owned());
        }
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let file = if memory {
            None
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            let path = path.split('?').next().unwrap_or(path);
            Some(PathBuf::from(path))
        };
        Backend::Sqlite {
            url: url.to_owned(),
            file,
        }
    }

    /// The embedded default (SQLite).
    pub fn is_embedded(&self) -> bool {
        matches!(self, Backend::Sqlite { .. })
    }
}

/// Hides a password in a URL for logs.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Where a secret came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Flag or environment.
    Given,
    /// Read from a file beside the database.
    File(PathBuf),
    /// Generated now and written to this file (0600).
    Generated(PathBuf),
    /// Generated now, not kept (in-memory database).
    Ephemeral,
}

/// A secret the server needs, resolved by the embedded default's rule.
pub struct Resolved {
    /// The value.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("value", &"[REDACTED]")
            .field("origin", &self.origin)
            .finish()
    }
}

/// Resolves a secret: the given value; else, on SQLite, the file `<database>.<suffix>`
/// (created 0600 with a fresh random value when missing); else an error naming `env`.
pub fn resolve_secret(
    given: Option<&str>,
    backend: &Backend,
    suffix: &str,
    env: &str,
) -> Result<Resolved, String> {
    if let Some(v) = given.map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(Resolved {
            value: v.to_owned(),
            origin: Origin::Given,
        });
    }
    match backend {
        Backend::Postgres(_) => Err(format!("{env} must be set when the database is PostgreSQL")),
        Backend::Sqlite { file: None, .. } => Ok(Resolved {
            value: random_hex(),
            origin: Origin::Ephemeral,
        }),
        Backend::Sqlite { file: Some(db), .. } => {
            let mut name = db.as_os_str().to_owned();
            name.push(format!(".{suffix}"));
            let path = PathBuf::from(name);
            read_or_create(&path)
        }
    }
}

/// Like [`resolve_secret`] but never generates: the given value, else the existing file
/// beside a SQLite database, else an error (a worker must use the server's key).
pub fn existing_secret(
    given: Option<&str>,
    backend: &Backend,
    suffix: &str,
    env: &str,
) -> Result<Resolved, String> {
    if let Some(v) = given.map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(Resolved {
            value: v.to_owned(),
            origin: Origin::Given,
        });
    }
    if let Backend::Sqlite { file: Some(db), .. } = backend {
        let mut name = db.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        let path = PathBuf::from(name);
        if let Ok(s) = std::fs::read_to_string(&path)
            && !s.trim().is_empty()
        {
            return Ok(Resolved {
                value: s.trim().to_owned(),
                origin: Origin::File(path),
            });
        }
    }
    Err(format!("set {env} to the server's value"))
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn read_or_create(path: &Path) -> Result<Resolved, String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => {
            return Ok(Resolved {
                value: s.trim().to_owned(),
                origin: Origin::File(path.to_owned()),
            });
        }
        Ok(_) => return Err(format!("{} is empty", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let value = random_hex();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(format!("{value}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Resolved {
        value,
        origin: Origin::Generated(path.to_owned()),
    })
}
