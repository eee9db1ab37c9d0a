//! alloy bindings for the gridlease contracts.
//!
//! `build.rs` compiles `contracts/src` with foundry-compilers (solc-js through
//! `tools/solc-shim/solc`, or the native solc in `$SOLC`) and feeds each artifact to `sol!`. Every
//! module carries the contract's ABI types, its custom errors (`<Name>Errors`), events
//! (`<Name>Events`), an rpc instance type and the creation bytecode (`BYTECODE`).
//!
//! The same artifacts, as `{abi, bytecode, deployedBytecode}` JSON with the contracts' NatSpec
//! (`userdoc`, `devdoc`), are written to `target/abi/<Name>.json` for `cast` and other clients
//! (`docs/reference.md` is the protocol reference that goes with them).

#![allow(missing_docs)] // generated items carry the NatSpec of the contracts, not rustdoc

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

impl From<IMarket::OrderParams> for results::IMarket::OrderParams {
    fn from(p: IMarket::OrderParams) -> Self {
        Self {
            specHash: p.specHash,
            specURI: p.specURI,
            token: p.token,
            deposit: p.deposit,
            maxPricePerSecond: p.maxPricePerSecond,
            maxDuration: p.maxDuration,
            bidWindow: p.bidWindow,
            collateral: p.collateral,
            gpuClass: p.gpuClass,
            gpuCount: p.gpuCount,
            vramGiB: p.vramGiB,
            cpuCores: p.cpuCores,
            ramGiB: p.ramGiB,
            jobKind: p.jobKind,
            instant: p.instant,
            salt: p.salt,
        }
    }
}

impl IMarket::OrderParams {
    /// The order id `tenant` gets for these parameters: `keccak256(abi.encode(tenant, params))`,
    /// as `Market.createOrder` computes it (and `Results` checks order terms against it).
    pub fn order_id(&self, tenant: alloy::primitives::Address) -> alloy::primitives::B256 {
        use alloy::sol_types::SolValue;
        alloy::primitives::keccak256((tenant, self.clone()).abi_encode_params())
    }
}

#[cfg(test)]
mod tests {
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
}
