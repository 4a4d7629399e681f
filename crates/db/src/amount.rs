//! Solana amounts are `u64`. PostgreSQL's BIGINT is an `i64` and cannot hold the upper half of
//! that range, so every amount column is `NUMERIC(20,0)` with a CHECK for `0..=u64::MAX`;
//! `Decimal` is the Rust side of such a column.

use rust_decimal::Decimal;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0} is not a u64 amount")]
pub struct NotAnAmount(pub Decimal);

/// A `u64` as bound to a `NUMERIC(20,0)` parameter. Exact: `Decimal` has 96 bits of mantissa.
pub fn to_db(amount: u64) -> Decimal {
    Decimal::from(amount)
}

/// A `NUMERIC(20,0)` value read back. Fails on fractions, negatives and values above `u64::MAX`,
/// which the columns' CHECKs rule out but a view's arithmetic might not.
pub fn from_db(value: Decimal) -> Result<u64, NotAnAmount> {
    if !value.fract().is_zero() {
        return Err(NotAnAmount(value));
    }
    u64::try_from(value).map_err(|_| NotAnAmount(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_whole_u64_range() {
        for v in [0, 1, u64::from(u32::MAX), i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
            assert_eq!(from_db(to_db(v)), Ok(v));
        }
    }

    #[test]
    fn refuses_what_is_not_a_u64() {
        assert!(from_db(Decimal::from(-1)).is_err());
        assert!(from_db(Decimal::from(u64::MAX) + Decimal::ONE).is_err());
        assert!(from_db(Decimal::new(15, 1)).is_err());
    }
}
