//! A fault-injecting JSON-RPC proxy on loopback, for the daemons' tests: it forwards to a node
//! (anvil) and can be switched at run time to produce what anvil cannot: HTTP 429 and 5xx
//! answers, requests that hang until the client times out, dropped connections, answers lost
//! after the request was executed, `eth_getLogs` ranges refused above N blocks, a frozen or
//! lagging head, JSON-RPC errors, and geth's 10 % price-bump rule for replacements (anvil
//! accepts a 5 % bump).
//!
//! Faults apply to every method or to one named method; the first matching rule wins. Every
//! request is counted per method and its params kept, so a test can assert what a daemon sent.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use gridlease_deploy::proxy::{Fault, Proxy};
//! let proxy = Proxy::start("http://127.0.0.1:8545").await?;
//! proxy.fail(Fault::Status(503)); // everything answers 503
//! proxy.fail_method("eth_getLogs", Fault::MaxLogRange(10));
//! proxy.heal(); // back to forwarding
//! # Ok(()) }
//! ```

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use alloy::{
    consensus::{Transaction, TxEnvelope},
    eips::Decodable2718,
    primitives::Address,
    transports::http::reqwest,
};
use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// What the proxy does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (429, 500, 502, 503, ...) and a short text body.
    Status(u16),
    /// Never answer (until the faults change): the client's timeout has to fire.
    Hang,
    /// Close the connection without an answer.
    Drop,
    /// Forward the request (it takes effect upstream), then close the connection without the
    /// answer: a send that "timed out" but landed.
    LoseAnswer,
    /// Answer with this JSON-RPC error instead of forwarding.
    RpcError {
        /// JSON-RPC error code.
        code: i64,
        /// Error message (e.g. "replacement transaction underpriced").
        message: String,
    },
    /// `eth_getLogs` only: refuse ranges wider than this many blocks (code -32005).
    MaxLogRange(u64),
    /// `eth_blockNumber` only: answer this block number.
    Head(u64),
    /// `eth_blockNumber` only: answer the real head minus this many blocks.
    HeadBehind(u64),
    /// `eth_sendRawTransaction` only: refuse a transaction that replaces one seen at the same
    /// (sender, nonce) unless it raises both fees by at least this many basis points (geth: 1,000).
    PriceBump(u64),
}

impl Fault {
    /// Whether this fault concerns `method` at all (transforms concern one method each).
    fn concerns(&self, method: &str) -> bool {
        match self {
            Self::MaxLogRange(_) => method == "eth_getLogs",
            Self::Head(_) | Self::HeadBehind(_) => method == "eth_blockNumber",
            Self::PriceBump(_) => method == "eth_sendRawTransaction",
            _ => true,
        }
    }
}

#[derive(Clone, Debug)]
struct Rule {
    method: Option<String>,
    fault: Fault,
}

/// The generation that tells the proxy's tasks to end (never reached by rule changes).
const STOPPED: u64 = u64::MAX;

/// Calls kept per method at most (older ones are only counted).
const KEEP: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    counts: HashMap<String, usize>,
    params: HashMap<String, Vec<Value>>,
    /// (sender, nonce) -> (max fee, priority fee) of the last accepted transaction.
    fees: HashMap<(Address, u64), (u128, u128)>,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    port: u16,
    state: Arc<Mutex<State>>,
    /// Bumped on every rule change (hung requests look again) and set to [`STOPPED`] on drop.
    generation: watch::Sender<u64>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Proxy {
    /// Listen on a free loopback port and forward to `upstream` (an HTTP JSON-RPC URL).
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("proxy: cannot bind a loopback port")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State::default()));
        let (generation, _) = watch::channel(0u64);
        let shared = Arc::new(Upstream {
            url: upstream.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .context("proxy: http client")?,
            state: state.clone(),
        });
        let mut stop = generation.subscribe();
        let gen_tx = generation.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = listener.accept() => {
                        let Ok((sock, _)) = r else { continue };
                        let up = shared.clone();
                        let g = gen_tx.subscribe();
                        tokio::spawn(async move { up.serve(sock, g).await });
                    }
                    r = stop.changed() => {
                        if r.is_err() || *stop.borrow() == STOPPED {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Self {
            port,
            state,
            generation,
        })
    }

    /// The proxy's HTTP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn changed(&self) {
        self.generation
            .send_modify(|g| *g = if *g + 1 == STOPPED { 0 } else { *g + 1 });
    }

    /// Apply `fault` to every method (replacing all rules).
    pub fn fail(&self, fault: Fault) {
        lock(&self.state).rules = vec![Rule {
            method: None,
            fault,
        }];
        self.changed();
    }

    /// Apply `fault` to `method` only (replacing an earlier rule for that method; other rules
    /// stay).
    pub fn fail_method(&self, method: &str, fault: Fault) {
        {
            let mut s = lock(&self.state);
            s.rules.retain(|r| r.method.as_deref() != Some(method));
            s.rules.insert(
                0,
                Rule {
                    method: Some(method.to_owned()),
                    fault,
                },
            );
        }
        self.changed();
    }

    /// Forward everything again.
    pub fn heal(&self) {
        lock(&self.state).rules.clear();
        self.changed();
    }

    /// How many requests for `method` arrived (whatever was answered).
    pub fn calls(&self, method: &str) -> usize {
        lock(&self.state).counts.get(method).copied().unwrap_or(0)
    }

    /// The params of the requests for `method` (the first 10,000).
    pub fn params(&self, method: &str) -> Vec<Value> {
        lock(&self.state)
            .params
            .get(method)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.generation.send_replace(STOPPED);
    }
}

