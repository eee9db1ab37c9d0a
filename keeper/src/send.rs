//! Sending and booking: the journal callback every send goes through (OFF-14), bonded sends
//! (a challenge carries its bond as value, see [`crate::engine`]), watching a transaction to its
//! end, reading what it earned from its logs, and withdrawing earnings.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::{
    eips::Encodable2718,
    network::{NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::{TransactionReceipt, TransactionRequest},
    sol_types::SolCall,
};
use gridlease_bindings::{Market, MarketLens, Staking};
use gridlease_chain::{ChainError, classify_rpc};
use gridlease_daemon::{
    Backoff, lock,
    txm::{Outcome, Quote, Signed},
};
use tracing::{info, warn};

use crate::{
    shared::{Busy, Keeper},
    store::SentTx,
};

/// Simulate and price a call carrying `value` wei (the transaction manager's `quote` sends none).
pub(crate) async fn quote_value(
    k: &Keeper,
    to: Address,
    input: Bytes,
    value: U256,
) -> Result<Quote, ChainError> {
    let p = &k.client().provider;
    let gas = k
        .client()
        .estimate_gas(
            TransactionRequest::default()
                .with_from(k.address())
                .with_to(to)
                .with_input(input)
                .with_value(value),
        )
        .await?;
    let fees = p.estimate_eip1559_fees().await.map_err(classify_rpc)?;
    Ok(Quote {
        gas,
        max_fee: fees.max_fee_per_gas,
        priority_fee: fees.max_priority_fee_per_gas,
    })
}

/// Send a call carrying `value` wei (a challenge bond), journaled before broadcast like every
/// other, and wait until it is mined. Every other send of the keeper waits meanwhile (see the
/// module docs): the transaction manager's next nonce is then known to the chain.
pub(crate) async fn send_bonded(
    k: &Keeper,
    to: Address,
    input: Bytes,
    value: U256,
    q: &Quote,
    action: &str,
    ids: &[B256],
) -> Result<(B256, Result<Outcome, ChainError>), ChainError> {
    let _alone = k.send_gate.write().await;
    let p = &k.client().provider;
    let nonce = p
        .get_transaction_count(k.address())
        .pending()
        .await
        .map_err(classify_rpc)?;
    let env = TransactionRequest::default()
        .with_from(k.address())
        .with_to(to)
        .with_input(input)
        .with_value(value)
        .with_chain_id(k.client().chain_id)
        .with_nonce(nonce)
        .with_gas_limit(q.gas.saturating_mul(12) / 10)
        .with_max_fee_per_gas(q.max_fee)
        .with_max_priority_fee_per_gas(q.priority_fee)
        .build(&k.wallet)
        .await
        .map_err(|e| ChainError::User(format!("cannot sign the transaction: {e}")))?;
    let signed = Signed {
        hash: *env.tx_hash(),
        raw: env.encoded_2718().into(),
        nonce,
        max_fee: q.max_fee,
        priority_fee: q.priority_fee,
    };
    journal(k, action, ids)(&signed).map_err(|e| ChainError::User(format!("not sent: {e}")))?;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(60));
    for tries in 0.. {
        match k.tx.broadcast(&signed).await {
            Ok(()) => break,
            // Maybe it arrived: `confirm` rebroadcasts the same bytes.
            Err(ChainError::Network(_)) if tries >= 3 => break,
            Err(ChainError::Network(_)) => {
                tokio::time::sleep(backoff.delay()).await;
                backoff.failed();
            }
            Err(e) => {
                // Refused: nothing was sent.
                let _ = lock(&k.store).finish(signed.hash, "failed", 0, None, 0);
                return Err(e);
            }
        }
    }
    let first = signed.hash;
    let outcome =
        k.tx.confirm(signed, Duration::from_secs(300), journal(k, action, ids))
            .await;
    Ok((first, outcome))
}

/// The journal callback of the transaction manager: the signed transaction is in `sent` before
/// it is broadcast (OFF-14), so a restart watches it instead of sending the work again.
pub(crate) fn journal<'a>(
    k: &'a Keeper,
    action: &'a str,
    ids: &'a [B256],
) -> impl FnMut(&Signed) -> Result<(), String> + 'a {
    move |s: &Signed| {
        lock(&k.store)
            .journal(&SentTx {
                hash: s.hash,
                nonce: s.nonce,
                raw: s.raw.to_vec(),
                action: action.to_owned(),
                ids: ids.to_vec(),
            })
            .map_err(|e| e.to_string())
    }
}

/// Watch a sent transaction to its end and book it.
pub(crate) async fn watch(
    k: &Keeper,
    signed: Signed,
    action: &str,
    ids: &[B256],
    token: Option<Address>,
) -> Busy {
    let first = signed.hash;
    let outcome = if signed.max_fee == 0 {
        // From the journal after a restart: its fees are unknown, so only wait for it.
        wait_mined(k, signed.hash).await
    } else {
        k.tx.confirm(signed, Duration::from_secs(600), journal(k, action, ids))
            .await
    };
    book(k, outcome, first, action, token)
}

