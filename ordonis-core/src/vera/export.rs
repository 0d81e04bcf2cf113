//! Log exports, receipts, and their offline verification.
//!
//! # Export format (`vera-export/v1`)
//!
//! An export is a directory with two files:
//!
//! * `checkpoint`: the signed checkpoint note the export is checked against;
//! * `entries`: the line `vera-export/v1`, then one line per entry in index order:
//!   `<base64 leaf hash> <entry bytes>` and a newline (`\n`). The entry bytes are exactly the
//!   canonical VERA-JCS/1 bytes that were hashed (canonical JSON never holds a raw newline),
//!   and the leaf hash is `SHA-256(0x00 ‖ entry bytes)` in padded standard base64.
//!
//! The stored leaf hash is only a locator: the verifier recomputes every leaf from the entry
//! bytes and the root from the recomputed leaves. A stored hash that differs from the
//! recomputed one names the tampered entry; an entry whose `idx` is not its line's position
//! names a deleted, inserted, duplicated or reordered entry.
//!
//! # Receipt format (c2sp.org/tlog-proof)
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! index <entry index>
//! <base64 hash of the inclusion proof, one per line>
//!
//! <the signed checkpoint note>
//! ```
//!
//! The entry bytes travel beside the receipt (they are not in it).
//!
//! # Consistency proof format
//!
//! One base64 hash per line, nothing else; the sizes come from the two checkpoints.

use std::io::{BufRead, Write};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::checkpoint::{Checkpoint, TrustedKeys};
use super::encode::{MAX_ENTRY_BYTES, MAX_SAFE_INTEGER, decode_entry, scan_idx_log};
use super::error::VeraError;
use super::merkle::{Hash, RootBuilder, leaf_hash, verify_inclusion};

/// The first line of an export's `entries` file.
pub const EXPORT_HEADER: &str = "vera-export/v1";

/// The first line of a receipt.
pub const RECEIPT_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Writes an export's `entries` file one entry at a time.
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an `entries` file (writes the header line).
    pub fn new(mut out: W) -> std::io::Result<Self> {
        out.write_all(EXPORT_HEADER.as_bytes())?;
        out.write_all(b"\n")?;
        Ok(Self { out, count: 0 })
    }

    /// Appends one entry's canonical bytes (its leaf hash is computed here).
    pub fn push(&mut self, entry: &[u8]) -> std::io::Result<Hash> {
        let leaf = leaf_hash(entry);
        self.push_with_leaf(entry, &leaf)?;
        Ok(leaf)
    }

    /// Appends one entry whose leaf hash is already known.
    pub fn push_with_leaf(&mut self, entry: &[u8], leaf: &Hash) -> std::io::Result<()> {
        let mut b64 = [0u8; 44];
        let n = B64
            .encode_slice(leaf, &mut b64)
            .map_err(std::io::Error::other)?;
        self.out.write_all(&b64[..n])?;
        self.out.write_all(b" ")?;
        self.out.write_all(entry)?;
        self.out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Entries written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What [`verify_export`] checks beyond the leaves and the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportCheck {
    /// Also parse every entry and require its canonical re-encoding to equal its bytes, and
    /// `logged_at` to never go backwards.
    pub strict: bool,
    /// Sizes at which to report the root as well (for checking older checkpoints).
    pub roots_at: Vec<u64>,
}

/// What a successful [`verify_export`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries verified.
    pub size: u64,
    /// Their root (equal to the checkpoint's).
    pub root: Hash,
    /// The roots at the sizes asked for in [`ExportCheck::roots_at`] (sizes past the export
    /// are left out).
    pub roots: Vec<(u64, Hash)>,
}

/// Padded standard base64 of a hash (44 characters), without the generic engine: this runs
/// once per entry on the verifier's hot path.
fn b64_hash(h: &Hash) -> [u8; 44] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = [b'='; 44];
    for (i, chunk) in h.chunks(3).enumerate() {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out[i * 4 + k] = ALPHABET[((n >> (18 - 6 * k)) & 63) as usize];
        }
    }
    out
}

