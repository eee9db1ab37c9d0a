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

#[test]
fn service_accrual_mirrors_the_settle_liveness_cap() {
    let l = lease(2);
    // The current epoch began before the last settlement: paid to its last beat + period.
    assert_eq!(service_owed(&l, &live(1_400), 1_500, 6), 460);
    assert_eq!(service_owed(&l, &live(1_490), 1_500, 6), 500);
    // A new epoch since: paid to the end of the previous one, if that one ran at settled_at.
    let back = Liveness {
        at: 1_500,
        period: 60,
        epoch: 2,
        epoch_start: 1_480,
        prev_start: 900,
        prev_end: 1_300,
    };
    assert_eq!(service_owed(&l, &back, 1_500, 6), 300);
    // Neither epoch ran at settled_at: nothing.
    let later = Liveness {
        prev_start: 1_100,
        ..back
    };
    assert_eq!(service_owed(&l, &later, 1_500, 6), 0);
    // Never beat: nothing; not acknowledged: nothing.
    assert_eq!(service_owed(&l, &Liveness::default(), 1_500, 6), 0);
    let mut unacked = l.clone();
    unacked.acknowledged = false;
    assert_eq!(service_owed(&unacked, &live(1_490), 1_500, 6), 0);
    // Capped by the end and by the escrow.
    assert_eq!(service_owed(&l, &live(99_999), 99_999, 6), 3_600);
    let mut poor = l.clone();
    poor.escrow = 1_000;
    assert_eq!(service_owed(&poor, &live(99_999), 99_999, 6), 1_000);
    // A held result's pay: to the result, never past the deadline.
    let b = lease(0);
    assert_eq!(held_pay(&b, &posted(1_500), 6), 500);
    assert_eq!(held_pay(&b, &posted(4_630), 6), 3_600);
    assert_eq!(hold_end(&b, &posted(4_630), &module()), 4_600 + 600);
}

#[test]
fn mec_02_a_batch_lease_without_a_result_is_never_closed_or_settled_only_faulted() {
    // A deposit below rate x duration: "exhausted" long before the deadline.
    let mut l = lease(0);
    l.escrow = 2_000;
    let v = view(vec![(1, l.clone())]);
    for now in [1_500, 3_500, 4_600, 4_660] {
        assert!(
            plan(&v, &clock(now), Flags::ALL, &inputs()).is_empty(),
            "something planned at {now}"
        );
    }
    // One second past end + grace: the missed deadline, paying 5 % of the refund.
    let w = plan(&v, &clock(4_661), Flags::ALL, &inputs());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::ProveMissedDeadline(id(1)));
    assert_eq!((w[0].reward, w[0].token, w[0].urgent), (100, TOKEN, true));
    // Without the missed-deadline strategy nothing else ends it: never a close.
    let flags = Flags {
        missed_deadline: false,
        ..Flags::ALL
    };
    assert!(plan(&v, &clock(99_999), flags, &inputs()).is_empty());
    // Not acknowledged within the start window: a no-show.
    l.acknowledged = false;
    let v = view(vec![(1, l)]);
    assert!(plan(&v, &clock(1_120), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(1_121), Flags::ALL, &inputs());
    assert_eq!(names(&w), ["no-show"]);
}

