//! The ABI files a client gets (`target/abi/*.json`, written by `gridlease-bindings`' build)
//! explain every function, event and error of the protocol's contracts.

use serde_json::Value;

/// What OpenZeppelin's contracts we inherit declare without NatSpec.
const INHERITED: &[&str] = &[
    "OwnershipTransferStarted",
    "OwnershipTransferred",
    "InvalidShortString",
    "StringTooLong",
];

/// `name(type,...)` of an ABI entry, as the NatSpec keys it.
fn signature(entry: &Value) -> String {
    fn ty(p: &Value) -> String {
        let t = p["type"].as_str().expect("type");
        match t.strip_prefix("tuple") {
            Some(suffix) => {
                let inner: Vec<String> = p["components"]
                    .as_array()
                    .expect("components")
                    .iter()
                    .map(ty)
                    .collect();
                format!("({}){suffix}", inner.join(","))
            }
            None => t.to_owned(),
        }
    }
    let inputs: Vec<String> = entry["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(ty)
        .collect();
    format!(
        "{}({})",
        entry["name"].as_str().expect("name"),
        inputs.join(",")
    )
}

/// Every function, event and error of the protocol's contracts is explained in the ABI file a
/// client gets (a notice or details in its NatSpec).
#[test]
fn the_shipped_abi_files_carry_the_natspec() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/abi");
    for name in ["Market", "MarketAdmin", "MarketLens", "Results", "Staking"] {
        let path = format!("{dir}/{name}.json");
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("the ABI file"))
                .expect("JSON");
        let mut missing = Vec::new();
        for entry in json["abi"].as_array().expect("abi") {
            let key = match entry["type"].as_str() {
                Some("function") => "methods",
                Some("event") => "events",
                Some("error") => "errors",
                _ => continue,
            };
            let sig = signature(entry);
            let documented = ["userdoc", "devdoc"]
                .iter()
                .any(|doc| !json[doc][key][&sig].is_null());
            if !documented && !INHERITED.contains(&entry["name"].as_str().unwrap_or("")) {
                missing.push(sig);
            }
        }
        assert!(missing.is_empty(), "{name}: no NatSpec for {missing:?}");
    }
}
