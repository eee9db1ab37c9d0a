//! `provider.toml` as written: the TOML's shape (unknown keys refused) and its defaults, before
//! validation.

use std::{collections::BTreeMap, path::PathBuf};

use gridlease_daemon::{ChainSection, WalletSection};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) chain: ChainSection,
    pub(super) wallet: WalletSection,
    #[serde(default)]
    pub(super) capacity: Option<RawCapacity>,
    #[serde(default)]
    pub(super) pricing: BTreeMap<String, RawPricing>,
    #[serde(default)]
    pub(super) jobs: RawJobs,
    #[serde(default)]
    pub(super) bidding: RawBidding,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) earnings: RawEarnings,
    #[serde(default)]
    pub(super) testing: RawTesting,
    #[serde(default)]
    pub(super) fetch: RawFetch,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    #[serde(default)]
    pub(super) allow: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTesting {
    #[serde(default)]
    pub(super) corrupt_builtin_results: bool,
    #[serde(default)]
    pub(super) withhold_results: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCapacity {
    pub(super) gpus: String,
    pub(super) class: Option<String>,
    pub(super) count: Option<u8>,
    pub(super) vram_gib: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPricing {
    pub(super) floor_per_hour: String,
    #[serde(default)]
    pub(super) utilisation_markup_bps: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJobs {
    #[serde(default = "default_max_concurrent")]
    pub(super) max_concurrent: u32,
    #[serde(default)]
    pub(super) max_ram_gib: Option<u32>,
    #[serde(default)]
    pub(super) max_cpu_cores: Option<u16>,
    #[serde(default = "default_executor")]
    pub(super) executor: String,
    #[serde(default)]
    pub(super) socket: Option<String>,
    #[serde(default)]
    pub(super) network: Option<String>,
    #[serde(default)]
    pub(super) local_images: Option<Vec<String>>,
    #[serde(default = "default_work_dir")]
    pub(super) work_dir: PathBuf,
    #[serde(default = "default_data_dir")]
    pub(super) data_dir: PathBuf,
    #[serde(default = "default_grace")]
    pub(super) shutdown_grace: String,
    #[serde(default = "default_post_margin")]
    pub(super) post_margin: String,
    #[serde(default = "default_max_output")]
    pub(super) max_output: String,
    #[serde(default = "default_keep_results")]
    pub(super) keep_results: String,
    #[serde(default = "default_keep_images")]
    pub(super) keep_images: String,
    #[serde(default)]
    pub(super) share_gpus: bool,
    #[serde(default = "default_services")]
    pub(super) services: bool,
    #[serde(default)]
    pub(super) allow_unsandboxed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBidding {
    #[serde(default = "default_mode")]
    pub(super) mode: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default = "default_listen")]
    pub(super) listen: String,
    #[serde(default)]
    pub(super) public_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEarnings {
    #[serde(default = "default_withdraw_above")]
    pub(super) withdraw_above: String,
}

fn default_post_margin() -> String {
    "30s".into()
}
fn default_max_output() -> String {
    "256MiB".into()
}
fn default_keep_results() -> String {
    "7d".into()
}
fn default_keep_images() -> String {
    "1d".into()
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
            max_ram_gib: None,
            max_cpu_cores: None,
            executor: default_executor(),
            socket: None,
            network: None,
            local_images: None,
            work_dir: default_work_dir(),
            data_dir: default_data_dir(),
            shutdown_grace: default_grace(),
            post_margin: default_post_margin(),
            max_output: default_max_output(),
            keep_results: default_keep_results(),
            keep_images: default_keep_images(),
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
