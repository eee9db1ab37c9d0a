//! A tenant's command in its lease's running container (ACC-02): an engine exec, its streams
//! hijacked from the engine's connection.
//!
//! The container is found by the name the node gave it ([`ContainerExecutor::container_name`]),
//! and used only when its labels say it is this lease's and this node's and it is running: a
//! tenant names a lease, never a container, so it cannot reach another lease's or the operator's.
//! The command runs as [`JOB_USER`], unprivileged, in the container's namespaces, cgroup (its
//! memory, CPU and process limits count it) and filesystem, with the container's capabilities
//! (none) and `no-new-privileges`.

use alloy::primitives::B256;
use hyper::Method;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
};

use super::{API, ContainerExecutor, DockerError, JOB_USER, LABEL_LEASE, LABEL_NODE, Result, enc};

/// Largest answer head the engine may send before the hijacked stream.
const MAX_HEAD: usize = 16 << 10;

/// A started exec: its id, and the engine connection carrying its streams (multiplexed as the
/// container logs are, unless it has a terminal).
#[derive(Debug)]
pub struct ExecStream {
    /// The exec's id (for its resize and exit status).
    pub id: String,
    /// Whether it has a terminal: its output is then raw, one stream.
    pub tty: bool,
    /// Output bytes the engine sent with its answer's head.
    pub early: Vec<u8>,
    /// The output.
    pub read: OwnedReadHalf,
    /// The input (shut down: the command's standard input ends).
    pub write: OwnedWriteHalf,
}

/// Why a lease has no shell now.
#[derive(Debug, thiserror::Error)]
pub enum ExecRefusal {
    /// No container of the lease runs.
    #[error(
        "no container of this lease is running on this node now: the job has not started, is between restarts, or has ended"
    )]
    NotRunning,
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] DockerError),
}

impl ContainerExecutor {
    /// The running container of `lease`'s job, checked by its labels.
    pub async fn lease_container(&self, lease: B256) -> Result<String, ExecRefusal> {
        let name = Self::container_name_of(lease);
        let got = self
            .call(
                "inspect container",
                Method::GET,
                &format!("{API}/containers/{}/json", enc(&name)),
                None,
            )
            .await;
        let body = match got {
            Ok((_, body)) => body,
            Err(DockerError::Api { status: 404, .. }) => return Err(ExecRefusal::NotRunning),
            Err(e) => return Err(e.into()),
        };
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| DockerError::Protocol(format!("container inspect: {e}")))?;
        let label = |k: &str| {
            v.pointer("/Config/Labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let ours = label(LABEL_LEASE).as_deref() == Some(lease.to_string().as_str())
            && label(LABEL_NODE).as_deref() == Some(self.node.as_str());
        let running = v.pointer("/State/Running").and_then(Value::as_bool) == Some(true);
        if !ours || !running {
            return Err(ExecRefusal::NotRunning);
        }
        Ok(v.get("Id")
            .and_then(Value::as_str)
            .unwrap_or(&name)
            .to_owned())
    }

    /// Start `cmd` in `container` (a lease's, from [`Self::lease_container`]), with a terminal
    /// if `tty` (its `TERM` `term`).
    pub async fn exec(
        &self,
        container: &str,
        cmd: &[String],
        tty: bool,
        term: Option<&str>,
    ) -> Result<ExecStream, ExecRefusal> {
        let env: Vec<String> = term
            .filter(|_| tty)
            .map(|t| format!("TERM={t}"))
            .into_iter()
            .collect();
        let create = json!({
            "AttachStdin": true,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": tty,
            "Cmd": cmd,
            "User": JOB_USER,
            "Privileged": false,
            "Env": env,
        });
        let got = self
            .call(
                "create exec",
                Method::POST,
                &format!("{API}/containers/{}/exec", enc(container)),
                Some(&create),
            )
            .await;
        let body = match got {
            Ok((_, body)) => body,
            // Stopped between the inspect and the create.
            Err(DockerError::Api {
                status: 404 | 409, ..
            }) => return Err(ExecRefusal::NotRunning),
            Err(e) => return Err(e.into()),
        };
        let id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("Id").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| DockerError::Protocol("the exec create named no exec".into()))?;
        let (early, read, write) = self.hijack(&id, tty).await?;
        Ok(ExecStream {
            id,
            tty,
            early,
            read,
            write,
        })
    }

