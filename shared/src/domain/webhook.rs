//! Webhook endpoints, the TMF678 hub's subscriptions, and their deliveries (docs/events.md): the
//! resources, the URL rules, the retry schedule and the Standard Webhooks v1 signature. Pure: the
//! address checks take addresses, never resolve them.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use super::key::{Id, IdType, Kind};
use super::resource::Resource;
use super::DomainError;

/// Most endpoints (and, apart, most hub subscriptions) one tenant may have.
pub const MAX_ENDPOINTS: u64 = 16;
/// Longest URL taken.
pub const MAX_URL: usize = 2048;
/// Most `enabledEvents` entries.
pub const MAX_ENABLED: usize = 64;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1024;
/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP_SECS: i64 = 24 * 3600;
/// A delivery's request times out after this long.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Most bytes of a response body read (and discarded).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Most attempts a delivery's log keeps (the newest).
pub const MAX_LOGGED_ATTEMPTS: usize = 30;

/// A tenant's webhook endpoint, as its GET answers it (never its secrets: those are the item's
/// private state, [`Secrets`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    /// Why it was disabled by the system (`410 Gone`, or failing for the whole retry schedule).
    pub disabled_reason: Option<String>,
    /// When its deliveries began failing without a success since (RFC 3339).
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Resource for WebhookEndpoint {
    const KIND: Kind = Kind::new("WEBHOOK", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }
}

impl WebhookEndpoint {
    /// Whether it takes events of `event_type`.
    pub fn takes(&self, event_type: &str) -> bool {
        !self.disabled && self.enabled_events.iter().any(|p| super::event::matches(p, event_type))
    }
}

/// What a create or a merge patch of an endpoint may set.
const FIELDS: &[&str] = &["url", "enabledEvents", "description", "disabled"];

/// The fields of an endpoint's create (`disabled` refused) or merge patch, checked: each field
/// present is `Some` (a description `null` clears it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFields {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
}

impl EndpointFields {
    /// Parses a JSON object of these fields (unknown ones refused), with URLs under `rules`.
    pub fn parse(body: &serde_json::Value, rules: UrlRules, create: bool) -> Result<Self, DomainError> {
        let object = body.as_object().ok_or_else(|| DomainError::invalid("the body must be a JSON object"))?;
        if let Some(name) = object.keys().find(|k| !FIELDS.contains(&k.as_str()) || (create && *k == "disabled")) {
            return Err(DomainError::field(format!("/{name}"), "is not a field of a webhook endpoint you may set"));
        }
        let mut fields = Self::default();
        if let Some(url) = object.get("url") {
            let url = url.as_str().ok_or_else(|| DomainError::field("/url", "must be a string"))?;
            rules.check("/url", url)?;
            fields.url = Some(url.to_owned());
        }
        if let Some(events) = object.get("enabledEvents") {
            fields.enabled_events = Some(parse_enabled(events)?);
        }
        if let Some(description) = object.get("description") {
            fields.description = Some(match description {
                serde_json::Value::Null => None,
                serde_json::Value::String(d) if d.chars().count() <= MAX_DESCRIPTION => Some(d.clone()),
                _ => return Err(DomainError::field("/description", "must be a string of at most 1024 characters")),
            });
        }
        if let Some(disabled) = object.get("disabled") {
            fields.disabled =
                Some(disabled.as_bool().ok_or_else(|| DomainError::field("/disabled", "must be a boolean"))?);
        }
        if create && (fields.url.is_none() || fields.enabled_events.is_none()) {
            let missing = if fields.url.is_none() { "/url" } else { "/enabledEvents" };
            return Err(DomainError::field(missing, "is required"));
        }
        Ok(fields)
    }

