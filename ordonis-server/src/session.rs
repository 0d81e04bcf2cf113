//! UI sessions: random ids kept in the server process with an expiry, revoked on sign-out,
//! and bound to the admin token they were created under.
//!
//! The cookie holds a fresh random id (32 bytes, hex) per sign-in; the server keeps only the
//! id's SHA-256, so a memory dump does not hand out cookies. Sessions live in this process:
//! with several servers behind a load balancer the UI needs sticky sessions (the API's bearer
//! token works anywhere).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a UI session lasts by default (12 h).
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The longest a session may last (a longer TTL is cut to this).
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// At most this many live sessions; past it the one closest to expiring is dropped.
pub const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Copy)]
struct Entry {
    expires: Instant,
    /// SHA-256 of the admin token the session was created under.
    token_digest: [u8; 32],
}

/// The live UI sessions of one server.
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<[u8; 32], Entry>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("ttl", &self.ttl)
            .field("live", &self.len())
            .finish()
    }
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// No sessions yet; each one created lasts `ttl` (at most [`MAX_SESSION_TTL`]).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl: ttl.min(MAX_SESSION_TTL),
            live: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        // A panic while holding the lock leaves the map consistent (single inserts/removes).
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Live (unexpired) sessions.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.map().values().filter(|e| e.expires > now).count()
    }

    /// Whether there is no live session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a session under the admin token whose SHA-256 is `token_digest`; returns the
    /// cookie value (64 hex characters). Expired sessions are pruned.
    pub fn create(&self, token_digest: [u8; 32]) -> String {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut map = self.map();
        map.retain(|_, e| e.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, e)| e.expires).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            key(&id),
            Entry {
                expires: now + self.ttl,
                token_digest,
            },
        );
        id
    }

    /// Whether `id` is a live session created under the token whose SHA-256 is
    /// `token_digest` (a session from before a token change is refused, and dropped).
    pub fn check(&self, id: &str, token_digest: &[u8; 32]) -> bool {
        let k = key(id);
        let mut map = self.map();
        let Some(e) = map.get(&k).copied() else {
            return false;
        };
        if e.expires <= Instant::now() || !bool::from(e.token_digest.ct_eq(token_digest)) {
            map.remove(&k);
            return false;
        }
        true
    }

    /// Ends a session (sign-out). Unknown ids are ignored.
    pub fn revoke(&self, id: &str) {
        self.map().remove(&key(id));
    }

    /// Ends every session (e.g. when the admin token changes).
    pub fn revoke_all(&self) {
        self.map().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_expiring_revocable_and_bound_to_the_token() {
        let s = Sessions::new(Duration::from_secs(60));
        let (t1, t2) = ([1u8; 32], [2u8; 32]);
        let a = s.create(t1);
        let b = s.create(t1);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(s.check(&a, &t1) && s.check(&b, &t1));
        assert!(!s.check("00", &t1));
        s.revoke(&a);
        assert!(!s.check(&a, &t1));
        assert!(s.check(&b, &t1));
        // Another token: refused, and gone.
        assert!(!s.check(&b, &t2));
        assert!(!s.check(&b, &t1));
        let c = s.create(t1);
        s.revoke_all();
        assert!(!s.check(&c, &t1));
        let short = Sessions::new(Duration::ZERO);
        let d = short.create(t1);
        assert!(!short.check(&d, &t1));
        assert!(short.is_empty());
    }
}
