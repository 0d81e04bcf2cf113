//! Ingest: verify, store raw and deduplicated, answer. Framework-agnostic: the host's route
//! hands over method, headers and body, and sends back what this returns.

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::Engine;
use crate::error::{Error, ProviderError, StoreError};
use crate::ids::{EventId, IntegrationId};
use crate::model::{ObjectKey, ProviderKind};
use crate::provider::{ChangeHint, HintKind, WebhookAuth, WebhookRequest};
use crate::provider_http::bounded_error;
use crate::store::{InsertOutcome, JobState, NewInboxEvent};

/// Headers kept with every event (lowercase), beside those the provider names
/// ([`Capabilities::kept_headers`](crate::provider::Capabilities::kept_headers)).
const KEPT_HEADERS: &[&str] = &["content-type", "user-agent"];

/// What ingest did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored: the ids of the inbox rows (one per object the delivery touches).
    Stored(Vec<EventId>),
    /// Already stored earlier (a provider retry or replay).
    Duplicate(Vec<EventId>),
    /// A handshake was answered and its secret adopted.
    Handshake,
    /// An unsigned heartbeat was answered; nothing was stored.
    Heartbeat,
    /// Refused before anything was stored.
    Rejected(String),
    /// No such integration.
    UnknownIntegration,
    /// The body is larger than allowed.
    TooLarge,
    /// Could not store (the provider should retry).
    Unavailable(String),
}

/// The HTTP answer to send back to the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestResponse {
    /// Status code.
    pub status: u16,
    /// Headers to set (Asana's handshake echo).
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Bytes,
    /// What happened, for the host's logs and metrics.
    pub outcome: IngestOutcome,
}

impl IngestResponse {
    fn json(status: u16, outcome: IngestOutcome, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: Bytes::from(body.to_string()),
            outcome,
        }
    }

    fn error(status: u16, outcome: IngestOutcome, code: &str, message: &str) -> Self {
        Self::json(
            status,
            outcome,
            serde_json::json!({"error": {"code": code, "message": message}}),
        )
    }
}

/// The answer when the integration cannot be loaded: 404 unknown, else 503.
fn load_failed(integration_id: IntegrationId, e: Error) -> IngestResponse {
    match e {
        Error::NotFound(_) => IngestResponse::error(
            404,
            IngestOutcome::UnknownIntegration,
            "not_found",
            "unknown integration",
        ),
        e => {
            tracing::error!(%integration_id, error = %e, "ingest: cannot load integration");
            IngestResponse::error(
                503,
                IngestOutcome::Unavailable(e.to_string()),
                "unavailable",
                "try again later",
            )
        }
    }
}

