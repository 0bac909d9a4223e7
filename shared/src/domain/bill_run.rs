//! Bill runs and adhoc bill runs: the models, their validation, the state machine of
//! docs/bill-runs.md and the stage worker's steps, all as pure functions.

use super::list::{filter, names, ListSpec, Values};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::Date;

use super::bill::Report;
use super::check::{whole, whole_numbers, Check, Obj};
use super::dates::{self, iso_date};
use super::key::{Id, IdType, Kind};
use super::patch::{changed_members, Patch};
use super::resource::Resource;
use super::DomainError;

/// At most this many ids in each inventory id array of an adhoc run.
pub const MAX_INVENTORY_IDS: usize = 1000;
/// `periods` of a schedule move lies within +/- this (a century of monthly runs).
pub const MAX_PERIODS: i64 = 1200;

/// The one enum for the kind of run: the two kinds share the state machine but not all fields or
/// rules, and a bill names the kind of run it belongs to (`billRunKind`: REGULAR or ADHOC).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum RunKind {
    Regular,
    Adhoc,
}

impl RunKind {
    pub fn noun(self) -> &'static str {
        match self {
            Self::Regular => "bill run",
            Self::Adhoc => "adhoc bill run",
        }
    }

    /// The stored kind of this kind of run.
    pub fn kind(self) -> Kind {
        match self {
            Self::Regular => BillRun::KIND,
            Self::Adhoc => AdhocBillRun::KIND,
        }
    }

    /// What the store groups of one run of this kind start with.
    pub fn bill_group_prefix(self, run_id: u64) -> String {
        match self {
            Self::Regular => format!("RUN#{run_id}"),
            Self::Adhoc => format!("ADHOC_RUN#{run_id}"),
        }
    }

    /// The store group of the bills of one run of this kind in bill group `segment`
    /// ([`super::segment::segment_of`]).
    pub fn bill_group(self, run_id: u64, segment: u8) -> String {
        format!("{}#S{segment}", self.bill_group_prefix(run_id))
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
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum BillRunStatus {
    Open,
    Closed,
    Finalized,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SummaryStatus {
    Properties,
    Starting,
    Reporting,
    DraftInvoices,
    FullInvoices,
    Distribution,
    CombiningInvoices,
    Payment,
    ReactivatingRpis,
    Archiving,
    Finished,
}

impl SummaryStatus {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether the stage does something to the run's bills (the worker walks them only then):
    /// REPORTING reads them, DRAFT_INVOICES and FULL_INVOICES change them.
    pub fn walks_bills(self) -> bool {
        matches!(self, Self::Reporting | Self::DraftInvoices | Self::FullInvoices)
    }

    /// Stages only the system sets; a client asking for one gets 400.
    pub fn system_only(self) -> bool {
        !matches!(self, Self::Reporting | Self::DraftInvoices | Self::FullInvoices | Self::Distribution)
    }

    /// The system stage that follows this one once it is done, after DISTRIBUTION.
    fn next_system_stage(self) -> Option<Self> {
        match self {
            Self::Distribution => Some(Self::CombiningInvoices),
            Self::CombiningInvoices => Some(Self::Payment),
            Self::Payment => Some(Self::ReactivatingRpis),
            Self::ReactivatingRpis => Some(Self::Archiving),
            Self::Archiving => Some(Self::Finished),
            _ => None,
        }
    }
}

impl BillRunStatus {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// A bill joins a run only while the run is OPEN.
    pub fn admit_bill(self, noun: &str, run_id: u64) -> Result<(), DomainError> {
        match self {
            Self::Open => Ok(()),
            other => {
                Err(DomainError::conflict(format!("{noun} {run_id} is {}: bills join OPEN runs only", other.name())))
            }
        }
    }

    /// The bills of a FINALIZED run are frozen: they change not at all.
    pub fn freezes_bills(self) -> bool {
        self == Self::Finalized
    }
}

/// Where a run stands: the part of a run the state machine and the worker change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bill_run_status: BillRunStatus,
    pub summary_status: SummaryStatus,
    pub summary_status_percentage: u8,
    pub billing_user_admin_id: Option<u64>,
    /// Bills the last stage that walked them set aside (`failedBills`): 0 while it runs.
    pub failed_bills: u64,
}

impl Progress {
    /// A new or reopened run: OPEN / PROPERTIES / 100.
    pub const OPEN: Self = Self {
        bill_run_status: BillRunStatus::Open,
        summary_status: SummaryStatus::Properties,
        summary_status_percentage: 100,
        billing_user_admin_id: None,
        failed_bills: 0,
    };

    fn done(&self) -> bool {
        self.summary_status_percentage >= 100
    }

    /// Whether the stage worker has something to do on a run in this state.
    pub fn work_pending(&self) -> bool {
        self.bill_run_status == BillRunStatus::Closed
            && (!self.done() || self.summary_status.next_system_stage().is_some())
    }

    /// The stage worker's move once the current stage's bills are processed: a running stage
    /// completes, and a finished DISTRIBUTION walks the system stages to FINALIZED.
    /// `None` when there is nothing to do.
    pub fn worker_step(&self) -> Option<Self> {
        if !self.work_pending() {
            return None;
        }
        if !self.done() {
            return Some(Self { summary_status_percentage: 100, ..*self });
        }
        let next = self.summary_status.next_system_stage()?;
        let bill_run_status =
            if next == SummaryStatus::Finished { BillRunStatus::Finalized } else { BillRunStatus::Closed };
        Some(Self { bill_run_status, summary_status: next, summary_status_percentage: 100, ..*self })
    }
}

/// A regular bill run, as every response shows it (every field present, optional ones as null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BillRun {
    pub id: u64,
    pub name: String,
    pub sortable_name: String,
    pub billing_cycle_id: u64,
    #[serde(with = "iso_date")]
    pub created: Date,
    #[serde(with = "iso_date")]
    pub period_start_date: Date,
    #[serde(with = "iso_date")]
    pub period_end_date: Date,
    #[serde(with = "iso_date")]
    pub invoice_date: Date,
    #[serde(with = "iso_date::option")]
    pub include_usage_until_date: Option<Date>,
    pub bill_run_status: BillRunStatus,
    pub summary_status: SummaryStatus,
    pub summary_status_percentage: u8,
    pub billing_user_admin_id: Option<u64>,
    pub parallel: bool,
    pub paused: bool,
    pub revenue_in_major_currency: i64,
    pub usage_suspense_count: u64,
    pub rental_suspense_count: u64,
    #[serde(with = "super::money::option_number")]
    pub max_invoice_value: Option<rust_decimal::Decimal>,
    pub max_invoice_customer_id: Option<u64>,
    /// Bills the last stage that walked them set aside (each says why in its `setAside`).
    #[serde(default)]
    pub failed_bills: u64,
}

