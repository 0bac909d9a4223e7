//! Money and other exact quantities: `rust_decimal`, never f64 arithmetic. On the wire they are
//! JSON numbers; amounts round to cents, half away from zero.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serializer};
use serde_json::{Number, Value};

/// `value` to cents, half away from zero (2.345 -> 2.35, -2.345 -> -2.35).
pub fn cents(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// A JSON number as an exact decimal (its shortest text, not an f64 round trip).
pub fn from_number(number: &Number) -> Option<Decimal> {
    let text = number.to_string();
    text.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(&text).ok())
}

pub fn from_value(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => from_number(n),
        _ => None,
    }
}

/// A decimal as a JSON number. Amounts are cents and quantities a few places, well inside what a
/// JSON number (an IEEE double in most clients) carries exactly as its shortest text.
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
}
