//! The running keeper.
//!
//! Every `chain.poll_ms`: read the head (and the results modules, when governance added one),
//! collect new market, results-module and staking logs from the saved cursor (paged,
//! reorg-aware: [`crate::collect`]) into the [`View`], committed to SQLite with the cursor per
//! page; read what the strategies need beyond logs (the liveness of providers with service
//! leases), and the signed bids provider nodes serve for auctions in their window
//! ([`crate::bids`]); [`plan`]; and hand each work item to a task that checks, simulates and
//! prices it, decides and sends it ([`crate::execute`]) through the shared [`TxManager`]
//! (journaled before broadcast, watched, rebroadcast, fee-bumped: [`crate::send`]). An id with work in flight is not planned again until the
//! logs of its transaction were read, so the keeper never pays twice for one piece of work; a
//! simulation that shows someone else did it first drops the work (KB-02).
//!
//! A challenge carries its bond as the transaction's value, which the shared transaction
//! manager cannot send yet: `send::send_bonded` signs it at the chain's pending nonce while every
//! other send of the keeper waits, and keeps them waiting until it is mined, so the manager's
//! next transaction cannot take its nonce (it re-reads the nonce on "nonce too low", OFF-06).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use alloy::{
    eips::BlockNumberOrTag,
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::Provider,
};
use anyhow::{Context, Result};
use gridlease_bindings::{MarketAdmin, MarketLens, Results, Staking};
use gridlease_chain::{ChainError, Client, classify, classify_rpc};
use gridlease_daemon::{
    Backoff, lock,
    txm::{Signed, TxManager, TxPolicy},
};
use gridlease_fetch::{Fetcher, Limits};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    check,
    collect::{collect, inputs, learn_tokens},
    config::{Config, L1Fee},
    execute::execute,
    metrics::Metrics,
    send::{watch, withdraw},
    shared::{Busy, CHECKS_AT_ONCE, ITenantPriority, Keeper, OP_GAS_ORACLE},
    store::Store,
    strategy::{Action, Clock, ModuleParams, plan},
    unix_now,
};

/// The stagger, in polls: each keeper waits between 0 and this many polls (a point drawn from a
/// hash of the work's id and its own address, not a slot) before taking a piece of work, so
/// keepers that find the same work at the same time rarely race for it: the later one's
/// simulation, on the pending block, sees the earlier one's transaction (KB-02). Two keepers
/// only race when their points fall within the few milliseconds between a simulation and its
/// transaction reaching the node.
const STAGGER_POLLS: u32 = 12;

fn stagger(id: B256, keeper: Address, poll: Duration) -> Duration {
    let h = alloy::primitives::keccak256([id.as_slice(), keeper.as_slice()].concat());
    let point = u32::from(u16::from_be_bytes([h[0], h[1]]));
    (poll * STAGGER_POLLS) * point / 65_536
}

/// Start the keeper and run until a signal.
pub async fn run(cfg: Config) -> Result<()> {
    let k = Arc::new(start(cfg).await?);
    let listener = tokio::net::TcpListener::bind(k.cfg.listen)
        .await
        .with_context(|| format!("http.listen {}: cannot bind", k.cfg.listen))?;
    let app = crate::http::router(k.clone());
    let stop_http = k.stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop_http.cancelled().await })
            .await
    });
    gridlease_daemon::on_signals(k.stop.clone());
    resume(&k)?;
    // OFF-20: the key's balance, read every 30 polls; below `wallet.low_balance` unpaid work is
    // shed (a warning says so once).
    let k2 = k.clone();
    tokio::spawn(async move {
        let poll = Duration::from_millis(k2.cfg.poll_ms);
        k2.tx.watch_balance(poll, &k2.stop, |_| {}).await;
    });
    // The first tick at once (a restarted keeper catches up first), then every poll.
    let backoff = Backoff::new(
        Duration::from_millis(k.cfg.poll_ms),
        Duration::from_secs(10),
    );
    gridlease_daemon::poll(
        &k.stop,
        backoff,
        || tick(&k),
        |e: &ChainError, retry| {
            k.metrics.rpc_errors.increment(1);
            warn!(error = %e, retry_in_ms = retry.as_millis() as u64, "chain poll failed; catching up when it answers");
        },
    )
    .await;
    // In-flight transactions are journaled: give them a moment to be mined, then leave (a restart
    // watches what is still pending).
    info!(
        in_flight = k.in_flight.load(Relaxed),
        "stopping: no new work"
    );
    if !gridlease_daemon::drain(&k.tracker, Duration::from_secs(20)).await {
        warn!("leaving transactions in flight; the next start watches them");
    }
    persist_counters(&k);
    let _ = http.await;
    info!("stopped");
    Ok(())
}

