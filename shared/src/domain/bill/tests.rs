use super::*;
use crate::domain::bill_run::RunKind;
use serde_json::json;
use time::macros::{date, datetime};

const NOW: OffsetDateTime = datetime!(2024-03-01 12:00 UTC);

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn ids(from: u64) -> impl Iterator<Item = u64> {
    from..
}

fn line_items_bill() -> Bill {
    NewBill::parse(&json!({
        "calculationMethod": "LINE_ITEMS",
        "dueDate": "2024-04-01T00:00:00Z",
        "lineItems": [
            {"catalogItemId": 1, "quantity": 3, "unitPrice": 19.99, "description": "widgets"},
            {"catalogItemId": 2, "quantity": 1, "unitPrice": -5, "description": "discount"}
        ],
        "account": {"id": 42, "name": "Acme"}
    }))
    .unwrap()
    .into_bill(1, 1001, &mut ids(1), NOW)
    .unwrap()
}

fn percentage_bill() -> Bill {
    NewBill::parse(&json!({
        "calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z", "percentage": 30, "baseAmount": 1000.05
    }))
    .unwrap()
    .into_bill(2, 1002, &mut ids(1), NOW)
    .unwrap()
}

fn update(bill: &Bill, body: Value) -> Result<Option<Bill>, DomainError> {
    apply_update(bill, &body, false, &mut ids(100), NOW)
}

fn changed(outcome: Result<Option<Bill>, DomainError>) -> Bill {
    match outcome {
        Ok(Some(bill)) => bill,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// The rule number a refusal names (rule N: ...), or 0 for a field refusal.
fn refused_rule(outcome: Result<Option<Bill>, DomainError>) -> u8 {
    match outcome {
        Err(DomainError::Invalid { detail, .. }) => {
            detail.split("rule ").nth(1).and_then(|r| r[..1].parse().ok()).unwrap_or(0)
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn given_lines_then_amounts_are_exact_and_rounded_to_cents() {
    let bill = line_items_bill();
    assert_eq!(bill.line_items.iter().map(|l| l.amount).collect::<Vec<_>>(), vec![d("59.97"), d("-5")]);
    assert_eq!(bill.amount, d("54.97"));
    assert_eq!(bill.line_items.iter().map(|l| l.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!((bill.status, bill.bill_number), (BillStatus::Draft, 1001));
    // 30 % of 1000.05 is 300.015: half away from zero gives 300.02.
    assert_eq!(percentage_bill().amount, d("300.02"));
    let thirds = NewBill::parse(&json!({
        "calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z",
        "lineItems": [{"catalogItemId": 1, "quantity": 0.3333, "unitPrice": 0.15}]
    }))
    .unwrap()
    .into_bill(3, 3, &mut ids(1), NOW)
    .unwrap();
    assert_eq!(thirds.amount, d("0.05"), "0.049995 rounds half away from zero");
}

#[test]
fn given_a_bill_then_it_serialises_with_every_field_and_json_numbers() {
    let value = serde_json::to_value(line_items_bill()).unwrap();
    assert_eq!(value["amount"], json!(54.97));
    assert_eq!(value["amountPaid"], json!(0));
    assert_eq!(value["issueDate"], Value::Null);
    assert_eq!(value["type"], Value::Null);
    assert_eq!(value["dueDate"], "2024-04-01T00:00:00Z");
    assert_eq!(value.as_object().unwrap().len(), 22);
    let back: Bill = serde_json::from_value(value).unwrap();
    assert_eq!(back, line_items_bill());
}

#[test]
fn given_create_bodies_then_required_data_per_method_is_enforced() {
    let cases = [
        json!({"dueDate": "2024-04-01T00:00:00Z", "lineItems": []}),
        json!({"calculationMethod": "FLAT", "dueDate": "2024-04-01T00:00:00Z"}),
        json!({"calculationMethod": "LINE_ITEMS", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}]}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z"}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": []}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 0, "unitPrice": 1}]}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"quantity": 1, "unitPrice": 1}]}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1, "unitCost": 0}]}),
        json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z", "percentage": 30}),
        json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z", "percentage": 101, "baseAmount": 5}),
        json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z", "percentage": 10, "baseAmount": 5, "issueDate": "2024-03-01T00:00:00Z", "status": "ISSUED"}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}]}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}], "amount": 5}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}], "status": "ISSUED"}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-02-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}], "issueDate": "2024-03-01T00:00:00Z", "status": "ISSUED"}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}], "account": {"id": 1}}),
        json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}], "billRunKind": "ADHOC"}),
        json!("a bill"),
    ];
    for body in cases {
        assert!(matches!(NewBill::parse(&body), Err(DomainError::Invalid { .. })), "{body}");
    }
    let issued = NewBill::parse(&json!({
        "calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00+02:00",
        "lineItems": [{"catalogItemId": 1, "quantity": 1, "unitPrice": 1}],
        "issueDate": "2024-03-01T00:00:00Z", "status": "ISSUED", "billRunId": 5, "billRunKind": "ADHOC",
        "type": "CREDIT_NOTE", "basedOnId": 9, "basedOnUid": null, "description": null
    }))
    .unwrap();
    assert_eq!(issued.issue.map(|(_, s)| s), Some(BillStatus::Issued));
    assert_eq!(issued.due_date, datetime!(2024-03-31 22:00 UTC), "date-times are kept in UTC");
    assert_eq!(issued.bill_run, Some((RunKind::Adhoc, 5)));
}

