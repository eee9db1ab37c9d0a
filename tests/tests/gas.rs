//! Gas and bytecode-size snapshot (insta JSON), reviewed on every contract change.
//!
//! Figures are what a transaction's receipt reports (intrinsic + calldata + execution - refund).
//! Each scenario runs after one warm-up job, so one-time costs of a brand-new chain (a tenant's
//! first permit nonce, the market's first token balance) are not counted; a provider's credit is
//! withdrawn after each job, so the close pays for re-creating it, as a provider that withdraws
//! after every job would.
//!
//! `lifecycle_total` is the full single-job flow on the cheap path the design is built around:
//! create with permit, one signed (off-chain) bid awarded by a keeper, close by the tenant (which
//! settles), provider withdraw. `lifecycle_total_onchain_bid` is the same with an on-chain bid.

use std::collections::BTreeMap;

use alloy::primitives::{B256, U256};
use gridlease_bindings::Market;
use gridlease_tests::fixture::*;

/// Gas of `MatmulProofHarness.checkTx` proving a flipped element of a 64 x k x 64 product.
fn matmul_check_gas(s: &mut Suite, k: u32) -> u64 {
    use gridlease_bindings::{MatmulProof::Job, MatmulProofHarness};
    use gridlease_core::matmul::{Matmul, localize, multiply};
    let job = Matmul {
        seed: B256::repeat_byte(0x5e),
        m: 64,
        k,
        n: 64,
    };
    let mut c = multiply(&job.a(), &job.bt(), 64, k as usize, 64, 2);
    c[64 * 37 + 21] ^= 1 << 9;
    let root = gridlease_core::matmul::commit(&c).root();
    let f = localize(&job, &c, B256::repeat_byte(1)).expect("the flip is found");
    let me = s.keeper.address;
    let h = s.chain.deploy(me, MatmulProofHarness::BYTECODE.clone());
    let call = MatmulProofHarness::checkTxCall {
        job: Job {
            seed: job.seed,
            m: job.m,
            k: job.k,
            n: job.n,
        },
        root,
        i: U256::from(f.i),
        j: U256::from(f.j),
        leaf: f.leaf.into(),
        proof: f.proof,
    };
    s.chain.send(me, h, call).expect_success().gas_used
}

/// (heartbeat, settle of one service lease, reportStale, proveStaleHeartbeat) gas.
fn heartbeat_gas(s: &mut Suite) -> (u64, u64, u64, u64) {
    use gridlease_bindings::{Results, Staking};
    let (op, staking, results, keeper, tenant) = (
        s.operator(3),
        s.staking,
        s.results,
        s.keeper.address,
        s.tenant(3),
    );
    s.chain
        .send(op, staking, Staking::heartbeatCall {})
        .expect_success();
    s.chain.warp(60);
    let beat = s
        .chain
        .send(op, staking, Staking::heartbeatCall {})
        .expect_success()
        .gas_used;
    let mut p = s.order(10 * USDC, PRICE * 2);
    (p.jobKind, p.instant, p.salt) = (2, true, B256::repeat_byte(0xb1));
    let id = s.create(3, p.clone());
    s.bid(3, id, PRICE).expect_success();
    s.chain.warp(60);
    s.settle(keeper, vec![id]).expect_success();
    s.chain.warp(60);
    let settle = s.settle(keeper, vec![id]).expect_success().gas_used;
    s.chain.warp(3_000);
    let call = Results::reportStaleCall {
        leaseId: id,
        tenant,
        terms: p.clone().into(),
    };
    let report = s
        .chain
        .send(keeper, results, call)
        .expect_success()
        .gas_used;
    s.chain.warp(STALE_GRACE);
    let call = Results::proveStaleHeartbeatCall {
        leaseId: id,
        tenant,
        terms: p.into(),
    };
    let stale = s
        .chain
        .send(keeper, results, call)
        .expect_success()
        .gas_used;
    (beat, settle, report, stale)
}

