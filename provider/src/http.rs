//! The node's HTTP API: `/healthz`, Prometheus `/metrics`, `/results/<lease id>` (results of
//! built-in jobs are public, so any verifier can check them; other results only to the lease's
//! tenant, authenticated by a signature: [`gridlease_core::fetch::result_auth_message`]), and
//! `POST /specs/<order id>`: the spec of an order whose `specURI` is
//! [`gridlease_core::spec::PUSH_URI`], pushed by its tenant (signed:
//! [`gridlease_core::fetch::spec_auth_message`]) and kept only when its hash is the order's
//! `specHash`. A pushed spec for an order the node has not bid on yet is evaluated at once.
//! `GET /bids/<order id>` serves the node's signed bid on an auction ([`crate::signed`]).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path as FsPath, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use alloy::primitives::{Address, B256, Signature};
use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use gridlease_bindings::{IMarket::OrderParams, Market};
use gridlease_core::{
    fetch::{AUTH_HEADER, Fetcher, result_auth_message, spec_auth_message},
    spec::{PUSH_URI, RunSpec},
};
use tracing::{info, warn};

use crate::{engine::Shared, unix_now};

/// Counters and gauges of the node.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Bid transactions sent.
    pub bids_sent: AtomicU64,
    /// Signed bids kept for keepers (`bidding.mode = "signed"`).
    pub bids_signed: AtomicU64,
    /// Leases won.
    pub bids_won: AtomicU64,
    /// Orders not bid on, by reason.
    pub skipped: Mutex<BTreeMap<String, u64>>,
    /// Results posted.
    pub results_posted: AtomicU64,
    /// Result posts that failed (reverted, or the network): each is retried until the deadline
    /// and logged as an alert (MEC-15).
    pub post_failures: AtomicU64,
    /// Leases the node could not acknowledge before their start window ended (a no-show is
    /// provable; the job is not run).
    pub late_acks: AtomicU64,
    /// Data-availability challenges of the node's results seen (MEC-04).
    pub challenges_seen: AtomicU64,
    /// Challenges the node answered (revealed the chunk, took the bond).
    pub challenges_answered: AtomicU64,
    /// Challenges left unanswered past their deadline (alert: the result can be failed).
    pub challenges_missed: AtomicU64,
    /// Faults proven against this provider.
    pub slashed: AtomicU64,
    /// Held collateral released after the fault horizon.
    pub held_released: AtomicU64,
    /// Reorgs deeper than `chain.confirmations` seen (OFF-02).
    pub deep_reorgs: AtomicU64,
    /// After a deep reorg, the block until which new jobs do not start and tenants' results are
    /// not released (OFF-02); 0 when none was seen.
    pub finality_hold: AtomicU64,
    /// The owner's withdrawable earnings (Market credit) by token address, in token units.
    pub withdrawable: Mutex<BTreeMap<String, u64>>,
    /// Heartbeats mined (service leases).
    pub heartbeats: AtomicU64,
    /// Chain time of the provider's last heartbeat.
    pub last_heartbeat: AtomicU64,
    /// Jobs whose run failed (reported as their result).
    pub jobs_failed: AtomicU64,
    /// RPC errors seen.
    pub rpc_errors: AtomicU64,
    /// Transactions mined, and their total send-to-receipt time in milliseconds.
    pub tx_mined: AtomicU64,
    /// Sum of send-to-receipt times, ms.
    pub tx_latency_ms: AtomicU64,
    /// Order log seen -> bid broadcast, total microseconds (with `bids_sent`: the mean).
    pub bid_latency_us: AtomicU64,
    /// Paid to the provider by closed leases (token units, all tokens summed).
    pub earned: AtomicU64,
    /// Latest block seen.
    pub head: AtomicU64,
    /// Unix time of the last successful chain poll.
    pub last_poll: AtomicU64,
}

