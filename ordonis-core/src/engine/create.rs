//! Tasks created from CollabHub in a provider, exactly once, and tasks linked to (or
//! unlinked from) an existing issue.
//!
//! A create is a task with a [`TaskCreate`] and a push job: the worker that runs the job
//! creates the issue with the task's id as its marker, and adopts it (mapping, key, URL, the
//! provider's fields) in one unit of work. Before a create call, the task is marked *in
//! doubt*; an attempt that finds it in doubt asks the provider for the marked issue first
//! ([`CreateProvider::find_created`]), so a lost answer never makes a second issue. The
//! issue's own first webhook, when it beats the adoption, carries the marker too (where the
//! provider's read includes it) and joins the task instead of importing a second one.

use time::OffsetDateTime;

use super::comments::task_draft;
use super::inbound::{EntryContext, drafts};
use super::outbound::push_context;
use super::tasks::internal_action;
use super::{Engine, Loaded};
use crate::actor::Actor;
use crate::create::{CreateDraft, CreateState, NewLink, TaskCreate};
use crate::error::{Error, InvalidInput, ProviderError};
use crate::field_merge::{Decision, apply_local, apply_remote};
use crate::ids::{ActionId, IntegrationId, TaskId, WorkspaceId};
use crate::ledger::{LedgerDraft, Op, Outcome};
use crate::model::{ExternalRef, FieldPatch, ObjectKey};
use crate::policy::FieldPolicy;
use crate::provider::RemoteTask;
use crate::store::{OutboxJob, StoreExt, TaskWrite, UnitOfWork};
use crate::sync_state::SourceVersion;
use crate::task::Task;

/// What [`Engine::create_task`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateReceipt {
    /// The new task.
    pub task_id: TaskId,
    /// The ledger entries written.
    pub entries: Vec<LedgerDraft>,
    /// A create in the provider was queued.
    pub create_queued: bool,
}

impl Engine {
    /// Creates a task as an actor; with `link`, also its issue (or Asana task) in the
    /// provider, by a worker, exactly once. The task, its ledger entries and the create job
    /// commit together. `NotFound` for an integration the workspace does not have; `Invalid`
    /// for a provider that cannot create, or a parent task that is not the workspace's.
    pub async fn create_task(
        &self,
        ws: &WorkspaceId,
        actor: &Actor,
        fields: &FieldPatch,
        link: Option<NewLink>,
    ) -> Result<CreateReceipt, Error> {
        actor.validate()?;
        let mut task = Task::new(ws.clone());
        let action = ActionId::new();
        let loaded = match &link {
            Some(l) => Some(self.workspace_integration(ws, l.integration_id).await?),
            None => None,
        };
        if let Some(loaded) = &loaded {
            if loaded.provider.creates().is_none() {
                return Err(InvalidInput::new(
                    "link.integration_id",
                    format!("{} cannot create tasks", loaded.record.provider),
                )
                .into());
            }
            for v in fields.values() {
                if let crate::provider::ValueCheck::Refuse(reason) =
                    loaded.provider.check_value(&loaded.ctx, v)
                {
                    return Err(InvalidInput::new(
                        format!("fields.{}", v.field()),
                        format!("the provider cannot hold this value: {reason}"),
                    )
                    .into());
                }
            }
        }
        if let Some(parent) = link.as_ref().and_then(|l| l.parent.as_deref())
            && let Ok(parent) = parent.parse::<TaskId>()
            && self.inner.store.workspace_task(ws, parent).await?.is_none()
        {
            return Err(InvalidInput::new(
                "link.parent",
                format!("no task {parent} in this workspace"),
            )
            .into());
        }
        let policy = loaded
            .as_ref()
            .map_or_else(FieldPolicy::default, |l| l.config.policy());
        let applied = apply_local(&mut task, fields, &policy, action);
        let ctx = internal_action(actor, action);
        let mut uow = UnitOfWork::new(ws.clone());
        match link {
            Some(link) => {
                // Fields the create will carry are the task's values: a provider-owned field
                // is the request until the provider answers.
                for d in &applied.decisions {
                    task.fields.set(d.after.clone());
                }
                uow.enqueue_push = Some((task.id, link.integration_id));
                let integration = link.integration_id;
                task.create = Some(TaskCreate {
                    link,
                    state: CreateState::Pending,
                    error: None,
                    in_doubt_since_ms: None,
                });
                uow.ledger = drafts(&task, &applied.decisions, &ctx, Some(integration));
            }
            None => {
                // No link: nothing is pushed, whatever the policy says.
                for st in task.sync.values_mut() {
                    st.want = None;
                }
                uow.ledger = drafts(&task, &applied.decisions, &ctx, None);
            }
        }
        task.revision = 1;
        let task_id = task.id;
        let create_queued = uow.enqueue_push.is_some();
        let entries = uow.ledger.clone();
        uow.task = Some(TaskWrite {
            task,
            expected_revision: None,
        });
        self.inner.store.commit(uow).await?;
        Ok(CreateReceipt {
            task_id,
            entries,
            create_queued,
        })
    }

