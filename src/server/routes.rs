//! Routing, the gateway token, body reading and the access log.
//!
//! Every route of the original inmate is here, plus the ones it misses
//! (`/api/v2/buckets`, task PATCH/DELETE, `/ready`). Anything else answers
//! 501 `{"error":"Feature not supported"}` as the original does.
//!
//! The gateway token is checked in constant time and then *consumed*: when
//! `auth_token` is set, the client's `Authorization` header carries it, so that
//! header is never forwarded to a node. The access log never contains `p`,
//! tokens, passwords inside InfluxQL, or any `Authorization` value.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use subtle::ConstantTimeEq;

use super::respond::{self, Body, Flavor, truncate_at_char_boundary};
use super::{Gateway, mutate, read, status, write};
use crate::backend::deadletter::is_secret_param;

/// What a handler needs from the request, with the body not yet read.
pub struct ClientRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: http::HeaderMap,
    /// The client's `Authorization`, when it is theirs to forward (not the
    /// gateway's own token).
    pub client_auth: Option<String>,
    pub body: Option<Incoming>,
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum BodyReadError {
    TooLarge,
    Timeout,
    Io(String),
}

impl BodyReadError {
    pub fn response(&self, flavor: Flavor) -> Response<Body> {
        match self {
            BodyReadError::TooLarge => respond::error(
                flavor,
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Entity Too Large",
            ),
            BodyReadError::Timeout => respond::error(
                flavor,
                StatusCode::REQUEST_TIMEOUT,
                "timed out reading the request body",
            ),
            BodyReadError::Io(e) => respond::error(
                flavor,
                StatusCode::BAD_REQUEST,
                &format!("unable to read request body: {e}"),
            ),
        }
    }
}

impl ClientRequest {
    /// Reads the whole body once (so fallback and fan-out can resend it),
    /// within `max_body_size` (0 = unlimited) and the request timeout.
    ///
    /// Past the limit the rest of the body is still read and discarded (up to
    /// a bound), so the client receives the 413 instead of a broken pipe.
    pub async fn read_body(&mut self, gw: &Gateway) -> Result<Bytes, BodyReadError> {
        let max = gw.config.max_body_size;
        let limit = if max == 0 { usize::MAX } else { max };
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = self
            .body
            .take()
            .ok_or_else(|| BodyReadError::Io("body already read".into()))?;
        let drain_cap = limit.saturating_mul(4).max(64 << 20);
        let read = async {
            // No up-front buffer for bodiless requests (most reads).
            let cap = declared.map_or(0, |n| (n as usize).min(limit));
            let mut buf = BytesMut::with_capacity(cap);
            let mut seen = 0usize;
            let mut too_large = declared.is_some_and(|n| n > limit as u64);
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| BodyReadError::Io(e.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if too_large {
                    seen = seen.saturating_add(data.len());
                    if seen > drain_cap {
                        break;
                    }
                    continue;
                }
                if buf.len() + data.len() > limit {
                    too_large = true;
                    seen = buf.len() + data.len();
                    buf = BytesMut::new();
                    continue;
                }
                buf.extend_from_slice(&data);
            }
            if too_large {
                Err(BodyReadError::TooLarge)
            } else {
                Ok(buf.freeze())
            }
        };
        match tokio::time::timeout(gw.config.request_timeout, read).await {
            Err(_) => Err(BodyReadError::Timeout),
            Ok(r) => r,
        }
    }
}

/// Checks the gateway token. Accepts `Token <t>` and `Bearer <t>`.
fn token_ok(expected: &str, header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    let Some((scheme, value)) = h.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    value.trim().as_bytes().ct_eq(expected.as_bytes()).into()
}

pub fn flavor_of(path: &str) -> Flavor {
    if path.starts_with("/api/v2") {
        Flavor::V2
    } else {
        Flavor::V1
    }
}

/// Masks credentials and InfluxQL passwords for the access log.
pub fn mask_for_log(query: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            k if is_secret_param(k) => {
                out.append_pair(k, "***");
            }
            "q" => {
                let mut q = crate::query::influxql::redact(&v);
                if truncate_at_char_boundary(&mut q, 300) {
                    q.push('…');
                }
                out.append_pair("q", &q);
            }
            _ => {
                out.append_pair(&k, &v);
            }
        }
    }
    out.finish()
}

pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let method = parts.method.clone();
    let flavor = flavor_of(&path);

    let auth_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client_auth = match &gw.config.auth_token {
        Some(tok) => {
            if !token_ok(tok, auth_header) {
                let resp = match flavor {
                    Flavor::V2 => {
                        respond::error(flavor, StatusCode::UNAUTHORIZED, "unauthorized access")
                    }
                    Flavor::V1 => {
                        respond::error(flavor, StatusCode::UNAUTHORIZED, "authorization failed")
                    }
                };
                access_log(&method, &path, &query, resp.status(), start, peer);
                return Ok(resp);
            }
            None
        }
        None => auth_header.map(str::to_string),
    };
    let req = ClientRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers,
        client_auth,
        body: Some(body),
    };
    let resp = route(&gw, req).await;
    access_log(&method, &path, &query, resp.status(), start, peer);
    Ok(resp)
}

async fn route(gw: &Arc<Gateway>, mut req: ClientRequest) -> Response<Body> {
    if req.path.starts_with("/api/v2/") && req.query.contains("orgID") {
        // v2 org IDs differ per node; names do not (see backend::orgs).
        req.query = gw.orgs.names_in_query(&req.query).await;
    }
    let m = &req.method;
    let is = |x: &Method| m == x;
    let path = req.path.as_str();
    let mutating =
        is(&Method::POST) || is(&Method::PATCH) || is(&Method::DELETE) || is(&Method::PUT);
    match path {
        "/write" if is(&Method::POST) => write::handle(gw, req, Flavor::V1).await,
        "/api/v2/write" if is(&Method::POST) => write::handle(gw, req, Flavor::V2).await,
        "/write" | "/query" if is(&Method::OPTIONS) => respond::empty(StatusCode::NO_CONTENT),
        "/query" if is(&Method::GET) || is(&Method::POST) => mutate::influxql(gw, req).await,
        "/api/v2/query" if is(&Method::POST) || is(&Method::GET) => {
            read::proxy_buffered(gw, req).await
        }
        "/ping" if is(&Method::GET) || is(&Method::HEAD) => status::ping(gw, &req),
        "/api/v2/ping" if is(&Method::GET) || is(&Method::HEAD) => status::ping(gw, &req),
        "/health" | "/api/v2/health" if is(&Method::GET) => status::health(gw, &req),
        "/ready" if is(&Method::GET) => status::ready(gw),
        "/" if is(&Method::GET) => status::root(),
        "/api/v2/delete" if is(&Method::POST) => mutate::http(gw, req, "/api/v2/delete").await,
        "/api/v2/buckets" | "/api/v2/bucket" if is(&Method::GET) => {
            read::proxy_as(gw, req, "/api/v2/buckets").await
        }
        "/api/v2/buckets" | "/api/v2/bucket" if is(&Method::POST) => {
            mutate::http(gw, req, "/api/v2/buckets").await
        }
        p if p == "/api/v2/tasks"
            || p.starts_with("/api/v2/tasks/")
            || p == "/api/v2/orgs"
            || p.starts_with("/api/v2/orgs/") =>
        {
            let p = p.to_string();
            if is(&Method::GET) {
                read::proxy_as(gw, req, &p).await
            } else if mutating {
                mutate::http(gw, req, &p).await
            } else {
                respond::not_supported()
            }
        }
        _ => respond::not_supported(),
    }
}

fn access_log(
    method: &Method,
    path: &str,
    query: &str,
    status: StatusCode,
    start: Instant,
    peer: SocketAddr,
) {
    tracing::info!(
        target: "access",
        method = %method,
        path,
        query = %mask_for_log(query),
        status = status.as_u16(),
        ms = start.elapsed().as_secs_f64() * 1000.0,
        peer = %peer,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check() {
        assert!(token_ok("abc", Some("Token abc")));
        assert!(token_ok("abc", Some("token abc")));
        assert!(token_ok("abc", Some("Bearer abc")));
        assert!(!token_ok("abc", Some("Token abd")));
        assert!(!token_ok("abc", Some("Token ab")));
        assert!(!token_ok("abc", Some("Basic abc")));
        assert!(!token_ok("abc", Some("abc")));
        assert!(!token_ok("abc", None));
    }

    #[test]
    fn log_masking() {
        let m = mask_for_log("db=x&u=bob&p=secret&token=t");
        assert!(!m.contains("secret"), "{m}");
        assert!(!m.contains("=t"), "{m}");
        assert!(m.contains("u=bob"));
    }
}
