//! What the console derives from a task, its ledger and the queues: the task's sync state,
//! the fields in conflict, the statuses, accounts and priorities a form may offer, and the
//! provider's own key for a linked object.

use std::collections::{BTreeMap, HashMap, HashSet};

use ordonis_core::StoreExt;
use ordonis_core::{
    Assignee, ExternalRef, Field, InvalidInput, LedgerEntry, Op, Outcome, Priority, PriorityLevel,
    Status, StatusCategory, SyncState, Task,
};

use crate::errors::ApiError;
use crate::state::AppState;

/// The effective field policy of a stored integration (the default when its configuration
/// does not parse).
pub(crate) fn policy_of(r: &ordonis_core::IntegrationRecord) -> ordonis_core::FieldPolicy {
    serde_json::from_value::<ordonis_core::IntegrationConfig>(r.config.clone())
        .map(|c| c.policy())
        .unwrap_or_default()
}

/// The field policy a task syncs under.
pub(crate) async fn task_policy(
    s: &AppState,
    t: &Task,
) -> Result<ordonis_core::FieldPolicy, ApiError> {
    Ok(match t.link() {
        Some(l) => s
            .store
            .integration(l.integration_id)
            .await?
            .map(|r| policy_of(&r))
            .unwrap_or_default(),
        None => ordonis_core::FieldPolicy::default(),
    })
}

/// The CSS class of a sync state's badge (the state itself, stored per task, is
/// [`ordonis_core::SyncState`]).
pub(crate) fn sync_class(s: SyncState) -> &'static str {
    match s {
        SyncState::InSync => "ok",
        SyncState::PushPending => "warn",
        SyncState::Conflict | SyncState::Error => "bad",
        SyncState::OutOfScope => "muted",
    }
}

/// The fields whose last decision in the ledger is a conflict, with that entry.
pub(crate) fn open_conflicts(entries: &[LedgerEntry]) -> Vec<(Field, &LedgerEntry)> {
    let mut last: BTreeMap<Field, &LedgerEntry> = BTreeMap::new();
    for e in entries {
        if let (Op::Set, Some(f)) = (e.record.op, e.record.field) {
            last.insert(f, e);
        }
    }
    last.into_iter()
        .filter(|(_, e)| e.record.outcome == Outcome::Conflict)
        .collect()
}

/// The provider's own key of a linked object: Jira's issue key from its `/browse/KEY` link
/// (KAN-22, not the numeric id 10021), else the provider's id.
pub(crate) fn provider_key(e: &ExternalRef) -> String {
    e.url
        .as_deref()
        .and_then(|u| u.split_once("/browse/"))
        .map(|(_, k)| k.split(['?', '#', '/']).next().unwrap_or(k).to_owned())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| e.key.external_id.clone())
}

/// The snake_case name of a status category (the form's encoding).
pub(crate) fn category_str(c: StatusCategory) -> &'static str {
    match c {
        StatusCategory::Todo => "todo",
        StatusCategory::InProgress => "in_progress",
        StatusCategory::Done => "done",
    }
}

fn category_parse(s: &str) -> Option<StatusCategory> {
    match s {
        "todo" => Some(StatusCategory::Todo),
        "in_progress" => Some(StatusCategory::InProgress),
        "done" => Some(StatusCategory::Done),
        _ => None,
    }
}

/// A status as a form value: `category:name` (`done:Completed`).
pub(crate) fn status_value(s: &Status) -> String {
    format!("{}:{}", category_str(s.category), s.name)
}

/// Parses [`status_value`]; a bare name (an older form, an API client) gets the category its
/// name suggests.
pub(crate) fn parse_status(v: &str) -> Status {
    match v
        .split_once(':')
        .and_then(|(c, name)| Some((category_parse(c)?, name)))
    {
        Some((category, name)) => Status::new(category, name),
        None => Status::new(crate::routes::tasks::category_of(v), v.trim()),
    }
}