/// An adhoc bill run, as every response shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdhocBillRun {
    pub id: u64,
    pub name: String,
    pub nickname: Option<String>,
    #[serde(with = "iso_date")]
    pub created: Date,
    #[serde(with = "iso_date")]
    pub invoice_date: Date,
    pub bill_run_status: BillRunStatus,
    pub summary_status: SummaryStatus,
    pub summary_status_percentage: u8,
    pub billing_user_admin_id: Option<u64>,
    pub revenue_in_major_currency: i64,
    #[serde(deserialize_with = "whole_numbers")]
    pub adhoc_product_inventory_ids: Vec<u64>,
    #[serde(deserialize_with = "whole_numbers")]
    pub rental_product_inventory_ids: Vec<u64>,
    /// Bills the last stage that walked them set aside (each says why in its `setAside`).
    #[serde(default)]
    pub failed_bills: u64,
}

/// What the two kinds share, so that patching, the state machine and the worker are written once.
pub trait Run: Resource + Clone + std::fmt::Debug + PartialEq + 'static {
    const RUN_KIND: RunKind;
    /// Fields a client may change with PATCH (besides nothing else).
    const WRITABLE: &'static [&'static str];
    fn run_id(&self) -> u64;
    fn set_id(&mut self, id: u64);
    fn progress(&self) -> Progress;
    fn set_progress(&mut self, progress: Progress);
    /// Checks one writable field's new value (its type, enum and bounds).
    /// Validates a create body into a run (id 0 until one is allocated).
    fn parse_new(body: &Value, created: Date) -> Result<Self, DomainError>;
    /// Whether `self` may not coexist with `other`, a member of its group.
    fn collides_with(&self, other: &Self) -> bool;
    /// A run joins its group (a regular run's billing cycle) only if it collides with none of
    /// `others`, the group's runs: else 409 naming the first it overlaps.
    fn admit_among<'a>(&self, others: impl IntoIterator<Item = &'a Self>) -> Result<(), DomainError>
    where
        Self: 'a,
    {
        match others.into_iter().find(|other| self.collides_with(other)) {
            Some(other) => Err(DomainError::conflict(format!(
                "the period overlaps {} {} of the same billing cycle",
                Self::RUN_KIND.noun(),
                other.run_id()
            ))),
            None => Ok(()),
        }
    }
    /// The date shown on the run's invoices.
    fn invoice_date(&self) -> Date;
    /// Whether its stages walk its bills in [`super::segment::SEGMENTS`] concurrent segments (else
    /// in one).
    fn parallel(&self) -> bool;
    /// Records REPORTING's figures.
    fn set_report(&mut self, report: &Report);
    /// What finishing `stage` over the run's bills records on the run: REPORTING's figures.
    fn finish_stage(&mut self, stage: SummaryStatus, report: &Report) {
        if stage == SummaryStatus::Reporting {
            self.set_report(report);
        }
    }
}

