//! Property-based tests: every body parser and PATCH applier of the domain, fed arbitrary JSON
//! (extreme and high-precision numbers, deep nesting, long strings, wrong types, and valid bodies
//! with one field replaced), returns a value or a 4xx-kind refusal ([`DomainError`]) and never
//! panics. What they accept stays inside the platform's bounds.

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};
use time::macros::{date, datetime};
use time::Date;

use super::bill::{apply_update, Bill, NewBill};
use super::bill_run::{apply_patch, parse_periods, AdhocBillRun, BillRun, NewAdhocBillRun, NewBillRun, Run};
use super::list::{filter, ListQuery, ListSpec, Values};
use super::money::MAX_AMOUNT;
use super::patch::Patch;
use super::DomainError;

/// Field names the parsers know, so that arbitrary objects reach their code paths.
const NAMES: &[&str] = &[
    "id",
    "name",
    "nickname",
    "billingCycleId",
    "periodStartDate",
    "periodEndDate",
    "invoiceDate",
    "includeUsageUntilDate",
    "billRunStatus",
    "summaryStatus",
    "summaryStatusPercentage",
    "parallel",
    "paused",
    "adhocProductInventoryIds",
    "rentalProductInventoryIds",
    "calculationMethod",
    "dueDate",
    "issueDate",
    "status",
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
    "catalogItemId",
    "quantity",
    "unitPrice",
    "unitCost",
    "amount",
    "op",
    "path",
    "from",
    "value",
    "title",
    "billingAccount",
    "taxExcludedAmount",
    "taxIncludedAmount",
    "appliedTax",
    "taxCategory",
    "taxRate",
    "taxAmount",
    "unit",
    "date",
    "periodCoverage",
    "product",
    "characteristic",
    "relatedParty",
    "state",
    "@type",
    "isBilled",
];

/// Numbers as JSON text: huge, tiny, long, negative, in scientific notation.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "-?[0-9]{1,40}(\\.[0-9]{1,40})?([eE][-+]?[0-9]{1,4})?"
            .prop_map(|text| serde_json::from_str(&text).unwrap_or(Value::Null)),
        prop::sample::select(vec![
            "1e20",
            "5e28",
            "7e28",
            "1e400",
            "-1e400",
            "1e-400",
            "79228162514264337593543950335",
            "79228162514264337593543950336",
            "0.0000000000000000000000000001",
            "999999999999999.999999",
            "1234567890123456.78",
            "18446744073709551616",
            "-9223372036854775809",
            "100",
            "0",
            "-0",
            "0.5",
        ])
        .prop_map(|text| serde_json::from_str(text).unwrap()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(NAMES).prop_map(str::to_owned),
        prop::sample::select(vec![
            "OPEN",
            "CLOSED",
            "FINALIZED",
            "REPORTING",
            "DRAFT_INVOICES",
            "FULL_INVOICES",
            "DISTRIBUTION",
            "PROPERTIES",
            "FINISHED",
            "LINE_ITEMS",
            "PERCENTAGE",
            "DRAFT",
            "ISSUED",
            "PAID",
            "ADHOC",
            "REGULAR",
            "INVOICE",
            "2024-02-01",
            "2024-02-29T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "-",
            "/",
            "/name",
            "/lineItems/0",
            "/-",
            "replace",
            "add",
            "remove",
            "move",
            "copy",
            "test",
            "~1",
            "",
        ])
        .prop_map(str::to_owned),
        ".{0,30}",
        "[a-z]{3000,5000}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::Bool), number(), text().prop_map(Value::String)]
}

/// Arbitrary JSON, nested up to 8 levels.
/// Query and path text that is an integer at or past the extremes of the integer types (and the
/// near misses a parser must refuse), which arbitrary text all but never draws.
fn extreme_integer_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            i64::MIN.to_string(),
            i64::MAX.to_string(),
            u64::MAX.to_string(),
            "18446744073709551616".to_owned(),
            "-9223372036854775809".to_owned(),
            "-0".to_owned(),
            "+0".to_owned(),
            "0".to_owned(),
            "00000000000000000000001".to_owned(),
            "1e309".to_owned(),
            "-1".to_owned(),
            usize::MAX.to_string(),
            u32::MAX.to_string(),
            i32::MIN.to_string(),
        ]),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(8, 256, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..8).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// `base` with one field set to an arbitrary value (or removed).
fn mutated(base: Value) -> impl Strategy<Value = Value> {
    (prop::sample::select(NAMES), prop::option::of(any_json())).prop_map(move |(name, value)| {
        let mut body = base.clone();
        if let Value::Object(map) = &mut body {
            match value {
                Some(v) => map.insert(name.to_owned(), v),
                None => map.remove(name),
            };
        }
        body
    })
}

