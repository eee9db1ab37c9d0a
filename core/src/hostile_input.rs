//! Property tests of every parser that reads bytes a tenant (or a provider) chose (SECURITY.md
//! PIN-05): the spec's TOML and JSON, `data:` URIs, URIs handed to the fetcher, and matrices. The
//! properties are the parser's promises, not its rules: it never panics, a refusal names what is
//! wrong, and whatever it accepts round-trips to the same thing.

use proptest::prelude::*;

use crate::{
    fetch::{AllowList, check_url},
    matmul::MatmulData,
    spec::{JobSpec, RunSpec, tests::GOOD as SPEC},
};

/// `SPEC` with `edits` applied: each replaces the byte at a position (modulo the length) or
/// inserts a string there.
fn mutate(edits: &[(usize, u8, Option<String>)]) -> String {
    let mut b = SPEC.as_bytes().to_vec();
    for (at, byte, insert) in edits {
        let at = at % (b.len() + 1);
        match insert {
            Some(s) => {
                b.splice(at..at, s.bytes());
            }
            None if at < b.len() => b[at] = *byte,
            None => b.push(*byte),
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pin_05_a_mutated_spec_parses_to_a_spec_that_round_trips_or_names_its_fault(
        edits in prop::collection::vec(
            (any::<usize>(), any::<u8>(), prop::option::of("[a-z_=\"\\[\\].0-9 \n:/-]{0,12}")),
            1..6,
        )
    ) {
        let text = mutate(&edits);
        match JobSpec::parse(&text) {
            Ok(spec) => {
                let json = spec.run.canonical_json();
                let back: RunSpec = serde_json::from_slice(&json).expect("canonical JSON reads back");
                prop_assert_eq!(&back, &spec.run);
                prop_assert_eq!(back.hash(), spec.run.hash());
                let uri = spec.run.data_uri();
                prop_assert_eq!(RunSpec::from_data_uri(&uri, spec.run.hash()), Ok(spec.run.clone()));
            }
            Err(e) => prop_assert!(!e.why.is_empty(), "an error says why: {e:?}"),
        }
    }

    #[test]
    fn pin_05_arbitrary_json_and_data_uris_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        text in "\\PC{0,200}",
    ) {
        let _ = serde_json::from_slice::<RunSpec>(&bytes);
        let _ = RunSpec::from_data_uri(&text, alloy::primitives::B256::ZERO);
        let uri = format!(
            "data:application/json;base64,{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes)
        );
        prop_assert!(RunSpec::from_data_uri(&uri, alloy::primitives::B256::ZERO).is_err());
    }

    #[test]
    fn pin_01_pin_02_no_uri_reaches_a_local_path_or_an_internal_address(
        scheme in prop::sample::select(vec!["http", "https", "file", "ftp", "HTTP", "data", ""]),
        host in prop::sample::select(vec![
            "127.0.0.1", "0x7f.1", "2130706433", "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
            "169.254.169.254", "10.0.0.1", "[fe80::1]", "0", "127.1", "[::]", "100.64.0.1",
        ]),
        path in "[a-z/._%-]{0,20}",
    ) {
        let uri = format!("{scheme}://{host}/{path}");
        if let Ok(url) = uri.parse::<alloy::transports::http::reqwest::Url>() {
            // Every host above is internal in whatever form the URL parser reads it; a scheme
            // other than http(s) is refused whatever the host.
            prop_assert!(check_url(&url, &AllowList::default()).is_err(), "{uri}");
        }
    }

    #[test]
    fn pin_05_matrices_of_any_claimed_shape_are_refused_or_exact(
        m in 0u32..40, k in 0u32..40, n in 0u32..40,
        a_len in 0usize..2000, b_len in 0usize..2000,
        huge in any::<bool>(),
    ) {
        let (m, k, n) = if huge { (u32::MAX, u32::MAX, u32::MAX) } else { (m, k, n) };
        let got = MatmulData::from_row_major(m, k, n, vec![1; a_len], &vec![2; b_len]);
        let fits = m > 0 && k > 0 && n > 0 && !huge
            && a_len == (m * k) as usize && b_len == (k * n) as usize;
        prop_assert_eq!(got.is_ok(), fits);
    }
}
