//! Bills (docs/bills.md): one invoice document whose amount is the sum of its line items or a
//! percentage of a base amount. The model, create validation, the eight PATCH rules, and what
//! each bill-run stage does to a bill, all as pure functions.

use super::list::{filter, names, ListSpec, Values};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime, UtcOffset};

use super::bill_run::{BillRunStatus, RunKind, SummaryStatus};
use super::key::{Id, IdType, Kind};
use super::money::{self, cents, number, option_number, MONEY, QUANTITY};
use super::resource::Resource;
use super::{DomainError, FieldError};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum BillStatus {
    Draft,
    Issued,
    PartiallyPaid,
    Paid,
    Void,
}

impl BillStatus {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum CalculationMethod {
    LineItems,
    Percentage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantArray)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum BillType {
    Invoice,
    CreditNote,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    pub id: u64,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineItem {
    pub id: u64,
    pub catalog_item_id: u64,
    pub description: Option<String>,
    #[serde(with = "number")]
    pub quantity: Decimal,
    #[serde(with = "number")]
    pub unit_price: Decimal,
    #[serde(with = "option_number")]
    pub unit_cost: Option<Decimal>,
    #[serde(with = "number")]
    pub amount: Decimal,
}

/// A bill, as every response shows it (every field present, optional ones as null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bill {
    pub id: u64,
    pub bill_number: u64,
    pub status: BillStatus,
    #[serde(with = "number")]
    pub amount: Decimal,
    #[serde(with = "number")]
    pub amount_paid: Decimal,
    pub calculation_method: CalculationMethod,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub bill_type: Option<BillType>,
    pub based_on_id: Option<i64>,
    pub based_on_uid: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub due_date: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub issue_date: Option<OffsetDateTime>,
    pub is_archived: bool,
    #[serde(with = "option_number")]
    pub percentage: Option<Decimal>,
    #[serde(with = "option_number")]
    pub base_amount: Option<Decimal>,
    pub account: Option<Account>,
    pub record: Option<RecordRef>,
    pub bill_run_id: Option<u64>,
    pub bill_run_kind: Option<RunKind>,
    pub line_items: Vec<LineItem>,
}

impl Resource for Bill {
    const KIND: Kind = Kind::new("BILL", IdType::Counter);

    fn id(&self) -> Id {
        Id::Int(self.id)
    }

    const LIST: Option<&'static ListSpec> = Some(&LIST);

    /// The bills of one run, for the stage worker.
    fn group(&self) -> Option<String> {
        self.run().map(|(kind, id)| kind.bill_group(id))
    }
}

/// What `GET /bills` filters, sorts and selects; `isArchived` bills are hidden unless asked for.
pub const LIST: ListSpec = ListSpec {
    sortable: &["id", "billNumber", "dueDate", "issueDate", "createdAt", "amount"],
    filters: &[
        filter("status", "/status", Values::Names(names::<BillStatus>)),
        filter("billRunId", "/billRunId", Values::PositiveIntegers),
        filter("accountId", "/account/id", Values::PositiveIntegers),
        filter("calculationMethod", "/calculationMethod", Values::Names(names::<CalculationMethod>)),
    ],
    fields: &[
        "id",
        "billNumber",
        "status",
        "amount",
        "amountPaid",
        "calculationMethod",
        "createdAt",
        "updatedAt",
        "description",
        "type",
        "basedOnId",
        "basedOnUid",
        "dueDate",
        "issueDate",
        "isArchived",
        "percentage",
        "baseAmount",
        "account",
        "record",
        "billRunId",
        "billRunKind",
        "lineItems",
    ],
    archived: Some("isArchived"),
};

/// The fields PATCH may name; anything else is 400.
pub const UPDATABLE: [&str; 7] =
    ["calculationMethod", "lineItems", "percentage", "dueDate", "issueDate", "status", "description"];

const MAX_DESCRIPTION: usize = 4000;
const MAX_LINES: usize = 1000;

/// What DELETE does to a bill.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// A DRAFT bill is deleted.
    Delete,
    /// Any other bill is archived (`isArchived` true): the new bill.
    Archive(Box<Bill>),
    /// It is archived already: nothing changes.
    AlreadyArchived,
}

