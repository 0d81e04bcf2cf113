//! An integration's API budget as the provider's answers last showed it (Jira's points-based
//! quota and burst limits), and how much the repair loop slows down for it.
//!
//! Providers record it ([`crate::Provider::budget`]); the engine keeps the newest copy on the
//! integration's sync job, paces the repair loop by it ([`ApiBudget::repair_hold`]) and shows
//! it on the integration (`budget` in the API, the console's integration page).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Below this share of the quota left (percent), a near-limit repair loop stops until the
/// quota resets instead of only spacing its pages.
pub const REPAIR_STOP_PERCENT: u64 = 5;

/// What the provider last said about an integration's API budget.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiBudget {
    /// When the answer that said it arrived.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub seen_at: Option<OffsetDateTime>,
    /// The provider said the budget is nearly spent (Jira: `X-RateLimit-NearLimit` or
    /// `X-Beta-RateLimit-NearLimit: true`, under 20 % left).
    #[serde(default)]
    pub near_limit: bool,
    /// Points left in the current window (Jira: `Beta-RateLimit: …;r=<left>`).
    #[serde(default)]
    pub remaining: Option<u64>,
    /// Points per window (Jira: `Beta-RateLimit-Policy: …;q=<quota>`).
    #[serde(default)]
    pub limit: Option<u64>,
    /// When the window resets (Jira: `Beta-RateLimit: …;t=<seconds>` from the answer).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub resets_at: Option<OffsetDateTime>,
    /// A limit on the whole integration (a quota's 429): no call until then.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub paused_until: Option<OffsetDateTime>,
    /// The reason of the last limit met (`jira-quota-tenant-based`, `jira-burst-based`).
    #[serde(default)]
    pub reason: Option<String>,
    /// Kinds of call held back by a burst limit (Jira: one endpoint and method), and until
    /// when; other kinds go on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub held: BTreeMap<String, OffsetDateTime>,
}

impl ApiBudget {
    /// The share of the quota left, in percent, when both figures are known.
    pub fn percent_left(&self) -> Option<u64> {
        match (self.remaining, self.limit) {
            (Some(r), Some(l)) if l > 0 => Some(r.min(l).saturating_mul(100) / l),
            _ => None,
        }
    }

    /// Whether the near-limit signal still holds at `now`: the window it was seen in has
    /// not reset.
    pub fn near_limit_at(&self, now: OffsetDateTime) -> bool {
        self.near_limit && self.resets_at.is_none_or(|t| t > now)
    }

    /// Until when the repair loop (backfill, reconcile, sweeps) holds off at `now`, before
    /// it lists another page: the integration's pause; or, near the limit with under
    /// [`REPAIR_STOP_PERCENT`] left, the quota's reset. `None`: it may go on (spaced by
    /// [`ApiBudget::repair_gap`]). Webhook processing and pushes never wait for this: they
    /// keep the quota that is left.
    pub fn repair_hold(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if let Some(p) = self.paused_until.filter(|p| *p > now) {
            return Some(p);
        }
        if !self.near_limit_at(now) {
            return None;
        }
        let low = self.percent_left().is_some_and(|p| p < REPAIR_STOP_PERCENT)
            || self.remaining == Some(0);
        if low { self.resets_at } else { None }
    }

    /// How long the repair loop waits between two pages at `now`: `gap` while the budget is
    /// near its limit, scaled up as it shrinks (20 % left: `gap`; 10 %: twice; 5 %: four
    /// times; unknown: `gap`), never past the reset; zero otherwise.
    pub fn repair_gap(&self, now: OffsetDateTime, gap: Duration) -> Duration {
        if !self.near_limit_at(now) {
            return Duration::ZERO;
        }
        let wait = match self.percent_left() {
            Some(p) => gap.saturating_mul(20).checked_div(p.clamp(1, 20) as u32),
            None => Some(gap),
        }
        .unwrap_or(gap);
        match self.resets_at {
            Some(t) if t > now => wait.min((t - now).try_into().unwrap_or(wait)),
            _ => wait,
        }
    }

    /// The newer of two observations (by [`ApiBudget::seen_at`]).
    pub fn newest(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.seen_at > a.seen_at { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(remaining: u64, limit: u64, near: bool) -> ApiBudget {
        let now = OffsetDateTime::now_utc();
        ApiBudget {
            seen_at: Some(now),
            near_limit: near,
            remaining: Some(remaining),
            limit: Some(limit),
            resets_at: Some(now + Duration::from_secs(600)),
            ..ApiBudget::default()
        }
    }

    #[test]
    fn the_gap_grows_as_the_budget_shrinks_and_the_loop_stops_near_empty() {
        let now = OffsetDateTime::now_utc();
        let gap = Duration::from_secs(1);
        assert_eq!(budget(50, 100, false).repair_gap(now, gap), Duration::ZERO);
        assert_eq!(budget(20, 100, true).repair_gap(now, gap), gap);
        assert_eq!(budget(10, 100, true).repair_gap(now, gap), gap * 2);
        assert_eq!(budget(10, 100, true).repair_hold(now), None);
        let low = budget(4, 100, true);
        assert_eq!(low.repair_hold(now), low.resets_at);
        // Once the window reset, the signal is stale.
        let later = now + Duration::from_secs(601);
        assert_eq!(low.repair_hold(later), None);
        assert_eq!(low.repair_gap(later, gap), Duration::ZERO);
    }
}
