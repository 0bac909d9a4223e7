//! Bills (docs/bills.md): one invoice document whose amount is the sum of its line items or a
//! percentage of a base amount. The model, create validation, the eight PATCH rules, and what
//! each bill-run stage does to a bill, all as pure functions.

use super::list::{filter, names, ListSpec, Values};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime, UtcOffset};

use super::bill_run::{BillRunStatus, RunKind, SummaryStatus};
use super::check::{checked, whole, Check, Obj};
use super::key::{Id, IdType, Kind};
use super::money::{self, cents, number, option_number, MONEY, QUANTITY};
use super::resource::Resource;
use super::DomainError;

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
    /// Whether the account is a person or an organization, when the client says (a billing
    /// run's `statement_options.customer_type` compares with it). Shown only when set.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub account_type: Option<AccountType>,
}

/// An account's type, as a billing run's `customer_type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    Contact,
    Organization,
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
    /// Set by a run's stage that could not process the bill (it went on without it); cleared
    /// when a stage next processes it. Shown only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<SetAside>,
    /// The business unit the bill belongs to, when the client says (a billing run's
    /// `statement_options.business_unit_ids` compare with it). Shown only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_unit_id: Option<String>,
}

/// Why a run's stage went on without a bill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetAside {
    pub bill_run_id: u64,
    pub stage: SummaryStatus,
    pub reason: String,
}

impl Resource for Bill {
    const KIND: Kind = Kind::new("BILL", IdType::Counter);

    fn id(&self) -> Id {
        Id::Int(self.id)
    }

    const LIST: Option<&'static ListSpec> = Some(&LIST);