/// What `GET /bill-runs` filters, sorts and selects.
pub const RUN_LIST: ListSpec = ListSpec {
    sortable: &["id", "name", "created", "invoiceDate", "periodStartDate"],
    filters: &[
        filter("billRunStatus", "/billRunStatus", Values::Names(names::<BillRunStatus>)),
        filter("summaryStatus", "/summaryStatus", Values::Names(names::<SummaryStatus>)),
        filter("billingCycleId", "/billingCycleId", Values::PositiveIntegers),
    ],
    fields: &[
        "id",
        "name",
        "sortableName",
        "billingCycleId",
        "created",
        "periodStartDate",
        "periodEndDate",
        "invoiceDate",
        "includeUsageUntilDate",
        "billRunStatus",
        "summaryStatus",
        "summaryStatusPercentage",
        "billingUserAdminId",
        "parallel",
        "paused",
        "revenueInMajorCurrency",
        "usageSuspenseCount",
        "rentalSuspenseCount",
        "maxInvoiceValue",
        "maxInvoiceCustomerId",
        "failedBills",
    ],
    archived: None,
};

/// What `GET /adhoc-bill-runs` filters, sorts and selects.
pub const ADHOC_LIST: ListSpec = ListSpec {
    sortable: &["id", "name", "created", "invoiceDate"],
    filters: &[
        filter("billRunStatus", "/billRunStatus", Values::Names(names::<BillRunStatus>)),
        filter("summaryStatus", "/summaryStatus", Values::Names(names::<SummaryStatus>)),
    ],
    fields: &[
        "id",
        "name",
        "nickname",
        "created",
        "invoiceDate",
        "billRunStatus",
        "summaryStatus",
        "summaryStatusPercentage",
        "billingUserAdminId",
        "revenueInMajorCurrency",
        "adhocProductInventoryIds",
        "rentalProductInventoryIds",
        "failedBills",
    ],
    archived: None,
};

impl Resource for BillRun {
    const KIND: Kind = Kind::new("BILL_RUN", IdType::Counter);
    const LIST: Option<&'static ListSpec> = Some(&RUN_LIST);

    fn id(&self) -> Id {
        Id::Int(self.id)
    }

    /// Runs of one billing cycle must not overlap.
    fn group(&self) -> Option<String> {
        Some(format!("CYCLE#{}", self.billing_cycle_id))
    }

    fn work_pending(&self) -> bool {
        self.progress().work_pending()
    }
}

impl Resource for AdhocBillRun {
    const KIND: Kind = Kind::new("ADHOC_BILL_RUN", IdType::Counter);
    const LIST: Option<&'static ListSpec> = Some(&ADHOC_LIST);

    fn id(&self) -> Id {
        Id::Int(self.id)
    }

    fn work_pending(&self) -> bool {
        self.progress().work_pending()
    }
}

/// What both kinds of run store the same way: their progress (status, stage, percentage, who
/// closed them) and the checks of the fields they share.
macro_rules! progress_of_a_run {
    () => {
        fn progress(&self) -> Progress {
            Progress {
                bill_run_status: self.bill_run_status,
                summary_status: self.summary_status,
                summary_status_percentage: self.summary_status_percentage,
                billing_user_admin_id: self.billing_user_admin_id,
                failed_bills: self.failed_bills,
            }
        }

        fn set_progress(&mut self, p: Progress) {
            self.bill_run_status = p.bill_run_status;
            self.summary_status = p.summary_status;
            self.summary_status_percentage = p.summary_status_percentage;
            self.billing_user_admin_id = p.billing_user_admin_id;
            self.failed_bills = p.failed_bills;
        }
    };
}

impl Run for BillRun {
    const RUN_KIND: RunKind = RunKind::Regular;
    const WRITABLE: &'static [&'static str] =
        &["invoiceDate", "includeUsageUntilDate", "paused", "parallel", "billRunStatus", "summaryStatus"];

    fn run_id(&self) -> u64 {
        self.id
    }

    fn set_id(&mut self, id: u64) {
        self.id = id;
    }

    fn parse_new(body: &Value, created: Date) -> Result<Self, DomainError> {
        Ok(NewBillRun::parse(body)?.into_run(0, created))
    }

    fn collides_with(&self, other: &Self) -> bool {
        self.id != other.id && overlaps(self, other)
    }

    fn invoice_date(&self) -> Date {
        self.invoice_date
    }

    fn parallel(&self) -> bool {
        self.parallel
    }

    fn set_report(&mut self, report: &Report) {
        self.revenue_in_major_currency = report.revenue_in_major_currency();
        self.max_invoice_value = report.max_invoice_value;
        self.max_invoice_customer_id = report.max_invoice_customer_id;
    }

    progress_of_a_run!();
}

