//! Deterministic deployment of the suite through the standard CREATE2 deployment proxy, then
//! roles and parameters by setter calls, idempotently.
//!
//! Addresses depend only on the salt, the deployer and the stake token: the contracts are created
//! with fixed bootstrap parameters and then configured, so changing a fee later updates the same
//! contracts instead of deploying new ones. Each step checks the chain first and does nothing
//! when it is already done, so a re-run sends no transaction.

use std::path::Path;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256, address, aliases::U48, keccak256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolConstructor,
};
use anyhow::{Context, Result, bail};
use gridlease_bindings::{
    IMarket::Params,
    Market::{self, MarketInstance},
    MockStablecoin, Results,
    Staking::{self, StakingInstance},
};
use gridlease_core::{
    chain::{Client, classify_rpc, send},
    deployments::{Deployed, Deployments, TokenEntry},
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

/// The addresses a config deploys to from `deployer` (before any transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Predicted {
    /// Mock tokens by symbol and their initcode.
    pub mocks: Vec<(String, Address, Bytes, B256)>,
    /// Staking.
    pub staking: (Address, Bytes, B256),
    /// Market.
    pub market: (Address, Bytes, B256),
    /// Results.
    pub results: (Address, Bytes, B256),
    /// Stake token.
    pub stake_token: Address,
}

/// Bootstrap market parameters: valid for any staking, overwritten by the config right after.
fn bootstrap_params() -> Params {
    Params {
        protocolFeeBps: 0,
        keeperFeeBps: 0,
        minPricePerSecond: 1,
        maxBidWindow: 3_600,
        awardGrace: 3_600,
        lowBalanceWindow: 0,
        maxLeaseDuration: 3_600,
        paused: false,
    }
}

/// Predict every address of `cfg` deployed by `deployer`.
pub fn predict(cfg: &DeployConfig, deployer: Address) -> Result<Predicted> {
    let mut mocks = Vec::new();
    for t in cfg.tokens.iter().filter(|t| t.address.is_none()) {
        let args = MockStablecoin::constructorCall {
            name_: format!("gridlease mock {}", t.symbol),
            symbol_: t.symbol.clone(),
            decimals_: t.decimals,
        };
        let code = initcode(&MockStablecoin::BYTECODE, args.abi_encode());
        let salt = salt_of(&cfg.salt, &format!("MockStablecoin/{}", t.symbol));
        mocks.push((
            t.symbol.clone(),
            CREATE2_FACTORY.create2(salt, keccak256(&code)),
            code,
            salt,
        ));
    }
    let first = &cfg.tokens[0];
    let stake_token = match first.address {
        Some(a) => a,
        None => mocks[0].1,
    };
    let s_args = Staking::constructorCall {
        token: stake_token,
        owner_: deployer,
        treasury_: deployer,
        unbondingPeriod_: U48::from(90 * 86_400u64),
        reporterBps_: 0,
    };
    let s_code = initcode(&Staking::BYTECODE, s_args.abi_encode());
    let s_salt = salt_of(&cfg.salt, "Staking");
    let staking = CREATE2_FACTORY.create2(s_salt, keccak256(&s_code));
    let m_args = Market::constructorCall {
        staking_: staking,
        owner_: deployer,
        treasury_: deployer,
        params_: bootstrap_params(),
    };
    let m_code = initcode(&Market::BYTECODE, m_args.abi_encode());
    let m_salt = salt_of(&cfg.salt, "Market");
    let market = CREATE2_FACTORY.create2(m_salt, keccak256(&m_code));
    let r_args = Results::constructorCall {
        market_: market,
        challengeWindow_: U48::from(cfg.challenge_window),
        startWindow_: cfg.start_window,
        staleGrace_: cfg.stale_grace,
    };
    let r_code = initcode(&Results::BYTECODE, r_args.abi_encode());
    let r_salt = salt_of(&cfg.salt, "Results");
    let results = CREATE2_FACTORY.create2(r_salt, keccak256(&r_code));
    Ok(Predicted {
        mocks,
        staking: (staking, s_code, s_salt),
        market: (market, m_code, m_salt),
        results: (results, r_code, r_salt),
        stake_token,
    })
}

