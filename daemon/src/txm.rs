//! The transaction manager the daemons share: one writer per key, every transaction simulated
//! first, signed locally, journaled by the caller **before** it is broadcast, and then watched
//! until it is mined: rebroadcast as the same raw bytes when the node dropped it, replaced at the
//! same nonce with both fees bumped when it is stuck (OFF-05 to OFF-10, OFF-14).
//!
//! The nonce is kept here, not by alloy's fillers: it starts from the chain's pending count, moves
//! only when a signed transaction was handed to the node (or may have been: a broadcast lost on
//! the network keeps its nonce and goes out again as the same bytes, OFF-10), and resynchronises
//! from the chain after any refusal ("nonce too low" re-signs a fresh transaction, OFF-06), so two
//! sends never share a nonce. The last transactions are remembered by nonce, so a gap a reorg
//! leaves below a watched transaction is filled with the same bytes (OFF-03).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use alloy::{
    eips::Decodable2718,
    eips::Encodable2718,
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};
use tokio::sync::Mutex;
use tracing::{debug, warn};

use gridlease_chain::{ChainError, Client, classify_rpc};

/// How the manager prices and watches transactions.
#[derive(Clone, Debug)]
pub struct TxPolicy {
    /// A transaction not mined after this long is rebroadcast or replaced.
    pub stuck_after: Duration,
    /// Each replacement raises both fees by this many basis points (>= 1,000: geth's 10 %).
    pub bump_bps: u64,
    /// Fees never exceed this multiple of the network's estimate when a watch starts (nor go down
    /// from what the watched transaction pays).
    pub max_fee_multiple: u64,
    /// How often receipts are polled.
    pub poll: Duration,
    /// Gas limit = estimate x (10,000 + this) / 10,000.
    pub gas_margin_bps: u64,
}

impl Default for TxPolicy {
    fn default() -> Self {
        Self {
            stuck_after: Duration::from_secs(24),
            bump_bps: 1_250,
            max_fee_multiple: 5,
            poll: Duration::from_millis(200),
            gas_margin_bps: 2_000,
        }
    }
}

/// A signed transaction, ready to broadcast or already sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// Its hash.
    pub hash: B256,
    /// The raw EIP-2718 bytes: what is rebroadcast, never re-signed with a new nonce.
    pub raw: Bytes,
    /// Its nonce.
    pub nonce: u64,
    /// Max fee per gas it pays.
    pub max_fee: u128,
    /// Priority fee per gas.
    pub priority_fee: u128,
}

struct Inner {
    /// Next nonce to use; `None` = ask the chain.
    next: Option<u64>,
}

/// Fee estimates are reused for this long (a block or so) instead of asked for per transaction.
const FEE_TTL: Duration = Duration::from_millis(1_000);

/// One signer's transaction pipeline.
pub struct TxManager {
    client: Client,
    wallet: EthereumWallet,
    from: Address,
    policy: TxPolicy,
    inner: Mutex<Inner>,
    fees: Mutex<Option<(Instant, u128, u128)>>,
    private: Option<Client>,
    /// The last transactions handed to the node, by nonce: what fills a nonce gap (a reorg or a
    /// node that forgot a transaction) with the same bytes.
    recent: std::sync::Mutex<BTreeMap<u64, Signed>>,
    /// Set by [`TxManager::forget_nonce`]: the next send asks the chain for its nonce.
    resync: std::sync::atomic::AtomicBool,
    /// Below this many wei the sender's balance is low (OFF-20); zero: never.
    low_below: U256,
    /// Whether the last [`TxManager::check_balance`] found the balance low.
    low: std::sync::atomic::AtomicBool,
}

/// Transactions kept in [`TxManager`]'s gap-filling memory.
const RECENT: usize = 256;

/// A simulated and priced transaction (see [`TxManager::quote`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// Gas the simulation used.
    pub gas: u64,
    /// Max fee per gas it would pay.
    pub max_fee: u128,
    /// Priority fee per gas.
    pub priority_fee: u128,
}

impl std::fmt::Debug for TxManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxManager")
            .field("from", &self.from)
            .finish()
    }
}

/// What happened to a watched transaction.
#[derive(Debug)]
pub enum Outcome {
    /// Mined with this receipt (check `status()`).
    Mined(Box<TransactionReceipt>),
    /// Another transaction of ours took the nonce (e.g. one sent before a restart).
    NonceTaken,
}

