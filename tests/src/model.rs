//! A Rust model of the market and staking money rules: the reference the stateful property tests
//! (`tests/invariants.rs`) hold the contracts to.
//!
//! Plain integers and maps, no chain. Each method applies one external call the way the contract
//! must, and returns `Err(reason)` exactly when the contract must revert. A failed call may leave
//! the model half-changed, so callers apply each call to a clone and keep it only on success
//! ([`Model::apply`]).

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256};

/// Basis points in one whole.
pub const BPS: u128 = 10_000;

/// Life of an order/lease (the contract's `IMarket.Status`, same order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Unknown id.
    None,
    /// Accepting bids.
    Open,
    /// Running and paying.
    Leased,
    /// Closed lease.
    Closed,
    /// Cancelled order.
    Cancelled,
}

/// Market parameters the model needs.
#[derive(Clone, Debug)]
pub struct Params {
    /// Protocol fee of settled payment.
    pub protocol_fee_bps: u16,
    /// Third-party settler's fee.
    pub keeper_fee_bps: u16,
    /// Lowest accepted price, 18-decimal units per second.
    pub min_price: u128,
    /// Longest bid window.
    pub max_bid_window: u64,
    /// Grace after the bid window before anyone may cancel.
    pub award_grace: u64,
    /// A lease whose escrow covers fewer seconds than this is low.
    pub low_balance_window: u64,
    /// Longest lease.
    pub max_lease: u64,
    /// New orders, bids and awards refused.
    pub paused: bool,
}

/// A provider's staking record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provider {
    /// Hot key that bids.
    pub operator: Address,
    /// GPU class bitmap.
    pub gpu_classes: u64,
    /// GPUs.
    pub gpu_count: u8,
    /// VRAM per GPU.
    pub vram_gib: u16,
    /// Active stake (free + locked).
    pub stake: u128,
    /// Stake locked as lease collateral.
    pub locked: u128,
    /// Stake waiting to be withdrawn, still slashable.
    pub unbonding: u128,
    /// When `unbonding` may be withdrawn.
    pub release_at: u64,
    /// Last heartbeat (0: never).
    pub beat_at: u64,
    /// Heartbeat epoch (bumped by a heartbeat after a lapse).
    pub epoch: u64,
    /// Until when each past epoch kept service leases paying.
    pub epoch_end: BTreeMap<u64, u64>,
}

/// What an order asks for (the parts of `OrderParams` the rules read).
#[derive(Clone, Debug)]
pub struct Order {
    /// Escrow deposited with the order.
    pub deposit: u128,
    /// Reserve price.
    pub max_price: u128,
    /// Longest lease, seconds.
    pub max_duration: u64,
    /// Seconds bids are accepted.
    pub bid_window: u64,
    /// Provider stake locked for the lease.
    pub collateral: u128,
    /// Required GPU class.
    pub gpu_class: u8,
    /// Required GPUs.
    pub gpu_count: u8,
    /// Required VRAM per GPU.
    pub vram_gib: u16,
    /// First valid bid wins.
    pub instant: bool,
    /// A service lease (pays only while the provider's heartbeat is fresh).
    pub service: bool,
}

/// An order or lease.
#[derive(Clone, Debug)]
pub struct Job {
    /// Who pays.
    pub tenant: Address,
    /// Where it is in its life.
    pub status: Status,
    /// What it asked for.
    pub order: Order,
    /// Unspent escrow.
    pub escrow: u128,
    /// Last second bids are accepted.
    pub bidding_end: u64,
    /// Lowest on-chain bid while open: (provider, price).
    pub bidder: Option<(Address, u128)>,
    /// Winning provider.
    pub provider: Address,
    /// Winning price, 18-decimal units per second.
    pub rate: u128,
    /// Lease start.
    pub start: u64,
    /// Paid up to this second.
    pub settled_at: u64,
    /// Lease end; for a batch lease with a posted result, the result time.
    pub end: u64,
    /// A batch lease whose result was posted: held for the challenge window after `end`.
    pub held: bool,
    /// Low-balance flag.
    pub low_balance: bool,
    /// The provider's heartbeat epoch at award (service leases).
    pub epoch: u64,
    /// Protocol fee fixed at award.
    pub protocol_fee_bps: u16,
    /// Keeper fee fixed at award.
    pub keeper_fee_bps: u16,
    /// Everything the tenant put in (deposit + top-ups).
    pub deposited: u128,
    /// Everything taken out of escrow as payment.
    pub paid: u128,
    /// How many settlements paid something (each may round down by less than one unit).
    pub settlements: u128,
    /// Escrow returned to the tenant (cancel or close).
    pub refunded: u128,
}

