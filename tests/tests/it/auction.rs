//! Market: order creation, bidding, award and cancellation (SECURITY.md section A).

#![allow(clippy::type_complexity)] // tables of field mutators

use alloy::primitives::{Address, B256, U256, aliases::U96};
use gridlease_bindings::{
    IMarket::SignedBid,
    Market::{self, MarketErrors},
    Staking::{self, StakingErrors},
};
use gridlease_tests::{assert_revert, fixture::*};

fn suite_with_providers(n: usize) -> Suite {
    let mut s = Suite::new();
    for i in 0..n {
        s.register(i, 10_000 * USDC);
    }
    s
}

fn status(s: &mut Suite, id: B256) -> u8 {
    s.job(id).status
}

const OPEN: u8 = 1;
const LEASED: u8 = 2;
const CANCELLED: u8 = 4;

// ------------------------------------------------------------------ createOrder

#[test]
fn create_order_succeeds_and_emits_all_terms() {
    // AUC-17: the event carries everything a provider needs to decide and bid.
    let mut s = suite_with_providers(0);
    let params = s.order(50 * USDC, PRICE);
    let before = s.balance(s.token, s.tenant(0));
    let r = {
        let deposit: u128 = params.deposit.to();
        let (t, m, tok) = (s.tenant(0), s.market, s.token);
        s.approve(tok, t, m, deposit);
        s.chain
            .send(t, m, Market::createOrderCall { p: params.clone() })
            .expect_success()
    };
    let ev = r.event::<Market::OrderCreated>();
    assert_eq!(ev.tenant, s.tenant(0));
    assert_eq!(ev.params.specHash, params.specHash);
    assert_eq!(ev.params.specURI, params.specURI);
    assert_eq!(ev.biddingEnd.to::<u64>(), s.chain.now() + 600);
    let expected_id = params.order_id(s.tenant(0));
    assert_eq!(ev.orderId, expected_id);
    assert_eq!(s.balance(s.token, s.tenant(0)), before - 50 * USDC);
    assert_eq!(s.balance(s.token, s.market), 50 * USDC);
    assert_eq!(status(&mut s, ev.orderId), OPEN);
}

#[test]
fn create_order_with_permit_succeeds_without_approval() {
    let mut s = suite_with_providers(0);
    let params = s.order(5 * USDC, PRICE);
    s.create_with_permit(0, params).expect_success();
    assert_eq!(s.balance(s.token, s.market), 5 * USDC);
}

#[test]
fn create_order_with_permit_succeeds_when_permit_front_run() {
    // ESC-02: an attacker submits the tenant's permit first; the order still goes through.
    let mut s = suite_with_providers(0);
    let params = s.order(5 * USDC, PRICE);
    let (v, r, sig_s, deadline) = s.permit(0, s.token, 5 * USDC);
    let (tenant, market, token, attacker) = (s.tenant(0), s.market, s.token, s.keeper.address);
    s.chain
        .send(
            attacker,
            token,
            gridlease_bindings::MockStablecoin::permitCall {
                owner: tenant,
                spender: market,
                value: U256::from(5 * USDC),
                deadline,
                v,
                r,
                s: sig_s,
            },
        )
        .expect_success();
    s.chain
        .send(
            tenant,
            market,
            Market::createOrderWithPermitCall {
                p: params,
                deadline,
                v,
                r,
                s: sig_s,
            },
        )
        .expect_success();
    assert_eq!(s.balance(token, market), 5 * USDC);
}

#[test]
fn create_order_with_permit_reverts_when_permit_invalid_and_no_allowance() {
    // ESC-02/ESC-03: a permit signed by someone else (owner != msg.sender) does not authorise.
    let mut s = suite_with_providers(0);
    let params = s.order(5 * USDC, PRICE);
    let (v, r, sig_s, deadline) = s.permit(1, s.token, 5 * USDC);
    let (tenant, market) = (s.tenant(0), s.market);
    let rc = s.chain.send(
        tenant,
        market,
        Market::createOrderWithPermitCall {
            p: params,
            deadline,
            v,
            r,
            s: sig_s,
        },
    );
    assert_revert!(rc, MarketErrors::InsufficientAllowance);
}