impl Run for AdhocBillRun {
    const RUN_KIND: RunKind = RunKind::Adhoc;
    const WRITABLE: &'static [&'static str] = &[
        "name",
        "nickname",
        "invoiceDate",
        "adhocProductInventoryIds",
        "rentalProductInventoryIds",
        "billRunStatus",
        "summaryStatus",
    ];

    fn run_id(&self) -> u64 {
        self.id
    }

    fn set_id(&mut self, id: u64) {
        self.id = id;
    }

    fn parse_new(body: &Value, created: Date) -> Result<Self, DomainError> {
        Ok(NewAdhocBillRun::parse(body)?.into_run(0, created))
    }

    fn collides_with(&self, _other: &Self) -> bool {
        false
    }

    fn invoice_date(&self) -> Date {
        self.invoice_date
    }

    /// Adhoc runs have no `parallel` flag; their stages always scale out.
    fn parallel(&self) -> bool {
        true
    }

    fn set_report(&mut self, report: &Report) {
        self.revenue_in_major_currency = report.revenue_in_major_currency();
    }

    progress_of_a_run!();
}

/// Checks member `name` of `obj` (a create body, or a patched run, where a removed member reads
/// as null), for creates and patches of both kinds.
fn check_member(check: &mut Check, obj: &Obj<'_>, name: &str) {
    let value = obj.map.get(name).unwrap_or(&Value::Null);
    let date = |v: &Value| v.as_str().and_then(dates::parse).is_some();
    let valid = match name {
        "name" => value.as_str().is_some_and(|s| {
            (1..=22).contains(&s.chars().count()) && s.chars().all(|c| c.is_ascii_alphanumeric() || " -_./".contains(c))
        }),
        "nickname" => value.is_null() || value.as_str().is_some_and(|s| (1..=100).contains(&s.chars().count())),
        "invoiceDate" | "periodStartDate" | "periodEndDate" => date(value),
        "includeUsageUntilDate" => value.is_null() || date(value),
        "paused" | "parallel" => value.is_boolean(),
        "billingCycleId" => whole(value).is_some_and(|n| n > 0),
        "billRunStatus" => value.as_str().is_some_and(|v| v.parse::<BillRunStatus>().is_ok()),
        "summaryStatus" => value.as_str().is_some_and(|v| v.parse::<SummaryStatus>().is_ok()),
        "adhocProductInventoryIds" | "rentalProductInventoryIds" => return check_ids(check, obj, name, value),
        _ => return check.fail(obj.pointer(name), "unknown field"),
    };
    if !valid {
        check.fail(obj.pointer(name), expectation(name));
    }
}

fn expectation(name: &str) -> &'static str {
    match name {
        "name" => "must be 1 to 22 characters: letters, digits, space and -_./",
        "nickname" => "must be null or a string of 1 to 100 characters",
        "invoiceDate" | "periodStartDate" | "periodEndDate" => "must be a date YYYY-MM-DD",
        "includeUsageUntilDate" => "must be null or a date YYYY-MM-DD",
        "paused" | "parallel" => "must be true or false",
        "billingCycleId" => "must be a positive integer",
        "billRunStatus" => "must be one of OPEN, CLOSED, FINALIZED",
        _ => "must be one of PROPERTIES, STARTING, REPORTING, DRAFT_INVOICES, FULL_INVOICES, DISTRIBUTION, COMBINING_INVOICES, PAYMENT, REACTIVATING_RPIS, ARCHIVING, FINISHED",
    }
}

