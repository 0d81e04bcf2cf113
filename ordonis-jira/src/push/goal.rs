//! Where a status push should end ([`Goal`]), which transitions may take it there and which
//! fields their screens require ([`transition_fields`]), and the next hop when the workflow
//! has to be explored ([`choose`]).

use std::collections::{HashMap, HashSet, VecDeque};

use ordonis_core::{Status, StatusCategory};
use serde_json::{Map, Value};

use crate::client::Transition;
use crate::config::JiraOptions;
use crate::normalize::status_category;

/// The statuses CollabHub's generic names stand for: any status of their category may
/// satisfy them; any other name must exist in Jira's workflow.
fn is_generic(name: &str, category: StatusCategory) -> bool {
    let n = name.trim().to_ascii_lowercase();
    n.is_empty()
        || match category {
            StatusCategory::Todo => matches!(n.as_str(), "to do" | "todo" | "open" | "new"),
            StatusCategory::InProgress => matches!(n.as_str(), "in progress" | "doing" | "started"),
            StatusCategory::Done => {
                matches!(n.as_str(), "done" | "completed" | "complete" | "closed")
            }
        }
}

/// Done-category statuses that mean "not done": never chosen for a generic "Done".
pub(super) fn is_negative(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase().replace(['\'', '’'], "");
    [
        "wont do",
        "wont fix",
        "cancelled",
        "canceled",
        "rejected",
        "declined",
        "duplicate",
        "invalid",
        "abandoned",
        "obsolete",
        "cannot reproduce",
    ]
    .iter()
    .any(|bad| n == *bad || n.starts_with(bad))
}

/// Where a status push should end.
#[derive(Debug)]
pub(super) struct Goal {
    /// A Jira status name that must be reached (mapped, or a non-generic name).
    pub(super) name: Option<String>,
    /// The category a generic target accepts when no status has its name.
    pub(super) category: StatusCategory,
    /// The name asked for, tried first even when generic ("Done" when Jira has "Done").
    pub(super) asked: String,
}

impl Goal {
    pub(super) fn new(target: &Status, opts: &JiraOptions) -> Self {
        let mapped = opts
            .status_map
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(target.name.trim()))
            .map(|(_, v)| v.clone());
        let name = mapped.or_else(|| {
            (!is_generic(&target.name, target.category)).then(|| target.name.trim().to_owned())
        });
        Self {
            name,
            category: target.category,
            asked: target.name.trim().to_owned(),
        }
    }

    pub(super) fn reached_by(&self, name: &str, category: StatusCategory) -> bool {
        match &self.name {
            Some(n) => name.trim().eq_ignore_ascii_case(n),
            None => {
                (!self.asked.is_empty() && name.trim().eq_ignore_ascii_case(&self.asked))
                    || (category == self.category && !is_negative(name))
            }
        }
    }

    pub(super) fn describe_quoted(&self) -> String {
        match &self.name {
            Some(n) => format!("{n:?}"),
            None => format!("a {:?} status", self.category),
        }
    }

    pub(super) fn describe(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("a {:?} status", self.category))
    }
}

