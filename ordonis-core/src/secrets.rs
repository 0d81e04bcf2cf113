//! Integration secrets, sealed at rest with XChaCha20-Poly1305 under a key the host supplies.
//! Stores only ever see [`SealedSecrets`]; the plaintext lives in memory, zeroized on drop,
//! and never appears in `Debug` output.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::Error;
use crate::ids::IntegrationId;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

/// A 256-bit key that seals integration secrets, with an id so it can be rotated.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    id: u8,
    key: [u8; 32],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey {{ id: {}, key: [REDACTED] }}", self.id)
    }
}

impl SecretKey {
    /// A key from 32 raw bytes and a key id (the id is stored beside each ciphertext).
    pub fn from_bytes(id: u8, key: [u8; 32]) -> Self {
        Self { id, key }
    }

    /// A key from 64 hex characters.
    ///
    /// ```
    /// use ordonis_core::SecretKey;
    /// let k = SecretKey::from_hex(1, &"ab".repeat(32)).unwrap();
    /// assert!(format!("{k:?}").contains("REDACTED"));
    /// assert!(SecretKey::from_hex(1, "nothex").is_err());
    /// ```
    pub fn from_hex(id: u8, hex_key: &str) -> Result<Self, Error> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_key.trim(), &mut key)
            .map_err(|_| Error::Secrets("the key must be 64 hex characters".to_owned()))?;
        Ok(Self { id, key })
    }

    /// A fresh random key.
    pub fn generate(id: u8) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { id, key }
    }

    /// The key as hex, for a host that stores a generated key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    /// The key id.
    pub fn id(&self) -> u8 {
        self.id
    }
}

/// The keys that may open sealed secrets: the current one seals, any of them opens
/// (so a key can be rotated by adding a new current key and re-sealing).
#[derive(Clone, Debug)]
pub struct Keyring {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring with one key.
    pub fn new(current: SecretKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Adds an older key that may still open secrets sealed before a rotation.
    pub fn with_previous(mut self, key: SecretKey) -> Self {
        self.previous.push(key);
        self
    }

    /// Seals secrets for one integration. The integration id is authenticated data, so a
    /// ciphertext copied onto another integration does not open.
    pub fn seal(
        &self,
        integration: IntegrationId,
        secrets: &IntegrationSecrets,
    ) -> Result<SealedSecrets, Error> {
        let mut plain = serde_json::to_vec(secrets).map_err(|e| Error::Secrets(e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.current.key.into());
        let sealed = cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: integration.0.as_bytes(),
            },
        );
        plain.zeroize();
        let sealed = sealed.map_err(|_| Error::Secrets("encryption failed".to_owned()))?;
        let mut out = Vec::with_capacity(2 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.push(self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(SealedSecrets(out))
    }

    /// Opens sealed secrets.
    pub fn open(
        &self,
        integration: IntegrationId,
        sealed: &SealedSecrets,
    ) -> Result<IntegrationSecrets, Error> {
        let bytes = &sealed.0;
        if bytes.len() < 2 + NONCE_LEN || bytes[0] != VERSION {
            return Err(Error::Secrets(
                "unrecognised sealed-secrets format".to_owned(),
            ));
        }
        let key_id = bytes[1];
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
            .ok_or_else(|| Error::Secrets(format!("no key with id {key_id} in the keyring")))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[2..2 + NONCE_LEN]);
        let cipher = XChaCha20Poly1305::new(&key.key.into());
        let mut plain = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &bytes[2 + NONCE_LEN..],
                    aad: integration.0.as_bytes(),
                },
            )
            .map_err(|_| Error::Secrets("wrong key or tampered ciphertext".to_owned()))?;
        let secrets = serde_json::from_slice(&plain).map_err(|e| Error::Secrets(e.to_string()));
        plain.zeroize();
        secrets
    }
}

/// What a key-check record holds, sealed (authenticated data: [`KEY_CHECK_AAD`]).
const KEY_CHECK_TEXT: &[u8] = b"ordonis key check v1";
/// The authenticated data of a key-check record: no integration's secrets open as one.
const KEY_CHECK_AAD: &[u8] = b"ordonis/key-check/v1";

