//! The container executor against a fake engine (an axum server on a unix socket that records
//! every request), and against a real one (Podman, which `scripts/test.sh` starts: `real_engine_*`).
//!
//! - [`fake`]: jobs on the fake engine (isolation, limits, output, time-outs, pulls, leftovers).
//! - [`create`]: the create dialects on the fake engine (libpod with CDI GPUs; services' ports).
//! - [`real`]: PIN-06 and PIN-08 on the real engine.
use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use alloy::primitives::B256;
use axum::{Router, extract::State, response::IntoResponse};
use gridlease_primitives::spec::Workload;
use gridlease_testkit::engine::Engine;
use hyper::{Method, body::Bytes};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::executor::{Executor, JobRun, no_hook};

mod create;
mod fake;
mod real;

/// A fake engine: records every request and answers the handful of endpoints the executor
/// calls.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<(String, String, Value)>>,
    exit: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// `wait` never answers (a job that runs forever).
    hang: bool,
    images: Vec<String>,
    /// Images a container holds: removing one answers 409.
    in_use: Vec<String>,
    pull_error: Option<String>,
    leftovers: Vec<String>,
    /// The followed log stream ends after this many bytes of stdout (Podman's can end without a
    /// container's last lines).
    follow_cut: Option<usize>,
    /// Written to `<mounted dir>/result` when the container starts.
    result_file: Option<Vec<u8>>,
    bind: Mutex<Option<String>>,
}

/// A JSON answer (axum's `Json` needs a feature this workspace does not enable).
fn js(v: Value) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
}

fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

async fn engine(
    State(f): State<Arc<Fake>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode as S;
    let method = req.method().to_string();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_owned();
    let bytes = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    f.calls
        .lock()
        .expect("calls")
        .push((method.clone(), uri.clone(), body.clone()));
    let p = path.strip_prefix(API).unwrap_or(&path);
    match (method.as_str(), p) {
        ("GET", "/_ping") => "OK".into_response(),
        ("GET", "/version") => js(json!({
            "Version": "27.0.1", "ApiVersion": "1.46", "Platform": {"Name": "Docker Engine - Fake"}
        }))
        .into_response(),
        ("GET", p) if p.starts_with("/images/") => {
            let name = p.trim_start_matches("/images/").trim_end_matches("/json");
            if f.images.iter().any(|i| i == name) {
                js(json!({"Id": "sha256:1"})).into_response()
            } else {
                (S::NOT_FOUND, js(json!({"message": "No such image"}))).into_response()
            }
        }
        ("POST", "/images/create") => match &f.pull_error {
            Some(e) => {
                format!("{{\"status\":\"Pulling\"}}\n{}\n", json!({ "error": e })).into_response()
            }
            None => "{\"status\":\"Downloaded\"}\n".into_response(),
        },
        ("GET", "/containers/json") => js(f
            .leftovers
            .iter()
            .map(|id| json!({ "Id": id }))
            .collect::<Value>())
        .into_response(),
        ("DELETE", p) if p.starts_with("/containers/gridlease-") => {
            (S::NOT_FOUND, js(json!({"message": "No such container"}))).into_response()
        }
        ("DELETE", p) if p.starts_with("/images/") => {
            let name = p.trim_start_matches("/images/");
            if f.in_use.iter().any(|i| i == name) {
                (
                    S::CONFLICT,
                    js(json!({"message": "image is in use by a container"})),
                )
                    .into_response()
            } else if f.images.iter().any(|i| i == name) {
                js(json!([{ "Untagged": name }])).into_response()
            } else {
                (S::NOT_FOUND, js(json!({"message": "No such image"}))).into_response()
            }
        }
        ("DELETE", _) => S::NO_CONTENT.into_response(),
        ("POST", "/v4.0.0/libpod/containers/create") => {
            let bind = body
                .pointer("/mounts/0/source")
                .and_then(Value::as_str)
                .map(str::to_owned);
            *f.bind.lock().expect("bind") = bind;
            (S::CREATED, js(json!({"Id": "c0ffee", "Warnings": []}))).into_response()
        }
        ("POST", "/containers/create") => {
            let bind = body
                .pointer("/HostConfig/Binds/0")
                .and_then(Value::as_str)
                .and_then(|b| b.split(':').next())
                .map(str::to_owned);
            *f.bind.lock().expect("bind") = bind;
            (S::CREATED, js(json!({"Id": "c0ffee"}))).into_response()
        }
        ("POST", "/containers/c0ffee/start") => {
            let bind = f.bind.lock().expect("bind").clone();
            if let (Some(dir), Some(bytes)) = (bind, &f.result_file) {
                std::fs::write(Path::new(&dir).join("result"), bytes).expect("write result");
            }
            S::NO_CONTENT.into_response()
        }
        ("POST", "/containers/c0ffee/wait") => {
            if f.hang {
                std::future::pending::<()>().await;
            }
            js(json!({"StatusCode": f.exit})).into_response()
        }
        ("GET", "/containers/c0ffee/logs") => {
            let stdout = match f.follow_cut {
                Some(n) if uri.contains("follow=1") => &f.stdout[..n.min(f.stdout.len())],
                _ => &f.stdout[..],
            };
            let mut out = Vec::new();
            for chunk in stdout.chunks(700) {
                out.extend(frame(1, chunk));
            }
            for chunk in f.stderr.chunks(300) {
                out.extend(frame(2, chunk));
            }
            if f.hang {
                // A running job: the stream stays open after what it printed so far.
                return axum::body::Body::new(OpenBody(Some(Bytes::from(out)))).into_response();
            }
            out.into_response()
        }
        ("POST", "/containers/c0ffee/kill") => S::NO_CONTENT.into_response(),
        _ => (
            S::NOT_FOUND,
            format!("fake engine: no route {method} {uri}"),
        )
            .into_response(),
    }
}

