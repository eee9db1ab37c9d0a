//! Job specs: the TOML a tenant writes, validated with precise errors (line, field, why), and its
//! canonical form, whose keccak256 is the order's `specHash`.
//!
//! ```toml
//! name = "matmul demo"            # optional label
//! kind = "matmul_i8"              # container | matmul_i8 | service
//!
//! [resources]
//! gpu = "any"                     # GPU class (core::gpu), default "any"
//! gpu_count = 1
//! vram_gib = 8
//! cpu_cores = 2
//! ram_gib = 4
//!
//! [price]
//! max_per_hour = "2.50"           # payment token units per hour
//! max_duration = "30m"
//! bid_window = "2m"
//! deposit = "1.25"                # optional: default max_per_hour x max_duration
//! collateral = "50"               # provider stake locked for the lease
//! instant = false
//! token = "USDC"                  # symbol from the deployment, or a 0x address
//!
//! [matmul]                        # kind = "matmul_i8": C = A x B, INT8 -> INT32, seeded inputs
//! n = 256                         # square; or give m, k and n (A is m x k, B is k x n)
//! seed = 42                       # integer or 0x + 64 hex digits
//! # or, instead of a seed, inputs as data (raw INT8 bytes, row-major):
//! # a = "https://example.com/a.bin"   # A, m x k: an http(s):// URL the provider downloads
//! # b = "https://example.com/b.bin"   # B, k x n
//! # a_root = "0x..."                  # optional here: gridlease submit fills both roots in
//! ```
//!
//! The roots of data inputs (A by rows, B by columns, [`gridlease_workload::matmul::MatmulData`])
//! are part of the spec hash; `gridlease submit` downloads the inputs and fills them in
//! ([`Workload::fill_roots`]). A provider or keeper refuses a data job without them before it
//! downloads anything ([`Workload::check_roots`], PIN-04), and downloads only over http(s)
//! (`gridlease-fetch`, PIN-01).
//!
//! `[container]` (kind `container`) has `image`, `command` and `env`; `[service]` (kind `service`)
//! adds `port`, and `tls = true` to have the provider's node serve that port over TLS with a key
//! bound on chain to the lease (ACC-03; `gridlease connect`). Unknown keys are errors, so a typo
//! never silently drops a requirement.
//!
//! Where the provider finds the spec is the order's `specURI`: a `data:` URI carrying it (the
//! default: public, needs no server), an `http(s)://` URI, or [`PUSH_URI`]: the tenant
//! keeps the spec private and pushes it to the provider node's HTTP API,
//! `POST <node>/specs/<order id>` with the canonical JSON as the body and the header
//! `x-gridlease-auth: <expiry>:<signature>`, the tenant's EIP-191 signature over
//! `gridlease_fetch::spec_auth_message` (`gridlease submit --push <node URL>` does both). The node
//! checks the signer is the order's tenant and the spec's hash is the order's `specHash` before it
//! keeps the spec, and bids only once it has it. Use it for container jobs: keepers cannot check a
//! built-in job's result without its spec, so built-in jobs keep a public URI.

mod canonical;
#[cfg(test)]
mod hostile_input;
mod parse;
#[cfg(test)]
pub(crate) mod tests;
mod types;

pub use types::{JobKind, JobSpec, Resources, RunSpec, SpecError, Terms, Workload};

/// The `specURI` of an order whose spec its tenant pushes to the provider node (see the module
/// docs) instead of publishing it.
pub const PUSH_URI: &str = "gridlease:push";

/// Largest matmul side a built-in job may ask for (the proof recomputes one row x column).
pub const MAX_MATMUL_N: u32 = 8_192;
