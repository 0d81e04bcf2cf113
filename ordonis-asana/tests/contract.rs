//! Contract test: every kind of request the client sends is validated by a Prism mock server
//! started from Asana's OpenAPI document (`specs/asana_oas.yaml`). A request Prism rejects
//! (4xx with `sl-violations`) fails the test.
//!
//! Prism is found through `PRISM_BIN`, `node_modules/.bin/prism` at the workspace root, a
//! `prism` on `PATH`, or `npx --no-install @stoplight/prism-cli@5.14.2`. Without it the test
//! prints a message and passes, unless `ORDONIS_REQUIRE_PRISM=1`. The spec defaults to
//! `../specs/asana_oas.yaml` (override with `ORDONIS_ASANA_SPEC`).
//!
//! Prism strips the spec's server base path (`/api/1.0`), so the client's base URL is the
//! bare Prism address. The Asana document requires auth: Prism answers 401 without a bearer
//! token, which the test checks too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use ordonis_asana::{AsanaClient, AsanaError, WebhookFilter};
use ordonis_core::ApiAuth;
use ordonis_testkit::prism::{self, Prism};
use serde_json::{Map, Value, json};

/// A request Prism accepted: success, or a response body our typed client cannot read
/// (Prism answers with the spec's examples, not Asana's real data).
fn accepted<T: std::fmt::Debug>(what: &str, r: Result<T, AsanaError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(AsanaError::Decode(_)) => None,
        Err(e) => panic!("Prism rejected {what}: {e}"),
    }
}

