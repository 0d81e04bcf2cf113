//! The repair loop against the testkit's FakeAsana over real HTTP: backfill paging across
//! projects, the handover to reconciliation (tokens taken before the crawl), events into
//! hints, an expired token's re-crawl, rate limits, webhook registration and health, and the
//! id sweep's gid listing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use ordonis_asana::AsanaProvider;
use ordonis_core::RepairProvider;
use ordonis_core::{
    ChangeHint, Field, FieldValue, HintKind, ListMode, ListPage, ListRequest, ProviderContext,
    ProviderError, WebhookCheck, WebhookReport, WebhookState,
};
use ordonis_fakes::asana::FakeAsana;
use ordonis_testkit::provider_suite::ConfigChecks;
use serde_json::{Value, json};
use time::OffsetDateTime;

struct Setup {
    fake: FakeAsana,
    provider: AsanaProvider,
    ctx: ProviderContext,
}

async fn setup() -> Setup {
    let fake = FakeAsana::start(common::TOKEN).await.unwrap();
    let ctx = common::ctx(&fake.base_url(), Value::Null);
    Setup {
        fake,
        provider: AsanaProvider::new().unwrap(),
        ctx,
    }
}

impl Setup {
    async fn page(
        &self,
        mode: ListMode,
        scope: &Value,
        cursor: Option<&Value>,
        page_size: usize,
    ) -> Result<ListPage, ProviderError> {
        let req = ListRequest {
            mode,
            scope,
            cursor,
            recent: &[],
            page_size,
        };
        self.provider.list_changes(&self.ctx, &req).await
    }

    /// Pages to done; returns the hints, the final cursor and how many pages it took.
    async fn run(
        &self,
        mode: ListMode,
        scope: &Value,
        cursor: Option<Value>,
        page_size: usize,
    ) -> (Vec<ChangeHint>, Value, usize) {
        let mut cursor = cursor;
        let mut hints = Vec::new();
        for n in 1..=500 {
            let page = self
                .page(mode, scope, cursor.as_ref(), page_size)
                .await
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            hints.extend(page.changes);
            if page.done {
                return (hints, page.cursor, n);
            }
            cursor = Some(page.cursor);
        }
        panic!("{mode:?} did not finish");
    }

    async fn check(&self, scope: &Value, known: &[String], target: Option<&str>) -> WebhookReport {
        self.check_at(scope, known, target, None, OffsetDateTime::now_utc())
            .await
    }

    async fn check_at(
        &self,
        scope: &Value,
        known: &[String],
        target: Option<&str>,
        last_delivery_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> WebhookReport {
        let check = WebhookCheck {
            scope,
            target_url: target,
            known,
            last_delivery_at,
            now,
        };
        self.provider
            .check_webhooks(&self.ctx, &check)
            .await
            .unwrap_or_else(|e| panic!("check: {e}"))
    }

    async fn register(
        &self,
        scope: &Value,
        known: &[String],
        target: Option<&str>,
    ) -> Result<WebhookReport, ProviderError> {
        let check = WebhookCheck {
            scope,
            target_url: target,
            known,
            last_delivery_at: None,
            now: OffsetDateTime::now_utc(),
        };
        self.provider.register_webhooks(&self.ctx, &check).await
    }
}

fn title(h: &ChangeHint) -> Option<String> {
    match h.snapshot.as_ref()?.fields.get(Field::Title)? {
        FieldValue::Title(t) => Some(t.clone()),
        _ => None,
    }
}

fn find<'a>(hints: &'a [ChangeHint], gid: &str) -> Option<&'a ChangeHint> {
    hints.iter().rev().find(|h| h.key.external_id == gid)
}

