//! The spec types: what runs ([`Workload`]), on what ([`Resources`]), on which terms ([`Terms`]),
//! and the [`SpecError`] parsing reports.

use std::{collections::BTreeMap, fmt};

use alloy::primitives::B256;
use serde::{Deserialize, Serialize};

/// Order `jobKind` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// An OCI image run to completion.
    Container,
    /// The built-in verifiable INT8 matrix multiplication.
    MatmulI8,
    /// A long-running service reached on a port.
    Service,
}

impl JobKind {
    /// The order's `jobKind` byte: 0 container, 1 built-in verifiable workload, 2 service.
    pub fn code(self) -> u8 {
        match self {
            Self::Container => 0,
            Self::MatmulI8 => 1,
            Self::Service => 2,
        }
    }
}

/// What runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// Run `image` with `command` to completion.
    Container {
        /// OCI image reference.
        image: String,
        /// Command and arguments (image default when empty).
        command: Vec<String>,
        /// Environment.
        env: BTreeMap<String, String>,
    },
    /// C = A x B over seeded INT8 inputs (A m x k, B k x n), INT32 result
    /// ([`gridlease_workload::matmul`]).
    MatmulI8 {
        /// Rows of A and C.
        m: u32,
        /// Columns of A, rows of B.
        k: u32,
        /// Columns of B and C.
        n: u32,
        /// Input seed.
        seed: B256,
    },
    /// C = A x B over INT8 inputs given as data, committed by their roots.
    MatmulI8Data {
        /// Rows of A and C.
        m: u32,
        /// Columns of A, rows of B.
        k: u32,
        /// Columns of B and C.
        n: u32,
        /// Where A (row-major m x k bytes) is.
        a_uri: String,
        /// Where B (row-major k x n bytes) is.
        b_uri: String,
        /// Root of A's row tree (zero until resolved).
        a_root: B256,
        /// Root of B's column tree (zero until resolved).
        b_root: B256,
    },
    /// Run `image` as a service exposing `port`.
    Service {
        /// OCI image reference.
        image: String,
        /// Command and arguments.
        command: Vec<String>,
        /// Environment.
        env: BTreeMap<String, String>,
        /// TCP port the service listens on.
        port: u16,
        /// Whether its provider's node serves the port over TLS in front of the service, with a
        /// key bound on chain to the lease (`Results.bindCertificate`, ACC-03). Absent from the
        /// canonical JSON when false, so the hash of a spec written without it is unchanged.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tls: bool,
    },
}

impl Workload {
    /// Its order `jobKind`.
    pub fn kind(&self) -> JobKind {
        match self {
            Self::Container { .. } => JobKind::Container,
            Self::MatmulI8 { .. } | Self::MatmulI8Data { .. } => JobKind::MatmulI8,
            Self::Service { .. } => JobKind::Service,
        }
    }

    /// A data `matmul_i8` job must name both input roots before anything is downloaded
    /// (PIN-04): a provider or keeper holds what it downloads to them, and a job without them
    /// would let anything downloaded become the job. Other workloads have none to check.
    pub fn check_roots(&self) -> Result<(), String> {
        match self {
            Self::MatmulI8Data { a_root, b_root, .. } if a_root.is_zero() || b_root.is_zero() => {
                Err("a matmul_i8 job with data inputs must name the roots of both (matmul.a_root, matmul.b_root; gridlease submit fills them in)".into())
            }
            _ => Ok(()),
        }
    }

    /// For a data `matmul_i8` job whose roots are named ([`Self::check_roots`]): check the
    /// downloaded inputs `a` and `b` against the shape and the roots; returns the job. Other
    /// workloads are left alone (`Ok(None)`).
    pub fn resolve(
        &self,
        a: Vec<u8>,
        b: &[u8],
    ) -> Result<Option<gridlease_workload::matmul::MatmulData>, String> {
        self.check_roots()?;
        self.clone().fill_roots(a, b)
    }

    /// The tenant's side of [`Self::resolve`] (`gridlease submit`): check the inputs against the
    /// shape and the roots the spec names, and fill in the roots it does not.
    pub fn fill_roots(
        &mut self,
        a: Vec<u8>,
        b: &[u8],
    ) -> Result<Option<gridlease_workload::matmul::MatmulData>, String> {
        let Self::MatmulI8Data {
            m,
            k,
            n,
            a_root,
            b_root,
            ..
        } = self
        else {
            return Ok(None);
        };
        let data = gridlease_workload::matmul::MatmulData::from_row_major(*m, *k, *n, a, b)?;
        let (ra, rb) = (data.a_tree().root(), data.b_tree().root());
        for (name, want, got) in [("A", a_root, ra), ("B", b_root, rb)] {
            if !want.is_zero() && *want != got {
                return Err(format!(
                    "the downloaded {name} has root {got}, the spec says {want}"
                ));
            }
            *want = got;
        }
        Ok(Some(data))
    }
}

/// Hardware the job needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// GPU class index (see [`gpu::GPU_CLASSES`](crate::gpu::GPU_CLASSES)).
    pub gpu_class: u8,
    /// GPUs.
    pub gpu_count: u8,
    /// VRAM per GPU, GiB.
    pub vram_gib: u16,
    /// CPU cores.
    pub cpu_cores: u16,
    /// RAM, GiB.
    pub ram_gib: u32,
}

/// The part of a spec the provider runs; its canonical JSON is hashed into the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    /// Format version.
    pub version: u32,
    /// What runs.
    pub workload: Workload,
    /// On what.
    pub resources: Resources,
}

/// Market terms, still in decimal strings until the payment token's decimals are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// Highest price per hour, decimal token units.
    pub max_per_hour: String,
    /// Longest lease, seconds.
    pub max_duration: u64,
    /// Bid window, seconds.
    pub bid_window: u64,
    /// Escrow deposit, decimal token units (default: max_per_hour x max_duration).
    pub deposit: Option<String>,
    /// Provider collateral, decimal stake-token units.
    pub collateral: String,
    /// First valid bid wins.
    pub instant: bool,
    /// Payment token: a deployment symbol or an address.
    pub token: String,
}

/// A validated job spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// Label for people.
    pub name: Option<String>,
    /// What runs and on what.
    pub run: RunSpec,
    /// What the tenant pays.
    pub terms: Terms,
}

/// One problem in a spec file: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// 1-based line (0 when the whole file is at fault).
    pub line: usize,
    /// Dotted field path (empty for syntax errors).
    pub field: String,
    /// What is wrong and what is expected.
    pub why: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.field.is_empty()) {
            (0, true) => write!(f, "{}", self.why),
            (0, false) => write!(f, "{}: {}", self.field, self.why),
            (l, true) => write!(f, "line {l}: {}", self.why),
            (l, false) => write!(f, "line {l}: {}: {}", self.field, self.why),
        }
    }
}

impl std::error::Error for SpecError {}
