//! The running node: collectors -> strategies -> executors, started, polled and stopped here.
//!
//! - **Collect** ([`crate::collect`]). Every `chain.poll_ms` the node reads new logs of the market
//!   and results contracts from its saved cursors, in pages that halve when the RPC refuses a range
//!   (OFF-13). Orders, challenges of its results and its new leases (to acknowledge them at once)
//!   are read up to the head (a bid on an order that a reorg removes simply reverts in simulation:
//!   the order id commits to every term); lease events that start work only once `confirmations`
//!   blocks deep, so no work starts on an award a reorg can undo (OFF-04, PD-02). A cursor whose
//!   block hash is no longer canonical rewinds and re-reads (OFF-01); every handler is idempotent.
//! - **Decide** ([`crate::bidding`]). [`crate::bidding::decide`] on each new order; the spec is
//!   fetched and checked against its hash before a bid, and only workloads an executor runs get
//!   one.
//! - **Act** ([`crate::jobs`]). Bids through the shared [`TxManager`]; each won lease gets one
//!   driver task that walks the job's [`JobState`] machine: acknowledge, run, commit, post. Every
//!   step is a compare-and-set in SQLite and every transaction is journaled before broadcast, so
//!   after `kill -9` a restart resumes each job where it was, never running a finished job again
//!   nor posting twice (OFF-14, PD-04, PD-07).
//!
//! Protocol v2 (`docs/protocol.md` §7): an honest node is never slashed whatever the tenant's job
//! does (MEC-15). It acknowledges every lease it wins within the start window (an instant order won
//! by its own bid already is); every job yields a postable commitment, the 1 KiB-leaf tree over the
//! stored result ([`gridlease_workload::merkle::Commitment::of`]; an empty output is a valid
//! result); a job that fails posts its failure report, and one that does not exit is stopped at its
//! lease end (never later than `end + deadlineGrace - jobs.post_margin`) and its report posted;
//! posting is retried on every revert or network error until `end + deadlineGrace`, each failure
//! counted and logged as an alert. Challenges of its results' chunks are answered from the stored
//! result ([`crate::results`], MEC-04), and leases are closed and held collateral released when due
//! ([`crate::closes`]).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use alloy::sol_types::SolEvent;
use anyhow::{Context, Result};
use gridlease_bindings::{Market, MarketAdmin, Results};
use gridlease_chain::{ChainError, Client, classify};
use gridlease_daemon::{
    Backoff, lock,
    txm::{TxManager, TxPolicy},
};
use gridlease_fetch::{Fetcher, Limits};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{error, info, warn};

