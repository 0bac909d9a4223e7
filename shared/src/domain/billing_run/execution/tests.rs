use super::*;
use crate::domain::bill::NewBill;
use crate::domain::billing_run::{parse_request, Mode};
use proptest::prelude::*;
use serde_json::{json, Value};
use strum::VariantArray;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-12-07 10:00 UTC);
const NOW_MS: u64 = 1_796_637_600_000; // NOW in epoch ms
const TIMEOUT: u64 = 600_000;

fn run(status: Status) -> BillingRun {
    let body = crate::domain::billing_run::tests::body();
    let mut run = BillingRun::create(parse_request(&body, Mode::Create).unwrap(), uuid::Uuid::nil(), "7", NOW);
    run.status = status;
    run.scheduled_preprocessing_date = Some("2026-12-07".into());
    run.scheduled_run_date = Some("2026-12-07T10:00:00.001Z".into());
    run.send_statements = Some(true);
    run
}

fn bill(id: u64, account: Value, extra: Value) -> Bill {
    let mut body = json!({
        "calculationMethod": "LINE_ITEMS", "dueDate": "2026-12-31T00:00:00Z", "issueDate": "2026-12-01T00:00:00Z", "status": "ISSUED",
        "lineItems": [{"catalogItemId": 1, "quantity": 3, "unitPrice": 19.99}], "account": account
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    NewBill::parse(&body).unwrap().into_bill(id, 1000 + id, &mut (1..), NOW).unwrap()
}

#[test]
fn a_date_has_come_at_its_first_instant_in_utc_and_not_a_millisecond_before() {
    assert_eq!(date_ms("2026-12-07"), Some(NOW_MS - 10 * 3_600_000));
    assert_eq!(date_ms("2026-12-07T11:00:00+01:00"), Some(NOW_MS));
    let scheduled = run(Status::Scheduled);
    assert_eq!(due_at(&scheduled), date_ms("2026-12-07"));
    assert!(is_due(&scheduled, NOW_MS - 10 * 3_600_000), "at the date's 00:00 UTC");
    assert!(!is_due(&scheduled, NOW_MS - 10 * 3_600_000 - 1), "a millisecond before");
    let for_execution = run(Status::ScheduledForExecution);
    assert!(!is_due(&for_execution, NOW_MS), "its run date is a millisecond later");
    assert!(is_due(&for_execution, NOW_MS + 1));
    for status in Status::VARIANTS.iter().filter(|s| !matches!(s, Status::Scheduled | Status::ScheduledForExecution)) {
        assert_eq!(due_at(&run(*status)), None, "{status:?} waits for no date");
    }
}

#[test]
fn given_every_status_then_the_scheduler_moves_only_due_and_busy_runs() {
    let fingerprint = super::fingerprint(&run(Status::Draft));
    let record = Execution { generation: 1, moved_ms: NOW_MS, fingerprint, ..Execution::default() };
    let later = NOW_MS + 1;
    for status in Status::VARIANTS {
        let run = run(*status);
        let want = match status {
            Status::Scheduled => Next::StartPreprocessing,
            Status::ScheduledForExecution => Next::StartRunning,
            Status::Preprocessing => Next::Preprocess,
            Status::Running => Next::Run,
            _ => Next::Wait,
        };
        assert_eq!(next(&run, Some(&record), later, TIMEOUT), want, "{status:?}");
    }
    assert_eq!(next(&run(Status::Scheduled), None, NOW_MS - 36_000_001, TIMEOUT), Next::Wait, "not yet due");
    assert_eq!(next(&run(Status::Scheduled), None, later, TIMEOUT), Next::StartPreprocessing, "a first preprocessing");
    for status in [Status::Preprocessing, Status::Running] {
        let run = run(status);
        assert_eq!(next(&run, Some(&record), NOW_MS + TIMEOUT, TIMEOUT), want_busy(status), "within its timeout");
        assert_eq!(next(&run, Some(&record), NOW_MS + TIMEOUT + 1, TIMEOUT), Next::TimeOut, "past it for good");
        assert!(matches!(next(&run, None, later, TIMEOUT), Next::Fail(_)), "a lost record cannot go on");
    }
    assert!(matches!(next(&run(Status::ScheduledForExecution), None, later, TIMEOUT), Next::Fail(_)));
}

#[test]
fn a_run_whose_actions_or_statement_options_changed_since_preprocessing_is_preprocessed_again_then_run() {
    let due = run(Status::ScheduledForExecution);
    let record = Execution { generation: 2, fingerprint: super::fingerprint(&due), ..Execution::default() };
    assert_eq!(next(&due, Some(&record), NOW_MS + 1, TIMEOUT), Next::StartRunning);
    let mut narrowed = due.clone();
    narrowed.statement_options.business_unit_ids = vec!["bu-2".into()];
    assert_eq!(next(&narrowed, Some(&record), NOW_MS + 1, TIMEOUT), Next::Refresh);
    let mut fewer = due.clone();
    fewer.send_statements = Some(false);
    assert_eq!(next(&fewer, Some(&record), NOW_MS + 1, TIMEOUT), Next::Refresh);
    let mut renamed = due.clone();
    renamed.name = "another name".into();
    assert_eq!(next(&renamed, Some(&record), NOW_MS + 1, TIMEOUT), Next::StartRunning, "the name changes no target");
    let refresh = Execution {
        statements: Tally { total: 2, pending: 2, ..Tally::default() },
        ..Execution::start(&narrowed, true, 7)
    };
    let (running, record) = preprocessed(&narrowed, &refresh, NOW);
    assert_eq!((running.status, record.statements.processing, record.then_run), (Status::Running, 2, false));
    assert!(running.preprocessing_date.is_some() && running.last_refresh_date == running.preprocessing_date);
    let (ready, _) = preprocessed(&run(Status::Preprocessing), &Execution::start(&due, false, 7), NOW);
    assert_eq!(ready.status, Status::ReadyForExecution);
}

#[test]
fn a_pending_target_of_a_running_run_shows_as_processing() {
    let account = Account { id: 9, name: "N".repeat(1000), account_type: None };
    let target = ActionTarget {
        status: TargetStatus::Pending,
        ..ActionTarget::for_account(uuid::Uuid::nil(), 1, &account, NOW)
    };
    assert_eq!(target.target.name.as_ref().map(|n| n.chars().count()), Some(MAX_TARGET_NAME), "a long name is cut");
    assert_eq!(target.shown(Status::Running).map(|t| t.status), Some(TargetStatus::Processing));
    assert_eq!(target.shown(Status::ReadyForExecution), None);
    let done = ActionTarget { status: TargetStatus::Completed, ..target };
    assert_eq!(done.shown(Status::Running), None);
}

fn want_busy(status: Status) -> Next {
    if status == Status::Preprocessing {
        Next::Preprocess
    } else {
        Next::Run
    }
}

#[test]
fn each_status_the_scheduler_sets_carries_its_dates_statistics_and_reasons() {
    let record = Execution {
        generation: 2,
        statements: Tally { total: 3, pending: 2, excluded: 1, ..Tally::default() },
        ..Execution::default()
    };
    let mut scheduled = run(Status::Scheduled);
    scheduled.process_installment_schedules = Some(true);
    scheduled.error = Some("an earlier failure".into());
    let pre = moved(&scheduled, Status::Preprocessing, &record, NOW);
    assert_eq!((pre.status, pre.sys_version, pre.sys_last_modified_by_id.as_str()), (Status::Preprocessing, 2, SYSTEM));
    assert_eq!((pre.error.as_deref(), pre.preprocessing_date.as_deref()), (None, None));
    let rows: Vec<(&str, [Option<u64>; 3])> =
        pre.statistics.iter().map(|r| (r.action.as_str(), [r.total, r.pending, r.excluded])).collect();
    assert_eq!(
        rows,
        vec![("send_statements", [Some(3), Some(2), Some(1)]), ("process_installment_schedules", [Some(0); 3])]
    );
    let ready = moved(&pre, Status::ReadyForExecution, &record, NOW);
    assert_eq!(ready.preprocessing_date.as_deref(), Some("2026-12-07T10:00:00.000000Z"));
    assert_eq!(ready.last_refresh_date, ready.preprocessing_date);
    assert_eq!(ready.run_date, None);
    let running = record.run(NOW_MS);
    assert_eq!((running.statements.pending, running.statements.processing, running.after.as_deref()), (0, 2, None));
    let done = moved(&ready, Status::Completed, &running, NOW);
    assert_eq!(done.run_date.as_deref(), Some("2026-12-07T10:00:00.000000Z"));
    let failed = stopped(&done, Status::Error, &running, &too_many_targets(), NOW);
    assert_eq!(failed.error.as_deref(), Some(too_many_targets().as_str()));
    assert!(failed
        .error_stack
        .as_deref()
        .unwrap()
        .starts_with("running at 2026-12-07T10:00:00.000000Z: statement_options"));
    let timed_out = stopped(&pre, Status::TimedOut, &record, &timed_out_reason(TIMEOUT), NOW);
    assert_eq!(timed_out.status, Status::TimedOut);
    assert!(timed_out.error_stack.unwrap().starts_with("preprocessing at"));
    let start = Execution::start(&done, false, 5);
    assert_eq!(start.generation, done.sys_version + 1, "a new preprocessing has targets of its own");
    assert_eq!(start.fingerprint, super::fingerprint(&done));
}

#[test]
fn only_issued_unarchived_unpaid_bills_are_open() {
    let account = json!({"id": 1, "name": "A"});
    let issued = bill(1, account.clone(), json!({}));
    assert!(is_open(&issued));
    assert!(!is_open(&Bill { is_archived: true, ..issued.clone() }));
    assert!(!is_open(&Bill { status: BillStatus::Paid, ..issued.clone() }));
    assert!(!is_open(&Bill { status: BillStatus::Draft, ..issued.clone() }));
    assert!(!is_open(&Bill { amount_paid: issued.amount, ..issued.clone() }));
    assert!(!is_open(&Bill { amount: Decimal::ZERO, amount_paid: Decimal::ZERO, ..issued }));
}

#[test]
fn statement_options_filter_by_account_type_and_business_unit_and_pass_bills_without_them() {
    let contact = bill(1, json!({"id": 1, "name": "A", "type": "contact"}), json!({"businessUnitId": "bu-1"}));
    let organization =
        bill(2, json!({"id": 2, "name": "B", "type": "organization"}), json!({"businessUnitId": "bu-2"}));
    let untyped = bill(3, json!({"id": 3, "name": "C"}), json!({}));
    let options = |customer: &str, restriction: &str| -> StatementOptions {
        serde_json::from_value(json!({"business_unit_ids": ["bu-1"], "business_unit_restriction": restriction,
            "customer_type": customer, "statement_template_id": null}))
        .unwrap()
    };
    let admitted = |o: &StatementOptions| -> Vec<u64> {
        [&contact, &organization, &untyped].into_iter().filter(|b| left_out(o, b).is_none()).map(|b| b.id).collect()
    };
    assert_eq!(admitted(&options("both", "none")), vec![1, 2, 3]);
    assert_eq!(admitted(&options("contact", "none")), vec![1, 3]);
    assert_eq!(admitted(&options("organization", "none")), vec![2, 3]);
    assert_eq!(admitted(&options("both", "include")), vec![1, 3]);
    assert_eq!(admitted(&options("both", "exclude")), vec![2, 3]);
    assert_eq!(admitted(&options("organization", "include")), vec![3]);
    assert!(left_out(&options("contact", "none"), &organization).unwrap().contains("customer_type"));
}

#[test]
fn a_target_is_excluded_until_a_bill_passes_and_its_result_is_counted_once() {
    let account = Account { id: 9, name: "Nine".into(), account_type: None };
    let mut tally = Tally { total: 1, excluded: 1, ..Tally::default() };
    let mut target = ActionTarget::for_account(uuid::Uuid::nil(), 1, &account, NOW);
    assert_eq!(target.id, target_id(uuid::Uuid::nil(), 1, 9), "the same id every time it is worked out");
    assert_ne!(target.id, target_id(uuid::Uuid::nil(), 2, 9), "another preprocessing, another target");
    let open = bill(5, json!({"id": 9, "name": "Nine"}), json!({}));
    target.add(&open, Some("filtered"), &mut tally);
    assert_eq!(
        (target.status, target.excluded_bills, tally),
        (TargetStatus::Excluded, 1, Tally { total: 1, excluded: 1, ..Tally::default() })
    );
    target.add(&open, None, &mut tally);
    target.add(&open, None, &mut tally);
    assert_eq!(
        (target.status, target.bill_ids.clone(), tally.pending, tally.excluded),
        (TargetStatus::Pending, vec![5], 1, 0)
    );
    let mut tally = Execution { statements: tally, ..Execution::default() }.run(0).statements;
    let mut paid = open.clone();
    paid.status = BillStatus::Paid;
    let mut later = target.clone();
    later.process(&[paid], &mut tally, NOW);
    assert_eq!((later.status, tally.excluded, tally.processing), (TargetStatus::Excluded, 1, 0));
    let mut tally = Tally { processing: 1, ..Tally::default() };
    target.process(std::slice::from_ref(&open), &mut tally, NOW);
    assert_eq!((target.status, tally.successful, tally.processing), (TargetStatus::Completed, 1, 0));
    assert_eq!(target.statement.unwrap().total_balance, "59.97".parse::<Decimal>().unwrap());
}

#[test]
fn an_account_with_more_open_bills_than_a_statement_lists_is_an_error_target() {
    let account = Account { id: 9, name: "Nine".into(), account_type: None };
    let mut tally = Tally { total: 1, excluded: 1, ..Tally::default() };
    let mut target = ActionTarget::for_account(uuid::Uuid::nil(), 1, &account, NOW);
    for id in 1..=(MAX_STATEMENT_BILLS as u64 + 1) {
        target.add(&bill(id, json!({"id": 9, "name": "Nine"}), json!({})), None, &mut tally);
    }
    assert_eq!((target.bill_ids.len(), target.too_many_bills), (MAX_STATEMENT_BILLS, true));
    let mut tally = Tally { processing: 1, ..Tally::default() };
    target.process(&[], &mut tally, NOW);
    assert_eq!((target.status, tally.error), (TargetStatus::Error, 1));
    assert!(target.reason.unwrap().contains("more than 500 open bills"));
}

#[test]
fn the_actions_status_filter_takes_one_or_several_and_refuses_the_unknown() {
    assert_eq!(parse_target_status(Some("completed")).unwrap(), Some(vec![TargetStatus::Completed]));
    assert_eq!(
        parse_target_status(Some("in:error,excluded")).unwrap(),
        Some(vec![TargetStatus::Error, TargetStatus::Excluded])
    );
    assert_eq!(parse_target_status(Some("processing")).unwrap(), Some(vec![TargetStatus::Processing]));
    assert!(parse_target_status(Some("running")).is_err());
    assert_eq!(parse_target_status(None).unwrap(), None);
}

proptest! {
    /// However many bills of whatever exact amounts, a statement's balance is the exact sum of
    /// its bills' amounts less what was paid, in bill order, and none is lost or repeated.
    #[test]
    fn a_statement_balances_to_the_cent(cents in prop::collection::vec((0i64..10_000_000_000_000, 0i64..1000), 0..40)) {
        let bills: Vec<Bill> = cents.iter().enumerate().map(|(i, (amount, paid))| {
            let mut b = bill(40 - i as u64, json!({"id": 1, "name": "A"}), json!({}));
            b.amount = Decimal::new(*amount, 2);
            b.amount_paid = Decimal::new((*paid).min(*amount), 2);
            b
        }).collect();
        let statement = statement(bills.iter()).unwrap();
        let want: i128 = cents.iter().map(|(a, p)| i128::from(*a - (*p).min(*a))).sum();
        prop_assert_eq!(statement.total_balance, Decimal::from_i128_with_scale(want, 2));
        prop_assert_eq!(statement.bills.len(), bills.len());
        prop_assert!(statement.bills.windows(2).all(|w| w[0].id < w[1].id));
        for line in &statement.bills {
            prop_assert_eq!(line.balance, line.amount - line.amount_paid);
        }
    }
}
