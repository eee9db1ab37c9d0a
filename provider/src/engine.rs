//! The running node: collectors -> strategies -> executors.
//!
//! - **Collect.** Every `chain.poll_ms` the node reads new logs of the market and results
//!   contracts from its saved cursors, in pages that halve when the RPC refuses a range (OFF-13).
//!   Orders, challenges of its results and its new leases (to acknowledge them at once) are read
//!   up to the head (a bid on an order that a reorg removes simply reverts in simulation: the
//!   order id commits to every term); lease events that start work only once `confirmations`
//!   blocks deep, so no work starts on an award a reorg can undo (OFF-04, PD-02). A cursor whose
//!   block hash is no longer canonical rewinds and re-reads (OFF-01); every handler is idempotent.
//! - **Decide.** [`crate::pricing::evaluate`] on each new order; the spec is fetched and checked
//!   against its hash before a bid, and only workloads an executor runs get one.
//! - **Act.** Bids through the shared [`TxManager`]; each won lease gets one driver task that walks
//!   the job's [`JobState`] machine: acknowledge, run, commit, post. Every step is a
//!   compare-and-set in SQLite and every transaction is journaled before broadcast, so after
//!   `kill -9` a restart resumes each job where it was, never running a finished job again nor
//!   posting twice (OFF-14, PD-04, PD-07).
//!
//! Protocol v2 (`docs/protocol.md` §7): an honest node is never slashed whatever the tenant's job
//! does (MEC-15). It acknowledges every lease it wins within the start window (an instant order
//! won by its own bid already is); every job yields a postable commitment, the 1 KiB-leaf tree
//! over the stored result ([`Commitment::of`]; an empty output is a valid result); a job that
//! fails posts its failure report, and one that does not exit is stopped at its lease end (never
//! later than `end + deadlineGrace - jobs.post_margin`) and its report posted; posting is retried
//! on every revert or network error until `end + deadlineGrace`, each failure counted and logged
//! as an alert. Challenges of its results' chunks are answered from the stored result
//! ([`crate::results`], MEC-04), and leases are closed and held collateral released when due
//! ([`crate::closes`]).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, Bytes, aliases::U96, keccak256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::{SolCall, SolEvent, SolEventInterface, SolValue},
};
use anyhow::{Context, Result};
use gridlease_bindings::{
    IMarket::OrderParams,
    Market::{self, MarketEvents},
    MarketAdmin, MarketLens, Results, Staking,
};
use gridlease_core::{
    chain::{ChainError, Client, classify, classify_rpc},
    daemon::{self, lock},
    fetch::{Fetcher, Limits},
    logs,
    merkle::Commitment,
    spec::{JobKind, RunSpec, Workload},
    txm::{Outcome, Signed, TxManager, TxPolicy},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{debug, error, info, warn};

use crate::{
    config::{BidMode, Config, ExecutorKind},
    executor::{BuiltinExecutor, ExecError, Executor, JobRun, OnSpawn, ProcessExecutor},
    gpu,
    http::Metrics,
    pricing::{Ask, Offer, Skip, evaluate},
    state::{Job, JobState, Set, StateError, Store},
    unix_now,
};

/// Everything the tasks of a running node share.
pub struct Shared {
    /// The configuration.
    pub cfg: Config,
    /// The operator's transaction pipeline (and the read client).
    pub tx: TxManager,
    /// Contract addresses.
    pub market: Address,
    /// The market's views (`MarketLens`).
    pub lens: Address,
    /// The deployment's results module (the one a lease without a recorded module is bound to).
    pub results: Address,
    /// Staking contract.
    pub staking: Address,
    /// `MarketAdmin.faultHorizon()`: how long after a close the market holds a lease's collateral.
    pub fault_horizon: u64,
    /// Market deployment block (where cursors start: never `latest`, OFF-15).
    pub deploy_block: u64,
    /// Payment token decimals.
    pub tokens: HashMap<Address, u8>,
    /// The job database.
    pub store: Mutex<Store>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Cancelled on the first SIGINT/SIGTERM: no new bids, no new jobs.
    pub stop: CancellationToken,
    /// Cancelled when the shutdown grace is over: running jobs are stopped (resumed on restart).
    pub kill: CancellationToken,
    /// Driver tasks.
    pub tracker: TaskTracker,
    /// Leases with a driver, and its cancellation (a closed lease stops its job).
    drivers: Mutex<HashMap<B256, CancellationToken>>,
    /// Orders whose tenant pushes the spec (`gridlease:push`) seen before the push: the push
    /// handler takes the order from here instead of searching the chain's logs for it.
    pub(crate) awaiting_push: Mutex<HashMap<B256, Market::OrderCreated>>,
    /// Bounds the chain look-ups that pushes for orders the node has not seen cause.
    pub(crate) push_lookups: crate::http::LookupGate,
    process: ProcessExecutor,
    /// Docker/Podman, when `jobs.executor` names one.
    container: Option<crate::docker::ContainerExecutor>,
    builtin: BuiltinExecutor,
    /// Whole GPUs per job (`CUDA_VISIBLE_DEVICES`, device requests, the built-in's device).
    gpus: crate::gpu::GpuAllocator,
    /// Registered capacity and the market minimum, refreshed each poll.
    offer: Mutex<Offer>,
    /// When the offer was last read (unix seconds).
    offer_at: AtomicU64,
    /// When the last look for completed leases to close was (unix seconds).
    pub(crate) completed_at: AtomicU64,
    /// When held collateral was last looked at for release (unix seconds).
    pub(crate) released_at: AtomicU64,
    /// Results modules by address (their windows are immutable), and module ids to addresses.
    pub(crate) modules: crate::results::Modules,
    /// End of the hold of posted results (chain time), as last read: no chain read per poll
    /// until it has passed.
    pub(crate) hold_ends: Mutex<HashMap<B256, u64>>,
    /// Leases acknowledged (or looked at) at the head, before they are deep enough to start.
    pub(crate) acked_early: Mutex<std::collections::HashSet<B256>>,
    /// The tree of the result last challenged (answers build one tree at a time).
    pub(crate) proofs: crate::results::ProofCache,
    /// Challenges an answering task is working on.
    pub(crate) answering: Mutex<std::collections::HashSet<crate::state::Challenge>>,
    /// The operator key, to sign bids in `bidding.mode = "signed"` (None in on-chain mode).
    bid_signer: Option<alloy::signers::local::PrivateKeySigner>,
}

/// The ABI-decoded terms of `job`.
pub fn terms(job: &Job) -> Option<OrderParams> {
    OrderParams::abi_decode(&job.terms).ok()
}

impl Shared {
    /// Where the result of `id` is kept.
    pub fn result_path(&self, id: B256) -> PathBuf {
        self.cfg.data_dir.join("results").join(format!("{id}.bin"))
    }

    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn client(&self) -> &Client {
        self.tx.client()
    }

    /// The market's views.
    pub(crate) fn lens(
        &self,
    ) -> gridlease_bindings::lens::MarketLens::MarketLensInstance<&alloy::providers::DynProvider>
    {
        MarketLens::new(self.lens, &self.client().provider)
    }

    /// The results module lease `job` is bound to.
    pub(crate) fn module_of(&self, job: &Job) -> Address {
        job.module.unwrap_or(self.results)
    }

    fn executor(&self, w: &Workload) -> Result<&dyn Executor, String> {
        match w {
            Workload::MatmulI8 { .. } | Workload::MatmulI8Data { .. } => {
                self.builtin.supports(w)?;
                Ok(&self.builtin)
            }
            Workload::Service { .. } if !self.cfg.services => {
                Err("jobs.services = false: this node does not sell service leases".into())
            }
            Workload::Container { .. } | Workload::Service { .. } => match self.cfg.executor {
                ExecutorKind::Builtin => Err("jobs.executor = \"builtin\": this node runs \
                                              built-in jobs only"
                    .into()),
                ExecutorKind::Process => {
                    self.process.supports(w)?;
                    Ok(&self.process)
                }
                ExecutorKind::Docker => match &self.container {
                    Some(c) => {
                        c.supports(w)?;
                        Ok(c)
                    }
                    None => Err("no container engine configured".into()),
                },
            },
        }
    }

    fn kinds(&self) -> u8 {
        // Built-in jobs always; container jobs (process or container engine); services when sold.
        let kinds = match self.cfg.executor {
            ExecutorKind::Builtin => return 0b010,
            ExecutorKind::Process | ExecutorKind::Docker => 0b011,
        };
        if self.cfg.services {
            kinds | 0b100
        } else {
            kinds
        }
    }
}

/// Start the node: check the chain and the registration, open the state, and run until a signal.
pub async fn run(cfg: Config) -> Result<()> {
    let s = Arc::new(start(cfg).await?);
    let listener = tokio::net::TcpListener::bind(s.cfg.listen)
        .await
        .with_context(|| format!("http.listen {}: cannot bind", s.cfg.listen))?;
    info!(listen = %s.cfg.listen, "http api up");
    if s.cfg.corrupt_builtin || s.cfg.withhold_results {
        warn!(
            corrupt_builtin_results = s.cfg.corrupt_builtin,
            withhold_results = s.cfg.withhold_results,
            "[testing] knobs set: this node misbehaves on purpose and will be slashed"
        );
    }
    let app = crate::http::router(s.clone());
    let stop_http = s.kill.clone();
    let http = tokio::spawn(async move {
        axum::serve(
            crate::guard::LimitedListener::new(listener, crate::guard::MAX_CONNECTIONS),
            app.into_make_service_with_connect_info::<crate::guard::Peer>(),
        )
        .with_graceful_shutdown(async move { stop_http.cancelled().await })
        .await
    });
    signals(s.clone());
    resume(&s)?;
    if s.cfg.services {
        // Critical: a node selling service leases without heartbeats would see them lapse, so
        // if this task dies the node stops (and says why) rather than run on without it.
        let s2 = s.clone();
        let beats = tokio::spawn(async move { heartbeats(&s2).await });
        let s3 = s.clone();
        tokio::spawn(async move {
            if let Err(e) = beats.await {
                error!(error = %e, "the heartbeat task died: stopping the node");
                s3.stop.cancel();
            }
        });
    }
    let poll = Duration::from_millis(s.cfg.poll_ms);
    let mut backoff = poll;
    loop {
        tokio::select! {
            () = s.stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        match tick(&s).await {
            Ok(()) => backoff = poll,
            Err(e) => {
                s.metrics.rpc_errors.fetch_add(1, Relaxed);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "chain poll failed; running jobs continue");
            }
        }
    }
    let grace = Duration::from_secs(s.cfg.shutdown_grace_secs);
    info!(
        grace_s = grace.as_secs(),
        "stopping: no new bids; running jobs get the grace"
    );
    s.tracker.close();
    if tokio::time::timeout(grace, s.tracker.wait()).await.is_err() {
        warn!("grace over: stopping running jobs; they resume on restart");
        s.kill.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.tracker.wait()).await;
    }
    s.kill.cancel();
    let _ = http.await;
    info!("stopped");
    Ok(())
}

