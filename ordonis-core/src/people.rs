//! Who is who across CollabHub, Jira and Asana: a directory of principals (host user and
//! agent ids) per workspace, the provider accounts the adapters have seen, and the optional
//! [`AccountProvider`] ability that reads an account's name, e-mail and kind.
//!
//! An account belongs to a principal when the principal lists it (mapped by hand) or, failing
//! that, when the account's e-mail is one of exactly one principal's e-mails (matched
//! automatically). An e-mail that two principals list matches neither: the account stays
//! unmatched, with that reason. Jira often hides e-mails; such an account is mapped by hand.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{InvalidInput, ProviderError};
use crate::ids::{IntegrationId, WorkspaceId};
use crate::provider::ProviderContext;

/// Whether a principal or an account is a person or an agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonKind {
    /// A person.
    #[default]
    Human,
    /// An AI agent (an Asana AI teammate, a Jira `app` account, a CollabHub agent).
    Agent,
}

impl PersonKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::Human => "human",
            PersonKind::Agent => "agent",
        }
    }
}

/// One provider account: `{integration_id, account_id}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AccountRef {
    /// The integration it belongs to.
    pub integration_id: IntegrationId,
    /// Jira `accountId`, Asana user (or agent) gid.
    pub account_id: String,
}

/// A principal of a workspace's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// The host's user or agent id (`usr_42`, `agt_7`).
    pub principal: String,
    /// Person or agent.
    pub kind: PersonKind,
    /// Display name.
    pub display_name: String,
    /// E-mail addresses, lowercase (matching is case-insensitive).
    #[serde(default)]
    pub emails: Vec<String>,
    /// Accounts mapped to it by hand.
    #[serde(default)]
    pub accounts: Vec<AccountRef>,
}

impl Person {
    /// Checks a principal before it is stored, and lowercases its e-mails: an id, a name, at
    /// most one account per integration, e-mails that look like e-mails.
    pub fn normalize(&mut self) -> Result<(), InvalidInput> {
        if self.principal.trim().is_empty() || self.principal.len() > 200 {
            return Err(InvalidInput::new(
                "principal",
                "must be 1 to 200 characters",
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err(InvalidInput::new("display_name", "must not be empty"));
        }
        for e in &mut self.emails {
            *e = e.trim().to_lowercase();
            if !e.contains('@') || e.len() > 320 {
                return Err(InvalidInput::new("emails", format!("not an e-mail: {e:?}")));
            }
        }
        self.emails.sort();
        self.emails.dedup();
        self.accounts.sort();
        self.accounts.dedup();
        for pair in self.accounts.windows(2) {
            if pair[0].integration_id == pair[1].integration_id {
                return Err(InvalidInput::new(
                    "accounts",
                    format!(
                        "two accounts of integration {}: a principal has at most one account \
                         per integration",
                        pair[0].integration_id
                    ),
                ));
            }
        }
        if self.accounts.iter().any(|a| a.account_id.trim().is_empty()) {
            return Err(InvalidInput::new("accounts", "an account id is empty"));
        }
        Ok(())
    }

    /// The principal's account in an integration: mapped by hand, or `matched` (the
    /// accounts whose e-mail matched this principal automatically).
    pub fn account_in<'a>(
        &'a self,
        integration: IntegrationId,
        matched: &'a [SeenAccount],
    ) -> Option<&'a str> {
        self.accounts
            .iter()
            .find(|a| a.integration_id == integration)
            .map(|a| a.account_id.as_str())
            .or_else(|| {
                matched
                    .iter()
                    .find(|a| a.integration_id == integration)
                    .map(|a| a.account_id.as_str())
            })
    }
}

/// A provider account an adapter has seen (in a webhook, a fetch, a listing), with what the
/// provider told of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenAccount {
    /// The integration.
    pub integration_id: IntegrationId,
    /// Jira `accountId`, Asana user (or agent) gid.
    pub account_id: String,
    /// Display name, when the provider gave one.
    #[serde(default)]
    pub display_name: Option<String>,
    /// E-mail (lowercase), when the provider shares it.
    #[serde(default)]
    pub email: Option<String>,
    /// Person or agent.
    #[serde(default)]
    pub kind: PersonKind,
}

/// An account as the provider describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteAccount {
    /// Jira `accountId`, Asana user (or agent) gid.
    pub account_id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// E-mail, when the provider shares it (Jira hides it by the user's privacy setting).
    pub email: Option<String>,
    /// Person or agent (Jira `accountType: "app"`, Asana `resource_type: "agent"`).
    pub kind: PersonKind,
}

/// The account abilities of a provider. Reached through
/// [`Provider::accounts`](crate::Provider::accounts); without them, accounts are known only
/// by what webhooks and fetches say of them.
#[async_trait]
pub trait AccountProvider: Send + Sync {
    /// One account (`NotFound` when the provider knows no such account).
    async fn fetch_account(
        &self,
        ctx: &ProviderContext,
        account_id: &str,
    ) -> Result<RemoteAccount, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(accounts: &[(IntegrationId, &str)], emails: &[&str]) -> Person {
        Person {
            workspace_id: WorkspaceId::new("acme").unwrap_or_else(|e| panic!("{e}")),
            principal: "usr_1".into(),
            kind: PersonKind::Human,
            display_name: "Alice".into(),
            emails: emails.iter().map(|e| (*e).to_owned()).collect(),
            accounts: accounts
                .iter()
                .map(|(i, a)| AccountRef {
                    integration_id: *i,
                    account_id: (*a).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn normalize_lowercases_emails_and_refuses_two_accounts_of_one_integration() {
        let (a, b) = (IntegrationId::new(), IntegrationId::new());
        let mut p = person(
            &[(a, "x"), (b, "y")],
            &["Alice@Example.COM", "alice@example.com"],
        );
        assert!(p.normalize().is_ok());
        assert_eq!(p.emails, vec!["alice@example.com"]);
        let mut two = person(&[(a, "x"), (a, "y")], &[]);
        let err = two.normalize().unwrap_err();
        assert!(err.to_string().contains("two accounts"), "{err}");
        let mut bad = person(&[], &["not-an-email"]);
        assert!(bad.normalize().is_err());
        let mut nameless = person(&[], &[]);
        nameless.display_name = " ".into();
        assert!(nameless.normalize().is_err());
    }
}
