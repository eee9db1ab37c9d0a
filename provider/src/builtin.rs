//! The built-in verifiable workload `matmul_i8`, seeded or with data inputs fetched and checked
//! against the spec's roots, computed by gridlease-gpu: on the job's GPU (the first UUID the
//! allocator gave it) when that GPU is usable, else on the CPU, with the same bytes either way.
//! Which one ran, and why, is logged. The product runs on a blocking thread that cannot be
//! aborted: on a timeout or cancellation it is told to stop (the CPU product checks between row
//! blocks) and keeps the job's GPUs until it has really ended.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering::Relaxed},
};

use alloy::primitives::B256;
use gridlease_fetch::Fetcher;
use gridlease_gpu::{Device, Inputs};
use gridlease_primitives::spec::Workload;
use gridlease_workload::matmul::Matmul;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::executor::{ExecError, Executor, JobRun, OnSpawn, Output, RunFuture};

/// The built-in verifiable workloads.
#[derive(Clone, Debug)]
pub struct BuiltinExecutor {
    /// CPU threads for the reference product (when no GPU is usable).
    pub threads: usize,
    /// Downloads data inputs (http(s) only, no internal address unless allowed: PIN-01/02).
    pub fetcher: Fetcher,
}

impl BuiltinExecutor {
    /// All CPU threads, inputs through `fetcher`.
    pub fn new(fetcher: Fetcher) -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            fetcher,
        }
    }
}

/// The device a job's GPUs name: its first GPU, or the CPU when it was given none.
pub fn device_for(gpus: &[String]) -> Device {
    gpus.first()
        .map_or(Device::Cpu, |uuid| Device::Uuid(uuid.clone()))
}

/// Sets its flag when dropped: whichever way the job's future ends (result, timeout,
/// cancellation, or dropped by its caller), the blocking product is told to stop.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

enum Job {
    Seeded(Matmul),
    Data(gridlease_workload::matmul::MatmulData),
}

impl BuiltinExecutor {
    async fn matmul(&self, job: JobRun, cancel: CancellationToken) -> Result<Output, ExecError> {
        // One deadline for the inputs' download and the product.
        let deadline = tokio::time::Instant::now() + job.time_limit;
        let w = job.workload;
        let inputs = match &w {
            Workload::MatmulI8 { m, k, n, seed } => Job::Seeded(Matmul {
                seed: *seed,
                m: *m,
                k: *k,
                n: *n,
            }),
            Workload::MatmulI8Data { .. } => {
                // Under the job's deadline and its cancellation like the product itself: a
                // tenant's server that trickles its bytes must not hold the result (or the
                // failure report) past the result deadline, and the provider's stake with it.
                let inputs = gridlease_fetch::verify::data_inputs(&w, &self.fetcher);
                let data = tokio::select! {
                    r = inputs => r.map_err(|e| ExecError::Inputs {
                        code: e.code,
                        detail: e.detail,
                    })?,
                    () = tokio::time::sleep_until(deadline) => {
                        return Err(ExecError::TimedOut(job.time_limit));
                    }
                    () = cancel.cancelled() => return Err(ExecError::Cancelled),
                };
                Job::Data(data.ok_or_else(|| ExecError::Inputs {
                    code: "input-mismatch",
                    detail: "not a data job".into(),
                })?)
            }
            _ => return Err(ExecError::Unsupported("not a built-in workload".into())),
        };
        let threads = self.threads;
        let device = device_for(&job.gpus);
        let id: B256 = job.id;
        let stop = Arc::new(AtomicBool::new(false));
        let _stop_on_exit = StopOnDrop(stop.clone());
        let hold = job.gpu_hold.clone();
        let started = std::time::Instant::now();
        let work = tokio::task::spawn_blocking(move || {
            // The job's GPUs stay held until the product has really ended, not merely until the
            // job's future gave up on it.
            let _hold = hold;
            let inputs = match &inputs {
                Job::Seeded(j) => Inputs::Seeded(*j),
                Job::Data(d) => Inputs::Data(d),
            };
            gridlease_gpu::compute_until(inputs, &device, threads, &stop)
        });
        tokio::select! {
            r = work => {
                let p = r
                    .map_err(|e| ExecError::Io(format!("the product panicked: {e}")))?
                    .map_err(|e| ExecError::Unsupported(e.to_string()))?;
                info!(lease = %id, backend = %p.backend, root = ?p.root, "matmul_i8 computed");
                // The job's log for its tenant: where and how long (it writes nothing else).
                let log = format!(
                    "matmul_i8 computed on {} in {:.3} s: {} bytes\n",
                    p.backend,
                    started.elapsed().as_secs_f64(),
                    p.c_bytes.len()
                );
                Ok(Output {
                    result: p.c_bytes,
                    stderr_tail: log,
                })
            }
            () = tokio::time::sleep_until(deadline) => Err(ExecError::TimedOut(job.time_limit)),
            () = cancel.cancelled() => Err(ExecError::Cancelled),
        }
    }
}