impl Bill {
    /// Recomputes every line's amount (quantity x unit price, to cents) and the bill's amount
    /// (the sum of its lines, or base amount x percentage / 100 to cents), in checked arithmetic:
    /// any amount outside +/-999,999,999,999,999.99 is 400 naming it.
    pub fn recomputed(&self) -> Result<Self, DomainError> {
        let out_of_range =
            |pointer: String| DomainError::field(pointer, "the computed amount lies outside +/-999,999,999,999,999.99");
        let mut bill = self.clone();
        let mut total = Some(Decimal::ZERO);
        for (i, line) in bill.line_items.iter_mut().enumerate() {
            line.amount = line_amount(line.quantity, line.unit_price)
                .ok_or_else(|| out_of_range(format!("/lineItems/{i}/amount")))?;
            total = total.and_then(|t| t.checked_add(line.amount));
        }
        let amount = match bill.calculation_method {
            CalculationMethod::LineItems => total,
            CalculationMethod::Percentage => match (bill.base_amount, bill.percentage) {
                (Some(base), Some(pct)) => {
                    base.checked_mul(pct).and_then(|p| p.checked_div(Decimal::ONE_HUNDRED)).map(cents)
                }
                _ => Some(Decimal::ZERO),
            },
        };
        bill.amount = money::amount(amount).ok_or_else(|| out_of_range("/amount".to_owned()))?;
        Ok(bill)
    }

    /// PAID, VOID and archived bills, and bills of a FINALIZED run, change not at all (rule 8).
    pub fn frozen(&self, run_finalized: bool) -> bool {
        run_finalized || self.is_archived || matches!(self.status, BillStatus::Paid | BillStatus::Void)
    }

    /// The run that invoices this bill: its kind and id.
    pub fn run(&self) -> Option<(RunKind, u64)> {
        self.bill_run_id.map(|id| (self.bill_run_kind.unwrap_or(RunKind::Regular), id))
    }

    /// DELETE: a DRAFT bill is deleted, any other archived; a bill of a FINALIZED run is frozen (409).
    pub fn removal(&self, run_status: Option<BillRunStatus>, now: OffsetDateTime) -> Result<Removal, DomainError> {
        if run_status.is_some_and(BillRunStatus::freezes_bills) {
            return Err(DomainError::conflict("the bill's run is FINALIZED: its bills change not at all"));
        }
        Ok(if self.is_archived {
            Removal::AlreadyArchived
        } else if self.status == BillStatus::Draft {
            Removal::Delete
        } else {
            Removal::Archive(Box::new(Bill { is_archived: true, updated_at: now, ..self.clone() }))
        })
    }
}

/// quantity x unit price to cents, if it lies within the amount bounds.
fn line_amount(quantity: Decimal, unit_price: Decimal) -> Option<Decimal> {
    money::amount(quantity.checked_mul(unit_price).map(cents))
}

// ---------------------------------------------------------------------------------------------
// Field parsing

fn field(name: &str, detail: impl Into<String>) -> DomainError {
    DomainError::field(format!("/{name}"), detail)
}

fn rule(n: u8, pointer: &str, detail: &str) -> DomainError {
    DomainError::field(pointer, format!("rule {n}: {detail}"))
}

/// An ISO 8601 date-time (RFC 3339 profile, with an offset), kept in UTC.
pub fn parse_date_time(value: &Value, pointer: &str) -> Result<OffsetDateTime, DomainError> {
    value
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
        .map(|t| t.to_offset(UtcOffset::UTC))
        .ok_or_else(|| rule(6, pointer, "must be an ISO 8601 date-time such as 2024-02-01T00:00:00Z"))
}

fn parse_description(value: &Value) -> Result<Option<String>, DomainError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= MAX_DESCRIPTION => Ok(Some(s.clone())),
        _ => Err(rule(7, "/description", "must be a string of at most 4000 characters, or null")),
    }
}

