//! Asana accounts for the people directory: the [`AccountProvider`] of [`AsanaProvider`].
//!
//! An account id is a user's gid or an AI teammate's (an agent's). A user is
//! `GET /users/{gid}?opt_fields=name,email` (a [`PersonKind::Human`] with the e-mail Asana
//! shares). When Asana says the gid is no user (`404`, or `400` for a gid it will not take as
//! one), the agent is asked for: `GET /agents/{gid}` with `Asana-Enable:
//! ai_teammate_actors` (Asana's early access for agents), a [`PersonKind::Agent`] with its
//! name and no e-mail. When that is refused too (`404`, or `400` in a workspace without the
//! early access) the account is [`ProviderError::NotFound`]. A `403` is
//! [`ProviderError::Forbidden`].

use async_trait::async_trait;
use ordonis_core::{AccountProvider, PersonKind, ProviderContext, ProviderError, RemoteAccount};
use reqwest::Method;
use serde_json::Value;

use crate::client::{AsanaClient, check_gid};
use crate::create::AI_TEAMMATES;
use crate::error::AsanaError;
use crate::provider::AsanaProvider;

impl AsanaClient {
    /// `GET /users/{gid}?opt_fields=name,email` (`me`: the token's user).
    pub async fn get_user(&self, gid: &str) -> Result<Value, AsanaError> {
        let gid = check_gid(gid)?;
        let resp = self
            .call(
                Method::GET,
                &format!("/users/{gid}"),
                &[("opt_fields", "name,email")],
                None,
                &format!("user {gid}"),
            )
            .await?;
        self.data(resp).await
    }

    /// `GET /users/me`: the token's user.
    pub async fn me(&self) -> Result<Value, AsanaError> {
        self.get_user("me").await
    }

    /// `GET /agents/{gid}` with `Asana-Enable: ai_teammate_actors`.
    pub async fn get_agent(&self, gid: &str) -> Result<Value, AsanaError> {
        let gid = check_gid(gid)?;
        let resp = self
            .call_with(
                Method::GET,
                &format!("/agents/{gid}"),
                &[],
                None,
                &[("Asana-Enable", AI_TEAMMATES)],
                &format!("agent {gid}"),
            )
            .await?;
        self.data(resp).await
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether Asana's answer says "no such user (or agent)": a `404`, or a `400` for a gid it
/// does not take as one.
fn not_this_kind(e: &AsanaError) -> bool {
    matches!(
        e,
        AsanaError::NotFound { .. } | AsanaError::Rejected { status: 400, .. }
    )
}

fn account_error(e: AsanaError) -> ProviderError {
    match e {
        AsanaError::Forbidden { what, message } => {
            ProviderError::Forbidden(format!("Asana refused to show {what} (403): {message}"))
        }
        other => other.into(),
    }
}

#[async_trait]
impl AccountProvider for AsanaProvider {
    async fn fetch_account(
        &self,
        ctx: &ProviderContext,
        account_id: &str,
    ) -> Result<RemoteAccount, ProviderError> {
        let client = self.client(ctx)?;
        let gid = check_gid(account_id)?;
        let user_refusal = match client.get_user(gid).await {
            Ok(u) => {
                return Ok(RemoteAccount {
                    account_id: gid.to_owned(),
                    display_name: text(&u, "name"),
                    email: text(&u, "email"),
                    kind: if text(&u, "resource_type").as_deref() == Some("agent") {
                        PersonKind::Agent
                    } else {
                        PersonKind::Human
                    },
                });
            }
            Err(e) if not_this_kind(&e) => e,
            Err(e) => return Err(account_error(e)),
        };
        match client.get_agent(gid).await {
            Ok(a) => Ok(RemoteAccount {
                account_id: gid.to_owned(),
                display_name: text(&a, "name"),
                email: None,
                kind: PersonKind::Agent,
            }),
            Err(e) if not_this_kind(&e) => Err(ProviderError::NotFound(format!(
                "Asana knows no user or agent {gid} ({user_refusal}; {e})"
            ))),
            Err(e) => Err(account_error(e)),
        }
    }
}
