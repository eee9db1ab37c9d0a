//! What an order or lease is doing, in words a tenant acts on. `status`, `list`, `submit --wait`
//! and `close` all read [`Facts`] and say its [`State`], so they never disagree.
//!
//! The facts are the market's view (`MarketLens.getJob`), the lease's own results module (its
//! windows are the lease's, GOV-02) and the logs: a lease that ended keeps nothing in storage
//! unless its collateral is held, so how it ended is in `LeaseClosed` / `LeaseFaulted`.

use std::collections::HashMap;

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::{Market, Results, lens::IMarket::JobView};
use gridlease_chain::{classify, deployments::TokenEntry};
use gridlease_primitives::protocol::{CloseReason, JobViewExt, LeaseKind, Status};
use gridlease_workload::merkle::Commitment;

use crate::ctx::{Ctx, logs_since_deploy, money};

mod state;

/// The windows of a results module (immutables): what every lease bound to it lives by.
#[derive(Clone, Debug)]
pub(crate) struct Windows {
    /// The module.
    pub(crate) address: Address,
    /// Seconds after the start to acknowledge.
    pub(crate) start_window: u64,
    /// Seconds after the end a result is still accepted.
    pub(crate) deadline_grace: u64,
    /// Seconds to reveal a challenged chunk.
    pub(crate) response_window: u64,
    /// Wei bonded per chunk challenge.
    pub(crate) bond: U256,
}

impl Windows {
    /// Read the module at `address`.
    pub(crate) async fn of(ctx: &Ctx, address: Address) -> Result<Self> {
        let r = ctx.results_at(address);
        Ok(Self {
            address,
            start_window: u64::from(r.startWindow().call().await.map_err(classify)?),
            deadline_grace: u64::from(r.deadlineGrace().call().await.map_err(classify)?),
            response_window: u64::from(r.responseWindow().call().await.map_err(classify)?),
            bond: r.challengeBond().call().await.map_err(classify)?,
        })
    }
}

/// A posted result, from its `ResultPosted` log.
#[derive(Clone, Debug)]
pub(crate) struct Posted {
    /// Root of the tree over the result (1 KiB leaves).
    pub(crate) root: B256,
    /// Bytes.
    pub(crate) size: u64,
    /// Where the provider serves it.
    pub(crate) uri: String,
}

impl Posted {
    /// The commitment.
    pub(crate) fn commitment(&self) -> Commitment {
        Commitment {
            root: self.root,
            size: self.size,
        }
    }
}

/// An open data-availability challenge.
#[derive(Clone, Debug)]
pub(crate) struct OpenChallenge {
    /// Chunk index.
    pub(crate) index: u64,
    /// Reveal by this time, else the result is provably unavailable.
    pub(crate) deadline: u64,
}

/// Everything known about one order or lease.
pub(crate) struct Facts {
    /// Order/lease id.
    pub(crate) id: B256,
    /// The market's view (mostly zero once a lease ended without a hold).
    pub(crate) v: JobView,
    /// Chain time of the look-up.
    pub(crate) now: u64,
    /// Payment token.
    pub(crate) token: TokenEntry,
    /// Stake token (slashes and compensation).
    pub(crate) stake: TokenEntry,
    /// The lease's results module, once it was awarded.
    pub(crate) windows: Option<Windows>,
    /// What a close would move out of escrow now (`MarketLens.accrued`).
    pub(crate) accrued: u128,
    /// The posted result.
    pub(crate) result: Option<Posted>,
    /// Open chunk challenges.
    pub(crate) challenges: Vec<OpenChallenge>,
    /// The order as created.
    pub(crate) created: Option<Market::OrderCreated>,
    /// The award.
    pub(crate) started: Option<Market::LeaseStarted>,
    /// The close (also for a lease faulted after it closed).
    pub(crate) closed: Option<Market::LeaseClosed>,
    /// The fault.
    pub(crate) faulted: Option<Market::LeaseFaulted>,
    /// The cancellation.
    pub(crate) cancelled: Option<Market::OrderCancelled>,
    /// `MarketAdmin.faultHorizon`: a held close keeps the collateral this long.
    pub(crate) horizon: u64,
    /// A service lease's provider lost its heartbeat since the last settlement.
    pub(crate) lapsed: bool,
    /// What of its refund the token refused to send to the tenant, credited to the tenant in the
    /// market instead (`Credited` in the transaction that cancelled, closed or faulted it).
    pub(crate) credited: u128,
    /// The TLS key its provider's node serves the service with, as last bound on chain
    /// (`Results.CertificateBound`, ACC-03).
    pub(crate) tls_key: Option<B256>,
}

