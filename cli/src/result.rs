//! `gridlease result`: download a lease's result and verify it against the posted commitment
//! (root and size, 1 KiB leaves); check built-in `matmul_i8` results exactly (Freivalds); force
//! chunks on chain with a data-availability challenge (`--challenge`); and prove every fault that
//! is due (`--prove`): an unanswered challenge, a no-show, a missed deadline, a wrong or wrong-size
//! built-in result.

use std::{collections::BTreeMap, path::PathBuf};

use alloy::{
    primitives::{B256, FixedBytes, U256},
    providers::Provider,
    rpc::types::{Filter, TransactionReceipt},
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::{Market, Results};
use gridlease_chain::classify_rpc;
use gridlease_fetch::verify::{BuiltinJob, Verdict};
use gridlease_primitives::{
    protocol::{JobKind, JobViewExt, LeaseKind, Status},
    spec::PUSH_URI,
    units::format_duration,
};
use gridlease_workload::merkle::{Commitment, RESULT_LEAF_BYTES};
use serde_json::json;

use crate::{
    ctx::{Ctx, Output, UserError, eth, logs_since_deploy, money, parse_id, send, user, utc, when},
    lease::{Facts, Posted, Windows, short_string},
};

/// Flags of `result`.
pub(crate) struct Opts {
    /// Read the result from this file instead of the posted URI.
    pub(crate) file: Option<PathBuf>,
    /// Save the result here.
    pub(crate) out: Option<PathBuf>,
    /// Prove whatever fault is due.
    pub(crate) prove: bool,
    /// Challenge a chunk instead of downloading.
    pub(crate) challenge: bool,
    /// The chunk to challenge (default: a random one).
    pub(crate) chunk: Option<u64>,
}

/// Run `result`.
pub(crate) async fn run(ctx: &Ctx, id: &str, opts: Opts) -> Result<Output> {
    let id = parse_id(id)?;
    let f = Facts::one(ctx, id).await?;
    match f.v.status() {
        Status::None => {
            return user(format!(
                "no order or lease {id} on this market (chain {})",
                ctx.client.chain_id
            ));
        }
        Status::Open | Status::Cancelled => {
            return user(format!(
                "{id} was never leased: it has no result (see gridlease status {id})"
            ));
        }
        _ => {}
    }
    let Some(w) = f.windows.clone() else {
        return user(format!("cannot find the results module of lease {id}"));
    };
    if opts.challenge {
        return challenge(ctx, &f, &w, opts.chunk).await;
    }
    if opts.prove
        && let Some(out) = prove_due(ctx, &f, &w).await?
    {
        return Ok(out);
    }
    let Some(posted) = f.result.clone() else {
        let st = f.state();
        return user(format!(
            "no result has been posted for {id} yet: {}{}",
            st.text,
            if opts.prove {
                ". Nothing is provable yet"
            } else {
                ""
            }
        ));
    };
    check(ctx, &f, &w, &posted, &opts).await
}

/// With `--prove`: an unanswered challenge, a no-show or a missed deadline, proven now; `None`
/// when none is due (the result itself may still be checked).
async fn prove_due(ctx: &Ctx, f: &Facts, w: &Windows) -> Result<Option<Output>> {
    let id = f.id;
    let r = ctx.results_at(w.address);
    if let Some(c) = f.challenges.iter().find(|c| f.now > c.deadline) {
        ctx.wallet()?;
        ctx.progress(&format!(
            "chunk {} of {id} was not revealed by {}: proving the result unavailable",
            c.index,
            utc(c.deadline)
        ));
        let receipt = send(r.proveUnavailable(id, U256::from(c.index))).await?;
        return Ok(Some(proven(f, &receipt, "unavailable")));
    }
    if f.result.is_some() {
        return Ok(None);
    }
    match f.provable_liveness_fault() {
        Some("no-show") => {
            ctx.wallet()?;
            let Some(c) = &f.created else {
                return user(format!("no OrderCreated event for {id}"));
            };
            let receipt = send(r.proveNoShow(id, c.tenant, c.params.clone().into())).await?;
            Ok(Some(proven(f, &receipt, "no-show")))
        }
        Some(_) => {
            ctx.wallet()?;
            let receipt = send(r.proveMissedDeadline(id)).await?;
            Ok(Some(proven(f, &receipt, "missed-deadline")))
        }
        None => Ok(None),
    }
}

/// The outcome of a fault proof, from its receipt.
fn proven(f: &Facts, receipt: &TransactionReceipt, what: &str) -> Output {
    let fault = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<Market::LeaseFaulted>().ok())
        .map(|e| e.inner.data);
    // The tenant's refund is net of a third-party reporter's fee (none when the tenant proves).
    let (kind, refund, fee, compensation, slashed) = fault.as_ref().map_or_else(
        || (what.to_owned(), 0, 0, 0, 0),
        |e| {
            (
                short_string(e.kind),
                e.refund.to::<u128>() - e.fee.to::<u128>(),
                e.fee.to::<u128>(),
                e.compensation.try_into().unwrap_or(u128::MAX),
                e.slashed.try_into().unwrap_or(u128::MAX),
            )
        },
    );
    let human = format!(
        "{}\n  proven     {kind} (tx {}): the provider was slashed {}; the escrow refunded {}{}{}\n",
        f.id,
        receipt.transaction_hash,
        money(slashed, &f.stake),
        money(refund, &f.token),
        if fee > 0 {
            format!(
                " (less the reporter's fee of {}, credited in the market: gridlease withdraw)",
                money(fee, &f.token)
            )
        } else {
            String::new()
        },
        if compensation > 0 {
            format!(
                "; compensation {} credited to the tenant in staking (gridlease withdraw)",
                money(compensation, &f.stake)
            )
        } else {
            String::new()
        }
    );
    Output {
        human,
        json: json!({
            "id": f.id,
            "proveTx": receipt.transaction_hash,
            "fault": {
                "kind": kind,
                "refund": refund.to_string(),
                "fee": fee.to_string(),
                "compensation": compensation.to_string(),
                "slashed": slashed.to_string(),
            },
        }),
    }
}

