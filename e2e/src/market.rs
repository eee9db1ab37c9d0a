//! A local market as real processes: anvil with the suite deployed (`gridlease-deploy devnet`'s
//! setup, in process), four `gridlease-provider` nodes with different GPU classes and prices (two
//! of them misbehave on purpose: one posts wrong products, one withholds its results), one
//! `gridlease-keeper`, and the tenant's `gridlease` CLI pointed at all of it.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, Bytes, U256, aliases::U96},
    providers::ext::AnvilApi,
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, bail};
use gridlease_bindings::IStaking::Capacity;
use gridlease_chain::{
    Client,
    deployments::{Deployments, TokenEntry},
};
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS},
    devnet,
};
use gridlease_primitives::gpu;

/// How a provider node of the demo behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduct {
    /// Runs every job, posts its true result and serves it.
    Honest,
    /// Posts a wrong product for every built-in job (`[testing] corrupt_builtin_results`): the
    /// tenant or a keeper proves one wrong element on chain.
    WrongResults,
    /// Posts the true commitment of every result but serves none of it and answers no
    /// data-availability challenge (`[testing] withhold_results`): a challenged chunk is not
    /// revealed, and the result is proven unavailable.
    WithholdsResults,
}

impl Conduct {
    /// The `[testing]` section of the node's config (empty for an honest node).
    fn config(self) -> &'static str {
        match self {
            Self::Honest => "",
            Self::WrongResults => {
                "\n# This node cheats: every built-in result it posts is wrong (demo of the fraud proof).\n[testing]\ncorrupt_builtin_results = true\n"
            }
            Self::WithholdsResults => {
                "\n# This node withholds its results: it posts their true commitments but serves nothing and\n# answers no challenge (demo of the data-availability challenge).\n[testing]\nwithhold_results = true\n"
            }
        }
    }

    /// A word for the demo's listing (empty for an honest node).
    pub fn label(self) -> &'static str {
        match self {
            Self::Honest => "",
            Self::WrongResults => "  (CHEATS: wrong products)",
            Self::WithholdsResults => "  (WITHHOLDS its results)",
        }
    }
}

/// One provider node of the demo market.
#[derive(Clone, Copy, Debug)]
pub struct ProviderPlan {
    /// Its name in the demo.
    pub name: &'static str,
    /// The GPU class it declares (it runs built-in jobs on the CPU where there is no GPU).
    pub class: &'static str,
    /// VRAM it declares, GiB.
    pub vram_gib: u16,
    /// The role of its owner (staking) key: a devnet role, or one of [`EXTRA_ROLES`].
    pub owner: &'static str,
    /// The role of its operator (hot) key.
    pub operator: &'static str,
    /// Floor per GPU-hour for class `any` jobs, USDC.
    pub any_per_hour: &'static str,
    /// Floor per GPU-hour for jobs asking for its own class, USDC.
    pub class_per_hour: &'static str,
    /// Whether it is honest.
    pub conduct: Conduct,
    /// Bids with signed EIP-712 bids (`bidding.mode = "signed"`) on auctions; its provider is
    /// registered with the node's URL as metadataURI, where keepers find them.
    pub signed: bool,
}

/// The demo's providers: four classes, four prices, one cheater, one that withholds.
pub const PROVIDERS: [ProviderPlan; 4] = [
    ProviderPlan {
        name: "alpha",
        class: "rtx4090",
        vram_gib: 24,
        owner: "provider1",
        operator: "provider1-operator",
        any_per_hour: "0.90",
        class_per_hour: "0.40",
        conduct: Conduct::Honest,
        signed: false,
    },
    ProviderPlan {
        name: "beta",
        class: "a100-80g",
        vram_gib: 80,
        owner: "provider2",
        operator: "provider2-operator",
        any_per_hour: "0.60",
        class_per_hour: "1.20",
        conduct: Conduct::Honest,
        signed: false,
    },
    ProviderPlan {
        name: "gamma",
        class: "h100",
        vram_gib: 80,
        owner: "provider3",
        operator: "provider3-operator",
        any_per_hour: "0.75",
        class_per_hour: "1.90",
        conduct: Conduct::WrongResults,
        signed: false,
    },
    ProviderPlan {
        name: "delta",
        class: "l40s",
        vram_gib: 48,
        owner: "provider4",
        operator: "provider4-operator",
        any_per_hour: "0.80",
        class_per_hour: "1.10",
        conduct: Conduct::WithholdsResults,
        signed: false,
    },
];

