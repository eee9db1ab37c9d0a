//! `gridlease-keeper run` as a real process against a real anvil. The test plays tenant and
//! provider (operator key) directly; the keeper must find and do the paid work on its own:
//! award a closed auction, settle a running lease, close a completed one, prove a no-show, a
//! missed deadline and a wrong `matmul_i8` result (KB-05: checked locally first), and get paid
//! for it, resuming from its cursor after a restart. Two keepers at once never both get paid for
//! the same work, and neither ends up out of pocket (KB-02).

use std::{
    path::Path,
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
    IMarket::OrderParams, IStaking::Capacity, Market, MockStablecoin, Results, Staking,
};
use gridlease_core::{
    chain::{Client, send},
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
    anvil: gridlease_deploy::anvil::Anvil,
    dir: tempfile::TempDir,
    tenant: Client,
    operator: Client,
    market: Address,
    results: Address,
    staking: Address,
    usdc: Address,
}

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
    devnet::provider(&gov, &d, owner, operator.address(), cap, 500 * USDC)
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
    Net {
        operator: Client::connect(&anvil.url(), Some(operator))
            .await
            .expect("connect"),
        tenant,
        market,
        results: d.address("Results").expect("results"),
        staking: d.address("Staking").expect("staking"),
        usdc,
        dir,
        anvil,
    }
}

/// Write `keeper-<n>.toml` (the keeper's key comes from the environment).
fn config(net: &Net, n: u32) -> String {
    config_with(net, n, &net.anvil.url(), "", "3000").0
}

/// `keeper-<n>.toml` with its RPC, extra `[chain]` keys and native price; returns the file name
/// and the keeper's HTTP port.
fn config_with(net: &Net, n: u32, rpc: &str, chain: &str, native_price: &str) -> (String, u16) {
    let name = format!("keeper-{n}.toml");
    let port = anvil::free_port().expect("a free port");
    std::fs::write(
        net.dir.path().join(&name),
        format!(
            r#"[chain]
rpc = "{rpc}"
deployments = "deployments.json"
poll_ms = 100
{chain}

[wallet]
private_key = "env:KEEPER_KEY"

[profit]
native_price = "{native_price}"
max_gas_price_gwei = "50"

[earnings]
withdraw_above = "1000000"

[http]
listen = "127.0.0.1:{port}"

[data]
dir = "keeper-{n}"
"#
        ),
    )
    .expect("write config");
    (name, port)
}

