//! API keys (docs/auth.md): what a key may be, how one is issued, and how it is shown. One
//! code path for `billflow-admin api-key ...`, the HTTP endpoints (`http::api_keys`) and the dev
//! server's key: each builds a [`NewKey`], issues it here and stores the record it gets back
//! (only the SHA-256 hash of the key is ever stored).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::domain::check::{Check, Obj};
use crate::domain::identity::{Principal, SCOPE_ADMIN, SCOPE_READ, SCOPE_WRITE};
use crate::domain::key::TenantId;
use crate::domain::{DomainError, FieldError};
use crate::store::{ApiKeyRecord, MAX_KEY_TENANTS};

/// Scopes a key may carry.
pub const SCOPES: &[&str] = &[SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];
/// What a tenant id is ([`TenantId::parse`]).
pub const TENANT_RULE: &str = "must be 1 to 64 letters, digits or -_., the first a letter or digit";
/// Longest description.
pub const MAX_DESCRIPTION: usize = 500;
/// Longest life of a key: ten years.
pub const MAX_LIFE: Duration = Duration::from_secs(3650 * 86_400);

/// A key to issue: the caller it stands for, and its description and life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub caller: Principal,
    pub description: Option<String>,
    pub expires_in: Option<Duration>,
}

/// A key just issued: the key itself (shown once) and the record to store.
#[derive(Debug, Clone)]
pub struct Issued {
    pub key: String,
    pub record: ApiKeyRecord,
}

impl NewKey {
    /// Refuses a key of no tenant or more than [`MAX_KEY_TENANTS`], a tenant that is not a tenant
    /// id, no scope or an unknown one, a description over [`MAX_DESCRIPTION`] characters or a life
    /// over [`MAX_LIFE`]; every problem named by the pointer of its field.
    pub fn check(&self) -> Result<(), DomainError> {
        let mut errors = Vec::new();
        let tenants = &self.caller.tenants;
        if tenants.is_empty() || tenants.len() > MAX_KEY_TENANTS {
            errors.push(FieldError::new("/tenants", format!("must name 1 to {MAX_KEY_TENANTS} tenants")));
        }
        for (i, tenant) in tenants.iter().enumerate() {
            if TenantId::parse(tenant).is_none() {
                errors.push(FieldError::new(format!("/tenants/{i}"), TENANT_RULE));
            }
        }
        if self.caller.scopes.is_empty() {
            errors.push(FieldError::new("/scopes", "must name at least one scope"));
        }
        errors.extend(unknown_scopes(&self.caller.scopes));
        if self.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            errors.push(FieldError::new("/description", format!("has at most {MAX_DESCRIPTION} characters")));
        }
        if self.expires_in.is_some_and(|life| life.is_zero() || life > MAX_LIFE) {
            errors.push(FieldError::new("/expiresIn", "must be more than 0 and at most 3650d"));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::fields(errors))
        }
    }

    /// A fresh random key for this caller ([`new_api_key`]).
    pub fn issue(self) -> Result<Issued, DomainError> {
        let (key_id, key) = new_api_key();
        self.issue_as(key, key_id)
    }

    /// This caller's key `key` (the dev server's fixed `DEV_API_KEY`), under a fresh key id.
    pub fn issue_key(self, key: String) -> Result<Issued, DomainError> {
        self.issue_as(key, new_api_key().0)
    }

    fn issue_as(mut self, key: String, key_id: String) -> Result<Issued, DomainError> {
        for names in [&mut self.caller.scopes, &mut self.caller.tenants] {
            names.sort();
            names.dedup();
        }
        self.check()?;
        let record = api_key_record(&key, &key_id, self.caller, self.description, self.expires_in);
        Ok(Issued { key, record })
    }
}

/// A new API key: `bfk_` and 244 random bits (two UUID v4s), and a separate random key id.
pub fn new_api_key() -> (String, String) {
    let random = |n: usize| {
        (0..n).flat_map(|_| *uuid::Uuid::new_v4().as_bytes()).map(|b| format!("{b:02x}")).collect::<String>()
    };
    (format!("key_{}", &random(1)[..20]), format!("bfk_{}", random(2)))
}