/// (acknowledge, proveNoShow, proveMissedDeadline) gas, each on its own fresh lease.
fn liveness_gas(s: &mut Suite) -> (u64, u64, u64) {
    use gridlease_bindings::Results;
    let keeper = s.keeper.address;
    let tenant = s.tenant(2);
    let lease = |s: &mut Suite, salt: u8| {
        let mut params = s.order(10 * USDC, PRICE * 2);
        params.salt = B256::repeat_byte(salt);
        (s.lease_with(2, 2, params.clone()), params)
    };
    let results = s.results;
    let op = s.operator(2);
    let (a, pa) = lease(s, 0xa1);
    let ack = Results::acknowledgeCall {
        leaseId: a,
        tenant,
        terms: pa.into(),
    };
    let ack = s.chain.send(op, results, ack).expect_success().gas_used;
    let (b, pb) = lease(s, 0xa2);
    s.chain.warp(START_WINDOW + 1);
    let call = Results::proveNoShowCall {
        leaseId: b,
        tenant,
        terms: pb.into(),
    };
    let no_show = s
        .chain
        .send(keeper, results, call)
        .expect_success()
        .gas_used;
    let (c, pc) = lease(s, 0xa3);
    s.chain.warp(3_600);
    let call = Results::proveMissedDeadlineCall {
        leaseId: c,
        tenant,
        terms: pc.into(),
    };
    let missed = s
        .chain
        .send(keeper, results, call)
        .expect_success()
        .gas_used;
    (ack, no_show, missed)
}

