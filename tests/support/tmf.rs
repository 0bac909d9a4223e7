//! Conformance checks against the official TMF678 v4 schemas (`shared/reference/`, with the one
//! documented extension): a response must validate against its definition, and declare no
//! attribute the definition does not (the TMF schemas allow extra properties, so that check is
//! what holds field names and nesting to the standard).

use serde_json::Value;

/// The TMF678 schemas: those of the OpenAPI document, converted from the official definitions.
fn schemas() -> &'static Value {
    &shared::openapi::document()["components"]["schemas"]
}

/// The schema a `$ref` names, or the schema itself.
fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => resolve(&schemas()[name]),
        None => schema,
    }
}

/// Attributes `value` carries that `schema` does not declare, by JSON Pointer.
fn undeclared(schema: &Value, value: &Value, pointer: &str, found: &mut Vec<String>) {
    let schema = resolve(schema);
    match value {
        Value::Object(map) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
            for (name, item) in map {
                match properties.get(name) {
                    Some(inner) => undeclared(inner, item, &format!("{pointer}/{name}"), found),
                    None => found.push(format!("{pointer}/{name}")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(inner) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    undeclared(inner, item, &format!("{pointer}/{i}"), found);
                }
            }
        }
        _ => {}
    }
}

/// Asserts that `value` is a valid TMF678 `definition` (e.g. `CustomerBill`, `Error`) with no
/// attribute the standard does not define.
pub fn assert_tmf(definition: &str, value: &Value) {
    assert!(schemas().get(definition).is_some(), "TMF678 has no definition {definition}");
    let validator = crate::openapi::validator(&format!("/components/schemas/{definition}")).unwrap();
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "not a valid TMF678 {definition}: {errors:?}\n{value:#}");
    let mut found = Vec::new();
    undeclared(&schemas()[definition], value, "", &mut found);
    assert!(found.is_empty(), "attributes TMF678 {definition} does not define: {found:?}\n{value:#}");
}

/// Asserts that a list body is an array of valid `definition`s.
pub fn assert_tmf_list(definition: &str, value: &Value) {
    let items = value.as_array().unwrap_or_else(|| panic!("a TMF list is a JSON array: {value}"));
    for item in items {
        assert_tmf(definition, item);
    }
}
