//! Configuration by flags and environment, and the embedded default's generated secrets.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use ordonis_core::InvalidInput;

use crate::errors::StartError;
use crate::http::Limits;

/// What `--help` says about logs.
const LOG_HELP: &str = "Logs go to stderr at info level; set ORDONIS_LOG=trace|debug|info|warn|error \
to change it. Colours only when stderr is a terminal. Secrets are never logged.";

/// `ordonis-server` settings. Every flag also reads its environment variable.
#[derive(Clone, Parser)]
#[command(
    name = "ordonis-server",
    version,
    about = "Ordonis reference server: webhooks, admin API, task UI and workers",
    after_help = LOG_HELP
)]
pub struct Config {
    /// Database: a SQLite file path or `sqlite:` URL (the embedded default; its directory
    /// must exist) or `postgres://…`. Any other scheme is refused.
    #[arg(long, env = "ORDONIS_DATABASE_URL", default_value = "./ordonis.db")]
    pub database_url: String,
    /// Address to listen on.
    #[arg(long, env = "ORDONIS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Bearer token for `/api` and the UI. Unset on SQLite: generated and kept beside the
    /// database (0600). Required on PostgreSQL.
    #[arg(long, env = "ORDONIS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Bearer token that may read `/metrics` (besides the admin token, which always may), at
    /// least 16 characters: give it to Prometheus instead of the admin token. `/metrics`
    /// is never public.
    #[arg(long, env = "ORDONIS_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
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
    /// store, so every server on the database accepts them.
    #[arg(long, env = "ORDONIS_SESSION_TTL_SECS", default_value_t = 43_200)]
    pub session_ttl_secs: u64,
    /// Seconds a client has to send a request's headers, counted from connecting or from
    /// the previous response (so also the keep-alive idle timeout).
    #[arg(long, env = "ORDONIS_HEADER_READ_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub header_read_timeout: Duration,
    /// Seconds from a request's headers to its response, reading the body included (408
    /// after: a body trickled slowly is cut off).
    #[arg(long, env = "ORDONIS_REQUEST_TIMEOUT", default_value = "60", value_parser = parse_seconds)]
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "ORDONIS_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Connections one client address (an IPv6 /64) may hold at once; more are closed at
    /// once. Behind a reverse proxy every client is the proxy: raise it to the proxy's
    /// own connection limit.
    #[arg(long, env = "ORDONIS_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_client: u32,
    /// Largest body read from one Jira or Asana answer, in bytes (default 8 MiB); a larger
    /// answer fails its job as "too large" (not retried) and memory stays bounded.
    #[arg(long, env = "ORDONIS_MAX_PROVIDER_RESPONSE_BYTES", default_value_t = ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES, value_parser = parse_response_cap)]
    pub max_provider_response_bytes: usize,
    /// Seconds an armed webhook handshake (Asana's `X-Hook-Secret`) is accepted: after
    /// `POST /api/integrations/{id}/handshake`, the creation of an integration without a
    /// webhook secret, or each webhook registration round.
    #[arg(long, env = "ORDONIS_HANDSHAKE_WINDOW", default_value = "300", value_parser = parse_seconds)]
    pub handshake_window: Duration,
    /// How failed webhook events and pushes are retried.
    #[command(flatten)]
    pub retry: RetryArgs,
    /// A witness whose cosignatures of the VERA checkpoints are accepted
    /// (`POST /api/ledger/{ws}/cosignatures`) and served with them: its c2sp.org/tlog-cosignature
    /// verifier key `name+keyid+base64(0x04 ‖ Ed25519 key)`. Repeat the flag, or separate
    /// keys with commas in the variable.
    #[arg(
        long = "witness",
        env = "ORDONIS_WITNESSES",
        value_delimiter = ',',
        value_name = "VKEY"
    )]
    pub witnesses: Vec<String>,
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
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("workers", &self.workers)
            .field("public_url", &self.public_url)
            .field("allow_any_provider_url", &self.allow_any_provider_url)
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_client",
                &self.max_connections_per_client,
            )
            .field(
                "max_provider_response_bytes",
                &self.max_provider_response_bytes,
            )
            .field("handshake_window", &self.handshake_window)
            .field("retry", &self.retry)
            .field("witnesses", &self.witnesses)
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
            metrics_token: None,
            secret_key: Some(hex::encode([7u8; 32])),
            workers: 1,
            public_url: None,
            allow_any_provider_url: true,
            session_ttl_secs: 43_200,
            header_read_timeout: Limits::default().header_read_timeout,
            request_timeout: Limits::default().request_timeout,
            max_connections: 1024,
            max_connections_per_client: 128,
            max_provider_response_bytes: ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES,
            handshake_window: ordonis_core::DEFAULT_HANDSHAKE_WINDOW,
            retry: RetryArgs::default(),
            witnesses: Vec::new(),
            demo: false,
        }
    }

    /// The configured witnesses' keys (`--witness`).
    pub fn witness_keys(&self) -> Result<Vec<ordonis_core::vera::WitnessKey>, InvalidInput> {
        self.witnesses
            .iter()
            .filter(|w| !w.trim().is_empty())
            .map(|w| {
                ordonis_core::vera::WitnessKey::parse(w)
                    .map_err(|e| InvalidInput::new("--witness (ORDONIS_WITNESSES)", e.to_string()))
            })
            .collect()
    }

    /// The connection limits these settings name.
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_client: usize::try_from(self.max_connections_per_client)
                .unwrap_or(usize::MAX),
        }
    }
}

