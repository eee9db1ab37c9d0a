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
//! The roots of data inputs (A by rows, B by columns, [`crate::matmul::MatmulData`]) are part of
//! the spec hash; `gridlease submit` downloads the inputs and fills them in
//! ([`Workload::fill_roots`]). A provider or keeper refuses a data job without them before it
//! downloads anything ([`Workload::check_roots`], PIN-04), and downloads only over http(s)
//! ([`crate::fetch`], PIN-01).
//!
//! `[container]` (kind `container`) has `image`, `command` and `env`; `[service]` (kind `service`)
//! adds `port`. Unknown keys are errors, so a typo never silently drops a requirement.
//!
//! Where the provider finds the spec is the order's `specURI`: a `data:` URI carrying it (the
//! default: public, needs no server), an `http(s)://` URI, or [`PUSH_URI`]: the tenant
//! keeps the spec private and pushes it to the provider node's HTTP API,
//! `POST <node>/specs/<order id>` with the canonical JSON as the body and the header
//! `x-gridlease-auth: <expiry>:<signature>`, the tenant's EIP-191 signature over
//! [`crate::fetch::spec_auth_message`] (`gridlease submit --push <node URL>` does both). The node
//! checks the signer is the order's tenant and the spec's hash is the order's `specHash` before it
//! keeps the spec, and bids only once it has it. Use it for container jobs: keepers cannot check a
//! built-in job's result without its spec, so built-in jobs keep a public URI.

use std::{collections::BTreeMap, fmt, ops::Range};

use alloy::primitives::{B256, keccak256};
use base64::Engine;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::{
    gpu,
    units::{parse_amount, parse_duration},
};

/// The `specURI` of an order whose spec its tenant pushes to the provider node (see the module
/// docs) instead of publishing it.
pub const PUSH_URI: &str = "gridlease:push";

