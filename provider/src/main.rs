//! `gridlease-provider`: `init` writes a commented sample configuration; `check` validates it,
//! discovers the GPUs, opens the state database and reads the provider's registration and stake
//! from the chain, saying exactly what the owner must do; `run` is the node (bids, runs, posts);
//! `status` prints the jobs the node knows and its balances.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gridlease_bindings::Market;
use gridlease_core::{chain::classify, units::format_amount};
use gridlease_provider::{
    config::{Config, SAMPLE},
    gpu,
    onchain::OnChain,
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
    /// Run the node: watch orders, bid, run won jobs, post their results (until SIGINT/SIGTERM).
    Run {
        /// The configuration file.
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
        /// Log every order considered, not only actions.
        #[arg(long, short)]
        verbose: bool,
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
        Cmd::Run { config, verbose } => {
            gridlease_core::daemon::logging(verbose);
            let c = Config::load(&config)?;
            gridlease_provider::engine::run(c).await
        }
        Cmd::Status { config } => status(&config).await,
    }
}

fn open_store(c: &Config) -> Result<Store> {
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("cannot create jobs.data_dir {}", c.data_dir.display()))?;
    Ok(Store::open(&c.data_dir.join("state.db"))?)
}

async fn check(path: &std::path::Path) -> Result<()> {
    let c = Config::load(path)?;
    println!("config     {} is valid", path.display());
    let inv = gpu::discover(&c.capacity);
    println!("gpus       {}", inv.source);
    for g in &inv.gpus {
        println!("           {}", g.describe());
    }
    let store = open_store(&c)?;
    println!(
        "state      {} ({} live job(s))",
        c.data_dir.join("state.db").display(),
        store.live()?.len()
    );
    if let Some(e) = &c.container {
        let x = gridlease_provider::docker::ContainerExecutor::new(e.clone(), "check");
        let info = x.ping().await.context("jobs.executor")?;
        println!(
            "engine     {} {} (API {}) at {}, network {}",
            info.platform,
            info.version,
            info.api_version,
            e.socket.display(),
            e.network
        );
    }
    let operator = c
        .operator
        .load()
        .context("wallet: the operator key cannot be loaded")?
        .address();
    println!("operator   {operator}");
    let chain = OnChain::read(&c).await?;
    chain.ready(&c, operator, &inv)?;
    if c.bid_mode == gridlease_provider::config::BidMode::Signed {
        let staking = chain.d.address("Staking")?;
        let from = chain.d.contracts.get("Staking").map_or(0, |s| s.block);
        let uri =
            gridlease_provider::signed::metadata_uri(&chain.client, staking, c.owner, from).await?;
        gridlease_provider::signed::check_registration(
            uri.as_deref(),
            &c.public_url,
            c.owner,
            operator,
            &chain.info.capacity,
        )?;
        println!(
            "bidding    signed; keepers find the bids at {}/bids/<order>",
            c.public_url
        );
    }
    let info = &chain.info;
    println!(
        "provider   {} on chain {}: stake {}, locked {}, unbonding {}",
        c.owner,
        chain.client.chain_id,
        chain.stake(info.stake),
        chain.stake(info.locked),
        chain.stake(info.unbonding)
    );
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
        let deadline = if j.end > 0 {
            format!(" (deadline {})", j.end)
        } else {
            String::new()
        };
        println!("  {} {}{deadline}", j.id, j.state.name());
    }
    let kept = store.deferred(0)?.len();
    if kept > 0 {
        println!(
            "deferred   {kept} orders kept until a slot, GPU or stake frees (or their bid window ends)"
        );
    }
    match node_health(&c).await {
        Some(h) => println!("node       running: {h}"),
        None => println!("node       not running (no answer on {})", c.listen),
    }
    match &c.fallback_rpc {
        Some(f) => println!("rpc        {} (fallback {f})", c.rpc),
        None => println!("rpc        {}", c.rpc),
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
    let operator = chain.info.operator;
    let gas = alloy::providers::Provider::get_balance(&chain.client.provider, operator)
        .await
        .map_err(gridlease_core::chain::classify_rpc)?;
    println!(
        "operator   {operator}: {} ETH for gas",
        format_amount(gas.to::<u128>(), 18)
    );
    let staking =
        gridlease_bindings::Staking::new(chain.d.address("Staking")?, &chain.client.provider);
    let l = staking.liveness(c.owner).call().await.map_err(classify)?;
    let at = l.at.to::<u64>();
    if at == 0 {
        println!(
            "heartbeat  none yet (service leases need one; `jobs.services = true` sends them)"
        );
    } else {
        let now = chain.client.now().await?;
        println!(
            "heartbeat  {}s ago (period {}s, epoch {})",
            now.saturating_sub(at),
            l.period,
            l.epoch
        );
    }
    Ok(())
}

/// The running node's `/healthz` line, if it answers.
async fn node_health(c: &Config) -> Option<String> {
    let url = format!("http://{}/healthz", c.listen);
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        alloy::transports::http::reqwest::get(&url),
    )
    .await
    .ok()?
    .ok()?;
    Some(r.text().await.ok()?.trim().to_owned())
}
