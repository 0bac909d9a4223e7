//! A webhook receiver on loopback for the event tests and `make bench-events`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

/// A receiver on a loopback port: every request recorded, answered by its path: `/hook` 200,
/// `/flaky` 500 twice then 200, `/busy` 429 with `Retry-After: 1` once then 200, `/gone` 410,
/// `/down` 500, `/redirect` 302 to `/hook`, `/slow` after 20 s, `/` an EventBridge PutEvents
/// success (the emulator test's stand-in for the bus), anything else 201.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self { addr: listener.local_addr().unwrap(), got: Arc::default() };
        let got = receiver.got.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let got = got.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let got = got.clone();
                    async move { Ok::<_, Infallible>(answer(&got, req).await) }
                });
                tokio::spawn(async move {
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn at(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Waits until `path` got at least `n` requests (60 s at most).
    pub async fn wait(&self, path: &str, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{path} got {} of {n} requests", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(
    got: &Mutex<Vec<Received>>,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    let path = req.uri().path().to_owned();
    let headers =
        req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    let body =
        String::from_utf8(req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default()).unwrap();
    let seen = {
        let mut got = got.lock().unwrap();
        got.push(Received { path: path.clone(), headers, body, at: Instant::now() });
        got.iter().filter(|r| r.path == path).count()
    };
    let text: &'static [u8] =
        if path == "/" { br#"{"FailedEntryCount":0,"Entries":[{"EventId":"e-1"}]}"# } else { b"ok" };
    let mut response = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from_static(text)));
    let status = match path.as_str() {
        "/hook" | "/" => 200,
        "/flaky" if seen <= 2 => 500,
        "/busy" if seen == 1 => {
            response.headers_mut().insert("retry-after", "1".parse().unwrap());
            429
        }
        "/gone" => 410,
        "/down" => 500,
        "/redirect" => {
            response.headers_mut().insert("location", "/hook".parse().unwrap());
            302
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(20)).await;
            200
        }
        "/flaky" | "/busy" => 200,
        _ => 201,
    };
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}
