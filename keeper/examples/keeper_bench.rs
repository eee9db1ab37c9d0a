//! Keeper benchmark (issue 6, KB-06): `scripts/bench-keeper.sh [LEASES] [BATCH]` (or `cargo build
//! --bin gridlease-keeper && cargo run --example keeper_bench -- [LEASES] [BATCH]`).
//!
//! On a fresh anvil with the market deployed it creates `LEASES` (default 10,000) running
//! **service** leases (protocol v2 settles only those as they run; a batch lease is paid when its
//! result stands) as fast as anvil takes them (instant service orders from several tenants, one
//! on-chain bid each from several providers, each provider heart-beating before its bids;
//! transactions signed locally with known nonces, sent concurrently with automine off and mined in
//! full 30M-gas blocks), sets a 1 gwei base fee, moves the chain's clock on 30 minutes in 50 s
//! steps with a heartbeat of every provider after each (pay runs only to a provider's last
//! heartbeat + period), so every lease owes a settlement, then starts the real
//! `gridlease-keeper run` (the providers keep beating meanwhile) and measures:
//! - catch-up: from start until the keeper's view holds every lease (logs from the deploy block);
//! - one full settle sweep: settle transactions until every lease was settled once, against the
//!   goal `ceil(LEASES / BATCH)`, and the gas per lease settled, from the receipts (goal <= 12,000);
//! - the keeper's peak RSS (`VmHWM`) while tracking them (goal <= 100 MiB).
//!
//! Prints a table and writes `target/bench/keeper.json`.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    eips::Encodable2718,
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256, aliases::U96},
    providers::Provider,
    rpc::types::{Filter, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use anyhow::{Context, Result, bail};
use gridlease_bindings::{
    IMarket::OrderParams, IStaking::Capacity, Market, MockStablecoin, Staking,
};
use gridlease_chain::{Client, send};
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS},
    deploy::mint,
    devnet,
};
use gridlease_primitives::spec::{Resources, RunSpec, Workload};

const USDC: u128 = 1_000_000;
/// Tenants and providers the leases are spread over.
const TENANTS: usize = 4;
const PROVIDERS: usize = 4;
/// 0.05 USDC a second (18-decimal units): 90 USDC owed after the 30 min warp, 0.09 USDC keeper
/// fee (10 bps) per lease, above the marginal gas of one more lease at 1 gwei and 3,000 USDC/ETH.
const RATE: u128 = 50_000_000_000_000_000;
const DEPOSIT: u128 = 200 * USDC;
const WARP: u64 = 1_800;
/// Chain seconds between heartbeats while the clock is moved on (the devnet period is 60 s).
const BEAT: u64 = 50;
/// Leases created per round (orders, then their bids).
const ROUND: usize = 2_000;
/// Transactions in flight to anvil at once while setting up.
const LANES: usize = 16;

/// A counter of the daemon's `/metrics` (0 while it does not answer).
async fn metric(port: u16, name: &str) -> u64 {
    gridlease_testkit::metrics::scrape(port, name).await
}

fn spec() -> RunSpec {
    RunSpec {
        version: 1,
        workload: Workload::Service {
            image: "local".into(),
            command: vec!["sh".into(), "-c".into(), "sleep 86400".into()],
            env: Default::default(),
            port: 8080,
            tls: false,
        },
        resources: Resources {
            gpu_class: 0,
            gpu_count: 1,
            vram_gib: 1,
            cpu_cores: 1,
            ram_gib: 1,
        },
    }
}

fn order(spec: &RunSpec, usdc: Address, salt: u64) -> OrderParams {
    OrderParams {
        specHash: spec.hash(),
        specURI: spec.data_uri(),
        token: usdc,
        deposit: U96::from(DEPOSIT),
        maxPricePerSecond: U96::from(RATE),
        maxDuration: 86_400,
        bidWindow: 3_600,
        collateral: U96::from(USDC),
        gpuClass: 0,
        gpuCount: 1,
        vramGiB: 1,
        cpuCores: 1,
        ramGiB: 1,
        jobKind: spec.workload.kind().code(),
        instant: true,
        salt: B256::from(U256::from(salt)),
    }
}

async fn raw(
    c: &Client,
    method: &'static str,
    params: serde_json::Value,
) -> Result<serde_json::Value> {
    c.provider
        .raw_request(method.into(), params)
        .await
        .context(method)
}

