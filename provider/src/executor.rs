//! How jobs run: one [`Executor`] trait, and its implementations.
//!
//! - [`ProcessExecutor`]: the job's `command` as a local process, sandboxed the way a process can
//!   be: its own process group (a time limit or cancellation kills the whole tree), the parent's
//!   death kills it too, a cleared environment (no operator secret is inherited), its own working
//!   directory, capped output. The image is not pulled: this executor is for hosts that trust their
//!   tenants (and for tests); use a container engine otherwise.
//! - [`crate::builtin::BuiltinExecutor`]: the built-in `matmul_i8` workload, on the job's
//!   GPU through gridlease-gpu or on the CPU, seeded or with data inputs fetched and checked.
//!
//! The result of a job is bytes: the file `$GRIDLEASE_OUTPUT/result` if the job wrote one, else its
//! standard output. The node commits them as the positional Merkle tree of 1 KiB leaves
//! ([`gridlease_workload::merkle::Commitment`]).

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    process::Stdio,
    time::Duration,
};

use alloy::primitives::B256;
use gridlease_primitives::spec::Workload;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

/// One job to run.
#[derive(Clone, Debug)]
pub struct JobRun {
    /// Lease id (names the working directory).
    pub id: B256,
    /// What to run.
    pub workload: Workload,
    /// Wall-clock limit (the lease's remaining time less the posting margin).
    pub time_limit: Duration,
    /// The job's own scratch directory (created by the executor).
    pub work_dir: PathBuf,
    /// UUIDs of the GPUs given to this job (empty: none assigned; container executors request
    /// exactly these devices).
    pub gpus: Vec<String>,
    /// CPU cores of the lease (0: no limit).
    pub cpu_cores: u16,
    /// RAM of the lease, GiB (0: no limit).
    pub ram_gib: u32,
    /// Where the tail of its standard error is kept as it runs, for its tenant to read
    /// (`GET /logs/<lease>`; None: nowhere).
    pub live_log: Option<PathBuf>,
    /// The GPUs held for this job (None: no lease). An executor whose work can outlive its
    /// `run` future (the built-in's blocking product) keeps a clone until that work really ends,
    /// so the GPUs are not handed to another job while it still uses them.
    pub gpu_hold: Option<std::sync::Arc<crate::gpu::GpuLease>>,
    /// A service behind the node's TLS front ([`crate::front`]): the loopback port it is reached
    /// on instead of its own port on every interface (None: published as it is). The container
    /// still listens on its spec's port; a process is told this one in `PORT`.
    pub loopback_port: Option<u16>,
}

/// What a finished job produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The result bytes.
    pub result: Vec<u8>,
    /// The last bytes of its standard error (for the log and metadata).
    pub stderr_tail: String,
}

/// Why a job did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// This executor cannot run this workload (the node should not have bid).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The job ran and failed.
    #[error("exited with {code:?}: {stderr}")]
    Failed {
        /// Exit code (`None`: killed by a signal).
        code: Option<i32>,
        /// Tail of its standard error.
        stderr: String,
    },
    /// It ran past its time limit; its whole process tree was killed.
    #[error("timed out after {0:?}; its process group was killed")]
    TimedOut(Duration),
    /// It wrote more than the cap.
    #[error("output over the {0}-byte cap; the job was killed")]
    OutputCap(u64),
    /// The node is shutting down (or the lease ended): the job was stopped.
    #[error("cancelled")]
    Cancelled,
    /// Inputs could not be fetched or did not match the spec.
    #[error("inputs ({code}): {detail}")]
    Inputs {
        /// A reason code ([`gridlease_fetch::FetchError::code`], or `input-no-roots`,
        /// `input-mismatch`): all of this failure that is published.
        code: &'static str,
        /// For the operator's log only: may name the URI and what was wrong with its bytes.
        detail: String,
    },
    /// The job left something other than a regular file as its result (a symlink, a FIFO, a
    /// device, a directory): nothing of it is read (PIN-06: a symlink would have the node read,
    /// and publish, a file of its own host).
    #[error("its result (GRIDLEASE_OUTPUT/result) is not a regular file; nothing of it was read")]
    NotAFile,
    /// Local I/O (work directory, spawning).
    #[error("{0}")]
    Io(String),
}

