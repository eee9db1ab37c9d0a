//! The sections both daemons' configuration files share, `[chain]` and `[wallet]`, parsed and
//! checked once. A key only one daemon uses is part of the shared schema, so the other daemon
//! refuses it by name with the reason ([`ConfigFile::unused`]) instead of TOML's bare "unknown
//! field".

use std::path::PathBuf;

use gridlease_chain::wallet::KeySource;
use serde::Deserialize;

use crate::{ConfigError, ConfigFile};

/// Fastest and slowest chain poll a daemon accepts, milliseconds.
pub const POLL_MS: std::ops::RangeInclusive<u64> = 10..=60_000;

/// `[chain]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSection {
    /// The RPC endpoint (http(s):// or ws(s)://).
    pub rpc: String,
    /// A second, independent endpoint used while `rpc` does not answer.
    pub fallback_rpc: Option<String>,
    /// The deployments file, relative to the configuration file.
    pub deployments: PathBuf,
    /// Milliseconds between chain polls (each daemon has its default).
    pub poll_ms: Option<u64>,
    /// Blocks an event must be deep before the provider node acts on it (provider only).
    pub confirmations: Option<u64>,
    /// A private transaction endpoint for the keeper's challenges (keeper only).
    pub private_rpc: Option<String>,
    /// How the keeper prices the L1 data fee of an L2 transaction (keeper only).
    pub l1_fee: Option<String>,
}

/// `[chain]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The RPC endpoint.
    pub rpc: String,
    /// The fallback endpoint, never the same as `rpc`.
    pub fallback_rpc: Option<String>,
    /// The deployments file, resolved against the configuration file's folder.
    pub deployments: PathBuf,
    /// Milliseconds between chain polls, within [`POLL_MS`].
    pub poll_ms: u64,
}

impl ChainSection {
    /// The shared keys checked (`poll_ms` defaults to `default_poll_ms`); the daemon-specific
    /// ones are left for the daemon.
    pub fn check(&self, file: &ConfigFile<'_>, default_poll_ms: u64) -> Result<Chain, ConfigError> {
        let rpc = self.url(file, "rpc", &self.rpc)?;
        let fallback_rpc = self
            .fallback_rpc
            .as_deref()
            .map(|u| self.url(file, "fallback_rpc", u))
            .transpose()?;
        if fallback_rpc.as_ref() == Some(&rpc) {
            return Err(file.bad(
                "chain.fallback_rpc",
                "is chain.rpc again: give a second, independent endpoint (or leave it out)",
            ));
        }
        let poll_ms = self.poll_ms.unwrap_or(default_poll_ms);
        if !POLL_MS.contains(&poll_ms) {
            return Err(file.bad("chain.poll_ms", "between 10 and 60000 milliseconds"));
        }
        Ok(Chain {
            rpc,
            fallback_rpc,
            deployments: file.rel(self.deployments.clone()),
            poll_ms,
        })
    }

    /// `chain.<key>` = `u` checked as an RPC URL.
    pub fn url(&self, file: &ConfigFile<'_>, key: &str, u: &str) -> Result<String, ConfigError> {
        crate::rpc_url(u).map_err(|e| file.bad(&format!("chain.{key}"), e))
    }
}

/// `[wallet]` as written: the daemon's signing key (a keystore with a password source, or a raw
/// key from the environment), and for the provider node the owner it works for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletSection {
    /// An encrypted keystore file, relative to the configuration file.
    pub keystore: Option<PathBuf>,
    /// Where the keystore's password comes from (`env:VAR`, `file:PATH`, `prompt`).
    pub password: Option<String>,
    /// `env:VAR` holding a raw private key (development only).
    pub private_key: Option<String>,
    /// The provider's owner address, the account that staked (provider only).
    pub owner: Option<String>,
    /// Ether (a decimal, e.g. `"0.05"`) below which the signing key's balance is low: the daemon
    /// warns and sheds new work (OFF-20). Default [`DEFAULT_LOW_BALANCE`]; `"0"` turns it off.
    pub low_balance: Option<String>,
}

/// The default `wallet.low_balance`, in ether: a few hundred transactions at L2 fees, a handful
/// on mainnet (where an operator sets more).
pub const DEFAULT_LOW_BALANCE: &str = "0.01";

impl WalletSection {
    /// The signing key's source, checked (exactly one source; a raw key only from the
    /// environment).
    pub fn key(&self, file: &ConfigFile<'_>) -> Result<KeySource, ConfigError> {
        KeySource::from_config(
            self.keystore.clone().map(|p| file.rel(p)),
            self.password.as_deref(),
            self.private_key.as_deref(),
        )
        .map_err(|(key, why)| file.bad(key, why))
    }

    /// `low_balance` in wei.
    pub fn low_balance(
        &self,
        file: &ConfigFile<'_>,
    ) -> Result<alloy::primitives::U256, ConfigError> {
        let eth = self.low_balance.as_deref().unwrap_or(DEFAULT_LOW_BALANCE);
        alloy::primitives::utils::parse_ether(eth).map_err(|e| {
            file.bad(
                "wallet.low_balance",
                format!("{eth:?} is not an amount of ether (write e.g. \"0.05\"): {e}"),
            )
        })
    }
}
