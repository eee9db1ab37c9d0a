//! The owner's commands: what the cold (owner) key does for a provider, without `cast`.
//!
//! - `consent`: the node's operator key signs its EIP-712 consent to serve the owner
//!   (`OperatorConsent(provider, operator, nonce, deadline)`, MEC-11), printed as JSON with the
//!   node's capacity, for an owner whose wallet is on another machine.
//! - `register`: the owner binds the operator (with that consent, or one signed here with the
//!   node's key from `provider.toml`), the capacity discovered or declared here, the node's public
//!   URL as metadata, and a collateral ceiling; an owner already registered updates its record.
//! - `stake`, `unbond`, `withdraw-stake`: the owner's stake in and out.
//!
//! The owner's wallet is given on the command line as a keystore and a password source (or a key
//! in an environment variable), never a raw key; the operator key never signs for the owner.

use alloy::{
    primitives::{Address, Bytes, U256, aliases::U96},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, bail};
use gridlease_bindings::{IStaking::Capacity, MockStablecoin, Staking};
use gridlease_chain::{
    ChainError, Client, ContractError, classify, deployments::Deployments, send,
    token::approve_exactly,
};
use gridlease_primitives::{
    eip712::{OperatorConsent, staking_domain},
    units::{format_amount, format_duration, parse_amount},
};
use serde::{Deserialize, Serialize};

use crate::{config::Config, gpu::Inventory};

/// Default lifetime of a consent from `consent` (long enough to carry it to the owner).
pub const CONSENT_VALIDITY: &str = "1d";

/// The capacity a node registers: its GPU classes, how many GPUs one lease may get, and the VRAM
/// each of them has at least.
pub fn capacity(inv: &Inventory) -> Capacity {
    Capacity {
        gpuClasses: inv.class_bitmap(),
        gpuCount: u8::try_from(inv.gpus.len().max(1)).unwrap_or(u8::MAX),
        vramGiB: inv.vram_gib(),
    }
}

/// The capacity as it travels in a consent file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityJson {
    /// Bitmap of GPU classes.
    pub gpu_classes: u64,
    /// GPUs one lease may get.
    pub gpu_count: u8,
    /// VRAM of each, GiB.
    pub vram_gib: u16,
}

/// An operator's signed consent to serve a provider, and what the owner needs with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentFile {
    /// The chain it is valid on.
    pub chain_id: u64,
    /// The Staking contract it is valid for.
    pub staking: Address,
    /// The owner it consents to serve (`wallet.owner`).
    pub provider: Address,
    /// The node's operator key.
    pub operator: Address,
    /// `Staking.operatorNonce(operator)` when signed (one use).
    pub nonce: U256,
    /// Last second (chain time) it is valid.
    pub deadline: u64,
    /// The 65-byte signature.
    pub signature: Bytes,
    /// The node's capacity (discovered or declared where the node runs).
    pub capacity: CapacityJson,
}

/// A collateral ceiling: all of the stake, or at most an amount of the stake token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ceiling {
    /// No ceiling beyond the stake itself.
    All,
    /// At most this much (stake-token units as text, e.g. "500").
    Amount(String),
}

impl std::str::FromStr for Ceiling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(Self::All),
            "" => Err("a ceiling is `all` or an amount of the stake token, e.g. 500".into()),
            a => Ok(Self::Amount(a.to_owned())),
        }
    }
}

/// The chain, the deployment and the staking contract `c` names, with `signer` (if any).
struct Ctx {
    client: Client,
    d: Deployments,
    staking: Address,
}

impl Ctx {
    async fn new(c: &Config, signer: Option<PrivateKeySigner>) -> Result<Self> {
        let client = Client::connect_with_fallback(&c.rpc, c.fallback_rpc.as_deref(), signer)
            .await
            .with_context(|| format!("chain.rpc {}", c.rpc))?;
        let d = Deployments::load(&c.deployments, client.chain_id)?;
        let staking = d.address("Staking")?;
        Ok(Self { client, d, staking })
    }

    fn staking(
        &self,
    ) -> gridlease_bindings::Staking::StakingInstance<&alloy::providers::DynProvider> {
        Staking::new(self.staking, &self.client.provider)
    }

    /// The provider record of `owner`.
    async fn provider_info(
        &self,
        owner: Address,
    ) -> Result<gridlease_bindings::IStaking::ProviderView> {
        Ok(self
            .staking()
            .providerInfo(owner)
            .call()
            .await
            .map_err(classify)?)
    }

    /// The stake token and its decimals and symbol.
    async fn stake_token(&self) -> Result<(Address, u8, String)> {
        let token = self.staking().stakeToken().call().await.map_err(classify)?;
        if let Ok(t) = self.d.token(&token.to_string()) {
            return Ok((token, t.decimals, t.symbol));
        }
        let erc20 = MockStablecoin::new(token, &self.client.provider);
        let decimals = erc20.decimals().call().await.map_err(classify)?;
        let symbol = erc20
            .symbol()
            .call()
            .await
            .unwrap_or_else(|_| "units".into());
        Ok((token, decimals, symbol))
    }
}

