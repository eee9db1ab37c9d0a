//! The create request of a job's container, in the engine's dialect: the Docker Engine API's
//! (`DeviceRequests` for GPUs) or, on Podman, libpod's (GPUs as CDI devices); both with the
//! same isolation (PIN-06).

use std::{collections::BTreeMap, path::Path};

use serde_json::{Value, json};

use super::{
    API, CONTAINER_OUTPUT, ContainerExecutor, JOB_USER, LABEL_LEASE, LABEL_NODE, LIBPOD,
    PIDS_LIMIT, TMPFS_SIZE, enc,
};
use crate::executor::{ExecError, JobRun};
use gridlease_primitives::spec::Workload;

/// What a job's container runs.
pub(super) struct JobParts<'a> {
    pub(super) image: &'a str,
    pub(super) command: &'a [String],
    /// Its spec's variables, `GRIDLEASE_OUTPUT`, and for a service `PORT`.
    pub(super) env: BTreeMap<&'a str, String>,
    /// A service's TCP port, published on the same host port, or behind the TLS front on
    /// `loopback` of the host's loopback address only.
    pub(super) port: Option<u16>,
    /// See [`JobRun::loopback_port`].
    pub(super) loopback: Option<u16>,
}

impl ContainerExecutor {
    /// Whether the engine is Podman (containers are created through its own API).
    pub(super) fn podman(&self) -> bool {
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
    pub(super) fn job_env(job: &JobRun) -> Result<JobParts<'_>, ExecError> {
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
                ..
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
            loopback: job.loopback_port,
        })
    }

    /// The network mode of a job: the configured one, except that a service published on a port
    /// needs a network (`bridge` when the configuration says `none`).
    pub(super) fn network(&self, port: Option<u16>) -> &str {
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
            loopback,
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
            body["portmappings"] = json!([match loopback {
                Some(l) =>
                    json!({"container_port": p, "host_port": l, "host_ip": "127.0.0.1", "protocol": "tcp"}),
                None => json!({"container_port": p, "host_port": p, "protocol": "tcp"}),
            }]);
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
            loopback,
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
            let binding = match loopback {
                Some(l) => json!({"HostIp": "127.0.0.1", "HostPort": l.to_string()}),
                None => json!({"HostPort": p.to_string()}),
            };
            body["HostConfig"]["PortBindings"] = json!({ key: [binding] });
        }
        if !command.is_empty() {
            body["Cmd"] = json!(command);
        }
        Ok(body)
    }

    /// The name of the container of lease `job` (one per lease, so a retry replaces it).
    pub fn container_name(job: &JobRun) -> String {
        Self::container_name_of(job.id)
    }

    /// The name of lease `id`'s container.
    pub fn container_name_of(id: alloy::primitives::B256) -> String {
        format!("gridlease-{id:x}")
    }
}