#[test]
fn only_acknowledged_service_leases_are_settled_in_batches_grouped_by_provider() {
    let mut leases = Vec::new();
    for i in 1..=5u8 {
        let mut l = lease(2);
        l.provider = Address::repeat_byte(10 - i % 2);
        l.settled_at = 1_000 + u64::from(i);
        leases.push((i, l));
    }
    // Not acknowledged yet (inside its start window): nothing to pay.
    let mut unacked = lease(2);
    unacked.acknowledged = false;
    (unacked.start, unacked.settled_at) = (1_500, 1_500);
    leases.push((6, unacked));
    // A running batch lease owes nothing before its result stands.
    leases.push((7, lease(0)));
    let v = view(leases);
    let mut inp = inputs();
    for p in [9u8, 10, 2] {
        inp.liveness.insert(Address::repeat_byte(p), live(1_590));
    }
    let w = plan(&v, &clock(1_600), Flags::ALL, &inp);
    // Five leases in batches of three, best-paying first, one provider's leases together.
    assert_eq!(names(&w), ["settle", "settle"]);
    let Action::Settle(first) = &w[0].action else {
        panic!("{w:?}")
    };
    assert_eq!(first.len(), 3);
    assert!(!first.contains(&id(6)) && !first.contains(&id(7)));
    let provs: Vec<Address> = first.iter().map(|i| v.leases[i].provider).collect();
    assert!(provs.windows(2).all(|p| p[0] <= p[1]), "{provs:?}");
    // The reward is the keeper's 1 % of what the batch pays.
    let fees: u64 = first
        .iter()
        .map(|i| (1_600 - v.leases[i].settled_at) / 100)
        .sum();
    assert_eq!(w[0].reward, u128::from(fees));
    // A lease whose fee does not beat one more lease's gas stays out.
    inp.min_lease_fee.insert(TOKEN, 6);
    assert!(plan(&v, &clock(1_600), Flags::ALL, &inp).is_empty());
}

#[test]
fn mec_09_a_lapsed_service_lease_is_closed_and_paid_only_up_to_the_lapse() {
    let v = view(vec![(1, lease(2))]);
    let mut inp = inputs();
    // The provider lapsed and came back: a new epoch since the last settlement.
    let back = Liveness {
        at: 1_900,
        period: 60,
        epoch: 2,
        epoch_start: 1_900,
        prev_start: 900,
        prev_end: 1_300,
    };
    inp.liveness.insert(Address::repeat_byte(2), back);
    let w = plan(&v, &clock(1_910), Flags::ALL, &inp);
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::Close(id(1)));
    // 1 % of the 300 s up to the lapse, not of the 910 s since the start.
    assert_eq!(w[0].reward, 3);
    assert!(lapsed(&v.leases[&id(1)], &back, 1_910));
    // Stale now (no heartbeat for over a period): reported first, the proof paying for both.
    inp.liveness.insert(Address::repeat_byte(2), live(1_300));
    let w = plan(&v, &clock(1_400), Flags::ALL, &inp);
    assert_eq!(names(&w), ["report-stale"]);
    assert_eq!((w[0].reward, w[0].follow_up_gas), (500, PROVE_STALE_GAS));
    // Without the stale strategy, a stale provider's lease is closed as lapsed.
    let flags = Flags {
        stale_heartbeat: false,
        ..Flags::ALL
    };
    let w = plan(&v, &clock(1_400), flags, &inp);
    assert_eq!(w[0].action, Action::Close(id(1)));
    assert_eq!(w[0].reward, 3);
    // Expired with a live provider: closed; ran dry: closed.
    inp.liveness.insert(Address::repeat_byte(2), live(4_590));
    assert_eq!(names(&plan(&v, &clock(4_600), Flags::ALL, &inp)), ["close"]);
    let mut dry = lease(2);
    dry.escrow = 100;
    let v = view(vec![(1, dry)]);
    inp.liveness.insert(Address::repeat_byte(2), live(1_190));
    assert_eq!(names(&plan(&v, &clock(1_200), Flags::ALL, &inp)), ["close"]);
}

