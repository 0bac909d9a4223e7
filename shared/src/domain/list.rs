//! List queries: `page`, `pageSize`, `sort`, `fields` and filters, parsed and applied as pure
//! functions so that both stores order, filter and page identically.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::DomainError;

/// A filter parameter: its name, the JSON Pointer of the value it matches, and the check each
/// of its values must pass.
#[derive(Debug)]
pub struct FilterField {
    pub name: &'static str,
    pub pointer: &'static str,
    pub valid: fn(&str) -> bool,
}

pub const fn filter(name: &'static str, pointer: &'static str, valid: fn(&str) -> bool) -> FilterField {
    FilterField { name, pointer, valid }
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
                        if let Some(bad) = values.iter().find(|v| !(f.valid)(v)) {
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

    /// The default order (id ascending) with no filter: served straight from the index.
    pub fn is_plain(&self) -> bool {
        self.filters.is_empty()
            && self.hide_flagged.is_none()
            && self.sort.iter().all(|k| k.field == "id" && !k.descending)
    }

    /// Index of the page's first item in the full ordered list.
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.page_size
    }

    pub fn matches(&self, item: &Value) -> bool {
        if self.hide_flagged.as_ref().is_some_and(|p| item.pointer(p) == Some(&Value::Bool(true))) {
            return false;
        }
        self.filters.iter().all(|f| {
            let actual = match item.pointer(&f.pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => return false,
                Some(other) => other.to_string(),
            };
            f.any_of.contains(&actual)
        })
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
            filter("status", "/status", |v| ["OPEN", "CLOSED"].contains(&v)),
            filter("cycle", "/cycle", |v| v.parse::<u64>().is_ok()),
            filter("owner", "/owner/id", |v| v.parse::<u64>().is_ok()),
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
        assert!(!q.is_plain());
        assert!(parse(&[("sort", "id"), ("includeArchived", "true")]).unwrap().is_plain());
        assert!(!parse(&[("sort", "id")]).unwrap().is_plain(), "hiding archived items is a filter");
        let q = parse(&[("fields", "name")]).unwrap();
        assert_eq!(q.project(items[0].clone()), json!({"id": 1, "name": "b"}));
        let q = parse(&[("owner", "8")]).unwrap();
        assert_eq!(ids(&q), vec![5], "filters reach nested fields");
        let q = parse(&[("cycle", "3"), ("includeArchived", "true")]).unwrap();
        assert_eq!(ids(&q), vec![5, 6], "archived items only when asked for");
        assert!(parse(&[("includeArchived", "yes")]).is_err());
    }
}
