use super::*;
use serde_json::json;
use time::macros::date;

use BillRunStatus::{Closed, Finalized, Open};
use RunKind::{Adhoc, Regular};
use SummaryStatus::*;

const CALLER: u64 = 7;

fn at(status: BillRunStatus, stage: SummaryStatus, pct: u8) -> Progress {
    Progress {
        bill_run_status: status,
        summary_status: stage,
        summary_status_percentage: pct,
        billing_user_admin_id: if status == Open { None } else { Some(CALLER) },
        failed_bills: 0,
    }
}

#[test]
fn full_invoices_may_run_again_only_when_it_set_bills_aside() {
    for kind in [Regular, Adhoc] {
        let clean = at(Closed, FullInvoices, 100);
        assert!(matches!(
            transition(kind, &clean, ask(None, Some(FullInvoices)), CALLER),
            Err(DomainError::Conflict(_))
        ));
        let failed = Progress { failed_bills: 3, ..clean };
        let again = transition(kind, &failed, ask(None, Some(FullInvoices)), CALLER).unwrap();
        assert_eq!(again, Progress { summary_status_percentage: 0, failed_bills: 0, ..clean }, "{kind:?}");
        let Err(DomainError::Conflict(why)) = transition(kind, &failed, ask(None, Some(Reporting)), CALLER) else {
            panic!("reports cannot run after full invoices")
        };
        assert!(why.contains("FULL_INVOICES (again, for the bills set aside)"), "{why}");
        assert!(transition(kind, &failed, ask(None, Some(Distribution)), CALLER).is_ok(), "or go on without them");
        let running = Progress { summary_status_percentage: 40, ..failed };
        assert!(transition(kind, &running, ask(None, Some(FullInvoices)), CALLER).is_err());
    }
}

fn ask(status: Option<BillRunStatus>, stage: Option<SummaryStatus>) -> StatusRequest {
    StatusRequest { bill_run_status: status, summary_status: stage }
}

enum Want {
    To(BillRunStatus, SummaryStatus, u8),
    Invalid,
    Conflict,
}

