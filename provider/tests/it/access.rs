//! ACC-01: a lease's logs and result answer only its tenant, one signed access per request.

use alloy::{
    primitives::{Address, B256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolStruct,
};
use gridlease_deploy::anvil::ANVIL_KEYS;
use gridlease_fetch::{
    Venue,
    access::{AccessTo, access},
    shell::{Control, Ended, Event, STDERR, Session, ShellError, Start},
};
use gridlease_primitives::{
    eip712::{Access, access_domain},
    spec::Workload,
};
use gridlease_testkit::market::{key, venue};

use crate::common::*;

/// A header for `what` of `lease` at `provider`'s node, expiring at `expiry` (any time, past
/// included: `access` signs only fresh ones).
fn signed_until(
    signer: &PrivateKeySigner,
    v: Venue,
    (what, lease, provider): (AccessTo, B256, Address),
    expiry: u64,
) -> String {
    let nonce = B256::random();
    let msg = Access {
        action: what.name().to_owned(),
        lease,
        provider,
        expiry,
        nonce,
    };
    let sig = signer
        .sign_hash_sync(&msg.eip712_signing_hash(&access_domain(v.chain_id, v.market)))
        .expect("sign");
    format!("{expiry}:{nonce}:{sig}")
}

/// The tenant reads its running job's logs as it goes and again once it ended, and its result;
/// no header, a stranger's, one made for another provider, chain, lease or action, an expired
/// one and a replayed one are refused, each saying why.
#[tokio::test]
async fn acc_01_a_jobs_logs_and_result_answer_only_its_tenant_once_per_signed_request() {
    let n = net().await;
    n.config(&n.url, None);
    let mut node = n.start(1);
    n.wait_head(1).await;
    let cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "echo progress 1 >&2; sleep 4; echo progress 2 >&2; echo done".to_owned(),
    ];
    let spec = job_spec(Workload::Container {
        image: "local".into(),
        command: cmd,
        env: Default::default(),
    });
    let id = n.order_spec(&spec, 0, 41, 600, true).await.0;
    let (tenant, stranger, provider) = (key(1), key(8), key(2).address());
    let v = venue(n.market);
    let logs_url = format!("http://127.0.0.1:{}/logs/{id}", n.port);
    let logs = async |h: Option<&str>| get_raw(&logs_url, h).await;
    let tenants = || access(&tenant, v, AccessTo::Logs, id, provider).expect("sign");

    // While it runs: what it has written so far.
    let seen = std::cell::RefCell::new(String::new());
    eventually(
        "the running job's logs",
        60,
        async || {
            let got = logs(Some(&tenants()))
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|e| e);
            let ok = got.contains("progress 1");
            *seen.borrow_mut() = got;
            ok
        },
        || format!("last answer: {}\n{}", seen.borrow(), n.log(1)),
    )
    .await;
    let seen = seen.into_inner();
    assert!(!seen.contains("progress 2"), "{seen}");

    // Refused, each with its reason.
    let refused = |e: Result<Vec<u8>, String>, code: &str, why: &str| {
        let e = e.expect_err("refused");
        assert!(e.contains(code) && e.contains(why), "{e}");
    };
    refused(logs(None).await, "401", "tenant's");
    let stranger_h = access(&stranger, v, AccessTo::Logs, id, provider).expect("sign");
    refused(
        logs(Some(&stranger_h)).await,
        "403",
        "not the lease's tenant",
    );
    for h in [
        access(&tenant, v, AccessTo::Logs, id, Address::repeat_byte(9)),
        access(
            &tenant,
            Venue { chain_id: 1, ..v },
            AccessTo::Logs,
            id,
            provider,
        ),
        access(&tenant, v, AccessTo::Logs, B256::repeat_byte(3), provider),
        access(&tenant, v, AccessTo::Result, id, provider),
    ] {
        refused(logs(h.as_deref()).await, "403", "not the lease's tenant");
    }
    let expired = signed_until(&tenant, v, (AccessTo::Logs, id, provider), 1_000);
    refused(logs(Some(&expired)).await, "401", "expired");
    // A node running container jobs as local processes offers no shell (ACC-02).
    let h = access(&tenant, v, AccessTo::Shell, id, provider).expect("sign");
    match shell(&n, id, Some(&h), &["true"]).await {
        Err(ShellError::Refused { status, reason }) => {
            assert!(
                status == 409 && reason.contains("local processes"),
                "{reason}"
            );
        }
        other => panic!("a shell on a process job: {other:?}"),
    }
    let once = tenants();
    logs(Some(&once)).await.expect("the tenant's access");
    refused(logs(Some(&once)).await, "401", "used already");

    // Once it ended: all of it, kept with the result; and the result, to the tenant only.
    n.result(id, 1, 60).await;
    let text = logs(Some(&tenants())).await.expect("the tenant's access");
    assert_eq!(String::from_utf8_lossy(&text), "progress 1\nprogress 2\n");
    let results_url = format!("http://127.0.0.1:{}/results/{id}", n.port);
    let h = gridlease_fetch::result_auth(&tenant, v, id, provider).expect("sign");
    assert_eq!(
        get_raw(&results_url, Some(&h)).await.expect("result"),
        b"done\n"
    );
    refused(get_raw(&results_url, Some(&h)).await, "401", "used already");
    let wrong: PrivateKeySigner = ANVIL_KEYS[7].parse().expect("key");
    let h = gridlease_fetch::result_auth(&wrong, v, id, provider).expect("sign");
    refused(
        get_raw(&results_url, Some(&h)).await,
        "403",
        "not the lease's tenant",
    );
    // The live file went with the run: the logs are the result's now.
    assert!(
        !n.path()
            .join("data/logs")
            .join(format!("{id}.log"))
            .exists()
    );

    // A job that fails: what it wrote before, and why it failed (its public report, the posted
    // result, carries none of its output).
    let spec = job_spec(Workload::Container {
        image: "local".into(),
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo cannot open dataset >&2; exit 3".into(),
        ],
        env: Default::default(),
    });
    let failed = n.order_spec(&spec, 0, 42, 600, true).await.0;
    n.result(failed, 1, 60).await;
    let h = access(&tenant, v, AccessTo::Logs, failed, provider).expect("sign");
    let text = get_raw(
        &format!("http://127.0.0.1:{}/logs/{failed}", n.port),
        Some(&h),
    )
    .await
    .expect("the tenant's access");
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.starts_with("cannot open dataset\n") && text.contains("[the job failed ("),
        "{text}"
    );

    // A restart forgets no nonce: the header taken before it is refused after it.
    node.kill().expect("kill");
    let _ = node.wait();
    let _node = n.start(2);
    n.wait_head(2).await;
    refused(logs(Some(&once)).await, "401", "used already");
    logs(Some(&tenants())).await.expect("a fresh access");
}

