//! Request bodies: a rate, an on-demand request and a bill's PATCH, each parsed into its
//! resource or refused naming the field.

use super::*;
use crate::domain::check::{checked, escape, Check, Obj};

// ---------------------------------------------------------------------------------------------
// Request bodies

/// What a POST or PATCH body may carry, beside the resource's own fields.
pub(super) const IGNORED: &[&str] = &["@baseType", "@schemaLocation"];

/// The body as an object whose every member is `allowed` (or ignored); server-owned members and
/// unknown ones are 400 naming them; `@type`, if sent, must be `at_type`. The whole body is
/// held to [`bounded`] first.
pub(super) fn members<'a>(
    check: &mut Check,
    body: &'a Value,
    allowed: &[&str],
    server_owned: &[&str],
    at_type: &str,
) -> Result<Obj<'a>, DomainError> {
    bounded(check, body, "");
    check.stop()?;
    let known: Vec<&str> = [allowed, server_owned, IGNORED, &["@type"]].concat();
    let obj = check.root(body, &known)?;
    for owned in server_owned.iter().filter(|name| obj.map.contains_key(**name)) {
        check.fail(obj.pointer(owned), "is set by the server and cannot be sent");
    }
    check.value(&obj, "@type", false, |v| (v.as_str() == Some(at_type)).then_some(()), &format!("{at_type:?}"));
    // Ignored, but still what TMF678 says they are.
    for ignored in IGNORED {
        check.value(&obj, ignored, false, Value::as_str, "a string");
    }
    check.stop()?;
    Ok(obj)
}

/// Refuses text longer than [`MAX_TEXT`], arrays longer than [`MAX_ENTRIES`], `null`, and an
/// `@schemaLocation` that is not a URI, anywhere in a body: no TMF678 attribute is nullable, so a
/// `null` is a client's mistake, not an absence.
pub(super) fn bounded(check: &mut Check, value: &Value, pointer: &str) {
    match value {
        Value::Null => check.fail(pointer.to_owned(), "must not be null: leave the attribute out"),
        Value::String(text) if text.chars().count() > MAX_TEXT => {
            check.fail(pointer.to_owned(), format!("must be at most {MAX_TEXT} characters"))
        }
        Value::Array(items) if items.len() > MAX_ENTRIES => {
            check.fail(pointer.to_owned(), format!("must have at most {MAX_ENTRIES} entries"))
        }
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, item)| bounded(check, item, &format!("{pointer}/{i}")))
        }
        Value::Object(map) => map.iter().for_each(|(name, item)| {
            let at = format!("{pointer}/{}", escape(name));
            // Kept as sent on references, and TMF678's is a URI (found by schemathesis: `""` was
            // stored and answered, which no TMF client can read as one).
            if name == "@schemaLocation" && item.as_str().is_none_or(|uri| fluent_uri::Uri::parse(uri).is_err()) {
                check.fail(at, "must be a URI");
            } else {
                bounded(check, item, &at);
            }
        }),
        _ => {}
    }
}

pub(super) const RATE_FIELDS: &[&str] = &[
    "billingAccount",
    "taxExcludedAmount",
    "taxIncludedAmount",
    "name",
    "description",
    "type",
    "date",
    "periodCoverage",
    "product",
    "characteristic",
    "appliedTax",
];
pub(crate) const RATE_SERVER_OWNED: &[&str] =
    &["id", "href", "isBilled", "bill", "state", "lastUpdate", "customerBill"];

