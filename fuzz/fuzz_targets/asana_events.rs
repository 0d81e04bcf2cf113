//! Fuzzes the Asana event parser and signature check: arbitrary bytes, and arbitrary JSON
//! spliced into every field of a realistic event batch, must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ordonis_asana::webhook::{handshake, hints_from_events, is_heartbeat, parse, verify_signature};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let _ = is_heartbeat(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
            for action in ["changed", "added", "removed", "deleted", "undeleted"] {
                let event = serde_json::json!({
                    "action": action, "created_at": v, "user": v, "parent": v,
                    "resource": {"gid": "1", "resource_type": "task", "resource_subtype": v},
                    "change": {"field": v, "action": v, "new_value": v,
                               "added_value": v, "removed_value": v}
                });
                let body = serde_json::json!({ "events": [event, v] });
                let _ = parse(body.to_string().as_bytes());
                let _ = hints_from_events(&[v.clone()]);
            }
            let story = serde_json::json!({"events": [{"action": "added",
                "resource": {"gid": v, "resource_type": "story"},
                "parent": {"gid": v, "resource_type": "task"}}]});
            let _ = parse(story.to_string().as_bytes());
        }
        let _ = verify_signature(s, &["secret".to_owned()], data);
        let _ = handshake(s);
    }
});
