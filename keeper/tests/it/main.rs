//! `gridlease-keeper run` as a real process against a real anvil, on protocol v2. The test plays
//! tenant and provider (operator key) directly; the keeper must find and do the paid work on its
//! own and get paid for it: award closed auctions; settle service leases up to their provider's
//! liveness; close held results after their window, and lapsed service leases for the live time
//! only; prove no-shows, missed deadlines (never closing a batch lease without a result), stale
//! heartbeats, wrong `matmul_i8` results (checked locally first) and, after a challenge nobody
//! answered, unavailable results; leave answered challenges alone; prove a wrong result after the
//! tenant accepted it; resume from its cursor after a restart. Two keepers at once never both get
//! paid for the same work, and neither ends up out of pocket.

mod journal;
mod net;

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};
use axum::http::StatusCode;
use gridlease_bindings::{Market, Results, Staking};
use gridlease_chain::send;
use gridlease_deploy::anvil::{self, ANVIL_KEYS};
use gridlease_workload::merkle::Commitment;
use net::*;

/// What a third-party prover earns of a fault that refunds `refund` to the tenant.
fn fault_fee(refund: u128) -> u128 {
    refund * FAULT_FEE_BPS / 10_000
}

/// USDC units a lease at [`RATE`] pays for `secs` seconds.
fn pay(secs: u64) -> u128 {
    RATE * u128::from(secs) / 1_000_000_000_000
}

async fn started(net: &Net, id: B256) -> Market::LeaseStarted {
    net.events::<Market::LeaseStarted>(net.market, id)
        .await
        .pop()
        .expect("lease started")
}

async fn faulted(net: &Net, id: B256) -> Market::LeaseFaulted {
    let f = net.events::<Market::LeaseFaulted>(net.market, id).await;
    assert_eq!(f.len(), 1, "faulted once");
    f[0].clone()
}

async fn closed(net: &Net, id: B256) -> Market::LeaseClosed {
    let c = net.events::<Market::LeaseClosed>(net.market, id).await;
    assert_eq!(c.len(), 1, "closed once");
    c[0].clone()
}

