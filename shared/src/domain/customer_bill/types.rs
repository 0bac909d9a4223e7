//! The TMF678 value types, the states, and the four resources (rates, bills, on-demand requests
//! and the account hold), as the official schemas shape them.

use super::*;

// ---------------------------------------------------------------------------------------------
// The TMF value types

/// TMF `Money`: an ISO 4217 unit and an exact decimal value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    pub unit: String,
    #[serde(with = "exact")]
    pub value: Decimal,
}

impl Money {
    pub fn new(unit: &str, value: Decimal) -> Self {
        Self { unit: unit.to_owned(), value }
    }

    /// A client's money: a three-letter upper-case unit and a value within the money bounds.
    pub(super) fn check(&self, pointer: &str) -> Result<(), DomainError> {
        if !(self.unit.len() == 3 && self.unit.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(DomainError::field(format!("{pointer}/unit"), "must be an ISO 4217 code such as EUR"));
        }
        if !MONEY.admit(self.value) {
            return Err(DomainError::field(format!("{pointer}/value"), format!("must be {}", MONEY.describe())));
        }
        Ok(())
    }
}

/// TMF `BillingAccountRef`, `ProductRef` and `BillRef`: a reference to another entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "@referredType", default, skip_serializing_if = "Option::is_none")]
    pub referred_type: Option<String>,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

impl EntityRef {
    /// A reference to one of our resources: its id and href.
    pub fn to(id: Uuid, path: &str) -> Self {
        Self {
            id: id.to_string(),
            href: Some(format!("{BASE_PATH}/{path}/{id}")),
            name: None,
            referred_type: None,
            at_type: None,
            base_type: None,
            schema_location: None,
        }
    }

    pub(super) fn check(&self, pointer: &str) -> Result<(), DomainError> {
        if self.id.is_empty() || self.id.chars().count() > MAX_ID {
            return Err(DomainError::field(format!("{pointer}/id"), format!("must be 1 to {MAX_ID} characters")));
        }
        Ok(())
    }
}

/// TMF `RelatedPartyRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(rename = "@referredType", default, skip_serializing_if = "Option::is_none")]
    pub referred_type: Option<String>,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

/// TMF `TimePeriod`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimePeriod {
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<OffsetDateTime>,
    #[serde(default, with = "datetime::option", skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<OffsetDateTime>,
}

/// TMF `AppliedBillingTaxRate`: one tax on a rated charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppliedTax {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_category: Option<String>,
    #[serde(default, with = "exact::option", skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<Decimal>,
    pub tax_amount: Money,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

/// TMF `TaxItem`: a bill's tax of one category and rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_category: Option<String>,
    #[serde(default, with = "exact::option", skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<Decimal>,
    pub tax_amount: Money,
}

/// TMF `AppliedBillingRateCharacteristic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Characteristic {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
    pub value: Value,
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub at_type: Option<String>,
    #[serde(rename = "@baseType", default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
    #[serde(rename = "@schemaLocation", default, skip_serializing_if = "Option::is_none")]
    pub schema_location: Option<String>,
}

/// TMF `AttachmentRefOrValue`: the bill's document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub url: String,
}

// ---------------------------------------------------------------------------------------------
// States

/// A customer bill's `state`: TMF's `stateValue` enum, with the Oracle BRM profile's `inProgress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantArray)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum BillState {
    New,
    InProgress,
    OnHold,
    Validated,
    Sent,
    PartiallyPaid,
    Settled,
}

impl BillState {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// A state as a client writes it: TMF camelCase, or Oracle's `InProgress`/`OnHold` spelling.
    pub fn parse(text: &str) -> Option<Self> {
        use strum::VariantArray;
        Self::VARIANTS.iter().copied().find(|state| {
            let name = state.name();
            let pascal = name[..1].to_ascii_uppercase() + &name[1..];
            text == name || text == pascal
        })
    }

    /// Oracle's rule: a bill moves between `inProgress` and `onHold` only. `None`: the bill is
    /// in that state already (nothing to write).
    pub fn change_to(self, target: Self) -> Result<Option<Self>, DomainError> {
        let movable = |s: Self| matches!(s, Self::InProgress | Self::OnHold);
        if !movable(target) {
            return Err(DomainError::field("/state", "a bill can only be put inProgress or onHold"));
        }
        if !movable(self) {
            return Err(DomainError::conflict(format!(
                "the bill is {}: only a bill inProgress or onHold changes state",
                self.name()
            )));
        }
        Ok((self != target).then_some(target))
    }
}

/// A `CustomerBillOnDemand`'s `state` (TMF `StateValues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum RequestState {
    InProgress,
    Rejected,
    Done,
    TerminatedWithError,
}

impl RequestState {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

// ---------------------------------------------------------------------------------------------
// The resources

/// `AppliedCustomerBillingRate`: a rated charge of a billing account, billed once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRate {
    pub id: Uuid,
    pub href: String,
    #[serde(rename = "@type")]
    pub at_type: String,
    #[serde(with = "datetime")]
    pub date: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub rate_type: Option<String>,
    pub is_billed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bill: Option<EntityRef>,
    pub billing_account: EntityRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_coverage: Option<TimePeriod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<EntityRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub characteristic: Vec<Characteristic>,
    pub applied_tax: Vec<AppliedTax>,
    pub tax_excluded_amount: Money,
    pub tax_included_amount: Money,
}

pub const RATE_TYPE: &str = "AppliedCustomerBillingRate";

