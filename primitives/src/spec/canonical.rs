//! The canonical form of a [`RunSpec`]: its JSON, its hash (the order's `specHash`) and its
//! `data:` URI.

use alloy::primitives::{B256, keccak256};
use base64::Engine;

use super::{RunSpec, Workload};

impl RunSpec {
    /// Canonical bytes: compact JSON with keys in a fixed order (struct order, maps sorted).
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a RunSpec always serializes")
    }

    /// The order's `specHash`: for `matmul_i8` the ABI hash the fraud proof checks
    /// ([`gridlease_workload::matmul::Matmul::spec_hash`]), otherwise keccak256 of the canonical
    /// JSON.
    pub fn hash(&self) -> B256 {
        match self.workload {
            Workload::MatmulI8 { m, k, n, seed } => {
                gridlease_workload::matmul::Matmul { seed, m, k, n }.spec_hash()
            }
            Workload::MatmulI8Data {
                m,
                k,
                n,
                a_root,
                b_root,
                ..
            } => gridlease_workload::matmul::data_spec_hash(a_root, b_root, m, k, n),
            _ => keccak256(self.canonical_json()),
        }
    }

    /// A self-contained `data:` URI carrying the canonical JSON (the default `specURI`), so a
    /// provider needs no server to fetch the spec and checks it against the hash.
    pub fn data_uri(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.canonical_json());
        format!("data:application/json;base64,{b64}")
    }

    /// Decode a `data:application/json;base64,` URI and check it against `hash`.
    pub fn from_data_uri(uri: &str, hash: B256) -> Result<Self, String> {
        let b64 = uri
            .strip_prefix("data:application/json;base64,")
            .ok_or_else(|| "not a data:application/json;base64 URI".to_owned())?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad base64: {e}"))?;
        let spec: Self =
            serde_json::from_slice(&bytes).map_err(|e| format!("bad spec JSON: {e}"))?;
        if spec.hash() != hash {
            return Err("the spec does not match the order's spec hash".into());
        }
        Ok(spec)
    }
}
