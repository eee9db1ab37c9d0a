//! `gridlease-provider run` as a real process against a real anvil: it bids on orders it can
//! serve and ignores the rest, runs a process job and a `matmul_i8` job, posts results that match
//! what the chain and the tenant can check, serves them (the tenant's only to the tenant), and
//! after `kill -9` mid-job a restart finishes the job exactly once.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256, aliases::U96},
    providers::Provider,
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use gridlease_bindings::{
    IMarket::OrderParams, IStaking::Capacity, Market, MockStablecoin, Results,
};
use gridlease_core::{
    chain::{Client, send},
    fetch,
    matmul::{self, Matmul},
    merkle::MerkleTree,
    spec::{Resources, RunSpec, Workload},
};
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS},
    deploy::mint,
    devnet,
};

const USDC: u128 = 1_000_000;

struct Net {
    _anvil: gridlease_deploy::anvil::Anvil,
    dir: tempfile::TempDir,
    tenant: Client,
    market: Address,
    results: Address,
    usdc: Address,
    port: u16,
}

/// A market with provider `owner` (key 2, operator key 3) registered for class `any` with one
/// 16 GiB GPU and 100 USDC staked, a funded tenant (key 1), and a node config in a temp dir.
async fn net() -> Net {
    let (anvil, gov, d) = devnet::market(0, None).await.expect("market on anvil");
    let dir = tempfile::tempdir().expect("tempdir");
    d.save(&dir.path().join("deployments.json")).expect("save");
    let owner: PrivateKeySigner = ANVIL_KEYS[2].parse().expect("key");
    let operator: PrivateKeySigner = ANVIL_KEYS[3].parse().expect("key");
    let tenant_key: PrivateKeySigner = ANVIL_KEYS[1].parse().expect("key");
    let usdc = d.token("USDC").expect("usdc").address;
    let cap = Capacity {
        gpuClasses: 1,
        gpuCount: 1,
        vramGiB: 16,
    };
    devnet::provider(&gov, &d, owner.clone(), operator.address(), cap, 100 * USDC)
        .await
        .expect("provider registered and staked");
    mint(&gov, usdc, tenant_key.address(), 1_000 * USDC)
        .await
        .expect("mint");
    let tenant = Client::connect(&anvil.url(), Some(tenant_key))
        .await
        .expect("connect");
    let market = d.address("Market").expect("market");
    send(MockStablecoin::new(usdc, &tenant.provider).approve(market, U256::from(1_000 * USDC)))
        .await
        .expect("approve");
    let port = anvil::free_port().expect("a free port");
    let config = format!(
        r#"[chain]
rpc = "{}"
deployments = "deployments.json"
confirmations = 0
poll_ms = 100

[wallet]
private_key = "env:OP_KEY"
owner = "{}"

[capacity]
gpus = "declared"
class = "any"
count = 1
vram_gib = 16

[pricing.any]
floor_per_hour = "0.36"

[jobs]
max_concurrent = 4
executor = "process"
post_margin = "5s"
shutdown_grace = "2s"

[http]
listen = "127.0.0.1:{port}"
"#,
        anvil.url(),
        owner.address()
    );
    std::fs::write(dir.path().join("provider.toml"), config).expect("write");
    Net {
        _anvil: anvil,
        dir,
        tenant,
        market,
        results: d.address("Results").expect("results"),
        usdc,
        port,
    }
}