/// The tax-included amount of a rate: the excluded amount plus its taxes (each in the rate's
/// unit, rates within bounds), computed, or as sent when it is exactly that.
fn included_amount(sent: Option<Money>, excluded: &Money, applied_tax: &[AppliedTax]) -> Result<Money, DomainError> {
    // Every computed amount lies within the bounds, the included one even without taxes (an
    // input of 15+6 digits can pass 999,999,999,999,999.99).
    let mut included = money::amount(Some(excluded.value));
    for (i, tax) in applied_tax.iter().enumerate() {
        let pointer = format!("/appliedTax/{i}");
        tax.tax_amount.check(&format!("{pointer}/taxAmount"))?;
        if tax.tax_amount.unit != excluded.unit {
            return Err(DomainError::field(format!("{pointer}/taxAmount/unit"), "must be the rate's unit"));
        }
        if tax.tax_rate.is_some_and(|rate| !QUANTITY.admit(rate)) {
            return Err(DomainError::field(format!("{pointer}/taxRate"), format!("must be {}", QUANTITY.describe())));
        }
        included = money::amount(included.and_then(|sum| sum.checked_add(tax.tax_amount.value)));
    }
    let included = included.ok_or_else(|| {
        DomainError::field("/taxIncludedAmount", "the excluded amount and the taxes sum beyond 999,999,999,999,999.99")
    })?;
    Ok(match sent {
        None => Money::new(&excluded.unit, included),
        Some(sent) => {
            sent.check("/taxIncludedAmount")?;
            if sent.unit != excluded.unit || sent.value != included {
                return Err(DomainError::field(
                    "/taxIncludedAmount",
                    format!("must be the excluded amount plus the taxes: {included} {}", excluded.unit),
                ));
            }
            sent
        }
    })
}

/// A `POST /appliedCustomerBillingRate` body as a new, unbilled rate.
pub fn parse_rate(body: &Value, id: Uuid, now: OffsetDateTime) -> Result<AppliedRate, DomainError> {
    let mut check = Check::new();
    let obj = members(&mut check, body, RATE_FIELDS, RATE_SERVER_OWNED, RATE_TYPE)?;
    let billing_account = check.member::<EntityRef>(&obj, "billingAccount", true);
    let excluded = check.member::<Money>(&obj, "taxExcludedAmount", true);
    let applied_tax: Vec<AppliedTax> = check.member(&obj, "appliedTax", false).unwrap_or_default();
    let sent_included = check.member::<Money>(&obj, "taxIncludedAmount", false);
    let date_time = |v: &Value| v.as_str().and_then(datetime::parse);
    let date = check.value(&obj, "date", false, date_time, "an RFC 3339 date-time").unwrap_or(now);
    let product = check.member::<EntityRef>(&obj, "product", false);
    let (name, description, rate_type) = (
        check.member(&obj, "name", false),
        check.member(&obj, "description", false),
        check.member(&obj, "type", false),
    );
    let period_coverage = check.member(&obj, "periodCoverage", false);
    let characteristic = check.member(&obj, "characteristic", false).unwrap_or_default();
    check.stop()?;
    let (billing_account, excluded) = (checked(billing_account)?, checked(excluded)?);
    billing_account.check("/billingAccount")?;
    excluded.check("/taxExcludedAmount")?;
    if let Some(product) = &product {
        product.check("/product")?;
    }
    Ok(AppliedRate {
        id,
        href: format!("{BASE_PATH}/appliedCustomerBillingRate/{id}"),
        at_type: RATE_TYPE.to_owned(),
        date,
        name,
        description,
        rate_type,
        is_billed: false,
        bill: None,
        billing_account,
        period_coverage,
        product,
        characteristic,
        tax_included_amount: included_amount(sent_included, &excluded, &applied_tax)?,
        applied_tax,
        tax_excluded_amount: excluded,
    })
}

pub(super) const ON_DEMAND_FIELDS: &[&str] = &["billingAccount", "name", "description", "relatedParty"];
pub(crate) const ON_DEMAND_SERVER_OWNED: &[&str] = &["id", "href", "state", "lastUpdate", "customerBill"];

