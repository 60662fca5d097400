//! Reads: one node answers, chosen so the client sees its own writes
//! without waiting for writes it cannot see.
//!
//! What the read must see depends on its consistency (config
//! `read_consistency`, or per request the `X-Inmate-Read-Consistency`
//! header: `fresh`, `scoped` or `any`):
//! - `scoped` (default): the entries touching what it reads, its
//!   [`Scope`]: the last write or mutation of each database it names (`db=`,
//!   `"db"."rp"."m"`, `ON db`, Flux `bucket:`) and the last change to what
//!   exists (CREATE/DROP DATABASE, retention policies, users). A read that
//!   names no database waits for the latter only; one that cannot be
//!   attributed waits for the whole log. The watermarks are recorded when
//!   the entry is appended ([`crate::backend::cluster::Watermarks`]);
//! - `fresh`: every entry appended before the read arrived (within
//!   `read_lag_tolerance`);
//! - `any`: like `fresh`, but never waits.
//!
//! If no node that may take reads has applied that yet, the read waits up to
//! `read_wait` for one to; then the order is
//! [`crate::backend::cluster::Cluster::read_order`]: a node that has, chosen
//! by load (in-flight reads and latency), else the freshest up node, whose
//! answer carries `X-Inmate-Stale: true`, else nodes marked down.
//!
//! Each try has `query_timeout` to produce response headers; a connection
//! error, timeout or 5xx moves on to the next node with the same buffered
//! body (a `Bytes` handle, never copied). Before the headers are committed,
//! up to 64 KiB of the answer is read (or what arrives within the same
//! `query_timeout`): an answer that breaks in that window (a node cutting
//! bodies short after the headers) counts as a failure and the read moves
//! on, so short answers never reach the client broken. The rest streams back
//! as it arrives (chunked results, CSV, msgpack, gzip), never buffered
//! whole; a break there cannot be undone but still counts against the
//! node's health. The node counts the read as in flight until its body is
//! done.
//!
//! Plain-http nodes are read through their own lean client
//! ([`crate::backend::h1`]: the exchange runs in this task, on a pooled
//! keep-alive connection, with no spawned connection task or channels;
//! the wakeups those cost were a fifth of the gateway's CPU under idle
//! reads); https nodes through the shared hyper client
//! ([`crate::backend::client`]). Both bodies are handled alike from the
//! headers on.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method, Response, header};
use http_body_util::{BodyExt, BodyStream, Either, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;

use super::Gateway;
use super::auth::{self, Access};
use super::request::ClientRequest;
use super::respond::{ApiError, Body, BoxError};
use crate::backend::Node;
use crate::backend::client::{self, Outgoing, SendError};
use crate::backend::cluster::{InFlight, Scope};
use crate::backend::h1::LeanBody;
use crate::config::{Choice, ReadConsistency};

/// The per-request override of `read_consistency`.
const CONSISTENCY_HEADER: &str = "x-inmate-read-consistency";

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus
/// the ones each hop sets itself.
const HOP_BY_HOP: [&str; 12] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
    "host",
    "authorization",
];

fn hop_by_hop(name: &header::HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
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
    let scope = if path == "/api/v2/query" {
        let json = req.content_type().is_some_and(|c| c.contains("json"));
        Scope::of_v2_query(&body, json)
    } else {
        Scope::Global
    };
    if path == "/api/v2/query" {
        auth::check(req.principal.as_deref(), Access::Read, &scope).map_err(ApiError::Forbidden)?;
    }
    forward_read(gw, &req, path, &req.query, body, scope).await
}

/// The sequence a node must have applied to answer a read of `scope`
/// fresh, and whether the read may wait for one.
fn needed(gw: &Gateway, mode: ReadConsistency, scope: &Scope) -> (Option<u64>, bool) {
    let last = gw.log.next_seq().checked_sub(1);
    let within_tolerance = last.and_then(|l| l.checked_sub(gw.config.read_lag_tolerance));
    match mode {
        ReadConsistency::Fresh => (within_tolerance, true),
        ReadConsistency::Any => (within_tolerance, false),
        ReadConsistency::Scoped if *scope == Scope::All => (within_tolerance, true),
        ReadConsistency::Scoped => (gw.cluster.marks().needed(scope, last), true),
    }
}

