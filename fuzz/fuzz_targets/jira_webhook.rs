//! Fuzzes the Jira webhook parser and verifier: arbitrary bytes, and arbitrary bytes spliced
//! into a valid issue payload, must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordonis_jira::webhook::{ParseContext, parse, verify_jwt, verify_signature};

fuzz_target!(|data: &[u8]| {
    let cx = ParseContext {
        base_url: "https://fuzz.atlassian.net",
        delivery_id: Some("d"),
    };
    let _ = parse(data, cx);
    // The same bytes as a string value inside a realistic envelope.
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
            for event in ["jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created"] {
                let body = serde_json::json!({
                    "timestamp": v, "webhookEvent": event, "user": v,
                    "issue": {"id": "1", "key": "K-1", "fields": {
                        "summary": v, "description": v, "status": v, "assignee": v,
                        "priority": v, "duedate": v, "updated": v}},
                    "changelog": {"items": [v]}
                });
                let _ = parse(body.to_string().as_bytes(), cx);
            }
        }
        let _ = verify_signature(s, &["secret".to_owned()], data);
        let _ = verify_jwt(s, "secret", Some("iss"), 0);
    }
});
