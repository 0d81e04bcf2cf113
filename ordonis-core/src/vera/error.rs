//! The errors of VERA encoding, proofs, checkpoints and verification.

use crate::error::StoreError;

/// What VERA can fail with. Each variant says which input is wrong and, for verification
/// failures, which class of problem was found (the `vera` command maps them to exit codes:
/// [`VeraError::exit_code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VeraError {
    /// Entry bytes that are not valid JSON or do not follow the entry schema.
    #[error("malformed entry: {0}")]
    MalformedEntry(String),
    /// Entry bytes that parse but are not the VERA-JCS/1 canonical form of what they hold
    /// (whitespace, unsorted or duplicate keys, other escapes, a float, ...).
    #[error("entry is not VERA-JCS/1 canonical: {0}")]
    NonCanonical(String),
    /// A log name that is not `ordonis/ws/<percent-encoded workspace id>`.
    #[error("invalid log name {0:?}: expected `ordonis/ws/<percent-encoded workspace id>`")]
    BadLogName(String),
    /// A leaf index at or past the tree size.
    #[error("index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A size pair a proof cannot be made or checked for (old size larger than new size).
    #[error("invalid tree sizes: {0}")]
    InvalidSizes(String),
    /// An inclusion or consistency proof that does not verify.
    #[error("proof does not verify: {0}")]
    InvalidProof(String),
    /// A signed note that does not follow c2sp.org/signed-note.
    #[error("malformed signed note: {0}")]
    MalformedNote(String),
    /// A checkpoint body that does not follow c2sp.org/tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// A verifier or signer key that cannot be parsed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// A signature line of a trusted key that does not verify: the note was altered or forged.
    #[error("signature by trusted key {name}+{key_id:08x} does not verify")]
    BadSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: u32,
    },
    /// No signature of a trusted key for the checkpoint's origin.
    #[error("no valid signature by a trusted key for {origin:?}; check the trusted keys file")]
    Untrusted {
        /// The checkpoint's origin (or the note's first line).
        origin: String,
    },
    /// An entry of a log export that does not match what the checkpoint commits to.
    #[error("entry {index} is tampered: {reason}")]
    Tampered {
        /// The 0-based index of the first bad entry.
        index: u64,
        /// What was found.
        reason: String,
    },
    /// Every entry looked right on its own, but the recomputed root differs from the
    /// checkpoint's: the stored leaf hashes were rewritten along with the entries.
    #[error("the log's root at size {size} does not match the checkpoint")]
    RootMismatch {
        /// The size compared.
        size: u64,
    },
    /// Two validly signed checkpoints of one log that cannot both be true: a fork, a
    /// rollback, or a rewritten history.
    #[error("fork: checkpoints of sizes {old_size} and {new_size} are inconsistent: {reason}")]
    Fork {
        /// Size of the older checkpoint.
        old_size: u64,
        /// Size of the newer checkpoint.
        new_size: u64,
        /// What does not match.
        reason: String,
    },
    /// A log export that does not follow the export format (header, line syntax).
    #[error("malformed export: {0}")]
    MalformedExport(String),
    /// A receipt that does not follow c2sp.org/tlog-proof.
    #[error("malformed receipt: {0}")]
    MalformedReceipt(String),
    /// The notary refuses to sign a tree that is inconsistent with the log's latest stored
    /// checkpoint, or the stored log does not match its own leaf hashes.
    #[error("log integrity: {0}")]
    Integrity(String),
    /// A tile or entry bundle that does not match the checkpoint (c2sp.org/tlog-tiles).
    #[error("tile {path} does not verify: {reason}")]
    BadTile {
        /// The tile's path below the log's prefix.
        path: String,
        /// What was found.
        reason: String,
    },
    /// An entry too long for an entry bundle's 16-bit length prefix.
    #[error("entry {index} is {len} bytes: entry bundles carry at most 65535")]
    EntryTooLarge {
        /// Its index.
        index: u64,
        /// Its length.
        len: usize,
    },
    /// A witness the verifier requires did not cosign the checkpoint.
    #[error("no cosignature by witness {witness}")]
    MissingCosignature {
        /// The witness's verifier key.
        witness: String,
    },
    /// Fetching from a log over HTTP failed.
    #[error("fetch: {0}")]
    Fetch(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing a file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl VeraError {
    /// The `vera` command's exit code for this error: 1 tampered entry or failing proof,
    /// 2 fork, 3 bad or untrusted checkpoint signature, 4 usage or input error.
    pub fn exit_code(&self) -> i32 {
        match self {
            VeraError::Tampered { .. }
            | VeraError::RootMismatch { .. }
            | VeraError::InvalidProof(_)
            | VeraError::MalformedEntry(_)
            | VeraError::NonCanonical(_)
            | VeraError::MalformedReceipt(_)
            | VeraError::BadTile { .. }
            | VeraError::Integrity(_) => 1,
            VeraError::Fork { .. } => 2,
            VeraError::BadSignature { .. }
            | VeraError::Untrusted { .. }
            | VeraError::MissingCosignature { .. }
            | VeraError::MalformedNote(_)
            | VeraError::MalformedCheckpoint(_) => 3,
            VeraError::BadLogName(_)
            | VeraError::IndexOutOfRange { .. }
            | VeraError::InvalidSizes(_)
            | VeraError::MalformedKey(_)
            | VeraError::MalformedExport(_)
            | VeraError::EntryTooLarge { .. }
            | VeraError::Fetch(_)
            | VeraError::Store(_)
            | VeraError::Io(_) => 4,
        }
    }
}
