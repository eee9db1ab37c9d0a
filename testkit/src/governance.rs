//! Governance as the devnet runs it: the Timelock owns Market and Staking, so a parameter change is
//! a call scheduled on it, the delay waited out (warped, on anvil) and the call executed.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::DynProvider,
};
use anyhow::{Context, Result};
use gridlease_bindings::Timelock;
use gridlease_chain::send;

/// Call `target` with `data` through the Timelock at `timelock`: scheduled with its minimum
/// delay, anvil's clock moved past it, executed. `gov` holds the proposer and executor roles (the
/// devnet's governance key).
pub async fn govern(
    gov: &DynProvider,
    timelock: Address,
    target: Address,
    data: Bytes,
) -> Result<()> {
    let tl = Timelock::new(timelock, gov);
    let delay = tl
        .getMinDelay()
        .call()
        .await
        .context("the Timelock's delay")?;
    send(tl.schedule(
        target,
        U256::ZERO,
        data.clone(),
        B256::ZERO,
        B256::ZERO,
        delay,
    ))
    .await
    .context("schedule")?;
    gridlease_deploy::anvil::warp(gov, delay.to::<u64>() + 1).await?;
    send(tl.execute(target, U256::ZERO, data, B256::ZERO, B256::ZERO))
        .await
        .context("execute")?;
    Ok(())
}