/// The read's consistency: the request's header, else the configured one.
fn consistency(gw: &Gateway, req: &ClientRequest) -> Result<ReadConsistency, ApiError> {
    match req.headers.get(CONSISTENCY_HEADER) {
        None => Ok(gw.config.read_consistency),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| ReadConsistency::parse(&v.trim().to_ascii_lowercase()))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "invalid {CONSISTENCY_HEADER} (use fresh, scoped or any)"
                ))
            }),
    }
}

/// Sends a read to one node after another until one answers below 500.
pub async fn forward_read(
    gw: &Gateway,
    req: &ClientRequest,
    path: &str,
    query: &str,
    body: Bytes,
    scope: Scope,
) -> Result<Response<Body>, ApiError> {
    let (target, may_wait) = needed(gw, consistency(gw, req)?, &scope);
    let accept = |n: &Node| target.is_none_or(|t| n.applied_through(t));
    if may_wait
        && let Some(t) = target
        && !gw.cluster.any_reader(accept)
        && gw.cluster.any_reader(|_| true)
    {
        let deadline = tokio::time::Instant::now() + gw.config.read_wait;
        let _wait = crate::metrics::read_wait();
        gw.cluster.wait_for_reader(t, deadline).await;
    }
    // [`client::build`] drops Host, Authorization and Content-Length
    // itself: copy the client's headers only to drop other hop-by-hop ones.
    let copied;
    let headers = if req.headers.keys().any(|k| {
        hop_by_hop(k)
            && k != header::HOST
            && k != header::AUTHORIZATION
            && k != header::CONTENT_LENGTH
    }) {
        copied = forwardable(&req.headers);
        &copied
    } else {
        &req.headers
    };
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
    for (node, stale) in gw.cluster.read_order(accept) {
        let out = Outgoing {
            method,
            path,
            query,
            auth: req.client_auth.as_deref(),
            headers,
            body: body.clone().into(),
            gzipped,
        };
        let http_req =
            client::build(&node.config, &out).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut flight = InFlight::begin(&node);
        let deadline = tokio::time::Instant::now() + gw.config.query_timeout;
        let sent = send(gw, &node, http_req).await;
        flight.answered();
        let failure = match sent {
            Ok(resp) if !resp.status().is_server_error() => {
                let (parts, incoming) = resp.into_parts();
                match prefetch(incoming, deadline).await {
                    Ok(head) => {
                        crate::metrics::read_served(stale);
                        let body = head.into_body(node.clone(), flight);
                        let resp = Response::from_parts(parts, body);
                        return Ok(stream_back(resp, node.name(), stale));
                    }
                    Err(e) => format!("{}: read body broke: {e}", node.name()),
                }
            }
            Ok(resp) => {
                let msg = format!("{} answered {}", node.name(), resp.status());
                let resp = resp.map(BodyExt::boxed_unsync);
                last_5xx = Some(stream_back(resp, node.name(), stale));
                msg
            }
            Err(e) => format!("{}: {e}", node.name()),
        };
        if node.health.failure(&failure) {
            tracing::warn!(node = %node.name(), error = %failure, "node is down");
        }
        tracing::warn!(node = %node.name(), error = %failure, "read failed; trying next node");
        errors.push(failure);
        crate::metrics::read_fallback(node.name());
    }
    last_5xx.ok_or_else(|| ApiError::NoNode(errors.join("; ")))
}

/// A node's response body: from [`crate::backend::h1`] for plain-http
/// nodes, from the hyper client for https ones.
type NodeBody = Either<LeanBody, Incoming>;

/// Sends one read to `node` with `query_timeout` on the response headers:
/// plain-http nodes through their lean in-task client
/// ([`crate::backend::h1`]), https
/// ones through the shared hyper client.
async fn send(
    gw: &Gateway,
    node: &Node,
    req: http::Request<client::Chunks>,
) -> Result<Response<NodeBody>, SendError> {
    let timeout = gw.config.query_timeout;
    if node.config.url.scheme() == "http" {
        match tokio::time::timeout(timeout, node.h1.send(req)).await {
            Err(_) => Err(SendError::Timeout(timeout)),
            Ok(sent) => sent.map(|r| r.map(Either::Left)),
        }
    } else {
        let resp = client::send(&gw.http, req, timeout).await?;
        Ok(resp.map(Either::Right))
    }
}

/// How much of a read's answer is held back before its headers are sent:
/// a short answer that breaks within it can still go to another node.
const PREFETCH_BYTES: usize = 64 * 1024;

/// The start of a node's response body, read before committing to the node.
struct Prefetched {
    frames: Vec<Frame<Bytes>>,
    /// The unread rest; `None` when the body ended within the prefetch.
    rest: Option<NodeBody>,
}

