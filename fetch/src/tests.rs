//! The fetch rules against real servers on loopback (PIN-01..04).

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode, response::Redirect, routing::get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use gridlease_primitives::spec::RunSpec;

/// Serve `app` on `ip`, port chosen; its base URL.
async fn serve(ip: &str, app: Router) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A server on 127.0.0.1 whose every answer is a secret, counting the requests it gets.
async fn secret_server() -> (u16, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        h.fetch_add(1, SeqCst);
        async { "SECRET internal page" }
    });
    let base = serve("127.0.0.1", app).await;
    let port = base
        .rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("port");
    (port, hits)
}

/// A raw TCP server answering every connection with `head` and then `body` chunks forever
/// (or nothing at all with an empty `head`).
async fn raw_server(head: &'static str, chunk: Option<Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf).await;
                if head.is_empty() {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                if c.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                if let Some(chunk) = chunk {
                    while c.write_all(&chunk).await.is_ok() {}
                }
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn pin_02_internal_addresses_in_every_form_are_recognised() {
    for internal in [
        "127.0.0.1",
        "127.255.0.9",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::1",
        // Local-use NAT64 (here to 169.254.169.254), IPv4-translated, Teredo, discard-only,
        // benchmarking.
        "64:ff9b:1::a9fe:a9fe",
        "::ffff:0:a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "100::1",
        "2001:2::1",
    ] {
        let ip: IpAddr = internal.parse().expect(internal);
        assert!(is_internal(ip), "{internal} is internal");
        assert!(!AllowList::default().permits(ip), "{internal}");
    }
    for public in [
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ] {
        let ip: IpAddr = public.parse().expect(public);
        assert!(!is_internal(ip), "{public} is public");
    }
    let lo = AllowList::loopback();
    assert!(lo.permits("127.0.0.1".parse().expect("ip")));
    assert!(lo.permits("::1".parse().expect("ip")));
    assert!(lo.permits("::ffff:127.0.0.1".parse().expect("ip")));
    assert!(!lo.permits("169.254.169.254".parse().expect("ip")));
    assert!(!lo.permits("10.0.0.1".parse().expect("ip")));
    let lan = AllowList::parse(&["10.0.0.0/8", " ::1 "]).expect("valid");
    assert!(lan.permits("10.200.0.1".parse().expect("ip")));
    assert!(lan.permits("::1".parse().expect("ip")));
    assert!(!lan.permits("127.0.0.1".parse().expect("ip")));
    assert!(AllowList::parse(&["localhost"]).is_err());
    assert!(AllowList::parse(&["10.0.0.0/33"]).is_err());
}

#[tokio::test]
async fn pin_01_local_paths_and_other_schemes_are_never_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("operator.json");
    std::fs::write(&secret, "SECRET keystore").expect("write");
    let f = Fetcher::new(AllowList::loopback(), Limits::default());
    for uri in [
        format!("file://{}", secret.display()),
        secret.display().to_string(),
        "/etc/hostname".into(),
        "file:///proc/self/environ".into(),
        "/dev/zero".into(),
        "ftp://example.com/a".into(),
        "gopher://127.0.0.1/".into(),
    ] {
        let e = f.get(&uri, None).await.expect_err(&uri);
        assert_eq!(e.code(), "fetch-scheme", "{uri}: {e}");
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
}

#[tokio::test]
async fn pin_02_internal_hosts_are_refused_before_any_request() {
    let (port, hits) = secret_server().await;
    let f = Fetcher::default();
    for uri in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/latest/meta-data/iam/".into(),
        "http://[fd00:ec2::254]/latest/".into(),
        "http://10.0.0.1/".into(),
        "http://0.0.0.0/".into(),
    ] {
        let e = f.get(&uri, None).await.expect_err(&uri);
        assert_eq!(e.code(), "fetch-internal-address", "{uri}: {e}");
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
    assert_eq!(
        hits.load(SeqCst),
        0,
        "no request reached the internal server"
    );
    // The allow-list opens loopback for a devnet, and only loopback.
    let devnet = Fetcher::new(AllowList::loopback(), Limits::default());
    let got = devnet
        .get(&format!("http://127.0.0.1:{port}/x"), None)
        .await
        .expect("allowed");
    assert_eq!(got, b"SECRET internal page");
    assert!(
        devnet
            .get("http://169.254.169.254/", None)
            .await
            .is_err_and(|e| e.code() == "fetch-internal-address")
    );
}

#[tokio::test]
async fn pin_02_redirects_are_held_to_the_same_rules_and_capped() {
    // The only network allowed is 127.0.0.1 itself; 127.0.0.2 (another loopback address)
    // plays the internal server a redirect points at.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let internal = serve(
        "127.0.0.2",
        Router::new().fallback(move || {
            h.fetch_add(1, SeqCst);
            async { "SECRET" }
        }),
    )
    .await;
    let to_internal = format!("{internal}/secret");
    let public = serve(
        "127.0.0.1",
        Router::new()
            .route(
                "/hop",
                get(move || async move { Redirect::temporary(&to_internal) }),
            )
            .route(
                "/meta",
                get(|| async { Redirect::temporary("http://169.254.169.254/") }),
            )
            .route(
                "/file",
                get(|| async { Redirect::temporary("file:///etc/hostname") }),
            )
            .route("/ok", get(|| async { "fine" }))
            .route("/one", get(|| async { Redirect::temporary("/ok") }))
            .route(
                "/loop/{n}",
                get(
                    |axum::extract::Path(n): axum::extract::Path<u32>| async move {
                        Redirect::temporary(&format!("/loop/{}", n + 1))
                    },
                ),
            ),
    )
    .await;
    let allow = AllowList::parse(&["127.0.0.1/32"]).expect("valid");
    let f = Fetcher::new(allow, Limits::default());
    assert_eq!(
        f.get(&format!("{public}/one"), None).await,
        Ok(b"fine".to_vec())
    );
    for (path, code) in [
        ("/hop", "fetch-internal-address"),
        ("/meta", "fetch-internal-address"),
        // The client does not follow a redirect off http(s): the 3xx is the answer.
        ("/file", "fetch-http-status"),
        ("/loop/0", "fetch-redirect"),
    ] {
        let e = f
            .get(&format!("{public}{path}"), None)
            .await
            .expect_err(path);
        assert_eq!(e.code(), code, "{path}: {e}");
    }
    assert_eq!(
        hits.load(SeqCst),
        0,
        "no redirect reached the internal server"
    );
}

#[tokio::test]
async fn pin_03_a_chunked_endless_answer_stops_at_the_cap() {
    // An endless chunked body with no length (as a "10 GB" answer would start).
    let chunk = format!("4000\r\n{}\r\n", "z".repeat(0x4000)).into_bytes();
    let endless = raw_server(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        Some(chunk),
    )
    .await;
    let cap = 1 << 20;
    let f = Fetcher::new(
        AllowList::loopback(),
        Limits {
            max_bytes: cap,
            ..Limits::default()
        },
    );
    let e = tokio::time::timeout(Duration::from_secs(60), f.get(&endless, None))
        .await
        .expect("stops at the cap, not at the end of the body")
        .expect_err("too large");
    assert_eq!(
        e,
        FetchError::TooLarge {
            uri: endless.clone(),
            cap
        }
    );
    // A per-call cap below the fetcher's (a spec) applies too.
    let e = f.get_capped(&endless, None, 1000).await.expect_err("over");
    assert_eq!(e.code(), "fetch-too-large");
    // A declared length over the cap is refused before the body is read.
    let big = serve(
        "127.0.0.1",
        Router::new().fallback(|| async { vec![7u8; (1 << 20) + 1] }),
    )
    .await;
    let e = f.get(&big, None).await.expect_err("declared too large");
    assert_eq!(e.code(), "fetch-too-large");
}

#[tokio::test]
async fn pin_03_a_server_that_never_answers_times_out() {
    let silent = raw_server("", None).await;
    let f = Fetcher::new(
        AllowList::loopback(),
        Limits {
            total: Duration::from_millis(500),
            ..Limits::default()
        },
    );
    let e = tokio::time::timeout(Duration::from_secs(30), f.get(&silent, None))
        .await
        .expect("the fetcher's own timeout fires")
        .expect_err("timed out");
    assert_eq!(e.code(), "fetch-timeout", "{e}");
}

#[tokio::test]
async fn error_answers_are_not_read_into_messages() {
    let base = serve(
        "127.0.0.1",
        Router::new()
            .fallback(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "SECRET stack trace") }),
    )
    .await;
    let f = Fetcher::new(AllowList::loopback(), Limits::default());
    let e = f.get(&base, None).await.expect_err("500");
    assert_eq!(
        e,
        FetchError::Status {
            uri: base,
            status: 500
        }
    );
    assert!(!e.to_string().contains("SECRET"), "{e}");
}