/// `--challenge [--chunk N]`: force a chunk of the posted result on chain, bonding ETH.
async fn challenge(ctx: &Ctx, f: &Facts, w: &Windows, chunk: Option<u64>) -> Result<Output> {
    let id = f.id;
    let me = ctx.wallet()?.address();
    let Some(posted) = &f.result else {
        return user(format!(
            "no result has been posted for {id}: nothing to challenge"
        ));
    };
    let v = &f.v;
    let held = v.lease_kind() == LeaseKind::Held
        && (v.status() == Status::Leased || (v.status() == Status::Closed && v.held));
    let end: u64 = v.end.to();
    if !held || f.now > end {
        return user(format!(
            "the challenge window of {id} is over{}: only a posted result inside its window can be challenged",
            if held {
                format!(" (it ended {})", when(end, f.now))
            } else {
                String::new()
            }
        ));
    }
    let leaves = posted.commitment().leaves();
    // A chunk revealed already (an answered challenge) proves nothing again, and its answer
    // would take the bond: the random pick is among the others.
    let shown = revealed_chunks(ctx, id, w).await?;
    let index = match chunk {
        Some(i) => i,
        None => {
            let open: Vec<u64> = (0..leaves).filter(|i| !shown.contains_key(i)).collect();
            if open.is_empty() {
                return user(format!(
                    "every chunk of {id} was revealed on chain: the result is there in full (gridlease result {id})"
                ));
            }
            open[(u64::from_be_bytes(FixedBytes::<8>::random().0) % open.len() as u64) as usize]
        }
    };
    if shown.contains_key(&index) {
        return user(format!(
            "chunk {index} of {id} was revealed on chain already: challenging it again proves nothing, and its answer would take the bond"
        ));
    }
    if index >= leaves {
        return user(format!(
            "--chunk {index}: the result ({} bytes) has {leaves} chunk(s) of {RESULT_LEAF_BYTES} bytes, 0 to {}",
            posted.size,
            leaves - 1
        ));
    }
    if let Some(c) = f.challenges.iter().find(|c| c.index == index) {
        return user(format!(
            "chunk {index} of {id} is already challenged; its answer is due by {}",
            when(c.deadline, f.now)
        ));
    }
    let balance = ctx
        .client
        .provider
        .get_balance(me)
        .await
        .map_err(classify_rpc)?;
    if balance <= w.bond {
        return user(format!(
            "wallet {me} holds {}: a challenge bonds {} plus gas",
            eth(balance),
            eth(w.bond)
        ));
    }
    ctx.progress(&format!(
        "challenging chunk {index} of {id} ({} bytes, {leaves} chunk(s)): bond {}, paid to whoever reveals the chunk on chain, returned to you if nobody does within {}",
        posted.size,
        eth(w.bond),
        format_duration(w.response_window)
    ));
    let r = ctx.results_at(w.address);
    let receipt = send(
        r.challenge(id, posted.root, posted.size, U256::from(index))
            .value(w.bond),
    )
    .await?;
    let deadline: u64 = receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<Results::ChunkChallenged>().ok())
        .map_or(0, |e| e.inner.data.deadline.to());
    Ok(Output {
        human: format!(
            "challenged chunk {index} of {id} (bond {}, response window {})\n  the chunk must be revealed on chain by {}; if it is not: gridlease result {id} --prove   (refunds everything, slashes the provider, returns the bond)\n",
            eth(w.bond),
            format_duration(w.response_window),
            when(deadline, f.now),
        ),
        json: json!({
            "id": id,
            "chunk": index,
            "chunks": leaves,
            "bond": w.bond.to_string(),
            "bondText": eth(w.bond),
            "responseWindow": w.response_window,
            "deadline": deadline,
            "tx": receipt.transaction_hash,
        }),
    })
}

