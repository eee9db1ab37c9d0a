//! The deployment config (TOML): roles, staking and market parameters, payment tokens.
//!
//! ```toml
//! salt = "gridlease-v1"        # CREATE2 salt namespace: same salt + same config = same addresses
//!
//! [roles]
//! owner = "0x..."              # governance: proposer and executor of the Timelock that owns
//!                              # Market and Staking (default: the deployer)
//! treasury = "0x..."           # receives protocol fees and slash remainders (default: deployer)
//!
//! [governance]
//! timelock_delay = "3d"        # every parameter and module change waits this long; at least
//!                              # the results module's fault horizon (GOV-01), unless
//! short_delay = false          # `short_delay = true` (a devnet)
//!
//! [staking]
//! unbonding_period = "14d"     # > max_lease_duration + 2 * fault_horizon (GOV-04)
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
//! min_billing_period = "1m"    # an order's deposit pays at least this long at its reserve
//! fault_horizon = "2d"         # a closed lease's collateral stays held (faults provable) this long
//!
//! [results]                    # a results module is immutable: changing these adds a new one
//! challenge_window = "1d"      # a posted result is held and can be challenged this long
//! start_window = "10m"         # a provider acknowledges a new lease within this, or is a no-show
//! stale_grace = "15m"          # a reported heartbeat lapse is slashable after lasting this long
//! deadline_grace = "5m"        # a batch result is still accepted this long after the lease end
//! response_window = "1h"       # a challenged chunk must be revealed on chain within this
//! challenge_bond = "0.001"     # ETH bonded per challenge: paid to whoever reveals the chunk
//! fault_fee_bps = 500          # a third-party reporter's share of what a fault returns to a tenant,
//! tenant_priority = "1h"       # earned only for proofs made this long after the fault was provable
//!
//! [[tokens]]                   # the first token is also the stake token
//! symbol = "USDC"
//! address = "0x..."            # an existing token, or `mock = true` to deploy MockStablecoin
//! decimals = 6
//! # permit = false             # with `mock = true`: a USDT-like mock instead (no EIP-2612
//!                              # permit, `approve` returns nothing and only from or to zero)
//! ```