fn signals(s: Arc<Shared>) {
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
                s.stop.cancel();
            } else {
                // A second signal: leave now (state is consistent at every step).
                error!("second signal: exiting now");
                std::process::exit(130);
            }
        }
    });
}

async fn start(cfg: Config) -> Result<Shared> {
    cfg.operator
        .check_private_files()
        .context("wallet: refusing an operator key others can read")?;
    let signer = cfg
        .operator
        .load()
        .context("wallet: the operator key cannot be loaded")?;
    let operator = signer.address();
    let client = Client::connect_with_fallback(&cfg.rpc, cfg.fallback_rpc.as_deref(), None).await?;
    let d = daemon::deployment(&client, &cfg.deployments)
        .await
        .map_err(anyhow::Error::msg)?;
    let market = d.address("Market")?;
    let lens = d.address("MarketLens")?;
    let staking = d.address("Staking")?;
    let results = Results::new(d.address("Results")?, &client.provider);
    let onchain = crate::onchain::OnChain::read(&cfg).await?;
    let inventory = gpu::discover(&cfg.capacity);
    onchain.ready(&cfg, operator, &inventory)?;
    if cfg.bid_mode == BidMode::Signed {
        let from = d.contracts.get("Staking").map_or(0, |c| c.block);
        let uri = crate::signed::metadata_uri(&client, staking, cfg.owner, from).await?;
        crate::signed::check_registration(
            uri.as_deref(),
            &cfg.public_url,
            cfg.owner,
            operator,
            &onchain.info.capacity,
        )?;
    }
    std::fs::create_dir_all(cfg.data_dir.join("results"))
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("cannot create jobs.work_dir {}", cfg.work_dir.display()))?;
    daemon::exclusive(&cfg.data_dir, "node.lock", "gridlease-provider")
        .map_err(anyhow::Error::msg)?;
    let db = cfg.data_dir.join("state.db");
    let store = Store::open(&db).with_context(|| {
        format!(
            "state store {} cannot be opened (corrupt?): not starting; move it away to rebuild from the chain's events since the deployment block",
            db.display()
        )
    })?;
    let modules = crate::results::Modules::default();
    let module = modules.get(&client, *results.address()).await?;
    let fault_horizon = MarketAdmin::new(market, &client.provider)
        .faultHorizon()
        .call()
        .await
        .map_err(classify)?
        .saturating_to::<u64>();
    info!(
        operator = %operator, owner = %cfg.owner, chain = client.chain_id,
        market = %market, start_window_s = module.start_window,
        deadline_grace_s = module.deadline_grace, response_window_s = module.response_window,
        fault_horizon_s = fault_horizon, "gridlease-provider starting"
    );
    let deploy_block = d.contracts.get("Market").map_or(0, |c| c.block);
    let tokens = d.tokens.iter().map(|t| (t.address, t.decimals)).collect();
    let offer = Offer {
        classes: onchain.info.capacity.gpuClasses,
        gpus: onchain.info.capacity.gpuCount,
        vram_gib: onchain.info.capacity.vramGiB,
        exclusive_gpus: !inventory.gpus.is_empty() && !cfg.share_gpus,
        held_gpus: 0,
        free_slots: cfg.max_concurrent_jobs,
        slots: cfg.max_concurrent_jobs,
        free_stake: crate::onchain::lockable(&onchain.info),
        kinds: 0,
        min_price: 0,
    };
    let results = *results.address();
    let bid_signer = (cfg.bid_mode == BidMode::Signed).then(|| signer.clone());
    let tx = TxManager::new(client, signer, TxPolicy::default());
    Ok(Shared {
        tx,
        market,
        lens,
        results,
        staking,
        fault_horizon,
        deploy_block,
        tokens,
        store: Mutex::new(store),
        metrics: Metrics::default(),
        stop: CancellationToken::new(),
        kill: CancellationToken::new(),
        tracker: TaskTracker::new(),
        drivers: Mutex::new(HashMap::new()),
        awaiting_push: Mutex::new(HashMap::new()),
        push_lookups: crate::http::LookupGate::default(),
        process: ProcessExecutor {
            limits: crate::executor::ProcessLimits {
                max_output: cfg.max_output,
                ..Default::default()
            },
        },
        container: crate::docker::ContainerExecutor::for_node(
            cfg.container.as_ref(),
            &operator.to_string(),
        )
        .await?
        .map(|mut c| {
            c.limits.max_output = cfg.max_output;
            c
        }),
        builtin: BuiltinExecutor::new(Fetcher::new(cfg.fetch_allow.clone(), Limits::default())),
        gpus: crate::gpu::GpuAllocator::new(&inventory, cfg.share_gpus),
        offer: Mutex::new(offer),
        offer_at: AtomicU64::new(0),
        completed_at: AtomicU64::new(0),
        released_at: AtomicU64::new(0),
        modules,
        hold_ends: Mutex::new(HashMap::new()),
        answering: Mutex::new(std::collections::HashSet::new()),
        acked_early: Mutex::new(std::collections::HashSet::new()),
        proofs: crate::results::ProofCache::default(),
        bid_signer,
        cfg,
    })
}

/// Pick up every live job after a (re)start.
fn resume(s: &Arc<Shared>) -> Result<()> {
    let live = s.db().live()?;
    for j in live {
        match j.state {
            JobState::Bid => {}    // the lease log (or its absence) decides
            JobState::Posted => {} // done; the close log ends it
            _ => {
                info!(lease = %j.id, state = j.state.name(), "resuming job");
                drive(s, j.id);
            }
        }
    }
    crate::results::resume(s)?;
    Ok(())
}

