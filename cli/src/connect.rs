//! `gridlease connect`: a local port carried to a service lease that its provider's node serves
//! over TLS (`[service] tls = true`, ACC-03), talking only to the key bound on chain to the lease.
//!
//! A service is public: no key of the tenant's is needed, only the chain. Each local connection
//! becomes a TLS connection to the node's port, whose key must hash to the lease's binding
//! (`Results.CertificateBound` on the lease's own module); anything else answering there is
//! refused with the reason. The binding and the lease are read again every 15 s: a key the node
//! binds anew is followed (and said), and the lease's end stops the command.

use std::time::Duration;

use alloy::primitives::B256;
use anyhow::Result;
use gridlease_fetch::{
    Fetcher,
    service::{ServiceError, curl_pin},
};
use gridlease_primitives::{
    protocol::{JobViewExt, LeaseKind, Status},
    spec::{PUSH_URI, Workload},
};
use serde_json::json;
use tokio::net::TcpListener;

use crate::{
    ctx::{Ctx, Output, parse_id, user},
    lease::Facts,
    logs::node_of,
};

/// How often the binding and the lease are read again.
const RECHECK: Duration = Duration::from_secs(15);

/// What `connect` was told.
#[derive(Debug)]
pub(crate) struct Opts {
    /// The local address to listen on.
    pub(crate) listen: String,
    /// The service's host instead of its provider's node's.
    pub(crate) host: Option<String>,
    /// The service's port instead of its spec's.
    pub(crate) port: Option<u16>,
}

/// Run `connect` until Ctrl-C or the lease's end.
pub(crate) async fn run(ctx: &Ctx, id: &str, o: Opts) -> Result<Output> {
    let id = parse_id(id)?;
    let f = Facts::one(ctx, id).await?;
    let (Some(created), Some(started)) = (&f.created, &f.started) else {
        return user(format!(
            "{id} was never leased on this market (chain {}): nothing serves it",
            ctx.client.chain_id
        ));
    };
    if f.v.lease_kind() != LeaseKind::Service {
        return user(format!(
            "{id} is a batch job: it serves nothing to connect to"
        ));
    }
    if f.v.status() != Status::Leased {
        return user(format!(
            "{id} is not running ({}): nothing serves it any more",
            f.state().word
        ));
    }
    let Some(key) = f.tls_key else {
        return user(format!(
            "the provider's node has bound no TLS key to {id}: its spec does not ask for TLS ([service] tls = true; reach its port directly), or the node has not opened it yet (try again in a few seconds)"
        ));
    };
    let Some(module) = f.windows.as_ref().map(|w| w.address) else {
        return user(format!("cannot find the results module of lease {id}"));
    };
    let port = match o.port {
        Some(p) => p,
        None => service_port(ctx, id, &created.params.specURI, created.params.specHash).await?,
    };
    let host = match o.host {
        Some(h) => h,
        None => service_host(ctx, &f, started.provider).await?,
    };
    let listener = match TcpListener::bind(&o.listen).await {
        Ok(l) => l,
        Err(e) => {
            return user(format!(
                "cannot listen on {}: {e}; name another address with --listen",
                o.listen
            ));
        }
    };
    let local = listener.local_addr()?;
    eprintln!(
        "{local} -> {host}:{port} over TLS, key {} (bound on chain to {id}); Ctrl-C stops",
        curl_pin(key)
    );
    let mut key = key;
    let results = ctx.results_at(module);
    let lens = ctx.lens()?;
    let mut recheck = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    let mut served = 0u64;
    let why = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break "stopped".to_owned(),
            _ = recheck.tick() => {
                // A failed read changes nothing: the next one may work.
                if let Ok(job) = lens.getJob(id).call().await
                    && job.status() != Status::Leased
                {
                    break format!("{id} ended: nothing serves it any more");
                }
                if let Ok(now) = results.certificateOf(id).call().await
                    && now != key
                    && !now.is_zero()
                {
                    eprintln!("the node bound another key to {id} on chain: {}", curl_pin(now));
                    key = now;
                }
            }
            r = listener.accept() => {
                let (conn, peer) = match r {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("accepting a local connection failed: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                served += 1;
                let (fetcher, host) = (ctx.fetcher.clone(), host.clone());
                tokio::spawn(async move { carry(&fetcher, conn, peer, &host, port, key).await });
            }
        }
    };
    let h = format!("{why} ({served} connections carried)\n");
    Ok(Output {
        human: h,
        json: json!({
            "lease": id, "listen": local.to_string(), "host": host, "port": port,
            "key": key, "connections": served, "ended": why,
        }),
    })
}

/// One local connection carried to the service over TLS pinned to `key`.
/// What went wrong is said while the local connection (from `peer`) is still open: whoever is on
/// its other end sees it closed only after.
async fn carry(
    fetcher: &Fetcher,
    mut conn: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    host: &str,
    port: u16,
    key: B256,
) {
    let _ = conn.set_nodelay(true);
    let done = match fetcher.service(host, port, key).await {
        Ok(mut tls) => tokio::io::copy_bidirectional(&mut conn, &mut tls)
            .await
            .map(drop)
            .map_err(|e| ServiceError::Connection(e.to_string())),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        eprintln!("{peer}: {e}");
    }
    drop(conn);
}

/// Where running service lease `f` is reached, as far as the chain and its spec say: its node's
/// host and its spec's port (None where they cannot be read: a pushed spec, a provider without a
/// node URL).
pub(crate) async fn endpoint(ctx: &Ctx, f: &Facts) -> (Option<String>, Option<u16>) {
    let (Some(created), Some(started)) = (&f.created, &f.started) else {
        return (None, None);
    };
    let host = service_host(ctx, f, started.provider).await.ok();
    let port = service_port(ctx, f.id, &created.params.specURI, created.params.specHash)
        .await
        .ok();
    (host, port)
}

/// The host of the node serving lease `f` (of `provider`).
async fn service_host(
    ctx: &Ctx,
    f: &Facts,
    provider: alloy::primitives::Address,
) -> Result<String> {
    let base = node_of(ctx, f, provider).await?;
    match url::Url::parse(&base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        Some(h) => Ok(h),
        None => user(format!(
            "the provider's node URL {base:?} names no host: name the service's host with --host"
        )),
    }
}

/// The port lease `id`'s spec (at `uri`, hashing to `hash`) serves on.
async fn service_port(ctx: &Ctx, id: B256, uri: &str, hash: B256) -> Result<u16> {
    if uri == PUSH_URI {
        return user(format!(
            "the spec of {id} was pushed to its node, not published: name its port with --port"
        ));
    }
    match ctx.fetcher.spec(uri, hash).await {
        Ok(spec) => match spec.workload {
            Workload::Service { port, .. } => Ok(port),
            _ => user(format!("the spec of {id} is not a service's")),
        },
        Err(e) => user(format!(
            "cannot read the spec of {id} ({e}): name its port with --port"
        )),
    }
}
