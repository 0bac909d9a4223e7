//! List queries: `page`, `pageSize`, `sort`, `fields` and filters, parsed and applied as pure
//! functions so that both stores order, filter and page identically.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::DomainError;

/// A filter parameter: its name, the JSON Pointer of the value it matches, and the values it
/// takes (what the parser checks and the OpenAPI document states).
#[derive(Debug)]
pub struct FilterField {
    pub name: &'static str,
    pub pointer: &'static str,
    pub values: Values,
}

/// The values of a filter.
#[derive(Debug, Clone, Copy)]
pub enum Values {
    /// One of these names (an enum's).
    Names(fn() -> Vec<&'static str>),
    /// An integer id, 1 or more.
    PositiveIntegers,
}

impl Values {
    pub fn accepts(&self, value: &str) -> bool {
        match self {
            Self::Names(names) => names().contains(&value),
            Self::PositiveIntegers => is_positive_integer(value),
        }
    }

    /// The pattern of the parameter: one value, or `in:` and several, comma-separated.
    pub fn pattern(&self) -> String {
        let one = match self {
            Self::Names(names) => format!("({})", names().join("|")),
            Self::PositiveIntegers => "[1-9][0-9]{0,18}".to_owned(),
        };
        format!("^(in:)?{one}(,{one})*$")
    }
}

/// The serialized names of an enum's variants.
pub fn names<T: strum::VariantArray + Copy + Into<&'static str>>() -> Vec<&'static str> {
    T::VARIANTS.iter().map(|v| (*v).into()).collect()
}

/// A filter value that is an integer id (1 or more).
pub fn is_positive_integer(v: &str) -> bool {
    v.parse::<u64>().is_ok_and(|n| n > 0)
}

pub const fn filter(name: &'static str, pointer: &'static str, values: Values) -> FilterField {
    FilterField { name, pointer, values }
}

/// A comma-separated list of `names` as a pattern (`sort`'s `:asc`/`:desc` when `directed`).
pub fn list_pattern(names: &[&str], directed: bool) -> String {
    let one = format!("({}){}", names.join("|"), if directed { "(:(asc|desc))?" } else { "" });
    format!("^{one}(,{one})*$")
}

/// What a resource's list endpoint supports.
#[derive(Debug)]
pub struct ListSpec {
    pub sortable: &'static [&'static str],
    /// Filterable fields, each with the check its values must pass.
    pub filters: &'static [FilterField],
    /// Every top-level field of the resource (for `fields`).
    pub fields: &'static [&'static str],
    /// A boolean field that hides archived items unless `includeArchived=true`.
    pub archived: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// JSON Pointer of the value matched.
    pub pointer: String,
    pub any_of: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub page: u64,
    pub page_size: u64,
    pub sort: Vec<SortKey>,
    pub fields: Option<Vec<String>>,
    pub filters: Vec<Filter>,
    /// The pointer of a flag whose `true` hides an item (archived bills), unless asked for.
    pub hide_flagged: Option<String>,
}

pub const MAX_PAGE_SIZE: u64 = 1000;
/// The most items a list reads to sort or combine filters that no single index serves.
pub const MAX_BOUNDED_READ: u64 = 1000;
/// The group of the items an archived flag does not hide.
const VISIBLE: &str = "~visible";

/// An index partition a list reads: the kind's whole list, or one group slot's partition
/// (slot 0 the resource's own group, slot `i` the `i`-th filter of its [`ListSpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    All,
    Group(usize, String),
}

/// How a list is served (see [`ListQuery::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One partition, in id order: skip the offset's keys, read the page; its count is the total.
    Index { source: Source, descending: bool },
    /// Each choice is a union of partitions holding every match: the store reads the smallest
    /// whole when it holds at most [`MAX_BOUNDED_READ`] items, and refuses the query otherwise.
    Bounded { choices: Vec<Vec<Source>> },
}

fn visible_slot(spec: &ListSpec) -> usize {
    spec.filters.len() + 1
}

