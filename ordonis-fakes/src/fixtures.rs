//! The real webhook fixtures, one folder per provider (`fixtures/jira/`, `fixtures/asana/`,
//! each with a `SOURCES.md` naming where every file comes from), embedded with
//! `include_bytes!` so the adapters' tests, the reference server's tests and its demo all
//! read the same files.
//!
//! ```
//! let body = ordonis_fakes::fixtures::jira("cloud_issue_created_kan22.json");
//! assert!(body.starts_with(b"{"));
//! for (name, body) in ordonis_fakes::fixtures::ASANA {
//!     assert!(name.ends_with(".json") && !body.is_empty());
//! }
//! ```

/// The folder the Jira fixtures are in (absolute, in this crate's source), for tools that
/// want the files themselves (fuzz seeds).
pub const JIRA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/jira");

/// The folder the Asana fixtures are in (absolute, in this crate's source).
pub const ASANA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/asana");

macro_rules! fixtures {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../fixtures/", $dir, "/", $name)) as &[u8])),*]
    };
}

/// The Jira Cloud webhook bodies, `(file name, bytes)`: real deliveries (see
/// `fixtures/jira/SOURCES.md`).
pub const JIRA: &[(&str, &[u8])] = fixtures!("jira":
    "cloud_comment_created_zulip.json",
    "cloud_comment_updated_mobitel.json",
    "cloud_issue_created_gbl108.json",
    "cloud_issue_created_kan22.json",
    "cloud_issue_updated_assigned_mobitel.json",
    "cloud_issue_updated_description_kan22.json",
    "cloud_issue_updated_status_zulip.json",
);

/// The Asana fixtures, `(file name, bytes)`: a captured webhook body, the documented
/// heartbeat, and two documented API answers (`GET /events`, `POST /webhooks`); see
/// `fixtures/asana/SOURCES.md`.
pub const ASANA: &[(&str, &[u8])] = fixtures!("asana":
    "captured_task_changed_2019_gelisam.json",
    "docs_create_webhook_201_response.json",
    "docs_get_events_response_example.json",
    "heartbeat_empty_events.json",
);

/// The Asana fixtures that are webhook bodies (what a receiver is sent).
pub const ASANA_WEBHOOKS: [&str; 2] = [
    "captured_task_changed_2019_gelisam.json",
    "heartbeat_empty_events.json",
];

fn find(set: &'static [(&str, &[u8])], provider: &str, name: &str) -> &'static [u8] {
    match set.iter().find(|(n, _)| *n == name) {
        Some((_, body)) => body,
        None => panic!("no {provider} fixture named {name:?}"),
    }
}

/// A Jira fixture by file name.
///
/// # Panics
///
/// When there is no such fixture (a test's typo should fail loudly).
pub fn jira(name: &str) -> &'static [u8] {
    find(JIRA, "Jira", name)
}

/// An Asana fixture by file name.
///
/// # Panics
///
/// When there is no such fixture.
pub fn asana(name: &str) -> &'static [u8] {
    find(ASANA, "Asana", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.json` in a provider's folder is listed (and nothing listed is missing: that
    /// would not compile), so a fixture added to the folder is not silently left out.
    #[test]
    fn every_file_in_the_folders_is_listed() {
        for (dir, set) in [(JIRA_DIR, JIRA), (ASANA_DIR, ASANA)] {
            let mut on_disk: Vec<String> = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect();
            on_disk.sort();
            let listed: Vec<&str> = set.iter().map(|(n, _)| *n).collect();
            assert_eq!(on_disk, listed, "{dir}");
            assert!(std::path::Path::new(dir).join("SOURCES.md").is_file());
        }
        for name in ASANA_WEBHOOKS {
            assert!(!asana(name).is_empty());
        }
    }
}