/// A labelled counter of the keeper's metrics.
async fn counter(port: u16, name: &str, label: &str, value: &str) -> u64 {
    metric(
        port,
        &format!("gridlease_keeper_{name}{{{label}=\"{value}\"}}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_kb_05_keeper_awards_proves_no_shows_and_wrong_results_and_completes_across_a_restart()
 {
    let net = net().await;
    let dir = net.dir.path();
    let (cfg, _) = config(&net, 1, "1");
    let me = addr(6);

    // Two closed auctions with on-chain bids: the keeper awards them (unpaid, allowed by
    // default). An award is not the provider's own transaction, so each must be acknowledged.
    let auction = net.lease(&container(), false, 1).await;
    let no_show = net.lease(&container(), false, 2).await;
    let mut keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(6).await;
    net.until("the awards", || async {
        net.status(auction).await == LEASED && net.status(no_show).await == LEASED
    })
    .await;
    assert!(!net.job(no_show).await.acknowledged);
    net.acknowledge(auction).await;

    // A matmul lease with a wrong product, served where anyone can fetch it: checked against
    // its commitment and with Freivalds (KB-05), then proven element by element.
    let fraud = net.lease(&matmul(), true, 3).await;
    let wrong = wrong_product();
    let url = net.serve("wrong", wrong.clone());
    net.post(fraud, Commitment::of(&wrong), url).await;
    // A result whose posted size is not m x n x 4: proven by the size alone, nothing fetched.
    let short = net.lease(&matmul(), true, 5).await;
    let mut cut = product();
    cut.truncate(cut.len() - 4);
    net.post(short, Commitment::of(&cut), net.dead_url()).await;
    // Both are proven once the proof earns its fee: after the tenant's priority.
    net.warp(PRIORITY + 1).await;
    net.until("the fraud proofs", || async {
        net.status(fraud).await == FAULTED && net.status(short).await == FAULTED
    })
    .await;
    assert_eq!(
        net.events::<Results::MatmulFraudProven>(net.results, fraud)
            .await
            .len(),
        1
    );
    assert_eq!(faulted(&net, fraud).await.kind, kind("wrong-result"));
    assert_eq!(faulted(&net, short).await.kind, kind("malformed-result"));
    // 5 % of each 40 USDC refund, in USDC.
    assert_eq!(net.market_credit(me).await, 2 * fault_fee(DEPOSIT));

    // Restart: what happens while the keeper is down is found from its cursor.
    stop(keeper);
    net.warp(START_WINDOW + 1).await;
    // A correct product, posted after 10 minutes: verified, then held for the 1 day window.
    let good = net.lease(&matmul(), true, 4).await;
    net.warp(600).await;
    let ok = product();
    let url = net.serve("good", ok.clone());
    net.post(good, Commitment::of(&ok), url).await;
    keeper = start_keeper(dir, &cfg, 6, 2);
    net.until("the no-show proof", || async {
        net.status(no_show).await == FAULTED
    })
    .await;
    assert_eq!(faulted(&net, no_show).await.kind, kind("no-show"));
    net.until("the verification", || async {
        logs_of(dir).contains("built-in result verified")
    })
    .await;
    net.warp(CHALLENGE_WINDOW + 1).await;
    net.until("the completed close", || async {
        net.status(good).await == CLOSED
    })
    .await;
    let c = closed(&net, good).await;
    assert_eq!((c.reason, c.held), (COMPLETED, false));
    // Paid for the time to its result, of which the keeper's 0.1 %.
    let paid = c.paid.to::<u128>();
    assert!(paid >= pay(600), "paid {paid}");
    assert_eq!(c.keeperFee.to::<u128>(), paid * KEEPER_FEE_BPS / 10_000);
    // The auction lease ran past its deadline and grace without a result: missed deadline.
    net.until("the missed-deadline proof", || async {
        net.status(auction).await == FAULTED
    })
    .await;
    assert_eq!(faulted(&net, auction).await.kind, kind("missed-deadline"));
    assert_eq!(
        net.market_credit(me).await,
        4 * fault_fee(DEPOSIT) + c.keeperFee.to::<u128>()
    );
    let log = logs_of(dir);
    assert!(
        !log.contains(ANVIL_KEYS[6].trim_start_matches("0x")),
        "key leaked"
    );
    stop(keeper);

    // `status` reads the ledger the runs left.
    let text = keeper_status(dir, &cfg);
    for needle in ["fraud", "no-show", "missed-deadline", "close", "award"] {
        assert!(text.contains(needle), "status lacks {needle}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_service_lease_settled_up_to_liveness_then_its_lapse_reported_and_proven() {
    let net = net().await;
    let dir = net.dir.path();
    let beat = net.heartbeat().await;
    let id = net.lease(&service(), true, 60).await;
    let (cfg, _) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    // Live (a heartbeat 50 s into the 60 s period, counted from the first beat: the wall time the
    // lease and the keeper's start took counts too): its live time is settled.
    net.warp_to(beat + 50).await;
    net.heartbeat().await;
    net.until("the service settlement", || async {
        !net.events::<Market::LeaseSettled>(net.market, id)
            .await
            .is_empty()
    })
    .await;
    // Then no heartbeat: reported once the period is over, proven after the 5 min grace.
    net.warp(2 * HEARTBEAT).await;
    net.until("the stale report", || async {
        !net.events::<Results::StaleReported>(net.results, id)
            .await
            .is_empty()
    })
    .await;
    net.warp(STALE_GRACE + PRIORITY + 1).await;
    net.until("the stale-heartbeat proof", || async {
        net.status(id).await == FAULTED
    })
    .await;
    stop(keeper);
    let f = faulted(&net, id).await;
    assert_eq!(f.kind, kind("stale-heartbeat"));
    // Its fees: the keeper's 0.1 % of each settlement, and 5 % of the fault's refund.
    let settled: u128 = net
        .events::<Market::LeaseSettled>(net.market, id)
        .await
        .iter()
        .map(|s| s.amount.to::<u128>() * KEEPER_FEE_BPS / 10_000)
        .sum();
    assert_eq!(
        net.market_credit(addr(6)).await,
        settled + fault_fee(f.refund.to())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_02_two_keepers_never_both_paid_for_one_piece_of_work() {
    let net = net().await;
    let dir = net.dir.path();
    net.heartbeat().await;
    let mut services = Vec::new();
    for salt in 0..4u8 {
        services.push(net.lease(&service(), true, 10 + salt).await);
    }
    let mut batches = Vec::new();
    for salt in 0..2u8 {
        batches.push(net.lease(&container(), true, 20 + salt).await);
    }
    // Lapses are closed, not reported: the race is over settlements, closes and faults.
    let extra = "[strategies]\nstale_heartbeat = false\n";
    let (c1, _) = config_with(&net, 1, &net.anvil.url(), "", "1", extra);
    let (c2, _) = config_with(&net, 2, &net.anvil.url(), "", "1", extra);
    let k1 = start_keeper(dir, &c1, 6, 1);
    let k2 = start_keeper(dir, &c2, 7, 1);
    // Ten minutes of live service (a heartbeat every 50 s): settlements race.
    for _ in 0..12 {
        net.warp(50).await;
        net.heartbeat().await;
    }
    net.until("settlements", || async {
        let mut all = true;
        for id in &services {
            all &= !net
                .events::<Market::LeaseSettled>(net.market, *id)
                .await
                .is_empty()
                || net.status(*id).await == CLOSED;
        }
        all
    })
    .await;
    // Past every end: the service leases close, the batch leases' missed deadlines are proven.
    net.warp(3_600 + DEADLINE_GRACE + PRIORITY + 1).await;
    net.until("all ended", || async {
        let mut all = true;
        for id in services.iter().chain(&batches) {
            let s = net.status(*id).await;
            all &= s == CLOSED || s == FAULTED;
        }
        all
    })
    .await;
    stop(k1);
    stop(k2);
    for id in services.iter().chain(&batches) {
        let mut times: Vec<_> = net
            .events::<Market::LeaseSettled>(net.market, *id)
            .await
            .iter()
            .map(|s| s.settledAt)
            .collect();
        let n = times.len();
        times.dedup();
        assert_eq!(times.len(), n, "a second paid up to the same time twice");
        assert_eq!(
            net.events::<Market::LeaseClosed>(net.market, *id)
                .await
                .len(),
            1,
            "ended once"
        );
    }
    for id in &batches {
        assert_eq!(faulted(&net, *id).await.kind, kind("missed-deadline"));
    }
    // Each keeper's earnings (fees, in USDC) beat the gas it spent, valued at the configured
    // 1 USDC per ETH.
    let p = &net.tenant.provider;
    for key in [6usize, 7] {
        let who = addr(key);
        let earned = net.market_credit(who).await + net.slash_credit(who).await;
        let spent =
            U256::from(10_000u128 * 10u128.pow(18)) - p.get_balance(who).await.expect("bal");
        let spent_usdc = spent.to::<u128>() * USDC / 10u128.pow(18);
        assert!(
            earned >= spent_usdc,
            "keeper {key} lost money: earned {earned}, gas worth {spent_usdc}"
        );
    }
}

/// An auction for the keeper to award (unpaid work, not urgent), and one the tenant awards itself
/// that the provider never acknowledges (a no-show: a paid, urgent proof), its fee due.
async fn waiting_and_no_show(net: &Net) -> (B256, B256) {
    let waiting = net.lease(&container(), false, 40).await;
    let no_show = net.lease(&container(), false, 41).await;
    net.warp(6).await;
    send(Market::new(net.market, &net.tenant.provider).award(no_show))
        .await
        .expect("award");
    net.warp(START_WINDOW + PRIORITY + 1).await;
    (waiting, no_show)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_03_above_the_gas_price_cap_only_fault_proofs_go_out() {
    let net = net().await;
    let dir = net.dir.path();
    let (cfg, port) = config(&net, 1, "1");
    let (waiting, no_show) = waiting_and_no_show(&net).await;
    // 100 gwei, above the 50 gwei cap.
    let p = &net.tenant.provider;
    let spike = |gwei: u64| async move {
        let _: serde_json::Value = p
            .raw_request(
                "anvil_setNextBlockBaseFeePerGas".into(),
                (format!("{:#x}", gwei * 1_000_000_000),),
            )
            .await
            .expect("base fee");
    };
    spike(100).await;
    net.warp(1).await;
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the no-show proof, above the cap", || async {
        net.status(no_show).await == FAULTED
    })
    .await;
    net.until("the award skipped for the cap", || async {
        counter(port, "work_skipped_total", "reason", "gas-price-cap").await > 0
    })
    .await;
    let base = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("block")
        .expect("head")
        .header
        .base_fee_per_gas
        .expect("base fee");
    assert!(base > 50_000_000_000, "the spike is over: {base} wei");
    assert_eq!(
        net.status(waiting).await,
        1,
        "awarded above the gas price cap"
    );
    // Back under the cap: the award goes out.
    spike(1).await;
    net.warp(1).await;
    net.until("the award under the cap", || async {
        net.status(waiting).await == LEASED
    })
    .await;
    stop(keeper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_04_private_endpoint_first_then_public_when_it_is_down() {
    let net = net().await;
    let dir = net.dir.path();
    let (public, public_sends, _public_task) = rpc_proxy(net.anvil.url()).await;
    let (private, private_sends, private_task) = rpc_proxy(net.anvil.url()).await;
    let sent = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);
    let chain = format!("private_rpc = \"{private}\"");

    // Up: every transaction (here an award) goes to the private endpoint, none to the public
    // mempool.
    let first = net.lease(&container(), false, 50).await;
    let (cfg, _) = config_with(&net, 1, &public, &chain, "1", "");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(6).await;
    net.until("an award sent privately", || async {
        net.status(first).await == LEASED
    })
    .await;
    stop(keeper);
    assert!(
        sent(&private_sends) >= 1,
        "nothing went to the private endpoint"
    );
    assert_eq!(sent(&public_sends), 0, "a transaction went public");

    // Down (its port closed), already when the keeper starts: it runs, and sends publicly.
    private_task.abort();
    let _ = private_task.await;
    let before = sent(&private_sends);
    let second = net.lease(&container(), false, 51).await;
    let (cfg, _) = config_with(&net, 2, &public, &chain, "1", "");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(6).await;
    net.until("an award sent publicly", || async {
        net.status(second).await == LEASED
    })
    .await;
    stop(keeper);
    assert!(sent(&public_sends) >= 1, "nothing went to the public node");
    assert_eq!(sent(&private_sends), before);
    let log = logs_of(dir);
    assert!(log.contains("private endpoint refused"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_02_keeper_proves_a_missed_deadline_and_never_closes_a_batch_lease_without_a_result() {
    let net = net().await;
    let dir = net.dir.path();
    // A deposit below rate x duration (20 < 36 USDC): "exhausted" after 2,000 s, which a v1
    // keeper took for a reason to close (and to pay the provider for time without a result).
    let deposit = 20 * USDC;
    let id = net.order(net.params(&container(), true, 70, deposit)).await;
    let s = started(&net, id).await;
    let (start, end) = (s.start.to::<u64>(), s.end.to::<u64>());
    let tenant = net.tenant.from.expect("tenant");
    let (tenant_before, stake_before) = (net.usdc_of(tenant).await, net.stake_of_provider().await);
    let (cfg, port) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    let p = &net.tenant.provider;
    for (when, at) in [
        ("exhausted", start + 2_500),
        ("ended, in the grace", end + 30),
        ("missed, its fee not due yet", end + DEADLINE_GRACE + 1),
    ] {
        anvil::warp_to(p, at).await.expect("warp");
        // Whatever the keeper would do now, it has planned: never a close (MEC-02), and no
        // proof before it pays (the tenant's priority).
        net.polls(port, 15).await;
        for action in ["close", "missed-deadline"] {
            assert_eq!(
                counter(port, "work_planned_total", "action", action).await,
                0,
                "{action} planned when {when}"
            );
        }
        assert_eq!(net.status(id).await, LEASED, "{when}");
    }
    anvil::warp_to(p, end + DEADLINE_GRACE + PRIORITY + 1)
        .await
        .expect("warp");
    net.until("the missed-deadline proof", || async {
        net.status(id).await == FAULTED
    })
    .await;
    stop(keeper);
    let f = faulted(&net, id).await;
    assert_eq!(f.kind, kind("missed-deadline"));
    assert_eq!(f.reporter, addr(6));
    assert_eq!(f.refund.to::<u128>(), deposit);
    assert_eq!(f.slashed, U256::from(COLLATERAL));
    // The provider is paid nothing for a lease without a result, and slashed its collateral.
    let c = closed(&net, id).await;
    assert_eq!(
        (c.reason, c.paid.to::<u128>(), c.toProvider.to::<u128>()),
        (FAULTED_REASON, 0, 0)
    );
    assert_eq!(net.stake_of_provider().await, stake_before - COLLATERAL);
    // The tenant got everything back but the prover's 5 %.
    assert_eq!(net.market_credit(addr(6)).await, fault_fee(deposit));
    assert_eq!(
        net.usdc_of(tenant).await,
        tenant_before + deposit - fault_fee(deposit)
    );
    assert_eq!(
        counter(port, "work_skipped_total", "reason", "reverts").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_04_mec_13_keeper_challenges_a_result_it_cannot_download_and_proves_it_unavailable() {
    let net = net().await;
    let dir = net.dir.path();
    let id = net.lease(&container(), true, 80).await;
    net.warp(300).await;
    // A root posted, the data withheld: nothing answers at the URI.
    let data = container_result();
    net.post(id, Commitment::of(&data), net.dead_url()).await;
    let tenant = net.tenant.from.expect("tenant");
    let (tenant_before, stake_before) = (net.usdc_of(tenant).await, net.stake_of_provider().await);
    let me = addr(6);
    let (cfg, port) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the challenge", || async {
        !net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .is_empty()
    })
    .await;
    let ch = net
        .events::<Results::ChunkChallenged>(net.results, id)
        .await;
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].challenger, me);
    assert!(ch[0].index < U256::from(3), "chunk {} of 3", ch[0].index);
    assert_eq!(net.eth_of(net.results).await, BOND, "the bond is held");
    // Nobody reveals the chunk within the response window: the result fails (proven once the
    // proof earns its fee).
    net.warp(RESPONSE_WINDOW + PRIORITY + 1).await;
    net.until("the unavailability proof", || async {
        net.status(id).await == FAULTED
    })
    .await;
    let f = faulted(&net, id).await;
    assert_eq!((f.kind, f.reporter), (kind("unavailable"), me));
    assert_eq!(f.refund.to::<u128>(), DEPOSIT);
    assert_eq!(f.slashed, U256::from(COLLATERAL));
    // The tenant refunded (less the prover's 5 %), the provider slashed, the bond back.
    assert_eq!(
        net.usdc_of(tenant).await,
        tenant_before + DEPOSIT - fault_fee(DEPOSIT)
    );
    assert_eq!(net.stake_of_provider().await, stake_before - COLLATERAL);
    assert_eq!(net.market_credit(me).await, fault_fee(DEPOSIT));
    assert_eq!(net.eth_of(net.results).await, 0, "the bond went back");
    net.until("the bond booked", || async {
        metric(port, "gridlease_keeper_bonds_posted_total").await == 1
    })
    .await;
    assert_eq!(metric(port, "gridlease_keeper_bonds_lost_total").await, 0);
    stop(keeper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_04_an_answered_challenge_is_not_proven_and_its_bond_goes_to_the_answerer() {
    let net = net().await;
    let dir = net.dir.path();
    let id = net.lease(&container(), true, 81).await;
    net.warp(300).await;
    // The node keeps its result but does not serve it to the keeper: it answers on chain.
    let data = container_result();
    let url = net.answer("kept", StatusCode::NOT_FOUND, Vec::new());
    net.post(id, Commitment::of(&data), url).await;
    let (cfg, port) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the challenge", || async {
        !net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .is_empty()
    })
    .await;
    let ch = net
        .events::<Results::ChunkChallenged>(net.results, id)
        .await;
    let index = ch[0].index.to::<u64>();
    let operator = net.operator.from.expect("operator");
    let before = net.eth_of(operator).await;
    let r = net.reveal(id, &data, index).await;
    // The bond paid the answer's gas, and more.
    let gas = u128::from(r.gas_used) * r.effective_gas_price;
    assert_eq!(net.eth_of(operator).await, before + BOND - gas);
    net.until("the answer seen", || async {
        metric(port, "gridlease_keeper_bonds_lost_total").await == 1
    })
    .await;
    // Past the response window (and the tenant's priority): nothing to prove, and no second
    // challenge.
    let challenges = counter(port, "work_planned_total", "action", "challenge").await;
    net.warp(RESPONSE_WINDOW + PRIORITY + 1).await;
    net.polls(port, 15).await;
    assert_eq!(
        counter(port, "work_planned_total", "action", "unavailable").await,
        0
    );
    assert_eq!(
        counter(port, "work_planned_total", "action", "challenge").await,
        challenges,
        "challenged again after an answer"
    );
    assert_eq!(net.status(id).await, LEASED);
    assert!(
        net.events::<Market::LeaseFaulted>(net.market, id)
            .await
            .is_empty()
    );
    // The result stands: after its window the keeper completes it.
    net.warp(CHALLENGE_WINDOW).await;
    net.until("the completed close", || async {
        net.status(id).await == CLOSED
    })
    .await;
    stop(keeper);
    let c = closed(&net, id).await;
    assert_eq!((c.reason, c.held), (COMPLETED, false));
    assert!(c.paid.to::<u128>() >= pay(300));
    assert_eq!(
        net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .len(),
        1
    );
}

/// A challenge of the keeper's that another proof overtook: the tenant challenges another chunk
/// of the withheld result and proves it unavailable in its priority, faulting the lease first.
/// The keeper voids its own challenge past its deadline, and its bond comes back. Before, its view
/// dropped the lease at the fault, and the bond stayed in the module until someone else voided it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_04_our_challenge_overtaken_by_another_proof_is_voided_for_its_bond() {
    let net = net().await;
    let dir = net.dir.path();
    let id = net.lease(&container(), true, 82).await;
    net.warp(300).await;
    let c = Commitment::of(&container_result());
    net.post(id, c, net.dead_url()).await;
    let (cfg, port) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the keeper's challenge", || async {
        !net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .is_empty()
    })
    .await;
    let ours = net
        .events::<Results::ChunkChallenged>(net.results, id)
        .await[0]
        .index;
    let theirs = (ours + U256::from(1)) % U256::from(3);
    let tenant = Results::new(net.results, &net.tenant.provider);
    send(
        tenant
            .challenge(id, c.root, c.size, theirs)
            .value(U256::from(BOND)),
    )
    .await
    .expect("the tenant's challenge");
    assert_eq!(net.eth_of(net.results).await, 2 * BOND);
    // Past both deadlines, inside the tenant's priority (no fee for the keeper yet): the tenant
    // proves its own chunk.
    net.warp(RESPONSE_WINDOW + 10).await;
    send(tenant.proveUnavailable(id, theirs))
        .await
        .expect("the tenant's proof");
    assert_eq!(net.status(id).await, FAULTED);
    net.until("the keeper's bond back", || async {
        net.eth_of(net.results).await == 0
    })
    .await;
    let voided = net
        .events::<Results::ChallengeVoided>(net.results, id)
        .await;
    assert_eq!(voided.len(), 1);
    assert_eq!(voided[0].index, ours);
    // Then the lease is finished in its view: nothing more is planned on it.
    net.polls(port, 2).await;
    let planned = counter(port, "work_planned_total", "action", "unavailable").await;
    net.polls(port, 5).await;
    assert_eq!(
        counter(port, "work_planned_total", "action", "unavailable").await,
        planned
    );
    stop(keeper);
}

/// A container lease whose result was posted after 10 minutes, served, and found available by
/// a keeper started on it: its id, the end of its hold (the market holds the pay to the result
/// until then), the keeper's metrics port, and the keeper.
async fn held_and_checked(net: &Net, salt: u8) -> (B256, u64, u16, Keeper) {
    let dir = net.dir.path();
    let id = net.lease(&container(), true, salt).await;
    net.warp(600).await;
    let data = container_result();
    let url = net.serve("done", data.clone());
    net.post(id, Commitment::of(&data), url).await;
    let hold_end = net.job(id).await.end.to::<u64>();
    let (cfg, port) = config(net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the availability check", || async {
        logs_of(dir).contains("result available as committed")
    })
    .await;
    (id, hold_end, port, keeper)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_keeper_completes_a_held_result_after_its_challenge_window() {
    let net = net().await;
    let (id, hold_end, port, keeper) = held_and_checked(&net, 90).await;
    let start = started(&net, id).await.start.to::<u64>();
    let paid_until = hold_end - CHALLENGE_WINDOW;
    let p = &net.tenant.provider;
    anvil::warp_to(p, hold_end).await.expect("warp");
    net.polls(port, 15).await;
    assert_eq!(
        counter(port, "work_planned_total", "action", "close").await,
        0,
        "closed inside its window"
    );
    anvil::warp_to(p, hold_end + 1).await.expect("warp");
    net.until("the completed close", || async {
        net.status(id).await == CLOSED
    })
    .await;
    stop(keeper);
    let c = closed(&net, id).await;
    assert_eq!((c.reason, c.held), (COMPLETED, false));
    let paid = pay(paid_until - start);
    assert_eq!(c.paid.to::<u128>(), paid);
    assert_eq!(c.keeperFee.to::<u128>(), paid * KEEPER_FEE_BPS / 10_000);
    assert_eq!(net.market_credit(addr(6)).await, c.keeperFee.to::<u128>());
    assert!(
        net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_09_a_lapsed_service_lease_closed_by_the_keeper_pays_nothing_for_the_lapse() {
    let net = net().await;
    let dir = net.dir.path();
    let staking = Staking::new(net.staking, &net.tenant.provider);
    net.heartbeat().await;
    let id = net.lease(&service(), true, 100).await;
    net.warp(30).await;
    net.heartbeat().await;
    // A lapse (no heartbeat for 200 s), then the provider is back: a new epoch.
    net.warp(200).await;
    net.heartbeat().await;
    let live = staking.liveness(net.owner).call().await.expect("liveness");
    assert_eq!(live.epoch, 2);
    let lapse_at = live.prevEnd.to::<u64>();
    let start = started(&net, id).await.start.to::<u64>();
    let tenant = net.tenant.from.expect("tenant");
    let tenant_before = net.usdc_of(tenant).await;
    let (cfg, _) = config_with(
        &net,
        1,
        &net.anvil.url(),
        "",
        "1",
        "[strategies]\nstale_heartbeat = false\n",
    );
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the close of the lapsed lease", || async {
        net.status(id).await == CLOSED
    })
    .await;
    stop(keeper);
    let c = closed(&net, id).await;
    assert_eq!(c.reason, LAPSED);
    // Paid up to the lapse (the last heartbeat of the first epoch + its period), nothing after.
    let paid = pay(lapse_at - start);
    assert_eq!(c.paid.to::<u128>(), paid);
    assert_eq!(c.refund.to::<u128>(), DEPOSIT - paid);
    assert!(!c.held, "no reported lapse: the collateral is released");
    assert_eq!(c.keeperFee.to::<u128>(), paid * KEEPER_FEE_BPS / 10_000);
    assert_eq!(net.market_credit(addr(6)).await, c.keeperFee.to::<u128>());
    assert_eq!(net.usdc_of(tenant).await, tenant_before + DEPOSIT - paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_05_keeper_proves_a_wrong_result_after_the_tenant_accepted_it() {
    let net = net().await;
    let dir = net.dir.path();
    let id = net.lease(&matmul(), true, 110).await;
    net.warp(600).await;
    let wrong = wrong_product();
    let url = net.serve("accepted", wrong.clone());
    net.post(id, Commitment::of(&wrong), url).await;
    // The tenant accepts it at once: paid, the lease closed, the collateral held.
    send(Market::new(net.market, &net.tenant.provider).close(id))
        .await
        .expect("accept");
    let c = closed(&net, id).await;
    assert_eq!((c.reason, c.held), (ACCEPTED, true));
    let paid = c.paid.to::<u128>();
    net.warp(PRIORITY + 1).await;
    let (cfg, _) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the proof after the close", || async {
        net.status(id).await == FAULTED
    })
    .await;
    stop(keeper);
    let f = faulted(&net, id).await;
    assert_eq!(f.kind, kind("wrong-result"));
    // Nothing left to refund; the tenant is compensated out of the slash for what it paid, of
    // which the prover earns 5 % (in the stake token).
    assert_eq!(f.refund.to::<u128>(), 0);
    assert_eq!(f.compensation, U256::from(paid));
    let reward = paid * FAULT_FEE_BPS / 10_000;
    assert_eq!(net.slash_credit(addr(6)).await, reward);
    assert_eq!(
        net.slash_credit(net.tenant.from.expect("tenant")).await,
        paid - reward
    );
}

/// KB-01: result checks have slots of their own. Results whose links accept and never answer
/// (a hostile provider's, each check waiting out its 5-minute download limit) are being checked,
/// and with one slot for work the keeper still awards an auction and proves its no-show. Before,
/// a check held a work slot for its whole download: the proof waited behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_results_that_never_download_do_not_hold_back_a_no_show_proof() {
    let net = net().await;
    let dir = net.dir.path();
    let (cfg, port) = config_with(
        &net,
        1,
        &net.anvil.url(),
        "",
        "1",
        "[batch]\nmax_in_flight = 1\n",
    );
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/never", hang.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = hang.accept().await {
            held.push(sock);
        }
    });
    // Built-in results are public by protocol: the keeper checks each.
    for salt in 10..13 {
        let id = net.lease(&matmul(), true, salt).await;
        net.post(id, Commitment::of(&product()), url.clone()).await;
    }
    let no_show = net.lease(&container(), false, 2).await;
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("two checks under way", || async {
        counter(port, "work_found_total", "action", "fraud").await >= 2
    })
    .await;
    net.warp(6).await;
    net.until("the award", || async {
        net.status(no_show).await == LEASED
    })
    .await;
    // Provable, and past the tenant's priority: its fee is the keeper's.
    net.warp(START_WINDOW + PRIORITY + 1).await;
    net.until("the no-show proof", || async {
        net.status(no_show).await == FAULTED
    })
    .await;
    assert_eq!(faulted(&net, no_show).await.kind, kind("no-show"));
    stop(keeper);
}

/// OFF-01: a challenge the keeper read, then taken back by a reorg, is undone in its view: the
/// held result is completed after its window. Before, the challenge stayed in the view for good
/// (a rewind only read the blocks again), and held the close back for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_01_a_challenge_a_reorg_took_back_does_not_hold_back_the_close() {
    let net = net().await;
    let dir = net.dir.path();
    let (id, hold_end, port, keeper) = held_and_checked(&net, 91).await;
    let c = Commitment::of(&container_result());
    // The tenant challenges a chunk, and the keeper reads it.
    let p = &net.tenant.provider;
    let r = send(
        Results::new(net.results, p)
            .challenge(id, c.root, c.size, U256::ZERO)
            .value(U256::from(BOND)),
    )
    .await
    .expect("challenge");
    let at = r.block_number.expect("block");
    net.until("the keeper past the challenge", || async {
        metric(port, "gridlease_keeper_head").await >= at
    })
    .await;
    net.polls(port, 3).await;
    // The blocks from the challenge on are replaced by empty ones.
    let head = p.get_block_number().await.expect("head");
    let _: serde_json::Value = p
        .raw_request("anvil_reorg".into(), serde_json::json!([head - at + 1, []]))
        .await
        .expect("reorg");
    assert!(
        net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .is_empty(),
        "the challenge is gone"
    );
    net.polls(port, 3).await;
    anvil::warp_to(p, hold_end + 1).await.expect("warp");
    net.until("the completed close", || async {
        net.status(id).await == CLOSED
    })
    .await;
    assert!(logs_of(dir).contains("undid what the reorged blocks' logs did"));
    stop(keeper);
    let closed = closed(&net, id).await;
    assert_eq!((closed.reason, closed.held), (COMPLETED, false));
}

