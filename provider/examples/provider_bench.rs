//! Provider node benchmark: `scripts/bench-provider.sh` (or `cargo build --bin gridlease-provider
//! && cargo run --example provider_bench -- [ORDERS] [LEASES]`).
//!
//! On a fresh anvil with the market deployed it starts the real `gridlease-provider run` and
//! measures:
//! - idle RSS of the node;
//! - from an order's log reaching the node to its bid transaction broadcast (p50/p99/max), over
//!   `ORDERS` open orders (default 1,000) created back to back, and whether the node kept up (the
//!   last bid's delay after the last order);
//! - `LEASES` (default 100) instant leases running concurrently (each a 3 s process job): time until
//!   every result is on chain, and the node's RSS at that point.
//!
//! Prints a table and writes `target/bench/provider.json`.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, U256, aliases::U96},
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use anyhow::{Result, bail};
use gridlease_bindings::{IMarket::OrderParams, IStaking::Capacity, Market, MockStablecoin};
use gridlease_chain::{Client, send};
use gridlease_daemon::txm::{TxManager, TxPolicy};
use gridlease_deploy::{anvil::ANVIL_KEYS, deploy::mint, devnet};
use gridlease_primitives::spec::{Resources, RunSpec, Workload};

const USDC: u128 = 1_000_000;
/// Orders sent one at a time before the burst.
const SPACED: u64 = 100;

/// A counter of the daemon's `/metrics` (0 while it does not answer).
async fn metric(port: u16, name: &str) -> u64 {
    gridlease_testkit::metrics::scrape(port, name).await
}

