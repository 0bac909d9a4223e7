//! The assembly of an on-demand bill: the tally of an account's unbilled rates, exact to the
//! cent, and the bill it makes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Bill assembly

/// Why an account's rates cannot make one bill (the request is `rejected` with this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no unbilled rates for billing account {0}")]
    NoRates(String),
    #[error("the unbilled rates are in more than one currency ({0} and {1}); bill each currency separately")]
    MixedCurrencies(String, String),
    #[error("the bill's {0} would exceed 999,999,999,999,999.99")]
    TooLarge(&'static str),
    #[error("the bill would have more than {MAX_ENTRIES} tax items")]
    TooManyTaxItems,
}

/// The taxes of one (`taxCategory`, `taxRate`) group, summed unrounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxGroup {
    pub tax_category: Option<String>,
    #[serde(with = "money::option_number")]
    pub tax_rate: Option<Decimal>,
    #[serde(with = "money::number")]
    pub sum: Decimal,
}

/// What a bill is made of, accumulated rate by rate (kept by the worker between steps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    pub unit: Option<String>,
    pub count: u64,
    #[serde(with = "money::number")]
    pub excluded: Decimal,
    pub taxes: Vec<TaxGroup>,
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub first: Option<OffsetDateTime>,
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub last: Option<OffsetDateTime>,
}

pub(super) fn within(value: Option<Decimal>, what: &'static str) -> Result<Decimal, Refusal> {
    money::amount(value).ok_or(Refusal::TooLarge(what))
}

impl Tally {
    /// Adds a rate; on a refusal the tally is unchanged.
    pub fn add(&mut self, rate: &AppliedRate) -> Result<(), Refusal> {
        let unit = &rate.tax_excluded_amount.unit;
        if let Some(own) = self.unit.as_ref().filter(|own| *own != unit) {
            return Err(Refusal::MixedCurrencies(own.clone(), unit.clone()));
        }
        let mut next = self.clone();
        next.unit = Some(unit.clone());
        next.count += 1;
        next.excluded = within(next.excluded.checked_add(rate.tax_excluded_amount.value), "taxExcludedAmount")?;
        for tax in &rate.applied_tax {
            // Rates compare as numbers: 0.2 and 0.20 are one group.
            let rate_key = tax.tax_rate.map(|r| r.normalize());
            let at = next.taxes.iter().position(|g| g.tax_category == tax.tax_category && g.tax_rate == rate_key);
            let at = match at {
                Some(at) => at,
                None if next.taxes.len() >= MAX_ENTRIES => return Err(Refusal::TooManyTaxItems),
                None => {
                    next.taxes.push(TaxGroup {
                        tax_category: tax.tax_category.clone(),
                        tax_rate: rate_key,
                        sum: Decimal::ZERO,
                    });
                    next.taxes.len() - 1
                }
            };
            next.taxes[at].sum = within(next.taxes[at].sum.checked_add(tax.tax_amount.value), "taxItem")?;
        }
        next.included()?;
        next.first = Some(next.first.map_or(rate.date, |d| d.min(rate.date)));
        next.last = Some(next.last.map_or(rate.date, |d| d.max(rate.date)));
        *self = next;
        Ok(())
    }

    /// The bill's amounts, each rounded once to cents: excluded, each tax group's, and included.
    pub(super) fn included(&self) -> Result<Amounts, Refusal> {
        let excluded = money::cents(self.excluded);
        let taxes: Vec<Decimal> = self.taxes.iter().map(|g| money::cents(g.sum)).collect();
        let mut included = Some(excluded);
        for amount in &taxes {
            included = included.and_then(|sum| sum.checked_add(*amount));
        }
        Ok(Amounts { excluded, taxes, included: within(included, "taxIncludedAmount")? })
    }

    /// The bill of these rates, `inProgress`.
    pub fn bill(&self, new: NewBill<'_>) -> Result<CustomerBill, Refusal> {
        let (unit, first, last) = match (&self.unit, self.first, self.last) {
            (Some(unit), Some(first), Some(last)) if self.count > 0 => (unit, first, last),
            _ => return Err(Refusal::NoRates(new.request.billing_account.id.clone())),
        };
        let Amounts { excluded, taxes, included } = self.included()?;
        let id = new.id;
        let document = new.document;
        Ok(CustomerBill {
            id,
            href: format!("{BASE_PATH}/customerBill/{id}"),
            at_type: BILL_TYPE.to_owned(),
            bill_no: new.bill_no.to_string(),
            bill_date: new.now,
            category: "onDemand".to_owned(),
            run_type: "offCycle".to_owned(),
            state: BillState::InProgress,
            amount_due: Money::new(unit, included),
            remaining_amount: Money::new(unit, included),
            tax_excluded_amount: Money::new(unit, excluded),
            tax_included_amount: Money::new(unit, included),
            tax_item: taxes
                .into_iter()
                .zip(&self.taxes)
                .map(|(amount, group)| TaxItem {
                    tax_category: group.tax_category.clone(),
                    tax_rate: group.tax_rate,
                    tax_amount: Money::new(unit, amount),
                })
                .collect(),
            bill_document: vec![Attachment {
                id: document.to_string(),
                name: format!("bill-{}.pdf", new.bill_no),
                mime_type: "application/pdf".to_owned(),
                url: format!("{BASE_PATH}/customerBill/{id}/billDocument/{document}"),
            }],
            billing_account: new.request.billing_account.clone(),
            billing_period: TimePeriod { start_date_time: Some(first), end_date_time: Some(last) },
            payment_due_date: new.now + time::Duration::days(PAYMENT_TERM_DAYS),
            related_party: new.request.related_party.iter().cloned().collect(),
            last_update: new.now,
        })
    }
}

/// A bill's amounts, rounded to cents.
pub(super) struct Amounts {
    excluded: Decimal,
    taxes: Vec<Decimal>,
    included: Decimal,
}

/// What a bill takes beside its rates.
#[derive(Debug, Clone, Copy)]
pub struct NewBill<'a> {
    pub id: Uuid,
    pub document: Uuid,
    pub bill_no: u64,
    pub request: &'a OnDemand,
    pub now: OffsetDateTime,
}

impl AppliedRate {
    /// The rate billed on `bill`.
    pub fn billed_on(&self, bill: Uuid) -> Self {
        let mut next = self.clone();
        next.is_billed = true;
        next.bill = Some(EntityRef::to(bill, "customerBill"));
        next
    }
}

/// The whole bill with its state changed (`lastUpdate` now).
pub fn with_state(bill: &CustomerBill, state: BillState, now: OffsetDateTime) -> CustomerBill {
    CustomerBill { state, last_update: now, ..bill.clone() }
}
