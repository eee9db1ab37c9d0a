//! PD-03: a node that sells service leases keeps its provider live with one heartbeat per half
//! period, from chain time; an RPC outage covering 60 % of the period does not make it miss one.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use gridlease_bindings::{IStaking::Capacity, Staking};
use gridlease_core::chain::classify;
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS},
    devnet,
    proxy::{Fault, Proxy},
};

const USDC: u128 = 1_000_000;

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn liveness(
    st: &Staking::StakingInstance<&alloy::providers::DynProvider>,
    owner: Address,
) -> (u64, u64, u64) {
    let l = st
        .liveness(owner)
        .call()
        .await
        .map_err(classify)
        .expect("liveness");
    (l.at.to::<u64>(), l.epoch, u64::from(l.period))
}

#[tokio::test(flavor = "multi_thread")]
async fn pd_03_heartbeats_every_half_period_and_an_outage_of_60_percent_does_not_miss_one() {
    let (anvil, gov, d) = devnet::market(0, None).await.expect("market on anvil");
    let dir = tempfile::tempdir().expect("tempdir");
    d.save(&dir.path().join("deployments.json")).expect("save");
    let owner: PrivateKeySigner = ANVIL_KEYS[2].parse().expect("key");
    let operator: PrivateKeySigner = ANVIL_KEYS[3].parse().expect("key");
    let cap = Capacity {
        gpuClasses: 1,
        gpuCount: 1,
        vramGiB: 16,
    };
    devnet::provider(&gov, &d, owner.clone(), operator.address(), cap, 100 * USDC)
        .await
        .expect("provider");
    // The node reaches the chain only through the proxy.
    let proxy = Proxy::start(&anvil.url()).await.expect("proxy");
    let port = anvil::free_port().expect("port");
    std::fs::write(
        dir.path().join("provider.toml"),
        format!(
            "[chain]\nrpc = \"{}\"\ndeployments = \"deployments.json\"\nconfirmations = 0\npoll_ms = 100\n\n[wallet]\nprivate_key = \"env:OP_KEY\"\nowner = \"{}\"\n\n[capacity]\ngpus = \"declared\"\nclass = \"any\"\n\n[pricing.any]\nfloor_per_hour = \"0.36\"\n\n[jobs]\nservices = true\nshutdown_grace = \"1s\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            proxy.url(),
            owner.address()
        ),
    )
    .expect("config");
    let log = dir.path().join("node.log");
    let _node = Node(
        Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
            .args(["run", "--config", "provider.toml"])
            .current_dir(dir.path())
            .env("OP_KEY", ANVIL_KEYS[3])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("node starts"),
    );
    let st = Staking::new(d.address("Staking").expect("staking"), &gov.provider);
    let node_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait = async |what: &str, f: &dyn Fn((u64, u64, u64)) -> bool| {
        let t0 = Instant::now();
        loop {
            let l = liveness(&st, owner.address()).await;
            if f(l) {
                return l;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{what}: liveness {l:?}\n{}",
                node_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The first heartbeat comes at start (a provider without one cannot take service orders).
    let (at0, epoch0, period) = wait("the first heartbeat", &|(at, _, _)| at != 0).await;
    assert_eq!(period, 60, "the devnet's heartbeat period");

    // Before half a period of chain time has passed no second heartbeat is sent: the node looks
    // at its liveness again after the warp and sends nothing.
    let selector = alloy::primitives::hex::encode(
        <Staking::livenessCall as alloy::sol_types::SolCall>::SELECTOR,
    );
    let looks = || {
        proxy
            .params("eth_call")
            .iter()
            .filter(|p| p.to_string().contains(&selector))
            .count()
    };
    // (Chain time is pinned to the last beat, not moved on from wall time: anvil's clock runs
    // with the wall clock, and the waits below must not eat into the period on a slow machine.)
    anvil::warp_to(&gov.provider, at0 + 20).await.expect("warp");
    let (sent, looked) = (proxy.calls("eth_sendRawTransaction"), looks());
    let t0 = Instant::now();
    while looks() < looked + 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the node stopped reading its liveness\n{}",
            node_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        proxy.calls("eth_sendRawTransaction"),
        sent,
        "no heartbeat before half the period"
    );
    assert_eq!(liveness(&st, owner.address()).await.0, at0);

    // The RPC goes down; 60 % of the period passes on chain (36 s after the last beat, past the
    // half-period mark), then it comes back: the beat lands before the period is over.
    proxy.fail(Fault::Status(503));
    anvil::warp_to(&gov.provider, at0 + 36).await.expect("warp");
    let t0 = Instant::now();
    while !node_log().contains("heartbeat failed; retrying") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the heartbeat task did not meet the outage\n{}",
            node_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proxy.heal();
    let (at1, epoch1, _) = wait("the heartbeat after the outage", &|(at, _, _)| at > at0).await;
    assert!(
        at1 - at0 <= period,
        "landed {} s after the last one (period {period})\n{}",
        at1 - at0,
        node_log()
    );
    assert_eq!(
        epoch1, epoch0,
        "no lapse: the provider's service leases kept paying"
    );
}
