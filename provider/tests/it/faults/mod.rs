//! The OFF and PD cases of SECURITY.md that need a fault: reorgs (`anvil_reorg`,
//! `anvil_rollback`), lost and refused transactions, and what anvil cannot produce (429, 5xx,
//! hung calls, dropped connections, refused `eth_getLogs` ranges, a head going backwards, geth's
//! replacement rule) through the fault-injecting proxy of `gridlease_deploy::proxy`. Each test
//! carries the IDs it covers. The transaction manager and the log reader are tested directly;
//! what needs the daemon runs `gridlease-provider run` as a real process.

use std::{
    collections::HashSet,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolCall, SolEvent},
};
use gridlease_bindings::{Market, MarketLens, MockStablecoin, Results, Staking};
use gridlease_core::{
    chain::{ChainError, Client, RPC_TIMEOUT, send},
    fetch, logs,
    txm::{Outcome, Signed, TxManager, TxPolicy},
};
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS, Anvil},
    devnet,
    proxy::{Fault, Proxy},
};

use crate::common::*;

const SEND_RAW: &str = "eth_sendRawTransaction";

fn approve(spender: Address, v: u64) -> Bytes {
    MockStablecoin::approveCall {
        spender,
        value: U256::from(v),
    }
    .abi_encode()
    .into()
}

fn fast() -> TxPolicy {
    TxPolicy {
        stuck_after: Duration::from_millis(300),
        poll: Duration::from_millis(50),
        ..TxPolicy::default()
    }
}

/// A market on anvil, a client on it, and the USDC and Market addresses.
async fn chain() -> (Anvil, Client, Address, Address) {
    let (anvil, _gov, d) = devnet::market(0, None).await.expect("market");
    let client = Client::connect(&anvil.url(), None).await.expect("connect");
    let usdc = d.token("USDC").expect("usdc").address;
    let market = d.address("Market").expect("market");
    (anvil, client, usdc, market)
}

async fn nonce(c: &Client, who: Address) -> u64 {
    c.provider.get_transaction_count(who).await.expect("nonce")
}

async fn mined(txm: &TxManager, sent: Signed) -> B256 {
    match txm
        .confirm(sent, Duration::from_secs(30), |_| Ok(()))
        .await
        .expect("confirmed")
    {
        Outcome::Mined(r) => {
            assert!(r.status(), "succeeded");
            r.transaction_hash
        }
        Outcome::NonceTaken => panic!("nonce taken"),
    }
}

#[tokio::test]
async fn off_03_off_09_transactions_a_reorg_removed_come_back_as_the_same_bytes_in_nonce_order() {
    let (_anvil, client, usdc, market) = chain().await;
    let txm = TxManager::new(client.clone(), key(5), fast());
    let a = txm
        .send(usdc, approve(market, 1), |_| Ok(()))
        .await
        .expect("a");
    assert_eq!(mined(&txm, a.clone()).await, a.hash);
    let b = txm
        .send(usdc, approve(market, 2), |_| Ok(()))
        .await
        .expect("b");
    assert_eq!(mined(&txm, b.clone()).await, b.hash);

    // Both blocks replaced by empty ones: the receipts vanish and the nonce goes back to 0.
    raw(&client, "anvil_reorg", serde_json::json!([2, []])).await;
    assert!(txm.receipt(a.hash).await.expect("rpc").is_none());
    assert!(txm.receipt(b.hash).await.expect("rpc").is_none());
    assert_eq!(nonce(&client, txm.from()).await, 0);

    // Watching b again: the gap at a's nonce is filled with a's bytes, then b's bytes go again.
    assert_eq!(mined(&txm, b.clone()).await, b.hash, "b's own bytes");
    assert!(
        txm.receipt(a.hash).await.expect("rpc").is_some(),
        "a's own bytes"
    );
    assert_eq!(
        nonce(&client, txm.from()).await,
        2,
        "nothing re-signed, nothing extra"
    );
}

