//! Commands that move the tenant's money: `topup`, `cancel`, `close`, `withdraw`.

use alloy::{
    primitives::{Address, U256, aliases::U96},
    rpc::types::TransactionReceipt,
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::{Market, Market::MarketErrors, MockStablecoin};
use gridlease_chain::{
    ChainError, ContractError, classify, deployments::TokenEntry, token::approve_exactly,
};
use gridlease_primitives::{
    protocol::{JobViewExt, LeaseKind, Status},
    units::parse_amount,
};
use serde_json::json;

use crate::{
    ctx::{Ctx, Output, UserError, eth, money, parse_address, parse_id, send, user, utc, when},
    lease::Facts,
};

fn event<E: SolEvent>(r: &TransactionReceipt) -> Option<E> {
    r.inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<E>().ok().map(|d| d.inner.data))
}

/// What the token refused to pay `to` in receipt `r`, booked as a market credit instead.
fn credited(r: &TransactionReceipt, to: Address) -> u128 {
    r.inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<Market::Credited>().ok())
        .filter(|e| e.inner.data.account == to)
        .map(|e| e.inner.data.amount.try_into().unwrap_or(u128::MAX))
        .sum()
}

fn credited_note(amount: u128, t: &TokenEntry) -> String {
    if amount == 0 {
        String::new()
    } else {
        format!(
            "; the token refused to send {} to your wallet: it is credited to you in the market (gridlease withdraw)",
            money(amount, t)
        )
    }
}

/// `topup ID AMOUNT [--for TENANT]`.
pub(crate) async fn topup(
    ctx: &Ctx,
    id: &str,
    amount: &str,
    for_tenant: Option<&str>,
) -> Result<Output> {
    let id = parse_id(id)?;
    let wallet = ctx.wallet()?;
    let v = ctx.lens()?.getJob(id).call().await.map_err(classify)?;
    let status = v.status();
    if !matches!(status, Status::Open | Status::Leased) {
        return user(format!(
            "{id} is {status}: only an open order or a running lease takes a top-up"
        ));
    }
    // Anyone may top up any order, and the money is its tenant's: a mistyped or pasted id would
    // be a gift. Someone else's order takes a top-up only with its tenant named.
    let named = for_tenant.map(parse_address).transpose()?;
    if v.tenant != wallet.address() && named != Some(v.tenant) {
        return user(format!(
            "{id} is tenant {}'s order, not yours ({}): what you add, and any refund of it, is \
             theirs. To top it up all the same: gridlease topup {id} {amount} --for {}",
            v.tenant,
            wallet.address(),
            v.tenant
        ));
    }
    if let Some(n) = named
        && n != v.tenant
    {
        return user(format!("--for {n}: {id} is tenant {}'s order", v.tenant));
    }
    if status == Status::Leased && v.lease_kind() == LeaseKind::Held {
        return user(format!(
            "{id} has its result posted and held: its pay is fixed, and money added now would only come back (accept it with gridlease close {id})"
        ));
    }
    let t = ctx.token_at(v.token).await?;
    let units = parse_amount(amount, t.decimals).map_err(|e| UserError(format!("amount: {e}")))?;
    if units == 0 {
        return user("amount: must be more than zero");
    }
    let erc20 = MockStablecoin::new(t.address, &ctx.client.provider);
    let me = wallet.address();
    let balance: u128 = erc20.balanceOf(me).call().await.map_err(classify)?.to();
    if balance < units {
        return user(format!(
            "wallet {me} holds {}, the top-up is {}",
            money(balance, &t),
            money(units, &t)
        ));
    }
    // The lease's provider, so a top-up can never land on a lease that changed hands.
    let expected = if status == Status::Leased {
        v.provider
    } else {
        Address::ZERO
    };
    let admin = ctx.admin();
    let top_up = admin.topUp(id, U96::from(units), expected);
    let approved = approve_market(ctx, &t, me, units, top_up.call()).await?;
    let r = approved_then(approved, &t, units, send(top_up).await)?;
    let escrow: u128 = event::<Market::ToppedUp>(&r).map_or(0, |e| e.escrow.to());
    Ok(Output {
        human: format!(
            "topped up {id} by {}; escrow now {}\n",
            money(units, &t),
            money(escrow, &t)
        ),
        json: json!({ "id": id, "amount": units.to_string(), "escrow": escrow.to_string(), "tx": r.transaction_hash }),
    })
}

