//! Honest provider, hostile tenant (SECURITY.md K, MEC): `gridlease-provider run` as a real
//! process on anvil serves jobs whose tenant wants it slashed, and it never is.
//!
//! - MEC-15: a job with an empty output, `/bin/false`, output exactly at the node's cap (and one
//!   byte over it), and a job that never exits: each yields a result posted before the deadline
//!   (the output's 1 KiB-leaf commitment, or the failure report), no fault is provable (a keeper's
//!   missed-deadline and no-show proofs revert), the node closes the lease as Completed once the
//!   hold is over, and the provider's stake is unchanged with no `LeaseFaulted`. A result post the
//!   RPC keeps refusing is retried, counted and alerted until it lands.
//! - MEC-04: a data-availability challenge of a node's result, also after the tenant accepted it,
//!   is answered by the node from its stored result within the response window; the challenger's
//!   bond goes to the operator, the unavailability proof then fails, and the collateral the market
//!   held after the acceptance is released by the node once the fault horizon has passed.
//! - The testing knob `[testing] withhold_results` makes the node the provider MEC-04 is about: it
//!   posts the true commitment of its output, serves none of it and answers no challenge, so the
//!   result is proven unavailable, the tenant refunded and the collateral slashed.

use crate::common::*;
use alloy::{
    eips::BlockId,
    primitives::{B256, U256, keccak256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use gridlease_bindings::{IMarket::OrderParams, Market, MarketLens, Results, Staking};
use gridlease_chain::{ChainError, Client, send};
use gridlease_primitives::units::owed;
use gridlease_testkit::proxy::{Fault, Proxy};
use gridlease_workload::merkle::{Commitment, result_chunk};

/// `Market.CloseReason.Completed` and `Accepted`.
const COMPLETED: u8 = 5;
const ACCEPTED: u8 = 6;

impl Net {
    fn results(
        &self,
    ) -> gridlease_bindings::Results::ResultsInstance<&alloy::providers::DynProvider> {
        Results::new(self.results, &self.tenant.provider)
    }

    /// MEC-15, first half: lease `id` got a result before its deadline, and it is the commitment
    /// of what the node serves its tenant. Returns those bytes.
    async fn posted_in_time(&self, id: B256, node: u32) -> Vec<u8> {
        let stored = self.result(id, node, 90).await;
        let (p, log) = self.event::<Results::ResultPosted>(self.results, id).await;
        let c = Commitment {
            root: p.root,
            size: p.size,
        };
        assert_eq!(c.hash(), stored, "the module stores keccak(root, size)");
        let bytes = self.download(id).await;
        assert_eq!(
            Commitment::of(&bytes),
            c,
            "the posted commitment is the served result's"
        );
        let (l, _) = self.event::<Market::LeaseStarted>(self.market, id).await;
        let grace = self.results().deadlineGrace().call().await.expect("grace");
        let at = self.timestamp(&log).await;
        assert!(
            at <= l.end.to::<u64>() + u64::from(grace),
            "posted at {at}, after the deadline {} + {grace}",
            l.end
        );
        bytes
    }

    /// MEC-15, second half: whatever a hostile keeper tries after the deadline fails, the node
    /// closes each lease of `leases` (with its terms) as Completed once the hold is over, paid for
    /// the time to its result, and the provider was never slashed.
    async fn completes_unslashed(&self, leases: &[(B256, OrderParams)], node: u32) {
        let keeper = Client::connect(&self.url, Some(key(6)))
            .await
            .expect("keeper");
        let r = Results::new(self.results, &keeper.provider);
        let grace = u64::from(r.deadlineGrace().call().await.expect("grace"));
        let longest = leases.iter().map(|(_, t)| t.maxDuration).max().unwrap_or(0);
        self.warp(u64::from(longest) + grace + 1).await;
        for (id, terms) in leases {
            let e = send(r.proveMissedDeadline(*id))
                .await
                .expect_err("no missed deadline to prove");
            assert!(
                matches!(&e, ChainError::Revert(r) if r.name == "DeadlineNotMissed"),
                "{e}"
            );
            let e = send(r.proveNoShow(*id, key(1).address(), terms.clone().into()))
                .await
                .expect_err("no no-show to prove");
            assert!(
                matches!(&e, ChainError::Revert(r) if r.name == "NotANoShow"),
                "{e}"
            );
        }
        let window = r.challengeWindow().call().await.expect("window");
        self.warp(window.to::<u64>() + 1).await;
        for (id, terms) in leases {
            eventually(
                "the node to close the lease as completed",
                60,
                async || {
                    !self
                        .logs_of(self.market, Market::LeaseClosed::SIGNATURE_HASH, *id)
                        .await
                        .is_empty()
                },
                || self.log(node),
            )
            .await;
            let (c, _) = self.event::<Market::LeaseClosed>(self.market, *id).await;
            assert_eq!(c.reason, COMPLETED, "closed as completed");
            assert!(!c.held, "a completed lease's collateral is released");
            assert_eq!(c.keeperFee.to::<u128>(), 0, "the provider's own close");
            // Paid for the time from the start to its result (at most the lease).
            let (l, _) = self.event::<Market::LeaseStarted>(self.market, *id).await;
            let (_, posted) = self.event::<Results::ResultPosted>(self.results, *id).await;
            let until = self.timestamp(&posted).await.min(l.end.to::<u64>());
            let want = owed(l.ratePerSecond.to(), until - l.start.to::<u64>(), 6).expect("owed");
            assert_eq!(c.paid.to::<u128>(), want.min(terms.deposit.to()));
        }
        self.never_slashed().await;
    }

    /// The provider's stake is what it staked, nothing is locked, and no fault was proven.
    async fn never_slashed(&self) {
        let owner = key(2).address();
        let info = Staking::new(self.staking, &self.tenant.provider)
            .providerInfo(owner)
            .call()
            .await
            .expect("info");
        assert_eq!(info.stake.to::<u128>(), 100 * USDC, "stake unchanged");
        assert_eq!(info.locked.to::<u128>(), 0, "no collateral left locked");
        let faults = self
            .tenant
            .provider
            .get_logs(
                &Filter::new()
                    .address(self.market)
                    .event_signature(Market::LeaseFaulted::SIGNATURE_HASH)
                    .from_block(0),
            )
            .await
            .expect("logs");
        assert!(faults.is_empty(), "LeaseFaulted: {faults:?}");
    }
}

/// `bytes` is a job's failure report whose error says `why`.
fn failure_report(bytes: &[u8], why: &str) {
    let v: serde_json::Value = serde_json::from_slice(bytes).expect("a failure report");
    assert_eq!(v["ok"], serde_json::json!(false), "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains(why)), "{v}");
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// A node of `Net` with its config, started.
async fn node(extra_jobs: &str) -> (Net, Node) {
    let n = net().await;
    n.config(&n.url, None);
    if !extra_jobs.is_empty() {
        let path = n.path().join("provider.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        let text = text.replace("[jobs]\n", &format!("[jobs]\n{extra_jobs}\n"));
        std::fs::write(&path, text).expect("config");
    }
    let child = n.start(1);
    n.wait_head(1).await;
    (n, child)
}

#[tokio::test]
async fn mec_15_an_empty_output_is_a_result_posted_in_time_and_the_provider_is_paid_never_slashed()
{
    let (n, child) = node("").await;
    let lease = n.order_command(sh("true"), 1, 600, true).await;
    let bytes = n.posted_in_time(lease.0, 1).await;
    assert!(bytes.is_empty());
    let (p, _) = n.event::<Results::ResultPosted>(n.results, lease.0).await;
    assert_eq!(p.size, 0, "an empty result");
    assert_eq!(
        p.root,
        keccak256([0u8]),
        "one empty leaf: keccak256(0x00), never zero"
    );
    n.completes_unslashed(&[lease], 1).await;
    n.stop(child, 1);
}

/// A tenant's spec servers that accept and never answer hold back neither the orders behind them
/// nor the poll: the node downloads specs beside it. Read in line, eight such orders cost ten
/// seconds each before the node looked at the next log, and a lease won meanwhile could miss its
/// start window (the provider slashed as a no-show).
#[tokio::test]
async fn mec_15_spec_servers_that_never_answer_hold_back_neither_other_orders_nor_the_poll() {
    let (n, child) = node("").await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", silent.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            open.push(c);
        }
    });
    let spec = command_spec(sh("true"));
    for salt in 0..8u8 {
        let uri = format!("{base}/spec/{salt}");
        n.order_spec_at(&spec, &uri, 0, 100 + salt, 600, false)
            .await;
    }
    // (Written to the result file: `GRIDLEASE_OUTPUT` works from the job's own directory though
    // the node's config names its work directory relative to itself.)
    let lease = n
        .order_command(sh("echo served > $GRIDLEASE_OUTPUT/result"), 120, 600, true)
        .await;
    // Well inside the 80 s the silent servers would have held the poll.
    n.result(lease.0, 1, 40).await;
    assert_eq!(n.download(lease.0).await, b"served\n");
    n.wait_metric(
        "gridlease_provider_orders_skipped_total{reason=\"spec\"} 8",
        1,
    )
    .await;
    server.abort();
    n.stop(child, 1);
}

#[tokio::test]
async fn mec_15_bin_false_posts_its_failure_report_in_time_and_the_provider_is_never_slashed() {
    let (n, child) = node("").await;
    let lease = n
        .order_command(vec!["/bin/false".into()], 2, 600, true)
        .await;
    let bytes = n.posted_in_time(lease.0, 1).await;
    failure_report(&bytes, "exited with Some(1)");
    n.wait_metric("gridlease_provider_jobs_failed_total 1", 1)
        .await;
    n.completes_unslashed(&[lease], 1).await;
    n.stop(child, 1);
}

#[tokio::test]
async fn mec_15_pin_08_output_at_the_cap_is_the_result_and_one_byte_over_posts_the_report_never_slashed()
 {
    let cap = 64 * 1024;
    let (n, child) = node("max_output = \"64KiB\"").await;
    // Exactly the cap (64 leaves of 1 KiB), then one byte more.
    let at = n
        .order_command(
            sh(&format!("head -c {cap} /dev/zero | tr '\\0' 'g'")),
            3,
            600,
            true,
        )
        .await;
    let bytes = n.posted_in_time(at.0, 1).await;
    assert_eq!(bytes, vec![b'g'; cap], "the whole output at the cap");
    let over = n
        .order_command(
            sh(&format!("head -c {} /dev/zero | tr '\\0' 'g'", cap + 1)),
            4,
            600,
            true,
        )
        .await;
    let bytes = n.posted_in_time(over.0, 1).await;
    failure_report(&bytes, &format!("output over the {cap}-byte cap"));
    n.completes_unslashed(&[at, over], 1).await;
    n.stop(child, 1);
}

/// Whether a process with exactly `argv` runs on this machine.
fn running(argv: &[&str]) -> bool {
    let want = argv.join("\0") + "\0";
    std::fs::read_dir("/proc").is_ok_and(|d| {
        d.flatten()
            .any(|p| std::fs::read(p.path().join("cmdline")).is_ok_and(|c| c == want.as_bytes()))
    })
}

#[tokio::test]
async fn mec_15_a_job_that_never_exits_is_stopped_and_its_report_posted_before_the_deadline_never_slashed()
 {
    let (n, child) = node("").await;
    // A 20 s lease for a job that would sleep for a day (a number no other test uses).
    let argv = ["sleep", "86417"];
    let lease = n
        .order_command(argv.iter().map(|a| (*a).to_owned()).collect(), 5, 20, true)
        .await;
    let bytes = n.posted_in_time(lease.0, 1).await;
    failure_report(&bytes, "timed out");
    // Stopped at its lease end, not earlier: the tenant paid for that time.
    let (p, log) = n.event::<Results::ResultPosted>(n.results, lease.0).await;
    let (l, _) = n.event::<Market::LeaseStarted>(n.market, lease.0).await;
    assert!(p.size > 0);
    assert!(
        n.timestamp(&log).await >= l.end.to::<u64>(),
        "the job ran to its lease end"
    );
    assert!(!running(&argv), "its process was killed");
    n.completes_unslashed(&[lease], 1).await;
    n.stop(child, 1);
}

// The proxy runs on this runtime: a second worker keeps it serving while the test blocks
// (stopping the node waits synchronously).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mec_15_a_result_post_the_rpc_keeps_refusing_is_retried_counted_and_alerted_until_it_lands()
{
    let n = net().await;
    let proxy = Proxy::start(&n.url).await.expect("proxy");
    n.config(&proxy.url(), None);
    let child = n.start(1);
    n.wait_head(1).await;
    let go = n.path().join("go");
    let lease = n
        .order_command(
            sh(&format!(
                "while [ ! -e {} ]; do sleep 0.1; done; echo done",
                go.display()
            )),
            6,
            600,
            true,
        )
        .await;
    n.wait_metric("gridlease_provider_jobs{state=\"running\"} 1", 1)
        .await;
    // Every simulation (so every send) reverts from now on, as a node refusing the call would.
    proxy.fail_method(
        "eth_estimateGas",
        Fault::RpcError {
            code: 3,
            message: "execution reverted".into(),
        },
    );
    std::fs::write(&go, b"").expect("let the job finish");
    eventually(
        "three failed posts",
        60,
        async || {
            let m = n.http("/metrics").await;
            m.lines()
                .find_map(|l| l.strip_prefix("gridlease_provider_result_post_failures_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|v| v >= 3)
        },
        || n.log(1),
    )
    .await;
    let log = n.log(1);
    assert!(
        log.contains("result post failed: retrying until the deadline") && log.contains("alert"),
        "{log}"
    );
    assert_eq!(
        n.results()
            .resultOf(lease.0)
            .call()
            .await
            .expect("resultOf"),
        B256::ZERO
    );
    // The RPC answers again: the same result lands, once.
    proxy.heal();
    let bytes = n.posted_in_time(lease.0, 1).await;
    assert_eq!(bytes, b"done\n");
    n.completes_unslashed(&[lease], 1).await;
    n.stop(child, 1);
}

#[tokio::test]
async fn mec_04_a_challenged_chunk_is_revealed_by_the_node_in_time_the_bond_pays_the_operator_and_held_collateral_is_released()
 {
    let (n, child) = node("").await;
    // 3,893 bytes: four leaves, the last one short.
    let lease = n.order_command(sh("seq 1 1000"), 7, 600, true).await;
    let id = lease.0;
    let bytes = n.posted_in_time(id, 1).await;
    assert_eq!(bytes.len(), 3_893);
    let (p, _) = n.event::<Results::ResultPosted>(n.results, id).await;
    let challenger = Client::connect(&n.url, Some(key(8)))
        .await
        .expect("challenger");
    let r = Results::new(n.results, &challenger.provider);
    let bond = r.challengeBond().call().await.expect("bond");
    let operator = key(3).address();

    // A challenge of the short last chunk, then (after the tenant accepted) of the first.
    for (answered, index) in [(1, 3u64), (2, 0)] {
        if index == 0 {
            send(Market::new(n.market, &n.tenant.provider).close(id))
                .await
                .expect("the tenant accepts the result");
            let (c, _) = n.event::<Market::LeaseClosed>(n.market, id).await;
            assert_eq!(
                (c.reason, c.held),
                (ACCEPTED, true),
                "held for the fault horizon"
            );
            n.wait_metric("gridlease_provider_held_leases 1", 1).await;
        }
        send(
            r.challenge(id, p.root, p.size, U256::from(index))
                .value(bond),
        )
        .await
        .expect("challenge");
        eventually(
            "the node's answer",
            60,
            async || {
                n.logs_of(n.results, Results::ChunkRevealed::SIGNATURE_HASH, id)
                    .await
                    .len()
                    == answered
            },
            || n.log(1),
        )
        .await;
        let revealed = n
            .logs_of(n.results, Results::ChunkRevealed::SIGNATURE_HASH, id)
            .await;
        let log = revealed.last().expect("revealed").clone();
        let e = Results::ChunkRevealed::decode_log(&log.inner)
            .expect("decodes")
            .data;
        assert_eq!(e.index, U256::from(index));
        assert_eq!(
            e.chunk.as_ref(),
            result_chunk(&bytes, index),
            "the stored chunk"
        );
        // Within the response window.
        let challenged = n
            .logs_of(n.results, Results::ChunkChallenged::SIGNATURE_HASH, id)
            .await;
        let c = Results::ChunkChallenged::decode_log(&challenged.last().expect("challenge").inner)
            .expect("decodes")
            .data;
        assert!(n.timestamp(&log).await <= c.deadline.to::<u64>());
        // Sent by the operator, whose balance grew by the bond less the answer's gas.
        let tx = log.transaction_hash.expect("tx");
        let receipt = n
            .tenant
            .provider
            .get_transaction_receipt(tx)
            .await
            .expect("rpc")
            .expect("receipt");
        assert_eq!(receipt.from, operator, "the node answered");
        let block = log.block_number.expect("block");
        let balance = async |b: u64| {
            n.tenant
                .provider
                .get_balance(operator)
                .block_id(BlockId::number(b))
                .await
                .expect("balance")
        };
        let fee = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
        assert_eq!(
            balance(block).await + fee,
            balance(block - 1).await + bond,
            "the bond went to the operator"
        );
    }
    n.wait_metric("gridlease_provider_challenges_seen_total 2", 1)
        .await;
    n.wait_metric("gridlease_provider_challenges_answered_total 2", 1)
        .await;

    // Past the response window nothing is left to prove unavailable.
    let window = r.responseWindow().call().await.expect("window");
    n.warp(u64::from(window) + 1).await;
    for index in [3u64, 0] {
        let e = send(r.proveUnavailable(id, U256::from(index)))
            .await
            .expect_err("answered");
        assert!(
            matches!(&e, ChainError::Revert(r) if r.name == "NoChallenge"),
            "{e}"
        );
    }

    // The fault horizon passes: the node releases the held collateral itself.
    let lens = MarketLens::new(n.lens, &n.tenant.provider);
    assert!(lens.getJob(id).call().await.expect("job").held);
    let horizon = gridlease_bindings::MarketAdmin::new(n.market, &n.tenant.provider)
        .faultHorizon()
        .call()
        .await
        .expect("horizon");
    n.warp(horizon.to::<u64>() + 1).await;
    eventually(
        "the node to release the held collateral",
        60,
        async || {
            !n.logs_of(n.market, Market::HeldReleased::SIGNATURE_HASH, id)
                .await
                .is_empty()
        },
        || n.log(1),
    )
    .await;
    assert!(!lens.getJob(id).call().await.expect("job").held);
    n.wait_metric("gridlease_provider_held_leases 0", 1).await;
    n.never_slashed().await;
    n.stop(child, 1);
}

#[tokio::test]
async fn testing_withhold_results_posts_the_true_commitment_serves_nothing_answers_no_challenge_and_is_proven_unavailable()
 {
    let n = net().await;
    n.config(&n.url, None);
    let path = n.path().join("provider.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(&path, text + "\n[testing]\nwithhold_results = true\n").expect("config");
    let _child = n.start(1);
    n.wait_head(1).await;
    let (id, terms) = n.order_command(sh("seq 1 1000"), 7, 600, true).await;

    // The commitment posted is the true one of the job's output.
    let stored = n.result(id, 1, 90).await;
    let (p, _) = n.event::<Results::ResultPosted>(n.results, id).await;
    let output: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    let truth = Commitment::of(output.as_bytes());
    assert_eq!(
        Commitment {
            root: p.root,
            size: p.size
        },
        truth
    );
    assert_eq!(truth.hash(), stored);
    // None of it is served, not even to its tenant.
    let auth = n.result_auth(id);
    let url = format!("http://127.0.0.1:{}/results/{id}", n.port);
    let e = get_raw(&url, Some(&auth)).await.expect_err("withheld");
    assert!(e.contains("503") || e.contains("withholds"), "{e}");

    // A challenge is seen and left unanswered; past the response window the result fails.
    let challenger = Client::connect(&n.url, Some(key(8)))
        .await
        .expect("challenger");
    let r = Results::new(n.results, &challenger.provider);
    let bond = r.challengeBond().call().await.expect("bond");
    send(r.challenge(id, p.root, p.size, U256::from(2)).value(bond))
        .await
        .expect("challenge");
    n.wait_metric("gridlease_provider_challenges_seen_total 1", 1)
        .await;
    let window = r.responseWindow().call().await.expect("window");
    n.warp(u64::from(window) + 1).await;
    assert_eq!(
        n.count_logs(n.results, Results::ChunkRevealed::SIGNATURE_HASH, id)
            .await,
        0,
        "nothing revealed\n{}",
        n.log(1)
    );
    send(r.proveUnavailable(id, U256::from(2)))
        .await
        .expect("proven unavailable");
    let (f, _) = n.event::<Market::LeaseFaulted>(n.market, id).await;
    assert_eq!(f.kind, B256::right_padding_from(b"unavailable"));
    assert_eq!(f.slashed, U256::from(terms.collateral.to::<u128>()));
    // Within the tenant's priority: no fee, the whole deposit back.
    assert_eq!(f.refund, terms.deposit);
    n.wait_metric("gridlease_provider_faults_total 1", 1).await;
}

/// PIN-01, PIN-02, PIN-04 against the node binary, as a tenant with no special access would try
/// it (the attack SECURITY.md N describes): built-in data jobs whose inputs name the node's own
/// keystore and password file, its environment, an admin port on its loopback and the cloud
/// metadata address. The node runs with no internal network allowed, as a real node does. Each
/// job's result is a failure report carrying a reason code and nothing read: not the secret, not
/// its size, not the internal server's page, which gets no request at all. A data job without
/// input roots is not even bid on, nor is an order whose spec URI names the keystore, the
/// password file, `/etc/hostname`, `/dev/zero` or the loopback port. The provider is paid for each report and never slashed.
#[tokio::test]
async fn pin_01_pin_02_pin_04_a_tenant_cannot_make_the_node_publish_its_files_or_internal_pages() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    };

    use gridlease_primitives::spec::Workload;

    let n = net().await;
    n.config(&n.url, None);
    let path = n.path().join("provider.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let real = text.replace("[fetch]\nallow = [\"127.0.0.0/8\", \"::1\"]\n", "");
    assert_ne!(real, text, "the harness's allow-list is removed");
    std::fs::write(&path, real).expect("config");
    // The node's secrets, kept next to its config as a careless operator might.
    let keystore = n.path().join("operator.json");
    let secret = "SECRET-KEYSTORE-".repeat(272) + "12345"; // 4,357 bytes
    std::fs::write(&keystore, &secret).expect("keystore");
    let password = n.path().join("password");
    std::fs::write(&password, "SECRET-PASSWORD").expect("password");
    // An internal admin page on the node's loopback, counting the requests it gets.
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().fallback(move || {
        h.fetch_add(1, SeqCst);
        async { "SECRET-ADMIN-PAGE" }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let child = n.start(1);
    n.wait_head(1).await;

    let root = B256::repeat_byte(0x11);
    let data_job = |uri: &str, root: B256| {
        job_spec(Workload::MatmulI8Data {
            m: 1,
            k: 64,
            n: 1,
            a_uri: uri.to_owned(),
            b_uri: uri.to_owned(),
            a_root: root,
            b_root: root,
        })
    };
    let hostile = [
        (format!("file://{}", keystore.display()), "fetch-scheme"),
        (password.display().to_string(), "fetch-scheme"),
        ("file:///proc/self/environ".to_owned(), "fetch-scheme"),
        (
            format!("http://127.0.0.1:{port}/admin"),
            "fetch-internal-address",
        ),
        (
            format!("http://localhost:{port}/admin"),
            "fetch-internal-address",
        ),
        (
            "http://169.254.169.254/latest/meta-data/iam/".to_owned(),
            "fetch-internal-address",
        ),
    ];
    let mut leases = Vec::new();
    for (i, (uri, code)) in hostile.iter().enumerate() {
        let lease = n
            .order_spec(&data_job(uri, root), 0, 50 + i as u8, 600, true)
            .await;
        let bytes = n.posted_in_time(lease.0, 1).await;
        failure_report(&bytes, "inputs could not be used");
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(v["reason"], *code, "{uri}: {v}");
        let report = String::from_utf8_lossy(&bytes);
        for leak in [
            "SECRET",
            "4357",
            &port.to_string(),
            "/proc",
            "operator.json",
        ] {
            assert!(
                !report.contains(leak),
                "{uri}: the report leaks {leak:?}: {report}"
            );
        }
        leases.push(lease);
    }
    assert_eq!(hits.load(SeqCst), 0, "the internal server got no request");
    assert!(
        !n.log(1).contains("SECRET"),
        "nothing read reaches even the log"
    );

    // PIN-04: a data job without roots is refused before anything is downloaded: no bid.
    let (id, _) = n
        .order_spec(
            &data_job(&format!("http://127.0.0.1:{port}/a"), B256::ZERO),
            0,
            70,
            600,
            true,
        )
        .await;
    n.wait_log(
        "the node to refuse the rootless data job",
        "must name the roots",
        1,
        60,
    )
    .await;
    // PIN-01 through the spec URI: an order naming the node's keystore, its loopback admin port
    // or a bare path as where its spec is gets neither read nor a bid.
    let spec = data_job("http://x.example/a", root);
    let mut unbid = vec![id];
    for (i, uri) in [
        format!("file://{}", keystore.display()),
        password.display().to_string(),
        "/etc/hostname".to_owned(),
        "file:///dev/zero".to_owned(),
        format!("http://127.0.0.1:{port}/spec.json"),
    ]
    .iter()
    .enumerate()
    {
        let (id, _) = n
            .order_spec_at(&spec, uri, 0, 80 + i as u8, 600, true)
            .await;
        unbid.push(id);
    }
    eventually(
        "the node to refuse the five spec URIs",
        60,
        async || {
            let log = n.log(1);
            log.matches("is not an http(s):// URI").count() >= 4
                && log.contains("is an internal address")
        },
        || n.log(1),
    )
    .await;
    let lens = MarketLens::new(n.lens, &n.tenant.provider);
    for id in unbid {
        let job = lens.getJob(id).call().await.expect("job");
        assert_eq!(
            job.provider,
            alloy::primitives::Address::ZERO,
            "never bid on, never leased"
        );
    }
    assert_eq!(hits.load(SeqCst), 0);
    assert!(!n.log(1).contains("SECRET"));

    n.completes_unslashed(&leases, 1).await;
    n.stop(child, 1);
}
