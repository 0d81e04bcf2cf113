//! The engine end to end over `MemoryStore` + `FakeProvider`: ingest's answers and what it
//! stores, workers' retries, rate limits, dead letters, refusals, handshakes, rotation,
//! tombstones and attribution.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use ordonis_core::store::{EventFilter, Store, StoreExt};
use ordonis_core::{
    Actor, ActorKind, Field, FieldPatch, FieldPolicy, FieldValue, IngestOutcome, JobState, Ledger,
    Outcome, Principal, ProviderError, Status, StatusCategory,
};
use ordonis_testkit::fake::{FakeOptions, FakeProvider, SIGNATURE_HEADER};
use ordonis_testkit::harness::{SECRET, Setup};
use rand::SeedableRng;
use tokio_util::sync::CancellationToken;

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

fn title(t: &str) -> FieldValue {
    FieldValue::Title(t.into())
}

async fn with_task() -> (Setup, ordonis_core::TaskId) {
    let s = Setup::new(&FieldPolicy::default()).await;
    s.fake
        .remote_create("A", &FieldPatch::new().with(title("first")), "alice");
    s.settle(2, 1, &mut rng()).await;
    let id = s.store.all_tasks(&s.workspace).await.unwrap()[0].id;
    (s, id)
}

#[tokio::test]
async fn bad_signatures_store_nothing() {
    let s = Setup::new(&FieldPolicy::default()).await;
    s.fake
        .remote_create("A", &FieldPatch::new().with(title("x")), "alice");
    let d = s.fake.take_deliveries().remove(0);
    let post = |headers: http::HeaderMap, body: Bytes| {
        let e = s.engine.clone();
        let id = s.integration;
        async move { e.ingest(id, &http::Method::POST, &headers, body).await }
    };
    let mut tampered = d.body.to_vec();
    tampered[5] ^= 1;
    assert_eq!(
        post(d.headers.clone(), Bytes::from(tampered)).await.status,
        401
    );
    let mut missing = d.headers.clone();
    missing.remove(SIGNATURE_HEADER);
    assert_eq!(post(missing, d.body.clone()).await.status, 401);
    let mut wrong = d.headers.clone();
    wrong.insert(
        SIGNATURE_HEADER,
        FakeProvider::sign("other", &d.body).parse().unwrap(),
    );
    assert_eq!(post(wrong, d.body.clone()).await.status, 401);
    assert!(
        s.store
            .events(&s.workspace, &EventFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let unknown = s
        .engine
        .ingest(
            ordonis_core::IntegrationId::new(),
            &http::Method::POST,
            &d.headers,
            d.body.clone(),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let big = Bytes::from(vec![b' '; 1024 * 1024 + 1]);
    assert_eq!(post(d.headers.clone(), big).await.status, 413);
    assert!(
        s.store
            .events(&s.workspace, &EventFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    // The genuine delivery is stored once, however often it comes.
    let first = post(d.headers.clone(), d.body.clone()).await;
    assert!(matches!(first.outcome, IngestOutcome::Stored(_)));
    let again = post(d.headers.clone(), d.body.clone()).await;
    assert_eq!(again.status, 200);
    assert!(matches!(again.outcome, IngestOutcome::Duplicate(_)));
    assert_eq!(
        s.store
            .events(&s.workspace, &EventFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn unparseable_body_is_kept_failed_and_never_retried() {
    let s = Setup::new(&FieldPolicy::default()).await;
    let body = Bytes::from_static(b"{not json");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        SIGNATURE_HEADER,
        FakeProvider::sign(SECRET, &body).parse().unwrap(),
    );
    let resp = s
        .engine
        .ingest(s.integration, &http::Method::POST, &headers, body.clone())
        .await;
    assert_eq!(
        resp.status, 200,
        "stored, so the provider does not retry it"
    );
    let events = s
        .store
        .events(&s.workspace, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].state, JobState::Failed);
    assert_eq!(events[0].body, body, "the raw body is kept");
    assert!(
        events[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("bad input")
    );
    let report = s.worker(0).drain().await.unwrap();
    assert_eq!(report.claimed, 0);
}

#[tokio::test]
async fn rate_limit_pauses_the_integration_without_spending_attempts() {
    let (s, task) = with_task().await;
    s.fake.inject(|f| {
        f.next_calls.push_back(ProviderError::rate_limited_for(
            Duration::from_secs(3600),
            "burst",
        ));
    });
    s.engine
        .change_task(
            &s.workspace,
            task,
            &Actor::human("u"),
            &FieldPatch::new().with(title("second")),
        )
        .await
        .unwrap();
    s.worker(0).drain().await.unwrap();
    let rec = s.store.integration(s.integration).await.unwrap().unwrap();
    assert!(
        rec.paused_until
            .is_some_and(|p| p > time::OffsetDateTime::now_utc())
    );
    let push = s.store.pushes(&s.workspace).await.unwrap().remove(0);
    assert_eq!((push.state, push.attempts), (JobState::Pending, 0));
    assert!(push.last_error.unwrap().contains("rate limited"));
    assert!(s.fake.pushes().is_empty());
    // Other workers leave the paused integration alone too.
    assert_eq!(s.worker(1).drain().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn retryable_failures_dead_letter_after_max_attempts_and_replay() {
    let (s, task) = with_task().await;
    s.fake.inject(|f| {
        for _ in 0..4 {
            f.next_calls.push_back(ProviderError::retryable("HTTP 503"));
        }
    });
    s.engine
        .change_task(
            &s.workspace,
            task,
            &Actor::human("u"),
            &FieldPatch::new().with(title("second")),
        )
        .await
        .unwrap();
    for _ in 0..200 {
        s.worker(0).drain().await.unwrap();
        let p = s.store.pushes(&s.workspace).await.unwrap().remove(0);
        if p.state == JobState::Dead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let p = s.store.pushes(&s.workspace).await.unwrap().remove(0);
    assert_eq!(p.state, JobState::Dead, "dead after 4 attempts");
    assert_eq!(p.attempts, 4);
    assert!(p.last_error.unwrap().contains("HTTP 503"));
    assert!(s.fake.pushes().is_empty());
    s.store.replay_push(&s.workspace, p.id).await.unwrap();
    s.settle(1, 1, &mut rng()).await;
    assert_eq!(
        s.fake.remote("A").unwrap().get(Field::Title),
        Some(&title("second"))
    );
}

#[tokio::test]
async fn refused_change_is_recorded_not_retried() {
    let (s, task) = with_task().await;
    s.fake.inject(|f| {
        f.refuse
            .insert(Field::Status, "transition needs a resolution screen".into());
    });
    let done = FieldValue::Status(Status::new(StatusCategory::Done, "Done"));
    let receipt = s
        .engine
        .change_task(
            &s.workspace,
            task,
            &Actor::human("u"),
            &FieldPatch::new().with(done),
        )
        .await
        .unwrap();
    assert_eq!(
        receipt.entries[0].outcome,
        Outcome::Requested,
        "status is provider-owned"
    );
    s.settle(1, 1, &mut rng()).await;
    let log = s.store.task_ledger(&s.workspace, task).await.unwrap();
    let rejected = log
        .iter()
        .find(|e| e.record.outcome == Outcome::Rejected)
        .expect("a rejected entry");
    assert!(rejected.record.rule.contains("resolution screen"));
    let t = s
        .store
        .workspace_task(&s.workspace, task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        t.fields.status.category,
        StatusCategory::Todo,
        "the provider kept its value"
    );
    assert_eq!(s.fake.pushes().len(), 1, "not retried");
    assert_eq!(s.outstanding().await, 0);
}

#[tokio::test]
async fn handshake_only_when_expected() {
    let caps = FakeOptions {
        snapshots: true,
        handshake: true,
    };
    let s = Setup::with_fake(
        &FieldPolicy::default(),
        FakeProvider::with_options("hs-secret", caps),
    )
    .await;
    // Setup created the integration with a secret, so it does not expect a handshake.
    let h = FakeProvider::handshake_headers("attacker");
    let r = s
        .engine
        .ingest(s.integration, &http::Method::POST, &h, Bytes::new())
        .await;
    assert_eq!(r.status, 401);
    s.engine.expect_handshake(s.integration).await.unwrap();
    let h = FakeProvider::handshake_headers("hs-secret");
    let r = s
        .engine
        .ingest(s.integration, &http::Method::POST, &h, Bytes::new())
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "x-fake-hook-secret" && v == "hs-secret"),
        "secret echoed"
    );
    // Deliveries signed with the new secret verify; a second handshake is refused.
    s.fake
        .remote_create("A", &FieldPatch::new().with(title("x")), "alice");
    let d = s.fake.take_deliveries().remove(0);
    assert_eq!(
        s.engine
            .ingest(s.integration, &http::Method::POST, &d.headers, d.body)
            .await
            .status,
        200
    );
    let again = FakeProvider::handshake_headers("evil");
    assert_eq!(
        s.engine
            .ingest(s.integration, &http::Method::POST, &again, Bytes::new())
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn rotated_secrets_overlap() {
    let s = Setup::new(&FieldPolicy::default()).await;
    s.engine
        .rotate_webhook_secret(s.integration, "second".into())
        .await
        .unwrap();
    let body = Bytes::from_static(b"{\"x\":1}");
    let signed = |secret: &str| {
        let mut h = http::HeaderMap::new();
        h.insert(
            SIGNATURE_HEADER,
            FakeProvider::sign(secret, &body).parse().unwrap(),
        );
        h
    };
    for secret in [SECRET, "second"] {
        let r = s
            .engine
            .ingest(
                s.integration,
                &http::Method::POST,
                &signed(secret),
                body.clone(),
            )
            .await;
        assert_eq!(r.status, 200, "{secret} accepted during overlap");
    }
    s.engine
        .rotate_webhook_secret(s.integration, "third".into())
        .await
        .unwrap();
    let r = s
        .engine
        .ingest(
            s.integration,
            &http::Method::POST,
            &signed(SECRET),
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 401, "the oldest secret retired");
}

#[tokio::test]
async fn deleted_remote_becomes_tombstone_and_agents_are_attributed() {
    let (s, task) = with_task().await;
    let agent = Actor::agent(
        "agt-9",
        vec![Principal {
            kind: ActorKind::Human,
            id: "usr-1".into(),
            grant: Some("assign-7".into()),
            display_name: None,
        }],
    );
    s.engine
        .change_task(
            &s.workspace,
            task,
            &agent,
            &FieldPatch::new().with(title("by agent")),
        )
        .await
        .unwrap();
    s.settle(1, 2, &mut rng()).await;
    let log = s.store.task_ledger(&s.workspace, task).await.unwrap();
    let applied = log.iter().find(|e| e.record.actor.id == "agt-9").unwrap();
    assert_eq!(applied.record.actor.on_behalf_of[0].id, "usr-1");
    let echo = log
        .iter()
        .find(|e| e.record.outcome == Outcome::Confirmed)
        .unwrap();
    assert_eq!(
        echo.record.cause.parent_action.as_deref(),
        Some(applied.record.cause.id.as_str()),
        "the echo points to its cause"
    );
    assert!(Actor::agent("agt-9", vec![]).validate().is_err());

    s.fake.remote_delete("A", "alice");
    s.settle(1, 1, &mut rng()).await;
    let t = s
        .store
        .workspace_task(&s.workspace, task)
        .await
        .unwrap()
        .unwrap();
    assert!(t.deleted, "tombstoned, not removed");
    assert_eq!(t.fields.title, "by agent");
    assert!(
        s.engine
            .change_task(
                &s.workspace,
                task,
                &Actor::human("u"),
                &FieldPatch::new().with(title("late"))
            )
            .await
            .is_err()
    );
    let n = s.store.ledger_size(&s.workspace).await.unwrap();
    let entries = s.store.ledger_entries(&s.workspace, 0, 1000).await.unwrap();
    assert_eq!(entries.len() as u64, n);
}

#[tokio::test]
async fn worker_stops_on_cancellation() {
    let (s, task) = with_task().await;
    let token = CancellationToken::new();
    let w = s.worker(0);
    let t2 = token.clone();
    let handle = tokio::spawn(async move { w.run(t2).await });
    s.engine
        .change_task(
            &s.workspace,
            task,
            &Actor::human("u"),
            &FieldPatch::new().with(title("live")),
        )
        .await
        .unwrap();
    for _ in 0..200 {
        if !s.fake.pushes().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(s.fake.pushes().len(), 1, "the running worker pushed");
    token.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("stopped in time")
        .unwrap();
}

/// `ingest` reuses a loaded integration for a moment, but never to refuse: a secret rotated
/// in, or a handshake expected, by another process (another engine on the same store) is
/// honoured at once.
#[tokio::test]
async fn ingest_cache_never_refuses_what_another_process_allowed() {
    use std::sync::Arc;

    use ordonis_core::{
        Engine, IntegrationConfig, IntegrationSecrets, Keyring, NewIntegration, ProviderKind,
        SecretKey,
    };
    use ordonis_store_memory::MemoryStore;

    let caps = FakeOptions {
        snapshots: true,
        handshake: true,
    };
    let fake = Arc::new(FakeProvider::with_options(SECRET, caps));
    let store = Arc::new(MemoryStore::new());
    let engine = |store: Arc<MemoryStore>| {
        Engine::builder(store, Keyring::new(SecretKey::from_bytes(1, [9; 32])))
            .provider(fake.clone())
            .build()
    };
    let (here, elsewhere) = (engine(store.clone()), engine(store.clone()));
    let id = here
        .create_integration(NewIntegration {
            workspace_id: ordonis_core::WorkspaceId::new("cache").unwrap(),
            provider: ProviderKind::new("fake"),
            config: IntegrationConfig::new("http://fake.invalid"),
            secrets: IntegrationSecrets {
                api_auth: None,
                webhook_secrets: vec![SECRET.to_owned()],
                app_secret: None,
            },
        })
        .await
        .unwrap();
    fake.remote_create("A", &FieldPatch::new().with(title("one")), "alice");
    fake.remote_edit("A", title("two"), "alice");
    let mut d = fake.take_deliveries();
    let first = d.remove(0);
    let r = here
        .ingest(id, &http::Method::POST, &first.headers, first.body)
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Another process rotates the secret in: a delivery signed
    // with the new secret is accepted here straight away, though this engine cached the old.
    elsewhere
        .rotate_webhook_secret(id, "rotated-secret".to_owned())
        .await
        .unwrap();
    let second = d.remove(0);
    let mut headers = second.headers.clone();
    headers.insert(
        SIGNATURE_HEADER,
        FakeProvider::sign("rotated-secret", &second.body)
            .parse()
            .unwrap(),
    );
    let r = here
        .ingest(id, &http::Method::POST, &headers, second.body)
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Another process starts creating a webhook: the handshake arriving here is taken.
    elsewhere.expect_handshake(id).await.unwrap();
    let h = FakeProvider::handshake_headers("hs-from-provider");
    let r = here.ingest(id, &http::Method::POST, &h, Bytes::new()).await;
    assert_eq!(r.status, 200, "{r:?}");
    // ...once only.
    let h = FakeProvider::handshake_headers("evil");
    let r = here.ingest(id, &http::Method::POST, &h, Bytes::new()).await;
    assert_eq!(r.status, 401);
}

/// A task linked to an existing object by id is keyed with the provider's own object type
/// (`Capabilities::object_type`; the fake's objects are `item`s), so that object's later
/// webhooks update that task instead of importing a second one.
#[tokio::test]
async fn a_linked_object_is_keyed_with_the_providers_object_type() {
    let (s, _) = with_task().await;
    s.fake.remote_create(
        "B",
        &FieldPatch::new().with(title("made in the provider")),
        "bob",
    );
    let _ = s.fake.take_deliveries();
    let alice = Actor::human("usr_alice");
    let made = s
        .engine
        .create_task(
            &s.workspace,
            &alice,
            &FieldPatch::new().with(title("ours")),
            None,
        )
        .await
        .unwrap();
    let linked = s
        .engine
        .link_task(&s.workspace, made.task_id, &alice, s.integration, "B")
        .await
        .unwrap();
    let key = linked.link().map(|l| l.key.clone());
    assert_eq!(
        key.as_ref()
            .map(|k| (k.external_id.as_str(), k.object_type.as_str())),
        Some(("B", "item")),
        "{linked:?}"
    );
    s.fake
        .remote_edit("B", title("edited in the provider"), "bob");
    s.settle(2, 1, &mut rng()).await;
    let tasks = s.store.all_tasks(&s.workspace).await.unwrap();
    assert_eq!(tasks.len(), 2, "the edit imported a second task: {tasks:?}");
    let t = s.store.task(made.task_id).await.unwrap().unwrap();
    assert_eq!(t.fields.title, "edited in the provider");
}
