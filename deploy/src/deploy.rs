//! Deterministic deployment of the suite through the standard CREATE2 deployment proxy, then
//! roles and parameters by setter calls, idempotently.
//!
//! Addresses depend on the salt, the deployer, the stake token and the market's fault horizon
//! (an immutable of MarketAdmin, which every contract after Staking reads): the contracts are
//! otherwise created with fixed bootstrap parameters and then configured, so changing a fee later
//! updates the same contracts instead of deploying new ones. A changed fault horizon would need a
//! new market, which Staking (bound to its market once) cannot take: it is refused before
//! anything is sent. Each step checks the chain first and does nothing when it is already done,
//! so a re-run sends no transaction.

use std::path::Path;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, address, aliases::U48, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::{SolCall, SolConstructor},
};
use anyhow::{Context, Result, bail};
use gridlease_bindings::{
    IMarket::Params,
    Market::{self, MarketInstance},
    MarketAdmin::{self, MarketAdminInstance},
    MarketLens, MockStablecoin, NoReturnToken, Results,
    Staking::{self, StakingInstance},
    Timelock::{self, TimelockInstance},
    admin,
};
use gridlease_chain::{
    Client, RECEIPT_PATIENCE, classify, classify_rpc,
    deployments::{Deployed, Deployments, TokenEntry},
    send, wait_receipt,
};

use crate::config::DeployConfig;

/// The deterministic-deployment proxy (Arachnid), present on anvil and most chains.
pub const CREATE2_FACTORY: Address = address!("4e59b44847b379578588920ca78fbf26c0b4956c");

/// What a run did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Report {
    /// One line per step, for people.
    pub lines: Vec<String>,
    /// Transactions sent.
    pub sent: usize,
}

impl Report {
    fn say(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// CREATE2 salt of contract `name` under namespace `salt`.
pub fn salt_of(salt: &str, name: &str) -> B256 {
    keccak256(format!("{salt}/{name}"))
}

/// Creation code plus constructor arguments.
fn initcode(code: &Bytes, args: Vec<u8>) -> Bytes {
    let mut v = code.to_vec();
    v.extend(args);
    v.into()
}

/// A mock token a config deploys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mock {
    /// The config's symbol.
    pub symbol: String,
    /// Its contract: `MockStablecoin` (EIP-2612 permit) or `NoReturnToken` (USDT-like).
    pub contract: &'static str,
    /// Where it deploys.
    pub address: Address,
    /// Its initcode.
    pub code: Bytes,
    /// Its CREATE2 salt.
    pub salt: B256,
}

/// The addresses a config deploys to from `deployer` (before any transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predicted {
    /// Mock tokens, in the config's order.
    pub mocks: Vec<Mock>,
    /// Staking.
    pub staking: (Address, Bytes, B256),
    /// MarketAdmin (the market's cold paths).
    pub admin: (Address, Bytes, B256),
    /// Market.
    pub market: (Address, Bytes, B256),
    /// Results (the results module).
    pub results: (Address, Bytes, B256),
    /// MarketLens (views).
    pub lens: (Address, Bytes, B256),
    /// Timelock (governance, owner of Market and Staking).
    pub timelock: (Address, Bytes, B256),
    /// Stake token.
    pub stake_token: Address,
}

/// Bootstrap values the immutable-free contracts are created with (so their addresses do not
/// depend on them): overwritten by the config right after.
const BOOTSTRAP_UNBONDING: u64 = 90 * 86_400;
const BOOTSTRAP_HEARTBEAT: u16 = 300;

