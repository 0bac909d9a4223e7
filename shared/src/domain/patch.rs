//! JSON Patch (RFC 6902) parsing and application, steps 1 and 2 of "PATCH semantics":
//! every operation is checked (and named by index when bad) before anything is applied, then the
//! whole patch is applied atomically with the `json-patch` crate.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, CopyOperation, MoveOperation, PatchOperation, RemoveOperation, ReplaceOperation, TestOperation,
};
use serde_json::{Map, Value};

use super::{DomainError, MAX_CLIENT_BYTES};

const OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

/// Most operations one patch may carry.
pub const MAX_OPERATIONS: usize = 100;

/// Refuses a patch of more than [`MAX_OPERATIONS`] operations (400 naming the body); every
/// family's JSON Patch is held to it.
pub fn check_operation_count(operations: usize) -> Result<(), DomainError> {
    if operations > MAX_OPERATIONS {
        return Err(DomainError::field("", format!("a JSON Patch has at most {MAX_OPERATIONS} operations")));
    }
    Ok(())
}

/// A parsed patch, plus the top-level members its operations write to.
#[derive(Debug, Clone)]
pub struct Patch {
    ops: json_patch::Patch,
    targets: Vec<String>,
}

impl Patch {
    /// Checks every operation: an object with a known `op`, a JSON Pointer `path`, `from` for
    /// move and copy, `value` for add, replace and test.
    pub fn parse(body: &Value) -> Result<Self, DomainError> {
        let Value::Array(items) = body else {
            return Err(DomainError::field("", "the body must be a JSON array of JSON Patch operations"));
        };
        check_operation_count(items.len())?;
        let mut targets = Vec::new();
        let mut ops = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let Value::Object(op) = item else {
                return Err(DomainError::field(format!("/{index}"), "operation must be an object"));
            };
            let op = operation(&format!("/{index}"), op)?;
            if !matches!(op, PatchOperation::Test(_)) {
                targets.push(top_level(op.path().as_str()));
            }
            ops.push(op);
        }
        Ok(Self { ops: json_patch::Patch(ops), targets })
    }

    /// Whether an operation writes the top-level member `name` (even with the value it had).
    pub fn targets(&self, name: &str) -> bool {
        self.targets.iter().any(|t| t == name)
    }

    /// Applies every operation or none, one at a time. A failing `test` is a conflict (409); an
    /// operation on a missing path is invalid input (400), named by index; so is one that grows
    /// the document past [`MAX_CLIENT_BYTES`] (no such document could be stored), refused as
    /// soon as it does, so that a patch of `copy` operations doubling the document stops at the
    /// bound instead of allocating without one.
    pub fn apply(&self, document: &Value) -> Result<Value, DomainError> {
        let mut patched = document.clone();
        for (index, op) in self.ops.0.iter().enumerate() {
            json_patch::patch(&mut patched, std::slice::from_ref(op)).map_err(|e| match e.kind {
                json_patch::PatchErrorKind::TestFailed => {
                    DomainError::conflict(format!("test operation {index} failed"))
                }
                // bill-runs.md, "PATCH semantics" step 2: an operation on a path the resource does
                // not have is 400, named by index.
                _ => DomainError::field(format!("/{index}"), format!("cannot apply to the resource: {}", e.kind)),
            })?;
            let grows = matches!(op, PatchOperation::Add(_) | PatchOperation::Replace(_) | PatchOperation::Copy(_));
            if grows && encoded_len(&patched) > MAX_CLIENT_BYTES {
                return Err(DomainError::field(
                    format!("/{index}"),
                    format!("the operation grows the document past {MAX_CLIENT_BYTES} bytes"),
                ));
            }
        }
        Ok(patched)
    }
}

/// The length of a value's JSON text, counted without building it.
fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// One operation, built member by member (not through serde: an internally tagged enum buffers
/// its `value`, and a number past 64 bits, which JSON allows, would then be refused).
fn operation(at: &str, op: &Map<String, Value>) -> Result<PatchOperation, DomainError> {
    let name = match op.get("op") {
        Some(Value::String(name)) if OPS.contains(&name.as_str()) => name.as_str(),
        _ => {
            return Err(DomainError::field(
                format!("{at}/op"),
                "op must be one of add, remove, replace, move, copy, test",
            ))
        }
    };
    let path =
        pointer(op, "path").ok_or_else(|| DomainError::field(format!("{at}/path"), "path must be a JSON Pointer"))?;
    let from =
        || pointer(op, "from").ok_or_else(|| DomainError::field(format!("{at}/from"), "from must be a JSON Pointer"));
    let value =
        || op.get("value").cloned().ok_or_else(|| DomainError::field(format!("{at}/value"), "value is required"));
    Ok(match name {
        "add" => PatchOperation::Add(AddOperation { path, value: value()? }),
        "remove" => PatchOperation::Remove(RemoveOperation { path }),
        "replace" => PatchOperation::Replace(ReplaceOperation { path, value: value()? }),
        "move" => PatchOperation::Move(MoveOperation { from: from()?, path }),
        "copy" => PatchOperation::Copy(CopyOperation { from: from()?, path }),
        _ => PatchOperation::Test(TestOperation { path, value: value()? }),
    })
}

