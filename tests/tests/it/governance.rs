//! Governance with live state (SECURITY L, GOV-01..05): every change goes through the timelock,
//! waits its delay, and never reaches a lease that has started.

use alloy::primitives::{B256, aliases::U96};
use gridlease_bindings::{
    HostileModule,
    Market::{self, MarketErrors},
    MarketAdmin, MarketLens,
    Results::{self, ResultsErrors},
    Staking,
    Timelock::TimelockErrors,
};
use gridlease_tests::{assert_revert, fixture::*};

/// A delay that covers the default results module's fault horizon.
const DELAY: u64 = CHALLENGE_WINDOW + 3 * RESPONSE_WINDOW;
const PER_SEC: u128 = PRICE / 1_000_000_000_000;

fn module_count(s: &mut Suite) -> u8 {
    let lens = s.lens;
    s.chain.view(lens, MarketLens::moduleCountCall {})
}

#[test]
fn a_change_lands_only_after_the_timelock_delay_gov01() {
    let mut s = Suite::with_timelock(DELAY);
    let market = s.market;
    let mut p = default_params();
    p.protocolFeeBps = 500;
    let op = s.schedule(
        market,
        MarketAdmin::setParamsCall {
            params_: admin_params(p),
        },
    );
    assert_revert!(
        s.execute(&op),
        TimelockErrors::TimelockUnexpectedOperationState
    );
    s.chain.warp(DELAY - 1);
    assert_revert!(
        s.execute(&op),
        TimelockErrors::TimelockUnexpectedOperationState
    );
    s.chain.warp(1);
    s.execute(&op).expect_success();
    assert_eq!(
        s.chain.view(market, Market::paramsCall {}).protocolFeeBps,
        500
    );
    // Nobody but the timelock may change anything; the gov key itself is only its proposer.
    let gov = s.gov.address;
    let r = s.chain.send(
        gov,
        market,
        MarketAdmin::setParamsCall {
            params_: admin_params(default_params()),
        },
    );
    assert_revert!(r, MarketErrors::OwnableUnauthorizedAccount);
}

/// A module whose deadline grace is not shorter than its challenge window is refused: a result
/// posted at the end of the grace would be held for no time, closed and paid unchallengeable.
#[test]
fn a_module_s_deadline_grace_must_be_shorter_than_its_challenge_window() {
    use alloy::{
        primitives::{U256, aliases::U48},
        sol_types::SolConstructor,
    };
    let mut s = Suite::new();
    let (gov, market) = (s.gov.address, s.market);
    let with = |grace: u64| {
        creation(
            &Results::BYTECODE,
            Results::constructorCall {
                market_: market,
                challengeWindow_: U48::from(3_600u64),
                startWindow_: START_WINDOW as u32,
                staleGrace_: STALE_GRACE as u32,
                deadlineGrace_: grace as u32,
                responseWindow_: RESPONSE_WINDOW as u32,
                challengeBond_: U256::from(CHALLENGE_BOND),
                faultFeeBps_: FAULT_FEE_BPS,
                tenantPriority_: TENANT_PRIORITY as u32,
            }
            .abi_encode(),
        )
    };
    let r = s.chain.try_deploy(gov, with(3_600));
    assert_revert!(r, ResultsErrors::InvalidResult);
    assert!(s.chain.try_deploy(gov, with(3_599)).success);
}

#[test]
fn a_new_module_needs_a_timelock_covering_its_horizon_gov01() {
    // An EOA owner cannot add a module after the first one...
    let mut s = Suite::new();
    let (gov, market) = (s.gov.address, s.market);
    let module2 = deploy_results(&mut s.chain, gov, market, CHALLENGE_WINDOW);
    let r = s.govern(market, MarketAdmin::addModuleCall { module: module2 });
    assert_revert!(r, MarketErrors::TimelockTooShort);
    // ...nor a timelock whose delay is shorter than the module's horizon...
    let mut s = Suite::with_timelock(3_600);
    let (gov, market) = (s.gov.address, s.market);
    let module2 = deploy_results(&mut s.chain, gov, market, CHALLENGE_WINDOW);
    let r = s.govern(market, MarketAdmin::addModuleCall { module: module2 });
    assert!(!r.success);
    assert_eq!(module_count(&mut s), 1);
    // ...but one that covers it can.
    let mut s = Suite::with_timelock(DELAY);
    let (gov, market) = (s.gov.address, s.market);
    let module2 = deploy_results(&mut s.chain, gov, market, CHALLENGE_WINDOW);
    s.govern(market, MarketAdmin::addModuleCall { module: module2 })
        .expect_success();
    assert_eq!(module_count(&mut s), 2);
}

