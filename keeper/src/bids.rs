//! Signed bids (AUC: losing bids cost nothing): the bids provider nodes serve for auctions in
//! their window (`GET <node>/bids/<order id>`), collected with bounded concurrency and size, and
//! checked locally ([`select_signed`]); the lowest is placed on chain (`Market.bidSigned`) while
//! the window is open, since only bids on chain by its end can win (AFR-02).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, aliases::U48, aliases::U96},
    sol_types::{Eip712Domain, SolValue},
};
use gridlease_bindings::{
    IMarket::{OrderParams, SignedBid},
    Market,
};
use gridlease_chain::classify;
use gridlease_daemon::lock;
use gridlease_fetch::{FetchError, Fetcher, read_capped};
use gridlease_primitives::eip712::ServedBid;
use tracing::{debug, info, warn};

use crate::{shared::Keeper, view::Registered};

/// Most signed bids kept per auction, cheapest first (tried in turn when one cannot be placed).
pub const MAX_SIGNED_BIDS: usize = 32;

/// Why a served bid was dropped before its placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// For another order, or an unreadable price, expiry or signature.
    Malformed,
    /// Not signed by the registered operator of the provider it names.
    NotOperator,
    /// Above the order's max price or below the market's minimum.
    Price,
    /// Expired.
    Expired,
}

impl Dropped {
    /// Name, for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Malformed => "signed-bid-malformed",
            Self::NotOperator => "signed-bid-not-operator",
            Self::Price => "signed-bid-price",
            Self::Expired => "signed-bid-expired",
        }
    }
}

/// The bids of `served` worth placing with `Market.bidSigned(order, ..)` at chain time `now`:
/// each recovers (under the market's `domain`) to the operator `providers` registers for the
/// provider it names, is priced within `min_price..=max_price` and unexpired; the lowest
/// [`MAX_SIGNED_BIDS`], cheapest first. The placement's simulation has the last word (stake,
/// capacity, liveness). Also returns why each other bid was dropped.
pub fn select_signed(
    served: &[ServedBid],
    order: B256,
    max_price: u128,
    min_price: u128,
    now: u64,
    domain: &Eip712Domain,
    providers: &HashMap<Address, Registered>,
) -> (Vec<SignedBid>, Vec<Dropped>) {
    let mut keep: Vec<(u128, &ServedBid)> = Vec::new();
    let mut dropped = Vec::new();
    for b in served {
        let (Some(price), true) = (b.price(), b.order == order) else {
            dropped.push(Dropped::Malformed);
            continue;
        };
        let Some(signer) = b.signer(domain) else {
            dropped.push(Dropped::Malformed);
            continue;
        };
        if providers.get(&b.provider).map(|r| r.operator) != Some(signer) {
            dropped.push(Dropped::NotOperator);
        } else if price > max_price || price < min_price {
            dropped.push(Dropped::Price);
        } else if b.expiry < now {
            dropped.push(Dropped::Expired);
        } else if !keep.iter().any(|(_, k)| k.signature == b.signature) {
            keep.push((price, b));
        }
    }
    keep.sort_by_key(|(price, _)| *price);
    keep.truncate(MAX_SIGNED_BIDS);
    let bids = keep
        .into_iter()
        .map(|(price, b)| SignedBid {
            pricePerSecond: U96::from(price),
            expiry: U48::from(b.expiry),
            signature: b.signature.clone(),
        })
        .collect();
    (bids, dropped)
}

/// Signed-bid requests in flight at once.
const BID_FETCHES_AT_ONCE: usize = 8;
/// How long one node may take to answer `GET /bids/<order>`.
const BID_FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// An auction's signed bids are fetched again at most this often while its window is open.
const BID_REFETCH: Duration = Duration::from_secs(2);
/// Largest signed-bid answer read from a node.
const MAX_BID_BYTES: usize = 4_096;
/// A node endpoint that failed a bid request is left out this long.
const ENDPOINT_BACKOFF: Duration = Duration::from_secs(30);

