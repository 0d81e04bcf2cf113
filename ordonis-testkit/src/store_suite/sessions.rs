//! Store-suite cases for agent sessions: written with their unit of work or not at all,
//! fenced by their revision, listed per task oldest first, and found idle by the stale sweep
//! across workspaces.

use std::sync::Arc;

use ordonis_core::store::{Store, UnitOfWork};
use ordonis_core::{
    Actor, ActorKind, AgentSession, Principal, SessionId, SessionState, SessionWrite, StoreError,
    Task,
};
use time::{Duration, OffsetDateTime};

use super::fixtures::*;

fn session(task: &Task, at_s: i64, state: SessionState) -> AgentSession {
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000 + at_s)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    AgentSession {
        id: SessionId::new(),
        workspace_id: task.workspace_id.clone(),
        task_id: task.id,
        revision: 1,
        agent: Actor::agent(
            "agt_1",
            vec![Principal {
                kind: ActorKind::Human,
                id: "usr_1".into(),
                grant: None,
                display_name: None,
            }],
        ),
        state,
        integration_id: None,
        created_at: at,
        updated_at: at,
        last_activity_at: at,
        activities: Vec::new(),
        artifacts: Vec::new(),
        links: Vec::new(),
    }
}

async fn write(
    store: &dyn Store,
    s: &AgentSession,
    expected: Option<u64>,
) -> Result<(), StoreError> {
    let mut uow = UnitOfWork::new(s.workspace_id.clone());
    uow.sessions.push(SessionWrite {
        session: s.clone(),
        expected_revision: expected,
    });
    store.commit(uow).await.map(|_| ())
}

/// Sessions round-trip whole, list per task oldest first, and updates are fenced by their
/// revision (a stale one writes nothing).
pub async fn sessions_round_trip_and_are_fenced(store: Arc<dyn Store>) {
    let w = ws("sessions");
    let task = insert_task(&*store, &w).await;
    let later = session(&task, 20, SessionState::Active);
    let earlier = session(&task, 10, SessionState::Complete);
    for s in [&later, &earlier] {
        write(&*store, s, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        store
            .task_sessions(&w, task.id)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        vec![earlier.clone(), later.clone()]
    );
    let mut moved = later.clone();
    moved.state = SessionState::AwaitingInput;
    moved.revision = 2;
    let stale = write(&*store, &moved, Some(5)).await.err();
    assert!(matches!(stale, Some(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        store.session(later.id).await.unwrap_or_default(),
        Some(later.clone())
    );
    write(&*store, &moved, Some(1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store.session(later.id).await.unwrap_or_default(),
        Some(moved)
    );
    let again = write(&*store, &earlier, None).await.err();
    assert!(matches!(again, Some(StoreError::Conflict(_))), "{again:?}");
    assert!(
        store
            .task_sessions(&ws("elsewhere"), task.id)
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

/// The stale sweep finds active and waiting sessions idle since before the cutoff, in every
/// workspace, oldest activity first, and none that are done or recent.
pub async fn idle_sessions_are_found_across_workspaces(store: Arc<dyn Store>) {
    let (a, b) = (ws("idle-a"), ws("idle-b"));
    let ta = insert_task(&*store, &a).await;
    let tb = insert_task(&*store, &b).await;
    let old_waiting = session(&tb, 5, SessionState::AwaitingInput);
    let old_active = session(&ta, 10, SessionState::Active);
    let old_done = session(&ta, 1, SessionState::Complete);
    let recent = session(&ta, 500, SessionState::Active);
    for s in [&old_active, &old_waiting, &old_done, &recent] {
        write(&*store, s, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let cutoff = old_active.last_activity_at + Duration::seconds(100);
    let idle = store
        .idle_sessions(cutoff, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<SessionId> = idle.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![old_waiting.id, old_active.id]);
    let one = store.idle_sessions(cutoff, 1).await.unwrap_or_default();
    assert_eq!(one.len(), 1);
}
