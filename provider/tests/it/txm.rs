//! The shared transaction manager (`gridlease_daemon::txm`, used by the provider node and the
//! keeper) against a real anvil: the OFF cases of SECURITY.md that concern sending.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::{
    primitives::{B256, U256, aliases::U96},
    providers::Provider,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use gridlease_bindings::{Market, MockStablecoin};
use gridlease_chain::{ChainError, Client};
use gridlease_daemon::txm::{Outcome, Signed, TxManager, TxPolicy};
use gridlease_deploy::{anvil::ANVIL_KEYS, devnet};

async fn setup(
    policy: TxPolicy,
) -> (
    gridlease_deploy::anvil::Anvil,
    TxManager,
    Client,
    alloy::primitives::Address,
    alloy::primitives::Address,
) {
    let (anvil, _gov, d) = devnet::market(0, None).await.expect("market");
    let client = Client::connect(&anvil.url(), None).await.expect("connect");
    let key: PrivateKeySigner = ANVIL_KEYS[5].parse().expect("key");
    let txm = TxManager::new(client.clone(), key, policy);
    let usdc = d.token("USDC").expect("usdc").address;
    let market = d.address("Market").expect("market");
    (anvil, txm, client, usdc, market)
}

fn approve(spender: alloy::primitives::Address, v: u64) -> alloy::primitives::Bytes {
    MockStablecoin::approveCall {
        spender,
        value: U256::from(v),
    }
    .abi_encode()
    .into()
}

async fn raw(c: &Client, method: &'static str, params: serde_json::Value) -> serde_json::Value {
    c.provider
        .raw_request(method.into(), params)
        .await
        .expect("anvil call")
}

