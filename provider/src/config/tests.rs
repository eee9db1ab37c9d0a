//! `provider.toml` parsing and validation: each bad key named.

use std::path::Path;

use gridlease_chain::wallet::KeySource;
use gridlease_fetch::AllowList;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("provider.toml"), Path::new("/srv/node"))
}

#[test]
fn the_sample_is_valid_and_resolves_paths_next_to_the_file() {
    let c = parse(SAMPLE).expect("the sample parses");
    assert_eq!(c.capacity, Capacity::Auto);
    assert_eq!(c.data_dir, Path::new("/srv/node/data"));
    assert_eq!(c.bid_mode, BidMode::Onchain);
    assert!(c.pricing.contains_key("any"));
    assert!(matches!(c.operator, KeySource::Keystore { .. }));
    assert_eq!(c.container, None);
    assert_eq!(c.fallback_rpc, None);
    let c = parse(&SAMPLE.replace(
        "# fallback_rpc = \"https://rpc.example.org\"",
        "fallback_rpc = \"https://rpc.example.org\"",
    ))
    .expect("with a fallback");
    assert_eq!(c.fallback_rpc.as_deref(), Some("https://rpc.example.org"));
}

#[test]
fn the_testing_knobs_are_off_unless_set() {
    let c = parse(SAMPLE).expect("sample");
    assert!(!c.corrupt_builtin && !c.withhold_results);
    let c = parse(
        &SAMPLE
            .replace("# [testing]", "[testing]")
            .replace("# withhold_results = false", "withhold_results = true"),
    )
    .expect("withholding");
    assert!(c.withhold_results && !c.corrupt_builtin);
    let e = parse(&format!("{SAMPLE}\n[testing]\nwithhold = true\n"))
        .expect_err("unknown key")
        .to_string();
    assert!(e.contains("withhold"), "{e}");
}

#[test]
fn the_output_cap_is_a_size_with_a_unit() {
    assert_eq!(parse(SAMPLE).expect("sample").max_output, 256 << 20);
    assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
    assert_eq!(parse_bytes("2048"), Ok(2048));
    assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
    for bad in ["", "12", "5TiB", "lots", "8GiB", "1.5MiB"] {
        assert!(parse_bytes(bad).is_err(), "{bad}");
    }
    let e = parse(&SAMPLE.replace("max_output = \"256MiB\"", "max_output = \"big\""))
        .expect_err("bad size")
        .to_string();
    assert!(e.contains("jobs.max_output"), "{e}");
}

#[test]
fn pin_07_the_process_executor_is_refused_unless_the_operator_opts_in() {
    let c = parse(SAMPLE).expect("sample");
    assert_eq!(
        c.executor,
        ExecutorKind::Builtin,
        "the sample runs no tenant code"
    );
    let process = SAMPLE.replace("executor = \"builtin\"", "executor = \"process\"");
    let e = parse(&process).expect_err("not a sandbox").to_string();
    assert!(
        e.contains("jobs.executor") && e.contains("not a sandbox"),
        "{e}"
    );
    let c = parse(&process.replace(
        "executor = \"process\"",
        "executor = \"process\"\nallow_unsandboxed = true",
    ))
    .expect("opted in");
    assert_eq!(c.executor, ExecutorKind::Process);
    let e = parse(&SAMPLE.replace(
        "executor = \"builtin\"",
        "executor = \"docker\"\nallow_unsandboxed = true",
    ))
    .expect_err("meaningless")
    .to_string();
    assert!(e.contains("jobs.allow_unsandboxed"), "{e}");
}

#[test]
fn pin_02_the_fetch_allow_list_is_empty_unless_named() {
    let c = parse(SAMPLE).expect("sample");
    assert_eq!(c.fetch_allow, AllowList::default());
    let c = parse(&SAMPLE.replace("allow = []", "allow = [\"127.0.0.0/8\", \"::1\"]"))
        .expect("loopback");
    assert!(c.fetch_allow.permits("127.0.0.1".parse().expect("ip")));
    assert!(!c.fetch_allow.permits("10.0.0.1".parse().expect("ip")));
    let e = parse(&SAMPLE.replace("allow = []", "allow = [\"localhost\"]"))
        .expect_err("a name")
        .to_string();
    assert!(e.contains("fetch.allow"), "{e}");
}

