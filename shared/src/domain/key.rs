//! Keys that say what they are. A kind of resource declares its id type (an integer from a
//! counter, or a UUID) and its scope (global, or one tenant's); a [`Key`] can only be made with an
//! id of the kind's type and a scope of the kind's scoping, so a tenant can never be left out of a
//! key by mistake. The store builds every item key and index partition from these.

use std::fmt;

/// How a kind's ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdType {
    /// 1, 2, 3, ... from an atomic per-kind counter.
    Counter,
    /// A random UUID made by the server.
    Uuid,
}

/// Where a kind's items live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scoping {
    Global,
    Tenant,
}

/// A kind of stored resource: its name in keys, its id type and its scoping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind {
    pub name: &'static str,
    pub ids: IdType,
    pub scoping: Scoping,
}

impl Kind {
    pub const fn new(name: &'static str, ids: IdType, scoping: Scoping) -> Self {
        Self { name, ids, scoping }
    }
}

/// The scope of an item: global, or one tenant's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Tenant(TenantId),
}

impl Scope {
    /// The prefix every key and partition of this scope starts with (empty for global items).
    pub fn prefix(&self) -> String {
        match self {
            Self::Global => String::new(),
            Self::Tenant(t) => format!("T#{}#", t.0),
        }
    }

    fn scoping(&self) -> Scoping {
        match self {
            Self::Global => Scoping::Global,
            Self::Tenant(_) => Scoping::Tenant,
        }
    }
}

/// A tenant id: 1 to 64 characters of letters, digits and `-_.` (so it can never forge a key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(text: &str) -> Option<Self> {
        let valid = (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        valid.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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

/// A key that does not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} key needs a {expected}")]
pub struct KeyError {
    pub kind: &'static str,
    pub expected: &'static str,
}

/// The full address of one item: kind, scope and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    kind: Kind,
    scope: Scope,
    id: Id,
}

impl Key {
    /// A key, refused when the id's type or the scope does not fit the kind.
    pub fn new(kind: Kind, scope: Scope, id: Id) -> Result<Self, KeyError> {
        if id.id_type() != kind.ids {
            let expected = if kind.ids == IdType::Counter { "integer id" } else { "UUID id" };
            return Err(KeyError { kind: kind.name, expected });
        }
        if scope.scoping() != kind.scoping {
            let expected = if kind.scoping == Scoping::Global { "global scope" } else { "tenant scope" };
            return Err(KeyError { kind: kind.name, expected });
        }
        Ok(Self { kind, scope, id })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn id(&self) -> &Id {
        &self.id
    }

    /// The item's partition key: `[T#<tenant>#]<KIND>#<id>`.
    pub fn partition(&self) -> String {
        format!("{}{}#{}", self.scope.prefix(), self.kind.name, self.id)
    }

    /// Parses a partition key back, for a kind among `kinds` (a stream record names its item so).
    pub fn parse(partition: &str, kinds: &[Kind]) -> Option<Self> {
        let (scope, rest) = match partition.strip_prefix("T#") {
            Some(rest) => {
                let (tenant, rest) = rest.split_once('#')?;
                (Scope::Tenant(TenantId::parse(tenant)?), rest)
            }
            None => (Scope::Global, partition),
        };
        let (name, id) = rest.split_once('#')?;
        let kind = *kinds.iter().find(|k| k.name == name)?;
        Self::new(kind, scope, Id::parse(kind.ids, id)?).ok()
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

    const RUN: Kind = Kind::new("RUN", IdType::Counter, Scoping::Global);
    const TENANT_RUN: Kind = Kind::new("TRUN", IdType::Uuid, Scoping::Tenant);

    fn tenant(name: &str) -> Scope {
        Scope::Tenant(TenantId::parse(name).unwrap())
    }

    #[test]
    fn given_a_kind_then_only_keys_of_its_id_type_and_scope_are_made() {
        let uuid = Id::Uuid(uuid::Uuid::new_v4());
        assert!(Key::new(RUN, Scope::Global, Id::Int(1)).is_ok());
        assert!(Key::new(RUN, Scope::Global, uuid.clone()).is_err(), "wrong id type");
        assert!(Key::new(RUN, tenant("a"), Id::Int(1)).is_err(), "a global kind has no tenant");
        assert!(Key::new(TENANT_RUN, Scope::Global, uuid.clone()).is_err(), "a tenant kind needs its tenant");
        assert!(Key::new(TENANT_RUN, tenant("a"), Id::Int(1)).is_err());
        assert!(Key::new(TENANT_RUN, tenant("a"), uuid).is_ok());
    }

    #[test]
    fn given_keys_then_partitions_carry_the_scope_and_parse_back() {
        let id = Id::Uuid(uuid::Uuid::new_v4());
        let a = Key::new(TENANT_RUN, tenant("a"), id.clone()).unwrap();
        let b = Key::new(TENANT_RUN, tenant("b"), id.clone()).unwrap();
        assert_ne!(a.partition(), b.partition(), "the same id in two tenants is two items");
        assert!(a.partition().starts_with("T#a#TRUN#"));
        let kinds = [RUN, TENANT_RUN];
        assert_eq!(Key::parse(&a.partition(), &kinds), Some(a));
        let run = Key::new(RUN, Scope::Global, Id::Int(42)).unwrap();
        assert_eq!(run.partition(), "RUN#42");
        assert_eq!(Key::parse("RUN#42", &kinds), Some(run));
        for bad in ["RUN#x", "RUN#+4", "NOPE#1", "T#a#RUN#1", "TRUN#1", "COUNTER#RUN", "T#a b#TRUN#1", ""] {
            assert_eq!(Key::parse(bad, &kinds), None, "{bad}");
        }
    }

    #[test]
    fn tenant_ids_cannot_carry_key_separators() {
        for bad in ["", "a#b", "a b", "ä", &"x".repeat(65)] {
            assert_eq!(TenantId::parse(bad), None, "{bad}");
        }
        assert!(TenantId::parse("acme-eu_1.prod").is_some());
    }

    #[test]
    fn integer_sort_keys_order_as_numbers() {
        assert!(Id::Int(9).sort_key() < Id::Int(10).sort_key());
    }
}