#[test]
fn stale_reports_wait_for_the_grace_and_are_void_when_the_provider_came_back_in_time() {
    let grace = 60;
    // No heartbeat since the report: provable after the grace, not at it.
    assert_eq!(stale_state(1_000, &live(990), grace, 1_060), Stale::Waiting);
    assert_eq!(
        stale_state(1_000, &live(990), grace, 1_061),
        Stale::Provable
    );
    // Came back within the grace (a new epoch at 1,030): void.
    let back = |start| Liveness {
        at: start,
        period: 60,
        epoch: 2,
        epoch_start: start,
        prev_start: 900,
        prev_end: 1_050,
    };
    assert_eq!(stale_state(1_000, &back(1_030), grace, 1_100), Stale::Void);
    assert_eq!(stale_state(1_000, &back(1_060), grace, 1_100), Stale::Void);
    // Came back after it: the lapse lasted the grace, still provable.
    assert_eq!(
        stale_state(1_000, &back(1_061), grace, 1_100),
        Stale::Provable
    );
    // In the plan: waiting, then the proof.
    let mut l = lease(2);
    l.stale_since = Some(1_300);
    let v = view(vec![(1, l)]);
    let mut inp = inputs();
    inp.liveness.insert(Address::repeat_byte(2), live(1_200));
    assert!(plan(&v, &clock(1_360), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(1_361), Flags::ALL, &inp);
    assert_eq!(names(&w), ["stale-heartbeat"]);
    assert_eq!((w[0].reward, w[0].urgent), (500, true));
    // Void: a live provider's lease lapsed (new epoch) is closed instead.
    inp.liveness.insert(
        Address::repeat_byte(2),
        Liveness {
            prev_start: 900,
            prev_end: 1_260,
            ..back(1_320)
        },
    );
    assert_eq!(names(&plan(&v, &clock(1_361), Flags::ALL, &inp)), ["close"]);
    // No report after the lease end: the provider owes it no heartbeat.
    let v = view(vec![(1, lease(2))]);
    inp.liveness.insert(Address::repeat_byte(2), live(4_000));
    assert_eq!(names(&plan(&v, &clock(4_700), Flags::ALL, &inp)), ["close"]);
}

#[test]
fn held_results_are_checked_then_completed_after_their_window_without_open_challenges() {
    let mut l = lease(1);
    l.result = Some(posted(1_500));
    let v = view(vec![(1, l.clone())]);
    // In the window (result at 1,500, held to 2,100): check it; a wrong one pays 5 % of 10,000.
    let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::Verify(id(1)));
    assert_eq!((w[0].reward, w[0].token, w[0].urgent), (500, TOKEN, true));
    // Checked correct: nothing until the window is over, then the close (1 % of 500 held).
    l.checked = Some(Check::Correct);
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(2_100), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(2_101), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::Close(id(1)));
    assert_eq!((w[0].reward, w[0].urgent), (5, false));
    // An open challenge blocks the completion until it is answered or proven.
    l.challenges.insert(
        3,
        Challenged {
            challenger: OTHER,
            deadline: 2_150,
        },
    );
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(2_101), Flags::ALL, &inputs()).is_empty());
    // Proven wrong: never closed as completed.
    l.challenges.clear();
    l.checked = Some(Check::Wrong);
    let v = view(vec![(1, l)]);
    assert!(!names(&plan(&v, &clock(2_101), Flags::ALL, &inputs())).contains(&"close"));
}

#[test]
fn mec_04_unavailable_results_are_challenged_once_and_unanswered_challenges_proven() {
    let mut l = lease(0);
    l.result = Some(posted(1_500));
    let at = |checked: Check| {
        let mut l = l.clone();
        l.checked = Some(checked);
        l
    };
    let missing = |tries| Check::Missing {
        tries,
        why: "connection refused".into(),
    };
    // A first failure is looked at again; a second makes it unavailable: challenge it.
    let v = view(vec![(1, at(missing(1)))]);
    assert_eq!(
        names(&plan(&v, &clock(1_600), Flags::ALL, &inputs())),
        ["fraud"]
    );
    let v = view(vec![(1, at(missing(2)))]);
    let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::Challenge(id(1)));
    assert_eq!(
        (w[0].reward, w[0].at_risk, w[0].follow_up_gas),
        (500, BOND, PROVE_UNAVAILABLE_GAS)
    );
    // Served bytes that are not the committed ones: challenged at once.
    let v = view(vec![(1, at(Check::Mismatch("root".into())))]);
    assert_eq!(
        names(&plan(&v, &clock(1_600), Flags::ALL, &inputs())),
        ["challenge"]
    );
    // Not after the window.
    assert!(
        plan(&v, &clock(2_101), Flags::ALL, &inputs())
            .iter()
            .all(|w| w.action != Action::Challenge(id(1)))
    );
    // A private result is not bet on, unless asked to.
    let v = view(vec![(1, at(Check::Private("401".into())))]);
    assert!(plan(&v, &clock(1_600), Flags::ALL, &inputs()).is_empty());
    let bet = Flags {
        challenge_private: true,
        ..Flags::ALL
    };
    assert_eq!(
        names(&plan(&v, &clock(1_600), bet, &inputs())),
        ["challenge"]
    );
    // One challenge at a time: someone else's open one is waited for; its fee is its
    // challenger's for a response window (100 s here), then whoever proves it earns it.
    let mut open = at(missing(2));
    open.challenges.insert(
        4,
        Challenged {
            challenger: OTHER,
            deadline: 1_700,
        },
    );
    let v = view(vec![(1, open.clone())]);
    assert!(plan(&v, &clock(1_700), Flags::ALL, &inputs()).is_empty());
    assert!(plan(&v, &clock(1_800), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(1_801), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::ProveUnavailable(id(1), 4));
    assert_eq!((w[0].reward, w[0].returns, w[0].urgent), (500, 0, true));
    // Our own: its bond comes back with the proof.
    open.challenges.insert(
        4,
        Challenged {
            challenger: ME,
            deadline: 1_700,
        },
    );
    let v = view(vec![(1, open.clone())]);
    assert_eq!(
        plan(&v, &clock(1_701), Flags::ALL, &inputs())[0].returns,
        BOND
    );
    // Also past the window: an open challenge holds the lease.
    assert_eq!(
        names(&plan(&v, &clock(2_500), Flags::ALL, &inputs())),
        ["unavailable"]
    );
    // Answered: the provider holds its data; no second challenge, and the lease completes.
    let mut answered = at(missing(2));
    answered.answered = true;
    let v = view(vec![(1, answered)]);
    assert!(plan(&v, &clock(1_600), Flags::ALL, &inputs()).is_empty());
    assert_eq!(
        names(&plan(&v, &clock(2_101), Flags::ALL, &inputs())),
        ["close"]
    );
    // Without the challenge strategy: no download of a container result, no challenge.
    let off = Flags {
        challenge: false,
        ..Flags::ALL
    };
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(1_600), off, &inputs()).is_empty());
}

