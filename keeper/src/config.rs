//! `keeper.toml`, validated up front: unknown keys and bad values are rejected with the key's
//! dotted name.

use std::{collections::HashSet, net::SocketAddr, path::PathBuf};

use alloy::primitives::Address;
use gridlease_chain::wallet::KeySource;
use gridlease_daemon::{ChainSection, ConfigFile, WalletSection};
use gridlease_fetch::AllowList;
use gridlease_primitives::units::parse_amount;
use serde::Deserialize;

use crate::strategy::Flags;

/// The sample `gridlease-keeper init` writes.
pub const SAMPLE: &str = include_str!("../keeper.sample.toml");

/// Names `profit.unpaid` accepts.
pub const ACTIONS: [&str; 10] = [
    "award",
    "settle",
    "close",
    "no-show",
    "missed-deadline",
    "report-stale",
    "stale-heartbeat",
    "fraud",
    "challenge",
    "unavailable",
];

/// How to find a rollup's L1 data fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1Fee {
    /// The OP-stack oracle if the chain has one.
    Auto,
    /// The OP-stack `GasPriceOracle.getL1Fee`.
    OpStack,
    /// No L1 fee.
    None,
}

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// JSON-RPC endpoint.
    pub rpc: String,
    /// Private transaction endpoint (KB-04).
    pub private_rpc: Option<String>,
    /// A second endpoint that takes the requests `rpc` fails to answer.
    pub fallback_rpc: Option<String>,
    /// Deployments file.
    pub deployments: PathBuf,
    /// Poll interval, ms.
    pub poll_ms: u64,
    /// L1 data fee source.
    pub l1_fee: L1Fee,
    /// The keeper's key.
    pub wallet: KeySource,
    /// Below this many wei the key's balance is low: unpaid work is shed (OFF-20).
    pub low_balance: alloy::primitives::U256,
    /// Seconds after a held result's window ends that its provider has to close the lease
    /// itself before this keeper does (`strategies.close_grace_s`).
    pub close_grace_s: u64,
    /// Seconds between a result's first failed download and the second, after which it is
    /// challenged (`strategies.unavailable_after_s`).
    pub unavailable_after_s: u64,
    /// Strategies on/off.
    pub flags: Flags,
    /// Token units (decimal text) per native coin.
    pub native_price: String,
    /// Reward over cost, bps.
    pub margin_bps: u64,
    /// Least profit per transaction (decimal text, token units).
    pub min_profit: String,
    /// Gas price cap for non-urgent work, wei.
    pub max_gas_price: u128,
    /// Gas spend per hour, wei.
    pub hourly_budget: u128,
    /// Actions allowed at a loss.
    pub unpaid: HashSet<String>,
    /// Leases per settle.
    pub settle_max: usize,
    /// Transactions pending at once.
    pub max_in_flight: usize,
    /// Withdraw above this (decimal text, token units).
    pub withdraw_above: String,
    /// Withdrawals go here (default: the keeper).
    pub payout: Option<Address>,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// State directory.
    pub data_dir: PathBuf,
    /// Internal networks URIs named by others may reach (`[fetch] allow`; empty on a real
    /// market: PIN-02). A devnet names its loopback.
    pub fetch_allow: AllowList,
}

pub use gridlease_daemon::ConfigError;

/// `strategies.close_grace_s` unless set: a provider's node closes its own completed leases
/// every 10 s and pays no keeper fee, so a keeper is the fallback, not a rival (KB-02).
const DEFAULT_CLOSE_GRACE_S: u64 = 30;

/// `strategies.unavailable_after_s` unless set: a challenge costs a bond, which an honest
/// provider's answer takes, so a node restarting or a short outage (of the provider's or the
/// keeper's network) is waited out; the challenge window is far longer.
const DEFAULT_UNAVAILABLE_AFTER_S: u64 = 120;

