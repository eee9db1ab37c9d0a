//! The demo scenario, as a tenant sees it through the `gridlease` CLI, against the market of
//! [`crate::market`]: every wait is for a condition on chain, with a deadline. Protocol v2
//! (`docs/protocol.md`): a batch lease is paid for its result once that result stands, and a
//! fault's victim has the first claim on proving it.
//!
//! 1. A container job (auctioned, any GPU): every node bids its `any` price, the keeper awards the
//!    lowest after the bid window, the winner acknowledges the lease, runs the job and posts its
//!    output, which only the tenant may download, and its logs (`gridlease logs`), which only the
//!    tenant may read (one signed access per request).
//! 2. A `matmul_i8` job for an H100 (instant order): only `gamma` has one, and `gamma` cheats. The
//!    tenant's check says WRONG and the tenant proves it itself (`gridlease result --prove`):
//!    inside its `tenantPriority` the proof earns nobody a fee, so the whole escrow comes back, and
//!    `gamma`'s collateral is slashed. The keeper found the wrong product too, but a third party
//!    earns its fee only after the tenant's priority, so it never races the victim for it.
//! 3. A `matmul_i8` job for an L40S (instant): only `delta` has one, and `delta` withholds its
//!    results: it posts the true commitment and serves nothing. The tenant does not prove this
//!    one: the keeper, which downloads every public result, cannot get it and bonds a
//!    data-availability challenge of one chunk; `delta` does not reveal it. The devnet is
//!    fast-forwarded past the response window and the tenant's priority, the keeper proves the
//!    result unavailable and earns its fault fee out of the tenant's refund; `delta`'s collateral
//!    is slashed. (A tenant that looks can prove it itself, free, once the response window ends.)
//! 4. A `matmul_i8` job for an RTX 4090 (instant): only `alpha` has one; the tenant follows it with
//!    `submit --wait --accept` until the result is verified (Merkle root + Freivalds) and accepted,
//!    which closes the lease at once and pays `alpha` (its collateral stays held for the fault
//!    horizon: faults on an accepted result stay provable).
//! 5. The devnet is fast-forwarded past the challenge window: the container lease is closed as
//!    completed (by the keeper when its fee pays for the gas, else by `beta`'s node), which pays
//!    `beta` the pay held since its result and frees its collateral.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use alloy::{primitives::B256, rpc::types::Log, sol_types::SolEvent};
use anyhow::{Context, Result, bail};
use gridlease_bindings::{Market as MarketC, MarketLens, Results};
use gridlease_chain::classify;
use gridlease_deploy::anvil;
use gridlease_primitives::units::format_duration;
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

/// The resources of the demo's container jobs and service: one GPU of any class, the least of
/// the rest.
const ANY_GPU: &str = r#"[resources]
gpu = "any"
gpu_count = 1
vram_gib = 1
cpu_cores = 1
ram_gib = 1
"#;