#[test]
fn create_order_reverts_on_bad_terms() {
    // AUC-15: zero deposit/duration/window, duration above the bound, reserve below minimum.
    // The fixture's reserve is 0.001 USDC a second and its minimum billing period 60 s, so a
    // deposit of 0.06 USDC (60,000 units) is the least an order can carry.
    let mut s = suite_with_providers(0);
    let cases: Vec<(
        &str,
        Box<dyn Fn(&mut gridlease_bindings::IMarket::OrderParams)>,
    )> = vec![
        ("deposit", Box::new(|p| p.deposit = U96::ZERO)),
        ("maxDuration", Box::new(|p| p.maxDuration = 0)),
        ("maxDuration", Box::new(|p| p.maxDuration = 7 * 86_400 + 1)),
        ("bidWindow", Box::new(|p| p.bidWindow = 0)),
        ("bidWindow", Box::new(|p| p.bidWindow = 86_401)),
        (
            "maxPricePerSecond",
            Box::new(|p| p.maxPricePerSecond = U96::from(1u64)),
        ),
        ("gpuCount", Box::new(|p| p.gpuCount = 0)),
        ("gpuClass", Box::new(|p| p.gpuClass = 64)),
        // MEC-14: orders nobody can serve: an unknown kind, nothing to slash, a deposit that does
        // not pay one minimum billing period at its own reserve.
        ("jobKind", Box::new(|p| p.jobKind = 3)),
        ("collateral", Box::new(|p| p.collateral = U96::ZERO)),
        ("deposit", Box::new(|p| p.deposit = U96::from(59_999u64))),
    ];
    for (field, mutate) in cases {
        let mut p = s.order(USDC, PRICE);
        mutate(&mut p);
        let r = s.try_create(0, p);
        match r.revert_as::<MarketErrors>() {
            MarketErrors::InvalidOrder(e) => {
                assert_eq!(e.field, B256::right_padding_from(field.as_bytes()))
            }
            other => panic!("{field}: unexpected {other:?}"),
        }
    }
}

#[test]
fn create_order_reverts_when_token_not_allowed() {
    let mut s = suite_with_providers(0);
    let gov = s.gov.address;
    let other = deploy_token(&mut s.chain, gov, "Other", "OTH", 6);
    let mut p = s.order(USDC, PRICE);
    p.token = other;
    s.mint(other, s.tenant(0), USDC);
    let r = s.try_create(0, p);
    assert_revert!(r, MarketErrors::TokenNotAllowed);
}

#[test]
fn create_order_reverts_when_id_exists() {
    let mut s = suite_with_providers(0);
    let p = s.order(USDC, PRICE);
    s.create(0, p.clone());
    let r = s.try_create(0, p);
    assert_revert!(r, MarketErrors::OrderExists);
}

#[test]
fn create_order_reverts_when_paused() {
    // ESC-12: pause refuses new money in.
    let mut s = suite_with_providers(0);
    let mut params = default_params();
    params.paused = true;
    s.set_params(params).expect_success();
    let p = s.order(USDC, PRICE);
    assert_revert!(s.try_create(0, p), MarketErrors::MarketPaused);
}

// ------------------------------------------------------------------ bid

#[test]
fn bid_succeeds_and_tracks_lowest() {
    let mut s = suite_with_providers(3);
    let id = s.create(0, s.order(USDC, PRICE));
    let r = s.bid(0, id, PRICE).expect_success();
    let ev = r.event::<Market::BidPlaced>();
    assert_eq!(
        (ev.orderId, ev.provider, ev.pricePerSecond.to::<u128>()),
        (id, s.provider(0), PRICE)
    );
    s.bid(1, id, PRICE - 10).expect_success();
    let job = s.job(id);
    assert_eq!(
        (job.provider, job.ratePerSecond.to::<u128>()),
        (s.provider(1), PRICE - 10)
    );
}

