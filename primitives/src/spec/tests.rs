//! Parsing, hashing and error reporting of job specs.

use alloy::primitives::B256;

use super::*;

/// A valid spec (also mutated by [`super::hostile_input`]).
pub(crate) const GOOD: &str = r#"
name = "demo"
kind = "matmul_i8"

[resources]
gpu = "any"
vram_gib = 8

[price]
max_per_hour = "2.50"
max_duration = "30m"
bid_window = 120
collateral = "50"

[matmul]
n = 256
seed = 42
"#;

#[test]
fn parses_and_hashes_stably() {
    let spec = JobSpec::parse(GOOD).expect("valid");
    let seed = B256::from(alloy::primitives::U256::from(42));
    assert_eq!(
        spec.run.workload,
        Workload::MatmulI8 {
            m: 256,
            k: 256,
            n: 256,
            seed
        }
    );
    assert_eq!(spec.terms.max_duration, 1_800);
    assert_eq!(spec.terms.bid_window, 120);
    assert_eq!(spec.terms.token, "USDC");
    let json = String::from_utf8(spec.run.canonical_json()).expect("utf8");
    assert_eq!(
        json,
        r#"{"version":1,"workload":{"kind":"matmul_i8","m":256,"k":256,"n":256,"seed":"0x000000000000000000000000000000000000000000000000000000000000002a"},"resources":{"gpu_class":0,"gpu_count":1,"vram_gib":8,"cpu_cores":1,"ram_gib":1}}"#
    );
    let uri = spec.run.data_uri();
    assert_eq!(
        RunSpec::from_data_uri(&uri, spec.run.hash()),
        Ok(spec.run.clone())
    );
    assert!(RunSpec::from_data_uri(&uri, B256::ZERO).is_err());
}

#[test]
fn a_service_asks_for_tls_without_changing_the_hash_of_a_spec_that_does_not_acc03() {
    let service = GOOD.replace("matmul_i8", "service").replace(
        "[matmul]\nn = 256\nseed = 42\n",
        "[service]\nimage = \"srv:1\"\nport = 8000\n",
    );
    let plain = JobSpec::parse(&service).expect("valid");
    let json = String::from_utf8(plain.run.canonical_json()).expect("utf8");
    // The canonical JSON of a service written before `tls` existed: its hash is unchanged.
    assert_eq!(
        json,
        r#"{"version":1,"workload":{"kind":"service","image":"srv:1","command":[],"env":{},"port":8000},"resources":{"gpu_class":0,"gpu_count":1,"vram_gib":8,"cpu_cores":1,"ram_gib":1}}"#
    );
    let off = JobSpec::parse(&service.replace("port = 8000\n", "port = 8000\ntls = false\n"))
        .expect("valid");
    assert_eq!(
        off.run.hash(),
        plain.run.hash(),
        "tls = false is the default"
    );
    let on = JobSpec::parse(&service.replace("port = 8000\n", "port = 8000\ntls = true\n"))
        .expect("valid");
    assert!(matches!(
        on.run.workload,
        Workload::Service { tls: true, .. }
    ));
    assert_ne!(on.run.hash(), plain.run.hash(), "the order commits to TLS");
    assert_eq!(
        RunSpec::from_data_uri(&on.run.data_uri(), on.run.hash()),
        Ok(on.run.clone()),
        "it travels in the spec"
    );
    let e = JobSpec::parse(&service.replace("port = 8000\n", "port = 8000\ntls = \"yes\"\n"))
        .expect_err("not a boolean");
    // As for every other flag of a spec: the line, and what was expected there.
    assert!(
        e.to_string().starts_with("line 18: ") && e.to_string().contains("expected a boolean"),
        "{e}"
    );
}

#[test]
fn data_inputs_parse_resolve_and_hash_by_their_roots() {
    let text = GOOD.replace(
        "n = 256\nseed = 42",
        "m = 2\nk = 3\nn = 2\na = \"http://x.example/a.bin\"\nb = \"https://x.example/b.bin\"",
    );
    let mut spec = JobSpec::parse(&text).expect("valid");
    assert_eq!(spec.run.workload.kind(), JobKind::MatmulI8);
    let (a, b) = (vec![1u8, 2, 3, 4, 5, 6], vec![1u8, 0, 0, 1, 255, 2]);
    // PIN-04: without its roots, the job is refused before anything is read.
    let e = spec
        .run
        .workload
        .resolve(a.clone(), &b)
        .expect_err("no roots yet");
    assert!(e.contains("must name the roots"), "{e}");
    let data = spec
        .run
        .workload
        .fill_roots(a.clone(), &b)
        .expect("fits")
        .expect("a data job");
    assert_eq!(spec.run.hash(), data.spec_hash());
    // The roots travel in the spec, so a provider checks its download against them.
    let uri = spec.run.data_uri();
    let back = RunSpec::from_data_uri(&uri, spec.run.hash()).expect("round trip");
    assert!(back.workload.resolve(a.clone(), &b).is_ok());
    let other = back
        .workload
        .resolve(a, &[9u8, 0, 0, 1, 255, 2])
        .expect_err("B differs");
    assert!(other.contains("the downloaded B has root"), "{other}");

    let both = text.replace("n = 2\n", "n = 2\nseed = 1\n");
    let e = JobSpec::parse(&both).expect_err("seed and data");
    assert_eq!(e.field, "matmul.seed", "{e}");
    let half = text.replace("b = \"https://x.example/b.bin\"", "");
    let e = JobSpec::parse(&half).expect_err("only a");
    assert!(e.why.contains("both a and b"), "{e}");
    // PIN-01: a local path or file:// is never an input URI.
    for local in [
        "file:///home/op/operator.json",
        "/etc/hostname",
        "ftp://x.example/a",
    ] {
        let e = JobSpec::parse(&text.replace("http://x.example/a.bin", local))
            .expect_err("not http(s)");
        assert_eq!(e.field, "matmul.a", "{e}");
        assert!(e.why.contains("http(s)://"), "{e}");
    }
}

#[test]
fn errors_name_line_and_field() {
    let cases = [
        (
            GOOD.replace("n = 256", "n = 0"),
            16,
            "matmul.n",
            "out of range",
        ),
        (
            GOOD.replace("\"2.50\"", "\"2,50\""),
            10,
            "price.max_per_hour",
            "decimal",
        ),
        (
            GOOD.replace("\"30m\"", "\"30 minutes\""),
            11,
            "price.max_duration",
            "duration",
        ),
        (
            GOOD.replace("gpu = \"any\"", "gpu = \"tpu\""),
            6,
            "resources.gpu",
            "unknown GPU",
        ),
        (
            GOOD.replace("kind = \"matmul_i8\"", "kind = \"wasm\""),
            3,
            "kind",
            "unknown kind",
        ),
        (GOOD.replace("vram_gib", "vram"), 7, "", "unknown field"),
        (
            GOOD.replace("[matmul]", "[container]"),
            16,
            "",
            "unknown field",
        ),
    ];
    for (text, line, field, why) in cases {
        let e = JobSpec::parse(&text).expect_err("invalid");
        assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
        assert!(e.why.contains(why), "{e}");
    }
}
