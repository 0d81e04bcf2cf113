//! VERA-JCS/1 encoding: the golden file, the independent JCS oracle, decoding and strictness.
//!
//! Regenerate the golden file (after a deliberate format change only) with
//! `VERA_BLESS=1 cargo test -p ordonis-core --test vera_encode`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "data/vera/support.rs"]
mod support;

use ordonis_core::ledger::{LedgerDraft, LedgerEntry};
use ordonis_core::vera::{
    MAX_SAFE_INTEGER, VeraError, decode_entry, encode_entry, leaf_hash, log_name, workspace_of_log,
};
use ordonis_core::{Actor, Assignee, Field, FieldValue, Op, Outcome, Priority, PriorityLevel};
use serde_json::Value;
use support::{Rng, TRICKY, at, draft, without_pii, ws};
use time::{Date, Month, OffsetDateTime};

const GOLDEN: &str = "tests/data/vera/golden.jsonl";

struct Case {
    name: String,
    draft: LedgerDraft,
    idx: u64,
    logged_at: OffsetDateTime,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut rng = Rng(0x5eed_0f7e_7a00);
    let w = ws("acme");
    let base = || {
        let mut d = draft(&mut Rng(42), &ws("acme"));
        d.op = Op::Set;
        d
    };
    // Every value type, both present and "none".
    let values = [
        FieldValue::Title("Fix login".into()),
        FieldValue::Description("Steps:\n1. open\n2. crash".into()),
        FieldValue::Status(ordonis_core::Status::new(
            ordonis_core::StatusCategory::InProgress,
            "In Review",
        )),
        FieldValue::Assignee(Some(Assignee {
            account_id: "5b10ac8d82e05b22cc7d4ef5".into(),
            display_name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
        })),
        FieldValue::Assignee(None),
        FieldValue::Priority(Some(Priority {
            level: PriorityLevel::Highest,
            name: "Blocker".into(),
        })),
        FieldValue::Priority(None),
        FieldValue::DueDate(Some(
            Date::from_calendar_date(2026, Month::February, 28).unwrap(),
        )),
        FieldValue::DueDate(Some(
            Date::from_calendar_date(-44, Month::March, 15).unwrap(),
        )),
        FieldValue::DueDate(None),
    ];
    for (i, v) in values.iter().enumerate() {
        let mut d = base();
        d.field = Some(v.field());
        d.before = Some(v.clone());
        d.after = Some(v.clone());
        out.push(Case {
            name: format!("value-{}-{i}", v.field()),
            draft: d,
            idx: i as u64,
            logged_at: at(1_790_000_000_123_456),
        });
    }
    // Every tricky string in every string-bearing place.
    for (i, s) in TRICKY.iter().enumerate() {
        let mut d = base();
        d.field = Some(Field::Title);
        d.after = Some(FieldValue::Title((*s).to_owned()));
        d.rule = (*s).to_owned();
        d.actor = Actor::human(format!("usr {s}"));
        d.cause.id = (*s).to_owned();
        out.push(Case {
            name: format!("string-{i}"),
            draft: d,
            idx: 100 + i as u64,
            logged_at: at(1_790_000_000_000_001),
        });
    }
    // Extremes.
    let mut d = base();
    d.workspace_id = ws("weird ws/+é~");
    out.push(Case {
        name: "max-idx-escaped-workspace".into(),
        draft: d,
        idx: MAX_SAFE_INTEGER,
        logged_at: at(0),
    });
    let mut d = base();
    d.op = Op::Create;
    d.field = None;
    d.before = None;
    d.after = None;
    d.integration_id = None;
    d.external = None;
    d.occurred_at = None;
    d.outcome = Outcome::Applied;
    d.rule = String::new();
    d.cause.delivery_id = None;
    d.cause.evidence = None;
    d.cause.parent_action = None;
    d.actor = Actor::system();
    out.push(Case {
        name: "minimal".into(),
        draft: d,
        idx: 0,
        logged_at: at(-62_135_596_800_000_000), // 0001-01-01
    });
    let mut d = base();
    d.after = Some(FieldValue::Description("x".repeat(60_000)));
    d.field = Some(Field::Description);
    out.push(Case {
        name: "large-description".into(),
        draft: d,
        idx: 7,
        logged_at: at(1_790_000_000_000_000),
    });
    // A deterministic random corpus.
    for i in 0..200 {
        out.push(Case {
            name: format!("random-{i}"),
            draft: draft(&mut rng, &w),
            idx: i,
            logged_at: at(1_790_000_000_000_000 + i as i64 * 997),
        });
    }
    out
}