fn level_str(l: PriorityLevel) -> &'static str {
    match l {
        PriorityLevel::Lowest => "lowest",
        PriorityLevel::Low => "low",
        PriorityLevel::Medium => "medium",
        PriorityLevel::High => "high",
        PriorityLevel::Highest => "highest",
    }
}

/// Every priority level, lowest first.
const LEVELS: [PriorityLevel; 5] = [
    PriorityLevel::Lowest,
    PriorityLevel::Low,
    PriorityLevel::Medium,
    PriorityLevel::High,
    PriorityLevel::Highest,
];

/// A priority as a form value: `level:name`; `""` is none.
pub(crate) fn priority_value(p: Option<&Priority>) -> String {
    p.map(|p| format!("{}:{}", level_str(p.level), p.name))
        .unwrap_or_default()
}

/// Parses [`priority_value`]: `Ok(None)` for none, `Err` for anything else.
pub(crate) fn parse_priority(v: &str) -> Result<Option<Priority>, InvalidInput> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    let (l, name) = v.split_once(':').unwrap_or((v, ""));
    LEVELS
        .into_iter()
        .find(|x| level_str(*x) == l)
        .map(|level| {
            Some(Priority {
                level,
                name: name.to_owned(),
            })
        })
        .ok_or_else(|| InvalidInput::new("priority", format!("{v:?} is not a priority")))
}

/// The tasks synced through the same integration as `t` (all of the workspace's when `t` is
/// linked to none): what the provider is known to use.
fn siblings<'a>(t: &Task, all: &'a [Task]) -> impl Iterator<Item = &'a Task> {
    let integration = t.link().map(|l| l.integration_id);
    all.iter()
        .filter(move |o| integration.is_none() || o.link().map(|l| l.integration_id) == integration)
}

/// The statuses the edit form offers: the task's current status first, then every status the
/// provider is known to use (seen on tasks of the same integration or in this task's ledger;
/// Asana's two states always), so a status the form does not list is never rewritten.
pub(crate) fn status_choices(t: &Task, all: &[Task], entries: &[LedgerEntry]) -> Vec<Status> {
    let mut out: Vec<Status> = vec![t.fields.status.clone()];
    let mut seen: HashSet<(StatusCategory, String)> = HashSet::new();
    seen.insert((
        t.fields.status.category,
        t.fields.status.name.to_lowercase(),
    ));
    let mut add = |s: &Status| {
        if seen.insert((s.category, s.name.to_lowercase())) {
            out.push(s.clone());
        }
    };
    if t.link().is_some_and(|l| l.provider.as_str() == "asana") {
        add(&Status::new(StatusCategory::Todo, ""));
        add(&Status::new(StatusCategory::Done, "Completed"));
    }
    for o in siblings(t, all) {
        add(&o.fields.status);
    }
    for e in entries {
        for v in [&e.record.before, &e.record.after].into_iter().flatten() {
            if let ordonis_core::FieldValue::Status(s) = v {
                add(s);
            }
        }
    }
    // The current status stays first (selected); the rest in workflow order.
    out[1..].sort_by(|a, b| a.category.cmp(&b.category).then(a.name.cmp(&b.name)));
    out
}

/// The accounts the assignee picker offers: the current assignee and everyone assigned to a
/// task of the same integration, by name.
pub(crate) fn assignee_choices(t: &Task, all: &[Task]) -> Vec<Assignee> {
    let mut by_id: HashMap<String, Assignee> = HashMap::new();
    for a in siblings(t, all)
        .filter_map(|o| o.fields.assignee.clone())
        .chain(t.fields.assignee.clone())
    {
        by_id.entry(a.account_id.clone()).or_insert(a);
    }
    let mut out: Vec<Assignee> = by_id.into_values().collect();
    out.sort_by_key(|a| {
        a.display_name
            .clone()
            .unwrap_or_else(|| a.account_id.clone())
    });
    out
}

