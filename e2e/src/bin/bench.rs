//! `gridlease-bench`: the market's benchmark suite (`scripts/bench.sh` runs the component benches
//! first, then this).
//!
//! - gas per operation and for the full lifecycle: the gas snapshot the test suite checks
//!   (`tests/tests/it/snapshots/gas.snap`, compiled in);
//! - order -> lease -> running -> result latencies (p50/p99, in blocks and seconds) over `--jobs`
//!   instant `matmul_i8` orders (default 100) with 1 s blocks, against a real provider node and
//!   keeper on a fresh devnet;
//! - the provider, keeper, `matmul_i8` CPU and GPU figures from their own benches
//!   (`target/bench/{provider,keeper,matmul,gpu}.json`), where they were run.
//!
//! Prints a table and writes `target/bench/results.json`.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, U256, aliases::U96},
    providers::Provider,
    rpc::types::{Filter, Log},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use anyhow::{Context, Result, bail};
use clap::Parser;
use gridlease_bindings::{IMarket::OrderParams, Market as MarketC, MockStablecoin, Results};
use gridlease_chain::{Client, classify_rpc, send};
use gridlease_daemon::txm::{TxManager, TxPolicy};
use gridlease_deploy::anvil::ANVIL_KEYS;
use gridlease_e2e::{
    market::{Market, Options, PROVIDERS},
    summary,
};
use gridlease_primitives::spec::{Resources, RunSpec, Workload};
use serde_json::{Value, json};

/// The gas snapshot the test suite holds the contracts to.
const GAS_SNAPSHOT: &str = include_str!("../../../tests/tests/it/snapshots/gas.snap");

