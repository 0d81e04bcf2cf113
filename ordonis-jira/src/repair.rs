//! The Jira side of the repair loop: backfill and reconciliation through
//! `POST /rest/api/3/search/jql`, and dynamic (OAuth/Connect app) webhooks kept alive through
//! `/rest/api/3/webhook`.
//!
//! **Cursors** (opaque to the engine, JSON):
//! - during a backfill crawl `{"phase": "backfill", "since_ms", "page_token"}`; when the crawl
//!   is done `{"since_ms"}`, `since_ms` being the time taken *before* the crawl started, so a
//!   change made during the crawl is found by the first reconcile;
//! - during a reconcile run `{"phase": "reconcile", "since_ms", "run_started_ms",
//!   "page_token"}`; when the run is done `{"since_ms": run_started_ms}`.
//!
//! **Overlap.** A reconcile asks for `updated >= <since_ms − overlap>`: JQL dates have minute
//! granularity (the date is floored to its minute, which only widens the window) and Jira's
//! search index lags behind writes, so a change made just before the cursor can be invisible
//! to the run that set it. The overlap (default 120 s) re-reads that margin; the version guard
//! makes the re-read changes no-ops. Issues Ordonis wrote itself are passed as
//! `reconcileIssues`, which Jira reads fresh instead of from the index.
//!
//! **Time zone.** Jira evaluates a JQL date in the *searching user's* time zone (the API
//! account's profile setting), not UTC. The dates are written in the `jql_time_zone` option
//! (default UTC); an account in another zone needs the option, or its searches are shifted by
//! the zone's offset (a change missed, or re-read, for that many hours).

use std::time::Duration;

use ordonis_core::{
    ChangeHint, HintKind, ListMode, ListPage, ListRequest, ProviderContext, ProviderError,
    WebhookCheck, WebhookReport, WebhookState,
};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::client::{JiraClient, SearchRequest};
use crate::config::{JiraOptions, WebhookMode, scope_jql, time_zone};
use crate::error::JiraError;
use crate::webhook::remote_task;

/// The default overlap of a reconcile's search window with the previous run's, seconds.
pub const DEFAULT_RECONCILE_OVERLAP_S: u64 = 120;

/// Jira's page-size cap for a search that asks for fields beyond `id`/`key`.
pub const MAX_PAGE_SIZE: usize = 100;

/// Jira accepts at most this many `reconcileIssues` per search.
pub const MAX_RECONCILE_ISSUES: usize = 50;

/// A dynamic webhook expiring within this is renewed (Jira lets them live 30 days).
pub const RENEW_WITHIN: Duration = Duration::from_secs(7 * 24 * 3600);

/// The events a registered dynamic webhook delivers.
pub const WEBHOOK_EVENTS: [&str; 3] = [
    "jira:issue_created",
    "jira:issue_updated",
    "jira:issue_deleted",
];

/// The scope's JQL without a trailing `ORDER BY` (the listing orders by `updated` itself, and
/// `(… ORDER BY …)` is not valid JQL).
pub(crate) fn strip_order_by(jql: &str) -> &str {
    let lower = jql.to_ascii_lowercase();
    let mut quote: Option<u8> = None;
    let bytes = lower.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if lower[i..].starts_with("order by")
                && (i == 0 || bytes[i - 1].is_ascii_whitespace() || bytes[i - 1] == b')') =>
            {
                return jql[..i].trim_end();
            }
            None => {}
        }
    }
    jql
}

