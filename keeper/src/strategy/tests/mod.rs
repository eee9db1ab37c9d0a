//! Unit tests of the strategies: each v2 rule on a hand-made view, then properties of whole
//! plans over random views and clocks.

use alloy::primitives::Bytes;
use proptest::prelude::*;

use super::*;
use crate::view::{Challenged, Closed, Order};

const TOKEN: Address = Address::repeat_byte(0x70);
const STAKE: Address = Address::repeat_byte(0x57);
const ME: Address = Address::repeat_byte(0x3e);
const OTHER: Address = Address::repeat_byte(0x0e);
const BOND: u128 = 1_000_000_000_000_000;

fn module() -> ModuleParams {
    ModuleParams {
        address: Address::repeat_byte(0xee),
        start_window: 120,
        challenge_window: 600,
        deadline_grace: 60,
        response_window: 100,
        stale_grace: 60,
        challenge_bond: BOND,
        fault_fee_bps: 500,
        tenant_priority: 0,
    }
}

fn clock(now: u64) -> Clock {
    Clock {
        now,
        fault_horizon: 10_000,
    }
}

fn inputs() -> Inputs {
    Inputs {
        decimals: [(TOKEN, 6)].into(),
        stake_token: STAKE,
        stake_decimals: 6,
        settle_max: 3,
        modules: [(1, module())].into(),
        me: ME,
        ..Default::default()
    }
}

/// A lease started at 1,000 for 3,600 s at 1 token unit (6 decimals) per second, acknowledged.
fn lease(kind: u8) -> Lease {
    Lease {
        tenant: Address::repeat_byte(1),
        provider: Address::repeat_byte(2),
        terms: Bytes::new(),
        token: TOKEN,
        kind,
        module: 1,
        collateral: 1_000_000,
        rate: 1_000_000_000_000,
        start: 1_000,
        end: 4_600,
        keeper_fee_bps: 100,
        settled_at: 1_000,
        escrow: 10_000,
        acknowledged: true,
        result: None,
        stale_since: None,
        challenges: BTreeMap::new(),
        answered: false,
        closed: None,
        checked: None,
        ended: false,
    }
}

fn posted(at: u64) -> Posted {
    Posted {
        root: B256::repeat_byte(7),
        size: 4_096,
        uri: "http://node/results/1".into(),
        at,
    }
}

/// Live since before the leases started, last beat at `at`, 60 s period.
fn live(at: u64) -> Liveness {
    Liveness {
        at,
        period: 60,
        epoch: 1,
        epoch_start: 900,
        prev_start: 0,
        prev_end: 0,
    }
}

fn view(leases: Vec<(u8, Lease)>) -> View {
    let mut v = View::default();
    for (i, l) in leases {
        v.leases.insert(B256::repeat_byte(i), l);
    }
    v
}

fn names(w: &[Work]) -> Vec<&'static str> {
    w.iter().map(|w| w.action.name()).collect()
}

fn id(b: u8) -> B256 {
    B256::repeat_byte(b)
}

fn policy() -> Policy {
    Policy {
        native_price: [(TOKEN, 3_000_000_000), (STAKE, 3_000_000_000)].into(),
        margin_bps: 2_000,
        min_profit: HashMap::new(),
        max_gas_price: 100_000_000_000,
        budget_left: 10u128.pow(18),
        unpaid: ["award".to_owned()].into(),
    }
}

mod decisions;
mod faults;
mod props;
mod settling;
