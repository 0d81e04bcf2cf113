//! The people page: who is who across CollabHub and the providers. Each principal with its
//! accounts (mapped by hand, or matched by e-mail), the accounts that match no one with the
//! reason, and a form that maps such an account to a principal (recorded as the principal's
//! entry in the directory, as `PUT /api/workspaces/{ws}/people/{principal}` would).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use ordonis_core::{AccountRef, WorkspaceId};
use serde::Deserialize;

use super::layout::page as layout_page;
use super::{ui_error, url_seg};
use crate::errors::ApiError;
use crate::state::AppState;

/// `GET /ui/workspaces/{ws}/people`.
pub(crate) async fn page(State(s): State<AppState>, Path(ws): Path<String>) -> Response {
    let ws = match WorkspaceId::new(ws) {
        Ok(w) => w,
        Err(e) => return ui_error(e.into()),
    };
    let view = match s.engine.people(&ws).await {
        Ok(v) => v,
        Err(e) => return ui_error(e.into()),
    };
    let integrations = s.store.integrations(&ws).await.unwrap_or_default();
    let provider_of = |id: ordonis_core::IntegrationId| {
        integrations
            .iter()
            .find(|i| i.id == id)
            .map_or_else(|| id.to_string(), |i| i.provider.to_string())
    };
    let action = format!("/ui/workspaces/{}/people", url_seg(ws.as_str()));
    let body = html! {
        p.muted { "Each principal is a CollabHub user or agent. Its provider accounts are mapped by hand, or matched automatically when the provider shares an e-mail only that principal has. A mapped account's changes are attributed to the principal in the ledger, and assigning the principal assigns that account." }
        h2 { "People" }
        div.scroll {
            table #people {
                thead { tr { th { "Name" } th { "Kind" } th { "Principal" } th { "E-mails" } th { "Accounts" } } }
                tbody {
                    @for p in &view.people {
                        tr.person data-principal=(p.principal) {
                            td { strong { (p.display_name) } }
                            td { (p.kind.as_str()) }
                            td.muted { code { (p.principal) } }
                            td { (p.emails.join(", ")) }
                            td {
                                @for a in &p.accounts {
                                    div.account data-account=(a.account_id) {
                                        (a.display_name.clone().unwrap_or_else(|| a.account_id.clone()))
                                        " · " (provider_of(a.integration_id))
                                        @if let Some(e) = &a.email { " · " (e) }
                                        span.muted { " (" (if a.matched_by == "hand" { "mapped by hand" } else { "matched by e-mail" }) ")" }
                                    }
                                }
                                @if p.accounts.is_empty() { span.muted { "none yet" } }
                            }
                        }
                    }
                }
            }
        }
        @if view.people.is_empty() { p.muted #no-people { "No principals yet: add them with PUT /api/workspaces/{ws}/people/{principal}." } }
        h2 { "Accounts matched to no one" }
        div.scroll {
            table #unmatched {
                thead { tr { th { "Account" } th { "Provider" } th { "E-mail" } th { "Kind" } th { "Why" } th { "Map to" } } }
                tbody {
                    @for a in &view.unmatched {
                        tr.unmatched data-account=(a.account_id) {
                            td { (a.display_name.clone().unwrap_or_else(|| a.account_id.clone())) br; span.muted { code { (a.account_id) } } }
                            td { (provider_of(a.integration_id)) }
                            td { (a.email.clone().unwrap_or_default()) }
                            td { (a.kind.as_str()) }
                            td.muted { (a.reason) }
                            td {
                                @if !view.people.is_empty() {
                                    form.inline method="post" action=(action) {
                                        input type="hidden" name="integration_id" value=(a.integration_id.to_string());
                                        input type="hidden" name="account_id" value=(a.account_id);
                                        select name="principal" aria-label="Principal" {
                                            @for p in &view.people {
                                                option value=(p.principal) { (p.display_name) }
                                            }
                                        }
                                        " "
                                        button type="submit" { "Map" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if view.unmatched.is_empty() { p.ok #all-matched { "Every account seen belongs to a principal." } }
    };
    layout_page(
        &format!("People in {}", ws.as_str()),
        Some(ws.as_str()),
        body,
    )
    .into_response()
}

/// The map form.
#[derive(Debug, Deserialize)]
pub(crate) struct MapForm {
    integration_id: String,
    account_id: String,
    principal: String,
}

/// `POST /ui/workspaces/{ws}/people`: maps an account to a principal by hand.
pub(crate) async fn map(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    Form(form): Form<MapForm>,
) -> Response {
    match map_account(&s, &ws, form).await {
        Ok(ws) => {
            Redirect::to(&format!("/ui/workspaces/{}/people", url_seg(ws.as_str()))).into_response()
        }
        Err(e) => ui_error(e),
    }
}

async fn map_account(s: &AppState, ws: &str, form: MapForm) -> Result<WorkspaceId, ApiError> {
    let ws = WorkspaceId::new(ws.to_owned())?;
    let mut person = s
        .store
        .person(&ws, &form.principal)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("principal {}", form.principal)))?;
    let integration_id = form
        .integration_id
        .parse()
        .map_err(|_| ApiError::bad_request("integration_id is not a UUID"))?;
    // One account per integration: the new one replaces the principal's earlier one.
    person
        .accounts
        .retain(|a| a.integration_id != integration_id);
    person.accounts.push(AccountRef {
        integration_id,
        account_id: form.account_id,
    });
    s.engine.put_person(person).await?;
    Ok(ws)
}
