//! Zero amounts (TOK-07), decimals (TOK-08), listing and amount bounds (TOK-09, TOK-10).

use super::*;

// ==================================================================== TOK-07

#[test]
fn settle_pays_nothing_and_no_keeper_fee_when_nothing_owed_tok07() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, 10 * USDC); // awarded in this very second: nothing accrued yet
    let (token, keeper) = (s.token, s.keeper.address);
    let r = settle(&mut s, id).expect_success();
    let settled = Market::settleCall::abi_decode_returns(&r.output).expect("uint256");
    assert_eq!(settled, U256::ZERO);
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    assert!(r.events::<Market::LowBalance>().is_empty());
    assert_eq!((transfers(&r), credit(&mut s, token, keeper)), (0, 0));
    let none = withdraw(&mut s, token, keeper);
    reverts!(none, NothingToWithdrawMarket(token, keeper));
}

#[test]
fn close_skips_zero_refund_transfer_when_exhausted_tok07() {
    let mut s = Suite::new();
    let id = s.service_lease(0, 0, USDC); // runs dry after 1,000 s
    s.keep_alive(0, 2 * SECS);
    let keeper = s.keeper.address;
    let r = s.close(keeper, id).expect_success();
    assert_eq!(transfers(&r), 0, "no zero-amount transfer to the tenant");
    let e = r.event::<Market::LeaseClosed>();
    assert_eq!((e.reason, e.paid, e.refund), (3, u96(USDC), U96::ZERO));
}

// ==================================================================== TOK-08

#[test]
fn close_pays_proportionally_same_amount_for_2_6_18_decimals_tok08() {
    let mut s = Suite::new();
    let tenant = s.tenant(0);
    for dec in [2u32, 6, 18] {
        let name = format!("T{dec}");
        let token = s.add_token(&name, &name, dec as u8);
        let one = 10u128.pow(dec);
        let id = lease_in(&mut s, token, 10 * one);
        s.keep_alive(0, SECS);
        let got = closed(s.close(tenant, id));
        let fee = one / 100;
        assert_eq!(got, [one, one - fee, fee, 0, 9 * one], "decimals {dec}");
    }
}

#[test]
fn settle_batch_across_2_6_18_decimal_tokens_credits_each_exactly_tok08() {
    let mut s = Suite::new();
    let (provider, keeper) = (s.provider(0), s.keeper.address);
    let mut leases = Vec::new();
    for dec in [18u32, 2, 6] {
        let token = s.add_token("Multi", "M", dec as u8);
        let id = lease_in(&mut s, token, 10 * 10u128.pow(dec));
        let start = u128::from(s.job(id).settledAt.to::<u64>());
        leases.push((token, 10u128.pow(18 - dec), id, start));
    }
    s.keep_alive(0, SECS);
    // One batch switching token twice: each token's scale and credits must stay apart.
    let r = s.settle(keeper, leases.iter().map(|l| l.2).collect());
    let settled = Market::settleCall::abi_decode_returns(&r.expect_success().output);
    assert_eq!(settled.expect("uint256"), U256::from(3));
    let now = u128::from(s.chain.now());
    for (token, scale, _, start) in leases {
        let amount = PRICE * (now - start) / scale;
        let (fee, tip) = (amount / 100, amount / 1_000);
        assert_eq!(credit(&mut s, token, provider), amount - fee - tip);
        assert_eq!(credit(&mut s, token, keeper), tip);
        assert_eq!(fees(&mut s, token), fee);
    }
}

