//! Benchmark of the built-in workload on a GPU, against the CPU reference:
//!
//! 1. GPU result root == CPU result root for a table of shapes (incl. non-multiples of 16);
//! 2. `matmul_i8` throughput at N^3 (default 8,192), TOPS (2 ops per multiply-add);
//! 3. Freivalds on the GPU at 8,192 and 16,384 as a fraction of the product time (goals <= 20 %
//!    and <= 10 %);
//! 4. Merkle commitment throughput of C on the GPU, GB/s of committed bytes (goal >= 200), in the
//!    result tree of protocol v2 (1 KiB leaves: 8 keccak permutations a leaf).
//!
//! ```sh
//! cargo run --release -p gridlease-gpu --example gpu_bench -- [--n 8192] [--out target/bench/gpu.json]
//! ```
//! Without a usable GPU it says why, measures the CPU figures at a small size (`--cpu-n`, 512) and
//! exits 0. `scripts/bench-gpu.sh` runs this and `torch._int_mm` side by side.

use std::time::Instant;

use alloy_primitives::B256;
use gridlease_gpu::{CudaMatmul, GpuError, Inputs, Plan, compute_cpu, compute_gpu};
use gridlease_workload::{
    matmul::{self, Matmul},
    merkle::RESULT_LEAF_BYTES,
};
use serde_json::{Value, json};

struct Args {
    n: u32,
    cpu_n: u32,
    reps: u32,
    out: String,
}

fn args() -> Args {
    let mut a = Args {
        n: 8_192,
        cpu_n: 512,
        reps: 10,
        out: "target/bench/gpu.json".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_default();
        let num = || {
            val.parse::<u32>()
                .unwrap_or_else(|_| panic!("{flag} takes a number"))
        };
        match flag.as_str() {
            "--n" => a.n = num(),
            "--cpu-n" => a.cpu_n = num(),
            "--reps" => a.reps = num().max(1),
            "--out" => a.out = val,
            other => panic!("unknown flag {other}; flags: --n --cpu-n --reps --out"),
        }
    }
    a
}

