//! The task page's edit form: what changed since the page was drawn becomes one patch, made
//! as the signed-in operator.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ordonis_core::{Actor, FieldPatch, FieldValue, Status, Task};
use serde::Deserialize;

use super::layout::{Kept, error_page};
use super::sync_view::{
    assignee_choices, parse_priority, parse_status, priority_value, status_choices, status_value,
};
use super::task_page::snake;
use super::{ui_error, url_seg};
use crate::errors::ApiError;
use crate::routes::json::{date, value_text};
use crate::routes::tasks::{find, parse_date};
use crate::state::AppState;

/// The task edit form. Each field comes with the value the page showed (`was_*`): a field is
/// changed only when the submitted value differs from it, so a title-only edit never sends a
/// status. A post without `was_*` (an older page, a script) compares with the task's current
/// value instead.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EditForm {
    title: Option<String>,
    was_title: Option<String>,
    description: Option<String>,
    was_description: Option<String>,
    status: Option<String>,
    was_status: Option<String>,
    assignee: Option<String>,
    was_assignee: Option<String>,
    priority: Option<String>,
    was_priority: Option<String>,
    due_date: Option<String>,
    was_due_date: Option<String>,
}

impl EditForm {
    /// What the user typed, for the error page.
    fn kept(&self) -> Vec<(String, String)> {
        [
            ("title", &self.title),
            ("description", &self.description),
            ("status", &self.status),
            ("assignee", &self.assignee),
            ("priority", &self.priority),
            ("due_date", &self.due_date),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v.clone()?)))
        .collect()
    }
}

/// Browsers send a textarea's line breaks as CRLF.
pub(super) fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

/// The submitted value of a field when the user changed it: `was` given and different, or
/// (no `was`) different from `current` by `same`.
pub(super) fn changed<'a>(
    value: &'a Option<String>,
    was: &Option<String>,
    current: impl FnOnce(&str) -> bool,
) -> Option<&'a str> {
    let v = value.as_deref()?;
    let unchanged = match was {
        Some(w) => lf(w) == lf(v),
        None => current(v),
    };
    (!unchanged).then_some(v)
}

/// The patch an edit form asks for; `accounts` are those the assignee picker offered (their
/// names are kept with the account id).
pub(crate) fn edit_patch(
    t: &Task,
    form: &EditForm,
    accounts: &[ordonis_core::Assignee],
) -> Result<FieldPatch, ApiError> {
    let f = &t.fields;
    let mut patch = FieldPatch::new();
    if let Some(title) = changed(&form.title, &form.was_title, |v| v == f.title) {
        if title.trim().is_empty() {
            return Err(ApiError::bad_request("the title must not be empty"));
        }
        patch.set(FieldValue::Title(title.to_owned()));
    }
    if let Some(d) = changed(&form.description, &form.was_description, |v| {
        lf(v) == lf(&f.description)
    }) {
        patch.set(FieldValue::Description(lf(d)));
    }
    if let Some(st) = changed(&form.status, &form.was_status, |v| {
        v.trim().is_empty()
            || v == status_value(&f.status)
            || v.eq_ignore_ascii_case(&value_text(&FieldValue::Status(f.status.clone())))
    }) {
        patch.set(FieldValue::Status(parse_status(st)));
    }
    if let Some(a) = changed(&form.assignee, &form.was_assignee, |v| {
        f.assignee
            .as_ref()
            .map_or(v.is_empty(), |a| a.account_id == v)
    }) {
        let a = a.trim();
        patch.set(FieldValue::Assignee(if a.is_empty() {
            None
        } else {
            // The picker offers known accounts: keep the name they are known by.
            Some(
                accounts
                    .iter()
                    .find(|x| x.account_id == a)
                    .cloned()
                    .unwrap_or_else(|| ordonis_core::Assignee {
                        account_id: a.to_owned(),
                        display_name: None,
                        email: None,
                    }),
            )
        }));
    }
    if let Some(p) = changed(&form.priority, &form.was_priority, |v| {
        v == priority_value(f.priority.as_ref())
    }) {
        patch.set(FieldValue::Priority(
            parse_priority(p).map_err(|e| ApiError::bad_request(e.why))?,
        ));
    }
    if let Some(d) = changed(&form.due_date, &form.was_due_date, |v| {
        v.trim() == f.due_date.map(date).unwrap_or_default()
    }) {
        let new = if d.trim().is_empty() {
            None
        } else {
            Some(
                parse_date(d)
                    .ok_or_else(|| ApiError::bad_request("due date must be YYYY-MM-DD"))?,
            )
        };
        patch.set(FieldValue::DueDate(new));
    }
    Ok(patch)
}