#[test]
fn given_each_state_and_request_when_decided_then_the_table_of_the_spec_holds() {
    use Want::*;
    let cases: Vec<(RunKind, Progress, StatusRequest, Want)> = vec![
        // close
        (Regular, Progress::OPEN, ask(Some(Closed), Some(Reporting)), To(Closed, Reporting, 0)),
        (Regular, Progress::OPEN, ask(None, Some(Reporting)), Conflict),
        (Regular, Progress::OPEN, ask(Some(Closed), None), Conflict),
        (Regular, Progress::OPEN, ask(Some(Closed), Some(FullInvoices)), Conflict),
        (Adhoc, Progress::OPEN, ask(None, Some(Reporting)), To(Closed, Reporting, 0)),
        (Adhoc, Progress::OPEN, ask(Some(Closed), Some(Reporting)), To(Closed, Reporting, 0)),
        (Adhoc, Progress::OPEN, ask(Some(Closed), None), Conflict),
        // stages of an OPEN run
        (Regular, Progress::OPEN, ask(None, Some(DraftInvoices)), Conflict),
        (Regular, Progress::OPEN, ask(None, Some(FullInvoices)), Conflict),
        (Regular, Progress::OPEN, ask(None, Some(Distribution)), Conflict),
        (Adhoc, Progress::OPEN, ask(None, Some(FullInvoices)), Conflict),
        // REPORTING again
        (Regular, at(Closed, Reporting, 100), ask(None, Some(Reporting)), To(Closed, Reporting, 0)),
        (Regular, at(Closed, DraftInvoices, 100), ask(None, Some(Reporting)), To(Closed, Reporting, 0)),
        (Regular, at(Closed, Reporting, 40), ask(None, Some(Reporting)), Conflict),
        (Regular, at(Closed, FullInvoices, 100), ask(None, Some(Reporting)), Conflict),
        (Adhoc, at(Closed, Reporting, 100), ask(None, Some(Reporting)), To(Closed, Reporting, 0)),
        (Adhoc, at(Closed, FullInvoices, 100), ask(None, Some(Reporting)), Conflict),
        // DRAFT_INVOICES
        (Regular, at(Closed, Reporting, 100), ask(None, Some(DraftInvoices)), To(Closed, DraftInvoices, 0)),
        (Regular, at(Closed, DraftInvoices, 100), ask(None, Some(DraftInvoices)), To(Closed, DraftInvoices, 0)),
        (Regular, at(Closed, Reporting, 0), ask(None, Some(DraftInvoices)), Conflict),
        (Regular, at(Closed, FullInvoices, 100), ask(None, Some(DraftInvoices)), Conflict),
        (Adhoc, at(Closed, Reporting, 100), ask(None, Some(DraftInvoices)), Invalid),
        // FULL_INVOICES
        (Regular, at(Closed, Reporting, 100), ask(None, Some(FullInvoices)), To(Closed, FullInvoices, 0)),
        (Regular, at(Closed, DraftInvoices, 100), ask(None, Some(FullInvoices)), To(Closed, FullInvoices, 0)),
        (Regular, at(Closed, DraftInvoices, 99), ask(None, Some(FullInvoices)), Conflict),
        (Regular, at(Closed, FullInvoices, 100), ask(None, Some(FullInvoices)), Conflict),
        (Adhoc, at(Closed, Reporting, 100), ask(None, Some(FullInvoices)), To(Closed, FullInvoices, 0)),
        (Adhoc, at(Closed, Reporting, 50), ask(None, Some(FullInvoices)), Conflict),
        // DISTRIBUTION
        (Regular, at(Closed, FullInvoices, 100), ask(None, Some(Distribution)), To(Closed, Distribution, 0)),
        (Regular, at(Closed, FullInvoices, 10), ask(None, Some(Distribution)), Conflict),
        (Regular, at(Closed, Reporting, 100), ask(None, Some(Distribution)), Conflict),
        (Regular, at(Closed, DraftInvoices, 100), ask(None, Some(Distribution)), Conflict),
        (Regular, at(Closed, Distribution, 100), ask(None, Some(Distribution)), Conflict),
        (Adhoc, at(Closed, FullInvoices, 100), ask(None, Some(Distribution)), To(Closed, Distribution, 0)),
        (Adhoc, at(Closed, Reporting, 100), ask(None, Some(Distribution)), Conflict),
        // reopen
        (Regular, at(Closed, Reporting, 100), ask(Some(Open), None), To(Open, Properties, 100)),
        (Regular, at(Closed, DraftInvoices, 100), ask(Some(Open), None), To(Open, Properties, 100)),
        (Regular, at(Closed, Reporting, 100), ask(Some(Open), Some(Properties)), To(Open, Properties, 100)),
        (Regular, at(Closed, Reporting, 20), ask(Some(Open), None), Conflict),
        (Regular, at(Closed, FullInvoices, 0), ask(Some(Open), None), Conflict),
        (Regular, at(Closed, FullInvoices, 100), ask(Some(Open), None), Conflict),
        (Regular, at(Closed, Distribution, 100), ask(Some(Open), None), Conflict),
        (Regular, at(Closed, Reporting, 100), ask(Some(Open), Some(FullInvoices)), Conflict),
        (Adhoc, at(Closed, Reporting, 100), ask(Some(Open), None), To(Open, Properties, 100)),
        (Adhoc, at(Closed, FullInvoices, 100), ask(Some(Open), None), Conflict),
        // system-only values
        (Regular, Progress::OPEN, ask(None, Some(Starting)), Invalid),
        (Regular, at(Closed, Reporting, 100), ask(None, Some(Properties)), Invalid),
        (Regular, at(Closed, Distribution, 100), ask(None, Some(CombiningInvoices)), Invalid),
        (Regular, at(Closed, Distribution, 100), ask(None, Some(Payment)), Invalid),
        (Regular, at(Closed, Distribution, 100), ask(None, Some(ReactivatingRpis)), Invalid),
        (Regular, at(Closed, Distribution, 100), ask(None, Some(Archiving)), Invalid),
        (Adhoc, at(Closed, Distribution, 100), ask(None, Some(Finished)), Invalid),
        (Regular, at(Closed, FullInvoices, 100), ask(Some(Finalized), None), Invalid),
        // FINALIZED is frozen
        (Regular, at(Finalized, Finished, 100), ask(Some(Open), None), Conflict),
        (Regular, at(Finalized, Finished, 100), ask(None, Some(Reporting)), Conflict),
        (Adhoc, at(Finalized, Finished, 100), ask(None, Some(Distribution)), Conflict),
        // no status request: unchanged
        (Regular, at(Closed, Reporting, 10), ask(None, None), To(Closed, Reporting, 10)),
    ];
    for (kind, current, request, want) in cases {
        let got = transition(kind, &current, request, CALLER);
        let label = format!("{kind:?} {current:?} {request:?}");
        match (want, got) {
            (To(status, stage, pct), Ok(p)) => {
                assert_eq!(
                    (p.bill_run_status, p.summary_status, p.summary_status_percentage),
                    (status, stage, pct),
                    "{label}"
                )
            }
            (Invalid, Err(DomainError::Invalid { .. })) | (Conflict, Err(DomainError::Conflict(_))) => {}
            (_, got) => panic!("{label}: unexpected {got:?}"),
        }
    }
}

