//! What happened, read back from the chain alone: per job the winner, its price and the times
//! from order to running (acknowledged) and to result; per account the gas it spent, what it
//! was paid (token balance change plus credits it can withdraw) and what it lost to a slash.

use std::collections::BTreeMap;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::Provider,
    sol_types::SolEvent,
};
use anyhow::{Context, Result};
use gridlease_bindings::{Market as MarketC, MockStablecoin, Results, Staking};
use gridlease_core::{
    chain::{classify, classify_rpc},
    units::{format_amount, hourly_from_rate},
};
use serde::Serialize;

use crate::{market::Market, scenario::Submitted};

/// Who is who in the summary: role name -> address.
fn parties(m: &Market) -> Vec<(String, Address)> {
    let mut v = vec![("tenant".to_owned(), m.account("tenant"))];
    v.extend(
        m.plans
            .iter()
            .map(|p| (format!("provider {}", p.name), m.account(p.owner))),
    );
    v.extend(
        m.plans
            .iter()
            .map(|p| (format!("{} operator", p.name), m.account(p.operator))),
    );
    v.push(("keeper".to_owned(), m.account("keeper")));
    v
}

/// Money of every party at one moment (token units).
#[derive(Clone, Debug, Default)]
pub struct Balances {
    token: BTreeMap<Address, u128>,
    stake: BTreeMap<Address, u128>,
}

impl Balances {
    /// Read them now.
    pub async fn read(m: &Market) -> Result<Self> {
        let token = MockStablecoin::new(m.usdc.address, &m.gov.provider);
        let staking = Staking::new(m.deployments.address("Staking")?, &m.gov.provider);
        let mut b = Self::default();
        for (_, a) in parties(m) {
            let bal = token.balanceOf(a).call().await.map_err(classify)?;
            b.token.insert(a, bal.to::<u128>());
            let info = staking.providerInfo(a).call().await.map_err(classify)?;
            b.stake.insert(a, info.stake);
        }
        Ok(b)
    }
}

/// One job's line.
#[derive(Clone, Debug, Serialize)]
pub struct JobRow {
    /// Name in the demo.
    pub name: String,
    /// Order / lease id.
    pub id: B256,
    /// Winning provider.
    pub provider: String,
    /// Winning price, USDC per hour.
    pub price_per_hour: String,
    /// Order block -> acknowledgement block (the job is running), seconds of chain time.
    pub order_to_running_s: Option<u64>,
    /// ... in blocks.
    pub order_to_running_blocks: Option<u64>,
    /// Order -> result posted, seconds of chain time.
    pub order_to_result_s: Option<u64>,
    /// Settlements while it ran (`LeaseSettled`, by keepers or the parties), besides the close.
    pub settlements: usize,
    /// How it ended.
    pub outcome: String,
    /// What the lease paid in all (its settlements and its close, fees included), USDC.
    pub paid: String,
    /// Refunded to the tenant, USDC.
    pub refunded: String,
}

/// One party's line.
#[derive(Clone, Debug, Serialize)]
pub struct PartyRow {
    /// Role.
    pub who: String,
    /// Address.
    pub address: Address,
    /// Transactions it sent during the demo.
    pub txs: u64,
    /// Gas they used.
    pub gas: u64,
    /// Token balance change plus new withdrawable credits, USDC (signed).
    pub net: String,
    /// Stake lost to slashes, USDC.
    pub slashed: String,
}

/// The whole summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Per job.
    pub jobs: Vec<JobRow>,
    /// Per party.
    pub parties: Vec<PartyRow>,
    /// Protocol fees accrued, USDC.
    pub protocol_fees: String,
    /// Blocks the demo spanned.
    pub blocks: u64,
    /// Gas of every transaction in them.
    pub gas_total: u64,
}

/// Timestamp of block `n`.
pub async fn block_time(m: &Market, n: u64) -> Result<u64> {
    Ok(m.gov
        .provider
        .get_block_by_number(BlockNumberOrTag::Number(n))
        .await
        .map_err(classify_rpc)?
        .context("block")?
        .header
        .timestamp)
}

