//! `gridlease connect` and `gridlease status` of a service lease served over TLS (ACC-03): the
//! node's part is played here with the node's own front ([`gridlease_provider::front`]), bound on
//! chain as a node binds it.

use std::time::Duration;

use gridlease_fetch::service::curl_pin;
use gridlease_provider::front;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::*;

/// The node's front for lease `id` with `key` on `port` (taken once a front stopped before has
/// let it go, within 10 s), carrying to `backend`; cancel what it returns to stop it.
async fn serve_on(port: u16, key: &front::Identity, id: B256, backend: u16) -> CancellationToken {
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(l) => break l,
            Err(_) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the service's port {port}: {e}"),
        }
    };
    let stop = CancellationToken::new();
    tokio::spawn(front::serve(
        front::Front::to_port(id, key.config.clone(), backend),
        listener,
        stop.clone(),
    ));
    stop
}

/// Connect to `port` until it answers (within 20 s), send `msg` and read it back.
async fn round_trip(port: u16, msg: &[u8]) -> Result<Vec<u8>, String> {
    let mut last = String::new();
    for _ in 0..100 {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(mut c) => {
                c.write_all(msg).await.map_err(|e| e.to_string())?;
                let mut got = vec![0u8; msg.len()];
                return tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut got))
                    .await
                    .map_err(|_| "no answer".to_owned())?
                    .map(|_| got)
                    .map_err(|e| e.to_string());
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

/// The CLI carries a local port to the lease's service over TLS with the key bound on chain,
/// `status` shows that key as curl pins it, and a key the node serves without binding it is
/// refused; before any binding `connect` says why it cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reaches_a_tls_service_only_through_the_key_bound_on_chain_acc03() {
    let n = net().await;
    let (_, op) = n.provider().await;
    let port = gridlease_deploy::anvil::free_port().expect("a port");
    let section = format!("image = \"srv:1\"\nport = {port}\ntls = true\n");
    let (id, _) = service_lease(&n, &op, &section).await;
    let ids = id.to_string();

    // No key bound yet: refused with the reason, nothing listens.
    let r = n.cli_with(&["connect", &ids, "--host", "127.0.0.1"], false);
    assert_eq!(r.code, 3, "a user error: {}", r.stderr);
    assert!(r.stderr.contains("bound no TLS key"), "{}", r.stderr);

    // The node's part: its front on the service's port, its key bound on chain.
    let market = n.d.address("Market").expect("market");
    let lease =
        front::identity(front::node_secret(b"operator"), 31_337, market, id).expect("identity");
    let results = Results::new(n.d.address("Results").expect("results"), &op.provider);
    send(results.bindCertificate(id, lease.key))
        .await
        .expect("bound");
    let backend = gridlease_testkit::echo::echo()
        .await
        .expect("an echo service");
    let stop = serve_on(port, &lease, id, backend).await;

    let s = n.json(&["status", &ids]);
    assert_eq!(s["tls"]["pin"], curl_pin(lease.key), "{s}");
    // Where it is reached: its spec's port, over TLS (this devnet's provider names no node URL).
    assert_eq!(
        (&s["endpoint"]["port"], &s["endpoint"]["tls"]),
        (&serde_json::json!(port), &serde_json::json!(true)),
        "{s}"
    );
    let r = n.cli_with(&["status", &ids], false);
    assert!(
        r.stdout.contains(&format!("gridlease connect {ids}"))
            && r.stdout
                .contains(&format!("port {port} of its provider's host over TLS")),
        "{}",
        r.stdout
    );

    // Carried: what goes into the local port comes back from the service.
    let local = gridlease_deploy::anvil::free_port().expect("a port");
    let mut child = n
        .command(false)
        .args(["connect", &ids, "--host", "127.0.0.1", "--listen"])
        .arg(format!("127.0.0.1:{local}"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("connect starts");
    let got = round_trip(local, b"ping through the lease").await;
    assert_eq!(got.as_deref(), Ok(b"ping through the lease".as_slice()));

    // The node serves another key without binding it: a new connection gets nothing back.
    stop.cancel();
    let other =
        front::identity(front::node_secret(b"another"), 31_337, market, id).expect("identity");
    let stop = serve_on(port, &other, id, backend).await;
    let got = round_trip(local, b"not to you").await;
    assert!(got.is_err(), "{got:?}");
    let _ = child.kill();
    let out = child.wait_with_output().expect("the CLI ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not the one bound on chain"), "{stderr}");
    assert!(stderr.contains(&curl_pin(lease.key)), "{stderr}");
    stop.cancel();
}