/// The picker's choices with the people directory's: each principal's account in the task's
/// integration, named after the principal.
pub(crate) async fn with_directory(
    s: &crate::state::AppState,
    t: &Task,
    mut choices: Vec<Assignee>,
) -> Result<Vec<Assignee>, crate::errors::ApiError> {
    let Some(integration) = t.link().map(|l| l.integration_id) else {
        return Ok(choices);
    };
    let view = s.engine.people(&t.workspace_id).await?;
    for p in view.people {
        for a in p
            .accounts
            .into_iter()
            .filter(|a| a.integration_id == integration)
        {
            if !choices.iter().any(|c| c.account_id == a.account_id) {
                choices.push(Assignee {
                    account_id: a.account_id,
                    display_name: Some(p.display_name.clone()),
                    email: a.email,
                });
            }
        }
    }
    choices.sort_by_key(|a| {
        a.display_name
            .clone()
            .unwrap_or_else(|| a.account_id.clone())
    });
    Ok(choices)
}

/// The priorities offered: those the integration's tasks use and the current one; every
/// level when none is known.
pub(crate) fn priority_choices(t: &Task, all: &[Task]) -> Vec<Priority> {
    let mut out: Vec<Priority> = Vec::new();
    for p in siblings(t, all)
        .filter_map(|o| o.fields.priority.clone())
        .chain(t.fields.priority.clone())
    {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        out = LEVELS
            .into_iter()
            .map(|level| Priority {
                level,
                name: String::new(),
            })
            .collect();
    }
    out.sort_by_key(|p| p.level);
    out
}

/// Names of the accounts the workspace knows (assignees), by account id: shown instead of
/// ids where an actor has no display name.
pub(crate) fn known_names(all: &[Task]) -> HashMap<String, String> {
    all.iter()
        .filter_map(|t| t.fields.assignee.as_ref())
        .filter_map(|a| Some((a.account_id.clone(), a.display_name.clone()?)))
        .collect()
}

pub(crate) fn title_of(t: &Task) -> &str {
    if t.fields.title.is_empty() {
        "(untitled)"
    } else {
        &t.fields.title
    }
}

/// Where a task's newest provider value was last confirmed from: the source of the inbox
/// event that carried it (`webhook`, `backfill` or `reconcile`), or `—` when no provider
/// value has arrived yet (a task known only from CollabHub).
pub(crate) async fn confirmation_source(s: &AppState, t: &Task) -> &'static str {
    let Some(v) = t
        .sync
        .values()
        .filter_map(|f| f.version.as_ref())
        .max_by_key(|v| v.at_ms)
    else {
        return "—";
    };
    let Ok(id) = v.event.parse::<ordonis_core::EventId>() else {
        return "fetch";
    };
    match s.store.event(&t.workspace_id, id).await {
        Ok(Some(e)) => match ordonis_core::ListMode::parse(&e.auth) {
            Some(ordonis_core::ListMode::Backfill) => "backfill",
            Some(ordonis_core::ListMode::Reconcile) => "reconcile",
            None => "webhook",
        },
        _ => "—",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_round_trip() {
        for s in [
            Status::new(StatusCategory::Done, "Completed"),
            Status::new(StatusCategory::Todo, ""),
            Status::new(StatusCategory::InProgress, "In Review: QA"),
        ] {
            assert_eq!(parse_status(&status_value(&s)), s);
        }
        assert_eq!(
            parse_status("Done"),
            Status::new(StatusCategory::Done, "Done")
        );
        let p = Priority {
            level: PriorityLevel::High,
            name: "P1".to_owned(),
        };
        assert_eq!(parse_priority(&priority_value(Some(&p))), Ok(Some(p)));
        assert_eq!(parse_priority(""), Ok(None));
        assert!(parse_priority("urgent").is_err());
    }

    #[test]
    fn jira_keys_come_from_browse_links() {
        let mut e = ExternalRef {
            integration_id: ordonis_core::IntegrationId::new(),
            provider: ordonis_core::ProviderKind::new("jira"),
            key: ordonis_core::ObjectKey::new("10021", "issue"),
            url: Some("https://acme.atlassian.net/browse/KAN-22".to_owned()),
        };
        assert_eq!(provider_key(&e), "KAN-22");
        e.url = None;
        assert_eq!(provider_key(&e), "10021");
    }
}
