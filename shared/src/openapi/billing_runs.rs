//! Billing runs: the resource, its options, its create and PUT, its list's parameters, and its
//! action targets (`GET /billingRuns/{tenantId}/{id}/actions`).

use super::*;

pub(super) fn billing_run_list_params() -> Vec<Value> {
    let mut params = page_params();
    params.insert(1, json!({"name": "status", "in": "query", "description": "`status` or `in:a,b`: the runs of the page read with these statuses",
            "schema": {"type": "string", "pattern": Values::Names(names::<crate::domain::billing_run::Status>).pattern()}}));
    params
}

/// The query of a run's actions list: `limit`, `status` (of the targets) and `exclusiveStartKey`.
fn billing_run_action_params() -> Vec<Value> {
    let mut params = page_params();
    params.insert(1, json!({"name": "status", "in": "query", "description": "`status` or `in:a,b`: the targets of the page read with these statuses",
            "schema": {"type": "string", "pattern": Values::Names(target_statuses).pattern()}}));
    params
}

/// The statuses of an action target, as the `status` filter takes them.
fn target_statuses() -> Vec<&'static str> {
    use crate::domain::billing_run::execution::TargetStatus;
    [
        TargetStatus::Pending,
        TargetStatus::Processing,
        TargetStatus::Completed,
        TargetStatus::Error,
        TargetStatus::Excluded,
    ]
    .into_iter()
    .map(|status| -> &'static str { status.into() })
    .collect()
}

/// `GET /billingRuns/{tenantId}/{id}/actions`: a page of the run's action targets.
pub(super) fn billing_run_actions_operation() -> Op {
    Op::new("List a billing run's action targets (its statements, by account)", "billing runs")
        .query(billing_run_action_params())
        .ok(
            200,
            json!({"description": "A page of the targets of the run's last preprocessing, by account",
            "headers": request_id_header(),
            "content": {"application/json": {"schema": schema_ref("BillingRunActionPage")}}}),
        )
        .errors(READ)
}

/// Billing runs: the resource, its projection, its create, its PUT, a page of a list, and an
/// action target and a page of them.
pub(super) fn billing_run_schemas() -> Vec<(&'static str, Value)> {
    let billing_run = billing_run_resource();
    let (billing_run_create, billing_run_put) = billing_run_requests(&billing_run);
    vec![
        ("BillingRunFields", projection(&billing_run)),
        ("BillingRun", billing_run),
        ("BillingRunCreate", billing_run_create),
        ("BillingRunPut", billing_run_put),
        ("BillingRunPage", page_of("BillingRun")),
        ("BillingRunAction", billing_run_action()),
        ("BillingRunActionPage", page_of("BillingRunAction")),
    ]
}

/// A `{Count, Items, LastEvaluatedKey}` page of the schema `item`.
fn page_of(item: &str) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["Count", "Items"],
    "properties": {
        "Count": integer(0),
        "Items": {"type": "array", "items": schema_ref(item)},
        "LastEvaluatedKey": {"type": "string", "description": "Pass back as `exclusiveStartKey` for the next page"},
    }})
}

/// One target of a run's action (for `send_statements`, an account with open bills), with its
/// statement once the run has made it. Every member is always present.
fn billing_run_action() -> Value {
    use crate::domain::billing_run::execution::ACTIONS;
    let uuid = json!({"type": "string", "format": "uuid"});
    // A balance is a difference and a total a sum of money values: exact, with no bound of its own.
    let sum = json!({"type": "number", "description": format!("at most {} fraction digits", MONEY.fraction_digits)});
    let line = exact(&[
        ("id", integer(1)),
        ("bill_number", integer(1)),
        ("issue_date", nullable(date_time())),
        ("due_date", date_time()),
        ("amount", decimal(MONEY)),
        ("amount_paid", decimal(MONEY)),
        ("balance", sum.clone()),
    ]);
    let statement = exact(&[("bills", json!({"type": "array", "items": line})), ("total_balance", sum)]);
    let target =
        exact(&[("id", integer(1)), ("name", nullable_string()), ("type", nullable(super::bills::account_type()))]);
    exact(&[
        ("id", uuid.clone()),
        ("billing_run_id", uuid),
        ("action", enumeration(&ACTIONS)),
        ("target", target),
        ("status", enumeration(&target_statuses())),
        ("generation", integer(1)),
        ("bill_ids", json!({"type": "array", "items": integer(1)})),
        ("excluded_bills", integer(0)),
        ("too_many_bills", json!({"type": "boolean"})),
        ("statement", nullable(statement)),
        ("reason", nullable_string()),
        ("sys_created_at", string()),
        ("sys_last_modified_at", string()),
    ])
}

