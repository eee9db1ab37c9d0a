//! `gridlease-provider run` as a real process against a real anvil: it bids on orders it can
//! serve and ignores the rest, runs a process job and a `matmul_i8` job, posts results that match
//! what the chain and the tenant can check (the 1 KiB-leaf commitment of the bytes it serves),
//! serves them (the tenant's only to the tenant), and after `kill -9` mid-job a restart finishes
//! the job exactly once.

use std::process::Command;

use crate::common::*;
use alloy::{primitives::B256, signers::local::PrivateKeySigner, sol_types::SolEvent};
use gridlease_bindings::{Market, Results};
use gridlease_chain::send;
use gridlease_deploy::anvil::ANVIL_KEYS;
use gridlease_primitives::spec::Workload;
use gridlease_workload::{
    matmul::{self, Matmul},
    merkle::Commitment,
};

impl Net {
    /// Wait (up to 90 s) until lease `id` has a result; return its root (the posted root and
    /// size are what the module stores the commitment of).
    async fn result_root(&self, id: B256, n: u32) -> B256 {
        let stored = self.result(id, n, 90).await;
        let (p, _) = self.event::<Results::ResultPosted>(self.results, id).await;
        let c = Commitment {
            root: p.root,
            size: p.size,
        };
        assert_eq!(c.hash(), stored, "the module stores the posted commitment");
        p.root
    }

    fn results_url(&self, id: B256) -> String {
        format!("http://127.0.0.1:{}/results/{id}", self.port)
    }
}

#[tokio::test]
async fn pd_01_off_05_the_node_bids_on_what_it_can_serve_runs_it_and_posts_results_that_verify() {
    let (n, node) = started_on(None).await;
    let dir = n.path();

    // An order for an H100 (not registered) is ignored; a matmul (instant) and a process job
    // (auctioned) are served.
    let h100 = n
        .order_spec(
            &job_spec(Workload::MatmulI8 {
                m: 8,
                k: 8,
                n: 8,
                seed: B256::repeat_byte(1),
            }),
            9,
            1,
            600,
            true,
        )
        .await
        .0;
    let seed = B256::repeat_byte(7);
    let job = Matmul {
        seed,
        m: 48,
        k: 40,
        n: 33,
    };
    let mm = n
        .order_spec(
            &job_spec(Workload::MatmulI8 {
                m: 48,
                k: 40,
                n: 33,
                seed,
            }),
            0,
            2,
            600,
            true,
        )
        .await
        .0;
    let env = [("TASK".to_owned(), "7".to_owned())].into_iter().collect();
    let cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "echo hello from $TASK; echo $OP_KEY".to_owned(),
    ];
    let proc_spec = job_spec(Workload::Container {
        image: "local".into(),
        command: cmd,
        env,
    });
    let pj = n.order_spec(&proc_spec, 0, 3, 600, false).await.0;

    // The matmul lease: the posted root is the product's commitment.
    let want = matmul::commit(&matmul::multiply(&job.a(), &job.bt(), 48, 40, 33, 1)).root();
    assert_eq!(n.result_root(mm, 1).await, want);
    let served = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(mm), None)
        .await
        .expect("public result");
    assert_eq!(Commitment::of(&served).root, want);

    // The auctioned order: the node bid; after the window the tenant awards it.
    n.wait_bid(pj, 1, 30).await;
    n.warp(61).await;
    send(Market::new(n.market, &n.tenant.provider).award(pj))
        .await
        .expect("award");
    let root = n.result_root(pj, 1).await;
    // Only the tenant gets it: no signature is refused, a stranger's is forbidden.
    let anon = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(pj), None)
        .await
        .expect_err("needs auth");
    assert!(anon.to_string().contains("401"), "{anon}");
    let stranger: PrivateKeySigner = ANVIL_KEYS[8].parse().expect("key");
    let auth = gridlease_fetch::result_auth(
        &stranger,
        gridlease_testkit::market::venue(n.market),
        pj,
        key(2).address(),
    )
    .expect("sign");
    let e = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(pj), Some(&auth))
        .await
        .expect_err("not the tenant");
    assert!(e.to_string().contains("403"), "{e}");
    let tenant: PrivateKeySigner = ANVIL_KEYS[1].parse().expect("key");
    // The tenant's own signature, made for the same lease id on another chain, is refused: a
    // header seen at one deployment is no good at another.
    let elsewhere = gridlease_fetch::Venue {
        chain_id: 1,
        market: n.market,
    };
    let auth =
        gridlease_fetch::result_auth(&tenant, elsewhere, pj, key(2).address()).expect("sign");
    let e = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(pj), Some(&auth))
        .await
        .expect_err("signed for another chain");
    assert!(e.to_string().contains("403"), "{e}");
    let auth = n.result_auth(pj);
    let out = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(pj), Some(&auth))
        .await
        .expect("tenant reads it");
    // The job saw its own environment and not the node's key.
    assert_eq!(out, b"hello from 7\n\n");
    assert_eq!(Commitment::of(&out).root, root);

    // The H100 order got no bid from this node, and the metrics say why.
    assert!(
        n.logs_of(n.market, Market::BidPlaced::SIGNATURE_HASH, h100)
            .await
            .is_empty()
    );
    n.wait_metric(
        "gridlease_provider_orders_skipped_total{reason=\"class\"} 1",
        1,
    )
    .await;
    n.wait_metric("gridlease_provider_results_posted_total 2", 1)
        .await;
    let health = gridlease_fetch::Fetcher::devnet()
        .get(&format!("http://127.0.0.1:{}/healthz", n.port), None)
        .await
        .expect("healthy");
    assert!(String::from_utf8_lossy(&health).starts_with("ok head"));

    // A second node on the same state directory refuses to start.
    let second = Command::new(env!("CARGO_BIN_EXE_gridlease-provider"))
        .args(["run", "--config", "provider.toml"])
        .current_dir(&dir)
        .env("OP_KEY", ANVIL_KEYS[3])
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another gridlease-provider runs"), "{err}");

    n.stop(node, 1);
    let log = n.log(1);
    assert!(
        !log.contains(ANVIL_KEYS[3].trim_start_matches("0x")),
        "the key leaked into the log"
    );
    assert!(log.contains("stopped"), "{log}");
}

