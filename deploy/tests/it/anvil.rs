//! Deployment against a real anvil: CREATE2 addresses as predicted, idempotent re-runs, dry runs
//! that send nothing, parameter updates in place, the deployments file, and `cast` using the ABI
//! files we ship.

use std::{path::PathBuf, process::Command};

use alloy::{
    primitives::{B256, Bytes, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
};
use gridlease_bindings::{Market, MarketAdmin, MarketLens, Staking, Timelock};
use gridlease_chain::{Client, deployments::Deployments, send};
use gridlease_deploy::{
    anvil::{ANVIL_KEYS, Anvil, find_anvil},
    config::DeployConfig,
    deploy::{deploy, deploy_into, predict},
};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn client(anvil: &Anvil) -> Client {
    let key: PrivateKeySigner = ANVIL_KEYS[0].parse().expect("key");
    Client::connect(&anvil.url(), Some(key))
        .await
        .expect("connect")
}

#[tokio::test]
async fn deploys_to_predicted_addresses_once() {
    let anvil = Anvil::start(0, None).expect("anvil");
    let c = client(&anvil).await;
    let cfg = DeployConfig::devnet();
    let pred = predict(&cfg, c.from.expect("signer")).expect("predict");

    // Dry run: everything simulated, nothing on chain.
    let (_, dry) = deploy(&c, &cfg, None, true).await.expect("dry run");
    assert_eq!(dry.sent, 0);
    assert!(dry.lines.iter().any(|l| l.contains("would deploy")));
    assert!(
        c.provider
            .get_code_at(pred.market.0)
            .await
            .expect("code")
            .is_empty()
    );

    let (d, first) = deploy(&c, &cfg, None, false).await.expect("deploy");
    assert!(
        first.sent >= 6 + 5,
        "6 contracts and their configuration: {:?}",
        first.lines
    );
    assert_eq!(d.address("Market").expect("market"), pred.market.0);
    assert_eq!(d.address("MarketAdmin").expect("admin"), pred.admin.0);
    assert_eq!(d.address("Staking").expect("staking"), pred.staking.0);
    assert_eq!(d.address("Results").expect("results"), pred.results.0);
    assert_eq!(d.address("MarketLens").expect("lens"), pred.lens.0);
    assert_eq!(d.address("Timelock").expect("timelock"), pred.timelock.0);
    assert_eq!(d.tokens[0].address, pred.stake_token);
    let market = Market::new(pred.market.0, &c.provider);
    assert_eq!(
        market.staking().call().await.expect("staking"),
        pred.staking.0
    );
    let staking = Staking::new(pred.staking.0, &c.provider);
    assert_eq!(
        staking.market().call().await.expect("market"),
        pred.market.0
    );
    let p = market.params().call().await.expect("params");
    assert_eq!(
        (p.protocolFeeBps, p.keeperFeeBps, p.maxLeaseDuration),
        (
            cfg.protocol_fee_bps,
            cfg.keeper_fee_bps,
            cfg.max_lease_duration
        )
    );
    let lens = MarketLens::new(pred.lens.0, &c.provider);
    assert!(
        lens.tokenInfo(pred.stake_token)
            .call()
            .await
            .expect("token")
            .allowed
    );
    assert_eq!(
        lens.currentModule().call().await.expect("module").module,
        pred.results.0
    );
    // Governance is the Timelock, with the configured delay (GOV-01).
    assert_eq!(market.owner().call().await.expect("owner"), pred.timelock.0);
    assert_eq!(
        staking.owner().call().await.expect("owner"),
        pred.timelock.0
    );
    let tl = Timelock::new(pred.timelock.0, &c.provider);
    assert_eq!(
        tl.getMinDelay().call().await.expect("delay"),
        U256::from(cfg.timelock_delay)
    );

    // The file round-trips.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Deployments::default_path(dir.path(), c.chain_id);
    d.save(&path).expect("save");
    let loaded = Deployments::load(&path, c.chain_id).expect("load");
    assert_eq!(loaded, d);

    // A second run deploys and calls nothing, and keeps the recorded blocks.
    let (again, second) = deploy(&c, &cfg, Some(&loaded), false)
        .await
        .expect("re-run");
    assert_eq!(second.sent, 0, "{:?}", second.lines);
    assert_eq!(again, d);

    // A changed parameter is governance's: the tool says what to schedule (GOV-01).
    let mut changed = cfg.clone();
    changed.protocol_fee_bps = 250;
    let err = deploy(&c, &changed, Some(&loaded), false)
        .await
        .expect_err("owned by the timelock");
    assert!(
        format!("{err:#}").contains("schedule through the Timelock: Market.setParams"),
        "{err:#}"
    );
    // Through the Timelock it lands only after the delay.
    let mut params = market.params().call().await.expect("params");
    params.protocolFeeBps = 250;
    let data: Bytes = MarketAdmin::setParamsCall {
        params_: gridlease_bindings::admin::IMarket::Params {
            protocolFeeBps: params.protocolFeeBps,
            keeperFeeBps: params.keeperFeeBps,
            minPricePerSecond: params.minPricePerSecond,
            maxBidWindow: params.maxBidWindow,
            awardGrace: params.awardGrace,
            lowBalanceWindow: params.lowBalanceWindow,
            maxLeaseDuration: params.maxLeaseDuration,
            minBillingPeriod: params.minBillingPeriod,
            paused: params.paused,
            module: params.module,
        },
    }
    .abi_encode()
    .into();
    let delay = U256::from(cfg.timelock_delay);
    send(tl.schedule(
        pred.market.0,
        U256::ZERO,
        data.clone(),
        B256::ZERO,
        B256::ZERO,
        delay,
    ))
    .await
    .expect("schedule");
    let early = send(tl.execute(
        pred.market.0,
        U256::ZERO,
        data.clone(),
        B256::ZERO,
        B256::ZERO,
    ))
    .await;
    assert!(early.is_err(), "executed before the delay");
    gridlease_deploy::anvil::warp(&c.provider, cfg.timelock_delay)
        .await
        .expect("warp");
    send(tl.execute(pred.market.0, U256::ZERO, data, B256::ZERO, B256::ZERO))
        .await
        .expect("execute after the delay");
    assert_eq!(
        market.params().call().await.expect("params").protocolFeeBps,
        250
    );
    let (_, fourth) = deploy(&c, &changed, Some(&loaded), false)
        .await
        .expect("in step again");
    assert_eq!(fourth.sent, 0, "{:?}", fourth.lines);
}

#[tokio::test]
async fn governance_gets_the_timelock_and_the_deployer_keeps_nothing() {
    let anvil = Anvil::start(0, None).expect("anvil");
    let c = client(&anvil).await;
    let gov_key: PrivateKeySigner = ANVIL_KEYS[8].parse().expect("key");
    let governance = gov_key.address();
    let mut cfg = DeployConfig::devnet();
    cfg.owner = Some(governance);
    let (d, _) = deploy(&c, &cfg, None, false).await.expect("deploy");
    let (market_addr, staking_addr) = (
        d.address("Market").expect("m"),
        d.address("Staking").expect("s"),
    );
    let market = Market::new(market_addr, &c.provider);
    let timelock = d.address("Timelock").expect("timelock");
    assert_eq!(market.owner().call().await.expect("owner"), timelock);
    assert_eq!(
        Staking::new(staking_addr, &c.provider)
            .owner()
            .call()
            .await
            .expect("owner"),
        timelock
    );
    let tl = Timelock::new(timelock, &c.provider);
    let deployer = c.from.expect("signer");
    for role in [
        tl.PROPOSER_ROLE().call().await.expect("role"),
        tl.EXECUTOR_ROLE().call().await.expect("role"),
        tl.CANCELLER_ROLE().call().await.expect("role"),
    ] {
        assert!(tl.hasRole(role, governance).call().await.expect("role"));
        assert!(!tl.hasRole(role, deployer).call().await.expect("role"));
    }
    let admin = tl.DEFAULT_ADMIN_ROLE().call().await.expect("role");
    assert!(!tl.hasRole(admin, deployer).call().await.expect("role"));
    let (_, again) = deploy(&c, &cfg, Some(&d), false).await.expect("re-run");
    assert_eq!(again.sent, 0, "{:?}", again.lines);

    let mut changed = cfg.clone();
    changed.keeper_fee_bps = 50;
    let err = deploy(&c, &changed, Some(&d), false)
        .await
        .expect_err("not the owner");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("schedule through the Timelock: Market.setParams"),
        "{msg}"
    );

    // Another deployer key predicts other addresses (CREATE2 binds the deployer).
    let other: PrivateKeySigner = ANVIL_KEYS[7].parse().expect("key");
    let pred = predict(&cfg, other.address()).expect("predict");
    assert_ne!(pred.market.0, market_addr);
}

