//! A deployed gridlease suite on the in-process chain, with named accounts and one helper per
//! protocol step. Tests read as the protocol does: register, stake, order, bid, award, settle.

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U48, aliases::U96},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolConstructor},
};
use gridlease_bindings::{
    IMarket::{OrderParams, Params, SignedBid},
    IStaking::Capacity,
    Market, MarketAdmin, MarketLens, MockStablecoin, Results, Staking, Timelock, admin, lens,
};
use gridlease_core::{
    eip712::{Bid, OperatorConsent, Permit, market_domain, permit_domain, staking_domain},
    merkle::Commitment,
};

use crate::evm::{CHAIN_ID, Chain, Receipt};

/// One USDC (6 decimals).
pub const USDC: u128 = 1_000_000;
/// One token per second as an 18-decimal rate.
pub const PER_SECOND: u128 = 1_000_000_000_000_000_000;
/// A typical GPU price: 0.001 USDC a second (3.6 USDC an hour).
pub const PRICE: u128 = PER_SECOND / 1_000;
/// Staking unbonding period used by the fixture.
pub const UNBONDING: u64 = 14 * 86_400;
/// A closed lease's collateral stays held (and its faults provable) this long
/// (`MarketAdmin.faultHorizon`).
pub const FAULT_HORIZON: u64 = 2 * 86_400;
/// Heartbeat period of new epochs.
pub const HEARTBEAT: u64 = 300;
/// Seconds a posted result is held and can be challenged or proven wrong.
pub const CHALLENGE_WINDOW: u64 = 86_400;
/// Seconds a provider has to acknowledge a new lease.
pub const START_WINDOW: u64 = 600;
/// Seconds a reported heartbeat lapse must last before it is slashable.
pub const STALE_GRACE: u64 = 900;
/// Seconds after a batch lease's end its result is still accepted.
pub const DEADLINE_GRACE: u64 = 300;
/// Seconds to reveal a challenged chunk.
pub const RESPONSE_WINDOW: u64 = 600;
/// Wei bonded per data-availability challenge.
pub const CHALLENGE_BOND: u128 = 1_000_000_000_000_000;
/// A third-party reporter's share of what a fault returns to the tenant.
pub const FAULT_FEE_BPS: u16 = 500;
/// Seconds after a fault becomes provable during which a proof earns no fee.
pub const TENANT_PRIORITY: u64 = 3_600;

/// A key the test controls.
#[derive(Clone, Debug)]
pub struct Account {
    /// The signer.
    pub key: PrivateKeySigner,
    /// Its address.
    pub address: Address,
}

impl Account {
    /// Deterministic account number `n` (never the zero key).
    pub fn numbered(n: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&(n + 0x1000).to_be_bytes());
        let key = PrivateKeySigner::from_bytes(&B256::from(bytes)).expect("valid key");
        Self {
            address: key.address(),
            key,
        }
    }
}

/// A registered provider: its owner (cold key) and operator (hot key).
#[derive(Clone, Debug)]
pub struct ProviderKeys {
    /// Owner: stakes, withdraws, is paid.
    pub owner: Account,
    /// Operator: bids and signs bids.
    pub operator: Account,
}

/// The deployed suite.
pub struct Suite {
    /// The chain.
    pub chain: Chain,
    /// Governance.
    pub gov: Account,
    /// Treasury.
    pub treasury: Account,
    /// Tenants.
    pub tenants: Vec<Account>,
    /// Providers (registered on demand).
    pub providers: Vec<ProviderKeys>,
    /// A third-party keeper.
    pub keeper: Account,
    /// The payment and stake token (6-decimals USDC-like mock).
    pub token: Address,
    /// Staking.
    pub staking: Address,
    /// Market (its cold paths, `MarketAdmin`, are called at this address too).
    pub market: Address,
    /// The `MarketAdmin` code behind the market's fallback.
    pub admin: Address,
    /// Results (result commitments, data availability, faults).
    pub results: Address,
    /// Views of the market.
    pub lens: Address,
    /// The timelock owning market and staking, when deployed with one.
    pub timelock: Option<Address>,
    /// Id of the last order created through the helpers.
    pub last_order_id: B256,
    /// Salt of the last order made by [`Suite::fresh_order`].
    pub salt: u64,
}

