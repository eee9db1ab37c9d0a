//! Economic adversaries (SECURITY MEC-07, MEC-08, ESC-05, KPR-04). Each test plays an adversary
//! holding some roles' keys, computes its profit (what its accounts hold in the end, tokens and
//! credits in Market and Staking, minus what they held at the start) and asserts it is at most 0.
//! The owner of the attacked provider is a victim, not part of the adversary.

use alloy::primitives::{Address, B256, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::OrderParams, Market, MarketAdmin, Results, results::MatmulProof::Job,
};
use gridlease_tests::fixture::*;
use gridlease_workload::{
    matmul::{Matmul, encode, localize, multiply},
    merkle::{Commitment, RESULT_LEAF_BYTES},
};

/// What a set of accounts holds: the payment/stake token, its Market credit and Staking credit.
fn holdings(s: &mut Suite, who: &[Address]) -> u128 {
    let token = s.token;
    who.iter()
        .map(|&a| s.balance(token, a) + s.credit(a) + s.staking_credit(a))
        .sum()
}

/// The adversary: provider 0's operator key (leaked), plus tenant 3 and the keeper account as its
/// own tenant, reporter and keeper.
struct Adversary {
    operator: Address,
    tenant: usize,
    reporter: Address,
}

impl Adversary {
    fn new(s: &Suite) -> Self {
        Self {
            operator: s.operator(0),
            tenant: 3,
            reporter: s.keeper.address,
        }
    }

    fn accounts(&self, s: &Suite) -> Vec<Address> {
        vec![self.operator, s.tenant(self.tenant), self.reporter]
    }
}

/// Provider 0 registered by its owner with a collateral ceiling of `ceiling` and `stake` staked.
fn victim(s: &mut Suite, stake: u128, ceiling: u128) {
    s.try_register(0, U96::from(ceiling)).expect_success();
    s.stake(0, stake);
}

/// The adversary's tenant orders (auction) with the largest collateral the ceiling allows, the
/// leaked operator bids, the adversary's keeper awards: a lease it controls from both sides.
fn self_dealt_lease(
    s: &mut Suite,
    a: &Adversary,
    collateral: u128,
    kind: u8,
    spec: B256,
) -> (B256, OrderParams) {
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    (p.collateral, p.jobKind, p.specHash) = (U96::from(collateral), kind, spec);
    let id = s.create(a.tenant, p.clone());
    s.bid(0, id, PRICE).expect_success();
    s.chain.warp(601);
    s.award(a.reporter, id).expect_success();
    (id, p)
}

#[test]
fn a_leaked_operator_key_cannot_profit_from_a_no_show_it_stages_mec07() {
    let mut s = Suite::new();
    victim(&mut s, 10_000 * USDC, 10_000 * USDC);
    let a = Adversary::new(&s);
    let accounts = a.accounts(&s);
    let start = holdings(&mut s, &accounts);
    let (id, p) = self_dealt_lease(&mut s, &a, 5_000 * USDC, 0, B256::repeat_byte(1));
    s.chain.warp(START_WINDOW + 1);
    let (results, tenant) = (s.results, s.tenant(a.tenant));
    let r = s
        .chain
        .send(
            a.reporter,
            results,
            Results::proveNoShowCall {
                leaseId: id,
                tenant,
                terms: p.into(),
            },
        )
        .expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().slashed.to::<u128>(),
        5_000 * USDC
    );
    let accounts = a.accounts(&s);
    let end = holdings(&mut s, &accounts);
    assert!(end <= start, "profit {}", end as i128 - start as i128);
    // The owner lost what the ceiling allowed at once, to the treasury, not to the adversary.
    assert_eq!(s.staking_credit(s.treasury.address), 5_000 * USDC);
}

#[test]
fn a_leaked_operator_key_cannot_profit_by_paying_for_a_wrong_result_then_proving_it_mec07() {
    // The adversary's tenant accepts (pays) a wrong result its operator posted, then proves the
    // fraud: compensation is bounded by what it paid, so it gets back at most that.
    let mut s = Suite::new();
    victim(&mut s, 10_000 * USDC, 10_000 * USDC);
    let a = Adversary::new(&s);
    let accounts = a.accounts(&s);
    let start = holdings(&mut s, &accounts);
    let job = Matmul {
        seed: B256::repeat_byte(0x61),
        m: 16,
        k: 8,
        n: 16,
    };
    let (id, p) = self_dealt_lease(&mut s, &a, 5_000 * USDC, 1, job.spec_hash());
    let mut c = multiply(&job.a(), &job.bt(), 16, 8, 16, 1);
    c[5] += 1;
    let f = localize(&job, &c, B256::repeat_byte(2)).expect("found");
    s.ack(0, id).expect_success();
    s.chain.warp(3_000);
    let (r, posted) = s.post(0, id, &encode(&c));
    r.expect_success();
    let tenant = s.tenant(a.tenant);
    s.close(tenant, id).expect_success(); // pays 3,000 s
    let results = s.results;
    s.chain
        .send(
            a.reporter,
            results,
            Results::proveMatmulFraudCall {
                leaseId: id,
                tenant,
                terms: p.into(),
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
            },
        )
        .expect_success();
    let accounts = a.accounts(&s);
    let end = holdings(&mut s, &accounts);
    assert!(end <= start, "profit {}", end as i128 - start as i128);
}

