//! `gridlease-provider`: `init` writes a commented sample configuration; `check` validates it,
//! discovers the GPUs, opens the state database and reads the provider's registration and stake
//! from the chain, saying exactly what the owner must do; `run` is the node (bids, runs, posts);
//! `status` prints the jobs the node knows and its balances. The owner's commands (`consent`,
//! `register`, `stake`, `unbond`, `withdraw-stake`) onboard a provider without `cast`.

use std::{path::PathBuf, process::ExitCode};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use gridlease_bindings::MarketLens;
use gridlease_chain::{
    classify,
    wallet::{KeySource, Password},
};
use gridlease_primitives::units::{format_amount, parse_duration};
use gridlease_provider::{
    config::{Config, SAMPLE},
    gpu,
    onchain::OnChain,
    owner::{self, Ceiling, ConsentFile},
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

/// The owner's wallet (the cold key that registers and stakes; never the node's operator key).
#[derive(Args)]
struct OwnerWallet {
    /// The owner's keystore (Web3 Secret Storage v3, as `cast wallet new` writes).
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Its password: prompt, file:PATH or env:VAR (never the password itself).
    #[arg(long)]
    password: Option<Password>,
    /// Instead of a keystore: the owner's hex key in an environment variable, as env:VAR only.
    #[arg(long)]
    private_key: Option<String>,
}

impl OwnerWallet {
    fn load(&self) -> Result<PrivateKeySigner> {
        let src = KeySource::from_flags(
            self.keystore.clone(),
            self.password.clone(),
            self.private_key.as_deref(),
        )
        .map_err(|e| {
            anyhow::anyhow!("{e} (the owner's wallet: the account that registers and stakes)")
        })?;
        Ok(src.load()?)
    }
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
    /// Sign, with this node's operator key, its consent to serve the owner (wallet.owner), and
    /// print it as JSON with the node's capacity: the owner registers with it elsewhere
    /// (`register --consent FILE`).
    Consent {
        /// The configuration file (its operator key signs).
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
        /// How long the consent stays valid (chain time), e.g. 1h, 1d.
        #[arg(long, default_value = owner::CONSENT_VALIDITY)]
        valid_for: String,
    },
    /// Owner: register the provider with this node's operator key (its consent signed here with
    /// the key from the config, or given with --consent), the GPUs discovered or declared here,
    /// the node's public URL and a collateral ceiling. An owner already registered updates its
    /// registration (a new operator key, capacity, URL or ceiling).
    Register {
        /// The configuration file (chain, deployments, operator key, capacity, owner).
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
        #[command(flatten)]
        wallet: OwnerWallet,
        /// The operator's consent from `gridlease-provider consent` on the node's machine (its
        /// capacity is registered); without it the operator key in the config signs one here.
        #[arg(long)]
        consent: Option<PathBuf>,
        /// Collateral ceiling: the most stake the operator key may have locked at once (running
        /// leases plus closed ones the market holds for their fault horizon), in stake-token units
        /// (e.g. 500), or `all`. Default `all`: the stake itself is then the bound, so a leaked
        /// operator key can put at risk at most what you stake; give an amount to risk less when
        /// you stake more than this node needs.
        #[arg(long, default_value = "all")]
        ceiling: Ceiling,
        /// Metadata URI (default: http.public_url, where keepers fetch signed bids).
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Owner: stake AMOUNT of the stake token (approving it first when needed).
    Stake {
        /// Amount in token units, e.g. 100 or 12.5.
        amount: String,
        /// The configuration file.
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
        #[command(flatten)]
        wallet: OwnerWallet,
    },
    /// Owner: start unbonding AMOUNT (or `all`) of the free stake; stake locked by leases stays.
    Unbond {
        /// Amount in token units, or `all` of the free stake.
        amount: String,
        /// The configuration file.
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
        #[command(flatten)]
        wallet: OwnerWallet,
    },
    /// Owner: withdraw the unbonded stake once its unbonding period has passed.
    WithdrawStake {
        /// Where to send it (default: the owner).
        #[arg(long)]
        to: Option<Address>,
        /// The configuration file.
        #[arg(long, default_value = "provider.toml")]
        config: PathBuf,
        #[command(flatten)]
        wallet: OwnerWallet,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.cmd, Cmd::Run { .. } | Cmd::Check { .. }) {
        // Before any thread: CUDA libraries found off the loader's path or under CUDA 13's names
        // are linked where the GPU path finds them, and the node runs again with them (once).
        if let gridlease_gpu::libs::Reexec::Failed(why) = gridlease_gpu::libs::reexec_with_cuda() {
            eprintln!("warning: {why}; built-in jobs run on the CPU");
        }
    } else {
        gridlease_daemon::quiet_broken_pipe();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli)) {
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
            gridlease_daemon::logging(verbose);
            let c = Config::load(&config)?;
            gridlease_provider::node::run(c).await
        }
        Cmd::Status { config } => status(&config).await,
        Cmd::Consent { config, valid_for } => {
            let c = Config::load(&config)?;
            let secs = parse_duration(&valid_for)
                .map_err(|e| anyhow::anyhow!("--valid-for {valid_for}: {e}"))?;
            let f = owner::consent(&c, secs).await?;
            println!("{}", serde_json::to_string_pretty(&f)?);
            Ok(())
        }
        Cmd::Register {
            config,
            wallet,
            consent,
            ceiling,
            metadata,
        } => {
            let c = Config::load(&config)?;
            let consent = match consent {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read --consent {}", path.display()))?;
                    Some(serde_json::from_str::<ConsentFile>(&text).with_context(|| {
                        format!(
                            "--consent {}: not the JSON `gridlease-provider consent` prints",
                            path.display()
                        )
                    })?)
                }
                None => None,
            };
            let r = owner::register(&c, wallet.load()?, consent, &ceiling, metadata).await?;
            println!(
                "{} {} with operator {}: GPU classes {:#x}, {} GPU(s), {} GiB, ceiling {}, metadata {}",
                if r.new { "registered" } else { "updated" },
                c.owner,
                r.operator,
                r.capacity.gpuClasses,
                r.capacity.gpuCount,
                r.capacity.vramGiB,
                r.ceiling,
                r.metadata
            );
            Ok(())
        }
        Cmd::Stake {
            amount,
            config,
            wallet,
        } => {
            let c = Config::load(&config)?;
            let s = owner::stake(&c, wallet.load()?, &amount).await?;
            println!("staked {amount}: stake {s}");
            Ok(())
        }
        Cmd::Unbond {
            amount,
            config,
            wallet,
        } => {
            let c = Config::load(&config)?;
            println!("{}", owner::unbond(&c, wallet.load()?, &amount).await?);
            Ok(())
        }
        Cmd::WithdrawStake { to, config, wallet } => {
            let c = Config::load(&config)?;
            println!("{}", owner::withdraw_stake(&c, wallet.load()?, to).await?);
            Ok(())
        }
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
    match gridlease_gpu::cuda::check_libraries() {
        Ok(()) => {
            println!("cuda       the GPU path's libraries load:");
            for path in gridlease_gpu::libs::loaded() {
                println!("           {}", path.display());
            }
            if let Ok((major, minor)) = gridlease_gpu::nvrtc::version() {
                println!(
                    "           NVRTC {major}.{minor} compiles the kernels for each GPU's \
                     architecture at its first built-in job"
                );
            }
            // Each GPU the driver reported computes a small job, compared with the CPU's bytes.
            for g in inv.gpus.iter().filter(|g| g.uuid.starts_with("GPU-")) {
                let device = gridlease_gpu::Device::Uuid(g.uuid.clone());
                match tokio::task::block_in_place(|| gridlease_gpu::self_test(&device)) {
                    Ok(line) => println!("selftest   {line}"),
                    Err(why) => println!(
                        "selftest   {}: {why}: its built-in jobs would run on the CPU",
                        g.uuid
                    ),
                }
            }
        }
        Err(e) => println!("cuda       {e}: built-in jobs run on the CPU"),
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
    // The node raises its open-file limit the same way when it runs.
    let fronts = gridlease_provider::front::Budget::from_fd_limit().connections();
    println!(
        "tls        service fronts carry up to {fronts} connections in all (from the open-file limit){}",
        if fronts < 1_024 {
            ": raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) for more"
        } else {
            ""
        }
    );
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
        "provider   {} on chain {}: stake {}, locked {}, unbonding {}, collateral ceiling {}",
        c.owner,
        chain.client.chain_id,
        chain.stake(info.stake.to()),
        chain.stake(info.locked.to()),
        chain.stake(info.unbonding.to()),
        if info.collateralCeiling == alloy::primitives::aliases::U96::MAX {
            "all of the stake".to_owned()
        } else {
            chain.stake(info.collateralCeiling.to())
        }
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
    let market = MarketLens::new(chain.d.address("MarketLens")?, &chain.client.provider);
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
        "stake      {} ({} locked in leases, {} unbonding)",
        chain.stake(chain.info.stake.to()),
        chain.stake(chain.info.locked.to()),
        chain.stake(chain.info.unbonding.to())
    );
    let held = store.held_count()?;
    if held > 0 {
        println!(
            "held       {held} closed lease(s) whose collateral the market holds for the fault horizon (the node releases it then)"
        );
    }
    let operator = chain.info.operator;
    let gas = alloy::providers::Provider::get_balance(&chain.client.provider, operator)
        .await
        .map_err(gridlease_chain::classify_rpc)?;
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