/// A re-run whose config changes what the market is created with (its fault horizon) is refused
/// before anything is sent: before, it deployed a second market, results module and lens, then
/// failed, as Staking takes its market once.
#[tokio::test]
async fn a_changed_fault_horizon_is_refused_before_a_second_market_is_deployed() {
    let anvil = Anvil::start(0, None).expect("anvil");
    let c = client(&anvil).await;
    let cfg = DeployConfig::devnet();
    let (d, _) = deploy(&c, &cfg, None, false).await.expect("deploy");
    let mut changed = cfg.clone();
    changed.fault_horizon += 86_400;
    let moved = predict(&changed, c.from.expect("signer")).expect("predict");
    assert_ne!(moved.market.0, d.address("Market").expect("market"));
    for dry in [true, false] {
        let err = deploy(&c, &changed, Some(&d), dry)
            .await
            .expect_err("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("market.fault_horizon") && msg.contains("nothing was sent"),
            "{msg}"
        );
    }
    let code = c.provider.get_code_at(moved.market.0).await.expect("code");
    assert!(code.is_empty(), "no second market deployed");
}

/// GOV-01: an owner named in the config only after the handover (the deployer kept the roles, and gave up
/// the Timelock's admin): the tool cannot grant it a role any more, so it refuses, sends nothing,
/// and the deployer keeps its roles. Before, it gave them up with no one granted: governance lost.
#[tokio::test]
async fn gov_01_an_owner_named_after_the_handover_is_refused_and_governance_is_not_given_up() {
    let anvil = Anvil::start(0, None).expect("anvil");
    let c = client(&anvil).await;
    let cfg = DeployConfig::devnet();
    let (d, _) = deploy(&c, &cfg, None, false).await.expect("deploy");
    let tl = Timelock::new(d.address("Timelock").expect("timelock"), &c.provider);
    let deployer = c.from.expect("signer");
    let roles = [
        tl.PROPOSER_ROLE().call().await.expect("role"),
        tl.EXECUTOR_ROLE().call().await.expect("role"),
        tl.CANCELLER_ROLE().call().await.expect("role"),
    ];
    let mut late = cfg.clone();
    let owner: PrivateKeySigner = ANVIL_KEYS[8].parse().expect("key");
    late.owner = Some(owner.address());
    for dry in [true, false] {
        let err = deploy(&c, &late, Some(&d), dry).await.expect_err("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("Timelock.grantRole") && msg.contains("nothing was sent"),
            "{msg}"
        );
    }
    for role in roles {
        assert!(
            tl.hasRole(role, deployer).call().await.expect("role"),
            "kept"
        );
        assert!(
            !tl.hasRole(role, owner.address())
                .call()
                .await
                .expect("role")
        );
    }
}