/// Roles beyond the devnet's ([`devnet::ROLES`] takes all ten keys anvil funds): the fourth
/// provider's owner and operator, with the keys at index 10 and 11 of anvil's test mnemonic.
/// [`Market::start`] gives them ether (`anvil_setBalance`); the owner's stake is minted to it.
pub const EXTRA_ROLES: [(&str, &str); 2] = [
    (
        "provider4",
        "0xf214f2b2cd398c806f84e317254e0f0b801d0643303237d97a22a48e01628897",
    ),
    (
        "provider4-operator",
        "0x701b615bbdfb9de65240bc28bd21bbc0d996645a3dd57e7b12bc2bdf6f192c82",
    ),
];

/// Ether [`Market::start`] gives each of [`EXTRA_ROLES`], wei (as anvil funds its own: 10,000).
const EXTRA_ETHER: u128 = 10_000 * 10u128.pow(18);

/// USDC each provider stakes.
pub const STAKE_USDC: u128 = 1_000;

/// A daemon we started: SIGTERM on [`Daemon::stop`], SIGKILL if it is dropped still running.
#[derive(Debug)]
pub struct Daemon {
    /// Its name in the demo.
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its log (stderr).
    pub log: PathBuf,
    /// Its HTTP port (`/healthz`, `/metrics`).
    pub port: u16,
    /// Its address on chain: a provider's owner, the keeper's key.
    pub address: Address,
}

impl Daemon {
    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stop it with SIGTERM (it drains) and return how it exited.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        anvil::terminate(&mut self.child, Duration::from_secs(30))
            .with_context(|| format!("{} did not stop within 30 s of SIGTERM", self.name))
    }

    /// Wait until `/healthz` answers (or the process dies, or `within` passes).
    pub async fn ready(&mut self, within: Duration) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        let t0 = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited ({status}) while starting:\n{}",
                    self.name,
                    self.log_tail(20)
                );
            }
            if gridlease_fetch::Fetcher::devnet()
                .get(&url, None)
                .await
                .is_ok()
            {
                return Ok(());
            }
            if t0.elapsed() > within {
                bail!(
                    "{} did not answer {url} within {within:?}:\n{}",
                    self.name,
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub use gridlease_testkit::engine::Engine;

/// How to start the market.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seconds between blocks (0: a block per transaction).
    pub block_time: u64,
    /// Blocks a provider waits under a lease before starting work.
    pub confirmations: u64,
    /// How often the daemons poll, ms.
    pub poll_ms: u64,
    /// Which providers to start (of [`PROVIDERS`]).
    pub providers: Vec<ProviderPlan>,
    /// Start the keeper.
    pub keeper: bool,
    /// Jobs each provider runs at once (`jobs.max_concurrent`).
    pub max_concurrent: u32,
    /// Register every provider with its node's URL as metadataURI (a signed plan always is).
    pub register_urls: bool,
    /// GPUs each provider declares and registers (jobs get whole GPUs, so this also bounds how
    /// many one-GPU jobs a node takes at once).
    pub gpus: u8,
    /// Run container jobs on this engine (default: the environment's, [`Engine::from_env`]);
    /// without one they run as local processes (`allow_unsandboxed`, this devnet trusts itself).
    pub engine: Option<Engine>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            block_time: 1,
            confirmations: 0,
            poll_ms: 200,
            providers: PROVIDERS.to_vec(),
            keeper: true,
            max_concurrent: 4,
            gpus: 2,
            register_urls: false,
            engine: Engine::from_env(),
        }
    }
}

