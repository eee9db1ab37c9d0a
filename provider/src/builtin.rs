//! The built-in verifiable workload `matmul_i8`, seeded or with data inputs fetched and checked
//! against the spec's roots, computed by gridlease-gpu: on the job's GPU (the first UUID the
//! allocator gave it) when that GPU is usable, else on the CPU, with the same bytes either way.
//! Which one ran, and why, is logged.

use alloy::primitives::B256;
use gridlease_core::{fetch, matmul::Matmul, spec::Workload};
use gridlease_gpu::{Device, Inputs};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::executor::{ExecError, Executor, JobRun, OnSpawn, Output, RunFuture};

/// The built-in verifiable workloads.
#[derive(Clone, Debug)]
pub struct BuiltinExecutor {
    /// CPU threads for the reference product (when no GPU is usable).
    pub threads: usize,
}

impl Default for BuiltinExecutor {
    fn default() -> Self {
        Self {
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// The device a job's GPUs name: its first GPU, or the CPU when it was given none.
pub fn device_for(gpus: &[String]) -> Device {
    gpus.first()
        .map_or(Device::Cpu, |uuid| Device::Uuid(uuid.clone()))
}

enum Job {
    Seeded(Matmul),
    Data(gridlease_core::matmul::MatmulData),
}

impl BuiltinExecutor {
    async fn matmul(&self, job: JobRun, cancel: CancellationToken) -> Result<Output, ExecError> {
        let mut w = job.workload;
        let inputs = match &w {
            Workload::MatmulI8 { m, k, n, seed } => Job::Seeded(Matmul {
                seed: *seed,
                m: *m,
                k: *k,
                n: *n,
            }),
            Workload::MatmulI8Data { a_uri, b_uri, .. } => {
                let (a, b) = (
                    fetch::fetch(a_uri).await.map_err(ExecError::Inputs)?,
                    fetch::fetch(b_uri).await.map_err(ExecError::Inputs)?,
                );
                let data = w
                    .resolve(a, &b)
                    .map_err(ExecError::Inputs)?
                    .ok_or_else(|| ExecError::Inputs("not a data job".into()))?;
                Job::Data(data)
            }
            _ => return Err(ExecError::Unsupported("not a built-in workload".into())),
        };
        let threads = self.threads;
        let device = device_for(&job.gpus);
        let id: B256 = job.id;
        let work = tokio::task::spawn_blocking(move || {
            let inputs = match &inputs {
                Job::Seeded(j) => Inputs::Seeded(*j),
                Job::Data(d) => Inputs::Data(d),
            };
            gridlease_gpu::compute(inputs, &device, threads)
        });
        tokio::select! {
            r = work => {
                let p = r
                    .map_err(|e| ExecError::Io(format!("the product panicked: {e}")))?
                    .map_err(|e| ExecError::Unsupported(e.to_string()))?;
                info!(lease = %id, backend = %p.backend, root = ?p.root, "matmul_i8 computed");
                Ok(Output {
                    result: p.c_bytes,
                    stderr_tail: String::new(),
                })
            }
            () = tokio::time::sleep(job.time_limit) => Err(ExecError::TimedOut(job.time_limit)),
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
                gridlease_core::matmul::validate_shape(*m, *k, *n)
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
    use super::*;

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
        };
        let x = BuiltinExecutor { threads: 2 };
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
        let c = gridlease_core::matmul::multiply(&j.a(), &j.bt(), 19, 45, 23, 1);
        assert_eq!(cpu.result, gridlease_core::matmul::encode(&c));
        assert_eq!(missing.result, cpu.result);
    }
}
