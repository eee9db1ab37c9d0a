//! Faults and credits: withheld data (MEC-04), compensation (MEC-07), lapsed services (MEC-09)
//! and frozen accounts (MEC-16).

use super::*;

/// MEC-04: a provider posts a root and withholds the data. The tenant is told it can challenge,
/// challenges a chunk with the bond, and after the response window proves the result
/// unavailable: refunded in full, the provider slashed, the bond back. A small result whose
/// chunks were all revealed on chain is assembled from them when the node is down.
#[tokio::test]
async fn challenge_then_prove_unavailable_refunds_the_tenant_and_slashes_mec04() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let results = n.d.address("Results").expect("results");
    let w = n.windows().await;
    let bond_text = format!(
        "{} ETH",
        gridlease_primitives::units::format_amount(w.bond.to(), 18)
    );
    let t0 = n.balance(n.tenant).await;
    let id = n.order("job.toml", true, Some(&op)).await;
    let withheld: Vec<u8> = (0..3_000u32).map(|i| (i * 7) as u8).collect();
    // Half a minute of work: the result holds pay.
    n.warp(30).await;
    n.post(&op, id, &withheld, "http://127.0.0.1:9/result")
        .await;

    let r = n.cli(&["result", &id.to_string()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("download failed")
            && r.stderr.contains("--challenge")
            && r.stderr.contains(&bond_text),
        "{}",
        r.stderr
    );
    let nonce = n.nonce().await;
    let r = n.cli(&["result", &id.to_string(), "--challenge", "--chunk", "3"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("has 3 chunk(s)"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce);

    let v = n.json(&["result", &id.to_string(), "--challenge", "--chunk", "1"]);
    assert_eq!(v["bond"], w.bond.to_string(), "{v}");
    assert_eq!(v["bondText"], bond_text);
    assert_eq!(v["responseWindow"], w.response);
    assert_eq!(n.eth_balance(results).await, w.bond, "the bond is held");
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["state"], "challenged", "{s}");
    assert_eq!(s["openChallenges"][0]["index"], 1);
    assert_eq!(s["openChallenges"][0]["deadline"], v["deadline"]);
    // Too early to prove: the answer may still come.
    let r = n.cli(&["result", &id.to_string(), "--prove"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("Chunk 1 is challenged"), "{}", r.stderr);

    n.warp(w.response + 1).await;
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["next"], format!("gridlease result {id} --prove"), "{s}");
    // Accepting it now would pay for a result that is provably unavailable: refused unless
    // forced, and nothing is sent.
    let nonce = n.nonce().await;
    let r = n.cli(&["close", &id.to_string()]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("not closing") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(n.nonce().await, nonce);
    let v = n.json(&["result", &id.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "unavailable", "{v}");
    assert_eq!(v["fault"]["refund"], "2000000");
    assert_eq!(
        n.balance(n.tenant).await,
        t0,
        "the tenant got everything back"
    );
    assert_eq!(
        n.stake_of(owner).await,
        (40 * USDC, 0),
        "10 USDC collateral slashed"
    );
    assert_eq!(
        n.eth_balance(results).await,
        U256::ZERO,
        "the bond went back"
    );
    // ... to its challenger, the tenant: sent, not left as a credit.
    let credit = Results::new(results, &n.gov.provider)
        .ethCreditOf(n.tenant)
        .call()
        .await
        .expect("credit");
    assert_eq!(credit, U256::ZERO);
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["state"], "faulted");
    assert_eq!(s["fault"]["kind"], "unavailable");

    // A one-chunk result the node no longer serves, revealed on chain by its answer.
    let id = n.order("small.toml", true, Some(&op)).await;
    let small = b"a small result, one chunk".to_vec();
    n.post(&op, id, &small, "http://127.0.0.1:9/small").await;
    n.json(&["result", &id.to_string(), "--challenge", "--chunk", "0"]);
    let c = Commitment::of(&small);
    send(Results::new(results, &op.provider).answer(
        id,
        c.root,
        c.size,
        U256::ZERO,
        small.clone().into(),
        vec![],
    ))
    .await
    .expect("answer");
    // (Assembled, it is the wrong size for the job's product: exit 6.)
    let r = n.cli(&["result", &id.to_string(), "--json"]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["source"], "chunks revealed on chain", "{v}");
    assert_eq!(v["matchesCommitment"], true);
    assert_eq!(n.json(&["status", &id.to_string()])["state"], "held");
    // A revealed chunk is not challenged again (its answer would take the bond), whether named
    // or picked: nothing is sent.
    let nonce = n.nonce().await;
    let id = id.to_string();
    for args in [&["--chunk", "0"][..], &[]] {
        let mut all = vec!["result", &id, "--challenge"];
        all.extend_from_slice(args);
        let r = n.cli(&all);
        assert_eq!(r.code, 3, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("revealed on chain"), "{}", r.stderr);
    }
    assert_eq!(n.nonce().await, nonce);
}

/// MEC-07: a fault on an accepted result compensates the tenant for what it paid, never more
/// (the rest of the slash goes to the treasury); a third-party reporter earns its fee out of the
/// refund it recovers. `withdraw` collects the market credit (the fee) and the staking credit
/// (the compensation) in one go.
#[tokio::test]
async fn withdraw_collects_market_and_staking_credits_after_a_fault_mec07() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let w = n.windows().await;
    let t0 = n.balance(n.tenant).await;
    let mut wrong = spec_product();
    wrong[64 * 7 + 9] ^= 1 << 4;
    let wrong = encode(&wrong);

    // Lease A (the tenant's): a wrong result, accepted, then proven wrong.
    let a = n.order("a.toml", true, Some(&op)).await;
    n.warp(40).await;
    n.post(&op, a, &wrong, &n.file("a.bin", &wrong)).await;
    let v = n.json(&["close", &a.to_string()]);
    let paid: u128 = v["paid"].as_str().expect("paid").parse().expect("number");
    assert!(paid > 0);
    let v = n.json(&["result", &a.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "wrong-result", "{v}");
    assert_eq!(
        v["fault"]["refund"], "0",
        "an accepted lease holds no escrow"
    );
    assert_eq!(v["fault"]["slashed"], (10 * USDC).to_string());
    assert_eq!(
        v["fault"]["compensation"],
        paid.to_string(),
        "compensated for what it paid, not for the slash"
    );
    assert_eq!(n.staking_credit(n.tenant).await, paid);

    // Lease B (another tenant's): a wrong result still held; the tenant proves it as a third
    // party and earns the 5% fault fee out of the refund it recovers.
    let other: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    mint(&n.gov, n.usdc, other.address(), 10 * USDC)
        .await
        .expect("mint");
    let spec = n.spec("b.toml", &SPEC.replace("INSTANT", "true"));
    let r = run(n
        .command(false)
        .env("OTHER_KEY", other.to_bytes().to_string())
        .args(["--private-key", "env:OTHER_KEY", "--json", "submit", &spec]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b: B256 = id_of(&serde_json::from_str(&r.stdout).expect("json"))
        .parse()
        .expect("id");
    send(n.market(&op).bid(b, U96::from(RATE)))
        .await
        .expect("bid");
    n.post(&op, b, &wrong, &n.file("b.bin", &wrong)).await;
    // A third party earns its fee only once the tenant's own priority to prove (free) has passed
    // (the devnet's is minutes; an hour is past any).
    n.warp(3_601).await;
    let v = n.json(&["result", &b.to_string(), "--prove"]);
    let fee = 2 * USDC * w.fault_fee_bps / 10_000;
    assert!(fee > 0);
    assert_eq!(v["fault"]["fee"], fee.to_string(), "{v}");
    assert_eq!(
        v["fault"]["refund"],
        (2 * USDC - fee).to_string(),
        "the other tenant gets its escrow back less the reporter's fee: {v}"
    );
    assert_eq!(v["fault"]["compensation"], "0", "B paid nothing yet");
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(
        s["fault"],
        serde_json::json!({
            "kind": "wrong-result",
            "refund": (2 * USDC - fee).to_string(),
            "fee": fee.to_string(),
            "compensation": "0",
            "slashed": (10 * USDC).to_string(),
            "reporter": n.tenant,
        }),
        "status agrees with the proof: {s}"
    );
    assert_eq!(n.market_credit(n.tenant).await, fee);
    assert_eq!(n.balance(other.address()).await, 10 * USDC - fee);

    let before = n.balance(n.tenant).await;
    let v = n.json(&["withdraw"]);
    let got: Vec<(String, String)> = v["withdrawn"]
        .as_array()
        .expect("list")
        .iter()
        .map(|w| {
            (
                w["source"].as_str().unwrap_or("").to_owned(),
                w["amount"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("market".into(), fee.to_string()),
            ("staking".into(), paid.to_string())
        ]
    );
    assert_eq!(n.balance(n.tenant).await, before + fee + paid);
    assert_eq!(
        (
            n.market_credit(n.tenant).await,
            n.staking_credit(n.tenant).await
        ),
        (0, 0)
    );
    // The tenant is made whole for A, and gains nothing from the slash beyond B's fee.
    assert_eq!(n.balance(n.tenant).await, t0 + fee);
    assert_eq!(n.stake_of(owner).await, (30 * USDC, 0));
    let r = n.cli(&["withdraw"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nothing to withdraw"), "{}", r.stderr);
}

/// MEC-09: a service lease whose provider's heartbeat stopped shows as lapsed, and anyone may
/// close it: it pays up to the lapse (the last heartbeat + its period), never for the lapse,
/// and refunds the rest.
#[tokio::test]
async fn service_lease_shows_live_then_lapsed_and_anyone_closes_it_up_to_the_lapse_mec09() {
    let n = net().await;
    let (_, op) = n.provider().await;
    let w = n.windows().await;
    let (id, beat) = service_lease(&n, &op, "image = \"srv:1\"\nport = 8000\n").await;
    let beat_at = n.time_of(&beat).await;
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(
        (s["kind"].as_str(), s["state"].as_str()),
        (Some("service"), Some("live")),
        "{s}"
    );
    let start = s["start"].as_u64().expect("start");

    n.warp(2 * w.heartbeat).await;
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["state"], "lapsed", "{s}");
    let paid = u128::from(beat_at + w.heartbeat - start) * 1_000;
    assert_eq!(
        s["accrued"],
        paid.to_string(),
        "up to the last heartbeat + its period"
    );
    // A top-up cannot revive it: refused before anything is sent, no approval left behind.
    let nonce = n.nonce().await;
    let r = n.cli(&["topup", &id.to_string(), "1"]);
    assert_eq!(r.code, 4, "a revert: {}", r.stderr);
    assert!(r.stderr.contains("LeaseDepleted"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce, "no approval sent");
    // A stranger closes it as lapsed.
    let stranger: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    let r = run(n
        .command(false)
        .env("STRANGER_KEY", stranger.to_bytes().to_string())
        .args([
            "--private-key",
            "env:STRANGER_KEY",
            "--json",
            "close",
            &id.to_string(),
        ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["reason"], "lapsed");
    assert_eq!(v["paid"], paid.to_string(), "nothing for the lapse");
    assert_eq!(v["refund"], (2 * USDC - paid).to_string());
    assert_eq!(n.json(&["status", &id.to_string()])["state"], "lapsed");
}

/// MEC-16: a credit of an account the token froze is not sent elsewhere: `withdraw --to` is
/// refused with the reason, and works once the freeze is lifted.
#[tokio::test]
async fn withdraw_to_another_address_is_refused_for_a_frozen_account_mec16() {
    let mut n = net().await;
    let frz = n.usdc_like("FRZ").await;

    let spec = n.spec(
        "frz.toml",
        &SPEC
            .replace("INSTANT", "false")
            .replace("instant", "token = \"FRZ\"\ninstant"),
    );
    let id = id_of(&n.json(&["submit", &spec]));
    send(frz.setBlacklisted(n.tenant, true))
        .await
        .expect("freeze");
    // The refund the token refuses becomes a credit.
    let r = n.cli(&["cancel", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("credited to you in the market"),
        "{}",
        r.stdout
    );
    let credit = n
        .lens()
        .creditOf(*frz.address(), n.tenant)
        .call()
        .await
        .expect("credit");
    assert_eq!(credit, U256::from(2 * USDC));
    // `status` says the same refund, and where it went.
    let st = n.cli(&["status", &id]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(
        st.stdout
            .contains("cancelled: refunded 2 FRZ (the token refused the transfer: credited to the tenant in the market instead"),
        "{}",
        st.stdout
    );
    assert!(r.stdout.contains("refunded 2 FRZ"), "{}", r.stdout);
    assert_eq!(n.json(&["status", &id])["credited"], "2000000");

    let elsewhere = Address::repeat_byte(0x77).to_string();
    let nonce = n.nonce().await;
    let r = n.cli(&["withdraw", "--to", &elsewhere]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("AccountFrozenMarket")
            && r.stderr.contains("FRZ has frozen")
            && r.stderr.contains("MEC-16"),
        "{}",
        r.stderr
    );
    let r = n.cli(&["withdraw"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("refused the transfer"), "{}", r.stderr);
    assert_eq!(
        n.nonce().await,
        nonce,
        "refused in simulation: nothing sent"
    );

    send(frz.setBlacklisted(n.tenant, false))
        .await
        .expect("unfreeze");
    let v = n.json(&["withdraw", "--to", &elsewhere]);
    assert_eq!(v["withdrawn"][0]["token"], "FRZ", "{v}");
    let got = frz
        .balanceOf(Address::repeat_byte(0x77))
        .call()
        .await
        .expect("balance");
    assert_eq!(got, U256::from(2 * USDC));
}

/// A transaction mined later than it was estimated meets another state: a service lease that
/// owed nothing when the tenant's close was estimated owes its live time when the close is mined,
/// and paying it writes what the estimate never saw. The CLI's gas limit has room for that: the
/// close lands and pays (before, with the bare estimate, it ran out of gas on chain).
// Two workers: the test mines the block while the CLI waits for its receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_mined_after_time_passed_since_its_estimate_still_lands() {
    use alloy::providers::Provider;
    let n = net().await;
    let (_, op) = n.provider().await;
    let (id, _) = service_lease(&n, &op, "image = \"srv:1\"\nport = 8000\n").await;
    // The close is estimated now (the lease has owed nothing yet) and mined 40 s later.
    let p = &n.gov.provider;
    let _: serde_json::Value = p
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .expect("automine off");
    let child = n
        .command(true)
        .args(["--json", "close", &id.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("close starts");
    let mut pending = 0;
    for _ in 0..200 {
        let block: serde_json::Value = p
            .raw_request("eth_getBlockByNumber".into(), ("pending", false))
            .await
            .expect("pending block");
        pending = block["transactions"].as_array().map_or(0, Vec::len);
        if pending > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pending, 1, "the close is sent");
    n.warp(40).await;
    let _: serde_json::Value = p
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .expect("automine on");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the CLI ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_ne!(
        v["paid"], "0",
        "the live time it owed when mined is paid: {v}"
    );
}
