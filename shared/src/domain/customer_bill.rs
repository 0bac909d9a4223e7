//! TMF678 Customer Bill Management v4 (docs/customer-bills.md): customer bills, on-demand bill
//! requests and applied customer billing rates, shaped exactly as the official TMF678 v4 schemas
//! (`CustomerBill`, `CustomerBillOnDemand`, `AppliedCustomerBillingRate`, `Money`, ...), the
//! Oracle BRM state rule (a bill moves only between inProgress and onHold), and the assembly of an on-demand bill from rated charges.
//! Money is exact: values are decimals parsed from the number's text, summed unrounded and
//! rounded once to cents, half away from zero.

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use super::key::{Id, IdType, Kind};
use super::money::{self, MONEY, QUANTITY};
use super::resource::Resource;
use super::DomainError;

#[cfg(test)]
mod tests;

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

// ---------------------------------------------------------------------------------------------
// The TMF value types

/// TMF `Money`: an ISO 4217 unit and an exact decimal value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub unit: String,
    #[serde(with = "exact")]
    pub value: Decimal,
}

impl Money {
    pub fn new(unit: &str, value: Decimal) -> Self {
        Self { unit: unit.to_owned(), value }
    }

    /// A client's money: a three-letter upper-case unit and a value within the money bounds.
    fn check(&self, pointer: &str) -> Result<(), DomainError> {
        if !(self.unit.len() == 3 && self.unit.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(DomainError::field(format!("{pointer}/unit"), "must be an ISO 4217 code such as EUR"));
        }
        if !MONEY.admit(self.value) {
            return Err(DomainError::field(format!("{pointer}/value"), format!("must be {}", MONEY.describe())));
        }
        Ok(())
    }
}

/// TMF `BillingAccountRef`, `ProductRef` and `BillRef`: a reference to another entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "@referredType", default, skip_serializing_if = "Option::is_none")]
    pub referred_type: Option<String>,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

impl EntityRef {
    /// A reference to one of our resources: its id and href.
    pub fn to(id: Uuid, path: &str) -> Self {
        Self {
            id: id.to_string(),
            href: Some(format!("{BASE_PATH}/{path}/{id}")),
            name: None,
            referred_type: None,
            at_type: None,
            base_type: None,
            schema_location: None,
        }
    }

    fn check(&self, pointer: &str) -> Result<(), DomainError> {
        if self.id.is_empty() || self.id.chars().count() > MAX_ID {
            return Err(DomainError::field(format!("{pointer}/id"), format!("must be 1 to {MAX_ID} characters")));
        }
        Ok(())
    }
}

/// TMF `RelatedPartyRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(rename = "@referredType", default, skip_serializing_if = "Option::is_none")]
    pub referred_type: Option<String>,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

/// TMF `TimePeriod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimePeriod {
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<OffsetDateTime>,
}

/// TMF `AppliedBillingTaxRate`: one tax on a rated charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppliedTax {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_category: Option<String>,
    #[serde(default, with = "exact::option", skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<Decimal>,
    pub tax_amount: Money,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

/// TMF `TaxItem`: a bill's tax of one category and rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_category: Option<String>,
    #[serde(default, with = "exact::option", skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<Decimal>,
    pub tax_amount: Money,
}

/// TMF `AppliedBillingRateCharacteristic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Characteristic {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    pub value: Value,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

/// TMF `AttachmentRefOrValue`: the bill's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub url: String,
}

// ---------------------------------------------------------------------------------------------
// States

/// A customer bill's `state`: TMF's `stateValue` enum, with the Oracle BRM profile's `inProgress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantArray)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum BillState {
    New,
    InProgress,
    OnHold,
    Validated,
    Sent,
    PartiallyPaid,
    Settled,
}

impl BillState {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// A state as a client writes it: TMF camelCase, or Oracle's `InProgress`/`OnHold` spelling.
    pub fn parse(text: &str) -> Option<Self> {
        use strum::VariantArray;
        Self::VARIANTS.iter().copied().find(|state| {
            let name = state.name();
            let pascal = name[..1].to_ascii_uppercase() + &name[1..];
            text == name || text == pascal
        })
    }