#[test]
fn scope_shape_is_checked() {
    let p = AsanaProvider::new().unwrap();
    assert_eq!(
        p.check_scope(&json!({"projects": ["1201", "1202"]})),
        Ok(())
    );
    assert_eq!(p.check_scope(&Value::Null), Ok(()), "webhook-only");
    for bad in [
        json!(42),
        json!({}),
        json!({"projects": []}),
        json!({"projects": "1201"}),
        json!({"projects": [1201]}),
        json!({"projects": [""]}),
        json!({"projects": ["../users/me"]}),
        json!({"projects": ["1201", "1201"]}),
        json!({"project": ["1201"]}),
        json!({"jql": "project = HO"}),
    ] {
        assert!(p.check_scope(&bad).is_err(), "{bad} accepted");
    }
}

/// 250 tasks across two projects, in pages capped at Asana's 100; a change made during the
/// crawl reaches the following reconcile, since the tokens were taken before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_pages_two_projects_and_hands_over_to_reconcile() {
    let s = setup().await;
    let (a, b) = (s.fake.add_project("A"), s.fake.add_project("B"));
    let mut gids = Vec::new();
    for i in 0..150 {
        gids.push(s.fake.seed_task_in(&a, &format!("A{i}")));
    }
    for i in 0..100 {
        gids.push(s.fake.seed_task_in(&b, &format!("B{i}")));
    }
    let scope = json!({"projects": [a, b]});

    // The first page takes both tokens and lists at most 100 tasks even when asked for 500.
    let first = s.page(ListMode::Backfill, &scope, None, 500).await.unwrap();
    assert_eq!(first.changes.len(), 100);
    assert!(!first.done);
    for p in [&a, &b] {
        assert!(
            first.cursor["projects"][p]["sync"].is_string(),
            "{}",
            first.cursor
        );
    }
    // Edited during the crawl, with no webhook: a task already listed.
    let edited = first.changes[0].key.external_id.clone();
    assert!(
        s.fake
            .change_task_silently(&edited, json!({"name": "Edited mid-crawl"}))
            .await
    );
    let (rest, cursor, pages) = s
        .run(ListMode::Backfill, &scope, Some(first.cursor), 500)
        .await;
    assert_eq!(pages, 2, "150 of A then 100 of B: two more pages");
    let all: Vec<ChangeHint> = first.changes.into_iter().chain(rest).collect();
    let listed: HashSet<&str> = all.iter().map(|h| h.key.external_id.as_str()).collect();
    assert_eq!(listed.len(), 250);
    assert!(gids.iter().all(|g| listed.contains(g.as_str())));
    assert!(all.iter().all(|h| h.kind == HintKind::Changed
        && h.snapshot.is_some()
        && h.source_time_ms == h.snapshot.as_ref().map(|t| t.modified_at_ms)));
    let b0 = find(&all, &gids[150]).unwrap();
    assert_eq!(title(b0).as_deref(), Some("B0"));
    assert!(cursor["projects"][&a]["crawl"].is_null());

    // The handover: the reconcile from the backfill's cursor reports the mid-crawl edit.
    let (hints, _, _) = s.run(ListMode::Reconcile, &scope, Some(cursor), 100).await;
    assert_eq!(hints.len(), 1, "{hints:?}");
    assert_eq!(hints[0].key.external_id, edited);
    assert_eq!(hints[0].kind, HintKind::Changed);
    assert!(hints[0].snapshot.is_none(), "an event carries no state");
}

