//! The Jira half of the id sweep: the scope's issue ids through the enhanced search
//! (`POST /rest/api/3/search/jql` with `fields: ["id"]`, the field set for which Jira pages
//! up to 5000 issues), paged by `nextPageToken`; and the deletion of the dynamic webhooks
//! Ordonis registered (`DELETE /rest/api/3/webhook` with `webhookIds`).

use ordonis_core::{IdsPage, IdsRequest, ProviderError};
use serde_json::{Value, json};

use crate::client::{JiraClient, SearchRequest};
use crate::config::scope_jql;
use crate::repair::strip_order_by;

/// Jira's page-size cap for a search that asks for `id` (or `key`) only.
pub const MAX_IDS_PAGE_SIZE: usize = 5000;

/// [`ordonis_core::RepairProvider::list_ids`] for Jira: one page of the scope's issue ids.
/// The cursor is `{"page_token": …}`.
pub async fn list_ids(client: &JiraClient, req: &IdsRequest<'_>) -> Result<IdsPage, ProviderError> {
    let jql = strip_order_by(scope_jql(req.scope)?);
    let token = match req.cursor {
        None | Some(Value::Null) => None,
        Some(c) => Some(
            c.get("page_token")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    ProviderError::Terminal(format!("not a Jira id-listing cursor: {c}"))
                })?,
        ),
    };
    let mut sreq = SearchRequest::new(format!("({jql})"));
    sreq.fields = vec!["id".to_owned()];
    sreq.max_results = u32::try_from(req.page_size.clamp(1, MAX_IDS_PAGE_SIZE)).ok();
    sreq.next_page_token = token.clone();
    let page = client.search_jql(&sreq).await?;
    let ids = page
        .issues
        .iter()
        .filter_map(|i| match i.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    let cursor = match page.next_page_token {
        // A token that repeats the one sent would loop forever: the end.
        Some(t) if page.is_last != Some(true) && Some(&t) != token.as_ref() => {
            Some(json!({ "page_token": t }))
        }
        _ => None,
    };
    Ok(IdsPage { ids, cursor })
}

/// [`ordonis_core::RepairProvider::delete_webhooks`] for Jira: one `DELETE` naming them all
/// (Jira ignores ids it does not have, so one already gone is no error).
pub async fn delete_webhooks(client: &JiraClient, ids: &[String]) -> Result<(), ProviderError> {
    let ids: Vec<i64> = ids.iter().filter_map(|i| i.parse().ok()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    Ok(client.delete_dynamic_webhooks(&ids).await?)
}
