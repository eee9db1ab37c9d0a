//! Checking a posted result: download it from the URI its provider posted and hold it to the
//! commitment `(root, size)` `Results` stores (protocol v2 §4.1: 1 KiB leaves, hashed as the
//! bytes stream in, so a large result costs its leaf hashes in memory, not its bytes); for a
//! built-in `matmul_i8` job also check it with Freivalds' algorithm and build the proof of a
//! wrong element, or of a wrong size from the posted size alone (KB-05: evidence is recomputed
//! here before anything is sent).
//!
//! What a failure means decides what the keeper does next ([`crate::strategy`]): a result that
//! is not served, or whose bytes are not the committed ones, is challenged (data availability,
//! MEC-04); one served only to its tenant says nothing against its provider (container results
//! are the tenant's, MEC-13). Built-in results are public by protocol, so for them any failure
//! counts as missing.
//!
//! Everything is fetched through the keeper's one [`Fetcher`] ([`gridlease_fetch`]): only
//! `http(s)` URIs, no internal address unless the config allows its network, a byte cap (the
//! committed size), a connect and a total timeout and at most three redirects (PIN-01..03): a
//! tenant or provider naming `file:///etc/...` or `http://169.254.169.254/` gets nothing read.

use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes};
use gridlease_bindings::IMarket::OrderParams;
use gridlease_fetch::{
    FetchError, Fetcher,
    verify::{BuiltinJob, Verdict},
};
use gridlease_workload::merkle::{Commitment, MerkleTree, RESULT_LEAF_BYTES, leaf_hash};

use crate::view::{Check, Posted};

/// Results larger than this are not downloaded (their check is left to the tenant).
pub const MAX_RESULT_BYTES: u64 = 1 << 30;
/// How long a spec or a job input may take to download.
const SPEC_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a result could not be had as committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Served only to its tenant, not over http(s), or too large to check here.
    Private(String),
    /// Not served: unreachable, an error answer, a broken transfer.
    Missing(String),
    /// Served, but not the committed bytes (length or root).
    Mismatch(String),
}

/// Download `uri` and check it is the result `posted` commits to; the bytes when `keep`.
pub async fn fetch_committed(
    fetcher: &Fetcher,
    uri: &str,
    posted: Commitment,
    keep: bool,
) -> Result<Option<Vec<u8>>, Failure> {
    let u = uri.trim();
    if posted.size > MAX_RESULT_BYTES {
        return Err(Failure::Private(format!(
            "{} bytes: larger than the {MAX_RESULT_BYTES} this keeper downloads",
            posted.size
        )));
    }
    let mut r = match fetcher.open(u, None).await {
        Ok(r) => r,
        Err(
            e @ FetchError::Status {
                status: 401 | 403, ..
            },
        ) => {
            return Err(Failure::Private(format!("{e}: served to its tenant only")));
        }
        // Not a public http(s) URI: nothing this keeper may read.
        Err(e @ (FetchError::Scheme { .. } | FetchError::Internal { .. })) => {
            return Err(Failure::Private(e.to_string()));
        }
        Err(e) => return Err(Failure::Missing(e.to_string())),
    };
    if let Some(n) = r.content_length()
        && n != posted.size
    {
        return Err(Failure::Mismatch(format!(
            "{u} serves {n} bytes, the commitment has {}",
            posted.size
        )));
    }
    let mut leaves = Vec::with_capacity(usize::try_from(posted.leaves()).unwrap_or(0).min(1 << 20));
    let mut leaf = Vec::with_capacity(RESULT_LEAF_BYTES);
    let mut bytes = Vec::new();
    let mut total = 0u64;
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| Failure::Missing(format!("{u}: the download broke off: {e}")))?
    {
        total += chunk.len() as u64;
        if total > posted.size {
            return Err(Failure::Mismatch(format!(
                "{u} serves more than the {} bytes committed",
                posted.size
            )));
        }
        if keep {
            bytes.extend_from_slice(&chunk);
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let take = (RESULT_LEAF_BYTES - leaf.len()).min(rest.len());
            leaf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if leaf.len() == RESULT_LEAF_BYTES {
                leaves.push(leaf_hash(&leaf));
                leaf.clear();
            }
        }
    }
    if total != posted.size {
        return Err(Failure::Mismatch(format!(
            "{u} serves {total} bytes, the commitment has {}",
            posted.size
        )));
    }
    // The last leaf is shorter; an empty result is one empty leaf.
    if !leaf.is_empty() || leaves.is_empty() {
        leaves.push(leaf_hash(&leaf));
    }
    let root = MerkleTree::from_leaf_hashes(leaves).root();
    if root != posted.root {
        return Err(Failure::Mismatch(format!(
            "the bytes {u} serves have root {root}, the commitment is {}",
            posted.root
        )));
    }
    Ok(keep.then_some(bytes))
}

