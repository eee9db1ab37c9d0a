//! The keeper's counters and gauges, rendered as Prometheus text by [`crate::http`].

use std::{
    collections::BTreeMap,
    sync::{Mutex, atomic::AtomicU64},
};

/// Counters and gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Work items planned, by action (every poll that plans one counts it).
    pub planned: Mutex<BTreeMap<String, u64>>,
    /// Work items found (taken up after the stagger), by action.
    pub found: Mutex<BTreeMap<String, u64>>,
    /// Transactions mined successfully, by action.
    pub done: Mutex<BTreeMap<String, u64>>,
    /// Work skipped, by reason.
    pub skipped: Mutex<BTreeMap<String, u64>>,
    /// Earned, by token address (token units).
    pub earned: Mutex<BTreeMap<String, u128>>,
    /// Gas paid, wei.
    pub gas_spent_wei: Mutex<u128>,
    /// RPC errors.
    pub rpc_errors: AtomicU64,
    /// Latest block read.
    pub head: AtomicU64,
    /// Unix time of the last good poll.
    pub last_poll: AtomicU64,
    /// Polls done.
    pub polls: AtomicU64,
    /// Running leases tracked.
    pub leases: AtomicU64,
    /// Closed leases tracked while their collateral is held (faults still provable).
    pub held: AtomicU64,
    /// Data-availability challenges this keeper bonded (mined).
    pub bonds_posted: AtomicU64,
    /// Of them, answered: the provider held its data, and the bond went to the answerer.
    pub bonds_lost: AtomicU64,
    /// Orders tracked.
    pub orders: AtomicU64,
    /// Transactions in flight.
    pub in_flight: AtomicU64,
    /// `GET /bids/<order>` requests to provider nodes that failed (unreachable, timed out, bad
    /// answer); skipped.
    pub bid_fetch_failures: AtomicU64,
}

fn bump<K: Ord + From<String>>(m: &Mutex<BTreeMap<K, u64>>, key: &str) {
    if let Ok(mut m) = m.lock() {
        *m.entry(K::from(key.to_owned())).or_default() += 1;
    }
}

impl Metrics {
    /// Count planned work.
    pub fn planned(&self, action: &str) {
        bump(&self.planned, action);
    }
    /// Count found work.
    pub fn found(&self, action: &str) {
        bump(&self.found, action);
    }
    /// Count a mined transaction.
    pub fn done(&self, action: &str) {
        bump(&self.done, action);
    }
    /// Count skipped work.
    pub fn skip(&self, reason: &str) {
        bump(&self.skipped, reason);
    }
    /// Book earnings and gas.
    pub fn book(&self, token: Option<alloy::primitives::Address>, earned: u128, gas: u128) {
        if let (Some(t), Ok(mut m)) = (token, self.earned.lock())
            && earned > 0
        {
            *m.entry(t.to_string()).or_default() += earned;
        }
        if let Ok(mut g) = self.gas_spent_wei.lock() {
            *g += gas;
        }
    }

    /// All counters as (name, value) rows for the state database (`status` reads them).
    pub fn rows(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (prefix, m) in [
            ("planned", &self.planned),
            ("found", &self.found),
            ("done", &self.done),
            ("skipped", &self.skipped),
        ] {
            if let Ok(m) = m.lock() {
                out.extend(m.iter().map(|(k, v)| (format!("{prefix}.{k}"), *v)));
            }
        }
        out
    }
}
