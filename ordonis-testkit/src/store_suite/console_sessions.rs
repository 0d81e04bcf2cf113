//! Console sign-ins: stored by digest, read back, ended, pruned when expired and capped.

use std::sync::Arc;

use ordonis_core::{ConsoleSession, Store};
use time::{Duration, OffsetDateTime};

fn session(n: u8, expires_at: OffsetDateTime) -> ConsoleSession {
    ConsoleSession {
        id_digest: [n; 32],
        token_digest: [0xA0 ^ n; 32],
        expires_at,
    }
}

/// A sign-in is read back by its digest, a sign-out ends it, expired ones are pruned on the
/// next sign-in, and past the cap the ones closest to expiring go first.
pub async fn console_sessions_round_trip_pruned_and_capped(store: Arc<dyn Store>) {
    // Whole seconds: every store keeps at least microseconds.
    let now = OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000);
    let a = session(1, now + Duration::hours(1));
    store
        .put_console_session(&a, now, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .console_session(&a.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(a.clone())
    );
    assert_eq!(
        store
            .console_session(&[9; 32])
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );

    store
        .delete_console_session(&a.id_digest)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .console_session(&a.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    // Ending an unknown sign-in is no error.
    store
        .delete_console_session(&a.id_digest)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Expired by the next sign-in's `now`: pruned.
    let old = session(2, now + Duration::seconds(5));
    store
        .put_console_session(&old, now, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let later = now + Duration::seconds(10);
    let b = session(3, later + Duration::hours(2));
    store
        .put_console_session(&b, later, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .console_session(&old.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    assert_eq!(
        store
            .console_session(&b.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(b.clone())
    );

    // The cap: three live, the two closest to expiring dropped.
    let c = session(4, later + Duration::hours(1));
    let d = session(5, later + Duration::hours(3));
    store
        .put_console_session(&c, later, 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .put_console_session(&d, later, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        store
            .console_session(&c.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    assert_eq!(
        store
            .console_session(&b.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        None
    );
    assert_eq!(
        store
            .console_session(&d.id_digest)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        Some(d)
    );
}