/// Parses the cap on provider answers: a whole number of bytes, at least 64 KiB (an API's
/// ordinary answers must fit).
fn parse_response_cap(s: &str) -> Result<usize, InvalidInput> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 64 * 1024 => Ok(n),
        _ => Err(InvalidInput::new(
            "--max-provider-response-bytes",
            "a whole number of bytes, at least 65536",
        )),
    }
}

/// Parses a duration in seconds (`10`, `0.5`), positive.
fn parse_seconds(s: &str) -> Result<Duration, InvalidInput> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| InvalidInput::new("seconds", format!("{s:?} is not a number")))?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(InvalidInput::new(
            "seconds",
            format!("{s:?}: expected a positive number"),
        )),
    }
}

/// Parses a positive number of hours (`24`, `0.5`).
fn parse_hours(s: &str) -> Result<f64, InvalidInput> {
    match s.trim().parse::<f64>() {
        Ok(h) if h.is_finite() && h > 0.0 && h <= 24.0 * 365.0 => Ok(h),
        _ => Err(InvalidInput::new(
            "hours",
            format!("{s:?}: expected a positive number (at most a year)"),
        )),
    }
}

/// `ordonis-worker` settings.
#[derive(Clone, Parser)]
#[command(
    name = "ordonis-worker",
    version,
    about = "Ordonis workers only, for scaling out against one PostgreSQL",
    after_help = LOG_HELP
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
    /// The URL providers reach the server at (the server's `--public-url`): the target of
    /// the webhooks a reconcile registers or re-creates. Without it these workers register
    /// none (the server's own workers still do).
    #[arg(long, env = "ORDONIS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest body read from one Jira or Asana answer, in bytes (default 8 MiB); a larger
    /// answer fails its job as "too large" (not retried) and memory stays bounded.
    #[arg(long, env = "ORDONIS_MAX_PROVIDER_RESPONSE_BYTES", default_value_t = ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES, value_parser = parse_response_cap)]
    pub max_provider_response_bytes: usize,
    /// Seconds an armed webhook handshake (Asana's `X-Hook-Secret`) is accepted: after
    /// `POST /api/integrations/{id}/handshake`, the creation of an integration without a
    /// webhook secret, or each webhook registration round.
    #[arg(long, env = "ORDONIS_HANDSHAKE_WINDOW", default_value = "300", value_parser = parse_seconds)]
    pub handshake_window: Duration,
    /// Seconds a claimed row stays leased: when a worker dies (killed, machine lost), its
    /// rows are taken up by another worker after this. Longer than the slowest provider call.
    #[arg(long, env = "ORDONIS_LEASE", default_value = "60", value_parser = parse_seconds)]
    pub lease: Duration,
    /// How failed webhook events and pushes are retried (use the server's settings).
    #[command(flatten)]
    pub retry: RetryArgs,
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
            .field(
                "max_provider_response_bytes",
                &self.max_provider_response_bytes,
            )
            .field("handshake_window", &self.handshake_window)
            .field("lease", &self.lease)
            .field("retry", &self.retry)
            .finish()
    }
}

/// The retry schedule of failed rows: capped exponential backoff with jitter, from 10 s
/// doubling up to `--retry-max-delay`, for `--retry-for` hours; then the row is dead (the
/// inbox and outbox views replay it).
#[derive(Clone, Copy, Debug, PartialEq, clap::Args)]
pub struct RetryArgs {
    /// Hours a failing webhook event or push is retried before it goes dead.
    #[arg(long = "retry-for", env = "ORDONIS_RETRY_FOR_HOURS", default_value = "24", value_parser = parse_hours, value_name = "HOURS")]
    pub retry_for_hours: f64,
    /// Longest wait between two attempts, in seconds.
    #[arg(long = "retry-max-delay", env = "ORDONIS_RETRY_MAX_DELAY", default_value = "3600", value_parser = parse_seconds, value_name = "SECONDS")]
    pub max_delay: Duration,
}