/// A signed bid as the award sees it: who signed, over which order.
#[derive(Clone, Debug)]
pub struct Offer {
    /// The key that signed.
    pub signer: Address,
    /// The order id the signature commits to.
    pub order: B256,
    /// Price.
    pub price: u128,
    /// Last valid second.
    pub expiry: u64,
}

/// What one settlement of one lease paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Taken from escrow.
    pub paid: u128,
    /// Credited to the provider.
    pub to_provider: u128,
    /// Booked as protocol fees.
    pub protocol_fee: u128,
    /// Credited to the settler.
    pub keeper_fee: u128,
}

/// Result of a call the model refused: a short reason.
pub type Outcome<T = ()> = Result<T, &'static str>;

/// The protocol state for one payment token that is also the stake token.
#[derive(Clone, Debug)]
pub struct Model {
    /// Block timestamp of the next call.
    pub now: u64,
    /// Market parameters.
    pub params: Params,
    /// Staking unbonding period.
    pub unbonding_period: u64,
    /// 10^(18 - token decimals).
    pub scale: u128,
    /// Treasury account.
    pub treasury: Address,
    /// Providers by owner.
    pub providers: BTreeMap<Address, Provider>,
    /// Orders and leases by id.
    pub jobs: BTreeMap<B256, Job>,
    /// Market credits (withdrawable) by account.
    pub credits: BTreeMap<Address, u128>,
    /// Protocol fees owed to the treasury.
    pub fees: u128,
    /// Token balances of the accounts the test uses (not of the contracts).
    pub balances: BTreeMap<Address, u128>,
    /// Every keeper fee ever credited (INV-08).
    pub keeper_fees: u128,
    /// Posted results by lease.
    pub results: BTreeMap<B256, Posted>,
    /// Leases their provider acknowledged.
    pub acked: Vec<B256>,
    /// Leases a fault was proven on.
    pub faulted: Vec<B256>,
    /// Seconds a provider has to acknowledge a lease.
    pub start_window: u64,
    /// Staking heartbeat period.
    pub heartbeat_period: u64,
    /// Results' stale grace.
    pub stale_grace: u64,
    /// First report of a stale provider, by lease.
    pub stale_since: BTreeMap<B256, u64>,
    /// Staking slash credits by account.
    pub slash_credits: BTreeMap<Address, u128>,
    /// Total slashed per provider.
    pub slashed: BTreeMap<Address, u128>,
    /// Seconds a result can be challenged.
    pub challenge_window: u64,
    /// Reporter share of a slash after the tenant's, bps.
    pub reporter_bps: u128,
}

/// A result posted for a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// The provider that posted it.
    pub provider: Address,
    /// When.
    pub posted_at: u64,
    /// Whether it is the true result.
    pub honest: bool,
}

impl Model {
    /// An empty market at `now`: the fixture's staking and results windows
    /// ([`crate::fixture`]), a 6-decimal token, no providers, jobs or balances.
    pub fn new(now: u64, params: Params, treasury: Address) -> Self {
        use crate::fixture::{CHALLENGE_WINDOW, STALE_GRACE, START_WINDOW, UNBONDING};
        Self {
            now,
            params,
            unbonding_period: UNBONDING,
            scale: 1_000_000_000_000,
            treasury,
            providers: BTreeMap::new(),
            jobs: BTreeMap::new(),
            credits: BTreeMap::new(),
            fees: 0,
            balances: BTreeMap::new(),
            keeper_fees: 0,
            results: BTreeMap::new(),
            acked: Vec::new(),
            faulted: Vec::new(),
            start_window: START_WINDOW,
            // Staking's default heartbeat period.
            heartbeat_period: 300,
            stale_grace: STALE_GRACE,
            stale_since: BTreeMap::new(),
            slash_credits: BTreeMap::new(),
            slashed: BTreeMap::new(),
            challenge_window: CHALLENGE_WINDOW,
            reporter_bps: 1_000,
        }
    }