/// A governance operation scheduled on the timelock.
#[derive(Clone, Debug)]
pub struct Scheduled {
    /// The contract it calls.
    pub target: Address,
    /// The call.
    pub data: Bytes,
    /// Its salt (unique per operation).
    pub salt: B256,
}

/// The parameters the fixture deploys with.
pub fn default_params() -> Params {
    Params {
        protocolFeeBps: 100,
        keeperFeeBps: 10,
        minPricePerSecond: 1_000_000_000,
        maxBidWindow: 86_400,
        awardGrace: 3_600,
        lowBalanceWindow: 600,
        maxLeaseDuration: 7 * 86_400,
        minBillingPeriod: 60,
        paused: false,
        module: 0,
    }
}

/// `admin::IMarket::Params` of `p` (the admin binding's own copy of the struct).
pub fn admin_params(p: Params) -> admin::IMarket::Params {
    admin::IMarket::Params {
        protocolFeeBps: p.protocolFeeBps,
        keeperFeeBps: p.keeperFeeBps,
        minPricePerSecond: p.minPricePerSecond,
        maxBidWindow: p.maxBidWindow,
        awardGrace: p.awardGrace,
        lowBalanceWindow: p.lowBalanceWindow,
        maxLeaseDuration: p.maxLeaseDuration,
        minBillingPeriod: p.minBillingPeriod,
        paused: p.paused,
        module: p.module,
    }
}

/// Capacity that matches every default order.
pub fn big_capacity() -> Capacity {
    Capacity {
        gpuClasses: u64::MAX,
        gpuCount: 8,
        vramGiB: 80,
    }
}

impl Default for Suite {
    fn default() -> Self {
        Self::new()
    }
}

impl Suite {
    /// Deploy token, staking, market (with its admin code), results and lens, owned by the `gov`
    /// account; mint to tenants and providers.
    pub fn new() -> Self {
        Self::deploy(None)
    }

    /// The same suite owned by a `Timelock` of `delay` seconds whose proposer and executor is
    /// `gov` (every governance call through [`Suite::govern`] is scheduled, waited and executed).
    pub fn with_timelock(delay: u64) -> Self {
        Self::deploy(Some(delay))
    }