/// The running market. Dropping it kills the daemons and anvil.
#[derive(Debug)]
pub struct Market {
    /// Where configs, keystores, logs and the deployments file are.
    pub dir: PathBuf,
    /// anvil and the demo accounts.
    pub devnet: devnet::Running,
    /// Governance (anvil account 0): deploys, mints, sets parameters.
    pub gov: Client,
    /// The deployed suite.
    pub deployments: Deployments,
    /// The payment token (mock USDC).
    pub usdc: TokenEntry,
    /// Provider nodes, in [`Options::providers`] order.
    pub providers: Vec<Daemon>,
    /// The keeper, if started.
    pub keeper: Option<Daemon>,
    /// Plans of the providers, in the same order.
    pub plans: Vec<ProviderPlan>,
    /// First block of the demo (after the deployment).
    pub first_block: u64,
    /// The HTTP port of each provider node, in the same order (picked before registering, so
    /// a metadataURI can name it).
    pub ports: Vec<u16>,
    /// The container engine the providers use, if any.
    pub engine: Option<Engine>,
}

/// The private key (hex) of role `role`: a devnet role or one of [`EXTRA_ROLES`].
pub fn key_hex(role: &str) -> Result<&'static str> {
    if let Some((_, key)) = EXTRA_ROLES.iter().find(|(r, _)| *r == role) {
        return Ok(key);
    }
    Ok(ANVIL_KEYS[role_index(role)?])
}

fn key_of(role: &str) -> Result<PrivateKeySigner> {
    Ok(key_hex(role)?.parse()?)
}

