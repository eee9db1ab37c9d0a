//! Awards, and the decision on whether a piece of work pays for its gas (KB-01, KB-03).

use super::*;

#[test]
fn places_the_best_signed_bid_in_the_window_and_awards_only_closed_auctions_with_a_bid_afr02() {
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
    // In the window, a served signed bid is placed when it beats the bid on chain (or there is
    // none), under the gas price cap like the award; one that does not beat it is not. After the window only bids on chain
    // count: the signed bid of the auction without one is not awarded.
    let mut inp = inputs();
    inp.signed.insert(id(1), 5);
    inp.signed.insert(id(2), 9);
    let w = plan(&v, &clock(100), Flags::ALL, &inp);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].action.clone(), w[0].urgent),
        (Action::PlaceBid(id(2)), false)
    );
    inp.signed.insert(id(1), 4);
    let w = plan(&v, &clock(100), Flags::ALL, &inp);
    assert_eq!(names(&w), ["award", "award"]);
    assert!(w.iter().all(|w| matches!(w.action, Action::PlaceBid(_))));
    let w = plan(&v, &clock(101), Flags::ALL, &inp);
    assert_eq!(
        w.iter().map(|w| w.action.clone()).collect::<Vec<_>>(),
        [Action::Award(id(1))]
    );
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

proptest! {
    /// KB-01: the fee ceiling a send is bumped up to is the highest gas price at which the work
    /// still pays for itself (and, unless urgent, stays under the cap and the budget): one wei
    /// more and `decide` would have skipped it. Before, bumps went to 5x the network's estimate
    /// whatever the work paid.
    #[test]
    fn kb_01_the_fee_ceiling_is_the_highest_gas_price_the_work_pays_for(
        reward in 0u128..10_000_000,
        gas in 21_000u64..2_000_000,
        gas_price in 1u128..200_000_000_000,
        l1_fee in prop::option::of(0u128..10u128.pow(15)),
        urgent in any::<bool>(),
        unpaid in any::<bool>(),
    ) {
        let action = if unpaid { Action::Award(B256::ZERO) } else { Action::Close(B256::ZERO) };
        let w = Work::new(action, reward, TOKEN, urgent);
        let p = Price { gas, gas_price, l1_fee: l1_fee.unwrap_or(0) };
        let policy = policy();
        let ceiling = fee_ceiling(&w, &p, &policy);
        let at = |g: u128| decide(&w, &Price { gas_price: g, ..p }, &policy);
        if at(gas_price) == Decision::Send {
            prop_assert!(ceiling >= gas_price);
            prop_assert_eq!(at(ceiling), Decision::Send);
            if ceiling < u128::MAX {
                prop_assert_ne!(at(ceiling + 1), Decision::Send);
            } else {
                prop_assert!(urgent && unpaid, "only urgent work done at a loss is unbounded");
            }
            if !urgent {
                prop_assert!(ceiling <= policy.max_gas_price);
            }
        } else {
            prop_assert_eq!(ceiling, gas_price);
        }
    }
}
