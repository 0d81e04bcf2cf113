//! VERA-JCS/1: the canonical encoding of ledger entries (see the [module docs](super) for the
//! profile and the schema).

use serde_json::{Map, Value};
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};
use uuid::Uuid;

use super::error::VeraError;
use super::merkle::leaf_hash;
use crate::actor::{Actor, ActorKind, Principal};
use crate::ids::{CommentId, IntegrationId, SessionId, TaskId, WorkspaceId};
use crate::ledger::{
    Cause, CauseKind, CommentRecord, Evidence, LedgerDraft, LedgerEntry, Op, Outcome, SessionRecord,
};
use crate::model::{
    Assignee, ExternalRef, Field, FieldValue, Priority, PriorityLevel, ProviderKind, Status,
    StatusCategory,
};
use crate::session::{ActivityContent, ActivityKind, Artifact, SessionState};

/// The `type` of a change entry.
pub const ENTRY_TYPE: &str = "vera.change/v1";

/// The prefix of every log name (checkpoint origin): `ordonis/ws/`.
pub const LOG_PREFIX: &str = "ordonis/ws/";

/// The largest integer the profile allows: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The largest entry [`decode_entry`] and the verifier accept, in bytes (1 MiB).
pub const MAX_ENTRY_BYTES: usize = 1 << 20;

/// The log name (and checkpoint origin) of a workspace: `ordonis/ws/` followed by the
/// workspace id percent-encoded: every byte outside `A-Z a-z 0-9 - . _ ~` becomes `%XX`
/// (upper-case hex). The result holds no space and no `+`, as signed-note key names require.
///
/// ```
/// use ordonis_core::{WorkspaceId, vera::log_name};
/// assert_eq!(log_name(&WorkspaceId::new("acme").unwrap()), "ordonis/ws/acme");
/// assert_eq!(log_name(&WorkspaceId::new("a b/c+é").unwrap()), "ordonis/ws/a%20b%2Fc%2B%C3%A9");
/// ```
pub fn log_name(ws: &WorkspaceId) -> String {
    let encoded = percent_encoding::utf8_percent_encode(ws.as_str(), UNRESERVED);
    format!("{LOG_PREFIX}{encoded}")
}

/// What [`log_name`] leaves as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The workspace a log name (checkpoint origin) belongs to; the inverse of [`log_name`].
/// Only the exact form [`log_name`] produces is accepted.
pub fn workspace_of_log(log: &str) -> Result<WorkspaceId, VeraError> {
    let bad = || VeraError::BadLogName(log.to_owned());
    let rest = log.strip_prefix(LOG_PREFIX).ok_or_else(bad)?;
    let id = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| bad())?;
    let ws = WorkspaceId::new(id.into_owned()).map_err(|_| bad())?;
    // Lower-case hex, needless escapes and stray `%` decode too: only the canonical form is
    // the log's name.
    if log_name(&ws) != log {
        return Err(bad());
    }
    Ok(ws)
}

// ---------------------------------------------------------------------------------------------
// Writer

