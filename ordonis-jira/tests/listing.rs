//! Backfill, reconciliation and dynamic webhooks of the Jira provider against the testkit's
//! FakeJira over real HTTP: paging, the reconcile overlap against the search index's lag,
//! minute-granular JQL dates, `reconcileIssues`, error mapping, and the webhook lifecycle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordonis_core::RepairProvider;
use ordonis_core::{
    ChangeHint, Field, FieldValue, ListMode, ListPage, ListRequest, ObjectKey, Provider,
    ProviderContext, ProviderError, WebhookCheck, WebhookState,
};
use ordonis_fakes::jira::FakeJira;
use ordonis_fakes::jira::jira_time;
use ordonis_jira::JiraProvider;
use ordonis_jira::rich_text::markdown_to_adf;
use ordonis_testkit::provider_suite::ConfigChecks;
use serde_json::{Value, json};
use time::OffsetDateTime;

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn issue(id: u64, project: &str, title: &str, updated_ms: Option<i64>) -> Value {
    let mut v = json!({
        "id": id.to_string(), "key": format!("{project}-{id}"),
        "fields": {
            "summary": title,
            "description": markdown_to_adf("Hello **world**"),
            "status": {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}},
            "priority": {"id": "3", "name": "Medium"},
            "assignee": null, "duedate": null,
            "project": {"id": "100", "key": project},
            "issuetype": {"id": "10001", "name": "Task"}
        }
    });
    if let Some(ms) = updated_ms {
        v["fields"]["updated"] = json!(jira_time(ms));
    }
    v
}

struct Site {
    jira: FakeJira,
    provider: JiraProvider,
    ctx: ProviderContext,
}

async fn site(options: Value) -> Site {
    let jira = FakeJira::start().await.unwrap();
    let mut ctx = common::ctx(&jira.base_url());
    ctx.options = options;
    Site {
        jira,
        provider: JiraProvider::new().unwrap(),
        ctx,
    }
}

fn scope() -> Value {
    json!({"jql": "project = HO"})
}

impl Site {
    async fn page(
        &self,
        mode: ListMode,
        cursor: Option<&Value>,
        recent: &[ObjectKey],
        page_size: usize,
    ) -> Result<ListPage, ProviderError> {
        let scope = scope();
        let req = ListRequest {
            mode,
            scope: &scope,
            cursor,
            recent,
            page_size,
        };
        self.provider.list_changes(&self.ctx, &req).await
    }

    /// Pages until done: every hint, the number of pages and the final cursor.
    async fn run(
        &self,
        mode: ListMode,
        cursor: Option<Value>,
        recent: &[ObjectKey],
    ) -> (Vec<ChangeHint>, usize, Value) {
        let mut cursor = cursor;
        let mut hints = Vec::new();
        for pages in 1..=100 {
            let page = self
                .page(mode, cursor.as_ref(), recent, 100)
                .await
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            hints.extend(page.changes);
            if page.done {
                return (hints, pages, page.cursor);
            }
            cursor = Some(page.cursor);
        }
        panic!("{mode:?} did not finish");
    }
}

fn title_of(hints: &[ChangeHint], id: &str) -> Option<String> {
    hints
        .iter()
        .rev()
        .find(|h| h.key.external_id == id)
        .and_then(|h| h.snapshot.as_ref())
        .and_then(|s| match s.fields.get(Field::Title) {
            Some(FieldValue::Title(t)) => Some(t.clone()),
            _ => None,
        })
}

