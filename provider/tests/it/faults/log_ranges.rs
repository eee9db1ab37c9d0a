//! Reading logs through an RPC that refuses wide `eth_getLogs` ranges (OFF-13), with cursors that
//! rewind after a reorg or a rollback (OFF-01, OFF-02): the log reader directly, then the node.

use std::collections::HashSet;

use alloy::{providers::Provider, rpc::types::Filter, sol_types::SolEvent};
use gridlease_bindings::{Market, MockStablecoin, Results};
use gridlease_chain::{ChainError, Client, logs};
use gridlease_daemon::txm::{TxManager, TxPolicy};
use gridlease_testkit::proxy::{Fault, Proxy};

use super::{approve, chain, mined};
use crate::common::*;

#[tokio::test]
async fn off_01_off_02_off_13_refused_log_ranges_are_split_every_event_read_once_and_reorged_cursors_rewind()
 {
    let (anvil, client, usdc, market) = chain().await;
    let proxy = Proxy::start(&anvil.url()).await.expect("proxy");
    let pc = Client::connect(&proxy.url(), None).await.expect("connect");
    let txm = TxManager::new(client.clone(), key(5), TxPolicy::default());
    for v in 0..12 {
        let s = txm
            .send(usdc, approve(market, v), |_| Ok(()))
            .await
            .expect("sent");
        mined(&txm, s).await;
    }
    let head = client.provider.get_block_number().await.expect("head");
    proxy.fail_method("eth_getLogs", Fault::MaxLogRange(3));
    let filter = Filter::new()
        .address(usdc)
        .event_signature(MockStablecoin::Approval::SIGNATURE_HASH)
        .topic1(txm.from());
    let read = async |from: u64, to: u64| {
        let mut seen = Vec::new();
        let mut pages = Vec::new();
        logs::pages(&pc, &filter, from, to, async |page, end, hash| {
            seen.extend(page);
            pages.push((end, hash));
            Ok(())
        })
        .await
        .expect("read through refusals");
        (seen, pages)
    };
    let (seen, pages) = read(0, head).await;
    let ids: HashSet<_> = seen
        .iter()
        .map(|l| (l.transaction_hash, l.log_index))
        .collect();
    assert_eq!(seen.len(), 12, "every event");
    assert_eq!(ids.len(), 12, "exactly once");
    let mut prev = None;
    for (end, _) in &pages {
        if let Some(p) = prev {
            assert!(end - p <= 3, "pages no wider than the node allows");
        }
        prev = Some(*end);
    }
    assert_eq!(pages.last().map(|p| p.0), Some(head), "up to the head");
    assert!(
        proxy.calls("eth_getLogs") > pages.len(),
        "some ranges were refused"
    );

    // A one-off look-up pages the same way.
    let first = logs::first(&pc, &filter, 0, head)
        .await
        .expect("found through refusals")
        .expect("a log");
    assert_eq!(first.transaction_hash, seen[0].transaction_hash);
    // And so does a one-off read of them all (the CLI's `list`, `status`, `result`).
    let all = logs::all(&pc, &filter, 0, head)
        .await
        .expect("read through refusals");
    assert_eq!(
        all.iter()
            .map(|l| (l.transaction_hash, l.log_index))
            .collect::<Vec<_>>(),
        seen.iter()
            .map(|l| (l.transaction_hash, l.log_index))
            .collect::<Vec<_>>(),
        "every event once, oldest first"
    );

    // OFF-01: the cursor's block is reorged away: resuming rewinds and re-reads.
    let cursor = *pages.last().expect("a page");
    assert_eq!(
        logs::resume_from(&pc, "test", Some(cursor), 0)
            .await
            .expect("resume"),
        head + 1
    );
    raw(&client, "anvil_reorg", serde_json::json!([2, []])).await;
    let from = logs::resume_from(&pc, "test", Some(cursor), 0)
        .await
        .expect("resume");
    assert!(from <= head - 2, "rewound below the reorg: {from}");
    let (again, _) = read(from, head).await;
    let live: HashSet<_> = again
        .iter()
        .map(|l| (l.transaction_hash, l.log_index))
        .collect();
    assert_eq!(live.len(), again.len(), "once each");
    assert!(live.is_subset(&ids));
    assert_eq!(
        again.len(),
        10,
        "the two reorged approvals are gone, the rest re-read"
    );

    // OFF-02: a rollback below the cursor: no panic; while the head is below the cursor the node
    // is waited for (a lagging RPC looks the same), and once the chain is past it again the
    // changed hash rewinds the cursor.
    raw(&client, "anvil_rollback", serde_json::json!([5])).await;
    let e = logs::resume_from(&pc, "test", Some(cursor), 0)
        .await
        .expect_err("behind the cursor");
    assert!(matches!(e, ChainError::Network(_)), "{e}");
    for _ in 0..6 {
        raw(&client, "evm_mine", serde_json::json!([])).await;
    }
    let from = logs::resume_from(&pc, "test", Some(cursor), 0)
        .await
        .expect("past the cursor again");
    assert!(from <= cursor.0 - 5, "rewound below the rollback: {from}");
}

// The proxy runs on this runtime: a second worker keeps it serving while the test blocks
// (stopping the node waits synchronously).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_13_a_node_behind_an_rpc_that_refuses_wide_log_ranges_serves_every_order_exactly_once()
{
    let n = net().await;
    let proxy = Proxy::start(&n.url).await.expect("proxy");
    proxy.fail_method("eth_getLogs", Fault::MaxLogRange(4));
    // Thirty empty blocks between the deployment and the first order.
    for _ in 0..30 {
        raw(&n.tenant, "evm_mine", serde_json::json!([])).await;
    }
    n.config(&proxy.url(), None);
    let node = n.start(1);
    // One order at a time (the node has one GPU), each followed by empty blocks.
    let mut ids = Vec::new();
    for salt in 10..13u8 {
        let id = n.order("echo done", salt).await;
        for _ in 0..7 {
            raw(&n.tenant, "evm_mine", serde_json::json!([])).await;
        }
        n.result(id, 1, 60).await;
        ids.push(id);
    }
    for id in &ids {
        assert_eq!(
            n.count_logs(n.market, Market::LeaseStarted::SIGNATURE_HASH, *id)
                .await,
            1,
            "one lease per order (an instant order's bid starts it)"
        );
        assert_eq!(
            n.count_logs(n.results, Results::ResultPosted::SIGNATURE_HASH, *id)
                .await,
            1,
            "one result per lease"
        );
    }
    assert!(proxy.calls("eth_getLogs") > 0, "read through the proxy");
    n.stop(node, 1);
}