fn data(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_requests_match_the_asana_spec() {
    let spec = std::env::var("ORDONIS_ASANA_SPEC").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs/asana_oas.yaml"),
        PathBuf::from,
    );
    let Some(prism) = Prism::for_spec(&spec).await else {
        return;
    };
    let base = prism.base();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let client = AsanaClient::new(
        http,
        base,
        &ApiAuth::Bearer {
            token: "2/1234/5678:pat".into(),
        },
    )
    .unwrap();

    let task = accepted("GET task", client.get_task("12345").await);
    if let Some(t) = task {
        // Prism serves the spec's example task; the mapping reads it.
        let p = ordonis_asana::normalize::fields_patch(&t, &Default::default());
        assert!(p.get(ordonis_core::Field::Title).is_some(), "{t}");
        // The spec's example rich text is the description, as Markdown.
        if let Some(html) = t.get("html_notes").and_then(Value::as_str) {
            assert_eq!(
                p.get(ordonis_core::Field::Description),
                Some(&ordonis_core::FieldValue::Description(
                    ordonis_asana::rich_text::html_to_markdown(html).unwrap()
                ))
            );
        }
    }
    accepted(
        "PUT task (every pushed field)",
        client
            .update_task(
                "12345",
                &data(json!({
                    "name": "Buy catnip",
                    "html_notes": ordonis_asana::rich_text::markdown_to_html("Mittens *really* likes [Humboldt](https://example.com)"),
                    "completed": true,
                    "assignee": "12345", "due_on": "2019-09-15",
                    "custom_fields": {"4578152156": "5678904321"}
                })),
            )
            .await,
    );
    accepted(
        "PUT task (clearing, assignee by e-mail)",
        client
            .update_task(
                "12345",
                &data(json!({"assignee": null, "due_on": null, "due_at": null})),
            )
            .await,
    );
    accepted(
        "PUT task (assignee by e-mail)",
        client
            .update_task(
                "12345",
                &data(json!({"assignee": "gsanchez@example.com", "completed": false})),
            )
            .await,
    );
    // Known spec deviation: Asana clears an enum custom field with `null` (what the push
    // sends for an unset priority or a to-do status under an enum rule), but the spec types
    // `custom_fields` values as non-nullable strings, so Prism flags exactly that property.
    // Anything else is a failure.
    match client
        .update_task(
            "12345",
            &data(json!({"custom_fields": {"8765432156": null}})),
        )
        .await
    {
        Ok(_) | Err(AsanaError::Decode(_)) => {}
        Err(AsanaError::Rejected { status: 400, .. }) => {
            let resp = reqwest::Client::new()
                .put(format!("{base}/tasks/12345"))
                .bearer_auth("x")
                .json(&json!({"data": {"custom_fields": {"8765432156": null}}}))
                .send()
                .await
                .unwrap();
            let (violations, v) = prism::violations(&resp);
            assert_eq!(v.len(), 1, "{violations}");
            assert_eq!(
                v[0]["message"],
                "Request body property data.custom_fields.8765432156 must be string",
                "{violations}"
            );
        }
        Err(e) => panic!("Prism rejected PUT task (clearing a custom field): {e}"),
    }
    accepted("GET custom field", client.get_custom_field("12345").await);
    accepted(
        "POST webhooks",
        client
            .create_webhook(
                "12345",
                "https://example.com/integrations/asana/1/webhook",
                &WebhookFilter::task_sync(),
            )
            .await,
    );
    accepted(
        "GET webhooks (all pages)",
        client.list_webhooks("1331", Some("51648")).await,
    );
    accepted("GET webhook (health)", client.get_webhook("12345").await);
    accepted("DELETE webhook", client.delete_webhook("12345").await);
    // The repair loop's crawl: a project's tasks, first page and a later one, with and
    // without `modified_since`.
    accepted(
        "GET tasks?project (first page)",
        client.project_tasks_page("12345", None, 100, None).await,
    );
    accepted(
        "GET tasks?project (modified_since, offset)",
        client
            .project_tasks_page(
                "12345",
                Some("2012-02-22T02:06:58.158Z"),
                2,
                Some("eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9"),
            )
            .await,
    );
    accepted("GET events (first)", client.events("12345", None).await);
    accepted(
        "GET events (with sync)",
        client
            .events("12345", Some("de4774f6915eae04714ca93bb2f5ee81"))
            .await,
    );

    // Comment stories: list a page, read, post, edit, delete.
    let html = ordonis_asana::rich_text::markdown_to_html(
        "a comment\n\n*— bot (agent) for Alice · ref c-1*",
    );
    accepted("GET stories", client.stories("12345", None).await);
    accepted(
        "GET stories (page 2)",
        client
            .stories("12345", Some("eyJ0eXAiOJiKV1iQLCJhbGciOiJIUzI1NiJ9"))
            .await,
    );
    accepted("GET story", client.get_story("12345").await);
    accepted("POST story", client.add_story("12345", &html).await);
    accepted("PUT story", client.update_story("12345", &html).await);
    accepted("DELETE story", client.delete_story("12345").await);

    // Links as external attachments: list a task's, post one (multipart), delete one.
    accepted("GET attachments", client.attachments("12345").await);
    accepted(
        "POST attachments (external, multipart)",
        client
            .create_external_attachment(
                "12345",
                "Triage bot for Alice Smith · running",
                "https://ordonis.example.com/sessions/0193ab7f",
            )
            .await,
    );
    accepted("DELETE attachment", client.delete_attachment("12345").await);

    // Creates from CollabHub: a task in a project and a subtask, each with the marker in
    // `external` (and an agent assignee's opt-in header); a task by its external gid; the
    // `name` marker's listings; users and agents.
    let ordonis_core_fields = ordonis_core::FieldPatch::new()
        .with(ordonis_core::FieldValue::Title("Login fails".into()))
        .with(ordonis_core::FieldValue::Description(
            "Steps:\n\n- **open**".into(),
        ))
        .with(ordonis_core::FieldValue::DueDate(Some(
            time::Date::from_calendar_date(2026, time::Month::December, 24).unwrap(),
        )));
    let draft = ordonis_core::CreateDraft {
        marker: "tsk_0193ab-01",
        fields: &ordonis_core_fields,
        project: Some("12345"),
        issue_type: None,
        parent: None,
    };
    let mut create = ordonis_asana::create::create_data(&draft);
    create.insert("projects".into(), json!(["12345"]));
    create.insert(
        "external".into(),
        json!({"gid": ordonis_asana::create::external_gid(draft.marker).unwrap()}),
    );
    create.insert("assignee".into(), json!("12345"));
    accepted(
        "POST tasks (external marker)",
        client
            .create_task(None, &create, &[("Asana-Enable", "ai_teammate_actors")])
            .await,
    );
    accepted(
        "POST subtasks (external marker)",
        client.create_task(Some("12345"), &create, &[]).await,
    );
    // Prism answers the example task whatever the gid; a 404 would be `None`.
    accepted(
        "GET task by external gid",
        client.task_by_external("ordonis:tsk_0193ab-01").await,
    );
    accepted(
        "GET tasks modified since (name marker)",
        client
            .project_tasks_since("12345", "2026-12-07T10:00:00Z")
            .await,
    );
    accepted("GET subtasks (name marker)", client.subtasks("12345").await);
    accepted("GET users/me", client.me().await);
    accepted("GET user", client.get_user("12345").await);
    accepted("GET agent", client.get_agent("12345").await);
    // The multipart body is checked too: one without the required `parent` is rejected.
    let no_parent = reqwest::Client::new()
        .post(format!("{base}/attachments"))
        .bearer_auth("x")
        .multipart(
            reqwest::multipart::Form::new()
                .text("resource_subtype", "external")
                .text("name", "x")
                .text("url", "https://x.example"),
        )
        .send()
        .await
        .unwrap();
    assert!(
        no_parent.status().is_client_error() && no_parent.headers().contains_key("sl-violations"),
        "Prism accepted an attachment without a parent: {}",
        no_parent.status()
    );

    // The check has teeth: a mistyped body is rejected, and so is a request without a token.
    let bad = reqwest::Client::new()
        .put(format!("{base}/tasks/12345"))
        .bearer_auth("x")
        .json(&json!({"data": {"name": 123, "completed": "yes", "due_on": "tomorrow"}}))
        .send()
        .await
        .unwrap();
    assert!(
        bad.status().is_client_error(),
        "Prism accepted a bad body: {}",
        bad.status()
    );
    assert!(bad.headers().contains_key("sl-violations"));
    // The listing's limit is checked too: Asana pages hold 1 to 100 records (the client
    // caps what the engine asks for).
    let too_big = reqwest::Client::new()
        .get(format!("{base}/tasks?project=12345&limit=500"))
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert!(
        too_big.status().is_client_error() && too_big.headers().contains_key("sl-violations"),
        "Prism accepted limit=500: {}",
        too_big.status()
    );
    let anon = reqwest::Client::new()
        .get(format!("{base}/tasks/12345"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
}
