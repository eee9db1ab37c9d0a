//! `gridlease submit`: spec -> checks -> one permit signature -> one transaction -> (follow).

use std::{path::Path, time::Instant};

use alloy::{
    primitives::{Address, B256, U256, aliases::U96},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use anyhow::{Context, Result};
use gridlease_bindings::{IMarket::OrderParams, Market, Market::MarketErrors, MockStablecoin};
use gridlease_chain::{
    ChainError, ContractError, Revert, classify, classify_rpc,
    deployments::TokenEntry,
    token::{SignedPermit, detect_permit_domain, sign_permit},
};
use gridlease_primitives::{
    gpu,
    protocol::{JobKind, JobViewExt, LeaseKind, Status},
    spec::{JobSpec, PUSH_URI},
    units::{covering, format_duration, parse_amount, parse_duration, rate_from_hourly_ceil},
};
use serde_json::json;

use crate::{
    ctx::{Ctx, Output, UserError, money, per_hour, read_file, resolve_inputs, send, user, utc},
    lease::Facts,
    manage::approve_market,
};

/// Flags of `submit`.
pub(crate) struct Opts {
    /// Follow the order.
    pub(crate) wait: bool,
    /// How long to follow.
    pub(crate) timeout: String,
    /// Close the lease once its built-in result is verified.
    pub(crate) accept: bool,
    /// Validate only.
    pub(crate) check: bool,
    /// Override of the spec URI.
    pub(crate) spec_uri: Option<String>,
    /// Push the spec to this provider node instead of publishing it.
    pub(crate) push: Option<String>,
}

/// The market found no allowance after the permit: the token refused the permit (the market
/// falls back to an existing approval when it does). Ask the token itself why, so the user hears
/// the real cause (a paused token, a frozen account, an expired or wrong signature), not the
/// market's symptom.
async fn permit_refused(
    ctx: &Ctx,
    token: &TokenEntry,
    tenant: Address,
    permit: &SignedPermit,
    deposit: u128,
    market: Revert,
) -> ChainError {
    let erc20 = MockStablecoin::new(token.address, &ctx.client.provider);
    let tried = erc20
        .permit(
            tenant,
            ctx.market,
            U256::from(deposit),
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
        )
        .call()
        .await;
    match tried.map_err(classify) {
        Err(ChainError::Revert(t)) => {
            let why = if t.hint.is_empty() {
                String::new()
            } else {
                format!(": {}", t.hint)
            };
            let mut r = *t;
            r.hint = format!(
                "{} refused the permit with {}{}{why}; nothing was sent",
                token.symbol, r.name, r.detail
            );
            ChainError::Revert(Box::new(r))
        }
        Err(other) => other,
        Ok(_) => ChainError::Revert(Box::new(market)),
    }
}

/// A spec checked against the market and turned into the order `submit` sends: the same checks
/// and messages for the CLI and the web console (`gridlease console`'s `/api/order`).
pub(crate) struct Prepared {
    /// The order, with a zero salt: the sender draws one.
    pub(crate) order: OrderParams,
    /// The payment token.
    pub(crate) token: TokenEntry,
    /// The escrow, in the payment token's units.
    pub(crate) deposit: u128,
    /// What the order says, for `--json` and the console.
    pub(crate) summary: serde_json::Value,
    /// What the order says, in words.
    pub(crate) human: String,
    /// The run part of the spec, canonical (what `--push` hands the node).
    pub(crate) run_json: Vec<u8>,
}

/// Check the spec `text` (called `name` in messages) against the market and build its order.
pub(crate) async fn prepare(
    ctx: &Ctx,
    text: &str,
    name: &str,
    spec_uri: Option<&str>,
    push: bool,
) -> Result<Prepared> {
    let mut spec = JobSpec::parse(text).map_err(|e| UserError(format!("{name}: {e}")))?;
    // Data inputs are committed by their roots, which go into the spec hash.
    let what = format!("{name}: matmul inputs");
    resolve_inputs(ctx, &mut spec.run.workload, &what).await?;
    let token = ctx.token(&spec.terms.token).await?;
    let stake = ctx
        .d
        .tokens
        .first()
        .cloned()
        .unwrap_or_else(|| token.clone());
    let field = |key: &str, e: gridlease_primitives::units::UnitError| {
        UserError(format!("{name}: price.{key}: {e}"))
    };
    let per_hour_units = parse_amount(&spec.terms.max_per_hour, token.decimals)
        .map_err(|e| field("max_per_hour", e))?;
    // The order's fields are 96-bit: larger amounts are typos, refused here (not a panic).
    const FIELD_MAX: u128 = 1 << 96;
    let rate = match rate_from_hourly_ceil(per_hour_units, token.decimals) {
        Some(r) if r < FIELD_MAX => r,
        _ => {
            return user(format!(
                "{name}: price.max_per_hour {} is more than an order can carry",
                spec.terms.max_per_hour
            ));
        }
    };
    let params = ctx.lens()?.params().call().await.map_err(classify)?;
    if rate < u128::from(params.minPricePerSecond) {
        return user(format!(
            "{name}: price.max_per_hour is below the market minimum of {}",
            per_hour(u128::from(params.minPricePerSecond), &token)
        ));
    }
    let t = &spec.terms;
    if t.max_duration > u64::from(params.maxLeaseDuration) {
        return user(format!(
            "{name}: price.max_duration {} is longer than this market allows ({})",
            format_duration(t.max_duration),
            format_duration(u64::from(params.maxLeaseDuration))
        ));
    }
    if t.bid_window > u64::from(params.maxBidWindow) {
        return user(format!(
            "{name}: price.bid_window {} is longer than this market allows ({})",
            format_duration(t.bid_window),
            format_duration(u64::from(params.maxBidWindow))
        ));
    }
    let deposit = match &t.deposit {
        Some(d) => parse_amount(d, token.decimals).map_err(|e| field("deposit", e))?,
        None => covering(rate, t.max_duration, token.decimals).unwrap_or(0),
    };
    if deposit == 0 || deposit >= FIELD_MAX {
        return user(format!(
            "{name}: the deposit must be more than zero and fit the escrow"
        ));
    }
    // The market refuses an order whose deposit cannot pay one minimum billing period at its
    // own reserve (MEC-14): said here, with the smallest deposit that would do.
    let period = u128::from(params.minBillingPeriod);
    let scale = 10u128.pow(18 - u32::from(token.decimals.min(18)));
    if deposit.saturating_mul(scale) < rate.saturating_mul(period) {
        let least = rate.saturating_mul(period).div_ceil(scale);
        return user(format!(
            "{name}: price.deposit {} pays less than the market's minimum billing period ({}) at price.max_per_hour; deposit at least {}",
            money(deposit, &token),
            format_duration(u64::from(params.minBillingPeriod)),
            money(least, &token)
        ));
    }
    let collateral =
        parse_amount(&t.collateral, stake.decimals).map_err(|e| field("collateral", e))?;
    // (The spec bounds it at 18 decimals; a stake token of 18 decimals still reaches 2^96.)
    if collateral >= FIELD_MAX {
        return user(format!(
            "{name}: price.collateral {} is more than an order can carry",
            t.collateral
        ));
    }
    if push && spec.run.workload.kind() == JobKind::MatmulI8 {
        return user(format!(
            "{name}: --push keeps the spec private, but keepers need a built-in job's spec to check its result; submit it without --push"
        ));
    }
    let spec_uri = match (push, spec_uri) {
        (true, _) => PUSH_URI.to_owned(),
        (false, Some(u)) => u.to_owned(),
        (false, None) => spec.run.data_uri(),
    };
    let r = &spec.run.resources;
    let order = OrderParams {
        specHash: spec.run.hash(),
        specURI: spec_uri,
        token: token.address,
        deposit: U96::from(deposit),
        maxPricePerSecond: U96::from(rate),
        maxDuration: u32::try_from(t.max_duration).unwrap_or(u32::MAX),
        bidWindow: u32::try_from(t.bid_window).unwrap_or(u32::MAX),
        collateral: U96::from(collateral),
        gpuClass: r.gpu_class,
        gpuCount: r.gpu_count,
        vramGiB: r.vram_gib,
        cpuCores: r.cpu_cores,
        ramGiB: r.ram_gib,
        jobKind: spec.run.workload.kind().code(),
        instant: t.instant,
        salt: B256::ZERO,
    };
    let summary = json!({
        "specHash": order.specHash,
        "token": token.symbol,
        "maxPricePerHour": per_hour(rate, &token),
        "deposit": money(deposit, &token),
        "maxDuration": t.max_duration,
        "bidWindow": t.bid_window,
        "collateral": money(collateral, &stake),
        "gpu": gpu::class_name(r.gpu_class),
        "instant": t.instant,
    });
    let human = format!(
        "job: {} on {} x{} ({} GiB), up to {} for {}, bids for {}\nescrow: {} (collateral {})\nspec hash: {}\n",
        spec.name
            .as_deref()
            .unwrap_or(match spec.run.workload.kind() {
                JobKind::MatmulI8 => "matmul_i8",
                JobKind::Service => "service",
                JobKind::Container => "container",
            }),
        gpu::class_name(r.gpu_class),
        r.gpu_count,
        r.vram_gib,
        per_hour(rate, &token),
        format_duration(t.max_duration),
        format_duration(t.bid_window),
        money(deposit, &token),
        money(collateral, &stake),
        order.specHash,
    );
    Ok(Prepared {
        order,
        token,
        deposit,
        summary,
        human,
        run_json: spec.run.canonical_json(),
    })
}

/// Run `submit`.
pub(crate) async fn run(ctx: &Ctx, file: &Path, opts: Opts) -> Result<Output> {
    let text = read_file(file)?;
    let timeout =
        parse_duration(&opts.timeout).map_err(|e| UserError(format!("--timeout: {e}")))?;
    let Prepared {
        mut order,
        token,
        deposit,
        summary,
        human,
        run_json,
    } = prepare(
        ctx,
        &text,
        &file.display().to_string(),
        opts.spec_uri.as_deref(),
        opts.push.is_some(),
    )
    .await?;
    order.salt = B256::random();
    if opts.check {
        return Ok(Output {
            human: format!("{human}spec OK (nothing sent)\n"),
            json: json!({ "ok": true, "order": summary }),
        });
    }

    let wallet = ctx.wallet()?;
    let tenant = wallet.address();
    let p = &ctx.client.provider;
    let erc20 = MockStablecoin::new(token.address, p);
    let balance = erc20.balanceOf(tenant).call().await.map_err(classify)?;
    if balance < U256::from(deposit) {
        return user(format!(
            "wallet {tenant} holds {}, the order needs {} of escrow; fund it or lower price.deposit",
            money(balance.to::<u128>(), &token),
            money(deposit, &token)
        ));
    }
    if p.get_balance(tenant).await.map_err(classify_rpc)?.is_zero() {
        return user(format!("wallet {tenant} has no ether to pay gas"));
    }
    let market = ctx.market();
    let id = order.order_id(tenant);
    // A token with an EIP-2612 permit pays the escrow in the order's own transaction; one without
    // (USDT and its like) is approved to the market first, as `topup` does.
    let permitted = match detect_permit_domain(p, ctx.client.chain_id, token.address).await {
        Ok(_) => true,
        Err(ChainError::User(why)) => {
            ctx.progress(&format!(
                "{}: {why}; the deposit is approved to the market first (two transactions)",
                token.symbol
            ));
            false
        }
        Err(e) => return Err(e.into()),
    };
    let started = Instant::now();
    // Said before anything is signed: a run stopped while it waits (Ctrl-C, a lost terminal)
    // leaves the id to look the order up by, not a second order placed in the dark.
    ctx.progress(&format!(
        "placing order {id} (if this is interrupted: gridlease status {id} says whether it was placed)"
    ));
    let sent = if permitted {
        let now = ctx.client.now().await?;
        let permit = sign_permit(
            p,
            ctx.client.chain_id,
            token.address,
            wallet,
            ctx.market,
            U256::from(deposit),
            now + 3_600,
        )
        .await?;
        match send(market.createOrderWithPermit(
            order.clone(),
            permit.deadline,
            permit.v,
            permit.r,
            permit.s,
        ))
        .await
        {
            Err(ChainError::Revert(r))
                if matches!(
                    r.error,
                    ContractError::Market(MarketErrors::InsufficientAllowance(_))
                ) =>
            {
                return Err(permit_refused(ctx, &token, tenant, &permit, deposit, *r)
                    .await
                    .into());
            }
            sent => sent,
        }
    } else {
        let create = market.createOrder(order.clone());
        let approved = approve_market(ctx, &token, tenant, deposit, create.call()).await?;
        let sent = send(create).await;
        if approved && let Err(ChainError::Revert(_)) = &sent {
            ctx.progress(&crate::manage::approval_stays(&token, deposit));
        }
        sent
    };
    let receipt = match sent {
        Err(ChainError::Network(e)) => {
            // Simulated fine, then the RPC failed: the order may well be on chain.
            return Err(ChainError::Network(format!(
                "{e}. Order {id} may have been placed all the same: `gridlease status {id}` says \
                 whether it was (submitting again would place a second order with its own escrow)"
            ))
            .into());
        }
        sent => sent?,
    };
    let block = receipt.block_number.unwrap_or_default();
    ctx.progress(&format!(
        "{human}ordered: {id} (tx {}, block {block})",
        receipt.transaction_hash
    ));
    let mut out_json = json!({
        "orderId": id,
        "tx": receipt.transaction_hash,
        "block": block,
        "order": summary,
    });
    if let Some(node) = &opts.push {
        let url = push_spec(node, ctx.venue(), id, wallet, &run_json).await?;
        ctx.progress(&format!("spec pushed to {url}"));
        out_json["pushedTo"] = json!(url);
    }
    if !opts.wait {
        return Ok(Output {
            human: format!(
                "{id}\nfollow it with: gridlease status {id}   (cancel before award: gridlease cancel {id})\n"
            ),
            json: out_json,
        });
    }
    let last = follow(ctx, id, &token, block, started, timeout, opts.accept)
        .await
        .with_context(|| {
            format!("order {id} is placed, but following it stopped: gridlease status {id}")
        })?;
    out_json["final"] = last.clone();
    Ok(Output {
        human: String::new(),
        json: out_json,
    })
}

/// POST the spec of order `id` to `node`'s `/specs/<id>`, signed by the tenant. The node reads the
/// order from the chain, so a 404 (its RPC has not seen the block yet) or a 429 (its look-ups
/// are rate limited) is retried for a while.
async fn push_spec(
    node: &str,
    venue: gridlease_fetch::Venue,
    id: B256,
    wallet: &alloy::signers::local::PrivateKeySigner,
    body: &[u8],
) -> Result<String> {
    let url = format!("{}/specs/{id}", node.trim_end_matches('/'));
    let client = alloy::transports::http::reqwest::Client::new();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let auth = gridlease_fetch::spec_auth(wallet, venue, id)
            .ok_or_else(|| UserError("cannot sign the spec push".into()))?;
        let resp = client
            .post(&url)
            .header(gridlease_fetch::AUTH_HEADER, auth)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await;
        let retry = match resp {
            Ok(r) if r.status().is_success() => return Ok(url),
            // 404: the node's RPC has not seen the order yet; 429: its chain look-ups are
            // rate limited. Both pass with time.
            Ok(r) if matches!(r.status().as_u16(), 404 | 429) => r.text().await.unwrap_or_default(),
            Ok(r) => {
                let status = r.status();
                return user(format!(
                    "the order {id} is on chain, but {url} refused its spec ({status}): {}",
                    r.text().await.unwrap_or_default().trim()
                ));
            }
            Err(e) => format!("cannot reach {url}: {e}"),
        };
        if Instant::now() >= deadline {
            return user(format!(
                "the order {id} is on chain, but its spec could not be pushed: {}; no provider can run it without the spec: cancel it with gridlease cancel {id}",
                retry.trim()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Print phases as they happen until the order ends or `timeout` seconds pass.
async fn follow(
    ctx: &Ctx,
    id: B256,
    token: &TokenEntry,
    from: u64,
    started: Instant,
    timeout: u64,
    accept: bool,
) -> Result<serde_json::Value> {
    let lens = ctx.lens()?;
    let mut bids = 0usize;
    let mut seen = None;
    let mut leased = false;
    let mut acked = false;
    // Verification of a held result: not yet tried, failed once (said so), or done.
    let mut verified = false;
    let mut failed_once = false;
    // A download that fails (an unreachable or hostile node) is tried again after 2 s, then
    // twice as long each time, up to a minute.
    let mut retry_at = std::time::Instant::now();
    let mut retry = gridlease_daemon::Backoff::new(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    let mut last = json!({ "status": "open", "state": "open" });
    let say = |what: &str| {
        ctx.progress(&format!(
            "[{:>6.1}s] {what}",
            started.elapsed().as_secs_f64()
        ))
    };
    say("ordered");
    loop {
        // The order's token is the one it was placed with (a cleared record reads address 0).
        let v = lens.getJob(id).call().await.map_err(classify)?;
        let status = v.status();
        if status == Status::Open {
            let filter = Filter::new()
                .address(ctx.market)
                .event_signature(Market::BidPlaced::SIGNATURE_HASH)
                .topic1(id)
                .from_block(from);
            let logs = ctx
                .client
                .provider
                .get_logs(&filter)
                .await
                .map_err(classify_rpc)?;
            if logs.len() > bids {
                bids = logs.len();
                say(&format!(
                    "bids: {bids} on chain, best {} (signed bids are seen at award)",
                    per_hour(v.ratePerSecond.to::<u128>(), token)
                ));
            }
        }
        let key = (status, v.kind, v.acknowledged, v.challenged, v.held);
        if seen != Some(key) && status != Status::None {
            seen = Some(key);
            let f = Facts::one(ctx, id).await?;
            let st = f.state();
            if !matches!(status, Status::None | Status::Open) && !leased {
                leased = true;
                if let Some(s) = &f.started {
                    // The lease's end as it stands (the view's), not the award's: every later
                    // line reads the view, and two ends for one lease would contradict each other.
                    let end: u64 = if f.v.end.is_zero() {
                        s.end.to()
                    } else {
                        f.v.end.to()
                    };
                    say(&format!(
                        "leased: provider {} at {}, runs until {}",
                        s.provider,
                        per_hour(s.ratePerSecond.to::<u128>(), &f.token),
                        utc(end)
                    ));
                }
            }
            // Whenever the acknowledgement is first seen, even with the result already posted.
            if v.acknowledged && !acked {
                acked = true;
                say("running (the provider acknowledged the lease)");
            }
            match (status, st.word) {
                (Status::Open, _) => {}
                (Status::Leased, "running" | "live") => say(&format!("running: {}", st.text)),
                (Status::Leased, _) => say(&st.text),
                _ => say(&format!("{status}: {}", st.text)),
            }
            last = json!({ "status": status.word(), "state": st.word, "stateText": st.text });
        }
        if status == Status::Leased
            && v.lease_kind() == LeaseKind::Held
            && !verified
            && std::time::Instant::now() >= retry_at
        {
            let opts = crate::result::Opts {
                file: None,
                out: None,
                prove: false,
                challenge: false,
                chunk: None,
            };
            match crate::result::run(ctx, &id.to_string(), opts).await {
                Ok(out) => {
                    verified = true;
                    let verdict = match out.json["matmul"]["ok"].as_bool() {
                        Some(true) if accept => {
                            let r = send(ctx.market().close(id)).await?;
                            let (paid, refund) = r
                                .inner
                                .logs()
                                .iter()
                                .find_map(|l| l.log_decode::<Market::LeaseClosed>().ok())
                                .map_or((0, 0), |e| {
                                    (
                                        e.inner.data.paid.to::<u128>(),
                                        e.inner.data.refund.to::<u128>(),
                                    )
                                });
                            format!(
                                "verified and accepted (tx {}): the provider was paid {} up to the result, {} refunded",
                                r.transaction_hash,
                                money(paid, token),
                                money(refund, token)
                            )
                        }
                        Some(true) => format!(
                            "verified: the product is correct (its pay is held for the challenge window; accept now with gridlease close {id})"
                        ),
                        Some(false) => {
                            format!("WRONG result: prove it with gridlease result {id} --prove")
                        }
                        None if out.json["matchesCommitment"] == true => {
                            "downloaded; it matches the commitment".to_owned()
                        }
                        None => format!(
                            "the download does not match the commitment: challenge its chunks with gridlease result {id} --challenge"
                        ),
                    };
                    say(&verdict);
                }
                Err(e) => {
                    retry_at = std::time::Instant::now() + retry.failed();
                    if !failed_once {
                        failed_once = true;
                        say(&format!(
                            "could not verify yet ({e:#}); retrying (or later: gridlease result {id})"
                        ));
                    }
                }
            }
        }
        if status.is_final() {
            return Ok(last);
        }
        if started.elapsed().as_secs() >= timeout {
            say(&format!(
                "still {} after {}; it stays on the market: gridlease status {id}",
                last["state"].as_str().unwrap_or("open"),
                format_duration(timeout)
            ));
            last["timedOut"] = json!(true);
            return Ok(last);
        }
        tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    }
}