    /// Apply `f` to a copy; keep the copy only if the call succeeds.
    pub fn apply<T>(&mut self, f: impl FnOnce(&mut Self) -> Outcome<T>) -> Outcome<T> {
        let mut next = self.clone();
        let out = f(&mut next)?;
        *self = next;
        Ok(out)
    }

    /// Provider behind an operator key.
    pub fn provider_of(&self, operator: Address) -> Option<Address> {
        self.providers
            .iter()
            .find(|(_, p)| p.operator == operator)
            .map(|(owner, _)| *owner)
    }

    /// Token the market holds: escrow of open orders and active leases, credits, fees.
    pub fn market_holdings(&self) -> u128 {
        let escrow: u128 = self
            .jobs
            .values()
            .filter(|j| matches!(j.status, Status::Open | Status::Leased))
            .map(|j| j.escrow)
            .sum();
        escrow + self.credits.values().sum::<u128>() + self.fees
    }

    /// Token the staking contract holds: active and unbonding stake, slash credits.
    pub fn staking_holdings(&self) -> u128 {
        let stake: u128 = self.providers.values().map(|p| p.stake + p.unbonding).sum();
        stake + self.slash_credits.values().sum::<u128>()
    }

    /// `Results.postResult` by the operator of `provider` (`honest`: the true result).
    pub fn post_result(&mut self, provider: Address, id: B256, honest: bool) -> Outcome {
        let job = self.jobs.get(&id).ok_or("LeaseNotRunning")?;
        if job.status != Status::Leased {
            return Err("LeaseNotRunning");
        }
        if self.results.contains_key(&id) {
            return Err("ResultAlreadyPosted");
        }
        if self.now >= job.end {
            return Err("DeadlinePassed");
        }
        if job.provider != provider {
            return Err("NotLeaseOperator");
        }
        let posted = Posted {
            provider,
            posted_at: self.now,
            honest,
        };
        self.results.insert(id, posted);
        let now = self.now;
        let job = self.job(id);
        if !job.order.service {
            (job.end, job.held) = (now, true);
        }
        Ok(())
    }

    /// `Results.proveMatmulFraud` by `reporter` with the order's true terms; `matmul`: the order is
    /// a `matmul_i8` job. Returns what was slashed.
    pub fn prove_fraud(&mut self, reporter: Address, id: B256, matmul: bool) -> Outcome<u128> {
        let r = self.results.get(&id).cloned().ok_or("NoResult")?;
        if self.faulted.contains(&id) {
            return Err("AlreadyFaulted");
        }
        if self.now > r.posted_at + self.challenge_window {
            return Err("ChallengeWindowOver");
        }
        if !matmul {
            return Err("NotThisMatmulJob");
        }
        if r.honest {
            return Err("NoFraud");
        }
        self.faulted.push(id);
        let job = self.jobs[&id].clone();
        let collateral = job.order.collateral;
        let mut locked = 0;
        if job.status == Status::Leased && job.provider == r.provider {
            locked = collateral;
            let j = self.job(id);
            let refund = j.escrow;
            (j.status, j.escrow, j.refunded) = (Status::Closed, 0, refund);
            self.give(job.tenant, refund);
        }
        Ok(self.slash(
            r.provider,
            collateral,
            locked,
            job.tenant,
            collateral / 2,
            reporter,
        ))
    }

    fn running(&self, id: B256) -> Outcome<Job> {
        match self.jobs.get(&id) {
            Some(j) if j.status == Status::Leased => Ok(j.clone()),
            _ => Err("LeaseNotRunning"),
        }
    }

    /// `Results.acknowledge` by the operator of `provider`.
    pub fn acknowledge(&mut self, provider: Address, id: B256) -> Outcome {
        let job = self.running(id)?;
        if job.provider != provider {
            return Err("NotLeaseOperator");
        }
        if self.acked.contains(&id) || self.results.contains_key(&id) {
            return Ok(());
        }
        if self.now > job.start + self.start_window {
            return Err("StartWindowOver");
        }
        self.acked.push(id);
        Ok(())
    }

    /// `Results.proveNoShow` by `reporter`.
    pub fn prove_no_show(&mut self, reporter: Address, id: B256) -> Outcome<u128> {
        let job = self.running(id)?;
        if self.acked.contains(&id) || self.results.contains_key(&id) {
            return Err("NotANoShow");
        }
        if self.now <= job.start + self.start_window {
            return Err("NotANoShow");
        }
        self.liveness_fault(reporter, id, job)
    }

