//! `Idempotency-Key` on creates: a retry with the same key and body gets the original response
//! again; the same key with another body is 422. Records live in the request's tenant: the same
//! key in another tenant is another record.

use lambda_http::http::{header, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::response::{resource_response, set, text_response, with_header};
use crate::domain::identity::Principal;
use crate::store::repo::Tenant;
use crate::store::{now_epoch, IdempotencyRecord, NewItem, StoreError, Write};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// A create's idempotency: the key (scoped by caller and route) and the body's fingerprint.
pub struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

impl Idempotency {
    /// Reads `Idempotency-Key` (1-255 visible ASCII characters).
    pub fn from_request(req: &Request, caller: &Principal, route: &str, body: &Value) -> ApiResult<Option<Self>> {
        let Some(raw) = req.headers().get("idempotency-key") else {
            return Ok(None);
        };
        let key = raw.to_str().ok().filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
        let key =
            key.ok_or_else(|| ApiError::field("/Idempotency-Key", "must be 1 to 255 visible ASCII characters"))?;
        let canonical = serde_json::to_string(body).unwrap_or_default();
        let fingerprint = format!("{:x}", Sha256::digest(canonical.as_bytes()));
        Ok(Some(Self { key: format!("{}:{route}:{key}", caller.user_id), fingerprint }))
    }

    /// The stored response, when this key was used in `tenant` already (422 with another body).
    pub async fn replay_stored(&self, tenant: &Tenant<'_>) -> ApiResult<Option<Response<Body>>> {
        match tenant.idempotency(&self.key).await? {
            Some(record) => self.replay(&record).map(Some),
            None => Ok(None),
        }
    }

    fn replay(&self, record: &IdempotencyRecord) -> ApiResult {
        if record.fingerprint != self.fingerprint {
            return Err(ApiError::Unprocessable("this Idempotency-Key was used with a different body".into()));
        }
        let status = StatusCode::from_u16(record.status).unwrap_or(StatusCode::OK);
        let mut response = text_response(status, record.body.clone(), "application/json");
        if let Some(location) = &record.location {
            set(&mut response, header::LOCATION, location);
        }
        Ok(with_header(response, "idempotency-replayed", "true"))
    }

    /// The record of a 201 with `body` at `location`.
    pub fn record(&self, body: &str, location: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            status: StatusCode::CREATED.as_u16(),
            body: body.to_owned(),
            location: Some(location.to_owned()),
            expires_at: now_epoch() + IDEMPOTENCY_TTL_SECONDS,
        }
    }
}

/// Writes a new resource (with its idempotency record, if any, and the other writes it takes in
/// the same transaction): 201 with `Location`, or the stored response when a concurrent request
/// with the same key won. A lost race is `LostRace`, for `with_retries`.
pub async fn create_or_replay(
    tenant: &Tenant<'_>,
    mut item: NewItem,
    with: Vec<Write>,
    idempotency: Option<&Idempotency>,
    location: &str,
) -> ApiResult {
    item.idempotency = idempotency.map(|i| i.record(&item.body, location));
    let mut writes = vec![Write::Create(item)];
    writes.extend(with);
    match tenant.write(writes).await.map(|mut saved| saved.swap_remove(0)) {
        Ok(stored) => {
            Ok(with_header(resource_response(StatusCode::CREATED, &stored.body, stored.version), "location", location))
        }
        Err(StoreError::IdempotencyKeyTaken) => {
            let idem = idempotency.ok_or_else(|| ApiError::internal("idempotency key taken without a key"))?;
            idem.replay_stored(tenant).await?.ok_or(ApiError::LostRace)
        }
        Err(e) => Err(e.into()),
    }
}