    /// The bills of one run, for the stage worker.
    fn group(&self) -> Option<String> {
        self.run().map(|(kind, id)| kind.bill_group(id, super::segment::segment_of(self.id)))
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
        "setAside",
        "businessUnitId",
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
// Field parsing: every member read by the domain's one validator ([`Check`]), then the rules
// across members.

fn rule(n: u8, pointer: &str, detail: &str) -> DomainError {
    DomainError::field(pointer, format!("rule {n}: {detail}"))
}

const METHOD: &str = "LINE_ITEMS or PERCENTAGE";
const DATE_TIME: &str = "an ISO 8601 date-time such as 2024-02-01T00:00:00Z";
const DESCRIPTION: &str = "a string of at most 4000 characters, or null";
const PERCENTAGE: &str = "a number from 0 to 100";
const STATUS: &str = "ISSUED, the one status a client sets";
const ACCOUNT: &str =
    r#"{"id": positive integer, "name": string, "type": "contact" or "organization" (optional)} or null"#;
const BUSINESS_UNIT: &str = "a string of 1 to 100 characters or null";

/// A business unit id: 1 to 100 characters.
fn business_unit(value: &Value) -> Option<String> {
    value.as_str().filter(|s| (1..=super::check::MAX_ID).contains(&s.chars().count())).map(str::to_owned)
}
const RECORD: &str = r#"{"id": positive integer, "title": string} or null"#;

/// An ISO 8601 date-time (RFC 3339 profile, with an offset), kept in UTC.
fn date_time(value: &Value) -> Option<OffsetDateTime> {
    value
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
        .map(|t| t.to_offset(UtcOffset::UTC))
}

fn text(value: &Value) -> Option<String> {
    value.as_str().filter(|s| s.chars().count() <= MAX_DESCRIPTION).map(str::to_owned)
}

fn percentage(value: &Value) -> Option<Decimal> {
    money::bounded(value, MONEY).filter(|p| *p >= Decimal::ZERO && *p <= Decimal::ONE_HUNDRED)
}

fn method(value: &Value) -> Option<CalculationMethod> {
    value.as_str()?.parse().ok()
}

fn status(value: &Value) -> Option<BillStatus> {
    value.as_str()?.parse().ok()
}

fn positive(value: &Value) -> Option<u64> {
    whole(value).filter(|n| *n > 0)
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

const LINE_FIELDS: [&str; 6] = ["id", "catalogItemId", "description", "quantity", "unitPrice", "unitCost"];

/// Line `i` of a request's `lineItems` (its computed `amount`, if sent, is ignored).
fn parse_line(check: &mut Check, i: usize, item: &Value) -> Option<LineInput> {
    let line = check.object(item, format!("/lineItems/{i}"), &LINE_FIELDS, &["amount"])?;
    let id = check.value(&line, "id", false, positive, "the positive id of a line of this bill");
    let catalog_item_id = check.value(&line, "catalogItemId", true, positive, "a positive integer");
    let description = check.value(&line, "description", false, text, "a string of at most 4000 characters");
    let positive_quantity = |q: &Value| money::bounded(q, QUANTITY).filter(|q| *q > Decimal::ZERO);
    let quantity =
        check.value(&line, "quantity", true, positive_quantity, &format!("greater than 0, {}", QUANTITY.describe()));
    let price = |p: &Value| money::bounded(p, MONEY);
    let unit_price =
        check.value(&line, "unitPrice", true, price, &format!("{} (negative for discounts)", MONEY.describe()));
    let cost = |c: &Value| money::bounded(c, MONEY).filter(|c| *c > Decimal::ZERO);
    let unit_cost = check.value(&line, "unitCost", false, cost, &format!("greater than 0, {}", MONEY.describe()));
    let (quantity, unit_price) = (quantity?, unit_price?);
    if line_amount(quantity, unit_price).is_none() {
        check.fail(line.pointer("amount"), "quantity x unitPrice lies outside +/-999,999,999,999,999.99");
        return None;
    }
    Some(LineInput { id, catalog_item_id: catalog_item_id?, description, quantity, unit_price, unit_cost })
}

/// `lineItems`: 1 to 1,000 lines (rule 2), each checked and named by index. `required`: a `null`
/// is refused rather than read as absent (a PATCH that sends it).
fn parse_lines(check: &mut Check, obj: &Obj<'_>, required: bool) -> Option<Vec<LineInput>> {
    let array = |v: &'_ Value| v.as_array().filter(|lines| (1..=MAX_LINES).contains(&lines.len())).cloned();
    let items = check.value(obj, "lineItems", required, array, (2, "an array of 1 to 1000 line items"))?;
    let lines: Vec<LineInput> = items.iter().enumerate().filter_map(|(i, item)| parse_line(check, i, item)).collect();
    (lines.len() == items.len()).then_some(lines)
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

/// Rules 4 and 5, for a create and a PATCH alike: `issueDate` and `status` together, on
/// LINE_ITEMS bills, status ISSUED only. The issue date asked for, if any.
fn issue_rules(
    method: CalculationMethod,
    issue_date: Option<OffsetDateTime>,
    status: Option<BillStatus>,
) -> Result<Option<OffsetDateTime>, DomainError> {
    match (issue_date, status) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(rule(5, "/status", "status may only be given together with issueDate")),
        (Some(_), _) if method != CalculationMethod::LineItems => {
            Err(rule(4, "/issueDate", "issueDate is only for LINE_ITEMS bills"))
        }
        (Some(_), None) => Err(rule(4, "/status", "with issueDate, status must be given too")),
        (Some(_), Some(BillStatus::Draft)) => Err(rule(4, "/status", "with issueDate, status must not be DRAFT")),
        (Some(date), Some(BillStatus::Issued)) => Ok(Some(date)),
        (Some(_), Some(other)) => {
            Err(rule(5, "/status", &format!("{} is not set by a client; only ISSUED is", other.name())))
        }
    }
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
    pub business_unit_id: Option<String>,
}

const CREATE_FIELDS: [&str; 16] = [
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
    "businessUnitId",
];

/// A new bill's lines, percentage and base amount.
type Pricing = (Vec<LineInput>, Option<Decimal>, Option<Decimal>);

/// How a new bill is priced: its lines, or its percentage of a base amount (rules 2 and 3).
fn pricing(
    method: CalculationMethod,
    lines: Option<Vec<LineInput>>,
    percentage: Option<Decimal>,
    base_amount: Option<Decimal>,
) -> Result<Pricing, DomainError> {
    match method {
        CalculationMethod::LineItems => {
            if percentage.is_some() || base_amount.is_some() {
                return Err(rule(3, "/percentage", "percentage and baseAmount are only for PERCENTAGE bills"));
            }
            let lines = lines.ok_or_else(|| rule(2, "/lineItems", "a LINE_ITEMS bill needs lineItems"))?;
            if lines.iter().any(|l| l.id.is_some()) {
                return Err(DomainError::field("/lineItems", "new lines have no id"));
            }
            Ok((lines, None, None))
        }
        CalculationMethod::Percentage => {
            if lines.is_some() {
                return Err(rule(2, "/lineItems", "lineItems are only for LINE_ITEMS bills"));
            }
            let percentage = percentage.ok_or_else(|| rule(3, "/percentage", "a PERCENTAGE bill needs percentage"))?;
            let base = base_amount.ok_or_else(|| {
                DomainError::field("/baseAmount", "is required for PERCENTAGE bills: 0 or more, as a number")
            })?;
            Ok((Vec::new(), Some(percentage), Some(cents(base))))
        }
    }
}

/// A reference member (an account, a record): an object of `shape` with a positive id, or null.
fn reference<T: serde::de::DeserializeOwned>(id: fn(&T) -> u64) -> impl Fn(&Value) -> Option<T> {
    move |value| T::deserialize(value).ok().filter(|r| id(r) > 0)
}

fn bill_type(value: &Value) -> Option<BillType> {
    match value.as_str()? {
        "INVOICE" => Some(BillType::Invoice),
        "CREDIT_NOTE" => Some(BillType::CreditNote),
        _ => None,
    }
}

/// The run a new bill joins: `billRunId`, with `billRunKind` (REGULAR by default).
fn parse_run(check: &mut Check, obj: &Obj<'_>) -> Option<(RunKind, u64)> {
    let kind = |v: &Value| RunKind::deserialize(v).ok();
    let kind = check.value(obj, "billRunKind", false, kind, "REGULAR or ADHOC");
    let id = check.value(obj, "billRunId", false, positive, "a positive integer");
    if id.is_none() && kind.is_some() {
        check.fail(obj.pointer("billRunKind"), "goes with billRunId");
    }
    Some((kind.unwrap_or(RunKind::Regular), id?))
}

impl NewBill {
    pub fn parse(body: &Value) -> Result<Self, DomainError> {
        let mut check = Check::new();
        let obj = check.root(body, &CREATE_FIELDS)?;
        let method = check.value(&obj, "calculationMethod", true, method, (1, METHOD));
        let due_date = check.value(&obj, "dueDate", true, date_time, (6, DATE_TIME));
        let lines = parse_lines(&mut check, &obj, false);
        let percentage = check.value(&obj, "percentage", false, percentage, (3, PERCENTAGE));
        let base = |b: &Value| money::bounded(b, MONEY).filter(|b| *b >= Decimal::ZERO);
        let base_amount = check.value(&obj, "baseAmount", false, base, &format!("0 or more, {}", MONEY.describe()));
        let issue_date = check.value(&obj, "issueDate", false, date_time, (6, DATE_TIME));
        let status = check.value(&obj, "status", false, status, (5, STATUS));
        let description = check.value(&obj, "description", false, text, (7, DESCRIPTION));
        let bill_type = check.value(&obj, "type", false, bill_type, "INVOICE, CREDIT_NOTE or null");
        let based_on_id = check.value(&obj, "basedOnId", false, Value::as_i64, "an integer or null");
        let based_on_uid = check.value(&obj, "basedOnUid", false, Value::as_i64, "an integer or null");
        let account = check.value(&obj, "account", false, reference::<Account>(|a| a.id), ACCOUNT);
        let record = check.value(&obj, "record", false, reference::<RecordRef>(|r| r.id), RECORD);
        let bill_run = parse_run(&mut check, &obj);
        let business_unit_id = check.value(&obj, "businessUnitId", false, business_unit, BUSINESS_UNIT);
        check.stop()?;
        let (method, due_date) = (checked(method)?, checked(due_date)?);
        let (lines, percentage, base_amount) = pricing(method, lines, percentage, base_amount)?;
        let issue = issue_rules(method, issue_date, status)?;
        if issue.is_some_and(|issued| due_date < issued) {
            return Err(rule(6, "/dueDate", "dueDate must not be before issueDate"));
        }
        Ok(Self {
            calculation_method: method,
            due_date,
            lines,
            percentage,
            base_amount,
            description,
            bill_type,
            based_on_id,
            based_on_uid,
            account,
            record,
            bill_run,
            issue: issue.map(|date| (date, BillStatus::Issued)),
            business_unit_id,
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
            set_aside: None,
            business_unit_id: self.business_unit_id,
            line_items,
        };
        bill.recomputed()
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH: the eight rules

/// A PATCH body, each member checked alone. A member sent as `null` is refused where it cannot
/// be cleared (all but `description`).
struct UpdateInput {
    method: Option<CalculationMethod>,
    lines: Option<Vec<LineInput>>,
    percentage: Option<Decimal>,
    issue_date: Option<OffsetDateTime>,
    status: Option<BillStatus>,
    due_date: Option<OffsetDateTime>,
    description: Option<Option<String>>,
}

impl UpdateInput {
    fn parse(body: &Value) -> Result<Self, DomainError> {
        let mut check = Check::new();
        let obj = check.root(body, &UPDATABLE)?;
        let sent = |name: &str| obj.map.contains_key(name);
        let input = Self {
            method: check.value(&obj, "calculationMethod", sent("calculationMethod"), method, (1, METHOD)),
            lines: parse_lines(&mut check, &obj, sent("lineItems")),
            percentage: check.value(&obj, "percentage", sent("percentage"), percentage, (3, PERCENTAGE)),
            issue_date: check.value(&obj, "issueDate", sent("issueDate"), date_time, (6, DATE_TIME)),
            status: check.value(&obj, "status", sent("status"), status, (5, STATUS)),
            due_date: check.value(&obj, "dueDate", sent("dueDate"), date_time, (6, DATE_TIME)),
            description: sent("description").then(|| check.value(&obj, "description", false, text, (7, DESCRIPTION))),
        };
        check.stop()?;
        Ok(input)
    }
}

/// Rule 1: the method, with the new method's data in the same request.
fn update_method(input: &UpdateInput, bill: &Bill, next: &mut Bill) -> Result<(), DomainError> {
    let Some(method) = input.method.filter(|m| *m != bill.calculation_method) else { return Ok(()) };
    match method {
        CalculationMethod::LineItems if input.lines.is_none() => {
            return Err(rule(1, "/lineItems", "changing to LINE_ITEMS needs lineItems in the same request"));
        }
        CalculationMethod::Percentage if input.percentage.is_none() => {
            return Err(rule(1, "/percentage", "changing to PERCENTAGE needs percentage in the same request"));
        }
        CalculationMethod::Percentage if bill.base_amount.is_none() => {
            return Err(rule(1, "/calculationMethod", "changing to PERCENTAGE needs a bill with a baseAmount"));
        }
        CalculationMethod::LineItems => next.percentage = None,
        CalculationMethod::Percentage => next.line_items.clear(),
    }
    next.calculation_method = method;
    Ok(())
}

/// Rules 4 and 5 on a stored bill: ISSUED is set from DRAFT, or again while nothing is paid.
fn update_issue(input: &UpdateInput, bill: &Bill, run_finalized: bool, next: &mut Bill) -> Result<(), DomainError> {
    let Some(date) = issue_rules(next.calculation_method, input.issue_date, input.status)? else { return Ok(()) };
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
    next.issue_date = Some(date);
    next.status = BillStatus::Issued;
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
    let input = UpdateInput::parse(body)?;
    let mut next = bill.clone();
    update_method(&input, bill, &mut next)?;
    let method = next.calculation_method;
    // Rule 2: lines replace the whole list, on LINE_ITEMS bills only.
    if let Some(lines) = input.lines.clone() {
        if method != CalculationMethod::LineItems {
            return Err(rule(2, "/lineItems", "lineItems are only for LINE_ITEMS bills"));
        }
        next.line_items = build_lines(lines, &bill.line_items, new_line_ids)?;
    }
    // Rule 3: percentage on PERCENTAGE bills only.
    if let Some(percentage) = input.percentage {
        if method != CalculationMethod::Percentage {
            return Err(rule(3, "/percentage", "percentage is only for PERCENTAGE bills"));
        }
        next.percentage = Some(percentage);
    }
    update_issue(&input, bill, run_finalized, &mut next)?;
    // Rule 6: dueDate not before issueDate.
    next.due_date = input.due_date.unwrap_or(next.due_date);
    if next.issue_date.is_some_and(|issued| next.due_date < issued) {
        return Err(rule(6, "/dueDate", "dueDate must not be before issueDate"));
    }
    // Rule 7: description, or null to clear it.
    if let Some(description) = input.description {
        next.description = description;
    }
    let next = next.recomputed()?;
    if !check_changes(bill, &next, run_finalized)? {
        return Ok(None);
    }
    Ok(Some(Bill { updated_at: now, ..next }))
}

// ---------------------------------------------------------------------------------------------
// Bills in a bill run's stages

/// What `stage` of run `run_id` does to one of its bills: the bill to write (`None`: nothing
/// changes), and whether the stage sets it aside (a bill it cannot process, whose amount cannot
/// be computed: the stage goes on without it and the bill says why, [`SetAside`]). A bill the
/// same stage set aside before and now processes loses its `setAside`.
pub fn stage_effect(
    stage: SummaryStatus,
    bill: &Bill,
    run_id: u64,
    invoice_date: Date,
    now: OffsetDateTime,
) -> (Option<Bill>, bool) {
    let (next, aside) = match stage_change(stage, bill, invoice_date) {
        Ok(next) => {
            let set_aside = bill.set_aside.clone().filter(|a| a.stage != stage || a.bill_run_id != run_id);
            (Bill { set_aside, ..next }, false)
        }
        Err(error) => {
            let set_aside = SetAside { bill_run_id: run_id, stage, reason: error.to_string() };
            (Bill { set_aside: Some(set_aside), ..bill.clone() }, true)
        }
    };
    ((next != *bill).then_some(Bill { updated_at: now, ..next }), aside)
}

/// The bill as `stage` leaves it: DRAFT_INVOICES recomputes a draft's amounts, FULL_INVOICES
/// issues a draft priced from line items; archived and non-draft bills stay as they are.
fn stage_change(stage: SummaryStatus, bill: &Bill, invoice_date: Date) -> Result<Bill, DomainError> {
    if bill.is_archived || bill.status != BillStatus::Draft {
        return Ok(bill.clone());
    }
    match stage {
        SummaryStatus::DraftInvoices => bill.recomputed(),
        SummaryStatus::FullInvoices if bill.calculation_method == CalculationMethod::LineItems => {
            let mut issued = bill.recomputed()?;
            issued.status = BillStatus::Issued;
            issued.issue_date = Some(invoice_date.midnight().assume_utc());
            Ok(issued)
        }
        _ => Ok(bill.clone()),
    }
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
    /// The id of the largest bill: of equal bills the lowest id counts, so that segments merged
    /// in any order name the bill one walk in id order would.
    #[serde(default)]
    pub max_invoice_bill_id: Option<u64>,
}

impl Report {
    pub fn add(&mut self, bill: &Bill) {
        if bill.is_archived || bill.status == BillStatus::Void {
            return;
        }
        let largest = Self {
            revenue: bill.amount,
            max_invoice_value: Some(bill.amount),
            max_invoice_customer_id: bill.account.as_ref().map(|a| a.id),
            max_invoice_bill_id: Some(bill.id),
        };
        self.merge(&largest);
    }

    /// Adds another part's figures (another segment's): revenues add, the largest bill wins.
    pub fn merge(&mut self, other: &Self) {
        self.revenue = self.revenue.saturating_add(other.revenue);
        let Some(value) = other.max_invoice_value else { return };
        let wins = match self.max_invoice_value {
            None => true,
            Some(max) => value > max || (value == max && other.max_invoice_bill_id < self.max_invoice_bill_id),
        };
        if wins {
            self.max_invoice_value = Some(value);
            self.max_invoice_customer_id = other.max_invoice_customer_id;
            self.max_invoice_bill_id = other.max_invoice_bill_id;
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
