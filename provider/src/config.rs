//! `provider.toml`: everything a provider node needs, validated up front. Unknown keys and bad
//! values are rejected with the key's dotted name (and the line, from TOML), so a typo never
//! silently drops a setting.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use alloy::primitives::Address;
use gridlease_core::{
    daemon,
    fetch::AllowList,
    gpu,
    units::{parse_amount, parse_duration},
    wallet::KeySource,
};
use serde::Deserialize;

/// The sample `gridlease-provider init` writes: every key, commented.
pub const SAMPLE: &str = include_str!("../provider.sample.toml");

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
    /// The provider (owner) address the operator acts for.
    pub owner: Address,
    /// GPUs: discovered at start, or declared.
    pub capacity: Capacity,
    /// Floor price and markup per GPU class name.
    pub pricing: BTreeMap<String, Pricing>,
    /// Most jobs run at once.
    pub max_concurrent_jobs: u32,
    /// How jobs run.
    pub executor: ExecutorKind,
    /// The container engine (`executor = "docker" | "podman"`): socket and network mode.
    pub container: Option<crate::docker::EngineConfig>,
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
    /// Most bytes of output a job may produce (stdout or its result file); more stops the job and
    /// its failure report is posted instead.
    pub max_output: u64,
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
        /// GPU class name ([`gpu::GPU_CLASSES`]).
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

pub use gridlease_core::daemon::ConfigError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    chain: RawChain,
    wallet: RawWallet,
    #[serde(default)]
    capacity: Option<RawCapacity>,
    #[serde(default)]
    pricing: BTreeMap<String, RawPricing>,
    #[serde(default)]
    jobs: RawJobs,
    #[serde(default)]
    bidding: RawBidding,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    earnings: RawEarnings,
    #[serde(default)]
    testing: RawTesting,
    #[serde(default)]
    fetch: RawFetch,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTesting {
    #[serde(default)]
    corrupt_builtin_results: bool,
    #[serde(default)]
    withhold_results: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    rpc: String,
    fallback_rpc: Option<String>,
    deployments: PathBuf,
    #[serde(default = "default_confirmations")]
    confirmations: u64,
    #[serde(default = "default_poll_ms")]
    poll_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWallet {
    keystore: Option<PathBuf>,
    password: Option<String>,
    private_key: Option<String>,
    owner: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapacity {
    gpus: String,
    class: Option<String>,
    count: Option<u8>,
    vram_gib: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPricing {
    floor_per_hour: String,
    #[serde(default)]
    utilisation_markup_bps: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    #[serde(default = "default_max_concurrent")]
    max_concurrent: u32,
    #[serde(default = "default_executor")]
    executor: String,
    #[serde(default)]
    socket: Option<String>,
    #[serde(default)]
    network: Option<String>,
    #[serde(default = "default_work_dir")]
    work_dir: PathBuf,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default = "default_grace")]
    shutdown_grace: String,
    #[serde(default = "default_post_margin")]
    post_margin: String,
    #[serde(default = "default_max_output")]
    max_output: String,
    #[serde(default)]
    share_gpus: bool,
    #[serde(default = "default_services")]
    services: bool,
    #[serde(default)]
    allow_unsandboxed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBidding {
    #[serde(default = "default_mode")]
    mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default)]
    public_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEarnings {
    #[serde(default = "default_withdraw_above")]
    withdraw_above: String,
}

fn default_confirmations() -> u64 {
    2
}
fn default_poll_ms() -> u64 {
    500
}
fn default_post_margin() -> String {
    "30s".into()
}
fn default_max_output() -> String {
    "256MiB".into()
}
fn default_services() -> bool {
    true
}
fn default_max_concurrent() -> u32 {
    4
}
fn default_executor() -> String {
    "builtin".into()
}
fn default_work_dir() -> PathBuf {
    "work".into()
}
fn default_data_dir() -> PathBuf {
    "data".into()
}
fn default_grace() -> String {
    "30s".into()
}
fn default_mode() -> String {
    "onchain".into()
}
fn default_listen() -> String {
    "127.0.0.1:7311".into()
}
fn default_withdraw_above() -> String {
    "10".into()
}

impl Default for RawJobs {
    fn default() -> Self {
        Self {
            max_concurrent: default_max_concurrent(),
            executor: default_executor(),
            socket: None,
            network: None,
            work_dir: default_work_dir(),
            data_dir: default_data_dir(),
            shutdown_grace: default_grace(),
            post_margin: default_post_margin(),
            max_output: default_max_output(),
            share_gpus: false,
            services: default_services(),
            allow_unsandboxed: false,
        }
    }
}
impl Default for RawBidding {
    fn default() -> Self {
        Self {
            mode: default_mode(),
        }
    }
}
impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            public_url: None,
        }
    }
}
impl Default for RawEarnings {
    fn default() -> Self {
        Self {
            withdraw_above: default_withdraw_above(),
        }
    }
}

