//! `gridlease-provider`: `init` writes a commented sample configuration; `check` validates it,
//! discovers the GPUs, opens the state database and reads the provider's registration and stake
//! from the chain, saying exactly what the owner must do; `status` prints the jobs the node knows
//! and its balances.

use std::{path::PathBuf, process::ExitCode};

use alloy::primitives::Address;
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gridlease_bindings::{IStaking, Market, Staking};
use gridlease_core::{
    chain::{Client, classify},
    deployments::Deployments,
    units::format_amount,
};
use gridlease_provider::{
    config::{Config, SAMPLE},
    gpu,
    state::Store,
};

#[derive(Parser)]
#[command(
    name = "gridlease-provider",
    version,
    about = "the gridlease provider node"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a commented sample configuration.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "provider.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration, discover GPUs, and check registration and stake on chain.
    Check {
        /// The configuration file.
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
    },
    /// Jobs the node knows, by state, and the provider's stake and earnings.
    Status {
        /// The configuration file.
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(3)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Init { out, force } => {
            if out.exists() && !force {
                anyhow::bail!("{} exists; pass --force to overwrite it", out.display());
            }
            std::fs::write(&out, SAMPLE)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!(
                "wrote {}: set chain.rpc, chain.deployments, wallet.* and pricing, then run `gridlease-provider check --config {}`",
                out.display(),
                out.display()
            );
            Ok(())
        }
        Cmd::Check { config } => check(&config).await,
        Cmd::Status { config } => status(&config).await,
    }
}

fn open_store(c: &Config) -> Result<Store> {
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("cannot create jobs.data_dir {}", c.data_dir.display()))?;
    Ok(Store::open(&c.data_dir.join("state.db"))?)
}

/// What the chain says of this node's provider.
struct OnChain {
    client: Client,
    d: Deployments,
    info: IStaking::ProviderView,
}

impl OnChain {
    async fn read(c: &Config) -> Result<Self> {
        let client = Client::connect(&c.rpc, None).await?;
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
    fn stake(&self, v: u128) -> String {
        match self.d.tokens.first() {
            Some(t) => format!("{} {}", format_amount(v, t.decimals), t.symbol),
            None => format!("{v} units"),
        }
    }
}

async fn check(path: &std::path::Path) -> Result<()> {
    let c = Config::load(path)?;
    println!("config     {} is valid", path.display());
    let inv = gpu::discover(&c.capacity);
    println!("gpus       {}", inv.source);
    for g in &inv.gpus {
        println!(
            "           {} ({}, {} MiB, class {})",
            g.name, g.uuid, g.vram_mib, g.class
        );
    }
    let store = open_store(&c)?;
    println!(
        "state      {} ({} live job(s))",
        c.data_dir.join("state.db").display(),
        store.live()?.len()
    );
    let operator = c
        .operator
        .load()
        .context("wallet: the operator key cannot be loaded")?
        .address();
    println!("operator   {operator}");
    let chain = OnChain::read(&c).await?;
    let (info, chain_id) = (&chain.info, chain.client.chain_id);
    if info.operator == Address::ZERO {
        anyhow::bail!(
            "{} is not registered on chain {}: from the owner account call Staking.register({operator}, (gpuClasses {:#x}, gpuCount {}, vramGiB {}), \"metadata\") and stake",
            c.owner,
            chain_id,
            inv.class_bitmap(),
            inv.gpus.len().max(1),
            inv.vram_gib()
        );
    }
    if info.operator != operator {
        anyhow::bail!(
            "{} is registered with operator {}, but this node's key is {operator}: point wallet.* at that key, or have the owner call Staking.updateProvider({operator}, capacity, metadata)",
            c.owner,
            info.operator
        );
    }
    println!(
        "provider   {} on chain {}: stake {}, locked {}, unbonding {}",
        c.owner,
        chain_id,
        chain.stake(info.stake),
        chain.stake(info.locked),
        chain.stake(info.unbonding)
    );
    if info.stake == 0 {
        anyhow::bail!(
            "{} has no stake: approve the stake token and call Staking.stake(amount) from the owner",
            c.owner
        );
    }
    println!("ready");
    Ok(())
}

async fn status(path: &std::path::Path) -> Result<()> {
    let c = Config::load(path)?;
    let store = open_store(&c)?;
    let counts = store.counts()?;
    if counts.is_empty() {
        println!("jobs       none yet");
    }
    for (state, n) in counts {
        println!("jobs       {n} {}", state.name());
    }
    for j in store.live()? {
        println!("  {} {}", j.id, j.state.name());
    }
    let chain = OnChain::read(&c).await?;
    let market = Market::new(chain.d.address("Market")?, &chain.client.provider);
    for t in &chain.d.tokens {
        let credit = market
            .creditOf(t.address, c.owner)
            .call()
            .await
            .map_err(classify)?;
        println!(
            "earnings   {} {} withdrawable",
            format_amount(credit.to::<u128>(), t.decimals),
            t.symbol
        );
    }
    println!(
        "stake      {} ({} locked in leases)",
        chain.stake(chain.info.stake),
        chain.stake(chain.info.locked)
    );
    Ok(())
}
