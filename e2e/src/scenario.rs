//! The demo scenario, as a tenant sees it through the `gridlease` CLI, against the market of
//! [`crate::market`]: every wait is for a condition on chain, with a deadline.
//!
//! 1. A `matmul_i8` job for an RTX 4090 (instant order): only `alpha` has one; it wins with its
//!    first bid, runs the job, posts the result; the tenant's CLI downloads it, verifies it
//!    (Merkle root + Freivalds) and accepts it, which closes the lease at once.
//! 2. A container job (auctioned, any GPU): every node bids its `any` price, the keeper awards the
//!    lowest after the bid window, the winner runs it and posts its output, which only the tenant
//!    may download (signed request).
//! 3. A `matmul_i8` job for an H100 (instant): only `gamma` has one, and `gamma` cheats. The
//!    tenant's check says WRONG; the keeper finds it on its own, proves it on chain with one
//!    element, and `gamma`'s collateral is slashed: half to the tenant, a share to the keeper.
//! 4. The chain is fast-forwarded past the challenge window; the container lease is closed: by
//!    the keeper as completed when its fee pays for the gas, else by `beta`'s node, which collects
//!    the pay held since the result and frees its collateral (here the keeper settled the lease
//!    while it ran, so what is left is too little for its fee).

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use anyhow::{Context, Result, bail};
use gridlease_bindings::{Market as MarketC, Results};
use gridlease_core::chain::classify;
use gridlease_deploy::anvil;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::market::Market;

/// A job the scenario submitted.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// Its name in the demo.
    pub name: String,
    /// Order / lease id.
    pub id: B256,
}

/// The job specs of the demo, by name.
pub fn specs() -> [(&'static str, String); 3] {
    let matmul = |gpu: &str, seed: u32| {
        format!(
            r#"name = "matmul on an {gpu}"
kind = "matmul_i8"

[resources]
gpu = "{gpu}"
gpu_count = 1
vram_gib = 1
cpu_cores = 1
ram_gib = 1

[price]
max_per_hour = "2.00"
max_duration = "10m"
bid_window = "30s"
collateral = "10"
instant = true
token = "USDC"

[matmul]
n = 256
seed = {seed}
"#
        )
    };
    let container = r#"name = "render frames"
kind = "container"

[resources]
gpu = "any"
gpu_count = 1
vram_gib = 1
cpu_cores = 1
ram_gib = 1

[price]
max_per_hour = "1.00"
max_duration = "10m"
bid_window = "8s"
collateral = "10"
instant = false
token = "USDC"

[container]
image = "docker.io/library/busybox:1.36"
command = ["sh", "-c", "for i in $(seq 1 15); do echo frame $i rendered; sleep 1; done"]
"#;
    [
        ("matmul-rtx4090", matmul("rtx4090", 7)),
        ("container", container.to_owned()),
        ("matmul-h100", matmul("h100", 9)),
    ]
}

/// Run the tenant CLI with `args`, echoing what it prints under `[label]`; its stdout, and then
/// its stderr (progress lines).
pub async fn cli(m: &Market, label: &str, args: &[&str], say: &dyn Fn(&str)) -> Result<String> {
    let mut cmd = tokio::process::Command::from(m.cli()?);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot start gridlease")?;
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        bail!("gridlease: no pipes");
    };
    let (mut out, mut err) = (BufReader::new(out).lines(), BufReader::new(err).lines());
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            l = out.next_line(), if out_open => match l? {
                Some(l) => {
                    say(&format!("  [{label}] {l}"));
                    stdout += &l;
                    stdout.push('\n');
                }
                None => out_open = false,
            },
            l = err.next_line(), if err_open => match l? {
                Some(l) => {
                    say(&format!("  [{label}] {l}"));
                    stderr += &l;
                    stderr.push('\n');
                }
                None => err_open = false,
            },
        }
    }
    let status = child.wait().await?;
    if !status.success() {
        bail!("gridlease {} failed ({status}): {stderr}", args.join(" "));
    }
    Ok(stdout + &stderr)
}

/// Write `spec` to `<dir>/<name>.toml` and submit it with the tenant CLI (progress echoed under
/// `[name]`); the order id it printed.
pub async fn submit(m: &Market, name: &str, spec: &str, say: &dyn Fn(&str)) -> Result<B256> {
    let file = format!("{name}.toml");
    std::fs::write(m.dir.join(&file), spec)?;
    let out = cli(m, name, &["submit", &file], say).await?;
    out.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("submit printed no order id: {out}"))
}

