//! The container executor against a fake engine (an axum server on a unix socket that records
//! every request), and against a real one (Podman, which `scripts/test.sh` starts: `real_engine_*`).
use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use axum::{Router, extract::State, response::IntoResponse};
use gridlease_deploy::engine::Engine;

use super::*;
use crate::executor::no_hook;

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
    pull_error: Option<String>,
    leftovers: Vec<String>,
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
            let mut out = Vec::new();
            for chunk in f.stdout.chunks(700) {
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
        },
        "0xnode",
    );
    (dir, f, x)
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
        gpu_hold: None,
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

#[tokio::test]
async fn a_job_runs_isolated_with_its_gpus_limits_and_output_mount() {
    // SAFETY: set before anything reads it; no other test in this module reads it.
    unsafe { std::env::set_var("GRIDLEASE_DOCKER_TEST_SECRET", "operator-password") };
    let (dir, f, x) = serve(Fake {
        stdout: b"hello from the container".to_vec(),
        stderr: b"warming up\n".to_vec(),
        ..Fake::default()
    })
    .await;
    let out = x
        .run(
            job(dir.path(), "alpine:3.20", Duration::from_secs(20)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect("runs");
    assert_eq!(out.result, b"hello from the container");
    assert_eq!(out.stderr_tail, "warming up\n");
    let c = create_body(&f);
    assert_eq!(c["Image"], "alpine:3.20");
    assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
    // Only the spec's variables and GRIDLEASE_OUTPUT: nothing of the node's environment.
    assert_eq!(
        c["Env"],
        json!([format!("GRIDLEASE_OUTPUT={CONTAINER_OUTPUT}"), "TASK=7"])
    );
    assert!(!c.to_string().contains("operator-password"));
    let h = &c["HostConfig"];
    assert_eq!(
        h["DeviceRequests"],
        json!([{"Driver": "nvidia", "DeviceIDs": ["GPU-1111", "GPU-2222"], "Capabilities": [["gpu"]]}])
    );
    assert_eq!(h["Memory"], json!(4u64 << 30));
    assert_eq!(h["MemorySwap"], json!(4u64 << 30));
    assert_eq!(h["NanoCpus"], json!(2_000_000_000u64));
    assert_eq!(h["NetworkMode"], "none");
    // PIN-06: hardened by default.
    assert_eq!(h["CapDrop"], json!(["ALL"]));
    assert_eq!(h["ReadonlyRootfs"], true);
    assert_eq!(h["SecurityOpt"], json!(["no-new-privileges"]));
    assert_eq!(h["PidsLimit"], json!(PIDS_LIMIT));
    assert_eq!(
        h["Tmpfs"]["/tmp"],
        format!("rw,nosuid,nodev,mode=1777,size={TMPFS_SIZE}")
    );
    assert_eq!(c["User"], JOB_USER);
    let out_dir = dir.path().join("job/out");
    assert_eq!(
        h["Binds"],
        json!([format!("{}:{CONTAINER_OUTPUT}:rw", out_dir.display())])
    );
    assert_eq!(c["Labels"][LABEL_NODE], "0xnode");
    assert_eq!(
        c["Labels"][LABEL_LEASE],
        B256::repeat_byte(0xab).to_string()
    );
    let name = ContainerExecutor::container_name(&job(dir.path(), "x", Duration::ZERO));
    assert_eq!(
        calls(&f),
        [
            "POST /v1.41/images/create".to_owned(),
            format!("DELETE /v1.41/containers/{name}"),
            "POST /v1.41/containers/create".into(),
            "POST /v1.41/containers/c0ffee/start".into(),
            // logs and wait run concurrently: either order.
            calls(&f)[4].clone(),
            calls(&f)[5].clone(),
            "POST /v1.41/containers/c0ffee/kill".into(),
            "DELETE /v1.41/containers/c0ffee".into(),
        ]
    );
    let mut mid = [calls(&f)[4].clone(), calls(&f)[5].clone()];
    mid.sort();
    assert_eq!(
        mid,
        [
            "GET /v1.41/containers/c0ffee/logs",
            "POST /v1.41/containers/c0ffee/wait"
        ]
    );
    // Without GPUs or limits, none are asked for.
    let mut bare = job(dir.path(), "alpine", Duration::from_secs(5));
    bare.gpus.clear();
    bare.cpu_cores = 0;
    bare.ram_gib = 0;
    let b = x.create_body(&bare, &out_dir).expect("body");
    for k in ["DeviceRequests", "Memory", "NanoCpus"] {
        assert!(b["HostConfig"].get(k).is_none(), "{k}: {b}");
    }
}

#[tokio::test]
async fn a_result_file_in_the_mount_wins_and_exit_codes_are_reported() {
    let (dir, _f, x) = serve(Fake {
        stdout: b"ignored".to_vec(),
        result_file: Some(b"from the file".to_vec()),
        ..Fake::default()
    })
    .await;
    let out = x
        .run(
            job(dir.path(), "alpine", Duration::from_secs(20)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect("runs");
    assert_eq!(out.result, b"from the file");
    let (dir, f, x) = serve(Fake {
        exit: 3,
        stderr: b"no such file\n".to_vec(),
        ..Fake::default()
    })
    .await;
    let err = x
        .run(
            job(dir.path(), "alpine", Duration::from_secs(20)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect_err("fails");
    assert!(
        matches!(&err, ExecError::Failed { code: Some(3), stderr } if stderr == "no such file\n"),
        "{err}"
    );
    assert!(calls(&f).contains(&"DELETE /v1.41/containers/c0ffee".to_owned()));
}

#[tokio::test]
async fn a_timeout_kills_and_removes_the_container() {
    let (dir, f, x) = serve(Fake {
        hang: true,
        ..Fake::default()
    })
    .await;
    let started = std::time::Instant::now();
    let err = x
        .run(
            job(dir.path(), "alpine", Duration::from_millis(400)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect_err("times out");
    assert!(matches!(err, ExecError::TimedOut(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let c = calls(&f);
    let tail = &c[c.len() - 2..];
    assert_eq!(
        tail,
        [
            "POST /v1.41/containers/c0ffee/kill",
            "DELETE /v1.41/containers/c0ffee"
        ]
    );
    let kill = f
        .calls
        .lock()
        .expect("calls")
        .iter()
        .any(|(_, u, _)| u.ends_with("kill?signal=SIGKILL"));
    assert!(kill);
}

#[tokio::test]
async fn cancellation_kills_and_removes_the_container() {
    let (dir, f, x) = serve(Fake {
        hang: true,
        ..Fake::default()
    })
    .await;
    let cancel = CancellationToken::new();
    let run = x.run(
        job(dir.path(), "alpine", Duration::from_secs(60)),
        cancel.clone(),
        no_hook(),
    );
    let f2 = f.clone();
    let trigger = async move {
        // Cancel once the container was started (a condition, with a deadline).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !calls(&f2).iter().any(|c| c.ends_with("/wait")) {
            assert!(std::time::Instant::now() < deadline, "never started");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        cancel.cancel();
    };
    let (err, ()) = tokio::join!(run, trigger);
    assert!(matches!(err, Err(ExecError::Cancelled)), "{err:?}");
    assert!(calls(&f).ends_with(&[
        "POST /v1.41/containers/c0ffee/kill".to_owned(),
        "DELETE /v1.41/containers/c0ffee".to_owned()
    ]));
}

#[tokio::test]
async fn output_over_the_cap_kills_the_running_container_and_stderr_keeps_its_tail() {
    let (dir, f, mut x) = serve(Fake {
        hang: true,
        stdout: vec![b'x'; 5_000],
        ..Fake::default()
    })
    .await;
    x.limits = ProcessLimits {
        max_output: 1_000,
        stderr_tail: 100,
    };
    let err = x
        .run(
            job(dir.path(), "alpine", Duration::from_secs(60)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect_err("capped");
    assert!(matches!(err, ExecError::OutputCap(1_000)), "{err}");
    assert!(calls(&f).ends_with(&[
        "POST /v1.41/containers/c0ffee/kill".to_owned(),
        "DELETE /v1.41/containers/c0ffee".to_owned()
    ]));
    let lines: String = (0..100).map(|i| format!("line{i}\n")).collect();
    let (dir, _f, mut x) = serve(Fake {
        stderr: lines.into_bytes(),
        ..Fake::default()
    })
    .await;
    x.limits.stderr_tail = 100;
    let tail = x
        .run(
            job(dir.path(), "alpine", Duration::from_secs(20)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect("runs")
        .stderr_tail;
    assert!(tail.len() <= 100 && tail.ends_with("line99\n"), "{tail}");
}

#[tokio::test]
async fn pinned_images_are_pulled_by_digest_only_when_missing_and_pull_errors_say_why() {
    let digest = format!("sha256:{}", "1".repeat(64));
    let pinned = format!("ghcr.io/acme/train@{digest}");
    let (dir, f, x) = serve(Fake {
        images: vec![pinned.clone()],
        ..Fake::default()
    })
    .await;
    x.run(
        job(dir.path(), &pinned, Duration::from_secs(20)),
        CancellationToken::new(),
        no_hook(),
    )
    .await
    .expect("runs");
    assert!(
        !calls(&f).iter().any(|c| c.contains("images/create")),
        "{:?}",
        calls(&f)
    );
    let (dir, f, x) = serve(Fake {
        pull_error: Some("manifest unknown".into()),
        ..Fake::default()
    })
    .await;
    let err = x
        .run(
            job(dir.path(), &pinned, Duration::from_secs(20)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect_err("pull fails")
        .to_string();
    assert!(
        err.contains("manifest unknown") && err.contains(&pinned),
        "{err}"
    );
    let pull = f
        .calls
        .lock()
        .expect("calls")
        .iter()
        .find(|(_, u, _)| u.contains("images/create"))
        .map(|c| c.1.clone())
        .expect("pulled");
    assert!(
        pull.ends_with(&format!(
            "fromImage=ghcr.io%2Facme%2Ftrain&tag=sha256%3A{}",
            "1".repeat(64)
        )),
        "{pull}"
    );
    assert!(!calls(&f).iter().any(|c| c.contains("containers/create")));
    // A private tag the operator pulled on the host runs though the anonymous pull fails.
    let (dir, f, x) = serve(Fake {
        pull_error: Some("unauthorized".into()),
        images: vec!["registry.example.com/private/job:3".into()],
        ..Fake::default()
    })
    .await;
    x.run(
        job(
            dir.path(),
            "registry.example.com/private/job:3",
            Duration::from_secs(20),
        ),
        CancellationToken::new(),
        no_hook(),
    )
    .await
    .expect("runs the present image");
    assert!(calls(&f).iter().any(|c| c.contains("containers/create")));
    assert_eq!(split_image("alpine"), ("alpine", "latest"));
    assert_eq!(
        split_image("localhost:5000/a/b:v2"),
        ("localhost:5000/a/b", "v2")
    );
    assert_eq!(
        split_image("localhost:5000/a"),
        ("localhost:5000/a", "latest")
    );
}

#[tokio::test]
async fn leftovers_are_removed_by_label_and_ping_reports_the_engine() {
    let (_dir, f, x) = serve(Fake {
        leftovers: vec!["old1".into(), "old2".into()],
        ..Fake::default()
    })
    .await;
    assert_eq!(x.remove_leftovers().await.expect("listed"), 2);
    let list = f.calls.lock().expect("calls")[0].1.clone();
    assert!(
        list.contains("filters=") && list.contains("gridlease.node%3D0xnode"),
        "{list}"
    );
    assert!(calls(&f).ends_with(&[
        "DELETE /v1.41/containers/old1".to_owned(),
        "DELETE /v1.41/containers/old2".to_owned()
    ]));
    let info = x.ping().await.expect("pings");
    assert_eq!(info.version, "27.0.1");
    assert_eq!(info.platform, "Docker Engine - Fake");
}

#[tokio::test]
async fn a_missing_socket_tells_the_operator_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let x = ContainerExecutor::new(
        EngineConfig {
            engine: "podman".into(),
            socket: dir.path().join("nope.sock"),
            network: "none".into(),
        },
        "n",
    );
    let e = x.ping().await.expect_err("no engine").to_string();
    assert!(
        e.contains("is docker/podman running? set jobs.socket") && e.contains("nope.sock"),
        "{e}"
    );
    let e = x
        .run(
            job(dir.path(), "alpine", Duration::from_secs(5)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect_err("no engine")
        .to_string();
    assert!(e.contains("jobs.socket"), "{e}");
    assert_eq!(
        EngineConfig::parse_socket("unix:///run/x.sock"),
        Ok(PathBuf::from("/run/x.sock"))
    );
    assert!(EngineConfig::parse_socket("tcp://1.2.3.4:2375").is_err());
    assert!(
        x.supports(&Workload::MatmulI8 {
            m: 1,
            k: 1,
            n: 1,
            seed: B256::ZERO
        })
        .is_err()
    );
}

/// A container executor on the real engine, speaking `engine`'s dialect (`docker`: the Docker
/// Engine API's create; `podman`: libpod's), labelled `node`.
fn on_real(socket: &Path, engine: &str, node: &str) -> ContainerExecutor {
    ContainerExecutor::new(
        EngineConfig {
            engine: engine.into(),
            socket: socket.to_owned(),
            network: "none".into(),
        },
        node,
    )
}

/// A job of `image` running `script` for at most `limit`, with 1 CPU, 1 GiB and no GPU.
fn real_job(dir: &Path, image: &str, script: &str, limit: Duration) -> JobRun {
    let mut j = job(dir, image, limit);
    j.gpus.clear();
    j.cpu_cores = 1;
    j.ram_gib = 1;
    j.id = B256::random();
    j.workload = Workload::Container {
        image: image.into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        env: [("TASK".to_owned(), "7".to_owned())].into(),
    };
    j
}

/// PIN-06: a job on the real engine, through both create dialects, sees its spec's variables
/// and nothing of the node's environment, runs as `nobody` with no capability, cannot write its
/// root filesystem, cannot see the node's files, and writes its output where the node reads it.
#[tokio::test]
async fn real_engine_pin_06_a_job_sees_only_its_own_env_and_output_and_nothing_of_the_node() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let node_dir = tempfile::tempdir().expect("tempdir");
    let keystore = node_dir.path().join("operator.json");
    std::fs::write(&keystore, "SECRET-KEYSTORE").expect("write");
    for engine in ["docker", "podman"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let x = on_real(&socket, engine, "gridlease-test-env");
        x.ping().await.expect("the engine answers");
        let script = format!(
            "echo hello; echo -n file > $GRIDLEASE_OUTPUT/result2; env; echo uid=$(id -u); \
             grep CapEff /proc/self/status; echo x > /x 2>&1 || echo root-is-read-only; \
             echo t > /tmp/t && echo tmp-is-writable; \
             cat {} 2>&1; ls {} 2>&1; true",
            keystore.display(),
            node_dir.path().display()
        );
        let out = x
            .run(
                real_job(dir.path(), &image, &script, Duration::from_secs(120)),
                CancellationToken::new(),
                no_hook(),
            )
            .await
            .unwrap_or_else(|e| panic!("{engine}: {e}"));
        let text = String::from_utf8_lossy(&out.result);
        assert!(text.starts_with("hello\n"), "{engine}: {text}");
        assert!(text.contains("TASK=7"), "{engine}: {text}");
        assert!(
            text.contains(&format!("GRIDLEASE_OUTPUT={CONTAINER_OUTPUT}")),
            "{text}"
        );
        assert!(
            !text.contains("CARGO"),
            "{engine}: the node's environment leaked: {text}"
        );
        assert!(text.contains("uid=65534"), "{engine}: not nobody: {text}");
        assert!(
            text.contains("CapEff:\t0000000000000000"),
            "{engine}: capabilities: {text}"
        );
        assert!(text.contains("root-is-read-only"), "{engine}: {text}");
        assert!(text.contains("tmp-is-writable"), "{engine}: {text}");
        assert!(
            !text.contains("SECRET"),
            "{engine}: the node's file leaked: {text}"
        );
        assert!(text.contains("No such file"), "{engine}: {text}");
        assert_eq!(
            std::fs::read(dir.path().join("job/out/result2")).expect("output"),
            b"file"
        );
        assert_eq!(
            x.remove_leftovers().await.expect("list"),
            0,
            "removed after the run"
        );
    }
}

/// PIN-06: a fork bomb stops at the process limit and the job at its time limit; nothing is
/// left behind.
#[tokio::test]
async fn real_engine_pin_06_a_fork_bomb_is_contained_and_killed() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let x = on_real(&socket, "podman", "gridlease-test-bomb");
    let started = std::time::Instant::now();
    let got = x
        .run(
            real_job(
                dir.path(),
                &image,
                "b() { b | b & }; b; sleep 60",
                Duration::from_secs(8),
            ),
            CancellationToken::new(),
            no_hook(),
        )
        .await;
    assert!(
        matches!(
            got,
            Err(ExecError::TimedOut(_)) | Err(ExecError::Failed { .. })
        ),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "stopped at its limit"
    );
    assert_eq!(x.remove_leftovers().await.expect("list"), 0);
}

/// PIN-06: a job that allocates more than the lease's RAM is killed by the engine (no swap).
#[tokio::test]
async fn real_engine_pin_06_a_memory_hog_is_killed_at_the_lease_ram() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let x = on_real(&socket, "docker", "gridlease-test-mem");
    // `sort` holds its whole input, one 1.5 GB line, against a 1 GiB lease.
    let got = x
        .run(
            real_job(
                dir.path(),
                &image,
                "head -c 1500000000 /dev/zero | tr '\\0' a | sort > /dev/null",
                Duration::from_secs(120),
            ),
            CancellationToken::new(),
            no_hook(),
        )
        .await;
    match got {
        Err(ExecError::Failed { code, .. }) => assert_eq!(code, Some(137), "killed (OOM)"),
        other => panic!(
            "the hog was not killed: {:?}",
            other.map(|o| o.result.len())
        ),
    }
    assert_eq!(x.remove_leftovers().await.expect("list"), 0);
}

/// PIN-06, PIN-08: a disk filler gets ENOSPC at the tmpfs size, a read-only root, and is killed
/// within a poll of writing more than the node's output cap into its output directory.
#[tokio::test]
async fn real_engine_pin_06_pin_08_a_disk_filler_is_contained_and_killed_at_the_output_cap() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut x = on_real(&socket, "podman", "gridlease-test-disk");
    let out = x
        .run(
            real_job(
                dir.path(),
                &image,
                "head -c 400000000 /dev/zero 2>&1 > /tmp/fill; echo tmp=$?; \
                 echo tmpsize=$(wc -c < /tmp/fill); \
                 (head -c 1000 /dev/zero > /fill) 2>&1; echo root=$?",
                Duration::from_secs(120),
            ),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect("runs");
    let text = String::from_utf8_lossy(&out.result);
    assert!(!text.contains("tmp=0"), "the write to /tmp failed: {text}");
    let tmp: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tmpsize="))
        .and_then(|v| v.trim().parse().ok())
        .expect("the tmpfs file's size");
    assert!(tmp <= 256 << 20, "/tmp holds at most its tmpfs size: {tmp}");
    assert!(
        text.contains("Read-only file system") && !text.contains("root=0"),
        "{text}"
    );
    x.limits.max_output = 1 << 20;
    let started = std::time::Instant::now();
    let got = x
        .run(
            real_job(
                dir.path(),
                &image,
                "head -c 50000000 /dev/zero > $GRIDLEASE_OUTPUT/big; sleep 100",
                Duration::from_secs(100),
            ),
            CancellationToken::new(),
            no_hook(),
        )
        .await;
    assert!(
        matches!(got, Err(ExecError::OutputCap(c)) if c == 1 << 20),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "killed while writing, not at exit"
    );
    assert_eq!(x.remove_leftovers().await.expect("list"), 0);
}

/// PIN-06: a job is killed and removed when its lease ends (cancellation); and one whose node
/// died mid-run (its future dropped, as by `kill -9`) is removed by the next start's sweep.
#[tokio::test]
async fn real_engine_pin_06_a_job_is_removed_at_lease_end_and_after_a_node_crash() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let x = on_real(&socket, "podman", "gridlease-test-crash");
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        c2.cancel();
    });
    let got = x
        .run(
            real_job(dir.path(), &image, "sleep 600", Duration::from_secs(600)),
            cancel,
            no_hook(),
        )
        .await;
    assert!(matches!(got, Err(ExecError::Cancelled)), "{got:?}");
    assert_eq!(
        x.remove_leftovers().await.expect("list"),
        0,
        "removed at lease end"
    );

    // The crash: the run's future is dropped mid-job, so no cleanup of its own runs.
    let job = real_job(dir.path(), &image, "sleep 600", Duration::from_secs(600));
    let name = ContainerExecutor::container_name(&job);
    let crashed = on_real(&socket, "podman", "gridlease-test-crash");
    let run = tokio::spawn(async move {
        let _ = crashed.run(job, CancellationToken::new(), no_hook()).await;
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = x
            .call(
                "inspect",
                Method::GET,
                &format!("{API}/containers/{name}/json"),
                None,
            )
            .await
            .unwrap_or_default();
        if serde_json::from_slice::<Value>(&body)
            .ok()
            .is_some_and(|v| v["State"]["Running"] == true)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    run.abort();
    let _ = run.await;
    // The restarted node's sweep (`for_node` runs it at start) kills and removes it.
    let restarted = on_real(&socket, "podman", "gridlease-test-crash");
    assert_eq!(restarted.remove_leftovers().await.expect("sweep"), 1);
    assert_eq!(restarted.remove_leftovers().await.expect("sweep"), 0);
}

#[tokio::test]
async fn podman_creates_through_its_own_api_with_gpus_as_cdi_devices() {
    let (dir, f, mut x) = serve(Fake {
        stdout: b"ok".to_vec(),
        ..Fake::default()
    })
    .await;
    x.config.engine = "podman".into();
    let out = x
        .run(
            job(dir.path(), "alpine", Duration::from_secs(20)),
            CancellationToken::new(),
            no_hook(),
        )
        .await
        .expect("runs");
    assert_eq!(out.result, b"ok");
    let c = f
        .calls
        .lock()
        .expect("calls")
        .iter()
        .find(|(_, u, _)| u == "/v4.0.0/libpod/containers/create")
        .map(|c| c.2.clone())
        .expect("created through libpod");
    let name = ContainerExecutor::container_name(&job(dir.path(), "x", Duration::ZERO));
    assert_eq!(c["name"], name);
    assert_eq!(c["image"], "alpine");
    assert_eq!(c["command"], json!(["sh", "-c", "echo hi"]));
    assert_eq!(
        c["env"],
        json!({"GRIDLEASE_OUTPUT": CONTAINER_OUTPUT, "TASK": "7"})
    );
    assert_eq!(
        c["devices"],
        json!([{"path": "nvidia.com/gpu=GPU-1111"}, {"path": "nvidia.com/gpu=GPU-2222"}])
    );
    assert_eq!(
        c["resource_limits"]["memory"],
        json!({"limit": 4u64 << 30, "swap": 4u64 << 30})
    );
    assert_eq!(
        c["resource_limits"]["cpu"],
        json!({"quota": 200_000, "period": 100_000})
    );
    assert_eq!(c["netns"], json!({"nsmode": "none"}));
    assert_eq!(c["no_new_privileges"], true);
    // PIN-06: hardened by default.
    assert_eq!(c["cap_drop"], json!(["all"]));
    assert_eq!(c["read_only_filesystem"], true);
    assert_eq!(c["user"], JOB_USER);
    assert_eq!(c["resource_limits"]["pids"]["limit"], json!(PIDS_LIMIT));
    assert_eq!(c["mounts"][1]["destination"], "/tmp");
    assert_eq!(c["mounts"][1]["type"], "tmpfs");
    assert_eq!(c["labels"][LABEL_NODE], "0xnode");
    let out_dir = dir.path().join("job/out");
    assert_eq!(c["mounts"][0]["source"], out_dir.display().to_string());
    assert_eq!(c["mounts"][0]["destination"], CONTAINER_OUTPUT);
    // Everything but the create goes through the compatible API.
    assert!(calls(&f).ends_with(&[
        "POST /v1.41/containers/c0ffee/kill".to_owned(),
        "DELETE /v1.41/containers/c0ffee".to_owned()
    ]));
    // A named network joins it.
    x.config.network = "jobs-net".into();
    let b = x
        .libpod_body(&job(dir.path(), "alpine", Duration::ZERO), &out_dir)
        .expect("body");
    assert_eq!(b["netns"], json!({"nsmode": "bridge"}));
    assert_eq!(b["Networks"], json!({"jobs-net": {}}));
}

#[tokio::test]
async fn a_service_is_told_its_port_and_published_on_it() {
    let (dir, f, x) = serve(Fake::default()).await;
    let mut svc = job(dir.path(), "nginx:1.27", Duration::from_secs(20));
    svc.workload = Workload::Service {
        image: "nginx:1.27".into(),
        command: Vec::new(),
        env: [("MODE".to_owned(), "api".to_owned())].into(),
        port: 8080,
    };
    x.supports(&svc.workload)
        .expect("services run in containers");
    x.run(svc.clone(), CancellationToken::new(), no_hook())
        .await
        .expect("runs");
    let c = create_body(&f);
    assert_eq!(
        c["Env"],
        json!([
            format!("GRIDLEASE_OUTPUT={CONTAINER_OUTPUT}"),
            "MODE=api",
            "PORT=8080"
        ])
    );
    assert!(c.get("Cmd").is_none(), "the image's default command runs");
    assert_eq!(c["ExposedPorts"], json!({"8080/tcp": {}}));
    let h = &c["HostConfig"];
    assert_eq!(
        h["PortBindings"],
        json!({"8080/tcp": [{"HostPort": "8080"}]})
    );
    // `network = "none"` cannot publish a port: a service gets the bridge.
    assert_eq!(h["NetworkMode"], "bridge");
    let b = x
        .libpod_body(&svc, &dir.path().join("job/out"))
        .expect("body");
    assert_eq!(
        b["portmappings"],
        json!([{"container_port": 8080, "host_port": 8080, "protocol": "tcp"}])
    );
    assert_eq!(b["netns"], json!({"nsmode": "bridge"}));
    assert_eq!(b["env"]["PORT"], "8080");
}
