//! Conformance checks against the official TMF678 v4 schemas (`shared/reference/`, with the one
//! documented extension): a response must validate against its definition, and declare no
//! attribute the definition does not (the TMF schemas allow extra properties, so that check is
//! what holds field names and nesting to the standard).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| serde_json::from_str(shared::openapi::TMF678_REFERENCE).expect("the TMF678 document is JSON"))
}

fn validator(definition: &str) -> Arc<jsonschema::Validator> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let mut validators = VALIDATORS.get_or_init(Default::default).lock().expect("validators");
    validators
        .entry(definition.to_owned())
        .or_insert_with(|| {
            let definitions = &document()["definitions"];
            assert!(definitions.get(definition).is_some(), "TMF678 has no definition {definition}");
            let schema =
                json!({"definitions": definitions, "allOf": [{"$ref": format!("#/definitions/{definition}")}]});
            Arc::new(jsonschema::draft4::new(&schema).expect("the TMF678 definitions compile"))
        })
        .clone()
}

/// The schema a `$ref` names, or the schema itself.
fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/definitions/")) {
        Some(name) => resolve(&document()["definitions"][name]),
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
    let validator = validator(definition);
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "not a valid TMF678 {definition}: {errors:?}\n{value:#}");
    let mut found = Vec::new();
    undeclared(&document()["definitions"][definition], value, "", &mut found);
    assert!(found.is_empty(), "attributes TMF678 {definition} does not define: {found:?}\n{value:#}");
}

/// Asserts that a list body is an array of valid `definition`s.
pub fn assert_tmf_list(definition: &str, value: &Value) {
    let items = value.as_array().unwrap_or_else(|| panic!("a TMF list is a JSON array: {value}"));
    for item in items {
        assert_tmf(definition, item);
    }
}
