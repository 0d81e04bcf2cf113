//! Rich text, end to end over real HTTP (FakeAsana, which keeps `html_notes` as Asana does,
//! its project webhook, the engine, a worker and the memory store). A description written in
//! Asana with a heading, lists, a link, an image, an @-mention and a table:
//!
//! - is imported from `html_notes` as Markdown;
//! - a title edit leaves Asana's rich text byte-identical (only `name` is written);
//! - a description edit keeps the image and the mention byte for byte, and its echo settles
//!   the field in one step (confirmed, no conflict, no second push);
//! - an edit that would drop the mention is refused, with the reason in the ledger, and
//!   Asana's rich text is left alone.
//!
//! The fake wipes rich text on a write of plain `notes`, as Asana does: the old push (which
//! wrote `notes`) fails the byte-identity checks here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Site, TOKEN};
use ordonis_asana::rich_text::html_to_markdown;
use ordonis_core::{Actor, Field, FieldPatch, FieldValue, Ledger, Outcome, Task};
use ordonis_fakes::asana::FakeAsana;
use serde_json::{Value, json};

fn rich() -> String {
    let task: Value = serde_json::from_str(include_str!("fixtures/task_rich_notes.json")).unwrap();
    task["data"]["html_notes"].as_str().unwrap().to_owned()
}

async fn change(site: &Site, task: &Task, patch: FieldPatch) {
    site.engine
        .change_task(&site.ws, task.id, &Actor::human("u-1"), &patch)
        .await
        .unwrap();
}

fn html_of(fake: &FakeAsana, gid: &str) -> String {
    fake.task(gid).unwrap()["html_notes"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_text_round_trips_through_collabhub() {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let project = fake.add_project("Launch");
    let site = Site::start(&fake, &project, json!({"projects": [project]}), "ws-rich").await;
    let gid = fake.create_task_in(&project, "Launch plan").await;
    fake.change_task(&gid, json!({"html_notes": rich()}))
        .await
        .unwrap();
    site.settle(&fake).await;
    site.notes().await;

    // Imported from the rich text, not the plain notes.
    let task = site.task(&gid).await.unwrap();
    assert_eq!(task.fields.description, html_to_markdown(&rich()).unwrap());
    assert!(
        task.fields
            .description
            .contains("[@Greg Sanchez](https://app.asana.com/0/1199/list)")
    );

    // 1. A title edit leaves the rich text byte-identical: only `name` is written.
    change(
        &site,
        &task,
        FieldPatch::new().with(FieldValue::Title("Launch plan v2".into())),
    )
    .await;
    site.settle(&fake).await;
    assert_eq!(fake.task(&gid).unwrap()["name"], "Launch plan v2");
    assert_eq!(html_of(&fake, &gid), rich());
    let (_, put) = fake.puts().pop().unwrap();
    assert_eq!(put, json!({"name": "Launch plan v2"}));
    let task = site.task(&gid).await.unwrap();
    assert!(task.sync[&Field::Title].sent.is_empty(), "title settled");

    // 2. A description edit keeps the mention, the image and the table byte for byte; its
    //    echo settles the field in one step.
    let edited = task
        .fields
        .description
        .replace("[the spec]", "[the new spec]");
    assert_ne!(edited, task.fields.description);
    let puts_before = fake.puts().len();
    change(
        &site,
        &task,
        FieldPatch::new().with(FieldValue::Description(edited.clone())),
    )
    .await;
    site.settle(&fake).await;
    assert_eq!(
        html_of(&fake, &gid),
        rich().replace(">the spec<", ">the new spec<")
    );
    let (_, put) = fake.puts().pop().unwrap();
    assert!(put.get("notes").is_none(), "plain notes are never written");
    assert_eq!(fake.puts().len(), puts_before + 1, "one push, no echo loop");
    let task = site.task(&gid).await.unwrap();
    let st = &task.sync[&Field::Description];
    assert!(st.sent.is_empty() && st.want.is_none(), "settled: {st:?}");
    assert_eq!(task.fields.description, edited);
    let entries = site.store.task_ledger(&site.ws, task.id).await.unwrap();
    let description: Vec<_> = entries
        .iter()
        .filter(|e| e.record.field == Some(Field::Description))
        .collect();
    assert!(
        description
            .iter()
            .any(|e| e.record.outcome == Outcome::Confirmed),
        "{description:#?}"
    );
    assert!(
        !entries
            .iter()
            .any(|e| e.record.outcome == Outcome::Conflict),
        "{entries:#?}"
    );

    // 3. An edit that would drop the mention is refused, with the reason in the ledger.
    let before = html_of(&fake, &gid);
    let without_mention = edited.replace(
        ", says [@Greg Sanchez](https://app.asana.com/0/1199/list).",
        ".",
    );
    assert_ne!(without_mention, edited);
    change(
        &site,
        &task,
        FieldPatch::new().with(FieldValue::Description(without_mention)),
    )
    .await;
    site.settle(&fake).await;
    assert_eq!(html_of(&fake, &gid), before);
    let entries = site.store.task_ledger(&site.ws, task.id).await.unwrap();
    let refused = entries
        .iter()
        .rev()
        .find(|e| {
            e.record.field == Some(Field::Description) && e.record.outcome == Outcome::Rejected
        })
        .expect("a refusal in the ledger");
    assert!(
        refused.record.rule.contains("an @-mention"),
        "{}",
        refused.record.rule
    );
}

/// What the fake holds is what Asana holds: a write of plain `notes` wipes the rich text,
/// and rich text Asana would refuse is a 400 for the whole `PUT`.
#[tokio::test]
async fn the_fake_keeps_rich_text_as_asana_does() {
    let fake = FakeAsana::start(TOKEN).await.unwrap();
    let gid = fake.create_task("Notes");
    let http = reqwest::Client::new();
    let put = |data: Value| {
        http.put(format!("{}/tasks/{gid}", fake.base_url()))
            .bearer_auth(TOKEN)
            .json(&json!({ "data": data }))
            .send()
    };
    let r = put(json!({"html_notes": rich(), "name": "kept?"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["data"].get("html_notes").is_none(),
        "not a default field"
    );
    let t = fake.task(&gid).unwrap();
    assert_eq!(t["html_notes"], rich());
    assert!(t["notes"].as_str().unwrap().starts_with("Launch plan\n"));

    let r = put(json!({"html_notes": "<body><p>no</p></body>", "name": "refused"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        fake.task(&gid).unwrap()["name"],
        "kept?",
        "the whole PUT refused"
    );

    let got: Value = http
        .get(format!(
            "{}/tasks/{gid}?opt_fields=name,html_notes",
            fake.base_url()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["html_notes"], rich());

    put(json!({"notes": "plain <now>"})).await.unwrap();
    assert_eq!(
        fake.task(&gid).unwrap()["html_notes"],
        "<body>plain &lt;now&gt;</body>",
        "mentions, images and formatting are gone"
    );
}
