//! Results: verifying a product, proving a wrong one, following a job to its verified result,
//! and pushing a private spec to a node.

use super::*;

#[tokio::test]
async fn result_verifies_a_true_product_and_proves_a_wrong_one() {
    use gridlease_workload::matmul::commit;
    let n = net().await;
    let (owner, op) = n.provider().await;
    let t0 = n.balance(n.tenant).await;

    // The job of SPEC: 64 x 64 x 64, seed 0: right, one element wrong, and too short.
    let c = spec_product();
    let mut bad = c.clone();
    bad[64 * 10 + 3] += 1;
    let short = encode(&c)[..16_000].to_vec();
    let mut ids = Vec::new();
    for (i, bytes) in [encode(&c), encode(&bad), short].into_iter().enumerate() {
        let id = n.order(&format!("m{i}.toml"), true, Some(&op)).await;
        n.post(&op, id, &bytes, &n.file(&format!("c{i}.bin"), &bytes))
            .await;
        ids.push(id.to_string());
    }
    assert_eq!(
        commit(&c).root(),
        Commitment::of(&encode(&c)).root,
        "1 KiB leaves"
    );

    let saved = n.dir.path().join("saved.bin");
    let out = saved.to_str().expect("utf8");
    let v = n.json(&["result", &ids[0], "--out", out]);
    assert_eq!(
        (
            v["matchesCommitment"].as_bool(),
            v["matmul"]["ok"].as_bool()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(std::fs::read(&saved).expect("saved"), encode(&c));
    // A wrong product exits 6 (a script's `result && close` stops there) and is not saved.
    std::fs::remove_file(&saved).expect("rm");
    let r = n.cli(&["result", &ids[1], "--out", out]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("WRONG: C[10][3]"), "{}", r.stdout);
    assert!(r.stdout.contains("not saved"), "{}", r.stdout);
    assert!(!saved.exists());
    let v = n.json(&["result", &ids[1], "--prove"]);
    assert!(v["proveTx"].is_string(), "{v}");
    assert_eq!(v["fault"]["kind"], "wrong-result");
    assert_eq!(n.json(&["status", &ids[1]])["status"], "faulted");
    // A wrong size is provable without an element.
    let r = n.cli(&["result", &ids[2]]);
    assert!(r.stdout.contains("WRONG SIZE: 16000 bytes"), "{}", r.stdout);
    let v = n.json(&["result", &ids[2], "--prove"]);
    assert_eq!(v["fault"]["kind"], "malformed-result", "{v}");
    // Both held results were refunded in full (nothing was paid for them, so no compensation);
    // the right one is still held.
    assert_eq!(n.balance(n.tenant).await, t0 - 2 * USDC);
    assert_eq!(n.staking_credit(n.tenant).await, 0);
    assert_eq!(n.stake_of(owner).await, (30 * USDC, 10 * USDC));
    // A result file that is not what was committed is reported as such.
    let other = n.dir.path().join("other.bin");
    std::fs::write(&other, encode(&bad)).expect("write");
    let r = n.cli(&[
        "result",
        &ids[0],
        "--file",
        other.to_str().expect("utf8"),
        "--json",
    ]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(
        (&v["matchesCommitment"], &v["failed"]),
        (&false.into(), &true.into())
    );

    // Inputs given as data: submit commits their roots, the proof carries a row and a column.
    let (m, k, kn) = (8usize, 40usize, 6usize);
    let a: Vec<u8> = (0..m * k).map(|x| (x * 31 + 7) as u8).collect();
    let b: Vec<u8> = (0..k * kn).map(|x| (x * 17 + 200) as u8).collect();
    let (fa, fb) = (n.dir.path().join("a.bin"), n.dir.path().join("b.bin"));
    std::fs::write(&fa, &a).expect("write A");
    std::fs::write(&fb, &b).expect("write B");
    let data = SPEC.replace("INSTANT", "true").replace(
        "n = 64",
        &format!(
            "m = {m}\nk = {k}\nn = {kn}\na = \"{}\"\nb = \"{}\"",
            n.files.url("a.bin"),
            n.files.url("b.bin")
        ),
    );
    let spec = n.spec("data.toml", &data);
    let id: B256 = id_of(&n.json(&["submit", &spec])).parse().expect("id");
    send(n.market(&op).bid(id, U96::from(RATE)))
        .await
        .expect("bid");
    let d = gridlease_workload::matmul::MatmulData::from_row_major(8, 40, 6, a, &b).expect("shape");
    let mut c = multiply(&d.a, &d.bt, m, k, kn, 1);
    c[5 * kn + 2] ^= 1 << 9;
    let bytes = encode(&c);
    n.post(&op, id, &bytes, &n.file("cdata.bin", &bytes)).await;
    let v = n.json(&["result", &id.to_string(), "--prove"]);
    assert_eq!(
        (v["matmul"]["i"].as_u64(), v["matmul"]["j"].as_u64()),
        (Some(5), Some(2))
    );
    assert!(v["proveTx"].is_string(), "{v}");
    assert_eq!(n.json(&["status", &id.to_string()])["status"], "faulted");
    // A changed input no longer matches the roots the order committed to.
    std::fs::write(&fb, [0u8; 240]).expect("write B");
    let r = n.cli(&["result", &id.to_string()]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stderr.contains("the downloaded B has root"),
        "{}",
        r.stderr
    );
}

/// A built-in job whose spec cannot be read (its host down) has its product unchecked: that is
/// an error to retry, not a pass. Before, the product was reported as "not a built-in job" with
/// only its commitment checked, and `submit --wait` counted it verified for good.
#[tokio::test]
async fn a_built_in_result_whose_spec_cannot_be_read_is_not_passed_as_checked() {
    let n = net().await;
    let (_, op) = n.provider().await;
    let text = SPEC.replace("INSTANT", "true");
    let spec = n.spec("published.toml", &text);
    let uri = n.files.url("published.json");
    let v = n.json(&["submit", &spec, "--spec-uri", &uri]);
    let id: B256 = id_of(&v).parse().expect("id");
    send(n.market(&op).bid(id, U96::from(RATE)))
        .await
        .expect("bid");
    let mut bad = spec_product();
    bad[7] += 1;
    let bytes = encode(&bad);
    n.post(&op, id, &bytes, &n.file("published-c.bin", &bytes))
        .await;

    // The spec is not served yet.
    let r = n.cli(&["result", &id.to_string()]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cannot check the product"),
        "{}",
        r.stderr
    );
    // Once it is, the wrong product is found.
    let run = gridlease_primitives::spec::JobSpec::parse(&text)
        .expect("spec")
        .run;
    n.file("published.json", &run.canonical_json());
    let r = n.cli(&["result", &id.to_string()]);
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("WRONG: C[0][7]"), "{}", r.stdout);
}

#[tokio::test]
async fn submit_wait_accept_follows_every_phase_and_closes_on_a_verified_result() {
    let n = net().await;
    let (market, results) = (
        n.d.address("Market").expect("market"),
        n.d.address("Results").expect("results"),
    );
    let (_, op) = n.provider().await;

    let spec = n.spec("wait.toml", &SPEC.replace("INSTANT", "true"));
    let child = n
        .command(true)
        .args(["submit", &spec, "--wait", "--accept", "--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gridlease runs");
    // The provider side, once the CLI's order is on chain (polled: it is another process).
    let id = first_order(&n, market).await;
    send(n.market(&op).bid(id, U96::from(RATE)))
        .await
        .expect("bid");
    // Acknowledging again is a no-op for an instant lease (the bid acknowledged it).
    let r = Results::new(results, &op.provider);
    send(r.acknowledge(id)).await.expect("ack");
    // No pause needed: whenever the CLI looks, an acknowledged lease shows as running before its
    // result.
    let bytes = encode(&spec_product());
    n.post(&op, id, &bytes, &n.file("wait.bin", &bytes)).await;
    // The tenant's CLI verifies the product and accepts it: it closes the lease itself.
    let out = child.wait_with_output().expect("gridlease exits");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for phase in [
        "ordered",
        "leased: provider",
        "running",
        "result posted",
        "verified and accepted",
        "closed: accepted by the tenant",
    ] {
        assert!(err.contains(phase), "no \"{phase}\" in:\n{err}");
    }
}

/// The id of the first order on `market`, once a CLI in another process has placed it.
async fn first_order(n: &Net, market: alloy::primitives::Address) -> B256 {
    let filter = alloy::rpc::types::Filter::new()
        .address(market)
        .event_signature(<Market::OrderCreated as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        .from_block(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let logs = n.gov.provider.get_logs(&filter).await.expect("logs");
        if let Some(l) = logs.first() {
            return l
                .log_decode::<Market::OrderCreated>()
                .expect("event")
                .inner
                .data
                .orderId;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI never created its order"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// An order cancelled while `submit --wait` follows it: the follow ends with the order's end
/// (its record cleared on chain), not an error.
#[tokio::test]
async fn submit_wait_ends_with_an_order_cancelled_meanwhile() {
    let n = net().await;
    let market = n.d.address("Market").expect("market");
    let spec = n.spec("cancelled.toml", &SPEC.replace("INSTANT", "false"));
    let child = n
        .command(true)
        .args(["submit", &spec, "--wait", "--timeout", "60s", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gridlease runs");
    let id = first_order(&n, market).await;
    let v = n.json(&["cancel", &id.to_string()]);
    assert_eq!(v["refund"], "2000000");
    let out = child.wait_with_output().expect("gridlease exits");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(v["orderId"], id.to_string());
    assert_eq!(v["final"]["status"], "cancelled", "{v}");
}

/// What the fake node received: request line, headers (lower-cased names), body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// A one-request HTTP server on loopback: answers 201 and hands back the request.
fn fake_node() -> (String, std::sync::mpsc::Receiver<Request>) {
    fake_node_answering("201 Created", "")
}

/// A one-request HTTP server on loopback: answers `status` with `body` and hands back the request.
fn fake_node_answering(
    status: &'static str,
    answer: &'static str,
) -> (String, std::sync::mpsc::Receiver<Request>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_lowercase(), v.trim().to_owned()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        let _ = r.read_exact(&mut body);
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let _ = r.get_mut().write_all(reply.as_bytes());
        let _ = tx.send((line.trim().to_owned(), headers, body));
    });
    (url, rx)
}

#[tokio::test]
async fn submit_push_keeps_the_spec_off_chain_and_sends_it_signed_to_the_node() {
    use alloy::{primitives::Signature, rpc::types::Filter, sol_types::SolEvent};
    use gridlease_fetch::spec_auth_message;
    use gridlease_primitives::spec::{PUSH_URI, RunSpec};
    let n = net().await;
    let container = r#"
kind = "container"
[resources]
vram_gib = 1
[price]
max_per_hour = "3.6"
max_duration = "10m"
bid_window = "30s"
deposit = "2"
collateral = "10"
[container]
image = "ghcr.io/acme/private:1"
command = ["python", "train.py"]
env = { DATASET = "s3://secret" }
"#;
    let spec = n.spec("private.toml", container);
    let (url, got) = fake_node();
    let v = n.json(&["submit", &spec, "--push", &url]);
    let id: B256 = id_of(&v).parse().expect("id");
    assert_eq!(v["pushedTo"], format!("{url}/specs/{id}"));
    // On chain: the hash and `gridlease:push`, nothing of the spec itself.
    let logs = n
        .gov
        .provider
        .get_logs(
            &Filter::new()
                .address(n.d.address("Market").expect("market"))
                .event_signature(Market::OrderCreated::SIGNATURE_HASH)
                .topic1(id)
                .from_block(0),
        )
        .await
        .expect("logs");
    let created = logs[0]
        .log_decode::<Market::OrderCreated>()
        .expect("decodes")
        .inner
        .data;
    assert_eq!(created.params.specURI, PUSH_URI);
    // The node got the spec the hash commits to, signed by the tenant for this order.
    let (line, headers, body) = got
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the node was called");
    assert_eq!(line, format!("POST /specs/{id} HTTP/1.1"));
    let pushed: RunSpec = serde_json::from_slice(&body).expect("a run spec");
    assert_eq!(pushed.hash(), created.params.specHash);
    let auth = &headers
        .iter()
        .find(|(k, _)| k == "x-gridlease-auth")
        .expect("signed")
        .1;
    let (expiry, sig) = auth.split_once(':').expect("expiry:signature");
    let sig: Signature = sig.parse().expect("signature");
    let signer = sig
        .recover_address_from_msg(spec_auth_message(
            gridlease_testkit::market::venue(n.d.address("Market").expect("market")),
            id,
            expiry.parse().expect("expiry"),
        ))
        .expect("recovers");
    assert_eq!(signer, n.tenant);

    // A built-in job keeps its spec public: --push is refused before any transaction.
    let nonce = n.nonce().await;
    let mm = n.spec("mm.toml", &SPEC.replace("INSTANT", "false"));
    let r = n.cli(&["submit", &mm, "--push", &url]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("keepers need"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce);
}

/// ACC-01: `gridlease logs` asks the lease's node for `/logs/<lease>` with an access the node
/// verifies: signed by the tenant for the logs of this lease, at this provider, on this market.
#[tokio::test]
async fn logs_are_asked_for_with_the_tenants_access_to_this_lease_at_its_provider() {
    use gridlease_fetch::access::{AccessTo, grant};
    let n = net().await;
    let (owner, op) = n.provider().await;
    let id = n.order("logs.toml", true, Some(&op)).await;
    let (url, got) = fake_node_answering("200 OK", "step 1 of 3\n");
    let v = n.json(&["logs", &id.to_string(), "--node", &url]);
    assert_eq!(v["logs"], "step 1 of 3\n", "{v}");
    assert_eq!(v["provider"], format!("{owner:#x}"));
    let (line, headers, _) = got
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the node was called");
    assert_eq!(line, format!("GET /logs/{id} HTTP/1.1"));
    let auth = &headers
        .iter()
        .find(|(k, _)| k == "x-gridlease-auth")
        .expect("signed")
        .1;
    let venue = gridlease_testkit::market::venue(n.d.address("Market").expect("market"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let g = grant(auth, venue, AccessTo::Logs, id, owner, now).expect("a well-formed access");
    assert_eq!(g.signer, n.tenant);
    // An order nobody leased has no logs: said before any request.
    let open = n.order("open.toml", false, None).await;
    let r = n.cli(&["logs", &open.to_string(), "--node", &url]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("never leased"), "{}", r.stderr);
}

/// A node answering its requests in turn with `answers` (the last one again after them), each
/// request's line handed back.
fn fake_node_answering_each(
    answers: Vec<&'static str>,
) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let mut r = BufReader::new(stream);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let body = answers[i.min(answers.len() - 1)];
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = r.get_mut().write_all(reply.as_bytes());
            let _ = tx.send(line.trim().to_owned());
        }
    });
    (url, rx)
}

/// `gridlease logs --follow` prints what is new in each read of the moving tail (never a line
/// twice), signs each read anew, and stops once the lease's result is posted.
#[tokio::test]
async fn logs_follow_prints_each_new_line_once_and_stops_at_the_result() {
    let n = net().await;
    let (_, op) = n.provider().await;
    let id = n.order("follow.toml", true, Some(&op)).await;
    let (url, got) = fake_node_answering_each(vec!["a\n", "a\nb\n", "b\nc\n"]);
    let child = n
        .command(true)
        .args(["logs", &id.to_string(), "--follow", "--node", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Three reads (two seconds apart), then the result.
    for _ in 0..3 {
        got.recv_timeout(std::time::Duration::from_secs(30))
            .expect("a read");
    }
    n.post(&op, id, b"done", &n.file("follow.bin", b"done"))
        .await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("the CLI ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\nb\nc\n");
}
