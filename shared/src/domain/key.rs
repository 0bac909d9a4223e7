//! Keys that say what they are. A kind of resource declares its id type (an integer from a
//! counter, or a UUID); every kind belongs to one tenant (docs/tenants.md), so a [`Key`]
//! cannot be made without its [`TenantId`], and with an id of the kind's type only. The store
//! builds every item key and index partition from these, each starting with the tenant, so no
//! key of one tenant can name another tenant's item.

use std::fmt;

/// How a kind's ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdType {
    /// 1, 2, 3, ... from an atomic per-kind counter of the tenant.
    Counter,
    /// A random UUID made by the server.
    Uuid,
}

/// A kind of stored resource: its name in keys and its id type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    pub name: &'static str,
    pub ids: IdType,
}

impl Kind {
    pub const fn new(name: &'static str, ids: IdType) -> Self {
        Self { name, ids }
    }
}

/// A tenant id: 1 to 64 characters of letters, digits and `-_.`, the first a letter or digit (so it
/// can never forge a key separator, and is never `.` or `..` in a path).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_LEN).contains(&text.len())
            && text.as_bytes()[0].is_ascii_alphanumeric()
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The prefix every key, partition, counter, guard and record of this tenant starts with.
    pub fn prefix(&self) -> String {
        format!("T#{}#", self.0)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resource id of either type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(u64),
    Uuid(uuid::Uuid),
}

impl Id {
    fn id_type(&self) -> IdType {
        match self {
            Self::Int(_) => IdType::Counter,
            Self::Uuid(_) => IdType::Uuid,
        }
    }

    /// The id as an index sort key: integers zero-padded so that text order is number order.
    pub fn sort_key(&self) -> String {
        match self {
            Self::Int(n) => format!("{n:020}"),
            Self::Uuid(u) => u.hyphenated().to_string(),
        }
    }

    /// Parses an id of `ids`'s type as keys and paths write it (integers without padding).
    pub fn parse(ids: IdType, text: &str) -> Option<Self> {
        match ids {
            // Digits only: `u64::from_str` would also take "+5".
            IdType::Counter => {
                text.bytes().all(|b| b.is_ascii_digit()).then(|| text.parse().ok()).flatten().map(Self::Int)
            }
            IdType::Uuid => uuid::Uuid::try_parse(text).ok().map(Self::Uuid),
        }
    }

    pub fn as_int(&self) -> Option<u64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Uuid(_) => None,
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(n) => write!(f, "{n}"),
            Self::Uuid(u) => write!(f, "{}", u.hyphenated()),
        }
    }
}

/// A key whose id does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} key needs a {expected}")]
pub struct KeyError {
    pub kind: &'static str,
    pub expected: &'static str,
}

/// The full address of one item: kind, tenant and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    kind: Kind,
    tenant: TenantId,
    id: Id,
}

