//! A daemon's configuration: the file, its errors (file, dotted key, what to write instead), and
//! the deployment it names, checked against the chain it claims to describe.

use std::path::{Path, PathBuf};

use alloy::providers::Provider;
use gridlease_chain::{Client, classify, classify_rpc, deployments::Deployments};

/// A daemon configuration error: the file, the dotted key, and what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or a key/type the schema does not have (TOML names it and its line).
    #[error("{path}: {why}")]
    Syntax {
        /// The file.
        path: std::path::PathBuf,
        /// TOML's message, with line and key.
        why: String,
    },
    /// A value the schema allows but the daemon cannot use.
    #[error("{path}: {key}: {why}")]
    Value {
        /// The file.
        path: std::path::PathBuf,
        /// Dotted key.
        key: String,
        /// Why, and what to write instead.
        why: String,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {err} (write a sample with `{daemon} init`)")]
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        err: std::io::Error,
        /// The daemon whose `init` writes one.
        daemon: &'static str,
    },
}

/// A daemon's `chain.rpc`: an http(s):// or ws(s):// URL, trimmed; the error says what is
/// accepted.
pub fn rpc_url(u: &str) -> Result<String, String> {
    let u = u.trim();
    if ["http://", "https://", "ws://", "wss://"]
        .iter()
        .any(|s| u.starts_with(s))
    {
        Ok(u.to_owned())
    } else {
        Err(format!(
            "\"{u}\" is not a JSON-RPC URL: expected http(s)://HOST:PORT or ws(s)://HOST:PORT"
        ))
    }
}

/// Read the configuration file `path` of `daemon`.
pub fn read_config(path: &Path, daemon: &'static str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|err| ConfigError::Unreadable {
        path: path.to_owned(),
        err,
        daemon,
    })
}

/// Parse `text` (the file `path`) as the raw TOML schema `T`; unknown keys are refused when `T`
/// denies them, with TOML's line and key in the message.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_owned(),
        why: e.to_string().trim().replace('\n', " "),
    })
}

/// A daemon's configuration file under validation: it names the file and the key in every error
/// and resolves relative paths against the file's folder. Both daemons read theirs through it.
#[derive(Clone, Copy, Debug)]
pub struct ConfigFile<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl<'a> ConfigFile<'a> {
    /// The file `path`, its relative paths taken from `base`.
    pub fn new(path: &'a Path, base: &'a Path) -> Self {
        Self { path, base }
    }

    /// Read `path` of `daemon` and hand its text, with the file, to `parse` (relative paths are
    /// relative to the file's folder).
    pub fn load<T>(
        path: &Path,
        daemon: &'static str,
        parse: impl FnOnce(&str, &Path, &Path) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        let text = read_config(path, daemon)?;
        // Absolute: a relative directory must name the same place for whoever uses it, a job
        // running in its own working directory included (`GRIDLEASE_OUTPUT`).
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        let folder = folder.unwrap_or(Path::new("."));
        let base = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
        parse(&text, path, &base)
    }

    /// `text` as the raw TOML schema `T` ([`parse_toml`]).
    pub fn parse<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, ConfigError> {
        parse_toml(text, self.path)
    }

    /// The error for key `key`: `why`.
    pub fn bad(&self, key: &str, why: impl Into<String>) -> ConfigError {
        ConfigError::Value {
            path: self.path.to_owned(),
            key: key.to_owned(),
            why: why.into(),
        }
    }

    /// Refuse `key` when it is set (`set`) in the file of a daemon that does not read it,
    /// saying `instead` what the user meant to do.
    pub fn unused(&self, key: &str, set: bool, instead: &str) -> Result<(), ConfigError> {
        if set {
            return Err(self.bad(key, format!("this daemon does not read it: {instead}")));
        }
        Ok(())
    }

    /// `p`, relative to the file's folder unless absolute.
    pub fn rel(&self, p: PathBuf) -> PathBuf {
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }
}

/// Load the deployments file `path` (key `chain.deployments` in messages) for `client`'s chain
/// and check that the market is really there: refuses the wrong chain (OFF-18) and a stale file.
pub async fn deployment(client: &Client, path: &Path) -> Result<Deployments, String> {
    let d = Deployments::load(path, client.chain_id).map_err(|e| {
        format!(
            "chain.deployments {} does not describe chain {} (OFF-18: refusing to run on the wrong chain): {e}",
            path.display(),
            client.chain_id
        )
    })?;
    let market = d.address("Market").map_err(|e| e.to_string())?;
    let code = client
        .provider
        .get_code_at(market)
        .await
        .map_err(|e| classify_rpc(e).to_string())?;
    if code.is_empty() {
        return Err(format!(
            "no Market contract at {market} on chain {}: the deployments file is stale (redeploy, or point chain.deployments at the right file)",
            client.chain_id
        ));
    }
    // Code there is not enough: another contract, or a market of another version whose views
    // differ, must not be served. This version's market answers `params()`, and the deployment's
    // Staking is bound to it.
    let p = &client.provider;
    gridlease_bindings::Market::new(market, p)
        .params()
        .call()
        .await
        .map_err(|e| {
            format!(
                "the contract at {market} (chain.deployments' Market) does not answer as this version's market ({}): point chain.deployments at this version's deployment",
                classify(e)
            )
        })?;
    if let Ok(staking) = d.address("Staking") {
        let bound = gridlease_bindings::Staking::new(staking, p)
            .market()
            .call()
            .await
            .map_err(|e| format!("reading Staking ({staking}): {}", classify(e)))?;
        if bound != market {
            return Err(format!(
                "Staking at {staking} is bound to the market at {bound}, not {market}: chain.deployments mixes two deployments"
            ));
        }
    }
    Ok(d)
}
