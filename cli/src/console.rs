//! `gridlease console`: serve the web console (`console/`, built to `console/dist` by
//! `npm run build`) on loopback, with `/config.json` naming this chain, its RPC and the deployment,
//! under a Content-Security-Policy that allows only the bundle's own files and the RPC
//! (SECURITY.md WEB-02). The page talks to the chain itself (reads through the RPC, writes through
//! the user's wallet); this server hands out files, and checks a job spec for the New job page
//! with the CLI's own code (`POST /api/order`: the same parser, market checks and messages as
//! `gridlease submit --check`). It signs nothing and holds no key.
//!
//! It also hands the page a lease's posted result (`POST /api/result`), fetched with the CLI's
//! guarded fetcher, for the page to check against the chain itself, and a lease's job logs
//! (`POST /api/logs`), asked of its provider's node with the access the tenant signed on the page,
//! and a command run in its running container (`POST /api/shell`, a shell session with the node
//! opened with the access the tenant signed for it).
//!
//! Every route answers only requests naming this server as their `Host` (a DNS rebinding page's
//! requests name its own host; `/config.json` holds the RPC URL, which may carry an API key).
//! The `/api/` routes answer only this page: a request must also name this server as its
//! `Origin` (every cross-site POST carries one), with `Content-Type: application/toml` or
//! `application/json` (not a type a cross-site form may send without the preflight this server
//! never answers); bodies are small.

use std::{
    net::SocketAddr,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use alloy::primitives::B256;
use anyhow::{Context as _, Result};
use axum::{
    Router,
    extract::State,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;

use crate::ctx::{Ctx, Output, UserError};

/// Where the bundle is unless `--dir` says: `GRIDLEASE_CONSOLE_DIR`, else `console/dist` of the
/// repository the binary was built in (`target/<profile>/gridlease` -> `../../console/dist`),
/// else `./console/dist`.
pub(crate) fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("GRIDLEASE_CONSOLE_DIR") {
        return d.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("console/dist")))
        .filter(|d| d.join("index.html").is_file())
        .unwrap_or_else(|| PathBuf::from("console/dist"))
}

struct Site {
    dir: PathBuf,
    config: serde_json::Value,
    csp: HeaderValue,
    /// The CLI's context (chain, deployment, guarded fetcher; no wallet is used), for `/api/`.
    ctx: Arc<Ctx>,
    /// `host:port` this server answers as.
    host: String,
}

/// The largest spec `/api/order` reads.
const MAX_SPEC: usize = 64 * 1024;

/// The origin (`scheme://host:port`) of `url`, for the policy's `connect-src` (an IPv6 host in
/// brackets once, as `host_str` already gives it).
fn origin(url: &str) -> Result<String> {
    let u = url::Url::parse(url).with_context(|| format!("--rpc {url} is not a URL"))?;
    u.host_str().context("--rpc has no host")?;
    match u.origin() {
        o @ url::Origin::Tuple(..) => Ok(o.ascii_serialization()),
        url::Origin::Opaque(_) => {
            Err(UserError(format!("--rpc {url}: an http(s) or ws(s) URL is needed")).into())
        }
    }
}

/// The policy: the bundle's own scripts and styles only (no inline code, no other origin), images
/// from the bundle or data URIs (wallet icons), connections to this server and the RPC.
pub(crate) fn policy(rpc: &str) -> Result<String> {
    Ok(format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        origin(rpc)?
    ))
}

/// `rel` (a request path) as a file under `dir`, or `None` when it would leave it (`..`, an
/// absolute path, a root or drive prefix).
pub(crate) fn file_under(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let path = Path::new(rel);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join(path))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn respond(site: &Site, status: StatusCode, kind: &'static str, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_SECURITY_POLICY, site.csp.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `/config.json`, its tokens read again (a token governance allowed since the console started
/// shows with its own symbol and decimals on the next page load, not as an unknown one); if the
/// chain cannot be read, the tokens known so far.
async fn serve_config(State(site): State<Arc<Site>>) -> Response {
    let mut config = site.config.clone();
    match site.ctx.read_market_tokens().await {
        Ok(tokens) => {
            if let Ok(t) = serde_json::to_value(tokens) {
                config["deployments"]["tokens"] = t;
            }
        }
        Err(e) => {
            eprintln!("console: cannot read the market's tokens ({e:#}); serving those known")
        }
    }
    respond(
        &site,
        StatusCode::OK,
        "application/json",
        config.to_string().into_bytes(),
    )
}

async fn file(State(site): State<Arc<Site>>, uri: Uri) -> Response {
    let not_found = |site: &Site| {
        respond(
            site,
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"not found\n".to_vec(),
        )
    };
    let Some(path) = file_under(&site.dir, uri.path()) else {
        return not_found(&site);
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => respond(&site, StatusCode::OK, content_type(&path), bytes),
        Err(_) => not_found(&site),
    }
}

/// The `Host` a request names if it is this server's (`host`, the `host:port` it listens on, or
/// `localhost` at its port): never another name, which is what a DNS-rebinding page's requests
/// carry.
fn own_host<'h>(headers: &'h axum::http::HeaderMap, host: &str) -> Option<&'h str> {
    let port = host.rsplit_once(':').map_or("", |(_, p)| p);
    let named = headers.get(header::HOST)?.to_str().ok()?;
    (named == host || named == format!("localhost:{port}")).then_some(named)
}

