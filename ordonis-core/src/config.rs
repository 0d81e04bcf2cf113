//! Configuration: an integration's non-secret settings and the engine's knobs.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};

use crate::model::Field;
use crate::policy::{FieldPolicy, FieldRule};
use crate::task_comment::CommentSettings;

/// An integration's non-secret configuration, stored as JSON beside its sealed secrets.
///
/// The previous release kept the handshake flag in a `provider_state` object
/// (`{"provider_state": {"expecting_handshake": true}}`); such a configuration loads with the
/// flag back in [`expecting_handshake`](Self::expecting_handshake).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredIntegrationConfig")]
pub struct IntegrationConfig {
    /// API base URL.
    pub base_url: String,
    /// Per-field overrides of the default [`FieldPolicy`].
    #[serde(default)]
    pub field_policy: BTreeMap<Field, FieldRule>,
    /// Provider-specific options, set by the host.
    #[serde(default)]
    pub options: serde_json::Value,
    /// The integration was armed for a webhook handshake (a provider with
    /// [`Capabilities::webhook_handshake`](crate::Capabilities::webhook_handshake)): set when
    /// it is created without a webhook secret, by `Engine::expect_handshake` and while the
    /// engine registers webhooks; cleared once a handshake's secret is adopted. A handshake
    /// is accepted only while [`handshake_until`](Self::handshake_until) is in the future.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expecting_handshake: bool,
    /// Until when an armed handshake is accepted (armed at + the engine's
    /// [`handshake_window`](EngineConfig::handshake_window)). `None` (an integration armed by
    /// a release without windows included) accepts none: re-arm it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub handshake_until: Option<time::OffsetDateTime>,
    /// Which objects backfill imports and reconciliation watches, in the provider's terms
    /// (Jira `{"jql": "project = HO"}`, Asana `{"projects": ["<gid>"]}`); `null` when the
    /// integration only reacts to webhooks. Checked by `Provider::check_config`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub scope: serde_json::Value,
    /// The repair loop's settings.
    #[serde(default, skip_serializing_if = "SyncSettings::is_default")]
    pub sync: SyncSettings,
    /// How comments sync (default: both ways).
    #[serde(default, skip_serializing_if = "CommentSettings::is_default")]
    pub comments: CommentSettings,
    /// How agent sessions are shown in the provider.
    #[serde(default, skip_serializing_if = "SessionSettings::is_default")]
    pub sessions: SessionSettings,
    /// Where a task created from CollabHub goes when the call does not say.
    #[serde(default, skip_serializing_if = "CreateDefaults::is_default")]
    pub create: CreateDefaults,
    /// Until when a create through this integration may still have an object whose first
    /// webhook has not been processed (set by each create before its call, for
    /// [`CREATING_WINDOW`]): while it lasts, an unmapped object's webhook is read for our
    /// marker before it is imported. Outside it, no webhook pays for that read.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub creating_until: Option<time::OffsetDateTime>,
    /// Webhooks Ordonis registered that are to be deleted (their project left the scope, or
    /// the integration was disabled) and whose deletion has not succeeded yet: the repair
    /// loop retries them (a reconcile run; for a disabled integration, the workers' sweep).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_webhooks: Vec<String>,
}

/// How long after a create starts its object's webhooks are read for the create's marker
/// ([`IntegrationConfig::creating_until`]): longer than a provider retries a webhook.
pub const CREATING_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Where a task created from CollabHub goes when the call does not say
/// ([`IntegrationConfig::create`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDefaults {
    /// The project: a Jira project key, an Asana project gid (Asana's default: the scope's
    /// first project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Jira issue type's name (the adapter's default: `Task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
}

impl CreateDefaults {
    fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// How an integration shows agent sessions ([`IntegrationConfig::sessions`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// The host's page of a session, with `{session}` and `{task}` in place of their ids
    /// (`https://collabhub.example.com/sessions/{session}`): the URL of the session's link
    /// in the provider. `None`: the session gets no link (its artifacts still do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_template: Option<String>,
    /// The activity kinds posted to the provider as comments (default `response`,
    /// `elicitation`, `error`); the others stay in CollabHub and the ledger.
    #[serde(default = "posted_by_default")]
    pub post_kinds: Vec<crate::session::ActivityKind>,
}

fn posted_by_default() -> Vec<crate::session::ActivityKind> {
    crate::session::ActivityKind::POSTED_BY_DEFAULT.to_vec()
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            url_template: None,
            post_kinds: posted_by_default(),
        }
    }
}