#[tokio::test]
async fn backfill_pages_through_every_issue_in_scope() {
    let s = site(json!({})).await;
    for i in 0..250 {
        s.jira
            .insert_issue(issue(10_000 + i, "HO", &format!("Issue {i}"), None));
    }
    for i in 0..5 {
        s.jira
            .insert_issue(issue(20_000 + i, "OTHER", "Not ours", None));
    }
    let before = now_ms();
    // The page size is capped at Jira's 100.
    let first = s.page(ListMode::Backfill, None, &[], 500).await.unwrap();
    assert_eq!(first.changes.len(), 100);
    assert!(!first.done);
    assert_eq!(first.cursor["phase"], "backfill");
    let since = first.cursor["since_ms"].as_i64().unwrap();
    assert!(since >= before && since <= now_ms(), "{since}");
    let (rest, pages, done) = s.run(ListMode::Backfill, Some(first.cursor), &[]).await;
    assert_eq!(pages, 2);
    // The handover cursor is the time taken before the crawl, nothing else.
    assert_eq!(done, json!({"since_ms": since}));
    let mut ids: Vec<String> = first
        .changes
        .iter()
        .chain(&rest)
        .map(|h| h.key.external_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250);
    assert!(ids.iter().all(|id| id.starts_with('1')), "{ids:?}");
    // A listed snapshot is exactly what a fetch reads (ADF description as Markdown, ...).
    let hint = &rest[0];
    let fetched = s.provider.fetch_task(&s.ctx, &hint.key).await.unwrap();
    assert_eq!(hint.snapshot.as_ref(), Some(&fetched));
    assert_eq!(
        fetched.fields.get(Field::Description),
        Some(&FieldValue::Description("Hello **world**".to_owned()))
    );
    assert_eq!(hint.source_time_ms, Some(fetched.modified_at_ms));
}

#[tokio::test]
async fn reconcile_without_cursor_starts_at_present() {
    let s = site(json!({})).await;
    s.jira.insert_issue(issue(10_001, "HO", "Old", None));
    let before = now_ms();
    let page = s.page(ListMode::Reconcile, None, &[], 50).await.unwrap();
    assert!(page.done && page.changes.is_empty());
    assert!(page.cursor["since_ms"].as_i64().unwrap() >= before);
    assert!(!s.jira.requests().iter().any(|r| r.contains("search")));
}

/// The index shows an edit late: the run right after it misses it, `reconcileIssues` sees our
/// own fresh write, and the next run (after the index caught up) finds it from the first
/// run's cursor.
#[tokio::test]
async fn an_edit_hidden_by_the_index_lag_is_found_by_the_next_reconcile() {
    let s = site(json!({})).await;
    s.jira.set_index_lag(Duration::from_millis(1500));
    s.jira.insert_issue(issue(10_001, "HO", "Before", None));
    // Created within the lag: not in the index yet.
    let (hints, _, _) = s.run(ListMode::Backfill, None, &[]).await;
    assert!(hints.is_empty(), "{hints:?}");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (hints, _, cursor) = s.run(ListMode::Backfill, None, &[]).await;
    assert_eq!(title_of(&hints, "10001").as_deref(), Some("Before"));

    assert!(s.jira.edit_silently("10001", &json!({"summary": "After"})));
    let (hints, _, cursor1) = s.run(ListMode::Reconcile, Some(cursor.clone()), &[]).await;
    assert_eq!(
        title_of(&hints, "10001").as_deref(),
        Some("Before"),
        "the index lags"
    );
    let key = ObjectKey::new("10001", "issue");
    let (hints, _, _) = s
        .run(
            ListMode::Reconcile,
            Some(cursor),
            std::slice::from_ref(&key),
        )
        .await;
    assert_eq!(
        title_of(&hints, "10001").as_deref(),
        Some("After"),
        "reconcileIssues reads our write fresh"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (hints, _, _) = s.run(ListMode::Reconcile, Some(cursor1), &[]).await;
    assert_eq!(title_of(&hints, "10001").as_deref(), Some("After"));
}

/// An edit Jira stamped 100 s before a run's cursor but indexed only after that run (a
/// 100 s index lag, expressed through Jira's timestamp instead of a 100 s wait) is found by the
/// next run thanks to the default 120 s overlap, and missed without an overlap.
#[tokio::test]
async fn the_overlap_covers_an_index_lag_and_without_it_the_edit_is_lost() {
    let cursor_ms = now_ms();
    let cursor = json!({"since_ms": cursor_ms});
    let with = site(json!({})).await;
    let without = site(json!({"reconcile_overlap_s": 0})).await;
    for s in [&with, &without] {
        s.jira
            .insert_issue(issue(10_001, "HO", "Late", Some(cursor_ms - 100_000)));
    }
    let (hints, _, done) = with
        .run(ListMode::Reconcile, Some(cursor.clone()), &[])
        .await;
    assert_eq!(title_of(&hints, "10001").as_deref(), Some("Late"));
    assert!(done["since_ms"].as_i64().unwrap() >= cursor_ms);
    let (hints, _, _) = without.run(ListMode::Reconcile, Some(cursor), &[]).await;
    assert_eq!(title_of(&hints, "10001"), None, "lost without the overlap");
}

/// JQL dates have minute granularity: the window starts at the cursor's minute, so an issue
/// updated earlier in that minute is listed again, and one of the minute before is not.
#[tokio::test]
async fn jql_dates_have_minute_granularity() {
    let s = site(json!({"reconcile_overlap_s": 0})).await;
    let minute = now_ms() / 60_000 * 60_000 - 10 * 60_000;
    s.jira
        .insert_issue(issue(10_001, "HO", "Same minute", Some(minute + 5_000)));
    s.jira
        .insert_issue(issue(10_002, "HO", "Minute before", Some(minute - 1_000)));
    let cursor = json!({"since_ms": minute + 30_000});
    let (hints, _, _) = s.run(ListMode::Reconcile, Some(cursor), &[]).await;
    assert_eq!(title_of(&hints, "10001").as_deref(), Some("Same minute"));
    assert_eq!(title_of(&hints, "10002"), None);
}

#[tokio::test]
async fn a_reconcile_run_pages_and_ends_at_its_start() {
    let s = site(json!({})).await;
    for i in 0..3 {
        s.jira.insert_issue(issue(10_000 + i, "HO", "x", None));
    }
    let cursor = json!({"since_ms": now_ms()});
    let started = now_ms();
    let p1 = s
        .page(ListMode::Reconcile, Some(&cursor), &[], 2)
        .await
        .unwrap();
    assert!(!p1.done);
    assert_eq!(p1.cursor["phase"], "reconcile");
    let run_started = p1.cursor["run_started_ms"].as_i64().unwrap();
    assert!(run_started >= started);
    let p2 = s
        .page(ListMode::Reconcile, Some(&p1.cursor), &[], 2)
        .await
        .unwrap();
    assert!(p2.done);
    assert_eq!(p2.cursor, json!({"since_ms": run_started}));
    assert_eq!(p1.changes.len() + p2.changes.len(), 3);
}

/// A run resumed with a page token Jira no longer accepts (tokens expire after 7 days)
/// restarts from its first page instead of failing for good.
#[tokio::test]
async fn an_expired_page_token_restarts_the_run() {
    let s = site(json!({})).await;
    for i in 0..3 {
        s.jira.insert_issue(issue(10_000 + i, "HO", "x", None));
    }
    let stale = json!({"phase": "backfill", "since_ms": 1234, "page_token": "expired"});
    let page = s
        .page(ListMode::Backfill, Some(&stale), &[], 50)
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 3);
    assert_eq!(page.cursor, json!({"since_ms": 1234}));
    assert_eq!(
        s.jira
            .requests()
            .iter()
            .filter(|r| r.contains("search"))
            .count(),
        2
    );
}