    /// `Results.proveMissedDeadline` by `reporter`; `service`: the order is a service lease.
    pub fn prove_missed_deadline(
        &mut self,
        reporter: Address,
        id: B256,
        service: bool,
    ) -> Outcome<u128> {
        if service {
            return Err("NotABatchJob");
        }
        let job = self.running(id)?;
        if self.results.contains_key(&id) || self.now < job.end {
            return Err("DeadlineNotMissed");
        }
        self.liveness_fault(reporter, id, job)
    }

    fn liveness_fault(&mut self, reporter: Address, id: B256, job: Job) -> Outcome<u128> {
        if self.faulted.contains(&id) {
            return Err("AlreadyFaulted");
        }
        self.faulted.push(id);
        let collateral = job.order.collateral;
        let j = self.job(id);
        let refund = j.escrow;
        (j.status, j.escrow, j.refunded) = (Status::Closed, 0, refund);
        self.give(job.tenant, refund);
        Ok(self.slash(
            job.provider,
            collateral,
            collateral,
            job.tenant,
            collateral / 2,
            reporter,
        ))
    }

    /// `Staking.slash`: release `locked` of the lock, take `penalty` from stake then unbonding,
    /// split tenant (up to `compensation`) -> reporter share -> treasury.
    fn slash(
        &mut self,
        provider: Address,
        penalty: u128,
        locked: u128,
        tenant: Address,
        compensation: u128,
        reporter: Address,
    ) -> u128 {
        let p = self.providers.get_mut(&provider).expect("registered");
        p.locked -= locked.min(p.locked);
        let from_stake = penalty.min(p.stake);
        let from_unbonding = (penalty - from_stake).min(p.unbonding);
        p.stake -= from_stake;
        p.unbonding -= from_unbonding;
        p.locked = p.locked.min(p.stake);
        let slashed = from_stake + from_unbonding;
        let to_tenant = compensation.min(slashed);
        let to_reporter = (slashed - to_tenant) * self.reporter_bps / BPS;
        let treasury = self.treasury;
        for (who, amount) in [
            (tenant, to_tenant),
            (reporter, to_reporter),
            (treasury, slashed - to_tenant - to_reporter),
        ] {
            if amount != 0 {
                *self.slash_credits.entry(who).or_default() += amount;
            }
        }
        *self.slashed.entry(provider).or_default() += slashed;
        slashed
    }

    /// `Staking.withdrawCredit` by `who` to itself.
    pub fn withdraw_slash_credit(&mut self, who: Address) -> Outcome<u128> {
        let amount = self.slash_credits.remove(&who).unwrap_or(0);
        if amount == 0 {
            return Err("NothingToWithdraw");
        }
        self.give(who, amount);
        Ok(amount)
    }

    fn take(&mut self, who: Address, amount: u128) -> Outcome {
        let bal = self.balances.entry(who).or_default();
        if *bal < amount {
            return Err("balance");
        }
        *bal -= amount;
        Ok(())
    }

    fn give(&mut self, who: Address, amount: u128) {
        *self.balances.entry(who).or_default() += amount;
    }

    fn credit(&mut self, who: Address, amount: u128) {
        if amount != 0 {
            *self.credits.entry(who).or_default() += amount;
        }
    }

    fn fits(&self, provider: &Provider, o: &Order) -> bool {
        (provider.gpu_classes >> o.gpu_class) & 1 == 1
            && provider.gpu_count >= o.gpu_count
            && provider.vram_gib >= o.vram_gib
    }

    fn job(&mut self, id: B256) -> &mut Job {
        self.jobs.get_mut(&id).expect("known job")
    }

    fn status(&self, id: B256) -> Status {
        self.jobs.get(&id).map_or(Status::None, |j| j.status)
    }

    // ------------------------------------------------------------ staking

    /// `Staking.stake` by `owner`.
    pub fn stake(&mut self, owner: Address, amount: u128) -> Outcome {
        if amount == 0 {
            return Err("ZeroAmount");
        }
        if !self.providers.contains_key(&owner) {
            return Err("ProviderNotRegistered");
        }
        self.take(owner, amount)?;
        self.providers.get_mut(&owner).expect("registered").stake += amount;
        Ok(())
    }

