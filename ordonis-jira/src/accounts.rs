//! Jira accounts (`GET /rest/api/3/user`), the [`AccountProvider`] of [`JiraProvider`].
//!
//! Jira shows an account's e-mail only when the user's privacy settings let the API account
//! see it (`emailAddress` is then absent), and marks apps' accounts (Connect and OAuth apps,
//! Rovo agents) `accountType: "app"`: those are agents.

use async_trait::async_trait;
use ordonis_core::{AccountProvider, ProviderContext, ProviderError, RemoteAccount};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::Value;

use crate::client::JiraClient;
use crate::error::JiraError;
use crate::normalize::account_kind;
use crate::provider::JiraProvider;

impl JiraClient {
    /// `GET /rest/api/3/user?accountId=…`.
    pub async fn get_user(&self, account_id: &str) -> Result<Value, JiraError> {
        if account_id.trim().is_empty() || account_id.len() > 128 {
            return Err(JiraError::Config(format!(
                "invalid Jira account id {account_id:?}"
            )));
        }
        let enc = utf8_percent_encode(account_id, NON_ALPHANUMERIC);
        let rb = self.request(Method::GET, &format!("/rest/api/3/user?accountId={enc}"));
        self.json(self.send(rb, &format!("account {account_id}")).await?)
            .await
    }
}

/// A Jira `User` as a [`RemoteAccount`].
pub fn remote_account(v: &Value) -> Result<RemoteAccount, JiraError> {
    let account_id = v
        .get("accountId")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| JiraError::Decode("a user without an accountId".to_owned()))?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(RemoteAccount {
        account_id: account_id.to_owned(),
        display_name: text("displayName"),
        email: text("emailAddress"),
        kind: account_kind(v),
    })
}

#[async_trait]
impl AccountProvider for JiraProvider {
    async fn fetch_account(
        &self,
        ctx: &ProviderContext,
        account_id: &str,
    ) -> Result<RemoteAccount, ProviderError> {
        let user = self.client(ctx)?.get_user(account_id).await?;
        Ok(remote_account(&user)?)
    }
}