impl SessionSettings {
    /// True for the defaults (then not stored).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How an integration repairs itself: backfill on creation, reconciliation on a timer,
/// webhook registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSettings {
    /// Import everything in scope when the integration is created (default true).
    #[serde(default = "yes")]
    pub backfill: bool,
    /// Seconds between reconcile runs (at least 1; default 300).
    #[serde(default = "SyncSettings::default_reconcile_every_s")]
    pub reconcile_every_s: u64,
    /// Let the server create (and re-create) the provider's webhooks itself (default false).
    #[serde(default)]
    pub register_webhook: bool,
    /// Seconds between id sweeps (default 3600; `0`: only when the scope changes). A sweep
    /// lists the scope's ids and fetches each mapped object missing from them: a deletion
    /// whose webhook was lost, an object moved out of the scope.
    #[serde(default = "SyncSettings::default_sweep_every_s")]
    pub sweep_every_s: u64,
}

fn yes() -> bool {
    true
}

impl SyncSettings {
    /// The default reconcile interval, in seconds.
    pub const DEFAULT_RECONCILE_EVERY_S: u64 = 300;

    fn default_reconcile_every_s() -> u64 {
        Self::DEFAULT_RECONCILE_EVERY_S
    }

    /// The default id-sweep interval, in seconds.
    pub const DEFAULT_SWEEP_EVERY_S: u64 = 3600;

    fn default_sweep_every_s() -> u64 {
        Self::DEFAULT_SWEEP_EVERY_S
    }

    /// True for the defaults (then not stored).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The reconcile interval.
    pub fn reconcile_every(&self) -> Duration {
        Duration::from_secs(self.reconcile_every_s.max(1))
    }
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            backfill: true,
            reconcile_every_s: Self::DEFAULT_RECONCILE_EVERY_S,
            register_webhook: false,
            sweep_every_s: Self::DEFAULT_SWEEP_EVERY_S,
        }
    }
}

/// What a stored [`IntegrationConfig`] may hold, including fields of older versions.
#[derive(Deserialize)]
struct StoredIntegrationConfig {
    base_url: String,
    #[serde(default)]
    field_policy: BTreeMap<Field, FieldRule>,
    #[serde(default)]
    options: serde_json::Value,
    #[serde(default)]
    expecting_handshake: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    handshake_until: Option<time::OffsetDateTime>,
    /// The previous release's adapter-owned state, whose only key was the handshake flag.
    #[serde(default)]
    provider_state: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    scope: serde_json::Value,
    #[serde(default)]
    sync: SyncSettings,
    #[serde(default)]
    comments: CommentSettings,
    #[serde(default)]
    sessions: SessionSettings,
    #[serde(default)]
    create: CreateDefaults,
    #[serde(default, with = "time::serde::rfc3339::option")]
    creating_until: Option<time::OffsetDateTime>,
    #[serde(default)]
    retired_webhooks: Vec<String>,
}

impl From<StoredIntegrationConfig> for IntegrationConfig {
    fn from(stored: StoredIntegrationConfig) -> Self {
        // Where both are present the previous release's provider state is the newer word.
        let expecting_handshake = match stored.provider_state.get("expecting_handshake") {
            Some(flag) => flag.as_bool() == Some(true),
            None => stored.expecting_handshake,
        };
        Self {
            base_url: stored.base_url,
            field_policy: stored.field_policy,
            options: stored.options,
            expecting_handshake,
            handshake_until: stored.handshake_until,
            scope: stored.scope,
            sync: stored.sync,
            comments: stored.comments,
            sessions: stored.sessions,
            create: stored.create,
            creating_until: stored.creating_until,
            retired_webhooks: stored.retired_webhooks,
        }
    }
}

impl IntegrationConfig {
    /// Whether a handshake arriving at `now` is accepted: armed, and within its window.
    pub fn handshake_open(&self, now: time::OffsetDateTime) -> bool {
        self.expecting_handshake && self.handshake_until.is_some_and(|until| now < until)
    }

    /// Arms a handshake for `window` from `now`.
    pub fn arm_handshake(&mut self, now: time::OffsetDateTime, window: Duration) {
        self.expecting_handshake = true;
        self.handshake_until = Some(now + window);
    }

    /// Disarms the handshake.
    pub fn disarm_handshake(&mut self) {
        self.expecting_handshake = false;
        self.handshake_until = None;
    }

