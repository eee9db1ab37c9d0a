//! The container executor: container jobs run through the Docker Engine API, which Podman serves
//! too, over the engine's unix socket (`/var/run/docker.sock`, rootless Podman's
//! `$XDG_RUNTIME_DIR/podman/podman.sock`, or `jobs.socket`).
//!
//! For each job: pull the image (skipped when it is pinned by digest and already present), remove
//! a container of the same lease left by a crash, create the container, start it, follow its logs
//! and wait for it within the job's time limit, then remove it. The container gets:
//! - only the spec's `env` and `GRIDLEASE_OUTPUT` (no variable of the node's environment);
//! - the lease's limits: `cpu_cores` as `NanoCpus`, `ram_gib` as `Memory` (no swap on top), a
//!   process limit ([`PIDS_LIMIT`]);
//! - hardening (PIN-06): every capability dropped, `no-new-privileges`, a read-only root
//!   filesystem with a [`TMPFS_SIZE`] tmpfs at `/tmp`, and the unprivileged user [`JOB_USER`]
//!   (`nobody`), whatever the image's `USER` says;
//! - exactly the GPUs given to the job, by UUID: Docker gets `DeviceRequests` (the NVIDIA
//!   container toolkit does the rest); Podman, whose Docker-compatible create ignores
//!   `DeviceRequests`, gets its container created through its own API (`libpod`) with the CDI
//!   devices `nvidia.com/gpu=<UUID>` (the host needs a CDI spec naming GPUs by UUID:
//!   `nvidia-ctk cdi generate --device-name-strategy=uuid`);
//! - the network mode of `jobs.network` (default `none`);
//! - the job's output directory (the same host directory the process executor uses) mounted
//!   read-write at [`CONTAINER_OUTPUT`], which `GRIDLEASE_OUTPUT` names;
//! - the labels [`LABEL_LEASE`] and [`LABEL_NODE`], so a restarted node removes what an earlier
//!   run left ([`ContainerExecutor::remove_leftovers`]).
//!
//! Standard output is the result unless the job wrote `$GRIDLEASE_OUTPUT/result`; more than the cap
//! kills the container, on standard output as it streams and in the output directory, whose size
//! is checked every [`OUTPUT_POLL`] while the job runs (PIN-08: a disk filler is stopped within
//! one poll of passing the cap). A time limit, a cancellation (lease closed, shutdown) or any error after
//! the create kills and removes the container.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    body::{Bytes, Incoming},
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{net::UnixStream, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::executor::{ExecError, Executor, JobRun, OnSpawn, Output, ProcessLimits, RunFuture};
use gridlease_core::spec::Workload;

/// Where the job's output directory is mounted inside the container (`GRIDLEASE_OUTPUT`).
pub const CONTAINER_OUTPUT: &str = "/gridlease/out";
/// The user every job runs as (`nobody`): never root, whatever the image says.
pub const JOB_USER: &str = "65534:65534";
/// Processes a job may have at once (a fork bomb stops here).
pub const PIDS_LIMIT: i64 = 1024;
/// The size of the tmpfs at `/tmp`, the only writable place besides the output directory.
pub const TMPFS_SIZE: &str = "256m";
/// How often the output directory's size is checked while a job runs.
pub const OUTPUT_POLL: Duration = Duration::from_millis(200);
/// Label carrying the lease id.
pub const LABEL_LEASE: &str = "gridlease.lease";
/// Label carrying the node's identity (its operator address): leftovers are matched on it.
pub const LABEL_NODE: &str = "gridlease.node";
/// Engine API version the requests name (Docker 20.10+, Podman 3+ serve it).
const API: &str = "/v1.41";
/// Podman's own API, used only to create containers: its Docker-compatible create ignores
/// `DeviceRequests`, while its own takes GPUs as CDI devices.
const LIBPOD: &str = "/v4.0.0/libpod";
/// Limit of one API call other than pull and wait.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which engine, and how the executor reaches it (`[jobs] executor`, `socket`, `network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// `"docker"` or `"podman"` (for messages).
    pub engine: String,
    /// The engine's unix socket.
    pub socket: PathBuf,
    /// Container network mode: `none` (default), `bridge`, `host` or a network's name.
    pub network: String,
}