/// Wait up to `within` for `done` to give `Some`, polling every 250 ms.
pub async fn until<T, F, Fut>(what: &str, within: Duration, mut done: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let t0 = Instant::now();
    loop {
        if let Some(v) = done().await? {
            return Ok(v);
        }
        if t0.elapsed() > within {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Run the scenario on `m`; `say` prints progress. Returns the jobs it submitted.
pub async fn run(m: &Market, say: &dyn Fn(&str)) -> Result<Vec<Submitted>> {
    let specs = specs();
    let spec = |name: &str| {
        specs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    // The RTX 4090 job is submitted with --wait below: its file is written here.
    std::fs::write(m.dir.join("matmul-rtx4090.toml"), spec("matmul-rtx4090"))?;
    let market = MarketC::new(m.deployments.address("Market")?, &m.gov.provider);
    let results = Results::new(m.deployments.address("Results")?, &m.gov.provider);
    let submit = async |name: &str| submit(m, name, &spec(name), say).await;

    say("\n== 1. tenant: a container job, auctioned among all providers (8 s bid window)");
    let container = submit("container").await?;
    say("\n== 2. tenant: a matmul_i8 job for an H100 (instant order; only gamma has one)");
    let cheat = submit("matmul-h100").await?;
    say(
        "\n== 3. tenant: a matmul_i8 job for an RTX 4090 (instant order), followed until verified and accepted",
    );
    let out = cli(
        m,
        "matmul-rtx4090",
        &[
            "submit",
            "matmul-rtx4090.toml",
            "--wait",
            "--accept",
            "--timeout",
            "3m",
        ],
        say,
    )
    .await?;
    let matmul: B256 = out
        .lines()
        .find_map(|l| l.split("ordered: ").nth(1)?.split(' ').next()?.parse().ok())
        .with_context(|| format!("submit --wait printed no order id: {out}"))?;
    if !out.contains("verified and accepted") {
        bail!("the RTX 4090 job was not verified and accepted: {out}");
    }

    say("\n== 4. the container job: award after the bid window, run, result");
    let posted = async |id: B256| -> Result<Option<()>> {
        let r = results.resultOf(id).call().await.map_err(classify)?;
        Ok((r.postedAt.to::<u64>() != 0).then_some(()))
    };
    until(
        "the container job's result",
        Duration::from_secs(180),
        || posted(container),
    )
    .await?;
    let job = market.getJob(container).call().await.map_err(classify)?;
    say(&format!(
        "  awarded to {} (lowest bid); result posted",
        m.provider_name(job.provider)
    ));
    cli(m, "container", &["result", &container.to_string()], say).await?;

    say("\n== 5. the H100 job: gamma posts a wrong product; the keeper proves it");
    until("gamma's result", Duration::from_secs(120), || posted(cheat)).await?;
    cli(m, "matmul-h100", &["result", &cheat.to_string()], say).await?;
    let closed = async |id: B256| -> Result<Option<()>> {
        let j = market.getJob(id).call().await.map_err(classify)?;
        Ok((j.status == 3).then_some(()))
    };
    until("the keeper's fraud proof", Duration::from_secs(120), || {
        closed(cheat)
    })
    .await?;
    cli(m, "matmul-h100", &["status", &cheat.to_string()], say).await?;

    let window = results.challengeWindow().call().await.map_err(classify)?;
    say(&format!(
        "\n== 6. fast-forward the devnet {} s past the challenge window: the container lease is closed (by the keeper when its fee pays, else by beta's node, which collects the held pay)",
        window.to::<u64>() + 60
    ));
    anvil::warp(&m.gov.provider, window.to::<u64>() + 60).await?;
    until(
        "the close of the container lease",
        Duration::from_secs(120),
        || closed(container),
    )
    .await?;
    cli(m, "container", &["status", &container.to_string()], say).await?;

    Ok(vec![
        Submitted {
            name: "matmul-rtx4090".into(),
            id: matmul,
        },
        Submitted {
            name: "container".into(),
            id: container,
        },
        Submitted {
            name: "matmul-h100".into(),
            id: cheat,
        },
    ])
}
