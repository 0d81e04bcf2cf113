//! Links on Asana tasks: external attachments, the [`LinkProvider`] of [`AsanaProvider`].
//!
//! A link is `POST /attachments` as `multipart/form-data`, the only body Asana takes there:
//!
//! ```text
//! resource_subtype=external
//! parent=<task gid>
//! name=<the link's title>
//! url=<where it leads>
//! ```
//!
//! answered `{"data": {"gid", "resource_type": "attachment", "name", "resource_subtype":
//! "external", "view_url", …}}` (the fields [`ATTACHMENT_OPT_FIELDS`] asks for). Asana's
//! spec gives an attachment no `url` field: the URL where it "can be viewed" is `view_url`,
//! which is where the external URL is read from (or `download_url`, "the URL containing the
//! content", when `view_url` is empty); `permanent_url` is an Asana page, not the link's
//! target. A task's attachments are `GET /attachments?parent=<task gid>` (paged), and one is
//! deleted with `DELETE /attachments/{gid}`.
//!
//! Asana keeps no global id of ours (so [`RemoteLink::global_id`] is `None`) and an
//! attachment cannot be edited. So [`LinkProvider::upsert_link`] lists the task's
//! attachments first: an external attachment showing the draft's title and URL is the link
//! (a post whose answer was lost made it), and is returned as it is; otherwise a new one is
//! made. Either way the link's earlier versions are deleted after the replacement exists:
//! `previous`, and any other external attachment of the task with the same URL (a lost
//! answer may have kept the earlier one's id from us; the URL of an Ordonis link, a session's
//! page or an artifact, is the link's own). So the task never lacks the link, and a retry
//! after any lost answer leaves exactly one. The draft's `summary` has no place in an attachment. A
//! `403` (the token cannot see the task, or lacks the scope) is
//! [`ProviderError::Forbidden`]; a refused request (`400`: no name or URL) is
//! [`ProviderError::Terminal`], as for comments.

use async_trait::async_trait;
use ordonis_core::{
    LinkDraft, LinkProvider, ObjectKey, ProviderContext, ProviderError, RemoteLink,
};
use reqwest::Method;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::client::{AsanaClient, check_gid};
use crate::error::AsanaError;
use crate::provider::AsanaProvider;

/// What an attachment is read with (every one is in the spec's `opt_fields` enum).
pub const ATTACHMENT_OPT_FIELDS: &str =
    "name,resource_subtype,view_url,download_url,permanent_url,host";

/// The `resource_subtype` of an attachment that is a link.
pub const EXTERNAL: &str = "external";

fn text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn is_external(v: &Value) -> bool {
    text(v, "resource_subtype") == Some(EXTERNAL)
}

/// An attachment as a [`RemoteLink`]: an external one leads to its `view_url` (else its
/// `download_url`), a file to its `permanent_url` (Asana's stable page for it; its
/// `download_url` expires within minutes).
pub fn remote_link(v: &Value) -> Result<RemoteLink, AsanaError> {
    let external_id = text(v, "gid")
        .ok_or_else(|| AsanaError::Decode("an attachment without a gid".to_owned()))?
        .to_owned();
    let url = if is_external(v) {
        text(v, "view_url")
            .or_else(|| text(v, "download_url"))
            .or_else(|| text(v, "permanent_url"))
    } else {
        text(v, "permanent_url").or_else(|| text(v, "view_url"))
    };
    Ok(RemoteLink {
        external_id,
        global_id: None,
        title: text(v, "name").unwrap_or_default().to_owned(),
        url: url.unwrap_or_default().to_owned(),
    })
}

/// Whether an attachment is the link a draft describes: external, with its title and URL.
pub fn shows(v: &Value, draft: &LinkDraft<'_>) -> bool {
    is_external(v)
        && text(v, "name") == Some(draft.title)
        && (text(v, "view_url") == Some(draft.url) || text(v, "download_url") == Some(draft.url))
}

impl AsanaClient {
    /// Every attachment of a task (or project), `GET /attachments?parent=<gid>`, followed
    /// page by page.
    pub async fn attachments(&self, parent: &str) -> Result<Vec<Value>, AsanaError> {
        let parent = check_gid(parent)?;
        self.list_all(
            "/attachments",
            &[("parent", parent), ("opt_fields", ATTACHMENT_OPT_FIELDS)],
            &format!("the attachments of {parent}"),
        )
        .await
    }