/// Task events become hints without state: changed, added, removed and undeleted are
/// `Changed` (the engine's fetch decides), deleted is `Deleted`; one hint per task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_hints() {
    let s = setup().await;
    let (a, other) = (s.fake.add_project("A"), s.fake.add_project("Other"));
    let kept = s.fake.seed_task_in(&a, "kept");
    let gone = s.fake.seed_task_in(&a, "gone");
    let moved = s.fake.seed_task_in(&a, "moved");
    let back = s.fake.seed_task_in(&a, "back");
    let elsewhere = s.fake.seed_task_in(&other, "not in scope");
    let scope = json!({"projects": [a]});
    let (_, cursor, _) = s.run(ListMode::Reconcile, &scope, None, 100).await;

    s.fake
        .change_task_silently(&kept, json!({"name": "kept 2", "completed": true}))
        .await;
    s.fake.delete_task(&gone).await.unwrap();
    s.fake.remove_from_project(&moved, &a).await.unwrap();
    s.fake.delete_task(&back).await.unwrap();
    s.fake.undelete_task(&back).await.unwrap();
    let added = s.fake.create_task_in(&a, "new").await;
    s.fake
        .change_task_silently(&elsewhere, json!({"name": "x"}))
        .await;

    let (hints, cursor, _) = s.run(ListMode::Reconcile, &scope, Some(cursor), 100).await;
    let kind = |g: &str| find(&hints, g).map(|h| h.kind.clone());
    assert_eq!(kind(&kept), Some(HintKind::Changed));
    assert_eq!(kind(&gone), Some(HintKind::Deleted));
    assert_eq!(kind(&moved), Some(HintKind::Changed));
    assert_eq!(
        kind(&back),
        Some(HintKind::Changed),
        "undeleted after deleted"
    );
    assert_eq!(kind(&added), Some(HintKind::Changed));
    assert_eq!(kind(&elsewhere), None, "another project's task");
    assert_eq!(hints.len(), 5, "one hint per task: {hints:?}");
    assert!(
        hints
            .iter()
            .all(|h| h.snapshot.is_none() && h.source_time_ms.is_some())
    );

    // A second reconcile over nothing new finds nothing.
    let (hints, _, _) = s.run(ListMode::Reconcile, &scope, Some(cursor), 100).await;
    assert!(hints.is_empty(), "{hints:?}");
}

/// More than 100 events: the reconcile follows `has_more` and keeps the newest token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_follows_has_more() {
    let s = setup().await;
    let a = s.fake.add_project("A");
    let gids: Vec<String> = (0..130)
        .map(|i| s.fake.seed_task_in(&a, &format!("t{i}")))
        .collect();
    let scope = json!({"projects": [a]});
    let (_, cursor, _) = s.run(ListMode::Reconcile, &scope, None, 100).await;
    for g in &gids {
        s.fake
            .change_task_silently(g, json!({"name": "changed"}))
            .await;
    }
    let (hints, cursor, pages) = s.run(ListMode::Reconcile, &scope, Some(cursor), 100).await;
    assert_eq!(pages, 2);
    assert_eq!(hints.len(), 130);
    let (hints, _, _) = s.run(ListMode::Reconcile, &scope, Some(cursor), 100).await;
    assert!(hints.is_empty());
}

/// A token unused for 25 h has expired: 412, then a re-crawl of what changed since the
/// project was last in sync (with the tasks' state), then the new token works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_recrawls_then_continues() {
    let s = setup().await;
    let a = s.fake.add_project("A");
    let gids: Vec<String> = (0..5)
        .map(|i| s.fake.seed_task_in(&a, &format!("t{i}")))
        .collect();
    let scope = json!({"projects": [a]});
    let (_, cursor, _) = s.run(ListMode::Backfill, &scope, None, 100).await;

    s.fake.advance_clock(Duration::from_secs(25 * 3600));
    s.fake
        .change_task_silently(&gids[3], json!({"name": "changed while the token expired"}))
        .await;
    let first = s
        .page(ListMode::Reconcile, &scope, Some(&cursor), 2)
        .await
        .unwrap();
    assert!(
        !first.done && first.changes.is_empty(),
        "412: a re-crawl is due"
    );
    let crawl = &first.cursor["projects"][&a]["crawl"];
    assert!(crawl["modified_since"].is_string(), "{}", first.cursor);
    let (hints, cursor, pages) = s
        .run(ListMode::Reconcile, &scope, Some(first.cursor), 2)
        .await;
    assert!(pages >= 2, "paged by 2");
    let h = find(&hints, &gids[3]).expect("the change is re-crawled");
    assert_eq!(title(h).as_deref(), Some("changed while the token expired"));

    // Continues from the new token: the next change arrives as an event.
    s.fake
        .change_task_silently(&gids[1], json!({"name": "after"}))
        .await;
    let (hints, _, pages) = s.run(ListMode::Reconcile, &scope, Some(cursor), 2).await;
    assert_eq!(pages, 1);
    assert_eq!(hints.len(), 1, "{hints:?}");
    assert_eq!(hints[0].key.external_id, gids[1]);
    assert!(hints[0].snapshot.is_none());
}

