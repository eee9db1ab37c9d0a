//! The collectors: new logs of the market, its results modules and staking into the view
//! (paged, reorg-aware, committed with the cursor per page), and what the strategies read beyond
//! logs (the liveness of providers with service leases, the marginal gas of a settle batch).

use std::{
    collections::{HashMap, HashSet},
    sync::atomic::Ordering::Relaxed,
};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::Address,
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::{SolEvent, SolEventInterface},
};
use gridlease_bindings::{
    Market, MockStablecoin,
    Results::{self, ResultsEvents},
    Staking,
};
use gridlease_chain::{ChainError, classify, classify_rpc, logs};
use gridlease_daemon::lock;
use tracing::{debug, info, warn};

use crate::{
    shared::Keeper,
    strategy::{Inputs, Liveness, Price},
    view::View,
};

/// Read new market, results and staking logs into the view.
pub(crate) async fn collect(k: &Keeper, to: u64) -> Result<(), ChainError> {
    let cursor = lock(&k.store)
        .load_cursor()
        .map_err(|e| ChainError::User(e.to_string()))?;
    let from = logs::resume_from(k.client(), "keeper", cursor, k.deploy_block).await?;
    if let Some((at, _)) = cursor
        && from <= at
    {
        // A reorg below the cursor: what the logs of the blocks read again did is undone
        // first, or a challenge, an acknowledgement or a close the new chain does not have
        // would stay in the view for good (OFF-01). A keeper restarted since has no undo
        // information: it only reads the blocks again.
        let mut v = lock(&k.view);
        let changed = lock(&k.undo).rewind(&mut v, from);
        if !changed.is_empty() {
            lock(&k.store)
                .save(&v, &changed)
                .map_err(|e| ChainError::User(e.to_string()))?;
            info!(
                undone = changed.len(),
                from, "undid what the reorged blocks' logs did"
            );
        }
    }
    let mut addresses = vec![k.market, k.staking];
    addresses.extend(lock(&k.modules).values().map(|m| m.address));
    let filter = Filter::new().address(addresses).event_signature(vec![
        Staking::ProviderRegistered::SIGNATURE_HASH,
        Staking::ProviderUpdated::SIGNATURE_HASH,
        Market::OrderCreated::SIGNATURE_HASH,
        Market::BidPlaced::SIGNATURE_HASH,
        Market::LeaseStarted::SIGNATURE_HASH,
        Market::LeaseSettled::SIGNATURE_HASH,
        Market::ToppedUp::SIGNATURE_HASH,
        Market::LeaseClosed::SIGNATURE_HASH,
        Market::OrderCancelled::SIGNATURE_HASH,
        Market::LeaseFaulted::SIGNATURE_HASH,
        Market::HeldReleased::SIGNATURE_HASH,
        Results::LeaseAcknowledged::SIGNATURE_HASH,
        Results::ResultPosted::SIGNATURE_HASH,
        Results::StaleReported::SIGNATURE_HASH,
        Results::ChunkChallenged::SIGNATURE_HASH,
        Results::ChunkRevealed::SIGNATURE_HASH,
        Results::ChallengeVoided::SIGNATURE_HASH,
    ]);
    let mut times: HashMap<u64, u64> = HashMap::new();
    let mut from = from;
    while from <= to {
        let span = k.log_span.load(Relaxed).max(1);
        let end = to.min(from.saturating_add(span - 1));
        let seen = page(k, &filter, from, end, &mut times).await?;
        k.log_span.store(next_span(span, seen), Relaxed);
        from = end + 1;
    }
    // Every FORGET_EVERY blocks, forget the finished ids no rewind can reach any more.
    let before = to.saturating_sub(logs::REORG_REWIND);
    if before >= k.forgot_before.load(Relaxed).saturating_add(FORGET_EVERY) {
        let old = lock(&k.view).forget(before);
        if !old.is_empty() {
            lock(&k.store)
                .forget(&old)
                .map_err(|e| ChainError::User(e.to_string()))?;
            debug!(forgotten = old.len(), before, "finished ids forgotten");
        }
        k.forgot_before.store(before, Relaxed);
    }
    Ok(())
}

/// How often (in blocks) finished ids are forgotten.
const FORGET_EVERY: u64 = 1_000;

/// Logs a page should hold: they are all in memory at once (as JSON, then decoded), so when
/// blocks are dense a catch-up reads narrower pages instead of one huge one (KB-06).
const LOG_TARGET: usize = 2_000;