/// Predict every address of `cfg` deployed by `deployer`.
pub fn predict(cfg: &DeployConfig, deployer: Address) -> Result<Predicted> {
    let mut mocks = Vec::new();
    for t in cfg.tokens.iter().filter(|t| t.address.is_none()) {
        // Both mocks take (name, symbol, decimals).
        let args = MockStablecoin::constructorCall {
            name_: format!("gridlease mock {}", t.symbol),
            symbol_: t.symbol.clone(),
            decimals_: t.decimals,
        }
        .abi_encode();
        let (contract, code) = if t.permit {
            ("MockStablecoin", initcode(&MockStablecoin::BYTECODE, args))
        } else {
            ("NoReturnToken", initcode(&NoReturnToken::BYTECODE, args))
        };
        let salt = salt_of(&cfg.salt, &format!("{contract}/{}", t.symbol));
        mocks.push(Mock {
            symbol: t.symbol.clone(),
            contract,
            address: CREATE2_FACTORY.create2(salt, keccak256(&code)),
            code,
            salt,
        });
    }
    let first = &cfg.tokens[0];
    let stake_token = match first.address {
        Some(a) => a,
        None => mocks[0].address,
    };
    let at = |name: &str, code: Bytes| {
        let salt = salt_of(&cfg.salt, name);
        (CREATE2_FACTORY.create2(salt, keccak256(&code)), code, salt)
    };
    let staking = at(
        "Staking",
        initcode(
            &Staking::BYTECODE,
            Staking::constructorCall {
                token: stake_token,
                owner_: deployer,
                treasury_: deployer,
                unbondingPeriod_: U48::from(BOOTSTRAP_UNBONDING),
                heartbeatPeriod_: BOOTSTRAP_HEARTBEAT,
            }
            .abi_encode(),
        ),
    );
    let admin = at(
        "MarketAdmin",
        initcode(
            &MarketAdmin::BYTECODE,
            MarketAdmin::constructorCall {
                staking_: staking.0,
                faultHorizon_: U256::from(cfg.fault_horizon),
            }
            .abi_encode(),
        ),
    );
    let market = at(
        "Market",
        initcode(
            &Market::BYTECODE,
            Market::constructorCall {
                staking_: staking.0,
                owner_: deployer,
                treasury_: deployer,
                admin_: admin.0,
            }
            .abi_encode(),
        ),
    );
    let results = at(
        "Results",
        initcode(
            &Results::BYTECODE,
            Results::constructorCall {
                market_: market.0,
                challengeWindow_: U48::from(cfg.challenge_window),
                startWindow_: cfg.start_window,
                staleGrace_: cfg.stale_grace,
                deadlineGrace_: cfg.deadline_grace,
                responseWindow_: cfg.response_window,
                challengeBond_: U256::from(cfg.challenge_bond),
                faultFeeBps_: cfg.fault_fee_bps,
                tenantPriority_: cfg.tenant_priority,
            }
            .abi_encode(),
        ),
    );
    let lens = at(
        "MarketLens",
        initcode(
            &MarketLens::BYTECODE,
            MarketLens::constructorCall { market_: market.0 }.abi_encode(),
        ),
    );
    // Created with no delay and the deployer as its only proposer, executor and admin: the deploy
    // hands Market and Staking over to it, sets the configured delay and roles, and renounces.
    let timelock = at(
        "Timelock",
        initcode(
            &Timelock::BYTECODE,
            Timelock::constructorCall {
                minDelay: U256::ZERO,
                proposers: vec![deployer],
                executors: vec![deployer],
                admin: deployer,
            }
            .abi_encode(),
        ),
    );
    Ok(Predicted {
        mocks,
        staking,
        admin,
        market,
        results,
        lens,
        timelock,
        stake_token,
    })
}