/// The results modules `lens` lists that `known` lacks, with their windows and prices (the
/// immutables of each module contract).
async fn new_modules(
    client: &Client,
    lens: Address,
    known: &HashMap<u8, ModuleParams>,
) -> Result<Vec<(u8, ModuleParams)>, ChainError> {
    let p = &client.provider;
    let count = MarketLens::new(lens, p)
        .moduleCount()
        .call()
        .await
        .map_err(classify)?;
    let mut out = Vec::new();
    for id in 1..=count {
        if known.contains_key(&id) {
            continue;
        }
        let address = MarketLens::new(lens, p)
            .module(id)
            .call()
            .await
            .map_err(classify)?
            .module;
        let r = Results::new(address, p);
        out.push((
            id,
            ModuleParams {
                address,
                start_window: u64::from(r.startWindow().call().await.map_err(classify)?),
                challenge_window: r.challengeWindow().call().await.map_err(classify)?.to(),
                deadline_grace: u64::from(r.deadlineGrace().call().await.map_err(classify)?),
                response_window: u64::from(r.responseWindow().call().await.map_err(classify)?),
                stale_grace: u64::from(r.staleGrace().call().await.map_err(classify)?),
                challenge_bond: r.challengeBond().call().await.map_err(classify)?.to(),
                fault_fee_bps: r.faultFeeBps().call().await.map_err(classify)?,
                tenant_priority: tenant_priority(client, address).await?,
            },
        ));
    }
    Ok(out)
}

/// A module's `tenantPriority`, 0 for a module without one (it reverts, having no such function).
async fn tenant_priority(client: &Client, module: Address) -> Result<u64, ChainError> {
    match ITenantPriority::new(module, &client.provider)
        .tenantPriority()
        .call()
        .await
        .map_err(classify)
    {
        Ok(p) => Ok(u64::from(p)),
        Err(ChainError::Revert(_)) => Ok(0),
        Err(e) => Err(e),
    }
}