/// The chunks of lease `id`'s result revealed on chain (answers to challenges), by index.
async fn revealed_chunks(ctx: &Ctx, id: B256, w: &Windows) -> Result<BTreeMap<u64, Vec<u8>>> {
    let logs = logs_since_deploy(
        ctx,
        &Filter::new()
            .address(w.address)
            .event_signature(Results::ChunkRevealed::SIGNATURE_HASH)
            .topic1(id),
    )
    .await?;
    Ok(logs
        .iter()
        .filter_map(|l| l.log_decode::<Results::ChunkRevealed>().ok())
        .map(|e| {
            let e = e.inner.data;
            (e.index.try_into().unwrap_or(u64::MAX), e.chunk.to_vec())
        })
        .collect())
}

/// Chunks of the result revealed on chain by answers to challenges: the whole result when every
/// chunk was revealed (each was Merkle-checked on chain), and how many were.
async fn revealed(
    ctx: &Ctx,
    id: B256,
    w: &Windows,
    posted: &Posted,
) -> Result<(Option<Vec<u8>>, usize)> {
    let mut chunks = revealed_chunks(ctx, id, w).await?;
    let leaves = posted.commitment().leaves();
    let n = chunks.len();
    if (n as u64) < leaves || (0..leaves).any(|i| !chunks.contains_key(&i)) {
        return Ok((None, n));
    }
    let data: Vec<u8> = (0..leaves)
        .flat_map(|i| chunks.remove(&i).unwrap_or_default())
        .collect();
    Ok((
        (Commitment::of(&data) == posted.commitment()).then_some(data),
        n,
    ))
}