impl Engine {
    /// Receives one webhook request for an integration.
    ///
    /// A request that fails verification stores nothing (401). A verified body that cannot be
    /// parsed is stored as `failed` with its error and answered 200, so the provider does not
    /// retry what cannot succeed. A delivery seen before is answered 200 and stored once:
    /// a duplicate is a body whose SHA-256 digest the integration's inbox already holds,
    /// whatever its (unsigned) delivery id says.
    pub async fn ingest(
        &self,
        integration_id: IntegrationId,
        method: &http::Method,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> IngestResponse {
        let resp = self
            .ingest_as(None, integration_id, method, headers, body)
            .await;
        crate::metrics::webhook(&resp.outcome);
        resp
    }

    /// [`Engine::ingest`] for a route that names the provider too
    /// (`/integrations/{provider}/{id}/webhook`): an integration of another provider is
    /// answered as unknown (404), decided on the same (cached) read as the signature check.
    pub async fn ingest_for(
        &self,
        provider: &ProviderKind,
        integration_id: IntegrationId,
        method: &http::Method,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> IngestResponse {
        let resp = self
            .ingest_as(Some(provider), integration_id, method, headers, body)
            .await;
        crate::metrics::webhook(&resp.outcome);
        resp
    }

    async fn ingest_as(
        &self,
        provider: Option<&ProviderKind>,
        integration_id: IntegrationId,
        method: &http::Method,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> IngestResponse {
        if body.len() > self.inner.config.max_body_bytes {
            return IngestResponse::error(
                413,
                IngestOutcome::TooLarge,
                "too_large",
                "body too large",
            );
        }
        let (mut loaded, mut cached) = match self.load_for_ingest(integration_id, false).await {
            Ok(l) => l,
            Err(e) => return load_failed(integration_id, e),
        };
        if provider.is_some_and(|p| *p != loaded.record.provider) {
            return load_failed(
                integration_id,
                Error::NotFound(format!("integration {integration_id}")),
            );
        }
        let req = WebhookRequest {
            method,
            headers,
            body: &body,
        };
        let auth = loop {
            let verified = loaded.provider.verify_webhook(&loaded.ctx, &req);
            // A cached integration only ever accepts: a rejection or a handshake is decided
            // on a fresh read.
            let decided = matches!(verified, Ok(WebhookAuth::Verified { .. }));
            if cached && !decided {
                (loaded, cached) = match self.load_for_ingest(integration_id, true).await {
                    Ok(l) => l,
                    Err(e) => return load_failed(integration_id, e),
                };
                continue;
            }
            match verified {
                Ok(a) => break a,
                Err(e) => {
                    // WARN: a wrong secret or a forged delivery needs an operator. The
                    // reason names the check, never the body; it may quote what the request
                    // presented, so it is bounded (a huge header makes no huge log line).
                    let reason = bounded_error(&e.to_string());
                    tracing::warn!(%integration_id, provider = %loaded.record.provider, error = %reason, "ingest: webhook rejected");
                    return IngestResponse::error(
                        401,
                        IngestOutcome::Rejected(reason.clone()),
                        "unauthenticated",
                        &reason,
                    );
                }
            }
        };
        let auth_method = match auth {
            WebhookAuth::Verified { method } => method,
            WebhookAuth::Handshake {
                reply_headers,
                secret,
            } => return self.handshake(&loaded, reply_headers, secret).await,
            // Unauthenticated: answered, never stored (not even a row saying it came).
            WebhookAuth::UnsignedHeartbeat => {
                return IngestResponse::json(
                    200,
                    IngestOutcome::Heartbeat,
                    serde_json::json!({"status": "heartbeat"}),
                );
            }
        };

        let body_sha256 = hex::encode(Sha256::digest(&body));
        let provider_kept = loaded.provider.capabilities().kept_headers;
        let kept: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| {
                KEPT_HEADERS.contains(&n.as_str()) || provider_kept.contains(&n.as_str())
            })
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let row = |dedupe_key: String,
                   delivery_id: Option<String>,
                   object_key: Option<String>,
                   state: JobState,
                   note: Option<String>| NewInboxEvent {
            id: EventId::new(),
            workspace_id: loaded.record.workspace_id.clone(),
            integration_id,
            dedupe_key,
            delivery_id,
            object_key,
            headers: kept.clone(),
            body: body.clone(),
            body_sha256: body_sha256.clone(),
            auth: auth_method.to_owned(),
            state,
            note,
        };

        let rows = match loaded.provider.parse_webhook(&loaded.ctx, &req) {
            Err(e) => vec![row(
                body_sha256.clone(),
                None,
                None,
                JobState::Failed,
                Some(e.to_string()),
            )],
            Ok(hints) if hints.is_empty() => vec![row(
                body_sha256.clone(),
                None,
                None,
                JobState::Done,
                Some("heartbeat".to_owned()),
            )],
            Ok(hints) => {
                let mut by_object: BTreeMap<ObjectKey, Vec<ChangeHint>> = BTreeMap::new();
                for h in hints {
                    by_object.entry(h.key.clone()).or_default().push(h);
                }
                let several = by_object.len() > 1;
                by_object
                    .into_iter()
                    .map(|(key, hints)| {
                        let delivery_id = hints.iter().find_map(|h| h.delivery_id.clone());
                        // Deduplicated on what is signed, the body's digest, never on the
                        // delivery id, which rides in an unsigned header: a signed body
                        // replayed under a new delivery id is a duplicate. The id is kept
                        // for display.
                        let dedupe = if several {
                            format!("{body_sha256}#{}", key.external_id)
                        } else {
                            body_sha256.clone()
                        };
                        let ignored: Vec<&str> = hints
                            .iter()
                            .filter_map(|h| match &h.kind {
                                HintKind::Ignored { reason } => Some(reason.as_str()),
                                _ => None,
                            })
                            .collect();
                        if ignored.len() == hints.len() {
                            let note = format!("not applied: {}", ignored.join(", "));
                            row(
                                dedupe,
                                delivery_id,
                                Some(key.external_id),
                                JobState::Done,
                                Some(note),
                            )
                        } else {
                            row(
                                dedupe,
                                delivery_id,
                                Some(key.external_id),
                                JobState::Pending,
                                None,
                            )
                        }
                    })
                    .collect()
            }
        };

        match self.inner.store.insert_events(&rows).await {
            Ok(outcomes) => {
                let ids: Vec<EventId> = outcomes.iter().map(|o| o.id()).collect();
                let all_dup = outcomes
                    .iter()
                    .all(|o| matches!(o, InsertOutcome::Duplicate(_)));
                let ids_json: Vec<String> = ids.iter().map(ToString::to_string).collect();
                if all_dup {
                    IngestResponse::json(
                        200,
                        IngestOutcome::Duplicate(ids),
                        serde_json::json!({"status": "duplicate", "events": ids_json}),
                    )
                } else {
                    IngestResponse::json(
                        200,
                        IngestOutcome::Stored(ids),
                        serde_json::json!({"status": "stored", "events": ids_json}),
                    )
                }
            }
            Err(e) => {
                tracing::error!(%integration_id, error = %e, "ingest: store failed");
                let status = if matches!(e, StoreError::Invalid(_)) {
                    400
                } else {
                    503
                };
                IngestResponse::error(
                    status,
                    IngestOutcome::Unavailable(e.to_string()),
                    "unavailable",
                    "could not store the event",
                )
            }
        }
    }

    /// Adopts a handshake's secret.
    async fn handshake(
        &self,
        loaded: &super::Loaded,
        reply_headers: Vec<(String, String)>,
        secret: String,
    ) -> IngestResponse {
        // Only an integration creating its webhook takes a handshake; once a secret is set, an
        // arbitrary caller cannot replace it.
        if !loaded
            .config
            .handshake_open(time::OffsetDateTime::now_utc())
        {
            let e = ProviderError::Unauthenticated("handshake not expected".to_owned());
            return IngestResponse::error(
                401,
                IngestOutcome::Rejected(e.to_string()),
                "unauthenticated",
                "handshake not expected",
            );
        }
        // A handshake is a new webhook (one per Asana project), not a rotation: the other
        // webhooks' secrets stay valid. The registration prunes those of webhooks that no
        // longer exist; this bound only stops an endless series of handshakes.
        let mut secrets = loaded.ctx.secrets.clone();
        secrets.rotate_webhook_secret(
            secret,
            MAX_HANDSHAKE_SECRETS.max(self.inner.config.webhook_secret_overlap),
        );
        let mut config = loaded.config.clone();
        config.disarm_handshake();
        if let Err(e) = self
            .save_integration(&loaded.record, &config, &secrets)
            .await
        {
            tracing::error!(integration_id = %loaded.record.id, error = %e, "handshake: cannot store secret");
            return IngestResponse::error(
                503,
                IngestOutcome::Unavailable(e.to_string()),
                "unavailable",
                "could not store the secret",
            );
        }
        let mut resp = IngestResponse::json(
            200,
            IngestOutcome::Handshake,
            serde_json::json!({"status": "handshake"}),
        );
        resp.headers.extend(reply_headers);
        resp
    }
}

/// The most webhook secrets handshakes keep valid at once (one per webhook; Asana makes one
/// webhook per project).
pub(super) const MAX_HANDSHAKE_SECRETS: usize = 32;