#[tokio::test]
async fn off_14_pd_07_kill_9_mid_job_then_restart_posts_the_result_exactly_once() {
    let (n, node) = started_on(None).await;
    let dir = n.path();
    let marker = dir.join("runs");
    // Each run appends a line: the job runs again after the crash (it was killed with the node),
    // but its result is posted once.
    // The first run leaves a partial result file, then waits for a file the test writes only once
    // the node is dead. The run after the restart starts from an empty work directory: its result
    // is its own stdout, not the file the killed run left.
    let go = dir.join("go");
    let script = format!(
        "[ -e {go} ] || echo partial > $GRIDLEASE_OUTPUT/result; echo run >> {}; \
         while [ ! -e {go} ]; do sleep 0.1; done; echo done",
        marker.display(),
        go = go.display()
    );
    let id = n.order(&script, 9).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    eventually(
        "the job's first run",
        30,
        async || marker.exists(),
        || n.log(1),
    )
    .await;
    let mut node = node;
    node.kill().expect("kill -9");
    let _ = node.wait();
    std::fs::write(&go, b"").expect("let the job finish");
    let node = n.start(2);
    let root = n.result_root(id, 2).await;
    let auth = n.result_auth(id);
    let out = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(id), Some(&auth))
        .await
        .expect("served after restart");
    assert_eq!(out, b"done\n");
    assert_eq!(Commitment::of(&out).root, root);
    let posted = n
        .logs_of(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
        .await;
    assert_eq!(posted.len(), 1, "posted exactly once");
    assert_eq!(
        std::fs::read_to_string(&marker)
            .expect("marker")
            .lines()
            .count(),
        2,
        "killed once, run again once"
    );
    assert!(n.log(2).contains("resuming job"), "{}", n.log(2));
    n.stop(node, 2);
}

