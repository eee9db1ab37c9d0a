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
//! use gridlease_testkit::proxy::{Fault, Proxy};
//! let proxy = Proxy::start("http://127.0.0.1:8545").await?;
//! proxy.fail(Fault::Status(503)); // everything answers 503
//! proxy.fail_method("eth_getLogs", Fault::MaxLogRange(10));
//! proxy.heal(); // back to forwarding
//! # Ok(()) }
//! ```

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use alloy::{primitives::Address, transports::http::reqwest};
use anyhow::{Context, Result};
use serde_json::Value;
use tokio::{net::TcpListener, sync::watch};

use upstream::Upstream;

#[cfg(test)]
mod tests;
mod upstream;

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
    /// Faults for the next calls of a method, one each, before its rules (see `fail_next`).
    scripts: HashMap<String, VecDeque<Scripted>>,
    counts: HashMap<String, usize>,
    params: HashMap<String, Vec<Value>>,
    /// (sender, nonce) -> (max fee, priority fee) of the last accepted transaction.
    fees: HashMap<(Address, u64), (u128, u128)>,
}

/// One scripted fault: for the next call of its method (whose params contain `needle`, if any).
#[derive(Debug)]
struct Scripted {
    needle: Option<String>,
    fault: Fault,
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

    /// Answer the next calls of `method` with `faults`, one call each, in order; the calls after
    /// them go by the rules. A sequence that a test would otherwise stage by changing the rules
    /// between calls, on time, whatever the machine's load.
    pub fn fail_next(&self, method: &str, faults: impl IntoIterator<Item = Fault>) {
        self.script(method, None, faults);
    }

    /// [`Self::fail_next`] for only the calls of `method` whose params (as JSON text) contain
    /// `needle`: one contract call among many `eth_call`s, by its selector.
    pub fn fail_next_if(
        &self,
        method: &str,
        needle: &str,
        faults: impl IntoIterator<Item = Fault>,
    ) {
        self.script(method, Some(needle), faults);
    }

    fn script(&self, method: &str, needle: Option<&str>, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.state)
            .scripts
            .entry(method.to_owned())
            .or_default()
            .extend(faults.into_iter().map(|fault| Scripted {
                needle: needle.map(str::to_owned),
                fault,
            }));
        self.changed();
    }

    /// Forward everything again.
    pub fn heal(&self) {
        let mut s = lock(&self.state);
        s.rules.clear();
        s.scripts.clear();
        drop(s);
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
