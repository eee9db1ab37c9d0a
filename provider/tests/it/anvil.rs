//! `gridlease-provider` against a real anvil: `init` writes a config that `check` accepts once
//! the provider is registered and staked, before that `check` names the owner's command to run,
//! and the owner's commands (`consent`, `register`, `stake`, `unbond`, `withdraw-stake`) onboard
//! and offboard a provider without `cast`, with the owner's keystore on the command line and the
//! operator's consent signed by the node's key (MEC-11, PD-06, PD-08).

use std::{path::Path, process::Command};

use alloy::{
    primitives::{U256, aliases::U96},
    providers::Provider,
};
use gridlease_bindings::{MockStablecoin, Staking};
use gridlease_chain::{Client, deployments::Deployments};
use gridlease_deploy::{
    anvil::{self, ANVIL_KEYS},
    devnet,
};
use gridlease_provider::owner::ConsentFile;

const USDC: u128 = 1_000_000;

/// Run `gridlease-provider args` in `dir`; `op_key`: whether the node's operator key is in the
/// environment (an owner on another machine does not have it).
fn run(args: &[&str], dir: &Path, op_key: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"));
    cmd.args(args).current_dir(dir).env_remove("OP_KEY");
    if op_key {
        cmd.env("OP_KEY", ANVIL_KEYS[3]);
    }
    let out = cmd.output().expect("gridlease-provider runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn node(args: &[&str], dir: &Path) -> (i32, String, String) {
    run(args, dir, true)
}

#[tokio::test]
async fn init_then_check_guides_the_owner_whose_commands_register_stake_unbond_and_withdraw() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path();
    // A devnet with keystores: provider1 (key 2, 5,000 USDC) is the owner, its operator is key 3.
    let dev = devnet::start(0, &dir.join("devnet"), dir)
        .await
        .expect("devnet");
    let d = Deployments::load(&dev.info.deployments, dev.info.chain_id).expect("deployments");
    d.save(&dir.join("deployments.json")).expect("save");
    let owner = dev.info.accounts["provider1"];
    let operator = dev.info.accounts["provider1-operator"];
    let tenant = dev.info.accounts["tenant"];
    let keystore = dev.info.keystores["provider1"].display().to_string();
    let password = format!("file:{}", dev.info.password_file.display());
    let wallet = ["--keystore", &keystore, "--password", &password];
    let client = Client::connect(&dev.anvil.url(), None)
        .await
        .expect("connect");
    let staking = Staking::new(d.address("Staking").expect("staking"), &client.provider);
    let usdc = MockStablecoin::new(d.token("USDC").expect("usdc").address, &client.provider);

    let (code, out, err) = node(&["init"], dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote provider.toml"), "{out}");
    let (code, _, err) = node(&["init"], dir);
    assert_eq!(code, 3);
    assert!(err.contains("--force"), "{err}");
    // Point the sample at this chain, the operator key in the environment, this owner.
    let sample = std::fs::read_to_string(dir.join("provider.toml")).expect("read");
    let config = sample
        .lines()
        .filter(|l| !l.starts_with("keystore") && !l.starts_with("password"))
        .map(|l| match l {
            l if l.starts_with("rpc =") => format!("rpc = \"{}\"", dev.anvil.url()),
            l if l.starts_with("owner =") => {
                format!("owner = \"{owner}\"\nprivate_key = \"env:OP_KEY\"")
            }
            l => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("provider.toml"), config).expect("write");

    // Not registered: `check` names the owner's command, and the node's key.
    let (code, out, err) = node(&["check"], dir);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("config     provider.toml is valid"), "{out}");
    assert!(
        out.contains("tls        service fronts carry up to "),
        "the fronts' connection budget: {out}"
    );
    assert!(
        err.contains("is not registered") && err.contains("gridlease-provider register"),
        "{err}"
    );
    assert!(!err.contains("Staking.register"), "no cast call: {err}");
    assert!(err.contains(&operator.to_string()), "{err}");

    // The owner's wallet is required, never as a raw key.
    let (code, _, err) = node(&["register"], dir);
    assert_eq!(code, 3);
    assert!(err.contains("--keystore"), "{err}");
    let (code, _, err) = node(&["register", "--private-key", ANVIL_KEYS[2]], dir);
    assert_eq!(code, 3);
    assert!(err.contains("env:VAR only"), "{err}");
    assert!(!err.contains(ANVIL_KEYS[2]), "the key is never echoed");
    // The wallet must be the config's owner (here: the tenant's keystore).
    let tenant_ks = dev.info.keystores["tenant"].display().to_string();
    let (code, _, err) = node(
        &[
            "register",
            "--keystore",
            &tenant_ks,
            "--password",
            &password,
        ],
        dir,
    );
    assert_eq!(code, 3);
    assert!(
        err.contains(&tenant.to_string()) && err.contains("wallet.owner"),
        "{err}"
    );

    // MEC-11: the node signs its consent; the owner registers with it where the operator key is
    // not (no OP_KEY), with a ceiling.
    let (code, out, err) = node(&["consent", "--valid-for", "1h"], dir);
    assert_eq!(code, 0, "{err}");
    let consent: ConsentFile = serde_json::from_str(&out).expect("consent JSON");
    assert_eq!(
        (consent.provider, consent.operator, consent.chain_id),
        (owner, operator, dev.info.chain_id)
    );
    std::fs::write(dir.join("consent.json"), &out).expect("write");
    let mut args = vec!["register", "--consent", "consent.json", "--ceiling", "50"];
    args.extend(wallet);
    let (code, out, err) = run(&args, dir, false);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("registered {owner} with operator {operator}"))
            && out.contains("ceiling 50 USDC"),
        "{out}"
    );
    let info = staking.providerInfo(owner).call().await.expect("info");
    assert_eq!(info.operator, operator);
    assert_eq!(info.collateralCeiling, U96::from(50 * USDC));
    assert_eq!(info.capacity.gpuClasses, consent.capacity.gpu_classes);
    assert_eq!(
        staking.providerOf(operator).call().await.expect("op"),
        owner
    );
    // A consent is one use: the same file again is refused before anything is sent.
    let (code, _, err) = run(&args, dir, false);
    assert_eq!(code, 3);
    assert!(err.contains("sign a new one"), "{err}");

    let (code, _, err) = node(&["check"], dir);
    assert_eq!(code, 3);
    assert!(
        err.contains("has no stake") && err.contains("gridlease-provider stake"),
        "{err}"
    );

    // Stake (approved on the way), then the node is ready.
    let before = usdc.balanceOf(owner).call().await.expect("balance");
    let mut args = vec!["stake", "40"];
    args.extend(wallet);
    let (code, out, err) = node(&args, dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("stake 40 USDC"), "{out}");
    assert_eq!(
        usdc.balanceOf(owner).call().await.expect("balance"),
        before - U256::from(40 * USDC)
    );
    let (code, out, err) = node(&["check"], dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("stake 40 USDC")
            && out.contains("collateral ceiling 50 USDC")
            && out.ends_with("ready\n"),
        "{out}"
    );

    // Registering again updates the record: the node's own key signs, no ceiling now.
    let mut args = vec!["register"];
    args.extend(wallet);
    let (code, out, err) = node(&args, dir);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("updated") && out.contains("ceiling all of the stake"),
        "{out}"
    );
    let info = staking.providerInfo(owner).call().await.expect("info");
    assert_eq!(
        (info.operator, info.collateralCeiling),
        (operator, U96::MAX)
    );

    // PD-06: no more than the free stake unbonds; the rest waits its unbonding period.
    let mut args = vec!["unbond", "100"];
    args.extend(wallet);
    let (code, _, err) = node(&args, dir);
    assert_eq!(code, 3);
    assert!(err.contains("only 40 USDC of the stake is free"), "{err}");
    let mut args = vec!["unbond", "15"];
    args.extend(wallet);
    let (code, out, err) = node(&args, dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("15 USDC unbonding") && out.contains("withdraw-stake"),
        "{out}"
    );
    let mut withdraw = vec!["withdraw-stake"];
    withdraw.extend(wallet);
    let (code, _, err) = node(&withdraw, dir);
    assert_eq!(code, 3);
    assert!(
        err.contains("is unbonding until") && err.contains("again then"),
        "{err}"
    );
    let period = staking.unbondingPeriod().call().await.expect("period");
    anvil::warp(&client.provider, period.to::<u64>() + 1)
        .await
        .expect("warp");
    let before = usdc.balanceOf(owner).call().await.expect("balance");
    let (code, out, err) = node(&withdraw, dir);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("15 USDC withdrawn to {owner}")),
        "{out}"
    );
    assert_eq!(
        usdc.balanceOf(owner).call().await.expect("balance"),
        before + U256::from(15 * USDC)
    );
    let (code, _, err) = node(&withdraw, dir);
    assert_eq!(code, 3);
    assert!(err.contains("nothing is unbonding"), "{err}");
    // PD-08: the operator key never signed for the owner.
    let sent = client
        .provider
        .get_transaction_count(operator)
        .await
        .expect("nonce");
    assert_eq!(sent, 0, "the operator key sent nothing");

    // The same node over WebSocket: anvil serves it on the same port.
    let http = format!("rpc = \"{}\"", dev.anvil.url());
    let ws = http.replace("http://", "ws://");
    let text = std::fs::read_to_string(dir.join("provider.toml")).expect("read");
    assert!(text.contains(&http));
    std::fs::write(dir.join("provider.toml"), text.replace(&http, &ws)).expect("write");
    let (code, out, err) = node(&["check"], dir);
    assert_eq!(code, 0, "over ws://: {out}{err}");
    assert!(out.ends_with("ready\n"), "{out}");

    let (code, out, err) = node(&["status"], dir);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("jobs       none yet"), "{out}");
    assert!(
        out.contains("stake      25 USDC (0 USDC locked in leases, 0 USDC unbonding)"),
        "{out}"
    );
    assert!(out.contains(" ETH for gas"), "{out}");
    assert!(out.contains("heartbeat  none yet"), "{out}");
    assert!(dir.join("data/state.db").exists());

    // A typo is named, with nothing else done.
    let bad = std::fs::read_to_string(dir.join("provider.toml"))
        .expect("read")
        .replace("max_concurrent", "max_concurent");
    std::fs::write(dir.join("provider.toml"), bad).expect("write");
    let (code, _, err) = node(&["check"], dir);
    assert_eq!(code, 3);
    assert!(err.contains("max_concurent"), "{err}");
}