/// A suite already in place whose Staking is bound to another market than `pred`'s: the config
/// changed something the market is created with (`market.fault_horizon`, or the results windows
/// its default follows), which moves every address after Staking. Deploying would pay for a
/// second market, results module and lens, and then fail, as Staking takes its market once.
async fn refuse_a_second_market(client: &Client, pred: &Predicted) -> Result<()> {
    let p = &client.provider;
    if p.get_code_at(pred.staking.0)
        .await
        .map_err(classify_rpc)?
        .is_empty()
    {
        return Ok(());
    }
    let bound = Staking::new(pred.staking.0, p).market().call().await?;
    if bound != Address::ZERO && bound != pred.market.0 {
        bail!(
            "Staking ({}) is bound to the market at {bound}, but this config would deploy another \
             at {}: it changes what the market is created with (market.fault_horizon, or the \
             results windows its default follows). A deployed market keeps its fault horizon: \
             set market.fault_horizon to the deployed one, or deploy a new suite with another \
             salt; nothing was sent",
            pred.staking.0,
            pred.market.0
        );
    }
    Ok(())
}

/// Deploy (or check, or with `dry_run` only simulate) `cfg` with the client's signer.
/// `previous` is the existing deployments file, kept for block numbers of contracts found in place.
pub async fn deploy(
    client: &Client,
    cfg: &DeployConfig,
    previous: Option<&Deployments>,
    dry_run: bool,
) -> Result<(Deployments, Report)> {
    deploy_into(client, cfg, previous, dry_run, None).await
}

/// [`deploy`], writing the deployments file to `out` as each contract lands, before the next
/// transaction: a run that fails or is stopped later still leaves the block each contract was
/// deployed in, which a re-run keeps (the daemons read the market's logs from there). The file is
/// complete, tokens included, once this returns `Ok`; the caller writes that final version.
pub async fn deploy_into(
    client: &Client,
    cfg: &DeployConfig,
    previous: Option<&Deployments>,
    dry_run: bool,
    out: Option<&Path>,
) -> Result<(Deployments, Report)> {
    let deployer = client.sender()?;
    let p = &client.provider;
    let mut report = Report::default();
    let factory_code = p.get_code_at(CREATE2_FACTORY).await.map_err(classify_rpc)?;
    if factory_code.is_empty() {
        bail!(
            "chain {} has no deterministic-deployment proxy at {CREATE2_FACTORY}; deploy it first \
             (https://github.com/Arachnid/deterministic-deployment-proxy), it takes one pre-signed transaction",
            client.chain_id
        );
    }
    let pred = predict(cfg, deployer)?;
    refuse_a_second_market(client, &pred).await?;
    let mut rec = Recorder {
        d: Deployments {
            chain_id: client.chain_id,
            contracts: Default::default(),
            tokens: Vec::new(),
        },
        previous,
        out,
    };

    let dry = if dry_run { Mode::Dry } else { Mode::Send };
    for m in &pred.mocks {
        let deployed = create2(
            client,
            &format!("{} {}", m.contract, m.symbol),
            m.address,
            &m.code,
            m.salt,
            dry,
            &mut report,
        )
        .await?;
        let key = format!("{}{}", m.contract, m.symbol);
        rec.add(client, &mut report, (&key, m.contract), m.address, deployed)
            .await?;
    }
    // Each contract after the first reads the one before it in its constructor (MarketAdmin and
    // Market read Staking, Results and MarketLens read Market): in a dry run before that one
    // exists it cannot be simulated.
    let chain = [
        ("Staking", &pred.staking, None),
        ("MarketAdmin", &pred.admin, Some(pred.staking.0)),
        ("Market", &pred.market, Some(pred.admin.0)),
        ("Results", &pred.results, Some(pred.market.0)),
        ("MarketLens", &pred.lens, Some(pred.market.0)),
        ("Timelock", &pred.timelock, None),
    ];
    for (name, (addr, code, salt), needs) in chain {
        let mode = match needs {
            Some(dep) if dry_run && p.get_code_at(dep).await.map_err(classify_rpc)?.is_empty() => {
                Mode::Unsimulated
            }
            _ => dry,
        };
        let deployed = create2(client, name, *addr, code, *salt, mode, &mut report).await?;
        rec.add(client, &mut report, (name, name), *addr, deployed)
            .await?;
    }

    let mut d = rec.d;
    // Tokens: mocks from the prediction, existing ones checked on chain.
    for t in &cfg.tokens {
        let address = match t.address {
            Some(a) => a,
            None => pred
                .mocks
                .iter()
                .find(|m| m.symbol == t.symbol)
                .map(|m| m.address)
                .context("mock")?,
        };
        if t.address.is_some() {
            let token = MockStablecoin::new(address, p);
            let decimals = token.decimals().call().await.with_context(|| {
                format!("token {} at {address} does not answer decimals()", t.symbol)
            })?;
            if decimals != t.decimals {
                bail!(
                    "token {} at {address} has {decimals} decimals, the config says {}",
                    t.symbol,
                    t.decimals
                );
            }
        }
        d.tokens.push(TokenEntry {
            symbol: t.symbol.clone(),
            address,
            decimals: t.decimals,
        });
    }

    if dry_run
        && p.get_code_at(pred.market.0)
            .await
            .map_err(classify_rpc)?
            .is_empty()
    {
        report.say("would then configure roles, parameters and tokens from the config".into());
        return Ok((d, report));
    }
    configure(client, cfg, &pred, &d, dry_run, &mut report).await?;
    Ok((d, report))
}