impl EngineConfig {
    /// The default socket of `engine`: Docker's `/var/run/docker.sock`; Podman's
    /// `$XDG_RUNTIME_DIR/podman/podman.sock` (rootless) or `/run/podman/podman.sock`.
    pub fn default_socket(engine: &str) -> PathBuf {
        if engine == "podman" {
            match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(d) if !d.is_empty() => Path::new(&d).join("podman/podman.sock"),
                _ => PathBuf::from("/run/podman/podman.sock"),
            }
        } else {
            PathBuf::from("/var/run/docker.sock")
        }
    }

    /// `jobs.socket` as written: a path or a `unix://` URL. Other schemes are refused.
    pub fn parse_socket(s: &str) -> Result<PathBuf, String> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(PathBuf::from(p));
        }
        if s.contains("://") {
            return Err(format!(
                "\"{s}\": only a unix socket is supported (a path or unix:///path); expose a remote engine through an SSH-forwarded socket"
            ));
        }
        Ok(PathBuf::from(s))
    }
}

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The socket cannot be reached.
    #[error(
        "cannot reach the {engine} engine at {}: {reason}; is docker/podman running? set jobs.socket to its socket",
        socket.display()
    )]
    Socket {
        /// docker or podman.
        engine: String,
        /// The socket tried.
        socket: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The engine answered an error.
    #[error("{op}: the engine answered {status}: {message}")]
    Api {
        /// What was asked.
        op: String,
        /// HTTP status.
        status: u16,
        /// The engine's message.
        message: String,
    },
    /// The image cannot be pulled.
    #[error(
        "cannot pull {image}: {message}; check the image name and that the engine's host reaches its registry (pulls are anonymous: pull a private image on the host first, by tag)"
    )]
    Pull {
        /// The image reference.
        image: String,
        /// The engine's message.
        message: String,
    },
    /// The connection broke, or the answer made no sense.
    #[error("{0}")]
    Protocol(String),
}

impl From<DockerError> for ExecError {
    fn from(e: DockerError) -> Self {
        ExecError::Io(e.to_string())
    }
}

type Result<T, E = DockerError> = std::result::Result<T, E>;

/// What `/_ping` and `/version` say (for `gridlease-provider check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineInfo {
    /// Engine version.
    pub version: String,
    /// API version.
    pub api_version: String,
    /// Component names (Podman reports "Podman Engine").
    pub platform: String,
}

/// Runs container jobs through a Docker/Podman engine.
#[derive(Clone, Debug)]
pub struct ContainerExecutor {
    /// How to reach the engine.
    pub config: EngineConfig,
    /// Value of [`LABEL_NODE`] on this node's containers.
    pub node: String,
    /// Output caps (the same as the process executor's).
    pub limits: ProcessLimits,
}

/// Percent-encode a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Split an image reference into the `fromImage` and `tag` of a pull: `repo@sha256:...` pulls the
/// digest, `repo:tag` the tag, a bare `repo` `latest`.
pub fn split_image(image: &str) -> (&str, &str) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name, digest);
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// Demultiplex a non-TTY log stream: frames of `[stream, 0, 0, 0, size (u32 BE)]` + payload.
#[derive(Debug, Default)]
struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feed bytes; call `f(stream, payload)` for every complete frame.
    fn feed(&mut self, data: &[u8], mut f: impl FnMut(u8, &[u8])) {
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

/// What a job's container runs.
struct JobParts<'a> {
    image: &'a str,
    command: &'a [String],
    /// Its spec's variables, `GRIDLEASE_OUTPUT`, and for a service `PORT`.
    env: BTreeMap<&'a str, String>,
    /// A service's TCP port, published on the same host port.
    port: Option<u16>,
}

/// The logs of a run: stdout (capped) and the tail of stderr.
#[derive(Debug, Default)]
struct Logs {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl ContainerExecutor {
    /// An executor for `config`, labelling its containers with `node`.
    pub fn new(config: EngineConfig, node: impl Into<String>) -> Self {
        Self {
            config,
            node: node.into(),
            limits: ProcessLimits::default(),
        }
    }

