//! Pushing a patch to Jira. [`edit`] sends title, description, priority and due date in one
//! edit and the assignee on its own; [`transition`] moves the status along a path planned
//! over the issue's [`workflow`]. Every write to one issue goes through [`WriteLimiter`].

mod edit;
mod goal;
mod transition;
pub(crate) mod workflow;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ordonis_core::{IntegrationId, ProviderContext};

pub(crate) use transition::Moved;

use crate::error::JiraError;
use crate::provider::JiraProvider;

/// How long edit screens, priorities and workflows are cached.
pub(crate) const META_TTL: Duration = Duration::from_secs(600);

/// Caches are plain maps behind a mutex held for a lookup or an insert, never across an
/// await; a poisoned one is still a valid map.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spaces writes to the same (integration, issue) at least `interval` apart: Jira allows 20
/// writes per 2 s and 100 per 30 s on one issue, and answers a burst with 429s. A keyed
/// `governor` limiter (one cell per issue, burst 1), so a waiting write sleeps instead of
/// spending a request on a 429.
pub(crate) struct WriteLimiter {
    pub(crate) interval: Duration,
    /// `None` when the interval is zero: writes are not spaced.
    limiter: Option<DefaultKeyedRateLimiter<(IntegrationId, String)>>,
}

impl WriteLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            limiter: Quota::with_period(interval).map(RateLimiter::keyed),
        }
    }

    /// Waits for the issue's next write slot.
    pub(crate) async fn wait(&self, integration: IntegrationId, issue: &str) {
        let Some(limiter) = &self.limiter else {
            return;
        };
        // Issues written long ago hold no state worth keeping.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter
            .until_key_ready(&(integration, issue.to_owned()))
            .await;
    }
}

impl JiraProvider {
    /// Runs one write to `issue` in its slot.
    pub(crate) async fn write<F, Fut>(
        &self,
        ctx: &ProviderContext,
        issue: &str,
        f: F,
    ) -> Result<(), JiraError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), JiraError>>,
    {
        self.writes.wait(ctx.integration_id, issue).await;
        f().await
    }
}