impl Metrics {
    /// Count a skipped order.
    pub fn skip(&self, reason: &str) {
        if let Ok(mut m) = self.skipped.lock() {
            *m.entry(reason.to_owned()).or_default() += 1;
        }
    }
}

/// The router.
pub fn router(s: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/results/{id}", get(result))
        .route("/bids/{id}", get(signed_bid))
        .route(
            "/specs/{id}",
            post(push_spec).layer(DefaultBodyLimit::max(MAX_PUSHED_SPEC)),
        )
        .with_state(s)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(crate::guard::Guard::default()),
            crate::guard::guard,
        ))
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    let last = s.metrics.last_poll.load(Relaxed);
    let age = unix_now().saturating_sub(last);
    // Unhealthy when the chain has not been read for 30 polls (and at least 5 s).
    let limit = (s.cfg.poll_ms * 30 / 1000).max(5);
    if last == 0 || age > limit {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("chain not read for {age}s (RPC {})\n", s.cfg.rpc),
        )
            .into_response();
    }
    let head = s.metrics.head.load(Relaxed);
    let held = match crate::engine::finality_held(&s) {
        Some(until) => format!(
            " (holding job starts and results until block {until}: reorg deeper than chain.confirmations)"
        ),
        None => String::new(),
    };
    (StatusCode::OK, format!("ok head {head}{held}\n")).into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let m = &s.metrics;
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP gridlease_provider_{name} {help}");
        let _ = writeln!(out, "# TYPE gridlease_provider_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "gridlease_provider_{name}{labels} {v}");
        }
    };
    let one = |v: &AtomicU64| vec![(String::new(), v.load(Relaxed))];
    line(
        "bids_sent_total",
        "counter",
        "Bid transactions sent.",
        &one(&m.bids_sent),
    );
    line(
        "bids_signed_total",
        "counter",
        "Signed bids kept for keepers (bidding.mode = signed).",
        &one(&m.bids_signed),
    );
    line(
        "bids_won_total",
        "counter",
        "Leases won.",
        &one(&m.bids_won),
    );
    let skipped: Vec<(String, u64)> = m
        .skipped
        .lock()
        .map(|g| {
            g.iter()
                .map(|(k, v)| (format!("{{reason=\"{k}\"}}"), *v))
                .collect()
        })
        .unwrap_or_default();
    line(
        "orders_skipped_total",
        "counter",
        "Orders not bid on, by reason.",
        &skipped,
    );
    line(
        "results_posted_total",
        "counter",
        "Results posted.",
        &one(&m.results_posted),
    );
    line(
        "result_post_failures_total",
        "counter",
        "Result posts that failed (retried until the deadline; alert).",
        &one(&m.post_failures),
    );
    line(
        "missed_start_windows_total",
        "counter",
        "Leases not acknowledged before their start window ended (alert: a no-show is provable).",
        &one(&m.late_acks),
    );
    line(
        "challenges_seen_total",
        "counter",
        "Data-availability challenges of this node's results seen.",
        &one(&m.challenges_seen),
    );
    line(
        "challenges_answered_total",
        "counter",
        "Challenges answered from the stored result (bond collected).",
        &one(&m.challenges_answered),
    );
    line(
        "challenges_missed_total",
        "counter",
        "Challenges not answered in time (alert: the result can be failed).",
        &one(&m.challenges_missed),
    );
    line(
        "faults_total",
        "counter",
        "Faults proven against this provider (alert).",
        &one(&m.slashed),
    );
    line(
        "held_released_total",
        "counter",
        "Closed leases whose held collateral was released after the fault horizon.",
        &one(&m.held_released),
    );
    let held = s
        .store
        .lock()
        .ok()
        .and_then(|st| st.held_count().ok())
        .unwrap_or_default();
    line(
        "held_leases",
        "gauge",
        "Closed leases whose collateral the market holds for the fault horizon.",
        &[(String::new(), held)],
    );
    line(
        "deep_reorgs_total",
        "counter",
        "Reorgs deeper than chain.confirmations seen.",
        &one(&m.deep_reorgs),
    );
    line(
        "finality_hold_until_block",
        "gauge",
        "After a deep reorg: no job starts and no tenant result is released before this block (0: none).",
        &one(&m.finality_hold),
    );
    let withdrawable: Vec<(String, u64)> = m
        .withdrawable
        .lock()
        .map(|g| {
            g.iter()
                .map(|(k, v)| (format!("{{token=\"{k}\"}}"), *v))
                .collect()
        })
        .unwrap_or_default();
    line(
        "withdrawable",
        "gauge",
        "The owner's earnings the market holds for withdrawal (token units), by token.",
        &withdrawable,
    );
    line(
        "heartbeats_total",
        "counter",
        "Heartbeats mined.",
        &one(&m.heartbeats),
    );
    line(
        "last_heartbeat_seconds",
        "gauge",
        "Chain time of the provider's last heartbeat.",
        &one(&m.last_heartbeat),
    );
    line(
        "jobs_failed_total",
        "counter",
        "Jobs whose run failed.",
        &one(&m.jobs_failed),
    );
    line(
        "rpc_errors_total",
        "counter",
        "RPC errors.",
        &one(&m.rpc_errors),
    );
    line(
        "tx_mined_total",
        "counter",
        "Transactions mined.",
        &one(&m.tx_mined),
    );
    line(
        "tx_latency_ms_sum",
        "counter",
        "Send-to-receipt time of mined transactions, ms.",
        &one(&m.tx_latency_ms),
    );
    line(
        "bid_latency_us_sum",
        "counter",
        "Order log seen to bid broadcast, microseconds.",
        &one(&m.bid_latency_us),
    );
    line(
        "earned_units_total",
        "counter",
        "Paid to the provider by closed leases, token units.",
        &one(&m.earned),
    );
    line("head_block", "gauge", "Latest block seen.", &one(&m.head));
    let states: Vec<(String, u64)> = s
        .store
        .lock()
        .ok()
        .and_then(|st| st.counts().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(st, n)| (format!("{{state=\"{}\"}}", st.name()), n))
        .collect();
    line("jobs", "gauge", "Jobs by state.", &states);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