/// One poll: refresh the offer, read orders up to the head and lease events up to the confirmed
/// head.
async fn tick(s: &Arc<Shared>) -> Result<(), ChainError> {
    let p = &s.client().provider;
    let head = p.get_block_number().await.map_err(classify_rpc)?;
    let prev = s.metrics.head.swap(head, Relaxed);
    if head < prev {
        warn!(
            prev,
            head, "the RPC's head went backwards (lagging node or reorg)"
        );
    }
    let hold = s.metrics.finality_hold.load(Relaxed);
    if hold != 0
        && held(hold, head).is_none()
        && s.metrics
            .finality_hold
            .compare_exchange(hold, 0, Relaxed, Relaxed)
            .is_ok()
    {
        info!(
            head,
            "finality hold over: jobs start and results are released again"
        );
    }
    refresh_offer(s).await?;
    // Up to the head: orders; leases, only to acknowledge the node's own at once (the start
    // window may be shorter than `confirmations` blocks; the job waits for them); challenges of the
    // node's results (an answer is due within the response window; one to a challenge a reorg
    // removed only fails its simulation).
    let orders = [
        Market::OrderCreated::SIGNATURE_HASH,
        Market::LeaseStarted::SIGNATURE_HASH,
        Results::ChunkChallenged::SIGNATURE_HASH,
    ];
    let leases = [
        Market::LeaseStarted::SIGNATURE_HASH,
        Market::LeaseClosed::SIGNATURE_HASH,
        Market::OrderCancelled::SIGNATURE_HASH,
        Market::LeaseFaulted::SIGNATURE_HASH,
        Market::HeldReleased::SIGNATURE_HASH,
    ];
    let mut sources = vec![s.market];
    sources.extend(crate::results::watched(s).map_err(|e| ChainError::User(e.to_string()))?);
    scan(s, Logs::Orders, head, sources, &orders).await?;
    retry_deferred(s).await;
    crate::closes::close_completed(s).await?;
    crate::closes::release_held(s).await?;
    scan(
        s,
        Logs::Leases,
        head.saturating_sub(s.cfg.confirmations),
        vec![s.market],
        &leases,
    )
    .await?;
    s.metrics.last_poll.store(unix_now(), Relaxed);
    Ok(())
}

/// Most orders kept for another look (the store's `deferred` table).
const DEFERRED_MAX: usize = 10_000;

/// Look again at the orders skipped only because the node was full, now that jobs may have
/// ended: each is bid on once a slot, its GPUs and the stake are free, or dropped when its bid
/// window closes (or another node took it: the bid's simulation says so). They are kept in the
/// store, so a restart (whose order cursor is past them) still looks at them again.
async fn retry_deferred(s: &Arc<Shared>) {
    // Nothing can fit while every slot is taken: leave the kept orders alone.
    let mut budget = match budget(s) {
        Ok(b) if b.busy < lock(&s.offer).slots => Some(b),
        Ok(_) => return,
        Err(e) => {
            warn!(error = %e, "cannot read the node's jobs");
            return;
        }
    };
    // Bid windows end in chain time (OFF-21), read only when some order is kept.
    let kept = |now: u64| {
        s.db().deferred(now).map_err(|e| {
            warn!(error = %e, "cannot read the deferred orders");
        })
    };
    let Ok(any) = kept(0) else { return };
    if any.is_empty() {
        return;
    }
    let now = match s.client().now().await {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %e, "cannot read the chain's time for the deferred orders");
            return;
        }
    };
    let Ok(waiting) = kept(now) else { return };
    for (topics, data) in waiting {
        let o = match Market::OrderCreated::decode_raw_log(topics, &data) {
            Ok(o) => o,
            Err(e) => {
                warn!(error = %e, "a deferred order does not decode: dropped");
                continue;
            }
        };
        let id = o.orderId;
        // Kept until it is bid on, or skipped for another reason than capacity; an error (the
        // RPC) leaves it for the next look.
        match on_order(s, o, Instant::now(), &mut budget, true).await {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = s.db().undefer(id) {
                    warn!(order = %id, error = %e, "cannot update a deferred order");
                }
            }
            Err(e) => warn!(order = %id, error = %e, "looking again at a deferred order failed"),
        }
    }
}

async fn refresh_offer(s: &Shared) -> Result<(), ChainError> {
    if unix_now().saturating_sub(s.offer_at.load(Relaxed)) < 5 {
        return Ok(());
    }
    let p = &s.client().provider;
    let info = Staking::new(s.staking, p)
        .providerInfo(s.cfg.owner)
        .call()
        .await
        .map_err(classify)?;
    let params = Market::new(s.market, p)
        .params()
        .call()
        .await
        .map_err(classify)?;
    earnings(s).await?;
    expire_signed(s).await?;
    let mut o = lock(&s.offer);
    o.classes = info.capacity.gpuClasses;
    o.gpus = info.capacity.gpuCount;
    o.vram_gib = info.capacity.vramGiB;
    o.free_stake = crate::onchain::lockable(&info);
    o.min_price = u128::from(params.minPricePerSecond);
    if info.operator != s.tx.from() {
        warn!(operator = %info.operator, "the owner changed this provider's operator key; not bidding");
        o.classes = 0;
    }
    s.offer_at.store(unix_now(), Relaxed);
    Ok(())
}

/// Signed mode: a kept bid past its expiry can no longer win, so its order is lost and the slot
/// and stake it reserved are free again (a lease log read later still turns it into a win).
async fn expire_signed(s: &Shared) -> Result<(), ChainError> {
    if s.bid_signer.is_none() {
        return Ok(());
    }
    let user = |e: anyhow::Error| ChainError::User(e.to_string());
    let waiting: Vec<B256> = s
        .db()
        .live()
        .map_err(|e| user(e.into()))?
        .into_iter()
        .filter(|j| j.state == JobState::Bid)
        .map(|j| j.id)
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    let now = s.client().now().await?;
    for id in waiting {
        if crate::signed::load(&s.cfg.data_dir, id).is_some_and(|b| b.expiry < now) {
            lost(s, id, "signed bid expired unawarded").map_err(user)?;
        }
    }
    Ok(())
}

/// PD-05: the owner's earnings the market holds, per token, as a gauge, and a warning whenever
/// they change while above `earnings.withdraw_above`. Only the owner key can withdraw them
/// (PD-08): this node holds the operator key, so it tells and never moves stake or earnings.
async fn earnings(s: &Shared) -> Result<(), ChainError> {
    let m = s.lens();
    for (token, decimals) in &s.tokens {
        let credit = m
            .creditOf(*token, s.cfg.owner)
            .call()
            .await
            .map_err(classify)?
            .saturating_to::<u128>();
        let above = gridlease_core::units::parse_amount(&s.cfg.withdraw_above, *decimals)
            .unwrap_or(u128::MAX);
        // The gauge saturates at u64 (18.4 units of an 18-decimal token); the check does not.
        let shown = u64::try_from(credit).unwrap_or(u64::MAX);
        let prev = lock(&s.metrics.withdrawable).insert(token.to_string(), shown);
        if credit > above && prev != Some(shown) {
            warn!(
                token = %token, owner = %s.cfg.owner, withdrawable = credit,
                "earnings above earnings.withdraw_above: withdraw them with the owner's wallet (`gridlease withdraw --keystore OWNER.json`); the operator key cannot"
            );
        }
    }
    Ok(())
}

/// After a reorg deeper than `chain.confirmations` (OFF-02): hold what needs finality (a job's
/// start, releasing a tenant's result) until the current head is itself `confirmations` deep, so
/// the blocks the reorg replaced are buried at least as deep as the operator asked before anything
/// irreversible happens on them. Returns the block the hold lasts until.
fn hold_finality(s: &Shared) -> u64 {
    let head = s.metrics.head.load(Relaxed);
    let until = hold_until(head, s.cfg.confirmations);
    s.metrics.finality_hold.fetch_max(until, Relaxed);
    until
}

/// The first block at which a hold set with the head at `head` ends.
fn hold_until(head: u64, confirmations: u64) -> u64 {
    head + confirmations.max(1)
}

/// The block a finality hold lasts until, while one is on (OFF-02).
pub(crate) fn finality_held(s: &Shared) -> Option<u64> {
    held(
        s.metrics.finality_hold.load(Relaxed),
        s.metrics.head.load(Relaxed),
    )
}

fn held(until: u64, head: u64) -> Option<u64> {
    (until != 0 && head < until).then_some(until)
}

/// The log streams the node reads, each from its own cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Logs {
    /// New orders, leases to acknowledge, and challenges of results (the results modules'
    /// logs): up to the head.
    Orders,
    /// Leases started, closed, faulted, released: `chain.confirmations` deep.
    Leases,
}

impl Logs {
    fn cursor(self) -> &'static str {
        match self {
            Self::Orders => "orders",
            Self::Leases => "leases",
        }
    }
}

