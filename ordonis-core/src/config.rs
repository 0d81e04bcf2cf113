//! Configuration: an integration's non-secret settings and the engine's knobs.

use std::collections::BTreeMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};

use crate::model::Field;
use crate::policy::{FieldPolicy, FieldRule};

/// An integration's non-secret configuration, stored as JSON beside its sealed secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationConfig {
    /// API base URL.
    pub base_url: String,
    /// Per-field overrides of the default [`FieldPolicy`].
    #[serde(default)]
    pub field_policy: BTreeMap<Field, FieldRule>,
    /// Provider-specific options.
    #[serde(default)]
    pub options: serde_json::Value,
    /// The integration is creating a webhook and accepts one handshake (Asana). Cleared when
    /// the handshake arrives.
    #[serde(default)]
    pub expecting_handshake: bool,
}

impl IntegrationConfig {
    /// A configuration with the default policy.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            field_policy: BTreeMap::new(),
            options: serde_json::Value::Null,
            expecting_handshake: false,
        }
    }

    /// The effective field policy.
    pub fn policy(&self) -> FieldPolicy {
        FieldPolicy::default().merged(&self.field_policy)
    }
}

/// Retry backoff for failed rows: exponential with jitter, capped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt + 1`, after `attempt` failures (1-based).
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
}

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Attempts before a row is dead-lettered.
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub backoff: Backoff,
    /// Largest accepted webhook body.
    pub max_body_bytes: usize,
    /// Webhook secrets kept valid at once during a rotation.
    pub webhook_secret_overlap: usize,
    /// How often a unit of work is recomputed after a concurrent-modification conflict.
    pub conflict_retries: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff: Backoff::default(),
            max_body_bytes: 1024 * 1024,
            webhook_secret_overlap: 2,
            conflict_retries: 32,
        }
    }
}