    fn deploy(timelock_delay: Option<u64>) -> Self {
        let mut chain = Chain::new();
        let gov = Account::numbered(1);
        let treasury = Account::numbered(2);
        let keeper = Account::numbered(3);
        let tenants: Vec<Account> = (10..14).map(Account::numbered).collect();
        let providers: Vec<ProviderKeys> = (0..12)
            .map(|i| ProviderKeys {
                owner: Account::numbered(100 + i),
                operator: Account::numbered(200 + i),
            })
            .collect();
        for a in [&gov, &treasury, &keeper].into_iter().chain(&tenants) {
            chain.fund(a.address);
        }
        for p in &providers {
            chain.fund(p.owner.address);
            chain.fund(p.operator.address);
        }

        let token = deploy_token(&mut chain, gov.address, "USD Coin", "USDC", 6);
        let g = gov.address;
        let staking = chain.deploy(
            g,
            creation(
                &Staking::BYTECODE,
                Staking::constructorCall {
                    token,
                    owner_: g,
                    treasury_: treasury.address,
                    unbondingPeriod_: U48::from(UNBONDING),
                    heartbeatPeriod_: HEARTBEAT as u16,
                }
                .abi_encode(),
            ),
        );
        let admin = chain.deploy(
            g,
            creation(
                &MarketAdmin::BYTECODE,
                MarketAdmin::constructorCall {
                    staking_: staking,
                    faultHorizon_: U256::from(FAULT_HORIZON),
                }
                .abi_encode(),
            ),
        );
        let market = chain.deploy(
            g,
            creation(
                &Market::BYTECODE,
                Market::constructorCall {
                    staking_: staking,
                    owner_: g,
                    treasury_: treasury.address,
                    admin_: admin,
                }
                .abi_encode(),
            ),
        );
        chain
            .send(g, staking, Staking::setMarketCall { market_: market })
            .expect_success();
        chain
            .send(
                g,
                market,
                MarketAdmin::setParamsCall {
                    params_: admin_params(default_params()),
                },
            )
            .expect_success();
        let results = deploy_results(&mut chain, g, market, CHALLENGE_WINDOW);
        chain
            .send(g, market, MarketAdmin::addModuleCall { module: results })
            .expect_success();
        chain
            .send(
                g,
                market,
                MarketAdmin::configureTokenCall {
                    token,
                    allowed: true,
                },
            )
            .expect_success();
        let lens = chain.deploy(
            g,
            creation(
                &MarketLens::BYTECODE,
                MarketLens::constructorCall { market_: market }.abi_encode(),
            ),
        );
        let timelock = timelock_delay.map(|delay| {
            let tl = chain.deploy(
                g,
                creation(
                    &Timelock::BYTECODE,
                    Timelock::constructorCall {
                        minDelay: U256::from(delay),
                        proposers: vec![g],
                        executors: vec![g],
                        admin: Address::ZERO,
                    }
                    .abi_encode(),
                ),
            );
            for target in [market, staking] {
                chain
                    .send(g, target, Market::transferOwnershipCall { newOwner: tl })
                    .expect_success();
            }
            tl
        });

        let mut suite = Self {
            chain,
            gov,
            treasury,
            tenants,
            providers,
            keeper,
            token,
            staking,
            market,
            admin,
            results,
            lens,
            timelock,
            last_order_id: B256::ZERO,
            salt: 0x5a17,
        };
        if let Some(tl) = timelock {
            // Ownable2Step: the timelock accepts ownership through its own delay.
            for target in [market, staking] {
                suite
                    .govern(target, Market::acceptOwnershipCall {})
                    .expect_success();
            }
            let _ = tl;
        }
        for t in suite.tenants.clone() {
            suite.mint(suite.token, t.address, 1_000_000 * USDC);
        }
        for p in suite.providers.clone() {
            suite.mint(suite.token, p.owner.address, 1_000_000 * USDC);
        }
        suite
    }

    /// Set the market's parameters (through governance).
    pub fn set_params(&mut self, params: Params) -> Receipt {
        let market = self.market;
        self.govern(
            market,
            MarketAdmin::setParamsCall {
                params_: admin_params(params),
            },
        )
    }

    /// `from` cancels order `id`.
    pub fn cancel(&mut self, from: Address, id: B256) -> Receipt {
        let market = self.market;
        self.chain
            .send(from, market, MarketAdmin::cancelOrderCall { orderId: id })
    }

    /// Execute a governance call on `target`: directly from the owner, or through the timelock
    /// (scheduled, the delay waited, executed) when the suite has one.
    pub fn govern<C: SolCall>(&mut self, target: Address, call: C) -> Receipt {
        let g = self.gov.address;
        let Some(tl) = self.timelock else {
            return self.chain.send(g, target, call);
        };
        let op = self.schedule(target, call);
        let delay = self.chain.view(tl, Timelock::getMinDelayCall {});
        self.chain.warp(delay.saturating_to());
        self.execute(&op)
    }

    /// Schedule `call` on `target` through the timelock (with its minimum delay).
    pub fn schedule<C: SolCall>(&mut self, target: Address, call: C) -> Scheduled {
        let (g, tl) = (
            self.gov.address,
            self.timelock.expect("a suite with a timelock"),
        );
        self.salt += 1;
        let op = Scheduled {
            target,
            data: call.abi_encode().into(),
            salt: B256::from(U256::from(self.salt)),
        };
        let delay = self.chain.view(tl, Timelock::getMinDelayCall {});
        self.chain
            .send(
                g,
                tl,
                Timelock::scheduleCall {
                    target,
                    value: U256::ZERO,
                    data: op.data.clone(),
                    predecessor: B256::ZERO,
                    salt: op.salt,
                    delay,
                },
            )
            .expect_success();
        op
    }

