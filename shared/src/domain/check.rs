//! The one body validator of the domain: [`Check`] collects every problem of a JSON body, each
//! named by JSON Pointer, and [`Obj`] is one object of it. Every family's create and patch parser
//! reads its body with it (bills, bill runs, billing runs, customer bills, API keys); the rules
//! across fields follow in each family's module.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::{dates, DomainError, FieldError};

/// Longest id-like string in an array ([`Check::strings`]).
pub(crate) const MAX_ID: usize = 100;
/// Most entries of an array of strings.
pub(crate) const MAX_STRINGS: usize = 100;

impl Check {
    pub(crate) fn new() -> Self {
        Self { errors: Vec::new() }
    }
}

/// Collects every problem of a body, each named by JSON Pointer.
pub(crate) struct Check {
    pub(crate) errors: Vec<FieldError>,
}

/// What a member must be, for its problem's detail: a text, or `(n, text)` for a member that
/// rule `n` of its family governs.
pub(crate) struct Expected<'e> {
    rule: Option<u8>,
    text: &'e str,
}

impl<'e> From<&'e str> for Expected<'e> {
    fn from(text: &'e str) -> Self {
        Self { rule: None, text }
    }
}

impl<'e> From<&'e String> for Expected<'e> {
    fn from(text: &'e String) -> Self {
        Self { rule: None, text }
    }
}

impl<'e> From<(u8, &'e str)> for Expected<'e> {
    fn from((rule, text): (u8, &'e str)) -> Self {
        Self { rule: Some(rule), text }
    }
}

/// One object of the body, at `at`.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) at: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn pointer(&self, name: &str) -> String {
        format!("{}/{}", self.at, escape(name))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }
}

impl Check {
    pub(crate) fn fail(&mut self, pointer: String, detail: impl Into<String>) {
        self.errors.push(FieldError::new(pointer, detail));
    }

    pub(crate) fn object<'a>(
        &mut self,
        value: &'a Value,
        at: String,
        allowed: &[&str],
        ignored: &[&str],
    ) -> Option<Obj<'a>> {
        let Value::Object(map) = value else {
            self.fail(at, "must be an object");
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) && !ignored.contains(&key.as_str()) {
                self.fail(format!("{at}/{}", escape(key)), "read-only or unknown field");
            }
        }
        Some(Obj { map, at })
    }

    /// The body as the object at the root whose members are all `allowed`; else the refusal
    /// (every unknown member named) before any member is read.
    pub(crate) fn root<'a>(&mut self, body: &'a Value, allowed: &[&str]) -> Result<Obj<'a>, DomainError> {
        let obj = self.object(body, String::new(), allowed, &[]);
        self.stop()?;
        obj.ok_or_else(|| DomainError::field("", "must be an object"))
    }

    /// The problems so far as one refusal (and the check emptied), or `Ok(())` if there are none.
    pub(crate) fn stop(&mut self) -> Result<(), DomainError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::fields(std::mem::take(&mut self.errors)))
        }
    }

    pub(crate) fn required<'a>(&mut self, obj: &Obj<'a>, name: &str) -> Option<&'a Value> {
        let value = obj.get(name);
        if value.is_none() {
            self.fail(obj.pointer(name), "is required");
        }
        value
    }

    /// Member `name` as `parse` reads it. Absent or null is `None` (a problem if `required`); a
    /// value `parse` refuses is the problem "must be `expected`" (after "rule n:" for a member a
    /// numbered rule governs, as bills' are).
    pub(crate) fn value<'a, 'e, T>(
        &mut self,
        obj: &Obj<'a>,
        name: &str,
        required: bool,
        parse: impl FnOnce(&'a Value) -> Option<T>,
        expected: impl Into<Expected<'e>>,
    ) -> Option<T> {
        let expected = expected.into();
        let prefix = expected.rule.map(|n| format!("rule {n}: ")).unwrap_or_default();
        let value = match obj.map.get(name) {
            Some(Value::Null) | None if !required => return None,
            None => {
                self.fail(obj.pointer(name), format!("{prefix}is required: {}", expected.text));
                return None;
            }
            Some(value) => value,
        };
        let parsed = if value.is_null() { None } else { parse(value) };
        if parsed.is_none() {
            // Also a null where a value is required: the value is what is wrong.
            self.fail(obj.pointer(name), format!("{prefix}must be {}", expected.text));
        }
        parsed
    }

    /// Member `name` deserialized as a `T` (absent: `None`, a problem if `required`); a value of
    /// another shape is a problem naming what serde expected.
    pub(crate) fn member<T: DeserializeOwned>(&mut self, obj: &Obj<'_>, name: &str, required: bool) -> Option<T> {
        let value = if required { self.required(obj, name)? } else { obj.get(name)? };
        match T::deserialize(value) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.fail(obj.pointer(name), e.to_string());
                None
            }
        }
    }

    pub(crate) fn text(&mut self, obj: &Obj<'_>, name: &str, required: bool, max: usize) -> Option<String> {
        let parse = |v: &Value| v.as_str().filter(|s| (1..=max).contains(&s.chars().count())).map(str::to_owned);
        self.value(obj, name, required, parse, &format!("a string of 1 to {max} characters"))
    }

    pub(crate) fn boolean(&mut self, obj: &Obj<'_>, name: &str) -> Option<bool> {
        self.value(obj, name, false, Value::as_bool, "true or false")
    }

    /// A date (`YYYY-MM-DD`) or an RFC 3339 date-time, kept as sent, with its first instant.
    pub(crate) fn date(&mut self, obj: &Obj<'_>, name: &str, required: bool) -> Option<(String, OffsetDateTime)> {
        let parse = |v: &Value| v.as_str().and_then(|s| Some((s.to_owned(), instant(s)?)));
        self.value(obj, name, required, parse, "a date YYYY-MM-DD or an RFC 3339 date-time")
    }

    /// `start <= end` for a pair of dates.
    pub(crate) fn pair(
        &mut self,
        obj: &Obj<'_>,
        start: &Option<(String, OffsetDateTime)>,
        end: &Option<(String, OffsetDateTime)>,
        end_name: &str,
    ) {
        if let (Some((_, s)), Some((_, e))) = (start, end) {
            if s > e {
                self.fail(obj.pointer(end_name), "must not be before its start");
            }
        }
    }

    pub(crate) fn parsed<T: std::str::FromStr>(&mut self, obj: &Obj<'_>, name: &str, expected: &str) -> Option<T> {
        let parse = |v: &Value| v.as_str().and_then(|s| s.parse().ok());
        self.value(obj, name, false, parse, &format!("one of {expected}"))
    }

    pub(crate) fn strings(&mut self, obj: &Obj<'_>, name: &str) -> Vec<String> {
        let Some(value) = obj.get(name) else { return Vec::new() };
        let Some(items) = value.as_array() else {
            self.fail(obj.pointer(name), "must be an array of strings");
            return Vec::new();
        };
        if items.len() > MAX_STRINGS {
            self.fail(obj.pointer(name), format!("has at most {MAX_STRINGS} entries"));
            return Vec::new();
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) if (1..=MAX_ID).contains(&s.chars().count()) => out.push(s.to_owned()),
                _ => self.fail(
                    format!("{}/{i}", obj.pointer(name)),
                    format!("must be a string of 1 to {MAX_ID} characters"),
                ),
            }
        }
        out
    }
}