/// An RFC 6901 JSON Pointer member (`""`, or `/` and escaped tokens).
fn pointer(op: &Map<String, Value>, key: &str) -> Option<PointerBuf> {
    op.get(key).and_then(Value::as_str).and_then(|p| PointerBuf::parse(p).ok())
}

fn top_level(path: &str) -> String {
    let first = path.split('/').nth(1).unwrap_or_default();
    first.replace("~1", "/").replace("~0", "~")
}

/// The top-level members whose value differs between two objects (a member missing on one side
/// counts as changed), in a stable order.
pub fn changed_members(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(after.keys().filter(|k| !before.contains_key(*k)).cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_malformed_operations_when_parsed_then_the_bad_one_is_named_by_index() {
        let cases = [
            (json!({"op": "add"}), ""),
            (json!([{"op": "replace", "path": "/a", "value": 1}, {"op": "frobnicate", "path": "/a"}]), "/1/op"),
            (json!([{"op": "replace", "path": "a", "value": 1}]), "/0/path"),
            (json!([{"op": "replace", "value": 1}]), "/0/path"),
            (json!([{"op": "move", "path": "/a"}]), "/0/from"),
            (json!([{"op": "add", "path": "/a"}]), "/0/value"),
            (json!([7]), "/0"),
        ];
        for (body, pointer) in cases {
            match Patch::parse(&body) {
                Err(DomainError::Invalid { errors, .. }) => {
                    assert_eq!(errors[0].pointer, pointer, "{body}")
                }
                other => panic!("{body}: expected 400, got {other:?}"),
            }
        }
    }

    #[test]
    fn given_a_failing_test_op_when_applied_then_conflict_and_nothing_changes() {
        let doc = json!({"a": 1, "b": 2});
        let patch = Patch::parse(&json!([
            {"op": "replace", "path": "/a", "value": 5},
            {"op": "test", "path": "/b", "value": 3}
        ]))
        .unwrap();
        assert!(matches!(patch.apply(&doc), Err(DomainError::Conflict(_))));
        assert_eq!(doc, json!({"a": 1, "b": 2}));
    }

    #[test]
    fn given_more_than_100_operations_then_the_patch_is_refused() {
        let op = json!({"op": "replace", "path": "/a", "value": 1});
        assert!(Patch::parse(&Value::Array(vec![op.clone(); MAX_OPERATIONS])).is_ok());
        match Patch::parse(&Value::Array(vec![op; MAX_OPERATIONS + 1])) {
            Err(DomainError::Invalid { errors, .. }) => assert_eq!(errors[0].pointer, ""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn given_copies_that_double_the_document_then_the_patch_stops_at_the_bound() {
        let doc = json!({"name": "x".repeat(1000)});
        let ops: Vec<Value> = (0..40).map(|i| json!({"op": "copy", "from": "", "path": format!("/x{i}")})).collect();
        let patch = Patch::parse(&Value::Array(ops)).unwrap();
        match patch.apply(&doc) {
            // 1 KB doubled: the 9th copy passes 350 KB.
            Err(DomainError::Invalid { errors, .. }) => assert_eq!(errors[0].pointer, "/8"),
            other => panic!("expected 400, got {:?}", other.map(|v| encoded_len(&v))),
        }
        let big = json!([{"op": "add", "path": "/blob", "value": "y".repeat(MAX_CLIENT_BYTES)}]);
        assert!(Patch::parse(&big).unwrap().apply(&doc).is_err(), "one add past the bound");
        let fits = json!([{"op": "add", "path": "/blob", "value": "y".repeat(1000)}]);
        assert!(Patch::parse(&fits).unwrap().apply(&doc).is_ok());
    }

    #[test]
    fn given_a_path_the_document_lacks_when_applied_then_it_is_refused_naming_the_operation() {
        let ops =
            json!([{"op": "add", "path": "/b", "value": 2}, {"op": "replace", "path": "/nope/deeper", "value": 5}]);
        let refused = Patch::parse(&ops).unwrap().apply(&json!({"a": 1}));
        assert!(
            matches!(&refused, Err(DomainError::Invalid { errors, .. }) if errors[0].pointer == "/1"),
            "{refused:?}"
        );
        let test = Patch::parse(&json!([{"op": "test", "path": "/a", "value": 2}])).unwrap();
        assert!(matches!(test.apply(&json!({"a": 1})), Err(DomainError::Conflict(_))), "a failed test is 409");
    }

    #[test]
    fn targets_and_changes_are_top_level_members() {
        let patch = Patch::parse(&json!([
            {"op": "add", "path": "/ids/-", "value": 5},
            {"op": "test", "path": "/name", "value": "x"}
        ]))
        .unwrap();
        assert!(patch.targets("ids"));
        assert!(!patch.targets("name"));
        let before = json!({"a": 1, "b": 2});
        let after = json!({"a": 1, "b": 3, "c": 4});
        assert_eq!(
            changed_members(before.as_object().unwrap(), after.as_object().unwrap()),
            vec!["b".to_string(), "c".to_string()]
        );
    }
}
