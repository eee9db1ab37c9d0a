//! The keeper's journal across a restart (OFF-14): what it left pending is followed to its end,
//! and the work it carried is done.

use alloy::{
    eips::Encodable2718,
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use gridlease_deploy::anvil::{self, ANVIL_KEYS};
use gridlease_keeper::store::{SentTx, Store};
use gridlease_workload::merkle::Commitment;

use crate::net::*;

/// OFF-14: a transaction journaled before a restart that the node no longer knows ends in the
/// ledger once the keeper has looked at it: "replaced" when another transaction took its nonce,
/// "dropped" when its nonce is still free. `status` says what the node knows of each meanwhile.
/// Booked, the dropped one's work (a lease's close) is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_14_a_journaled_transaction_the_node_no_longer_knows_is_booked_not_left_pending() {
    let net = net().await;
    let dir = net.dir.path();
    let (cfg, port) = config(&net, 1, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("a first poll", || async {
        metric(port, "gridlease_keeper_polls_total").await > 0
    })
    .await;
    stop(keeper);

    // A lease due to be closed as completed: the result posted, its challenge window over.
    let lease = net.lease(&container(), true, 90).await;
    net.warp(600).await;
    let data = container_result();
    let url = net.serve("done", data.clone());
    net.post(lease, Commitment::of(&data), url).await;
    let hold_end = net.job(lease).await.end.to::<u64>();
    anvil::warp_to(&net.tenant.provider, hold_end + 1)
        .await
        .expect("warp");

    // Two transactions of the keeper's key, signed as the keeper signs them and journaled, never
    // broadcast (the second, the close of that lease); nonce 0 is then taken by another
    // transaction of the same key.
    let me = addr(6);
    let signer: PrivateKeySigner = ANVIL_KEYS[6].parse().expect("key");
    let wallet = EthereumWallet::from(signer.clone());
    let chain_id = net.gov.chain_id;
    let signed = |nonce: u64, value: u64| {
        let wallet = wallet.clone();
        async move {
            let env = TransactionRequest::default()
                .with_from(me)
                .with_to(me)
                .with_value(U256::from(value))
                .with_chain_id(chain_id)
                .with_nonce(nonce)
                .with_gas_limit(21_000)
                .with_max_fee_per_gas(10_000_000_000)
                .with_max_priority_fee_per_gas(1_000_000_000)
                .build(&wallet)
                .await
                .expect("sign");
            (*env.tx_hash(), env.encoded_2718().to_vec())
        }
    };
    let db = dir.join("keeper-1").join("keeper.db");
    let (replaced, dropped) = {
        let store = Store::open(&db).expect("the keeper's store");
        let mut hashes = Vec::new();
        for nonce in [0, 1] {
            let (hash, raw) = signed(nonce, 1).await;
            store
                .journal(&SentTx {
                    hash,
                    nonce,
                    raw,
                    action: "close".into(),
                    ids: vec![if nonce == 0 {
                        B256::repeat_byte(1)
                    } else {
                        lease
                    }],
                })
                .expect("journal");
            hashes.push(hash);
        }
        (hashes[0], hashes[1])
    };
    let (_, other) = signed(0, 2).await;
    let taken = net
        .gov
        .provider
        .send_raw_transaction(&other)
        .await
        .expect("broadcast")
        .get_receipt()
        .await
        .expect("mined");
    assert!(taken.status());

    let status = || keeper_status(dir, &cfg);
    let before = status();
    assert!(before.contains("pending    2 transaction(s)"), "{before}");
    for (hash, says) in [
        (replaced, "its nonce was taken by another transaction"),
        (dropped, "the node does not know it and its nonce is free"),
    ] {
        let line = before
            .lines()
            .find(|l| l.contains(&hash.to_string()))
            .unwrap_or_else(|| panic!("{hash} is not listed:\n{before}"));
        assert!(line.contains(says), "{line}");
    }

    // The restarted keeper follows both from its journal and books them.
    let keeper = start_keeper(dir, &cfg, 6, 2);
    net.until("both booked", || async {
        status().contains("pending    0 transaction(s)")
    })
    .await;
    // The work of the dropped one is free again: the lease is closed.
    net.until("the lease closed", || async {
        net.status(lease).await == CLOSED
    })
    .await;
    stop(keeper);
    let after = status();
    for end in ["replaced", "dropped"] {
        let booked = after.lines().any(|l| {
            let words: Vec<_> = l.split_whitespace().collect();
            words.starts_with(&["sent", "1", "close", end])
        });
        assert!(booked, "status lacks a close booked {end}:\n{after}");
    }
    let log = logs_of(dir);
    assert!(log.contains("booked as dropped"), "{log}");
}