/// A deleted issue is no longer listed (absence is never a deletion for the engine: the
/// fetch that confirms it is a 404), and the delete is announced with `jira:issue_deleted`.
#[tokio::test]
async fn a_deleted_issue_leaves_the_listing_and_its_fetch_is_a_404() {
    let s = site(json!({})).await;
    s.jira.insert_issue(issue(10_001, "HO", "x", None));
    s.jira.insert_issue(issue(10_002, "HO", "y", None));
    s.jira.capture_webhooks();
    assert_eq!(s.jira.delete_issue("HO-10001", "acc").await, Ok(200));
    let sent = s.jira.take_webhooks();
    let hints = s
        .provider
        .parse_webhook(
            &s.ctx,
            &ordonis_core::WebhookRequest {
                method: &http::Method::POST,
                headers: &http::HeaderMap::new(),
                body: &sent[0],
            },
        )
        .unwrap();
    assert_eq!(hints[0].kind, ordonis_core::HintKind::Deleted);
    assert_eq!(hints[0].key.external_id, "10001");
    let (hints, _, _) = s.run(ListMode::Backfill, None, &[]).await;
    let ids: Vec<&str> = hints.iter().map(|h| h.key.external_id.as_str()).collect();
    assert_eq!(ids, ["10002"]);
    assert!(matches!(
        s.provider
            .fetch_task(&s.ctx, &ObjectKey::new("10001", "issue"))
            .await,
        Err(ProviderError::NotFound(_))
    ));
}