#[tokio::test]
async fn off_06_nonce_too_low_for_a_fresh_transaction_re_signs_it_at_the_chain_nonce() {
    let (_anvil, client, usdc, market) = chain().await;
    let mine = TxManager::new(client.clone(), key(5), TxPolicy::default());
    let other = TxManager::new(client.clone(), key(5), TxPolicy::default());
    let first = mine
        .send(usdc, approve(market, 1), |_| Ok(()))
        .await
        .expect("sent");
    assert_eq!(first.nonce, 0);
    // Another writer on the key (a second process, or one before a restart) takes nonces 1, 2.
    for v in [2, 3] {
        other
            .send(usdc, approve(market, v), |_| Ok(()))
            .await
            .expect("other");
    }
    let journaled = Mutex::new(Vec::new());
    let next = mine
        .send(usdc, approve(market, 4), |s| {
            journaled.lock().expect("lock").push(s.nonce);
            Ok(())
        })
        .await
        .expect("re-signed, not an error");
    assert_eq!(next.nonce, 3);
    assert_eq!(
        *journaled.lock().expect("lock"),
        vec![1, 3],
        "the refused one and its successor were both journaled before broadcast"
    );
    assert_eq!(mined(&mine, next.clone()).await, next.hash);
    assert_eq!(nonce(&client, mine.from()).await, 4);
}

#[tokio::test]
async fn off_07_underpriced_and_already_known_are_not_fatal_and_replacements_raise_both_fees_10_percent()
 {
    let (anvil, client, usdc, market) = chain().await;
    let proxy = Proxy::start(&anvil.url()).await.expect("proxy");
    let pc = Client::connect(&proxy.url(), None).await.expect("connect");
    // A policy asking for 5 %: geth would refuse it, so the manager raises it to 10 %.
    let policy = TxPolicy {
        bump_bps: 500,
        ..fast()
    };
    let txm = Arc::new(TxManager::new(pc, key(5), policy));
    raw(&client, "evm_setAutomine", serde_json::json!([false])).await;
    proxy.fail_method(SEND_RAW, Fault::PriceBump(1_000));
    let sent = txm
        .send(usdc, approve(market, 7), |_| Ok(()))
        .await
        .expect("sent");

    proxy.fail_method(
        SEND_RAW,
        Fault::RpcError {
            code: -32000,
            message: "already known".into(),
        },
    );
    txm.broadcast(&sent)
        .await
        .expect("already known counts as sent");

    // Every replacement refused as underpriced: the watch goes on, each bid higher.
    proxy.fail_method(
        SEND_RAW,
        Fault::RpcError {
            code: -32000,
            message: "replacement transaction underpriced".into(),
        },
    );
    let journal: Arc<Mutex<Vec<Signed>>> = Arc::default();
    let (t, j, first) = (txm.clone(), journal.clone(), sent.clone());
    let watch = tokio::spawn(async move {
        t.confirm(first, Duration::from_secs(60), move |s| {
            j.lock().expect("lock").push(s.clone());
            Ok(())
        })
        .await
    });
    let len = || journal.lock().expect("lock").len();
    eventually(
        "two refused replacements",
        20,
        async || len() >= 2,
        String::new,
    )
    .await;
    let refused = journal.lock().expect("lock").clone();
    for r in &refused {
        assert_eq!(r.nonce, sent.nonce, "same nonce");
    }
    assert!(
        refused[0].max_fee * 100 >= sent.max_fee * 110
            && refused[0].priority_fee * 100 >= sent.priority_fee * 110,
        "both fees +10 % at least: {refused:?} after {sent:?}"
    );
    assert!(
        refused[1].max_fee > refused[0].max_fee
            && refused[1].priority_fee > refused[0].priority_fee,
        "after a refusal the next replacement bids higher"
    );
    assert!(!watch.is_finished(), "a refusal is not fatal");

    // geth's rule (10 % on both fees) from now on: the next replacement passes and is mined.
    let calls = proxy.calls(SEND_RAW);
    let before = len();
    proxy.fail_method(SEND_RAW, Fault::PriceBump(1_000));
    eventually(
        "an accepted replacement",
        20,
        async || len() > before && proxy.calls(SEND_RAW) > calls,
        String::new,
    )
    .await;
    // (The proxy counts a call before forwarding it: mine only once the node holds it.)
    eventually(
        "the replacement in the node's pool",
        20,
        async || {
            let hashes: Vec<B256> = journal.lock().expect("lock")[before..]
                .iter()
                .map(|s| s.hash)
                .collect();
            for h in hashes {
                if client
                    .provider
                    .get_transaction_by_hash(h)
                    .await
                    .expect("rpc")
                    .is_some()
                {
                    return true;
                }
            }
            false
        },
        String::new,
    )
    .await;
    eventually(
        "the watch to end",
        20,
        async || {
            raw(&client, "evm_mine", serde_json::json!([])).await;
            watch.is_finished()
        },
        String::new,
    )
    .await;
    let Outcome::Mined(r) = watch.await.expect("task").expect("confirmed") else {
        panic!("not mined");
    };
    let all = journal.lock().expect("lock").clone();
    let won = all
        .iter()
        .find(|s| s.hash == r.transaction_hash)
        .expect("a replacement was mined");
    assert!(
        won.max_fee * 100 >= sent.max_fee * 110
            && won.priority_fee * 100 >= sent.priority_fee * 110
    );
    assert_eq!(nonce(&client, txm.from()).await, 1, "one transaction");
}

