//! Run specs of orders: downloaded and checked against the order's hash, or, for orders whose
//! `specURI` is [`PUSH_URI`], the one the tenant pushed ([`crate::api::push`]), kept in the data
//! directory.

use std::{
    collections::HashMap,
    path::{Path as FsPath, PathBuf},
    time::Duration,
};

use alloy::primitives::B256;
use gridlease_bindings::IMarket::OrderParams;
use gridlease_fetch::Fetcher;
use gridlease_primitives::spec::{PUSH_URI, RunSpec};

/// Longest a spec download may take.
pub(crate) const SPEC_TIMEOUT: Duration = Duration::from_secs(10);
/// Spec downloads at once.
const SPEC_FETCHES: usize = 4;
/// Most specs downloading or downloaded and not yet looked at.
pub(crate) const SPEC_FETCHES_MAX: usize = 1_000;

/// Specs downloaded beside the poll: the poll reads logs, acknowledges leases and answers
/// challenges, and a tenant's spec server that is slow (up to [`SPEC_TIMEOUT`] each, any number of
/// orders) must not hold it back: a lease won meanwhile would miss its start window. An order
/// whose spec is at an `http(s)` URI is kept (deferred) while its spec downloads, at most
/// [`SPEC_FETCHES`] at once, and looked at again once it is in
/// ([`crate::collect::retry_deferred`]; the bidding side is in [`crate::bidding`]). `data:` and
/// pushed specs need no network and are read at once.
#[derive(Debug)]
pub(crate) struct SpecFetches {
    /// `None` while downloading, then what the download gave.
    pub(crate) got: std::sync::Mutex<HashMap<B256, Option<Result<RunSpec, String>>>>,
    pub(crate) slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for SpecFetches {
    fn default() -> Self {
        Self {
            got: std::sync::Mutex::new(HashMap::new()),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(SPEC_FETCHES)),
        }
    }
}

/// Largest spec `POST /specs/<order id>` accepts, bytes.
pub const MAX_PUSHED_SPEC: usize = 64 << 10;

/// Where the spec the tenant of order `id` pushed is kept (its canonical JSON).
pub fn pushed_spec_path(data_dir: &FsPath, id: B256) -> PathBuf {
    data_dir.join("specs").join(format!("{id}.json"))
}

/// A spec runs only as the kind its order names (`jobKind`), since the chain treats the lease by
/// the order's kind whatever the spec says. A service spec under a batch order would serve until
/// the lease's end and never post a result: the missed deadline slashes the provider, and the
/// tenant had its service for free. A container spec under the built-in kind would have its
/// output served to anyone, as built-in results are.
pub fn check_kind(spec: &RunSpec, job_kind: u8) -> Result<(), String> {
    let kind = spec.workload.kind();
    if kind.code() == job_kind {
        return Ok(());
    }
    Err(format!(
        "the spec is a {} job, but the order's jobKind is {job_kind}: the lease would run as the order's kind on chain, so this node does not take it (the tenant orders again with the spec's kind, {})",
        serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        kind.code()
    ))
}

/// The run spec of order `id` with terms `t`: the one its tenant pushed when `t.specURI` is
/// [`PUSH_URI`], else downloaded; checked against `t.specHash` and `t.jobKind` either way.
pub async fn spec_for(
    fetcher: &Fetcher,
    data_dir: &FsPath,
    id: B256,
    t: &OrderParams,
) -> Result<RunSpec, String> {
    let spec = read_spec(fetcher, data_dir, id, &t.specURI, t.specHash).await?;
    check_kind(&spec, t.jobKind)?;
    Ok(spec)
}

async fn read_spec(
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

/// A pushed spec is kept at least this long after it was pushed.
pub const KEEP_PUSHED: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Delete the pushed specs, older than `keep`, of orders that can no longer run on this node
/// (owner `owner`): cancelled or finished (the market's state at the head, where a day-old end
/// is settled), or leased to another provider. An order still open, and a lease of this node's
/// still running, keep theirs. Returns how many were deleted. Before, every push stayed on disk
/// for good.
pub async fn prune_pushed(
    client: &gridlease_chain::Client,
    lens: alloy::primitives::Address,
    owner: alloy::primitives::Address,
    data_dir: &FsPath,
    keep: std::time::Duration,
) -> Result<usize, gridlease_chain::ChainError> {
    use gridlease_primitives::protocol::{JobViewExt, Status};
    let dir = data_dir.join("specs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(0);
    };
    let lens = gridlease_bindings::lens::MarketLens::new(lens, &client.provider);
    let mut deleted = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(id) = crate::id_named(&path, ".json") else {
            continue;
        };
        let young = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < keep);
        if young {
            continue;
        }
        let v = lens
            .getJob(id)
            .call()
            .await
            .map_err(gridlease_chain::classify)?;
        let status = v.status();
        let gone = status.is_final() || (status == Status::Leased && v.provider != owner);
        if gone && std::fs::remove_file(&path).is_ok() {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Write `bytes` to `path` whole or not at all.
pub(crate) fn store_spec(path: &FsPath, bytes: &[u8]) -> std::io::Result<()> {
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
