//! The ~2 KB Jira-like webhook body both Ordonis and the raw-SQL baseline store.

use sha2::{Digest, Sha256};

/// The body, as the pgbench scripts send it.
pub const JIRA_BODY: &str = include_str!("../pgbench/payload.min.json");

/// The body about issue number `n` (`id` 100000+n, key `PROJ-n`) at time `at_ms`, so events
/// spread over many objects and each is newer than the last (`prefill.sql` varies the key the
/// same way).
pub fn jira_body_for(n: u64, at_ms: i64) -> String {
    match serde_json::from_str::<serde_json::Value>(JIRA_BODY) {
        Ok(mut v) => {
            if let Some(issue) = v.get_mut("issue").and_then(|i| i.as_object_mut()) {
                issue.insert("id".to_owned(), (100_000 + n).to_string().into());
                issue.insert("key".to_owned(), format!("PROJ-{n}").into());
                if let Some(f) = issue.get_mut("fields").and_then(|f| f.as_object_mut()) {
                    f.insert(
                        "summary".to_owned(),
                        format!("Load test issue {n} at {at_ms}").into(),
                    );
                    f.insert("updated".to_owned(), jira_time(at_ms).into());
                }
            }
            if let Some(o) = v.as_object_mut() {
                o.insert("timestamp".to_owned(), at_ms.into());
            }
            v.to_string()
        }
        Err(_) => JIRA_BODY.to_owned(),
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Jira's timestamp format (`2024-05-20T10:13:20.000+0000`) for epoch milliseconds.
pub use ordonis_fakes::jira::jira_time;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bodies_vary_issue_and_time_and_stay_about_2kb() {
        let a: serde_json::Value =
            serde_json::from_str(&jira_body_for(7, 1_716_200_000_123)).unwrap();
        assert_eq!(a["issue"]["id"], "100007");
        assert_eq!(a["issue"]["key"], "PROJ-7");
        assert_eq!(
            a["issue"]["fields"]["updated"],
            "2024-05-20T10:13:20.123+0000"
        );
        assert_eq!(a["timestamp"], 1_716_200_000_123_i64);
        let len = jira_body_for(7, 0).len();
        assert!((1800..2400).contains(&len), "{len}");
    }
}