/// A body that sends one chunk, then stays open forever (a running job's log stream).
struct OpenBody(Option<Bytes>);

impl hyper::body::Body for OpenBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        match self.0.take() {
            Some(b) => std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            None => std::task::Poll::Pending,
        }
    }
}

async fn serve(f: Fake) -> (tempfile::TempDir, Arc<Fake>, ContainerExecutor) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("engine.sock");
    let listener = tokio::net::UnixListener::bind(&sock).expect("bind");
    let f = Arc::new(f);
    let app = Router::new().fallback(engine).with_state(f.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let x = ContainerExecutor::new(
        EngineConfig {
            engine: "docker".into(),
            socket: sock,
            network: "none".into(),
            local_images: Vec::new(),
        },
        "0xnode",
    );
    (dir, f, x)
}

/// Run [`job`] on `x` to its end (no cancellation, no spawn hook).
async fn run_job(
    x: &ContainerExecutor,
    dir: &Path,
    image: &str,
    limit: Duration,
) -> Result<crate::executor::Output, ExecError> {
    x.run(job(dir, image, limit), CancellationToken::new(), no_hook())
        .await
}

fn job(dir: &Path, image: &str, limit: Duration) -> JobRun {
    JobRun {
        id: B256::repeat_byte(0xab),
        workload: Workload::Container {
            image: image.into(),
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: [("TASK".to_owned(), "7".to_owned())].into(),
        },
        time_limit: limit,
        work_dir: dir.join("job"),
        gpus: vec!["GPU-1111".into(), "GPU-2222".into()],
        cpu_cores: 2,
        ram_gib: 4,
        live_log: None,
        gpu_hold: None,
        loopback_port: None,
    }
}

fn calls(f: &Fake) -> Vec<String> {
    f.calls
        .lock()
        .expect("calls")
        .iter()
        .map(|(m, u, _)| format!("{m} {}", u.split('?').next().unwrap_or(u)))
        .collect()
}

fn create_body(f: &Fake) -> Value {
    f.calls
        .lock()
        .expect("calls")
        .iter()
        .find(|(_, u, _)| u.contains("/containers/create"))
        .map(|c| c.2.clone())
        .expect("a create call")
}
