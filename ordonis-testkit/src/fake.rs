//! `FakeProvider`: a scripted provider with in-memory remote state. Remote edits and our own
//! pushes emit the signed webhooks a real provider would (so our pushes echo back), and faults
//! can be injected: API errors (429, 5xx, timeouts) and delivery faults (duplicates, drops,
//! reordering, delays).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use ordonis_core::provider_http::{hmac_sha256_hex, hmac_sha256_matches};
use ordonis_core::{
    Capabilities, ChangeHint, FieldPatch, FieldValue, HintKind, ListMode, ListPage, ListRequest,
    ObjectKey, Provider, ProviderContext, ProviderError, ProviderKind, PushOutcome, RemoteActor,
    RemoteTask, RepairProvider, WebhookAuth, WebhookRequest,
};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Signature header of fake webhooks: lowercase hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "x-fake-signature";
/// Handshake header (like Asana's `X-Hook-Secret`).
pub const HANDSHAKE_HEADER: &str = "x-fake-hook-secret";
/// The provider-state flag of an integration that accepts a handshake (as Asana's adapter
/// keeps it).
/// The account the fake attributes our pushes to.
pub const BOT_ACCOUNT: &str = "ordonis-bot";

/// A webhook delivery: headers and body, ready for `Engine::ingest`.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Headers (signed).
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// The fake's webhook body.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Body {
    delivery_id: String,
    event: String,
    object: String,
    time_ms: i64,
    actor: String,
    fields: FieldPatch,
}

/// The fake's listing cursor.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FakeCursor {
    since_ms: i64,
    /// The run's start (the next run's `since_ms`), while a run pages.
    run_start_ms: Option<i64>,
    /// The last `(modified, id)` listed, while a run pages.
    after: Option<(i64, String)>,
}

impl FakeCursor {
    fn at(since_ms: i64) -> Self {
        Self {
            since_ms,
            run_start_ms: None,
            after: None,
        }
    }
}

#[derive(Clone, Debug)]
struct RemoteObject {
    fields: FieldPatch,
    modified_ms: i64,
}

/// API faults to inject into the next calls (each is used once, in order).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Errors the next fetch/push calls return instead of working.
    pub next_calls: VecDeque<ProviderError>,
    /// Fields the provider refuses on push, with the reason.
    pub refuse: BTreeMap<ordonis_core::Field, String>,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, RemoteObject>,
    clock_ms: i64,
    seq: u64,
    outgoing: Vec<Delivery>,
    faults: Faults,
    pushes: Vec<(String, FieldPatch)>,
    secret: String,
}

/// How a [`FakeProvider`] behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FakeOptions {
    /// Its webhooks carry the object's state (as Jira's do); otherwise the engine must fetch
    /// it (as for Asana's compact events).
    pub snapshots: bool,
    /// Its webhooks answer an `X-Hook-Secret` handshake before the first delivery (as
    /// Asana's do).
    pub handshake: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            snapshots: true,
            handshake: false,
        }
    }
}

/// A scripted provider. Its webhooks are signed with the secret given at construction.
#[derive(Debug)]
pub struct FakeProvider {
    kind: ProviderKind,
    options: FakeOptions,
    state: Mutex<State>,
}