#[test]
fn given_each_rule_then_its_accepted_and_refused_cases_hold() {
    let li = line_items_bill();
    let pc = percentage_bill();
    let mut issued = li.clone();
    issued.status = BillStatus::Issued;
    issued.issue_date = Some(datetime!(2024-03-01 00:00 UTC));
    let one_line = json!([{"catalogItemId": 7, "quantity": 2, "unitPrice": 10}]);
    let described = Bill { description: Some("old".into()), ..li.clone() };

    // (bill, body, refused rule or 0 for a field error; None when accepted)
    let cases: Vec<(&Bill, Value, Option<u8>)> = vec![
        // any other field, known or unknown
        (&li, json!({"amount": 1}), Some(0)),
        (&li, json!({"billNumber": 1}), Some(0)),
        (&li, json!({"colour": "red"}), Some(0)),
        // rule 1
        (&li, json!({"calculationMethod": "FLAT"}), Some(1)),
        (&li, json!({"calculationMethod": "PERCENTAGE"}), Some(1)),
        (&li, json!({"calculationMethod": "PERCENTAGE", "percentage": 10}), Some(1)),
        (&pc, json!({"calculationMethod": "LINE_ITEMS"}), Some(1)),
        (&pc, json!({"calculationMethod": "LINE_ITEMS", "lineItems": one_line.clone()}), None),
        // rule 2
        (&pc, json!({"lineItems": one_line.clone()}), Some(2)),
        (&li, json!({"lineItems": []}), Some(2)),
        (&li, json!({"lineItems": [{"id": 99, "catalogItemId": 7, "quantity": 2, "unitPrice": 10}]}), Some(2)),
        (
            &li,
            json!({"lineItems": [{"id": 1, "catalogItemId": 7, "quantity": 2, "unitPrice": 10}, {"id": 1, "catalogItemId": 7, "quantity": 2, "unitPrice": 10}]}),
            Some(2),
        ),
        (&li, json!({"lineItems": one_line.clone()}), None),
        // rule 3
        (&li, json!({"percentage": 10}), Some(3)),
        (&pc, json!({"percentage": 101}), Some(3)),
        (&pc, json!({"percentage": -1}), Some(3)),
        (&pc, json!({"percentage": "10"}), Some(3)),
        (&pc, json!({"percentage": 0}), None),
        (&pc, json!({"percentage": 100}), None),
        // rule 4
        (&li, json!({"issueDate": "2024-03-02T00:00:00Z"}), Some(4)),
        (&li, json!({"issueDate": "2024-03-02T00:00:00Z", "status": "DRAFT"}), Some(4)),
        (&pc, json!({"issueDate": "2024-03-02T00:00:00Z", "status": "ISSUED"}), Some(4)),
        // rule 5
        (&li, json!({"status": "ISSUED"}), Some(5)),
        (&li, json!({"issueDate": "2024-03-02T00:00:00Z", "status": "PAID"}), Some(5)),
        (&li, json!({"issueDate": "2024-03-02T00:00:00Z", "status": "VOID"}), Some(5)),
        (&li, json!({"issueDate": "2024-03-02T00:00:00Z", "status": "PARTIALLY_PAID"}), Some(5)),
        (&li, json!({"issueDate": "2024-03-02T00:00:00Z", "status": "ISSUED"}), None),
        (&issued, json!({"issueDate": "2024-03-05T00:00:00Z", "status": "ISSUED"}), None),
        // rule 6
        (&li, json!({"dueDate": "tomorrow"}), Some(6)),
        (&li, json!({"issueDate": "2024-03-02", "status": "ISSUED"}), Some(6)),
        (&li, json!({"issueDate": "2024-05-01T00:00:00Z", "status": "ISSUED"}), Some(6)),
        (&issued, json!({"dueDate": "2024-02-01T00:00:00Z"}), Some(6)),
        (&li, json!({"dueDate": "2024-05-01T10:30:00+01:00"}), None),
        // rule 7
        (&li, json!({"description": 5}), Some(7)),
        (&li, json!({"description": "x".repeat(4001)}), Some(7)),
        (&described, json!({"description": null}), None),
        (&li, json!({"description": "new"}), None),
        // rule 8
        (&issued, json!({"lineItems": one_line.clone()}), Some(8)),
        (&issued, json!({"description": "late note"}), None),
        (&issued, json!({"dueDate": "2024-06-01T00:00:00Z"}), None),
    ];
    for (bill, body, want) in cases {
        let outcome = update(bill, body.clone());
        match want {
            None => assert!(matches!(outcome, Ok(Some(_))), "{body}: expected a change, got {outcome:?}"),
            Some(n) => assert_eq!(refused_rule(outcome), n, "{body}"),
        }
    }
}

