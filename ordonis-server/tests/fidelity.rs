//! Provider fidelity (#15) through the reference server's HTTP API, on SQLite and on
//! `MemoryStore`, over FakeAsana with its own project webhook registered by the server:
//! - a 403 on a fetch leaves the task alive and is shown on the integration
//!   (`access_denied` in `GET /api/integrations/{id}` and its console page) until the task
//!   is readable again;
//! - a task removed from the project in scope is `out_of_scope` (ledger `leave_scope`), a
//!   `PATCH` of it is a 409, and it syncs again once added back (`enter_scope`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, eventually};
use ordonis_fakes::asana::FakeAsana;
use serde_json::{Value, json};

async fn integration(api: &Api, id: &str) -> Value {
    let (s, v) = api.get(&format!("/api/integrations/{id}")).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn task_of(api: &Api, ws: &str, title: &str) -> Option<Value> {
    api.tasks(ws)
        .await
        .into_iter()
        .find(|t| t["title"] == title)
}

async fn ops(api: &Api, task_id: &str) -> Vec<String> {
    let (s, v) = api.get(&format!("/api/tasks/{task_id}/ledger")).await;
    assert_eq!(s, 200, "{v}");
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap_or("").to_owned())
        .collect()
}

macro_rules! fidelity_tests {
    () => {
        use super::*;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn asana_access_and_membership_are_shown_where_an_operator_looks() {
            let server = common::start_on(module_path!(), |_| {}).await;
            let api = Api::new(&server);
            let asana = FakeAsana::start("asana-token").await.unwrap();
            let (project, other) = (asana.add_project("Fidelity"), asana.add_project("Other"));
            let private = asana.seed_task_in(&project, "Private plans");
            let moving = asana.seed_task_in(&project, "Moving task");
            let ws = format!("fidelity-{}", uuid::Uuid::now_v7());
            let (s, v) = api
                .post(
                    "/api/integrations",
                    &json!({
                        "workspace_id": ws, "provider": "asana", "base_url": asana.base_url(),
                        "auth": {"type": "bearer", "token": "asana-token"},
                        "scope": {"projects": [project]},
                        "register_webhook": true,
                        "reconcile_every_s": 3600,
                    }),
                )
                .await;
            assert_eq!(s, 201, "{v}");
            let id = v["integration_id"].as_str().unwrap().to_owned();
            eventually("the backfill", || async {
                (api.tasks(&ws).await.len() == 2).then_some(())
            })
            .await;
            let (s, _) = api.post(&format!("/api/integrations/{id}/reconcile"), &json!({})).await;
            assert_eq!(s, 202);
            eventually("the registered webhook", || async {
                (integration(&api, &id).await["sync"]["webhook"]["state"] == "healthy").then_some(())
            })
            .await;
            assert_eq!(integration(&api, &id).await["access_denied"], json!([]));

            // 403: the task stays, and the integration says which object it cannot read.
            assert_eq!(asana.hide_task(&private).await, Some(1));
            let v = eventually("the access problem", || async {
                let v = integration(&api, &id).await;
                (v["access_denied"].as_array().is_some_and(|a| !a.is_empty())).then_some(v)
            })
            .await;
            let denied = &v["access_denied"][0];
            assert_eq!(denied["external_id"], private.as_str(), "{v}");
            assert!(denied["error"].as_str().unwrap().contains("403"), "{v}");
            let task = task_of(&api, &ws, "Private plans").await.expect("kept");
            assert_eq!(task["deleted"], false);
            let cookie = api.sign_in().await;
            let page = api.ui_page(&cookie, &format!("/ui/integrations/{id}")).await;
            assert!(page.contains("id=\"access-denied\"") && page.contains(&private), "{page}");

            // Readable again: the next event syncs it and the integration's error is gone.
            asana.show_task(&private).await;
            eventually("the cleared access problem", || async {
                (integration(&api, &id).await["access_denied"] == json!([])).then_some(())
            })
            .await;

            // Moved to another project: out of scope, recorded; a PATCH is refused.
            asana.add_to_project(&moving, &other).await.unwrap();
            assert_eq!(asana.remove_from_project(&moving, &project).await, Some(1));
            let task = eventually("out of scope", || async {
                task_of(&api, &ws, "Moving task")
                    .await
                    .filter(|t| t["out_of_scope"] == true)
            })
            .await;
            let task_id = task["id"].as_str().unwrap().to_owned();
            assert!(ops(&api, &task_id).await.contains(&"leave_scope".to_owned()));
            let (s, v) = api
                .patch(
                    &format!("/api/tasks/{task_id}"),
                    &json!({"actor": {"kind": "human", "id": "u-1"}, "fields": {"title": "Ours"}}),
                )
                .await;
            assert_eq!(s, 409, "{v}");
            let page = api.ui_page(&cookie, &format!("/ui/tasks/{task_id}")).await;
            assert!(page.contains("id=\"out-of-scope\""), "{page}");

            // Added back: in scope again, recorded.
            assert_eq!(asana.add_to_project(&moving, &project).await, Some(1));
            eventually("back in scope", || async {
                task_of(&api, &ws, "Moving task")
                    .await
                    .filter(|t| t["out_of_scope"] == false)
            })
            .await;
            assert!(ops(&api, &task_id).await.contains(&"enter_scope".to_owned()));
            server.shutdown().await;
        }
    };
}

mod sqlite {
    fidelity_tests!();
}

mod memory {
    fidelity_tests!();
}