fn deny(code: StatusCode, why: &str) -> Response {
    (code, format!("{why}\n")).into_response()
}

async fn result(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Ok(id) = id.parse::<B256>() else {
        return deny(
            StatusCode::BAD_REQUEST,
            "expected /results/0x<64 hex digits>",
        );
    };
    if s.cfg.withhold_results {
        // Testing only: a provider that posts results it does not serve (demo and tests of the
        // data-availability challenge and the unavailability proof).
        return deny(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node withholds its results (testing.withhold_results)",
        );
    }
    let job = s.store.lock().ok().and_then(|st| st.job(id).ok().flatten());
    let Some(job) = job else {
        return deny(StatusCode::NOT_FOUND, "no such lease here");
    };
    let public = crate::engine::terms(&job).is_some_and(|t| t.jobKind == 1);
    if !public
        && let Err(r) = check_auth(
            &headers,
            |expiry| result_auth_message(id, expiry),
            job.tenant,
            "this result is the tenant's: sign it with `gridlease result` (header x-gridlease-auth)",
        )
    {
        return r.into_response();
    }
    // A tenant's result is what its lease pays for: not handed out while a reorg deeper than the
    // node's confirmations may still undo the lease (OFF-02). Public (built-in) results stay
    // served: verifiers check posted roots against them, and holding them only delays proofs.
    if !public && let Some(until) = crate::engine::finality_held(&s) {
        return deny(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the chain reorganised deeper than this node's chain.confirmations; results are released again at block {until}: retry then"
            ),
        );
    }
    match tokio::fs::read(s.result_path(id)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => deny(StatusCode::NOT_FOUND, "no result for this lease yet"),
    }
}

