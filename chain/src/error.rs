//! Every way a chain interaction fails, as one of three kinds people can act on: a network
//! problem, a revert (decoded against the protocol's and the token's ABIs, with a plain-language
//! explanation), or a mistake in what the user asked for.

use std::fmt;

use crate::rpc::overloaded;

use alloy::{
    primitives::{B256, Bytes, U256},
    sol_types::{Panic, Revert as RevertString, SolError, SolInterface},
};
use gridlease_bindings::{
    Market::MarketErrors, Results::ResultsErrors, Staking::StakingErrors, Timelock::TimelockErrors,
};

alloy::sol! {
    /// The errors standard tokens revert with: OpenZeppelin 5's ERC-20, ERC-2612, nonces and
    /// `Pausable` (tokens such as Circle's USDC use `require` messages instead: see
    /// [`ContractError::Message`]).
    #[derive(Debug, PartialEq, Eq)]
    interface Token {
        /// The sender holds less than the amount.
        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        /// The spender's allowance is less than the amount.
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        /// Transfer from an invalid sender.
        error ERC20InvalidSender(address sender);
        /// Transfer to an invalid receiver.
        error ERC20InvalidReceiver(address receiver);
        /// Approval from an invalid approver.
        error ERC20InvalidApprover(address approver);
        /// Approval of an invalid spender.
        error ERC20InvalidSpender(address spender);
        /// The permit's deadline passed.
        error ERC2612ExpiredSignature(uint256 deadline);
        /// The permit was signed by someone other than the owner.
        error ERC2612InvalidSigner(address signer, address owner);
        /// The permit's nonce was used.
        error InvalidAccountNonce(address account, uint256 currentNonce);
        /// The token is paused.
        error EnforcedPause();
    }
}

pub use Token::TokenErrors;

/// A revert, decoded against every ABI the tools talk to: the protocol's contracts and the
/// payment token's.
#[derive(Clone, Debug, PartialEq)]
pub enum ContractError {
    /// The market's (or, at the market's address, its admin module's) custom error.
    Market(MarketErrors),
    /// A results module's.
    Results(ResultsErrors),
    /// Staking's.
    Staking(StakingErrors),
    /// The timelock's.
    Timelock(TimelockErrors),
    /// A token's standard custom error (OpenZeppelin 5).
    Token(TokenErrors),
    /// `Error(string)`: a `require` message (Circle's USDC: `Pausable: paused`).
    Message(String),
    /// `Panic(uint256)`: an assertion or arithmetic failure.
    Panic(U256),
    /// A revert without data.
    Empty,
    /// A transaction that passed simulation and failed on chain (its hash).
    FailedOnChain(B256),
    /// Data no known ABI decodes.
    Unknown(Bytes),
}

impl ContractError {
    /// Decode revert data.
    pub fn decode(data: &[u8]) -> Self {
        if let Ok(e) = MarketErrors::abi_decode(data) {
            Self::Market(e)
        } else if let Ok(e) = ResultsErrors::abi_decode(data) {
            Self::Results(e)
        } else if let Ok(e) = StakingErrors::abi_decode(data) {
            Self::Staking(e)
        } else if let Ok(e) = TimelockErrors::abi_decode(data) {
            Self::Timelock(e)
        } else if let Ok(e) = TokenErrors::abi_decode(data) {
            Self::Token(e)
        } else if let Ok(r) = RevertString::abi_decode(data) {
            Self::Message(r.reason)
        } else if let Ok(p) = Panic::abi_decode(data) {
            Self::Panic(p.code)
        } else if data.is_empty() {
            Self::Empty
        } else {
            Self::Unknown(Bytes::copy_from_slice(data))
        }
    }