/// What checking a result found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Recorded as is (`Missing` with one try: the caller counts).
    Check(Check),
    /// The result is wrong: this calldata (of the lease's results module) proves it.
    Proof(Bytes),
}

/// The built-in job an order's spec describes, if the keeper can read it: the spec only from a
/// `data:` or http(s) URI, a data job's inputs only over http(s).
async fn builtin_job(terms: &OrderParams, fetcher: &Fetcher) -> Result<Option<BuiltinJob>, String> {
    let uri = terms.specURI.trim();
    let spec = tokio::time::timeout(SPEC_TIMEOUT, fetcher.spec(uri, terms.specHash))
        .await
        .map_err(|_| "the spec did not download in time".to_owned())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(SPEC_TIMEOUT, BuiltinJob::from_spec(&spec, fetcher))
        .await
        .map_err(|_| "the job's inputs did not download in time".to_owned())?
}

/// Check the result `posted` of lease `id` (of `tenant`, with `terms`; `builtin` for the built-in
/// workload): its availability against the commitment, and with `freivalds` a built-in job's
/// product.
pub async fn check(
    fetcher: &Fetcher,
    id: B256,
    tenant: Address,
    terms: OrderParams,
    builtin: bool,
    posted: &Posted,
    freivalds: bool,
) -> Found {
    let job = if builtin && freivalds {
        match builtin_job(&terms, fetcher).await {
            Ok(j) => j,
            Err(e) => {
                tracing::info!(lease = %id, why = %e, "the built-in job cannot be read: checking availability only");
                None
            }
        }
    } else {
        None
    };
    let commitment = posted.commitment();
    if let Some(job) = &job {
        let (m, _, n) = job.ops().shape();
        // A result of any other size is wrong for the job, provable by the size alone.
        if commitment.size != u64::from(m) * u64::from(n) * 4 {
            return Found::Proof(job.proof_calldata(id, tenant, terms, commitment, None));
        }
    }
    let bytes = match fetch_committed(fetcher, &posted.uri, commitment, job.is_some()).await {
        Ok(b) => b,
        // A built-in result is public by protocol: not serving it to everyone is withholding it.
        Err(Failure::Private(why)) if builtin => {
            return Found::Check(Check::Missing {
                tries: 1,
                why,
                since: 0,
            });
        }
        Err(Failure::Private(why)) => return Found::Check(Check::Private(why)),
        Err(Failure::Missing(why)) => {
            return Found::Check(Check::Missing {
                tries: 1,
                why,
                since: 0,
            });
        }
        Err(Failure::Mismatch(why)) => return Found::Check(Check::Mismatch(why)),
    };
    let (Some(job), Some(bytes)) = (job, bytes) else {
        return Found::Check(Check::Available);
    };
    // Fresh randomness for Freivalds' vector: a cheater must not know it.
    let r_seed = B256::random();
    let checked = tokio::task::spawn_blocking(move || {
        let v = job.check(&bytes, r_seed);
        (job, v)
    })
    .await;
    found_of(id, checked, |job, fraud| {
        job.proof_calldata(id, tenant, terms, commitment, fraud)
    })
}

