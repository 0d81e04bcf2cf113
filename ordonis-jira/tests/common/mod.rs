//! Shared test helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use ordonis_core::{ApiAuth, IntegrationId, IntegrationSecrets, ProviderContext, WorkspaceId};

pub const SECRET: &str = "It's a Secret to Everybody";

pub fn ctx(base_url: &str) -> ProviderContext {
    ProviderContext {
        integration_id: IntegrationId::new(),
        workspace_id: WorkspaceId::new("ws-test").unwrap(),
        base_url: base_url.to_owned(),
        secrets: IntegrationSecrets {
            api_auth: Some(ApiAuth::Basic {
                email: "bot@example.com".into(),
                api_token: "tok".into(),
            }),
            webhook_secrets: vec![SECRET.to_owned()],
            app_secret: Some("app-shared-secret".into()),
        },
        options: serde_json::json!({}),
        scope: serde_json::Value::Null,
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub const FIXTURES: [&str; 7] = [
    "cloud_comment_created_zulip.json",
    "cloud_comment_updated_mobitel.json",
    "cloud_issue_created_gbl108.json",
    "cloud_issue_created_kan22.json",
    "cloud_issue_updated_assigned_mobitel.json",
    "cloud_issue_updated_description_kan22.json",
    "cloud_issue_updated_status_zulip.json",
];
