//! Routing, the gateway token and the access log.
//!
//! Every route of the original inmate is here, plus the ones it misses
//! (`/api/v2/buckets`, task PATCH/DELETE, `/ready`). Anything else answers
//! 501 `{"error":"Feature not supported"}` as the original does.
//!
//! The router is the top of the server's import graph: it builds the
//! [`ClientRequest`] (`request.rs`), calls one handler, and renders a
//! handler's [`ApiError`] in the flavour of the path the client called. No
//! handler imports from here.
//!
//! The gateway token is checked in constant time and then *consumed*: when
//! `auth_token` is set, the client's `Authorization` header carries it, so that
//! header is never forwarded to a node. The access log goes through
//! [`crate::redact`]: it never contains `p`, tokens, passwords inside InfluxQL,
//! or any `Authorization` value.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::auth::{self, Access};
use super::request::{ClientRequest, Flavor, flavor_of};
use super::respond::{self, ApiError, Body};
use super::{Gateway, admin, mutate, query, read, status, write};
use crate::redact;

/// Routes that answer without credentials: `/ping` always (as InfluxDB,
/// and load balancers expect it), `/health` and `/ready` with
/// `public_health`.
fn open_route(path: &str, public_health: bool) -> bool {
    matches!(path, "/ping" | "/api/v2/ping")
        || (public_health && matches!(path, "/health" | "/api/v2/health" | "/ready"))
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
    let (client_auth, principal, query) = if !gw.auth.enabled() {
        // No gateway credentials: the client's own go to the nodes.
        (auth_header.map(str::to_string), None, query)
    } else if open_route(&path, gw.config.public_health) {
        (None, None, auth::strip_credentials(&query))
    } else {
        match gw.auth.authenticate(&parts.headers, &query).await {
            Some(p) => (None, Some(p), auth::strip_credentials(&query)),
            None => {
                let presented = auth_header.map_or_else(|| "none".into(), redact::authorization);
                tracing::warn!(path, peer = %peer, authorization = %presented, "gateway credentials rejected");
                let resp = ApiError::Unauthorized.render(flavor);
                access_log(&method, &path, &query, resp.status(), start, peer);
                crate::metrics::request(&method, &path, resp.status(), start);
                return Ok(resp);
            }
        }
    };
    let req = ClientRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers,
        client_auth,
        principal,
        body: Some(body),
    };
    let resp = route(&gw, req).await.unwrap_or_else(|e| {
        if e.status().is_server_error() {
            error_log(&method, &path, &query, &e);
        }
        e.render(flavor)
    });
    access_log(&method, &path, &query, resp.status(), start, peer);
    crate::metrics::request(&method, &path, resp.status(), start);
    Ok(resp)
}

async fn route(gw: &Arc<Gateway>, mut req: ClientRequest) -> Result<Response<Body>, ApiError> {
    if req.path.starts_with("/api/v2/") && req.query.contains("orgID") {
        // v2 org IDs differ per node; names do not (see backend::orgs).
        req.query = gw.orgs.names_in_query(&req.query).await;
    }
    let m = &req.method;
    let is = |x: &Method| m == x;
    let path = req.path.as_str();
    let mutating =
        is(&Method::POST) || is(&Method::PATCH) || is(&Method::DELETE) || is(&Method::PUT);
    if req.principal.is_some() {
        // `/query` and `/api/v2/query` are checked once their text is read.
        use crate::backend::cluster::Scope;
        let need = match path {
            "/write" | "/api/v2/write" => Some((Access::Write, Scope::of_write(&req.query))),
            "/query" | "/api/v2/query" | "/ping" | "/api/v2/ping" | "/health"
            | "/api/v2/health" | "/ready" | "/" => None,
            "/api/v2/delete" => Some((Access::Admin, Scope::of_v2_mutation(path, &req.query))),
            _ if path.starts_with(crate::admin::PREFIX) => Some((Access::Admin, Scope::Global)),
            _ if mutating => Some((Access::Admin, Scope::All)),
            // Listings and `/metrics` touch no database.
            _ => Some((Access::Read, Scope::Global)),
        };
        if let Some((access, target)) = need {
            auth::check(req.principal.as_deref(), access, &target).map_err(ApiError::Forbidden)?;
        }
    }
    match path {
        "/write" if is(&Method::POST) => write::handle(gw, req, Flavor::V1).await,
        "/api/v2/write" if is(&Method::POST) => write::handle(gw, req, Flavor::V2).await,
        "/write" | "/query" if is(&Method::OPTIONS) => Ok(respond::empty(StatusCode::NO_CONTENT)),
        "/query" if is(&Method::GET) || is(&Method::POST) => query::handle(gw, req).await,
        "/api/v2/query" if is(&Method::POST) || is(&Method::GET) => {
            read::proxy_buffered(gw, req).await
        }
        "/ping" if is(&Method::GET) || is(&Method::HEAD) => Ok(status::ping(gw, &req)),
        "/api/v2/ping" if is(&Method::GET) || is(&Method::HEAD) => Ok(status::ping(gw, &req)),
        "/health" | "/api/v2/health" if is(&Method::GET) => Ok(status::health(gw)),
        "/ready" if is(&Method::GET) => Ok(status::ready(gw)),
        "/" if is(&Method::GET) => Ok(status::root()),
        "/metrics" if is(&Method::GET) => Ok(crate::metrics::response(gw)),
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
                Err(ApiError::NotSupported)
            }
        }
        p if p.starts_with(crate::admin::PREFIX) => admin::handle(gw, req).await,
        _ => Err(ApiError::NotSupported),
    }
}

/// Server-side failures (5xx), with the request masked like the access log.
fn error_log(method: &Method, path: &str, query: &str, e: &ApiError) {
    tracing::error!(
        method = %method,
        path,
        query = %redact::params_for_log(query),
        status = e.status().as_u16(),
        error = %e,
        "request failed",
    );
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
        query = %redact::params_for_log(query),
        status = status.as_u16(),
        ms = start.elapsed().as_secs_f64() * 1000.0,
        peer = %peer,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ping_is_open_unless_health_is_public() {
        assert!(open_route("/ping", false));
        assert!(open_route("/api/v2/ping", false));
        assert!(!open_route("/health", false));
        assert!(open_route("/health", true));
        assert!(open_route("/ready", true));
        assert!(!open_route("/query", true));
        assert!(!open_route("/write", true));
    }

    /// Everything `f` logs, as text.
    fn logged(f: impl FnOnce()) -> String {
        let buf = crate::logfmt::Captured::default();
        let sink = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(sub, f);
        buf.text()
    }

    const SECRET_QUERY: &str =
        "db=x&u=bob&p=s1&token=s2&auth_token=s3&q=CREATE+USER+a+WITH+PASSWORD+s4";

    #[test]
    fn access_and_error_logs_mask_every_secret() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let text = logged(|| {
            access_log(
                &Method::GET,
                "/query",
                SECRET_QUERY,
                StatusCode::OK,
                Instant::now(),
                peer,
            );
            error_log(
                &Method::GET,
                "/query",
                SECRET_QUERY,
                &ApiError::NoNode("down".into()),
            );
        });
        assert_eq!(text.matches("auth_token=***").count(), 2, "{text}");
        for secret in ["s1", "s2", "s3", "s4"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("u=bob"), "{text}");
    }
}
