//! Billing runs (docs/billing-runs.md: the PUT /billingRuns contract): a tenant's run that processes installment
//! schedules, sends statements and reminders. The resource with every field of the contract, create
//! and PUT validation (400 naming the field by JSON Pointer), the client's status transitions,
//! locking and optimistic versioning, all as pure functions.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::check::{Check, Obj, MAX_ID};
use super::key::{Id, IdType, Kind};
use super::patch::changed_members;
use super::resource::Resource;
use super::DomainError;

pub mod execution;

/// Statuses, spelled as the contract spells them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
    Default,
)]
pub enum Status {
    #[default]
    #[serde(rename = "draft")]
    #[strum(serialize = "draft")]
    Draft,
    #[serde(rename = "scheduled")]
    #[strum(serialize = "scheduled")]
    Scheduled,
    #[serde(rename = "ready for execution")]
    #[strum(serialize = "ready for execution")]
    ReadyForExecution,
    #[serde(rename = "scheduled for execution")]
    #[strum(serialize = "scheduled for execution")]
    ScheduledForExecution,
    #[serde(rename = "preprocessing")]
    #[strum(serialize = "preprocessing")]
    Preprocessing,
    #[serde(rename = "running")]
    #[strum(serialize = "running")]
    Running,
    #[serde(rename = "completed")]
    #[strum(serialize = "completed")]
    Completed,
    #[serde(rename = "error")]
    #[strum(serialize = "error")]
    Error,
    #[serde(rename = "timed out")]
    #[strum(serialize = "timed out")]
    TimedOut,
    #[serde(rename = "cancelled")]
    #[strum(serialize = "cancelled")]
    Cancelled,
}

impl Status {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Statuses only the system sets: a client asking for one gets 400.
    pub fn system_only(self) -> bool {
        matches!(self, Self::Preprocessing | Self::Running | Self::Completed | Self::Error | Self::TimedOut)
    }

    /// What a client may move a run to from this status (the status table of docs/billing-runs.md).
    pub fn client_targets(self) -> &'static [Status] {
        match self {
            Self::Draft => &[Self::Scheduled, Self::Cancelled],
            Self::Scheduled => &[Self::Draft, Self::Cancelled],
            Self::ReadyForExecution => &[Self::ScheduledForExecution, Self::Draft, Self::Cancelled],
            Self::ScheduledForExecution => &[Self::ReadyForExecution, Self::Cancelled],
            Self::Error | Self::TimedOut => &[Self::Draft, Self::Cancelled],
            Self::Preprocessing | Self::Running | Self::Completed | Self::Cancelled => &[],
        }
    }

    /// The system is working on the run: no client change at all.
    pub fn busy(self) -> bool {
        matches!(self, Self::Preprocessing | Self::Running)
    }

    /// Content fields may change only in these statuses.
    pub fn content_editable(self) -> bool {
        matches!(self, Self::Draft | Self::Scheduled | Self::ReadyForExecution | Self::Error | Self::TimedOut)
    }

    /// A run in these statuses may be deleted.
    pub fn deletable(self) -> bool {
        matches!(self, Self::Draft | Self::Cancelled)
    }
}