pub(super) fn reachable(graph: &HashMap<String, Vec<Transition>>) -> String {
    let mut names: Vec<&str> = graph
        .values()
        .flatten()
        .map(|t| t.to.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

pub(super) fn target_category(t: &Transition) -> StatusCategory {
    t.to.status_category
        .as_ref()
        .map(|c| status_category(&c.key))
        .unwrap_or_default()
}

fn cat_rank(c: StatusCategory) -> i32 {
    match c {
        StatusCategory::Todo => 0,
        StatusCategory::InProgress => 1,
        StatusCategory::Done => 2,
    }
}

pub(super) enum Choice {
    Direct(Transition, Option<Map<String, Value>>),
    Hop(Transition, Option<Map<String, Value>>),
    Blocked(Transition, Vec<String>),
    None(Vec<String>),
}

/// Resolutions a generic "Done" may be given when none is configured, best first.
const GOOD_RESOLUTIONS: [&str; 5] = ["done", "fixed", "resolved", "complete", "completed"];

/// The `fields` a transition's screen requires, from the integration's options and the
/// field's `allowedValues`; `Err` names the required fields that cannot be filled.
pub(super) fn transition_fields(
    t: &Transition,
    opts: &JiraOptions,
) -> Result<Option<Map<String, Value>>, Vec<String>> {
    let mut out = Map::new();
    let mut missing = Vec::new();
    for (fid, meta) in &t.fields {
        if !crate::client::required_without_default(meta) {
            continue;
        }
        if let Some(v) = opts.transition_fields.get(fid) {
            out.insert(fid.clone(), v.clone());
            continue;
        }
        let allowed: Vec<(&str, &str)> = meta
            .get("allowedValues")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| Some((v.get("id")?.as_str()?, v.get("name")?.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        if fid == "resolution" {
            let pick = match &opts.resolution {
                Some(want) => allowed
                    .iter()
                    .find(|(_, n)| n.trim().eq_ignore_ascii_case(want.trim())),
                None => GOOD_RESOLUTIONS.iter().find_map(|good| {
                    allowed
                        .iter()
                        .find(|(_, n)| n.trim().eq_ignore_ascii_case(good))
                }),
            };
            if let Some((rid, _)) = pick {
                out.insert(fid.clone(), serde_json::json!({ "id": rid }));
                continue;
            }
        }
        missing.push(crate::client::field_label(fid, meta));
    }
    if missing.is_empty() {
        Ok((!out.is_empty()).then_some(out))
    } else {
        missing.sort();
        Err(missing)
    }
}

/// Picks the next transition: a direct one to the goal (by name; for a generic goal, any
/// status of its category that does not mean "not done"); else the first hop of a path
/// through statuses seen so far; else an unexplored status, nearest in category first.
pub(super) fn choose(
    transitions: &[Transition],
    goal: &Goal,
    opts: &JiraOptions,
    graph: &HashMap<String, Vec<Transition>>,
    here: &str,
    visited: &HashSet<String>,
) -> Choice {
    let fill = |t: &Transition| transition_fields(t, opts);
    // Direct: by name first, then (generic goals) by category, fillable ones first.
    let direct: Vec<&Transition> = transitions
        .iter()
        .filter(|t| goal.reached_by(&t.to.name, target_category(t)))
        .collect();
    let by_name = direct.iter().find(|t| {
        let n = goal.name.as_deref().unwrap_or(&goal.asked);
        !n.is_empty() && t.to.name.trim().eq_ignore_ascii_case(n)
    });
    let first = by_name
        .or_else(|| direct.iter().find(|t| fill(t).is_ok()))
        .or_else(|| direct.first());
    if let Some(t) = first {
        return match fill(t) {
            Ok(f) => Choice::Direct((*t).clone(), f),
            Err(missing) => Choice::Blocked((*t).clone(), missing),
        };
    }
    let usable = |t: &&Transition| fill(t).is_ok();
    // A path through statuses already seen (BFS over the learned graph).
    if let Some(first) = bfs_first_hop(graph, here, goal, opts)
        && let Some(t) = transitions.iter().filter(usable).find(|t| t.id == first.id)
    {
        return Choice::Hop(t.clone(), fill(t).ok().flatten());
    }
    let mut candidates: Vec<&Transition> = transitions
        .iter()
        .filter(usable)
        .filter(|t| !visited.contains(&t.to.name.to_lowercase()))
        .filter(|t| !is_negative(&t.to.name))
        .collect();
    let want = cat_rank(goal.category);
    candidates.sort_by_key(|t| (cat_rank(target_category(t)) - want).abs());
    match candidates.first() {
        Some(t) => Choice::Hop((*t).clone(), fill(t).ok().flatten()),
        None => Choice::None(
            transitions
                .iter()
                .filter(|t| fill(t).is_err())
                .map(|t| t.name.clone())
                .collect(),
        ),
    }
}

fn bfs_first_hop(
    graph: &HashMap<String, Vec<Transition>>,
    from: &str,
    goal: &Goal,
    opts: &JiraOptions,
) -> Option<Transition> {
    let mut queue: VecDeque<(String, Option<Transition>)> = VecDeque::new();
    let mut seen: HashSet<String> = HashSet::new();
    queue.push_back((from.to_owned(), None));
    seen.insert(from.to_owned());
    while let Some((node, first)) = queue.pop_front() {
        for t in graph.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
            if transition_fields(t, opts).is_err() {
                continue;
            }
            let next = t.to.name.to_lowercase();
            let first = first.clone().unwrap_or_else(|| t.clone());
            if goal.reached_by(&t.to.name, target_category(t)) {
                return Some(first);
            }
            if seen.insert(next.clone()) {
                queue.push_back((next, Some(first)));
            }
        }
    }
    None
}
