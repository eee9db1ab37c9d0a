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