    /// A configuration with the default policy.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            field_policy: BTreeMap::new(),
            options: serde_json::Value::Null,
            expecting_handshake: false,
            handshake_until: None,
            scope: serde_json::Value::Null,
            sync: SyncSettings::default(),
            comments: CommentSettings::default(),
            sessions: SessionSettings::default(),
            create: CreateDefaults::default(),
            creating_until: None,
            retired_webhooks: Vec::new(),
        }
    }

    /// The effective field policy.
    pub fn policy(&self) -> FieldPolicy {
        FieldPolicy::default().merged(&self.field_policy)
    }
}

/// Retry backoff for failed rows: exponential with jitter, capped. The default (10 s doubling
/// up to 1 h between attempts) with [`EngineConfig`]'s default attempts keeps retrying a row
/// for at least [`DEFAULT_RETRY_WINDOW`] (24 h): real provider outages last hours, and a row
/// that goes dead needs an operator's replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

/// How long the default schedule keeps retrying a failing row before it goes dead.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(10),
            max: Duration::from_secs(60 * 60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, after `attempt` failures (1-based): the base
    /// delay (`min` doubled per failure, capped at `max`) plus up to as much again of jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempt.saturating_sub(1) as usize)
            .unwrap_or(self.max)
    }

    /// The delay before attempt `attempt + 1` without jitter (the shortest it can be).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        self.min
            .checked_mul(1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The shortest time from the first attempt to the last of `attempts` (jitter only adds).
    pub fn span(&self, attempts: u32) -> Duration {
        (1..attempts).map(|a| self.base_delay(a)).sum()
    }

    /// The fewest attempts whose schedule spans at least `window` (at least 1).
    pub fn attempts_for(&self, window: Duration) -> u32 {
        let mut attempts = 1;
        let mut span = Duration::ZERO;
        while span < window && attempts < u32::MAX {
            span += self.base_delay(attempts).max(Duration::from_millis(1));
            attempts += 1;
        }
        attempts
    }
}

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Attempts before a row is dead-lettered (default: as many as [`Backoff::default`] needs
    /// to span [`DEFAULT_RETRY_WINDOW`]).
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub backoff: Backoff,
    /// Largest accepted webhook body.
    pub max_body_bytes: usize,
    /// Webhook secrets kept valid at once during a rotation.
    pub webhook_secret_overlap: usize,
    /// How often a unit of work is recomputed after a concurrent-modification conflict.
    pub conflict_retries: usize,
    /// Where providers reach this host's webhook route, with `{provider}` and `{id}` in
    /// place of the integration's provider and id
    /// (`https://sync.example.com/integrations/{provider}/{id}/webhook`): the target of the
    /// webhooks the engine registers (`register_webhook: true`). `None`: it registers none.
    pub webhook_url: Option<String>,
    /// Objects a backfill or reconcile step asks for per listing page (default 100, the
    /// most Jira and Asana return).
    pub list_page_size: usize,
    /// Ids the id sweep asks for per page (default 1000; Jira returns up to 5000 ids a
    /// page, Asana 100).
    pub sweep_page_size: usize,
    /// How long an armed webhook handshake is accepted (default
    /// [`DEFAULT_HANDSHAKE_WINDOW`]): from `Engine::expect_handshake`, the creation of an
    /// integration without a webhook secret, or each webhook registration round.
    pub handshake_window: Duration,
    /// Where a person reading a comment Ordonis posted finds its ledger entry's receipt,
    /// with `{workspace}` and `{index}` in place of the workspace (percent-encoded) and the
    /// entry's index (`https://sync.example.com/api/ledger/{workspace}/proof/{index}`).
    /// `None`: the attribution line names the entry's index only.
    pub receipt_url: Option<String>,
    /// How long an `active` or `awaiting_input` agent session may go without an activity
    /// before a worker marks it `stale` (default one hour).
    pub session_stale_after: Duration,
    /// Accept `http` artifact URLs (default: `https` only), as the server's
    /// `--allow-any-provider-url` does for tests.
    pub allow_http_links: bool,
    /// How long the repair loop waits between listing pages while the provider says the
    /// integration's API budget is near its limit (default [`DEFAULT_NEAR_LIMIT_GAP`]; longer
    /// as the budget shrinks, see [`crate::ApiBudget::repair_gap`]): webhooks and pushes
    /// keep the quota that is left.
    pub near_limit_gap: Duration,
}

/// The default [`EngineConfig::near_limit_gap`]: 10 seconds.
pub const DEFAULT_NEAR_LIMIT_GAP: Duration = Duration::from_secs(10);

