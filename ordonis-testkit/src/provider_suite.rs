//! The provider conformance suite. A provider crate implements [`ProviderHarness`] over a fake
//! HTTP server (wiremock) and calls [`provider_suite!`](macro@crate::provider_suite), which expands
//! to one `#[tokio::test]` per case.

use std::sync::Arc;

use async_trait::async_trait;
use ordonis_core::{
    ConfigToCheck, FieldPatch, FieldValue, ListMode, ListRequest, ObjectKey, Provider,
    ProviderContext, ProviderError, WebhookAuth, WebhookRequest,
};

/// An HTTP-level failure the harness's fake server answers the next API call with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFault {
    /// 429 with `Retry-After: <secs>`.
    RateLimited {
        /// Seconds.
        retry_after_secs: u64,
    },
    /// 500/502/503.
    ServerError,
    /// No answer within the client's timeout.
    Timeout,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
}

/// What a provider crate gives the suite: the provider under test wired to a fake server.
#[async_trait]
pub trait ProviderHarness: Send + Sync {
    /// The provider under test.
    fn provider(&self) -> Arc<dyn Provider>;
    /// A context whose base URL is the fake server and whose webhook secrets include `secret()`.
    fn context(&self) -> ProviderContext;
    /// The webhook secret the context accepts.
    fn secret(&self) -> String;
    /// Headers that make `body` a validly signed delivery under `secret`.
    fn sign_webhook(&self, body: &[u8], secret: &str) -> http::HeaderMap;
    /// The name of the signature header (removed by the missing-header case).
    fn signature_header(&self) -> &'static str;
    /// A realistic webhook body about `key`.
    fn sample_webhook(&self, key: &ObjectKey) -> Vec<u8>;
    /// Real fixture bodies (name, bytes) that must parse.
    fn fixtures(&self) -> Vec<(String, Vec<u8>)>;
    /// An object key the fake serves, seeded with `fields`.
    async fn seed_remote(&self, fields: &FieldPatch) -> ObjectKey;
    /// What the fake now holds for the object (mapped back to fields the push wrote).
    async fn remote_state(&self, key: &ObjectKey) -> Option<FieldPatch>;
    /// Makes the fake's next API call fail with `fault`.
    async fn fail_next(&self, fault: HttpFault);
    /// The integration scope the seeded objects are in (what `list_changes` is asked for).
    fn scope(&self) -> serde_json::Value;
    /// Changes a seeded object's title in the fake without sending any webhook, and makes
    /// the change visible to the provider's listing (past any search-index lag).
    async fn edit_remote_silently(&self, key: &ObjectKey, title: &str);
}

/// One part of an integration's settings checked at a time, through
/// [`Provider::check_config`]: the error's text, after asserting it names that part.
pub trait ConfigChecks {
    /// Checks a scope alone.
    fn check_scope(&self, scope: &serde_json::Value) -> Result<(), String>;
    /// Checks options alone.
    fn check_options(&self, options: &serde_json::Value) -> Result<(), String>;
}

impl<P: Provider + ?Sized> ConfigChecks for P {
    fn check_scope(&self, scope: &serde_json::Value) -> Result<(), String> {
        let none = serde_json::Value::Null;
        self.check_config(&ordonis_core::ConfigToCheck {
            options: &none,
            scope,
            auth: None,
        })
        .map_err(|e| {
            assert_eq!(e.what, "scope", "{e}");
            e.why
        })
    }

    fn check_options(&self, options: &serde_json::Value) -> Result<(), String> {
        let none = serde_json::Value::Null;
        self.check_config(&ordonis_core::ConfigToCheck {
            options,
            scope: &none,
            auth: None,
        })
        .map_err(|e| {
            assert_eq!(e.what, "options", "{e}");
            e.why
        })
    }
}

/// Expands to one `#[tokio::test]` per provider case; `$factory` is an async fn returning
/// `Arc<dyn ProviderHarness>`.
#[macro_export]
macro_rules! provider_suite {
    ($factory:path) => {
        $crate::provider_suite!(@cases $factory;
            signature_accepted, tampered_body_rejected, wrong_secret_rejected,
            missing_signature_rejected, fixtures_parse_deterministically, fetch_returns_remote_state,
            push_updates_remote, rate_limit_classified, server_error_retryable, timeout_retryable,
            unauthorized_terminal, forbidden_terminal, not_found_classified,
            echo_form_is_a_fixed_point, scope_checked, backfill_lists_seeded_objects,
            reconcile_finds_a_silent_edit, reconcile_without_cursor_starts_at_present
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $factory().await;
                $crate::provider_suite::$case(harness).await;
            }
        )*
    };
}