    /// Execute a scheduled operation (reverts before its delay has passed).
    pub fn execute(&mut self, op: &Scheduled) -> Receipt {
        let (g, tl) = (
            self.gov.address,
            self.timelock.expect("a suite with a timelock"),
        );
        self.chain.send(
            g,
            tl,
            Timelock::executeCall {
                target: op.target,
                value: U256::ZERO,
                payload: op.data.clone(),
                predecessor: B256::ZERO,
                salt: op.salt,
            },
        )
    }

    /// Tenant `i`.
    pub fn tenant(&self, i: usize) -> Address {
        self.tenants[i].address
    }

    /// Owner address of provider `i`.
    pub fn provider(&self, i: usize) -> Address {
        self.providers[i].owner.address
    }

    /// Operator address of provider `i`.
    pub fn operator(&self, i: usize) -> Address {
        self.providers[i].operator.address
    }

    /// Mint `amount` of a mock token (anyone may mint the mocks).
    pub fn mint(&mut self, token: Address, to: Address, amount: u128) {
        self.chain
            .send(
                to,
                token,
                MockStablecoin::mintCall {
                    to,
                    amount: U256::from(amount),
                },
            )
            .expect_success();
    }

    /// Approve `spender` for `amount` of `token` from `owner`.
    pub fn approve(&mut self, token: Address, owner: Address, spender: Address, amount: u128) {
        self.chain
            .send(
                owner,
                token,
                MockStablecoin::approveCall {
                    spender,
                    value: U256::from(amount),
                },
            )
            .expect_success();
    }

    /// Token balance.
    pub fn balance(&mut self, token: Address, who: Address) -> u128 {
        self.chain
            .view(token, MockStablecoin::balanceOfCall { account: who })
            .saturating_to()
    }

    /// The operator of provider `i`'s consent to serve `provider`, valid for an hour.
    pub fn consent(&mut self, operator: &Account, provider: Address) -> (U256, Bytes) {
        let nonce = self.chain.view(
            self.staking,
            Staking::operatorNonceCall {
                operator: operator.address,
            },
        );
        let deadline = self.chain.now() + 3_600;
        let sig = OperatorConsent::new(provider, operator.address, nonce, deadline)
            .sign(&staking_domain(CHAIN_ID, self.staking), &operator.key)
            .expect("sign consent");
        (U256::from(deadline), Bytes::from(sig.as_bytes().to_vec()))
    }

    /// Register provider `i` with the default capacity (no collateral ceiling) and stake `stake`
    /// units.
    pub fn register(&mut self, i: usize, stake: u128) {
        let r = self.try_register(i, U96::MAX);
        r.expect_success();
        if stake > 0 {
            self.stake(i, stake);
        }
    }

    /// Try to register provider `i` with collateral ceiling `ceiling`.
    pub fn try_register(&mut self, i: usize, ceiling: U96) -> Receipt {
        let owner = self.provider(i);
        let op = self.providers[i].operator.clone();
        let (consent_deadline, consent) = self.consent(&op, owner);
        self.chain.send(
            owner,
            self.staking,
            Staking::registerCall {
                operator: op.address,
                capacity: big_capacity(),
                metadataURI: format!("https://p{i}.example"),
                ceiling,
                consentDeadline: consent_deadline,
                consent,
            },
        )
    }

    /// Provider `i` stakes `amount` more.
    pub fn stake(&mut self, i: usize, amount: u128) {
        let owner = self.provider(i);
        let (token, staking) = (self.token, self.staking);
        self.approve(token, owner, staking, amount);
        self.chain
            .send(
                owner,
                staking,
                Staking::stakeCall {
                    amount: U256::from(amount),
                },
            )
            .expect_success();
    }

