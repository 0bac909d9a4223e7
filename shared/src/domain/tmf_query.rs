//! TMF630 list conventions for the TMF678 family: `offset`/`limit`, `fields` selection, and
//! equality filters on top-level and dotted attributes (`state=onHold`, `billingAccount.id=A1`,
//! several values comma-separated meaning "any of"). Attributes are checked against the
//! resource's TMF schema ([`Shape`]): an unknown one is 400. Pure: the edge reads the matching
//! items and this filters, pages and projects them.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::list::{Source, MAX_BOUNDED_READ};
use super::money::from_number;
use super::DomainError;

/// The attributes of a TMF schema, as far as filters can reach.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Leaf,
    Object(&'static [(&'static str, Shape)]),
}

pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;
/// Values one filter may list.
pub const MAX_VALUES: usize = 100;

/// Always returned, whatever `fields` asks for.
const ALWAYS: &[&str] = &["id", "href", "@type"];

/// How a TMF list is served (see [`TmfQuery::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TmfPlan {
    /// These ids, each read by key, then filtered.
    Ids(Vec<String>),
    /// One index partition, newest first: skip the offset, read the page; its count is the total.
    Index(Source),
    /// These partitions read whole (at most [`MAX_BOUNDED_READ`] items), filtered and paged.
    Bounded(Vec<Source>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeFilter {
    /// The dotted attribute, as sent (`billingAccount.id`).
    pub name: String,
    pub any_of: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmfQuery {
    pub offset: usize,
    pub limit: usize,
    pub fields: Option<Vec<String>>,
    pub filters: Vec<AttributeFilter>,
}

fn attribute(shape: &'static [(&'static str, Shape)], name: &str) -> Option<&'static Shape> {
    shape.iter().find(|(n, _)| *n == name).map(|(_, s)| s)
}

/// Whether a dotted path names an attribute of `shape`.
fn known(shape: &'static [(&'static str, Shape)], path: &str) -> bool {
    let mut at = shape;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        match (attribute(at, part), parts.peek()) {
            (Some(_), None) => return true,
            (Some(Shape::Object(inner)), Some(_)) => at = inner,
            _ => return false,
        }
    }
    false
}

