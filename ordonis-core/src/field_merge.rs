//! The per-field merge rules: pure functions over a [`Task`] that decide what an inbound value,
//! a CollabHub change or a push outcome does to each field. The engine wraps them in units of
//! work; the property tests in `ordonis-testkit` check that they converge.
//!
//! Per field the task keeps its value, the last value known equal on both sides (`base`), the
//! newest provider version seen, a coalesced unpushed change (`want`) and pushed values
//! awaiting their echo (`sent`). From these:
//! - an inbound value at a version not newer than the stored one is a no-op (replays, duplicates
//!   and out-of-order deliveries converge);
//! - an inbound value equal to a pushed or wanted value is our own echo: it confirms, nothing
//!   else happens (no echo loops);
//! - an inbound value equal to `base` means the provider did not change the field;
//! - otherwise the provider changed it: if CollabHub changed it too it is a conflict and the
//!   owner wins; if not, it flows in where the direction allows, and is reverted where not.

use crate::ids::ActionId;
use crate::ledger::Outcome;
use crate::model::{Field, FieldPatch, FieldValue};
use crate::policy::{Direction, FieldPolicy, FieldRule, Owner};
use crate::sync_state::{FieldSync, Intent, SourceVersion};
use crate::task::Task;

/// One decision about one field, to be written to the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The field.
    pub field: Field,
    /// Value before (for a request, rejection or revert: the value the proposer saw).
    pub before: FieldValue,
    /// Value after (for a request or rejection: the value asked for; for a revert: the
    /// owner's value pushed back).
    pub after: FieldValue,
    /// The outcome.
    pub outcome: Outcome,
    /// The rule that decided.
    pub rule: FieldRule,
    /// A short reason.
    pub reason: String,
    /// For a confirmation: the internal action whose push this echoes.
    pub echo_of: Option<ActionId>,
}

impl Decision {
    /// The rule text recorded in the ledger.
    pub fn rule_text(&self) -> String {
        format!("{};{}", self.rule, self.reason)
    }
}

/// What applying something to a task produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Decisions, in field order.
    pub decisions: Vec<Decision>,
    /// The task now has unpushed changes: queue a push.
    pub push: bool,
    /// The task's stored state changed (values or sync state): commit it.
    pub dirty: bool,
}

fn has_local_change(st: &FieldSync, current: &FieldValue) -> bool {
    st.locally_pending() || st.base.as_ref().is_some_and(|b| !current.same_as(b))
}

/// Whether CollabHub changed a field since `confirmed` (a push now confirmed, already taken
/// out of `sent`) was made: another change waits or is in flight, or the value is no longer
/// the one pushed (in any of its forms). Compared with the push, not with `base`: the
/// provider's form of our own value is no local change.
fn changed_since(st: &FieldSync, current: &FieldValue, confirmed: &Intent) -> bool {
    st.locally_pending()
        || !(current.same_as(&confirmed.value)
            || confirmed.echo_as.iter().any(|e| current.same_as(e)))
}

