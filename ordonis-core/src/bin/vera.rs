//! `vera`: the VERA verifier. No database; every command reads files, except `vera tiles`,
//! which reads a log served as c2sp.org/tlog-tiles over HTTP.
//!
//! ```text
//! vera verify <export-dir | export.json> --trust <keys> [--checkpoint <note>] [--since <older-note>] [--strict]
//! vera verify-receipt <entry-file> <receipt-file> --trust <keys>
//! vera consistency <note-a> <note-b> --trust <keys> [--proof <file>]
//! vera tiles --url <prefix> --trust <keys> [--entries]   (bearer token for entries: VERA_TOKEN)
//! ```
//!
//! Every command takes `--witness <vkey>` (repeatable): the checkpoint must then also carry a
//! valid c2sp.org/tlog-cosignature of each such witness.
//!
//! Exit codes: 0 valid; 1 tampered entry or failing proof (the first bad index is printed as
//! `index=<n>`); 2 two inconsistent checkpoints (a fork or rollback); 3 a bad or untrusted
//! checkpoint signature; 4 usage or input error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
use ordonis_core::vera::export::parse_proof;
use ordonis_core::vera::tile_client::{TileCheck, check_log};
use ordonis_core::vera::{
    Checkpoint, ExportCheck, Receipt, TrustedKeys, VeraError, WitnessKey, check_consistency,
    verify_cosignatures, verify_export,
};
use thiserror::Error;

/// Printed after `--help`: what the exit codes mean.
const EXIT_CODES: &str = "\
exit codes: 0 valid, 1 tampered entry or failing proof (index=<n> printed), 2 fork or rollback,
  3 bad or untrusted checkpoint signature, 4 usage or input error";

/// The VERA verifier: reads files (and, for `tiles`, a tiled log over HTTP).
#[derive(Debug, Parser)]
#[command(name = "vera", version, arg_required_else_help = true, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks an export against a signed checkpoint: a directory (<dir>/entries, and
    /// <dir>/checkpoint unless --checkpoint is given) or the server's export JSON as saved
    /// from `GET /api/ledger/{ws}/export` (its `entries` and `checkpoint`; its
    /// `verifier_keys` are ignored: pin the keys from `/api/ledger/{ws}/keys` separately and
    /// pass them with --trust). With --since, also that an older checkpoint is a prefix.
    #[command(after_help = EXIT_CODES)]
    Verify {
        /// The export directory, or the export JSON file.
        export_dir: PathBuf,
        #[command(flatten)]
        trust: Trust,
        /// The signed checkpoint to check against (default: <export-dir>/checkpoint).
        #[arg(long, value_name = "NOTE")]
        checkpoint: Option<PathBuf>,
        /// An older signed checkpoint of the same log that must be a prefix of this one.
        #[arg(long, value_name = "OLDER_NOTE")]
        since: Option<PathBuf>,
        /// Also parse every entry: its canonical re-encoding must equal its bytes, and
        /// `logged_at` must never go backwards.
        #[arg(long)]
        strict: bool,
    },
    /// Checks one entry's c2sp.org/tlog-proof receipt.
    #[command(after_help = EXIT_CODES)]
    VerifyReceipt {
        /// The entry's bytes (one trailing newline is ignored).
        entry_file: PathBuf,
        /// The receipt.
        receipt_file: PathBuf,
        #[command(flatten)]
        trust: Trust,
    },
    /// Checks two checkpoints of one log against each other (a proof is needed unless the
    /// sizes are equal).
    #[command(after_help = EXIT_CODES)]
    Consistency {
        /// One signed checkpoint.
        note_a: PathBuf,
        /// The other signed checkpoint.
        note_b: PathBuf,
        #[command(flatten)]
        trust: Trust,
        /// A consistency proof between the two sizes.
        #[arg(long, value_name = "FILE")]
        proof: Option<PathBuf>,
    },
    /// Checks a log served as c2sp.org/tlog-tiles: the checkpoint's signature (and
    /// cosignatures with --witness), every hash tile against the checkpoint's root, and with
    /// --entries every entry bundle against the level-0 tiles.
    #[command(after_help = EXIT_CODES)]
    Tiles {
        /// The log's prefix, e.g. https://ordonis.example.com/vera/acme
        #[arg(long, value_name = "URL")]
        url: String,
        #[command(flatten)]
        trust: Trust,
        /// Also fetch and check every entry bundle (needs the workspace's read token).
        #[arg(long)]
        entries: bool,
        /// The bearer token that reads entry bundles (the workspace's read token).
        #[arg(long, env = "VERA_TOKEN", hide_env_values = true, value_name = "TOKEN")]
        token: Option<String>,
    },
}