/// Every route answers only requests naming this server as their `Host`: a DNS-rebinding page
/// could otherwise read `/config.json`, whose RPC URL may carry an API key.
async fn own_host_only(
    State(site): State<Arc<Site>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if own_host(req.headers(), &site.host).is_none() {
        return respond(
            &site,
            StatusCode::MISDIRECTED_REQUEST,
            "text/plain; charset=utf-8",
            b"this server answers requests for its own address only\n".to_vec(),
        );
    }
    next.run(req).await
}

/// Whether a request with these headers comes from this server's own page (`host` is the
/// `host:port` it answers as): see the module docs.
pub(crate) fn own_page(
    headers: &axum::http::HeaderMap,
    host: &str,
    kind: &str,
) -> Result<(), &'static str> {
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let Some(named) = own_host(headers, host) else {
        return Err("this server answers requests for its own address only");
    };
    if get(header::ORIGIN) != Some(format!("http://{named}").as_str()) {
        return Err("only the console's own page may ask this");
    }
    let typed = get(header::CONTENT_TYPE)
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(kind));
    if !typed {
        return Err("wrong Content-Type for this request");
    }
    Ok(())
}

fn json_response(site: &Site, status: StatusCode, body: &serde_json::Value) -> Response {
    respond(
        site,
        status,
        "application/json",
        body.to_string().into_bytes(),
    )
}

/// An `/api/` request refused: `{"error": why}`.
fn refuse(site: &Site, status: StatusCode, why: impl Into<String>) -> Response {
    json_response(site, status, &json!({ "error": why.into() }))
}

