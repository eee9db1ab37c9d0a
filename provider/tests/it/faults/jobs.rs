//! When jobs run and end: deadlines taken from chain time, not the local clock (OFF-21), an order
//! skipped while the GPU was busy, bid on after a restart (PD-01, PD-07), and a state database
//! locked as a job finishes (PD-07).

use alloy::sol_types::SolEvent;
use gridlease_bindings::Market;
use gridlease_deploy::anvil;

use crate::common::*;

#[tokio::test]
async fn off_21_deadlines_come_from_chain_time_a_day_ahead_of_the_local_clock() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The chain runs a day ahead of this machine's clock (a skewed local clock, seen from the
    // node). A 30 s lease for a job that would run two minutes: the node must stop it by the
    // chain's deadline and post a failure report in time (the contract refuses a late result).
    anvil::warp(&n.tenant.provider, 86_400).await.expect("warp");
    let id = n.order_for("sleep 120", 5, 30).await;
    n.result(id, 1, 60).await;
    let auth = n.result_auth(id);
    let out = gridlease_fetch::Fetcher::devnet()
        .get(
            &format!("http://127.0.0.1:{}/results/{id}", n.port),
            Some(&auth),
        )
        .await
        .expect("the tenant reads it");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("a failure report");
    assert_eq!(report["ok"], serde_json::json!(false), "{report}");
    assert_eq!(
        n.count_logs(n.market, Market::LeaseFaulted::SIGNATURE_HASH, id)
            .await,
        0
    );
    n.stop(node, 1);
}

#[tokio::test]
async fn pd_01_pd_07_an_order_skipped_while_the_gpu_was_busy_is_still_bid_on_after_a_restart() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    // The node's one GPU is held by a job that runs until the test lets it finish.
    let go = n.path().join("go");
    let busy = n
        .order(
            &format!(
                "while [ ! -e {} ]; do sleep 0.1; done; echo done",
                go.display()
            ),
            31,
        )
        .await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // An auction for the same GPU: skipped for now, kept for another look.
    let later = n.order_with("echo later", 32, 600, false).await;
    n.wait_metric(
        "gridlease_provider_orders_skipped_total{reason=\"gpus_busy\"} 1",
        1,
    )
    .await;
    // Restart: the order cursor is past the auction now, only the store remembers it.
    n.stop(node, 1);
    std::fs::write(&go, b"").expect("let the job finish");
    let node = n.start(2);
    n.result(busy, 2, 60).await;
    n.wait_bid(later, 2, 60).await;
    n.stop(node, 2);
}

/// PD-07: the state database locked past its busy timeout as a job finishes (an operator's `sqlite3`
/// shell, a backup tool): the step is tried again once the database is free, the job is not run
/// a second time (its stored result is committed), and the result is posted. Before, the job
/// failed on the database error and its driver stopped: no result, a lease lost.
#[tokio::test]
async fn pd_07_a_state_database_locked_as_a_job_finishes_delays_its_result_and_loses_nothing() {
    let n = net().await;
    n.config(&n.url, None);
    let node = n.start(1);
    n.wait_head(1).await;
    let (go, runs) = (n.path().join("go"), n.path().join("runs"));
    let script = format!(
        "echo run >> {}; while [ ! -e {} ]; do sleep 0.1; done; echo done",
        runs.display(),
        go.display()
    );
    let id = n.order(&script, 44).await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    let db = rusqlite::Connection::open(n.path().join("data").join("state.db")).expect("open");
    db.execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the database");
    std::fs::write(&go, b"").expect("let the job finish");
    // Held until the job's own step has failed on it (other parts of the node may find it first).
    eventually(
        "the job's step to fail on the locked database",
        60,
        async || {
            n.log(1)
                .lines()
                .any(|l| l.contains("job step will be retried") && l.contains("database is locked"))
        },
        || n.log(1),
    )
    .await;
    db.execute_batch("COMMIT").expect("unlock");
    let root = n.result(id, 1, 60).await;
    assert_ne!(root, alloy::primitives::B256::ZERO);
    assert_eq!(
        std::fs::read_to_string(&runs).expect("runs"),
        "run\n",
        "the job ran once"
    );
    n.stop(node, 1);
}
