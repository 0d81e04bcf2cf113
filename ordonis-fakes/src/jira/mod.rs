//! A fake Jira Cloud site over real HTTP (axum on `127.0.0.1:0`), for end-to-end tests and
//! the reference server's demo mode.
//!
//! It serves the REST v3 operations `ordonis-jira`'s client uses — `GET`/`PUT
//! /rest/api/3/issue/{id}`, `GET …/editmeta`, `PUT …/assignee`, `GET`/`POST …/transitions`,
//! `GET /rest/api/3/priority/search`, `POST /rest/api/3/workflows/preview` — over in-memory
//! issues with a three-status workflow (To Do → In Progress → Done, every move allowed) or one
//! set with [`FakeJira::set_workflow`] ([`FakeWorkflow`]: directed and global transitions,
//! required screen fields, failing conditions), `POST /rest/api/3/search/jql` with a JQL
//! subset, a lagging index and `reconcileIssues` ([`search_page`],
//! [`FakeJira::set_index_lag`]), and the dynamic webhook API (`/rest/api/3/webhook`, 30-day
//! expiry on a fake clock, [`FakeJira::advance_clock`]), and sends signed admin webhooks
//! (`X-Hub-Signature: sha256=<hex>`, HMAC-SHA256 of the body, plus
//! `X-Atlassian-Webhook-Identifier`) to a target URL.
//!
//! As strict as Jira Cloud where sync depends on it:
//! - descriptions are stored as ADF and served so on v3; a `PUT` whose description is not an
//!   ADF document is a 400; webhooks carry the issue in the REST v2 shape, with the
//!   description rendered as wiki markup ([`adf_to_wiki`]); a wiki-markup description
//!   given to [`FakeJira::insert_issue`] or [`FakeJira::update_issue`] is stored as ADF;
//! - [`FakeJira::set_edit_screen`] limits the fields an edit may set: others make the whole
//!   `PUT` a 400 with `errors: {field: reason}`, as Jira answers;
//! - priorities are the site's five defaults, set by `id` (or `name`).
//!
//! Deliveries:
//!
//! - [`FakeJira::deliver`] sends a body as is (the real fixture payloads), after taking the
//!   issue it carries into the site;
//! - [`FakeJira::update_issue`] changes an issue as a person in Jira would and sends the
//!   `jira:issue_updated` webhook with its changelog;
//! - a change made through the REST API (a push) is echoed back as a webhook, as Jira does,
//!   unless [`FakeJira::set_echo`] turned that off;
//! - comments: a comment made, edited or deleted through REST v3 is echoed the same way as
//!   `comment_created`, `comment_updated` or `comment_deleted` (also when the post's answer
//!   was lost, [`FakeJira::lose_next_comment_answer`]); a person's comments
//!   ([`FakeJira::comment_as`], [`FakeJira::edit_comment_as`],
//!   [`FakeJira::delete_comment_as`]) deliver theirs before returning, and
//!   [`FakeJira::add_comment_as`] sends none (a dropped delivery).
//!
//! Remote links (`GET`/`POST /rest/api/3/issue/{id}/remotelink`, `DELETE
//! …/remotelink/{linkId}`) are kept per issue and upserted by `globalId` as Jira does (`201`
//! when made, `200` when a link with that global id was updated); a link without
//! `object.url` or `object.title` is a 400 in Jira's error shape; [`FakeJira::remote_links`]
//! shows them and [`FakeJira::lose_next_link_answer`] makes a post lose its answer. Jira
//! sends no webhook for them.
//!
//! Creating issues (`POST /rest/api/3/issue`, the create metadata, issue properties) in
//! projects added with [`FakeJira::add_project`], strict as Jira (a denied project is a 403,
//! a required field missing a 400 naming it, a sub-task needs its parent), with
//! [`FakeJira::lose_next_create_answer`]; users (`GET /rest/api/3/user`, [`FakeJira::add_user`]:
//! `accountType` `atlassian` or `app`, `emailAddress` absent when hidden), shown the same way
//! in the `user` of webhooks. See the `create` module.
//!
//! Comment webhooks are shaped as Jira Cloud's real ones (`fixtures/jira/
//! cloud_comment_created_zulip.json`, `cloud_comment_updated_mobitel.json`):
//!
//! ```json
//! {"timestamp": 1765000000000, "webhookEvent": "comment_created",
//!  "comment": {"self": "<base>/rest/api/2/issue/10001/comment/10000", "id": "10000",
//!              "author": {"self": "…", "accountId": "…", "displayName": "…", "active": true},
//!              "body": "Fixed in *main*.", "updateAuthor": {…},
//!              "created": "2026-12-07T10:00:00.000+0000",
//!              "updated": "2026-12-07T10:00:00.000+0000", "jsdPublic": true},
//!  "issue": {"id": "10001", "self": "<base>/rest/api/2/issue/10001", "key": "KAN-1",
//!            "fields": {"summary": "…", "issuetype": …, "project": …, "assignee": …,
//!                       "priority": …, "status": …}}}
//! ```
//!
//! The body is REST v2 wiki markup (the stored ADF rendered by [`adf_to_wiki`]); there is no
//! `user`, no `changelog` and no `issue_event_type_name`, and no comment `properties` (Jira
//! does not send them: a receiver reads the comment through REST v3 to see its marker).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let jira = ordonis_fakes::jira::FakeJira::start().await?;
//! jira.set_webhook("http://127.0.0.1:8080/integrations/jira/…/webhook", "secret");
//! # Ok(()) }
//! ```
//!
//! Modules: `site` is the shared state (issues, settings, faults, the search index's history,
//! dynamic webhooks) and imports only the pure `workflow` and `wiki`; the handlers import
//! it — `issues` (issue reads and writes), `transitions` (the workflow over HTTP), `search`
//! (all of `POST /rest/api/3/search/jql`: the JQL subset, paging, the lagging index),
//! `webhooks` (the dynamic webhook API), `comments`, `links` (remote links) and `create`
//! (issue creation, create metadata, issue properties, users) — and `deliver` sends what the site emits; `fake`
//! is the [`FakeJira`] handle and the router over them all.

mod comments;
mod connect_jwt;
mod create;
mod deliver;
mod fake;
mod issues;
mod limits;
mod links;
mod search;
mod site;
mod transitions;
mod webhooks;
mod wiki;
mod workflow;

pub use comments::{MAX_COMMENT_CHARS, MAX_COMMENTS_PER_ISSUE};
pub use fake::FakeJira;
pub use limits::{BURST_REASON, QUOTA_REASON};
pub use links::MAX_GLOBAL_ID_CHARS;
pub use search::{
    Cond, DEFAULT_MAX_RESULTS, Jql, MAX_RECONCILE_ISSUES, MAX_RESULTS_IDS_ONLY,
    MAX_RESULTS_WITH_FIELDS, MAX_SEARCH_PROPERTIES, parse_jql, parse_jql_date, reconcile_ids,
    search_page,
};
pub use site::{API_ACCOUNT, PRIORITIES, jira_time, parse_jira_time, sign};
pub use webhooks::DYNAMIC_WEBHOOK_LIFETIME_MS;
pub use wiki::{adf_to_wiki, wiki_to_adf};
pub use workflow::{FakeTransition, FakeWorkflow, RESOLUTIONS, STATUSES, WONT_DO};