#[test]
fn a_module_whose_windows_outlast_the_fault_horizon_is_refused_gov04() {
    // Challenge window < unbonding period on chain: a module must fit the market's fault horizon,
    // which every setter keeps below the unbonding period.
    let mut s = Suite::with_timelock(10 * 86_400);
    let (gov, market) = (s.gov.address, s.market);
    let long = deploy_results(&mut s.chain, gov, market, FAULT_HORIZON);
    let r = s.govern(market, MarketAdmin::addModuleCall { module: long });
    assert!(
        !r.success,
        "a module of a {FAULT_HORIZON} s window does not fit"
    );
    assert_eq!(module_count(&mut s), 1);
}

#[test]
fn no_change_reaches_an_open_running_or_held_lease_gov02() {
    // Every change is scheduled first; the leases start just before it lands; then each lease runs
    // on its own terms: fees, results module and windows, heartbeat period.
    let mut s = Suite::with_timelock(DELAY);
    s.register(0, 10_000 * USDC);
    let (gov, market, staking) = (s.gov.address, s.market, s.staking);
    let module2 = deploy_results(&mut s.chain, gov, market, 2 * 3_600);
    let mut p = default_params();
    (p.protocolFeeBps, p.keeperFeeBps) = (1_000, 100);
    let ops = [
        s.schedule(
            market,
            MarketAdmin::setParamsCall {
                params_: admin_params(p),
            },
        ),
        s.schedule(market, MarketAdmin::addModuleCall { module: module2 }),
        s.schedule(staking, Staking::setHeartbeatPeriodCall { period: 60 }),
        s.schedule(
            market,
            MarketAdmin::setTreasuryCall {
                treasury_: s.tenants[3].address,
            },
        ),
    ];
    s.chain.warp(DELAY - 700);
    // Open (auction), running (batch, acknowledged), held (batch with a result), service.
    let order = s.fresh_order(10 * USDC, PRICE * 2);
    let open = s.create(1, order);
    s.bid(0, open, PRICE).expect_success();
    let mut long = s.fresh_order(10 * USDC, PRICE * 2);
    (long.instant, long.maxDuration) = (true, 5 * 86_400);
    let running = s.create(2, long);
    s.bid(0, running, PRICE).expect_success();
    let held = s.instant_lease(0, 0, 10 * USDC);
    let service = s.service_lease(3, 0, 10 * USDC);
    s.chain.warp(100);
    s.post(0, held, b"held before the change")
        .0
        .expect_success();
    let held_end: u64 = s.job(held).end.to();
    s.chain.warp(600);
    for op in &ops {
        s.execute(op).expect_success();
    }
    assert_eq!(module_count(&mut s), 2);

    // The held result keeps its module's one-day window and the old 1% fee.
    let k = s.keeper.address;
    s.chain.set_time(held_end);
    assert_revert!(s.close(k, held), MarketErrors::LeaseHeld);
    s.chain.warp(1);
    let e = s
        .close(k, held)
        .expect_success()
        .event::<Market::LeaseClosed>();
    assert_eq!(e.protocolFee.to::<u128>(), 100 * PER_SEC / 100);
    assert_eq!(e.keeperFee.to::<u128>(), 100 * PER_SEC / 1_000);
    // The running lease posts under its own module: its hold is one day, not two hours.
    s.post(0, running, b"late but in time").0.expect_success();
    let j = s.job(running);
    assert_eq!(s.lens_module_of(running), s.results);
    assert_eq!(j.end.to::<u64>() - s.chain.now(), CHALLENGE_WINDOW);
    // The service lease keeps the 300 s period of the epoch it runs in: it lapsed long ago.
    let t3 = s.tenant(3);
    let ev = s
        .close(t3, service)
        .expect_success()
        .event::<Market::LeaseClosed>();
    assert_eq!(ev.paid.to::<u128>(), HEARTBEAT as u128 * PER_SEC);
    // The open order, awarded now, is bound to the new module and the new fees.
    let r = s.award(k, open).expect_success();
    let started = r.event::<Market::LeaseStarted>();
    assert_eq!((started.module, started.protocolFeeBps), (2, 1_000));
    assert_eq!(s.lens_module_of(open), module2);
}