fn tampered(index: u64, reason: impl Into<String>) -> VeraError {
    VeraError::Tampered {
        index,
        reason: reason.into(),
    }
}

/// Verifies an export's `entries` stream against a verified checkpoint, streaming (memory
/// O(log n) plus one line).
///
/// Reports the first problem found: a [`VeraError::Tampered`] with the index of the first bad
/// entry (bytes that do not match their leaf hash, an `idx` other than the position, another
/// log's entry, entries missing before the checkpoint's size or present past it, and in strict
/// mode non-canonical bytes), or [`VeraError::RootMismatch`] when only the root differs.
pub fn verify_export<R: BufRead>(
    mut entries: R,
    checkpoint: &Checkpoint,
    check: &ExportCheck,
) -> Result<ExportReport, VeraError> {
    let mut line = Vec::with_capacity(4096);
    entries.read_until(b'\n', &mut line)?;
    if line.strip_suffix(b"\n") != Some(EXPORT_HEADER.as_bytes()) {
        return Err(VeraError::MalformedExport(format!(
            "the entries file must start with the line {EXPORT_HEADER:?}"
        )));
    }
    let mut builder = RootBuilder::new();
    let mut roots = Vec::new();
    let mut last_logged = None;
    let mut index: u64 = 0;
    loop {
        line.clear();
        let n = entries.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        if index >= checkpoint.size {
            return Err(tampered(
                index,
                format!(
                    "the checkpoint covers {} entries but the export holds more",
                    checkpoint.size
                ),
            ));
        }
        let Some(body) = line.strip_suffix(b"\n") else {
            return Err(tampered(index, "the last line is cut off"));
        };
        let sp = body.iter().position(|&b| b == b' ');
        let Some(sp) = sp else {
            return Err(tampered(index, "the line has no leaf hash"));
        };
        let (stored, entry) = (&body[..sp], &body[sp + 1..]);
        if entry.len() > MAX_ENTRY_BYTES {
            return Err(tampered(index, "entry too large"));
        }
        let leaf = leaf_hash(entry);
        // Compare in the stored form: canonical base64 of the recomputed leaf.
        if stored != b64_hash(&leaf).as_slice() {
            return Err(tampered(
                index,
                "the entry bytes do not match their stored leaf hash",
            ));
        }
        match scan_idx_log(entry) {
            None => return Err(tampered(index, "the entry has no idx or log")),
            Some((i, _)) if i != index => {
                return Err(tampered(
                    index,
                    format!(
                        "the entry at position {index} holds idx {i}: entries were deleted, \
                         inserted, duplicated or reordered"
                    ),
                ));
            }
            Some((_, log)) if log != checkpoint.origin => {
                return Err(tampered(
                    index,
                    format!(
                        "the entry belongs to log {log:?}, not {:?}",
                        checkpoint.origin
                    ),
                ));
            }
            Some(_) => {}
        }
        if check.strict {
            let e = decode_entry(entry).map_err(|e| tampered(index, e.to_string()))?;
            if last_logged.is_some_and(|t| e.logged_at < t) {
                return Err(tampered(index, "logged_at goes backwards"));
            }
            last_logged = Some(e.logged_at);
        }
        builder.push(&leaf);
        index += 1;
        if check.roots_at.contains(&index) {
            roots.push((index, builder.root()));
        }
    }
    if index < checkpoint.size {
        return Err(tampered(
            index,
            format!(
                "missing: the export ends after {index} entries but the checkpoint covers {}",
                checkpoint.size
            ),
        ));
    }
    if check.roots_at.contains(&0) {
        roots.insert(0, (0, RootBuilder::new().root()));
    }
    let root = builder.root();
    if root != checkpoint.root {
        return Err(VeraError::RootMismatch {
            size: checkpoint.size,
        });
    }
    Ok(ExportReport {
        size: index,
        root,
        roots,
    })
}