    /// The error's name (`BidAboveReserve`), or `Error` / `Panic` / `(no data)` /
    /// `failed on chain` / `unknown error`.
    pub fn name(&self) -> &'static str {
        fn by_selector(name: Option<&'static str>) -> &'static str {
            name.unwrap_or("unknown error")
        }
        match self {
            Self::Market(e) => by_selector(MarketErrors::name_by_selector(e.selector())),
            Self::Results(e) => by_selector(ResultsErrors::name_by_selector(e.selector())),
            Self::Staking(e) => by_selector(StakingErrors::name_by_selector(e.selector())),
            Self::Timelock(e) => by_selector(TimelockErrors::name_by_selector(e.selector())),
            Self::Token(e) => by_selector(TokenErrors::name_by_selector(e.selector())),
            Self::Message(_) => "Error",
            Self::Panic(_) => "Panic",
            Self::Empty => "(no data)",
            Self::FailedOnChain(_) => "failed on chain",
            Self::Unknown(_) => "unknown error",
        }
    }

    /// The error's arguments, for people (` { price: 5, maxPrice: 4 }`, ` "Pausable: paused"`).
    fn detail(&self) -> String {
        /// `Name(Name { a: 1 })` -> ` { a: 1 }`.
        fn fields(debug: String, name: &str) -> String {
            let inner = debug
                .strip_prefix(name)
                .unwrap_or(&debug)
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim_start_matches(name)
                .trim();
            if inner.is_empty() {
                String::new()
            } else {
                format!(" {inner}")
            }
        }
        let name = self.name();
        match self {
            Self::Market(e) => fields(format!("{e:?}"), name),
            Self::Results(e) => fields(format!("{e:?}"), name),
            Self::Staking(e) => fields(format!("{e:?}"), name),
            Self::Timelock(e) => fields(format!("{e:?}"), name),
            Self::Token(e) => fields(format!("{e:?}"), name),
            Self::Message(m) => format!(" \"{m}\""),
            Self::Panic(code) => format!(" {code}"),
            Self::Empty => String::new(),
            Self::FailedOnChain(hash) => format!(" (tx {hash})"),
            Self::Unknown(data) => format!(" {data}"),
        }
    }

    /// Whether the token itself refused because it is paused (OpenZeppelin's `EnforcedPause`, or
    /// a `require` message such as Circle's `Pausable: paused`).
    pub fn is_token_paused(&self) -> bool {
        match self {
            Self::Token(TokenErrors::EnforcedPause(_)) => true,
            Self::Message(m) => m.to_ascii_lowercase().contains("paused"),
            _ => false,
        }
    }

    /// Whether the token's issuer froze an account (Circle's `Blacklistable` message).
    pub fn is_token_blacklist(&self) -> bool {
        matches!(self, Self::Message(m) if m.to_ascii_lowercase().contains("blacklist"))
    }

    /// Whether the revert means "someone already did this" (KB-02): the order or lease has moved
    /// on (awarded, closed, proven) or the evidence was used, so the work is done, not failed.
    pub fn is_already_done(&self) -> bool {
        use gridlease_bindings::{
            Market::MarketErrors as M, Results::ResultsErrors as R, Staking::StakingErrors as S,
        };
        matches!(
            self,
            Self::Market(M::LeaseNotActive(_) | M::OrderNotOpen(_) | M::LeaseNotFaultable(_))
                | Self::Staking(S::EvidenceAlreadyUsed(_))
                | Self::Results(
                    R::LeaseNotRunning(_)
                        | R::NotANoShow(_)
                        | R::HeartbeatResumed(_)
                        | R::ProviderLive(_)
                        | R::ChallengeWindowOver(_)
                        // Someone challenged the chunk first, or its challenge was answered or
                        // proven.
                        | R::ChallengeOpen(_)
                        | R::NoChallenge(_)
                        // A result was posted after all (in the grace): nothing missed.
                        | R::DeadlineNotMissed(_)
                )
        )
    }
}

/// A decoded revert.
#[derive(Clone, Debug, PartialEq)]
pub struct Revert {
    /// The error, typed: match on this, not on [`Revert::name`].
    pub error: ContractError,
    /// Error name (`BidAboveReserve`), or `Error`/`Panic`/`unknown`.
    pub name: String,
    /// Its arguments as decoded.
    pub detail: String,
    /// What it means and what to do.
    pub hint: String,
}

impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reverted with {}{}", self.name, self.detail)?;
        if !self.hint.is_empty() {
            write!(f, ": {}", self.hint)?;
        }
        Ok(())
    }
}

