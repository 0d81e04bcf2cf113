//! UI sessions: random ids with an expiry, kept in the store, revoked on sign-out, and bound
//! to the admin token they were created under.
//!
//! The cookie holds a fresh random id (32 bytes, hex) per sign-in; the store keeps only the
//! id's SHA-256 (and the token's), so a copy of the database hands out no cookie. Because
//! they live in the store, every server on the same database accepts a sign-in made on any
//! of them, and a sign-out on one ends it on all: no sticky sessions are needed. (The
//! failed-sign-in throttle is per process: see [`crate::throttle`].)

use std::sync::Arc;
use std::time::Duration;

use ordonis_core::{ConsoleSession, Store, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// How long a UI session lasts by default (12 h).
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The longest a session may last (a longer TTL is cut to this).
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// At most this many live sessions; past it the ones closest to expiring are dropped.
pub const MAX_SESSIONS: u64 = 10_000;

/// The UI sessions of a deployment, in its store.
pub struct Sessions {
    ttl: Duration,
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Sessions in `store`; each one created lasts `ttl` (at most [`MAX_SESSION_TTL`]).
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self {
            ttl: ttl.min(MAX_SESSION_TTL),
            store,
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session under the admin token whose SHA-256 is `token_digest`; returns the
    /// cookie value (64 hex characters). Expired sessions are pruned.
    pub async fn create(&self, token_digest: [u8; 32]) -> Result<String, StoreError> {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let now = OffsetDateTime::now_utc();
        let session = ConsoleSession {
            id_digest: key(&id),
            token_digest,
            expires_at: now + self.ttl,
        };
        self.store
            .put_console_session(&session, now, MAX_SESSIONS)
            .await?;
        Ok(id)
    }

    /// Whether `id` is a live session created under the token whose SHA-256 is
    /// `token_digest` (a session from before a token change is refused, and dropped).
    pub async fn check(&self, id: &str, token_digest: &[u8; 32]) -> Result<bool, StoreError> {
        let k = key(id);
        let Some(s) = self.store.console_session(&k).await? else {
            return Ok(false);
        };
        if s.expires_at <= OffsetDateTime::now_utc()
            || !bool::from(s.token_digest.ct_eq(token_digest))
        {
            self.store.delete_console_session(&k).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Ends a session (sign-out). Unknown ids are ignored.
    pub async fn revoke(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete_console_session(&key(id)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn random_expiring_revocable_bound_to_the_token_and_shared() {
        let store: Arc<dyn Store> = Arc::new(ordonis_store_memory::MemoryStore::new());
        let s = Sessions::new(store.clone(), Duration::from_secs(60));
        // A second server on the same store.
        let other = Sessions::new(store.clone(), Duration::from_secs(60));
        let (t1, t2) = ([1u8; 32], [2u8; 32]);
        let a = s.create(t1).await.unwrap();
        let b = s.create(t1).await.unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.check(&a, &t1).await.unwrap() && other.check(&b, &t1).await.unwrap());
        assert!(!s.check("00", &t1).await.unwrap());
        other.revoke(&a).await.unwrap();
        assert!(!s.check(&a, &t1).await.unwrap());
        assert!(s.check(&b, &t1).await.unwrap());
        // Another token: refused, and gone.
        assert!(!s.check(&b, &t2).await.unwrap());
        assert!(!s.check(&b, &t1).await.unwrap());
        let short = Sessions::new(store, Duration::ZERO);
        let d = short.create(t1).await.unwrap();
        assert!(!short.check(&d, &t1).await.unwrap());
    }
}