/// Read the logs with `topics` of `addresses` from the cursor of `which` up to `to`, handling
/// each.
async fn scan(
    s: &Arc<Shared>,
    which: Logs,
    to: u64,
    addresses: Vec<Address>,
    topics: &[B256],
) -> Result<(), ChainError> {
    let name = which.cursor();
    let cursor = s
        .db()
        .cursor(name)
        .map_err(|e| ChainError::User(e.to_string()))?;
    let from = logs::resume_from(s.client(), name, cursor, s.deploy_block).await?;
    if cursor.is_some_and(|(b, _)| from <= b) {
        // (Challenges read again are recorded once: nothing of theirs to undo.)
        if which == Logs::Leases {
            // This cursor trails the head by `confirmations`: the reorg went deeper (OFF-02).
            let until = hold_finality(s);
            s.metrics.deep_reorgs.fetch_add(1, Relaxed);
            error!(
                confirmations = s.cfg.confirmations,
                hold_until = until,
                "reorg deeper than chain.confirmations: lease events are read again, and no job starts and no tenant result is released until the replaced blocks are that deep again; raise confirmations if this chain reorgs this deep"
            );
        }
        // A reorg: posted results may have been removed with it (PD-04), and orders we bid on
        // (their reservation must not stay behind: PD-01).
        let live = s.db().live().map_err(|e| ChainError::User(e.to_string()))?;
        for j in live {
            if j.state == JobState::Posted {
                drive(s, j.id);
            } else if j.state == JobState::Bid {
                let v = s.lens().getJob(j.id).call().await.map_err(classify)?;
                if v.status == 0 {
                    // Status::None: no such order on this chain any more.
                    lost(s, j.id, "the order was reorged away")
                        .map_err(|e| ChainError::User(e.to_string()))?;
                }
            }
        }
    }
    let filter = Filter::new()
        .address(addresses)
        .event_signature(topics.to_vec());
    logs::pages(s.client(), &filter, from, to, async |page, end, hash| {
        let seen = Instant::now();
        let mut budget = None;
        for log in &page {
            if log.topic0() == Some(&Results::ChunkChallenged::SIGNATURE_HASH) {
                crate::results::on_log(s, log);
            } else {
                handle(s, which, log, seen, &mut budget).await;
            }
        }
        s.db()
            .set_cursor(name, end, hash)
            .map_err(|e| ChainError::User(e.to_string()))
    })
    .await?;
    Ok(())
}

/// Job slots, GPUs and stake already promised (live jobs, open bids), read once per page of logs
/// and updated with each bid sent.
#[derive(Clone, Copy, Debug, Default)]
struct Budget {
    busy: u32,
    /// GPUs asked by the jobs that take a slot (each holds its own while it runs).
    gpus: u32,
    pending_collateral: u128,
}

fn budget(s: &Shared) -> Result<Budget> {
    let live = s.db().live()?;
    Ok(Budget {
        busy: live.iter().filter(|j| j.state.occupies_slot()).count() as u32,
        gpus: live
            .iter()
            .filter(|j| j.state.occupies_slot())
            .filter_map(terms)
            .map(|t| u32::from(t.gpuCount))
            .sum(),
        pending_collateral: live
            .iter()
            .filter(|j| j.state == JobState::Bid)
            .filter_map(terms)
            .map(|t| t.collateral.to::<u128>())
            .sum(),
    })
}

async fn handle(s: &Arc<Shared>, which: Logs, log: &Log, seen: Instant, b: &mut Option<Budget>) {
    let Ok(e) = MarketEvents::decode_log(&log.inner) else {
        return;
    };
    let r = match e.data {
        MarketEvents::OrderCreated(o) => on_order(s, o, seen, b, false).await.map(|_| ()),
        MarketEvents::LeaseStarted(l) if which == Logs::Orders => {
            acknowledge_early(s, &l);
            Ok(())
        }
        MarketEvents::LeaseStarted(l) => on_lease(s, l).await,
        MarketEvents::LeaseClosed(c) => on_closed(s, &c),
        MarketEvents::LeaseFaulted(f) if f.provider == s.cfg.owner => {
            error!(lease = %f.leaseId, kind = %crate::results::kind_name(f.kind), slashed = %f.slashed, "this provider was slashed");
            s.metrics.slashed.fetch_add(1, Relaxed);
            let r = s.db().unhold(f.leaseId).map_err(anyhow::Error::from);
            r.and_then(|()| end_lease(s, f.leaseId, JobState::Faulted, U96::ZERO))
        }
        MarketEvents::HeldReleased(h) if h.provider == s.cfg.owner => {
            info!(lease = %h.leaseId, collateral = %h.collateral, "held collateral released");
            s.metrics.held_released.fetch_add(1, Relaxed);
            s.db().unhold(h.leaseId).map_err(anyhow::Error::from)
        }
        MarketEvents::OrderCancelled(c) => lost(s, c.orderId, "order cancelled"),
        _ => Ok(()),
    };
    if let Err(e) = r {
        error!(error = %e, "handling a log failed");
    }
}

fn lost(s: &Shared, id: B256, why: &str) -> Result<()> {
    if s.db().advance(
        id,
        JobState::Bid,
        JobState::Lost,
        Some(Set::Note(why.into())),
    )? {
        info!(order = %id, why, "bid lost");
    }
    Ok(())
}

/// Decide on order `o` and bid when it fits (`again`: a deferred order looked at once more).
/// Returns whether it is kept for another look (skipped only for want of capacity).
async fn on_order(
    s: &Arc<Shared>,
    o: Market::OrderCreated,
    seen: Instant,
    b: &mut Option<Budget>,
    again: bool,
) -> Result<bool> {
    let id = o.orderId;
    if s.stop.is_cancelled() || s.db().job(id)?.is_some() {
        return Ok(false);
    }
    let p = &o.params;
    let promised = match b {
        Some(b) => *b,
        None => *b.insert(budget(s)?),
    };
    let offer = {
        let mut o = lock(&s.offer).clone();
        o.kinds = s.kinds();
        o.free_slots = o.slots.saturating_sub(promised.busy);
        o.held_gpus = promised.gpus;
        o.free_stake = o.free_stake.saturating_sub(promised.pending_collateral);
        o
    };
    let ask = Ask {
        gpu_class: p.gpuClass,
        gpu_count: p.gpuCount,
        vram_gib: p.vramGiB,
        job_kind: p.jobKind,
        max_price: p.maxPricePerSecond.to::<u128>(),
        collateral: p.collateral.to::<u128>(),
        token_decimals: s.tokens.get(&p.token).copied(),
    };
    let price = match evaluate(&ask, &offer, &s.cfg.pricing) {
        Ok(p) => p,
        Err(skip) => {
            let full = matches!(
                skip,
                Skip::Busy(_) | Skip::GpusBusy { .. } | Skip::Stake { .. }
            );
            // A kept order looked at again is kept as it is (no write per look).
            let kept = if full && !again {
                let log = o.encode_log_data();
                s.db().defer(
                    id,
                    o.biddingEnd.to::<u64>(),
                    log.topics(),
                    &log.data,
                    DEFERRED_MAX,
                )?
            } else {
                full
            };
            if !(again && full) {
                s.metrics.skip(skip.label());
                debug!(order = %id, reason = %skip, deferred = kept, "not bidding");
            }
            return Ok(kept);
        }
    };
    let spec = match tokio::time::timeout(
        Duration::from_secs(10),
        crate::http::spec_for(
            &s.builtin.fetcher,
            &s.cfg.data_dir,
            id,
            &p.specURI,
            p.specHash,
        ),
    )
    .await
    {
        Ok(Ok(spec)) => spec,
        Ok(Err(e)) => {
            if p.specURI == gridlease_core::spec::PUSH_URI {
                let mut waiting = lock(&s.awaiting_push);
                if waiting.len() >= 10_000 {
                    waiting.clear(); // bounded: a push then finds its order in the logs
                }
                waiting.insert(id, o.clone());
            }
            s.metrics.skip("spec");
            info!(order = %id, error = %e, "not bidding: spec unusable");
            return Ok(false);
        }
        Err(_) => {
            s.metrics.skip("spec");
            info!(order = %id, "not bidding: spec download timed out");
            return Ok(false);
        }
    };
    if let Err(e) = s.executor(&spec.workload) {
        s.metrics.skip("unsupported");
        info!(order = %id, why = %e, "not bidding");
        return Ok(false);
    }
    let job = Job {
        id,
        state: JobState::Bid,
        tenant: o.tenant,
        terms: p.abi_encode(),
        spec: Some(String::from_utf8_lossy(&spec.canonical_json()).into_owned()),
        price,
        ..Job::default()
    };
    if !s.db().insert(&job)? {
        return Ok(false);
    }
    if let Some(b) = b {
        b.busy += 1;
        b.gpus += u32::from(ask.gpu_count);
        b.pending_collateral += ask.collateral;
    }
    if let (Some(signer), false) = (&s.bid_signer, p.instant) {
        // Signed mode: the row above keeps the slot and the stake reserved (PD-01) until the
        // order's lease (ours or another's) or its cancellation; the bid itself costs no gas.
        let signed = sign_bid(s, signer, id, price, o.biddingEnd.to::<u64>(), seen).await;
        if let Err(e) = &signed {
            lost(s, id, &format!("cannot sign a bid: {e:#}"))?;
        }
        return signed.map(|()| false);
    }
    let call = Market::bidCall {
        orderId: id,
        price: U96::from(price),
    };
    let sent =
        s.tx.send(s.market, call.abi_encode().into(), |t| journal(s, id, t))
            .await;
    match sent {
        Ok(t) => {
            let us = seen.elapsed().as_micros() as u64;
            s.metrics.bids_sent.fetch_add(1, Relaxed);
            s.metrics.bid_latency_us.fetch_add(us, Relaxed);
            info!(order = %id, price = %price, tx = %t.hash, latency_us = us, "bid sent");
            let s2 = s.clone();
            s.tracker.spawn(async move { watch_bid(&s2, id, t).await });
        }
        Err(ChainError::Revert(r)) => {
            s.metrics.skip(&r.name);
            lost(s, id, &r.to_string())?;
        }
        Err(e) => {
            // The bid may or may not be in the node's pool: stay `Bid` (a lease log or the order's
            // end settles it) rather than free a slot we might have won.
            warn!(order = %id, error = %e, "bid broadcast failed");
        }
    }
    Ok(false)
}