#[test]
fn given_a_close_then_the_caller_is_recorded_and_a_reopen_clears_it() {
    let closed = transition(Regular, &Progress::OPEN, ask(Some(Closed), Some(Reporting)), 42).unwrap();
    assert_eq!(closed.billing_user_admin_id, Some(42));
    let reopened =
        transition(Regular, &Progress { summary_status_percentage: 100, ..closed }, ask(Some(Open), None), 1).unwrap();
    assert_eq!(reopened, Progress::OPEN);
}

#[test]
fn given_a_refusal_then_the_message_names_the_state_and_what_is_allowed() {
    let err = transition(Regular, &at(Closed, FullInvoices, 100), ask(Some(Open), None), CALLER).unwrap_err();
    let DomainError::Conflict(message) = err else { panic!("expected conflict") };
    assert!(message.contains("CLOSED at FULL_INVOICES 100%"), "{message}");
    assert!(message.contains("summaryStatus DISTRIBUTION"), "{message}");
    let err = transition(Regular, &at(Closed, Reporting, 30), ask(None, Some(FullInvoices)), CALLER).unwrap_err();
    assert!(err.to_string().contains("stage REPORTING is still running"), "{err}");
}

#[test]
fn given_each_stage_when_the_worker_steps_then_it_completes_and_walks_to_finalized() {
    let mut p = at(Closed, Distribution, 0);
    let mut seen = Vec::new();
    while let Some(next) = p.worker_step() {
        seen.push((next.bill_run_status, next.summary_status, next.summary_status_percentage));
        p = next;
    }
    assert_eq!(
        seen,
        vec![
            (Closed, Distribution, 100),
            (Closed, CombiningInvoices, 100),
            (Closed, Payment, 100),
            (Closed, ReactivatingRpis, 100),
            (Closed, Archiving, 100),
            (Finalized, Finished, 100),
        ]
    );
    for stage in [Reporting, DraftInvoices, FullInvoices] {
        let step = at(Closed, stage, 0).worker_step().unwrap();
        assert_eq!((step.summary_status, step.summary_status_percentage), (stage, 100));
        assert_eq!(step.worker_step(), None, "{stage:?} done is idle");
    }
    assert_eq!(Progress::OPEN.worker_step(), None);
    assert_eq!(at(Finalized, Finished, 100).worker_step(), None);
}

fn regular() -> BillRun {
    NewBillRun::parse(&json!({
        "name": "Jan 2024", "billingCycleId": 3, "periodStartDate": "2024-01-01",
        "periodEndDate": "2024-01-31", "invoiceDate": "2024-02-01"
    }))
    .unwrap()
    .into_run(1, date!(2024 - 01 - 01))
}

fn adhoc() -> AdhocBillRun {
    NewAdhocBillRun::parse(&json!({"name": "One-off", "invoiceDate": "2024-02-01"}))
        .unwrap()
        .into_run(1, date!(2024 - 01 - 01))
}

fn patch<R: Run>(run: &R, ops: Value) -> Result<Patched<R>, DomainError> {
    apply_patch(run, &Patch::parse(&ops)?, CALLER)
}

fn changed<R: Run>(outcome: Result<Patched<R>, DomainError>) -> R {
    match outcome {
        Ok(Patched::Changed { run, .. }) => run,
        other => panic!("expected a change, got {other:?}"),
    }
}

