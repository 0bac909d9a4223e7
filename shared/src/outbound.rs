//! Outbound HTTP: the one client deliveries are sent with (webhooks and the TMF678 hub). It
//! connects only to addresses the URL rules allow ([`UrlRules`]): a host's name is resolved by
//! [`CheckedResolver`] and every address it resolves to is checked at each connection (DNS can
//! change after an endpoint was registered), redirects are never followed (a 3xx is a failed
//! attempt), an attempt takes at most 15 s, and at most 64 KB of a response is read, then
//! dropped. Built once per process, on first use.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::domain::webhook::{UrlRules, ATTEMPT_TIMEOUT, MAX_RESPONSE_BYTES};

/// How long a name's resolution may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The URL rules of this process: loopback is allowed where `WEBHOOK_ALLOW_LOOPBACK=true` (the
/// dev server's default, never the template's).
pub fn url_rules() -> UrlRules {
    static RULES: std::sync::OnceLock<UrlRules> = std::sync::OnceLock::new();
    *RULES.get_or_init(|| UrlRules {
        allow_loopback: std::env::var("WEBHOOK_ALLOW_LOOPBACK").is_ok_and(|v| v.eq_ignore_ascii_case("true")),
    })
}

/// The addresses `host` resolves to, each allowed by `rules` (for `https` or not); an error names
/// the first address refused, or the failed resolution.
pub async fn resolve_checked(host: &str, port: u16, rules: UrlRules, https: bool) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        rules.address_allowed(ip, https)?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("{host} did not resolve within 2 s"))?
        .map_err(|e| format!("{host} does not resolve: {e}"))?;
    let addresses: Vec<SocketAddr> = found.collect();
    if addresses.is_empty() {
        return Err(format!("{host} resolves to no address"));
    }
    for address in &addresses {
        rules.address_allowed(address.ip(), https).map_err(|why| format!("{host} {why}"))?;
    }
    Ok(addresses)
}

/// The connector's resolver: [`resolve_checked`] at every connection.
#[derive(Clone, Copy)]
pub struct CheckedResolver {
    rules: UrlRules,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let rules = self.rules;
        Box::pin(async move {
            // The scheme was checked with the URL; here every address must be one a delivery may reach.
            let addresses = resolve_checked(name.as_str(), 0, rules, true).await.map_err(std::io::Error::other)?;
            Ok(addresses.into_iter())
        })
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

/// A POST's answer: the status (or why there was none) and `Retry-After`, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub retry_after: Option<String>,
    pub duration_ms: u64,
}

/// The delivery client.
#[derive(Clone)]
pub struct Outbound {
    client: Arc<HttpsClient>,
    rules: UrlRules,
}

impl Outbound {
    /// The process's client, built on first use (its TLS set-up loads the system's roots).
    pub fn shared() -> Result<Self, String> {
        static CLIENT: std::sync::OnceLock<Result<Outbound, String>> = std::sync::OnceLock::new();
        CLIENT.get_or_init(|| Self::new(url_rules())).clone()
    }

    fn new(rules: UrlRules) -> Result<Self, String> {
        use hyper_rustls::ConfigBuilderExt;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_native_roots()
            .map_err(|e| e.to_string())?
            .with_no_client_auth();
        let mut http = HttpConnector::new_with_resolver(CheckedResolver { rules });
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let connector =
            HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Ok(Self { client: Arc::new(client), rules })
    }

    /// POSTs `body` to `url` with `headers`, within [`ATTEMPT_TIMEOUT`]: the URL is checked against
    /// the rules again, its host's addresses too, and the answer's body is read to at most
    /// [`MAX_RESPONSE_BYTES`] and dropped.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: String) -> Answer {
        let started = Instant::now();
        let result = tokio::time::timeout(ATTEMPT_TIMEOUT, self.attempt(url, headers, body)).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(Ok((status, retry_after))) => Answer { status: Some(status), error: None, retry_after, duration_ms },
            Ok(Err(error)) => Answer { status: None, error: Some(error), retry_after: None, duration_ms },
            Err(_) => {
                Answer { status: None, error: Some("timed out after 15 s".into()), retry_after: None, duration_ms }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<(u16, Option<String>), String> {
        let target = self.rules.check("/url", url).map_err(|e| e.to_string())?;
        resolve_checked(&target.host, target.port, self.rules, target.https).await?;
        let mut request = lambda_http::http::Request::post(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let response = self.client.request(request).await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = response.into_body();
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
        Ok((status, retry_after))
    }
}

/// A client error with its causes (a refused address says so).
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