#[test]
fn a_leaked_operator_key_cannot_profit_from_a_withheld_result_or_an_abandon_mec07() {
    let mut s = Suite::new();
    victim(&mut s, 10_000 * USDC, 10_000 * USDC);
    let a = Adversary::new(&s);
    let accounts = a.accounts(&s);
    let start = holdings(&mut s, &accounts);
    // Withheld data: its tenant challenges, nobody answers, its reporter proves it.
    let (id, _) = self_dealt_lease(&mut s, &a, 3_000 * USDC, 0, B256::repeat_byte(3));
    let posted = Commitment {
        root: B256::repeat_byte(0x42),
        size: RESULT_LEAF_BYTES as u64,
    };
    s.post_commitment(0, id, posted).expect_success();
    let tenant = s.tenant(a.tenant);
    s.challenge(tenant, id, posted, 0).expect_success();
    s.chain.warp(RESPONSE_WINDOW + 1);
    let results = s.results;
    s.chain
        .send(
            a.reporter,
            results,
            Results::proveUnavailableCall {
                leaseId: id,
                index: U256::ZERO,
            },
        )
        .expect_success();
    // Abandonment by the operator itself.
    let (id, _) = self_dealt_lease(&mut s, &a, 3_000 * USDC, 0, B256::repeat_byte(4));
    let market = s.market;
    s.chain
        .send(a.operator, market, MarketAdmin::abandonCall { leaseId: id })
        .expect_success();
    let accounts = a.accounts(&s);
    let end = holdings(&mut s, &accounts);
    assert!(end <= start, "profit {}", end as i128 - start as i128);
}

#[test]
fn a_leaked_operator_key_cannot_profit_from_a_stale_service_lease_it_paid_for_mec07() {
    let mut s = Suite::new();
    victim(&mut s, 10_000 * USDC, 10_000 * USDC);
    let a = Adversary::new(&s);
    let accounts = a.accounts(&s);
    let start = holdings(&mut s, &accounts);
    s.heartbeat(0).expect_success();
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    (p.jobKind, p.instant, p.collateral) = (2, true, U96::from(4_000 * USDC));
    let id = s.create(a.tenant, p);
    s.bid(0, id, PRICE).expect_success();
    s.keep_alive(0, 600);
    s.settle(a.reporter, vec![id]).expect_success(); // the adversary's keeper earns its fee
    s.chain.warp(HEARTBEAT + 1);
    let results = s.results;
    s.chain
        .send(
            a.reporter,
            results,
            Results::reportStaleCall { leaseId: id },
        )
        .expect_success();
    s.chain.warp(STALE_GRACE + 1);
    s.chain
        .send(
            a.reporter,
            results,
            Results::proveStaleHeartbeatCall { leaseId: id },
        )
        .expect_success();
    let accounts = a.accounts(&s);
    let end = holdings(&mut s, &accounts);
    assert!(end <= start, "profit {}", end as i128 - start as i128);
}

#[test]
fn the_collateral_ceiling_bounds_what_a_leaked_key_puts_at_risk_at_once_mec07() {
    let mut s = Suite::new();
    victim(&mut s, 10_000 * USDC, 500 * USDC);
    let a = Adversary::new(&s);
    // One lease at the ceiling fits; a second one does not.
    self_dealt_lease(&mut s, &a, 500 * USDC, 0, B256::repeat_byte(5));
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    (p.collateral, p.instant) = (U96::from(USDC), true);
    let id = s.create(a.tenant, p);
    assert!(!s.bid(0, id, PRICE).success);
    assert_eq!(s.provider_info(0).locked.to::<u128>(), 500 * USDC);
}

