//! Commands that move the tenant's money: `topup`, `cancel`, `close`, `withdraw`.

use alloy::{primitives::U256, rpc::types::TransactionReceipt, sol_types::SolEvent};
use anyhow::Result;
use gridlease_bindings::{Market, MockStablecoin};
use gridlease_core::{
    chain::{classify, send},
    units::parse_amount,
};
use serde_json::json;

use crate::ctx::{Ctx, Output, UserError, money, parse_id, status_name, user};

fn event<E: SolEvent>(r: &TransactionReceipt) -> Option<E> {
    r.inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<E>().ok().map(|d| d.inner.data))
}

/// `topup ID AMOUNT`.
pub(crate) async fn topup(ctx: &Ctx, id: &str, amount: &str) -> Result<Output> {
    let id = parse_id(id)?;
    let wallet = ctx.wallet()?;
    let m = ctx.market();
    let v = m.getJob(id).call().await.map_err(classify)?;
    let status = v.status;
    if status != 1 && status != 2 {
        return user(format!(
            "{id} is {}: only an open order or a running lease takes a top-up",
            status_name(status)
        ));
    }
    let t = ctx.token_at(v.token);
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
    let allowance = erc20
        .allowance(me, ctx.market)
        .call()
        .await
        .map_err(classify)?;
    if allowance < U256::from(units) {
        ctx.progress(&format!("approving {} to the market", money(units, &t)));
        send(erc20.approve(ctx.market, U256::from(units))).await?;
    }
    // The lease's provider, so a top-up can never land on a lease that changed hands.
    let expected = if status == 2 {
        v.provider
    } else {
        alloy::primitives::Address::ZERO
    };
    let r = send(m.topUp(id, alloy::primitives::aliases::U96::from(units), expected)).await?;
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

/// `cancel ID`.
pub(crate) async fn cancel(ctx: &Ctx, id: &str) -> Result<Output> {
    let id = parse_id(id)?;
    ctx.wallet()?;
    let m = ctx.market();
    let v = m.getJob(id).call().await.map_err(classify)?;
    if v.status != 1 {
        return user(format!(
            "{id} is {}: only an open order can be cancelled{}",
            status_name(v.status),
            if v.status == 2 {
                " (close the lease instead: gridlease close ID)"
            } else {
                ""
            }
        ));
    }
    let t = ctx.token_at(v.token);
    let r = send(m.cancelOrder(id)).await?;
    let refund: u128 = event::<Market::OrderCancelled>(&r).map_or(0, |e| e.refund.to());
    Ok(Output {
        human: format!("cancelled {id}; refunded {}\n", money(refund, &t)),
        json: json!({ "id": id, "refund": refund.to_string(), "tx": r.transaction_hash }),
    })
}

/// `close ID`.
pub(crate) async fn close(ctx: &Ctx, id: &str) -> Result<Output> {
    let id = parse_id(id)?;
    ctx.wallet()?;
    let m = ctx.market();
    let v = m.getJob(id).call().await.map_err(classify)?;
    if v.status != 2 {
        return user(format!(
            "{id} is {}: only a running lease can be closed{}",
            status_name(v.status),
            if v.status == 1 {
                " (cancel the order instead: gridlease cancel ID)"
            } else {
                ""
            }
        ));
    }
    let t = ctx.token_at(v.token);
    let r = send(m.close(id)).await?;
    let e = event::<Market::LeaseClosed>(&r);
    let (paid, refund) = e
        .as_ref()
        .map_or((0, 0), |e| (e.paid.to::<u128>(), e.refund.to::<u128>()));
    Ok(Output {
        human: format!(
            "closed {id}; paid the provider {}, refunded {}\n",
            money(paid, &t),
            money(refund, &t)
        ),
        json: json!({ "id": id, "paid": paid.to_string(), "refund": refund.to_string(), "tx": r.transaction_hash }),
    })
}

/// `withdraw [--token T]`.
pub(crate) async fn withdraw(ctx: &Ctx, token: &str) -> Result<Output> {
    let t = ctx.d.token(token)?;
    let me = ctx.wallet()?.address();
    let m = ctx.market();
    let credit: u128 = m
        .creditOf(t.address, me)
        .call()
        .await
        .map_err(classify)?
        .to();
    if credit == 0 {
        return user(format!(
            "the market holds no {} credit for {me}; refunds normally go straight to your wallet",
            t.symbol
        ));
    }
    let r = send(m.withdraw(t.address, me)).await?;
    Ok(Output {
        human: format!("withdrew {} to {me}\n", money(credit, &t)),
        json: json!({ "amount": credit.to_string(), "token": t.symbol, "tx": r.transaction_hash }),
    })
}
