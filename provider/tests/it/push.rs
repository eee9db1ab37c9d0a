//! Spec delivery over the node's HTTP API against a real anvil: an order whose `specURI` is
//! `gridlease:push` gets no bid until its tenant pushes the spec; a push signed by anyone else, or
//! of another spec, is refused; the tenant's push is kept, the node bids, runs the job and posts
//! its result.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{B256, aliases::U96},
    signers::local::PrivateKeySigner,
};
use gridlease_bindings::{IMarket::OrderParams, Market, Results};
use gridlease_chain::send;
use gridlease_deploy::anvil::{self, ANVIL_KEYS};
use gridlease_primitives::spec::{PUSH_URI, Resources, RunSpec, Workload};
use gridlease_testkit::market::{Market as Fixture, USDC, key};

fn node_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("node.log")).unwrap_or_default()
}

async fn get(url: &str) -> String {
    String::from_utf8_lossy(
        &gridlease_fetch::Fetcher::devnet()
            .get(url, None)
            .await
            .unwrap_or_default(),
    )
    .into_owned()
}

/// POST `body` to `url` with `auth`; the status code.
async fn post(url: &str, auth: &str, body: Vec<u8>) -> u16 {
    alloy::transports::http::reqwest::Client::new()
        .post(url)
        .header(gridlease_fetch::AUTH_HEADER, auth)
        .body(body)
        .send()
        .await
        .expect("the node answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_pushed_spec_is_checked_kept_and_run() {
    let Fixture {
        anvil,
        deployments: d,
        dir,
        tenant,
        owner,
        usdc,
        market,
        ..
    } = Fixture::start(100 * USDC).await;
    let tenant_key = key(1);
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
executor = "process"
allow_unsandboxed = true
post_margin = "5s"
shutdown_grace = "2s"

[fetch]
allow = ["127.0.0.0/8", "::1"]

[http]
listen = "127.0.0.1:{port}"
"#,
        anvil.url(),
        owner.address()
    );
    std::fs::write(dir.path().join("provider.toml"), config).expect("write");
    let log = std::fs::File::create(dir.path().join("node.log")).expect("log");
    let mut node: Child = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
        .args(["run", "--config", "provider.toml", "--verbose"])
        .current_dir(dir.path())
        .env("OP_KEY", ANVIL_KEYS[3])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("node starts");
    let base = format!("http://127.0.0.1:{port}");
    let wait_for = async |what: &str, cond: &dyn Fn(&str) -> bool, url: &str| {
        let t0 = Instant::now();
        loop {
            let body = get(url).await;
            if cond(&body) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "never saw {what} at {url}: {body}\nnode log:\n{}",
                node_log(dir.path())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let metrics = format!("{base}/metrics");
    wait_for(
        "the head",
        &|m| m.contains("gridlease_provider_head_block"),
        &metrics,
    )
    .await;

    // A private container job: the order carries only the hash and `gridlease:push`.
    let spec = RunSpec {
        version: 1,
        workload: Workload::Container {
            image: "local".into(),
            command: vec!["sh".into(), "-c".into(), "echo private $TASK".into()],
            env: [("TASK".to_owned(), "7".to_owned())].into(),
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
        specURI: PUSH_URI.into(),
        token: usdc,
        deposit: U96::from(10 * USDC),
        maxPricePerSecond: U96::from(1_000_000_000_000_000u128),
        maxDuration: 600,
        bidWindow: 60,
        collateral: U96::from(10 * USDC),
        gpuClass: 0,
        gpuCount: 1,
        vramGiB: 8,
        cpuCores: 1,
        ramGiB: 1,
        jobKind: 0,
        instant: true,
        salt: B256::repeat_byte(1),
    };
    let id = p.order_id(tenant_key.address());
    send(Market::new(market, &tenant.provider).createOrder(p.clone()))
        .await
        .expect("order");
    // The node sees the order and does not bid without the spec.
    wait_for(
        "the order skipped for its spec",
        &|m| m.contains("orders_skipped_total{reason=\"spec\"} 1"),
        &metrics,
    )
    .await;
    assert!(
        get(&metrics)
            .await
            .contains("gridlease_provider_bids_sent_total 0")
    );

    let url = format!("{base}/specs/{id}");
    let body = spec.canonical_json();
    let stranger = PrivateKeySigner::random();
    let forged =
        gridlease_fetch::spec_auth(&stranger, gridlease_testkit::market::venue(market), id)
            .expect("signs");
    assert_eq!(post(&url, &forged, body.clone()).await, 403);
    let mut other = spec.clone();
    other.resources.ram_gib = 64;
    let auth =
        gridlease_fetch::spec_auth(&tenant_key, gridlease_testkit::market::venue(market), id)
            .expect("signs");
    assert_eq!(post(&url, &auth, other.canonical_json()).await, 422);
    let unknown = format!("{base}/specs/{}", B256::repeat_byte(0x77));
    let auth_unknown = gridlease_fetch::spec_auth(
        &tenant_key,
        gridlease_testkit::market::venue(market),
        B256::repeat_byte(0x77),
    )
    .expect("signs");
    assert_eq!(post(&unknown, &auth_unknown, body.clone()).await, 404);
    assert_eq!(post(&url, &auth, body.clone()).await, 201);
    assert_eq!(
        post(&url, &auth, body).await,
        200,
        "a second push is a no-op"
    );

    // The push triggers the bid; the job runs and its result is posted and served to the tenant.
    let results = Results::new(d.address("Results").expect("results"), &tenant.provider);
    let t0 = Instant::now();
    loop {
        let r = results.resultOf(id).call().await.expect("resultOf");
        if r != B256::ZERO {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no result; node log:\n{}",
            node_log(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let auth = gridlease_fetch::result_auth(
        &tenant_key,
        gridlease_testkit::market::venue(market),
        id,
        owner.address(),
    )
    .expect("signs");
    let out = gridlease_fetch::Fetcher::devnet()
        .get(&format!("{base}/results/{id}"), Some(&auth))
        .await
        .expect("the tenant downloads its result");
    assert_eq!(out, b"private 7\n");
    assert_eq!(
        results.resultOf(id).call().await.expect("resultOf"),
        gridlease_workload::merkle::Commitment::of(&out).hash(),
        "the commitment of what the tenant got"
    );
    let status = anvil::terminate(&mut node, Duration::from_secs(20)).expect("stops");
    assert!(status.success(), "node exited with {status}");

    // Pushed specs are deleted once their order can no longer run here (the node looks once an
    // hour): this one once its result was accepted; an open order's stays, and so does any
    // pushed within the last day.
    use gridlease_provider::specs::{KEEP_PUSHED, prune_pushed, pushed_spec_path};
    let data = dir.path().join("data");
    let pushed = pushed_spec_path(&data, id);
    assert!(pushed.exists(), "kept while it ran");
    let open = OrderParams {
        salt: B256::repeat_byte(2),
        ..p
    };
    let open_id = open.order_id(tenant_key.address());
    send(Market::new(market, &tenant.provider).createOrder(open))
        .await
        .expect("order");
    let open_spec = pushed_spec_path(&data, open_id);
    std::fs::write(&open_spec, spec.canonical_json()).expect("write");
    send(Market::new(market, &tenant.provider).close(id))
        .await
        .expect("accepted");
    let client = gridlease_chain::Client::connect(&anvil.url(), None)
        .await
        .expect("connect");
    let lens = d.address("MarketLens").expect("lens");
    let prune = |keep| prune_pushed(&client, lens, owner.address(), &data, keep);
    assert_eq!(
        prune(KEEP_PUSHED).await.expect("prune"),
        0,
        "a day old at most"
    );
    assert_eq!(prune(Duration::ZERO).await.expect("prune"), 1);
    assert!(!pushed.exists(), "the accepted lease's spec is gone");
    assert!(open_spec.exists(), "the open order's stays");
}