#[test]
fn replacing_the_module_never_faults_strands_or_blocks_a_lease_gov03() {
    // v1 finding 6: after a new results contract, an honest held lease could be slashed through
    // proveMissedDeadline (the new contract had no record of its result).
    let mut s = Suite::with_timelock(DELAY);
    s.register(0, 10_000 * USDC);
    let (gov, market) = (s.gov.address, s.market);
    let module2 = deploy_results(&mut s.chain, gov, market, CHALLENGE_WINDOW);
    let op = s.schedule(market, MarketAdmin::addModuleCall { module: module2 });
    s.chain.warp(DELAY - 100);
    let held = s.instant_lease(0, 0, 10 * USDC);
    let accepted = s.instant_lease(1, 0, 10 * USDC);
    s.chain.warp(50);
    s.post(0, held, b"honest").0.expect_success();
    s.post(0, accepted, b"honest too").0.expect_success();
    let t1 = s.tenant(1);
    s.close(t1, accepted).expect_success();
    s.chain.warp(60);
    s.execute(&op).expect_success();
    // The new module can neither prove a fault on them nor accept results for them.
    let k = s.keeper.address;
    s.chain.warp(3_600 + DEADLINE_GRACE + 1);
    for id in [held, accepted] {
        let r = s
            .chain
            .send(k, module2, Results::proveMissedDeadlineCall { leaseId: id });
        assert!(!r.success, "the new module has no say over an old lease");
    }
    let op0 = s.operator(0);
    let r = s.chain.send(
        op0,
        module2,
        Results::postResultCall {
            leaseId: held,
            root: B256::repeat_byte(1),
            size: 1,
            uri: String::new(),
            metaHash: B256::ZERO,
        },
    );
    assert!(!r.success);
    // Closes, releases and proofs keep working through the old one.
    s.chain.warp(CHALLENGE_WINDOW);
    let e = s
        .close(k, held)
        .expect_success()
        .event::<Market::LeaseClosed>();
    assert_eq!(e.reason, 5, "Completed");
    s.chain.warp(FAULT_HORIZON);
    let r = s
        .chain
        .send(
            k,
            market,
            MarketAdmin::releaseHeldCall {
                leaseIds: vec![accepted],
            },
        )
        .expect_success();
    assert_eq!(r.events::<Market::HeldReleased>().len(), 1);
    assert_eq!(s.provider_info(0).locked, U96::ZERO);
    assert_eq!(
        s.provider_info(0).stake.to::<u128>(),
        10_000 * USDC,
        "never slashed"
    );
}