/// Open `id`'s shell at the test node with `auth`, running `cmd` without a terminal.
async fn shell(n: &Net, id: B256, auth: Option<&str>, cmd: &[&str]) -> Result<Session, ShellError> {
    let start = Start {
        cmd: cmd.iter().map(|&c| c.to_owned()).collect(),
        ..Start::default()
    };
    gridlease_fetch::Fetcher::devnet()
        .shell(
            &format!("http://127.0.0.1:{}", n.port),
            id,
            auth.unwrap_or(""),
            &start,
        )
        .await
}

/// A session's output, stdout and stderr, and how it ended.
async fn drain(mut s: Session) -> (String, String, Ended) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let ended = loop {
        match s.next().await.expect("an end").expect("the session") {
            Event::Output { stream, data } => {
                if stream == STDERR { &mut err } else { &mut out }.extend_from_slice(&data);
            }
            Event::Ended(e) => break e,
        }
    };
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
        ended,
    )
}

/// ACC-01, ACC-02 through the node: the tenant's shell opens on its running container job only
/// with its own access for this shell (an empty header, a stranger's, the logs' access, another
/// lease's, a replay are
/// refused before any upgrade); the command runs in the job's container as its user, with its
/// input, output streams and exit status; another lease's access cannot open it. Needs the
/// engine `scripts/podman.sh` serves (the test command starts it).
#[tokio::test]
async fn acc_02_the_tenants_shell_runs_in_its_leases_container_with_its_own_access_only() {
    let Some(engine) = gridlease_testkit::engine::Engine::for_test() else {
        return;
    };
    let (n, _node) = started_on(Some(&engine)).await;
    let spec = job_spec(Workload::Container {
        image: engine.image.clone(),
        command: vec!["sh".into(), "-c".into(), "echo ready >&2; sleep 300".into()],
        env: [("TASK".to_owned(), "41".to_owned())].into(),
    });
    let id = n.order_spec(&spec, 0, 51, 600, true).await.0;
    let (tenant, stranger, provider) = (key(1), key(8), key(2).address());
    let v = venue(n.market);
    let tenants = || access(&tenant, v, AccessTo::Shell, id, provider).expect("sign");

    // Once its container runs: the command is in it, as the job's user, with the job's
    // environment, and nothing of the node's directory.
    let data_dir = n.path().join("data");
    let script = format!(
        "id -u; echo task=$TASK; ls {} 2>&1; echo to-stderr >&2; exit 3",
        data_dir.display()
    );
    let mut last = String::new();
    let mut got = None;
    for _ in 0..120 {
        let auth = tenants();
        match shell(&n, id, Some(&auth), &["sh", "-c", &script]).await {
            Ok(s) => match drain(s).await {
                (out, err, Ended::Exit(code)) => {
                    got = Some((out, err, code, auth));
                    break;
                }
                (_, _, Ended::Error(e)) => last = e,
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let (out, err, code, once) =
        got.unwrap_or_else(|| panic!("no shell in 60 s: {last}\n{}", n.log(1)));
    assert!(out.starts_with("65534\ntask=41\n"), "{out}");
    assert!(out.contains("No such file"), "the node's directory: {out}");
    assert_eq!(err, "to-stderr\n");
    assert_eq!(code, 3);
    // Refused before the upgrade, each with its reason, and a replay.
    let refused = |got: Result<Session, ShellError>, code: u16, why: &str| match got {
        Err(ShellError::Refused { status, reason }) => {
            assert!(status == code && reason.contains(why), "{status}: {reason}");
        }
        other => panic!("not refused: {other:?}"),
    };
    refused(
        shell(&n, id, None, &["true"]).await,
        401,
        "<expiry>:<nonce>:<signature>",
    );
    let stranger_h = access(&stranger, v, AccessTo::Shell, id, provider).expect("sign");
    refused(
        shell(&n, id, Some(&stranger_h), &["true"]).await,
        403,
        "not the lease's tenant",
    );
    let logs_h = access(&tenant, v, AccessTo::Logs, id, provider).expect("sign");
    refused(
        shell(&n, id, Some(&logs_h), &["true"]).await,
        403,
        "not the lease's tenant",
    );
    let other_lease = access(&tenant, v, AccessTo::Shell, B256::repeat_byte(3), provider);
    refused(
        shell(&n, id, other_lease.as_deref(), &["true"]).await,
        403,
        "not the lease's tenant",
    );

    refused(
        shell(&n, id, Some(&once), &["true"]).await,
        401,
        "used already",
    );

    // Input to its end, through the socket.
    let mut s = shell(&n, id, Some(&tenants()), &["cat"])
        .await
        .expect("open");
    s.input(b"through the node\n").await.expect("input");
    s.control(&Control::Eof).await.expect("eof");
    assert_eq!(
        drain(s).await,
        ("through the node\n".into(), String::new(), Ended::Exit(0))
    );
    n.wait_log("the session's log line", "shell opened", 1, 10)
        .await;

    // A filter fed more than any pipe holds: its input and output flow at once (one waiting on
    // the other would hold both for ever).
    let big: Vec<u8> = (0..4usize << 20)
        .map(|i| b"0123456789abcdef\n"[i % 17])
        .collect();
    let s = shell(&n, id, Some(&tenants()), &["cat"])
        .await
        .expect("open");
    let (mut w, mut r) = s.split();
    let feed = tokio::spawn({
        let big = big.clone();
        async move {
            w.input(&big).await.expect("input");
            w.control(&Control::Eof).await.expect("eof");
            w
        }
    });
    let mut echoed = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        loop {
            match r.next().await.expect("an end").expect("the session") {
                Event::Output { data, .. } => echoed.extend_from_slice(&data),
                Event::Ended(e) => break e,
            }
        }
    })
    .await
    .expect("the filter's session ends");
    let _writer = feed.await.expect("join");
    assert_eq!(ended, Ended::Exit(0));
    assert!(
        echoed == big,
        "{} bytes of {} came back",
        echoed.len(),
        big.len()
    );

    // A tenant who leaves mid-command leaves nothing running.
    let s = shell(&n, id, Some(&tenants()), &["sleep", "301"])
        .await
        .expect("open");
    let running = async || {
        let s = shell(&n, id, Some(&tenants()), &["ps", "-o", "args"])
            .await
            .expect("open");
        drain(s).await.0.contains("sleep 301")
    };
    // The session is open once the node took its start; the exec may come a moment later (a
    // loaded engine takes its time), so this waits for it rather than looking once.
    eventually(
        "the command running",
        30,
        async || running().await,
        || n.log(1),
    )
    .await;
    drop(s);
    eventually(
        "the left command killed",
        30,
        async || !running().await,
        || n.log(1),
    )
    .await;
    n.wait_log("the kill", "outlived its session: killed", 1, 10)
        .await;
}
