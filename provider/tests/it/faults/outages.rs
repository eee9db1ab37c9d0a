//! The chain unreachable mid-job: RPC faults through the proxy (429, 5xx, dropped connections, a
//! head going backwards, a bid's simulation or broadcast failing) and anvil stopped and restarted
//! with its state (OFF-10, OFF-11, OFF-12, OFF-16). The node stays up, backs off, catches up, bids
//! and posts the result once.

use std::time::Instant;

use alloy::sol_types::{SolCall, SolEvent};
use gridlease_bindings::{Market, MarketLens, Results};
use gridlease_deploy::anvil::ANVIL_KEYS;
use gridlease_testkit::proxy::{Fault, Proxy};

use crate::common::*;

// The proxy runs on this runtime: a second worker keeps it serving while the test blocks
// (stopping the node waits synchronously).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_10_off_11_off_12_off_16_rpc_faults_mid_job_the_node_stays_up_backs_off_catches_up_and_posts()
 {
    let n = net().await;
    let proxy = Proxy::start(&n.url).await.expect("proxy");
    n.config(&proxy.url(), None);
    let mut node = n.start(1);
    n.wait_head(1).await;

    // OFF-11: the RPC's head goes backwards: noticed, nothing done on it.
    proxy.fail_method("eth_blockNumber", Fault::HeadBehind(3));
    n.wait_log("the backwards head noticed", "head went backwards", 1, 20)
        .await;
    proxy.heal();

    // A job that runs through the outage.
    let id = n.order("sleep 4; echo done", 1).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;

    // OFF-10/12: 429, 5xx, dropped connections, then a hung node; the node backs off.
    let t0 = Instant::now();
    let polls0 = proxy.calls("eth_blockNumber");
    for fault in [Fault::Status(429), Fault::Status(503), Fault::Drop] {
        let c = proxy.calls("eth_blockNumber");
        proxy.fail(fault.clone());
        eventually(
            "the node to keep trying",
            30,
            async || proxy.calls("eth_blockNumber") >= c + 2,
            || n.log(1),
        )
        .await;
    }
    eventually(
        "/healthz to report the chain unread",
        30,
        async || n.http("/healthz").await.contains("503"),
        || n.log(1),
    )
    .await;
    // Anyone may ask: the RPC's URL (often carrying an API key) is not in the answer.
    let health = n.http("/healthz").await;
    assert!(!health.contains(&proxy.url()), "{health}");
    let outage = t0.elapsed();
    let polls = proxy.calls("eth_blockNumber") - polls0;
    assert!(
        (polls as f64) < outage.as_secs_f64() * 10.0 / 2.0,
        "backing off: {polls} head polls in {outage:?} at a 100 ms poll"
    );
    assert!(node.try_wait().expect("wait").is_none(), "still running");
    assert!(
        n.log(1)
            .contains("chain poll failed; running jobs continue")
    );

    // Back: it catches up and the job that ran through the outage gets its result.
    proxy.heal();
    n.result(id, 1, 60).await;
    eventually(
        "/healthz ok again",
        30,
        async || n.http("/healthz").await.starts_with("ok head"),
        || n.log(1),
    )
    .await;
    assert_eq!(
        n.count_logs(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
            .await,
        1,
        "posted once"
    );
    assert_eq!(
        n.count_logs(n.market, Market::LeaseClosed::SIGNATURE_HASH, id)
            .await,
        0,
        "no lease closed because the RPC dropped"
    );
    let log = n.log(1);
    assert!(
        !log.contains(ANVIL_KEYS[3].trim_start_matches("0x")),
        "the key never in the log (OFF-17)"
    );
    n.stop(node, 1);
}

/// OFF-10: a bid the RPC node refuses (its own answer, not the network's) is let go with the
/// reason, its slot, GPU and stake free again. The RPC failing a bid's simulation: nothing left
/// the node, so the order is looked at again at the next poll and bid on inside its window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_10_a_bid_the_rpc_node_refused_frees_its_slot_and_one_the_rpc_failed_goes_at_the_next_poll()
 {
    let n = net().await;
    let proxy = Proxy::start(&n.url).await.expect("proxy");
    n.config(&proxy.url(), None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The start's heartbeat simulates a call too; the next is half a period away.
    n.wait_metric("gridlease_provider_heartbeats_total 1", 1)
        .await;

    // Refused by the RPC node: let go, with the node's reason.
    proxy.fail_next(
        "eth_sendRawTransaction",
        [Fault::RpcError {
            code: -32000,
            message: "insufficient funds for gas * price + value".into(),
        }],
    );
    let refused = n.order_with("echo b", 2, 600, false).await;
    n.wait_metric("gridlease_provider_jobs{state=\"lost\"} 1", 1)
        .await;
    let log = n.log(1);
    assert!(
        log.contains("no bid on this order") && log.contains("insufficient funds"),
        "{log}"
    );
    assert_eq!(
        n.count_logs(n.market, Market::BidPlaced::SIGNATURE_HASH, refused)
            .await,
        0
    );

    // The simulation fails on the network twice: the bid goes at the third look. (The node's one
    // GPU is free for it: the refused bid holds nothing.)
    let sends = proxy.calls("eth_sendRawTransaction");
    proxy.fail_next("eth_estimateGas", [Fault::Status(503), Fault::Drop]);
    let auction = n.order_with("echo a", 1, 600, false).await;
    n.wait_bid(auction, 1, 30).await;
    let log = n.log(1);
    assert_eq!(
        log.matches("bid not sent (the RPC failed)").count(),
        2,
        "{log}"
    );
    assert_eq!(
        proxy.calls("eth_sendRawTransaction"),
        sends + 1,
        "one bid sent"
    );
    n.stop(node, 1);
}

/// OFF-10: the RPC fails while the node handles the log of a lease it won (the lease's results
/// module is looked up once per module): the page is read again at the next poll, and the lease
/// is acknowledged and run, its result posted. Dropped, the lease would be a no-show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_10_a_lease_log_whose_handling_failed_on_the_rpc_is_read_again_and_the_job_runs() {
    let n = net().await;
    let proxy = Proxy::start(&n.url).await.expect("proxy");
    n.config(&proxy.url(), None);
    let node = n.start(1);
    n.wait_head(1).await;

    let lookup = alloy::hex::encode(MarketLens::moduleCall::SELECTOR);
    proxy.fail_next_if("eth_call", &lookup, [Fault::Status(503), Fault::Drop]);
    let id = n.order("echo done", 1).await;
    n.result(id, 1, 60).await;
    let lookups = proxy
        .params("eth_call")
        .iter()
        .filter(|p| p.to_string().contains(&lookup))
        .count();
    assert_eq!(lookups, 3, "failed twice, then read: {}", n.log(1));
    n.stop(node, 1);
}

#[tokio::test]
async fn off_12_anvil_stopped_and_restarted_mid_job_with_its_state_does_not_lose_the_job() {
    let mut n = net().await;
    n.config(&n.url, None);
    let mut node = n.start(1);
    n.wait_head(1).await;
    let id = n.order("sleep 3; echo done", 4).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;

    // Stop anvil mid-job with its chain saved.
    let stopped = n
        .anvil
        .take()
        .expect("anvil")
        .stop_saving()
        .await
        .expect("anvil stops with its chain saved");

    // The node stays up and says the chain is unreachable.
    eventually(
        "/healthz to report the chain unread",
        30,
        async || n.http("/healthz").await.contains("503"),
        || n.log(1),
    )
    .await;
    assert!(node.try_wait().expect("wait").is_none(), "still running");

    // The same chain again on the same port.
    n.anvil = Some(stopped.start().expect("anvil restarts"));
    n.result(id, 1, 90).await;
    assert_eq!(
        n.count_logs(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
            .await,
        1,
        "posted once"
    );
    assert_eq!(
        n.count_logs(n.market, Market::LeaseClosed::SIGNATURE_HASH, id)
            .await,
        0,
        "no lease closed"
    );
    eventually(
        "/healthz ok again",
        30,
        async || n.http("/healthz").await.starts_with("ok head"),
        || n.log(1),
    )
    .await;
    n.stop(node, 1);
}
