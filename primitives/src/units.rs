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

/// Token units that cover `seconds` at `rate` in full (rounded up): an escrow of this much never
/// runs dry before `seconds` have passed, which [`owed`]'s rounding down could (by a fraction of
/// a unit, so a service lease at its maximum price would close as exhausted, not expired).
pub fn covering(rate: u128, seconds: u64, decimals: u8) -> Option<u128> {
    rate.checked_mul(u128::from(seconds))?
        .checked_next_multiple_of(rate_scale(decimals)?)?
        .checked_div(rate_scale(decimals)?)
}

/// The per-second rate for a price per hour given in token units (`per_hour * 10^(18-dec) / 3600`).
pub fn rate_from_hourly(per_hour_units: u128, decimals: u8) -> Option<u128> {
    per_hour_units
        .checked_mul(rate_scale(decimals)?)
        .map(|v| v / 3600)
}

/// Like [`rate_from_hourly`] but rounded up, so a maximum price per hour is never undercut by
/// rounding (`2.00/h` stays `2.00/h` when shown again).
pub fn rate_from_hourly_ceil(per_hour_units: u128, decimals: u8) -> Option<u128> {
    per_hour_units
        .checked_mul(rate_scale(decimals)?)
        .map(|v| v.div_ceil(3600))
}

/// Why a decimal amount or a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a plain decimal number.
    #[error("\"{0}\" is not a decimal amount like \"2.50\"")]
    NotDecimal(String),
    /// More fractional digits than the token has.
    #[error("\"{value}\" has {digits} decimal places; the token has {decimals}")]
    TooPrecise {
        /// The input.
        value: String,
        /// Its fractional digits.
        digits: usize,
        /// The token's decimals.
        decimals: u8,
    },
    /// Does not fit in the on-chain field.
    #[error("\"{0}\" is too large")]
    TooLarge(String),
    /// Not a duration.
    #[error("\"{0}\" is not a duration like \"90s\", \"30m\", \"2h\" or \"1d\"")]
    NotDuration(String),
}

/// Parse a decimal amount of a token with `decimals` into its smallest units: `"2.5"` with 6
/// decimals is 2,500,000. Refuses signs, exponents, and more fractional digits than the token has
/// (never rounds money silently).
pub fn parse_amount(s: &str, decimals: u8) -> Result<u128, UnitError> {
    let t = s.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(UnitError::NotDecimal(s.to_owned()));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > usize::from(decimals) {
        return Err(UnitError::TooPrecise {
            value: s.to_owned(),
            digits: frac.len(),
            decimals,
        });
    }
    let too_large = || UnitError::TooLarge(s.to_owned());
    let one = 10u128
        .checked_pow(u32::from(decimals))
        .ok_or_else(too_large)?;
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let frac_units: u128 = if frac.is_empty() {
        0
    } else {
        let pad = 10u128.pow(u32::from(decimals) - frac.len() as u32);
        frac.parse::<u128>().map_err(|_| too_large())? * pad
    };
    int.checked_mul(one)
        .and_then(|v| v.checked_add(frac_units))
        .ok_or_else(too_large)
}

/// Format `units` of a token with `decimals` as a decimal string without trailing zeros
/// (`2500000`, 6 -> `"2.5"`).
pub fn format_amount(units: u128, decimals: u8) -> String {
    let one = 10u128.pow(u32::from(decimals));
    let (int, frac) = (units / one, units % one);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = usize::from(decimals));
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// Parse a duration: plain seconds (`"90"`) or a number with one unit `s`, `m`, `h`, `d`.
pub fn parse_duration(s: &str) -> Result<u64, UnitError> {
    let t = s.trim();
    let bad = || UnitError::NotDuration(s.to_owned());
    let (num, mult) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1),
        Some((i, 'm')) => (&t[..i], 60),
        Some((i, 'h')) => (&t[..i], 3_600),
        Some((i, 'd')) => (&t[..i], 86_400),
        Some(_) => (t, 1),
        None => return Err(bad()),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    n.checked_mul(mult).ok_or_else(bad)
}

/// Format seconds for people: `3600` -> `"1h"`, `5400` -> `"1h30m"`, `59` -> `"59s"`.
pub fn format_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = secs;
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

/// The hourly price, in token units, of an 18-decimal per-second `rate`.
pub fn hourly_from_rate(rate: u128, decimals: u8) -> Option<u128> {
    rate.checked_mul(3_600)?.checked_div(rate_scale(decimals)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly_or_not_at_all() {
        assert_eq!(parse_amount("2.5", 6), Ok(2_500_000));
        assert_eq!(parse_amount("0.000001", 6), Ok(1));
        assert_eq!(parse_amount("10", 6), Ok(10_000_000));
        assert_eq!(parse_amount(".5", 6), Ok(500_000));
        assert_eq!(parse_amount("1.2300", 2), Ok(123));
        assert!(matches!(
            parse_amount("0.0000001", 6),
            Err(UnitError::TooPrecise { digits: 7, .. })
        ));
        for bad in ["", ".", "-1", "1e6", "1,5", "abc", "1.2.3", " "] {
            assert!(
                matches!(parse_amount(bad, 6), Err(UnitError::NotDecimal(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_amount("1000000000000000000000000", 18),
            Err(UnitError::TooLarge(_))
        ));
        assert_eq!(format_amount(2_500_000, 6), "2.5");
        assert_eq!(format_amount(7, 6), "0.000007");
        assert_eq!(format_amount(3_000_000, 6), "3");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("2h"), Ok(7_200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        for bad in ["", "h", "1.5h", "-1m", "1w", "1 hour"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(5_400), "1h30m");
        assert_eq!(format_duration(59), "59s");
    }

    #[test]
    fn usdc_two_dollars_an_hour() {
        let rate = rate_from_hourly(2_000_000, 6).expect("fits");
        assert_eq!(rate, 555_555_555_555_555);
        assert_eq!(owed(rate, 3600, 6), Some(1_999_999));
        // The default deposit of examples/matmul.toml: 2.00/h for 10 minutes.
        let ceil = rate_from_hourly_ceil(2_000_000, 6).expect("rate");
        assert_eq!(owed(ceil, 600, 6), Some(333_333));
        assert_eq!(covering(ceil, 600, 6), Some(333_334));
        assert_eq!(
            covering(rate_from_hourly(3_600_000, 6).expect("rate"), 600, 6),
            Some(600_000)
        );
        assert_eq!(rate_scale(19), None);
        let ceil = rate_from_hourly_ceil(2_000_000, 6).expect("fits");
        assert_eq!(ceil, 555_555_555_555_556);
        assert_eq!(hourly_from_rate(ceil, 6), Some(2_000_000));
    }
}