use alloy::primitives::Address;
use anyhow::{Context, Result, bail};
use gridlease_primitives::units::{parse_amount, parse_duration};
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
    /// Timelock delay, seconds.
    pub timelock_delay: u64,
    /// Staking unbonding period, seconds.
    pub unbonding_period: u64,
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
    /// Shortest time an order's deposit must pay at its reserve, seconds.
    pub min_billing_period: u16,
    /// How long a closed lease's collateral stays held, seconds (fixed at deployment).
    pub fault_horizon: u64,
    /// A service lease pays up to its provider's last heartbeat plus this, seconds (Staking).
    pub heartbeat_period: u16,
    /// Seconds a posted result can be proven wrong (fixed at deployment: part of the address).
    pub challenge_window: u64,
    /// Seconds a provider has to acknowledge a new lease (fixed at deployment).
    pub start_window: u32,
    /// Seconds a reported heartbeat lapse must last to be slashable (fixed at deployment).
    pub stale_grace: u32,
    /// Seconds after a batch lease's end its result is still accepted.
    pub deadline_grace: u32,
    /// Seconds to reveal a challenged chunk.
    pub response_window: u32,
    /// Wei bonded per data-availability challenge.
    pub challenge_bond: u128,
    /// A third-party reporter's share of a fault's refund, bps.
    pub fault_fee_bps: u16,
    /// Seconds after a fault becomes provable during which proofs earn no fee.
    pub tenant_priority: u32,
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
    /// For a mock: MockStablecoin, with an EIP-2612 permit (true), or NoReturnToken, USDT-like
    /// (false). Always true for an existing token (what it supports is read from the chain).
    pub permit: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    salt: Option<String>,
    #[serde(default)]
    roles: RawRoles,
    #[serde(default)]
    governance: RawGovernance,
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
    deadline_grace: Option<String>,
    response_window: Option<String>,
    challenge_bond: Option<String>,
    fault_fee_bps: Option<u16>,
    tenant_priority: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGovernance {
    timelock_delay: Option<String>,
    #[serde(default)]
    short_delay: bool,
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
    min_billing_period: Option<String>,
    fault_horizon: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    symbol: String,
    address: Option<Address>,
    #[serde(default)]
    mock: bool,
    decimals: Option<u8>,
    permit: Option<bool>,
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
            if t.address.is_some() && t.permit.is_some() {
                bail!(
                    "token {}: `permit` chooses a mock's kind; an existing token's permit is read from the chain",
                    t.symbol
                );
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
                permit: t.permit.unwrap_or(true),
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
        let r = &raw.results;
        let start_window = secs32(r.start_window.as_ref(), 600, "results.start_window")?;
        let stale_grace = secs32(r.stale_grace.as_ref(), 900, "results.stale_grace")?;
        let deadline_grace = secs32(r.deadline_grace.as_ref(), 300, "results.deadline_grace")?;
        let response_window = secs32(r.response_window.as_ref(), 3_600, "results.response_window")?;
        for (name, v) in [
            ("results.challenge_window", window),
            ("results.start_window", u64::from(start_window)),
            ("results.stale_grace", u64::from(stale_grace)),
            ("results.deadline_grace", u64::from(deadline_grace)),
            ("results.response_window", u64::from(response_window)),
        ] {
            if v == 0 {
                bail!("{name} must be more than zero");
            }
        }
        // `Results.horizon()`: the longest a fault stays provable after a close.
        let horizon = (window + u64::from(response_window)).max(u64::from(stale_grace))
            + u64::from(response_window);
        let fault_horizon = secs(
            m.fault_horizon.as_ref(),
            horizon.max(2 * 86_400),
            "market.fault_horizon",
        )?;
        if fault_horizon < horizon {
            bail!(
                "market.fault_horizon ({fault_horizon} s) must cover the results module's windows: \
                 challenge_window + response_window (or stale_grace) + response_window = {horizon} s"
            );
        }
        if lease + 2 * fault_horizon >= period {
            bail!(
                "staking.unbonding_period ({period} s) must exceed max_lease_duration + 2 * \
                 fault_horizon ({} s), or a provider could unbond before a fault is proven",
                lease + 2 * fault_horizon
            );
        }
        let delay = secs(
            raw.governance.timelock_delay.as_ref(),
            horizon,
            "governance.timelock_delay",
        )?;
        if delay < horizon && !raw.governance.short_delay {
            bail!(
                "governance.timelock_delay ({delay} s) is shorter than the results module's fault \
                 horizon ({horizon} s): users could not react to a change before it lands; raise it \
                 or set governance.short_delay = true (devnets only)"
            );
        }
        let challenge_bond = match &r.challenge_bond {
            Some(b) => parse_amount(b, 18).context("results.challenge_bond (ETH)")?,
            None => 10u128.pow(15),
        };
        let fault_fee_bps = r.fault_fee_bps.unwrap_or(500);
        if fault_fee_bps > 1_000 {
            bail!("results.fault_fee_bps is {fault_fee_bps}; at most 1000 (10%)");
        }
        let min_price_per_second = gridlease_primitives::units::rate_from_hourly(min_per_hour, dec)
            .and_then(|r| u64::try_from(r.max(1)).ok())
            .context("market.min_price_per_hour is too large")?;
        let min_billing_period = match secs(
            m.min_billing_period.as_ref(),
            60,
            "market.min_billing_period",
        )? {
            p @ 0..=3_600 => p as u16,
            p => bail!("market.min_billing_period is {p} s; the market takes at most one hour"),
        };
        let c = Self {
            salt: raw.salt.unwrap_or_else(|| "gridlease-v1".into()),
            owner: raw.roles.owner,
            treasury: raw.roles.treasury,
            timelock_delay: delay,
            unbonding_period: period,
            protocol_fee_bps: m.protocol_fee_bps.unwrap_or(100),
            keeper_fee_bps: m.keeper_fee_bps.unwrap_or(10),
            min_price_per_second,
            max_bid_window: secs32(m.max_bid_window.as_ref(), 86_400, "market.max_bid_window")?,
            award_grace: secs32(m.award_grace.as_ref(), 3_600, "market.award_grace")?,
            low_balance_window: secs32(
                m.low_balance_window.as_ref(),
                600,
                "market.low_balance_window",
            )?,
            max_lease_duration: u32::try_from(lease)
                .context("market.max_lease_duration is too long")?,
            min_billing_period,
            fault_horizon,
            challenge_window: window,
            heartbeat_period: match secs(
                raw.staking.heartbeat_period.as_ref(),
                300,
                "staking.heartbeat_period",
            )? {
                p @ 60..=65_535 => p as u16,
                p => bail!("staking.heartbeat_period is {p} s; it must be 60 s to 65,535 s"),
            },
            start_window,
            stale_grace,
            deadline_grace,
            response_window,
            challenge_bond,
            fault_fee_bps,
            tenant_priority: secs32(r.tenant_priority.as_ref(), 3_600, "results.tenant_priority")?,
            tokens,
        };
        c.within_the_contracts_bounds()?;
        Ok(c)
    }

    /// The bounds the contracts' setters enforce (`MarketAdmin.setParams`, its constructor,
    /// `Staking.setUnbondingPeriod`), checked before anything is deployed: a value past them
    /// would revert only after some contracts were deployed, leaving a half-done suite.
    fn within_the_contracts_bounds(&self) -> Result<()> {
        const DAY: u64 = 86_400;
        let checks: [(&str, u64, u64, u64, &str); 7] = [
            (
                "market.protocol_fee_bps",
                self.protocol_fee_bps.into(),
                0,
                1_000,
                "",
            ),
            (
                "market.keeper_fee_bps",
                self.keeper_fee_bps.into(),
                0,
                100,
                "",
            ),
            (
                "market.max_bid_window",
                self.max_bid_window.into(),
                1,
                7 * DAY,
                " s",
            ),
            (
                "market.award_grace",
                self.award_grace.into(),
                60,
                7 * DAY,
                " s",
            ),
            (
                "market.low_balance_window",
                self.low_balance_window.into(),
                0,
                7 * DAY,
                " s",
            ),
            (
                "market.fault_horizon",
                self.fault_horizon,
                3_600,
                30 * DAY,
                " s",
            ),
            (
                "staking.unbonding_period",
                self.unbonding_period,
                DAY,
                90 * DAY,
                " s",
            ),
        ];
        for (name, v, lo, hi, unit) in checks {
            if v < lo || v > hi {
                bail!("{name} is {v}{unit}; the contracts take {lo}{unit} to {hi}{unit}");
            }
        }
        Ok(())
    }

    /// The devnet config: a 6-decimal mock USDC (with a permit) and USDT (without), short windows
    /// so a demo moves quickly.
    pub fn devnet() -> Self {
        Self::parse(DEVNET).expect("the built-in devnet config is valid")
    }
}

/// The built-in devnet config (also `deploy/devnet.toml`).
pub const DEVNET: &str = include_str!("../devnet.toml");