/// A sender with a locally kept nonce.
struct Account {
    wallet: EthereumWallet,
    from: Address,
    nonce: u64,
}

impl Account {
    async fn new(c: &Client, key: PrivateKeySigner) -> Result<Self> {
        let from = key.address();
        let nonce = c.provider.get_transaction_count(from).await?;
        Ok(Self {
            wallet: EthereumWallet::from(key),
            from,
            nonce,
        })
    }

    /// Sign a call with the next nonce.
    async fn sign(&mut self, chain: u64, to: Address, input: Bytes, gas: u64) -> Result<Bytes> {
        let req = TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(input)
            .with_chain_id(chain)
            .with_nonce(self.nonce)
            .with_gas_limit(gas)
            .with_max_fee_per_gas(200_000_000_000)
            .with_max_priority_fee_per_gas(1);
        self.nonce += 1;
        let env = req
            .build(&self.wallet)
            .await
            .map_err(|e| anyhow::anyhow!("sign: {e}"))?;
        Ok(env.encoded_2718().into())
    }
}

/// Send signed transactions over `LANES` concurrent connections, then mine until the pool is
/// empty (automine is off).
async fn send_and_mine(c: &Client, txs: Vec<Bytes>) -> Result<()> {
    let mut lanes: Vec<Vec<Bytes>> = vec![Vec::new(); LANES];
    for (i, t) in txs.into_iter().enumerate() {
        lanes[i % LANES].push(t);
    }
    let mut set = tokio::task::JoinSet::new();
    for lane in lanes {
        let p = c.provider.clone();
        set.spawn(async move {
            for t in lane {
                let _sent = p.send_raw_transaction(&t).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let mut left = u64::MAX;
    let mut stalled = 0;
    loop {
        // Full blocks would raise the base fee 12.5 % a block, past what the setup pays: hold
        // it at 1 gwei.
        raw(
            c,
            "anvil_setNextBlockBaseFeePerGas",
            serde_json::json!(["0x3B9ACA00"]),
        )
        .await?;
        raw(c, "evm_mine", serde_json::json!([])).await?;
        let s = raw(c, "txpool_status", serde_json::json!([])).await?;
        let n = |k: &str| {
            s.get(k)
                .and_then(|v| v.as_str())
                .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
                .or_else(|| s.get(k).and_then(serde_json::Value::as_u64))
                .unwrap_or(0)
        };
        let now = n("pending") + n("queued");
        if now == 0 {
            return Ok(());
        }
        stalled = if now < left { 0 } else { stalled + 1 };
        if stalled > 20 {
            bail!("{now} setup transactions are not being mined: {s}");
        }
        left = now;
    }
}

/// A signed heartbeat of every provider's operator.
async fn heartbeats(operators: &mut [Account], chain: u64, staking: Address) -> Result<Vec<Bytes>> {
    let mut out = Vec::with_capacity(operators.len());
    for op in operators {
        let call = Staking::heartbeatCall {}.abi_encode().into();
        out.push(op.sign(chain, staking, call, 100_000).await?);
    }
    Ok(out)
}

/// A settle transaction: block, index in the block, the leases it settled.
type Settled = (u64, u64, Vec<B256>);
/// Settle transactions seen so far, by hash.
type Sweep = HashMap<B256, Settled>;

async fn scan_settled(
    c: &Client,
    market: Address,
    from: u64,
    to: u64,
    out: &mut Sweep,
) -> Result<()> {
    let f = Filter::new()
        .address(market)
        .event_signature(Market::LeaseSettled::SIGNATURE_HASH)
        .from_block(from)
        .to_block(to);
    for l in c.provider.get_logs(&f).await? {
        let (Some(h), Some(b), Some(i)) = (l.transaction_hash, l.block_number, l.transaction_index)
        else {
            continue;
        };
        let e = l.log_decode::<Market::LeaseSettled>()?;
        out.entry(h)
            .or_insert_with(|| (b, i, Vec::new()))
            .2
            .push(e.inner.data.leaseId);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(100), |a| a.parse())?;
    let bin = gridlease_deploy::anvil::workspace_bin("gridlease-keeper")?;
    let t_setup = Instant::now();
    let (anvil, gov, d) = devnet::market(0, None).await?;
    let dir = tempfile::tempdir()?;
    d.save(&dir.path().join("deployments.json"))?;
    let market = d.address("Market")?;
    let staking = d.address("Staking")?;
    let usdc = d.token("USDC")?.address;
    let chain = gov.chain_id;
    let cap = Capacity {
        gpuClasses: 1,
        gpuCount: 1,
        vramGiB: 16,
    };

    // Tenants and providers: fresh keys, funded by anvil; each provider staked for its share.
    let mut tenants = Vec::new();
    let mut operators = Vec::new();
    let per_provider = n.div_ceil(PROVIDERS) as u128;
    let per_tenant = n.div_ceil(TENANTS) as u128;
    for i in 0..TENANTS.max(PROVIDERS) {
        let tenant = PrivateKeySigner::random();
        let owner = PrivateKeySigner::random();
        let operator = PrivateKeySigner::random();
        for a in [tenant.address(), owner.address(), operator.address()] {
            raw(
                &gov,
                "anvil_setBalance",
                serde_json::json!([a, "0x3635C9ADC5DEA00000"]),
            )
            .await?;
        }
        if i < PROVIDERS {
            devnet::provider(
                &gov,
                &d,
                owner,
                &operator,
                cap.clone(),
                per_provider * USDC + USDC,
            )
            .await?;
            operators.push(Account::new(&gov, operator).await?);
        }
        if i < TENANTS {
            let total = per_tenant * DEPOSIT;
            mint(&gov, usdc, tenant.address(), total).await?;
            let t = Client::connect(&anvil.url(), Some(tenant.clone())).await?;
            send(MockStablecoin::new(usdc, &t.provider).approve(market, U256::from(total))).await?;
            tenants.push(Account::new(&gov, tenant).await?);
        }
    }

    // Gas limits from one simulated order and bid.
    let s = spec();
    let probe = order(&s, usdc, u64::MAX);
    let order_gas = gov
        .provider
        .estimate_gas(
            TransactionRequest::default()
                .with_from(tenants[0].from)
                .with_to(market)
                .with_input(Bytes::from(
                    Market::createOrderCall { p: probe }.abi_encode(),
                )),
        )
        .await?
        * 5
        / 4;
    // Many transactions per block (anvil's 30M gas limit), mined with evm_mine.
    raw(&gov, "evm_setAutomine", serde_json::json!([false])).await?;
    let mut bid_gas = 0u64;
    let mut created = 0usize;
    while created < n {
        let round = ROUND.min(n - created);
        let mut ids = Vec::with_capacity(round);
        let mut txs = Vec::with_capacity(round);
        for j in created..created + round {
            let t = &mut tenants[j % TENANTS];
            let p = order(&s, usdc, j as u64);
            ids.push(p.order_id(t.from));
            txs.push(
                t.sign(
                    chain,
                    market,
                    Market::createOrderCall { p }.abi_encode().into(),
                    order_gas,
                )
                .await?,
            );
        }
        send_and_mine(&gov, txs).await?;
        // Service bids need a live provider: every provider beats first.
        let beats = heartbeats(&mut operators, chain, staking).await?;
        send_and_mine(&gov, beats).await?;
        if bid_gas == 0 {
            bid_gas = gov
                .provider
                .estimate_gas(
                    TransactionRequest::default()
                        .with_from(operators[0].from)
                        .with_to(market)
                        .with_input(Bytes::from(
                            Market::bidCall {
                                orderId: ids[0],
                                price: U96::from(RATE),
                            }
                            .abi_encode(),
                        )),
                )
                .await?
                * 5
                / 4;
        }
        let mut txs = Vec::with_capacity(round);
        for (j, id) in (created..).zip(&ids) {
            let op = &mut operators[j % PROVIDERS];
            txs.push(
                op.sign(
                    chain,
                    market,
                    Market::bidCall {
                        orderId: *id,
                        price: U96::from(RATE),
                    }
                    .abi_encode()
                    .into(),
                    bid_gas,
                )
                .await?,
            );
        }
        send_and_mine(&gov, txs).await?;
        created += round;
        eprintln!(
            "  {created} leases after {:.1} s",
            t_setup.elapsed().as_secs_f64()
        );
    }
    let started = gov
        .provider
        .get_logs(
            &Filter::new()
                .address(market)
                .event_signature(Market::LeaseStarted::SIGNATURE_HASH)
                .from_block(0),
        )
        .await?
        .len();
    if started != n {
        bail!("{started} leases started, {n} wanted");
    }
    let setup = t_setup.elapsed();
    // A 1 gwei base fee for the keeper, then 30 minutes of accrual.
    raw(
        &gov,
        "anvil_setNextBlockBaseFeePerGas",
        serde_json::json!(["0x3B9ACA00"]),
    )
    .await?;
    raw(&gov, "evm_setAutomine", serde_json::json!([true])).await?;
    // Pay runs to a provider's last heartbeat + period: the clock moves on in steps a provider
    // keeps up with.
    for _ in 0..WARP.div_ceil(BEAT) {
        let beats = heartbeats(&mut operators, chain, staking).await?;
        send_and_mine(&gov, beats).await?;
        anvil::warp(&gov.provider, BEAT).await?;
    }
    let beats = heartbeats(&mut operators, chain, staking).await?;
    send_and_mine(&gov, beats).await?;
    let sweep_from = gov.provider.get_block_number().await?;
    // And keep beating (every 15 s of wall time, well inside the 60 s period) during the sweep.
    let beating = {
        let gov = gov.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let Ok(beats) = heartbeats(&mut operators, chain, staking).await else {
                    continue;
                };
                let mut failed = false;
                for b in beats {
                    failed |= gov.provider.send_raw_transaction(&b).await.is_err();
                }
                // A refused beat leaves a nonce unused: take the chain's again.
                if failed {
                    for op in operators.iter_mut() {
                        if let Ok(n) = gov.provider.get_transaction_count(op.from).await {
                            op.nonce = n;
                        }
                    }
                }
            }
        })
    };

    let port = anvil::free_port()?;
    std::fs::write(
        dir.path().join("keeper.toml"),
        format!(
            r#"[chain]
rpc = "{}"
deployments = "deployments.json"
poll_ms = 200
l1_fee = "none"

[wallet]
private_key = "env:KEEPER_KEY"

# The bench measures settlement of service leases: nothing else.
[strategies]
close = false
no_show = false
missed_deadline = false
stale_heartbeat = false
verify = false
challenge = false

# At least 0.5 USDC a transaction: anvil's base fee decays toward zero under the keeper's own
# sparse blocks, where settling a lease again seconds later would pass as profitable.
[profit]
native_price = "3000"
min_profit = "0.5"
hourly_budget = "10"

[batch]
settle_max = {batch}

[earnings]
withdraw_above = "1000000"

[http]
listen = "127.0.0.1:{port}"

[data]
dir = "keeper-data"
"#,
            anvil.url()
        ),
    )?;
    let keeper_key: PrivateKeySigner = ANVIL_KEYS[6].parse()?;
    let nonce0 = gov
        .provider
        .get_transaction_count(keeper_key.address())
        .await?;
    let log_path = dir.path().join("keeper.log");
    let t0 = Instant::now();
    let mut keeper: Child = Command::new(&bin)
        .args(["run", "--config", "keeper.toml"])
        .args(std::env::var_os("KEEPER_BENCH_VERBOSE").map(|_| "--verbose"))
        .current_dir(dir.path())
        .env("KEEPER_KEY", ANVIL_KEYS[6])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let pid = keeper.id();
    let r = async {
        let mut caught_up = None;
        let mut seen = Sweep::new();
        let mut settled: HashSet<B256> = HashSet::new();
        let mut scanned = sweep_from;
        let mut rss_tracking = 0;
        loop {
            if t0.elapsed() > Duration::from_secs(600) {
                bail!(
                    "sweep not done in 600 s: {} of {n} leases settled",
                    settled.len()
                );
            }
            if let Ok(Some(status)) = keeper.try_wait() {
                bail!("the keeper exited: {status}");
            }
            if caught_up.is_none() && metric(port, "gridlease_keeper_leases").await >= n as u64 {
                caught_up = Some(t0.elapsed());
                rss_tracking = gridlease_deploy::anvil::memory_kib(pid).0;
            }
            let head = gov.provider.get_block_number().await?;
            if head > scanned {
                scan_settled(&gov, market, scanned + 1, head, &mut seen).await?;
                scanned = head;
                settled = seen.values().flat_map(|v| v.2.iter().copied()).collect();
            }
            if settled.len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sweep = t0.elapsed();
        let (rss_now, hwm) = gridlease_deploy::anvil::memory_kib(pid);
        Ok::<_, anyhow::Error>((
            caught_up.unwrap_or(sweep),
            sweep,
            seen,
            rss_tracking,
            rss_now,
            hwm,
        ))
    }
    .await;
    beating.abort();
    if anvil::terminate(&mut keeper, Duration::from_secs(30)).is_none() {
        let _ = keeper.kill();
        let _ = keeper.wait();
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let (caught_up, sweep, seen, rss_tracking, rss_now, hwm) = match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{log}");
            return Err(e);
        }
    };

    // The sweep: settle transactions in chain order until every lease was settled once.
    let mut order: Vec<(&B256, &Settled)> = seen.iter().collect();
    order.sort_unstable_by_key(|(_, v)| (v.0, v.1));
    let mut covered: HashSet<B256> = HashSet::new();
    let (mut txs, mut gas, mut leases_in_txs) = (0usize, 0u64, 0usize);
    let mut largest = 0usize;
    // (position in the sweep, leases, of which settled before in the sweep)
    let mut resettled: Vec<(usize, usize, usize)> = Vec::new();
    for (h, (_, _, ids)) in order {
        if covered.len() >= n {
            break;
        }
        let r = gov
            .provider
            .get_transaction_receipt(*h)
            .await?
            .context("settle receipt")?;
        if r.from != keeper_key.address() {
            bail!("settle {h} was not the keeper's");
        }
        let again = ids.iter().filter(|id| covered.contains(*id)).count();
        if again > 0 {
            resettled.push((txs, ids.len(), again));
        }
        txs += 1;
        gas += r.gas_used;
        leases_in_txs += ids.len();
        largest = largest.max(ids.len());
        covered.extend(ids.iter().copied());
    }
    let keeper_txs = gov
        .provider
        .get_transaction_count(keeper_key.address())
        .await?
        - nonce0;
    let goal_txs = n.div_ceil(batch);
    let per_lease = gas / leases_in_txs.max(1) as u64;
    let catch_up_s = caught_up.as_secs_f64();
    let sweep_s = sweep.as_secs_f64();
    let json = serde_json::json!({
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(1, usize::from)),
        "leases": n,
        "batch": batch,
        "tenants": TENANTS,
        "providers": PROVIDERS,
        "setup_s": setup.as_secs_f64(),
        "catch_up_s": catch_up_s,
        "sweep_s": sweep_s,
        "sweep_after_catch_up_s": sweep_s - catch_up_s,
        "settle_txs": txs,
        "settle_txs_goal": goal_txs,
        "largest_batch": largest,
        "leases_settled": covered.len(),
        "lease_settlements_in_sweep": leases_in_txs,
        "txs_with_leases_settled_again": resettled,
        "keeper_txs_sent": keeper_txs,
        "gas_per_lease": per_lease,
        "gas_per_lease_goal": 12_000,
        "settle_gas_total": gas,
        "rss_tracking_kib": rss_tracking,
        "rss_after_sweep_kib": rss_now,
        "peak_rss_kib": hwm,
        "peak_rss_goal_kib": 100 * 1024,
    });
    println!(
        "gridlease-keeper bench ({n} leases, batch {batch}, {TENANTS} tenants, {PROVIDERS} providers)"
    );
    println!(
        "  setup (deploy, stake, {n} orders + bids)  {:.1} s",
        setup.as_secs_f64()
    );
    println!("  keeper start -> all {n} leases in view   {catch_up_s:.1} s");
    println!(
        "  full settle sweep                        {txs} txs (goal <= {goal_txs}), largest {largest} leases, done {sweep_s:.1} s after start ({:.1} s after catch-up)",
        sweep_s - catch_up_s
    );
    println!(
        "  gas per lease settled                    {per_lease} (goal <= 12,000); {keeper_txs} keeper txs in all"
    );
    println!(
        "  keeper RSS                               {:.1} MiB tracking, peak {:.1} MiB (goal <= 100)",
        rss_tracking as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("keeper.log"), &log)?;
    std::fs::write(
        out.join("keeper.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    println!("  wrote target/bench/keeper.json (the keeper's log: target/bench/keeper.log)");
    drop(anvil);
    Ok(())
}
