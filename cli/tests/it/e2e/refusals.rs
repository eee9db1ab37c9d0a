//! Bad input refused with its message and no transaction; exit codes by failure.

use super::*;

#[tokio::test]
async fn bad_specs_are_refused_with_their_message_and_no_transaction() {
    let n = net().await;
    let good = SPEC.replace("INSTANT", "false");
    let cases: &[(&str, String, &str)] = &[
        ("syntax", good.replace("n = 64", "n = "), "line 13"),
        (
            "kind",
            good.replace("matmul_i8", "wasm"),
            "unknown kind \"wasm\"",
        ),
        (
            "n",
            good.replace("n = 64", "n = 0"),
            "matmul.n: 0 is out of range",
        ),
        (
            "price",
            good.replace("\"3.6\"", "\"3,6\""),
            "price.max_per_hour",
        ),
        (
            "huge price",
            good.replace("\"3.6\"", "\"400000000000000\""),
            "price.max_per_hour 400000000000000 is more than an order can carry",
        ),
        (
            "precision",
            good.replace("\"3.6\"", "\"3.6000001\""),
            "7 decimal places; the token has 6",
        ),
        (
            "duration",
            good.replace("\"10m\"", "\"2d\""),
            "longer than this market allows (1d)",
        ),
        (
            "window",
            good.replace("\"30s\"", "\"2h\""),
            "bid_window 2h is longer",
        ),
        (
            "gpu",
            good.replace("vram_gib = 1", "gpu = \"tpu-v5\""),
            "unknown GPU class",
        ),
        (
            "unknown field",
            good.replace("collateral", "colateral"),
            "unknown field `colateral`",
        ),
        (
            "token",
            good.replace("instant", "token = \"DAI\"\ninstant"),
            "unknown payment token \"DAI\"",
        ),
        (
            "missing section",
            good.replace("[matmul]\nn = 64\n", ""),
            "needs a [matmul] section",
        ),
        (
            "too poor",
            good.replace("\"2\"", "\"5000\""),
            "the order needs 5000 USDC",
        ),
        // PIN-01: an input is a URL a provider can download, never a path on some disk.
        (
            "local input",
            good.replace(
                "n = 64",
                "m = 1\nk = 436\nn = 1\na = \"file:///etc/hostname\"\nb = \"/etc/hostname\"",
            ),
            "matmul.a: the provider downloads inputs over http(s):// only",
        ),
    ];
    let nonce = n.nonce().await;
    for (name, text, message) in cases {
        let path = n.spec(&format!("{}.toml", name.replace(' ', "_")), text);
        let r = n.cli(&["submit", &path]);
        assert_eq!(r.code, 3, "{name}: exit code; stderr: {}", r.stderr);
        assert!(
            r.stderr.contains(message),
            "{name}: expected \"{message}\" in: {}",
            r.stderr
        );
    }
    assert_eq!(
        n.nonce().await,
        nonce,
        "no transaction was sent for a bad spec"
    );
}

#[tokio::test]
async fn exit_codes_separate_wallet_revert_and_network_failures() {
    let n = net().await;
    let spec = n.spec("job.toml", &SPEC.replace("INSTANT", "false"));
    // Wrong password: user error, and the password is not echoed.
    let wrong = format!("file:{}", n.dir.path().join("wrong").display());
    let r = run(n.command(false).arg("--keystore").arg(&n.keystore).args([
        "--password",
        &wrong,
        "submit",
        &spec,
    ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("wrong password") && !r.stderr.contains("nope"),
        "{}",
        r.stderr
    );
    // A raw key on the command line is refused.
    let r = n.cli_with(&["--private-key", ANVIL_KEYS[1], "list"], false);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("env:VAR") && !r.stderr.contains(&ANVIL_KEYS[1][4..]),
        "{}",
        r.stderr
    );

    // A revert: someone else's open order cannot be cancelled before the grace (NotTenant).
    let id = id_of(&n.json(&["submit", &spec]));
    let stranger: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    let r = run(n
        .command(false)
        .env("STRANGER_KEY", stranger.to_bytes().to_string())
        .args(["--private-key", "env:STRANGER_KEY", "cancel", &id]));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("NotTenant") && r.stderr.contains("only the tenant"),
        "{}",
        r.stderr
    );
    // Someone else's order takes a top-up only with its tenant named: the money is the tenant's.
    gridlease_deploy::deploy::mint(&n.gov, n.usdc, stranger.address(), 5 * USDC)
        .await
        .expect("mint");
    let stranger_cli = |args: &[&str]| {
        run(n
            .command(false)
            .env("STRANGER_KEY", stranger.to_bytes().to_string())
            .args(["--private-key", "env:STRANGER_KEY"])
            .args(args))
    };
    let r = stranger_cli(&["topup", &id, "1"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let tenant = format!("{:#x}", n.tenant);
    assert!(
        r.stderr.to_lowercase().contains(&format!("--for {tenant}")),
        "{}",
        r.stderr
    );
    let r = stranger_cli(&["topup", &id, "1", "--for", &tenant]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(n.json(&["status", &id])["escrow"], "3000000");

    // Network: nothing listens there.
    let r = run(Command::new(env!("CARGO_BIN_EXE_gridlease")).args([
        "--rpc",
        "http://127.0.0.1:9",
        "market",
    ]));
    assert_eq!(r.code, 5, "{}", r.stderr);
    // JSON mode reports errors as JSON too.
    let r = n.cli(&["status", "0x12", "--json"]);
    assert_eq!(r.code, 3);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json error");
    assert_eq!(v["exitCode"], 3);
}

/// TOK-06: a token its issuer paused refuses the permit as Circle's USDC does ("Pausable:
/// paused"); the market then finds no allowance. `submit` names the pause, not the allowance, and
/// sends nothing. Once unpaused the same spec goes through.
#[tokio::test]
async fn submit_names_a_paused_token_as_the_cause_and_sends_nothing_tok06() {
    let mut n = net().await;
    let usdp = n.usdc_like("USDP").await;
    send(usdp.setPaused(true)).await.expect("pause");
    let spec = n.spec(
        "paused.toml",
        &SPEC
            .replace("INSTANT", "false")
            .replace("instant", "token = \"USDP\"\ninstant"),
    );
    let nonce = n.nonce().await;
    let r = n.cli(&["submit", &spec]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("USDP refused the permit")
            && r.stderr.contains("Pausable: paused")
            && r.stderr.contains("paused by its issuer"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("sign a new permit"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce, "nothing was sent");

    send(usdp.setPaused(false)).await.expect("unpause");
    let v = n.json(&["submit", &spec]);
    assert_eq!(v["order"]["token"], "USDP", "{v}");
}
