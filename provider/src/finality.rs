//! The finality hold (OFF-02): after a reorg deeper than `chain.confirmations`, no job starts and
//! no tenant's result is released until the blocks the reorg replaced are that deep again.

use std::sync::atomic::Ordering::Relaxed;

use crate::shared::Shared;

/// After a reorg deeper than `chain.confirmations` (OFF-02): hold what needs finality (a job's
/// start, releasing a tenant's result) until the current head is itself `confirmations` deep, so
/// the blocks the reorg replaced are buried at least as deep as the operator asked before anything
/// irreversible happens on them. Returns the block the hold lasts until.
pub(crate) fn hold_finality(s: &Shared) -> u64 {
    let head = s.metrics.head.load(Relaxed);
    let until = hold_until(head, s.cfg.confirmations);
    s.metrics.finality_hold.fetch_max(until, Relaxed);
    until
}

/// The first block at which a hold set with the head at `head` ends.
fn hold_until(head: u64, confirmations: u64) -> u64 {
    head + confirmations.max(1)
}

/// The block a finality hold lasts until, while one is on (OFF-02).
pub(crate) fn finality_held(s: &Shared) -> Option<u64> {
    held(
        s.metrics.finality_hold.load(Relaxed),
        s.metrics.head.load(Relaxed),
    )
}

pub(crate) fn held(until: u64, head: u64) -> Option<u64> {
    (until != 0 && head < until).then_some(until)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finality_hold_lasts_until_the_head_is_confirmations_past_the_reorg() {
        assert_eq!(hold_until(100, 2), 102);
        // With no confirmations configured, one new block on top still ends it.
        assert_eq!(hold_until(100, 0), 101);
        assert_eq!(held(0, 5), None, "never set");
        assert_eq!(held(102, 100), Some(102));
        assert_eq!(held(102, 101), Some(102));
        assert_eq!(held(102, 102), None);
    }
}
