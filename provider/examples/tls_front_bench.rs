//! The TLS front of a service lease (ACC-03, `provider/src/front.rs`) against the service reached
//! directly: `scripts/bench-tls.sh` (or `cargo run --example tls_front_bench -- [MIB] [CONNS]`).
//!
//! In one process, on loopback, an echo service, the node's front before it (the lease's derived
//! key, its real server configuration) and the pinned client `gridlease connect` uses
//! ([`gridlease_fetch::Fetcher::service`]). Measured, each through the front and directly:
//! - bulk: `MIB` MiB (default 256) written and echoed back over one connection, MiB/s each way;
//! - connection setup: `CONNS` (default 300) connections one after another, each connect (+ the
//!   pinned handshake through the front) and one byte echoed, p50/p99;
//! - memory: the process's RSS growth holding 127 idle connections through the front (both ends,
//!   client and front, in this process; one address holds at most 128), per connection.
//!
//! Prints a table and writes `target/bench/tls_front.json`.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256};
use anyhow::Result;
use gridlease_fetch::{AllowList, Fetcher, Limits};
use gridlease_provider::front;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

/// Idle connections held for the memory figure: all from one address, so within its share.
const HELD: usize = front::MAX_PER_PEER - 1;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Write `bytes` and read them back over `s` at once (a writer task and this reader): seconds.
async fn bulk<S>(s: S, bytes: usize) -> Result<f64>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(s);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = vec![0x5au8; 64 << 10];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).await?;
            left -= n;
        }
        w.flush().await?;
        Ok::<_, std::io::Error>(w)
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < bytes {
        let n = r.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "closed after {got} of {bytes} bytes");
        got += n;
    }
    let _w = writer.await??;
    Ok(started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// `n` connections one after another, each with one byte echoed: sorted milliseconds.
async fn setups<F, Fut, S>(n: usize, mut open: F) -> Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<S>>,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = open().await?;
        s.write_all(b"x").await?;
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        // Closed both ways before the next: the front has let go of it (one address's share).
        s.shutdown().await?;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map_or(Ok(256), |a| a.parse())?;
    let conns: usize = args.next().map_or(Ok(300), |a| a.parse())?;
    let backend = gridlease_testkit::echo::echo().await?;
    let lease = B256::repeat_byte(0x1e);
    let id = front::identity(
        front::node_secret(&[7u8; 32]),
        31_337,
        Address::repeat_byte(0x4d),
        lease,
    )
    .map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let stop = CancellationToken::new();
    tokio::spawn(front::serve(
        front::Front::to_port(lease, id.config.clone(), backend),
        listener,
        stop.clone(),
    ));
    let fetcher = Fetcher::new(AllowList::loopback(), Limits::default());
    let key = id.key;
    let through = || async { Ok(fetcher.service("127.0.0.1", port, key).await?) };
    let direct = || async { Ok(TcpStream::connect((Ipv4Addr::LOCALHOST, backend)).await?) };

    let bytes = mib << 20;
    let direct_s = bulk(direct().await?, bytes).await?;
    let front_s = bulk(through().await?, bytes).await?;
    let direct_setup = setups(conns, direct).await?;
    let front_setup = setups(conns, through).await?;

    let before = rss_kib();
    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        let mut s = through().await?;
        s.write_all(b"x").await?;
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await?;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let per_conn_kib = rss_kib().saturating_sub(before) as f64 / HELD as f64;
    drop(held);
    stop.cancel();

    let mibs = |s: f64| mib as f64 / s;
    println!("TLS front (ACC-03) vs the service reached directly, loopback, one process");
    println!(
        "  bulk {mib} MiB each way, one connection   front {:>7.1} MiB/s   direct {:>7.1} MiB/s",
        mibs(front_s),
        mibs(direct_s)
    );
    println!(
        "  connect + first byte, {conns} in a row   front p50 {:.2} ms p99 {:.2} ms   direct p50 {:.3} ms p99 {:.3} ms",
        percentile(&front_setup, 0.5),
        percentile(&front_setup, 0.99),
        percentile(&direct_setup, 0.5),
        percentile(&direct_setup, 0.99),
    );
    println!(
        "  {HELD} idle connections held through the front: {per_conn_kib:.1} KiB each (client and front)"
    );
    let json = serde_json::json!({
        "bulk_mib": mib,
        "front_mib_per_s": mibs(front_s),
        "direct_mib_per_s": mibs(direct_s),
        "connections": conns,
        "front_setup_ms": {"p50": percentile(&front_setup, 0.5), "p99": percentile(&front_setup, 0.99)},
        "direct_setup_ms": {"p50": percentile(&direct_setup, 0.5), "p99": percentile(&direct_setup, 0.99)},
        "held": HELD,
        "kib_per_held_connection": per_conn_kib,
    });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(std::path::Path::new("."));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("tls_front.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)? + "\n")?;
    println!("written {}", path.display());
    Ok(())
}
