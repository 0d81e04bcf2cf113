//! The rules every store applies the same way, written once so that the SQL stores and
//! `MemoryStore` cannot drift apart: what a unit of work may contain, what a failure does to
//! a row, which rows a replay accepts, and the errors each refusal gives.

use time::OffsetDateTime;

use super::{JobId, JobState, Lease, NewInboxEvent, Retry, UnitOfWork};
use crate::error::{InvalidInput, StoreError};

/// Checks that everything in a unit of work belongs to its workspace.
pub fn validate_unit(uow: &UnitOfWork) -> Result<(), StoreError> {
    if let Some(tw) = &uow.task
        && tw.task.workspace_id != uow.workspace_id
    {
        return Err(InvalidInput::new("task", "belongs to another workspace").into());
    }
    if uow
        .comments
        .iter()
        .any(|c| c.comment.workspace_id != uow.workspace_id)
    {
        return Err(InvalidInput::new("comment", "belongs to another workspace").into());
    }
    if uow
        .sessions
        .iter()
        .any(|w| w.session.workspace_id != uow.workspace_id)
    {
        return Err(InvalidInput::new("session", "belongs to another workspace").into());
    }
    if uow
        .ledger
        .iter()
        .any(|d| d.workspace_id != uow.workspace_id)
    {
        return Err(InvalidInput::new("ledger", "entry for another workspace").into());
    }
    Ok(())
}

/// The refusal of a comment write whose revision (or absence) no longer holds.
pub fn stale_comment(w: &crate::task_comment::CommentWrite) -> StoreError {
    StoreError::Conflict(match w.expected_revision {
        None => format!("comment {} exists already", w.comment.id),
        Some(r) => format!("comment {} is no longer at revision {r}", w.comment.id),
    })
}

/// The refusal of a session write whose revision (or absence) no longer holds.
pub fn stale_session(w: &crate::session::SessionWrite) -> StoreError {
    StoreError::Conflict(match w.expected_revision {
        None => format!("session {} exists already", w.session.id),
        Some(r) => format!("session {} is no longer at revision {r}", w.session.id),
    })
}

/// Whether a session counts as idle for the stale sweep.
pub fn session_idle(s: &crate::session::AgentSession, before: OffsetDateTime) -> bool {
    matches!(
        s.state,
        crate::session::SessionState::Active | crate::session::SessionState::AwaitingInput
    ) && s.last_activity_at < before
}

/// Checks that a batch of units names one workspace (a batch shares one ledger head).
pub fn validate_batch(units: &[UnitOfWork]) -> Result<(), StoreError> {
    match units.first() {
        Some(first) if units.iter().any(|u| u.workspace_id != first.workspace_id) => {
            Err(InvalidInput::new("batch", "units of more than one workspace").into())
        }
        _ => Ok(()),
    }
}

/// Whether a commit error is the store's rather than the unit's: the batch stops on it and
/// writes nothing.
pub fn batch_wide(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Unavailable { .. } | StoreError::Backend { .. }
    )
}

/// Checks deliveries before they are appended: none may start `Processing`.
pub fn validate_new_events(events: &[NewInboxEvent]) -> Result<(), StoreError> {
    if events.iter().any(|e| e.state == JobState::Processing) {
        return Err(InvalidInput::new("state", "a new event cannot be processing").into());
    }
    Ok(())
}

/// What a failure does to a row: its next state, the new `next_attempt_at` (`None` keeps it)
/// and whether the attempt is given back (a deferral does not count as an attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureEffect {
    /// The row's new state.
    pub state: JobState,
    /// The row's new `next_attempt_at`, if it changes.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// True when the claim's attempt is given back.
    pub refund_attempt: bool,
}

impl FailureEffect {
    /// The attempts decrement, 0 or 1.
    pub fn attempts_refund(&self) -> u32 {
        u32::from(self.refund_attempt)
    }
}

/// The effect of a [`Retry`] decision; a give-up into anything but `Failed` or `Dead` is
/// refused as bad input.
pub fn failure_effect(retry: Retry) -> Result<FailureEffect, StoreError> {
    Ok(match retry {
        Retry::At(t) => FailureEffect {
            state: JobState::Pending,
            next_attempt_at: Some(t),
            refund_attempt: false,
        },
        Retry::Deferred(t) => FailureEffect {
            state: JobState::Pending,
            next_attempt_at: Some(t),
            refund_attempt: true,
        },
        Retry::Never(s @ (JobState::Failed | JobState::Dead)) => FailureEffect {
            state: s,
            next_attempt_at: None,
            refund_attempt: false,
        },
        Retry::Never(other) => {
            return Err(InvalidInput::new(
                "retry",
                format!("a row cannot give up into state {}", other.as_str()),
            )
            .into());
        }
    })
}

/// True for the states a replay accepts.
pub fn replayable(state: JobState) -> bool {
    matches!(state, JobState::Failed | JobState::Dead)
}

/// The refusal of a replay: `NotFound` when the workspace has no such row, `Invalid` when
/// the row is in a state that cannot be replayed.
pub fn replay_refused(id: JobId, state: Option<JobState>) -> StoreError {
    match state {
        None => StoreError::NotFound(id.to_string()),
        Some(s) => InvalidInput::new(
            id.queue_noun(),
            format!(
                "only failed or dead {}s can be replayed (this one is {})",
                id.queue_noun(),
                s.as_str()
            ),
        )
        .into(),
    }
}

/// The error of a completion or failure whose lease is stale, or whose row belongs to
/// another workspace.
pub fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::LeaseLost(format!(
        "{} is no longer leased to {} (attempt {})",
        lease.job(),
        lease.owner,
        lease.attempt
    ))
}

/// How many due rows a claim of `limit` considers before keeping one per object: enough that
/// a burst on one object does not starve the others, bounded so a claim never scans the
/// whole backlog.
pub fn claim_window(limit: usize) -> usize {
    limit.saturating_mul(4).max(16)
}

/// Now, truncated to the microsecond: what PostgreSQL and the VERA encoding keep, so that a
/// ledger entry's `logged_at` reads back exactly as it was sealed.
pub fn now_micros() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

impl JobId {
    /// "event" or "push".
    pub(crate) fn queue_noun(self) -> &'static str {
        match self {
            JobId::Event(_) => "event",
            JobId::Push(_) => "push",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_effects() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let at = failure_effect(Retry::At(t)).ok();
        assert_eq!(
            at.map(|e| (e.state, e.next_attempt_at, e.attempts_refund())),
            Some((JobState::Pending, Some(t), 0))
        );
        let d = failure_effect(Retry::Deferred(t)).ok();
        assert_eq!(d.map(|e| e.attempts_refund()), Some(1));
        let dead = failure_effect(Retry::Never(JobState::Dead)).ok();
        assert_eq!(
            dead.map(|e| (e.state, e.next_attempt_at)),
            Some((JobState::Dead, None))
        );
        assert!(failure_effect(Retry::Never(JobState::Done)).is_err());
        assert!(failure_effect(Retry::Never(JobState::Pending)).is_err());
    }

    #[test]
    fn replay_refusals_name_the_row() {
        let id = JobId::Event(crate::EventId::new());
        assert!(matches!(replay_refused(id, None), StoreError::NotFound(_)));
        let e = replay_refused(id, Some(JobState::Done)).to_string();
        assert!(e.contains("only failed or dead events"), "{e}");
    }
}
