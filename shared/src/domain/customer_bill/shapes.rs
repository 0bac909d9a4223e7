//! The attributes lists can filter on and select: the TMF678 v4 schemas' properties.

use super::super::tmf_query::Shape::{self, Leaf, Object};

const MONEY: Shape = Object(&[("unit", Leaf), ("value", Leaf)]);
const META: [(&str, Shape); 3] = [("@type", Leaf), ("@baseType", Leaf), ("@schemaLocation", Leaf)];
const REF: Shape =
    Object(&[("id", Leaf), ("href", Leaf), ("name", Leaf), ("@referredType", Leaf), META[0], META[1], META[2]]);
const PARTY: Shape = Object(&[
    ("id", Leaf),
    ("href", Leaf),
    ("name", Leaf),
    ("role", Leaf),
    ("@referredType", Leaf),
    META[0],
    META[1],
    META[2],
]);
const PERIOD: Shape = Object(&[("startDateTime", Leaf), ("endDateTime", Leaf)]);
const TAX: Shape = Object(&[("taxCategory", Leaf), ("taxRate", Leaf), ("taxAmount", MONEY), META[0], META[1], META[2]]);
const ATTACHMENT: Shape = Object(&[
    ("id", Leaf),
    ("href", Leaf),
    ("attachmentType", Leaf),
    ("content", Leaf),
    ("description", Leaf),
    ("mimeType", Leaf),
    ("name", Leaf),
    ("url", Leaf),
    ("size", Object(&[("amount", Leaf), ("units", Leaf)])),
    ("validFor", PERIOD),
    ("@referredType", Leaf),
    META[0],
    META[1],
    META[2],
]);
const CHARACTERISTIC: Shape =
    Object(&[("name", Leaf), ("valueType", Leaf), ("value", Leaf), META[0], META[1], META[2]]);
const PAYMENT: Shape = Object(&[("appliedAmount", MONEY), ("payment", REF), META[0], META[1], META[2]]);

pub const BILL: &[(&str, Shape)] = &[
    ("id", Leaf),
    ("href", Leaf),
    ("billDate", Leaf),
    ("billNo", Leaf),
    ("category", Leaf),
    ("lastUpdate", Leaf),
    ("nextBillDate", Leaf),
    ("paymentDueDate", Leaf),
    ("runType", Leaf),
    ("amountDue", MONEY),
    ("appliedPayment", PAYMENT),
    ("billDocument", ATTACHMENT),
    ("billingAccount", REF),
    ("billingPeriod", PERIOD),
    ("financialAccount", REF),
    ("paymentMethod", REF),
    ("relatedParty", PARTY),
    ("remainingAmount", MONEY),
    ("state", Leaf),
    ("taxExcludedAmount", MONEY),
    ("taxIncludedAmount", MONEY),
    ("taxItem", TAX),
    META[0],
    META[1],
    META[2],
];

pub const ON_DEMAND: &[(&str, Shape)] = &[
    ("id", Leaf),
    ("href", Leaf),
    ("description", Leaf),
    ("lastUpdate", Leaf),
    ("name", Leaf),
    ("billingAccount", REF),
    ("customerBill", REF),
    ("relatedParty", PARTY),
    ("state", Leaf),
    META[0],
    META[1],
    META[2],
];

pub const RATE: &[(&str, Shape)] = &[
    ("id", Leaf),
    ("href", Leaf),
    ("date", Leaf),
    ("description", Leaf),
    ("isBilled", Leaf),
    ("name", Leaf),
    ("type", Leaf),
    ("appliedTax", TAX),
    ("bill", REF),
    ("billingAccount", REF),
    ("characteristic", CHARACTERISTIC),
    ("periodCoverage", PERIOD),
    ("product", REF),
    ("taxExcludedAmount", MONEY),
    ("taxIncludedAmount", MONEY),
    META[0],
    META[1],
    META[2],
];
