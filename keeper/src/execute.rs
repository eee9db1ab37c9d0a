//! The executor: one planned work item at a time, checked (a result's download and
//! verification), built into calldata, simulated (a revert that means someone else did it drops
//! it: KB-02), priced, decided (KB-01, KB-03) and sent.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolCall,
};
use anyhow::Result;
use gridlease_bindings::{Market, Results};
use gridlease_chain::{ChainError, classify, classify_rpc};
use gridlease_daemon::{
    lock,
    txm::{Outcome, Quote},
};
use gridlease_workload::merkle::result_leaves;
use tracing::{debug, info, warn};

use crate::{
    check::{self, Found},
    send::{Followed, book, journal, quote_value, send_bonded, watch},
    shared::{Busy, IGasPriceOracle, Keeper, OP_GAS_ORACLE},
    strategy::{Action, Decision, ModuleParams, Price, Work, decide, fee_ceiling},
    unix_now,
    view::Check,
};

/// Where and what to send for an action, and the wei it carries (None: nothing to send).
fn calldata(k: &Keeper, a: &Action) -> Option<(Address, Bytes, U256)> {
    let v = lock(&k.view);
    let module = |id: &B256| -> Option<ModuleParams> {
        let l = v.leases.get(id)?;
        lock(&k.modules).get(&l.module).copied()
    };
    let to_module =
        |id: &B256, input: Vec<u8>| Some((module(id)?.address, input.into(), U256::ZERO));
    match a {
        Action::Award(id) => Some((
            k.market,
            Market::awardCall { orderId: *id }.abi_encode().into(),
            U256::ZERO,
        )),
        Action::PlaceBid(id) => Some((
            k.market,
            Market::bidSignedCall {
                orderId: *id,
                b: lock(&k.signed).get(id)?.first()?.clone(),
            }
            .abi_encode()
            .into(),
            U256::ZERO,
        )),
        Action::Settle(ids) => Some((
            k.market,
            Market::settleCall {
                leaseIds: ids.clone(),
            }
            .abi_encode()
            .into(),
            U256::ZERO,
        )),
        Action::Close(id) => Some((
            k.market,
            Market::closeCall { leaseId: *id }.abi_encode().into(),
            U256::ZERO,
        )),
        Action::ProveNoShow(id) => {
            let l = v.leases.get(id)?;
            let call = Results::proveNoShowCall {
                leaseId: *id,
                tenant: l.tenant,
                terms: l.terms()?.into(),
            };
            to_module(id, call.abi_encode())
        }
        Action::ProveMissedDeadline(id) => to_module(
            id,
            Results::proveMissedDeadlineCall { leaseId: *id }.abi_encode(),
        ),
        Action::ReportStale(id) => {
            to_module(id, Results::reportStaleCall { leaseId: *id }.abi_encode())
        }
        Action::ProveStale(id) => to_module(
            id,
            Results::proveStaleHeartbeatCall { leaseId: *id }.abi_encode(),
        ),
        Action::ProveUnavailable(id, index) => to_module(
            id,
            Results::proveUnavailableCall {
                leaseId: *id,
                index: U256::from(*index),
            }
            .abi_encode(),
        ),
        Action::Challenge(id) => {
            let r = v.leases.get(id)?.result.clone()?;
            let m = module(id)?;
            // Any chunk: a withheld result cannot answer for any of them.
            let index = u64::from_be_bytes(alloy::primitives::FixedBytes::<8>::random().0)
                % result_leaves(r.size);
            let call = Results::challengeCall {
                leaseId: *id,
                root: r.root,
                size: r.size,
                index: U256::from(index),
            };
            Some((
                m.address,
                call.abi_encode().into(),
                U256::from(m.challenge_bond),
            ))
        }
        Action::Verify(_) => None,
    }
}

/// Record the outcome of checking a result.
fn set_checked(k: &Keeper, id: B256, c: Check) {
    let mut v = lock(&k.view);
    if let Some(l) = v.leases.get_mut(&id) {
        l.checked = Some(c);
        if let Err(e) = lock(&k.store).put_lease(&v, id) {
            warn!(error = %e, "cannot save a result check");
        }
    }
}

/// Challenge `index` of `id` is not open on chain: an ended lease forgets it (see
/// [`crate::view::View::challenge_gone`]).
fn challenge_gone(k: &Keeper, id: B256, index: u64) {
    let mut v = lock(&k.view);
    if let Some(changed) = v.challenge_gone(id, index)
        && let Err(e) = lock(&k.store).save(&v, &[changed])
    {
        warn!(error = %e, "cannot save a voided challenge");
    }
}