#[test]
fn a_hostile_module_cannot_touch_a_lease_it_did_not_start_gov05() {
    // GOV-05 / v1 finding 7: a module governance adds cannot fault, hold or flag a lease bound to
    // another module (amounts always come from the market's own records).
    let mut s = Suite::with_timelock(DELAY);
    s.register(0, 10_000 * USDC);
    let (gov, market) = (s.gov.address, s.market);
    let hostile = s.chain.deploy(
        gov,
        creation(
            &HostileModule::BYTECODE,
            alloy::sol_types::SolConstructor::abi_encode(&HostileModule::constructorCall {
                market_: market,
            }),
        ),
    );
    let op = s.schedule(market, MarketAdmin::addModuleCall { module: hostile });
    s.chain.warp(DELAY - 10);
    let running = s.instant_lease(0, 0, 10 * USDC);
    let service = s.service_lease(1, 0, 10 * USDC);
    s.chain.warp(10);
    s.execute(&op).expect_success();
    let attacker = s.tenants[3].address;
    for id in [running, service] {
        let r = s
            .chain
            .send(attacker, hostile, HostileModule::attackCall { leaseId: id });
        assert_revert!(r, MarketErrors::NotLeaseModule);
        let r = s
            .chain
            .send(attacker, hostile, HostileModule::holdCall { leaseId: id });
        assert_revert!(r, MarketErrors::NotLeaseModule);
        let r = s.chain.send(
            attacker,
            hostile,
            HostileModule::flagCall {
                leaseId: id,
                set: 0,
                clear: 0xff,
            },
        );
        assert_revert!(r, MarketErrors::NotLeaseModule);
    }
    assert!(s.job(running).acknowledged);
    assert_eq!(s.provider_info(0).stake.to::<u128>(), 10_000 * USDC);
    // Nor can governance rebind Staking to another market (it is bound once).
    let staking = s.staking;
    let r = s.govern(staking, Staking::setMarketCall { market_: hostile });
    assert!(!r.success);
}

/// The opcodes of deployed `code`, PUSH data skipped. The contracts are compiled without CBOR
/// metadata (`appendCBOR: false` in `bindings/build.rs`), so all of it is code: guessing a
/// metadata tail from the last two bytes once cut off most of the market (those bytes happened to
/// point at a LOG opcode).
fn opcodes(code: &[u8]) -> Vec<u8> {
    let body = code;
    let (mut ops, mut i) = (Vec::new(), 0);
    while i < body.len() {
        let op = body[i];
        ops.push(op);
        // PUSH1 (0x60) to PUSH32 (0x7f) carry 1 to 32 bytes of data.
        i += 1 + if (0x60..=0x7f).contains(&op) {
            usize::from(op - 0x5f)
        } else {
            0
        };
    }
    ops
}

#[test]
fn no_contract_can_be_replaced_or_destroyed_adm03() {
    // ADM-03: no proxies, nothing upgradable. No deployed contract holds SELFDESTRUCT (0xff) or
    // CALLCODE (0xf2), and only the market holds a DELEGATECALL (0xf4): its fallback's, to the
    // MarketAdmin fixed at construction (an immutable: no function changes it).
    let mut s = Suite::with_timelock(DELAY);
    let tl = s.timelock.expect("timelock");
    let (market, admin) = (s.market, s.admin);
    let contracts = [
        ("Market", market),
        ("MarketAdmin", admin),
        ("MarketLens", s.lens),
        ("Results", s.results),
        ("Staking", s.staking),
        ("Timelock", tl),
    ];
    for (name, at) in contracts {
        let ops = opcodes(&s.chain.code(at));
        assert!(ops.len() > 1_000, "{name}: {} opcodes", ops.len());
        for (op, what) in [(0xff, "SELFDESTRUCT"), (0xf2, "CALLCODE")] {
            assert!(!ops.contains(&op), "{name} holds {what}");
        }
        let delegates = ops.iter().filter(|&&op| op == 0xf4).count();
        assert_eq!(
            delegates,
            usize::from(at == market),
            "{name} holds {delegates} DELEGATECALL"
        );
    }
    // The fallback's target is the admin the market was built with.
    let a = s.chain.view(market, Market::adminCall {});
    assert_eq!(a, admin);
    let code = s.chain.code(market);
    let word = B256::left_padding_from(admin.as_slice());
    assert!(
        code.windows(33).any(|w| w[0] == 0x7f && w[1..] == word[..]),
        "the admin address is an immutable (a PUSH32 constant) in the market's code"
    );
}

