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
use gridlease_primitives::protocol::{JobViewExt, Status};
use serde_json::json;

use crate::{
    ctx::{Ctx, Output, logs_since_deploy, parse_id, user},
    lease::Facts,
};

/// The most bytes of logs read (the node serves the tail of a job's standard error).
pub(crate) const MAX_LOGS: u64 = 1 << 20;

/// How often `--follow` reads the logs again.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Run `logs`: what lease `id`'s job wrote to its standard error, from `node` (default: the
/// node serving its result, else the node its provider registered); with `follow`, again every
/// 2 s, printing what is new, until its result is posted or the lease ends.
pub(crate) async fn run(ctx: &Ctx, id: &str, node: Option<&str>, follow: bool) -> Result<Output> {
    let (f, provider, base) = tenant_node(ctx, id, node, "logs").await?;
    let (id, wallet) = (f.id, ctx.wallet()?);
    let url = format!("{base}/logs/{id}");
    // One access per read: the node takes each once.
    let read = async || -> Result<std::result::Result<String, String>> {
        let auth = access(wallet, ctx.venue(), AccessTo::Logs, id, provider)
            .ok_or_else(|| anyhow::anyhow!("the wallet cannot sign"))?;
        Ok(ctx
            .fetcher
            .get_capped(&url, Some(&auth), MAX_LOGS)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string()))
    };
    let cannot = |e: &str| {
        format!(
            "the provider's node did not hand over the logs of {id}: {e}. A 404 means the job has not started (or the node no longer keeps them); name another address of the node with --node URL"
        )
    };
    let text = if follow && !ctx.json {
        let mut shown = String::new();
        let mut done = f.result.is_some() || f.v.status() != Status::Leased;
        loop {
            match read().await? {
                Ok(now) => {
                    print!("{}", new_part(&shown, &now));
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    shown = now;
                }
                // Not started yet: wait for it, as `tail -f` waits for a file.
                Err(e) if e.contains("404") && !done => {}
                Err(e) => return user(cannot(&e)),
            }
            if done {
                break;
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
            let f = Facts::one(ctx, id).await?;
            // One read more after the end: the logs kept with the result.
            done = f.result.is_some() || f.v.status() != Status::Leased;
        }
        return Ok(Output {
            human: String::new(),
            json: json!({ "lease": id, "provider": provider, "node": base, "logs": shown }),
        });
    } else {
        match read().await? {
            Ok(t) => t,
            Err(e) => return user(cannot(&e)),
        }
    };
    Ok(Output {
        human: if text.is_empty() {
            format!("(the job of {id} wrote nothing to its standard error yet)\n")
        } else {
            text.clone()
        },
        json: json!({ "lease": id, "provider": provider, "node": base, "logs": text }),
    })
}

/// For the tenant's request of `what` (logs, a shell) of lease `id`: the lease, its provider, and
/// its node's base URL (`node`, else [`node_of`]); refused before any request when the lease was
/// never started or this wallet is not its tenant.
pub(crate) async fn tenant_node(
    ctx: &Ctx,
    id: &str,
    node: Option<&str>,
    what: &str,
) -> Result<(Facts, Address, String)> {
    let id = parse_id(id)?;
    let f = Facts::one(ctx, id).await?;
    let Some(started) = &f.started else {
        return user(format!(
            "{id} was never leased on this market (chain {}): it has no job, so no {what} (see gridlease status {id})",
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
            "the {what} of {id} are its tenant's; this wallet ({}) is not it: use the tenant's key",
            wallet.address()
        ));
    }
    Ok((f, provider, base))
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

/// What of `now` is new after `shown`: the node serves the tail of a log, so the text read before
/// may have lost its start; the longest end of `shown` that `now` starts with is skipped. A log
/// that does not continue the one shown (the tail moved past all of it) is printed whole.
fn new_part<'a>(shown: &str, now: &'a str) -> &'a str {
    if let Some(rest) = now.strip_prefix(shown) {
        return rest;
    }
    let mut start = shown.len().saturating_sub(now.len());
    while start < shown.len() {
        if shown.is_char_boundary(start) && now.starts_with(&shown[start..]) {
            return &now[shown.len() - start..];
        }
        start += 1;
    }
    now
}

#[cfg(test)]
mod tests {
    use super::new_part;

    #[test]
    fn follow_prints_only_what_is_new_in_a_moving_tail() {
        assert_eq!(new_part("", "a\n"), "a\n");
        assert_eq!(new_part("a\n", "a\nb\n"), "b\n");
        assert_eq!(new_part("a\nb\n", "a\nb\n"), "");
        // The tail lost its first line and gained one.
        assert_eq!(new_part("a\nb\nc\n", "b\nc\nd\n"), "d\n");
        // Moved past everything shown.
        assert_eq!(new_part("a\n", "x\ny\n"), "x\ny\n");
    }
}