fn pointer_of<R: std::fmt::Debug>(outcome: Result<Patched<R>, DomainError>) -> String {
    match outcome {
        Err(DomainError::Invalid { errors, .. }) => errors.first().map(|e| e.pointer.clone()).unwrap_or_default(),
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn given_a_new_run_then_it_is_open_at_properties_100_with_every_field_present() {
    let value = serde_json::to_value(regular()).unwrap();
    assert_eq!(value["billRunStatus"], "OPEN");
    assert_eq!(value["summaryStatus"], "PROPERTIES");
    assert_eq!(value["summaryStatusPercentage"], 100);
    assert_eq!(value["sortableName"], "jan 2024");
    assert_eq!(value["includeUsageUntilDate"], Value::Null);
    assert_eq!(value["failedBills"], 0);
    assert_eq!(value.as_object().unwrap().len(), 21);
    let value = serde_json::to_value(adhoc()).unwrap();
    assert_eq!(value["adhocProductInventoryIds"], json!([]));
    assert_eq!(value["nickname"], Value::Null);
}

#[test]
fn given_invalid_create_bodies_then_each_problem_is_named() {
    let base = json!({
        "name": "Jan", "billingCycleId": 3, "periodStartDate": "2024-01-01",
        "periodEndDate": "2024-01-31", "invoiceDate": "2024-02-01"
    });
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("name", json!("")), "/name"),
        (with("name", json!("a name that is far too long")), "/name"),
        (with("name", json!("bad*name")), "/name"),
        (with("billingCycleId", json!(-1)), "/billingCycleId"),
        (with("billingCycleId", json!("3")), "/billingCycleId"),
        (with("periodEndDate", json!("2023-12-31")), "/periodEndDate"),
        (with("invoiceDate", json!("2024-02-30")), "/invoiceDate"),
        (with("paused", json!("yes")), "/paused"),
        (with("id", json!(4)), "/id"),
        (with("billRunStatus", json!("OPEN")), "/billRunStatus"),
        (json!({}), "/name"),
        (json!([1]), ""),
    ];
    for (body, pointer) in cases {
        match NewBillRun::parse(&body) {
            Err(DomainError::Invalid { errors, .. }) => {
                assert!(errors.iter().any(|e| e.pointer == pointer), "{body}: {errors:?}")
            }
            other => panic!("{body}: expected 400, got {other:?}"),
        }
    }
    for (body, pointer) in [
        (json!({"name": "x", "invoiceDate": "2024-01-01", "nickname": ""}), "/nickname"),
        (
            json!({"name": "x", "invoiceDate": "2024-01-01", "adhocProductInventoryIds": [1, 1]}),
            "/adhocProductInventoryIds/1",
        ),
        (
            json!({"name": "x", "invoiceDate": "2024-01-01", "rentalProductInventoryIds": [0]}),
            "/rentalProductInventoryIds/0",
        ),
        (json!({"name": "x"}), "/invoiceDate"),
    ] {
        match NewAdhocBillRun::parse(&body) {
            Err(DomainError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].pointer, pointer, "{body}")
            }
            other => panic!("{body}: expected 400, got {other:?}"),
        }
    }
}

#[test]
fn given_patches_of_fields_then_read_only_unknown_and_ill_typed_are_400() {
    let run = regular();
    let cases = [
        (json!([{"op": "replace", "path": "/name", "value": "Other"}]), "/name"),
        (json!([{"op": "replace", "path": "/id", "value": 9}]), "/id"),
        (json!([{"op": "replace", "path": "/summaryStatusPercentage", "value": 5}]), "/summaryStatusPercentage"),
        (json!([{"op": "replace", "path": "/billingUserAdminId", "value": 5}]), "/billingUserAdminId"),
        (json!([{"op": "add", "path": "/colour", "value": "red"}]), "/colour"),
        (json!([{"op": "replace", "path": "/paused", "value": "true"}]), "/paused"),
        (json!([{"op": "replace", "path": "/invoiceDate", "value": "tomorrow"}]), "/invoiceDate"),
        (json!([{"op": "remove", "path": "/invoiceDate"}]), "/invoiceDate"),
        (json!([{"op": "replace", "path": "/summaryStatus", "value": "DONE"}]), "/summaryStatus"),
        (json!([{"op": "replace", "path": "/billRunStatus", "value": "FINALIZED"}]), "/billRunStatus"),
        (json!([{"op": "replace", "path": "/summaryStatus", "value": "FINISHED"}]), "/summaryStatus"),
        (json!([{"op": "replace", "path": "", "value": {}}]), "/billRunStatus"),
    ];
    for (ops, pointer) in cases {
        assert_eq!(pointer_of(patch(&run, ops.clone())), pointer, "{ops}");
    }
}