/// The next page's span in blocks after `span` blocks held `seen` logs: narrower in proportion
/// above [`LOG_TARGET`], else twice as wide, up to [`logs::LOG_PAGE`]. A start reads one block
/// first and widens from there.
fn next_span(span: u64, seen: usize) -> u64 {
    if seen > LOG_TARGET {
        let scaled = u128::from(span) * LOG_TARGET as u128 / seen as u128;
        u64::try_from(scaled).unwrap_or(1).max(1)
    } else {
        span.saturating_mul(2).min(logs::LOG_PAGE)
    }
}

/// Read the logs of blocks `from..=to` into the view, committed with the cursor per page.
async fn page(
    k: &Keeper,
    filter: &Filter,
    from: u64,
    to: u64,
    times: &mut HashMap<u64, u64>,
) -> Result<usize, ChainError> {
    logs::pages(k.client(), filter, from, to, async |page, end, hash| {
        // Block times, for results (the challenge window runs from them).
        for l in &page {
            let (Some(n), None) = (l.block_number, l.block_timestamp) else {
                continue;
            };
            if times.contains_key(&n) || l.topic0() != Some(&Results::ResultPosted::SIGNATURE_HASH)
            {
                continue;
            }
            let b = k
                .client()
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .await
                .map_err(classify_rpc)?
                .ok_or_else(|| ChainError::Network(format!("block {n} vanished")))?;
            times.insert(n, b.header.timestamp);
        }
        let mut changed = Vec::new();
        let mut v = lock(&k.view);
        let mut undo = lock(&k.undo);
        for l in &page {
            note_answer(k, &v, l);
            undo.record(&v, l, l.block_number.unwrap_or(0));
            let t = l
                .block_timestamp
                .or_else(|| l.block_number.and_then(|n| times.get(&n).copied()))
                .unwrap_or(0);
            if let Some(c) = v.apply(l, t) {
                changed.push(c);
            }
        }
        // No rewind from this page's end reaches further back.
        undo.prune(end.saturating_sub(logs::REORG_REWIND));
        lock(&k.store)
            .commit(&v, &changed, (end, hash))
            .map_err(|e| ChainError::User(e.to_string()))
    })
    .await
}

/// Read the decimals of payment tokens the view's leases are in and the deployments file does not
/// list (allowed by governance since it was written). Before, such a token had no price in the
/// money rules: its gas counted as free and `min_profit` as 0, so work paid in it was sent
/// whatever it cost, and its earnings were never withdrawn (only listed tokens were).
pub(crate) async fn learn_tokens(k: &Keeper) {
    let unknown: HashSet<Address> = {
        let v = lock(&k.view);
        let known = lock(&k.decimals);
        v.leases
            .values()
            .map(|l| l.token)
            .filter(|t| *t != k.stake_token.0 && !known.contains_key(t))
            .collect()
    };
    for token in unknown {
        match MockStablecoin::new(token, &k.client().provider)
            .decimals()
            .call()
            .await
        {
            Ok(decimals) => {
                info!(%token, decimals, "a payment token the deployments file does not list");
                if let Err(why) = k.cfg.check_token_amounts(&[(token.to_string(), decimals)]) {
                    warn!(%token, "the keeper's config: {why}; no work paid in it pays enough");
                }
                lock(&k.decimals).insert(token, decimals);
            }
            Err(e) => {
                warn!(%token, error = %classify(e), "cannot read a payment token's decimals: work paid in it has no price until it can (asked again each poll)");
            }
        }
    }
}

/// A challenge of ours was answered: the provider holds its data, and the bond went to whoever
/// revealed the chunk (the price of a challenge; counted once per challenge).
fn note_answer(k: &Keeper, v: &View, log: &Log) {
    let Ok(e) = ResultsEvents::decode_log(&log.inner) else {
        return;
    };
    let ResultsEvents::ChunkRevealed(r) = e.data else {
        return;
    };
    let Ok(index) = u64::try_from(r.index) else {
        return;
    };
    let Some(c) = v
        .leases
        .get(&r.leaseId)
        .and_then(|l| l.challenges.get(&index))
    else {
        return;
    };
    if c.challenger == k.address() && lock(&k.answered).insert((r.leaseId, index, c.deadline)) {
        k.metrics.bonds_lost.increment(1);
        info!(lease = %r.leaseId, chunk = index, "our challenge was answered: the provider holds its data, and the bond went to whoever revealed the chunk");
    }
}