/// An array of distinct positive ids, at most [`MAX_INVENTORY_IDS`].
fn check_ids(check: &mut Check, obj: &Obj<'_>, name: &str, value: &Value) {
    let Some(items) = value.as_array() else {
        return check.fail(obj.pointer(name), "must be an array of positive integers");
    };
    if items.len() > MAX_INVENTORY_IDS {
        return check.fail(obj.pointer(name), format!("has at most {MAX_INVENTORY_IDS} ids"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        match whole(item) {
            Some(n) if n > 0 && seen.insert(n) => {}
            Some(n) if n > 0 => check.fail(format!("{}/{i}", obj.pointer(name)), format!("duplicate id {n}")),
            _ => check.fail(format!("{}/{i}", obj.pointer(name)), "must be a positive integer"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Create

const REGULAR_CREATE_REQUIRED: [&str; 5] =
    ["name", "billingCycleId", "periodStartDate", "periodEndDate", "invoiceDate"];
const REGULAR_CREATE_OPTIONAL: [&str; 3] = ["includeUsageUntilDate", "parallel", "paused"];
const ADHOC_CREATE_REQUIRED: [&str; 2] = ["name", "invoiceDate"];
const ADHOC_CREATE_OPTIONAL: [&str; 3] = ["nickname", "adhocProductInventoryIds", "rentalProductInventoryIds"];

/// Checks a create body against its member lists: every problem is reported at once, in the
/// body's order.
fn check_create_body<'a>(body: &'a Value, required: &[&str], optional: &[&str]) -> Result<Obj<'a>, DomainError> {
    let Value::Object(map) = body else { return Err(DomainError::field("", "the body must be a JSON object")) };
    let (mut check, obj) = (Check::new(), Obj { map, at: String::new() });
    for name in required {
        check.required(&obj, name);
    }
    for (name, value) in map {
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            check.fail(obj.pointer(name), "read-only or unknown field");
        } else if !(value.is_null() && required.contains(&name.as_str())) {
            check_member(&mut check, &obj, name);
        }
    }
    check.stop()?;
    Ok(obj)
}

fn date_of(fields: &Map<String, Value>, name: &str) -> Option<Date> {
    fields.get(name).and_then(Value::as_str).and_then(dates::parse)
}

/// A validated create request for a regular bill run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBillRun {
    pub name: String,
    pub billing_cycle_id: u64,
    pub period_start_date: Date,
    pub period_end_date: Date,
    pub invoice_date: Date,
    pub include_usage_until_date: Option<Date>,
    pub parallel: bool,
    pub paused: bool,
}

impl NewBillRun {
    pub fn parse(body: &Value) -> Result<Self, DomainError> {
        let f = check_create_body(body, &REGULAR_CREATE_REQUIRED, &REGULAR_CREATE_OPTIONAL)?.map;
        let missing = || DomainError::invalid("invalid bill run");
        let run = Self {
            name: f.get("name").and_then(Value::as_str).ok_or_else(missing)?.to_owned(),
            billing_cycle_id: f.get("billingCycleId").and_then(whole).ok_or_else(missing)?,
            period_start_date: date_of(f, "periodStartDate").ok_or_else(missing)?,
            period_end_date: date_of(f, "periodEndDate").ok_or_else(missing)?,
            invoice_date: date_of(f, "invoiceDate").ok_or_else(missing)?,
            include_usage_until_date: date_of(f, "includeUsageUntilDate"),
            parallel: f.get("parallel").and_then(Value::as_bool).unwrap_or(false),
            paused: f.get("paused").and_then(Value::as_bool).unwrap_or(false),
        };
        if run.period_start_date > run.period_end_date {
            return Err(DomainError::field("/periodEndDate", "must not be before periodStartDate"));
        }
        Ok(run)
    }

    pub fn into_run(self, id: u64, created: Date) -> BillRun {
        BillRun {
            id,
            sortable_name: self.name.to_lowercase(),
            name: self.name,
            billing_cycle_id: self.billing_cycle_id,
            created,
            period_start_date: self.period_start_date,
            period_end_date: self.period_end_date,
            invoice_date: self.invoice_date,
            include_usage_until_date: self.include_usage_until_date,
            bill_run_status: BillRunStatus::Open,
            summary_status: SummaryStatus::Properties,
            summary_status_percentage: 100,
            billing_user_admin_id: None,
            parallel: self.parallel,
            paused: self.paused,
            revenue_in_major_currency: 0,
            usage_suspense_count: 0,
            rental_suspense_count: 0,
            max_invoice_value: None,
            max_invoice_customer_id: None,
            failed_bills: 0,
        }
    }
}

/// A validated create request for an adhoc bill run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAdhocBillRun {
    pub name: String,
    pub nickname: Option<String>,
    pub invoice_date: Date,
    pub adhoc_product_inventory_ids: Vec<u64>,
    pub rental_product_inventory_ids: Vec<u64>,
}

impl NewAdhocBillRun {
    pub fn parse(body: &Value) -> Result<Self, DomainError> {
        let f = check_create_body(body, &ADHOC_CREATE_REQUIRED, &ADHOC_CREATE_OPTIONAL)?.map;
        let ids = |name: &str| -> Vec<u64> {
            f.get(name).and_then(Value::as_array).map(|a| a.iter().filter_map(whole).collect()).unwrap_or_default()
        };
        Ok(Self {
            name: f.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            nickname: f.get("nickname").and_then(Value::as_str).map(str::to_owned),
            invoice_date: date_of(f, "invoiceDate").ok_or_else(|| DomainError::invalid("invalid adhoc bill run"))?,
            adhoc_product_inventory_ids: ids("adhocProductInventoryIds"),
            rental_product_inventory_ids: ids("rentalProductInventoryIds"),
        })
    }

    pub fn into_run(self, id: u64, created: Date) -> AdhocBillRun {
        AdhocBillRun {
            id,
            name: self.name,
            nickname: self.nickname,
            created,
            invoice_date: self.invoice_date,
            bill_run_status: BillRunStatus::Open,
            summary_status: SummaryStatus::Properties,
            summary_status_percentage: 100,
            billing_user_admin_id: None,
            revenue_in_major_currency: 0,
            adhoc_product_inventory_ids: self.adhoc_product_inventory_ids,
            rental_product_inventory_ids: self.rental_product_inventory_ids,
            failed_bills: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine

/// What a client asked of a run's statuses in one patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRequest {
    /// The billRunStatus after the patch, when it differs from the current one.
    pub bill_run_status: Option<BillRunStatus>,
    /// The summaryStatus the patch wrote, when it differs or an operation targeted it explicitly
    /// (so that "REPORTING again" re-runs the reports).
    pub summary_status: Option<SummaryStatus>,
}

fn allowed_from(kind: RunKind, p: &Progress) -> String {
    let stage = p.summary_status.name();
    let options: &[&str] = match (p.bill_run_status, kind) {
        (BillRunStatus::Finalized, _) => &[],
        (BillRunStatus::Open, RunKind::Regular) => &["close (billRunStatus CLOSED with summaryStatus REPORTING)"],
        (BillRunStatus::Open, RunKind::Adhoc) => &["close (summaryStatus REPORTING)"],
        (BillRunStatus::Closed, _) if !p.done() => &[],
        (BillRunStatus::Closed, RunKind::Regular) => match p.summary_status {
            SummaryStatus::Reporting | SummaryStatus::DraftInvoices => {
                &["summaryStatus REPORTING", "DRAFT_INVOICES", "FULL_INVOICES", "reopen (billRunStatus OPEN)"]
            }
            SummaryStatus::FullInvoices if p.failed_bills > 0 => {
                &["summaryStatus FULL_INVOICES (again, for the bills set aside)", "DISTRIBUTION"]
            }
            SummaryStatus::FullInvoices => &["summaryStatus DISTRIBUTION"],
            _ => &[],
        },
        (BillRunStatus::Closed, RunKind::Adhoc) => match p.summary_status {
            SummaryStatus::Reporting => &["summaryStatus REPORTING", "FULL_INVOICES", "reopen (billRunStatus OPEN)"],
            SummaryStatus::FullInvoices if p.failed_bills > 0 => {
                &["summaryStatus FULL_INVOICES (again, for the bills set aside)", "DISTRIBUTION"]
            }
            SummaryStatus::FullInvoices => &["summaryStatus DISTRIBUTION"],
            _ => &[],
        },
    };
    let allowed = if options.is_empty() { "nothing".to_owned() } else { options.join(", ") };
    format!(
        "the {} is {} at {} {}%; allowed from here: {}",
        kind.noun(),
        p.bill_run_status.name(),
        stage,
        p.summary_status_percentage,
        allowed
    )
}

/// What a request may never ask, whatever the run's state (400): a stage the system sets (but
/// PROPERTIES with a reopen), draft invoices of an adhoc run, or FINALIZED.
fn check_request(kind: RunKind, request: &StatusRequest) -> Result<(), DomainError> {
    if let Some(stage) = request.summary_status {
        let reopening = request.bill_run_status == Some(BillRunStatus::Open) && stage == SummaryStatus::Properties;
        if stage.system_only() && !reopening {
            return Err(DomainError::field("/summaryStatus", format!("{} is set by the system only", stage.name())));
        }
        if kind == RunKind::Adhoc && stage == SummaryStatus::DraftInvoices {
            return Err(DomainError::field("/summaryStatus", "adhoc bill runs have no draft invoices"));
        }
    }
    if request.bill_run_status == Some(BillRunStatus::Finalized) {
        return Err(DomainError::field("/billRunStatus", "FINALIZED is set by the system only"));
    }
    Ok(())
}

/// Decides a status request against the stage path of docs/bill-runs.md: the new progress, or a
/// refusal (400 for a stage a client may never ask for, 409 for one the state forbids).
pub fn transition(
    kind: RunKind,
    current: &Progress,
    request: StatusRequest,
    caller: u64,
) -> Result<Progress, DomainError> {
    let refuse = |why: &str| DomainError::conflict(format!("{why}: {}", allowed_from(kind, current)));
    check_request(kind, &request)?;
    if current.bill_run_status == BillRunStatus::Finalized {
        return Err(refuse("a FINALIZED run accepts no change"));
    }
    match (current.bill_run_status, request.bill_run_status, request.summary_status) {
        (_, None, None) => Ok(*current),
        // close
        (BillRunStatus::Open, Some(BillRunStatus::Closed), Some(SummaryStatus::Reporting)) => Ok(closed(caller)),
        (BillRunStatus::Open, None, Some(SummaryStatus::Reporting)) if kind == RunKind::Adhoc => Ok(closed(caller)),
        (BillRunStatus::Open, None, Some(SummaryStatus::Reporting)) => {
            Err(refuse("closing a bill run needs billRunStatus CLOSED and summaryStatus REPORTING in one patch"))
        }
        (BillRunStatus::Open, Some(BillRunStatus::Closed), _) => Err(refuse(match kind {
            RunKind::Regular => {
                "closing a bill run needs billRunStatus CLOSED and summaryStatus REPORTING in one patch"
            }
            RunKind::Adhoc => "closing an adhoc bill run needs summaryStatus REPORTING",
        })),
        (BillRunStatus::Open, _, Some(stage)) => Err(refuse(&format!("cannot start {} on an OPEN run", stage.name()))),
        // reopen
        (BillRunStatus::Closed, Some(BillRunStatus::Open), stage) => {
            if stage.is_some_and(|s| s != SummaryStatus::Properties) {
                return Err(refuse("a reopen cannot request a stage in the same patch"));
            }
            if !current.done() {
                return Err(refuse(&format!("stage {} is still running", current.summary_status.name())));
            }
            if !before_full_invoices(kind, current.summary_status) {
                return Err(refuse("a run cannot be reopened once FULL_INVOICES has begun"));
            }
            Ok(Progress::OPEN)
        }
        // a stage of a CLOSED run
        (BillRunStatus::Closed, None, Some(stage)) => {
            if !current.done() {
                return Err(refuse(&format!("stage {} is still running", current.summary_status.name())));
            }
            let allowed = match stage {
                SummaryStatus::Distribution => current.summary_status == SummaryStatus::FullInvoices,
                SummaryStatus::FullInvoices if current.summary_status == SummaryStatus::FullInvoices => {
                    current.failed_bills > 0
                }
                _ => before_full_invoices(kind, current.summary_status),
            };
            if !allowed {
                return Err(refuse(&format!("{} cannot be requested now", stage.name())));
            }
            Ok(Progress { summary_status: stage, summary_status_percentage: 0, failed_bills: 0, ..*current })
        }
        (_, Some(status), _) => Err(refuse(&format!("billRunStatus {} cannot be requested now", status.name()))),
        (BillRunStatus::Finalized, None, Some(_)) => Err(refuse("a FINALIZED run accepts no change")),
    }
}

fn closed(caller: u64) -> Progress {
    Progress {
        bill_run_status: BillRunStatus::Closed,
        summary_status: SummaryStatus::Reporting,
        summary_status_percentage: 0,
        billing_user_admin_id: Some(caller),
        failed_bills: 0,
    }
}

/// The stages after which a run may re-run reports, make drafts, start full invoices or reopen.
fn before_full_invoices(kind: RunKind, stage: SummaryStatus) -> bool {
    match kind {
        RunKind::Regular => matches!(stage, SummaryStatus::Reporting | SummaryStatus::DraftInvoices),
        RunKind::Adhoc => stage == SummaryStatus::Reporting,
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH

/// The outcome of a patch that passed every rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Patched<R> {
    /// Nothing changes: 200 with the resource, nothing written.
    Unchanged,
    /// The new run, with what changed for the audit event.
    Changed { run: R, changes: Changes },
}

/// What a write changed, for the audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    pub from_status: String,
    pub to_status: String,
    pub fields: Vec<String>,
}

impl Changes {
    pub fn between(before: &Progress, after: &Progress, fields: Vec<String>) -> Self {
        let label = |p: &Progress| {
            format!("{}/{}/{}", p.bill_run_status.name(), p.summary_status.name(), p.summary_status_percentage)
        };
        Self { from_status: label(before), to_status: label(after), fields }
    }
}

/// Refuses (400, each named) a patched member that the run does not have, that is read-only,
/// or whose new value is invalid.
fn check_changed<R: Run>(
    changed: &[String],
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Result<(), DomainError> {
    let mut check = Check::new();
    let patched = Obj { map: after, at: String::new() };
    for name in changed {
        if !before.contains_key(name) {
            check.fail(patched.pointer(name), "unknown field");
        } else if !R::WRITABLE.contains(&name.as_str()) {
            check.fail(patched.pointer(name), "read-only field");
        } else {
            check_member(&mut check, &patched, name);
        }
    }
    check.stop()
}

/// Steps 2 to 5 of "PATCH semantics": apply, check fields, check the state, decide the transition.
pub fn apply_patch<R: Run>(current: &R, patch: &Patch, caller: u64) -> Result<Patched<R>, DomainError> {
    let original = serde_json::to_value(current).map_err(|e| DomainError::invalid(e.to_string()))?;
    let patched = patch.apply(&original)?;
    let (Value::Object(before), Value::Object(mut after)) = (original, patched) else {
        return Err(DomainError::field("", "the patch must leave the run a JSON object"));
    };
    // A removed member reads as null (optional fields) and then fails its check if it is required.
    for name in before.keys() {
        after.entry(name.clone()).or_insert(Value::Null);
    }
    let changed = changed_members(&before, &after);
    check_changed::<R>(&changed, &before, &after)?;

    let progress = current.progress();
    let new_status = after["billRunStatus"].as_str().and_then(|v| v.parse().ok()).unwrap_or(progress.bill_run_status);
    let new_stage = after["summaryStatus"].as_str().and_then(|v| v.parse().ok()).unwrap_or(progress.summary_status);
    let request = StatusRequest {
        bill_run_status: (new_status != progress.bill_run_status).then_some(new_status),
        summary_status: (new_stage != progress.summary_status || patch.targets("summaryStatus")).then_some(new_stage),
    };
    let properties: Vec<&String> =
        changed.iter().filter(|n| !matches!(n.as_str(), "billRunStatus" | "summaryStatus")).collect();
    if request == (StatusRequest { bill_run_status: None, summary_status: None }) && properties.is_empty() {
        return Ok(Patched::Unchanged);
    }
    if progress.bill_run_status == BillRunStatus::Finalized {
        return Err(DomainError::conflict(format!("a FINALIZED {} accepts no change", R::RUN_KIND.noun())));
    }
    let next = transition(R::RUN_KIND, &progress, request, caller)?;
    for name in properties {
        let allowed = match progress.bill_run_status {
            BillRunStatus::Open => true,
            _ => name == "invoiceDate" && progress.summary_status < SummaryStatus::FullInvoices,
        };
        if !allowed {
            return Err(DomainError::conflict(format!(
                "{name} cannot change while the {} is {} at {}",
                R::RUN_KIND.noun(),
                progress.bill_run_status.name(),
                progress.summary_status.name()
            )));
        }
    }

    let mut run: R = serde_json::from_value(Value::Object(after))
        .map_err(|e| DomainError::invalid(format!("invalid {}: {e}", R::RUN_KIND.noun())))?;
    run.set_progress(next);
    let changes = Changes::between(&progress, &next, changed);
    Ok(Patched::Changed { run, changes })
}

// ---------------------------------------------------------------------------------------------
// Adjusting the schedule

/// Parses `periods`: a non-zero integer within +/-1,200.
pub fn parse_periods(text: Option<&str>) -> Result<i64, DomainError> {
    match text.map(str::parse::<i64>) {
        // A range, not `abs()`: `i64::MIN.abs()` overflows.
        Some(Ok(n)) if n != 0 && (-MAX_PERIODS..=MAX_PERIODS).contains(&n) => Ok(n),
        _ => Err(DomainError::field(
            "/periods",
            format!("periods must be a non-zero integer from -{MAX_PERIODS} to {MAX_PERIODS}"),
        )),
    }
}

/// The run moved `periods` periods: whole calendar months when it covers whole months, else its
/// length in days. Only an OPEN run moves.
pub fn shift_schedule(run: &BillRun, periods: i64) -> Result<BillRun, DomainError> {
    if run.bill_run_status != BillRunStatus::Open {
        return Err(DomainError::conflict(format!(
            "only an OPEN bill run can be moved; this one is {}",
            run.bill_run_status.name()
        )));
    }
    let out_of_range = || DomainError::field("/periods", "the move takes the run outside the supported dates");
    let start = run.period_start_date;
    let mut moved = run.clone();
    if let Some(months) = whole_months(start, run.period_end_date) {
        let by = periods.checked_mul(months).ok_or_else(out_of_range)?;
        let shift = |d: Date| dates::add_months(d, by).ok_or_else(out_of_range);
        moved.period_start_date = shift(start)?;
        let next_start =
            dates::add_months(start, by.checked_add(months).ok_or_else(out_of_range)?).ok_or_else(out_of_range)?;
        moved.period_end_date = dates::add_days(next_start, -1).ok_or_else(out_of_range)?;
        moved.invoice_date = shift(run.invoice_date)?;
        moved.include_usage_until_date = run.include_usage_until_date.map(shift).transpose()?;
    } else {
        let length = (run.period_end_date - start).whole_days() + 1;
        let by = periods.checked_mul(length).ok_or_else(out_of_range)?;
        let shift = |d: Date| dates::add_days(d, by).ok_or_else(out_of_range);
        moved.period_start_date = shift(start)?;
        moved.period_end_date = shift(run.period_end_date)?;
        moved.invoice_date = shift(run.invoice_date)?;
        moved.include_usage_until_date = run.include_usage_until_date.map(shift).transpose()?;
    }
    Ok(moved)
}

/// The number of whole months a period covers (start on day d, end the day before day d of a
/// later month, clamped at month ends), or `None`.
pub fn whole_months(start: Date, end: Date) -> Option<i64> {
    let after_end = dates::add_days(end, 1)?;
    let index = |d: Date| i64::from(d.year()) * 12 + i64::from(u8::from(d.month()));
    let months = index(after_end) - index(start);
    (months >= 1 && dates::add_months(start, months) == Some(after_end)).then_some(months)
}

/// Whether two runs' periods share a day.
pub fn overlaps(a: &BillRun, b: &BillRun) -> bool {
    a.period_start_date <= b.period_end_date && b.period_start_date <= a.period_end_date
}

#[cfg(test)]
mod tests;