/// A state in words: a short word for scripts, a sentence for people, the command to run next.
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// `running`, `held`, `challenged`, `accepted`, `faulted`, ...
    pub(crate) word: &'static str,
    /// What it means and what it costs.
    pub(crate) text: String,
    /// What to run next, if anything is due.
    pub(crate) next: Option<String>,
}

/// `LeaseClosed.reason` in words.
pub(crate) fn reason_name(r: u8) -> &'static str {
    match CloseReason::of(r) {
        Some(CloseReason::TenantClosed) => "closed by the tenant",
        Some(CloseReason::ProviderClosed) => "closed by the provider",
        Some(CloseReason::Expired) => "expired",
        Some(CloseReason::Exhausted) => "escrow exhausted",
        Some(CloseReason::Faulted) => "faulted",
        Some(CloseReason::Completed) => "completed",
        Some(CloseReason::Accepted) => "accepted by the tenant",
        Some(CloseReason::Lapsed) => "lapsed",
        None => "closed",
    }
}

/// A `bytes32` short string (`"no-show"`).
pub(crate) fn short_string(b: B256) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(32);
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn decode<E: SolEvent>(log: &Log) -> Option<E> {
    log.log_decode::<E>().ok().map(|l| l.inner.data)
}

impl Facts {
    /// The facts of one id.
    pub(crate) async fn one(ctx: &Ctx, id: B256) -> Result<Self> {
        let mut all = Self::load(ctx, &[id]).await?;
        // invariant: `load` returns one entry per id.
        Ok(all.remove(0))
    }

