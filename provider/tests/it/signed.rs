//! `bidding.mode = "signed"` as a real node against anvil: refused (by `check` and `run`) with
//! the owner's `gridlease-provider register` command until the registered metadataURI is the
//! node's `http.public_url`; then it signs its bid on an auction instead of sending one, serves it
//! at `/bids/<order id>` (also after a restart), bids on instant orders on chain (such a lease
//! starts acknowledged), and an award that carries its signed bid starts its lease, which the node
//! acknowledges within the start window, and the job runs to its result.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, aliases::U48, aliases::U96},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use gridlease_bindings::{
    IMarket::{OrderParams, SignedBid},
    IStaking::Capacity,
    Market, MarketLens, Results, Staking,
};
use gridlease_chain::send;
use gridlease_deploy::anvil::{self, ANVIL_KEYS};
use gridlease_primitives::{
    eip712::{ServedBid, market_domain},
    spec::{Resources, RunSpec, Workload},
};
use gridlease_testkit::market::{Market as Fixture, USDC};

fn node(dir: &Path, args: &[&str], log: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"));
    c.args(args)
        .current_dir(dir)
        .env("OP_KEY", ANVIL_KEYS[3])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).expect("log"));
    c
}

fn output(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
        .args(args)
        .current_dir(dir)
        .env("OP_KEY", ANVIL_KEYS[3])
        .output()
        .expect("runs")
}