async fn wait_metric(port: u16, name: &str, at_least: u64, limit: Duration) -> Result<Duration> {
    let t0 = Instant::now();
    while metric(port, name).await < at_least {
        if t0.elapsed() > limit {
            bail!("{name} stayed below {at_least} for {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(t0.elapsed())
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn order(spec: &RunSpec, usdc: Address, instant: bool, salt: u64) -> OrderParams {
    OrderParams {
        specHash: spec.hash(),
        specURI: spec.data_uri(),
        token: usdc,
        deposit: U96::from(USDC),
        maxPricePerSecond: U96::from(1_000_000_000_000_000u128),
        maxDuration: 600,
        bidWindow: 3_600,
        collateral: U96::from(1u64),
        gpuClass: 0,
        gpuCount: 1,
        vramGiB: 1,
        cpuCores: 1,
        ramGiB: 1,
        jobKind: spec.workload.kind().code(),
        instant,
        salt: B256::from(U256::from(salt)),
    }
}

fn spec(command: &str) -> RunSpec {
    RunSpec {
        version: 1,
        workload: Workload::Container {
            image: "local".into(),
            command: vec!["sh".into(), "-c".into(), command.into()],
            env: Default::default(),
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

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let orders: u64 = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let leases: u64 = args.next().map_or(Ok(100), |a| a.parse())?;
    let bin = gridlease_deploy::anvil::workspace_bin("gridlease-provider")?;
    let (anvil, gov, d) = devnet::market(0, None).await?;
    let dir = tempfile::tempdir()?;
    d.save(&dir.path().join("deployments.json"))?;
    let owner: PrivateKeySigner = ANVIL_KEYS[2].parse()?;
    let operator: PrivateKeySigner = ANVIL_KEYS[3].parse()?;
    let tenant_key: PrivateKeySigner = ANVIL_KEYS[1].parse()?;
    let market = d.address("Market")?;
    let usdc = d.token("USDC")?.address;
    let cap = Capacity {
        gpuClasses: 1,
        gpuCount: 1,
        vramGiB: 16,
    };
    devnet::provider(&gov, &d, owner.clone(), &operator, cap, 10_000 * USDC).await?;
    mint(&gov, usdc, tenant_key.address(), 100_000 * USDC).await?;
    let tenant = Client::connect(&anvil.url(), Some(tenant_key.clone())).await?;
    send(MockStablecoin::new(usdc, &tenant.provider).approve(market, U256::from(100_000 * USDC)))
        .await?;
    let port = gridlease_deploy::anvil::free_port()?;
    let slots = SPACED + orders + leases + 10;
    std::fs::write(
        dir.path().join("provider.toml"),
        format!(
            "[chain]\nrpc = \"{}\"\ndeployments = \"deployments.json\"\nconfirmations = 0\npoll_ms = 50\n\n[wallet]\nprivate_key = \"env:OP_KEY\"\nowner = \"{}\"\n\n[capacity]\ngpus = \"declared\"\nclass = \"any\"\n\n[pricing.any]\nfloor_per_hour = \"0.36\"\n\n[jobs]\nmax_concurrent = {slots}\n# The bench measures the bid pipeline over many open orders on one declared GPU: jobs share it\n# (a bid otherwise reserves the GPU, PD-01, and a 1-GPU node holds one open bid at a time).\nshare_gpus = true\npost_margin = \"5s\"\nshutdown_grace = \"2s\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            anvil.url(),
            owner.address()
        ),
    )?;
    let log_path = dir.path().join("node.log");
    let mut node: Child = Command::new(&bin)
        .args(["run", "--config", "provider.toml"])
        .current_dir(dir.path())
        .env("OP_KEY", ANVIL_KEYS[3])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let pid = node.id();
    let r = async {
        wait_metric(
            port,
            "gridlease_provider_head_block",
            1,
            Duration::from_secs(60),
        )
        .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle_rss = gridlease_deploy::anvil::memory_kib(pid).0;

        // Orders one at a time, 100 ms apart: the latency of one order, with no queue.
        let txm = TxManager::new(
            Client::connect(&anvil.url(), None).await?,
            tenant_key,
            TxPolicy::default(),
        );
        let s = spec("true");
        for i in 0..SPACED {
            let call = Market::createOrderCall {
                p: order(&s, usdc, false, 2_000_000 + i),
            };
            txm.send(market, call.abi_encode().into(), |_| Ok(()))
                .await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_metric(
            port,
            "gridlease_provider_bids_sent_total",
            SPACED,
            Duration::from_secs(60),
        )
        .await?;
        // Then a burst: open orders sent back to back (no receipt waits).
        let t0 = Instant::now();
        for i in 0..orders {
            let call = Market::createOrderCall {
                p: order(&s, usdc, false, i),
            };
            txm.send(market, call.abi_encode().into(), |_| Ok(()))
                .await?;
        }
        let created = t0.elapsed();
        let lag = wait_metric(
            port,
            "gridlease_provider_bids_sent_total",
            SPACED + orders,
            Duration::from_secs(600),
        )
        .await?;
        let rss_orders = gridlease_deploy::anvil::memory_kib(pid).0;

        // Concurrent leases: instant orders, each a 3 s job.
        let s = spec("sleep 3; echo done");
        let t1 = Instant::now();
        for i in 0..leases {
            let call = Market::createOrderCall {
                p: order(&s, usdc, true, 1_000_000 + i),
            };
            txm.send(market, call.abi_encode().into(), |_| Ok(()))
                .await?;
        }
        wait_metric(
            port,
            "gridlease_provider_jobs{state=\"running\"}",
            leases.min(1),
            Duration::from_secs(120),
        )
        .await?;
        let mut peak_running = 0;
        let mut rss_leases = 0;
        let t_posted = loop {
            let running = metric(port, "gridlease_provider_jobs{state=\"running\"}").await;
            peak_running = peak_running.max(running);
            rss_leases = rss_leases.max(gridlease_deploy::anvil::memory_kib(pid).0);
            if metric(port, "gridlease_provider_results_posted_total").await >= leases {
                break t1.elapsed();
            }
            if t1.elapsed() > Duration::from_secs(600) {
                bail!("leases not done in 600 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Ok::<_, anyhow::Error>((
            idle_rss,
            created,
            lag,
            rss_orders,
            peak_running,
            rss_leases,
            t_posted,
        ))
    }
    .await;
    if gridlease_deploy::anvil::terminate(&mut node, Duration::from_secs(30)).is_none() {
        let _ = node.kill();
        let _ = node.wait();
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let (idle_rss, created, lag, rss_orders, peak_running, rss_leases, t_posted) = match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{log}");
            return Err(e);
        }
    };
    let all: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("bid sent"))
        .filter_map(|l| {
            l.split("latency_us=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let split = (SPACED as usize).min(all.len());
    let mut lat = all[..split].to_vec();
    let mut burst = all[split..].to_vec();
    lat.sort_unstable();
    burst.sort_unstable();
    let (p50, p99, max) = (
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(0),
    );
    let (b50, b99) = (pct(&burst, 0.5), pct(&burst, 0.99));
    let json = serde_json::json!({
        "machine": format!("{} cores", std::thread::available_parallelism().map_or(1, usize::from)),
        "orders": orders,
        "bids": all.len(),
        "bid_latency_us": {"p50": p50, "p99": p99, "max": max, "orders": SPACED},
        "burst_bid_latency_us": {"p50": b50, "p99": b99, "orders": orders},
        "orders_created_s": created.as_secs_f64(),
        "last_bid_after_last_order_s": lag.as_secs_f64(),
        "idle_rss_kib": idle_rss,
        "rss_after_orders_kib": rss_orders,
        "leases": leases,
        "peak_running": peak_running,
        "leases_all_posted_s": t_posted.as_secs_f64(),
        "rss_with_leases_kib": rss_leases,
    });
    println!("gridlease-provider bench ({orders} open orders, {leases} concurrent leases)");
    println!(
        "  order log -> bid broadcast   p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms, {SPACED} orders 100 ms apart (goal p50 <= 20, p99 <= 100)",
        p50 as f64 / 1e3,
        p99 as f64 / 1e3,
        max as f64 / 1e3
    );
    println!(
        "  ... in a burst of {orders}      p50 {:.2} ms  p99 {:.2} ms (queued behind earlier orders of the same poll)",
        b50 as f64 / 1e3,
        b99 as f64 / 1e3
    );
    println!(
        "  {orders} orders created in   {:.1} s; last bid {:.2} s after the last order",
        created.as_secs_f64(),
        lag.as_secs_f64()
    );
    println!(
        "  idle RSS                     {:.1} MiB (goal <= 50)",
        idle_rss as f64 / 1024.0
    );
    println!(
        "  RSS with {orders} open bids    {:.1} MiB",
        rss_orders as f64 / 1024.0
    );
    println!(
        "  {leases} leases (3 s jobs)       all results on chain after {:.1} s; peak {peak_running} running; RSS {:.1} MiB",
        t_posted.as_secs_f64(),
        rss_leases as f64 / 1024.0
    );
    let out = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("provider.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    println!("  wrote target/bench/provider.json");
    Ok(())
}
