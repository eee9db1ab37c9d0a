//! The running keeper.
//!
//! Every `chain.poll_ms`: read the head, collect new market and results logs from the saved
//! cursor (paged, reorg-aware: [`gridlease_core::logs`]) into the [`View`], committed to SQLite
//! with the cursor per page; read what the strategies need beyond logs (heartbeats and exact
//! accruals of service leases), and the signed bids provider nodes serve for auctions whose
//! window closed ([`select_signed`] checks them); [`plan`]; and hand each work item to a task that simulates it,
//! prices it, [`decide`]s, and sends it through the shared [`TxManager`] (journaled before
//! broadcast, watched, rebroadcast, fee-bumped). An id with work in flight is not planned again
//! until the logs of its transaction were read, so the keeper never pays twice for one piece of
//! work; a simulation that shows someone else did it first drops the work (KB-02).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use alloy::transports::http::reqwest;
use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Bytes, U256, address},
    providers::Provider,
    rpc::types::{Filter, TransactionReceipt, TransactionRequest},
    sol,
    sol_types::{SolCall, SolEvent},
};
use anyhow::{Context, Result};
use gridlease_bindings::{
    IMarket::{self, OrderParams},
    Market, Results, Staking,
};
use gridlease_core::{
    chain::{ChainError, Client, classify, classify_rpc},
    daemon::{self, lock},
    fetch, logs,
    txm::{Outcome, Signed, TxManager, TxPolicy},
    units::parse_amount,
    verify::{BuiltinJob, Verdict},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, error, info, warn};

use crate::{
    config::{Config, L1Fee},
    http::Metrics,
    store::{SentTx, Store},
    strategy::{Action, Clock, Decision, Inputs, Policy, Price, Work, decide, plan, select_signed},
    unix_now,
    view::{Check, View},
};

sol! {
    /// The OP-stack L1 fee oracle (a predeploy on every OP-stack chain).
    #[sol(rpc)]
    interface IGasPriceOracle {
        function getL1Fee(bytes memory data) external view returns (uint256);
    }
}

/// The OP-stack `GasPriceOracle` predeploy.
pub const OP_GAS_ORACLE: Address = address!("0x420000000000000000000000000000000000000F");

/// Revert names that mean "someone already did this" (KB-02): the work is dropped, not retried.
const ALREADY_DONE: &[&str] = &[
    "LeaseNotActive",
    "OrderNotOpen",
    "LeaseNotRunning",
    "AlreadyFaulted",
    "EvidenceAlreadyUsed",
    "NotANoShow",
    "HeartbeatResumed",
    "ProviderLive",
    "ChallengeWindowOver",
];

/// Why an id is not planned.
#[derive(Clone, Copy, Debug)]
enum Busy {
    /// A task owns it.
    InFlight,
    /// Skipped: look again after this.
    Until(Instant),
    /// Done in this block: wait until the logs up to it were read.
    UntilBlock(u64),
}

/// Everything the keeper's tasks share.
pub struct Keeper {
    /// The configuration.
    pub cfg: Config,
    /// The keeper's transaction pipeline.
    pub tx: TxManager,
    /// Market.
    pub market: Address,
    /// Results.
    pub results: Address,
    /// Staking.
    pub staking: Address,
    /// Where log cursors start.
    pub deploy_block: u64,
    /// Payment token decimals.
    pub decimals: HashMap<Address, u8>,
    /// The stake token and its decimals.
    pub stake_token: (Address, u8),
    /// The view.
    pub view: Mutex<View>,
    /// The database.
    pub store: Mutex<Store>,
    /// Counters.
    pub metrics: Metrics,
    /// Cancelled on SIGINT/SIGTERM.
    pub stop: CancellationToken,
    /// Work tasks.
    pub tracker: TaskTracker,
    busy: Mutex<HashMap<B256, Busy>>,
    clock: Mutex<Clock>,
    base_fee: AtomicU64,
    gas_limit: AtomicU64,
    /// Blocks per `eth_getLogs` page (see [`next_span`]).
    log_span: AtomicU64,
    /// Finished ids that finished before this block were forgotten ([`View::forget`]).
    forgot_before: AtomicU64,
    spent: Mutex<VecDeque<(Instant, u128)>>,
    in_flight: AtomicUsize,
    l1_oracle: bool,
    verifying: tokio::sync::Semaphore,
    last_withdraw: Mutex<Option<Instant>>,
    /// When each planned id was first found due (for the stagger).
    due: Mutex<HashMap<B256, Instant>>,
    /// Signed bids collected for closed auctions, checked and cheapest first ([`signed_bids`]).
    signed: Mutex<HashMap<B256, Vec<IMarket::SignedBid>>>,
    /// When each auction's signed bids were last fetched.
    fetched: Mutex<HashMap<B256, Instant>>,
    /// HTTP client for providers' nodes.
    http: reqwest::Client,
    /// Node endpoints whose last bid request failed, and when: not asked again for
    /// [`ENDPOINT_BACKOFF`], so dead nodes cannot stretch every poll by the fetch timeout.
    down: Mutex<HashMap<String, Instant>>,
}

/// Slots of the stagger: each keeper waits `slot x 3 polls` (slot from the work's id and its own
/// address) before taking a piece of work, so keepers that find the same work at the same time
/// rarely race for it: the later one's simulation sees the earlier one's result (KB-02).
const STAGGER_SLOTS: u8 = 4;

fn stagger_slot(id: B256, keeper: Address) -> u32 {
    let h = alloy::primitives::keccak256([id.as_slice(), keeper.as_slice()].concat());
    u32::from(h[0] % STAGGER_SLOTS)
}

impl Keeper {
    fn client(&self) -> &Client {
        self.tx.client()
    }

    /// The address it sends from.
    pub fn address(&self) -> Address {
        self.tx.from()
    }

    fn decimals_of(&self, token: Address) -> u8 {
        if token == self.stake_token.0 {
            return self.stake_token.1;
        }
        self.decimals.get(&token).copied().unwrap_or(18)
    }

    /// Token units of `token` for decimal text `amount` (validated in the config).
    fn units(&self, amount: &str, token: Address) -> u128 {
        parse_amount(amount, self.decimals_of(token)).unwrap_or(u128::MAX)
    }

    fn tokens(&self) -> Vec<Address> {
        let mut t: Vec<Address> = self.decimals.keys().copied().collect();
        if !t.contains(&self.stake_token.0) {
            t.push(self.stake_token.0);
        }
        t.sort_unstable();
        t
    }