/// Epoch ms as a JQL date (`yyyy/MM/dd HH:mm`) in `tz`, floored to the minute.
pub fn jql_date(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned(tz.clone())
        .strftime("%Y/%m/%d %H:%M")
        .to_string()
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phase: Option<String>,
    since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_started_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

impl Cursor {
    fn done(since_ms: i64) -> Value {
        json!({ "since_ms": since_ms })
    }
    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

fn to_datetime(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn options(ctx: &ProviderContext) -> Result<JiraOptions, ProviderError> {
    Ok(JiraOptions::from_json(&ctx.options)?)
}

/// One page of a backfill or reconcile (see the module docs for the queries and cursors).
pub async fn list_changes(
    client: &JiraClient,
    ctx: &ProviderContext,
    req: &ListRequest<'_>,
) -> Result<ListPage, ProviderError> {
    let opts = options(ctx)?;
    let scope = strip_order_by(scope_jql(req.scope)?);
    let cursor: Option<Cursor> = req
        .cursor
        .map(|c| {
            serde_json::from_value(c.clone()).map_err(|e| {
                ProviderError::Terminal(format!("unreadable Jira listing cursor {c}: {e}"))
            })
        })
        .transpose()?;
    let recent: Vec<i64> = req
        .recent
        .iter()
        .filter_map(|k| k.external_id.parse().ok())
        .take(MAX_RECONCILE_ISSUES)
        .collect();
    let now = now_ms();
    match req.mode {
        ListMode::Backfill => {
            // The handover point is taken before the first page is read.
            let (since, token) = match cursor {
                None => (now, None),
                Some(c) if c.phase.as_deref() == Some("backfill") => (c.since_ms, c.page_token),
                Some(c) => (c.since_ms, None),
            };
            let jql = format!("({scope}) ORDER BY updated ASC");
            let (changes, next) = search(client, ctx, jql, token, req.page_size, recent).await?;
            Ok(match next {
                None => ListPage {
                    changes,
                    cursor: Cursor::done(since),
                    done: true,
                },
                Some(t) => ListPage {
                    changes,
                    cursor: Cursor {
                        phase: Some("backfill".to_owned()),
                        since_ms: since,
                        run_started_ms: None,
                        page_token: Some(t),
                    }
                    .to_json(),
                    done: false,
                },
            })
        }
        ListMode::Reconcile => {
            let Some(c) = cursor else {
                return Ok(ListPage {
                    changes: Vec::new(),
                    cursor: Cursor::done(now),
                    done: true,
                });
            };
            let (since, started, token) = if c.phase.as_deref() == Some("reconcile") {
                (c.since_ms, c.run_started_ms.unwrap_or(now), c.page_token)
            } else {
                (c.since_ms, now, None)
            };
            let overlap_ms = i64::try_from(
                opts.reconcile_overlap_s
                    .unwrap_or(DEFAULT_RECONCILE_OVERLAP_S)
                    .saturating_mul(1000),
            )
            .unwrap_or(i64::MAX);
            let tz = match &opts.jql_time_zone {
                Some(name) => time_zone(name)?,
                None => jiff::tz::TimeZone::UTC,
            };
            let from = jql_date(since.saturating_sub(overlap_ms), &tz);
            let jql = format!("({scope}) AND updated >= \"{from}\" ORDER BY updated ASC");
            let (changes, next) = search(client, ctx, jql, token, req.page_size, recent).await?;
            Ok(match next {
                None => ListPage {
                    changes,
                    cursor: Cursor::done(started),
                    done: true,
                },
                Some(t) => ListPage {
                    changes,
                    cursor: Cursor {
                        phase: Some("reconcile".to_owned()),
                        since_ms: since,
                        run_started_ms: Some(started),
                        page_token: Some(t),
                    }
                    .to_json(),
                    done: false,
                },
            })
        }
    }
}

/// One search page as hints, and the next page's token (`None` on the last page).
async fn search(
    client: &JiraClient,
    ctx: &ProviderContext,
    jql: String,
    token: Option<String>,
    page_size: usize,
    recent: Vec<i64>,
) -> Result<(Vec<ChangeHint>, Option<String>), ProviderError> {
    let mut sreq = SearchRequest::new(jql);
    sreq.max_results = u32::try_from(page_size.clamp(1, MAX_PAGE_SIZE)).ok();
    sreq.next_page_token = token.clone();
    sreq.reconcile_issues = recent;
    let page = match client.search_jql(&sreq).await {
        // Jira's page tokens expire (after 7 days): a run resumed that late restarts from its
        // first page. Listing again is harmless; the version guard skips what is applied.
        Err(JiraError::Rejected {
            status: 400,
            message,
            ..
        }) if token.is_some() => {
            tracing::warn!(message = %ordonis_core::provider_http::bounded_error(&message), "Jira refused a search page token; restarting the run's listing");
            sreq.next_page_token = None;
            client.search_jql(&sreq).await?
        }
        other => other?,
    };
    let mut changes = Vec::with_capacity(page.issues.len());
    for issue in &page.issues {
        // The same normalization as a fetch (ADF description to Markdown, status, ...).
        let task = remote_task(issue, &ctx.base_url, None)?;
        changes.push(ChangeHint {
            key: task.key.clone(),
            delivery_id: None,
            kind: HintKind::Changed,
            source_time_ms: Some(task.modified_at_ms).filter(|ms| *ms > 0),
            actor: None,
            snapshot: Some(task),
            changes: Vec::new(),
        });
    }
    let next = match page.next_page_token {
        // A token that repeats the one sent would loop forever: treat it as the end.
        Some(t) if page.is_last != Some(true) && Some(&t) != token.as_ref() => Some(t),
        _ => None,
    };
    Ok((changes, next))
}

/// A dynamic webhook as `GET /rest/api/3/webhook` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DynamicWebhook {
    /// Its id.
    pub id: i64,
    /// Its JQL filter.
    #[serde(default)]
    pub jql_filter: Option<String>,
    /// The events it delivers.
    #[serde(default)]
    pub events: Vec<String>,
    /// When it stops delivering, epoch ms.
    #[serde(default)]
    pub expiration_date: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookPage {
    #[serde(default)]
    values: Vec<DynamicWebhook>,
    #[serde(default)]
    is_last: Option<bool>,
}

impl JiraClient {
    /// `POST /rest/api/3/webhook`: registers one webhook per `(events, jqlFilter)` to `url`;
    /// per webhook its id or Jira's errors.
    pub async fn register_dynamic_webhooks(
        &self,
        url: &str,
        webhooks: &[(&[&str], &str)],
    ) -> Result<Vec<Result<i64, String>>, JiraError> {
        let body = json!({
            "url": url,
            "webhooks": webhooks.iter().map(|(events, jql)| json!({"events": events, "jqlFilter": jql})).collect::<Vec<_>>(),
        });
        let rb = self
            .request(Method::POST, "/rest/api/3/webhook")
            .json(&body);
        let v: Value = self
            .json(self.send(rb, "webhook registration").await?)
            .await?;
        let results = v
            .get("webhookRegistrationResult")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                JiraError::Decode("webhook registration: no webhookRegistrationResult".into())
            })?;
        Ok(results
            .iter()
            .map(
                |r| match r.get("createdWebhookId").and_then(Value::as_i64) {
                    Some(id) => Ok(id),
                    None => Err(r
                        .get("errors")
                        .and_then(Value::as_array)
                        .map(|e| {
                            e.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .filter(|e| !e.is_empty())
                        .unwrap_or_else(|| "no id returned".to_owned())),
                },
            )
            .collect())
    }

    /// `GET /rest/api/3/webhook`: the app's dynamic webhooks (paged by `startAt`, at most
    /// `max_pages` pages of 100).
    pub async fn dynamic_webhooks(
        &self,
        max_pages: usize,
    ) -> Result<Vec<DynamicWebhook>, JiraError> {
        let mut out = Vec::new();
        for _ in 0..max_pages {
            let rb = self.request(
                Method::GET,
                &format!("/rest/api/3/webhook?startAt={}&maxResults=100", out.len()),
            );
            let page: WebhookPage = self.json(self.send(rb, "webhooks").await?).await?;
            let n = page.values.len();
            out.extend(page.values);
            if n == 0 || page.is_last != Some(false) {
                break;
            }
        }
        Ok(out)
    }

    /// `PUT /rest/api/3/webhook/refresh`: extends the webhooks' life; their new expiry (ms).
    pub async fn refresh_dynamic_webhooks(&self, ids: &[i64]) -> Result<i64, JiraError> {
        let rb = self
            .request(Method::PUT, "/rest/api/3/webhook/refresh")
            .json(&json!({ "webhookIds": ids }));
        let v: Value = self.json(self.send(rb, "webhook refresh").await?).await?;
        v.get("expirationDate")
            .and_then(Value::as_i64)
            .ok_or_else(|| JiraError::Decode("webhook refresh: no expirationDate".into()))
    }

    /// `DELETE /rest/api/3/webhook` with `{"webhookIds": ids}`.
    pub async fn delete_dynamic_webhooks(&self, ids: &[i64]) -> Result<(), JiraError> {
        let rb = self
            .request(Method::DELETE, "/rest/api/3/webhook")
            .json(&json!({ "webhookIds": ids }));
        self.send(rb, "webhook deletion").await.map(drop)
    }
}

/// Checks the integration's dynamic webhooks and renews those expiring within
/// [`RENEW_WITHIN`]; admin webhooks are `Unknown` (Jira's API cannot see them).
pub async fn check_webhooks(
    client: &JiraClient,
    ctx: &ProviderContext,
    check: &WebhookCheck<'_>,
) -> Result<WebhookReport, ProviderError> {
    if options(ctx)?.webhook == WebhookMode::Admin {
        return Ok(WebhookReport::default());
    }
    let known: Vec<i64> = check.known.iter().filter_map(|k| k.parse().ok()).collect();
    if known.is_empty() {
        return Ok(WebhookReport {
            state: WebhookState::Missing,
            detail: Some("no dynamic webhook is registered".to_owned()),
            ..WebhookReport::default()
        });
    }
    let mut existing: Vec<DynamicWebhook> = client
        .dynamic_webhooks(20)
        .await?
        .into_iter()
        .filter(|w| known.contains(&w.id))
        .collect();
    let ids = |ws: &[DynamicWebhook]| ws.iter().map(|w| w.id.to_string()).collect::<Vec<_>>();
    // A webhook filtered on an earlier scope's JQL is stale: the engine deletes it (and
    // registers one for the scope, when it registers webhooks).
    let stale: Vec<String> = match scope_jql(check.scope) {
        Ok(jql) => {
            let jql = strip_order_by(jql).trim();
            let (fit, old): (Vec<_>, Vec<_>) = existing
                .into_iter()
                .partition(|w| w.jql_filter.as_deref().is_none_or(|f| f.trim() == jql));
            existing = fit;
            ids(&old)
        }
        Err(_) => Vec::new(),
    };
    if existing.is_empty() && !stale.is_empty() {
        return Ok(WebhookReport {
            state: WebhookState::Missing,
            detail: Some(format!(
                "webhook {} filters an earlier scope",
                stale.join(", ")
            )),
            stale,
            ..WebhookReport::default()
        });
    }
    if existing.is_empty() {
        return Ok(WebhookReport {
            state: WebhookState::Missing,
            detail: Some(format!(
                "Jira has none of the registered webhooks ({}): expired or deleted",
                check.known.join(", ")
            )),
            ..WebhookReport::default()
        });
    }
    let renew_before = to_ms(check.now + RENEW_WITHIN);
    let expiring: Vec<i64> = existing
        .iter()
        .filter(|w| w.expiration_date.is_none_or(|e| e < renew_before))
        .map(|w| w.id)
        .collect();
    let mut details = Vec::new();
    if !expiring.is_empty() {
        let until = client.refresh_dynamic_webhooks(&expiring).await?;
        for w in existing.iter_mut().filter(|w| expiring.contains(&w.id)) {
            w.expiration_date = Some(until);
        }
        let until = to_datetime(until)
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| until.to_string());
        details.push(format!("renewed until {until}"));
    }
    let gone: Vec<&String> = check
        .known
        .iter()
        .filter(|k| !existing.iter().any(|w| &w.id.to_string() == *k) && !stale.contains(k))
        .collect();
    if !gone.is_empty() {
        details.push(format!(
            "no longer in Jira: {}",
            gone.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(WebhookReport {
        state: WebhookState::Healthy,
        external_ids: ids(&existing),
        expires_at: existing
            .iter()
            .filter_map(|w| w.expiration_date)
            .min()
            .and_then(to_datetime),
        detail: (!details.is_empty()).then(|| details.join("; ")),
        stale,
    })
}

/// Registers a dynamic webhook for the scope's issues to the integration's webhook URL.
pub async fn register_webhooks(
    client: &JiraClient,
    ctx: &ProviderContext,
    check: &WebhookCheck<'_>,
) -> Result<WebhookReport, ProviderError> {
    if options(ctx)?.webhook == WebhookMode::Admin {
        return Err(ProviderError::Terminal(
            "Jira admin webhooks are registered by a Jira administrator (System → WebHooks); \
             set the option webhook: \"dynamic\" for an OAuth/Connect app's webhooks"
                .to_owned(),
        ));
    }
    let url = check.target_url.ok_or_else(|| {
        ProviderError::Terminal(
            "registering a Jira webhook needs the integration's webhook URL".to_owned(),
        )
    })?;
    let jql = strip_order_by(scope_jql(check.scope)?);
    let results = client
        .register_dynamic_webhooks(url, &[(&WEBHOOK_EVENTS, jql)])
        .await?;
    let mut created = Vec::new();
    for r in results {
        created.push(r.map_err(|e| {
            ProviderError::Terminal(format!("Jira refused the webhook registration: {e}"))
        })?);
    }
    let expires_at = client
        .dynamic_webhooks(20)
        .await?
        .iter()
        .filter(|w| created.contains(&w.id))
        .filter_map(|w| w.expiration_date)
        .min()
        .and_then(to_datetime);
    Ok(WebhookReport {
        state: WebhookState::Healthy,
        external_ids: created.iter().map(i64::to_string).collect(),
        expires_at,
        detail: Some("registered".to_owned()),
        stale: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_needs_a_jql_string() {
        assert_eq!(
            scope_jql(&json!({"jql": " project = HO "})),
            Ok("project = HO")
        );
        for bad in [
            json!(null),
            json!({}),
            json!({"jql": ""}),
            json!({"jql": 3}),
        ] {
            assert!(scope_jql(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn order_by_is_stripped_outside_quotes() {
        assert_eq!(
            strip_order_by("project = HO ORDER BY created"),
            "project = HO"
        );
        assert_eq!(
            strip_order_by("summary ~ \"order by\" AND project = HO"),
            "summary ~ \"order by\" AND project = HO"
        );
    }

    #[test]
    fn jql_dates_are_floored_minutes_in_the_zone() {
        // 2025-12-02T14:05:59.900Z
        let ms = 1_764_684_359_900;
        assert_eq!(jql_date(ms, &jiff::tz::TimeZone::UTC), "2025/12/02 14:05");
        let berlin = time_zone("Europe/Berlin").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(jql_date(ms, &berlin), "2025/12/02 15:05");
        assert!(time_zone("Mars/Olympus").is_err());
    }
}
