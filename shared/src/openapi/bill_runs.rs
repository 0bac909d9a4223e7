//! Bill runs and adhoc bill runs: their schemas and the schedule move's parameter.

use super::*;

pub(super) fn periods_param() -> Value {
    json!({
        "name": "periods", "in": "query", "required": true,
        "description": "Periods to move by (negative moves back): whole months when the run covers whole months, \
            else its length in days",
        "schema": {"type": "integer", "minimum": -MAX_PERIODS, "maximum": MAX_PERIODS, "not": {"const": 0}},
    })
}

/// Bills the last stage that walked them set aside.
fn failed_bills() -> Value {
    json!({"type": "integer", "minimum": 0,
        "description": "Bills the last stage that walked the run's bills could not process and went on without \
            (each says why in its setAside); 0 while a stage runs. FULL_INVOICES may be requested again while it \
            is above 0."})
}

/// Bill runs: the resource, its projection and its create.
pub(super) fn run_schemas() -> Vec<(&'static str, Value)> {
    use crate::domain::bill_run::{BillRunStatus, SummaryStatus};
    let run_status = enumeration(&names::<BillRunStatus>());
    let summary_status = enumeration(&names::<SummaryStatus>());
    let bill_run = exact(&[
        ("id", integer(1)),
        ("name", string()),
        ("sortableName", string()),
        ("billingCycleId", integer(1)),
        ("created", date()),
        ("periodStartDate", date()),
        ("periodEndDate", date()),
        ("invoiceDate", date()),
        ("includeUsageUntilDate", nullable(date())),
        ("billRunStatus", run_status.clone()),
        ("summaryStatus", summary_status.clone()),
        ("summaryStatusPercentage", json!({"type": "integer", "minimum": 0, "maximum": 100})),
        ("billingUserAdminId", json!({"type": ["integer", "null"]})),
        ("parallel", json!({"type": "boolean"})),
        ("paused", json!({"type": "boolean"})),
        ("revenueInMajorCurrency", json!({"type": "integer"})),
        ("usageSuspenseCount", integer(0)),
        ("rentalSuspenseCount", integer(0)),
        ("maxInvoiceValue", json!({"type": ["number", "null"]})),
        ("maxInvoiceCustomerId", json!({"type": ["integer", "null"]})),
        ("failedBills", failed_bills()),
    ]);
    let run_name = json!({"type": "string", "pattern": "^[A-Za-z0-9 _./-]{1,22}$"});
    let bill_run_create = open(
        &[
            ("name", run_name.clone()),
            ("billingCycleId", integer(1)),
            ("periodStartDate", date()),
            ("periodEndDate", date()),
            ("invoiceDate", date()),
            ("includeUsageUntilDate", nullable(date())),
            ("parallel", json!({"type": "boolean"})),
            ("paused", json!({"type": "boolean"})),
        ],
        &["name", "billingCycleId", "periodStartDate", "periodEndDate", "invoiceDate"],
    );
    let mut schemas =
        vec![("BillRunFields", projection(&bill_run)), ("BillRun", bill_run), ("BillRunCreate", bill_run_create)];
    schemas.extend(adhoc_run_schemas(run_status, summary_status, run_name));
    schemas
}

/// Adhoc bill runs: the resource, its projection and its create.
pub(super) fn adhoc_run_schemas(
    run_status: Value,
    summary_status: Value,
    run_name: Value,
) -> Vec<(&'static str, Value)> {
    // Distinct positive 64-bit ids, and a nickname of 1 to 100 characters, as the parser reads them.
    let inventory_ids = json!({"type": "array", "maxItems": MAX_INVENTORY_IDS, "uniqueItems": true,
        "items": {"type": "integer", "minimum": 1, "maximum": u64::MAX}});
    let nickname = nullable(json!({"type": "string", "minLength": 1, "maxLength": 100}));
    let adhoc_run = exact(&[
        ("id", integer(1)),
        ("name", string()),
        ("nickname", nullable_string()),
        ("created", date()),
        ("invoiceDate", date()),
        ("billRunStatus", run_status),
        ("summaryStatus", summary_status),
        ("summaryStatusPercentage", json!({"type": "integer", "minimum": 0, "maximum": 100})),
        ("billingUserAdminId", json!({"type": ["integer", "null"]})),
        ("revenueInMajorCurrency", json!({"type": "integer"})),
        ("adhocProductInventoryIds", inventory_ids.clone()),
        ("rentalProductInventoryIds", inventory_ids.clone()),
        ("failedBills", failed_bills()),
    ]);
    let adhoc_create = open(
        &[
            ("name", run_name),
            ("nickname", nickname),
            ("invoiceDate", date()),
            ("adhocProductInventoryIds", inventory_ids.clone()),
            ("rentalProductInventoryIds", inventory_ids),
        ],
        &["name", "invoiceDate"],
    );

    vec![
        ("AdhocBillRunFields", projection(&adhoc_run)),
        ("AdhocBillRun", adhoc_run),
        ("AdhocBillRunCreate", adhoc_create),
    ]
}