/// Deploy (or check, or with `dry_run` only simulate) `cfg` with the client's signer.
/// `previous` is the existing deployments file, kept for block numbers of contracts found in place.
pub async fn deploy(
    client: &Client,
    cfg: &DeployConfig,
    previous: Option<&Deployments>,
    dry_run: bool,
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
    let mut d = Deployments {
        chain_id: client.chain_id,
        contracts: Default::default(),
        tokens: Vec::new(),
    };

    let dry = if dry_run { Mode::Dry } else { Mode::Send };
    for (symbol, addr, code, salt) in &pred.mocks {
        let deployed = create2(
            client,
            &format!("MockStablecoin {symbol}"),
            *addr,
            code,
            *salt,
            dry,
            &mut report,
        )
        .await?;
        record(
            &mut d,
            previous,
            &format!("MockStablecoin{symbol}"),
            *addr,
            deployed,
            "MockStablecoin",
        );
    }
    // Each contract after the first reads the one before it in its constructor (Market reads
    // Staking, Results reads Market): in a dry run before that one exists it cannot be simulated.
    let chain = [
        ("Staking", &pred.staking, None),
        ("Market", &pred.market, Some(pred.staking.0)),
        ("Results", &pred.results, Some(pred.market.0)),
    ];
    for (name, (addr, code, salt), needs) in chain {
        let mode = match needs {
            Some(dep) if dry_run && p.get_code_at(dep).await.map_err(classify_rpc)?.is_empty() => {
                Mode::Unsimulated
            }
            _ => dry,
        };
        let deployed = create2(client, name, *addr, code, *salt, mode, &mut report).await?;
        record(&mut d, previous, name, *addr, deployed, name);
    }

    // Tokens: mocks from the prediction, existing ones checked on chain.
    for t in &cfg.tokens {
        let address = match t.address {
            Some(a) => a,
            None => pred
                .mocks
                .iter()
                .find(|m| m.0 == t.symbol)
                .map(|m| m.1)
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

fn record(
    d: &mut Deployments,
    previous: Option<&Deployments>,
    key: &str,
    address: Address,
    deployed: Option<(u64, B256)>,
    abi: &str,
) {
    let (block, tx_hash) = match deployed {
        Some((block, hash)) => (block, Some(hash)),
        None => previous
            .and_then(|p| p.contracts.get(key))
            .filter(|c| c.address == address)
            .map_or((0, None), |c| (c.block, c.tx_hash)),
    };
    d.contracts.insert(
        key.to_owned(),
        Deployed {
            address,
            block,
            tx_hash,
            abi: format!("target/abi/{abi}.json"),
        },
    );
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
    let receipt = p
        .send_transaction(tx)
        .await
        .map_err(classify_rpc)?
        .get_receipt()
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

fn desired_params(cfg: &DeployConfig, paused: bool) -> Params {
    Params {
        protocolFeeBps: cfg.protocol_fee_bps,
        keeperFeeBps: cfg.keeper_fee_bps,
        minPricePerSecond: cfg.min_price_per_second,
        maxBidWindow: cfg.max_bid_window,
        awardGrace: cfg.award_grace,
        lowBalanceWindow: cfg.low_balance_window,
        maxLeaseDuration: cfg.max_lease_duration,
        paused,
    }
}

/// Bring roles, parameters and tokens to the config, one setter per difference.
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
    if market.results().call().await? != pred.results.0 {
        todo.push(("Market.setResults".into(), Step::SetResults(pred.results.0)));
    }
    if market.treasury().call().await? != treasury {
        todo.push(("Market.setTreasury".into(), Step::MarketTreasury(treasury)));
    }
    // The heartbeat period is global; any address's liveness carries it.
    if staking.liveness(deployer).call().await?.period != cfg.heartbeat_period {
        todo.push((
            "Staking.setHeartbeatPeriod".into(),
            Step::HeartbeatPeriod(cfg.heartbeat_period),
        ));
    }
    if staking.reporterBps().call().await? != cfg.reporter_bps {
        todo.push((
            "Staking.setReporterBps".into(),
            Step::ReporterBps(cfg.reporter_bps),
        ));
    }
    let current = market.params().call().await?;
    let want = desired_params(cfg, current.paused);
    let period = staking.unbondingPeriod().call().await?.to::<u64>();
    let params_differ = current != want;
    // Keep maxLeaseDuration <= unbonding / 2 at every step: raise the period before the lease
    // limit, lower it after.
    if period != cfg.unbonding_period && cfg.unbonding_period > period {
        todo.push((
            "Staking.setUnbondingPeriod".into(),
            Step::Period(cfg.unbonding_period),
        ));
    }
    if params_differ {
        todo.push(("Market.setParams".into(), Step::Params(want)));
    }
    if period != cfg.unbonding_period && cfg.unbonding_period < period {
        todo.push((
            "Staking.setUnbondingPeriod".into(),
            Step::Period(cfg.unbonding_period),
        ));
    }
    for t in &d.tokens {
        let info = market.tokenInfo(t.address).call().await?;
        if !info.allowed {
            todo.push((
                format!("Market.configureToken({})", t.symbol),
                Step::Token(t.address),
            ));
        }
    }
    if let Some(owner) = cfg.owner.filter(|o| *o != deployer) {
        if staking.owner().call().await? == deployer
            && staking.pendingOwner().call().await? != owner
        {
            todo.push((
                "Staking.transferOwnership".into(),
                Step::StakingOwner(owner),
            ));
        }
        if market.owner().call().await? == deployer && market.pendingOwner().call().await? != owner
        {
            todo.push(("Market.transferOwnership".into(), Step::MarketOwner(owner)));
        }
    }
    if todo.is_empty() {
        report.say("roles, parameters and tokens: as configured".into());
        return Ok(());
    }
    if !mine {
        let names: Vec<&str> = todo.iter().map(|(n, _)| n.as_str()).collect();
        bail!(
            "the contracts are owned by {} / {}, not the deployer {deployer}; governance must call: {}",
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
        step.run(&staking, &market, pred.market.0).await?;
        report.sent += 1;
        report.say(format!("called {name}"));
    }
    Ok(())
}

enum Step {
    SetMarket,
    SetResults(Address),
    StakingTreasury(Address),
    MarketTreasury(Address),
    ReporterBps(u16),
    HeartbeatPeriod(u16),
    Period(u64),
    Params(Params),
    Token(Address),
    StakingOwner(Address),
    MarketOwner(Address),
}

impl Step {
    async fn run<P: Provider>(
        self,
        staking: &StakingInstance<P>,
        market: &MarketInstance<P>,
        market_addr: Address,
    ) -> Result<()> {
        let r = match self {
            Self::SetMarket => send(staking.setMarket(market_addr)).await,
            Self::SetResults(r) => send(market.setResults(r)).await,
            Self::StakingTreasury(t) => send(staking.setTreasury(t)).await,
            Self::MarketTreasury(t) => send(market.setTreasury(t)).await,
            Self::ReporterBps(b) => send(staking.setReporterBps(b)).await,
            Self::HeartbeatPeriod(p) => send(staking.setHeartbeatPeriod(p)).await,
            Self::Period(s) => send(staking.setUnbondingPeriod(U48::from(s))).await,
            Self::Params(p) => send(market.setParams(p)).await,
            Self::Token(t) => send(market.configureToken(t, true)).await,
            Self::StakingOwner(o) => send(staking.transferOwnership(o)).await,
            Self::MarketOwner(o) => send(market.transferOwnership(o)).await,
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