/// Make the market's allowance from `owner` in token `t` at least `units`, for a call of the
/// market that pulls them, whose simulation is `simulate` (run only when the allowance is
/// short). That simulation is asked first, so a call the market itself refuses (a lapsed service lease, an order that
/// exists) costs no approval: only the token's refusal of the missing allowance, which comes
/// last, is what an approval answers. The approval is of exactly `units`; a short non-zero
/// allowance is set to zero first (USDT and its like refuse to change one non-zero allowance into
/// another, and return nothing from `approve`, which is sent without decoding its answer).
/// Whether an approval was sent: a call refused after it (the state changed in between) leaves
/// it, which [`approved_then`] says.
pub(crate) async fn approve_market(
    ctx: &Ctx,
    t: &TokenEntry,
    owner: Address,
    units: u128,
    simulate: impl std::future::IntoFuture<Output = Result<impl Sized, alloy::contract::Error>>,
) -> Result<bool> {
    let erc20 = MockStablecoin::new(t.address, &ctx.client.provider);
    let allowance = erc20
        .allowance(owner, ctx.market)
        .call()
        .await
        .map_err(classify)?;
    if allowance >= U256::from(units) {
        return Ok(false);
    }
    match simulate.await.map_err(classify) {
        Err(ChainError::Revert(r))
            if matches!(&r.error, ContractError::Market(e)
                if !matches!(e, MarketErrors::InsufficientAllowance(_))) =>
        {
            return Err(ChainError::Revert(r).into());
        }
        Err(e @ ChainError::Network(_)) => return Err(e.into()),
        _ => {}
    }
    ctx.progress(&format!(
        "approving {} to the market{}",
        money(units, t),
        if allowance.is_zero() {
            String::new()
        } else {
            format!(" (its allowance of {} set to 0 first)", t.symbol)
        }
    ));
    approve_exactly(
        &ctx.client.provider,
        t.address,
        ctx.market,
        allowance,
        U256::from(units),
    )
    .await?;
    Ok(true)
}

/// `sent`, the market call after an approval (when `approved`), with a failure saying that the
/// approval stays: only the market pulls from it, for the owner's own calls, and the next one
/// uses it.
pub(crate) fn approved_then<T>(
    approved: bool,
    t: &TokenEntry,
    units: u128,
    sent: Result<T, ChainError>,
) -> Result<T> {
    sent.map_err(|e| {
        let e = anyhow::Error::from(e);
        if approved {
            e.context(approval_stays(t, units))
        } else {
            e
        }
    })
}

/// What a failed call after an approval of `units` leaves.
pub(crate) fn approval_stays(t: &TokenEntry, units: u128) -> String {
    format!(
        "the approval of {} to the market went through and stays (only your own next call to the market uses it)",
        money(units, t)
    )
}

/// `cancel ID`.
pub(crate) async fn cancel(ctx: &Ctx, id: &str) -> Result<Output> {
    let id = parse_id(id)?;
    let me = ctx.wallet()?.address();
    let v = ctx.lens()?.getJob(id).call().await.map_err(classify)?;
    if v.status() != Status::Open {
        return user(format!(
            "{id} is {}: only an open order can be cancelled{}",
            v.status().word(),
            if v.status() == Status::Leased {
                " (close the lease instead: gridlease close ID)"
            } else {
                ""
            }
        ));
    }
    let t = ctx.token_at(v.token).await?;
    let r = send(ctx.admin().cancelOrder(id)).await?;
    let refund: u128 = event::<Market::OrderCancelled>(&r).map_or(0, |e| e.refund.to());
    let kept = credited(&r, v.tenant);
    Ok(Output {
        human: format!(
            "cancelled {id}; refunded {}{}\n",
            money(refund, &t),
            if v.tenant == me {
                credited_note(kept, &t)
            } else {
                String::new()
            }
        ),
        json: json!({ "id": id, "refund": refund.to_string(), "credited": kept.to_string(), "tx": r.transaction_hash }),
    })
}

/// What closing lease `f` now would do, as the contracts decide it (`Market.close`): who may,
/// what it pays, what comes back, and what to do instead when a fault is provable.
pub(crate) struct Preview {
    /// The sentence.
    pub(crate) text: String,
    /// Roughly what it pays out of escrow (the block's time decides the last seconds).
    pub(crate) pays: u128,
    /// A command that serves the tenant better than closing, if any.
    pub(crate) instead: Option<String>,
}

