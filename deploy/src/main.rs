//! `gridlease-deploy`: deploy the suite, or run a local devnet.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use gridlease_chain::{
    ChainError, Client,
    deployments::Deployments,
    wallet::{KeySource, Password},
};
use gridlease_deploy::{config::DeployConfig, deploy, devnet};

#[derive(Parser)]
#[command(
    name = "gridlease-deploy",
    version,
    about = "Deploy gridlease to any EVM chain, or run a local devnet"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Deploy (or bring up to date) the suite described by a config file; re-running is a no-op.
    Deploy {
        /// JSON-RPC endpoint.
        #[arg(long, env = "GRIDLEASE_RPC", default_value = "http://127.0.0.1:8545")]
        rpc: String,
        /// Deployment config (see deploy/devnet.toml for every field).
        #[arg(long, default_value = "deploy/devnet.toml")]
        config: PathBuf,
        /// Deployer keystore (Web3 Secret Storage v3, as `cast wallet new` writes).
        #[arg(long, env = "GRIDLEASE_KEYSTORE")]
        keystore: Option<PathBuf>,
        /// Keystore password source: prompt, file:PATH or env:VAR.
        #[arg(long, env = "GRIDLEASE_PASSWORD")]
        password: Option<Password>,
        /// Raw deployer key, only as env:VAR.
        #[arg(long)]
        private_key: Option<String>,
        /// Where `deployments/<chainId>.json` goes.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Simulate: print what would be deployed and called, send nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Start anvil on a free loopback port, deploy with a mock USDC and USDT, fund demo accounts,
    /// write their keystores, print what to run next, and wait for Ctrl-C.
    Devnet {
        /// Seconds per block (0: one block per transaction).
        #[arg(long, default_value_t = 1)]
        block_time: u64,
        /// Where keystores, the password file, devnet.json and anvil.log go.
        #[arg(long, default_value = ".devnet")]
        dir: PathBuf,
        /// Where `deployments/<chainId>.json` goes.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        let code = match e.downcast_ref::<ChainError>() {
            Some(ChainError::Network(_)) => 5,
            Some(ChainError::Revert(_)) => 4,
            _ => 3,
        };
        std::process::exit(code);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Deploy {
            rpc,
            config,
            keystore,
            password,
            private_key,
            root,
            dry_run,
        } => {
            let text = std::fs::read_to_string(&config)
                .with_context(|| format!("cannot read {}", config.display()))?;
            let cfg =
                DeployConfig::parse(&text).with_context(|| format!("{}", config.display()))?;
            let signer =
                KeySource::from_flags(keystore, password, private_key.as_deref())?.load()?;
            let client = Client::connect(&rpc, Some(signer)).await?;
            let previous = deploy::load_previous(&root, client.chain_id);
            let path = Deployments::default_path(&root, client.chain_id);
            let out = (!dry_run).then_some(path.as_path());
            let (d, report) =
                deploy::deploy_into(&client, &cfg, previous.as_ref(), dry_run, out).await?;
            for line in &report.lines {
                println!("{line}");
            }
            if dry_run {
                println!("dry run: nothing sent, nothing written");
                return Ok(());
            }
            d.save(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "{} transaction(s) sent; wrote {}",
                report.sent,
                path.display()
            );
            Ok(())
        }
        Cmd::Devnet {
            block_time,
            dir,
            root,
        } => {
            let running = devnet::start(block_time, &dir, &root).await?;
            let d = Deployments::load(&running.info.deployments, running.info.chain_id)?;
            // The CLI built next to this binary, else the one on PATH.
            let cli = std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("gridlease")))
                .filter(|p| p.is_file())
                .map_or_else(|| "gridlease".to_owned(), |p| p.display().to_string());
            print!("{}", running.info.next_steps(&d, &dir, &cli));
            wait_for_shutdown().await;
            eprintln!("stopping anvil");
            running.anvil.stop();
            Ok(())
        }
    }
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
