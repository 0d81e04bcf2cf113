//! Contract test: every kind of request the client sends is validated by a Prism mock server
//! started from Atlassian's OpenAPI document. A request Prism rejects (4xx with
//! `sl-violations`) fails the test.
//!
//! Prism is found through `PRISM_BIN`, `node_modules/.bin/prism` at the workspace root, a
//! `prism` on `PATH`, or
//! `npx --no-install @stoplight/prism-cli@5.14.2`. Without it the test prints a message and
//! passes, unless `ORDONIS_REQUIRE_PRISM=1`. The spec defaults to
//! `../specs/jira_swagger-v3.v3.json` (override with `ORDONIS_JIRA_SPEC`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use ordonis_core::ApiAuth;
use ordonis_jira::rich_text::markdown_to_adf as text_to_adf;
use ordonis_jira::{JiraClient, JiraError, SearchRequest};
use ordonis_testkit::prism::{self, Prism};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

/// A request Prism accepted: success, or a response body our typed client cannot read
/// (Prism generates bodies from the schema; they are random, not Jira's).
fn accepted<T: std::fmt::Debug>(what: &str, r: Result<T, JiraError>) {
    match r {
        Ok(_) | Err(JiraError::Decode(_)) => {}
        Err(e) => panic!("Prism rejected {what}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_requests_match_the_jira_spec() {
    let spec = std::env::var("ORDONIS_JIRA_SPEC").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs/jira_swagger-v3.v3.json"),
        PathBuf::from,
    );
    let Some(prism) = Prism::for_spec(&spec).await else {
        return;
    };
    let base = prism.base();

    let mut headers = HeaderMap::new();
    // Schema-generated responses (the spec's static examples are JSON strings).
    headers.insert("prefer", HeaderValue::from_static("dynamic=true"));
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let auth = ApiAuth::Basic {
        email: "bot@example.com".into(),
        api_token: "tok".into(),
    };
    let client = JiraClient::new(http, base, &auth).unwrap();

    accepted("GET issue", client.get_issue("PROJ-1").await);
    accepted(
        "PUT issue",
        client
            .edit_issue(
                "PROJ-1",
                &json!({
                    "summary": "New title",
                    "description": text_to_adf("Line one\nline two\n\nPara"),
                    "priority": {"name": "High"},
                    "duedate": "2026-12-01"
                }),
            )
            .await,
    );
    accepted(
        "PUT issue (clearing)",
        client
            .edit_issue("PROJ-1", &json!({"priority": null, "duedate": null}))
            .await,
    );
    accepted(
        "PUT assignee",
        client
            .assign("PROJ-1", Some("5b10ac8d82e05b22cc7d4ef5"))
            .await,
    );
    // Known spec deviation: the operation's description says `"accountId": null` unassigns
    // (which is what the client sends), but the `User` schema does not mark it nullable, so
    // Prism flags exactly that one property. Anything else is a failure.
    match client.assign("PROJ-1", None).await {
        Ok(()) => {}
        Err(JiraError::Rejected { status: 400, .. }) => {
            let resp = reqwest::Client::new()
                .put(format!("{base}/rest/api/3/issue/PROJ-1/assignee"))
                .json(&json!({ "accountId": null }))
                .send()
                .await
                .unwrap();
            let (violations, v) = prism::violations(&resp);
            assert_eq!(v.len(), 1, "{violations}");
            assert_eq!(
                v[0]["message"], "Request body property accountId must be string",
                "{violations}"
            );
        }
        Err(e) => panic!("Prism rejected PUT assignee null: {e}"),
    }
    accepted("GET transitions", client.transitions("PROJ-1").await);
    accepted(
        "POST workflows/preview",
        client.workflow_preview("10000", "10001").await,
    );
    accepted(
        "POST transitions",
        client.do_transition("PROJ-1", "31", None).await,
    );
    let mut req = SearchRequest::new("project = PROJ ORDER BY updated ASC");
    req.max_results = Some(50);
    accepted("POST search/jql", client.search_jql(&req).await);
    req.next_page_token = Some("token-2".into());
    accepted("POST search/jql (page 2)", client.search_jql(&req).await);
    // A reconcile's search: a date window and the ids we wrote recently.
    let mut req = SearchRequest::new(
        "(project = PROJ) AND updated >= \"2026/12/02 14:03\" ORDER BY updated ASC",
    );
    req.max_results = Some(100);
    req.reconcile_issues = vec![10001, 10002];
    accepted("POST search/jql (reconcile)", client.search_jql(&req).await);

    // Dynamic webhooks: register, list, refresh, delete.
    accepted(
        "POST webhook",
        client
            .register_dynamic_webhooks(
                "https://ordonis.example.com/integrations/jira/1/webhook",
                &[(&ordonis_jira::repair::WEBHOOK_EVENTS, "project = PROJ")],
            )
            .await,
    );
    accepted("GET webhook", client.dynamic_webhooks(1).await);
    accepted(
        "PUT webhook/refresh",
        client.refresh_dynamic_webhooks(&[10000, 10001]).await,
    );
    accepted(
        "DELETE webhook",
        client.delete_dynamic_webhooks(&[10000]).await,
    );

    // The webhook checks have teeth too: an event outside the spec's enum is rejected.
    let bad_hook = reqwest::Client::new()
        .post(format!("{base}/rest/api/3/webhook"))
        .basic_auth("bot@example.com", Some("tok"))
        .json(&json!({"url": "https://ordonis.example.com/hook",
                      "webhooks": [{"events": ["jira:issue_moved"], "jqlFilter": "project = PROJ"}]}))
        .send()
        .await
        .unwrap();
    let (violations, v) = prism::violations(&bad_hook);
    assert!(
        !v.is_empty(),
        "Prism accepted a bad webhook event: {violations}"
    );

    // Comments: list, get, add (ADF body and the marker property), update, delete.
    let adf = text_to_adf("a comment\n\n*— Triage bot (agent) for Alice Smith*");
    accepted("GET comments", client.comments("PROJ-1", 0).await);
    accepted("GET comment", client.get_comment("PROJ-1", "10045").await);
    accepted(
        "POST comment",
        client.add_comment("PROJ-1", &adf, "cmt-1").await,
    );
    accepted(
        "PUT comment",
        client.update_comment("PROJ-1", "10045", &adf).await,
    );
    match client.delete_comment("PROJ-1", "10045").await {
        Ok(()) => {}
        Err(e) => panic!("Prism rejected DELETE comment: {e}"),
    }

    // Remote links: list, one by global id, create or update (our request), delete.
    accepted("GET remotelink", client.remote_links("PROJ-1", None).await);
    accepted(
        "GET remotelink?globalId",
        client
            .remote_links("PROJ-1", Some("ordonis:session:0193ab7f&x=1"))
            .await,
    );
    let link = ordonis_jira::links::link_request(&ordonis_core::LinkDraft {
        global_id: "ordonis:session:0193ab7f",
        title: "Triage bot for Alice Smith · running",
        url: "https://ordonis.example.com/sessions/0193ab7f",
        summary: Some("reading the logs"),
    });
    accepted(
        "POST remotelink",
        client.upsert_remote_link("PROJ-1", &link).await,
    );
    match client.delete_remote_link("PROJ-1", "10000").await {
        Ok(()) => {}
        Err(e) => panic!("Prism rejected DELETE remotelink: {e}"),
    }
    // The check has teeth here too: a link without its required `object` is rejected.
    let bad_link = reqwest::Client::new()
        .post(format!("{base}/rest/api/3/issue/PROJ-1/remotelink"))
        .basic_auth("bot@example.com", Some("tok"))
        .json(&json!({"globalId": "ordonis:session:1"}))
        .send()
        .await
        .unwrap();
    let (violations, v) = prism::violations(&bad_link);
    assert!(
        !v.is_empty(),
        "Prism accepted a remote link without an object: {violations}"
    );

    // Creating: the create metadata, the create with our marker property, the search for a
    // lost create (with the property), and an account.
    accepted(
        "GET createmeta issuetypes",
        client.create_issue_types("PROJ").await,
    );
    accepted(
        "GET createmeta fields",
        client.create_fields("PROJ", "10001").await,
    );
    accepted(
        "POST issue",
        client
            .create_issue(&json!({
                "fields": {
                    "project": {"key": "PROJ"},
                    "issuetype": {"id": "10001"},
                    "summary": "Checkout times out",
                    "description": text_to_adf("Steps\n\n- open the cart"),
                    "priority": {"id": "2"},
                    "duedate": "2026-12-24",
                    "assignee": {"accountId": "5b10ac8d82e05b22cc7d4ef5"},
                    "parent": {"key": "PROJ-1"},
                    "customfield_10050": {"id": "42"}
                },
                "properties": [{"key": "ordonis", "value": {"task_id": "tsk_1"}}]
            }))
            .await,
    );
    let mut req = SearchRequest::new(
        "project = \"PROJ\" AND reporter = currentUser() AND created >= \"2026/12/02 14:03\" \
         ORDER BY created DESC",
    );
    req.properties = vec!["ordonis".into()];
    req.max_results = Some(100);
    accepted(
        "POST search/jql (properties)",
        client.search_jql(&req).await,
    );
    accepted(
        "GET user",
        client.get_user("5b10a2844c20165700ede21g").await,
    );

    // The check has teeth: a malformed transition (numeric id) is rejected.
    let bad = reqwest::Client::new()
        .post(format!("{base}/rest/api/3/issue/PROJ-1/transitions"))
        .json(&json!({"transition": {"id": 31}}))
        .send()
        .await
        .unwrap();
    assert!(
        bad.status().is_client_error(),
        "Prism accepted a bad body: {}",
        bad.status()
    );
}