/// Explain a close of running lease `f` by `me`; a user error when `me` may not close it.
pub(crate) fn preview(f: &Facts, me: Option<Address>) -> Result<Preview> {
    let (v, now, id) = (&f.v, f.now, f.id);
    let t = &f.token;
    let escrow: u128 = v.escrow.to();
    let end: u64 = v.end.to();
    // Without a wallet (`close --check`), explain it as the tenant would see it.
    let tenant = me.is_none_or(|m| m == v.tenant);
    let horizon_note = |fault: &str| {
        format!(
            "; the {fault} stays provable for {} after the close",
            gridlease_primitives::units::format_duration(f.horizon)
        )
    };
    let prove = format!("gridlease result {id} --prove");
    match v.lease_kind() {
        LeaseKind::Batch => {
            if !tenant {
                return user(format!(
                    "only the tenant ({}) may close a batch lease without a result; a no-show or a missed deadline is ended by proving it: {prove}",
                    v.tenant
                ));
            }
            if v.acknowledged && now <= end {
                let text = format!(
                    "the provider acknowledged the job and its deadline ({}) has not passed, so closing stops it without a result and pays the time used so far: about {} at {}, refunding about {}",
                    utc(end),
                    money(f.accrued, t),
                    crate::ctx::per_hour(v.ratePerSecond.to(), t),
                    money(escrow.saturating_sub(f.accrued), t),
                );
                return Ok(Preview {
                    text,
                    pays: f.accrued,
                    instead: None,
                });
            }
            // Past the end, a result may still be posted within the deadline grace, and stands:
            // the market refuses a close then (it would void the provider's finished work).
            if let Some(d) = f.deadline()
                && now > end
                && now <= d
            {
                return user(format!(
                    "{id} passed its end ({}), but the provider may still post its result until {}: the market refuses a close until then. After it, a missing result is a missed deadline: {prove} refunds everything and slashes the provider",
                    utc(end),
                    when(d, now)
                ));
            }
            let fault = f.provable_liveness_fault();
            let mut text = if v.acknowledged {
                format!(
                    "the lease passed its end ({}) without a result: closing pays nothing and refunds all {}",
                    utc(end),
                    money(escrow, t)
                )
            } else {
                format!(
                    "the provider never acknowledged the lease: closing pays nothing and refunds all {}",
                    money(escrow, t)
                )
            };
            match fault {
                Some(fault) => {
                    text += &format!(
                        ". This is a {fault}: {prove} refunds everything too AND slashes the provider; prove it instead of closing{}",
                        horizon_note(fault)
                    );
                    Ok(Preview {
                        text,
                        pays: 0,
                        instead: Some(prove),
                    })
                }
                None => {
                    if let Some(a) = f.ack_until() {
                        text += &format!(
                            " (it becomes a provable no-show after {}; closing before then gives that proof up)",
                            when(a, now)
                        );
                    }
                    Ok(Preview {
                        text,
                        pays: 0,
                        instead: None,
                    })
                }
            }
        }
        LeaseKind::Held => {
            let refund = escrow.saturating_sub(f.accrued);
            if now <= end || v.challenged {
                if !tenant {
                    return user(format!(
                        "the result of {id} is held until {}{}: only its tenant ({}) may close (accept) it before then",
                        when(end, now),
                        if v.challenged {
                            " and a chunk challenge is open"
                        } else {
                            ""
                        },
                        v.tenant
                    ));
                }
                let mut text = format!(
                    "closing accepts the posted result: it pays the provider's held {} and refunds {}; faults on the result stay provable until {} and the provider's collateral stays held for {} after the close",
                    money(f.accrued, t),
                    money(refund, t),
                    utc(end),
                    gridlease_primitives::units::format_duration(f.horizon),
                );
                let mut instead = None;
                if !f.challenges.is_empty() || v.challenged {
                    let due = f.challenges.iter().any(|c| now > c.deadline);
                    text += if due {
                        ". A chunk challenge went UNANSWERED: proving it unavailable refunds everything and slashes the provider; prove it instead of accepting"
                    } else {
                        ". A chunk challenge is still open: accepting now pays even if the provider never reveals the chunk (it would still be provable)"
                    };
                    instead = due.then_some(prove);
                }
                Ok(Preview {
                    text,
                    pays: f.accrued,
                    instead,
                })
            } else {
                Ok(Preview {
                    text: format!(
                        "the result stood through its challenge window (over {}): closing completes the lease, pays the provider {} and refunds {}",
                        utc(end),
                        money(f.accrued, t),
                        money(refund, t)
                    ),
                    pays: f.accrued,
                    instead: None,
                })
            }
        }
        _ => {
            let text = if f.ack_until().is_some() {
                format!(
                    "the provider has not acknowledged the service: closing pays nothing and refunds {}{}",
                    money(escrow, t),
                    if f.provable_liveness_fault().is_some() {
                        horizon_note("no-show")
                    } else {
                        String::new()
                    }
                )
            } else {
                format!(
                    "closing pays the provider's live time not yet settled, about {}, and refunds about {}",
                    money(f.accrued, t),
                    money(escrow.saturating_sub(f.accrued), t)
                )
            };
            Ok(Preview {
                text,
                pays: f.accrued,
                instead: None,
            })
        }
    }
}