#[derive(Parser)]
#[command(name = "gridlease-bench", version, about)]
struct Args {
    /// Instant matmul_i8 orders for the latency figures.
    #[arg(long, default_value_t = 100)]
    jobs: u64,
    /// Seconds between blocks.
    #[arg(long, default_value_t = 1)]
    block_time: u64,
    /// Where the component benches wrote their JSON, and where results.json goes.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

fn gas() -> Result<Value> {
    // insta: a `---` header, then the JSON.
    let json = GAS_SNAPSHOT
        .splitn(3, "---")
        .nth(2)
        .context("gas snapshot: no body")?;
    Ok(serde_json::from_str(json.trim())?)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn spec(seed: u64) -> RunSpec {
    RunSpec {
        version: 1,
        workload: Workload::MatmulI8 {
            m: 64,
            k: 64,
            n: 64,
            seed: B256::from(U256::from(seed)),
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

/// Block of the first log with `id` as topic 1, per id.
fn blocks_by_id(logs: &[Log]) -> HashMap<B256, u64> {
    let mut m = HashMap::new();
    for l in logs {
        if let (Some(id), Some(b)) = (l.topics().get(1), l.block_number) {
            m.entry(*id).or_insert(b);
        }
    }
    m
}

async fn latencies(args: &Args) -> Result<Value> {
    let dir = std::env::temp_dir().join(format!("gridlease-bench-{}", std::process::id()));
    let opts = Options {
        block_time: args.block_time,
        providers: vec![PROVIDERS[0]],
        keeper: true,
        max_concurrent: u32::try_from(args.jobs)? + 8,
        gpus: u8::try_from(args.jobs + 8).unwrap_or(u8::MAX),
        ..Options::default()
    };
    let mut m = Market::start(&dir, &opts).await?;
    let market = m.deployments.address("Market")?;
    let results = m.deployments.address("Results")?;
    let tenant: PrivateKeySigner = ANVIL_KEYS[1].parse()?;
    let c = Client::connect(m.rpc(), Some(tenant.clone())).await?;
    send(MockStablecoin::new(m.usdc.address, &c.provider).approve(market, U256::MAX)).await?;
    let txm = TxManager::new(
        Client::connect(m.rpc(), None).await?,
        tenant,
        TxPolicy::default(),
    );
    let from = m
        .gov
        .provider
        .get_block_number()
        .await
        .map_err(classify_rpc)?;
    // A stream of orders, four a second.
    let t0 = Instant::now();
    for i in 0..args.jobs {
        let s = spec(i);
        let p = OrderParams {
            specHash: s.hash(),
            specURI: s.data_uri(),
            token: m.usdc.address,
            deposit: U96::from(100_000u64),
            maxPricePerSecond: U96::from(1_000_000_000_000_000u128),
            maxDuration: 600,
            bidWindow: 60,
            collateral: U96::from(1_000u64),
            gpuClass: 0,
            gpuCount: 1,
            vramGiB: 1,
            cpuCores: 1,
            ramGiB: 1,
            jobKind: s.workload.kind().code(),
            instant: true,
            salt: B256::from(U256::from(i)),
        };
        let call = MarketC::createOrderCall { p };
        txm.send(market, call.abi_encode().into(), |_| Ok(()))
            .await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Until every result is on chain.
    let posted = Filter::new()
        .address(results)
        .event_signature(Results::ResultPosted::SIGNATURE_HASH)
        .from_block(from);
    let deadline = Duration::from_secs(120 + 3 * args.jobs);
    loop {
        let n = m
            .gov
            .provider
            .get_logs(&posted)
            .await
            .map_err(classify_rpc)?
            .len() as u64;
        if n >= args.jobs {
            break;
        }
        if t0.elapsed() > deadline {
            bail!(
                "only {n} of {} results after {deadline:?}:\n{}",
                args.jobs,
                m.providers[0].log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let wall = t0.elapsed();
    let logs = async |address, sig| -> Result<Vec<Log>> {
        Ok(m.gov
            .provider
            .get_logs(
                &Filter::new()
                    .address(address)
                    .event_signature(sig)
                    .from_block(from),
            )
            .await
            .map_err(classify_rpc)?)
    };
    let created = blocks_by_id(&logs(market, MarketC::OrderCreated::SIGNATURE_HASH).await?);
    let leased = blocks_by_id(&logs(market, MarketC::LeaseStarted::SIGNATURE_HASH).await?);
    // Running: acknowledged on chain. An instant order's winning on-chain bid is the provider's
    // own transaction, so its lease starts acknowledged (protocol v2 §3.1: no `LeaseAcknowledged`);
    // one awarded otherwise is acknowledged by the node.
    let mut running =
        blocks_by_id(&logs(results, Results::LeaseAcknowledged::SIGNATURE_HASH).await?);
    for l in logs(market, MarketC::LeaseStarted::SIGNATURE_HASH).await? {
        if let (Ok(e), Some(b)) = (l.log_decode::<MarketC::LeaseStarted>(), l.block_number)
            && !e.inner.data.signedBid
        {
            running.entry(e.inner.data.orderId).or_insert(b);
        }
    }
    let result = blocks_by_id(&logs(results, Results::ResultPosted::SIGNATURE_HASH).await?);
    let mut times: BTreeMap<u64, u64> = BTreeMap::new();
    let mut time_of = async |b: u64| -> Result<u64> {
        if let Some(t) = times.get(&b) {
            return Ok(*t);
        }
        let t = summary::block_time(&m, b).await?;
        times.insert(b, t);
        Ok(t)
    };
    let mut series: BTreeMap<&str, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    for (id, ob) in &created {
        let ot = time_of(*ob).await?;
        for (name, map) in [
            ("order_to_lease", &leased),
            ("order_to_running", &running),
            ("order_to_result", &result),
        ] {
            if let Some(b) = map.get(id) {
                let t = time_of(*b).await?;
                let e = series.entry(name).or_default();
                e.0.push(b - ob);
                e.1.push(t - ot);
            }
        }
    }
    let mut out = json!({
        "jobs": args.jobs,
        "block_time_s": args.block_time,
        "workload": "matmul_i8 64x64x64, instant orders, 4 per second, 1 provider node (CPU), 1 keeper",
        "wall_s": wall.as_secs_f64(),
    });
    for (name, (mut blocks, mut secs)) in series {
        blocks.sort_unstable();
        secs.sort_unstable();
        out[name] = json!({
            "count": blocks.len(),
            "p50_blocks": pct(&blocks, 0.5),
            "p99_blocks": pct(&blocks, 0.99),
            "p50_s": pct(&secs, 0.5),
            "p99_s": pct(&secs, 0.99),
        });
    }
    m.stop()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn component(out: &std::path::Path, name: &str) -> Value {
    std::fs::read_to_string(out.join(format!("{name}.json")))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({ "not_run": format!("no {}/{name}.json: run scripts/bench.sh", out.display()) }))
}

fn table(r: &Value) -> String {
    let mut s = String::from("gas (revm, gas snapshot)\n");
    if let Some(g) = r["gas"].as_object() {
        for k in [
            "lifecycle_total",
            "lifecycle_total_acknowledged",
            "create_order_permit",
            "bid_instant_award",
            "award_1_bid",
            "award_signed_bid",
            "acknowledge",
            "post_result",
            "accept_result",
            "complete_by_keeper",
            "da_challenge",
            "da_answer",
            "prove_unavailable",
            "prove_matmul_fraud_k4096",
            "settle_batch_100_per_lease",
            "heartbeat",
            "close_by_tenant",
        ] {
            if let Some(v) = g.get(k) {
                s += &format!("  {k:<32} {v}\n");
            }
        }
    }
    s += "\nlatency (chain time, p50 / p99)\n";
    for k in ["order_to_lease", "order_to_running", "order_to_result"] {
        let l = &r["latency"][k];
        s += &format!(
            "  {k:<20} {} / {} blocks   {} / {} s\n",
            l["p50_blocks"], l["p99_blocks"], l["p50_s"], l["p99_s"]
        );
    }
    for name in ["provider", "keeper", "tls_front", "matmul", "gpu"] {
        s += &format!("\n{name}: {}\n", r[name]);
    }
    s
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let latency = latencies(&args).await?;
    let r = json!({
        "date": std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(1, usize::from)),
        "gas": gas()?,
        "latency": latency,
        "provider": component(&args.out, "provider"),
        "keeper": component(&args.out, "keeper"),
        "tls_front": component(&args.out, "tls_front"),
        "matmul": component(&args.out, "matmul"),
        "gpu": component(&args.out, "gpu"),
    });
    print!("{}", table(&r));
    let path = args.out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&r)? + "\n")?;
    println!("\nwritten {}", path.display());
    Ok(())
}
