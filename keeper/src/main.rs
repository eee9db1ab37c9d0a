//! `gridlease-keeper`: `init` writes a commented sample configuration; `check` validates it and
//! reads the chain; `run` is the keeper (awards, settles, closes, proves faults, for fees);
//! `status` prints what it earned, what is pending and what it skipped, and why.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gridlease_bindings::{MarketLens, Staking};
use gridlease_chain::{Client, classify, deployments::Deployments};
use gridlease_keeper::{
    config::{Config, SAMPLE},
    send::look,
    store::Store,
};
use gridlease_primitives::units::format_amount;

#[derive(Parser)]
#[command(name = "gridlease-keeper", version, about = "the gridlease keeper")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a commented sample configuration.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "keeper.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration, load the key and read the chain.
    Check {
        /// The configuration file.
        #[arg(long, default_value = "keeper.toml")]
        config: PathBuf,
    },
    /// Run the keeper until SIGINT/SIGTERM.
    Run {
        /// The configuration file.
        #[arg(long, default_value = "keeper.toml")]
        config: PathBuf,
        /// Log every decision, not only actions.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Earnings, pending transactions, and skipped work by reason.
    Status {
        /// The configuration file.
        #[arg(long, default_value = "keeper.toml")]
        config: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Run { .. }) {
        gridlease_daemon::quiet_broken_pipe();
    }
    match run(cli).await {
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
                "wrote {}: set chain.rpc, chain.deployments and wallet.*, then run `gridlease-keeper check --config {}`",
                out.display(),
                out.display()
            );
            Ok(())
        }
        Cmd::Check { config } => {
            let c = Config::load(&config)?;
            println!("config     {} is valid", config.display());
            let (client, d, me) = connect(&c).await?;
            println!("keeper     {me} on chain {}", client.chain_id);
            println!("market     {}", d.address("Market")?);
            let balance = alloy::providers::Provider::get_balance(&client.provider, me)
                .await
                .map_err(gridlease_chain::classify_rpc)?;
            println!(
                "gas money  {} (native coin)",
                format_amount(balance.to::<u128>(), 18)
            );
            if balance.is_zero() {
                anyhow::bail!("the keeper address {me} has no native coin to pay gas: fund it");
            }
            println!("ready");
            Ok(())
        }
        Cmd::Run { config, verbose } => {
            gridlease_daemon::logging(verbose);
            let c = Config::load(&config)?;
            gridlease_keeper::engine::run(c).await
        }
        Cmd::Status { config } => status(&config).await,
    }
}

async fn connect(c: &Config) -> Result<(Client, Deployments, alloy::primitives::Address)> {
    let me = c
        .wallet
        .load()
        .context("wallet: the keeper key cannot be loaded")?
        .address();
    let client = Client::connect_with_fallback(&c.rpc, c.fallback_rpc.as_deref(), None).await?;
    let d = Deployments::load(&c.deployments, client.chain_id)?;
    Ok((client, d, me))
}

async fn status(path: &std::path::Path) -> Result<()> {
    let c = Config::load(path)?;
    let db = c.data_dir.join("keeper.db");
    if !db.exists() {
        anyhow::bail!(
            "{} does not exist: the keeper has not run with this configuration yet",
            db.display()
        );
    }
    let store = Store::open(&db)?;
    let (view, cursor) = store.load()?;
    let running = view.running();
    let held = view
        .leases
        .values()
        .filter(|l| l.closed.is_none() && !l.ended && l.held())
        .count();
    println!(
        "view       {running} lease(s) running ({held} with a result in its challenge window), {} closed with collateral held, {} order(s) awaiting award, read up to block {}",
        view.held_closed(),
        view.orders.len(),
        cursor.map_or(0, |c| c.0)
    );
    let (client, d, me) = connect(&c).await?;
    let symbol = |t: Option<alloy::primitives::Address>| {
        t.and_then(|t| d.tokens.iter().find(|x| x.address == t))
            .map_or(("", 18), |x| (x.symbol.as_str(), x.decimals))
    };
    let ledger = store.ledger()?;
    if ledger.is_empty() {
        println!("sent       nothing yet");
    }
    let mut spent = 0u128;
    for r in &ledger {
        let (sym, dec) = symbol(r.token);
        spent += r.gas_cost;
        println!(
            "sent       {:>5} {:<16} {:<9} earned {} {sym}, gas {} ETH",
            r.count,
            r.action,
            r.status,
            format_amount(r.earned, dec),
            format_amount(r.gas_cost, 18)
        );
    }
    println!("gas        {} ETH spent in all", format_amount(spent, 18));
    let pending = store.pending()?;
    println!("pending    {} transaction(s)", pending.len());
    for t in &pending {
        // What the node says now: the ledger is the running keeper's, and may lag the chain.
        let at: Vec<_> = pending
            .iter()
            .filter(|p| p.nonce == t.nonce)
            .map(|p| p.hash)
            .collect();
        let now = match look(&client, me, t.nonce, &at).await {
            Ok(l) => l.describe(),
            Err(e) => format!("the node could not be asked ({e})"),
        };
        println!(
            "  {} {} nonce {} ({} id(s)): {now}",
            t.hash,
            t.action,
            t.nonce,
            t.ids.len()
        );
    }
    for (name, n) in store.counters()? {
        if let Some(reason) = name.strip_prefix("skipped.") {
            println!("skipped    {n:>5} {reason}");
        }
    }
    let lens = MarketLens::new(d.address("MarketLens")?, &client.provider);
    for t in &d.tokens {
        let credit = lens
            .creditOf(t.address, me)
            .call()
            .await
            .map_err(classify)?;
        println!(
            "credit     {} {} withdrawable (keeper and fault fees)",
            format_amount(credit.to::<u128>(), t.decimals),
            t.symbol
        );
    }
    let staking = Staking::new(d.address("Staking")?, &client.provider);
    let reward = staking.creditOf(me).call().await.map_err(classify)?;
    println!(
        "credit     {} withdrawable (post-close fault rewards, stake token units)",
        reward
    );
    Ok(())
}