impl Config {
    /// Read and validate `path`. Relative directories are taken relative to the file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = daemon::read_config(path, "gridlease-provider")?;
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        Self::parse(&text, path, base)
    }

    /// Validate `text` (named `path` in errors; relative paths resolved against `base`).
    pub fn parse(
        text: &str,
        path: &std::path::Path,
        base: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let raw: Raw = daemon::parse_toml(text, path)?;
        let bad = |key: &str, why: String| ConfigError::Value {
            path: path.to_owned(),
            key: key.to_owned(),
            why,
        };
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let rpc = daemon::rpc_url(&raw.chain.rpc).map_err(|e| bad("chain.rpc", e))?;
        let fallback_rpc = raw
            .chain
            .fallback_rpc
            .map(|u| daemon::rpc_url(&u).map_err(|e| bad("chain.fallback_rpc", e)))
            .transpose()?;
        if fallback_rpc.as_ref() == Some(&rpc) {
            return Err(bad(
                "chain.fallback_rpc",
                "is chain.rpc again: give a second, independent endpoint (or leave it out)".into(),
            ));
        }
        let operator = KeySource::from_config(
            raw.wallet.keystore.map(rel),
            raw.wallet.password.as_deref(),
            raw.wallet.private_key.as_deref(),
        )
        .map_err(|(key, why)| bad(key, why))?;
        let owner = raw.wallet.owner.parse::<Address>().map_err(|_| {
            bad(
                "wallet.owner",
                "expected the provider's 0x address (the account that staked)".into(),
            )
        })?;

        let capacity = match raw.capacity {
            None => Capacity::Auto,
            Some(c) if c.gpus == "auto" => {
                if c.class.is_some() || c.count.is_some() || c.vram_gib.is_some() {
                    return Err(bad(
                        "capacity",
                        "gpus = \"auto\" takes no class/count/vram_gib".into(),
                    ));
                }
                Capacity::Auto
            }
            Some(c) if c.gpus == "declared" => {
                let class = c.class.ok_or_else(|| {
                    bad("capacity.class", "required when gpus = \"declared\"".into())
                })?;
                if gpu::class_index(&class).is_none() {
                    return Err(bad(
                        "capacity.class",
                        format!(
                            "unknown GPU class \"{class}\"; one of {:?}",
                            gpu::GPU_CLASSES
                        ),
                    ));
                }
                let count = c.count.unwrap_or(1);
                if count == 0 {
                    return Err(bad("capacity.count", "at least 1".into()));
                }
                Capacity::Declared {
                    class,
                    count,
                    vram_gib: c.vram_gib.unwrap_or(0),
                }
            }
            Some(c) => {
                return Err(bad(
                    "capacity.gpus",
                    format!("\"{}\": expected \"auto\" or \"declared\"", c.gpus),
                ));
            }
        };

        let mut pricing = BTreeMap::new();
        for (class, p) in raw.pricing {
            let key = format!("pricing.{class}");
            if gpu::class_index(&class).is_none() {
                return Err(bad(&key, format!("unknown GPU class \"{class}\"")));
            }
            parse_amount(&p.floor_per_hour, 18)
                .map_err(|e| bad(&format!("{key}.floor_per_hour"), e.to_string()))?;
            if p.utilisation_markup_bps > 100_000 {
                return Err(bad(
                    &format!("{key}.utilisation_markup_bps"),
                    "at most 100000 (a 10x markup)".into(),
                ));
            }
            pricing.insert(
                class,
                Pricing {
                    floor_per_hour: p.floor_per_hour.trim().to_owned(),
                    utilisation_markup_bps: p.utilisation_markup_bps,
                },
            );
        }
        if pricing.is_empty() {
            return Err(bad(
                "pricing",
                "price at least one GPU class, e.g. [pricing.any] floor_per_hour = \"1.00\"".into(),
            ));
        }

        if raw.jobs.max_concurrent == 0 {
            return Err(bad("jobs.max_concurrent", "at least 1".into()));
        }
        let executor = match raw.jobs.executor.as_str() {
            "builtin" => ExecutorKind::Builtin,
            "process" if raw.jobs.allow_unsandboxed => ExecutorKind::Process,
            "process" => {
                return Err(bad(
                    "jobs.executor",
                    "\"process\" runs tenants' commands as this node's own user, with its files \
                     and network: it is not a sandbox. Use \"docker\" or \"podman\"; on a host \
                     that trusts every tenant, also set jobs.allow_unsandboxed = true"
                        .into(),
                ));
            }
            "docker" | "podman" => ExecutorKind::Docker,
            other => {
                return Err(bad(
                    "jobs.executor",
                    format!(
                        "\"{other}\": expected \"builtin\", \"docker\", \"podman\" or \"process\""
                    ),
                ));
            }
        };
        if raw.jobs.allow_unsandboxed && executor != ExecutorKind::Process {
            return Err(bad(
                "jobs.allow_unsandboxed",
                "only means something with executor = \"process\"".into(),
            ));
        }
        let fetch_allow = AllowList::parse(&raw.fetch.allow).map_err(|e| bad("fetch.allow", e))?;
        let container = match executor {
            ExecutorKind::Builtin | ExecutorKind::Process => {
                if raw.jobs.socket.is_some() || raw.jobs.network.is_some() {
                    return Err(bad(
                        "jobs.socket",
                        "socket and network are for executor = \"docker\" or \"podman\"".into(),
                    ));
                }
                None
            }
            ExecutorKind::Docker => {
                let engine = raw.jobs.executor.clone();
                let socket = match &raw.jobs.socket {
                    Some(s) => crate::docker::EngineConfig::parse_socket(s)
                        .map_err(|why| bad("jobs.socket", why))?,
                    None => crate::docker::EngineConfig::default_socket(&engine),
                };
                let network = raw.jobs.network.clone().unwrap_or_else(|| "none".into());
                if network.trim().is_empty() {
                    return Err(bad(
                        "jobs.network",
                        "none | bridge | host | a network's name".into(),
                    ));
                }
                Some(crate::docker::EngineConfig {
                    engine,
                    socket,
                    network,
                })
            }
        };
        let shutdown_grace_secs = parse_duration(&raw.jobs.shutdown_grace)
            .map_err(|e| bad("jobs.shutdown_grace", e.to_string()))?;
        let post_margin_secs = parse_duration(&raw.jobs.post_margin)
            .map_err(|e| bad("jobs.post_margin", e.to_string()))?;
        let max_output =
            parse_bytes(&raw.jobs.max_output).map_err(|e| bad("jobs.max_output", e))?;
        if !(10..=60_000).contains(&raw.chain.poll_ms) {
            return Err(bad(
                "chain.poll_ms",
                "between 10 and 60000 milliseconds".into(),
            ));
        }
        let bid_mode = match raw.bidding.mode.as_str() {
            "onchain" => BidMode::Onchain,
            "signed" => BidMode::Signed,
            other => {
                return Err(bad(
                    "bidding.mode",
                    format!("\"{other}\": expected \"onchain\" or \"signed\""),
                ));
            }
        };
        let listen = raw.http.listen.parse::<SocketAddr>().map_err(|_| {
            bad(
                "http.listen",
                format!("\"{}\" is not an address:port", raw.http.listen),
            )
        })?;
        let public_url = match raw.http.public_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                u.trim_end_matches('/').to_owned()
            }
            Some(u) => {
                return Err(bad(
                    "http.public_url",
                    format!("\"{u}\" is not an http(s):// URL"),
                ));
            }
            None => format!("http://{listen}"),
        };
        parse_amount(&raw.earnings.withdraw_above, 18)
            .map_err(|e| bad("earnings.withdraw_above", e.to_string()))?;

        Ok(Self {
            rpc,
            fallback_rpc,
            deployments: rel(raw.chain.deployments),
            confirmations: raw.chain.confirmations,
            poll_ms: raw.chain.poll_ms,
            operator,
            owner,
            capacity,
            pricing,
            max_concurrent_jobs: raw.jobs.max_concurrent,
            executor,
            container,
            work_dir: rel(raw.jobs.work_dir),
            data_dir: rel(raw.jobs.data_dir),
            bid_mode,
            listen,
            public_url,
            post_margin_secs,
            max_output,
            withdraw_above: raw.earnings.withdraw_above.trim().to_owned(),
            shutdown_grace_secs,
            share_gpus: raw.jobs.share_gpus,
            services: raw.jobs.services,
            corrupt_builtin: raw.testing.corrupt_builtin_results,
            withhold_results: raw.testing.withhold_results,
            fetch_allow,
        })
    }
}