/// Book how a transaction (first sent as `first`) ended; returns how long its ids stay busy.
pub(crate) fn book(
    k: &Keeper,
    outcome: Result<Outcome, ChainError>,
    first: B256,
    action: &str,
    token: Option<Address>,
) -> Busy {
    match outcome {
        Ok(Outcome::Mined(r)) => {
            let earned = earnings(k, &r, token);
            let gas = u128::from(r.gas_used).saturating_mul(r.effective_gas_price);
            lock(&k.spent).push_back((Instant::now(), gas));
            for (t, e) in &earned {
                k.metrics.book(Some(*t), *e, 0);
            }
            k.metrics.book(None, 0, gas);
            let status = if r.status() { "mined" } else { "reverted" };
            if r.status() {
                k.metrics.done(action);
            } else {
                // Lost a race inside one block: the gas is spent, the work is someone else's.
                k.metrics.skip("lost-race");
            }
            let (earned, token) = earned.first().map_or((0, token), |(t, e)| (*e, Some(*t)));
            info!(action, tx = %r.transaction_hash, status, earned = %earned, gas_wei = %gas, "mined");
            let store = lock(&k.store);
            // Every other bump of this nonce (the first included, when a bump was mined) was
            // replaced by the one mined.
            let booked = store
                .finish(r.transaction_hash, status, earned, token, gas)
                .and(store.supersede(r.transaction_hash, true).map(drop));
            if let Err(e) = booked {
                warn!(error = %e, "cannot book a transaction");
            }
            Busy::UntilBlock(r.block_number.unwrap_or(0))
        }
        Ok(Outcome::NonceTaken) => {
            let _ = lock(&k.store).supersede(first, false);
            Busy::Until(Instant::now() + Duration::from_secs(5))
        }
        Err(e) => {
            warn!(action, tx = %first, error = %e, "not confirmed; still journaled");
            Busy::Until(Instant::now() + Duration::from_secs(60))
        }
    }
}

async fn wait_mined(k: &Keeper, hash: B256) -> Result<Outcome, ChainError> {
    for _ in 0..600 {
        if let Some(r) = k.tx.receipt(hash).await? {
            return Ok(Outcome::Mined(Box::new(r)));
        }
        let known = k
            .client()
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(classify_rpc)?
            .is_some();
        if !known {
            return Ok(Outcome::NonceTaken);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(ChainError::Network(format!("{hash} not mined")))
}

/// What a mined transaction paid this keeper, per token, read from its logs: keeper fees of
/// settlements and closes (payment token), a fault's fee out of the tenant's refund (credited
/// in the payment token), the reporter's cut of a post-close slash (stake token).
fn earnings(k: &Keeper, r: &TransactionReceipt, token: Option<Address>) -> Vec<(Address, u128)> {
    let me = k.address();
    let mut out: Vec<(Address, u128)> = Vec::new();
    let mut add = |t: Address, e: u128| {
        if e == 0 {
            return;
        }
        match out.iter_mut().find(|(x, _)| *x == t) {
            Some((_, v)) => *v += e,
            None => out.push((t, e)),
        }
    };
    let v = lock(&k.view);
    for log in r.inner.logs() {
        let from_market = log.address() == k.market;
        if from_market && let Ok(e) = log.log_decode::<Market::LeaseSettled>() {
            let s = e.inner.data;
            // A settled lease may already be gone from the view (closed in the same block).
            if let Some(l) = v.leases.get(&s.leaseId) {
                add(
                    l.token,
                    s.amount.to::<u128>() * u128::from(l.keeper_fee_bps) / 10_000,
                );
            }
        } else if from_market && let Ok(e) = log.log_decode::<Market::LeaseClosed>() {
            let c = e.inner.data;
            let t = v.leases.get(&c.leaseId).map(|l| l.token).or(token);
            if let Some(t) = t {
                add(t, c.keeperFee.to::<u128>());
            }
        } else if from_market
            && let Ok(e) = log.log_decode::<Market::Credited>()
            && e.inner.data.account == me
        {
            add(e.inner.data.token, e.inner.data.amount.saturating_to());
        } else if log.address() == k.staking
            && let Ok(e) = log.log_decode::<Staking::Slashed>()
            && e.inner.data.reporter == me
        {
            add(
                k.stake_token.0,
                e.inner.data.reporterReward.saturating_to::<u128>(),
            );
        }
    }
    out
}

/// Withdraw fees and rewards above the threshold, at most once a minute.
pub(crate) async fn withdraw(k: &Arc<Keeper>) {
    {
        let mut last = lock(&k.last_withdraw);
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(Instant::now());
    }
    let to = k.cfg.payout.unwrap_or(k.address());
    let p = &k.client().provider;
    let mut calls: Vec<(Address, Bytes)> = Vec::new();
    for token in k.decimals.keys() {
        let Ok(credit) = MarketLens::new(k.lens, p)
            .creditOf(*token, k.address())
            .call()
            .await
        else {
            return;
        };
        if credit > U256::from(k.units(&k.cfg.withdraw_above, *token)) {
            calls.push((
                k.market,
                Market::withdrawCall { token: *token, to }
                    .abi_encode()
                    .into(),
            ));
        }
    }
    if let Ok(credit) = Staking::new(k.staking, p)
        .creditOf(k.address())
        .call()
        .await
        && credit > U256::from(k.units(&k.cfg.withdraw_above, k.stake_token.0))
    {
        calls.push((
            k.staking,
            Staking::withdrawCreditCall { to }.abi_encode().into(),
        ));
    }
    for (target, input) in calls {
        let sent = {
            let _shared = k.send_gate.read().await;
            k.tx.send(target, input, journal(k, "withdraw", &[])).await
        };
        match sent {
            Ok(s) => {
                info!(tx = %s.hash, to = %to, "withdrawing earnings");
                let k2 = k.clone();
                k.tracker.spawn(async move {
                    watch(&k2, s, "withdraw", &[], None).await;
                });
            }
            Err(e) => warn!(error = %e, "withdrawal not sent"),
        }
    }
}