/// `close ID [--check] [--force]`.
pub(crate) async fn close(ctx: &Ctx, id: &str, check: bool, force: bool) -> Result<Output> {
    let id = parse_id(id)?;
    let me = if check {
        ctx.signer.as_ref().map(alloy::signers::Signer::address)
    } else {
        Some(ctx.wallet()?.address())
    };
    let f = Facts::one(ctx, id).await?;
    if f.v.status() != Status::Leased {
        return user(format!(
            "{id} is {}: only a running lease can be closed{}",
            f.v.status().word(),
            if f.v.status() == Status::Open {
                " (cancel the order instead: gridlease cancel ID)"
            } else {
                ""
            }
        ));
    }
    let p = preview(&f, me)?;
    let t = &f.token;
    let mut out = json!({
        "id": id,
        "explanation": p.text,
        "estimatedPay": p.pays.to_string(),
        "instead": p.instead,
    });
    if check {
        return Ok(Output {
            human: format!(
                "{id}\n  close      {}\n{}",
                p.text,
                p.instead
                    .as_ref()
                    .map_or_else(String::new, |c| format!("  instead    {c}\n"))
            ),
            json: out,
        });
    }
    // Paying for a result whose fault is provable now (an unanswered challenge) loses what the
    // provider's slashed collateral does not compensate: only on request.
    if let Some(c) = &p.instead
        && p.pays > 0
        && !force
    {
        return user(format!(
            "not closing {id}: {}. Run {c}, or gridlease close {id} --force to pay anyway",
            p.text
        ));
    }
    ctx.progress(&format!("closing {id}: {}", p.text));
    let r = send(ctx.market().close(id)).await?;
    let e = event::<Market::LeaseClosed>(&r);
    let (paid, refund, held, reason) = e.as_ref().map_or((0, 0, false, u8::MAX), |e| {
        (e.paid.to::<u128>(), e.refund.to::<u128>(), e.held, e.reason)
    });
    let kept = credited(&r, f.v.tenant);
    let mut human = format!(
        "closed {id} ({}); paid the provider {}, refunded {}{}\n",
        crate::lease::reason_name(reason),
        money(paid, t),
        money(refund, t),
        credited_note(kept, t),
    );
    if held {
        human += &format!(
            "  the provider's collateral stays held for {} (faults stay provable)\n",
            gridlease_primitives::units::format_duration(f.horizon)
        );
    }
    if let Some(c) = &p.instead {
        human += &format!("  next       {c}\n");
    }
    out["paid"] = json!(paid.to_string());
    out["refund"] = json!(refund.to_string());
    out["held"] = json!(held);
    out["reason"] = json!(crate::lease::reason_name(reason));
    out["credited"] = json!(kept.to_string());
    out["tx"] = json!(r.transaction_hash);
    Ok(Output { human, json: out })
}

/// One credit collected (or refused) by `withdraw`.
struct Collected {
    what: String,
    amount: String,
    json: serde_json::Value,
}

