//! Shared by the `vera_*` tests (included with `#[path]`): deterministic ledger drafts and a
//! minimal in-memory `Ledger`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use ordonis_core::ledger::{Ledger, LedgerDraft, LedgerEntry, StoredCheckpoint};
use ordonis_core::{
    Actor, ActorKind, Assignee, Cause, CauseKind, Evidence, ExternalRef, Field, FieldValue,
    IntegrationId, Op, Outcome, Principal, Priority, PriorityLevel, ProviderKind, Status,
    StatusCategory, StoreError, TaskId, WorkspaceId,
};
use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;

/// Strings that stress the encoder: controls, DEL, line separators, NFC/NFD, astral, BOM.
pub const TRICKY: &[&str] = &[
    "",
    "plain ascii",
    "quote \" backslash \\ slash /",
    "\u{0}\u{1}\u{7}\u{8}\t\n\u{b}\u{c}\r\u{e}\u{1f}",
    "del \u{7f} and c1 \u{80}\u{9f}",
    "line sep \u{2028} para sep \u{2029}",
    "caf\u{e9} (NFC)",
    "cafe\u{301} (NFD)",
    "astral \u{1f600} \u{1d11e} \u{10ffff}",
    "\u{feff}bom first",
    "mixed \u{5f8}\u{4e2d}\u{6587} \u{202e}rtl",
    "<script>&amp;</script>",
    "%2F and + and ~",
];

pub fn ws(name: &str) -> WorkspaceId {
    WorkspaceId::new(name).unwrap()
}

pub fn at(unix_micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_micros) * 1000).unwrap()
}

/// A tiny deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn value(rng: &mut Rng, field: Field) -> FieldValue {
    let s = (*rng.pick(TRICKY)).to_owned();
    match field {
        Field::Title => FieldValue::Title(s),
        Field::Description => FieldValue::Description(s),
        Field::Status => FieldValue::Status(Status::new(
            *rng.pick(&[
                StatusCategory::Todo,
                StatusCategory::InProgress,
                StatusCategory::Done,
            ]),
            s,
        )),
        Field::Assignee => FieldValue::Assignee(rng.chance(70).then(|| Assignee {
            account_id: format!("acct-{}", rng.below(1000)),
            display_name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
        })),
        Field::Priority => FieldValue::Priority(rng.chance(70).then(|| Priority {
            level: *rng.pick(&[
                PriorityLevel::Lowest,
                PriorityLevel::Low,
                PriorityLevel::Medium,
                PriorityLevel::High,
                PriorityLevel::Highest,
            ]),
            name: s,
        })),
        Field::DueDate => FieldValue::DueDate(rng.chance(70).then(|| {
            Date::from_calendar_date(
                1990 + rng.below(60) as i32,
                Month::try_from(1 + rng.below(12) as u8).unwrap(),
                1 + rng.below(28) as u8,
            )
            .unwrap()
        })),
    }
}

fn actor(rng: &mut Rng) -> Actor {
    match rng.below(5) {
        0 => Actor::human(format!("usr_{}", rng.below(100))).named("Grace Hopper"),
        1 => {
            let provider = if rng.chance(50) { "jira" } else { "asana" };
            Actor::provider_account(provider, "5b10ac8d82e05b22cc7d4ef5")
        }
        2 => {
            let mut chain = Vec::new();
            if rng.chance(50) {
                chain.push(Principal {
                    kind: ActorKind::Agent,
                    id: "agt_planner".into(),
                    grant: Some("dlg_9".into()),
                    display_name: None,
                });
            }
            chain.push(Principal {
                kind: ActorKind::Human,
                id: "usr_1".into(),
                grant: rng.chance(50).then(|| "asg_1".to_owned()),
                display_name: None,
            });
            Actor::agent(format!("agt_{}", rng.below(10)), chain)
        }
        3 => Actor::service("ordonis-sync"),
        _ => Actor::system(),
    }
}