#[tokio::test]
async fn off_05_concurrent_sends_from_one_key_get_consecutive_nonces() {
    let (_anvil, txm, client, usdc, market) = setup(TxPolicy::default()).await;
    let txm = Arc::new(txm);
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let t = txm.clone();
        tasks.push(tokio::spawn(async move {
            t.send(usdc, approve(market, i), |_| Ok(())).await
        }));
    }
    let mut nonces = Vec::new();
    for t in tasks {
        nonces.push(t.await.expect("task").expect("sent").nonce);
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (0..6).collect::<Vec<_>>());
    // (anvil mines a block per transaction, but after answering the send: poll.)
    let t0 = std::time::Instant::now();
    loop {
        let count = client
            .provider
            .get_transaction_count(txm.from())
            .await
            .expect("count");
        if count == 6 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "every one of them mined: {count} of 6"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn off_19_a_call_that_would_revert_is_decoded_and_never_sent() {
    let (_anvil, txm, client, _usdc, market) = setup(TxPolicy::default()).await;
    let bid = Market::bidCall {
        orderId: B256::repeat_byte(1),
        price: U96::from(1u64),
    };
    let journaled = Mutex::new(0);
    let e = txm
        .send(market, bid.abi_encode().into(), |_| {
            *journaled.lock().expect("lock") += 1;
            Ok(())
        })
        .await
        .expect_err("reverts");
    assert!(
        matches!(&e, ChainError::Revert(r) if r.name == "NotAnOperator" || r.name == "OrderNotOpen"),
        "{e}"
    );
    assert_eq!(*journaled.lock().expect("lock"), 0, "nothing journaled");
    let count = client
        .provider
        .get_transaction_count(txm.from())
        .await
        .expect("count");
    assert_eq!(count, 0, "nothing sent, no nonce used");
}

#[tokio::test]
async fn off_14_a_journal_failure_sends_nothing_and_keeps_the_nonce() {
    let (_anvil, txm, _client, usdc, market) = setup(TxPolicy::default()).await;
    let e = txm
        .send(usdc, approve(market, 1), |_| Err("disk full".into()))
        .await
        .expect_err("not sent");
    assert!(e.to_string().contains("disk full"), "{e}");
    let next = txm
        .send(usdc, approve(market, 2), |_| Ok(()))
        .await
        .expect("sent");
    assert_eq!(next.nonce, 0, "the unsent transaction left no gap");
}

/// Automining off, and one transaction sent but not mined, under `stuck_after`.
async fn unmined(
    stuck_after: Duration,
) -> (gridlease_deploy::anvil::Anvil, TxManager, Client, Signed) {
    let policy = TxPolicy {
        stuck_after,
        poll: Duration::from_millis(50),
        ..TxPolicy::default()
    };
    let (anvil, txm, client, usdc, market) = setup(policy).await;
    raw(&client, "evm_setAutomine", serde_json::json!([false])).await;
    let sent = txm
        .send(usdc, approve(market, 7), |_| Ok(()))
        .await
        .expect("sent");
    (anvil, txm, client, sent)
}

/// A transaction watch running in a task.
type Watch = tokio::task::JoinHandle<Result<Outcome, ChainError>>;

/// Watch `sent` to its receipt (30 s at most) in a task, journaling every replacement it signs.
fn watch_journaled(txm: Arc<TxManager>, sent: &Signed) -> (Watch, Arc<Mutex<Vec<Signed>>>) {
    let journal: Arc<Mutex<Vec<Signed>>> = Arc::default();
    let j = journal.clone();
    let first = sent.clone();
    let watch = tokio::spawn(async move {
        txm.confirm(first, Duration::from_secs(30), move |s| {
            j.lock().expect("lock").push(s.clone());
            Ok(())
        })
        .await
    });
    (watch, journal)
}

/// Wait (up to 20 s) until the node's pool holds one of `hashes`.
async fn pooled(client: &Client, hashes: &[B256]) {
    let t0 = std::time::Instant::now();
    loop {
        for h in hashes {
            if client
                .provider
                .get_transaction_by_hash(*h)
                .await
                .expect("rpc")
                .is_some()
            {
                return;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "none of {hashes:?} reached the node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (up to 20 s) until a replacement has been journaled and one of them has reached the node.
async fn replaced(client: &Client, journal: &Mutex<Vec<Signed>>) {
    let t0 = std::time::Instant::now();
    let hashes = loop {
        let hashes: Vec<B256> = journal
            .lock()
            .expect("lock")
            .iter()
            .map(|s| s.hash)
            .collect();
        if !hashes.is_empty() {
            break hashes;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no replacement was signed and journaled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pooled(client, &hashes).await;
}

#[tokio::test]
async fn off_09_a_dropped_transaction_is_rebroadcast_as_the_same_bytes() {
    // Stuck only after 10 s: the dropped transaction is looked for every 2 s and must come back
    // as itself well before any replacement could.
    let (_anvil, txm, client, sent) = unmined(Duration::from_secs(10)).await;
    raw(
        &client,
        "anvil_dropTransaction",
        serde_json::json!([sent.hash]),
    )
    .await;
    let pending = client
        .provider
        .get_transaction_by_hash(sent.hash)
        .await
        .expect("rpc");
    assert!(pending.is_none(), "anvil dropped it");
    let txm = Arc::new(txm);
    let t = txm.clone();
    let first = sent.clone();
    let watch =
        tokio::spawn(async move { t.confirm(first, Duration::from_secs(30), |_| Ok(())).await });
    // Mine once the manager has put it back.
    pooled(&client, &[sent.hash]).await;
    raw(&client, "evm_mine", serde_json::json!([])).await;
    let Outcome::Mined(r) = watch.await.expect("task").expect("confirmed") else {
        panic!("not mined");
    };
    assert_eq!(
        r.transaction_hash, sent.hash,
        "the same signed bytes, not a new transaction"
    );
}

#[tokio::test]
async fn off_08_a_stuck_transaction_is_replaced_with_both_fees_bumped_at_its_nonce() {
    let (_anvil, txm, client, sent) = unmined(Duration::from_millis(300)).await;
    let (watch, journal) = watch_journaled(Arc::new(txm), &sent);
    // Mine once a replacement (journaled before its broadcast) has reached the node.
    replaced(&client, &journal).await;
    raw(&client, "evm_mine", serde_json::json!([])).await;
    let Outcome::Mined(r) = watch.await.expect("task").expect("confirmed") else {
        panic!("not mined");
    };
    let replaced = journal.lock().expect("lock").clone();
    assert!(
        !replaced.is_empty(),
        "a replacement was journaled before broadcast"
    );
    let first_bump = &replaced[0];
    assert_eq!(first_bump.nonce, sent.nonce, "same nonce");
    assert!(
        first_bump.max_fee * 100 >= sent.max_fee * 110,
        "max fee +10 % at least"
    );
    assert!(
        first_bump.priority_fee * 100 >= sent.priority_fee * 110,
        "priority fee +10 % at least"
    );
    assert!(
        replaced.iter().any(|s| s.hash == r.transaction_hash),
        "the mined transaction is a replacement"
    );
}

/// The replacements of `sent` (never mined) signed in a 3 s watch under `ceiling`.
async fn bumps(txm: &TxManager, sent: &Signed, ceiling: u128) -> Vec<Signed> {
    let journal = Mutex::new(Vec::<Signed>::new());
    let r = txm
        .confirm_within(sent.clone(), Duration::from_secs(3), ceiling, |s| {
            journal.lock().expect("lock").push(s.clone());
            Ok(())
        })
        .await;
    assert!(
        r.is_err(),
        "nothing is mined: the watch ends at its deadline"
    );
    journal.into_inner().expect("lock")
}

/// OFF-07: the fee ceiling is a multiple of the network's estimate, not of what the watched
/// transaction already pays. Watched again after its deadline (or after a restart, from the
/// journal's last replacement), a transaction bumped up to the ceiling stays under it; before,
/// each watch multiplied its own ceiling (5x the estimate, then 25x).
#[tokio::test]
async fn off_07_a_transaction_watched_again_is_not_bumped_past_the_fee_ceiling() {
    let (_anvil, txm, _client, sent) = unmined(Duration::from_millis(50)).await;
    let ceiling = sent.max_fee * u128::from(TxPolicy::default().max_fee_multiple);
    let mut last = sent.clone();
    for watch in 1..=2 {
        let bumped = bumps(&txm, &last, u128::MAX).await;
        if let Some(b) = bumped.last() {
            last = b.clone();
        }
        let top = bumped.iter().map(|b| b.max_fee).max().unwrap_or_default();
        assert!(
            top <= ceiling,
            "watch {watch}: a max fee of {top}, past the ceiling {ceiling}"
        );
    }
    assert!(
        last.max_fee * 10 >= ceiling * 9,
        "bumped up to the ceiling ({} of {ceiling})",
        last.max_fee
    );
}

/// KB-01: a watch given a ceiling (what the work is worth to the keeper) bumps up to it and no
/// further, under the manager's own ceiling of 5x the estimate.
#[tokio::test]
async fn kb_01_bumps_stop_at_the_ceiling_the_sender_gives() {
    let (_anvil, txm, _client, sent) = unmined(Duration::from_millis(50)).await;
    let ceiling = sent.max_fee * 2;
    let bumped = bumps(&txm, &sent, ceiling).await;
    let top = bumped.iter().map(|b| b.max_fee).max().unwrap_or_default();
    assert!(
        top <= ceiling,
        "a max fee of {top}, past the ceiling {ceiling}"
    );
    assert!(
        bumped.iter().all(|b| b.priority_fee <= ceiling),
        "{bumped:?}"
    );
    assert!(
        top * 10 >= ceiling * 9,
        "bumped up to it ({top} of {ceiling})"
    );
}

#[tokio::test]
async fn off_07_off_10_a_replacement_whose_answer_was_lost_is_still_recognised_when_mined() {
    use gridlease_testkit::proxy::{Fault, Proxy};
    let (anvil, _gov, d) = devnet::market(0, None).await.expect("market");
    let direct = Client::connect(&anvil.url(), None).await.expect("connect");
    raw(&direct, "evm_setAutomine", serde_json::json!([false])).await;
    // The manager talks to the node through the proxy.
    let proxy = Proxy::start(&anvil.url()).await.expect("proxy");
    let client = Client::connect(&proxy.url(), None).await.expect("connect");
    let key: PrivateKeySigner = ANVIL_KEYS[5].parse().expect("key");
    let policy = TxPolicy {
        stuck_after: Duration::from_millis(300),
        poll: Duration::from_millis(50),
        ..TxPolicy::default()
    };
    let txm = Arc::new(TxManager::new(client, key, policy));
    let usdc = d.token("USDC").expect("usdc").address;
    let market = d.address("Market").expect("market");
    let sent = txm
        .send(usdc, approve(market, 7), |_| Ok(()))
        .await
        .expect("sent");
    // From now on every broadcast reaches the node but its answer is lost.
    proxy.fail_method("eth_sendRawTransaction", Fault::LoseAnswer);
    let (watch, journal) = watch_journaled(txm.clone(), &sent);
    replaced(&direct, &journal).await;
    // Still stuck: the manager watches the replacement it cannot know arrived, and bumps again
    // from it (before, it watched the replaced original, which the node no longer had, and sent
    // that again, refused, for ever).
    let t0 = std::time::Instant::now();
    while journal.lock().expect("lock").len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no second replacement after one whose answer was lost"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The node holds a replacement (each replaced the one before at its nonce); mine it.
    raw(&direct, "evm_mine", serde_json::json!([])).await;
    let outcome = watch.await.expect("task").expect("confirmed");
    let Outcome::Mined(r) = outcome else {
        panic!("a mined replacement whose answer was lost must be seen as ours, not NonceTaken");
    };
    assert!(r.status());
    assert!(
        journal
            .lock()
            .expect("lock")
            .iter()
            .any(|s| s.hash == r.transaction_hash),
        "the mined transaction is one of our replacements"
    );
}