    /// `Staking.unbond` by `owner`.
    pub fn unbond(&mut self, owner: Address, amount: u128) -> Outcome {
        let now = self.now;
        let period = self.unbonding_period;
        if amount == 0 {
            return Err("ZeroAmount");
        }
        let p = self
            .providers
            .get_mut(&owner)
            .ok_or("ProviderNotRegistered")?;
        if amount > p.stake - p.locked {
            return Err("InsufficientFreeStake");
        }
        p.stake -= amount;
        p.unbonding += amount;
        // Never brought forward (STK-16).
        p.release_at = p.release_at.max(now + period);
        Ok(())
    }

    /// `Staking.withdrawUnbonded` by `owner` to itself.
    pub fn withdraw_unbonded(&mut self, owner: Address) -> Outcome<u128> {
        let now = self.now;
        let p = self.providers.get_mut(&owner).ok_or("NothingToWithdraw")?;
        let amount = p.unbonding;
        if amount == 0 {
            return Err("NothingToWithdraw");
        }
        if now < p.release_at {
            return Err("UnbondingNotReleased");
        }
        (p.unbonding, p.release_at) = (0, 0);
        self.give(owner, amount);
        Ok(amount)
    }

    fn try_lock(&mut self, provider: Address, amount: u128) -> bool {
        let p = self.providers.get_mut(&provider).expect("registered");
        if amount > p.stake - p.locked {
            return false;
        }
        p.locked += amount;
        true
    }

    fn release(&mut self, provider: Address, amount: u128) {
        let p = self.providers.get_mut(&provider).expect("registered");
        p.locked -= amount.min(p.locked);
    }

    // ------------------------------------------------------------ market

    /// `Market.createOrder` by `tenant`; `id` is the content-addressed order id.
    pub fn create(&mut self, tenant: Address, id: B256, o: Order) -> Outcome {
        let p = &self.params;
        if p.paused {
            return Err("MarketPaused");
        }
        if o.deposit == 0
            || o.max_price < p.min_price
            || o.max_duration == 0
            || o.max_duration > p.max_lease
            || o.bid_window == 0
            || o.bid_window > p.max_bid_window
            || o.gpu_count == 0
            || o.gpu_class > 63
        {
            return Err("InvalidOrder");
        }
        if self.status(id) != Status::None {
            return Err("OrderExists");
        }
        self.take(tenant, o.deposit)?;
        let job = Job {
            tenant,
            status: Status::Open,
            escrow: o.deposit,
            bidding_end: self.now + o.bid_window,
            bidder: None,
            provider: Address::ZERO,
            rate: 0,
            start: 0,
            settled_at: 0,
            end: 0,
            held: false,
            low_balance: false,
            epoch: 0,
            protocol_fee_bps: 0,
            keeper_fee_bps: 0,
            deposited: o.deposit,
            paid: 0,
            settlements: 0,
            refunded: 0,
            order: o,
        };
        self.jobs.insert(id, job);
        Ok(())
    }

    /// `Market.bid` by `operator`.
    pub fn bid(&mut self, operator: Address, id: B256, price: u128) -> Outcome {
        if self.params.paused {
            return Err("MarketPaused");
        }
        if self.status(id) != Status::Open {
            return Err("OrderNotOpen");
        }
        let job = self.jobs[&id].clone();
        if self.now > job.bidding_end {
            return Err("BiddingClosed");
        }
        self.check_price(price, job.order.max_price)?;
        let provider = self.provider_of(operator).ok_or("NotAnOperator")?;
        let p = &self.providers[&provider];
        if p.stake - p.locked < job.order.collateral {
            return Err("InsufficientCollateral");
        }
        if !self.fits(p, &job.order) {
            return Err("CapacityMismatch");
        }
        if job.order.service && !self.live(provider) {
            return Err("ProviderNotLive");
        }
        if job.order.instant {
            if !self.try_lock(provider, job.order.collateral) {
                return Err("InsufficientCollateral");
            }
            self.start_lease(id, provider, price);
            return Ok(());
        }
        if let Some((_, best)) = job.bidder
            && price >= best
        {
            return Err("BidNotLowest");
        }
        self.job(id).bidder = Some((provider, price));
        Ok(())
    }

