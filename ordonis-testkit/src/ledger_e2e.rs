//! The VERA ledger end to end on a store: inbound webhooks and an internal change go through
//! the engine, the store's log is checkpointed and exported, the export verifies offline, and
//! a tampered entry is named by index. Run by every store through [`crate::store_suite!`].

use std::sync::Arc;

use ordonis_core::StoreExt;
use ordonis_core::vera::{CheckpointSigner, ExportCheck, Notary, VeraError, verify_export_dir};
use ordonis_core::{Actor, ActorKind, FieldPatch, FieldPolicy, FieldValue, Principal, Store};

use crate::fake::FakeProvider;
use crate::harness::{SECRET, engine_with_integration};

/// Engine changes (two inbound creations, one edit, one internal change by an agent) produce
/// entries a signed checkpoint from this store covers; the export verifies offline; flipping
/// one byte of one entry fails verification naming that entry.
pub async fn engine_changes_verify_offline(store: Arc<dyn Store>) {
    let fake = Arc::new(FakeProvider::new(SECRET));
    let (engine, integration, ws) =
        engine_with_integration(store.clone(), &FieldPolicy::default(), fake.clone()).await;
    let title = |t: &str| FieldPatch::new().with(FieldValue::Title(t.to_owned()));
    fake.remote_create("A-1", &title("first"), "alice");
    fake.remote_create("A-2", &title("second"), "bob");
    fake.remote_edit("A-1", FieldValue::Title("first, edited".into()), "alice");
    for d in fake.take_deliveries() {
        let r = engine
            .ingest(integration, &http::Method::POST, &d.headers, d.body)
            .await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let worker = ordonis_core::Worker::new(engine.clone(), ordonis_core::WorkerConfig::default());
    worker
        .drain()
        .await
        .unwrap_or_else(|e| panic!("drain: {e}"));
    let tasks = store
        .all_tasks(&ws)
        .await
        .unwrap_or_else(|e| panic!("tasks: {e}"));
    assert_eq!(tasks.len(), 2);
    let for_whom = Principal {
        kind: ActorKind::Human,
        id: "usr_1".into(),
        grant: None,
        display_name: None,
    };
    let agent = Actor::agent("agent-7", vec![for_whom]);
    engine
        .change_task(&ws, tasks[0].id, &agent, &title("renamed by an agent"))
        .await
        .unwrap_or_else(|e| panic!("change_task: {e}"));
    let size = store
        .ledger_size(&ws)
        .await
        .unwrap_or_else(|e| panic!("ledger_size: {e}"));
    assert!(
        size >= 4,
        "one entry per applied change at least, got {size}"
    );

    let signer = CheckpointSigner::from_seed(&[5; 32]);
    let export = Notary::new(&*store, &signer)
        .export(&ws)
        .await
        .unwrap_or_else(|e| panic!("export: {e}"));
    assert_eq!(
        export.checkpoint.checkpoint.size, size,
        "the checkpoint covers every entry"
    );
    assert!(
        export
            .entries
            .iter()
            .any(|e| String::from_utf8_lossy(e).contains("agent-7")),
        "the agent's change is in the log"
    );
    let dir = std::env::temp_dir().join(format!("ordonis-vera-e2e-{}", uuid::Uuid::now_v7()));
    export
        .write_dir(&dir)
        .unwrap_or_else(|e| panic!("write_dir: {e}"));
    let trusted = signer
        .trusted_keys(&export.checkpoint.checkpoint.origin)
        .unwrap_or_else(|e| panic!("trusted_keys: {e}"));
    let strict = ExportCheck {
        strict: true,
        ..ExportCheck::default()
    };
    let (cp, report) =
        verify_export_dir(&dir, &trusted, &strict).unwrap_or_else(|e| panic!("verify: {e}"));
    assert_eq!((cp.size, report.size), (size, size));

    // Flip one byte inside the last entry's bytes.
    let path = dir.join("entries");
    let mut bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read: {e}"));
    let pos = bytes.len() - 10;
    bytes[pos] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("write: {e}"));
    match verify_export_dir(&dir, &trusted, &ExportCheck::default()) {
        Err(VeraError::Tampered { index, .. }) => assert_eq!(index, size - 1),
        other => panic!("a tampered entry must be named: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
