//! The proxy against a stand-in upstream and real alloy clients: every fault, failover, and
//! the price-bump rule.

use super::upstream::{read_request, write_response};
use super::*;
use alloy::{
    network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder},
    primitives::U256,
    providers::{Provider, ProviderBuilder},
    rpc::types::TransactionRequest,
    signers::local::PrivateKeySigner,
};
use serde_json::json;

/// A stand-in upstream: answers every JSON-RPC request with head 0x64 and echoes the method.
async fn fake_upstream() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(body) = read_request(&mut sock, &mut buf).await {
                    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let result = match req["method"].as_str() {
                        Some("eth_blockNumber") => json!("0x64"),
                        Some("eth_chainId") => json!("0x7a69"),
                        Some("eth_getLogs") => json!([]),
                        Some("eth_sendRawTransaction") => json!(alloy::primitives::B256::ZERO),
                        m => json!(m),
                    };
                    let out = json!({"jsonrpc": "2.0", "id": req["id"], "result": result});
                    if write_response(&mut sock, 200, out.to_string().as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn client(url: String) -> impl Provider {
    client_within(url, Duration::from_secs(10))
}

fn client_within(url: String, timeout: Duration) -> impl Provider {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client");
    let t = alloy::transports::http::Http::with_client(http, url.parse().expect("url"));
    ProviderBuilder::new().connect_client(alloy::rpc::client::RpcClient::new(t, true))
}

#[tokio::test]
async fn forwards_counts_and_injects_each_fault_then_heals() {
    let proxy = Proxy::start(&fake_upstream().await).await.expect("proxy");
    let p = client(proxy.url());
    assert_eq!(p.get_block_number().await.expect("forwarded"), 100);

    proxy.fail(Fault::Status(429));
    let e = p.get_block_number().await.expect_err("429");
    assert!(e.to_string().contains("429"), "{e}");
    proxy.fail(Fault::Status(503));
    let e = p.get_chain_id().await.expect_err("503");
    assert!(e.to_string().contains("503"), "{e}");
    proxy.fail(Fault::Drop);
    assert!(p.get_block_number().await.is_err(), "dropped");
    proxy.fail(Fault::Hang);
    let t0 = std::time::Instant::now();
    let e = client_within(proxy.url(), Duration::from_millis(500))
        .get_block_number()
        .await
        .expect_err("timed out");
    assert!(t0.elapsed() >= Duration::from_millis(400), "{e}");
    proxy.fail(Fault::RpcError {
        code: -32000,
        message: "already known".into(),
    });
    let e = p.get_block_number().await.expect_err("rpc error");
    assert_eq!(
        e.as_error_resp().expect("json-rpc error").message,
        "already known"
    );

    // One method only: the others still go through.
    proxy.heal();
    proxy.fail_method("eth_chainId", Fault::Status(500));
    assert!(p.get_chain_id().await.is_err());
    assert_eq!(p.get_block_number().await.expect("other methods pass"), 100);

    // A script: one fault per call, in order, then the rules (here: through).
    proxy.heal();
    proxy.fail_next("eth_chainId", [Fault::Status(429), Fault::Status(503)]);
    assert!(
        p.get_block_number().await.is_ok(),
        "another method: no script"
    );
    let e = p.get_chain_id().await.expect_err("429 first");
    assert!(e.to_string().contains("429"), "{e}");
    let e = p.get_chain_id().await.expect_err("503 next");
    assert!(e.to_string().contains("503"), "{e}");
    assert_eq!(p.get_chain_id().await.expect("then through"), 31_337);

    // A script for the calls carrying a needle only: another call of the method goes through.
    proxy.heal();
    let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
    let logs = |who: Address| {
        let p = &p;
        async move {
            p.get_logs(&alloy::rpc::types::Filter::new().address(who))
                .await
        }
    };
    proxy.fail_next_if("eth_getLogs", &format!("{b:#x}"), [Fault::Status(503)]);
    assert!(logs(a).await.is_ok(), "not the needle: through");
    let e = logs(b).await.expect_err("the needle: 503");
    assert!(e.to_string().contains("503"), "{e}");
    assert!(logs(b).await.is_ok(), "used up");

    // Stale and lagging heads.
    proxy.fail_method("eth_blockNumber", Fault::Head(7));
    assert_eq!(p.get_block_number().await.expect("frozen"), 7);
    proxy.fail_method("eth_blockNumber", Fault::HeadBehind(30));
    assert_eq!(p.get_block_number().await.expect("behind"), 70);

    proxy.heal();
    assert_eq!(p.get_chain_id().await.expect("healed"), 31_337);
    assert_eq!(proxy.calls("eth_chainId"), 6);
    assert!(proxy.calls("eth_blockNumber") >= 7);
}

#[tokio::test]
async fn pd_03_a_failover_client_takes_what_the_primary_cannot_answer_but_not_its_errors() {
    let upstream = fake_upstream().await;
    let primary = Proxy::start(&upstream).await.expect("proxy");
    let secondary = Proxy::start(&upstream).await.expect("proxy");
    let c = gridlease_chain::Client::connect_with_fallback(
        &primary.url(),
        Some(&secondary.url()),
        None,
    )
    .await
    .expect("connect");
    let p = &c.provider;
    let served = |proxy: &Proxy| proxy.calls("eth_blockNumber");
    assert_eq!(p.get_block_number().await.expect("primary"), 100);
    assert_eq!((served(&primary), served(&secondary)), (1, 0));
    // An answer that is an error (a revert, "nonce too low") is the chain's word: no failover.
    primary.fail(Fault::RpcError {
        code: -32000,
        message: "nonce too low".into(),
    });
    assert!(p.get_block_number().await.is_err());
    assert_eq!((served(&primary), served(&secondary)), (2, 0));
    // No answer: the fallback takes it, and the primary is passed over for a while.
    primary.fail(Fault::Status(503));
    assert_eq!(p.get_block_number().await.expect("fallback"), 100);
    assert_eq!((served(&primary), served(&secondary)), (3, 1));
    primary.heal();
    assert_eq!(p.get_block_number().await.expect("fallback"), 100);
    assert_eq!(
        (served(&primary), served(&secondary)),
        (3, 2),
        "the primary is skipped"
    );
}

#[tokio::test]
async fn pd_03_rate_limit_answers_fail_over_but_an_unanswered_transaction_is_not_sent_twice() {
    let upstream = fake_upstream().await;
    let (primary, secondary) = (
        Proxy::start(&upstream).await.expect("proxy"),
        Proxy::start(&upstream).await.expect("proxy"),
    );
    let connect = async || {
        gridlease_chain::Client::connect_with_fallback(&primary.url(), Some(&secondary.url()), None)
            .await
            .expect("connect")
    };
    // Providers rate-limit with a JSON-RPC body: not served, so the fallback serves it.
    let c = connect().await;
    primary.fail(Fault::RpcError {
        code: -32005,
        message: "limit exceeded".into(),
    });
    assert_eq!(c.provider.get_block_number().await.expect("fallback"), 100);
    assert_eq!(secondary.calls("eth_blockNumber"), 1);

    // A raw transaction the primary took without answering (it may be in its pool): the
    // call fails and the transaction manager's retry goes to the fallback.
    primary.heal();
    let c = connect().await;
    primary.fail_method("eth_sendRawTransaction", Fault::Status(503));
    let send = async || {
        c.provider
            .raw_request::<_, alloy::primitives::B256>("eth_sendRawTransaction".into(), ("0x00",))
            .await
    };
    assert!(send().await.is_err(), "not re-sent within the call");
    assert_eq!(secondary.calls("eth_sendRawTransaction"), 0);
    send().await.expect("the retry goes to the fallback");
    assert_eq!(secondary.calls("eth_sendRawTransaction"), 1);
}

#[tokio::test]
async fn refuses_log_ranges_above_the_limit_resolving_tags() {
    let proxy = Proxy::start(&fake_upstream().await).await.expect("proxy");
    let p = client(proxy.url());
    proxy.fail(Fault::MaxLogRange(10));
    let f = alloy::rpc::types::Filter::new();
    assert!(
        p.get_logs(&f.clone().from_block(5).to_block(14))
            .await
            .is_ok()
    );
    let e = p
        .get_logs(&f.clone().from_block(5).to_block(15))
        .await
        .expect_err("11 blocks");
    assert!(e.to_string().contains("max block range 10"), "{e}");
    // `latest` is block 100 upstream.
    assert!(p.get_logs(&f.clone().from_block(91)).await.is_ok());
    assert!(p.get_logs(&f.clone().from_block(90)).await.is_err());
    // Other methods are untouched by a getLogs fault.
    assert_eq!(p.get_block_number().await.expect("passes"), 100);
    assert_eq!(proxy.params("eth_getLogs").len(), 4);
}

#[tokio::test]
async fn a_hung_request_is_answered_once_the_fault_is_lifted() {
    let proxy = Arc::new(Proxy::start(&fake_upstream().await).await.expect("proxy"));
    proxy.fail(Fault::Hang);
    let url = proxy.url();
    let waiting = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []});
        http.post(url).json(&body).send().await?.text().await
    });
    let t0 = std::time::Instant::now();
    while proxy.calls("eth_blockNumber") == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!waiting.is_finished(), "hung");
    proxy.heal();
    let out = waiting.await.expect("task").expect("answered");
    assert!(out.contains("0x64"), "{out}");
}

