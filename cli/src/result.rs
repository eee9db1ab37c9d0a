//! `gridlease result`: download a lease's result, verify it against the on-chain commitment, and
//! for built-in `matmul_i8` jobs check the product itself (Freivalds) and, if it is wrong, prove it
//! on chain.

use std::path::PathBuf;

use alloy::{
    primitives::{B256, Bytes, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::{
    Market, Results,
    results::MatmulProof::{DataJob, Job as SeededJob, Operands},
};
use gridlease_core::{
    chain::{classify, classify_rpc, send},
    matmul::{self, Matmul, MatmulData},
    merkle::MerkleTree,
    spec::Workload,
};
use serde_json::json;

use crate::ctx::{Ctx, Output, UserError, from_block, parse_id, resolve_inputs, user};

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

/// The built-in job a result is checked against.
enum Job {
    /// Seeded inputs.
    Seeded(Matmul),
    /// Inputs given as data, downloaded and checked against the spec's roots.
    Data(Box<MatmulData>),
}

impl Job {
    fn ops(&self) -> &dyn matmul::Operands {
        match self {
            Self::Seeded(j) => j,
            Self::Data(d) => d.as_ref(),
        }
    }
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
    let p = &ctx.client.provider;
    let rlogs = p
        .get_logs(
            &Filter::new()
                .address(*r.address())
                .event_signature(Results::ResultPosted::SIGNATURE_HASH)
                .topic1(id)
                .from_block(from_block(ctx)),
        )
        .await
        .map_err(classify_rpc)?;
    let uri = rlogs
        .iter()
        .find_map(|l| l.log_decode::<Results::ResultPosted>().ok())
        .map(|e| e.inner.data.uri)
        .unwrap_or_default();
    let ologs = p
        .get_logs(
            &Filter::new()
                .address(ctx.market)
                .event_signature(Market::OrderCreated::SIGNATURE_HASH)
                .topic1(id)
                .from_block(from_block(ctx)),
        )
        .await
        .map_err(classify_rpc)?;
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
    let job = match spec.map(|s| s.workload) {
        Some(Workload::MatmulI8 { m, k, n, seed }) => Job::Seeded(Matmul { seed, m, k, n }),
        Some(mut w @ Workload::MatmulI8Data { .. }) => {
            let data = resolve_inputs(&mut w, "the job's inputs").await?;
            Job::Data(Box::new(data.expect("a data job")))
        }
        _ => {
            h += "  check      not a built-in job: the commitment is all that can be checked\n";
            return Ok(Output {
                human: h,
                json: out,
            });
        }
    };
    let (m, k, n) = job.ops().shape();
    if bytes.len() != m as usize * n as usize * 4 {
        h += &format!("  check      wrong size for a {m}x{n} INT32 result\n");
        out["matmul"] = json!({ "ok": false, "reason": "size" });
        return Ok(Output {
            human: h,
            json: out,
        });
    }
    let c: Vec<i32> = bytes
        .chunks(4)
        .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let r_seed = B256::from(rand08::random::<[u8; 32]>());
    let Some(fraud) = matmul::localize(job.ops(), &c, r_seed) else {
        h += &format!(
            "  check      verified: C = A x B ({m}x{k} by {k}x{n}, Freivalds over 2^61-1)\n"
        );
        out["matmul"] = json!({ "ok": true });
        return Ok(Output {
            human: h,
            json: out,
        });
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
    let (i, j) = (U256::from(fraud.i), U256::from(fraud.j));
    let terms = created.params.into();
    let leaf = Bytes::from(fraud.leaf);
    let receipt = match &job {
        Job::Seeded(job) => {
            let seeded = SeededJob {
                seed: job.seed,
                m,
                k,
                n,
            };
            let call =
                r.proveMatmulFraud(id, created.tenant, terms, seeded, i, j, leaf, fraud.proof);
            send(call).await?
        }
        Job::Data(d) => {
            let p = d.input_proof(fraud.i, fraud.j);
            let (ra, rb) = (d.a_tree().root(), d.b_tree().root());
            let data = DataJob {
                aRoot: ra,
                bRoot: rb,
                m,
                k,
                n,
            };
            let ops = Operands {
                aRow: p.a_row.into(),
                aProof: p.a_proof,
                bCol: p.b_col.into(),
                bProof: p.b_proof,
            };
            let call = r.proveMatmulDataFraud(
                id,
                created.tenant,
                terms,
                data,
                i,
                j,
                ops,
                leaf,
                fraud.proof,
            );
            send(call).await?
        }
    };
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