#[test]
fn given_frozen_bills_then_nothing_changes_but_a_no_op_is_fine() {
    let li = line_items_bill();
    for (mutate, finalized) in [
        (Box::new(|b: &mut Bill| b.status = BillStatus::Paid) as Box<dyn Fn(&mut Bill)>, false),
        (Box::new(|b: &mut Bill| b.status = BillStatus::Void), false),
        (Box::new(|b: &mut Bill| b.is_archived = true), false),
        (Box::new(|_: &mut Bill| {}), true),
    ] {
        let mut bill = li.clone();
        mutate(&mut bill);
        let outcome = apply_update(&bill, &json!({"description": "x"}), finalized, &mut ids(1), NOW);
        assert_eq!(refused_rule(outcome), 8);
        let same = apply_update(&bill, &json!({"description": null}), finalized, &mut ids(1), NOW);
        assert_eq!(same, Ok(None), "nothing to change is not a refusal");
    }
    let mut partly = li.clone();
    partly.status = BillStatus::PartiallyPaid;
    partly.amount_paid = d("10");
    assert_eq!(refused_rule(update(&partly, json!({"description": "x"}))), 8);
    assert_eq!(refused_rule(update(&partly, json!({"issueDate": "2024-03-05T00:00:00Z", "status": "ISSUED"}))), 5);
}

#[test]
fn given_method_changes_then_the_other_methods_data_is_cleared() {
    let to_pct = {
        let mut li = line_items_bill();
        li.base_amount = Some(d("200"));
        changed(update(&li, json!({"calculationMethod": "PERCENTAGE", "percentage": 12.5})))
    };
    assert_eq!((to_pct.line_items.len(), to_pct.amount), (0, d("25")));
    let to_lines = changed(update(
        &percentage_bill(),
        json!({"calculationMethod": "LINE_ITEMS", "lineItems": [{"catalogItemId": 7, "quantity": 2, "unitPrice": 10}]}),
    ));
    assert_eq!((to_lines.percentage, to_lines.amount, to_lines.base_amount), (None, d("20"), Some(d("1000.05"))));
    assert_eq!(to_lines.line_items[0].id, 100, "new lines get reserved ids");
}

#[test]
fn given_kept_and_new_lines_then_kept_ids_stay_and_new_ones_are_fresh() {
    let bill = changed(update(
        &line_items_bill(),
        json!({"lineItems": [
            {"id": 2, "catalogItemId": 2, "quantity": 2, "unitPrice": -5, "amount": -10},
            {"catalogItemId": 3, "quantity": 1, "unitPrice": 0.1},
            {"catalogItemId": 4, "quantity": 1, "unitPrice": 0.2}
        ]}),
    ));
    assert_eq!(bill.line_items.iter().map(|l| l.id).collect::<Vec<_>>(), vec![2, 100, 101]);
    assert_eq!(bill.amount, d("-9.7"));
    assert_eq!(bill.updated_at, NOW);
    assert_eq!(new_lines_in(&json!({"lineItems": [{"id": 2}, {"catalogItemId": 1}, {"id": null}]})), 2);
}

#[test]
fn given_a_request_that_changes_nothing_then_nothing_is_written() {
    let li = line_items_bill();
    let same_lines = json!([
        {"id": 1, "catalogItemId": 1, "quantity": 3, "unitPrice": 19.99, "description": "widgets"},
        {"id": 2, "catalogItemId": 2, "quantity": 1, "unitPrice": -5, "description": "discount"}
    ]);
    for body in [
        json!({}),
        json!({"lineItems": same_lines}),
        json!({"calculationMethod": "LINE_ITEMS"}),
        json!({"dueDate": "2024-04-01T02:00:00+02:00"}),
    ] {
        assert_eq!(update(&li, body.clone()), Ok(None), "{body}");
    }
}

