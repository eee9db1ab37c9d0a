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
//! cargo run --release -p gridlease-gpu --example gpu_bench -- [--n 8192] [--out-dir target/bench]
//!     [--reps 50] [--trials 5] [--require-gpu]
//! ```
//! Everything it prints also goes to `<out-dir>/gpu.log`, and the figures to
//! `<out-dir>/gpu.json`. Each timing is GPU time between CUDA events: at least 0.3 s of
//! warm-up (clocks ramp up from idle), then `--trials` trials of `--reps` calls; the median trial
//! counts and the spread is kept. Without a usable GPU it says why, measures the CPU figures at a
//! small size (`--cpu-n`, 512) and exits 0, or 1 with `--require-gpu` (which also fails on any
//! GPU root that differs from the CPU's, a correct product Freivalds rejects, or a GPU error).
//! `scripts/bench-gpu.sh` and `scripts/gpu-run.sh` run it beside `torch._int_mm`.
//! `gpu_bench --ld-library-path DIR` only links the CUDA libraries that do not load as they are
//! but are found elsewhere (CUDA 12 or 13, the toolkit or PyTorch's wheels) in `DIR` and prints
//! the `LD_LIBRARY_PATH` that loads them all.

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
    trials: u32,
    out_dir: std::path::PathBuf,
    require_gpu: bool,
}

fn args() -> Args {
    let mut a = Args {
        n: 8_192,
        cpu_n: 512,
        reps: 50,
        trials: 5,
        out_dir: "target/bench".into(),
        require_gpu: false,
    };
    const USAGE: &str = "usage: gpu_bench [--n N] [--cpu-n N] [--reps N] [--trials N] [--out-dir DIR] [--require-gpu]\n       gpu_bench --ld-library-path DIR   (link the CUDA libraries found into DIR, print its path)";
    // A bad command line says what is wrong and exits 2, without a panic's backtrace.
    let refuse = |why: String| -> ! {
        eprintln!("gpu_bench: {why}\n{USAGE}");
        std::process::exit(2)
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--require-gpu" => {
                a.require_gpu = true;
                continue;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => {}
        }
        let Some(val) = it.next() else {
            refuse(format!("{flag} takes a value"))
        };
        let num = || {
            val.parse::<u32>()
                .unwrap_or_else(|_| refuse(format!("{flag} takes a number, not {val:?}")))
        };
        match flag.as_str() {
            "--n" => a.n = num(),
            "--cpu-n" => a.cpu_n = num(),
            "--reps" => a.reps = num().max(1),
            "--trials" => a.trials = num().max(1),
            "--out-dir" => a.out_dir = val.into(),
            other => refuse(format!("unknown flag {other}")),
        }
    }
    a
}

/// Prints each line and appends it to `<out-dir>/gpu.log` as it goes (a run cut short keeps
/// what it printed).
struct Log(std::fs::File);

impl Log {
    fn line(&mut self, s: impl AsRef<str>) {
        use std::io::Write as _;
        println!("{}", s.as_ref());
        let _ = writeln!(self.0, "{}", s.as_ref());
    }
}

/// Dense INT8 tensor-core peak (TOPS, no sparsity) of the GPUs a provider is likely to have,
/// from NVIDIA's data sheets, by a part of the device name.
const PEAK_INT8_TOPS: [(&str, f64); 11] = [
    ("H200 NVL", 1671.0),
    ("H200", 1979.0),
    ("H100 PCIe", 1513.0),
    ("H100 NVL", 1671.0),
    ("H100", 1979.0),
    ("A100", 624.0),
    ("L40S", 733.0),
    ("L40", 362.0),
    ("L4", 242.5),
    ("RTX 4090", 660.6),
    ("A10", 250.0),
];