#[test]
fn settle_defers_sub_unit_amounts_two_decimals_tok08_esc05() {
    let mut s = Suite::new();
    let token = s.add_token("Cents", "CT", 2);
    let id = lease_in(&mut s, token, 1_000); // 10.00 tokens; 0.001/s is 0.1 unit a second
    let start = s.job(id).settledAt;
    s.keep_alive(0, 5);
    let r = settle(&mut s, id).expect_success();
    // Half a unit is not paid yet, and the clock does not advance: nothing is lost.
    assert!(r.events::<Market::LeaseSettled>().is_empty());
    assert_eq!(s.job(id).settledAt, start);
    s.keep_alive(0, 5);
    assert_eq!(settled(&mut s, id), 1);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// TOK-08, ESC-05: on a token of 2 decimals (a unit is a cent), whoever settles a service
    /// lease, and however often, its provider is paid for its time to within one unit in all, and
    /// its tenant never pays more than its rate times that time. A floor per settlement let a
    /// tenant (or anyone) settling every second or two cut the provider's pay by up to half at
    /// rates near a unit a second.
    #[test]
    fn settling_often_never_rounds_a_providers_pay_away_tok08(
        rate in 1_000_000_000_000_000u128..50_000_000_000_000_000,
        steps in proptest::collection::vec(1u64..=4, 10..60),
    ) {
        let mut s = Suite::new();
        let token = s.add_token("Cents", "CT", 2);
        s.ensure_registered(0);
        s.heartbeat(0).expect_success();
        let deposit = 1_000_000 * 100; // a million tokens
        let tenant = s.tenant(0);
        s.mint(token, tenant, deposit);
        let mut p = service_in(&mut s, token, deposit);
        p.maxPricePerSecond = u96(rate);
        let id = s.create(0, p);
        s.bid(0, id, rate).expect_success();
        let start = u128::from(s.job(id).settledAt.to::<u64>());
        let mut paid = 0u128;
        let lens = s.lens;
        for step in steps {
            s.keep_alive(0, step);
            let shown: u128 = s.chain.view(lens, MarketLens::accruedCall { id }).to();
            let r = settle(&mut s, id).expect_success();
            let now: u128 = r
                .events::<Market::LeaseSettled>()
                .iter()
                .map(|e| e.amount.to::<u128>())
                .sum();
            proptest::prop_assert_eq!(shown, now, "the lens shows what a settlement pays");
            paid += now;
        }
        let owed = rate * (u128::from(s.chain.now()) - start) / 10u128.pow(16);
        proptest::prop_assert!(paid <= owed, "the tenant paid {paid} for {owed} units of time");
        proptest::prop_assert!(paid + 1 >= owed, "the provider was paid {paid} of {owed} units");
    }
}

#[test]
fn configure_token_reverts_more_than_18_decimals_tok08() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    for decimals in [19u8, 24] {
        let token = deploy_token(&mut s.chain, gov, "Wide", "W", decimals);
        let r = configure(&mut s, token, true);
        reverts!(r, TokenDecimalsUnsupported(token, decimals));
    }
}

// ==================================================================== TOK-09 / TOK-10

#[test]
fn create_order_reverts_token_not_allowed_and_listing_is_owner_only_tok09() {
    let mut s = Suite::new();
    let gov = s.gov.address;
    let token = deploy_token(&mut s.chain, gov, "Rebasing", "RB", 18);
    let tenant = s.tenant(0);
    s.mint(token, tenant, USDC);
    let r = s.try_create(0, order_in(&s, token, USDC));
    reverts!(r, TokenNotAllowed(token));
    let (outsider, market) = (s.keeper.address, s.market);
    let call = MarketAdmin::configureTokenCall::new((token, true));
    let r = s.chain.send(outsider, market, call);
    reverts!(r, OwnableUnauthorizedAccount(outsider));
}

#[test]
fn escrow_near_2_pow_96_settles_and_overflow_reverts_cleanly_tok10() {
    let mut s = Suite::new();
    let token = s.add_token("Big", "BIG", 18);
    let max: u128 = U96::MAX.to();
    let (tenant, provider, keeper) = (s.tenant(0), s.provider(0), s.keeper.address);
    let market = s.market;
    s.ensure_registered(0);
    s.heartbeat(0).expect_success();
    s.mint(token, tenant, max);
    // The highest reserve a full escrow can pay one minimum billing period (60 s) of.
    let rate = max / 60;
    let mut p = service_in(&mut s, token, max);
    p.maxPricePerSecond = u96(rate);
    p.instant = false;
    let id = s.create(0, p);
    let call = MarketAdmin::topUpCall::new((id, u96(1), Address::ZERO));
    let r = s.chain.send(tenant, market, call);
    reverts!(r, EscrowOverflow(U256::from(1u8) << 96));
    s.bid(0, id, rate).expect_success();
    s.chain.warp(601);
    s.heartbeat(0).expect_success();
    s.award(keeper, id).expect_success();
    s.ack(0, id).expect_success();
    // A century at the highest rate: capped by the escrow (ESC-06), and by the provider's last
    // heartbeat + period, which alone is worth five times the escrow.
    s.chain.warp(100 * 365 * 86_400);
    let e = ev::<Market::LeaseSettled>(settle(&mut s, id));
    assert_eq!((e.amount, e.escrowLeft), (U96::MAX, U96::ZERO));
    let (fee, tip) = (max / 100, max / 1_000);
    assert_eq!(credit(&mut s, token, provider), max - fee - tip);
    assert_eq!(closed(s.close(keeper, id)), [0, 0, 0, 0, 0]);
    assert_eq!(withdrawn(&mut s, token, provider), max - fee - tip);
    assert_eq!(s.balance(token, market), fee + tip);
}