/// A billing run as the API answers it.
pub(super) fn billing_run_resource() -> Value {
    use crate::domain::billing_run::Status;
    let (reminders, cancellation, installments, statements, statistic) = billing_run_options();
    let nullable_bool = json!({"type": ["boolean", "null"]});
    exact(&[
        ("business_unit_id", string()),
        ("cancel_installment_schedules", nullable_bool.clone()),
        ("error", nullable_string()),
        ("error_stack", nullable_string()),
        ("expiring_credit_card_reminder_options", reminders),
        ("id", json!({"type": "string", "format": "uuid"})),
        ("installment_schedule_cancellation_options", cancellation),
        ("installment_schedule_options", installments),
        ("installment_schedule_reminder_options", json!({"type": "object"})),
        ("last_refresh_date", nullable_string()),
        ("name", string()),
        ("notification_email", nullable_string()),
        ("preprocessing_date", nullable_string()),
        ("process_installment_schedules", nullable_bool.clone()),
        ("recurring_billing_run_id", nullable_string()),
        ("run_date", nullable_string()),
        ("scheduled_preprocessing_date", nullable_string()),
        ("scheduled_run_date", nullable_string()),
        ("send_expiring_credit_card_reminders", nullable_bool.clone()),
        ("send_installment_schedule_reminders", nullable_bool.clone()),
        ("send_statements", nullable_bool.clone()),
        ("statement_options", statements),
        ("statistics", json!({"type": "array", "items": statistic})),
        ("status", enumeration(&names::<Status>())),
        ("sys_bulk_load_at", nullable_string()),
        ("sys_bulk_load_id", nullable_string()),
        ("sys_bulk_load_pk", nullable_string()),
        ("sys_bulk_load_record_no", json!({"type": ["integer", "null"], "minimum": 0})),
        ("sys_bulk_load_source_file", nullable_string()),
        ("sys_calculated_field_error", nullable_string()),
        ("sys_calculated_field_errors", json!({"type": "array", "items": exact(&[("field", nullable_string())])})),
        ("sys_configuration_snapshot_id", nullable_string()),
        ("sys_created_at", string()),
        ("sys_created_by_id", string()),
        ("sys_deleted_by_id", nullable_string()),
        ("sys_directive", nullable_string()),
        ("sys_external_id", nullable_string()),
        ("sys_has_files_in_s3", nullable_bool),
        ("sys_last_bulk_data_operation_id", nullable_string()),
        ("sys_last_bulk_data_operation_sys_version", nullable_string()),
        ("sys_last_modified_at", string()),
        ("sys_last_modified_by_id", string()),
        ("sys_last_security_context", json!({"type": ["object", "null"]})),
        ("sys_locked", json!({"type": "boolean"})),
        ("sys_snapshot_base_version", json!({"type": ["integer", "null"], "minimum": 0})),
        ("sys_version", integer(1)),
        ("template_id", nullable_string()),
    ])
}