/// The job specs of the demo, by name.
/// The container job runs `image` (busybox): Docker Hub's, or on a local engine the offline image
/// `scripts/podman.sh` imports.
pub fn specs(image: &str) -> [(&'static str, String); 4] {
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
    let container = format!(
        r#"name = "render frames"
kind = "container"

{ANY_GPU}
[price]
max_per_hour = "1.00"
max_duration = "10m"
bid_window = "8s"
collateral = "10"
instant = false
token = "USDC"

[container]
image = "IMAGE"
command = ["sh", "-c", "for i in $(seq 1 15); do echo frame $i rendered; echo rendering $i/15 >&2; sleep 1; done"]
"#
    )
    .replace("IMAGE", image);
    [
        ("matmul-rtx4090", matmul("rtx4090", 7)),
        ("container", container),
        ("matmul-h100", matmul("h100", 9)),
        ("matmul-l40s", matmul("l40s", 11)),
    ]
}

/// While the container job runs: a command in its container, through `gridlease shell` (a session
/// its tenant alone may open, ACC-02), once the lease is awarded and the container started.
async fn look_inside(m: &Market, id: B256, say: &dyn Fn(&str)) -> Result<()> {
    say(
        "\n== 1b. tenant: a look inside the container job while it runs (`gridlease shell`, tenant only)",
    );
    if m.engine.is_none() {
        say(
            "  skipped: no container engine here, so container jobs run as local processes, which offer no shell",
        );
        return Ok(());
    }
    let script =
        "echo \"in container $(hostname) as uid $(id -u); its processes:\"; ps -o pid,args";
    let lens = MarketLens::new(m.deployments.address("MarketLens")?, &m.gov.provider);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        // Quiet until it works: before the award the lease has no node, and before its start
        // the node says the job is not running. The demo's providers register no node URL, so
        // the winner's node is named.
        let provider = lens.getJob(id).call().await.map_err(classify)?.provider;
        let Some(node) = m.providers.iter().find(|d| d.address == provider) else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let node = format!("http://127.0.0.1:{}", node.port);
        let args = [
            "shell",
            &id.to_string(),
            "--node",
            &node,
            "--",
            "sh",
            "-c",
            script,
        ];
        let (ok, out) = cli_status(m, "container", &args, &|_| {}).await?;
        if ok {
            say(&format!("  $ gridlease shell {id} -- sh -c '{script}'"));
            for l in out.lines() {
                say(&format!("  [container] {l}"));
            }
            return Ok(());
        }
        if posted(m, id).await? {
            say("  the job finished before its container could be reached; its logs follow below");
            return Ok(());
        }
        last = out;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("no shell in the running container job within 90 s: {last}")
}

/// A web service behind its node's TLS front (ACC-03): ordered with `tls = true`, its key bound on
/// chain by the node that won it, reached through `gridlease connect` (which talks only to that
/// key), then ended by its tenant, who pays for the seconds it ran. Its lease id (None: skipped).
async fn tls_service(m: &Market, say: &dyn Fn(&str)) -> Result<Option<B256>> {
    say(
        "\n== 1c. tenant: a web service over TLS, its key bound on chain (`gridlease connect`, anyone)",
    );
    let Some(engine) = &m.engine else {
        say("  skipped: no container engine here to run the service's web server in");
        return Ok(None);
    };
    let port = anvil::free_port()?;
    let spec = format!(
        r#"name = "web service over tls"
kind = "service"

{ANY_GPU}
[price]
max_per_hour = "1.00"
max_duration = "1h"
bid_window = "30s"
deposit = "0.5"
collateral = "10"
instant = true
token = "USDC"

[service]
image = "{image}"
command = ["sh", "-c", "mkdir -p /tmp/www && echo 'hello from a gridlease service, over TLS' > /tmp/www/index.html && exec httpd -f -p \"$PORT\" -h /tmp/www"]
port = {port}
tls = true
"#,
        image = engine.image
    );
    let id = submit(m, "service", &spec, say).await?;
    let results = m.deployments.address("Results")?;
    let (bound, _) = event::<Results::CertificateBound>(
        m,
        results,
        id,
        "the service's TLS key bound on chain",
        Duration::from_secs(90),
    )
    .await?;
    let pin = gridlease_fetch::service::curl_pin(bound.spkiHash);
    say(&format!(
        "  the node that won it bound its TLS key to the lease: {pin}"
    ));
    let local = anvil::free_port()?;
    let listen = format!("127.0.0.1:{local}");
    let mut connect = tokio::process::Command::from(m.cli()?);
    connect
        .args([
            "connect",
            &id.to_string(),
            "--host",
            "127.0.0.1",
            "--listen",
            &listen,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = connect.spawn().context("cannot start gridlease connect")?;
    say(&format!(
        "  $ gridlease connect {id} --listen {listen}   (and: curl -k --pinnedpubkey {pin} https://127.0.0.1:{port}/)"
    ));
    let page = until(
        "the service's page through gridlease connect",
        Duration::from_secs(60),
        async || Ok(http_get(&listen).await.ok().filter(|p| p.contains(" 200 "))),
    )
    .await;
    let _ = child.kill().await;
    let page = page?;
    for l in page
        .lines()
        .filter(|l| l.starts_with("HTTP/") || l.contains("hello"))
    {
        say(&format!("  [http://{listen}/] {l}"));
    }
    say("  the tenant ends the service lease: it pays the seconds it ran");
    cli(m, "service", &["close", &id.to_string()], say).await?;
    Ok(Some(id))
}

/// `GET /` from `addr` over plain HTTP/1.0: the whole answer.
async fn http_get(addr: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await?;
    c.write_all(b"GET / HTTP/1.0\r\nHost: service\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Run the tenant CLI with `args`, echoing what it prints under `[label]`: whether it succeeded,
/// and its stdout followed by its stderr (progress lines, or the error).
pub async fn cli_status(
    m: &Market,
    label: &str,
    args: &[&str],
    say: &dyn Fn(&str),
) -> Result<(bool, String)> {
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
    Ok((status.success(), stdout + &stderr))
}

/// [`cli_status`] that must succeed: its output.
pub async fn cli(m: &Market, label: &str, args: &[&str], say: &dyn Fn(&str)) -> Result<String> {
    match cli_status(m, label, args, say).await? {
        (true, out) => Ok(out),
        (false, out) => bail!("gridlease {} failed: {out}", args.join(" ")),
    }
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

/// Wait up to `within` for the first event `E` of `address` about `id` (topic 1).
pub async fn event<E: SolEvent>(
    m: &Market,
    address: alloy::primitives::Address,
    id: B256,
    what: &str,
    within: Duration,
) -> Result<(E, Log)> {
    until(what, within, async || {
        Ok(m.logs(address, E::SIGNATURE_HASH, id)
            .await?
            .into_iter()
            .find_map(|l| Some((E::decode_log(&l.inner).ok()?.data, l))))
    })
    .await
}

/// Whether lease `id` has a result on chain (`Results.resultOf` is its commitment, zero before).
pub async fn posted(m: &Market, id: B256) -> Result<bool> {
    let results = Results::new(m.deployments.address("Results")?, &m.gov.provider);
    Ok(results.resultOf(id).call().await.map_err(classify)? != B256::ZERO)
}

/// Run the scenario on `m`; `say` prints progress. Returns the jobs it submitted.
pub async fn run(m: &Market, say: &dyn Fn(&str)) -> Result<Vec<Submitted>> {
    let specs = specs(
        m.engine
            .as_ref()
            .map_or("docker.io/library/busybox:1.36", |e| e.image.as_str()),
    );
    let spec = |name: &str| {
        specs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| text.clone())
            .unwrap_or_default()
    };
    // The RTX 4090 job is submitted with --wait below: its file is written here.
    std::fs::write(m.dir.join("matmul-rtx4090.toml"), spec("matmul-rtx4090"))?;
    let market = m.deployments.address("Market")?;
    let lens = MarketLens::new(m.deployments.address("MarketLens")?, &m.gov.provider);
    let results_addr = m.deployments.address("Results")?;
    let results = Results::new(results_addr, &m.gov.provider);
    let submit = async |name: &str| submit(m, name, &spec(name), say).await;
    let result_of = async |what: &str, id: B256, within: u64| {
        until(what, Duration::from_secs(within), async || {
            Ok(posted(m, id).await?.then_some(()))
        })
        .await
    };
    let priority = u64::from(results.tenantPriority().call().await.map_err(classify)?);
    let response = u64::from(results.responseWindow().call().await.map_err(classify)?);
    let window = results
        .challengeWindow()
        .call()
        .await
        .map_err(classify)?
        .to::<u64>();

    say("\n== 1. tenant: a container job, auctioned among all providers (8 s bid window)");
    let container = submit("container").await?;
    say("\n== 2. tenant: a matmul_i8 job for an H100 (instant order; only gamma has one)");
    let cheat = submit("matmul-h100").await?;
    say("\n== 3. tenant: a matmul_i8 job for an L40S (instant order; only delta has one)");
    let withheld = submit("matmul-l40s").await?;
    look_inside(m, container, say).await?;
    let service = tls_service(m, say).await?;
    say(
        "\n== 4. tenant: a matmul_i8 job for an RTX 4090 (instant order), followed until verified and accepted",
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

    say(
        "\n== 5. the container job: awarded after the bid window, acknowledged, run; its result is held for the challenge window",
    );
    result_of("the container job's result", container, 180).await?;
    let job = lens.getJob(container).call().await.map_err(classify)?;
    say(&format!(
        "  awarded to {} (lowest bid); result posted",
        m.provider_name(job.provider)
    ));
    cli(m, "container", &["result", &container.to_string()], say).await?;
    say(
        "  its logs (its standard error), which beta's node hands only to the tenant, one signed access per read:",
    );
    cli(m, "container", &["logs", &container.to_string()], say).await?;

    say(&format!(
        "\n== 6. the H100 job: gamma posts a wrong product; the tenant checks it and proves it itself. Inside its {} priority the proof is free: no finder's fee, the whole escrow back (the keeper finds it wrong too, but earns a fee only after the tenant's priority, so it waits)",
        format_duration(priority)
    ));
    result_of("gamma's result", cheat, 120).await?;
    let out = cli(
        m,
        "matmul-h100",
        &["result", &cheat.to_string(), "--prove"],
        say,
    )
    .await?;
    if !out.contains("WRONG") {
        bail!("the tenant's check did not find gamma's product wrong: {out}");
    }
    event::<MarketC::LeaseFaulted>(
        m,
        market,
        cheat,
        "the tenant's fraud proof",
        Duration::from_secs(60),
    )
    .await?;

    say(
        "\n== 7. the L40S job: delta posts its commitment but serves nothing; the keeper, which downloads every public result, cannot get it and challenges a chunk (bonding ETH); delta does not reveal it",
    );
    result_of("delta's result", withheld, 120).await?;
    let (challenge, _) = event::<Results::ChunkChallenged>(
        m,
        results_addr,
        withheld,
        "the keeper's challenge of delta's result",
        Duration::from_secs(120),
    )
    .await?;
    say(&format!(
        "  chunk {} challenged by {}: it must be revealed on chain within {}",
        challenge.index,
        if challenge.challenger == m.account("keeper") {
            "the keeper".to_owned()
        } else {
            challenge.challenger.to_string()
        },
        format_duration(response)
    ));
    say("  the tenant's own download fails too; its CLI says what can be done about it:");
    let (ok, _) = cli_status(m, "matmul-l40s", &["result", &withheld.to_string()], say).await?;
    if ok {
        bail!("the tenant downloaded delta's result, which delta withholds");
    }

    let skip = response + priority + 60;
    say(&format!(
        "\n== 8. fast-forward the devnet {skip} s: past the response window ({}) and the tenant's priority ({}). The tenant left this fault to the keeper: it proves the result unavailable and earns its fault fee out of the tenant's refund; delta's collateral is slashed",
        format_duration(response),
        format_duration(priority)
    ));
    anvil::warp(&m.gov.provider, skip).await?;
    event::<MarketC::LeaseFaulted>(
        m,
        market,
        withheld,
        "the keeper's unavailability proof",
        Duration::from_secs(120),
    )
    .await?;
    cli(m, "matmul-l40s", &["status", &withheld.to_string()], say).await?;

    say(&format!(
        "\n== 9. fast-forward the devnet {} s past the challenge window: the container lease is closed as completed (by the keeper when its fee pays, else by beta's node), which pays beta the pay held since its result",
        window + 60
    ));
    anvil::warp(&m.gov.provider, window + 60).await?;
    event::<MarketC::LeaseClosed>(
        m,
        market,
        container,
        "the close of the container lease",
        Duration::from_secs(120),
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
        Submitted {
            name: "matmul-l40s".into(),
            id: withheld,
        },
    ]
    .into_iter()
    .chain(service.map(|id| Submitted {
        name: "service (tls)".into(),
        id,
    }))
    .collect())
}