use crate::{
    bidding::refresh_offer,
    builtin::BuiltinExecutor,
    collect::{Logs, retry_deferred, scan},
    config::{BidMode, Config},
    executor::ProcessExecutor,
    finality::held,
    gpu,
    jobs::{driver::drive, service::heartbeats},
    metrics::Metrics,
    pricing::Offer,
    shared::Shared,
    state::{JobState, Store},
    unix_now,
};

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
    let app = crate::api::router(s.clone());
    let stop_http = s.kill.clone();
    let http = tokio::spawn(async move {
        axum::serve(
            crate::guard::LimitedListener::new(listener, crate::guard::MAX_CONNECTIONS),
            app.into_make_service_with_connect_info::<crate::guard::Peer>(),
        )
        .with_graceful_shutdown(async move { stop_http.cancelled().await })
        .await
    });
    gridlease_daemon::on_signals(s.stop.clone());
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
    let s4 = s.clone();
    tokio::spawn(async move { watch_balance(&s4).await });
    let backoff = Backoff::new(
        Duration::from_millis(s.cfg.poll_ms),
        Duration::from_secs(10),
    );
    gridlease_daemon::poll(
        &s.stop,
        backoff,
        || tick(&s),
        |e: &ChainError, retry| {
            s.metrics.rpc_errors.increment(1);
            warn!(error = %e, retry_in_ms = retry.as_millis() as u64, "chain poll failed; running jobs continue");
        },
    )
    .await;
    let grace = Duration::from_secs(s.cfg.shutdown_grace_secs);
    info!(
        grace_s = grace.as_secs(),
        "stopping: no new bids; running jobs get the grace"
    );
    if !gridlease_daemon::drain(&s.tracker, grace).await {
        warn!("grace over: stopping running jobs; they resume on restart");
        s.kill.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.tracker.wait()).await;
    }
    s.kill.cancel();
    let _ = http.await;
    info!("stopped");
    Ok(())
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
    let tls_secret = crate::front::node_secret(signer.to_bytes().as_slice());
    let client = Client::connect_with_fallback(&cfg.rpc, cfg.fallback_rpc.as_deref(), None).await?;
    let d = gridlease_daemon::deployment(&client, &cfg.deployments)
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
    for dir in ["results", "logs"] {
        std::fs::create_dir_all(cfg.data_dir.join(dir))
            .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    }
    std::fs::create_dir_all(&cfg.work_dir)
        .with_context(|| format!("cannot create jobs.work_dir {}", cfg.work_dir.display()))?;
    gridlease_daemon::exclusive(&cfg.data_dir, "node.lock", "gridlease-provider")
        .map_err(anyhow::Error::msg)?;
    let db = cfg.data_dir.join("state.db");
    let store = Store::open(&db).with_context(|| {
        format!(
            "state store {} cannot be opened (corrupt?): not starting; move it away to rebuild from the chain's events since the deployment block",
            db.display()
        )
    })?;
    let modules = crate::modules::Modules::default();
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
        job_ram_gib: per_job(
            cfg.job_ram_gib.map(u64::from),
            host_memory_gib(),
            cfg.max_concurrent_jobs,
            "memory (/proc/meminfo): set jobs.max_ram_gib",
        )
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))?,
        job_cpu_cores: per_job(
            cfg.job_cpu_cores.map(u64::from),
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u64),
            // Cores are shared in time, not taken: one job may use all of them.
            1,
            "cores: set jobs.max_cpu_cores",
        )
        .map(|n| u16::try_from(n).unwrap_or(u16::MAX))?,
    };
    info!(
        ram_gib = offer.job_ram_gib,
        cpu_cores = offer.job_cpu_cores,
        "most one job gets (an order asking more is not bid on; one asking none gets this)"
    );
    let results = *results.address();
    let bid_signer = (cfg.bid_mode == BidMode::Signed).then(|| signer.clone());
    let tx = TxManager::new(client, signer, TxPolicy::default()).with_low_balance(cfg.low_balance);
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
        spec_fetches: crate::specs::SpecFetches::default(),
        push_lookups: crate::guard::LookupGate::default(),
        process: ProcessExecutor {
            limits: crate::executor::ProcessLimits {
                max_output: cfg.max_output,
                ..Default::default()
            },
        },
        container: crate::docker::ContainerExecutor::for_node(
            cfg.container.as_ref(),
            &crate::docker::node_label(operator, &cfg.data_dir),
        )
        .await?
        .map(|mut c| {
            c.limits.max_output = cfg.max_output;
            c = c.with_image_book(&cfg.data_dir.join("images.json"));
            c
        }),
        builtin: BuiltinExecutor::new(Fetcher::new(cfg.fetch_allow.clone(), Limits::default())),
        gpus: crate::gpu::GpuAllocator::new(&inventory, cfg.share_gpus),
        offer: Mutex::new(offer),
        offer_at: AtomicU64::new(0),
        completed_at: AtomicU64::new(0),
        released_at: AtomicU64::new(0),
        closing: AtomicBool::new(false),
        pruned_specs: Mutex::new(None),
        modules,
        hold_ends: Mutex::new(HashMap::new()),
        answering: Mutex::new(std::collections::HashSet::new()),
        acked_early: Mutex::new(std::collections::HashSet::new()),
        proofs: crate::shared::ProofCache::default(),
        bid_signer,
        shells: Default::default(),
        tls_secret,
        tls_budget: crate::front::Budget::from_fd_limit(),
        cfg,
    })
}

/// What one job gets at most: `configured`, else the host's `total` shared among `slots` (at
/// least 1). `unread` ends the error when neither is known.
fn per_job(configured: Option<u64>, total: Option<u64>, slots: u32, unread: &str) -> Result<u64> {
    match configured {
        Some(n) => Ok(n),
        None => Ok(
            (total.with_context(|| format!("cannot read this host's {unread}"))?
                / u64::from(slots.max(1)))
            .max(1),
        ),
    }
}

