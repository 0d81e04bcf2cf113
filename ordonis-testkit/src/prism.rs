//! A [Prism](https://github.com/stoplightio/prism) mock server for contract tests: started
//! from a provider's OpenAPI document, it validates every request an adapter's client sends
//! and answers a rejected one with a 4xx and an `sl-violations` header.
//!
//! Prism is found through `PRISM_BIN`, `node_modules/.bin/prism` at the workspace root, a
//! `prism` on `PATH`, or `npx --no-install @stoplight/prism-cli@5.14.2`. When Prism or the
//! spec is missing, [`Prism::for_spec`] prints a message and returns `None` (the test then
//! passes), unless `ORDONIS_REQUIRE_PRISM=1`, which turns absence into a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The Prism CLI release `npx` is asked for when no other Prism is found.
const NPX_PACKAGE: &str = "@stoplight/prism-cli@5.14.2";

/// Whether `ORDONIS_REQUIRE_PRISM=1`: a missing Prism or spec is then a failure, not a skip.
pub fn required() -> bool {
    std::env::var("ORDONIS_REQUIRE_PRISM").is_ok_and(|v| v == "1")
}

/// Skips a contract test for the reason `why`: prints it, or panics under
/// `ORDONIS_REQUIRE_PRISM=1`.
pub fn skip(why: &str) {
    assert!(!required(), "ORDONIS_REQUIRE_PRISM=1 but {why}");
    eprintln!("SKIPPED contract test: {why}");
}

/// The command that runs Prism, or `None` when none is installed (see the module docs for
/// where it is looked for).
pub fn command() -> Option<Command> {
    if let Ok(bin) = std::env::var("PRISM_BIN") {
        return Some(Command::new(bin));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/prism");
    if local.exists() {
        return Some(Command::new(local));
    }
    let ok = |cmd: &mut std::process::Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(std::process::Command::new("prism").arg("--version")) {
        return Some(Command::new("prism"));
    }
    if ok(std::process::Command::new("npx").args(["--no-install", NPX_PACKAGE, "--version"])) {
        let mut c = Command::new("npx");
        c.args(["--no-install", NPX_PACKAGE]);
        return Some(c);
    }
    None
}

/// A running Prism mock server; it is killed when dropped.
#[derive(Debug)]
pub struct Prism {
    _child: Child,
    base: String,
}

impl Prism {
    /// Starts Prism on `spec`, or returns `None` after [`skip`]ping when the spec or Prism is
    /// missing.
    ///
    /// # Panics
    /// Under `ORDONIS_REQUIRE_PRISM=1` when either is missing, and when Prism fails to start.
    pub async fn for_spec(spec: &Path) -> Option<Self> {
        if !spec.exists() {
            skip(&format!("the spec {} is missing", spec.display()));
            return None;
        }
        let Some(cmd) = command() else {
            skip(&format!(
                "Prism is not installed (set PRISM_BIN or install {NPX_PACKAGE})"
            ));
            return None;
        };
        Some(Self::start(cmd, spec).await)
    }

    /// Runs `cmd mock` on `spec` on a free local port and waits (up to two minutes) until
    /// Prism listens.
    ///
    /// # Panics
    /// When Prism cannot be spawned or does not start listening.
    pub async fn start(mut cmd: Command, spec: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("no free port for Prism: {e}"))
            .port();
        let mut child = cmd
            .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
            .arg(spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn prism: {e}"));
        let Some(stdout) = child.stdout.take() else {
            panic!("Prism's stdout is not piped");
        };
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Prism is listening") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(matches!(ready, Ok(true)), "Prism did not start");
        // Keep draining stdout so Prism never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The server's base URL, `http://127.0.0.1:<port>` (no trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The violations Prism reported for a response: the raw `sl-violations` header (empty when
/// absent) and its parsed entries.
///
/// # Panics
/// When the header is not a JSON array.
pub fn violations(resp: &reqwest::Response) -> (String, Vec<serde_json::Value>) {
    let raw = resp
        .headers()
        .get("sl-violations")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parsed = serde_json::from_str(&raw)
        .unwrap_or_else(|e| panic!("sl-violations is not a JSON array ({e}): {raw}"));
    (raw, parsed)
}