#[derive(Debug, Args)]
struct Trust {
    /// A file of verifier keys (name+id+key), one per line.
    #[arg(long = "trust", value_name = "KEYS")]
    path: PathBuf,
    /// A witness's cosignature key (name+id+base64(0x04 ‖ key)) whose valid cosignature the
    /// checkpoint must carry; repeat for several.
    #[arg(long = "witness", value_name = "VKEY")]
    witnesses: Vec<String>,
}

/// A usage or input error: exit 4.
#[derive(Debug, Error)]
#[error("{0}")]
struct Usage(String);

#[derive(Debug, Error)]
enum Failure {
    #[error(transparent)]
    Usage(#[from] Usage),
    #[error(transparent)]
    Vera(#[from] VeraError),
}

fn read(path: &Path) -> Result<String, Usage> {
    std::fs::read_to_string(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))
}

/// Reads a signed note; bytes that are not UTF-8 are a malformed note (exit 3), not a usage
/// error.
fn read_note(path: &Path) -> Result<String, Failure> {
    let bytes =
        std::fs::read(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))?;
    String::from_utf8(bytes)
        .map_err(|_| VeraError::MalformedNote(format!("{} is not UTF-8", path.display())).into())
}

fn trusted(trust: &Trust) -> Result<TrustedKeys, Failure> {
    let path = &trust.path;
    let keys =
        TrustedKeys::parse(&read(path)?).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    if keys.keys().is_empty() {
        return Err(Usage(format!("{}: no verifier keys", path.display())).into());
    }
    Ok(keys)
}

fn witnesses(trust: &Trust) -> Result<Vec<WitnessKey>, Failure> {
    trust
        .witnesses
        .iter()
        .map(|w| WitnessKey::parse(w).map_err(|e| Usage(format!("--witness: {e}")).into()))
        .collect()
}

/// Verifies a signed checkpoint note: the log's signature, and each `--witness`'s cosignature.
fn open(keys: &TrustedKeys, trust: &Trust, note: &str) -> Result<Checkpoint, Failure> {
    let cp = keys.verify(note)?;
    verify_cosignatures(note, &witnesses(trust)?)?;
    Ok(cp)
}

fn describe(cp: &Checkpoint) -> String {
    format!(
        "{} size {} root {}",
        cp.origin,
        cp.size,
        B64.encode(cp.root)
    )
}

/// The server's export JSON: the fields `vera` reads (the keys in it are not trusted).
#[derive(serde::Deserialize)]
struct ExportJson {
    checkpoint: String,
    entries: String,
}

/// The signed checkpoint and the entries of an export: a directory's `checkpoint` and
/// `entries` files, or a JSON export file's fields (`--checkpoint` wins over either).
fn export_parts(
    path: &Path,
    checkpoint: Option<&Path>,
) -> Result<(String, Box<dyn std::io::BufRead>), Failure> {
    if path.is_file() {
        let json: ExportJson = serde_json::from_str(&read(path)?).map_err(|e| {
            Usage(format!(
                "{} is not an export directory nor the export JSON of \
                 GET /api/ledger/{{ws}}/export: {e}",
                path.display()
            ))
        })?;
        let note = match checkpoint {
            Some(p) => read_note(p)?,
            None => json.checkpoint,
        };
        return Ok((
            note,
            Box::new(std::io::Cursor::new(json.entries.into_bytes())),
        ));
    }
    let cp_path = checkpoint.map_or_else(|| path.join("checkpoint"), Path::to_path_buf);
    let note = read_note(&cp_path)?;
    let entries_path = path.join("entries");
    let file = std::fs::File::open(&entries_path)
        .map_err(|e| Usage(format!("cannot read {}: {e}", entries_path.display())))?;
    Ok((
        note,
        Box::new(std::io::BufReader::with_capacity(1 << 16, file)),
    ))
}