    /// Oracle's rule: a bill moves between `inProgress` and `onHold` only. `None`: the bill is
    /// in that state already (nothing to write).
    pub fn change_to(self, target: Self) -> Result<Option<Self>, DomainError> {
        let movable = |s: Self| matches!(s, Self::InProgress | Self::OnHold);
        if !movable(target) {
            return Err(DomainError::field("/state", "a bill can only be put inProgress or onHold"));
        }
        if !movable(self) {
            return Err(DomainError::conflict(format!(
                "the bill is {}: only a bill inProgress or onHold changes state",
                self.name()
            )));
        }
        Ok((self != target).then_some(target))
    }
}

/// A `CustomerBillOnDemand`'s `state` (TMF `StateValues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum RequestState {
    InProgress,
    Rejected,
    Done,
    TerminatedWithError,
}

impl RequestState {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

// ---------------------------------------------------------------------------------------------
// The resources

/// `AppliedCustomerBillingRate`: a rated charge of a billing account, billed once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRate {
    pub id: Uuid,
    pub href: String,
    #[serde(rename = "@type")]
    pub at_type: String,
    #[serde(with = "datetime")]
    pub date: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub rate_type: Option<String>,
    pub is_billed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill: Option<EntityRef>,
    pub billing_account: EntityRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_coverage: Option<TimePeriod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<EntityRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub characteristic: Vec<Characteristic>,
    pub applied_tax: Vec<AppliedTax>,
    pub tax_excluded_amount: Money,
    pub tax_included_amount: Money,
}

pub const RATE_TYPE: &str = "AppliedCustomerBillingRate";

impl Resource for AppliedRate {
    const KIND: Kind = Kind::new("CBRATE", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    /// An account's unbilled rates are a group of their own: what an on-demand bill walks.
    fn group(&self) -> Option<String> {
        Some(rate_group(&self.billing_account.id, self.is_billed))
    }
}

/// The group of an account's rates, billed or not.
pub fn rate_group(account: &str, billed: bool) -> String {
    format!("{}#{account}", if billed { "billed" } else { "unbilled" })
}

/// `CustomerBill`: an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerBill {
    pub id: Uuid,
    pub href: String,
    #[serde(rename = "@type")]
    pub at_type: String,
    pub bill_no: String,
    #[serde(with = "datetime")]
    pub bill_date: OffsetDateTime,
    pub category: String,
    pub run_type: String,
    pub state: BillState,
    pub amount_due: Money,
    pub remaining_amount: Money,
    pub tax_excluded_amount: Money,
    pub tax_included_amount: Money,
    pub tax_item: Vec<TaxItem>,
    pub bill_document: Vec<Attachment>,
    pub billing_account: EntityRef,
    pub billing_period: TimePeriod,
    #[serde(with = "datetime")]
    pub payment_due_date: OffsetDateTime,
    pub related_party: Vec<PartyRef>,
    #[serde(with = "datetime")]
    pub last_update: OffsetDateTime,
}

pub const BILL_TYPE: &str = "CustomerBill";

impl Resource for CustomerBill {
    const KIND: Kind = Kind::new("CBILL", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    fn group(&self) -> Option<String> {
        Some(self.billing_account.id.clone())
    }
}

/// `CustomerBillOnDemand`: a request to bill an account's unbilled rates now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnDemand {
    pub id: Uuid,
    pub href: String,
    #[serde(rename = "@type")]
    pub at_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub billing_account: EntityRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_party: Option<PartyRef>,
    pub state: RequestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_bill: Option<EntityRef>,
    #[serde(with = "datetime")]
    pub last_update: OffsetDateTime,
}

pub const ON_DEMAND_TYPE: &str = "CustomerBillOnDemand";

