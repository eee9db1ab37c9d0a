//! The deployment config (TOML): roles, staking and market parameters, payment tokens.
//!
//! ```toml
//! salt = "gridlease-v1"        # CREATE2 salt namespace: same salt + same config = same addresses
//!
//! [roles]
//! owner = "0x..."              # governance; default: the deployer (ownership is handed over
//! treasury = "0x..."           # with Ownable2Step: the owner must call acceptOwnership)
//!
//! [staking]
//! unbonding_period = "14d"
//! reporter_bps = 1000
//! heartbeat_period = "5m"      # service leases pay up to the provider's last heartbeat + this
//!
//! [market]
//! protocol_fee_bps = 100
//! keeper_fee_bps = 10
//! min_price_per_hour = "0.0001" # in payment-token units
//! max_bid_window = "1d"
//! award_grace = "1h"
//! low_balance_window = "10m"
//! max_lease_duration = "7d"
//!
//! [results]
//! challenge_window = "1d"      # a posted result can be proven wrong this long; keep
//!                              # max_lease_duration + challenge_window <= unbonding_period
//! start_window = "10m"         # a provider acknowledges a new lease within this, or is a no-show
//! stale_grace = "15m"          # a reported heartbeat lapse is slashable after lasting this long
//!
//! [[tokens]]                   # the first token is also the stake token
//! symbol = "USDC"
//! address = "0x..."            # an existing token, or `mock = true` to deploy MockStablecoin
//! decimals = 6
//! ```

use alloy::primitives::Address;
use anyhow::{Context, Result, bail};
use gridlease_core::units::{parse_amount, parse_duration};
use serde::Deserialize;

/// A parsed, checked deployment config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployConfig {
    /// CREATE2 salt namespace.
    pub salt: String,
    /// Final governance owner (None: the deployer keeps it).
    pub owner: Option<Address>,
    /// Fee receiver (None: the deployer).
    pub treasury: Option<Address>,
    /// Staking unbonding period, seconds.
    pub unbonding_period: u64,
    /// Reporter share of a slash, bps.
    pub reporter_bps: u16,
    /// Protocol fee, bps.
    pub protocol_fee_bps: u16,
    /// Keeper fee, bps.
    pub keeper_fee_bps: u16,
    /// Minimum price, 18-decimal units per second.
    pub min_price_per_second: u64,
    /// Longest bid window, seconds.
    pub max_bid_window: u32,
    /// Award grace, seconds.
    pub award_grace: u32,
    /// Low-balance window, seconds.
    pub low_balance_window: u32,
    /// Longest lease, seconds.
    pub max_lease_duration: u32,
    /// A service lease pays up to its provider's last heartbeat plus this, seconds (Staking).
    pub heartbeat_period: u16,
    /// Seconds a posted result can be proven wrong (fixed at deployment: part of the address).
    pub challenge_window: u64,
    /// Seconds a provider has to acknowledge a new lease (fixed at deployment).
    pub start_window: u32,
    /// Seconds a reported heartbeat lapse must last to be slashable (fixed at deployment).
    pub stale_grace: u32,
    /// Payment tokens; the first is the stake token.
    pub tokens: Vec<TokenConfig>,
}