/// Sign a bid on auction `id` valid until its bid window plus the market's award grace, and keep
/// it for keepers (`GET /bids/<order id>`).
async fn sign_bid(
    s: &Shared,
    signer: &alloy::signers::local::PrivateKeySigner,
    id: B256,
    price: u128,
    bidding_end: u64,
    seen: Instant,
) -> Result<()> {
    let params = Market::new(s.market, &s.client().provider)
        .params()
        .call()
        .await
        .map_err(classify)?;
    let expiry = bidding_end + u64::from(params.awardGrace);
    let domain = gridlease_core::eip712::market_domain(s.client().chain_id, s.market);
    let bid =
        gridlease_core::eip712::ServedBid::sign(&domain, signer, s.cfg.owner, id, price, expiry)?;
    crate::signed::save(&s.cfg.data_dir, &bid)
        .with_context(|| format!("cannot keep the signed bid on {id}"))?;
    let us = seen.elapsed().as_micros() as u64;
    s.metrics.bids_signed.fetch_add(1, Relaxed);
    info!(order = %id, price = %price, expiry, latency_us = us, "signed bid kept for keepers");
    Ok(())
}

pub(crate) fn journal(s: &Shared, id: B256, t: &Signed) -> Result<(), String> {
    s.db()
        .set_tx(id, t.hash, t.raw.to_vec())
        .map_err(|e| e.to_string())
}

async fn watch_bid(s: &Shared, id: B256, t: Signed) {
    let sent = Instant::now();
    match s
        .tx
        .confirm(t, Duration::from_secs(600), |n| journal(s, id, n))
        .await
    {
        Ok(Outcome::Mined(r)) => {
            mined(s, sent);
            if !r.status() {
                let _ = lost(s, id, "bid reverted on chain (outbid or order taken)");
            }
        }
        Ok(Outcome::NonceTaken) => {
            let _ = lost(s, id, "bid replaced");
        }
        Err(e) => warn!(order = %id, error = %e, "bid not confirmed"),
    }
}

fn mined(s: &Shared, sent: Instant) {
    s.metrics.tx_mined.fetch_add(1, Relaxed);
    s.metrics
        .tx_latency_ms
        .fetch_add(sent.elapsed().as_millis() as u64, Relaxed);
}

async fn on_lease(s: &Arc<Shared>, l: Market::LeaseStarted) -> Result<()> {
    let id = l.orderId;
    if l.provider != s.cfg.owner {
        return lost(s, id, "another provider won");
    }
    let (start, end) = (l.start.to::<u64>(), l.end.to::<u64>());
    let module = s.modules.by_id(s.client(), s.lens, l.module).await?;
    let job = s.db().job(id)?;
    let won = match job {
        Some(j) if matches!(j.state, JobState::Bid | JobState::Lost) => s.db().advance(
            id,
            j.state,
            JobState::Won,
            Some(Set::Lease(start, end, module)),
        )?,
        Some(_) => false,
        None => {
            // Won without our bid row (a lost database, or a bid from another node on this key):
            // the terms come from the order's log.
            let created = order_log(s, id).await?;
            s.db().insert(&Job {
                id,
                state: JobState::Won,
                tenant: created.tenant,
                terms: created.params.abi_encode(),
                price: l.ratePerSecond.to::<u128>(),
                start,
                end,
                module: Some(module),
                ..Job::default()
            })?
        }
    };
    if won {
        s.metrics.bids_won.fetch_add(1, Relaxed);
        info!(lease = %id, rate = %l.ratePerSecond, start, end, module = %module, "lease won");
        drive(s, id);
    }
    Ok(())
}

/// The `OrderCreated` log of order `id`.
pub(crate) async fn order_log(s: &Shared, id: B256) -> Result<Market::OrderCreated> {
    let head = s
        .client()
        .provider
        .get_block_number()
        .await
        .map_err(classify_rpc)?;
    let filter = Filter::new()
        .address(s.market)
        .event_signature(Market::OrderCreated::SIGNATURE_HASH)
        .topic1(id);
    // In pages: an RPC that refuses wide ranges still finds it (OFF-13).
    logs::first(s.client(), &filter, s.deploy_block, head)
        .await?
        .and_then(|l| l.log_decode::<Market::OrderCreated>().ok())
        .map(|l| l.inner.data)
        .with_context(|| format!("no OrderCreated log for {id}"))
}

/// The tenant pushed the spec of order `o` ([`crate::http`]): evaluate it now, as if its log had
/// just been read (nothing happens when the node already knows the order).
pub(crate) async fn order_pushed(s: &Arc<Shared>, o: Market::OrderCreated) -> Result<()> {
    on_order(s, o, Instant::now(), &mut None, false)
        .await
        .map(|_| ())
}

/// A lease closed: if it is ours, its job ends, and when the market holds its collateral for the
/// fault horizon (`held`) the node remembers to release it then.
fn on_closed(s: &Shared, c: &Market::LeaseClosed) -> Result<()> {
    let id = c.leaseId;
    // Only leases this provider won (not orders it bid on and lost).
    if !s
        .db()
        .job(id)?
        .is_some_and(|j| !matches!(j.state, JobState::Bid | JobState::Lost))
    {
        return Ok(());
    }
    if c.held {
        let at = c.closedAt.to::<u64>();
        s.db().hold(id, at)?;
        info!(lease = %id, closed_at = at, release_after_s = s.fault_horizon, "the market holds this lease's collateral for the fault horizon");
    }
    lock(&s.hold_ends).remove(&id);
    let to = if c.reason == 4 {
        JobState::Faulted
    } else {
        JobState::Closed
    };
    end_lease(s, id, to, c.toProvider)
}

/// Lease `id` is over (`to`: closed or faulted): whatever still runs for it stops.
fn end_lease(s: &Shared, id: B256, to: JobState, paid: U96) -> Result<()> {
    let Some(j) = s.db().job(id)? else {
        return Ok(());
    };
    if j.state.is_terminal() {
        return Ok(());
    }
    if let Some(c) = lock(&s.drivers).remove(&id) {
        // The lease is over: whatever still runs for it stops (PD-02).
        c.cancel();
    }
    if j.state.can_become(to) && s.db().transition(id, j.state, to)? {
        s.metrics.earned.fetch_add(paid.to::<u64>(), Relaxed);
        info!(lease = %id, state = to.name(), paid = %paid, "lease over");
    }
    Ok(())
}

/// Start the driver of lease `id` unless one runs.
fn drive(s: &Arc<Shared>, id: B256) {
    let token = s.kill.child_token();
    {
        let mut d = lock(&s.drivers);
        if d.contains_key(&id) {
            return;
        }
        d.insert(id, token.clone());
    }
    let s2 = s.clone();
    s.tracker.spawn(async move {
        let r = driver(&s2, id, &token).await;
        lock(&s2.drivers).remove(&id);
        if let Err(e) = r {
            error!(lease = %id, error = %e, "job driver stopped");
        }
    });
}