/// MEC-04: a result that fails to download, and again right after a restart of the keeper, is
/// looked at once more `strategies.unavailable_after_s` after its first failure before it is
/// challenged: the time is kept with the failure. Before, the wait lived only in memory, so the
/// try right after a restart counted as the second failure, and a node that was only
/// restarting was challenged without another look, its answer then costing the keeper the bond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_04_a_restart_does_not_shorten_the_wait_before_a_challenge() {
    let net = net().await;
    let dir = net.dir.path();
    let id = net.lease(&container(), true, 81).await;
    net.warp(300).await;
    let data = container_result();
    // The provider's node is down (503), then back.
    let url = net.answer("restarting", StatusCode::SERVICE_UNAVAILABLE, Vec::new());
    net.post(id, Commitment::of(&data), url).await;
    let (cfg, _) = config(&net, 1, "1");
    let failures = || logs_of(dir).matches("cannot be downloaded").count();
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the first failure", || async { failures() >= 1 })
        .await;
    stop(keeper);
    let keeper = start_keeper(dir, &cfg, 6, 2);
    net.until("the failure after the restart", || async {
        failures() >= 2
    })
    .await;
    net.serve("restarting", data);
    net.until("the next look", || async {
        logs_of(dir).contains("result available as committed")
    })
    .await;
    assert!(
        net.events::<Results::ChunkChallenged>(net.results, id)
            .await
            .is_empty(),
        "challenged without another look"
    );
    stop(keeper);
}