#[test]
fn bid_reverts_on_missing_or_closed_order() {
    // AUC-01: unknown, cancelled and awarded orders.
    let mut s = suite_with_providers(1);
    let r = s.bid(0, B256::repeat_byte(9), PRICE);
    assert_revert!(r, MarketErrors::OrderNotOpen);
    let id = s.create(0, s.order(USDC, PRICE));
    let t = s.tenant(0);
    s.cancel(t, id).expect_success();
    assert_revert!(s.bid(0, id, PRICE), MarketErrors::OrderNotOpen);
    let leased = s.lease(10 * USDC);
    assert_revert!(s.bid(0, leased, PRICE / 2), MarketErrors::OrderNotOpen);
}

#[test]
fn bid_boundary_at_bidding_end() {
    // AUC-02: biddingEnd - 1 and biddingEnd accept, biddingEnd + 1 rejects.
    let mut s = suite_with_providers(3);
    let id = s.create(0, s.order(USDC, PRICE));
    let end = s.job(id).biddingEnd.to::<u64>();
    s.chain.set_time(end - 1);
    s.bid(0, id, PRICE).expect_success();
    s.chain.set_time(end);
    s.bid(1, id, PRICE - 1).expect_success();
    s.chain.set_time(end + 1);
    assert_revert!(s.bid(2, id, PRICE - 2), MarketErrors::BiddingClosed);
}

#[test]
fn bid_reserve_and_minimum_bounds() {
    // AUC-03 and AUC-04.
    let mut s = suite_with_providers(1);
    let id = s.create(0, s.order(USDC, PRICE));
    assert_revert!(s.bid(0, id, PRICE + 1), MarketErrors::BidAboveReserve);
    assert_revert!(s.bid(0, id, 0), MarketErrors::BidBelowMinimum);
    let min = u128::from(default_params().minPricePerSecond);
    assert_revert!(s.bid(0, id, min - 1), MarketErrors::BidBelowMinimum);
    s.bid(0, id, PRICE).expect_success();
}