/// A `POST /customerBillOnDemand` body as a new request, `inProgress`.
pub fn parse_on_demand(body: &Value, id: Uuid, now: OffsetDateTime) -> Result<OnDemand, DomainError> {
    let mut check = Check::new();
    let obj = members(&mut check, body, ON_DEMAND_FIELDS, ON_DEMAND_SERVER_OWNED, ON_DEMAND_TYPE)?;
    let billing_account = check.member::<EntityRef>(&obj, "billingAccount", true);
    let related_party = check.member::<PartyRef>(&obj, "relatedParty", false);
    let (name, description) = (check.member(&obj, "name", false), check.member(&obj, "description", false));
    check.stop()?;
    let billing_account = checked(billing_account)?;
    billing_account.check("/billingAccount")?;
    if related_party.as_ref().is_some_and(|p| p.id.is_empty() || p.id.chars().count() > MAX_ID) {
        return Err(DomainError::field("/relatedParty/id", format!("must be 1 to {MAX_ID} characters")));
    }
    Ok(OnDemand {
        id,
        href: format!("{BASE_PATH}/customerBillOnDemand/{id}"),
        at_type: ON_DEMAND_TYPE.to_owned(),
        name,
        description,
        billing_account,
        related_party,
        state: RequestState::InProgress,
        customer_bill: None,
        last_update: now,
    })
}

/// How a PATCH body is written (its content type says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchForm {
    /// `application/merge-patch+json` or `application/json`: an object.
    Merge,
    /// `application/json-patch+json`: operations on `/state` only.
    Json,
}

/// The state a PATCH of a customer bill asks for; `None`: nothing asked (`{}` or `[]`).
pub fn parse_bill_patch(body: &Value, form: PatchForm) -> Result<Option<BillState>, DomainError> {
    let state = |value: &Value, pointer: &str| -> Result<BillState, DomainError> {
        value.as_str().and_then(BillState::parse).ok_or_else(|| {
            DomainError::field(pointer, "must be a customer bill state: inProgress or onHold (InProgress, OnHold)")
        })
    };
    match (form, body) {
        (PatchForm::Merge, Value::Object(_)) => {
            // Every other attribute of a customer bill is the server's (`@type` is checked, and
            // `@baseType` and `@schemaLocation` ignored, by `members`).
            let server_owned: Vec<&str> = BILL_SHAPE
                .iter()
                .map(|(name, _)| *name)
                .filter(|name| *name != "state" && !name.starts_with('@'))
                .collect();
            let obj = members(&mut Check::new(), body, &["state"], &server_owned, BILL_TYPE)
                .map_err(|e| with_detail(e, "only state can be patched"))?;
            obj.map.get("state").map(|value| state(value, "/state")).transpose()
        }
        (PatchForm::Json, Value::Array(operations)) => {
            crate::domain::patch::check_operation_count(operations.len())?;
            let mut target = None;
            for (i, operation) in operations.iter().enumerate() {
                let pointer = format!("/{i}");
                let op = operation.get("op").and_then(Value::as_str);
                if !matches!(op, Some("replace" | "add")) {
                    return Err(DomainError::field(format!("{pointer}/op"), "must be replace (or add) of /state"));
                }
                if operation.get("path").and_then(Value::as_str) != Some("/state") {
                    return Err(DomainError::field(format!("{pointer}/path"), "only /state can be patched"));
                }
                let value = operation.get("value").ok_or_else(|| DomainError::field(&pointer, "needs a value"))?;
                target = Some(state(value, &format!("{pointer}/value"))?);
            }
            Ok(target)
        }
        (PatchForm::Merge, _) => Err(DomainError::invalid("a merge patch must be a JSON object")),
        (PatchForm::Json, _) => Err(DomainError::invalid("a JSON Patch must be an array of operations")),
    }
}

pub(super) fn with_detail(error: DomainError, hint: &str) -> DomainError {
    match error {
        DomainError::Invalid { detail, errors } => {
            DomainError::Invalid { detail: format!("{detail} ({hint})"), errors }
        }
        other => other,
    }
}