/// Milliseconds between chain polls unless `chain.poll_ms` says otherwise.
const DEFAULT_POLL_MS: u64 = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    chain: ChainSection,
    wallet: WalletSection,
    #[serde(default)]
    strategies: RawStrategies,
    #[serde(default)]
    profit: RawProfit,
    #[serde(default)]
    batch: RawBatch,
    #[serde(default)]
    earnings: RawEarnings,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    data: RawData,
    #[serde(default)]
    fetch: RawFetch,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStrategies {
    award: bool,
    settle: bool,
    close: bool,
    no_show: bool,
    missed_deadline: bool,
    stale_heartbeat: bool,
    verify: bool,
    challenge: bool,
    challenge_private: bool,
    close_grace_s: u64,
    unavailable_after_s: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawProfit {
    native_price: String,
    margin_bps: u64,
    min_profit: String,
    max_gas_price_gwei: String,
    hourly_budget: String,
    unpaid: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawBatch {
    settle_max: usize,
    max_in_flight: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEarnings {
    withdraw_above: String,
    payout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    listen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawData {
    dir: PathBuf,
}

impl Default for RawStrategies {
    fn default() -> Self {
        Self {
            award: true,
            settle: true,
            close: true,
            no_show: true,
            missed_deadline: true,
            stale_heartbeat: true,
            verify: true,
            challenge: true,
            challenge_private: false,
            close_grace_s: DEFAULT_CLOSE_GRACE_S,
            unavailable_after_s: DEFAULT_UNAVAILABLE_AFTER_S,
        }
    }
}
impl Default for RawProfit {
    fn default() -> Self {
        Self {
            native_price: "3000".into(),
            margin_bps: 2_000,
            min_profit: "0".into(),
            max_gas_price_gwei: "50".into(),
            hourly_budget: "0.05".into(),
            unpaid: vec!["award".into()],
        }
    }
}
impl Default for RawBatch {
    fn default() -> Self {
        Self {
            settle_max: 100,
            max_in_flight: 8,
        }
    }
}
impl Default for RawEarnings {
    fn default() -> Self {
        Self {
            withdraw_above: "10".into(),
            payout: None,
        }
    }
}
impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7411".into(),
        }
    }
}
impl Default for RawData {
    fn default() -> Self {
        Self {
            dir: "keeper-data".into(),
        }
    }
}

impl Config {
    /// The amounts read at each token's decimals (`profit.native_price`, `profit.min_profit`,
    /// `earnings.withdraw_above`) checked against the tokens the deployment pays in, by symbol and
    /// decimals: one with more decimals than a token has is refused at start. Before, it was read
    /// as "never" (no work paid enough, nothing was withdrawn) without a word.
    pub fn check_token_amounts(&self, tokens: &[(String, u8)]) -> Result<(), String> {
        for (key, value) in [
            ("profit.native_price", &self.native_price),
            ("profit.min_profit", &self.min_profit),
            ("earnings.withdraw_above", &self.withdraw_above),
        ] {
            for (symbol, decimals) in tokens {
                if let Err(e) = parse_amount(value, *decimals) {
                    return Err(format!(
                        "{key} = \"{value}\" is read in every payment token, and {symbol} has {decimals} decimals ({e}): give it with at most {decimals} decimals"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Read and validate `path` (relative paths are relative to its directory).
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        ConfigFile::load(path, "gridlease-keeper", Self::parse)
    }

    /// Validate `text`.
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
        let private_rpc = raw
            .chain
            .private_rpc
            .as_deref()
            .map(|u| raw.chain.url(&file, "private_rpc", u))
            .transpose()?;
        file.unused(
            "chain.confirmations",
            raw.chain.confirmations.is_some(),
            "the provider node's setting; the keeper acts on what each simulation shows",
        )?;
        file.unused(
            "wallet.owner",
            raw.wallet.owner.is_some(),
            "the provider node's setting; a keeper's earnings go to earnings.payout",
        )?;
        let l1_fee = match raw.chain.l1_fee.as_deref().unwrap_or("auto") {
            "auto" => L1Fee::Auto,
            "op-stack" => L1Fee::OpStack,
            "none" => L1Fee::None,
            other => {
                return Err(bad(
                    "chain.l1_fee",
                    format!("\"{other}\": expected auto, op-stack or none"),
                ));
            }
        };
        let wallet = raw.wallet.key(&file)?;
        let low_balance = raw.wallet.low_balance(&file)?;
        let s = raw.strategies;
        let flags = Flags {
            award: s.award,
            settle: s.settle,
            close: s.close,
            no_show: s.no_show,
            missed_deadline: s.missed_deadline,
            stale_heartbeat: s.stale_heartbeat,
            verify: s.verify,
            challenge: s.challenge,
            challenge_private: s.challenge_private,
        };
        let p = raw.profit;
        // Checked with 18 decimals here; used at each token's decimals.
        parse_amount(&p.native_price, 18).map_err(|e| bad("profit.native_price", e.to_string()))?;
        parse_amount(&p.min_profit, 18).map_err(|e| bad("profit.min_profit", e.to_string()))?;
        if p.margin_bps > 1_000_000 {
            return Err(bad("profit.margin_bps", "at most 1000000 (100x)".into()));
        }
        let max_gas_price = parse_amount(&p.max_gas_price_gwei, 9)
            .map_err(|e| bad("profit.max_gas_price_gwei", e.to_string()))?;
        let hourly_budget = parse_amount(&p.hourly_budget, 18)
            .map_err(|e| bad("profit.hourly_budget", e.to_string()))?;
        for a in &p.unpaid {
            if !ACTIONS.contains(&a.as_str()) {
                return Err(bad(
                    "profit.unpaid",
                    format!("unknown action \"{a}\"; one of {ACTIONS:?}"),
                ));
            }
        }
        if raw.batch.settle_max == 0 || raw.batch.settle_max > 1_000 {
            return Err(bad("batch.settle_max", "between 1 and 1000".into()));
        }
        if raw.batch.max_in_flight == 0 || raw.batch.max_in_flight > 256 {
            return Err(bad("batch.max_in_flight", "between 1 and 256".into()));
        }
        parse_amount(&raw.earnings.withdraw_above, 18)
            .map_err(|e| bad("earnings.withdraw_above", e.to_string()))?;
        let payout = raw
            .earnings
            .payout
            .map(|a| {
                a.parse::<Address>()
                    .map_err(|_| bad("earnings.payout", format!("\"{a}\" is not a 0x address")))
            })
            .transpose()?;
        let listen = raw.http.listen.parse::<SocketAddr>().map_err(|_| {
            bad(
                "http.listen",
                format!("\"{}\" is not an address:port", raw.http.listen),
            )
        })?;
        Ok(Self {
            rpc: chain.rpc,
            private_rpc,
            fallback_rpc: chain.fallback_rpc,
            deployments: chain.deployments,
            poll_ms: chain.poll_ms,
            l1_fee,
            wallet,
            low_balance,
            flags,
            close_grace_s: s.close_grace_s,
            unavailable_after_s: s.unavailable_after_s,
            native_price: p.native_price.trim().to_owned(),
            margin_bps: p.margin_bps,
            min_profit: p.min_profit.trim().to_owned(),
            max_gas_price,
            hourly_budget,
            unpaid: p.unpaid.into_iter().collect(),
            settle_max: raw.batch.settle_max,
            max_in_flight: raw.batch.max_in_flight,
            withdraw_above: raw.earnings.withdraw_above.trim().to_owned(),
            payout,
            listen,
            data_dir: rel(raw.data.dir),
            fetch_allow: AllowList::parse(&raw.fetch.allow).map_err(|e| bad("fetch.allow", e))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("keeper.toml"), Path::new("/srv/k"))
    }

    #[test]
    fn the_sample_is_valid() {
        let c = parse(SAMPLE).expect("test setup");
        assert_eq!(c.data_dir, Path::new("/srv/k/keeper-data"));
        assert_eq!(c.max_gas_price, 50_000_000_000);
        assert_eq!(c.hourly_budget, 50_000_000_000_000_000);
        assert!(c.unpaid.contains("award"));
        // A stale report is priced on the proof it leads to, not done at a loss.
        assert!(!c.unpaid.contains("report-stale"));
        assert_eq!(c.flags, Flags::ALL);
        assert!(
            !c.flags.challenge_private,
            "private results are not bet on by default"
        );
        assert_eq!(c.unavailable_after_s, 120);
    }

    #[test]
    fn an_amount_finer_than_a_payment_token_is_refused_naming_key_and_token() {
        let min = "[chain]\nrpc = \"http://x\"\ndeployments = \"d.json\"\n[wallet]\nprivate_key = \"env:K\"\n";
        let tokens = [("USDC".to_owned(), 6), ("DAI".to_owned(), 18)];
        let c = parse(SAMPLE).expect("sample");
        assert_eq!(c.check_token_amounts(&tokens), Ok(()));
        for (extra, key) in [
            (
                "[profit]\nmin_profit = \"0.0000001\"\n",
                "profit.min_profit",
            ),
            (
                "[profit]\nnative_price = \"3000.1234567\"\n",
                "profit.native_price",
            ),
            (
                "[earnings]\nwithdraw_above = \"1.0000001\"\n",
                "earnings.withdraw_above",
            ),
        ] {
            let c = parse(&format!("{min}{extra}")).expect("valid at 18 decimals");
            let e = c.check_token_amounts(&tokens).expect_err(key);
            assert!(
                e.starts_with(key) && e.contains("USDC has 6 decimals"),
                "{e}"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let min = "[chain]\nrpc = \"http://x\"\ndeployments = \"d.json\"\n[wallet]\nprivate_key = \"env:K\"\n";
        assert!(parse(min).is_ok());
        for (extra, key) in [
            ("[profit]\nunpaid = [\"steal\"]\n", "profit.unpaid"),
            (
                "[profit]\nmax_gas_price_gwei = \"lots\"\n",
                "profit.max_gas_price_gwei",
            ),
            ("[batch]\nsettle_max = 0\n", "batch.settle_max"),
            ("[earnings]\npayout = \"me\"\n", "earnings.payout"),
            ("[http]\nlisten = \"here\"\n", "http.listen"),
            ("", "wallet.low_balance"),
        ] {
            let text = match extra {
                "" => min.replace("env:K\"\n", "env:K\"\nlow_balance = \"a little\"\n"),
                _ => format!("{min}{extra}"),
            };
            let e = parse(&text).expect_err("must be refused").to_string();
            assert!(e.contains(key), "{e}");
        }
        let e = parse(&min.replace("env:K", "0xabc"))
            .expect_err("must be refused")
            .to_string();
        assert!(e.contains("wallet.private_key"), "{e}");
        let e = parse(&format!("{min}[strategies]\nsettel = true\n"))
            .expect_err("must be refused")
            .to_string();
        assert!(e.contains("settel"), "{e}");
        let e = parse(&min.replace("http://x", "ftp://x"))
            .expect_err("must be refused")
            .to_string();
        assert!(e.contains("chain.rpc"), "{e}");
        // The provider node's keys in the shared sections are refused by name, with the reason.
        for (text, key) in [
            (
                min.replace("[wallet]", "confirmations = 2\n[wallet]"),
                "chain.confirmations",
            ),
            (
                format!("{min}owner = \"0x0000000000000000000000000000000000000001\"\n"),
                "wallet.owner",
            ),
        ] {
            let e = parse(&text).expect_err("must be refused").to_string();
            assert!(e.contains(key) && e.contains("does not read it"), "{e}");
        }
    }
}
