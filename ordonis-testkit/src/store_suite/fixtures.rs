//! What every store-suite case builds on: a workspace, an integration, an inbox event, a
//! ledger draft, a task, a claim request.

use bytes::Bytes;
use ordonis_core::StoreExt;
use ordonis_core::store::{
    ClaimRequest, InsertOutcome, IntegrationRecord, JobState, NewInboxEvent, Store, TaskWrite,
    UnitOfWork,
};
use ordonis_core::{
    Actor, ApiAuth, Cause, CauseKind, EventId, Field, FieldValue, IntegrationId,
    IntegrationSecrets, Keyring, LedgerDraft, Op, Outcome, ProviderKind, SecretKey, Task,
    WorkspaceId,
};
use std::time::Duration;
use time::OffsetDateTime;

pub(crate) fn ws(name: &str) -> WorkspaceId {
    WorkspaceId::new(format!("{name}-{}", uuid::Uuid::now_v7())).unwrap_or_else(|_| unreachable!())
}

/// A stored integration in a fresh workspace.
pub async fn integration(store: &dyn Store, workspace: &WorkspaceId) -> IntegrationRecord {
    let id = IntegrationId::new();
    let ring = Keyring::new(SecretKey::from_bytes(1, [7; 32]));
    let secrets = IntegrationSecrets {
        api_auth: Some(ApiAuth::Basic {
            email: "bot@example.com".into(),
            api_token: "PLAINTEXT-API-TOKEN".into(),
        }),
        webhook_secrets: vec!["PLAINTEXT-WEBHOOK-SECRET".into()],
        app_secret: None,
    };
    let rec = IntegrationRecord {
        id,
        workspace_id: workspace.clone(),
        provider: ProviderKind::new("fake"),
        config: serde_json::json!({"base_url": "http://127.0.0.1:9"}),
        secrets: ring
            .seal(id, &secrets)
            .unwrap_or_else(|e| panic!("seal: {e}")),
        paused_until: None,
        state: ordonis_core::IntegrationState::Active,
        created_at: OffsetDateTime::now_utc(),
    };
    store
        .create_integration(&rec)
        .await
        .unwrap_or_else(|e| panic!("create_integration: {e}"));
    rec
}

/// A pending inbox event.
pub fn event(rec: &IntegrationRecord, dedupe: &str, object: Option<&str>) -> NewInboxEvent {
    let body = Bytes::from(format!("{{\"dedupe\":\"{dedupe}\"}}"));
    NewInboxEvent {
        id: EventId::new(),
        workspace_id: rec.workspace_id.clone(),
        integration_id: rec.id,
        dedupe_key: dedupe.to_owned(),
        delivery_id: Some(dedupe.to_owned()),
        object_key: object.map(str::to_owned),
        headers: vec![("x-test".into(), "1".into())],
        body_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
        body,
        auth: "test".into(),
        state: JobState::Pending,
        note: None,
    }
}

pub(crate) fn claim(worker: &str, limit: usize, lease_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker: worker.to_owned(),
        limit,
        lease: Duration::from_millis(lease_ms),
    }
}

/// A ledger draft about a task.
pub fn draft(task: &Task, n: usize) -> LedgerDraft {
    LedgerDraft {
        workspace_id: task.workspace_id.clone(),
        integration_id: None,
        task_id: task.id,
        external: None,
        op: Op::Set,
        field: Some(Field::Title),
        before: Some(FieldValue::Title(String::new())),
        after: Some(FieldValue::Title(format!("title {n}"))),
        outcome: Outcome::Applied,
        rule: "owner=collabhub;direction=both;test".into(),
        actor: Actor::human("usr_1"),
        cause: Cause {
            kind: CauseKind::InternalAction,
            id: format!("act_{n}"),
            delivery_id: None,
            parent_action: None,
            evidence: None,
        },
        occurred_at: None,
        observed_at: OffsetDateTime::now_utc(),
        comment: None,
        session: None,
    }
}

pub(crate) async fn insert_task(store: &dyn Store, workspace: &WorkspaceId) -> Task {
    let mut task = Task::new(workspace.clone());
    task.fields.title = "first".into();
    task.revision = 1;
    let mut uow = UnitOfWork::new(workspace.clone());
    uow.task = Some(TaskWrite {
        task: task.clone(),
        expected_revision: None,
    });
    store
        .commit(uow)
        .await
        .unwrap_or_else(|e| panic!("commit: {e}"));
    task
}

pub(crate) async fn insert_one(store: &dyn Store, e: NewInboxEvent) -> InsertOutcome {
    let mut v = store
        .insert_events(&[e])
        .await
        .unwrap_or_else(|e| panic!("insert_events: {e}"));
    v.remove(0)
}

/// Claims `limit` rows as `worker` until the claim returns some, or panics after `within`.
/// Waits on the condition (the lease to expire), not on a guessed sleep.
pub(crate) async fn claim_when_free(
    store: &dyn Store,
    worker: &str,
    lease_ms: u64,
    within: std::time::Duration,
) -> Vec<ordonis_core::InboxEvent> {
    let until = std::time::Instant::now() + within;
    loop {
        let got = store
            .claim_events(&claim(worker, 1, lease_ms))
            .await
            .unwrap_or_else(|e| panic!("claim: {e}"));
        if !got.is_empty() {
            return got;
        }
        assert!(
            std::time::Instant::now() < until,
            "no row became claimable by {worker} within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