/// The accounts the assignee picker offers, from bounded reads: the task's current
/// assignee, the accounts the people directory has seen in the task's integration, and each
/// principal's account there (named after the principal). Nothing grows with the
/// workspace's tasks.
pub(super) async fn picker_accounts(
    s: &AppState,
    t: &Task,
) -> Result<Vec<ordonis_core::Assignee>, ApiError> {
    let mut choices = assignee_choices(t, &[]);
    if let Some(integration) = t.link().map(|l| l.integration_id) {
        for a in s.store.seen_accounts(&t.workspace_id).await? {
            if a.integration_id == integration
                && !choices.iter().any(|c| c.account_id == a.account_id)
            {
                choices.push(ordonis_core::Assignee {
                    account_id: a.account_id,
                    display_name: a.display_name,
                    email: a.email,
                });
            }
        }
    }
    super::sync_view::with_directory(s, t, choices).await
}

/// The statuses the edit form offers: the task's current one first, the ones its ledger
/// shows, and the provider's fixed ones (Asana's two states). The seam for the
/// integration's known statuses as a bounded store query: it is read here, once.
pub(super) fn status_options(t: &Task, entries: &[ordonis_core::LedgerEntry]) -> Vec<Status> {
    status_choices(t, &[], entries)
}

/// `POST /ui/tasks/{id}`.
pub(crate) async fn task_edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let kept = |e: ApiError| {
        error_page(
            &e,
            &Kept {
                back: Some(format!("/ui/tasks/{}", url_seg(&id))),
                fields: form.kept(),
            },
        )
    };
    let t = match find(&s, &id).await {
        Ok(t) => t,
        Err(e) => return ui_error(e),
    };
    let accounts = match picker_accounts(&s, &t).await {
        Ok(a) => a,
        Err(e) => return kept(e),
    };
    let patch = match edit_patch(&t, &form, &accounts) {
        Ok(p) => p,
        Err(e) => return kept(e),
    };
    let mut saved: Vec<String> = Vec::new();
    let mut queued = false;
    if !patch.is_empty() {
        let actor = Actor::human("ui-admin").named("Admin (UI)");
        match s
            .engine
            .change_task(&t.workspace_id, t.id, &actor, &patch)
            .await
        {
            Ok(receipt) => {
                queued = receipt.push_queued;
                if queued {
                    s.wake.notify_waiters();
                }
                for d in &receipt.entries {
                    if let Some(fd) = d.field {
                        saved.push(format!("{}:{}", fd.as_str(), snake(&d.outcome)));
                    }
                }
            }
            Err(e) => return kept(e.into()),
        }
    }
    Redirect::to(&format!(
        "/ui/tasks/{}?saved={}&queued={}",
        t.id,
        url_seg(&saved.join(",")),
        u8::from(queued)
    ))
    .into_response()
}

/// The console's comment form.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct CommentForm {
    body: String,
}

/// `POST /ui/tasks/{id}/comments`: comments as the operator.
pub(crate) async fn task_comment(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<CommentForm>,
) -> Response {
    let t = match find(&s, &id).await {
        Ok(t) => t,
        Err(e) => return ui_error(e),
    };
    let actor = Actor::human("ui-admin").named("Admin (UI)");
    // Browsers send CRLF line breaks; the comment keeps LF.
    let body = lf(&form.body);
    match s
        .engine
        .add_comment(&t.workspace_id, t.id, &actor, &body)
        .await
    {
        Ok(r) => {
            if r.push_queued {
                s.wake.notify_waiters();
            }
            Redirect::to(&format!("/ui/tasks/{}#comment-{}", t.id, r.comment_id)).into_response()
        }
        Err(e) => error_page(
            &e.into(),
            &Kept {
                back: Some(format!("/ui/tasks/{}", url_seg(&id))),
                fields: vec![("body".to_owned(), form.body)],
            },
        ),
    }
}
