//! Orders and their leases: submit, top up, cancel, and closing with or without a result.

use super::*;

#[tokio::test]
async fn submit_topup_cancel_move_exact_amounts() {
    let n = net().await;
    let market = n.d.address("Market").expect("market");
    let spec = n.spec("job.toml", &SPEC.replace("INSTANT", "false"));
    let (t0, m0) = (n.balance(n.tenant).await, n.balance(market).await);

    let v = n.json(&["submit", &spec]);
    let id = id_of(&v);
    assert_eq!(
        n.balance(n.tenant).await,
        t0 - 2 * USDC,
        "deposit pulled by the permit"
    );
    assert_eq!(n.balance(market).await, m0 + 2 * USDC);
    let allowance = MockStablecoin::new(n.usdc, &n.gov.provider)
        .allowance(n.tenant, market)
        .call()
        .await
        .expect("allowance");
    assert_eq!(allowance, U256::ZERO, "the permit is spent exactly");
    let s = n.json(&["status", &id]);
    assert_eq!(
        (s["status"].as_str(), s["escrow"].as_str()),
        (Some("open"), Some("2000000"))
    );

    let v = n.json(&["topup", &id, "1.25"]);
    assert_eq!(v["escrow"], "3250000");
    assert_eq!(n.balance(n.tenant).await, t0 - 3_250_000);

    let listed = n.json(&["list"]);
    assert_eq!(listed["orders"].as_array().expect("orders").len(), 1);

    let v = n.json(&["cancel", &id]);
    assert_eq!(v["refund"], "3250000");
    assert_eq!(n.balance(n.tenant).await, t0, "cancel refunds everything");
    assert_eq!(n.balance(market).await, m0);

    // Cancelling again is a user error caught before any transaction.
    let nonce = n.nonce().await;
    let r = n.cli(&["cancel", &id]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("is cancelled"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce);
}

/// A batch lease without a result (protocol §3.1.4): the tenant's close pays the time used only
/// for an acknowledged lease before its deadline, and nothing otherwise; a no-show or a missed
/// deadline stays provable after the tenant's close (MEC-05) and refunds everything when proven
/// (MEC-02: the close never beats the fault).
/// TOK-02: a token without an EIP-2612 permit that returns nothing from `approve` and refuses
/// to change one non-zero allowance into another (USDT's way): `submit` approves the deposit
/// first and places the order; `topup` over a short non-zero allowance sets it to zero first.
#[tokio::test]
async fn a_token_without_a_permit_is_approved_first_even_one_like_usdt() {
    use gridlease_bindings::NoReturnToken;
    let mut n = net().await;
    let market = n.d.address("Market").expect("market");
    let nrt = NoReturnToken::deploy(
        n.gov.provider.clone(),
        "Tether-like".into(),
        "NRT".into(),
        6,
    )
    .await
    .expect("deploy");
    n.list_token(*nrt.address(), "NRT").await;
    send(nrt.mint(n.tenant, U256::from(10 * USDC)))
        .await
        .expect("mint");
    let spec = n.spec(
        "nrt.toml",
        &SPEC
            .replace("INSTANT", "false")
            .replace("instant", "token = \"NRT\"\ninstant"),
    );
    let nonce = n.nonce().await;
    let v = n.json(&["submit", &spec]);
    let id = id_of(&v);
    assert_eq!(n.nonce().await, nonce + 2, "an approval, then the order");
    let held = |who| {
        let nrt = &nrt;
        async move { nrt.balanceOf(who).call().await.expect("balance") }
    };
    assert_eq!(held(market).await, U256::from(2 * USDC));
    assert_eq!(held(n.tenant).await, U256::from(8 * USDC));
    let allowance = async || {
        nrt.allowance(n.tenant, market)
            .call()
            .await
            .expect("allowance")
    };
    assert_eq!(
        allowance().await,
        U256::ZERO,
        "the approval is spent exactly"
    );
    assert_eq!(n.json(&["status", &id])["escrow"], "2000000");

    // A short non-zero allowance, which this token will not change to another non-zero one.
    let tenant_key: PrivateKeySigner = ANVIL_KEYS[1].parse().expect("key");
    let tenant = Client::connect(&n.anvil.url(), Some(tenant_key))
        .await
        .expect("connect");
    send(NoReturnToken::new(*nrt.address(), &tenant.provider).approve(market, U256::from(1)))
        .await
        .expect("approve 1 unit");
    let v = n.json(&["topup", &id, "1"]);
    assert_eq!(v["escrow"], "3000000");
    assert_eq!(allowance().await, U256::ZERO);
}

/// The answer to a submit's transaction is lost on the network (OFF-10): the error names the
/// order it may have placed and how to look; the order is on chain once, and `status` finds it.
// The proxy serves on this runtime while the test waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_whose_answer_was_lost_names_the_order_it_may_have_placed() {
    use gridlease_testkit::proxy::{Fault, Proxy};
    let n = net().await;
    let proxy = Proxy::start(&n.anvil.url()).await.expect("proxy");
    proxy.fail_next("eth_sendRawTransaction", [Fault::LoseAnswer]);
    let spec = n.spec("lost.toml", &SPEC.replace("INSTANT", "false"));
    let r = run(n.command_via(&proxy.url(), true).args(["submit", &spec]));
    assert_eq!(r.code, 5, "a network error: {}{}", r.stdout, r.stderr);
    let id = r
        .stderr
        .split("Order ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("no order id in: {}", r.stderr));
    assert!(
        r.stderr.contains(&format!("gridlease status {id}")),
        "{}",
        r.stderr
    );
    // Named before anything was sent, too (a run stopped while it waits leaves the id).
    assert!(
        r.stderr.contains(&format!("placing order {id}")),
        "{}",
        r.stderr
    );
    assert_eq!(n.json(&["status", id])["status"], "open");
    let listed = n.json(&["list"]);
    assert_eq!(listed["orders"].as_array().expect("orders").len(), 1);
}

/// OFF-10: receipt polls the node fails (a rate limit) do not make a top-up that landed read as
/// failed. Before, the first failed poll ended the wait with exit 5, and a script that retried
/// it paid the top-up twice.
// The proxy serves on this runtime while the test waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_10_a_top_up_whose_receipt_polls_fail_is_reported_once_landed() {
    use gridlease_testkit::proxy::{Fault, Proxy};
    let n = net().await;
    let id = n.order("topped.toml", false, None).await.to_string();
    let before = n.balance(n.tenant).await;
    let proxy = Proxy::start(&n.anvil.url()).await.expect("proxy");
    proxy.fail_next("eth_getTransactionReceipt", vec![Fault::Status(429); 3]);
    let r = run(n
        .command_via(&proxy.url(), true)
        .args(["topup", &id, "1", "--json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(proxy.calls("eth_getTransactionReceipt") >= 4);
    assert_eq!(n.balance(n.tenant).await, before - USDC, "paid once");
    assert_eq!(
        n.json(&["status", &id])["escrow"].as_str(),
        Some((3 * USDC).to_string().as_str())
    );
}

/// A token governance allows while `gridlease console` runs is in its `/config.json` on the next
/// load, with its decimals (the page shows amounts in it as they are). Before, the tokens were
/// read once at start: the page showed a later token's amounts at 18 decimals.
// The console serves on its own process; the test reads it over loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_config_names_a_token_allowed_after_its_start() {
    use gridlease_bindings::MockStablecoin;
    let mut n = net().await;
    let bundle = n.dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).expect("dir");
    std::fs::write(bundle.join("index.html"), "<!doctype html>").expect("index");
    let port = gridlease_deploy::anvil::free_port().expect("port");
    // Stopped when dropped, the test passing or not.
    let console = gridlease_testkit::process::Daemon(
        n.command(false)
            .args(["console", "--listen", &format!("127.0.0.1:{port}"), "--dir"])
            .arg(&bundle)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("console starts"),
    );
    let url = format!("http://127.0.0.1:{port}/config.json");
    let http = gridlease_fetch::Fetcher::devnet();
    let tokens = async || -> Option<Vec<serde_json::Value>> {
        let body = http.get(&url, None).await.ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        v["deployments"]["tokens"].as_array().cloned()
    };
    let t0 = std::time::Instant::now();
    let before = loop {
        if let Some(t) = tokens().await {
            break t;
        }
        assert!(t0.elapsed().as_secs() < 60, "the console never answered");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let token =
        MockStablecoin::deploy(n.gov.provider.clone(), "Euro Coin".into(), "EURC".into(), 6)
            .await
            .expect("deploy");
    let address = format!("{:?}", token.address()).to_lowercase();
    let listed = |t: &[serde_json::Value]| {
        t.iter().any(|e| {
            e["address"].as_str().map(str::to_lowercase).as_deref() == Some(address.as_str())
                && e["decimals"] == 6
                && e["symbol"] == "EURC"
        })
    };
    assert!(!listed(&before));
    // (The deployments file it names it in is the CLI's; the running console read it at start.)
    n.list_token(*token.address(), "EURC").await;
    let after = tokens().await.expect("config");
    drop(console);
    assert!(listed(&after), "{after:?}");
    assert_eq!(after.len(), before.len() + 1);
}

#[tokio::test]
async fn close_batch_lease_without_result_pays_only_acknowledged_time_mec02_mec05() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let w = n.windows().await;
    let t0 = n.balance(n.tenant).await;
    // A and C: instant, so the provider's own bid acknowledged them. B: awarded by a third party
    // after its bid window, so it must be acknowledged, and never is.
    let a = n.order("a.toml", true, Some(&op)).await;
    let c = n.order("c.toml", true, Some(&op)).await;
    let b = n.order("b.toml", false, Some(&op)).await;
    n.warp(31).await;
    send(n.market(&n.gov).award(b)).await.expect("award");
    assert_eq!(n.balance(n.tenant).await, t0 - 6 * USDC);
    // B inside its start window: awaited.
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(s["state"], "awaiting-acknowledgement", "{s}");
    assert_eq!(s["acknowledged"], false);

    // A: acknowledged, before its deadline: `--check` explains and sends nothing.
    n.warp(99).await;
    let s = n.json(&["status", &a.to_string()]);
    assert_eq!(s["state"], "running", "{s}");
    let nonce = n.nonce().await;
    let v = n.json(&["close", &a.to_string(), "--check"]);
    assert!(
        v["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("pays the time used")),
        "{v}"
    );
    assert_eq!(n.nonce().await, nonce, "--check sends nothing");
    let v = n.json(&["close", &a.to_string()]);
    let s = n.json(&["status", &a.to_string()]);
    let (start, closed_at) = (
        s["start"].as_u64().expect("start"),
        s["closed"]["closedAt"].as_u64().expect("closedAt"),
    );
    let paid = u128::from(closed_at - start) * 1_000;
    assert!(paid > 0);
    assert_eq!(v["paid"], paid.to_string(), "the time used, to the second");
    assert_eq!(v["refund"], (2 * USDC - paid).to_string());
    assert_eq!(
        v["held"], false,
        "an acknowledged close before the deadline holds nothing"
    );
    assert_eq!(s["state"], "closed", "{s}");
    assert_eq!(
        n.market_credit(owner).await,
        paid - paid / 100,
        "minus the 1% protocol fee"
    );
    // Nothing to prove about A.
    let r = n.cli(&["result", &a.to_string(), "--prove"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("Nothing is provable yet"), "{}", r.stderr);

    // B: never acknowledged; past its start window, a no-show.
    n.warp(w.start + 1).await;
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(s["state"], "no-show", "{s}");
    assert_eq!(s["next"], format!("gridlease result {b} --prove"));
    let v = n.json(&["close", &b.to_string(), "--check"]);
    assert_eq!(v["estimatedPay"], "0");
    assert_eq!(v["instead"], format!("gridlease result {b} --prove"), "{v}");
    let v = n.json(&["close", &b.to_string()]);
    assert_eq!(
        (v["paid"].as_str(), v["refund"].as_str()),
        (Some("0"), Some("2000000"))
    );
    assert_eq!(v["held"], true, "the no-show stays provable");
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(s["state"], "closed", "{s}");
    assert!(
        s["stateText"]
            .as_str()
            .is_some_and(|t| t.contains("no-show stays provable")),
        "{s}"
    );
    let held_until = s["collateralHeldUntil"].as_u64().expect("held");
    assert_eq!(
        held_until,
        s["settledAt"].as_u64().expect("closed at") + w.horizon
    );
    // Proven after the close: the provider's collateral is slashed, nothing more to refund.
    let (stake0, _) = n.stake_of(owner).await;
    let v = n.json(&["result", &b.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "no-show", "{v}");
    assert_eq!(v["fault"]["refund"], "0");
    assert_eq!(
        v["fault"]["compensation"], "0",
        "the tenant paid nothing for B"
    );
    assert_eq!(n.stake_of(owner).await.0, stake0 - 10 * USDC);
    assert_eq!(n.json(&["status", &b.to_string()])["state"], "faulted");

    // C: acknowledged, just past its end: a result may still come within the grace, so the
    // market refuses a close (MEC-10); the CLI says so and sends nothing.
    let end = n.json(&["status", &c.to_string()])["end"]
        .as_u64()
        .expect("end");
    let now = n
        .gov
        .provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("block")
        .expect("block")
        .header
        .timestamp;
    n.warp(end + 1 - now).await;
    let nonce = n.nonce().await;
    let r = n.cli(&["close", &c.to_string()]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("may still post its result until")
            && r.stderr.contains("the market refuses a close until then"),
        "{}",
        r.stderr
    );
    assert_eq!(n.nonce().await, nonce, "nothing sent");

    // C: acknowledged, past its end + grace without a result: closing would pay nothing, and
    // proving the missed deadline refunds all of it and slashes.
    n.warp(600 + w.grace + 1).await;
    let s = n.json(&["status", &c.to_string()]);
    assert_eq!(s["state"], "deadline-missed", "{s}");
    let v = n.json(&["close", &c.to_string(), "--check"]);
    assert_eq!(v["estimatedPay"], "0", "{v}");
    assert_eq!(v["instead"], format!("gridlease result {c} --prove"));
    let before = n.balance(n.tenant).await;
    let v = n.json(&["result", &c.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "missed-deadline", "{v}");
    assert_eq!(v["fault"]["refund"], "2000000");
    assert_eq!(
        n.balance(n.tenant).await,
        before + 2 * USDC,
        "refunded in full"
    );
    assert_eq!(
        n.stake_of(owner).await,
        (stake0 - 20 * USDC, 0),
        "slashed; nothing locked"
    );
    // In all: the tenant paid only A's time used.
    assert_eq!(n.balance(n.tenant).await, t0 - paid);
}

/// A posted result is held for its challenge window; the tenant's close inside it accepts it:
/// it pays exactly up to the result and keeps the collateral held (faults stay provable).
#[tokio::test]
async fn accepting_a_held_result_pays_up_to_the_result_and_keeps_the_collateral_held() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let t0 = n.balance(n.tenant).await;
    let w = n.windows().await;
    let id = n.order("job.toml", true, Some(&op)).await;
    n.warp(50).await;
    let bytes = encode(&spec_product());
    let posted_at = n.post(&op, id, &bytes, &n.file("c.bin", &bytes)).await;

    let s = n.json(&["status", &id.to_string()]);
    let start = s["start"].as_u64().expect("start");
    let pay = u128::from(posted_at - start) * 1_000;
    assert_eq!(s["state"], "held", "{s}");
    assert_eq!(
        s["holdEnd"].as_u64(),
        Some(posted_at + w.challenge),
        "held for the challenge window"
    );
    assert_eq!(s["accrued"], pay.to_string(), "what accepting pays");
    assert_eq!(s["result"]["size"], bytes.len());
    let r = n.cli(&["status", &id.to_string()]);
    assert!(
        r.stdout.contains("result posted, held until")
            && r.stdout.contains("accepting it now pays"),
        "{}",
        r.stdout
    );
    assert_eq!(n.json(&["result", &id.to_string()])["matmul"]["ok"], true);

    // Nobody else may accept it.
    let stranger: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    let nonce = n
        .gov
        .provider
        .get_transaction_count(stranger.address())
        .await
        .expect("nonce");
    let r = run(n
        .command(false)
        .env("STRANGER_KEY", stranger.to_bytes().to_string())
        .args([
            "--private-key",
            "env:STRANGER_KEY",
            "close",
            &id.to_string(),
        ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("only its tenant"), "{}", r.stderr);
    assert_eq!(
        n.gov
            .provider
            .get_transaction_count(stranger.address())
            .await
            .expect("nonce"),
        nonce
    );

    let v = n.json(&["close", &id.to_string(), "--check"]);
    assert!(
        v["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("accepts the posted result")),
        "{v}"
    );
    n.warp(100).await;
    let v = n.json(&["close", &id.to_string()]);
    assert_eq!(v["reason"], "accepted by the tenant");
    assert_eq!(
        v["paid"],
        pay.to_string(),
        "paid up to the result, not up to the close"
    );
    assert_eq!(v["refund"], (2 * USDC - pay).to_string());
    assert_eq!(v["held"], true);
    assert_eq!(n.balance(n.tenant).await, t0 - pay);
    assert_eq!(n.market_credit(owner).await, pay - pay / 100);
    assert_eq!(
        n.stake_of(owner).await.1,
        10 * USDC,
        "the collateral stays locked"
    );

    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(
        (s["status"].as_str(), s["state"].as_str()),
        (Some("closed"), Some("accepted"))
    );
    let closed_at = s["closed"]["closedAt"].as_u64().expect("closed");
    assert_eq!(
        s["collateralHeldUntil"].as_u64(),
        Some(closed_at + w.horizon)
    );
    assert!(
        s["stateText"]
            .as_str()
            .is_some_and(|t| t.contains("faults on the result stay provable until")),
        "{s}"
    );
}