/// The deployments file as a run fills it in.
struct Recorder<'a> {
    d: Deployments,
    /// The file the last run wrote.
    previous: Option<&'a Deployments>,
    /// Where each fresh deployment is written at once.
    out: Option<&'a Path>,
}

impl Recorder<'_> {
    /// Add contract `key` (ABI `abi`) at `address`. A fresh deployment gives its block and
    /// transaction, and the file is written at once. One found in place keeps what the previous
    /// file recorded for that address; else its block is found on chain ([`code_since`]).
    async fn add(
        &mut self,
        client: &Client,
        report: &mut Report,
        (key, abi): (&str, &str),
        address: Address,
        deployed: Option<(u64, B256)>,
    ) -> Result<()> {
        let known = self
            .previous
            .and_then(|p| p.contracts.get(key))
            .filter(|c| c.address == address && c.block != 0)
            .map(|c| (c.block, c.tx_hash));
        let (block, tx_hash) = match (deployed, known) {
            (Some((block, hash)), _) => (block, Some(hash)),
            (None, Some(known)) => known,
            (None, None) => match code_since(client, address).await {
                // Not deployed (a dry run).
                Since::Absent => (0, None),
                Since::Block(block) => {
                    report.say(format!("{key}: found deployed since block {block}"));
                    (block, None)
                }
                Since::Unknown => {
                    report.say(format!(
                        "{key}: found deployed, and the node keeps no state old enough to tell \
                         since which block: recorded as block 0, from which the daemons read its \
                         logs (set \"block\" in the deployments file if you know it)"
                    ));
                    (0, None)
                }
            },
        };
        self.d.contracts.insert(
            key.to_owned(),
            Deployed {
                address,
                block,
                tx_hash,
                abi: format!("target/abi/{abi}.json"),
            },
        );
        if let (Some(path), Some(_)) = (self.out, deployed) {
            // Until the run ends, the tokens are the ones the last complete run recorded.
            let mut partial = self.d.clone();
            if partial.tokens.is_empty() {
                partial.tokens = self.previous.map(|p| p.tokens.clone()).unwrap_or_default();
            }
            partial.save(path).with_context(|| {
                format!(
                    "deployed {key} at {address}, but cannot write {}",
                    path.display()
                )
            })?;
        }
        Ok(())
    }
}

/// Since when an address holds code.
enum Since {
    /// It holds none.
    Absent,
    /// The first block at whose end it did.
    Block(u64),
    /// The node answered no read of a past block's state (a full node keeps its last blocks
    /// only), or none at all.
    Unknown,
}

