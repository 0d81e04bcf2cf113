//! `vera`: the offline VERA verifier. No database, no network: it reads files.
//!
//! ```text
//! vera verify <export-dir> --trust <keys> [--checkpoint <note>] [--since <older-note>] [--strict]
//! vera verify-receipt <entry-file> <receipt-file> --trust <keys>
//! vera consistency <note-a> <note-b> --trust <keys> [--proof <file>]
//! ```
//!
//! Exit codes: 0 valid; 1 tampered entry or failing proof (the first bad index is printed as
//! `index=<n>`); 2 two inconsistent checkpoints (a fork or rollback); 3 a bad or untrusted
//! checkpoint signature; 4 usage or input error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ordonis_core::vera::export::parse_proof;
use ordonis_core::vera::{
    Checkpoint, ExportCheck, Receipt, TrustedKeys, VeraError, check_consistency, verify_export,
};

const USAGE: &str = "\
usage:
  vera verify <export-dir> --trust <keys> [--checkpoint <note>] [--since <older-note>] [--strict]
      checks an export (<dir>/entries, and <dir>/checkpoint unless --checkpoint is given)
      against a signed checkpoint; with --since, also that an older checkpoint is a prefix.
  vera verify-receipt <entry-file> <receipt-file> --trust <keys>
      checks one entry's c2sp.org/tlog-proof receipt.
  vera consistency <note-a> <note-b> --trust <keys> [--proof <file>]
      checks two checkpoints of one log against each other (a proof is needed unless the
      sizes are equal).
  <keys> is a file of verifier keys (name+id+key), one per line.
exit codes: 0 valid, 1 tampered entry or failing proof, 2 fork, 3 bad checkpoint signature,
  4 usage or input error";

/// A usage error: exit 4.
struct Usage(String);

enum Failure {
    Usage(Usage),
    Vera(VeraError),
}

impl From<VeraError> for Failure {
    fn from(e: VeraError) -> Self {
        Failure::Vera(e)
    }
}

impl From<Usage> for Failure {
    fn from(e: Usage) -> Self {
        Failure::Usage(e)
    }
}

#[derive(Default)]
struct Args {
    positional: Vec<String>,
    trust: Option<PathBuf>,
    checkpoint: Option<PathBuf>,
    since: Option<PathBuf>,
    proof: Option<PathBuf>,
    strict: bool,
}

fn parse_args(raw: impl Iterator<Item = String>) -> Result<Args, Usage> {
    let mut a = Args::default();
    let mut it = raw;
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .map(PathBuf::from)
                .ok_or_else(|| Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--trust" => a.trust = Some(value("--trust")?),
            "--checkpoint" => a.checkpoint = Some(value("--checkpoint")?),
            "--since" => a.since = Some(value("--since")?),
            "--proof" => a.proof = Some(value("--proof")?),
            "--strict" => a.strict = true,
            s if s.starts_with("--") => return Err(Usage(format!("unknown option {s}"))),
            _ => a.positional.push(arg),
        }
    }
    Ok(a)
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

fn trusted(a: &Args) -> Result<TrustedKeys, Failure> {
    let path = a
        .trust
        .as_ref()
        .ok_or_else(|| Usage("--trust <keys> is required".into()))?;
    let keys =
        TrustedKeys::parse(&read(path)?).map_err(|e| Usage(format!("{}: {e}", path.display())))?;
    if keys.keys().is_empty() {
        return Err(Usage(format!("{}: no verifier keys", path.display())).into());
    }
    Ok(keys)
}

fn describe(cp: &Checkpoint) -> String {
    format!(
        "{} size {} root {}",
        cp.origin,
        cp.size,
        B64.encode(cp.root)
    )
}

fn verify(a: &Args) -> Result<String, Failure> {
    let [dir] = a.positional.as_slice() else {
        return Err(Usage("verify takes one export directory".into()).into());
    };
    let dir = Path::new(dir);
    let keys = trusted(a)?;
    let cp_path = a
        .checkpoint
        .clone()
        .unwrap_or_else(|| dir.join("checkpoint"));
    let cp = keys.verify(&read_note(&cp_path)?)?;
    let old = match &a.since {
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
    let entries_path = dir.join("entries");
    let file = std::fs::File::open(&entries_path)
        .map_err(|e| Usage(format!("cannot read {}: {e}", entries_path.display())))?;
    let check = ExportCheck {
        strict: a.strict,
        roots_at: old.iter().map(|o| o.size).collect(),
    };
    let report = verify_export(
        std::io::BufReader::with_capacity(1 << 16, file),
        &cp,
        &check,
    )?;
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

fn verify_receipt(a: &Args) -> Result<String, Failure> {
    let [entry, receipt] = a.positional.as_slice() else {
        return Err(Usage("verify-receipt takes an entry file and a receipt file".into()).into());
    };
    let keys = trusted(a)?;
    let entry = std::fs::read(entry).map_err(|e| Usage(format!("cannot read {entry}: {e}")))?;
    let entry = entry.strip_suffix(b"\n").unwrap_or(&entry);
    let receipt =
        std::fs::read(receipt).map_err(|e| Usage(format!("cannot read {receipt}: {e}")))?;
    let receipt = String::from_utf8(receipt)
        .map_err(|_| VeraError::MalformedReceipt("the receipt is not UTF-8".into()))?;
    let receipt = Receipt::parse(&receipt)?;
    let cp = receipt.verify(entry, &keys)?;
    Ok(format!(
        "ok: entry {} is in {}",
        receipt.index,
        describe(&cp)
    ))
}

fn consistency(a: &Args) -> Result<String, Failure> {
    let [x, y] = a.positional.as_slice() else {
        return Err(Usage("consistency takes two checkpoint files".into()).into());
    };
    let keys = trusted(a)?;
    let x = keys.verify(&read_note(Path::new(x))?)?;
    let y = keys.verify(&read_note(Path::new(y))?)?;
    let proof = match &a.proof {
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

fn main() -> ExitCode {
    let mut raw = std::env::args().skip(1);
    let Some(cmd) = raw.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(4);
    };
    let result = parse_args(raw)
        .map_err(Failure::from)
        .and_then(|a| match cmd.as_str() {
            "verify" => verify(&a),
            "verify-receipt" => verify_receipt(&a),
            "consistency" => consistency(&a),
            "help" | "--help" | "-h" => Ok(USAGE.to_owned()),
            other => Err(Usage(format!("unknown command {other:?}")).into()),
        });
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(Usage(msg))) => {
            eprintln!("vera: {msg}\n\n{USAGE}");
            ExitCode::from(4)
        }
        Err(Failure::Vera(e)) => {
            let code = e.exit_code();
            match &e {
                VeraError::Tampered { index, .. } => println!("TAMPERED index={index}"),
                VeraError::RootMismatch { .. } => println!("TAMPERED index=unknown"),
                VeraError::Fork { .. } => println!("FORK"),
                _ if code == 3 => println!("BAD-SIGNATURE"),
                _ => {}
            }
            eprintln!("vera: {e}");
            ExitCode::from(u8::try_from(code).unwrap_or(4))
        }
    }
}