/// `GET /bids/<order id>`: the node's signed bid on that order ([`crate::signed`]), 404 if none.
async fn signed_bid(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<B256>() else {
        return deny(StatusCode::BAD_REQUEST, "expected /bids/0x<64 hex digits>");
    };
    match crate::signed::load(&s.cfg.data_dir, id) {
        Some(bid) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&bid).unwrap_or_default(),
        )
            .into_response(),
        None => deny(StatusCode::NOT_FOUND, "no signed bid on this order here"),
    }
}

/// Why a request is refused: its status, and a line telling the client why.
pub type Refusal = (StatusCode, String);

fn refuse(code: StatusCode, why: &str) -> Refusal {
    (code, format!("{why}\n"))
}

/// Check the [`AUTH_HEADER`] of a request: `<expiry>:<signature>`, unexpired and living at most an
/// hour, signed (EIP-191) by `who` over `message(expiry)`. `missing` is the answer without one.
fn check_auth(
    headers: &HeaderMap,
    message: impl Fn(u64) -> String,
    who: Address,
    missing: &str,
) -> Result<(), Refusal> {
    if auth_signer(headers, message, missing)? != who {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "not signed by the order's tenant",
        ));
    }
    Ok(())
}

/// Who signed the auth header (`<expiry>:<signature>` over `message(expiry)`), once its form and
/// expiry are checked: local work only, done before anything costs a chain read.
fn auth_signer(
    headers: &HeaderMap,
    message: impl Fn(u64) -> String,
    missing: &str,
) -> Result<Address, Refusal> {
    let Some(auth) = headers.get(AUTH_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(refuse(StatusCode::UNAUTHORIZED, missing));
    };
    let malformed = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "x-gridlease-auth is <expiry>:<signature>",
        )
    };
    let Some((expiry, sig)) = auth.split_once(':') else {
        return Err(malformed());
    };
    let (Ok(expiry), Ok(sig)) = (expiry.parse::<u64>(), sig.parse::<Signature>()) else {
        return Err(malformed());
    };
    if expiry < unix_now() || expiry > unix_now() + 3_600 {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "the signature expired (or lives over an hour)",
        ));
    }
    sig.recover_address_from_msg(message(expiry))
        .map_err(|_| refuse(StatusCode::FORBIDDEN, "the signature does not recover"))
}

/// Least time between two chain look-ups for pushed specs of orders the node has not seen.
pub const PUSH_LOOKUP_GAP: std::time::Duration = std::time::Duration::from_millis(250);

