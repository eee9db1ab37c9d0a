//! Jobs on the fake engine: isolation, limits, output, time-outs, pulls and leftovers.

use super::*;

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
    let out = run_job(&x, dir.path(), "alpine:3.20", Duration::from_secs(20))
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
            // The logs watched and the wait run concurrently: either order.
            calls(&f)[4].clone(),
            calls(&f)[5].clone(),
            // Then the logs read whole.
            "GET /v1.41/containers/c0ffee/logs".into(),
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

/// Podman's followed log stream can end without a container's last lines: the result is the
/// log read whole once the container has stopped.
#[tokio::test]
async fn the_result_is_the_whole_log_when_the_followed_stream_ends_early() {
    let whole = b"hello\nTASK=7\nuid=65534\nroot-is-read-only\n".to_vec();
    let (dir, f, x) = serve(Fake {
        stdout: whole.clone(),
        follow_cut: Some(6),
        ..Fake::default()
    })
    .await;
    let out = run_job(&x, dir.path(), "alpine", Duration::from_secs(20))
        .await
        .expect("runs");
    assert_eq!(out.result, whole);
    let logs: Vec<String> = f
        .calls
        .lock()
        .expect("calls")
        .iter()
        .filter(|(_, u, _)| u.contains("/logs"))
        .map(|(_, u, _)| u.split('?').nth(1).unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        logs,
        ["follow=1&stdout=1&stderr=1", "follow=0&stdout=1&stderr=1"]
    );
}

#[tokio::test]
async fn a_result_file_in_the_mount_wins_and_exit_codes_are_reported() {
    let (dir, _f, x) = serve(Fake {
        stdout: b"ignored".to_vec(),
        result_file: Some(b"from the file".to_vec()),
        ..Fake::default()
    })
    .await;
    let out = run_job(&x, dir.path(), "alpine", Duration::from_secs(20))
        .await
        .expect("runs");
    assert_eq!(out.result, b"from the file");
    let (dir, f, x) = serve(Fake {
        exit: 3,
        stderr: b"no such file\n".to_vec(),
        ..Fake::default()
    })
    .await;
    let err = run_job(&x, dir.path(), "alpine", Duration::from_secs(20))
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
    let err = run_job(&x, dir.path(), "alpine", Duration::from_millis(400))
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
    // Either stream: stderr too, of which only the tail is kept here, since the engine writes all
    // of it to its log on the provider's disk (PIN-08).
    let over = vec![b'x'; 5_000];
    for fake in [
        Fake {
            hang: true,
            stdout: over.clone(),
            ..Fake::default()
        },
        Fake {
            hang: true,
            stderr: over.clone(),
            ..Fake::default()
        },
    ] {
        let (dir, f, mut x) = serve(fake).await;
        x.limits = ProcessLimits {
            max_output: 1_000,
            stderr_tail: 100,
        };
        let err = run_job(&x, dir.path(), "alpine", Duration::from_secs(60))
            .await
            .expect_err("capped");
        assert!(matches!(err, ExecError::OutputCap(1_000)), "{err}");
        assert!(calls(&f).ends_with(&[
            "POST /v1.41/containers/c0ffee/kill".to_owned(),
            "DELETE /v1.41/containers/c0ffee".to_owned()
        ]));
    }
    let lines: String = (0..100).map(|i| format!("line{i}\n")).collect();
    let (dir, _f, mut x) = serve(Fake {
        stderr: lines.into_bytes(),
        ..Fake::default()
    })
    .await;
    x.limits.stderr_tail = 100;
    let tail = run_job(&x, dir.path(), "alpine", Duration::from_secs(20))
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
    run_job(&x, dir.path(), &pinned, Duration::from_secs(20))
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
    let err = run_job(&x, dir.path(), &pinned, Duration::from_secs(20))
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
    // A private tag the operator pulled on the host runs though the anonymous pull fails, once
    // the operator lists it; unlisted, it is the operator's own image, not offered: the job
    // fails with the pull's error and no container is made from it.
    let (dir, f, mut x) = serve(Fake {
        pull_error: Some("unauthorized".into()),
        images: vec!["registry.example.com/private/job:3".into()],
        ..Fake::default()
    })
    .await;
    let private = "registry.example.com/private/job:3";
    let err = run_job(&x, dir.path(), private, Duration::from_secs(20))
        .await
        .expect_err("an unlisted local image")
        .to_string();
    assert!(err.contains("unauthorized"), "{err}");
    assert!(!calls(&f).iter().any(|c| c.contains("containers/create")));
    x.config.local_images = vec![private.into()];
    run_job(&x, dir.path(), private, Duration::from_secs(20))
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
            local_images: Vec::new(),
        },
        "n",
    );
    let e = x.ping().await.expect_err("no engine").to_string();
    assert!(
        e.contains("is docker/podman running? set jobs.socket") && e.contains("nope.sock"),
        "{e}"
    );
    let e = run_job(&x, dir.path(), "alpine", Duration::from_secs(5))
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