fn verify(
    h: &dyn ProviderHarness,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<WebhookAuth, ProviderError> {
    let req = WebhookRequest {
        method: &http::Method::POST,
        headers,
        body,
    };
    h.provider().verify_webhook(&h.context(), &req)
}

fn key() -> ObjectKey {
    ObjectKey::new("10001", "issue")
}

/// A correctly signed body verifies.
pub async fn signature_accepted(h: Arc<dyn ProviderHarness>) {
    let body = h.sample_webhook(&key());
    let headers = h.sign_webhook(&body, &h.secret());
    assert!(matches!(
        verify(&*h, &headers, &body),
        Ok(WebhookAuth::Verified { .. })
    ));
}

/// One changed byte of the body fails verification.
pub async fn tampered_body_rejected(h: Arc<dyn ProviderHarness>) {
    let mut body = h.sample_webhook(&key());
    let headers = h.sign_webhook(&body, &h.secret());
    let last = body.len() - 1;
    body[last] ^= 0x01;
    assert!(matches!(
        verify(&*h, &headers, &body),
        Err(ProviderError::Unauthenticated(_))
    ));
}

/// A body signed with another secret fails verification.
pub async fn wrong_secret_rejected(h: Arc<dyn ProviderHarness>) {
    let body = h.sample_webhook(&key());
    let headers = h.sign_webhook(&body, "not-the-secret");
    assert!(matches!(
        verify(&*h, &headers, &body),
        Err(ProviderError::Unauthenticated(_))
    ));
}

/// A body without its signature header fails verification.
pub async fn missing_signature_rejected(h: Arc<dyn ProviderHarness>) {
    let body = h.sample_webhook(&key());
    let mut headers = h.sign_webhook(&body, &h.secret());
    headers.remove(h.signature_header());
    assert!(matches!(
        verify(&*h, &headers, &body),
        Err(ProviderError::Unauthenticated(_))
    ));
}

/// Every fixture parses without error, twice to the same hints.
pub async fn fixtures_parse_deterministically(h: Arc<dyn ProviderHarness>) {
    let fixtures = h.fixtures();
    assert!(!fixtures.is_empty(), "a provider ships fixtures");
    for (name, body) in fixtures {
        let headers = h.sign_webhook(&body, &h.secret());
        let req = WebhookRequest {
            method: &http::Method::POST,
            headers: &headers,
            body: &body,
        };
        let a = h.provider().parse_webhook(&h.context(), &req);
        let b = h.provider().parse_webhook(&h.context(), &req);
        assert_eq!(a, b, "{name}: parsing is deterministic");
        if let Err(e) = a {
            assert!(
                matches!(e, ProviderError::BadInput(_)),
                "{name}: only BadInput, got {e:?}"
            );
        }
    }
}

fn sample_fields() -> FieldPatch {
    FieldPatch::new()
        .with(FieldValue::Title("Conformance title".into()))
        .with(FieldValue::Description("Some text".into()))
}

/// Fetch returns what the fake holds.
pub async fn fetch_returns_remote_state(h: Arc<dyn ProviderHarness>) {
    let key = h.seed_remote(&sample_fields()).await;
    let got = h
        .provider()
        .fetch_task(&h.context(), &key)
        .await
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    assert_eq!(got.key, key);
    let title = got.fields.get(ordonis_core::Field::Title);
    assert!(
        title.is_some_and(|t| t.same_as(&FieldValue::Title("Conformance title".into()))),
        "{got:?}"
    );
}

/// A pushed title reaches the fake.
pub async fn push_updates_remote(h: Arc<dyn ProviderHarness>) {
    let key = h.seed_remote(&sample_fields()).await;
    let patch = FieldPatch::new().with(FieldValue::Title("Pushed title".into()));
    let out = h
        .provider()
        .push(&h.context(), &key, &patch)
        .await
        .unwrap_or_else(|e| panic!("push: {e}"));
    assert_eq!(out.applied, vec![ordonis_core::Field::Title]);
    let remote = h
        .remote_state(&key)
        .await
        .unwrap_or_else(|| panic!("no remote state"));
    assert!(
        remote
            .get(ordonis_core::Field::Title)
            .is_some_and(|t| t.same_as(&FieldValue::Title("Pushed title".into())))
    );
}

async fn fault_then_fetch(h: &dyn ProviderHarness, fault: HttpFault) -> ProviderError {
    let key = h.seed_remote(&sample_fields()).await;
    h.fail_next(fault).await;
    match h.provider().fetch_task(&h.context(), &key).await {
        Err(e) => e,
        Ok(t) => panic!("{fault:?} was not reported: {t:?}"),
    }
}

/// 429 with Retry-After is rate-limited until about then.
pub async fn rate_limit_classified(h: Arc<dyn ProviderHarness>) {
    let before = time::OffsetDateTime::now_utc();
    let e = fault_then_fetch(
        &*h,
        HttpFault::RateLimited {
            retry_after_secs: 30,
        },
    )
    .await;
    let until = e
        .rate_limited_until()
        .unwrap_or_else(|| panic!("not rate limited: {e:?}"));
    let secs = (until - before).whole_seconds();
    assert!(
        (25..=40).contains(&secs),
        "Retry-After 30 s honoured, got {secs} s"
    );
}

/// 5xx is retryable.
pub async fn server_error_retryable(h: Arc<dyn ProviderHarness>) {
    let e = fault_then_fetch(&*h, HttpFault::ServerError).await;
    assert!(matches!(e, ProviderError::Retryable { .. }), "{e:?}");
}

/// A timeout is retryable.
pub async fn timeout_retryable(h: Arc<dyn ProviderHarness>) {
    let e = fault_then_fetch(&*h, HttpFault::Timeout).await;
    assert!(matches!(e, ProviderError::Retryable { .. }), "{e:?}");
}

/// 401 is terminal.
pub async fn unauthorized_terminal(h: Arc<dyn ProviderHarness>) {
    let e = fault_then_fetch(&*h, HttpFault::Unauthorized).await;
    assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
}

/// 403 is terminal, and never a deletion: `Forbidden` (the object may not be read; the
/// engine lists it on the integration) or `Terminal`, not `NotFound`, not retried.
pub async fn forbidden_terminal(h: Arc<dyn ProviderHarness>) {
    let e = fault_then_fetch(&*h, HttpFault::Forbidden).await;
    assert!(
        matches!(e, ProviderError::Forbidden(_) | ProviderError::Terminal(_)),
        "{e:?}"
    );
    assert!(!e.is_retryable());
}

/// 404 is not found.
pub async fn not_found_classified(h: Arc<dyn ProviderHarness>) {
    let e = fault_then_fetch(&*h, HttpFault::NotFound).await;
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
}

/// The form a provider reports a written value in ([`ordonis_core::ValueCheck::AcceptAs`]) is the form its
/// fake really reports after the write (the value itself when there is no echo form), and
/// normalizing it again changes nothing, so a second round trip still matches. Every provider
/// is held to it: one without an echo form must report what it was sent.
pub async fn echo_form_is_a_fixed_point(h: Arc<dyn ProviderHarness>) {
    let p = h.provider();
    let ctx = h.context();
    for v in [
        FieldValue::Description(
            "# Plan\n\nSome _emphasis_, **strong**, `code` and [a link](https://example.com).\n\n\
             * one\n* two\n  1. nested\n\n> quoted"
                .into(),
        ),
        FieldValue::Title("A title".into()),
    ] {
        let key = h.seed_remote(&sample_fields()).await;
        let out = p
            .push(&ctx, &key, &FieldPatch::new().with(v.clone()))
            .await
            .unwrap_or_else(|e| panic!("push {v:?}: {e}"));
        assert!(
            out.applied.contains(&v.field()) || out.settled.contains(&v.field()),
            "{v:?} was not written: {out:?}"
        );
        let expected = p
            .check_value(&ctx, &v)
            .echo_form()
            .unwrap_or_else(|| v.clone());
        assert_eq!(expected.field(), v.field(), "{v:?}");
        let fetched = p
            .fetch_task(&ctx, &key)
            .await
            .unwrap_or_else(|e| panic!("fetch after pushing {v:?}: {e}"));
        let reported = fetched
            .fields
            .get(v.field())
            .unwrap_or_else(|| panic!("{v:?}: the fetch reports no {}", v.field()));
        assert!(
            reported.same_as(&expected),
            "{v:?}: echo form {expected:?}, but the provider reports {reported:?}"
        );
        let twice = p
            .check_value(&ctx, reported)
            .echo_form()
            .unwrap_or_else(|| reported.clone());
        assert!(
            twice.same_as(reported),
            "{v:?}: {reported:?} then {twice:?}"
        );
    }
}

/// Lists pages in `mode` from `cursor` until the run is done (at most 200 pages), returning
/// every hint and the final cursor.
pub async fn list_to_done(
    h: &dyn ProviderHarness,
    mode: ListMode,
    cursor: Option<serde_json::Value>,
) -> (Vec<ordonis_core::ChangeHint>, serde_json::Value) {
    let scope = h.scope();
    let mut cursor = cursor;
    let mut hints = Vec::new();
    for _ in 0..200 {
        let req = ListRequest {
            mode,
            scope: &scope,
            cursor: cursor.as_ref(),
            recent: &[],
            page_size: 2,
        };
        let provider = h.provider();
        let repair = provider
            .repair()
            .unwrap_or_else(|| panic!("the provider has no repair loop"));
        let page = repair
            .list_changes(&h.context(), &req)
            .await
            .unwrap_or_else(|e| panic!("list {mode:?}: {e}"));
        hints.extend(page.changes);
        if page.done {
            return (hints, page.cursor);
        }
        cursor = Some(page.cursor);
    }
    panic!("{mode:?} listing did not finish in 200 pages");
}

/// The scope the harness uses is accepted; a scope that is not an object is refused, and
/// the refusal names the scope.
pub async fn scope_checked(h: Arc<dyn ProviderHarness>) {
    let p = h.provider();
    let scope = h.scope();
    let options = serde_json::Value::Null;
    let config = |scope| ConfigToCheck {
        options: &options,
        scope,
        auth: None,
    };
    assert_eq!(p.check_config(&config(&scope)), Ok(()));
    let refused = p.check_config(&config(&serde_json::json!(42)));
    assert!(
        matches!(&refused, Err(e) if e.what == "scope"),
        "{refused:?}"
    );
}

fn listed_title(hints: &[ordonis_core::ChangeHint], key: &ObjectKey) -> Option<Option<String>> {
    let hint = hints.iter().rev().find(|x| &x.key == key)?;
    Some(hint.snapshot.as_ref().and_then(|s| {
        s.fields
            .get(ordonis_core::Field::Title)
            .and_then(|v| match v {
                FieldValue::Title(t) => Some(t.clone()),
                _ => None,
            })
    }))
}

/// A backfill pages (two objects per page) through every seeded object, each once at least,
/// with its state when the listing carries one.
pub async fn backfill_lists_seeded_objects(h: Arc<dyn ProviderHarness>) {
    let mut keys = Vec::new();
    for i in 0..5 {
        let fields = FieldPatch::new().with(FieldValue::Title(format!("Listed {i}")));
        keys.push(h.seed_remote(&fields).await);
    }
    let (hints, _) = list_to_done(&*h, ListMode::Backfill, None).await;
    for (i, key) in keys.iter().enumerate() {
        match listed_title(&hints, key) {
            None => panic!("{key:?} was not listed: {hints:?}"),
            Some(Some(t)) => assert_eq!(t, format!("Listed {i}")),
            Some(None) => {}
        }
    }
    assert!(
        hints
            .iter()
            .all(|x| x.kind == ordonis_core::HintKind::Changed),
        "a backfill reports changes only: {hints:?}"
    );
}

/// After a backfill, an edit that sent no webhook is found by the next reconcile from the
/// backfill's cursor.
pub async fn reconcile_finds_a_silent_edit(h: Arc<dyn ProviderHarness>) {
    let key = h.seed_remote(&sample_fields()).await;
    let (_, cursor) = list_to_done(&*h, ListMode::Backfill, None).await;
    h.edit_remote_silently(&key, "Edited without a webhook")
        .await;
    let (hints, _) = list_to_done(&*h, ListMode::Reconcile, Some(cursor)).await;
    match listed_title(&hints, &key) {
        None => panic!("the silent edit of {key:?} was not found: {hints:?}"),
        Some(Some(t)) => assert_eq!(t, "Edited without a webhook"),
        Some(None) => {}
    }
}

/// A reconcile without a cursor (`backfill: false`) lists nothing old and returns a cursor a
/// later reconcile continues from.
pub async fn reconcile_without_cursor_starts_at_present(h: Arc<dyn ProviderHarness>) {
    let old = h.seed_remote(&sample_fields()).await;
    let (hints, cursor) = list_to_done(&*h, ListMode::Reconcile, None).await;
    assert!(
        hints.iter().all(|x| x.key != old || x.snapshot.is_none()),
        "an object untouched since before the start was imported: {hints:?}"
    );
    h.edit_remote_silently(&old, "Edited after the start").await;
    let (hints, _) = list_to_done(&*h, ListMode::Reconcile, Some(cursor)).await;
    assert!(listed_title(&hints, &old).is_some(), "{hints:?}");
}