#[test]
fn mec_05_a_fault_after_a_close_pays_only_for_a_result_the_tenant_accepted() {
    // Accepted at 1,550 (paid 500): a wrong or unavailable result still pays, in stake tokens,
    // 5 % of the tenant's compensation.
    let mut l = lease(1);
    l.result = Some(posted(1_500));
    l.escrow = 0;
    l.closed = Some(Closed {
        at: 1_550,
        reason: ACCEPTED,
        paid: 500,
    });
    let v = view(vec![(1, l.clone())]);
    let w = plan(&v, &clock(1_600), Flags::ALL, &inputs());
    assert_eq!(w[0].action, Action::Verify(id(1)));
    assert_eq!((w[0].reward, w[0].token), (25, STAKE));
    // Never closed again, nor checked after its window.
    let mut ok = l.clone();
    ok.checked = Some(Check::Correct);
    assert!(plan(&view(vec![(1, ok)]), &clock(2_101), Flags::ALL, &inputs()).is_empty());
    assert!(plan(&v, &clock(2_101), Flags::ALL, &inputs()).is_empty());
    // A tenant's close past the deadline of a lease without a result: the missed deadline is
    // still provable, but returns nothing to anyone (planned only when named unpaid).
    let mut late = lease(0);
    late.escrow = 0;
    late.closed = Some(Closed {
        at: 4_700,
        reason: 0,
        paid: 0,
    });
    let v = view(vec![(1, late)]);
    assert!(plan(&v, &clock(4_800), Flags::ALL, &inputs()).is_empty());
    let mut inp = inputs();
    inp.unpaid.insert("missed-deadline".into());
    let w = plan(&v, &clock(4_800), Flags::ALL, &inp);
    assert_eq!(names(&w), ["missed-deadline"]);
    assert_eq!(w[0].reward, 0);
    // Past the fault horizon: nothing at all.
    assert!(plan(&v, &clock(4_700 + 10_001), Flags::ALL, &inp).is_empty());
    // A tenant proving its own lease earns no fee.
    let mut own = inputs();
    own.me = Address::repeat_byte(1);
    assert_eq!(fault_reward(&lease(0), &module(), &own).0, 0);
}