/// Reads up to [`PREFETCH_BYTES`] of `body`, or until it ends, or until
/// `deadline` (a slow stream is then committed with what has arrived). A
/// body that breaks in that window is an error: the caller tries the next
/// node, the client has seen nothing.
async fn prefetch(
    mut body: NodeBody,
    deadline: tokio::time::Instant,
) -> Result<Prefetched, BoxError> {
    let mut frames = Vec::new();
    let mut size = 0;
    while size < PREFETCH_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => break,
            Ok(None) => return Ok(Prefetched { frames, rest: None }),
            Ok(Some(frame)) => {
                let frame = frame?;
                size += frame.data_ref().map_or(0, Bytes::len);
                frames.push(frame);
            }
        }
    }
    Ok(Prefetched {
        frames,
        rest: Some(body),
    })
}

impl Prefetched {
    /// The whole body: the prefetched frames, then the rest as it arrives.
    /// It holds `flight` until done or dropped; a break in the rest counts
    /// against `node`'s health (passive check), as a failed request would.
    fn into_body(self, node: Arc<Node>, flight: InFlight) -> Body {
        let head = futures_util::stream::iter(self.frames.into_iter().map(Ok::<_, BoxError>));
        let Some(rest) = self.rest else {
            drop(flight);
            return StreamBody::new(head).boxed_unsync();
        };
        let rest = TryStreamExt::map_err(BodyStream::new(rest), move |e| -> BoxError {
            let _in_flight = &flight;
            let msg = format!("{}: read body broke: {e}", node.name());
            if node.health.failure(&msg) {
                tracing::warn!(node = %node.name(), error = %msg, "node is down");
            }
            e
        });
        StreamBody::new(head.chain(rest)).boxed_unsync()
    }
}

/// Sends a node's response back: status, headers and body as sent, minus
/// hop-by-hop headers, plus `X-Inmate-Node` (and `X-Inmate-Stale`).
pub fn stream_back(resp: Response<Body>, node: &str, stale: bool) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    // The node's headers are reused in place (no copy); only hop-by-hop
    // ones are dropped, and only when there are any.
    // Removed by the names present (usually one: `connection` or
    // `transfer-encoding`), not by trying all twelve: a removal by `&str`
    // parses the name first (~270 instructions each, BENCHMARKS 8).
    let headers = &mut parts.headers;
    let drop: Vec<header::HeaderName> = headers
        .keys()
        .filter(|k| hop_by_hop(k) && *k != header::CONTENT_LENGTH)
        .cloned()
        .collect();
    for name in &drop {
        headers.remove(name);
    }
    parts.version = http::Version::HTTP_11;
    parts.extensions.clear();
    let mut out = Response::from_parts(parts, body);
    if let Ok(v) = HeaderValue::from_str(node) {
        out.headers_mut().insert(X_INMATE_NODE, v);
    }
    if stale {
        out.headers_mut()
            .insert(X_INMATE_STALE, HeaderValue::from_static("true"));
    }
    out
}

const X_INMATE_NODE: header::HeaderName = header::HeaderName::from_static("x-inmate-node");
const X_INMATE_STALE: header::HeaderName = header::HeaderName::from_static("x-inmate-stale");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_back_drops_hop_by_hop_headers_and_names_the_node() {
        let mut resp = Response::new(super::super::respond::full("{}"));
        for (k, v) in [
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("proxy-connection", "close"),
            ("content-length", "2"),
            ("content-type", "application/json"),
            ("x-influxdb-version", "1.6.7"),
        ] {
            resp.headers_mut().append(k, HeaderValue::from_static(v));
        }
        let out = stream_back(resp, "n1", true);
        let names: Vec<&str> = out.headers().keys().map(|k| k.as_str()).collect();
        for gone in [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "proxy-connection",
        ] {
            assert!(!names.contains(&gone), "{gone} kept: {names:?}");
        }
        for kept in ["content-length", "content-type", "x-influxdb-version"] {
            assert!(names.contains(&kept), "{kept} dropped: {names:?}");
        }
        assert_eq!(out.headers()["x-inmate-node"], "n1");
        assert_eq!(out.headers()["x-inmate-stale"], "true");
        let fresh = stream_back(Response::new(super::super::respond::full("")), "n2", false);
        assert!(fresh.headers().get("x-inmate-stale").is_none());
        assert_eq!(fresh.headers()["x-inmate-node"], "n2");
    }
}
