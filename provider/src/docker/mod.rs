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
//! Standard output is the result unless the job wrote `$GRIDLEASE_OUTPUT/result`, read whole from
//! the engine once the container has stopped (a followed log stream can end without a container's
//! last lines); more than the cap kills the container, on standard output as it streams and in the
//! output directory, whose size
//! is checked every [`OUTPUT_POLL`] while the job runs (PIN-08: a disk filler is stopped within
//! one poll of passing the cap). A time limit, a cancellation (lease closed, shutdown) or any error after
//! the create kills and removes the container.
//!
//! - [`client`]: talking to the engine (requests, ping, pulls, removal of leftovers).
//! - [`create`]: the create bodies of both dialects (Docker's `DeviceRequests`, libpod's CDI).
//! - [`run`]: running a job: start, logs, output cap, wait, clean-up.
//! - [`exec`]: a tenant's command in its lease's running container (`gridlease shell`, ACC-02).

use std::{path::PathBuf, time::Duration};

use crate::{
    config::EngineConfig,
    executor::{ExecError, ProcessLimits},
};

mod client;
mod create;
pub mod exec;
pub mod images;
mod run;
pub(crate) use run::Demux;
#[cfg(test)]
mod tests;

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
/// Label carrying the node's identity ([`node_label`]): leftovers are matched on it.
pub const LABEL_NODE: &str = "gridlease.node";
/// Engine API version the requests name (Docker 20.10+, Podman 3+ serve it).
const API: &str = "/v1.41";
/// Podman's own API, used only to create containers: its Docker-compatible create ignores
/// `DeviceRequests`, while its own takes GPUs as CDI devices.
const LIBPOD: &str = "/v4.0.0/libpod";
/// Limit of one API call other than pull and wait.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The images this node pulled, for their pruning (none: nothing is booked or pruned).
    pub images: Option<std::sync::Arc<images::ImageBook>>,
}

/// A node's [`LABEL_NODE`]: its operator address and a hash of its data directory (as the system
/// resolves it). A restarted node finds its own leftovers; two nodes sharing an engine (an operator
/// running two with one key, or two test suites with the same devnet key) never take each other's
/// running containers for leftovers and remove them.
pub fn node_label(operator: alloy::primitives::Address, data_dir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let h = alloy::primitives::keccak256(dir.as_os_str().as_encoded_bytes());
    format!("{operator}/{}", alloy::primitives::hex::encode(&h[..6]))
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