/// 429 with Retry-After is a rate limit; 5xx retryable; 401 terminal; an unknown project
/// not found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_errors_are_classified() {
    let s = setup().await;
    let a = s.fake.add_project("A");
    s.fake.seed_task_in(&a, "t");
    let scope = json!({"projects": [a]});
    let before = OffsetDateTime::now_utc();
    s.fake.fail_next_reads(1, 429, &[("Retry-After", "7")]);
    let e = s
        .page(ListMode::Backfill, &scope, None, 10)
        .await
        .unwrap_err();
    let until = e.rate_limited_until().unwrap_or_else(|| panic!("{e:?}"));
    assert!(
        (5..=10).contains(&(until - before).whole_seconds()),
        "{e:?}"
    );
    s.fake.fail_next_reads(1, 503, &[]);
    let e = s
        .page(ListMode::Backfill, &scope, None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Retryable { .. }), "{e:?}");
    s.fake.fail_next_reads(1, 401, &[]);
    let e = s
        .page(ListMode::Backfill, &scope, None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
    let e = s
        .page(ListMode::Backfill, &json!({"projects": ["999"]}), None, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    // After the storm the listing works.
    let (hints, _, _) = s.run(ListMode::Backfill, &scope, None, 10).await;
    assert_eq!(hints.len(), 1);
}

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// A webhook target that echoes handshakes when `echo`, and answers deliveries 200.
async fn target(echo: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |State(seen): State<Seen>, headers: HeaderMap| async move {
                    let secret = headers.get("x-hook-secret").cloned();
                    seen.lock().unwrap().push(headers);
                    match secret {
                        Some(s) if echo => (StatusCode::OK, [("x-hook-secret", s)]).into_response(),
                        _ => StatusCode::OK.into_response(),
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Registration runs one handshake per project during the call; health follows failed
/// deliveries; a webhook Asana deleted is missing and re-created alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_register_check_and_recreate() {
    let s = setup().await;
    let (a, b) = (s.fake.add_project("A"), s.fake.add_project("B"));
    let task = s.fake.seed_task_in(&a, "t");
    let scope = json!({"projects": [a, b]});
    let (url, seen) = target(true).await;

    assert_eq!(
        s.check(&scope, &[], Some(&url)).await.state,
        WebhookState::Missing
    );
    let e = s.register(&scope, &[], None).await.unwrap_err();
    assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
    let (silent, _) = target(false).await;
    let e = s.register(&scope, &[], Some(&silent)).await.unwrap_err();
    assert!(
        matches!(e, ProviderError::Terminal(_)),
        "no echo, no webhook: {e:?}"
    );
    assert!(s.fake.webhooks().is_empty());

    let r = s.register(&scope, &[], Some(&url)).await.unwrap();
    assert_eq!(r.state, WebhookState::Healthy, "{r:?}");
    assert_eq!(r.external_ids.len(), 2);
    let handshakes = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|h| h.contains_key("x-hook-secret"))
        .count();
    assert_eq!(
        handshakes, 2,
        "one handshake per project, each its own secret"
    );
    let hooks = s.fake.webhooks();
    assert_ne!(hooks[0].secret, hooks[1].secret);
    assert_eq!(hooks[0].filters[0]["resource_type"], "task");
    let ids = r.external_ids.clone();
    let r = s.check(&scope, &ids, Some(&url)).await;
    assert_eq!(r.state, WebhookState::Healthy, "{r:?}");

    // Silence beyond the heartbeat interval: nothing delivered for 10 h...
    let now = OffsetDateTime::now_utc();
    let later = now + time::Duration::hours(10);
    let r = s.check_at(&scope, &ids, Some(&url), Some(now), later).await;
    assert_eq!(r.state, WebhookState::Failing, "{r:?}");
    assert!(r.detail.unwrap().contains("heartbeat"));
    // ... but webhooks created just now have had no time to send one.
    let long_ago = now - time::Duration::hours(10);
    let r = s
        .check_at(&scope, &ids, Some(&url), Some(long_ago), now)
        .await;
    assert_eq!(r.state, WebhookState::Healthy, "{r:?}");

    // Failed deliveries: failing, with Asana's content and deletion time.
    s.fake.fail_deliveries(true);
    assert_eq!(
        s.fake.change_task(&task, json!({"name": "u"})).await,
        Some(0)
    );
    let r = s.check(&scope, &ids, Some(&url)).await;
    assert_eq!(r.state, WebhookState::Failing, "{r:?}");
    let detail = r.detail.unwrap();
    assert!(
        detail.contains("500") && detail.contains("deletes it at"),
        "{detail}"
    );
    // Recovery.
    s.fake.fail_deliveries(false);
    assert_eq!(
        s.fake.change_task(&task, json!({"name": "v"})).await,
        Some(1)
    );
    assert_eq!(
        s.check(&scope, &ids, Some(&url)).await.state,
        WebhookState::Healthy
    );

    // Asana deletes the webhook of A after 3 failed deliveries: missing, then re-created
    // alone (B's still stands).
    s.fake.set_webhook_failure_limit(3);
    s.fake.fail_deliveries(true);
    for i in 0..3 {
        s.fake
            .change_task(&task, json!({"name": format!("f{i}")}))
            .await;
    }
    s.fake.fail_deliveries(false);
    let hook_a = hooks.iter().find(|h| h.resource == a).unwrap().gid.clone();
    assert!(s.fake.webhook_state(&hook_a).is_none());
    let r = s.check(&scope, &ids, Some(&url)).await;
    assert_eq!(r.state, WebhookState::Missing, "{r:?}");
    assert!(r.detail.unwrap().contains("deleted by Asana"));
    assert_eq!(r.external_ids.len(), 1);
    let r = s.register(&scope, &ids, Some(&url)).await.unwrap();
    assert_eq!(r.state, WebhookState::Healthy, "{r:?}");
    assert_eq!(r.external_ids.len(), 2);
    assert_eq!(s.fake.webhooks().len(), 2, "only A's was created again");
    let ids = r.external_ids;

    // Deleted silently by Asana: missing.
    assert!(s.fake.delete_webhook_silently(&ids[0]));
    let r = s.check(&scope, &ids, Some(&url)).await;
    assert_eq!(r.state, WebhookState::Missing, "{r:?}");
}

/// #30: the id sweep's listing, gids only, project after project, in pages. Catches a cursor
/// that skips a project's later pages or the next project (a task would be swept as missing).
#[tokio::test]
async fn the_scope_ids_are_listed_page_by_page_across_projects() {
    let s = setup().await;
    let (a, b) = (s.fake.add_project("A"), s.fake.add_project("B"));
    let mut want: HashSet<String> = HashSet::new();
    for i in 0..3 {
        want.insert(s.fake.seed_task_in(&a, &format!("a{i}")));
        want.insert(s.fake.seed_task_in(&b, &format!("b{i}")));
    }
    s.fake
        .seed_task_in(&s.fake.add_project("Elsewhere"), "not in scope");
    let scope = json!({"projects": [a, b]});
    let mut got = Vec::new();
    let mut cursor: Option<Value> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 20, "the listing never ends");
        let req = ordonis_core::IdsRequest {
            scope: &scope,
            cursor: cursor.as_ref(),
            page_size: 2,
        };
        let page = s.provider.list_ids(&s.ctx, &req).await.unwrap().unwrap();
        got.extend(page.ids);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), want);
    assert_eq!(pages, 4, "2 + 1 per project");
}