/// The record of a new key for `caller`, valid for `expires_in` when given.
fn api_key_record(
    key: &str,
    key_id: &str,
    caller: Principal,
    description: Option<String>,
    expires_in: Option<Duration>,
) -> ApiKeyRecord {
    let now = crate::store::now_epoch();
    ApiKeyRecord {
        key_id: key_id.to_owned(),
        hash: crate::http::caller::api_key_hash(key),
        caller,
        description,
        created_at: now,
        expires_at: expires_in.map(|d| now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        revoked_at: None,
    }
}

/// `90d`, `12h`, `30m` or `45s`: more than 0, at most [`MAX_LIFE`], with no leading zero and at
/// most 8 digits of seconds, 6 of minutes, 4 of hours or 4 of days, as [`DURATION_PATTERN`]
/// states it.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    let (per_unit, max_digits) = match unit {
        's' => (1, 8),
        'm' => (60, 6),
        'h' => (3600, 4),
        'd' => (86_400, 4),
        _ => return None,
    };
    let plain = !digits.is_empty() && digits.len() <= max_digits && !digits.starts_with('0');
    let n: u64 = digits.parse().ok().filter(|_| plain && digits.bytes().all(|b| b.is_ascii_digit()))?;
    Some(Duration::from_secs(n.checked_mul(per_unit)?)).filter(|life| *life <= MAX_LIFE)
}

/// What [`parse_duration`] takes, as a JSON Schema pattern (the days spelled out up to 3650).
pub const DURATION_PATTERN: &str =
    "^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|([1-9][0-9]{0,2}|[12][0-9]{3}|3[0-5][0-9]{2}|36[0-4][0-9]|3650)d)$";

/// A key of `tenant` as `POST /api-keys` asks for it: `{"userId"?, "scopes", "description"?,
/// "expiresIn"?}`, for `caller` (whose user id is the default). Whether the caller may grant the
/// scopes is the edge's question (403), not the body's.
pub fn parse_request(body: &Value, caller: &Principal, tenant: &TenantId) -> Result<NewKey, DomainError> {
    let mut check = Check::new();
    let obj = check.root(body, &["userId", "scopes", "description", "expiresIn"])?;
    for (name, _) in obj.map.iter().filter(|(_, value)| value.is_null()) {
        check.fail(obj.pointer(name), "must not be null (leave it out for the default)");
    }
    let user_id = match obj.get("userId") {
        None => Some(caller.user_id),
        Some(value) => {
            let id = value.as_u64().filter(|id| *id > 0);
            if id.is_none() {
                check.fail(obj.pointer("userId"), "must be a positive 64-bit integer");
            }
            id
        }
    };
    let scopes = scopes(&mut check, &obj);
    let description = check.text(&obj, "description", false, MAX_DESCRIPTION);
    let expires_in = obj.get("expiresIn").and_then(|value| {
        let life = value.as_str().and_then(parse_duration);
        if life.is_none() {
            check.fail(obj.pointer("expiresIn"), "must be <n>s, <n>m, <n>h or <n>d, at most 3650d");
        }
        life
    });
    check.stop()?;
    let caller = Principal { user_id: user_id.unwrap_or_default(), tenants: vec![tenant.as_str().to_owned()], scopes };
    let new = NewKey { caller, description, expires_in };
    new.check()?;
    Ok(new)
}

/// `scopes`: a required, non-empty array of known scopes.
fn scopes(check: &mut Check, obj: &Obj<'_>) -> Vec<String> {
    if check.required(obj, "scopes").is_none() {
        return Vec::new();
    }
    let scopes = check.strings(obj, "scopes");
    if scopes.is_empty() && check.errors.is_empty() {
        check.fail(obj.pointer("scopes"), "must name at least one scope");
    }
    check.errors.extend(unknown_scopes(&scopes));
    scopes
}

/// A refusal, named `/scopes/<i>`, of each scope that is none of [`SCOPES`].
fn unknown_scopes(scopes: &[String]) -> Vec<FieldError> {
    let rule = format!("must be one of {}", SCOPES.join(", "));
    scopes
        .iter()
        .enumerate()
        .filter(|(_, scope)| !SCOPES.contains(&scope.as_str()))
        .map(|(i, _)| FieldError::new(format!("/scopes/{i}"), rule.clone()))
        .collect()
}

/// How a key is shown: never the key or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub key_id: String,
    pub description: Option<String>,
    pub user_id: u64,
    pub tenants: Vec<String>,
    pub scopes: Vec<String>,
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

impl KeyView {
    pub fn of(record: &ApiKeyRecord, now: i64) -> Self {
        let time = |at: i64| {
            time::OffsetDateTime::from_unix_timestamp(at)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default()
        };
        let state = match (record.revoked_at, record.valid_at(now)) {
            (Some(_), _) => "revoked",
            (None, false) => "expired",
            (None, true) => "active",
        };
        Self {
            key_id: record.key_id.clone(),
            description: record.description.clone(),
            user_id: record.caller.user_id,
            tenants: record.caller.tenants.clone(),
            scopes: record.caller.scopes.clone(),
            created: time(record.created_at),
            expires: record.expires_at.map(time),
            revoked: record.revoked_at.map(time),
            state,
        }
    }
}