/// A payment token to allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenConfig {
    /// Symbol.
    pub symbol: String,
    /// Existing token, or None to deploy a MockStablecoin.
    pub address: Option<Address>,
    /// Decimals (for a mock; checked against the chain for an existing token).
    pub decimals: u8,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    salt: Option<String>,
    #[serde(default)]
    roles: RawRoles,
    #[serde(default)]
    staking: RawStaking,
    #[serde(default)]
    market: RawMarket,
    #[serde(default)]
    results: RawResults,
    #[serde(default)]
    tokens: Vec<RawToken>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawResults {
    challenge_window: Option<String>,
    start_window: Option<String>,
    stale_grace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRoles {
    owner: Option<Address>,
    treasury: Option<Address>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStaking {
    unbonding_period: Option<String>,
    reporter_bps: Option<u16>,
    heartbeat_period: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMarket {
    protocol_fee_bps: Option<u16>,
    keeper_fee_bps: Option<u16>,
    min_price_per_hour: Option<String>,
    max_bid_window: Option<String>,
    award_grace: Option<String>,
    low_balance_window: Option<String>,
    max_lease_duration: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    symbol: String,
    address: Option<Address>,
    #[serde(default)]
    mock: bool,
    decimals: Option<u8>,
}

fn secs(v: Option<&String>, default: u64, field: &str) -> Result<u64> {
    match v {
        None => Ok(default),
        Some(s) => parse_duration(s).with_context(|| field.to_owned()),
    }
}

fn secs32(v: Option<&String>, default: u64, field: &str) -> Result<u32> {
    u32::try_from(secs(v, default, field)?).with_context(|| format!("{field} is too long"))
}

impl DeployConfig {
    /// Parse and check TOML text.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: Raw = toml::from_str(text).context("deployment config")?;
        let m = &raw.market;
        if raw.tokens.is_empty() {
            bail!(
                "the config needs at least one [[tokens]] entry (the first is also the stake token)"
            );
        }
        let mut tokens = Vec::new();
        for t in &raw.tokens {
            match (t.address, t.mock) {
                (Some(_), true) => bail!(
                    "token {}: give `address` or `mock = true`, not both",
                    t.symbol
                ),
                (None, false) => bail!(
                    "token {}: give its `address`, or `mock = true` to deploy a mock",
                    t.symbol
                ),
                _ => {}
            }
            let decimals = t.decimals.unwrap_or(6);
            if decimals > 18 {
                bail!(
                    "token {}: {decimals} decimals; the market supports at most 18",
                    t.symbol
                );
            }
            tokens.push(TokenConfig {
                symbol: t.symbol.clone(),
                address: t.address,
                decimals,
            });
        }
        // The minimum price is given per hour in units of the first token.
        let dec = tokens[0].decimals;
        let min_per_hour = match &m.min_price_per_hour {
            Some(p) => parse_amount(p, dec).context("market.min_price_per_hour")?,
            None => 1,
        };
        let lease = secs(
            m.max_lease_duration.as_ref(),
            7 * 86_400,
            "market.max_lease_duration",
        )?;
        let window = secs(
            raw.results.challenge_window.as_ref(),
            86_400,
            "results.challenge_window",
        )?;
        let period = secs(
            raw.staking.unbonding_period.as_ref(),
            14 * 86_400,
            "staking.unbonding_period",
        )?;
        if window == 0 || lease + window > period {
            bail!(
                "results.challenge_window must be positive and max_lease_duration + challenge_window \
                 must not exceed staking.unbonding_period, or a provider could unbond before a fault is proven"
            );
        }
        let min_per_second = gridlease_core::units::rate_from_hourly(min_per_hour, dec)
            .and_then(|r| u64::try_from(r.max(1)).ok())
            .context("market.min_price_per_hour is too large")?;
        for (name, v) in [
            ("results.start_window", raw.results.start_window.as_ref()),
            ("results.stale_grace", raw.results.stale_grace.as_ref()),
        ] {
            if secs(v, 1, name)? == 0 {
                bail!("{name} must be more than zero");
            }
        }
        Ok(Self {
            salt: raw.salt.unwrap_or_else(|| "gridlease-v1".into()),
            owner: raw.roles.owner,
            treasury: raw.roles.treasury,
            unbonding_period: period,
            reporter_bps: raw.staking.reporter_bps.unwrap_or(1_000),
            protocol_fee_bps: m.protocol_fee_bps.unwrap_or(100),
            keeper_fee_bps: m.keeper_fee_bps.unwrap_or(10),
            min_price_per_second: min_per_second,
            max_bid_window: secs32(m.max_bid_window.as_ref(), 86_400, "market.max_bid_window")?,
            award_grace: secs32(m.award_grace.as_ref(), 3_600, "market.award_grace")?,
            low_balance_window: secs32(
                m.low_balance_window.as_ref(),
                600,
                "market.low_balance_window",
            )?,
            max_lease_duration: u32::try_from(lease)
                .context("market.max_lease_duration is too long")?,
            challenge_window: window,
            heartbeat_period: match secs(
                raw.staking.heartbeat_period.as_ref(),
                300,
                "staking.heartbeat_period",
            )? {
                p @ 60..=65_535 => p as u16,
                p => bail!("staking.heartbeat_period is {p} s; it must be 60 s to 65,535 s"),
            },
            start_window: secs32(
                raw.results.start_window.as_ref(),
                600,
                "results.start_window",
            )?,
            stale_grace: secs32(raw.results.stale_grace.as_ref(), 900, "results.stale_grace")?,
            tokens,
        })
    }

    /// The devnet config: a 6-decimal mock USDC, short windows so a demo moves quickly.
    pub fn devnet() -> Self {
        Self::parse(DEVNET).expect("the built-in devnet config is valid")
    }
}

/// The built-in devnet config (also `deploy/devnet.toml`).
pub const DEVNET: &str = include_str!("../devnet.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_config_parses() {
        let c = DeployConfig::devnet();
        assert_eq!(c.tokens[0].symbol, "USDC");
        assert_eq!(c.tokens[0].address, None);
        assert!(u64::from(c.max_lease_duration) * 2 <= c.unbonding_period);
    }

    #[test]
    fn bad_configs_say_why() {
        let e = DeployConfig::parse("").expect_err("no tokens");
        assert!(e.to_string().contains("[[tokens]]"));
        let e = DeployConfig::parse("[[tokens]]\nsymbol = \"X\"\n").expect_err("no address");
        assert!(e.to_string().contains("mock = true"));
        let e = DeployConfig::parse("[[tokens]]\nsymbol = \"X\"\nmock = true\ndecimals = 24\n")
            .expect_err("decimals");
        assert!(e.to_string().contains("at most 18"));
        let e = DeployConfig::parse("typo = 1\n[[tokens]]\nsymbol = \"X\"\nmock = true\n")
            .expect_err("unknown key");
        assert!(format!("{e:#}").contains("unknown field"));
        let e = DeployConfig::parse(
            "[results]\nstale_grace = \"0\"\n[[tokens]]\nsymbol = \"X\"\nmock = true\n",
        )
        .expect_err("zero grace");
        assert!(
            e.to_string()
                .contains("results.stale_grace must be more than zero"),
            "{e:#}"
        );
    }
}