    /// Default order terms: `deposit` escrow, reserve `max_price`, one hour, 10 minute bids, a
    /// container job with 100 USDC collateral.
    pub fn order(&self, deposit: u128, max_price: u128) -> OrderParams {
        OrderParams {
            specHash: B256::repeat_byte(0xab),
            specURI: "ipfs://spec".into(),
            token: self.token,
            deposit: U96::from(deposit),
            maxPricePerSecond: U96::from(max_price),
            maxDuration: 3_600,
            bidWindow: 600,
            collateral: U96::from(100 * USDC),
            gpuClass: 3,
            gpuCount: 1,
            vramGiB: 24,
            cpuCores: 8,
            ramGiB: 32,
            jobKind: 0,
            instant: false,
            salt: B256::with_last_byte(1),
        }
    }

    /// Create an order with a prior approval; returns the id.
    pub fn create(&mut self, tenant: usize, params: OrderParams) -> B256 {
        let r = self.try_create(tenant, params);
        r.expect_success();
        self.last_order_id
    }

    /// Try to create an order with a prior approval.
    pub fn try_create(&mut self, tenant: usize, params: OrderParams) -> Receipt {
        let who = self.tenant(tenant);
        let deposit: u128 = params.deposit.to();
        let (token, market) = (params.token, self.market);
        self.approve(token, who, market, deposit);
        let r = self
            .chain
            .send(who, market, Market::createOrderCall { p: params });
        if r.success {
            self.last_order_id = B256::from_slice(&r.output[..32]);
        }
        r
    }

    /// Create an order paying with an EIP-2612 permit signed by the tenant.
    pub fn create_with_permit(&mut self, tenant: usize, params: OrderParams) -> Receipt {
        let (v, r, s, deadline) = self.permit(tenant, params.token, params.deposit.to());
        let who = self.tenant(tenant);
        let market = self.market;
        let receipt = self.chain.send(
            who,
            market,
            Market::createOrderWithPermitCall {
                p: params,
                deadline,
                v,
                r,
                s,
            },
        );
        if receipt.success {
            self.last_order_id = B256::from_slice(&receipt.output[..32]);
        }
        receipt
    }

    /// Sign a permit of `amount` from tenant `i` to the market: (v, r, s, deadline).
    pub fn permit(
        &mut self,
        tenant: usize,
        token: Address,
        amount: u128,
    ) -> (u8, B256, B256, U256) {
        let owner = self.tenants[tenant].clone();
        let nonce = self.chain.view(
            token,
            MockStablecoin::noncesCall {
                owner: owner.address,
            },
        );
        let name = self.chain.view(token, MockStablecoin::nameCall {});
        let deadline = U256::from(self.chain.now() + 3_600);
        let permit = Permit {
            owner: owner.address,
            spender: self.market,
            value: U256::from(amount),
            nonce,
            deadline,
        };
        let sig = permit
            .sign(&permit_domain(&name, CHAIN_ID, token), &owner.key)
            .expect("sign permit");
        (
            27 + u8::from(sig.v()),
            sig.r().into(),
            sig.s().into(),
            deadline,
        )
    }

    /// Provider `i`'s operator bids on chain.
    pub fn bid(&mut self, i: usize, id: B256, price: u128) -> Receipt {
        let (op, market) = (self.operator(i), self.market);
        self.chain.send(
            op,
            market,
            Market::bidCall {
                orderId: id,
                price: U96::from(price),
            },
        )
    }

    /// Provider `i`'s operator signs a bid valid for an hour.
    pub fn signed_bid(&self, i: usize, id: B256, price: u128) -> SignedBid {
        let expiry = self.chain.now() + 3_600;
        let sig = Bid::new(id, price, expiry)
            .sign(
                &market_domain(CHAIN_ID, self.market),
                &self.providers[i].operator.key,
            )
            .expect("sign bid");
        SignedBid {
            pricePerSecond: U96::from(price),
            expiry: alloy::primitives::aliases::U48::from(expiry),
            signature: Bytes::from(sig.as_bytes().to_vec()),
        }
    }

