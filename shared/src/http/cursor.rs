//! The cursor of `{Count, Items, LastEvaluatedKey}` lists (billing runs, API keys).

use lambda_http::{Request, RequestExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use crate::domain::key::TenantId;

/// The largest and the default `limit` of a page.
pub const MAX_LIMIT: usize = 1000;
pub const DEFAULT_LIMIT: usize = 100;

/// `limit`: an integer from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn page_limit(req: &Request) -> ApiResult<usize> {
    match req.query_string_parameters_ref().and_then(|q| q.first("limit")) {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::field("/limit", "must be an integer from 1 to 1000")),
    }
}

/// The order key `exclusiveStartKey` points at, when it is a cursor of this tenant's `list`.
pub fn start_after(req: &Request, tenant: &TenantId, list: &str) -> ApiResult<Option<String>> {
    let raw = req.query_string_parameters_ref().and_then(|q| q.first("exclusiveStartKey"));
    raw.map(|key| Cursor::decode(key, tenant.as_str(), list)).transpose()
}

/// `{"Count", "Items", "LastEvaluatedKey"?}` of items given as JSON texts.
pub fn page_body<'a>(items: impl Iterator<Item = &'a str>, next: Option<Cursor>) -> String {
    let mut count = 0;
    let mut text = String::from("[");
    for item in items {
        if count > 0 {
            text.push(',');
        }
        text.push_str(item);
        count += 1;
    }
    text.push(']');
    let mut body = format!("{{\"Count\":{count},\"Items\":{text}");
    if let Some(next) = next {
        body.push_str(&format!(",\"LastEvaluatedKey\":{}", Value::String(next.encode())));
    }
    body.push('}');
    body
}

/// A list's position, handed out as `LastEvaluatedKey`: the tenant and list it belongs to, and
/// the order key of the last item given. Opaque (hex) with a SHA-256 checksum, which catches a
/// changed or cut key (400, as is a key of another tenant or list); it is no secret, and it need
/// not be: a forged key could only position a Query inside the request's own tenant and list.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Cursor {
    pub t: String,
    pub l: String,
    pub k: String,
}

const CURSOR_DOMAIN: &[u8] = b"billflow:list-cursor:v1:";
/// Longest cursor text read.
const MAX_CURSOR: usize = 2048;

fn checksum(payload: &[u8]) -> String {
    let digest = Sha256::new().chain_update(CURSOR_DOMAIN).chain_update(payload).finalize();
    hex(&digest[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

impl Cursor {
    pub fn new(tenant: &TenantId, list: impl Into<String>, order: String) -> Self {
        Self { t: tenant.as_str().to_owned(), l: list.into(), k: order }
    }

    pub fn encode(&self) -> String {
        let payload = serde_json::to_vec(self).unwrap_or_default();
        format!("{}.{}", hex(&payload), checksum(&payload))
    }

    /// The order key a cursor points at, if it is one this tenant's `list` handed out.
    pub fn decode(text: &str, tenant: &str, list: &str) -> ApiResult<String> {
        let refused = || ApiError::field("/exclusiveStartKey", "is not a key this list handed out");
        if text.len() > MAX_CURSOR {
            return Err(refused());
        }
        let (payload, sum) = text.split_once('.').ok_or_else(refused)?;
        let payload = unhex(payload).ok_or_else(refused)?;
        if checksum(&payload) != sum {
            return Err(refused());
        }
        let cursor: Cursor = serde_json::from_slice(&payload).map_err(|_| refused())?;
        if cursor.t != tenant || cursor.l != list {
            return Err(refused());
        }
        Ok(cursor.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_cursors_then_only_untouched_ones_of_this_tenant_and_list_decode() {
        let cursor = Cursor { t: "acme".into(), l: "all".into(), k: "2026-11-22T10:00:00.000000Z#x".into() };
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text, "acme", "all").unwrap(), cursor.k);
        assert!(Cursor::decode(&text, "other", "all").is_err(), "another tenant's key");
        assert!(Cursor::decode(&text, "acme", "recurring:r1").is_err(), "another list's key");
        let mut tampered = text.clone().into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        assert!(Cursor::decode(std::str::from_utf8(&tampered).unwrap(), "acme", "all").is_err(), "a changed byte");
        for junk in ["", ".", "zz.zz", "abc", &"a".repeat(5000)] {
            assert!(Cursor::decode(junk, "acme", "all").is_err(), "{junk:?}");
        }
    }
}
