//! Links on Jira issues: remote issue links (REST v3), the [`LinkProvider`] of
//! [`JiraProvider`].
//!
//! A link is `POST /rest/api/3/issue/{id}/remotelink` with our stable id as its `globalId`:
//!
//! ```json
//! {"globalId": "ordonis:session:0193…",
//!  "application": {"type": "com.collabhub.ordonis", "name": "Ordonis"},
//!  "relationship": "agent session",
//!  "object": {"url": "https://ordonis.example.com/sessions/0193…",
//!             "title": "Triage bot for Alice Smith · running",
//!             "summary": "Looking at the login logs"}}
//! ```
//!
//! Jira upserts by `globalId`: a link of the issue with that global id is updated (every
//! field the request leaves out becomes null) and the answer is `200`, else one is created
//! and the answer is `201`; both answer `{"id": 10000, "self": "…/remotelink/10000"}`. So a
//! post whose answer was lost is simply sent again, and the issue still has one link.
//! [`previous`](LinkProvider::upsert_link) is not needed here. The relationship, the label
//! Jira groups links under, says what the global id names: `agent session` for
//! `ordonis:session:…`, `artifact` for `ordonis:artifact:…`, Jira's default ("links to")
//! otherwise. A `403` (no *Link issues* permission, or issue linking switched off) is
//! [`ProviderError::Forbidden`]; a refused request (`400`: no title or URL) is
//! [`ProviderError::Terminal`], as for comments.

use async_trait::async_trait;
use ordonis_core::{
    LinkDraft, LinkProvider, ObjectKey, ProviderContext, ProviderError, RemoteLink,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::{JiraClient, check_issue_ref};
use crate::error::JiraError;
use crate::provider::JiraProvider;

/// The `application.type` of the links Ordonis makes.
pub const APPLICATION_TYPE: &str = "com.collabhub.ordonis";

/// The `application.name` of the links Ordonis makes (Jira shows it in the link's tooltip).
pub const APPLICATION_NAME: &str = "Ordonis";

/// Jira's limit on a remote link's `globalId`.
pub const MAX_GLOBAL_ID_CHARS: usize = 255;

/// The relationship Jira shows a link under, from what its global id names.
pub fn relationship(global_id: &str) -> Option<&'static str> {
    if global_id.starts_with("ordonis:session:") {
        Some("agent session")
    } else if global_id.starts_with("ordonis:artifact:") {
        Some("artifact")
    } else {
        None
    }
}

/// The `RemoteIssueLinkRequest` for a draft.
pub fn link_request(draft: &LinkDraft<'_>) -> Value {
    let mut object = Map::new();
    object.insert("url".into(), json!(draft.url));
    object.insert("title".into(), json!(draft.title));
    if let Some(summary) = draft.summary {
        object.insert("summary".into(), json!(summary));
    }
    let mut body = json!({
        "globalId": draft.global_id,
        "application": {"type": APPLICATION_TYPE, "name": APPLICATION_NAME},
        "object": object,
    });
    if let Some(r) = relationship(draft.global_id) {
        body["relationship"] = json!(r);
    }
    body
}

/// A remote link id before it goes into a URL path (Jira's are numeric).
fn check_link_id(id: &str) -> Result<&str, JiraError> {
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(JiraError::Config(format!(
            "invalid Jira remote link id {id:?}"
        )))
    }
}

