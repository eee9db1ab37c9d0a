//! Results, protocol v2: acknowledgements, result commitments (1 KiB leaves), the hold, wrong and
//! malformed results, data availability, and the liveness faults, end to end in revm.

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::{self, MarketErrors},
    Results::{self, ResultsErrors},
    results::{IMarket::OrderParams as ResultsOrder, MatmulProof::Job},
};
use gridlease_tests::{assert_revert, evm::Receipt, fixture::*};
use gridlease_workload::{
    matmul::{FraudProof, Matmul, MatmulData, encode, localize, multiply, proof_for},
    merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, leaf_hash, result_chunk, zero_hash},
};

const COLLATERAL: u128 = 100 * USDC;
/// Token units a lease at `PRICE` earns per second.
const PER_SEC: u128 = PRICE / 1_000_000_000_000;

struct Lease {
    id: B256,
    params: OrderParams,
    job: Matmul,
    /// The true product.
    c: Vec<i32>,
}

/// A 40 x k x 30 product: 1,200 elements, 4,800 bytes, five 1 KiB leaves (a padded tree of 8).
fn job(k: u32) -> Matmul {
    Matmul {
        seed: B256::repeat_byte(0x33),
        m: 40,
        k,
        n: 30,
    }
}

/// Tenant 0 orders `job`, provider 0 wins it (keeper-awarded: not acknowledged).
fn lease(s: &mut Suite, job: Matmul) -> Lease {
    let mut params = s.fresh_order(10 * USDC, PRICE * 2);
    params.specHash = job.spec_hash();
    params.jobKind = 1;
    params.collateral = U96::from(COLLATERAL);
    let id = s.lease_with(0, 0, params.clone());
    let c = multiply(
        &job.a(),
        &job.bt(),
        job.m as usize,
        job.k as usize,
        job.n as usize,
        2,
    );
    Lease { id, params, job, c }
}

fn fraud_call(
    l: &Lease,
    tenant: Address,
    posted: Commitment,
    p: Option<&FraudProof>,
) -> Results::proveMatmulFraudCall {
    Results::proveMatmulFraudCall {
        leaseId: l.id,
        tenant,
        terms: ResultsOrder::from(l.params.clone()),
        job: Job {
            seed: l.job.seed,
            m: l.job.m,
            k: l.job.k,
            n: l.job.n,
        },
        root: posted.root,
        size: posted.size,
        i: U256::from(p.map_or(0, |p| p.i)),
        j: U256::from(p.map_or(0, |p| p.j)),
        leaf: Bytes::from(p.map(|p| p.leaf.clone()).unwrap_or_default()),
        proof: p.map(|p| p.proof.clone()).unwrap_or_default(),
    }
}

fn send_results<C: alloy::sol_types::SolCall>(s: &mut Suite, from: Address, call: C) -> Receipt {
    let results = s.results;
    s.chain.send(from, results, call)
}

/// A wrong product: one element of row 33 changed.
fn cheat(l: &Lease) -> (Vec<i32>, FraudProof) {
    let mut bad = l.c.clone();
    bad[33 * 30 + 7] += 5;
    let f = localize(&l.job, &bad, B256::repeat_byte(9)).expect("the fraud is found");
    (bad, f)
}

fn closed(r: &Receipt) -> Market::LeaseClosed {
    r.event::<Market::LeaseClosed>()
}

fn data5() -> Vec<u8> {
    (0..5 * RESULT_LEAF_BYTES)
        .map(|x| (x * 7 + 1) as u8)
        .collect()
}

mod availability;
mod data_inputs;
mod liveness;
mod malformed;
mod posting;
mod wrong_results;
