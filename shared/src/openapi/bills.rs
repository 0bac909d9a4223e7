//! Bills: the resource, and its create and update as a request sends them.

use super::*;

/// Bills: the resource with its account and lines, its projection, its create and its update.
pub(super) fn bill_schemas() -> Vec<(&'static str, Value)> {
    use crate::domain::bill::{BillStatus, BillType, CalculationMethod};
    use crate::domain::bill_run::RunKind;
    let account = account(account_type());
    let line_item = exact(&[
        ("id", integer(1)),
        ("catalogItemId", integer(1)),
        ("description", nullable_string()),
        ("quantity", decimal_from(QUANTITY, 0, true)),
        ("unitPrice", decimal(MONEY)),
        ("unitCost", nullable(decimal_from(MONEY, 0, true))),
        ("amount", decimal(MONEY)),
    ]);
    let bill = exact(&[
        ("id", integer(1)),
        ("billNumber", integer(1)),
        ("status", enumeration(&names::<BillStatus>())),
        ("amount", decimal(MONEY)),
        ("amountPaid", decimal(MONEY)),
        ("calculationMethod", enumeration(&names::<CalculationMethod>())),
        ("createdAt", date_time()),
        ("updatedAt", date_time()),
        ("description", nullable_string()),
        ("type", nullable(enumeration(&names::<BillType>()))),
        ("basedOnId", json!({"type": ["integer", "null"]})),
        ("basedOnUid", json!({"type": ["integer", "null"]})),
        ("dueDate", date_time()),
        ("issueDate", nullable(date_time())),
        ("isArchived", json!({"type": "boolean"})),
        ("percentage", json!({"type": ["number", "null"]})),
        ("baseAmount", json!({"type": ["number", "null"]})),
        ("account", nullable(schema_ref("Account"))),
        ("record", nullable(exact(&[("id", integer(1)), ("title", string())]))),
        ("billRunId", json!({"type": ["integer", "null"]})),
        ("billRunKind", nullable(enumeration(&names::<RunKind>()))),
        ("lineItems", json!({"type": "array", "items": schema_ref("LineItem")})),
    ]);
    let mut bill = bill;
    use crate::domain::bill_run::SummaryStatus;
    bill["properties"]["setAside"] =
        exact(&[("billRunId", integer(1)), ("stage", enumeration(&names::<SummaryStatus>())), ("reason", string())]);
    bill["properties"]["setAside"]["description"] =
        json!("Present when a run's stage could not process the bill and went on without it: why.");
    bill["properties"]["businessUnitId"] = business_unit_id();
    bill["properties"]["businessUnitId"]["description"] = json!("Present when the bill was created with one.");
    // A line as a request sends it: `id` only for a kept line, `amount` ignored (computed).
    let (bill_create, bill_update) = bill_requests(&line_item);
    vec![
        ("Account", account),
        ("LineItem", line_item),
        ("BillFields", projection(&bill)),
        ("Bill", bill),
        ("BillCreate", bill_create),
        ("BillUpdate", bill_update),
    ]
}

/// A bill's create and update, whose lines are `line_item` as a request sends it.
pub(super) fn bill_requests(line_item: &Value) -> (Value, Value) {
    use crate::domain::bill::{BillStatus, BillType, CalculationMethod};
    use crate::domain::bill_run::RunKind;
    let mut line_input = line_item.clone();
    line_input["properties"]["id"] = nullable(integer(1));
    line_input["required"] = json!(["catalogItemId", "quantity", "unitPrice"]);
    let lines = json!({"type": "array", "minItems": 1, "maxItems": 1000, "items": line_input});
    let bill_create = open(
        &[
            ("calculationMethod", enumeration(&names::<CalculationMethod>())),
            ("dueDate", date_time()),
            ("lineItems", lines.clone()),
            ("percentage", percentage()),
            ("baseAmount", decimal_from(MONEY, 0, false)),
            ("description", nullable(json!({"type": "string", "maxLength": 4000}))),
            ("type", nullable(enumeration(&names::<BillType>()))),
            ("basedOnId", json!({"type": ["integer", "null"]})),
            ("basedOnUid", json!({"type": ["integer", "null"]})),
            ("account", nullable(account(nullable(account_type())))),
            ("record", nullable(exact(&[("id", integer(1)), ("title", string())]))),
            ("billRunId", nullable(integer(1))),
            ("billRunKind", nullable(enumeration(&names::<RunKind>()))),
            ("issueDate", nullable(date_time())),
            ("status", enumeration(&names::<BillStatus>())),
            ("businessUnitId", nullable(business_unit_id())),
        ],
        &["calculationMethod", "dueDate"],
    );
    let bill_update = open(
        &[
            ("calculationMethod", enumeration(&names::<CalculationMethod>())),
            ("lineItems", lines),
            ("percentage", percentage()),
            ("dueDate", date_time()),
            ("issueDate", date_time()),
            ("status", enumeration(&[BillStatus::Issued.name()])),
            ("description", nullable(json!({"type": "string", "maxLength": 4000}))),
        ],
        &[],
    );

    (bill_create, bill_update)
}

/// A bill's business unit: 1 to 100 characters, as the parser bounds it.
fn business_unit_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": crate::domain::check::MAX_ID})
}

/// A bill's account, whose `type` is shown only when set (a create may leave it out, or send it
/// null: the same).
fn account(account_type: Value) -> Value {
    let mut account = exact(&[("id", integer(1)), ("name", string())]);
    account["properties"]["type"] = account_type;
    account
}

/// An account's `type`, as serde writes [`crate::domain::bill::AccountType`].
pub(super) fn account_type() -> Value {
    use crate::domain::bill::AccountType;
    json!({"type": "string", "enum": [AccountType::Contact, AccountType::Organization]})
}