/// A JSON object being written; keys must come in ascending byte order (checked in debug).
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last: "",
        }
    }

    fn key(&mut self, k: &'static str) -> &mut Vec<u8> {
        #[cfg(debug_assertions)]
        {
            debug_assert!(
                self.first || self.last < k,
                "keys out of order: {} {k}",
                self.last
            );
            self.last = k;
        }
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn str(&mut self, k: &'static str, v: &str) {
        write_str(self.key(k), v);
    }

    fn opt_str(&mut self, k: &'static str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }

    fn uint(&mut self, k: &'static str, v: u64) {
        let out = self.key(k);
        out.extend_from_slice(v.to_string().as_bytes());
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// Writes a JSON string with RFC 8785 escaping: `"` and `\` escaped, U+0008/09/0A/0C/0D as
/// `\b \t \n \f \r`, other C0 controls as `\u00xx` (lower-case hex), everything else as is.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `YYYY-MM-DD`, `-YYYY-MM-DD` before year 1 (`time`'s ISO 8601 calendar date).
fn fmt_date(d: Date) -> String {
    d.to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, microseconds (truncated).
fn fmt_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{}T{:02}:{:02}:{:02}.{:06}Z",
        fmt_date(t.date()),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

fn actor_kind_str(k: ActorKind) -> &'static str {
    match k {
        ActorKind::Human => "human",
        ActorKind::Agent => "agent",
        ActorKind::Service => "service",
        ActorKind::System => "system",
    }
}

fn op_str(o: Op) -> &'static str {
    match o {
        Op::Create => "create",
        Op::Set => "set",
        Op::Delete => "delete",
        Op::Restore => "restore",
        Op::Configure => "configure",
        Op::LeaveScope => "leave_scope",
        Op::EnterScope => "enter_scope",
        Op::CommentAdd => "comment_add",
        Op::CommentEdit => "comment_edit",
        Op::CommentDelete => "comment_delete",
        Op::SessionStart => "session_start",
        Op::SessionActivity => "session_activity",
        Op::SessionState => "session_state",
        Op::SessionArtifact => "session_artifact",
        Op::Link => "link",
        Op::Unlink => "unlink",
    }
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Applied => "applied",
        Outcome::Requested => "requested",
        Outcome::Confirmed => "confirmed",
        Outcome::Rejected => "rejected",
        Outcome::Reverted => "reverted",
        Outcome::Conflict => "conflict",
    }
}

fn cause_kind_str(k: CauseKind) -> &'static str {
    match k {
        CauseKind::InboundEvent => "inbound_event",
        CauseKind::InternalAction => "internal_action",
        CauseKind::Push => "push",
        CauseKind::SyncEcho => "sync_echo",
        CauseKind::Backfill => "backfill",
        CauseKind::Reconcile => "reconcile",
    }
}

fn category_str(c: StatusCategory) -> &'static str {
    match c {
        StatusCategory::Todo => "todo",
        StatusCategory::InProgress => "in_progress",
        StatusCategory::Done => "done",
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

fn write_actor(out: &mut Vec<u8>, a: &Actor) {
    // display_name is deliberately left out: no PII in the leaf.
    let mut o = Obj::new(out);
    o.opt_str("account", a.account.as_deref());
    o.str("id", &a.id);
    o.str("kind", actor_kind_str(a.kind));
    if !a.on_behalf_of.is_empty() {
        let out = o.key("on_behalf_of");
        out.push(b'[');
        for (i, p) in a.on_behalf_of.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut po = Obj::new(out);
            po.opt_str("grant", p.grant.as_deref());
            po.str("id", &p.id);
            po.str("kind", actor_kind_str(p.kind));
            po.end();
        }
        out.push(b']');
    }
    o.str("provider", &a.provider);
    o.end();
}

fn write_cause(out: &mut Vec<u8>, c: &Cause) {
    let mut o = Obj::new(out);
    o.opt_str("delivery_id", c.delivery_id.as_deref());
    if let Some(e) = &c.evidence {
        let mut eo = Obj::new(o.key("evidence"));
        eo.str("auth", &e.auth);
        eo.str("body_sha256", &e.body_sha256);
        eo.end();
    }
    o.str("id", &c.id);
    o.str("kind", cause_kind_str(c.kind));
    o.opt_str("parent_action", c.parent_action.as_deref());
    o.end();
}

fn write_value(out: &mut Vec<u8>, v: &FieldValue) {
    let mut o = Obj::new(out);
    o.str("field", v.field().as_str());
    match v {
        FieldValue::Title(s) | FieldValue::Description(s) => {
            o.str("t", "str");
            o.str("v", s);
        }
        FieldValue::Status(s) => {
            o.str("t", "status");
            let mut so = Obj::new(o.key("v"));
            so.str("category", category_str(s.category));
            so.str("name", &s.name);
            so.end();
        }
        // display name and e-mail are deliberately left out: no PII in the leaf.
        FieldValue::Assignee(Some(a)) => {
            o.str("t", "user");
            o.str("v", &a.account_id);
        }
        FieldValue::Priority(Some(p)) => {
            o.str("t", "priority");
            let mut po = Obj::new(o.key("v"));
            po.str("level", level_str(p.level));
            po.str("name", &p.name);
            po.end();
        }
        FieldValue::DueDate(Some(d)) => {
            o.str("t", "date");
            o.str("v", &fmt_date(*d));
        }
        FieldValue::Assignee(None) | FieldValue::Priority(None) | FieldValue::DueDate(None) => {
            o.str("t", "none");
        }
    }
    o.end();
}

