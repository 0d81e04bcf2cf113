//! The id sweep: what a listing of changes cannot see. A search lists what is in a scope, so
//! an object deleted (or moved out of the scope) whose webhook was lost never shows up in a
//! reconcile. Now and then, and at once after the scope changes, the repair loop lists the
//! scope's ids ([`RepairProvider::list_ids`]) and compares them with the integration's mapped
//! tasks: each mapped object missing from them goes into the inbox as a
//! [`HintKind::Missing`] change, fetched by a worker (a 404 tombstones its task, an object
//! found outside the scope takes it out of scope, as a received deletion or Asana's
//! membership removal do), and each out-of-scope task whose object is listed again comes back.

use std::collections::HashSet;

use time::OffsetDateTime;

use super::{Engine, Loaded};
use crate::error::{Error, ProviderError};
use crate::listing::{IdsRequest, ListMode};
use crate::provider::{ChangeHint, HintKind, RepairProvider};
use crate::store::{SyncStatus, TaskPage};

/// A sweep follows at most this many id pages (5 million Jira issues at 5000 a page): a
/// provider whose cursor never ends cannot hold the step forever.
const MAX_SWEEP_PAGES: usize = 1000;

/// Mapped tasks read per store page.
const TASK_PAGE: usize = 500;

/// Why a sweep runs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SweepCause {
    /// The interval passed (or the integration predates sweeps).
    Due,
    /// The scope is not the one the last sweep covered.
    ScopeChanged,
}

impl Engine {
    /// Whether a sweep is due at the end of a run: never for an integration without a scope;
    /// at once when the scope changed; else every `sweep_every_s` (0: never).
    pub(super) fn sweep_due(
        loaded: &Loaded,
        status: &SyncStatus,
        now: OffsetDateTime,
    ) -> Option<SweepCause> {
        let scope = &loaded.config.scope;
        if scope.is_null() {
            return None;
        }
        let Some(last) = status.sweep.last_at else {
            return Some(SweepCause::Due);
        };
        if &status.sweep.scope != scope {
            return Some(SweepCause::ScopeChanged);
        }
        let every = loaded.config.sync.sweep_every_s;
        let every = time::Duration::seconds(i64::try_from(every).unwrap_or(i64::MAX));
        (loaded.config.sync.sweep_every_s > 0 && now - last >= every).then_some(SweepCause::Due)
    }

    /// Runs a sweep and records it in `status.sweep` (an error too: the sweep is then due
    /// again at the next run's end). The number of objects it stored in the inbox.
    pub(super) async fn sweep(
        &self,
        loaded: &Loaded,
        run: u64,
        status: &mut SyncStatus,
        now: OffsetDateTime,
    ) -> u64 {
        let outcome = match loaded.provider.repair() {
            Some(repair) => self.sweep_ids(loaded, repair, run, now).await,
            None => Ok(None),
        };
        let s = &mut status.sweep;
        match outcome {
            Ok(found) => {
                s.last_at = Some(now);
                s.scope = loaded.config.scope.clone();
                s.found = found.unwrap_or(0);
                s.error = None;
                s.found
            }
            Err(e) => {
                tracing::info!(integration = %loaded.record.id, error = %e, "id sweep failed");
                s.error = Some(e.to_string());
                0
            }
        }
    }

    /// Lists the scope's ids, pages through the mapped tasks, and stores the hints; `None`
    /// when the provider cannot list ids.
    async fn sweep_ids(
        &self,
        loaded: &Loaded,
        repair: &dyn RepairProvider,
        run: u64,
        now: OffsetDateTime,
    ) -> Result<Option<u64>, Error> {
        let mut listed: HashSet<String> = HashSet::new();
        let mut cursor: Option<serde_json::Value> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            if pages > MAX_SWEEP_PAGES {
                return Err(ProviderError::Terminal(format!(
                    "the scope's id listing did not end within {MAX_SWEEP_PAGES} pages"
                ))
                .into());
            }
            let req = IdsRequest {
                scope: &loaded.config.scope,
                cursor: cursor.as_ref(),
                page_size: self.inner.config.sweep_page_size.max(1),
            };
            let Some(page) = repair.list_ids(&loaded.ctx, &req).await? else {
                return Ok(None);
            };
            listed.extend(page.ids);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let at_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let id = loaded.record.id;
        let mut hints = Vec::new();
        let mut after = None;
        loop {
            let tasks = self
                .inner
                .store
                .tasks(
                    &loaded.record.workspace_id,
                    &TaskPage {
                        after,
                        limit: TASK_PAGE,
                    },
                )
                .await?;
            for t in tasks.iter().filter(|t| !t.deleted) {
                let Some(link) = t.external.iter().find(|l| l.integration_id == id) else {
                    continue;
                };
                let kind = match (listed.contains(&link.key.external_id), t.out_of_scope) {
                    (false, false) => HintKind::Missing,
                    // Listed again: fetched, and synced again when it is back in scope.
                    (true, true) => HintKind::Changed,
                    _ => continue,
                };
                hints.push(ChangeHint {
                    key: link.key.clone(),
                    delivery_id: None,
                    kind,
                    // Each sweep's findings are new inbox rows (deduplicated on this time).
                    source_time_ms: Some(at_ms),
                    actor: None,
                    snapshot: None,
                    changes: Vec::new(),
                });
            }
            match tasks.last() {
                Some(last) if tasks.len() >= TASK_PAGE => after = Some(last.id),
                _ => break,
            }
        }
        let stored = self
            .store_hints(loaded, ListMode::Reconcile, run, &hints)
            .await?;
        Ok(Some(stored as u64))
    }
}
