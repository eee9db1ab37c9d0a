//! The harness of the keeper's anvil tests: a devnet market with one provider (owner key 2,
//! operator key 3, which the test plays directly), a funded tenant (key 1), an HTTP server that
//! serves (or refuses) results the way a provider node would, and the keeper as a real process
//! with its own config, logs and `/metrics`.
//!
//! Nothing here waits by sleeping: [`Net::until`] polls a condition against a deadline, and
//! [`Net::polls`] waits until the keeper has planned a number of times at the current chain state
//! (its `gridlease_keeper_polls_total` counter), so "the keeper did not do X" is asserted after
//! it had every chance to.

#![allow(dead_code)] // each test uses part of the harness

use std::{
    collections::HashMap,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, Bytes, U256, aliases::U96},
    providers::Provider,
    rpc::types::{Log, TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::StatusCode,
    routing::get,
};
use gridlease_bindings::{
    IMarket::OrderParams, Market, MarketLens, MockStablecoin, Results, Staking,
    lens::IMarket::JobView,
};
use gridlease_chain::{Client, send};
use gridlease_deploy::anvil::{self, ANVIL_KEYS};
use gridlease_primitives::spec::{Resources, RunSpec, Workload};
use gridlease_workload::{
    matmul::{self, Matmul},
    merkle::{Commitment, MerkleTree, result_chunk},
};

use gridlease_testkit::market::Market as Fixture;
pub(crate) use gridlease_testkit::market::USDC;
/// 0.01 USDC a second (36 USDC an hour), 18-decimal units.
pub(crate) const RATE: u128 = 10_000_000_000_000_000;
pub(crate) const DEPOSIT: u128 = 40 * USDC;
pub(crate) const COLLATERAL: u128 = 10 * USDC;
/// The devnet results module: 5 % of what a fault returns to the tenant goes to its prover.
pub(crate) const FAULT_FEE_BPS: u128 = 500;
/// The devnet keeper fee, bps of what a third party's settle or close pays.
pub(crate) const KEEPER_FEE_BPS: u128 = 10;
/// The devnet challenge bond, wei.
pub(crate) const BOND: u128 = 1_000_000_000_000_000;
/// The devnet windows, seconds.
pub(crate) const START_WINDOW: u64 = 120;
pub(crate) const CHALLENGE_WINDOW: u64 = 86_400;
pub(crate) const DEADLINE_GRACE: u64 = 60;
pub(crate) const RESPONSE_WINDOW: u64 = 600;
pub(crate) const STALE_GRACE: u64 = 300;
pub(crate) const HEARTBEAT: u64 = 60;
/// A fault pays its prover a fee only this long after it became provable (the devnet module's
/// `tenantPriority`): before, the tenant recovers its money for free.
pub(crate) const PRIORITY: u64 = 600;

/// `IMarket.Status`.
pub(crate) const LEASED: u8 = 2;
pub(crate) const CLOSED: u8 = 3;
pub(crate) const FAULTED: u8 = 5;
/// `IMarket.CloseReason`.
pub(crate) const FAULTED_REASON: u8 = 4;
pub(crate) const COMPLETED: u8 = 5;
pub(crate) const ACCEPTED: u8 = 6;
pub(crate) const LAPSED: u8 = 7;

/// How long any one awaited thing may take (a loaded two-core machine builds alongside).
const DEADLINE: Duration = Duration::from_secs(180);

/// What the result server answers for a name.
type Served = Arc<Mutex<HashMap<String, (StatusCode, Vec<u8>)>>>;

pub(crate) struct Net {
    pub(crate) anvil: gridlease_deploy::anvil::Anvil,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) gov: Client,
    pub(crate) tenant: Client,
    pub(crate) operator: Client,
    pub(crate) owner: Address,
    pub(crate) market: Address,
    pub(crate) lens: Address,
    pub(crate) results: Address,
    pub(crate) staking: Address,
    pub(crate) usdc: Address,
    pub(crate) timelock: Address,
    served: Served,
    results_url: String,
}

