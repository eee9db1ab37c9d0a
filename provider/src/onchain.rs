//! What the chain says of this node's provider, and whether it may run: registered, with this
//! node's key as its operator, and staked. Each refusal names the owner's exact command
//! ([`crate::owner`]).

use alloy::primitives::Address;
use anyhow::{Result, bail};
use gridlease_bindings::{IStaking, Staking};
use gridlease_chain::{Client, classify, deployments::Deployments};
use gridlease_primitives::units::format_amount;

use crate::{config::Config, gpu::Inventory};

/// The provider's record on chain.
pub struct OnChain {
    /// A read-only client.
    pub client: Client,
    /// The deployment.
    pub d: Deployments,
    /// `Staking.providerInfo(owner)`.
    pub info: IStaking::ProviderView,
}

impl OnChain {
    /// Read the record of `c.owner`.
    pub async fn read(c: &Config) -> Result<Self> {
        let client = Client::connect_with_fallback(&c.rpc, c.fallback_rpc.as_deref(), None).await?;
        let d = Deployments::load(&c.deployments, client.chain_id)?;
        let staking = Staking::new(d.address("Staking")?, &client.provider);
        let info = staking
            .providerInfo(c.owner)
            .call()
            .await
            .map_err(classify)?;
        Ok(Self { client, d, info })
    }

    /// `v` units of the stake token (the deployment's first token), with its symbol.
    pub fn stake(&self, v: u128) -> String {
        match self.d.tokens.first() {
            Some(t) => format!("{} {}", format_amount(v, t.decimals), t.symbol),
            None => format!("{v} units"),
        }
    }

    /// Whether a node with key `operator` may work for the provider; if not, what the owner
    /// must do.
    pub fn ready(&self, c: &Config, operator: Address, inv: &Inventory) -> Result<()> {
        let (info, chain_id) = (&self.info, self.client.chain_id);
        let cap = crate::owner::capacity(inv);
        if info.operator == Address::ZERO {
            bail!(
                "{} is not registered on chain {chain_id}: the owner registers this node's key {operator} (GPU classes {:#x}, {} GPU(s), {} GiB) with `gridlease-provider register --config <this file> --keystore OWNER.json` (or, on another machine, with the file `gridlease-provider consent` prints here: `register --consent FILE`), then stakes with `gridlease-provider stake AMOUNT`",
                c.owner,
                cap.gpuClasses,
                cap.gpuCount,
                cap.vramGiB
            );
        }
        if info.operator != operator {
            bail!(
                "{} is registered with operator {}, but this node's key is {operator}: point wallet.* at that key, or have the owner bind this one with `gridlease-provider register --config <this file> --keystore OWNER.json` (it updates the registration)",
                c.owner,
                info.operator
            );
        }
        if info.stake == 0 {
            bail!(
                "{} has no stake: the owner stakes with `gridlease-provider stake AMOUNT --config <this file> --keystore OWNER.json`",
                c.owner
            );
        }
        Ok(())
    }
}

/// What `info`'s operator can still lock for new leases: its free stake, within its collateral
/// ceiling (`Staking._lockable`).
pub fn lockable(info: &IStaking::ProviderView) -> u128 {
    let (stake, locked, ceiling) = (
        info.stake.to::<u128>(),
        info.locked.to::<u128>(),
        info.collateralCeiling.to::<u128>(),
    );
    stake
        .saturating_sub(locked)
        .min(ceiling.saturating_sub(locked))
}
