//! Talking to the engine: one request per connection over its unix socket, answers read up to a
//! cap, and the calls the executor makes besides running a job (ping, pull, remove).

use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    body::{Bytes, Incoming},
};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::UnixStream;
use tracing::{debug, info, warn};

use super::{
    API, CALL_TIMEOUT, ContainerExecutor, DockerError, EngineInfo, LABEL_NODE, Result, enc,
    split_image,
};
use crate::{config::EngineConfig, executor::ProcessLimits};

impl ContainerExecutor {
    /// An executor for `config`, labelling its containers with `node`.
    pub fn new(config: EngineConfig, node: impl Into<String>) -> Self {
        Self {
            config,
            node: node.into(),
            limits: ProcessLimits::default(),
            images: None,
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

    pub(super) fn socket_error(&self, e: &std::io::Error) -> DockerError {
        DockerError::Socket {
            engine: self.config.engine.clone(),
            socket: self.config.socket.clone(),
            reason: e.to_string(),
        }
    }

    /// Send one request on a fresh connection; the response with its body still streaming.
    pub(super) async fn send(
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
    pub(super) async fn call(
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
    pub(super) async fn remove(&self, id: &str) -> Result<()> {
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
    pub(super) async fn discard(&self, id: &str) {
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
    /// A tag that cannot be pulled runs from the engine's store only when the operator lists it
    /// in `jobs.local_images` (a private image it pulled on the host: the executor pulls
    /// anonymously). Any other image present on the host is the operator's own, not offered:
    /// the job fails with the pull's error, which does not say whether the host has it.
    /// With an image book, an image this pull brings onto the host is booked, and a booked one's
    /// use is recorded ([`super::images::ImageBook`]).
    pub(super) async fn pull(&self, image: &str) -> Result<()> {
        let pinned = image.contains('@');
        // Whether the host has it before this pull (asked once): a pinned image it has is not
        // pulled again, and the book keeps only what this node brings.
        let here = if pinned || self.images.is_some() {
            self.present(image).await?
        } else {
            false
        };
        if !(pinned && here) {
            self.pull_or_local(image).await?;
        }
        if let Some(book) = &self.images {
            book.used(image, !here, crate::unix_now());
        }
        Ok(())
    }

    async fn pull_or_local(&self, image: &str) -> Result<()> {
        match self.pull_anyway(image).await {
            Err(e @ DockerError::Pull { .. })
                if !image.contains('@') && self.config.local_images.iter().any(|i| i == image) =>
            {
                if self.present(image).await? {
                    info!(image, error = %e, "cannot pull; running the listed local image (jobs.local_images)");
                    Ok(())
                } else {
                    Err(e)
                }
            }
            r => r,
        }
    }

    /// Whether `image` is in the engine's store.
    pub(super) async fn present(&self, image: &str) -> Result<bool> {
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

    pub(super) async fn pull_anyway(&self, image: &str) -> Result<()> {
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
}

/// Read a body up to `cap` bytes.
pub(super) async fn collect(mut body: Incoming, cap: usize) -> Result<Bytes> {
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
pub(super) fn engine_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned())
}