/// A deploy stopped between the Timelock's `schedule` and `execute` of the handover (a killed
/// process, a dropped connection) is finished by a re-run. Before, the re-run scheduled the same
/// operation again, which the Timelock refuses: the handover could not be completed by the tool.
#[tokio::test]
async fn gov_01_a_handover_stopped_between_schedule_and_execute_is_finished_by_a_re_run() {
    let anvil = Anvil::start(0, None).expect("anvil");
    let c = client(&anvil).await;
    let cfg = DeployConfig::devnet();
    let pred = predict(&cfg, c.from.expect("signer")).expect("predict");
    let p = c.provider.clone();
    let automine = |on: bool| {
        let p = p.clone();
        async move {
            let _: serde_json::Value = p
                .raw_request("evm_setAutomine".into(), (on,))
                .await
                .expect("automine");
        }
    };
    // Blocks are mined by hand, one for each transaction the tool sends, until the one it sends
    // is a `schedule`: the run is stopped there, and that transaction mined.
    automine(false).await;
    let run = {
        let (c, cfg) = (c.clone(), cfg.clone());
        tokio::spawn(async move { deploy(&c, &cfg, None, false).await.map(|_| ()) })
    };
    let schedule = Timelock::scheduleCall::SELECTOR;
    loop {
        assert!(
            !run.is_finished(),
            "the run ended before a schedule: {:?}",
            run.await
        );
        let pool: serde_json::Value = p
            .raw_request("txpool_content".into(), ())
            .await
            .expect("txpool");
        let sent: Vec<String> = pool["pending"]
            .as_object()
            .into_iter()
            .flat_map(|by_sender| by_sender.values())
            .flat_map(|by_nonce| by_nonce.as_object().into_iter().flat_map(|m| m.values()))
            .filter_map(|tx| tx["input"].as_str().map(str::to_owned))
            .collect();
        if sent
            .iter()
            .any(|input| input.starts_with(&alloy::hex::encode_prefixed(schedule)))
        {
            run.abort();
            let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.expect("mine");
            break;
        }
        if !sent.is_empty() {
            let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.expect("mine");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    automine(true).await;
    // Staking's handover is half done: offered to the Timelock, its acceptance scheduled.
    let staking = Staking::new(pred.staking.0, &c.provider);
    let deployer = c.from.expect("signer");
    assert_eq!(staking.owner().call().await.expect("owner"), deployer);
    assert_eq!(
        staking.pendingOwner().call().await.expect("pending"),
        pred.timelock.0
    );

    let (_, again) = deploy(&c, &cfg, None, false)
        .await
        .expect("the re-run finishes the handover");
    assert!(again.sent > 0, "{:?}", again.lines);
    let market = Market::new(pred.market.0, &c.provider);
    assert_eq!(
        staking.owner().call().await.expect("owner"),
        pred.timelock.0
    );
    assert_eq!(market.owner().call().await.expect("owner"), pred.timelock.0);
    let tl = Timelock::new(pred.timelock.0, &c.provider);
    assert_eq!(
        tl.getMinDelay().call().await.expect("delay"),
        U256::from(cfg.timelock_delay)
    );
    let (_, third) = deploy(&c, &cfg, None, false).await.expect("in step");
    assert_eq!(third.sent, 0, "{:?}", third.lines);
}

/// A deploy that fails after some contracts landed (here: a configured token that is not a token)
/// has written them, with their blocks, to the deployments file; the re-run keeps those blocks.
/// A contract found deployed with no file at all (a lost receipt, a killed run) gets its block
/// from the chain. Before, neither was recorded, and the block was 0: the daemons then read the
/// market's logs from the chain's first block.
#[tokio::test]
async fn a_failed_deploy_leaves_the_blocks_of_what_it_deployed() {
    let anvil = Anvil::start(0, None).expect("anvil");
    let c = client(&anvil).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = Deployments::default_path(dir.path(), c.chain_id);
    let mut broken = DeployConfig::devnet();
    broken.tokens.push(gridlease_deploy::config::TokenConfig {
        symbol: "DAI".into(),
        address: Some(
            ANVIL_KEYS[5]
                .parse::<PrivateKeySigner>()
                .expect("key")
                .address(),
        ),
        decimals: 18,
        permit: true,
    });
    let err = deploy_into(&c, &broken, None, false, Some(&path))
        .await
        .expect_err("not a token");
    assert!(
        format!("{err:#}").contains("does not answer decimals()"),
        "{err:#}"
    );
    let partial = Deployments::load(&path, c.chain_id).expect("written as it went");
    let market = partial.contracts.get("Market").expect("market recorded");
    let tx = market.tx_hash.expect("its transaction");
    let receipt = c
        .provider
        .get_transaction_receipt(tx)
        .await
        .expect("receipt")
        .expect("mined");
    assert_eq!(Some(market.block), receipt.block_number);
    assert_ne!(market.block, 0);

    let cfg = DeployConfig::devnet();
    let (d, _) = deploy_into(&c, &cfg, Some(&partial), false, Some(&path))
        .await
        .expect("re-run");
    assert_eq!(d.contracts["Market"], *market, "kept");
    for (name, first) in &partial.contracts {
        assert_eq!(d.contracts[name].block, first.block, "{name}");
    }
    // With no file, each block is found on chain.
    let (found, report) = deploy(&c, &cfg, None, false).await.expect("no file");
    assert_eq!(report.sent, 0, "{:?}", report.lines);
    for (name, first) in &partial.contracts {
        assert_eq!(found.contracts[name].block, first.block, "{name}");
        assert_eq!(found.contracts[name].tx_hash, None, "{name}");
    }
}

/// Every no-argument view of Market, Staking and Results answers through `cast` with signatures built from
/// the ABI files we ship in `target/abi/`.
#[tokio::test]
async fn cast_calls_with_the_shipped_abi() {
    let (anvil, _, d) = gridlease_deploy::devnet::market(0, None)
        .await
        .expect("market on anvil");
    let cast = find_anvil().expect("anvil").with_file_name("cast");
    let mut called = 0;
    for name in ["Market", "Staking", "Results", "MarketLens", "Timelock"] {
        let abi_path = root().join(&d.contracts[name].abi);
        let abi: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&abi_path).expect("abi file"))
                .expect("json");
        let entries = abi["abi"]
            .as_array()
            .or(abi.as_array())
            .expect("abi array")
            .clone();
        for f in entries {
            let views = f["type"] == "function"
                && f["stateMutability"] == "view"
                && f["inputs"].as_array().is_some_and(Vec::is_empty);
            let simple = f["outputs"]
                .as_array()
                .is_some_and(|o| o.iter().all(|x| x["type"] != "tuple"));
            if !views || !simple {
                continue;
            }
            let outs: Vec<String> = f["outputs"]
                .as_array()
                .expect("outputs")
                .iter()
                .map(|o| o["type"].as_str().expect("type").to_owned())
                .collect();
            let sig = format!(
                "{}()({})",
                f["name"].as_str().expect("name"),
                outs.join(",")
            );
            let out = Command::new(&cast)
                .args(["call", "--rpc-url", &anvil.url()])
                .arg(d.contracts[name].address.to_string())
                .arg(&sig)
                .output()
                .expect("cast runs");
            assert!(
                out.status.success(),
                "cast call {name}.{sig}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if name == "Market" && sig.starts_with("staking()") {
                let got = String::from_utf8_lossy(&out.stdout).trim().to_lowercase();
                assert_eq!(
                    got,
                    d.contracts["Staking"].address.to_string().to_lowercase()
                );
            }
            called += 1;
        }
    }
    assert!(called >= 10, "only {called} views found in the ABI files");
}

