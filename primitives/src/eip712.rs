//! EIP-712 messages verified on chain: signed bids (Market), operators' consent to serve a
//! provider (Staking) and EIP-2612 permits (payment tokens); and one verified by provider nodes:
//! a tenant's access to its lease's workload ([`Access`]).

use alloy::{
    primitives::{Address, B256, Signature, U256, aliases::U48, aliases::U96},
    signers::SignerSync,
    sol,
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};

/// What signing returns: the signer refused or the key is unusable.
type Result<T, E = alloy::signers::Error> = std::result::Result<T, E>;

sol! {
    /// A provider's sealed bid on one order; see `Market.BID_TYPEHASH`.
    #[derive(Debug, PartialEq, Eq)]
    struct Bid {
        bytes32 orderId;
        uint96 pricePerSecond;
        uint48 expiry;
    }

    /// An operator (hot) key's consent to be bound to `provider` (`Staking.register` and
    /// `updateProvider`): `nonce` is `Staking.operatorNonce(operator)`, one use each (MEC-11).
    #[derive(Debug, PartialEq, Eq)]
    struct OperatorConsent {
        address provider;
        address operator;
        uint256 nonce;
        uint256 deadline;
    }

    /// A tenant's authorisation of one request to a provider's node about its lease (ACC-01):
    /// `action` names what it reaches (`result`, `logs`), `provider` the node's provider (a
    /// header seen by one provider's node is no good at another's), `nonce` makes each request's
    /// authorisation its own (a node refuses one it has seen), and `expiry` (unix seconds) ends
    /// it. Signed over [`access_domain`]: bound to the chain and the market.
    #[derive(Debug, PartialEq, Eq)]
    struct Access {
        string action;
        bytes32 lease;
        address provider;
        uint64 expiry;
        bytes32 nonce;
    }

    /// EIP-2612 permit.
    #[derive(Debug, PartialEq, Eq)]
    struct Permit {
        address owner;
        address spender;
        uint256 value;
        uint256 nonce;
        uint256 deadline;
    }
}

/// The Market's EIP-712 domain on `chain_id` at `market`.
pub fn market_domain(chain_id: u64, market: Address) -> Eip712Domain {
    eip712_domain! {
        name: "gridlease Market",
        version: "1",
        chain_id: chain_id,
        verifying_contract: market,
    }
}

/// The domain of a tenant's [`Access`] to a node serving the market at `market` on `chain_id`
/// (verified by nodes, never on chain: its name differs from the Market's so no signature made
/// for one is taken for the other).
pub fn access_domain(chain_id: u64, market: Address) -> Eip712Domain {
    eip712_domain! {
        name: "gridlease access",
        version: "1",
        chain_id: chain_id,
        verifying_contract: market,
    }
}

/// The Staking contract's EIP-712 domain on `chain_id` at `staking`.
pub fn staking_domain(chain_id: u64, staking: Address) -> Eip712Domain {
    eip712_domain! {
        name: "gridlease Staking",
        version: "1",
        chain_id: chain_id,
        verifying_contract: staking,
    }
}

impl OperatorConsent {
    /// The consent of `operator` (sign with its key) to serve `provider`, valid until `deadline`.
    pub fn new(provider: Address, operator: Address, nonce: U256, deadline: u64) -> Self {
        Self {
            provider,
            operator,
            nonce,
            deadline: U256::from(deadline),
        }
    }

    /// Sign with the operator key; returns the 65-byte `r || s || v` signature.
    pub fn sign(&self, domain: &Eip712Domain, signer: &impl SignerSync) -> Result<Signature> {
        signer.sign_hash_sync(&self.eip712_signing_hash(domain))
    }
}

/// The EIP-2612 domain of a token whose `name()` is `token_name` (OpenZeppelin ERC20Permit uses
/// version "1").
pub fn permit_domain(token_name: &str, chain_id: u64, token: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(token_name.to_owned().into()),
        Some("1".into()),
        Some(U256::from(chain_id)),
        Some(token),
        None,
    )
}

impl Bid {
    /// A bid of `price_per_second` (18-decimal units) on `order_id`, valid until `expiry`.
    pub fn new(order_id: B256, price_per_second: u128, expiry: u64) -> Self {
        Self {
            orderId: order_id,
            pricePerSecond: U96::from(price_per_second),
            expiry: U48::from(expiry),
        }
    }

    /// Sign with the provider's operator key; returns the 65-byte `r || s || v` signature.
    pub fn sign(&self, domain: &Eip712Domain, signer: &impl SignerSync) -> Result<Signature> {
        signer.sign_hash_sync(&self.eip712_signing_hash(domain))
    }
}

