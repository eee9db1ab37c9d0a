//! A tenant's access to its lease's workload at the provider's node (ACC-01): each request
//! carries its own EIP-712 [`Access`] in the [`crate::AUTH_HEADER`], as
//! `<expiry>:<nonce>:<signature>`. It names what it reaches (the result, the logs), the lease,
//! the node's provider, the chain and the market; it lives at most [`MAX_LIFE`] seconds, and its
//! nonce is used once (the node refuses a replay), so a header seen on the way (plain http, a log,
//! a proxy) is no good for another request, another lease, another provider or another market.

use alloy::{
    primitives::{Address, B256, Signature},
    signers::SignerSync,
    sol_types::SolStruct,
};
use gridlease_primitives::eip712::{Access, access_domain};

use crate::Venue;

/// The longest an authorisation may live (seconds): a node refuses one expiring later (and keeps
/// each nonce it took this long at most).
pub const MAX_LIFE: u64 = 900;
/// How long the ones signed here live (seconds).
pub const LIFE: u64 = 600;

/// What an authorisation reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessTo {
    /// `GET /results/<lease>`: the stored result.
    Result,
    /// `GET /logs/<lease>`: the job's logs.
    Logs,
    /// `GET /shell/<lease>`: a command in the job's container ([`crate::shell`]).
    Shell,
}

impl AccessTo {
    /// Its name in the signed message.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Result => "result",
            Self::Logs => "logs",
            Self::Shell => "shell",
        }
    }
}

/// A checked authorisation: who signed it, and the nonce and expiry a node keeps to refuse its
/// replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The signer (the node compares it with the lease's tenant).
    pub signer: Address,
    /// Its nonce.
    pub nonce: B256,
    /// Its expiry (unix seconds).
    pub expiry: u64,
}

fn message(what: AccessTo, lease: B256, provider: Address, expiry: u64, nonce: B256) -> Access {
    Access {
        action: what.name().to_owned(),
        lease,
        provider,
        expiry,
        nonce,
    }
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The [`crate::AUTH_HEADER`] value by which `signer` (the tenant) asks `provider`'s node for
/// `what` of `lease` at `venue`: a fresh nonce, valid [`LIFE`] seconds. Sign one per request.
pub fn access(
    signer: &impl SignerSync,
    venue: Venue,
    what: AccessTo,
    lease: B256,
    provider: Address,
) -> Option<String> {
    let (expiry, nonce) = (now() + LIFE, B256::random());
    let hash = message(what, lease, provider, expiry, nonce)
        .eip712_signing_hash(&access_domain(venue.chain_id, venue.market));
    let sig = signer.sign_hash_sync(&hash).ok()?;
    Some(format!("{expiry}:{nonce}:{sig}"))
}

/// Check the form and expiry of `header` at unix time `now` and recover who signed it for `what`
/// of `lease` at `provider`'s node at `venue` (a signature made for anything else recovers
/// another address). Local work only: nothing here costs a chain read. The error says why, for
/// the client.
pub fn grant(
    header: &str,
    venue: Venue,
    what: AccessTo,
    lease: B256,
    provider: Address,
    now: u64,
) -> Result<Grant, String> {
    let mut parts = header.splitn(3, ':');
    let (Some(expiry), Some(nonce), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(
            "x-gridlease-auth is <expiry>:<nonce>:<signature> (an EIP-712 Access; `gridlease` signs one per request)"
                .into(),
        );
    };
    let (Ok(expiry), Ok(nonce), Ok(sig)) = (
        expiry.parse::<u64>(),
        nonce.parse::<B256>(),
        sig.parse::<Signature>(),
    ) else {
        return Err(
            "x-gridlease-auth is <expiry>:<nonce (32 bytes, hex)>:<signature (65 bytes, hex)>"
                .into(),
        );
    };
    if expiry < now {
        return Err("the authorisation expired: sign a new one".into());
    }
    if expiry > now + MAX_LIFE {
        return Err(format!(
            "the authorisation lives over {MAX_LIFE} s: sign one that expires sooner"
        ));
    }
    let hash = message(what, lease, provider, expiry, nonce)
        .eip712_signing_hash(&access_domain(venue.chain_id, venue.market));
    let signer = sig
        .recover_address_from_prehash(&hash)
        .map_err(|_| "the signature does not recover".to_owned())?;
    Ok(Grant {
        signer,
        nonce,
        expiry,
    })
}

#[cfg(test)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;

    use super::*;

    const V: Venue = Venue {
        chain_id: 31_337,
        market: Address::repeat_byte(0xaa),
    };

    /// Every term is bound: a header recovers its signer only for the action, lease, provider,
    /// chain and market it was made for; each signed header has its own nonce; the form and the
    /// expiry are checked before any recovery.
    #[test]
    fn acc_01_an_access_recovers_its_signer_only_for_what_it_names() {
        let key = PrivateKeySigner::random();
        let (lease, provider) = (B256::repeat_byte(1), Address::repeat_byte(2));
        let h = access(&key, V, AccessTo::Result, lease, provider).expect("signs");
        let g = grant(&h, V, AccessTo::Result, lease, provider, now()).expect("grants");
        assert_eq!(g.signer, key.address());
        let other = access(&key, V, AccessTo::Result, lease, provider).expect("signs");
        assert_ne!(
            grant(&other, V, AccessTo::Result, lease, provider, now())
                .expect("grants")
                .nonce,
            g.nonce,
            "two requests, one nonce"
        );
        let elsewhere = [
            grant(&h, V, AccessTo::Logs, lease, provider, now()),
            grant(
                &h,
                V,
                AccessTo::Result,
                B256::repeat_byte(3),
                provider,
                now(),
            ),
            grant(
                &h,
                V,
                AccessTo::Result,
                lease,
                Address::repeat_byte(4),
                now(),
            ),
            grant(
                &h,
                Venue { chain_id: 1, ..V },
                AccessTo::Result,
                lease,
                provider,
                now(),
            ),
            grant(
                &h,
                Venue {
                    market: Address::repeat_byte(5),
                    ..V
                },
                AccessTo::Result,
                lease,
                provider,
                now(),
            ),
        ];
        for g in elsewhere {
            assert_ne!(g.map(|g| g.signer), Ok(key.address()));
        }
        // Expired, or living too long.
        let e =
            grant(&h, V, AccessTo::Result, lease, provider, now() + LIFE + 1).expect_err("refused");
        assert!(e.contains("expired"), "{e}");
        let (exp, rest) = h.split_once(':').expect("form");
        let long = format!("{}:{rest}", exp.parse::<u64>().expect("expiry") + MAX_LIFE);
        let e = grant(&long, V, AccessTo::Result, lease, provider, now()).expect_err("refused");
        assert!(e.contains("lives over"), "{e}");
        // Malformed.
        for bad in ["", "1", "1:2", "x:y:z", &format!("{exp}:0x12:{rest}")] {
            assert!(
                grant(bad, V, AccessTo::Result, lease, provider, now()).is_err(),
                "{bad}"
            );
        }
    }
}
