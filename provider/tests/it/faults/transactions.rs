//! The transaction manager against faults: transactions a reorg removed come back as the same
//! bytes (OFF-03, OFF-09), a nonce taken by another writer (OFF-06), geth's replacement rule and
//! refusals that are not fatal (OFF-07), and sends lost on the network (OFF-10), also before a
//! refusal (OFF-05).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256},
    providers::Provider,
};
use gridlease_chain::{Client, RPC_TIMEOUT};
use gridlease_daemon::txm::{Outcome, Signed, TxManager, TxPolicy};
use gridlease_testkit::proxy::{Fault, Proxy};

use super::{approve, chain, mined};
use crate::common::*;

const SEND_RAW: &str = "eth_sendRawTransaction";

fn fast() -> TxPolicy {
    TxPolicy {
        stuck_after: Duration::from_millis(300),
        poll: Duration::from_millis(50),
        ..TxPolicy::default()
    }
}

async fn nonce(c: &Client, who: Address) -> u64 {
    c.provider.get_transaction_count(who).await.expect("nonce")
}

/// A manager behind a proxy, and its first send, whose every broadcast the proxy dropped: handed
/// on (it may have arrived), though it never did. Also the anvil and the proxy (kept running),
/// the token and the market.
async fn one_send_lost() -> (
    gridlease_deploy::anvil::Anvil,
    Proxy,
    TxManager,
    Signed,
    Address,
    Address,
) {
    let (anvil, client, usdc, market) = chain().await;
    let proxy = Proxy::start(&anvil.url()).await.expect("proxy");
    let pc = Client::connect(&proxy.url(), None).await.expect("connect");
    let txm = TxManager::new(pc, key(5), fast());
    proxy.fail_next(
        SEND_RAW,
        [Fault::Drop, Fault::Drop, Fault::Drop, Fault::Drop],
    );
    let lost = txm
        .send(usdc, approve(market, 1), |_| Ok(()))
        .await
        .expect("handed on: it may have arrived");
    assert_eq!(nonce(&client, txm.from()).await, 0, "it never did");
    (anvil, proxy, txm, lost, usdc, market)
}

/// OFF-10: a send whose every broadcast was lost returns its transaction (it may have arrived);
/// once the caller knows it was dropped (no node knows it, its nonce is free), the next send
/// takes that nonce instead of queueing behind the gap, and is mined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_10_after_a_dropped_transaction_the_next_send_fills_its_nonce() {
    let (_anvil, _proxy, txm, lost, usdc, market) = one_send_lost().await;
    txm.forget_nonce();
    let next = txm
        .send(usdc, approve(market, 2), |_| Ok(()))
        .await
        .expect("sent");
    assert_eq!(next.nonce, lost.nonce, "the dropped one's nonce");
    assert_eq!(mined(&txm, next.clone()).await, next.hash);
}

/// OFF-05, OFF-10: a send whose broadcast was lost keeps its nonce (its bytes go out again while
/// it is watched); a later send the node refuses (no ether for gas) leaves its own nonce free, and
/// the send after it takes that one, not the chain's pending count, which leaves out the lost one
/// and would sign over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_05_off_10_after_a_refusal_the_next_send_does_not_sign_over_a_lost_one() {
    let (_anvil, proxy, txm, lost, usdc, market) = one_send_lost().await;
    proxy.fail_next(
        SEND_RAW,
        [Fault::RpcError {
            code: -32000,
            message: "insufficient funds for gas * price + value".into(),
        }],
    );
    let refused = txm.send(usdc, approve(market, 2), |_| Ok(())).await;
    assert!(refused.is_err(), "refused: {refused:?}");
    let next = txm
        .send(usdc, approve(market, 3), |_| Ok(()))
        .await
        .expect("sent");
    assert_eq!(next.nonce, lost.nonce + 1, "not over the lost one");
    // The lost one goes out again as itself while watched; then the next is mined after it.
    assert_eq!(mined(&txm, lost.clone()).await, lost.hash);
    assert_eq!(mined(&txm, next.clone()).await, next.hash);
}

/// KB-04: the nonce the manager would sign at next counts a send the node does not list (its
/// broadcast lost): a keeper's bonded challenge signs at it, not at the node's count, where it
/// would collide with the lost one. Forgotten (dropped for good), it is the chain's again.
#[tokio::test]
async fn kb_04_the_next_nonce_counts_a_send_the_node_does_not_list() {
    let (_anvil, _proxy, txm, lost, _usdc, _market) = one_send_lost().await;
    assert_eq!(lost.nonce, 0);
    assert_eq!(txm.next_nonce().await, Some(1), "after the lost one");
    txm.forget_nonce();
    assert_eq!(txm.next_nonce().await, None, "asked of the chain again");
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

/// OFF-06: a transaction of the key signed outside the manager (the keeper's bonded challenge)
/// and declared with `taken`: the next send signs after it at once, journaling no refused
/// transaction at its nonce (nor, with higher fees, replacing it).
#[tokio::test]
async fn off_06_a_nonce_taken_outside_the_manager_is_skipped_at_once() {
    let (_anvil, client, usdc, market) = chain().await;
    let mine = TxManager::new(client.clone(), key(5), TxPolicy::default());
    let outside = TxManager::new(client.clone(), key(5), TxPolicy::default());
    let first = mine
        .send(usdc, approve(market, 1), |_| Ok(()))
        .await
        .expect("sent");
    let bonded = outside
        .send(usdc, approve(market, 2), |_| Ok(()))
        .await
        .expect("outside");
    assert_eq!((first.nonce, bonded.nonce), (0, 1));
    mine.taken(bonded.nonce).await;
    let journaled = Mutex::new(Vec::new());
    let next = mine
        .send(usdc, approve(market, 3), |s| {
            journaled.lock().expect("lock").push(s.nonce);
            Ok(())
        })
        .await
        .expect("sent");
    assert_eq!(*journaled.lock().expect("lock"), vec![2], "signed once");
    assert_eq!(mined(&mine, next.clone()).await, next.hash);
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
    proxy.fail_next(SEND_RAW, [Fault::Status(429), Fault::Status(503)]);
    let second = txm
        .send(usdc, approve(market, 2), |_| Ok(()))
        .await
        .expect("sent");
    assert_eq!(proxy.calls(SEND_RAW), tries + 3);
    let hex = format!("{}", second.raw);
    for p in &proxy.params(SEND_RAW)[tries..] {
        assert_eq!(p[0].as_str(), Some(hex.as_str()), "always the same bytes");
    }
    assert_eq!(mined(&txm, second.clone()).await, second.hash);
    assert_eq!(nonce(&client, txm.from()).await, 2, "nothing re-signed");

    // A rate limit answered in JSON-RPC is no refusal either: retried the same way.
    let before = proxy.calls(SEND_RAW);
    let limit = |code: i64, message: &str| Fault::RpcError {
        code,
        message: message.into(),
    };
    proxy.fail_next(
        SEND_RAW,
        [
            limit(-32016, "over rate limit"),
            limit(-32005, "limit exceeded"),
        ],
    );
    let third = txm
        .send(usdc, approve(market, 3), |_| Ok(()))
        .await
        .expect("sent, not refused");
    assert_eq!(proxy.calls(SEND_RAW), before + 3);
    assert_eq!(mined(&txm, third.clone()).await, third.hash);
    assert_eq!(nonce(&client, txm.from()).await, 3, "nothing re-signed");

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