struct Upstream {
    url: String,
    http: reqwest::Client,
    state: Arc<Mutex<State>>,
}

/// What to do with one request.
enum Action {
    Forward,
    Reply(u16, Vec<u8>),
    Hang,
    Drop,
    LoseAnswer,
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        .to_string()
        .into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// One HTTP/1.1 request read off `sock`: its body, or `None` when the client closed.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let start = end + 4;
            while buf.len() < start + len {
                let mut chunk = [0u8; 8192];
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[start..start + len].to_vec();
            buf.drain(..start + len);
            return Some(body);
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn write_response(sock: &mut TcpStream, status: u16, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        reason(status),
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.flush().await
}

fn hex_u64(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

impl Upstream {
    /// Serve one connection (keep-alive: many requests).
    async fn serve(&self, mut sock: TcpStream, mut generation: watch::Receiver<u64>) {
        let mut buf = Vec::new();
        loop {
            let body = tokio::select! {
                b = read_request(&mut sock, &mut buf) => b,
                _ = generation.changed() => {
                    if *generation.borrow() == STOPPED { return; }
                    continue;
                }
            };
            let Some(body) = body else { return };
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            self.record(&req);
            loop {
                match self.decide(&req).await {
                    Action::Forward => match self.forward(&body).await {
                        Some((status, out)) => {
                            let out = self.rewrite(&req, out);
                            if write_response(&mut sock, status, &out).await.is_err() {
                                return;
                            }
                        }
                        None => {
                            let out = rpc_error(&req["id"], -32603, "upstream unreachable");
                            if write_response(&mut sock, 502, &out).await.is_err() {
                                return;
                            }
                        }
                    },
                    Action::Reply(status, out) => {
                        if write_response(&mut sock, status, &out).await.is_err() {
                            return;
                        }
                    }
                    Action::Drop => return,
                    Action::LoseAnswer => {
                        let _ = self.forward(&body).await;
                        return;
                    }
                    Action::Hang => {
                        // Until the rules change (then decide again) or the proxy stops.
                        if generation.changed().await.is_err() || *generation.borrow() == STOPPED {
                            return;
                        }
                        continue;
                    }
                }
                break;
            }
        }
    }

    fn record(&self, req: &Value) {
        let mut s = lock(&self.state);
        let one = |s: &mut State, r: &Value| {
            let m = r["method"].as_str().unwrap_or("").to_owned();
            *s.counts.entry(m.clone()).or_default() += 1;
            let kept = s.params.entry(m).or_default();
            if kept.len() < KEEP {
                kept.push(r["params"].clone());
            }
        };
        match req {
            Value::Array(all) => all.iter().for_each(|r| one(&mut s, r)),
            r => one(&mut s, r),
        }
    }

    fn rule_for(&self, method: &str) -> Option<Fault> {
        lock(&self.state)
            .rules
            .iter()
            .find(|r| r.method.as_deref().is_none_or(|m| m == method) && r.fault.concerns(method))
            .map(|r| r.fault.clone())
    }

    async fn decide(&self, req: &Value) -> Action {
        let methods: Vec<&str> = match req {
            Value::Array(all) => all.iter().filter_map(|r| r["method"].as_str()).collect(),
            r => r["method"].as_str().into_iter().collect(),
        };
        let single = !req.is_array();
        for m in methods {
            let Some(fault) = self.rule_for(m) else {
                continue;
            };
            let id = &req["id"];
            return match fault {
                Fault::Status(code) => {
                    Action::Reply(code, format!("{code} {}", reason(code)).into_bytes())
                }
                Fault::Hang => Action::Hang,
                Fault::Drop => Action::Drop,
                Fault::LoseAnswer => Action::LoseAnswer,
                Fault::RpcError { code, message } => {
                    Action::Reply(200, rpc_error(id, code, &message))
                }
                Fault::MaxLogRange(n) if single => match self.log_span(&req["params"][0]).await {
                    Some(span) if span > n => Action::Reply(
                        200,
                        rpc_error(id, -32005, &format!("query exceeds max block range {n}")),
                    ),
                    _ => Action::Forward,
                },
                Fault::PriceBump(bps) if single => self.price_bump(id, &req["params"][0], bps),
                _ => Action::Forward,
            };
        }
        Action::Forward
    }

    /// Blocks spanned by an `eth_getLogs` filter (tags resolved upstream), `None` for a block hash.
    async fn log_span(&self, filter: &Value) -> Option<u64> {
        if filter.get("blockHash").is_some_and(|h| !h.is_null()) {
            return None;
        }
        let mut head = None;
        let mut resolve = async |v: &Value| -> Option<u64> {
            if let Some(n) = hex_u64(v) {
                return Some(n);
            }
            if v.as_str() == Some("earliest") {
                return Some(0);
            }
            if head.is_none() {
                head = self.head().await;
            }
            head
        };
        let from = resolve(&filter["fromBlock"]).await?;
        let to = resolve(&filter["toBlock"]).await?;
        Some(to.saturating_sub(from) + 1)
    }

    async fn head(&self) -> Option<u64> {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []});
        let (_, out) = self.forward(body.to_string().as_bytes()).await?;
        let v: Value = serde_json::from_slice(&out).ok()?;
        hex_u64(&v["result"])
    }

    fn price_bump(&self, id: &Value, raw: &Value, bps: u64) -> Action {
        let Some(bytes) = raw
            .as_str()
            .and_then(|h| alloy::hex::decode(h.trim_start_matches("0x")).ok())
        else {
            return Action::Forward;
        };
        let Ok(tx) = TxEnvelope::decode_2718_exact(&bytes) else {
            return Action::Forward;
        };
        let Ok(from) = tx
            .signature()
            .recover_address_from_prehash(&tx.signature_hash())
        else {
            return Action::Forward;
        };
        let fees = (
            tx.max_fee_per_gas(),
            tx.max_priority_fee_per_gas().unwrap_or_default(),
        );
        let key = (from, tx.nonce());
        let mut s = lock(&self.state);
        if let Some(&(max, prio)) = s.fees.get(&key) {
            let need = |old: u128| {
                old.saturating_mul(10_000 + u128::from(bps))
                    .div_ceil(10_000)
            };
            if fees == (max, prio) {
                return Action::Forward; // the same transaction again: the node says "already known"
            }
            if fees.0 < need(max) || fees.1 < need(prio) {
                return Action::Reply(
                    200,
                    rpc_error(id, -32000, "replacement transaction underpriced"),
                );
            }
        }
        s.fees.insert(key, fees);
        Action::Forward
    }

    async fn forward(&self, body: &[u8]) -> Option<(u16, Vec<u8>)> {
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        let out = r.bytes().await.ok()?;
        Some((status, out.to_vec()))
    }

    /// Apply the head faults to an upstream answer.
    fn rewrite(&self, req: &Value, out: Vec<u8>) -> Vec<u8> {
        if req["method"].as_str() != Some("eth_blockNumber") {
            return out;
        }
        let Some(fault) = self.rule_for("eth_blockNumber") else {
            return out;
        };
        let Ok(mut v) = serde_json::from_slice::<Value>(&out) else {
            return out;
        };
        let Some(real) = hex_u64(&v["result"]) else {
            return out;
        };
        let head = match fault {
            Fault::Head(n) => n,
            Fault::HeadBehind(n) => real.saturating_sub(n),
            _ => return out,
        };
        v["result"] = Value::String(format!("{head:#x}"));
        v.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
        primitives::U256,
        providers::{Provider, ProviderBuilder},
        rpc::types::TransactionRequest,
        signers::local::PrivateKeySigner,
    };

    /// A stand-in upstream: answers every JSON-RPC request with head 0x64 and echoes the method.
    async fn fake_upstream() -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Some(body) = read_request(&mut sock, &mut buf).await {
                        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let result = match req["method"].as_str() {
                            Some("eth_blockNumber") => json!("0x64"),
                            Some("eth_chainId") => json!("0x7a69"),
                            Some("eth_getLogs") => json!([]),
                            Some("eth_sendRawTransaction") => json!(alloy::primitives::B256::ZERO),
                            m => json!(m),
                        };
                        let out = json!({"jsonrpc": "2.0", "id": req["id"], "result": result});
                        if write_response(&mut sock, 200, out.to_string().as_bytes())
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        format!("http://127.0.0.1:{port}")
    }

    fn client(url: String) -> impl Provider {
        client_within(url, Duration::from_secs(10))
    }

    fn client_within(url: String, timeout: Duration) -> impl Provider {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("client");
        let t = alloy::transports::http::Http::with_client(http, url.parse().expect("url"));
        ProviderBuilder::new().connect_client(alloy::rpc::client::RpcClient::new(t, true))
    }

    #[tokio::test]
    async fn forwards_counts_and_injects_each_fault_then_heals() {
        let proxy = Proxy::start(&fake_upstream().await).await.expect("proxy");
        let p = client(proxy.url());
        assert_eq!(p.get_block_number().await.expect("forwarded"), 100);

        proxy.fail(Fault::Status(429));
        let e = p.get_block_number().await.expect_err("429");
        assert!(e.to_string().contains("429"), "{e}");
        proxy.fail(Fault::Status(503));
        let e = p.get_chain_id().await.expect_err("503");
        assert!(e.to_string().contains("503"), "{e}");
        proxy.fail(Fault::Drop);
        assert!(p.get_block_number().await.is_err(), "dropped");
        proxy.fail(Fault::Hang);
        let t0 = std::time::Instant::now();
        let e = client_within(proxy.url(), Duration::from_millis(500))
            .get_block_number()
            .await
            .expect_err("timed out");
        assert!(t0.elapsed() >= Duration::from_millis(400), "{e}");
        proxy.fail(Fault::RpcError {
            code: -32000,
            message: "already known".into(),
        });
        let e = p.get_block_number().await.expect_err("rpc error");
        assert_eq!(
            e.as_error_resp().expect("json-rpc error").message,
            "already known"
        );

        // One method only: the others still go through.
        proxy.heal();
        proxy.fail_method("eth_chainId", Fault::Status(500));
        assert!(p.get_chain_id().await.is_err());
        assert_eq!(p.get_block_number().await.expect("other methods pass"), 100);

        // Stale and lagging heads.
        proxy.fail_method("eth_blockNumber", Fault::Head(7));
        assert_eq!(p.get_block_number().await.expect("frozen"), 7);
        proxy.fail_method("eth_blockNumber", Fault::HeadBehind(30));
        assert_eq!(p.get_block_number().await.expect("behind"), 70);

        proxy.heal();
        assert_eq!(p.get_chain_id().await.expect("healed"), 31_337);
        assert_eq!(proxy.calls("eth_chainId"), 3);
        assert!(proxy.calls("eth_blockNumber") >= 7);
    }

    #[tokio::test]
    async fn pd_03_a_failover_client_takes_what_the_primary_cannot_answer_but_not_its_errors() {
        let upstream = fake_upstream().await;
        let primary = Proxy::start(&upstream).await.expect("proxy");
        let secondary = Proxy::start(&upstream).await.expect("proxy");
        let c = gridlease_core::chain::Client::connect_with_fallback(
            &primary.url(),
            Some(&secondary.url()),
            None,
        )
        .await
        .expect("connect");
        let p = &c.provider;
        let served = |proxy: &Proxy| proxy.calls("eth_blockNumber");
        assert_eq!(p.get_block_number().await.expect("primary"), 100);
        assert_eq!((served(&primary), served(&secondary)), (1, 0));
        // An answer that is an error (a revert, "nonce too low") is the chain's word: no failover.
        primary.fail(Fault::RpcError {
            code: -32000,
            message: "nonce too low".into(),
        });
        assert!(p.get_block_number().await.is_err());
        assert_eq!((served(&primary), served(&secondary)), (2, 0));
        // No answer: the fallback takes it, and the primary is passed over for a while.
        primary.fail(Fault::Status(503));
        assert_eq!(p.get_block_number().await.expect("fallback"), 100);
        assert_eq!((served(&primary), served(&secondary)), (3, 1));
        primary.heal();
        assert_eq!(p.get_block_number().await.expect("fallback"), 100);
        assert_eq!(
            (served(&primary), served(&secondary)),
            (3, 2),
            "the primary is skipped"
        );
    }

    #[tokio::test]
    async fn pd_03_rate_limit_answers_fail_over_but_an_unanswered_transaction_is_not_sent_twice() {
        let upstream = fake_upstream().await;
        let (primary, secondary) = (
            Proxy::start(&upstream).await.expect("proxy"),
            Proxy::start(&upstream).await.expect("proxy"),
        );
        let connect = async || {
            gridlease_core::chain::Client::connect_with_fallback(
                &primary.url(),
                Some(&secondary.url()),
                None,
            )
            .await
            .expect("connect")
        };
        // Providers rate-limit with a JSON-RPC body: not served, so the fallback serves it.
        let c = connect().await;
        primary.fail(Fault::RpcError {
            code: -32005,
            message: "limit exceeded".into(),
        });
        assert_eq!(c.provider.get_block_number().await.expect("fallback"), 100);
        assert_eq!(secondary.calls("eth_blockNumber"), 1);

        // A raw transaction the primary took without answering (it may be in its pool): the
        // call fails and the transaction manager's retry goes to the fallback.
        primary.heal();
        let c = connect().await;
        primary.fail_method("eth_sendRawTransaction", Fault::Status(503));
        let send = async || {
            c.provider
                .raw_request::<_, alloy::primitives::B256>(
                    "eth_sendRawTransaction".into(),
                    ("0x00",),
                )
                .await
        };
        assert!(send().await.is_err(), "not re-sent within the call");
        assert_eq!(secondary.calls("eth_sendRawTransaction"), 0);
        send().await.expect("the retry goes to the fallback");
        assert_eq!(secondary.calls("eth_sendRawTransaction"), 1);
    }

    #[tokio::test]
    async fn refuses_log_ranges_above_the_limit_resolving_tags() {
        let proxy = Proxy::start(&fake_upstream().await).await.expect("proxy");
        let p = client(proxy.url());
        proxy.fail(Fault::MaxLogRange(10));
        let f = alloy::rpc::types::Filter::new();
        assert!(
            p.get_logs(&f.clone().from_block(5).to_block(14))
                .await
                .is_ok()
        );
        let e = p
            .get_logs(&f.clone().from_block(5).to_block(15))
            .await
            .expect_err("11 blocks");
        assert!(e.to_string().contains("max block range 10"), "{e}");
        // `latest` is block 100 upstream.
        assert!(p.get_logs(&f.clone().from_block(91)).await.is_ok());
        assert!(p.get_logs(&f.clone().from_block(90)).await.is_err());
        // Other methods are untouched by a getLogs fault.
        assert_eq!(p.get_block_number().await.expect("passes"), 100);
        assert_eq!(proxy.params("eth_getLogs").len(), 4);
    }

    #[tokio::test]
    async fn a_hung_request_is_answered_once_the_fault_is_lifted() {
        let proxy = Arc::new(Proxy::start(&fake_upstream().await).await.expect("proxy"));
        proxy.fail(Fault::Hang);
        let url = proxy.url();
        let waiting = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let body =
                json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
            http.post(url).json(&body).send().await?.text().await
        });
        let t0 = std::time::Instant::now();
        while proxy.calls("eth_blockNumber") == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "request never arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!waiting.is_finished(), "hung");
        proxy.heal();
        let out = waiting.await.expect("task").expect("answered");
        assert!(out.contains("0x64"), "{out}");
    }

    #[tokio::test]
    async fn price_bump_rule_refuses_replacements_below_ten_percent() {
        let proxy = Proxy::start(&fake_upstream().await).await.expect("proxy");
        let p = client(proxy.url());
        proxy.fail(Fault::PriceBump(1_000));
        let key: PrivateKeySigner = crate::anvil::ANVIL_KEYS[0].parse().expect("key");
        let wallet = EthereumWallet::from(key);
        let raw = async |max: u128, prio: u128| {
            let req = TransactionRequest::default()
                .with_to(Address::ZERO)
                .with_value(U256::ZERO)
                .with_nonce(3)
                .with_chain_id(31_337)
                .with_gas_limit(21_000)
                .with_max_fee_per_gas(max)
                .with_max_priority_fee_per_gas(prio);
            let env = req.build(&wallet).await.expect("sign");
            alloy::eips::Encodable2718::encoded_2718(&env)
        };
        let first = raw(1_000, 100).await;
        assert!(p.send_raw_transaction(&first).await.is_ok());
        assert!(
            p.send_raw_transaction(&first).await.is_ok(),
            "the same bytes again"
        );
        // +5 % on both, then +10 % on the max fee only: refused.
        for (max, prio) in [(1_050, 105), (1_100, 100)] {
            let e = p
                .send_raw_transaction(&raw(max, prio).await)
                .await
                .expect_err("underpriced");
            assert!(
                e.to_string()
                    .contains("replacement transaction underpriced"),
                "{e}"
            );
        }
        assert!(p.send_raw_transaction(&raw(1_100, 110).await).await.is_ok());
    }
}
