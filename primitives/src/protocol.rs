//! The protocol's on-chain enums, typed: what `IMarket.Status`, `IMarket.CloseReason`, a
//! `JobView`'s `kind` and an order's `jobKind` mean (their numbers are in `docs/reference.md`).
//!
//! The views return them as `uint8`; read them through these types (`Status::of(v.status)`) and
//! never compare the bytes: a number that means one thing in one field (a `JobView.kind` of 2 is a
//! held result) means another in the next (a `jobKind` of 2 is a service).

use std::fmt;

pub use crate::spec::JobKind;

/// Defines a `u8`-coded enum with its decoding, its words and its `Display`.
macro_rules! coded {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $word:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $( $(#[$vmeta])* $variant = $code, )+ }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value coded `code` on chain, if it is one.
            pub const fn from_code(code: u8) -> Option<Self> {
                match code {
                    $( $code => Some(Self::$variant), )+
                    _ => None,
                }
            }

            /// The byte the contracts use.
            pub const fn code(self) -> u8 {
                self as u8
            }

            /// The word the tools print (and accept) for it.
            pub const fn word(self) -> &'static str {
                match self {
                    $( Self::$variant => $word, )+
                }
            }
        }

        impl TryFrom<u8> for $name {
            type Error = UnknownCode;

            fn try_from(code: u8) -> Result<Self, UnknownCode> {
                Self::from_code(code).ok_or(UnknownCode { what: stringify!($name), code })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

/// A byte that is not a value of the enum it was read as: the contracts and this build disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {code} is not known to this build (is the deployment newer than the tools?)")]
pub struct UnknownCode {
    /// The enum.
    pub what: &'static str,
    /// The byte read.
    pub code: u8,
}

coded! {
    /// `IMarket.Status`: the life of an order and its lease.
    pub enum Status {
        /// No such order on this market.
        None = 0 => "unknown",
        /// Taking bids.
        Open = 1 => "open",
        /// Awarded: the lease runs (or its batch result is held).
        Leased = 2 => "leased",
        /// Ended normally ([`CloseReason`] says how).
        Closed = 3 => "closed",
        /// Cancelled by its tenant before an award.
        Cancelled = 4 => "cancelled",
        /// A fault was proven and the provider slashed.
        Faulted = 5 => "faulted",
    }
}

coded! {
    /// `IMarket.CloseReason`: why a lease closed.
    pub enum CloseReason {
        /// The tenant ended a running lease.
        TenantClosed = 0 => "closed by tenant",
        /// The provider ended a service lease.
        ProviderClosed = 1 => "closed by provider",
        /// A service lease reached its end.
        Expired = 2 => "expired",
        /// A service lease ran out of escrow.
        Exhausted = 3 => "exhausted",
        /// A fault was proven (or the provider abandoned a batch lease).
        Faulted = 4 => "faulted",
        /// A batch result stood through its challenge window.
        Completed = 5 => "completed",
        /// The tenant accepted a batch result inside its window.
        Accepted = 6 => "accepted by tenant",
        /// A service lease lost its provider's heartbeat.
        Lapsed = 7 => "lapsed",
    }
}

coded! {
    /// `JobView.kind` (the market's `KIND_*` bits): what a lease is now.
    pub enum LeaseKind {
        /// A batch lease without a posted result.
        Batch = 0 => "batch",
        /// A service lease (paid per second of liveness).
        Service = 1 => "service",
        /// A batch lease whose result is posted and held for its challenge window.
        Held = 2 => "held",
    }
}

impl Status {
    /// The status coded `code`; [`Status::None`] for a byte this build does not know (the
    /// contracts never return one).
    pub fn of(code: u8) -> Self {
        Self::from_code(code).unwrap_or(Self::None)
    }

    /// Whether the order or lease has ended for good (closed, cancelled or faulted).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Closed | Self::Cancelled | Self::Faulted)
    }
}

impl LeaseKind {
    /// The kind coded `code`, if it is one.
    pub fn of(code: u8) -> Option<Self> {
        Self::from_code(code)
    }
}

impl CloseReason {
    /// The reason coded `code`, if it is one.
    pub fn of(code: u8) -> Option<Self> {
        Self::from_code(code)
    }
}

/// The typed reading of a `MarketLens.getJob` view.
pub trait JobViewExt {
    /// Its status.
    fn status(&self) -> Status;
    /// Its lease kind (the market writes only the three kinds; a byte it never writes reads as
    /// [`LeaseKind::Batch`]).
    fn lease_kind(&self) -> LeaseKind;
}

impl JobViewExt for gridlease_bindings::lens::IMarket::JobView {
    fn status(&self) -> Status {
        Status::of(self.status)
    }

    fn lease_kind(&self) -> LeaseKind {
        LeaseKind::from_code(self.kind).unwrap_or(LeaseKind::Batch)
    }
}

impl JobKind {
    /// Every value, in code order.
    pub const ALL: &'static [Self] = &[Self::Container, Self::MatmulI8, Self::Service];

    /// The kind an order's `jobKind` byte names, if it is one.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }
}

impl TryFrom<u8> for JobKind {
    type Error = UnknownCode;

    fn try_from(code: u8) -> Result<Self, UnknownCode> {
        Self::from_code(code).ok_or(UnknownCode {
            what: "JobKind",
            code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str) -> String {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/src/");
        std::fs::read_to_string(format!("{root}{path}")).expect("contract source")
    }

    /// The variants of `enum name { ... }` in Solidity source, in order.
    fn solidity_enum(src: &str, name: &str) -> Vec<String> {
        let start = src.find(&format!("enum {name} {{")).expect("the enum") + name.len() + 7;
        let body = &src[start..start + src[start..].find('}').expect("its end")];
        body.split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Each Rust value has the byte of the Solidity value of the same name, and the Solidity enum
    /// has no value this build lacks: read off the contracts' source.
    #[test]
    fn the_enums_match_the_contracts() {
        let imarket = source("interfaces/IMarket.sol");
        assert_eq!(
            solidity_enum(&imarket, "Status"),
            Status::ALL
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            solidity_enum(&imarket, "CloseReason"),
            CloseReason::ALL
                .iter()
                .map(|r| format!("{r:?}"))
                .collect::<Vec<_>>()
        );
        let layout = source("libraries/MarketLayout.sol");
        for k in LeaseKind::ALL {
            let line = format!(
                "uint8 internal constant KIND_{} = {};",
                format!("{k:?}").to_uppercase(),
                k.code()
            );
            assert!(layout.contains(&line), "MarketLayout.sol lacks `{line}`");
        }
        assert!(
            imarket
                .contains("@param jobKind 0 container, 1 built-in verifiable workload, 2 service"),
            "IMarket.sol's jobKind codes changed: update JobKind"
        );
    }

    #[test]
    fn codes_round_trip_and_unknown_bytes_are_refused() {
        for code in 0..=u8::MAX {
            if let Some(s) = Status::from_code(code) {
                assert_eq!(s.code(), code);
            }
            if let Some(k) = JobKind::from_code(code) {
                assert_eq!(k.code(), code);
            }
        }
        assert_eq!(Status::of(9), Status::None);
        assert_eq!(LeaseKind::of(2), Some(LeaseKind::Held));
        assert_eq!(JobKind::from_code(2), Some(JobKind::Service));
        assert_eq!(
            CloseReason::try_from(8)
                .expect_err("no ninth reason")
                .to_string(),
            "CloseReason 8 is not known to this build (is the deployment newer than the tools?)"
        );
    }
}
