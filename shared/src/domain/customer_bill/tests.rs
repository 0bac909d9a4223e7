use serde_json::json;
use time::macros::datetime;

use super::*;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn now() -> OffsetDateTime {
    datetime!(2026-11-22 10:00:00 UTC)
}

fn rate(body: Value) -> AppliedRate {
    parse_rate(&body, new_id(), now()).unwrap()
}

fn refused(result: Result<impl std::fmt::Debug, DomainError>) -> String {
    match result {
        Err(DomainError::Invalid { errors, detail }) => errors.first().map_or(detail, |e| e.pointer.clone()),
        other => panic!("expected a 400, got {other:?}"),
    }
}

/// A JSON number with exactly these digits (a Rust float literal would lose them).
fn number(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn charge(account: &str, value: Value, unit: &str) -> Value {
    json!({"billingAccount": {"id": account}, "taxExcludedAmount": {"unit": unit, "value": value}})
}

#[test]
fn given_every_pair_of_states_then_only_in_progress_and_on_hold_move_between_each_other() {
    use strum::VariantArray;
    for &from in BillState::VARIANTS {
        for &to in BillState::VARIANTS {
            let movable = |s: BillState| matches!(s, BillState::InProgress | BillState::OnHold);
            let outcome = from.change_to(to);
            match (movable(to), movable(from)) {
                (false, _) => assert!(matches!(outcome, Err(DomainError::Invalid { .. })), "{from:?} -> {to:?}: 400"),
                (true, false) => assert!(matches!(outcome, Err(DomainError::Conflict(_))), "{from:?} -> {to:?}: 409"),
                (true, true) if from == to => assert_eq!(outcome, Ok(None), "same state writes nothing"),
                (true, true) => assert_eq!(outcome, Ok(Some(to))),
            }
        }
    }
}

#[test]
fn given_both_spellings_then_states_parse_and_answer_in_camel_case() {
    assert_eq!(BillState::parse("InProgress"), Some(BillState::InProgress));
    assert_eq!(BillState::parse("inProgress"), Some(BillState::InProgress));
    assert_eq!(BillState::parse("OnHold"), Some(BillState::OnHold));
    assert_eq!(BillState::parse("partiallyPaid"), Some(BillState::PartiallyPaid));
    for bad in ["INPROGRESS", "onhold", "on_hold", "", "held"] {
        assert_eq!(BillState::parse(bad), None, "{bad}");
    }
    assert_eq!(serde_json::to_value(BillState::OnHold).unwrap(), json!("onHold"));
}

fn parse_bill_patch_json(body: &Value) -> Result<Option<BillState>, DomainError> {
    super::parse_bill_patch(body, PatchForm::Json)
}

fn parse_bill_patch(body: &Value) -> Result<Option<BillState>, DomainError> {
    match body {
        Value::Array(_) => parse_bill_patch_json(body),
        _ => super::parse_bill_patch(body, PatchForm::Merge),
    }
}

#[test]
fn given_patch_bodies_then_only_state_is_accepted() {
    assert_eq!(parse_bill_patch(&json!({"state": "OnHold"})), Ok(Some(BillState::OnHold)));
    assert_eq!(parse_bill_patch(&json!({})), Ok(None), "an empty merge patch asks nothing");
    assert_eq!(
        parse_bill_patch(
            &json!({"state": "onHold", "@type": "CustomerBill", "@baseType": "x", "@schemaLocation": "https://example.com/CustomerBill.schema.json"})
        ),
        Ok(Some(BillState::OnHold))
    );
    assert_eq!(
        parse_bill_patch_json(&json!([{"op": "replace", "path": "/state", "value": "InProgress"}])),
        Ok(Some(BillState::InProgress))
    );
    assert_eq!(parse_bill_patch_json(&json!([])), Ok(None));
    assert_eq!(
        parse_bill_patch(&json!({"state": "settled"})),
        Ok(Some(BillState::Settled)),
        "the rule refuses it later"
    );
    for (body, pointer) in [
        (json!({"state": "paused"}), "/state"),
        (json!({"state": null}), "/state"),
        (json!({"state": 3}), "/state"),
        (json!({"billNo": "7"}), "/billNo"),
        (json!({"colour": "red"}), "/colour"),
        (json!({"@type": "Bill", "state": "onHold"}), "/@type"),
        // Found by schemathesis: `@schemaLocation` and `@baseType` are ignored, but are strings.
        (json!({"state": "onHold", "@schemaLocation": {}}), "/@schemaLocation"),
        (json!({"state": "onHold", "@baseType": 1}), "/@baseType"),
        (json!([{"op": "remove", "path": "/state"}]), "/0/op"),
        (json!([{"op": "replace", "path": "/billNo", "value": "1"}]), "/0/path"),
        (json!([{"op": "replace", "path": "/state"}]), "/0"),
        (json!([{"op": "replace", "path": "/state", "value": "lost"}]), "/0/value"),
    ] {
        assert_eq!(refused(parse_bill_patch(&body)), pointer, "{body}");
    }
    assert!(parse_bill_patch(&json!("onHold")).is_err());
    assert!(super::parse_bill_patch(&json!([]), PatchForm::Merge).is_err(), "a merge patch is an object");
    assert!(super::parse_bill_patch(&json!({}), PatchForm::Json).is_err(), "a JSON Patch is an array");
}

#[test]
fn given_a_rate_then_its_included_amount_is_excluded_plus_taxes_exactly_as_sent() {
    let mut body = charge("A1", number("10.50"), "EUR");
    body["appliedTax"] = json!([{"taxCategory": "VAT", "taxRate": 0.20, "taxAmount": {"unit": "EUR", "value": 2.1}}]);
    body["date"] = json!("2026-11-01T12:00:00+02:00");
    let rate = rate(body.clone());
    assert_eq!(rate.tax_included_amount, Money::new("EUR", d("12.60")));
    assert!(!rate.is_billed && rate.bill.is_none());
    assert_eq!(rate.date, datetime!(2026-11-01 10:00:00 UTC), "date-times are answered in UTC");
    let json = serde_json::to_value(&rate).unwrap();
    assert_eq!(json["taxExcludedAmount"]["value"].to_string(), "10.50", "kept exactly as sent");
    assert_eq!(json["@type"], "AppliedCustomerBillingRate");
    assert_eq!(json["href"], format!("{BASE_PATH}/appliedCustomerBillingRate/{}", rate.id));
    assert_eq!(json["date"], "2026-11-01T10:00:00Z");
    body["taxIncludedAmount"] = json!({"unit": "EUR", "value": 12.6});
    assert_eq!(parse_rate(&body, new_id(), now()).unwrap().tax_included_amount.value, d("12.6"));
    assert_eq!(rate_without_date().date, now(), "date defaults to now");
}

fn rate_without_date() -> AppliedRate {
    rate(charge("A1", json!(1), "EUR"))
}

#[test]
fn given_bad_rates_then_400_names_the_field() {
    let tax = |unit: &str, value: Value| json!([{"taxAmount": {"unit": unit, "value": value}}]);
    let with = |name: &str, value: Value| {
        let mut body = charge("A1", json!(10), "EUR");
        body[name] = value;
        body
    };
    for (body, pointer) in [
        (json!({"taxExcludedAmount": {"unit": "EUR", "value": 1}}), "/billingAccount"),
        (json!({"billingAccount": {"id": "A1"}}), "/taxExcludedAmount"),
        (charge("", json!(1), "EUR"), "/billingAccount/id"),
        (charge(&"a".repeat(MAX_ID + 1), json!(1), "EUR"), "/billingAccount/id"),
        (charge("A1", json!(1), "eur"), "/taxExcludedAmount/unit"),
        (charge("A1", json!(1), "EURO"), "/taxExcludedAmount/unit"),
        (charge("A1", json!(1e20), "EUR"), "/taxExcludedAmount/value"),
        (charge("A1", json!(0.1234567), "EUR"), "/taxExcludedAmount/value"),
        (charge("A1", json!("10"), "EUR"), "/taxExcludedAmount"),
        (with("isBilled", json!(true)), "/isBilled"),
        (with("bill", json!({"id": "x"})), "/bill"),
        (with("id", json!("x")), "/id"),
        (with("colour", json!("red")), "/colour"),
        (with("@type", json!("CustomerBill")), "/@type"),
        (with("date", json!("yesterday")), "/date"),
        (with("appliedTax", tax("USD", json!(1))), "/appliedTax/0/taxAmount/unit"),
        (with("appliedTax", tax("EUR", json!(1e16))), "/appliedTax/0/taxAmount/value"),
        (with("appliedTax", json!([{"taxRate": 0.2}])), "/appliedTax"),
        (with("taxIncludedAmount", json!({"unit": "EUR", "value": 11})), "/taxIncludedAmount"),
        (with("taxIncludedAmount", json!({"unit": "USD", "value": 10})), "/taxIncludedAmount"),
        (with("name", json!("x".repeat(MAX_TEXT + 1))), "/name"),
        (with("characteristic", json!(vec![json!({"name": "n", "value": 1}); MAX_ENTRIES + 1])), "/characteristic"),
        (with("characteristic", json!([{"name": "n"}])), "/characteristic"),
        (with("billingAccount", json!({"id": "A1", "colour": "red"})), "/billingAccount"),
        // Found by schemathesis: no TMF678 attribute is nullable, at the top or nested.
        (with("type", Value::Null), "/type"),
        (with("billingAccount", json!({"id": "A1", "name": null})), "/billingAccount/name"),
        (with("@schemaLocation", json!(7)), "/@schemaLocation"),
        (with("billingAccount", json!({"id": "A1", "@schemaLocation": ""})), "/billingAccount/@schemaLocation"),
        (with("@schemaLocation", json!("not a uri")), "/@schemaLocation"),
    ] {
        assert_eq!(refused(parse_rate(&body, new_id(), now())), pointer, "{body}");
    }
    // Taxes that sum past the bound are refused, not wrapped.
    let big = json!({"unit": "EUR", "value": 999999999999999.0});
    let body = with("appliedTax", json!([{"taxAmount": big}, {"taxAmount": big}]));
    assert_eq!(refused(parse_rate(&body, new_id(), now())), "/taxIncludedAmount");
    // 15 integer and 6 fraction digits pass the input bound but not the amount bound (found by
    // the property tests).
    let body = charge("A1", number("999999999999999.999999"), "EUR");
    assert_eq!(refused(parse_rate(&body, new_id(), now())), "/taxIncludedAmount");
    assert!(parse_rate(&json!([1]), new_id(), now()).is_err());
}

#[test]
fn given_on_demand_bodies_then_only_the_client_fields_are_taken() {
    let body = json!({"billingAccount": {"id": "A1", "name": "Acme"}, "name": "now", "relatedParty": {"id": "P1", "role": "payer"}, "@baseType": "x"});
    let request = parse_on_demand(&body, new_id(), now()).unwrap();
    assert_eq!(request.state, RequestState::InProgress);
    assert!(request.work_pending());
    assert_eq!(request.related_party.as_ref().unwrap().role.as_deref(), Some("payer"));
    for (body, pointer) in [
        (json!({}), "/billingAccount"),
        (json!({"billingAccount": {"id": "A1"}, "state": "done"}), "/state"),
        (json!({"billingAccount": {"id": "A1"}, "customerBill": {"id": "x"}}), "/customerBill"),
        (json!({"billingAccount": {"id": "A1"}, "relatedParty": [{"id": "P"}]}), "/relatedParty"),
        (json!({"billingAccount": {"id": "A1"}, "relatedParty": {"id": ""}}), "/relatedParty/id"),
        (json!({"billingAccount": {"id": "A1"}, "@type": "CustomerBill"}), "/@type"),
        (json!({"billingAccount": "A1"}), "/billingAccount"),
        (json!({"billingAccount": {"id": "A1"}, "relatedParty": null}), "/relatedParty"),
        (json!({"billingAccount": {"id": "A1"}, "@baseType": {}}), "/@baseType"),
        (
            json!({"billingAccount": {"id": "A1"}, "relatedParty": {"id": "P", "@schemaLocation": "x y"}}),
            "/relatedParty/@schemaLocation",
        ),
    ] {
        assert_eq!(refused(parse_on_demand(&body, new_id(), now())), pointer, "{body}");
    }
}

fn request(description: Option<&str>) -> OnDemand {
    let mut body = json!({"billingAccount": {"id": "A1"}, "relatedParty": {"id": "P1"}});
    if let Some(text) = description {
        body["description"] = json!(text);
    }
    parse_on_demand(&body, new_id(), now()).unwrap()
}

fn bill_of(tally: &Tally) -> Result<CustomerBill, Refusal> {
    let on_demand = request(None);
    tally.bill(NewBill { id: new_id(), document: new_id(), bill_no: 7, request: &on_demand, now: now() })
}

#[test]
fn given_rates_then_the_bill_sums_exactly_and_rounds_once() {
    let mut tally = Tally::default();
    for value in [json!(0.1), json!(0.2)] {
        tally.add(&rate(charge("A1", value, "EUR"))).unwrap();
    }
    let bill = bill_of(&tally).unwrap();
    assert_eq!(bill.tax_excluded_amount.value, d("0.3"), "0.1 + 0.2 is 0.3");
    // Three rates of 0.005: summed then rounded once (0.015 -> 0.02), not rounded each (0.03).
    let mut tally = Tally::default();
    for _ in 0..3 {
        tally.add(&rate(charge("A1", json!(0.005), "EUR"))).unwrap();
    }
    assert_eq!(bill_of(&tally).unwrap().tax_excluded_amount.value, d("0.02"));
    // Half away from zero, for credits too.
    let mut tally = Tally::default();
    tally.add(&rate(charge("A1", json!(-0.125), "EUR"))).unwrap();
    assert_eq!(bill_of(&tally).unwrap().tax_excluded_amount.value, d("-0.13"));
}

#[test]
fn given_taxes_then_one_tax_item_per_category_and_rate_compared_as_numbers() {
    let taxed = |date: &str, taxes: Value| {
        let mut body = charge("A1", json!(10), "EUR");
        body["appliedTax"] = taxes;
        body["date"] = json!(date);
        rate(body)
    };
    let vat = |rate: Value, amount: Value| json!({"taxCategory": "VAT", "taxRate": rate, "taxAmount": {"unit": "EUR", "value": amount}});
    let mut tally = Tally::default();
    tally.add(&taxed("2026-11-03T00:00:00Z", json!([vat(json!(0.2), json!(0.333))]))).unwrap();
    tally.add(&taxed("2026-11-01T00:00:00Z", json!([vat(json!(0.20), json!(0.333))]))).unwrap();
    tally
        .add(&taxed(
            "2026-11-02T00:00:00Z",
            json!([vat(json!(0.05), json!(0.5)), {"taxCategory": "eco", "taxAmount": {"unit": "EUR", "value": 0.004}}]),
        ))
        .unwrap();
    let bill = bill_of(&tally).unwrap();
    assert_eq!(bill.tax_item.len(), 3, "{:?}", bill.tax_item);
    assert_eq!(bill.tax_item[0].tax_rate, Some(d("0.2")));
    assert_eq!(bill.tax_item[0].tax_amount.value, d("0.67"), "0.666 summed then rounded");
    assert_eq!(bill.tax_item[1].tax_amount.value, d("0.5"));
    assert_eq!(bill.tax_item[2].tax_amount.value, d("0"), "0.004 rounds to 0.00");
    assert_eq!(bill.tax_excluded_amount.value, d("30"));
    assert_eq!(bill.tax_included_amount.value, d("31.17"), "excluded plus the rounded tax items");
    assert_eq!(bill.amount_due, bill.tax_included_amount);
    assert_eq!(bill.remaining_amount, bill.tax_included_amount);
    assert_eq!(bill.billing_period.start_date_time, Some(datetime!(2026-11-01 00:00:00 UTC)));
    assert_eq!(bill.billing_period.end_date_time, Some(datetime!(2026-11-03 00:00:00 UTC)));
    assert_eq!(bill.payment_due_date, now() + time::Duration::days(30));
    assert_eq!(
        (bill.category.as_str(), bill.run_type.as_str(), bill.state),
        ("onDemand", "offCycle", BillState::InProgress)
    );
    assert_eq!(bill.bill_no, "7");
    assert_eq!(bill.related_party.len(), 1, "the request's party, as a list");
    assert_eq!(bill.bill_document[0].mime_type, "application/pdf");
    assert!(bill.bill_document[0].url.starts_with(BASE_PATH));
}

#[test]
fn given_rates_that_cannot_make_one_bill_then_the_refusal_says_why_and_the_tally_is_unchanged() {
    assert!(matches!(bill_of(&Tally::default()), Err(Refusal::NoRates(_))));
    let mut tally = Tally::default();
    tally.add(&rate(charge("A1", json!(1), "EUR"))).unwrap();
    let before = tally.clone();
    assert_eq!(
        tally.add(&rate(charge("A1", json!(1), "USD"))),
        Err(Refusal::MixedCurrencies("EUR".into(), "USD".into()))
    );
    assert_eq!(tally, before);
    let max = number("999999999999999.99");
    tally.add(&rate(charge("A1", max.clone(), "EUR"))).unwrap_err();
    assert_eq!(tally, before, "a sum past the bound is refused whole");
}

#[test]
fn given_requests_that_end_then_the_reason_follows_the_clients_description() {
    let rejected = request(Some("month end")).ended(RequestState::Rejected, "no unbilled rates", now());
    assert_eq!(rejected.description.as_deref(), Some("month end (no unbilled rates)"));
    assert!(!rejected.work_pending());
    let rejected = request(None).ended(RequestState::Rejected, "no unbilled rates", now());
    assert_eq!(rejected.description.as_deref(), Some("no unbilled rates"));
}

#[test]
fn account_billing_ids_are_stable_per_account() {
    assert_eq!(AccountBilling::id_of("A1"), AccountBilling::id_of("A1"));
    assert_ne!(AccountBilling::id_of("A1"), AccountBilling::id_of("A2"));
}

#[test]
fn given_an_account_then_one_on_demand_request_holds_it_at_a_time() {
    let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
    // Never billed, or billed and released: the request holds the account.
    let held = AccountBilling::hold_for(None, "ACC-1", first).expect("a new account is free");
    assert_eq!(held, AccountBilling::held_by("ACC-1", Some(first)));
    assert_eq!(held.id, AccountBilling::id_of("ACC-1"));
    let released = AccountBilling::held_by("ACC-1", None);
    assert_eq!(
        AccountBilling::hold_for(Some(&released), "ACC-1", second),
        Ok(AccountBilling::held_by("ACC-1", Some(second)))
    );
    // Held: any request, the holder's retry included, is 409 naming the holder.
    for request in [first, second] {
        match AccountBilling::hold_for(Some(&held), "ACC-1", request) {
            Err(DomainError::Conflict(detail)) => assert!(detail.contains(&first.to_string()), "{detail}"),
            other => panic!("expected 409, got {other:?}"),
        }
    }
}