/// Download (or read) the result, check it against the commitment and, for a built-in job, the
/// product itself; prove it wrong with `--prove`.
async fn check(ctx: &Ctx, f: &Facts, w: &Windows, posted: &Posted, opts: &Opts) -> Result<Output> {
    let id = f.id;
    let (bytes, source) = match &opts.file {
        Some(p) => (
            std::fs::read(p).map_err(|e| UserError(format!("cannot read {}: {e}", p.display())))?,
            p.display().to_string(),
        ),
        // The provider serves a tenant's result to the tenant: sign the download when we can.
        None => {
            let provider = f.started.as_ref().map(|s| s.provider);
            let auth = ctx.wallet().ok().zip(provider).and_then(|(wl, provider)| {
                gridlease_fetch::result_auth(wl, ctx.venue(), id, provider)
            });
            // No more than the posted size: a provider cannot make this read more.
            match ctx
                .fetcher
                .get_capped(&posted.uri, auth.as_deref(), posted.size)
                .await
            {
                Ok(b) => (b, posted.uri.clone()),
                Err(e) => match revealed(ctx, id, w, posted).await? {
                    (Some(data), n) => {
                        ctx.progress(&format!(
                            "{e}; assembled the result from its {n} chunk(s) revealed on chain"
                        ));
                        (data, "chunks revealed on chain".to_owned())
                    }
                    (None, n) => return user(unavailable(f, w, posted, &e.to_string(), n)),
                },
            }
        }
    };
    let got = Commitment::of(&bytes);
    let matches = got == posted.commitment();
    let mut h = format!(
        "{id}\n  result     {} bytes from {source}\n  posted     root {}, {} bytes ({})\n",
        bytes.len(),
        posted.root,
        posted.size,
        if matches {
            "matches the on-chain commitment".to_owned()
        } else {
            format!(
                "DOES NOT MATCH the on-chain commitment: these bytes have root {} over {} bytes",
                got.root, got.size
            )
        },
    );
    let mut out = json!({
        "id": id, "bytes": bytes.len(), "root": posted.root, "size": posted.size, "uri": posted.uri,
        "source": source, "matchesCommitment": matches,
    });
    // Saved (`--out`) only once it passed every check there is; a failed check exits 6.
    let save = |h: &mut String| -> Result<()> {
        if let Some(path) = &opts.out {
            std::fs::write(path, &bytes)
                .map_err(|e| UserError(format!("cannot write {}: {e}", path.display())))?;
            *h += &format!("  saved      {}\n", path.display());
        }
        Ok(())
    };
    let unsaved = |h: &mut String| {
        if let Some(path) = &opts.out {
            *h += &format!(
                "  not saved  {}: the result failed its check\n",
                path.display()
            );
        }
    };
    if !matches {
        unsaved(&mut h);
        if opts.file.is_none() {
            h += &format!(
                "  next       the provider served other bytes than it committed to: challenge chunks of the posted result with gridlease result {id} --challenge --chunk N\n"
            );
        }
        return Ok(Output::failed(h, out));
    }

    // A built-in job: check the product itself.
    let Some(created) = &f.created else {
        return user(format!("no OrderCreated event for {id}"));
    };
    let builtin = JobKind::from_code(created.params.jobKind) == Some(JobKind::MatmulI8);
    let pushed = builtin && created.params.specURI == PUSH_URI;
    let job = if pushed {
        None
    } else {
        match ctx
            .fetcher
            .spec(&created.params.specURI, created.params.specHash)
            .await
        {
            Ok(spec) => BuiltinJob::from_spec(&spec, &ctx.fetcher)
                .await
                .map_err(UserError)?,
            // A built-in job's product is checked, or the check fails: its bytes matching the
            // commitment says nothing of whether they are the product.
            Err(e) if builtin => {
                return user(format!(
                    "cannot check the product of {id}: its spec could not be read ({e}); try again later"
                ));
            }
            Err(_) => None,
        }
    };
    let Some(job) = job else {
        h += if pushed {
            "  check      the job's spec was pushed to its provider, not published: the commitment is all that can be checked here\n"
        } else {
            "  check      not a built-in job: the commitment is all that can be checked\n"
        };
        save(&mut h)?;
        return Ok(Output {
            human: h,
            json: out,
        });
    };
    let (m, k, n) = job.ops().shape();
    let r_seed = B256::random();
    let fraud = match job.check(&bytes, r_seed) {
        Verdict::Correct => {
            h += &format!(
                "  check      verified: C = A x B ({m}x{k} by {k}x{n}, Freivalds over 2^61-1)\n"
            );
            out["matmul"] = json!({ "ok": true });
            save(&mut h)?;
            return Ok(Output {
                human: h,
                json: out,
            });
        }
        Verdict::WrongSize { expected, got } => {
            h += &format!(
                "  check      WRONG SIZE: {got} bytes, a {m}x{n} INT32 result has {expected}\n"
            );
            out["matmul"] =
                json!({ "ok": false, "reason": "size", "expected": expected, "got": got });
            None
        }
        Verdict::Wrong(fr) => {
            h += &format!(
                "  check      WRONG: C[{}][{}] is {}, should be {}\n",
                fr.i, fr.j, fr.claimed, fr.correct
            );
            out["matmul"] = json!({
                "ok": false, "i": fr.i, "j": fr.j, "claimed": fr.claimed, "correct": fr.correct,
            });
            Some(fr)
        }
    };
    unsaved(&mut h);
    if !opts.prove {
        h += &format!(
            "  next       gridlease result {id} --prove   (refunds what the lease holds, slashes the provider; an accepted result's pay is compensated)\n"
        );
        return Ok(Output::failed(h, out));
    }
    ctx.wallet()?;
    let input = job.proof_calldata(
        id,
        created.tenant,
        created.params.clone(),
        posted.commitment(),
        fraud.as_deref(),
    );
    let call = alloy::contract::RawCallBuilder::new_raw(&ctx.client.provider, input).to(w.address);
    let receipt = send(call).await?;
    let p = proven(
        f,
        &receipt,
        if fraud.is_some() {
            "wrong-result"
        } else {
            "malformed-result"
        },
    );
    h += p.human.trim_start_matches(&format!("{id}\n"));
    out["proveTx"] = p.json["proveTx"].clone();
    out["fault"] = p.json["fault"].clone();
    Ok(Output {
        human: h,
        json: out,
    })
}

/// Why the result could not be had, and what the tenant can do about it.
fn unavailable(f: &Facts, w: &Windows, posted: &Posted, err: &str, revealed: usize) -> String {
    let id = f.id;
    let v = &f.v;
    let end: u64 = v.end.to();
    let open = v.lease_kind() == LeaseKind::Held
        && (v.status() == Status::Leased || (v.status() == Status::Closed && v.held))
        && f.now <= end;
    let leaves = posted.commitment().leaves();
    let mut msg = format!(
        "the provider's download failed: {err}; {revealed} of its {leaves} chunk(s) were revealed on chain"
    );
    for c in &f.challenges {
        msg += &format!(
            ". Chunk {} is challenged: it must be revealed by {}, else gridlease result {id} --prove fails the result",
            c.index,
            when(c.deadline, f.now)
        );
    }
    if open {
        msg += &format!(
            ". You can force any chunk on chain: gridlease result {id} --challenge [--chunk N] (bond {}, returned if the provider does not reveal it within {}; then --prove refunds everything and slashes it). The challenge window is open until {}",
            eth(w.bond),
            format_duration(w.response_window),
            when(end, f.now)
        );
    } else {
        msg += ". The challenge window is over";
    }
    msg
}