/// Since when `address` holds code: a bisection over `eth_getCode` at past blocks (some 25
/// reads for a chain of millions of blocks).
async fn code_since(client: &Client, address: Address) -> Since {
    let p = &client.provider;
    let has_code = |block: u64| async move {
        p.get_code_at(address)
            .number(block)
            .await
            .ok()
            .map(|code| !code.is_empty())
    };
    let Ok(mut hi) = client.head().await else {
        return Since::Unknown;
    };
    match has_code(hi).await {
        Some(true) => {}
        Some(false) => return Since::Absent,
        None => return Since::Unknown,
    }
    // Code at the end of `hi`; none before `lo`.
    let mut lo = 0;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match has_code(mid).await {
            Some(true) => hi = mid,
            Some(false) => lo = mid + 1,
            None => return Since::Unknown,
        }
    }
    Since::Block(hi)
}

/// How far [`create2`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Simulate and send.
    Send,
    /// Simulate only.
    Dry,
    /// Neither (dry run whose dependencies are not deployed yet).
    Unsimulated,
}

/// Deploy `code` at `addr` through the factory unless code is already there. Returns the block and
/// transaction of a fresh deployment.
async fn create2(
    client: &Client,
    name: &str,
    addr: Address,
    code: &Bytes,
    salt: B256,
    mode: Mode,
    report: &mut Report,
) -> Result<Option<(u64, B256)>> {
    let p = &client.provider;
    if !p.get_code_at(addr).await.map_err(classify_rpc)?.is_empty() {
        report.say(format!("{name}: already deployed at {addr}"));
        return Ok(None);
    }
    let mut data = salt.to_vec();
    data.extend_from_slice(code);
    let tx = TransactionRequest::default()
        .with_from(client.sender()?)
        .with_to(CREATE2_FACTORY)
        .with_input(Bytes::from(data));
    if mode == Mode::Unsimulated {
        report.say(format!(
            "{name}: would deploy at {addr} (simulated once its dependencies exist)"
        ));
        return Ok(None);
    }
    // The proxy returns the new address; a revert or a different address means the initcode fails.
    let out = p.call(tx.clone()).await.map_err(classify_rpc)?;
    if out.len() != 20 || Address::from_slice(&out) != addr {
        bail!("simulating the deployment of {name} did not create {addr} (constructor reverted?)");
    }
    if mode == Mode::Dry {
        report.say(format!("{name}: would deploy at {addr}"));
        return Ok(None);
    }
    let hash = *p
        .send_transaction(tx)
        .await
        .map_err(classify_rpc)?
        .tx_hash();
    let receipt = wait_receipt(p, hash, RECEIPT_PATIENCE)
        .await
        .with_context(|| format!("deploying {name}"))?;
    if !receipt.status() || p.get_code_at(addr).await.map_err(classify_rpc)?.is_empty() {
        bail!("deploying {name} failed (tx {})", receipt.transaction_hash);
    }
    report.sent += 1;
    report.say(format!(
        "{name}: deployed at {addr} (tx {})",
        receipt.transaction_hash
    ));
    Ok(Some((
        receipt.block_number.unwrap_or_default(),
        receipt.transaction_hash,
    )))
}

fn desired_params(cfg: &DeployConfig, current: &Params) -> Params {
    Params {
        protocolFeeBps: cfg.protocol_fee_bps,
        keeperFeeBps: cfg.keeper_fee_bps,
        minPricePerSecond: cfg.min_price_per_second,
        maxBidWindow: cfg.max_bid_window,
        awardGrace: cfg.award_grace,
        lowBalanceWindow: cfg.low_balance_window,
        maxLeaseDuration: cfg.max_lease_duration,
        minBillingPeriod: cfg.min_billing_period,
        paused: current.paused,
        module: current.module,
    }
}

