//! `provider.toml`: everything a provider node needs, validated up front. Unknown keys and bad
//! values are rejected with the key's dotted name (and the line, from TOML), so a typo never
//! silently drops a setting.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf};

use alloy::primitives::Address;
use gridlease_daemon::ConfigFile;
use gridlease_fetch::AllowList;
use gridlease_primitives::{
    gpu,
    units::{parse_amount, parse_duration},
};

mod raw;
mod sections;
#[cfg(test)]
mod tests;

pub use sections::{BidMode, Capacity, Config, EngineConfig, ExecutorKind, Pricing};

use raw::Raw;

/// The sample `gridlease-provider init` writes: every key, commented.
pub const SAMPLE: &str = include_str!("../../provider.sample.toml");

pub use gridlease_daemon::ConfigError;

/// Milliseconds between chain polls unless `chain.poll_ms` says otherwise.
const DEFAULT_POLL_MS: u64 = 500;
/// Blocks an event must be deep unless `chain.confirmations` says otherwise.
const DEFAULT_CONFIRMATIONS: u64 = 2;

impl Config {
    /// Read and validate `path`. Relative directories are taken relative to the file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        ConfigFile::load(path, "gridlease-provider", Self::parse)
    }

    /// Validate `text` (named `path` in errors; relative paths resolved against `base`).
    pub fn parse(
        text: &str,
        path: &std::path::Path,
        base: &std::path::Path,
    ) -> Result<Self, ConfigError> {
        let file = ConfigFile::new(path, base);
        let raw: Raw = file.parse(text)?;
        let bad = |key: &str, why: String| file.bad(key, why);
        let rel = |p: PathBuf| file.rel(p);

        let chain = raw.chain.check(&file, DEFAULT_POLL_MS)?;
        file.unused(
            "chain.private_rpc",
            raw.chain.private_rpc.is_some(),
            "a keeper's setting; the node sends through chain.rpc",
        )?;
        file.unused(
            "chain.l1_fee",
            raw.chain.l1_fee.is_some(),
            "a keeper's setting; the node pays what the RPC estimates",
        )?;
        let operator = raw.wallet.key(&file)?;
        let low_balance = raw.wallet.low_balance(&file)?;
        let owner = raw
            .wallet
            .owner
            .as_deref()
            .and_then(|o| o.parse::<Address>().ok())
            .ok_or_else(|| {
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
        if raw.jobs.max_ram_gib == Some(0) {
            return Err(bad(
                "jobs.max_ram_gib",
                "at least 1 (or leave it out: the host's memory shared among max_concurrent jobs)"
                    .into(),
            ));
        }
        if raw.jobs.max_cpu_cores == Some(0) {
            return Err(bad(
                "jobs.max_cpu_cores",
                "at least 1 (or leave it out: the host's cores)".into(),
            ));
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
                if raw.jobs.socket.is_some()
                    || raw.jobs.network.is_some()
                    || raw.jobs.local_images.is_some()
                {
                    return Err(bad(
                        "jobs.socket",
                        "socket, network and local_images are for executor = \"docker\" or \"podman\""
                            .into(),
                    ));
                }
                None
            }
            ExecutorKind::Docker => {
                let engine = raw.jobs.executor.clone();
                let socket = match &raw.jobs.socket {
                    Some(s) => {
                        EngineConfig::parse_socket(s).map_err(|why| bad("jobs.socket", why))?
                    }
                    None => EngineConfig::default_socket(&engine),
                };
                let network = raw.jobs.network.clone().unwrap_or_else(|| "none".into());
                if network.trim().is_empty() {
                    return Err(bad(
                        "jobs.network",
                        "none | bridge | host | a network's name".into(),
                    ));
                }
                let local_images = raw.jobs.local_images.clone().unwrap_or_default();
                if let Some(i) = local_images
                    .iter()
                    .find(|i| i.trim().is_empty() || i.contains(char::is_whitespace))
                {
                    return Err(bad(
                        "jobs.local_images",
                        format!(
                            "{i:?} is not an image reference (e.g. \"registry.example.com/team/job:3\")"
                        ),
                    ));
                }
                Some(EngineConfig {
                    engine,
                    socket,
                    network,
                    local_images,
                })
            }
        };
        let shutdown_grace_secs = parse_duration(&raw.jobs.shutdown_grace)
            .map_err(|e| bad("jobs.shutdown_grace", e.to_string()))?;
        let post_margin_secs = parse_duration(&raw.jobs.post_margin)
            .map_err(|e| bad("jobs.post_margin", e.to_string()))?;
        let max_output =
            parse_bytes(&raw.jobs.max_output).map_err(|e| bad("jobs.max_output", e))?;
        let keep_results_secs = parse_duration(&raw.jobs.keep_results)
            .map_err(|e| bad("jobs.keep_results", e.to_string()))?;
        let keep_images_secs = parse_duration(&raw.jobs.keep_images)
            .map_err(|e| bad("jobs.keep_images", e.to_string()))?;
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
            rpc: chain.rpc,
            fallback_rpc: chain.fallback_rpc,
            deployments: chain.deployments,
            confirmations: raw.chain.confirmations.unwrap_or(DEFAULT_CONFIRMATIONS),
            poll_ms: chain.poll_ms,
            operator,
            low_balance,
            owner,
            capacity,
            pricing,
            max_concurrent_jobs: raw.jobs.max_concurrent,
            job_ram_gib: raw.jobs.max_ram_gib,
            job_cpu_cores: raw.jobs.max_cpu_cores,
            executor,
            container,
            work_dir: rel(raw.jobs.work_dir),
            data_dir: rel(raw.jobs.data_dir),
            bid_mode,
            listen,
            public_url,
            post_margin_secs,
            max_output,
            keep_results_secs,
            keep_images_secs,
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