/// A signed bid as a provider node serves it at `GET /bids/<order id>` and a keeper reads it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServedBid {
    /// The order.
    pub order: B256,
    /// The provider (its owner address).
    pub provider: Address,
    /// The operator key that signed it.
    pub operator: Address,
    /// 18-decimal units per second, as a decimal string.
    pub price_per_second: String,
    /// Valid until this unix time (inclusive).
    pub expiry: u64,
    /// 65-byte `r || s || v` signature, 0x hex.
    pub signature: alloy::primitives::Bytes,
}

impl ServedBid {
    /// Sign a bid on `order` with `signer` (the provider's operator key) and describe it.
    pub fn sign(
        domain: &Eip712Domain,
        signer: &alloy::signers::local::PrivateKeySigner,
        provider: Address,
        order: B256,
        price_per_second: u128,
        expiry: u64,
    ) -> Result<Self> {
        let sig = Bid::new(order, price_per_second, expiry).sign(domain, signer)?;
        Ok(Self {
            order,
            provider,
            operator: signer.address(),
            price_per_second: price_per_second.to_string(),
            expiry,
            signature: sig.as_bytes().to_vec().into(),
        })
    }

    /// The price, if `price_per_second` is a decimal number that fits a `uint96`.
    pub fn price(&self) -> Option<u128> {
        let p: u128 = self.price_per_second.parse().ok()?;
        (p < 1u128 << 96).then_some(p)
    }

    /// Who signed it under `domain` (None: malformed price, expiry or signature).
    pub fn signer(&self, domain: &Eip712Domain) -> Option<Address> {
        let price = self.price()?;
        if self.expiry >= 1u64 << 48 {
            return None;
        }
        let sig = Signature::try_from(self.signature.as_ref()).ok()?;
        sig.recover_address_from_prehash(
            &Bid::new(self.order, price, self.expiry).eip712_signing_hash(domain),
        )
        .ok()
    }
}

impl Permit {
    /// Sign with the token owner's key.
    pub fn sign(&self, domain: &Eip712Domain, signer: &impl SignerSync) -> Result<Signature> {
        signer.sign_hash_sync(&self.eip712_signing_hash(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::{primitives::keccak256, signers::local::PrivateKeySigner};

    #[test]
    fn consent_typehash_matches_contract() {
        assert_eq!(
            OperatorConsent::new(Address::ZERO, Address::ZERO, U256::ZERO, 0).eip712_type_hash(),
            keccak256(
                "OperatorConsent(address provider,address operator,uint256 nonce,uint256 deadline)"
            )
        );
    }

    #[test]
    fn bid_typehash_matches_contract() {
        // Market.BID_TYPEHASH is keccak256 of this exact string.
        assert_eq!(
            Bid::new(B256::ZERO, 0, 0).eip712_type_hash(),
            keccak256("Bid(bytes32 orderId,uint96 pricePerSecond,uint48 expiry)")
        );
    }

    #[test]
    fn a_served_bid_round_trips_through_json_and_recovers_its_operator() {
        let signer = PrivateKeySigner::random();
        let domain = market_domain(31337, Address::repeat_byte(0x11));
        let bid = ServedBid::sign(
            &domain,
            &signer,
            Address::repeat_byte(5),
            B256::repeat_byte(7),
            1_234,
            99,
        )
        .expect("sign");
        let json = serde_json::to_string(&bid).expect("json");
        assert!(json.contains("\"pricePerSecond\":\"1234\""), "{json}");
        let back: ServedBid = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, bid);
        assert_eq!(back.signer(&domain), Some(signer.address()));
        // Another price under the same signature recovers someone else.
        let forged = ServedBid {
            price_per_second: "1".into(),
            ..back
        };
        assert_ne!(forged.signer(&domain), Some(signer.address()));
    }

    #[test]
    fn bid_signature_recovers_signer() {
        let signer = PrivateKeySigner::random();
        let domain = market_domain(31337, Address::repeat_byte(0x11));
        let bid = Bid::new(B256::repeat_byte(7), 1_000, 99);
        let sig = bid.sign(&domain, &signer).expect("sign");
        let recovered = sig
            .recover_address_from_prehash(&bid.eip712_signing_hash(&domain))
            .expect("recover");
        assert_eq!(recovered, signer.address());
        // Another chain gives another digest, so the signature is useless there.
        assert_ne!(
            bid.eip712_signing_hash(&domain),
            bid.eip712_signing_hash(&market_domain(
                1,
                domain.verifying_contract.unwrap_or_default()
            ))
        );
    }
}