fn golden_line(c: &Case) -> String {
    let bytes = encode_entry(&c.draft, c.idx, c.logged_at);
    let mut m = serde_json::Map::new();
    m.insert(
        "bytes".into(),
        String::from_utf8(bytes.clone()).unwrap().into(),
    );
    m.insert("leaf_hash".into(), hex::encode(leaf_hash(&bytes)).into());
    m.insert("name".into(), c.name.clone().into());
    serde_json::to_string(&Value::Object(m)).unwrap()
}

#[test]
fn golden_file_matches_the_encoder() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let want: Vec<String> = cases().iter().map(golden_line).collect();
    if std::env::var_os("VERA_BLESS").is_some() {
        std::fs::write(&path, want.join("\n") + "\n").unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap();
    let have: Vec<&str> = have.lines().collect();
    assert_eq!(
        have.len(),
        want.len(),
        "golden file has a different number of entries"
    );
    for (h, w) in have.iter().zip(&want) {
        assert_eq!(h, w, "golden entry differs");
        // The file stands on its own: its leaf hashes are the hashes of its bytes.
        let v: Value = serde_json::from_str(h).unwrap();
        let bytes = v["bytes"].as_str().unwrap().as_bytes();
        assert_eq!(
            v["leaf_hash"].as_str().unwrap(),
            hex::encode(leaf_hash(bytes))
        );
    }
}

#[test]
fn encoder_equals_independent_jcs_canonicalizer() {
    let mut n = 0;
    let mut rng = Rng(99);
    let extra = (0..2000).map(|i| Case {
        name: String::new(),
        draft: draft(&mut rng, &ws("oracle")),
        idx: i,
        logged_at: at(1_790_000_000_000_000),
    });
    for c in cases().into_iter().chain(extra) {
        let bytes = encode_entry(&c.draft, c.idx, c.logged_at);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let oracle = serde_json_canonicalizer::to_vec(&v).unwrap();
        assert_eq!(
            String::from_utf8(oracle).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "case {}",
            c.name
        );
        n += 1;
    }
    assert!(n > 2200);
}

#[test]
fn decode_round_trips_without_pii() {
    for c in cases() {
        let bytes = encode_entry(&c.draft, c.idx, c.logged_at);
        let e = decode_entry(&bytes).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(e.idx, c.idx);
        assert_eq!(e.bytes, bytes);
        assert_eq!(e.leaf_hash, leaf_hash(&bytes));
        assert_eq!(e.record, without_pii(&c.draft), "{}", c.name);
        // A store may keep only the bytes: sealing the decoded record gives the same entry.
        let again = LedgerEntry::seal(e.record.clone(), e.idx, e.logged_at);
        assert_eq!(again, e);
    }
}

/// The scope life cycle's ops (a task leaving and re-entering its integration's scope) have
/// their own names in the leaf and decode back to themselves.
#[test]
fn scope_ops_round_trip() {
    for (op, name) in [
        (Op::LeaveScope, "leave_scope"),
        (Op::EnterScope, "enter_scope"),
    ] {
        let mut d = draft(&mut Rng(7), &ws("acme"));
        d.op = op;
        d.field = None;
        d.before = None;
        d.after = None;
        d.rule = "removed from the scope's projects".into();
        let bytes = encode_entry(&d, 3, at(1_700_000_000));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(&format!("\"op\":\"{name}\"")), "{text}");
        let e = decode_entry(&bytes).unwrap();
        assert_eq!(e.record.op, op);
        assert_eq!(e.record, without_pii(&d));
    }
}