#[test]
fn docker_and_podman_select_the_container_engine() {
    let c =
        parse(&SAMPLE.replace("executor = \"builtin\"", "executor = \"docker\"")).expect("docker");
    let e = c.container.expect("engine");
    assert_eq!(e.socket, Path::new("/var/run/docker.sock"));
    assert_eq!(e.network, "none");
    let c = parse(&SAMPLE.replace(
            "executor = \"builtin\"",
            "executor = \"podman\"\nsocket = \"unix:///run/user/1000/podman/podman.sock\"\nnetwork = \"bridge\"",
        ))
        .expect("podman");
    let e = c.container.expect("engine");
    assert_eq!(
        (e.engine.as_str(), e.socket.as_path(), e.network.as_str()),
        (
            "podman",
            Path::new("/run/user/1000/podman/podman.sock"),
            "bridge"
        )
    );
    let bad = parse(&SAMPLE.replace(
        "executor = \"builtin\"",
        "executor = \"docker\"\nsocket = \"tcp://10.0.0.1:2375\"",
    ))
    .expect_err("tcp")
    .to_string();
    assert!(bad.contains("jobs.socket"), "{bad}");
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            SAMPLE.replace("confirmations", "confirmation"),
            "confirmation",
        ),
        (
            SAMPLE.replace("mode = \"onchain\"", "mode = \"maybe\""),
            "bidding.mode",
        ),
        (
            SAMPLE.replace("listen = \"127.0.0.1:7311\"", "listen = \"here\""),
            "http.listen",
        ),
        (
            SAMPLE.replace("floor_per_hour = \"0.80\"", "floor_per_hour = \"cheap\""),
            "pricing.any.floor_per_hour",
        ),
        (
            SAMPLE.replace("[pricing.any]", "[pricing.tpu]"),
            "pricing.tpu",
        ),
        (
            SAMPLE.replace("executor = \"builtin\"", "executor = \"vm\""),
            "jobs.executor",
        ),
        (
            SAMPLE.replace(
                "password = \"env:GRIDLEASE_PASSWORD\"",
                "password = \"hunter2\"",
            ),
            "wallet.password",
        ),
        (
            SAMPLE.replace(
                "rpc = \"http://127.0.0.1:8545\"",
                "rpc = \"127.0.0.1:8545\"",
            ),
            "chain.rpc",
        ),
        (
            SAMPLE.replace(
                "# fallback_rpc = \"https://rpc.example.org\"",
                "fallback_rpc = \"http://127.0.0.1:8545\"",
            ),
            "chain.fallback_rpc",
        ),
        (
            SAMPLE.replace(
                "confirmations = 2",
                "confirmations = 2\nprivate_rpc = \"http://x\"",
            ),
            "chain.private_rpc",
        ),
        (SAMPLE.replace("owner = ", "# owner = "), "wallet.owner"),
        (
            SAMPLE.replace(
                "# fallback_rpc = \"https://rpc.example.org\"",
                "fallback_rpc = \"rpc.example.org\"",
            ),
            "chain.fallback_rpc",
        ),
    ];
    for (text, key) in cases {
        let e = parse(&text).expect_err(key).to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    let e = parse("[chain]\nrpc = 1").expect_err("bad type").to_string();
    assert!(e.contains("line 2") || e.contains("rpc"), "{e}");
}

#[test]
fn a_raw_key_is_only_taken_from_the_environment() {
    let text = SAMPLE
        .lines()
        .filter(|l| !l.starts_with("keystore"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "password = \"env:GRIDLEASE_PASSWORD\"",
            "private_key = \"0x11\"",
        );
    let e = parse(&text).expect_err("raw key").to_string();
    assert!(e.contains("env:VAR only"), "{e}");
    let ok = text.replace("private_key = \"0x11\"", "private_key = \"env:OP_KEY\"");
    let c = parse(&ok).expect("env key");
    assert_eq!(c.operator, KeySource::Env("OP_KEY".into()));
}