    /// Award `id` from `from` with `signed` bids.
    pub fn award(&mut self, from: Address, id: B256, signed: Vec<SignedBid>) -> Receipt {
        let market = self.market;
        self.chain.send(
            from,
            market,
            Market::awardCall {
                orderId: id,
                signedBids: signed,
            },
        )
    }

    /// Settle `ids` from `from`.
    pub fn settle(&mut self, from: Address, ids: Vec<B256>) -> Receipt {
        let market = self.market;
        self.chain
            .send(from, market, Market::settleCall { leaseIds: ids })
    }

    /// Close `id` from `from`.
    pub fn close(&mut self, from: Address, id: B256) -> Receipt {
        let market = self.market;
        self.chain
            .send(from, market, Market::closeCall { leaseId: id })
    }

    /// Default order terms with a salt no earlier helper order used.
    pub fn fresh_order(&mut self, deposit: u128, max_price: u128) -> OrderParams {
        self.salt += 1;
        let mut p = self.order(deposit, max_price);
        p.salt = B256::from(U256::from(self.salt));
        p
    }

    /// An instant batch lease (container job) of tenant `tenant` won by provider `provider`'s
    /// on-chain bid at `PRICE`: acknowledged from the start.
    pub fn instant_lease(&mut self, tenant: usize, provider: usize, deposit: u128) -> B256 {
        self.ensure_registered(provider);
        let mut p = self.fresh_order(deposit, PRICE * 2);
        p.instant = true;
        let id = self.create(tenant, p);
        self.bid(provider, id, PRICE).expect_success();
        id
    }

    /// An instant service lease of tenant `tenant` won by provider `provider` (which beats first)
    /// at `PRICE`: acknowledged from the start.
    pub fn service_lease(&mut self, tenant: usize, provider: usize, deposit: u128) -> B256 {
        self.service_lease_for(tenant, provider, deposit, 3_600)
    }

    /// [`Self::service_lease`] of `secs` maximum duration.
    pub fn service_lease_for(
        &mut self,
        tenant: usize,
        provider: usize,
        deposit: u128,
        secs: u32,
    ) -> B256 {
        self.ensure_registered(provider);
        self.heartbeat(provider).expect_success();
        let mut p = self.fresh_order(deposit, PRICE * 2);
        (p.jobKind, p.instant, p.maxDuration) = (2, true, secs);
        let id = self.create(tenant, p);
        self.bid(provider, id, PRICE).expect_success();
        id
    }

    /// Let `secs` pass with provider `i` beating at least every 200 s (and once at the end).
    pub fn keep_alive(&mut self, i: usize, secs: u64) {
        let mut left = secs;
        while left > 0 {
            let step = left.min(200);
            self.chain.warp(step);
            self.heartbeat(i).expect_success();
            left -= step;
        }
    }

    /// A lease: tenant 0 orders, provider 0 (staked) bids `PRICE`, keeper awards after the window.
    pub fn lease(&mut self, deposit: u128) -> B256 {
        let params = self.order(deposit, PRICE * 2);
        self.lease_with(0, 0, params)
    }

    /// A lease of `params`: tenant `tenant` orders, provider `provider` (staked on demand) bids
    /// `PRICE` on chain, the keeper awards after the window.
    pub fn lease_with(&mut self, tenant: usize, provider: usize, params: OrderParams) -> B256 {
        self.ensure_registered(provider);
        let window = u64::from(params.bidWindow);
        let id = self.create(tenant, params);
        self.bid(provider, id, PRICE).expect_success();
        self.chain.warp(window + 1);
        let keeper = self.keeper.address;
        self.award(keeper, id, vec![]).expect_success();
        id
    }

    /// `from` tops up `id` by `amount` (approved first), naming `expected` as its provider.
    pub fn top_up(&mut self, from: Address, id: B256, amount: u128, expected: Address) -> Receipt {
        let (token, market) = (self.token, self.market);
        self.approve(token, from, market, amount);
        let call = MarketAdmin::topUpCall {
            id,
            amount: U96::from(amount),
            expectedProvider: expected,
        };
        self.chain.send(from, market, call)
    }