impl Resource for AppliedRate {
    const KIND: Kind = Kind::new("CBRATE", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    /// An account's unbilled rates are a group of their own: what an on-demand bill walks.
    fn group(&self) -> Option<String> {
        Some(rate_group(&self.billing_account.id, self.is_billed))
    }

    /// Slot 1: all of an account's rates, billed or not (what a list by `billingAccount.id` reads);
    /// slot 2: the rates billed on one bill (what undoing a request that never made it reads).
    fn groups(&self) -> Result<Vec<Option<String>>, serde_json::Error> {
        let on_bill = self.bill.as_ref().map(|bill| Self::bill_group(&bill.id));
        Ok(vec![self.group(), Some(Self::account_group(&self.billing_account.id)), on_bill])
    }
}

impl AppliedRate {
    /// The group slot of [`Self::bill_group`].
    pub const BILL_SLOT: usize = 2;

    /// The group (slot 2) of the rates billed on bill `bill`.
    pub fn bill_group(bill: &str) -> String {
        format!("bill#{bill}")
    }

    /// The rate as it was before it was billed: unbilled, on no bill.
    pub fn unbilled(&self) -> Self {
        Self { is_billed: false, bill: None, ..self.clone() }
    }

    /// The group (slot 1) of every rate of an account.
    pub fn account_group(account: &str) -> String {
        format!("account#{account}")
    }
}

/// The group of an account's rates, billed or not.
pub fn rate_group(account: &str, billed: bool) -> String {
    format!("{}#{account}", if billed { "billed" } else { "unbilled" })
}

/// `CustomerBill`: an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerBill {
    pub id: Uuid,
    pub href: String,
    #[serde(rename = "@type")]
    pub at_type: String,
    pub bill_no: String,
    #[serde(with = "datetime")]
    pub bill_date: OffsetDateTime,
    pub category: String,
    pub run_type: String,
    pub state: BillState,
    pub amount_due: Money,
    pub remaining_amount: Money,
    pub tax_excluded_amount: Money,
    pub tax_included_amount: Money,
    pub tax_item: Vec<TaxItem>,
    pub bill_document: Vec<Attachment>,
    pub billing_account: EntityRef,
    pub billing_period: TimePeriod,
    #[serde(with = "datetime")]
    pub payment_due_date: OffsetDateTime,
    pub related_party: Vec<PartyRef>,
    #[serde(with = "datetime")]
    pub last_update: OffsetDateTime,
}

pub const BILL_TYPE: &str = "CustomerBill";

impl Resource for CustomerBill {
    const KIND: Kind = Kind::new("CBILL", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    fn group(&self) -> Option<String> {
        Some(self.billing_account.id.clone())
    }
}

/// `CustomerBillOnDemand`: a request to bill an account's unbilled rates now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnDemand {
    pub id: Uuid,
    pub href: String,
    #[serde(rename = "@type")]
    pub at_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub billing_account: EntityRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_party: Option<PartyRef>,
    pub state: RequestState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_bill: Option<EntityRef>,
    #[serde(with = "datetime")]
    pub last_update: OffsetDateTime,
}

pub const ON_DEMAND_TYPE: &str = "CustomerBillOnDemand";

impl Resource for OnDemand {
    const KIND: Kind = Kind::new("CBDEMAND", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    fn group(&self) -> Option<String> {
        Some(self.billing_account.id.clone())
    }

    fn work_pending(&self) -> bool {
        self.state == RequestState::InProgress
    }
}

impl OnDemand {
    /// The request done: its bill made.
    pub fn done(&self, bill: &CustomerBill, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        next.state = RequestState::Done;
        next.customer_bill = Some(EntityRef::to(bill.id, "customerBill"));
        next.last_update = now;
        next
    }

    /// The request ended without a bill (`rejected` or `terminatedWithError`); the reason follows
    /// the client's own description, so nothing it wrote is lost.
    pub fn ended(&self, state: RequestState, reason: &str, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        next.state = state;
        next.description = Some(match &self.description {
            Some(own) if !own.is_empty() => format!("{own} ({reason})"),
            _ => reason.to_owned(),
        });
        next.last_update = now;
        next
    }
}

/// The billing of one account (never shown to clients): which on-demand request holds it, so that
/// at most one bills the account's rates at a time. Its id is derived from the account's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountBilling {
    pub id: Uuid,
    pub billing_account_id: String,
    pub on_demand: Option<Uuid>,
}

impl Resource for AccountBilling {
    const KIND: Kind = Kind::new("CBACCOUNT", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }
}

impl AccountBilling {
    /// The id of an account's billing item: a name-based UUID of the account id.
    pub fn id_of(account: &str) -> Uuid {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b8e_5d3a_4c7f_9e21_0b4d_8a6c_3e15);
        Uuid::new_v5(&NAMESPACE, account.as_bytes())
    }

    pub fn held_by(account: &str, on_demand: Option<Uuid>) -> Self {
        Self { id: Self::id_of(account), billing_account_id: account.to_owned(), on_demand }
    }

    /// One on-demand request at a time per account: the account's billing held by `request`,
    /// given its current billing (none yet for an account never billed); 409 while a request
    /// holds it (the worker releases the hold when the request ends).
    pub fn hold_for(current: Option<&Self>, account: &str, request: Uuid) -> Result<Self, DomainError> {
        if let Some(other) = current.and_then(|billing| billing.on_demand) {
            return Err(DomainError::conflict(format!(
                "billing account {account:?} is being billed by customerBillOnDemand {other}; retry when it is done"
            )));
        }
        Ok(Self::held_by(account, Some(request)))
    }
}

/// A new id: time-ordered (UUID v7), so that id order is creation order and lists read newest
/// first straight from an index.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