    /// `Market.award` with `offers` (signed bids); returns the winner.
    pub fn award(&mut self, id: B256, offers: &[Offer]) -> Outcome<Address> {
        if self.params.paused {
            return Err("MarketPaused");
        }
        if offers.len() > 32 {
            return Err("TooManySignedBids");
        }
        if self.status(id) != Status::Open {
            return Err("OrderNotOpen");
        }
        let job = self.jobs[&id].clone();
        if !job.order.instant && self.now <= job.bidding_end {
            return Err("BiddingStillOpen");
        }
        // Lowest valid signed bid, ties to the first.
        let mut best: Option<(Address, u128)> = None;
        for o in offers {
            if o.expiry < self.now
                || o.price > job.order.max_price
                || o.price < self.params.min_price
            {
                continue;
            }
            if best.is_some_and(|(_, b)| o.price >= b) || o.order != id {
                continue;
            }
            let Some(provider) = self.provider_of(o.signer) else {
                continue;
            };
            let p = &self.providers[&provider];
            if p.stake - p.locked < job.order.collateral || !self.fits(p, &job.order) {
                continue;
            }
            if job.order.service && !self.live(provider) {
                continue;
            }
            best = Some((provider, o.price));
        }
        self.job(id).bidder = None;
        let collateral = job.order.collateral;
        if let Some((onchain, price)) = job.bidder
            && best.is_none_or(|(_, b)| price <= b)
            && (!job.order.service || self.live(onchain))
            && self.try_lock(onchain, collateral)
        {
            self.start_lease(id, onchain, price);
            return Ok(onchain);
        }
        if let Some((signed, price)) = best
            && self.try_lock(signed, collateral)
        {
            self.start_lease(id, signed, price);
            return Ok(signed);
        }
        Err("NoValidBid")
    }