/// A value a passed [`Check`] holds (its problems were refused by [`Check::stop`] before).
pub(crate) fn checked<T>(value: Option<T>) -> Result<T, DomainError> {
    value.ok_or_else(|| DomainError::invalid("the body is invalid"))
}

/// A non-negative 64-bit integer, also when written with a zero fraction or an exponent (`3.0`,
/// `3e2`: JSON Schema's `integer` admits them), read exactly from the number's text, never
/// through a float (`2.9999999999999999` is no integer, and `9007199254740993.0` is itself).
pub(crate) fn whole(value: &Value) -> Option<u64> {
    use rust_decimal::prelude::ToPrimitive;
    let number = value.as_number()?;
    if let Some(n) = number.as_u64() {
        return Some(n);
    }
    let text = number.to_string();
    let exact = rust_decimal::Decimal::from_str_exact(&text).or_else(|_| rust_decimal::Decimal::from_scientific(&text));
    exact.ok().filter(|d| d.fract().is_zero() && (d.is_zero() || !d.is_sign_negative())).and_then(|d| d.to_u64())
}

/// Deserializes an array of [`whole`] numbers (a patched run's ids, as a client wrote them).
pub(crate) fn whole_numbers<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    let values = Vec::<Value>::deserialize(deserializer)?;
    values.iter().map(|v| whole(v).ok_or_else(|| serde::de::Error::custom("expected a non-negative integer"))).collect()
}

/// A member name as a JSON Pointer token (RFC 6901: `~` as `~0`, `/` as `~1`).
pub(crate) fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// The first instant (UTC) of a date or date-time.
pub(crate) fn instant(text: &str) -> Option<OffsetDateTime> {
    if let Some(date) = dates::parse(text) {
        return Some(PrimitiveDateTime::new(date, time::Time::MIDNIGHT).assume_utc());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .filter(|t| Date::from_calendar_date(t.year(), t.month(), t.day()).is_ok())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::whole;

    fn number(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn given_numbers_then_only_exact_non_negative_integers_are_whole() {
        for (text, want) in [
            ("3", Some(3)),
            ("3.0", Some(3)),
            ("3.000", Some(3)),
            ("3e2", Some(300)),
            ("30e-1", Some(3)),
            ("9007199254740993.0", Some(9_007_199_254_740_993)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551615.0", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("2.9999999999999999", None),
            ("1.0000000000000001", None),
            ("3.5", None),
            ("-1", None),
            ("-0", Some(0)),
            ("-0.0", Some(0)),
            ("1e400", None),
            ("1e-400", None),
        ] {
            assert_eq!(whole(&number(text)), want, "{text}");
        }
        assert_eq!(whole(&Value::String("3".into())), None);
    }

    proptest! {
        #[test]
        fn every_u64_is_whole_however_written(n in any::<u64>(), zeros in 0usize..8) {
            prop_assert_eq!(whole(&number(&n.to_string())), Some(n));
            prop_assert_eq!(whole(&number(&format!("{n}.{}", "0".repeat(zeros.max(1))))), Some(n));
            prop_assert_eq!(whole(&number(&format!("{n}.5"))), None);
            if n > 0 {
                prop_assert_eq!(whole(&number(&format!("-{n}"))), None);
            }
        }
    }
}