/// A billing run's options: reminders, cancellations, installments, statements, and a statistic.
pub(super) fn billing_run_options() -> (Value, Value, Value, Value, Value) {
    use crate::domain::billing_run::{CustomerType, Restriction};
    let restriction = nullable(enumeration(&names::<Restriction>()));
    // Ids as the parser bounds them: 1 to 100 characters.
    let id_text = json!({"type": "string", "minLength": 1, "maxLength": crate::domain::check::MAX_ID});
    let strings = json!({"type": "array", "maxItems": 100, "items": id_text});
    let reminder = exact(&[
        ("card_expiration_date_end", string()),
        ("card_expiration_date_start", string()),
        ("id", integer(0)),
        ("name", nullable_string()),
        ("notice_id", id_text.clone()),
    ]);
    let reminders = exact(&[
        ("order_type_restriction", restriction.clone()),
        ("order_types", strings.clone()),
        ("reminders", json!({"type": "array", "items": reminder})),
    ]);
    // A date `YYYY-MM-DD` or an RFC 3339 date-time, as the parser takes them.
    let day = json!({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]});
    let cancellation = exact(&[("date_range_end", day.clone()), ("date_range_start", day.clone())]);
    let installments = exact(&[
        ("card_type_restriction", restriction.clone()),
        ("card_types", strings.clone()),
        ("date_range_end", day.clone()),
        ("date_range_start", day),
        ("do_not_send_standard_email_confirmations", json!({"type": ["boolean", "null"]})),
        ("failure_notice_id", nullable(id_text.clone())),
        ("payment_type_restriction", restriction.clone()),
        ("payment_types", strings.clone()),
        ("success_notice_id", nullable(id_text.clone())),
    ]);
    let statements = exact(&[
        ("business_unit_ids", strings),
        ("business_unit_restriction", restriction),
        ("customer_type", nullable(enumeration(&names::<CustomerType>()))),
        ("statement_template_id", nullable(id_text.clone())),
    ]);
    // A row per action the run asks for, counted by the scheduler: every count is an integer.
    let statistic = exact(&[
        ("action", string()),
        ("error", integer(0)),
        ("excluded", integer(0)),
        ("pending", integer(0)),
        ("processing", integer(0)),
        ("successful", integer(0)),
        ("total", integer(0)),
    ]);
    (reminders, cancellation, installments, statements, statistic)
}

/// The create and PUT schemas of a billing run: the run's shape, with the content fields required,
/// and on PUT the id, status and sys_version; server-owned fields may be sent back and are
/// ignored. A request's nested options need only what the parser needs (a response always carries
/// every member).
pub(super) fn billing_run_requests(billing_run: &Value) -> (Value, Value) {
    use crate::domain::check::MAX_ID;
    let mut request_run = billing_run.clone();
    // What the parser bounds: ids of 1 to 100 characters, names of 1 to 255.
    for (name, max) in
        [("business_unit_id", MAX_ID), ("name", 255), ("recurring_billing_run_id", MAX_ID), ("template_id", MAX_ID)]
    {
        let text = json!({"type": "string", "minLength": 1, "maxLength": max});
        let nullable = request_run["properties"][name]["anyOf"].is_array();
        request_run["properties"][name] = if nullable { json!({"anyOf": [text, {"type": "null"}]}) } else { text };
    }
    let nested = |name: &str, required: &[&str]| requiring(&billing_run["properties"][name], required);
    let mut reminder_options = nested("expiring_credit_card_reminder_options", &[]);
    reminder_options["properties"]["reminders"]["items"] = requiring(
        &billing_run["properties"]["expiring_credit_card_reminder_options"]["properties"]["reminders"]["items"],
        &["card_expiration_date_end", "card_expiration_date_start", "notice_id"],
    );
    request_run["properties"]["expiring_credit_card_reminder_options"] = reminder_options;
    request_run["properties"]["installment_schedule_options"] =
        nested("installment_schedule_options", &["date_range_end", "date_range_start"]);
    request_run["properties"]["statement_options"] = nested("statement_options", &[]);
    // `statistics` is the server's, ignored on a request: its counts as a client may have kept them.
    for count in ["error", "excluded", "pending", "processing", "successful", "total"] {
        request_run["properties"]["statistics"]["items"]["properties"][count] =
            json!({"type": ["integer", "null"], "minimum": 0});
    }
    let mut create = request_run.clone();
    create["required"] = json!([
        "business_unit_id",
        "name",
        "expiring_credit_card_reminder_options",
        "installment_schedule_cancellation_options",
        "installment_schedule_options",
        "installment_schedule_reminder_options",
        "statement_options"
    ]);
    let mut put = request_run;
    let mut required = create["required"].clone();
    if let Some(list) = required.as_array_mut() {
        list.extend([json!("id"), json!("status"), json!("sys_version")]);
    }
    put["required"] = required;
    (create, put)
}