fn parse_percentage(value: &Value) -> Result<Decimal, DomainError> {
    money::bounded(value, MONEY)
        .filter(|p| *p >= Decimal::ZERO && *p <= Decimal::ONE_HUNDRED)
        .ok_or_else(|| rule(3, "/percentage", "percentage must be a number from 0 to 100"))
}

fn positive_id(value: Option<&Value>) -> Option<u64> {
    value.and_then(Value::as_u64).filter(|n| *n > 0)
}

/// A line as a request gives it: `id` only for a kept line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    pub id: Option<u64>,
    pub catalog_item_id: u64,
    pub description: Option<String>,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub unit_cost: Option<Decimal>,
}

/// An optional member: absent or null is `None`; a value `parse` refuses is an error at `at`.
fn optional<T>(
    errors: &mut Vec<FieldError>,
    at: String,
    value: Option<&Value>,
    parse: impl FnOnce(&Value) -> Option<T>,
    refusal: &str,
) -> Option<T> {
    match value {
        None | Some(Value::Null) => None,
        Some(v) => {
            let parsed = parse(v);
            if parsed.is_none() {
                errors.push(FieldError::new(at, refusal));
            }
            parsed
        }
    }
}

/// Line `i` of a request's `lineItems`, or `None` with its errors added to `errors`.
fn parse_line(i: usize, item: &Value, errors: &mut Vec<FieldError>) -> Option<LineInput> {
    let at = |name: &str| format!("/lineItems/{i}/{name}");
    let Value::Object(line) = item else {
        errors.push(FieldError::new(format!("/lineItems/{i}"), "must be an object"));
        return None;
    };
    let known = ["id", "catalogItemId", "description", "quantity", "unitPrice", "unitCost", "amount"];
    let unknown = line.keys().filter(|key| !known.contains(&key.as_str()));
    errors.extend(unknown.map(|key| FieldError::new(at(key), "unknown field")));
    let id = optional(
        errors,
        at("id"),
        line.get("id"),
        |v| positive_id(Some(v)),
        "must be the positive id of a line of this bill",
    );
    let catalog_item_id = positive_id(line.get("catalogItemId"));
    if catalog_item_id.is_none() {
        errors.push(FieldError::new(at("catalogItemId"), "is required: a positive integer"));
    }
    let text = |v: &Value| v.as_str().filter(|s| s.chars().count() <= MAX_DESCRIPTION).map(str::to_owned);
    let description = optional(
        errors,
        at("description"),
        line.get("description"),
        text,
        "must be a string of at most 4000 characters",
    );
    let quantity = line.get("quantity").and_then(|q| money::bounded(q, QUANTITY)).filter(|q| *q > Decimal::ZERO);
    if quantity.is_none() {
        errors.push(FieldError::new(at("quantity"), format!("is required: greater than 0, {}", QUANTITY.describe())));
    }
    let unit_price = line.get("unitPrice").and_then(|p| money::bounded(p, MONEY));
    if unit_price.is_none() {
        errors.push(FieldError::new(
            at("unitPrice"),
            format!("is required: {} (negative for discounts)", MONEY.describe()),
        ));
    }
    let cost = |v: &Value| money::bounded(v, MONEY).filter(|c| *c > Decimal::ZERO);
    let refusal = format!("must be greater than 0, {}", MONEY.describe());
    let unit_cost = optional(errors, at("unitCost"), line.get("unitCost"), cost, &refusal);
    if let (Some(quantity), Some(unit_price)) = (quantity, unit_price) {
        if line_amount(quantity, unit_price).is_none() {
            errors.push(FieldError::new(at("amount"), "quantity x unitPrice lies outside +/-999,999,999,999,999.99"));
            return None;
        }
    }
    Some(LineInput {
        id,
        catalog_item_id: catalog_item_id?,
        description,
        quantity: quantity?,
        unit_price: unit_price?,
        unit_cost,
    })
}

