//! What protocol v2's reverts mean to a tenant, where `gridlease_core::chain`'s hints (written for
//! v1) say nothing or something out of date.

use gridlease_core::chain::ChainError;

/// Tenant-facing meaning of v2 errors, by error name.
const HINTS: &[(&str, &str)] = &[
    (
        "LeaseNotClosable",
        "nobody but the tenant may close a batch lease without a result (a no-show or a missed deadline is ended by proving it: gridlease result ID --prove); a service lease closes by anyone only once it expired, ran dry or lapsed",
    ),
    (
        "LeaseHeld",
        "the result is held for its challenge window: only the tenant may close (accept) it before the window ends",
    ),
    (
        "LeaseChallenged",
        "a chunk challenge on the result is open: it must be answered, or proven unavailable (gridlease result ID --prove), before the lease can complete",
    ),
    (
        "AccountFrozenMarket",
        "the token refuses to pay this account (frozen/blacklisted): the protocol does not move a frozen account's credit to another address (MEC-16); it stays yours until the freeze is lifted",
    ),
    (
        "AccountFrozen",
        "the stake token refuses to pay this account (frozen/blacklisted): the credit cannot go to another address (MEC-16); it stays yours until the freeze is lifted",
    ),
    (
        "LeaseNotFaultable",
        "the lease is neither running nor a closed lease whose collateral is still held: its faults can no longer be proven",
    ),
    (
        "BadBond",
        "a challenge bonds exactly the module's challenge bond in ETH",
    ),
    (
        "ChallengeWindowOver",
        "the result's challenge window has ended: it stands",
    ),
    (
        "ChunkOutOfRange",
        "the result has fewer chunks (1 KiB each)",
    ),
    (
        "ChallengeOpen",
        "this chunk is already challenged and waiting for its answer",
    ),
    ("NoChallenge", "no open challenge of this chunk"),
    (
        "ResponseWindowOpen",
        "the provider may still reveal the chunk; prove it unavailable after the response window",
    ),
    (
        "NoResult",
        "no result was posted for this lease, or the root and size given are not it",
    ),
    (
        "NotANoShow",
        "the provider acknowledged the lease, or its start window has not passed",
    ),
    (
        "DeadlineNotMissed",
        "the result deadline (lease end + grace) has not passed, or a result was posted",
    ),
    ("NoFraud", "that element of the result is correct"),
    (
        "NothingToWithdrawEth",
        "no ETH credit to withdraw for this account",
    ),
    (
        "NotLeaseOperator",
        "only the operator of the lease's provider may do this",
    ),
];

/// `e` with the v2 hint of its revert, when there is one.
pub(crate) fn explain(e: ChainError) -> ChainError {
    match e {
        ChainError::Revert(mut r) => {
            if let Some((_, h)) = HINTS.iter().find(|(n, _)| *n == r.name) {
                (*h).clone_into(&mut r.hint);
            }
            ChainError::Revert(r)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{
        primitives::{Address, B256},
        sol_types::SolError,
    };
    use gridlease_bindings::Market;
    use gridlease_core::chain::decode_revert;

    #[test]
    fn a_frozen_account_says_why_its_credit_cannot_go_elsewhere() {
        let data = Market::AccountFrozenMarket {
            token: Address::ZERO,
            account: Address::ZERO,
        }
        .abi_encode();
        let ChainError::Revert(r) = explain(ChainError::Revert(decode_revert(&data))) else {
            panic!("a revert stays a revert");
        };
        assert_eq!(r.name, "AccountFrozenMarket");
        assert!(r.hint.contains("MEC-16"), "{}", r.hint);
        let data = Market::LeaseHeld {
            leaseId: B256::ZERO,
            holdEnd: alloy::primitives::U256::from(5),
        }
        .abi_encode();
        let ChainError::Revert(r) = explain(ChainError::Revert(decode_revert(&data))) else {
            panic!("a revert stays a revert");
        };
        assert!(r.hint.contains("only the tenant"), "{}", r.hint);
    }
}