#[tokio::test]
async fn price_bump_rule_refuses_replacements_below_ten_percent() {
    let proxy = Proxy::start(&fake_upstream().await).await.expect("proxy");
    let p = client(proxy.url());
    proxy.fail(Fault::PriceBump(1_000));
    let key: PrivateKeySigner = gridlease_deploy::anvil::ANVIL_KEYS[0].parse().expect("key");
    let wallet = EthereumWallet::from(key);
    let raw = async |max: u128, prio: u128| {
        let req = TransactionRequest::default()
            .with_to(Address::ZERO)
            .with_value(U256::ZERO)
            .with_nonce(3)
            .with_chain_id(31_337)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(max)
            .with_max_priority_fee_per_gas(prio);
        let env = req.build(&wallet).await.expect("sign");
        alloy::eips::Encodable2718::encoded_2718(&env)
    };
    let first = raw(1_000, 100).await;
    assert!(p.send_raw_transaction(&first).await.is_ok());
    assert!(
        p.send_raw_transaction(&first).await.is_ok(),
        "the same bytes again"
    );
    // +5 % on both, then +10 % on the max fee only: refused.
    for (max, prio) in [(1_050, 105), (1_100, 100)] {
        let e = p
            .send_raw_transaction(&raw(max, prio).await)
            .await
            .expect_err("underpriced");
        assert!(
            e.to_string()
                .contains("replacement transaction underpriced"),
            "{e}"
        );
    }
    assert!(p.send_raw_transaction(&raw(1_100, 110).await).await.is_ok());
}