/// Walk job `id` to `Posted` (or a terminal state), one compare-and-set step at a time.
async fn driver(s: &Arc<Shared>, id: B256, cancel: &CancellationToken) -> Result<()> {
    let mut backoff = Duration::from_millis(250);
    let mut waiting = false;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let Some(job) = s.db().job(id)? else {
            return Ok(());
        };
        let step = match job.state {
            JobState::Won => acknowledge(s, &job).await,
            JobState::Acknowledged => match finality_held(s) {
                // OFF-02: the lease itself may still be undone; start once the hold is over.
                Some(until) => {
                    if !waiting {
                        info!(lease = %id, until, "job start held after a deep reorg");
                        waiting = true;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(Duration::from_millis(s.cfg.poll_ms)) => {}
                    }
                    continue;
                }
                None => {
                    let checked = if waiting {
                        still_ours(s, id).await
                    } else {
                        Ok(())
                    };
                    if checked.is_ok() {
                        s.db()
                            .transition(id, JobState::Acknowledged, JobState::Running)?;
                    }
                    checked
                }
            },
            JobState::Running => execute(s, &job, cancel).await,
            JobState::Computed => post(s, &job).await,
            JobState::Posting => reconcile_posting(s, &job).await,
            JobState::Posted => still_posted(s, &job).await,
            _ => return Ok(()),
        };
        match step {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(Step::Stop) => return Ok(()),
            Err(Step::Retry(why)) => {
                s.metrics.rpc_errors.fetch_add(1, Relaxed);
                warn!(lease = %id, state = job.state.name(), why = %why, retry_in_ms = backoff.as_millis() as u64, "job step will be retried");
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(Step::Fail(why)) => {
                error!(lease = %id, why = %why, "job failed");
                s.db()
                    .advance(id, job.state, JobState::Failed, Some(Set::Note(why)))?;
                return Ok(());
            }
        }
    }
}

/// After a finality hold (OFF-02): the lease must still be this provider's on the chain that
/// stands, else the reorg undid it and the job must not run.
async fn still_ours(s: &Shared, id: B256) -> Result<(), Step> {
    let v = s
        .lens()
        .getJob(id)
        .call()
        .await
        .map_err(|e| Step::Retry(classify(e).to_string()))?;
    if v.status == 2 && v.provider == s.cfg.owner {
        Ok(())
    } else {
        Err(Step::Fail(
            "after the finality hold the lease is no longer this provider's (undone by the deep reorg, or closed): not running it".into(),
        ))
    }
}

/// How a step ended when it did not advance.
enum Step {
    /// Transient (RPC): try again.
    Retry(String),
    /// Nothing more can be done for this job.
    Fail(String),
    /// Shutting down.
    Stop,
}

impl From<StateError> for Step {
    fn from(e: StateError) -> Self {
        Self::Fail(e.to_string())
    }
}

impl From<ChainError> for Step {
    fn from(e: ChainError) -> Self {
        Self::Retry(e.to_string())
    }
}

fn job_terms(job: &Job) -> Result<OrderParams, Step> {
    terms(job).ok_or_else(|| Step::Fail("the stored order terms do not decode".into()))
}

