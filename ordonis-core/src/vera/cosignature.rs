//! Witness cosignatures on checkpoints (c2sp.org/tlog-cosignature, the Ed25519 type 0x04).
//!
//! A cosignature is a signed-note signature line `— <witness name> base64(key id ‖ timestamp
//! ‖ signature)`: the key id is `SHA-256(name ‖ "\n" ‖ 0x04 ‖ public key)[:4]`, the timestamp
//! a big-endian `u64` of POSIX seconds, and the Ed25519 signature covers
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's note text. A witness's
//! verifier key is written `<name>+<key id>+base64(0x04 ‖ public key)`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::error::VeraError;
use super::note::{NoteSignature, is_valid_key_name, split_note, split_vkey};

/// The signature type byte of Ed25519 cosignatures.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The key id of a witness's Ed25519 cosigning key under its name.
pub fn witness_key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_COSIGNATURE_V1]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The message a `cosignature/v1` signs: the header line, the time line and the checkpoint's
/// note text (with its final newline, without signature lines).
pub fn cosigned_message(text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{text}")
}

/// A witness's Ed25519 cosigning key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl WitnessKey {
    /// The witness key for a public key under a name.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, VeraError> {
        if !is_valid_key_name(name) {
            return Err(VeraError::MalformedKey(format!(
                "invalid witness name {name:?}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            id: witness_key_id(name, key.as_bytes()),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x04 ‖ public key)>`; the id must match.
    pub fn parse(vkey: &str) -> Result<Self, VeraError> {
        let (name, id, key) = split_vkey(
            vkey,
            "witness key",
            ALG_COSIGNATURE_V1,
            "Ed25519 cosignature (type 0x04)",
        )?;
        let w = Self::new(name, key)?;
        if w.id != id {
            return Err(VeraError::MalformedKey(format!(
                "witness key {vkey:?}: key id does not match the key"
            )));
        }
        Ok(w)
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Whether a signature line claims to be this witness's (same name and key id).
    pub fn signed(&self, sig: &NoteSignature) -> bool {
        sig.name == self.name && sig.key_id == self.id
    }

    /// Verifies this witness's signature line over a checkpoint's note text and returns its
    /// timestamp; [`VeraError::BadSignature`] when it does not verify.
    pub fn verify(&self, text: &str, sig: &NoteSignature) -> Result<u64, VeraError> {
        let bad = || VeraError::BadSignature {
            name: self.name.clone(),
            key_id: self.id,
        };
        if !self.signed(sig) || sig.signature.len() != 8 + 64 {
            return Err(bad());
        }
        let (ts, s) = sig.signature.split_at(8);
        let ts = u64::from_be_bytes(ts.try_into().map_err(|_| bad())?);
        if ts > i64::MAX as u64 {
            return Err(bad());
        }
        let s = Signature::from_slice(s).map_err(|_| bad())?;
        self.key
            .verify_strict(cosigned_message(text, ts).as_bytes(), &s)
            .map_err(|_| bad())?;
        Ok(ts)
    }
}

impl std::fmt::Display for WitnessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_COSIGNATURE_V1);
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// The cosignature line a witness key makes over a checkpoint's note text at a time.
pub fn cosign(name: &str, key: &SigningKey, text: &str, timestamp: u64) -> String {
    let id = witness_key_id(name, key.verifying_key().as_bytes());
    let sig = key.sign(cosigned_message(text, timestamp).as_bytes());
    let mut raw = Vec::with_capacity(76);
    raw.extend_from_slice(&id.to_be_bytes());
    raw.extend_from_slice(&timestamp.to_be_bytes());
    raw.extend_from_slice(&sig.to_bytes());
    format!("\u{2014} {name} {}\n", B64.encode(raw))
}

/// Checks that every witness in `required` cosigned a signed checkpoint note, returning each
/// one's timestamp in order. A missing cosignature is [`VeraError::MissingCosignature`]; one
/// that does not verify, [`VeraError::BadSignature`]. The log's own signature is checked
/// separately ([`TrustedKeys::verify`](super::TrustedKeys::verify)).
pub fn verify_cosignatures(note: &str, required: &[WitnessKey]) -> Result<Vec<u64>, VeraError> {
    let (text, sigs) = split_note(note)?;
    required
        .iter()
        .map(|w| {
            let mine: Vec<&NoteSignature> = sigs.iter().filter(|s| w.signed(s)).collect();
            match mine.as_slice() {
                [] => Err(VeraError::MissingCosignature {
                    witness: w.to_string(),
                }),
                [one] => w.verify(text, one),
                _ => Err(VeraError::BadSignature {
                    name: w.name.clone(),
                    key_id: w.id,
                }),
            }
        })
        .collect()
}
