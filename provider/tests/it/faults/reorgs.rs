//! Reorgs under the running node: acknowledgements and results reorged away come back as the same
//! transactions (OFF-01, OFF-03, PD-04), a reorg deeper than the confirmations holds results
//! (OFF-02), a reorged order leaves no reservation (PD-01), and a lease is acknowledged at the
//! head but runs only once it and its acknowledgement are deep enough (PD-02).

use std::time::Duration;

use alloy::{
    primitives::B256,
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent},
};
use gridlease_bindings::{Market, MarketLens, Results};
use gridlease_chain::send;

use crate::common::*;

/// A job that runs until the test creates the returned file: that file and the job's script.
fn held_job(n: &Net) -> (std::path::PathBuf, String) {
    let go = n.path().join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; echo done",
        go.display()
    );
    (go, script)
}

/// Node 1's config with leases started `confirmations` deep and no services, so that no
/// heartbeat mines a block: only the test does.
fn only_the_test_mines(n: &Net, confirmations: u64) {
    let path = n.path().join("provider.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text
        .replace(
            "confirmations = 0",
            &format!("confirmations = {confirmations}"),
        )
        .replace("[jobs]\n", "[jobs]\nservices = false\n");
    std::fs::write(&path, text).expect("config");
}

/// Award auction `id` (bid on by the node) as the tenant, past its bid window: the lease starts
/// unacknowledged (an instant order won by the node's own bid starts acknowledged). Returns the
/// award's block.
async fn award(n: &Net, id: B256) -> u64 {
    n.wait_bid(id, 1, 30).await;
    n.warp(61).await;
    send(Market::new(n.market, &n.tenant.provider).award(id))
        .await
        .expect("award")
        .block_number
        .expect("block")
}

#[tokio::test]
async fn off_01_off_03_pd_04_reorgs_mid_job_and_after_the_result_are_detected_and_its_transactions_return_as_the_same_bytes()
 {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The job runs until the test lets it finish (after the first reorg), however slow the machine.
    let (go, script) = held_job(&n);
    // An auction awarded by someone else (here the tenant): the node must acknowledge the lease.
    let id = n.order_with(&script, 2, 600, false).await;
    award(&n, id).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // The acknowledgement is mined and the node has read up to the head.
    let acked = |n: &Net| {
        let (results, tenant) = (n.results, n.tenant.clone());
        async move {
            tenant
                .provider
                .get_logs(
                    &Filter::new()
                        .address(results)
                        .event_signature(Results::LeaseAcknowledged::SIGNATURE_HASH)
                        .topic1(id)
                        .from_block(0),
                )
                .await
                .expect("logs")
        }
    };
    let logs = acked(&n).await;
    assert_eq!(logs.len(), 1, "acknowledged once");
    let ack = logs[0].transaction_hash.expect("tx");
    let ack_block = logs[0].block_number.expect("block");
    let head = n.tenant.provider.get_block_number().await.expect("head");
    n.wait_cursor("leases", head, 1).await;

    // The blocks from the acknowledgement on are replaced by empty ones.
    raw(
        &n.tenant,
        "anvil_reorg",
        serde_json::json!([head - ack_block + 1, []]),
    )
    .await;
    assert!(acked(&n).await.is_empty(), "the acknowledgement is gone");
    std::fs::write(&go, b"").expect("let the job finish");

    let root = n.result(id, 1, 60).await;
    assert_ne!(root, B256::ZERO);
    assert!(
        n.tenant
            .provider
            .get_transaction_receipt(ack)
            .await
            .expect("rpc")
            .is_some(),
        "the same acknowledgement bytes are back on chain"
    );
    assert_eq!(acked(&n).await.len(), 1, "acknowledged once, not twice");
    assert_eq!(
        n.count_logs(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
            .await,
        1
    );
    assert!(
        n.log(1).contains("reorg below the cursor"),
        "the reorg was detected: {}",
        n.log(1)
    );

    // PD-04: the result's block is reorged away after the node saw it posted: the same result
    // transaction goes out again.
    n.wait_metric("gridlease_provider_jobs{state=\"posted\"} 1", 1)
        .await;
    let posted = n
        .tenant
        .provider
        .get_logs(
            &Filter::new()
                .address(n.results)
                .event_signature(Results::ResultPosted::SIGNATURE_HASH)
                .topic1(id)
                .from_block(0),
        )
        .await
        .expect("logs");
    let post = posted[0].transaction_hash.expect("tx");
    let post_block = posted[0].block_number.expect("block");
    let head = n.tenant.provider.get_block_number().await.expect("head");
    n.wait_cursor("orders", head, 1).await;
    raw(
        &n.tenant,
        "anvil_reorg",
        serde_json::json!([head - post_block + 1, []]),
    )
    .await;
    assert!(
        n.tenant
            .provider
            .get_transaction_receipt(post)
            .await
            .expect("rpc")
            .is_none(),
        "the result is gone"
    );
    assert_eq!(n.result(id, 1, 60).await, root, "the same result again");
    assert!(
        n.tenant
            .provider
            .get_transaction_receipt(post)
            .await
            .expect("rpc")
            .is_some(),
        "as the same transaction"
    );
    assert_eq!(
        n.count_logs(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
            .await,
        1
    );
    n.stop(node, 1);
}

#[tokio::test]
async fn off_02_a_reorg_deeper_than_the_confirmations_is_alerted_and_holds_results_until_buried_again()
 {
    let n = net().await;
    n.config(&n.url, None);
    let path = n.path().join("provider.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace("confirmations = 0", "confirmations = 2"),
    )
    .expect("config");
    let mut node = n.start(1);
    n.wait_head(1).await;
    // A finished job whose result the tenant has not downloaded yet.
    let id = n.order("echo held", 21).await;
    // Lease events are read two blocks deep: blocks come while the test waits for the result.
    let results = Results::new(n.results, &n.tenant.provider);
    eventually(
        "a result on chain",
        60,
        async || {
            raw(&n.tenant, "evm_mine", serde_json::json!([])).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let r = results.resultOf(id).call().await.expect("resultOf");
            r != B256::ZERO
        },
        || n.log(1),
    )
    .await;
    let url = format!("http://127.0.0.1:{}/results/{id}", n.port);
    let download = async || {
        let auth = n.result_auth(id);
        get_raw(&url, Some(&auth)).await
    };
    for _ in 0..5 {
        raw(&n.tenant, "evm_mine", serde_json::json!([])).await;
    }
    let head = n.tenant.provider.get_block_number().await.expect("head");
    n.wait_cursor("leases", head - 2, 1).await;
    // Four blocks replaced (the result is older): two more than the node waits for.
    raw(&n.tenant, "anvil_reorg", serde_json::json!([4, []])).await;
    n.wait_metric("gridlease_provider_deep_reorgs_total 1", 1)
        .await;
    assert!(n.log(1).contains("reorg deeper than chain.confirmations"));
    assert!(
        node.try_wait().expect("wait").is_none(),
        "no panic, still running"
    );
    // Held until the head is two blocks past the replaced ones.
    let m = n.http("/metrics").await;
    let until: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("gridlease_provider_finality_hold_until_block "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the hold gauge");
    assert!(until >= head + 2, "hold until {until}, head {head}");
    let refused = download().await.expect_err("held");
    assert!(
        refused.contains("503") && refused.contains(&format!("released again at block {until}")),
        "{refused}"
    );
    assert!(n.http("/healthz").await.contains(&format!(
        "holding job starts and results until block {until}"
    )));
    for _ in 0..2 {
        raw(&n.tenant, "evm_mine", serde_json::json!([])).await;
    }
    n.wait_metric("gridlease_provider_finality_hold_until_block 0", 1)
        .await;
    assert_eq!(download().await.expect("released"), b"held\n");
    assert!(n.log(1).contains("finality hold over"));
    eventually(
        "/healthz ok",
        30,
        async || {
            let h = n.http("/healthz").await;
            h.starts_with("ok head ") && !h.contains("holding")
        },
        || n.log(1),
    )
    .await;
    n.stop(node, 1);
}

#[tokio::test]
async fn pd_01_off_01_a_bid_whose_order_a_reorg_removed_leaves_no_reservation() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    let before = n.tenant.provider.get_block_number().await.expect("head");
    let id = n.order_with("echo done", 7, 600, false).await;
    n.wait_metric("gridlease_provider_jobs{state=\"bid\"} 1", 1)
        .await;
    n.wait_bid(id, 1, 20).await;
    let head = n.tenant.provider.get_block_number().await.expect("head");
    n.wait_cursor("orders", head, 1).await;
    // The order and the bid are reorged away (the tenant gave up on it).
    raw(
        &n.tenant,
        "anvil_reorg",
        serde_json::json!([head - before, []]),
    )
    .await;
    n.wait_metric("gridlease_provider_jobs{state=\"lost\"} 1", 1)
        .await;
    // The row changes just before the line is written.
    n.wait_log("the node to log why", "the order was reorged away", 1, 10)
        .await;
    n.stop(node, 1);
}

/// The first try of the acknowledgement at the head fails on the RPC: tried again at once, not
/// left to the driver, which acknowledges only once the lease is deep enough.
// The proxy serves on this runtime while the test waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pd_02_a_lease_is_acknowledged_at_the_head_within_its_start_window_and_runs_once_deep_enough()
 {
    let n = net().await;
    let proxy = gridlease_testkit::proxy::Proxy::start(&n.url)
        .await
        .expect("proxy");
    n.config(&proxy.url(), None);
    // Thirty blocks before a lease's job may start.
    only_the_test_mines(&n, 30);
    let node = n.start(1);
    n.wait_head(1).await;
    // An auction the tenant awards: the lease starts unacknowledged.
    let id = n.order_with("echo done", 41, 600, false).await;
    let ack = alloy::hex::encode(Results::acknowledgeCall::SELECTOR);
    proxy.fail_next_if(
        "eth_estimateGas",
        &ack,
        [gridlease_testkit::proxy::Fault::Status(503)],
    );
    award(&n, id).await;
    let acks = async || {
        n.count_logs(n.results, Results::LeaseAcknowledged::SIGNATURE_HASH, id)
            .await
    };
    eventually(
        "the acknowledgement at the head",
        30,
        async || acks().await == 1,
        || n.log(1),
    )
    .await;
    let lens = MarketLens::new(n.lens, &n.tenant.provider);
    assert!(lens.getJob(id).call().await.expect("job").acknowledged);
    // The lease is not deep enough yet: its job has not started.
    assert!(
        n.http("/metrics")
            .await
            .contains("gridlease_provider_jobs{state=\"bid\"} 1"),
        "{}",
        n.log(1)
    );
    n.wait_log("the node to log it", "acknowledged at the head", 1, 30)
        .await;
    assert!(
        n.log(1)
            .contains("acknowledging at the head failed on the RPC; trying again"),
        "the first try failed: {}",
        n.log(1)
    );
    // Thirty blocks later the job runs and its result is posted, with no second acknowledgement.
    raw(&n.tenant, "anvil_mine", serde_json::json!(["0x1e"])).await;
    n.result(id, 1, 60).await;
    assert_eq!(acks().await, 1, "acknowledged once");
    n.stop(node, 1);
}

/// PD-02: the acknowledgement the node sends at the head, while the lease is new, lands a block or
/// more after the lease, so it is less deep when the lease is deep enough to run. A shallow reorg
/// then drops it (the lease stays): the node acknowledges again and runs the job once that one is
/// deep, and its result stands after the start window. Before, the job ran on the dropped
/// acknowledgement, and its result past the window was refused (StartWindowOver: a no-show).
#[tokio::test]
async fn pd_02_an_early_acknowledgement_a_shallow_reorg_drops_is_sent_again_before_the_job_runs() {
    let n = net().await;
    n.config(&n.url, None);
    only_the_test_mines(&n, 3);
    let node = n.start(1);
    n.wait_head(1).await;
    // The job runs until the test lets it finish, past the start window.
    let (go, script) = held_job(&n);
    let id = n.order_with(&script, 43, 600, false).await;
    let lease_block = award(&n, id).await;
    let acks = async || {
        n.logs_of(n.results, Results::LeaseAcknowledged::SIGNATURE_HASH, id)
            .await
    };
    eventually(
        "the acknowledgement at the head",
        30,
        async || acks().await.len() == 1,
        || n.log(1),
    )
    .await;
    let ack_block = acks().await[0].block_number.expect("block");
    assert!(ack_block > lease_block);
    // The lease becomes deep enough (3 blocks), its acknowledgement not yet; the node reads it.
    let head = n.tenant.provider.get_block_number().await.expect("head");
    let more = (lease_block + 3).saturating_sub(head);
    raw(&n.tenant, "anvil_mine", serde_json::json!([more])).await;
    let head = n.tenant.provider.get_block_number().await.expect("head");
    assert!(head < ack_block + 3, "the acknowledgement is less deep");
    eventually(
        "the node to start the lease's job or hold it",
        30,
        async || {
            n.http("/metrics")
                .await
                .contains("gridlease_provider_jobs{state=\"running\"} 1")
                || n.log(1).contains("not yet that deep: the job waits")
        },
        || n.log(1),
    )
    .await;
    // A shallow reorg drops the acknowledgement's block and those after it; the lease stays.
    raw(
        &n.tenant,
        "anvil_reorg",
        serde_json::json!([head - ack_block + 1, []]),
    )
    .await;
    assert!(acks().await.is_empty(), "the acknowledgement is gone");
    eventually(
        "the node to acknowledge again",
        30,
        async || acks().await.len() == 1,
        || n.log(1),
    )
    .await;
    raw(&n.tenant, "anvil_mine", serde_json::json!(["0x3"])).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // Past the start window (2 minutes on the devnet), the job finishes and its result stands.
    n.warp(121).await;
    std::fs::write(&go, b"").expect("let the job finish");
    let root = n.result(id, 1, 60).await;
    assert_ne!(root, B256::ZERO);
    n.stop(node, 1);
}