impl Executor for BuiltinExecutor {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn supports(&self, w: &Workload) -> Result<(), String> {
        match w {
            Workload::MatmulI8 { m, k, n, .. } | Workload::MatmulI8Data { m, k, n, .. } => {
                gridlease_workload::matmul::validate_shape(*m, *k, *n)
            }
            other => Err(format!("{:?} is not a built-in workload", other.kind())),
        }
    }

    fn run(&self, job: JobRun, cancel: CancellationToken, _: OnSpawn) -> RunFuture<'_> {
        Box::pin(self.matmul(job, cancel))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gridlease_workload::matmul;

    use super::*;
    use crate::executor::{ProcessExecutor, no_hook};

    #[test]
    fn a_job_runs_on_its_own_gpu_or_the_cpu() {
        assert_eq!(device_for(&[]), Device::Cpu);
        assert_eq!(
            device_for(&["GPU-a".into(), "GPU-b".into()]),
            Device::Uuid("GPU-a".into())
        );
    }

    #[tokio::test]
    async fn a_gpu_that_is_not_there_falls_back_to_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = B256::repeat_byte(9);
        let (m, k, n) = (19, 45, 23);
        let w = Workload::MatmulI8 { m, k, n, seed };
        let run = |gpus: Vec<String>| JobRun {
            id: B256::ZERO,
            workload: w.clone(),
            time_limit: std::time::Duration::from_secs(20),
            work_dir: dir.path().into(),
            gpus,
            cpu_cores: 0,
            ram_gib: 0,
            live_log: None,
            gpu_hold: None,
            loopback_port: None,
        };
        let x = BuiltinExecutor {
            threads: 2,
            fetcher: Fetcher::default(),
        };
        let cpu = x
            .run(
                run(Vec::new()),
                CancellationToken::new(),
                crate::executor::no_hook(),
            )
            .await
            .expect("runs");
        let missing = x
            .run(
                run(vec!["GPU-00000000-0000-0000-0000-000000000000".into()]),
                CancellationToken::new(),
                crate::executor::no_hook(),
            )
            .await
            .expect("runs on the CPU");
        let j = Matmul { seed, m, k, n };
        let c = gridlease_workload::matmul::multiply(&j.a(), &j.bt(), 19, 45, 23, 1);
        assert_eq!(cpu.result, gridlease_workload::matmul::encode(&c));
        assert_eq!(missing.result, cpu.result);
    }

    #[tokio::test]
    async fn a_timed_out_product_stops_and_only_then_frees_its_gpu() {
        use crate::gpu::{Gpu, GpuAllocator, Inventory};
        let dir = tempfile::tempdir().expect("tempdir");
        // A GPU id the allocator pins but no driver opens: the product runs on the CPU.
        let inv = Inventory {
            gpus: vec![Gpu {
                name: "test".into(),
                uuid: "GPU-00000000-0000-0000-0000-00000000dead".into(),
                vram_mib: 1024,
                driver: String::new(),
                sm_count: None,
                cuda: String::new(),
                class: "any".into(),
            }],
            source: "test".into(),
        };
        let gpus = GpuAllocator::new(&inv, false);
        let lease = Arc::new(gpus.acquire(1));
        assert_eq!(gpus.free(), 0);
        // About 1.1e12 multiply-adds: minutes on a few CPU cores.
        let run = JobRun {
            id: B256::ZERO,
            workload: Workload::MatmulI8 {
                m: 16_384,
                k: 4_096,
                n: 16_384,
                seed: B256::repeat_byte(5),
            },
            time_limit: std::time::Duration::from_secs(3),
            work_dir: dir.path().into(),
            gpus: lease.uuids().to_vec(),
            cpu_cores: 0,
            ram_gib: 0,
            live_log: None,
            gpu_hold: Some(lease),
            loopback_port: None,
        };
        let x = BuiltinExecutor {
            threads: 2,
            fetcher: Fetcher::default(),
        };
        let started = std::time::Instant::now();
        let got = x
            .run(run, CancellationToken::new(), crate::executor::no_hook())
            .await;
        assert!(
            matches!(got, Err(ExecError::TimedOut(_))),
            "{:?}",
            got.map(|o| o.result.len())
        );
        // The blocking product notices the stop and ends; only then is its GPU free again.
        let deadline = started + std::time::Duration::from_secs(30);
        while gpus.free() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the product still holds its GPU 30 s after its job timed out"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        eprintln!(
            "product stopped and GPU freed {:.2} s after the start (3 s limit)",
            started.elapsed().as_secs_f64()
        );
    }

    #[tokio::test]
    async fn a_data_job_s_inputs_download_under_its_deadline_and_within_its_shape() {
        use axum::{Router, body::Body, routing::get};
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (m, k, n) = (4u32, 8u32, 4u32);
        let (a, b) = (vec![1u8; 32], vec![2u8; 32]);
        let data = matmul::MatmulData::from_row_major(m, k, n, a.clone(), &b).expect("inputs");
        let (a_root, b_root) = (data.a_tree().root(), data.b_tree().root());
        let mut longer = b.clone();
        longer.push(0);
        // `/slow` sends its first bytes, then one more every half second, for minutes.
        let app = Router::new()
            .route("/a", get(move || async move { a }))
            .route("/b", get(move || async move { b }))
            .route("/longer", get(move || async move { longer }))
            .route(
                "/slow",
                get(|| async {
                    let (mut tx, rx) = tokio::io::duplex(64);
                    tokio::spawn(async move {
                        for _ in 0..600 {
                            if tx.write_all(&[1]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    });
                    Body::from_stream(tokio_util::io::ReaderStream::new(rx))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let x = BuiltinExecutor {
            threads: 2,
            fetcher: Fetcher::new(
                gridlease_fetch::AllowList::loopback(),
                gridlease_fetch::Limits::default(),
            ),
        };
        let run = |b_path: &str, limit: u64| JobRun {
            id: B256::ZERO,
            workload: Workload::MatmulI8Data {
                m,
                k,
                n,
                a_uri: format!("{base}/a"),
                b_uri: format!("{base}{b_path}"),
                a_root,
                b_root,
            },
            time_limit: Duration::from_secs(limit),
            work_dir: dir.path().into(),
            gpus: Vec::new(),
            cpu_cores: 0,
            ram_gib: 0,
            live_log: None,
            gpu_hold: None,
            loopback_port: None,
        };
        let go = async |r: JobRun| x.run(r, CancellationToken::new(), no_hook()).await;
        let out = go(run("/b", 20)).await.expect("the product");
        assert_eq!(out.result.len(), (m * n * 4) as usize);
        // More bytes than the shape gives are refused while they stream in.
        let e = go(run("/longer", 20)).await.expect_err("too long");
        assert_eq!(e.code(), "fetch-too-large", "{e}");
        // A trickling server holds the job no longer than its time limit (the fetcher's own
        // timeout is minutes, past the result deadline).
        let e = go(run("/slow", 2)).await.expect_err("timed out");
        assert!(matches!(e, ExecError::TimedOut(_)), "{e}");
    }

    #[tokio::test]
    async fn builtin_matmul_is_the_committed_product() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seed = B256::repeat_byte(5);
        let w = Workload::MatmulI8 {
            m: 20,
            k: 33,
            n: 17,
            seed,
        };
        let x = BuiltinExecutor {
            threads: 2,
            fetcher: gridlease_fetch::Fetcher::default(),
        };
        x.supports(&w).expect("supported");
        let out = x
            .run(
                JobRun {
                    id: B256::ZERO,
                    workload: w,
                    time_limit: Duration::from_secs(20),
                    work_dir: dir.path().into(),
                    gpus: Vec::new(),
                    cpu_cores: 0,
                    ram_gib: 0,
                    live_log: None,
                    gpu_hold: None,
                    loopback_port: None,
                },
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect("runs");
        let j = Matmul {
            seed,
            m: 20,
            k: 33,
            n: 17,
        };
        let c = matmul::multiply(&j.a(), &j.bt(), 20, 33, 17, 1);
        assert_eq!(out.result, matmul::encode(&c));
        assert!(
            x.supports(&Workload::MatmulI8 {
                m: 0,
                k: 1,
                n: 1,
                seed
            })
            .is_err()
        );
        assert!(
            ProcessExecutor::default()
                .supports(&Workload::MatmulI8 {
                    m: 1,
                    k: 1,
                    n: 1,
                    seed
                })
                .is_err()
        );
    }
}