/// The default [`EngineConfig::handshake_window`]: 5 minutes.
pub const DEFAULT_HANDSHAKE_WINDOW: Duration = Duration::from_secs(300);

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: Backoff::default().attempts_for(DEFAULT_RETRY_WINDOW),
            backoff: Backoff::default(),
            max_body_bytes: 1024 * 1024,
            webhook_secret_overlap: 2,
            conflict_retries: 32,
            webhook_url: None,
            list_page_size: 100,
            sweep_page_size: 1000,
            handshake_window: DEFAULT_HANDSHAKE_WINDOW,
            receipt_url: None,
            session_stale_after: Duration::from_secs(3600),
            allow_http_links: false,
            near_limit_gap: DEFAULT_NEAR_LIMIT_GAP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_retries_for_a_day() {
        let c = EngineConfig::default();
        let span = c.backoff.span(c.max_attempts);
        assert!(span >= DEFAULT_RETRY_WINDOW, "{span:?}");
        // ... and not much longer: the last gap is at most the cap.
        assert!(span < DEFAULT_RETRY_WINDOW + c.backoff.max, "{span:?}");
        // Capped exponential: 10 s, 20 s, 40 s … then 1 h.
        assert_eq!(c.backoff.base_delay(1), Duration::from_secs(10));
        assert_eq!(c.backoff.base_delay(2), Duration::from_secs(20));
        assert_eq!(c.backoff.base_delay(30), Duration::from_secs(3600));
        assert_eq!(c.backoff.base_delay(u32::MAX), Duration::from_secs(3600));
        // Jitter only lengthens a delay, by less than the delay itself.
        for a in [1, 5, 12, 30] {
            let d = c.backoff.delay(a);
            let base = c.backoff.base_delay(a);
            assert!(d >= base && d <= base * 2, "{a}: {d:?} vs {base:?}");
        }
        let short = Backoff {
            min: Duration::from_millis(1),
            max: Duration::from_millis(20),
        };
        assert_eq!(short.attempts_for(Duration::ZERO), 1);
        assert!(short.span(short.attempts_for(Duration::from_secs(1))) >= Duration::from_secs(1));
    }

    #[test]
    fn configs_of_every_release_load_with_their_handshake_flag() -> Result<(), serde_json::Error> {
        // As the first releases stored an Asana integration creating its webhook, and as
        // this one does: a top-level flag.
        let old = serde_json::json!({
            "base_url": "https://app.asana.com/api/1.0",
            "field_policy": {"title": {"owner": "collabhub", "direction": "both"}},
            "options": {"workspace": "1"},
            "expecting_handshake": true,
        });
        let cfg: IntegrationConfig = serde_json::from_value(old.clone())?;
        assert_eq!(cfg.base_url, "https://app.asana.com/api/1.0");
        assert_eq!(cfg.options, serde_json::json!({"workspace": "1"}));
        assert_eq!(cfg.field_policy.len(), 1);
        assert!(cfg.expecting_handshake);
        assert_eq!(serde_json::to_value(&cfg)?, old, "written back as it was");

        // As the previous release stored it: in the adapter's provider state.
        let previous = serde_json::json!({
            "base_url": "x",
            "provider_state": {"expecting_handshake": true},
        });
        let cfg: IntegrationConfig = serde_json::from_value(previous)?;
        assert!(cfg.expecting_handshake);
        let new = serde_json::to_value(&cfg)?;
        assert_eq!(new.get("provider_state"), None);
        assert_eq!(new["expecting_handshake"], serde_json::json!(true));
        assert_eq!(serde_json::from_value::<IntegrationConfig>(new)?, cfg);

        // `false` is not written at all.
        let old = serde_json::json!({"base_url": "x", "expecting_handshake": false});
        let cfg: IntegrationConfig = serde_json::from_value(old)?;
        assert_eq!(cfg, IntegrationConfig::new("x"));
        assert_eq!(
            serde_json::to_value(&cfg)?,
            serde_json::json!({"base_url": "x", "field_policy": {}, "options": null})
        );
        Ok(())
    }

    #[test]
    fn the_previous_releases_provider_state_wins_over_the_first_releases_flag()
    -> Result<(), serde_json::Error> {
        let both = serde_json::json!({
            "base_url": "x",
            "provider_state": {"expecting_handshake": false},
            "expecting_handshake": true,
        });
        let cfg: IntegrationConfig = serde_json::from_value(both)?;
        assert!(!cfg.expecting_handshake);
        Ok(())
    }
}
