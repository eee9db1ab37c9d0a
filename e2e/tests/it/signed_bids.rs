//! Signed (off-chain) bids end to end, as real processes against anvil: two provider nodes in
//! `bidding.mode = "signed"` at different prices and one node bidding on chain above both; one
//! auction. The keeper finds the signed bids at the nodes' registered metadataURI while the window
//! is open, places the cheapest (`Market.bidSigned`: only bids on chain when it closes count) and
//! awards it (`LeaseStarted.signedBid`), the losing signed bidder sends no transaction for the
//! order (a signed bid costs no gas), and the winner acknowledges the lease it did not award
//! itself (protocol v2: a keeper's award must be acknowledged within the start window) and runs
//! the job to its posted result.

use std::time::Duration;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::Provider,
    sol_types::{SolCall, SolEvent},
};
use gridlease_bindings::{Market as MarketC, MarketLens, Results};
use gridlease_chain::classify;
use gridlease_e2e::{
    market::{Conduct, Market, Options, ProviderPlan},
    scenario::{submit, until},
};
use gridlease_primitives::eip712::{ServedBid, market_domain};

const SPEC: &str = r#"name = "matmul auctioned to signed bids"
kind = "matmul_i8"

[resources]
gpu = "any"
gpu_count = 1
vram_gib = 1
cpu_cores = 1
ram_gib = 1

[price]
max_per_hour = "2.00"
max_duration = "10m"
bid_window = "8s"
collateral = "10"
instant = false
token = "USDC"

[matmul]
n = 128
seed = 5
"#;

fn plan(
    name: &'static str,
    owner: &'static str,
    operator: &'static str,
    per_hour: &'static str,
    signed: bool,
) -> ProviderPlan {
    ProviderPlan {
        name,
        class: "rtx4090",
        vram_gib: 24,
        owner,
        operator,
        any_per_hour: per_hour,
        class_per_hour: per_hour,
        conduct: Conduct::Honest,
        signed,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keeper_awards_the_cheapest_signed_bid_and_losers_pay_no_gas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        providers: vec![
            plan("cheap", "provider1", "provider1-operator", "0.40", true),
            plan("dear", "provider2", "provider2-operator", "0.60", true),
            plan("chain", "provider3", "provider3-operator", "0.90", false),
        ],
        ..Options::default()
    };
    let mut m = Market::start(dir.path(), &opts).await.expect("market");
    let market_addr = m.deployments.address("Market").expect("market");
    let lens = MarketLens::new(
        m.deployments.address("MarketLens").expect("lens"),
        &m.gov.provider,
    );
    let results = Results::new(
        m.deployments.address("Results").expect("results"),
        &m.gov.provider,
    );
    let (cheap, dear, chain) = (
        m.account("provider1"),
        m.account("provider2"),
        m.account("provider3"),
    );
    let signers: [Address; 2] = [
        m.account("provider1-operator"),
        m.account("provider2-operator"),
    ];
    let first = m.gov.provider.get_block_number().await.expect("block");

    let id = submit(&m, "signed", SPEC, &|l| eprintln!("{l}"))
        .await
        .expect("submit");
    let logs = async |sig: B256| m.logs(market_addr, sig, id).await.expect("logs");

    // Both signed nodes serve a bid on the order; each recovers to its own operator.
    let domain = market_domain(m.gov.chain_id, market_addr);
    let mut served = Vec::new();
    for (i, owner) in [cheap, dear].into_iter().enumerate() {
        let url = format!("http://127.0.0.1:{}/bids/{id}", m.ports[i]);
        let bid: ServedBid = until("a signed bid served", Duration::from_secs(60), async || {
            Ok(gridlease_fetch::Fetcher::devnet()
                .get(&url, None)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(25)));
        assert_eq!(bid.order, id);
        assert_eq!(bid.provider, owner);
        assert_eq!(bid.signer(&domain), Some(signers[i]));
        served.push(bid.price().expect("price"));
    }
    assert!(served[0] < served[1], "cheap bids below dear: {served:?}");
    // A node without a bid on an order answers 404.
    let none = format!(
        "http://127.0.0.1:{}/bids/{}",
        m.ports[0],
        B256::repeat_byte(7)
    );
    assert!(
        gridlease_fetch::Fetcher::devnet()
            .get(&none, None)
            .await
            .is_err()
    );

    // The on-chain node bids on chain, above both.
    let onchain = until("the on-chain bid", Duration::from_secs(60), async || {
        Ok(logs(MarketC::BidPlaced::SIGNATURE_HASH)
            .await
            .first()
            .and_then(|l| l.log_decode::<MarketC::BidPlaced>().ok())
            .map(|l| l.inner.data))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(25)));
    assert_eq!(onchain.provider, chain);
    assert!(onchain.pricePerSecond.to::<u128>() > served[1]);

    // The keeper placed the cheapest signed bid in the window and awards it after.
    let lease = until("the award", Duration::from_secs(90), async || {
        Ok(logs(MarketC::LeaseStarted::SIGNATURE_HASH)
            .await
            .first()
            .and_then(|l| l.log_decode::<MarketC::LeaseStarted>().ok())
            .map(|l| l.inner.data))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(25)));
    assert!(lease.signedBid, "awarded from a signed bid: {lease:?}");
    assert_eq!(lease.provider, cheap, "the cheapest bid wins");
    assert_eq!(lease.ratePerSecond.to::<u128>(), served[0]);

    // The winner acknowledges the keeper's award (or its result does, inside the start window),
    // and the job runs to its result.
    until("the result", Duration::from_secs(120), async || {
        let r = results.resultOf(id).call().await.map_err(classify)?;
        Ok((r != B256::ZERO).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(25)));
    let job = lens.getJob(id).call().await.expect("job");
    assert_eq!(job.provider, cheap);
    assert!(job.acknowledged, "the lease was acknowledged: {job:?}");

    // No signed node sent a bid transaction; the losing one sent nothing to the market at all
    // (its only transactions are provider-wide heartbeats to Staking).
    let last = m.gov.provider.get_block_number().await.expect("block");
    let staking = m.deployments.address("Staking").expect("staking");
    let mut from_losers = 0;
    for n in first..=last {
        let b = m
            .gov
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .full()
            .await
            .expect("block")
            .expect("block exists");
        for tx in b.transactions.into_transactions() {
            use alloy::consensus::Transaction as _;
            let from = tx.inner.signer();
            let input = tx.input();
            if signers.contains(&from) {
                assert!(
                    !input.starts_with(&MarketC::bidCall::SELECTOR),
                    "a signed node sent Market.bid"
                );
            }
            if from == signers[1] {
                from_losers += 1;
                assert_eq!(
                    tx.to(),
                    Some(staking),
                    "the losing signed bidder sent a transaction other than a heartbeat"
                );
            }
        }
    }
    eprintln!("losing signed bidder: {from_losers} heartbeat(s), no market transaction");
    m.stop().expect("daemons exit 0");
}