    /// The money rules with this hour's budget left.
    fn policy(&self) -> Policy {
        let spent: u128 = {
            let mut s = lock(&self.spent);
            while s
                .front()
                .is_some_and(|(at, _)| at.elapsed() > Duration::from_secs(3_600))
            {
                s.pop_front();
            }
            s.iter().map(|(_, w)| w).sum()
        };
        let tokens = self.tokens();
        Policy {
            native_price: tokens
                .iter()
                .map(|t| (*t, self.units(&self.cfg.native_price, *t)))
                .collect(),
            margin_bps: self.cfg.margin_bps,
            min_profit: tokens
                .iter()
                .map(|t| (*t, self.units(&self.cfg.min_profit, *t)))
                .collect(),
            max_gas_price: self.cfg.max_gas_price,
            budget_left: self.cfg.hourly_budget.saturating_sub(spent),
            unpaid: self.cfg.unpaid.clone(),
        }
    }
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
    signals(k.stop.clone());
    resume(&k)?;
    let poll = Duration::from_millis(k.cfg.poll_ms);
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            () = k.stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        match tick(&k).await {
            Ok(()) => backoff = poll,
            Err(e) => {
                k.metrics.rpc_errors.fetch_add(1, Relaxed);
                backoff = (backoff.max(poll) * 2).min(Duration::from_secs(10));
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "chain poll failed; catching up when it answers");
            }
        }
    }
    // In-flight transactions are journaled: give them a moment to be mined, then leave (a restart
    // watches what is still pending).
    info!(
        in_flight = k.in_flight.load(Relaxed),
        "stopping: no new work"
    );
    k.tracker.close();
    if tokio::time::timeout(Duration::from_secs(20), k.tracker.wait())
        .await
        .is_err()
    {
        warn!("leaving transactions in flight; the next start watches them");
    }
    persist_counters(&k);
    let _ = http.await;
    info!("stopped");
    Ok(())
}

fn signals(stop: CancellationToken) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        for n in 0.. {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                stop.cancel();
            } else {
                error!("second signal: exiting now");
                std::process::exit(130);
            }
        }
    });
}