    /// The facts of every id in `ids`, reading each kind of log once for all of them.
    pub(crate) async fn load(ctx: &Ctx, ids: &[B256]) -> Result<Vec<Self>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A log filter names at most this many ids (RPCs cap a topic's alternatives).
        const PER_QUERY: usize = 100;
        if ids.len() > PER_QUERY {
            let mut out = Vec::with_capacity(ids.len());
            for part in ids.chunks(PER_QUERY) {
                out.extend(Box::pin(Self::load(ctx, part)).await?);
            }
            return Ok(out);
        }
        let lens = ctx.lens()?;
        let now = ctx.client.now().await?;
        let horizon: u64 = ctx
            .admin()
            .faultHorizon()
            .call()
            .await
            .map_err(classify)?
            .to();
        let topics: Vec<B256> = ids.to_vec();
        let market_logs = logs_since_deploy(
            ctx,
            &Filter::new()
                .address(ctx.market)
                .event_signature(vec![
                    Market::OrderCreated::SIGNATURE_HASH,
                    Market::LeaseStarted::SIGNATURE_HASH,
                    Market::LeaseClosed::SIGNATURE_HASH,
                    Market::LeaseFaulted::SIGNATURE_HASH,
                    Market::OrderCancelled::SIGNATURE_HASH,
                ])
                .topic1(topics.clone()),
        )
        .await?;
        // A refund the token refused (a frozen tenant, a paused token) became a credit: found by
        // the tenants' `Credited` events in the transactions that ended these ids. Asked only
        // when one of them ended (`submit --wait` polls running ones).
        const ENDS: [B256; 3] = [
            Market::LeaseClosed::SIGNATURE_HASH,
            Market::LeaseFaulted::SIGNATURE_HASH,
            Market::OrderCancelled::SIGNATURE_HASH,
        ];
        let any_ended = market_logs
            .iter()
            .any(|l| l.topic0().is_some_and(|t| ENDS.contains(t)));
        let tenants: Vec<B256> = market_logs
            .iter()
            .filter(|l| l.topic0() == Some(&Market::OrderCreated::SIGNATURE_HASH))
            .filter_map(|l| l.topics().get(2).copied())
            .collect();
        let credit_logs = if !any_ended || tenants.is_empty() {
            Vec::new()
        } else {
            logs_since_deploy(
                ctx,
                &Filter::new()
                    .address(ctx.market)
                    .event_signature(Market::Credited::SIGNATURE_HASH)
                    .topic2(tenants),
            )
            .await?
        };
        let modules = ctx.modules().await?;
        let result_logs = logs_since_deploy(
            ctx,
            &Filter::new()
                .address(modules)
                .event_signature(vec![
                    Results::ResultPosted::SIGNATURE_HASH,
                    Results::ChunkChallenged::SIGNATURE_HASH,
                    Results::CertificateBound::SIGNATURE_HASH,
                ])
                .topic1(topics),
        )
        .await?;
        let stake = ctx.d.tokens.first().cloned().unwrap_or(TokenEntry {
            symbol: "stake".into(),
            address: Address::ZERO,
            decimals: 18,
        });
        let mut windows: HashMap<Address, Windows> = HashMap::new();
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let of = |l: &&Log| l.topics().get(1) == Some(&id);
            let mine: Vec<&Log> = market_logs.iter().filter(of).collect();
            let find = |sig: B256| mine.iter().find(|l| l.topic0() == Some(&sig)).copied();
            let created =
                find(Market::OrderCreated::SIGNATURE_HASH).and_then(decode::<Market::OrderCreated>);
            let started =
                find(Market::LeaseStarted::SIGNATURE_HASH).and_then(decode::<Market::LeaseStarted>);
            let closed =
                find(Market::LeaseClosed::SIGNATURE_HASH).and_then(decode::<Market::LeaseClosed>);
            let faulted =
                find(Market::LeaseFaulted::SIGNATURE_HASH).and_then(decode::<Market::LeaseFaulted>);
            let cancelled = find(Market::OrderCancelled::SIGNATURE_HASH)
                .and_then(decode::<Market::OrderCancelled>);
            let ended: Vec<B256> = ENDS
                .into_iter()
                .filter_map(|sig| find(sig)?.transaction_hash)
                .collect();
            let tenant = created.as_ref().map(|c| c.tenant);
            let credited: u128 = credit_logs
                .iter()
                .filter(|l| l.transaction_hash.is_some_and(|h| ended.contains(&h)))
                .filter_map(decode::<Market::Credited>)
                .filter(|c| Some(c.account) == tenant)
                .map(|c| c.amount.try_into().unwrap_or(u128::MAX))
                .sum();
            let results: Vec<&Log> = result_logs.iter().filter(of).collect();
            let result = results
                .iter()
                .find_map(|l| decode::<Results::ResultPosted>(l))
                .map(|e| Posted {
                    root: e.root,
                    size: e.size,
                    uri: e.uri,
                });

            let v = lens.getJob(id).call().await.map_err(classify)?;
            // The lease's own module; a cleared record names it only in its award.
            let mut module = v.module;
            if module.is_zero()
                && let Some(s) = &started
            {
                module = lens.module(s.module).call().await.map_err(classify)?.module;
            }
            let w = if module.is_zero() {
                None
            } else if let Some(w) = windows.get(&module) {
                Some(w.clone())
            } else {
                let w = Windows::of(ctx, module).await?;
                windows.insert(module, w.clone());
                Some(w)
            };
            let accrued: u128 = if v.status() == Status::Leased {
                lens.accrued(id).call().await.map_err(classify)?.to()
            } else {
                0
            };
            let mut challenges = Vec::new();
            if let Some(w) = &w {
                let r = ctx.results_at(w.address);
                let mut seen = Vec::new();
                for c in results
                    .iter()
                    .filter_map(|l| decode::<Results::ChunkChallenged>(l))
                {
                    let index: u64 = c.index.try_into().unwrap_or(u64::MAX);
                    if seen.contains(&index) {
                        continue;
                    }
                    seen.push(index);
                    let open = r.challengeOf(id, c.index).call().await.map_err(classify)?;
                    if !open.challenger.is_zero() {
                        challenges.push(OpenChallenge {
                            index,
                            deadline: open.deadline.to(),
                        });
                    }
                }
            }
            // The last key bound on the lease's own module (a binding elsewhere binds nothing).
            let tls_key = results
                .iter()
                .filter(|l| w.as_ref().is_some_and(|w| l.address() == w.address))
                .rev()
                .find_map(|l| decode::<Results::CertificateBound>(l))
                .map(|b| b.spkiHash);
            let lapsed = if v.status() == Status::Leased && v.lease_kind() == LeaseKind::Service {
                let live = ctx
                    .staking()?
                    .liveness(v.provider)
                    .call()
                    .await
                    .map_err(classify)?;
                let settled: u64 = v.settledAt.to();
                live.epochStart.to::<u64>() > settled
                    || now > live.at.to::<u64>() + u64::from(live.period)
            } else {
                false
            };
            let token_address = if v.token.is_zero() {
                created.as_ref().map(|c| c.token).unwrap_or_default()
            } else {
                v.token
            };
            out.push(Self {
                id,
                token: ctx.token_at(token_address).await?,
                stake: stake.clone(),
                v,
                now,
                windows: w,
                accrued,
                result,
                challenges,
                created,
                started,
                closed,
                faulted,
                cancelled,
                horizon,
                lapsed,
                credited,
                tls_key,
            });
        }
        Ok(out)
    }

    /// The tenant (from the view, or the order once the record is cleared).
    pub(crate) fn tenant(&self) -> Address {
        if self.v.tenant.is_zero() {
            self.created.as_ref().map(|c| c.tenant).unwrap_or_default()
        } else {
            self.v.tenant
        }
    }

    /// When the lease started.
    pub(crate) fn start(&self) -> u64 {
        self.started
            .as_ref()
            .map_or_else(|| self.v.settledAt.to(), |s| s.start.to())
    }

    pub(super) fn money(&self, units: u128) -> String {
        money(units, &self.token)
    }

    /// A batch lease's result deadline (its end + the module's grace), while it has no result.
    pub(crate) fn deadline(&self) -> Option<u64> {
        let w = self.windows.as_ref()?;
        (self.v.lease_kind() == LeaseKind::Batch).then(|| self.v.end.to::<u64>() + w.deadline_grace)
    }

    /// Until when an unacknowledged lease may still be acknowledged.
    pub(crate) fn ack_until(&self) -> Option<u64> {
        let w = self.windows.as_ref()?;
        (!self.v.acknowledged).then(|| self.start() + w.start_window)
    }

    /// The fault a tenant (or anyone) can prove now without a result in hand: a no-show or a
    /// missed deadline, judged at now for a running lease and at its close for a held one.
    pub(crate) fn provable_liveness_fault(&self) -> Option<&'static str> {
        let until = match self.v.status() {
            Status::Leased => self.now,
            Status::Closed
                if self.v.held && self.now <= self.v.settledAt.to::<u64>() + self.horizon =>
            {
                self.v.settledAt.to()
            }
            _ => return None,
        };
        if let Some(a) = self.ack_until()
            && self.v.lease_kind() != LeaseKind::Held
            && until > a
        {
            return Some("no-show");
        }
        if let Some(d) = self.deadline()
            && until > d
        {
            return Some("missed-deadline");
        }
        None
    }

    /// The lease's provider: the view's while it runs, the award's after it closed (the market
    /// clears a closed lease's provider), zero for an order never awarded.
    pub(crate) fn provider(&self) -> Address {
        if self.v.provider.is_zero() {
            self.started.as_ref().map_or(Address::ZERO, |s| s.provider)
        } else {
            self.v.provider
        }
    }
}