#[test]
fn given_writable_fields_on_an_open_run_then_they_change() {
    let run = changed(patch(
        &regular(),
        json!([
            {"op": "replace", "path": "/paused", "value": true},
            {"op": "replace", "path": "/includeUsageUntilDate", "value": "2024-01-20"},
            {"op": "replace", "path": "/invoiceDate", "value": "2024-02-02"}
        ]),
    ));
    assert!(run.paused);
    assert_eq!(run.include_usage_until_date, Some(date!(2024 - 01 - 20)));
    assert_eq!(run.invoice_date, date!(2024 - 02 - 02));
    let run = changed(patch(
        &adhoc(),
        json!([
            {"op": "add", "path": "/adhocProductInventoryIds/-", "value": 5},
            {"op": "replace", "path": "/nickname", "value": "nick"},
            {"op": "replace", "path": "/name", "value": "Renamed"}
        ]),
    ));
    assert_eq!(run.adhoc_product_inventory_ids, vec![5]);
    assert_eq!(run.nickname.as_deref(), Some("nick"));
    assert_eq!(run.name, "Renamed");
}

#[test]
fn given_a_patch_that_changes_nothing_then_unchanged() {
    let run = regular();
    for ops in [
        json!([]),
        json!([{"op": "replace", "path": "/paused", "value": false}]),
        json!([{"op": "test", "path": "/name", "value": "Jan 2024"}]),
        json!([{"op": "replace", "path": "/billRunStatus", "value": "OPEN"}]),
    ] {
        assert_eq!(patch(&run, ops.clone()), Ok(Patched::Unchanged), "{ops}");
    }
}

#[test]
fn given_a_closed_run_then_only_invoice_date_may_change_until_full_invoices() {
    let close = json!([
        {"op": "replace", "path": "/billRunStatus", "value": "CLOSED"},
        {"op": "replace", "path": "/summaryStatus", "value": "REPORTING"},
        {"op": "replace", "path": "/invoiceDate", "value": "2024-02-03"}
    ]);
    let mut run = changed(patch(&regular(), close));
    assert_eq!(
        (run.bill_run_status, run.invoice_date, run.billing_user_admin_id),
        (Closed, date!(2024 - 02 - 03), Some(CALLER))
    );
    let paused = json!([{"op": "replace", "path": "/paused", "value": true}]);
    assert!(matches!(patch(&run, paused.clone()), Err(DomainError::Conflict(_))));
    let invoice = json!([{"op": "replace", "path": "/invoiceDate", "value": "2024-02-04"}]);
    assert_eq!(changed(patch(&run, invoice.clone())).invoice_date, date!(2024 - 02 - 04));
    run.set_progress(at(Closed, FullInvoices, 0));
    assert!(matches!(patch(&run, invoice), Err(DomainError::Conflict(_))));
    run.set_progress(at(Finalized, Finished, 100));
    assert!(matches!(patch(&run, paused), Err(DomainError::Conflict(_))));
}

#[test]
fn given_reporting_done_when_reporting_is_written_again_then_it_reruns() {
    let mut run = adhoc();
    run.set_progress(at(Closed, Reporting, 100));
    let run = changed(patch(&run, json!([{"op": "replace", "path": "/summaryStatus", "value": "REPORTING"}])));
    assert_eq!(run.summary_status_percentage, 0);
}

#[test]
fn given_whole_month_periods_when_moved_then_months_shift_and_ends_clamp() {
    let mut run = regular();
    run.include_usage_until_date = Some(date!(2024 - 01 - 31));
    let moved = shift_schedule(&run, 1).unwrap();
    assert_eq!(
        (moved.period_start_date, moved.period_end_date, moved.invoice_date, moved.include_usage_until_date),
        (date!(2024 - 02 - 01), date!(2024 - 02 - 29), date!(2024 - 03 - 01), Some(date!(2024 - 02 - 29)))
    );
    let back = shift_schedule(&moved, -1).unwrap();
    assert_eq!((back.period_start_date, back.period_end_date), (date!(2024 - 01 - 01), date!(2024 - 01 - 31)));
    // a quarter starting mid-month
    run.period_start_date = date!(2024 - 01 - 15);
    run.period_end_date = date!(2024 - 04 - 14);
    let moved = shift_schedule(&run, 2).unwrap();
    assert_eq!((moved.period_start_date, moved.period_end_date), (date!(2024 - 07 - 15), date!(2024 - 10 - 14)));
    // a ten-day period moves by days
    run.period_start_date = date!(2024 - 01 - 01);
    run.period_end_date = date!(2024 - 01 - 10);
    run.invoice_date = date!(2024 - 01 - 11);
    let moved = shift_schedule(&run, -3).unwrap();
    assert_eq!(
        (moved.period_start_date, moved.period_end_date, moved.invoice_date),
        (date!(2023 - 12 - 02), date!(2023 - 12 - 11), date!(2023 - 12 - 12))
    );
    // only OPEN runs move, and absurd moves are refused rather than overflowing
    assert!(matches!(shift_schedule(&run, i64::MAX), Err(DomainError::Invalid { .. })));
    run.bill_run_status = Closed;
    assert!(matches!(shift_schedule(&run, 1), Err(DomainError::Conflict(_))));
}

