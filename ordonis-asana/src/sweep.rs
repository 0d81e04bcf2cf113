//! The Asana half of the id sweep: the gids of every task of the scope's projects
//! (`GET /tasks?project=…&opt_fields=gid`, offset paging, project after project), and the
//! deletion of the webhooks Ordonis registered (`DELETE /webhooks/{gid}`).
//!
//! Subtasks synced with `"subtasks": true` are in no project's task list: the sweep finds
//! them missing and a worker fetches each, which reads it as still in scope (one read per
//! such subtask and sweep).

use ordonis_core::{IdsPage, IdsRequest, ProviderError};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{AsanaClient, PAGE_LIMIT};
use crate::error::AsanaError;
use crate::repair::scope_projects;

/// Where an id listing is: the project (by its place in the scope) and its next offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct IdsCursor {
    project: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<String>,
}

#[derive(Deserialize)]
struct Gid {
    gid: String,
}

#[derive(Deserialize)]
struct NextPage {
    #[serde(default)]
    offset: Option<String>,
}

#[derive(Deserialize)]
struct GidPage {
    #[serde(default)]
    data: Vec<Gid>,
    #[serde(default)]
    next_page: Option<NextPage>,
}

/// [`ordonis_core::RepairProvider::list_ids`] for Asana: one page of one project's task gids.
pub(crate) async fn list_ids(
    client: &AsanaClient,
    req: &IdsRequest<'_>,
) -> Result<IdsPage, ProviderError> {
    let projects = scope_projects(req.scope)?;
    let cur: IdsCursor = match req.cursor {
        None | Some(Value::Null) => IdsCursor::default(),
        Some(c) => serde_json::from_value(c.clone())
            .map_err(|e| ProviderError::Terminal(format!("not an Asana id-listing cursor: {e}")))?,
    };
    let Some(project) = projects.get(cur.project) else {
        return Ok(IdsPage::default());
    };
    let limit = u32::try_from(req.page_size)
        .unwrap_or(PAGE_LIMIT)
        .clamp(1, PAGE_LIMIT)
        .to_string();
    let mut query = vec![
        ("project", project.as_str()),
        ("opt_fields", "gid"),
        ("limit", limit.as_str()),
    ];
    if let Some(o) = &cur.offset {
        query.push(("offset", o.as_str()));
    }
    let resp = client
        .call(
            Method::GET,
            "/tasks",
            &query,
            None,
            &format!("project {project}"),
        )
        .await?;
    let page: GidPage = client.json(resp).await?;
    let next_offset = page
        .next_page
        .and_then(|n| n.offset)
        .filter(|o| !o.is_empty() && Some(o) != cur.offset.as_ref());
    let next = match next_offset {
        Some(offset) => Some(IdsCursor {
            project: cur.project,
            offset: Some(offset),
        }),
        None if cur.project + 1 < projects.len() => Some(IdsCursor {
            project: cur.project + 1,
            offset: None,
        }),
        None => None,
    };
    Ok(IdsPage {
        ids: page.data.into_iter().map(|g| g.gid).collect(),
        cursor: next
            .map(|c| serde_json::to_value(c).map_err(|e| ProviderError::Terminal(e.to_string())))
            .transpose()?,
    })
}

/// [`ordonis_core::RepairProvider::delete_webhooks`] for Asana: one `DELETE` each; a webhook
/// already gone (404) counts as deleted. The first failure is returned after trying all.
pub(crate) async fn delete_webhooks(
    client: &AsanaClient,
    ids: &[String],
) -> Result<(), ProviderError> {
    let mut first: Option<AsanaError> = None;
    for gid in ids {
        match client.delete_webhook(gid).await {
            Ok(()) | Err(AsanaError::NotFound { .. }) => {}
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
