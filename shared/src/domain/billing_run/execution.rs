//! Execution of billing runs (docs/billing-runs.md, "Execution"): when a run is due, what the
//! scheduler does next with it, which bills a statement takes, the action targets and the
//! statements, and the `statistics` they add up to. Pure: the worker (`worker::billing_runs`)
//! reads and writes, these decide.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{timestamp, BillingRun, CustomerType, Restriction, StatementOptions, Statistic, Status};
use crate::domain::bill::{Account, AccountType, Bill, BillStatus};
use crate::domain::check::instant;
use crate::domain::key::{Id, IdType, Kind};
use crate::domain::money::number;
use crate::domain::resource::Resource;

/// The actions of a run, in the order its `statistics` rows show them: the run's flag of the
/// same name asks for each.
pub const ACTIONS: [&str; 5] = [
    SEND_STATEMENTS,
    "process_installment_schedules",
    "cancel_installment_schedules",
    "send_expiring_credit_card_reminders",
    "send_installment_schedule_reminders",
];

pub const SEND_STATEMENTS: &str = "send_statements";

/// Most bills one statement lists: an account with more open bills is that target's error.
pub const MAX_STATEMENT_BILLS: usize = 500;

/// Most statements one run sends: a run whose filters leave more accounts is an error (split it).
pub const MAX_TARGETS: u64 = 100_000;

/// How many times a run's walk over its targets starts again when it found fewer pending targets
/// than preprocessing counted (an index lagging its table; a walk waits a second first) before
/// the rest count as errors.
pub const MAX_REWALKS: u32 = 30;

/// How many times preprocessing starts again (a second later) when its walk read fewer of the
/// tenant's ISSUED bills than they count (an index lagging its table).
pub const MAX_RESTARTS: u32 = 5;

/// The longest account name a target keeps (a bill's may be longer).
pub const MAX_TARGET_NAME: usize = 255;

/// The epoch milliseconds of a date or date-time (a date alone is its 00:00 UTC).
pub fn date_ms(text: &str) -> Option<u64> {
    let at = instant(text)?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// When the system's next move of `run` is due, when it waits for a date: a scheduled run's
/// preprocessing date, a run scheduled for execution's run date.
pub fn due_at(run: &BillingRun) -> Option<u64> {
    let date = match run.status {
        Status::Scheduled => run.scheduled_preprocessing_date.as_deref()?,
        Status::ScheduledForExecution => run.scheduled_run_date.as_deref()?,
        _ => return None,
    };
    // A date the validation admitted always parses; one that does not is due at once.
    Some(date_ms(date).unwrap_or(0))
}

/// A date is "come" when it is at or before now.
pub fn is_due(run: &BillingRun, now_ms: u64) -> bool {
    due_at(run).is_some_and(|due| due <= now_ms)
}

/// The actions `run` asks for (its flags), in [`ACTIONS`] order.
pub fn asked(run: &BillingRun) -> Vec<&'static str> {
    let flags = [
        run.send_statements,
        run.process_installment_schedules,
        run.cancel_installment_schedules,
        run.send_expiring_credit_card_reminders,
        run.send_installment_schedule_reminders,
    ];
    ACTIONS.iter().zip(flags).filter(|(_, flag)| *flag == Some(true)).map(|(name, _)| *name).collect()
}

/// How the statement targets of a run stand. The other actions have no targets (billflow holds
/// no installment schedules and no payment cards): their rows are all 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub total: u64,
    pub pending: u64,
    pub excluded: u64,
    pub processing: u64,
    pub successful: u64,
    pub error: u64,
}

/// The worker's record of a run's execution, kept beside the run (never shown). A member it
/// lacks (a record of an earlier version) takes its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Execution {
    /// Which preprocessing this is (1, 2, ...): its targets are apart from an earlier one's.
    pub generation: u64,
    /// The order key of the last bill (preprocessing) or target (running) taken.
    pub after: Option<String>,
    pub statements: Tally,
    /// When the run last moved (epoch ms): a run that has not for its timeout is timed out.
    pub moved_ms: u64,
    pub rewalks: u32,
    /// What preprocessing worked from ([`fingerprint`]): a run whose actions or
    /// `statement_options` changed since is preprocessed again before it runs.
    pub fingerprint: String,
    /// This preprocessing refreshes a run that is due to run: it runs when it ends.
    pub then_run: bool,
    /// Bills the preprocessing walk has read, open or not.
    pub walked_bills: u64,
    /// How many times preprocessing started again after a walk read fewer bills than counted.
    pub restarts: u32,
}