/// Replacements raise both fees by at least this (geth's default price bump, 10 %), whatever
/// the policy says: a smaller bump is refused by geth as "replacement transaction underpriced".
pub const MIN_BUMP_BPS: u64 = 1_000;
/// A nonce seen used by another transaction this many polls in a row ends the watch.
const NONCE_TAKEN_LOOKS: u32 = 3;
/// How often a send re-signs at a fresh nonce after "nonce too low" before giving up.
const NONCE_RESYNCS: u32 = 3;
/// How often a failed broadcast is retried (200 ms, 400 ms, 800 ms) before `confirm` takes over.
const BROADCAST_RETRIES: u32 = 3;

/// Whether the node refused because the nonce is already used (geth, anvil, reth wording).
fn nonce_too_low(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("nonce too low") || m.contains("nonce is too low") || m.contains("oldnonce")
}

/// `d` plus up to a quarter of it, so clients that failed together do not retry together.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let quarter = (d.as_millis() as u32 / 4).max(1);
    d + Duration::from_millis(u64::from(nanos % quarter))
}

/// Whether the node's refusal means the transaction is (or may be) already there.
fn already_there(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("already known") || m.contains("known transaction") || m.contains("already imported")
}

impl TxManager {
    /// A manager sending from `signer` through `client` (a client without a wallet of its own).
    pub fn new(client: Client, signer: PrivateKeySigner, policy: TxPolicy) -> Self {
        let from = signer.address();
        Self {
            client,
            wallet: EthereumWallet::from(signer),
            from,
            policy,
            inner: Mutex::new(Inner { next: None }),
            fees: Mutex::new(None),
            private: None,
            recent: std::sync::Mutex::new(BTreeMap::new()),
            resync: std::sync::atomic::AtomicBool::new(false),
            low_below: U256::ZERO,
            low: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Call the sender's balance low below `wei` (OFF-20): [`Self::check_balance`] says so once,
    /// and the daemon sheds the transactions it can do without ([`Self::low_balance`]).
    pub fn with_low_balance(mut self, wei: U256) -> Self {
        self.low_below = wei;
        self
    }

    /// Whether the sender's balance was low at the last [`Self::check_balance`]: the daemon sends
    /// what it owes (heartbeats, acknowledgements, results, answers, proofs) and sheds the rest.
    pub fn low_balance(&self) -> bool {
        self.low.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Read the sender's balance and record whether it is low, warning when it falls below the
    /// threshold and saying when it is funded again. Returns the balance in wei.
    pub async fn check_balance(&self) -> Result<U256, ChainError> {
        let wei = self
            .client
            .provider
            .get_balance(self.from)
            .await
            .map_err(classify_rpc)?;
        let low = wei < self.low_below;
        let was = self.low.swap(low, std::sync::atomic::Ordering::Relaxed);
        let eth = |w: U256| alloy::primitives::utils::format_ether(w);
        if low && !was {
            warn!(
                account = %self.from,
                balance_eth = %eth(wei),
                low_below_eth = %eth(self.low_below),
                "the signing key is short of ether for gas: new work is shed so what is owed keeps the gas left; send ether to this account"
            );
        } else if was && !low {
            tracing::info!(account = %self.from, balance_eth = %eth(wei), "the signing key is funded again: taking new work");
        }
        Ok(wei)
    }

    /// Every 30 polls of `poll` (at least every second) until `stop`, [`Self::check_balance`],
    /// handing each balance read to `seen` (OFF-20). A failed read is tried again the next time.
    pub async fn watch_balance(
        &self,
        poll: Duration,
        stop: &tokio_util::sync::CancellationToken,
        mut seen: impl FnMut(U256),
    ) {
        let every = poll.saturating_mul(30).max(Duration::from_secs(1));
        loop {
            match self.check_balance().await {
                Ok(wei) => seen(wei),
                Err(e) => debug!(error = %e, "cannot read the signing key's balance; trying again"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// A transaction of this sender signed outside the manager (a keeper's bonded challenge)
    /// holds `nonce`: the next send signs after it, neither replacing it (were its fees higher)
    /// nor refused as "nonce too low" first.
    pub async fn taken(&self, nonce: u64) {
        let mut inner = self.inner.lock().await;
        inner.next = Some(inner.next.map_or(nonce + 1, |n| n.max(nonce + 1)));
    }

    /// The nonce the next send would sign at, when the manager holds one (it sent since it
    /// started, and no dropped transaction made it ask the chain again). It counts transactions
    /// the public node does not list: one sent only to the private endpoint, or whose broadcast
    /// answer was lost.
    pub async fn next_nonce(&self) -> Option<u64> {
        let next = self.inner.lock().await.next;
        next.filter(|_| !self.resync.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// A transaction of ours that [`Self::send`] returned was dropped for good (no node knows
    /// it, its nonce is still free): the next send takes the chain's nonce, filling the dropped
    /// one's place, instead of the one after it, where it would wait behind the gap (and, were
    /// the dropped bytes ever mined, do its work a second time).
    pub fn forget_nonce(&self) {
        self.resync
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Also send every transaction to `private` first (a private relay against front-running,
    /// KB-04); the public node stays the fallback and the source of receipts.
    pub fn with_private(mut self, private: Client) -> Self {
        self.private = Some(private);
        self
    }

    /// The sending address.
    pub fn from(&self) -> Address {
        self.from
    }

    /// The client (for reads).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Simulate a call of `to` with `input` (a revert is decoded and nothing is sent), sign it at
    /// the next nonce, hand it to `journal` (which must persist it: a crash after this point finds
    /// it there), then broadcast it. Returns the signed transaction; watch it with [`Self::confirm`].
    /// If `journal` fails nothing is sent and the nonce is not used. A broadcast that fails on the
    /// network (after bounded retries of the same bytes) still returns the signed transaction:
    /// it may have arrived, and [`Self::confirm`] rebroadcasts exactly those bytes. "Nonce too
    /// low" for a fresh transaction re-signs at the chain's nonce (journaled again first).
    /// Otherwise an error means the RPC node took no transaction of this call (a revert in
    /// simulation, an RPC failure before the broadcast, a refusal): the caller may try again.
    pub async fn send<J>(&self, to: Address, input: Bytes, journal: J) -> Result<Signed, ChainError>
    where
        J: FnMut(&Signed) -> Result<(), String>,
    {
        let q = self.quote(to, input.clone()).await?;
        self.send_quoted(to, input, &q, journal).await
    }

    /// Simulate a call of `to` with `input` and price it: gas estimation executes the call, so a
    /// revert comes back with its data, decoded, and nothing is signed (OFF-19). It runs on the
    /// pending block ([`Client::estimate_gas`]): a transaction still in the pool, ours or another
    /// sender's, counts. The caller may
    /// decide from the quote whether sending pays (the keeper does) before [`Self::send_quoted`].
    pub async fn quote(&self, to: Address, input: Bytes) -> Result<Quote, ChainError> {
        let req = TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(input);
        let gas = self.client.estimate_gas(req).await?;
        let (max_fee, priority_fee) = self.fees().await?;
        Ok(Quote {
            gas,
            max_fee,
            priority_fee,
        })
    }

    /// [`Self::send`] with the gas and fees of an earlier [`Self::quote`].
    pub async fn send_quoted<J>(
        &self,
        to: Address,
        input: Bytes,
        q: &Quote,
        mut journal: J,
    ) -> Result<Signed, ChainError>
    where
        J: FnMut(&Signed) -> Result<(), String>,
    {
        let req = TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(input)
            .with_chain_id(self.client.chain_id)
            .with_gas_limit(q.gas.saturating_mul(10_000 + self.policy.gas_margin_bps) / 10_000)
            .with_max_fee_per_gas(q.max_fee)
            .with_max_priority_fee_per_gas(q.priority_fee);
        let mut inner = self.inner.lock().await;
        if self
            .resync
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            inner.next = None;
        }
        let mut nonce = match inner.next {
            Some(n) => n,
            None => self.chain_nonce(true).await?,
        };
        let mut resyncs = 0;
        loop {
            let signed = self.sign(req.clone().with_nonce(nonce)).await?;
            journal(&signed).map_err(|e| ChainError::User(format!("not sent: {e}")))?;
            match self.broadcast_retrying(&signed).await {
                Ok(()) => {
                    inner.next = Some(nonce + 1);
                    self.remember(&signed);
                    return Ok(signed);
                }
                Err(ChainError::Network(e)) => {
                    self.remember(&signed);
                    // Unknown whether it arrived. It is journaled, so it is never re-signed with
                    // a new nonce: `confirm` rebroadcasts these bytes until they are mined
                    // (OFF-10). The nonce stays taken by them.
                    warn!(tx = %signed.hash, nonce, error = %e, "broadcast unconfirmed: the same bytes are rebroadcast while waiting");
                    inner.next = Some(nonce + 1);
                    return Ok(signed);
                }
                Err(ChainError::User(e)) if nonce_too_low(&e) && resyncs < NONCE_RESYNCS => {
                    // The node never took this fresh transaction: another of ours (a restart,
                    // a second process) holds the nonce. Resynchronise and sign again (OFF-06).
                    resyncs += 1;
                    let chain = self.chain_nonce(true).await?;
                    warn!(tx = %signed.hash, nonce, chain, "nonce too low: signing again at the chain's nonce");
                    nonce = chain.max(nonce + 1);
                }
                Err(e) => {
                    // Refused: the node never took it, so its nonce is the next send's. The
                    // chain's pending count would leave out our own transactions the node does
                    // not hold (one whose broadcast was lost, one with a private relay), and
                    // sign over one of them. A refusal about the nonce itself asks the chain.
                    inner.next = match &e {
                        ChainError::User(m) if m.to_lowercase().contains("nonce") => None,
                        _ => Some(nonce),
                    };
                    return Err(e);
                }
            }
        }
    }

    fn remember(&self, s: &Signed) {
        let mut r = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.insert(s.nonce, s.clone());
        while r.len() > RECENT {
            r.pop_first();
        }
    }

    /// Rebroadcast our remembered transactions with nonces in `from..to` (the same bytes): a
    /// reorg or a forgetful node left a gap that blocks the transaction at `to`.
    async fn fill_gap(&self, from: u64, to: u64) {
        let gap: Vec<Signed> = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .range(from..to)
            .map(|(_, s)| s.clone())
            .collect();
        if gap.is_empty() {
            warn!(
                from,
                to, "nonce gap with no remembered transaction to fill it"
            );
        }
        for s in gap {
            debug!(tx = %s.hash, nonce = s.nonce, "filling a nonce gap with the same bytes");
            let _ = self.broadcast(&s).await;
        }
    }

    /// [`Self::broadcast`] with bounded exponential backoff (and jitter) on network failures
    /// (429, 5xx, timeouts, dropped connections: OFF-10), always the same bytes. A "nonce too
    /// low" answer to a retry means an earlier try landed: sent.
    async fn broadcast_retrying(&self, s: &Signed) -> Result<(), ChainError> {
        let mut backoff = crate::Backoff::new(Duration::from_millis(200), Duration::from_secs(60));
        let mut tries = 0;
        loop {
            match self.broadcast(s).await {
                Err(ChainError::Network(e)) if tries < BROADCAST_RETRIES => {
                    tries += 1;
                    let wait = backoff.delay();
                    debug!(tx = %s.hash, error = %e, retry_in_ms = wait.as_millis() as u64, "broadcast failed: retrying the same bytes");
                    tokio::time::sleep(jitter(wait)).await;
                    backoff.failed();
                }
                Err(ChainError::User(e)) if tries > 0 && nonce_too_low(&e) => return Ok(()),
                r => return r,
            }
        }
    }

    /// (max fee, priority fee) per gas, from the node's estimate, cached for [`FEE_TTL`].
    async fn fees(&self) -> Result<(u128, u128), ChainError> {
        let mut f = self.fees.lock().await;
        if let Some((at, max, prio)) = *f
            && at.elapsed() < FEE_TTL
        {
            return Ok((max, prio));
        }
        let e = self
            .client
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(classify_rpc)?;
        *f = Some((
            Instant::now(),
            e.max_fee_per_gas,
            e.max_priority_fee_per_gas,
        ));
        Ok((e.max_fee_per_gas, e.max_priority_fee_per_gas))
    }

    async fn sign(&self, req: TransactionRequest) -> Result<Signed, ChainError> {
        let (nonce, max_fee, priority_fee) = (
            req.nonce.unwrap_or_default(),
            req.max_fee_per_gas.unwrap_or_default(),
            req.max_priority_fee_per_gas.unwrap_or_default(),
        );
        let env = req
            .build(&self.wallet)
            .await
            .map_err(|e| ChainError::User(format!("cannot sign the transaction: {e}")))?;
        Ok(Signed {
            hash: *env.tx_hash(),
            raw: env.encoded_2718().into(),
            nonce,
            max_fee,
            priority_fee,
        })
    }

    /// The chain's nonce of the sender (`pending` includes the mempool).
    async fn chain_nonce(&self, pending: bool) -> Result<u64, ChainError> {
        let c = self.client.provider.get_transaction_count(self.from);
        let c = if pending { c.pending() } else { c.latest() };
        c.await.map_err(classify_rpc)
    }

    /// Hand raw bytes to the private endpoint when one is set (KB-04; on its failure, to the
    /// public node as well), else to the node. "Already known" counts as sent.
    pub async fn broadcast(&self, s: &Signed) -> Result<(), ChainError> {
        if let Some(private) = &self.private {
            match Self::broadcast_to(private, s).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(tx = %s.hash, error = %e, "private endpoint refused: sending publicly");
                }
            }
        }
        Self::broadcast_to(&self.client, s).await
    }

    async fn broadcast_to(c: &Client, s: &Signed) -> Result<(), ChainError> {
        match c.provider.send_raw_transaction(&s.raw).await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_error_resp() {
                Some(r) if already_there(&r.message) => Ok(()),
                // A rate limit or an overloaded node answering in JSON-RPC did not look at the
                // transaction: a network condition, retried as the same bytes (OFF-10).
                Some(r) if gridlease_chain::overloaded(r.code) => {
                    Err(ChainError::Network(format!(
                        "broadcast of {} not served: {} ({})",
                        s.hash, r.message, r.code
                    )))
                }
                Some(r) => Err(ChainError::User(format!(
                    "the node refused transaction {}: {}",
                    s.hash, r.message
                ))),
                None => Err(ChainError::Network(format!(
                    "broadcast of {} failed: {e}",
                    s.hash
                ))),
            },
        }
    }

    /// Watch `sent` until it (or a replacement at its nonce) is mined. A transaction the node no
    /// longer knows is rebroadcast as the same bytes; one that is known but not mined after
    /// `stuck_after` is replaced with both fees bumped (each replacement goes through `journal`
    /// first). Network errors are retried with backoff; only `deadline` (wall time) ends the wait.
    pub async fn confirm<J>(
        &self,
        sent: Signed,
        deadline: Duration,
        journal: J,
    ) -> Result<Outcome, ChainError>
    where
        J: FnMut(&Signed) -> Result<(), String>,
    {
        self.confirm_within(sent, deadline, u128::MAX, journal)
            .await
    }

    /// [`Self::confirm`], no replacement paying more than `ceiling` wei per gas (what the work is
    /// worth to the sender: KB-01).
    pub async fn confirm_within<J>(
        &self,
        sent: Signed,
        deadline: Duration,
        ceiling: u128,
        mut journal: J,
    ) -> Result<Outcome, ChainError>
    where
        J: FnMut(&Signed) -> Result<(), String>,
    {
        let p = &self.client.provider;
        let started = Instant::now();
        // The ceiling is a multiple of what the network asks now, never of what `sent` already
        // pays: watched again (after a deadline, or a restart, from the journal's last
        // replacement), a bumped transaction would otherwise raise its own ceiling each time
        // (5x, then 25x, ...). Without an estimate, what it pays is the ceiling.
        let multiple = self.policy.max_fee_multiple as u128;
        let cap = match self.fees().await {
            Ok((estimate, _)) => estimate.saturating_mul(multiple).min(ceiling),
            Err(_) => sent.max_fee,
        }
        .max(sent.max_fee);
        let mut all = vec![sent.hash];
        // Fees the next replacement bumps from: the last one sent, or the last one refused as
        // underpriced (so a refusal is followed by a higher bid, never the same one: OFF-07).
        let mut base = (sent.max_fee, sent.priority_fee);
        let bps = u128::from(self.policy.bump_bps.max(MIN_BUMP_BPS));
        let mut last = sent;
        let mut since = Instant::now();
        // Whether the node still knows the transaction is checked this often (a send whose
        // answer was lost, or one the node dropped, goes out again within it: OFF-09, OFF-10).
        let recheck = self.policy.stuck_after.min(Duration::from_secs(2));
        let mut checked = Instant::now();
        let mut taken = 0;
        let mut backoff = crate::Backoff::new(self.policy.poll, Duration::from_secs(5));
        loop {
            if started.elapsed() > deadline {
                return Err(ChainError::Network(format!(
                    "transaction {} not mined within {}s",
                    last.hash,
                    deadline.as_secs()
                )));
            }
            let mut net_err = None;
            for h in &all {
                match p.get_transaction_receipt(*h).await {
                    Ok(Some(r)) => return Ok(Outcome::Mined(Box::new(r))),
                    Ok(None) => {}
                    Err(e) => net_err = Some(e),
                }
            }
            if let Some(e) = net_err {
                // RPC trouble: keep the transaction, back off, try again (OFF-10, OFF-12).
                let wait = backoff.delay();
                debug!(tx = %last.hash, error = %e, retry_in_ms = wait.as_millis() as u64, "receipt poll failed");
                tokio::time::sleep(jitter(wait)).await;
                backoff.failed();
                continue;
            }
            backoff.succeeded();
            let chain_next = match self.chain_nonce(false).await {
                Ok(n) if n > last.nonce => {
                    // The nonce is used: maybe by ours, mined between receipt polls or not yet
                    // indexed. Give up on it only after a few looks (OFF-06; op txmgr's
                    // `SafeAbortNonceTooLowCount` is 3).
                    taken += 1;
                    if taken >= NONCE_TAKEN_LOOKS {
                        return Ok(Outcome::NonceTaken);
                    }
                    tokio::time::sleep(self.policy.poll).await;
                    continue;
                }
                Ok(n) => {
                    taken = 0;
                    n
                }
                Err(_) => {
                    tokio::time::sleep(backoff.delay()).await;
                    continue;
                }
            };
            if checked.elapsed() >= recheck {
                checked = Instant::now();
                let known = p
                    .get_transaction_by_hash(last.hash)
                    .await
                    .ok()
                    .flatten()
                    .is_some();
                if chain_next < last.nonce {
                    // Earlier nonces of ours are not mined (a reorg removed them): fill the gap
                    // (OFF-03, OFF-09).
                    self.fill_gap(chain_next, last.nonce).await;
                }
                if !known {
                    // Dropped from the mempool, or never arrived: the same bytes again.
                    let _ = self.broadcast(&last).await;
                } else if since.elapsed() >= self.policy.stuck_after && base.0 < cap {
                    since = Instant::now();
                    // Stuck: the same nonce, both fees up by the bump (OFF-07, OFF-08).
                    let bump = |v: u128| (v.saturating_mul(10_000 + bps) / 10_000 + 1).min(cap);
                    let tx = <alloy::consensus::TxEnvelope as Decodable2718>::decode_2718_exact(
                        &last.raw,
                    )
                    .map_err(|e| ChainError::User(format!("cannot decode our own tx: {e}")))?;
                    let mut req: TransactionRequest = tx.into_signed_request();
                    req.from = Some(self.from);
                    let req = req
                        .with_max_fee_per_gas(bump(base.0))
                        .with_max_priority_fee_per_gas(bump(base.1).min(bump(base.0)));
                    let next = self.sign(req).await?;
                    journal(&next).map_err(|e| ChainError::User(format!("not replaced: {e}")))?;
                    base = (next.max_fee, next.priority_fee);
                    match self.broadcast(&next).await {
                        Ok(()) => {
                            self.remember(&next);
                            all.push(next.hash);
                            last = next;
                        }
                        // A send lost on the network may still have reached the node, and
                        // replaced the one before at its nonce: from now on it is the one watched
                        // (and bumped from). If it never arrived, the node does not know it and it
                        // goes out again, as the same bytes, which outbid the one in the pool.
                        Err(e @ ChainError::Network(_)) => {
                            self.remember(&next);
                            all.push(next.hash);
                            warn!(tx = %next.hash, nonce = next.nonce, error = %e, "replacement sent, its answer lost; watching it");
                            last = next;
                        }
                        Err(e) => {
                            // "replacement transaction underpriced" and the like are not fatal:
                            // the original stays valid and the next bump goes higher.
                            warn!(tx = %next.hash, nonce = next.nonce, error = %e, "replacement refused; the next one bids higher");
                        }
                    }
                }
            }
            tokio::time::sleep(self.policy.poll).await;
        }
    }

    /// The receipt of `hash`, if mined.
    pub async fn receipt(&self, hash: B256) -> Result<Option<TransactionReceipt>, ChainError> {
        self.client
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(classify_rpc)
    }
}

trait IntoSignedRequest {
    fn into_signed_request(self) -> TransactionRequest;
}

impl IntoSignedRequest for alloy::consensus::TxEnvelope {
    fn into_signed_request(self) -> TransactionRequest {
        use alloy::consensus::Transaction;
        let mut r = TransactionRequest::default()
            .with_nonce(self.nonce())
            .with_gas_limit(self.gas_limit())
            .with_input(self.input().clone())
            .with_value(self.value());
        if let Some(to) = self.to() {
            r = r.with_to(to);
        }
        if let Some(c) = self.chain_id() {
            r = r.with_chain_id(c);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_transactions_count_as_sent() {
        assert!(already_there("already known"));
        assert!(already_there("Known transaction: 0xabc"));
        assert!(!already_there("nonce too low"));
        assert!(!already_there("replacement transaction underpriced"));
    }
}
