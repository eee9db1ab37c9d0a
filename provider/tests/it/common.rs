//! The harness the node's anvil tests share: a market with one registered, staked provider, a
//! funded tenant, the node as a real process, and waits with deadlines (never sleeps as
//! synchronisation).

// Each test file uses a part of it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, B256, aliases::U96},
    providers::Provider,
    rpc::types::Log,
    sol_types::SolEvent,
};
use gridlease_bindings::{IMarket::OrderParams, Market, Results};
use gridlease_chain::{Client, send};
use gridlease_deploy::anvil::{self, ANVIL_KEYS, Anvil};
use gridlease_primitives::spec::{Resources, RunSpec, Workload};

use gridlease_testkit::market::{Market as Fixture, logs};
pub(crate) use gridlease_testkit::{
    market::{USDC, key},
    process::Daemon as Node,
};

/// Wait until `f` holds, up to `secs`; on timeout fail with `what` and `context()`.
pub(crate) async fn eventually(
    what: &str,
    secs: u64,
    mut f: impl AsyncFnMut() -> bool,
    context: impl Fn() -> String,
) {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what} did not happen within {secs}s\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn raw(
    c: &Client,
    method: &'static str,
    params: serde_json::Value,
) -> serde_json::Value {
    c.provider
        .raw_request(method.into(), params)
        .await
        .expect("anvil call")
}

/// A container job running `command` (on the test node's process executor).
pub(crate) fn command_spec(command: Vec<String>) -> RunSpec {
    job_spec(Workload::Container {
        image: "local".into(),
        command,
        env: Default::default(),
    })
}

/// A run spec of `workload` for one class-0 GPU with 8 GiB, one core and 1 GiB of RAM.
pub(crate) fn job_spec(workload: Workload) -> RunSpec {
    RunSpec {
        version: 1,
        workload,
        resources: Resources {
            gpu_class: 0,
            gpu_count: 1,
            vram_gib: 8,
            cpu_cores: 1,
            ram_gib: 1,
        },
    }
}

/// A market with provider `owner` (key 2, operator key 3) registered for class `any` with one
/// 16 GiB GPU and 100 USDC staked, a funded tenant (key 1), and a temp dir for a node.
pub(crate) struct Net {
    /// `None` once stopped (the restart test).
    pub(crate) anvil: Option<Anvil>,
    pub(crate) url: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) tenant: Client,
    pub(crate) market: Address,
    pub(crate) lens: Address,
    pub(crate) results: Address,
    pub(crate) staking: Address,
    pub(crate) usdc: Address,
    pub(crate) port: u16,
}

pub(crate) async fn net() -> Net {
    let m = Fixture::start(100 * USDC).await;
    Net {
        url: m.anvil.url(),
        anvil: Some(m.anvil),
        dir: m.dir,
        tenant: m.tenant,
        market: m.market,
        lens: m.lens,
        results: m.results,
        staking: m.staking,
        usdc: m.usdc,
        port: anvil::free_port().expect("a free port"),
    }
}

/// A node on a fresh market (see [`net`]) polling the chain, running container jobs on `engine`
/// (None: as local processes).
pub(crate) async fn started_on(engine: Option<&gridlease_testkit::engine::Engine>) -> (Net, Node) {
    let n = net().await;
    n.config(&n.url, None);
    if let Some(e) = engine {
        n.use_engine(e);
    }
    let node = n.start(1);
    n.wait_head(1).await;
    (n, node)
}

impl Net {
    pub(crate) fn path(&self) -> PathBuf {
        self.dir.path().into()
    }

    /// Move chain time on by `secs` and mine a block.
    pub(crate) async fn warp(&self, secs: u64) {
        anvil::warp(&self.tenant.provider, secs)
            .await
            .expect("warp");
    }

    /// Write the node's config, reading the chain through `rpc`; `wallet` replaces the
    /// `private_key` line when given.
    pub(crate) fn config(&self, rpc: &str, wallet: Option<&str>) {
        let wallet = wallet.unwrap_or("private_key = \"env:OP_KEY\"");
        let config = format!(
            r#"[chain]
rpc = "{rpc}"
deployments = "deployments.json"
confirmations = 0
poll_ms = 100

[wallet]
{wallet}
owner = "{}"

[capacity]
gpus = "declared"
class = "any"
count = 1
vram_gib = 16

[pricing.any]
floor_per_hour = "0.36"

[jobs]
max_concurrent = 4
executor = "process"
allow_unsandboxed = true
post_margin = "5s"
shutdown_grace = "2s"

[fetch]
allow = ["127.0.0.0/8", "::1"]

[http]
listen = "127.0.0.1:{}"
"#,
            key(2).address(),
            self.port
        );
        std::fs::write(self.dir.path().join("provider.toml"), config).expect("write");
    }

