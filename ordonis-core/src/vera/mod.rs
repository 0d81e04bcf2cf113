//! VERA: canonical entry encoding, RFC 6962 Merkle hashing, checkpoints and proofs.

mod encode;

pub use encode::encode_entry;

use sha2::{Digest, Sha256};

/// RFC 6962 leaf hash: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}