fn verify(
    dir: &Path,
    trust: &Trust,
    checkpoint: Option<&Path>,
    since: Option<&Path>,
    strict: bool,
) -> Result<String, Failure> {
    let keys = trusted(trust)?;
    let (note, entries) = export_parts(dir, checkpoint)?;
    let cp = open(&keys, trust, &note)?;
    let old = match since {
        Some(p) => {
            let old = keys.verify(&read_note(p)?)?;
            if old.origin != cp.origin {
                return Err(Usage(format!(
                    "--since is a checkpoint of {:?}, not {:?}",
                    old.origin, cp.origin
                ))
                .into());
            }
            Some(old)
        }
        None => None,
    };
    let check = ExportCheck {
        strict,
        roots_at: old.iter().map(|o| o.size).collect(),
    };
    let report = verify_export(entries, &cp, &check)?;
    if let Some(old) = old {
        let at = report.roots.iter().find(|(s, _)| *s == old.size);
        match at {
            None => {
                return Err(VeraError::Fork {
                    old_size: old.size,
                    new_size: cp.size,
                    reason: "the newer checkpoint is smaller: the log was rolled back".into(),
                }
                .into());
            }
            Some((_, root)) if *root != old.root => {
                return Err(VeraError::Fork {
                    old_size: old.size,
                    new_size: cp.size,
                    reason: "the log's first entries differ from what the older checkpoint \
                             committed to"
                        .into(),
                }
                .into());
            }
            Some(_) => {}
        }
    }
    Ok(format!(
        "ok: {} entries verified against {}",
        report.size,
        describe(&cp)
    ))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, Usage> {
    std::fs::read(path).map_err(|e| Usage(format!("cannot read {}: {e}", path.display())))
}

fn verify_receipt(entry: &Path, receipt: &Path, trust: &Trust) -> Result<String, Failure> {
    let keys = trusted(trust)?;
    let entry = read_bytes(entry)?;
    let entry = entry.strip_suffix(b"\n").unwrap_or(&entry);
    let receipt = read_bytes(receipt)?;
    let receipt = String::from_utf8(receipt)
        .map_err(|_| VeraError::MalformedReceipt("the receipt is not UTF-8".into()))?;
    let receipt = Receipt::parse(&receipt)?;
    let cp = receipt.verify(entry, &keys)?;
    verify_cosignatures(&receipt.checkpoint, &witnesses(trust)?)?;
    Ok(format!(
        "ok: entry {} is in {}",
        receipt.index,
        describe(&cp)
    ))
}

fn consistency(x: &Path, y: &Path, trust: &Trust, proof: Option<&Path>) -> Result<String, Failure> {
    let keys = trusted(trust)?;
    let x = open(&keys, trust, &read_note(x)?)?;
    let y = open(&keys, trust, &read_note(y)?)?;
    let proof = match proof {
        Some(p) => parse_proof(&read(p)?).map_err(|e| Usage(e.to_string()))?,
        None if x.size == y.size => Vec::new(),
        None => {
            return Err(Usage(
                "checkpoints of different sizes need --proof <consistency proof>".into(),
            )
            .into());
        }
    };
    check_consistency(&x, &y, &proof).map_err(|e| match e {
        VeraError::InvalidSizes(m) => Failure::Usage(Usage(m)),
        e => Failure::Vera(e),
    })?;
    Ok(format!(
        "ok: {} and {} are consistent",
        describe(&x),
        describe(&y)
    ))
}

fn tiles(url: &str, trust: &Trust, entries: bool, token: Option<&str>) -> Result<String, Failure> {
    let keys = trusted(trust)?;
    let check = TileCheck {
        entries,
        witnesses: witnesses(trust)?,
        token: token.map(str::to_owned),
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| VeraError::Fetch(e.to_string()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(VeraError::Io)?;
    let report = rt.block_on(check_log(&client, url, &keys, &check))?;
    let mut msg = format!(
        "ok: {} hash tiles verified against {}",
        report.tiles,
        describe(&report.checkpoint)
    );
    if let Some(n) = report.entries {
        msg.push_str(&format!("; {n} entries match level 0"));
    }
    if !report.cosigned_at.is_empty() {
        msg.push_str(&format!(
            "; cosigned by {} witness(es)",
            report.cosigned_at.len()
        ));
    }
    Ok(msg)
}

fn run(command: &Command) -> Result<String, Failure> {
    match command {
        Command::Verify {
            export_dir,
            trust,
            checkpoint,
            since,
            strict,
        } => verify(
            export_dir,
            trust,
            checkpoint.as_deref(),
            since.as_deref(),
            *strict,
        ),
        Command::VerifyReceipt {
            entry_file,
            receipt_file,
            trust,
        } => verify_receipt(entry_file, receipt_file, trust),
        Command::Consistency {
            note_a,
            note_b,
            trust,
            proof,
        } => consistency(note_a, note_b, trust, proof.as_deref()),
        Command::Tiles {
            url,
            trust,
            entries,
            token,
        } => tiles(url, trust, *entries, token.as_deref()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` print to stdout and succeed; every other parse error
            // (including no subcommand at all) is a usage error.
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(4),
            };
            // Nothing useful to do if the terminal is gone.
            let _ = e.print();
            return code;
        }
    };
    match run(&cli.command) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(Usage(msg))) => {
            eprintln!("vera: {msg}\n\nRun `vera --help` for usage.");
            ExitCode::from(4)
        }
        Err(Failure::Vera(e)) => {
            let code = e.exit_code();
            match &e {
                VeraError::Tampered { index, .. } => println!("TAMPERED index={index}"),
                VeraError::RootMismatch { .. } => println!("TAMPERED index=unknown"),
                VeraError::BadTile { path, .. } => println!("TAMPERED tile={path}"),
                VeraError::Fork { .. } => println!("FORK"),
                _ if code == 3 => println!("BAD-SIGNATURE"),
                _ => {}
            }
            eprintln!("vera: {e}");
            ExitCode::from(u8::try_from(code).unwrap_or(4))
        }
    }
}