    /// The executor a node with `config` uses (none without a container engine): the engine must
    /// answer, and containers an earlier run of this node (`node`: its operator address) left
    /// behind are removed.
    pub async fn for_node(config: Option<&EngineConfig>, node: &str) -> Result<Option<Self>> {
        let Some(config) = config else {
            return Ok(None);
        };
        let x = Self::new(config.clone(), node);
        let info = x.ping().await?;
        let removed = x.remove_leftovers().await?;
        info!(
            engine = %info.platform, version = %info.version, api = %info.api_version,
            socket = %config.socket.display(), network = %config.network, leftovers_removed = removed,
            "container engine ready"
        );
        Ok(Some(x))
    }

    fn socket_error(&self, e: &std::io::Error) -> DockerError {
        DockerError::Socket {
            engine: self.config.engine.clone(),
            socket: self.config.socket.clone(),
            reason: e.to_string(),
        }
    }

    /// Send one request on a fresh connection; the response with its body still streaming.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<hyper::Response<Incoming>> {
        let stream = UnixStream::connect(&self.config.socket)
            .await
            .map_err(|e| self.socket_error(&e))?;
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| DockerError::Protocol(format!("engine handshake: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "engine connection closed");
            }
        });
        let bytes = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            None => Bytes::new(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "docker");
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| DockerError::Protocol(format!("request {path}: {e}")))?;
        tx.send_request(req)
            .await
            .map_err(|e| DockerError::Protocol(format!("{path}: the engine hung up: {e}")))
    }

    /// Send, read the whole (small) body, and fail on an error status.
    async fn call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let fut = async {
            let resp = self.send(method, path, body).await?;
            let status = resp.status();
            let bytes = collect(resp.into_body(), 4 << 20).await?;
            Ok::<_, DockerError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, fut)
            .await
            .map_err(|_| DockerError::Protocol(format!("{op}: no answer in {CALL_TIMEOUT:?}")))??;
        if status.is_client_error() || status.is_server_error() {
            return Err(DockerError::Api {
                op: op.to_owned(),
                status: status.as_u16(),
                message: engine_message(&bytes),
            });
        }
        Ok((status, bytes))
    }

    /// `/_ping` and `/version`: whether the engine answers, and what it is.
    pub async fn ping(&self) -> Result<EngineInfo> {
        let (_, ok) = self.call("ping", Method::GET, "/_ping", None).await?;
        if ok.as_ref() != b"OK" {
            return Err(DockerError::Protocol(format!(
                "/_ping answered {:?}, not OK: is {} a Docker/Podman API socket?",
                String::from_utf8_lossy(&ok),
                self.config.socket.display()
            )));
        }
        let (_, v) = self
            .call("version", Method::GET, &format!("{API}/version"), None)
            .await?;
        let v: Value = serde_json::from_slice(&v)
            .map_err(|e| DockerError::Protocol(format!("/version: {e}")))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
        Ok(EngineInfo {
            version: s("Version"),
            api_version: s("ApiVersion"),
            platform: v
                .pointer("/Platform/Name")
                .and_then(Value::as_str)
                .unwrap_or(&self.config.engine)
                .to_owned(),
        })
    }

    /// Remove every container labelled with this node (left by an earlier run that crashed or
    /// was killed); returns how many. The jobs themselves resume from the state database.
    pub async fn remove_leftovers(&self) -> Result<usize> {
        let filters = json!({"label": [format!("{LABEL_NODE}={}", self.node)]}).to_string();
        let (_, body) = self
            .call(
                "list containers",
                Method::GET,
                &format!("{API}/containers/json?all=1&filters={}", enc(&filters)),
                None,
            )
            .await?;
        let list: Vec<Value> = serde_json::from_slice(&body)
            .map_err(|e| DockerError::Protocol(format!("container list: {e}")))?;
        let mut n = 0;
        for c in list {
            if let Some(id) = c.get("Id").and_then(Value::as_str) {
                self.remove(id).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Force-remove container `id` (a name works too); absent is fine.
    async fn remove(&self, id: &str) -> Result<()> {
        match self
            .call(
                "remove container",
                Method::DELETE,
                &format!("{API}/containers/{}?force=1&v=1", enc(id)),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(DockerError::Api { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Kill (SIGKILL) and remove `id`, logging failures: used on every way out of a run.
    async fn discard(&self, id: &str) {
        let kill = self
            .call(
                "kill container",
                Method::POST,
                &format!("{API}/containers/{}/kill?signal=SIGKILL", enc(id)),
                None,
            )
            .await;
        if let Err(e) = kill {
            // 409: not running any more; the remove below is what matters.
            debug!(container = id, error = %e, "kill");
        }
        if let Err(e) = self.remove(id).await {
            warn!(container = id, error = %e, "cannot remove the job's container; it is removed at the next start");
        }
    }

    /// Pull `image` unless it is pinned by digest and already present.
    /// A tag that cannot be pulled but is present (a private image the operator pulled on the
    /// host: the executor pulls anonymously) runs as present, with a warning.
    async fn pull(&self, image: &str) -> Result<()> {
        if image.contains('@') && self.present(image).await? {
            return Ok(());
        }
        match self.pull_anyway(image).await {
            Err(e @ DockerError::Pull { .. }) if !image.contains('@') => {
                if self.present(image).await? {
                    warn!(image, error = %e, "cannot pull; running the image present on this host");
                    Ok(())
                } else {
                    Err(e)
                }
            }
            r => r,
        }
    }

    /// Whether `image` is in the engine's store.
    async fn present(&self, image: &str) -> Result<bool> {
        let r = self
            .call(
                "inspect image",
                Method::GET,
                &format!("{API}/images/{image}/json"),
                None,
            )
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(DockerError::Api { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn pull_anyway(&self, image: &str) -> Result<()> {
        let (name, tag) = split_image(image);
        let resp = self
            .send(
                Method::POST,
                &format!(
                    "{API}/images/create?fromImage={}&tag={}",
                    enc(name),
                    enc(tag)
                ),
                None,
            )
            .await?;
        let status = resp.status();
        let body = collect(resp.into_body(), 64 << 20).await?;
        let pull_err = |message: String| DockerError::Pull {
            image: image.to_owned(),
            message,
        };
        if !status.is_success() {
            return Err(pull_err(engine_message(&body)));
        }
        // Progress is a stream of JSON objects; a failure mid-way is one with "error".
        for v in serde_json::Deserializer::from_slice(&body).into_iter::<Value>() {
            let v = v.map_err(|e| pull_err(format!("unreadable progress: {e}")))?;
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(pull_err(e.to_owned()));
            }
        }
        Ok(())
    }

    /// Whether the engine is Podman (containers are created through its own API).
    fn podman(&self) -> bool {
        self.config.engine == "podman"
    }

    /// The create request of `job` whose output directory is `out_dir`: its path (with the
    /// container's name) and body. Docker gets the Engine API's create; Podman its own
    /// (`libpod`), whose GPUs are CDI devices `nvidia.com/gpu=<UUID>`.
    pub fn create_request(
        &self,
        job: &JobRun,
        out_dir: &Path,
    ) -> Result<(String, Value), ExecError> {
        let name = enc(&Self::container_name(job));
        if self.podman() {
            let body = self.libpod_body(job, out_dir)?;
            return Ok((format!("{LIBPOD}/containers/create"), body));
        }
        let body = self.create_body(job, out_dir)?;
        Ok((format!("{API}/containers/create?name={name}"), body))
    }

    /// What the container of `job` runs.
    fn job_env(job: &JobRun) -> Result<JobParts<'_>, ExecError> {
        let (image, command, env, port) = match &job.workload {
            Workload::Container {
                image,
                command,
                env,
            } => (image, command, env, None),
            Workload::Service {
                image,
                command,
                env,
                port,
            } => (image, command, env, Some(*port)),
            _ => {
                return Err(ExecError::Unsupported(
                    "the container executor runs container and service jobs".into(),
                ));
            }
        };
        let mut vars: BTreeMap<&str, String> =
            env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        vars.insert("GRIDLEASE_OUTPUT", CONTAINER_OUTPUT.to_owned());
        if let Some(p) = port {
            // As with the process executor: a service is told its port in `PORT`.
            vars.insert("PORT", p.to_string());
        }
        Ok(JobParts {
            image,
            command,
            env: vars,
            port,
        })
    }

    /// The network mode of a job: the configured one, except that a service published on a port
    /// needs a network (`bridge` when the configuration says `none`).
    fn network(&self, port: Option<u16>) -> &str {
        match (self.config.network.as_str(), port) {
            ("none", Some(_)) => "bridge",
            (n, _) => n,
        }
    }

    /// Podman's create body (`SpecGenerator`) for `job`.
    pub fn libpod_body(&self, job: &JobRun, out_dir: &Path) -> Result<Value, ExecError> {
        let JobParts {
            image,
            command,
            env,
            port,
        } = Self::job_env(job)?;
        let mut limits = json!({"pids": {"limit": PIDS_LIMIT}});
        if job.ram_gib > 0 {
            let bytes = u64::from(job.ram_gib) << 30;
            limits["memory"] = json!({"limit": bytes, "swap": bytes});
        }
        if job.cpu_cores > 0 {
            limits["cpu"] = json!({"quota": i64::from(job.cpu_cores) * 100_000, "period": 100_000});
        }
        let mut body = json!({
            "name": Self::container_name(job),
            "image": image,
            "env": env,
            "labels": {LABEL_LEASE: job.id.to_string(), LABEL_NODE: self.node},
            "mounts": [{
                "destination": CONTAINER_OUTPUT,
                "source": out_dir.display().to_string(),
                "type": "bind",
                "options": ["rw"],
            }, {
                "destination": "/tmp",
                "source": "tmpfs",
                "type": "tmpfs",
                // (libpod ignores a mode here: /tmp takes the image's, 1777 in every common image.)
                "options": ["rw", "nosuid", "nodev", format!("size={TMPFS_SIZE}")],
            }],
            "resource_limits": limits,
            "no_new_privileges": true,
            "cap_drop": ["all"],
            "read_only_filesystem": true,
            "user": JOB_USER,
            "terminal": false,
            "stdin": false,
        });
        if let Some(p) = port {
            body["portmappings"] =
                json!([{"container_port": p, "host_port": p, "protocol": "tcp"}]);
        }
        match self.network(port) {
            mode @ ("none" | "host" | "bridge") => body["netns"] = json!({"nsmode": mode}),
            name => {
                body["netns"] = json!({"nsmode": "bridge"});
                body["Networks"] = json!({ name: {} });
            }
        }
        if !job.gpus.is_empty() {
            let devices: Vec<Value> = job
                .gpus
                .iter()
                .map(|uuid| json!({"path": format!("nvidia.com/gpu={uuid}")}))
                .collect();
            body["devices"] = json!(devices);
        }
        if !command.is_empty() {
            body["command"] = json!(command);
        }
        Ok(body)
    }

    /// Docker's create body for `job` whose output directory is `out_dir`.
    pub fn create_body(&self, job: &JobRun, out_dir: &Path) -> Result<Value, ExecError> {
        let JobParts {
            image,
            command,
            env: vars,
            port,
        } = Self::job_env(job)?;
        let env: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut host = json!({
            "NetworkMode": self.network(port),
            "Binds": [format!("{}:{CONTAINER_OUTPUT}:rw", out_dir.display())],
            "PidsLimit": PIDS_LIMIT,
            "SecurityOpt": ["no-new-privileges"],
            "CapDrop": ["ALL"],
            "ReadonlyRootfs": true,
            "Tmpfs": {"/tmp": format!("rw,nosuid,nodev,mode=1777,size={TMPFS_SIZE}")},
            "AutoRemove": false,
        });
        if job.ram_gib > 0 {
            let bytes = u64::from(job.ram_gib) << 30;
            host["Memory"] = json!(bytes);
            host["MemorySwap"] = json!(bytes);
        }
        if job.cpu_cores > 0 {
            host["NanoCpus"] = json!(u64::from(job.cpu_cores) * 1_000_000_000);
        }
        if !job.gpus.is_empty() {
            host["DeviceRequests"] = json!([{
                "Driver": "nvidia",
                "DeviceIDs": job.gpus,
                "Capabilities": [["gpu"]],
            }]);
        }
        let mut body = json!({
            "Image": image,
            "Env": env,
            "Labels": {LABEL_LEASE: job.id.to_string(), LABEL_NODE: self.node},
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": false,
            "OpenStdin": false,
            "User": JOB_USER,
            "HostConfig": host,
        });
        if let Some(p) = port {
            let key = format!("{p}/tcp");
            body["ExposedPorts"] = json!({ key.clone(): {} });
            body["HostConfig"]["PortBindings"] = json!({ key: [{"HostPort": p.to_string()}] });
        }
        if !command.is_empty() {
            body["Cmd"] = json!(command);
        }
        Ok(body)
    }

    /// Follow the logs of `id` until the container stops (or, with `follow` false, read what it
    /// logged); stdout over `cap` is an error.
    async fn follow_logs(
        &self,
        id: &str,
        cap: u64,
        keep: usize,
        follow: bool,
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
        let mut over = false;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ExecError::Io(format!("the log stream broke off: {e}")))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            demux.feed(&data, |stream, payload| match stream {
                2 => {
                    logs.stderr.extend_from_slice(payload);
                    if logs.stderr.len() > 2 * keep {
                        logs.stderr.drain(..logs.stderr.len() - keep);
                    }
                }
                _ => {
                    if logs.stdout.len() as u64 + payload.len() as u64 > cap {
                        over = true;
                    } else {
                        logs.stdout.extend_from_slice(payload);
                    }
                }
            });
            if over {
                return Err(ExecError::OutputCap(cap));
            }
        }
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

    /// The name of the container of lease `job` (one per lease, so a retry replaces it).
    pub fn container_name(job: &JobRun) -> String {
        format!("gridlease-{:x}", job.id)
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
        let file = out_dir.join("result");
        let cap = self.limits.max_output;
        let result = match std::fs::metadata(&file) {
            Ok(m) if m.len() > cap => return Err(ExecError::OutputCap(cap)),
            Ok(_) => std::fs::read(&file)
                .map_err(|e| ExecError::Io(format!("cannot read {}: {e}", file.display())))?,
            Err(_) => logs.stdout,
        };
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
        let logs = self.follow_logs(id, self.limits.max_output, self.limits.stderr_tail, true);
        let wait = self.wait(id);
        tokio::pin!(logs, wait);
        let mut got_logs: Option<Logs> = None;
        let out_dir = job.work_dir.join("out");
        let mut poll = tokio::time::interval(OUTPUT_POLL);
        let code = loop {
            tokio::select! {
                code = &mut wait => break code?,
                l = &mut logs, if got_logs.is_none() => got_logs = Some(l?),
                _ = poll.tick() => {
                    if dir_size(&out_dir) > self.limits.max_output {
                        return Err(ExecError::OutputCap(self.limits.max_output));
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err(ExecError::TimedOut(job.time_limit)),
                () = cancel.cancelled() => return Err(ExecError::Cancelled),
            }
        };
        let logs = match got_logs {
            Some(l) => l,
            // The stream ends with the container; give it a moment to drain. Podman's followed
            // stream can miss the end of a container that exits at once: then read the logs
            // the container left, unfollowed.
            None => match tokio::time::timeout(Duration::from_secs(10), logs).await {
                Ok(l) => l?,
                Err(_) => {
                    warn!(
                        container = id,
                        "the log stream did not end with the container: reading its logs again"
                    );
                    self.follow_logs(id, self.limits.max_output, self.limits.stderr_tail, false)
                        .await?
                }
            },
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

/// Bytes under `dir` (files of every depth; links not followed).
fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

/// Read a body up to `cap` bytes.
async fn collect(mut body: Incoming, cap: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| DockerError::Protocol(format!("the engine's answer broke off: {e}")))?;
        if let Ok(d) = frame.into_data() {
            if out.len() + d.len() > cap {
                return Err(DockerError::Protocol(format!(
                    "the engine's answer is over {cap} bytes"
                )));
            }
            out.extend_from_slice(&d);
        }
    }
    Ok(Bytes::from(out))
}

/// The `message` of an engine error body, else the body.
fn engine_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned())
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

#[cfg(test)]
mod tests;
