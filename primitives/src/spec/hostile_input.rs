//! Property tests of the spec parsers, which read bytes a tenant chose (SECURITY.md PIN-05): the
//! spec's TOML and JSON and `data:` URIs. The properties are the parser's promises, not its rules:
//! it never panics, a refusal names what is wrong, and whatever it accepts round-trips to the same
//! thing.

use proptest::prelude::*;

use super::{JobSpec, RunSpec, tests::GOOD as SPEC};

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
}