/// Bounds the chain look-ups (paged `eth_getLogs` from the deployment block) that pushes for
/// unknown orders cause: one at a time, at most one per [`PUSH_LOOKUP_GAP`]; the others are
/// answered 429 at once.
#[derive(Debug)]
pub struct LookupGate {
    gap: std::time::Duration,
    last: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl Default for LookupGate {
    fn default() -> Self {
        Self::new(PUSH_LOOKUP_GAP)
    }
}

impl LookupGate {
    /// A gate letting one look-up begin per `gap`.
    pub fn new(gap: std::time::Duration) -> Self {
        Self {
            gap,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// A turn to look up, held until the guard drops; `None` when one is running or the last
    /// began less than the gap ago.
    pub fn try_enter(&self) -> Option<tokio::sync::MutexGuard<'_, Option<std::time::Instant>>> {
        let mut last = self.last.try_lock().ok()?;
        if last.is_some_and(|t| t.elapsed() < self.gap) {
            return None;
        }
        *last = Some(std::time::Instant::now());
        Some(last)
    }
}

/// An order a push is about: its tenant, its terms, and the order itself when the node has no
/// row for it yet (it is then evaluated for a bid once the spec is kept).
type PushOrder = (Address, OrderParams, Option<Market::OrderCreated>);

/// The order a push for `id` is about. The auth header is checked first (form, expiry,
/// signature: no chain read for a request nobody signed); then the order is the node's own
/// (`local`), else `lookup` finds it on chain, one at a time and rate-limited by `gate` (429
/// otherwise), since anyone can sign with some key.
async fn push_order(
    id: B256,
    headers: &HeaderMap,
    local: Option<PushOrder>,
    gate: &LookupGate,
    lookup: impl AsyncFnOnce() -> Result<Market::OrderCreated, String>,
) -> Result<PushOrder, Refusal> {
    auth_signer(
        headers,
        |expiry| spec_auth_message(id, expiry),
        "sign the push with the order's tenant key (`gridlease submit --push`, header x-gridlease-auth)",
    )?;
    if let Some(o) = local {
        return Ok(o);
    }
    let Some(_turn) = gate.try_enter() else {
        return Err(refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("order {id} is not known to this node yet; retry in a second"),
        ));
    };
    match lookup().await {
        Ok(o) => Ok((o.tenant, o.params.clone(), Some(o))),
        Err(e) => Err(refuse(
            StatusCode::NOT_FOUND,
            &format!("no order {id} found: {e}"),
        )),
    }
}

/// Largest spec `POST /specs/<order id>` accepts, bytes.
pub const MAX_PUSHED_SPEC: usize = 64 << 10;

/// Where the spec the tenant of order `id` pushed is kept (its canonical JSON).
pub fn pushed_spec_path(data_dir: &FsPath, id: B256) -> PathBuf {
    data_dir.join("specs").join(format!("{id}.json"))
}

/// The run spec of order `id` whose terms name `uri` and `hash`: the one its tenant pushed when
/// `uri` is [`PUSH_URI`], else downloaded; checked against `hash` either way.
pub async fn spec_for(
    fetcher: &Fetcher,
    data_dir: &FsPath,
    id: B256,
    uri: &str,
    hash: B256,
) -> Result<RunSpec, String> {
    if uri != PUSH_URI {
        return fetcher.spec(uri, hash).await.map_err(|e| e.to_string());
    }
    let path = pushed_spec_path(data_dir, id);
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "{PUSH_URI}: waiting for the tenant to push the spec (POST /specs/{id})"
            ));
        }
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let spec: RunSpec = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a run spec: {e}", path.display()))?;
    if spec.hash() != hash {
        return Err(format!(
            "{}: does not match the order's spec hash",
            path.display()
        ));
    }
    spec.workload.check_roots()?;
    Ok(spec)
}

/// Check a pushed spec for order `id` (terms `t`, tenant `tenant`): the order takes pushes, the
/// tenant signed the request, and the body is a run spec whose hash is the order's.
pub fn verify_push(
    id: B256,
    headers: &HeaderMap,
    body: &[u8],
    tenant: Address,
    t: &OrderParams,
) -> Result<RunSpec, Refusal> {
    if t.specURI != PUSH_URI {
        return Err(refuse(
            StatusCode::CONFLICT,
            &format!(
                "order {id} names its spec at {}; only orders with specURI {PUSH_URI} take a pushed spec",
                t.specURI
            ),
        ));
    }
    check_auth(
        headers,
        |expiry| spec_auth_message(id, expiry),
        tenant,
        "sign the push with the order's tenant key (`gridlease submit --push`, header x-gridlease-auth)",
    )?;
    let spec: RunSpec = serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            &format!("the body is not a run spec (canonical JSON): {e}"),
        )
    })?;
    if spec.hash() != t.specHash {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "the spec hashes to {}, the order's specHash is {}",
                spec.hash(),
                t.specHash
            ),
        ));
    }
    // PIN-04: a data job names its input roots, or nothing of it is downloaded.
    spec.workload
        .check_roots()
        .map_err(|e| refuse(StatusCode::UNPROCESSABLE_ENTITY, &e))?;
    Ok(spec)
}

