//! Canonical encoding of ledger entries.

use time::OffsetDateTime;

use crate::ledger::LedgerDraft;

/// Canonical bytes of an entry: JSON with sorted keys and no whitespace.
pub fn encode_entry(record: &LedgerDraft, idx: u64, logged_at: OffsetDateTime) -> Vec<u8> {
    let mut v = serde_json::to_value(record).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("idx".into(), idx.into());
        m.insert(
            "logged_at".into(),
            serde_json::to_value(logged_at).unwrap_or(serde_json::Value::Null),
        );
    }
    serde_json::to_vec(&v).unwrap_or_default()
}