/// Wait (up to `within`) for `f` to give a value.
async fn until<T>(what: &str, within: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stop(mut child: Child) {
    let status = anvil::terminate(&mut child, Duration::from_secs(20)).expect("stops on SIGTERM");
    assert!(status.success(), "node exited with {status}");
}

#[tokio::test]
async fn signed_mode_needs_the_public_url_registered_then_signs_serves_and_wins_auctions() {
    // Two GPUs: the node bids on two auctions at once.
    let cap = Capacity {
        gpuClasses: 1,
        gpuCount: 2,
        vramGiB: 16,
    };
    let Fixture {
        anvil,
        gov,
        deployments: d,
        dir,
        tenant,
        owner,
        operator,
        usdc,
        market,
        ..
    } = Fixture::start_with(100 * USDC, cap.clone()).await;
    let tmp = dir;
    let dir = tmp.path();
    let port = anvil::free_port().expect("a free port");
    let url = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.join("provider.toml"),
        format!(
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
count = 2
vram_gib = 16

[pricing.any]
floor_per_hour = "0.36"

[jobs]
max_concurrent = 4
executor = "process"
allow_unsandboxed = true
post_margin = "5s"
shutdown_grace = "2s"

[bidding]
mode = "signed"

[fetch]
allow = ["127.0.0.0/8", "::1"]

[http]
listen = "127.0.0.1:{port}"
"#,
            anvil.url(),
            owner.address()
        ),
    )
    .expect("config");

    // Registered with "devnet provider" as metadataURI: check and run name the owner's command.
    let call = format!(
        "`gridlease-provider register --config <this file> --keystore OWNER.json` (metadata {url}, operator {}, GPU classes 0x1, 2 GPU(s), 16 GiB)",
        operator.address()
    );
    let checked = output(dir, &["check", "--config", "provider.toml"]);
    assert!(!checked.status.success());
    let text = String::from_utf8_lossy(&checked.stderr);
    assert!(text.contains(&call), "check: {text}");
    let run = node(dir, &["run", "--config", "provider.toml"], "refused.log")
        .status()
        .expect("runs");
    assert!(!run.success(), "run refuses signed mode");
    let text = std::fs::read_to_string(dir.join("refused.log")).unwrap_or_default();
    assert!(text.contains(&call), "run: {text}");

    // The owner runs it (its key from the environment here); the node starts.
    let registered = node(
        dir,
        &["register", "--private-key", "env:OWNER_KEY"],
        "register.log",
    )
    .env("OWNER_KEY", ANVIL_KEYS[2])
    .status()
    .expect("runs");
    assert!(
        registered.success(),
        "{}",
        std::fs::read_to_string(dir.join("register.log")).unwrap_or_default()
    );
    let staking = Staking::new(d.address("Staking").expect("staking"), &tenant.provider);
    let info = staking
        .providerInfo(owner.address())
        .call()
        .await
        .expect("info");
    assert_eq!((info.operator, info.capacity), (operator.address(), cap));
    let checked = output(dir, &["check", "--config", "provider.toml"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let mut child = node(dir, &["run", "--config", "provider.toml"], "node-1.log")
        .spawn()
        .expect("node");
    let log =
        |n: u32| std::fs::read_to_string(dir.join(format!("node-{n}.log"))).unwrap_or_default();
    until("the node's API", Duration::from_secs(30), async || {
        gridlease_fetch::Fetcher::devnet()
            .get(&format!("{url}/metrics"), None)
            .await
            .ok()
    })
    .await;

    let m = Market::new(market, &tenant.provider);
    let order = async |instant: bool, salt: u8| {
        let spec = RunSpec {
            version: 1,
            workload: Workload::MatmulI8 {
                m: 16,
                k: 16,
                n: 16,
                seed: B256::repeat_byte(salt),
            },
            resources: Resources {
                gpu_class: 0,
                gpu_count: 1,
                vram_gib: 8,
                cpu_cores: 1,
                ram_gib: 1,
            },
        };
        let p = OrderParams {
            specHash: spec.hash(),
            specURI: spec.data_uri(),
            token: usdc,
            deposit: U96::from(10 * USDC),
            maxPricePerSecond: U96::from(1_000_000_000_000_000u128),
            maxDuration: 600,
            bidWindow: if instant { 60 } else { 30 },
            collateral: U96::from(10 * USDC),
            gpuClass: 0,
            gpuCount: 1,
            vramGiB: 8,
            cpuCores: 1,
            ramGiB: 1,
            jobKind: 1,
            instant,
            salt: B256::repeat_byte(salt),
        };
        let id = p.order_id(tenant.from.expect("tenant"));
        send(m.createOrder(p)).await.expect("order");
        id
    };
    let logs = async |sig: B256, id: B256| {
        tenant
            .provider
            .get_logs(
                &Filter::new()
                    .address(market)
                    .event_signature(sig)
                    .topic1(id)
                    .from_block(0),
            )
            .await
            .expect("logs")
    };
    let leased = async |id: B256| {
        until("the lease", Duration::from_secs(60), async || {
            logs(Market::LeaseStarted::SIGNATURE_HASH, id)
                .await
                .first()
                .and_then(|l| l.log_decode::<Market::LeaseStarted>().ok())
                .map(|l| l.inner.data)
        })
        .await
    };

    // An auction: a signed bid is kept and served, no bid transaction.
    let auction = order(false, 1).await;
    let bid_url = format!("{url}/bids/{auction}");
    let served: ServedBid = until("the signed bid", Duration::from_secs(30), async || {
        serde_json::from_slice(
            &gridlease_fetch::Fetcher::devnet()
                .get(&bid_url, None)
                .await
                .ok()?,
        )
        .ok()
    })
    .await;
    // Anyone places it on chain while the window is open (AFR-02): it locks the node's
    // collateral as its own bid would, and the node sent nothing.
    send(m.bidSigned(
        auction,
        SignedBid {
            pricePerSecond: U96::from(served.price().expect("price")),
            expiry: U48::from(served.expiry),
            signature: served.signature.clone(),
        },
    ))
    .await
    .expect("the signed bid placed");
    let domain = market_domain(gov.chain_id, market);
    assert_eq!(served.order, auction);
    assert_eq!(served.provider, owner.address());
    assert_eq!(served.operator, operator.address());
    assert_eq!(served.signer(&domain), Some(operator.address()));
    assert_eq!(served.price(), Some(100_000_000_000_000), "0.36 per hour");
    let lens = MarketLens::new(d.address("MarketLens").expect("lens"), &tenant.provider);
    let job = lens.getJob(auction).call().await.expect("job");
    let grace = m.params().call().await.expect("params").awardGrace;
    assert_eq!(
        served.expiry,
        job.biddingEnd.to::<u64>() + u64::from(grace),
        "valid until the award grace ends"
    );
    assert!(
        gridlease_fetch::Fetcher::devnet()
            .get(&format!("{url}/bids/{}", B256::repeat_byte(9)), None)
            .await
            .is_err()
    );
    assert!(
        gridlease_fetch::Fetcher::devnet()
            .get(&format!("{url}/bids/nonsense"), None)
            .await
            .is_err()
    );

    // An instant order is still bid on chain (and won at once).
    let instant = order(true, 2).await;
    let l = leased(instant).await;
    assert!(!l.signedBid);
    assert_eq!(l.provider, owner.address());
    assert!(
        lens.getJob(instant).call().await.expect("job").acknowledged,
        "won by the node's own bid: acknowledged at once"
    );
    assert_eq!(
        logs(Market::BidPlaced::SIGNATURE_HASH, auction).await.len(),
        1,
        "placed once, by the tenant"
    );

    // A restart still serves the same bid.
    stop(child);
    child = node(dir, &["run", "--config", "provider.toml"], "node-2.log")
        .spawn()
        .expect("node");
    let again: ServedBid = until(
        "the bid after a restart",
        Duration::from_secs(30),
        async || {
            serde_json::from_slice(
                &gridlease_fetch::Fetcher::devnet()
                    .get(&bid_url, None)
                    .await
                    .ok()?,
            )
            .ok()
        },
    )
    .await;
    assert_eq!(again, served);

    // Anyone awards it after the window: the node's lease, run to its result.
    anvil::warp(&tenant.provider, 31).await.expect("warp");
    send(m.award(auction)).await.expect("award");
    let l = leased(auction).await;
    assert!(l.signedBid);
    assert_eq!(l.provider, owner.address());
    let results = Results::new(d.address("Results").expect("results"), &tenant.provider);
    let t0 = Instant::now();
    while results.resultOf(auction).call().await.expect("resultOf") == B256::ZERO {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no result; node log:\n{}",
            log(2)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The keeper's award left the lease to be acknowledged: the node did, within the start window
    // (the instant lease needed no acknowledgement).
    let acks = async |id: B256| {
        tenant
            .provider
            .get_logs(
                &Filter::new()
                    .address(*results.address())
                    .event_signature(Results::LeaseAcknowledged::SIGNATURE_HASH)
                    .topic1(id)
                    .from_block(0),
            )
            .await
            .expect("logs")
    };
    let acked = acks(auction).await;
    assert_eq!(acked.len(), 1, "{}", log(2));
    let after = acked[0]
        .log_decode::<Results::LeaseAcknowledged>()
        .expect("decodes")
        .inner
        .data
        .secondsAfterStart;
    let window = results.startWindow().call().await.expect("window");
    assert!(after <= window, "acknowledged {after}s after the start");
    assert!(acks(instant).await.is_empty());
    stop(child);
}