/// The actions and `statement_options` of `run`, as a digest: what its targets depend on.
pub fn fingerprint(run: &BillingRun) -> String {
    use sha2::Digest;
    let basis = serde_json::json!([asked(run), run.statement_options]).to_string();
    sha2::Sha256::digest(basis.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// What the scheduler does next with a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Nothing is due.
    Wait,
    StartPreprocessing,
    /// Due to run, but its actions or options changed since preprocessing: preprocess again,
    /// then run.
    Refresh,
    Preprocess,
    StartRunning,
    Run,
    /// It has not moved for the timeout: `timed out`.
    TimeOut,
    /// It cannot go on: `error`, with this reason.
    Fail(String),
}

/// The scheduler's next move of `run` with its `execution` record at `now_ms`; a busy run that
/// has not moved for `timeout_ms` times out.
pub fn next(run: &BillingRun, execution: Option<&Execution>, now_ms: u64, timeout_ms: u64) -> Next {
    match run.status {
        Status::Scheduled if is_due(run, now_ms) => Next::StartPreprocessing,
        Status::ScheduledForExecution if is_due(run, now_ms) => match execution {
            Some(e) if e.fingerprint == fingerprint(run) => Next::StartRunning,
            Some(_) => Next::Refresh,
            None => Next::Fail(LOST.to_owned()),
        },
        Status::Preprocessing | Status::Running => match execution {
            None => Next::Fail(LOST.to_owned()),
            Some(e) if now_ms.saturating_sub(e.moved_ms) > timeout_ms => Next::TimeOut,
            Some(_) if run.status == Status::Preprocessing => Next::Preprocess,
            Some(_) => Next::Run,
        },
        _ => Next::Wait,
    }
}

const LOST: &str = "the run's record of its preprocessing is missing: move it to draft and schedule it again";

impl Execution {
    /// A new preprocessing of `run`, as its next version: that version is its generation, so
    /// that no two preprocessings of a run share targets, even when a record was lost.
    pub fn start(run: &BillingRun, then_run: bool, now_ms: u64) -> Self {
        Self {
            generation: run.sys_version + 1,
            moved_ms: now_ms,
            fingerprint: fingerprint(run),
            then_run,
            ..Self::default()
        }
    }

    /// The running that follows preprocessing: every pending target is processing.
    pub fn run(&self, now_ms: u64) -> Self {
        let statements = Tally { processing: self.statements.pending, pending: 0, ..self.statements };
        Self { after: None, statements, moved_ms: now_ms, rewalks: 0, then_run: false, ..self.clone() }
    }

    /// `statistics`: one row per action the run asks for.
    pub fn statistics(&self, run: &BillingRun) -> Vec<Statistic> {
        asked(run)
            .into_iter()
            .map(|action| {
                let t = if action == SEND_STATEMENTS { self.statements } else { Tally::default() };
                Statistic {
                    action: action.to_owned(),
                    total: Some(t.total),
                    pending: Some(t.pending),
                    excluded: Some(t.excluded),
                    processing: Some(t.processing),
                    successful: Some(t.successful),
                    error: Some(t.error),
                }
            })
            .collect()
    }
}

/// Whether `run` sends statements at all.
pub fn sends_statements(run: &BillingRun) -> bool {
    run.send_statements == Some(true)
}

/// `run` moved by the system to `status` at `now`, with statistics from `execution`.
pub fn moved(run: &BillingRun, status: Status, execution: &Execution, now: OffsetDateTime) -> BillingRun {
    let mut next = run.clone();
    next.status = status;
    next.statistics = execution.statistics(run);
    next.sys_last_modified_at = timestamp(now);
    next.sys_last_modified_by_id = SYSTEM.to_owned();
    next.sys_version = run.sys_version + 1;
    let at = Some(timestamp(now));
    match status {
        Status::Preprocessing | Status::Running => {
            next.error = None;
            next.error_stack = None;
        }
        Status::ReadyForExecution => {
            next.preprocessing_date.clone_from(&at);
            next.last_refresh_date = at;
        }
        Status::Completed => next.run_date = at,
        _ => {}
    }
    next
}

/// `run` at the end of a preprocessing: `ready for execution`, or, for a refresh of a run due to
/// run, `running` at once (its refreshed targets all processing), the dates set either way.
pub fn preprocessed(run: &BillingRun, record: &Execution, now: OffsetDateTime) -> (BillingRun, Execution) {
    if !record.then_run {
        return (moved(run, Status::ReadyForExecution, record, now), record.clone());
    }
    let running = record.run(record.moved_ms);
    let mut next = moved(run, Status::Running, &running, now);
    next.preprocessing_date = Some(timestamp(now));
    next.last_refresh_date.clone_from(&next.preprocessing_date);
    (next, running)
}

/// `run` stopped by the system: `error` or `timed out`, with a reason a user can act on.
pub fn stopped(
    run: &BillingRun,
    status: Status,
    execution: &Execution,
    reason: &str,
    now: OffsetDateTime,
) -> BillingRun {
    let mut next = moved(run, status, execution, now);
    next.error = Some(reason.to_owned());
    next.error_stack = Some(format!(
        "{} at {}: {reason}",
        match run.status {
            Status::Preprocessing | Status::Scheduled => "preprocessing",
            _ => "running",
        },
        next.sys_last_modified_at
    ));
    next
}

/// Who the system's writes are by (`sys_last_modified_by_id`).
pub const SYSTEM: &str = "system";

/// The timeout's reason.
pub fn timed_out_reason(timeout_ms: u64) -> String {
    format!("the run made no progress for {} s: move it to draft and schedule it again", timeout_ms / 1000)
}

/// The reason of a run whose statements would go to more accounts than one run sends.
pub fn too_many_targets() -> String {
    format!(
        "statement_options leave more than {MAX_TARGETS} accounts with open bills: narrow business_unit_ids or customer_type, or split the run"
    )
}

// ---------------------------------------------------------------------------------------------
// Which bills a statement takes

/// Whether `bill` is open: ISSUED, not archived, its amount above what was paid.
pub fn is_open(bill: &Bill) -> bool {
    bill.status == BillStatus::Issued && !bill.is_archived && bill.amount > bill.amount_paid
}

/// Why `options` leave `bill` out of its account's statement, if they do. `customer_type`
/// compares with the bill's `account.type` and the business-unit restriction with its
/// `businessUnitId`; a bill without the field passes that filter.
pub fn left_out(options: &StatementOptions, bill: &Bill) -> Option<&'static str> {
    let account_type = bill.account.as_ref().and_then(|a| a.account_type);
    let wanted = match options.customer_type {
        Some(CustomerType::Contact) => Some(AccountType::Contact),
        Some(CustomerType::Organization) => Some(AccountType::Organization),
        Some(CustomerType::Both) | None => None,
    };
    if let (Some(wanted), Some(actual)) = (wanted, account_type) {
        if wanted != actual {
            return Some("customer_type leaves out the account's type");
        }
    }
    let unit = bill.business_unit_id.as_deref()?;
    let listed = options.business_unit_ids.iter().any(|id| id == unit);
    match options.business_unit_restriction {
        Some(Restriction::Include) if !listed => Some("business_unit_restriction include leaves out its business unit"),
        Some(Restriction::Exclude) if listed => Some("business_unit_restriction exclude leaves out its business unit"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Action targets and statements

/// Where a target stands. A target is stored pending until its result is written, in one write;
/// the actions list shows a pending target of a running run as processing ([`ActionTarget::shown`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumString)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum TargetStatus {
    Pending,
    Processing,
    Completed,
    Error,
    Excluded,
}

/// The account a statement goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetAccount {
    pub id: u64,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub account_type: Option<AccountType>,
}

/// One bill of a statement, exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementLine {
    pub id: u64,
    pub bill_number: u64,
    pub issue_date: Option<String>,
    pub due_date: String,
    #[serde(with = "number")]
    pub amount: Decimal,
    #[serde(with = "number")]
    pub amount_paid: Decimal,
    #[serde(with = "number")]
    pub balance: Decimal,
}