/// Download and check the posted result of `id`; the calldata of the proof if it is wrong. At
/// most [`crate::shared::CHECKS_AT_ONCE`] run at once: the poll dispatches no more.
async fn verify(k: &Keeper, id: B256) -> Result<Option<Bytes>> {
    let Some((tenant, terms, builtin, posted, before)) = ({
        let v = lock(&k.view);
        v.leases.get(&id).and_then(|l| {
            Some((
                l.tenant,
                l.terms()?,
                l.builtin(),
                l.result.clone()?,
                l.checked.clone(),
            ))
        })
    }) else {
        return Ok(None);
    };
    let found = check::check(
        &k.fetcher,
        id,
        tenant,
        terms,
        builtin,
        &posted,
        k.cfg.flags.verify,
    )
    .await;
    match found {
        Found::Proof(input) => {
            set_checked(k, id, Check::Wrong);
            Ok(Some(input))
        }
        Found::Check(Check::Missing { why, .. }) => {
            let now = unix_now();
            // A failure after the first counts only once the wait since the first is over,
            // measured from the time stored with it: a restart (which forgets when this lease
            // was last looked at) must not turn two failures a moment apart into a challenge
            // of a node that was only restarting, and a bond lost to it.
            let (tries, since) = match before {
                Some(Check::Missing { tries, since, .. }) => {
                    let since = if since == 0 { now } else { since };
                    let waited = now.saturating_sub(since) >= k.cfg.unavailable_after_s;
                    (if waited { tries + 1 } else { tries }, since)
                }
                _ => (1, now),
            };
            warn!(lease = %id, tries, why = %why, "the posted result cannot be downloaded");
            set_checked(k, id, Check::Missing { tries, why, since });
            Ok(None)
        }
        Found::Check(c) => {
            match &c {
                Check::Correct => info!(lease = %id, "built-in result verified"),
                Check::Available => info!(lease = %id, "result available as committed"),
                Check::Mismatch(why) => {
                    warn!(lease = %id, why = %why, "the served result is not the committed one");
                }
                Check::Private(why) => {
                    info!(lease = %id, why = %why, "result not public: not checked")
                }
                _ => {}
            }
            set_checked(k, id, c);
            Ok(None)
        }
    }
}

/// The L1 data fee of sending `input`, wei (0 off rollups).
async fn l1_fee(k: &Keeper, input: &Bytes) -> u128 {
    if !k.l1_oracle {
        return 0;
    }
    // The signed envelope adds about 110 bytes to the calldata.
    let mut data = input.to_vec();
    data.extend_from_slice(&[0xff; 110]);
    IGasPriceOracle::new(OP_GAS_ORACLE, &k.client().provider)
        .getL1Fee(data.into())
        .call()
        .await
        .map_or(0, |f| f.saturating_to())
}

