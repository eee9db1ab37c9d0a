//! The chain client shared by the binaries: connect to a JSON-RPC endpoint with an optional
//! signer, and simulate before sending.

use alloy::{
    contract::{CallBuilder, CallDecoder},
    network::EthereumWallet,
    primitives::{Address, B256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{TransactionReceipt, TransactionRequest},
    signers::local::PrivateKeySigner,
};

use std::time::{Duration, Instant};

use crate::{ChainError, RPC_TIMEOUT, Revert, classify, classify_rpc};

/// A connected client.
#[derive(Clone, Debug)]
pub struct Client {
    /// The provider (with the signer's wallet when one was given).
    pub provider: DynProvider,
    /// The endpoint's chain id.
    pub chain_id: u64,
    /// The signer's address, if any.
    pub from: Option<Address>,
    /// The endpoint, for messages.
    pub url: String,
}

/// The transport for `url` (HTTP with a per-call timeout, or a reconnecting WebSocket), and
/// whether it looks local (alloy then polls faster).
async fn transport(url: &str) -> Result<(alloy::transports::BoxTransport, bool), ChainError> {
    use alloy::transports::Transport;
    let parsed: alloy::transports::http::reqwest::Url = url
        .parse()
        .map_err(|e| ChainError::User(format!("RPC URL \"{url}\" is not a URL: {e}")))?;
    if matches!(parsed.scheme(), "ws" | "wss") {
        // A WebSocket reconnects by itself (with backoff) when the node drops it; requests
        // made while it is down wait for the reconnection or fail with a network error.
        let ws = alloy::providers::WsConnect::new(url).with_max_retries(u32::MAX);
        let rpc = alloy::rpc::client::RpcClient::connect_pubsub(ws)
            .await
            .map_err(|e| {
                ChainError::Network(format!(
                    "cannot reach the RPC at {url} ({e}); is the node running and serving WebSocket?"
                ))
            })?;
        let local = rpc.is_local();
        Ok((rpc.transport().clone().boxed(), local))
    } else {
        // Every call has a timeout (OFF-10): a node that hangs is an error to back off from,
        // never a task stuck forever.
        let http = alloy::transports::http::reqwest::Client::builder()
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(|e| ChainError::User(format!("cannot build an HTTP client: {e}")))?;
        let transport = alloy::transports::http::Http::with_client(http, parsed);
        let local = transport.guess_local();
        Ok((transport.boxed(), local))
    }
}

impl Client {
    /// Connect to `url` (http(s):// or ws(s)://); with a signer, transactions are signed locally
    /// and sent from it.
    pub async fn connect(url: &str, signer: Option<PrivateKeySigner>) -> Result<Self, ChainError> {
        Self::connect_with_fallback(url, None, signer).await
    }

    /// [`Self::connect`] with a second endpoint that takes every request the first one fails to
    /// answer ([`crate::failover`], PD-03). Both must serve the same chain.
    pub async fn connect_with_fallback(
        url: &str,
        fallback: Option<&str>,
        signer: Option<PrivateKeySigner>,
    ) -> Result<Self, ChainError> {
        let from = signer.as_ref().map(PrivateKeySigner::address);
        let (primary, local) = transport(url).await?;
        let rpc = match fallback {
            None => alloy::rpc::client::RpcClient::new(primary, local),
            Some(f) => {
                let (secondary, _) = transport(f).await?;
                // Both must answer, on the same chain: a fallback on another chain would mix two
                // chains' blocks and nonces once the primary fails.
                let id = async |t: &alloy::transports::BoxTransport, at: &str| {
                    ProviderBuilder::new()
                        .connect_client(alloy::rpc::client::RpcClient::new(t.clone(), local))
                        .get_chain_id()
                        .await
                        .map_err(|e| {
                            ChainError::Network(format!(
                                "cannot reach the RPC at {at} ({e}): with a fallback RPC both must answer at start, to check they serve the same chain"
                            ))
                        })
                };
                let (a, b) = (id(&primary, url).await?, id(&secondary, f).await?);
                if a != b {
                    return Err(ChainError::User(format!(
                        "the RPC at {url} serves chain {a} but the fallback RPC at {f} serves chain {b}: give a fallback on the same chain"
                    )));
                }
                let both = crate::failover::Failover::new(primary, url, secondary, f);
                alloy::rpc::client::RpcClient::new(both, local)
            }
        };
        let provider = match signer {
            Some(s) => ProviderBuilder::new()
                .wallet(EthereumWallet::from(s))
                .connect_client(rpc)
                .erased(),
            None => ProviderBuilder::new().connect_client(rpc).erased(),
        };
        let chain_id = provider.get_chain_id().await.map_err(|e| {
            ChainError::Network(format!(
                "cannot reach the RPC at {url} ({e}); is the node running? `gridlease-deploy devnet` starts a local one"
            ))
        })?;
        Ok(Self {
            provider,
            chain_id,
            from,
            url: url.to_owned(),
        })
    }

    /// The signer's address, or a usage error.
    pub fn sender(&self) -> Result<Address, ChainError> {
        self.from.ok_or_else(|| {
            ChainError::User("this command sends a transaction: give a wallet".into())
        })
    }

    /// Simulate `req` and return the gas it uses, against the **pending** block: the node's own
    /// transaction pool is executed first, so work another sender's unmined transaction already
    /// does reverts here ("already done") instead of on chain, where it would cost gas (KB-02).
    /// A node that refuses the `pending` tag (some hosted RPCs do) is asked about the latest
    /// block instead; a revert is a revert either way.
    pub async fn estimate_gas(&self, req: TransactionRequest) -> Result<u64, ChainError> {
        match self
            .provider
            .estimate_gas(req.clone())
            .pending()
            .await
            .map_err(classify_rpc)
        {
            Err(ChainError::User(refused)) => {
                tracing::debug!(%refused, "the node refused a pending-block estimate; using the latest block");
                self.provider.estimate_gas(req).await.map_err(classify_rpc)
            }
            other => other,
        }
    }

    /// Latest block number.
    pub async fn head(&self) -> Result<u64, ChainError> {
        self.provider.get_block_number().await.map_err(classify_rpc)
    }

    /// Latest block timestamp.
    pub async fn now(&self) -> Result<u64, ChainError> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(classify_rpc)?
            .ok_or_else(|| ChainError::Network("the node has no latest block".into()))?;
        Ok(block.header.timestamp)
    }
}

