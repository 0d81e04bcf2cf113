//! Background work a fake starts after answering (a webhook echo), counted so a test can wait
//! for it to finish instead of sleeping a guessed while.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Counts spawned background sends; [`InFlight::wait_idle`] resolves once none is running.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    running: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Spawns `work`, counted until it completes.
    pub(crate) fn spawn(self: &Arc<Self>, work: impl Future<Output = ()> + Send + 'static) {
        // Counted before the spawn, so a caller that got the fake's answer already sees it.
        self.running.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            work.await;
            me.running.fetch_sub(1, Ordering::SeqCst);
            me.idle.notify_waiters();
        });
    }

    /// Waits until no counted work runs, at most `within`; false on time-out.
    pub(crate) async fn wait_idle(&self, within: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }
}