/// `admin::IMarket::Params` (the admin binding's copy of the struct) of `p`.
fn admin_params(p: &Params) -> admin::IMarket::Params {
    admin::IMarket::Params {
        protocolFeeBps: p.protocolFeeBps,
        keeperFeeBps: p.keeperFeeBps,
        minPricePerSecond: p.minPricePerSecond,
        maxBidWindow: p.maxBidWindow,
        awardGrace: p.awardGrace,
        lowBalanceWindow: p.lowBalanceWindow,
        maxLeaseDuration: p.maxLeaseDuration,
        minBillingPeriod: p.minBillingPeriod,
        paused: p.paused,
        module: p.module,
    }
}

/// Bring roles, parameters, the results module and tokens to the config, one setter per
/// difference, then hand Market and Staking to the Timelock with the configured delay and roles.
async fn configure(
    client: &Client,
    cfg: &DeployConfig,
    pred: &Predicted,
    d: &Deployments,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    let deployer = client.sender()?;
    let p = &client.provider;
    let staking = Staking::new(pred.staking.0, p);
    let market = Market::new(pred.market.0, p);
    let admin = MarketAdmin::new(pred.market.0, p);
    let lens = MarketLens::new(pred.lens.0, p);
    let treasury = cfg.treasury.unwrap_or(deployer);

    let owners = (staking.owner().call().await?, market.owner().call().await?);
    let mine = owners == (deployer, deployer);

    let mut todo: Vec<(String, Step)> = Vec::new();
    if staking.market().call().await? != pred.market.0 {
        todo.push(("Staking.setMarket".into(), Step::SetMarket));
    }
    if staking.treasury().call().await? != treasury {
        todo.push((
            "Staking.setTreasury".into(),
            Step::StakingTreasury(treasury),
        ));
    }
    if lens.treasury().call().await? != treasury {
        todo.push(("Market.setTreasury".into(), Step::MarketTreasury(treasury)));
    }
    if staking.heartbeatPeriod().call().await? != cfg.heartbeat_period {
        todo.push((
            "Staking.setHeartbeatPeriod".into(),
            Step::HeartbeatPeriod(cfg.heartbeat_period),
        ));
    }
    let current = market.params().call().await?;
    let want = desired_params(cfg, &current);
    let period = staking.unbondingPeriod().call().await?.to::<u64>();
    // Keep maxLeaseDuration + 2 * faultHorizon < unbondingPeriod at every step: raise the period
    // before the lease limit, lower it after.
    if period != cfg.unbonding_period && cfg.unbonding_period > period {
        todo.push((
            "Staking.setUnbondingPeriod".into(),
            Step::Period(cfg.unbonding_period),
        ));
    }
    if current != want {
        todo.push(("Market.setParams".into(), Step::Params(want)));
    }
    if period != cfg.unbonding_period && cfg.unbonding_period < period {
        todo.push((
            "Staking.setUnbondingPeriod".into(),
            Step::Period(cfg.unbonding_period),
        ));
    }
    // A results module is immutable: other windows are another module, which binds new leases.
    if lens.currentModule().call().await?.module != pred.results.0 {
        todo.push(("Market.addModule".into(), Step::AddModule(pred.results.0)));
    }
    for t in &d.tokens {
        let info = lens.tokenInfo(t.address).call().await?;
        if !info.allowed {
            todo.push((
                format!("Market.configureToken({})", t.symbol),
                Step::Token(t.address),
            ));
        }
    }
    if !todo.is_empty() {
        if !mine {
            let names: Vec<&str> = todo.iter().map(|(n, _)| n.as_str()).collect();
            bail!(
                "the contracts are owned by {} / {} (the Timelock), not the deployer {deployer}; \
                 governance must schedule through the Timelock: {}",
                owners.0,
                owners.1,
                names.join(", ")
            );
        }
        for (name, step) in todo {
            if dry_run {
                report.say(format!("would call {name}"));
                continue;
            }
            step.run(&staking, &admin, pred.market.0).await?;
            report.sent += 1;
            report.say(format!("called {name}"));
        }
    } else {
        report.say("roles, parameters, results module and tokens: as configured".into());
    }
    govern(client, cfg, pred, dry_run, report).await
}

