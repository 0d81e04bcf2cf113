//! Processing one claimed inbox event: parse, fetch when needed, apply by field policy, and
//! commit the task, mapping, ledger entries and the event's completion together.

use time::OffsetDateTime;

use super::{Engine, Loaded};
use crate::actor::Actor;
use crate::error::{Error, ProviderError};
use crate::ledger::{Cause, CauseKind, Evidence, LedgerDraft, Op, Outcome};
use crate::model::{ExternalRef, ObjectKey};
use crate::provider::{ChangeHint, HintKind, RemoteTask, WebhookRequest, ms_to_datetime};
use crate::store::{Completion, InboxEvent, StoreExt, TaskWrite, UnitOfWork};
use crate::sync::{Decision, apply_remote};
use crate::sync_state::SourceVersion;
use crate::task::Task;

/// What the provider told us about the event's object.
enum Remote {
    /// The object's state and the provider time it is from (ms).
    State(RemoteTask, i64),
    Deleted,
    Ignored(String),
}

/// Context for the ledger entries of one event.
pub(crate) struct EntryContext {
    pub(crate) actor: Actor,
    pub(crate) cause: Cause,
    pub(crate) occurred_at: Option<OffsetDateTime>,
    pub(crate) observed_at: OffsetDateTime,
}

pub(crate) fn drafts(
    task: &Task,
    decisions: &[Decision],
    ctx: &EntryContext,
    integration: Option<crate::ids::IntegrationId>,
) -> Vec<LedgerDraft> {
    decisions
        .iter()
        .map(|d| {
            let mut cause = ctx.cause.clone();
            if let Some(parent) = d.echo_of {
                if d.outcome == Outcome::Confirmed {
                    cause.kind = CauseKind::SyncEcho;
                }
                cause.parent_action = Some(parent.to_string());
            }
            LedgerDraft {
                workspace_id: task.workspace_id.clone(),
                integration_id: integration,
                task_id: task.id,
                external: task.link().cloned(),
                op: Op::Set,
                field: Some(d.field),
                before: Some(d.before.clone()),
                after: Some(d.after.clone()),
                outcome: d.outcome,
                rule: d.rule_text(),
                actor: ctx.actor.clone(),
                cause,
                occurred_at: ctx.occurred_at,
                observed_at: ctx.observed_at,
            }
        })
        .collect()
}

fn lifecycle_draft(
    task: &Task,
    op: Op,
    ctx: &EntryContext,
    integration: crate::ids::IntegrationId,
) -> LedgerDraft {
    LedgerDraft {
        workspace_id: task.workspace_id.clone(),
        integration_id: Some(integration),
        task_id: task.id,
        external: task.link().cloned(),
        op,
        field: None,
        before: None,
        after: None,
        outcome: Outcome::Applied,
        rule: match op {
            Op::Create => "first seen in the provider".to_owned(),
            Op::Restore => "readable in the provider again: restored".to_owned(),
            _ => "deleted in the provider: tombstoned".to_owned(),
        },
        actor: ctx.actor.clone(),
        cause: ctx.cause.clone(),
        occurred_at: ctx.occurred_at,
        observed_at: ctx.observed_at,
    }
}