/// An id Jira sends as a number (or, in some answers, a string).
fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A `RemoteIssueLink` as a [`RemoteLink`].
pub fn remote_link(v: &Value) -> Result<RemoteLink, JiraError> {
    let external_id =
        id_of(v).ok_or_else(|| JiraError::Decode("a remote link without an id".to_owned()))?;
    let object = v.get("object");
    let text = |k: &str| {
        object
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(RemoteLink {
        external_id,
        global_id: v
            .get("globalId")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(str::to_owned),
        title: text("title"),
        url: text("url"),
    })
}

impl JiraClient {
    /// `GET /rest/api/3/issue/{id}/remotelink`: the issue's remote links; with `global_id`,
    /// the one link with that global id (Jira answers it as an object, and `404` when the
    /// issue has none: then this is [`JiraError::NotFound`]).
    pub async fn remote_links(
        &self,
        issue: &str,
        global_id: Option<&str>,
    ) -> Result<Vec<Value>, JiraError> {
        let issue = check_issue_ref(issue)?;
        let mut path = format!("/rest/api/3/issue/{issue}/remotelink");
        if let Some(g) = global_id {
            path.push_str("?globalId=");
            path.extend(utf8_percent_encode(g, NON_ALPHANUMERIC));
        }
        let rb = self.request(Method::GET, &path);
        let v: Value = self
            .json(
                self.send(rb, &format!("remote links of issue {issue}"))
                    .await?,
            )
            .await?;
        match v {
            Value::Array(links) => Ok(links),
            one @ Value::Object(_) => Ok(vec![one]),
            _ => Err(JiraError::Decode(format!(
                "remote links of issue {issue}: neither a list nor a link"
            ))),
        }
    }

    /// `POST /rest/api/3/issue/{id}/remotelink`: creates the link, or updates the issue's
    /// link with the same `globalId`. Jira's answer, `{id, self}`.
    pub async fn upsert_remote_link(&self, issue: &str, link: &Value) -> Result<Value, JiraError> {
        let issue = check_issue_ref(issue)?;
        let rb = self
            .request(
                Method::POST,
                &format!("/rest/api/3/issue/{issue}/remotelink"),
            )
            .json(link);
        self.json(
            self.send(rb, &format!("a remote link on issue {issue}"))
                .await?,
        )
        .await
    }

    /// `DELETE /rest/api/3/issue/{id}/remotelink/{linkId}`.
    pub async fn delete_remote_link(&self, issue: &str, link: &str) -> Result<(), JiraError> {
        let (issue, link) = (check_issue_ref(issue)?, check_link_id(link)?);
        let rb = self.request(
            Method::DELETE,
            &format!("/rest/api/3/issue/{issue}/remotelink/{link}"),
        );
        self.send(rb, &format!("remote link {link} on issue {issue}"))
            .await
            .map(drop)
    }
}

/// A link call's error for the engine: a `403` is a typed [`ProviderError::Forbidden`] (the
/// account may not link issues, or linking is switched off), the rest as any Jira error.
fn link_error(e: JiraError) -> ProviderError {
    match e {
        JiraError::Unauthorized {
            status: 403,
            message,
        } => ProviderError::Forbidden(format!("Jira refused the remote link (403): {message}")),
        other => other.into(),
    }
}

/// Checks a draft before anything is sent: without a global id Jira would add a link on
/// every call instead of updating one.
fn check_draft(draft: &LinkDraft<'_>) -> Result<(), ProviderError> {
    if draft.global_id.trim().is_empty() {
        return Err(ProviderError::BadInput(
            "a link needs a global id (Jira's globalId), or every retry adds one".to_owned(),
        ));
    }
    if draft.global_id.chars().count() > MAX_GLOBAL_ID_CHARS {
        return Err(ProviderError::BadInput(format!(
            "a link's global id is at most {MAX_GLOBAL_ID_CHARS} characters in Jira"
        )));
    }
    Ok(())
}

#[async_trait]
impl LinkProvider for JiraProvider {
    /// One `POST`: Jira upserts by `globalId`, so `previous` is not used.
    async fn upsert_link(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        draft: &LinkDraft<'_>,
        _previous: Option<&str>,
    ) -> Result<RemoteLink, ProviderError> {
        check_draft(draft)?;
        let client = self.client(ctx)?;
        let answer = client
            .upsert_remote_link(&task.external_id, &link_request(draft))
            .await
            .map_err(link_error)?;
        let external_id = id_of(&answer).ok_or_else(|| {
            ProviderError::from(JiraError::Decode(
                "a remote link answer without an id".to_owned(),
            ))
        })?;
        Ok(RemoteLink {
            external_id,
            global_id: Some(draft.global_id.to_owned()),
            title: draft.title.to_owned(),
            url: draft.url.to_owned(),
        })
    }

    async fn list_links(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
    ) -> Result<Vec<RemoteLink>, ProviderError> {
        let client = self.client(ctx)?;
        let links = client
            .remote_links(&task.external_id, None)
            .await
            .map_err(link_error)?;
        Ok(links
            .iter()
            .map(remote_link)
            .collect::<Result<Vec<_>, _>>()?)
    }

    async fn delete_link(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        let client = self.client(ctx)?;
        match client
            .delete_remote_link(&task.external_id, external_id)
            .await
        {
            Ok(()) | Err(JiraError::NotFound { .. }) => Ok(()),
            Err(e) => Err(link_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn draft<'a>(global_id: &'a str, summary: Option<&'a str>) -> LinkDraft<'a> {
        LinkDraft {
            global_id,
            title: "Triage bot for Alice · running",
            url: "https://ordonis.example.com/s/1",
            summary,
        }
    }

    #[test]
    fn the_request_names_the_application_and_the_relationship() {
        let body = link_request(&draft("ordonis:session:1", Some("reading logs")));
        assert_eq!(
            body,
            json!({
                "globalId": "ordonis:session:1",
                "application": {"type": "com.collabhub.ordonis", "name": "Ordonis"},
                "relationship": "agent session",
                "object": {"url": "https://ordonis.example.com/s/1",
                           "title": "Triage bot for Alice · running",
                           "summary": "reading logs"}
            })
        );
        let artifact = link_request(&draft("ordonis:artifact:2", None));
        assert_eq!(artifact["relationship"], "artifact");
        assert!(artifact["object"].get("summary").is_none());
        assert!(
            link_request(&draft("other", None))
                .get("relationship")
                .is_none()
        );
    }

    #[test]
    fn a_link_reads_its_ids_title_and_url() {
        let v = json!({"id": 10000, "self": "x", "globalId": "ordonis:session:1",
            "object": {"url": "https://u", "title": "T"}});
        assert_eq!(
            remote_link(&v).unwrap(),
            RemoteLink {
                external_id: "10000".into(),
                global_id: Some("ordonis:session:1".into()),
                title: "T".into(),
                url: "https://u".into(),
            }
        );
        let bare = remote_link(&json!({"id": "7", "object": {}})).unwrap();
        assert_eq!((bare.global_id, bare.title.as_str()), (None, ""));
        assert!(remote_link(&json!({"object": {}})).is_err());
    }

    #[test]
    fn link_ids_are_numeric_and_drafts_need_a_global_id() {
        assert!(check_link_id("10000").is_ok());
        for bad in ["", "1/2", "../x", "1?x=1", &"1".repeat(21)] {
            assert!(check_link_id(bad).is_err(), "{bad}");
        }
        assert!(check_draft(&draft(" ", None)).is_err());
        let long = "g".repeat(MAX_GLOBAL_ID_CHARS + 1);
        assert!(check_draft(&draft(&long, None)).is_err());
        assert!(check_draft(&draft("ordonis:artifact:1", None)).is_ok());
    }

    #[test]
    fn a_403_is_forbidden_and_a_400_terminal() {
        let e = link_error(JiraError::Unauthorized {
            status: 403,
            message: "no".into(),
        });
        assert!(matches!(e, ProviderError::Forbidden(_)), "{e:?}");
        let e = link_error(JiraError::Unauthorized {
            status: 401,
            message: "no".into(),
        });
        assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
        let e = link_error(JiraError::Rejected {
            status: 400,
            message: "title".into(),
            field_errors: Default::default(),
        });
        assert!(matches!(e, ProviderError::Terminal(_)), "{e:?}");
    }
}