fn write_session(out: &mut Vec<u8>, sr: &SessionRecord) {
    let mut o = Obj::new(out);
    if let Some((id, a)) = &sr.activity {
        let mut ao = Obj::new(o.key("activity"));
        ao.opt_str("action", a.action.as_deref());
        ao.opt_str("body", a.body.as_deref());
        ao.str("id", id);
        ao.opt_str("parameter", a.parameter.as_deref());
        ao.opt_str("result", a.result.as_deref());
        ao.str("type", a.kind.as_str());
        ao.end();
    }
    if let Some(a) = &sr.artifact {
        let mut ao = Obj::new(o.key("artifact"));
        ao.str("id", &a.id.to_string());
        ao.opt_str("kind", a.kind.as_deref());
        ao.str("title", &a.title);
        ao.str("url", &a.url);
        ao.end();
    }
    o.str("id", &sr.id.to_string());
    if let Some(st) = sr.state {
        o.str("state", st.as_str());
    }
    o.end();
}

fn write_subject(out: &mut Vec<u8>, task: TaskId, ext: Option<&ExternalRef>) {
    let mut o = Obj::new(out);
    if let Some(x) = ext {
        let mut xo = Obj::new(o.key("external"));
        xo.str("id", &x.key.external_id);
        xo.str("integration", &x.integration_id.to_string());
        xo.str("object_type", &x.key.object_type);
        xo.str("provider", x.provider.as_str());
        xo.opt_str("url", x.url.as_deref());
        xo.end();
    }
    o.str("task", &task.to_string());
    o.end();
}

/// The canonical VERA-JCS/1 bytes of an entry (see the [module docs](super) for the schema).
///
/// Display names and e-mail addresses (of the actor and of an assignee) are not encoded.
/// `idx` must be at most [`MAX_SAFE_INTEGER`]; a larger one is encoded but
/// [`decode_entry`] and the verifier reject it. Times are truncated to microseconds.
pub fn encode_entry(record: &LedgerDraft, idx: u64, logged_at: OffsetDateTime) -> Vec<u8> {
    let mut out = Vec::with_capacity(640);
    let mut o = Obj::new(&mut out);
    write_actor(o.key("actor"), &record.actor);
    if let Some(v) = &record.after {
        write_value(o.key("after"), v);
    }
    if let Some(v) = &record.before {
        write_value(o.key("before"), v);
    }
    write_cause(o.key("cause"), &record.cause);
    if let Some(c) = &record.comment {
        let mut co = Obj::new(o.key("comment"));
        co.opt_str("body", c.body.as_deref());
        co.opt_str("external_id", c.external_id.as_deref());
        co.str("id", &c.id.to_string());
        co.end();
    }
    if let Some(f) = record.field {
        o.str("field", f.as_str());
    }
    o.uint("idx", idx);
    if let Some(i) = record.integration_id {
        o.str("integration", &i.to_string());
    }
    o.str("log", &log_name(&record.workspace_id));
    o.str("logged_at", &fmt_time(logged_at));
    o.str("observed_at", &fmt_time(record.observed_at));
    if let Some(t) = record.occurred_at {
        o.str("occurred_at", &fmt_time(t));
    }
    o.str("op", op_str(record.op));
    o.str("outcome", outcome_str(record.outcome));
    o.str("rule", &record.rule);
    if let Some(sr) = &record.session {
        write_session(o.key("session"), sr);
    }
    write_subject(o.key("subject"), record.task_id, record.external.as_ref());
    o.str("type", ENTRY_TYPE);
    o.end();
    out
}

