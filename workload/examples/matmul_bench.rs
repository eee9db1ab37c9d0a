//! Benchmark of the built-in workload on the CPU: generate the inputs, the reference product, a
//! Freivalds check of it, and localising one flipped element. Prints the figures and writes them
//! as JSON.
//!
//! ```sh
//! cargo run --release -p gridlease-workload --example matmul_bench -- [N] [OUT.json]
//! ```
//! Defaults: N = 4096 (square), OUT = target/bench/matmul.json. The goal it reports: Freivalds in
//! under 1/20 of the reference product's time.

use std::time::Instant;

use alloy_primitives::B256;
use gridlease_workload::matmul::{Matmul, commit, freivalds, localize, multiply};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args
        .next()
        .map_or(4_096, |a| a.parse().expect("N is a number"));
    let out = args
        .next()
        .unwrap_or_else(|| "target/bench/matmul.json".into());
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let job = Matmul {
        seed: B256::repeat_byte(0x42),
        m: n,
        k: n,
        n,
    };
    let nn = n as usize;

    let t = Instant::now();
    let (a, bt) = (job.a(), job.bt());
    let generate_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut c = multiply(&a, &bt, nn, nn, nn, threads);
    let multiply_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let rows = freivalds(&a, &bt, &c, nn, nn, nn, B256::repeat_byte(7));
    let freivalds_s = t.elapsed().as_secs_f64();
    assert!(rows.is_empty(), "the reference product must pass");

    let t = Instant::now();
    let root = commit(&c).root();
    let commit_s = t.elapsed().as_secs_f64();

    let e = nn * nn / 3 + 5;
    c[e] ^= 1 << 3;
    let t = Instant::now();
    let proof = localize(&job, &c, B256::repeat_byte(9)).expect("the flipped element is found");
    let localize_s = t.elapsed().as_secs_f64();
    assert_eq!(proof.i as usize * nn + proof.j as usize, e);

    let macs = (nn as f64).powi(3);
    let ratio = multiply_s / freivalds_s;
    let report = serde_json::json!({
        "n": n,
        "threads": threads,
        "generate_s": generate_s,
        "multiply_s": multiply_s,
        "multiply_gmac_per_s": macs / multiply_s / 1e9,
        "freivalds_s": freivalds_s,
        "freivalds_speedup": ratio,
        "goal_speedup": 20.0,
        "goal_met": ratio >= 20.0,
        "commit_s": commit_s,
        "localize_s": localize_s,
        "root": root,
    });
    println!("matmul_i8 n = {n} on {threads} thread(s)");
    println!("  generate A, B     {generate_s:>9.3} s");
    println!(
        "  reference A x B   {multiply_s:>9.3} s  ({:.2} GMAC/s)",
        macs / multiply_s / 1e9
    );
    println!("  Freivalds check   {freivalds_s:>9.3} s  ({ratio:.0}x faster; goal >= 20x)");
    println!("  Merkle commit     {commit_s:>9.3} s");
    println!("  localise 1 error  {localize_s:>9.3} s");
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).expect("create output directory");
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).expect("json") + "\n",
    )
    .expect("write report");
    println!("wrote {out}");
}
