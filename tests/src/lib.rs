//! gridlease-tests: the contract test suite.
//!
//! - [`evm`]: the in-process chain (revm), the only module that names revm types.
//! - [`fixture`]: a deployed suite with funded accounts and helpers for every protocol step.

pub mod evm;
pub mod fixture;

/// Assert that a [`evm::Receipt`] reverted with variant `$variant` of the errors enum `$errors`
/// (any arguments): `assert_revert!(r, MarketErrors::BidAboveReserve)`.
#[macro_export]
macro_rules! assert_revert {
    ($r:expr, $errors:ident :: $variant:ident) => {{
        let err = $r.revert_as::<$errors>();
        assert!(
            matches!(err, $errors::$variant(_)),
            "expected {}, got {err:?}",
            stringify!($variant)
        );
    }};
}

/// Assert that a [`evm::Receipt`] reverted with exactly `$contract::$variant(args..)` (arguments in
/// Solidity order): `assert_revert_with!(r, Staking, StakingErrors::ZeroAmount())`.
#[macro_export]
macro_rules! assert_revert_with {
    ($r:expr, $contract:ident, $errors:ident :: $variant:ident($($a:expr),* $(,)?)) => {
        assert_eq!(
            $r.revert_as::<$errors>(),
            $errors::$variant(<$contract::$variant as alloy::sol_types::SolError>::new(($($a,)*)))
        )
    };
}
