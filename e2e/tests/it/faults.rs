//! The whole market through its faults, end to end: a tenant's job is running when its provider
//! node is killed (`kill -9`) and, while the node is down, the chain's RPC node is restarted from
//! its state; the node comes back, finishes the job and posts its result exactly once; two
//! keepers compete for the upkeep: the auction is awarded once, by one of them, the lease is
//! closed once, as completed after its challenge window (by a keeper or by the node), paid exactly
//! for the time to its result, and neither keeper paid gas for work already done when it sent
//! (at most a race it lost, KB-02).

use std::time::Duration;

use alloy::{
    consensus::Transaction as _,
    primitives::{Address, B256},
    providers::Provider,
    sol_types::SolEvent,
};
use gridlease_bindings::{Market as MarketC, Results};
use gridlease_chain::{classify, classify_rpc};
use gridlease_deploy::anvil;
use gridlease_e2e::{
    market::{Market, Options, PROVIDERS},
    scenario::{submit, until},
};
use gridlease_primitives::units::owed;

/// An auctioned job (a keeper must award it: the upkeep the two keepers compete for, besides the
/// close) that runs until the file `go` exists.
fn gated_spec(go: &std::path::Path) -> String {
    format!(
        r#"name = "a job that waits for the test"
kind = "container"

[resources]
gpu = "any"
gpu_count = 1
vram_gib = 1
cpu_cores = 1
ram_gib = 1

[price]
max_per_hour = "1.00"
max_duration = "10m"
bid_window = "5s"
collateral = "10"
instant = false
token = "USDC"

[container]
image = "docker.io/library/busybox:1.36"
command = ["sh", "-c", "while [ ! -e {go} ]; do sleep 0.2; done; echo survived"]
"#,
        go = go.display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_provider_and_a_restarted_rpc_node_lose_no_job_and_two_keepers_never_both_get_paid()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        providers: vec![PROVIDERS[0]],
        // The job waits for a file on this host, which a container cannot see: it runs as a
        // local process (a job killed with its node on a real engine: provider real_engine_*).
        engine: None,
        ..Options::default()
    };
    let mut m = Market::start(dir.path(), &opts).await.expect("market");
    let mut rival = m
        .start_keeper(&opts, "keeper2", "keeper2")
        .expect("a second keeper");
    rival
        .ready(Duration::from_secs(60))
        .await
        .expect("the second keeper answers");
    let market_addr = m.deployments.address("Market").expect("market");
    let results = Results::new(
        m.deployments.address("Results").expect("results"),
        &m.gov.provider,
    );
    let first = m.gov.provider.get_block_number().await.expect("block");

    // The tenant's job is auctioned, awarded to alpha by a keeper, and starts on alpha.
    let go = m.dir.join("go");
    let id = submit(&m, "gated", &gated_spec(&go), &|l| eprintln!("{l}"))
        .await
        .expect("submit");
    let metrics = format!("http://127.0.0.1:{}/metrics", m.providers[0].port);
    until(
        "the job running on alpha",
        Duration::from_secs(60),
        async || {
            Ok(gridlease_fetch::Fetcher::devnet()
                .get(&metrics, None)
                .await
                .ok()
                .filter(|b| {
                    String::from_utf8_lossy(b)
                        .contains("gridlease_provider_jobs{state=\"running\"} 1")
                })
                .map(|_| ()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(30)));

    // kill -9 mid-job; while the node is down the RPC node goes away for 2 s and comes back
    // with its state.
    m.providers[0].child.kill().expect("kill -9");
    let _ = m.providers[0].child.wait();
    m.devnet
        .anvil
        .restart(Duration::from_secs(2))
        .await
        .expect("anvil restarts with its state");
    std::fs::write(&go, b"").expect("let the job finish");
    m.providers[0] = m.start_provider(&PROVIDERS[0], &opts).expect("alpha again");
    m.providers[0]
        .ready(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    until("the result", Duration::from_secs(120), async || {
        let r = results.resultOf(id).call().await.map_err(classify)?;
        Ok((r != B256::ZERO).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(30)));
    let logs = async |address: Address, sig: B256| m.logs(address, sig, id).await.expect("logs");
    assert_eq!(
        logs(*results.address(), Results::ResultPosted::SIGNATURE_HASH)
            .await
            .len(),
        1,
        "posted exactly once"
    );
    let venue = gridlease_fetch::Venue {
        chain_id: m.gov.chain_id,
        market: market_addr,
    };
    let provider = logs(market_addr, MarketC::LeaseStarted::SIGNATURE_HASH).await[0]
        .log_decode::<MarketC::LeaseStarted>()
        .expect("LeaseStarted")
        .inner
        .data
        .provider;
    let auth = gridlease_fetch::result_auth(
        &anvil::ANVIL_KEYS[1].parse().expect("tenant key"),
        venue,
        id,
        provider,
    )
    .expect("signs");
    let url = format!("http://127.0.0.1:{}/results/{id}", m.providers[0].port);
    let served = gridlease_fetch::Fetcher::devnet()
        .get(&url, Some(&auth))
        .await
        .expect("the tenant downloads it from the restarted node");
    assert_eq!(served, b"survived\n");

    // Past the challenge window the lease is closed, once, by whichever gets there first.
    let window = results.challengeWindow().call().await.expect("window");
    anvil::warp(&m.gov.provider, window.to::<u64>() + 60)
        .await
        .expect("warp");
    until("the close", Duration::from_secs(90), async || {
        let closed = logs(market_addr, MarketC::LeaseClosed::SIGNATURE_HASH).await;
        Ok((!closed.is_empty()).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.log_tails(30)));
    // Give a losing keeper the time to (wrongly) act, then count.
    let head = m.gov.provider.get_block_number().await.expect("head");
    until("three more blocks", Duration::from_secs(30), async || {
        let now = m
            .gov
            .provider
            .get_block_number()
            .await
            .map_err(classify_rpc)?;
        Ok((now >= head + 3).then_some(()))
    })
    .await
    .expect("blocks");
    assert_eq!(
        logs(market_addr, MarketC::LeaseClosed::SIGNATURE_HASH)
            .await
            .len(),
        1,
        "closed once"
    );
    // Awarded once, by one of the keepers (the node only bids).
    let awards = logs(market_addr, MarketC::LeaseStarted::SIGNATURE_HASH).await;
    assert_eq!(awards.len(), 1, "awarded once");
    let award_tx = awards[0].transaction_hash.expect("mined");
    let awarded_by = m
        .gov
        .provider
        .get_transaction_receipt(award_tx)
        .await
        .expect("rpc")
        .expect("receipt")
        .from;
    let keepers = [m.keeper.as_ref().expect("keeper").address, rival.address];
    assert!(keepers.contains(&awarded_by), "awarded by {awarded_by}");
    // Completed, and paid once: for the time from the start to the result, never settled while
    // it ran (a batch lease is paid for its result).
    let closed = logs(market_addr, MarketC::LeaseClosed::SIGNATURE_HASH).await[0]
        .log_decode::<MarketC::LeaseClosed>()
        .expect("decode")
        .inner
        .data;
    assert_eq!(closed.reason, 5, "closed as completed: {closed:?}");
    assert!(!closed.held, "a completed lease's collateral is released");
    assert!(
        logs(market_addr, MarketC::LeaseSettled::SIGNATURE_HASH)
            .await
            .is_empty(),
        "a batch lease is not settled"
    );
    let started = logs(market_addr, MarketC::LeaseStarted::SIGNATURE_HASH).await[0]
        .log_decode::<MarketC::LeaseStarted>()
        .expect("decode")
        .inner
        .data;
    let posted_block = logs(*results.address(), Results::ResultPosted::SIGNATURE_HASH).await[0]
        .block_number
        .expect("mined");
    let posted_at = m
        .gov
        .provider
        .get_block_by_number(posted_block.into())
        .await
        .expect("rpc")
        .expect("block")
        .header
        .timestamp;
    let until_result = posted_at.min(started.end.to::<u64>()) - started.start.to::<u64>();
    let want = owed(started.ratePerSecond.to(), until_result, m.usdc.decimals).expect("owed");
    assert_eq!(
        closed.paid.to::<u128>(),
        want,
        "paid for the time to the result"
    );

    // Neither keeper paid gas for work another had done before it sent (both simulate on the
    // pending block and drop what no longer pays). The one loss the design allows (KB-02) is a
    // race: both simulated before either transaction reached the node, and the other's, the same
    // call on the same lease, went in first: ahead of it in its block, or in the block before it
    // (its estimate, signing, synced journal write and broadcast ran past a block boundary). At
    // most once per keeper and piece of work.
    let last = m.gov.provider.get_block_number().await.expect("head");
    let mut receipts = Vec::new();
    for b in first..=last {
        receipts.extend(
            m.gov
                .provider
                .get_block_receipts(b.into())
                .await
                .expect("receipts")
                .unwrap_or_default(),
        );
    }
    let work = async |hash: B256| {
        let tx = m
            .gov
            .provider
            .get_transaction_by_hash(hash)
            .await
            .expect("rpc")
            .expect("mined");
        let input = tx.input().to_vec();
        (tx.to(), input[..input.len().min(36)].to_vec())
    };
    let mut sent = [0usize; 2];
    let mut lost = Vec::new();
    for r in &receipts {
        let Some(k) = keepers.iter().position(|a| *a == r.from) else {
            continue;
        };
        sent[k] += 1;
        if r.status() {
            continue;
        }
        let mine = work(r.transaction_hash).await;
        let (block, index) = (r.block_number, r.transaction_index);
        let mut raced = false;
        for w in receipts.iter().filter(|w| {
            w.status()
                && w.from != r.from
                && (w.block_number == block && w.transaction_index < index
                    || w.block_number.map(|n| n + 1) == block)
        }) {
            raced |= work(w.transaction_hash).await == mine;
        }
        let again = lost.contains(&(k, mine.clone()));
        lost.push((k, mine));
        assert!(
            raced && !again,
            "keeper {} paid gas for a reverted transaction {} that lost no race (or lost one \
             piece of work twice)\n{}\n--- {}\n{}",
            r.from,
            r.transaction_hash,
            m.log_tails(60),
            rival.name,
            rival.log_tail(60)
        );
    }
    assert!(sent[0] + sent[1] > 0, "the keepers did the upkeep");
    rival.stop().expect("the second keeper exits 0 on SIGTERM");
    m.stop().expect("every daemon exits 0 on SIGTERM");
}
