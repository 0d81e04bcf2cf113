//! Pushing a patch to Jira. [`edit`] sends title, description, priority and due date in one
//! edit and the assignee on its own; [`transition`] moves the status along a path planned
//! over the issue's [`workflow`]. Every write to one issue goes through [`WriteLimiter`].

mod edit;
mod goal;
mod transition;
pub(crate) mod workflow;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ordonis_core::{IntegrationId, ProviderContext};
use tokio::time::Instant;

pub(crate) use transition::Moved;
use workflow::WorkflowGraph;

use crate::error::JiraError;

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
#[derive(Default)]
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

/// What pushing needs beyond a client: the write limiter, the hop bound and the caches of
/// what Jira says about an issue's project and type (edit screens, priorities, workflows).
#[derive(Default)]
pub(crate) struct Pusher {
    pub(crate) writes: WriteLimiter,
    pub(crate) max_hops: usize,
    /// Edit-screen field ids per (integration, project id, issue type id).
    edit_meta: Mutex<HashMap<EditScreenKey, (Instant, BTreeSet<String>)>>,
    /// The site's priorities `(id, name)` per integration.
    priorities: Mutex<HashMap<IntegrationId, (Instant, SitePriorities)>>,
    /// Workflows per (integration, project id, issue type id); `None`: Jira would not show it.
    workflows: Mutex<HashMap<EditScreenKey, CachedWorkflow>>,
}

/// (integration, project id, issue type id): edit screens are per project and issue type.
type EditScreenKey = (IntegrationId, String, String);

/// When a workflow was read, and the workflow (`None`: Jira would not show it).
type CachedWorkflow = (Instant, Option<Arc<WorkflowGraph>>);

/// A site's priorities, `(id, name)`.
type SitePriorities = Vec<(String, String)>;

impl Pusher {
    pub(crate) fn new(write_spacing: Duration, max_hops: usize) -> Self {
        Self {
            writes: WriteLimiter::new(write_spacing),
            max_hops,
            ..Self::default()
        }
    }

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