#[test]
fn a_bill_a_stage_cannot_price_is_set_aside_with_its_reason_and_cleared_once_processed() {
    let invoice = date!(2024 - 03 - 31);
    let mut broken = line_items_bill();
    broken.line_items[0].quantity = d("999999999999");
    broken.line_items[0].unit_price = d("999999999999");
    let (aside, set) = stage_effect(SummaryStatus::FullInvoices, &broken, 7, invoice, NOW);
    let aside = aside.expect("the reason is written");
    assert!(set);
    assert_eq!(aside.status, BillStatus::Draft, "not issued");
    let why = aside.set_aside.clone().unwrap();
    assert_eq!((why.bill_run_id, why.stage), (7, SummaryStatus::FullInvoices));
    assert!(why.reason.contains("/lineItems/0/amount"), "{}", why.reason);
    assert_eq!(stage_effect(SummaryStatus::FullInvoices, &aside, 7, invoice, NOW), (None, true), "set aside again");
    let mut fixed = aside.clone();
    fixed.line_items[0].quantity = d("1");
    let (issued, set) = stage_effect(SummaryStatus::FullInvoices, &fixed, 7, invoice, NOW);
    let issued = issued.unwrap();
    assert!(!set);
    assert_eq!((issued.status, issued.set_aside), (BillStatus::Issued, None));
    let (reported, _) = stage_effect(SummaryStatus::Reporting, &aside, 7, invoice, NOW);
    assert_eq!(reported, None, "another stage leaves the reason alone");
}

#[test]
fn reports_merged_in_any_order_name_the_lowest_id_of_equal_largest_bills() {
    let bills: Vec<Bill> = (1..=6)
        .map(|id| {
            let mut bill = percentage_bill();
            bill.id = id;
            bill.amount = d(if id % 2 == 0 { "10" } else { "5" });
            bill.account = Some(Account { id: 100 + id, name: "A".into(), account_type: None });
            bill
        })
        .collect();
    let mut walk = Report::default();
    bills.iter().for_each(|b| walk.add(b));
    let mut parts = [Report::default(), Report::default()];
    for bill in bills.iter().rev() {
        parts[(bill.id % 3 == 0) as usize].add(bill);
    }
    let mut merged = Report::default();
    merged.merge(&parts[1]);
    merged.merge(&parts[0]);
    assert_eq!(merged, walk);
    assert_eq!((walk.max_invoice_bill_id, walk.max_invoice_customer_id, walk.revenue), (Some(2), Some(102), d("45")));
}

#[test]
fn given_stages_then_bills_are_recomputed_issued_and_reported() {
    let mut stale = line_items_bill();
    stale.amount = d("1");
    let invoice = date!(2024 - 03 - 31);
    let effect = |stage, bill: &Bill| {
        let (next, aside) = stage_effect(stage, bill, 7, invoice, NOW);
        assert!(!aside, "{bill:?}");
        next
    };
    let drafted = effect(SummaryStatus::DraftInvoices, &stale).unwrap();
    assert_eq!(drafted.amount, d("54.97"));
    assert_eq!(effect(SummaryStatus::DraftInvoices, &drafted), None, "already right: no write");
    let issued = effect(SummaryStatus::FullInvoices, &drafted).unwrap();
    assert_eq!((issued.status, issued.issue_date), (BillStatus::Issued, Some(datetime!(2024-03-31 00:00 UTC))));
    assert_eq!(effect(SummaryStatus::FullInvoices, &issued), None, "issued once only");
    assert_eq!(effect(SummaryStatus::FullInvoices, &percentage_bill()), None);
    for stage in [SummaryStatus::Reporting, SummaryStatus::Distribution, SummaryStatus::Payment] {
        assert_eq!(effect(stage, &stale), None);
    }
    let mut report = Report::default();
    let mut big = percentage_bill();
    big.account = Some(Account { id: 9, name: "Big".into(), account_type: None });
    let mut void = line_items_bill();
    void.status = BillStatus::Void;
    void.amount = d("99999");
    for bill in [&drafted, &big, &void] {
        report.add(bill);
    }
    assert_eq!(report.revenue, d("354.99"));
    assert_eq!(report.revenue_in_major_currency(), 354);
    assert_eq!((report.max_invoice_value, report.max_invoice_customer_id), (Some(d("300.02")), Some(9)));
}