impl Keyring {
    /// A key-check record: a fixed text sealed with the current key, which a store keeps
    /// ([`Store::init_key_check`](crate::Store::init_key_check)) so that a later start with
    /// another key is refused by [`check_key`](Self::check_key).
    pub fn seal_key_check(&self) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&self.current.key.into());
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: KEY_CHECK_TEXT,
                    aad: KEY_CHECK_AAD,
                },
            )
            .map_err(|_| Error::Secrets("encryption failed".to_owned()))?;
        let mut out = Vec::with_capacity(2 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.push(self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Checks a key-check record: `Ok` when one of the keyring's keys (the current one or a
    /// previous one kept for rotation) sealed it, else an error saying the key is wrong.
    pub fn check_key(&self, record: &[u8]) -> Result<(), Error> {
        if record.len() < 2 + NONCE_LEN || record[0] != VERSION {
            return Err(Error::Secrets(
                "unrecognised key-check record format".to_owned(),
            ));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&record[2..2 + NONCE_LEN]);
        let opens = std::iter::once(&self.current)
            .chain(&self.previous)
            .filter(|k| k.id == record[1])
            .any(|k| {
                XChaCha20Poly1305::new(&k.key.into())
                    .decrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: &record[2 + NONCE_LEN..],
                            aad: KEY_CHECK_AAD,
                        },
                    )
                    .is_ok_and(|p| p == KEY_CHECK_TEXT)
            });
        if opens {
            Ok(())
        } else {
            Err(Error::Secrets(
                "the secret key is not the one this store was created with".to_owned(),
            ))
        }
    }
}

/// Ciphertext of an integration's secrets: what stores persist.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecrets(pub Vec<u8>);

impl fmt::Debug for SealedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecrets({} bytes)", self.0.len())
    }
}

/// How Ordonis authenticates to a provider's API.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ApiAuth {
    /// Basic auth: Jira's e-mail + API token.
    Basic {
        /// Account e-mail.
        email: String,
        /// API token.
        api_token: String,
    },
    /// Bearer token: OAuth 2.0 access token or Asana personal access token.
    Bearer {
        /// The token.
        token: String,
    },
}

impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiAuth::Basic { email, .. } => {
                write!(f, "Basic {{ email: {email:?}, api_token: [REDACTED] }}")
            }
            ApiAuth::Bearer { .. } => f.write_str("Bearer { token: [REDACTED] }"),
        }
    }
}

/// An integration's secrets, in plaintext (memory only).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct IntegrationSecrets {
    /// API credentials.
    #[serde(default)]
    pub api_auth: Option<ApiAuth>,
    /// Webhook secrets currently accepted; several during a rotation, newest first.
    #[serde(default)]
    pub webhook_secrets: Vec<String>,
    /// A connected app's shared secret, for JWT-signed (OAuth/Connect) webhooks.
    #[serde(default)]
    pub app_secret: Option<String>,
}

impl fmt::Debug for IntegrationSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrationSecrets")
            .field("api_auth", &self.api_auth)
            .field(
                "webhook_secrets",
                &format_args!("[{} REDACTED]", self.webhook_secrets.len()),
            )
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl IntegrationSecrets {
    /// Adds a webhook secret as the newest, keeping at most `keep` (rotation overlap).
    pub fn rotate_webhook_secret(&mut self, secret: String, keep: usize) {
        self.webhook_secrets.retain(|s| s != &secret);
        self.webhook_secrets.insert(0, secret);
        self.webhook_secrets.truncate(keep.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let ring = Keyring::new(SecretKey::generate(1));
        let id = IntegrationId::new();
        let secrets = IntegrationSecrets {
            api_auth: Some(ApiAuth::Bearer {
                token: "tok-123".into(),
            }),
            webhook_secrets: vec!["whsec".into()],
            app_secret: None,
        };
        let sealed = ring.seal(id, &secrets).unwrap();
        assert!(!sealed.0.windows(7).any(|w| w == b"tok-123"));
        assert_eq!(ring.open(id, &sealed).unwrap(), secrets);
        // bound to the integration
        assert!(ring.open(IntegrationId::new(), &sealed).is_err());
        // tampering is detected
        let mut bad = sealed.clone();
        let last = bad.0.len() - 1;
        bad.0[last] ^= 1;
        assert!(ring.open(id, &bad).is_err());
        // a rotated keyring still opens old ciphertext
        let old = ring.clone();
        let rotated = Keyring::new(SecretKey::generate(2)).with_previous(old.current.clone());
        assert_eq!(rotated.open(id, &sealed).unwrap(), secrets);
        assert!(format!("{secrets:?}").contains("REDACTED"));
        assert!(!format!("{secrets:?}").contains("tok-123"));
    }

    #[test]
    fn key_check_records_open_only_under_their_key() {
        let ring = Keyring::new(SecretKey::generate(1));
        let record = ring.seal_key_check().unwrap();
        assert!(ring.check_key(&record).is_ok());
        // Another key (even with the same id) is refused.
        let other = Keyring::new(SecretKey::generate(1));
        let err = other.check_key(&record).unwrap_err().to_string();
        assert!(
            err.contains("not the one this store was created with"),
            "{err}"
        );
        // A rotated keyring that keeps the old key accepts it.
        let rotated = Keyring::new(SecretKey::generate(2)).with_previous(ring.current.clone());
        assert!(rotated.check_key(&record).is_ok());
        // Integration ciphertext is no key-check record, and a truncated record is refused.
        let sealed = ring
            .seal(IntegrationId::new(), &IntegrationSecrets::default())
            .unwrap();
        assert!(ring.check_key(&sealed.0).is_err());
        assert!(ring.check_key(&record[..10]).is_err());
    }
}