/// KB-01: a lease paid in a token the market allowed after the keeper's deployments file was
/// written is held to the keeper's money rules at that token's decimals: with `min_profit` above
/// the fault fee, its no-show is not proven. Before, the token had no price in the rules (gas
/// free, `min_profit` 0), and work paid in it was sent whatever it cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_a_token_allowed_later_is_held_to_the_money_rules() {
    use alloy::sol_types::SolCall;
    use gridlease_bindings::{MarketAdmin, MockStablecoin};
    let net = net().await;
    let dir = net.dir.path();
    let token = MockStablecoin::deploy(
        net.gov.provider.clone(),
        "Euro Coin".into(),
        "EURC".into(),
        6,
    )
    .await
    .expect("deploy");
    let allow = MarketAdmin::configureTokenCall {
        token: *token.address(),
        allowed: true,
    };
    gridlease_testkit::governance::govern(
        &net.gov.provider,
        net.timelock,
        net.market,
        allow.abi_encode().into(),
    )
    .await
    .expect("governance allows the token");
    let tenant = net.tenant.from.expect("tenant");
    send(token.mint(tenant, U256::from(DEPOSIT)))
        .await
        .expect("mint");
    send(
        MockStablecoin::new(*token.address(), &net.tenant.provider).approve(net.market, U256::MAX),
    )
    .await
    .expect("approve");
    let mut p = net.params(&container(), false, 3, DEPOSIT);
    p.token = *token.address();
    let id = net.order(p).await;
    // Each transaction must earn 5 tokens; the no-show's fee is 2.
    let (cfg, port) = config(&net, 1, "1");
    let path = dir.join(&cfg);
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace(
            "native_price = \"1\"",
            "native_price = \"1\"\nmin_profit = \"5\"",
        ),
    )
    .expect("config");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(6).await;
    net.until("the award", || async { net.status(id).await == LEASED })
        .await;
    net.warp(START_WINDOW + PRIORITY + 1).await;
    net.until("the proof skipped", || async {
        counter(port, "work_skipped_total", "reason", "unprofitable").await > 0
    })
    .await;
    net.polls(port, 5).await;
    assert_eq!(
        net.status(id).await,
        LEASED,
        "proven for less than min_profit"
    );
    assert!(logs_of(dir).contains("a payment token the deployments file does not list"));
    stop(keeper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_20_a_keeper_short_of_ether_sheds_unpaid_awards_and_still_proves_faults() {
    let net = net().await;
    let dir = net.dir.path();
    let (cfg, port) = config(&net, 1, "1");
    // The keeper's key holds anvil's 10,000 ETH: below 20,000 it is low here.
    let path = dir.join(&cfg);
    let key = "private_key = \"env:KEEPER_KEY\"";
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace(key, &format!("{key}\nlow_balance = \"20000\"")),
    )
    .expect("config");
    let (waiting, no_show) = waiting_and_no_show(&net).await;
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the no-show proof, short of ether", || async {
        net.status(no_show).await == FAULTED
    })
    .await;
    net.until("the award shed", || async {
        counter(port, "work_skipped_total", "reason", "low-balance").await > 0
    })
    .await;
    assert_eq!(net.status(waiting).await, 1, "awarded while short of ether");
    // Funded (30,000 ETH): the award goes out at the next balance read.
    let _: serde_json::Value = net
        .tenant
        .provider
        .raw_request(
            "anvil_setBalance".into(),
            (addr(6), "0x65a4da25d3016c00000"),
        )
        .await
        .expect("balance");
    net.until("the award once funded", || async {
        net.status(waiting).await == LEASED
    })
    .await;
    stop(keeper);
}