    /// Run container jobs on `engine` (Podman's API) instead of as local processes.
    pub(crate) fn use_engine(&self, engine: &gridlease_testkit::engine::Engine) {
        let path = self.path().join("provider.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        let podman = text.replace(
            "executor = \"process\"\nallow_unsandboxed = true\n",
            &format!(
                "executor = \"podman\"\nsocket = \"unix://{}\"\nlocal_images = [\"{}\"]\n",
                engine.socket.display(),
                engine.image
            ),
        );
        assert_ne!(podman, text);
        std::fs::write(&path, podman).expect("config");
    }

    pub(crate) fn log(&self, n: u32) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{n}.log"))).unwrap_or_default()
    }

    /// The node as a child process, logging to `node-<n>.log`.
    pub(crate) fn start(&self, n: u32) -> Node {
        let log =
            std::fs::File::create(self.dir.path().join(format!("node-{n}.log"))).expect("log");
        Node(
            Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
                .args(["run", "--config", "provider.toml", "--verbose"])
                .current_dir(self.dir.path())
                .env("OP_KEY", ANVIL_KEYS[3])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("node starts"),
        )
    }

    /// Run the node until it exits (a refusal to start): (exit code, stderr).
    pub(crate) fn refused(&self) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
            .args(["run", "--config", "provider.toml"])
            .current_dir(self.dir.path())
            .env("OP_KEY", ANVIL_KEYS[3])
            .env("KS_PW", "pw")
            .output()
            .expect("runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// An instant order for a process job running `script`, returning its id.
    pub(crate) async fn order(&self, script: &str, salt: u8) -> B256 {
        self.order_for(script, salt, 600).await
    }

    /// [`Self::order`] for a lease of at most `max_duration` seconds.
    pub(crate) async fn order_for(&self, script: &str, salt: u8, max_duration: u32) -> B256 {
        self.order_with(script, salt, max_duration, true).await
    }

    /// An order for a process job; `instant: false` is an auction (60 s bid window).
    pub(crate) async fn order_with(
        &self,
        script: &str,
        salt: u8,
        max_duration: u32,
        instant: bool,
    ) -> B256 {
        let command = vec!["sh".into(), "-c".into(), script.into()];
        self.order_command(command, salt, max_duration, instant)
            .await
            .0
    }

    /// An order for a process job running `command` (no shell); returns its id and terms.
    pub(crate) async fn order_command(
        &self,
        command: Vec<String>,
        salt: u8,
        max_duration: u32,
        instant: bool,
    ) -> (B256, OrderParams) {
        self.order_spec(&command_spec(command), 0, salt, max_duration, instant)
            .await
    }

    /// An order for `spec` on GPU class `class` (10 USDC deposit and collateral, at most 3.60
    /// an hour: ten times the node's floor; an auction's bid window is 60 s); returns its id and
    /// terms.
    pub(crate) async fn order_spec(
        &self,
        spec: &RunSpec,
        class: u8,
        salt: u8,
        max_duration: u32,
        instant: bool,
    ) -> (B256, OrderParams) {
        self.order_spec_at(spec, &spec.data_uri(), class, salt, max_duration, instant)
            .await
    }

    /// [`Self::order_spec`] whose order names its spec at `uri`.
    pub(crate) async fn order_spec_at(
        &self,
        spec: &RunSpec,
        uri: &str,
        class: u8,
        salt: u8,
        max_duration: u32,
        instant: bool,
    ) -> (B256, OrderParams) {
        let p = OrderParams {
            specHash: spec.hash(),
            specURI: uri.to_owned(),
            token: self.usdc,
            deposit: U96::from(10 * USDC),
            maxPricePerSecond: U96::from(1_000_000_000_000_000u128),
            maxDuration: max_duration,
            bidWindow: 60,
            collateral: U96::from(10 * USDC),
            gpuClass: class,
            gpuCount: 1,
            vramGiB: 8,
            cpuCores: 1,
            ramGiB: 1,
            jobKind: spec.workload.kind().code(),
            instant,
            salt: B256::repeat_byte(salt),
        };
        let id = p.order_id(self.tenant.from.expect("tenant"));
        send(Market::new(self.market, &self.tenant.provider).createOrder(p.clone()))
            .await
            .expect("order");
        (id, p)
    }

    pub(crate) async fn http(&self, path: &str) -> String {
        get_raw(&format!("http://127.0.0.1:{}{path}", self.port), None)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| e)
    }

    /// Wait (up to `secs`) until node `n`'s log says `needle`; on timeout fail naming `what`.
    pub(crate) async fn wait_log(&self, what: &str, needle: &str, n: u32, secs: u64) {
        eventually(
            what,
            secs,
            async || self.log(n).contains(needle),
            || self.log(n),
        )
        .await;
    }

    pub(crate) async fn wait_metric(&self, needle: &str, n: u32) {
        eventually(
            needle,
            60,
            async || self.http("/metrics").await.contains(needle),
            || self.log(n),
        )
        .await;
    }

    /// Wait until the node has polled the chain's current head.
    pub(crate) async fn wait_head(&self, n: u32) {
        let head = self.tenant.provider.get_block_number().await.expect("head");
        eventually(
            "the node to poll the head",
            60,
            async || {
                let m = self.http("/metrics").await;
                m.lines()
                    .find_map(|l| l.strip_prefix("gridlease_provider_head_block "))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .is_some_and(|h| h >= head)
            },
            || self.log(n),
        )
        .await;
    }

    /// The logs of `address` with event `sig` about `id` (topic 1).
    pub(crate) async fn logs_of(&self, address: Address, sig: B256, id: B256) -> Vec<Log> {
        logs(&self.tenant, address, sig, id).await
    }

    /// The one decoded event `E` of `address` about `id`.
    pub(crate) async fn event<E: SolEvent>(&self, address: Address, id: B256) -> (E, Log) {
        let logs = self.logs_of(address, E::SIGNATURE_HASH, id).await;
        assert_eq!(logs.len(), 1, "one {} for {id}", E::SIGNATURE);
        let e = E::decode_log(&logs[0].inner).expect("decodes").data;
        (e, logs[0].clone())
    }

    pub(crate) async fn timestamp(&self, log: &Log) -> u64 {
        let n = log.block_number.expect("mined");
        self.tenant
            .provider
            .get_block_by_number(n.into())
            .await
            .expect("rpc")
            .expect("block")
            .header
            .timestamp
    }

    /// The tenant's access to the result of lease `id` at this market's node (one request's).
    pub(crate) fn result_auth(&self, id: B256) -> String {
        gridlease_fetch::result_auth(
            &key(1),
            gridlease_testkit::market::venue(self.market),
            id,
            key(2).address(),
        )
        .expect("sign")
    }

    /// What the tenant downloads from the node for lease `id`.
    pub(crate) async fn download(&self, id: B256) -> Vec<u8> {
        let auth = self.result_auth(id);
        gridlease_fetch::Fetcher::devnet()
            .get(
                &format!("http://127.0.0.1:{}/results/{id}", self.port),
                Some(&auth),
            )
            .await
            .expect("the tenant downloads its result")
    }

    pub(crate) async fn count_logs(&self, address: Address, sig: B256, id: B256) -> usize {
        self.logs_of(address, sig, id).await.len()
    }

    /// Wait (up to 30 s) until node `n`'s log cursor `name` has reached block `block`.
    pub(crate) async fn wait_cursor(&self, name: &str, block: u64, n: u32) {
        eventually(
            &format!("the node's {name} cursor at block {block}"),
            30,
            async || cursor(&self.path(), name) >= block,
            || self.log(n),
        )
        .await;
    }

    /// Wait (up to `secs`) until order `id` has one bid on chain (node `n`'s log on failure).
    pub(crate) async fn wait_bid(&self, id: B256, n: u32, secs: u64) {
        eventually(
            "a bid on chain",
            secs,
            async || {
                self.count_logs(self.market, Market::BidPlaced::SIGNATURE_HASH, id)
                    .await
                    == 1
            },
            || self.log(n),
        )
        .await;
    }

    /// Wait (up to `secs`) until lease `id` has a result on chain; return its commitment
    /// (`keccak256(abi.encode(root, size))`, what the module stores).
    pub(crate) async fn result(&self, id: B256, n: u32, secs: u64) -> B256 {
        let r = Results::new(self.results, &self.tenant.provider);
        let mut commitment = B256::ZERO;
        eventually(
            "a result on chain",
            secs,
            async || {
                // (The chain may be restarting: an error is "not yet".)
                let Ok(res) = r.resultOf(id).call().await else {
                    return false;
                };
                commitment = res;
                res != B256::ZERO
            },
            || self.log(n),
        )
        .await;
        commitment
    }
}