/// A statement: an account's open bills and their total balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub bills: Vec<StatementLine>,
    #[serde(with = "number")]
    pub total_balance: Decimal,
}

/// One target of one action of a run: for `send_statements`, an account with open bills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionTarget {
    pub id: uuid::Uuid,
    pub billing_run_id: uuid::Uuid,
    pub action: String,
    pub target: TargetAccount,
    pub status: TargetStatus,
    /// The open bills preprocessing found for the statement (at most [`MAX_STATEMENT_BILLS`]).
    pub bill_ids: Vec<u64>,
    /// Open bills of the account that `statement_options` leave out.
    pub excluded_bills: u64,
    /// More open bills than one statement lists were found.
    pub too_many_bills: bool,
    pub statement: Option<Statement>,
    /// Why it is excluded or an error.
    pub reason: Option<String>,
    pub sys_created_at: String,
    pub sys_last_modified_at: String,
    /// Which preprocessing of the run found it.
    pub generation: u64,
}

impl Resource for ActionTarget {
    const KIND: Kind = Kind::new("BILLING_RUN_TARGET", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    /// The targets of one preprocessing of a run, for its actions list and the running walk.
    fn group(&self) -> Option<String> {
        Some(targets_group(self.billing_run_id, self.generation))
    }

    /// By account.
    fn order(&self) -> String {
        format!("{:020}", self.target.id)
    }
}

/// The store group of the targets of preprocessing `generation` of run `run`.
pub fn targets_group(run: uuid::Uuid, generation: u64) -> String {
    format!("RUN#{}#{generation}", run.hyphenated())
}

/// The id of a run's statement target for `account` in preprocessing `generation`: the same
/// every time it is worked out, so that a repeated step finds the target it wrote.
pub fn target_id(run: uuid::Uuid, generation: u64, account: u64) -> uuid::Uuid {
    let name = format!("{}#{generation}#{SEND_STATEMENTS}#{account}", run.hyphenated());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes())
}

