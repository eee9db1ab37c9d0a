//! A local anvil node from `node_modules` on a free loopback port, stopped when dropped.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::{Context, Result, bail};

/// A running anvil.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
    block_time: u64,
    log: Option<PathBuf>,
}

/// Find the anvil binary: `$GRIDLEASE_ANVIL`, then `node_modules/.bin/anvil` in this directory or
/// any parent, then `anvil` on `PATH`.
pub fn find_anvil() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("GRIDLEASE_ANVIL") {
        return Ok(p.into());
    }
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        let candidate = d.join("node_modules/.bin/anvil");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("anvil"))
        .find(|p| p.is_file());
    on_path.context(
        "anvil not found: run `npm ci` in the repository (it installs @foundry-rs/anvil-linux-amd64), \
         or set GRIDLEASE_ANVIL=/path/to/anvil",
    )
}

impl Anvil {
    /// Start anvil on 127.0.0.1 with a free port and `block_time` seconds per block (0: a block
    /// per transaction). Its output goes to `log` (or is discarded).
    pub fn start(block_time: u64, log: Option<&Path>) -> Result<Self> {
        let (child, port) = spawn(0, block_time, log, None)?;
        Ok(Self {
            child,
            port,
            block_time,
            log: log.map(Path::to_path_buf),
        })
    }

    /// Stop the node for `down` and start it again on the same port with the state it had (an
    /// RPC node restarted mid-run: clients see refused connections, then the same chain).
    pub async fn restart(&mut self, down: Duration) -> Result<()> {
        let state = self.save_and_kill().await?;
        tokio::time::sleep(down).await;
        self.respawn(&state)
    }

    /// Stop the node with its chain saved, for as long as the caller wants it down (a test
    /// watching what clients do meanwhile); [`Stopped::start`] starts it again where it was.
    pub async fn stop_saving(mut self) -> Result<Stopped> {
        let state = self.save_and_kill().await?;
        Ok(Stopped { anvil: self, state })
    }

    /// Save the chain to a file (`anvil_dumpState`, unpacked) and kill the node.
    async fn save_and_kill(&mut self) -> Result<StateFile> {
        let p = alloy::providers::ProviderBuilder::new().connect_http(self.url().parse()?);
        // No block is mined between the dump and the kill: a block mined there would be missing
        // after the restart, a reorg this restart does not mean to stage. What waits in the pool
        // is lost, as on a restarted node.
        let stop: [(&str, serde_json::Value); 2] = [
            ("evm_setIntervalMining", serde_json::json!([0])),
            ("evm_setAutomine", serde_json::json!([false])),
        ];
        for (method, params) in stop {
            let _: serde_json::Value =
                alloy::providers::Provider::raw_request(&p, method.into(), params)
                    .await
                    .with_context(|| format!("{method} (to stop mining before the dump)"))?;
        }
        let dump: String =
            alloy::providers::Provider::raw_request(&p, "anvil_dumpState".into(), ())
                .await
                .context("anvil_dumpState")?;
        let gz = alloy::hex::decode(dump.trim_start_matches("0x")).context("state dump")?;
        let state = StateFile(std::env::temp_dir().join(format!(
            "gridlease-anvil-{}-{}.json",
            std::process::id(),
            self.port
        )));
        let mut gunzip = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&state.0)?)
            .spawn()
            .context("gzip (to unpack anvil's state) did not start")?;
        gunzip.stdin.take().context("gzip stdin")?.write_all(&gz)?;
        if !gunzip.wait()?.success() {
            bail!("gzip could not unpack anvil's state");
        }
        self.kill();
        Ok(state)
    }

    /// Start the killed node again on its port, block time and log, from `state`.
    fn respawn(&mut self, state: &StateFile) -> Result<()> {
        // The log goes on after the restart's output.
        (self.child, self.port) = spawn(
            self.port,
            self.block_time,
            self.log.as_deref(),
            Some(&state.0),
        )?;
        Ok(())
    }

    /// The HTTP endpoint.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop it and wait for it to exit.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start anvil on 127.0.0.1:`port` (0: a free one), loading `state` if given; returns it and
