//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys (signature type 0x01).
//!
//! A signed note is the text (UTF-8, ending in `\n`), an empty line, and one or more
//! signature lines `— <key name> <base64(key id ‖ signature)>\n` (`—` is U+2014). The key id
//! is the first four bytes (big-endian) of `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)`. A
//! verifier key is written `<name>+<key id, 8 hex digits>+<base64(0x01 ‖ public key)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::error::VeraError;

/// The Ed25519 signature type byte of signed notes.
const ALG_ED25519: u8 = 0x01;

/// At most this many signature lines are read (as in Go's `note` package).
const MAX_SIGNATURES: usize = 100;

/// The start of a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// True for a valid key name: non-empty, no Unicode whitespace, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The signed-note key id of an Ed25519 public key under a name.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ALG_ED25519]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The parts of a note key `<name>+<hex id>+<base64(alg ‖ Ed25519 public key)>` of type
/// `alg`: its name, the id it states, and the public key (`what` and `kind` name the key in
/// errors). The caller checks the stated id against the key, whose id rule differs by type.
pub(crate) fn split_vkey<'a>(
    vkey: &'a str,
    what: &str,
    alg: u8,
    kind: &str,
) -> Result<(&'a str, u32, VerifyingKey), VeraError> {
    let bad = |why: &str| VeraError::MalformedKey(format!("{what} {vkey:?}: {why}"));
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected name+id+key"));
    };
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| bad("key id is not hex"))?;
    let raw = B64.decode(key).map_err(|_| bad("key is not base64"))?;
    let public = match raw.split_first() {
        Some((&a, public)) if a == alg => public,
        _ => return Err(bad(&format!("not an {kind} key"))),
    };
    let public: [u8; 32] = public
        .try_into()
        .map_err(|_| bad("Ed25519 key must be 32 bytes"))?;
    let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 point"))?;
    Ok((name, id, key))
}

/// A trusted Ed25519 verifier key of a signed-note signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// The verifier key for an Ed25519 public key under a name.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, VeraError> {
        if !is_valid_key_name(name) {
            return Err(VeraError::MalformedKey(format!(
                "invalid key name {name:?}"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            id: key_id(name, key.as_bytes()),
            key,
        })
    }

    /// Parses `<name>+<hex id>+<base64(0x01 ‖ public key)>`; the id must match.
    pub fn parse(vkey: &str) -> Result<Self, VeraError> {
        let (name, id, key) = split_vkey(vkey, "verifier key", ALG_ED25519, "Ed25519 (type 0x01)")?;
        let v = Self::new(name, key)?;
        if v.id != id {
            return Err(VeraError::MalformedKey(format!(
                "verifier key {vkey:?}: key id does not match the key"
            )));
        }
        Ok(v)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.key.verify_strict(msg, &sig).is_ok()
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(ALG_ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
    /// The signature bytes after the key id.
    pub signature: Vec<u8>,
}

/// The signature line an Ed25519 key makes over a note text under a name.
pub fn signature_line(name: &str, key: &SigningKey, text: &str) -> String {
    let id = key_id(name, key.verifying_key().as_bytes());
    let sig = key.sign(text.as_bytes());
    let mut raw = Vec::with_capacity(68);
    raw.extend_from_slice(&id.to_be_bytes());
    raw.extend_from_slice(&sig.to_bytes());
    format!("{SIG_PREFIX}{name} {}\n", B64.encode(raw))
}

/// The signature line of a parsed signature (as [`split_note`] read it).
pub fn signature_line_of(sig: &NoteSignature) -> String {
    let mut raw = Vec::with_capacity(4 + sig.signature.len());
    raw.extend_from_slice(&sig.key_id.to_be_bytes());
    raw.extend_from_slice(&sig.signature);
    format!("{SIG_PREFIX}{} {}\n", sig.name, B64.encode(raw))
}

/// Splits a signed note into its text (with its final newline) and its signature lines.
pub fn split_note(note: &str) -> Result<(&str, Vec<NoteSignature>), VeraError> {
    let bad = |why: &str| VeraError::MalformedNote(why.to_owned());
    let at = note
        .rfind("\n\n")
        .ok_or_else(|| bad("no empty line before the signatures"))?;
    let (text, sigs) = (&note[..=at], &note[at + 2..]);
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad("the text holds control characters"));
    }
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(bad("signature lines must end with a newline"));
    }
    let mut out = Vec::new();
    for line in sigs[..sigs.len() - 1].split('\n') {
        if out.len() == MAX_SIGNATURES {
            return Err(bad("too many signatures"));
        }
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("a signature line must start with an em dash and a space"))?;
        let (name, sig) = rest
            .split_once(' ')
            .ok_or_else(|| bad("a signature line needs a key name and a signature"))?;
        if !is_valid_key_name(name) {
            return Err(bad("invalid key name in a signature line"));
        }
        let raw = B64
            .decode(sig)
            .map_err(|_| bad("signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("signature too short"));
        }
        out.push(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            signature: raw[4..].to_vec(),
        });
    }
    Ok((text, out))
}

/// Opens a signed note: returns its text and the trusted keys whose signatures verified.
///
/// Signatures of unknown keys are ignored. A signature of a known key (same name and key id)
/// that does not verify, or a second signature of the same known key, rejects the note
/// ([`VeraError::BadSignature`]). No verified signature at all is [`VeraError::Untrusted`].
pub fn open_note<'n, 'k>(
    note: &'n str,
    trusted: &'k [VerifierKey],
) -> Result<(&'n str, Vec<&'k VerifierKey>), VeraError> {
    let (text, sigs) = split_note(note)?;
    let mut verified: Vec<&VerifierKey> = Vec::new();
    for s in &sigs {
        let Some(k) = trusted
            .iter()
            .find(|k| k.name == s.name && k.id == s.key_id)
        else {
            continue;
        };
        if verified.iter().any(|v| std::ptr::eq(*v, k)) || !k.verify(text.as_bytes(), &s.signature)
        {
            return Err(VeraError::BadSignature {
                name: s.name.clone(),
                key_id: s.key_id,
            });
        }
        verified.push(k);
    }
    if verified.is_empty() {
        return Err(VeraError::Untrusted {
            origin: text.lines().next().unwrap_or_default().to_owned(),
        });
    }
    Ok((text, verified))
}
