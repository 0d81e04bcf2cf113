//! Signed checkpoints (c2sp.org/tlog-checkpoint over c2sp.org/signed-note), the signer that
//! makes them and the trusted keys that verify them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;

use super::error::VeraError;
use super::merkle::{Hash, verify_consistency};
use super::note::{VerifierKey, is_valid_key_name, open_note, signature_line, split_note};

/// A checkpoint body: the log's origin, its tree size and its root.
///
/// Its text form is `<origin>\n<size>\n<base64 root>\n` (no extension lines are written;
/// extension lines of a parsed checkpoint are ignored, though they are covered by the
/// signature).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (for VERA: [`log_name`](super::log_name) of the workspace).
    pub origin: String,
    /// Number of entries the checkpoint covers.
    pub size: u64,
    /// The RFC 6962 root of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's note text.
    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint's note text (without signatures).
    pub fn parse_text(text: &str) -> Result<Self, VeraError> {
        let bad = |why: &str| VeraError::MalformedCheckpoint(why.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("text must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        let size = lines.next().ok_or_else(|| bad("missing tree size"))?;
        let canonical = size == "0" || (!size.starts_with('0') && !size.is_empty());
        if !canonical || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "tree size must be a decimal number without leading zeros",
            ));
        }
        let size: u64 = size.parse().map_err(|_| bad("tree size out of range"))?;
        let root = lines.next().ok_or_else(|| bad("missing root hash"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("root hash must be 32 bytes of base64"))?;
        if lines.any(str::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Parses the body of a signed checkpoint note **without checking any signature**: for a
    /// log's own bookkeeping only (a notary reading back its last stored checkpoint).
    pub fn parse_unverified(note: &str) -> Result<Self, VeraError> {
        let (text, _) = split_note(note)?;
        Self::parse_text(text)
    }
}

/// The verifier keys a verifier trusts. A checkpoint is accepted when a trusted key whose
/// name is the checkpoint's origin signed it; signatures of other keys are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<VerifierKey>,
}

impl TrustedKeys {
    /// No trusted key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a trusted-keys file: one verifier key per line; empty lines and lines starting
    /// with `#` are skipped.
    pub fn parse(text: &str) -> Result<Self, VeraError> {
        let mut t = Self::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            t.push(VerifierKey::parse(line)?);
        }
        Ok(t)
    }

    /// Adds a key.
    pub fn push(&mut self, key: VerifierKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// The keys.
    pub fn keys(&self) -> &[VerifierKey] {
        &self.keys
    }

    /// Verifies a signed checkpoint note and returns its body.
    ///
    /// Fails with [`VeraError::BadSignature`] when a trusted key's signature does not verify
    /// (the note was altered), [`VeraError::Untrusted`] when no trusted key for the origin
    /// signed it, and [`VeraError::MalformedNote`] / [`VeraError::MalformedCheckpoint`] when
    /// the note cannot be read.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, VeraError> {
        let (text, signers) = open_note(note, &self.keys)?;
        let cp = Checkpoint::parse_text(text)?;
        if !signers.iter().any(|k| k.name() == cp.origin) {
            return Err(VeraError::Untrusted { origin: cp.origin });
        }
        Ok(cp)
    }
}

/// Signs checkpoints with one or more Ed25519 keys: during a key rotation both the old and
/// the new key sign, so verifiers trusting either accept the checkpoints.
///
/// Key name = origin: a key signs each log's checkpoints under that log's name, so one key
/// serves every workspace while each workspace has its own verifier key
/// ([`CheckpointSigner::verifier_keys`]) and a checkpoint cannot be moved to another log.
pub struct CheckpointSigner {
    keys: Vec<SigningKey>,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let publics: Vec<String> = self
            .keys
            .iter()
            .map(|k| B64.encode(k.verifying_key().as_bytes()))
            .collect();
        f.debug_struct("CheckpointSigner")
            .field("public_keys", &publics)
            .finish()
    }
}

impl CheckpointSigner {
    /// A signer with one key from its 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            keys: vec![SigningKey::from_bytes(seed)],
        }
    }

    /// A signer with one fresh random key.
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        Self::from_seed(&seed)
    }

    /// Adds a key (rotation overlap: old and new keys both sign).
    pub fn with_seed(mut self, seed: &[u8; 32]) -> Self {
        self.keys.push(SigningKey::from_bytes(seed));
        self
    }

    /// Removes the key at a position (retiring an old key after the overlap). The last key
    /// cannot be removed.
    pub fn retire(&mut self, position: usize) -> bool {
        if self.keys.len() > 1 && position < self.keys.len() {
            self.keys.remove(position);
            true
        } else {
            false
        }
    }

    /// The verifier keys of a log, one per signing key.
    pub fn verifier_keys(&self, origin: &str) -> Result<Vec<VerifierKey>, VeraError> {
        self.keys
            .iter()
            .map(|k| VerifierKey::new(origin, k.verifying_key()))
            .collect()
    }

    /// The trusted keys a verifier of a log needs.
    pub fn trusted_keys(&self, origin: &str) -> Result<TrustedKeys, VeraError> {
        let mut t = TrustedKeys::new();
        for k in self.verifier_keys(origin)? {
            t.push(k);
        }
        Ok(t)
    }

    /// The signed note of a checkpoint: its text, an empty line and one signature per key.
    pub fn sign(&self, cp: &Checkpoint) -> Result<String, VeraError> {
        if !is_valid_key_name(&cp.origin) {
            return Err(VeraError::MalformedCheckpoint(format!(
                "origin {:?} cannot be a key name (no spaces or `+`)",
                cp.origin
            )));
        }
        let text = cp.to_text();
        let mut note = text.clone();
        note.push('\n');
        for k in &self.keys {
            note.push_str(&signature_line(&cp.origin, k, &text));
        }
        Ok(note)
    }
}

/// Checks two verified checkpoints of one log against each other.
///
/// Equal sizes need equal roots; otherwise `proof` must be a consistency proof from the
/// smaller to the larger. Sizes and roots come from the checkpoints, never from the proof.
/// Any mismatch is a [`VeraError::Fork`].
pub fn check_consistency(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &[Hash],
) -> Result<(), VeraError> {
    if old.origin != new.origin {
        return Err(VeraError::InvalidSizes(format!(
            "checkpoints of different logs: {:?} and {:?}",
            old.origin, new.origin
        )));
    }
    let (a, b) = if old.size <= new.size {
        (old, new)
    } else {
        (new, old)
    };
    verify_consistency(a.size, b.size, &a.root, &b.root, proof).map_err(|e| VeraError::Fork {
        old_size: a.size,
        new_size: b.size,
        reason: e.to_string(),
    })
}