impl Net {
    /// OFF-16: SIGTERM -> the node drains and exits 0.
    pub(crate) fn stop(&self, mut child: Node, n: u32) {
        let status = anvil::terminate(&mut child, Duration::from_secs(30));
        let _ = child.kill();
        let status = status.unwrap_or_else(|| panic!("the node stops on SIGTERM\n{}", self.log(n)));
        assert!(
            status.success(),
            "node exited with {status}\n{}",
            self.log(n)
        );
    }
}

pub(crate) fn cursor(dir: &Path, name: &str) -> u64 {
    // 0 until the node has created its store.
    let Ok(db) = rusqlite::Connection::open_with_flags(
        dir.join("data/state.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    db.query_row("SELECT block FROM cursors WHERE name = ?1", [name], |r| {
        r.get::<_, i64>(0)
    })
    .map_or(0, |b| b as u64)
}

/// GET `url` as a test reads the node's own API: the body of a success, else
/// `"<url> answered <status>: <body>"` (the node's refusals explain themselves in their bodies,
/// which a [`gridlease_fetch::Fetcher`] never reads).
pub(crate) async fn get_raw(url: &str, auth: Option<&str>) -> Result<Vec<u8>, String> {
    let mut req = alloy::transports::http::reqwest::Client::new().get(url);
    if let Some(a) = auth {
        req = req.header(gridlease_fetch::AUTH_HEADER, a);
    }
    let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        Ok(body.to_vec())
    } else {
        Err(format!(
            "{url} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        ))
    }
}
