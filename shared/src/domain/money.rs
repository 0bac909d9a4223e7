//! Money and other exact quantities: `rust_decimal`, never f64 arithmetic. On the wire they are
//! JSON numbers; amounts round to cents, half away from zero.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::{Number, Value};

/// How many integer and fraction digits a client's number may have (money: 15 and 6,
/// quantities: 12 and 6), so that every computed amount stays within
/// +/-999,999,999,999,999.99 and no sum can overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub integer_digits: u32,
    pub fraction_digits: u32,
}

/// Money inputs: at most 15 integer and 6 fraction digits.
pub const MONEY: Bounds = Bounds { integer_digits: 15, fraction_digits: 6 };
/// Quantities: at most 12 integer and 6 fraction digits.
pub const QUANTITY: Bounds = Bounds { integer_digits: 12, fraction_digits: 6 };

/// Every computed amount lies within +/- this, so that no sum of a bill's lines can overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_569_325_055, 23_283_064, 0, false, 2); // 999,999,999,999,999.99

impl Bounds {
    /// Whether `value` has no more digits than allowed (trailing fraction zeros do not count).
    pub fn admit(self, value: Decimal) -> bool {
        let limit = Decimal::from_i128_with_scale(10_i128.pow(self.integer_digits), 0);
        value.abs() < limit && value.normalize().scale() <= self.fraction_digits
    }

    /// What a field within these bounds must be, for a 400's detail.
    pub fn describe(self) -> String {
        format!("a number with at most {} integer and {} fraction digits", self.integer_digits, self.fraction_digits)
    }
}

/// `value` to cents, half away from zero (2.345 -> 2.35, -2.345 -> -2.35).
pub fn cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A computed amount, if it lies within [`MAX_AMOUNT`].
pub fn amount(value: Option<Decimal>) -> Option<Decimal> {
    value.filter(|v| v.abs() <= MAX_AMOUNT)
}

/// A JSON number as an exact decimal. serde_json keeps each number's text as sent
/// (`arbitrary_precision`), so `999999999999.123456` is parsed from exactly those digits and never
/// through an f64; a number a decimal cannot hold exactly is `None`.
pub fn from_number(number: &Number) -> Option<Decimal> {
    let text = number.to_string();
    if text.contains(['e', 'E']) {
        // Scientific notation: refuse absurd exponents before building anything.
        let exponent = text.rsplit(['e', 'E']).next()?.parse::<i64>().ok()?;
        if exponent.abs() > 40 {
            return None;
        }
        return Decimal::from_scientific(&text).ok();
    }
    Decimal::from_str_exact(&text).ok()
}

pub fn from_value(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => from_number(n),
        _ => None,
    }
}

/// A client's number within `bounds`, or `None`.
pub fn bounded(value: &Value, bounds: Bounds) -> Option<Decimal> {
    from_value(value).filter(|d| bounds.admit(*d))
}

/// A decimal as a JSON number, written with exactly its digits.
pub fn to_value(value: Decimal) -> Value {
    let text = value.normalize().to_string();
    serde_json::from_str::<Number>(&text).map(Value::Number).unwrap_or(Value::Null)
}

/// `#[serde(with = "number")]` for `Decimal` fields.
pub mod number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&to_value(*value), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let number = Number::deserialize(deserializer)?;
        from_number(&number).ok_or_else(|| serde::de::Error::custom(format!("{number} is not a decimal")))
    }
}

/// `#[serde(with = "option_number")]` for `Option<Decimal>` fields.
pub mod option_number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Decimal>, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&value.map(to_value), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
        match Option::<Number>::deserialize(deserializer)? {
            None => Ok(None),
            Some(number) => from_number(&number)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a decimal"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn cents_round_half_away_from_zero() {
        for (value, want) in
            [("2.345", "2.35"), ("-2.345", "-2.35"), ("2.344", "2.34"), ("0.005", "0.01"), ("10", "10")]
        {
            assert_eq!(cents(d(value)), d(want), "{value}");
        }
    }

    #[test]
    fn json_numbers_convert_exactly() {
        assert_eq!(from_value(&json!(0.1)), Some(d("0.1")));
        assert_eq!(from_value(&json!(19.99)), Some(d("19.99")));
        assert_eq!(from_value(&json!(1e-7)), Some(d("0.0000001")));
        assert_eq!(from_value(&json!("1.5")), None);
        assert_eq!(to_value(d("0.10")), json!(0.1));
        assert_eq!(to_value(d("1234567.89")), json!(1234567.89));
        assert_eq!(to_value(d("-3")), json!(-3));
        // 0.1 + 0.2 is exactly 0.3 in decimal arithmetic.
        assert_eq!(to_value(d("0.1") + d("0.2")), json!(0.3));
    }

    fn number(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn given_high_precision_numbers_then_no_digit_is_lost() {
        for text in ["999999999999.123456", "1234567890123456.78", "2469135780246913.56", "-0.000001"] {
            assert_eq!(from_value(&number(text)), Some(d(text)), "{text}");
            assert_eq!(to_value(d(text)).to_string(), text);
        }
        assert_eq!(MAX_AMOUNT, d("999999999999999.99"));
    }

    #[test]
    fn given_numbers_outside_the_bounds_then_they_are_refused() {
        for (text, bounds, ok) in [
            ("999999999999999.999999", MONEY, true),
            ("1000000000000000", MONEY, false),
            ("0.0000001", MONEY, false),
            ("1.5000000000", MONEY, true),
            ("999999999999.999999", QUANTITY, true),
            ("1000000000000", QUANTITY, false),
            ("1e20", MONEY, false),
            ("5e28", MONEY, false),
            ("1e400", MONEY, false),
            ("-1e-400", MONEY, false),
            ("1e15", MONEY, false),
            ("1e14", MONEY, true),
        ] {
            assert_eq!(bounded(&number(text), bounds).is_some(), ok, "{text}");
        }
        assert_eq!(amount(Some(d("999999999999999.99"))), Some(d("999999999999999.99")));
        assert_eq!(amount(Some(d("-1000000000000000"))), None);
    }
}
