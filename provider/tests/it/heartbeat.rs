//! PD-03: a node that sells service leases keeps its provider live with one heartbeat per half
//! period, from chain time; an RPC outage covering 60 % of the period does not make it miss one,
//! and with `chain.fallback_rpc` a primary RPC that never comes back does not either.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use gridlease_bindings::{IStaking::Capacity, Staking};
use gridlease_chain::classify;
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS},
    devnet,
};
use gridlease_testkit::proxy::{Fault, Proxy};

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
    (l.at.to::<u64>(), u64::from(l.epoch), u64::from(l.period))
}

/// A registered provider's node (owner key 2, operator key 3) selling service leases on a fresh
/// market, reaching the chain only through a fault-injecting proxy; with `fallback`, its
/// `chain.fallback_rpc` is anvil itself.
struct Setup {
    _anvil: anvil::Anvil,
    gov: gridlease_chain::Client,
    d: gridlease_chain::deployments::Deployments,
    proxy: Proxy,
    dir: tempfile::TempDir,
    owner: Address,
    _node: Node,
}

async fn setup(fallback: bool) -> Setup {
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
    devnet::provider(&gov, &d, owner.clone(), &operator, cap, 100 * USDC)
        .await
        .expect("provider");
    let proxy = Proxy::start(&anvil.url()).await.expect("proxy");
    let port = anvil::free_port().expect("port");
    let fallback = if fallback {
        format!("fallback_rpc = \"{}\"\n", anvil.url())
    } else {
        String::new()
    };
    std::fs::write(
        dir.path().join("provider.toml"),
        format!(
            "[chain]\nrpc = \"{}\"\n{fallback}deployments = \"deployments.json\"\nconfirmations = 0\npoll_ms = 100\n\n[wallet]\nprivate_key = \"env:OP_KEY\"\nowner = \"{}\"\n\n[capacity]\ngpus = \"declared\"\nclass = \"any\"\n\n[pricing.any]\nfloor_per_hour = \"0.36\"\n\n[jobs]\nservices = true\nshutdown_grace = \"1s\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            proxy.url(),
            owner.address()
        ),
    )
    .expect("config");
    let node = Node(
        Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
            .args(["run", "--config", "provider.toml"])
            .current_dir(dir.path())
            .env("OP_KEY", ANVIL_KEYS[3])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("node.log")).expect("log"))
            .spawn()
            .expect("node starts"),
    );
    Setup {
        _anvil: anvil,
        gov,
        d,
        proxy,
        dir,
        owner: owner.address(),
        _node: node,
    }
}

impl Setup {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    fn staking(&self) -> Staking::StakingInstance<&alloy::providers::DynProvider> {
        Staking::new(
            self.d.address("Staking").expect("staking"),
            &self.gov.provider,
        )
    }

    /// Poll the provider's liveness (at, epoch, period) until `f` holds (30 s at most).
    async fn wait(&self, what: &str, f: &dyn Fn((u64, u64, u64)) -> bool) -> (u64, u64, u64) {
        let st = self.staking();
        let t0 = Instant::now();
        loop {
            let l = liveness(&st, self.owner).await;
            if f(l) {
                return l;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{what}: liveness {l:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pd_03_heartbeats_every_half_period_and_an_outage_of_60_percent_does_not_miss_one() {
    let n = setup(false).await;
    let (gov, proxy) = (&n.gov, &n.proxy);
    let node_log = || n.log();
    let wait = async |what: &str, f: &dyn Fn((u64, u64, u64)) -> bool| n.wait(what, f).await;
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
    assert_eq!(liveness(&n.staking(), n.owner).await.0, at0);

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

#[tokio::test(flavor = "multi_thread")]
async fn pd_03_with_its_rpc_down_for_good_the_node_fails_over_to_the_fallback_rpc_and_beats_in_time()
 {
    let n = setup(true).await;
    let (at0, epoch0, period) = n.wait("the first heartbeat", &|(at, _, _)| at != 0).await;
    // The primary RPC stops answering and never comes back; 31 s of the 60 s period pass.
    n.proxy.fail(Fault::Status(503));
    anvil::warp_to(&n.gov.provider, at0 + 31)
        .await
        .expect("warp");
    let (at1, epoch1, _) = n
        .wait("a heartbeat through the fallback", &|(at, _, _)| at > at0)
        .await;
    assert!(
        at1 - at0 <= period,
        "landed {} s after the last one (period {period})\n{}",
        at1 - at0,
        n.log()
    );
    assert_eq!(epoch1, epoch0, "no lapse");
    // (The primary was asked and failed: only then does the node fail over.)
    assert!(
        n.log().contains("failing over to the fallback RPC"),
        "{}",
        n.log()
    );
}