/// `POST /api/order`: the spec in the body, checked as `gridlease submit --check` checks it; the
/// order it makes (amounts in token units, as decimal strings) and what it says, or the error
/// the CLI would print.
async fn check_order(
    State(site): State<Arc<Site>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(why) = own_page(&headers, &site.host, "application/toml") {
        return refuse(&site, StatusCode::FORBIDDEN, why);
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return refuse(&site, StatusCode::BAD_REQUEST, "the spec: not UTF-8 text");
    };
    match crate::submit::prepare(&site.ctx, text, "the spec", None, false).await {
        Ok(p) => {
            let o = &p.order;
            json_response(
                &site,
                StatusCode::OK,
                &json!({
                    "order": {
                        "specHash": o.specHash,
                        "specURI": o.specURI,
                        "token": o.token,
                        "deposit": o.deposit.to_string(),
                        "maxPricePerSecond": o.maxPricePerSecond.to_string(),
                        "maxDuration": o.maxDuration,
                        "bidWindow": o.bidWindow,
                        "collateral": o.collateral.to_string(),
                        "gpuClass": o.gpuClass,
                        "gpuCount": o.gpuCount,
                        "vramGiB": o.vramGiB,
                        "cpuCores": o.cpuCores,
                        "ramGiB": o.ramGiB,
                        "jobKind": o.jobKind,
                        "instant": o.instant,
                    },
                    "token": p.token,
                    "summary": p.summary,
                    "human": p.human,
                }),
            )
        }
        Err(e) => refuse(&site, StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

/// What a page's `POST` with `{"lease": "0x..", <fields>...}` asks about, once it passed the
/// own-page checks: the lease id, the string value of each of `fields` (in order), and the facts
/// of the lease on chain (none: no such order). A refusal answers anything else.
async fn asked_lease(
    site: &Site,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    fields: &[&str],
) -> Result<(B256, Vec<String>, Option<crate::lease::Facts>), Response> {
    if let Err(why) = own_page(headers, &site.host, "application/json") {
        return Err(refuse(site, StatusCode::FORBIDDEN, why));
    }
    let asked = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let id = v["lease"].as_str()?.parse::<B256>().ok()?;
            let more: Option<Vec<String>> = fields
                .iter()
                .map(|f| v[f].as_str().map(str::to_owned))
                .collect();
            Some((id, more?))
        });
    let Some((id, more)) = asked else {
        let fields: String = fields
            .iter()
            .map(|f| format!(", \"{f}\": \"...\""))
            .collect();
        return Err(refuse(
            site,
            StatusCode::BAD_REQUEST,
            format!("send {{\"lease\": \"0x<32 bytes>\"{fields}}}"),
        ));
    };
    match crate::lease::Facts::load(&site.ctx, &[id]).await {
        Ok(mut f) => Ok((id, more, f.pop())),
        Err(e) => Err(refuse(site, StatusCode::BAD_GATEWAY, format!("{e:#}"))),
    }
}

/// `POST /api/result` with `{"lease": "0x.."}`: the bytes of the lease's posted result, fetched
/// from the URI the chain names (`ResultPosted`) with the CLI's guarded fetcher, at most its
/// posted size. The page cannot fetch it itself (its policy allows only this server and the
/// RPC), and does not trust these bytes: it checks them against the root and size it reads from
/// the chain. A result its provider serves only to the tenant (a signed request) is not fetched
/// here: `gridlease result` downloads it.
async fn result_bytes(
    State(site): State<Arc<Site>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (id, facts) = match asked_lease(&site, &headers, &body, &[]).await {
        Ok((id, _, f)) => (id, f),
        Err(refused) => return refused,
    };
    let ctx = &site.ctx;
    let Some(posted) = facts.and_then(|f| f.result) else {
        return refuse(
            &site,
            StatusCode::NOT_FOUND,
            format!("{id} has no result posted"),
        );
    };
    match ctx.fetcher.get_capped(&posted.uri, None, posted.size).await {
        Ok(bytes) => respond(&site, StatusCode::OK, "application/octet-stream", bytes),
        Err(e) => refuse(
            &site,
            StatusCode::BAD_GATEWAY,
            format!(
                "cannot download the result from its provider ({e}); if only the tenant may download it, use `gridlease result {id}`"
            ),
        ),
    }
}

/// `POST /api/logs` with `{"lease": "0x..", "auth": "<expiry>:<nonce>:<signature>"}`: the lease's
/// job logs from its provider's node (the node its provider registered), asked for with the
/// access the tenant signed in its wallet on the page (ACC-01: the node checks it, and takes each
/// once). The page cannot reach the node itself (its policy allows only this server and the RPC);
/// this server adds nothing to the request, so it reaches no more than the tenant's signature
/// does, and hands back text the page shows as text.
async fn job_logs(
    State(site): State<Arc<Site>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (id, mut more, facts) = match asked_lease(&site, &headers, &body, &["auth"]).await {
        Ok(asked) => asked,
        Err(refused) => return refused,
    };
    let (ctx, auth) = (&site.ctx, more.remove(0));
    let node = match lease_node(&site, id, facts, "logs").await {
        Ok(n) => n,
        Err(refused) => return refused,
    };
    match ctx
        .fetcher
        .get_capped(
            &format!("{node}/logs/{id}"),
            Some(&auth),
            crate::logs::MAX_LOGS,
        )
        .await
    {
        Ok(bytes) => respond(&site, StatusCode::OK, "text/plain; charset=utf-8", bytes),
        Err(e) => refuse(
            &site,
            StatusCode::BAD_GATEWAY,
            format!("the provider's node did not hand over the logs: {e}"),
        ),
    }
}

/// The node running lease `id` (`facts`), or the answer saying why there is none (it was never
/// leased, so it has no `what`).
async fn lease_node(
    site: &Site,
    id: B256,
    facts: Option<crate::lease::Facts>,
    what: &str,
) -> Result<String, Response> {
    let Some((f, provider)) =
        facts.and_then(|f| f.started.as_ref().map(|s| s.provider).map(|p| (f, p)))
    else {
        return Err(refuse(
            site,
            StatusCode::NOT_FOUND,
            format!("{id} was never leased: it has no job, so no {what}"),
        ));
    };
    crate::logs::node_of(&site.ctx, &f, provider)
        .await
        .map_err(|e| refuse(site, StatusCode::NOT_FOUND, format!("{e:#}")))
}

/// Most bytes of each stream `POST /api/shell` hands back.
const MAX_RAN: usize = 1 << 20;
/// How long `POST /api/shell` lets a command run.
const RAN_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// `POST /api/shell` with `{"lease": "0x..", "auth": "<expiry>:<nonce>:<signature>", "command":
/// "..."}`: run `command` with `/bin/sh -c` in the lease's running container, with no input, over
/// a shell session with its provider's node opened with the access the tenant signed in its
/// wallet on the page (ACC-01, ACC-02: the node checks it and takes it once; this server adds
/// nothing to it). Answers `{"stdout", "stderr", "exit"}` (each stream's first MiB, lossy UTF-8)
/// once the command exits, within two minutes.
async fn job_shell(
    State(site): State<Arc<Site>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use gridlease_fetch::shell::{Control, Ended, Event, STDERR, Start};
    let (id, mut more, facts) =
        match asked_lease(&site, &headers, &body, &["auth", "command"]).await {
            Ok(asked) => asked,
            Err(refused) => return refused,
        };
    let (command, auth) = (more.remove(1), more.remove(0));
    let node = match lease_node(&site, id, facts, "shell").await {
        Ok(n) => n,
        Err(refused) => return refused,
    };
    let start = Start {
        cmd: vec!["/bin/sh".into(), "-c".into(), command],
        ..Start::default()
    };
    if let Err(why) = start.check() {
        return refuse(
            &site,
            StatusCode::BAD_REQUEST,
            format!("cannot run that: {why}"),
        );
    }
    let mut session = match site.ctx.fetcher.shell(&node, id, &auth, &start).await {
        Ok(s) => s,
        Err(e) => {
            return refuse(
                &site,
                StatusCode::BAD_GATEWAY,
                format!("the provider's node did not open the shell: {e}"),
            );
        }
    };
    let ran = tokio::time::timeout(RAN_WITHIN, async {
        session.control(&Control::Eof).await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            match session.next().await {
                Some(Ok(Event::Output { stream, data })) => {
                    let to = if stream == STDERR { &mut err } else { &mut out };
                    let room = MAX_RAN.saturating_sub(to.len());
                    to.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(Ok(Event::Ended(Ended::Exit(code)))) => return Ok((out, err, code)),
                Some(Ok(Event::Ended(Ended::Error(why)))) => {
                    return Err(gridlease_fetch::shell::ShellError::Connection(why));
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(gridlease_fetch::shell::ShellError::Connection(
                        "the node closed the session without an exit status".into(),
                    ));
                }
            }
        }
    })
    .await;
    match ran {
        Ok(Ok((out, err, code))) => {
            let v = json!({
                "stdout": String::from_utf8_lossy(&out),
                "stderr": String::from_utf8_lossy(&err),
                "exit": code,
            });
            respond(
                &site,
                StatusCode::OK,
                "application/json",
                v.to_string().into_bytes(),
            )
        }
        Ok(Err(e)) => refuse(
            &site,
            StatusCode::BAD_GATEWAY,
            format!("the command did not run to its end: {e}"),
        ),
        Err(_) => refuse(
            &site,
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the command ran over {} s: run it with `gridlease shell {id}` instead (the node stops it)",
                RAN_WITHIN.as_secs()
            ),
        ),
    }
}

