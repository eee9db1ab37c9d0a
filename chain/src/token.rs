//! ERC-20 helpers: EIP-2612 permits against the token's real domain, and approvals that USDT and
//! its like accept.

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
    sol_types::{Eip712Domain, SolStruct},
};
use gridlease_bindings::MockStablecoin;

use crate::{ChainError, classify, send};
use gridlease_primitives::eip712::{Permit, permit_domain};

/// A signed permit: `(v, r, s, deadline)` as `permit` and `createOrderWithPermit` take them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedPermit {
    /// Recovery id + 27.
    pub v: u8,
    /// r.
    pub r: B256,
    /// s.
    pub s: B256,
    /// Deadline.
    pub deadline: U256,
}

/// The token's EIP-712 domain: its `name()` with version "1" (OpenZeppelin) or "2" (Circle's
/// USDC), whichever reproduces its `DOMAIN_SEPARATOR()`.
pub async fn detect_permit_domain<P: Provider>(
    provider: &P,
    chain_id: u64,
    token: Address,
) -> Result<Eip712Domain, ChainError> {
    let t = MockStablecoin::new(token, provider);
    let name = t.name().call().await.map_err(classify)?;
    let separator = t.DOMAIN_SEPARATOR().call().await.map_err(|_| {
        ChainError::User(format!(
            "token {token} does not support EIP-2612 permits (no DOMAIN_SEPARATOR)"
        ))
    })?;
    for version in ["1", "2"] {
        let mut d = permit_domain(&name, chain_id, token);
        d.version = Some(version.into());
        if d.separator() == separator {
            return Ok(d);
        }
    }
    Err(ChainError::User(format!(
        "cannot reproduce the permit domain of token {token} (\"{name}\"); approve it instead"
    )))
}

/// Sign a permit of `value` for `spender` from `signer`, valid until `deadline`.
pub async fn sign_permit<P: Provider>(
    provider: &P,
    chain_id: u64,
    token: Address,
    signer: &PrivateKeySigner,
    spender: Address,
    value: U256,
    deadline: u64,
) -> Result<SignedPermit, ChainError> {
    let domain = detect_permit_domain(provider, chain_id, token).await?;
    let t = MockStablecoin::new(token, provider);
    let nonce = t.nonces(signer.address()).call().await.map_err(classify)?;
    let permit = Permit {
        owner: signer.address(),
        spender,
        value,
        nonce,
        deadline: U256::from(deadline),
    };
    let hash = permit.eip712_signing_hash(&domain);
    let sig = alloy::signers::SignerSync::sign_hash_sync(signer, &hash)
        .map_err(|e| ChainError::User(format!("cannot sign the permit: {e}")))?;
    Ok(SignedPermit {
        v: 27 + u8::from(sig.v()),
        r: sig.r().into(),
        s: sig.s().into(),
        deadline: U256::from(deadline),
    })
}

/// Raise `spender`'s allowance in `token` from the provider's signer, now `current` (short of
/// `units`), to exactly `units`. A non-zero allowance is set to zero first: USDT and its like
/// refuse to change one non-zero allowance into another. `approve` is sent without decoding its
/// answer (they return nothing).
pub async fn approve_exactly<P: Provider>(
    provider: &P,
    token: Address,
    spender: Address,
    current: U256,
    units: U256,
) -> Result<(), ChainError> {
    let erc20 = MockStablecoin::new(token, provider);
    if !current.is_zero() {
        send(erc20.approve(spender, U256::ZERO)).await?;
    }
    send(erc20.approve(spender, units)).await?;
    Ok(())
}