/// Parses `lineItems`: at least one line, each checked and named by index.
pub fn parse_lines(value: &Value) -> Result<Vec<LineInput>, DomainError> {
    let Some(items) = value.as_array() else {
        return Err(rule(2, "/lineItems", "lineItems must be an array of line items"));
    };
    if items.is_empty() {
        return Err(rule(2, "/lineItems", "a bill needs at least one line item"));
    }
    if items.len() > MAX_LINES {
        return Err(rule(2, "/lineItems", "a bill has at most 1000 line items"));
    }
    let mut errors = Vec::new();
    let lines: Vec<LineInput> =
        items.iter().enumerate().filter_map(|(i, item)| parse_line(i, item, &mut errors)).collect();
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(DomainError::fields(errors))
    }
}

/// How many lines of a request need new ids (so the edge can reserve them before the rules run).
pub fn new_lines_in(body: &Value) -> usize {
    body.get("lineItems")
        .and_then(Value::as_array)
        .map(|lines| lines.iter().filter(|l| l.get("id").is_none_or(Value::is_null)).count())
        .unwrap_or(0)
}

fn build_lines(
    inputs: Vec<LineInput>,
    existing: &[LineItem],
    new_ids: &mut dyn Iterator<Item = u64>,
) -> Result<Vec<LineItem>, DomainError> {
    let mut seen = std::collections::HashSet::new();
    let mut lines = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        let id = match input.id {
            Some(id) if existing.iter().any(|l| l.id == id) && seen.insert(id) => id,
            Some(id) => {
                return Err(rule(
                    2,
                    &format!("/lineItems/{i}/id"),
                    &format!("{id} is not a line of this bill (or is repeated)"),
                ));
            }
            None => new_ids.next().ok_or_else(|| DomainError::invalid("no line item id was reserved"))?,
        };
        lines.push(LineItem {
            id,
            catalog_item_id: input.catalog_item_id,
            description: input.description,
            quantity: input.quantity,
            unit_price: input.unit_price,
            unit_cost: input.unit_cost,
            // Recomputed (and bounded) by `Bill::recomputed` before the bill is used.
            amount: Decimal::ZERO,
        });
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------------
// Create

/// A validated create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBill {
    pub calculation_method: CalculationMethod,
    pub due_date: OffsetDateTime,
    pub lines: Vec<LineInput>,
    pub percentage: Option<Decimal>,
    pub base_amount: Option<Decimal>,
    pub description: Option<String>,
    pub bill_type: Option<BillType>,
    pub based_on_id: Option<i64>,
    pub based_on_uid: Option<i64>,
    pub account: Option<Account>,
    pub record: Option<RecordRef>,
    pub bill_run: Option<(RunKind, u64)>,
    pub issue: Option<(OffsetDateTime, BillStatus)>,
}

const CREATE_FIELDS: [&str; 15] = [
    "calculationMethod",
    "dueDate",
    "lineItems",
    "percentage",
    "baseAmount",
    "description",
    "type",
    "basedOnId",
    "basedOnUid",
    "account",
    "record",
    "billRunId",
    "billRunKind",
    "issueDate",
    "status",
];

/// A new bill's lines, percentage and base amount.
type Pricing = (Vec<LineInput>, Option<Decimal>, Option<Decimal>);
/// A new bill's account, record and run.
type References = (Option<Account>, Option<RecordRef>, Option<(RunKind, u64)>);

/// How a new bill is priced: its lines, or its percentage of a base amount (rules 2 and 3).
fn parse_pricing(f: &Map<String, Value>, method: CalculationMethod) -> Result<Pricing, DomainError> {
    let present = |name: &str| f.get(name).filter(|v| !v.is_null());
    Ok(match method {
        CalculationMethod::LineItems => {
            if present("percentage").is_some() || present("baseAmount").is_some() {
                return Err(rule(3, "/percentage", "percentage and baseAmount are only for PERCENTAGE bills"));
            }
            (parse_lines(present("lineItems").unwrap_or(&Value::Null))?, None, None)
        }
        CalculationMethod::Percentage => {
            if present("lineItems").is_some() {
                return Err(rule(2, "/lineItems", "lineItems are only for LINE_ITEMS bills"));
            }
            let pct = parse_percentage(present("percentage").unwrap_or(&Value::Null))?;
            let base = present("baseAmount")
                .and_then(|b| money::bounded(b, MONEY))
                .filter(|b| *b >= Decimal::ZERO)
                .ok_or_else(|| {
                    field("baseAmount", format!("is required for PERCENTAGE bills: 0 or more, {}", MONEY.describe()))
                })?;
            (Vec::new(), Some(pct), Some(cents(base)))
        }
    })
}