/// Arbitrary JSON Patch operations on known paths with arbitrary values.
fn any_patch() -> impl Strategy<Value = Value> {
    let op = (
        prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "bogus"]),
        prop::sample::select(NAMES),
        prop::option::of(any_json()),
        prop::sample::select(vec!["", "/-", "/0", "/1/x"]),
    )
        .prop_map(|(op, name, value, suffix)| {
            let mut map = Map::new();
            map.insert("op".into(), json!(op));
            map.insert("path".into(), json!(format!("/{name}{suffix}")));
            map.insert("from".into(), json!("/name"));
            if let Some(v) = value {
                map.insert("value".into(), v);
            }
            Value::Object(map)
        });
    prop_oneof![prop::collection::vec(op, 0..6).prop_map(Value::Array), any_json()]
}

/// A refusal is always a 4xx-kind domain error; anything else (a panic) fails the property.
fn refused_or<T>(result: Result<T, DomainError>, accepted: impl FnOnce(T)) {
    if let Ok(value) = result {
        accepted(value);
    }
}

fn bill_within_bounds(bill: &Bill) {
    assert!(bill.amount.abs() <= MAX_AMOUNT, "{}", bill.amount);
    assert!(bill.line_items.len() <= 1000);
    for line in &bill.line_items {
        assert!(line.amount.abs() <= MAX_AMOUNT);
    }
    // What is accepted is stored and read back unchanged.
    let text = serde_json::to_string(bill).unwrap();
    assert_eq!(&serde_json::from_str::<Bill>(&text).unwrap(), bill);
}

fn regular_run() -> BillRun {
    NewBillRun::parse(&json!({"name": "Jan", "billingCycleId": 1, "periodStartDate": "2024-01-01",
        "periodEndDate": "2024-01-31", "invoiceDate": "2024-02-01"}))
    .unwrap()
    .into_run(1, date!(2024 - 01 - 01))
}

fn adhoc_run() -> AdhocBillRun {
    NewAdhocBillRun::parse(&json!({"name": "One-off", "invoiceDate": "2024-02-01", "adhocProductInventoryIds": [1]}))
        .unwrap()
        .into_run(1, date!(2024 - 01 - 01))
}

fn valid_bill_body() -> Value {
    json!({"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z",
           "lineItems": [{"catalogItemId": 1, "quantity": 2, "unitPrice": 19.99}], "account": {"id": 1, "name": "A"}})
}

fn valid_percentage_body() -> Value {
    json!({"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z", "percentage": 30, "baseAmount": 1000})
}

fn bill_from(body: Value) -> Bill {
    NewBill::parse(&body).unwrap().into_bill(1, 1, &mut (1..), datetime!(2024-03-01 00:00 UTC)).unwrap()
}

fn checked_patch<R: Run>(run: &R, body: &Value) {
    refused_or(Patch::parse(body), |patch| {
        refused_or(apply_patch(run, &patch, 7), |_| {});
    });
}

fn valid_rate_body() -> Value {
    json!({"billingAccount": {"id": "A1"}, "taxExcludedAmount": {"unit": "EUR", "value": 10.5},
           "appliedTax": [{"taxCategory": "VAT", "taxRate": 0.2, "taxAmount": {"unit": "EUR", "value": 2.1}}]})
}

/// A rate body whose amounts are arbitrary numbers.
fn rate_of(excluded: Value, taxes: Vec<(Value, Value)>) -> Value {
    let taxes: Vec<Value> = taxes
        .into_iter()
        .map(|(rate, amount)| json!({"taxCategory": "VAT", "taxRate": rate, "taxAmount": {"unit": "EUR", "value": amount}}))
        .collect();
    json!({"billingAccount": {"id": "A1"}, "taxExcludedAmount": {"unit": "EUR", "value": excluded}, "appliedTax": taxes})
}