/// The router for `dir`, `config` (the JSON of `/config.json`) and `rpc`, answering as `host`
/// (`host:port`), with `ctx` for the `/api/` routes.
pub(crate) fn router(
    dir: PathBuf,
    config: serde_json::Value,
    rpc: &str,
    host: String,
    ctx: Arc<Ctx>,
) -> Result<Router> {
    let csp = HeaderValue::from_str(&policy(rpc)?).context("a policy header")?;
    let site = Arc::new(Site {
        dir,
        config,
        csp,
        ctx,
        host,
    });
    Ok(Router::new()
        .route("/config.json", get(serve_config))
        .route(
            "/api/order",
            post(check_order).layer(axum::extract::DefaultBodyLimit::max(MAX_SPEC)),
        )
        .route(
            "/api/result",
            post(result_bytes).layer(axum::extract::DefaultBodyLimit::max(1024)),
        )
        .route(
            "/api/logs",
            post(job_logs).layer(axum::extract::DefaultBodyLimit::max(1024)),
        )
        .route(
            "/api/shell",
            post(job_shell).layer(axum::extract::DefaultBodyLimit::max(8 << 10)),
        )
        .fallback(get(file))
        .layer(axum::middleware::from_fn_with_state(
            site.clone(),
            own_host_only,
        ))
        .with_state(site))
}

