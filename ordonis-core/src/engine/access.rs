//! Objects an integration's credentials may not read: the integration-level view of
//! [`ProviderError::Forbidden`].
//!
//! A 403 on a fetch is not a deletion. The task is kept, and the event fails with the
//! reason. This view lists each object whose newest event failed that way, so an operator
//! sees "the token can no longer read these 3 tasks" on the integration instead of hunting
//! through the inbox. An object leaves the list as soon as a later event about it is
//! processed: a fetch worked again, and the task synced.
//!
//! It is derived from the inbox, not stored: the failed rows, selected by their stored
//! [`FailureKind::AccessDenied`], are the record, so the list
//! cannot drift from them, and no second write is added to the hot path.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::Engine;
use crate::error::Error;
use crate::ids::{EventId, IntegrationId};
use crate::store::{FailureKind, InboxEvent, Job, JobFilter, JobState, Queue};

/// One object an integration may not read, as its newest event found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessProblem {
    /// The provider's id of the object.
    pub external_id: String,
    /// The provider's answer, as the newest failed event recorded it.
    pub error: String,
    /// The newest failed event (replay it once access is restored).
    pub event_id: EventId,
    /// When the newest failed event arrived: the list's order (newest first, then by
    /// `event_id`), which its pages follow.
    #[serde(with = "time::serde::rfc3339")]
    pub latest: OffsetDateTime,
    /// When the oldest of its failed events arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// How many of its events failed this way.
    pub events: usize,
}

/// How many rows of each kind are read: enough for an operator's view; an object whose only
/// failures are older than this many failed rows is not listed.
const ROWS_READ: usize = 1_000;

impl Engine {
    /// The objects whose newest event failed because the integration's credentials may not
    /// read them (a 403), newest first.
    ///
    /// An object is no longer listed once a later event about it was processed.
    pub async fn access_problems(
        &self,
        integration: IntegrationId,
    ) -> Result<Vec<AccessProblem>, Error> {
        let rows = |state| JobFilter {
            queue: Queue::Inbox,
            workspace_id: None,
            integration_id: Some(integration),
            state: Some(state),
            limit: ROWS_READ,
            after: None,
        };
        let store = &self.inner.store;
        let failed: Vec<InboxEvent> = store
            .jobs(&rows(JobState::Failed))
            .await?
            .into_iter()
            .filter_map(Job::into_event)
            .filter(|e| e.error_kind == Some(FailureKind::AccessDenied))
            .collect();
        if failed.is_empty() {
            return Ok(Vec::new());
        }
        // The newest processed event per object: a later success clears the problem.
        let mut done: HashMap<String, OffsetDateTime> = HashMap::new();
        for e in store
            .jobs(&rows(JobState::Done))
            .await?
            .into_iter()
            .filter_map(Job::into_event)
        {
            if let Some(k) = e.object_key {
                let t = done.entry(k).or_insert(e.received_at);
                *t = (*t).max(e.received_at);
            }
        }
        let mut out: Vec<AccessProblem> = Vec::new();
        for e in failed {
            let Some(key) = e.object_key.clone() else {
                continue;
            };
            if done.get(&key).is_some_and(|t| *t >= e.received_at) {
                continue;
            }
            match out.iter_mut().find(|p| p.external_id == key) {
                // Rows come newest first: the first one seen is the newest.
                Some(p) => {
                    p.events += 1;
                    p.since = p.since.min(e.received_at);
                }
                None => out.push(AccessProblem {
                    external_id: key,
                    error: e.last_error.unwrap_or_default(),
                    event_id: e.id,
                    latest: e.received_at,
                    since: e.received_at,
                    events: 1,
                }),
            }
        }
        Ok(out)
    }
}
