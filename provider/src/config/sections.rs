//! The validated configuration ([`Config`]) and its sections, as the node and its executors use
//! them. Nothing here reads a file: [`super::Config::load`] builds them.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use alloy::primitives::Address;
use gridlease_chain::wallet::KeySource;
use gridlease_fetch::AllowList;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// JSON-RPC endpoint (http(s):// or ws(s)://).
    pub rpc: String,
    /// A second endpoint that takes the requests `rpc` fails to answer (PD-03).
    pub fallback_rpc: Option<String>,
    /// The deployments file of the chain.
    pub deployments: PathBuf,
    /// Blocks a lease must be buried under before the node starts work on it.
    pub confirmations: u64,
    /// How often the node polls the chain for new blocks, milliseconds.
    pub poll_ms: u64,
    /// The operator's key.
    pub operator: KeySource,
    /// Below this many wei the operator key's balance is low: no new bids (OFF-20).
    pub low_balance: alloy::primitives::U256,
    /// The provider (owner) address the operator acts for.
    pub owner: Address,
    /// GPUs: discovered at start, or declared.
    pub capacity: Capacity,
    /// Floor price and markup per GPU class name.
    pub pricing: BTreeMap<String, Pricing>,
    /// Most jobs run at once.
    pub max_concurrent_jobs: u32,
    /// Most memory one job gets, GiB (`jobs.max_ram_gib`): an order asking more is not bid on,
    /// and one asking none (`ramGiB` 0) gets this much, so no container runs unbounded. `None`:
    /// the host's memory shared among `max_concurrent_jobs` ([`crate::node`] reads it at start).
    pub job_ram_gib: Option<u32>,
    /// Most CPU cores one job gets (`jobs.max_cpu_cores`), as [`Self::job_ram_gib`]. `None`: the
    /// host's cores (shared in time among jobs, not divided among them).
    pub job_cpu_cores: Option<u16>,
    /// How jobs run.
    pub executor: ExecutorKind,
    /// The container engine (`executor = "docker" | "podman"`): socket and network mode.
    pub container: Option<EngineConfig>,
    /// Scratch space for running jobs.
    pub work_dir: PathBuf,
    /// Results kept for tenants and verifiers, and the state database.
    pub data_dir: PathBuf,
    /// Bids on chain, or signed off chain for the keeper's award.
    pub bid_mode: BidMode,
    /// HTTP API (`/healthz`, `/metrics`, results out).
    pub listen: SocketAddr,
    /// Base URL tenants reach the API at (result URIs are `<public_url>/results/<lease id>`).
    pub public_url: String,
    /// A result is posted at least this long before the result deadline (the lease end plus the
    /// results module's `deadlineGrace`): a job that has not exited is stopped at its lease end,
    /// or this long before the deadline if that is earlier, seconds.
    pub post_margin_secs: u64,
    /// Most bytes of output a job may produce (stdout, stderr or its result file, each); more
    /// stops the job and its failure report is posted instead.
    pub max_output: u64,
    /// How long a result is kept after its lease ended (`jobs.keep_results`, default 7 days),
    /// for its tenant's downloads; never deleted while the market holds the lease's collateral
    /// (a challenge or fault may still need it), and never before the fault horizon has passed.
    pub keep_results_secs: u64,
    /// How long an image this node pulled for jobs stays in the engine's store after a job last
    /// used it (`jobs.keep_images`, default 1 day); then it is removed, and pulled again when a
    /// job names it. Images the operator put on the host are never removed.
    pub keep_images_secs: u64,
    /// Withdraw earnings once the market credit exceeds this (token units as text).
    pub withdraw_above: String,
    /// How long running jobs get on shutdown before they are checkpointed or left.
    pub shutdown_grace_secs: u64,
    /// Let concurrent jobs share a GPU when too few are free (`jobs.share_gpus`; default: each
    /// job gets whole GPUs of its own).
    pub share_gpus: bool,
    /// Sell service leases (and keep the provider's heartbeat fresh for them).
    pub services: bool,
    /// Testing only: flip one element of every built-in result (a cheating provider, for demos
    /// and tests of the fraud proof). Never set on a real node: its stake gets slashed.
    pub corrupt_builtin: bool,
    /// Testing only: post the true commitment of every result but serve none of it (the result
    /// download answers an error) and answer no data-availability challenge (a withholding
    /// provider, for demos and tests of the unavailability proof). Never set on a real node: its
    /// results are proven unavailable and its stake gets slashed.
    pub withhold_results: bool,
    /// Internal networks tenant-named URIs may reach (`[fetch] allow`; empty on a real node:
    /// PIN-02). A devnet names its loopback.
    pub fetch_allow: AllowList,
}

/// GPUs this node offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// Ask the driver (NVML, then `nvidia-smi`) at start.
    Auto,
    /// As declared.
    Declared {
        /// GPU class name ([`gridlease_primitives::gpu::GPU_CLASSES`]).
        class: String,
        /// How many.
        count: u8,
        /// VRAM per GPU, GiB.
        vram_gib: u16,
    },
}

/// Price policy of one GPU class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pricing {
    /// Lowest price per GPU-hour (token units as text, e.g. "1.20").
    pub floor_per_hour: String,
    /// Added to the floor at full utilisation, in basis points (linear in between).
    pub utilisation_markup_bps: u32,
}

/// Job runner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    /// Built-in jobs only (`matmul_i8`): no tenant code runs on the node. The default.
    Builtin,
    /// The job's command as a local process: NOT a sandbox (it runs as the node's user), so only
    /// with `allow_unsandboxed = true` (PIN-07), for hosts that trust their tenants, and tests.
    Process,
    /// Docker or Podman through its API.
    Docker,
}

/// How the node bids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BidMode {
    /// `Market.bid` transactions.
    Onchain,
    /// EIP-712 bids handed to the keeper that awards.
    Signed,
}

/// Which engine, and how the executor reaches it (`[jobs] executor`, `socket`, `network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// `"docker"` or `"podman"` (for messages).
    pub engine: String,
    /// The engine's unix socket.
    pub socket: PathBuf,
    /// Container network mode: `none` (default), `bridge`, `host` or a network's name.
    pub network: String,
    /// Images that run from the engine's store when their anonymous pull fails
    /// (`jobs.local_images`): private images the operator pulled on the host and offers to
    /// tenants. Any other image must pull: an image only on the host is the operator's, and a
    /// tenant naming it would get its files as output.
    pub local_images: Vec<String>,
}

impl EngineConfig {
    /// The default socket of `engine`: Docker's `/var/run/docker.sock`; Podman's
    /// `$XDG_RUNTIME_DIR/podman/podman.sock` (rootless) or `/run/podman/podman.sock`.
    pub fn default_socket(engine: &str) -> PathBuf {
        if engine == "podman" {
            match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(d) if !d.is_empty() => Path::new(&d).join("podman/podman.sock"),
                _ => PathBuf::from("/run/podman/podman.sock"),
            }
        } else {
            PathBuf::from("/var/run/docker.sock")
        }
    }

    /// `jobs.socket` as written: a path or a `unix://` URL. Other schemes are refused.
    pub fn parse_socket(s: &str) -> Result<PathBuf, String> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(PathBuf::from(p));
        }
        if s.contains("://") {
            return Err(format!(
                "\"{s}\": only a unix socket is supported (a path or unix:///path); expose a remote engine through an SSH-forwarded socket"
            ));
        }
        Ok(PathBuf::from(s))
    }
}