    /// `Market.settle` by `caller`; returns how many leases paid something.
    pub fn settle(&mut self, caller: Address, ids: &[B256]) -> Outcome<u64> {
        let mut settled = 0;
        for &id in ids {
            if self.status(id) != Status::Leased {
                continue;
            }
            if self.accrue(id, caller, true, true).paid != 0 {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// `Market.topUp` paid by `payer`.
    pub fn top_up(&mut self, payer: Address, id: B256, amount: u128, expected: Address) -> Outcome {
        if amount == 0 {
            return Err("ZeroAmount");
        }
        let status = self.status(id);
        if !matches!(status, Status::Open | Status::Leased) {
            return Err("LeaseNotActive");
        }
        if status == Status::Leased {
            if self.jobs[&id].provider != expected {
                return Err("ProviderMismatch");
            }
            self.accrue(id, payer, false, true);
            if self.jobs[&id].escrow == 0 {
                return Err("LeaseDepleted");
            }
        }
        let job = self.job(id);
        if job.escrow + amount >= 1 << 96 {
            return Err("EscrowOverflow");
        }
        job.escrow += amount;
        job.deposited += amount;
        job.low_balance = false;
        self.take(payer, amount)
    }

    /// `Market.close` by `caller`: the final settlement and the refund.
    pub fn close(&mut self, caller: Address, id: B256) -> Outcome<(Split, u128)> {
        if self.status(id) != Status::Leased {
            return Err("LeaseNotActive");
        }
        let job = self.jobs[&id].clone();
        let party = caller == job.tenant
            || caller == job.provider
            || self.provider_of(caller) == Some(job.provider);
        let split = self.accrue(id, caller, !party, false);
        let refund = self.jobs[&id].escrow;
        let closable = match job.held {
            true => self.now > job.end + self.challenge_window,
            false => self.now >= job.end || refund == 0,
        };
        if !party && !closable {
            return Err("LeaseNotClosable");
        }
        let j = self.job(id);
        (j.status, j.escrow, j.refunded) = (Status::Closed, 0, refund);
        self.give(job.tenant, refund);
        self.release(job.provider, job.order.collateral);
        Ok((split, refund))
    }

    /// `Market.cancelOrder` by `caller`: the refund.
    pub fn cancel(&mut self, caller: Address, id: B256) -> Outcome<u128> {
        if self.status(id) != Status::Open {
            return Err("OrderNotOpen");
        }
        let job = self.jobs[&id].clone();
        if caller != job.tenant && self.now <= job.bidding_end + self.params.award_grace {
            return Err("NotTenant");
        }
        let j = self.job(id);
        (j.status, j.escrow, j.bidder, j.refunded) = (Status::Cancelled, 0, None, job.escrow);
        self.give(job.tenant, job.escrow);
        Ok(job.escrow)
    }

    /// `Market.withdraw` by `who` to itself.
    pub fn withdraw(&mut self, who: Address) -> Outcome<u128> {
        let amount = self.credits.remove(&who).unwrap_or(0);
        if amount == 0 {
            return Err("NothingToWithdraw");
        }
        self.give(who, amount);
        Ok(amount)
    }

    /// `Market.withdrawFees`.
    pub fn withdraw_fees(&mut self) -> Outcome<u128> {
        let amount = std::mem::take(&mut self.fees);
        if amount == 0 {
            return Err("NothingToWithdraw");
        }
        let treasury = self.treasury;
        self.give(treasury, amount);
        Ok(amount)
    }

    fn check_price(&self, price: u128, max: u128) -> Outcome {
        if price > max {
            return Err("BidAboveReserve");
        }
        if price < self.params.min_price {
            return Err("BidBelowMinimum");
        }
        Ok(())
    }

    fn start_lease(&mut self, id: B256, provider: Address, price: u128) {
        let (now, p) = (self.now, self.params.clone());
        let job = self.job(id);
        job.status = Status::Leased;
        job.bidder = None;
        (job.provider, job.rate) = (provider, price);
        (job.start, job.settled_at, job.end) = (now, now, now + job.order.max_duration);
        (job.protocol_fee_bps, job.keeper_fee_bps) = (p.protocol_fee_bps, p.keeper_fee_bps);
        let epoch = self.providers[&provider].epoch;
        self.job(id).epoch = epoch;
    }

    /// `Staking.heartbeat` by the operator of `provider`.
    pub fn heartbeat(&mut self, provider: Address) -> Outcome {
        let (now, period) = (self.now, self.heartbeat_period);
        let p = self
            .providers
            .get_mut(&provider)
            .ok_or("ProviderNotRegistered")?;
        if p.beat_at != 0 && now > p.beat_at + period {
            p.epoch_end.insert(p.epoch, p.beat_at + period);
            p.epoch += 1;
        }
        p.beat_at = now;
        Ok(())
    }

    /// Whether `provider` heart-beat within the period.
    pub fn live(&self, provider: Address) -> bool {
        let p = &self.providers[&provider];
        p.beat_at != 0 && self.now <= p.beat_at + self.heartbeat_period
    }

    /// Until when lease `id` can accrue when `caller` settles it: a held lease not at all during
    /// its challenge window unless its tenant (accepting the result) calls.
    fn cap(&self, id: B256, caller: Address) -> u64 {
        let job = &self.jobs[&id];
        if job.held {
            let open = self.now > job.end + self.challenge_window || caller == job.tenant;
            return if open { u64::MAX } else { 0 };
        }
        if !job.order.service {
            return u64::MAX;
        }
        let p = &self.providers[&job.provider];
        if p.epoch != job.epoch {
            return p.epoch_end.get(&job.epoch).copied().unwrap_or(0);
        }
        p.beat_at + self.heartbeat_period
    }

    /// `Results.reportStale` (the order terms are the tenant's; `service`: a service lease).
    pub fn report_stale(&mut self, id: B256, service: bool) -> Outcome {
        if !service {
            return Err("NotAServiceLease");
        }
        let job = self.running(id)?;
        if self.live(job.provider) {
            return Err("ProviderLive");
        }
        let beat = self.providers[&job.provider].beat_at;
        let now = self.now;
        let since = self.stale_since.entry(id).or_insert(0);
        if *since == 0 || beat >= *since {
            *since = now;
        }
        Ok(())
    }

    /// `Results.proveStaleHeartbeat` by `reporter`.
    pub fn prove_stale(&mut self, reporter: Address, id: B256, service: bool) -> Outcome<u128> {
        if !service {
            return Err("NotAServiceLease");
        }
        let job = self.running(id)?;
        let since = self.stale_since.get(&id).copied().unwrap_or(0);
        if since == 0 || self.now < since + self.stale_grace {
            return Err("StaleNotProven");
        }
        if self.providers[&job.provider].beat_at >= since {
            return Err("HeartbeatResumed");
        }
        self.liveness_fault(reporter, id, job)
    }

    /// Pay lease `id` up to now: provider, protocol and (if `keeper_paid`) `caller` credited.
    /// `ongoing` is false when the lease closes right after (no low-balance flag then).
    fn accrue(&mut self, id: B256, caller: Address, keeper_paid: bool, ongoing: bool) -> Split {
        let (now, scale, window) = (self.now, self.scale, self.params.low_balance_window);
        let cap = self.cap(id, caller);
        let job = self.job(id);
        let until = now.min(job.end).min(cap);
        if until <= job.settled_at {
            return Split::default();
        }
        let amount = (job.rate * u128::from(until - job.settled_at) / scale).min(job.escrow);
        if amount == 0 {
            return Split::default();
        }
        let protocol_fee = amount * u128::from(job.protocol_fee_bps) / BPS;
        let keeper_fee = if keeper_paid {
            amount * u128::from(job.keeper_fee_bps) / BPS
        } else {
            0
        };
        job.escrow -= amount;
        job.settled_at = until;
        job.paid += amount;
        job.settlements += 1;
        if ongoing && !job.low_balance && job.escrow * scale < job.rate * u128::from(window) {
            job.low_balance = true;
        }
        let provider = job.provider;
        let split = Split {
            paid: amount,
            to_provider: amount - protocol_fee - keeper_fee,
            protocol_fee,
            keeper_fee,
        };
        self.credit(provider, split.to_provider);
        self.credit(caller, keeper_fee);
        self.keeper_fees += keeper_fee;
        self.fees += protocol_fee;
        split
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let owner = Address::with_last_byte(1);
        let params = Params {
            protocol_fee_bps: 100,
            keeper_fee_bps: 10,
            min_price: 1,
            max_bid_window: 600,
            award_grace: 60,
            low_balance_window: 600,
            max_lease: 3_600,
            paused: false,
        };
        let mut m = Model::new(1_000, params, Address::with_last_byte(9));
        m.providers.insert(
            owner,
            Provider {
                operator: Address::with_last_byte(2),
                gpu_classes: u64::MAX,
                gpu_count: 1,
                vram_gib: 80,
                stake: 1_000,
                ..Provider::default()
            },
        );
        m.balances.insert(Address::with_last_byte(3), 1_000_000_000);
        m
    }

    fn order(deposit: u128) -> Order {
        Order {
            deposit,
            max_price: 10u128.pow(15),
            max_duration: 3_600,
            bid_window: 60,
            collateral: 100,
            gpu_class: 0,
            gpu_count: 1,
            vram_gib: 16,
            instant: true,
            service: false,
        }
    }

    #[test]
    fn apply_keeps_model_unchanged_on_refusal() {
        let mut m = model();
        let before = m.balances.clone();
        let tenant = Address::with_last_byte(3);
        let err = m.apply(|m| m.create(tenant, B256::ZERO, order(0)));
        assert_eq!(err, Err("InvalidOrder"));
        assert_eq!(m.balances, before);
        assert!(m.jobs.is_empty());
    }

    #[test]
    fn settle_pays_rate_times_seconds_minus_fees() {
        let mut m = model();
        let (tenant, op, owner) = (
            Address::with_last_byte(3),
            Address::with_last_byte(2),
            Address::with_last_byte(1),
        );
        m.apply(|m| m.create(tenant, B256::ZERO, order(10_000_000)))
            .expect("create");
        m.apply(|m| m.bid(op, B256::ZERO, 10u128.pow(15)))
            .expect("instant bid");
        m.now += 100;
        let keeper = Address::with_last_byte(4);
        assert_eq!(m.settle(keeper, &[B256::ZERO, B256::ZERO]), Ok(1));
        // 0.001 token/s for 100 s = 0.1 token = 100,000 units (6 decimals).
        assert_eq!(m.jobs[&B256::ZERO].paid, 100_000);
        assert_eq!(m.fees, 1_000);
        assert_eq!(m.credits[&keeper], 100);
        assert_eq!(m.credits[&owner], 98_900);
        assert_eq!(m.providers[&owner].locked, 100);
        let (split, refund) = m.close(tenant, B256::ZERO).expect("close");
        assert_eq!((split, refund), (Split::default(), 9_900_000));
        assert_eq!(m.providers[&owner].locked, 0);
        assert_eq!(m.market_holdings(), 100_000);
        let job = &m.jobs[&B256::ZERO];
        assert_eq!(job.paid + job.refunded, job.deposited);
    }
}