impl TmfQuery {
    /// Parses the query string against the resource's `shape`; anything unknown or out of range is
    /// 400 naming the parameter.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        shape: &'static [(&'static str, Shape)],
    ) -> Result<Self, DomainError> {
        let mut query = Self { offset: 0, limit: DEFAULT_LIMIT, fields: None, filters: Vec::new() };
        for (name, value) in params {
            match name {
                "offset" => {
                    query.offset = value
                        .parse::<u32>()
                        .map_err(|_| DomainError::field("/offset", "must be an integer from 0 to 4294967295"))?
                        as usize
                }
                "limit" => {
                    query.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| DomainError::field("/limit", "must be an integer from 1 to 1000"))?
                }
                "fields" => {
                    let fields = value
                        .split(',')
                        .map(|field| match attribute(shape, field) {
                            Some(_) => Ok(field.to_owned()),
                            None => Err(DomainError::field("/fields", format!("{field:?} is not an attribute"))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    query.fields = Some(fields);
                }
                _ if known(shape, name) => {
                    let any_of: Vec<String> = value.split(',').map(str::to_owned).collect();
                    if any_of.len() > MAX_VALUES {
                        return Err(DomainError::field(format!("/{name}"), format!("at most {MAX_VALUES} values")));
                    }
                    query.filters.push(AttributeFilter { name: name.to_owned(), any_of });
                }
                _ => {
                    return Err(DomainError::field(format!("/{name}"), "is not an attribute or parameter of this list"))
                }
            }
        }
        Ok(query)
    }

    /// The values a filter on `name` accepts, when there is one (the first, if repeated).
    pub fn filter(&self, name: &str) -> Option<&[String]> {
        self.filters.iter().find(|f| f.name == name).map(|f| f.any_of.as_slice())
    }

    /// How the list is served within its bound: by `id` (at most [`MAX_VALUES`] reads), by one
    /// `billingAccount.id` alone from that account's index partition (`account` names it), and
    /// any other filter from the partitions its `billingAccount.id` values (or the whole list)
    /// name, read whole when they hold at most [`MAX_BOUNDED_READ`] items.
    pub fn plan(&self, account: fn(&str) -> Source) -> TmfPlan {
        let distinct = |values: &[String]| {
            let mut values = values.to_vec();
            values.sort();
            values.dedup();
            values
        };
        if let Some(ids) = self.filter("id") {
            return TmfPlan::Ids(distinct(ids));
        }
        let sources: Vec<Source> = match self.filter("billingAccount.id") {
            Some(accounts) => distinct(accounts).iter().map(|a| account(a)).collect(),
            None => vec![Source::All],
        };
        let by_account_alone = self.filters.iter().all(|f| f.name == "billingAccount.id");
        match sources.as_slice() {
            [one] if by_account_alone => TmfPlan::Index(one.clone()),
            _ => TmfPlan::Bounded(sources),
        }
    }

    /// The 400 of a bounded list whose partitions hold `count` items, naming the filter that
    /// takes it off the index.
    pub fn too_broad(&self, count: u64) -> DomainError {
        let name = self
            .filters
            .iter()
            .find(|f| f.name != "billingAccount.id")
            .map_or("billingAccount.id", |f| f.name.as_str());
        DomainError::field(
            format!("/{name}"),
            format!(
                "this filter would be checked on {count} items, over the {MAX_BOUNDED_READ} a request reads: \
                 filter by id, or by one billingAccount.id (alone or with other filters) as well"
            ),
        )
    }

    /// Whether an item passes every filter.
    pub fn matches(&self, item: &Value) -> bool {
        self.filters.iter().all(|f| {
            let path: Vec<&str> = f.name.split('.').collect();
            f.any_of.iter().any(|wanted| reaches(item, &path, wanted))
        })
    }

    /// The item with only the asked-for first-level attributes, and `id`, `href` and `@type`.
    pub fn project(&self, item: Value) -> Value {
        match (&self.fields, item) {
            (Some(fields), Value::Object(map)) => {
                let kept: Map<String, Value> = map
                    .into_iter()
                    .filter(|(k, _)| ALWAYS.contains(&k.as_str()) || fields.iter().any(|f| f == k))
                    .collect();
                Value::Object(kept)
            }
            (_, item) => item,
        }
    }
}

/// Whether the value at `path` (through objects, and any element of an array) equals `wanted`:
/// text as is, booleans as `true`/`false`, numbers as numbers (`10.5` finds `10.50`).
fn reaches(value: &Value, path: &[&str], wanted: &str) -> bool {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().any(|item| reaches(item, path, wanted)),
        (Value::Object(map), Some((first, rest))) => map.get(*first).is_some_and(|v| reaches(v, rest, wanted)),
        (Value::String(text), None) => text == wanted,
        (Value::Bool(flag), None) => wanted == if *flag { "true" } else { "false" },
        (Value::Number(number), None) => {
            let wanted = wanted.parse::<Decimal>().ok();
            wanted.is_some() && from_number(number) == wanted
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MONEY: Shape = Shape::Object(&[("unit", Shape::Leaf), ("value", Shape::Leaf)]);
    const SHAPE: &[(&str, Shape)] = &[
        ("id", Shape::Leaf),
        ("href", Shape::Leaf),
        ("@type", Shape::Leaf),
        ("state", Shape::Leaf),
        ("isBilled", Shape::Leaf),
        ("amount", MONEY),
        ("account", Shape::Object(&[("id", Shape::Leaf), ("name", Shape::Leaf)])),
        ("taxes", Shape::Object(&[("rate", Shape::Leaf), ("amount", MONEY)])),
    ];

    fn parse(pairs: &[(&str, &str)]) -> Result<TmfQuery, DomainError> {
        TmfQuery::parse(pairs.iter().copied(), SHAPE)
    }

    #[test]
    fn given_bad_parameters_then_400_names_them() {
        for (pairs, pointer) in [
            (vec![("limit", "0")], "/limit"),
            (vec![("limit", "1001")], "/limit"),
            (vec![("limit", "x")], "/limit"),
            (vec![("offset", "-1")], "/offset"),
            (vec![("fields", "state,colour")], "/fields"),
            (vec![("fields", "account.id")], "/fields"),
            (vec![("colour", "red")], "/colour"),
            (vec![("account.colour", "red")], "/account.colour"),
            (vec![("state.id", "x")], "/state.id"),
            (vec![("account.", "x")], "/account."),
        ] {
            match parse(&pairs) {
                Err(DomainError::Invalid { errors, .. }) => assert_eq!(errors[0].pointer, pointer, "{pairs:?}"),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
        let many = vec!["x"; MAX_VALUES + 1].join(",");
        assert!(parse(&[("state", &many)]).is_err());
    }

    #[test]
    fn given_items_then_filters_match_by_equality_through_objects_and_arrays() {
        let item = json!({
            "id": "1", "href": "/x/1", "@type": "T", "state": "onHold", "isBilled": false,
            "amount": {"unit": "EUR", "value": 10.50},
            "account": {"id": "A1", "name": "Acme"},
            "taxes": [{"rate": 0.2, "amount": {"unit": "EUR", "value": 2}}, {"rate": 0.05}],
        });
        let hit = |pairs: &[(&str, &str)]| parse(pairs).unwrap().matches(&item);
        assert!(hit(&[("state", "onHold")]));
        assert!(hit(&[("state", "new,onHold")]), "comma-separated values: any of");
        assert!(!hit(&[("state", "OnHold")]), "equality is exact");
        assert!(hit(&[("isBilled", "false")]));
        assert!(!hit(&[("isBilled", "true")]));
        assert!(hit(&[("amount.value", "10.5")]), "numbers compare as numbers");
        assert!(hit(&[("account.id", "A1"), ("state", "onHold")]));
        assert!(!hit(&[("account.id", "A1"), ("state", "new")]), "every filter must pass");
        assert!(hit(&[("taxes.rate", "0.05")]), "any element of an array");
        assert!(hit(&[("taxes.amount.value", "2.00")]));
        assert!(!hit(&[("account", "A1")]), "an object is not a value");
    }

    #[test]
    fn given_fields_then_id_href_and_type_are_always_kept() {
        let item = json!({"id": "1", "href": "/x/1", "@type": "T", "state": "new", "amount": {"unit": "EUR"}});
        assert_eq!(
            parse(&[("fields", "state")]).unwrap().project(item.clone()),
            json!({"id": "1", "href": "/x/1", "@type": "T", "state": "new"})
        );
        assert_eq!(
            parse(&[("fields", "id")]).unwrap().project(item.clone()),
            json!({"id": "1", "href": "/x/1", "@type": "T"})
        );
        assert_eq!(parse(&[]).unwrap().project(item.clone()), item);
    }
}
