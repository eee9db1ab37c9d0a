// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title LeaseMath
/// @notice Pure accrual and fee arithmetic of a lease, kept apart so it can be proven on its own.
/// @dev Rates are 18-decimal token units per second; amounts are in the token's own units.
library LeaseMath {
    /// @notice Basis points in one whole.
    uint256 internal constant BPS = 10_000;

    /// @notice Tokens at least this coarse (`scale`; at most 4 decimals, a unit worth 10^14 of a
    /// rate's 18-decimal units or more) carry what a settlement could not pay in whole units to the
    /// next one (TOK-08). A finer token's settlement rounds away less than 10^-6 of a token, less
    /// than the gas of causing it.
    uint256 internal constant CARRY_SCALE = 1e14;

    /// @notice Amount owed for `elapsed` seconds at `rate`, rounded down (against the payee), and
    /// capped by `escrow`. `scale` is 10^(18 - token decimals).
    /// @dev rate < 2^96 and elapsed < 2^48, so the product fits in 144 bits: no overflow for any
    /// input (ESC-06). Each settlement rounds down by less than one token unit; the remainder stays
    /// with the tenant, so k settlements pay at most k - 1 units less than one (ESC-05); tokens of
    /// [`CARRY_SCALE`] carry it instead ([`owedCarrying`]).
    function owed(uint256 rate, uint256 elapsed, uint256 scale, uint256 escrow) internal pure returns (uint256 amount) {
        // Safe: the product is under 2^144 (above); a division by zero still reverts.
        unchecked {
            amount = rate * elapsed / scale;
        }
        if (amount > escrow) amount = escrow;
    }

    /// @notice [`owed`] with `carry`, what earlier settlements could not pay in whole units (in
    /// 18-decimal units, below `scale`), added; and what is carried on (nothing once the escrow
    /// caps the amount). Over any number of settlements the payee loses less than one unit in all.
    function owedCarrying(uint256 rate, uint256 elapsed, uint256 carry, uint256 scale, uint256 escrow)
        internal
        pure
        returns (uint256 amount, uint256 rest)
    {
        // Safe: rate * elapsed < 2^144 and carry < scale <= 10^18, so value < 2^145.
        unchecked {
            uint256 value = rate * elapsed + carry;
            amount = value / scale;
            if (amount >= escrow) return (escrow, 0);
            rest = value % scale;
        }
    }

    /// @notice Split a settled `amount` into protocol fee, keeper fee and provider share. Fees
    /// round down; the three parts always add up to `amount`.
    function split(uint256 amount, uint256 protocolFeeBps, uint256 keeperFeeBps)
        internal
        pure
        returns (uint256 protocolFee, uint256 keeperFee, uint256 toProvider)
    {
        protocolFee = amount * protocolFeeBps / BPS;
        keeperFee = amount * keeperFeeBps / BPS;
        // Safe: protocolFeeBps + keeperFeeBps <= BPS is enforced by the market's parameter bounds,
        // so the fees never exceed the amount.
        unchecked {
            toProvider = amount - protocolFee - keeperFee;
        }
    }

    /// @notice Timestamp at which `escrow` runs out at `rate` from `from`, saturating at 2^48 - 1.
    function depletesAt(uint256 from, uint256 escrow, uint256 rate, uint256 scale) internal pure returns (uint48) {
        if (rate == 0) return type(uint48).max;
        uint256 t = from + escrow * scale / rate;
        return t > type(uint48).max ? type(uint48).max : uint48(t);
    }
}