/// Chain reads sent at once when the strategies need one per provider.
const READS_AT_ONCE: usize = 16;

/// What the strategies need besides the view: the liveness of providers with service leases,
/// and the marginal gas of one more lease in a settle batch.
pub(crate) async fn inputs(k: &Keeper) -> Result<Inputs, ChainError> {
    let busy = lock(&k.busy).keys().copied().collect();
    let mut providers: Vec<Address> = lock(&k.view)
        .leases
        .values()
        .filter(|l| l.service() && (l.closed.is_none() || l.stale_since.is_some()))
        .map(|l| l.provider)
        .collect();
    providers.sort_unstable();
    providers.dedup();
    let p = &k.client().provider;
    // One read per provider (not per lease), READS_AT_ONCE at a time (KB-06).
    let mut liveness = HashMap::with_capacity(providers.len());
    for chunk in providers.chunks(READS_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for provider in chunk.iter().copied() {
            let staking = Staking::new(k.staking, p.clone());
            reads.spawn(async move { (provider, staking.liveness(provider).call().await) });
        }
        while let Some(r) = reads.join_next().await {
            let (provider, l) = r.map_err(|e| ChainError::Network(e.to_string()))?;
            let l = l.map_err(classify)?;
            liveness.insert(
                provider,
                Liveness {
                    at: l.at.to(),
                    period: u64::from(l.period),
                    epoch: l.epoch,
                    epoch_start: l.epochStart.to(),
                    prev_start: l.prevStart.to(),
                    prev_end: l.prevEnd.to(),
                },
            );
        }
    }
    // One more lease in a batch costs about 12k gas (the gas snapshot's settle_batch figure).
    let price = Price {
        gas: 12_000,
        gas_price: u128::from(k.base_fee.load(Relaxed)),
        l1_fee: 0,
    };
    let policy = k.policy();
    let decimals = lock(&k.decimals).clone();
    let min_lease_fee = decimals
        .keys()
        .map(|t| (*t, crate::strategy::cost_in(&price, *t, &policy)))
        .collect();
    Ok(Inputs {
        decimals,
        stake_token: k.stake_token.0,
        stake_decimals: k.stake_token.1,
        busy,
        liveness,
        min_lease_fee,
        settle_max: settle_max(k.cfg.settle_max, k.gas_limit.load(Relaxed)),
        signed: HashMap::new(),
        modules: lock(&k.modules).clone(),
        me: k.address(),
        unpaid: k.cfg.unpaid.clone(),
        close_grace: k.cfg.close_grace_s,
    })
}

/// Gas of one more lease in a settle batch, with room for cold storage and a provider change.
const SETTLE_GAS_PER_LEASE: u64 = 15_000;
/// Gas of a settle transaction besides its leases.
const SETTLE_GAS_BASE: u64 = 60_000;

/// Leases per settle transaction: `batch.settle_max`, but a batch never needs more than half a
/// block (0: the block gas limit is not known yet).
fn settle_max(configured: usize, block_gas_limit: u64) -> usize {
    if block_gas_limit == 0 {
        return configured;
    }
    let fits = (block_gas_limit / 2).saturating_sub(SETTLE_GAS_BASE) / SETTLE_GAS_PER_LEASE;
    configured
        .min(usize::try_from(fits).unwrap_or(usize::MAX))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::settle_max;

    #[test]
    fn kb_06_log_pages_narrow_when_blocks_are_dense() {
        use super::{LOG_TARGET, next_span};
        assert_eq!(next_span(1, 0), 2);
        assert_eq!(next_span(1_500, 10), gridlease_chain::logs::LOG_PAGE);
        // Ten times the target: a tenth of the span; never below one block.
        assert_eq!(next_span(100, 10 * LOG_TARGET), 10);
        assert_eq!(next_span(1, 50 * LOG_TARGET), 1);
    }

    #[test]
    fn kb_06_settle_batches_fit_in_half_a_block() {
        // 30M gas: the configured 100 fits; 1,000 would not (half a block holds 996).
        assert_eq!(settle_max(100, 30_000_000), 100);
        assert_eq!(settle_max(1_000, 30_000_000), 996);
        // A small block still settles one lease at a time; an unknown limit changes nothing.
        assert_eq!(settle_max(100, 100_000), 1);
        assert_eq!(settle_max(100, 0), 100);
    }
}
