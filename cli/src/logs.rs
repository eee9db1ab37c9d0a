//! `gridlease logs`: a lease's job logs from its provider's node, to its tenant only (ACC-01).
//! Each request carries its own EIP-712 access, signed here with the tenant's key for this lease,
//! this provider and this market; the node refuses anyone else's, an expired one and a replay.

use alloy::{
    primitives::{Address, B256},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use anyhow::Result;
use gridlease_bindings::Staking;
use gridlease_fetch::access::{AccessTo, access};
use serde_json::json;

use crate::{
    ctx::{Ctx, Output, logs_since_deploy, parse_id, user},
    lease::Facts,
};

/// The most bytes of logs read (the node serves the tail of a job's standard error).
pub(crate) const MAX_LOGS: u64 = 1 << 20;

/// Run `logs`: what lease `id`'s job wrote to its standard error, from `node` (default: the
/// node its provider registered, `metadataURI`).
pub(crate) async fn run(ctx: &Ctx, id: &str, node: Option<&str>) -> Result<Output> {
    let id = parse_id(id)?;
    let f = Facts::one(ctx, id).await?;
    let Some(started) = &f.started else {
        return user(format!(
            "{id} was never leased on this market (chain {}): it has no job, so no logs (see gridlease status {id})",
            ctx.client.chain_id
        ));
    };
    let provider = started.provider;
    let base = match node {
        Some(u) => u.trim().trim_end_matches('/').to_owned(),
        None => node_of(ctx, &f, provider).await?,
    };
    let wallet = ctx.wallet()?;
    if f.created
        .as_ref()
        .is_some_and(|c| c.tenant != wallet.address())
    {
        return user(format!(
            "the logs of {id} are its tenant's; this wallet ({}) is not it: use the tenant's key",
            wallet.address()
        ));
    }
    let auth = access(wallet, ctx.venue(), AccessTo::Logs, id, provider)
        .ok_or_else(|| anyhow::anyhow!("the wallet cannot sign"))?;
    let url = format!("{base}/logs/{id}");
    let bytes = match ctx.fetcher.get_capped(&url, Some(&auth), MAX_LOGS).await {
        Ok(b) => b,
        Err(e) => {
            return user(format!(
                "the provider's node did not hand over the logs of {id}: {e}. A 404 means the job has not started (or the node no longer keeps them); name another address of the node with --node URL"
            ));
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(Output {
        human: if text.is_empty() {
            format!("(the job of {id} wrote nothing to its standard error yet)\n")
        } else {
            text.clone()
        },
        json: json!({ "lease": id, "provider": provider, "node": base, "logs": text }),
    })
}

/// The base URL of the node running lease `f`'s job (of `provider`): the one that serves its
/// posted result (`<base>/results/<lease>`: the node that ran it), else the node its provider
/// registered.
pub(crate) async fn node_of(ctx: &Ctx, f: &Facts, provider: Address) -> Result<String> {
    let served = f.result.as_ref().and_then(|r| {
        let uri = r.uri.trim();
        let tail = format!("/results/{}", f.id);
        let cut = uri.len().checked_sub(tail.len())?;
        (uri.is_char_boundary(cut) && uri[cut..].eq_ignore_ascii_case(&tail))
            .then(|| uri[..cut].to_owned())
    });
    match served {
        Some(base) if base.starts_with("http://") || base.starts_with("https://") => Ok(base),
        _ => registered_node(ctx, provider).await,
    }
}

/// The base URL of `provider`'s node: its latest registration's `metadataURI`, when it is an
/// http(s) URL.
async fn registered_node(ctx: &Ctx, provider: Address) -> Result<String> {
    let staking = *ctx.staking()?.address();
    let logs = logs_since_deploy(
        ctx,
        &Filter::new()
            .address(staking)
            .event_signature(vec![
                Staking::ProviderRegistered::SIGNATURE_HASH,
                Staking::ProviderUpdated::SIGNATURE_HASH,
            ])
            .topic1(B256::from(provider.into_word())),
    )
    .await?;
    let uri = logs.iter().rev().find_map(|l| {
        l.log_decode::<Staking::ProviderUpdated>()
            .map(|e| e.inner.data.metadataURI)
            .or_else(|_| {
                l.log_decode::<Staking::ProviderRegistered>()
                    .map(|e| e.inner.data.metadataURI)
            })
            .ok()
    });
    match uri.map(|u| u.trim().trim_end_matches('/').to_owned()) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(u),
        Some(u) => user(format!(
            "provider {provider} registered no node URL (its metadataURI is {u:?}): name its node with --node URL"
        )),
        None => user(format!(
            "provider {provider} is not registered on this market: name its node with --node URL"
        )),
    }
}