/// Link and unlink have their own names; a principal acting through a mapped provider
/// account keeps the account in the leaf (the evidence), its name out of it; both round-trip
/// and match the independent canonicalizer.
#[test]
fn link_ops_and_mapped_accounts_round_trip() {
    for (op, name) in [(Op::Link, "link"), (Op::Unlink, "unlink")] {
        let mut d = draft(&mut Rng(11), &ws("acme"));
        d.op = op;
        d.field = None;
        d.before = None;
        d.after = None;
        d.rule = "created in the provider".into();
        d.actor = Actor {
            provider: "jira".into(),
            account: Some("5b10ac8d82e05b22cc7d4ef5".into()),
            ..Actor::human("usr_alice").named("Alice Smith")
        };
        let bytes = encode_entry(&d, 5, at(1_700_000_000));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(&format!("\"op\":\"{name}\"")), "{text}");
        assert!(
            text.contains(
                "\"actor\":{\"account\":\"5b10ac8d82e05b22cc7d4ef5\",\"id\":\"usr_alice\""
            ),
            "{text}"
        );
        assert!(!text.contains("Alice Smith"), "no name in the leaf: {text}");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json_canonicalizer::to_vec(&v).unwrap(), bytes);
        let e = decode_entry(&bytes).unwrap();
        assert_eq!(e.record.op, op);
        assert_eq!(
            e.record.actor.account.as_deref(),
            Some("5b10ac8d82e05b22cc7d4ef5")
        );
        assert_eq!(e.record, without_pii(&d));
    }
}

/// The comment ops carry their comment (id, provider id, body; no body for a deletion): they
/// round-trip, match the independent canonicalizer, and a comment on any other op (or a
/// comment op without one) is refused.
#[test]
fn comment_ops_round_trip_and_are_checked() {
    use ordonis_core::{CommentId, CommentRecord};
    for (i, (op, name)) in [
        (Op::CommentAdd, "comment_add"),
        (Op::CommentEdit, "comment_edit"),
        (Op::CommentDelete, "comment_delete"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = draft(&mut Rng(11 + i as u64), &ws("acme"));
        d.op = op;
        d.field = None;
        d.before = None;
        d.after = None;
        d.rule = "comments;direction=both".into();
        d.comment = Some(CommentRecord {
            id: CommentId::new(),
            external_id: (op != Op::CommentAdd).then(|| "10042".to_owned()),
            body: (op != Op::CommentDelete)
                .then(|| format!("Looks \"done\"\n{}", TRICKY.join(" "))),
        });
        let bytes = encode_entry(&d, 9, at(1_700_000_000));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(&format!("\"op\":\"{name}\"")), "{text}");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(serde_json_canonicalizer::to_vec(&v).unwrap(), bytes);
        let e = decode_entry(&bytes).unwrap();
        assert_eq!(e.record, without_pii(&d));

        let mut wrong = d.clone();
        wrong.op = Op::Set;
        assert!(decode_entry(&encode_entry(&wrong, 9, at(1_700_000_000))).is_err());
        let mut missing = d.clone();
        missing.comment = None;
        assert!(decode_entry(&encode_entry(&missing, 9, at(1_700_000_000))).is_err());
    }
}

/// Names and emails (the actor's display name, an assignee's display name and email, before
/// and after) never reach the leaf, although the draft carries them.
#[test]
fn no_pii_in_the_leaf() {
    let person = |name: &str, email: &str| {
        FieldValue::Assignee(Some(Assignee {
            account_id: "5b10ac8d82e05b22cc7d4ef5".into(),
            display_name: Some(name.into()),
            email: Some(email.into()),
        }))
    };
    let mut d = draft(&mut Rng(11), &ws("acme"));
    d.op = Op::Set;
    d.field = Some(Field::Assignee);
    d.before = Some(person("Grace Hopper", "grace@example.org"));
    d.after = Some(person("Ada Lovelace", "ada@example.com"));
    d.actor = Actor::human("usr_42");
    d.actor.display_name = Some("Katherine Johnson".into());
    let pii = [
        "Grace Hopper",
        "grace@example.org",
        "Ada Lovelace",
        "ada@example.com",
        "Katherine Johnson",
    ];
    let carried = format!("{d:?}");
    for p in pii {
        assert!(carried.contains(p), "the draft should carry {p}");
    }
    let bytes = String::from_utf8(encode_entry(&d, 5, at(1_790_000_000_000_000))).unwrap();
    assert!(
        bytes.contains("5b10ac8d82e05b22cc7d4ef5"),
        "the account id is kept: {bytes}"
    );
    assert!(bytes.contains("usr_42"), "the actor id is kept: {bytes}");
    for p in pii.iter().chain(&["display_name", "email"]) {
        assert!(!bytes.contains(p), "{p} leaked: {bytes}");
    }
    // The generated corpus too, wherever it carries a name or an email.
    let mut with_pii = 0;
    for c in cases() {
        let carried = format!("{:?}", c.draft);
        if carried.contains("Ada Lovelace") || carried.contains("ada@example.com") {
            with_pii += 1;
        }
        let bytes = String::from_utf8(encode_entry(&c.draft, c.idx, c.logged_at)).unwrap();
        for p in ["Ada Lovelace", "ada@example.com", "display_name", "email"] {
            assert!(!bytes.contains(p), "{}: {p} leaked", c.name);
        }
    }
    assert!(
        with_pii > 10,
        "the corpus carries names in {with_pii} cases only"
    );
}

