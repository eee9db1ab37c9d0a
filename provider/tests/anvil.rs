//! `gridlease-provider` against a real anvil: `init` writes a config that `check` accepts once
//! the provider is registered and staked, and before that `check` says exactly what to do.

use std::process::Command;

use alloy::{primitives::U256, signers::local::PrivateKeySigner};
use gridlease_bindings::{IStaking::Capacity, MockStablecoin, Staking};
use gridlease_core::chain::{Client, send};
use gridlease_deploy::{anvil::ANVIL_KEYS, deploy::mint, devnet};

const USDC: u128 = 1_000_000;

fn node(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
        .args(args)
        .current_dir(dir)
        .env("OP_KEY", ANVIL_KEYS[3])
        .output()
        .expect("gridlease-provider runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn init_then_check_guides_the_owner_until_ready_and_status_reads_the_chain() {
    let (anvil, gov, d) = devnet::market(0, None).await.expect("market on anvil");
    let dir = tempfile::tempdir().expect("tempdir");
    d.save(&dir.path().join("deployments.json")).expect("save");
    let owner: PrivateKeySigner = ANVIL_KEYS[2].parse().expect("key");
    let operator: PrivateKeySigner = ANVIL_KEYS[3].parse().expect("key");

    let (code, out, err) = node(&["init"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("wrote provider.toml"), "{out}");
    let (code, _, err) = node(&["init"], dir.path());
    assert_eq!(code, 3);
    assert!(err.contains("--force"), "{err}");
    // Point the sample at this chain, the operator key in the environment, this owner.
    let sample = std::fs::read_to_string(dir.path().join("provider.toml")).expect("read");
    let config = sample
        .lines()
        .filter(|l| !l.starts_with("keystore") && !l.starts_with("password"))
        .map(|l| match l {
            l if l.starts_with("rpc =") => format!("rpc = \"{}\"", anvil.url()),
            l if l.starts_with("owner =") => {
                format!(
                    "owner = \"{}\"\nprivate_key = \"env:OP_KEY\"",
                    owner.address()
                )
            }
            l => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("provider.toml"), config).expect("write");

    let (code, out, err) = node(&["check"], dir.path());
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("config     provider.toml is valid"), "{out}");
    assert!(
        err.contains("is not registered") && err.contains("Staking.register"),
        "{err}"
    );
    assert!(err.contains(&operator.address().to_string()), "{err}");

    // The owner registers the operator but stakes nothing yet.
    let staking = d.address("Staking").expect("staking");
    let usdc = d.token("USDC").expect("usdc").address;
    let o = Client::connect(&anvil.url(), Some(owner.clone()))
        .await
        .expect("connect");
    let st = Staking::new(staking, &o.provider);
    let cap = Capacity {
        gpuClasses: 1,
        gpuCount: 1,
        vramGiB: 0,
    };
    send(st.register(operator.address(), cap, "node".into()))
        .await
        .expect("register");
    let (code, _, err) = node(&["check"], dir.path());
    assert_eq!(code, 3);
    assert!(err.contains("has no stake"), "{err}");

    mint(&gov, usdc, owner.address(), 100 * USDC)
        .await
        .expect("mint");
    let token = MockStablecoin::new(usdc, &o.provider);
    send(token.approve(staking, U256::from(40 * USDC)))
        .await
        .expect("approve");
    send(st.stake(U256::from(40 * USDC))).await.expect("stake");
    let (code, out, err) = node(&["check"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("stake 40 USDC") && out.ends_with("ready\n"),
        "{out}"
    );

    // The same node over WebSocket: anvil serves it on the same port.
    let http = format!("rpc = \"{}\"", anvil.url());
    let ws = http.replace("http://", "ws://");
    let text = std::fs::read_to_string(dir.path().join("provider.toml")).expect("read");
    assert!(text.contains(&http));
    std::fs::write(dir.path().join("provider.toml"), text.replace(&http, &ws)).expect("write");
    let (code, out, err) = node(&["check"], dir.path());
    assert_eq!(code, 0, "over ws://: {out}{err}");
    assert!(out.ends_with("ready\n"), "{out}");

    let (code, out, err) = node(&["status"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("jobs       none yet"), "{out}");
    assert!(
        out.contains("stake      40 USDC (0 USDC locked in leases)"),
        "{out}"
    );
    assert!(out.contains(" ETH for gas"), "{out}");
    assert!(out.contains("heartbeat  none yet"), "{out}");
    assert!(dir.path().join("data/state.db").exists());

    // A typo is named, with nothing else done.
    let bad = std::fs::read_to_string(dir.path().join("provider.toml"))
        .expect("read")
        .replace("max_concurrent", "max_concurent");
    std::fs::write(dir.path().join("provider.toml"), bad).expect("write");
    let (code, _, err) = node(&["check"], dir.path());
    assert_eq!(code, 3);
    assert!(err.contains("max_concurent"), "{err}");
}
