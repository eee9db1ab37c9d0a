//! `deployments/<chainId>.json`: where the suite lives on a chain. Written by `gridlease-deploy`,
//! read by the CLI, the provider node and the keeper.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use alloy::primitives::{Address, B256};
use serde::{Deserialize, Serialize};

/// One deployed contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployed {
    /// Its address.
    pub address: Address,
    /// Block of the deployment (for a contract found already deployed, the first block with its
    /// code; 0 when the node keeps no state that old).
    pub block: u64,
    /// Deployment transaction (none when found already deployed by someone else).
    pub tx_hash: Option<B256>,
    /// ABI file, relative to the repository root.
    pub abi: String,
}

/// A payment token the market allows, as the deployment configured it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Symbol people type (`USDC`).
    pub symbol: String,
    /// Address.
    pub address: Address,
    /// Decimals.
    pub decimals: u8,
}

/// The deployments file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployments {
    /// Chain id.
    pub chain_id: u64,
    /// Contract name (`Staking`, `Market`, `MockStablecoin`) -> deployment.
    pub contracts: BTreeMap<String, Deployed>,
    /// Payment tokens by symbol.
    pub tokens: Vec<TokenEntry>,
}

/// Why the deployments file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentsError {
    /// Missing or unreadable.
    #[error(
        "cannot read {path}: {err} (deploy first: `gridlease-deploy devnet` or `gridlease-deploy deploy`)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        err: std::io::Error,
    },
    /// Not the expected JSON.
    #[error("{path} is not a gridlease deployments file: {err}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        err: serde_json::Error,
    },
    /// Written for another chain.
    #[error("{path} is for chain {file}, but the RPC is chain {rpc}")]
    WrongChain {
        /// The file.
        path: PathBuf,
        /// Its chain id.
        file: u64,
        /// The RPC's chain id.
        rpc: u64,
    },
    /// A contract is not in the file.
    #[error("the deployment has no {0} contract")]
    Missing(String),
    /// No such payment token.
    #[error("unknown payment token \"{0}\"; the deployment allows: {1}")]
    UnknownToken(String, String),
}

impl Deployments {
    /// Default path for `chain_id` under `root`.
    pub fn default_path(root: &Path, chain_id: u64) -> PathBuf {
        root.join("deployments").join(format!("{chain_id}.json"))
    }

    /// Read and check the chain id.
    pub fn load(path: &Path, chain_id: u64) -> Result<Self, DeploymentsError> {
        let text = std::fs::read_to_string(path).map_err(|err| DeploymentsError::Read {
            path: path.to_owned(),
            err,
        })?;
        let d: Self = serde_json::from_str(&text).map_err(|err| DeploymentsError::Parse {
            path: path.to_owned(),
            err,
        })?;
        if d.chain_id != chain_id {
            return Err(DeploymentsError::WrongChain {
                path: path.to_owned(),
                file: d.chain_id,
                rpc: chain_id,
            });
        }
        Ok(d)
    }

    /// Write atomically (temp file + rename), pretty-printed.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }

    /// Address of contract `name`.
    pub fn address(&self, name: &str) -> Result<Address, DeploymentsError> {
        self.contracts
            .get(name)
            .map(|c| c.address)
            .ok_or_else(|| DeploymentsError::Missing(name.to_owned()))
    }

    /// A payment token by symbol (case-insensitive) or address.
    pub fn token(&self, symbol_or_address: &str) -> Result<TokenEntry, DeploymentsError> {
        let want = symbol_or_address.trim();
        let by_addr = want.parse::<Address>().ok();
        self.tokens
            .iter()
            .find(|t| Some(t.address) == by_addr || t.symbol.eq_ignore_ascii_case(want))
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = self.tokens.iter().map(|t| t.symbol.as_str()).collect();
                DeploymentsError::UnknownToken(want.to_owned(), known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = Deployments::default_path(dir.path(), 31_337);
        let mut contracts = BTreeMap::new();
        contracts.insert(
            "Market".to_owned(),
            Deployed {
                address: Address::repeat_byte(1),
                block: 3,
                tx_hash: Some(B256::repeat_byte(2)),
                abi: "target/abi/Market.json".into(),
            },
        );
        let d = Deployments {
            chain_id: 31_337,
            contracts,
            tokens: vec![TokenEntry {
                symbol: "USDC".into(),
                address: Address::repeat_byte(3),
                decimals: 6,
            }],
        };
        d.save(&path).expect("save");
        assert_eq!(Deployments::load(&path, 31_337).expect("load"), d);
        assert!(matches!(
            Deployments::load(&path, 1),
            Err(DeploymentsError::WrongChain { .. })
        ));
        assert_eq!(d.token("usdc").expect("by symbol").decimals, 6);
        assert!(d.token(&Address::repeat_byte(3).to_string()).is_ok());
        assert!(matches!(
            d.token("DAI"),
            Err(DeploymentsError::UnknownToken(..))
        ));
    }
}
