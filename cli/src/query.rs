//! Read-only commands: `status`, `list`, `market`.

use std::collections::BTreeMap;

use alloy::{
    primitives::B256,
    rpc::types::{Filter, Log},
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::Market;
use gridlease_chain::classify;
use gridlease_primitives::{
    gpu,
    protocol::{JobViewExt, LeaseKind, Status},
    units::format_duration,
};
use serde_json::json;

use crate::{
    ctx::{Ctx, Output, logs_since_deploy, money, parse_address, parse_id, per_hour, user, when},
    lease::Facts,
};

/// `status ID`.
pub(crate) async fn status(ctx: &Ctx, id: &str) -> Result<Output> {
    let id = parse_id(id)?;
    let f = Facts::one(ctx, id).await?;
    if f.v.status() == Status::None {
        return user(format!(
            "no order or lease {id} on this market (chain {})",
            ctx.client.chain_id
        ));
    }
    let mut human = status_text(&f);
    let mut json = f.json();
    // A running service: where it is reached (its node's host, its spec's port).
    if f.v.status() == Status::Leased && f.v.lease_kind() == LeaseKind::Service {
        let (host, port) = crate::connect::endpoint(ctx, &f).await;
        let at = match (&host, port) {
            (Some(h), Some(p)) if h.contains(':') => format!("[{h}]:{p}"),
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (None, Some(p)) => format!("port {p} of its provider's host"),
            (Some(h), None) => format!("{h}, port in its spec"),
            (None, None) => "its provider's host, port in its spec".to_owned(),
        };
        let how = if f.tls_key.is_some() {
            format!("over TLS (gridlease connect {id})")
        } else {
            "as the service serves it".to_owned()
        };
        human += &format!("  endpoint   {at} {how}\n");
        json["endpoint"] = json!({ "host": host, "port": port, "tls": f.tls_key.is_some() });
    }
    Ok(Output { human, json })
}

/// The human form of `status`.
fn status_text(f: &Facts) -> String {
    let (v, t, now) = (&f.v, &f.token, f.now);
    let st = f.state();
    let mut h = format!(
        "{}\n  state      {}\n  {}\n  tenant     {}\n",
        f.id,
        st.word,
        st.text,
        f.tenant()
    );
    match v.status() {
        Status::Open => {
            h += &format!(
                "  escrow     {}\n  max price  {}\n  bids       {}\n",
                money(v.escrow.to(), t),
                per_hour(v.maxPricePerSecond.to(), t),
                if v.provider.is_zero() {
                    "none on chain yet (signed bids are seen at award)".to_owned()
                } else {
                    format!(
                        "best {} from {}",
                        per_hour(v.ratePerSecond.to(), t),
                        v.provider
                    )
                },
            );
        }
        Status::Leased => {
            let rate = v.ratePerSecond.to::<u128>();
            let escrow = v.escrow.to::<u128>();
            h += &format!(
                "  provider   {}\n  kind       {}\n  price      {}\n  escrow     {} ({} accrued, not yet paid)\n",
                v.provider,
                match v.lease_kind() {
                    LeaseKind::Service => "service (paid per second of live heartbeat)",
                    LeaseKind::Held => "batch, result held",
                    LeaseKind::Batch => "batch (paid for its result)",
                },
                per_hour(rate, t),
                money(escrow, t),
                money(f.accrued, t),
            );
            if v.lease_kind() == LeaseKind::Service {
                let left = escrow - f.accrued.min(escrow);
                let scale = gridlease_primitives::units::rate_scale(t.decimals).unwrap_or(1);
                let runway = (left * scale).checked_div(rate).unwrap_or(0);
                h += &format!(
                    "  runway     {}{}\n",
                    format_duration(u64::try_from(runway).unwrap_or(u64::MAX)),
                    if v.lowBalance {
                        "  LOW BALANCE: top up with `gridlease topup`"
                    } else {
                        ""
                    },
                );
            }
            if v.lease_kind() != LeaseKind::Held {
                h += &format!("  ends       {}\n", when(v.end.to(), now));
            }
            h += &format!(
                "  logs       gridlease logs {} [--follow]   (tenant only)\n",
                f.id
            );
            // Built-in jobs run no container.
            let container = f.created.as_ref().is_some_and(|c| {
                gridlease_primitives::protocol::JobKind::from_code(c.params.jobKind)
                    != Some(gridlease_primitives::protocol::JobKind::MatmulI8)
            });
            if let Some(key) = f.tls_key {
                h += &format!(
                    "  tls        key {} bound on chain: reach it with gridlease connect {}
",
                    gridlease_fetch::service::curl_pin(key),
                    f.id
                );
            }
            if container && v.lease_kind() != LeaseKind::Held {
                h += &format!(
                    "  shell      gridlease shell {} [-- CMD ...]   (tenant only, while it runs)\n",
                    f.id
                );
            }
        }
        _ => {}
    }
    if let Some(r) = &f.result {
        h += &format!(
            "  result     {} bytes, root {} ({})\n",
            r.size,
            r.root,
            if r.uri.is_empty() { "no URI" } else { &r.uri }
        );
    }
    if let Some(next) = &st.next {
        h += &format!("  next       {next}\n");
    }
    h
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
    let mut gpu_of = Vec::new();
    for log in created {
        let Ok(e) = log.log_decode::<Market::OrderCreated>() else {
            continue;
        };
        gpu_of.push((e.inner.data.orderId, e.inner.data.params.gpuClass));
    }
    let ids: Vec<B256> = gpu_of.iter().map(|(id, _)| *id).collect();
    let facts = Facts::load(ctx, &ids).await?;
    let mut rows = Vec::new();
    let mut h = String::new();
    for (f, (_, class)) in facts.iter().zip(&gpu_of) {
        let st = f.state();
        h += &format!(
            "{}  {:<24}  escrow {:>14}  {:<9}  {}\n",
            f.id,
            st.word,
            money(f.v.escrow.to(), &f.token),
            gpu::class_name(*class),
            st.text,
        );
        rows.push(f.json());
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
    let m = ctx.lens()?;
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
        if v.status() != Status::Open {
            continue;
        }
        let t = ctx.token_at(v.token).await?;
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
