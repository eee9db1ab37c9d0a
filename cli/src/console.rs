//! `gridlease console`: serve the web console (`console/`, built to `console/dist` by
//! `npm run build`) on loopback, with `/config.json` naming this chain, its RPC and the deployment,
//! under a Content-Security-Policy that allows only the bundle's own files and the RPC
//! (SECURITY.md WEB-02). The page talks to the chain itself (reads through the RPC, writes through
//! the user's wallet); this server only hands out files.

use std::{
    net::SocketAddr,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context as _, Result};
use axum::{
    Router,
    extract::State,
    http::{HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
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
    config: String,
    csp: HeaderValue,
}

/// The origin (`scheme://host:port`) of `url`, for the policy's `connect-src`.
fn origin(url: &str) -> Result<String> {
    let u = url::Url::parse(url).with_context(|| format!("--rpc {url} is not a URL"))?;
    let host = u.host_str().context("--rpc has no host")?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Ok(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
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

async fn serve_config(State(site): State<Arc<Site>>) -> Response {
    respond(
        &site,
        StatusCode::OK,
        "application/json",
        site.config.clone().into_bytes(),
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

/// The router for `dir`, `config` (the JSON of `/config.json`) and `rpc`.
pub(crate) fn router(dir: PathBuf, config: serde_json::Value, rpc: &str) -> Result<Router> {
    let csp = HeaderValue::from_str(&policy(rpc)?).context("a policy header")?;
    let site = Arc::new(Site {
        dir,
        config: config.to_string(),
        csp,
    });
    Ok(Router::new()
        .route("/config.json", get(serve_config))
        .fallback(get(file))
        .with_state(site))
}

/// Serve until Ctrl-C.
pub(crate) async fn run(ctx: &Ctx, rpc: &str, listen: SocketAddr, dir: PathBuf) -> Result<Output> {
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
    let app = router(dir.clone(), config, rpc)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot bind"))?;
    let url = format!("http://{}/", listener.local_addr()?);
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
    }
}