/// Why a chain interaction failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The RPC could not be reached or answered nonsense. Nothing was sent, or it is unknown.
    #[error("network: {0}")]
    Network(String),
    /// The contract refused (found in simulation: nothing was sent, no gas spent).
    #[error("{0}")]
    Revert(Box<Revert>),
    /// The node refused the request (e.g. no ether for gas) or the input was wrong.
    #[error("{0}")]
    User(String),
}

/// Plain-language meaning of each protocol error.
const HINTS: &[(&str, &str)] = &[
    (
        "TokenNotAllowed",
        "the market does not accept this payment token",
    ),
    (
        "InvalidOrder",
        "an order field is out of the market's bounds (see `gridlease market --params`)",
    ),
    (
        "OrderExists",
        "an identical order exists; change the spec or the salt",
    ),
    (
        "OrderNotOpen",
        "the order is no longer open (already leased, cancelled or unknown)",
    ),
    (
        "LeaseNotActive",
        "the lease is not running (closed, never started, or an unknown id)",
    ),
    ("BiddingClosed", "the bid window of this order has ended"),
    (
        "BiddingStillOpen",
        "the bid window has not ended yet; try again after it",
    ),
    ("BidAboveReserve", "the price is above the order's maximum"),
    ("BidBelowMinimum", "the price is below the market minimum"),
    (
        "BidNotLowest",
        "bids are binding and only a lower bid replaces the best one",
    ),
    (
        "NotAnOperator",
        "this key is not a registered provider operator",
    ),
    (
        "InsufficientCollateral",
        "the provider's free stake does not cover the order's collateral",
    ),
    (
        "CapacityMismatch",
        "the provider's registered GPUs do not meet the order's requirements",
    ),
    ("NoValidBid", "no valid bid to award yet"),
    (
        "NotTenant",
        "only the tenant may do this (anyone may cancel once the award grace has passed)",
    ),
    (
        "LeaseDepleted",
        "the lease ran out of escrow; it can only be closed now (then order again)",
    ),
    (
        "ProviderMismatch",
        "the lease's provider is not the one you expected; check the id",
    ),
    (
        "NothingToWithdrawMarket",
        "nothing to withdraw for this account and token",
    ),
    (
        "MarketPaused",
        "the market is paused for new orders, bids and awards; exits still work",
    ),
    (
        "EscrowOverflow",
        "the escrow would exceed the largest amount the market holds per lease",
    ),
    (
        "TokenTransferMismatch",
        "the token moved a different amount than asked (fee-on-transfer tokens are refused)",
    ),
    (
        "InsufficientAllowance",
        "the permit failed and the allowance does not cover the amount; sign a new permit",
    ),
    (
        "ERC20InsufficientBalance",
        "the wallet does not hold enough of the token",
    ),
    (
        "ERC20InsufficientAllowance",
        "the allowance does not cover the amount",
    ),
    (
        "ERC2612ExpiredSignature",
        "the permit expired; submit again",
    ),
    (
        "ERC2612InvalidSigner",
        "the permit was not signed by the paying wallet",
    ),
    ("InsufficientFreeStake", "not enough free (unlocked) stake"),
    (
        "UnbondingNotReleased",
        "the unbonding delay has not passed yet",
    ),
    ("NothingToWithdraw", "nothing to withdraw"),
    ("ProviderNotRegistered", "register the provider first"),
    (
        "StartWindowOver",
        "the lease was not acknowledged within its start window: it is a no-show now (the tenant proves it with gridlease result ID --prove); the provider can no longer acknowledge it or post its result",
    ),
    (
        "TooLateToReport",
        "a lapse reported now could not last the stale grace before the lease ends: the provider owes no heartbeat after its lease, and the unpaid lapse costs the tenant nothing",
    ),
    (
        "ProviderLive",
        "the provider's heartbeat is fresh: there is no lapse to report",
    ),
    (
        "StaleNotProven",
        "the lapse was not reported, or its grace has not passed yet",
    ),
    (
        "HeartbeatResumed",
        "the provider beat again within the grace after the report: the lapse is forgiven",
    ),
    (
        "ResponseWindowOver",
        "the challenge's response window has ended: the chunk can no longer be revealed; prove it unavailable",
    ),
    (
        "BadChunkLength",
        "a revealed chunk has exactly its leaf's length (1 KiB, the last one shorter)",
    ),
    (
        "NotMalformed",
        "the node given is a real leaf of the right length, or a padding node that is all zeros: the tree is not malformed there",
    ),
    (
        "ResultAlreadyPosted",
        "a result was already posted for this lease",
    ),
    (
        "DeadlinePassed",
        "the result deadline (lease end + grace) has passed: the missed deadline is provable",
    ),
    (
        "BadOperatorConsent",
        "the operator's consent signature does not match (wrong key, provider, nonce or an expired deadline): sign it again with gridlease-provider consent",
    ),
    (
        "OperatorUnavailable",
        "this operator key is already bound to another provider",
    ),
    (
        "MarketAlreadySet",
        "staking is bound to its market once and for ever; a new market is a new deployment",
    ),
    (
        "LeaseNotClosable",
        "nobody but the tenant may close a batch lease without a result (a no-show or a missed deadline is ended by proving it: gridlease result ID --prove; a provider that cannot finish abandons it); a service lease closes by anyone only once it expired, ran dry or lapsed",
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
    (
        "OwnableUnauthorizedAccount",
        "only the contract owner (governance) may do this",
    ),
];

/// Decode revert data into the typed error, its name, its arguments and a hint.
pub fn decode_revert(data: &[u8]) -> Revert {
    Revert::new(ContractError::decode(data))
}

impl Revert {
    /// The revert of `error`, with its hint.
    pub fn new(error: ContractError) -> Self {
        let name = error.name();
        let hint = if error.is_token_paused() {
            "the payment token is paused by its issuer: no transfer can happen until it is \
             unpaused (nothing was sent; try again later)"
        } else if error.is_token_blacklist() {
            "the payment token's issuer has frozen one of the accounts involved (yours, the \
             market's or the provider's); the token refuses to move funds for it"
        } else {
            HINTS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, h)| *h)
        };
        Self {
            name: name.to_owned(),
            detail: error.detail(),
            hint: hint.to_owned(),
            error,
        }
    }

    /// A transaction that passed simulation and then failed on chain.
    pub fn failed_on_chain(hash: B256) -> Self {
        let mut r = Self::new(ContractError::FailedOnChain(hash));
        r.hint = "the state changed between simulation and inclusion; check and retry".into();
        r
    }

    /// A transaction that passed simulation and then used all of its gas `limit` on chain.
    pub fn out_of_gas(hash: B256, limit: u64) -> Self {
        let mut r = Self::new(ContractError::FailedOnChain(hash));
        r.hint = format!(
            "it ran out of gas on chain (all of its {limit}): the state it met in its block needed more than estimated; retry"
        );
        r
    }

    /// Whether the revert means "someone already did this" ([`ContractError::is_already_done`]).
    pub fn is_already_done(&self) -> bool {
        self.error.is_already_done()
    }
}