/// Applies a provider's state of some fields at a version.
pub fn apply_remote(
    task: &mut Task,
    remote: &FieldPatch,
    version: &SourceVersion,
    policy: &FieldPolicy,
) -> Applied {
    let mut out = Applied::default();
    if task.deleted {
        return out;
    }
    for r in remote.values() {
        let field = r.field();
        let rule = policy.rule(field);
        if rule.direction == Direction::Off {
            continue;
        }
        let current = task.fields.get(field);
        let st = task.sync.entry(field).or_default();
        if st.version.as_ref().is_some_and(|v| version <= v) {
            continue; // stale or duplicate
        }
        st.version = Some(version.clone());
        out.dirty = true;

        // Our own echo: a pushed value, or the value we are about to push.
        let echo = if let Some(pos) = st.sent_position(r) {
            let intent = st.sent[pos].clone();
            st.sent.drain(..=pos);
            Some(intent)
        } else if st.want.as_ref().is_some_and(|w| w.value.same_as(r)) {
            st.want.take()
        } else {
            None
        };
        if let Some(intent) = echo {
            let newer = changed_since(st, &current, &intent);
            st.base = Some(r.clone());
            // The provider's form becomes the value unless CollabHub changed it since.
            let take = rule.owner == Owner::Provider || !newer;
            let after = if take { r.clone() } else { current.clone() };
            if take {
                task.fields.set(r.clone());
            }
            out.decisions.push(Decision {
                field,
                before: current,
                after,
                outcome: Outcome::Confirmed,
                rule,
                reason: "echo of our push".into(),
                echo_of: Some(intent.action),
            });
            continue;
        }

        // An intermediate step of our push (a workflow hop): ours, the push still awaited.
        if let Some(pos) = st.passing_position(r) {
            let action = st.sent[pos].action;
            st.base = Some(r.clone());
            let take = rule.owner == Owner::Provider;
            if take {
                task.fields.set(r.clone());
            }
            out.decisions.push(Decision {
                field,
                before: current.clone(),
                after: if take { r.clone() } else { current },
                outcome: Outcome::Confirmed,
                rule,
                reason: "intermediate step of our push".into(),
                echo_of: Some(action),
            });
            continue;
        }

        if st.base.as_ref().is_some_and(|b| b.same_as(r)) {
            continue; // the provider did not change this field
        }
        let local = has_local_change(st, &current);
        let first_sight = st.base.is_none() && !local;
        if current.same_as(r) && !(first_sight && current != *r) {
            st.base = Some(r.clone()); // both sides agree already
            continue;
        }
        st.base = Some(r.clone());

        if first_sight {
            // The field's first sync: import the provider's value whatever the direction.
            task.fields.set(r.clone());
            out.decisions.push(Decision {
                field,
                before: current,
                after: r.clone(),
                outcome: Outcome::Applied,
                rule,
                reason: "initial import".into(),
                echo_of: None,
            });
        } else if !rule.direction.inbound() {
            // May not flow in: push the owner's (our) value back.
            st.want = Some(Intent::new(current.clone(), ActionId::new()));
            out.push = true;
            out.decisions.push(Decision {
                field,
                before: r.clone(),
                after: current,
                outcome: Outcome::Reverted,
                rule,
                reason: "provider changes do not flow in".into(),
                echo_of: None,
            });
        } else if !local {
            task.fields.set(r.clone());
            out.decisions.push(Decision {
                field,
                before: current,
                after: r.clone(),
                outcome: Outcome::Applied,
                rule,
                reason: "provider change".into(),
                echo_of: None,
            });
        } else if rule.owner == Owner::Provider {
            st.want = None;
            st.sent.clear();
            task.fields.set(r.clone());
            out.decisions.push(Decision {
                field,
                before: current,
                after: r.clone(),
                outcome: Outcome::Conflict,
                rule,
                reason: "both sides changed; provider owns the field".into(),
                echo_of: None,
            });
        } else {
            // CollabHub owns it: keep ours and (where it may flow out) push it again.
            if rule.direction.outbound() && st.want.is_none() {
                let action = st.sent.last().map_or_else(ActionId::new, |i| i.action);
                st.want = Some(Intent::new(current.clone(), action));
                out.push = true;
            }
            out.decisions.push(Decision {
                field,
                before: current.clone(),
                after: current,
                outcome: Outcome::Conflict,
                rule,
                reason: "both sides changed; collabhub owns the field".into(),
                echo_of: None,
            });
        }
    }
    out
}

/// Applies a CollabHub change (from the task API) to a task.
pub fn apply_local(
    task: &mut Task,
    patch: &FieldPatch,
    policy: &FieldPolicy,
    action: ActionId,
) -> Applied {
    let mut out = Applied::default();
    for l in patch.values() {
        let field = l.field();
        let rule = policy.rule(field);
        let current = task.fields.get(field);
        let st = task.sync.entry(field).or_default();
        let proposal = |outcome, reason: &str| Decision {
            field,
            before: current.clone(),
            after: l.clone(),
            outcome,
            rule,
            reason: reason.to_owned(),
            echo_of: None,
        };
        if rule.direction.outbound() {
            let unchanged = match &st.want {
                Some(w) => w.value.same_as(l),
                None => current.same_as(l) && st.sent.is_empty(),
            };
            if unchanged {
                continue; // equal values never cause a push
            }
            out.dirty = true;
            // Back to the in-sync value before anything was pushed: nothing to push.
            let back_to_base = st.sent.is_empty() && st.base.as_ref().is_some_and(|b| b.same_as(l));
            st.want = (!back_to_base).then(|| Intent::new(l.clone(), action));
            out.push |= st.want.is_some();
            match rule.owner {
                Owner::Host => {
                    task.fields.set(l.clone());
                    out.decisions
                        .push(proposal(Outcome::Applied, "collabhub change"));
                }
                Owner::Provider => {
                    out.decisions.push(proposal(
                        Outcome::Requested,
                        "provider owns the field: sent as a request",
                    ));
                }
            }
        } else if current.same_as(l) {
            continue;
        } else if rule.direction == Direction::InboundOnly && rule.owner == Owner::Provider {
            out.decisions.push(proposal(
                Outcome::Rejected,
                "provider-owned and inbound-only: change it in the provider",
            ));
        } else {
            out.dirty = true;
            task.fields.set(l.clone());
            out.decisions.push(proposal(
                Outcome::Applied,
                "collabhub change, not synced out",
            ));
        }
    }
    out
}

