//! Checking a posted built-in (`matmul_i8`) result and building the transaction that proves it
//! wrong. Shared by `gridlease result --prove` and the keeper, so both check the same way and send
//! the same proof.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::SolCall,
};
use gridlease_bindings::{
    IMarket::OrderParams,
    Results::{proveMatmulDataFraudCall, proveMatmulFraudCall},
    results::MatmulProof::{DataJob, Job as SeededJob, Operands as ProofOperands},
};

use crate::Fetcher;
use gridlease_primitives::spec::{RunSpec, Workload};
use gridlease_workload::{
    matmul::{self, FraudProof, InputProof, Matmul, MatmulData, Operands},
    merkle::Commitment,
};

/// Why a data job's inputs could not be had: a [`crate::FetchError::code`] (or `input-no-roots`,
/// `input-mismatch`) for a public report, and the detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// Short, public code.
    pub code: &'static str,
    /// What failed, for logs and the user.
    pub detail: String,
}

/// The inputs of data job `w` (`matmul_i8` with `a_uri` and `b_uri`), downloaded through
/// `fetcher` both at once, each at most the bytes its shape gives (A is m x k, B is k x n: a server
/// cannot make the reader hold more than the job needs), and checked against the spec's roots
/// (PIN-04: none named, nothing downloaded). `Ok(None)` for any other workload. The provider runs
/// it under the job's deadline; the keeper and `gridlease result` under their own timeouts.
pub async fn data_inputs(
    w: &Workload,
    fetcher: &Fetcher,
) -> Result<Option<MatmulData>, InputError> {
    let Workload::MatmulI8Data {
        m,
        k,
        n,
        a_uri,
        b_uri,
        ..
    } = w
    else {
        return Ok(None);
    };
    w.check_roots().map_err(|detail| InputError {
        code: "input-no-roots",
        detail,
    })?;
    let get = async |uri: &str, name: &str, cap: u64| {
        fetcher
            .get_capped(uri, None, cap)
            .await
            .map_err(|e| InputError {
                code: e.code(),
                detail: format!("{name}: {e}"),
            })
    };
    let (a, b) = tokio::try_join!(
        get(a_uri, "A", u64::from(*m) * u64::from(*k)),
        get(b_uri, "B", u64::from(*k) * u64::from(*n)),
    )?;
    w.resolve(a, &b).map_err(|detail| InputError {
        code: "input-mismatch",
        detail,
    })
}

/// The built-in job a result is checked against.
#[derive(Clone, Debug)]
pub enum BuiltinJob {
    /// Seeded inputs.
    Seeded(Matmul),
    /// Inputs given as data, downloaded and checked against the spec's roots.
    Data(Box<MatmulData>),
}

/// What a result turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// C = A x B (Freivalds over 2^61 - 1).
    Correct,
    /// Not an m x n INT32 matrix: provable in one transaction (`proveMatmulFraud` with the posted
    /// size, which is not `m * n * 4`).
    WrongSize {
        /// Bytes an m x n INT32 result has.
        expected: usize,
        /// Bytes it had.
        got: usize,
    },
    /// A wrong element, with its proof.
    Wrong(Box<FraudProof>),
}

impl BuiltinJob {
    /// The built-in job `spec` describes (downloading a data job's inputs through `fetcher` and
    /// checking them against the spec's roots), or `None` for container and service jobs.
    pub async fn from_spec(spec: &RunSpec, fetcher: &Fetcher) -> Result<Option<Self>, String> {
        match &spec.workload {
            Workload::MatmulI8 { m, k, n, seed } => Ok(Some(Self::Seeded(Matmul {
                seed: *seed,
                m: *m,
                k: *k,
                n: *n,
            }))),
            w @ Workload::MatmulI8Data { .. } => data_inputs(w, fetcher)
                .await
                .map(|d| d.map(|d| Self::Data(Box::new(d))))
                .map_err(|e| format!("the job's inputs: {}", e.detail)),
            _ => Ok(None),
        }
    }

    /// The operands.
    pub fn ops(&self) -> &dyn Operands {
        match self {
            Self::Seeded(j) => j,
            Self::Data(d) => d.as_ref(),
        }
    }

    /// Check result bytes (big-endian INT32, row-major) against A x B; `r_seed` picks Freivalds'
    /// random vector (use fresh randomness: a cheater must not know it).
    pub fn check(&self, bytes: &[u8], r_seed: B256) -> Verdict {
        let (m, _, n) = self.ops().shape();
        let expected = m as usize * n as usize * 4;
        if bytes.len() != expected {
            return Verdict::WrongSize {
                expected,
                got: bytes.len(),
            };
        }
        // On the bytes as they are: A, B and C are never held whole besides them.
        match matmul::localize_encoded(self.ops(), bytes, r_seed) {
            None => Verdict::Correct,
            Some(f) => Verdict::Wrong(Box::new(f)),
        }
    }

    /// Calldata of the `Results` call proving the result `posted` of lease `id` (of `tenant`,
    /// with `terms`) wrong: at element `fraud`, or, with `None`, by its size (a result that is not
    /// `m * n * 4` bytes is malformed for the job).
    pub fn proof_calldata(
        &self,
        id: B256,
        tenant: Address,
        terms: OrderParams,
        posted: Commitment,
        fraud: Option<&FraudProof>,
    ) -> Bytes {
        let (m, k, n) = self.ops().shape();
        let (i, j) = fraud.map_or((U256::ZERO, U256::ZERO), |f| {
            (U256::from(f.i), U256::from(f.j))
        });
        let leaf = Bytes::from(fraud.map(|f| f.leaf.clone()).unwrap_or_default());
        let proof = fraud.map(|f| f.proof.clone()).unwrap_or_default();
        let terms = terms.into();
        let (root, size) = (posted.root, posted.size);
        match self {
            Self::Seeded(job) => proveMatmulFraudCall {
                leaseId: id,
                tenant,
                terms,
                job: SeededJob {
                    seed: job.seed,
                    m,
                    k,
                    n,
                },
                root,
                size,
                i,
                j,
                leaf,
                proof,
            }
            .abi_encode()
            .into(),
            Self::Data(d) => {
                let p = fraud.map_or_else(
                    || InputProof {
                        a_row: Vec::new(),
                        a_proof: Vec::new(),
                        b_col: Vec::new(),
                        b_proof: Vec::new(),
                    },
                    |f| d.input_proof(f.i, f.j),
                );
                proveMatmulDataFraudCall {
                    leaseId: id,
                    tenant,
                    terms,
                    job: DataJob {
                        aRoot: d.a_tree().root(),
                        bRoot: d.b_tree().root(),
                        m,
                        k,
                        n,
                    },
                    root,
                    size,
                    i,
                    j,
                    ops: ProofOperands {
                        aRow: p.a_row.into(),
                        aProof: p.a_proof,
                        bCol: p.b_col.into(),
                        bProof: p.b_proof,
                    },
                    leaf,
                    proof,
                }
                .abi_encode()
                .into()
            }
        }
    }
}