impl FakeProvider {
    /// A fake named `fake` whose webhooks carry snapshots, signed with `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self::with_options(secret, FakeOptions::default())
    }

    /// A fake with given options (without snapshots, the engine must fetch).
    pub fn with_options(secret: impl Into<String>, options: FakeOptions) -> Self {
        Self {
            kind: ProviderKind::new("fake"),
            options,
            state: Mutex::new(State {
                clock_ms: 1_700_000_000_000,
                secret: secret.into(),
                ..State::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Signs a body as the fake would.
    pub fn sign(secret: &str, body: &[u8]) -> String {
        hmac_sha256_hex(secret, body)
    }

    fn emit(st: &mut State, event: &str, object: &str, actor: &str) {
        st.seq += 1;
        let fields = st
            .objects
            .get(object)
            .map(|o| o.fields.clone())
            .unwrap_or_default();
        let body = Body {
            delivery_id: format!("fake-dlv-{}", st.seq),
            event: event.to_owned(),
            object: object.to_owned(),
            time_ms: st.clock_ms,
            actor: actor.to_owned(),
            fields,
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let mut headers = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&Self::sign(&st.secret, &body)) {
            headers.insert(SIGNATURE_HEADER, v);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        st.outgoing.push(Delivery { headers, body });
    }

    fn write(st: &mut State, object: &str, values: impl IntoIterator<Item = FieldValue>) {
        st.clock_ms += 1;
        let now = st.clock_ms;
        let obj = st
            .objects
            .entry(object.to_owned())
            .or_insert_with(|| RemoteObject {
                fields: FieldPatch::new(),
                modified_ms: now,
            });
        for v in values {
            obj.fields.set(v);
        }
        obj.modified_ms = now;
    }

    /// Creates (or overwrites) a remote object as a person would; emits its webhook.
    pub fn remote_create(&self, object: &str, fields: &FieldPatch, actor: &str) {
        let mut st = self.lock();
        Self::write(&mut st, object, fields.values().cloned());
        Self::emit(&mut st, "created", object, actor);
    }

    /// Changes a field remotely as a person would; emits its webhook.
    pub fn remote_edit(&self, object: &str, value: FieldValue, actor: &str) {
        let mut st = self.lock();
        Self::write(&mut st, object, [value]);
        Self::emit(&mut st, "changed", object, actor);
    }

    /// Changes a field remotely and sends no webhook (a delivery the provider lost): only a
    /// listing finds it.
    pub fn remote_edit_silently(&self, object: &str, value: FieldValue) {
        let mut st = self.lock();
        Self::write(&mut st, object, [value]);
    }

    /// Deletes a remote object; emits its webhook.
    pub fn remote_delete(&self, object: &str, actor: &str) {
        let mut st = self.lock();
        st.clock_ms += 1;
        st.objects.remove(object);
        Self::emit(&mut st, "deleted", object, actor);
    }

    /// Seeds remote state without emitting a webhook.
    pub fn seed(&self, object: &str, fields: &FieldPatch) {
        let mut st = self.lock();
        Self::write(&mut st, object, fields.values().cloned());
    }

    /// The remote state of an object.
    pub fn remote(&self, object: &str) -> Option<FieldPatch> {
        self.lock().objects.get(object).map(|o| o.fields.clone())
    }

    /// Takes the webhooks emitted so far, in emission order.
    pub fn take_deliveries(&self) -> Vec<Delivery> {
        std::mem::take(&mut self.lock().outgoing)
    }

    /// Every push received, in order.
    pub fn pushes(&self) -> Vec<(String, FieldPatch)> {
        self.lock().pushes.clone()
    }

    /// Injects API faults.
    pub fn inject(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.lock().faults);
    }

    /// A handshake request's headers (like Asana's `X-Hook-Secret`).
    pub fn handshake_headers(secret: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(secret) {
            h.insert(HANDSHAKE_HEADER, v);
        }
        h
    }

    fn next_fault(&self) -> Result<(), ProviderError> {
        match self.lock().faults.next_calls.pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Delivery faults: each delivery is sent `1..=max_copies` times, the whole lot shuffled,
/// and each copy dropped with probability `drop`.
pub fn scramble(
    deliveries: Vec<Delivery>,
    max_copies: usize,
    drop: f64,
    rng: &mut impl Rng,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    for d in deliveries {
        let copies = rng.random_range(1..=max_copies.max(1));
        for _ in 0..copies {
            if drop <= 0.0 || !rng.random_bool(drop.min(1.0)) {
                out.push(d.clone());
            }
        }
    }
    out.shuffle(rng);
    out
}

#[async_trait]
impl Provider for FakeProvider {
    fn kind(&self) -> ProviderKind {
        self.kind.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            webhook_handshake: self.options.handshake,
            kept_headers: &[],
            object_type: "item",
        }
    }

    fn repair(&self) -> Option<&dyn RepairProvider> {
        Some(self)
    }

    fn verify_webhook(
        &self,
        ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<WebhookAuth, ProviderError> {
        if self.options.handshake
            && let Some(secret) = req.headers.get(HANDSHAKE_HEADER)
        {
            let secret = secret
                .to_str()
                .map_err(|_| ProviderError::Unauthenticated("unreadable handshake secret".into()))?
                .to_owned();
            return Ok(WebhookAuth::Handshake {
                reply_headers: vec![(HANDSHAKE_HEADER.to_owned(), secret.clone())],
                secret,
            });
        }
        let sig = req
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or_else(|| ProviderError::Unauthenticated(format!("missing {SIGNATURE_HEADER}")))?;
        let sig = hex::decode(sig.as_bytes())
            .map_err(|_| ProviderError::Unauthenticated("signature is not hex".into()))?;
        if hmac_sha256_matches(&sig, &ctx.secrets.webhook_secrets, req.body) {
            return Ok(WebhookAuth::Verified {
                method: "hmac-sha256",
            });
        }
        Err(ProviderError::Unauthenticated(
            "signature does not match any current secret".into(),
        ))
    }

    fn parse_webhook(
        &self,
        _ctx: &ProviderContext,
        req: &WebhookRequest<'_>,
    ) -> Result<Vec<ChangeHint>, ProviderError> {
        let body: Body = serde_json::from_slice(req.body)
            .map_err(|e| ProviderError::BadInput(format!("fake webhook: {e}")))?;
        let key = ObjectKey::new(body.object.clone(), "item");
        let kind = match body.event.as_str() {
            "created" | "changed" => HintKind::Changed,
            "deleted" => HintKind::Deleted,
            other => HintKind::Ignored {
                reason: other.to_owned(),
            },
        };
        let snapshot = (self.options.snapshots && kind == HintKind::Changed).then(|| RemoteTask {
            key: key.clone(),
            fields: body.fields.clone(),
            modified_at_ms: body.time_ms,
            url: Some(format!("https://fake.example/items/{}", body.object)),
            marker: None,
        });
        Ok(vec![ChangeHint {
            key,
            delivery_id: Some(body.delivery_id),
            kind,
            source_time_ms: Some(body.time_ms),
            actor: Some(RemoteActor::account(body.actor)),
            snapshot,
            changes: Vec::new(),
        }])
    }

    async fn fetch_task(
        &self,
        _ctx: &ProviderContext,
        key: &ObjectKey,
    ) -> Result<RemoteTask, ProviderError> {
        self.next_fault()?;
        let st = self.lock();
        let obj = st
            .objects
            .get(&key.external_id)
            .ok_or_else(|| ProviderError::NotFound(key.external_id.clone()))?;
        Ok(RemoteTask {
            key: key.clone(),
            fields: obj.fields.clone(),
            modified_at_ms: obj.modified_ms,
            url: Some(format!("https://fake.example/items/{}", key.external_id)),
            marker: None,
        })
    }

    async fn push(
        &self,
        _ctx: &ProviderContext,
        key: &ObjectKey,
        patch: &FieldPatch,
    ) -> Result<PushOutcome, ProviderError> {
        self.next_fault()?;
        let mut st = self.lock();
        if !st.objects.contains_key(&key.external_id) {
            return Err(ProviderError::NotFound(key.external_id.clone()));
        }
        let mut outcome = PushOutcome::default();
        let mut accepted = Vec::new();
        for v in patch.values() {
            match st.faults.refuse.get(&v.field()) {
                Some(reason) => outcome.refused.push((v.field(), reason.clone())),
                None => {
                    outcome.applied.push(v.field());
                    accepted.push(v.clone());
                }
            }
        }
        st.pushes.push((key.external_id.clone(), patch.clone()));
        if !accepted.is_empty() {
            Self::write(&mut st, &key.external_id, accepted);
            Self::emit(&mut st, "changed", &key.external_id, BOT_ACCOUNT);
        }
        Ok(outcome)
    }
}

#[async_trait]
impl RepairProvider for FakeProvider {
    /// Lists objects by their logical modification time: a backfill everything (its
    /// handover cursor taken first), a reconcile those modified at or after the cursor's
    /// time. Pages are keyset-paged on `(modified, id)`.
    async fn list_changes(
        &self,
        _ctx: &ProviderContext,
        req: &ListRequest<'_>,
    ) -> Result<ListPage, ProviderError> {
        self.next_fault()?;
        let st = self.lock();
        let cur: FakeCursor = match req.cursor {
            Some(c) => serde_json::from_value(c.clone())
                .map_err(|e| ProviderError::BadInput(format!("cursor: {e}")))?,
            None if req.mode == ListMode::Reconcile => {
                return Ok(ListPage {
                    changes: Vec::new(),
                    // After the present: what exists now is not a change since.
                    cursor: serde_json::json!(FakeCursor::at(st.clock_ms + 1)),
                    done: true,
                });
            }
            None => FakeCursor {
                since_ms: i64::MIN,
                run_start_ms: Some(st.clock_ms),
                after: None,
            },
        };
        let run_start = cur.run_start_ms.unwrap_or(st.clock_ms);
        let mut listed: Vec<(&String, &RemoteObject)> = st
            .objects
            .iter()
            .filter(|(_, o)| o.modified_ms >= cur.since_ms)
            .filter(|(id, o)| match &cur.after {
                Some((ms, after)) => (o.modified_ms, id.as_str()) > (*ms, after.as_str()),
                None => true,
            })
            .collect();
        listed.sort_by(|a, b| (a.1.modified_ms, a.0).cmp(&(b.1.modified_ms, b.0)));
        let size = req.page_size.max(1);
        let done = listed.len() <= size;
        listed.truncate(size);
        let changes: Vec<ChangeHint> = listed
            .iter()
            .map(|(id, o)| {
                let key = ObjectKey::new(id.as_str(), "item");
                ChangeHint {
                    key: key.clone(),
                    delivery_id: None,
                    kind: HintKind::Changed,
                    source_time_ms: Some(o.modified_ms),
                    actor: None,
                    snapshot: Some(RemoteTask {
                        key: key.clone(),
                        fields: o.fields.clone(),
                        modified_at_ms: o.modified_ms,
                        url: Some(format!("https://fake.example/items/{id}")),
                        marker: None,
                    }),
                    changes: Vec::new(),
                }
            })
            .collect();
        let cursor = if done {
            FakeCursor::at(run_start)
        } else {
            FakeCursor {
                since_ms: cur.since_ms,
                run_start_ms: Some(run_start),
                after: listed.last().map(|(id, o)| (o.modified_ms, (*id).clone())),
            }
        };
        Ok(ListPage {
            changes,
            cursor: serde_json::json!(cursor),
            done,
        })
    }
}
