//! What the fake Jira sends: webhook bodies (the issue in the REST v2 shape, a changelog;
//! comment events with the comment and a reduced issue), signed deliveries to the admin
//! webhook and to live dynamic webhooks, captured webhooks, and the echo of a change made
//! through the REST API.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::site::{API_ACCOUNT, Site, lock, now_ms, sign};
use super::webhooks::dynamic_target;
use super::wiki;

impl Site {
    pub(super) fn webhook_body(
        &self,
        id_or_key: &str,
        items: Vec<Value>,
        account: &str,
    ) -> Option<Vec<u8>> {
        let (id, mut issue) = self.find(id_or_key)?;
        // Webhooks carry the REST v2 shape: the description as wiki markup.
        if let Some(f) = issue.get_mut("fields").and_then(Value::as_object_mut)
            && let Some(d) = f.get("description")
        {
            let wiki = wiki::adf_to_wiki(d);
            f.insert("description".into(), wiki);
        }
        if let Some(o) = issue.as_object_mut() {
            o.insert(
                "self".into(),
                Value::String(format!("{}/rest/api/2/issue/{id}", self.base_url)),
            );
        }
        let body = json!({
            "timestamp": now_ms(),
            "webhookEvent": "jira:issue_updated",
            "issue_event_type_name": "issue_generic",
            "user": self.user_json(account),
            "issue": issue,
            "changelog": {"id": uuid::Uuid::now_v7().simple().to_string(), "items": items},
        });
        Some(body.to_string().into_bytes())
    }

    /// Sends a webhook to the admin webhook (set_webhook) and, when a live dynamic webhook
    /// asks for the event and its `jqlFilter` matches the issue, to the dynamic URL. Returns
    /// the first receiver's status; `Ok(0)` when deliveries are switched off (the delivery is
    /// counted as dropped).
    pub(super) async fn send(&self, body: Vec<u8>) -> Result<u16, String> {
        if !self.sync.delivery_allowed() {
            return Ok(0);
        }
        if let Some(c) = lock(&self.captured).as_mut() {
            self.deliveries.fetch_add(1, Ordering::SeqCst);
            c.push(body);
            return Ok(200);
        }
        let admin = lock(&self.hook).clone();
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let event = parsed["webhookEvent"].as_str().unwrap_or_default();
        let dynamic = dynamic_target(&self.sync, event, &parsed["issue"])
            .filter(|u| admin.as_ref().is_none_or(|a| &a.url != u));
        // An admin webhook is signed with its secret (`X-Hub-Signature`); a dynamic one, an
        // app's, with the JWT Connect apps receive (`Authorization: JWT …`).
        let app = lock(&self.app).clone();
        let now_s = now_ms() / 1000;
        let targets: Vec<(String, (&str, String))> = admin
            .map(|h| {
                let sig = sign(&h.secret, &body);
                (h.url, ("x-hub-signature", sig))
            })
            .into_iter()
            .chain(dynamic.map(|url| {
                let jwt = app
                    .as_ref()
                    .and_then(|(iss, secret)| {
                        super::connect_jwt::authorization(&url, iss, secret, now_s)
                    })
                    .unwrap_or_default();
                (url, ("authorization", jwt))
            }))
            .collect();
        if targets.is_empty() {
            return Err("no webhook target set".to_owned());
        }
        let mut first = None;
        for (url, (auth_header, auth)) in targets {
            self.deliveries.fetch_add(1, Ordering::SeqCst);
            let mut req = self
                .http
                .post(&url)
                .header("content-type", "application/json");
            if !auth.is_empty() {
                req = req.header(auth_header, auth);
            }
            let resp = req
                .header(
                    "x-atlassian-webhook-identifier",
                    uuid::Uuid::now_v7().to_string(),
                )
                .header("x-atlassian-webhook-flow", "Primary")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            first.get_or_insert(resp.status().as_u16());
        }
        Ok(first.unwrap_or(0))
    }