impl Resource for OnDemand {
    const KIND: Kind = Kind::new("CBDEMAND", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    fn group(&self) -> Option<String> {
        Some(self.billing_account.id.clone())
    }

    fn work_pending(&self) -> bool {
        self.state == RequestState::InProgress
    }
}

impl OnDemand {
    /// The request done: its bill made.
    pub fn done(&self, bill: &CustomerBill, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        next.state = RequestState::Done;
        next.customer_bill = Some(EntityRef::to(bill.id, "customerBill"));
        next.last_update = now;
        next
    }

    /// The request ended without a bill (`rejected` or `terminatedWithError`); the reason follows
    /// the client's own description, so nothing it wrote is lost.
    pub fn ended(&self, state: RequestState, reason: &str, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        next.state = state;
        next.description = Some(match &self.description {
            Some(own) if !own.is_empty() => format!("{own} ({reason})"),
            _ => reason.to_owned(),
        });
        next.last_update = now;
        next
    }
}

/// The billing of one account (never shown to clients): which on-demand request holds it, so that
/// at most one bills the account's rates at a time. Its id is derived from the account's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountBilling {
    pub id: Uuid,
    pub billing_account_id: String,
    pub on_demand: Option<Uuid>,
}

impl Resource for AccountBilling {
    const KIND: Kind = Kind::new("CBACCOUNT", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }
}

impl AccountBilling {
    /// The id of an account's billing item: a name-based UUID of the account id.
    pub fn id_of(account: &str) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b8e_5d3a_4c7f_9e21_0b4d_8a6c_3e15);
        Uuid::new_v5(&NAMESPACE, account.as_bytes())
    }

    pub fn held_by(account: &str, on_demand: Option<Uuid>) -> Self {
        Self { id: Self::id_of(account), billing_account_id: account.to_owned(), on_demand }
    }
}

/// A new id: time-ordered (UUID v7), so that id order is creation order and lists read newest
/// first straight from an index.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// What a POST or PATCH body may carry, beside the resource's own fields.
const IGNORED: &[&str] = &["@baseType", "@schemaLocation"];

/// The body as an object whose every member is `allowed` (or ignored); server-owned members and
/// unknown ones are 400 naming them; `@type`, if sent, must be `at_type`.
fn members<'a>(
    body: &'a Value,
    allowed: &[&str],
    server_owned: &[&str],
    at_type: &str,
) -> Result<&'a Map<String, Value>, DomainError> {
    let Value::Object(map) = body else { return Err(DomainError::invalid("the body must be a JSON object")) };
    for (name, value) in map {
        let pointer = format!("/{}", name.replace('~', "~0").replace('/', "~1"));
        if name == "@type" {
            if value.as_str() != Some(at_type) {
                return Err(DomainError::field(pointer, format!("must be {at_type:?}")));
            }
        } else if server_owned.contains(&name.as_str()) {
            return Err(DomainError::field(pointer, "is set by the server and cannot be sent"));
        } else if IGNORED.contains(&name.as_str()) {
            // Ignored, but still what TMF678 says they are.
            if !value.is_string() {
                return Err(DomainError::field(pointer, "must be a string"));
            }
        } else if !allowed.contains(&name.as_str()) {
            return Err(DomainError::field(pointer, "is not an attribute of this request"));
        }
    }
    bounded(body, "")?;
    Ok(map)
}