/// A new bill's issue: `issueDate` with `status` ISSUED, for LINE_ITEMS bills only, not after
/// `dueDate` (rules 4, 5 and 6).
fn parse_issue(
    f: &Map<String, Value>,
    method: CalculationMethod,
    due_date: OffsetDateTime,
) -> Result<Option<(OffsetDateTime, BillStatus)>, DomainError> {
    let present = |name: &str| f.get(name).filter(|v| !v.is_null());
    let issue = match (present("issueDate"), present("status")) {
        (None, None) => None,
        (None, Some(_)) => return Err(rule(5, "/status", "status may only be given together with issueDate")),
        (Some(_), _) if method != CalculationMethod::LineItems => {
            return Err(rule(4, "/issueDate", "issueDate is only for LINE_ITEMS bills"))
        }
        (Some(_), None) => return Err(rule(4, "/status", "with issueDate, status must be given too")),
        (Some(date), Some(status)) => {
            let date = parse_date_time(date, "/issueDate")?;
            match status.as_str().and_then(|s| s.parse().ok()) {
                Some(BillStatus::Issued) => Some((date, BillStatus::Issued)),
                Some(BillStatus::Draft) => return Err(rule(4, "/status", "with issueDate, status must not be DRAFT")),
                _ => return Err(rule(5, "/status", "a client may only set status ISSUED")),
            }
        }
    };
    if let Some((issued, _)) = issue {
        if due_date < issued {
            return Err(rule(6, "/dueDate", "dueDate must not be before issueDate"));
        }
    }
    Ok(issue)
}

/// A reference member: absent or null is `None`, else an object of `shape` with a positive id.
fn reference<T: serde::de::DeserializeOwned>(
    f: &Map<String, Value>,
    name: &str,
    id: fn(&T) -> u64,
    shape: &str,
) -> Result<Option<T>, DomainError> {
    match f.get(name).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(v) => serde_json::from_value::<T>(v.clone())
            .ok()
            .filter(|r| id(r) > 0)
            .map(Some)
            .ok_or_else(|| field(name, format!("must be {shape} or null"))),
    }
}