    /// A new endpoint of these fields.
    pub fn create(self, id: Uuid, now: &str) -> WebhookEndpoint {
        WebhookEndpoint {
            id,
            url: self.url.unwrap_or_default(),
            enabled_events: self.enabled_events.unwrap_or_default(),
            description: self.description.flatten(),
            disabled: false,
            disabled_reason: None,
            failing_since: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// `current` with these fields merged; enabling it again clears why it was disabled and its
    /// failing streak.
    pub fn merge(self, current: &WebhookEndpoint, now: &str) -> WebhookEndpoint {
        let mut next = current.clone();
        next.url = self.url.unwrap_or(next.url);
        next.enabled_events = self.enabled_events.unwrap_or(next.enabled_events);
        next.description = self.description.unwrap_or(next.description);
        if let Some(disabled) = self.disabled {
            if !disabled {
                next.disabled_reason = None;
                next.failing_since = None;
            }
            next.disabled = disabled;
        }
        if next != *current {
            next.updated_at = now.to_owned();
        }
        next
    }
}

/// `enabledEvents`: 1 to [`MAX_ENABLED`] entries, each `*`, a type or `<prefix>.*`, each once.
fn parse_enabled(value: &serde_json::Value) -> Result<Vec<String>, DomainError> {
    let refuse = |detail: &str| DomainError::field("/enabledEvents", detail);
    let items = value.as_array().ok_or_else(|| refuse("must be an array of event types"))?;
    if items.is_empty() || items.len() > MAX_ENABLED {
        return Err(refuse("must hold 1 to 64 entries"));
    }
    let mut types = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(t) if super::event::is_pattern(t) && !types.iter().any(|seen: &String| seen == t) => {
                types.push(t.to_owned())
            }
            _ => {
                return Err(DomainError::field(
                    format!("/enabledEvents/{i}"),
                    "must be \"*\", an event type or a family such as \"bill.*\", each once",
                ))
            }
        }
    }
    Ok(types)
}

/// A TMF678 hub subscription (EventSubscription), as `POST /hub` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubSubscription {
    pub id: Uuid,
    pub callback: String,
    pub query: Option<String>,
}

impl Resource for HubSubscription {
    const KIND: Kind = Kind::new("HUB", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }
}

impl HubSubscription {
    /// Whether its `query` (`eventType=A,B`; none: every event) takes the TMF event type.
    pub fn takes(&self, tmf_type: &str) -> bool {
        match self.query.as_deref().and_then(|q| q.strip_prefix("eventType=")) {
            Some(types) => types.split(',').any(|t| t.trim() == tmf_type),
            None => true,
        }
    }
}

/// The hub's `query`: absent, or `eventType=` one or more TMF678 event types, comma-separated.
pub fn check_hub_query(query: Option<&str>) -> Result<(), DomainError> {
    let Some(query) = query else { return Ok(()) };
    let types = query.strip_prefix("eventType=").ok_or_else(|| {
        DomainError::field("/query", "must be eventType= and one or more TMF678 event types, comma-separated")
    })?;
    for name in types.split(',') {
        if !super::event::TMF_TYPES.contains(&name.trim()) {
            return Err(DomainError::field("/query", format!("{name:?} is not an event type of the hub")));
        }
    }
    Ok(())
}

/// An endpoint's signing secrets, newest first: each `whsec_` and base64 of 32 random bytes; a
/// rotated-out one until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    pub secrets: Vec<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    pub secret: String,
    /// Unix seconds after which it no longer signs (`None`: the current one).
    pub expires_at: Option<i64>,
}