/// Refuses text longer than [`MAX_TEXT`], arrays longer than [`MAX_ENTRIES`], `null`, and an
/// `@schemaLocation` that is not a URI, anywhere in a body: no TMF678 attribute is nullable, so a
/// `null` is a client's mistake, not an absence.
fn bounded(value: &Value, pointer: &str) -> Result<(), DomainError> {
    match value {
        Value::Null => Err(DomainError::field(pointer, "must not be null: leave the attribute out")),
        Value::String(text) if text.chars().count() > MAX_TEXT => {
            Err(DomainError::field(pointer, format!("must be at most {MAX_TEXT} characters")))
        }
        Value::Array(items) if items.len() > MAX_ENTRIES => {
            Err(DomainError::field(pointer, format!("must have at most {MAX_ENTRIES} entries")))
        }
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| bounded(item, &format!("{pointer}/{i}")))
        }
        Value::Object(map) => map.iter().try_for_each(|(name, item)| {
            let at = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
            // Kept as sent on references, and TMF678's is a URI (found by schemathesis: `""` was
            // stored and answered, which no TMF client can read as one).
            if name == "@schemaLocation" && item.as_str().is_none_or(|uri| fluent_uri::Uri::parse(uri).is_err()) {
                return Err(DomainError::field(at, "must be a URI"));
            }
            bounded(item, &at)
        }),
        _ => Ok(()),
    }
}

/// Member `name` as a `T` (absent: `None`; `members` has refused `null`); a value of the wrong
/// shape is 400 naming it.
fn member<T: DeserializeOwned>(map: &Map<String, Value>, name: &str) -> Result<Option<T>, DomainError> {
    match map.get(name) {
        None => Ok(None),
        Some(value) => {
            T::deserialize(value).map(Some).map_err(|e| DomainError::field(format!("/{name}"), e.to_string()))
        }
    }
}

fn required<T: DeserializeOwned>(map: &Map<String, Value>, name: &str) -> Result<T, DomainError> {
    member(map, name)?.ok_or_else(|| DomainError::field(format!("/{name}"), "is required"))
}

const RATE_FIELDS: &[&str] = &[
    "billingAccount",
    "taxExcludedAmount",
    "taxIncludedAmount",
    "name",
    "description",
    "type",
    "date",
    "periodCoverage",
    "product",
    "characteristic",
    "appliedTax",
];
pub(crate) const RATE_SERVER_OWNED: &[&str] =
    &["id", "href", "isBilled", "bill", "state", "lastUpdate", "customerBill"];

/// A `POST /appliedCustomerBillingRate` body as a new, unbilled rate.
pub fn parse_rate(body: &Value, id: Uuid, now: OffsetDateTime) -> Result<AppliedRate, DomainError> {
    let map = members(body, RATE_FIELDS, RATE_SERVER_OWNED, RATE_TYPE)?;
    let billing_account: EntityRef = required(map, "billingAccount")?;
    billing_account.check("/billingAccount")?;
    let excluded: Money = required(map, "taxExcludedAmount")?;
    excluded.check("/taxExcludedAmount")?;
    let applied_tax: Vec<AppliedTax> = member(map, "appliedTax")?.unwrap_or_default();
    // Every computed amount lies within the bounds, the included one even without taxes (an
    // input of 15+6 digits can pass 999,999,999,999,999.99).
    let mut included = money::amount(Some(excluded.value));
    for (i, tax) in applied_tax.iter().enumerate() {
        let pointer = format!("/appliedTax/{i}");
        tax.tax_amount.check(&format!("{pointer}/taxAmount"))?;
        if tax.tax_amount.unit != excluded.unit {
            return Err(DomainError::field(format!("{pointer}/taxAmount/unit"), "must be the rate's unit"));
        }
        if tax.tax_rate.is_some_and(|rate| !QUANTITY.admit(rate)) {
            return Err(DomainError::field(format!("{pointer}/taxRate"), format!("must be {}", QUANTITY.describe())));
        }
        included = money::amount(included.and_then(|sum| sum.checked_add(tax.tax_amount.value)));
    }
    let included = included.ok_or_else(|| {
        DomainError::field("/taxIncludedAmount", "the excluded amount and the taxes sum beyond 999,999,999,999,999.99")
    })?;
    let tax_included_amount = match member::<Money>(map, "taxIncludedAmount")? {
        None => Money::new(&excluded.unit, included),
        Some(sent) => {
            sent.check("/taxIncludedAmount")?;
            if sent.unit != excluded.unit || sent.value != included {
                return Err(DomainError::field(
                    "/taxIncludedAmount",
                    format!("must be the excluded amount plus the taxes: {included} {}", excluded.unit),
                ));
            }
            sent
        }
    };
    let text = |name: &str| -> Result<Option<String>, DomainError> { member(map, name) };
    let date = match member::<String>(map, "date")? {
        None => now,
        Some(text) => {
            datetime::parse(&text).ok_or_else(|| DomainError::field("/date", "must be an RFC 3339 date-time"))?
        }
    };
    let product: Option<EntityRef> = member(map, "product")?;
    if let Some(product) = &product {
        product.check("/product")?;
    }
    Ok(AppliedRate {
        id,
        href: format!("{BASE_PATH}/appliedCustomerBillingRate/{id}"),
        at_type: RATE_TYPE.to_owned(),
        date,
        name: text("name")?,
        description: text("description")?,
        rate_type: text("type")?,
        is_billed: false,
        bill: None,
        billing_account,
        period_coverage: member(map, "periodCoverage")?,
        product,
        characteristic: member(map, "characteristic")?.unwrap_or_default(),
        applied_tax,
        tax_excluded_amount: excluded,
        tax_included_amount,
    })
}