/// The client's move from `from` to `to`: allowed, or 409 naming the current and allowed states.
pub fn transition(from: Status, to: Status) -> Result<(), DomainError> {
    if from == to || from.client_targets().contains(&to) {
        return Ok(());
    }
    if from.busy() {
        return Err(DomainError::conflict(format!("the run is busy ({}): it accepts no change now", from.name())));
    }
    let allowed = from.client_targets().iter().map(|s| s.name()).collect::<Vec<_>>();
    let allowed = if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") };
    Err(DomainError::conflict(format!(
        "a run that is {} cannot become {}; allowed from {}: {allowed}",
        from.name(),
        to.name(),
        from.name()
    )))
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
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Restriction {
    Exclude,
    Include,
    None,
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
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum CustomerType {
    Both,
    Contact,
    Organization,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminder {
    pub card_expiration_date_end: String,
    pub card_expiration_date_start: String,
    pub id: u64,
    pub name: Option<String>,
    pub notice_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpiringCardReminderOptions {
    pub order_type_restriction: Option<Restriction>,
    pub order_types: Vec<String>,
    pub reminders: Vec<Reminder>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationOptions {
    pub date_range_end: String,
    pub date_range_start: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallmentScheduleOptions {
    pub card_type_restriction: Option<Restriction>,
    pub card_types: Vec<String>,
    pub date_range_end: String,
    pub date_range_start: String,
    pub do_not_send_standard_email_confirmations: Option<bool>,
    pub failure_notice_id: Option<String>,
    pub payment_type_restriction: Option<Restriction>,
    pub payment_types: Vec<String>,
    pub success_notice_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementOptions {
    pub business_unit_ids: Vec<String>,
    pub business_unit_restriction: Option<Restriction>,
    pub customer_type: Option<CustomerType>,
    pub statement_template_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statistic {
    pub action: String,
    pub error: Option<u64>,
    pub excluded: Option<u64>,
    pub pending: Option<u64>,
    pub processing: Option<u64>,
    pub successful: Option<u64>,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalculatedFieldError {
    pub field: Option<String>,
}

/// A billing run, as every response shows it: every field of the contract, absent optional ones as
/// null and arrays as `[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingRun {
    pub business_unit_id: String,
    pub cancel_installment_schedules: Option<bool>,
    pub error: Option<String>,
    pub error_stack: Option<String>,
    pub expiring_credit_card_reminder_options: ExpiringCardReminderOptions,
    pub id: uuid::Uuid,
    pub installment_schedule_cancellation_options: CancellationOptions,
    pub installment_schedule_options: InstallmentScheduleOptions,
    pub installment_schedule_reminder_options: Map<String, Value>,
    pub last_refresh_date: Option<String>,
    pub name: String,
    pub notification_email: Option<String>,
    pub preprocessing_date: Option<String>,
    pub process_installment_schedules: Option<bool>,
    pub recurring_billing_run_id: Option<String>,
    pub run_date: Option<String>,
    pub scheduled_preprocessing_date: Option<String>,
    pub scheduled_run_date: Option<String>,
    pub send_expiring_credit_card_reminders: Option<bool>,
    pub send_installment_schedule_reminders: Option<bool>,
    pub send_statements: Option<bool>,
    pub statement_options: StatementOptions,
    pub statistics: Vec<Statistic>,
    pub status: Status,
    pub sys_bulk_load_at: Option<String>,
    pub sys_bulk_load_id: Option<String>,
    pub sys_bulk_load_pk: Option<String>,
    pub sys_bulk_load_record_no: Option<u64>,
    pub sys_bulk_load_source_file: Option<String>,
    pub sys_calculated_field_error: Option<String>,
    pub sys_calculated_field_errors: Vec<CalculatedFieldError>,
    pub sys_configuration_snapshot_id: Option<String>,
    pub sys_created_at: String,
    pub sys_created_by_id: String,
    pub sys_deleted_by_id: Option<String>,
    pub sys_directive: Option<String>,
    pub sys_external_id: Option<String>,
    pub sys_has_files_in_s3: Option<bool>,
    pub sys_last_bulk_data_operation_id: Option<String>,
    pub sys_last_bulk_data_operation_sys_version: Option<String>,
    pub sys_last_modified_at: String,
    pub sys_last_modified_by_id: String,
    pub sys_last_security_context: Option<Map<String, Value>>,
    pub sys_locked: bool,
    pub sys_snapshot_base_version: Option<u64>,
    pub sys_version: u64,
    pub template_id: Option<String>,
}

impl Resource for BillingRun {
    const KIND: Kind = Kind::new("BILLING_RUN", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    /// Newest first: the lists order by creation time, then id.
    fn order(&self) -> String {
        format!("{}#{}", self.sys_created_at, self.id.hyphenated())
    }

    /// The runs of one recurring billing run, for its list.
    fn group(&self) -> Option<String> {
        self.recurring_billing_run_id.as_deref().map(recurring_group)
    }

    /// The scheduler has something to do: a date to wait for, or preprocessing or running.
    fn work_pending(&self) -> bool {
        execution::due_at(self).is_some() || self.status.busy()
    }

    /// A scheduled run's work is due on its date: the work index finds it then.
    fn lease_ms(&self) -> Option<u64> {
        execution::due_at(self)
    }
}

/// The store group of the runs of one recurring billing run.
/// `fields=a,b` of a read: the projection of a run (`id` always kept); an unknown field is 400.
pub fn parse_fields(raw: Option<&str>) -> Result<Option<Vec<&'static str>>, DomainError> {
    let Some(raw) = raw else { return Ok(None) };
    raw.split(',')
        .map(|name| {
            FIELDS
                .iter()
                .copied()
                .find(|f| *f == name)
                .ok_or_else(|| DomainError::field("/fields", format!("unknown field {name:?}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A list's `status` filter: `draft` or `in:draft,scheduled`; an unknown status is 400.
pub fn parse_status_filter(raw: Option<&str>) -> Result<Option<Vec<Status>>, DomainError> {
    parse_statuses(raw, "")
}

/// A `status` filter of one status or `in:a,b` of statuses `T`; an unknown one is 400 (its
/// message followed by `known`).
pub fn parse_statuses<T: std::str::FromStr>(raw: Option<&str>, known: &str) -> Result<Option<Vec<T>>, DomainError> {
    let Some(raw) = raw else { return Ok(None) };
    raw.strip_prefix("in:")
        .unwrap_or(raw)
        .split(',')
        .map(|s| s.parse::<T>().map_err(|_| DomainError::field("/status", format!("unknown status {s:?}{known}"))))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The recurring run a list names (`recurringBillingRun/{id}`): 1 to 100 characters.
pub fn check_recurring_id(recurring: Option<&str>) -> Result<(), DomainError> {
    if recurring.is_some_and(|r| !(1..=MAX_ID).contains(&r.chars().count())) {
        return Err(DomainError::field("/recurring_billing_run_id", format!("must be 1 to {MAX_ID} characters")));
    }
    Ok(())
}

pub fn recurring_group(recurring_billing_run_id: &str) -> String {
    format!("RECURRING#{recurring_billing_run_id}")
}

/// Every top-level field, for `fields` projections.
pub const FIELDS: &[&str] = &[
    "business_unit_id",
    "cancel_installment_schedules",
    "error",
    "error_stack",
    "expiring_credit_card_reminder_options",
    "id",
    "installment_schedule_cancellation_options",
    "installment_schedule_options",
    "installment_schedule_reminder_options",
    "last_refresh_date",
    "name",
    "notification_email",
    "preprocessing_date",
    "process_installment_schedules",
    "recurring_billing_run_id",
    "run_date",
    "scheduled_preprocessing_date",
    "scheduled_run_date",
    "send_expiring_credit_card_reminders",
    "send_installment_schedule_reminders",
    "send_statements",
    "statement_options",
    "statistics",
    "status",
    "sys_bulk_load_at",
    "sys_bulk_load_id",
    "sys_bulk_load_pk",
    "sys_bulk_load_record_no",
    "sys_bulk_load_source_file",
    "sys_calculated_field_error",
    "sys_calculated_field_errors",
    "sys_configuration_snapshot_id",
    "sys_created_at",
    "sys_created_by_id",
    "sys_deleted_by_id",
    "sys_directive",
    "sys_external_id",
    "sys_has_files_in_s3",
    "sys_last_bulk_data_operation_id",
    "sys_last_bulk_data_operation_sys_version",
    "sys_last_modified_at",
    "sys_last_modified_by_id",
    "sys_last_security_context",
    "sys_locked",
    "sys_snapshot_base_version",
    "sys_version",
    "template_id",
];

/// Fields a client sets on create and PUT (besides `id`, `status`, `sys_locked`, `sys_version`).
const CONTENT: &[&str] = &[
    "business_unit_id",
    "cancel_installment_schedules",
    "expiring_credit_card_reminder_options",
    "installment_schedule_cancellation_options",
    "installment_schedule_options",
    "installment_schedule_reminder_options",
    "name",
    "notification_email",
    "process_installment_schedules",
    "recurring_billing_run_id",
    "scheduled_preprocessing_date",
    "scheduled_run_date",
    "send_expiring_credit_card_reminders",
    "send_installment_schedule_reminders",
    "send_statements",
    "statement_options",
    "template_id",
];

/// Limits of the contract (docs/billing-runs.md).
const MAX_NAME: usize = 255;
const MAX_EMAIL: usize = 254;
const MAX_REMINDERS: usize = 1000;
const MAX_REMINDER_OPTIONS_BYTES: usize = 10 * 1024;

/// The time format of `sys_*_at` fields: RFC 3339 UTC with microseconds, so that text order is
/// time order (the lists sort by it).
const TIMESTAMP: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn timestamp(now: OffsetDateTime) -> String {
    now.to_offset(time::UtcOffset::UTC).format(TIMESTAMP).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Validation

/// A validated create or PUT body: the content, and what it asks of status, lock and version.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub content: Content,
    /// `None` on a create that did not ask (it becomes draft).
    pub status: Option<Status>,
    pub sys_locked: Option<bool>,
    pub sys_version: Option<u64>,
    /// The body's `id` (PUT only).
    pub id: Option<uuid::Uuid>,
}

/// The fields a client sets, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    pub business_unit_id: String,
    pub cancel_installment_schedules: Option<bool>,
    pub expiring_credit_card_reminder_options: ExpiringCardReminderOptions,
    pub installment_schedule_cancellation_options: CancellationOptions,
    pub installment_schedule_options: InstallmentScheduleOptions,
    pub installment_schedule_reminder_options: Map<String, Value>,
    pub name: String,
    pub notification_email: Option<String>,
    pub process_installment_schedules: Option<bool>,
    pub recurring_billing_run_id: Option<String>,
    pub scheduled_preprocessing_date: Option<String>,
    pub scheduled_run_date: Option<String>,
    pub send_expiring_credit_card_reminders: Option<bool>,
    pub send_installment_schedule_reminders: Option<bool>,
    pub send_statements: Option<bool>,
    pub statement_options: StatementOptions,
    pub template_id: Option<String>,
}

/// Which request a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Put,
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    text.len() <= MAX_EMAIL
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

const RESTRICTIONS: &str = "exclude, include, none";

/// Server-owned fields a client may send back (a GET-modify-PUT round trip does); they are ignored.
fn server_owned(name: &str) -> bool {
    name.starts_with("sys_") && !matches!(name, "sys_locked" | "sys_version")
        || matches!(
            name,
            "statistics" | "preprocessing_date" | "run_date" | "error" | "error_stack" | "last_refresh_date"
        )
}

/// Validates a create or PUT body: every problem at once, each named by JSON Pointer.
pub fn parse_request(body: &Value, mode: Mode) -> Result<Request, DomainError> {
    let mut check = Check::new();
    let Value::Object(map) = body else {
        return Err(DomainError::field("", "the body must be a JSON object"));
    };
    // What the server owns is ignored here (a PUT sends back what it read); the rest is known.
    let owned: Vec<&str> = map.keys().map(String::as_str).filter(|name| server_owned(name)).collect();
    let known = [CONTENT, &["id", "status", "sys_locked", "sys_version"]].concat();
    let root =
        check.object(body, String::new(), &known, &owned).ok_or_else(|| DomainError::invalid("not an object"))?;
    let id = parse_id(&mut check, &root, mode);
    let status = parse_status(&mut check, &root, mode);
    let sys_locked = check.boolean(&root, "sys_locked");
    let sys_version = parse_version(&mut check, &root);

    let business_unit_id = check.text(&root, "business_unit_id", true, MAX_ID);
    let name = check.text(&root, "name", true, MAX_NAME);
    let notification_email = parse_email(&mut check, &root);
    let recurring_billing_run_id = check.text(&root, "recurring_billing_run_id", false, MAX_ID);
    let template_id = check.text(&root, "template_id", false, MAX_ID);
    let (preprocessing, run) = parse_schedule(&mut check, &root, status);
    let reminders = parse_card_reminders(&mut check, &root);
    let cancellation = parse_cancellation(&mut check, &root);
    let schedule = parse_installments(&mut check, &root);
    let reminder_options = parse_reminder_object(&mut check, &root);
    let statement = parse_statement(&mut check, &root);
    let cancel_installment_schedules = check.boolean(&root, "cancel_installment_schedules");
    let process_installment_schedules = check.boolean(&root, "process_installment_schedules");
    let send_expiring_credit_card_reminders = check.boolean(&root, "send_expiring_credit_card_reminders");
    let send_installment_schedule_reminders = check.boolean(&root, "send_installment_schedule_reminders");
    let send_statements = check.boolean(&root, "send_statements");

    check.stop()?;
    let missing = || DomainError::invalid("invalid billing run");
    Ok(Request {
        content: Content {
            business_unit_id: business_unit_id.ok_or_else(missing)?,
            cancel_installment_schedules,
            expiring_credit_card_reminder_options: reminders.ok_or_else(missing)?,
            installment_schedule_cancellation_options: cancellation.ok_or_else(missing)?,
            installment_schedule_options: schedule.ok_or_else(missing)?,
            installment_schedule_reminder_options: reminder_options.ok_or_else(missing)?,
            name: name.ok_or_else(missing)?,
            notification_email,
            process_installment_schedules,
            recurring_billing_run_id,
            scheduled_preprocessing_date: preprocessing.map(|(text, _)| text),
            scheduled_run_date: run.map(|(text, _)| text),
            send_expiring_credit_card_reminders,
            send_installment_schedule_reminders,
            send_statements,
            statement_options: statement.ok_or_else(missing)?,
            template_id,
        },
        status,
        sys_locked,
        sys_version,
        id,
    })
}

/// `sys_version`: the version a PUT read.
fn parse_version(check: &mut Check, root: &Obj<'_>) -> Option<u64> {
    root.get("sys_version").and_then(|v| {
        let n = v.as_u64();
        if n.is_none() {
            check.fail("/sys_version".into(), "must be a non-negative integer");
        }
        n
    })
}

/// `notification_email`: an email address, when given.
fn parse_email(check: &mut Check, root: &Obj<'_>) -> Option<String> {
    root.get("notification_email").and_then(|v| match v.as_str() {
        Some(s) if is_email(s) => Some(s.to_owned()),
        _ => {
            check.fail(
                "/notification_email".into(),
                format!("must be an email address of at most {MAX_EMAIL} characters"),
            );
            None
        }
    })
}

/// `installment_schedule_reminder_options`: any JSON object of at most 10 KB.
fn parse_reminder_object(check: &mut Check, root: &Obj<'_>) -> Option<Map<String, Value>> {
    check.required(root, "installment_schedule_reminder_options").and_then(|v| match v {
        Value::Object(map) if v.to_string().len() <= MAX_REMINDER_OPTIONS_BYTES => Some(map.clone()),
        _ => {
            check.fail("/installment_schedule_reminder_options".into(), "must be a JSON object of at most 10 KB");
            None
        }
    })
}

/// The body's `id`: left out of a create, the run's UUID in a PUT.
fn parse_id(check: &mut Check, root: &Obj<'_>, mode: Mode) -> Option<uuid::Uuid> {
    match (mode, root.get("id")) {
        (Mode::Create, Some(_)) => {
            check.fail("/id".into(), "the server makes the id: leave it out");
            None
        }
        (Mode::Create, None) => None,
        (Mode::Put, None) => {
            check.fail("/id".into(), "is required");
            None
        }
        (Mode::Put, Some(v)) => {
            let id = v.as_str().and_then(|s| uuid::Uuid::try_parse(s).ok());
            if id.is_none() {
                check.fail("/id".into(), "must be a UUID");
            }
            id
        }
    }
}

/// The body's `status`: a create's is draft or scheduled, a PUT must send one.
fn parse_status(check: &mut Check, root: &Obj<'_>, mode: Mode) -> Option<Status> {
    match (mode, root.get("status")) {
        (Mode::Create, None) => None,
        (Mode::Put, None) => {
            check.fail("/status".into(), "is required");
            None
        }
        (_, Some(v)) => match v.as_str().and_then(|s| s.parse::<Status>().ok()) {
            None => {
                check.fail("/status".into(), "must be one of draft, scheduled, ready for execution, scheduled for execution, preprocessing, running, completed, error, timed out, cancelled");
                None
            }
            Some(s) if mode == Mode::Create && !matches!(s, Status::Draft | Status::Scheduled) => {
                check.fail("/status".into(), "a new run is draft or scheduled");
                None
            }
            Some(s) => Some(s),
        },
    }
}

/// A date as sent and as read.
type Dated = Option<(String, OffsetDateTime)>;

/// The scheduled dates, in order, and present when the status needs them.
fn parse_schedule(check: &mut Check, root: &Obj<'_>, status: Option<Status>) -> (Dated, Dated) {
    let preprocessing = check.date(root, "scheduled_preprocessing_date", false);
    let run = check.date(root, "scheduled_run_date", false);
    check.pair(root, &preprocessing, &run, "scheduled_run_date");
    if status == Some(Status::Scheduled) {
        for (name, value) in [("scheduled_preprocessing_date", &preprocessing), ("scheduled_run_date", &run)] {
            if value.is_none() && root.get(name).is_none() {
                check.fail(format!("/{name}"), "is required for a scheduled run");
            }
        }
    }
    if status == Some(Status::ScheduledForExecution) && run.is_none() && root.get("scheduled_run_date").is_none() {
        check.fail("/scheduled_run_date".into(), "is required for a run scheduled for execution");
    }
    (preprocessing, run)
}

/// `expiring_credit_card_reminder_options`.
fn parse_card_reminders(check: &mut Check, root: &Obj<'_>) -> Option<ExpiringCardReminderOptions> {
    check.required(root, "expiring_credit_card_reminder_options").and_then(|v| {
        let obj = check.object(
            v,
            "/expiring_credit_card_reminder_options".into(),
            &["order_type_restriction", "order_types", "reminders"],
            &[],
        )?;
        let order_type_restriction = check.parsed(&obj, "order_type_restriction", RESTRICTIONS);
        let order_types = check.strings(&obj, "order_types");
        let reminders = parse_reminders(check, &obj);
        Some(ExpiringCardReminderOptions { order_type_restriction, order_types, reminders })
    })
}

/// `installment_schedule_cancellation_options`: a date range, in order.
fn parse_cancellation(check: &mut Check, root: &Obj<'_>) -> Option<CancellationOptions> {
    check.required(root, "installment_schedule_cancellation_options").and_then(|v| {
        let obj = check.object(
            v,
            "/installment_schedule_cancellation_options".into(),
            &["date_range_start", "date_range_end"],
            &[],
        )?;
        let start = check.date(&obj, "date_range_start", true);
        let end = check.date(&obj, "date_range_end", true);
        check.pair(&obj, &start, &end, "date_range_end");
        Some(CancellationOptions { date_range_end: end?.0, date_range_start: start?.0 })
    })
}

/// `installment_schedule_options`: a date range, in order, and what the schedules are for.
fn parse_installments(check: &mut Check, root: &Obj<'_>) -> Option<InstallmentScheduleOptions> {
    check.required(root, "installment_schedule_options").and_then(|v| {
        let allowed = [
            "card_type_restriction",
            "card_types",
            "date_range_end",
            "date_range_start",
            "do_not_send_standard_email_confirmations",
            "failure_notice_id",
            "payment_type_restriction",
            "payment_types",
            "success_notice_id",
        ];
        let obj = check.object(v, "/installment_schedule_options".into(), &allowed, &[])?;
        let start = check.date(&obj, "date_range_start", true);
        let end = check.date(&obj, "date_range_end", true);
        check.pair(&obj, &start, &end, "date_range_end");
        let options = InstallmentScheduleOptions {
            card_type_restriction: check.parsed(&obj, "card_type_restriction", RESTRICTIONS),
            card_types: check.strings(&obj, "card_types"),
            date_range_end: String::new(),
            date_range_start: String::new(),
            do_not_send_standard_email_confirmations: check.boolean(&obj, "do_not_send_standard_email_confirmations"),
            failure_notice_id: check.text(&obj, "failure_notice_id", false, MAX_ID),
            payment_type_restriction: check.parsed(&obj, "payment_type_restriction", RESTRICTIONS),
            payment_types: check.strings(&obj, "payment_types"),
            success_notice_id: check.text(&obj, "success_notice_id", false, MAX_ID),
        };
        Some(InstallmentScheduleOptions { date_range_end: end?.0, date_range_start: start?.0, ..options })
    })
}

/// `statement_options`.
fn parse_statement(check: &mut Check, root: &Obj<'_>) -> Option<StatementOptions> {
    check.required(root, "statement_options").and_then(|v| {
        let allowed = ["business_unit_ids", "business_unit_restriction", "customer_type", "statement_template_id"];
        let obj = check.object(v, "/statement_options".into(), &allowed, &[])?;
        Some(StatementOptions {
            business_unit_ids: check.strings(&obj, "business_unit_ids"),
            business_unit_restriction: check.parsed(&obj, "business_unit_restriction", RESTRICTIONS),
            customer_type: check.parsed(&obj, "customer_type", "both, contact, organization"),
            statement_template_id: check.text(&obj, "statement_template_id", false, MAX_ID),
        })
    })
}

/// The reminders: each with its dates, notice and optional name; ids unique, a reminder without
/// one gets the largest id + 1.
fn parse_reminders(check: &mut Check, options: &Obj<'_>) -> Vec<Reminder> {
    let Some(value) = options.get("reminders") else { return Vec::new() };
    let at = options.pointer("reminders");
    let Some(items) = value.as_array() else {
        check.fail(at, "must be an array of reminders");
        return Vec::new();
    };
    if items.len() > MAX_REMINDERS {
        check.fail(at, format!("has at most {MAX_REMINDERS} reminders"));
        return Vec::new();
    }
    let mut seen = std::collections::HashSet::new();
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let allowed = ["card_expiration_date_end", "card_expiration_date_start", "id", "name", "notice_id"];
        let Some(obj) = check.object(item, format!("{at}/{i}"), &allowed, &[]) else { continue };
        let start = check.date(&obj, "card_expiration_date_start", true);
        let end = check.date(&obj, "card_expiration_date_end", true);
        check.pair(&obj, &start, &end, "card_expiration_date_end");
        let notice_id = check.text(&obj, "notice_id", true, MAX_ID);
        let name = check.text(&obj, "name", false, MAX_NAME);
        let id = obj.get("id").and_then(|v| match v.as_u64().filter(|n| *n > 0 && *n < u64::MAX / 2) {
            Some(n) if seen.insert(n) => Some(n),
            Some(n) => {
                check.fail(obj.pointer("id"), format!("reminder id {n} is used twice"));
                None
            }
            None => {
                check.fail(obj.pointer("id"), "must be a positive integer");
                None
            }
        });
        if let (Some(start), Some(end), Some(notice_id)) = (start, end, notice_id) {
            parsed.push((
                id,
                Reminder {
                    card_expiration_date_end: end.0,
                    card_expiration_date_start: start.0,
                    id: 0,
                    name,
                    notice_id,
                },
            ));
        }
    }
    let mut next = seen.iter().copied().max().unwrap_or(0);
    parsed
        .into_iter()
        .map(|(id, reminder)| {
            let id = id.unwrap_or_else(|| {
                next += 1;
                next
            });
            Reminder { id, ..reminder }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Create, PUT and DELETE

impl BillingRun {
    /// A new run from a validated create: draft unless scheduled was asked, unlocked, version 1,
    /// created and modified now by `by`.
    pub fn create(request: Request, id: uuid::Uuid, by: &str, now: OffsetDateTime) -> Self {
        let at = timestamp(now);
        let new = Self {
            id,
            status: request.status.unwrap_or(Status::Draft),
            sys_created_at: at.clone(),
            sys_created_by_id: by.to_owned(),
            sys_last_modified_at: at,
            sys_last_modified_by_id: by.to_owned(),
            sys_locked: false,
            sys_version: 1,
            ..Self::default()
        };
        new.with_content(&request.content)
    }

    /// This run with `content` in place of its own.
    fn with_content(&self, c: &Content) -> Self {
        let c = c.clone();
        Self {
            business_unit_id: c.business_unit_id,
            cancel_installment_schedules: c.cancel_installment_schedules,
            expiring_credit_card_reminder_options: c.expiring_credit_card_reminder_options,
            installment_schedule_cancellation_options: c.installment_schedule_cancellation_options,
            installment_schedule_options: c.installment_schedule_options,
            installment_schedule_reminder_options: c.installment_schedule_reminder_options,
            name: c.name,
            notification_email: c.notification_email,
            process_installment_schedules: c.process_installment_schedules,
            recurring_billing_run_id: c.recurring_billing_run_id,
            scheduled_preprocessing_date: c.scheduled_preprocessing_date,
            scheduled_run_date: c.scheduled_run_date,
            send_expiring_credit_card_reminders: c.send_expiring_credit_card_reminders,
            send_installment_schedule_reminders: c.send_installment_schedule_reminders,
            send_statements: c.send_statements,
            statement_options: c.statement_options,
            template_id: c.template_id,
            ..self.clone()
        }
    }

    /// DELETE: a locked run refuses (409); only draft and cancelled runs are deleted.
    pub fn check_delete(&self) -> Result<(), DomainError> {
        if self.sys_locked {
            return Err(DomainError::conflict("the billing run is locked"));
        }
        if !self.status.deletable() {
            return Err(DomainError::conflict(format!(
                "a {} billing run cannot be deleted; only draft and cancelled runs can",
                self.status.name()
            )));
        }
        Ok(())
    }
}

/// A PUT that passed validation, with who sends it.
#[derive(Debug, Clone)]
pub struct Put<'a> {
    pub request: &'a Request,
    /// The caller holds `billing:admin` (only an admin changes `sys_locked`).
    pub admin: bool,
    pub by: &'a str,
    pub now: OffsetDateTime,
}

/// What a PUT does.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    /// Nothing changes: 200 with the run, nothing written, `sys_version` stays.
    Unchanged,
    /// The new run and the top-level fields that changed.
    Changed { run: Box<BillingRun>, fields: Vec<String> },
}

impl Request {
    /// A PUT may send a system status back unchanged (a GET-modify-PUT round trip of a completed
    /// run does), but asking for one is 400.
    pub fn check_status(&self, current: &BillingRun) -> Result<(), DomainError> {
        match self.status {
            Some(status) if status.system_only() && status != current.status => {
                Err(DomainError::field("/status", format!("{} is set by the system only", status.name())))
            }
            _ => Ok(()),
        }
    }
}

/// PUT semantics 3 to 6 of docs/billing-runs.md, after validation (400, with [`Request::check_status`]) and
/// `If-Match` (412): `sys_version`, the lock, the status transition and what content may change,
/// each 409 when refused.
pub fn apply_put(current: &BillingRun, put: &Put<'_>) -> Result<PutOutcome, DomainError> {
    let request = put.request;
    request.check_status(current)?;
    if let Some(sent) = request.sys_version {
        if sent != current.sys_version {
            return Err(DomainError::conflict(format!(
                "sys_version {sent} is not the run's current sys_version {}: read it again",
                current.sys_version
            )));
        }
    }
    let unlocking = put.admin && request.sys_locked == Some(false);
    if current.sys_locked && !unlocking {
        return Err(DomainError::conflict("the billing run is locked: only an administrator can unlock it"));
    }
    let status = request.status.unwrap_or(current.status);
    let locked = if put.admin { request.sys_locked.unwrap_or(current.sys_locked) } else { current.sys_locked };
    let content = current.with_content(&request.content);
    let mut next = BillingRun { status, sys_locked: locked, ..content.clone() };
    if next == *current {
        return Ok(PutOutcome::Unchanged);
    }
    if current.status.busy() {
        return Err(DomainError::conflict(format!(
            "the run is busy ({}): it accepts no change now",
            current.status.name()
        )));
    }
    transition(current.status, status)?;
    if content != *current && !current.status.content_editable() {
        return Err(DomainError::conflict(format!(
            "the content of a {} billing run cannot change; it can in draft, scheduled, ready for execution, error and timed out",
            current.status.name()
        )));
    }
    let fields = match (serde_json::to_value(current), serde_json::to_value(&next)) {
        (Ok(Value::Object(before)), Ok(Value::Object(after))) => changed_members(&before, &after),
        _ => Vec::new(),
    };
    next.sys_last_modified_at = timestamp(put.now);
    next.sys_last_modified_by_id = put.by.to_owned();
    next.sys_version = current.sys_version + 1;
    Ok(PutOutcome::Changed { run: Box::new(next), fields })
}

#[cfg(test)]
pub(crate) mod tests;