/// Simulate `call` (a revert costs nothing and is decoded), then send it and wait for the receipt.
/// A receipt with failed status (state changed between simulation and inclusion) is a revert too.
pub async fn send<P, D>(call: CallBuilder<P, D>) -> Result<TransactionReceipt, ChainError>
where
    P: Provider,
    D: CallDecoder,
{
    call.call_raw().await.map_err(classify)?;
    // What a transaction needs can grow between its estimate and its block: time passes, and a
    // lease that owed nothing when estimated owes a little when mined, which takes writes the
    // estimate never saw. The limit has room above the estimate (unused gas is not paid for).
    let estimate = call.estimate_gas().await.map_err(classify)?;
    let limit = gas_limit(estimate);
    let pending = call.gas(limit).send().await.map_err(classify)?;
    let hash: B256 = *pending.tx_hash();
    let receipt = wait_receipt(pending.provider(), hash, RECEIPT_PATIENCE).await?;
    if !receipt.status() {
        let revert = if receipt.gas_used >= limit.saturating_mul(99) / 100 {
            Revert::out_of_gas(hash, limit)
        } else {
            Revert::failed_on_chain(hash)
        };
        return Err(ChainError::Revert(Box::new(revert)));
    }
    Ok(receipt)
}

/// The gas limit [`send`] gives a transaction estimated at `estimate`: half as much again, and
/// 50,000 more.
fn gas_limit(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 2).saturating_add(50_000)
}

/// How long [`send`] waits for a receipt before it says the transaction is still pending.
pub const RECEIPT_PATIENCE: Duration = Duration::from_secs(600);

/// How long the node may fail every receipt poll in a row before the wait gives up.
const RECEIPT_OUTAGE: Duration = Duration::from_secs(60);

/// Wait for the receipt of sent transaction `hash`, polled at the client's interval. A failed poll
/// (a dropped connection, a rate limit) is tried again, until the node has failed every poll for a
/// minute; the wait ends after `patience`. Either way the error names the hash and says it may
/// still land, so that the caller looks before it sends again (alloy's own wait gives up at the
/// first failed poll: a paid top-up then read as a failure, and was paid again).
pub async fn wait_receipt<P: Provider + ?Sized>(
    p: &P,
    hash: B256,
    patience: Duration,
) -> Result<TransactionReceipt, ChainError> {
    let started = Instant::now();
    let interval = p.client().poll_interval();
    let mut failing_since: Option<Instant> = None;
    let may_land = |why: String| {
        ChainError::Network(format!(
            "sent {hash}, but {why}: it may still land; look it up (or check the state it changes) before sending again"
        ))
    };
    loop {
        match p.get_transaction_receipt(hash).await {
            Ok(Some(receipt)) => return Ok(receipt),
            Ok(None) => failing_since = None,
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= RECEIPT_OUTAGE {
                    return Err(may_land(format!(
                        "the node failed to answer for its receipt for {} s ({e})",
                        RECEIPT_OUTAGE.as_secs()
                    )));
                }
            }
        }
        if started.elapsed() >= patience {
            return Err(may_land(format!(
                "it was not mined within {} s",
                patience.as_secs()
            )));
        }
        tokio::time::sleep(interval).await;
    }
}
