//! API keys: their operations and schemas.

use super::*;

pub(super) const API_KEYS_TAG: &str = "API keys";

/// The API-key operations: a bearer token with `billing:admin` (403 otherwise, and for an API key).
pub(super) fn api_key_operation(function: &str) -> Option<Op> {
    Some(match function {
        "create-api-key" => Op::new("Issue an API key of the request's tenant (shown once)", API_KEYS_TAG)
            .body(json_body("ApiKeyCreate"))
            .ok(
                201,
                json!({"description": "Created: `apiKey` is shown this once and never again",
                    "headers": {"x-request-id": {"schema": {"type": "string"}}, "Location": {"schema": {"type": "string"}},
                        "Cache-Control": {"schema": {"const": "no-store"}}},
                    "content": {"application/json": {"schema": schema_ref("ApiKeyCreated")}}}),
            )
            .errors(&[413, 415]),
        "list-api-keys" => Op::new("List the tenant's API keys (never a key or its hash)", API_KEYS_TAG)
            .query(page_params())
            .ok(
                200,
                json!({"description": "A page of keys, in key id order", "headers": request_id_header(),
                    "content": {"application/json": {"schema": schema_ref("ApiKeyPage")}}}),
            ),
        "revoke-api-key" => Op::new("Revoke one of the tenant's API keys (again: 204)", API_KEYS_TAG)
            .ok(204, json!({"description": "Revoked: the key fails from the next request, plus the caches' TTL (60 s at most)",
                "headers": request_id_header()}))
            .errors(&[404, 409]),
        _ => return None,
    })
}

pub(super) fn api_key_schemas() -> Vec<(&'static str, Value)> {
    use crate::api_keys::{MAX_DESCRIPTION, SCOPES};
    let scopes = || json!({"type": "array", "minItems": 1, "items": enumeration(SCOPES)});
    let view = [
        ("keyId", json!({"type": "string", "pattern": "^key_[0-9a-f]{20}$"})),
        ("description", nullable_string()),
        ("userId", integer(0)),
        ("tenants", json!({"type": "array", "items": string()})),
        ("scopes", scopes()),
        ("created", date_time()),
        ("expires", nullable(date_time())),
        ("revoked", nullable(date_time())),
        ("state", enumeration(&["active", "expired", "revoked"])),
    ];
    let mut created = view.to_vec();
    created.push(("apiKey", json!({"type": "string", "pattern": "^bfk_[0-9a-f]{64}$"})));
    let create = open(
        &[
            (
                "userId",
                json!({"type": "integer", "minimum": 1, "maximum": u64::MAX,
                "description": "The user the key stands for; the caller's by default"}),
            ),
            (
                "scopes",
                json!({"type": "array", "minItems": 1, "maxItems": 100, "items": enumeration(SCOPES),
                "description": "Only scopes the caller has (403 otherwise)"}),
            ),
            ("description", json!({"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION})),
            (
                "expiresIn",
                json!({"type": "string",
                "pattern": crate::api_keys::DURATION_PATTERN,
                "description": "`<n>s`, `<n>m`, `<n>h` or `<n>d`, more than 0 and at most 3650d"}),
            ),
        ],
        &["scopes"],
    );
    let page = json!({"type": "object", "additionalProperties": false, "required": ["Count", "Items"],
    "properties": {
        "Count": integer(0),
        "Items": {"type": "array", "items": schema_ref("ApiKey")},
        "LastEvaluatedKey": {"type": "string", "description": "Pass back as `exclusiveStartKey` for the next page"},
    }});
    vec![("ApiKey", exact(&view)), ("ApiKeyCreated", exact(&created)), ("ApiKeyCreate", create), ("ApiKeyPage", page)]
}
