//! Serving `/metrics`: on the main port (a route like any other, so the
//! gateway token applies) and on the optional `metrics_bind` listener.
//!
//! The separate listener exists so Prometheus can scrape without holding the
//! gateway token: bind it to a private interface. It answers `GET /metrics`
//! (and `/`, for a browser) and 404 otherwise, and knows nothing else of the
//! gateway: no token, no proxying, no request bodies.

use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::render;
use crate::server::Gateway;
use crate::server::respond::{self, Body};

/// The Prometheus text format's media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(respond::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

/// `/metrics` on the main port, priced from `gw`.
pub fn response(gw: &Gateway) -> Response<Body> {
    text(StatusCode::OK, render(Some(gw)))
}

async fn answer(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    Ok(match req.uri().path() {
        "/metrics" | "/" if get => text(StatusCode::OK, render(None)),
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics\n".into()),
    })
}

/// Serves `/metrics` without a token on `listener` (bound to `metrics_bind`)
/// for every attached gateway; runs until the task is dropped.
pub async fn serve_metrics(listener: TcpListener) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(addr = %addr, "metrics endpoint bound");
    }
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::error!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer));
            let _ = conn.await;
        });
    }
}
