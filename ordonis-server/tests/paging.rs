//! Bounded reads (issue #29): on a workspace of a few thousand tasks, one task's page, a
//! page of its ledger and the ledger export read a bounded number of rows per store call,
//! and none of them reads the workspace's tasks. A counting wrapper delegates to the real
//! SQLite store (a real database, instrumented; not a mock) and records the rows each call
//! returned.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ordonis_core::store::*;
use ordonis_core::vera::{
    ExportCheck, ExportWriter, Notary, TrustedKeys, log_name, verify_export_dir,
};
use ordonis_core::*;
use ordonis_server::{Config, Server};
use ordonis_store_sqlite::SqliteStore;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Per method: (calls, rows returned in all, most rows in one call).
type Counts = BTreeMap<&'static str, (u64, u64, u64)>;

/// A store that counts the rows its list reads return, delegating everything.
#[derive(Debug)]
struct Counting {
    inner: SqliteStore,
    counts: Mutex<Counts>,
}

impl Counting {
    fn count(&self, method: &'static str, rows: usize) {
        let mut c = self.counts.lock().unwrap();
        let e = c.entry(method).or_default();
        e.0 += 1;
        e.1 += rows as u64;
        e.2 = e.2.max(rows as u64);
    }

    fn take(&self) -> Counts {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }
}