async fn start(cfg: Config) -> Result<Keeper> {
    let signer = cfg
        .wallet
        .load()
        .context("wallet: the keeper key cannot be loaded")?;
    let client = Client::connect_with_fallback(&cfg.rpc, cfg.fallback_rpc.as_deref(), None).await?;
    let d = daemon::deployment(&client, &cfg.deployments)
        .await
        .map_err(anyhow::Error::msg)?;
    let market = d.address("Market")?;
    let results = d.address("Results")?;
    let staking = d.address("Staking")?;
    let p = &client.provider;
    let r = Results::new(results, p);
    let s = Staking::new(staking, p);
    let clock = Clock {
        now: 0,
        start_window: u64::from(r.startWindow().call().await.map_err(classify)?),
        challenge_window: r.challengeWindow().call().await.map_err(classify)?.to(),
        stale_grace: u64::from(r.staleGrace().call().await.map_err(classify)?),
        reporter_bps: u64::from(s.reporterBps().call().await.map_err(classify)?),
    };
    let stake_token = s.stakeToken().call().await.map_err(classify)?;
    let stake_decimals = gridlease_bindings::MockStablecoin::new(stake_token, p)
        .decimals()
        .call()
        .await
        .map_err(classify)?;
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
    daemon::exclusive(&cfg.data_dir, "keeper.lock", "gridlease-keeper")
        .map_err(anyhow::Error::msg)?;
    let mut store = Store::open(&cfg.data_dir.join("keeper.db"))?;
    let (mut view, cursor) = store.load()?;
    if let (Some((at, hash)), false) = (cursor, store.has_providers()?) {
        // A store from before providers were kept: read their registrations up to its cursor.
        let from = d.contracts.get("Staking").map_or(0, |c| c.block);
        let mut changed = Vec::new();
        logs::pages(
            &client,
            &registrations(staking),
            from,
            at,
            async |page, _, _| {
                changed.extend(page.iter().filter_map(|l| view.apply(l, 0)));
                Ok(())
            },
        )
        .await?;
        store.commit(&view, &changed, (at, hash))?;
    }
    info!(
        keeper = %signer.address(), chain = client.chain_id, market = %market,
        leases = view.leases.len(), orders = view.orders.len(), l1_fee = l1_oracle,
        "gridlease-keeper starting"
    );
    let chain_id = client.chain_id;
    let mut tx = TxManager::new(client, signer, TxPolicy::default());
    if let Some(url) = &cfg.private_rpc {
        tx = tx.with_private(private_client(url, chain_id).await?);
    }
    Ok(Keeper {
        tx,
        market,
        results,
        staking,
        deploy_block: d.contracts.get("Market").map_or(0, |c| c.block),
        decimals: d.tokens.iter().map(|t| (t.address, t.decimals)).collect(),
        stake_token: (stake_token, stake_decimals),
        view: Mutex::new(view),
        store: Mutex::new(store),
        metrics: Metrics::default(),
        stop: CancellationToken::new(),
        tracker: TaskTracker::new(),
        busy: Mutex::new(HashMap::new()),
        clock: Mutex::new(clock),
        base_fee: AtomicU64::new(0),
        gas_limit: AtomicU64::new(0),
        log_span: AtomicU64::new(1),
        forgot_before: AtomicU64::new(0),
        spent: Mutex::new(VecDeque::new()),
        in_flight: AtomicUsize::new(0),
        l1_oracle,
        verifying: tokio::sync::Semaphore::new(1),
        last_withdraw: Mutex::new(None),
        due: Mutex::new(HashMap::new()),
        signed: Mutex::new(HashMap::new()),
        fetched: Mutex::new(HashMap::new()),
        http: reqwest::Client::new(),
        down: Mutex::new(HashMap::new()),
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

/// Watch the transactions a previous run left pending (journaled before broadcast).
fn resume(k: &Arc<Keeper>) -> Result<()> {
    let pending = lock(&k.store).pending()?;
    for t in pending {
        info!(tx = %t.hash, action = %t.action, "watching a transaction from before the restart");
        {
            let mut b = lock(&k.busy);
            for id in &t.ids {
                b.insert(*id, Busy::InFlight);
            }
        }
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
            watch(&k2, signed, &t.action, &t.ids, None).await;
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
    k.metrics.head.store(number, Relaxed);
    collect(k, number).await?;
    lock(&k.clock).now = now;

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
    inputs.signed = signed_bids(k, now).await;
    let clock = *lock(&k.clock);
    let work = {
        let v = lock(&k.view);
        k.metrics.leases.store(v.leases.len() as u64, Relaxed);
        k.metrics.orders.store(v.orders.len() as u64, Relaxed);
        plan(&v, &clock, k.cfg.flags, &inputs)
    };
    let stagger = Duration::from_millis(k.cfg.poll_ms.saturating_mul(3));
    {
        let mut due = lock(&k.due);
        let planned: std::collections::HashSet<B256> = work
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
        if k.stop.is_cancelled() || k.in_flight.load(Relaxed) >= k.cfg.max_in_flight {
            break;
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
        if since.elapsed() < stagger * stagger_slot(first, k.address()) {
            settles_held |= settle;
            continue;
        }
        k.metrics.found(w.action.name());
        {
            let mut b = lock(&k.busy);
            for id in w.action.ids() {
                b.insert(id, Busy::InFlight);
            }
        }
        k.in_flight.fetch_add(1, Relaxed);
        k.metrics.in_flight.fetch_add(1, Relaxed);
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
            {
                let mut b = lock(&k2.busy);
                for id in ids {
                    b.insert(id, next);
                }
            }
            k2.in_flight.fetch_sub(1, Relaxed);
            k2.metrics.in_flight.fetch_sub(1, Relaxed);
        });
    }
    withdraw(k).await;
    persist_counters(k);
    k.metrics.last_poll.store(unix_now(), Relaxed);
    Ok(())
}

fn persist_counters(k: &Keeper) {
    if let Err(e) = lock(&k.store).set_counters(&k.metrics.rows()) {
        warn!(error = %e, "cannot save counters");
    }
}

/// Read new market and results logs into the view.
async fn collect(k: &Keeper, to: u64) -> Result<(), ChainError> {
    let cursor = lock(&k.store)
        .load_cursor()
        .map_err(|e| ChainError::User(e.to_string()))?;
    let from = logs::resume_from(k.client(), "keeper", cursor, k.deploy_block).await?;
    let filter = Filter::new()
        .address(vec![k.market, k.results, k.staking])
        .event_signature(vec![
            Staking::ProviderRegistered::SIGNATURE_HASH,
            Staking::ProviderUpdated::SIGNATURE_HASH,
            Market::OrderCreated::SIGNATURE_HASH,
            Market::BidPlaced::SIGNATURE_HASH,
            Market::LeaseStarted::SIGNATURE_HASH,
            Market::LeaseSettled::SIGNATURE_HASH,
            Market::ToppedUp::SIGNATURE_HASH,
            Market::LeaseClosed::SIGNATURE_HASH,
            Market::OrderCancelled::SIGNATURE_HASH,
            Market::LeaseFaulted::SIGNATURE_HASH,
            Results::LeaseAcknowledged::SIGNATURE_HASH,
            Results::ResultPosted::SIGNATURE_HASH,
            Results::StaleReported::SIGNATURE_HASH,
        ]);
    let mut times: HashMap<u64, u64> = HashMap::new();
    let mut from = from;
    while from <= to {
        let span = k.log_span.load(Relaxed).max(1);
        let end = to.min(from.saturating_add(span - 1));
        let seen = page(k, &filter, from, end, &mut times).await?;
        k.log_span.store(next_span(span, seen), Relaxed);
        from = end + 1;
    }
    // Every FORGET_EVERY blocks, forget the finished ids no rewind can reach any more.
    let before = to.saturating_sub(logs::REORG_REWIND);
    if before >= k.forgot_before.load(Relaxed).saturating_add(FORGET_EVERY) {
        let old = lock(&k.view).forget(before);
        if !old.is_empty() {
            lock(&k.store)
                .forget(&old)
                .map_err(|e| ChainError::User(e.to_string()))?;
            debug!(forgotten = old.len(), before, "finished ids forgotten");
        }
        k.forgot_before.store(before, Relaxed);
    }
    Ok(())
}

/// How often (in blocks) finished ids are forgotten.
const FORGET_EVERY: u64 = 1_000;

/// Logs a page should hold: they are all in memory at once (as JSON, then decoded), so when
/// blocks are dense a catch-up reads narrower pages instead of one huge one (KB-06).
const LOG_TARGET: usize = 2_000;

/// The next page's span in blocks after `span` blocks held `seen` logs: narrower in proportion
/// above [`LOG_TARGET`], else twice as wide, up to [`logs::LOG_PAGE`]. A start reads one block
/// first and widens from there.
fn next_span(span: u64, seen: usize) -> u64 {
    if seen > LOG_TARGET {
        let scaled = u128::from(span) * LOG_TARGET as u128 / seen as u128;
        u64::try_from(scaled).unwrap_or(1).max(1)
    } else {
        span.saturating_mul(2).min(logs::LOG_PAGE)
    }
}

/// Read the logs of blocks `from..=to` into the view, committed with the cursor per page.
async fn page(
    k: &Keeper,
    filter: &Filter,
    from: u64,
    to: u64,
    times: &mut HashMap<u64, u64>,
) -> Result<usize, ChainError> {
    logs::pages(k.client(), filter, from, to, async |page, end, hash| {
        // Block times, for results (the challenge window runs from them).
        for l in &page {
            let (Some(n), None) = (l.block_number, l.block_timestamp) else {
                continue;
            };
            if times.contains_key(&n) || l.topic0() != Some(&Results::ResultPosted::SIGNATURE_HASH)
            {
                continue;
            }
            let b = k
                .client()
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .await
                .map_err(classify_rpc)?
                .ok_or_else(|| ChainError::Network(format!("block {n} vanished")))?;
            times.insert(n, b.header.timestamp);
        }
        let mut changed = Vec::new();
        let mut v = lock(&k.view);
        for l in &page {
            let t = l
                .block_timestamp
                .or_else(|| l.block_number.and_then(|n| times.get(&n).copied()))
                .unwrap_or(0);
            if let Some(c) = v.apply(l, t) {
                changed.push(c);
            }
        }
        lock(&k.store)
            .commit(&v, &changed, (end, hash))
            .map_err(|e| ChainError::User(e.to_string()))
    })
    .await
}

/// `Staking` registration logs (providers' operators and endpoints).
fn registrations(staking: Address) -> Filter {
    Filter::new().address(staking).event_signature(vec![
        Staking::ProviderRegistered::SIGNATURE_HASH,
        Staking::ProviderUpdated::SIGNATURE_HASH,
    ])
}

/// Signed-bid requests in flight at once.
const BID_FETCHES_AT_ONCE: usize = 8;
/// How long one node may take to answer `GET /bids/<order>`.
const BID_FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// An auction's signed bids are fetched again at most this often while it waits for its award.
const BID_REFETCH: Duration = Duration::from_secs(5);
/// Largest signed-bid answer read from a node.
const MAX_BID_BYTES: usize = 4_096;
/// A node endpoint that failed a bid request is left out this long.
const ENDPOINT_BACKOFF: Duration = Duration::from_secs(30);

/// An auction waiting for its award: (order id, bid window end, reserve price per second).
type Waiting = (B256, u64, u128);

/// The auctions of `waiting` that can still be awarded at `now`: the bid window has closed and
/// the award grace has not run out (after it the order can only be cancelled, and every signed
/// bid on it has expired).
fn awardable(waiting: Vec<Waiting>, now: u64, award_grace: u64) -> (Vec<Waiting>, Vec<B256>) {
    let (due, dead): (Vec<Waiting>, Vec<Waiting>) = waiting
        .into_iter()
        .filter(|&(_, end, _)| now > end)
        .partition(|&(_, end, _)| now <= end.saturating_add(award_grace));
    (due, dead.into_iter().map(|(id, _, _)| id).collect())
}

/// Collect the signed bids on every auction whose window closed and whose award grace has not
/// run out from every registered node endpoint ([`BID_FETCHES_AT_ONCE`] requests at a time,
/// [`BID_FETCH_TIMEOUT`] each; failures are skipped and counted), check them
/// ([`select_signed`]) and keep the best for the award's calldata; returns the auctions that
/// have some.
async fn signed_bids(k: &Keeper, now: u64) -> std::collections::HashSet<B256> {
    let (waiting, endpoints, providers) = {
        let v = lock(&k.view);
        let busy = lock(&k.busy);
        let mut fetched = lock(&k.fetched);
        fetched.retain(|id, _| v.orders.contains_key(id));
        let waiting: Vec<Waiting> = v
            .orders
            .iter()
            .filter(|(id, o)| !o.instant && now > o.bidding_end && !busy.contains_key(*id))
            .filter(|(id, _)| fetched.get(*id).is_none_or(|t| t.elapsed() >= BID_REFETCH))
            .filter_map(|(id, o)| {
                Some((
                    *id,
                    o.bidding_end,
                    <OrderParams as alloy::sol_types::SolValue>::abi_decode(&o.terms)
                        .ok()?
                        .maxPricePerSecond
                        .to::<u128>(),
                ))
            })
            .collect();
        let mut endpoints: Vec<String> = v
            .providers
            .values()
            .filter_map(|r| r.endpoint().map(str::to_owned))
            .collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        let mut down = lock(&k.down);
        down.retain(|_, at| at.elapsed() < ENDPOINT_BACKOFF);
        endpoints.retain(|e| !down.contains_key(e));
        // Forget bids of auctions that are no longer open.
        lock(&k.signed).retain(|id, _| v.orders.contains_key(id));
        let providers = if waiting.is_empty() || endpoints.is_empty() {
            HashMap::new()
        } else {
            v.providers.clone()
        };
        (waiting, endpoints, providers)
    };
    if !waiting.is_empty() && !endpoints.is_empty() {
        // One read per poll: the floor for the bids and the award grace that bounds the auctions.
        let (min_price, grace) = match Market::new(k.market, &k.client().provider)
            .params()
            .call()
            .await
        {
            Ok(p) => (u128::from(p.minPricePerSecond), u64::from(p.awardGrace)),
            Err(e) => {
                k.metrics.rpc_errors.fetch_add(1, Relaxed);
                warn!(error = %classify(e), "cannot read the market's parameters; signed bids later");
                return lock(&k.signed).keys().copied().collect();
            }
        };
        let (due, dead) = awardable(waiting, now, grace);
        {
            // Past the grace nothing can be awarded: keep no bids for it, and ask nobody again.
            let mut signed = lock(&k.signed);
            for id in &dead {
                signed.remove(id);
            }
        }
        let domain = gridlease_core::eip712::market_domain(k.client().chain_id, k.market);
        let ids: Vec<B256> = due.iter().map(|d| d.0).collect();
        let fetched_now = fetch_all(&k.http, &ids, &endpoints).await;
        let mut served = fetched_now.served;
        for (endpoint, e) in fetched_now.failed {
            k.metrics.bid_fetch_failures.fetch_add(1, Relaxed);
            debug!(error = %e, "signed bid fetch failed; skipped");
            lock(&k.down).insert(endpoint, Instant::now());
        }
        if fetched_now.skipped > 0 {
            debug!(
                skipped = fetched_now.skipped,
                "signed bid fetches skipped: their node failed earlier in this poll"
            );
        }
        let mut signed = lock(&k.signed);
        let mut fetched = lock(&k.fetched);
        for (id, _, max_price) in due {
            fetched.insert(id, Instant::now());
            let bids = served.remove(&id).unwrap_or_default();
            let (keep, dropped) =
                select_signed(&bids, id, max_price, min_price, now, &domain, &providers);
            for d in dropped {
                k.metrics.skip(d.label());
            }
            if keep.is_empty() {
                signed.remove(&id);
            } else {
                info!(order = %id, bids = keep.len(), best = %keep[0].pricePerSecond, "signed bids collected");
                signed.insert(id, keep);
            }
        }
    }
    lock(&k.signed).keys().copied().collect()
}

/// What one round of bid requests gave.
#[derive(Debug, Default)]
struct Fetched {
    /// Bids served, per auction.
    served: HashMap<B256, Vec<gridlease_core::eip712::ServedBid>>,
    /// (endpoint, error) per failed request.
    failed: Vec<(String, String)>,
    /// Requests not sent because their endpoint had failed earlier in the round.
    skipped: usize,
}

/// `GET <endpoint>/bids/<id>` for every auction of `ids` from every endpoint,
/// [`BID_FETCHES_AT_ONCE`] at a time, [`BID_FETCH_TIMEOUT`] each. Once a request to an endpoint
/// fails, the requests to it still queued are skipped (a dead node costs at most the requests
/// already in flight, not one timeout per auction).
async fn fetch_all(http: &reqwest::Client, ids: &[B256], endpoints: &[String]) -> Fetched {
    let gate = Arc::new(tokio::sync::Semaphore::new(BID_FETCHES_AT_ONCE));
    let down = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
    let mut fetches = tokio::task::JoinSet::new();
    for id in ids {
        for e in endpoints {
            let (gate, down, http, url, id, e) = (
                gate.clone(),
                down.clone(),
                http.clone(),
                format!("{e}/bids/{id}"),
                *id,
                e.clone(),
            );
            fetches.spawn(async move {
                let _permit = gate.acquire_owned().await;
                if lock(&down).contains(&e) {
                    return (id, e, None);
                }
                let got = tokio::time::timeout(BID_FETCH_TIMEOUT, fetch_bid(&http, &url))
                    .await
                    .unwrap_or_else(|_| Err(format!("{url}: no answer within 2 s")));
                if got.is_err() {
                    lock(&down).insert(e.clone());
                }
                (id, e, Some(got))
            });
        }
    }
    let mut out = Fetched::default();
    while let Some(r) = fetches.join_next().await {
        match r {
            Ok((id, _, Some(Ok(Some(bid))))) => out.served.entry(id).or_default().push(bid),
            Ok((_, _, Some(Ok(None)))) => {}
            Ok((_, endpoint, Some(Err(e)))) => out.failed.push((endpoint, e)),
            Ok((_, _, None)) => out.skipped += 1,
            Err(e) => out
                .failed
                .push((String::new(), format!("signed bid fetch task failed: {e}"))),
        }
    }
    out
}

/// `GET <url>`: the node's signed bid, None when it has none (404).
async fn fetch_bid(
    http: &reqwest::Client,
    url: &str,
) -> Result<Option<gridlease_core::eip712::ServedBid>, String> {
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    // A bid is a few hundred bytes: stop reading at the limit (a node could otherwise send an
    // endless or huge body and hold the poll, and its memory, until the timeout).
    if let Some(n) = r.content_length().filter(|&n| n > MAX_BID_BYTES as u64) {
        return Err(format!(
            "{url}: a bid of {n} bytes (at most {MAX_BID_BYTES})"
        ));
    }
    let mut r = r;
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| format!("{url}: {e}"))? {
        if body.len() + chunk.len() > MAX_BID_BYTES {
            return Err(format!("{url}: a bid of more than {MAX_BID_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| format!("{url}: {e}"))
}

/// Chain reads sent at once when the strategies need one per service lease or provider.
const READS_AT_ONCE: usize = 16;

/// What the strategies need besides the view: heartbeats and exact accruals of service leases,
/// and the marginal gas of one more lease in a settle batch.
async fn inputs(k: &Keeper) -> Result<Inputs, ChainError> {
    let busy = lock(&k.busy).keys().copied().collect();
    let services: Vec<(B256, Address)> = lock(&k.view)
        .leases
        .iter()
        .filter(|(_, l)| l.kind == 2)
        .map(|(id, l)| (*id, l.provider))
        .collect();
    let p = &k.client().provider;
    let mut providers: Vec<Address> = services.iter().map(|s| s.1).collect();
    providers.sort_unstable();
    providers.dedup();
    // Read READS_AT_ONCE at a time (KB-06: thousands of service leases would otherwise be
    // thousands of round trips one after another every poll).
    let mut liveness = HashMap::with_capacity(providers.len());
    for chunk in providers.chunks(READS_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for provider in chunk.iter().copied() {
            let staking = Staking::new(k.staking, p.clone());
            reads.spawn(async move { (provider, staking.liveness(provider).call().await) });
        }
        while let Some(r) = reads.join_next().await {
            let (provider, l) = r.map_err(|e| ChainError::Network(e.to_string()))?;
            let l = l.map_err(classify)?;
            liveness.insert(provider, (l.at.to::<u64>(), u64::from(l.period)));
        }
    }
    let mut owed = HashMap::with_capacity(services.len());
    for chunk in services.chunks(READS_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for (id, _) in chunk.iter().copied() {
            let market = Market::new(k.market, p.clone());
            reads.spawn(async move { (id, market.accrued(id).call().await) });
        }
        while let Some(r) = reads.join_next().await {
            let (id, a) = r.map_err(|e| ChainError::Network(e.to_string()))?;
            owed.insert(id, a.map_err(classify)?.to());
        }
    }
    // One more lease in a batch costs about 12k gas (the gas snapshot's settle_batch figure).
    let price = Price {
        gas: 12_000,
        gas_price: u128::from(k.base_fee.load(Relaxed)),
        l1_fee: 0,
    };
    let policy = k.policy();
    let min_lease_fee = k
        .decimals
        .keys()
        .map(|t| (*t, crate::strategy::cost_in(&price, *t, &policy)))
        .collect();
    Ok(Inputs {
        decimals: k.decimals.clone(),
        busy,
        liveness,
        owed,
        min_lease_fee,
        stake_token: k.stake_token.0,
        settle_max: settle_max(k.cfg.settle_max, k.gas_limit.load(Relaxed)),
        signed: std::collections::HashSet::new(),
    })
}

/// Gas of one more lease in a settle batch, with room for cold storage and a provider change.
const SETTLE_GAS_PER_LEASE: u64 = 15_000;
/// Gas of a settle transaction besides its leases.
const SETTLE_GAS_BASE: u64 = 60_000;

/// Leases per settle transaction: `batch.settle_max`, but a batch never needs more than half a
/// block (0: the block gas limit is not known yet).
fn settle_max(configured: usize, block_gas_limit: u64) -> usize {
    if block_gas_limit == 0 {
        return configured;
    }
    let fits = (block_gas_limit / 2).saturating_sub(SETTLE_GAS_BASE) / SETTLE_GAS_PER_LEASE;
    configured
        .min(usize::try_from(fits).unwrap_or(usize::MAX))
        .max(1)
}

/// Where and what to send for an action (None: nothing to send).
fn calldata(k: &Keeper, a: &Action) -> Option<(Address, Bytes)> {
    let v = lock(&k.view);
    let lease_call = |id: &B256| -> Option<(Address, OrderParams)> {
        let l = v.leases.get(id)?;
        Some((l.tenant, l.terms()?))
    };
    Some(match a {
        Action::Award(id) => (
            k.market,
            Market::awardCall {
                orderId: *id,
                signedBids: lock(&k.signed).get(id).cloned().unwrap_or_default(),
            }
            .abi_encode()
            .into(),
        ),
        Action::Settle(ids) => (
            k.market,
            Market::settleCall {
                leaseIds: ids.clone(),
            }
            .abi_encode()
            .into(),
        ),
        Action::Close(id) => (
            k.market,
            Market::closeCall { leaseId: *id }.abi_encode().into(),
        ),
        Action::ProveNoShow(id) => {
            let (tenant, terms) = lease_call(id)?;
            (
                k.results,
                Results::proveNoShowCall {
                    leaseId: *id,
                    tenant,
                    terms: terms.into(),
                }
                .abi_encode()
                .into(),
            )
        }
        Action::ProveMissedDeadline(id) => {
            let (tenant, terms) = lease_call(id)?;
            (
                k.results,
                Results::proveMissedDeadlineCall {
                    leaseId: *id,
                    tenant,
                    terms: terms.into(),
                }
                .abi_encode()
                .into(),
            )
        }
        Action::ReportStale(id) => {
            let (tenant, terms) = lease_call(id)?;
            (
                k.results,
                Results::reportStaleCall {
                    leaseId: *id,
                    tenant,
                    terms: terms.into(),
                }
                .abi_encode()
                .into(),
            )
        }
        Action::ProveStale(id) => {
            let (tenant, terms) = lease_call(id)?;
            (
                k.results,
                Results::proveStaleHeartbeatCall {
                    leaseId: *id,
                    tenant,
                    terms: terms.into(),
                }
                .abi_encode()
                .into(),
            )
        }
        Action::Verify(_) => return None,
    })
}

/// Record the outcome of checking a result.
fn set_checked(k: &Keeper, id: B256, c: Check) {
    let mut v = lock(&k.view);
    if let Some(l) = v.leases.get_mut(&id) {
        l.checked = Some(c);
        if let Err(e) = lock(&k.store).put_lease(&v, id) {
            warn!(error = %e, "cannot save a result check");
        }
    }
}

/// Fetch and check a built-in result; the calldata of its fraud proof if it is wrong.
async fn verify(k: &Keeper, id: B256) -> Result<Option<Bytes>> {
    let _one = k.verifying.acquire().await?;
    let Some((tenant, terms, posted)) = ({
        let v = lock(&k.view);
        v.leases
            .get(&id)
            .and_then(|l| Some((l.tenant, l.terms()?, l.result.clone()?)))
    }) else {
        return Ok(None);
    };
    let unverifiable = |why: String| {
        warn!(lease = %id, why = %why, "built-in result cannot be checked");
        set_checked(k, id, Check::Unverifiable(why));
        Ok(None)
    };
    let spec = match fetch::spec(&terms.specURI, terms.specHash).await {
        Ok(s) => s,
        Err(e) => return unverifiable(format!("spec: {e}")),
    };
    let job = match BuiltinJob::from_spec(&spec).await {
        Ok(Some(j)) => j,
        Ok(None) => return unverifiable("not a built-in job".into()),
        Err(e) => return unverifiable(e),
    };
    let bytes = match fetch::fetch(&posted.uri).await {
        Ok(b) => b,
        Err(e) => return unverifiable(format!("result {}: {e}", posted.uri)),
    };
    let root = gridlease_core::merkle::MerkleTree::from_chunks(&bytes, 32).root();
    if root != posted.root {
        return unverifiable(format!(
            "the served result has root {root}, the commitment is {}",
            posted.root
        ));
    }
    let r_seed = B256::from(rand08::random::<[u8; 32]>());
    let verdict = tokio::task::spawn_blocking(move || {
        let v = job.check(&bytes, r_seed);
        (job, v)
    })
    .await?;
    match verdict {
        (_, Verdict::Correct) => {
            info!(lease = %id, "built-in result verified");
            set_checked(k, id, Check::Correct);
            Ok(None)
        }
        (_, Verdict::WrongSize { expected, got }) => {
            unverifiable(format!("{got} bytes, a correct result has {expected}"))
        }
        (job, Verdict::Wrong(f)) => {
            warn!(lease = %id, i = f.i, j = f.j, claimed = f.claimed, correct = f.correct, "WRONG built-in result: proving it");
            set_checked(k, id, Check::Wrong);
            Ok(Some(job.proof_calldata(id, tenant, terms, &f)))
        }
    }
}

/// The L1 data fee of sending `input`, wei (0 off rollups).
async fn l1_fee(k: &Keeper, input: &Bytes) -> u128 {
    if !k.l1_oracle {
        return 0;
    }
    // The signed envelope adds about 110 bytes to the calldata.
    let mut data = input.to_vec();
    data.extend_from_slice(&[0xff; 110]);
    IGasPriceOracle::new(OP_GAS_ORACLE, &k.client().provider)
        .getL1Fee(data.into())
        .call()
        .await
        .map_or(0, |f| f.saturating_to())
}

/// Simulate, price, decide and send one work item. Returns how long its ids stay busy.
async fn execute(k: &Arc<Keeper>, w: &Work, head: u64) -> Result<Busy> {
    let later = |s: u64| Busy::Until(Instant::now() + Duration::from_secs(s));
    let (to, input) = match &w.action {
        Action::Verify(id) => match verify(k, *id).await? {
            Some(input) => (k.results, input),
            // Correct: free for its close. Not checkable now: looked at again in a minute.
            None => {
                let correct = lock(&k.view)
                    .leases
                    .get(id)
                    .is_some_and(|l| l.checked == Some(Check::Correct));
                return Ok(if correct {
                    Busy::UntilBlock(head)
                } else {
                    later(60)
                });
            }
        },
        a => match calldata(k, a) {
            Some(c) => c,
            None => return Ok(later(30)),
        },
    };
    // A settle that would change fewer leases than planned: someone else got there (KB-02).
    if let Action::Settle(ids) = &w.action {
        let out = k
            .client()
            .provider
            .call(
                TransactionRequest::default()
                    .from(k.address())
                    .to(to)
                    .input(input.clone().into()),
            )
            .await
            .map_err(classify_rpc)?;
        let settled = Market::settleCall::abi_decode_returns(&out).unwrap_or(U256::ZERO);
        if settled < U256::from(ids.len()) {
            k.metrics.skip("already-done");
            debug!(planned = ids.len(), settled = %settled, "settle batch partly done by someone else: re-planning");
            return Ok(Busy::UntilBlock(head + 1));
        }
    }
    let quote = match k.tx.quote(to, input.clone()).await {
        Ok(q) => q,
        Err(ChainError::Revert(r)) if ALREADY_DONE.contains(&r.name.as_str()) => {
            k.metrics.skip("already-done");
            debug!(action = w.action.name(), revert = %r, "already done by someone else");
            return Ok(Busy::UntilBlock(head + 1));
        }
        Err(ChainError::Revert(r)) => {
            k.metrics.skip("reverts");
            info!(action = w.action.name(), revert = %r, "would revert: skipped");
            return Ok(later(60));
        }
        Err(e) => return Err(e.into()),
    };
    let price = Price {
        gas: quote.gas,
        gas_price: u128::from(k.base_fee.load(Relaxed)) + quote.priority_fee,
        l1_fee: l1_fee(k, &input).await,
    };
    if let Decision::Skip(reason) = decide(w, &price, &k.policy()) {
        k.metrics.skip(reason);
        debug!(action = w.action.name(), reward = %w.reward, cost_wei = %price.cost(), reason, "skipped");
        return Ok(later(
            k.cfg.poll_ms.saturating_mul(10).div_ceil(1_000).max(5),
        ));
    }
    let ids = w.action.ids();
    let action = w.action.name();
    let signed =
        k.tx.send_quoted(to, input, &quote, journal(k, action, &ids))
            .await?;
    info!(action, tx = %signed.hash, reward = %w.reward, gas = quote.gas, "sent");
    Ok(watch(k, signed, action, &ids, Some(w.token)).await)
}

/// The journal callback of the transaction manager: the signed transaction is in `sent` before
/// it is broadcast (OFF-14), so a restart watches it instead of sending the work again.
fn journal<'a>(
    k: &'a Keeper,
    action: &'a str,
    ids: &'a [B256],
) -> impl FnMut(&Signed) -> Result<(), String> + 'a {
    move |s: &Signed| {
        lock(&k.store)
            .journal(&SentTx {
                hash: s.hash,
                nonce: s.nonce,
                raw: s.raw.to_vec(),
                action: action.to_owned(),
                ids: ids.to_vec(),
            })
            .map_err(|e| e.to_string())
    }
}

/// Watch a sent transaction to its end and book it.
async fn watch(
    k: &Keeper,
    signed: Signed,
    action: &str,
    ids: &[B256],
    token: Option<Address>,
) -> Busy {
    let first = signed.hash;
    let outcome = if signed.max_fee == 0 {
        // From the journal after a restart: its fees are unknown, so only wait for it.
        wait_mined(k, signed.hash).await
    } else {
        k.tx.confirm(signed, Duration::from_secs(600), journal(k, action, ids))
            .await
    };
    match outcome {
        Ok(Outcome::Mined(r)) => {
            let (earned, token) = earnings(k, &r, token);
            let gas = u128::from(r.gas_used).saturating_mul(r.effective_gas_price);
            lock(&k.spent).push_back((Instant::now(), gas));
            k.metrics.book(token, earned, gas);
            let status = if r.status() { "mined" } else { "reverted" };
            if r.status() {
                k.metrics.done(action);
            } else {
                // Lost a race inside one block: the gas is spent, the work is someone else's.
                k.metrics.skip("lost-race");
            }
            info!(action, tx = %r.transaction_hash, status, earned = %earned, gas_wei = %gas, "mined");
            let store = lock(&k.store);
            let mut booked = store.finish(r.transaction_hash, status, earned, token, gas);
            if r.transaction_hash != first {
                // The first was replaced by a fee bump that was mined instead.
                booked = booked.and(store.finish(first, "replaced", 0, None, 0));
            }
            if let Err(e) = booked {
                warn!(error = %e, "cannot book a transaction");
            }
            Busy::UntilBlock(r.block_number.unwrap_or(0))
        }
        Ok(Outcome::NonceTaken) => {
            let _ = lock(&k.store).finish(first, "replaced", 0, None, 0);
            Busy::Until(Instant::now() + Duration::from_secs(5))
        }
        Err(e) => {
            warn!(action, tx = %first, error = %e, "not confirmed; still journaled");
            Busy::Until(Instant::now() + Duration::from_secs(60))
        }
    }
}

async fn wait_mined(k: &Keeper, hash: B256) -> Result<Outcome, ChainError> {
    for _ in 0..600 {
        if let Some(r) = k.tx.receipt(hash).await? {
            return Ok(Outcome::Mined(Box::new(r)));
        }
        let known = k
            .client()
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(classify_rpc)?
            .is_some();
        if !known {
            return Ok(Outcome::NonceTaken);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(ChainError::Network(format!("{hash} not mined")))
}

/// What a mined transaction paid this keeper, read from its logs: keeper fees of settlements and
/// closes, the reporter's share of a slash.
fn earnings(k: &Keeper, r: &TransactionReceipt, token: Option<Address>) -> (u128, Option<Address>) {
    let me = k.address();
    let mut earned = 0u128;
    let mut tok = token;
    let v = lock(&k.view);
    for log in r.inner.logs() {
        if let Ok(e) = log.log_decode::<Market::LeaseSettled>() {
            let s = e.inner.data;
            // A settled lease may already be gone from the view (closed in the same block).
            if let Some(l) = v.leases.get(&s.leaseId) {
                earned += s.amount.to::<u128>() * u128::from(l.keeper_fee_bps) / 10_000;
                tok = Some(l.token);
            }
        } else if let Ok(e) = log.log_decode::<Market::LeaseClosed>() {
            earned += e.inner.data.keeperFee.to::<u128>();
        } else if let Ok(e) = log.log_decode::<Staking::Slashed>()
            && e.inner.data.reporter == me
        {
            earned += e.inner.data.reporterReward.saturating_to::<u128>();
            tok = Some(k.stake_token.0);
        } else if let Ok(e) = log.log_decode::<Market::Withdrawn>()
            && e.inner.data.account == me
        {
            tok = Some(e.inner.data.token);
        }
    }
    (earned, tok)
}

/// Withdraw fees and rewards above the threshold, at most once a minute.
async fn withdraw(k: &Arc<Keeper>) {
    {
        let mut last = lock(&k.last_withdraw);
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            return;
        }
        *last = Some(Instant::now());
    }
    let to = k.cfg.payout.unwrap_or(k.address());
    let p = &k.client().provider;
    let mut calls: Vec<(Address, Bytes)> = Vec::new();
    for token in k.decimals.keys() {
        let Ok(credit) = Market::new(k.market, p)
            .creditOf(*token, k.address())
            .call()
            .await
        else {
            return;
        };
        if credit > U256::from(k.units(&k.cfg.withdraw_above, *token)) {
            calls.push((
                k.market,
                Market::withdrawCall { token: *token, to }
                    .abi_encode()
                    .into(),
            ));
        }
    }
    if let Ok(credit) = Staking::new(k.staking, p)
        .creditOf(k.address())
        .call()
        .await
        && credit > U256::from(k.units(&k.cfg.withdraw_above, k.stake_token.0))
    {
        calls.push((
            k.staking,
            Staking::withdrawCreditCall { to }.abi_encode().into(),
        ));
    }
    for (target, input) in calls {
        match k.tx.send(target, input, journal(k, "withdraw", &[])).await {
            Ok(s) => {
                info!(tx = %s.hash, to = %to, "withdrawing earnings");
                let k2 = k.clone();
                k.tracker.spawn(async move {
                    watch(&k2, s, "withdraw", &[], None).await;
                });
            }
            Err(e) => warn!(error = %e, "withdrawal not sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::settle_max;

    #[tokio::test]
    async fn a_node_without_a_bid_is_no_failure_and_a_bad_answer_is() {
        use axum::{Router, http::StatusCode, routing::get};
        let bid = gridlease_core::eip712::ServedBid::sign(
            &gridlease_core::eip712::market_domain(1, alloy::primitives::Address::ZERO),
            &alloy::signers::local::PrivateKeySigner::random(),
            alloy::primitives::Address::repeat_byte(1),
            alloy::primitives::B256::repeat_byte(2),
            5,
            6,
        )
        .expect("sign");
        let json = serde_json::to_string(&bid).expect("json");
        let app = Router::new()
            .route("/bids/ok", get(move || async move { json }))
            .route("/bids/garbage", get(|| async { "not json" }))
            .route(
                "/bids/broken",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let http = super::reqwest::Client::new();
        let get = async |path: &str| super::fetch_bid(&http, &format!("{base}{path}")).await;
        assert_eq!(get("/bids/ok").await, Ok(Some(bid)));
        assert_eq!(get("/bids/none").await, Ok(None), "404: no bid here");
        assert!(get("/bids/garbage").await.is_err());
        assert!(get("/bids/broken").await.is_err());
        let closed = format!("http://127.0.0.1:{}/bids/x", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        });
        assert!(super::fetch_bid(&http, &closed).await.is_err());
    }

    #[test]
    fn only_auctions_within_the_award_grace_are_polled() {
        let id = |b| alloy::primitives::B256::repeat_byte(b);
        // Window ends at 100, grace 60: due from 101 to 160 inclusive.
        let waiting = vec![(id(1), 100, 7), (id(2), 40, 7), (id(3), 200, 7)];
        let (due, dead) = super::awardable(waiting.clone(), 130, 60);
        assert_eq!(due, vec![(id(1), 100, 7)]);
        assert_eq!(dead, vec![id(2)], "ended at 40: past its grace at 130");
        assert_eq!(super::awardable(waiting.clone(), 160, 60).0.len(), 1);
        let (due, dead) = super::awardable(waiting.clone(), 161, 60);
        assert!(due.is_empty());
        assert_eq!(dead, vec![id(1), id(2)]);
        // A dead auction stays out however long it sits in the view.
        assert!(super::awardable(waiting, 1_000_000, 60).0.is_empty());
    }

    #[tokio::test]
    async fn a_failed_endpoint_is_not_asked_again_in_the_same_round() {
        use std::sync::{
            Arc,
            atomic::{AtomicUsize, Ordering::SeqCst},
        };

        use axum::{Router, http::StatusCode, routing::get};
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = Router::new().route(
            "/bids/{id}",
            get(move || {
                h.fetch_add(1, SeqCst);
                async { StatusCode::NOT_FOUND }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let live = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dead = format!("http://127.0.0.1:{}", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        });
        let ids: Vec<_> = (0..40u8)
            .map(alloy::primitives::B256::repeat_byte)
            .collect();
        let got = super::fetch_all(
            &super::reqwest::Client::new(),
            &ids,
            &[dead.clone(), live.clone()],
        )
        .await;
        // The live node is asked about every auction; the dead one at most once per request
        // already in flight when the first failed.
        assert_eq!(hits.load(SeqCst), 40);
        assert!(got.served.is_empty());
        assert!(!got.failed.is_empty());
        assert!(got.failed.iter().all(|(e, _)| *e == dead));
        assert!(
            got.failed.len() <= super::BID_FETCHES_AT_ONCE,
            "{} requests to a dead node",
            got.failed.len()
        );
        assert_eq!(got.failed.len() + got.skipped, 40);
    }

    #[tokio::test]
    async fn a_bid_answer_is_read_only_up_to_4_kib() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A node that answers with an endless chunked body (no length to check up front).
        let endless = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/bids/x", endless.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((mut c, _)) = endless.accept().await {
                tokio::spawn(async move {
                    let mut req = [0u8; 4_096];
                    let _ = c.read(&mut req).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                                transfer-encoding: chunked\r\n\r\n";
                    if c.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let chunk = format!("1000\r\n{}\r\n", "a".repeat(4_096));
                    while c.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        let http = super::reqwest::Client::new();
        // A generous deadline: reading the whole body would never end.
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            super::fetch_bid(&http, &url),
        )
        .await
        .expect("the read stops at the limit");
        let e = got.expect_err("too large");
        assert!(e.contains("more than 4096 bytes"), "{e}");
        // A declared length over the limit is refused before any of the body is read.
        let app = axum::Router::new().route(
            "/bids/big",
            axum::routing::get(|| async { "x".repeat(1 << 20) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let e = super::fetch_bid(&http, &format!("{base}/bids/big"))
            .await
            .expect_err("too large");
        assert!(e.contains("1048576 bytes (at most 4096)"), "{e}");
    }

    #[test]
    fn kb_06_log_pages_narrow_when_blocks_are_dense() {
        use super::{LOG_TARGET, next_span};
        assert_eq!(next_span(1, 0), 2);
        assert_eq!(next_span(1_500, 10), gridlease_core::logs::LOG_PAGE);
        // Ten times the target: a tenth of the span; never below one block.
        assert_eq!(next_span(100, 10 * LOG_TARGET), 10);
        assert_eq!(next_span(1, 50 * LOG_TARGET), 1);
    }

    #[test]
    fn kb_06_settle_batches_fit_in_half_a_block() {
        // 30M gas: the configured 100 fits; 1,000 would not (half a block holds 996).
        assert_eq!(settle_max(100, 30_000_000), 100);
        assert_eq!(settle_max(1_000, 30_000_000), 996);
        // A small block still settles one lease at a time; an unknown limit changes nothing.
        assert_eq!(settle_max(100, 100_000), 1);
        assert_eq!(settle_max(100, 0), 100);
    }
}
