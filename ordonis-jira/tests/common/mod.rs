//! Shared test helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod site;

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

/// A real Jira webhook body (`ordonis-fakes/fixtures/jira/`, shared with the server).
pub fn fixture(name: &str) -> Vec<u8> {
    ordonis_fakes::fixtures::jira(name).to_vec()
}

/// The names of every Jira webhook fixture.
pub fn fixture_names() -> impl Iterator<Item = &'static str> {
    ordonis_fakes::fixtures::JIRA.iter().map(|(name, _)| *name)
}
