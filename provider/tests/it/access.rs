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