#[tokio::test]
async fn off_10_a_send_that_failed_on_the_network_is_retried_with_backoff_as_the_same_bytes_and_calls_time_out()
 {
    let (anvil, client, usdc, market) = chain().await;
    let proxy = Arc::new(Proxy::start(&anvil.url()).await.expect("proxy"));
    let pc = Client::connect(&proxy.url(), None).await.expect("connect");
    let txm = TxManager::new(pc.clone(), key(5), fast());

    // The answer is lost after the node took it (automine: it is even mined).
    proxy.fail_method(SEND_RAW, Fault::LoseAnswer);
    let t0 = Instant::now();
    let sent = txm
        .send(usdc, approve(market, 1), |_| Ok(()))
        .await
        .expect("journaled and handed on: `confirm` takes it from here");
    let tries = proxy.calls(SEND_RAW);
    assert_eq!(tries, 4, "one try and three bounded retries");
    assert!(
        t0.elapsed() >= Duration::from_millis(1_400) && t0.elapsed() < Duration::from_secs(15),
        "backoff 200 + 400 + 800 ms: {:?}",
        t0.elapsed()
    );
    let hex = format!("{}", sent.raw);
    for p in proxy.params(SEND_RAW) {
        assert_eq!(p[0].as_str(), Some(hex.as_str()), "always the same bytes");
    }
    proxy.heal();
    assert_eq!(mined(&txm, sent.clone()).await, sent.hash);

    // 429, then 503, then through: retried, the same bytes, one nonce.
    proxy.fail_method(SEND_RAW, Fault::Status(429));
    let p2 = proxy.clone();
    let flip = tokio::spawn(async move {
        while p2.calls(SEND_RAW) < tries + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        p2.fail_method(SEND_RAW, Fault::Status(503));
        while p2.calls(SEND_RAW) < tries + 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        p2.heal();
    });
    let second = txm
        .send(usdc, approve(market, 2), |_| Ok(()))
        .await
        .expect("sent");
    flip.await.expect("flip");
    assert_eq!(proxy.calls(SEND_RAW), tries + 3);
    let hex = format!("{}", second.raw);
    for p in &proxy.params(SEND_RAW)[tries..] {
        assert_eq!(p[0].as_str(), Some(hex.as_str()), "always the same bytes");
    }
    assert_eq!(mined(&txm, second.clone()).await, second.hash);
    assert_eq!(nonce(&client, txm.from()).await, 2, "nothing re-signed");

    // A node that never answers: the call fails after the timeout, it does not hang.
    proxy.fail(Fault::Hang);
    let t0 = Instant::now();
    let e = pc.provider.get_block_number().await.expect_err("timed out");
    assert!(
        t0.elapsed() >= RPC_TIMEOUT && t0.elapsed() < RPC_TIMEOUT + Duration::from_secs(10),
        "{e} after {:?}",
        t0.elapsed()
    );
}

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
async fn off_10_off_11_off_12_off_16_rpc_faults_mid_job_the_node_stays_up_backs_off_catches_up_and_posts()
 {
    let n = net().await;
    let proxy = Proxy::start(&n.url).await.expect("proxy");
    n.config(&proxy.url(), None);
    let mut node = n.start(1);
    n.wait_head(1).await;

    // OFF-11: the RPC's head goes backwards: noticed, nothing done on it.
    proxy.fail_method("eth_blockNumber", Fault::HeadBehind(3));
    eventually(
        "the backwards head noticed",
        20,
        async || n.log(1).contains("head went backwards"),
        || n.log(1),
    )
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

#[tokio::test]
async fn off_01_off_03_pd_04_reorgs_mid_job_and_after_the_result_are_detected_and_its_transactions_return_as_the_same_bytes()
 {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The job runs until the test lets it finish (after the first reorg), however slow the machine.
    let go = n.path().join("go");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; echo done",
        go.display()
    );
    // An auction awarded by someone else (here the tenant): the node must acknowledge the lease
    // (an instant order won by its own bid starts acknowledged).
    let id = n.order_with(&script, 2, 600, false).await;
    n.wait_bid(id, 1, 30).await;
    n.warp(61).await;
    send(Market::new(n.market, &n.tenant.provider).award(id, vec![]))
        .await
        .expect("award");
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
async fn off_15_off_17_off_18_the_node_refuses_to_start_on_a_corrupt_store_an_open_keystore_or_another_chain()
 {
    let n = net().await;
    let dir = n.path();
    n.config(&n.url, None);

    // OFF-18: the deployments file is for another chain.
    let d = std::fs::read_to_string(dir.join("deployments.json")).expect("read");
    std::fs::write(
        dir.join("deployments.json"),
        d.replace("\"chainId\": 31337", "\"chainId\": 1"),
    )
    .expect("write");
    let (code, err) = n.refused();
    assert_ne!(code, 0);
    assert!(err.contains("31337") && err.contains('1'), "{err}");
    std::fs::write(dir.join("deployments.json"), d).expect("write");

    // OFF-15: a corrupt state store: a clear refusal, never a fresh start from `latest`.
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("data/state.db"), vec![0x5a; 8192]).expect("write");
    let (code, err) = n.refused();
    assert_ne!(code, 0);
    assert!(err.contains("state.db"), "names the file: {err}");
    std::fs::remove_file(dir.join("data/state.db")).expect("rm");

    // OFF-17: a keystore (or its password file) that others can read is refused.
    // `cast wallet new` (what operators use) writes keystores readable by others.
    let cast = anvil::find_anvil().expect("anvil").with_file_name("cast");
    let made = Command::new(cast)
        .args(["wallet", "new"])
        .arg(&dir)
        .args(["op.json", "--unsafe-password", "pw"])
        .output()
        .expect("cast runs");
    assert!(made.status.success(), "{made:?}");
    std::fs::write(dir.join("pw"), "pw\n").expect("pw");
    use std::os::unix::fs::PermissionsExt;
    for f in ["op.json", "pw"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    n.config(
        &n.url,
        Some("keystore = \"op.json\"\npassword = \"file:pw\""),
    );
    for f in ["op.json", "pw"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let (code, err) = n.refused();
        assert_ne!(code, 0);
        assert!(err.contains(f) && err.contains("0600"), "{err}");
        assert!(!err.contains(ANVIL_KEYS[3].trim_start_matches("0x")));
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
}

#[tokio::test]
async fn pd_06_pd_08_a_leaked_operator_key_cannot_unbond_or_withdraw_and_locked_stake_stays() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    let id = n.order("sleep 30", 3).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    let owner = key(2).address();
    let staking = |c: &Client| Staking::new(n.staking, c.provider.clone());
    let info = staking(&n.tenant)
        .providerInfo(owner)
        .call()
        .await
        .expect("info");
    assert_eq!(info.locked, 10 * USDC, "the lease's collateral is locked");

    // The operator key (what the node holds) cannot take stake or earnings.
    let op = Client::connect(&n.url, Some(key(3)))
        .await
        .expect("connect");
    let refused = |e: ChainError| match e {
        ChainError::Revert(r) => r.name,
        other => panic!("not a revert: {other}"),
    };
    let r = send(staking(&op).unbond(U256::from(1)))
        .await
        .expect_err("operator unbond");
    assert_eq!(refused(r), "ProviderNotRegistered");
    let r = send(staking(&op).withdrawUnbonded(op.sender().expect("op")))
        .await
        .expect_err("operator withdraw");
    assert_eq!(refused(r), "NothingToWithdraw");
    let m = Market::new(n.market, op.provider.clone());
    let r = send(m.withdraw(n.usdc, op.sender().expect("op")))
        .await
        .expect_err("operator withdraws earnings");
    assert_eq!(refused(r), "NothingToWithdrawMarket");

    // PD-06: stake locked by a running lease cannot be unbonded, even by the owner.
    let o = Client::connect(&n.url, Some(key(2)))
        .await
        .expect("connect");
    let r = send(staking(&o).unbond(U256::from(info.stake)))
        .await
        .expect_err("locked");
    assert_eq!(refused(r), "InsufficientFreeStake");
    let after = staking(&n.tenant)
        .providerInfo(owner)
        .call()
        .await
        .expect("info");
    assert_eq!((after.stake, after.locked), (info.stake, info.locked));
    assert_eq!(
        n.count_logs(
            n.staking,
            Staking::Unbonded::SIGNATURE_HASH,
            B256::left_padding_from(owner.as_slice())
        )
        .await,
        0,
        "the node never unbonds"
    );
    let _ = id;
    n.stop(node, 1);
}

/// An anvil this test started itself (on a given port, from a saved state); killed when dropped.
struct OwnAnvil(Child);

impl Drop for OwnAnvil {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn off_12_anvil_stopped_and_restarted_mid_job_with_its_state_does_not_lose_the_job() {
    let mut n = net().await;
    let dir = n.path();
    n.config(&n.url, None);
    let mut node = n.start(1);
    n.wait_head(1).await;
    let id = n.order("sleep 3; echo done", 4).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;

    // Save the chain (anvil_dumpState: gzipped JSON, as hex) and stop anvil mid-job.
    let dump: String = n
        .tenant
        .provider
        .raw_request("anvil_dumpState".into(), ())
        .await
        .expect("dump");
    let gz = alloy::hex::decode(dump.trim_start_matches("0x")).expect("hex");
    std::fs::write(dir.join("state.json.gz"), gz).expect("write");
    let unzip = Command::new("gzip")
        .args(["-df", "state.json.gz"])
        .current_dir(&dir)
        .status()
        .expect("gzip runs");
    assert!(unzip.success());
    let port = n.anvil.as_ref().expect("anvil").port();
    n.anvil.take().expect("anvil").stop();

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
    let restarted = OwnAnvil(
        Command::new(anvil::find_anvil().expect("anvil"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--hardfork", "cancun", "--load-state", "state.json"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("anvil restarts"),
    );
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
    drop(restarted);
}

#[tokio::test]
async fn off_21_deadlines_come_from_chain_time_a_day_ahead_of_the_local_clock() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The chain runs a day ahead of this machine's clock (a skewed local clock, seen from the
    // node). A 30 s lease for a job that would run two minutes: the node must stop it by the
    // chain's deadline and post a failure report in time (the contract refuses a late result).
    anvil::warp(&n.tenant.provider, 86_400).await.expect("warp");
    let id = n.order_for("sleep 120", 5, 30).await;
    n.result(id, 1, 60).await;
    let auth = fetch::result_auth(&key(1), id).expect("sign");
    let out = fetch::Fetcher::devnet()
        .get(
            &format!("http://127.0.0.1:{}/results/{id}", n.port),
            Some(&auth),
        )
        .await
        .expect("the tenant reads it");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("a failure report");
    assert_eq!(report["ok"], serde_json::json!(false), "{report}");
    assert_eq!(
        n.count_logs(n.market, Market::LeaseFaulted::SIGNATURE_HASH, id)
            .await,
        0
    );
    n.stop(node, 1);
}

#[tokio::test]
async fn pd_05_pd_08_earnings_above_the_threshold_are_reported_and_only_the_owner_key_withdraws_them()
 {
    let n = net().await;
    n.config(&n.url, None);
    let path = n.path().join("provider.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[earnings]\nwithdraw_above = \"0.000001\"\n");
    std::fs::write(&path, text).expect("config");
    let node = n.start(1);
    n.wait_head(1).await;
    let id = n.order("sleep 2; echo done", 6).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // A minute of chain time for the lease to earn something.
    anvil::warp(&n.tenant.provider, 60).await.expect("warp");
    n.result(id, 1, 40).await;
    // The tenant accepts the result by closing: the provider's share is credited to its owner.
    send(Market::new(n.market, &n.tenant.provider).close(id))
        .await
        .expect("close");
    let owner = key(2).address();
    let lens = MarketLens::new(n.lens, n.tenant.provider.clone());
    let credit = lens.creditOf(n.usdc, owner).call().await.expect("credit");
    assert!(credit > U256::from(1), "earned {credit}");
    eventually(
        "the node to report the earnings",
        30,
        async || n.log(1).contains("earnings above earnings.withdraw_above"),
        || n.log(1),
    )
    .await;
    n.wait_metric(
        &format!(
            "gridlease_provider_withdrawable{{token=\"{}\"}} {credit}",
            n.usdc
        ),
        1,
    )
    .await;

    // PD-08: the operator key the node holds cannot take them; the owner key can.
    let op = Client::connect(&n.url, Some(key(3)))
        .await
        .expect("connect");
    let e = send(Market::new(n.market, op.provider.clone()).withdraw(n.usdc, key(3).address()))
        .await
        .expect_err("the operator has nothing to withdraw");
    assert!(
        matches!(&e, ChainError::Revert(r) if r.name == "NothingToWithdrawMarket"),
        "{e}"
    );
    let o = Client::connect(&n.url, Some(key(2)))
        .await
        .expect("connect");
    send(Market::new(n.market, o.provider.clone()).withdraw(n.usdc, owner))
        .await
        .expect("the owner withdraws");
    assert_eq!(
        lens.creditOf(n.usdc, owner).call().await.expect("credit"),
        U256::ZERO
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
        let auth = fetch::result_auth(&key(1), id).expect("signs");
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
    assert!(
        n.log(1).contains("the order was reorged away"),
        "{}",
        n.log(1)
    );
    n.stop(node, 1);
}

#[tokio::test]
async fn pd_01_pd_07_an_order_skipped_while_the_gpu_was_busy_is_still_bid_on_after_a_restart() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The node's one GPU is held by a job that runs until the test lets it finish.
    let go = n.path().join("go");
    let busy = n
        .order(
            &format!(
                "while [ ! -e {} ]; do sleep 0.1; done; echo done",
                go.display()
            ),
            31,
        )
        .await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // An auction for the same GPU: skipped for now, kept for another look.
    let later = n.order_with("echo later", 32, 600, false).await;
    n.wait_metric(
        "gridlease_provider_orders_skipped_total{reason=\"gpus_busy\"} 1",
        1,
    )
    .await;
    // Restart: the order cursor is past the auction now, only the store remembers it.
    n.stop(node, 1);
    std::fs::write(&go, b"").expect("let the job finish");
    let node = n.start(2);
    n.result(busy, 2, 60).await;
    n.wait_bid(later, 2, 60).await;
    n.stop(node, 2);
}

#[tokio::test]
async fn pd_02_a_lease_is_acknowledged_at_the_head_within_its_start_window_and_runs_once_deep_enough()
 {
    let n = net().await;
    n.config(&n.url, None);
    let path = n.path().join("provider.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    // Thirty blocks before a lease's job may start (no heartbeats: only this test mines).
    let text = text
        .replace("confirmations = 0", "confirmations = 30")
        .replace("[jobs]\n", "[jobs]\nservices = false\n");
    std::fs::write(&path, text).expect("config");
    let node = n.start(1);
    n.wait_head(1).await;
    // An auction the tenant awards: the lease starts unacknowledged.
    let id = n.order_with("echo done", 41, 600, false).await;
    n.wait_bid(id, 1, 30).await;
    n.warp(61).await;
    send(Market::new(n.market, &n.tenant.provider).award(id, vec![]))
        .await
        .expect("award");
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
    eventually(
        "the node to log it",
        30,
        async || n.log(1).contains("acknowledged at the head"),
        || n.log(1),
    )
    .await;
    // Thirty blocks later the job runs and its result is posted, with no second acknowledgement.
    raw(&n.tenant, "anvil_mine", serde_json::json!(["0x1e"])).await;
    n.result(id, 1, 60).await;
    assert_eq!(acks().await, 1, "acknowledged once");
    n.stop(node, 1);
}
