//! Every response of every HTTP test, checked against the OpenAPI document (`shared::openapi`):
//! its status must be one the operation documents, its media type one documented for that
//! status, and its body valid against that media type's schema. A route the handlers answer
//! differently from the document fails the test that saw it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use shared::routes::{self, Matched};

/// A validator of the schema at `pointer` in the document (formats asserted, as the TMF678
/// definitions' own draft 4 does), built once per pointer.
pub fn validator(pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let mut validators = VALIDATORS.get_or_init(Default::default).lock().map_err(|e| e.to_string())?;
    if let Some(validator) = validators.get(pointer) {
        return Ok(validator.clone());
    }
    // The schema, with the document's components beside it so that every
    // `#/components/schemas/...` resolves.
    let doc = shared::openapi::document();
    let mut root = doc.pointer(pointer).cloned().ok_or_else(|| format!("no schema at {pointer}"))?;
    root["components"] = doc["components"].clone();
    let validator = Arc::new(
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?,
    );
    validators.insert(pointer.to_owned(), validator.clone());
    Ok(validator)
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Checks one response against the document. Paths that are not routes (404 and 405 of the dev
/// server, `/openapi.json`, `/docs`) are not operations and pass.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &Value) -> Result<(), String> {
    let Matched::Found { route, .. } = routes::find(method, path) else { return Ok(()) };
    let doc = shared::openapi::document();
    let op_pointer = format!("/paths/{}/{}", escape(route.path), method.to_lowercase());
    let what = format!("{method} {path} ({}) answered {status}", route.function);
    let response = doc
        .pointer(&format!("{op_pointer}/responses/{status}"))
        .ok_or_else(|| format!("{what}, a status the OpenAPI document does not give it:\n{body:#}"))?;
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return match body {
            Value::Null => Ok(()),
            other => Err(format!("{what} with a body, where the document has none:\n{other:#}")),
        };
    };
    let media = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim().to_owned();
    if !content.contains_key(&media) {
        let documented: Vec<&String> = content.keys().collect();
        return Err(format!("{what} as {media:?}, where the document has {documented:?}"));
    }
    let schema_pointer = format!("{op_pointer}/responses/{status}/content/{}/schema", escape(&media));
    let validator = validator(&schema_pointer)?;
    let errors: Vec<String> =
        validator.iter_errors(body).take(5).map(|e| format!("{e} at {}", e.instance_path())).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}, a body the document does not describe: {errors:?}\n{body:#}"))
    }
}
