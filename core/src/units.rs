//! Price and amount units.
//!
//! On chain, prices are 18-decimal token units per second whatever the token's decimals, and
//! amounts are in the token's own smallest unit.

/// 10^(18 - decimals): the divisor from rate x seconds to token units. `None` above 18 decimals
/// (such tokens are refused by the market).
pub fn rate_scale(decimals: u8) -> Option<u128> {
    (decimals <= 18).then(|| 10u128.pow(u32::from(18 - decimals)))
}

/// Token units owed for `seconds` at `rate` (rounded down, like the contract), before capping by
/// the escrow.
pub fn owed(rate: u128, seconds: u64, decimals: u8) -> Option<u128> {
    rate.checked_mul(u128::from(seconds))?
        .checked_div(rate_scale(decimals)?)
}

/// The per-second rate for a price per hour given in token units (`per_hour * 10^(18-dec) / 3600`).
pub fn rate_from_hourly(per_hour_units: u128, decimals: u8) -> Option<u128> {
    per_hour_units
        .checked_mul(rate_scale(decimals)?)
        .map(|v| v / 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usdc_two_dollars_an_hour() {
        let rate = rate_from_hourly(2_000_000, 6).expect("fits");
        assert_eq!(rate, 555_555_555_555_555);
        assert_eq!(owed(rate, 3600, 6), Some(1_999_999));
        assert_eq!(rate_scale(19), None);
    }
}
