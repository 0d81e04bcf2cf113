//! The integration's Asana options ([`AsanaOptions`]): how "in progress" and priority are
//! represented, and the workspace's time zone.

use std::collections::BTreeMap;

use ordonis_core::{InvalidInput, PriorityLevel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a not-completed task counts as "in progress". Asana has only `completed`; teams
/// express progress with a board section or an enum custom field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InProgressRule {
    /// The task is in progress while it sits in a section with one of these names (in any of
    /// its projects; compared case-insensitively).
    Section {
        /// Section names ("Doing", "In progress").
        names: Vec<String>,
    },
    /// The task is in progress while this enum custom field holds one of these options.
    EnumField {
        /// The custom field's gid.
        field_gid: String,
        /// Option names that mean in progress; the first is written when Ordonis moves a task
        /// to in progress under another name.
        options: Vec<String>,
    },
}

/// Non-secret Asana options, read from the integration's
/// [`ordonis_core::ProviderContext::options`] (all optional):
///
/// ```
/// let o: ordonis_asana::AsanaOptions = serde_json::from_value(serde_json::json!({
///     "workspace_gid": "1331",
///     "in_progress": {"kind": "section", "names": ["Doing"]},
///     "priority_field_gid": "4578152156",
///     "priority_levels": {"P0": "highest"}
/// })).unwrap();
/// assert_eq!(o.priority_field_gid.as_deref(), Some("4578152156"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsanaOptions {
    /// The workspace (for listing webhooks).
    #[serde(default)]
    pub workspace_gid: Option<String>,
    /// How "in progress" is represented; without it a task is either to do or done.
    #[serde(default)]
    pub in_progress: Option<InProgressRule>,
    /// The workspace's time zone (IANA name, `Europe/Berlin`): a `due_at` time becomes its
    /// date there. Default: UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The enum custom field that holds priority; without it priority is not synced.
    #[serde(default)]
    pub priority_field_gid: Option<String>,
    /// Option name → level overrides (case-insensitive); other names use
    /// [`priority_level`]'s defaults.
    #[serde(default)]
    pub priority_levels: BTreeMap<String, PriorityLevel>,
    /// How a task created from CollabHub carries its marker (see [`crate::create`]):
    /// `"external"` (default; needs an OAuth token) or `"name"` (a personal access token).
    #[serde(default)]
    pub create_marker: CreateMarker,
}

/// Where a created task keeps the marker that lets a create whose answer was lost be found
/// instead of repeated ([`crate::create`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreateMarker {
    /// Asana's custom external data, `external.gid = "ordonis:<marker>"`, found again with
    /// `GET /tasks/external:ordonis:<marker>`. Exact, but Asana lets only OAuth apps set it
    /// (a personal access token's create is refused).
    #[default]
    External,
    /// No stored marker: the created task is recognised by its name, its creator (the
    /// token's user) and its creation time. Works with a personal access token; two tasks
    /// of the same name created by the token in the same window are ambiguous, and then
    /// neither is adopted (the lookup fails with that reason).
    Name,
}

impl AsanaOptions {
    /// Reads options from an integration's JSON; `null` is the default.
    pub fn from_json(v: &Value) -> Result<Self, InvalidInput> {
        if v.is_null() {
            return Ok(Self::default());
        }
        let opts: Self = serde_json::from_value(v.clone())
            .map_err(|e| InvalidInput::new("options", format!("Asana options: {e}")))?;
        if let Some(tz) = &opts.time_zone {
            jiff::tz::TimeZone::get(tz)
                .map_err(|e| InvalidInput::new("options", format!("time_zone {tz:?}: {e}")))?;
        }
        Ok(opts)
    }

    /// The configured time zone (UTC when none is set or it is unknown).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        self.time_zone
            .as_deref()
            .and_then(|tz| jiff::tz::TimeZone::get(tz).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The level of a priority option name: an override, else the default mapping.
    pub fn level_of(&self, name: &str) -> PriorityLevel {
        let n = name.trim();
        self.priority_levels
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(n))
            .map_or_else(|| priority_level(n), |(_, l)| *l)
    }
}

/// Maps a priority option name to a level (High, Medium, Low and common aliases); unknown
/// names are `Medium`.
pub fn priority_level(name: &str) -> PriorityLevel {
    match name.trim().to_ascii_lowercase().as_str() {
        "highest" | "urgent" | "critical" | "blocker" | "p0" | "p1" => PriorityLevel::Highest,
        "high" | "major" | "p2" => PriorityLevel::High,
        "low" | "minor" | "p4" => PriorityLevel::Low,
        "lowest" | "trivial" | "p5" => PriorityLevel::Lowest,
        _ => PriorityLevel::Medium,
    }
}