/// The node as a child process, logging to `<dir>/node-<n>.log`.
fn start_node(dir: &Path, n: u32) -> Child {
    let log = std::fs::File::create(dir.join(format!("node-{n}.log"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
        .args(["run", "--config", "provider.toml", "--verbose"])
        .current_dir(dir)
        .env("OP_KEY", ANVIL_KEYS[3])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("node starts")
}

fn node_log(dir: &Path, n: u32) -> String {
    std::fs::read_to_string(dir.join(format!("node-{n}.log"))).unwrap_or_default()
}

fn spec(workload: Workload) -> RunSpec {
    RunSpec {
        version: 1,
        workload,
        resources: Resources {
            gpu_class: 0,
            gpu_count: 1,
            vram_gib: 8,
            cpu_cores: 1,
            ram_gib: 1,
        },
    }
}

impl Net {
    /// Create an order for `spec` (class `class`), returning its id.
    async fn order(&self, spec: &RunSpec, class: u8, instant: bool, salt: u8) -> B256 {
        let p = OrderParams {
            specHash: spec.hash(),
            specURI: spec.data_uri(),
            token: self.usdc,
            deposit: U96::from(10 * USDC),
            // 3.60 per hour: ten times the node's floor.
            maxPricePerSecond: U96::from(1_000_000_000_000_000u128),
            maxDuration: 600,
            // An auction's window outlasts the instant job that holds the node's one GPU first,
            // however slow the machine.
            bidWindow: if instant { 60 } else { 30 },
            collateral: U96::from(10 * USDC),
            gpuClass: class,
            gpuCount: 1,
            vramGiB: 8,
            cpuCores: 1,
            ramGiB: 1,
            jobKind: spec.workload.kind().code(),
            instant,
            salt: B256::repeat_byte(salt),
        };
        let id = p.order_id(self.tenant.from.expect("tenant"));
        send(Market::new(self.market, &self.tenant.provider).createOrder(p))
            .await
            .expect("order");
        id
    }

    async fn logs(&self, address: Address, sig: B256, id: B256) -> Vec<alloy::rpc::types::Log> {
        self.tenant
            .provider
            .get_logs(
                &Filter::new()
                    .address(address)
                    .event_signature(sig)
                    .topic1(id)
                    .from_block(0),
            )
            .await
            .expect("logs")
    }

    /// Wait (polling the chain, up to 90 s) until lease `id` has a result; return its root.
    async fn result_root(&self, id: B256, n: u32) -> B256 {
        let r = Results::new(self.results, &self.tenant.provider);
        let t0 = Instant::now();
        loop {
            let res = r.resultOf(id).call().await.expect("resultOf");
            if res.postedAt.to::<u64>() != 0 {
                return res.root;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(90),
                "no result for {id}; node log:\n{}",
                node_log(self.dir.path(), n)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn results_url(&self, id: B256) -> String {
        format!("http://127.0.0.1:{}/results/{id}", self.port)
    }

    async fn metrics(&self) -> String {
        let b = fetch::fetch(&format!("http://127.0.0.1:{}/metrics", self.port))
            .await
            .unwrap_or_default();
        String::from_utf8_lossy(&b).into_owned()
    }

    /// Wait until `/metrics` contains `needle`.
    async fn wait_metric(&self, needle: &str, n: u32) {
        let t0 = Instant::now();
        while !self.metrics().await.contains(needle) {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "metrics never showed {needle}: {}\nnode log:\n{}",
                self.metrics().await,
                node_log(self.dir.path(), n)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Move chain time on by `secs` and mine a block.
    async fn warp(&self, secs: u64) {
        anvil::warp(&self.tenant.provider, secs)
            .await
            .expect("warp");
    }
}

fn stop(mut child: Child) {
    // SIGTERM: the node drains and exits 0.
    let status =
        anvil::terminate(&mut child, Duration::from_secs(20)).expect("the node stops on SIGTERM");
    assert!(status.success(), "node exited with {status}");
}

#[tokio::test]
async fn pd_01_off_05_the_node_bids_on_what_it_can_serve_runs_it_and_posts_results_that_verify() {
    let n = net().await;
    let dir: PathBuf = n.dir.path().into();
    let node = start_node(&dir, 1);
    n.wait_metric("gridlease_provider_head_block", 1).await;

    // An order for an H100 (not registered) is ignored; a matmul (instant) and a process job
    // (auctioned) are served.
    let h100 = n
        .order(
            &spec(Workload::MatmulI8 {
                m: 8,
                k: 8,
                n: 8,
                seed: B256::repeat_byte(1),
            }),
            9,
            true,
            1,
        )
        .await;
    let seed = B256::repeat_byte(7);
    let job = Matmul {
        seed,
        m: 48,
        k: 40,
        n: 33,
    };
    let mm = n
        .order(
            &spec(Workload::MatmulI8 {
                m: 48,
                k: 40,
                n: 33,
                seed,
            }),
            0,
            true,
            2,
        )
        .await;
    let env = [("TASK".to_owned(), "7".to_owned())].into_iter().collect();
    let cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "echo hello from $TASK; echo $OP_KEY".to_owned(),
    ];
    let proc_spec = spec(Workload::Container {
        image: "local".into(),
        command: cmd,
        env,
    });
    let pj = n.order(&proc_spec, 0, false, 3).await;

    // The matmul lease: the posted root is the product's commitment.
    let want = matmul::commit(&matmul::multiply(&job.a(), &job.bt(), 48, 40, 33, 1)).root();
    assert_eq!(n.result_root(mm, 1).await, want);
    let served = fetch::fetch(&n.results_url(mm))
        .await
        .expect("public result");
    assert_eq!(MerkleTree::from_chunks(&served, 32).root(), want);

    // The auctioned order: the node bid; after the window the tenant awards it.
    let t0 = Instant::now();
    while n
        .logs(n.market, Market::BidPlaced::SIGNATURE_HASH, pj)
        .await
        .is_empty()
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{}",
            node_log(&dir, 1)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n.warp(31).await;
    send(Market::new(n.market, &n.tenant.provider).award(pj, vec![]))
        .await
        .expect("award");
    let root = n.result_root(pj, 1).await;
    // Only the tenant gets it: no signature is refused, a stranger's is forbidden.
    let anon = fetch::fetch(&n.results_url(pj))
        .await
        .expect_err("needs auth");
    assert!(anon.contains("401"), "{anon}");
    let stranger: PrivateKeySigner = ANVIL_KEYS[8].parse().expect("key");
    let auth = fetch::result_auth(&stranger, pj).expect("sign");
    let e = fetch::fetch_with(&n.results_url(pj), Some(&auth))
        .await
        .expect_err("not the tenant");
    assert!(e.contains("403"), "{e}");
    let tenant: PrivateKeySigner = ANVIL_KEYS[1].parse().expect("key");
    let auth = fetch::result_auth(&tenant, pj).expect("sign");
    let out = fetch::fetch_with(&n.results_url(pj), Some(&auth))
        .await
        .expect("tenant reads it");
    // The job saw its own environment and not the node's key.
    assert_eq!(out, b"hello from 7\n\n");
    assert_eq!(MerkleTree::from_chunks(&out, 32).root(), root);

    // The H100 order got no bid from this node, and the metrics say why.
    assert!(
        n.logs(n.market, Market::BidPlaced::SIGNATURE_HASH, h100)
            .await
            .is_empty()
    );
    n.wait_metric(
        "gridlease_provider_orders_skipped_total{reason=\"class\"} 1",
        1,
    )
    .await;
    n.wait_metric("gridlease_provider_results_posted_total 2", 1)
        .await;
    let health = fetch::fetch(&format!("http://127.0.0.1:{}/healthz", n.port))
        .await
        .expect("healthy");
    assert!(String::from_utf8_lossy(&health).starts_with("ok head"));

    // A second node on the same state directory refuses to start.
    let second = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
        .args(["run", "--config", "provider.toml"])
        .current_dir(&dir)
        .env("OP_KEY", ANVIL_KEYS[3])
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another gridlease-provider runs"), "{err}");

    stop(node);
    let log = node_log(&dir, 1);
    assert!(
        !log.contains(ANVIL_KEYS[3].trim_start_matches("0x")),
        "the key leaked into the log"
    );
    assert!(log.contains("stopped"), "{log}");
}

#[tokio::test]
async fn off_14_pd_07_kill_9_mid_job_then_restart_posts_the_result_exactly_once() {
    let n = net().await;
    let dir: PathBuf = n.dir.path().into();
    let node = start_node(&dir, 1);
    n.wait_metric("gridlease_provider_head_block", 1).await;
    let marker = dir.join("runs");
    // Each run appends a line: the job runs again after the crash (it was killed with the node),
    // but its result is posted once.
    // The first run waits for a file the test writes only once the node is dead.
    let go = dir.join("go");
    let script = format!(
        "echo run >> {}; while [ ! -e {} ]; do sleep 0.1; done; echo done",
        marker.display(),
        go.display()
    );
    let s = spec(Workload::Container {
        image: "local".into(),
        command: vec!["sh".into(), "-c".into(), script],
        env: Default::default(),
    });
    let id = n.order(&s, 0, true, 9).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut node = node;
    node.kill().expect("kill -9");
    let _ = node.wait();
    std::fs::write(&go, b"").expect("let the job finish");
    let node = start_node(&dir, 2);
    let root = n.result_root(id, 2).await;
    let auth = fetch::result_auth(&ANVIL_KEYS[1].parse().expect("key"), id).expect("sign");
    let out = fetch::fetch_with(&n.results_url(id), Some(&auth))
        .await
        .expect("served after restart");
    assert_eq!(out, b"done\n");
    assert_eq!(MerkleTree::from_chunks(&out, 32).root(), root);
    let posted = n
        .logs(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
        .await;
    assert_eq!(posted.len(), 1, "posted exactly once");
    assert_eq!(
        std::fs::read_to_string(&marker)
            .expect("marker")
            .lines()
            .count(),
        2,
        "killed once, run again once"
    );
    assert!(
        node_log(&dir, 2).contains("resuming job"),
        "{}",
        node_log(&dir, 2)
    );
    stop(node);
}
