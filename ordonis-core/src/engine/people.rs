//! The people directory: principals, the provider accounts seen, who is behind an account
//! (for the ledger's attribution) and which account a principal has (for an assignment).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::{Engine, Loaded};
use crate::actor::{Actor, ActorKind};
use crate::error::{Error, InvalidInput, StoreError};
use crate::ids::{IntegrationId, TaskId, WorkspaceId};
use crate::model::Assignee;
use crate::people::{AccountRef, Person, PersonKind, SeenAccount};
use crate::provider::RemoteActor;
use crate::store::StoreExt;

/// Accounts a process has recorded already (not written again until they change): at most
/// this many are remembered.
const SEEN_CACHE_MAX: usize = 50_000;

/// How long this process reuses who is behind an account (two or three store reads per
/// webhook saved). A change to the directory made here applies at once (the cache is
/// cleared); one made by another process applies within this time.
pub const ATTRIBUTION_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// A workspace's directory as the API shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeopleView {
    /// The principals, by id, each with its accounts.
    pub people: Vec<PersonView>,
    /// Accounts seen that belong to no principal, each with the reason.
    pub unmatched: Vec<UnmatchedAccount>,
}

/// A principal with its accounts, mapped by hand or matched by e-mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PersonView {
    /// The host's user or agent id.
    pub principal: String,
    /// Person or agent.
    pub kind: PersonKind,
    /// Display name.
    pub display_name: String,
    /// E-mails.
    pub emails: Vec<String>,
    /// Its accounts.
    pub accounts: Vec<AccountView>,
}

/// One account of a principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountView {
    /// The integration.
    pub integration_id: IntegrationId,
    /// The account id.
    pub account_id: String,
    /// The provider's name for it, when seen.
    pub display_name: Option<String>,
    /// The provider's e-mail for it, when shared.
    pub email: Option<String>,
    /// `hand` (listed by the principal) or `email` (matched automatically).
    pub matched_by: &'static str,
}

/// An account seen that belongs to no principal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnmatchedAccount {
    /// The integration.
    pub integration_id: IntegrationId,
    /// The account id.
    pub account_id: String,
    /// The provider's name for it.
    pub display_name: Option<String>,
    /// The provider's e-mail for it.
    pub email: Option<String>,
    /// Person or agent.
    pub kind: PersonKind,
    /// Why it matched no one.
    pub reason: String,
}