/// An auction in its window: (order id, bid window end, reserve price per second).
type Waiting = (B256, u64, u128);

/// Collect the signed bids on every auction in its bid window from every registered node
/// endpoint ([`BID_FETCHES_AT_ONCE`] requests at a time, [`BID_FETCH_TIMEOUT`] each; failures are
/// skipped and counted), check them ([`select_signed`]) and keep the best, to be placed on chain
/// before the window closes; returns the auctions that have some.
pub(crate) async fn signed_bids(k: &Keeper, now: u64) -> HashSet<B256> {
    let (waiting, endpoints, providers) = {
        let v = lock(&k.view);
        let busy = lock(&k.busy);
        let mut fetched = lock(&k.fetched);
        fetched.retain(|id, _| v.orders.contains_key(id));
        let waiting: Vec<Waiting> = v
            .orders
            .iter()
            .filter(|(id, o)| !o.instant && now <= o.bidding_end && !busy.contains_key(*id))
            .filter(|(id, _)| fetched.get(*id).is_none_or(|t| t.elapsed() >= BID_REFETCH))
            .filter_map(|(id, o)| {
                Some((
                    *id,
                    o.bidding_end,
                    OrderParams::abi_decode(&o.terms)
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
        // Forget bids of auctions that are no longer open, or whose window closed.
        lock(&k.signed).retain(|id, _| v.orders.get(id).is_some_and(|o| now <= o.bidding_end));
        let providers = if waiting.is_empty() || endpoints.is_empty() {
            HashMap::new()
        } else {
            v.providers.clone()
        };
        (waiting, endpoints, providers)
    };
    if !waiting.is_empty() && !endpoints.is_empty() {
        // One read per poll: the floor for the bids.
        let min_price = match Market::new(k.market, &k.client().provider)
            .params()
            .call()
            .await
        {
            Ok(p) => u128::from(p.minPricePerSecond),
            Err(e) => {
                k.metrics.rpc_errors.increment(1);
                warn!(error = %classify(e), "cannot read the market's parameters; signed bids later");
                return lock(&k.signed).keys().copied().collect();
            }
        };
        let due = waiting;
        let domain = gridlease_primitives::eip712::market_domain(k.client().chain_id, k.market);
        let ids: Vec<B256> = due.iter().map(|d| d.0).collect();
        let fetched_now = fetch_all(&k.fetcher, &ids, &endpoints).await;
        let mut served = fetched_now.served;
        for (endpoint, e) in fetched_now.failed {
            k.metrics.bid_fetch_failures.increment(1);
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
    served: HashMap<B256, Vec<ServedBid>>,
    /// (endpoint, error) per failed request.
    failed: Vec<(String, String)>,
    /// Requests not sent because their endpoint had failed earlier in the round.
    skipped: usize,
}

/// `GET <endpoint>/bids/<id>` for every auction of `ids` from every endpoint,
/// [`BID_FETCHES_AT_ONCE`] at a time, [`BID_FETCH_TIMEOUT`] each. Once a request to an endpoint
/// fails, the requests to it still queued are skipped (a dead node costs at most the requests
/// already in flight, not one timeout per auction).
async fn fetch_all(fetcher: &Fetcher, ids: &[B256], endpoints: &[String]) -> Fetched {
    let gate = Arc::new(tokio::sync::Semaphore::new(BID_FETCHES_AT_ONCE));
    let down = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
    let mut fetches = tokio::task::JoinSet::new();
    for id in ids {
        for e in endpoints {
            let (gate, down, http, url, id, e) = (
                gate.clone(),
                down.clone(),
                fetcher.clone(),
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

/// `GET <url>`: the node's signed bid, None when it has none (404). The URL is the one a provider
/// registered, so it is fetched by the rules of [`gridlease_fetch`] (no internal address
/// unless allowed, PIN-02).
async fn fetch_bid(fetcher: &Fetcher, url: &str) -> Result<Option<ServedBid>, String> {
    let r = match fetcher.open(url, None).await {
        Ok(r) => r,
        Err(FetchError::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    // A bid is a few hundred bytes: stop reading at the limit (a node could otherwise send an
    // endless or huge body and hold the poll, and its memory, until the timeout).
    let body = read_capped(url, r, MAX_BID_BYTES as u64)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use gridlease_fetch::{AllowList, Limits};

    use super::*;

    #[test]
    fn signed_bids_are_checked_locally_and_sorted_by_price() {
        use alloy::signers::local::PrivateKeySigner;
        use gridlease_primitives::eip712::market_domain;
        let domain = market_domain(31337, Address::repeat_byte(0xaa));
        let order = B256::repeat_byte(1);
        let (op_a, op_b, stranger) = (
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
            PrivateKeySigner::random(),
        );
        let (pa, pb) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
        let providers: HashMap<Address, Registered> = [(pa, op_a.address()), (pb, op_b.address())]
            .into_iter()
            .map(|(p, operator)| {
                (
                    p,
                    Registered {
                        operator,
                        uri: "http://127.0.0.1:1".into(),
                    },
                )
            })
            .collect();
        let sign = |k: &PrivateKeySigner, provider, price, expiry| {
            ServedBid::sign(&domain, k, provider, order, price, expiry).expect("sign")
        };
        let served = vec![
            sign(&op_a, pa, 50, 1_000),
            sign(&op_b, pb, 40, 1_000),
            // Signed by a key that is not pb's operator.
            sign(&stranger, pb, 10, 1_000),
            // Expired.
            sign(&op_a, pa, 20, 499),
            // Above the order's max.
            sign(&op_b, pb, 101, 1_000),
            // Below the market's min.
            sign(&op_b, pb, 1, 1_000),
            // Another order's bid.
            ServedBid::sign(&domain, &op_a, pa, B256::repeat_byte(2), 30, 1_000).expect("sign"),
        ];
        let (keep, dropped) = select_signed(&served, order, 100, 2, 500, &domain, &providers);
        let prices: Vec<u128> = keep.iter().map(|b| b.pricePerSecond.to::<u128>()).collect();
        assert_eq!(prices, vec![40, 50]);
        assert_eq!(keep[0].signature, served[1].signature);
        assert_eq!(
            dropped,
            vec![
                Dropped::NotOperator,
                Dropped::Expired,
                Dropped::Price,
                Dropped::Price,
                Dropped::Malformed
            ]
        );
        // A bid expiring exactly now is still valid on chain (expiry >= block.timestamp).
        let (keep, _) = select_signed(&served, order, 100, 2, 1_000, &domain, &providers);
        assert_eq!(keep.len(), 2);
        // At most MAX_SIGNED_BIDS, the cheapest.
        let many: Vec<ServedBid> = (0..40).map(|i| sign(&op_a, pa, 60 - i, 1_000)).collect();
        let (keep, _) = select_signed(&many, order, 100, 2, 500, &domain, &providers);
        assert_eq!(keep.len(), MAX_SIGNED_BIDS);
        assert_eq!(keep[0].pricePerSecond.to::<u128>(), 21);
    }

    #[tokio::test]
    async fn a_node_without_a_bid_is_no_failure_and_a_bad_answer_is() {
        use axum::{Router, http::StatusCode, routing::get};
        let bid = gridlease_primitives::eip712::ServedBid::sign(
            &gridlease_primitives::eip712::market_domain(1, alloy::primitives::Address::ZERO),
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
        let http = Fetcher::new(AllowList::loopback(), Limits::default());
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
            &Fetcher::new(AllowList::loopback(), Limits::default()),
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
        let http = Fetcher::new(AllowList::loopback(), Limits::default());
        // A generous deadline: reading the whole body would never end.
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            super::fetch_bid(&http, &url),
        )
        .await
        .expect("the read stops at the limit");
        let e = got.expect_err("too large");
        assert!(e.contains("larger than the 4096-byte cap"), "{e}");
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
        assert!(e.contains("larger than the 4096-byte cap"), "{e}");
    }
}