/// This host's memory in whole GiB (`MemTotal` in `/proc/meminfo`).
fn host_memory_gib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib >> 20)
}

/// Once an hour, beside the poll: delete the pushed specs of orders that can no longer run here
/// ([`crate::specs::prune_pushed`]), the results nothing can ask for any more
/// ([`crate::results::prune_results`]) and the images this node pulled that no job used in
/// `jobs.keep_images` ([`crate::docker::ContainerExecutor::prune_images`]).
fn prune_files(s: &Arc<Shared>) {
    {
        let mut last = lock(&s.pruned_specs);
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(3_600)) {
            return;
        }
        *last = Some(Instant::now());
    }
    let s2 = s.clone();
    let keep = s.cfg.keep_results_secs.max(s.fault_horizon);
    let results = s.cfg.data_dir.join("results");
    tokio::task::spawn_blocking({
        let s = s.clone();
        move || match crate::results::prune_results(
            &s.store,
            &results,
            crate::unix_now().saturating_sub(keep),
        ) {
            Ok(0) => {}
            Ok(n) => info!(
                deleted = n,
                kept_s = keep,
                "results of ended leases deleted (jobs.keep_results)"
            ),
            Err(e) => warn!(error = %e, "pruning results failed; trying again in an hour"),
        }
    });
    if s.container.is_some() {
        let s = s.clone();
        s.tracker.clone().spawn(async move {
            let before = crate::unix_now().saturating_sub(s.cfg.keep_images_secs);
            if let Some(x) = &s.container {
                let n = x.prune_images(before).await;
                if n > 0 {
                    info!(
                        removed = n,
                        kept_s = s.cfg.keep_images_secs,
                        "images no job used lately removed (jobs.keep_images)"
                    );
                }
            }
        });
    }
    s.tracker.spawn(async move {
        match crate::specs::prune_pushed(
            s2.client(),
            s2.lens,
            s2.cfg.owner,
            &s2.cfg.data_dir,
            crate::specs::KEEP_PUSHED,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => info!(
                deleted = n,
                "pushed specs of orders that can no longer run here deleted"
            ),
            Err(e) => warn!(error = %e, "pruning pushed specs failed; trying again in an hour"),
        }
    });
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
    let head = s.client().head().await?;
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
    // Closes and releases wait for their transactions, fee bumps included: in a task of their
    // own, one at a time, so a slow one never holds back reading orders and acknowledging leases
    // (whose start window is short).
    if !s.closing.swap(true, Relaxed) {
        let s2 = s.clone();
        s.tracker.spawn(async move {
            let r = async {
                crate::closes::close_completed(&s2).await?;
                crate::closes::release_held(&s2).await
            }
            .await;
            if let Err(e) = r {
                s2.metrics.rpc_errors.increment(1);
                warn!(error = %e, "closing leases or releasing collateral failed; trying again within 10 s");
            }
            s2.closing.store(false, Relaxed);
        });
    }
    scan(
        s,
        Logs::Leases,
        head.saturating_sub(s.cfg.confirmations),
        vec![s.market],
        &leases,
    )
    .await?;
    prune_files(s);
    s.metrics.last_poll.store(unix_now(), Relaxed);
    Ok(())
}

/// Read the operator key's balance every 30 polls (OFF-20): below `wallet.low_balance` the node
/// warns and bids on nothing new ([`crate::bidding::on_order`]), so the gas left goes to what it
/// owes (heartbeats, acknowledgements, results, challenge answers); funded again, it bids again.
async fn watch_balance(s: &Shared) {
    let poll = Duration::from_millis(s.cfg.poll_ms);
    s.tx.watch_balance(poll, &s.stop, |wei| {
        let eth: f64 = alloy::primitives::utils::format_ether(wei)
            .parse()
            .unwrap_or(f64::MAX);
        s.metrics.wallet_eth.set(eth);
        s.metrics
            .low_balance
            .set(if s.tx.low_balance() { 1.0 } else { 0.0 });
    })
    .await;
}