const ON_DEMAND_FIELDS: &[&str] = &["billingAccount", "name", "description", "relatedParty"];
const ON_DEMAND_SERVER_OWNED: &[&str] = &["id", "href", "state", "lastUpdate", "customerBill"];

/// A `POST /customerBillOnDemand` body as a new request, `inProgress`.
pub fn parse_on_demand(body: &Value, id: Uuid, now: OffsetDateTime) -> Result<OnDemand, DomainError> {
    let map = members(body, ON_DEMAND_FIELDS, ON_DEMAND_SERVER_OWNED, ON_DEMAND_TYPE)?;
    let billing_account: EntityRef = required(map, "billingAccount")?;
    billing_account.check("/billingAccount")?;
    let related_party: Option<PartyRef> = member(map, "relatedParty")?;
    if related_party.as_ref().is_some_and(|p| p.id.is_empty() || p.id.chars().count() > MAX_ID) {
        return Err(DomainError::field("/relatedParty/id", format!("must be 1 to {MAX_ID} characters")));
    }
    Ok(OnDemand {
        id,
        href: format!("{BASE_PATH}/customerBillOnDemand/{id}"),
        at_type: ON_DEMAND_TYPE.to_owned(),
        name: member(map, "name")?,
        description: member(map, "description")?,
        billing_account,
        related_party,
        state: RequestState::InProgress,
        customer_bill: None,
        last_update: now,
    })
}

/// How a PATCH body is written (its content type says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchForm {
    /// `application/merge-patch+json` or `application/json`: an object.
    Merge,
    /// `application/json-patch+json`: operations on `/state` only.
    Json,
}

/// The state a PATCH of a customer bill asks for; `None`: nothing asked (`{}` or `[]`).
pub fn parse_bill_patch(body: &Value, form: PatchForm) -> Result<Option<BillState>, DomainError> {
    let state = |value: &Value, pointer: &str| -> Result<BillState, DomainError> {
        value.as_str().and_then(BillState::parse).ok_or_else(|| {
            DomainError::field(pointer, "must be a customer bill state: inProgress or onHold (InProgress, OnHold)")
        })
    };
    match (form, body) {
        (PatchForm::Merge, Value::Object(_)) => {
            // Every other attribute of a customer bill is the server's (`@type` is checked, and
            // `@baseType` and `@schemaLocation` ignored, by `members`).
            let server_owned: Vec<&str> = BILL_SHAPE
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| *name != "state" && !name.starts_with('@'))
                .collect();
            let map = members(body, &["state"], &server_owned, BILL_TYPE)
                .map_err(|e| with_detail(e, "only state can be patched"))?;
            map.get("state").map(|value| state(value, "/state")).transpose()
        }
        (PatchForm::Json, Value::Array(operations)) => {
            if operations.len() > super::patch::MAX_OPERATIONS {
                let most = super::patch::MAX_OPERATIONS;
                return Err(DomainError::field("", format!("a JSON Patch has at most {most} operations")));
            }
            let mut target = None;
            for (i, operation) in operations.iter().enumerate() {
                let pointer = format!("/{i}");
                let op = operation.get("op").and_then(Value::as_str);
                if !matches!(op, Some("replace" | "add")) {
                    return Err(DomainError::field(format!("{pointer}/op"), "must be replace (or add) of /state"));
                }
                if operation.get("path").and_then(Value::as_str) != Some("/state") {
                    return Err(DomainError::field(format!("{pointer}/path"), "only /state can be patched"));
                }
                let value = operation.get("value").ok_or_else(|| DomainError::field(&pointer, "needs a value"))?;
                target = Some(state(value, &format!("{pointer}/value"))?);
            }
            Ok(target)
        }
        (PatchForm::Merge, _) => Err(DomainError::invalid("a merge patch must be a JSON object")),
        (PatchForm::Json, _) => Err(DomainError::invalid("a JSON Patch must be an array of operations")),
    }
}