impl ExecError {
    /// A reason code for the failure report.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "unsupported",
            Self::Failed { .. } => "exit",
            Self::TimedOut(_) => "timeout",
            Self::OutputCap(_) => "output-cap",
            Self::Cancelled => "cancelled",
            Self::Inputs { code, .. } => code,
            Self::NotAFile => "result-not-a-file",
            Self::Io(_) => "node-io",
        }
    }

    /// What the failure report (a result anyone may be able to download) says: the job's own
    /// exit and standard error, the node's limits; never anything read from an input or from a
    /// server an input named, nor its size (PIN-01), nor the node's own paths.
    pub fn public(&self) -> String {
        match self {
            Self::Inputs { code, .. } => format!(
                "the job's inputs could not be used ({code}): check that they are served over \
                 http(s) from a public address and match the roots and shape of the spec"
            ),
            Self::Io(_) => "the node could not run the job (local I/O; see its log)".into(),
            other => other.to_string(),
        }
    }
}

/// The result file `file` a job left, if any, read up to `cap` bytes. Only a regular file: it is
/// opened without following a symlink (and without blocking on a FIFO), and what it is is read
/// from the open handle, so a path swapped after a check is no way around it. A job that can
/// write its output folder can make it anything; followed, a symlink to `/proc/self/environ`, a
/// tenant's result in the node's data folder, or a key file would be read as this job's result
/// and published (PIN-06); `/dev/zero` would exhaust the node's memory, a FIFO hang it.
pub(crate) fn read_result(file: &Path, cap: u64) -> Result<Option<Vec<u8>>, ExecError> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let io = |e: std::io::Error| ExecError::Io(format!("cannot read {}: {e}", file.display()));
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // O_NOFOLLOW on a symlink.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ExecError::NotAFile),
        Err(e) => return Err(io(e)),
    };
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ExecError::NotAFile);
    }
    if meta.len() > cap {
        return Err(ExecError::OutputCap(cap));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(ExecError::OutputCap(cap));
    }
    Ok(Some(bytes))
}

/// A boxed future of a job's outcome.
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, ExecError>> + Send + 'a>>;

/// Called with the process group id of a job's process once it started (so the node can record
/// it before waiting, and kill it after a crash). Executors without processes never call it.
pub type OnSpawn = Box<dyn FnOnce(i32) + Send>;

/// An [`OnSpawn`] that records nothing.
pub fn no_hook() -> OnSpawn {
    Box::new(|_| {})
}

/// Runs jobs.
pub trait Executor: Send + Sync {
    /// Its name, for logs and metrics.
    fn name(&self) -> &'static str;
    /// Whether it can run `w`; the reason when not. Checked before bidding.
    fn supports(&self, w: &Workload) -> Result<(), String>;
    /// Run `job` to its end, its time limit or `cancel`.
    fn run(&self, job: JobRun, cancel: CancellationToken, on_spawn: OnSpawn) -> RunFuture<'_>;
}

/// Limits of the process executor.
#[derive(Clone, Debug)]
pub struct ProcessLimits {
    /// Most bytes of result (stdout or the result file) kept; more kills the job.
    pub max_output: u64,
    /// Bytes of stderr kept (the tail).
    pub stderr_tail: usize,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        Self {
            max_output: 256 << 20,
            stderr_tail: 16 << 10,
        }
    }
}

/// Runs container jobs' commands as sandboxed local processes.
#[derive(Clone, Debug, Default)]
pub struct ProcessExecutor {
    /// Output caps.
    pub limits: ProcessLimits,
}

