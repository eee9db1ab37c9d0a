//! The transaction manager the daemons share: one writer per key, every transaction simulated
//! first, signed locally, journaled by the caller **before** it is broadcast, and then watched
//! until it is mined: rebroadcast as the same raw bytes when the node dropped it, replaced at the
//! same nonce with both fees bumped when it is stuck (OFF-05 to OFF-10, OFF-14).
//!
//! The nonce is kept here, not by alloy's fillers: it starts from the chain's pending count, moves
//! only when a signed transaction was handed to the node, and resynchronises from the chain after
//! any refusal, so a failed send never leaves a gap and two sends never share a nonce.

use std::time::{Duration, Instant};

use alloy::{
    eips::Decodable2718,
    eips::Encodable2718,
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::{Address, B256, Bytes},
    providers::Provider,
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};
use tokio::sync::Mutex;

use crate::chain::{ChainError, Client, classify_rpc};

/// How the manager prices and watches transactions.
#[derive(Clone, Debug)]
pub struct TxPolicy {
    /// A transaction not mined after this long is rebroadcast or replaced.
    pub stuck_after: Duration,
    /// Each replacement raises both fees by this many basis points (>= 1,000: geth's 10 %).
    pub bump_bps: u64,
    /// Fees never exceed this multiple of the first estimate.
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
}

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
        }
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
    /// If `journal` fails nothing is sent and the nonce is not used.
    pub async fn send<J>(&self, to: Address, input: Bytes, journal: J) -> Result<Signed, ChainError>
    where
        J: FnOnce(&Signed) -> Result<(), String>,
    {
        let q = self.quote(to, input.clone()).await?;
        self.send_quoted(to, input, &q, journal).await
    }

    /// Simulate a call of `to` with `input` and price it: gas estimation executes the call, so a
    /// revert comes back with its data, decoded, and nothing is signed (OFF-19). The caller may
    /// decide from the quote whether sending pays (the keeper does) before [`Self::send_quoted`].
    pub async fn quote(&self, to: Address, input: Bytes) -> Result<Quote, ChainError> {
        let req = TransactionRequest::default()
            .with_from(self.from)
            .with_to(to)
            .with_input(input);
        let gas = self
            .client
            .provider
            .estimate_gas(req)
            .await
            .map_err(classify_rpc)?;
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
        journal: J,
    ) -> Result<Signed, ChainError>
    where
        J: FnOnce(&Signed) -> Result<(), String>,
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
        let nonce = match inner.next {
            Some(n) => n,
            None => self.chain_nonce(true).await?,
        };
        let signed = self.sign(req.with_nonce(nonce)).await?;
        journal(&signed).map_err(|e| ChainError::User(format!("not sent: {e}")))?;
        match self.broadcast(&signed).await {
            Ok(()) => {
                inner.next = Some(nonce + 1);
                Ok(signed)
            }
            Err(e) => {
                // Refused or unreachable: ask the chain next time (it may have landed anyway;
                // the journal holds the raw bytes for `confirm`).
                inner.next = None;
                Err(e)
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
        mut journal: J,
    ) -> Result<Outcome, ChainError>
    where
        J: FnMut(&Signed) -> Result<(), String>,
    {
        let p = &self.client.provider;
        let started = Instant::now();
        let cap = sent
            .max_fee
            .saturating_mul(self.policy.max_fee_multiple as u128);
        let mut all = vec![sent.hash];
        let mut last = sent;
        let mut since = Instant::now();
        let mut backoff = self.policy.poll;
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
                let _ = e;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            backoff = self.policy.poll;
            match self.chain_nonce(false).await {
                Ok(n) if n > last.nonce => {
                    // Mined, but maybe between our receipt polls: one more look before giving up.
                    for h in &all {
                        if let Ok(Some(r)) = p.get_transaction_receipt(*h).await {
                            return Ok(Outcome::Mined(Box::new(r)));
                        }
                    }
                    return Ok(Outcome::NonceTaken);
                }
                Ok(_) => {}
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
            if since.elapsed() >= self.policy.stuck_after {
                since = Instant::now();
                let known = p
                    .get_transaction_by_hash(last.hash)
                    .await
                    .ok()
                    .flatten()
                    .is_some();
                if !known {
                    // Dropped from the mempool: the same bytes again (OFF-09).
                    let _ = self.broadcast(&last).await;
                } else if last.max_fee < cap {
                    // Stuck: the same nonce, both fees up by the bump (OFF-07, OFF-08).
                    let bump = |v: u128| {
                        (v.saturating_mul(10_000 + self.policy.bump_bps as u128) / 10_000 + 1)
                            .min(cap)
                    };
                    let tx = <alloy::consensus::TxEnvelope as Decodable2718>::decode_2718_exact(
                        &last.raw,
                    )
                    .map_err(|e| ChainError::User(format!("cannot decode our own tx: {e}")))?;
                    let mut req: TransactionRequest = tx.into_signed_request();
                    req.from = Some(self.from);
                    let req = req
                        .with_max_fee_per_gas(bump(last.max_fee))
                        .with_max_priority_fee_per_gas(bump(last.priority_fee));
                    let next = self.sign(req).await?;
                    journal(&next).map_err(|e| ChainError::User(format!("not replaced: {e}")))?;
                    if self.broadcast(&next).await.is_ok() {
                        all.push(next.hash);
                        last = next;
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
