//! What every task of a running node shares ([`Shared`]): the configuration, the chain, the job
//! store, the executors and the counters.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64},
    },
};

use alloy::{
    primitives::{Address, B256},
    sol_types::SolValue,
};
use gridlease_bindings::{IMarket::OrderParams, Market, MarketLens};
use gridlease_chain::Client;
use gridlease_daemon::{lock, txm::TxManager};
use gridlease_primitives::spec::Workload;
use gridlease_workload::merkle::MerkleTree;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    builtin::BuiltinExecutor,
    config::{Config, ExecutorKind},
    executor::{Executor, ProcessExecutor},
    metrics::Metrics,
    pricing::Offer,
    state::{Job, Store},
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
    pub(crate) drivers: Mutex<HashMap<B256, CancellationToken>>,
    /// Orders whose tenant pushes the spec (`gridlease:push`) seen before the push: the push
    /// handler takes the order from here instead of searching the chain's logs for it.
    pub(crate) awaiting_push: Mutex<HashMap<B256, Market::OrderCreated>>,
    /// Specs of orders worth a bid, downloaded beside the poll ([`crate::specs::SpecFetches`]).
    pub(crate) spec_fetches: crate::specs::SpecFetches,
    /// Bounds the chain look-ups that pushes for orders the node has not seen cause.
    pub(crate) push_lookups: crate::guard::LookupGate,
    pub(crate) process: ProcessExecutor,
    /// Docker/Podman, when `jobs.executor` names one.
    pub(crate) container: Option<crate::docker::ContainerExecutor>,
    pub(crate) builtin: BuiltinExecutor,
    /// Whole GPUs per job (`CUDA_VISIBLE_DEVICES`, device requests, the built-in's device).
    pub(crate) gpus: crate::gpu::GpuAllocator,
    /// Registered capacity and the market minimum, refreshed each poll.
    pub(crate) offer: Mutex<Offer>,
    /// When the offer was last read (unix seconds).
    pub(crate) offer_at: AtomicU64,
    /// When the last look for completed leases to close was (unix seconds).
    pub(crate) completed_at: AtomicU64,
    /// When held collateral was last looked at for release (unix seconds).
    pub(crate) released_at: AtomicU64,
    /// Whether the task closing leases and releasing collateral is running (one at a time).
    pub(crate) closing: AtomicBool,
    /// When pushed specs were last pruned.
    pub(crate) pruned_specs: Mutex<Option<std::time::Instant>>,
    /// Results modules by address (their windows are immutable), and module ids to addresses.
    pub(crate) modules: crate::modules::Modules,
    /// End of the hold of posted results (chain time), as last read: no chain read per poll
    /// until it has passed.
    pub(crate) hold_ends: Mutex<HashMap<B256, u64>>,
    /// Leases acknowledged (or looked at) at the head, before they are deep enough to start.
    pub(crate) acked_early: Mutex<std::collections::HashSet<B256>>,
    /// The tree of the result last challenged (answers build one tree at a time).
    pub(crate) proofs: ProofCache,
    /// Challenges an answering task is working on.
    pub(crate) answering: Mutex<std::collections::HashSet<crate::state::Challenge>>,
    /// The operator key, to sign bids in `bidding.mode = "signed"` (None in on-chain mode).
    pub(crate) bid_signer: Option<alloy::signers::local::PrivateKeySigner>,
    /// Open shell sessions per lease ([`crate::api::shell`]).
    pub(crate) shells: ShellSessions,
    /// What the TLS keys of service leases are derived from ([`crate::front::node_secret`]).
    pub(crate) tls_secret: B256,
    /// The connections all service fronts carry at once ([`crate::front::Budget`]).
    pub(crate) tls_budget: crate::front::Budget,
}

/// Shell sessions: those open, and how many may start (kept by `crate::api::shell`).
#[derive(Debug, Default)]
pub struct ShellSessions(pub(crate) Mutex<ShellBook>);

/// What [`ShellSessions`] keeps.
#[derive(Debug, Default)]
pub(crate) struct ShellBook {
    /// Sessions open, per lease.
    pub(crate) per_lease: HashMap<B256, usize>,
    /// Sessions open, per tenant.
    pub(crate) per_tenant: HashMap<Address, usize>,
    /// Session starts each tenant may still make, and when that was counted.
    pub(crate) tenant_starts: HashMap<Address, (f64, std::time::Instant)>,
    /// Session starts the node may still make, and when that was counted.
    pub(crate) node_starts: Option<(f64, std::time::Instant)>,
}

/// The tree of the result last challenged, kept while its chunks are asked for: a run of
/// challenges of one result (each paid for by its bond) reads and hashes it once, and only one
/// result is hashed at a time, whatever the number of challenges.
#[derive(Debug, Default)]
pub struct ProofCache(pub(crate) tokio::sync::Mutex<Option<(B256, Arc<MerkleTree>)>>);

/// The ABI-decoded terms of `job`.
pub fn terms(job: &Job) -> Option<OrderParams> {
    OrderParams::abi_decode(&job.terms).ok()
}

impl Shared {
    /// Where the result of `id` is kept.
    pub fn result_path(&self, id: B256) -> PathBuf {
        self.cfg.data_dir.join("results").join(format!("{id}.bin"))
    }

    /// Where the tail of the running job `id`'s standard error is kept for its tenant (the
    /// node's own directory: a job cannot reach it).
    pub fn log_path(&self, id: B256) -> PathBuf {
        self.cfg.data_dir.join("logs").join(format!("{id}.log"))
    }

    pub(crate) fn db(&self) -> std::sync::MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub(crate) fn client(&self) -> &Client {
        self.tx.client()
    }

    /// The market this node serves, which signed requests must name.
    pub(crate) fn venue(&self) -> gridlease_fetch::Venue {
        gridlease_fetch::Venue {
            chain_id: self.client().chain_id,
            market: self.market,
        }
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

    pub(crate) fn executor(&self, w: &Workload) -> Result<&dyn Executor, String> {
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

    pub(crate) fn kinds(&self) -> u8 {
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