/// The only variables a job sees besides its spec's `env` and `GRIDLEASE_*`.
const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// How long a process job's output pipes get to close after it exited and its group was killed.
const PIPE_DRAIN: Duration = Duration::from_secs(5);

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: killpg has no memory-safety preconditions; a stale id fails with ESRCH.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Kill what is left of a process job started by an earlier run of the node (its group id was
/// recorded in the state database before the job started): the processes of group `pgid` whose
/// environment still names the job's output directory `out_dir` (`GRIDLEASE_OUTPUT`). After a
/// reboot, or once the job is gone, the id may be another program's group: that is left alone.
/// Returns how many were killed.
pub fn kill_leftover(pgid: i32, out_dir: &Path) -> usize {
    if pgid <= 0 {
        return 0;
    }
    let mut marker = b"GRIDLEASE_OUTPUT=".to_vec();
    marker.extend_from_slice(out_dir.as_os_str().as_encoded_bytes());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`: the group is the third field after the name, which
        // may itself hold spaces and parentheses.
        let group = std::fs::read_to_string(p.path().join("stat"))
            .ok()
            .and_then(|st| {
                let rest = &st[st.rfind(')')? + 1..];
                rest.split_whitespace().nth(2)?.parse::<i32>().ok()
            });
        if group != Some(pgid) {
            continue;
        }
        let ours = std::fs::read(p.path().join("environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_slice()));
        if ours {
            // SAFETY: kill has no memory-safety preconditions; a process gone since fails (ESRCH).
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}

/// Read at most `cap` bytes; `Err(())` when there were more.
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: u64) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf).await.map_err(|_| ())?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() as u64 + n as u64 > cap {
            return Err(());
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Keep only the last `keep` bytes, and write them to `live` as they come.
async fn read_tail(mut r: impl AsyncRead + Unpin, keep: usize, mut live: LiveLog) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while let Ok(n) = live.wait_for(r.read(&mut buf), tail(&out, keep)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > 2 * keep {
            out.drain(..out.len() - keep);
        }
        live.update(tail(&out, keep), false);
    }
    live.update(tail(&out, keep), true);
    if out.len() > keep {
        out.drain(..out.len() - keep);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last `keep` bytes of `b`.
pub(crate) fn tail(b: &[u8], keep: usize) -> &[u8] {
    &b[b.len().saturating_sub(keep)..]
}

/// The tail of a running job's standard error, kept in a file of the node's own (never in the job's
/// directory, which the job controls) for its tenant to read as it runs (`GET /logs/<lease>`,
/// ACC-01): replaced whole, at most once a second, so a chatty job costs the node little; what
/// the throttle held back is written once the second is over ([`LiveLog::wait_for`]). What an
/// earlier run of the job left there (a service started again after it exited, a job run again
/// after the node's restart) stays before it: its last [`LiveLog::EARLIER`] bytes, then a line
/// saying the job started again. Made once per run ([`LiveLog::of`]); a run that writes it from
/// two places clones it first.
#[derive(Clone, Debug)]
pub(crate) struct LiveLog {
    path: Option<PathBuf>,
    written: Option<std::time::Instant>,
    /// A write was held back.
    dirty: bool,
    /// What earlier runs left, with the line that says this run began.
    earlier: Vec<u8>,
}

impl LiveLog {
    /// Most bytes of earlier runs' logs kept before a run's own.
    pub(crate) const EARLIER: usize = 64 << 10;
    /// The line between an earlier run's log and the next run's.
    pub(crate) const STARTED_AGAIN: &[u8] = b"[gridlease: the job started again]\n";

    /// Where `job` keeps it (nowhere when it has no `live_log`), after what earlier runs left.
    pub(crate) fn of(job: &JobRun) -> Self {
        let earlier = job
            .live_log
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .filter(|b| !b.is_empty())
            .map(|b| {
                let mut e = tail(&b, Self::EARLIER).to_vec();
                if !e.ends_with(b"\n") {
                    e.push(b'\n');
                }
                e.extend_from_slice(Self::STARTED_AGAIN);
                e
            })
            .unwrap_or_default();
        Self {
            path: job.live_log.clone(),
            written: None,
            dirty: false,
            earlier,
        }
    }

    /// Wait for `next` (the job's next output); if a write the throttle held back falls due
    /// meanwhile, write `held` (the tail as it stands) then, so a job gone quiet shows it.
    pub(crate) async fn wait_for<T>(&mut self, next: impl Future<Output = T>, held: &[u8]) -> T {
        tokio::pin!(next);
        if self.dirty && self.path.is_some() {
            let wait = self.written.map_or(Duration::ZERO, |t| {
                Duration::from_secs(1).saturating_sub(t.elapsed())
            });
            if let Ok(v) = tokio::time::timeout(wait, &mut next).await {
                return v;
            }
            self.update(held, true);
        }
        next.await
    }

    /// Write `tail` (whole) unless it was written less than a second ago; `now`: whatever the
    /// time. A failure to write is logged and costs the job nothing.
    pub(crate) fn update(&mut self, tail: &[u8], now: bool) {
        let Some(path) = &self.path else { return };
        if !now
            && self
                .written
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            self.dirty = true;
            return;
        }
        self.written = Some(std::time::Instant::now());
        self.dirty = false;
        let tmp = path.with_extension("log.tmp");
        let whole = [self.earlier.as_slice(), tail].concat();
        if let Err(e) = std::fs::write(&tmp, whole).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::debug!(path = %path.display(), error = %e, "cannot write a job's live log");
        }
    }
}

impl ProcessExecutor {
    /// Spawn `argv` in `job`'s directory with exactly `env` (plus PATH/HOME), in its own process
    /// group, under its time limit. Returns the child; `on_spawn` gets its process group id (to
    /// record before waiting).
    async fn exec(
        &self,
        argv: &[String],
        env: &std::collections::BTreeMap<String, String>,
        job: &JobRun,
        cancel: CancellationToken,
        on_spawn: impl FnOnce(i32),
    ) -> Result<Output, ExecError> {
        let (dir, limit, live) = (job.work_dir.as_path(), job.time_limit, LiveLog::of(job));
        // Absolute: the job runs in `dir`, where a relative path would name another place.
        let out_dir = std::path::absolute(dir.join("out"))
            .map_err(|e| ExecError::Io(format!("the job's output directory: {e}")))?;
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| ExecError::Io(format!("cannot create {}: {e}", out_dir.display())))?;
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| ExecError::Unsupported("the container job has no command".into()))?;
        let mut cmd = tokio::process::Command::new(prog);
        cmd.args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", BASE_PATH)
            .env("HOME", dir)
            .env("GRIDLEASE_OUTPUT", &out_dir)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL the child when the
        // node dies, so a `kill -9` of the node leaves no orphaned job behind.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| ExecError::Io(format!("cannot start {prog}: {e}")))?;
        let pgid = child.id().map_or(0, |p| p as i32);
        on_spawn(pgid);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let cap = self.limits.max_output;
        let keep = self.limits.stderr_tail;
        let out_task = tokio::spawn(async move {
            match stdout {
                Some(s) => read_capped(s, cap).await,
                None => Ok(Vec::new()),
            }
        });
        let mut err_task = tokio::spawn(async move {
            match stderr {
                Some(s) => read_tail(s, keep, live).await,
                None => String::new(),
            }
        });
        let readers = [out_task.abort_handle(), err_task.abort_handle()];
        let status = tokio::select! {
            s = child.wait() => s.map_err(|e| ExecError::Io(format!("waiting for {prog}: {e}")))?,
            () = tokio::time::sleep(limit) => {
                kill_group(pgid);
                let _ = child.wait().await;
                // Its last words reach the live log (the tenant's clue why it ran over); then
                // no reader outlives the job, whatever still holds its pipes.
                let _ = tokio::time::timeout(PIPE_DRAIN, &mut err_task).await;
                readers.iter().for_each(tokio::task::AbortHandle::abort);
                return Err(ExecError::TimedOut(limit));
            }
            () = cancel.cancelled() => {
                kill_group(pgid);
                let _ = child.wait().await;
                readers.iter().for_each(tokio::task::AbortHandle::abort);
                return Err(ExecError::Cancelled);
            }
        };
        // Whatever the job left running in its group goes with it.
        kill_group(pgid);
        // A process it started outside its group (`setsid`) escapes the kill and may hold the
        // pipes open for ever: they get a moment to drain, not the rest of the lease (waiting
        // would miss the result deadline).
        let drained =
            tokio::time::timeout(PIPE_DRAIN, async { (out_task.await, err_task.await) }).await;
        let Ok((stdout, stderr_tail)) = drained else {
            readers.iter().for_each(tokio::task::AbortHandle::abort);
            return Err(ExecError::Io(
                "a process the job started outside its process group kept its output open after it exited".into(),
            ));
        };
        let stdout = stdout
            .map_err(|e| ExecError::Io(e.to_string()))?
            .map_err(|()| ExecError::OutputCap(cap))?;
        let stderr_tail = stderr_tail.unwrap_or_default();
        if !status.success() {
            return Err(ExecError::Failed {
                code: status.code(),
                stderr: stderr_tail,
            });
        }
        let result = read_result(&out_dir.join("result"), cap)?.unwrap_or(stdout);
        Ok(Output {
            result,
            stderr_tail,
        })
    }

    async fn run_container(
        &self,
        job: JobRun,
        cancel: CancellationToken,
        on_spawn: OnSpawn,
    ) -> Result<Output, ExecError> {
        let (command, env) = match &job.workload {
            Workload::Container { command, env, .. } => (command, env.clone()),
            Workload::Service {
                command, env, port, ..
            } => {
                // A service listens on the port its spec names, told in `PORT`; behind the TLS
                // front, on the loopback port the front carries its connections to.
                let mut env = env.clone();
                let port = job.loopback_port.unwrap_or(*port);
                env.insert("PORT".into(), port.to_string());
                (command, env)
            }
            _ => {
                return Err(ExecError::Unsupported(
                    "the process executor runs container and service jobs".into(),
                ));
            }
        };
        self.exec(command, &env, &job, cancel, on_spawn).await
    }
}

impl Executor for ProcessExecutor {
    fn name(&self) -> &'static str {
        "process"
    }

    fn supports(&self, w: &Workload) -> Result<(), String> {
        match w {
            Workload::Container { command, .. } | Workload::Service { command, .. }
                if command.is_empty() =>
            {
                Err(
                    "the process executor needs a command (it does not run an image's default)"
                        .into(),
                )
            }
            Workload::Container { .. } | Workload::Service { .. } => Ok(()),
            other => Err(format!(
                "the process executor does not run {:?} jobs",
                other.kind()
            )),
        }
    }

    fn run(&self, job: JobRun, cancel: CancellationToken, on_spawn: OnSpawn) -> RunFuture<'_> {
        Box::pin(self.run_container(job, cancel, on_spawn))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn job(dir: &Path, argv: &[&str], env: &[(&str, &str)], limit: Duration) -> JobRun {
        JobRun {
            id: B256::repeat_byte(1),
            workload: Workload::Container {
                image: "local".into(),
                command: argv.iter().map(|s| (*s).to_owned()).collect(),
                env: env
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>(),
            },
            time_limit: limit,
            work_dir: dir.to_path_buf(),
            gpus: Vec::new(),
            cpu_cores: 0,
            ram_gib: 0,
            live_log: None,
            gpu_hold: None,
            loopback_port: None,
        }
    }

    fn alive(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }

    /// ACC-01: the live log follows the job: a line held back by the once-a-second throttle is
    /// written once the second is over, while the job is quiet (not at its next line or its exit,
    /// 30 s on); and a job that runs over its time leaves its last words there (the throttle held
    /// them back, and the kill came before their second was over).
    #[tokio::test]
    async fn a_running_jobs_live_log_catches_up_while_it_is_quiet_and_keeps_its_last_words() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("job.log");
        let read = || std::fs::read_to_string(&live).unwrap_or_default();
        let x = ProcessExecutor::default();
        let script = ["sh", "-c", "echo a >&2; sleep 0.2; echo b >&2; sleep 30"];
        let mut j = job(dir.path(), &script, &[], Duration::from_secs(60));
        j.live_log = Some(live.clone());
        let cancel = CancellationToken::new();
        let run = tokio::spawn({
            let (x, cancel) = (x.clone(), cancel.clone());
            async move { x.run(j, cancel, Box::new(|_| {})).await }
        });
        let t0 = std::time::Instant::now();
        while read() != "a\nb\n" {
            assert!(
                !run.is_finished() && t0.elapsed() < Duration::from_secs(20),
                "the held-back line never reached the live log: {:?}",
                read()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
        let e = run.await.expect("join").expect_err("cancelled");
        assert!(matches!(e, ExecError::Cancelled), "{e}");

        let script = ["sh", "-c", "echo a >&2; sleep 0.1; echo b >&2; sleep 30"];
        let mut j = job(dir.path(), &script, &[], Duration::from_millis(700));
        std::fs::remove_file(&live).expect("remove");
        j.live_log = Some(live.clone());
        let e = x
            .run(j, CancellationToken::new(), Box::new(|_| {}))
            .await
            .expect_err("runs over");
        assert!(matches!(e, ExecError::TimedOut(_)), "{e}");
        assert_eq!(read(), "a\nb\n");

        // Run again (a service restarted after it exited): the earlier run's words stay first.
        let mut j = job(
            dir.path(),
            &["sh", "-c", "echo c >&2"],
            &[],
            Duration::from_secs(60),
        );
        j.live_log = Some(live.clone());
        x.run(j, CancellationToken::new(), Box::new(|_| {}))
            .await
            .expect("runs");
        assert_eq!(read(), "a\nb\n[gridlease: the job started again]\nc\n");
    }

    #[tokio::test]
    async fn a_leftover_group_is_killed_only_while_it_is_still_the_job_s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("lease").join("out");
        let start = |marker: &Path| {
            tokio::process::Command::new("sleep")
                .arg("30")
                .env("GRIDLEASE_OUTPUT", marker)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .expect("spawn")
        };
        let mut job = start(&out);
        let mut other = start(&dir.path().join("another").join("out"));
        let (job_pgid, other_pgid) = (
            job.id().expect("pid") as i32,
            other.id().expect("pid") as i32,
        );
        // The recorded id now names another program's group (a reboot, an id reused): left.
        assert_eq!(kill_leftover(other_pgid, &out), 0);
        assert!(alive(other_pgid));
        assert_eq!(kill_leftover(job_pgid, &out), 1);
        let _ = job.wait().await;
        assert!(!alive(job_pgid));
        assert!(alive(other_pgid));
        other.kill().await.expect("kill");
    }

    #[tokio::test]
    async fn mec_15_a_process_that_escapes_the_group_and_holds_the_output_does_not_hold_the_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("escaped.pid");
        // The job exits only once the escaped process has left its group (it wrote its pid).
        let script = format!(
            "setsid sh -c 'echo $$ > {p}; exec sleep 60' & \
             while [ ! -s {p} ]; do sleep 0.05; done; echo done",
            p = pidfile.display()
        );
        let x = ProcessExecutor::default();
        let got = x
            .run(
                job(
                    dir.path(),
                    &["sh", "-c", &script],
                    &[],
                    Duration::from_secs(120),
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await;
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: a plain kill of the process this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let e = got.expect_err("its output never closed");
        assert!(e.to_string().contains("outside its process group"), "{e}");
    }

    #[tokio::test]
    async fn stdout_is_the_result_and_exit_codes_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let x = ProcessExecutor::default();
        let long = Duration::from_secs(20);
        let ok = x
            .run(
                job(
                    dir.path(),
                    &["sh", "-c", "printf hello; echo oops >&2"],
                    &[],
                    long,
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect("runs");
        assert_eq!(ok.result, b"hello");
        assert_eq!(ok.stderr_tail, "oops\n");
        let err = x
            .run(
                job(dir.path(), &["sh", "-c", "echo bad >&2; exit 7"], &[], long),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect_err("fails");
        assert!(
            matches!(&err, ExecError::Failed { code: Some(7), stderr } if stderr == "bad\n"),
            "{err}"
        );
        // A result file wins over stdout.
        let f = x
            .run(
                job(
                    dir.path(),
                    &[
                        "sh",
                        "-c",
                        "printf file > \"$GRIDLEASE_OUTPUT/result\"; echo ignored",
                    ],
                    &[],
                    long,
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect("runs");
        assert_eq!(f.result, b"file");
        let missing = x
            .run(
                job(dir.path(), &["/no/such/program"], &[], long),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect_err("no program");
        assert!(matches!(missing, ExecError::Io(m) if m.contains("/no/such/program")));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let started = std::time::Instant::now();
        let err = ProcessExecutor::default()
            .run(
                job(
                    dir.path(),
                    &["sh", "-c", &script],
                    &[],
                    // Long enough for `sh` to write the pid file on a loaded machine.
                    Duration::from_secs(3),
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect_err("times out");
        assert!(matches!(err, ExecError::TimedOut(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid written")
            .trim()
            .parse()
            .expect("pid");
        // The grandchild (same group) is gone too; give the kernel a moment to reap it.
        let mut gone = false;
        for _ in 0..500 {
            if !alive(pid)
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
            {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancellation_stops_the_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c2.cancel();
        });
        let err = ProcessExecutor::default()
            .run(
                job(dir.path(), &["sleep", "30"], &[], Duration::from_secs(60)),
                cancel,
                no_hook(),
            )
            .await
            .expect_err("cancelled");
        assert!(matches!(err, ExecError::Cancelled), "{err}");
    }

    #[tokio::test]
    async fn output_over_the_cap_fails_the_job() {
        let dir = tempfile::tempdir().expect("tempdir");
        let x = ProcessExecutor {
            limits: ProcessLimits {
                max_output: 1_000,
                stderr_tail: 100,
            },
        };
        let err = x
            .run(
                job(
                    dir.path(),
                    &["sh", "-c", "head -c 5000 /dev/zero"],
                    &[],
                    Duration::from_secs(20),
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect_err("capped");
        assert!(matches!(err, ExecError::OutputCap(1_000)), "{err}");
        // The stderr tail keeps the end.
        let tail = x
            .run(
                job(
                    dir.path(),
                    &[
                        "sh",
                        "-c",
                        "i=0; while [ $i -lt 100 ]; do echo line$i >&2; i=$((i+1)); done",
                    ],
                    &[],
                    Duration::from_secs(20),
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect("runs")
            .stderr_tail;
        assert!(tail.len() <= 100 && tail.ends_with("line99\n"), "{tail}");
    }

    #[tokio::test]
    async fn the_job_sees_only_its_own_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        // SAFETY: set before the child is spawned; tests in this module do not read it concurrently.
        unsafe { std::env::set_var("GRIDLEASE_TEST_SECRET", "operator-password") };
        let out = ProcessExecutor::default()
            .run(
                job(
                    dir.path(),
                    &["sh", "-c", "env | sort"],
                    &[("TASK", "7")],
                    Duration::from_secs(20),
                ),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .expect("runs");
        let env = String::from_utf8(out.result).expect("utf8");
        assert!(!env.contains("operator-password"), "{env}");
        assert!(
            env.contains("TASK=7") && env.contains("GRIDLEASE_OUTPUT="),
            "{env}"
        );
        let names: Vec<&str> = env.lines().filter_map(|l| l.split('=').next()).collect();
        for n in names {
            assert!(
                [
                    "GRIDLEASE_OUTPUT",
                    "HOME",
                    "PATH",
                    "PWD",
                    "SHLVL",
                    "TASK",
                    "_",
                    "OLDPWD"
                ]
                .contains(&n),
                "unexpected variable {n}"
            );
        }
    }

    /// PIN-06: only a regular file is read as a job's result, within the cap; a symlink (to a
    /// secret of the node's host), a FIFO (which would hang the read), a device or a directory
    /// there is refused with nothing of it read.
    #[test]
    fn pin_06_a_result_is_read_only_from_a_regular_file_within_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path();
        let result = out.join("result");
        assert!(read_result(&result, 10).expect("absent").is_none());
        std::fs::write(&result, b"product").expect("write");
        assert_eq!(
            read_result(&result, 7).expect("read"),
            Some(b"product".to_vec())
        );
        assert!(matches!(
            read_result(&result, 6),
            Err(ExecError::OutputCap(6))
        ));

        let secret = out.join("node-secret");
        std::fs::write(&secret, b"SECRET").expect("write");
        let refused = |what: &str| {
            let got = read_result(&result, 1 << 20);
            assert!(matches!(got, Err(ExecError::NotAFile)), "{what}: {got:?}");
        };
        std::fs::remove_file(&result).expect("rm");
        std::os::unix::fs::symlink(&secret, &result).expect("symlink");
        refused("a symlink to a file of the host");
        std::fs::remove_file(&result).expect("rm");
        std::os::unix::fs::symlink("/dev/zero", &result).expect("symlink");
        refused("a symlink to an endless device");
        std::fs::remove_file(&result).expect("rm");
        let path = std::ffi::CString::new(result.as_os_str().as_encoded_bytes()).expect("path");
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0, "mkfifo");
        refused("a FIFO with no writer");
        std::fs::remove_file(&result).expect("rm");
        std::fs::create_dir(&result).expect("mkdir");
        refused("a directory");
    }
}
