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