/// What a finished check of a built-in product found (`prove` builds the proof of a wrong one).
/// The download matched its commitment, so the result is available whatever went wrong in our
/// own check: counted as missing, a bug here (or a shape that panics) would end in a challenge of
/// an available result, and the bond lost to it.
fn found_of(
    id: B256,
    checked: Result<(BuiltinJob, Verdict), tokio::task::JoinError>,
    prove: impl FnOnce(&BuiltinJob, Option<&gridlease_workload::matmul::FraudProof>) -> Bytes,
) -> Found {
    match checked {
        Ok((_, Verdict::Correct)) => Found::Check(Check::Correct),
        Ok((job, Verdict::Wrong(f))) => {
            tracing::warn!(lease = %id, i = f.i, j = f.j, claimed = f.claimed, correct = f.correct, "WRONG built-in result: proving it");
            Found::Proof(prove(&job, Some(&f)))
        }
        Ok((job, Verdict::WrongSize { .. })) => Found::Proof(prove(&job, None)),
        Err(e) => {
            tracing::error!(lease = %id, error = %e, "checking the built-in product failed; the result is available as committed");
            Found::Check(Check::Available)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, http::StatusCode, routing::get};

    use super::*;

    #[tokio::test]
    async fn a_check_that_panicked_finds_the_committed_result_available_not_missing() {
        let joined = tokio::task::spawn_blocking(|| -> (BuiltinJob, Verdict) {
            panic!("a bug in the product check")
        })
        .await;
        let found = found_of(B256::ZERO, joined, |_, _| Bytes::new());
        assert!(matches!(found, Found::Check(Check::Available)), "{found:?}");
    }

    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[tokio::test]
    async fn pin_01_pin_03_mec_04_a_result_is_held_to_its_commitment() {
        // 2.5 leaves, so the streamed leaf hashing crosses leaf and chunk boundaries.
        let data: Vec<u8> = (0..2_560u32).map(|i| (i * 7) as u8).collect();
        let good = Commitment::of(&data);
        let served = data.clone();
        let mut longer = data.clone();
        longer.extend_from_slice(b"x");
        let mut flipped = data.clone();
        flipped[1_500] ^= 1;
        let app = Router::new()
            .route("/ok", get(move || async move { served }))
            .route("/longer", get(move || async move { longer }))
            .route("/flipped", get(move || async move { flipped }))
            .route("/mine", get(|| async { StatusCode::UNAUTHORIZED }))
            .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
            .route("/empty", get(|| async { Vec::<u8>::new() }));
        let base = serve(app).await;
        let http = Fetcher::new(
            gridlease_fetch::AllowList::loopback(),
            gridlease_fetch::Limits::default(),
        );
        let got = |path: &str, c: Commitment, keep: bool| {
            let url = format!("{base}{path}");
            let http = http.clone();
            async move { fetch_committed(&http, &url, c, keep).await }
        };
        assert_eq!(got("/ok", good, true).await, Ok(Some(data.clone())));
        assert_eq!(got("/ok", good, false).await, Ok(None));
        let empty = Commitment::of(&[]);
        assert_eq!(got("/empty", empty, false).await, Ok(None));
        assert!(matches!(
            got("/longer", good, false).await,
            Err(Failure::Mismatch(_))
        ));
        assert!(matches!(
            got("/flipped", good, false).await,
            Err(Failure::Mismatch(_))
        ));
        // The right bytes under another committed size are not the committed result.
        let other = Commitment {
            size: good.size - 1,
            ..good
        };
        assert!(matches!(
            got("/ok", other, false).await,
            Err(Failure::Mismatch(_))
        ));
        assert!(matches!(
            got("/mine", good, false).await,
            Err(Failure::Private(_))
        ));
        assert!(matches!(
            got("/gone", good, false).await,
            Err(Failure::Missing(_))
        ));
        let dead = format!("http://127.0.0.1:{}/r", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        });
        assert!(matches!(
            fetch_committed(&http, &dead, good, false).await,
            Err(Failure::Missing(_))
        ));
        // Nothing but http(s) is read: not a local file (PIN-01).
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, &data).expect("write");
        let e = fetch_committed(&http, &format!("file://{}", file.display()), good, true).await;
        assert!(matches!(e, Err(Failure::Private(_))), "{e:?}");
        let e = fetch_committed(&http, &file.display().to_string(), good, true).await;
        assert!(matches!(e, Err(Failure::Private(_))), "{e:?}");
        // Nor an internal address a provider names (PIN-02): a keeper with no allow-list (a real
        // market's) reads nothing from its own loopback or the cloud metadata service; for a
        // built-in result that counts as not served, so it is challenged.
        let real = Fetcher::default();
        for uri in [
            format!("{base}/ok"),
            "http://169.254.169.254/latest/".to_owned(),
        ] {
            let e = fetch_committed(&real, &uri, good, true).await;
            assert!(
                matches!(&e, Err(Failure::Private(why)) if why.contains("internal address")),
                "{uri}: {e:?}"
            );
        }
    }
}
