//! Read-only commands: `status`, `list`, `market`.

use std::collections::BTreeMap;

use alloy::{
    primitives::B256,
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::{IMarket::JobView, Market};
use gridlease_core::{chain::classify, gpu, units::format_duration};
use serde_json::json;

use crate::ctx::{
    Ctx, Output, first_since_deploy, logs_since_deploy, money, parse_address, parse_id, per_hour,
    status_name, user,
};

fn job_json(ctx: &Ctx, id: B256, v: &JobView, accrued: u128) -> serde_json::Value {
    let t = ctx.token_at(v.token);
    json!({
        "id": id,
        "status": status_name(v.status),
        "tenant": v.tenant,
        "token": t.symbol,
        "provider": v.provider,
        "escrow": v.escrow.to::<u128>().to_string(),
        "escrowText": money(v.escrow.to::<u128>(), &t),
        "ratePerSecond": v.ratePerSecond.to::<u128>().to_string(),
        "maxPricePerSecond": v.maxPricePerSecond.to::<u128>().to_string(),
        "collateral": v.collateral.to::<u128>().to_string(),
        "biddingEnd": v.biddingEnd.to::<u64>(),
        "settledAt": v.settledAt.to::<u64>(),
        "end": v.end.to::<u64>(),
        "accrued": accrued.to_string(),
        "lowBalance": v.lowBalance,
        "instant": v.instant,
    })
}

/// `status ID`.
pub(crate) async fn status(ctx: &Ctx, id: &str) -> Result<Output> {
    let id = parse_id(id)?;
    let m = ctx.market();
    let v = m.getJob(id).call().await.map_err(classify)?;
    if v.status == 0 {
        return user(format!(
            "no order or lease {id} on this market (chain {})",
            ctx.client.chain_id
        ));
    }
    // As the tenant would settle it: a lease whose result is held shows what accepting pays.
    let accrued: u128 = m
        .accrued(id)
        .from(v.tenant)
        .call()
        .await
        .map_err(classify)?
        .to();
    let t = ctx.token_at(v.token);
    let now = ctx.client.now().await?;
    let mut h = format!(
        "{id}\n  status     {}\n  tenant     {}\n",
        status_name(v.status),
        v.tenant
    );
    match v.status {
        1 => {
            let left = v.biddingEnd.to::<u64>().saturating_sub(now);
            h += &format!(
                "  escrow     {}\n  max price  {}\n  bids       {}\n  window     {}\n",
                money(v.escrow.to(), &t),
                per_hour(v.maxPricePerSecond.to(), &t),
                if v.provider.is_zero() {
                    "none on chain yet".to_owned()
                } else {
                    format!(
                        "best {} from {}",
                        per_hour(v.ratePerSecond.to(), &t),
                        v.provider
                    )
                },
                if left > 0 {
                    format!("closes in {}", format_duration(left))
                } else {
                    "closed; awaiting award".into()
                },
            );
        }
        2 => {
            let rate = v.ratePerSecond.to::<u128>();
            let escrow = v.escrow.to::<u128>();
            let left = escrow - accrued.min(escrow);
            let scale = gridlease_core::units::rate_scale(t.decimals).unwrap_or(1);
            let runway = (left * scale).checked_div(rate).unwrap_or(0);
            let ends = v.end.to::<u64>().saturating_sub(now);
            h += &format!(
                "  provider   {}\n  price      {}\n  escrow     {} ({} accrued, not yet settled)\n  runway     {}{}\n  ends in    {}\n",
                v.provider,
                per_hour(rate, &t),
                money(escrow, &t),
                money(accrued, &t),
                format_duration(u64::try_from(runway).unwrap_or(u64::MAX)),
                if v.lowBalance {
                    "  LOW BALANCE: top up with `gridlease topup`"
                } else {
                    ""
                },
                format_duration(ends),
            );
            let results = ctx.results()?;
            let r = results.resultOf(id).call().await.map_err(classify)?;
            let posted = r.postedAt.to::<u64>();
            if posted != 0 {
                let window = results.challengeWindow().call().await.map_err(classify)?;
                let until = posted + window.to::<u64>();
                h += &format!(
                    "  result     posted {} ago (root {}); {}\n",
                    format_duration(now.saturating_sub(posted)),
                    r.root,
                    if now > until {
                        "challenge window over: anyone may close it".to_owned()
                    } else {
                        format!(
                            "payment held {} more for challenges; the tenant accepts with `gridlease close {id}`",
                            format_duration(until - now)
                        )
                    }
                );
            }
        }
        _ => h = ended(ctx, id, status_name(v.status)).await?,
    }
    Ok(Output {
        human: h,
        json: job_json(ctx, id, &v, accrued),
    })
}

/// A closed lease or cancelled order keeps nothing in storage: what happened is in its logs.
async fn ended(ctx: &Ctx, id: B256, status: &str) -> Result<String> {
    let of = async |sig: B256| -> Result<Option<Log>> {
        let filter = Filter::new()
            .address(ctx.market)
            .event_signature(sig)
            .topic1(id);
        first_since_deploy(ctx, &filter).await
    };
    let created = of(Market::OrderCreated::SIGNATURE_HASH)
        .await?
        .and_then(|l| l.log_decode::<Market::OrderCreated>().ok())
        .map(|l| l.inner.data);
    let t = ctx.token_at(created.as_ref().map(|c| c.token).unwrap_or_default());
    let mut h = format!(
        "{id}\n  status     {status}\n  tenant     {}\n",
        created.as_ref().map(|c| c.tenant).unwrap_or_default()
    );
    if let Some(c) = of(Market::LeaseClosed::SIGNATURE_HASH)
        .await?
        .and_then(|l| l.log_decode::<Market::LeaseClosed>().ok())
        .map(|l| l.inner.data)
    {
        let reason = match c.reason {
            0 => "closed by the tenant",
            1 => "closed by the provider",
            2 => "expired",
            3 => "escrow exhausted",
            4 => "faulted",
            5 => "completed (challenge window over)",
            _ => "closed",
        };
        h += &format!(
            "  closed     {reason}\n  paid       {} (provider {}, fees {})\n  refunded   {}\n",
            money(c.paid.to(), &t),
            money(c.toProvider.to(), &t),
            money(c.protocolFee.to::<u128>() + c.keeperFee.to::<u128>(), &t),
            money(c.refund.to(), &t),
        );
    }
    if let Some(f) = of(Market::LeaseFaulted::SIGNATURE_HASH)
        .await?
        .and_then(|l| l.log_decode::<Market::LeaseFaulted>().ok())
        .map(|l| l.inner.data)
    {
        h += &format!(
            "  FAULT      proven against provider {}: stake slashed {} (half to the tenant as a credit: gridlease withdraw), escrow refunded {}\n",
            f.provider,
            money(f.slashed.to::<u128>(), &t),
            money(f.refund.to(), &t),
        );
    }
    Ok(h)
}

async fn logs(ctx: &Ctx, sig: B256, topic2: Option<B256>) -> Result<Vec<Log>> {
    let mut filter = Filter::new().address(ctx.market).event_signature(sig);
    if let Some(t) = topic2 {
        filter = filter.topic2(t);
    }
    logs_since_deploy(ctx, &filter).await
}

/// `list [--tenant ADDR]`.
pub(crate) async fn list(ctx: &Ctx, tenant: Option<&str>) -> Result<Output> {
    let who = match tenant {
        Some(t) => parse_address(t)?,
        None => ctx.wallet()?.address(),
    };
    let created = logs(
        ctx,
        Market::OrderCreated::SIGNATURE_HASH,
        Some(who.into_word()),
    )
    .await?;
    let m = ctx.market();
    let mut rows = Vec::new();
    let mut h = String::new();
    for log in created {
        let Ok(e) = log.log_decode::<Market::OrderCreated>() else {
            continue;
        };
        let id = e.inner.data.orderId;
        let v = m.getJob(id).call().await.map_err(classify)?;
        let t = ctx.token_at(v.token);
        h += &format!(
            "{id}  {:<9}  escrow {:>14}  {}\n",
            status_name(v.status),
            money(v.escrow.to(), &t),
            gpu::class_name(e.inner.data.params.gpuClass),
        );
        rows.push(job_json(ctx, id, &v, 0));
    }
    if rows.is_empty() {
        h = format!("no orders from {who}\n");
    }
    Ok(Output {
        human: h,
        json: json!({ "tenant": who, "orders": rows }),
    })
}

/// `market`: open orders, recent clearing prices per GPU class, parameters.
pub(crate) async fn market(ctx: &Ctx) -> Result<Output> {
    let m = ctx.market();
    let p = m.params().call().await.map_err(classify)?;
    let now = ctx.client.now().await?;
    let created = logs(ctx, Market::OrderCreated::SIGNATURE_HASH, None).await?;
    let started = logs(ctx, Market::LeaseStarted::SIGNATURE_HASH, None).await?;
    let mut class_of = BTreeMap::new();
    let mut open = Vec::new();
    let mut h = String::from("open orders:\n");
    for log in &created {
        let Ok(e) = log.log_decode::<Market::OrderCreated>() else {
            continue;
        };
        let (id, params) = (e.inner.data.orderId, &e.inner.data.params);
        class_of.insert(id, params.gpuClass);
        let v = m.getJob(id).call().await.map_err(classify)?;
        if v.status != 1 {
            continue;
        }
        let t = ctx.token_at(v.token);
        let left = v.biddingEnd.to::<u64>().saturating_sub(now);
        h += &format!(
            "  {id}  {:<9} x{}  up to {:>16}  for {:<6}  bids {}\n",
            gpu::class_name(params.gpuClass),
            params.gpuCount,
            per_hour(v.maxPricePerSecond.to(), &t),
            format_duration(u64::from(params.maxDuration)),
            if left > 0 {
                format!("close in {}", format_duration(left))
            } else {
                "closed".into()
            },
        );
        open.push(json!({
            "id": id,
            "gpu": gpu::class_name(params.gpuClass),
            "gpuCount": params.gpuCount,
            "maxPricePerSecond": v.maxPricePerSecond.to::<u128>().to_string(),
            "biddingEnd": v.biddingEnd.to::<u64>(),
        }));
    }
    if open.is_empty() {
        h += "  none\n";
    }
    // Clearing prices: the last leases per class.
    let mut by_class: BTreeMap<u8, Vec<u128>> = BTreeMap::new();
    for log in started.iter().rev().take(200) {
        let Ok(e) = log.log_decode::<Market::LeaseStarted>() else {
            continue;
        };
        let d = &e.inner.data;
        if let Some(class) = class_of.get(&d.orderId) {
            by_class
                .entry(*class)
                .or_default()
                .push(d.ratePerSecond.to());
        }
    }
    h += "recent clearing prices:\n";
    let stable = ctx.d.tokens.first().cloned();
    let mut prices = Vec::new();
    for (class, mut rates) in by_class {
        let last = rates[0];
        rates.sort_unstable();
        let median = rates[rates.len() / 2];
        if let Some(t) = &stable {
            h += &format!(
                "  {:<9} last {:>16}  median {:>16}  ({} leases)\n",
                gpu::class_name(class),
                per_hour(last, t),
                per_hour(median, t),
                rates.len()
            );
        }
        prices.push(json!({
            "gpu": gpu::class_name(class),
            "lastPerSecond": last.to_string(),
            "medianPerSecond": median.to_string(),
            "leases": rates.len(),
        }));
    }
    if prices.is_empty() {
        h += "  no leases yet\n";
    }
    h += &format!(
        "parameters: protocol fee {} bps, keeper fee {} bps, max lease {}, max bid window {}, award grace {}{}\n",
        p.protocolFeeBps,
        p.keeperFeeBps,
        format_duration(u64::from(p.maxLeaseDuration)),
        format_duration(u64::from(p.maxBidWindow)),
        format_duration(u64::from(p.awardGrace)),
        if p.paused { ", PAUSED" } else { "" },
    );
    Ok(Output {
        human: h,
        json: json!({
            "open": open,
            "prices": prices,
            "params": {
                "protocolFeeBps": p.protocolFeeBps,
                "keeperFeeBps": p.keeperFeeBps,
                "minPricePerSecond": p.minPricePerSecond,
                "maxBidWindow": p.maxBidWindow,
                "awardGrace": p.awardGrace,
                "lowBalanceWindow": p.lowBalanceWindow,
                "maxLeaseDuration": p.maxLeaseDuration,
                "paused": p.paused,
            },
        }),
    })
}
