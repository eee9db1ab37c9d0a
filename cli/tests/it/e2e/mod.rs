//! The `gridlease` binary against a real anvil: money moves exactly as the commands say, bad input
//! is refused with its message and no transaction, and exit codes tell user error, revert and
//! network failure apart.

use std::{path::PathBuf, process::Command};

use alloy::{
    primitives::{Address, B256, U256, aliases::U96},
    providers::{DynProvider, Provider},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
};
use gridlease_bindings::{
    IStaking::Capacity, Market, MarketLens, MockStablecoin, Results, Staking,
    lens::MarketLens::MarketLensInstance,
};
use gridlease_core::{
    chain::{Client, send},
    deployments::Deployments,
    matmul::{Matmul, encode, multiply},
    merkle::Commitment,
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
    /// Serves `dir` on loopback: inputs and results are named by http URLs (PIN-01).
    files: gridlease_deploy::files::Files,
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
    let files = gridlease_deploy::files::Files::serve(dir.path()).expect("file server");
    Net {
        files,
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
        let owner: PrivateKeySigner = ANVIL_KEYS[2].parse().expect("key");
        let operator: PrivateKeySigner = ANVIL_KEYS[3].parse().expect("key");
        let cap = Capacity {
            gpuClasses: 1,
            gpuCount: 1,
            vramGiB: 16,
        };
        devnet::provider(&self.gov, &self.d, owner.clone(), &operator, cap, 50 * USDC)
            .await
            .expect("provider registered and staked");
        let op = Client::connect(&self.anvil.url(), Some(operator))
            .await
            .expect("connect");
        (owner.address(), op)
    }

    /// The market's views.
    fn lens(&self) -> MarketLensInstance<&DynProvider> {
        MarketLens::new(
            self.d.address("MarketLens").expect("lens"),
            &self.gov.provider,
        )
    }

    /// The deployment's windows, read from the contracts (so the tests follow the devnet config).
    async fn windows(&self) -> Windows {
        let r = Results::new(
            self.d.address("Results").expect("results"),
            &self.gov.provider,
        );
        let admin = gridlease_bindings::MarketAdmin::new(
            self.d.address("Market").expect("market"),
            &self.gov.provider,
        );
        let st = Staking::new(
            self.d.address("Staking").expect("staking"),
            &self.gov.provider,
        );
        Windows {
            start: u64::from(r.startWindow().call().await.expect("start window")),
            grace: u64::from(r.deadlineGrace().call().await.expect("grace")),
            response: u64::from(r.responseWindow().call().await.expect("response")),
            challenge: r.challengeWindow().call().await.expect("challenge").to(),
            horizon: admin.faultHorizon().call().await.expect("horizon").to(),
            bond: r.challengeBond().call().await.expect("bond"),
            fault_fee_bps: u128::from(r.faultFeeBps().call().await.expect("fee")),
            heartbeat: u64::from(st.heartbeatPeriod().call().await.expect("period")),
        }
    }

    /// Move chain time on by `secs` (and mine a block there).
    async fn warp(&self, secs: u64) {
        gridlease_deploy::anvil::warp(&self.gov.provider, secs)
            .await
            .expect("warp");
    }

    /// The provider `owner`'s stake and locked collateral.
    async fn stake_of(&self, owner: Address) -> (u128, u128) {
        let st = Staking::new(
            self.d.address("Staking").expect("staking"),
            &self.gov.provider,
        );
        let p = st.providerInfo(owner).call().await.expect("provider");
        (p.stake.to(), p.locked.to())
    }

    /// Staking credit of `who` (slash compensation, reporter rewards).
    async fn staking_credit(&self, who: Address) -> u128 {
        Staking::new(
            self.d.address("Staking").expect("staking"),
            &self.gov.provider,
        )
        .creditOf(who)
        .call()
        .await
        .expect("credit")
        .to()
    }

    /// The market's credit of `who` in USDC.
    async fn market_credit(&self, who: Address) -> u128 {
        self.lens()
            .creditOf(self.usdc, who)
            .call()
            .await
            .expect("credit")
            .to()
    }

    /// Submit SPEC (`instant`) through the CLI as the tenant; with `op`, its provider bids on
    /// chain at 0.001 USDC/s (an instant order is then leased and acknowledged at once).
    async fn order(&self, name: &str, instant: bool, op: Option<&Client>) -> B256 {
        let spec = self.spec(name, &SPEC.replace("INSTANT", &instant.to_string()));
        let id: B256 = id_of(&self.json(&["submit", &spec])).parse().expect("id");
        if let Some(op) = op {
            send(self.market(op).bid(id, U96::from(RATE)))
                .await
                .expect("bid");
        }
        id
    }

    fn market<'a>(
        &self,
        c: &'a Client,
    ) -> gridlease_bindings::Market::MarketInstance<&'a DynProvider> {
        Market::new(self.d.address("Market").expect("market"), &c.provider)
    }

    /// The operator posts `bytes` as the result of `id`, served at `uri`; returns the block time.
    async fn post(&self, op: &Client, id: B256, bytes: &[u8], uri: &str) -> u64 {
        let c = Commitment::of(bytes);
        let r = Results::new(self.d.address("Results").expect("results"), &op.provider);
        let receipt = send(r.postResult(id, c.root, c.size, uri.to_owned(), B256::ZERO))
            .await
            .expect("post result");
        self.time_of(&receipt).await
    }

    /// Write `bytes` to a file and return the loopback URL it is served at.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        self.files.put(name, bytes).expect("write")
    }

    async fn time_of(&self, r: &TransactionReceipt) -> u64 {
        self.gov
            .provider
            .get_block_by_number(r.block_number.expect("mined").into())
            .await
            .expect("block")
            .expect("block")
            .header
            .timestamp
    }

    async fn eth_balance(&self, who: Address) -> U256 {
        self.gov.provider.get_balance(who).await.expect("balance")
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

/// What the results module, the market and staking were deployed with.
struct Windows {
    start: u64,
    grace: u64,
    response: u64,
    challenge: u64,
    horizon: u64,
    bond: U256,
    fault_fee_bps: u128,
    heartbeat: u64,
}

/// 0.001 USDC a second (3.6 USDC/h, SPEC's maximum), in 18-decimal units: 1,000 USDC units/s.
const RATE: u128 = 1_000_000_000_000_000;

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

/// A batch lease without a result (protocol §3.1.4): the tenant's close pays the time used only
/// for an acknowledged lease before its deadline, and nothing otherwise; a no-show or a missed
/// deadline stays provable after the tenant's close (MEC-05) and refunds everything when proven
/// (MEC-02: the close never beats the fault).
#[tokio::test]
async fn close_batch_lease_without_result_pays_only_acknowledged_time_mec02_mec05() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let w = n.windows().await;
    let t0 = n.balance(n.tenant).await;
    // A and C: instant, so the provider's own bid acknowledged them. B: awarded by a third party
    // after its bid window, so it must be acknowledged, and never is.
    let a = n.order("a.toml", true, Some(&op)).await;
    let c = n.order("c.toml", true, Some(&op)).await;
    let b = n.order("b.toml", false, Some(&op)).await;
    n.warp(31).await;
    send(n.market(&n.gov).award(b, vec![]))
        .await
        .expect("award");
    assert_eq!(n.balance(n.tenant).await, t0 - 6 * USDC);
    // B inside its start window: awaited.
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(s["state"], "awaiting-acknowledgement", "{s}");
    assert_eq!(s["acknowledged"], false);

    // A: acknowledged, before its deadline: `--check` explains and sends nothing.
    n.warp(99).await;
    let s = n.json(&["status", &a.to_string()]);
    assert_eq!(s["state"], "running", "{s}");
    let nonce = n.nonce().await;
    let v = n.json(&["close", &a.to_string(), "--check"]);
    assert!(
        v["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("pays the time used")),
        "{v}"
    );
    assert_eq!(n.nonce().await, nonce, "--check sends nothing");
    let v = n.json(&["close", &a.to_string()]);
    let s = n.json(&["status", &a.to_string()]);
    let (start, closed_at) = (
        s["start"].as_u64().expect("start"),
        s["closed"]["closedAt"].as_u64().expect("closedAt"),
    );
    let paid = u128::from(closed_at - start) * 1_000;
    assert!(paid > 0);
    assert_eq!(v["paid"], paid.to_string(), "the time used, to the second");
    assert_eq!(v["refund"], (2 * USDC - paid).to_string());
    assert_eq!(
        v["held"], false,
        "an acknowledged close before the deadline holds nothing"
    );
    assert_eq!(s["state"], "closed", "{s}");
    assert_eq!(
        n.market_credit(owner).await,
        paid - paid / 100,
        "minus the 1% protocol fee"
    );
    // Nothing to prove about A.
    let r = n.cli(&["result", &a.to_string(), "--prove"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("Nothing is provable yet"), "{}", r.stderr);

    // B: never acknowledged; past its start window, a no-show.
    n.warp(w.start + 1).await;
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(s["state"], "no-show", "{s}");
    assert_eq!(s["next"], format!("gridlease result {b} --prove"));
    let v = n.json(&["close", &b.to_string(), "--check"]);
    assert_eq!(v["estimatedPay"], "0");
    assert_eq!(v["instead"], format!("gridlease result {b} --prove"), "{v}");
    let v = n.json(&["close", &b.to_string()]);
    assert_eq!(
        (v["paid"].as_str(), v["refund"].as_str()),
        (Some("0"), Some("2000000"))
    );
    assert_eq!(v["held"], true, "the no-show stays provable");
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(s["state"], "closed", "{s}");
    assert!(
        s["stateText"]
            .as_str()
            .is_some_and(|t| t.contains("no-show stays provable")),
        "{s}"
    );
    let held_until = s["collateralHeldUntil"].as_u64().expect("held");
    assert_eq!(
        held_until,
        s["settledAt"].as_u64().expect("closed at") + w.horizon
    );
    // Proven after the close: the provider's collateral is slashed, nothing more to refund.
    let (stake0, _) = n.stake_of(owner).await;
    let v = n.json(&["result", &b.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "no-show", "{v}");
    assert_eq!(v["fault"]["refund"], "0");
    assert_eq!(
        v["fault"]["compensation"], "0",
        "the tenant paid nothing for B"
    );
    assert_eq!(n.stake_of(owner).await.0, stake0 - 10 * USDC);
    assert_eq!(n.json(&["status", &b.to_string()])["state"], "faulted");

    // C: acknowledged, past its end + grace without a result: closing would pay nothing, and
    // proving the missed deadline refunds all of it and slashes.
    n.warp(600 + w.grace + 1).await;
    let s = n.json(&["status", &c.to_string()]);
    assert_eq!(s["state"], "deadline-missed", "{s}");
    let v = n.json(&["close", &c.to_string(), "--check"]);
    assert_eq!(v["estimatedPay"], "0", "{v}");
    assert_eq!(v["instead"], format!("gridlease result {c} --prove"));
    let before = n.balance(n.tenant).await;
    let v = n.json(&["result", &c.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "missed-deadline", "{v}");
    assert_eq!(v["fault"]["refund"], "2000000");
    assert_eq!(
        n.balance(n.tenant).await,
        before + 2 * USDC,
        "refunded in full"
    );
    assert_eq!(
        n.stake_of(owner).await,
        (stake0 - 20 * USDC, 0),
        "slashed; nothing locked"
    );
    // In all: the tenant paid only A's time used.
    assert_eq!(n.balance(n.tenant).await, t0 - paid);
}

/// A posted result is held for its challenge window; the tenant's close inside it accepts it:
/// it pays exactly up to the result and keeps the collateral held (faults stay provable).
#[tokio::test]
async fn accepting_a_held_result_pays_up_to_the_result_and_keeps_the_collateral_held() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let t0 = n.balance(n.tenant).await;
    let w = n.windows().await;
    let id = n.order("job.toml", true, Some(&op)).await;
    n.warp(50).await;
    let bytes = encode(&spec_product());
    let posted_at = n.post(&op, id, &bytes, &n.file("c.bin", &bytes)).await;

    let s = n.json(&["status", &id.to_string()]);
    let start = s["start"].as_u64().expect("start");
    let pay = u128::from(posted_at - start) * 1_000;
    assert_eq!(s["state"], "held", "{s}");
    assert_eq!(
        s["holdEnd"].as_u64(),
        Some(posted_at + w.challenge),
        "held for the challenge window"
    );
    assert_eq!(s["accrued"], pay.to_string(), "what accepting pays");
    assert_eq!(s["result"]["size"], bytes.len());
    let r = n.cli(&["status", &id.to_string()]);
    assert!(
        r.stdout.contains("result posted, held until")
            && r.stdout.contains("accepting it now pays"),
        "{}",
        r.stdout
    );
    assert_eq!(n.json(&["result", &id.to_string()])["matmul"]["ok"], true);

    // Nobody else may accept it.
    let stranger: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    let nonce = n
        .gov
        .provider
        .get_transaction_count(stranger.address())
        .await
        .expect("nonce");
    let r = run(n
        .command(false)
        .env("STRANGER_KEY", stranger.to_bytes().to_string())
        .args([
            "--private-key",
            "env:STRANGER_KEY",
            "close",
            &id.to_string(),
        ]));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("only its tenant"), "{}", r.stderr);
    assert_eq!(
        n.gov
            .provider
            .get_transaction_count(stranger.address())
            .await
            .expect("nonce"),
        nonce
    );

    let v = n.json(&["close", &id.to_string(), "--check"]);
    assert!(
        v["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("accepts the posted result")),
        "{v}"
    );
    n.warp(100).await;
    let v = n.json(&["close", &id.to_string()]);
    assert_eq!(v["reason"], "accepted by the tenant");
    assert_eq!(
        v["paid"],
        pay.to_string(),
        "paid up to the result, not up to the close"
    );
    assert_eq!(v["refund"], (2 * USDC - pay).to_string());
    assert_eq!(v["held"], true);
    assert_eq!(n.balance(n.tenant).await, t0 - pay);
    assert_eq!(n.market_credit(owner).await, pay - pay / 100);
    assert_eq!(
        n.stake_of(owner).await.1,
        10 * USDC,
        "the collateral stays locked"
    );

    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(
        (s["status"].as_str(), s["state"].as_str()),
        (Some("closed"), Some("accepted"))
    );
    let closed_at = s["closed"]["closedAt"].as_u64().expect("closed");
    assert_eq!(
        s["collateralHeldUntil"].as_u64(),
        Some(closed_at + w.horizon)
    );
    assert!(
        s["stateText"]
            .as_str()
            .is_some_and(|t| t.contains("faults on the result stay provable until")),
        "{s}"
    );
}

/// MEC-04: a provider posts a root and withholds the data. The tenant is told it can challenge,
/// challenges a chunk with the bond, and after the response window proves the result
/// unavailable: refunded in full, the provider slashed, the bond back. A small result whose
/// chunks were all revealed on chain is assembled from them when the node is down.
#[tokio::test]
async fn challenge_then_prove_unavailable_refunds_the_tenant_and_slashes_mec04() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let results = n.d.address("Results").expect("results");
    let w = n.windows().await;
    let bond_text = format!(
        "{} ETH",
        gridlease_core::units::format_amount(w.bond.to(), 18)
    );
    let t0 = n.balance(n.tenant).await;
    let id = n.order("job.toml", true, Some(&op)).await;
    let withheld: Vec<u8> = (0..3_000u32).map(|i| (i * 7) as u8).collect();
    n.post(&op, id, &withheld, "http://127.0.0.1:9/result")
        .await;

    let r = n.cli(&["result", &id.to_string()]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("download failed")
            && r.stderr.contains("--challenge")
            && r.stderr.contains(&bond_text),
        "{}",
        r.stderr
    );
    let nonce = n.nonce().await;
    let r = n.cli(&["result", &id.to_string(), "--challenge", "--chunk", "3"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("has 3 chunk(s)"), "{}", r.stderr);
    assert_eq!(n.nonce().await, nonce);

    let v = n.json(&["result", &id.to_string(), "--challenge", "--chunk", "1"]);
    assert_eq!(v["bond"], w.bond.to_string(), "{v}");
    assert_eq!(v["bondText"], bond_text);
    assert_eq!(v["responseWindow"], w.response);
    assert_eq!(n.eth_balance(results).await, w.bond, "the bond is held");
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["state"], "challenged", "{s}");
    assert_eq!(s["openChallenges"][0]["index"], 1);
    assert_eq!(s["openChallenges"][0]["deadline"], v["deadline"]);
    // Too early to prove: the answer may still come.
    let r = n.cli(&["result", &id.to_string(), "--prove"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("Chunk 1 is challenged"), "{}", r.stderr);

    n.warp(w.response + 1).await;
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["next"], format!("gridlease result {id} --prove"), "{s}");
    let v = n.json(&["result", &id.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "unavailable", "{v}");
    assert_eq!(v["fault"]["refund"], "2000000");
    assert_eq!(
        n.balance(n.tenant).await,
        t0,
        "the tenant got everything back"
    );
    assert_eq!(
        n.stake_of(owner).await,
        (40 * USDC, 0),
        "10 USDC collateral slashed"
    );
    assert_eq!(
        n.eth_balance(results).await,
        U256::ZERO,
        "the bond went back"
    );
    // ... to its challenger, the tenant: sent, not left as a credit.
    let credit = Results::new(results, &n.gov.provider)
        .ethCreditOf(n.tenant)
        .call()
        .await
        .expect("credit");
    assert_eq!(credit, U256::ZERO);
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["state"], "faulted");
    assert_eq!(s["fault"]["kind"], "unavailable");

    // A one-chunk result the node no longer serves, revealed on chain by its answer.
    let id = n.order("small.toml", true, Some(&op)).await;
    let small = b"a small result, one chunk".to_vec();
    n.post(&op, id, &small, "http://127.0.0.1:9/small").await;
    n.json(&["result", &id.to_string(), "--challenge", "--chunk", "0"]);
    let c = Commitment::of(&small);
    send(Results::new(results, &op.provider).answer(
        id,
        c.root,
        c.size,
        U256::ZERO,
        small.clone().into(),
        vec![],
    ))
    .await
    .expect("answer");
    let v = n.json(&["result", &id.to_string()]);
    assert_eq!(v["source"], "chunks revealed on chain", "{v}");
    assert_eq!(v["matchesCommitment"], true);
    assert_eq!(n.json(&["status", &id.to_string()])["state"], "held");
}

/// MEC-07: a fault on an accepted result compensates the tenant for what it paid, never more
/// (the rest of the slash goes to the treasury); a third-party reporter earns its fee out of the
/// refund it recovers. `withdraw` collects the market credit (the fee) and the staking credit
/// (the compensation) in one go.
#[tokio::test]
async fn withdraw_collects_market_and_staking_credits_after_a_fault_mec07() {
    let n = net().await;
    let (owner, op) = n.provider().await;
    let w = n.windows().await;
    let t0 = n.balance(n.tenant).await;
    let mut wrong = spec_product();
    wrong[64 * 7 + 9] ^= 1 << 4;
    let wrong = encode(&wrong);

    // Lease A (the tenant's): a wrong result, accepted, then proven wrong.
    let a = n.order("a.toml", true, Some(&op)).await;
    n.warp(40).await;
    n.post(&op, a, &wrong, &n.file("a.bin", &wrong)).await;
    let v = n.json(&["close", &a.to_string()]);
    let paid: u128 = v["paid"].as_str().expect("paid").parse().expect("number");
    assert!(paid > 0);
    let v = n.json(&["result", &a.to_string(), "--prove"]);
    assert_eq!(v["fault"]["kind"], "wrong-result", "{v}");
    assert_eq!(
        v["fault"]["refund"], "0",
        "an accepted lease holds no escrow"
    );
    assert_eq!(v["fault"]["slashed"], (10 * USDC).to_string());
    assert_eq!(
        v["fault"]["compensation"],
        paid.to_string(),
        "compensated for what it paid, not for the slash"
    );
    assert_eq!(n.staking_credit(n.tenant).await, paid);

    // Lease B (another tenant's): a wrong result still held; the tenant proves it as a third
    // party and earns the 5% fault fee out of the refund it recovers.
    let other: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    mint(&n.gov, n.usdc, other.address(), 10 * USDC)
        .await
        .expect("mint");
    let spec = n.spec("b.toml", &SPEC.replace("INSTANT", "true"));
    let r = run(n
        .command(false)
        .env("OTHER_KEY", other.to_bytes().to_string())
        .args(["--private-key", "env:OTHER_KEY", "--json", "submit", &spec]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let b: B256 = id_of(&serde_json::from_str(&r.stdout).expect("json"))
        .parse()
        .expect("id");
    send(n.market(&op).bid(b, U96::from(RATE)))
        .await
        .expect("bid");
    n.post(&op, b, &wrong, &n.file("b.bin", &wrong)).await;
    // A third party earns its fee only once the tenant's own priority to prove (free) has passed
    // (the devnet's is minutes; an hour is past any).
    n.warp(3_601).await;
    let v = n.json(&["result", &b.to_string(), "--prove"]);
    let fee = 2 * USDC * w.fault_fee_bps / 10_000;
    assert!(fee > 0);
    assert_eq!(v["fault"]["fee"], fee.to_string(), "{v}");
    assert_eq!(
        v["fault"]["refund"],
        (2 * USDC - fee).to_string(),
        "the other tenant gets its escrow back less the reporter's fee: {v}"
    );
    assert_eq!(v["fault"]["compensation"], "0", "B paid nothing yet");
    let s = n.json(&["status", &b.to_string()]);
    assert_eq!(
        s["fault"],
        serde_json::json!({
            "kind": "wrong-result",
            "refund": (2 * USDC - fee).to_string(),
            "fee": fee.to_string(),
            "compensation": "0",
            "slashed": (10 * USDC).to_string(),
            "reporter": n.tenant,
        }),
        "status agrees with the proof: {s}"
    );
    assert_eq!(n.market_credit(n.tenant).await, fee);
    assert_eq!(n.balance(other.address()).await, 10 * USDC - fee);

    let before = n.balance(n.tenant).await;
    let v = n.json(&["withdraw"]);
    let got: Vec<(String, String)> = v["withdrawn"]
        .as_array()
        .expect("list")
        .iter()
        .map(|w| {
            (
                w["source"].as_str().unwrap_or("").to_owned(),
                w["amount"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("market".into(), fee.to_string()),
            ("staking".into(), paid.to_string())
        ]
    );
    assert_eq!(n.balance(n.tenant).await, before + fee + paid);
    assert_eq!(
        (
            n.market_credit(n.tenant).await,
            n.staking_credit(n.tenant).await
        ),
        (0, 0)
    );
    // The tenant is made whole for A, and gains nothing from the slash beyond B's fee.
    assert_eq!(n.balance(n.tenant).await, t0 + fee);
    assert_eq!(n.stake_of(owner).await, (30 * USDC, 0));
    let r = n.cli(&["withdraw"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nothing to withdraw"), "{}", r.stderr);
}

/// MEC-09: a service lease whose provider's heartbeat stopped shows as lapsed, and anyone may
/// close it: it pays up to the lapse (the last heartbeat + its period), never for the lapse,
/// and refunds the rest.
#[tokio::test]
async fn service_lease_shows_live_then_lapsed_and_anyone_closes_it_up_to_the_lapse_mec09() {
    let n = net().await;
    let (_, op) = n.provider().await;
    let w = n.windows().await;
    let staking = Staking::new(n.d.address("Staking").expect("staking"), &op.provider);
    let beat = send(staking.heartbeat()).await.expect("heartbeat");
    let beat_at = n.time_of(&beat).await;
    let service = SPEC
        .replace("INSTANT", "true")
        .replace("matmul_i8", "service")
        .replace(
            "[matmul]\nn = 64\n",
            "[service]\nimage = \"srv:1\"\nport = 8000\n",
        );
    let spec = n.spec("svc.toml", &service);
    let id: B256 = id_of(&n.json(&["submit", &spec])).parse().expect("id");
    send(n.market(&op).bid(id, U96::from(RATE)))
        .await
        .expect("bid");
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(
        (s["kind"].as_str(), s["state"].as_str()),
        (Some("service"), Some("live")),
        "{s}"
    );
    let start = s["start"].as_u64().expect("start");

    n.warp(2 * w.heartbeat).await;
    let s = n.json(&["status", &id.to_string()]);
    assert_eq!(s["state"], "lapsed", "{s}");
    let paid = u128::from(beat_at + w.heartbeat - start) * 1_000;
    assert_eq!(
        s["accrued"],
        paid.to_string(),
        "up to the last heartbeat + its period"
    );
    // A stranger closes it as lapsed.
    let stranger: PrivateKeySigner = ANVIL_KEYS[4].parse().expect("key");
    let r = run(n
        .command(false)
        .env("STRANGER_KEY", stranger.to_bytes().to_string())
        .args([
            "--private-key",
            "env:STRANGER_KEY",
            "--json",
            "close",
            &id.to_string(),
        ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["reason"], "lapsed");
    assert_eq!(v["paid"], paid.to_string(), "nothing for the lapse");
    assert_eq!(v["refund"], (2 * USDC - paid).to_string());
    assert_eq!(n.json(&["status", &id.to_string()])["state"], "lapsed");
}

/// MEC-16: a credit of an account the token froze is not sent elsewhere: `withdraw --to` is
/// refused with the reason, and works once the freeze is lifted.
#[tokio::test]
async fn withdraw_to_another_address_is_refused_for_a_frozen_account_mec16() {
    use alloy::sol_types::SolCall;
    use gridlease_bindings::{MarketAdmin, Timelock, UsdcLikeToken};
    use gridlease_core::deployments::TokenEntry;
    let mut n = net().await;
    let market = n.d.address("Market").expect("market");
    // A USDC-like token with a blacklist, allowed by governance through the Timelock (1 minute).
    let frz = UsdcLikeToken::deploy(&n.gov.provider)
        .await
        .expect("deploy");
    let tl = Timelock::new(n.d.address("Timelock").expect("timelock"), &n.gov.provider);
    let data: alloy::primitives::Bytes = MarketAdmin::configureTokenCall {
        token: *frz.address(),
        allowed: true,
    }
    .abi_encode()
    .into();
    let delay = tl.getMinDelay().call().await.expect("delay");
    send(tl.schedule(
        market,
        U256::ZERO,
        data.clone(),
        B256::ZERO,
        B256::ZERO,
        delay,
    ))
    .await
    .expect("schedule");
    n.warp(delay.to::<u64>() + 1).await;
    send(tl.execute(market, U256::ZERO, data, B256::ZERO, B256::ZERO))
        .await
        .expect("execute");
    n.d.tokens.push(TokenEntry {
        symbol: "FRZ".into(),
        address: *frz.address(),
        decimals: 6,
    });
    n.d.save(&n.dir.path().join("deployments.json"))
        .expect("save");
    send(frz.mint(n.tenant, U256::from(10 * USDC)))
        .await
        .expect("mint");

    let spec = n.spec(
        "frz.toml",
        &SPEC
            .replace("INSTANT", "false")
            .replace("instant", "token = \"FRZ\"\ninstant"),
    );
    let id = id_of(&n.json(&["submit", &spec]));
    send(frz.setBlacklisted(n.tenant, true))
        .await
        .expect("freeze");
    // The refund the token refuses becomes a credit.
    let r = n.cli(&["cancel", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("credited to you in the market"),
        "{}",
        r.stdout
    );
    let credit = n
        .lens()
        .creditOf(*frz.address(), n.tenant)
        .call()
        .await
        .expect("credit");
    assert_eq!(credit, U256::from(2 * USDC));

    let elsewhere = Address::repeat_byte(0x77).to_string();
    let nonce = n.nonce().await;
    let r = n.cli(&["withdraw", "--to", &elsewhere]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("AccountFrozenMarket")
            && r.stderr.contains("FRZ has frozen")
            && r.stderr.contains("MEC-16"),
        "{}",
        r.stderr
    );
    let r = n.cli(&["withdraw"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("refused the transfer"), "{}", r.stderr);
    assert_eq!(
        n.nonce().await,
        nonce,
        "refused in simulation: nothing sent"
    );

    send(frz.setBlacklisted(n.tenant, false))
        .await
        .expect("unfreeze");
    let v = n.json(&["withdraw", "--to", &elsewhere]);
    assert_eq!(v["withdrawn"][0]["token"], "FRZ", "{v}");
    let got = frz
        .balanceOf(Address::repeat_byte(0x77))
        .call()
        .await
        .expect("balance");
    assert_eq!(got, U256::from(2 * USDC));
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
        // PIN-01: an input is a URL a provider can download, never a path on some disk.
        (
            "local input",
            good.replace(
                "n = 64",
                "m = 1\nk = 436\nn = 1\na = \"file:///etc/hostname\"\nb = \"/etc/hostname\"",
            ),
            "matmul.a: the provider downloads inputs over http(s):// only",
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
    use gridlease_core::matmul::commit;
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
    let d = gridlease_core::matmul::MatmulData::from_row_major(8, 40, 6, a, &b).expect("shape");
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
