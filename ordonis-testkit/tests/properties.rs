//! Property tests over `MemoryStore` + `FakeProvider`:
//! - convergence: random remote and internal edits, every webhook delivered 1–3 times in
//!   shuffled order to 4 concurrent workers, end in the state the field policy says, and the
//!   ledger's change entries replay exactly to the final task;
//! - no echo: internal changes and their echoes drain the outbox, and the pushes equal the
//!   distinct intended changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use ordonis_core::StoreExt;
use ordonis_core::{
    Actor, Assignee, Direction, Field, FieldPatch, FieldPolicy, FieldValue, Ledger, Op, Outcome,
    Owner, Priority, PriorityLevel, Status, StatusCategory, Task, TaskFields,
};
use ordonis_testkit::harness::Setup;
use proptest::prelude::*;
use rand::SeedableRng;

const OBJ: &str = "OBJ-1";

/// A value for a field, unique per tag (so no two edits coincide by accident).
fn value(field: Field, tag: &str) -> FieldValue {
    match field {
        Field::Title => FieldValue::Title(format!("title {tag}")),
        Field::Description => FieldValue::Description(format!("text {tag}")),
        Field::Status => {
            FieldValue::Status(Status::new(StatusCategory::InProgress, format!("S {tag}")))
        }
        Field::Assignee => FieldValue::Assignee(Some(Assignee {
            account_id: format!("acct-{tag}"),
            display_name: None,
            email: None,
        })),
        Field::Priority => FieldValue::Priority(Some(Priority {
            level: PriorityLevel::High,
            name: format!("P {tag}"),
        })),
        Field::DueDate => {
            // A distinct day per tag: v0, r<i>, l<i>, b<b>e<i>.
            let num = |s: &str| s.parse::<u16>().unwrap();
            let day = match tag.as_bytes()[0] {
                b'v' => 1,
                b'r' => 10 + num(&tag[1..]),
                b'l' => 40 + num(&tag[1..]),
                _ => {
                    let (b, e) = tag[1..].split_once('e').unwrap();
                    70 + num(b) * 10 + num(e)
                }
            };
            FieldValue::DueDate(Some(time::Date::from_ordinal_date(2030, day).unwrap()))
        }
    }
}

fn initial() -> FieldPatch {
    Field::ALL.iter().map(|f| value(*f, "v0")).collect()
}

fn field_strategy() -> impl Strategy<Value = Field> {
    prop::sample::select(Field::ALL.to_vec())
}

fn policy_strategy() -> impl Strategy<Value = FieldPolicy> {
    let owner = prop_oneof![Just(Owner::Provider), Just(Owner::Host)];
    let dir = prop_oneof![
        4 => Just(Direction::Both),
        1 => Just(Direction::InboundOnly),
        1 => Just(Direction::OutboundOnly),
        1 => Just(Direction::Off),
    ];
    prop::collection::vec((owner, dir), 6).prop_map(|rules| {
        let mut p = FieldPolicy::default();
        for (f, (o, d)) in Field::ALL.iter().zip(rules) {
            // Provider-owned outbound-only is refused by validation.
            let o = if d == Direction::OutboundOnly {
                Owner::Host
            } else {
                o
            };
            p = p.with(*f, o, d);
        }
        p
    })
}