impl LedgerEntry {
    /// Gives a draft its index and time and computes its canonical bytes ([`encode_entry`])
    /// and leaf hash.
    pub fn seal(record: LedgerDraft, idx: u64, logged_at: OffsetDateTime) -> Self {
        let bytes = encode_entry(&record, idx, logged_at);
        let leaf_hash = leaf_hash(&bytes);
        Self {
            idx,
            logged_at,
            record,
            bytes,
            leaf_hash,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reader

fn malformed(what: impl Into<String>) -> VeraError {
    VeraError::MalformedEntry(what.into())
}

/// A JSON object being read: every key must be taken, and none may be left over.
struct Reader<'a> {
    at: &'static str,
    map: &'a mut Map<String, Value>,
}

impl<'a> Reader<'a> {
    fn of(at: &'static str, v: &'a mut Value) -> Result<Self, VeraError> {
        match v {
            Value::Object(map) => Ok(Self { at, map }),
            _ => Err(malformed(format!("{at}: expected an object"))),
        }
    }

    fn take(&mut self, k: &str) -> Result<Value, VeraError> {
        self.map
            .remove(k)
            .ok_or_else(|| malformed(format!("{}: missing `{k}`", self.at)))
    }

    fn opt(&mut self, k: &str) -> Option<Value> {
        self.map.remove(k)
    }

    fn string(&mut self, k: &str) -> Result<String, VeraError> {
        let at = self.at;
        as_string(at, k, self.take(k)?)
    }

    fn opt_string(&mut self, k: &str) -> Result<Option<String>, VeraError> {
        let at = self.at;
        self.opt(k).map(|v| as_string(at, k, v)).transpose()
    }

    fn done(self) -> Result<(), VeraError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(malformed(format!("{}: unknown key `{k}`", self.at))),
        }
    }
}

fn as_string(at: &str, k: &str, v: Value) -> Result<String, VeraError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(malformed(format!("{at}.{k}: expected a string"))),
    }
}

fn parse_enum<T: Copy>(
    what: &str,
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, VeraError> {
    all.iter()
        .copied()
        .find(|&x| name(x) == s)
        .ok_or_else(|| malformed(format!("{what}: unknown value {s:?}")))
}

const ACTOR_KINDS: [ActorKind; 4] = [
    ActorKind::Human,
    ActorKind::Agent,
    ActorKind::Service,
    ActorKind::System,
];
const OPS: [Op; 16] = [
    Op::Create,
    Op::Set,
    Op::Delete,
    Op::Restore,
    Op::Configure,
    Op::LeaveScope,
    Op::EnterScope,
    Op::CommentAdd,
    Op::CommentEdit,
    Op::CommentDelete,
    Op::SessionStart,
    Op::SessionActivity,
    Op::SessionState,
    Op::SessionArtifact,
    Op::Link,
    Op::Unlink,
];
const OUTCOMES: [Outcome; 6] = [
    Outcome::Applied,
    Outcome::Requested,
    Outcome::Confirmed,
    Outcome::Rejected,
    Outcome::Reverted,
    Outcome::Conflict,
];
const CAUSE_KINDS: [CauseKind; 6] = [
    CauseKind::InboundEvent,
    CauseKind::InternalAction,
    CauseKind::Push,
    CauseKind::SyncEcho,
    CauseKind::Backfill,
    CauseKind::Reconcile,
];
const CATEGORIES: [StatusCategory; 3] = [
    StatusCategory::Todo,
    StatusCategory::InProgress,
    StatusCategory::Done,
];
const LEVELS: [PriorityLevel; 5] = [
    PriorityLevel::Lowest,
    PriorityLevel::Low,
    PriorityLevel::Medium,
    PriorityLevel::High,
    PriorityLevel::Highest,
];

fn parse_uuid(what: &str, s: &str) -> Result<Uuid, VeraError> {
    Uuid::parse_str(s).map_err(|_| malformed(format!("{what}: not a UUID")))
}

fn digits(what: &str, s: &str) -> Result<u32, VeraError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("{what}: expected digits")));
    }
    s.parse()
        .map_err(|_| malformed(format!("{what}: number out of range")))
}

fn parse_date(what: &str, s: &str) -> Result<Date, VeraError> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let parts: Vec<&str> = body.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(malformed(format!("{what}: expected YYYY-MM-DD")));
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(malformed(format!("{what}: expected YYYY-MM-DD")));
    }
    let y = i32::try_from(digits(what, y)?).map_err(|_| malformed(what.to_owned()))?;
    let y = if neg { -y } else { y };
    let m = u8::try_from(digits(what, m)?).map_err(|_| malformed(what.to_owned()))?;
    let m = Month::try_from(m).map_err(|_| malformed(format!("{what}: bad month")))?;
    let d = u8::try_from(digits(what, d)?).map_err(|_| malformed(what.to_owned()))?;
    Date::from_calendar_date(y, m, d).map_err(|_| malformed(format!("{what}: not a date")))
}

