//! The one run loop of both daemons: a chain poll ([`poll`]) until a signal, then a bounded wait
//! for the work in flight ([`drain`]). Each daemon's tick is its own collect -> decide -> act
//! step (the node: `provider/src/node.rs`; the keeper: `keeper/src/engine.rs`).

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::Backoff;

/// Run `tick` until `stop` is cancelled: at once, then every `backoff`'s base while it succeeds,
/// waiting twice as long after each failure up to its maximum. Each failure goes to `failed`
/// with the wait before the next try (the daemon counts and logs it). A tick is never cut short
/// by `stop`: the loop ends between ticks.
pub async fn poll<E, F, Fut>(
    stop: &CancellationToken,
    mut backoff: Backoff,
    mut tick: F,
    mut failed: impl FnMut(&E, Duration),
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        match tick().await {
            Ok(()) => backoff.succeeded(),
            Err(e) => failed(&e, backoff.failed()),
        }
        wait = backoff.delay();
    }
}

/// Close `tracker` to new work and wait up to `grace` for what it tracks to finish. Returns
/// whether everything finished.
pub async fn drain(tracker: &TaskTracker, grace: Duration) -> bool {
    tracker.close();
    tokio::time::timeout(grace, tracker.wait()).await.is_ok()
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering::Relaxed},
        },
        time::Duration,
    };

    use tokio_util::{sync::CancellationToken, task::TaskTracker};

    use super::{drain, poll};
    use crate::Backoff;

    /// The loop ticks at once, hands each failure its growing wait, recovers, and ends on the
    /// token between ticks.
    #[tokio::test]
    async fn polls_backs_off_recovers_and_stops() {
        let stop = CancellationToken::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let mut waits = Vec::new();
        let (t, s) = (ticks.clone(), stop.clone());
        poll(
            &stop,
            Backoff::new(Duration::from_millis(10), Duration::from_millis(40)),
            move || {
                let n = t.fetch_add(1, Relaxed);
                let s = s.clone();
                async move {
                    if n == 6 {
                        s.cancel();
                    }
                    if (1..=3).contains(&n) { Err(n) } else { Ok(()) }
                }
            },
            |e: &u32, wait| waits.push((*e, wait.as_millis())),
        )
        .await;
        assert_eq!(
            ticks.load(Relaxed),
            7,
            "ticks 0..=6, then the token ends the loop"
        );
        assert_eq!(waits, vec![(1, 20), (2, 40), (3, 40)]);
    }

    #[tokio::test]
    async fn drain_waits_for_tracked_work_up_to_the_grace() {
        let tracker = TaskTracker::new();
        tracker.spawn(tokio::time::sleep(Duration::from_millis(20)));
        assert!(drain(&tracker, Duration::from_secs(5)).await);
        let tracker = TaskTracker::new();
        tracker.spawn(tokio::time::sleep(Duration::from_secs(60)));
        assert!(!drain(&tracker, Duration::from_millis(50)).await);
    }
}