fn with_detail(error: DomainError, hint: &str) -> DomainError {
    match error {
        DomainError::Invalid { detail, errors } => {
            DomainError::Invalid { detail: format!("{detail} ({hint})"), errors }
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Bill assembly

/// Why an account's rates cannot make one bill (the request is `rejected` with this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no unbilled rates for billing account {0}")]
    NoRates(String),
    #[error("the unbilled rates are in more than one currency ({0} and {1}); bill each currency separately")]
    MixedCurrencies(String, String),
    #[error("the bill's {0} would exceed 999,999,999,999,999.99")]
    TooLarge(&'static str),
    #[error("the bill would have more than {MAX_ENTRIES} tax items")]
    TooManyTaxItems,
}

/// The taxes of one (`taxCategory`, `taxRate`) group, summed unrounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxGroup {
    pub tax_category: Option<String>,
    #[serde(with = "money::option_number")]
    pub tax_rate: Option<Decimal>,
    #[serde(with = "money::number")]
    pub sum: Decimal,
}

/// What a bill is made of, accumulated rate by rate (kept by the worker between steps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub unit: Option<String>,
    pub count: u64,
    #[serde(with = "money::number")]
    pub excluded: Decimal,
    pub taxes: Vec<TaxGroup>,
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub first: Option<OffsetDateTime>,
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub last: Option<OffsetDateTime>,
}

fn within(value: Option<Decimal>, what: &'static str) -> Result<Decimal, Refusal> {
    money::amount(value).ok_or(Refusal::TooLarge(what))
}

impl Tally {
    /// Adds a rate; on a refusal the tally is unchanged.
    pub fn add(&mut self, rate: &AppliedRate) -> Result<(), Refusal> {
        let unit = &rate.tax_excluded_amount.unit;
        if let Some(own) = self.unit.as_ref().filter(|own| *own != unit) {
            return Err(Refusal::MixedCurrencies(own.clone(), unit.clone()));
        }
        let mut next = self.clone();
        next.unit = Some(unit.clone());
        next.count += 1;
        next.excluded = within(next.excluded.checked_add(rate.tax_excluded_amount.value), "taxExcludedAmount")?;
        for tax in &rate.applied_tax {
            // Rates compare as numbers: 0.2 and 0.20 are one group.
            let rate_key = tax.tax_rate.map(|r| r.normalize());
            let at = next.taxes.iter().position(|g| g.tax_category == tax.tax_category && g.tax_rate == rate_key);
            let at = match at {
                Some(at) => at,
                None if next.taxes.len() >= MAX_ENTRIES => return Err(Refusal::TooManyTaxItems),
                None => {
                    next.taxes.push(TaxGroup {
                        tax_category: tax.tax_category.clone(),
                        tax_rate: rate_key,
                        sum: Decimal::ZERO,
                    });
                    next.taxes.len() - 1
                }
            };
            next.taxes[at].sum = within(next.taxes[at].sum.checked_add(tax.tax_amount.value), "taxItem")?;
        }
        next.included()?;
        next.first = Some(next.first.map_or(rate.date, |d| d.min(rate.date)));
        next.last = Some(next.last.map_or(rate.date, |d| d.max(rate.date)));
        *self = next;
        Ok(())
    }

    /// The bill's amounts, each rounded once to cents: excluded, each tax group's, and included.
    fn included(&self) -> Result<Amounts, Refusal> {
        let excluded = money::cents(self.excluded);
        let taxes: Vec<Decimal> = self.taxes.iter().map(|g| money::cents(g.sum)).collect();
        let mut included = Some(excluded);
        for amount in &taxes {
            included = included.and_then(|sum| sum.checked_add(*amount));
        }
        Ok(Amounts { excluded, taxes, included: within(included, "taxIncludedAmount")? })
    }

    /// The bill of these rates, `inProgress`.
    pub fn bill(&self, new: NewBill<'_>) -> Result<CustomerBill, Refusal> {
        let (unit, first, last) = match (&self.unit, self.first, self.last) {
            (Some(unit), Some(first), Some(last)) if self.count > 0 => (unit, first, last),
            _ => return Err(Refusal::NoRates(new.request.billing_account.id.clone())),
        };
        let Amounts { excluded, taxes, included } = self.included()?;
        let id = new.id;
        let document = new.document;
        Ok(CustomerBill {
            id,
            href: format!("{BASE_PATH}/customerBill/{id}"),
            at_type: BILL_TYPE.to_owned(),
            bill_no: new.bill_no.to_string(),
            bill_date: new.now,
            category: "onDemand".to_owned(),
            run_type: "offCycle".to_owned(),
            state: BillState::InProgress,
            amount_due: Money::new(unit, included),
            remaining_amount: Money::new(unit, included),
            tax_excluded_amount: Money::new(unit, excluded),
            tax_included_amount: Money::new(unit, included),
            tax_item: taxes
                .into_iter()
                .zip(&self.taxes)
                .map(|(amount, group)| TaxItem {
                    tax_category: group.tax_category.clone(),
                    tax_rate: group.tax_rate,
                    tax_amount: Money::new(unit, amount),
                })
                .collect(),
            bill_document: vec![Attachment {
                id: document.to_string(),
                name: format!("bill-{}.pdf", new.bill_no),
                mime_type: "application/pdf".to_owned(),
                url: format!("{BASE_PATH}/customerBill/{id}/billDocument/{document}"),
            }],
            billing_account: new.request.billing_account.clone(),
            billing_period: TimePeriod { start_date_time: Some(first), end_date_time: Some(last) },
            payment_due_date: new.now + time::Duration::days(PAYMENT_TERM_DAYS),
            related_party: new.request.related_party.iter().cloned().collect(),
            last_update: new.now,
        })
    }
}

/// A bill's amounts, rounded to cents.
struct Amounts {
    excluded: Decimal,
    taxes: Vec<Decimal>,
    included: Decimal,
}

/// What a bill takes beside its rates.
#[derive(Debug, Clone, Copy)]
pub struct NewBill<'a> {
    pub id: Uuid,
    pub document: Uuid,
    pub bill_no: u64,
    pub request: &'a OnDemand,
    pub now: OffsetDateTime,
}