#[test]
fn decode_rejects_non_canonical_input() {
    let c = &cases()[3];
    let good = String::from_utf8(encode_entry(&c.draft, 41, c.logged_at)).unwrap();
    assert!(decode_entry(good.as_bytes()).is_ok());
    let bad: Vec<(String, &str)> = vec![
        (format!(" {good}"), "leading whitespace"),
        (
            good.replacen("\"idx\":41", "\"idx\": 41", 1),
            "inner whitespace",
        ),
        (good.replacen("\"idx\":41", "\"idx\":41.0", 1), "float"),
        (good.replacen("\"idx\":41", "\"idx\":4.1e1", 1), "exponent"),
        (good.replacen("\"idx\":41", "\"idx\":-0", 1), "minus zero"),
        (
            good.replacen("\"idx\":41", "\"idx\":041", 1),
            "leading zero",
        ),
        (
            good.replacen(
                "\"idx\":41",
                &format!("\"idx\":{}", MAX_SAFE_INTEGER + 1),
                1,
            ),
            "integer above 2^53-1",
        ),
        (
            good.replacen("\"idx\":41", "\"idx\":\"41\"", 1),
            "idx as a string",
        ),
        (
            good.replacen("\"idx\":41,", "\"idx\":41,\"idx\":41,", 1),
            "duplicate key",
        ),
        (
            good.replacen("\"idx\":41,", "\"zzz\":\"x\",\"idx\":41,", 1),
            "unknown key",
        ),
        (
            good.replacen("\"actor\"", "\"actor2\":\"x\",\"actor\"", 1),
            "unknown key first",
        ),
        (
            good.replacen(
                "\"type\":\"vera.change/v1\"",
                "\"type\":\"vera.change/v2\"",
                1,
            ),
            "type",
        ),
        (
            good.replacen("\"log\":\"ordonis/ws/acme\"", "\"log\":\"acme\"", 1),
            "bad log",
        ),
        (good.replacen("Z\"", "+00:00\"", 1), "time zone offset"),
        (good.replacen(".", "", 1), "no fraction"),
        (
            good.replacen("\"op\":\"set\"", "\"op\":\"Set\"", 1),
            "enum case",
        ),
        (
            good.replacen("{\"actor\"", "{\"op\":\"set\",\"actor\"", 1),
            "unsorted keys",
        ),
        (good.replacen("}", ",}", 1), "trailing comma"),
        (good.clone() + "\n", "trailing newline"),
    ];
    for (b, why) in &bad {
        assert_ne!(b, &good, "{why}: the substitution did not apply");
        assert!(decode_entry(b.as_bytes()).is_err(), "{why} accepted: {b}");
    }
    // Escapes: a non-minimal escape, an upper-case hex escape, a lone surrogate.
    let mut d = c.draft.clone();
    d.rule = "A\u{1f}".into();
    let s = String::from_utf8(encode_entry(&d, 1, c.logged_at)).unwrap();
    assert!(s.contains("A\\u001f"));
    for (from, to) in [
        ("A\\u001f", "\\u0041\\u001f"),
        ("A\\u001f", "A\\u001F"),
        ("A\\u001f", "A\\ud800"),
    ] {
        let b = s.replacen(from, to, 1);
        assert!(decode_entry(b.as_bytes()).is_err(), "{to} accepted");
    }
    // NFC-altered text is canonical in itself but is a different leaf.
    let mut d = c.draft.clone();
    d.rule = "cafe\u{301}".into();
    let nfd = encode_entry(&d, 1, c.logged_at);
    d.rule = "caf\u{e9}".into();
    let nfc = encode_entry(&d, 1, c.logged_at);
    assert_ne!(leaf_hash(&nfd), leaf_hash(&nfc));
    assert_eq!(decode_entry(&nfd).unwrap().record.rule, "cafe\u{301}");
    // Too large.
    let mut d = c.draft.clone();
    d.rule = "x".repeat(ordonis_core::vera::MAX_ENTRY_BYTES);
    assert!(matches!(
        decode_entry(&encode_entry(&d, 1, c.logged_at)),
        Err(VeraError::MalformedEntry(_))
    ));
}