/// Verifies an export directory (`checkpoint` and `entries`) offline: the checkpoint against
/// the trusted keys, then every entry against the checkpoint.
pub fn verify_export_dir(
    dir: &Path,
    trusted: &TrustedKeys,
    check: &ExportCheck,
) -> Result<(Checkpoint, ExportReport), VeraError> {
    let note = std::fs::read_to_string(dir.join("checkpoint"))?;
    let cp = trusted.verify(&note)?;
    let file = std::fs::File::open(dir.join("entries"))?;
    let report = verify_export(std::io::BufReader::with_capacity(1 << 16, file), &cp, check)?;
    Ok((cp, report))
}

/// A single entry's proof of inclusion in a signed checkpoint (c2sp.org/tlog-proof).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's index.
    pub index: u64,
    /// The inclusion proof against the checkpoint's tree size.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

impl Receipt {
    /// The receipt's text (`.tlog-proof` file).
    pub fn to_text(&self) -> String {
        let mut s = format!("{RECEIPT_HEADER}\nindex {}\n", self.index);
        for h in &self.proof {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    /// Parses a receipt's text. An `extra` line is accepted and ignored.
    pub fn parse(text: &str) -> Result<Self, VeraError> {
        let bad = |why: &str| VeraError::MalformedReceipt(why.to_owned());
        let rest = text
            .strip_prefix(RECEIPT_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or_else(|| bad("missing the c2sp.org/tlog-proof@v1 line"))?;
        let (head, checkpoint) = rest
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let mut first = lines.next().unwrap_or_default();
        if first.starts_with("extra ") {
            first = lines.next().unwrap_or_default();
        }
        let index = first
            .strip_prefix("index ")
            .ok_or_else(|| bad("missing the index line"))?;
        if index.is_empty()
            || !index.bytes().all(|b| b.is_ascii_digit())
            || (index.len() > 1 && index.starts_with('0'))
        {
            return Err(bad("index must be a decimal number without leading zeros"));
        }
        let index: u64 = index.parse().map_err(|_| bad("index out of range"))?;
        let proof = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|h| h.try_into().ok())
                    .ok_or_else(|| bad("proof hashes must be 32 bytes of base64"))
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        Ok(Self {
            index,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies the receipt for an entry's bytes: the checkpoint against the trusted keys,
    /// that the entry names this index and log, and the inclusion proof against the
    /// checkpoint's size and root. Returns the checkpoint.
    pub fn verify(&self, entry: &[u8], trusted: &TrustedKeys) -> Result<Checkpoint, VeraError> {
        let cp = trusted.verify(&self.checkpoint)?;
        if self.index >= cp.size || self.index > MAX_SAFE_INTEGER {
            return Err(tampered(
                self.index,
                format!("index is past the checkpoint's size {}", cp.size),
            ));
        }
        match scan_idx_log(entry) {
            Some((i, log)) if i == self.index && log == cp.origin => {}
            _ => {
                return Err(tampered(
                    self.index,
                    "the entry does not name this index and log",
                ));
            }
        }
        verify_inclusion(
            &leaf_hash(entry),
            self.index,
            cp.size,
            &self.proof,
            &cp.root,
        )
        .map_err(|e| tampered(self.index, e.to_string()))?;
        Ok(cp)
    }
}

/// Formats a consistency proof: one base64 hash per line.
pub fn format_proof(proof: &[Hash]) -> String {
    proof.iter().map(|h| B64.encode(h) + "\n").collect()
}

/// Parses a consistency proof written by [`format_proof`] (empty lines are skipped).
pub fn parse_proof(text: &str) -> Result<Vec<Hash>, VeraError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            B64.decode(l)
                .ok()
                .and_then(|h| h.try_into().ok())
                .ok_or_else(|| {
                    VeraError::InvalidProof("proof hashes must be 32 bytes of base64".to_owned())
                })
        })
        .collect()
}