#[test]
fn a_fault_is_proven_once_the_tenants_priority_has_passed_and_it_pays() {
    let mut inp = inputs();
    inp.modules.insert(
        1,
        ModuleParams {
            tenant_priority: 300,
            ..module()
        },
    );
    // A missed deadline provable since 4,660: it pays its prover after 4,960.
    let v = view(vec![(1, lease(0))]);
    assert!(plan(&v, &clock(4_661), Flags::ALL, &inp).is_empty());
    assert!(plan(&v, &clock(4_960), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(4_961), Flags::ALL, &inp);
    assert_eq!(names(&w), ["missed-deadline"]);
    assert_eq!(w[0].reward, 500);
    // Named unpaid, it goes at once, for nothing.
    inp.unpaid.insert("missed-deadline".into());
    let w = plan(&v, &clock(4_661), Flags::ALL, &inp);
    assert_eq!((names(&w), w[0].reward), (vec!["missed-deadline"], 0));
    inp.unpaid.clear();
    // A result is checked at once, whatever its proof would pay; a wrong one is proven once
    // the fee is due (posted at 1,500: after 1,800, inside its window).
    let mut l = lease(1);
    l.result = Some(posted(1_500));
    let v = view(vec![(1, l.clone())]);
    let w = plan(&v, &clock(1_501), Flags::ALL, &inp);
    assert_eq!(
        (w[0].action.clone(), w[0].reward),
        (Action::Verify(id(1)), 0)
    );
    l.checked = Some(Check::Wrong);
    let v = view(vec![(1, l.clone())]);
    assert!(plan(&v, &clock(1_800), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(1_801), Flags::ALL, &inp);
    assert_eq!(
        (w[0].action.clone(), w[0].reward),
        (Action::Verify(id(1)), 500)
    );
    // An unavailable result: challenged at once (its proof will pay), proven after the
    // response window and the priority; our own bond waits with it.
    l.checked = Some(Check::Mismatch("root".into()));
    let v = view(vec![(1, l.clone())]);
    assert_eq!(
        names(&plan(&v, &clock(1_501), Flags::ALL, &inp)),
        ["challenge"]
    );
    l.challenges.insert(
        0,
        Challenged {
            challenger: ME,
            deadline: 1_600,
        },
    );
    let v = view(vec![(1, l)]);
    assert!(plan(&v, &clock(1_900), Flags::ALL, &inp).is_empty());
    let w = plan(&v, &clock(1_901), Flags::ALL, &inp);
    assert_eq!(w[0].action, Action::ProveUnavailable(id(1), 0));
    assert_eq!((w[0].reward, w[0].returns), (500, BOND));
}

#[test]
fn awards_only_closed_auctions_with_a_bid_or_a_signed_one() {
    let mut v = View::default();
    let order = |instant, bid| Order {
        tenant: Address::ZERO,
        terms: Bytes::new(),
        instant,
        bidding_end: 100,
        bid,
    };
    let bid = Some((Address::repeat_byte(2), 5));
    v.orders.insert(id(1), order(false, bid));
    v.orders.insert(id(2), order(false, None));
    v.orders.insert(id(3), order(true, bid));
    assert!(plan(&v, &clock(100), Flags::ALL, &inputs()).is_empty());
    let w = plan(&v, &clock(101), Flags::ALL, &inputs());
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].action, Action::Award(id(1)));
    let mut inp = inputs();
    inp.signed.insert(id(2));
    let w = plan(&v, &clock(101), Flags::ALL, &inp);
    assert_eq!(names(&w), ["award", "award"]);
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

#[test]
fn kb_01_kb_03_decides_on_profit_caps_and_budget() {
    let work = |reward, urgent| Work::new(Action::Close(B256::ZERO), reward, TOKEN, urgent);
    // 100k gas at 1 gwei = 1e14 wei = 0.0001 ETH = 0.3 USD = 300,000 units (6 decimals).
    let p = Price {
        gas: 100_000,
        gas_price: 1_000_000_000,
        l1_fee: 0,
    };
    assert_eq!(cost_in(&p, TOKEN, &policy()), 300_000);
    assert_eq!(
        decide(&work(359_999, false), &p, &policy()),
        Decision::Skip("unprofitable")
    );
    assert_eq!(decide(&work(360_000, false), &p, &policy()), Decision::Send);
    // The L1 data fee counts.
    let l2 = Price {
        l1_fee: 1_000_000_000_000,
        ..p
    };
    assert_eq!(
        decide(&work(360_000, false), &l2, &policy()),
        Decision::Skip("unprofitable")
    );
    let dear = Price {
        gas_price: 200_000_000_000,
        ..p
    };
    assert_eq!(
        decide(&work(u128::MAX, false), &dear, &policy()),
        Decision::Skip("gas-price-cap")
    );
    // Urgent work (a fault proof) goes above the cap when it pays.
    assert_eq!(
        decide(&work(u128::MAX, true), &dear, &policy()),
        Decision::Send
    );
    let mut broke = policy();
    broke.budget_left = 0;
    assert_eq!(
        decide(&work(u128::MAX, false), &p, &broke),
        Decision::Skip("hourly-budget")
    );
    // Unpaid work is allowed by name only.
    let award = Work::new(Action::Award(B256::ZERO), 0, Address::ZERO, false);
    assert_eq!(decide(&award, &p, &policy()), Decision::Send);
    assert_eq!(decide(&award, &p, &broke), Decision::Skip("hourly-budget"));
}

#[test]
fn kb_01_mec_04_a_challenge_must_pay_for_its_bond_and_its_proof() {
    // 100k gas at 1 gwei (300,000 units), the proof's 250k gas (750,000), and a 0.001 ETH bond
    // (3,000,000 units) that an answer takes: 4,050,000 units x 1.2 = 4,860,000 needed.
    let p = Price {
        gas: 100_000,
        gas_price: 1_000_000_000,
        l1_fee: 0,
    };
    let mut w = Work::new(Action::Challenge(B256::ZERO), 4_859_999, TOKEN, true);
    w.follow_up_gas = PROVE_UNAVAILABLE_GAS;
    w.at_risk = BOND;
    assert_eq!(decide(&w, &p, &policy()), Decision::Skip("unprofitable"));
    w.reward = 4_860_000;
    assert_eq!(decide(&w, &p, &policy()), Decision::Send);
    // Proving our own challenge: the bond comes back, so a proof paying no fee (the lease past
    // its horizon) is still worth its gas.
    let mut prove = Work::new(Action::ProveUnavailable(B256::ZERO, 0), 0, TOKEN, true);
    prove.returns = BOND;
    assert_eq!(decide(&prove, &p, &policy()), Decision::Send);
    prove.returns = 0;
    assert_eq!(
        decide(&prove, &p, &policy()),
        Decision::Skip("unprofitable")
    );
}

fn arb_lease() -> impl Strategy<Value = Lease> {
    (
        (
            0u8..3,
            any::<bool>(),
            0u64..3_000,
            0u64..5_000,
            0u128..100_000,
        ),
        (
            prop::option::of(0u64..5_000),
            prop::option::of(0u64..5_000),
            0u8..4,
            0u8..6,
            prop::option::of((0u64..6_000, any::<bool>())),
        ),
    )
        .prop_map(
            |((kind, ack, settled, len, escrow), (result, stale, prov, check, challenge))| {
                let mut l = lease(kind);
                l.acknowledged = ack;
                // A batch lease's deposit pays its faults' fees (a deposit is never tiny).
                l.settled_at = 1_000 + settled.min(len);
                l.end = 1_000 + len;
                l.escrow = if kind == 2 { escrow } else { escrow.max(20) };
                l.provider = Address::repeat_byte(prov);
                l.stale_since = stale.map(|s| 1_000 + s);
                if let Some(at) = result
                    && kind != 2
                {
                    l.result = Some(posted(1_000 + at.min(len + 60)));
                    l.acknowledged = true;
                    l.checked = match check {
                        0 => None,
                        1 => Some(Check::Correct),
                        2 => Some(Check::Available),
                        3 => Some(Check::Missing {
                            tries: 2,
                            why: String::new(),
                        }),
                        4 => Some(Check::Private(String::new())),
                        _ => Some(Check::Mismatch(String::new())),
                    };
                    if let Some((deadline, ours)) = challenge {
                        l.challenges.insert(
                            0,
                            Challenged {
                                challenger: if ours { ME } else { OTHER },
                                deadline: 1_000 + deadline,
                            },
                        );
                    }
                }
                l
            },
        )
}

fn arb_live() -> impl Strategy<Value = Liveness> {
    (
        0u64..8_000,
        1u64..120,
        0u64..8_000,
        prop::option::of(0u64..8_000),
    )
        .prop_map(|(at, period, start, prev)| Liveness {
            at: at.max(start),
            period,
            epoch: 1,
            epoch_start: start,
            prev_start: prev.map_or(0, |p| p.min(start)),
            prev_end: prev.map_or(0, |p| p.min(start) + period),
        })
}

proptest! {
    /// No id twice in one plan, none that is busy; a batch lease without a result is never
    /// closed (MEC-02), and a lease is closed only once its rules allow it.
    #[test]
    fn no_lease_twice_and_no_batch_lease_without_a_result_closed(
        leases in prop::collection::vec(arb_lease(), 0..40),
        busy in prop::collection::vec(0u8..40, 0..10),
        now in 1_000u64..8_000,
        lives in prop::collection::vec(arb_live(), 4),
        min_fee in 0u128..40,
        priority in 0u64..900,
    ) {
        let v = view(leases.into_iter().enumerate().map(|(i, l)| (i as u8, l)).collect());
        let mut inp = inputs();
        inp.modules.insert(1, ModuleParams { tenant_priority: priority, ..module() });
        inp.busy = busy.iter().map(|b| B256::repeat_byte(*b)).collect();
        inp.min_lease_fee.insert(TOKEN, min_fee);
        for (i, l) in lives.into_iter().enumerate() {
            inp.liveness.insert(Address::repeat_byte(i as u8), l);
        }
        let c = clock(now);
        let w = plan(&v, &c, Flags::ALL, &inp);
        let mut seen = HashSet::new();
        for item in &w {
            for id in item.action.ids() {
                prop_assert!(seen.insert(id), "{id} twice");
                prop_assert!(!inp.busy.contains(&id));
            }
            match &item.action {
                Action::Settle(ids) => {
                    prop_assert!(ids.len() <= inp.settle_max);
                    let mut sum = 0;
                    for id in ids {
                        let l = &v.leases[id];
                        prop_assert!(l.service() && l.acknowledged);
                        let live = inp.liveness[&l.provider];
                        let fee = bps(service_owed(l, &live, now, 6), u64::from(l.keeper_fee_bps));
                        prop_assert!(fee > 0 && fee >= min_fee, "lease {} pays {}", id, fee);
                        sum += fee;
                    }
                    prop_assert_eq!(item.reward, sum);
                }
                Action::Close(id) => {
                    let l = &v.leases[id];
                    if l.service() {
                        let live = inp.liveness[&l.provider];
                        prop_assert!(now >= l.end || lapsed(l, &live, now)
                            || service_owed(l, &live, now, 6) >= l.escrow);
                    } else {
                        let r = l.result.as_ref();
                        prop_assert!(r.is_some(), "batch lease {} closed without a result", id);
                        prop_assert!(now > hold_end(l, r.expect("checked"), &module()));
                        prop_assert!(l.challenges.is_empty());
                    }
                }
                Action::ProveMissedDeadline(id) => {
                    let l = &v.leases[id];
                    prop_assert!(!l.service() && l.result.is_none());
                    // Not before it pays its fee (the tenant's priority).
                    prop_assert!(now > l.end + 60 + priority);
                }
                Action::Challenge(id) => {
                    let l = &v.leases[id];
                    prop_assert!(l.challenges.is_empty() && !l.answered);
                }
                _ => {}
            }
        }
    }

    /// Poll after poll, with each plan carried out as the chain would: no lease is settled
    /// when nothing is owed (no second is paid twice), nothing finished is touched again, no
    /// batch lease without a result is closed, and once every deadline has passed every lease
    /// was ended (closed, or faulted by a proof) exactly once.
    #[test]
    fn polls_settle_no_second_twice_and_end_every_lease_exactly_once(
        leases in prop::collection::vec(arb_lease(), 0..30),
        steps in prop::collection::vec(0u64..900, 1..12),
        lives in prop::collection::vec(arb_live(), 4),
        priority in 0u64..900,
    ) {
        let mut v = view(leases.into_iter().enumerate().map(|(i, l)| (i as u8, l)).collect());
        let ids: Vec<B256> = v.leases.keys().copied().collect();
        let mut inp = inputs();
        inp.modules.insert(1, ModuleParams { tenant_priority: priority, ..module() });
        for (i, l) in lives.into_iter().enumerate() {
            inp.liveness.insert(Address::repeat_byte(i as u8), l);
        }
        let mut ended: HashMap<B256, usize> = HashMap::new();
        let mut now = 1_000;
        // The steps, then polls long after every deadline until nothing is left to do.
        let polls = steps.into_iter().chain(std::iter::repeat_n(1_000_000, 8));
        for dt in polls {
            now += dt;
            let c = clock(now);
            for w in plan(&v, &c, Flags::ALL, &inp) {
                for id in w.action.ids() {
                    prop_assert!(!v.done.contains_key(&id), "{} acted on after it finished", id);
                }
                match &w.action {
                    Action::Settle(batch) => {
                        for id in batch {
                            let l = v.leases.get_mut(id).expect("planned from the view");
                            let live = inp.liveness[&l.provider];
                            let owes = service_owed(l, &live, now, 6);
                            prop_assert!(owes > 0, "{} settled with nothing owed", id);
                            let cap = if live.epoch_start <= l.settled_at {
                                live.at + live.period
                            } else {
                                live.prev_end
                            };
                            l.settled_at = now.min(l.end).min(cap);
                            l.escrow -= owes;
                        }
                    }
                    Action::Close(id) => {
                        prop_assert!(
                            v.leases[id].service() || v.leases[id].result.is_some(),
                            "batch lease {} closed without a result", id
                        );
                        *ended.entry(*id).or_default() += 1;
                        v.leases.remove(id);
                        v.done.insert(*id, now);
                    }
                    Action::ProveNoShow(id)
                    | Action::ProveMissedDeadline(id)
                    | Action::ProveStale(id)
                    | Action::ProveUnavailable(id, _) => {
                        *ended.entry(*id).or_default() += 1;
                        v.leases.remove(id);
                        v.done.insert(*id, now);
                    }
                    Action::ReportStale(id) => {
                        v.leases.get_mut(id).expect("planned from the view").stale_since =
                            Some(now);
                    }
                    Action::Verify(id) => {
                        v.leases.get_mut(id).expect("planned from the view").checked =
                            Some(Check::Correct);
                    }
                    Action::Challenge(id) => {
                        v.leases.get_mut(id).expect("planned from the view").challenges.insert(
                            0,
                            Challenged { challenger: ME, deadline: now + 100 },
                        );
                    }
                    Action::Award(_) => {}
                }
            }
        }
        prop_assert!(v.leases.is_empty(), "never ended: {:?}", v.leases.keys().collect::<Vec<_>>());
        for id in ids {
            prop_assert_eq!(ended.get(&id).copied(), Some(1), "lease {}", id);
        }
    }

    /// Nothing that does not pay is sent, unless it is named unpaid; a bond at risk is always
    /// covered by the reward.
    #[test]
    fn no_action_sent_for_work_that_does_not_pay(
        reward in 0u128..10_000_000,
        gas in 21_000u64..2_000_000,
        gas_price in 0u128..300_000_000_000,
        l1 in 0u128..1_000_000_000_000_000,
        urgent in any::<bool>(),
        bond in prop::option::of(0u128..10_000_000_000_000_000),
    ) {
        let p = Price { gas, gas_price, l1_fee: l1 };
        let mut w = Work::new(Action::Settle(vec![B256::ZERO]), reward, TOKEN, urgent);
        if let Some(b) = bond {
            w.action = Action::Challenge(B256::ZERO);
            w.at_risk = b;
            w.follow_up_gas = PROVE_UNAVAILABLE_GAS;
        }
        if decide(&w, &p, &policy()) == Decision::Send {
            let spend = p.cost() + u128::from(w.follow_up_gas) * gas_price + w.at_risk;
            let cost = wei_in(spend, TOKEN, &policy());
            prop_assert!(reward > 0 && reward * 10_000 >= cost * 12_000);
            prop_assert!(urgent || gas_price <= policy().max_gas_price);
        }
    }
}