impl AppliedRate {
    /// The rate billed on `bill`.
    pub fn billed_on(&self, bill: Uuid) -> Self {
        let mut next = self.clone();
        next.is_billed = true;
        next.bill = Some(EntityRef::to(bill, "customerBill"));
        next
    }
}

/// The whole bill with its state changed (`lastUpdate` now).
pub fn with_state(bill: &CustomerBill, state: BillState, now: OffsetDateTime) -> CustomerBill {
    CustomerBill { state, last_update: now, ..bill.clone() }
}

// ---------------------------------------------------------------------------------------------
// The attributes lists can filter on and select: the TMF678 v4 schemas' properties

mod shapes {
    use super::super::tmf_query::Shape::{self, Leaf, Object};

    const MONEY: Shape = Object(&[("unit", Leaf), ("value", Leaf)]);
    const META: [(&str, Shape); 3] = [("@type", Leaf), ("@baseType", Leaf), ("@schemaLocation", Leaf)];
    const REF: Shape =
        Object(&[("id", Leaf), ("href", Leaf), ("name", Leaf), ("@referredType", Leaf), META[0], META[1], META[2]]);
    const PARTY: Shape = Object(&[
        ("id", Leaf),
        ("href", Leaf),
        ("name", Leaf),
        ("role", Leaf),
        ("@referredType", Leaf),
        META[0],
        META[1],
        META[2],
    ]);
    const PERIOD: Shape = Object(&[("startDateTime", Leaf), ("endDateTime", Leaf)]);
    const TAX: Shape =
        Object(&[("taxCategory", Leaf), ("taxRate", Leaf), ("taxAmount", MONEY), META[0], META[1], META[2]]);
    const ATTACHMENT: Shape = Object(&[
        ("id", Leaf),
        ("href", Leaf),
        ("attachmentType", Leaf),
        ("content", Leaf),
        ("description", Leaf),
        ("mimeType", Leaf),
        ("name", Leaf),
        ("url", Leaf),
        ("size", Object(&[("amount", Leaf), ("units", Leaf)])),
        ("validFor", PERIOD),
        ("@referredType", Leaf),
        META[0],
        META[1],
        META[2],
    ]);
    const CHARACTERISTIC: Shape =
        Object(&[("name", Leaf), ("valueType", Leaf), ("value", Leaf), META[0], META[1], META[2]]);
    const PAYMENT: Shape = Object(&[("appliedAmount", MONEY), ("payment", REF), META[0], META[1], META[2]]);

