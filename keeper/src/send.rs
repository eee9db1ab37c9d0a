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
use gridlease_chain::{ChainError, Client, classify_rpc};
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
/// other, and wait until it is mined (followed by [`until_end`] when the transaction manager gives
/// up). Every other send of the keeper waits meanwhile, until the manager gives up (see the module
/// docs): the transaction manager's next nonce is then known to the chain.
pub(crate) async fn send_bonded(
    k: &Keeper,
    to: Address,
    input: Bytes,
    value: U256,
    q: &Quote,
    action: &str,
    ids: &[B256],
) -> Result<(B256, Followed), ChainError> {
    let alone = k.send_gate.write().await;
    let p = &k.client().provider;
    // After the transaction manager's own sends, including those the public node does not list
    // (sent only to the private endpoint, or whose broadcast answer was lost): signed at the
    // node's count alone, the challenge would collide with one of them (KB-04).
    let listed = p
        .get_transaction_count(k.address())
        .pending()
        .await
        .map_err(classify_rpc)?;
    let nonce = listed.max(k.tx.next_nonce().await.unwrap_or(0));
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
    let (first, nonce) = (signed.hash, signed.nonce);
    // The manager's other sends sign after it: one at its nonce could replace the challenge.
    k.tx.taken(nonce).await;
    let confirmed =
        k.tx.confirm_within(
            signed,
            Duration::from_secs(300),
            q.max_fee,
            journal(k, action, ids),
        )
        .await;
    drop(alone);
    Ok((first, until_end(k, first, nonce, confirmed, action).await))
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

/// Watch a sent transaction to its end and book it. The transaction manager bumps its fees for
/// up to 10 minutes; after that, or for a transaction from the journal (its fees unknown), the
/// keeper keeps [`follow`]ing it without bumps until it ends or the keeper stops, so the ledger
/// never keeps a transaction "pending" that is mined, replaced or gone.
pub(crate) async fn watch(
    k: &Keeper,
    signed: Signed,
    ceiling: u128,
    action: &str,
    ids: &[B256],
    token: Option<Address>,
) -> Busy {
    let (first, nonce) = (signed.hash, signed.nonce);
    let end = if signed.max_fee == 0 {
        follow(k, first, nonce).await
    } else {
        let confirmed =
            k.tx.confirm_within(
                signed,
                Duration::from_secs(600),
                ceiling,
                journal(k, action, ids),
            )
            .await;
        until_end(k, first, nonce, confirmed, action).await
    };
    book(k, end, first, action, token)
}

/// The end of a transaction the transaction manager `confirmed`, or gave up confirming: then it
/// is [`follow`]ed.
pub(crate) async fn until_end(
    k: &Keeper,
    first: B256,
    nonce: u64,
    confirmed: Result<Outcome, ChainError>,
    action: &str,
) -> Followed {
    match confirmed {
        Ok(o) => Followed::Chain(Ok(o)),
        Err(e) => {
            info!(action, tx = %first, reason = %e, "following the transaction without fee bumps");
            follow(k, first, nonce).await
        }
    }
}

/// How watching a transaction ended.
pub(crate) enum Followed {
    /// The transaction manager's answer: mined, or the nonce taken by another transaction.
    Chain(Result<Outcome, ChainError>),
    /// Neither it nor any fee bump of it is known to the node, and its nonce is still free.
    Dropped,
}

/// What the node says of the transactions journaled at one nonce (see [`look`]).
#[derive(Debug)]
pub enum Look {
    /// One of them is mined.
    Mined(Box<TransactionReceipt>),
    /// The nonce is used, by a transaction not among them.
    Taken,
    /// Not mined; the node knows at least one of them.
    Known,
    /// Not mined, the nonce is free and the node knows none of them.
    Gone,
}

impl Look {
    /// The state in words, for `gridlease-keeper status`.
    pub fn describe(&self) -> String {
        match self {
            Look::Mined(r) => format!(
                "mined in block {}; booked at the keeper's next look",
                r.block_number.unwrap_or(0)
            ),
            Look::Taken => {
                "its nonce was taken by another transaction; booked as replaced at the keeper's \
                 next look"
                    .into()
            }
            Look::Known => "waiting in the node's pool".into(),
            Look::Gone => {
                "the node does not know it and its nonce is free; booked as dropped at the \
                 keeper's next look, which looks at its work again"
                    .into()
            }
        }
    }
}

/// Ask the node about `hashes`, all signed by `from` at `nonce`.
pub async fn look(
    client: &Client,
    from: Address,
    nonce: u64,
    hashes: &[B256],
) -> Result<Look, ChainError> {
    let p = &client.provider;
    for h in hashes {
        if let Some(r) = p.get_transaction_receipt(*h).await.map_err(classify_rpc)? {
            return Ok(Look::Mined(Box::new(r)));
        }
    }
    // Asked after the receipts: a transaction mined in between shows as `Taken` once, and as
    // `Mined` on the next look.
    let used = p
        .get_transaction_count(from)
        .latest()
        .await
        .map_err(classify_rpc)?;
    if used > nonce {
        return Ok(Look::Taken);
    }
    for h in hashes {
        // A mined transaction is known too, so one mined since the receipts were read is not
        // taken for gone.
        if p.get_transaction_by_hash(*h)
            .await
            .map_err(classify_rpc)?
            .is_some()
        {
            return Ok(Look::Known);
        }
    }
    Ok(Look::Gone)
}

/// Follow the transactions journaled at `nonce` (the first sent as `first`) without bumping
/// them, until one is mined, the nonce is taken or the node knows none of them while the nonce
/// stays free, each seen on [`LOOKS`] looks in a row; or until the keeper stops, which leaves them
/// in the journal for the next start.
async fn follow(k: &Keeper, first: B256, nonce: u64) -> Followed {
    let mut last: Option<(bool, u32)> = None;
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        if k.stop.is_cancelled() {
            return Followed::Chain(Err(ChainError::Network(
                "the keeper is stopping; the next start watches it again".into(),
            )));
        }
        let hashes = match lock(&k.store).pending_at(nonce) {
            Ok(h) if h.is_empty() => vec![first],
            Ok(h) => h,
            Err(e) => return Followed::Chain(Err(ChainError::User(e.to_string()))),
        };
        let wait = match look(k.client(), k.address(), nonce, &hashes).await {
            Ok(Look::Mined(r)) => return Followed::Chain(Ok(Outcome::Mined(r))),
            Ok(Look::Known) => {
                last = None;
                backoff.succeeded();
                Duration::from_secs(1)
            }
            Ok(seen @ (Look::Taken | Look::Gone)) => {
                let taken = matches!(seen, Look::Taken);
                let n = match last {
                    Some((t, n)) if t == taken => n + 1,
                    _ => 1,
                };
                if n >= LOOKS {
                    return if taken {
                        Followed::Chain(Ok(Outcome::NonceTaken))
                    } else {
                        Followed::Dropped
                    };
                }
                last = Some((taken, n));
                Duration::from_secs(1)
            }
            Err(e) => {
                let wait = backoff.delay();
                backoff.failed();
                warn!(tx = %first, error = %e, "cannot look at a pending transaction; trying again");
                wait
            }
        };
        tokio::select! {
            () = k.stop.cancelled() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Looks in a row that must agree before a transaction is booked as replaced or dropped (the
/// transaction manager's nonce-taken count, as op's txmgr).
const LOOKS: u32 = 3;

/// Book how a transaction (first sent as `first`) ended; returns how long its ids stay busy.
pub(crate) fn book(
    k: &Keeper,
    end: Followed,
    first: B256,
    action: &str,
    token: Option<Address>,
) -> Busy {
    match end {
        Followed::Chain(Ok(Outcome::Mined(r))) => {
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
        Followed::Chain(Ok(Outcome::NonceTaken)) => {
            let _ = lock(&k.store).supersede(first, false);
            Busy::Until(Instant::now() + Duration::from_secs(5))
        }
        Followed::Dropped => {
            // Nothing of it is on chain: its work is looked at again (simulated first).
            warn!(action, tx = %first, "the node no longer knows the transaction; booked as dropped");
            let _ = lock(&k.store).drop_nonce(first);
            // Its nonce is free: the next transaction takes it rather than wait behind the gap.
            k.tx.forget_nonce();
            Busy::Until(Instant::now() + Duration::from_secs(5))
        }
        Followed::Chain(Err(e)) => {
            warn!(action, tx = %first, error = %e, "not confirmed; still journaled");
            Busy::Until(Instant::now() + Duration::from_secs(60))
        }
    }
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
    let tokens: Vec<Address> = lock(&k.decimals).keys().copied().collect();
    for token in &tokens {
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
                // Not urgent: bumped no higher than the gas price cap.
                let ceiling = k2.cfg.max_gas_price;
                k.tracker.spawn(async move {
                    watch(&k2, s, ceiling, "withdraw", &[], None).await;
                });
            }
            Err(e) => warn!(error = %e, "withdrawal not sent"),
        }
    }
}