/// Largest `jobs.max_output`: what a result may be (`ResultTree.MAX_SIZE` is far above) and what a
/// node can hold in memory to commit it.
pub const MAX_OUTPUT_LIMIT: u64 = 4 << 30;

/// Bytes as `1024`, `64KiB`, `256MiB` or `1GiB` (at least 1 KiB, at most 4 GiB).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        other => {
            return Err(format!(
                "\"{s}\": unit \"{other}\" is not one of B, KiB, MiB, GiB"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("\"{s}\": expected a size like \"256MiB\""))?;
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|b| (1024..=MAX_OUTPUT_LIMIT).contains(b))
        .ok_or_else(|| format!("\"{s}\": between 1KiB and 4GiB"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("provider.toml"), Path::new("/srv/node"))
    }

    #[test]
    fn the_sample_is_valid_and_resolves_paths_next_to_the_file() {
        let c = parse(SAMPLE).expect("the sample parses");
        assert_eq!(c.capacity, Capacity::Auto);
        assert_eq!(c.data_dir, Path::new("/srv/node/data"));
        assert_eq!(c.bid_mode, BidMode::Onchain);
        assert!(c.pricing.contains_key("any"));
        assert!(matches!(c.operator, KeySource::Keystore { .. }));
        assert_eq!(c.container, None);
        assert_eq!(c.fallback_rpc, None);
        let c = parse(&SAMPLE.replace(
            "# fallback_rpc = \"https://rpc.example.org\"",
            "fallback_rpc = \"https://rpc.example.org\"",
        ))
        .expect("with a fallback");
        assert_eq!(c.fallback_rpc.as_deref(), Some("https://rpc.example.org"));
    }

    #[test]
    fn the_testing_knobs_are_off_unless_set() {
        let c = parse(SAMPLE).expect("sample");
        assert!(!c.corrupt_builtin && !c.withhold_results);
        let c = parse(
            &SAMPLE
                .replace("# [testing]", "[testing]")
                .replace("# withhold_results = false", "withhold_results = true"),
        )
        .expect("withholding");
        assert!(c.withhold_results && !c.corrupt_builtin);
        let e = parse(&format!("{SAMPLE}\n[testing]\nwithhold = true\n"))
            .expect_err("unknown key")
            .to_string();
        assert!(e.contains("withhold"), "{e}");
    }

    #[test]
    fn the_output_cap_is_a_size_with_a_unit() {
        assert_eq!(parse(SAMPLE).expect("sample").max_output, 256 << 20);
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("2048"), Ok(2048));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        for bad in ["", "12", "5TiB", "lots", "8GiB", "1.5MiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        let e = parse(&SAMPLE.replace("max_output = \"256MiB\"", "max_output = \"big\""))
            .expect_err("bad size")
            .to_string();
        assert!(e.contains("jobs.max_output"), "{e}");
    }

    #[test]
    fn pin_07_the_process_executor_is_refused_unless_the_operator_opts_in() {
        let c = parse(SAMPLE).expect("sample");
        assert_eq!(
            c.executor,
            ExecutorKind::Builtin,
            "the sample runs no tenant code"
        );
        let process = SAMPLE.replace("executor = \"builtin\"", "executor = \"process\"");
        let e = parse(&process).expect_err("not a sandbox").to_string();
        assert!(
            e.contains("jobs.executor") && e.contains("not a sandbox"),
            "{e}"
        );
        let c = parse(&process.replace(
            "executor = \"process\"",
            "executor = \"process\"\nallow_unsandboxed = true",
        ))
        .expect("opted in");
        assert_eq!(c.executor, ExecutorKind::Process);
        let e = parse(&SAMPLE.replace(
            "executor = \"builtin\"",
            "executor = \"docker\"\nallow_unsandboxed = true",
        ))
        .expect_err("meaningless")
        .to_string();
        assert!(e.contains("jobs.allow_unsandboxed"), "{e}");
    }

    #[test]
    fn pin_02_the_fetch_allow_list_is_empty_unless_named() {
        let c = parse(SAMPLE).expect("sample");
        assert_eq!(c.fetch_allow, AllowList::default());
        let c = parse(&SAMPLE.replace("allow = []", "allow = [\"127.0.0.0/8\", \"::1\"]"))
            .expect("loopback");
        assert!(c.fetch_allow.permits("127.0.0.1".parse().expect("ip")));
        assert!(!c.fetch_allow.permits("10.0.0.1".parse().expect("ip")));
        let e = parse(&SAMPLE.replace("allow = []", "allow = [\"localhost\"]"))
            .expect_err("a name")
            .to_string();
        assert!(e.contains("fetch.allow"), "{e}");
    }

    #[test]
    fn docker_and_podman_select_the_container_engine() {
        let c = parse(&SAMPLE.replace("executor = \"builtin\"", "executor = \"docker\""))
            .expect("docker");
        let e = c.container.expect("engine");
        assert_eq!(e.socket, Path::new("/var/run/docker.sock"));
        assert_eq!(e.network, "none");
        let c = parse(&SAMPLE.replace(
            "executor = \"builtin\"",
            "executor = \"podman\"\nsocket = \"unix:///run/user/1000/podman/podman.sock\"\nnetwork = \"bridge\"",
        ))
        .expect("podman");
        let e = c.container.expect("engine");
        assert_eq!(
            (e.engine.as_str(), e.socket.as_path(), e.network.as_str()),
            (
                "podman",
                Path::new("/run/user/1000/podman/podman.sock"),
                "bridge"
            )
        );
        let bad = parse(&SAMPLE.replace(
            "executor = \"builtin\"",
            "executor = \"docker\"\nsocket = \"tcp://10.0.0.1:2375\"",
        ))
        .expect_err("tcp")
        .to_string();
        assert!(bad.contains("jobs.socket"), "{bad}");
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            (
                SAMPLE.replace("confirmations", "confirmation"),
                "confirmation",
            ),
            (
                SAMPLE.replace("mode = \"onchain\"", "mode = \"maybe\""),
                "bidding.mode",
            ),
            (
                SAMPLE.replace("listen = \"127.0.0.1:7311\"", "listen = \"here\""),
                "http.listen",
            ),
            (
                SAMPLE.replace("floor_per_hour = \"0.80\"", "floor_per_hour = \"cheap\""),
                "pricing.any.floor_per_hour",
            ),
            (
                SAMPLE.replace("[pricing.any]", "[pricing.tpu]"),
                "pricing.tpu",
            ),
            (
                SAMPLE.replace("executor = \"builtin\"", "executor = \"vm\""),
                "jobs.executor",
            ),
            (
                SAMPLE.replace(
                    "password = \"env:GRIDLEASE_PASSWORD\"",
                    "password = \"hunter2\"",
                ),
                "wallet.password",
            ),
            (
                SAMPLE.replace(
                    "rpc = \"http://127.0.0.1:8545\"",
                    "rpc = \"127.0.0.1:8545\"",
                ),
                "chain.rpc",
            ),
            (
                SAMPLE.replace(
                    "# fallback_rpc = \"https://rpc.example.org\"",
                    "fallback_rpc = \"http://127.0.0.1:8545\"",
                ),
                "chain.fallback_rpc",
            ),
            (
                SAMPLE.replace(
                    "# fallback_rpc = \"https://rpc.example.org\"",
                    "fallback_rpc = \"rpc.example.org\"",
                ),
                "chain.fallback_rpc",
            ),
        ];
        for (text, key) in cases {
            let e = parse(&text).expect_err(key).to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
        let e = parse("[chain]\nrpc = 1").expect_err("bad type").to_string();
        assert!(e.contains("line 2") || e.contains("rpc"), "{e}");
    }

    #[test]
    fn a_raw_key_is_only_taken_from_the_environment() {
        let text = SAMPLE
            .lines()
            .filter(|l| !l.starts_with("keystore"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                "password = \"env:GRIDLEASE_PASSWORD\"",
                "private_key = \"0x11\"",
            );
        let e = parse(&text).expect_err("raw key").to_string();
        assert!(e.contains("env:VAR only"), "{e}");
        let ok = text.replace("private_key = \"0x11\"", "private_key = \"env:OP_KEY\"");
        let c = parse(&ok).expect("env key");
        assert_eq!(c.operator, KeySource::Env("OP_KEY".into()));
    }
}
