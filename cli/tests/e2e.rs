//! The `gridlease` binary against a real anvil: money moves exactly as the commands say, bad input
//! is refused with its message and no transaction, and exit codes tell user error, revert and
//! network failure apart.

use std::{path::PathBuf, process::Command};

use alloy::{
    primitives::{Address, B256, U256, aliases::U96},
    providers::{Provider, ext::AnvilApi},
    signers::local::PrivateKeySigner,
};
use gridlease_bindings::{IStaking::Capacity, Market, MockStablecoin, Staking};
use gridlease_core::{
    chain::{Client, send},
    deployments::Deployments,
    matmul::{Matmul, multiply},
};
use gridlease_deploy::{
    anvil::{ANVIL_KEYS, Anvil},
    deploy::mint,
    devnet,
};

const USDC: u128 = 1_000_000;

struct Net {
    anvil: Anvil,
    dir: tempfile::TempDir,
    d: Deployments,
    gov: Client,
    tenant: Address,
    keystore: PathBuf,
    usdc: Address,
}

async fn net() -> Net {
    let (anvil, gov, d) = devnet::market(0, None).await.expect("market on anvil");
    let dir = tempfile::tempdir().expect("tempdir");
    d.save(&dir.path().join("deployments.json")).expect("save");
    let tenant_key: PrivateKeySigner = ANVIL_KEYS[1].parse().expect("key");
    let usdc = d.token("USDC").expect("usdc").address;
    mint(&gov, usdc, tenant_key.address(), 1_000 * USDC)
        .await
        .expect("mint");
    PrivateKeySigner::encrypt_keystore(
        dir.path(),
        &mut rand08::thread_rng(),
        tenant_key.to_bytes(),
        "pw",
        Some("tenant.json"),
    )
    .expect("keystore");
    std::fs::write(dir.path().join("pw"), "pw\n").expect("pw");
    std::fs::write(dir.path().join("wrong"), "nope\n").expect("pw");
    Net {
        keystore: dir.path().join("tenant.json"),
        tenant: tenant_key.address(),
        anvil,
        dir,
        d,
        gov,
        usdc,
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("gridlease runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The product of SPEC's job (64 x 64 x 64, seed 0), as a provider computes it.
fn spec_product() -> Vec<i32> {
    let job = Matmul {
        seed: B256::ZERO,
        m: 64,
        k: 64,
        n: 64,
    };
    multiply(&job.a(), &job.bt(), 64, 64, 64, 2)
}

impl Net {
    fn cli(&self, args: &[&str]) -> Run {
        self.cli_with(args, true)
    }

    fn cli_with(&self, args: &[&str], wallet: bool) -> Run {
        run(self.command(wallet).args(args))
    }

    /// `gridlease` pointed at this chain and deployment, with the tenant's wallet if asked.
    fn command(&self, wallet: bool) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridlease"));
        cmd.arg("--rpc")
            .arg(self.anvil.url())
            .arg("--deployments")
            .arg(self.dir.path().join("deployments.json"));
        if wallet {
            cmd.arg("--keystore")
                .arg(&self.keystore)
                .arg("--password")
                .arg(format!("file:{}", self.dir.path().join("pw").display()));
        }
        cmd
    }

    /// A provider (owner anvil key 2, operator key 3) registered with 50 USDC staked; returns its
    /// owner and a client signing as its operator.
    async fn provider(&self) -> (Address, Client) {
        let staking = self.d.address("Staking").expect("staking");
        let owner: PrivateKeySigner = ANVIL_KEYS[2].parse().expect("key");
        let operator: PrivateKeySigner = ANVIL_KEYS[3].parse().expect("key");
        mint(&self.gov, self.usdc, owner.address(), 100 * USDC)
            .await
            .expect("mint");
        let p = Client::connect(&self.anvil.url(), Some(owner.clone()))
            .await
            .expect("connect");
        let cap = Capacity {
            gpuClasses: 1,
            gpuCount: 1,
            vramGiB: 16,
        };
        let st = Staking::new(staking, &p.provider);
        send(st.register(operator.address(), cap, "p".into()))
            .await
            .expect("register");
        let token = MockStablecoin::new(self.usdc, &p.provider);
        send(token.approve(staking, U256::from(50 * USDC)))
            .await
            .expect("approve");
        send(st.stake(U256::from(50 * USDC))).await.expect("stake");
        let op = Client::connect(&self.anvil.url(), Some(operator))
            .await
            .expect("connect");
        (owner.address(), op)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        let r = self.cli(&all);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
        serde_json::from_str(&r.stdout).expect("json output")
    }

    fn spec(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write spec");
        p.display().to_string()
    }

    async fn balance(&self, who: Address) -> u128 {
        MockStablecoin::new(self.usdc, &self.gov.provider)
            .balanceOf(who)
            .call()
            .await
            .expect("balance")
            .to()
    }

    async fn nonce(&self) -> u64 {
        self.gov
            .provider
            .get_transaction_count(self.tenant)
            .await
            .expect("nonce")
    }
}

const SPEC: &str = r#"
kind = "matmul_i8"
[resources]
vram_gib = 1
[price]
max_per_hour = "3.6"
max_duration = "10m"
bid_window = "30s"
deposit = "2"
collateral = "10"
instant = INSTANT
[matmul]
n = 64
"#;

fn id_of(v: &serde_json::Value) -> String {
    v["orderId"].as_str().expect("order id").to_owned()
}

#[tokio::test]
async fn submit_topup_cancel_move_exact_amounts() {
    let n = net().await;
    let market = n.d.address("Market").expect("market");
    let spec = n.spec("job.toml", &SPEC.replace("INSTANT", "false"));
    let (t0, m0) = (n.balance(n.tenant).await, n.balance(market).await);

    let v = n.json(&["submit", &spec]);
    let id = id_of(&v);
    assert_eq!(
        n.balance(n.tenant).await,
        t0 - 2 * USDC,
        "deposit pulled by the permit"
    );
    assert_eq!(n.balance(market).await, m0 + 2 * USDC);
    let allowance = MockStablecoin::new(n.usdc, &n.gov.provider)
        .allowance(n.tenant, market)
        .call()
        .await
        .expect("allowance");
    assert_eq!(allowance, U256::ZERO, "the permit is spent exactly");
    let s = n.json(&["status", &id]);
    assert_eq!(
        (s["status"].as_str(), s["escrow"].as_str()),
        (Some("open"), Some("2000000"))
    );

    let v = n.json(&["topup", &id, "1.25"]);
    assert_eq!(v["escrow"], "3250000");
    assert_eq!(n.balance(n.tenant).await, t0 - 3_250_000);

    let listed = n.json(&["list"]);
    assert_eq!(listed["orders"].as_array().expect("orders").len(), 1);

    let v = n.json(&["cancel", &id]);
    assert_eq!(v["refund"], "3250000");
    assert_eq!(n.balance(n.tenant).await, t0, "cancel refunds everything");
    assert_eq!(n.balance(market).await, m0);

    // Cancelling again is a user error caught before any transaction.
    let nonce = n.nonce().await;
    let r = n.cli(&["cancel", &id]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("is cancelled"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce);
}

#[tokio::test]
async fn close_pays_provider_for_elapsed_time_and_refunds_the_rest() {
    let n = net().await;
    let market = n.d.address("Market").expect("market");
    // A provider registers, stakes, and bids on chain on an instant order.
    let (owner, op) = n.provider().await;

    let spec = n.spec("job.toml", &SPEC.replace("INSTANT", "true"));
    let t0 = n.balance(n.tenant).await;
    let id = id_of(&n.json(&["submit", &spec]));
    let rate = 1_000_000_000_000_000u128; // 0.001 USDC/s = 3.6 USDC/h, the spec's maximum
    let order: B256 = id.parse().expect("id");
    send(Market::new(market, &op.provider).bid(order, U96::from(rate)))
        .await
        .expect("instant bid");
    let s = n.json(&["status", &id]);
    assert_eq!(s["status"], "leased");
    let start = s["settledAt"].as_u64().expect("start");

    n.gov.provider.anvil_increase_time(99).await.expect("warp");
    let v = n.json(&["close", &id]);
    let end = n
        .gov
        .provider
        .get_block_by_number(Default::default())
        .await
        .expect("block")
        .expect("block")
        .header
        .timestamp;
    let paid = u128::from(end - start) * 1_000;
    assert_eq!(v["paid"].as_str(), Some(paid.to_string().as_str()));
    assert_eq!(
        v["refund"].as_str(),
        Some((2 * USDC - paid).to_string().as_str())
    );
    assert_eq!(
        n.balance(n.tenant).await,
        t0 - paid,
        "tenant pays exactly the elapsed seconds"
    );
    let credit: u128 = Market::new(market, &n.gov.provider)
        .creditOf(n.usdc, owner)
        .call()
        .await
        .expect("credit")
        .to();
    assert_eq!(
        credit,
        paid - paid / 100,
        "provider credited minus the 1% protocol fee"
    );
    assert_eq!(n.json(&["status", &id])["status"], "closed");
}

#[tokio::test]
async fn bad_specs_are_refused_with_their_message_and_no_transaction() {
    let n = net().await;
    let good = SPEC.replace("INSTANT", "false");
    let cases: &[(&str, String, &str)] = &[
        ("syntax", good.replace("n = 64", "n = "), "line 13"),
        (
            "kind",
            good.replace("matmul_i8", "wasm"),
            "unknown kind \"wasm\"",
        ),
        (
            "n",
            good.replace("n = 64", "n = 0"),
            "matmul.n: 0 is out of range",
        ),
        (
            "price",
            good.replace("\"3.6\"", "\"3,6\""),
            "price.max_per_hour",
        ),
        (
            "precision",
            good.replace("\"3.6\"", "\"3.6000001\""),
            "7 decimal places; the token has 6",
        ),
        (
            "duration",
            good.replace("\"10m\"", "\"2d\""),
            "longer than this market allows (1d)",
        ),
        (
            "window",
            good.replace("\"30s\"", "\"2h\""),
            "bid_window 2h is longer",
        ),
        (
            "gpu",
            good.replace("vram_gib = 1", "gpu = \"tpu-v5\""),
            "unknown GPU class",
        ),
        (
            "unknown field",
            good.replace("collateral", "colateral"),
            "unknown field `colateral`",
        ),
        (
            "token",
            good.replace("instant", "token = \"DAI\"\ninstant"),
            "unknown payment token \"DAI\"",
        ),
        (
            "missing section",
            good.replace("[matmul]\nn = 64\n", ""),
            "needs a [matmul] section",
        ),
        (
            "too poor",
            good.replace("\"2\"", "\"5000\""),
            "the order needs 5000 USDC",
        ),
    ];
    let nonce = n.nonce().await;
    for (name, text, message) in cases {
        let path = n.spec(&format!("{}.toml", name.replace(' ', "_")), text);
        let r = n.cli(&["submit", &path]);
        assert_eq!(r.code, 3, "{name}: exit code; stderr: {}", r.stderr);
        assert!(
            r.stderr.contains(message),
            "{name}: expected \"{message}\" in: {}",
            r.stderr
        );
    }
    assert_eq!(
        n.nonce().await,
        nonce,
        "no transaction was sent for a bad spec"
    );
}

#[tokio::test]
async fn exit_codes_separate_wallet_revert_and_network_failures() {
    let n = net().await;
    let spec = n.spec("job.toml", &SPEC.replace("INSTANT", "false"));
    // Wrong password: user error, and the password is not echoed.
    let wrong = format!("file:{}", n.dir.path().join("wrong").display());
    let r = run(n.command(false).arg("--keystore").arg(&n.keystore).args([
        "--password",
        &wrong,
        "submit",
        &spec,
    ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("wrong password") && !r.stderr.contains("nope"),
        "{}",
        r.stderr
    );
    // A raw key on the command line is refused.
    let r = n.cli_with(&["--private-key", ANVIL_KEYS[1], "list"], false);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("env:VAR") && !r.stderr.contains(&ANVIL_KEYS[1][4..]),
        "{}",
        r.stderr
    );

    // A revert: someone else's open order cannot be cancelled before the grace (NotTenant).
    let id = id_of(&n.json(&["submit", &spec]));
    let stranger: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    let r = run(n
        .command(false)
        .env("STRANGER_KEY", stranger.to_bytes().to_string())
        .args(["--private-key", "env:STRANGER_KEY", "cancel", &id]));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("NotTenant") && r.stderr.contains("only the tenant"),
        "{}",
        r.stderr
    );

    // Network: nothing listens there.
    let r = run(Command::new(env!("CARGO_BIN_EXE_gridlease")).args([
        "--rpc",
        "http://127.0.0.1:9",
        "market",
    ]));
    assert_eq!(r.code, 5, "{}", r.stderr);
    // JSON mode reports errors as JSON too.
    let r = n.cli(&["status", "0x12", "--json"]);
    assert_eq!(r.code, 3);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json error");
    assert_eq!(v["exitCode"], 3);
}

#[tokio::test]
async fn result_verifies_a_true_product_and_proves_a_wrong_one() {
    use gridlease_bindings::Results;
    use gridlease_core::matmul::{commit, encode};
    let n = net().await;
    let staking = n.d.address("Staking").expect("staking");
    let market = n.d.address("Market").expect("market");
    let results = n.d.address("Results").expect("results");
    let (_, op) = n.provider().await;

    // The job of SPEC: 64 x 64 x 64, seed 0.
    let c = spec_product();
    let mut bad = c.clone();
    bad[64 * 10 + 3] += 1;
    let mut ids = Vec::new();
    for (i, product) in [&c, &bad].into_iter().enumerate() {
        let spec = n.spec(&format!("m{i}.toml"), &SPEC.replace("INSTANT", "true"));
        let id: B256 = id_of(&n.json(&["submit", &spec])).parse().expect("id");
        send(Market::new(market, &op.provider).bid(id, U96::from(1_000_000_000_000_000u128)))
            .await
            .expect("bid");
        let file = n.dir.path().join(format!("c{i}.bin"));
        std::fs::write(&file, encode(product)).expect("write result");
        let r = Results::new(results, &op.provider);
        let post = r.postResult(
            id,
            commit(product).root(),
            format!("file://{}", file.display()),
            B256::ZERO,
        );
        send(post).await.expect("post result");
        ids.push(id.to_string());
    }

    let v = n.json(&["result", &ids[0]]);
    assert_eq!(
        (
            v["matchesCommitment"].as_bool(),
            v["matmul"]["ok"].as_bool()
        ),
        (Some(true), Some(true))
    );
    let r = n.cli(&["result", &ids[1]]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("WRONG: C[10][3]"), "{}", r.stdout);
    let v = n.json(&["result", &ids[1], "--prove"]);
    assert!(v["proveTx"].is_string(), "{v}");
    assert_eq!(n.json(&["status", &ids[1]])["status"], "closed");
    let credit: u128 = Staking::new(staking, &n.gov.provider)
        .creditOf(n.tenant)
        .call()
        .await
        .expect("credit")
        .to();
    // Half of the 10 USDC collateral as compensation, and as the reporter 10% of the rest.
    assert_eq!(credit, 5 * USDC + USDC / 2);
    // A result file that is not what was committed is reported as such.
    let other = n.dir.path().join("other.bin");
    std::fs::write(&other, encode(&bad)).expect("write");
    let v = n.json(&["result", &ids[0], "--file", other.to_str().expect("utf8")]);
    assert_eq!(v["matchesCommitment"], false);

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
            "m = {m}\nk = {k}\nn = {kn}\na = \"file://{}\"\nb = \"file://{}\"",
            fa.display(),
            fb.display()
        ),
    );
    let spec = n.spec("data.toml", &data);
    let id: B256 = id_of(&n.json(&["submit", &spec])).parse().expect("id");
    send(Market::new(market, &op.provider).bid(id, U96::from(1_000_000_000_000_000u128)))
        .await
        .expect("bid");
    let d = gridlease_core::matmul::MatmulData::from_row_major(8, 40, 6, a, &b).expect("shape");
    let mut c = multiply(&d.a, &d.bt, m, k, kn, 1);
    c[5 * kn + 2] ^= 1 << 9;
    let file = n.dir.path().join("cdata.bin");
    std::fs::write(&file, encode(&c)).expect("write result");
    let r = Results::new(results, &op.provider);
    let post = r.postResult(
        id,
        commit(&c).root(),
        format!("file://{}", file.display()),
        B256::ZERO,
    );
    send(post).await.expect("post result");
    let v = n.json(&["result", &id.to_string(), "--prove"]);
    assert_eq!(
        (v["matmul"]["i"].as_u64(), v["matmul"]["j"].as_u64()),
        (Some(5), Some(2))
    );
    assert!(v["proveTx"].is_string(), "{v}");
    assert_eq!(n.json(&["status", &id.to_string()])["status"], "closed");
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

#[tokio::test]
async fn submit_wait_accept_follows_every_phase_and_closes_on_a_verified_result() {
    use gridlease_bindings::Results;
    use gridlease_core::matmul::{commit, encode};
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
    let filter = alloy::rpc::types::Filter::new()
        .address(market)
        .event_signature(<Market::OrderCreated as alloy::sol_types::SolEvent>::SIGNATURE_HASH)
        .from_block(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let created = loop {
        let logs = n.gov.provider.get_logs(&filter).await.expect("logs");
        if let Some(l) = logs.first() {
            break l
                .log_decode::<Market::OrderCreated>()
                .expect("event")
                .inner
                .data;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI never created its order"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let id = created.orderId;
    let m = Market::new(market, &op.provider);
    send(m.bid(id, U96::from(1_000_000_000_000_000u128)))
        .await
        .expect("bid");
    let r = Results::new(results, &op.provider);
    send(r.acknowledge(id, created.tenant, created.params.into()))
        .await
        .expect("ack");
    // No pause needed: whenever the CLI looks, an acknowledged lease shows as running before its
    // result.
    let c = spec_product();
    let file = n.dir.path().join("wait.bin");
    std::fs::write(&file, encode(&c)).expect("write");
    let post = r.postResult(
        id,
        commit(&c).root(),
        format!("file://{}", file.display()),
        B256::ZERO,
    );
    send(post).await.expect("post");
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
        "closed",
    ] {
        assert!(err.contains(phase), "no \"{phase}\" in:\n{err}");
    }
}

/// What the fake node received: request line, headers (lower-cased names), body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

/// A one-request HTTP server on loopback: answers 201 and hands back the request.
fn fake_node() -> (String, std::sync::mpsc::Receiver<Request>) {
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
        let _ = r
            .get_mut()
            .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = tx.send((line.trim().to_owned(), headers, body));
    });
    (url, rx)
}

#[tokio::test]
async fn submit_push_keeps_the_spec_off_chain_and_sends_it_signed_to_the_node() {
    use alloy::{primitives::Signature, rpc::types::Filter, sol_types::SolEvent};
    use gridlease_core::{
        fetch::spec_auth_message,
        spec::{PUSH_URI, RunSpec},
    };
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
        .recover_address_from_msg(spec_auth_message(id, expiry.parse().expect("expiry")))
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
