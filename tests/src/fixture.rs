//! A deployed gridlease suite on the in-process chain, with named accounts and one helper per
//! protocol step. Tests read as the protocol does: register, stake, order, bid, award, settle.

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U96},
    signers::local::PrivateKeySigner,
    sol_types::SolConstructor,
};
use gridlease_bindings::{
    IMarket::{OrderParams, Params, SignedBid},
    IStaking::Capacity,
    Market, MockStablecoin, Staking,
};
use gridlease_core::eip712::{Bid, Permit, market_domain, permit_domain};

use crate::evm::{CHAIN_ID, Chain, Receipt};

/// One USDC (6 decimals).
pub const USDC: u128 = 1_000_000;
/// One token per second as an 18-decimal rate.
pub const PER_SECOND: u128 = 1_000_000_000_000_000_000;
/// A typical GPU price: 0.001 USDC a second (3.6 USDC an hour).
pub const PRICE: u128 = PER_SECOND / 1_000;
/// Staking unbonding period used by the fixture.
pub const UNBONDING: u64 = 14 * 86_400;
/// Seconds a posted result can be proven wrong.
pub const CHALLENGE_WINDOW: u64 = 86_400;
/// Seconds a provider has to acknowledge a new lease.
pub const START_WINDOW: u64 = 600;
/// Seconds a reported heartbeat lapse must last before it is slashable.
pub const STALE_GRACE: u64 = 900;

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
    /// Market.
    pub market: Address,
    /// Results (result commitments, fraud proofs).
    pub results: Address,
    /// Id of the last order created through the helpers.
    pub last_order_id: B256,
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
        paused: false,
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
    /// Deploy token, staking and market; mint to tenants and providers.
    pub fn new() -> Self {
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
        let staking = chain.deploy(
            gov.address,
            creation(
                &Staking::BYTECODE,
                Staking::constructorCall {
                    token,
                    owner_: gov.address,
                    treasury_: treasury.address,
                    unbondingPeriod_: alloy::primitives::aliases::U48::from(UNBONDING),
                    reporterBps_: 1_000,
                }
                .abi_encode(),
            ),
        );
        let market = chain.deploy(
            gov.address,
            creation(
                &Market::BYTECODE,
                Market::constructorCall {
                    staking_: staking,
                    owner_: gov.address,
                    treasury_: treasury.address,
                    params_: default_params(),
                }
                .abi_encode(),
            ),
        );
        chain
            .send(
                gov.address,
                staking,
                Staking::setMarketCall { market_: market },
            )
            .expect_success();
        let results = chain.deploy(
            gov.address,
            creation(
                &gridlease_bindings::Results::BYTECODE,
                gridlease_bindings::Results::constructorCall {
                    market_: market,
                    challengeWindow_: alloy::primitives::aliases::U48::from(CHALLENGE_WINDOW),
                    startWindow_: START_WINDOW as u32,
                    staleGrace_: STALE_GRACE as u32,
                }
                .abi_encode(),
            ),
        );
        chain
            .send(
                gov.address,
                market,
                Market::setResultsCall { results_: results },
            )
            .expect_success();
        chain
            .send(
                gov.address,
                market,
                Market::configureTokenCall {
                    token,
                    allowed: true,
                },
            )
            .expect_success();

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
            results,
            last_order_id: B256::ZERO,
        };
        for t in suite.tenants.clone() {
            suite.mint(suite.token, t.address, 1_000_000 * USDC);
        }
        for p in suite.providers.clone() {
            suite.mint(suite.token, p.owner.address, 1_000_000 * USDC);
        }
        suite
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

    /// Register provider `i` with the default capacity and stake `stake` units.
    pub fn register(&mut self, i: usize, stake: u128) {
        let (owner, operator) = (self.provider(i), self.operator(i));
        self.chain
            .send(
                owner,
                self.staking,
                Staking::registerCall {
                    operator,
                    capacity: big_capacity(),
                    metadataURI: format!("https://p{i}.example"),
                },
            )
            .expect_success();
        if stake > 0 {
            self.stake(i, stake);
        }
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

    /// Default order terms: `deposit` escrow, reserve `max_price`, one hour, 10 minute bids.
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
        let call = Market::topUpCall {
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

    /// The order or lease `id`.
    pub fn job(&mut self, id: B256) -> gridlease_bindings::IMarket::JobView {
        self.chain.view(self.market, Market::getJobCall { id })
    }

    /// Market credit of `who` in the suite token.
    pub fn credit(&mut self, who: Address) -> u128 {
        self.chain
            .view(
                self.market,
                Market::creditOfCall {
                    token: self.token,
                    account: who,
                },
            )
            .saturating_to()
    }

    /// Deploy another mock token (any decimals) and allow it in the market.
    pub fn add_token(&mut self, name: &str, symbol: &str, decimals: u8) -> Address {
        let gov = self.gov.address;
        let token = deploy_token(&mut self.chain, gov, name, symbol, decimals);
        let market = self.market;
        self.chain
            .send(
                gov,
                market,
                Market::configureTokenCall {
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
/// and the wrong element `f` that `matmul::localize` found.
pub fn data_fraud_call(
    id: B256,
    tenant: Address,
    params: OrderParams,
    d: &gridlease_core::matmul::MatmulData,
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