/// Whether `text` could be a key id [`new_api_key`] made (anything else names no key: 404).
pub fn is_key_id(text: &str) -> bool {
    text.strip_prefix("key_").is_some_and(|hex| hex.len() == 20 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> Principal {
        Principal { user_id: 7, tenants: vec!["a".into()], scopes: vec![SCOPE_READ.into(), SCOPE_ADMIN.into()] }
    }

    #[test]
    fn durations_take_seconds_minutes_hours_and_days_within_ten_years() {
        assert_eq!(parse_duration("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_duration("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("3650d"), Some(MAX_LIFE));
        let pattern = |text: &str| {
            // The pattern's alternatives, checked by hand for the cases below.
            let (digits, unit) = text.split_at(text.len() - 1);
            let max = match unit {
                "s" => 8,
                "m" => 6,
                "h" => 4,
                "d" => 4,
                _ => 0,
            };
            !digits.is_empty()
                && digits.len() <= max
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (unit != "d" || digits.parse::<u64>().is_ok_and(|d| d <= 3650))
        };
        for text in ["1s", "99999999s", "999999m", "9999h", "3650d", "3651d", "0001d", "100000000s", "8760h"] {
            assert_eq!(parse_duration(text).is_some(), pattern(text), "{text}");
        }
        for bad in ["", "d", "0d", "5w", "-1d", "+1d", "3651d", "99999999999999999999d", "1é", "é"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn given_a_request_then_the_key_is_of_the_tenant_alone_and_the_callers_user_by_default() {
        let tenant = TenantId::parse("a").unwrap();
        let body = serde_json::json!({"scopes": ["billing:read"], "description": "ci", "expiresIn": "30d"});
        let new = parse_request(&body, &admin(), &tenant).unwrap();
        assert_eq!(new.caller, Principal { user_id: 7, tenants: vec!["a".into()], scopes: vec![SCOPE_READ.into()] });
        assert_eq!(new.expires_in, Some(Duration::from_secs(30 * 86_400)));
        let other = parse_request(&serde_json::json!({"scopes": ["billing:write"], "userId": 9}), &admin(), &tenant);
        assert_eq!(other.unwrap().caller.user_id, 9);
    }

    #[test]
    fn given_bad_requests_then_each_field_is_named() {
        let tenant = TenantId::parse("a").unwrap();
        let cases = [
            (serde_json::json!({}), "/scopes"),
            (serde_json::json!({"scopes": []}), "/scopes"),
            (serde_json::json!({"scopes": ["root"]}), "/scopes/0"),
            (serde_json::json!({"scopes": "billing:read"}), "/scopes"),
            (serde_json::json!({"scopes": ["billing:read"], "userId": 0}), "/userId"),
            (serde_json::json!({"scopes": ["billing:read"], "userId": null}), "/userId"),
            (serde_json::json!({"scopes": ["billing:read"], "description": null}), "/description"),
            (serde_json::json!({"scopes": ["billing:read"], "userId": -1}), "/userId"),
            (serde_json::json!({"scopes": ["billing:read"], "expiresIn": "forever"}), "/expiresIn"),
            (serde_json::json!({"scopes": ["billing:read"], "tenants": ["b"]}), "/tenants"),
            (serde_json::json!({"scopes": ["billing:read"], "description": "x".repeat(501)}), "/description"),
            (serde_json::json!([]), ""),
        ];
        for (body, pointer) in cases {
            match parse_request(&body, &admin(), &tenant) {
                Err(DomainError::Invalid { errors, .. }) => {
                    assert!(errors.iter().any(|e| e.pointer == pointer), "{body}: {errors:?}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn given_new_keys_then_tenants_and_scopes_are_checked_and_only_the_hash_is_kept() {
        let key = |tenants: Vec<&str>, scopes: Vec<&str>| NewKey {
            caller: Principal {
                user_id: 1,
                tenants: tenants.into_iter().map(str::to_owned).collect(),
                scopes: scopes.into_iter().map(str::to_owned).collect(),
            },
            description: None,
            expires_in: None,
        };
        assert!(key(vec![], vec![SCOPE_READ]).issue().is_err(), "a key of no tenant");
        assert!(key(vec!["a b"], vec![SCOPE_READ]).issue().is_err());
        assert!(key(vec!["a"; 17], vec![SCOPE_READ]).check().is_err(), "more than 16 tenants");
        assert!(key(vec!["a"], vec![]).issue().is_err());
        assert!(key(vec!["a"], vec!["billing:everything"]).issue().is_err());
        let issued = key(vec!["a", "b"], vec![SCOPE_READ]).issue().unwrap();
        assert!(issued.key.starts_with("bfk_") && is_key_id(&issued.record.key_id));
        assert_ne!(issued.record.hash, issued.key);
        let view = serde_json::to_string(&KeyView::of(&issued.record, 0)).unwrap();
        assert!(!view.contains(&issued.key) && !view.contains(&issued.record.hash), "{view}");
    }
}