/// Largest matmul side a built-in job may ask for (the proof recomputes one row x column).
pub const MAX_MATMUL_N: u32 = 8_192;

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
    /// C = A x B over seeded INT8 inputs (A m x k, B k x n), INT32 result ([`crate::matmul`]).
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
    ) -> Result<Option<crate::matmul::MatmulData>, String> {
        self.check_roots()?;
        self.clone().fill_roots(a, b)
    }

    /// The tenant's side of [`Self::resolve`] (`gridlease submit`): check the inputs against the
    /// shape and the roots the spec names, and fill in the roots it does not.
    pub fn fill_roots(
        &mut self,
        a: Vec<u8>,
        b: &[u8],
    ) -> Result<Option<crate::matmul::MatmulData>, String> {
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
        let data = crate::matmul::MatmulData::from_row_major(*m, *k, *n, a, b)?;
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
    /// GPU class index (see [`gpu::GPU_CLASSES`]).
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    kind: Spanned<String>,
    #[serde(default)]
    resources: Option<Spanned<RawResources>>,
    price: Spanned<RawPrice>,
    matmul: Option<Spanned<RawMatmul>>,
    container: Option<Spanned<RawContainer>>,
    service: Option<Spanned<RawService>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawResources {
    gpu: Option<Spanned<String>>,
    gpu_count: Option<Spanned<i64>>,
    vram_gib: Option<Spanned<i64>>,
    cpu_cores: Option<Spanned<i64>>,
    ram_gib: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    max_per_hour: Spanned<String>,
    max_duration: Spanned<DurationValue>,
    bid_window: Option<Spanned<DurationValue>>,
    deposit: Option<Spanned<String>>,
    collateral: Option<Spanned<String>>,
    instant: Option<bool>,
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatmul {
    m: Option<Spanned<i64>>,
    k: Option<Spanned<i64>>,
    n: Spanned<i64>,
    seed: Option<Spanned<toml::Value>>,
    a: Option<Spanned<String>>,
    b: Option<Spanned<String>>,
    a_root: Option<Spanned<String>>,
    b_root: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    image: Spanned<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    image: Spanned<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    port: Spanned<i64>,
}

/// Maps byte offsets to lines.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn of(&self, span: Range<usize>) -> usize {
        self.0[..span.start.min(self.0.len())].matches('\n').count() + 1
    }

    fn err(&self, span: Range<usize>, field: &str, why: impl Into<String>) -> SpecError {
        SpecError {
            line: self.of(span),
            field: field.to_owned(),
            why: why.into(),
        }
    }

    fn int<T: TryFrom<i64>>(
        &self,
        v: &Spanned<i64>,
        field: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<T, SpecError> {
        let x = *v.get_ref();
        if !range.contains(&x) {
            let why = format!("{x} is out of range {}..={}", range.start(), range.end());
            return Err(self.err(v.span(), field, why));
        }
        T::try_from(x).map_err(|_| self.err(v.span(), field, "does not fit"))
    }

    fn duration(&self, v: &Spanned<DurationValue>, field: &str) -> Result<u64, SpecError> {
        let secs = match v.get_ref() {
            DurationValue::Seconds(s) => u64::try_from(*s).ok(),
            DurationValue::Text(t) => parse_duration(t).ok(),
        };
        match secs {
            Some(s) if s > 0 => Ok(s),
            _ => Err(self.err(
                v.span(),
                field,
                "expected a positive duration like \"90s\", \"30m\", \"2h\" or a number of seconds",
            )),
        }
    }

    fn decimal(&self, v: &Spanned<String>, field: &str) -> Result<String, SpecError> {
        match parse_amount(v.get_ref(), 18) {
            Ok(0) => Err(self.err(v.span(), field, "must be more than zero")),
            Ok(_) => Ok(v.get_ref().trim().to_owned()),
            Err(e) => Err(self.err(v.span(), field, e.to_string())),
        }
    }
}

impl JobSpec {
    /// Parse and validate spec text.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let lines = Lines(text);
        let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError {
            line: e.span().map_or(0, |s| lines.of(s)),
            field: String::new(),
            why: e.message().trim().to_owned(),
        })?;

        let kind = match raw.kind.get_ref().as_str() {
            "container" => JobKind::Container,
            "matmul_i8" => JobKind::MatmulI8,
            "service" => JobKind::Service,
            other => {
                let why = format!(
                    "unknown kind \"{other}\"; expected \"container\", \"matmul_i8\" or \"service\""
                );
                return Err(lines.err(raw.kind.span(), "kind", why));
            }
        };
        let sections = [
            (
                "matmul",
                raw.matmul.as_ref().map(Spanned::span),
                JobKind::MatmulI8,
            ),
            (
                "container",
                raw.container.as_ref().map(Spanned::span),
                JobKind::Container,
            ),
            (
                "service",
                raw.service.as_ref().map(Spanned::span),
                JobKind::Service,
            ),
        ];
        for (name, span, for_kind) in &sections {
            if let Some(span) = span
                && *for_kind != kind
            {
                let why = format!(
                    "[{name}] does not belong to a job of kind \"{}\"",
                    raw.kind.get_ref()
                );
                return Err(lines.err(span.clone(), name, why));
            }
        }
        let missing = |section: &str| SpecError {
            line: lines.of(raw.kind.span()),
            field: section.to_owned(),
            why: format!(
                "kind \"{}\" needs a [{section}] section",
                raw.kind.get_ref()
            ),
        };
        let image = |image: &Spanned<String>, field: &str| {
            let s = image.get_ref().trim();
            if s.is_empty() || s.contains(char::is_whitespace) {
                return Err(lines.err(
                    image.span(),
                    field,
                    "expected an image reference like \"ghcr.io/org/app:1.0\"",
                ));
            }
            Ok(s.to_owned())
        };
        let workload = 'workload: {
            match kind {
                JobKind::MatmulI8 => {
                    let mm = raw
                        .matmul
                        .as_ref()
                        .ok_or_else(|| missing("matmul"))?
                        .get_ref();
                    let side = 1..=i64::from(MAX_MATMUL_N);
                    let n = lines.int(&mm.n, "matmul.n", side.clone())?;
                    let m = match &mm.m {
                        Some(v) => lines.int(v, "matmul.m", side)?,
                        None => n,
                    };
                    let k = match &mm.k {
                        Some(v) => lines.int(v, "matmul.k", 1..=i64::from(crate::matmul::MAX_K))?,
                        None => n,
                    };
                    if let (Some(a), Some(b)) = (&mm.a, &mm.b) {
                        if let Some(s) = &mm.seed {
                            let why = "give either a seed or data inputs (a, b), not both";
                            return Err(lines.err(s.span(), "matmul.seed", why));
                        }
                        let root = |r: &Option<Spanned<String>>, field: &'static str| match r {
                            None => Ok(B256::ZERO),
                            Some(r) => r.get_ref().parse::<B256>().map_err(|_| {
                                lines.err(r.span(), field, "expected 0x followed by 64 hex digits")
                            }),
                        };
                        let uri = |u: &Spanned<String>, field: &'static str| {
                            let v = u.get_ref().trim();
                            if v.is_empty() {
                                return Err(lines.err(u.span(), field, "a URI is required"));
                            }
                            if !(v.starts_with("http://") || v.starts_with("https://")) {
                                let why = "the provider downloads inputs over http(s):// only \
                                           (never a local path or file://): serve the file and \
                                           name its URL";
                                return Err(lines.err(u.span(), field, why));
                            }
                            Ok(v.to_owned())
                        };
                        break 'workload Workload::MatmulI8Data {
                            m,
                            k,
                            n,
                            a_uri: uri(a, "matmul.a")?,
                            b_uri: uri(b, "matmul.b")?,
                            a_root: root(&mm.a_root, "matmul.a_root")?,
                            b_root: root(&mm.b_root, "matmul.b_root")?,
                        };
                    }
                    if let Some(one) = mm.a.as_ref().or(mm.b.as_ref()) {
                        let why = "data inputs need both a and b";
                        return Err(lines.err(one.span(), "matmul", why));
                    }
                    let bad_seed =
                        "expected a non-negative integer or 0x followed by 64 hex digits";
                    let seed = match &mm.seed {
                        None => B256::ZERO,
                        Some(s) => match s.get_ref() {
                            toml::Value::Integer(i) if *i >= 0 => {
                                B256::from(alloy::primitives::U256::from(i.unsigned_abs()))
                            }
                            toml::Value::String(h) => h
                                .parse::<B256>()
                                .map_err(|_| lines.err(s.span(), "matmul.seed", bad_seed))?,
                            _ => return Err(lines.err(s.span(), "matmul.seed", bad_seed)),
                        },
                    };
                    Workload::MatmulI8 { m, k, n, seed }
                }
                JobKind::Container => {
                    let c = raw
                        .container
                        .as_ref()
                        .ok_or_else(|| missing("container"))?
                        .get_ref();
                    Workload::Container {
                        image: image(&c.image, "container.image")?,
                        command: c.command.clone(),
                        env: c.env.clone(),
                    }
                }
                JobKind::Service => {
                    let c = raw
                        .service
                        .as_ref()
                        .ok_or_else(|| missing("service"))?
                        .get_ref();
                    Workload::Service {
                        image: image(&c.image, "service.image")?,
                        command: c.command.clone(),
                        env: c.env.clone(),
                        port: lines.int(&c.port, "service.port", 1..=65_535)?,
                    }
                }
            }
        };

        let r = raw.resources.as_ref().map(Spanned::get_ref);
        let empty = RawResources::default();
        let r = r.unwrap_or(&empty);
        let gpu_class = match &r.gpu {
            None => 0,
            Some(g) => gpu::class_index(g.get_ref()).ok_or_else(|| {
                let why = format!(
                    "unknown GPU class \"{}\"; known: {}",
                    g.get_ref(),
                    gpu::GPU_CLASSES.join(", ")
                );
                lines.err(g.span(), "resources.gpu", why)
            })?,
        };
        let opt = |v: &Option<Spanned<i64>>, field: &str, default: i64, max: i64, min: i64| match v
        {
            Some(v) => lines.int::<i64>(v, field, min..=max),
            None => Ok(default),
        };
        let resources = Resources {
            gpu_class,
            gpu_count: opt(&r.gpu_count, "resources.gpu_count", 1, 255, 1)? as u8,
            vram_gib: opt(&r.vram_gib, "resources.vram_gib", 0, 65_535, 0)? as u16,
            cpu_cores: opt(&r.cpu_cores, "resources.cpu_cores", 1, 65_535, 0)? as u16,
            ram_gib: opt(&r.ram_gib, "resources.ram_gib", 1, i64::from(u32::MAX), 0)? as u32,
        };

        let p = raw.price.get_ref();
        let terms = Terms {
            max_per_hour: lines.decimal(&p.max_per_hour, "price.max_per_hour")?,
            max_duration: lines.duration(&p.max_duration, "price.max_duration")?,
            bid_window: match &p.bid_window {
                Some(w) => lines.duration(w, "price.bid_window")?,
                None => 60,
            },
            deposit: p
                .deposit
                .as_ref()
                .map(|d| lines.decimal(d, "price.deposit"))
                .transpose()?,
            collateral: match &p.collateral {
                Some(c) => match parse_amount(c.get_ref(), 18) {
                    Ok(_) => c.get_ref().trim().to_owned(),
                    Err(e) => return Err(lines.err(c.span(), "price.collateral", e.to_string())),
                },
                None => "0".into(),
            },
            instant: p.instant.unwrap_or(false),
            token: p.token.clone().unwrap_or_else(|| "USDC".into()),
        };
        let run = RunSpec {
            version: 1,
            workload,
            resources,
        };
        Ok(Self {
            name: raw.name,
            run,
            terms,
        })
    }
}

impl RunSpec {
    /// Canonical bytes: compact JSON with keys in a fixed order (struct order, maps sorted).
    pub fn canonical_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a RunSpec always serializes")
    }

    /// The order's `specHash`: for `matmul_i8` the ABI hash the fraud proof checks
    /// ([`crate::matmul::Matmul::spec_hash`]), otherwise keccak256 of the canonical JSON.
    pub fn hash(&self) -> B256 {
        match self.workload {
            Workload::MatmulI8 { m, k, n, seed } => {
                crate::matmul::Matmul { seed, m, k, n }.spec_hash()
            }
            Workload::MatmulI8Data {
                m,
                k,
                n,
                a_root,
                b_root,
                ..
            } => crate::matmul::data_spec_hash(a_root, b_root, m, k, n),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid spec (also mutated by [`crate::hostile_input`]).
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
}