async fn push_spec(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<B256>() else {
        return deny(StatusCode::BAD_REQUEST, "expected /specs/0x<64 hex digits>");
    };
    // The order's terms: from the node's own row, else from the order the node saw waiting for
    // this push, else (signed requests only, rate-limited) from the order's log on chain.
    let known = s.store.lock().ok().and_then(|st| st.job(id).ok().flatten());
    let waiting = s
        .awaiting_push
        .lock()
        .ok()
        .and_then(|w| w.get(&id).cloned());
    let local = match (known, waiting) {
        (None, Some(o)) => Some((o.tenant, o.params.clone(), Some(o))),
        (Some(j), _) => match crate::engine::terms(&j) {
            Some(t) => Some((j.tenant, t, None)),
            None => {
                return deny(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stored terms do not decode",
                );
            }
        },
        (None, None) => None,
    };
    let lookup = async || {
        crate::engine::order_log(&s, id)
            .await
            .map_err(|e| format!("{e:#}"))
    };
    let (tenant, terms, new_order) =
        match push_order(id, &headers, local, &s.push_lookups, lookup).await {
            Ok(o) => o,
            Err(r) => return r.into_response(),
        };
    let spec = match verify_push(id, &headers, &body, tenant, &terms) {
        Ok(spec) => spec,
        Err(r) => return r.into_response(),
    };
    let path = pushed_spec_path(&s.cfg.data_dir, id);
    if path.exists() {
        return (
            StatusCode::OK,
            format!("the spec of order {id} is already here\n"),
        )
            .into_response();
    }
    if let Err(e) = store_spec(&path, &spec.canonical_json()) {
        warn!(order = %id, error = %e, "cannot store a pushed spec");
        return deny(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot store the spec; retry",
        );
    }
    info!(order = %id, tenant = %tenant, "spec pushed by the tenant");
    // The order stays in `awaiting_push` until it has been evaluated (and has a row if the node
    // bids): a repeated push in between then finds it locally and is answered 200, instead of
    // costing a rate-limited chain look-up.
    let forget = move |s: &Shared| {
        if let Ok(mut w) = s.awaiting_push.lock() {
            w.remove(&id);
        }
    };
    match new_order {
        Some(o) if !s.stop.is_cancelled() => {
            let s2 = s.clone();
            s.tracker.spawn(async move {
                if let Err(e) = crate::engine::order_pushed(&s2, o).await {
                    warn!(order = %id, error = %e, "evaluating a pushed order failed");
                }
                forget(&s2);
            });
        }
        _ => forget(&s),
    }
    (StatusCode::CREATED, format!("spec of order {id} stored\n")).into_response()
}

