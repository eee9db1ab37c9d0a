//! `gridlease result`: download a lease's result, verify it against the on-chain commitment, and
//! for built-in `matmul_i8` jobs check the product itself (Freivalds) and, if it is wrong, prove it
//! on chain.

use std::path::PathBuf;

use alloy::{primitives::B256, rpc::types::Filter, sol_types::SolEvent};
use anyhow::Result;
use gridlease_bindings::{Market, Results};
use gridlease_core::{
    chain::{classify, send},
    merkle::MerkleTree,
    verify::{BuiltinJob, Verdict},
};
use serde_json::json;

use crate::ctx::{Ctx, Output, UserError, logs_since_deploy, parse_id, user};

/// Bytes per result leaf (the matmul leaf: 8 big-endian int32).
const LEAF_BYTES: usize = 32;

/// Flags of `result`.
pub(crate) struct Opts {
    /// Read the result from this file instead of the posted URI.
    pub(crate) file: Option<PathBuf>,
    /// Save the result here.
    pub(crate) out: Option<PathBuf>,
    /// If a built-in result is wrong, send the fraud proof.
    pub(crate) prove: bool,
}

/// Run `result`.
pub(crate) async fn run(ctx: &Ctx, id: &str, opts: Opts) -> Result<Output> {
    let id = parse_id(id)?;
    let r = ctx.results()?;
    let posted = r.resultOf(id).call().await.map_err(classify)?;
    if posted.postedAt.to::<u64>() == 0 {
        return user(format!(
            "no result has been posted for {id} yet (see `gridlease status {id}`)"
        ));
    }
    // The posted URI and the order's terms come from the events.
    let rlogs = logs_since_deploy(
        ctx,
        &Filter::new()
            .address(*r.address())
            .event_signature(Results::ResultPosted::SIGNATURE_HASH)
            .topic1(id),
    )
    .await?;
    let uri = rlogs
        .iter()
        .find_map(|l| l.log_decode::<Results::ResultPosted>().ok())
        .map(|e| e.inner.data.uri)
        .unwrap_or_default();
    let ologs = logs_since_deploy(
        ctx,
        &Filter::new()
            .address(ctx.market)
            .event_signature(Market::OrderCreated::SIGNATURE_HASH)
            .topic1(id),
    )
    .await?;
    let created = ologs
        .iter()
        .find_map(|l| l.log_decode::<Market::OrderCreated>().ok())
        .map(|e| e.inner.data)
        .ok_or_else(|| UserError(format!("no OrderCreated event for {id}")))?;

    let bytes = match &opts.file {
        Some(f) => {
            std::fs::read(f).map_err(|e| UserError(format!("cannot read {}: {e}", f.display())))?
        }
        // The provider serves a tenant's result to the tenant: sign the download when we can.
        None => {
            let auth = ctx
                .wallet()
                .ok()
                .and_then(|w| gridlease_core::fetch::result_auth(w, id));
            gridlease_core::fetch::fetch_with(&uri, auth.as_deref())
                .await
                .map_err(UserError)?
        }
    };
    let root = MerkleTree::from_chunks(&bytes, LEAF_BYTES).root();
    let matches = root == posted.root;
    let mut h = format!(
        "{id}\n  result     {} bytes from {}\n  root       {} ({})\n",
        bytes.len(),
        opts.file
            .as_ref()
            .map_or(uri.clone(), |f| f.display().to_string()),
        posted.root,
        if matches {
            "matches the on-chain commitment"
        } else {
            "DOES NOT MATCH the on-chain commitment"
        },
    );
    let mut out = json!({
        "id": id, "bytes": bytes.len(), "root": posted.root, "uri": uri, "matchesCommitment": matches,
    });
    if let Some(path) = &opts.out {
        std::fs::write(path, &bytes)
            .map_err(|e| UserError(format!("cannot write {}: {e}", path.display())))?;
        h += &format!("  saved      {}\n", path.display());
    }
    if !matches {
        return Ok(Output {
            human: h,
            json: out,
        });
    }

    // Built-in job: check the product itself.
    let spec = gridlease_core::fetch::spec(&created.params.specURI, created.params.specHash)
        .await
        .ok();
    let job = match &spec {
        Some(s) => BuiltinJob::from_spec(s).await.map_err(UserError)?,
        None => None,
    };
    let Some(job) = job else {
        h += "  check      not a built-in job: the commitment is all that can be checked\n";
        return Ok(Output {
            human: h,
            json: out,
        });
    };
    let (m, k, n) = job.ops().shape();
    let r_seed = B256::from(rand08::random::<[u8; 32]>());
    let fraud = match job.check(&bytes, r_seed) {
        Verdict::WrongSize { .. } => {
            h += &format!("  check      wrong size for a {m}x{n} INT32 result\n");
            out["matmul"] = json!({ "ok": false, "reason": "size" });
            return Ok(Output {
                human: h,
                json: out,
            });
        }
        Verdict::Correct => {
            h += &format!(
                "  check      verified: C = A x B ({m}x{k} by {k}x{n}, Freivalds over 2^61-1)\n"
            );
            out["matmul"] = json!({ "ok": true });
            return Ok(Output {
                human: h,
                json: out,
            });
        }
        Verdict::Wrong(f) => f,
    };
    h += &format!(
        "  check      WRONG: C[{}][{}] is {}, should be {}\n",
        fraud.i, fraud.j, fraud.claimed, fraud.correct
    );
    out["matmul"] = json!({
        "ok": false, "i": fraud.i, "j": fraud.j, "claimed": fraud.claimed, "correct": fraud.correct,
    });
    if !opts.prove {
        h += &format!(
            "  next       gridlease result {id} --prove   (slashes the provider; you are compensated)\n"
        );
        return Ok(Output {
            human: h,
            json: out,
        });
    }
    ctx.wallet()?;
    let input = job.proof_calldata(id, created.tenant, created.params, &fraud);
    let call =
        alloy::contract::RawCallBuilder::new_raw(&ctx.client.provider, input).to(*r.address());
    let receipt = send(call).await?;
    h += &format!(
        "  proven     tx {}: the provider was slashed, the lease refunded\n",
        receipt.transaction_hash
    );
    out["proveTx"] = json!(receipt.transaction_hash);
    Ok(Output {
        human: h,
        json: out,
    })
}
