//! The authorizer on real HTTP API authorizer events (payload 2.0), for every case of
//! docs/auth.md: HS256, RS256 and ES256 tokens (the RSA and EC keys generated here and
//! served as a JWKS by a local HTTP server), expiry and leeway, `nbf`, issuer and audience,
//! `alg: none` and algorithm confusion, key rotation, a JWKS that is down, too large or silent, API keys valid, unknown,
//! revoked and expired, and each route family taking only its kind of credential.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use shared::auth::{authorize_event, AuthConfig, AuthorizerRequest, Verifier};
use shared::domain::identity::Principal;
use shared::store::memory::MemoryStore;
use shared::store::{now_epoch, SharedRepository};

const SECRET: &[u8] = b"hs256-test-secret";

/// A JWKS served on a loopback port; it can change its keys or go down.
struct Jwks {
    url: String,
    document: Arc<Mutex<Value>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(document: Value) -> Jwks {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/.well-known/jwks.json", listener.local_addr().unwrap());
    let document = Arc::new(Mutex::new(document));
    let (down, fetches) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (doc, is_down, count) = (document.clone(), down.clone(), fetches.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (doc, is_down, count) = (doc.clone(), is_down.clone(), count.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = if is_down.load(Ordering::SeqCst) {
                        (503, String::new())
                    } else {
                        (200, doc.lock().unwrap().to_string())
                    };
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder().status(status).body(Full::new(Bytes::from(body))).unwrap(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Jwks { url, document, down, fetches }
}

struct Keys {
    rsa: EncodingKey,
    rsa_jwk: Value,
    ec: EncodingKey,
    ec_jwk: Value,
}

fn rsa_key(kid: &str) -> (EncodingKey, Value) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let der = key.to_pkcs1_der().unwrap();
    let jwk = json!({
        "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()), "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    });
    (EncodingKey::from_rsa_der(der.as_bytes()), jwk)
}

fn ec_key(kid: &str) -> (EncodingKey, Value) {
    use p256::pkcs8::EncodePrivateKey;
    let secret = p256::SecretKey::random(&mut rand::thread_rng());
    let der = secret.to_pkcs8_der().unwrap();
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES256");
    (EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

fn keys() -> Keys {
    let (rsa, rsa_jwk) = rsa_key("rsa-1");
    let (ec, ec_jwk) = ec_key("ec-1");
    Keys { rsa, rsa_jwk, ec, ec_jwk }
}

fn claims(exp_in: i64) -> Value {
    json!({"sub": "user-7", "uid": 7, "tenants": ["acme"], "scope": "billing:read billing:write", "exp": now_epoch() + exp_in})
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs256(claims: &Value) -> String {
    sign(Algorithm::HS256, None, &EncodingKey::from_secret(SECRET), claims)
}

fn config(jwks: Option<&Jwks>) -> AuthConfig {
    AuthConfig {
        jwt_secret: Some(SECRET.to_vec()),
        jwks_url: jwks.map(|j| j.url.clone()),
        jwks_ttl: Duration::from_secs(600),
        jwks_refresh: Duration::from_secs(60),
        issuer: None,
        audience: None,
        api_key_cache: shared::auth::API_KEY_CACHE,
    }
}

/// A key issued as `billflow-admin` and `POST /api-keys` issue them, good for `life` when given.
fn issued(caller: &Principal, life: Option<Duration>) -> shared::api_keys::Issued {
    let new = shared::api_keys::NewKey { caller: caller.clone(), description: None, expires_in: life };
    new.issue().expect("a valid key")
}

/// A real authorizer event (payload 2.0) for `route_key` with these credential headers.
fn event(route_key: &str, headers: &[(&str, &str)]) -> AuthorizerRequest {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/events/authorizer.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["routeKey"] = json!(route_key);
    let map = event["headers"].as_object_mut().unwrap();
    map.remove("authorization");
    for (name, value) in headers {
        map.insert((*name).to_owned(), json!(value));
    }
    serde_json::from_value(event).expect("a valid authorizer event")
}

async fn allowed(verifier: &Verifier, route_key: &str, headers: &[(&str, &str)]) -> Option<Value> {
    let response = authorize_event(verifier, &event(route_key, headers)).await;
    response.is_authorized.then_some(response.context)
}

async fn bearer(verifier: &Verifier, token: &str) -> Option<Value> {
    allowed(verifier, "GET /bill-runs/{bill_run_id}", &[("authorization", &format!("Bearer {token}"))]).await
}

fn store() -> SharedRepository {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn tokens_of_each_algorithm_are_verified_and_their_claims_become_the_context() {
    let keys = keys();
    let jwks = serve_jwks(json!({"keys": [keys.rsa_jwk, keys.ec_jwk]})).await;
    let verifier = Verifier::new(config(Some(&jwks)), store());
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 0, "nothing is fetched before a request needs it");
    let context = bearer(&verifier, &hs256(&claims(300))).await.expect("HS256");
    assert_eq!(
        context,
        json!({"userId": 7, "tenants": ["acme"], "scopes": ["billing:read", "billing:write"], "authType": "jwt"})
    );
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 0, "HS256 needs no JWKS");
    assert!(
        bearer(&verifier, &sign(Algorithm::RS256, Some("rsa-1"), &keys.rsa, &claims(300))).await.is_some(),
        "RS256"
    );
    assert!(bearer(&verifier, &sign(Algorithm::ES256, Some("ec-1"), &keys.ec, &claims(300))).await.is_some(), "ES256");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "the JWKS is cached");
    // Tampered, wrongly signed, or naming a key of another family: refused.
    let token = hs256(&claims(300));
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert!(bearer(&verifier, &tampered).await.is_none());
    assert!(bearer(&verifier, &sign(Algorithm::HS256, None, &EncodingKey::from_secret(b"other"), &claims(300)))
        .await
        .is_none());
    assert!(bearer(&verifier, &sign(Algorithm::RS256, Some("ec-1"), &keys.rsa, &claims(300))).await.is_none());
    assert!(bearer(&verifier, &sign(Algorithm::RS256, None, &keys.rsa, &claims(300))).await.is_none(), "no kid");
}

#[tokio::test]
async fn expiry_leeway_nbf_issuer_and_audience_are_checked() {
    let verifier = Verifier::new(config(None), store());
    assert!(bearer(&verifier, &hs256(&claims(-120))).await.is_none(), "expired");
    assert!(bearer(&verifier, &hs256(&claims(-10))).await.is_some(), "within the leeway of 30 s");
    let mut no_exp = claims(0);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(bearer(&verifier, &hs256(&no_exp)).await.is_none(), "exp is required");
    let mut early = claims(300);
    early["nbf"] = json!(now_epoch() + 120);
    assert!(bearer(&verifier, &hs256(&early)).await.is_none(), "not yet valid");
    let mut marked = claims(300);
    marked["iss"] = json!("https://idp.example");
    marked["aud"] = json!("someone");
    let mut only_aud = claims(300);
    only_aud["aud"] = json!("billflow");
    assert!(bearer(&verifier, &hs256(&marked)).await.is_some(), "iss and aud are not checked when not configured");

    let strict = Verifier::new(
        AuthConfig { issuer: Some("https://idp.example".into()), audience: Some("billflow".into()), ..config(None) },
        store(),
    );
    assert!(bearer(&strict, &hs256(&marked)).await.is_none(), "wrong audience");
    marked["aud"] = json!("billflow");
    assert!(bearer(&strict, &hs256(&marked)).await.is_some());
    marked["iss"] = json!("https://evil.example");
    assert!(bearer(&strict, &hs256(&marked)).await.is_none(), "wrong issuer");
    assert!(bearer(&strict, &hs256(&claims(300))).await.is_none(), "neither issuer nor audience");
    assert!(bearer(&strict, &hs256(&only_aud)).await.is_none(), "an audience but no issuer");
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused() {
    let keys = keys();
    let jwks = serve_jwks(json!({"keys": [keys.rsa_jwk.clone()]})).await;
    let verifier = Verifier::new(config(Some(&jwks)), store());
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!("{}.{}.", part(&json!({"alg": "none", "typ": "JWT"})), part(&claims(300)));
    assert!(bearer(&verifier, &unsigned).await.is_none(), "alg none");
    // HS256 "signed" with the RSA public key (as a confused verifier would check it).
    let public = keys.rsa_jwk["n"].as_str().unwrap().as_bytes().to_vec();
    let confused = sign(Algorithm::HS256, Some("rsa-1"), &EncodingKey::from_secret(&public), &claims(300));
    assert!(bearer(&verifier, &confused).await.is_none(), "algorithm confusion");
    for junk in ["", "x", "a.b.c", "Basic dXNlcjpwYXNz"] {
        assert!(bearer(&verifier, junk).await.is_none(), "{junk:?}");
    }
    let basic = allowed(&verifier, "GET /bill-runs/{bill_run_id}", &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert!(basic.is_none(), "a malformed header denies");
    // Without a secret every HS256 token is refused; without a JWKS every RS256/ES256 one.
    let no_secret = Verifier::new(AuthConfig { jwt_secret: None, ..config(Some(&jwks)) }, store());
    assert!(bearer(&no_secret, &hs256(&claims(300))).await.is_none());
    let no_jwks = Verifier::new(config(None), store());
    assert!(bearer(&no_jwks, &sign(Algorithm::RS256, Some("rsa-1"), &keys.rsa, &claims(300))).await.is_none());
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_at_most_once_a_minute_and_a_jwks_that_is_down_denies() {
    let keys = keys();
    let jwks = serve_jwks(json!({"keys": [keys.rsa_jwk.clone()]})).await;
    // The rotated key is made first: making one takes longer than the test's refresh interval.
    let (rotated, rotated_jwk) = rsa_key("rsa-2");
    let verifier =
        Verifier::new(AuthConfig { jwks_refresh: Duration::from_millis(300), ..config(Some(&jwks)) }, store());
    assert!(bearer(&verifier, &sign(Algorithm::RS256, Some("rsa-1"), &keys.rsa, &claims(300))).await.is_some());
    // The issuer rotates to a new key.
    *jwks.document.lock().unwrap() = json!({"keys": [keys.rsa_jwk.clone(), rotated_jwk]});
    let new_token = sign(Algorithm::RS256, Some("rsa-2"), &rotated, &claims(300));
    assert!(bearer(&verifier, &new_token).await.is_none(), "too soon after the last fetch to fetch again");
    assert!(bearer(&verifier, &new_token).await.is_none());
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "unknown kids do not hammer the JWKS");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(bearer(&verifier, &new_token).await.is_some(), "after the interval the new key is fetched");
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);

    // A JWKS that cannot be fetched denies RS256 and ES256, never allows; HS256 is unaffected.
    let down = Verifier::new(AuthConfig { jwks_ttl: Duration::ZERO, ..config(Some(&jwks)) }, store());
    jwks.down.store(true, Ordering::SeqCst);
    assert!(bearer(&down, &sign(Algorithm::RS256, Some("rsa-1"), &keys.rsa, &claims(300))).await.is_none());
    assert!(bearer(&down, &hs256(&claims(300))).await.is_some());
    let unreachable =
        Verifier::new(AuthConfig { jwks_url: Some("http://127.0.0.1:9/jwks.json".into()), ..config(None) }, store());
    assert!(bearer(&unreachable, &sign(Algorithm::RS256, Some("rsa-1"), &keys.rsa, &claims(300))).await.is_none());
}

#[tokio::test]
async fn a_jwks_too_large_or_that_never_answers_denies_and_frees_the_authorizer() {
    let keys = keys();
    let token = sign(Algorithm::RS256, Some("rsa-1"), &keys.rsa, &claims(300));
    // The key is there, but the document is over the 256 KiB a JWKS may be.
    let padding = "x".repeat(300 * 1024);
    let large = serve_jwks(json!({"keys": [keys.rsa_jwk.clone()], "padding": padding})).await;
    let verifier = Verifier::new(config(Some(&large)), store());
    assert!(bearer(&verifier, &token).await.is_none(), "a JWKS over 256 KiB is not read");
    *large.document.lock().unwrap() = json!({"keys": [keys.rsa_jwk.clone()]});
    let verifier = Verifier::new(config(Some(&large)), store());
    assert!(bearer(&verifier, &token).await.is_some(), "the same key in a small JWKS verifies");

    // A server that accepts the connection and never answers: the fetch gives up after 3 s.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let silent = Verifier::new(AuthConfig { jwks_url: Some(url), ..config(None) }, store());
    let answer = tokio::time::timeout(Duration::from_secs(10), bearer(&silent, &token)).await;
    assert_eq!(answer.expect("the authorizer answers though the JWKS never does"), None);
}

#[tokio::test]
async fn api_keys_valid_unknown_revoked_and_expired() {
    let store = store();
    let caller = Principal { user_id: 9, tenants: vec!["acme".into()], scopes: vec!["billing:read".into()] };
    let valid = issued(&caller, None);
    let key = valid.key.clone();
    assert!(key.starts_with("bfk_") && key.len() >= 4 + 32, "at least 128 bits");
    store.put_api_key(&valid.record).await.unwrap();
    let mut expired = issued(&caller, Some(Duration::from_secs(1)));
    let old = expired.key.clone();
    expired.record.expires_at = Some(now_epoch() - 1);
    store.put_api_key(&expired.record).await.unwrap();
    let verifier = Verifier::new(config(None), store.clone());
    async fn keyed(verifier: &Verifier, key: &str) -> Option<Value> {
        allowed(verifier, "GET /bills/{billId}", &[("x-api-key", key)]).await
    }
    assert_eq!(
        keyed(&verifier, &key).await,
        Some(json!({"userId": 9, "tenants": ["acme"], "scopes": ["billing:read"], "authType": "apiKey"}))
    );
    assert!(keyed(&verifier, "bfk_unknown").await.is_none());
    assert!(keyed(&verifier, &old).await.is_none(), "expired");
    assert!(keyed(&verifier, "").await.is_none());
    // Revoked: a fresh verifier (another process, or after the 60 s cache) refuses it.
    store.revoke_api_key(&valid.record, now_epoch()).await.unwrap();
    let fresh = Verifier::new(config(None), store.clone());
    assert!(allowed(&fresh, "GET /bills/{billId}", &[("x-api-key", &key)]).await.is_none(), "revoked");
    assert!(keyed(&verifier, &key).await.is_some(), "the cache keeps a lookup for its TTL");
    let uncached = Verifier::new(AuthConfig { api_key_cache: Duration::ZERO, ..config(None) }, store.clone());
    assert!(allowed(&uncached, "GET /bills/{billId}", &[("x-api-key", &key)]).await.is_none());
}

#[tokio::test]
async fn each_route_family_takes_only_its_kind_of_credential() {
    let store = store();
    let caller = Principal { user_id: 9, tenants: vec!["acme".into()], scopes: vec!["billing:read".into()] };
    let issued = issued(&caller, None);
    let key = issued.key.clone();
    store.put_api_key(&issued.record).await.unwrap();
    let verifier = Verifier::new(config(None), store);
    let token = format!("Bearer {}", hs256(&claims(300)));
    for route in ["GET /bill-runs", "PUT /billingRuns/{tenantId}/{id}", "POST /adjust-bill-run-schedule/{bill_run_id}"]
    {
        assert!(allowed(&verifier, route, &[("authorization", &token)]).await.is_some(), "{route}");
        assert!(allowed(&verifier, route, &[("x-api-key", &key)]).await.is_none(), "{route} takes no API key");
    }
    for route in ["GET /bills", "DELETE /bills/{billId}"] {
        assert!(allowed(&verifier, route, &[("x-api-key", &key)]).await.is_some(), "{route}");
        assert!(allowed(&verifier, route, &[("authorization", &token)]).await.is_none(), "{route} takes no token");
    }
    assert!(allowed(&verifier, "GET /nowhere", &[("authorization", &token)]).await.is_none(), "an unknown route");
    assert!(allowed(&verifier, "GET /bills", &[]).await.is_none(), "no credential");
}