/// A counter of the keeper's `/metrics` (0 while it does not answer).
async fn metric(port: u16, name: &str) -> u64 {
    let Ok(b) = gridlease_core::fetch::fetch(&format!("http://127.0.0.1:{port}/metrics")).await
    else {
        return 0;
    };
    String::from_utf8_lossy(&b)
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// A JSON-RPC pass-through to `upstream` on a free loopback port that counts the
/// `eth_sendRawTransaction` calls it forwards. Returns its URL, the counter, and the server task
/// (aborting it closes the port).
async fn rpc_proxy(
    upstream: String,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::{Arc, atomic::AtomicUsize};
    let sends = Arc::new(AtomicUsize::new(0));
    let counter = sends.clone();
    let client = alloy::transports::http::reqwest::Client::new();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (client, upstream, counter) = (client.clone(), upstream.clone(), counter.clone());
        async move {
            if String::from_utf8_lossy(&body).contains("eth_sendRawTransaction") {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let reply = client
                .post(upstream)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .expect("upstream answers")
                .bytes()
                .await
                .expect("upstream body");
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                reply.to_vec(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("proxy serves");
    });
    (url, sends, task)
}

fn start_keeper(dir: &Path, config: &str, key: usize, run: u32) -> Child {
    let log = std::fs::File::create(dir.join(format!("{config}.{run}.log"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_gridlease-keeper"))
        .args(["run", "--config", config, "--verbose"])
        .current_dir(dir)
        .env("KEEPER_KEY", ANVIL_KEYS[key])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("keeper starts")
}

fn logs_of(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            out += &format!(
                "--- {}\n{}",
                p.display(),
                std::fs::read_to_string(&p).unwrap_or_default()
            );
        }
    }
    out
}

fn stop(mut child: Child) {
    // SIGTERM: the keeper drains and exits 0.
    let status =
        anvil::terminate(&mut child, Duration::from_secs(30)).expect("the keeper stops on SIGTERM");
    assert!(status.success(), "keeper exited with {status}");
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

fn container() -> RunSpec {
    spec(Workload::Container {
        image: "busybox".into(),
        command: vec!["true".into()],
        env: Default::default(),
    })
}

const MATMUL: Matmul = Matmul {
    seed: B256::repeat_byte(0x42),
    m: 5,
    k: 7,
    n: 9,
};

impl Net {
    /// Create an order (instant, or with a 5 s auction) and bid on it as the provider at 36
    /// USDC an hour (the keeper's 0.1 % of that beats anvil's gas). Returns the id.
    async fn lease(&self, spec: &RunSpec, instant: bool, salt: u8) -> B256 {
        let p = OrderParams {
            specHash: spec.hash(),
            specURI: spec.data_uri(),
            token: self.usdc,
            deposit: U96::from(40 * USDC),
            maxPricePerSecond: U96::from(10_000_000_000_000_000u128),
            maxDuration: 3_600,
            bidWindow: if instant { 60 } else { 5 },
            collateral: U96::from(10 * USDC),
            gpuClass: 0,
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
        send(
            Market::new(self.market, &self.operator.provider)
                .bid(id, U96::from(10_000_000_000_000_000u128)),
        )
        .await
        .expect("bid");
        id
    }

    async fn terms(&self, id: B256) -> OrderParams {
        let l = self
            .logs(self.market, Market::OrderCreated::SIGNATURE_HASH, id)
            .await;
        l.first()
            .and_then(|l| l.log_decode::<Market::OrderCreated>().ok())
            .expect("order log")
            .inner
            .data
            .params
    }

    async fn acknowledge(&self, id: B256) {
        let terms = self.terms(id).await;
        send(
            Results::new(self.results, &self.operator.provider).acknowledge(
                id,
                self.tenant.from.expect("tenant"),
                terms.into(),
            ),
        )
        .await
        .expect("acknowledge");
    }

    async fn post(&self, id: B256, root: B256, uri: String) {
        send(
            Results::new(self.results, &self.operator.provider).postResult(
                id,
                root,
                uri,
                B256::ZERO,
            ),
        )
        .await
        .expect("post result");
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

    async fn status(&self, id: B256) -> u8 {
        Market::new(self.market, &self.tenant.provider)
            .getJob(id)
            .call()
            .await
            .expect("getJob")
            .status
    }

    /// Wait (up to 60 s) until `done` holds.
    async fn until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let t0 = Instant::now();
        while !done().await {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{what} never happened; logs:\n{}",
                logs_of(self.dir.path())
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

    async fn market_credit(&self, who: Address) -> u128 {
        Market::new(self.market, &self.tenant.provider)
            .creditOf(self.usdc, who)
            .call()
            .await
            .expect("credit")
            .to()
    }

    async fn slash_credit(&self, who: Address) -> u128 {
        Staking::new(self.staking, &self.tenant.provider)
            .creditOf(who)
            .call()
            .await
            .expect("credit")
            .to()
    }
}

const CLOSED: u8 = 3;

fn addr(key: usize) -> Address {
    ANVIL_KEYS[key]
        .parse::<PrivateKeySigner>()
        .expect("key")
        .address()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_kb_05_keeper_awards_settles_closes_and_proves_faults_for_pay() {
    let net = net().await;
    let dir = net.dir.path();
    let cfg = config(&net, 1);
    let me = addr(6);

    // A closed auction with an on-chain bid: the keeper awards it (unpaid, allowed by default).
    let auction = net.lease(&container(), false, 1).await;
    let mut keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(6).await;
    net.until("award", || async { net.status(auction).await == 2 })
        .await;
    net.acknowledge(auction).await;

    // A lease nobody acknowledges: a no-show once the 2 min start window is over.
    let no_show = net.lease(&container(), true, 2).await;
    // A matmul lease with a wrong result, served where the keeper can fetch it.
    let fraud = net.lease(&spec(matmul_workload()), true, 3).await;
    net.acknowledge(fraud).await;
    let mut c = matmul::multiply(
        &MATMUL.a(),
        &MATMUL.bt(),
        MATMUL.m as usize,
        MATMUL.k as usize,
        MATMUL.n as usize,
        1,
    );
    c[17] += 1;
    let bytes = matmul::encode(&c);
    let file = dir.join("wrong.bin");
    std::fs::write(&file, &bytes).expect("write");
    let root = MerkleTree::from_chunks(&bytes, 32).root();
    net.post(fraud, root, format!("file://{}", file.display()))
        .await;
    net.until("fraud proof", || async {
        net.status(fraud).await == CLOSED
    })
    .await;
    let proven = net
        .logs(
            net.results,
            Results::MatmulFraudProven::SIGNATURE_HASH,
            fraud,
        )
        .await;
    assert_eq!(proven.len(), 1);
    let reward = net.slash_credit(me).await;
    // 10 USDC collateral: half to the tenant, 10 % of the rest to the prover.
    assert_eq!(reward, USDC / 2);

    // Restart: what happens while the keeper is down is found from its cursor.
    stop(keeper);
    net.warp(121).await;
    // A matmul lease whose correct result is then held for the (1 day) challenge window.
    let good = net.lease(&spec(matmul_workload()), true, 4).await;
    net.acknowledge(good).await;
    let c = matmul::multiply(
        &MATMUL.a(),
        &MATMUL.bt(),
        MATMUL.m as usize,
        MATMUL.k as usize,
        MATMUL.n as usize,
        1,
    );
    let ok = matmul::encode(&c);
    let okfile = dir.join("good.bin");
    std::fs::write(&okfile, &ok).expect("write");
    net.warp(600).await;
    net.post(
        good,
        MerkleTree::from_chunks(&ok, 32).root(),
        format!("file://{}", okfile.display()),
    )
    .await;
    keeper = start_keeper(dir, &cfg, 6, 2);
    net.until("no-show proof", || async {
        net.status(no_show).await == CLOSED
    })
    .await;
    // The running auction lease accrued ~12 minutes: worth settling.
    net.until("settlement", || async {
        !net.logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, auction)
            .await
            .is_empty()
    })
    .await;
    let fees = net.market_credit(me).await;
    assert!(fees > 0, "no keeper fee");
    // The correct result was checked and not proven wrong; after the window the keeper closes
    // it as completed (the close pays the fee on what was held).
    net.until("verification", || async {
        logs_of(dir).contains("built-in result verified")
    })
    .await;
    net.warp(86_401).await;
    net.until("completed close", || async {
        net.status(good).await == CLOSED
    })
    .await;
    // The auction lease ran past its 1 h deadline without a result: missed deadline.
    net.until("missed-deadline proof", || async {
        net.status(auction).await == CLOSED
    })
    .await;
    let faults = net
        .logs(net.market, Market::LeaseFaulted::SIGNATURE_HASH, auction)
        .await;
    assert_eq!(faults.len(), 1, "the auction lease was faulted once");
    assert!(net.market_credit(me).await > fees, "the close paid a fee");
    assert_eq!(net.slash_credit(me).await, 3 * USDC / 2, "three slashes");
    let log = logs_of(dir);
    assert!(
        !log.contains(ANVIL_KEYS[6].trim_start_matches("0x")),
        "key leaked"
    );
    stop(keeper);

    // `status` reads the ledger the runs left.
    let out = Command::new(env!("CARGO_BIN_EXE_gridlease-keeper"))
        .args(["status", "--config", &cfg])
        .current_dir(dir)
        .env("KEEPER_KEY", ANVIL_KEYS[6])
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "fraud",
        "no-show",
        "missed-deadline",
        "settle",
        "close",
        "award",
    ] {
        assert!(text.contains(needle), "status lacks {needle}:\n{text}");
    }
}

fn matmul_workload() -> Workload {
    Workload::MatmulI8 {
        m: MATMUL.m,
        k: MATMUL.k,
        n: MATMUL.n,
        seed: MATMUL.seed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_02_two_keepers_never_both_paid_for_one_piece_of_work() {
    let net = net().await;
    let dir = net.dir.path();
    let mut ids = Vec::new();
    for salt in 0..6u8 {
        let id = net.lease(&container(), true, 10 + salt).await;
        net.acknowledge(id).await;
        ids.push(id);
    }
    let (c1, c2) = (config(&net, 1), config(&net, 2));
    let k1 = start_keeper(dir, &c1, 6, 1);
    let k2 = start_keeper(dir, &c2, 7, 1);
    // Accrue, then expire: settle races first, then close races.
    net.warp(900).await;
    net.until("settlements", || async {
        let mut all = true;
        for id in &ids {
            all &= !net
                .logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, *id)
                .await
                .is_empty();
        }
        all
    })
    .await;
    // Results are missing at the deadline: each lease is faulted exactly once, by one keeper.
    net.warp(3_600).await;
    net.until("all closed", || async {
        let mut all = true;
        for id in &ids {
            all &= net.status(*id).await == CLOSED;
        }
        all
    })
    .await;
    stop(k1);
    stop(k2);
    for id in &ids {
        let settled = net
            .logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, *id)
            .await;
        let mut times: Vec<_> = settled
            .iter()
            .map(|l| {
                l.log_decode::<Market::LeaseSettled>()
                    .expect("decode")
                    .inner
                    .data
                    .settledAt
            })
            .collect();
        let n = times.len();
        times.dedup();
        assert_eq!(times.len(), n, "a second paid up to the same time twice");
        let faulted = net
            .logs(net.market, Market::LeaseFaulted::SIGNATURE_HASH, *id)
            .await;
        assert_eq!(faulted.len(), 1);
    }
    // Each keeper's earnings (fees + slash rewards, in USDC) beat the gas it spent, valued at
    // the configured 3,000 USDC per ETH.
    let p = &net.tenant.provider;
    for key in [6usize, 7] {
        let who = addr(key);
        let earned = net.market_credit(who).await + net.slash_credit(who).await;
        let spent =
            U256::from(10_000u128 * 10u128.pow(18)) - p.get_balance(who).await.expect("bal");
        let spent_usdc = spent.to::<u128>() * 3_000 * USDC / 10u128.pow(18);
        assert!(
            earned >= spent_usdc,
            "keeper {key} lost money: earned {earned}, gas worth {spent_usdc}"
        );
    }
    let _ = logs_of(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_03_above_the_gas_price_cap_only_fault_proofs_go_out() {
    let net = net().await;
    let dir = net.dir.path();
    // Gas priced at 1 USDC per ETH, so a fault proof pays even at 100 gwei.
    let (cfg, port) = config_with(&net, 1, &net.anvil.url(), "", "1");
    let running = net.lease(&container(), true, 40).await;
    net.acknowledge(running).await;
    let no_show = net.lease(&container(), true, 41).await;
    // 100 gwei, above the 50 gwei cap: the start window passes and the lease accrues 25 min.
    let p = &net.tenant.provider;
    let spike = |gwei: u64| async move {
        let _: serde_json::Value = p
            .raw_request(
                "anvil_setNextBlockBaseFeePerGas".into(),
                (format!("{:#x}", gwei * 1_000_000_000),),
            )
            .await
            .expect("base fee");
    };
    spike(100).await;
    net.warp(1_500).await;
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.until("the no-show proof, above the cap", || async {
        net.status(no_show).await == CLOSED
    })
    .await;
    net.until("the settlement skipped for the cap", || async {
        metric(
            port,
            "gridlease_keeper_work_skipped_total{reason=\"gas-price-cap\"}",
        )
        .await
            > 0
    })
    .await;
    let base = p
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("block")
        .expect("head")
        .header
        .base_fee_per_gas
        .expect("base fee");
    assert!(base > 50_000_000_000, "the spike is over: {base} wei");
    assert!(
        net.logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, running)
            .await
            .is_empty(),
        "settled above the gas price cap"
    );
    // Back under the cap: the settlement goes out.
    spike(1).await;
    net.warp(1).await;
    net.until("the settlement under the cap", || async {
        !net.logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, running)
            .await
            .is_empty()
    })
    .await;
    stop(keeper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_04_private_endpoint_first_then_public_when_it_is_down() {
    let net = net().await;
    let dir = net.dir.path();
    let (public, public_sends, _public_task) = rpc_proxy(net.anvil.url()).await;
    let (private, private_sends, private_task) = rpc_proxy(net.anvil.url()).await;
    let id = net.lease(&container(), true, 50).await;
    net.acknowledge(id).await;
    let settlements = || async {
        net.logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, id)
            .await
            .len()
    };
    let sent = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::SeqCst);

    // Up: every transaction goes to the private endpoint, none to the public mempool. (Gas at
    // 1 USDC per ETH: one lease's 25 minutes pay for a settlement.)
    let chain = format!("private_rpc = \"{private}\"");
    let (cfg, _) = config_with(&net, 1, &public, &chain, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(1_500).await;
    net.until("a settlement sent privately", || async {
        settlements().await >= 1
    })
    .await;
    stop(keeper);
    assert!(
        sent(&private_sends) >= 1,
        "nothing went to the private endpoint"
    );
    assert_eq!(sent(&public_sends), 0, "a transaction went public");

    // Down (its port closed), already when the keeper starts: it runs, and sends publicly.
    private_task.abort();
    let _ = private_task.await;
    let before = sent(&private_sends);
    let (cfg, _) = config_with(&net, 2, &public, &chain, "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    net.warp(1_500).await;
    net.until("a settlement sent publicly", || async {
        settlements().await >= 2
    })
    .await;
    stop(keeper);
    assert!(sent(&public_sends) >= 1, "nothing went to the public node");
    assert_eq!(sent(&private_sends), before);
    let log = logs_of(dir);
    assert!(log.contains("private endpoint refused"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_01_service_lease_settled_while_live_then_its_lapse_reported_and_proven() {
    let net = net().await;
    let dir = net.dir.path();
    let staking = Staking::new(net.staking, &net.operator.provider);
    send(staking.heartbeat()).await.expect("heartbeat");
    let service = spec(Workload::Service {
        image: "busybox".into(),
        command: vec!["httpd".into()],
        env: Default::default(),
        port: 8080,
    });
    let id = net.lease(&service, true, 60).await;
    net.acknowledge(id).await;
    // Gas at 1 USDC per ETH: 50 s of a 36 USDC/h service lease pay for its settlement.
    let (cfg, _) = config_with(&net, 1, &net.anvil.url(), "", "1");
    let keeper = start_keeper(dir, &cfg, 6, 1);
    // Live (a heartbeat each 50 s of the 60 s period): its exact accrual is settled.
    net.warp(50).await;
    send(staking.heartbeat()).await.expect("heartbeat");
    net.until("the service settlement", || async {
        !net.logs(net.market, Market::LeaseSettled::SIGNATURE_HASH, id)
            .await
            .is_empty()
    })
    .await;
    // Then no heartbeat: reported once the period is over, proven after the 5 min grace.
    net.warp(120).await;
    net.until("the stale report", || async {
        !net.logs(net.results, Results::StaleReported::SIGNATURE_HASH, id)
            .await
            .is_empty()
    })
    .await;
    net.warp(301).await;
    net.until("the stale-heartbeat proof", || async {
        net.status(id).await == CLOSED
    })
    .await;
    let faults = net
        .logs(net.market, Market::LeaseFaulted::SIGNATURE_HASH, id)
        .await;
    assert_eq!(faults.len(), 1);
    assert_eq!(
        net.slash_credit(addr(6)).await,
        USDC / 2,
        "the reporter's share"
    );
    stop(keeper);
}