/// What a push should send: per field, the unpushed change, else the newest pushed value not
/// yet acknowledged by the provider (a push that crashed or failed). Moves wants to `sent`,
/// so an echo that races the push's completion is still recognised.
///
/// `echo_form` names the form the provider will report a value in when that differs from the
/// value sent (see [`crate::ValueCheck::AcceptAs`]); it is recorded with the sent value before
/// the push, so an echo that overtakes the push is recognised in that form too.
pub fn begin_push(
    task: &mut Task,
    policy: &FieldPolicy,
    echo_form: impl Fn(&FieldValue) -> Option<FieldValue>,
) -> Vec<Intent> {
    let mut intents = Vec::new();
    for field in Field::ALL {
        if !policy.rule(field).direction.outbound() {
            continue;
        }
        let Some(st) = task.sync.get_mut(&field) else {
            continue;
        };
        if let Some(mut want) = st.want.take() {
            if let Some(form) = echo_form(&want.value).filter(|f| !f.same_as(&want.value)) {
                want.echo_as = vec![form];
            }
            st.record_sent(want.clone());
            intents.push(want);
        } else if let Some(last) = st.sent.last()
            && !last.acked
        {
            intents.push(last.clone());
        }
    }
    intents
}

/// Records the values a push is planned to pass through (see
/// [`crate::Provider::plan_push`]) with its sent values, before the push: an echo of
/// one of them confirms nothing yet and is no conflict. Returns whether anything was added.
pub fn expect_passes(task: &mut Task, pushed: &[Intent], passes: &[FieldValue]) -> bool {
    let mut added = false;
    for intent in pushed {
        let Some(st) = task.sync.get_mut(&intent.value.field()) else {
            continue;
        };
        let Some(sent) = st
            .sent
            .iter_mut()
            .find(|i| i.action == intent.action && i.value == intent.value)
        else {
            continue;
        };
        for v in passes.iter().filter(|v| v.field() == intent.value.field()) {
            if !sent.passes.iter().any(|p| p == v) {
                sent.passes.push(v.clone());
                added = true;
            }
        }
    }
    added
}