#[test]
fn whole_months_and_periods_parse_as_the_spec_says() {
    assert_eq!(whole_months(date!(2024 - 01 - 31), date!(2024 - 02 - 28)), Some(1));
    assert_eq!(whole_months(date!(2024 - 01 - 01), date!(2024 - 12 - 31)), Some(12));
    assert_eq!(whole_months(date!(2024 - 01 - 01), date!(2024 - 01 - 30)), None);
    for (text, want) in [(Some("2"), Ok(2)), (Some("-1"), Ok(-1))] {
        assert_eq!(parse_periods(text), want);
    }
    for text in [None, Some("0"), Some("1.5"), Some("x"), Some("")] {
        assert!(parse_periods(text).is_err(), "{text:?}");
    }
}

#[test]
fn given_a_stage_over_the_bills_when_it_finishes_then_only_reporting_records_the_report() {
    use crate::domain::bill::Report;
    let report = Report {
        revenue: rust_decimal::Decimal::new(123_456, 2),
        max_invoice_value: Some(rust_decimal::Decimal::new(99_900, 2)),
        max_invoice_customer_id: Some(42),
        max_invoice_bill_id: Some(5),
    };
    let mut run = regular();
    run.finish_stage(DraftInvoices, &report);
    assert_eq!(run, regular(), "DRAFT_INVOICES records nothing on the run");
    run.finish_stage(Reporting, &report);
    assert_eq!(
        (run.revenue_in_major_currency, run.max_invoice_value, run.max_invoice_customer_id),
        (1234, Some(rust_decimal::Decimal::new(99_900, 2)), Some(42))
    );
    let mut adhoc_run = adhoc();
    adhoc_run.finish_stage(Reporting, &report);
    assert_eq!(adhoc_run.revenue_in_major_currency, 1234, "an adhoc run keeps the revenue alone");
}

#[test]
fn given_a_billing_cycle_then_a_run_joins_it_only_beside_runs_it_does_not_overlap() {
    let run =
        |id: u64, start: Date, end: Date| BillRun { id, period_start_date: start, period_end_date: end, ..regular() };
    let march = run(1, date!(2024 - 03 - 01), date!(2024 - 03 - 31));
    let april = run(2, date!(2024 - 04 - 01), date!(2024 - 04 - 30));
    let cycle = [march.clone(), april.clone()];
    // Disjoint from both, and a run beside itself (a schedule move of a member): admitted.
    assert_eq!(run(3, date!(2024 - 05 - 01), date!(2024 - 05 - 31)).admit_among(&cycle), Ok(()));
    assert_eq!(run(1, date!(2024 - 03 - 02), date!(2024 - 03 - 31)).admit_among(std::slice::from_ref(&march)), Ok(()));
    // One shared day is an overlap; the refusal names the first run overlapped.
    for (start, end, first) in [
        (date!(2024 - 03 - 31), date!(2024 - 04 - 15), 1),
        (date!(2024 - 04 - 30), date!(2024 - 05 - 31), 2),
        (date!(2024 - 01 - 01), date!(2024 - 12 - 31), 1),
    ] {
        match run(3, start, end).admit_among(&cycle) {
            Err(DomainError::Conflict(detail)) => assert!(detail.contains(&format!("bill run {first} ")), "{detail}"),
            other => panic!("expected 409, got {other:?}"),
        }
    }
    // Adhoc runs have no cycle: they collide with nothing.
    assert_eq!(adhoc().admit_among(&[adhoc()]), Ok(()));
}