fn job(m: u32, k: u32, n: u32) -> Matmul {
    Matmul {
        seed: B256::repeat_byte(0x42),
        m,
        k,
        n,
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// CPU figures at size n: product, Freivalds, Merkle commit.
fn cpu_figures(n: u32) -> Value {
    let j = job(n, n, n);
    let nn = n as usize;
    let (a, bt) = (j.a(), j.bt());
    let t = Instant::now();
    let c = matmul::multiply(&a, &bt, nn, nn, nn, threads());
    let product_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let bad = matmul::freivalds(&a, &bt, &c, nn, nn, nn, B256::repeat_byte(7));
    let freivalds_s = t.elapsed().as_secs_f64();
    assert!(bad.is_empty(), "the reference product passes");
    let t = Instant::now();
    let root = matmul::commit(&c).root();
    let commit_s = t.elapsed().as_secs_f64();
    let bytes = (nn * nn * 4) as f64;
    let tops = 2.0 * (nn as f64).powi(3) / product_s / 1e12;
    println!("CPU, n = {n}, {} thread(s)", threads());
    println!("  product          {product_s:>9.4} s  ({:.4} TOPS)", tops);
    println!(
        "  Freivalds        {freivalds_s:>9.4} s  ({:.1} % of the product)",
        100.0 * freivalds_s / product_s
    );
    println!(
        "  Merkle commit    {commit_s:>9.4} s  ({:.3} GB/s)",
        bytes / commit_s / 1e9
    );
    json!({
        "n": n, "threads": threads(), "product_s": product_s, "tops": tops,
        "freivalds_s": freivalds_s, "freivalds_fraction": freivalds_s / product_s,
        "commit_s": commit_s, "commit_gb_per_s": bytes / commit_s / 1e9,
        "leaf_bytes": RESULT_LEAF_BYTES, "root": root,
    })
}

/// Seconds per call of `f` (after one warm-up), averaged over `reps`.
fn time<T>(
    gpu: &CudaMatmul,
    reps: u32,
    mut f: impl FnMut() -> Result<T, GpuError>,
) -> Result<f64, GpuError> {
    f()?;
    gpu.synchronize()?;
    let t = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    gpu.synchronize()?;
    Ok(t.elapsed().as_secs_f64() / f64::from(reps))
}

const SHAPES: [(u32, u32, u32); 10] = [
    (1, 1, 1),
    (3, 17, 5),
    (16, 16, 16),
    (17, 33, 9),
    (100, 257, 31),
    (255, 1000, 129),
    (1024, 1024, 1024),
    (1000, 3000, 777),
    (4097, 129, 2049),
    (2048, 4096, 1536),
];

fn gpu_figures(gpu: &CudaMatmul, a: &Args) -> Result<Value, GpuError> {
    // 1. Same bits.
    println!("GPU root == CPU root");
    let mut table = Vec::new();
    let mut all_equal = true;
    for (m, k, n) in SHAPES {
        let j = job(m, k, n);
        let g = compute_gpu(Inputs::Seeded(j), gpu)?;
        let c = compute_cpu(Inputs::Seeded(j), threads(), String::new());
        let equal = g.root == c.root && g.c_bytes == c.c_bytes;
        all_equal &= equal;
        println!(
            "  {m:>5} x {k:>5} x {n:>5}  {}  {}",
            g.root.unwrap_or_default(),
            if equal { "equal" } else { "DIFFERENT" }
        );
        table.push(
            json!({"m": m, "k": k, "n": n, "gpu_root": g.root, "cpu_root": c.root, "equal": equal}),
        );
    }

    // 2. Throughput at n^3.
    let n = a.n;
    let p = Plan::new(n, n, n);
    let ops = gpu.generate(&p, job(n, n, n).seed)?;
    let mut c = gpu.multiply(&p, &ops)?;
    let product_s = time(gpu, a.reps, || gpu.multiply_into(&p, &ops, &mut c))?;
    let tops = 2.0 * (f64::from(n)).powi(3) / product_s / 1e12;
    let gen_s = time(gpu, a.reps, || {
        gpu.generate(&p, B256::repeat_byte(1)).map(drop)
    })?;
    println!(
        "matmul_i8 {n}^3: {product_s:.5} s, {tops:.1} TOPS (inputs generated in {gen_s:.5} s)"
    );

    // 4. Merkle commitment of C.
    let commit_s = time(gpu, a.reps, || gpu.commit(&p, &c, false).map(drop))?;
    let bytes = p.c_bytes() as f64;
    let gbps = bytes / commit_s / 1e9;
    println!(
        "Merkle commit of C ({:.0} MiB, {} leaves of {RESULT_LEAF_BYTES} bytes): {commit_s:.5} s, \
         {gbps:.1} GB/s (goal >= 200)",
        bytes / 1048576.0,
        p.leaves()
    );
    drop((c, ops));

    // 3. Freivalds at 8,192 and 16,384.
    let mut fv = Vec::new();
    for (fn_, goal) in [(8_192u32, 0.20), (16_384, 0.10)] {
        let p = Plan::new(fn_, fn_, fn_);
        let ops = gpu.generate(&p, job(fn_, fn_, fn_).seed)?;
        let reps = if fn_ > 8_192 {
            a.reps.div_ceil(2)
        } else {
            a.reps
        };
        let mut c = gpu.multiply(&p, &ops)?;
        let prod = time(gpu, reps, || gpu.multiply_into(&p, &ops, &mut c))?;
        let bad = gpu.freivalds(&p, &ops, &c, B256::repeat_byte(7))?;
        let fv_s = time(gpu, reps, || {
            gpu.freivalds(&p, &ops, &c, B256::repeat_byte(7)).map(drop)
        })?;
        let fraction = fv_s / prod;
        println!(
            "Freivalds n = {fn_}: {fv_s:.5} s vs product {prod:.5} s = {:.1} % (goal <= {:.0} %){}",
            100.0 * fraction,
            100.0 * goal,
            if bad.is_empty() {
                ""
            } else {
                "  REJECTED a correct product"
            }
        );
        fv.push(
            json!({"n": fn_, "product_s": prod, "freivalds_s": fv_s, "fraction": fraction,
                       "goal": goal, "goal_met": fraction <= goal, "accepted": bad.is_empty()}),
        );
    }

    Ok(json!({
        "hash_table": table, "all_equal": all_equal,
        "matmul": {"n": n, "seconds": product_s, "tops": tops, "generate_s": gen_s},
        "merkle": {"n": n, "bytes": bytes, "leaf_bytes": RESULT_LEAF_BYTES, "leaves": p.leaves(),
                   "seconds": commit_s, "gb_per_s": gbps, "goal_gb_per_s": 200.0,
                   "goal_met": gbps >= 200.0},
        "freivalds": fv,
    }))
}

fn main() {
    let a = args();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let gpus = gridlease_gpu::discover();
    let report = match CudaMatmul::open(0) {
        Ok(gpu) => {
            let info = gpus.ok().and_then(|l| {
                l.into_iter()
                    .find(|g| g.uuid.eq_ignore_ascii_case(&gpu.uuid))
            });
            println!(
                "GPU {} ({}) {}",
                gpu.name,
                gpu.uuid,
                info.as_ref().map_or(String::new(), |i| format!(
                    "{} MiB, {} SMs, driver {}, CUDA {}",
                    i.vram_mib,
                    i.sm_count.unwrap_or(0),
                    i.driver,
                    i.cuda
                ))
            );
            let figures = match gpu_figures(&gpu, &a) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("GPU bench failed: {e}");
                    json!({"error": e.to_string()})
                }
            };
            json!({
                "unix_time": unix,
                "gpu": {"name": gpu.name, "uuid": gpu.uuid,
                        "vram_mib": info.as_ref().map(|i| i.vram_mib),
                        "sm_count": info.as_ref().and_then(|i| i.sm_count),
                        "driver": info.as_ref().map(|i| i.driver.clone()),
                        "cuda": info.as_ref().map(|i| i.cuda.clone())},
                "figures": figures,
                "cpu": cpu_figures(a.cpu_n),
            })
        }
        Err(e) => {
            println!("no GPU found: {e}");
            if let Err(d) = gpus {
                println!("  ({d})");
            }
            println!("GPU figures not measured; CPU figures at a small size:");
            json!({"unix_time": unix, "gpu": null, "reason": e.to_string(), "cpu": cpu_figures(a.cpu_n)})
        }
    };
    if let Some(dir) = std::path::Path::new(&a.out).parent() {
        std::fs::create_dir_all(dir).expect("create the output directory");
    }
    std::fs::write(
        &a.out,
        serde_json::to_string_pretty(&report).expect("json") + "\n",
    )
    .expect("write the report");
    println!("wrote {}", a.out);
}