    /// Register and stake provider `i` (10,000 USDC) unless it already is.
    pub fn ensure_registered(&mut self, i: usize) {
        let info = self.chain.view(
            self.staking,
            Staking::providerInfoCall {
                provider: self.provider(i),
            },
        );
        if info.operator == Address::ZERO {
            self.register(i, 10_000 * USDC);
        }
    }

    /// The order or lease `id` (from the lens).
    pub fn job(&mut self, id: B256) -> lens::IMarket::JobView {
        self.chain.view(self.lens, MarketLens::getJobCall { id })
    }

    /// The results module lease `id` is bound to.
    pub fn lens_module_of(&mut self, id: B256) -> Address {
        self.job(id).module
    }

    /// Market credit of `who` in the suite token.
    pub fn credit(&mut self, who: Address) -> u128 {
        let token = self.token;
        self.credit_in(token, who)
    }

    /// Market credit of `who` in `token`.
    pub fn credit_in(&mut self, token: Address, who: Address) -> u128 {
        self.chain
            .view(
                self.lens,
                MarketLens::creditOfCall {
                    token,
                    account: who,
                },
            )
            .saturating_to()
    }

    /// Staking credit (slash proceeds) of `who`.
    pub fn staking_credit(&mut self, who: Address) -> u128 {
        self.chain
            .view(self.staking, Staking::creditOfCall { account: who })
            .saturating_to()
    }

    /// Provider `i`'s stake record.
    pub fn provider_info(&mut self, i: usize) -> gridlease_bindings::IStaking::ProviderView {
        let provider = self.provider(i);
        self.chain
            .view(self.staking, Staking::providerInfoCall { provider })
    }

    /// Provider `i`'s operator acknowledges lease `id`.
    pub fn ack(&mut self, i: usize, id: B256) -> Receipt {
        let (op, results) = (self.operator(i), self.results);
        self.chain
            .send(op, results, Results::acknowledgeCall { leaseId: id })
    }

    /// Provider `i`'s operator posts `data` as the result of lease `id`; returns the receipt and
    /// the commitment.
    pub fn post(&mut self, i: usize, id: B256, data: &[u8]) -> (Receipt, Commitment) {
        let c = Commitment::of(data);
        (self.post_commitment(i, id, c), c)
    }

    /// Provider `i`'s operator posts the commitment `c` (whatever its data) for lease `id`.
    pub fn post_commitment(&mut self, i: usize, id: B256, c: Commitment) -> Receipt {
        let (op, results) = (self.operator(i), self.results);
        self.chain.send(
            op,
            results,
            Results::postResultCall {
                leaseId: id,
                root: c.root,
                size: c.size,
                uri: format!("https://p{i}.example/results/{id}"),
                metaHash: B256::repeat_byte(1),
            },
        )
    }

    /// Provider `i`'s operator beats.
    pub fn heartbeat(&mut self, i: usize) -> Receipt {
        let (op, staking) = (self.operator(i), self.staking);
        self.chain.send(op, staking, Staking::heartbeatCall {})
    }

    /// `from` challenges chunk `index` of the result `c` of lease `id`, bonding `CHALLENGE_BOND`.
    pub fn challenge(&mut self, from: Address, id: B256, c: Commitment, index: u64) -> Receipt {
        let results = self.results;
        self.chain.send_value(
            from,
            results,
            Results::challengeCall {
                leaseId: id,
                root: c.root,
                size: c.size,
                index: U256::from(index),
            },
            CHALLENGE_BOND,
        )
    }

    /// `from` reveals chunk `index` of `data` (the result of lease `id`) with its proof.
    pub fn answer(&mut self, from: Address, id: B256, data: &[u8], index: u64) -> Receipt {
        let c = Commitment::of(data);
        let tree = gridlease_core::merkle::MerkleTree::result(data);
        let results = self.results;
        self.chain.send(
            from,
            results,
            Results::answerCall {
                leaseId: id,
                root: c.root,
                size: c.size,
                index: U256::from(index),
                chunk: gridlease_core::merkle::result_chunk(data, index)
                    .to_vec()
                    .into(),
                proof: tree.proof(index),
            },
        )
    }