#[test]
fn no_owner_action_moves_escrow_or_stake_adm05() {
    // ADM-05: with an order under bid, a running batch lease, a held result and a service lease,
    // the owner calls every owner function of the market and of staking, with hostile arguments
    // where the bounds let it. No escrow, stake, lock or credit moves; only `withdrawFees` moves
    // the protocol's own fees, to the treasury.
    let mut s = Suite::with_timelock(DELAY);
    s.register(0, 10_000 * USDC);
    let (market, staking, token) = (s.market, s.staking, s.token);
    let order = s.fresh_order(10 * USDC, PRICE * 2);
    let open = s.create(1, order);
    s.bid(0, open, PRICE).expect_success();
    let running = s.instant_lease(2, 0, 10 * USDC);
    let held = s.instant_lease(0, 0, 10 * USDC);
    let service = s.service_lease(3, 0, 10 * USDC);
    let accepted = s.instant_lease(1, 0, 10 * USDC);
    s.chain.warp(100);
    s.post(0, held, b"held").0.expect_success();
    // An accepted result, so the protocol has fees to withdraw.
    s.post(0, accepted, b"accepted").0.expect_success();
    let t1 = s.tenant(1);
    s.close(t1, accepted).expect_success();
    let ids = [open, running, held, service];
    let mut accounts: Vec<_> = (0..4).map(|i| s.tenant(i)).collect();
    accounts.extend([s.provider(0), s.operator(0), s.keeper.address]);
    let books = |s: &mut Suite| {
        let jobs: Vec<_> = ids
            .iter()
            .map(|&id| {
                let j = s.job(id);
                (j.status, j.escrow, j.provider, j.collateral, j.settledAt)
            })
            .collect();
        let info = s.provider_info(0);
        let credits: Vec<_> = accounts
            .iter()
            .map(|&a| (s.balance(token, a), s.credit(a), s.staking_credit(a)))
            .collect();
        (jobs, (info.stake, info.locked, info.unbonding), credits)
    };
    let before = books(&mut s);
    let (market_before, staking_before) = (s.balance(token, market), s.balance(token, staking));
    let lens = s.lens;
    let fees: u128 = s
        .chain
        .view(lens, MarketLens::protocolFeesCall { token })
        .to();
    assert!(fees > 0);

    let gov = s.gov.address;
    let gov_before = s.balance(token, gov);
    let mut p = default_params();
    (p.protocolFeeBps, p.keeperFeeBps, p.paused) = (1_000, 100, true);
    let hostile = deploy_results(&mut s.chain, gov, market, 2 * 3_600);
    s.govern(
        market,
        MarketAdmin::setParamsCall {
            params_: admin_params(p),
        },
    )
    .expect_success();
    s.govern(market, MarketAdmin::addModuleCall { module: hostile })
        .expect_success();
    s.govern(market, MarketAdmin::setTreasuryCall { treasury_: gov })
        .expect_success();
    s.govern(
        market,
        MarketAdmin::configureTokenCall {
            token,
            allowed: false,
        },
    )
    .expect_success();
    // Staking's market is fixed; its periods within their bounds (a 1 s unbonding is refused,
    // the longest, 90 days, taken).
    assert!(
        !s.govern(staking, Staking::setMarketCall { market_: gov })
            .success
    );
    let unbonding = |s: &mut Suite, secs: u64| {
        s.govern(
            staking,
            Staking::setUnbondingPeriodCall {
                period: alloy::primitives::aliases::U48::from(secs),
            },
        )
    };
    assert!(!unbonding(&mut s, 1).success);
    unbonding(&mut s, 90 * 86_400).expect_success();
    s.govern(staking, Staking::setHeartbeatPeriodCall { period: 60 })
        .expect_success();
    s.govern(staking, Staking::setTreasuryCall { treasury_: gov })
        .expect_success();
    s.govern(market, MarketAdmin::withdrawFeesCall { token })
        .expect_success();
    // Ownership handed to the tenant's address and renounced.
    let t0 = s.tenant(0);
    s.govern(market, MarketAdmin::transferOwnershipCall { newOwner: t0 })
        .expect_success();
    s.govern(staking, Staking::renounceOwnershipCall {})
        .expect_success();
    s.govern(market, MarketAdmin::renounceOwnershipCall {})
        .expect_success();

    assert_eq!(
        books(&mut s),
        before,
        "an owner action moved a lease, stake or credit"
    );
    assert_eq!(s.balance(token, market), market_before - fees);
    assert_eq!(s.balance(token, staking), staking_before);
    assert_eq!(s.balance(token, gov), gov_before + fees);
}