#[test]
fn pin_08_output_the_node_cannot_measure_counts_as_over_the_cap() {
    use std::os::unix::fs::PermissionsExt;

    use crate::docker::run::dir_size;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("a/b")).expect("dirs");
    std::fs::write(out.join("x"), [0u8; 10]).expect("write");
    std::fs::write(out.join("a/b/y"), [0u8; 5]).expect("write");
    // Four entries (x, a, a/b, a/b/y), 15 bytes.
    assert_eq!(dir_size(&out, 4), Some(15));
    assert_eq!(dir_size(&out, 3), None, "more entries than allowed");
    assert_eq!(dir_size(&dir.path().join("missing"), 4), Some(0));
    // A directory the job made unreadable to the node hides what it writes: over the cap. (Root
    // reads it anyway, and then measures it.)
    let hidden = out.join("a");
    std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let root = unsafe { libc::geteuid() } == 0;
    let measured = dir_size(&out, 100);
    std::fs::set_permissions(&hidden, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(measured, if root { Some(15) } else { None });
}

/// The image book: an image the node pulls onto the host is booked with its last use; one the
/// host already had (the operator's) is not, and is never removed. Pruning removes the booked
/// images no job used since a time, keeps one a container holds (409), forgets one already gone
/// (404), and leaves the recent ones; the book survives a restart.
#[tokio::test]
async fn only_images_the_node_pulled_are_pruned_once_unused_and_one_in_use_is_kept() {
    let (dir, f, x) = serve(Fake {
        images: vec!["operator/own:1".into(), "old:1".into(), "held:1".into()],
        in_use: vec!["held:1".into()],
        ..Fake::default()
    })
    .await;
    let book = dir.path().join("images.json");
    let x = x.with_image_book(&book);
    for image in ["operator/own:1", "old:1", "held:1", "gone:1", "recent:1"] {
        x.pull(image).await.expect("pulls");
    }
    let b = x.images.clone().expect("a book");
    // The fake lists old:1 and held:1 as present: say the node pulled them long ago.
    for (image, at) in [("old:1", 100), ("held:1", 100), ("gone:1", 100)] {
        b.used(image, true, at);
    }
    let booked: Vec<String> = b.uses().into_keys().collect();
    assert_eq!(
        booked,
        ["gone:1", "held:1", "old:1", "recent:1"],
        "the operator's image is not booked"
    );
    let removed = x.prune_images(1_000).await;
    assert_eq!(removed, 1);
    let deletes: Vec<String> = calls(&f)
        .into_iter()
        .filter(|c| c.starts_with("DELETE /v1.41/images/"))
        .collect();
    assert_eq!(
        deletes,
        [
            "DELETE /v1.41/images/gone:1",
            "DELETE /v1.41/images/held:1",
            "DELETE /v1.41/images/old:1"
        ]
    );
    // Kept: the one in use (for the next look) and the recent one; forgotten: the one gone.
    let reopened = super::super::images::ImageBook::open(&book);
    let left: Vec<String> = reopened.uses().into_keys().collect();
    assert_eq!(left, ["held:1", "recent:1"]);
}