/// A deterministic pseudo-random draft for a workspace.
pub fn draft(rng: &mut Rng, workspace: &WorkspaceId) -> LedgerDraft {
    let field = *rng.pick(&Field::ALL);
    let integration = IntegrationId(Uuid::from_u128(u128::from(rng.next()) << 64 | 7));
    let external = rng.chance(60).then(|| ExternalRef {
        integration_id: integration,
        provider: ProviderKind::new(*rng.pick(&["jira", "asana"])),
        key: ordonis_core::ObjectKey::new(format!("PROJ-{}", rng.below(10_000)), "issue"),
        url: rng
            .chance(50)
            .then(|| "https://acme.atlassian.net/browse/PROJ-1".to_owned()),
    });
    let op = *rng.pick(&[Op::Create, Op::Set, Op::Set, Op::Set, Op::Delete]);
    let cause_kind = *rng.pick(&[
        CauseKind::InboundEvent,
        CauseKind::InternalAction,
        CauseKind::Push,
        CauseKind::SyncEcho,
    ]);
    LedgerDraft {
        workspace_id: workspace.clone(),
        integration_id: rng.chance(70).then_some(integration),
        task_id: TaskId(Uuid::from_u128(u128::from(rng.next()) | 1 << 100)),
        external,
        op,
        field: (op == Op::Set).then_some(field),
        before: (op == Op::Set && rng.chance(80)).then(|| value(rng, field)),
        after: (op != Op::Delete).then(|| value(rng, field)),
        outcome: *rng.pick(&[
            Outcome::Applied,
            Outcome::Requested,
            Outcome::Confirmed,
            Outcome::Rejected,
            Outcome::Reverted,
            Outcome::Conflict,
        ]),
        rule: format!("owner=provider;direction=both;{}", rng.pick(TRICKY)),
        actor: actor(rng),
        cause: Cause {
            kind: cause_kind,
            id: Uuid::from_u128(u128::from(rng.next())).to_string(),
            delivery_id: rng
                .chance(50)
                .then(|| format!("dlv-{}", rng.below(1_000_000))),
            parent_action: (cause_kind == CauseKind::SyncEcho)
                .then(|| Uuid::from_u128(u128::from(rng.next())).to_string()),
            evidence: (cause_kind == CauseKind::InboundEvent).then(|| Evidence {
                auth: "hmac-sha256".into(),
                body_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                    .into(),
            }),
        },
        occurred_at: rng
            .chance(60)
            .then(|| at(1_780_000_000_000_000 + rng.below(1 << 40) as i64)),
        observed_at: at(1_780_000_000_000_000 + rng.below(1 << 40) as i64),
        comment: None,
        session: None,
    }
}

/// The record as the leaf keeps it: no display names or e-mails, microsecond times.
pub fn without_pii(d: &LedgerDraft) -> LedgerDraft {
    let mut d = d.clone();
    d.actor.display_name = None;
    for v in [&mut d.before, &mut d.after].into_iter().flatten() {
        if let FieldValue::Assignee(Some(a)) = v {
            a.display_name = None;
            a.email = None;
        }
    }
    fn trunc(t: OffsetDateTime) -> OffsetDateTime {
        t.replace_nanosecond(t.microsecond() * 1000).unwrap()
    }
    d.observed_at = trunc(d.observed_at);
    d.occurred_at = d.occurred_at.map(trunc);
    d
}

/// A minimal in-memory `Ledger` for the notary tests.
#[derive(Default)]
pub struct MemLedger {
    logs: Mutex<HashMap<WorkspaceId, Log>>,
}

/// One workspace's entries and checkpoints.
type Log = (Vec<LedgerEntry>, Vec<StoredCheckpoint>);

impl MemLedger {
    /// Appends a draft as the next entry of its workspace's log.
    pub fn append(&self, draft: LedgerDraft) -> LedgerEntry {
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(draft.workspace_id.clone()).or_default();
        let idx = log.0.len() as u64;
        let e = LedgerEntry::seal(draft, idx, at(1_790_000_000_000_000 + idx as i64 * 1000));
        log.0.push(e.clone());
        e
    }

    /// Replaces a stored entry (tampering with the store, for tests).
    pub fn overwrite(&self, ws: &WorkspaceId, idx: usize, e: LedgerEntry) {
        self.logs.lock().unwrap().get_mut(ws).unwrap().0[idx] = e;
    }

    /// Drops the last entries (tampering with the store, for tests).
    pub fn truncate(&self, ws: &WorkspaceId, len: usize) {
        self.logs
            .lock()
            .unwrap()
            .get_mut(ws)
            .unwrap()
            .0
            .truncate(len);
    }

    pub fn checkpoints(&self, ws: &WorkspaceId) -> Vec<StoredCheckpoint> {
        self.logs
            .lock()
            .unwrap()
            .get(ws)
            .map(|l| l.1.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Ledger for MemLedger {
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError> {
        Ok(self
            .logs
            .lock()
            .unwrap()
            .get(ws)
            .map_or(0, |l| l.0.len() as u64))
    }

    async fn ledger_entries(
        &self,
        ws: &WorkspaceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let logs = self.logs.lock().unwrap();
        Ok(logs
            .get(ws)
            .map(|l| {
                l.0.iter()
                    .skip(from as usize)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn task_ledger(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let logs = self.logs.lock().unwrap();
        Ok(logs
            .get(ws)
            .map(|l| {
                l.0.iter()
                    .filter(|e| e.record.task_id == task)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn save_checkpoint(
        &self,
        ws: &WorkspaceId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(ws.clone()).or_default();
        if log.1.iter().any(|c| c.size == checkpoint.size) {
            return Err(StoreError::Conflict(
                "checkpoint of this size exists".into(),
            ));
        }
        log.1.push(checkpoint.clone());
        Ok(())
    }

    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let logs = self.logs.lock().unwrap();
        Ok(logs
            .get(ws)
            .and_then(|l| l.1.iter().max_by_key(|c| c.size).cloned()))
    }

    // The notary tests keep no cosignatures.
    async fn add_cosignature(
        &self,
        _ws: &WorkspaceId,
        _size: u64,
        _witness: &str,
        _line: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn cosignatures(&self, _ws: &WorkspaceId, _size: u64) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}
