//! What happened, read back from the chain alone: per job the winner, its price, the times from
//! order to running (acknowledged) and to result, what it paid and refunded and how it ended (who
//! closed it, or which fault was proven, by whom, for what fee); per account the gas it spent,
//! what it was paid (token balance change plus credits it can withdraw) and what it lost to a
//! slash.

use std::collections::BTreeMap;

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use anyhow::{Context, Result};
use gridlease_bindings::{Market as MarketC, MarketLens, MockStablecoin, Results, Staking};
use gridlease_chain::{classify, classify_rpc};
use gridlease_primitives::{
    protocol::{CloseReason, Status},
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
            b.stake.insert(a, info.stake.to::<u128>());
        }
        Ok(b)
    }
}

/// A fault proven on a job.
#[derive(Clone, Debug, Serialize)]
pub struct FaultRow {
    /// `LeaseFaulted.kind`: "wrong-result", "unavailable", "no-show", ...
    pub kind: String,
    /// Collateral slashed, USDC.
    pub slashed: String,
    /// Who sent the proof (a party of the demo, or an address).
    pub proven_by: String,
    /// The finder's fee out of the tenant's refund, USDC (none inside the tenant's priority).
    pub fee: String,
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
    /// Order block -> the lease running (acknowledged: by the winning bid of an instant order,
    /// by `Results.acknowledge`, or by the result post inside the start window), seconds of
    /// chain time.
    pub order_to_running_s: Option<u64>,
    /// ... in blocks.
    pub order_to_running_blocks: Option<u64>,
    /// Order -> result posted, seconds of chain time.
    pub order_to_result_s: Option<u64>,
    /// Settlements while it ran (`LeaseSettled`: service leases only; a batch lease is paid at
    /// its close, for a result that stands).
    pub settlements: usize,
    /// How it ended.
    pub outcome: String,
    /// The fault proven on it, if any.
    pub fault: Option<FaultRow>,
    /// What the lease paid in all (its settlements and its close, fees included), USDC.
    pub paid: String,
    /// Refunded to the tenant (net of a finder's fee), USDC.
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
    /// Slashed collateral that went to the treasury (`Staking.Slashed`), USDC.
    pub slashed_to_treasury: String,
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

/// `IMarket.CloseReason` in words.
fn close_reason(reason: u8) -> String {
    CloseReason::of(reason).map_or_else(|| format!("closed ({reason})"), |r| r.word().to_owned())
}

/// A fault kind (a bytes32 string) as text.
fn kind_text(kind: B256) -> String {
    String::from_utf8_lossy(kind.as_slice())
        .trim_end_matches('\0')
        .to_owned()
}

/// How a fault kind reads in the outcome column.
fn kind_word(kind: &str) -> String {
    match kind {
        "wrong-result" => "FRAUD".into(),
        k => k.replace('-', " ").to_uppercase(),
    }
}

/// The demo's name for `a`, else the address.
fn name_of(m: &Market, a: Address) -> String {
    parties(m)
        .into_iter()
        .find(|(_, p)| *p == a)
        .map_or_else(|| a.to_string(), |(who, _)| who)
}

/// The sender of the transaction that emitted `log`, and that transaction's receipt.
async fn sent_by(m: &Market, log: &Log) -> Result<Address> {
    let tx = log.transaction_hash.context("log without a transaction")?;
    let r = m
        .gov
        .provider
        .get_transaction_receipt(tx)
        .await
        .map_err(classify_rpc)?
        .context("no receipt")?;
    Ok(r.from)
}

/// Read the outcome of `jobs` and the money moved since `before`.
pub async fn read(m: &Market, jobs: &[Submitted], before: &Balances) -> Result<Summary> {
    let dec = m.usdc.decimals;
    let market_addr = m.deployments.address("Market")?;
    let results_addr = m.deployments.address("Results")?;
    let lens = MarketLens::new(m.deployments.address("MarketLens")?, &m.gov.provider);
    let mut rows = Vec::new();
    for j in jobs {
        let created = m
            .logs(market_addr, MarketC::OrderCreated::SIGNATURE_HASH, j.id)
            .await?;
        let created = created.first().context("no OrderCreated log")?;
        let order_block = created.block_number.context("pending OrderCreated")?;
        let instant = created
            .log_decode::<MarketC::OrderCreated>()
            .map(|l| l.inner.data.params.instant)
            .unwrap_or(false);
        let t0 = block_time(m, order_block).await?;
        let first = async |address, sig| -> Result<Option<Log>> {
            Ok(m.logs(address, sig, j.id).await?.into_iter().next())
        };
        let at = async |log: Option<&Log>| -> Result<Option<(u64, u64)>> {
            match log.and_then(|l| l.block_number) {
                Some(b) => Ok(Some((b, block_time(m, b).await?))),
                None => Ok(None),
            }
        };
        let started = first(market_addr, MarketC::LeaseStarted::SIGNATURE_HASH).await?;
        let lease = started
            .as_ref()
            .and_then(|l| l.log_decode::<MarketC::LeaseStarted>().ok())
            .map(|l| l.inner.data);
        let acked = first(results_addr, Results::LeaseAcknowledged::SIGNATURE_HASH).await?;
        let posted = first(results_addr, Results::ResultPosted::SIGNATURE_HASH).await?;
        // Running: an instant order's own winning bid acknowledges it; a lease awarded by a
        // keeper is acknowledged by its node, or by its result posted inside the start window.
        let running = match (&acked, &lease) {
            (Some(a), _) => Some(a),
            (None, Some(l)) if instant && !l.signedBid => started.as_ref(),
            _ => posted.as_ref(),
        };
        let running = at(running).await?;
        let res = at(posted.as_ref()).await?;
        let closed = first(market_addr, MarketC::LeaseClosed::SIGNATURE_HASH).await?;
        let close = closed
            .as_ref()
            .and_then(|l| l.log_decode::<MarketC::LeaseClosed>().ok())
            .map(|l| l.inner.data);
        let settled = m
            .logs(market_addr, MarketC::LeaseSettled::SIGNATURE_HASH, j.id)
            .await?;
        let settlements = settled.len();
        let settled_total: u128 = settled
            .iter()
            .filter_map(|l| l.log_decode::<MarketC::LeaseSettled>().ok())
            .map(|l| l.inner.data.amount.to::<u128>())
            .sum();
        let faulted = first(market_addr, MarketC::LeaseFaulted::SIGNATURE_HASH).await?;
        let mut fault = None;
        let mut refunded = close.as_ref().map_or(0, |c| c.refund.to::<u128>());
        let outcome = if let Some(log) = &faulted {
            let f = log.log_decode::<MarketC::LeaseFaulted>()?.inner.data;
            let sender = sent_by(m, log).await?;
            // The finder's fee, out of the refund (zero inside the tenant's priority).
            let fee: u128 = f.fee.to();
            refunded = f.refund.to::<u128>().saturating_sub(fee);
            let kind = kind_text(f.kind);
            let slashed = format_amount(f.slashed.saturating_to(), dec);
            let by = name_of(m, sender);
            let outcome = format!(
                "{} proven: slashed {slashed} ({})",
                kind_word(&kind),
                if fee == 0 {
                    format!("by {by}, no fee")
                } else {
                    format!("by {by}, fee {}", format_amount(fee, dec))
                }
            );
            fault = Some(FaultRow {
                kind,
                slashed,
                proven_by: by,
                fee: format_amount(fee, dec),
            });
            outcome
        } else if let (Some(c), Some(log)) = (&close, &closed) {
            let sender = sent_by(m, log).await?;
            match CloseReason::of(c.reason) {
                Some(CloseReason::Completed) => {
                    format!("completed: closed by {}", name_of(m, sender))
                }
                _ => close_reason(c.reason),
            }
        } else {
            let v = lens.getJob(j.id).call().await.map_err(classify)?;
            format!("status {}", Status::of(v.status))
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
            order_to_running_s: running.map(|(_, t)| t - t0),
            order_to_running_blocks: running.map(|(b, _)| b - order_block),
            order_to_result_s: res.map(|(_, t)| t - t0),
            settlements,
            outcome,
            fault,
            paid: format_amount(
                settled_total + close.as_ref().map_or(0, |c| c.paid.to::<u128>()),
                dec,
            ),
            refunded: format_amount(refunded, dec),
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
    let staking_addr = m.deployments.address("Staking")?;
    let staking = Staking::new(staking_addr, &m.gov.provider);
    let mut parties_rows = Vec::new();
    for (who, a) in parties(m) {
        let credit = lens
            .creditOf(m.usdc.address, a)
            .call()
            .await
            .map_err(classify)?
            .saturating_to::<u128>()
            + staking
                .creditOf(a)
                .call()
                .await
                .map_err(classify)?
                .saturating_to::<u128>();
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
    let fees = lens
        .protocolFees(m.usdc.address)
        .call()
        .await
        .map_err(classify)?;
    let slashes = m
        .gov
        .provider
        .get_logs(
            &Filter::new()
                .address(staking_addr)
                .event_signature(Staking::Slashed::SIGNATURE_HASH)
                .from_block(m.first_block),
        )
        .await
        .map_err(classify_rpc)?;
    let to_treasury: u128 = slashes
        .iter()
        .filter_map(|l| l.log_decode::<Staking::Slashed>().ok())
        .map(|l| l.inner.data.treasuryAmount.saturating_to::<u128>())
        .sum();
    Ok(Summary {
        jobs: rows,
        parties: parties_rows,
        protocol_fees: format_amount(fees.saturating_to::<u128>(), dec),
        slashed_to_treasury: format_amount(to_treasury, dec),
        blocks: head - m.first_block,
        gas_total,
    })
}

impl Summary {
    /// The plain table people read.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s += &format!(
            "{:<16} {:<8} {:>10} {:>16} {:>14} {:>10} {:>10}  {}\n",
            "job",
            "provider",
            "USDC/hour",
            "order->running",
            "order->result",
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
                "{:<16} {:<8} {:>10} {:>16} {:>14} {:>10} {:>10}  {}\n",
                j.name,
                j.provider,
                j.price_per_hour,
                running,
                result,
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
            "\nprotocol fees {} USDC; slashed collateral to the treasury {} USDC; {} blocks, {} gas in all.\nnet = token balance change + credits to withdraw (gridlease withdraw); paid = what a lease paid its provider and the fees; refunded = what came back to the tenant, net of a finder's fee.\n",
            self.protocol_fees, self.slashed_to_treasury, self.blocks, self.gas_total
        );
        s
    }
}