    /// `POST /exec/<id>/start` asking for the connection's upgrade, and the connection once the
    /// engine answered: its own bytes from then on are the exec's streams. Written by hand, as
    /// engines differ in how they answer (`101 UPGRADED`, or `200 OK` and the raw stream).
    async fn hijack(
        &self,
        id: &str,
        tty: bool,
    ) -> Result<(Vec<u8>, OwnedReadHalf, OwnedWriteHalf)> {
        let mut s = UnixStream::connect(&self.config.socket)
            .await
            .map_err(|e| self.socket_error(&e))?;
        let body = json!({"Detach": false, "Tty": tty}).to_string();
        let head = format!(
            "POST {API}/exec/{}/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
             Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{body}",
            enc(id),
            body.len()
        );
        let protocol = |why: String| DockerError::Protocol(format!("exec start: {why}"));
        s.write_all(head.as_bytes())
            .await
            .map_err(|e| protocol(e.to_string()))?;
        let mut buf = Vec::with_capacity(1024);
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return Err(protocol(format!("an answer head over {MAX_HEAD} bytes")));
            }
            let mut chunk = [0u8; 1024];
            let read = tokio::time::timeout(super::CALL_TIMEOUT, s.read(&mut chunk))
                .await
                .map_err(|_| protocol(format!("no answer in {:?}", super::CALL_TIMEOUT)))?
                .map_err(|e| protocol(e.to_string()))?;
            if read == 0 {
                return Err(protocol("the engine hung up".into()));
            }
            buf.extend_from_slice(&chunk[..read]);
        };
        let status = std::str::from_utf8(&buf[..end])
            .ok()
            .and_then(|h| h.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .unwrap_or(0);
        if status != 101 && status != 200 {
            return Err(DockerError::Api {
                op: "start exec".into(),
                status,
                message: super::client::engine_message(&buf[end + 4..]),
            });
        }
        // A hijacked stream has no body framing: an answer with one (a proxy in between) would
        // pass its chunk sizes off as the command's output.
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        if status == 200
            && head
                .lines()
                .any(|l| l.starts_with("transfer-encoding:") || l.starts_with("content-length:"))
        {
            return Err(protocol(
                "the engine answered with a body, not the command's streams (is a proxy in front of its socket?)".into(),
            ));
        }
        let early = buf.split_off(end + 4);
        let (read, write) = s.into_split();
        Ok((early, read, write))
    }

    /// Resize exec `id`'s terminal.
    pub async fn exec_resize(&self, id: &str, cols: u16, rows: u16) -> Result<()> {
        self.call(
            "resize exec",
            Method::POST,
            &format!("{API}/exec/{}/resize?h={rows}&w={cols}", enc(id)),
            None,
        )
        .await
        .map(|_| ())
    }

    /// What the engine says of exec `id` (`Running`, `ExitCode`, `Pid`).
    async fn exec_inspect(&self, id: &str) -> Result<Value> {
        let (_, body) = self
            .call(
                "inspect exec",
                Method::GET,
                &format!("{API}/exec/{}/json", enc(id)),
                None,
            )
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| DockerError::Protocol(format!("exec inspect: {e}")))
    }

    /// Kill exec `id` if it still runs (a session that ended before its command did): its
    /// process, and its process group when it leads one (a terminal's shell and what it started).
    /// Whether it was running. Processes it moved out of its group live on until the lease's
    /// container stops.
    pub async fn exec_kill(&self, id: &str) -> Result<bool> {
        let v = self.exec_inspect(id).await?;
        let pid = v.get("Pid").and_then(Value::as_i64).unwrap_or(0);
        if v.get("Running").and_then(Value::as_bool) != Some(true) || pid <= 1 {
            return Ok(false);
        }
        let Ok(pid) = i32::try_from(pid) else {
            return Ok(false);
        };
        // SAFETY: plain syscalls on a process id the engine reported for this exec.
        let killed = unsafe {
            let group = libc::getpgid(pid) == pid && libc::kill(-pid, libc::SIGKILL) == 0;
            libc::kill(pid, libc::SIGKILL) == 0 || group
        };
        if !killed {
            return Err(DockerError::Protocol(format!(
                "cannot kill the exec's process {pid}: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(true)
    }

    /// Exec `id`'s exit status once it ended (asked for up to 5 s after its streams closed: an
    /// engine may record it a moment later); `None` while it still runs.
    pub async fn exec_exit(&self, id: &str) -> Result<Option<i64>> {
        for _ in 0..50 {
            let v = self.exec_inspect(id).await?;
            if v.get("Running").and_then(Value::as_bool) == Some(false) {
                return Ok(v.get("ExitCode").and_then(Value::as_i64));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::UnixListener,
    };

    use super::*;
    use crate::config::EngineConfig;

    /// An engine on a unix socket in `dir` that answers one request with `head` and then `tail`
    /// (the stream), handing back the request's head.
    fn engine_answering(
        dir: &std::path::Path,
        head: &'static str,
        tail: &'static [u8],
    ) -> (ContainerExecutor, tokio::task::JoinHandle<String>) {
        let socket = dir.join("engine.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let asked = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.expect("read");
                got.extend_from_slice(&buf[..n]);
            }
            // One write: the head and the stream's first bytes come in one read, as an engine's
            // often do (and an error's body with its head).
            s.write_all(&[head.as_bytes(), tail].concat())
                .await
                .expect("answer");
            String::from_utf8_lossy(&got).into_owned()
        });
        let x = ContainerExecutor::new(
            EngineConfig {
                engine: "docker".into(),
                socket,
                network: "none".into(),
                local_images: Vec::new(),
            },
            "node",
        );
        (x, asked)
    }

    /// Docker's answer to an exec start that asks for the connection (`101 UPGRADED`), with the
    /// stream's first bytes in the same read as the head, gives the whole stream; the request asks
    /// for the upgrade. An answer with body framing (a proxy's, say) is refused, and an error
    /// status is the engine's error.
    #[tokio::test]
    async fn an_exec_start_hijacks_dockers_101_and_refuses_a_framed_or_failed_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (x, asked) = engine_answering(
            dir.path(),
            "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n",
        );
        let (early, mut read, _write) = x.hijack("abc", false).await.expect("hijacked");
        let mut stream = early;
        read.read_to_end(&mut stream).await.expect("read");
        assert_eq!(stream, b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n");
        let head = asked.await.expect("join");
        assert!(
            head.starts_with("POST /v1.41/exec/abc/start HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(
            head.contains("Upgrade: tcp") && head.contains("Connection: Upgrade"),
            "{head}"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let (x, _) = engine_answering(
            dir.path(),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n",
        );
        let e = x.hijack("abc", false).await.expect_err("framed");
        assert!(e.to_string().contains("not the command's streams"), "{e}");

        let dir = tempfile::tempdir().expect("tempdir");
        let (x, _) = engine_answering(
            dir.path(),
            "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n",
            br#"{"message":"container is not running"}"#,
        );
        let e = x.hijack("abc", false).await.expect_err("refused");
        assert!(matches!(e, DockerError::Api { status: 409, .. }), "{e}");
        assert!(e.to_string().contains("container is not running"), "{e}");
    }
}