/// What the owner's stake commands start from: the chain with the owner's wallet, the stake
/// token's decimals and symbol, and the owner's provider record.
struct OwnerCtx {
    x: Ctx,
    decimals: u8,
    symbol: String,
    info: gridlease_bindings::IStaking::ProviderView,
}

impl OwnerCtx {
    async fn open(c: &Config, owner: &PrivateKeySigner) -> Result<Self> {
        check_owner(c, owner)?;
        let x = Ctx::new(c, Some(owner.clone())).await?;
        let (_, decimals, symbol) = x.stake_token().await?;
        let info = x.provider_info(owner.address()).await?;
        Ok(Self {
            x,
            decimals,
            symbol,
            info,
        })
    }

    /// `v` stake-token units with the symbol.
    fn fmt(&self, v: u128) -> String {
        format!("{} {}", format_amount(v, self.decimals), self.symbol)
    }
}

/// The owner's wallet must be the provider `provider.toml` names (`wallet.owner`).
fn check_owner(c: &Config, owner: &PrivateKeySigner) -> Result<()> {
    if owner.address() != c.owner {
        bail!(
            "the wallet given is {}, but wallet.owner in the config is {}: use the owner's wallet, or set wallet.owner to the account that stakes",
            owner.address(),
            c.owner
        );
    }
    Ok(())
}

/// `consent`: the node's operator key (from `c`) signs its consent to serve `c.owner`, valid for
/// `valid_for` seconds of chain time.
pub async fn consent(c: &Config, valid_for: u64) -> Result<ConsentFile> {
    let operator = c
        .operator
        .load()
        .context("wallet: the operator key cannot be loaded (consent is signed on the node's machine, with its key)")?;
    let x = Ctx::new(c, None).await?;
    let inv = crate::gpu::discover(&c.capacity);
    sign_consent(&x, c.owner, &operator, valid_for, capacity(&inv)).await
}

async fn sign_consent(
    x: &Ctx,
    provider: Address,
    operator: &PrivateKeySigner,
    valid_for: u64,
    cap: Capacity,
) -> Result<ConsentFile> {
    let st = x.staking();
    let serves = st
        .providerOf(operator.address())
        .call()
        .await
        .map_err(classify)?;
    if serves != Address::ZERO && serves != provider {
        bail!(
            "the operator key {} already serves provider {serves}: its owner must bind another key first, or give this node a new key",
            operator.address()
        );
    }
    let nonce = st
        .operatorNonce(operator.address())
        .call()
        .await
        .map_err(classify)?;
    let deadline = x.client.now().await? + valid_for;
    let sig = OperatorConsent::new(provider, operator.address(), nonce, deadline)
        .sign(&staking_domain(x.client.chain_id, x.staking), operator)?;
    Ok(ConsentFile {
        chain_id: x.client.chain_id,
        staking: x.staking,
        provider,
        operator: operator.address(),
        nonce,
        deadline,
        signature: Bytes::from(sig.as_bytes().to_vec()),
        capacity: CapacityJson {
            gpu_classes: cap.gpuClasses,
            gpu_count: cap.gpuCount,
            vram_gib: cap.vramGiB,
        },
    })
}

/// What `register` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// Registered (false: an existing registration was updated).
    pub new: bool,
    /// The operator bound.
    pub operator: Address,
    /// The capacity declared.
    pub capacity: Capacity,
    /// The collateral ceiling, as text.
    pub ceiling: String,
    /// The metadata URI.
    pub metadata: String,
}