impl Key {
    /// A key, refused when the id's type does not fit the kind.
    pub fn new(kind: Kind, tenant: TenantId, id: Id) -> Result<Self, KeyError> {
        if id.id_type() != kind.ids {
            let expected = if kind.ids == IdType::Counter { "integer id" } else { "UUID id" };
            return Err(KeyError { kind: kind.name, expected });
        }
        Ok(Self { kind, tenant, id })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn id(&self) -> &Id {
        &self.id
    }

    /// The item's partition key: `T#<tenant>#<KIND>#<id>`.
    pub fn partition(&self) -> String {
        format!("{}{}#{}", self.tenant.prefix(), self.kind.name, self.id)
    }

    /// Parses a partition key back, for a kind among `kinds` (a stream record names its item so):
    /// only the partition a key writes (`007` or a UUID without hyphens is no key).
    pub fn parse(partition: &str, kinds: &[Kind]) -> Option<Self> {
        let (tenant, rest) = partition.strip_prefix("T#")?.split_once('#')?;
        let (name, id) = rest.split_once('#')?;
        let kind = *kinds.iter().find(|k| k.name == name)?;
        let key = Self::new(kind, TenantId::parse(tenant)?, Id::parse(kind.ids, id)?).ok()?;
        (key.partition() == partition).then_some(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.partition())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: Kind = Kind::new("RUN", IdType::Counter);
    const TENANT_RUN: Kind = Kind::new("TRUN", IdType::Uuid);

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn given_a_kind_then_only_keys_of_its_id_type_are_made() {
        let uuid = Id::Uuid(uuid::Uuid::new_v4());
        assert!(Key::new(RUN, tenant("a"), Id::Int(1)).is_ok());
        assert!(Key::new(RUN, tenant("a"), uuid.clone()).is_err(), "wrong id type");
        assert!(Key::new(TENANT_RUN, tenant("a"), Id::Int(1)).is_err());
        assert!(Key::new(TENANT_RUN, tenant("a"), uuid).is_ok());
    }

    #[test]
    fn given_keys_then_partitions_carry_the_tenant_and_parse_back() {
        let id = Id::Uuid(uuid::Uuid::new_v4());
        let a = Key::new(TENANT_RUN, tenant("a"), id.clone()).unwrap();
        let b = Key::new(TENANT_RUN, tenant("b"), id.clone()).unwrap();
        assert_ne!(a.partition(), b.partition(), "the same id in two tenants is two items");
        assert!(a.partition().starts_with("T#a#TRUN#"));
        let kinds = [RUN, TENANT_RUN];
        assert_eq!(Key::parse(&a.partition(), &kinds), Some(a));
        let run = Key::new(RUN, tenant("acme"), Id::Int(42)).unwrap();
        assert_eq!(run.partition(), "T#acme#RUN#42");
        assert_eq!(Key::parse("T#acme#RUN#42", &kinds), Some(run));
        let unhyphenated = format!("T#a#TRUN#{}", uuid::Uuid::new_v4().simple());
        for bad in [
            "RUN#42",
            "T#a#RUN#x",
            "T#a#RUN#+4",
            "T#a#RUN#007",
            "T#a#NOPE#1",
            "T#a#TRUN#1",
            "T#a b#RUN#1",
            "T##RUN#1",
            "",
        ]
        .into_iter()
        .chain([unhyphenated.as_str()])
        {
            assert_eq!(Key::parse(bad, &kinds), None, "{bad}");
        }
    }

    #[test]
    fn tenant_ids_cannot_carry_key_separators() {
        for bad in ["", "a#b", "a b", "ä", ".", "..", "-a", "_", &"x".repeat(65)] {
            assert_eq!(TenantId::parse(bad), None, "{bad}");
        }
        assert!(TenantId::parse("acme-eu_1.prod").is_some());
    }

    #[test]
    fn integer_sort_keys_order_as_numbers() {
        assert!(Id::Int(9).sort_key() < Id::Int(10).sort_key());
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    const KINDS: [Kind; 2] = [Kind::new("BILL", IdType::Counter), Kind::new("BILL_RUN", IdType::Uuid)];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every key parses back to itself, and two keys of different tenants never share a
        /// partition or a prefix, whatever the tenant ids and ids are.
        #[test]
        fn keys_of_two_tenants_never_meet(
            a in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            b in "[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            id in any::<u64>(),
            uuid in any::<u128>(),
            kind in 0..2usize,
        ) {
            let (a, b) = (TenantId::parse(&a).unwrap(), TenantId::parse(&b).unwrap());
            let id = if kind == 0 { Id::Int(id) } else { Id::Uuid(uuid::Uuid::from_u128(uuid)) };
            let key = Key::new(KINDS[kind], a.clone(), id.clone()).unwrap();
            prop_assert_eq!(Key::parse(&key.partition(), &KINDS), Some(key.clone()));
            if a != b {
                let other = Key::new(KINDS[kind], b.clone(), id).unwrap();
                prop_assert_ne!(key.partition(), other.partition());
                prop_assert!(!key.partition().starts_with(&b.prefix()));
            }
        }

        /// A path id of any text, integers at and past the extremes of u64 included, parses to an
        /// id of the kind's type or is refused, and never panics.
        #[test]
        fn path_ids_parse_or_refuse(
            text in prop_oneof![".{0,40}", "-?[0-9]{1,25}", any::<u64>().prop_map(|n| n.to_string()),
                proptest::sample::select(vec![u64::MAX.to_string(), "18446744073709551616".into(), "-0".into(), "+1".into()])],
        ) {
            if let Some(Id::Int(n)) = Id::parse(IdType::Counter, &text) {
                prop_assert!(text.bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(text.trim_start_matches('0').parse::<u64>().unwrap_or(0), n);
            }
            if let Some(Id::Uuid(u)) = Id::parse(IdType::Uuid, &text) {
                prop_assert_eq!(uuid::Uuid::try_parse(&text).ok(), Some(u));
            }
        }

        /// Any text either is a tenant id that cannot carry a separator, or is refused.
        #[test]
        fn tenant_ids_parse_or_refuse_without_panicking(text in ".{0,80}") {
            if let Some(tenant) = TenantId::parse(&text) {
                prop_assert!(!tenant.as_str().contains('#') && !tenant.as_str().is_empty());
            }
        }
    }
}
