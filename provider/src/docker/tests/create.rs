//! The create dialects on the fake engine: Podman's libpod with GPUs as CDI devices, and a
//! service's published port.

use super::*;

/// A node's label is its operator's and its data directory's: stable across restarts (the same
/// directory, however it is named), another for another directory or operator.
#[test]
fn a_nodes_label_names_its_operator_and_its_data_directory() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let op = alloy::primitives::Address::repeat_byte(7);
    let label = node_label(op, a.path());
    assert!(label.starts_with(&format!("{op}/")), "{label}");
    assert_eq!(label, node_label(op, &a.path().join(".")));
    assert_ne!(label, node_label(op, b.path()));
    assert_ne!(
        label,
        node_label(alloy::primitives::Address::repeat_byte(8), a.path())
    );
}

#[tokio::test]
async fn podman_creates_through_its_own_api_with_gpus_as_cdi_devices() {
    let (dir, f, mut x) = serve(Fake {
        stdout: b"ok".to_vec(),
        ..Fake::default()
    })
    .await;
    x.config.engine = "podman".into();
    let out = run_job(&x, dir.path(), "alpine", Duration::from_secs(20))
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
        tls: false,
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

    // Behind the node's TLS front (ACC-03) the service still listens on its own port, published
    // on the loopback port the front carries connections to, and on no other address.
    svc.loopback_port = Some(41_234);
    let b = x
        .libpod_body(&svc, &dir.path().join("job/out"))
        .expect("body");
    assert_eq!(
        b["portmappings"],
        json!([{"container_port": 8080, "host_port": 41_234, "host_ip": "127.0.0.1", "protocol": "tcp"}])
    );
    assert_eq!(b["env"]["PORT"], "8080");
    let c = x
        .create_body(&svc, &dir.path().join("job/out"))
        .expect("body");
    assert_eq!(
        c["HostConfig"]["PortBindings"],
        json!({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41234"}]})
    );
}