/// The containers of lease `id` on the test engine (`podman ps`), running or not.
fn containers_of(id: B256, all: bool) -> Vec<String> {
    let mut args = vec!["ps", "-q", "--no-trunc"];
    if all {
        args.push("-a");
    }
    let filter = format!("label=gridlease.lease={id}");
    args.extend(["--filter", &filter]);
    let out = Command::new("podman")
        .args(&args)
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// PIN-06, OFF-14 on the real engine: `kill -9` of the node leaves its job's container running;
/// the restarted node removes it (by its labels) before it runs the job again, and the result is
/// posted once. Needs the engine `scripts/podman.sh` serves (the test command starts it).
#[tokio::test]
async fn pin_06_off_14_kill_9_with_a_container_running_then_restart_removes_it_and_posts_once() {
    let Some(engine) = gridlease_testkit::engine::Engine::for_test() else {
        return;
    };
    let (n, node) = started_on(Some(&engine)).await;
    let spec = job_spec(Workload::Container {
        image: engine.image,
        command: vec!["sh".into(), "-c".into(), "sleep 15; echo done".into()],
        env: Default::default(),
    });
    let (id, _) = n.order_spec(&spec, 0, 9, 600, true).await;
    let mut first = Vec::new();
    eventually(
        "the job's container running",
        60,
        async || {
            first = containers_of(id, false);
            !first.is_empty()
        },
        || n.log(1),
    )
    .await;
    let mut node = node;
    node.kill().expect("kill -9");
    let _ = node.wait();
    assert_eq!(
        containers_of(id, false),
        first,
        "the container outlives its node"
    );
    let node = n.start(2);
    let root = n.result_root(id, 2).await;
    let auth = n.result_auth(id);
    let out = gridlease_fetch::Fetcher::devnet()
        .get(&n.results_url(id), Some(&auth))
        .await
        .expect("served after restart");
    assert_eq!(out, b"done\n");
    assert_eq!(Commitment::of(&out).root, root);
    let all = containers_of(id, true);
    assert!(
        !all.iter().any(|c| first.contains(c)),
        "the first run's container was removed: {all:?} vs {first:?}"
    );
    assert!(all.is_empty(), "and the rerun's after it ended: {all:?}");
    let posted = n
        .logs_of(n.results, Results::ResultPosted::SIGNATURE_HASH, id)
        .await;
    assert_eq!(posted.len(), 1, "posted exactly once");
    n.stop(node, 2);
}

/// PD-02: a service lease whose time is up, with no keeper to close it, is closed by the node
/// itself, which frees its collateral and collects its last accrual; before, its job stayed
/// running without a driver, its slot held, until someone else closed it.
#[tokio::test]
async fn pd_02_a_service_lease_past_its_end_is_closed_by_the_node() {
    let (n, node) = started_on(None).await;
    // Service orders go only to a live provider: the node beats at start.
    n.wait_metric("gridlease_provider_heartbeats_total 1", 1)
        .await;
    let spec = job_spec(Workload::Service {
        image: "local".into(),
        // Exits at once and is started again: each start reads the chain's time.
        command: vec!["sh".into(), "-c".into(), "sleep 1".into()],
        env: Default::default(),
        port: 8000,
        tls: false,
    });
    let (id, _) = n.order_spec(&spec, 0, 1, 120, true).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    n.warp(121).await;
    eventually(
        "the node's close of the lease",
        60,
        async || {
            n.count_logs(n.market, Market::LeaseClosed::SIGNATURE_HASH, id)
                .await
                == 1
        },
        || n.log(1),
    )
    .await;
    let (closed, _) = n.event::<Market::LeaseClosed>(n.market, id).await;
    assert!(
        closed.toProvider > alloy::primitives::aliases::U96::ZERO,
        "paid"
    );
    n.wait_metric("gridlease_provider_jobs{state=\"closed\"} 1", 1)
        .await;
    // The close's own confirmation and the node's read of its log race: either may come first.
    n.wait_log(
        "the node's word that it closed the lease",
        "service lease over: closed by the node",
        1,
        30,
    )
    .await;
    n.stop(node, 1);
}

#[tokio::test]
async fn off_20_a_node_short_of_ether_bids_on_nothing_new_and_bids_once_funded() {
    let n = net().await;
    // The operator key holds anvil's 10,000 ETH: below 20,000 it is low here.
    n.config(
        &n.url,
        Some("private_key = \"env:OP_KEY\"\nlow_balance = \"20000\""),
    );
    let node = n.start(1);
    n.wait_head(1).await;
    n.wait_metric("gridlease_provider_low_balance 1", 1).await;
    // An auction (60 s window) it could serve: shed, and kept for another look.
    let id = n.order_with("echo hi", 1, 600, false).await;
    n.wait_log("the order shed", "the operator key's balance is low", 1, 30)
        .await;
    assert!(n.log(1).contains("short of ether for gas"), "{}", n.log(1));
    assert_eq!(
        n.count_logs(n.market, Market::BidPlaced::SIGNATURE_HASH, id)
            .await,
        0
    );
    // Funded: the next balance read (every 30 polls) lets the kept order through.
    raw(
        &n.tenant,
        "anvil_setBalance",
        serde_json::json!([key(3).address(), "0x65a4da25d3016c00000"]),
    )
    .await;
    n.wait_bid(id, 1, 45).await;
    assert!(n.log(1).contains("funded again"), "{}", n.log(1));
    n.wait_metric("gridlease_provider_low_balance 0", 1).await;
    n.stop(node, 1);
}

#[tokio::test]
async fn afr_01_a_bid_nobody_awards_is_awarded_by_its_own_node_not_left_locked() {
    let (n, node) = started_on(None).await;
    // An auction the node bids on; no keeper runs and the tenant never awards it.
    let id = n
        .order_with("echo awarded by its node", 1, 600, false)
        .await;
    n.wait_bid(id, 1, 30).await;
    // Its collateral is locked from the bid on; half the award grace (3,600 s) after the window
    // the node awards the order itself and runs the job, as for anyone's award.
    n.warp(60 + 1_800 + 1).await;
    eventually(
        "the node's own award",
        30,
        async || {
            n.count_logs(n.market, Market::LeaseStarted::SIGNATURE_HASH, id)
                .await
                == 1
        },
        || n.log(1),
    )
    .await;
    let (started, _) = n.event::<Market::LeaseStarted>(n.market, id).await;
    assert_eq!(started.provider, key(2).address());
    n.result(id, 1, 60).await;
    assert!(
        n.log(1)
            .contains("nobody awarded the order this node's bid leads"),
        "{}",
        n.log(1)
    );
    n.stop(node, 1);
}
