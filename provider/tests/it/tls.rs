//! ACC-03 through the real node: a service lease whose spec asks for TLS is served by the node's
//! front with a key bound on chain before the port opens; a client pinned to that binding gets
//! the service, `curl --pinnedpubkey` too, and a restarted node serves the same key without
//! binding again.

use std::time::Duration;

use crate::common::*;
use alloy::primitives::B256;
use alloy::sol_types::SolEvent;
use gridlease_bindings::Results;
use gridlease_fetch::{
    AllowList, Fetcher, Limits,
    service::{ServiceError, curl_pin},
};
use gridlease_primitives::spec::Workload;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `/` from the service at `port` over TLS pinned to `key`: the answer's bytes.
async fn get(port: u16, key: B256) -> Result<String, ServiceError> {
    let fetcher = Fetcher::new(AllowList::loopback(), Limits::default());
    let mut c = fetcher.service("127.0.0.1", port, key).await?;
    c.write_all(b"GET / HTTP/1.0\r\nHost: service\r\n\r\n")
        .await
        .map_err(|e| ServiceError::Connection(e.to_string()))?;
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// GET `/` through the front at `port` pinned to `key`, until the service answers (30 s).
async fn page(port: u16, key: B256) -> String {
    let mut last = String::new();
    for _ in 0..150 {
        match get(port, key).await {
            Ok(p) if p.contains("200") => return p,
            Ok(p) => last = p,
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// Wait for lease `id`'s key to be bound on chain (once); return it.
async fn bound_key(n: &Net, id: B256, node: u32) -> B256 {
    eventually(
        "the lease's key bound on chain",
        90,
        async || {
            n.count_logs(n.results, Results::CertificateBound::SIGNATURE_HASH, id)
                .await
                == 1
        },
        || n.log(node),
    )
    .await;
    n.event::<Results::CertificateBound>(n.results, id)
        .await
        .0
        .spkiHash
}

/// An instant TLS service ordered from node `n` (process executor, once it beats): Python's
/// HTTP server, run under `wrap` (a command prefix, or none), serving `text` as `/` on loopback
/// at the port the node gives it. Returns the lease and the service's port.
async fn python_service(n: &Net, text: &str, wrap: &str, salt: u8) -> (B256, u16) {
    n.wait_metric("gridlease_provider_heartbeats_total 1", 1)
        .await;
    let site = n.path().join("site");
    std::fs::create_dir_all(&site).expect("site");
    std::fs::write(site.join("index.html"), format!("{text}\n")).expect("page");
    let port = gridlease_deploy::anvil::free_port().expect("a free port");
    let spec = job_spec(Workload::Service {
        image: "local".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            format!(
                "exec {wrap} python3 -m http.server --bind 127.0.0.1 --directory '{}' \"$PORT\"",
                site.display()
            ),
        ],
        env: Default::default(),
        port,
        tls: true,
    });
    (n.order_spec(&spec, 0, salt, 3_600, true).await.0, port)
}

/// `curl` over TLS to the service at `port`, pinning `key`: its exit status and output.
fn curl(port: u16, key: B256) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-k", "--max-time", "10", "--pinnedpubkey"])
        .arg(curl_pin(key))
        .arg(format!("https://127.0.0.1:{port}/"))
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test]
async fn acc_03_a_tls_service_is_reached_only_through_the_key_bound_on_chain() {
    let (n, node) = started_on(None).await;
    let (id, port) = python_service(&n, "served behind the lease's key", "", 1).await;
    let key = bound_key(&n, id, 1).await;

    // Pinned to the binding: the service answers through the front.
    let got = page(port, key).await;
    assert!(
        got.contains("served behind the lease's key"),
        "{got}\n{}",
        n.log(1)
    );
    // Pinned to any other key: refused before a byte is sent.
    let e = get(port, B256::repeat_byte(7))
        .await
        .expect_err("another key");
    assert!(e.to_string().contains("not the one bound on chain"), "{e}");
    // The node counts what its front carried and what never reached the service.
    let carried =
        gridlease_testkit::metrics::scrape(n.port, "gridlease_provider_tls_connections_total")
            .await;
    let failed =
        gridlease_testkit::metrics::scrape(n.port, "gridlease_provider_tls_failed_total").await;
    assert!(
        carried >= 1 && failed >= 1,
        "carried {carried}, failed {failed}"
    );
    // `curl --pinnedpubkey` with the binding gets the page; with another key it refuses.
    if std::env::var_os("GRIDLEASE_REQUIRE_ENGINE").is_some()
        || std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok()
    {
        let (code, out) = curl(port, key);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("served behind the lease's key"), "{out}");
        let (code, out) = curl(port, B256::repeat_byte(7));
        assert_eq!(
            code, 90,
            "curl's 'SSL public key does not match pinned': {out}"
        );
    }

    // A restarted node derives the same key: the binding stands, no second one is made.
    n.stop(node, 1);
    let node = n.start(2);
    n.wait_head(2).await;
    let again = page(port, key).await;
    assert!(
        again.contains("served behind the lease's key"),
        "{again}\n{}",
        n.log(2)
    );
    assert_eq!(
        n.count_logs(n.results, Results::CertificateBound::SIGNATURE_HASH, id)
            .await,
        1,
        "bound once"
    );
    n.stop(node, 2);
}

/// A service that exits is started again on a loopback port of its own, and the front carries to
/// that one: reached after its restarts as before them, with the same key.
#[tokio::test]
async fn acc_03_a_restarted_service_is_reached_on_its_new_run() {
    let (n, node) = started_on(None).await;
    // Each run serves for 3 s, then exits: the node starts it again after a pause.
    let (id, port) = python_service(&n, "served again", "timeout 3", 3).await;
    let key = bound_key(&n, id, 1).await;
    assert!(
        page(port, key).await.contains("served again"),
        "{}",
        n.log(1)
    );
    n.wait_log("a restart", "service exited; restarting it", 1, 30)
        .await;
    let again = page(port, key).await;
    assert!(again.contains("served again"), "{again}\n{}", n.log(1));
    n.stop(node, 1);
}

/// ACC-03 on the real engine: the service's container listens on its own port, published on a
/// loopback port only, and is reached through the node's front with the bound key. Needs the
/// engine `scripts/podman.sh` serves (the test command starts it).
#[tokio::test]
async fn acc_03_a_tls_service_container_is_reached_through_the_front() {
    let Some(engine) = gridlease_testkit::engine::Engine::for_test() else {
        return;
    };
    let (n, node) = started_on(Some(&engine)).await;
    n.wait_metric("gridlease_provider_heartbeats_total 1", 1)
        .await;
    let port = gridlease_deploy::anvil::free_port().expect("a free port");
    let spec = job_spec(Workload::Service {
        image: engine.image.clone(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "mkdir -p /tmp/www && echo served from the container > /tmp/www/index.html && exec httpd -f -p \"$PORT\" -h /tmp/www".into(),
        ],
        env: Default::default(),
        port,
        tls: true,
    });
    let (id, _) = n.order_spec(&spec, 0, 52, 3_600, true).await;
    let key = bound_key(&n, id, 1).await;
    let got = page(port, key).await;
    assert!(
        got.contains("served from the container"),
        "{got}\n{}",
        n.log(1)
    );
    n.stop(node, 1);
}