impl ActionTarget {
    /// The target as the actions list shows it while its run is `run_status`: a pending target
    /// of a running run is processing. `None` when it shows as stored.
    pub fn shown(&self, run_status: Status) -> Option<Self> {
        (run_status == Status::Running && self.status == TargetStatus::Pending)
            .then(|| Self { status: TargetStatus::Processing, ..self.clone() })
    }

    /// A new statement target for `account` (excluded until a bill is added).
    pub fn for_account(run: uuid::Uuid, generation: u64, account: &Account, now: OffsetDateTime) -> Self {
        Self {
            id: target_id(run, generation, account.id),
            billing_run_id: run,
            action: SEND_STATEMENTS.to_owned(),
            target: TargetAccount {
                id: account.id,
                name: Some(account.name.chars().take(MAX_TARGET_NAME).collect()),
                account_type: account.account_type,
            },
            status: TargetStatus::Excluded,
            bill_ids: Vec::new(),
            excluded_bills: 0,
            too_many_bills: false,
            statement: None,
            reason: Some(NO_BILL_ADMITTED.to_owned()),
            sys_created_at: timestamp(now),
            sys_last_modified_at: timestamp(now),
            generation,
        }
    }

    /// Adds an open bill of its account, `left` out by the filters or not; the tally follows
    /// the target's status.
    pub fn add(&mut self, bill: &Bill, left: Option<&str>, tally: &mut Tally) {
        let was = self.status;
        match left {
            Some(_) => self.excluded_bills += 1,
            None if self.bill_ids.contains(&bill.id) => {}
            None if self.bill_ids.len() >= MAX_STATEMENT_BILLS => self.too_many_bills = true,
            None => {
                self.bill_ids.push(bill.id);
                self.status = TargetStatus::Pending;
                self.reason = None;
            }
        }
        if was != self.status {
            tally.excluded = tally.excluded.saturating_sub(1);
            tally.pending += 1;
        }
    }

    /// The target's result from its bills as they are now (`bills`: those of its ids that still
    /// exist), at `now`; the tally's processing count moves to its result.
    pub fn process(&mut self, bills: &[Bill], tally: &mut Tally, now: OffsetDateTime) {
        self.sys_last_modified_at = timestamp(now);
        tally.processing = tally.processing.saturating_sub(1);
        if self.too_many_bills {
            self.status = TargetStatus::Error;
            self.reason = Some(format!(
                "the account has more than {MAX_STATEMENT_BILLS} open bills; a statement lists at most {MAX_STATEMENT_BILLS}"
            ));
            tally.error += 1;
            return;
        }
        match statement(bills.iter().filter(|b| is_open(b))) {
            Some(statement) if !statement.bills.is_empty() => {
                self.status = TargetStatus::Completed;
                self.statement = Some(statement);
                tally.successful += 1;
            }
            Some(_) => {
                self.status = TargetStatus::Excluded;
                self.reason = Some("its bills were paid, voided or archived after preprocessing".to_owned());
                tally.excluded += 1;
            }
            None => {
                self.status = TargetStatus::Error;
                self.reason = Some("the total balance lies outside the range of an amount".to_owned());
                tally.error += 1;
            }
        }
    }
}

/// The actions list's `status` filter: `completed` or `in:error,excluded`; an unknown status is 400.
pub fn parse_target_status(raw: Option<&str>) -> Result<Option<Vec<TargetStatus>>, crate::domain::DomainError> {
    super::parse_statuses(raw, ": pending, processing, completed, error or excluded")
}

const NO_BILL_ADMITTED: &str = "statement_options leave out every open bill of the account";

/// The statement of `bills` (in bill id order), their balances exact; `None` when the total
/// overflows.
pub fn statement<'a>(bills: impl Iterator<Item = &'a Bill>) -> Option<Statement> {
    let mut lines: Vec<StatementLine> = bills
        .map(|b| StatementLine {
            id: b.id,
            bill_number: b.bill_number,
            issue_date: b.issue_date.map(rfc3339),
            due_date: rfc3339(b.due_date),
            amount: b.amount,
            amount_paid: b.amount_paid,
            balance: b.amount - b.amount_paid,
        })
        .collect();
    lines.sort_by_key(|l| l.id);
    let total = lines.iter().try_fold(Decimal::ZERO, |sum, line| sum.checked_add(line.balance))?;
    let total = crate::domain::money::amount(Some(total))?;
    Some(Statement { bills: lines, total_balance: total })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests;
