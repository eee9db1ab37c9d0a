//! The OFF and PD cases of SECURITY.md that need a fault: reorgs (`anvil_reorg`,
//! `anvil_rollback`), lost and refused transactions, and what anvil cannot produce (429, 5xx,
//! hung calls, dropped connections, refused `eth_getLogs` ranges, a head going backwards, geth's
//! replacement rule) through the fault-injecting proxy of `gridlease_testkit::proxy`. Each test
//! carries the IDs it covers. The transaction manager and the log reader are tested directly;
//! what needs the daemon runs `gridlease-provider run` as a real process.

mod jobs;
mod log_ranges;
mod outages;
mod reorgs;
mod startup;
mod transactions;
mod withdrawals;

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::SolCall,
};
use gridlease_bindings::MockStablecoin;
use gridlease_chain::Client;
use gridlease_daemon::txm::{Outcome, Signed, TxManager};
use gridlease_deploy::{anvil::Anvil, devnet};

fn approve(spender: Address, v: u64) -> Bytes {
    MockStablecoin::approveCall {
        spender,
        value: U256::from(v),
    }
    .abi_encode()
    .into()
}

/// A market on anvil, a client on it, and the USDC and Market addresses.
async fn chain() -> (Anvil, Client, Address, Address) {
    let (anvil, _gov, d) = devnet::market(0, None).await.expect("market");
    let client = Client::connect(&anvil.url(), None).await.expect("connect");
    let usdc = d.token("USDC").expect("usdc").address;
    let market = d.address("Market").expect("market");
    (anvil, client, usdc, market)
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