impl Secrets {
    /// A new secret from 32 random bytes.
    pub fn secret_from(bytes: &[u8; 32]) -> String {
        format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The secrets that sign at `now`.
    pub fn signing(&self, now: i64) -> Vec<&str> {
        self.secrets.iter().filter(|s| s.expires_at.is_none_or(|at| now < at)).map(|s| s.secret.as_str()).collect()
    }

    /// Rotated: `new` signs from now, the current one beside it until `now` plus the overlap, and
    /// the expired ones are dropped.
    pub fn rotated(&self, new: String, now: i64) -> Self {
        let mut secrets = vec![Secret { secret: new, expires_at: None }];
        secrets.extend(self.secrets.iter().filter(|s| s.expires_at.is_none_or(|at| now < at)).map(|s| Secret {
            secret: s.secret.clone(),
            expires_at: Some(s.expires_at.unwrap_or(now + ROTATION_OVERLAP_SECS).min(now + ROTATION_OVERLAP_SECS)),
        }));
        Self { secrets }
    }
}

/// The `webhook-signature` header of Standard Webhooks v1: `v1,<base64 HMAC-SHA256>` of
/// `{id}.{timestamp}.{body}` under each secret (the base64 after `whsec_`), space-separated.
pub fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    let engine = base64::engine::general_purpose::STANDARD;
    secrets
        .iter()
        .filter_map(|secret| {
            let key = engine.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(content.as_bytes());
            Some(format!("v1,{}", engine.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// URLs and addresses

/// Where a URL may point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlRules {
    /// `http://` to a loopback address (`WEBHOOK_ALLOW_LOOPBACK=true`: the dev server, never a
    /// deployed stack).
    pub allow_loopback: bool,
}

/// A URL's parts a delivery needs, once it passed [`UrlRules::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

impl UrlRules {
    /// Checks a URL's form: `https://` (or `http://` to a loopback address when allowed), a host,
    /// no user info or fragment, at most [`MAX_URL`] bytes; a host that is an IP address must be
    /// one [`UrlRules::address_allowed`] takes. A name is checked when it is resolved.
    pub fn check(&self, pointer: &str, url: &str) -> Result<Target, DomainError> {
        let refuse = |why: &str| DomainError::field(pointer, why);
        if url.len() > MAX_URL {
            return Err(refuse("is longer than 2048 characters"));
        }
        let uri = fluent_uri::Uri::parse(url).map_err(|_| refuse("is not a URL"))?;
        let scheme = uri.scheme().as_str().to_ascii_lowercase();
        let authority = uri.authority().ok_or_else(|| refuse("has no host"))?;
        if authority.userinfo().is_some() || uri.fragment().is_some() {
            return Err(refuse("must not carry user info or a fragment"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if host.is_empty() {
            return Err(refuse("has no host"));
        }
        let https = match scheme.as_str() {
            "https" => true,
            "http" if self.allow_loopback => false,
            _ => return Err(refuse("must be https://")),
        };
        let port = match authority.port_to_u16() {
            Ok(Some(port)) => port,
            Ok(None) => {
                if https {
                    443
                } else {
                    80
                }
            }
            Err(_) => return Err(refuse("has a port that is not a number from 0 to 65535")),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.address_allowed(ip, https).map_err(|why| refuse(&why))?;
        }
        Ok(Target { https, host, port })
    }

    /// Whether a delivery may connect to `ip`: never a private, link-local (the instance
    /// metadata address among them), multicast, unspecified or otherwise special address; a
    /// loopback address only where allowed, and then by `http://` too.
    pub fn address_allowed(&self, ip: IpAddr, https: bool) -> Result<(), String> {
        // IPv4-mapped and IPv4-compatible forms (`::ffff:a.b.c.d`, `::a.b.c.d`) are their IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) if !v6.is_loopback() && !v6.is_unspecified() => v6.to_ipv4().map_or(ip, IpAddr::V4),
            other => other,
        };
        if ip.is_loopback() {
            return if self.allow_loopback { Ok(()) } else { Err(format!("points at {ip}, a loopback address")) };
        }
        if !https {
            return Err("must be https:// (http:// is taken for loopback addresses only)".into());
        }
        match special(ip) {
            Some(kind) => Err(format!("points at {ip}, a {kind} address")),
            None => Ok(()),
        }
    }
}

/// What kind of address no delivery may reach, if `ip` is one.
fn special(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_multicast() {
                Some("multicast")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_broadcast()
                || v4.is_documentation()
                || a >= 240
                || (a == 192 && b == 0)
                || (a == 198 && (b & 0xfe) == 18)
            {
                Some("reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if (first & 0xfe00) == 0xfc00 {
                Some("private")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (first & 0xffc0) == 0xfec0 {
                Some("site-local")
            } else if first == 0x2001 && matches!(v6.segments()[1], 0x0000 | 0x0db8)
                || matches!(first, 0x0064 | 0x0100 | 0x2002)
            {
                // Documentation, Teredo, NAT64, discard and 6to4: an IPv4 address may hide in them.
                Some("reserved")
            } else {
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Retries

/// The delays before each retry: `WEBHOOK_RETRY_SCHEDULE` (comma-separated durations such as
/// `1s,500ms,2m`) where it is set and the process is not a Lambda function, else about three days:
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
pub fn retry_schedule() -> &'static [Duration] {
    static SCHEDULE: std::sync::OnceLock<Vec<Duration>> = std::sync::OnceLock::new();
    SCHEDULE.get_or_init(|| {
        let local = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none();
        let set = std::env::var("WEBHOOK_RETRY_SCHEDULE").ok().filter(|_| local);
        set.and_then(|text| parse_schedule(&text))
            .unwrap_or_else(|| DEFAULT_SCHEDULE.iter().map(|s| Duration::from_secs(*s)).collect())
    })
}

const DEFAULT_SCHEDULE: [u64; 9] = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// A schedule's text: durations (`ms`, `s`, `m`, `h`), comma-separated, each at most a day.
pub fn parse_schedule(text: &str) -> Option<Vec<Duration>> {
    let parse = |item: &str| {
        let item = item.trim();
        let (number, unit) = item.split_at(item.find(|c: char| !c.is_ascii_digit())?);
        let n: u64 = number.parse().ok()?;
        let ms = match unit {
            "ms" => n,
            "s" => n.checked_mul(1000)?,
            "m" => n.checked_mul(60_000)?,
            "h" => n.checked_mul(3_600_000)?,
            _ => return None,
        };
        (ms <= 86_400_000).then(|| Duration::from_millis(ms))
    };
    let schedule: Option<Vec<Duration>> = text.split(',').map(parse).collect();
    schedule.filter(|s| !s.is_empty() && s.len() <= 20)
}

/// How long an endpoint may fail every attempt before it is disabled: the whole schedule (about
/// three days).
pub fn failing_limit(schedule: &[Duration]) -> Duration {
    schedule.iter().sum()
}

/// The delay a `Retry-After` header asks for (seconds, or an HTTP date), within 1 s and a day.
pub fn retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    let secs = match value.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let format = time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            );
            let at = time::PrimitiveDateTime::parse(value, &format).ok()?.assume_utc();
            u64::try_from((at - now).whole_seconds()).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs.clamp(1, 86_400)))
}

// ---------------------------------------------------------------------------------------------
// Deliveries

/// Where a delivery goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Destination {
    Webhook,
    Hub,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt, or for an earlier event of its resource to this endpoint.
    Pending,
    Delivered,
    /// Every attempt of the schedule failed, or the endpoint answered 410.
    Failed,
    /// The endpoint was disabled or deleted before it was delivered.
    Skipped,
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub at: String,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// One event to one endpoint (or hub subscription), with its attempts: pending work while it is
/// pending, due at `nextAttemptAt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: Uuid,
    pub destination: Destination,
    /// The endpoint's (or subscription's) id.
    pub endpoint_id: Uuid,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts since it was (re)queued: the schedule's place.
    pub tries: u32,
    pub attempts: Vec<Attempt>,
    /// Epoch ms of the next attempt while pending.
    pub next_attempt_at: Option<u64>,
    pub created_at: String,
    /// Its place in the endpoint's log (epoch ms of its creation), fixed.
    pub created_ms: u64,
    /// The event's resource (its partition key) and version: deliveries of one resource to one
    /// endpoint go in version order.
    pub resource: String,
    pub resource_version: u64,
}

/// The namespace of delivery ids: one id per (endpoint, event), so that a repeated publication
/// finds the delivery it made.
const DELIVERY_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_0e2a_57c4_4d8e_9a3b_2c1d_0f4e_8a77);

impl Delivery {
    pub fn id_for(endpoint: Uuid, event_id: &str) -> Uuid {
        Uuid::new_v5(&DELIVERY_NAMESPACE, format!("{endpoint}/{event_id}").as_bytes())
    }

    /// The lane of its resource at its endpoint while it is pending (group slot 1).
    pub fn lane(&self) -> String {
        format!("{}#{}", self.endpoint_id, self.resource)
    }
}

impl Resource for Delivery {
    const KIND: Kind = Kind::new("DELIVERY", IdType::Uuid);

    fn id(&self) -> Id {
        Id::Uuid(self.id)
    }

    /// The endpoint's log.
    fn group(&self) -> Option<String> {
        Some(self.endpoint_id.to_string())
    }

    fn groups(&self) -> Result<Vec<Option<String>>, serde_json::Error> {
        let pending = self.status == DeliveryStatus::Pending;
        Ok(vec![self.group(), pending.then(|| self.lane())])
    }

    fn order(&self) -> String {
        format!("{:015}#{}", self.created_ms, self.id)
    }

    fn work_pending(&self) -> bool {
        self.status == DeliveryStatus::Pending
    }

    fn lease_ms(&self) -> Option<u64> {
        self.next_attempt_at
    }
}

/// What an attempt's answer means for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Disable the endpoint at once (`410 Gone`).
    Gone,
    /// Try again after this long, or give up (`None`: the schedule is spent).
    Retry(Option<Duration>),
}

/// The outcome of an attempt answered `status` (`None`: no answer: a timeout, a refused
/// connection or address) after `tries` earlier attempts, with its `Retry-After` delay.
pub fn outcome(status: Option<u16>, tries: u32, retry_after: Option<Duration>, schedule: &[Duration]) -> Outcome {
    match status {
        Some(200..=299) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        _ => {
            let next = schedule.get(tries as usize).copied();
            let asked = retry_after.filter(|_| matches!(status, Some(429 | 503)));
            Outcome::Retry(next.map(|delay| asked.unwrap_or(delay)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_spec_example_then_the_signature_is_standard_webhooks() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let header = signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = signature(&[secret, secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(two.split(' ').count(), 2);
    }

    #[test]
    fn given_urls_then_only_public_https_or_allowed_loopback_pass() {
        let strict = UrlRules { allow_loopback: false };
        let local = UrlRules { allow_loopback: true };
        assert!(strict.check("/url", "https://example.com/hook").is_ok());
        assert!(strict.check("/url", "https://93.184.216.34:8443/x").is_ok());
        for bad in [
            "http://example.com/",
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::127.0.0.1]/",
            "https://[::a9fe:a9fe]/",
            "https://[2002:a00:1::]/",
            "https://[2001::1]/",
            "https://[fec0::1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://224.0.0.1/",
            "https://user:pw@example.com/",
            "ftp://example.com/",
            "not a url",
            "",
        ] {
            assert!(strict.check("/url", bad).is_err(), "{bad}");
        }
        assert!(local.check("/url", "http://127.0.0.1:9000/hook").is_ok());
        assert!(local.check("/url", "http://10.0.0.1/").is_err(), "loopback only, never private");
        assert!(local.check("/url", "http://example.com/").is_ok(), "a name is checked once resolved");
        assert!(local.address_allowed("93.184.216.34".parse().unwrap(), false).is_err(), "http to a public address");
    }

    #[test]
    fn given_answers_then_the_schedule_and_retry_after_decide() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        assert_eq!(outcome(Some(204), 0, None, &schedule), Outcome::Delivered);
        assert_eq!(outcome(Some(410), 0, None, &schedule), Outcome::Gone);
        assert_eq!(outcome(Some(500), 0, None, &schedule), Outcome::Retry(Some(Duration::from_secs(5))));
        assert_eq!(outcome(None, 1, None, &schedule), Outcome::Retry(Some(Duration::from_secs(300))));
        assert_eq!(outcome(Some(500), 2, None, &schedule), Outcome::Retry(None));
        let asked = Some(Duration::from_secs(60));
        assert_eq!(outcome(Some(429), 0, asked, &schedule), Outcome::Retry(asked));
        assert_eq!(outcome(Some(500), 0, asked, &schedule), Outcome::Retry(Some(Duration::from_secs(5))));
        let now = time::macros::datetime!(2026-12-07 10:00:00 UTC);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Mon, 07 Dec 2026 10:01:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("999999999", now), Some(Duration::from_secs(86_400)));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(
            parse_schedule("1s,500ms,2m"),
            Some(vec![Duration::from_secs(1), Duration::from_millis(500), Duration::from_secs(120)])
        );
        for bad in ["", "1", "1x", "-1s", "2d", "25h"] {
            assert_eq!(parse_schedule(bad), None, "{bad}");
        }
        let total = failing_limit(&DEFAULT_SCHEDULE.map(Duration::from_secs));
        assert!(total > Duration::from_secs(3 * 86_400) && total < Duration::from_secs(4 * 86_400), "about three days");
    }

    #[test]
    fn a_rotation_keeps_the_old_secret_a_day_and_drops_expired_ones() {
        let first = Secrets { secrets: vec![Secret { secret: Secrets::secret_from(&[1; 32]), expires_at: None }] };
        let second = first.rotated(Secrets::secret_from(&[2; 32]), 1000);
        assert_eq!(second.signing(1000).len(), 2);
        assert_eq!(second.signing(1000 + ROTATION_OVERLAP_SECS).len(), 1);
        let third = second.rotated(Secrets::secret_from(&[3; 32]), 1000 + ROTATION_OVERLAP_SECS);
        assert_eq!(third.secrets.len(), 2, "the expired one is gone");
    }
}