#[test]
fn bid_reverts_without_free_collateral() {
    // AUC-05: stake locked in another lease does not count twice.
    let mut s = Suite::new();
    s.register(0, 150 * USDC);
    let _lease = s.lease(10 * USDC); // locks 100 of 150
    let mut p = s.order(USDC, PRICE);
    p.salt = B256::with_last_byte(2);
    let id = s.create(0, p);
    match s.bid(0, id, PRICE).revert_as::<MarketErrors>() {
        MarketErrors::InsufficientCollateral(e) => {
            assert_eq!(e.free, U256::from(50 * USDC));
            assert_eq!(e.needed, U256::from(100 * USDC));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bid_reverts_for_non_operator_and_capacity_mismatch() {
    let mut s = suite_with_providers(1);
    let id = s.create(0, s.order(USDC, PRICE));
    let (k, m) = (s.keeper.address, s.market);
    let r = s.chain.send(
        k,
        m,
        Market::bidCall {
            orderId: id,
            price: U96::from(PRICE),
        },
    );
    assert_revert!(r, MarketErrors::NotAnOperator);
    let mut p = s.order(USDC, PRICE);
    p.vramGiB = 81;
    p.salt = B256::with_last_byte(3);
    let big = s.create(0, p);
    assert_revert!(s.bid(0, big, PRICE), MarketErrors::CapacityMismatch);
}

#[test]
fn bid_replaces_own_and_rejects_not_lower() {
    // AUC-06 (binding bids, only the lowest kept: a provider can improve, never withdraw or
    // raise, so the best pointer is always right) and AUC-09 (ties go to the earlier bid).
    let mut s = suite_with_providers(2);
    let id = s.create(0, s.order(USDC, PRICE));
    s.bid(0, id, PRICE).expect_success();
    s.bid(0, id, PRICE - 5).expect_success();
    assert_revert!(s.bid(0, id, PRICE), MarketErrors::BidNotLowest);
    assert_revert!(s.bid(1, id, PRICE - 5), MarketErrors::BidNotLowest);
    let job = s.job(id);
    assert_eq!(
        (job.provider, job.ratePerSecond.to::<u128>()),
        (s.provider(0), PRICE - 5)
    );
}

#[test]
fn bid_on_instant_order_awards_at_once() {
    let mut s = suite_with_providers(2);
    let mut p = s.order(USDC, PRICE);
    p.instant = true;
    let id = s.create(0, p);
    let r = s.bid(0, id, PRICE).expect_success();
    let ev = r.event::<Market::LeaseStarted>();
    assert_eq!(
        (ev.provider, ev.start.to::<u64>()),
        (s.provider(0), s.chain.now())
    );
    assert_eq!(status(&mut s, id), LEASED);
    assert_revert!(s.bid(1, id, PRICE - 1), MarketErrors::OrderNotOpen);
}

#[test]
fn bid_spam_keeps_award_cost_flat() {
    // AUC-08: 1,000 bids on one order; award gas equals the one-bid case.
    let mut one = suite_with_providers(1);
    let id = one.create(0, one.order(USDC, PRICE));
    one.bid(0, id, PRICE).expect_success();
    one.chain.warp(601);
    let k = one.keeper.address;
    let single = one.award(k, id).expect_success().gas_used;

    let mut s = suite_with_providers(2);
    let id = s.create(0, s.order(USDC, PRICE));
    for i in 0..1_000u128 {
        s.bid((i % 2) as usize, id, PRICE - i).expect_success();
    }
    s.chain.warp(601);
    let k = s.keeper.address;
    let many = s.award(k, id).expect_success().gas_used;
    assert_eq!(
        many, single,
        "award gas must not depend on the number of bids"
    );
}

// ------------------------------------------------------------------ award

#[test]
fn award_reverts_before_bidding_end_and_twice() {
    // AUC-11.
    let mut s = suite_with_providers(1);
    let id = s.create(0, s.order(USDC, PRICE));
    s.bid(0, id, PRICE).expect_success();
    let k = s.keeper.address;
    s.chain.warp(600);
    assert_revert!(s.award(k, id), MarketErrors::BiddingStillOpen);
    s.chain.warp(1);
    let ev = s
        .award(k, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!(
        (ev.provider, ev.tenant, ev.signedBid),
        (s.provider(0), s.tenant(0), false)
    );
    assert_revert!(s.award(k, id), MarketErrors::OrderNotOpen);
}

#[test]
fn signed_bids_placed_in_the_window_compete_with_on_chain_bids_and_the_lowest_wins_afr02() {
    // AFR-02: a signed bid counts once anyone places it (`bidSigned`) before the window closes,
    // by the rules of an on-chain bid; the award takes the lowest, and its caller chooses nothing:
    // here provider 0, the highest bidder, awards and provider 2's signed bid wins.
    let mut s = suite_with_providers(3);
    let id = s.create(0, s.order(USDC, PRICE));
    s.bid(0, id, PRICE).expect_success();
    let k = s.keeper.address;
    let b1 = s.signed_bid(1, id, PRICE - 3);
    s.bid_signed(k, id, b1).expect_success();
    let b2 = s.signed_bid(2, id, PRICE - 7);
    s.bid_signed(k, id, b2).expect_success();
    // Only the lowest is kept: a higher signed bid is refused like a higher on-chain one.
    let b1 = s.signed_bid(1, id, PRICE - 5);
    assert_revert!(s.bid_signed(k, id, b1), MarketErrors::BidNotLowest);
    let locked = |s: &mut Suite, i: usize| s.provider_info(i).locked.to::<u128>();
    assert_eq!(
        (locked(&mut s, 0), locked(&mut s, 1), locked(&mut s, 2)),
        (0, 0, 100 * USDC),
        "only the standing lowest bid holds collateral"
    );
    s.chain.warp(601);
    let op0 = s.operator(0);
    let ev = s
        .award(op0, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!(
        (ev.provider, ev.ratePerSecond.to::<u128>(), ev.signedBid),
        (s.provider(2), PRICE - 7, true)
    );
}

#[test]
fn a_bid_signed_after_the_window_cannot_win_afr02() {
    // AFR-02: provider 1 bids in time; after the window, provider 0 signs a lower bid at the
    // reserve less one unit below it and tries to place it and award itself. Nothing it can send
    // counts: the in-time bid wins.
    let mut s = suite_with_providers(2);
    let id = s.create(0, s.order(USDC, PRICE));
    s.bid(1, id, PRICE - 10).expect_success();
    s.chain.warp(601);
    let (op0, late) = (s.operator(0), s.signed_bid(0, id, PRICE - 11));
    assert_revert!(s.bid_signed(op0, id, late), MarketErrors::BiddingClosed);
    assert_revert!(s.bid(0, id, PRICE - 11), MarketErrors::BiddingClosed);
    let ev = s
        .award(op0, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!(
        (ev.provider, ev.ratePerSecond.to::<u128>()),
        (s.provider(1), PRICE - 10)
    );
    // With no bid in time, a late one at reserve - 1 cannot start the lease either.
    let mut p = s.order(USDC, PRICE);
    p.salt = B256::with_last_byte(9);
    let empty = s.create(0, p);
    s.chain.warp(601);
    let late = s.signed_bid(0, empty, PRICE - 1);
    assert_revert!(s.bid_signed(op0, empty, late), MarketErrors::BiddingClosed);
    assert_revert!(s.award(op0, empty), MarketErrors::NoValidBid);
}

#[test]
fn an_on_chain_bid_keeps_a_tie_against_a_later_signed_one() {
    // AUC-09: equal prices go to the earlier bid, however it was placed.
    let mut s = suite_with_providers(2);
    let id = s.create(0, s.order(USDC, PRICE));
    s.bid(0, id, PRICE - 1).expect_success();
    let (k, b) = (s.keeper.address, s.signed_bid(1, id, PRICE - 1));
    assert_revert!(s.bid_signed(k, id, b), MarketErrors::BidNotLowest);
    s.chain.warp(601);
    let ev = s
        .award(k, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!((ev.provider, ev.signedBid), (s.provider(0), false));
}

#[test]
fn a_signed_bid_is_bound_to_its_order_price_expiry_chain_and_market_afr03() {
    // AFR-03 / AUC-10: the signature covers the order id (every term and the tenant), the price
    // and the expiry under the market's EIP-712 domain (chain id, address). A bid for another
    // order, a changed price or expiry, another market's domain and garbage recover to no
    // operator; an expired bid is refused; a price above the reserve is refused.
    let mut s = suite_with_providers(4);
    let id = s.create(0, s.order(USDC, PRICE));
    let mut other = s.order(USDC, PRICE);
    other.salt = B256::with_last_byte(7);
    let other_id = s.create(0, other);
    let k = s.keeper.address;
    let replayed = s.signed_bid(0, other_id, PRICE - 10);
    assert_revert!(s.bid_signed(k, id, replayed), MarketErrors::NotAnOperator);
    let mut cheaper = s.signed_bid(0, id, PRICE - 10);
    cheaper.pricePerSecond = U96::from(PRICE - 20);
    assert_revert!(s.bid_signed(k, id, cheaper), MarketErrors::NotAnOperator);
    let mut longer = s.signed_bid(0, id, PRICE - 10);
    longer.expiry += alloy::primitives::aliases::U48::from(1);
    assert_revert!(s.bid_signed(k, id, longer), MarketErrors::NotAnOperator);
    let mut forged = s.signed_bid(0, id, PRICE - 10);
    let sig = gridlease_primitives::eip712::Bid::new(id, PRICE - 10, forged.expiry.to())
        .sign(
            &gridlease_primitives::eip712::market_domain(
                gridlease_tests::evm::CHAIN_ID,
                Address::repeat_byte(1),
            ),
            &s.providers[0].operator.key,
        )
        .expect("sign");
    forged.signature = sig.as_bytes().to_vec().into();
    assert_revert!(s.bid_signed(k, id, forged), MarketErrors::NotAnOperator);
    let garbage = SignedBid {
        pricePerSecond: U96::from(PRICE - 20),
        expiry: alloy::primitives::aliases::U48::from(u64::MAX >> 16),
        signature: vec![1u8; 65].into(),
    };
    assert_revert!(s.bid_signed(k, id, garbage), MarketErrors::NotAnOperator);
    let mut expired = s.signed_bid(1, id, PRICE - 9);
    expired.expiry = alloy::primitives::aliases::U48::from(s.chain.now() - 1);
    assert_revert!(s.bid_signed(k, id, expired), MarketErrors::BidExpired);
    let high = s.signed_bid(2, id, PRICE + 1);
    assert_revert!(s.bid_signed(k, id, high), MarketErrors::BidAboveReserve);
    // The genuine one is placed, by anyone.
    let good = s.signed_bid(3, id, PRICE - 2);
    let t = s.tenant(0);
    s.bid_signed(t, id, good).expect_success();
    s.chain.warp(601);
    let ev = s
        .award(k, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!(
        (ev.provider, ev.ratePerSecond.to::<u128>()),
        (s.provider(3), PRICE - 2)
    );
}

#[test]
fn a_signed_bid_on_an_instant_order_starts_the_lease_unacknowledged() {
    // A quote accepted: the first valid bid on an instant order wins at once. Placed by someone
    // other than its operator, the lease must still be acknowledged within the start window.
    let mut s = suite_with_providers(1);
    let mut p = s.order(USDC, PRICE);
    p.instant = true;
    let id = s.create(0, p);
    let (t, b) = (s.tenant(0), s.signed_bid(0, id, PRICE - 1));
    let ev = s
        .bid_signed(t, id, b)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!((ev.provider, ev.signedBid), (s.provider(0), true));
    assert!(!s.job(id).acknowledged);
}

#[test]
fn the_lowest_bidder_cannot_unbond_the_collateral_its_bid_reserved_auc12() {
    // AUC-12: the lowest on-chain bidder tries to unbond after bidding. Its bid reserved the
    // order's collateral (AFR-01), so only the rest of its stake can go, and the award starts
    // its lease on that reservation, locking nothing twice.
    let mut s = suite_with_providers(2);
    let id = s.create(0, s.order(USDC, PRICE));
    s.bid(0, id, PRICE - 10).expect_success();
    let (owner, staking) = (s.provider(0), s.staking);
    let unbond = |s: &mut Suite, usdc: u128| {
        s.chain.send(
            owner,
            staking,
            Staking::unbondCall {
                amount: U256::from(usdc * USDC),
            },
        )
    };
    assert_revert!(unbond(&mut s, 9_950), StakingErrors::InsufficientFreeStake);
    unbond(&mut s, 9_900).expect_success();
    s.chain.warp(601);
    let k = s.keeper.address;
    let ev = s
        .award(k, id)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!(ev.provider, owner);
    let info = s.provider_info(0);
    assert_eq!(
        (info.stake.to::<u128>(), info.locked.to::<u128>()),
        (100 * USDC, 100 * USDC)
    );
}

#[test]
fn one_stake_cannot_hold_the_lowest_bid_on_many_orders_afr01() {
    // AFR-01: a bidder with stake for one order's collateral places the minimum bid on one order;
    // it cannot also hold a second with the same stake. Outbid, it gets its stake back; a lower
    // signed bid placed by anyone and a cancelled order free the on-chain bid's reservation too.
    let mut s = suite_with_providers(2);
    s.register(2, 150 * USDC);
    let order = |s: &mut Suite, salt: u8| {
        let mut p = s.order(10 * USDC, PRICE);
        p.salt = B256::with_last_byte(salt);
        s.create(0, p)
    };
    let (a, b, c) = (order(&mut s, 1), order(&mut s, 2), order(&mut s, 3));
    let cheap = u128::from(default_params().minPricePerSecond) + 1;
    let locked = |s: &mut Suite, i: usize| s.provider_info(i).locked.to::<u128>();
    s.bid(2, a, cheap).expect_success();
    assert_eq!(locked(&mut s, 2), 100 * USDC);
    match s.bid(2, b, cheap).revert_as::<MarketErrors>() {
        MarketErrors::InsufficientCollateral(e) => assert_eq!(e.free, U256::from(50 * USDC)),
        other => panic!("unexpected {other:?}"),
    }
    // A lower bid on a frees the cheap bidder's stake, which can then bid on b.
    s.bid(0, a, cheap - 1).expect_success();
    assert_eq!((locked(&mut s, 2), locked(&mut s, 0)), (0, 100 * USDC));
    s.bid(2, b, cheap).expect_success();
    // A provider improving its own bid does not lock twice.
    s.bid(2, b, cheap - 1).expect_success();
    assert_eq!(locked(&mut s, 2), 100 * USDC);
    // On c, provider 1's on-chain bid is beaten by provider 0's lower signed bid, and freed.
    s.bid(1, c, PRICE).expect_success();
    assert_eq!(locked(&mut s, 1), 100 * USDC);
    let k = s.keeper.address;
    let signed = s.signed_bid(0, c, PRICE - 1);
    s.bid_signed(k, c, signed).expect_success();
    s.chain.warp(601);
    let ev = s
        .award(k, c)
        .expect_success()
        .event::<Market::LeaseStarted>();
    assert_eq!(ev.provider, s.provider(0));
    assert_eq!((locked(&mut s, 1), locked(&mut s, 0)), (0, 200 * USDC));
    // The tenant cancels b: provider 2's reservation goes with it.
    let t = s.tenant(0);
    s.cancel(t, b).expect_success();
    assert_eq!(locked(&mut s, 2), 0);
    // a is awarded to its lowest bidder on the collateral locked since it bid.
    s.award(k, a).expect_success();
    assert_eq!(locked(&mut s, 0), 200 * USDC);
}

#[test]
fn award_reverts_without_valid_bid() {
    let mut s = suite_with_providers(0);
    let id = s.create(0, s.order(USDC, PRICE));
    s.chain.warp(601);
    let k = s.keeper.address;
    assert_revert!(s.award(k, id), MarketErrors::NoValidBid);
}

// ------------------------------------------------------------------ cancelOrder

#[test]
fn cancel_order_refunds_tenant_in_full() {
    // AUC-14.
    let mut s = suite_with_providers(1);
    let before = s.balance(s.token, s.tenant(0));
    let id = s.create(0, s.order(7 * USDC, PRICE));
    s.bid(0, id, PRICE).expect_success();
    let t = s.tenant(0);
    let ev = s
        .cancel(t, id)
        .expect_success()
        .event::<Market::OrderCancelled>();
    assert_eq!(ev.refund.to::<u128>(), 7 * USDC);
    assert_eq!(s.balance(s.token, s.tenant(0)), before);
    assert_eq!(status(&mut s, id), CANCELLED);
    let again = s.cancel(t, id);
    assert_revert!(again, MarketErrors::OrderNotOpen);
}

#[test]
fn cancel_order_by_anyone_only_after_award_grace() {
    // AUC-13: no bids by the deadline; a keeper closes it and the tenant gets everything back.
    let mut s = suite_with_providers(0);
    let before = s.balance(s.token, s.tenant(0));
    let id = s.create(0, s.order(7 * USDC, PRICE));
    let k = s.keeper.address;
    s.chain.warp(600 + 3_600);
    let early = s.cancel(k, id);
    assert_revert!(early, MarketErrors::NotTenant);
    s.chain.warp(1);
    s.cancel(k, id).expect_success();
    assert_eq!(s.balance(s.token, s.tenant(0)), before);
}

#[test]
fn cancel_order_reverts_after_award() {
    // AUC-14: after award the tenant goes through close, never a second refund.
    let mut s = Suite::new();
    let id = s.lease(10 * USDC);
    let t = s.tenant(0);
    let r = s.cancel(t, id);
    assert_revert!(r, MarketErrors::OrderNotOpen);
}

// ------------------------------------------------------------------ topUp before award

#[test]
fn top_up_open_order_adds_escrow() {
    let mut s = suite_with_providers(0);
    let id = s.create(0, s.order(USDC, PRICE));
    let t = s.tenant(0);
    let ev = s
        .top_up(t, id, USDC, Address::ZERO)
        .expect_success()
        .event::<Market::ToppedUp>();
    assert_eq!(ev.escrow.to::<u128>(), 2 * USDC);
}