pub(crate) async fn net() -> Net {
    let Fixture {
        anvil,
        gov,
        dir,
        tenant,
        owner,
        operator,
        usdc,
        market,
        lens,
        results,
        staking,
        deployments,
        ..
    } = Fixture::start(500 * USDC).await;
    let timelock = deployments.address("Timelock").expect("timelock");
    let owner_address = owner.address();
    let served: Served = Arc::default();
    let app = Router::new()
        .route(
            "/r/{name}",
            get(
                |State(s): State<Served>, UrlPath(name): UrlPath<String>| async move {
                    let got = s.lock().expect("lock").get(&name).cloned();
                    got.unwrap_or((StatusCode::NOT_FOUND, Vec::new()))
                },
            ),
        )
        .with_state(served.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let results_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Net {
        operator: Client::connect(&anvil.url(), Some(operator))
            .await
            .expect("connect"),
        tenant,
        gov,
        owner: owner_address,
        market,
        lens,
        results,
        staking,
        usdc,
        timelock,
        served,
        results_url,
        dir,
        anvil,
    }
}

/// Write `keeper-<n>.toml` (the keeper's key comes from the environment) with gas priced at
/// `native_price` USDC per ETH and `extra` TOML appended; returns the file name and the
/// keeper's HTTP port.
pub(crate) fn config_with(
    net: &Net,
    n: u32,
    rpc: &str,
    chain: &str,
    native_price: &str,
    extra: &str,
) -> (String, u16) {
    let name = format!("keeper-{n}.toml");
    // No provider node runs here to close its own completed leases: the keeper does, at once.
    // A result is taken for unavailable after 5 s, not the default's 2 minutes of wall time.
    let extra = match extra.split_once("[strategies]\n") {
        Some((before, after)) => {
            format!("{before}[strategies]\nclose_grace_s = 0\nunavailable_after_s = 5\n{after}")
        }
        None => format!("{extra}\n[strategies]\nclose_grace_s = 0\nunavailable_after_s = 5\n"),
    };
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

[fetch]
allow = ["127.0.0.0/8", "::1"]

[http]
listen = "127.0.0.1:{port}"

[data]
dir = "keeper-{n}"

{extra}
"#
        ),
    )
    .expect("write config");
    (name, port)
}

/// `keeper-<n>.toml` against the net's anvil, gas at `native_price` USDC per ETH.
pub(crate) fn config(net: &Net, n: u32, native_price: &str) -> (String, u16) {
    config_with(net, n, &net.anvil.url(), "", native_price, "")
}

/// A counter of the keeper's `/metrics` (0 while it does not answer).
pub(crate) async fn metric(port: u16, name: &str) -> u64 {
    gridlease_testkit::metrics::scrape(port, name).await
}

// A keeper process: killed when its handle drops, if the test ends (or fails) without `stop`.
pub(crate) use gridlease_testkit::process::Daemon as Keeper;

pub(crate) fn start_keeper(dir: &Path, config: &str, key: usize, run: u32) -> Keeper {
    let log = std::fs::File::create(dir.join(format!("{config}.{run}.log"))).expect("log");
    Keeper(
        Command::new(env!("CARGO_BIN_EXE_gridlease-keeper"))
            .args(["run", "--config", config, "--verbose"])
            .current_dir(dir)
            .env("KEEPER_KEY", ANVIL_KEYS[key])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("keeper starts"),
    )
}