/// Write `bytes` to `path` whole or not at all.
fn store_spec(path: &FsPath, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use alloy::signers::{SignerSync, local::PrivateKeySigner};
    use gridlease_core::{
        fetch,
        spec::{Resources, Workload},
    };

    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            version: 1,
            workload: Workload::Container {
                image: "ghcr.io/acme/train:v1".into(),
                command: vec!["python".into(), "train.py".into()],
                env: [("SECRET_DATASET".to_owned(), "s3://private".to_owned())].into(),
            },
            resources: Resources {
                gpu_class: 0,
                gpu_count: 1,
                vram_gib: 8,
                cpu_cores: 1,
                ram_gib: 1,
            },
        }
    }

    fn terms(uri: &str) -> OrderParams {
        OrderParams {
            specHash: spec().hash(),
            specURI: uri.into(),
            ..OrderParams::default()
        }
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTH_HEADER, value.parse().expect("header"));
        h
    }

    fn status(r: Result<RunSpec, Refusal>) -> StatusCode {
        match r {
            Ok(_) => StatusCode::OK,
            Err(r) => r.0,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// PIN-05: any `x-gridlease-auth` value a stranger sends is refused (never a panic, never
        /// a signer), unless it is a live signature of the message: then it recovers its signer.
        #[test]
        fn pin_05_arbitrary_auth_headers_are_refused_and_only_real_signatures_recover(
            expiry in proptest::prelude::any::<u64>(),
            junk in "[ -~]{0,160}",
            cut in 0usize..140,
        ) {
            let message = |e: u64| format!("gridlease result {} until {e}", B256::ZERO);
            let key = PrivateKeySigner::from_bytes(&B256::repeat_byte(7)).expect("key");
            for value in [junk.clone(), format!("{expiry}:{junk}"), format!(":{junk}")] {
                if let Ok(v) = value.parse() {
                    let mut h = HeaderMap::new();
                    h.insert(AUTH_HEADER, v);
                    proptest::prop_assert!(auth_signer(&h, message, "sign it").is_err(), "{value}");
                }
            }
            let live = unix_now() + 60;
            let sig = key.sign_message_sync(message(live).as_bytes()).expect("sign");
            let good = format!("{live}:{sig}");
            let recovered = auth_signer(&auth(&good), message, "sign it").ok();
            proptest::prop_assert_eq!(recovered, Some(key.address()));
            // A cut signature, or one past its expiry, is refused.
            let short = &good[..cut.min(good.len() - 1)];
            proptest::prop_assert!(auth_signer(&auth(short), message, "sign it").is_err());
            let old = expiry % unix_now().max(1);
            let sig = key.sign_message_sync(message(old).as_bytes()).expect("sign");
            let stale = auth(&format!("{old}:{sig}"));
            proptest::prop_assert!(auth_signer(&stale, message, "sign it").is_err());
        }
    }

    #[test]
    fn a_push_is_kept_only_from_the_tenant_for_the_order_s_hash() {
        let id = B256::repeat_byte(9);
        let tenant = PrivateKeySigner::random();
        let other = PrivateKeySigner::random();
        let body = spec().canonical_json();
        let good = auth(&fetch::spec_auth(&tenant, id).expect("signs"));
        let t = terms(PUSH_URI);
        let got = verify_push(id, &good, &body, tenant.address(), &t).expect("accepted");
        assert_eq!(got, spec());
        // Signed by someone else, for another order, or not at all.
        let forged = auth(&fetch::spec_auth(&other, id).expect("signs"));
        assert_eq!(
            status(verify_push(id, &forged, &body, tenant.address(), &t)),
            StatusCode::FORBIDDEN
        );
        let elsewhere = auth(&fetch::spec_auth(&tenant, B256::repeat_byte(8)).expect("signs"));
        assert_eq!(
            status(verify_push(id, &elsewhere, &body, tenant.address(), &t)),
            StatusCode::FORBIDDEN
        );
        // A result download signature is not a push signature.
        let result_sig = auth(&fetch::result_auth(&tenant, id).expect("signs"));
        assert_eq!(
            status(verify_push(id, &result_sig, &body, tenant.address(), &t)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(verify_push(
                id,
                &HeaderMap::new(),
                &body,
                tenant.address(),
                &t
            )),
            StatusCode::UNAUTHORIZED
        );
        // Expired, or living too long.
        for expiry in [unix_now() - 1, unix_now() + 7_200] {
            let sig = tenant
                .sign_message_sync(spec_auth_message(id, expiry).as_bytes())
                .expect("signs");
            let h = auth(&format!("{expiry}:{sig}"));
            assert_eq!(
                status(verify_push(id, &h, &body, tenant.address(), &t)),
                StatusCode::UNAUTHORIZED
            );
        }
        // Not the spec the order committed to, not a spec, not an order that takes pushes.
        let mut changed = spec();
        changed.resources.ram_gib = 2;
        let changed = changed.canonical_json();
        assert_eq!(
            status(verify_push(id, &good, &changed, tenant.address(), &t)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(verify_push(id, &good, b"{}", tenant.address(), &t)),
            StatusCode::BAD_REQUEST
        );
        let public = terms("https://example.com/spec.json");
        assert_eq!(
            status(verify_push(id, &good, &body, tenant.address(), &public)),
            StatusCode::CONFLICT
        );
    }

    #[tokio::test]
    async fn a_push_for_an_unknown_order_reads_the_chain_only_when_signed_and_rate_limited() {
        use std::sync::atomic::AtomicUsize;
        let id = B256::repeat_byte(4);
        let anyone = PrivateKeySigner::random();
        let signed = auth(&fetch::spec_auth(&anyone, id).expect("signs"));
        // A wide gap, so that the second push below falls inside it on any machine.
        let gate = LookupGate::new(std::time::Duration::from_secs(3));
        let lookups = AtomicUsize::new(0);
        let lookup = async || {
            lookups.fetch_add(1, Relaxed);
            Err::<Market::OrderCreated, _>("no such order".to_owned())
        };
        let code = |r: Result<PushOrder, Refusal>| r.map(|_| ()).map_err(|r| r.0);
        // Unsigned, malformed, expired, or signed for another order: refused before any read.
        let expired = {
            let at = unix_now() - 1;
            let sig = anyone
                .sign_message_sync(spec_auth_message(id, at).as_bytes())
                .expect("signs");
            auth(&format!("{at}:{sig}"))
        };
        for h in [HeaderMap::new(), auth("garbage"), expired] {
            let r = push_order(id, &h, None, &gate, lookup).await;
            assert_eq!(code(r), Err(StatusCode::UNAUTHORIZED));
        }
        assert_eq!(
            lookups.load(Relaxed),
            0,
            "no chain read for an unsigned push"
        );
        // Signed (by any key): one look-up, then 429 until the gap has passed.
        let r = push_order(id, &signed, None, &gate, lookup).await;
        assert_eq!(code(r), Err(StatusCode::NOT_FOUND));
        assert_eq!(lookups.load(Relaxed), 1);
        let r = push_order(id, &signed, None, &gate, lookup).await;
        assert_eq!(code(r), Err(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!(lookups.load(Relaxed), 1);
        // One at a time: while a look-up runs, another is refused.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let turn = loop {
            if let Some(t) = gate.try_enter() {
                break t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the gate never reopened"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let r = push_order(id, &signed, None, &gate, lookup).await;
        assert_eq!(code(r), Err(StatusCode::TOO_MANY_REQUESTS));
        drop(turn);
        assert_eq!(lookups.load(Relaxed), 1);
        // An order the node knows needs no look-up and no turn.
        let local = Some((anyone.address(), terms(PUSH_URI), None));
        let r = push_order(id, &signed, local, &gate, lookup).await;
        assert_eq!(code(r), Ok(()));
        assert_eq!(lookups.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_push_order_waits_for_its_spec_and_a_tampered_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = B256::repeat_byte(3);
        let hash = spec().hash();
        let e = spec_for(&Fetcher::default(), dir.path(), id, PUSH_URI, hash)
            .await
            .expect_err("not pushed yet");
        assert!(e.contains("waiting for the tenant"), "{e}");
        let path = pushed_spec_path(dir.path(), id);
        store_spec(&path, &spec().canonical_json()).expect("stored");
        assert_eq!(
            spec_for(&Fetcher::default(), dir.path(), id, PUSH_URI, hash)
                .await
                .expect("read"),
            spec()
        );
        let mut other = spec();
        other.version = 2;
        store_spec(&path, &other.canonical_json()).expect("stored");
        assert!(
            spec_for(&Fetcher::default(), dir.path(), id, PUSH_URI, hash)
                .await
                .is_err()
        );
        // Other URIs are fetched as before; the push URI is never fetched.
        let data = spec().data_uri();
        assert_eq!(
            spec_for(&Fetcher::default(), dir.path(), id, &data, hash)
                .await
                .expect("data uri"),
            spec()
        );
        assert!(Fetcher::default().spec(PUSH_URI, hash).await.is_err());
    }
}
