//! Links shown on a task, as a provider holds them: the optional [`LinkProvider`] ability an
//! adapter hands out through [`Provider::links`](crate::Provider::links).
//!
//! Agent sessions and their artifacts are projected into the providers as links on the
//! issue or task: one link per agent session (its title names the agent, the person and the
//! session's state; its URL is the host's session page; it is updated on every state change)
//! and one per artifact (a pull request, a document). A link carries our stable id
//! ([`LinkDraft::global_id`]) where the provider keeps one (Jira's remote-link `globalId`),
//! so sending it again updates the link instead of adding a second; where it keeps none
//! (Asana's external attachments cannot be edited either), the adapter finds the link by
//! what it shows and replaces an outdated one. Either way [`LinkProvider::upsert_link`] is
//! idempotent: after an answer that was lost, calling it again leaves exactly one link.

use async_trait::async_trait;

use crate::error::ProviderError;
use crate::model::ObjectKey;
use crate::provider::ProviderContext;

/// A link to show on a task: a Jira remote link, an Asana external attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkDraft<'a> {
    /// Our stable id of the link (`ordonis:session:<uuid>`, `ordonis:artifact:<uuid>`):
    /// Jira's `globalId`, so sending it again updates the link instead of adding a second.
    pub global_id: &'a str,
    /// What the link shows ("Triage bot for Alice Smith · running").
    pub title: &'a str,
    /// Where it leads (the host's session page, the pull request).
    pub url: &'a str,
    /// A line under the title where the provider shows one (Jira `object.summary`).
    pub summary: Option<&'a str>,
}

/// A link as the provider holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteLink {
    /// The provider's id of the link (a Jira remote link's `id`, an Asana attachment's
    /// `gid`): what [`LinkProvider::delete_link`] takes.
    pub external_id: String,
    /// Our stable id, where the provider keeps it (Jira's `globalId`; `None` in Asana, and
    /// for a link made without one).
    pub global_id: Option<String>,
    /// What the link shows.
    pub title: String,
    /// Where it leads (empty when the provider gives no URL for it).
    pub url: String,
}

/// The link abilities of a provider. Reached through
/// [`Provider::links`](crate::Provider::links); a provider without them shows no agent
/// sessions or artifacts on its tasks.
#[async_trait]
pub trait LinkProvider: Send + Sync {
    /// Creates the link, or updates the task's link with the same `global_id`; idempotent:
    /// after a lost answer, calling it again leaves exactly one link. `previous` is the
    /// external id the link had, for a provider that cannot update a link in place (it
    /// replaces it).
    async fn upsert_link(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        draft: &LinkDraft<'_>,
        previous: Option<&str>,
    ) -> Result<RemoteLink, ProviderError>;

    /// The task's links (all of them, ours and others').
    async fn list_links(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
    ) -> Result<Vec<RemoteLink>, ProviderError>;

    /// Deletes a link (one already gone is not an error).
    async fn delete_link(
        &self,
        ctx: &ProviderContext,
        task: &ObjectKey,
        external_id: &str,
    ) -> Result<(), ProviderError>;
}
