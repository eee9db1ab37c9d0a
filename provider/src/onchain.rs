//! What the chain says of this node's provider, and whether it may run: registered, with this
//! node's key as its operator, and staked. Each refusal names the owner's exact call.

use alloy::primitives::Address;
use anyhow::{Result, bail};
use gridlease_bindings::{IStaking, Staking};
use gridlease_core::{
    chain::{Client, classify},
    deployments::Deployments,
    units::format_amount,
};

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
        if info.operator == Address::ZERO {
            bail!(
                "{} is not registered on chain {}: from the owner account call Staking.register({operator}, (gpuClasses {:#x}, gpuCount {}, vramGiB {}), \"metadata\") and stake",
                c.owner,
                chain_id,
                inv.class_bitmap(),
                inv.gpus.len().max(1),
                inv.vram_gib()
            );
        }
        if info.operator != operator {
            bail!(
                "{} is registered with operator {}, but this node's key is {operator}: point wallet.* at that key, or have the owner call Staking.updateProvider({operator}, capacity, metadata)",
                c.owner,
                info.operator
            );
        }
        if info.stake == 0 {
            bail!(
                "{} has no stake: approve the stake token and call Staking.stake(amount) from the owner",
                c.owner
            );
        }
        Ok(())
    }
}