fn parse_time(what: &str, s: &str) -> Result<OffsetDateTime, VeraError> {
    let bad = || malformed(format!("{what}: expected YYYY-MM-DDTHH:MM:SS.ffffffZ"));
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let date = parse_date(what, date)?;
    let rest = rest.strip_suffix('Z').ok_or_else(bad)?;
    let b = rest.as_bytes();
    if b.len() != 15 || b[2] != b':' || b[5] != b':' || b[8] != b'.' {
        return Err(bad());
    }
    let h = u8::try_from(digits(what, &rest[0..2])?).map_err(|_| bad())?;
    let mi = u8::try_from(digits(what, &rest[3..5])?).map_err(|_| bad())?;
    let se = u8::try_from(digits(what, &rest[6..8])?).map_err(|_| bad())?;
    let us = digits(what, &rest[9..15])?;
    let t = Time::from_hms_micro(h, mi, se, us).map_err(|_| bad())?;
    Ok(date.with_time(t).assume_utc())
}

fn read_actor(mut v: Value) -> Result<Actor, VeraError> {
    let mut r = Reader::of("actor", &mut v)?;
    let account = r.opt_string("account")?;
    let id = r.string("id")?;
    let kind = parse_enum(
        "actor.kind",
        &r.string("kind")?,
        &ACTOR_KINDS,
        actor_kind_str,
    )?;
    let mut on_behalf_of = Vec::new();
    if let Some(chain) = r.opt("on_behalf_of") {
        let Value::Array(items) = chain else {
            return Err(malformed("actor.on_behalf_of: expected an array"));
        };
        for mut item in items {
            let mut pr = Reader::of("actor.on_behalf_of[]", &mut item)?;
            let grant = pr.opt_string("grant")?;
            let id = pr.string("id")?;
            let kind = parse_enum("principal.kind", &pr.string("kind")?, &ACTOR_KINDS, |k| {
                actor_kind_str(k)
            })?;
            pr.done()?;
            on_behalf_of.push(Principal {
                kind,
                id,
                grant,
                display_name: None,
            });
        }
    }
    let provider = r.string("provider")?;
    r.done()?;
    Ok(Actor {
        kind,
        id,
        display_name: None,
        provider,
        account,
        on_behalf_of,
    })
}

fn read_session(mut v: Value) -> Result<SessionRecord, VeraError> {
    let mut r = Reader::of("session", &mut v)?;
    let activity = match r.opt("activity") {
        None => None,
        Some(mut a) => {
            let mut ar = Reader::of("session.activity", &mut a)?;
            let action = ar.opt_string("action")?;
            let body = ar.opt_string("body")?;
            let id = ar.string("id")?;
            let parameter = ar.opt_string("parameter")?;
            let result = ar.opt_string("result")?;
            let kind = parse_enum(
                "session.activity.type",
                &ar.string("type")?,
                &ActivityKind::ALL,
                ActivityKind::as_str,
            )?;
            ar.done()?;
            Some((
                id,
                ActivityContent {
                    kind,
                    body,
                    action,
                    parameter,
                    result,
                },
            ))
        }
    };
    let artifact = match r.opt("artifact") {
        None => None,
        Some(mut a) => {
            let mut ar = Reader::of("session.artifact", &mut a)?;
            let id = parse_uuid("session.artifact.id", &ar.string("id")?)?;
            let kind = ar.opt_string("kind")?;
            let title = ar.string("title")?;
            let url = ar.string("url")?;
            ar.done()?;
            Some(Artifact {
                id,
                title,
                url,
                kind,
            })
        }
    };
    let id = SessionId(parse_uuid("session.id", &r.string("id")?)?);
    let state = r
        .opt_string("state")?
        .map(|s| {
            parse_enum(
                "session.state",
                &s,
                &SessionState::ALL,
                SessionState::as_str,
            )
        })
        .transpose()?;
    r.done()?;
    Ok(SessionRecord {
        id,
        state,
        activity,
        artifact,
    })
}

fn read_comment(mut v: Value) -> Result<CommentRecord, VeraError> {
    let mut r = Reader::of("comment", &mut v)?;
    let body = r.opt_string("body")?;
    let external_id = r.opt_string("external_id")?;
    let id = CommentId(parse_uuid("comment.id", &r.string("id")?)?);
    r.done()?;
    Ok(CommentRecord {
        id,
        external_id,
        body,
    })
}