/// Acknowledge lease `job` within its module's start window (`Results.acknowledge`), unless it
/// already is (an instant order won by the node's own bid starts acknowledged).
async fn acknowledge(s: &Shared, job: &Job) -> Result<(), Step> {
    let v = s.lens().getJob(job.id).call().await.map_err(classify)?;
    if v.status != 2 {
        return Err(Step::Fail(format!(
            "the lease is not running (status {}): it ended before it started",
            v.status
        )));
    }
    if v.acknowledged {
        s.db()
            .transition(job.id, JobState::Won, JobState::Acknowledged)?;
        info!(lease = %job.id, "acknowledged by the node's own winning bid");
        return Ok(());
    }
    let call = Results::acknowledgeCall { leaseId: job.id };
    let module = s.module_of(job);
    match send_and_confirm(s, module, call.abi_encode().into(), |t| {
        journal(s, job.id, t)
    })
    .await
    {
        Ok(()) => info!(lease = %job.id, "acknowledged"),
        Err(ChainError::Revert(r)) if r.name == "StartWindowOver" => {
            // Nothing can be done for the lease any more: the module refuses a result of an
            // unacknowledged lease past its start window too (a late post cannot erase the
            // no-show), and a service lease is only paid once acknowledged.
            s.metrics.late_acks.fetch_add(1, Relaxed);
            error!(lease = %job.id, alert = true, revert = %r, "too late to acknowledge: the start window passed (a no-show is provable); not running the job");
            return Err(Step::Fail(format!("too late to acknowledge: {r}")));
        }
        Err(ChainError::Revert(r)) if r.name == "LeaseNotRunning" => {
            return Err(Step::Fail(format!(
                "the lease ended before it started: {r}"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    s.db()
        .transition(job.id, JobState::Won, JobState::Acknowledged)?;
    Ok(())
}

/// A lease of this provider seen at the head, before it is `chain.confirmations` deep: acknowledge
/// it now, since the module's start window may be shorter than the time those blocks take (the job
/// itself still starts only at that depth, PD-02). A lease a reorg then removes only costs the
/// acknowledgement's gas; the driver's own step later finds the lease acknowledged.
fn acknowledge_early(s: &Arc<Shared>, l: &Market::LeaseStarted) {
    let id = l.orderId;
    if l.provider != s.cfg.owner || s.cfg.confirmations == 0 || s.stop.is_cancelled() {
        return;
    }
    {
        let mut seen = lock(&s.acked_early);
        if seen.len() >= 10_000 {
            seen.clear(); // bounded: at worst a lease read again is looked up again
        }
        if !seen.insert(id) {
            return;
        }
    }
    let (s2, module) = (s.clone(), l.module);
    s.tracker.spawn(async move {
        let s = &s2;
        let r = async {
            let v = s.lens().getJob(id).call().await.map_err(classify)?;
            if v.status != 2 || v.acknowledged {
                return Ok(false);
            }
            let module = s.modules.by_id(s.client(), s.lens, module).await?;
            let call = Results::acknowledgeCall { leaseId: id };
            send_and_confirm(s, module, call.abi_encode().into(), |_| Ok(())).await?;
            Ok::<_, ChainError>(true)
        }
        .await;
        match r {
            Ok(true) => info!(lease = %id, "acknowledged at the head"),
            Ok(false) => {}
            // The driver acknowledges (or fails) once the lease is deep enough.
            Err(e) => warn!(lease = %id, error = %e, "acknowledging at the head failed; the job's own step tries again"),
        }
    });
}

/// Send and wait for a successful receipt, each transaction (and replacement) handed to
/// `journal` before it leaves; a failed receipt is a revert.
pub(crate) async fn send_and_confirm(
    s: &Shared,
    to: Address,
    input: Bytes,
    mut journal: impl FnMut(&Signed) -> Result<(), String>,
) -> Result<(), ChainError> {
    let t = s.tx.send(to, input, &mut journal).await?;
    let sent = Instant::now();
    match s
        .tx
        .confirm(t, Duration::from_secs(600), &mut journal)
        .await?
    {
        Outcome::Mined(r) if r.status() => {
            mined(s, sent);
            Ok(())
        }
        Outcome::Mined(r) => Err(ChainError::Revert(gridlease_core::chain::Revert {
            name: "failed on chain".into(),
            detail: format!(" (tx {})", r.transaction_hash),
            hint: String::new(),
        })),
        Outcome::NonceTaken => Err(ChainError::Network(
            "nonce taken by another transaction".into(),
        )),
    }
}

async fn execute(s: &Arc<Shared>, job: &Job, cancel: &CancellationToken) -> Result<(), Step> {
    if job.pgid > 0 {
        // A process left by a run before a crash: it goes, and the job runs again from the start.
        crate::executor::kill_leftover(job.pgid);
        s.db().set_pgid(job.id, 0)?;
    }
    let t = job_terms(job)?;
    let spec = match &job.spec {
        Some(js) => serde_json::from_str::<RunSpec>(js)
            .map_err(|e| Step::Fail(format!("stored spec: {e}")))?,
        None => crate::http::spec_for(
            &s.builtin.fetcher,
            &s.cfg.data_dir,
            job.id,
            &t.specURI,
            t.specHash,
        )
        .await
        .map_err(|e| Step::Fail(format!("spec: {e}")))?,
    };
    let now = s.client().now().await?;
    let module = s.modules.get(s.client(), s.module_of(job)).await?;
    let left = stop_at(job.end, module.deadline_grace, s.cfg.post_margin_secs).saturating_sub(now);
    let gpu_lease = Arc::new(s.gpus.acquire(t.gpuCount));
    if let Some(why) = &gpu_lease.shortfall {
        warn!(lease = %job.id, why = %why, "job gets fewer GPUs than asked");
    }
    let run = JobRun {
        id: job.id,
        workload: gpu_lease.apply(spec.workload.clone()),
        time_limit: Duration::from_secs(left),
        work_dir: s.cfg.work_dir.join(job.id.to_string()),
        gpus: gpu_lease.uuids().to_vec(),
        cpu_cores: t.cpuCores,
        ram_gib: t.ramGiB,
        gpu_hold: Some(gpu_lease.clone()),
    };
    if let Workload::Service { .. } = spec.workload {
        return serve(s, job, run, cancel).await;
    }
    let started = Instant::now();
    info!(lease = %job.id, limit_s = left, "job running");
    let outcome = if left == 0 {
        Err(ExecError::TimedOut(Duration::ZERO))
    } else {
        let (id, s2) = (job.id, s.clone());
        let record: OnSpawn = Box::new(move |pgid| {
            let _ = s2.db().set_pgid(id, pgid);
        });
        match s.executor(&spec.workload) {
            Err(e) => Err(ExecError::Unsupported(e)),
            Ok(x) => x.run(run, cancel.clone(), record).await,
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let (bytes, meta) = match outcome {
        Ok(mut out) if s.cfg.corrupt_builtin && spec.workload.kind() == JobKind::MatmulI8 => {
            corrupt(&mut out.result);
            warn!(lease = %job.id, "testing.corrupt_builtin_results: posting a WRONG result");
            (
                out.result,
                serde_json::json!({"ok": true, "seconds": secs, "stderr_tail": out.stderr_tail}),
            )
        }
        Ok(out) => (
            out.result,
            serde_json::json!({"ok": true, "seconds": secs, "stderr_tail": out.stderr_tail}),
        ),
        Err(ExecError::Cancelled) => return Err(Step::Stop),
        Err(e) => {
            s.metrics.jobs_failed.fetch_add(1, Relaxed);
            warn!(lease = %job.id, error = %e, "job failed: posting a failure report as its result");
            // Public (built-in results are): a reason code and nothing read from an input.
            let report = serde_json::json!({
                "ok": false,
                "lease": job.id,
                "reason": e.code(),
                "error": e.public(),
            });
            (serde_json::to_vec(&report).unwrap_or_default(), report)
        }
    };
    let _ = std::fs::remove_dir_all(s.cfg.work_dir.join(job.id.to_string()));
    // The commitment of the bytes kept (and served, and revealed when challenged): 1 KiB leaves,
    // an empty output being one empty leaf (MEC-15).
    let (c, bytes) = tokio::task::spawn_blocking(move || (Commitment::of(&bytes), bytes))
        .await
        .map_err(|e| Step::Fail(format!("committing the result: {e}")))?;
    let meta =
        serde_json::json!({"bytes": bytes.len(), "root": c.root, "size": c.size, "run": meta});
    write_durably(&s.result_path(job.id), &bytes)
        .and_then(|()| {
            write_durably(
                &s.result_path(job.id).with_extension("json"),
                &serde_json::to_vec(&meta).unwrap_or_default(),
            )
        })
        .map_err(|e| Step::Retry(format!("cannot store the result: {e}")))?;
    s.db().set_pgid(job.id, 0)?;
    if s.db().computed(job.id, c.root, c.size)? {
        info!(lease = %job.id, root = %c.root, size = c.size, seconds = secs, "result committed");
    }
    Ok(())
}

/// When a batch job that has not exited is stopped (chain time): at its lease end (the time the
/// tenant pays for), and never later than `jobs.post_margin` before the result deadline
/// (`end + deadlineGrace`), so its report is posted in time.
fn stop_at(end: u64, deadline_grace: u64, post_margin: u64) -> u64 {
    end.min((end + deadline_grace).saturating_sub(post_margin))
}

/// Write `path` so that it is either absent or complete after a crash.
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn meta_hash(s: &Shared, id: B256) -> B256 {
    std::fs::read(s.result_path(id).with_extension("json"))
        .map(keccak256)
        .unwrap_or_default()
}

/// The commitment job `job` computed.
fn commitment(job: &Job) -> Result<Commitment, Step> {
    match job.root {
        Some(root) => Ok(Commitment {
            root,
            size: job.size,
        }),
        None => Err(Step::Fail("computed without a root".into())),
    }
}

async fn post(s: &Shared, job: &Job) -> Result<(), Step> {
    let c = commitment(job)?;
    let uri = format!("{}/results/{}", s.cfg.public_url, job.id);
    let call = Results::postResultCall {
        leaseId: job.id,
        root: c.root,
        size: c.size,
        uri,
        metaHash: meta_hash(s, job.id),
    };
    let module = s.module_of(job);
    let sent =
        s.tx.send(module, call.abi_encode().into(), |t| {
            match s.db().posting(job.id, t.hash, t.raw.to_vec()) {
                Ok(true) => Ok(()),
                Ok(false) => Err("the job left Computed".into()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
    match sent {
        Ok(t) => {
            info!(lease = %job.id, tx = %t.hash, root = %c.root, size = c.size, "result sent");
            Ok(())
        }
        Err(ChainError::Revert(r)) if r.name == "ResultAlreadyPosted" => {
            // Posted by an earlier run whose journal entry was lost: check it is ours.
            let posted = Results::new(module, &s.client().provider)
                .resultOf(job.id)
                .call()
                .await
                .map_err(classify)?;
            if posted == c.hash() {
                s.db()
                    .advance(job.id, JobState::Computed, JobState::Posting, None)?;
                Ok(())
            } else {
                Err(Step::Fail(format!(
                    "another result (commitment {posted}) is on chain"
                )))
            }
        }
        Err(ChainError::Revert(r)) if r.name == "NotABatchJob" => {
            Err(Step::Fail(format!("a service lease posts no result: {r}")))
        }
        Err(e) => post_failed(s, job, &e.to_string()).await,
    }
}

/// A result post failed (a revert or the network): count it, alert, and retry until the
/// result deadline has passed (MEC-15: never give up after one failure).
async fn post_failed(s: &Shared, job: &Job, why: &str) -> Result<(), Step> {
    s.metrics.post_failures.fetch_add(1, Relaxed);
    let grace = s
        .modules
        .get(s.client(), s.module_of(job))
        .await?
        .deadline_grace;
    let deadline = job.end + grace;
    let now = s.client().now().await?;
    if now > deadline {
        error!(lease = %job.id, alert = true, deadline, error = %why, "result post failed and its deadline has passed: giving up");
        return Err(Step::Fail(format!(
            "the result deadline {deadline} passed without the result on chain: {why}"
        )));
    }
    error!(lease = %job.id, alert = true, deadline, left_s = deadline - now, error = %why, "result post failed: retrying until the deadline");
    Err(Step::Retry(format!("result post failed: {why}")))
}

/// After a reorg: a posted result that is no longer on chain goes back to `Posting`, which
/// sends the same signed transaction again (PD-04, OFF-03); one still there ends the driver.
async fn still_posted(s: &Shared, job: &Job) -> Result<(), Step> {
    let results = Results::new(s.module_of(job), &s.client().provider);
    let posted = results.resultOf(job.id).call().await.map_err(classify)?;
    if posted != B256::ZERO {
        return Err(Step::Stop);
    }
    warn!(lease = %job.id, "the posted result is gone from the chain (reorg): sending it again");
    s.db()
        .transition(job.id, JobState::Posted, JobState::Posting)?;
    Ok(())
}

/// A result transaction is recorded: find out whether it landed, rebroadcast the same bytes if
/// not, and go back to `Computed` only when its nonce went to another transaction.
async fn reconcile_posting(s: &Shared, job: &Job) -> Result<(), Step> {
    let c = commitment(job)?;
    let results = Results::new(s.module_of(job), &s.client().provider);
    let posted = results.resultOf(job.id).call().await.map_err(classify)?;
    if posted != B256::ZERO {
        if posted != c.hash() {
            return Err(Step::Fail(format!(
                "a different result (commitment {posted}) is on chain"
            )));
        }
        if s.db()
            .transition(job.id, JobState::Posting, JobState::Posted)?
        {
            s.metrics.results_posted.fetch_add(1, Relaxed);
            info!(lease = %job.id, "result on chain");
        }
        return Ok(());
    }
    let (Some(hash), Some(raw)) = (job.tx, job.raw.clone()) else {
        s.db()
            .transition(job.id, JobState::Posting, JobState::Computed)?;
        return Ok(());
    };
    let tx = s.tx.receipt(hash).await?;
    let signed = match tx {
        Some(r) if !r.status() => {
            // Mined and reverted (the state changed since its simulation): post again, whose
            // simulation says why, counts it and retries until the deadline.
            s.metrics.post_failures.fetch_add(1, Relaxed);
            error!(lease = %job.id, alert = true, tx = %hash, "the result transaction reverted on chain: posting again");
            s.db()
                .transition(job.id, JobState::Posting, JobState::Computed)?;
            return Ok(());
        }
        Some(_) => {
            return Err(Step::Retry(
                "mined; waiting for the node to show the result".into(),
            ));
        }
        None => {
            use alloy::consensus::Transaction;
            use alloy::eips::Decodable2718;
            let env = alloy::consensus::TxEnvelope::decode_2718_exact(&raw)
                .map_err(|e| Step::Fail(format!("stored transaction: {e}")))?;
            Signed {
                hash,
                nonce: env.nonce(),
                max_fee: env.max_fee_per_gas(),
                priority_fee: env.max_priority_fee_per_gas().unwrap_or_default(),
                raw: raw.into(),
            }
        }
    };
    // The same bytes again (OFF-03, OFF-10), then wait for them or a fee-bumped replacement.
    let _ = s.tx.broadcast(&signed).await;
    let sent = Instant::now();
    match s
        .tx
        .confirm(signed, Duration::from_secs(600), |n| journal(s, job.id, n))
        .await?
    {
        Outcome::Mined(_) => mined(s, sent),
        Outcome::NonceTaken => {
            // The nonce went elsewhere; resultOf (next loop) says whether ours landed.
            let again = results.resultOf(job.id).call().await.map_err(classify)?;
            if again == B256::ZERO {
                s.db()
                    .transition(job.id, JobState::Posting, JobState::Computed)?;
            }
        }
    }
    Ok(())
}

/// Testing only: add one to the middle INT32 element of a built-in result.
fn corrupt(result: &mut [u8]) {
    let at = (result.len() / 4 / 2) * 4;
    if let Some(word) = result.get_mut(at..at + 4) {
        let v = i32::from_le_bytes([word[0], word[1], word[2], word[3]]).wrapping_add(1);
        word.copy_from_slice(&v.to_le_bytes());
    }
}

/// Run a service lease until its end (or until it closes: the driver is cancelled). A service
/// that exits is started again after a pause that doubles up to a minute; a service lease posts
/// no result. When the lease's time is up the driver stops and the job waits for the close log.
/// Its escrow is watched every few seconds besides the close log (PD-02): once it is spent the
/// service stops and the node closes the lease itself, which frees its collateral at once.
async fn serve(
    s: &Arc<Shared>,
    job: &Job,
    run: JobRun,
    cancel: &CancellationToken,
) -> Result<(), Step> {
    let mut pause = Duration::from_secs(1);
    loop {
        let now = s.client().now().await?;
        let left = job.end.saturating_sub(now);
        if left == 0 {
            info!(lease = %job.id, "service lease over; waiting for its close");
            return Err(Step::Stop);
        }
        let (id, s2) = (job.id, s.clone());
        let record: OnSpawn = Box::new(move |pgid| {
            let _ = s2.db().set_pgid(id, pgid);
        });
        let this = JobRun {
            time_limit: Duration::from_secs(left),
            ..run.clone()
        };
        info!(lease = %job.id, limit_s = left, "service running");
        let started = Instant::now();
        let stop = cancel.child_token();
        let outcome = match s.executor(&run.workload) {
            Err(e) => Err(ExecError::Unsupported(e)),
            Ok(x) => {
                let run = x.run(this, stop.clone(), record);
                tokio::pin!(run);
                tokio::select! {
                    r = &mut run => r,
                    () = spent(s, job.id) => {
                        stop.cancel();
                        // The executor stops and removes what it started (process group,
                        // container) and frees its GPUs before the lease is closed.
                        let _ = run.await;
                        info!(lease = %job.id, "service lease's escrow is spent: stopping it and closing the lease");
                        let close = Market::closeCall { leaseId: job.id };
                        match send_and_confirm(s, s.market, close.abi_encode().into(), |t| journal(s, job.id, t)).await {
                            Ok(()) | Err(ChainError::Revert(_)) => {}
                            Err(e) => warn!(lease = %job.id, error = %e, "closing the spent lease failed; the keeper or a restart will"),
                        }
                        return Err(Step::Stop);
                    }
                }
            }
        };
        let _ = s.db().set_pgid(job.id, 0);
        match outcome {
            Err(ExecError::Cancelled) => return Err(Step::Stop),
            Err(ExecError::TimedOut(_)) => continue,
            Err(ExecError::Unsupported(e)) => return Err(Step::Fail(e)),
            other => {
                if started.elapsed() > Duration::from_secs(60) {
                    pause = Duration::from_secs(1);
                }
                s.metrics.jobs_failed.fetch_add(1, Relaxed);
                warn!(lease = %job.id, outcome = ?other.map(|o| o.stderr_tail), restart_in_s = pause.as_secs(), "service exited; restarting it");
                tokio::select! {
                    () = cancel.cancelled() => return Err(Step::Stop),
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Returns once lease `id`'s escrow is spent (what it owes reaches what is left), polling every
/// 3 s; never returns while the RPC fails.
async fn spent(s: &Shared, id: B256) {
    let market = s.lens();
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (Ok(job), Ok(owed)) = (
            market.getJob(id).call().await,
            market.accrued(id).call().await,
        ) else {
            continue;
        };
        if job.status == 2 && owed >= job.escrow {
            return;
        }
    }
}

/// Keep the provider live for service leases: one `Staking.heartbeat` whenever half the period
/// has passed since the last one (PD-03), read from the chain (chain time, OFF-21), so restarts
/// and several heartbeat senders never beat more often than needed. RPC errors are retried within
/// a second; a stuck heartbeat is replaced with higher fees by the transaction manager.
async fn heartbeats(s: &Arc<Shared>) {
    let staking = Staking::new(s.staking, &s.client().provider);
    let mut backoff = Duration::from_millis(500);
    loop {
        let next = async {
            let l = staking
                .liveness(s.cfg.owner)
                .call()
                .await
                .map_err(classify)?;
            let (at, period) = (l.at.to::<u64>(), u64::from(l.period).max(2));
            s.metrics.last_heartbeat.store(at, Relaxed);
            let now = s.client().now().await?;
            let due = at + period / 2;
            if at != 0 && now < due {
                return Ok::<_, ChainError>(Duration::from_secs((due - now).min(10)));
            }
            let call = Staking::heartbeatCall {};
            let t =
                s.tx.send(s.staking, call.abi_encode().into(), |_| Ok(()))
                    .await?;
            let sent = Instant::now();
            // Replaced with bumped fees if it does not land; given up on after half a period,
            // when the next one is due anyway.
            match s
                .tx
                .confirm(t, Duration::from_secs(period / 2), |_| Ok(()))
                .await?
            {
                Outcome::Mined(r) if r.status() => {
                    mined(s, sent);
                    s.metrics.heartbeats.fetch_add(1, Relaxed);
                    debug!(tx = %r.transaction_hash, "heartbeat");
                }
                Outcome::Mined(r) => {
                    warn!(tx = %r.transaction_hash, "heartbeat reverted");
                }
                Outcome::NonceTaken => {}
            }
            Ok(Duration::from_secs(1))
        }
        .await;
        let wait = match next {
            Ok(d) => {
                backoff = Duration::from_millis(500);
                d
            }
            Err(e) => {
                s.metrics.rpc_errors.fetch_add(1, Relaxed);
                warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "heartbeat failed; retrying");
                let b = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                b
            }
        };
        tokio::select! {
            () = s.kill.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_does_not_exit_stops_at_its_end_or_a_margin_before_the_deadline() {
        // Devnet: a minute of grace, 30 s margin: stopped at the lease end.
        assert_eq!(stop_at(1_000, 60, 30), 1_000);
        // A margin longer than the grace: that long before the deadline, inside the lease.
        assert_eq!(stop_at(1_000, 10, 30), 980);
        assert_eq!(stop_at(10, 0, 30), 0);
    }

    #[test]
    fn a_finality_hold_lasts_until_the_head_is_confirmations_past_the_reorg() {
        assert_eq!(hold_until(100, 2), 102);
        // With no confirmations configured, one new block on top still ends it.
        assert_eq!(hold_until(100, 0), 101);
        assert_eq!(held(0, 5), None, "never set");
        assert_eq!(held(102, 100), Some(102));
        assert_eq!(held(102, 101), Some(102));
        assert_eq!(held(102, 102), None);
    }
}