#[derive(Clone, Debug)]
enum Edit {
    Remote(Field),
    Local(Field),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        field_strategy().prop_map(Edit::Remote),
        field_strategy().prop_map(Edit::Local),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn the_task(s: &Setup) -> Task {
    let tasks = s.store.all_tasks(&s.workspace).await.unwrap();
    assert_eq!(tasks.len(), 1, "exactly one task for the object");
    tasks.into_iter().next().unwrap()
}

/// The ledger's change entries, replayed from empty fields, must give the task's fields, and
/// each must start from the value the previous one left.
async fn assert_ledger_replays(s: &Setup, task: &Task) {
    let entries = s.store.task_ledger(&s.workspace, task.id).await.unwrap();
    assert_eq!(
        entries.iter().filter(|e| e.record.op == Op::Create).count(),
        1
    );
    let mut fields = TaskFields::default();
    for e in &entries {
        let r = &e.record;
        let (Some(before), Some(after)) = (&r.before, &r.after) else {
            continue;
        };
        let changes = matches!(
            r.outcome,
            Outcome::Applied | Outcome::Confirmed | Outcome::Conflict
        ) && !before.same_as(after);
        if changes {
            let f = after.field();
            assert!(
                fields.get(f).same_as(before),
                "entry {} ({:?} {f}) starts from {before:?} but the value was {:?}",
                e.idx,
                r.outcome,
                fields.get(f)
            );
            fields.set(after.clone());
        }
    }
    for f in Field::ALL {
        assert!(
            fields.get(f).same_as(&task.fields.get(f)),
            "ledger replay of {f} gives {:?}, task has {:?}",
            fields.get(f),
            task.fields.get(f)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn convergence(policy in policy_strategy(), edits in prop::collection::vec(edit_strategy(), 0..16), seed in any::<u64>(), snapshots in any::<bool>()) {
        let rt = runtime();
        rt.block_on(async {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let fake = ordonis_testkit::FakeProvider::with_options(
                ordonis_testkit::harness::SECRET,
                ordonis_testkit::FakeOptions { snapshots, handshake: false },
            );
            let s = Setup::with_fake(&policy, fake).await;
            s.fake.remote_create(OBJ, &initial(), "alice");
            s.settle(4, 3, &mut rng).await;
            let task = the_task(&s).await;
            for f in Field::ALL {
                if policy.rule(f).direction != Direction::Off {
                    assert!(task.fields.get(f).same_as(&value(f, "v0")), "initial {f}");
                }
            }

            // Both sides edit before either sees the other's edits.
            let mut last_remote: BTreeMap<Field, FieldValue> = BTreeMap::new();
            let mut last_local: BTreeMap<Field, FieldValue> = BTreeMap::new();
            for (i, e) in edits.iter().enumerate() {
                match e {
                    Edit::Remote(f) => {
                        let v = value(*f, &format!("r{i}"));
                        s.fake.remote_edit(OBJ, v.clone(), "bob");
                        last_remote.insert(*f, v);
                    }
                    Edit::Local(f) => {
                        let v = value(*f, &format!("l{i}"));
                        let patch = FieldPatch::new().with(v.clone());
                        s.engine.change_task(&s.workspace, task.id, &Actor::human("carol"), &patch).await.unwrap();
                        last_local.insert(*f, v);
                    }
                }
            }
            s.settle(4, 3, &mut rng).await;

            let task = the_task(&s).await;
            let remote = s.fake.remote(OBJ).unwrap();
            for f in Field::ALL {
                let rule = policy.rule(f);
                let v0 = value(f, "v0");
                let r = last_remote.get(&f);
                let l = last_local.get(&f);
                let (want_local, want_remote) = match (rule.direction, r, l) {
                    (Direction::Off, _, _) => (l.cloned().unwrap_or_else(|| TaskFields::default().get(f)), r.unwrap_or(&v0).clone()),
                    (_, None, None) => (v0.clone(), v0.clone()),
                    (d, Some(r), None) => if d.inbound() { (r.clone(), r.clone()) } else { (v0.clone(), v0.clone()) },
                    (Direction::InboundOnly, r, Some(l)) => match (rule.owner, r) {
                        (Owner::Provider, r) => (r.unwrap_or(&v0).clone(), r.unwrap_or(&v0).clone()),
                        (Owner::Host, r) => (l.clone(), r.unwrap_or(&v0).clone()),
                    },
                    (Direction::OutboundOnly, _, Some(l)) => (l.clone(), l.clone()),
                    (_, None, Some(l)) => (l.clone(), l.clone()),
                    (_, Some(r), Some(l)) => match rule.owner {
                        Owner::Provider => (r.clone(), r.clone()),
                        Owner::Host => (l.clone(), l.clone()),
                    },
                };
                let got = task.fields.get(f);
                if !got.same_as(&want_local) {
                    let log: Vec<String> = s.store.task_ledger(&s.workspace, task.id).await.unwrap().iter()
                        .filter(|e| e.record.field == Some(f))
                        .map(|e| format!("{:?} {:?}->{:?} {} {:?}", e.record.outcome, e.record.before, e.record.after, e.record.rule, e.record.cause.kind)).collect();
                    panic!("{f} ({rule}): task has {got:?}, policy says {want_local:?}; remote edit {r:?}, local edit {l:?}\nsync {:?}\nledger:\n{}\npushes {:?}", task.sync.get(&f), log.join("\n"), s.fake.pushes());
                }
                let got_remote = remote.get(f).cloned().unwrap_or(v0.clone());
                assert!(got_remote.same_as(&want_remote), "{f} ({rule}): provider has {got_remote:?}, policy says {want_remote:?}");
            }
            assert!(!task.has_unpushed_changes());
            assert_eq!(s.outstanding().await, 0);
            assert_ledger_replays(&s, &task).await;
        });
    }

    #[test]
    fn no_echo(batches in prop::collection::vec(prop::collection::vec((field_strategy(), any::<bool>()), 0..5), 1..6), seed in any::<u64>()) {
        let rt = runtime();
        rt.block_on(async {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let s = Setup::new(&FieldPolicy::default()).await;
            s.fake.remote_create(OBJ, &initial(), "alice");
            s.settle(4, 3, &mut rng).await;
            let task = the_task(&s).await;
            let mut current: BTreeMap<Field, FieldValue> = Field::ALL.iter().map(|f| (*f, value(*f, "v0"))).collect();
            let mut expected_values = 0;
            let mut expected_calls = 0;
            for (b, batch) in batches.iter().enumerate() {
                let mut intended: BTreeMap<Field, FieldValue> = BTreeMap::new();
                for (i, (f, same)) in batch.iter().enumerate() {
                    // `same`: set the field to the value it already has (must not push).
                    let v = if *same { intended.get(f).cloned().unwrap_or_else(|| current[f].clone()) } else { value(*f, &format!("b{b}e{i}")) };
                    s.engine.change_task(&s.workspace, task.id, &Actor::agent("agt-1", vec![ordonis_core::Principal { kind: ordonis_core::ActorKind::Human, id: "dave".into(), grant: None, display_name: None }]), &FieldPatch::new().with(v.clone())).await.unwrap();
                    intended.insert(*f, v);
                }
                let changed: Vec<Field> = intended.iter().filter(|(f, v)| !current[f].same_as(v)).map(|(f, _)| *f).collect();
                expected_values += changed.len();
                expected_calls += usize::from(!changed.is_empty());
                for (f, v) in intended {
                    current.insert(f, v);
                }
                s.settle(4, 3, &mut rng).await;
            }
            let pushes = s.fake.pushes();
            let pushed_values: usize = pushes.iter().map(|(_, p)| p.len()).sum();
            assert_eq!(pushed_values, expected_values, "pushed field values: {pushes:?}");
            assert_eq!(pushes.len(), expected_calls, "one coalesced push per batch with changes");
            assert_eq!(s.outstanding().await, 0, "outbox drained");
            let task = the_task(&s).await;
            let remote = s.fake.remote(OBJ).unwrap();
            for (f, v) in &current {
                assert!(task.fields.get(*f).same_as(v), "{f} in CollabHub");
                assert!(remote.get(*f).is_some_and(|r| r.same_as(v)), "{f} at the provider");
            }
            assert!(s.fake.take_deliveries().is_empty(), "no webhook left: the echoes started nothing");
            assert_ledger_replays(&s, &task).await;
        });
    }
}
