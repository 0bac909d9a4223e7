//! The one body validator of the domain: [`Check`] collects every problem of a JSON body, each
//! named by JSON Pointer, and [`Obj`] is one object of it. Billing runs and API keys parse their
//! bodies with it.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use super::{dates, FieldError};

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

/// One object of the body, at `at`.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) at: String,
}

impl<'a> Obj<'a> {
    pub(crate) fn pointer(&self, name: &str) -> String {
        format!("{}/{name}", self.at)
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
                self.fail(format!("{at}/{key}"), "unknown field");
            }
        }
        Some(Obj { map, at })
    }

    pub(crate) fn required<'a>(&mut self, obj: &Obj<'a>, name: &str) -> Option<&'a Value> {
        let value = obj.get(name);
        if value.is_none() {
            self.fail(obj.pointer(name), "is required");
        }
        value
    }

    pub(crate) fn text(&mut self, obj: &Obj<'_>, name: &str, required: bool, max: usize) -> Option<String> {
        let value = if required { self.required(obj, name)? } else { obj.get(name)? };
        match value.as_str() {
            Some(s) if (1..=max).contains(&s.chars().count()) => Some(s.to_owned()),
            _ => {
                self.fail(obj.pointer(name), format!("must be a string of 1 to {max} characters"));
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, obj: &Obj<'_>, name: &str) -> Option<bool> {
        let value = obj.get(name)?;
        let b = value.as_bool();
        if b.is_none() {
            self.fail(obj.pointer(name), "must be true or false");
        }
        b
    }

    /// A date (`YYYY-MM-DD`) or an RFC 3339 date-time, kept as sent, with its first instant.
    pub(crate) fn date(&mut self, obj: &Obj<'_>, name: &str, required: bool) -> Option<(String, OffsetDateTime)> {
        let value = if required { self.required(obj, name)? } else { obj.get(name)? };
        match value.as_str().and_then(instant) {
            Some(at) => Some((value.as_str().unwrap_or_default().to_owned(), at)),
            None => {
                self.fail(obj.pointer(name), "must be a date YYYY-MM-DD or an RFC 3339 date-time");
                None
            }
        }
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
        let value = obj.get(name)?;
        let parsed = value.as_str().and_then(|s| s.parse().ok());
        if parsed.is_none() {
            self.fail(obj.pointer(name), format!("must be one of {expected}"));
        }
        parsed
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

/// The first instant (UTC) of a date or date-time.
pub(crate) fn instant(text: &str) -> Option<OffsetDateTime> {
    if let Some(date) = dates::parse(text) {
        return Some(PrimitiveDateTime::new(date, time::Time::MIDNIGHT).assume_utc());
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .filter(|t| Date::from_calendar_date(t.year(), t.month(), t.day()).is_ok())
}