/// `withdraw [--token T] [--to ADDRESS]`: every credit the account has in the market (each
/// token), in staking (slash compensation, reporter rewards) and in the results modules (wei of
/// challenge bonds that could not be sent).
pub(crate) async fn withdraw(ctx: &Ctx, token: Option<&str>, to: Option<&str>) -> Result<Output> {
    let me = ctx.wallet()?.address();
    let to = match to {
        Some(a) => parse_address(a)?,
        None => me,
    };
    if to.is_zero() {
        return user("--to: the zero address cannot receive a withdrawal");
    }
    let only = match token {
        Some(t) => Some(ctx.token(t).await?),
        None => None,
    };
    let lens = ctx.lens()?;
    let staking = ctx.staking()?;
    let mut done: Vec<Collected> = Vec::new();
    let mut failed: Option<anyhow::Error> = None;
    let mut note = |r: Result<Collected>, done: &mut Vec<Collected>| match r {
        Ok(c) => done.push(c),
        Err(e) => {
            ctx.progress(&format!("error: {e:#}"));
            failed.get_or_insert(e);
        }
    };

    for t in ctx.market_tokens().await? {
        if only.as_ref().is_some_and(|o| o.address != t.address) {
            continue;
        }
        let credit: u128 = lens
            .creditOf(t.address, me)
            .call()
            .await
            .map_err(classify)?
            .try_into()
            .unwrap_or(u128::MAX);
        if credit == 0 {
            continue;
        }
        let r = send(ctx.market().withdraw(t.address, to))
            .await
            .map_err(|e| frozen(e, &t.symbol, me, to))
            .map(|r| Collected {
                what: format!("market credit in {}", t.symbol),
                amount: money(credit, &t),
                json: json!({ "source": "market", "token": t.symbol, "amount": credit.to_string(), "tx": r.transaction_hash }),
            });
        note(r, &mut done);
    }

    let stake_token: Address = staking.stakeToken().call().await.map_err(classify)?;
    if only.as_ref().is_none_or(|o| o.address == stake_token) {
        let st = ctx.token_at(stake_token).await?;
        let credit: u128 = staking
            .creditOf(me)
            .call()
            .await
            .map_err(classify)?
            .try_into()
            .unwrap_or(u128::MAX);
        if credit > 0 {
            let r = send(staking.withdrawCredit(to))
                .await
                .map_err(|e| frozen(e, &st.symbol, me, to))
                .map(|r| Collected {
                    what: "staking credit: slash compensation and rewards".into(),
                    amount: money(credit, &st),
                    json: json!({ "source": "staking", "token": st.symbol, "amount": credit.to_string(), "tx": r.transaction_hash }),
                });
            note(r, &mut done);
        }
    }

    if only.is_none() {
        for module in ctx.modules().await? {
            let r = ctx.results_at(module);
            let wei = r.ethCreditOf(me).call().await.map_err(classify)?;
            if wei.is_zero() {
                continue;
            }
            let res = send(r.withdrawEth(to))
                .await
                .map_err(anyhow::Error::from)
                .map(|rc| Collected {
                    what: format!("challenge bonds held by the results module {module}"),
                    amount: eth(wei),
                    json: json!({ "source": "results", "module": module, "token": "ETH", "amount": wei.to_string(), "tx": rc.transaction_hash }),
                });
            note(res, &mut done);
        }
    }

    if let Some(e) = failed {
        let got = done
            .iter()
            .map(|c| c.amount.clone())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(if got.is_empty() {
            e
        } else {
            e.context(format!("withdrew {got} to {to}, but not everything"))
        });
    }
    if done.is_empty() {
        return user(format!(
            "nothing to withdraw for {me}: no credit in the market{}, in staking or in the results module (refunds normally go straight to your wallet)",
            only.as_ref()
                .map_or_else(String::new, |t| format!(" in {}", t.symbol))
        ));
    }
    let mut human = String::new();
    for c in &done {
        human += &format!("withdrew {} ({}) to {to}\n", c.amount, c.what);
    }
    Ok(Output {
        human,
        json: json!({
            "to": to,
            "withdrawn": done.iter().map(|c| c.json.clone()).collect::<Vec<_>>(),
        }),
    })
}

/// A withdrawal refused because the token froze the account, said plainly (MEC-16).
fn frozen(e: gridlease_chain::ChainError, symbol: &str, me: Address, to: Address) -> anyhow::Error {
    use gridlease_chain::ChainError;
    let msg = match &e {
        ChainError::Revert(r) if r.name.starts_with("AccountFrozen") => format!(
            "{symbol} has frozen {me}: the protocol will not send its credit to {to} (a frozen account's money only goes to the account itself, once the token lets it)"
        ),
        ChainError::Revert(_) if to == me => format!(
            "the {symbol} token refused the transfer to {me} (a frozen or blacklisted account keeps its credit until the freeze is lifted)"
        ),
        _ => return e.into(),
    };
    anyhow::Error::from(e).context(msg)
}