impl Market {
    /// Start anvil, deploy, fund the demo accounts, register and stake the providers, and start
    /// every daemon; returns once each answers `/healthz`.
    pub async fn start(dir: &Path, opts: &Options) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let running = devnet::start(opts.block_time, &dir.join("devnet"), &dir).await?;
        let deployer: PrivateKeySigner = ANVIL_KEYS[0].parse()?;
        let gov = Client::connect(&running.info.rpc, Some(deployer)).await?;
        let deployments = Deployments::load(&running.info.deployments, gov.chain_id)?;
        let usdc = deployments.token("USDC")?;
        let scale = 10u128.pow(u32::from(usdc.decimals));
        let ports = opts
            .providers
            .iter()
            .map(|_| anvil::free_port())
            .collect::<Result<Vec<u16>, _>>()?;
        for (role, _) in EXTRA_ROLES {
            gov.provider
                .anvil_set_balance(key_of(role)?.address(), U256::from(EXTRA_ETHER))
                .await
                .with_context(|| format!("funding {role} with ether"))?;
        }
        for (p, port) in opts.providers.iter().zip(&ports) {
            let capacity = Capacity {
                gpuClasses: gpu::class_bitmap([p.class]).context("class")?,
                gpuCount: opts.gpus,
                vramGiB: p.vram_gib,
            };
            let operator = key_of(p.operator)?;
            devnet::provider(
                &gov,
                &deployments,
                key_of(p.owner)?,
                &operator,
                capacity.clone(),
                STAKE_USDC * scale,
            )
            .await
            .with_context(|| format!("registering provider {}", p.name))?;
            if opts.register_urls || p.signed {
                // The same operator: no new consent is needed, only the metadataURI changes.
                let owner = Client::connect(&gov.url, Some(key_of(p.owner)?)).await?;
                let staking = gridlease_bindings::Staking::new(
                    deployments.address("Staking")?,
                    &owner.provider,
                );
                gridlease_chain::send(staking.updateProvider(
                    operator.address(),
                    capacity,
                    format!("http://127.0.0.1:{port}"),
                    U96::MAX,
                    U256::ZERO,
                    Bytes::new(),
                ))
                .await
                .with_context(|| format!("registering the URL of provider {}", p.name))?;
            }
        }
        let mut market = Self {
            first_block: alloy::providers::Provider::get_block_number(&gov.provider).await?,
            dir,
            devnet: running,
            gov,
            deployments,
            usdc,
            providers: Vec::new(),
            keeper: None,
            plans: opts.providers.clone(),
            ports,
            engine: opts.engine.clone(),
        };
        for p in &opts.providers {
            let node = market.start_provider(p, opts)?;
            market.providers.push(node);
        }
        if opts.keeper {
            market.keeper = Some(market.start_keeper(opts, "keeper", "keeper")?);
        }
        for d in market.providers.iter_mut().chain(market.keeper.as_mut()) {
            d.ready(Duration::from_secs(60)).await?;
        }
        Ok(market)
    }

    /// Logs of `address` with event `sig` and first topic `id` since the market was set up.
    pub async fn logs(
        &self,
        address: Address,
        sig: alloy::primitives::B256,
        id: alloy::primitives::B256,
    ) -> Result<Vec<alloy::rpc::types::Log>> {
        Ok(alloy::providers::Provider::get_logs(
            &self.gov.provider,
            &alloy::rpc::types::Filter::new()
                .address(address)
                .event_signature(sig)
                .topic1(id)
                .from_block(self.first_block),
        )
        .await
        .map_err(gridlease_chain::classify_rpc)?)
    }

    /// The last `lines` log lines of every daemon, for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        self.providers
            .iter()
            .chain(self.keeper.as_ref())
            .map(|d| format!("--- {}\n{}", d.name, d.log_tail(lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The RPC endpoint.
    pub fn rpc(&self) -> &str {
        &self.devnet.info.rpc
    }

    /// The address of role `role` (a devnet role or one of [`EXTRA_ROLES`]).
    pub fn account(&self, role: &str) -> Address {
        self.devnet
            .info
            .accounts
            .get(role)
            .copied()
            .unwrap_or_else(|| {
                EXTRA_ROLES
                    .iter()
                    .find(|(r, _)| *r == role)
                    .and_then(|(_, k)| k.parse::<PrivateKeySigner>().ok())
                    .map(|k| k.address())
                    .unwrap_or_default()
            })
    }

    /// The name of the provider whose owner is `owner` (or the address).
    pub fn provider_name(&self, owner: Address) -> String {
        self.plans
            .iter()
            .find(|p| self.account(p.owner) == owner)
            .map_or_else(|| owner.to_string(), |p| p.name.to_owned())
    }

    /// The tenant's CLI: `gridlease --rpc .. --deployments .. --keystore tenant.json ..`.
    pub fn cli(&self) -> Result<Command> {
        let mut c = Command::new(crate::bin("gridlease")?);
        let info = &self.devnet.info;
        let ks = info.keystores.get("tenant").context("tenant keystore")?;
        c.arg("--rpc")
            .arg(&info.rpc)
            .arg("--deployments")
            .arg(&info.deployments)
            .arg("--keystore")
            .arg(ks)
            .arg("--password")
            .arg(format!("file:{}", info.password_file.display()))
            .current_dir(&self.dir);
        Ok(c)
    }

    /// Start (or restart) provider `p` as a process; its directory keeps its state.
    pub fn start_provider(&self, p: &ProviderPlan, opts: &Options) -> Result<Daemon> {
        let dir = self.dir.join(p.name);
        std::fs::create_dir_all(&dir)?;
        let port = match self.plans.iter().position(|q| q.name == p.name) {
            Some(i) if i < self.ports.len() => self.ports[i],
            _ => anvil::free_port()?,
        };
        let owner = self.account(p.owner);
        let signed = if p.signed {
            "\n[bidding]\nmode = \"signed\"\n"
        } else {
            ""
        };
        let testing = p.conduct.config();
        let class_price = if p.class == "any" {
            String::new()
        } else {
            format!(
                "\n[pricing.{}]\nfloor_per_hour = \"{}\"\n",
                p.class, p.class_per_hour
            )
        };
        let config = format!(
            r#"# {name}: written by gridlease-demo
[chain]
rpc = "{rpc}"
deployments = "{deployments}"
confirmations = {confirmations}
poll_ms = {poll}

[wallet]
private_key = "env:GRIDLEASE_OPERATOR_KEY"
owner = "{owner}"

[capacity]
gpus = "declared"
class = "{class}"
count = {gpus}
vram_gib = {vram}

[pricing.any]
floor_per_hour = "{any}"
{class_price}
[jobs]
max_concurrent = {slots}
{executor}
post_margin = "5s"
shutdown_grace = "5s"

# The devnet serves inputs and results on loopback.
[fetch]
allow = ["127.0.0.0/8", "::1"]

[http]
listen = "127.0.0.1:{port}"
{signed}{testing}"#,
            name = p.name,
            rpc = self.rpc(),
            deployments = self.devnet.info.deployments.display(),
            confirmations = opts.confirmations,
            poll = opts.poll_ms,
            class = p.class,
            vram = p.vram_gib,
            any = p.any_per_hour,
            slots = opts.max_concurrent,
            executor = match &opts.engine {
                Some(e) => format!(
                    "# Container jobs run on the engine scripts/podman.sh serves, from its imported image.\nexecutor = \"podman\"\nsocket = \"unix://{}\"\nlocal_images = [\"{}\"]",
                    e.socket.display(),
                    e.image
                ),
                None => "# No container engine here: this devnet trusts its own tenants, so container\n# jobs run as local processes (not a sandbox).\nexecutor = \"process\"\nallow_unsandboxed = true".to_owned(),
            },
            gpus = opts.gpus,
        );
        std::fs::write(dir.join("provider.toml"), config)?;
        let key = ("GRIDLEASE_OPERATOR_KEY", key_hex(p.operator)?);
        let (child, log) = spawn("gridlease-provider", &dir, "provider.toml", key)?;
        Ok(Daemon {
            name: p.name.to_owned(),
            child,
            log,
            port,
            address: owner,
        })
    }

    /// Start a keeper signing with devnet role `role`, in `<dir>/<name>`.
    pub fn start_keeper(&self, opts: &Options, name: &str, role: &str) -> Result<Daemon> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let port = anvil::free_port()?;
        // Devnet ether is worthless: priced at 0.00001 USDC, so that the demo's cent-sized leases
        // are worth settling and closing. On a real chain native_price is the coin's price.
        let config = format!(
            r#"# {name}: written by gridlease-demo
[chain]
rpc = "{rpc}"
deployments = "{deployments}"
poll_ms = {poll}

[wallet]
private_key = "env:GRIDLEASE_KEEPER_KEY"

[profit]
native_price = "0.00001"
margin_bps = 0
max_gas_price_gwei = "50"

[earnings]
withdraw_above = "1000000"

# A devnet's nodes do not restart: a result is taken for unavailable after 5 s, not 2 minutes.
[strategies]
unavailable_after_s = 5

# The devnet serves results on loopback.
[fetch]
allow = ["127.0.0.0/8", "::1"]

[http]
listen = "127.0.0.1:{port}"

[data]
dir = "data"
"#,
            rpc = self.rpc(),
            deployments = self.devnet.info.deployments.display(),
            poll = opts.poll_ms,
        );
        std::fs::write(dir.join("keeper.toml"), config)?;
        let key = ("GRIDLEASE_KEEPER_KEY", key_hex(role)?);
        let (child, log) = spawn("gridlease-keeper", &dir, "keeper.toml", key)?;
        Ok(Daemon {
            name: name.to_owned(),
            child,
            log,
            port,
            address: self.account(role),
        })
    }

    /// Stop every daemon with SIGTERM; each must exit 0. anvil stops when `self` drops.
    pub fn stop(&mut self) -> Result<()> {
        let mut bad = Vec::new();
        for d in self.providers.iter_mut().chain(self.keeper.as_mut()) {
            match d.stop() {
                Ok(s) if s.success() => {}
                Ok(s) => bad.push(format!("{} exited {s}:\n{}", d.name, d.log_tail(15))),
                Err(e) => bad.push(format!("{e:#}")),
            }
        }
        if !bad.is_empty() {
            bail!("{}", bad.join("\n"));
        }
        Ok(())
    }
}

/// Start `bin run --config CONFIG` in `dir` with its key in the environment (`key` = name,
/// value), stderr appended to `<dir>/<bin>.log`.
fn spawn(bin: &str, dir: &Path, config: &str, key: (&str, &str)) -> Result<(Child, PathBuf)> {
    let log = dir.join(format!("{bin}.log"));
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let child = Command::new(crate::bin(bin)?)
        .args(["run", "--config", config])
        .current_dir(dir)
        .env(key.0, key.1)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start {bin}"))?;
    Ok((child, log))
}

fn role_index(role: &str) -> Result<usize> {
    devnet::ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, i)| *i)
        .with_context(|| format!("no devnet role {role}"))
}