impl Default for RetryArgs {
    fn default() -> Self {
        Self {
            retry_for_hours: 24.0,
            max_delay: ordonis_core::Backoff::default().max,
        }
    }
}

impl RetryArgs {
    /// The engine settings these name.
    pub fn engine_config(&self) -> Result<ordonis_core::EngineConfig, InvalidInput> {
        let window = Duration::try_from_secs_f64(self.retry_for_hours * 3600.0).map_err(|_| {
            InvalidInput::new(
                "--retry-for",
                format!("{}: expected a number of hours", self.retry_for_hours),
            )
        })?;
        let defaults = ordonis_core::Backoff::default();
        let backoff = ordonis_core::Backoff {
            min: defaults.min.min(self.max_delay),
            max: self.max_delay,
        };
        Ok(ordonis_core::EngineConfig {
            max_attempts: backoff.attempts_for(window),
            backoff,
            ..ordonis_core::EngineConfig::default()
        })
    }
}

/// How the database setting is named in errors.
pub const DATABASE_FLAG: &str = "--database-url (ORDONIS_DATABASE_URL)";

/// The scheme of something that looks like a URL (`name:` then anything), if any. A single
/// letter before `:` is a Windows drive (`C:\\db`), not a scheme.
fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    .then_some(scheme)
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
    /// Classifies a database URL: `postgres://…` or `postgresql://…`, a `sqlite:` URL
    /// (`sqlite://path`, `sqlite:path`, `sqlite::memory:`), or a plain file path. Anything else
    /// with a URL scheme (`mysql://…`, a misspelt `postgress://…`) is refused, naming the flag,
    /// rather than taken for a file name; so is a SQLite file whose directory does not exist
    /// (it is not created unasked).
    pub fn parse(url: &str) -> Result<Self, InvalidInput> {
        Self::classify(url).map_err(|why| InvalidInput::new(DATABASE_FLAG, why))
    }

    fn classify(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("is empty".to_owned());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_owned()));
        }
        let sqlite_url = url.strip_prefix("sqlite:");
        if sqlite_url.is_none()
            && let Some(scheme) = url_scheme(url)
        {
            return Err(format!(
                "unsupported scheme {scheme:?} in {:?}; use a file path or a \
                 sqlite: URL for the embedded SQLite store, or postgres://… (postgresql://…) \
                 for PostgreSQL",
                redact_url(url)
            ));
        }
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let file = if memory {
            None
        } else {
            let path = sqlite_url
                .map(|p| p.strip_prefix("//").unwrap_or(p))
                .unwrap_or(url);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(format!("{url:?} names no SQLite file"));
            }
            let path = PathBuf::from(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && !dir.is_dir()
            {
                return Err(format!(
                    "the directory {} of the SQLite database does not exist; \
                     create it first (it is not created for you)",
                    dir.display()
                ));
            }
            Some(path)
        };
        Ok(Backend::Sqlite {
            url: url.to_owned(),
            file,
        })
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
) -> Result<Resolved, StartError> {
    if let Some(v) = given.map(str::trim).filter(|v| !v.is_empty()) {
        return Ok(Resolved {
            value: v.to_owned(),
            origin: Origin::Given,
        });
    }
    match backend {
        Backend::Postgres(_) => {
            Err(InvalidInput::new(env, "must be set when the database is PostgreSQL").into())
        }
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
) -> Result<Resolved, StartError> {
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
            warn_if_loose(&path);
            return Ok(Resolved {
                value: s.trim().to_owned(),
                origin: Origin::File(path),
            });
        }
    }
    Err(InvalidInput::new(env, "must be set to the server's value").into())
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The permission bits of a secret file when group or others may access it (they should
/// not: the file is created 0600); `None` when it is private, or off unix.
pub fn loose_permissions(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs a warning when an existing secret file is accessible by group or others.
fn warn_if_loose(path: &Path) {
    if let Some(mode) = loose_permissions(path) {
        tracing::warn!(
            file = %path.display(),
            mode = %format!("{mode:04o}"),
            "a secret file is accessible by group or others; restrict it with chmod 600"
        );
    }
}

fn read_or_create(path: &Path) -> Result<Resolved, StartError> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => {
            warn_if_loose(path);
            return Ok(Resolved {
                value: s.trim().to_owned(),
                origin: Origin::File(path.to_owned()),
            });
        }
        Ok(_) => {
            return Err(InvalidInput::new(path.display().to_string(), "the file is empty").into());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StartError::Io {
                what: format!("cannot read {}", path.display()),
                source: e,
            });
        }
    }
    let value = random_hex();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| StartError::Io {
        what: format!("cannot create {}", path.display()),
        source: e,
    })?;
    f.write_all(format!("{value}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| StartError::Io {
            what: format!("cannot write {}", path.display()),
            source: e,
        })?;
    Ok(Resolved {
        value,
        origin: Origin::Generated(path.to_owned()),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn loose_secret_files_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ordonis-perm-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("ordonis.db");
        let backend = Backend::parse(&db.to_string_lossy()).unwrap();
        // Generated: 0600, nothing to report.
        let r = resolve_secret(None, &backend, "admin-token", "X").unwrap();
        let Origin::Generated(path) = r.origin else {
            panic!("{:?}", r.origin)
        };
        assert_eq!(loose_permissions(&path), None);
        for (mode, reported) in [(0o644, true), (0o640, true), (0o604, true), (0o400, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(
                loose_permissions(&path),
                reported.then_some(mode),
                "{mode:o}"
            );
        }
        assert_eq!(loose_permissions(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retry_flags_set_the_schedule() {
        let c = Config::try_parse_from(["ordonis-server"]).unwrap();
        let e = c.retry.engine_config().unwrap();
        assert_eq!(e, ordonis_core::EngineConfig::default());
        assert!(e.backoff.span(e.max_attempts) >= Duration::from_secs(24 * 3600));
        let c = Config::try_parse_from([
            "ordonis-server",
            "--retry-for",
            "72",
            "--retry-max-delay",
            "600",
        ])
        .unwrap();
        let e = c.retry.engine_config().unwrap();
        assert_eq!(e.backoff.max, Duration::from_secs(600));
        assert!(e.backoff.span(e.max_attempts) >= Duration::from_secs(72 * 3600));
        assert!(e.backoff.span(e.max_attempts - 1) < Duration::from_secs(72 * 3600));
        for bad in [
            "--retry-for=-1",
            "--retry-for=0",
            "--retry-for=soon",
            "--retry-max-delay=0",
        ] {
            assert!(
                Config::try_parse_from(["ordonis-server", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_provider_answer_cap_defaults_to_8_mib_and_is_a_flag() {
        let c = Config::try_parse_from(["ordonis-server"]).unwrap();
        assert_eq!(c.max_provider_response_bytes, 8 * 1024 * 1024);
        let c =
            Config::try_parse_from(["ordonis-server", "--max-provider-response-bytes", "1048576"])
                .unwrap();
        assert_eq!(c.max_provider_response_bytes, 1 << 20);
        let w = WorkerArgs::try_parse_from(["ordonis-worker"]).unwrap();
        assert_eq!(w.max_provider_response_bytes, 8 * 1024 * 1024);
        for bad in ["100", "-1", "lots"] {
            assert!(
                Config::try_parse_from(["ordonis-server", "--max-provider-response-bytes", bad])
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn database_urls_are_classified_or_refused() {
        let dir = std::env::temp_dir();
        let file = dir.join("ordonis.db");
        let file = file.to_string_lossy();
        for ok in [
            "postgres://u@h/db".to_owned(),
            "postgresql://u@h/db".to_owned(),
            "sqlite::memory:".to_owned(),
            ":memory:".to_owned(),
            "ordonis.db".to_owned(),
            "./ordonis.db".to_owned(),
            file.to_string(),
            format!("sqlite://{file}"),
            format!("sqlite:{file}?mode=rwc"),
        ] {
            assert!(Backend::parse(&ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Backend::parse(&format!("sqlite://{file}")).unwrap(),
            Backend::Sqlite {
                url: format!("sqlite://{file}"),
                file: Some(PathBuf::from(file.as_ref())),
            }
        );
        for bad in [
            "mysql://root@localhost/ordonis",
            "postgress://u@h/db",
            "postgre://u:secret@h/db",
            "redis://h",
            "file:ordonis.db",
        ] {
            let e = Backend::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("--database-url") && e.contains("ORDONIS_DATABASE_URL"),
                "{e}"
            );
            assert!(e.contains("unsupported scheme"), "{e}");
            assert!(!e.contains("secret"), "the password is redacted: {e}");
        }
        // A missing directory is not created.
        let missing = dir.join(format!("ordonis-missing-{}", uuid::Uuid::now_v7()));
        let e = Backend::parse(&missing.join("x.db").to_string_lossy())
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!missing.exists());
    }
}