fn peak_tops(name: &str) -> Option<f64> {
    PEAK_INT8_TOPS
        .iter()
        .find(|(part, _)| name.contains(part))
        .map(|(_, t)| *t)
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
fn cpu_figures(log: &mut Log, n: u32) -> Value {
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
    log.line(format!("CPU, n = {n}, {} thread(s)", threads()));
    log.line(format!(
        "  product          {product_s:>9.4} s  ({tops:.4} TOPS)"
    ));
    log.line(format!(
        "  Freivalds        {freivalds_s:>9.4} s  ({:.1} % of the product)",
        100.0 * freivalds_s / product_s
    ));
    log.line(format!(
        "  Merkle commit    {commit_s:>9.4} s  ({:.3} GB/s)",
        bytes / commit_s / 1e9
    ));
    json!({
        "n": n, "threads": threads(), "product_s": product_s, "tops": tops,
        "freivalds_s": freivalds_s, "freivalds_fraction": freivalds_s / product_s,
        "commit_s": commit_s, "commit_gb_per_s": bytes / commit_s / 1e9,
        "leaf_bytes": RESULT_LEAF_BYTES, "root": root,
    })
}

/// GPU seconds per call of `f`: the median of the trials, and the fastest and slowest.
#[derive(Clone, Copy, Debug)]
struct Timing {
    median: f64,
    min: f64,
    max: f64,
}

impl Timing {
    fn json(self) -> Value {
        json!({"seconds": self.median, "seconds_min": self.min, "seconds_max": self.max})
    }
}

/// Time `f` on the GPU: calls until at least 0.3 s have passed (warm-up: clocks ramp from idle),
/// then `trials` trials of `reps` calls between two CUDA events.
fn time<T>(
    gpu: &CudaMatmul,
    reps: u32,
    trials: u32,
    mut f: impl FnMut() -> Result<T, GpuError>,
) -> Result<Timing, GpuError> {
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < 0.3 {
        f()?;
        gpu.synchronize()?;
    }
    let mut per_call = Vec::new();
    for _ in 0..trials {
        let start = gpu.mark()?;
        for _ in 0..reps {
            f()?;
        }
        let end = gpu.mark()?;
        per_call.push(f64::from(start.elapsed_ms(&end)?) / 1e3 / f64::from(reps));
    }
    per_call.sort_by(f64::total_cmp);
    Ok(Timing {
        median: per_call[per_call.len() / 2],
        min: per_call[0],
        max: per_call[per_call.len() - 1],
    })
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

fn gpu_figures(log: &mut Log, gpu: &CudaMatmul, a: &Args) -> Result<Value, GpuError> {
    // 1. Same bits.
    log.line("GPU root == CPU root");
    let mut table = Vec::new();
    let mut all_equal = true;
    for (m, k, n) in SHAPES {
        let j = job(m, k, n);
        let g = compute_gpu(Inputs::Seeded(j), gpu)?;
        let c = compute_cpu(Inputs::Seeded(j), threads(), String::new());
        let equal = g.root == c.root && g.c_bytes == c.c_bytes;
        all_equal &= equal;
        log.line(format!(
            "  {m:>5} x {k:>5} x {n:>5}  {}  {}",
            g.root.unwrap_or_default(),
            if equal { "equal" } else { "DIFFERENT" }
        ));
        table.push(
            json!({"m": m, "k": k, "n": n, "gpu_root": g.root, "cpu_root": c.root, "equal": equal}),
        );
    }
    let (reps, trials) = (a.reps, a.trials);

    // 2. Throughput at n^3, against the device's peak.
    let n = a.n;
    let p = Plan::new(n, n, n);
    let ops = gpu.generate(&p, job(n, n, n).seed)?;
    let mut c = gpu.multiply(&p, &ops)?;
    let product = time(gpu, reps, trials, || gpu.multiply_into(&p, &ops, &mut c))?;
    let tops = 2.0 * (f64::from(n)).powi(3) / product.median / 1e12;
    let peak = peak_tops(&gpu.name);
    let generate = time(gpu, reps.div_ceil(5), trials, || {
        gpu.generate(&p, B256::repeat_byte(1)).map(drop)
    })?;
    log.line(format!(
        "matmul_i8 {n}^3: {:.5} s (trials {:.5}..{:.5}), {tops:.1} TOPS{} (inputs generated in \
         {:.5} s)",
        product.median,
        product.min,
        product.max,
        peak.map_or(String::new(), |pk| format!(
            " = {:.1} % of the {pk} TOPS INT8 peak",
            100.0 * tops / pk
        )),
        generate.median
    ));

    // 4. Merkle commitment of C: the leaf kernel and the level kernels apart, then together.
    let bytes = p.c_bytes() as f64;
    let mut leaves_s = Vec::new();
    let mut levels_s = Vec::new();
    for _ in 0..trials {
        let start = gpu.mark()?;
        let mut mid = None;
        gpu.commit_marked(&p, &c, false, Some(&mut mid))?;
        let end = gpu.mark()?;
        if let Some(mid) = mid {
            leaves_s.push(f64::from(start.elapsed_ms(&mid)?) / 1e3);
            levels_s.push(f64::from(mid.elapsed_ms(&end)?) / 1e3);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let (leaves_s, levels_s) = (median(&mut leaves_s), median(&mut levels_s));
    let commit = time(gpu, reps.div_ceil(5), trials, || {
        gpu.commit(&p, &c, false).map(drop)
    })?;
    let gbps = bytes / commit.median / 1e9;
    log.line(format!(
        "Merkle commit of C ({:.0} MiB, {} leaves of {RESULT_LEAF_BYTES} bytes): {:.5} s, \
         {gbps:.1} GB/s (goal >= 200); leaves {leaves_s:.5} s ({:.1} GB/s), levels {levels_s:.5} s",
        bytes / 1048576.0,
        p.leaves(),
        commit.median,
        bytes / leaves_s / 1e9,
    ));
    drop((c, ops));

    // 3. Freivalds at 8,192 and 16,384.
    let mut fv = Vec::new();
    let mut fv_accepts = true;
    for (fn_, goal) in [(8_192u32, 0.20), (16_384, 0.10)] {
        let p = Plan::new(fn_, fn_, fn_);
        let ops = gpu.generate(&p, job(fn_, fn_, fn_).seed)?;
        let reps = if fn_ > 8_192 { reps.div_ceil(4) } else { reps };
        let mut c = gpu.multiply(&p, &ops)?;
        let prod = time(gpu, reps, trials, || gpu.multiply_into(&p, &ops, &mut c))?;
        let bad = gpu.freivalds(&p, &ops, &c, B256::repeat_byte(7))?;
        fv_accepts &= bad.is_empty();
        let check = time(gpu, reps, trials, || {
            gpu.freivalds(&p, &ops, &c, B256::repeat_byte(7)).map(drop)
        })?;
        // Each check waits for the host (the seed up, the rejected rows down); its kernels
        // alone, between events around them, say how much of it that round trip is.
        let mut kernels_s = Vec::new();
        for _ in 0..trials {
            let mut total = 0.0;
            for _ in 0..reps {
                let mut marks = None;
                gpu.freivalds_marked(&p, &ops, &c, B256::repeat_byte(7), Some(&mut marks))?;
                if let Some((first, last)) = marks {
                    total += f64::from(first.elapsed_ms(&last)?) / 1e3;
                }
            }
            kernels_s.push(total / f64::from(reps));
        }
        let kernels_s = median(&mut kernels_s);
        let fraction = check.median / prod.median;
        log.line(format!(
            "Freivalds n = {fn_}: {:.5} s (its kernels {kernels_s:.5} s) vs product {:.5} s = \
             {:.1} % (goal <= {:.0} %; kernels alone {:.1} %){}",
            check.median,
            prod.median,
            100.0 * fraction,
            100.0 * goal,
            100.0 * kernels_s / prod.median,
            if bad.is_empty() {
                ""
            } else {
                "  REJECTED a correct product"
            }
        ));
        fv.push(
            json!({"n": fn_, "product": prod.json(), "freivalds": check.json(),
                       "fraction": fraction, "goal": goal, "goal_met": fraction <= goal,
                       "kernels_s": kernels_s, "kernels_fraction": kernels_s / prod.median,
                       "reps": reps, "accepted": bad.is_empty()}),
        );
    }

    Ok(json!({
        "timing": {"warmup_s": 0.3, "reps": reps, "reps_generate_commit": reps.div_ceil(5),
                   "trials": trials,
                   "clock": "CUDA events; a Freivalds call or a commit waits for the host"},
        "hash_table": table, "all_equal": all_equal, "freivalds_accepts_correct": fv_accepts,
        "matmul": {"n": n, "product": product.json(), "seconds": product.median, "tops": tops,
                   "peak_tops": peak, "fraction_of_peak": peak.map(|pk| tops / pk),
                   "generate": generate.json()},
        "merkle": {"n": n, "bytes": bytes, "leaf_bytes": RESULT_LEAF_BYTES, "leaves": p.leaves(),
                   "commit": commit.json(), "seconds": commit.median, "gb_per_s": gbps,
                   "leaves_kernel_s": leaves_s, "leaves_gb_per_s": bytes / leaves_s / 1e9,
                   "levels_kernels_s": levels_s, "goal_gb_per_s": 200.0,
                   "goal_met": gbps >= 200.0},
        "freivalds": fv,
    }))
}

/// `--ld-library-path DIR`: link the CUDA libraries that do not load as they are but are found on
/// this machine in `DIR` under the names cudarc opens, and print the `LD_LIBRARY_PATH` that loads
/// them all (for scripts that run other binaries on the GPU, such as the tests); exit 1 naming
/// what is missing.
fn ld_library_path(dir: &str) -> std::process::ExitCode {
    use gridlease_gpu::libs;
    match libs::locate(&libs::search_dirs(), &libs::unloadable()) {
        Ok(found) => match libs::loader_dir(&found, std::path::Path::new(dir)) {
            Ok(mut path) => {
                if let Some(old) = std::env::var_os("LD_LIBRARY_PATH") {
                    path.extend(std::env::split_paths(&old));
                }
                let joined = std::env::join_paths(path).expect("paths without ':'");
                println!("{}", joined.to_string_lossy());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot link the CUDA libraries in {dir}: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(missing) => {
            for m in missing {
                eprintln!("{m}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn main() -> std::process::ExitCode {
    let mut argv = std::env::args().skip(1);
    if argv.next().as_deref() == Some("--ld-library-path") {
        return ld_library_path(&argv.next().unwrap_or_else(|| "cuda-libs".into()));
    }
    let a = args();
    std::fs::create_dir_all(&a.out_dir).expect("create the output directory");
    let mut log = Log(std::fs::File::create(a.out_dir.join("gpu.log"))
        .expect("create the log in the output directory"));
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let gridlease_gpu::libs::Reexec::Failed(why) = gridlease_gpu::libs::reexec_with_cuda() {
        log.line(format!("warning: {why}"));
    }
    let gpus = gridlease_gpu::discover();
    let mut failed = None;
    // cudarc panics where a library lacks a symbol its bindings name (a driver older than
    // CUDA 12.8's API): said, and written down, like any other failure to open.
    // (The error is put into words inside too: a driver error's text comes from the driver.)
    let opened = std::panic::catch_unwind(|| CudaMatmul::open(0).map_err(|e| e.to_string()))
        .unwrap_or_else(|p| {
            Err(format!(
                "the CUDA libraries failed on open ({}): a driver or toolkit older than CUDA 12.8?",
                gridlease_gpu::panic_message(p.as_ref())
            ))
        });
    let report = match opened {
        Ok(gpu) => {
            let info = gpus.ok().and_then(|l| {
                l.into_iter()
                    .find(|g| g.uuid.eq_ignore_ascii_case(&gpu.uuid))
            });
            log.line(format!(
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
            ));
            let libraries: Vec<String> = gridlease_gpu::libs::loaded()
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            log.line(format!("libraries {}", libraries.join(" ")));
            log.line(format!("kernels {}", gpu.kernels));
            // A panic inside (cudarc's, for a symbol a driver lacks) is written down like an
            // error, so gpu.json and the log still say how far it got.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                gpu_figures(&mut log, &gpu, &a).map_err(|e| e.to_string())
            }))
            .unwrap_or_else(|p| {
                Err(format!(
                    "panicked: {}",
                    gridlease_gpu::panic_message(p.as_ref())
                ))
            });
            let figures = match run {
                Ok(f) => {
                    if f["all_equal"] != json!(true) {
                        failed = Some("a GPU root differs from the CPU's".to_owned());
                    } else if f["freivalds_accepts_correct"] != json!(true) {
                        failed = Some("Freivalds rejected a correct product".to_owned());
                    }
                    f
                }
                Err(e) => {
                    log.line(format!("GPU bench failed: {e}"));
                    failed = Some(format!("the GPU bench failed: {e}"));
                    json!({"error": e})
                }
            };
            json!({
                "unix_time": unix,
                "gpu": {"name": gpu.name, "uuid": gpu.uuid,
                        "vram_mib": info.as_ref().map(|i| i.vram_mib),
                        "sm_count": info.as_ref().and_then(|i| i.sm_count),
                        "driver": info.as_ref().map(|i| i.driver.clone()),
                        "cuda": info.as_ref().map(|i| i.cuda.clone()),
                        "libraries": libraries, "kernels": gpu.kernels},
                "figures": figures,
                "cpu": cpu_figures(&mut log, a.cpu_n),
            })
        }
        Err(e) => {
            log.line(format!("no GPU found: {e}"));
            if let Err(d) = gpus {
                log.line(format!("  ({d})"));
            }
            failed = Some(format!("no GPU path opened: {e}"));
            log.line("GPU figures not measured; CPU figures at a small size:");
            json!({"unix_time": unix, "gpu": null, "reason": e,
                   "cpu": cpu_figures(&mut log, a.cpu_n)})
        }
    };
    let out = a.out_dir.join("gpu.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).expect("json") + "\n",
    )
    .expect("write the report");
    log.line(format!("wrote {}", out.display()));
    match failed {
        Some(why) if a.require_gpu => {
            log.line(format!("FAILED (--require-gpu): {why}"));
            std::process::ExitCode::FAILURE
        }
        _ => std::process::ExitCode::SUCCESS,
    }
}
