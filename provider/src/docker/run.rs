//! Running a job's container: pull, create, start, follow its logs under the output cap, wait
//! within the time limit, and remove it whatever happens.

use std::path::Path;

use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{
    API, ContainerExecutor, DockerError, OUTPUT_POLL, Result,
    client::{collect, engine_message},
    enc,
};
use crate::executor::{
    ExecError, Executor, JobRun, LiveLog, OnSpawn, Output, RunFuture, read_result, tail,
};
use gridlease_primitives::spec::Workload;

/// Demultiplex a non-TTY log stream: frames of `[stream, 0, 0, 0, size (u32 BE)]` + payload.
#[derive(Debug, Default)]
pub(crate) struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Bytes of a frame not yet whole.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feed bytes; call `f(stream, payload)` for every complete frame.
    pub(crate) fn feed(&mut self, data: &[u8], mut f: impl FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        while self.buf.len() - at >= 8 {
            let h = &self.buf[at..at + 8];
            let size = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if self.buf.len() - at - 8 < size {
                break;
            }
            f(h[0], &self.buf[at + 8..at + 8 + size]);
            at += 8 + size;
        }
        self.buf.drain(..at);
    }
}

/// The logs of a run: stdout (capped) and the tail of stderr.
#[derive(Debug, Default)]
struct Logs {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl ContainerExecutor {
    /// With `follow`, watch the logs of `id` while it runs, keeping only stderr's tail (written to
    /// `live` as it comes) and a count of stdout; without, read what the stopped container logged,
    /// stdout whole. Stdout over `cap` is an error either way.
    async fn follow_logs(
        &self,
        id: &str,
        (cap, keep): (u64, usize),
        follow: bool,
        mut live: LiveLog,
    ) -> Result<Logs, ExecError> {
        let resp = self
            .send(
                Method::GET,
                &format!(
                    "{API}/containers/{}/logs?follow={}&stdout=1&stderr=1",
                    enc(id),
                    u8::from(follow)
                ),
                None,
            )
            .await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = collect(resp.into_body(), 1 << 20).await.unwrap_or_default();
            return Err(DockerError::Api {
                op: "logs".into(),
                status,
                message: engine_message(&body),
            }
            .into());
        }
        let mut body = resp.into_body();
        let mut demux = Demux::default();
        let mut logs = Logs::default();
        // Each stream is held to the cap: stdout is the result, and stderr, of which only the
        // tail is kept here, is still written whole to the engine's log on the provider's disk
        // (PIN-08).
        let (mut stdout_len, mut stderr_len) = (0u64, 0u64);
        let mut over = false;
        while let Some(frame) = live.wait_for(body.frame(), tail(&logs.stderr, keep)).await {
            let frame =
                frame.map_err(|e| ExecError::Io(format!("the log stream broke off: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let before = stderr_len;
            demux.feed(&data, |stream, payload| match stream {
                2 => {
                    stderr_len += payload.len() as u64;
                    over |= stderr_len > cap;
                    logs.stderr.extend_from_slice(payload);
                    if logs.stderr.len() > 2 * keep {
                        logs.stderr.drain(..logs.stderr.len() - keep);
                    }
                }
                _ => {
                    stdout_len += payload.len() as u64;
                    if stdout_len > cap {
                        over = true;
                    } else if !follow {
                        logs.stdout.extend_from_slice(payload);
                    }
                }
            });
            if over {
                return Err(ExecError::OutputCap(cap));
            }
            if stderr_len != before {
                live.update(tail(&logs.stderr, keep), false);
            }
        }
        live.update(tail(&logs.stderr, keep), true);
        if logs.stderr.len() > keep {
            logs.stderr.drain(..logs.stderr.len() - keep);
        }
        Ok(logs)
    }

    /// Wait for `id` to stop; its exit code.
    async fn wait(&self, id: &str) -> Result<i64> {
        let resp = self
            .send(
                Method::POST,
                &format!("{API}/containers/{}/wait?condition=not-running", enc(id)),
                None,
            )
            .await?;
        let status = resp.status();
        let body = collect(resp.into_body(), 1 << 20).await?;
        if !status.is_success() {
            return Err(DockerError::Api {
                op: "wait".into(),
                status: status.as_u16(),
                message: engine_message(&body),
            });
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| DockerError::Protocol(format!("wait: {e}")))?;
        if let Some(m) = v.pointer("/Error/Message").and_then(Value::as_str)
            && !m.is_empty()
        {
            return Err(DockerError::Protocol(format!("wait: {m}")));
        }
        v.get("StatusCode")
            .and_then(Value::as_i64)
            .ok_or_else(|| DockerError::Protocol(format!("wait answered {v}")))
    }

    async fn run_job(&self, job: JobRun, cancel: CancellationToken) -> Result<Output, ExecError> {
        let deadline = Instant::now() + job.time_limit;
        let out_dir = job.work_dir.join("out");
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| ExecError::Io(format!("cannot create {}: {e}", out_dir.display())))?;
        // The engine resolves a relative bind source against its own working directory, not the
        // node's: hand it the absolute path (`jobs.work_dir` may be relative to the config).
        let out_dir = std::fs::canonicalize(&out_dir)
            .map_err(|e| ExecError::Io(format!("cannot resolve {}: {e}", out_dir.display())))?;
        // The container's user may not be the node's (an image's USER, user namespaces).
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| ExecError::Io(format!("chmod {}: {e}", out_dir.display())))?;
        }
        let (path, body) = self.create_request(&job, &out_dir)?;
        let image = Self::job_env(&job)?.image;
        let name = Self::container_name(&job);
        tokio::select! {
            r = tokio::time::timeout_at(deadline, self.pull(image)) => match r {
                Ok(r) => r?,
                Err(_) => return Err(ExecError::TimedOut(job.time_limit)),
            },
            () = cancel.cancelled() => return Err(ExecError::Cancelled),
        }
        // A container of this lease left by an earlier run (crash, kill -9) goes first.
        self.remove(&name).await?;
        let (_, created) = self
            .call("create container", Method::POST, &path, Some(&body))
            .await?;
        let id = serde_json::from_slice::<Value>(&created)
            .ok()
            .and_then(|v| v.get("Id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| ExecError::Io("create container: no Id in the answer".into()))?;
        info!(lease = %job.id, container = %id, image = %image, "container created");
        let r = self.start_and_wait(&job, &id, deadline, &cancel).await;
        self.discard(&id).await;
        let logs = r?;
        let result =
            read_result(&out_dir.join("result"), self.limits.max_output)?.unwrap_or(logs.stdout);
        Ok(Output {
            result,
            stderr_tail: String::from_utf8_lossy(&logs.stderr).into_owned(),
        })
    }

    /// Start `id`, follow its logs, wait for it; the logs of a successful run.
    async fn start_and_wait(
        &self,
        job: &JobRun,
        id: &str,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Logs, ExecError> {
        self.call(
            "start container",
            Method::POST,
            &format!("{API}/containers/{}/start", enc(id)),
            None,
        )
        .await?;
        // Watched while it runs: the output cap kills a job as it goes over.
        let limits = (self.limits.max_output, self.limits.stderr_tail);
        // Made once: it reads what an earlier run left, which the watch below then rewrites.
        let live = LiveLog::of(job);
        let watch = self.follow_logs(id, limits, true, live.clone());
        let wait = self.wait(id);
        tokio::pin!(watch, wait);
        let mut watched = false;
        let out_dir = job.work_dir.join("out");
        let mut poll = tokio::time::interval(OUTPUT_POLL);
        let code = loop {
            tokio::select! {
                code = &mut wait => break code?,
                w = &mut watch, if !watched => {
                    w?;
                    watched = true;
                }
                _ = poll.tick() => {
                    // Off the async workers: a tree of many entries takes a while to walk, and
                    // the poll, posts and challenge answers share them.
                    let dir = out_dir.clone();
                    let size = tokio::task::spawn_blocking(move || dir_size(&dir, MAX_OUTPUT_ENTRIES))
                        .await
                        .ok()
                        .flatten();
                    if size.is_none_or(|n| n > self.limits.max_output) {
                        return Err(ExecError::OutputCap(self.limits.max_output));
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err(ExecError::TimedOut(job.time_limit)),
                () = cancel.cancelled() => return Err(ExecError::Cancelled),
            }
        };
        // The result is what the stopped container logged, read whole. Podman's followed stream
        // can end without a container's last lines (the real-engine test once got a job's output
        // cut to its first line) or not end with it at all, so it never is the result.
        // Under the job's deadline too: an engine slow to hand back a capped log must not hold the
        // result, or the failure report, past it.
        let logs = tokio::select! {
            logs = self.follow_logs(id, limits, false, live) => logs?,
            () = tokio::time::sleep_until(deadline) => return Err(ExecError::TimedOut(job.time_limit)),
            () = cancel.cancelled() => return Err(ExecError::Cancelled),
        };
        if code != 0 {
            return Err(ExecError::Failed {
                code: i32::try_from(code).ok(),
                stderr: String::from_utf8_lossy(&logs.stderr).into_owned(),
            });
        }
        Ok(logs)
    }
}

/// Most entries (files, directories, anything) a job's output directory may hold: past it the
/// job is over its output cap, whatever their bytes (millions of empty files fill a disk's inodes
/// and take the walk below ever longer).
pub(super) const MAX_OUTPUT_ENTRIES: usize = 100_000;

/// Bytes under `dir` (files of every depth; links not followed), or `None` when the output
/// cannot be measured and counts as over the cap: a directory in it the node cannot read (a job
/// that hid what it writes from the node with `chmod`), or more than `max_entries` entries. A
/// missing `dir` holds nothing.
pub(super) fn dir_size(dir: &Path, max_entries: usize) -> Option<u64> {
    let (mut total, mut entries_seen) = (0u64, 0usize);
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => return None,
        };
        for e in entries {
            let e = e.ok()?;
            entries_seen += 1;
            if entries_seen > max_entries {
                return None;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    Some(total)
}

impl Executor for ContainerExecutor {
    fn name(&self) -> &'static str {
        "container"
    }

    fn supports(&self, w: &Workload) -> Result<(), String> {
        match w {
            Workload::Container { image, .. } | Workload::Service { image, .. }
                if image.trim().is_empty() =>
            {
                Err("the container job names no image".into())
            }
            // The front holds the service's port on the host; a container on the host's network
            // would bind the same port itself, and never start (ACC-03).
            Workload::Service { tls: true, .. } if self.config.network == "host" => Err(
                "a TLS service needs a network of its own: this node's containers share the host's (jobs.network = \"host\")".into(),
            ),
            Workload::Container { .. } | Workload::Service { .. } => Ok(()),
            other => Err(format!(
                "the container executor does not run {:?} jobs",
                other.kind()
            )),
        }
    }

    fn run(&self, job: JobRun, cancel: CancellationToken, _: OnSpawn) -> RunFuture<'_> {
        Box::pin(self.run_job(job, cancel))
    }
}