#[async_trait]
impl Store for Counting {
    async fn create_integration(&self, rec: &IntegrationRecord) -> Result<(), StoreError> {
        self.inner.create_integration(rec).await
    }
    async fn integration(
        &self,
        id: IntegrationId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        self.inner.integration(id).await
    }
    async fn integrations(&self, ws: &WorkspaceId) -> Result<Vec<IntegrationRecord>, StoreError> {
        self.inner.integrations(ws).await
    }
    async fn update_integration(
        &self,
        id: IntegrationId,
        update: &IntegrationUpdate,
    ) -> Result<(), StoreError> {
        self.inner.update_integration(id, update).await
    }
    async fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        self.inner.workspaces().await
    }
    async fn insert_events(
        &self,
        events: &[NewInboxEvent],
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        self.inner.insert_events(events).await
    }
    async fn claim(&self, queue: Queue, req: &ClaimRequest) -> Result<Vec<Job>, StoreError> {
        self.inner.claim(queue, req).await
    }
    async fn fail(
        &self,
        lease: &Lease,
        error: &JobFailure,
        retry: Retry,
    ) -> Result<(), StoreError> {
        self.inner.fail(lease, error, retry).await
    }
    async fn replay(&self, ws: &WorkspaceId, id: JobId) -> Result<(), StoreError> {
        self.inner.replay(ws, id).await
    }
    async fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.inner.job(id).await
    }
    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        let r = self.inner.jobs(filter).await;
        if let Ok(v) = &r {
            self.count("jobs", v.len());
        }
        r
    }
    async fn job_counts(&self, queue: Queue) -> Result<Vec<(JobState, u64)>, StoreError> {
        self.inner.job_counts(queue).await
    }
    async fn task(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        self.inner.task(id).await
    }
    async fn tasks(&self, ws: &WorkspaceId, page: &TaskPage) -> Result<Vec<Task>, StoreError> {
        let r = self.inner.tasks(ws, page).await;
        if let Ok(v) = &r {
            self.count("tasks", v.len());
        }
        r
    }
    async fn query_tasks(&self, q: &TaskQuery) -> Result<TaskList, StoreError> {
        let r = self.inner.query_tasks(q).await;
        if let Ok(v) = &r {
            self.count("query_tasks", v.tasks.len());
        }
        r
    }
    async fn task_statuses(&self, ws: &WorkspaceId) -> Result<Vec<Status>, StoreError> {
        let r = self.inner.task_statuses(ws).await;
        if let Ok(v) = &r {
            self.count("task_statuses", v.len());
        }
        r
    }
    async fn task_assignees(&self, ws: &WorkspaceId) -> Result<Vec<Assignee>, StoreError> {
        let r = self.inner.task_assignees(ws).await;
        if let Ok(v) = &r {
            self.count("task_assignees", v.len());
        }
        r
    }
    async fn task_comments(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<TaskComment>, StoreError> {
        self.inner.task_comments(ws, task).await
    }
    async fn comment(&self, id: CommentId) -> Result<Option<TaskComment>, StoreError> {
        self.inner.comment(id).await
    }
    async fn task_sessions(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<AgentSession>, StoreError> {
        self.inner.task_sessions(ws, task).await
    }
    async fn session(&self, id: SessionId) -> Result<Option<AgentSession>, StoreError> {
        self.inner.session(id).await
    }
    async fn idle_sessions(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AgentSession>, StoreError> {
        self.inner.idle_sessions(before, limit).await
    }
    async fn find_mapping(
        &self,
        integration: IntegrationId,
        key: &ObjectKey,
    ) -> Result<Option<TaskId>, StoreError> {
        self.inner.find_mapping(integration, key).await
    }
    async fn mapped_tasks(
        &self,
        ws: &WorkspaceId,
        integration: IntegrationId,
        keys: &[ObjectKey],
    ) -> Result<Vec<Option<Task>>, StoreError> {
        self.inner.mapped_tasks(ws, integration, keys).await
    }
    async fn commit(&self, uow: UnitOfWork) -> Result<CommitReceipt, StoreError> {
        self.inner.commit(uow).await
    }
    async fn commit_batch(
        &self,
        units: Vec<UnitOfWork>,
    ) -> Result<Vec<Result<CommitReceipt, StoreError>>, StoreError> {
        self.inner.commit_batch(units).await
    }
    async fn schedule_sync(&self, schedule: &SyncSchedule) -> Result<(), StoreError> {
        self.inner.schedule_sync(schedule).await
    }
    async fn claim_sync(&self, req: &ClaimRequest) -> Result<Vec<SyncJob>, StoreError> {
        self.inner.claim_sync(req).await
    }
    async fn save_sync(&self, lease: &SyncLease, save: &SyncSave) -> Result<SyncLease, StoreError> {
        self.inner.save_sync(lease, save).await
    }
    async fn sync_job(&self, integration: IntegrationId) -> Result<Option<SyncJob>, StoreError> {
        self.inner.sync_job(integration).await
    }
    async fn add_sync_repaired(
        &self,
        integration: IntegrationId,
        run: u64,
        fields: u64,
    ) -> Result<(), StoreError> {
        self.inner.add_sync_repaired(integration, run, fields).await
    }
    async fn people(&self, ws: &WorkspaceId) -> Result<Vec<Person>, StoreError> {
        self.inner.people(ws).await
    }
    async fn person(
        &self,
        ws: &WorkspaceId,
        principal: &str,
    ) -> Result<Option<Person>, StoreError> {
        self.inner.person(ws, principal).await
    }
    async fn put_person(&self, person: &Person) -> Result<(), StoreError> {
        self.inner.put_person(person).await
    }
    async fn person_with_account(
        &self,
        ws: &WorkspaceId,
        account: &AccountRef,
    ) -> Result<Option<Person>, StoreError> {
        self.inner.person_with_account(ws, account).await
    }
    async fn people_with_email(
        &self,
        ws: &WorkspaceId,
        email: &str,
    ) -> Result<Vec<Person>, StoreError> {
        self.inner.people_with_email(ws, email).await
    }
    async fn record_accounts(
        &self,
        ws: &WorkspaceId,
        accounts: &[SeenAccount],
    ) -> Result<(), StoreError> {
        self.inner.record_accounts(ws, accounts).await
    }
    async fn seen_accounts(&self, ws: &WorkspaceId) -> Result<Vec<SeenAccount>, StoreError> {
        self.inner.seen_accounts(ws).await
    }
    async fn seen_account(
        &self,
        ws: &WorkspaceId,
        account: &AccountRef,
    ) -> Result<Option<SeenAccount>, StoreError> {
        self.inner.seen_account(ws, account).await
    }
    async fn key_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.key_check().await
    }
    async fn init_key_check(&self, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.inner.init_key_check(sealed).await
    }
    async fn put_console_session(
        &self,
        session: &ConsoleSession,
        now: OffsetDateTime,
        max_live: u64,
    ) -> Result<(), StoreError> {
        self.inner.put_console_session(session, now, max_live).await
    }
    async fn console_session(
        &self,
        id_digest: &[u8; 32],
    ) -> Result<Option<ConsoleSession>, StoreError> {
        self.inner.console_session(id_digest).await
    }
    async fn delete_console_session(&self, id_digest: &[u8; 32]) -> Result<(), StoreError> {
        self.inner.delete_console_session(id_digest).await
    }
}

#[async_trait]
impl Ledger for Counting {
    async fn ledger_size(&self, ws: &WorkspaceId) -> Result<u64, StoreError> {
        self.inner.ledger_size(ws).await
    }
    async fn ledger_entries(
        &self,
        ws: &WorkspaceId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let r = self.inner.ledger_entries(ws, from, limit).await;
        if let Ok(v) = &r {
            self.count("ledger_entries", v.len());
        }
        r
    }
    async fn task_ledger(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let r = self.inner.task_ledger(ws, task).await;
        if let Ok(v) = &r {
            self.count("task_ledger", v.len());
        }
        r
    }
    async fn task_ledger_page(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let r = self.inner.task_ledger_page(ws, task, after, limit).await;
        if let Ok(v) = &r {
            self.count("task_ledger_page", v.len());
        }
        r
    }
    async fn save_checkpoint(
        &self,
        ws: &WorkspaceId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(), StoreError> {
        self.inner.save_checkpoint(ws, checkpoint).await
    }
    async fn latest_checkpoint(
        &self,
        ws: &WorkspaceId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.inner.latest_checkpoint(ws).await
    }
    async fn tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
        self.inner.tile_hashes(ws, level, from, limit).await
    }
    async fn save_tile_hashes(
        &self,
        ws: &WorkspaceId,
        level: u8,
        from: u64,
        hashes: &[[u8; 32]],
    ) -> Result<(), StoreError> {
        self.inner.save_tile_hashes(ws, level, from, hashes).await
    }
    async fn add_cosignature(
        &self,
        ws: &WorkspaceId,
        size: u64,
        witness: &str,
        line: &str,
    ) -> Result<(), StoreError> {
        self.inner.add_cosignature(ws, size, witness, line).await
    }
    async fn cosignatures(&self, ws: &WorkspaceId, size: u64) -> Result<Vec<String>, StoreError> {
        self.inner.cosignatures(ws, size).await
    }
}

const TASKS: usize = 3000;

async fn fixture() -> (Server, Arc<Counting>, WorkspaceId, TaskId) {
    let path = common::sqlite_path();
    let inner = SqliteStore::connect(&path.to_string_lossy()).await.unwrap();
    let store = Arc::new(Counting {
        inner,
        counts: Mutex::default(),
    });
    let ws = WorkspaceId::new("bounded".to_owned()).unwrap();
    // A few thousand tasks, each with one ledger entry: the log is larger than an export page.
    let mut units = Vec::new();
    for n in 0..TASKS {
        let mut t = Task::new(ws.clone());
        t.fields.title = format!("task {n}");
        t.fields.assignee = Some(Assignee {
            account_id: format!("acc-{n}"),
            display_name: Some(format!("Person {n}")),
            email: None,
        });
        t.revision = 1;
        let mut uow = UnitOfWork::new(ws.clone());
        uow.ledger = vec![entry(&t, n)];
        uow.task = Some(TaskWrite {
            task: t,
            expected_revision: None,
        });
        units.push(uow);
        if units.len() == 500 {
            for r in store
                .commit_batch(std::mem::take(&mut units))
                .await
                .unwrap()
            {
                r.unwrap();
            }
        }
    }
    for r in store.commit_batch(units).await.unwrap() {
        r.unwrap();
    }
    // The task whose page is drawn: a dozen entries of its own.
    let mut t = Task::new(ws.clone());
    t.fields.title = "the one".into();
    t.revision = 1;
    let mut uow = UnitOfWork::new(ws.clone());
    uow.ledger = (0..12).map(|n| entry(&t, n)).collect();
    uow.task = Some(TaskWrite {
        task: t.clone(),
        expected_revision: None,
    });
    store.commit(uow).await.unwrap();
    let config = Config::for_tests(path.to_string_lossy().into_owned());
    let server = Server::start_on(&config, store.clone()).await.unwrap();
    (server, store, ws, t.id)
}

fn entry(t: &Task, n: usize) -> LedgerDraft {
    LedgerDraft {
        workspace_id: t.workspace_id.clone(),
        integration_id: None,
        task_id: t.id,
        external: None,
        op: Op::Set,
        field: Some(Field::Title),
        before: Some(FieldValue::Title(String::new())),
        after: Some(FieldValue::Title(format!("title {n} \"quoted\" \\ é"))),
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

fn rows(c: &Counts, method: &str) -> (u64, u64, u64) {
    c.get(method).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_page_ledger_page_and_export_read_bounded_rows() {
    let (server, store, ws, task) = fixture().await;
    let api = common::Api::new(&server);
    let cookie = api.sign_in().await;

    // One task's page reads none of the workspace's tasks.
    store.take();
    let html = api.ui_page(&cookie, &format!("/ui/tasks/{task}")).await;
    assert!(html.contains("the one"));
    let c = store.take();
    assert_eq!(
        rows(&c, "tasks").1,
        0,
        "the task page lists no tasks: {c:?}"
    );
    assert!(
        rows(&c, "task_ledger").2 <= 12,
        "the task page reads its own task's ledger only: {c:?}"
    );

    // A page of a task's ledger reads one page (and one row more).
    let (status, page) = api.get(&format!("/api/tasks/{task}/ledger?limit=5")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["entries"].as_array().unwrap().len(), 5);
    let c = store.take();
    assert_eq!(rows(&c, "tasks").1, 0, "{c:?}");
    assert_eq!(rows(&c, "task_ledger").0, 0, "no whole-ledger read: {c:?}");
    assert_eq!(rows(&c, "task_ledger_page"), (1, 6, 6), "{c:?}");
    // Paging on gives the rest, once each; a bad cursor is a 400.
    let mut idx: Vec<u64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let (status, p) = api
            .get(&format!("/api/tasks/{task}/ledger?limit=5&cursor={c}"))
            .await;
        assert_eq!(status, 200, "{p}");
        idx.extend(
            p["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["index"].as_u64().unwrap()),
        );
        cursor = p["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(idx.len(), 12);
    assert!(
        idx.windows(2).all(|w| w[0] < w[1]),
        "oldest first, none twice"
    );
    let (status, bad) = api
        .get(&format!("/api/tasks/{task}/ledger?cursor=not-a-cursor"))
        .await;
    assert_eq!(status, 400, "{bad}");
    let events_cursor = hex_of("events:1.0");
    let (status, _) = api
        .get(&format!("/api/tasks/{task}/ledger?cursor={events_cursor}"))
        .await;
    assert_eq!(status, 400, "another list's cursor");

    // The export streams: every log read is one page, no task is read, and the bytes are
    // those the one-piece answer wrote, and they verify.
    store.take();
    let r = api
        .http
        .get(api.url(&format!("/api/ledger/{}/export", ws.as_str())))
        .header("authorization", format!("Bearer {}", common::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let streamed = r.bytes().await.unwrap().to_vec();
    let c = store.take();
    assert_eq!(rows(&c, "tasks").1, 0, "{c:?}");
    let (calls, total, most) = rows(&c, "ledger_entries");
    assert!(most <= 4096, "one page per read, not the log: {c:?}");
    assert!(
        calls >= 2 && total >= 2 * (TASKS as u64 + 12),
        "read page by page: {c:?}"
    );

    // Before: the whole log in memory, one `Json` answer.
    let size = store.ledger_size(&ws).await.unwrap();
    assert!(size > 1000, "larger than a page");
    let (_, keys) = api
        .get_text(&format!("/api/ledger/{}/keys", ws.as_str()))
        .await;
    let signer = ordonis_core::vera::CheckpointSigner::generate();
    // The stored checkpoint covers the log, so no new one is signed here.
    let ex = Notary::new(store.as_ref(), &signer)
        .export(&ws)
        .await
        .unwrap();
    let mut w = ExportWriter::new(Vec::new()).unwrap();
    for e in &ex.entries {
        w.push(e).unwrap();
    }
    let entries = String::from_utf8(w.finish().unwrap()).unwrap();
    let before = serde_json::to_vec(&json!({
        "log": log_name(&ws),
        "size": ex.checkpoint.checkpoint.size,
        "checkpoint": ex.checkpoint.note,
        "entries": entries,
        "verifier_keys": keys,
    }))
    .unwrap();
    assert_eq!(streamed.len(), before.len());
    assert!(streamed == before, "the streamed export is byte-identical");

    let v: Value = serde_json::from_slice(&streamed).unwrap();
    let dir = common::sqlite_path().with_file_name("export");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("checkpoint"), v["checkpoint"].as_str().unwrap()).unwrap();
    std::fs::write(dir.join("entries"), v["entries"].as_str().unwrap()).unwrap();
    let trusted = TrustedKeys::parse(v["verifier_keys"].as_str().unwrap()).unwrap();
    let (cp, report) = verify_export_dir(&dir, &trusted, &ExportCheck::default()).unwrap();
    assert_eq!(cp.size, size);
    assert_eq!(report.size, size);
    server.shutdown().await;
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `GET /api/events` pages newest first through `next_cursor` with every row once, while
/// rows are appended between pages; a bad cursor, or the pushes list's, is a `400`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_through_cursors_and_refuse_bad_ones() {
    let path = common::sqlite_path();
    let store = Arc::new(SqliteStore::connect(&path.to_string_lossy()).await.unwrap());
    let ws = WorkspaceId::new("paged-events".to_owned()).unwrap();
    // The server first: it checks the store's key at start; the rows below are written
    // straight to the store (a paused integration: no worker touches them).
    let config = Config::for_tests(path.to_string_lossy().into_owned());
    let server = Server::start_on(&config, store.clone()).await.unwrap();
    let rec = IntegrationRecord {
        id: IntegrationId::new(),
        workspace_id: ws.clone(),
        provider: ProviderKind::new("jira"),
        config: json!({"base_url": "http://127.0.0.1:9"}),
        secrets: SealedSecrets(Vec::new()),
        paused_until: None,
        state: IntegrationState::Paused,
        created_at: OffsetDateTime::now_utc(),
    };
    store.create_integration(&rec).await.unwrap();
    let event = |n: usize| NewInboxEvent {
        id: EventId::new(),
        workspace_id: ws.clone(),
        integration_id: rec.id,
        dedupe_key: format!("d{n}"),
        delivery_id: None,
        object_key: Some(format!("OBJ-{n}")),
        headers: Vec::new(),
        body: bytes::Bytes::from_static(b"{}"),
        body_sha256: String::new(),
        auth: "test".into(),
        state: JobState::Done,
        note: None,
    };
    // Two batches (rows of a batch may share a received time).
    for b in 0..2 {
        let batch: Vec<_> = (0..125).map(|i| event(b * 1000 + i)).collect();
        store.insert_events(&batch).await.unwrap();
    }
    let api = common::Api::new(&server);
    let base = format!("/api/events?workspace_id={}&limit=40", ws.as_str());
    let mut ids: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut appended = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.clone(),
        };
        let (status, page) = api.get(&url).await;
        assert_eq!(status, 200, "{page}");
        let rows = page["events"].as_array().unwrap();
        assert!(rows.len() <= 40);
        ids.extend(rows.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            assert!(!rows.is_empty(), "no empty last page");
            break;
        }
        // Newer rows arrive while the client pages.
        store
            .insert_events(&[event(5000 + appended)])
            .await
            .unwrap();
        appended += 1;
    }
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no row twice");
    assert_eq!(
        ids.len(),
        250,
        "every row there at the start, and none appended since"
    );
    let (status, _) = api.get(&format!("{base}&cursor=zz")).await;
    assert_eq!(status, 400);
    let (_, pushes) = api.get("/api/pushes?limit=1").await;
    assert!(pushes["next_cursor"].is_null(), "no pushes: {pushes}");
    let foreign = hex_of("pushes:1.00000000-0000-0000-0000-000000000000");
    let (status, body) = api.get(&format!("{base}&cursor={foreign}")).await;
    assert_eq!(status, 400, "{body}");
    server.shutdown().await;
}
