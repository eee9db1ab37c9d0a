//! The keeper's shared state: its configuration, transaction manager, view of the market, store,
//! metrics and the work in flight, read by every part of the loop ([`crate::engine`] builds it).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize},
    },
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, address},
    sol,
};
use gridlease_bindings::IMarket;
use gridlease_chain::Client;
use gridlease_daemon::{lock, txm::TxManager};
use gridlease_fetch::Fetcher;
use gridlease_primitives::units::parse_amount;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    metrics::Metrics,
    store::Store,
    strategy::{Clock, ModuleParams, Policy},
    view::View,
};

sol! {
    /// The OP-stack L1 fee oracle (a predeploy on every OP-stack chain).
    #[sol(rpc)]
    interface IGasPriceOracle {
        function getL1Fee(bytes memory data) external view returns (uint256);
    }

    /// A results module's tenant priority (read when the module has one: a proof earns its fee
    /// only this long after the fault became provable).
    #[sol(rpc)]
    interface ITenantPriority {
        function tenantPriority() external view returns (uint32);
    }
}

/// The OP-stack `GasPriceOracle` predeploy.
pub const OP_GAS_ORACLE: Address = address!("0x420000000000000000000000000000000000000F");

/// Results downloaded and checked at once (each may hold a result of up to 1 GiB).
pub(crate) const CHECKS_AT_ONCE: usize = 2;

/// Why an id is not planned.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Busy {
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
    /// MarketLens (views).
    pub lens: Address,
    /// Staking.
    pub staking: Address,
    /// Where log cursors start.
    pub deploy_block: u64,
    /// Payment token decimals: the deployments file's, and those of tokens the market allowed
    /// since, read when a lease in them is first seen ([`crate::collect::learn_tokens`]).
    pub decimals: Mutex<HashMap<Address, u8>>,
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
    /// The results modules, by id (re-read when governance adds one).
    pub modules: Mutex<HashMap<u8, ModuleParams>>,
    /// Signs bonded challenges (the transaction manager holds the same key).
    pub(crate) wallet: EthereumWallet,
    /// Held shared by every transaction-manager send, exclusively by a bonded one.
    pub(crate) send_gate: tokio::sync::RwLock<()>,
    pub(crate) busy: Mutex<HashMap<B256, Busy>>,
    pub(crate) clock: Mutex<Clock>,
    pub(crate) base_fee: AtomicU64,
    pub(crate) gas_limit: AtomicU64,
    /// Blocks per `eth_getLogs` page (see `collect::next_span`).
    pub(crate) log_span: AtomicU64,
    /// Finished ids that finished before this block were forgotten ([`View::forget`]).
    pub(crate) forgot_before: AtomicU64,
    pub(crate) spent: Mutex<VecDeque<(Instant, u128)>>,
    /// Work in flight, result checks apart (their slots are [`CHECKS_AT_ONCE`]).
    pub(crate) in_flight: AtomicUsize,
    /// Result checks in flight.
    pub(crate) checks: AtomicUsize,
    /// A round of signed-bid requests is under way.
    pub(crate) collecting_bids: AtomicBool,
    /// A withdrawal of earnings is under way.
    pub(crate) withdrawing: AtomicBool,
    pub(crate) l1_oracle: bool,
    pub(crate) last_withdraw: Mutex<Option<Instant>>,
    /// When each planned id was first found due (for the stagger).
    pub(crate) due: Mutex<HashMap<B256, Instant>>,
    /// Signed bids collected for closed auctions, checked and cheapest first.
    pub(crate) signed: Mutex<HashMap<B256, Vec<IMarket::SignedBid>>>,
    /// When each auction's signed bids were last fetched.
    pub(crate) fetched: Mutex<HashMap<B256, Instant>>,
    /// Fetches what others name (signed bids from providers' nodes, specs, inputs, results):
    /// one shared client, http(s) only, no internal address unless allowed (PIN-01..03).
    pub(crate) fetcher: Fetcher,
    /// Node endpoints whose last bid request failed, and when.
    pub(crate) down: Mutex<HashMap<String, Instant>>,
    /// Our challenges seen answered (lease, chunk, deadline), counted once.
    pub(crate) answered: Mutex<HashSet<(B256, u64, u64)>>,
    /// What the logs of the last blocks changed in the view, to undo after a reorg.
    pub(crate) undo: Mutex<crate::view::Undo>,
}

impl Keeper {
    pub(crate) fn client(&self) -> &Client {
        self.tx.client()
    }

    /// The address it sends from.
    pub fn address(&self) -> Address {
        self.tx.from()
    }

    pub(crate) fn decimals_of(&self, token: Address) -> u8 {
        if token == self.stake_token.0 {
            return self.stake_token.1;
        }
        lock(&self.decimals).get(&token).copied().unwrap_or(18)
    }

    /// Token units of `token` for decimal text `amount` (validated in the config).
    pub(crate) fn units(&self, amount: &str, token: Address) -> u128 {
        parse_amount(amount, self.decimals_of(token)).unwrap_or(u128::MAX)
    }

    fn tokens(&self) -> Vec<Address> {
        let mut t: Vec<Address> = lock(&self.decimals).keys().copied().collect();
        if !t.contains(&self.stake_token.0) {
            t.push(self.stake_token.0);
        }
        t.sort_unstable();
        t
    }

    /// The money rules with this hour's budget left.
    pub(crate) fn policy(&self) -> Policy {
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

    pub(crate) fn module_of(&self, id: B256) -> Option<ModuleParams> {
        let m = lock(&self.view).leases.get(&id)?.module;
        lock(&self.modules).get(&m).copied()
    }
}