async fn start(cfg: Config) -> Result<Keeper> {
    let signer = cfg
        .wallet
        .load()
        .context("wallet: the keeper key cannot be loaded")?;
    let client = Client::connect_with_fallback(&cfg.rpc, cfg.fallback_rpc.as_deref(), None).await?;
    let d = gridlease_daemon::deployment(&client, &cfg.deployments)
        .await
        .map_err(anyhow::Error::msg)?;
    let market = d.address("Market")?;
    let lens = d.address("MarketLens")?;
    let staking = d.address("Staking")?;
    let p = &client.provider;
    let s = Staking::new(staking, p);
    let fault_horizon = MarketAdmin::new(market, p)
        .faultHorizon()
        .call()
        .await
        .map_err(classify)?
        .saturating_to();
    let modules: HashMap<u8, ModuleParams> = new_modules(&client, lens, &HashMap::new())
        .await?
        .into_iter()
        .collect();
    let stake_token = s.stakeToken().call().await.map_err(classify)?;
    let stake_decimals = gridlease_bindings::MockStablecoin::new(stake_token, p)
        .decimals()
        .call()
        .await
        .map_err(classify)?;
    let mut tokens: Vec<(String, u8)> = d
        .tokens
        .iter()
        .map(|t| (t.symbol.clone(), t.decimals))
        .collect();
    tokens.push((format!("the stake token ({stake_token})"), stake_decimals));
    cfg.check_token_amounts(&tokens)
        .map_err(|why| anyhow::anyhow!("the keeper's config: {why}"))?;
    let l1_oracle = match cfg.l1_fee {
        L1Fee::None => false,
        L1Fee::OpStack => true,
        L1Fee::Auto => !p
            .get_code_at(OP_GAS_ORACLE)
            .await
            .map_err(classify_rpc)?
            .is_empty(),
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data.dir {}", cfg.data_dir.display()))?;
    gridlease_daemon::exclusive(&cfg.data_dir, "keeper.lock", "gridlease-keeper")
        .map_err(anyhow::Error::msg)?;
    let store = Store::open(&cfg.data_dir.join("keeper.db"))?;
    store.bind_market(market)?;
    let (view, _) = store.load()?;
    // The hourly budget counts what the last hour's transactions paid, before a restart too.
    let now = unix_now();
    let spent: VecDeque<(Instant, u128)> = store
        .gas_since(now.saturating_sub(3_600))?
        .into_iter()
        .filter_map(|(at, gas)| {
            let ago = Duration::from_secs(now.saturating_sub(at));
            Some((Instant::now().checked_sub(ago)?, gas))
        })
        .collect();
    info!(
        keeper = %signer.address(), chain = client.chain_id, market = %market,
        leases = view.leases.len(), orders = view.orders.len(), modules = modules.len(),
        l1_fee = l1_oracle, "gridlease-keeper starting"
    );
    let chain_id = client.chain_id;
    let wallet = EthereumWallet::from(signer.clone());
    let mut tx =
        TxManager::new(client, signer, TxPolicy::default()).with_low_balance(cfg.low_balance);
    if let Some(url) = &cfg.private_rpc {
        tx = tx.with_private(private_client(url, chain_id).await?);
    }
    Ok(Keeper {
        tx,
        market,
        lens,
        staking,
        deploy_block: d.contracts.get("Market").map_or(0, |c| c.block),
        decimals: Mutex::new(d.tokens.iter().map(|t| (t.address, t.decimals)).collect()),
        stake_token: (stake_token, stake_decimals),
        view: Mutex::new(view),
        store: Mutex::new(store),
        metrics: Metrics::default(),
        stop: CancellationToken::new(),
        tracker: TaskTracker::new(),
        modules: Mutex::new(modules),
        wallet,
        send_gate: tokio::sync::RwLock::new(()),
        busy: Mutex::new(HashMap::new()),
        clock: Mutex::new(Clock {
            now: 0,
            fault_horizon,
        }),
        base_fee: AtomicU64::new(0),
        gas_limit: AtomicU64::new(0),
        log_span: AtomicU64::new(1),
        forgot_before: AtomicU64::new(0),
        spent: Mutex::new(spent),
        in_flight: AtomicUsize::new(0),
        checks: AtomicUsize::new(0),
        collecting_bids: AtomicBool::new(false),
        withdrawing: AtomicBool::new(false),
        l1_oracle,
        last_withdraw: Mutex::new(None),
        due: Mutex::new(HashMap::new()),
        signed: Mutex::new(HashMap::new()),
        fetched: Mutex::new(HashMap::new()),
        fetcher: Fetcher::new(
            cfg.fetch_allow.clone(),
            Limits {
                max_bytes: check::MAX_RESULT_BYTES,
                ..Limits::default()
            },
        ),
        down: Mutex::new(HashMap::new()),
        answered: Mutex::new(HashSet::new()),
        undo: Mutex::default(),
        cfg,
    })
}

/// The private submission endpoint (KB-04). One on another chain is refused; one that cannot be
/// reached now is still used: every send tries it first and falls back to the public node.
async fn private_client(url: &str, chain_id: u64) -> Result<Client> {
    match Client::connect(url, None).await {
        Ok(c) if c.chain_id == chain_id => Ok(c),
        Ok(c) => anyhow::bail!(
            "chain.private_rpc {url} serves chain {}, chain.rpc serves chain {chain_id}",
            c.chain_id
        ),
        Err(e) => {
            warn!(error = %e, "chain.private_rpc does not answer: sending publicly until it does");
            let parsed = url
                .parse()
                .with_context(|| format!("chain.private_rpc \"{url}\" is not a URL"))?;
            Ok(Client {
                provider: alloy::providers::ProviderBuilder::new()
                    .connect_http(parsed)
                    .erased(),
                chain_id,
                from: None,
                url: url.to_owned(),
            })
        }
    }
}

/// Hold back the work of `ids` as `busy` says (in flight, until a time or a block).
fn mark(k: &Keeper, ids: impl IntoIterator<Item = B256>, busy: Busy) {
    let mut b = lock(&k.busy);
    for id in ids {
        b.insert(id, busy);
    }
}

/// Watch the transactions a previous run left pending (journaled before broadcast).
fn resume(k: &Arc<Keeper>) -> Result<()> {
    let pending = lock(&k.store).pending()?;
    for t in pending {
        info!(tx = %t.hash, action = %t.action, "watching a transaction from before the restart");
        mark(k, t.ids.iter().copied(), Busy::InFlight);
        let signed = Signed {
            hash: t.hash,
            raw: t.raw.clone().into(),
            nonce: t.nonce,
            max_fee: 0,
            priority_fee: 0,
        };
        k.in_flight.fetch_add(1, Relaxed);
        let k2 = k.clone();
        k.tracker.spawn(async move {
            // Booked, its ids wait as the booking says (a dropped one's work is planned again);
            // left in flight, this keeper would never look at them again until a restart.
            // Its fees unknown (0), it is followed without bumps.
            let next = watch(&k2, signed, u128::MAX, &t.action, &t.ids, None).await;
            mark(&k2, t.ids.iter().copied(), next);
            k2.in_flight.fetch_sub(1, Relaxed);
        });
    }
    Ok(())
}

/// One poll.
async fn tick(k: &Arc<Keeper>) -> Result<(), ChainError> {
    let head = k
        .client()
        .provider
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await
        .map_err(classify_rpc)?
        .ok_or_else(|| ChainError::Network("the node has no latest block".into()))?;
    let (number, now) = (head.header.number, head.header.timestamp);
    k.base_fee
        .store(head.header.base_fee_per_gas.unwrap_or(0), Relaxed);
    k.gas_limit.store(head.header.gas_limit, Relaxed);
    k.metrics.head.set(number as f64);
    // A module added up to this head is known before its logs are read (the log filter
    // names the modules by address).
    let known = lock(&k.modules).clone();
    for (id, m) in new_modules(k.client(), k.lens, &known).await? {
        info!(module = id, address = %m.address, "results module added");
        lock(&k.modules).insert(id, m);
    }
    collect(k, number).await?;
    learn_tokens(k).await;
    let clock = {
        let mut c = lock(&k.clock);
        c.now = now;
        *c
    };
    // Closed leases past their fault horizon: nothing is provable on them any more.
    {
        let mut v = lock(&k.view);
        let gone = v.expire(now, clock.fault_horizon, number);
        if !gone.is_empty() {
            lock(&k.store)
                .save(&v, &gone)
                .map_err(|e| ChainError::User(e.to_string()))?;
        }
    }

    // Release ids whose work is over.
    {
        let at = Instant::now();
        lock(&k.busy).retain(|_, b| match *b {
            Busy::InFlight => true,
            Busy::Until(t) => t > at,
            Busy::UntilBlock(n) => n > number,
        });
    }
    let mut inputs = inputs(k).await?;
    // Signed bids are collected beside the poll (a round asks every node for every auction in
    // its window, 2 s at most each): this poll plans with the bids collected so far, and a node
    // that answers slowly cannot hold up settles and fault proofs.
    inputs.signed = lock(&k.signed)
        .iter()
        .filter_map(|(id, bids)| Some((*id, bids.first()?.pricePerSecond.to::<u128>())))
        .collect();
    if !k.collecting_bids.swap(true, Relaxed) {
        let k2 = k.clone();
        k.tracker.spawn(async move {
            crate::bids::signed_bids(&k2, now).await;
            k2.collecting_bids.store(false, Relaxed);
        });
    }
    let work = {
        let v = lock(&k.view);
        k.metrics.leases.set(v.running() as f64);
        k.metrics.held.set(v.held_closed() as f64);
        k.metrics.orders.set(v.orders.len() as f64);
        plan(&v, &clock, k.cfg.flags, &inputs)
    };
    for w in &work {
        k.metrics.planned(w.action.name());
    }
    let poll = Duration::from_millis(k.cfg.poll_ms);
    {
        let mut due = lock(&k.due);
        let planned: HashSet<B256> = work
            .iter()
            .filter_map(|w| w.action.ids().first().copied())
            .collect();
        due.retain(|id, _| planned.contains(id));
        // Every planned item's wait starts when it is first planned, dispatched or not.
        let now = Instant::now();
        for id in planned {
            due.entry(id).or_insert(now);
        }
    }
    // Settle batches go out in plan order: one still waiting for its stagger holds back the
    // rest, so a sweep never tops up a later batch with leases settled moments ago while leases
    // planned earlier wait (one full sweep in ceil(leases / batch.settle_max) transactions).
    let mut settles_held = false;
    for w in work {
        if k.stop.is_cancelled() {
            break;
        }
        // Result checks (downloads of up to minutes each) have slots of their own: a provider
        // whose results trickle in cannot fill the ones urgent proofs and settles go out in.
        let check = matches!(w.action, Action::Verify(_));
        let slots = if check { &k.checks } else { &k.in_flight };
        let cap = if check {
            CHECKS_AT_ONCE
        } else {
            k.cfg.max_in_flight
        };
        if slots.load(Relaxed) >= cap {
            continue;
        }
        let Some(first) = w.action.ids().first().copied() else {
            continue;
        };
        let settle = matches!(w.action, Action::Settle(_));
        if settle && settles_held {
            continue;
        }
        let since = lock(&k.due)
            .get(&first)
            .copied()
            .unwrap_or_else(Instant::now);
        if since.elapsed() < stagger(first, k.address(), poll) {
            settles_held |= settle;
            continue;
        }
        k.metrics.found(w.action.name());
        mark(k, w.action.ids(), Busy::InFlight);
        slots.fetch_add(1, Relaxed);
        k.metrics.in_flight.increment(1.0);
        let k2 = k.clone();
        k.tracker.spawn(async move {
            let ids = w.action.ids();
            let next = match execute(&k2, &w, number).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(action = w.action.name(), error = %e, "work failed; retrying later");
                    Busy::Until(Instant::now() + Duration::from_secs(30))
                }
            };
            mark(&k2, ids, next);
            if check { &k2.checks } else { &k2.in_flight }.fetch_sub(1, Relaxed);
            k2.metrics.in_flight.decrement(1.0);
        });
    }
    // Beside the poll too: a withdrawal waits for the send gate, which a bonded challenge holds
    // while it is confirmed (minutes, under a gas spike).
    if !k.withdrawing.swap(true, Relaxed) {
        let k2 = k.clone();
        k.tracker.spawn(async move {
            withdraw(&k2).await;
            k2.withdrawing.store(false, Relaxed);
        });
    }
    persist_counters(k);
    k.metrics.polls.increment(1);
    k.metrics.last_poll.store(unix_now(), Relaxed);
    Ok(())
}

fn persist_counters(k: &Keeper) {
    if let Err(e) = lock(&k.store).set_counters(&k.metrics.rows()) {
        warn!(error = %e, "cannot save counters");
    }
}