pub(crate) fn logs_of(dir: &Path) -> String {
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

/// What `gridlease-keeper status` prints for `config` (the keeper of key 6), which must succeed.
pub(crate) fn keeper_status(dir: &Path, config: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gridlease-keeper"))
        .args(["status", "--config", config])
        .current_dir(dir)
        .env("KEEPER_KEY", ANVIL_KEYS[6])
        .output()
        .expect("status");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// SIGTERM: the keeper drains and exits 0.
pub(crate) fn stop(mut k: Keeper) {
    let status =
        anvil::terminate(&mut k, Duration::from_secs(30)).expect("the keeper stops on SIGTERM");
    assert!(status.success(), "keeper exited with {status}");
}

pub(crate) fn addr(key: usize) -> Address {
    ANVIL_KEYS[key]
        .parse::<PrivateKeySigner>()
        .expect("key")
        .address()
}

pub(crate) fn spec(workload: Workload) -> RunSpec {
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

pub(crate) fn container() -> RunSpec {
    spec(Workload::Container {
        image: "busybox".into(),
        command: vec!["true".into()],
        env: Default::default(),
    })
}

pub(crate) fn service() -> RunSpec {
    spec(Workload::Service {
        image: "busybox".into(),
        command: vec!["httpd".into()],
        env: Default::default(),
        port: 8080,
        tls: false,
    })
}

pub(crate) const MATMUL: Matmul = Matmul {
    seed: B256::repeat_byte(0x42),
    m: 5,
    k: 7,
    n: 9,
};

pub(crate) fn matmul() -> RunSpec {
    spec(Workload::MatmulI8 {
        m: MATMUL.m,
        k: MATMUL.k,
        n: MATMUL.n,
        seed: MATMUL.seed,
    })
}

/// The correct product of [`MATMUL`], as result bytes.
pub(crate) fn product() -> Vec<u8> {
    let c = matmul::multiply(
        &MATMUL.a(),
        &MATMUL.bt(),
        MATMUL.m as usize,
        MATMUL.k as usize,
        MATMUL.n as usize,
        1,
    );
    matmul::encode(&c)
}

/// The product of [`MATMUL`] with one element off by one.
pub(crate) fn wrong_product() -> Vec<u8> {
    let mut c = matmul::multiply(
        &MATMUL.a(),
        &MATMUL.bt(),
        MATMUL.m as usize,
        MATMUL.k as usize,
        MATMUL.n as usize,
        1,
    );
    c[17] += 1;
    matmul::encode(&c)
}

/// Bytes of a container's result that spans a few 1 KiB leaves.
pub(crate) fn container_result() -> Vec<u8> {
    (0..3_000u32).map(|i| (i % 251) as u8).collect()
}

/// `bytes32` of a short string, as the market's fault kinds are.
pub(crate) fn kind(s: &str) -> B256 {
    let mut b = [0u8; 32];
    b[..s.len()].copy_from_slice(s.as_bytes());
    B256::from(b)
}

impl Net {
    /// Serve `bytes` publicly under `name`; returns its URL.
    pub(crate) fn serve(&self, name: &str, bytes: Vec<u8>) -> String {
        self.answer(name, StatusCode::OK, bytes)
    }

    /// Answer `status` (and `bytes`) for `name`; returns its URL.
    pub(crate) fn answer(&self, name: &str, status: StatusCode, bytes: Vec<u8>) -> String {
        self.served
            .lock()
            .expect("lock")
            .insert(name.to_owned(), (status, bytes));
        format!("{}/r/{name}", self.results_url)
    }

    /// A URL nothing listens on.
    pub(crate) fn dead_url(&self) -> String {
        let port = anvil::free_port().expect("a free port");
        format!("http://127.0.0.1:{port}/r/gone")
    }

    /// Order parameters for `spec` at [`RATE`], with `deposit`.
    pub(crate) fn params(
        &self,
        spec: &RunSpec,
        instant: bool,
        salt: u8,
        deposit: u128,
    ) -> OrderParams {
        OrderParams {
            specHash: spec.hash(),
            specURI: spec.data_uri(),
            token: self.usdc,
            deposit: U96::from(deposit),
            maxPricePerSecond: U96::from(RATE),
            maxDuration: 3_600,
            bidWindow: if instant { 60 } else { 5 },
            collateral: U96::from(COLLATERAL),
            gpuClass: 0,
            gpuCount: 1,
            vramGiB: 8,
            cpuCores: 1,
            ramGiB: 1,
            jobKind: spec.workload.kind().code(),
            instant,
            salt: B256::repeat_byte(salt),
        }
    }

    /// Create an order and bid on it as the provider at [`RATE`]: an instant order becomes a
    /// lease (acknowledged by the bid itself), an auction waits for its award. Returns the id.
    pub(crate) async fn order(&self, p: OrderParams) -> B256 {
        let id = p.order_id(self.tenant.from.expect("tenant"));
        send(Market::new(self.market, &self.tenant.provider).createOrder(p))
            .await
            .expect("order");
        send(Market::new(self.market, &self.operator.provider).bid(id, U96::from(RATE)))
            .await
            .expect("bid");
        id
    }

    /// [`Self::order`] with the default deposit.
    pub(crate) async fn lease(&self, spec: &RunSpec, instant: bool, salt: u8) -> B256 {
        self.order(self.params(spec, instant, salt, DEPOSIT)).await
    }

    pub(crate) async fn acknowledge(&self, id: B256) {
        send(Results::new(self.results, &self.operator.provider).acknowledge(id))
            .await
            .expect("acknowledge");
    }

    /// Post the commitment `c` of a result served at `uri`, as the provider's operator.
    pub(crate) async fn post(&self, id: B256, c: Commitment, uri: String) {
        send(
            Results::new(self.results, &self.operator.provider).postResult(
                id,
                c.root,
                c.size,
                uri,
                B256::ZERO,
            ),
        )
        .await
        .expect("post result");
    }

    /// Reveal chunk `index` of `data` (the posted result of `id`) on chain, as the provider's
    /// operator: the honest answer to a challenge.
    pub(crate) async fn reveal(&self, id: B256, data: &[u8], index: u64) -> TransactionReceipt {
        let c = Commitment::of(data);
        send(Results::new(self.results, &self.operator.provider).answer(
            id,
            c.root,
            c.size,
            U256::from(index),
            Bytes::copy_from_slice(result_chunk(data, index)),
            MerkleTree::result(data).proof(index),
        ))
        .await
        .expect("answer")
    }

    /// Beat for the provider; returns the chain time of the beat.
    pub(crate) async fn heartbeat(&self) -> u64 {
        let staking = Staking::new(self.staking, &self.operator.provider);
        send(staking.heartbeat()).await.expect("heartbeat");
        let liveness = staking.liveness(self.owner).call().await.expect("liveness");
        liveness.at.to::<u64>()
    }

    pub(crate) async fn logs(&self, address: Address, sig: B256, id: B256) -> Vec<Log> {
        gridlease_testkit::market::logs(&self.tenant, address, sig, id).await
    }

    /// The decoded events `E` of `id` from `address`.
    pub(crate) async fn events<E: SolEvent>(&self, address: Address, id: B256) -> Vec<E> {
        self.logs(address, E::SIGNATURE_HASH, id)
            .await
            .iter()
            .map(|l| l.log_decode::<E>().expect("decode").inner.data)
            .collect()
    }

    pub(crate) async fn job(&self, id: B256) -> JobView {
        MarketLens::new(self.lens, &self.tenant.provider)
            .getJob(id)
            .call()
            .await
            .expect("getJob")
    }

    pub(crate) async fn status(&self, id: B256) -> u8 {
        self.job(id).await.status
    }

    /// Wait until `done` holds (failing with the keepers' logs after the deadline).
    pub(crate) async fn until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let t0 = Instant::now();
        while !done().await {
            assert!(
                t0.elapsed() < DEADLINE,
                "{what} never happened; logs:\n{}",
                logs_of(self.dir.path())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the keeper serving metrics on `port` has finished `n` more polls from now,
    /// all at the current chain state or later: whatever it would do now, it has planned.
    pub(crate) async fn polls(&self, port: u16, n: u64) {
        let from = metric(port, "gridlease_keeper_polls_total").await;
        self.until(&format!("{n} keeper polls"), || async {
            metric(port, "gridlease_keeper_polls_total").await >= from + n
        })
        .await;
    }

    /// Move chain time on by `secs` and mine a block.
    pub(crate) async fn warp(&self, secs: u64) {
        anvil::warp(&self.tenant.provider, secs)
            .await
            .expect("warp");
    }

    /// Mine a block at chain time `timestamp` (not before the head's).
    pub(crate) async fn warp_to(&self, timestamp: u64) {
        anvil::warp_to(&self.tenant.provider, timestamp)
            .await
            .expect("warp");
    }

    pub(crate) async fn now(&self) -> u64 {
        self.tenant.now().await.expect("chain time")
    }

    pub(crate) async fn market_credit(&self, who: Address) -> u128 {
        MarketLens::new(self.lens, &self.tenant.provider)
            .creditOf(self.usdc, who)
            .call()
            .await
            .expect("credit")
            .to()
    }

    pub(crate) async fn slash_credit(&self, who: Address) -> u128 {
        Staking::new(self.staking, &self.tenant.provider)
            .creditOf(who)
            .call()
            .await
            .expect("credit")
            .to()
    }

    pub(crate) async fn usdc_of(&self, who: Address) -> u128 {
        MockStablecoin::new(self.usdc, &self.tenant.provider)
            .balanceOf(who)
            .call()
            .await
            .expect("balance")
            .to()
    }

    pub(crate) async fn eth_of(&self, who: Address) -> u128 {
        self.tenant
            .provider
            .get_balance(who)
            .await
            .expect("balance")
            .to()
    }

    pub(crate) async fn stake_of_provider(&self) -> u128 {
        Staking::new(self.staking, &self.tenant.provider)
            .providerInfo(self.owner)
            .call()
            .await
            .expect("provider")
            .stake
            .to()
    }
}

/// A JSON-RPC pass-through to `upstream` on a free loopback port that counts the
/// `eth_sendRawTransaction` calls it forwards. Returns its URL, the counter, and the server task
/// (aborting it closes the port).
pub(crate) async fn rpc_proxy(
    upstream: String,
) -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::AtomicUsize;
    let sends = Arc::new(AtomicUsize::new(0));
    let counter = sends.clone();
    let client = alloy::transports::http::reqwest::Client::new();
    let app = Router::new().fallback(move |body: axum::body::Bytes| {
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