    /// The body of a comment webhook (`comment_created`, `comment_updated`,
    /// `comment_deleted`) about `comment` (as stored) on issue `issue_id`, shaped as Jira
    /// Cloud sends it. What the real deliveries show (`fixtures/jira/`
    /// `cloud_comment_created_zulip.json`, `cloud_comment_updated_mobitel.json`):
    ///
    /// - top-level keys `timestamp` (epoch ms), `webhookEvent`, `comment` and `issue` only:
    ///   **no `user`** (the actor is the comment's `author` or `updateAuthor`), **no
    ///   `changelog`** and no `issue_event_type_name`;
    /// - `comment` in the REST **v2** shape: `self` (`…/rest/api/2/issue/{id}/comment/{cid}`),
    ///   `id`, `author`, `body` as a **wiki-markup string** (here the stored ADF rendered
    ///   with [`wiki::adf_to_wiki`]), `updateAuthor`, `created`, `updated`, `jsdPublic`. No
    ///   `properties`: Jira does not send them, so a receiver that wants a comment's marker
    ///   property reads the comment through REST v3 (`expand=properties`);
    /// - `issue` reduced to `id`, `self`, `key` and `fields` {`summary`, `issuetype`,
    ///   `project`, `assignee`, `priority`, `status`} (a field the issue lacks is `null`).
    ///
    /// (jira.js types the comment's `body` as ADF and lists `properties`; the captured Cloud
    /// deliveries have neither, and the fake follows them.) Jira also raises
    /// `jira:issue_updated` (`issue_commented`) for a new comment; the fake does not send
    /// that one. `None` when there is no such issue.
    pub(super) fn comment_body(
        &self,
        issue_id: &str,
        comment: &Value,
        event: &str,
    ) -> Option<Vec<u8>> {
        let (id, issue) = self.find(issue_id)?;
        let user = |u: &Value| {
            let account = u.get("accountId").and_then(Value::as_str).unwrap_or("");
            let known = self.user_json(account);
            let mut v = json!({
                "self": format!("{}/rest/api/2/user?accountId={account}", self.base_url),
                "accountId": account,
                "displayName": u.get("displayName").cloned().unwrap_or_else(|| json!(account)),
                "active": true,
                "accountType": known["accountType"],
            });
            if let Some(email) = known.get("emailAddress") {
                v["emailAddress"] = email.clone();
            }
            v
        };
        let field = |k: &str| comment.get(k).cloned().unwrap_or(Value::Null);
        let cid = comment.get("id").and_then(Value::as_str).unwrap_or("");
        let fields: serde_json::Map<String, Value> = [
            "summary",
            "issuetype",
            "project",
            "assignee",
            "priority",
            "status",
        ]
        .iter()
        .map(|k| ((*k).to_owned(), issue["fields"][*k].clone()))
        .collect();
        let body = json!({
            "timestamp": now_ms(),
            "webhookEvent": event,
            "comment": {
                "self": format!("{}/rest/api/2/issue/{id}/comment/{cid}", self.base_url),
                "id": cid,
                "author": user(&field("author")),
                "body": wiki::adf_to_wiki(&field("body")),
                "updateAuthor": user(&field("updateAuthor")),
                "created": field("created"),
                "updated": field("updated"),
                "jsdPublic": comment.get("jsdPublic").cloned().unwrap_or(Value::Bool(true)),
            },
            "issue": {
                "id": id,
                "self": format!("{}/rest/api/2/issue/{id}", self.base_url),
                "key": issue.get("key").cloned().unwrap_or(Value::Null),
                "fields": fields,
            },
        });
        Some(body.to_string().into_bytes())
    }

    /// After a comment was made, edited or deleted through the REST API: echo its
    /// `event` webhook (see [`Site::comment_body`]) in the background, as Jira does; gated
    /// like [`Site::echo`] by the echo switch, and by the delivery switch in [`Site::send`].
    pub(super) fn echo_comment(self: &Arc<Self>, issue_id: &str, comment: &Value, event: &str) {
        self.touch(issue_id);
        if !self.echo.load(Ordering::SeqCst) {
            return;
        }
        let Some(body) = self.comment_body(issue_id, comment, event) else {
            return;
        };
        let me = self.clone();
        self.echoes.spawn(async move {
            if let Err(e) = me.send(body).await {
                echo_failed(&e);
            }
        });
    }

    /// The `jira:issue_created` webhook of an issue in the site (REST v2 shape, the
    /// description as wiki markup, a changelog of the initial values, as Jira sends it),
    /// made by `account`. `None` when there is no such issue.
    pub(super) fn created_body(&self, id_or_key: &str, account: &str) -> Option<Vec<u8>> {
        let (_, issue) = self.find(id_or_key)?;
        let items: Vec<Value> = issue
            .get("fields")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(k, v)| {
                !v.is_null()
                    && ["summary", "description", "status", "priority", "assignee"]
                        .contains(&k.as_str())
            })
            .map(|(k, v)| {
                let to = if k == "description" {
                    wiki::adf_to_wiki(v).as_str().map(str::to_owned)
                } else {
                    super::site::text_of(v)
                };
                json!({"field": k, "fieldtype": "jira", "fieldId": k, "from": Value::Null,
                       "fromString": Value::Null, "to": Value::Null, "toString": to})
            })
            .collect();
        let mut body: Value =
            serde_json::from_slice(&self.webhook_body(id_or_key, items, account)?).ok()?;
        body["webhookEvent"] = Value::String("jira:issue_created".to_owned());
        body["issue_event_type_name"] = Value::String("issue_created".to_owned());
        Some(body.to_string().into_bytes())
    }

    /// After an issue was created through the REST API: echo `jira:issue_created` in the
    /// background, gated like [`Site::echo`].
    pub(super) fn echo_created(self: &Arc<Self>, id: &str) {
        if !self.echo.load(Ordering::SeqCst) {
            return;
        }
        let Some(body) = self.created_body(id, API_ACCOUNT) else {
            return;
        };
        let me = self.clone();
        self.echoes.spawn(async move {
            if let Err(e) = me.send(body).await {
                echo_failed(&e);
            }
        });
    }

    /// After a REST change: echo it as a webhook, as Jira does (in the background).
    pub(super) fn echo(self: &Arc<Self>, id: &str, items: Vec<Value>) {
        if items.is_empty() || !self.echo.load(Ordering::SeqCst) {
            return;
        }
        let Some(body) = self.webhook_body(id, items, API_ACCOUNT) else {
            return;
        };
        let me = self.clone();
        self.echoes.spawn(async move {
            if let Err(e) = me.send(body).await {
                echo_failed(&e);
            }
        });
    }
}

/// The fakes have no logger; a lost echo is worth a line on stderr in a test run.
fn echo_failed(e: &str) {
    eprintln!("fake jira: webhook echo failed: {e}");
}

/// Likewise for a person's change whose helper returns no delivery status.
pub(super) fn delivery_failed(e: &str) {
    eprintln!("fake jira: webhook delivery failed: {e}");
}