fn signed(units: i128, decimals: u8) -> String {
    let s = format_amount(units.unsigned_abs(), decimals);
    if units < 0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

/// Read the outcome of `jobs` and the money moved since `before`.
pub async fn read(m: &Market, jobs: &[Submitted], before: &Balances) -> Result<Summary> {
    let dec = m.usdc.decimals;
    let market_addr = m.deployments.address("Market")?;
    let results_addr = m.deployments.address("Results")?;
    let market = MarketC::new(market_addr, &m.gov.provider);
    let mut rows = Vec::new();
    for j in jobs {
        let created = m
            .logs(market_addr, MarketC::OrderCreated::SIGNATURE_HASH, j.id)
            .await?;
        let order_block = created
            .first()
            .and_then(|l| l.block_number)
            .context("no OrderCreated log")?;
        let t0 = block_time(m, order_block).await?;
        let at = async |address, sig| -> Result<Option<(u64, u64)>> {
            match m
                .logs(address, sig, j.id)
                .await?
                .first()
                .and_then(|l| l.block_number)
            {
                Some(b) => Ok(Some((b, block_time(m, b).await?))),
                None => Ok(None),
            }
        };
        let ack = at(results_addr, Results::LeaseAcknowledged::SIGNATURE_HASH).await?;
        let res = at(results_addr, Results::ResultPosted::SIGNATURE_HASH).await?;
        let started = m
            .logs(market_addr, MarketC::LeaseStarted::SIGNATURE_HASH, j.id)
            .await?;
        let lease = started
            .first()
            .and_then(|l| l.log_decode::<MarketC::LeaseStarted>().ok())
            .map(|l| l.inner.data);
        let closed = m
            .logs(market_addr, MarketC::LeaseClosed::SIGNATURE_HASH, j.id)
            .await?;
        let close = closed
            .first()
            .and_then(|l| l.log_decode::<MarketC::LeaseClosed>().ok())
            .map(|l| l.inner.data);
        let settled = m
            .logs(market_addr, MarketC::LeaseSettled::SIGNATURE_HASH, j.id)
            .await?;
        let settlements = settled.len();
        // What the lease paid in all: its settlements while it ran plus its close (how it is
        // split between them depends on when keepers settled).
        let settled_total: u128 = settled
            .iter()
            .filter_map(|l| l.log_decode::<MarketC::LeaseSettled>().ok())
            .map(|l| l.inner.data.amount.to::<u128>())
            .sum();
        let faulted = m
            .logs(market_addr, MarketC::LeaseFaulted::SIGNATURE_HASH, j.id)
            .await?;
        let fault = faulted
            .first()
            .and_then(|l| l.log_decode::<MarketC::LeaseFaulted>().ok())
            .map(|l| l.inner.data);
        let outcome = match (&close, &fault) {
            (_, Some(f)) => format!(
                "FRAUD proven: slashed {}",
                format_amount(f.slashed.to::<u128>(), dec)
            ),
            (Some(c), None) => match c.reason {
                0 => "accepted by tenant".to_owned(),
                1 => "closed by provider".to_owned(),
                2 => "expired".to_owned(),
                3 => "exhausted".to_owned(),
                5 => "completed".to_owned(),
                r => format!("closed ({r})"),
            },
            (None, None) => {
                let v = market.getJob(j.id).call().await.map_err(classify)?;
                format!("status {}", v.status)
            }
        };
        rows.push(JobRow {
            name: j.name.clone(),
            id: j.id,
            provider: lease
                .as_ref()
                .map_or_else(|| "-".into(), |l| m.provider_name(l.provider)),
            price_per_hour: lease
                .as_ref()
                .and_then(|l| hourly_from_rate(l.ratePerSecond.to::<u128>(), dec))
                .map_or_else(|| "-".into(), |h| format_amount(h, dec)),
            order_to_running_s: ack.map(|(_, t)| t - t0),
            order_to_running_blocks: ack.map(|(b, _)| b - order_block),
            order_to_result_s: res.map(|(_, t)| t - t0),
            settlements,
            outcome,
            paid: format_amount(
                settled_total + close.as_ref().map_or(0, |c| c.paid.to::<u128>()),
                dec,
            ),
            refunded: match (&close, &fault) {
                (_, Some(f)) => format_amount(f.refund.to::<u128>(), dec),
                (Some(c), None) => format_amount(c.refund.to::<u128>(), dec),
                _ => "0".into(),
            },
        });
    }

    // Gas per sender over every block of the demo.
    let head = m
        .gov
        .provider
        .get_block_number()
        .await
        .map_err(classify_rpc)?;
    let mut gas: BTreeMap<Address, (u64, u64)> = BTreeMap::new();
    let mut gas_total = 0;
    for n in m.first_block + 1..=head {
        let receipts = m
            .gov
            .provider
            .get_block_receipts(n.into())
            .await
            .map_err(classify_rpc)?
            .unwrap_or_default();
        for r in receipts {
            let e = gas.entry(r.from).or_default();
            e.0 += 1;
            e.1 += r.gas_used;
            gas_total += r.gas_used;
        }
    }

    let after = Balances::read(m).await?;
    let staking = Staking::new(m.deployments.address("Staking")?, &m.gov.provider);
    let mut parties_rows = Vec::new();
    for (who, a) in parties(m) {
        let credit = market
            .creditOf(m.usdc.address, a)
            .call()
            .await
            .map_err(classify)?
            .to::<u128>()
            + staking
                .creditOf(a)
                .call()
                .await
                .map_err(classify)?
                .to::<u128>();
        let delta = after.token.get(&a).copied().unwrap_or(0) as i128
            - before.token.get(&a).copied().unwrap_or(0) as i128
            + credit as i128;
        let slashed = before
            .stake
            .get(&a)
            .copied()
            .unwrap_or(0)
            .saturating_sub(after.stake.get(&a).copied().unwrap_or(0));
        let (txs, g) = gas.get(&a).copied().unwrap_or_default();
        parties_rows.push(PartyRow {
            who,
            address: a,
            txs,
            gas: g,
            net: signed(delta, dec),
            slashed: format_amount(slashed, dec),
        });
    }
    let fees = market
        .protocolFees(m.usdc.address)
        .call()
        .await
        .map_err(classify)?;
    Ok(Summary {
        jobs: rows,
        parties: parties_rows,
        protocol_fees: format_amount(fees.to::<u128>(), dec),
        blocks: head - m.first_block,
        gas_total,
    })
}

impl Summary {
    /// The plain table people read.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s += &format!(
            "{:<16} {:<8} {:>10} {:>16} {:>14} {:>8} {:>10} {:>10}  {}\n",
            "job",
            "provider",
            "USDC/hour",
            "order->running",
            "order->result",
            "settled",
            "paid",
            "refunded",
            "outcome"
        );
        for j in &self.jobs {
            let running = match (j.order_to_running_s, j.order_to_running_blocks) {
                (Some(s), Some(b)) => format!("{s} s ({b} blk)"),
                _ => "-".into(),
            };
            let result = j
                .order_to_result_s
                .map_or_else(|| "-".into(), |s| format!("{s} s"));
            s += &format!(
                "{:<16} {:<8} {:>10} {:>16} {:>14} {:>8} {:>10} {:>10}  {}\n",
                j.name,
                j.provider,
                j.price_per_hour,
                running,
                result,
                j.settlements,
                j.paid,
                j.refunded,
                j.outcome
            );
        }
        s += &format!(
            "\n{:<18} {:<42} {:>4} {:>10} {:>14} {:>10}\n",
            "who", "address", "txs", "gas", "net USDC", "slashed"
        );
        for p in &self.parties {
            s += &format!(
                "{:<18} {:<42} {:>4} {:>10} {:>14} {:>10}\n",
                p.who,
                p.address.to_string(),
                p.txs,
                p.gas,
                p.net,
                p.slashed
            );
        }
        s += &format!(
            "\nprotocol fees {} USDC; {} blocks, {} gas in all. net = token balance change + credits to withdraw (gridlease withdraw).\n",
            self.protocol_fees, self.blocks, self.gas_total
        );
        s
    }
}