/// An accepted rate is exact, within the bounds, and reads back unchanged; any set of them
/// tallies into a bill within the bounds or is refused.
fn checked_rates(bodies: &[Value]) {
    use super::customer_bill::{new_id, parse_on_demand, parse_rate, NewBill, Tally};
    let now = datetime!(2026-11-22 10:00 UTC);
    let mut tally = Tally::default();
    for body in bodies {
        refused_or(parse_rate(body, new_id(), now), |rate| {
            let taxes: Decimal = rate.applied_tax.iter().map(|t| t.tax_amount.value).sum();
            assert_eq!(rate.tax_included_amount.value, rate.tax_excluded_amount.value + taxes);
            assert!(rate.tax_included_amount.value.abs() <= MAX_AMOUNT);
            let text = serde_json::to_string(&rate).unwrap();
            assert_eq!(serde_json::from_str::<super::customer_bill::AppliedRate>(&text).unwrap(), rate);
            let _ = tally.add(&rate);
        });
    }
    let request = parse_on_demand(&json!({"billingAccount": {"id": "A1"}}), new_id(), now).unwrap();
    let new = NewBill { id: new_id(), document: new_id(), bill_no: 1, request: &request, now };
    if let Ok(bill) = tally.bill(new) {
        for money in [&bill.tax_excluded_amount, &bill.tax_included_amount, &bill.amount_due] {
            assert!(money.value.abs() <= MAX_AMOUNT && money.value.scale() <= 2, "{money:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn customer_bill_rates_never_panic_and_stay_exact(bodies in prop::collection::vec(prop_oneof![
        any_json(),
        mutated(valid_rate_body()),
        (number(), prop::collection::vec((number(), number()), 0..3)).prop_map(|(e, t)| rate_of(e, t)),
    ], 1..4)) {
        checked_rates(&bodies);
    }

    #[test]
    fn customer_bill_requests_and_patches_never_panic(body in prop_oneof![
        any_json(),
        mutated(json!({"billingAccount": {"id": "A1"}, "relatedParty": {"id": "P"}})),
        mutated(json!({"state": "onHold"})),
        any_patch(),
    ]) {
        use super::customer_bill::{new_id, parse_bill_patch, parse_on_demand, BillState, PatchForm};
        refused_or(parse_on_demand(&body, new_id(), datetime!(2026-11-22 10:00 UTC)), |_| {});
        for form in [PatchForm::Merge, PatchForm::Json] {
            refused_or(parse_bill_patch(&body, form), |target| {
                if let Some(target) = target {
                    let _ = BillState::InProgress.change_to(target);
                }
            });
        }
    }

    #[test]
    fn tmf_list_queries_never_panic(pairs in prop::collection::vec((prop::sample::select(vec!["offset", "limit",
        "fields", "state", "id", "billingAccount.id", "amountDue.value", "taxItem.taxAmount.unit", "bogus",
        "billingAccount."]), prop_oneof![".{0,20}", extreme_integer_text()]), 0..5)) {
        use super::tmf_query::TmfQuery;
        refused_or(TmfQuery::parse(pairs.iter().map(|(k, v)| (*k, v.as_str())), super::customer_bill::BILL_SHAPE), |query| {
            let bill = json!({"id": "1", "href": "/x", "@type": "CustomerBill", "state": "onHold",
                "amountDue": {"unit": "EUR", "value": 1.5}, "taxItem": [{"taxAmount": {"unit": "EUR", "value": 1}}]});
            let _ = query.matches(&bill);
            let _ = query.project(bill);
            assert!((1..=1000).contains(&query.limit));
        });
    }

    #[test]
    fn bill_run_creates_never_panic(body in prop_oneof![any_json(), mutated(json!({"name": "Jan",
        "billingCycleId": 1, "periodStartDate": "2024-01-01", "periodEndDate": "2024-01-31",
        "invoiceDate": "2024-02-01"}))]) {
        refused_or(NewBillRun::parse(&body), |run| assert!(run.period_start_date <= run.period_end_date));
    }

    #[test]
    fn adhoc_bill_run_creates_never_panic(body in prop_oneof![any_json(), mutated(json!({"name": "One-off",
        "invoiceDate": "2024-02-01", "adhocProductInventoryIds": [1, 2]}))]) {
        refused_or(NewAdhocBillRun::parse(&body), |run| {
            assert!(run.adhoc_product_inventory_ids.len() <= 1000 && run.rental_product_inventory_ids.len() <= 1000);
        });
    }

    #[test]
    fn run_patches_never_panic(body in any_patch()) {
        checked_patch(&regular_run(), &body);
        checked_patch(&adhoc_run(), &body);
        let mut closed = regular_run();
        closed.bill_run_status = super::bill_run::BillRunStatus::Closed;
        closed.summary_status = super::bill_run::SummaryStatus::Reporting;
        checked_patch(&closed, &body);
    }

    #[test]
    fn bill_creates_never_panic_and_stay_in_bounds(body in prop_oneof![any_json(), mutated(valid_bill_body()),
        mutated(valid_percentage_body())]) {
        refused_or(NewBill::parse(&body), |new| {
            refused_or(new.into_bill(1, 1, &mut (1..), datetime!(2024-03-01 00:00 UTC)), |bill| bill_within_bounds(&bill));
        });
    }

    #[test]
    fn bill_lines_of_any_numbers_never_panic(quantity in number(), price in number(), count in 1usize..4) {
        let lines: Vec<Value> = (0..count)
            .map(|n| json!({"catalogItemId": n + 1, "quantity": quantity.clone(), "unitPrice": price.clone()}))
            .collect();
        let mut body = valid_bill_body();
        body["lineItems"] = Value::Array(lines.clone());
        refused_or(NewBill::parse(&body), |new| {
            refused_or(new.into_bill(1, 1, &mut (1..), datetime!(2024-03-01 00:00 UTC)), |bill| bill_within_bounds(&bill));
        });
        let patch = json!({"lineItems": lines});
        refused_or(apply_update(&bill_from(valid_bill_body()), &patch, false, &mut (10..), datetime!(2024-03-02 00:00 UTC)),
            |bill| { if let Some(bill) = bill { bill_within_bounds(&bill) } });
    }

    #[test]
    fn bill_patches_never_panic(body in prop_oneof![any_json(), mutated(json!({"description": "x"})),
        mutated(json!({"calculationMethod": "PERCENTAGE", "percentage": 50}))], frozen in any::<bool>()) {
        let now = datetime!(2024-03-02 00:00 UTC);
        for bill in [bill_from(valid_bill_body()), bill_from(valid_percentage_body())] {
            refused_or(apply_update(&bill, &body, frozen, &mut (10..), now), |next| {
                if let Some(next) = next { bill_within_bounds(&next) }
            });
        }
    }

    #[test]
    fn schedule_moves_never_panic_and_keep_every_date_writable(
        text in prop_oneof![
            ".{0,25}",
            any::<i64>().prop_map(|n| n.to_string()),
            (-1200i64..=1200).prop_map(|n| n.to_string()),
            // The extremes of the type and beyond it, which `any` all but never draws.
            proptest::sample::select(vec![
                i64::MIN.to_string(), i64::MAX.to_string(), u64::MAX.to_string(), "-9223372036854775809".into(),
                "-0".into(), "+1".into(), "1e3".into(), "0x10".into(), " 1".into(), "1201".into(), "-1201".into(),
            ]),
        ],
        start in (prop_oneof![0i32..=120, 9880i32..=9999, 0i32..=9999], 1u16..=366)
            .prop_filter_map("a day of the year", |(y, d)| Date::from_ordinal_date(y, d).ok()),
        length in prop_oneof![Just(None), (1i64..400).prop_map(Some)],
    ) {
        // A run of one whole month from `start`, or of `length` days: near year 0 or 9999 a move
        // may leave the years an API date is written in, which must be refused (400), never
        // written as `-0663-06-13`.
        let mut run = regular_run();
        run.period_start_date = start;
        let end = match length {
            None => super::dates::add_months(start, 1).and_then(|d| super::dates::add_days(d, -1)),
            Some(days) => super::dates::add_days(start, days - 1),
        };
        prop_assume!(end.is_some());
        run.period_end_date = end.unwrap();
        run.invoice_date = run.period_end_date;
        refused_or(parse_periods(Some(&text)), |periods| {
            assert!(periods != 0 && (-1200..=1200).contains(&periods));
            refused_or(super::bill_run::shift_schedule(&run, periods), |moved| {
                for date in [moved.period_start_date, moved.period_end_date, moved.invoice_date] {
                    assert_eq!(super::dates::parse(&super::dates::format(date)), Some(date), "{date}");
                }
            });
        });
    }

    #[test]
    fn list_queries_never_panic(pairs in prop::collection::vec((prop::sample::select(vec!["page", "pageSize",
        "sort", "fields", "status", "includeArchived", "bogus"]), prop_oneof![".{0,20}", extreme_integer_text()]), 0..5)) {
        const SPEC: ListSpec = ListSpec {
            sortable: &["id", "name"],
            filters: &[filter("status", "/status", Values::Names(|| vec!["OPEN"]))],
            fields: &["id", "name", "status"],
            archived: Some("isArchived"),
        };
        refused_or(ListQuery::parse(pairs.iter().map(|(k, v)| (*k, v.as_str())), &SPEC), |query| {
            let (page, total) = query.apply(vec![json!({"id": 1, "name": "a", "status": "OPEN"})]);
            assert!(page.len() as u64 <= total.max(1));
        });
    }

    #[test]
    fn money_parsing_is_exact_or_refused(value in number()) {
        if let Some(decimal) = super::money::bounded(&value, super::money::MONEY) {
            // An accepted number is exactly the digits sent.
            let sent: Decimal = value.to_string().parse().unwrap_or_else(|_| Decimal::from_scientific(&value.to_string()).unwrap());
            prop_assert_eq!(decimal, sent);
        }
    }
}