/// Hand Market and Staking to the Timelock (Ownable2Step: the Timelock accepts through its own,
/// still zero, delay), give the configured owner its roles, set the delay, and have the deployer
/// renounce what it should not keep. Each step only when not done.
async fn govern(
    client: &Client,
    cfg: &DeployConfig,
    pred: &Predicted,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    let deployer = client.sender()?;
    let p = &client.provider;
    let staking = Staking::new(pred.staking.0, p);
    let market = Market::new(pred.market.0, p);
    let tl = Timelock::new(pred.timelock.0, p);
    let owner = cfg.owner.unwrap_or(deployer);
    let admin_role = tl.DEFAULT_ADMIN_ROLE().call().await?;
    let deployer_admin = tl.hasRole(admin_role, deployer).call().await?;
    let mut steps: Vec<(String, Gov)> = Vec::new();
    for (name, target, o, pending) in [
        (
            "Staking",
            pred.staking.0,
            staking.owner().call().await?,
            staking.pendingOwner().call().await?,
        ),
        (
            "Market",
            pred.market.0,
            market.owner().call().await?,
            market.pendingOwner().call().await?,
        ),
    ] {
        if o == deployer && pending != pred.timelock.0 {
            steps.push((
                format!("{name}.transferOwnership(Timelock)"),
                Gov::Transfer(target),
            ));
        }
        if o != pred.timelock.0 {
            steps.push((
                format!("Timelock: {name}.acceptOwnership"),
                Gov::Accept(target),
            ));
        }
    }
    let roles = [
        tl.PROPOSER_ROLE().call().await?,
        tl.EXECUTOR_ROLE().call().await?,
        tl.CANCELLER_ROLE().call().await?,
    ];
    if owner != deployer {
        let mut missing = Vec::new();
        for role in roles {
            if tl.hasRole(role, owner).call().await? {
                continue;
            }
            if deployer_admin {
                steps.push((
                    format!("Timelock.grantRole({role}, owner)"),
                    Gov::Grant(role, owner),
                ));
            } else {
                missing.push(role);
            }
        }
        // Handed over already (the deployer gave up the Timelock's admin role): this tool can no
        // longer grant the owner a role, and must not give up the deployer's own, or no one would
        // be left to propose or execute.
        if !missing.is_empty() {
            bail!(
                "the config names owner {owner}, but the Timelock ({}) was handed over without it: \
                 its roles are held by others and this tool can no longer grant them; nothing was \
                 sent. Have governance schedule Timelock.grantRole for {owner} (roles {}), or \
                 remove [roles] owner from the config",
                pred.timelock.0,
                missing
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let delay = tl.getMinDelay().call().await?.to::<u64>();
    if delay != cfg.timelock_delay && delay == 0 {
        steps.push((
            format!("Timelock.updateDelay({} s)", cfg.timelock_delay),
            Gov::Delay(cfg.timelock_delay),
        ));
    }
    if owner != deployer {
        for role in roles {
            if tl.hasRole(role, deployer).call().await? {
                steps.push((
                    format!("Timelock.renounceRole({role})"),
                    Gov::Renounce(role),
                ));
            }
        }
    }
    if deployer_admin {
        steps.push((
            "Timelock.renounceRole(admin)".into(),
            Gov::Renounce(admin_role),
        ));
    }
    if steps.is_empty() {
        if delay != cfg.timelock_delay {
            report.say(format!(
                "the Timelock's delay is {delay} s, the config says {} s: governance must schedule \
                 Timelock.updateDelay",
                cfg.timelock_delay
            ));
        } else {
            report.say(format!(
                "governance: the Timelock ({}) owns Market and Staking, delay {delay} s",
                pred.timelock.0
            ));
        }
        return Ok(());
    }
    for (name, step) in steps {
        if dry_run {
            report.say(format!("would {name}"));
            continue;
        }
        step.run(&tl, &staking, &market, deployer).await?;
        report.sent += 1;
        report.say(name);
    }
    Ok(())
}

/// One governance-handover step.
enum Gov {
    Transfer(Address),
    Accept(Address),
    Grant(B256, Address),
    Delay(u64),
    Renounce(B256),
}

impl Gov {
    async fn run<P: Provider>(
        self,
        tl: &TimelockInstance<P>,
        staking: &StakingInstance<P>,
        market: &MarketInstance<P>,
        deployer: Address,
    ) -> Result<()> {
        // An operation through the Timelock while its delay is still zero: schedule, execute.
        // A run stopped between the two left it scheduled (and, at delay zero, ready), which
        // the Timelock refuses to schedule again: it is executed.
        let through = |target: Address, data: Bytes| async move {
            let salt = keccak256(&data);
            let id = tl
                .hashOperation(target, U256::ZERO, data.clone(), B256::ZERO, salt)
                .call()
                .await
                .map_err(classify)?;
            if !tl.isOperationPending(id).call().await.map_err(classify)? {
                send(tl.schedule(
                    target,
                    U256::ZERO,
                    data.clone(),
                    B256::ZERO,
                    salt,
                    U256::ZERO,
                ))
                .await?;
            }
            send(tl.execute(target, U256::ZERO, data, B256::ZERO, salt)).await
        };
        let accept: Bytes = Market::acceptOwnershipCall {}.abi_encode().into();
        let r = match self {
            Self::Transfer(t) if t == *staking.address() => {
                send(staking.transferOwnership(*tl.address())).await
            }
            Self::Transfer(_) => send(market.transferOwnership(*tl.address())).await,
            Self::Accept(t) => through(t, accept).await,
            Self::Grant(role, who) => send(tl.grantRole(role, who)).await,
            Self::Delay(secs) => {
                let data: Bytes = Timelock::updateDelayCall {
                    newDelay: U256::from(secs),
                }
                .abi_encode()
                .into();
                through(*tl.address(), data).await
            }
            Self::Renounce(role) => send(tl.renounceRole(role, deployer)).await,
        };
        r.map(|_| ()).map_err(Into::into)
    }
}

enum Step {
    SetMarket,
    AddModule(Address),
    StakingTreasury(Address),
    MarketTreasury(Address),
    HeartbeatPeriod(u16),
    Period(u64),
    Params(Params),
    Token(Address),
}

impl Step {
    async fn run<P: Provider>(
        self,
        staking: &StakingInstance<P>,
        admin: &MarketAdminInstance<P>,
        market_addr: Address,
    ) -> Result<()> {
        let r = match self {
            Self::SetMarket => send(staking.setMarket(market_addr)).await,
            Self::AddModule(r) => send(admin.addModule(r)).await,
            Self::StakingTreasury(t) => send(staking.setTreasury(t)).await,
            Self::MarketTreasury(t) => send(admin.setTreasury(t)).await,
            Self::HeartbeatPeriod(p) => send(staking.setHeartbeatPeriod(p)).await,
            Self::Period(s) => send(staking.setUnbondingPeriod(U48::from(s))).await,
            Self::Params(p) => send(admin.setParams(admin_params(&p))).await,
            Self::Token(t) => send(admin.configureToken(t, true)).await,
        };
        r.map(|_| ()).map_err(Into::into)
    }
}

/// Mint `amount` of a mock token to `to` (devnet only: the mock lets anyone mint).
pub async fn mint(client: &Client, token: Address, to: Address, amount: u128) -> Result<()> {
    let t = MockStablecoin::new(token, &client.provider);
    send(t.mint(to, U256::from(amount))).await?;
    Ok(())
}

/// Load `deployments/<chainId>.json` under `root` if it exists.
pub fn load_previous(root: &Path, chain_id: u64) -> Option<Deployments> {
    Deployments::load(&Deployments::default_path(root, chain_id), chain_id).ok()
}
