//! The store conformance suite: one `pub async fn` per case over a fresh store, and the
//! [`store_suite!`](macro@crate::store_suite) macro that expands to one `#[tokio::test]` per case.
//! The cases are grouped by concern (`queues`, `units`, `ledger`, `api`, `batch`,
//! `sync_jobs`, `comments`, `sessions`, `people`, `console_sessions`, `paging`, `task_query`);
//! what they share to set up is in `fixtures`.
//!
//! ```text
//! // in a store crate's tests/suite.rs
//! async fn fresh() -> Option<std::sync::Arc<dyn ordonis_core::Store>> { /* ... */ }
//! ordonis_testkit::store_suite!(fresh);
//! ```

/// Expands to one `#[tokio::test]` per suite case. `$factory` is an async fn returning
/// `Option<Arc<dyn Store>>` (a fresh, empty store; `None` skips, e.g. no database configured).
#[macro_export]
macro_rules! store_suite {
    ($factory:path) => {
        $crate::store_suite!(@cases $factory;
            dedupe_on_delivery_id, dedupe_on_body_hash, initial_states_kept,
            no_row_claimed_twice_by_8_claimers, lease_expiry_makes_row_claimable,
            expired_lease_cannot_complete, dead_letter_and_replay, deferred_retry_does_not_count,
            per_object_serialization, failed_unit_of_work_leaves_nothing,
            mapping_points_to_one_task, outbox_coalescing, workspaces_are_isolated,
            secrets_stored_as_ciphertext, ledger_indexes_gapless_under_concurrency,
            paused_integration_is_skipped, checkpoints_saved_and_latest,
            cosignatures_and_tile_hashes_per_workspace,
            engine_changes_verify_offline,
            completion_from_another_workspace_is_lease_lost, replay_and_give_up_refusals,
            outbox_coalesces_per_integration, id_lookups_name_their_workspace,
            tasks_are_paged_in_id_order, jobs_list_across_workspaces,
            integration_update_is_partial, deliveries_with_nul_are_stored,
            integration_state_and_change_commit, a_unit_with_many_entries_appends_them_all_in_order,
            batch_with_failing_unit_in_the_middle, batch_with_lease_lost_mid_batch,
            batches_racing_for_one_workspace, batch_of_two_workspaces_is_refused,
            batch_refuses_an_earlier_attempt_of_the_same_owner, mapped_tasks_answer_per_key,
            key_check_first_writer_wins,
            sync_job_is_one_per_integration, sync_job_claimed_once_by_8_claimers,
            sync_job_resumes_from_saved_cursor, sync_job_finish_rearms_and_counts_repairs,
            sync_job_failed_and_paused_wait,
            comments_round_trip_oldest_first, comment_updates_are_fenced_by_revision,
            one_row_per_provider_comment, sessions_round_trip_and_are_fenced,
            idle_sessions_are_found_across_workspaces,
            people_round_trip_sorted_and_replaced, an_account_maps_to_one_principal,
            people_with_email_lists_every_holder, sightings_merge_into_seen_accounts,
            seen_accounts_are_sorted, people_are_isolated_by_workspace,
            unmapping_removes_only_the_named_tasks_mapping, unlink_and_link_in_one_unit,
            console_sessions_round_trip_pruned_and_capped,
            inbox_pages_miss_nothing_while_rows_are_appended, outbox_pages_follow_listing_order,
            task_ledger_pages_by_index,
            task_query_pages_in_stable_order, task_query_walk_survives_changes,
            task_query_filters, task_query_bad_cursor_is_invalid,
            task_query_sync_state_transitions
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $factory().await else {
                    eprintln!("skipped {}: no store available", stringify!($case));
                    return;
                };
                $crate::store_suite::$case(store).await;
            }
        )*
    };
}

mod api;
mod batch;
mod comments;
mod console_sessions;
mod fixtures;
mod ledger;
mod paging;
mod people;
mod queues;
mod sessions;
mod sync_jobs;
mod task_query;
mod units;

pub use crate::ledger_e2e::engine_changes_verify_offline;
pub use api::*;
pub use batch::*;
pub use comments::*;
pub use console_sessions::*;
pub(crate) use fixtures::{claim, insert_task, ws};
pub use fixtures::{draft, event, integration};
pub use ledger::*;
pub use paging::*;
pub use people::*;
pub use queues::*;
pub use sessions::*;
pub use sync_jobs::*;
pub use task_query::*;
pub use units::*;
