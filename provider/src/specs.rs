//! Run specs of orders: downloaded and checked against the order's hash, or, for orders whose
//! `specURI` is [`PUSH_URI`], the one the tenant pushed ([`crate::api::push`]), kept in the data
//! directory.

use std::path::{Path as FsPath, PathBuf};

use alloy::primitives::B256;
use gridlease_fetch::Fetcher;
use gridlease_primitives::spec::{PUSH_URI, RunSpec};

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
        let Some(id) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<B256>().ok())
        else {
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
