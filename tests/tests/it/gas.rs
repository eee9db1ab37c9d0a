//! Gas and bytecode-size snapshot (insta JSON), reviewed on every contract change.
//!
//! Figures are what a transaction's receipt reports (intrinsic + calldata + execution - refund).
//! Each scenario runs after one warm-up job, so one-time costs of a brand-new chain (a tenant's
//! first permit nonce, the market's first token balance, a provider's first held tail) are not
//! counted; a provider's credit is withdrawn after each job, so the close pays for re-creating it,
//! as a provider that withdraws after every job would.
//!
//! `lifecycle_total` is the full single-job flow on the cheap path the design is built around,
//! now including the result, since a batch lease without one pays nothing: create with permit,
//! one signed (off-chain) bid on the instant order placed by a keeper (`bidSigned`, which starts
//! the lease), result posted inside the start window (which acknowledges), result accepted by the
//! tenant (which pays), provider withdraw. An auction's signed bid is placed in its window
//! (`bid_signed_auction`) and then awarded (`award_1_bid`): only bids on chain by the window's end
//! can win (AFR-02).
//! `lifecycle_total_acknowledged` is the same for a job that runs past the start window, so its
//! provider acknowledges first (a result after an unacknowledged start window is refused: the
//! no-show stands). `lifecycle_total_onchain_bid` is the on-chain bid path, acknowledged.

use std::collections::BTreeMap;

use alloy::primitives::{B256, U256};
use gridlease_bindings::{Market, MarketAdmin, Results};
use gridlease_tests::fixture::*;
use gridlease_workload::merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, result_chunk};