/// Simulate, price, decide and send one work item. Returns how long its ids stay busy.
pub(crate) async fn execute(k: &Arc<Keeper>, w: &Work, head: u64) -> Result<Busy> {
    let later = |s: u64| Busy::Until(Instant::now() + Duration::from_secs(s));
    let unpaid = k.cfg.unpaid.contains(w.action.name());
    // Work that pays nothing is not even simulated, unless named unpaid (a check is free, and
    // what it finds is worth knowing early).
    let check = matches!(w.action, Action::Verify(_));
    if !check && w.reward == 0 && w.returns == 0 && !unpaid {
        k.metrics.skip("unprofitable");
        return Ok(later(
            k.cfg.poll_ms.saturating_mul(10).div_ceil(1_000).max(5),
        ));
    }
    // OFF-20: short of ether, work that pays nothing (what `profit.unpaid` names) is shed first:
    // the gas left goes to what earns it back.
    if unpaid && w.reward == 0 && w.returns == 0 && k.tx.low_balance() {
        k.metrics.skip("low-balance");
        return Ok(later(30));
    }
    let (to, input, value) = match &w.action {
        Action::Verify(id) => match verify(k, *id).await? {
            // Wrong, but its proof earns no fee yet: proven once it does (checked again then).
            Some(_) if w.reward == 0 && !unpaid => {
                k.metrics.skip("fee-not-due");
                info!(lease = %id, "wrong result: proven once the tenant's priority has passed");
                return Ok(Busy::UntilBlock(head));
            }
            Some(input) => match k.module_of(*id) {
                Some(m) => (m.address, input, U256::ZERO),
                None => return Ok(later(30)),
            },
            None => {
                let next = lock(&k.view).leases.get(id).map(|l| l.checked.clone());
                return Ok(match next {
                    // Looked at again after a while: a second failure makes it unavailable.
                    Some(Some(Check::Missing { .. })) => later(k.cfg.unavailable_after_s),
                    _ => Busy::UntilBlock(head),
                });
            }
        },
        a => match calldata(k, a) {
            Some(c) => c,
            None => return Ok(later(30)),
        },
    };
    // A settle that would change fewer leases than planned: someone else got there (KB-02).
    // Read on the pending block, as every simulation here: a rival's unmined work counts.
    if let Action::Settle(ids) = &w.action {
        let out = k
            .client()
            .provider
            .call(
                TransactionRequest::default()
                    .from(k.address())
                    .to(to)
                    .input(input.clone().into()),
            )
            .pending()
            .await
            .map_err(classify_rpc)?;
        let settled = Market::settleCall::abi_decode_returns(&out).unwrap_or(U256::ZERO);
        if settled < U256::from(ids.len()) {
            k.metrics.skip("already-done");
            debug!(planned = ids.len(), settled = %settled, "settle batch partly done by someone else: re-planning");
            return Ok(Busy::UntilBlock(head + 1));
        }
    }
    // A challenge when someone else's is already open: theirs decides the result (KB-02).
    if let Action::Challenge(id) = &w.action {
        let open = Results::new(to, &k.client().provider)
            .openChallenges(*id)
            .call()
            .block(BlockId::pending())
            .await
            .map_err(classify)?;
        if !open.is_zero() {
            k.metrics.skip("already-done");
            debug!(lease = %id, "a challenge of this result is already open: not bonding another");
            return Ok(Busy::UntilBlock(head + 1));
        }
    }
    let quote = if value.is_zero() {
        k.tx.quote(to, input.clone()).await
    } else {
        quote_value(k, to, input.clone(), value).await
    };
    let quote = match quote {
        Ok(q) => q,
        Err(ChainError::Revert(r)) if r.is_already_done() => {
            k.metrics.skip("already-done");
            if let Action::ProveUnavailable(id, index) = w.action {
                challenge_gone(k, id, index);
            }
            debug!(action = w.action.name(), revert = %r, "already done by someone else");
            return Ok(Busy::UntilBlock(head + 1));
        }
        Err(ChainError::Revert(r)) => {
            k.metrics.skip("reverts");
            info!(action = w.action.name(), revert = %r, "would revert: skipped");
            if let Action::PlaceBid(id) = &w.action {
                // Its provider cannot honour it now (stake, liveness) or a lower bid stands: the
                // next served bid is tried at once, while the window is open.
                if let Some(bids) = lock(&k.signed).get_mut(id)
                    && !bids.is_empty()
                {
                    bids.remove(0);
                }
                return Ok(Busy::UntilBlock(head));
            }
            return Ok(later(60));
        }
        Err(e) => return Err(e.into()),
    };
    let price = Price {
        gas: quote.gas,
        gas_price: u128::from(k.base_fee.load(Relaxed)) + quote.priority_fee,
        l1_fee: l1_fee(k, &input).await,
    };
    let policy = k.policy();
    if let Decision::Skip(reason) = decide(w, &price, &policy) {
        k.metrics.skip(reason);
        debug!(action = w.action.name(), reward = %w.reward, cost_wei = %price.cost(), reason, "skipped");
        return Ok(later(
            k.cfg.poll_ms.saturating_mul(10).div_ceil(1_000).max(5),
        ));
    }
    // Neither the fee it offers nor a bump of it pays more than the work is worth (KB-01): a
    // base fee that rises after the decision is not paid out of the keeper's pocket.
    let ceiling = fee_ceiling(w, &price, &policy);
    let quote = Quote {
        max_fee: quote.max_fee.min(ceiling).max(price.gas_price),
        ..quote
    };
    let ids = w.action.ids();
    let action = w.action.name();
    if !value.is_zero() {
        let (first, end) = send_bonded(k, to, input, value, &quote, action, &ids).await?;
        info!(action, tx = %first, reward = %w.reward, bond_wei = %value, gas = quote.gas, "sent");
        if matches!(&end, Followed::Chain(Ok(Outcome::Mined(r))) if r.status()) {
            k.metrics.bonds_posted.increment(1);
        }
        return Ok(book(k, end, first, action, Some(w.token)));
    }
    let signed = {
        let _shared = k.send_gate.read().await;
        k.tx.send_quoted(to, input, &quote, journal(k, action, &ids))
            .await?
    };
    info!(action, tx = %signed.hash, reward = %w.reward, gas = quote.gas, "sent");
    Ok(watch(k, signed, ceiling, action, &ids, Some(w.token)).await)
}
