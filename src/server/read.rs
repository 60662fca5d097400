//! Reads: one node answers, chosen so the client sees its own writes.
//!
//! Node order for a read:
//! 1. nodes that are up and *caught up*: they have applied every log entry
//!    that existed when the read arrived (within `read_lag_tolerance`), in
//!    random order. If none is caught up yet but some are up, wait briefly
//!    (bounded by `query_timeout`) for one to catch up: a healthy node applies
//!    a fresh write within milliseconds, and this is what makes a write's 2xx
//!    followed by a query see that write;
//! 2. then up nodes that lag (the answer carries `X-Inmate-Stale: true`);
//! 3. then nodes marked down, as a last resort (they may have just returned).
//!
//! Each try has `query_timeout` to produce response headers; a connection
//! error, timeout or 5xx moves on to the next node with the same buffered
//! body. The chosen node's response streams back as it arrives (chunked
//! results, CSV, msgpack, gzip), never buffered whole.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, header};
use http_body_util::BodyExt;
use rand::seq::SliceRandom;

use super::Gateway;
use super::request::ClientRequest;
use super::respond::{ApiError, Body, BoxError};
use crate::backend::Node;
use crate::backend::client::{self, Outgoing};

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1).
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "content-length"
            | "host"
            | "authorization"
    )
}

pub fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (k, v) in headers {
        if !hop_by_hop(k) {
            out.append(k.clone(), v.clone());
        }
    }
    out
}

/// A read whose body is buffered, sent to its own path.
pub async fn proxy_buffered(
    gw: &Arc<Gateway>,
    req: ClientRequest,
) -> Result<Response<Body>, ApiError> {
    let path = req.path.clone();
    proxy_as(gw, req, &path).await
}

/// A read sent to `path` (used for the original's misspelt aliases).
pub async fn proxy_as(
    gw: &Arc<Gateway>,
    mut req: ClientRequest,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let body = req.read_body(gw).await?;
    let query = req.query.clone();
    forward_read(gw, &req, path, &query, body).await
}

/// Orders the nodes for a read (see the module doc); the bool says "stale".
async fn candidates(gw: &Gateway) -> Vec<(Arc<Node>, bool)> {
    let target = gw
        .log
        .next_seq()
        .saturating_sub(gw.config.read_lag_tolerance);
    let caught_up = |n: &Node| n.acked() >= target;
    let mut fresh: Vec<Arc<Node>> = gw
        .nodes
        .iter()
        .filter(|n| n.health.is_up() && caught_up(n))
        .cloned()
        .collect();
    if fresh.is_empty() && target > 0 && gw.nodes.iter().any(|n| n.health.is_up()) {
        let wait = gw.config.query_timeout.min(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + wait;
        let ups: Vec<_> = gw
            .nodes
            .iter()
            .filter(|n| n.health.is_up())
            .cloned()
            .collect();
        let waits = ups.iter().map(|n| {
            Box::pin(async move {
                if n.wait_applied(target - 1, deadline).await {
                    Ok(())
                } else {
                    Err(())
                }
            })
        });
        let _wait = crate::metrics::read_wait();
        let _ = futures_util::future::select_ok(waits).await;
        fresh = gw
            .nodes
            .iter()
            .filter(|n| n.health.is_up() && caught_up(n))
            .cloned()
            .collect();
    }
    fresh.shuffle(&mut rand::rng());
    let mut stale: Vec<Arc<Node>> = gw
        .nodes
        .iter()
        .filter(|n| n.health.is_up() && !fresh.iter().any(|f| Arc::ptr_eq(f, n)))
        .cloned()
        .collect();
    stale.shuffle(&mut rand::rng());
    let down = gw.nodes.iter().filter(|n| !n.health.is_up()).cloned();
    fresh
        .into_iter()
        .map(|n| (n, false))
        .chain(stale.into_iter().map(|n| (n, true)))
        .chain(down.map(|n| (n, true)))
        .collect()
}

/// Sends a read to one node after another until one answers below 500.
pub async fn forward_read(
    gw: &Gateway,
    req: &ClientRequest,
    path: &str,
    query: &str,
    body: Bytes,
) -> Result<Response<Body>, ApiError> {
    let headers = forwardable(&req.headers);
    let gzipped = req
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let method = if req.method == Method::HEAD {
        "HEAD"
    } else {
        req.method.as_str()
    };
    let mut errors = Vec::new();
    let mut last_5xx: Option<Response<Body>> = None;
    for (node, stale) in candidates(gw).await {
        let out = Outgoing {
            method,
            path,
            query,
            auth: req.client_auth.as_deref(),
            headers: &headers,
            body: body.clone().into(),
            gzipped,
        };
        let http_req =
            client::build(&node.config, &out).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        match client::send(&gw.http, http_req, gw.config.query_timeout).await {
            Ok(resp) if !resp.status().is_server_error() => {
                crate::metrics::read_served(stale);
                return Ok(stream_back(resp, node.name(), stale));
            }
            Ok(resp) => {
                let msg = format!("{} answered {}", node.name(), resp.status());
                node.health.failure(&msg);
                tracing::warn!(node = %node.name(), status = resp.status().as_u16(), "read failed; trying next node");
                errors.push(msg);
                last_5xx = Some(stream_back(resp, node.name(), stale));
            }
            Err(e) => {
                let msg = format!("{}: {e}", node.name());
                if node.health.failure(&msg) {
                    tracing::warn!(node = %node.name(), error = %e, "node is down");
                }
                tracing::warn!(node = %node.name(), error = %e, "read failed; trying next node");
                errors.push(msg);
            }
        }
        crate::metrics::read_fallback(node.name());
    }
    last_5xx.ok_or_else(|| ApiError::NoNode(errors.join("; ")))
}

/// Streams a node's response back: status, headers and body as sent.
pub fn stream_back(
    resp: Response<hyper::body::Incoming>,
    node: &str,
    stale: bool,
) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let body: Body = body.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync();
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) || k == header::CONTENT_LENGTH {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    if let Ok(v) = HeaderValue::from_str(node) {
        out.headers_mut().insert("x-inmate-node", v);
    }
    if stale {
        out.headers_mut()
            .insert("x-inmate-stale", HeaderValue::from_static("true"));
    }
    out
}