/// Gas of `MatmulProofHarness.checkTx` proving a flipped element of a 64 x k x 64 product.
fn matmul_check_gas(s: &mut Suite, k: u32) -> u64 {
    use gridlease_bindings::{MatmulProof::Job, MatmulProofHarness};
    use gridlease_workload::matmul::{Matmul, localize, multiply};
    let job = Matmul {
        seed: B256::repeat_byte(0x5e),
        m: 64,
        k,
        n: 64,
    };
    let mut c = multiply(&job.a(), &job.bt(), 64, k as usize, 64, 2);
    c[64 * 37 + 21] ^= 1 << 9;
    let root = gridlease_workload::matmul::commit(&c).root();
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

/// (postResult gas, fraud proof gas) for a wrong 64 x k x 64 result on a running lease; `data`:
/// the inputs are data (`proveMatmulDataFraud`), else seeded (`proveMatmulFraud`).
fn prove_fraud_gas(s: &mut Suite, k: u32, data: bool) -> (u64, u64) {
    use alloy::primitives::aliases::U96;
    use gridlease_bindings::results::MatmulProof::Job;
    use gridlease_workload::matmul::{Matmul, MatmulData, encode, localize, multiply};
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
    let (post, posted) = s.post(1, id, &encode(&c));
    let post = post.expect_success().gas_used;
    s.chain.warp(60);
    let tenant = s.tenant(1);
    let results = s.results;
    if data {
        let f = localize(&d, &c, B256::repeat_byte(3)).expect("found");
        let call = data_fraud_call(id, tenant, params, &d, posted, &f);
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
        root: posted.root,
        size: posted.size,
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
        // Warm-up job: first permit nonce, first market balance, first credits, first held tail.
        let id = p.order(false, true);
        let k = p.s.keeper.address;
        let bid = p.s.signed_bid(0, id, PRICE);
        p.s.bid_signed(k, id, bid).expect_success();
        p.s.chain.warp(601);
        p.s.award(k, id).expect_success();
        p.s.chain.warp(60);
        p.s.post(0, id, b"warm-up").0.expect_success();
        let t = p.s.tenant(0);
        p.s.close(t, id).expect_success();
        p.withdraw(0);
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

    /// A service order from tenant 1 (instant), awarded to provider `i` (which beats first).
    fn service(&mut self, i: usize) -> B256 {
        self.salt += 1;
        let mut params = self.s.order(10 * USDC, PRICE * 2);
        (params.jobKind, params.instant, params.salt) =
            (2, true, B256::from(U256::from(self.salt)));
        let id = self.s.create(1, params);
        self.s.bid(i, id, PRICE).expect_success();
        id
    }

    fn withdraw(&mut self, i: usize) -> u64 {
        let (owner, m, token) = (self.s.provider(i), self.s.market, self.s.token);
        self.s
            .chain
            .send(owner, m, Market::withdrawCall { token, to: owner })
            .expect_success()
            .gas_used
    }
}

/// A result of `leaves` full leaves, deterministic.
fn result_bytes(leaves: usize) -> Vec<u8> {
    (0..leaves * RESULT_LEAF_BYTES)
        .map(|x| (x.wrapping_mul(31) ^ (x >> 7)) as u8)
        .collect()
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

    // Lifecycle, on-chain bid path: bid, award, acknowledge, result, acceptance, withdraw.
    let bid = p.s.bid(0, id, PRICE).expect_success().gas_used;
    g.insert("bid_onchain", bid);
    p.s.chain.warp(601);
    let award = p.s.award(k, id).expect_success().gas_used;
    g.insert("award_1_bid", award);
    let ack = p.s.ack(0, id).expect_success().gas_used;
    g.insert("acknowledge", ack);
    p.s.chain.warp(1_800);
    let (post, _) = p.s.post(0, id, &result_bytes(4));
    let post = post.expect_success().gas_used;
    g.insert("post_result", post);
    let accept = p.s.close(t, id).expect_success().gas_used;
    g.insert("accept_result", accept);
    let withdraw = p.withdraw(0);
    g.insert("withdraw", withdraw);
    g.insert(
        "lifecycle_total_onchain_bid",
        permit + bid + award + ack + post + accept + withdraw,
    );

    // Lifecycle, signed bid path: a provider's signed quote on an instant order, placed by the
    // keeper (`bidSigned` starts the lease); a 500 s job, so the result acknowledges.
    let params = p.params(true);
    let create = p.s.create_with_permit(0, params).expect_success().gas_used;
    let id2 = p.s.last_order_id;
    let signed = p.s.signed_bid(1, id2, PRICE);
    let award_signed = p.s.bid_signed(k, id2, signed).expect_success().gas_used;
    g.insert("bid_signed_instant", award_signed);
    p.s.chain.warp(START_WINDOW - 100);
    let post =
        p.s.post(1, id2, &result_bytes(4))
            .0
            .expect_success()
            .gas_used;
    let accept = p.s.close(t, id2).expect_success().gas_used;
    let withdraw = p.withdraw(1);
    println!(
        "signed path: create {create} award {award_signed} post {post} accept {accept} withdraw {withdraw}"
    );
    g.insert(
        "lifecycle_total",
        create + award_signed + post + accept + withdraw,
    );
    g.insert(
        "lifecycle_total_acknowledged",
        create + award_signed + ack + post + accept + withdraw,
    );

    // An auction's signed bid, placed in the window by the keeper (the award then costs
    // `award_1_bid`): what AFR-02 adds to the signed auction path.
    let id5 = p.order(false, true);
    let b = p.s.signed_bid(3, id5, PRICE);
    g.insert(
        "bid_signed_auction",
        p.s.bid_signed(k, id5, b).expect_success().gas_used,
    );

    // A held result completed by a keeper after its challenge window.
    let id3 = p.order(true, true);
    p.s.bid(2, id3, PRICE).expect_success();
    p.s.chain.warp(600);
    p.s.post(2, id3, &result_bytes(1)).0.expect_success();
    p.s.chain.warp(CHALLENGE_WINDOW + 1);
    g.insert(
        "complete_by_keeper",
        p.s.close(k, id3).expect_success().gas_used,
    );

    // The tenant ends a running, acknowledged batch lease (pays the time used).
    let id4 = p.order(true, true);
    p.s.bid(2, id4, PRICE).expect_success();
    p.s.chain.warp(900);
    g.insert(
        "close_by_tenant",
        p.s.close(t, id4).expect_success().gas_used,
    );

    // Award with 10 on-chain bids: the same cost as one (AUC-08).
    let id = p.order(false, true);
    for i in 0..10u128 {
        p.s.bid(i as usize, id, PRICE - i).expect_success();
    }
    p.s.chain.warp(601);
    g.insert("award_10_bids", p.s.award(k, id).expect_success().gas_used);

    // Instant order: the bid is the award (and the acknowledgement).
    let instant = p.order(true, true);
    g.insert(
        "bid_instant_award",
        p.s.bid(2, instant, PRICE).expect_success().gas_used,
    );

    // Service leases: heartbeat, settle one, then a batch of 100 of one provider, by a keeper.
    p.s.heartbeat(3).expect_success();
    p.s.chain.warp(60);
    g.insert("heartbeat", p.s.heartbeat(3).expect_success().gas_used);
    let one = p.service(3);
    p.s.chain.warp(60);
    p.s.heartbeat(3).expect_success();
    p.s.settle(k, vec![one]).expect_success();
    p.s.chain.warp(60);
    p.s.heartbeat(3).expect_success();
    g.insert(
        "settle_1_service_lease",
        p.s.settle(k, vec![one]).expect_success().gas_used,
    );
    // Its node binds the TLS key it serves the service with (ACC-03).
    let (op, results) = (p.s.operator(3), p.s.results);
    let bind = Results::bindCertificateCall {
        leaseId: one,
        spkiHash: B256::repeat_byte(0x5e),
    };
    g.insert(
        "bind_certificate",
        p.s.chain.send(op, results, bind).expect_success().gas_used,
    );
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(p.service(3));
    }
    p.s.chain.warp(60);
    p.s.heartbeat(3).expect_success();
    p.s.settle(k, ids.clone()).expect_success();
    p.s.chain.warp(60);
    p.s.heartbeat(3).expect_success();
    let batch = p.s.settle(k, ids.clone()).expect_success().gas_used;
    g.insert("settle_batch_100", batch);
    g.insert("settle_batch_100_per_lease", batch / 100);
    // A lapsed service lease closed by a keeper (paid up to the lapse, the rest refunded).
    p.s.chain.warp(HEARTBEAT + 1);
    g.insert(
        "close_lapsed_by_keeper",
        p.s.close(k, ids[0]).expect_success().gas_used,
    );
    let results = p.s.results;
    g.insert(
        "report_stale",
        p.s.chain
            .send(k, results, Results::reportStaleCall { leaseId: ids[1] })
            .expect_success()
            .gas_used,
    );
    p.s.chain.warp(STALE_GRACE + 1);
    g.insert(
        "prove_stale_heartbeat",
        p.s.chain
            .send(
                k,
                results,
                Results::proveStaleHeartbeatCall { leaseId: ids[1] },
            )
            .expect_success()
            .gas_used,
    );

    // Liveness faults and abandonment, each on a fresh lease (keeper-awarded signed bids).
    let lease = |p: &mut Probe| {
        let params = p.params(false);
        let id = p.s.create(0, params.clone());
        let b = p.s.signed_bid(4, id, PRICE);
        p.s.bid_signed(k, id, b).expect_success();
        p.s.chain.warp(601);
        p.s.award(k, id).expect_success();
        (id, params)
    };
    let (a, pa) = lease(&mut p);
    p.s.chain.warp(START_WINDOW + 1);
    let call = Results::proveNoShowCall {
        leaseId: a,
        tenant: t,
        terms: pa.into(),
    };
    g.insert(
        "prove_no_show",
        p.s.chain.send(k, results, call).expect_success().gas_used,
    );
    let (b, _) = lease(&mut p);
    p.s.ack(4, b).expect_success();
    p.s.chain.warp(3_600 + DEADLINE_GRACE + 1);
    g.insert(
        "prove_missed_deadline",
        p.s.chain
            .send(k, results, Results::proveMissedDeadlineCall { leaseId: b })
            .expect_success()
            .gas_used,
    );
    let (c, _) = lease(&mut p);
    let op = p.s.operator(4);
    g.insert(
        "abandon",
        p.s.chain
            .send(op, m, MarketAdmin::abandonCall { leaseId: c })
            .expect_success()
            .gas_used,
    );

    // Data availability: a challenge of one 1 KiB chunk of a 64-leaf result, its answer; another
    // challenge left unanswered and proven.
    let data = result_bytes(64);
    let (d, _) = lease(&mut p);
    let (_, posted) = p.s.post(4, d, &data);
    g.insert(
        "da_challenge",
        p.s.challenge(k, d, posted, 37).expect_success().gas_used,
    );
    let op = p.s.operator(4);
    g.insert(
        "da_answer",
        p.s.answer(op, d, &data, 37).expect_success().gas_used,
    );
    p.s.challenge(k, d, posted, 5).expect_success();
    p.s.chain.warp(RESPONSE_WINDOW + 1);
    g.insert(
        "prove_unavailable",
        p.s.chain
            .send(
                k,
                results,
                Results::proveUnavailableCall {
                    leaseId: d,
                    index: U256::from(5),
                },
            )
            .expect_success()
            .gas_used,
    );
    // A malformed tree: a non-zero node in the padding of a 5-leaf result.
    let (e, _) = lease(&mut p);
    let mut leaves: Vec<B256> = (0..5)
        .map(|i| gridlease_workload::merkle::leaf_hash(result_chunk(&data, i)))
        .collect();
    leaves.push(B256::repeat_byte(0xee));
    let bad = MerkleTree::from_leaf_hashes(leaves);
    let posted = Commitment {
        root: bad.root(),
        size: 5 * RESULT_LEAF_BYTES as u64,
    };
    p.s.post_commitment(4, e, posted).expect_success();
    g.insert(
        "prove_malformed",
        p.s.chain
            .send(
                k,
                results,
                Results::proveMalformedCall {
                    leaseId: e,
                    root: posted.root,
                    size: posted.size,
                    level: U256::ZERO,
                    index: U256::from(5),
                    data: B256::repeat_byte(0xee).to_vec().into(),
                    proof: bad.proof(5),
                },
            )
            .expect_success()
            .gas_used,
    );

    // One element of a matmul_i8 result checked on chain (Merkle proof + O(k) recompute), the
    // core of the fraud proof, at k = 1,024 and 4,096 on a 64 x 64 result.
    g.insert("matmul_check_k1024", matmul_check_gas(&mut p.s, 1_024));
    g.insert("matmul_check_k4096", matmul_check_gas(&mut p.s, 4_096));
    // The whole fraud proof: terms and job checked, element recomputed, lease closed as Faulted,
    // escrow refunded, collateral slashed.
    g.insert(
        "prove_matmul_fraud_k1024",
        prove_fraud_gas(&mut p.s, 1_024, false).1,
    );
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

    // Bytecode sizes (EIP-170 limit 24,576; every contract keeps >= 2,048 bytes of headroom).
    let (staking, market, admin, results, lens) =
        (p.s.staking, p.s.market, p.s.admin, p.s.results, p.s.lens);
    g.insert("bytecode_results", p.s.chain.code_size(results) as u64);
    g.insert("bytecode_staking", p.s.chain.code_size(staking) as u64);
    g.insert("bytecode_market", p.s.chain.code_size(market) as u64);
    g.insert("bytecode_market_admin", p.s.chain.code_size(admin) as u64);
    g.insert("bytecode_market_lens", p.s.chain.code_size(lens) as u64);

    println!("{}", serde_json::to_string_pretty(&g).expect("json"));
    // `snapshots/gas.snap`, next to this file (the bench and the docs read it by that name).
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("gas", g);
    });
}

/// The goals of protocol v2 (issue "Protocol v2"), checked on the snapshot's own figures so a
/// regression fails here with its name.
#[test]
fn gas_goals_hold() {
    let snap = include_str!("snapshots/gas.snap");
    let json = &snap[snap.find('{').expect("json body")..];
    let g: BTreeMap<String, u64> = serde_json::from_str(json).expect("snapshot json");
    let goal = |name: &str, max: u64| {
        let v = g[name];
        assert!(v <= max, "{name} = {v} > {max}");
    };
    goal("lifecycle_total", 420_000);
    goal("settle_batch_100_per_lease", 12_000);
    goal("da_challenge", 120_000);
    goal("da_answer", 120_000);
    goal("prove_matmul_fraud_k4096", 600_000);
    for c in [
        "bytecode_market",
        "bytecode_market_admin",
        "bytecode_market_lens",
        "bytecode_results",
        "bytecode_staking",
    ] {
        goal(c, 24_576 - 2_048);
    }
}