    /// Links a task to an existing issue (a Jira key or id, an Asana gid): the provider's
    /// state is fetched and merged under the field policy, and the link and the decisions go
    /// in the ledger. `Conflict` when the issue is linked to another task (the message names
    /// it), `Invalid` when it is outside the integration's scope or the task is linked
    /// already, `NotFound` when the provider has no such issue.
    pub async fn link_task(
        &self,
        ws: &WorkspaceId,
        task_id: TaskId,
        actor: &Actor,
        integration: IntegrationId,
        external_id: &str,
    ) -> Result<Task, Error> {
        actor.validate()?;
        let loaded = self.workspace_integration(ws, integration).await?;
        let external_id = external_id.trim();
        if external_id.is_empty() || external_id.len() > 255 {
            return Err(InvalidInput::new("external_id", "must be 1 to 255 characters").into());
        }
        let key = ObjectKey::new(external_id, loaded.provider.capabilities().object_type);
        let remote = match loaded.provider.fetch_task(&loaded.ctx, &key).await {
            Ok(r) => r,
            Err(ProviderError::OutOfScope(why)) => {
                return Err(InvalidInput::new(
                    "external_id",
                    format!("outside the integration's scope: {why}"),
                )
                .into());
            }
            Err(ProviderError::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "{} {external_id} in {}",
                    key.object_type, loaded.record.provider
                )));
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(repair) = loaded.provider.repair()
            && let Some(why) = repair.scope_check(&loaded.ctx, &remote.key).await?
        {
            return Err(InvalidInput::new(
                "external_id",
                format!("outside the integration's scope: {why}"),
            )
            .into());
        }
        // The fetched key is the provider's id (a Jira key was asked, the id is mapped).
        let mut previous = None;
        if let Some(other) = self
            .inner
            .store
            .find_mapping(integration, &remote.key)
            .await?
            .filter(|t| *t != task_id)
        {
            let holder = self.inner.store.workspace_task(ws, other).await?;
            let linked = holder.as_ref().is_none_or(|t| {
                t.external
                    .iter()
                    .any(|l| l.integration_id == integration && l.key == remote.key)
            });
            if linked {
                return Err(Error::Conflict(format!(
                    "{} {external_id} is linked to task {other}",
                    remote.key.object_type
                )));
            }
            // Mapped to a task it was unlinked from: it moves to this one.
            previous = Some(other);
        }
        let action = ActionId::new();
        let ctx = internal_action(actor, action);
        let policy = loaded.config.policy();
        let provider = loaded.record.provider.clone();
        let store = self.inner.store.clone();
        self.commit_with_retry(|| {
            let store = store.clone();
            let (ctx, remote, policy, provider) = (&ctx, &remote, &policy, &provider);
            async move {
                let mut task = live_task(&*store, ws, task_id).await?;
                match task.link() {
                    Some(l) if l.integration_id == integration && l.key == remote.key => {
                        return Ok(None); // linked already: nothing to do
                    }
                    Some(l) => {
                        return Err(InvalidInput::new(
                            "task",
                            format!(
                                "linked already to {} {}: unlink it first",
                                l.key.object_type, l.key.external_id
                            ),
                        )
                        .into());
                    }
                    None => {}
                }
                let link = external_ref(integration, provider, remote);
                task.external = vec![link.clone()];
                // A create still pending through this integration is moot now.
                task.create = None;
                let version = SourceVersion::new(remote.modified_at_ms, format!("link:{action}"));
                let applied = apply_remote(&mut task, &remote.fields, &version, policy);
                let mut uow = UnitOfWork::new(ws.clone());
                if let Some(other) = previous {
                    uow.unmapping = Some((link.clone(), other));
                }
                uow.mapping = Some((link, task.id));
                uow.ledger.push(task_draft(
                    &task,
                    Some(integration),
                    Op::Link,
                    Outcome::Applied,
                    "linked to an existing object".to_owned(),
                    ctx,
                ));
                uow.ledger
                    .extend(drafts(&task, &applied.decisions, ctx, Some(integration)));
                if applied.push || task.has_unpushed_changes() {
                    uow.enqueue_push = Some((task.id, integration));
                }
                task.updated_at = OffsetDateTime::now_utc();
                uow.task = Some(TaskWrite::next(task));
                Ok(Some(uow))
            }
        })
        .await?;
        live_task(&*self.inner.store, ws, task_id).await
    }

    /// Unlinks a task from its object in an integration: it stops syncing with it either way
    /// (the object's events are recorded and not applied, and the object is not imported
    /// again as another task); the task and its history stay, and the unlink is a ledger
    /// entry. Linking the object again, to this task or another, resumes its sync. `Invalid` when the task is not
    /// linked through that integration.
    pub async fn unlink_task(
        &self,
        ws: &WorkspaceId,
        task_id: TaskId,
        actor: &Actor,
        integration: IntegrationId,
    ) -> Result<Task, Error> {
        actor.validate()?;
        let ctx = internal_action(actor, ActionId::new());
        let store = self.inner.store.clone();
        self.commit_with_retry(|| {
            let store = store.clone();
            let ctx = &ctx;
            async move {
                let mut task = live_task(&*store, ws, task_id).await?;
                let Some(pos) = task
                    .external
                    .iter()
                    .position(|l| l.integration_id == integration)
                else {
                    return Err(InvalidInput::new(
                        "integration_id",
                        format!("task {task_id} is not linked through integration {integration}"),
                    )
                    .into());
                };
                let mut uow = UnitOfWork::new(ws.clone());
                uow.ledger.push(task_draft(
                    &task,
                    Some(integration),
                    Op::Unlink,
                    Outcome::Applied,
                    "unlinked: no longer synced either way".to_owned(),
                    ctx,
                ));
                // The mapping stays: the object's events reach this task and stop there,
                // instead of importing it again as a new task while it is in scope.
                task.external.remove(pos);
                // Nothing waits to be pushed to an object the task no longer has.
                for st in task.sync.values_mut() {
                    st.want = None;
                    st.sent.clear();
                    st.base = None;
                    st.version = None;
                }
                task.out_of_scope = false;
                task.updated_at = OffsetDateTime::now_utc();
                uow.task = Some(TaskWrite::next(task));
                Ok(Some(uow))
            }
        })
        .await?;
        live_task(&*self.inner.store, ws, task_id).await
    }

    /// Runs the pending create of the push job's task, if it has one: finds (after a lost
    /// answer) or creates the issue and adopts it. A refusal is recorded on the task and in
    /// the ledger, and never retried; a failure that is the job's (an outage, a rate limit)
    /// returns the error, so the job retries.
    pub(super) async fn run_pending_create(
        &self,
        job: &OutboxJob,
        loaded: &Loaded,
    ) -> Result<(), Error> {
        let ws = &job.workspace_id;
        let Some(task) = self.inner.store.workspace_task(ws, job.task_id).await? else {
            return Ok(());
        };
        let Some(create) = task.create.clone().filter(|c| {
            c.state == CreateState::Pending && c.link.integration_id == job.integration_id
        }) else {
            return Ok(());
        };
        if task.link().is_some() || task.deleted {
            return Ok(());
        }
        let Some(creator) = loaded.provider.creates() else {
            return self
                .refuse_create(job, "the provider cannot create tasks".to_owned())
                .await;
        };
        let parent = match self.create_parent(ws, create.link.parent.as_deref()).await {
            Ok(p) => p,
            Err(ParentWait::Refused(why)) => return self.refuse_create(job, why).await,
            Err(ParentWait::Pending(why)) => {
                return Err(ProviderError::Retryable {
                    message: why,
                    source: None,
                }
                .into());
            }
            Err(ParentWait::Store(e)) => return Err(e),
        };
        let fields = create_fields(&task);
        let marker = task.id.to_string();
        let project = create
            .link
            .project
            .clone()
            .or(loaded.config.create.project.clone());
        let issue_type = create
            .link
            .issue_type
            .clone()
            .or(loaded.config.create.issue_type.clone());
        let draft = CreateDraft {
            marker: &marker,
            fields: &fields,
            project: project.as_deref(),
            issue_type: issue_type.as_deref(),
            parent: parent.as_deref(),
        };
        let found = match create.in_doubt_since_ms {
            Some(since) => {
                // Not before the provider's lookup can see it: a search that runs too
                // early misses the object and would create a second one.
                let wait = creator.lookup_delay(&loaded.ctx);
                let ready_ms =
                    since.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                let now_ms = now_ms();
                if now_ms < ready_ms {
                    return Err(ProviderError::Retryable {
                        message: format!(
                            "a create whose answer was lost is looked for {} s after it, so \
                             that the provider's search shows it: {} s to go",
                            wait.as_secs(),
                            (ready_ms - now_ms + 999) / 1000
                        ),
                        source: None,
                    }
                    .into());
                }
                creator.find_created(&loaded.ctx, &draft, since).await?
            }
            None => None,
        };
        let remote = match found {
            Some(r) => r,
            None => {
                if create.in_doubt_since_ms.is_none() {
                    self.mark_create_in_doubt(ws, task.id).await?;
                }
                match creator.create_task(&loaded.ctx, &draft).await {
                    Ok(r) => r,
                    Err(e) if e.refuses_the_object() => {
                        return self.refuse_create(job, e.to_string()).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        self.adopt_created(job, loaded, &remote).await
    }

    /// Records that a create call is about to start, so a retry looks before creating.
    async fn mark_create_in_doubt(&self, ws: &WorkspaceId, task_id: TaskId) -> Result<(), Error> {
        let store = self.inner.store.clone();
        let now_ms = now_ms();
        self.commit_with_retry(|| {
            let store = store.clone();
            async move {
                let Some(mut task) = store.workspace_task(ws, task_id).await? else {
                    return Ok(None);
                };
                let Some(c) = task.create.as_mut() else {
                    return Ok(None);
                };
                c.in_doubt_since_ms = Some(now_ms);
                let integration = c.link.integration_id;
                let mut uow = UnitOfWork::new(ws.clone());
                // Its webhook is read for the marker while the window lasts (renewed when
                // less than half of it is left, so most creates write nothing more).
                if let Some(rec) = store.integration(integration).await? {
                    let mut config: crate::config::IntegrationConfig =
                        serde_json::from_value(rec.config.clone())
                            .map_err(|e| InvalidInput::new("integration config", e.to_string()))?;
                    let now = OffsetDateTime::now_utc();
                    let window = crate::config::CREATING_WINDOW;
                    if config.creating_until.is_none_or(|t| t < now + window / 2) {
                        config.creating_until = Some(now + window);
                        let value = serde_json::to_value(&config)
                            .map_err(|e| InvalidInput::new("integration config", e.to_string()))?;
                        uow.integration = Some((
                            integration,
                            crate::store::IntegrationUpdate {
                                config: Some(value),
                                ..crate::store::IntegrationUpdate::default()
                            },
                        ));
                    }
                }
                uow.task = Some(TaskWrite::next(task));
                Ok(Some(uow))
            }
        })
        .await?;
        Ok(())
    }

    /// An integration of the workspace (`NotFound` for another workspace's).
    pub(super) async fn workspace_integration(
        &self,
        ws: &WorkspaceId,
        id: IntegrationId,
    ) -> Result<Loaded, Error> {
        let loaded = self.load(id).await?;
        if &loaded.record.workspace_id != ws {
            return Err(Error::NotFound(format!("integration {id}")));
        }
        Ok(loaded)
    }

    /// The provider id of a create's parent: a CollabHub task's issue once it exists, or the
    /// provider's key as given.
    async fn create_parent(
        &self,
        ws: &WorkspaceId,
        parent: Option<&str>,
    ) -> Result<Option<String>, ParentWait> {
        let Some(parent) = parent else {
            return Ok(None);
        };
        let Ok(id) = parent.parse::<TaskId>() else {
            return Ok(Some(parent.to_owned()));
        };
        let task = self
            .inner
            .store
            .workspace_task(ws, id)
            .await
            .map_err(|e| ParentWait::Store(e.into()))?
            .ok_or_else(|| ParentWait::Refused(format!("the parent task {id} is gone")))?;
        if let Some(link) = task.link() {
            return Ok(Some(link.key.external_id.clone()));
        }
        match task.create.as_ref().map(|c| c.state) {
            Some(CreateState::Pending) => Err(ParentWait::Pending(format!(
                "waiting for the parent task {id}'s issue to be created"
            ))),
            _ => Err(ParentWait::Refused(format!(
                "the parent task {id} has no issue in the provider"
            ))),
        }
    }

    /// Makes the created (or found) object the task's: link, mapping, state, the provider's
    /// fields; what the provider does not hold as asked is pushed next.
    async fn adopt_created(
        &self,
        job: &OutboxJob,
        loaded: &Loaded,
        remote: &RemoteTask,
    ) -> Result<(), Error> {
        let ws = &job.workspace_id;
        let ctx = push_context(job);
        let store = self.inner.store.clone();
        let provider = loaded.record.provider.clone();
        let integration = job.integration_id;
        let policy = loaded.config.policy();
        let result = self
            .commit_with_retry(|| {
                let store = store.clone();
                let (ctx, provider, policy) = (&ctx, &provider, &policy);
                async move {
                    let Some(mut task) = store.workspace_task(ws, job.task_id).await? else {
                        return Ok(None);
                    };
                    if task.link().is_some() {
                        return Ok(None); // its webhook joined it first
                    }
                    let mut uow = UnitOfWork::new(ws.clone());
                    let decisions =
                        adopt(&mut task, integration, provider, remote, policy, "create");
                    uow.mapping = task.link().map(|l| (l.clone(), task.id));
                    uow.ledger.push(created_draft(&task, integration, ctx));
                    uow.ledger
                        .extend(drafts(&task, &decisions, ctx, Some(integration)));
                    task.updated_at = OffsetDateTime::now_utc();
                    uow.task = Some(TaskWrite::next(task));
                    Ok(Some(uow))
                }
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            // The object is another task's (imported before the create was adopted): the
            // create ends there, with the reason, instead of retrying for ever.
            Err(Error::Store(crate::error::StoreError::Conflict(msg)))
                if msg.contains("mapped to another task") =>
            {
                self.refuse_create(
                    job,
                    format!(
                        "{} {} was created, but another task syncs with it already",
                        remote.key.object_type, remote.key.external_id
                    ),
                )
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Records a refused create: the task's create state and a `rejected` link entry.
    async fn refuse_create(&self, job: &OutboxJob, reason: String) -> Result<(), Error> {
        let ws = &job.workspace_id;
        let ctx = push_context(job);
        let store = self.inner.store.clone();
        let integration = job.integration_id;
        self.commit_with_retry(|| {
            let store = store.clone();
            let (ctx, reason) = (&ctx, &reason);
            async move {
                let Some(mut task) = store.workspace_task(ws, job.task_id).await? else {
                    return Ok(None);
                };
                let Some(c) = task.create.as_mut() else {
                    return Ok(None);
                };
                c.state = CreateState::Refused;
                c.error = Some(reason.clone());
                c.in_doubt_since_ms = None;
                // Nothing waits to be pushed to an object that will not exist.
                for st in task.sync.values_mut() {
                    st.want = None;
                }
                let mut uow = UnitOfWork::new(ws.clone());
                uow.ledger.push(task_draft(
                    &task,
                    Some(integration),
                    Op::Link,
                    Outcome::Rejected,
                    format!("the provider refused to create it: {reason}"),
                    ctx,
                ));
                uow.task = Some(TaskWrite::next(task));
                Ok(Some(uow))
            }
        })
        .await?;
        Ok(())
    }
}

/// Now, in epoch milliseconds.
fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Why a create's parent is not usable yet.
enum ParentWait {
    /// Its issue is still being created: retry later.
    Pending(String),
    /// It will never have one.
    Refused(String),
    /// The store failed.
    Store(Error),
}

/// The task's fields as the create carries them: each outbound field's wanted value, else
/// its current one where it has been set.
fn create_fields(task: &Task) -> FieldPatch {
    let mut patch = FieldPatch::new();
    for (field, st) in &task.sync {
        match &st.want {
            Some(w) => patch.set(w.value.clone()),
            None => patch.set(task.fields.get(*field)),
        }
    }
    patch
}

/// The task's link to a provider object.
fn external_ref(
    integration: IntegrationId,
    provider: &crate::model::ProviderKind,
    remote: &RemoteTask,
) -> ExternalRef {
    ExternalRef {
        integration_id: integration,
        provider: provider.clone(),
        key: remote.key.clone(),
        url: remote.url.clone(),
    }
}

/// Whether a task waits for the object its create through `integration` makes (and has no
/// link yet): that object's first event joins it.
pub(super) fn awaits_object(task: &Task, integration: IntegrationId) -> bool {
    task.link().is_none()
        && task.create.as_ref().is_some_and(|c| {
            c.state == CreateState::Pending && c.link.integration_id == integration
        })
}

/// The ledger entry of a created object adopted by its task.
pub(super) fn created_draft(
    task: &Task,
    integration: IntegrationId,
    ctx: &EntryContext,
) -> LedgerDraft {
    task_draft(
        task,
        Some(integration),
        Op::Link,
        Outcome::Applied,
        "created in the provider".to_owned(),
        ctx,
    )
}

/// Adopts a created object into its task: the link, the create's state, and per field the
/// provider's value as the base. A value the provider holds as asked settles the field; one
/// it does not (a status the create could not set) stays wanted, to be pushed next. Returns
/// the decisions for the fields whose value the provider set.
pub(super) fn adopt(
    task: &mut Task,
    integration: IntegrationId,
    provider: &crate::model::ProviderKind,
    remote: &RemoteTask,
    policy: &FieldPolicy,
    event: &str,
) -> Vec<Decision> {
    task.external = vec![external_ref(integration, provider, remote)];
    if let Some(c) = task.create.as_mut() {
        c.state = CreateState::Created;
        c.error = None;
        c.in_doubt_since_ms = None;
    }
    let version = SourceVersion::new(
        remote.modified_at_ms,
        format!("{event}:{}", remote.key.external_id),
    );
    let mut decisions = Vec::new();
    for r in remote.fields.values() {
        let field = r.field();
        let current = task.fields.get(field);
        let st = task.sync.entry(field).or_default();
        st.version = Some(version.clone());
        st.base = Some(r.clone());
        let asked = st.want.as_ref().is_some_and(|w| w.value.same_as(r));
        if asked {
            st.want = None;
        }
        if st.want.is_none() && !current.same_as(r) {
            task.fields.set(r.clone());
            decisions.push(Decision {
                field,
                before: current,
                after: r.clone(),
                outcome: Outcome::Applied,
                rule: policy.rule(field),
                reason: "set by the provider at create".to_owned(),
                echo_of: None,
            });
        }
    }
    decisions
}

/// A live task of the workspace (`NotFound`; `Invalid` for a tombstone).
async fn live_task(
    store: &dyn crate::store::Store,
    ws: &WorkspaceId,
    id: TaskId,
) -> Result<Task, Error> {
    let task = store
        .workspace_task(ws, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("task {id}")))?;
    if task.deleted {
        return Err(InvalidInput::new("task", "deleted in the provider").into());
    }
    Ok(task)
}