#[test]
fn log_names_round_trip_and_stay_key_names() {
    for id in [
        "acme",
        "a b",
        "x+y",
        "ünï/cödé",
        "~._-",
        "%41",
        "0b9e7c1a-5d2f-4c1e-9a77",
    ] {
        let name = log_name(&ws(id));
        assert!(!name.contains(' ') && !name.contains('+'), "{name}");
        assert_eq!(workspace_of_log(&name).unwrap().as_str(), id);
    }
    for bad in [
        "acme",
        "ordonis/ws/",
        "ordonis/ws/a%2",
        "ordonis/ws/a%2f",
        "ordonis/ws/a b",
        "ordonis/ws/%FF",
    ] {
        assert!(workspace_of_log(bad).is_err(), "{bad}");
    }
}

#[test]
fn times_are_utc_microseconds() {
    let mut d = cases()[0].draft.clone();
    d.observed_at = OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_789)
        .unwrap()
        .to_offset(time::UtcOffset::from_hms(5, 30, 0).unwrap());
    let s = String::from_utf8(encode_entry(&d, 0, at(0))).unwrap();
    assert!(s.contains("\"observed_at\":\"2026-09-21T"), "{s}");
    assert!(s.contains(".123456Z\""), "{s}");
    assert!(
        s.contains("\"logged_at\":\"1970-01-01T00:00:00.000000Z\""),
        "{s}"
    );
}

/// Due dates are ISO 8601 calendar dates, zero-padded to four year digits, with a sign only
/// before year 1 (the encoding an independent verifier reproduces).
#[test]
fn dates_encode_as_iso_calendar_dates() {
    for (y, want) in [
        (7, "\"0007-03-07\""),
        (0, "\"0000-03-07\""),
        (-1, "\"-0001-03-07\""),
    ] {
        let v = FieldValue::DueDate(Some(Date::from_calendar_date(y, Month::March, 7).unwrap()));
        let mut d = cases()[0].draft.clone();
        d.field = Some(v.field());
        d.after = Some(v);
        let s = String::from_utf8(encode_entry(&d, 0, at(0))).unwrap();
        assert!(s.contains(want), "{y}: {s}");
    }
}

/// A good entry with a due date, and its canonical text.
fn dated_entry() -> String {
    let v = FieldValue::DueDate(Some(
        Date::from_calendar_date(2026, Month::March, 7).unwrap(),
    ));
    let mut d = cases()[0].draft.clone();
    d.field = Some(v.field());
    d.after = Some(v);
    String::from_utf8(encode_entry(&d, 5, at(1_790_000_000_123_456))).unwrap()
}

fn malformed(bytes: &str) -> String {
    match decode_entry(bytes.as_bytes()) {
        Err(VeraError::MalformedEntry(m)) => m,
        other => panic!("expected MalformedEntry for {bytes}, got {other:?}"),
    }
}

