//! Calendar dates as the API writes them (`YYYY-MM-DD`) and calendar-month arithmetic.

use time::{format_description::FormatItem, macros::format_description, Date, Duration, Month};

pub const DATE_FORMAT: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

time::serde::format_description!(pub iso_date, Date, "[year]-[month]-[day]");

pub fn parse(text: &str) -> Option<Date> {
    // `time` accepts only the exact form; reject extra characters and odd years explicitly.
    if text.len() != 10 {
        return None;
    }
    Date::parse(text, DATE_FORMAT).ok()
}

pub fn format(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// The years a date of the API may have: those `YYYY-MM-DD` writes (and [`parse`] reads).
/// `time` goes on to -9999, which would be written `-0663-06-13`, not a date of RFC 3339.
fn supported(date: Date) -> Option<Date> {
    (0..=9999).contains(&date.year()).then_some(date)
}

/// `date` moved by `months` calendar months; a day past the target month's end clamps to it
/// (Jan 31 + 1 month is Feb 28 or 29). `None` when the result leaves the supported years.
pub fn add_months(date: Date, months: i64) -> Option<Date> {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 + months;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let last = month.length(year);
    Date::from_calendar_date(year, month, date.day().min(last)).ok().and_then(supported)
}

/// `date` moved by `days` days; `None` when the result leaves the supported years.
pub fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Duration::days(days)).and_then(supported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn month_arithmetic_clamps_to_the_month_end() {
        let cases = [
            (date!(2024 - 01 - 31), 1, date!(2024 - 02 - 29)),
            (date!(2023 - 01 - 31), 1, date!(2023 - 02 - 28)),
            (date!(2024 - 03 - 31), -1, date!(2024 - 02 - 29)),
            (date!(2024 - 12 - 15), 1, date!(2025 - 01 - 15)),
            (date!(2024 - 01 - 15), -13, date!(2022 - 12 - 15)),
        ];
        for (from, months, want) in cases {
            assert_eq!(add_months(from, months), Some(want), "{from} + {months} months");
        }
    }

    #[test]
    fn arithmetic_stays_within_the_years_an_api_date_can_be_written_in() {
        // Found by the schemathesis run: a schedule move of -99 months gave `-0663-06-13`.
        assert_eq!(add_months(date!(0000 - 03 - 15), -2), Some(date!(0000 - 01 - 15)));
        assert_eq!(add_months(date!(0000 - 03 - 15), -3), None);
        assert_eq!(add_months(date!(9999 - 11 - 30), 1), Some(date!(9999 - 12 - 30)));
        assert_eq!(add_months(date!(9999 - 11 - 30), 2), None);
        assert_eq!(add_days(date!(0000 - 01 - 01), -1), None);
        assert_eq!(add_days(date!(9999 - 12 - 31), 1), None);
        assert_eq!(format(add_days(date!(0000 - 01 - 02), -1).unwrap()), "0000-01-01");
    }

    #[test]
    fn only_exact_iso_dates_parse() {
        assert_eq!(parse("2024-02-29"), Some(date!(2024 - 02 - 29)));
        for bad in ["2023-02-29", "2024-2-01", "2024-02-01T00:00:00Z", "", "20240201", "+2024-02-01"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