/// (postResult gas, fraud proof gas) for a wrong 64 x k x 64 result on a running lease; `data`:
/// the inputs are data (`proveMatmulDataFraud`), else seeded (`proveMatmulFraud`).
fn prove_fraud_gas(s: &mut Suite, k: u32, data: bool) -> (u64, u64) {
    use alloy::primitives::aliases::U96;
    use gridlease_bindings::{Results, results::MatmulProof::Job};
    use gridlease_core::matmul::{Matmul, MatmulData, commit, localize, multiply};
    let job = Matmul {
        seed: B256::repeat_byte(0x77),
        m: 64,
        k,
        n: 64,
    };
    let b: Vec<u8> = (0..k * 64)
        .map(|x| (x.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let a: Vec<u8> = job.a().iter().map(|&x| x as u8).collect();
    let d = MatmulData::from_row_major(64, k, 64, a, &b).expect("shape");
    let mut params = s.order(10 * USDC, PRICE * 2);
    params.specHash = if data { d.spec_hash() } else { job.spec_hash() };
    params.jobKind = 1;
    params.salt = B256::from(U256::from(k + u32::from(data)));
    params.collateral = U96::from(100 * USDC);
    let id = s.lease_with(1, 1, params.clone());
    let keeper = s.keeper.address;
    let (a, bt) = if data {
        (d.a.clone(), d.bt.clone())
    } else {
        (job.a(), job.bt())
    };
    let mut c = multiply(&a, &bt, 64, k as usize, 64, 2);
    c[64 * 40 + 2] ^= 1 << 20;
    let results = s.results;
    let op = s.operator(1);
    let post = s
        .chain
        .send(
            op,
            results,
            Results::postResultCall {
                leaseId: id,
                root: commit(&c).root(),
                uri: "https://p1.example/r".into(),
                metaHash: B256::repeat_byte(1),
            },
        )
        .expect_success()
        .gas_used;
    s.chain.warp(60);
    let tenant = s.tenant(1);
    if data {
        let f = localize(&d, &c, B256::repeat_byte(3)).expect("found");
        let call = data_fraud_call(id, tenant, params, &d, &f);
        let prove = s.chain.send(keeper, results, call).expect_success();
        return (post, prove.gas_used);
    }
    let f = localize(&job, &c, B256::repeat_byte(3)).expect("found");
    let call = Results::proveMatmulFraudCall {
        leaseId: id,
        tenant,
        terms: params.into(),
        job: Job {
            seed: job.seed,
            m: job.m,
            k: job.k,
            n: job.n,
        },
        i: U256::from(f.i),
        j: U256::from(f.j),
        leaf: f.leaf.into(),
        proof: f.proof,
    };
    let prove = s
        .chain
        .send(keeper, results, call)
        .expect_success()
        .gas_used;
    (post, prove)
}

struct Probe {
    s: Suite,
    salt: u64,
}

impl Probe {
    fn new() -> Self {
        let mut s = Suite::new();
        for i in 0..10 {
            s.register(i, 100_000 * USDC);
        }
        let mut p = Self { s, salt: 1_000 };
        // Warm-up job: first permit nonce, first market balance, first credits.
        let id = p.order(false, true);
        p.s.chain.warp(601);
        let k = p.s.keeper.address;
        let bid = p.s.signed_bid(0, id, PRICE);
        p.s.award(k, id, vec![bid]).expect_success();
        p.s.chain.warp(60);
        let t = p.s.tenant(0);
        p.s.close(t, id).expect_success();
        p.withdraw();
        p
    }

    fn params(&mut self, instant: bool) -> gridlease_bindings::IMarket::OrderParams {
        self.salt += 1;
        let mut params = self.s.order(10 * USDC, PRICE * 2);
        params.salt = B256::from(U256::from(self.salt));
        params.instant = instant;
        params
    }

    /// Create an order; returns its id.
    fn order(&mut self, instant: bool, permit: bool) -> B256 {
        let params = self.params(instant);
        if permit {
            self.s.create_with_permit(0, params).expect_success();
            self.s.last_order_id
        } else {
            self.s.create(0, params)
        }
    }

    fn withdraw(&mut self) -> u64 {
        let (owner, m, token) = (self.s.provider(0), self.s.market, self.s.token);
        self.s
            .chain
            .send(owner, m, Market::withdrawCall { token, to: owner })
            .expect_success()
            .gas_used
    }
}

#[test]
fn gas_snapshot() {
    let mut g: BTreeMap<&str, u64> = BTreeMap::new();
    let mut p = Probe::new();
    let k = p.s.keeper.address;
    let t = p.s.tenant(0);

    // Create, approve path (the approve transaction itself is not counted) and permit path.
    let params = p.params(false);
    let (tok, m) = (p.s.token, p.s.market);
    p.s.approve(tok, t, m, 10 * USDC);
    g.insert(
        "create_order_approve",
        p.s.chain
            .send(t, m, Market::createOrderCall { p: params })
            .expect_success()
            .gas_used,
    );
    let params = p.params(false);
    let permit = p.s.create_with_permit(0, params).expect_success().gas_used;
    g.insert("create_order_permit", permit);
    let id = p.s.last_order_id;

    // Lifecycle, on-chain bid path.
    let bid = p.s.bid(0, id, PRICE).expect_success().gas_used;
    g.insert("bid_onchain", bid);
    p.s.chain.warp(601);
    let award = p.s.award(k, id, vec![]).expect_success().gas_used;
    g.insert("award_1_bid", award);
    p.s.chain.warp(1_800);
    let close = p.s.close(t, id).expect_success().gas_used;
    g.insert("close_by_tenant", close);
    let withdraw = p.withdraw();
    g.insert("withdraw", withdraw);
    g.insert(
        "lifecycle_total_onchain_bid",
        permit + bid + award + close + withdraw,
    );

    // Lifecycle, signed bid path.
    let params = p.params(false);
    let create = p.s.create_with_permit(0, params).expect_success().gas_used;
    let id2 = p.s.last_order_id;
    p.s.chain.warp(601);
    let signed = p.s.signed_bid(1, id2, PRICE);
    let award_signed = p.s.award(k, id2, vec![signed]).expect_success().gas_used;
    g.insert("award_signed_bid", award_signed);
    p.s.chain.warp(1_800);
    let close = p.s.close(t, id2).expect_success().gas_used;
    let (o1, tok) = (p.s.provider(1), p.s.token);
    let withdraw =
        p.s.chain
            .send(o1, m, Market::withdrawCall { token: tok, to: o1 })
            .expect_success()
            .gas_used;
    println!("signed path: create {create} award {award_signed} close {close} withdraw {withdraw}");
    g.insert("lifecycle_total", create + award_signed + close + withdraw);

    // Award with 10 on-chain bids: the same cost as one (AUC-08).
    let id = p.order(false, true);
    for i in 0..10u128 {
        p.s.bid(i as usize, id, PRICE - i).expect_success();
    }
    p.s.chain.warp(601);
    g.insert(
        "award_10_bids",
        p.s.award(k, id, vec![]).expect_success().gas_used,
    );

    // Instant order: the bid is the award.
    let instant = p.order(true, true);
    g.insert(
        "bid_instant_award",
        p.s.bid(2, instant, PRICE).expect_success().gas_used,
    );

    // Settle one lease, then a batch of 100 leases of one provider, by a keeper.
    p.s.chain.warp(60);
    g.insert(
        "settle_1_lease",
        p.s.settle(k, vec![instant]).expect_success().gas_used,
    );
    let mut ids = Vec::new();
    for _ in 0..100 {
        let id = p.order(true, false);
        p.s.bid(3, id, PRICE).expect_success();
        ids.push(id);
    }
    p.s.chain.warp(60);
    p.s.settle(k, ids.clone()).expect_success();
    p.s.chain.warp(60);
    let batch = p.s.settle(k, ids.clone()).expect_success().gas_used;
    g.insert("settle_batch_100", batch);
    g.insert("settle_batch_100_per_lease", batch / 100);
    // Closing an expired lease by a keeper.
    p.s.chain.warp(3_600);
    g.insert(
        "close_expired_by_keeper",
        p.s.close(k, ids[0]).expect_success().gas_used,
    );

    // One element of a matmul_i8 result checked on chain (Merkle proof + O(k) recompute), the
    // core of the fraud proof, at k = 1,024 and 4,096 on a 64 x 64 result.
    g.insert("matmul_check_k1024", matmul_check_gas(&mut p.s, 1_024));
    g.insert("matmul_check_k4096", matmul_check_gas(&mut p.s, 4_096));
    // The whole fraud proof: terms and job checked, element recomputed, lease closed as Faulted,
    // escrow refunded, collateral slashed and split.
    let (post, k1024) = prove_fraud_gas(&mut p.s, 1_024, false);
    g.insert("post_result", post);
    g.insert("prove_matmul_fraud_k1024", k1024);
    g.insert(
        "prove_matmul_fraud_k4096",
        prove_fraud_gas(&mut p.s, 4_096, false).1,
    );
    // The same with data inputs: the row of A and column of B travel in calldata with their
    // Merkle proofs.
    g.insert(
        "prove_matmul_data_fraud_k1024",
        prove_fraud_gas(&mut p.s, 1_024, true).1,
    );
    g.insert(
        "prove_matmul_data_fraud_k4096",
        prove_fraud_gas(&mut p.s, 4_096, true).1,
    );
    let (beat, settle_service, report, stale) = heartbeat_gas(&mut p.s);
    g.insert("heartbeat", beat);
    g.insert("settle_1_service_lease", settle_service);
    g.insert("report_stale", report);
    g.insert("prove_stale_heartbeat", stale);
    let (ack, no_show, missed) = liveness_gas(&mut p.s);
    g.insert("acknowledge", ack);
    g.insert("prove_no_show", no_show);
    g.insert("prove_missed_deadline", missed);

    // Bytecode sizes (EIP-170 limit 24,576).
    let (staking, market, results) = (p.s.staking, p.s.market, p.s.results);
    g.insert("bytecode_results", p.s.chain.code_size(results) as u64);
    g.insert("bytecode_staking", p.s.chain.code_size(staking) as u64);
    g.insert("bytecode_market", p.s.chain.code_size(market) as u64);

    println!("{}", serde_json::to_string_pretty(&g).expect("json"));
    insta::assert_json_snapshot!("gas", g);
}