/// Who an account belongs to, given the directory.
enum Owner<'a> {
    Hand(&'a Person),
    Email(&'a Person),
    Nobody(String),
}

/// The owner of a seen account among `people`.
fn owner_of<'a>(people: &'a [Person], a: &SeenAccount) -> Owner<'a> {
    let r = AccountRef {
        integration_id: a.integration_id,
        account_id: a.account_id.clone(),
    };
    if let Some(p) = people.iter().find(|p| p.accounts.contains(&r)) {
        return Owner::Hand(p);
    }
    let Some(email) = a.email.as_deref().map(str::to_lowercase) else {
        return Owner::Nobody("the provider shares no e-mail for it: map it by hand".to_owned());
    };
    let holders: Vec<&Person> = people
        .iter()
        .filter(|p| p.emails.contains(&email))
        .collect();
    match holders.as_slice() {
        [] => Owner::Nobody(format!("no principal has the e-mail {email}")),
        [p] if p
            .accounts
            .iter()
            .any(|m| m.integration_id == a.integration_id) =>
        {
            Owner::Nobody(format!(
                "{} has another account of this integration mapped by hand",
                p.principal
            ))
        }
        [p] => Owner::Email(p),
        many => Owner::Nobody(format!(
            "the e-mail {email} is shared by {}: map it by hand",
            many.iter()
                .map(|p| p.principal.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

impl Engine {
    /// A workspace's directory: each principal with its accounts, and the accounts seen that
    /// belong to no one, with the reason.
    pub async fn people(&self, ws: &WorkspaceId) -> Result<PeopleView, Error> {
        let store = &self.inner.store;
        let people = store.people(ws).await?;
        let seen = store.seen_accounts(ws).await?;
        let mut accounts: BTreeMap<&str, Vec<AccountView>> = BTreeMap::new();
        let mut unmatched = Vec::new();
        let mut listed: HashSet<AccountRef> = HashSet::new();
        for a in &seen {
            let view = |matched_by| AccountView {
                integration_id: a.integration_id,
                account_id: a.account_id.clone(),
                display_name: a.display_name.clone(),
                email: a.email.clone(),
                matched_by,
            };
            match owner_of(&people, a) {
                Owner::Hand(p) => {
                    listed.insert(AccountRef {
                        integration_id: a.integration_id,
                        account_id: a.account_id.clone(),
                    });
                    accounts.entry(&p.principal).or_default().push(view("hand"));
                }
                Owner::Email(p) => accounts
                    .entry(&p.principal)
                    .or_default()
                    .push(view("email")),
                Owner::Nobody(reason) => unmatched.push(UnmatchedAccount {
                    integration_id: a.integration_id,
                    account_id: a.account_id.clone(),
                    display_name: a.display_name.clone(),
                    email: a.email.clone(),
                    kind: a.kind,
                    reason,
                }),
            }
        }
        let people = people
            .iter()
            .map(|p| {
                let mut mine = accounts.remove(p.principal.as_str()).unwrap_or_default();
                // Accounts mapped by hand and not seen yet.
                for r in p.accounts.iter().filter(|r| !listed.contains(*r)) {
                    mine.push(AccountView {
                        integration_id: r.integration_id,
                        account_id: r.account_id.clone(),
                        display_name: None,
                        email: None,
                        matched_by: "hand",
                    });
                }
                mine.sort_by(|a, b| {
                    (a.integration_id, &a.account_id).cmp(&(b.integration_id, &b.account_id))
                });
                PersonView {
                    principal: p.principal.clone(),
                    kind: p.kind,
                    display_name: p.display_name.clone(),
                    emails: p.emails.clone(),
                    accounts: mine,
                }
            })
            .collect();
        Ok(PeopleView { people, unmatched })
    }

    /// Stores a principal (insert or replace). `Invalid` for a bad entry (an empty name, two
    /// accounts of one integration, an account of an integration the workspace does not
    /// have); `Conflict` when an account is another principal's.
    pub async fn put_person(&self, mut person: Person) -> Result<Person, Error> {
        person.normalize()?;
        let ws = person.workspace_id.clone();
        let integrations: HashSet<IntegrationId> = self
            .inner
            .store
            .integrations(&ws)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if let Some(a) = person
            .accounts
            .iter()
            .find(|a| !integrations.contains(&a.integration_id))
        {
            return Err(InvalidInput::new(
                "accounts",
                format!("no integration {} in this workspace", a.integration_id),
            )
            .into());
        }
        match self.inner.store.put_person(&person).await {
            Ok(()) => {
                if let Ok(mut c) = self.inner.attribution_cache.lock() {
                    c.clear();
                }
                Ok(person)
            }
            Err(StoreError::Conflict(msg)) => Err(Error::Conflict(msg)),
            Err(e) => Err(e.into()),
        }
    }

    /// The principal behind an account, if any: the one that lists it, else the only one
    /// whose e-mail it has (`email`, or the one recorded for the account).
    pub async fn person_for_account(
        &self,
        ws: &WorkspaceId,
        integration: IntegrationId,
        account_id: &str,
        email: Option<&str>,
    ) -> Result<Option<Person>, Error> {
        let store = &self.inner.store;
        let r = AccountRef {
            integration_id: integration,
            account_id: account_id.to_owned(),
        };
        if let Some(p) = store.person_with_account(ws, &r).await? {
            return Ok(Some(p));
        }
        let email = match email {
            Some(e) => Some(e.to_lowercase()),
            None => store
                .seen_account(ws, &r)
                .await?
                .and_then(|a| a.email.map(|e| e.to_lowercase())),
        };
        let Some(email) = email else {
            return Ok(None);
        };
        // The directory's rule ([`owner_of`]) over the principals with that e-mail.
        let holders = store.people_with_email(ws, &email).await?;
        let seen = SeenAccount {
            integration_id: integration,
            account_id: account_id.to_owned(),
            display_name: None,
            email: Some(email),
            kind: PersonKind::Human,
        };
        Ok(match owner_of(&holders, &seen) {
            Owner::Hand(p) | Owner::Email(p) => Some(p.clone()),
            Owner::Nobody(_) => None,
        })
    }

    /// The assignee a principal is in a task's provider: the principal's account in the
    /// task's integration (mapped by hand, or matched by e-mail). `Invalid` when the task is
    /// not linked, or the principal has no account there: an assignment is never pushed as
    /// someone else.
    pub async fn assignee_for(
        &self,
        ws: &WorkspaceId,
        task: TaskId,
        principal: &str,
    ) -> Result<Assignee, Error> {
        let store = &self.inner.store;
        let task = store
            .workspace_task(ws, task)
            .await?
            .ok_or_else(|| Error::NotFound(format!("task {task}")))?;
        let integration = task
            .link()
            .map(|l| l.integration_id)
            .or(task.create.as_ref().map(|c| c.link.integration_id))
            .ok_or_else(|| {
                InvalidInput::new(
                    "fields.assignee.principal",
                    "the task syncs with no provider: assign it an account there first",
                )
            })?;
        let person = store.person(ws, principal).await?.ok_or_else(|| {
            InvalidInput::new(
                "fields.assignee.principal",
                format!("no principal {principal} in this workspace's directory"),
            )
        })?;
        let seen = store.seen_accounts(ws).await?;
        let people = store.people(ws).await?;
        let account = person
            .accounts
            .iter()
            .find(|a| a.integration_id == integration)
            .map(|a| a.account_id.clone())
            .or_else(|| {
                seen.iter()
                    .filter(|a| a.integration_id == integration)
                    .find(|a| {
                        matches!(owner_of(&people, a), Owner::Email(p) if p.principal == principal)
                    })
                    .map(|a| a.account_id.clone())
            })
            .ok_or_else(|| {
                InvalidInput::new(
                    "fields.assignee.principal",
                    format!(
                        "{principal} has no account in integration {integration}: map one in \
                         the people directory"
                    ),
                )
            })?;
        let known = seen
            .iter()
            .find(|a| a.integration_id == integration && a.account_id == account);
        Ok(Assignee {
            account_id: account,
            display_name: known
                .and_then(|a| a.display_name.clone())
                .or(Some(person.display_name.clone())),
            email: known.and_then(|a| a.email.clone()),
        })
    }

    /// Records the accounts an event showed (its author, the assignee, comment authors),
    /// reading from the provider what it did not say of a new one. Best effort: the event's
    /// processing does not fail on it.
    pub(super) async fn note_accounts(&self, loaded: &Loaded, actors: Vec<RemoteActor>) {
        let ws = &loaded.record.workspace_id;
        let integration = loaded.record.id;
        let mut fresh = Vec::new();
        for a in actors {
            if a.account_id.trim().is_empty() {
                continue;
            }
            let mut seen = SeenAccount {
                integration_id: integration,
                account_id: a.account_id,
                display_name: a.display_name,
                email: a.email.map(|e| e.to_lowercase()),
                kind: a.kind,
            };
            let key = (ws.clone(), integration, seen.account_id.clone());
            let known = self
                .inner
                .seen_cache
                .lock()
                .ok()
                .and_then(|c| c.get(&key).cloned());
            if let Some(k) = &known
                && (seen.display_name.is_none() || seen.display_name == k.display_name)
                && (seen.email.is_none() || seen.email == k.email)
            {
                continue; // nothing new about it
            }
            if known.is_none()
                && seen.display_name.is_none()
                && let Some(accounts) = loaded.provider.accounts()
            {
                match accounts.fetch_account(&loaded.ctx, &seen.account_id).await {
                    Ok(r) => {
                        seen.display_name = r.display_name;
                        seen.email = r.email.map(|e| e.to_lowercase()).or(seen.email);
                        seen.kind = r.kind;
                    }
                    Err(e) => tracing::debug!(error = %e, "account not read"),
                }
            }
            if !fresh
                .iter()
                .any(|f: &SeenAccount| f.account_id == seen.account_id)
            {
                fresh.push(seen);
            }
        }
        if fresh.is_empty() {
            return;
        }
        match self.inner.store.record_accounts(ws, &fresh).await {
            Ok(()) => {
                if let Ok(mut c) = self.inner.seen_cache.lock() {
                    if c.len() > SEEN_CACHE_MAX {
                        c.clear();
                    }
                    for s in fresh {
                        c.insert((ws.clone(), integration, s.account_id.clone()), s);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "accounts not recorded"),
        }
    }

    /// The ledger's actor for a provider account: the principal behind it when the directory
    /// knows one ("Alice Smith", acting in Jira, the account kept as evidence), else the
    /// account itself.
    pub(super) async fn account_actor(
        &self,
        loaded: &Loaded,
        a: &RemoteActor,
    ) -> Result<Actor, Error> {
        let provider = loaded.record.provider.as_str();
        let key = (
            loaded.record.workspace_id.clone(),
            loaded.record.id,
            a.account_id.clone(),
        );
        let cached = self
            .inner
            .attribution_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            .filter(|(at, _)| at.elapsed() < ATTRIBUTION_TTL)
            .map(|(_, p)| p);
        let person = match cached {
            Some(p) => p,
            None => {
                let p = self
                    .person_for_account(
                        &loaded.record.workspace_id,
                        loaded.record.id,
                        &a.account_id,
                        a.email.as_deref(),
                    )
                    .await?;
                if let Ok(mut c) = self.inner.attribution_cache.lock() {
                    if c.len() > SEEN_CACHE_MAX {
                        c.clear();
                    }
                    c.insert(key, (std::time::Instant::now(), p.clone()));
                }
                p
            }
        };
        let kind_of = |k: PersonKind| match k {
            PersonKind::Human => ActorKind::Human,
            PersonKind::Agent => ActorKind::Agent,
        };
        Ok(match person {
            Some(p) => Actor {
                kind: kind_of(p.kind),
                id: p.principal,
                display_name: Some(p.display_name),
                provider: provider.to_owned(),
                account: Some(a.account_id.clone()),
                on_behalf_of: Vec::new(),
            },
            None => {
                let mut actor = Actor::provider_account(provider, &a.account_id);
                actor.kind = kind_of(a.kind);
                actor.display_name = a.display_name.clone();
                actor
            }
        })
    }
}
