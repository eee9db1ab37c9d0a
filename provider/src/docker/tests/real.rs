//! The real engine (Podman, which `scripts/test.sh` starts): PIN-06 and PIN-08 end to end.

use super::*;

/// A container executor on the real engine, speaking `engine`'s dialect (`docker`: the Docker
/// Engine API's create; `podman`: libpod's), labelled `node`.
fn on_real(socket: &Path, engine: &str, node: &str) -> ContainerExecutor {
    ContainerExecutor::new(
        EngineConfig {
            engine: engine.into(),
            socket: socket.to_owned(),
            network: "none".into(),
            // The test image is imported, never pushed: it runs from the store, as listed.
            local_images: gridlease_testkit::engine::Engine::from_env()
                .map(|e| vec![e.image])
                .unwrap_or_default(),
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

/// PIN-06: a job whose result is a symlink to a file of the node's host (its environment, a key)
/// or a FIFO fails with nothing of it read: the node never publishes its own bytes as a result.
#[tokio::test]
async fn real_engine_pin_06_a_result_linked_to_the_nodes_files_is_not_read() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let node_dir = tempfile::tempdir().expect("tempdir");
    let keystore = node_dir.path().join("operator.json");
    std::fs::write(&keystore, "SECRET-KEYSTORE").expect("write");
    let x = on_real(&socket, "podman", "gridlease-test-link");
    for script in [
        "ln -s /proc/self/environ $GRIDLEASE_OUTPUT/result".to_owned(),
        format!("ln -s {} $GRIDLEASE_OUTPUT/result", keystore.display()),
        "mkfifo $GRIDLEASE_OUTPUT/result".to_owned(),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let got = x
            .run(
                real_job(dir.path(), &image, &script, Duration::from_secs(60)),
                CancellationToken::new(),
                no_hook(),
            )
            .await;
        assert!(matches!(got, Err(ExecError::NotAFile)), "{script}: {got:?}");
    }
    assert_eq!(x.remove_leftovers().await.expect("list"), 0);
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

/// ACC-01: a job's standard error reaches the node's live log (a file of the node's own, outside
/// the job's directory) while the job runs, and whole once it ended; its stdout (the result) does
/// not go there.
#[tokio::test]
async fn real_engine_acc_01_a_running_jobs_stderr_reaches_its_live_log_as_it_goes() {
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let (dir, logs) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let x = on_real(&socket, "podman", "gridlease-test-logs");
    let mut j = real_job(
        dir.path(),
        &image,
        "echo result; echo step 1 >&2; sleep 5; echo step 2 >&2",
        Duration::from_secs(120),
    );
    let live = logs.path().join("job.log");
    j.live_log = Some(live.clone());
    let run = tokio::spawn(async move { x.run(j, CancellationToken::new(), no_hook()).await });
    let read = || std::fs::read_to_string(&live).unwrap_or_default();
    let t0 = std::time::Instant::now();
    while !read().contains("step 1") {
        assert!(
            t0.elapsed() < Duration::from_secs(60) && !run.is_finished(),
            "no live log while it ran: {:?}",
            read()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!run.is_finished(), "the job ended before its log was seen");
    assert_eq!(read(), "step 1\n");
    let out = run.await.expect("join").expect("the job runs");
    assert_eq!(out.result, b"result\n");
    assert_eq!(read(), "step 1\nstep 2\n");
    assert_eq!(out.stderr_tail, "step 1\nstep 2\n");
}

/// An image the node pulled, unused past `jobs.keep_images`, is removed from the real engine's
/// store; the operator's own image (the one the test imported, never booked) stays.
#[tokio::test]
async fn real_engine_an_image_the_node_pulled_is_removed_once_unused_and_the_operators_stays() {
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let x = on_real(&socket, "docker", "gridlease-test-images")
        .with_image_book(&dir.path().join("images.json"));
    // A copy of the imported image under another name stands for one the node pulled (nothing
    // can be pulled offline).
    let (repo, tag) = ("localhost/gridlease-pruned", "1");
    x.call(
        "tag image",
        hyper::Method::POST,
        &format!("{API}/images/{image}/tag?repo={}&tag={tag}", enc(repo)),
        None,
    )
    .await
    .expect("tag");
    let copy = format!("{repo}:{tag}");
    assert!(x.present(&copy).await.expect("inspect"));
    let book = x.images.clone().expect("a book");
    book.used(&copy, true, 100);
    book.used(&image, false, 100);
    assert_eq!(x.prune_images(1_000).await, 1);
    assert!(
        !x.present(&copy).await.expect("inspect"),
        "the pulled copy is gone"
    );
    assert!(
        x.present(&image).await.expect("inspect"),
        "the operator's image stays"
    );
    assert!(book.uses().is_empty());
}

/// `cmd` started in `lease`'s running container, found as the node's shell route finds it.
async fn exec_in(
    x: &ContainerExecutor,
    lease: B256,
    cmd: &[String],
    tty: bool,
    term: Option<&str>,
) -> Result<exec::ExecStream, exec::ExecRefusal> {
    let container = x.lease_container(lease).await?;
    x.exec(&container, cmd, tty, term).await
}

/// All of an exec's output (stdout, stderr) until it ends, and its exit status; `input` is
/// written first, then its standard input is closed.
async fn exec_all(
    x: &ContainerExecutor,
    e: exec::ExecStream,
    input: &[u8],
) -> (String, String, i64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exec::ExecStream {
        id,
        tty,
        early,
        mut read,
        mut write,
    } = e;
    write.write_all(input).await.expect("input");
    write.shutdown().await.expect("end of input");
    let mut raw = early;
    tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut raw))
        .await
        .expect("the exec ends")
        .expect("read");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    if tty {
        out = raw;
    } else {
        Demux::default().feed(&raw, |stream, p| {
            if stream == 2 { &mut err } else { &mut out }.extend_from_slice(p);
        });
    }
    let code = x.exec_exit(&id).await.expect("inspect").expect("ended");
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        code,
    )
}

/// ACC-02: a tenant's command runs in its lease's running container, as the job's unprivileged
/// user with no capability, and sees nothing of the node's files; its input, its two streams,
/// its terminal and its exit status go through. Another node on the same engine, a lease with
/// no container, and the lease once its container is gone get no exec.
#[tokio::test]
async fn real_engine_acc_02_a_shell_runs_in_its_leases_container_and_reaches_nothing_else() {
    // The engine `scripts/test.sh` starts (a skip without one, a failure when it is required).
    let Some(Engine { socket, image }) = Engine::for_test() else {
        return;
    };
    let node_dir = tempfile::tempdir().expect("tempdir");
    let keystore = node_dir.path().join("operator.json");
    std::fs::write(&keystore, "SECRET-KEYSTORE").expect("write");
    let x = on_real(&socket, "podman", "gridlease-test-shell");
    let dir = tempfile::tempdir().expect("tempdir");
    let job = real_job(dir.path(), &image, "sleep 300", Duration::from_secs(300));
    let lease = job.id;
    let stop = CancellationToken::new();
    let run = tokio::spawn({
        let (x, stop) = (x.clone(), stop.clone());
        async move { x.run(job, stop, no_hook()).await }
    });
    let cmd = |c: &str| vec!["sh".to_owned(), "-c".to_owned(), c.to_owned()];
    // Once its container runs.
    let mut started = None;
    for _ in 0..600 {
        match exec_in(&x, lease, &cmd("true"), false, None).await {
            Ok(e) => {
                started = Some(e);
                break;
            }
            Err(exec::ExecRefusal::NotRunning) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let first = started.expect("the lease's container runs within 60 s");
    assert_eq!(exec_all(&x, first, b"").await.2, 0);

    let script = format!(
        "id -u; grep CapEff /proc/self/status; echo $TASK; cat {} 2>&1; ls {} >&2; echo x > /x || echo root-is-read-only; exit 7",
        keystore.display(),
        node_dir.path().display()
    );
    let e = exec_in(&x, lease, &cmd(&script), false, None)
        .await
        .expect("exec");
    let (out, err, code) = exec_all(&x, e, b"").await;
    assert!(out.starts_with("65534\n"), "not nobody: {out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("\n7\n"), "the job's environment: {out}");
    assert!(
        !out.contains("SECRET") && !err.contains("SECRET"),
        "{out}{err}"
    );
    assert!(out.contains("root-is-read-only"), "{out}");
    assert!(err.contains("No such file"), "the node's directory: {err}");
    assert_eq!(code, 7);

    // Its input, to the end: `cat` exits on it.
    let e = exec_in(&x, lease, &["cat".to_owned()], false, None)
        .await
        .expect("exec");
    assert_eq!(
        exec_all(&x, e, b"line 1\nline 2\n").await,
        ("line 1\nline 2\n".into(), String::new(), 0)
    );

    // A terminal, sized by the session: the command reads a line, then its terminal's size.
    let e = exec_in(
        &x,
        lease,
        &cmd("read l; tty; stty size"),
        true,
        Some("xterm"),
    )
    .await
    .expect("exec");
    x.exec_resize(&e.id, 100, 30).await.expect("resize");
    let (out, _, code) = exec_all(&x, e, b"go\n").await;
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("30 100"), "{out}");
    assert_eq!(code, 0);

    // A tenant who leaves a terminal's shell leaves no shell behind: it gets its hang-up.
    let e = exec_in(&x, lease, &["/bin/sh".to_owned()], true, None)
        .await
        .expect("exec");
    let id = e.id.clone();
    drop(e);
    assert!(
        x.exec_exit(&id).await.expect("inspect").is_some(),
        "the shell still runs"
    );

    // Another node's executor on this engine, and a lease with no container: nothing to run in.
    let other = on_real(&socket, "podman", "gridlease-test-other");
    assert!(matches!(
        exec_in(&other, lease, &cmd("true"), false, None).await,
        Err(exec::ExecRefusal::NotRunning)
    ));
    assert!(matches!(
        exec_in(&x, B256::random(), &cmd("true"), false, None).await,
        Err(exec::ExecRefusal::NotRunning)
    ));

    // A session open when the lease ends ends with it.
    let mut e = exec_in(&x, lease, &cmd("sleep 300"), false, None)
        .await
        .expect("exec");
    stop.cancel();
    let mut rest = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::io::AsyncReadExt::read_to_end(&mut e.read, &mut rest),
    )
    .await
    .expect("the session ends with the container")
    .expect("read");
    assert!(run.await.expect("join").is_err(), "cancelled");
    assert!(matches!(
        exec_in(&x, lease, &cmd("true"), false, None).await,
        Err(exec::ExecRefusal::NotRunning)
    ));
}