    pub const BILL: &[(&str, Shape)] = &[
        ("id", Leaf),
        ("href", Leaf),
        ("billDate", Leaf),
        ("billNo", Leaf),
        ("category", Leaf),
        ("lastUpdate", Leaf),
        ("nextBillDate", Leaf),
        ("paymentDueDate", Leaf),
        ("runType", Leaf),
        ("amountDue", MONEY),
        ("appliedPayment", PAYMENT),
        ("billDocument", ATTACHMENT),
        ("billingAccount", REF),
        ("billingPeriod", PERIOD),
        ("financialAccount", REF),
        ("paymentMethod", REF),
        ("relatedParty", PARTY),
        ("remainingAmount", MONEY),
        ("state", Leaf),
        ("taxExcludedAmount", MONEY),
        ("taxIncludedAmount", MONEY),
        ("taxItem", TAX),
        META[0],
        META[1],
        META[2],
    ];

    pub const ON_DEMAND: &[(&str, Shape)] = &[
        ("id", Leaf),
        ("href", Leaf),
        ("description", Leaf),
        ("lastUpdate", Leaf),
        ("name", Leaf),
        ("billingAccount", REF),
        ("customerBill", REF),
        ("relatedParty", PARTY),
        ("state", Leaf),
        META[0],
        META[1],
        META[2],
    ];

    pub const RATE: &[(&str, Shape)] = &[
        ("id", Leaf),
        ("href", Leaf),
        ("date", Leaf),
        ("description", Leaf),
        ("isBilled", Leaf),
        ("name", Leaf),
        ("type", Leaf),
        ("appliedTax", TAX),
        ("bill", REF),
        ("billingAccount", REF),
        ("characteristic", CHARACTERISTIC),
        ("periodCoverage", PERIOD),
        ("product", REF),
        ("taxExcludedAmount", MONEY),
        ("taxIncludedAmount", MONEY),
        META[0],
        META[1],
        META[2],
    ];
}

pub use shapes::{BILL as BILL_SHAPE, ON_DEMAND as ON_DEMAND_SHAPE, RATE as RATE_SHAPE};