#[tokio::test]
async fn scope_and_jql_errors_are_terminal_with_the_reason() {
    let s = site(json!({})).await;
    let err = s
        .provider
        .check_scope(&json!({"projects": ["1"]}))
        .unwrap_err();
    assert!(err.contains("needs scope {\"jql\""), "{err}");
    assert!(s.provider.check_scope(&json!({"jql": " "})).is_err());
    assert_eq!(s.provider.check_scope(&scope()), Ok(()));

    let bad = json!({"jql": "assignee = currentUser()"});
    let req = ListRequest {
        mode: ListMode::Backfill,
        scope: &bad,
        cursor: None,
        recent: &[],
        page_size: 50,
    };
    match s.provider.list_changes(&s.ctx, &req).await {
        Err(ProviderError::Terminal(m)) => {
            assert!(m.contains("Field 'assignee' does not exist"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let none = json!({});
    let req = ListRequest {
        scope: &none,
        ..req
    };
    assert!(matches!(
        s.provider.list_changes(&s.ctx, &req).await,
        Err(ProviderError::Terminal(_))
    ));
}

#[tokio::test]
async fn search_errors_map_like_every_other_call() {
    let s = site(json!({})).await;
    s.jira.insert_issue(issue(10_001, "HO", "x", None));
    s.jira.fail_next_reads(1, 429, &[("Retry-After", "7")]);
    let before = OffsetDateTime::now_utc();
    match s.page(ListMode::Backfill, None, &[], 50).await {
        Err(ProviderError::RateLimited { until, .. }) => {
            let wait = until - before;
            assert!(wait >= time::Duration::seconds(6), "{wait}");
            assert!(wait <= time::Duration::seconds(9), "{wait}");
        }
        other => panic!("{other:?}"),
    }
    // Jira's points-based quota (2026): no `Retry-After`, the beta headers name the reset
    // and the reason; the whole integration waits until then.
    s.jira.fail_next_reads(
        1,
        429,
        &[
            ("Beta-Retry-After", "1800"),
            ("X-Beta-RateLimit-Reason", "jira-quota-tenant-based"),
            (
                "Beta-RateLimit-Policy",
                "\"tenant-app-quota\";q=100100;w=3600",
            ),
        ],
    );
    let before = OffsetDateTime::now_utc();
    match s.page(ListMode::Backfill, None, &[], 50).await {
        Err(ProviderError::RateLimited { until, reason }) => {
            let wait = until - before;
            assert!(wait >= time::Duration::seconds(1799), "{wait}");
            assert!(wait <= time::Duration::seconds(1802), "{wait}");
            assert_eq!(reason, "jira-quota-tenant-based");
        }
        other => panic!("{other:?}"),
    }
    s.jira.fail_next_reads(1, 502, &[]);
    assert!(matches!(
        s.page(ListMode::Backfill, None, &[], 50).await,
        Err(ProviderError::Retryable { .. })
    ));
    s.jira.fail_next_reads(1, 403, &[]);
    assert!(matches!(
        s.page(ListMode::Backfill, None, &[], 50).await,
        Err(ProviderError::Terminal(_))
    ));
    // The storm is over: the same request goes through.
    let page = s.page(ListMode::Backfill, None, &[], 50).await.unwrap();
    assert_eq!(page.changes.len(), 1);
}

/// Receives webhooks: the bodies it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn dynamic_webhooks_are_registered_renewed_and_found_missing_after_expiry() {
    let s = site(json!({"webhook": "dynamic"})).await;
    s.jira.insert_issue(issue(10_001, "HO", "x", None));
    s.jira.insert_issue(issue(20_001, "OTHER", "y", None));
    s.jira.set_app_secret("jira:fake-site", "app-shared-secret");
    let (url, got) = receiver().await;
    let sc: &'static Value = Box::leak(Box::new(scope()));
    // The engine's clock moves with the fake's: `advanced` is how far both were moved.
    let advanced = Arc::new(Mutex::new(time::Duration::ZERO));
    let clock = advanced.clone();
    let check = move |known: &'static [String]| WebhookCheck {
        scope: sc,
        target_url: None,
        known,
        last_delivery_at: None,
        now: OffsetDateTime::now_utc() + *clock.lock().unwrap(),
    };
    let r = s
        .provider
        .check_webhooks(&s.ctx, &check(&[]))
        .await
        .unwrap();
    assert_eq!(r.state, WebhookState::Missing);
    assert!(matches!(
        s.provider.register_webhooks(&s.ctx, &check(&[])).await,
        Err(ProviderError::Terminal(_))
    ));

    let reg = WebhookCheck {
        target_url: Some(&url),
        ..check(&[])
    };
    let r = s.provider.register_webhooks(&s.ctx, &reg).await.unwrap();
    assert_eq!(r.state, WebhookState::Healthy);
    assert_eq!(r.external_ids.len(), 1);
    let expires = r.expires_at.unwrap() - OffsetDateTime::now_utc();
    assert!((expires - time::Duration::days(30)).abs() < time::Duration::minutes(1));
    let known: &'static [String] = Box::leak(r.external_ids.clone().into_boxed_slice());

    // It delivers, for the scope's issues only, and not while deliveries are off.
    assert_eq!(
        s.jira
            .update_issue("10001", &json!({"summary": "seen"}), "acc")
            .await,
        Ok(200)
    );
    assert!(
        s.jira
            .update_issue("20001", &json!({"summary": "not ours"}), "acc")
            .await
            .is_err()
    );
    s.jira.set_webhooks_enabled(false);
    assert_eq!(
        s.jira
            .update_issue("10001", &json!({"summary": "dropped"}), "acc")
            .await,
        Ok(0)
    );
    s.jira.set_webhooks_enabled(true);
    assert_eq!(s.jira.dropped_deliveries(), 1);
    assert_eq!(got.lock().unwrap().len(), 1);
    assert_eq!(got.lock().unwrap()[0]["issue"]["fields"]["summary"], "seen");

    // Far from expiry: healthy, nothing renewed.
    let r = s
        .provider
        .check_webhooks(&s.ctx, &check(known))
        .await
        .unwrap();
    assert_eq!((r.state, r.detail.clone()), (WebhookState::Healthy, None));
    assert!(!s.jira.requests().iter().any(|q| q.contains("refresh")));

    // Six days before expiry: renewed for another 30 days from the (fake) present.
    s.jira.advance_clock(Duration::from_secs(24 * 24 * 3600));
    *advanced.lock().unwrap() = time::Duration::days(24);
    let r = s
        .provider
        .check_webhooks(&s.ctx, &check(known))
        .await
        .unwrap();
    assert_eq!(r.state, WebhookState::Healthy);
    assert!(
        r.detail.as_deref().unwrap().starts_with("renewed until "),
        "{r:?}"
    );
    let left = r.expires_at.unwrap() - (OffsetDateTime::now_utc() + time::Duration::days(24));
    assert!((left - time::Duration::days(30)).abs() < time::Duration::minutes(1));
    assert_eq!(s.jira.dynamic_webhooks()[0].1, {
        let t = r.expires_at.unwrap();
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
    });

    // Past the renewed expiry: Jira dropped it; it is missing and delivers nothing.
    s.jira.advance_clock(Duration::from_secs(31 * 24 * 3600));
    *advanced.lock().unwrap() = time::Duration::days(55);
    let r = s
        .provider
        .check_webhooks(&s.ctx, &check(known))
        .await
        .unwrap();
    assert_eq!(r.state, WebhookState::Missing, "{r:?}");
    assert!(s.jira.dynamic_webhooks().is_empty());
    assert!(
        s.jira
            .update_issue("10001", &json!({"summary": "after expiry"}), "acc")
            .await
            .is_err()
    );
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_webhooks_are_unknown_and_cannot_be_registered() {
    let s = site(json!({})).await;
    let sc = scope();
    let check = WebhookCheck {
        scope: &sc,
        target_url: Some("http://127.0.0.1:1/hook"),
        known: &[],
        last_delivery_at: None,
        now: OffsetDateTime::now_utc(),
    };
    let r = s.provider.check_webhooks(&s.ctx, &check).await.unwrap();
    assert_eq!(r.state, WebhookState::Unknown);
    assert!(matches!(
        s.provider.register_webhooks(&s.ctx, &check).await,
        Err(ProviderError::Terminal(_))
    ));
    assert!(s.jira.requests().is_empty());
    assert!(
        s.provider
            .check_options(&json!({"jql_time_zone": "Nowhere/Else"}))
            .is_err()
    );
    assert!(
        s.provider
            .check_options(&json!({"webhook": "dynamic", "jql_time_zone": "Europe/Paris", "reconcile_overlap_s": 300}))
            .is_ok()
    );
}