    /// The lease's (tenant, terms) as `Results` proofs take them, for an order created through the
    /// helpers by tenant `tenant`.
    pub fn terms(
        &self,
        tenant: usize,
        params: &OrderParams,
    ) -> (Address, gridlease_bindings::results::IMarket::OrderParams) {
        (self.tenant(tenant), params.clone().into())
    }

    /// Deploy another mock token (any decimals) and allow it in the market.
    pub fn add_token(&mut self, name: &str, symbol: &str, decimals: u8) -> Address {
        let gov = self.gov.address;
        let token = deploy_token(&mut self.chain, gov, name, symbol, decimals);
        let market = self.market;
        self.govern(
            market,
            MarketAdmin::configureTokenCall {
                token,
                allowed: true,
            },
        )
        .expect_success();
        token
    }
}

/// Creation code followed by ABI-encoded constructor arguments.
pub fn creation(code: &Bytes, args: Vec<u8>) -> Bytes {
    let mut out = code.to_vec();
    out.extend_from_slice(&args);
    out.into()
}

/// Deploy a `Results` module for `market` with the fixture's windows and `challenge_window`.
pub fn deploy_results(
    chain: &mut Chain,
    from: Address,
    market: Address,
    challenge_window: u64,
) -> Address {
    chain.deploy(
        from,
        creation(
            &Results::BYTECODE,
            Results::constructorCall {
                market_: market,
                challengeWindow_: U48::from(challenge_window),
                startWindow_: START_WINDOW as u32,
                staleGrace_: STALE_GRACE as u32,
                deadlineGrace_: DEADLINE_GRACE as u32,
                responseWindow_: RESPONSE_WINDOW as u32,
                challengeBond_: U256::from(CHALLENGE_BOND),
                faultFeeBps_: FAULT_FEE_BPS,
                tenantPriority_: TENANT_PRIORITY as u32,
            }
            .abi_encode(),
        ),
    )
}

/// Deploy a [`MockStablecoin`].
pub fn deploy_token(
    chain: &mut Chain,
    from: Address,
    name: &str,
    symbol: &str,
    decimals: u8,
) -> Address {
    chain.deploy(
        from,
        creation(
            &MockStablecoin::BYTECODE,
            MockStablecoin::constructorCall {
                name_: name.into(),
                symbol_: symbol.into(),
                decimals_: decimals,
            }
            .abi_encode(),
        ),
    )
}

/// `Results.proveMatmulDataFraud` for lease `id` of `tenant`'s order `params`, a data job `d`,
/// its posted result `c`, and the wrong element `f` that `matmul::localize` found.
pub fn data_fraud_call(
    id: B256,
    tenant: Address,
    params: OrderParams,
    d: &gridlease_core::matmul::MatmulData,
    c: Commitment,
    f: &gridlease_core::matmul::FraudProof,
) -> gridlease_bindings::Results::proveMatmulDataFraudCall {
    use gridlease_bindings::results::MatmulProof::{DataJob, Operands};
    let p = d.input_proof(f.i, f.j);
    gridlease_bindings::Results::proveMatmulDataFraudCall {
        leaseId: id,
        tenant,
        terms: params.into(),
        job: DataJob {
            aRoot: d.a_tree().root(),
            bRoot: d.b_tree().root(),
            m: d.m,
            k: d.k,
            n: d.n,
        },
        root: c.root,
        size: c.size,
        i: U256::from(f.i),
        j: U256::from(f.j),
        ops: Operands {
            aRow: p.a_row.into(),
            aProof: p.a_proof,
            bCol: p.b_col.into(),
            bProof: p.b_proof,
        },
        leaf: f.leaf.clone().into(),
        proof: f.proof.clone(),
    }
}
