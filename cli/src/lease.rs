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
use serde_json::json;

use crate::ctx::{Ctx, logs_since_deploy, money, utc, when};

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
        // the tenants' `Credited` events in the transactions that ended these ids.
        let tenants: Vec<B256> = market_logs
            .iter()
            .filter(|l| l.topic0() == Some(&Market::OrderCreated::SIGNATURE_HASH))
            .filter_map(|l| l.topics().get(2).copied())
            .collect();
        let credit_logs = if tenants.is_empty() {
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
            let ended: Vec<B256> = [
                Market::LeaseClosed::SIGNATURE_HASH,
                Market::LeaseFaulted::SIGNATURE_HASH,
                Market::OrderCancelled::SIGNATURE_HASH,
            ]
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

    fn money(&self, units: u128) -> String {
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

    /// The lease's state in words.
    pub(crate) fn state(&self) -> State {
        let id = self.id;
        let v = &self.v;
        let now = self.now;
        let prove = format!("gridlease result {id} --prove");
        let s = |word, text: String| State {
            word,
            text,
            next: None,
        };
        match v.status() {
            Status::Open => {
                let end: u64 = v.biddingEnd.to();
                if now <= end {
                    s("open", format!("open: bids until {}", when(end, now)))
                } else {
                    State {
                        word: "awaiting-award",
                        text: if v.provider.is_zero() {
                            "bid window over and no bid on chain: unless a provider's signed bid \
                             comes with the award, nobody took it at this price; cancel it and \
                             submit again with a higher price.max_per_hour or another GPU class"
                                .into()
                        } else {
                            "bid window over: awaiting the award (you may cancel it)".into()
                        },
                        next: Some(format!("gridlease cancel {id}")),
                    }
                }
            }
            Status::Leased => self.running_state(&prove),
            Status::Closed => self.closed_state(&prove),
            Status::Cancelled => s(
                "cancelled",
                format!(
                    "cancelled: refunded {}{}",
                    self.money(self.cancelled.as_ref().map_or(0, |c| c.refund.to())),
                    self.credited_note()
                ),
            ),
            Status::Faulted => self.fault_state(),
            Status::None => s("unknown", "no such order on this market".into()),
        }
    }

    fn running_state(&self, prove: &str) -> State {
        let (v, now, id) = (&self.v, self.now, self.id);
        let end: u64 = v.end.to();
        let next_prove = |word, text| State {
            word,
            text,
            next: Some(prove.to_owned()),
        };
        match v.lease_kind() {
            LeaseKind::Held => {
                if !self.challenges.is_empty() || v.challenged {
                    let list = self
                        .challenges
                        .iter()
                        .map(|c| format!("chunk {} by {}", c.index, utc(c.deadline)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let due = self.challenges.iter().any(|c| now > c.deadline);
                    let text = format!(
                        "result posted and CHALLENGED: {} open chunk challenge(s) ({list}); the result is held until each is revealed on chain{}",
                        self.challenges.len(),
                        if due {
                            "; one was NOT revealed in time: prove it unavailable (refunds everything, slashes the provider)"
                        } else {
                            "; unrevealed past its window, it can be proven unavailable"
                        }
                    );
                    return State {
                        word: "challenged",
                        text,
                        next: due.then(|| prove.to_owned()),
                    };
                }
                if now <= end {
                    State {
                        word: "held",
                        text: format!(
                            "result posted, held until {}: accepting it now pays {} (the rest of the escrow, {}, comes back)",
                            when(end, now),
                            self.money(self.accrued),
                            self.money(v.escrow.to::<u128>().saturating_sub(self.accrued)),
                        ),
                        next: Some(format!(
                            "gridlease result {id}   (check it), then gridlease close {id}   (accept)"
                        )),
                    }
                } else {
                    State {
                        word: "result-stands",
                        text: format!(
                            "result stands (challenge window over {}): closing completes it and pays {}; anyone may close it",
                            utc(end),
                            self.money(self.accrued)
                        ),
                        next: Some(format!("gridlease close {id}")),
                    }
                }
            }
            kind => {
                let what = if kind == LeaseKind::Service {
                    "service"
                } else {
                    "batch job"
                };
                if let Some(until) = self.ack_until() {
                    if now > until {
                        return next_prove(
                            "no-show",
                            format!(
                                "NO-SHOW: the provider did not acknowledge the {what} by {}; proving it refunds everything and slashes the provider",
                                utc(until)
                            ),
                        );
                    }
                    return State {
                        word: "awaiting-acknowledgement",
                        text: format!(
                            "awaiting acknowledgement: the provider must acknowledge the {what} by {}; closing now pays nothing",
                            when(until, now)
                        ),
                        next: None,
                    };
                }
                if kind == LeaseKind::Service {
                    if self.lapsed {
                        return State {
                            word: "lapsed",
                            text: format!(
                                "lapsed: the provider's heartbeat stopped; anyone may close it: it pays {} up to the lapse and refunds the rest",
                                self.money(self.accrued)
                            ),
                            next: Some(format!("gridlease close {id}")),
                        };
                    }
                    return State {
                        word: "live",
                        text: format!(
                            "acknowledged, live: paid per second of provider heartbeat ({} accrued, not yet settled); ends {}{}",
                            self.money(self.accrued),
                            when(end, now),
                            if v.stalePending {
                                "; a heartbeat lapse was reported"
                            } else {
                                ""
                            }
                        ),
                        next: None,
                    };
                }
                let deadline = end + self.windows.as_ref().map_or(0, |w| w.deadline_grace);
                if now <= end {
                    State {
                        word: "running",
                        text: format!(
                            "acknowledged, running: result due by {} (grace until {}); closing now pays the time used, {}",
                            when(end, now),
                            utc(deadline),
                            self.money(self.accrued)
                        ),
                        next: None,
                    }
                } else if now <= deadline {
                    State {
                        word: "deadline-grace",
                        text: format!(
                            "past its end without a result: the provider may still post it until {}; closing now pays nothing",
                            when(deadline, now)
                        ),
                        next: None,
                    }
                } else {
                    next_prove(
                        "deadline-missed",
                        format!(
                            "DEADLINE MISSED: no result by {}; proving it refunds everything and slashes the provider",
                            utc(deadline)
                        ),
                    )
                }
            }
        }
    }

    fn closed_state(&self, prove: &str) -> State {
        let (v, now) = (&self.v, self.now);
        let c = self.closed.as_ref();
        let reason = c.and_then(|c| CloseReason::of(c.reason));
        let amounts = c.map_or_else(String::new, |c| {
            format!(
                ": paid {}, refunded {}{}",
                self.money(c.paid.to()),
                self.money(c.refund.to()),
                self.credited_note()
            )
        });
        let word = match reason {
            Some(CloseReason::Completed) => "completed",
            Some(CloseReason::Accepted) => "accepted",
            Some(CloseReason::Lapsed) => "lapsed",
            Some(CloseReason::Expired) => "expired",
            Some(CloseReason::Exhausted) => "exhausted",
            _ => "closed",
        };
        let mut text = format!("{}{amounts}", reason_name(c.map_or(u8::MAX, |c| c.reason)));
        let mut next = None;
        let held_until = v.settledAt.to::<u64>() + self.horizon;
        if v.held && now <= held_until {
            if v.lease_kind() == LeaseKind::Held {
                let end: u64 = v.end.to();
                if now <= end {
                    text += &format!(
                        "; faults on the result stay provable until {} (gridlease result {} --prove)",
                        when(end, now),
                        self.id
                    );
                }
                for c in &self.challenges {
                    if now > c.deadline {
                        text += &format!(
                            "; chunk {} was NOT revealed by {}: proving it unavailable slashes the provider and compensates what you paid",
                            c.index,
                            utc(c.deadline)
                        );
                        next = Some(prove.to_owned());
                    } else {
                        text += &format!(
                            "; chunk {} is challenged, to be revealed by {}",
                            c.index,
                            when(c.deadline, now)
                        );
                    }
                }
            } else if let Some(fault) = self.provable_liveness_fault() {
                text += &format!("; the {fault} stays provable: proving it slashes the provider");
                next = Some(prove.to_owned());
            }
            text += &format!(
                "; the provider's collateral is held until {}",
                when(held_until, now)
            );
        } else if reason == Some(CloseReason::Completed) {
            text = format!("completed: the result stood{amounts}");
        }
        State { word, text, next }
    }

    fn fault_state(&self) -> State {
        let Some(f) = &self.faulted else {
            return State {
                word: "faulted",
                text: "faulted".into(),
                next: None,
            };
        };
        let before = match self.closed.as_ref().map(|c| c.reason) {
            Some(r) if CloseReason::of(r) != Some(CloseReason::Faulted) => {
                format!("{}, then ", reason_name(r))
            }
            _ => String::new(),
        };
        let compensation: u128 = f.compensation.try_into().unwrap_or(u128::MAX);
        let fee: u128 = f.fee.to();
        let text = format!(
            "{before}FAULTED ({}): the escrow refunded {}{}{}, compensation {}{}, the provider's stake slashed {}{}",
            short_string(f.kind),
            self.money(f.refund.to::<u128>() - fee),
            if fee > 0 {
                format!(" (less the reporter's fee of {})", self.money(fee))
            } else {
                String::new()
            },
            self.credited_note(),
            money(compensation, &self.stake),
            if compensation > 0 {
                " credited in staking (gridlease withdraw)"
            } else {
                ""
            },
            money(f.slashed.try_into().unwrap_or(u128::MAX), &self.stake),
            if f.reporter.is_zero() || f.reporter == self.tenant() {
                String::new()
            } else {
                format!(" (proven by {})", f.reporter)
            },
        );
        State {
            word: "faulted",
            text,
            next: (compensation > 0).then(|| "gridlease withdraw".to_owned()),
        }
    }

    /// What the refund's words add when the token refused it and the market credited it.
    fn credited_note(&self) -> String {
        if self.credited == 0 {
            return String::new();
        }
        // The market pays a refund in one transfer: all of it, or all of it as a credit.
        " (the token refused the transfer: credited to the tenant in the market instead; `gridlease withdraw` collects it)".into()
    }

    /// The JSON of `status` and `list`.
    pub(crate) fn json(&self) -> serde_json::Value {
        let v = &self.v;
        let st = self.state();
        let held_until = (v.held && v.status() == Status::Closed)
            .then(|| v.settledAt.to::<u64>() + self.horizon);
        json!({
            "id": self.id,
            "status": v.status().word(),
            "state": st.word,
            "stateText": st.text,
            "next": st.next,
            "kind": match v.lease_kind() { LeaseKind::Service => "service", _ => "batch" },
            "tenant": self.tenant(),
            "token": self.token.symbol,
            "provider": self.provider(),
            "escrow": v.escrow.to::<u128>().to_string(),
            "escrowText": self.money(v.escrow.to()),
            "ratePerSecond": v.ratePerSecond.to::<u128>().to_string(),
            "maxPricePerSecond": v.maxPricePerSecond.to::<u128>().to_string(),
            "collateral": v.collateral.to::<u128>().to_string(),
            "biddingEnd": v.biddingEnd.to::<u64>(),
            "settledAt": v.settledAt.to::<u64>(),
            "end": v.end.to::<u64>(),
            "start": self.started.as_ref().map(|s| s.start.to::<u64>()),
            "accrued": self.accrued.to_string(),
            "lowBalance": v.lowBalance,
            "instant": v.instant,
            "acknowledged": v.acknowledged,
            "acknowledgeBy": self.ack_until().filter(|_| v.status() == Status::Leased),
            "resultDeadline": self.deadline().filter(|_| v.status() == Status::Leased),
            "challenged": v.challenged,
            "openChallenges": self.challenges.iter().map(|c| json!({
                "index": c.index, "deadline": c.deadline,
            })).collect::<Vec<_>>(),
            "holdEnd": (v.lease_kind() == LeaseKind::Held && v.status() == Status::Leased).then(|| v.end.to::<u64>()),
            "held": v.held,
            "collateralHeldUntil": held_until,
            "result": self.result.as_ref().map(|r| json!({
                "root": r.root, "size": r.size, "uri": r.uri,
            })),
            "closed": self.closed.as_ref().map(|c| json!({
                "reason": reason_name(c.reason),
                "paid": c.paid.to::<u128>().to_string(),
                "toProvider": c.toProvider.to::<u128>().to_string(),
                "protocolFee": c.protocolFee.to::<u128>().to_string(),
                "keeperFee": c.keeperFee.to::<u128>().to_string(),
                "refund": c.refund.to::<u128>().to_string(),
                "closedAt": c.closedAt.to::<u64>(),
                "held": c.held,
            })),
            "fault": self.faulted.as_ref().map(|f| json!({
                "kind": short_string(f.kind),
                // Net of the reporter's fee, which is shown on its own.
                "refund": (f.refund.to::<u128>() - f.fee.to::<u128>()).to_string(),
                "fee": f.fee.to::<u128>().to_string(),
                "compensation": f.compensation.to_string(),
                "slashed": f.slashed.to_string(),
                "reporter": f.reporter,
            })),
            "cancelled": self.cancelled.as_ref().map(|c| json!({
                "refund": c.refund.to::<u128>().to_string(),
            })),
            // Of the refund: what the token refused to send, credited in the market instead.
            "credited": self.credited.to_string(),
        })
    }
}
