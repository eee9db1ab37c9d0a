//! A service lease whose escrow runs dry, end to end: a provider node serving it (heartbeats
//! keep it paid), the keeper settling it, a `LowBalance` warning, the tenant's top-up through the
//! CLI, then exhaustion: the node stops the service and closes the lease (which frees its
//! collateral; a keeper closes it as `Exhausted` when that pays), and every unit of escrow went
//! to the provider and the fees (nothing paid twice, nothing stuck). The low-balance window is
//! shortened first the way governance changes anything: scheduled on the `Timelock` and executed
//! after its delay.

use std::time::Duration;

use alloy::{
    primitives::{B256, Bytes},
    sol_types::{SolCall, SolEvent, SolValue},
};
use gridlease_bindings::{Market as MarketC, MarketAdmin, MarketLens, Staking, admin};
use gridlease_chain::classify;
use gridlease_e2e::{
    market::{Conduct, Market, Options, ProviderPlan},
    scenario::{cli, submit, until},
};

const MARKER: &str = "gridlease-e2e-service";

fn service_spec() -> String {
    format!(
        r#"name = "endpoint"
kind = "service"

[resources]
gpu = "any"
gpu_count = 1
vram_gib = 1
cpu_cores = 1
ram_gib = 1

[price]
max_per_hour = "37.00"
max_duration = "1h"
bid_window = "30s"
deposit = "0.35"
collateral = "10"
instant = true
token = "USDC"

[service]
image = "docker.io/library/busybox:1.36"
command = ["sh", "-c", "echo {MARKER}; while true; do sleep 1; done"]
port = 8080
"#
    )
}

/// Processes whose command line carries the marker.
fn service_processes() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read(e.path().join("cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(MARKER))
                })
                .count()
        })
        .unwrap_or(0)
}

async fn logs(m: &Market, sig: B256, id: B256) -> Vec<alloy::rpc::types::Log> {
    m.logs(m.deployments.address("Market").expect("market"), sig, id)
        .await
        .expect("logs")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_lease_warns_is_topped_up_then_runs_dry_and_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 36 USDC per hour = 0.01 USDC per second: 0.35 USDC of escrow lasts 35 s, the top-up of 0.15
    // USDC 15 s more (an order must deposit at least the market's minimum billing period at its
    // reserve price of 37 USDC per hour: governance shortens the period to 20 s, 0.21 USDC).
    let plan = ProviderPlan {
        name: "svc",
        class: "any",
        vram_gib: 16,
        owner: "provider1",
        operator: "provider1-operator",
        any_per_hour: "36.00",
        class_per_hour: "36.00",
        conduct: Conduct::Honest,
        signed: false,
    };
    let opts = Options {
        providers: vec![plan],
        // The service runs as a local process: publishing its port needs a bridge network,
        // which the Podman of the test command (network none only, no CNI) does not set up.
        engine: None,
        ..Options::default()
    };
    let mut m = Market::start(dir.path(), &opts).await.expect("market");
    let market = MarketC::new(m.deployments.address("Market").expect("m"), &m.gov.provider);
    let lens = MarketLens::new(
        m.deployments.address("MarketLens").expect("lens"),
        &m.gov.provider,
    );
    let staking = Staking::new(
        m.deployments.address("Staking").expect("s"),
        &m.gov.provider,
    );
    // Warn when less than 30 s of escrow is left, and bill at least 20 s: governance schedules it
    // on the Timelock, which owns the market, and executes it after the delay.
    let mut params = market.params().call().await.expect("params");
    params.lowBalanceWindow = 30;
    params.minBillingPeriod = 20;
    // The admin binding's own copy of the struct: the same ABI.
    let params = admin::IMarket::Params::abi_decode(&params.abi_encode()).expect("same struct");
    let data: Bytes = MarketAdmin::setParamsCall { params_: params }
        .abi_encode()
        .into();
    gridlease_testkit::governance::govern(
        &m.gov.provider,
        m.deployments.address("Timelock").expect("timelock"),
        *market.address(),
        data,
    )
    .await
    .expect("governance sets the window");
    assert_eq!(
        market
            .params()
            .call()
            .await
            .expect("params")
            .lowBalanceWindow,
        30
    );
    // Service orders go only to live providers: the node beats again (the warp let its last
    // heartbeat go stale) within seconds of chain time.
    let owner = m.account("provider1");
    until(
        "a fresh heartbeat of the node",
        Duration::from_secs(60),
        async || {
            let l = staking.liveness(owner).call().await.map_err(classify)?;
            let now = m.gov.now().await?;
            Ok((l.at.to::<u64>() + u64::from(l.period) > now + 5).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", m.providers[0].log_tail(30)));

    let id = submit(&m, "service", &service_spec(), &|l| eprintln!("{l}"))
        .await
        .expect("submit");
    until("the service running", Duration::from_secs(60), async || {
        let j = lens.getJob(id).call().await.map_err(classify)?;
        Ok((j.acknowledged && service_processes() > 0).then_some(()))
    })
    .await
    .expect("running");

    // The keeper's settlements bring the runway under 30 s: LowBalance, then the tenant tops up.
    until("LowBalance", Duration::from_secs(90), async || {
        Ok((!logs(&m, MarketC::LowBalance::SIGNATURE_HASH, id)
            .await
            .is_empty())
        .then_some(()))
    })
    .await
    .expect("low balance");
    assert!(lens.getJob(id).call().await.expect("job").lowBalance);
    cli(&m, "service", &["topup", &id.to_string(), "0.15"], &|l| {
        eprintln!("{l}")
    })
    .await
    .expect("topup");
    let job = lens.getJob(id).call().await.expect("job");
    assert!(!job.lowBalance, "a top-up clears the flag");
    assert_eq!(
        logs(&m, MarketC::ToppedUp::SIGNATURE_HASH, id).await.len(),
        1
    );

    // Then it runs dry: the lease is closed (by the node, or by the keeper when that pays) and
    // the node stops the service.
    let closed = until("the close", Duration::from_secs(180), async || {
        Ok(logs(&m, MarketC::LeaseClosed::SIGNATURE_HASH, id)
            .await
            .first()
            .and_then(|l| l.log_decode::<MarketC::LeaseClosed>().ok())
            .map(|l| l.inner.data))
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\n{}\n{}",
            m.providers[0].log_tail(40),
            m.keeper
                .as_ref()
                .map(|k| k.log_tail(40))
                .unwrap_or_default()
        )
    });
    assert!(
        closed.reason == 1 || closed.reason == 3,
        "closed by the provider or as Exhausted: {closed:?}"
    );
    assert_eq!(closed.refund.to::<u128>(), 0, "nothing left to refund");
    // Everything deposited (0.35 + 0.15 USDC) was paid out, once: settlements + the close.
    let settled: u128 = logs(&m, MarketC::LeaseSettled::SIGNATURE_HASH, id)
        .await
        .iter()
        .filter_map(|l| l.log_decode::<MarketC::LeaseSettled>().ok())
        .map(|l| l.inner.data.amount.to::<u128>())
        .sum();
    assert_eq!(settled + closed.paid.to::<u128>(), 500_000);
    until("the service stopped", Duration::from_secs(30), async || {
        Ok((service_processes() == 0).then_some(()))
    })
    .await
    .expect("the node stops the service when its lease closes");
    m.stop().expect("daemons exit 0");
}
