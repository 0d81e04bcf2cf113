//! Throttling of failed UI sign-ins, and of wrong bearer tokens on `/api` and `/metrics`,
//! per client address (a `governor` keyed rate limiter each).
//!
//! Each client may fail [`FAILURE_BURST`] sign-ins ([`BEARER_FAILURE_BURST`] bearer tokens)
//! in a row, then once per [`FAILURE_PERIOD`].
//! A client over the limit is answered 429 (with `Retry-After`) before its token is even
//! checked. Successful sign-ins are not counted. The client is the TCP peer: behind a
//! reverse proxy every client is the proxy (forwarding headers are not trusted, since any
//! client could send them), so the limit then applies to all of them together. IPv6
//! clients are keyed by their /64, which one host usually holds whole.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failed sign-ins a client may make in a row.
pub const FAILURE_BURST: u32 = 5;

/// Wrong bearer tokens a client may present in a row (on `/api` and `/metrics` together; a
/// request without a token is not counted).
pub const BEARER_FAILURE_BURST: u32 = 10;

/// Past the burst, one failed sign-in per this period.
pub const FAILURE_PERIOD: Duration = Duration::from_secs(10);

/// Prune forgotten clients after this many failures (anyone's).
const PRUNE_EVERY: u64 = 1024;

/// The client a request came from, as the limiter keys it: the `ConnectInfo<SocketAddr>`
/// extension, which [`crate::http::serve`] adds to each request (as does axum's
/// `into_make_service_with_connect_info`). Never fails: without it (a host serving the
/// router some other way) every request is the same client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey(pub IpAddr);

impl ClientKey {
    /// The key for a peer address (IPv6 cut to its /64; IPv4-mapped IPv6 as IPv4).
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Self(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

impl ClientKey {
    /// The client of a request, from its extensions (see the type's documentation).
    pub fn of_request(extensions: &axum::http::Extensions) -> Self {
        let ip = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        Self::of(ip)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of_request(&parts.extensions))
    }
}

/// Failed sign-ins per client.
pub struct SignInThrottle {
    limiter: DefaultKeyedRateLimiter<ClientKey>,
    clock: DefaultClock,
    /// Clients over the limit, until when (so they are refused without a token check).
    blocked: Mutex<HashMap<ClientKey, Instant>>,
    failures: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SignInThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInThrottle").finish_non_exhaustive()
    }
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self::new(FAILURE_BURST, FAILURE_PERIOD)
    }
}

impl SignInThrottle {
    /// `burst` failures in a row (at least 1), then one per `period` (at least 1 ms).
    pub fn new(burst: u32, period: Duration) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            blocked: Mutex::new(HashMap::new()),
            failures: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn blocked_map(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, Instant>> {
        self.blocked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Some(wait)` when the client is over the limit: refuse without checking the token.
    pub fn blocked(&self, client: ClientKey) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.blocked_map();
        match map.get(&client) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                map.remove(&client);
                None
            }
            None => None,
        }
    }

    /// Records a failed sign-in; `Some(wait)` when it was one too many (answer 429: the
    /// client is refused for `wait`).
    pub fn failed(&self, client: ClientKey) -> Option<Duration> {
        let n = self
            .failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.limiter.retain_recent();
            let now = Instant::now();
            self.blocked_map().retain(|_, until| *until > now);
        }
        match self.limiter.check_key(&client) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until
                    .wait_time_from(self.clock.now())
                    .max(Duration::from_millis(1));
                self.blocked_map().insert(client, Instant::now() + wait);
                Some(wait)
            }
        }
    }
}

/// `Retry-After` seconds for a wait (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_blocked_per_client() {
        let t = SignInThrottle::new(3, Duration::from_secs(60));
        let a = ClientKey::of(IpAddr::from([10, 0, 0, 1]));
        let b = ClientKey::of(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert!(t.blocked(a).is_none());
            assert!(t.failed(a).is_none());
        }
        let wait = t.failed(a).unwrap();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert!(t.blocked(a).is_some());
        assert!(t.blocked(b).is_none() && t.failed(b).is_none());
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(10)), 10);
        // One /64 is one client.
        let v6 = |last| {
            ClientKey::of(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0xdb8, 1, 2, 3, 4, 5, last,
            )))
        };
        assert_eq!(v6(1), v6(2));
    }
}