/// `register`: the owner (`owner`) binds the node's operator with `consent` (or one signed here
/// with the node's key), the capacity, `metadata` (default: the node's public URL) and `ceiling`.
pub async fn register(
    c: &Config,
    owner: PrivateKeySigner,
    consent: Option<ConsentFile>,
    ceiling: &Ceiling,
    metadata: Option<String>,
) -> Result<Registered> {
    let o = OwnerCtx::open(c, &owner).await?;
    let x = &o.x;
    let consent = match consent {
        Some(f) => f,
        None => {
            let operator = c.operator.load().context(
                "wallet: the node's operator key cannot be loaded here; on the node's machine run `gridlease-provider consent > consent.json` and give it with --consent consent.json",
            )?;
            let inv = crate::gpu::discover(&c.capacity);
            sign_consent(x, owner.address(), &operator, 600, capacity(&inv)).await?
        }
    };
    if consent.chain_id != x.client.chain_id || consent.staking != x.staking {
        bail!(
            "the consent is for Staking {} on chain {}, this config's chain is {} with Staking {}: sign it with the node's config for this chain",
            consent.staking,
            consent.chain_id,
            x.client.chain_id,
            x.staking
        );
    }
    if consent.provider != owner.address() {
        bail!(
            "the consent lets {} use the operator key, not this wallet {}: set wallet.owner on the node to {} and sign it again",
            consent.provider,
            owner.address(),
            owner.address()
        );
    }
    let st = x.staking();
    let now = x.client.now().await?;
    if consent.deadline < now {
        bail!(
            "the consent expired {} ago: sign a new one with `gridlease-provider consent` on the node",
            format_duration(now - consent.deadline)
        );
    }
    let nonce = st
        .operatorNonce(consent.operator)
        .call()
        .await
        .map_err(classify)?;
    if nonce != consent.nonce {
        bail!(
            "the consent was signed for nonce {} of the operator, which is at {nonce} now (used or superseded): sign a new one with `gridlease-provider consent` on the node",
            consent.nonce
        );
    }
    let (ceiling_units, ceiling_text) = match ceiling {
        Ceiling::All => (U96::MAX, "all of the stake".to_owned()),
        Ceiling::Amount(a) => {
            let v =
                parse_amount(a, o.decimals).map_err(|e| anyhow::anyhow!("--ceiling {a}: {e}"))?;
            let v = U96::try_from(v).map_err(|_| anyhow::anyhow!("--ceiling {a}: too large"))?;
            (v, o.fmt(v.to()))
        }
    };
    let metadata = metadata.unwrap_or_else(|| c.public_url.clone());
    let cap = Capacity {
        gpuClasses: consent.capacity.gpu_classes,
        gpuCount: consent.capacity.gpu_count,
        vramGiB: consent.capacity.vram_gib,
    };
    let new = o.info.operator == Address::ZERO;
    let args = (
        consent.operator,
        cap.clone(),
        metadata.clone(),
        ceiling_units,
        U256::from(consent.deadline),
        consent.signature.clone(),
    );
    let sent = if new {
        send(st.register(args.0, args.1, args.2, args.3, args.4, args.5)).await
    } else {
        send(st.updateProvider(args.0, args.1, args.2, args.3, args.4, args.5)).await
    };
    sent.map_err(|e| explain(e, consent.operator))?;
    Ok(Registered {
        new,
        operator: consent.operator,
        capacity: cap,
        ceiling: ceiling_text,
        metadata,
    })
}

/// A revert of an owner command, with what to do about it.
fn explain(e: ChainError, operator: Address) -> anyhow::Error {
    use gridlease_bindings::Staking::StakingErrors as S;
    let ChainError::Revert(r) = &e else {
        return anyhow::Error::from(e);
    };
    let hint = match &r.error {
        ContractError::Staking(S::OperatorUnavailable(_)) => format!(
            "the operator key {operator} already serves a provider (or is zero): its owner must bind another key first, or give this node a new key"
        ),
        ContractError::Staking(S::BadOperatorConsent(_)) => "the consent does not verify (signed for another owner, chain or nonce, or expired): sign a new one with `gridlease-provider consent` on the node".into(),
        ContractError::Staking(S::ProviderNotRegistered(_)) => "the owner is not registered: run `gridlease-provider register` first".into(),
        ContractError::Staking(S::ProviderAlreadyRegistered(_)) => "already registered".into(),
        ContractError::Staking(S::InsufficientFreeStake(_)) => "that much stake is locked by leases (or unbonding already): unbond less, or wait for the leases to end".into(),
        ContractError::Staking(S::UnbondingNotReleased(_)) => "the unbonding period has not passed: run `withdraw-stake` again after the release time".into(),
        ContractError::Staking(S::NothingToWithdraw(_)) => "nothing is unbonding: `gridlease-provider unbond AMOUNT` first".into(),
        _ => return anyhow::Error::from(e),
    };
    anyhow::anyhow!("{e}: {hint}")
}