/// The group name of a filter's value (archived items apart when the kind hides them).
pub fn facet(name: &str, value: &str, archived: bool) -> String {
    format!("{name}={value}{}", if archived { "~archived" } else { "" })
}

/// The groups an item is in by `spec`, slot 1 onwards: one per filter (none when it has no value
/// there), then whether its archived flag hides it.
pub fn facets(spec: &ListSpec, item: &Value) -> Vec<Option<String>> {
    let archived = spec.archived.is_some_and(|field| item.get(field) == Some(&Value::Bool(true)));
    let mut groups: Vec<Option<String>> = spec
        .filters
        .iter()
        .map(|f| filter_value(item.pointer(f.pointer)).map(|v| facet(f.name, &v, archived)))
        .collect();
    if spec.archived.is_some() {
        groups.push((!archived).then(|| VISIBLE.to_owned()));
    }
    groups
}

/// The text a filter compares with an item's value (none for null or absent).
fn filter_value(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}
pub const DEFAULT_PAGE_SIZE: u64 = 100;

impl ListQuery {
    /// Parses the query string parameters (name, value) against `spec`. Unknown parameters are 400.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        spec: &ListSpec,
    ) -> Result<Self, DomainError> {
        let mut query = Self {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
            sort: Vec::new(),
            fields: None,
            filters: Vec::new(),
            hide_flagged: None,
        };
        let mut include_archived = false;
        for (name, value) in params {
            match name {
                "page" => query.page = bounded(value, "page", 1, u64::MAX / MAX_PAGE_SIZE)?,
                "pageSize" => query.page_size = bounded(value, "pageSize", 1, MAX_PAGE_SIZE)?,
                "sort" => query.sort = parse_sort(value, spec)?,
                "fields" => query.fields = Some(parse_fields(value, spec)?),
                "includeArchived" if spec.archived.is_some() => {
                    include_archived = match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(DomainError::field("/includeArchived", "must be true or false")),
                    }
                }
                _ => match spec.filters.iter().find(|f| f.name == name) {
                    Some(f) => {
                        let values: Vec<String> =
                            value.strip_prefix("in:").unwrap_or(value).split(',').map(str::to_owned).collect();
                        if let Some(bad) = values.iter().find(|v| !f.values.accepts(v)) {
                            return Err(DomainError::field(
                                format!("/{name}"),
                                format!("invalid filter value {bad:?}"),
                            ));
                        }
                        query.filters.push(Filter { pointer: f.pointer.to_owned(), any_of: values });
                    }
                    None => return Err(DomainError::field(format!("/{name}"), "unknown query parameter")),
                },
            }
        }
        if !include_archived {
            query.hide_flagged = spec.archived.map(|field| format!("/{field}"));
        }
        Ok(query)
    }

    /// How the store serves this query within its bound: one index partition in id order when
    /// that is all it asks for, else the union of the partitions of one of its filters (or the
    /// whole list), read whole when it holds at most [`MAX_BOUNDED_READ`] items.
    pub fn plan(&self, spec: &ListSpec) -> Plan {
        let base = match (spec.archived, &self.hide_flagged) {
            (Some(_), Some(_)) => Source::Group(visible_slot(spec), VISIBLE.to_owned()),
            _ => Source::All,
        };
        let by_filter: Vec<Vec<Source>> = self
            .filters
            .iter()
            .filter_map(|f| {
                let slot = spec.filters.iter().position(|s| s.pointer == f.pointer)? + 1;
                let name = &spec.filters[slot - 1].name;
                let archived: &[bool] = match (spec.archived, &self.hide_flagged) {
                    (Some(_), None) => &[false, true],
                    _ => &[false],
                };
                let parts =
                    f.any_of.iter().flat_map(|v| archived.iter().map(move |&a| Source::Group(slot, facet(name, v, a))));
                Some(parts.collect())
            })
            .collect();
        match (self.id_order(), by_filter.as_slice()) {
            (Some(descending), []) => Plan::Index { source: base, descending },
            (Some(descending), [parts]) if parts.len() == 1 => Plan::Index { source: parts[0].clone(), descending },
            _ => Plan::Bounded { choices: std::iter::once(vec![base]).chain(by_filter).collect() },
        }
    }

    /// Whether it lists in id order, and descending: what an index serves.
    fn id_order(&self) -> Option<bool> {
        match self.sort.as_slice() {
            [] => Some(false),
            [key] if key.field == "id" => Some(key.descending),
            _ => None,
        }
    }

    /// The 400 of a query that no index serves and whose narrowest choice holds `count` items,
    /// naming the parameter that takes it off the index.
    pub fn too_broad(&self, spec: &ListSpec, count: u64) -> DomainError {
        let name_of = |f: &Filter| spec.filters.iter().find(|s| s.pointer == f.pointer).map_or("sort", |s| s.name);
        let parameter = if self.id_order().is_none() {
            "sort"
        } else if let Some(f) = self.filters.iter().find(|f| f.any_of.len() > 1) {
            name_of(f)
        } else if let Some(f) = self.filters.get(1) {
            name_of(f)
        } else {
            "includeArchived"
        };
        let single: Vec<&str> = spec.filters.iter().map(|f| f.name).collect();
        DomainError::field(
            format!("/{parameter}"),
            format!(
                "this list would sort or combine {count} items, over the {MAX_BOUNDED_READ} a request reads: \
                 use the id order with at most one filter of one value ({}), or narrow it with a filter",
                single.join(", ")
            ),
        )
    }

    /// Index of the page's first item in the full ordered list.
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.page_size
    }

    pub fn matches(&self, item: &Value) -> bool {
        if self.hide_flagged.as_ref().is_some_and(|p| item.pointer(p) == Some(&Value::Bool(true))) {
            return false;
        }
        self.filters.iter().all(|f| filter_value(item.pointer(&f.pointer)).is_some_and(|v| f.any_of.contains(&v)))
    }

    /// Filters, sorts (ties by id) and cuts out the page. Returns the page and the match count.
    pub fn apply(&self, items: Vec<Value>) -> (Vec<Value>, u64) {
        let mut items: Vec<Value> = items.into_iter().filter(|i| self.matches(i)).collect();
        let total = items.len() as u64;
        items.sort_by(|a, b| self.compare(a, b));
        let page = items
            .into_iter()
            .skip(usize::try_from(self.offset()).unwrap_or(usize::MAX))
            .take(usize::try_from(self.page_size).unwrap_or(usize::MAX))
            .collect();
        (page, total)
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        for key in &self.sort {
            let ord = compare_values(a.get(&key.field), b.get(&key.field));
            let ord = if key.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        compare_values(a.get("id"), b.get("id"))
    }

    /// Keeps only the asked-for fields (id always included).
    pub fn project(&self, item: Value) -> Value {
        match (&self.fields, item) {
            (Some(fields), Value::Object(map)) => {
                let kept: Map<String, Value> =
                    map.into_iter().filter(|(k, _)| k == "id" || fields.iter().any(|f| f == k)).collect();
                Value::Object(kept)
            }
            (_, item) => item,
        }
    }
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            x.as_f64().unwrap_or_default().partial_cmp(&y.as_f64().unwrap_or_default()).unwrap_or(Ordering::Equal)
        }
        // Names sort as people read them (as `sortableName` does): case-insensitively, then exactly.
        (Some(Value::String(x)), Some(Value::String(y))) => {
            x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y))
        }
        (Some(Value::Null) | None, Some(Value::Null) | None) => Ordering::Equal,
        (Some(Value::Null) | None, _) => Ordering::Less,
        (_, Some(Value::Null) | None) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

