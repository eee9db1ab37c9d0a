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
use gridlease_chain::{Client, deployments::Deployments, send};
use gridlease_deploy::{
    anvil::{ANVIL_KEYS, Anvil},
    deploy::mint,
    devnet,
};
use gridlease_workload::{
    matmul::{Matmul, encode, multiply},
    merkle::Commitment,
};

const USDC: u128 = 1_000_000;

struct Net {
    anvil: Anvil,
    dir: tempfile::TempDir,
    /// Serves `dir` on loopback: inputs and results are named by http URLs (PIN-01).
    files: gridlease_testkit::files::Files,
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
    let files = gridlease_testkit::files::Files::serve(dir.path()).expect("file server");
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
        self.command_via(&self.anvil.url(), wallet)
    }

    /// [`Self::command`] through the RPC endpoint `rpc` (a fault-injecting proxy of the chain).
    fn command_via(&self, rpc: &str, wallet: bool) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gridlease"));
        cmd.arg("--rpc")
            .arg(rpc)
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

    /// A USDC-like token (blacklist, pause, Circle's paused permit) named `symbol`, allowed by
    /// governance through the Timelock and written into the deployments file; the tenant holds 10.
    async fn usdc_like(
        &mut self,
        symbol: &str,
    ) -> gridlease_bindings::UsdcLikeToken::UsdcLikeTokenInstance<DynProvider> {
        use gridlease_bindings::UsdcLikeToken;
        let token = UsdcLikeToken::deploy(self.gov.provider.clone())
            .await
            .expect("deploy");
        self.list_token(*token.address(), symbol).await;
        send(token.mint(self.tenant, U256::from(10 * USDC)))
            .await
            .expect("mint");
        token
    }

    /// Allow `token` (6 decimals) on the market through governance and name it `symbol` in the
    /// deployments file the CLI reads.
    async fn list_token(&mut self, token: Address, symbol: &str) {
        use alloy::sol_types::SolCall;
        use gridlease_bindings::MarketAdmin;
        use gridlease_chain::deployments::TokenEntry;
        let allow = MarketAdmin::configureTokenCall {
            token,
            allowed: true,
        };
        gridlease_testkit::governance::govern(
            &self.gov.provider,
            self.d.address("Timelock").expect("timelock"),
            self.d.address("Market").expect("market"),
            allow.abi_encode().into(),
        )
        .await
        .expect("governance allows the token");
        self.d.tokens.push(TokenEntry {
            symbol: symbol.into(),
            address: token,
            decimals: 6,
        });
        self.d
            .save(&self.dir.path().join("deployments.json"))
            .expect("save");
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

/// A running instant service lease of provider `op` (which beats first) whose `[service]` section
/// is `section`: submitted with the CLI, won by `op`'s bid on chain. Its id and the heartbeat's
/// receipt.
async fn service_lease(n: &Net, op: &Client, section: &str) -> (B256, TransactionReceipt) {
    let staking = Staking::new(n.d.address("Staking").expect("staking"), &op.provider);
    let beat = send(staking.heartbeat()).await.expect("heartbeat");
    let service = SPEC
        .replace("INSTANT", "true")
        .replace("matmul_i8", "service")
        .replace("[matmul]\nn = 64\n", &format!("[service]\n{section}"));
    let spec = n.spec("svc.toml", &service);
    let id: B256 = id_of(&n.json(&["submit", &spec])).parse().expect("id");
    send(n.market(op).bid(id, U96::from(RATE)))
        .await
        .expect("bid");
    (id, beat)
}

fn id_of(v: &serde_json::Value) -> String {
    v["orderId"].as_str().expect("order id").to_owned()
}

mod connect;
mod faults;
mod orders;
mod refusals;
mod results;
mod shell;