fn read_cause(mut v: Value) -> Result<Cause, VeraError> {
    let mut r = Reader::of("cause", &mut v)?;
    let delivery_id = r.opt_string("delivery_id")?;
    let evidence = match r.opt("evidence") {
        None => None,
        Some(mut e) => {
            let mut er = Reader::of("cause.evidence", &mut e)?;
            let auth = er.string("auth")?;
            let body_sha256 = er.string("body_sha256")?;
            er.done()?;
            Some(Evidence { auth, body_sha256 })
        }
    };
    let id = r.string("id")?;
    let kind = parse_enum(
        "cause.kind",
        &r.string("kind")?,
        &CAUSE_KINDS,
        cause_kind_str,
    )?;
    let parent_action = r.opt_string("parent_action")?;
    r.done()?;
    Ok(Cause {
        kind,
        id,
        delivery_id,
        parent_action,
        evidence,
    })
}

fn read_value(at: &'static str, mut v: Value) -> Result<FieldValue, VeraError> {
    let mut r = Reader::of(at, &mut v)?;
    let field = parse_enum(
        "value.field",
        &r.string("field")?,
        &Field::ALL,
        Field::as_str,
    )?;
    let t = r.string("t")?;
    let bad_type = || malformed(format!("{at}: type {t:?} does not fit field {field}"));
    let value = match (field, t.as_str()) {
        (Field::Title, "str") => FieldValue::Title(r.string("v")?),
        (Field::Description, "str") => FieldValue::Description(r.string("v")?),
        (Field::Status, "status") => {
            let mut sv = r.take("v")?;
            let mut sr = Reader::of("status", &mut sv)?;
            let category = parse_enum(
                "status.category",
                &sr.string("category")?,
                &CATEGORIES,
                category_str,
            )?;
            let name = sr.string("name")?;
            sr.done()?;
            FieldValue::Status(Status { category, name })
        }
        (Field::Assignee, "user") => FieldValue::Assignee(Some(Assignee {
            account_id: r.string("v")?,
            display_name: None,
            email: None,
        })),
        (Field::Priority, "priority") => {
            let mut pv = r.take("v")?;
            let mut pr = Reader::of("priority", &mut pv)?;
            let level = parse_enum("priority.level", &pr.string("level")?, &LEVELS, level_str)?;
            let name = pr.string("name")?;
            pr.done()?;
            FieldValue::Priority(Some(Priority { level, name }))
        }
        (Field::DueDate, "date") => FieldValue::DueDate(Some(parse_date(at, &r.string("v")?)?)),
        (Field::Assignee, "none") => FieldValue::Assignee(None),
        (Field::Priority, "none") => FieldValue::Priority(None),
        (Field::DueDate, "none") => FieldValue::DueDate(None),
        _ => return Err(bad_type()),
    };
    r.done()?;
    Ok(value)
}

fn read_subject(mut v: Value) -> Result<(TaskId, Option<ExternalRef>), VeraError> {
    let mut r = Reader::of("subject", &mut v)?;
    let external = match r.opt("external") {
        None => None,
        Some(mut x) => {
            let mut xr = Reader::of("subject.external", &mut x)?;
            let external_id = xr.string("id")?;
            let integration_id = IntegrationId(parse_uuid(
                "external.integration",
                &xr.string("integration")?,
            )?);
            let object_type = xr.string("object_type")?;
            let provider = ProviderKind::new(xr.string("provider")?);
            let url = xr.opt_string("url")?;
            xr.done()?;
            Some(ExternalRef {
                integration_id,
                provider,
                key: crate::model::ObjectKey::new(external_id, object_type),
                url,
            })
        }
    };
    let task = TaskId(parse_uuid("subject.task", &r.string("task")?)?);
    r.done()?;
    Ok((task, external))
}