    /// `POST /attachments` (`multipart/form-data`): an external attachment named `name`
    /// leading to `url` on `parent`. The attachment (`data`).
    pub async fn create_external_attachment(
        &self,
        parent: &str,
        name: &str,
        url: &str,
    ) -> Result<Value, AsanaError> {
        let parent = check_gid(parent)?;
        let form = Form::new()
            .text("resource_subtype", EXTERNAL)
            .text("parent", parent.to_owned())
            .text("name", name.to_owned())
            .text("url", url.to_owned());
        let resp = self
            .call_form(
                Method::POST,
                "/attachments",
                &[("opt_fields", ATTACHMENT_OPT_FIELDS)],
                form,
                &format!("a link on {parent}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `DELETE /attachments/{gid}`.
    pub async fn delete_attachment(&self, gid: &str) -> Result<(), AsanaError> {
        let gid = check_gid(gid)?;
        self.call(
            Method::DELETE,
            &format!("/attachments/{gid}"),
            &[],
            None,
            &format!("attachment {gid}"),
        )
        .await
        .map(drop)
    }
}

/// A link call's error for the engine: a `403` is a typed [`ProviderError::Forbidden`], the
/// rest as any Asana error.
fn link_error(e: AsanaError) -> ProviderError {
    match e {
        AsanaError::Forbidden { what, message } => {
            ProviderError::Forbidden(format!("Asana refused access to {what} (403): {message}"))
        }
        other => other.into(),
    }
}

/// Deletes an attachment; one already gone is done.
async fn delete_gone_ok(client: &AsanaClient, gid: &str) -> Result<(), ProviderError> {
    match client.delete_attachment(gid).await {
        Ok(()) | Err(AsanaError::NotFound { .. }) => Ok(()),
        Err(e) => Err(link_error(e)),
    }
}

#[async_trait]
impl LinkProvider for AsanaProvider {
    /// Finds the task's attachment showing the draft, else makes one; then deletes
    /// `previous` if the task still has it (see the module docs).
    async fn upsert_link(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        draft: &LinkDraft<'_>,
        previous: Option<&str>,
    ) -> Result<RemoteLink, ProviderError> {
        let client = self.client(ctx)?;
        let existing = client
            .attachments(&task.external_id)
            .await
            .map_err(link_error)?;
        let link = match existing.iter().find(|a| shows(a, draft)) {
            Some(found) => remote_link(found)?,
            None => {
                let made = client
                    .create_external_attachment(&task.external_id, draft.title, draft.url)
                    .await
                    .map_err(link_error)?;
                let mut link = remote_link(&made)?;
                // An answer without the URL (fields it was not asked for) still made this.
                if link.url.is_empty() {
                    draft.url.clone_into(&mut link.url);
                }
                link
            }
        };
        // The link's earlier versions go: `previous`, and (when a lost answer kept its id
        // from us) any other external attachment of the task pointing at the same URL, which
        // for Ordonis's links is unique to the link (a session's page, an artifact). Only
        // attachments of this task are deleted, never a gid it does not hold.
        let stale: Vec<&str> = existing
            .iter()
            .filter(|a| is_external(a))
            .filter_map(|a| {
                let gid = text(a, "gid")?;
                let same_url = text(a, "view_url") == Some(draft.url)
                    || text(a, "download_url") == Some(draft.url);
                (gid != link.external_id && (same_url || previous == Some(gid))).then_some(gid)
            })
            .collect();
        for old in stale {
            delete_gone_ok(&client, old).await?;
        }
        Ok(link)
    }

    async fn list_links(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
    ) -> Result<Vec<RemoteLink>, ProviderError> {
        let list = self
            .client(ctx)?
            .attachments(&task.external_id)
            .await
            .map_err(link_error)?;
        Ok(list
            .iter()
            .map(remote_link)
            .collect::<Result<Vec<_>, _>>()?)
    }

    async fn delete_link(
        &self,
        ctx: &ProviderContext,
        _task: &ObjectKey,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        delete_gone_ok(&self.client(ctx)?, external_id).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const DRAFT: LinkDraft<'static> = LinkDraft {
        global_id: "ordonis:artifact:1",
        title: "PR #42",
        url: "https://github.com/acme/app/pull/42",
        summary: Some("not shown in Asana"),
    };

    #[test]
    fn an_external_attachment_leads_to_its_view_url() {
        let v = json!({"gid": "12", "name": "PR #42", "resource_subtype": "external",
            "view_url": "https://github.com/acme/app/pull/42",
            "permanent_url": "https://app.asana.com/app/asana/-/get_asset?asset_id=12"});
        assert_eq!(
            remote_link(&v).unwrap(),
            RemoteLink {
                external_id: "12".into(),
                global_id: None,
                title: "PR #42".into(),
                url: "https://github.com/acme/app/pull/42".into(),
            }
        );
        assert!(shows(&v, &DRAFT));
        let via_download = json!({"gid": "13", "name": "PR #42", "resource_subtype": "external",
            "view_url": null, "download_url": "https://github.com/acme/app/pull/42"});
        assert!(shows(&via_download, &DRAFT));
        assert_eq!(
            remote_link(&via_download).unwrap().url,
            "https://github.com/acme/app/pull/42"
        );
    }

    #[test]
    fn a_file_or_another_title_is_not_the_draft() {
        let file = json!({"gid": "1", "name": "PR #42", "resource_subtype": "asana",
            "view_url": "https://github.com/acme/app/pull/42",
            "download_url": "https://s3.example/x?sig=1",
            "permanent_url": "https://app.asana.com/app/asana/-/get_asset?asset_id=1"});
        assert!(!shows(&file, &DRAFT));
        assert_eq!(
            remote_link(&file).unwrap().url,
            "https://app.asana.com/app/asana/-/get_asset?asset_id=1"
        );
        let renamed = json!({"gid": "2", "name": "PR #42 (merged)",
            "resource_subtype": "external", "view_url": "https://github.com/acme/app/pull/42"});
        assert!(!shows(&renamed, &DRAFT));
        assert!(remote_link(&json!({"name": "x"})).is_err());
    }

    #[test]
    fn a_403_is_forbidden_and_a_400_terminal() {
        let e = link_error(AsanaError::Forbidden {
            what: "task 1".into(),
            message: "no".into(),
        });
        assert!(matches!(e, ProviderError::Forbidden(_)), "{e:?}");
        let e = link_error(AsanaError::Rejected {
            status: 400,
            message: "name: Missing input".into(),
        });
        assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
    }
}
