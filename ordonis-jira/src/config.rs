//! The integration's Jira options ([`JiraOptions`]), parsed from its JSON and checked.

use std::collections::BTreeMap;

use ordonis_core::InvalidInput;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Non-secret Jira options (an integration's `options`); unknown keys are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraOptions {
    /// The `iss` a JWT-signed (app) webhook must carry.
    #[serde(default)]
    pub jwt_issuer: Option<String>,
    /// The path (and query) Jira posts this app's webhooks to, as registered in the app
    /// descriptor (`/integrations/jira/<id>/webhook`): a JWT's `qsh` is checked against
    /// `POST&<path>&<query>`. A JWT with a `qsh` is refused without it.
    #[serde(default)]
    pub jwt_webhook_path: Option<String>,
    /// CollabHub status name → the Jira status it moves to (`{"Done": "Closed"}`). Without an
    /// entry, a generic name (To Do, In Progress, Done) reaches a status of its category that
    /// does not mean "not done" (never "Won't Do"), and any other name must exist in Jira.
    #[serde(default)]
    pub status_map: BTreeMap<String, String>,
    /// The resolution a transition that requires one gets (by name, among the transition's
    /// `allowedValues`). Default: the first of Done, Fixed, Resolved, Complete(d) offered.
    #[serde(default)]
    pub resolution: Option<String>,
    /// Values for other required transition-screen fields, by field id (Jira's JSON).
    #[serde(default)]
    pub transition_fields: BTreeMap<String, Value>,
    /// Values for the create screen's fields, by field id or name (`{"customfield_10050":
    /// {"id": "42"}}`, `{"Team": …}`; Jira's JSON): a required field without a default that
    /// the task does not set is filled from here (else the create is refused, naming it),
    /// and any other entry naming a field of the create screen is sent too.
    #[serde(default)]
    pub create_fields: BTreeMap<String, Value>,
    /// How long after a create whose answer was lost the engine waits before it searches
    /// for the issue, in seconds (default
    /// [`DEFAULT_CREATE_LOOKUP_DELAY_S`](crate::create::DEFAULT_CREATE_LOOKUP_DELAY_S), 10):
    /// Jira's search index lags, and a search that runs too early misses the issue and
    /// creates a second one (0 is allowed for tests whose fake has no lag).
    #[serde(default)]
    pub create_lookup_delay_s: Option<u64>,
    /// How far before its cursor a reconcile searches, in seconds (default
    /// [`DEFAULT_RECONCILE_OVERLAP_S`](crate::repair::DEFAULT_RECONCILE_OVERLAP_S), 120):
    /// JQL dates have minute granularity and the search index lags, so anything under two
    /// minutes can miss changes (0 is allowed for tests that prove it).
    #[serde(default)]
    pub reconcile_overlap_s: Option<u64>,
    /// The time zone (IANA name) the JQL dates of a reconcile are written in: Jira reads a
    /// JQL date in the searching user's time zone, so this must be the API account's zone
    /// (Jira profile settings). Default `UTC`.
    #[serde(default)]
    pub jql_time_zone: Option<String>,
    /// Which webhooks the integration uses: `admin` (default; registered by a Jira
    /// administrator, not renewable through the API) or `dynamic` (an OAuth/Connect app's
    /// webhooks: registered, checked and renewed before their 30-day expiry by Ordonis).
    #[serde(default)]
    pub webhook: WebhookMode,
}

impl JiraOptions {
    /// Reads options from an integration's JSON; `null` is the default.
    pub fn from_json(v: &Value) -> Result<Self, InvalidInput> {
        if v.is_null() {
            return Ok(Self::default());
        }
        let o: Self = serde_json::from_value(v.clone())
            .map_err(|e| InvalidInput::new("options", format!("Jira options: {e}")))?;
        if let Some(tz) = &o.jql_time_zone {
            time_zone(tz)?;
        }
        Ok(o)
    }
}

/// The JQL of a scope (`{"jql": "project = HO"}`), or why the scope is unusable.
pub fn scope_jql(scope: &Value) -> Result<&str, InvalidInput> {
    match scope.get("jql").and_then(Value::as_str).map(str::trim) {
        Some(jql) if !jql.is_empty() => Ok(jql),
        _ => Err(InvalidInput::new(
            "scope",
            "a Jira integration needs scope {\"jql\": \"<a JQL query, e.g. project = HO>\"}",
        )),
    }
}

/// A time zone by IANA name (the `jql_time_zone` option).
pub(crate) fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, InvalidInput> {
    jiff::tz::TimeZone::get(name)
        .map_err(|e| InvalidInput::new("options", format!("jql_time_zone {name:?}: {e}")))
}

/// Which webhooks a Jira integration uses (option `webhook`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMode {
    /// Registered by a Jira administrator: Jira's API can neither renew nor inspect them, so
    /// their health is judged by the engine from what only a reconcile repaired.
    #[default]
    Admin,
    /// An OAuth/Connect app's dynamic webhooks: registered, checked and renewed by Ordonis.
    Dynamic,
}
