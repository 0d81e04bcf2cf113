//! The people directory in memory: principals by workspace and the accounts seen.

use std::collections::BTreeMap;

use ordonis_core::{AccountRef, Person, SeenAccount, StoreError, WorkspaceId};

/// Principals and seen accounts, per workspace.
#[derive(Debug, Default)]
pub(crate) struct People {
    principals: BTreeMap<(WorkspaceId, String), Person>,
    seen: BTreeMap<(WorkspaceId, AccountRef), SeenAccount>,
}

impl People {
    pub(crate) fn people(&self, ws: &WorkspaceId) -> Vec<Person> {
        self.principals
            .iter()
            .filter(|((w, _), _)| w == ws)
            .map(|(_, p)| p.clone())
            .collect()
    }

    pub(crate) fn person(&self, ws: &WorkspaceId, principal: &str) -> Option<Person> {
        self.principals
            .get(&(ws.clone(), principal.to_owned()))
            .cloned()
    }

    pub(crate) fn put(&mut self, person: &Person) -> Result<(), StoreError> {
        let ws = &person.workspace_id;
        for a in &person.accounts {
            if let Some(other) = self.with_account(ws, a)
                && other.principal != person.principal
            {
                return Err(StoreError::Conflict(format!(
                    "account {} of integration {} is mapped to {}",
                    a.account_id, a.integration_id, other.principal
                )));
            }
        }
        self.principals
            .insert((ws.clone(), person.principal.clone()), person.clone());
        Ok(())
    }

    pub(crate) fn with_account(&self, ws: &WorkspaceId, account: &AccountRef) -> Option<Person> {
        self.people(ws)
            .into_iter()
            .find(|p| p.accounts.contains(account))
    }

    pub(crate) fn with_email(&self, ws: &WorkspaceId, email: &str) -> Vec<Person> {
        // Stored e-mails are lowercase; so is the one asked for, whatever its spelling.
        let email = email.trim().to_lowercase();
        self.people(ws)
            .into_iter()
            .filter(|p| p.emails.contains(&email))
            .collect()
    }

    pub(crate) fn record(&mut self, ws: &WorkspaceId, accounts: &[SeenAccount]) {
        for a in accounts {
            let key = AccountRef {
                integration_id: a.integration_id,
                account_id: a.account_id.clone(),
            };
            let row = self
                .seen
                .entry((ws.clone(), key))
                .or_insert_with(|| a.clone());
            if a.display_name.is_some() {
                row.display_name.clone_from(&a.display_name);
            }
            if a.email.is_some() {
                row.email.clone_from(&a.email);
            }
            row.kind = a.kind;
        }
    }

    pub(crate) fn seen(&self, ws: &WorkspaceId) -> Vec<SeenAccount> {
        self.seen
            .iter()
            .filter(|((w, _), _)| w == ws)
            .map(|(_, a)| a.clone())
            .collect()
    }

    pub(crate) fn seen_one(&self, ws: &WorkspaceId, account: &AccountRef) -> Option<SeenAccount> {
        self.seen.get(&(ws.clone(), account.clone())).cloned()
    }
}
