//! TMF678 Customer Bill Management v4 (docs/customer-bills.md): customer bills, on-demand bill
//! requests and applied customer billing rates, shaped exactly as the official TMF678 v4 schemas
//! (`CustomerBill`, `CustomerBillOnDemand`, `AppliedCustomerBillingRate`, `Money`, ...), the
//! Oracle BRM state rule (a bill moves only between inProgress and onHold), and the assembly of an on-demand bill from rated charges.
//! Money is exact: values are decimals parsed from the number's text, summed unrounded and
//! rounded once to cents, half away from zero.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::key::{Id, IdType, Kind};
use super::money::{self, MONEY, QUANTITY};
use super::resource::Resource;
use super::DomainError;

mod parsing;
mod shapes;
mod tally;
#[cfg(test)]
mod tests;
mod types;

pub use parsing::*;
pub use shapes::{BILL as BILL_SHAPE, ON_DEMAND as ON_DEMAND_SHAPE, RATE as RATE_SHAPE};
pub use tally::*;
pub use types::*;

/// Where the family is served; every `href` starts with it.
pub const BASE_PATH: &str = "/brm/customerBillManagement/v4";

/// The longest id a client may give (a billing account's, a party's), and any other text.
pub const MAX_ID: usize = 256;
pub const MAX_TEXT: usize = 4000;
/// Arrays in a resource: at most this many entries, as every family bounds them.
pub const MAX_ENTRIES: usize = 1000;

/// How long after its bill date a bill is due.
pub const PAYMENT_TERM_DAYS: i64 = 30;

/// Date-times as TMF writes them: RFC 3339, here always UTC.
pub mod datetime {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, UtcOffset};

    pub fn parse(text: &str) -> Option<OffsetDateTime> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(|t| t.to_offset(UtcOffset::UTC))
    }

    pub fn format(at: OffsetDateTime) -> String {
        at.to_offset(UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
    }

    /// Now, to the millisecond.
    pub fn now() -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_millisecond(now.millisecond()).unwrap_or(now)
    }

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 date-time")))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, serializer: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }
}

/// A decimal written with exactly its digits (`10.50` stays `10.50`), read from the number's text.
mod exact {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::Number;

    use crate::domain::money::from_number;

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        let number: Number = value.to_string().parse().map_err(serde::ser::Error::custom)?;
        serde::Serialize::serialize(&number, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let number = Number::deserialize(deserializer)?;
        from_number(&number).ok_or_else(|| serde::de::Error::custom(format!("{number} is not an exact decimal")))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(value: &Option<Decimal>, serializer: S) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
            super::deserialize(deserializer).map(Some)
        }
    }
}