/// A new bill's references: its account, its record and the run it joins.
fn parse_references(f: &Map<String, Value>) -> Result<References, DomainError> {
    let present = |name: &str| f.get(name).filter(|v| !v.is_null());
    let account = reference::<Account>(f, "account", |a| a.id, r#"{"id": positive integer, "name": string}"#)?;
    let record = reference::<RecordRef>(f, "record", |r| r.id, r#"{"id": positive integer, "title": string}"#)?;
    let kind = match present("billRunKind") {
        None => RunKind::Regular,
        Some(v) => serde_json::from_value::<RunKind>(v.clone())
            .map_err(|_| field("billRunKind", "must be REGULAR or ADHOC"))?,
    };
    let bill_run = match present("billRunId") {
        None if present("billRunKind").is_some() => return Err(field("billRunKind", "goes with billRunId")),
        None => None,
        Some(v) => Some((kind, positive_id(Some(v)).ok_or_else(|| field("billRunId", "must be a positive integer"))?)),
    };
    Ok((account, record, bill_run))
}

impl NewBill {
    pub fn parse(body: &Value) -> Result<Self, DomainError> {
        let Value::Object(f) = body else {
            return Err(DomainError::field("", "the body must be a JSON object"));
        };
        let unknown: Vec<FieldError> = f
            .keys()
            .filter(|k| !CREATE_FIELDS.contains(&k.as_str()))
            .map(|k| FieldError::new(format!("/{k}"), "read-only or unknown field"))
            .collect();
        if !unknown.is_empty() {
            return Err(DomainError::fields(unknown));
        }
        let present = |name: &str| f.get(name).filter(|v| !v.is_null());
        let calculation_method = present("calculationMethod")
            .and_then(Value::as_str)
            .and_then(|m| m.parse::<CalculationMethod>().ok())
            .ok_or_else(|| rule(1, "/calculationMethod", "calculationMethod is required: LINE_ITEMS or PERCENTAGE"))?;
        let due_date = parse_date_time(present("dueDate").ok_or_else(|| field("dueDate", "is required"))?, "/dueDate")?;
        let (lines, percentage, base_amount) = parse_pricing(f, calculation_method)?;
        if lines.iter().any(|l| l.id.is_some()) {
            return Err(field("lineItems", "new lines have no id"));
        }
        let issue = parse_issue(f, calculation_method, due_date)?;
        let description = parse_description(f.get("description").unwrap_or(&Value::Null))?;
        let bill_type = match present("type") {
            None => None,
            Some(Value::String(s)) if s == "INVOICE" => Some(BillType::Invoice),
            Some(Value::String(s)) if s == "CREDIT_NOTE" => Some(BillType::CreditNote),
            Some(_) => return Err(field("type", "must be INVOICE, CREDIT_NOTE or null")),
        };
        let int_or_null = |name: &str| -> Result<Option<i64>, DomainError> {
            match present(name) {
                None => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| field(name, "must be an integer or null")),
            }
        };
        let (account, record, bill_run) = parse_references(f)?;
        Ok(Self {
            calculation_method,
            due_date,
            lines,
            percentage,
            base_amount,
            description,
            bill_type,
            based_on_id: int_or_null("basedOnId")?,
            based_on_uid: int_or_null("basedOnUid")?,
            account,
            record,
            bill_run,
            issue,
        })
    }

    pub fn into_bill(
        self,
        id: u64,
        bill_number: u64,
        line_ids: &mut dyn Iterator<Item = u64>,
        now: OffsetDateTime,
    ) -> Result<Bill, DomainError> {
        let line_items = build_lines(self.lines, &[], line_ids)?;
        let (issue_date, status) = match self.issue {
            Some((date, status)) => (Some(date), status),
            None => (None, BillStatus::Draft),
        };
        let bill = Bill {
            id,
            bill_number,
            status,
            amount: Decimal::ZERO,
            amount_paid: Decimal::ZERO,
            calculation_method: self.calculation_method,
            created_at: now,
            updated_at: now,
            description: self.description,
            bill_type: self.bill_type,
            based_on_id: self.based_on_id,
            based_on_uid: self.based_on_uid,
            due_date: self.due_date,
            issue_date,
            is_archived: false,
            percentage: self.percentage,
            base_amount: self.base_amount,
            account: self.account,
            record: self.record,
            bill_run_id: self.bill_run.map(|(_, id)| id),
            bill_run_kind: self.bill_run.map(|(kind, _)| kind),
            line_items,
        };
        bill.recomputed()
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH: the eight rules

/// Rule 1: the method, with the new method's data in the same request.
fn update_method(f: &Map<String, Value>, bill: &Bill, next: &mut Bill) -> Result<(), DomainError> {
    if let Some(value) = f.get("calculationMethod") {
        let method = value
            .as_str()
            .and_then(|m| m.parse::<CalculationMethod>().ok())
            .ok_or_else(|| rule(1, "/calculationMethod", "calculationMethod must be LINE_ITEMS or PERCENTAGE"))?;
        if method != bill.calculation_method {
            match method {
                CalculationMethod::LineItems if !f.contains_key("lineItems") => {
                    return Err(rule(1, "/lineItems", "changing to LINE_ITEMS needs lineItems in the same request"));
                }
                CalculationMethod::Percentage if !f.contains_key("percentage") => {
                    return Err(rule(1, "/percentage", "changing to PERCENTAGE needs percentage in the same request"));
                }
                CalculationMethod::Percentage if bill.base_amount.is_none() => {
                    return Err(rule(1, "/calculationMethod", "changing to PERCENTAGE needs a bill with a baseAmount"));
                }
                CalculationMethod::LineItems => next.percentage = None,
                CalculationMethod::Percentage => next.line_items.clear(),
            }
            next.calculation_method = method;
        }
    }
    Ok(())
}

/// Rules 4 and 5: issueDate and status together, on LINE_ITEMS bills, status ISSUED only.
fn update_issue(f: &Map<String, Value>, bill: &Bill, run_finalized: bool, next: &mut Bill) -> Result<(), DomainError> {
    let method = next.calculation_method;
    match (f.get("issueDate"), f.get("status")) {
        (None, None) => {}
        (None, Some(_)) => return Err(rule(5, "/status", "status may only be given together with issueDate")),
        (Some(_), _) if method != CalculationMethod::LineItems => {
            return Err(rule(4, "/issueDate", "issueDate is only for LINE_ITEMS bills"));
        }
        (Some(_), None) => return Err(rule(4, "/status", "with issueDate, status must be given too")),
        (Some(date), Some(status)) => {
            match status.as_str().and_then(|s| s.parse().ok()) {
                Some(BillStatus::Draft) => return Err(rule(4, "/status", "with issueDate, status must not be DRAFT")),
                Some(BillStatus::Issued) => {}
                Some(other) => {
                    return Err(rule(5, "/status", &format!("{} is not set by a client; only ISSUED is", other.name())))
                }
                None => return Err(rule(5, "/status", "status must be ISSUED")),
            }
            let reissue = bill.status == BillStatus::Issued && bill.amount_paid.is_zero();
            if bill.status != BillStatus::Draft && !reissue && !bill.frozen(run_finalized) {
                return Err(rule(
                    5,
                    "/status",
                    &format!(
                        "a {} bill cannot be issued (ISSUED is set from DRAFT, or again while nothing is paid)",
                        bill.status.name()
                    ),
                ));
            }
            next.issue_date = Some(parse_date_time(date, "/issueDate")?);
            next.status = BillStatus::Issued;
        }
    }
    Ok(())
}

/// Rule 8: what may change in which state. Whether anything changed (refused when it may not).
fn check_changes(bill: &Bill, next: &Bill, run_finalized: bool) -> Result<bool, DomainError> {
    let pricing_changed = next.calculation_method != bill.calculation_method
        || next.line_items != bill.line_items
        || next.percentage != bill.percentage
        || next.amount != bill.amount;
    let terms_changed = next.description != bill.description || next.due_date != bill.due_date;
    let issue_changed = next.status != bill.status || next.issue_date != bill.issue_date;
    if !pricing_changed && !terms_changed && !issue_changed {
        return Ok(false);
    }
    if bill.frozen(run_finalized) {
        let why = if run_finalized {
            "its bill run is FINALIZED".to_owned()
        } else if bill.is_archived {
            "it is archived".to_owned()
        } else {
            format!("it is {}", bill.status.name())
        };
        return Err(rule(8, "", &format!("this bill changes not at all: {why}")));
    }
    if pricing_changed && bill.status != BillStatus::Draft {
        return Err(rule(8, "", "calculationMethod, lineItems and percentage change only while the bill is DRAFT"));
    }
    if terms_changed && !matches!(bill.status, BillStatus::Draft | BillStatus::Issued) {
        return Err(rule(8, "", "description and dueDate change only while the bill is DRAFT or ISSUED"));
    }
    Ok(true)
}

/// Applies a partial update under rules 1 to 8. `Ok(None)` when nothing changes (nothing is
/// written). `new_line_ids` supplies ids for lines sent without one.
pub fn apply_update(
    bill: &Bill,
    body: &Value,
    run_finalized: bool,
    new_line_ids: &mut dyn Iterator<Item = u64>,
    now: OffsetDateTime,
) -> Result<Option<Bill>, DomainError> {
    let Value::Object(f) = body else {
        return Err(DomainError::field("", "the body must be a JSON object"));
    };
    let unknown: Vec<FieldError> = f
        .keys()
        .filter(|k| !UPDATABLE.contains(&k.as_str()))
        .map(|k| FieldError::new(format!("/{k}"), "cannot be updated: read-only or unknown field"))
        .collect();
    if !unknown.is_empty() {
        return Err(DomainError::fields(unknown));
    }
    let mut next = bill.clone();

    update_method(f, bill, &mut next)?;
    let method = next.calculation_method;

    // Rule 2: lines replace the whole list, on LINE_ITEMS bills only.
    if let Some(value) = f.get("lineItems") {
        if method != CalculationMethod::LineItems {
            return Err(rule(2, "/lineItems", "lineItems are only for LINE_ITEMS bills"));
        }
        next.line_items = build_lines(parse_lines(value)?, &bill.line_items, new_line_ids)?;
    }
    // Rule 3: percentage on PERCENTAGE bills only, 0 to 100.
    if let Some(value) = f.get("percentage") {
        if method != CalculationMethod::Percentage {
            return Err(rule(3, "/percentage", "percentage is only for PERCENTAGE bills"));
        }
        next.percentage = Some(parse_percentage(value)?);
    }
    update_issue(f, bill, run_finalized, &mut next)?;
    // Rule 6: date-times, and dueDate not before issueDate.
    if let Some(value) = f.get("dueDate") {
        next.due_date = parse_date_time(value, "/dueDate")?;
    }
    if next.issue_date.is_some_and(|issued| next.due_date < issued) {
        return Err(rule(6, "/dueDate", "dueDate must not be before issueDate"));
    }
    // Rule 7: description, or null to clear it.
    if let Some(value) = f.get("description") {
        next.description = parse_description(value)?;
    }

    let next = next.recomputed()?;
    if !check_changes(bill, &next, run_finalized)? {
        return Ok(None);
    }
    let mut next = next;
    next.updated_at = now;
    Ok(Some(next))
}

// ---------------------------------------------------------------------------------------------
// Bills in a bill run's stages

/// What `stage` does to one bill of the run, if anything. `invoice_date` is the run's. A stored
/// bill passed the amount bounds when it was written, so recomputing it stays inside them; if it
/// ever did not, the stage leaves the bill as it is rather than fail the run.
pub fn stage_effect(stage: SummaryStatus, bill: &Bill, invoice_date: Date, now: OffsetDateTime) -> Option<Bill> {
    if bill.is_archived || bill.status != BillStatus::Draft {
        return None;
    }
    let next = match stage {
        SummaryStatus::DraftInvoices => bill.recomputed().ok()?,
        SummaryStatus::FullInvoices if bill.calculation_method == CalculationMethod::LineItems => {
            let mut issued = bill.recomputed().ok()?;
            issued.status = BillStatus::Issued;
            issued.issue_date = Some(invoice_date.midnight().assume_utc());
            issued
        }
        _ => return None,
    };
    (next != *bill).then_some(Bill { updated_at: now, ..next })
}

/// REPORTING's figures over a run's bills: revenue and the largest bill. Archived and VOID bills
/// do not count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    #[serde(with = "number")]
    pub revenue: Decimal,
    #[serde(with = "option_number")]
    pub max_invoice_value: Option<Decimal>,
    pub max_invoice_customer_id: Option<u64>,
}

impl Report {
    pub fn add(&mut self, bill: &Bill) {
        if bill.is_archived || bill.status == BillStatus::Void {
            return;
        }
        self.revenue = self.revenue.saturating_add(bill.amount);
        if self.max_invoice_value.is_none_or(|max| bill.amount > max) {
            self.max_invoice_value = Some(bill.amount);
            self.max_invoice_customer_id = bill.account.as_ref().map(|a| a.id);
        }
    }

    /// Revenue in whole major units, rounded down.
    pub fn revenue_in_major_currency(&self) -> i64 {
        use rust_decimal::prelude::ToPrimitive;
        self.revenue.floor().to_i64().unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests;