#[test]
fn deep_nesting_is_refused_not_crashed() {
    // serde_json stops at 128 levels when parsing a body; anything it lets through is handled.
    let deep = format!("{}1{}", "[".repeat(127), "]".repeat(127));
    let body: Value = serde_json::from_str(&deep).unwrap();
    assert!(NewBill::parse(&body).is_err());
    assert!(NewBillRun::parse(&json!({"name": body.clone()})).is_err());
    assert!(Patch::parse(&body).is_err());
    let patch = Patch::parse(&json!([{"op": "add", "path": "/nickname", "value": body}])).unwrap();
    assert!(apply_patch(&adhoc_run(), &patch, 7).is_err());
    assert!(serde_json::from_str::<Value>(&format!("{}1{}", "[".repeat(200), "]".repeat(200))).is_err());
}

#[test]
fn the_issues_crashing_inputs_are_400s() {
    let line = |q: &str, p: &str| format!(r#"{{"catalogItemId": 1, "quantity": {q}, "unitPrice": {p}}}"#);
    for lines in [vec![line("1e20", "1e20")], vec![line("1", "5e28"), line("1", "5e28")]] {
        let text = format!(
            r#"{{"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{}]}}"#,
            lines.join(",")
        );
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(matches!(NewBill::parse(&body), Err(DomainError::Invalid { .. })), "{text}");
        let patch: Value = serde_json::from_str(&format!(r#"{{"lineItems": [{}]}}"#, lines.join(","))).unwrap();
        let refused =
            apply_update(&bill_from(valid_bill_body()), &patch, false, &mut (10..), datetime!(2024-03-02 00:00 UTC));
        assert!(matches!(refused, Err(DomainError::Invalid { .. })));
    }
    let base: Value = serde_json::from_str(
        r#"{"calculationMethod": "PERCENTAGE", "dueDate": "2024-04-01T00:00:00Z", "percentage": 30, "baseAmount": 7e28}"#,
    )
    .unwrap();
    assert!(matches!(NewBill::parse(&base), Err(DomainError::Invalid { .. })));
    assert!(parse_periods(Some("9223372036854775807")).is_err());
    assert!(parse_periods(Some("-9223372036854775808")).is_err(), "i64::MIN, whose abs() overflows");
    assert!(parse_periods(Some("1201")).is_err());
    assert_eq!(parse_periods(Some("-1200")), Ok(-1200));
    let ids: Vec<u64> = (1..=1001).collect();
    assert!(NewAdhocBillRun::parse(
        &json!({"name": "x", "invoiceDate": "2024-02-01", "adhocProductInventoryIds": ids})
    )
    .is_err());
    // The largest amounts still sum exactly: 1000 lines of the largest line amount would pass the
    // bound, and are refused as an amount, not by overflow.
    let big = line("999999999999", "999");
    let text = format!(
        r#"{{"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z", "lineItems": [{}]}}"#,
        vec![big; 1000].join(",")
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let new = NewBill::parse(&body).unwrap();
    assert!(matches!(
        new.into_bill(1, 1, &mut (1..), datetime!(2024-03-01 00:00 UTC)),
        Err(DomainError::Invalid { .. })
    ));
}

#[test]
fn high_precision_money_is_kept_exactly() {
    let body: Value = serde_json::from_str(
        r#"{"calculationMethod": "LINE_ITEMS", "dueDate": "2024-04-01T00:00:00Z",
            "lineItems": [{"catalogItemId": 1, "quantity": 2, "unitPrice": 123456789012345.67},
                          {"catalogItemId": 2, "quantity": 1, "unitPrice": 999999999999.123456}]}"#,
    )
    .unwrap();
    let bill = bill_from(body);
    let out = serde_json::to_value(&bill).unwrap();
    assert_eq!(out["lineItems"][0]["unitPrice"].to_string(), "123456789012345.67");
    assert_eq!(out["lineItems"][0]["amount"].to_string(), "246913578024691.34");
    assert_eq!(out["lineItems"][1]["unitPrice"].to_string(), "999999999999.123456");
    assert_eq!(out["lineItems"][1]["amount"].to_string(), "999999999999.12");
    assert_eq!(out["amount"].to_string(), "247913578024690.46");
}
