//! Stake and earnings against a leaked operator key: only the owner key unbonds or withdraws,
//! locked stake stays (PD-06, PD-08), and earnings above the threshold are reported (PD-05).

use alloy::{
    primitives::{B256, U256},
    sol_types::SolEvent,
};
use gridlease_bindings::{Market, MarketLens, Staking};
use gridlease_chain::{ChainError, Client, send};
use gridlease_deploy::anvil;

use crate::common::*;

#[tokio::test]
async fn pd_06_pd_08_a_leaked_operator_key_cannot_unbond_or_withdraw_and_locked_stake_stays() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    let id = n.order("sleep 30", 3).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    let owner = key(2).address();
    let staking = |c: &Client| Staking::new(n.staking, c.provider.clone());
    let info = staking(&n.tenant)
        .providerInfo(owner)
        .call()
        .await
        .expect("info");
    assert_eq!(info.locked, 10 * USDC, "the lease's collateral is locked");

    // The operator key (what the node holds) cannot take stake or earnings.
    let op = Client::connect(&n.url, Some(key(3)))
        .await
        .expect("connect");
    let refused = |e: ChainError| match e {
        ChainError::Revert(r) => r.name,
        other => panic!("not a revert: {other}"),
    };
    let r = send(staking(&op).unbond(U256::from(1)))
        .await
        .expect_err("operator unbond");
    assert_eq!(refused(r), "ProviderNotRegistered");
    let r = send(staking(&op).withdrawUnbonded(op.sender().expect("op")))
        .await
        .expect_err("operator withdraw");
    assert_eq!(refused(r), "NothingToWithdraw");
    let m = Market::new(n.market, op.provider.clone());
    let r = send(m.withdraw(n.usdc, op.sender().expect("op")))
        .await
        .expect_err("operator withdraws earnings");
    assert_eq!(refused(r), "NothingToWithdrawMarket");

    // PD-06: stake locked by a running lease cannot be unbonded, even by the owner.
    let o = Client::connect(&n.url, Some(key(2)))
        .await
        .expect("connect");
    let r = send(staking(&o).unbond(U256::from(info.stake)))
        .await
        .expect_err("locked");
    assert_eq!(refused(r), "InsufficientFreeStake");
    let after = staking(&n.tenant)
        .providerInfo(owner)
        .call()
        .await
        .expect("info");
    assert_eq!((after.stake, after.locked), (info.stake, info.locked));
    assert_eq!(
        n.count_logs(
            n.staking,
            Staking::Unbonded::SIGNATURE_HASH,
            B256::left_padding_from(owner.as_slice())
        )
        .await,
        0,
        "the node never unbonds"
    );
    let _ = id;
    n.stop(node, 1);
}

#[tokio::test]
async fn pd_05_pd_08_earnings_above_the_threshold_are_reported_and_only_the_owner_key_withdraws_them()
 {
    let n = net().await;
    n.config(&n.url, None);
    let path = n.path().join("provider.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("\n[earnings]\nwithdraw_above = \"0.000001\"\n");
    std::fs::write(&path, text).expect("config");
    let node = n.start(1);
    n.wait_head(1).await;
    let id = n.order("sleep 2; echo done", 6).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // A minute of chain time for the lease to earn something.
    anvil::warp(&n.tenant.provider, 60).await.expect("warp");
    n.result(id, 1, 40).await;
    // The tenant accepts the result by closing: the provider's share is credited to its owner.
    send(Market::new(n.market, &n.tenant.provider).close(id))
        .await
        .expect("close");
    let owner = key(2).address();
    let lens = MarketLens::new(n.lens, n.tenant.provider.clone());
    let credit = lens.creditOf(n.usdc, owner).call().await.expect("credit");
    assert!(credit > U256::from(1), "earned {credit}");
    n.wait_log(
        "the node to report the earnings",
        "earnings above earnings.withdraw_above",
        1,
        30,
    )
    .await;
    n.wait_metric(
        &format!(
            "gridlease_provider_withdrawable{{token=\"{}\"}} {credit}",
            n.usdc
        ),
        1,
    )
    .await;

    // PD-08: the operator key the node holds cannot take them; the owner key can.
    let op = Client::connect(&n.url, Some(key(3)))
        .await
        .expect("connect");
    let e = send(Market::new(n.market, op.provider.clone()).withdraw(n.usdc, key(3).address()))
        .await
        .expect_err("the operator has nothing to withdraw");
    assert!(
        matches!(&e, ChainError::Revert(r) if r.name == "NothingToWithdrawMarket"),
        "{e}"
    );
    let o = Client::connect(&n.url, Some(key(2)))
        .await
        .expect("connect");
    send(Market::new(n.market, o.provider.clone()).withdraw(n.usdc, owner))
        .await
        .expect("the owner withdraws");
    assert_eq!(
        lens.creditOf(n.usdc, owner).call().await.expect("credit"),
        U256::ZERO
    );
    n.stop(node, 1);
}