impl Engine {
    /// Processes one claimed inbox event to completion (or returns the error to retry on).
    pub async fn process_event(&self, event: &InboxEvent) -> Result<(), Error> {
        let loaded = self.load(event.integration_id).await?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &event.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                headers.append(n, v);
            }
        }
        let req = WebhookRequest {
            method: &http::Method::POST,
            headers: &headers,
            body: &event.body,
        };
        let hints: Vec<ChangeHint> = loaded
            .provider
            .parse_webhook(&loaded.ctx, &req)?
            .into_iter()
            .filter(|h| Some(&h.key.external_id) == event.object_key.as_ref())
            .collect();
        let Some(key) = hints.first().map(|h| h.key.clone()) else {
            return self
                .finish_event(event, Some("nothing for this object".to_owned()))
                .await;
        };
        let remote = self.resolve_remote(&loaded, &key, &hints).await?;
        let actor = hints
            .iter()
            .rev()
            .find_map(|h| h.actor.as_ref())
            .map_or_else(
                || Actor::service(format!("{}-webhook", loaded.record.provider)),
                |a| {
                    let mut actor =
                        Actor::provider_account(loaded.record.provider.as_str(), &a.account_id);
                    actor.display_name = a.display_name.clone();
                    actor
                },
            );
        let source_time = hints.iter().filter_map(|h| h.source_time_ms).max();
        let ctx = EntryContext {
            actor,
            cause: Cause {
                kind: CauseKind::InboundEvent,
                id: event.id.to_string(),
                delivery_id: event.delivery_id.clone(),
                parent_action: None,
                evidence: Some(Evidence {
                    auth: event.auth.clone(),
                    body_sha256: event.body_sha256.clone(),
                }),
            },
            occurred_at: source_time.and_then(ms_to_datetime),
            observed_at: event.received_at,
        };
        let Some(lease) = event.lease.clone() else {
            return Err(Error::NotFound(format!("event {} is not leased", event.id)));
        };
        let policy = loaded.config.policy();
        let integration = loaded.record.id;
        let provider_kind = loaded.record.provider.clone();
        let store = self.inner.store.clone();
        let ws = loaded.record.workspace_id.clone();

        self.commit_with_retry(|| {
            let store = store.clone();
            let ws = ws.clone();
            let remote = &remote;
            let ctx = &ctx;
            let policy = &policy;
            let key = &key;
            let lease = lease.clone();
            let provider_kind = provider_kind.clone();
            let event_id = event.id;
            async move {
                let mapped = store.find_mapping(integration, key).await?;
                let existing = match mapped {
                    Some(id) => store.workspace_task(&ws, id).await?,
                    None => None,
                };
                let mut uow = UnitOfWork::new(ws.clone());
                let mut note = None;
                match remote {
                    Remote::Ignored(reason) => note = Some(format!("not applied: {reason}")),
                    Remote::Deleted => match existing {
                        Some(mut task) if !task.deleted => {
                            let expected = task.revision;
                            task.deleted = true;
                            task.revision += 1;
                            task.updated_at = OffsetDateTime::now_utc();
                            uow.ledger
                                .push(lifecycle_draft(&task, Op::Delete, ctx, integration));
                            uow.task = Some(TaskWrite {
                                task,
                                expected_revision: Some(expected),
                            });
                        }
                        _ => note = Some("deleted object with no live task".to_owned()),
                    },
                    Remote::State(state, at) => {
                        let (mut task, expected) = match existing {
                            // Tombstoned, and the provider has the object again (`undeleted`,
                            // or a fetch that works once more): the task is back.
                            Some(mut t) if t.deleted => {
                                let rev = t.revision;
                                t.deleted = false;
                                uow.ledger
                                    .push(lifecycle_draft(&t, Op::Restore, ctx, integration));
                                (t, Some(rev))
                            }
                            Some(t) => {
                                let rev = t.revision;
                                (t, Some(rev))
                            }
                            None => {
                                let mut t = Task::new(ws.clone());
                                t.external.push(ExternalRef {
                                    integration_id: integration,
                                    provider: provider_kind.clone(),
                                    key: key.clone(),
                                    url: state.url.clone(),
                                });
                                uow.mapping = Some((t.external[0].clone(), t.id));
                                uow.ledger
                                    .push(lifecycle_draft(&t, Op::Create, ctx, integration));
                                (t, None)
                            }
                        };
                        let version = SourceVersion::new(*at, event_id.to_string());
                        let applied = apply_remote(&mut task, &state.fields, &version, policy);
                        if task.deleted {
                            note = Some("task is a tombstone".to_owned());
                        }
                        if applied.push {
                            uow.enqueue_push = Some((task.id, integration));
                        }
                        uow.ledger.extend(drafts(
                            &task,
                            &applied.decisions,
                            ctx,
                            Some(integration),
                        ));
                        if applied.dirty || expected.is_none() {
                            if let (Some(url), Some(link)) = (&state.url, task.external.first_mut())
                            {
                                link.url.get_or_insert_with(|| url.clone());
                            }
                            task.revision += 1;
                            if !applied.decisions.is_empty() {
                                task.updated_at = OffsetDateTime::now_utc();
                            }
                            uow.task = Some(TaskWrite {
                                task,
                                expected_revision: expected,
                            });
                        } else {
                            note = Some("no change".to_owned());
                        }
                    }
                }
                uow.completion = Completion::Done { lease, note };
                Ok(Some(uow))
            }
        })
        .await?;
        Ok(())
    }

    async fn finish_event(&self, event: &InboxEvent, note: Option<String>) -> Result<(), Error> {
        let Some(lease) = event.lease.clone() else {
            return Err(Error::NotFound(format!("event {} is not leased", event.id)));
        };
        let mut uow = UnitOfWork::new(event.workspace_id.clone());
        uow.completion = Completion::Done { lease, note };
        self.inner.store.commit(uow).await?;
        Ok(())
    }

    async fn resolve_remote(
        &self,
        loaded: &Loaded,
        key: &ObjectKey,
        hints: &[ChangeHint],
    ) -> Result<Remote, Error> {
        if hints.iter().any(|h| h.kind == HintKind::Deleted) {
            return Ok(Remote::Deleted);
        }
        if !hints.iter().any(|h| h.kind == HintKind::Changed) {
            let reasons: Vec<String> = hints
                .iter()
                .filter_map(|h| match &h.kind {
                    HintKind::Ignored { reason } => Some(reason.clone()),
                    _ => None,
                })
                .collect();
            return Ok(Remote::Ignored(reasons.join(", ")));
        }
        // A payload snapshot is as of its event; a fetched one as of its own modification time.
        if let Some((snapshot, time)) = hints
            .iter()
            .rev()
            .find_map(|h| Some((h.snapshot.clone()?, h.source_time_ms)))
        {
            let at = time.unwrap_or(snapshot.modified_at_ms);
            return Ok(Remote::State(snapshot, at));
        }
        match loaded.provider.fetch_task(&loaded.ctx, key).await {
            Ok(state) => {
                let at = state.modified_at_ms;
                Ok(Remote::State(state, at))
            }
            Err(ProviderError::NotFound(_)) => Ok(Remote::Deleted),
            Err(e) => Err(e.into()),
        }
    }
}