/// Classify a contract-call error.
pub fn classify(e: alloy::contract::Error) -> ChainError {
    if let Some(data) = e.as_revert_data() {
        return ChainError::Revert(Box::new(decode_revert(&data)));
    }
    match e {
        alloy::contract::Error::TransportError(t) => match t.as_error_resp() {
            // The node answered with an error: it refused the request itself.
            Some(resp) => ChainError::User(format!(
                "the node refused the transaction: {}",
                resp.message
            )),
            None => ChainError::Network(t.to_string()),
        },
        other => ChainError::User(other.to_string()),
    }
}

/// Classify a provider (non-contract) RPC error.
pub fn classify_rpc(e: alloy::transports::TransportError) -> ChainError {
    match e.as_error_resp() {
        // A rate limit or an overloaded node is a network condition: back off and retry.
        Some(resp) if overloaded(resp.code) => {
            ChainError::Network(format!("{} ({})", resp.message, resp.code))
        }
        Some(resp) => match resp.as_revert_data() {
            Some(data) => ChainError::Revert(Box::new(decode_revert(&data))),
            None => ChainError::User(format!("the node refused the request: {}", resp.message)),
        },
        None => ChainError::Network(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn v2_reverts_say_what_they_mean_to_a_tenant() {
        use alloy::{
            primitives::{Address, B256, U256},
            sol_types::SolError,
        };
        let r = decode_revert(
            &Market::AccountFrozenMarket {
                token: Address::ZERO,
                account: Address::ZERO,
            }
            .abi_encode(),
        );
        assert_eq!(r.name, "AccountFrozenMarket");
        assert!(r.hint.contains("MEC-16"), "{}", r.hint);
        let r = decode_revert(
            &Market::LeaseHeld {
                leaseId: B256::ZERO,
                holdEnd: U256::from(5),
            }
            .abi_encode(),
        );
        assert!(r.hint.contains("only the tenant"), "{}", r.hint);
        let r = decode_revert(
            &Market::LeaseNotClosable {
                leaseId: B256::ZERO,
                end: alloy::primitives::aliases::U48::ZERO,
                escrow: alloy::primitives::aliases::U96::ZERO,
            }
            .abi_encode(),
        );
        assert!(r.hint.contains("--prove"), "{}", r.hint);
    }

    use super::*;
    use alloy::primitives::U256;
    use gridlease_bindings::Market;

    #[test]
    fn decodes_protocol_errors_with_hints() {
        let data = Market::BidAboveReserve {
            price: U256::from(5),
            maxPrice: U256::from(4),
        }
        .abi_encode();
        let r = decode_revert(&data);
        assert_eq!(r.name, "BidAboveReserve");
        assert!(r.detail.contains("price: 5"), "{r}");
        assert!(r.hint.contains("above the order's maximum"));
        let s = RevertString::from("nope".to_owned()).abi_encode();
        assert_eq!(decode_revert(&s).name, "Error");
        assert_eq!(decode_revert(&[1, 2, 3, 4]).name, "unknown error");
    }

    /// A paused or freezing token is named as the cause, whichever way the token says it
    /// (OpenZeppelin's custom error, Circle's `require` message).
    #[test]
    fn token_errors_are_decoded_and_named() {
        let paused = RevertString::from("Pausable: paused".to_owned()).abi_encode();
        let r = decode_revert(&paused);
        assert_eq!(r.error, ContractError::Message("Pausable: paused".into()));
        assert!(r.hint.contains("paused by its issuer"), "{r}");
        let r = decode_revert(&Token::EnforcedPause {}.abi_encode());
        assert_eq!(r.name, "EnforcedPause");
        assert!(r.error.is_token_paused());
        let frozen =
            RevertString::from("Blacklistable: account is blacklisted".to_owned()).abi_encode();
        assert!(decode_revert(&frozen).hint.contains("frozen"));
        let r = decode_revert(
            &Token::ERC20InsufficientBalance {
                sender: alloy::primitives::Address::ZERO,
                balance: U256::from(1),
                needed: U256::from(2),
            }
            .abi_encode(),
        );
        assert_eq!(r.name, "ERC20InsufficientBalance");
        assert!(r.detail.contains("needed: 2"), "{r}");
    }

    /// KB-02: what another keeper (or the tenant) already did is recognised by type.
    #[test]
    fn already_done_is_a_property_of_the_typed_error() {
        use gridlease_bindings::{Results, Staking};
        let done = [
            Market::OrderNotOpen {
                orderId: B256::ZERO,
                status: 1,
            }
            .abi_encode(),
            Results::NoChallenge {
                leaseId: B256::ZERO,
                index: U256::ZERO,
            }
            .abi_encode(),
            Staking::EvidenceAlreadyUsed {
                evidence: B256::ZERO,
            }
            .abi_encode(),
        ];
        for data in done {
            let r = decode_revert(&data);
            assert!(r.is_already_done(), "{r}");
        }
        let not_done = Market::BidAboveReserve {
            price: U256::from(5),
            maxPrice: U256::from(4),
        }
        .abi_encode();
        assert!(!decode_revert(&not_done).is_already_done());
        assert!(!Revert::failed_on_chain(B256::ZERO).is_already_done());
    }
}