/// `stake`: the owner approves (when needed) and stakes `amount` of the stake token. Returns the
/// new stake, as text.
pub async fn stake(c: &Config, owner: PrivateKeySigner, amount: &str) -> Result<String> {
    let o = OwnerCtx::open(c, &owner).await?;
    let units =
        parse_amount(amount, o.decimals).map_err(|e| anyhow::anyhow!("amount {amount}: {e}"))?;
    if units == 0 {
        bail!("stake a positive amount");
    }
    if o.info.operator == Address::ZERO {
        bail!(
            "{} is not registered: run `gridlease-provider register` first (stake can only be added to a registered provider)",
            owner.address()
        );
    }
    let (token, ..) = o.x.stake_token().await?;
    let erc20 = MockStablecoin::new(token, &o.x.client.provider);
    let balance = erc20
        .balanceOf(owner.address())
        .call()
        .await
        .map_err(classify)?;
    let amount_u = U256::from(units);
    if balance < amount_u {
        bail!(
            "the owner {} holds {}, less than {}: fund it first",
            owner.address(),
            o.fmt(balance.saturating_to()),
            o.fmt(units)
        );
    }
    let allowance = erc20
        .allowance(owner.address(), o.x.staking)
        .call()
        .await
        .map_err(classify)?;
    if allowance < amount_u {
        approve_exactly(
            &o.x.client.provider,
            token,
            o.x.staking,
            allowance,
            amount_u,
        )
        .await?;
    }
    send(o.x.staking().stake(amount_u))
        .await
        .map_err(|e| explain(e, o.info.operator))?;
    let after = o.x.provider_info(owner.address()).await?;
    Ok(format!(
        "{} ({} locked in leases)",
        o.fmt(after.stake.to()),
        o.fmt(after.locked.to())
    ))
}

/// `unbond`: the owner moves `amount` (or `all`) of its free stake to the unbonding queue.
/// Returns what is unbonding and when it is released.
pub async fn unbond(c: &Config, owner: PrivateKeySigner, amount: &str) -> Result<String> {
    let o = OwnerCtx::open(c, &owner).await?;
    let info = &o.info;
    if info.operator == Address::ZERO {
        bail!("{} is not registered: nothing to unbond", owner.address());
    }
    let free = info.stake.to::<u128>().saturating_sub(info.locked.to());
    let units = if amount.trim() == "all" {
        free
    } else {
        parse_amount(amount, o.decimals).map_err(|e| anyhow::anyhow!("amount {amount}: {e}"))?
    };
    if units == 0 {
        bail!(
            "nothing to unbond: the stake is {}, of which {} is locked by leases (and closed leases the market holds for their fault horizon)",
            o.fmt(info.stake.to()),
            o.fmt(info.locked.to())
        );
    }
    if units > free {
        bail!(
            "only {} of the stake is free: {} is locked by running leases and by closed ones the market holds for their fault horizon (PD-06); unbond at most that, or wait for the leases to end",
            o.fmt(free),
            o.fmt(info.locked.to())
        );
    }
    send(o.x.staking().unbond(U256::from(units)))
        .await
        .map_err(|e| explain(e, info.operator))?;
    let after = o.x.provider_info(owner.address()).await?;
    let now = o.x.client.now().await?;
    let at = after.releaseAt.to::<u64>();
    Ok(format!(
        "{} unbonding, released at chain time {at} (in {}): then run `gridlease-provider withdraw-stake`",
        o.fmt(after.unbonding.to()),
        format_duration(at.saturating_sub(now))
    ))
}

/// `withdraw-stake`: the owner withdraws its released unbonded stake to `to` (default: itself).
pub async fn withdraw_stake(
    c: &Config,
    owner: PrivateKeySigner,
    to: Option<Address>,
) -> Result<String> {
    let o = OwnerCtx::open(c, &owner).await?;
    let unbonding = o.info.unbonding.to::<u128>();
    if unbonding == 0 {
        bail!(
            "nothing is unbonding: move free stake out with `gridlease-provider unbond AMOUNT` first, then withdraw it after the unbonding period"
        );
    }
    let now = o.x.client.now().await?;
    let at = o.info.releaseAt.to::<u64>();
    if now < at {
        bail!(
            "{} is unbonding until chain time {at} (in {}): run `gridlease-provider withdraw-stake` again then",
            o.fmt(unbonding),
            format_duration(at - now)
        );
    }
    let to = to.unwrap_or(owner.address());
    send(o.x.staking().withdrawUnbonded(to))
        .await
        .map_err(|e| explain(e, o.info.operator))?;
    Ok(format!("{} withdrawn to {to}", o.fmt(unbonding)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceiling_is_all_or_an_amount() {
        assert_eq!("all".parse::<Ceiling>(), Ok(Ceiling::All));
        assert_eq!("500".parse::<Ceiling>(), Ok(Ceiling::Amount("500".into())));
        assert!("".parse::<Ceiling>().is_err());
    }

    #[test]
    fn a_consent_file_round_trips_and_refuses_unknown_fields() {
        let f = ConsentFile {
            chain_id: 31337,
            staking: Address::repeat_byte(1),
            provider: Address::repeat_byte(2),
            operator: Address::repeat_byte(3),
            nonce: U256::from(4),
            deadline: 5,
            signature: Bytes::from(vec![6; 65]),
            capacity: CapacityJson {
                gpu_classes: 1,
                gpu_count: 2,
                vram_gib: 80,
            },
        };
        let text = serde_json::to_string_pretty(&f).expect("json");
        assert_eq!(serde_json::from_str::<ConsentFile>(&text).expect("back"), f);
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("value");
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<ConsentFile>(v).is_err());
    }
}
