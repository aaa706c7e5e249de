//! An HTTP server on loopback that records every request, as a webhook's receiver would see
//! it, and answers each with a status the test chooses.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl ReceivedRequest {
    /// Header `name` as text, empty when absent.
    #[must_use]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Chooses the status of a request from how many earlier requests had the same value of the
/// header the receiver was started with (a delivery id: "fail twice, then succeed").
pub type Answer = fn(usize) -> u16;

/// The running receiver; it stops with the test's runtime.
pub struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl Receiver {
    /// Starts a receiver that answers with `answer(earlier requests with the same `key_header`)`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(key_header: &'static str, answer: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("address");
        let received: Arc<Mutex<Vec<ReceivedRequest>>> = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let log = Arc::clone(&log);
                    async move {
                        let path = request.uri().path().to_owned();
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await?.to_bytes();
                        let request = ReceivedRequest {
                            path,
                            headers,
                            body,
                        };
                        let status = {
                            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                            let key = request.header(key_header);
                            let earlier =
                                log.iter().filter(|r| r.header(key_header) == key).count();
                            log.push(request);
                            answer(earlier)
                        };
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                                .body(Full::new(Bytes::from_static(b"ok")))
                                .expect("a response"),
                        )
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, received }
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:{port}{path}`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request so far, in arrival order.
    #[must_use]
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
