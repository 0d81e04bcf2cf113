//! `GET /api/workspaces/{ws}/people`, `PUT /api/workspaces/{ws}/people/{principal}`: the
//! workspace's directory of principals and the provider accounts behind them.

use axum::Json;
use axum::extract::{Path, State};
use ordonis_core::{AccountRef, Person, PersonKind, WorkspaceId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::{ApiError, ApiJson};
use crate::state::AppState;

/// The directory: principals with their accounts, and the accounts matched to no one.
pub async fn list(
    State(s): State<AppState>,
    Path(ws): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ws = WorkspaceId::new(ws)?;
    let view = s.engine.people(&ws).await?;
    Ok(Json(json!(view)))
}

/// One account of a principal, as `PUT` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    integration_id: String,
    account_id: String,
}

/// The `PUT` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonIn {
    #[serde(default)]
    kind: PersonKind,
    display_name: String,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    accounts: Vec<AccountIn>,
}

/// Stores a principal (insert or replace); 200 with it. 400 for two accounts of one
/// integration, 409 for an account another principal has.
pub async fn put(
    State(s): State<AppState>,
    Path((ws, principal)): Path<(String, String)>,
    ApiJson(body): ApiJson<PersonIn>,
) -> Result<Json<Value>, ApiError> {
    let ws = WorkspaceId::new(ws)?;
    let mut accounts = Vec::with_capacity(body.accounts.len());
    for a in body.accounts {
        accounts.push(AccountRef {
            integration_id: a.integration_id.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "accounts: integration_id {:?} is not a UUID",
                    a.integration_id
                ))
            })?,
            account_id: a.account_id,
        });
    }
    let person = s
        .engine
        .put_person(Person {
            workspace_id: ws,
            principal,
            kind: body.kind,
            display_name: body.display_name,
            emails: body.emails,
            accounts,
        })
        .await?;
    Ok(Json(json!(person)))
}