/// Parses canonical entry bytes back into a sealed [`LedgerEntry`], so a store may keep only
/// the bytes.
///
/// Accepts only the exact bytes [`encode_entry`] produces for what they hold: the parsed
/// record is re-encoded and must equal the input byte for byte, which rejects whitespace,
/// unsorted or duplicate keys, floats, other escapes and unknown keys
/// ([`VeraError::NonCanonical`]). The returned record has no display names or e-mails (they
/// are not in the leaf) and its times are at microsecond precision.
pub fn decode_entry(bytes: &[u8]) -> Result<LedgerEntry, VeraError> {
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(malformed(format!(
            "entry of {} bytes exceeds {MAX_ENTRY_BYTES}",
            bytes.len()
        )));
    }
    let mut v: Value =
        serde_json::from_slice(bytes).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let mut r = Reader::of("entry", &mut v)?;
    let ty = r.string("type")?;
    if ty != ENTRY_TYPE {
        return Err(malformed(format!("unsupported entry type {ty:?}")));
    }
    let actor = read_actor(r.take("actor")?)?;
    let after = r.opt("after").map(|v| read_value("after", v)).transpose()?;
    let before = r
        .opt("before")
        .map(|v| read_value("before", v))
        .transpose()?;
    let cause = read_cause(r.take("cause")?)?;
    let comment = r.opt("comment").map(read_comment).transpose()?;
    let field = r
        .opt_string("field")?
        .map(|f| parse_enum("field", &f, &Field::ALL, Field::as_str))
        .transpose()?;
    let idx = match r.take("idx")? {
        Value::Number(n) => n
            .as_u64()
            .filter(|&i| i <= MAX_SAFE_INTEGER)
            .ok_or_else(|| malformed("idx: expected an integer in 0..=2^53-1"))?,
        _ => return Err(malformed("idx: expected an integer")),
    };
    let integration_id = r
        .opt_string("integration")?
        .map(|s| parse_uuid("integration", &s).map(IntegrationId))
        .transpose()?;
    let workspace_id = workspace_of_log(&r.string("log")?)?;
    let logged_at = parse_time("logged_at", &r.string("logged_at")?)?;
    let observed_at = parse_time("observed_at", &r.string("observed_at")?)?;
    let occurred_at = r
        .opt_string("occurred_at")?
        .map(|s| parse_time("occurred_at", &s))
        .transpose()?;
    let op = parse_enum("op", &r.string("op")?, &OPS, op_str)?;
    let outcome = parse_enum("outcome", &r.string("outcome")?, &OUTCOMES, outcome_str)?;
    let rule = r.string("rule")?;
    let session = r.opt("session").map(read_session).transpose()?;
    let (task_id, external) = read_subject(r.take("subject")?)?;
    r.done()?;
    let record = LedgerDraft {
        workspace_id,
        integration_id,
        task_id,
        external,
        op,
        field,
        before,
        after,
        outcome,
        rule,
        actor,
        cause,
        occurred_at,
        observed_at,
        comment,
        session,
    };
    if record.op.is_comment() != record.comment.is_some() {
        return Err(malformed("comment: present exactly for the comment ops"));
    }
    if record.op.is_session() != record.session.is_some() {
        return Err(malformed("session: present exactly for the session ops"));
    }
    let again = encode_entry(&record, idx, logged_at);
    if again != bytes {
        let at = again
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(again.len().min(bytes.len()));
        return Err(VeraError::NonCanonical(format!(
            "differs from the canonical form at byte {at}"
        )));
    }
    Ok(LedgerEntry {
        idx,
        logged_at,
        record,
        leaf_hash: leaf_hash(bytes),
        bytes: again,
    })
}

/// The `idx` and `log` of entry bytes, found without a full parse (the verifier's fast path).
///
/// In canonical bytes the sequence `"idx":` can only be the top-level key (a quote inside a
/// string is always escaped), so this is exact for canonical entries; for anything else it
/// returns `None` or what it finds, and the leaf hash is what decides.
pub fn scan_idx_log(bytes: &[u8]) -> Option<(u64, &str)> {
    let idx = find(bytes, b"\"idx\":")?;
    let bytes = &bytes[idx..];
    let rest = &bytes[6..];
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    if end == 0 || end > 16 {
        return None;
    }
    let n: u64 = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    let log = find(bytes, b"\"log\":\"")?;
    let rest = &bytes[log + 7..];
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    Some((n, name))
}

/// The first position of `needle` in `hay` (which must be UTF-8; the standard library's
/// substring search is much faster than a byte loop in unoptimized builds).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let hay = std::str::from_utf8(hay).ok()?;
    let needle = std::str::from_utf8(needle).ok()?;
    hay.find(needle)
}