/// its port once it listens. Its output is appended to `log` (or discarded).
fn spawn(
    port: u16,
    block_time: u64,
    log: Option<&Path>,
    state: Option<&Path>,
) -> Result<(Child, u16)> {
    let bin = find_anvil()?;
    let mut cmd = Command::new(&bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--hardfork", "cancun"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if block_time > 0 {
        cmd.args(["--block-time", &block_time.to_string()]);
    }
    if let Some(state) = state {
        cmd.arg("--load-state").arg(state);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("anvil has no stdout")?;
    let mut log_file = match log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot write {}", p.display()))?,
        ),
        None => None,
    };
    // Read until "Listening on 127.0.0.1:PORT", then keep draining (anvil logs every
    // transaction; a full pipe would stall it).
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = log_file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if let Some(addr) = line.strip_prefix("Listening on ")
                && let Some(sender) = tx.take()
            {
                let port = addr
                    .trim()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse::<u16>().ok());
                let _ = sender.send(port);
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(port)) => Ok((child, port)),
        _ => {
            let _ = child.kill();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            bail!("anvil did not start: {}", err.trim())
        }
    }
}

/// An anvil stopped by [`Anvil::stop_saving`]: its chain saved, its port and block time kept
/// for [`Stopped::start`].
#[derive(Debug)]
pub struct Stopped {
    anvil: Anvil,
    state: StateFile,
}

impl Stopped {
    /// Start it again on the same port and block time, with the chain it had.
    pub fn start(mut self) -> Result<Anvil> {
        self.anvil.respawn(&self.state)?;
        Ok(self.anvil)
    }
}

/// A saved chain, removed when dropped.
#[derive(Debug)]
struct StateFile(PathBuf);

impl Drop for StateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A free TCP port on 127.0.0.1 (for a daemon's HTTP API in tests, benches and the demo).
///
/// The port is free now, and the daemon binds it later: in between, any socket that asks the
/// kernel for a port could be given it. So it is taken below the kernel's ephemeral range
/// (`ip_local_port_range`), which no outgoing connection and no `bind(:0)` of any process draws
/// from, and from a window that starts at an offset hashed from this process's id, so the test
/// processes that nextest runs side by side draw different ports. (With `bind(:0)` a node's port
/// was once taken by another test's connection before the node bound it.)
pub fn free_port() -> std::io::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if high > LOW + 1_000 && high <= 65_536 {
        let span = high - LOW;
        let start = std::process::id().wrapping_mul(2_654_435_761) % span;
        for _ in 0..span {
            let port = LOW + (start + NEXT.fetch_add(1, Relaxed)) % span;
            let port = u16::try_from(port).expect("below 65536");
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// Move anvil's clock on by `secs` and mine a block at the new time.
pub async fn warp(p: &impl alloy::providers::Provider, secs: u64) -> Result<()> {
    let _: serde_json::Value = p.raw_request("evm_increaseTime".into(), (secs,)).await?;
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await?;
    Ok(())
}

/// Mine a block at chain time `timestamp` exactly (later blocks go on from there at wall-clock
/// pace): unlike [`warp`], the wall time a test spent before the call does not add to it.
pub async fn warp_to(p: &impl alloy::providers::Provider, timestamp: u64) -> Result<()> {
    let _: serde_json::Value = p
        .raw_request("evm_setNextBlockTimestamp".into(), (timestamp,))
        .await?;
    let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await?;
    Ok(())
}

/// Send SIGTERM to a daemon we started and wait up to `within` for it to exit; `None` if it
/// did not.
pub fn terminate(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let Ok(pid) = i32::try_from(child.id()) else {
        return None;
    };
    // SAFETY: kill(2) on the pid of our own, not yet reaped, child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let t0 = std::time::Instant::now();
    while t0.elapsed() < within {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The keys anvil funds by default (its well-known test mnemonic), index 0..10.
pub const ANVIL_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// A binary of this workspace, next to the running executable: `target/<profile>/<name>` from a
/// binary, a test (`deps/`) or an example (`examples/`). The error says how to build it.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is not built: run `cargo build --workspace --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// Resident memory of process `pid` now and at its peak (`VmRSS`, `VmHWM`), KiB (0 when unknown).
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
