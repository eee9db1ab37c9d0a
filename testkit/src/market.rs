//! A market on a fresh anvil, set up as most daemon tests need it: one provider (owner key 2,
//! operator key 3) registered for class `any` with one 16 GiB GPU and staked, a tenant (key 1)
//! holding 1,000 USDC approved to the market, and the deployment saved in a temp dir.

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::{Filter, Log},
    signers::local::PrivateKeySigner,
};
use gridlease_bindings::{IStaking::Capacity, MockStablecoin};
use gridlease_chain::{Client, deployments::Deployments, send};
use gridlease_deploy::{
    anvil::{ANVIL_KEYS, Anvil},
    deploy::mint,
    devnet,
};

/// One USDC in token units (6 decimals).
pub const USDC: u128 = 1_000_000;

/// What the fixture's provider registers: class `any` (bit 0), one GPU of 16 GiB.
pub fn capacity() -> Capacity {
    Capacity {
        gpuClasses: 1,
        gpuCount: 1,
        vramGiB: 16,
    }
}

/// anvil's chain id (its default, which [`Anvil`] keeps).
pub const DEVNET_CHAIN_ID: u64 = 31_337;

/// The venue a tenant's signed request to a node of the devnet market at `market` names.
pub fn venue(market: Address) -> gridlease_fetch::Venue {
    gridlease_fetch::Venue {
        chain_id: DEVNET_CHAIN_ID,
        market,
    }
}

/// Anvil's account `i` as a signer.
pub fn key(i: usize) -> PrivateKeySigner {
    ANVIL_KEYS[i].parse().expect("an anvil key")
}

/// The market, its provider and its tenant.
#[derive(Debug)]
pub struct Market {
    /// The chain.
    pub anvil: Anvil,
    /// Governance (anvil's key 0), which deployed everything.
    pub gov: Client,
    /// The deployment, also saved as `deployments.json` in [`Market::dir`].
    pub deployments: Deployments,
    /// A directory for the test's configs, logs and state.
    pub dir: tempfile::TempDir,
    /// The tenant (key 1): 1,000 USDC, all approved to the market.
    pub tenant: Client,
    /// The provider's owner (key 2).
    pub owner: PrivateKeySigner,
    /// The provider's operator (key 3).
    pub operator: PrivateKeySigner,
    /// The payment token.
    pub usdc: Address,
    /// `Market`.
    pub market: Address,
    /// `MarketLens`.
    pub lens: Address,
    /// The results module.
    pub results: Address,
    /// `Staking`.
    pub staking: Address,
}

impl Market {
    /// Deploy on a fresh anvil (instant blocks) with the provider staking `stake` units for
    /// [`capacity`].
    pub async fn start(stake: u128) -> Self {
        Self::start_with(stake, capacity()).await
    }

    /// The same with the provider registering `cap`.
    pub async fn start_with(stake: u128, cap: Capacity) -> Self {
        let (anvil, gov, d) = devnet::market(0, None).await.expect("market on anvil");
        let dir = tempfile::tempdir().expect("tempdir");
        d.save(&dir.path().join("deployments.json"))
            .expect("save the deployment");
        let usdc = d.token("USDC").expect("usdc").address;
        devnet::provider(&gov, &d, key(2), &key(3), cap, stake)
            .await
            .expect("provider registered and staked");
        mint(&gov, usdc, key(1).address(), 1_000 * USDC)
            .await
            .expect("mint");
        let tenant = Client::connect(&anvil.url(), Some(key(1)))
            .await
            .expect("connect");
        let market = d.address("Market").expect("market");
        send(MockStablecoin::new(usdc, &tenant.provider).approve(market, U256::from(1_000 * USDC)))
            .await
            .expect("approve");
        Self {
            lens: d.address("MarketLens").expect("lens"),
            results: d.address("Results").expect("results"),
            staking: d.address("Staking").expect("staking"),
            anvil,
            gov,
            deployments: d,
            dir,
            tenant,
            owner: key(2),
            operator: key(3),
            usdc,
            market,
        }
    }
}

/// The logs of `address` with event `sig` about `id` (topic 1), from block 0.
pub async fn logs(c: &Client, address: Address, sig: B256, id: B256) -> Vec<Log> {
    c.provider
        .get_logs(
            &Filter::new()
                .address(address)
                .event_signature(sig)
                .topic1(id)
                .from_block(0),
        )
        .await
        .expect("logs")
}