/// Dates and times that are not exactly `YYYY-MM-DD` / `YYYY-MM-DDTHH:MM:SS.ffffffZ` are
/// malformed (refused while reading, before the canonical comparison), and never panic.
#[test]
fn malformed_dates_and_times_are_refused_as_malformed() {
    let good = dated_entry();
    assert!(decode_entry(good.as_bytes()).is_ok());
    for bad_date in [
        "2026-3-07",
        "26-03-07",
        "2026-03-7",
        "+026-03-07",
        "2026-03-0x",
        "2026-02-30",
    ] {
        let m = malformed(&good.replacen("\"2026-03-07\"", &format!("\"{bad_date}\""), 1));
        assert!(m.starts_with("after"), "{bad_date}: {m}");
    }
    let time = "2026-09-21T";
    let at = good.find(time).unwrap();
    let end = at + good[at..].find('"').unwrap();
    for bad_time in [
        "2026-09-21T1Z",
        "2026-09-21T12:00:00Z",
        "2026-09-21T12-00:00.000000Z",
        "2026-09-21T12:00-00.000000Z",
        "2026-09-21T12:00:00-000000Z",
        "2026-09-21T12:00:00.00000xZ",
        "2026-09-21T25:00:00.000000Z",
        "2026-09-21 12:00:00.000000Z",
        "2026-09-21T12:00:00.000000",
    ] {
        let bytes = format!("{}{bad_time}{}", &good[..at], &good[end..]);
        malformed(&bytes);
    }
}

/// An unknown key is refused by name while reading.
#[test]
fn an_unknown_key_is_named() {
    let good = dated_entry();
    let m = malformed(&good.replacen("{\"actor\":", "{\"aardvark\":1,\"actor\":", 1));
    assert!(m.contains("unknown key `aardvark`"), "{m}");
}

/// A non-canonical entry names the first byte that differs from its canonical form.
#[test]
fn non_canonical_names_the_first_differing_byte() {
    let good = dated_entry();
    let at = good.find("\"idx\":5").unwrap() + "\"idx\":".len();
    let bad = good.replacen("\"idx\":5", "\"idx\": 5", 1);
    match decode_entry(bad.as_bytes()) {
        Err(VeraError::NonCanonical(m)) => assert!(m.ends_with(&format!("byte {at}")), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// The size limit refuses only what is over it.
#[test]
fn the_size_limit_is_inclusive() {
    let max = ordonis_core::vera::MAX_ENTRY_BYTES;
    let exactly = "x".repeat(max);
    assert!(!malformed(&exactly).contains("exceeds"));
    assert!(malformed(&"x".repeat(max + 1)).contains("exceeds"));
}

/// The verifier's fast path reads `idx` and `log` from canonical bytes without parsing.
#[test]
fn scan_idx_log_reads_canonical_entries() {
    use ordonis_core::vera::scan_idx_log;
    for c in cases().iter().take(20) {
        for idx in [0, 7, 41, MAX_SAFE_INTEGER] {
            let bytes = encode_entry(&c.draft, idx, c.logged_at);
            let log = log_name(&c.draft.workspace_id);
            assert_eq!(scan_idx_log(&bytes), Some((idx, log.as_str())), "{idx}");
        }
    }
    for bad in [
        &b"{}"[..],
        b"{\"idx\":,\"log\":\"x\"}",
        b"{\"idx\":12345678901234567,\"log\":\"x\"}",
        b"{\"idx\":1}",
        b"{\"idx\":1,\"log\":\"unterminated",
        b"{\"idx\":1,\"log\":1}",
    ] {
        assert_eq!(scan_idx_log(bad), None, "{}", String::from_utf8_lossy(bad));
    }
    // Sixteen digits is the most an index below 2^53 takes.
    assert_eq!(
        scan_idx_log(b"{\"idx\":1234567890123456,\"log\":\"a\"}"),
        Some((1_234_567_890_123_456, "a"))
    );
    // A log name ends at its closing quote, or at an escape (which canonical names never hold).
    assert_eq!(
        scan_idx_log(b"{\"idx\":3,\"log\":\"ab\\\"c\"}"),
        Some((3, "ab"))
    );
    // Not UTF-8: nothing is found.
    assert_eq!(scan_idx_log(b"{\"idx\":3,\"log\":\"a\"}\xff"), None);
}