/// An anvil stopped with its chain saved and started again has the same chain (its blocks, a
/// transfer's effect), the same port and the same block time.
#[tokio::test]
async fn a_stopped_and_restarted_anvil_keeps_its_chain_port_and_block_time() {
    let anvil = Anvil::start(1, None).expect("anvil");
    let c = client(&anvil).await;
    let to = alloy::primitives::Address::repeat_byte(0x42);
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(to)
        .value(U256::from(7));
    let receipt = c
        .provider
        .send_transaction(tx)
        .await
        .expect("sent")
        .get_receipt()
        .await
        .expect("mined");
    let mined = receipt.block_number.expect("a block");
    let head = c.provider.get_block_number().await.expect("head");
    let hash = |n: u64| {
        let c = &c;
        async move {
            c.provider
                .get_block_by_number(n.into())
                .await
                .expect("block")
                .expect("the block exists")
                .header
                .hash
        }
    };
    let before = (hash(mined).await, hash(head).await);
    let url = anvil.url();

    let stopped = anvil.stop_saving().await.expect("stopped with its chain");
    assert!(
        c.provider.get_block_number().await.is_err(),
        "down while stopped"
    );
    let anvil = stopped.start().expect("started again");
    assert_eq!(anvil.url(), url, "the same port");
    assert_eq!(
        (hash(mined).await, hash(head).await),
        before,
        "the same chain"
    );
    assert_eq!(
        c.provider.get_balance(to).await.expect("balance"),
        U256::from(7)
    );
    // One block a second again, with no transaction to mine.
    let again = c.provider.get_block_number().await.expect("head");
    let t0 = std::time::Instant::now();
    while c.provider.get_block_number().await.expect("head") == again {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "no block mined after the restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