/// Records a push's outcome: accepted values are acknowledged (their echo is still awaited);
/// refused ones are forgotten and recorded; `conflicts` (provider-owned fields the provider
/// changed meanwhile) drop our request in the provider's favour.
///
/// `outcome.settled` fields (the provider already held the value) are confirmed at once.
pub fn finish_push(
    task: &mut Task,
    pushed: &[Intent],
    outcome: &crate::provider::PushOutcome,
    conflicts: &[Field],
    policy: &FieldPolicy,
) -> Applied {
    let applied = &outcome.applied;
    let refused = &outcome.refused;
    let mut out = Applied {
        dirty: true,
        ..Applied::default()
    };
    for intent in pushed {
        let field = intent.value.field();
        let rule = policy.rule(field);
        let current = task.fields.get(field);
        let Some(st) = task.sync.get_mut(&field) else {
            continue;
        };
        let pos = st
            .sent
            .iter()
            .position(|i| i.action == intent.action && i.value == intent.value);
        if conflicts.contains(&field) {
            st.sent.clear();
            st.want = None;
            out.decisions.push(Decision {
                field,
                before: current.clone(),
                after: current,
                outcome: Outcome::Conflict,
                rule,
                reason: "provider changed it before our request was sent; provider owns the field"
                    .into(),
                echo_of: Some(intent.action),
            });
        } else if refused.iter().any(|(f, _)| *f == field) {
            if let Some(pos) = pos {
                st.sent.remove(pos);
            }
            out.decisions.push(Decision {
                field,
                before: current,
                after: intent.value.clone(),
                outcome: Outcome::Rejected,
                rule,
                reason: format!(
                    "refused by the provider: {}",
                    refused
                        .iter()
                        .find(|(f, _)| *f == field)
                        .map_or("", |(_, r)| r.as_str())
                ),
                echo_of: Some(intent.action),
            });
        } else if outcome.settled.contains(&field)
            && let Some(pos) = pos
        {
            let intent = st.sent.remove(pos);
            let newer = changed_since(st, &current, &intent);
            let held = intent.echo_as.first().cloned().unwrap_or(intent.value);
            st.base = Some(held.clone());
            let take = rule.owner == Owner::Provider || !newer;
            if take {
                task.fields.set(held.clone());
            }
            out.decisions.push(Decision {
                field,
                before: current.clone(),
                after: if take { held } else { current },
                outcome: Outcome::Confirmed,
                rule,
                reason: "the provider already held the value".into(),
                echo_of: Some(intent.action),
            });
        } else if applied.contains(&field)
            && let Some(pos) = pos
        {
            let sent = &mut st.sent[pos];
            sent.acked = true;
            for v in outcome.echo_as.iter().filter(|v| v.field() == field) {
                if !sent.echo_as.iter().any(|e| e == v) {
                    sent.echo_as.push(v.clone());
                }
            }
            for v in outcome.passed_through.iter().filter(|v| v.field() == field) {
                if !sent.passes.iter().any(|e| e == v) {
                    sent.passes.push(v.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ids::WorkspaceId;
    use crate::model::{Status, StatusCategory};
    use crate::provider::PushOutcome;

    fn status(c: StatusCategory, n: &str) -> FieldValue {
        FieldValue::Status(Status::new(c, n))
    }

    /// A task whose status push to "Done" went through "In Progress" on the way.
    fn pushed_done(outcome: &PushOutcome) -> (Task, FieldPolicy) {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let first = FieldPatch::new().with(status(StatusCategory::Todo, "To Do"));
        apply_remote(&mut task, &first, &SourceVersion::new(1, "e1"), &policy);
        let want = FieldPatch::new().with(status(StatusCategory::Done, "Done"));
        apply_local(&mut task, &want, &policy, ActionId::new());
        let pushed = begin_push(&mut task, &policy, |_| None);
        finish_push(&mut task, &pushed, outcome, &[], &policy);
        (task, policy)
    }

    #[test]
    fn intermediate_hops_and_the_renamed_final_status_are_our_echoes() {
        let outcome = PushOutcome {
            applied: vec![Field::Status],
            echo_as: vec![status(StatusCategory::Done, "Closed")],
            passed_through: vec![status(StatusCategory::InProgress, "In Progress")],
            ..PushOutcome::default()
        };
        let (mut task, policy) = pushed_done(&outcome);
        let hop = FieldPatch::new().with(status(StatusCategory::InProgress, "In Progress"));
        let a = apply_remote(&mut task, &hop, &SourceVersion::new(2, "e2"), &policy);
        assert_eq!(a.decisions[0].outcome, Outcome::Confirmed);
        assert!(!a.push);
        assert_eq!(
            task.sync[&Field::Status].sent.len(),
            1,
            "the push is still awaited"
        );
        // The provider owns the status: the hop is its value meanwhile.
        assert_eq!(task.fields.status.name, "In Progress");
        assert_eq!(
            a.decisions[0].after,
            status(StatusCategory::InProgress, "In Progress")
        );
        let done = FieldPatch::new().with(status(StatusCategory::Done, "Closed"));
        let a = apply_remote(&mut task, &done, &SourceVersion::new(3, "e3"), &policy);
        assert_eq!(a.decisions[0].outcome, Outcome::Confirmed);
        assert!(task.sync[&Field::Status].sent.is_empty());
        assert_eq!(task.fields.status.name, "Closed");
    }

    #[test]
    fn a_planned_hop_echoed_before_the_push_returns_is_ours() {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let first = FieldPatch::new().with(status(StatusCategory::Todo, "To Do"));
        apply_remote(&mut task, &first, &SourceVersion::new(1, "e1"), &policy);
        let want = FieldPatch::new().with(status(StatusCategory::Done, "Done"));
        apply_local(&mut task, &want, &policy, ActionId::new());
        let pushed = begin_push(&mut task, &policy, |_| None);
        let hop = status(StatusCategory::InProgress, "In Progress");
        assert!(expect_passes(
            &mut task,
            &pushed,
            std::slice::from_ref(&hop)
        ));
        assert!(!expect_passes(
            &mut task,
            &pushed,
            std::slice::from_ref(&hop)
        ));
        // The push has not returned: no `finish_push` yet.
        let a = apply_remote(
            &mut task,
            &FieldPatch::new().with(hop),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert_eq!(a.decisions[0].outcome, Outcome::Confirmed);
        assert!(!a.push);
        assert_eq!(task.sync[&Field::Status].sent.len(), 1);
    }

    #[test]
    fn a_generic_status_echoed_under_the_providers_name_is_confirmed() {
        // The echo overtook the push's outcome: matched by category.
        let (mut task, policy) = pushed_done(&PushOutcome::default());
        let done = FieldPatch::new().with(status(StatusCategory::Done, "Completed"));
        let a = apply_remote(&mut task, &done, &SourceVersion::new(2, "e2"), &policy);
        assert_eq!(a.decisions[0].outcome, Outcome::Confirmed);
        assert!(task.sync[&Field::Status].sent.is_empty());
        // A named request is not matched by category.
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let first = FieldPatch::new().with(status(StatusCategory::Todo, "To Do"));
        apply_remote(&mut task, &first, &SourceVersion::new(1, "e1"), &policy);
        let want = FieldPatch::new().with(status(StatusCategory::Done, "Shipped"));
        apply_local(&mut task, &want, &policy, ActionId::new());
        let pushed = begin_push(&mut task, &policy, |_| None);
        finish_push(&mut task, &pushed, &PushOutcome::default(), &[], &policy);
        let other = FieldPatch::new().with(status(StatusCategory::Done, "Won't Do"));
        let a = apply_remote(&mut task, &other, &SourceVersion::new(2, "e2"), &policy);
        assert_eq!(a.decisions[0].outcome, Outcome::Conflict);
    }

    /// Where CollabHub owns the status, a hop of our push confirms it but leaves our value.
    #[test]
    fn a_hop_leaves_a_collabhub_owned_status_as_it_is() {
        let policy = FieldPolicy::default().merged(&std::collections::BTreeMap::from([(
            Field::Status,
            FieldRule {
                owner: Owner::Host,
                direction: Direction::Both,
            },
        )]));
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let first = FieldPatch::new().with(status(StatusCategory::Todo, "To Do"));
        apply_remote(&mut task, &first, &SourceVersion::new(1, "e1"), &policy);
        let want = FieldPatch::new().with(status(StatusCategory::Done, "Done"));
        apply_local(&mut task, &want, &policy, ActionId::new());
        let pushed = begin_push(&mut task, &policy, |_| None);
        let hop = status(StatusCategory::InProgress, "In Progress");
        expect_passes(&mut task, &pushed, std::slice::from_ref(&hop));
        let a = apply_remote(
            &mut task,
            &FieldPatch::new().with(hop),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert_eq!(a.decisions[0].outcome, Outcome::Confirmed);
        assert_eq!(task.fields.status.name, "Done", "ours, not the hop");
        assert_eq!(a.decisions[0].after, status(StatusCategory::Done, "Done"));
    }

    /// A field's first sync imports the provider's exact form of a value equal to ours up
    /// to its notion of sameness (trailing space), and decides nothing when it is identical.
    #[test]
    fn a_first_sight_takes_the_providers_exact_form() {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        task.fields.title = "Fix".into();
        let a = apply_remote(
            &mut task,
            &title("Fix"),
            &SourceVersion::new(1, "e1"),
            &policy,
        );
        assert!(a.decisions.is_empty(), "identical: {:?}", a.decisions);
        assert_eq!(
            task.sync[&Field::Title].base,
            Some(FieldValue::Title("Fix".into()))
        );

        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        task.fields.title = "Fix".into();
        let a = apply_remote(
            &mut task,
            &title("Fix  "),
            &SourceVersion::new(1, "e1"),
            &policy,
        );
        assert_eq!(a.decisions.len(), 1);
        assert_eq!(a.decisions[0].outcome, Outcome::Applied);
        assert_eq!(a.decisions[0].reason, "initial import");
        assert_eq!(task.fields.title, "Fix  ");

        // Not a first sight (synced before): a same-but-not-identical value changes nothing.
        let a = apply_remote(
            &mut task,
            &title("Fix "),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert!(a.decisions.is_empty(), "{:?}", a.decisions);
        assert_eq!(task.fields.title, "Fix  ");
    }

    /// The echo form a provider names is recorded with the pushed value, unless it is the
    /// value itself.
    #[test]
    fn begin_push_records_a_differing_echo_form_only() {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let d = |t: &str| FieldValue::Description(t.into());
        apply_local(
            &mut task,
            &FieldPatch::new()
                .with(d("_a_"))
                .with(FieldValue::Title("t".into())),
            &policy,
            ActionId::new(),
        );
        let pushed = begin_push(&mut task, &policy, |v| match v {
            FieldValue::Description(_) => Some(d("*a*")),
            other => Some(other.clone()),
        });
        let by_field = |f: Field| pushed.iter().find(|i| i.value.field() == f).unwrap();
        assert_eq!(by_field(Field::Description).echo_as, vec![d("*a*")]);
        assert!(
            by_field(Field::Title).echo_as.is_empty(),
            "the same form is not recorded"
        );
        assert_eq!(
            task.sync[&Field::Description].sent[0].echo_as,
            vec![d("*a*")]
        );
    }

    /// `finish_push` records what the provider said on the very intent it answers: among
    /// sent values sharing an action (a re-push reuses its action), the one with this value;
    /// the echo forms and passes of this field only, each once; and the task is to be written.
    #[test]
    fn finish_push_records_on_the_intent_it_answers() {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let action = ActionId::new();
        let (a, b) = (
            status(StatusCategory::InProgress, "Doing"),
            status(StatusCategory::Done, "Done"),
        );
        let st = task.sync.entry(Field::Status).or_default();
        st.record_sent(Intent::new(a.clone(), action));
        st.record_sent(Intent::new(b.clone(), action));
        let pushed = vec![Intent::new(b.clone(), action)];
        let closed = status(StatusCategory::Done, "Closed");
        let hop = status(StatusCategory::InProgress, "Review");
        let outcome = PushOutcome {
            applied: vec![Field::Status],
            echo_as: vec![
                closed.clone(),
                closed.clone(),
                FieldValue::Title("x".into()),
            ],
            passed_through: vec![hop.clone(), hop.clone(), FieldValue::Title("y".into())],
            ..PushOutcome::default()
        };
        let out = finish_push(&mut task, &pushed, &outcome, &[], &policy);
        assert!(out.dirty, "the task's sync state changed");
        let sent = &task.sync[&Field::Status].sent;
        assert_eq!(sent.len(), 2);
        assert!(!sent[0].acked && sent[0].echo_as.is_empty() && sent[0].passes.is_empty());
        assert!(sent[1].acked);
        assert_eq!(sent[1].echo_as, vec![closed]);
        assert_eq!(sent[1].passes, vec![hop.clone()]);

        // expect_passes picks the same intent.
        let mut task2 = Task::new(WorkspaceId::new("ws").unwrap());
        let st = task2.sync.entry(Field::Status).or_default();
        st.record_sent(Intent::new(a, action));
        st.record_sent(Intent::new(b, action));
        assert!(expect_passes(
            &mut task2,
            &pushed,
            std::slice::from_ref(&hop)
        ));
        let sent = &task2.sync[&Field::Status].sent;
        assert!(sent[0].passes.is_empty());
        assert_eq!(sent[1].passes, vec![hop]);
    }

    /// A push the provider already held settles at once in the provider's form: taken as the
    /// value where nothing newer is pending or the provider owns the field; where CollabHub
    /// owns it and changed it again meanwhile, the newer change stays.
    #[test]
    fn a_settled_push_takes_the_providers_form_unless_a_newer_change_waits() {
        let d = |t: &str| FieldValue::Description(t.into());
        let policy = FieldPolicy::default(); // CollabHub owns the description
        let settled = PushOutcome {
            settled: vec![Field::Description],
            ..PushOutcome::default()
        };
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        apply_local(
            &mut task,
            &FieldPatch::new().with(d("_a_")),
            &policy,
            ActionId::new(),
        );
        let pushed = begin_push(&mut task, &policy, |_| Some(d("*a*")));
        let out = finish_push(&mut task, &pushed, &settled, &[], &policy);
        assert_eq!(out.decisions[0].outcome, Outcome::Confirmed);
        assert_eq!(task.fields.description, "*a*", "the provider's form");
        assert_eq!(task.sync[&Field::Description].base, Some(d("*a*")));

        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        apply_local(
            &mut task,
            &FieldPatch::new().with(d("_a_")),
            &policy,
            ActionId::new(),
        );
        let pushed = begin_push(&mut task, &policy, |_| Some(d("*a*")));
        apply_local(
            &mut task,
            &FieldPatch::new().with(d("newer")),
            &policy,
            ActionId::new(),
        );
        finish_push(&mut task, &pushed, &settled, &[], &policy);
        assert_eq!(task.fields.description, "newer");

        // The provider owns the status: its form is taken although a request waits.
        let st = |n: &str| status(StatusCategory::Done, n);
        let settled = PushOutcome {
            settled: vec![Field::Status],
            ..PushOutcome::default()
        };
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        apply_remote(
            &mut task,
            &FieldPatch::new().with(status(StatusCategory::Todo, "To Do")),
            &SourceVersion::new(1, "e1"),
            &policy,
        );
        apply_local(
            &mut task,
            &FieldPatch::new().with(st("Done")),
            &policy,
            ActionId::new(),
        );
        let pushed = begin_push(&mut task, &policy, |_| Some(st("Closed")));
        let later = FieldPatch::new().with(status(StatusCategory::InProgress, "Doing"));
        apply_local(&mut task, &later, &policy, ActionId::new());
        finish_push(&mut task, &pushed, &settled, &[], &policy);
        assert_eq!(task.fields.status.name, "Closed");
    }

    /// After our push is echoed in the provider's form of the value, a later provider change
    /// is a provider change, not a conflict: the echo left nothing pending locally.
    #[test]
    fn after_an_echo_in_another_form_a_provider_change_flows_in() {
        let d = |t: &str| FieldValue::Description(t.into());
        let (mut task, policy, pushed) = description_pushed_in_another_form();
        let applied = PushOutcome {
            applied: vec![Field::Description],
            ..PushOutcome::default()
        };
        finish_push(&mut task, &pushed, &applied, &[], &policy);
        let echo = apply_remote(
            &mut task,
            &FieldPatch::new().with(d("*a*")),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert_eq!(echo.decisions[0].outcome, Outcome::Confirmed);
        let later = apply_remote(
            &mut task,
            &FieldPatch::new().with(d("theirs")),
            &SourceVersion::new(3, "e3"),
            &policy,
        );
        assert_eq!(
            later.decisions[0].outcome,
            Outcome::Applied,
            "{:?}",
            later.decisions
        );
        assert!(!later.push);
        assert_eq!(task.fields.description, "theirs");
    }

    /// A provider change to a field whose changes may not flow in is reverted: CollabHub's
    /// value stays and is pushed back.
    #[test]
    fn an_outbound_only_field_reverts_a_provider_change() {
        let policy =
            FieldPolicy::default().with(Field::Title, Owner::Host, Direction::OutboundOnly);
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        apply_remote(
            &mut task,
            &title("ours"),
            &SourceVersion::new(1, "e1"),
            &policy,
        );
        let a = apply_remote(
            &mut task,
            &title("theirs"),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert_eq!(a.decisions[0].outcome, Outcome::Reverted);
        assert!(a.push);
        assert_eq!(task.fields.title, "ours");
        assert_eq!(
            task.sync[&Field::Title].want.as_ref().map(|w| &w.value),
            Some(&FieldValue::Title("ours".into()))
        );
    }

    /// An echo that arrives while another change of the field waits confirms its push but
    /// does not replace the value, even when the waiting change is back to the pushed one.
    #[test]
    fn an_echo_leaves_the_value_while_a_change_waits() {
        let d = |t: &str| FieldValue::Description(t.into());
        let (mut task, policy, _) = description_pushed_in_another_form();
        apply_local(
            &mut task,
            &FieldPatch::new().with(d("b")),
            &policy,
            ActionId::new(),
        );
        apply_local(
            &mut task,
            &FieldPatch::new().with(d("_a_")),
            &policy,
            ActionId::new(),
        );
        let echo = apply_remote(
            &mut task,
            &FieldPatch::new().with(d("*a*")),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert_eq!(echo.decisions[0].outcome, Outcome::Confirmed);
        assert_eq!(
            task.fields.description, "_a_",
            "the waiting change keeps its form"
        );
        assert!(task.sync[&Field::Description].want.is_some());
    }

    /// A task whose description, synced at "start", was changed to `_a_` in CollabHub
    /// (which owns it by default) and pushed; the provider will report it as `*a*`.
    fn description_pushed_in_another_form() -> (Task, FieldPolicy, Vec<Intent>) {
        let d = |t: &str| FieldValue::Description(t.into());
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let start = FieldPatch::new().with(d("start"));
        apply_remote(&mut task, &start, &SourceVersion::new(1, "e1"), &policy);
        apply_local(
            &mut task,
            &FieldPatch::new().with(d("_a_")),
            &policy,
            ActionId::new(),
        );
        let pushed = begin_push(&mut task, &policy, |_| Some(d("*a*")));
        (task, policy, pushed)
    }

    fn title(t: &str) -> FieldPatch {
        FieldPatch::new().with(FieldValue::Title(t.into()))
    }

    /// A redelivery at the version already stored is a no-op even when it carries another
    /// value: only a strictly newer version changes a field.
    #[test]
    fn an_equal_version_with_another_value_changes_nothing() {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let v = SourceVersion::new(10, "e10");
        apply_remote(&mut task, &title("first"), &v, &policy);
        assert_eq!(task.fields.title, "first");
        let a = apply_remote(&mut task, &title("other"), &v.clone(), &policy);
        assert_eq!(a, Applied::default(), "nothing decided, nothing to write");
        assert_eq!(task.fields.title, "first");
        assert_eq!(
            task.sync[&Field::Title].base,
            Some(FieldValue::Title("first".into()))
        );
        // An older version is a no-op too; a newer one applies.
        let a = apply_remote(
            &mut task,
            &title("older"),
            &SourceVersion::new(9, "e9"),
            &policy,
        );
        assert!(a.decisions.is_empty());
        let a = apply_remote(
            &mut task,
            &title("newer"),
            &SourceVersion::new(10, "e11"),
            &policy,
        );
        assert_eq!(a.decisions[0].outcome, Outcome::Applied);
        assert_eq!(task.fields.title, "newer");
    }

    /// The echo of an earlier push, arriving while a newer CollabHub edit waits to be pushed,
    /// confirms the earlier push only: the newer edit stays the value and is still pushed.
    #[test]
    fn an_older_echo_does_not_overwrite_a_newer_pending_edit() {
        let policy = FieldPolicy::default(); // CollabHub owns the title
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        apply_remote(
            &mut task,
            &title("start"),
            &SourceVersion::new(1, "e1"),
            &policy,
        );
        let first = ActionId::new();
        apply_local(&mut task, &title("A"), &policy, first);
        let pushed = begin_push(&mut task, &policy, |_| None);
        let applied = PushOutcome {
            applied: vec![Field::Title],
            ..PushOutcome::default()
        };
        finish_push(&mut task, &pushed, &applied, &[], &policy);
        let second = ActionId::new();
        let a = apply_local(&mut task, &title("B"), &policy, second);
        assert!(a.push);

        let echo = apply_remote(
            &mut task,
            &title("A"),
            &SourceVersion::new(2, "e2"),
            &policy,
        );
        assert_eq!(echo.decisions.len(), 1);
        let d = &echo.decisions[0];
        assert_eq!(d.outcome, Outcome::Confirmed);
        assert_eq!(d.echo_of, Some(first));
        assert_eq!(
            d.after,
            FieldValue::Title("B".into()),
            "the newer edit stays"
        );
        assert_eq!(task.fields.title, "B");
        let st = &task.sync[&Field::Title];
        assert!(st.sent.is_empty(), "the first push is confirmed");
        assert_eq!(
            st.want.as_ref().map(|w| (&w.value, w.action)),
            Some((&FieldValue::Title("B".into()), second))
        );
        let next = begin_push(&mut task, &policy, |_| None);
        assert_eq!(
            next.iter().map(|i| &i.value).collect::<Vec<_>>(),
            [&FieldValue::Title("B".into())]
        );

        // The same with a pushed-but-unechoed newer edit: the older echo leaves it awaited.
        let later = apply_remote(
            &mut task,
            &title("A"),
            &SourceVersion::new(3, "e3"),
            &policy,
        );
        assert_eq!(task.fields.title, "B");
        assert!(later.decisions.is_empty(), "{:?}", later.decisions);
        assert!(
            task.sync[&Field::Title].locally_pending(),
            "B is still awaited"
        );
    }

    #[test]
    fn a_value_the_provider_already_held_is_confirmed_at_once() {
        let policy = FieldPolicy::default();
        let mut task = Task::new(WorkspaceId::new("ws").unwrap());
        let want = FieldPatch::new().with(FieldValue::Description("a".into()));
        apply_local(&mut task, &want, &policy, ActionId::new());
        let pushed = begin_push(&mut task, &policy, |_| None);
        let outcome = PushOutcome {
            settled: vec![Field::Description],
            ..PushOutcome::default()
        };
        let a = finish_push(&mut task, &pushed, &outcome, &[], &policy);
        assert_eq!(a.decisions[0].outcome, Outcome::Confirmed);
        assert!(!task.has_unpushed_changes());
        assert!(task.sync[&Field::Description].sent.is_empty());
    }
}