/// Serve until Ctrl-C.
pub(crate) async fn run(ctx: Ctx, rpc: &str, listen: SocketAddr, dir: PathBuf) -> Result<Output> {
    if !listen.ip().is_loopback() {
        return Err(UserError(format!(
            "--listen {listen}: the console serves loopback only (127.0.0.1 or ::1); it is your \
             own page, and your wallet signs in your browser"
        ))
        .into());
    }
    if !dir.join("index.html").is_file() {
        return Err(UserError(format!(
            "no console bundle in {}: build it with `cd console && npm ci && npm run build`, or \
             give --dir",
            dir.display()
        ))
        .into());
    }
    let mut deployments = serde_json::to_value(&ctx.d)?;
    // Tokens governance added after the file was written are read from the chain.
    deployments["tokens"] = serde_json::to_value(ctx.market_tokens().await?)?;
    let config = json!({
        "chainId": ctx.client.chain_id,
        "rpc": rpc,
        "gpuClasses": gridlease_primitives::gpu::GPU_CLASSES,
        "deployments": deployments,
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot bind"))?;
    let host = listener.local_addr()?.to_string();
    let url = format!("http://{host}/");
    let app = router(dir.clone(), config, rpc, host, Arc::new(ctx))?;
    println!(
        "console    {url}  (bundle {}; Ctrl-C stops it)",
        dir.display()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the console")?;
    Ok(Output {
        human: String::new(),
        json: json!({"url": url}),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{file_under, policy};

    #[test]
    fn web_02_only_the_consoles_own_page_may_ask_for_an_order() {
        use axum::http::{HeaderMap, HeaderValue, header};
        let host = "127.0.0.1:7400";
        let headers = |h: &str, origin: Option<&str>, kind: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(h).expect("host"));
            if let Some(o) = origin {
                m.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
            }
            m.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(kind).expect("type"),
            );
            m
        };
        let own = "http://127.0.0.1:7400";
        assert_eq!(
            super::own_page(
                &headers(host, Some(own), "application/toml"),
                host,
                "application/toml"
            ),
            Ok(())
        );
        assert!(
            super::own_page(
                &headers(host, Some(own), "application/toml; charset=utf-8"),
                host,
                "application/toml"
            )
            .is_ok()
        );
        // The page opened as localhost at the same port.
        assert!(
            super::own_page(
                &headers(
                    "localhost:7400",
                    Some("http://localhost:7400"),
                    "application/toml"
                ),
                host,
                "application/toml"
            )
            .is_ok()
        );
        for (h, origin, kind) in [
            // DNS rebinding: the attacker's name resolves to loopback, the Host stays theirs.
            ("evil.example:7400", Some(own), "application/toml"),
            // localhost at another port, or mixing names between Host and Origin.
            (
                "localhost:7401",
                Some("http://localhost:7401"),
                "application/toml",
            ),
            ("localhost:7400", Some(own), "application/toml"),
            // Another site posting to the console (a form, or fetch without CORS).
            (host, Some("https://evil.example"), "application/toml"),
            (host, Some("null"), "application/toml"),
            (host, None, "application/toml"),
            // A type a cross-site form may send without a preflight.
            (host, Some(own), "text/plain"),
            (host, Some(own), "application/x-www-form-urlencoded"),
        ] {
            assert!(
                super::own_page(&headers(h, origin, kind), host, "application/toml").is_err(),
                "{h} {origin:?} {kind}"
            );
        }
    }

    #[test]
    fn web_02_paths_stay_in_the_bundle_and_the_policy_allows_only_it_and_the_rpc() {
        let d = Path::new("/srv/dist");
        assert_eq!(file_under(d, "/"), Some(d.join("index.html")));
        assert_eq!(file_under(d, "/assets/a.js"), Some(d.join("assets/a.js")));
        for bad in ["/../Cargo.toml", "/assets/../../x", "/./x/../../y", "/a/.."] {
            assert_eq!(file_under(d, bad), None, "{bad}");
        }
        // Leading slashes only name the bundle's root: still inside it.
        assert_eq!(file_under(d, "//etc/passwd"), Some(d.join("etc/passwd")));
        let p = policy("http://127.0.0.1:8545").expect("policy");
        assert!(p.contains("script-src 'self';"), "{p}");
        assert!(
            p.contains("connect-src 'self' http://127.0.0.1:8545;"),
            "{p}"
        );
        assert!(!p.contains("unsafe-inline") && !p.contains('*'), "{p}");
        assert!(
            policy("wss://rpc.example.org/v1?key=x")
                .expect("policy")
                .contains("connect-src 'self' wss://rpc.example.org;")
        );
        // An IPv6 RPC: its host in brackets once (twice, the source was invalid and the page
        // could not reach the node).
        assert!(
            policy("http://[::1]:8545")
                .expect("policy")
                .contains("connect-src 'self' http://[::1]:8545;")
        );
    }
}
