//! Parsing and validating the TOML a tenant writes ([`JobSpec::parse`]): the raw serde shape,
//! checked field by field with the line and the field of every error.

use std::{collections::BTreeMap, ops::Range};

use alloy::primitives::B256;
use serde::Deserialize;
use toml::Spanned;

use super::{JobKind, JobSpec, MAX_MATMUL_N, Resources, RunSpec, SpecError, Terms, Workload};
use crate::{
    gpu,
    units::{parse_amount, parse_duration},
};

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
    #[serde(default)]
    tls: bool,
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
                        Some(v) => lines.int(
                            v,
                            "matmul.k",
                            1..=i64::from(gridlease_workload::matmul::MAX_K),
                        )?,
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
                        tls: c.tls,
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
