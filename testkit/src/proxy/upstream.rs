//! The proxy's side of one connection: reading requests, deciding what the faults make of
//! each (forward, answer, hang, drop), forwarding and rewriting answers.

use std::sync::{Arc, Mutex};

use alloy::{
    consensus::{Transaction, TxEnvelope},
    eips::Decodable2718,
    transports::http::reqwest,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::watch,
};

use super::{Fault, KEEP, STOPPED, State, lock};

/// What every connection shares: where to forward, the client to forward with, the rules.
pub(super) struct Upstream {
    /// The node's HTTP JSON-RPC URL.
    pub(super) url: String,
    /// The client requests are forwarded with.
    pub(super) http: reqwest::Client,
    /// The rules, counts and params, shared with the [`super::Proxy`].
    pub(super) state: Arc<Mutex<State>>,
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
pub(super) async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
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

pub(super) async fn write_response(
    sock: &mut TcpStream,
    status: u16,
    body: &[u8],
) -> std::io::Result<()> {
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
    pub(super) async fn serve(&self, mut sock: TcpStream, mut generation: watch::Receiver<u64>) {
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

    /// The next scripted fault of `method` if a call with `params` is what it waits for, used
    /// up (`Proxy::fail_next`, `Proxy::fail_next_if`).
    fn scripted(&self, method: &str, params: &Value) -> Option<Fault> {
        let mut state = lock(&self.state);
        let queue = state.scripts.get_mut(method)?;
        let next = queue.front()?;
        if next
            .needle
            .as_ref()
            .is_some_and(|n| !params.to_string().contains(n.as_str()))
        {
            return None;
        }
        queue.pop_front().map(|s| s.fault)
    }

    fn rule_for(&self, method: &str) -> Option<Fault> {
        lock(&self.state)
            .rules
            .iter()
            .find(|r| r.method.as_deref().is_none_or(|m| m == method) && r.fault.concerns(method))
            .map(|r| r.fault.clone())
    }

    async fn decide(&self, req: &Value) -> Action {
        let calls: Vec<(&str, &Value)> = match req {
            Value::Array(all) => all
                .iter()
                .filter_map(|r| Some((r["method"].as_str()?, &r["params"])))
                .collect(),
            r => r["method"]
                .as_str()
                .map(|m| (m, &r["params"]))
                .into_iter()
                .collect(),
        };
        let single = !req.is_array();
        for (m, params) in calls {
            let Some(fault) = self.scripted(m, params).or_else(|| self.rule_for(m)) else {
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
