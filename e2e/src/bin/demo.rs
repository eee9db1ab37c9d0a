//! `gridlease-demo`: the whole market on a local devnet, as real processes, in about two minutes.
//!
//! anvil + the deployed suite + four provider nodes (`alpha` rtx4090, `beta` a100-80g, `gamma` h100
//! that posts wrong products, `delta` l40s that withholds its results; CPU-run built-in jobs where
//! there is no GPU) + one keeper. The tenant, through the `gridlease` CLI, submits a container job
//! and three verifiable `matmul_i8` jobs, watches them, downloads and verifies the results;
//! `gamma`'s wrong product is proven by the tenant itself (free, inside its priority), `delta`'s
//! withheld result is challenged and proven unavailable by the keeper (for its fee, after the
//! tenant's priority). Ends with a summary table (jobs, prices, times, who was paid and refunded
//! what, which fault was proven by whom; gas, net and slashes per account), stops every process it
//! started and exits 0 (1 on any failure or on SIGINT/SIGTERM, with the logs' tails; the processes
//! it started are stopped either way). See [`gridlease_e2e::scenario`] for the story.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Parser;
use gridlease_e2e::{
    market::{Market, Options},
    scenario,
    summary::{self, Balances},
};

#[derive(Parser)]
#[command(name = "gridlease-demo", version, about)]
struct Args {
    /// Where configs, keystores, logs and summary.json go (default: a new temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seconds between blocks.
    #[arg(long, default_value_t = 1)]
    block_time: u64,
    /// After the summary, leave the market running and serve the web console on it
    /// (`gridlease console`; needs `console/dist`, which `scripts/demo.sh --keep` builds) until
    /// Ctrl-C, so a person can click through it with a browser wallet.
    #[arg(long)]
    keep: bool,
}

fn say(s: &str) {
    println!("{s}");
}

async fn demo(m: &mut Market, keep: bool) -> Result<()> {
    say(&format!(
        "market up at {} (first block {}):",
        m.rpc(),
        m.first_block
    ));
    for (p, d) in m.plans.iter().zip(&m.providers) {
        say(&format!(
            "  provider {:<6} {:<9} any {} / {} {} USDC per GPU-hour  http://127.0.0.1:{}/metrics{}",
            p.name,
            p.class,
            p.any_per_hour,
            p.class,
            p.class_per_hour,
            d.port,
            p.conduct.label(),
        ));
    }
    if let Some(k) = &m.keeper {
        say(&format!(
            "  keeper   {}  http://127.0.0.1:{}/metrics",
            k.address, k.port
        ));
    }
    let before = Balances::read(m).await?;
    let jobs = scenario::run(m, &say).await?;
    let s = summary::read(m, &jobs, &before).await?;
    say("\n== summary\n");
    say(&s.table());
    let path = m.dir.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&s)? + "\n")?;
    say(&format!(
        "written {}; logs in {}",
        path.display(),
        m.dir.display()
    ));
    if !keep {
        say(
            "(./scripts/demo.sh --keep leaves this market running and serves the web console on it)",
        );
        return m.stop();
    }
    serve_console(m).await
}

/// `gridlease console` on the running market until Ctrl-C or SIGTERM, with what a person needs
/// to connect a browser wallet to the devnet.
async fn serve_console(m: &Market) -> Result<()> {
    use anyhow::Context as _;
    let log = m.dir.join("console.log");
    let mut child = tokio::process::Command::new(gridlease_e2e::bin("gridlease")?)
        .args(["--rpc", m.rpc(), "--deployments"])
        .arg(&m.devnet.info.deployments)
        .args(["console", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start gridlease console")?;
    let stdout = child.stdout.take().context("the console's output")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = loop {
        match lines.next_line().await? {
            Some(l) if l.starts_with("console") => {
                break l.split_whitespace().nth(1).unwrap_or_default().to_owned();
            }
            Some(_) => {}
            None => anyhow::bail!(
                "gridlease console stopped: {} (is console/dist built? `cd console && npm ci && npm run build`)",
                std::fs::read_to_string(&log).unwrap_or_default().trim()
            ),
        }
    };
    say(&format!(
        "\n== the market keeps running; Ctrl-C stops it\n\nconsole  {url}\nchain    {} (id {})\ntenant   {} (devnet key {}; import it in a browser wallet to act as the tenant)",
        m.rpc(),
        m.gov.chain_id,
        m.account("tenant"),
        gridlease_e2e::market::key_hex("tenant")?,
    ));
    // From here a signal is how the demo ends (see `main`); the console stopping is an error.
    SERVING.store(true, std::sync::atomic::Ordering::SeqCst);
    let s = child.wait().await;
    SERVING.store(false, std::sync::atomic::Ordering::SeqCst);
    anyhow::bail!("gridlease console exited ({s:?}): see {}", log.display())
}

/// Set while `--keep` serves the console: a signal then ends the demo as it should.
static SERVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("gridlease-demo-{}", std::process::id()))
    });
    say(&format!(
        "== starting anvil, the contracts, {} provider nodes and a keeper in {}",
        Options::default().providers.len(),
        dir.display()
    ));
    let opts = Options {
        block_time: args.block_time,
        ..Options::default()
    };
    match &opts.engine {
        Some(e) => say(&format!(
            "   container jobs run on the engine at {} (image {}), hardened",
            e.socket.display(),
            e.image
        )),
        None => say(
            "   container jobs run as local processes (no engine: `eval \"$(scripts/podman.sh start)\"` first to run them in Podman)",
        ),
    }
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot watch for SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A signal while starting drops the half-built market: what it started is killed on drop.
    let started = tokio::select! {
        r = Market::start(&dir, &opts) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
    };
    let mut m = match started {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: the market did not start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        r = demo(&mut m, args.keep) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = term.recv() => Err(anyhow::anyhow!("terminated")),
    };
    // With --keep, the market ran until a signal: the end the user asked for.
    let outcome = match outcome {
        Err(_) if SERVING.load(std::sync::atomic::Ordering::SeqCst) => {
            say("stopping the market");
            m.stop()
        }
        other => other,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            for d in m.providers.iter().chain(m.keeper.as_ref()) {
                eprintln!("--- last lines of {} ({})", d.name, d.log.display());
                eprintln!("{}", d.log_tail(15));
            }
            // Every daemon we started stops (SIGTERM, then SIGKILL on drop), then anvil.
            let _ = m.stop();
            ExitCode::FAILURE
        }
    }
}