#[tokio::test]
async fn pin_04_a_data_spec_without_roots_is_refused_before_any_download() {
    let (port, hits) = secret_server().await;
    let spec = RunSpec {
        version: 1,
        workload: gridlease_primitives::spec::Workload::MatmulI8Data {
            m: 1,
            k: 436,
            n: 1,
            a_uri: format!("http://127.0.0.1:{port}/a"),
            b_uri: format!("http://127.0.0.1:{port}/b"),
            a_root: B256::ZERO,
            b_root: B256::ZERO,
        },
        resources: gridlease_primitives::spec::Resources {
            gpu_class: 0,
            gpu_count: 1,
            vram_gib: 1,
            cpu_cores: 1,
            ram_gib: 1,
        },
    };
    let f = Fetcher::new(AllowList::loopback(), Limits::default());
    let e = f
        .spec(&spec.data_uri(), spec.hash())
        .await
        .expect_err("no roots");
    assert_eq!(e.code(), "fetch-spec");
    assert!(e.to_string().contains("must name the roots"), "{e}");
    let e = crate::verify::BuiltinJob::from_spec(&spec, &f)
        .await
        .expect_err("no roots");
    assert!(e.contains("must name the roots"), "{e}");
    assert_eq!(hits.load(SeqCst), 0, "nothing was downloaded");
}