#[test]
fn a_self_dealt_fault_cannot_pre_empt_a_pending_slash_mec08() {
    // The provider's wrong result on an honest tenant's lease was accepted (by mistake), so its
    // fault is pending after the close. The provider then self-deals a fault on a second lease
    // with all the stake it can lock: the pending slash still takes its full collateral.
    let mut s = Suite::new();
    victim(&mut s, 1_000 * USDC, 10_000 * USDC);
    let job = Matmul {
        seed: B256::repeat_byte(0x62),
        m: 16,
        k: 8,
        n: 16,
    };
    let mut p = s.fresh_order(10 * USDC, PRICE * 2);
    (p.jobKind, p.specHash, p.collateral, p.instant) =
        (1, job.spec_hash(), U96::from(600 * USDC), true);
    let honest = s.create(0, p.clone());
    s.bid(0, honest, PRICE).expect_success();
    let mut c = multiply(&job.a(), &job.bt(), 16, 8, 16, 1);
    c[9] -= 1;
    let f = localize(&job, &c, B256::repeat_byte(7)).expect("found");
    s.chain.warp(100);
    let (_, posted) = s.post(0, honest, &encode(&c));
    let t0 = s.tenant(0);
    s.close(t0, honest).expect_success();
    // All the free stake into a self-dealt lease, faulted at once.
    let a = Adversary::new(&s);
    let free = 1_000 * USDC - 600 * USDC;
    let (id2, _) = self_dealt_lease(&mut s, &a, free, 0, B256::repeat_byte(6));
    let market = s.market;
    s.chain
        .send(
            a.operator,
            market,
            MarketAdmin::abandonCall { leaseId: id2 },
        )
        .expect_success();
    // The pending slash lands in full.
    let (k, results) = (s.keeper.address, s.results);
    let r = s
        .chain
        .send(
            k,
            results,
            Results::proveMatmulFraudCall {
                leaseId: honest,
                tenant: t0,
                terms: p.into(),
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
            },
        )
        .expect_success();
    assert_eq!(
        r.event::<Market::LeaseFaulted>().slashed.to::<u128>(),
        600 * USDC
    );
    // The honest tenant got back what it paid (the keeper proved it within the tenant's priority:
    // no fee).
    let paid = 100 * PRICE / 1_000_000_000_000;
    assert_eq!(s.staking_credit(t0), paid);
}

#[test]
fn a_tenant_reporter_keeper_cannot_extract_anything_from_an_honest_provider() {
    // The adversary holds tenant, reporter and keeper keys against an honest provider that
    // acknowledges, posts correct data and answers every challenge. It tries every lever it has;
    // it only ever loses (bonds to the provider, fees to the protocol), and the provider keeps
    // its stake.
    let mut s = Suite::new();
    s.register(0, 10_000 * USDC);
    let (t, k) = (s.tenant(1), s.keeper.address);
    let accounts = [t, k];
    let start = holdings(&mut s, &accounts);
    let data: Vec<u8> = (0..3 * RESULT_LEAF_BYTES).map(|x| (x * 13) as u8).collect();
    let id = s.instant_lease(1, 0, 10 * USDC);
    s.chain.warp(200);
    let (_, posted) = s.post(0, id, &data);
    let op = s.operator(0);
    for i in 0..3 {
        s.challenge(k, id, posted, i).expect_success();
        s.answer(op, id, &data, i).expect_success();
    }
    // A malformed claim against a well-formed tree, a no-show on an acknowledged lease, a
    // completion before the window: all revert.
    let results = s.results;
    let tree = gridlease_workload::merkle::MerkleTree::result(&data);
    let r = s.chain.send(
        k,
        results,
        Results::proveMalformedCall {
            leaseId: id,
            root: posted.root,
            size: posted.size,
            level: U256::ZERO,
            index: U256::from(3),
            data: tree.node(0, 3).to_vec().into(),
            proof: tree.proof(3),
        },
    );
    assert!(!r.success);
    assert!(!s.close(k, id).success);
    s.chain.warp(CHALLENGE_WINDOW + 1);
    s.close(t, id).expect_success();
    let end = holdings(&mut s, &accounts);
    assert!(
        end < start,
        "the adversary paid for what it got, and lost its bonds"
    );
    assert_eq!(
        s.provider_info(0).stake.to::<u128>(),
        10_000 * USDC,
        "never slashed"
    );
}

#[test]
fn settle_spam_earns_no_more_than_one_settle_esc05_kpr04() {
    // A keeper settling every few seconds collects no more fees in all than one settle at the
    // end, and the tenant pays no more: rounding only ever goes against the payee.
    let run = |step: u64| -> (u128, u128) {
        let mut s = Suite::new();
        s.register(0, 10_000 * USDC);
        s.heartbeat(0).expect_success();
        let mut p = s.fresh_order(10 * USDC, PRICE * 2);
        (p.jobKind, p.instant) = (2, true);
        let id = s.create(0, p);
        // A rate that does not divide the token's scale: each settlement rounds down.
        s.bid(0, id, PRICE + 333_333_333).expect_success();
        let k = s.keeper.address;
        let mut t = 0;
        while t < 1_200 {
            s.keep_alive(0, step);
            t += step;
            if step < 1_200 {
                s.settle(k, vec![id]).expect_success();
            }
        }
        s.settle(k, vec![id]).expect_success();
        let paid = 10 * USDC - s.job(id).escrow.to::<u128>();
        (s.credit(k), paid)
    };
    let (fee_once, paid_once) = run(1_200);
    let (fee_spam, paid_spam) = run(3);
    assert!(fee_spam <= fee_once, "{fee_spam} > {fee_once}");
    assert!(paid_spam <= paid_once, "{paid_spam} > {paid_once}");
}
