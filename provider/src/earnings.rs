//! The owner's earnings the market holds (PD-05, PD-08): shown, and warned about, never moved.

use gridlease_chain::{ChainError, classify};
use tracing::warn;

use crate::shared::Shared;

/// PD-05: the owner's earnings the market holds, per token, as a gauge, and a warning whenever
/// they change while above `earnings.withdraw_above`. Only the owner key can withdraw them
/// (PD-08): this node holds the operator key, so it tells and never moves stake or earnings.
pub(crate) async fn earnings(s: &Shared) -> Result<(), ChainError> {
    let m = s.lens();
    for (token, decimals) in &s.tokens {
        let credit = m
            .creditOf(*token, s.cfg.owner)
            .call()
            .await
            .map_err(classify)?
            .saturating_to::<u128>();
        let above = gridlease_primitives::units::parse_amount(&s.cfg.withdraw_above, *decimals)
            .unwrap_or(u128::MAX);
        // The gauge saturates at u64 (18.4 units of an 18-decimal token); the check does not.
        let shown = u64::try_from(credit).unwrap_or(u64::MAX);
        let prev = s.metrics.withdrawable(&token.to_string(), shown);
        if credit > above && prev != Some(shown) {
            warn!(
                token = %token, owner = %s.cfg.owner, withdrawable = credit,
                "earnings above earnings.withdraw_above: withdraw them with the owner's wallet (`gridlease withdraw --keystore OWNER.json`); the operator key cannot"
            );
        }
    }
    Ok(())
}