fn bounded(value: &str, name: &str, min: u64, max: u64) -> Result<u64, DomainError> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(DomainError::field(format!("/{name}"), format!("{name} must be an integer from {min} to {max}"))),
    }
}

fn parse_sort(value: &str, spec: &ListSpec) -> Result<Vec<SortKey>, DomainError> {
    value
        .split(',')
        .map(|part| {
            let (field, descending) = match part.split_once(':') {
                None => (part, false),
                Some((field, "asc")) => (field, false),
                Some((field, "desc")) => (field, true),
                Some(_) => {
                    return Err(DomainError::field(
                        "/sort",
                        format!("bad sort direction in {part:?}: use :asc or :desc"),
                    ))
                }
            };
            if spec.sortable.contains(&field) {
                Ok(SortKey { field: field.to_owned(), descending })
            } else {
                Err(DomainError::field(
                    "/sort",
                    format!("cannot sort by {field:?}; sortable: {}", spec.sortable.join(", ")),
                ))
            }
        })
        .collect()
}

fn parse_fields(value: &str, spec: &ListSpec) -> Result<Vec<String>, DomainError> {
    value
        .split(',')
        .map(|field| {
            if spec.fields.contains(&field) {
                Ok(field.to_owned())
            } else {
                Err(DomainError::field("/fields", format!("unknown field {field:?}")))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: ListSpec = ListSpec {
        sortable: &["id", "name"],
        filters: &[
            filter("status", "/status", Values::Names(|| vec!["OPEN", "CLOSED"])),
            filter("cycle", "/cycle", Values::PositiveIntegers),
            filter("owner", "/owner/id", Values::PositiveIntegers),
        ],
        fields: &["id", "name", "status", "cycle"],
        archived: Some("gone"),
    };

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, DomainError> {
        ListQuery::parse(pairs.iter().copied(), &SPEC)
    }

    #[test]
    fn given_bad_parameters_then_400_names_them() {
        for (pairs, pointer) in [
            (vec![("page", "0")], "/page"),
            (vec![("page", "x")], "/page"),
            (vec![("pageSize", "1001")], "/pageSize"),
            (vec![("pageSize", "0")], "/pageSize"),
            (vec![("sort", "colour")], "/sort"),
            (vec![("sort", "name:sideways")], "/sort"),
            (vec![("fields", "name,colour")], "/fields"),
            (vec![("status", "in:OPEN,LOST")], "/status"),
            (vec![("bogus", "1")], "/bogus"),
        ] {
            match parse(&pairs) {
                Err(DomainError::Invalid { errors, .. }) => {
                    assert_eq!(errors[0].pointer, pointer, "{pairs:?}")
                }
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
    }

    fn plan(pairs: &[(&str, &str)]) -> Plan {
        parse(pairs).unwrap().plan(&SPEC)
    }

    #[test]
    fn given_the_id_order_and_at_most_one_value_then_one_index_partition_serves_it() {
        let index =
            |slot: usize, name: &str, descending| Plan::Index { source: Source::Group(slot, name.into()), descending };
        assert_eq!(plan(&[("includeArchived", "true")]), Plan::Index { source: Source::All, descending: false });
        assert_eq!(plan(&[]), index(4, "~visible", false), "archived items hidden: the visible group");
        assert_eq!(plan(&[("status", "OPEN")]), index(1, "status=OPEN", false));
        assert_eq!(plan(&[("owner", "8"), ("sort", "id:desc")]), index(3, "owner=8", true));
        assert_eq!(plan(&[("cycle", "in:2")]), index(2, "cycle=2", false));
    }

    #[test]
    fn given_other_orders_or_combinations_then_the_choices_hold_every_match() {
        let group = |slot: usize, name: &str| Source::Group(slot, name.into());
        let visible = || vec![group(4, "~visible")];
        let bounded = |choices: Vec<Vec<Source>>| Plan::Bounded { choices };
        assert_eq!(plan(&[("sort", "name")]), bounded(vec![visible()]));
        assert_eq!(
            plan(&[("status", "in:OPEN,CLOSED")]),
            bounded(vec![visible(), vec![group(1, "status=OPEN"), group(1, "status=CLOSED")]])
        );
        assert_eq!(
            plan(&[("status", "OPEN"), ("cycle", "2")]),
            bounded(vec![visible(), vec![group(1, "status=OPEN")], vec![group(2, "cycle=2")]])
        );
        assert_eq!(
            plan(&[("status", "OPEN"), ("includeArchived", "true")]),
            bounded(vec![vec![Source::All], vec![group(1, "status=OPEN"), group(1, "status=OPEN~archived")]]),
            "archived items are in groups of their own"
        );
        let refused = |pairs: &[(&str, &str)]| match parse(pairs).unwrap().too_broad(&SPEC, 5000) {
            DomainError::Invalid { errors, .. } => errors[0].pointer.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(&[("sort", "name")]), "/sort");
        assert_eq!(refused(&[("status", "in:OPEN,CLOSED")]), "/status");
        assert_eq!(refused(&[("status", "OPEN"), ("cycle", "2")]), "/cycle");
        assert_eq!(refused(&[("status", "OPEN"), ("includeArchived", "true")]), "/includeArchived");
    }

    #[test]
    fn given_an_item_then_its_facets_are_its_filter_values_and_visibility() {
        let open = json!({"id": 1, "status": "OPEN", "cycle": 2, "owner": {"id": 8}});
        let f = |s: &str| Some(s.to_owned());
        assert_eq!(facets(&SPEC, &open), vec![f("status=OPEN"), f("cycle=2"), f("owner=8"), f("~visible")]);
        let gone = json!({"id": 2, "status": "OPEN", "gone": true});
        assert_eq!(facets(&SPEC, &gone), vec![f("status=OPEN~archived"), None, None, None]);
    }

    #[test]
    fn given_items_then_filters_sort_and_pages_apply() {
        let items = vec![
            json!({"id": 1, "name": "b", "status": "OPEN", "cycle": 1}),
            json!({"id": 2, "name": "a", "status": "CLOSED", "cycle": 2}),
            json!({"id": 3, "name": "c", "status": "OPEN", "cycle": 2}),
            json!({"id": 4, "name": "a", "status": "OPEN", "cycle": 1}),
            json!({"id": 5, "name": "B", "status": "CLOSED", "cycle": 3, "owner": {"id": 8}}),
            json!({"id": 6, "name": "hidden", "status": "OPEN", "cycle": 3, "gone": true}),
        ];
        let ids = |q: &ListQuery| -> Vec<u64> {
            q.apply(items.clone()).0.iter().map(|i| i["id"].as_u64().unwrap()).collect()
        };
        let q = parse(&[("sort", "name:desc,id")]).unwrap();
        assert_eq!(ids(&q), vec![3, 1, 5, 2, 4]);
        let q = parse(&[("sort", "name,id:desc")]).unwrap();
        assert_eq!(ids(&q), vec![4, 2, 5, 1, 3], "case-insensitive: a, a, B, b, c");
        let q = parse(&[("status", "OPEN"), ("pageSize", "2"), ("page", "2")]).unwrap();
        assert_eq!(ids(&q), vec![4]);
        assert_eq!(q.apply(items.clone()).1, 3);
        let q = parse(&[("cycle", "in:2,3")]).unwrap();
        assert_eq!(ids(&q), vec![2, 3, 5]);
        let q = parse(&[("fields", "name")]).unwrap();
        assert_eq!(q.project(items[0].clone()), json!({"id": 1, "name": "b"}));
        let q = parse(&[("owner", "8")]).unwrap();
        assert_eq!(ids(&q), vec![5], "filters reach nested fields");
        let q = parse(&[("cycle", "3"), ("includeArchived", "true")]).unwrap();
        assert_eq!(ids(&q), vec![5, 6], "archived items only when asked for");
        assert!(parse(&[("includeArchived", "yes")]).is_err());
    }
}
